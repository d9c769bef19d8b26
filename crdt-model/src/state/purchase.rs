//! Collective purchases as derived: rounds and their phases, commitments, bids, the
//! winning bid, solidarity pricing and savings.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::envelope::{Refusal, RejectReason};
use crate::ids::{Day, MemberId, RecordId};
use crate::terms::{Recurrence, MAX_PURCHASE_ROUNDS};

use super::State;

/// A collective purchase as derived.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Purchase {
    /// Record id.
    pub id: RecordId,
    /// The coordinator (who proposed it).
    pub coordinator: MemberId,
    /// What is bought.
    pub item: String,
    /// The unit of quantities.
    pub unit: String,
    /// Quantity that funds a round.
    pub target_quantity: i64,
    /// Reference (retail) price of one unit, minor units.
    pub reference_price: i64,
    /// Currency code.
    pub currency: String,
    /// Participants that fund a round.
    pub min_participants: i64,
    /// Deadline of round 0, Unix seconds.
    pub deadline: i64,
    /// One round or monthly rounds.
    pub recurrence: Recurrence,
    /// Rounds that any counted record named (rounds exist lazily), by number.
    pub rounds: BTreeMap<u32, PurchaseRound>,
    /// Savings of the ordered rounds: Σ (reference − winning price) × quantity, minor units.
    pub total_savings: i64,
    /// Spending of the ordered rounds with their suppliers: Σ winning price × quantity.
    pub total_spending: i64,
    /// The part of `total_spending` spent with suppliers marked local.
    pub local_spending: i64,
}

/// One round of a purchase.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PurchaseRound {
    /// Round number (0 for the first).
    pub round: u32,
    /// Commitments and bids must be claimed strictly before this, Unix seconds.
    pub deadline: i64,
    /// Counted commitments, in total order.
    pub commitments: Vec<Commitment>,
    /// Counted bids, in total order.
    pub bids: Vec<Bid>,
    /// Σ committed quantity.
    pub committed_quantity: i64,
    /// Distinct participants (one commitment each).
    pub participants: i64,
    /// Committed quantity ≥ target and participants ≥ minimum.
    pub funded: bool,
    /// The winning bid: lowest unit price among bids whose minimum quantity ≤ the committed
    /// quantity; ties go to a local supplier, then to the earlier bid in the total order.
    pub winning_bid: Option<RecordId>,
    /// The winning bid's unit price.
    pub unit_price: Option<i64>,
    /// Σ base (winning price × quantity): what the supplier is paid.
    pub base_total: i64,
    /// Σ surcharges: the solidarity pool.
    pub surcharge_pool: i64,
    /// Σ discounts asked for.
    pub discounts_requested: i64,
    /// Σ discounts granted (never more than the pool).
    pub discounts_granted: i64,
    /// Pool − granted: surcharges paid beyond the discounts they funded.
    pub solidarity_surplus: i64,
    /// Σ amounts due: base_total + surcharge_pool − discounts_granted ≥ base_total.
    pub total_due: i64,
    /// Σ savings: (reference − winning price) × committed quantity (negative when the
    /// winning price is above the reference).
    pub savings: i64,
    /// The step that ordered the round.
    pub ordered: Option<RecordId>,
    /// The step that marked it delivered.
    pub delivered: Option<RecordId>,
}

/// One member's commitment in a round, with what solidarity pricing derives for it.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Commitment {
    /// Record id.
    pub id: RecordId,
    /// The participant.
    pub member: MemberId,
    /// Quantity.
    pub quantity: i64,
    /// 0 plain, +N surcharge of N %, −N discount of N % asked for.
    pub solidarity_percent: i64,
    /// Winning price × quantity.
    pub base: i64,
    /// base × N / 100, rounded down (N > 0).
    pub surcharge: i64,
    /// base × N / 100, rounded down (asked with −N).
    pub discount_requested: i64,
    /// The part of the request the pool funded (requests served in total order).
    pub discount_granted: i64,
    /// base + surcharge − discount granted.
    pub due: i64,
    /// (reference − winning price) × quantity.
    pub savings: i64,
    /// The mark that recorded payment.
    pub paid: Option<RecordId>,
    /// The mark that recorded pickup.
    pub picked_up: Option<RecordId>,
}

/// A supplier's bid.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Bid {
    /// Record id.
    pub id: RecordId,
    /// The member who recorded it.
    pub recorded_by: MemberId,
    /// Supplier name.
    pub supplier: String,
    /// Local supplier.
    pub local: bool,
    /// Price of one unit, minor units.
    pub unit_price: i64,
    /// Least quantity at that price.
    pub min_quantity: i64,
}

