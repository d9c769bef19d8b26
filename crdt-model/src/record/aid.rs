//! Mutual-aid records: requests, offers, acceptance, confirmation by both parties, and
//! cancellation. Rules: docs/RULES.md, "Mutual aid".

use super::layout::{record_layout, text_enum, Date, Int, Opt, Raw, Text, Word};
use crate::ids::{Day, RecordId};

/// How urgent a mutual-aid (or relief) request is.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, serde::Serialize, serde::Deserialize,
)]
#[serde(rename_all = "snake_case")]
pub enum Urgency {
    /// Whenever convenient.
    Low,
    /// Soon.
    Medium,
    /// Now.
    High,
}
text_enum!(Urgency { Low = "low", Medium = "medium", High = "high" });

record_layout! {
    /// A mutual-aid request.
    "aid_request" => pub struct AidRequest {
        /// Category, one of the `aid_categories` parameter.
        category: String = Text(1, 32),
        /// 3..=100 characters.
        title: String = Text(3, 100),
        /// 10..=500 characters.
        description: String = Text(10, 500),
        /// Urgency.
        urgency: Urgency = Word,
        /// Optional date by which help is needed.
        needed_by: Option<Day> = Opt(Date),
        /// Optional coarse location.
        location: Option<String> = Opt(Text(1, 100)),
    }
}

record_layout! {
    /// An offer of help on a request.
    "aid_offer" => pub struct AidOffer {
        /// The request.
        request: RecordId = Raw,
        /// 10..=500 characters.
        message: String = Text(10, 500),
        /// Availability text.
        availability: String = Text(1, 200),
    }
}

record_layout! {
    /// The requester accepts one offer.
    "aid_accept" => pub struct AidAccept {
        /// The offer.
        offer: RecordId = Raw,
    }
}

record_layout! {
    /// One party confirms the aid was given.
    "aid_confirm" => pub struct AidConfirm {
        /// The request.
        request: RecordId = Raw,
        /// Optional rating 1..=5 of the other party.
        rating: Option<i64> = Opt(Int(1, 5)),
        /// Optional feedback.
        feedback: Option<String> = Opt(Text(1, 500)),
    }
}

record_layout! {
    /// The requester cancels their request.
    "aid_cancel" => pub struct AidCancel {
        /// The request.
        request: RecordId = Raw,
    }
}

impl AidRequest {
    pub(super) fn summary(&self) -> String {
        format!("aid request {:?} ({})", self.title, self.category)
    }
}

impl AidOffer {
    pub(super) fn summary(&self) -> String {
        format!("offered help on {}", self.request.short())
    }
}

impl AidAccept {
    pub(super) fn summary(&self) -> String {
        format!("accepted offer {}", self.offer.short())
    }
}

impl AidConfirm {
    pub(super) fn summary(&self) -> String {
        format!("confirmed aid {}", self.request.short())
    }
}

impl AidCancel {
    pub(super) fn summary(&self) -> String {
        format!("cancelled aid {}", self.request.short())
    }
}
