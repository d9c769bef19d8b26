//! Collective-purchasing records: a purchase, commitments, suppliers' bids, the
//! coordinator's steps and each participant's payment and pickup. Rules: docs/RULES.md,
//! "Collective purchasing".

use super::layout::{record_layout, text_enum, Currency, Flag, Int, Raw, Text, Word};
use crate::ids::{MemberId, RecordId};

/// Whether a collective purchase repeats.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, serde::Serialize, serde::Deserialize,
)]
#[serde(rename_all = "snake_case")]
pub enum Recurrence {
    /// One round only.
    None,
    /// A new round every calendar month (round k+1's deadline is one month after round k's).
    Monthly,
}
text_enum!(Recurrence { None = "none", Monthly = "monthly" });

/// A coordinator's step in a purchase round.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, serde::Serialize, serde::Deserialize,
)]
#[serde(rename_all = "snake_case")]
pub enum PurchaseStep {
    /// The order was placed with the winning bid's supplier.
    Ordered,
    /// The goods arrived.
    Delivered,
}
text_enum!(PurchaseStep { Ordered = "ordered", Delivered = "delivered" });

/// What is marked for one participant of a purchase round.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, serde::Serialize, serde::Deserialize,
)]
#[serde(rename_all = "snake_case")]
pub enum PurchaseMark {
    /// The participant paid their amount due.
    Paid,
    /// The participant picked up their share.
    PickedUp,
}
text_enum!(PurchaseMark { Paid = "paid", PickedUp = "picked_up" });

/// The most rounds a recurring purchase has (ten years of monthly rounds).
pub const MAX_PURCHASE_ROUNDS: i64 = 120;
/// The largest quantity in a purchase record.
pub const MAX_PURCHASE_QUANTITY: i64 = 1_000_000;
/// The largest unit price in a purchase record, in minor units (one million major units).
pub const MAX_UNIT_PRICE: i64 = 100_000_000;
/// The latest deadline a purchase may name: 2200-01-01 00:00 UTC.
pub const MAX_DEADLINE: i64 = 7_258_118_400;

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
    pub(super) fn summary(&self) -> String {
        format!(
            "purchase {:?} ({} {}, {})",
            self.item, self.target_quantity, self.unit, self.recurrence
        )
    }
}

impl PurchaseCommit {
    pub(super) fn summary(&self) -> String {
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
    pub(super) fn summary(&self) -> String {
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
    pub(super) fn summary(&self) -> String {
        format!(
            "{} round {} {}",
            self.purchase.short(),
            self.round,
            self.step
        )
    }
}

impl RoundMark {
    pub(super) fn summary(&self) -> String {
        format!(
            "{} {} in {} round {}",
            self.member.short(),
            self.mark,
            self.purchase.short(),
            self.round
        )
    }
}