/// Where a round stands at a given moment (a query: it depends on `now`).
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RoundPhase {
    /// A later round of a recurring purchase whose window has not opened.
    Upcoming,
    /// Taking commitments and bids, not funded yet.
    Open,
    /// Funded (before or after the deadline), not ordered yet.
    Funded,
    /// Not funded, and the deadline has passed.
    Expired,
    /// Ordered with the winning bid's supplier.
    Ordered,
    /// Delivered.
    Delivered,
}

impl RoundPhase {
    /// Stable text form.
    pub fn as_str(&self) -> &'static str {
        match self {
            RoundPhase::Upcoming => "upcoming",
            RoundPhase::Open => "open",
            RoundPhase::Funded => "funded",
            RoundPhase::Expired => "expired",
            RoundPhase::Ordered => "ordered",
            RoundPhase::Delivered => "delivered",
        }
    }
}

/// Purchase figures of one currency, over ordered rounds (what metrics report).
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct PurchaseTotals {
    /// Ordered rounds.
    pub ordered_rounds: i64,
    /// Σ savings.
    pub savings: i64,
    /// Σ spending with suppliers.
    pub spending: i64,
    /// Σ spending with local suppliers.
    pub local_spending: i64,
}

/// Unix seconds plus `months` calendar months: the same day of the month, clamped to the
/// length of the target month (Jan 31 + 1 month = Feb 28 or 29; + 2 months = Mar 31), and
/// the same time of day, in UTC.
pub fn add_months(t: i64, months: u32) -> i64 {
    let day = Day::from_unix(t);
    let time_of_day = t.rem_euclid(86_400);
    let (y, m, d) = day.ymd();
    let total = y as i64 * 12 + (m as i64 - 1) + months as i64;
    let (ty, tm) = (
        total.div_euclid(12) as i32,
        (total.rem_euclid(12) + 1) as u32,
    );
    let target = (1..=d)
        .rev()
        .find_map(|dd| Day::from_ymd(ty, tm, dd))
        .unwrap_or(day);
    target.0 as i64 * 86_400 + time_of_day
}

/// Unix seconds as `YYYY-MM-DD HH:MM UTC` (with `:SS` when the seconds are not zero).
pub fn format_time(t: i64) -> String {
    let day = Day::from_unix(t);
    let s = t.rem_euclid(86_400);
    let (h, m, sec) = (s / 3600, s % 3600 / 60, s % 60);
    if sec == 0 {
        format!("{day} {h:02}:{m:02} UTC")
    } else {
        format!("{day} {h:02}:{m:02}:{sec:02} UTC")
    }
}

impl Purchase {
    /// How many rounds the purchase can have.
    pub fn round_count(&self) -> u32 {
        match self.recurrence {
            Recurrence::None => 1,
            Recurrence::Monthly => MAX_PURCHASE_ROUNDS as u32,
        }
    }

    /// The deadline of round `k` (round 0's plus `k` calendar months).
    pub fn deadline_of(&self, k: u32) -> i64 {
        add_months(self.deadline, k)
    }

    /// When round `k` starts taking records: the previous round's deadline (`None` for
    /// round 0, open from the purchase on).
    pub fn opens_at(&self, k: u32) -> Option<i64> {
        k.checked_sub(1).map(|p| self.deadline_of(p))
    }

    /// The round whose window holds `now`: the first whose deadline is after it. `None` when
    /// every round's deadline has passed.
    pub fn current_round(&self, now: i64) -> Option<u32> {
        (0..self.round_count()).find(|&k| now < self.deadline_of(k))
    }

    /// Round `k` as derived, or an empty one if no record named it yet.
    pub fn round(&self, k: u32) -> PurchaseRound {
        self.rounds
            .get(&k)
            .cloned()
            .unwrap_or_else(|| PurchaseRound::empty(k, self.deadline_of(k)))
    }

    /// Where round `k` stands at `now`.
    pub fn phase(&self, k: u32, now: i64) -> RoundPhase {
        let r = self.rounds.get(&k);
        if r.is_some_and(|r| r.delivered.is_some()) {
            RoundPhase::Delivered
        } else if r.is_some_and(|r| r.ordered.is_some()) {
            RoundPhase::Ordered
        } else if r.is_some_and(|r| r.funded) {
            RoundPhase::Funded
        } else if now >= self.deadline_of(k) {
            RoundPhase::Expired
        } else if self.opens_at(k).is_some_and(|o| now < o) {
            RoundPhase::Upcoming
        } else {
            RoundPhase::Open
        }
    }

    /// Refuses a commitment or bid for round `k` claimed at `t` outside the round's window
    /// `[previous deadline, deadline)` (round 0: before its deadline).
    pub(crate) fn check_window(&self, k: u32, t: i64) -> Result<(), Refusal> {
        if k >= self.round_count() {
            return Err(Refusal::new(
                RejectReason::RoundNotOpen,
                format!("a one-off purchase has only round 0, not round {k}"),
            ));
        }
        let deadline = self.deadline_of(k);
        if t >= deadline {
            return Err(Refusal::new(
                RejectReason::DeadlinePassed,
                format!(
                    "claimed at {}, round {k} closed at {}",
                    format_time(t),
                    format_time(deadline)
                ),
            ));
        }
        if let Some(opens) = self.opens_at(k).filter(|o| t < *o) {
            return Err(Refusal::new(
                RejectReason::RoundNotOpen,
                format!(
                    "claimed at {}, round {k} opens at {}",
                    format_time(t),
                    format_time(opens)
                ),
            ));
        }
        Ok(())
    }
}

