//! Time-bank records: hour attestations and their confirmation or decline. Rules:
//! docs/RULES.md, "Time bank".

use super::layout::{record_layout, Date, Int, Raw, Text};
use crate::ids::{Day, MemberId, Minutes, RecordId};

record_layout! {
    /// An hour attestation, written by the provider.
    "attest" => pub struct Attest {
        /// Who received the service.
        to: MemberId = Raw,
        /// How long, 1..=1440 minutes.
        minutes: Minutes = Int(1, 1440),
        /// What was done.
        service: String = Text(1, 200),
        /// Category (free text, 1..=32 chars).
        category: String = Text(1, 32),
        /// The day of service.
        date: Day = Date,
    }
}

record_layout! {
    /// The receiver confirms an attestation.
    "confirm" => pub struct Confirm {
        /// The attestation.
        attestation: RecordId = Raw,
    }
}

record_layout! {
    /// The receiver declines an attestation.
    "decline" => pub struct Decline {
        /// The attestation.
        attestation: RecordId = Raw,
    }
}

impl Attest {
    pub(super) fn summary(&self) -> String {
        format!(
            "{} min of {:?} to {} on {}",
            self.minutes.0,
            self.service,
            self.to.short(),
            self.date
        )
    }
}

impl Confirm {
    pub(super) fn summary(&self) -> String {
        format!("confirmed {}", self.attestation.short())
    }
}

impl Decline {
    pub(super) fn summary(&self) -> String {
        format!("declined {}", self.attestation.short())
    }
}
