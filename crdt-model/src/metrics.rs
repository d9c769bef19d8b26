//! Community metrics (docs/RULES.md R11): pure functions of a derived [`State`] and of the moments passed
//! in (`now`, `since`). Integers only; every ratio is in basis points (1/100 of a percent),
//! rounded down.
//!
//! What is counted is what derivation counted: refused records never count. Hiding a record
//! does not change derivation, so hidden records still count in the aggregates (which must
//! agree with the balances anyone can recompute); only named listings (the per-proposal SP
//! series) leave hidden proposals out. Aggregates are always shown, whatever members'
//! visibility settings (docs/RULES.md R10).
//!
//! Sections for domains that other modules add to the state (collective purchasing, pools,
//! relief) are `Option`s: `None` until [`Metrics::compute`] fills them from the state.

use std::collections::{BTreeMap, HashMap};

use serde::{Deserialize, Serialize};

use crate::ids::{Day, RecordId};
use crate::state::State;
use crate::state::{AidStatus, AttestationStatus, EntryStatus, MemberStatus, ProposalStatus};

/// Participation counts members with a counted record in this many days before `now`.
pub const PARTICIPATION_WINDOW_DAYS: i64 = 30;
/// Width of a balance histogram bucket: 5 hours, in minutes.
pub const HISTOGRAM_BUCKET_MINUTES: i64 = 5 * 60;
/// One whole, in basis points.
pub const BASIS_POINTS: i64 = 10_000;

/// Everything `coop metrics` shows.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Metrics {
    /// The moment the metrics are for, Unix seconds.
    pub now: i64,
    /// Time series and rates start on this day (inclusive), when given.
    pub since: Option<Day>,
    /// SP allocated per proposal over time.
    pub support: Vec<ProposalSeries>,
    /// Mutual-aid requests and how many completed.
    pub aid: AidMetrics,
    /// The time-bank balance distribution.
    pub time: TimeDistribution,
    /// Confirmed hours exchanged per calendar month of service.
    pub hours_by_month: Vec<MonthHours>,
    /// Members active in the last [`PARTICIPATION_WINDOW_DAYS`] days.
    pub participation: Participation,
    /// Collective purchasing: savings and local value retained (docs/RULES.md R7); `None` until the
    /// state holds purchases.
    pub purchases: Option<PurchaseMetrics>,
    /// Investment pools (docs/RULES.md R8–R9); `None` until the state holds pools.
    pub pools: Option<PoolMetrics>,
    /// Emergency relief (docs/RULES.md R8–R9); `None` until the state holds relief requests.
    pub relief: Option<ReliefMetrics>,
}

/// Points allocated in one period (a day or a week starting on Monday).
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Period {
    /// First day of the period.
    pub start: Day,
    /// SP allocated in the period (counted allocations, by their authors' claimed time).
    pub points: i64,
}

/// One proposal's SP over time.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProposalSeries {
    /// The proposal.
    pub id: RecordId,
    /// Its title.
    pub title: String,
    /// `open` or the outcome it closed with.
    pub status: String,
    /// SP locked on it now.
    pub active_points: i64,
    /// SP allocated to it since `since` (all time without it).
    pub allocated_points: i64,
    /// Distinct members who allocated since `since`.
    pub supporters: usize,
    /// Allocated SP per day.
    pub by_day: Vec<Period>,
    /// Allocated SP per week (weeks start on Monday).
    pub by_week: Vec<Period>,
}

/// Mutual-aid requests (written since `since`) by status.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct AidMetrics {
    /// Counted requests.
    pub requests: i64,
    /// Completed (both parties confirmed).
    pub completed: i64,
    /// Open, waiting for offers.
    pub open: i64,
    /// An offer accepted, not yet completed.
    pub matched: i64,
    /// Cancelled by the requester.
    pub cancelled: i64,
    /// completed ÷ requests in basis points, rounded down; `None` without requests.
    pub completion_bp: Option<i64>,
}

