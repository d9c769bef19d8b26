//! Collective purchasing (§7.4), derived in the fold: purchases and their rounds, members'
//! commitments, open supplier bids, the winning bid, solidarity pricing, and the order →
//! delivery → payment and pickup steps.
//!
//! Everything here is a function of the records in total order and their author-claimed
//! times; "expired" and "the current round" depend on a `now` that queries take as an
//! argument. Amounts are integers in minor units; the rounding of every division is stated
//! where it happens (always towards zero on non-negative numbers, i.e. down).

use crate::record;
use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::{Ctx, Derived, Refusal, State};
use crate::envelope::RejectReason;
use crate::ids::{Day, MemberId, RecordId};
use crate::ledger::Graph;
use crate::record::{PurchaseMark, PurchaseStep, Record, Recurrence, MAX_PURCHASE_ROUNDS};

/// A collective purchase as derived.
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
    fn check_window(&self, k: u32, t: i64) -> Result<(), Refusal> {
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
    fn empty(round: u32, deadline: i64) -> PurchaseRound {
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
    fn recompute(&mut self, target: i64, min_participants: i64, reference: i64) {
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

impl Derived {
    /// The rules of the purchase records (§7.4); the author is authorized already.
    pub(super) fn apply_purchase(
        &mut self,
        graph: Graph<'_>,
        c: &Ctx<'_>,
        author: MemberId,
        record: &Record,
    ) -> Result<(), Refusal> {
        match record {
            Record::Purchase(record::Purchase {
                item,
                unit,
                target_quantity,
                reference_price,
                currency,
                min_participants,
                deadline,
                recurrence,
            }) => {
                if *deadline <= c.time {
                    return Err(Refusal::new(
                        RejectReason::DeadlinePassed,
                        format!(
                            "deadline {} is not after the purchase's time {}",
                            format_time(*deadline),
                            format_time(c.time)
                        ),
                    ));
                }
                self.state.purchases.insert(
                    c.id,
                    Purchase {
                        id: c.id,
                        coordinator: author,
                        item: item.clone(),
                        unit: unit.clone(),
                        target_quantity: *target_quantity,
                        reference_price: *reference_price,
                        currency: currency.clone(),
                        min_participants: *min_participants,
                        deadline: *deadline,
                        recurrence: *recurrence,
                        rounds: BTreeMap::new(),
                        total_savings: 0,
                        total_spending: 0,
                        local_spending: 0,
                    },
                );
                Ok(())
            }
            Record::PurchaseCommit(record::PurchaseCommit {
                purchase,
                round,
                quantity,
                solidarity_percent,
            }) => {
                let p = self.purchase_mut(graph, c, purchase)?;
                let k = *round as u32;
                p.check_window(k, c.time)?;
                let (target, min, reference) =
                    (p.target_quantity, p.min_participants, p.reference_price);
                let deadline = p.deadline_of(k);
                let r = p
                    .rounds
                    .entry(k)
                    .or_insert_with(|| PurchaseRound::empty(k, deadline));
                if r.ordered.is_some() {
                    return Err(Refusal::new(
                        RejectReason::AlreadySettled,
                        format!("round {k} is already ordered"),
                    ));
                }
                if let Some(prev) = r.commitment(&author) {
                    return Err(Refusal::new(
                        RejectReason::AlreadyCommitted,
                        format!("already committed {} in round {k}", prev.quantity),
                    ));
                }
                r.commitments.push(Commitment {
                    id: c.id,
                    member: author,
                    quantity: *quantity,
                    solidarity_percent: *solidarity_percent,
                    base: 0,
                    surcharge: 0,
                    discount_requested: 0,
                    discount_granted: 0,
                    due: 0,
                    savings: 0,
                    paid: None,
                    picked_up: None,
                });
                r.recompute(target, min, reference);
                Ok(())
            }
            Record::PurchaseBid(record::PurchaseBid {
                purchase,
                round,
                supplier,
                local,
                unit_price,
                min_quantity,
            }) => {
                let p = self.purchase_mut(graph, c, purchase)?;
                let k = *round as u32;
                p.check_window(k, c.time)?;
                let (target, min, reference) =
                    (p.target_quantity, p.min_participants, p.reference_price);
                let deadline = p.deadline_of(k);
                let r = p
                    .rounds
                    .entry(k)
                    .or_insert_with(|| PurchaseRound::empty(k, deadline));
                if r.ordered.is_some() {
                    return Err(Refusal::new(
                        RejectReason::AlreadySettled,
                        format!("round {k} is already ordered"),
                    ));
                }
                r.bids.push(Bid {
                    id: c.id,
                    recorded_by: author,
                    supplier: supplier.clone(),
                    local: *local,
                    unit_price: *unit_price,
                    min_quantity: *min_quantity,
                });
                r.recompute(target, min, reference);
                Ok(())
            }
            Record::PurchaseStep(record::RoundStep {
                purchase,
                round,
                step,
            }) => {
                let p = self.purchase_mut(graph, c, purchase)?;
                let k = *round as u32;
                if p.coordinator != author {
                    return Err(Refusal::new(
                        RejectReason::NotAllowed,
                        "only the coordinator orders and delivers".into(),
                    ));
                }
                if k >= p.round_count() {
                    return Err(Refusal::new(
                        RejectReason::RoundNotOpen,
                        format!("a one-off purchase has only round 0, not round {k}"),
                    ));
                }
                let (target, min_participants, unit) =
                    (p.target_quantity, p.min_participants, p.unit.clone());
                // A refused record changes nothing: a round no counted record named yet is
                // not created here, only read as empty.
                let Some(r) = p.rounds.get_mut(&k) else {
                    return Err(match step {
                        PurchaseStep::Ordered => Refusal::new(
                            RejectReason::NotFunded,
                            format!(
                                "round {k} has 0 of {target} {unit} from 0 of \
                                 {min_participants} participants"
                            ),
                        ),
                        PurchaseStep::Delivered => Refusal::new(
                            RejectReason::NotOrdered,
                            format!("round {k} is not ordered"),
                        ),
                    });
                };
                match step {
                    PurchaseStep::Ordered => {
                        if r.ordered.is_some() {
                            return Err(Refusal::new(
                                RejectReason::AlreadySettled,
                                format!("round {k} is already ordered"),
                            ));
                        }
                        if !r.funded {
                            return Err(Refusal::new(
                                RejectReason::NotFunded,
                                format!(
                                    "round {k} has {} of {target} {unit} from {} of \
                                     {min_participants} participants",
                                    r.committed_quantity, r.participants
                                ),
                            ));
                        }
                        let Some(w) = r.winner() else {
                            return Err(Refusal::new(
                                RejectReason::NoWinningBid,
                                format!(
                                    "no bid in round {k} sells {} {unit}",
                                    r.committed_quantity
                                ),
                            ));
                        };
                        let local = w.local;
                        r.ordered = Some(c.id);
                        let (spent, saved) = (r.base_total, r.savings);
                        p.total_spending = p.total_spending.saturating_add(spent);
                        p.total_savings = p.total_savings.saturating_add(saved);
                        if local {
                            p.local_spending = p.local_spending.saturating_add(spent);
                        }
                        Ok(())
                    }
                    PurchaseStep::Delivered => {
                        if r.ordered.is_none() {
                            return Err(Refusal::new(
                                RejectReason::NotOrdered,
                                format!("round {k} is not ordered"),
                            ));
                        }
                        if r.delivered.is_some() {
                            return Err(Refusal::new(
                                RejectReason::AlreadySettled,
                                format!("round {k} is already delivered"),
                            ));
                        }
                        r.delivered = Some(c.id);
                        Ok(())
                    }
                }
            }
            Record::PurchaseMark(record::RoundMark {
                purchase,
                round,
                member,
                mark,
            }) => {
                let p = self.purchase_mut(graph, c, purchase)?;
                let k = *round as u32;
                let coordinator = p.coordinator == author;
                match mark {
                    PurchaseMark::Paid if !coordinator => {
                        return Err(Refusal::new(
                            RejectReason::NotAllowed,
                            "only the coordinator marks payments".into(),
                        ))
                    }
                    PurchaseMark::PickedUp if !coordinator && *member != author => {
                        return Err(Refusal::new(
                            RejectReason::NotAllowed,
                            "only the coordinator or the participant marks a pickup".into(),
                        ))
                    }
                    _ => {}
                }
                let not_participant = || {
                    Refusal::new(
                        RejectReason::NotAParticipant,
                        format!("{} has no commitment in round {k}", member.short()),
                    )
                };
                let r = p.rounds.get_mut(&k).ok_or_else(not_participant)?;
                let (ordered, delivered) = (r.ordered.is_some(), r.delivered.is_some());
                let cm = r
                    .commitments
                    .iter_mut()
                    .find(|x| x.member == *member)
                    .ok_or_else(not_participant)?;
                let slot = match mark {
                    PurchaseMark::Paid if !ordered => {
                        return Err(Refusal::new(
                            RejectReason::NotOrdered,
                            format!("round {k} is not ordered"),
                        ))
                    }
                    PurchaseMark::PickedUp if !delivered => {
                        return Err(Refusal::new(
                            RejectReason::NotDelivered,
                            format!("round {k} is not delivered"),
                        ))
                    }
                    PurchaseMark::Paid => &mut cm.paid,
                    PurchaseMark::PickedUp => &mut cm.picked_up,
                };
                if slot.is_some() {
                    return Err(Refusal::new(
                        RejectReason::Redundant,
                        format!("{} is already marked {mark}", member.short()),
                    ));
                }
                *slot = Some(c.id);
                Ok(())
            }
            _ => Ok(()),
        }
    }

    /// The purchase a record refers to; it must be in the record's causal past.
    fn purchase_mut(
        &mut self,
        graph: Graph<'_>,
        c: &Ctx<'_>,
        id: &RecordId,
    ) -> Result<&mut Purchase, Refusal> {
        if !self.precedes(graph, id, c) {
            return Err(Refusal::new(
                RejectReason::UnknownReference,
                format!("purchase {} is not in the record's past", id.short()),
            ));
        }
        self.state.purchases.get_mut(id).ok_or(Refusal::new(
            RejectReason::UnknownReference,
            format!("{} is not a counted purchase", id.short()),
        ))
    }

    /// For the author's dry run: copies into `state` the purchase `record` refers to.
    pub(super) fn copy_purchase_for(&self, record: &Record, state: &mut State) {
        let id = match record {
            Record::PurchaseCommit(record::PurchaseCommit { purchase, .. })
            | Record::PurchaseBid(record::PurchaseBid { purchase, .. })
            | Record::PurchaseStep(record::RoundStep { purchase, .. })
            | Record::PurchaseMark(record::RoundMark { purchase, .. }) => purchase,
            _ => return,
        };
        if let Some(p) = self.state.purchases.get(id) {
            state.purchases.insert(*id, p.clone());
        }
    }
}