impl PurchaseRound {
    pub(crate) fn empty(round: u32, deadline: i64) -> PurchaseRound {
        PurchaseRound {
            round,
            deadline,
            commitments: Vec::new(),
            bids: Vec::new(),
            committed_quantity: 0,
            participants: 0,
            funded: false,
            winning_bid: None,
            unit_price: None,
            base_total: 0,
            surcharge_pool: 0,
            discounts_requested: 0,
            discounts_granted: 0,
            solidarity_surplus: 0,
            total_due: 0,
            savings: 0,
            ordered: None,
            delivered: None,
        }
    }

    /// The winning bid, if any.
    pub fn winner(&self) -> Option<&Bid> {
        let id = self.winning_bid?;
        self.bids.iter().find(|b| b.id == id)
    }

    /// A participant's commitment.
    pub fn commitment(&self, member: &MemberId) -> Option<&Commitment> {
        self.commitments.iter().find(|c| c.member == *member)
    }

    /// Recomputes the totals, the funded flag, the winning bid and solidarity pricing from
    /// the commitments and bids. Runs after every counted commitment or bid.
    pub(crate) fn recompute(&mut self, target: i64, min_participants: i64, reference: i64) {
        self.committed_quantity = self
            .commitments
            .iter()
            .fold(0i64, |s, c| s.saturating_add(c.quantity));
        self.participants = self.commitments.len() as i64;
        self.funded = self.committed_quantity >= target && self.participants >= min_participants;
        let committed = self.committed_quantity;
        let winner = self
            .bids
            .iter()
            .enumerate()
            .filter(|(_, b)| b.min_quantity <= committed)
            .min_by_key(|(i, b)| (b.unit_price, !b.local, *i))
            .map(|(_, b)| (b.id, b.unit_price));
        self.winning_bid = winner.map(|w| w.0);
        self.unit_price = winner.map(|w| w.1);
        let price = self.unit_price.unwrap_or(0);
        let has_price = self.unit_price.is_some();
        // Percentages of non-negative amounts, rounded down: a surcharge never exceeds what
        // its participant offered, a discount never exceeds what was asked.
        let percent_of = |base: i64, pct: i64| base.saturating_mul(pct) / 100;
        let mut pool = 0i64;
        for c in &mut self.commitments {
            c.base = if has_price {
                price.saturating_mul(c.quantity)
            } else {
                0
            };
            c.surcharge = percent_of(c.base, c.solidarity_percent.max(0));
            c.discount_requested = percent_of(c.base, (-c.solidarity_percent).max(0));
            c.savings = if has_price {
                (reference - price).saturating_mul(c.quantity)
            } else {
                0
            };
            pool = pool.saturating_add(c.surcharge);
        }
        // Discounts are granted in the total order of the commitments, each as far as what
        // is left of the pool allows (the last one served may get part of its request).
        let mut left = pool;
        let (mut base_total, mut requested, mut granted, mut due, mut savings) = (0, 0, 0, 0, 0);
        for c in &mut self.commitments {
            c.discount_granted = c.discount_requested.min(left);
            left -= c.discount_granted;
            c.due = c.base + c.surcharge - c.discount_granted;
            base_total = i64::saturating_add(base_total, c.base);
            requested = i64::saturating_add(requested, c.discount_requested);
            granted = i64::saturating_add(granted, c.discount_granted);
            due = i64::saturating_add(due, c.due);
            savings = i64::saturating_add(savings, c.savings);
        }
        self.base_total = base_total;
        self.surcharge_pool = pool;
        self.discounts_requested = requested;
        self.discounts_granted = granted;
        self.solidarity_surplus = left;
        self.total_due = due;
        self.savings = savings;
    }
}

impl State {
    /// Purchase figures per currency over every ordered round (for metrics).
    pub fn purchase_totals(&self) -> BTreeMap<String, PurchaseTotals> {
        let mut out: BTreeMap<String, PurchaseTotals> = BTreeMap::new();
        for p in self.purchases.values() {
            let t = out.entry(p.currency.clone()).or_default();
            t.ordered_rounds += p.rounds.values().filter(|r| r.ordered.is_some()).count() as i64;
            t.savings = t.savings.saturating_add(p.total_savings);
            t.spending = t.spending.saturating_add(p.total_spending);
            t.local_spending = t.local_spending.saturating_add(p.local_spending);
        }
        out
    }
}
