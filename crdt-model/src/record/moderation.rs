//! Moderation records: abuse reports and hiding. Rules: docs/RULES.md, "Moderation".

use super::layout::{record_layout, text_enum, Raw, Text, Word};
use crate::ids::RecordId;

/// What a report points at.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, serde::Serialize, serde::Deserialize,
)]
#[serde(rename_all = "snake_case")]
pub enum ReportTarget {
    /// A record, by its id.
    Record,
    /// A member, by their id.
    Member,
}
text_enum!(ReportTarget { Record = "record", Member = "member" });

record_layout! {
    /// An abuse report for moderators.
    "report" => pub struct Report {
        /// What kind of thing is reported.
        target_kind: ReportTarget = Word,
        /// The record id or member id bytes.
        #[serde(with = "super::layout::hex_bytes")]
        target: [u8; 32] = Raw,
        /// Why.
        reason: String = Text(3, 500),
    }
}

record_layout! {
    /// A moderator hides a record from listings (it stays in the ledger for audit).
    "hide" => pub struct Hide {
        /// The record.
        record: RecordId = Raw,
        /// Why.
        reason: String = Text(3, 500),
    }
}

impl Report {
    pub(super) fn summary(&self) -> String {
        format!(
            "reported {} {} ({})",
            self.target_kind,
            hex::encode(&self.target[..6]),
            self.reason
        )
    }
}

impl Hide {
    pub(super) fn summary(&self) -> String {
        format!("hid {} ({})", self.record.short(), self.reason)
    }
}