/// Members by time balance, and how unequal the time bank is.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TimeDistribution {
    /// Admitted members (removed and pending members are not in the distribution).
    pub members: i64,
    /// Bucket width in minutes.
    pub bucket_minutes: i64,
    /// Members per balance bucket, lowest first, empty buckets between included.
    pub histogram: Vec<Bucket>,
    /// The floor in force, minutes (balances are measured from it for the Gini).
    pub floor_minutes: i64,
    /// Gini coefficient of balances measured from the floor (balance − floor), in basis
    /// points: 0 when everyone holds the same, towards 10000 when one member holds it all.
    /// Balances themselves sum to zero (every minute provided is a minute received), so
    /// their Gini is undefined; measured from the floor, they are what each member can
    /// still spend. `None` without members.
    pub balance_gini_bp: Option<i64>,
    /// Gini coefficient of confirmed minutes provided (who gives the hours), in basis points.
    pub provided_gini_bp: Option<i64>,
}

/// A histogram bucket: balances in `from_minutes..to_minutes` (upper bound excluded).
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Bucket {
    /// Lowest balance in the bucket, minutes.
    pub from_minutes: i64,
    /// First balance above the bucket, minutes.
    pub to_minutes: i64,
    /// How many values fall in it.
    pub members: i64,
}

/// Confirmed exchanges of one calendar month (by the day of service).
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MonthHours {
    /// `YYYY-MM`.
    pub month: String,
    /// Minutes exchanged.
    pub minutes: i64,
    /// Confirmed attestations.
    pub exchanges: i64,
}

/// Who took part recently.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Participation {
    /// The window, in days before `now`.
    pub window_days: i64,
    /// Admitted members.
    pub admitted: i64,
    /// Admitted members with a counted record claimed within the window.
    pub active: i64,
    /// active ÷ admitted in basis points, rounded down; `None` without members.
    pub share_bp: Option<i64>,
}

/// An amount of money in minor units of one currency.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Money {
    /// Three-letter currency code.
    pub currency: String,
    /// Minor units (cents).
    pub minor: i64,
}

/// Collective purchasing totals (filled once the state holds purchases).
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PurchaseMetrics {
    /// Purchases funded, ordered or delivered.
    pub funded: i64,
    /// Savings against the reference price, per currency.
    pub savings: Vec<Money>,
    /// Spending with the winning suppliers, per currency.
    pub spending: Vec<Money>,
    /// Of which with suppliers marked local, per currency.
    pub local_spending: Vec<Money>,
    /// local ÷ all spending in basis points (over all currencies' minor units), rounded down.
    pub local_share_bp: Option<i64>,
}

/// Investment pool totals (filled once the state holds pools).
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PoolMetrics {
    /// Pools.
    pub pools: i64,
    /// Confirmed contributions, per currency.
    pub contributed: Vec<Money>,
    /// Disbursed to projects, per currency.
    pub disbursed: Vec<Money>,
    /// Current balances, per currency.
    pub balance: Vec<Money>,
}

/// Relief totals (filled once the state holds relief requests).
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReliefMetrics {
    /// Requests awaiting approval or disbursement.
    pub open_requests: i64,
    /// Amount those open requests ask for, per currency.
    pub open_amount: Vec<Money>,
    /// Disbursed, per currency.
    pub disbursed: Vec<Money>,
}

impl Metrics {
    /// The metrics of `state` at Unix time `now`; series and rates from `since` on.
    pub fn compute(state: &State, now: i64, since: Option<Day>) -> Metrics {
        let from = since.map_or(i64::MIN, |d| d.0 as i64 * 86_400);
        let times: HashMap<RecordId, i64> = state.log.iter().map(|e| (e.id, e.time)).collect();
        let time_of = |id: &RecordId| times.get(id).copied().unwrap_or(0);
        Metrics {
            now,
            since,
            support: support(state, &time_of, from),
            aid: aid(state, &time_of, from),
            time: distribution(state),
            hours_by_month: hours_by_month(state, since),
            participation: participation(state, now),
            purchases: purchases(state),
            pools: pool_metrics(state),
            relief: relief_metrics(state),
        }
    }
}

