//! Support Point records: proposals, their closing, and allocations. Rules: docs/RULES.md,
//! "Support Points".

use super::layout::{record_layout, text_enum, Int, Raw, Text, Word};
use crate::ids::{Points, RecordId};

/// The outcome with which a proposal closes.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, serde::Serialize, serde::Deserialize,
)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    /// The proposal was carried out.
    Delivered,
    /// Withdrawn by its proposer.
    Cancelled,
    /// Turned down.
    Rejected,
    /// Ran out of time.
    Expired,
}
text_enum!(Outcome { Delivered = "delivered", Cancelled = "cancelled", Rejected = "rejected", Expired = "expired" });

record_layout! {
    /// A proposal members can support with SP.
    "proposal" => pub struct Proposal {
        /// Title.
        title: String = Text(3, 100),
        /// Description.
        description: String = Text(0, 2000),
    }
}

record_layout! {
    /// The proposer closes their proposal; SP locked on it return.
    "close" => pub struct Close {
        /// The proposal.
        proposal: RecordId = Raw,
        /// How it ended.
        outcome: Outcome = Word,
    }
}

record_layout! {
    /// Support Points locked on a proposal.
    "allocate" => pub struct Allocate {
        /// The proposal.
        proposal: RecordId = Raw,
        /// How many points, 1..=1,000,000.
        points: Points = Int(1, 1_000_000),
    }
}

impl Proposal {
    pub(super) fn summary(&self) -> String {
        format!("proposal {:?}", self.title)
    }
}

impl Close {
    pub(super) fn summary(&self) -> String {
        format!("closed {} as {}", self.proposal.short(), self.outcome)
    }
}

impl Allocate {
    pub(super) fn summary(&self) -> String {
        format!("{} SP to {}", self.points.0, self.proposal.short())
    }
}
