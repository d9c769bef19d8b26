//! Collective-purchasing records: a purchase, commitments, suppliers' bids, the
//! coordinator's steps and each participant's payment and pickup. Rules: docs/RULES.md,
//! "Collective purchasing".

use super::layout::{record_layout, Currency, Flag, Int, Raw, Text, Word};
use crate::ids::{MemberId, RecordId};
use crate::terms::{
    PurchaseMark, PurchaseStep, Recurrence, MAX_DEADLINE, MAX_PURCHASE_QUANTITY,
    MAX_PURCHASE_ROUNDS, MAX_UNIT_PRICE,
};

const ROUND: Int = Int(0, MAX_PURCHASE_ROUNDS - 1);
const QUANTITY: Int = Int(1, MAX_PURCHASE_QUANTITY);
const PRICE: Int = Int(0, MAX_UNIT_PRICE);

record_layout! {
    /// A collective purchase proposed by its coordinator (the author).
    "purchase" => pub struct Purchase {
        /// What is bought, 3..=100 characters.
        item: String = Text(3, 100),
        /// The unit quantities count in (`kg`, `litre`, ...), 1..=16 characters.
        unit: String = Text(1, 16),
        /// Quantity that funds the purchase, 1..=1,000,000.
        target_quantity: i64 = QUANTITY,
        /// Reference (retail) price of one unit, in minor units, 0..=100,000,000.
        reference_price: i64 = PRICE,
        /// ISO 4217-style code: three upper-case ASCII letters.
        currency: String = Currency,
        /// Participants needed to fund it, 1..=10,000.
        min_participants: i64 = Int(1, 10_000),
        /// Deadline of round 0, Unix seconds (before 2200-01-01).
        deadline: i64 = Int(1, MAX_DEADLINE),
        /// One round, or monthly rounds.
        recurrence: Recurrence = Word,
    }
}

record_layout! {
    /// A member commits to buy a quantity in one round of a purchase.
    "purchase_commit" => pub struct PurchaseCommit {
        /// The purchase.
        purchase: RecordId = Raw,
        /// The round, 0..MAX_PURCHASE_ROUNDS.
        round: i64 = ROUND,
        /// Quantity, 1..=1,000,000.
        quantity: i64 = QUANTITY,
        /// Solidarity: 0 plain, +N pays N % more, -N asks for an N % discount (-100..=100).
        solidarity_percent: i64 = Int(-100, 100),
    }
}

record_layout! {
    /// A supplier's bid, recorded openly by any member.
    "purchase_bid" => pub struct PurchaseBid {
        /// The purchase.
        purchase: RecordId = Raw,
        /// The round, 0..MAX_PURCHASE_ROUNDS.
        round: i64 = ROUND,
        /// Supplier name, 1..=100 characters.
        supplier: String = Text(1, 100),
        /// Whether the supplier is local (layout: integer 0 or 1).
        local: bool = Flag,
        /// Price of one unit, in minor units, 0..=100,000,000.
        unit_price: i64 = PRICE,
        /// The least quantity the supplier sells at that price, 1..=1,000,000.
        min_quantity: i64 = QUANTITY,
    }
}

record_layout! {
    /// The coordinator marks a round ordered or delivered.
    "purchase_step" => pub struct RoundStep {
        /// The purchase.
        purchase: RecordId = Raw,
        /// The round.
        round: i64 = ROUND,
        /// Which step.
        step: PurchaseStep = Word,
    }
}

record_layout! {
    /// Payment or pickup of one participant in a round.
    "purchase_mark" => pub struct RoundMark {
        /// The purchase.
        purchase: RecordId = Raw,
        /// The round.
        round: i64 = ROUND,
        /// The participant.
        member: MemberId = Raw,
        /// What is marked.
        mark: PurchaseMark = Word,
    }
}

impl Purchase {
    pub(crate) fn summary(&self) -> String {
        format!(
            "purchase {:?} ({} {}, {})",
            self.item, self.target_quantity, self.unit, self.recurrence
        )
    }
}

impl PurchaseCommit {
    pub(crate) fn summary(&self) -> String {
        format!(
            "committed {} to {} round {} (solidarity {:+}%)",
            self.quantity,
            self.purchase.short(),
            self.round,
            self.solidarity_percent
        )
    }
}