/// Purchase totals; `None` when the community has no purchase.
fn purchases(state: &State) -> Option<PurchaseMetrics> {
    if state.purchases.is_empty() {
        return None;
    }
    let totals = state.purchase_totals();
    let sums = |f: &dyn Fn(&crate::state::PurchaseTotals) -> i64| -> Vec<Money> {
        totals
            .iter()
            .map(|(currency, t)| Money {
                currency: currency.clone(),
                minor: f(t),
            })
            .collect()
    };
    let funded = state
        .purchases
        .values()
        .flat_map(|p| p.rounds.values())
        .filter(|r| r.funded || r.ordered.is_some())
        .count() as i64;
    let all: i64 = totals
        .values()
        .map(|t| t.spending)
        .fold(0, i64::saturating_add);
    let local: i64 = totals
        .values()
        .map(|t| t.local_spending)
        .fold(0, i64::saturating_add);
    Some(PurchaseMetrics {
        funded,
        savings: sums(&|t| t.savings),
        spending: sums(&|t| t.spending),
        local_spending: sums(&|t| t.local_spending),
        local_share_bp: ratio_bp(local, all),
    })
}

/// Sums per currency, as `Money` in currency order.
fn per_currency(items: impl Iterator<Item = (String, i64)>) -> Vec<Money> {
    let mut sums: BTreeMap<String, i64> = BTreeMap::new();
    for (currency, minor) in items {
        *sums.entry(currency).or_default() += minor;
    }
    sums.into_iter()
        .map(|(currency, minor)| Money { currency, minor })
        .collect()
}

/// Investment pools (relief funds are in [`ReliefMetrics`]); `None` when there are none.
fn pool_metrics(state: &State) -> Option<PoolMetrics> {
    let pools: Vec<_> = state.pools.values().filter(|p| !p.relief).collect();
    if pools.is_empty() {
        return None;
    }
    let sum = |f: fn(&crate::state::Pool) -> i64| {
        per_currency(pools.iter().map(|p| (p.currency.clone(), f(p))))
    };
    Some(PoolMetrics {
        pools: pools.len() as i64,
        contributed: sum(|p| p.confirmed),
        disbursed: sum(|p| p.disbursed),
        balance: sum(|p| p.balance),
    })
}

/// Relief: open requests and what was released; `None` when nobody asked yet.
fn relief_metrics(state: &State) -> Option<ReliefMetrics> {
    if state.relief_requests.is_empty() {
        return None;
    }
    let totals = state.relief_totals();
    Some(ReliefMetrics {
        open_requests: totals.values().map(|t| t.open_requests as i64).sum(),
        open_amount: per_currency(totals.iter().map(|(c, t)| (c.clone(), t.open_amount))),
        disbursed: per_currency(totals.iter().map(|(c, t)| (c.clone(), t.released_amount))),
    })
}

fn support(state: &State, time_of: &dyn Fn(&RecordId) -> i64, from: i64) -> Vec<ProposalSeries> {
    let mut out: Vec<(usize, ProposalSeries)> = Vec::new();
    let position: HashMap<RecordId, usize> = state.log.iter().map(|e| (e.id, e.position)).collect();
    for p in state.proposals.values() {
        if state.hidden.contains_key(&p.id) {
            continue;
        }
        let mut by_day: BTreeMap<Day, i64> = BTreeMap::new();
        let mut by_week: BTreeMap<Day, i64> = BTreeMap::new();
        let mut supporters = std::collections::BTreeSet::new();
        for a in &p.allocations {
            let t = time_of(&a.id);
            if t < from {
                continue;
            }
            let day = Day::from_unix(t);
            *by_day.entry(day).or_default() += a.points.0;
            *by_week.entry(week_start(day)).or_default() += a.points.0;
            supporters.insert(a.member);
        }
        if by_day.is_empty() {
            continue;
        }
        let periods = |m: BTreeMap<Day, i64>| -> Vec<Period> {
            m.into_iter()
                .map(|(start, points)| Period { start, points })
                .collect()
        };
        let status = match p.status {
            ProposalStatus::Open => "open".to_string(),
            ProposalStatus::Closed(o) => o.as_str().to_string(),
        };
        out.push((
            position.get(&p.id).copied().unwrap_or(usize::MAX),
            ProposalSeries {
                id: p.id,
                title: p.title.clone(),
                status,
                active_points: p.active_points.0,
                allocated_points: by_day.values().sum(),
                supporters: supporters.len(),
                by_day: periods(by_day),
                by_week: periods(by_week),
            },
        ));
    }
    // Most supported first, then in total order: the same on every replica.
    out.sort_by_key(|(pos, s)| (-s.allocated_points, *pos));
    out.into_iter().map(|(_, s)| s).collect()
}

