//! Relief records: a member's request to a relief fund, with its reason sealed to the
//! stewards, and the stewards' approvals. Rules: docs/RULES.md, "Relief".

use super::layout::{record_layout, Blob, Codec, Field, Fields, Raw, RecordError, Word, MONEY};
use super::Urgency;
use crate::ids::RecordId;

/// A sealed reason: at most [`crate::seal::MAX_SEALED_BYTES`], with a readable header.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Sealed;

impl Codec<Vec<u8>> for Sealed {
    fn put(&self, name: &'static str, v: &Vec<u8>, out: &mut Vec<(&'static str, Field)>) {
        Blob(crate::seal::MAX_SEALED_BYTES).put(name, v, out)
    }
    fn take(&self, f: &Fields<'_>, name: &'static str) -> Result<Vec<u8>, RecordError> {
        let b = Blob(crate::seal::MAX_SEALED_BYTES).take(f, name)?;
        crate::seal::recipients(&b).map_err(|e| RecordError::Invalid {
            field: name,
            reason: format!("field {name:?}: {e}"),
        })?;
        Ok(b)
    }
}

record_layout! {
    /// A member asks a relief fund for help; they are the beneficiary.
    "relief_request" => pub struct ReliefRequest {
        /// The relief fund (a pool flagged relief).
        fund: RecordId = Raw,
        /// Minor units, 1..=[`super::MAX_MONEY`].
        amount: i64 = MONEY,
        /// Urgency.
        urgency: Urgency = Word,
        /// The reason, sealed to the stewards ([`crate::seal`]).
        #[serde(with = "super::layout::hex_vec")]
        reason: Vec<u8> = Sealed,
    }
}

record_layout! {
    /// A steward approves a relief request.
    "relief_approve" => pub struct ReliefApprove {
        /// The request.
        request: RecordId = Raw,
    }
}

impl ReliefRequest {
    pub(super) fn summary(&self) -> String {
        format!(
            "asked fund {} for {} ({} urgency)",
            self.fund.short(),
            super::money(self.amount),
            self.urgency
        )
    }
}

impl ReliefApprove {
    pub(super) fn summary(&self) -> String {
        format!("approved relief {}", self.request.short())
    }
}