impl PurchaseBid {
    pub(crate) fn summary(&self) -> String {
        format!(
            "bid by {:?} at {} on {} round {}",
            self.supplier,
            self.unit_price,
            self.purchase.short(),
            self.round
        )
    }
}

impl RoundStep {
    pub(crate) fn summary(&self) -> String {
        format!(
            "{} round {} {}",
            self.purchase.short(),
            self.round,
            self.step
        )
    }
}

impl RoundMark {
    pub(crate) fn summary(&self) -> String {
        format!(
            "{} {} in {} round {}",
            self.member.short(),
            self.mark,
            self.purchase.short(),
            self.round
        )
    }
}

// ---- Derivation rules (docs/RULES.md) ----

use super::Record;
use crate::envelope::{Refusal, RejectReason};
use crate::fold::{Ctx, Derived, Past, Rule};
use crate::state::{self, *};
use std::collections::BTreeMap;
impl Derived {
    /// The purchase a record refers to; it must be in the record's causal past.
    fn purchase_mut(
        &mut self,
        graph: Past<'_>,
        c: &Ctx<'_>,
        id: &RecordId,
    ) -> Result<&mut state::Purchase, Refusal> {
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
    pub(crate) fn copy_purchase_for(&self, record: &Record, state: &mut State) {
        let id = match record {
            Record::PurchaseCommit(PurchaseCommit { purchase, .. })
            | Record::PurchaseBid(PurchaseBid { purchase, .. })
            | Record::PurchaseStep(RoundStep { purchase, .. })
            | Record::PurchaseMark(RoundMark { purchase, .. }) => purchase,
            _ => return,
        };
        if let Some(p) = self.state.purchases.get(id) {
            state.purchases.insert(*id, p.clone());
        }
    }
}

impl Rule for Purchase {
    fn apply(
        &self,
        d: &mut Derived,
        _graph: Past<'_>,
        c: &Ctx<'_>,
        author: MemberId,
    ) -> Result<(), Refusal> {
        let Purchase {
            item,
            unit,
            target_quantity,
            reference_price,
            currency,
            min_participants,
            deadline,
            recurrence,
        } = self;
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
        d.state.purchases.insert(
            c.id,
            state::Purchase {
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
}

impl Rule for PurchaseCommit {
    fn apply(
        &self,
        d: &mut Derived,
        graph: Past<'_>,
        c: &Ctx<'_>,
        author: MemberId,
    ) -> Result<(), Refusal> {
        let PurchaseCommit {
            purchase,
            round,
            quantity,
            solidarity_percent,
        } = self;
        let p = d.purchase_mut(graph, c, purchase)?;
        let k = *round as u32;
        p.check_window(k, c.time)?;
        let (target, min, reference) = (p.target_quantity, p.min_participants, p.reference_price);
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
}

impl Rule for PurchaseBid {
    fn apply(
        &self,
        d: &mut Derived,
        graph: Past<'_>,
        c: &Ctx<'_>,
        author: MemberId,
    ) -> Result<(), Refusal> {
        let PurchaseBid {
            purchase,
            round,
            supplier,
            local,
            unit_price,
            min_quantity,
        } = self;
        let p = d.purchase_mut(graph, c, purchase)?;
        let k = *round as u32;
        p.check_window(k, c.time)?;
        let (target, min, reference) = (p.target_quantity, p.min_participants, p.reference_price);
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
}

impl Rule for RoundStep {
    fn apply(
        &self,
        d: &mut Derived,
        graph: Past<'_>,
        c: &Ctx<'_>,
        author: MemberId,
    ) -> Result<(), Refusal> {
        let RoundStep {
            purchase,
            round,
            step,
        } = self;
        let p = d.purchase_mut(graph, c, purchase)?;
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
                        format!("no bid in round {k} sells {} {unit}", r.committed_quantity),
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
}

impl Rule for RoundMark {
    fn apply(
        &self,
        d: &mut Derived,
        graph: Past<'_>,
        c: &Ctx<'_>,
        author: MemberId,
    ) -> Result<(), Refusal> {
        let RoundMark {
            purchase,
            round,
            member,
            mark,
        } = self;
        let p = d.purchase_mut(graph, c, purchase)?;
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
}