fn aid(state: &State, time_of: &dyn Fn(&RecordId) -> i64, from: i64) -> AidMetrics {
    let mut m = AidMetrics::default();
    for r in state.aid_requests.values() {
        if time_of(&r.id) < from {
            continue;
        }
        m.requests += 1;
        match r.status {
            AidStatus::Open => m.open += 1,
            AidStatus::Matched => m.matched += 1,
            AidStatus::Completed => m.completed += 1,
            AidStatus::Cancelled => m.cancelled += 1,
        }
    }
    m.completion_bp = ratio_bp(m.completed, m.requests);
    m
}

fn distribution(state: &State) -> TimeDistribution {
    let floor = state.params.timebank_floor_minutes;
    let admitted: Vec<_> = state
        .members
        .values()
        .filter(|m| m.status == MemberStatus::Admitted)
        .collect();
    let balances: Vec<i64> = admitted.iter().map(|m| m.time.balance.0).collect();
    let from_floor: Vec<i64> = balances.iter().map(|b| (b - floor).max(0)).collect();
    let provided: Vec<i64> = admitted.iter().map(|m| m.time.provided.0).collect();
    TimeDistribution {
        members: admitted.len() as i64,
        bucket_minutes: HISTOGRAM_BUCKET_MINUTES,
        histogram: histogram(&balances, HISTOGRAM_BUCKET_MINUTES),
        floor_minutes: floor,
        balance_gini_bp: gini_bp(&from_floor),
        provided_gini_bp: gini_bp(&provided),
    }
}

fn hours_by_month(state: &State, since: Option<Day>) -> Vec<MonthHours> {
    let mut months: BTreeMap<(i32, u32), (i64, i64)> = BTreeMap::new();
    for a in state.attestations.values() {
        if a.status != AttestationStatus::Confirmed || since.is_some_and(|s| a.date < s) {
            continue;
        }
        let (y, m, _) = a.date.ymd();
        let e = months.entry((y, m)).or_default();
        e.0 += a.minutes.0;
        e.1 += 1;
    }
    months
        .into_iter()
        .map(|((y, m), (minutes, exchanges))| MonthHours {
            month: format!("{y:04}-{m:02}"),
            minutes,
            exchanges,
        })
        .collect()
}

fn participation(state: &State, now: i64) -> Participation {
    let window = PARTICIPATION_WINDOW_DAYS * 86_400;
    let mut active = std::collections::BTreeSet::new();
    for e in &state.log {
        if e.status == EntryStatus::Counted && e.time > now - window && e.time <= now {
            if let Some(m) = e.member.filter(|m| state.is_admitted(m)) {
                active.insert(m);
            }
        }
    }
    let admitted = state
        .members
        .values()
        .filter(|m| m.status == MemberStatus::Admitted)
        .count() as i64;
    Participation {
        window_days: PARTICIPATION_WINDOW_DAYS,
        admitted,
        active: active.len() as i64,
        share_bp: ratio_bp(active.len() as i64, admitted),
    }
}

/// The Monday that starts the week of `day` (1970-01-01, day 0, was a Thursday).
pub fn week_start(day: Day) -> Day {
    Day(day.0 - (day.0 + 3).rem_euclid(7))
}

/// `part ÷ whole` in basis points, rounded down; `None` when `whole` is not positive.
pub fn ratio_bp(part: i64, whole: i64) -> Option<i64> {
    (whole > 0).then(|| (part as i128 * BASIS_POINTS as i128 / whole as i128) as i64)
}

/// The Gini coefficient of non-negative values in basis points, rounded down (negative
/// values count as 0). With the values sorted ascending, `x_1 ≤ … ≤ x_n`:
///
/// ```text
/// G = (2 · Σ i·x_i − (n + 1) · Σ x_i) / (n · Σ x_i)
/// ```
///
/// exactly, in 128-bit integers: 0 when all are equal (or all zero), `(n − 1)/n` when one
/// holds everything. `None` for no values.
pub fn gini_bp(values: &[i64]) -> Option<i64> {
    if values.is_empty() {
        return None;
    }
    let mut v: Vec<i128> = values.iter().map(|x| (*x).max(0) as i128).collect();
    v.sort_unstable();
    let n = v.len() as i128;
    let total: i128 = v.iter().sum();
    if total == 0 {
        return Some(0);
    }
    let weighted: i128 = v.iter().enumerate().map(|(i, x)| (i as i128 + 1) * x).sum();
    let num = 2 * weighted - (n + 1) * total;
    Some((num * BASIS_POINTS as i128 / (n * total)) as i64)
}

/// Counts of `values` in buckets `[k·width, (k+1)·width)`, from the lowest non-empty bucket
/// to the highest, empty ones between included. Negative values fall in negative buckets
/// (−1 is in `[−width, 0)`).
pub fn histogram(values: &[i64], width: i64) -> Vec<Bucket> {
    let width = width.max(1);
    let mut counts: BTreeMap<i64, i64> = BTreeMap::new();
    for v in values {
        *counts.entry(v.div_euclid(width)).or_default() += 1;
    }
    let (Some(lo), Some(hi)) = (
        counts.keys().next().copied(),
        counts.keys().next_back().copied(),
    ) else {
        return Vec::new();
    };
    (lo..=hi)
        .map(|k| Bucket {
            from_minutes: k * width,
            to_minutes: (k + 1) * width,
            members: counts.get(&k).copied().unwrap_or(0),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gini_of_equal_values_is_zero() {
        assert_eq!(gini_bp(&[300, 300, 300, 300]), Some(0));
        assert_eq!(gini_bp(&[0, 0, 0]), Some(0));
        assert_eq!(gini_bp(&[7]), Some(0));
        assert_eq!(gini_bp(&[]), None);
    }

    #[test]
    fn gini_when_one_holds_everything_is_n_minus_one_over_n() {
        for n in 1..=12i64 {
            let mut v = vec![0; n as usize];
            v[n as usize / 2] = 600;
            assert_eq!(gini_bp(&v), Some((n - 1) * BASIS_POINTS / n), "n = {n}");
        }
        // 3/4 exactly; 2/3 rounds down to 6666.
        assert_eq!(gini_bp(&[0, 0, 0, 5]), Some(7500));
        assert_eq!(gini_bp(&[9, 0, 0]), Some(6666));
    }

    #[test]
    fn gini_of_a_mixed_distribution_matches_the_mean_difference_formula() {
        // Σ|xi − xj| / (2 n² μ) for 1, 2, 3, 4: pairs differ by 1,2,3,1,2,1 (×2) = 20;
        // 20 / (2 · 16 · 2.5) = 0.25.
        assert_eq!(gini_bp(&[4, 1, 3, 2]), Some(2500));
        // Negative values count as zero.
        assert_eq!(gini_bp(&[-50, 0, 0, 5]), Some(7500));
    }

    #[test]
    fn histogram_edges_are_lower_inclusive_upper_exclusive() {
        let h = histogram(&[0, 299, 300, -1, -300, -301, 900], 300);
        let got: Vec<(i64, i64, i64)> = h
            .iter()
            .map(|b| (b.from_minutes, b.to_minutes, b.members))
            .collect();
        assert_eq!(
            got,
            vec![
                (-600, -300, 1), // -301
                (-300, 0, 2),    // -300, -1
                (0, 300, 2),     // 0, 299
                (300, 600, 1),   // 300
                (600, 900, 0),   // empty, kept
                (900, 1200, 1),  // 900
            ]
        );
        assert!(histogram(&[], 300).is_empty());
    }

    #[test]
    fn weeks_start_on_monday_and_ratios_round_down() {
        // 2026-09-21 is a Monday; 2026-09-27 the Sunday of the same week.
        let monday: Day = "2026-09-21".parse().unwrap();
        for d in 0..7 {
            assert_eq!(week_start(Day(monday.0 + d)), monday);
        }
        assert_eq!(week_start(Day(monday.0 + 7)), Day(monday.0 + 7));
        assert_eq!(week_start(Day(0)), "1969-12-29".parse().unwrap());
        assert_eq!(ratio_bp(1, 3), Some(3333));
        assert_eq!(ratio_bp(2, 3), Some(6666));
        assert_eq!(ratio_bp(3, 3), Some(10_000));
        assert_eq!(ratio_bp(0, 0), None);
    }
}
