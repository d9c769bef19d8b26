//! Moderation records: abuse reports and hiding. Rules: docs/RULES.md, "Moderation".

use super::layout::{record_layout, Raw, Text, Word};
use crate::ids::RecordId;
use crate::terms::ReportTarget;

record_layout! {
    /// An abuse report for moderators.
    "report" => pub struct Report {
        /// What kind of thing is reported.
        target_kind: ReportTarget = Word,
        /// The record id or member id bytes.
        #[serde(with = "crate::ids::hex_bytes")]
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
    pub(crate) fn summary(&self) -> String {
        format!(
            "reported {} {} ({})",
            self.target_kind,
            hex::encode(&self.target[..6]),
            self.reason
        )
    }
}

impl Hide {
    pub(crate) fn summary(&self) -> String {
        format!("hid {} ({})", self.record.short(), self.reason)
    }
}

// ---- Derivation rules (docs/RULES.md) ----

use super::Role;
use crate::envelope::{Refusal, RejectReason};
use crate::fold::{Ctx, Derived, Past, Rule};
use crate::ids::MemberId;
use crate::state;

impl Rule for Report {
    fn apply(
        &self,
        d: &mut Derived,
        graph: Past<'_>,
        c: &Ctx<'_>,
        author: MemberId,
    ) -> Result<(), Refusal> {
        let Report {
            target_kind,
            target,
            reason,
        } = self;
        let known = match target_kind {
            ReportTarget::Member => d.state.members.contains_key(&MemberId(*target)),
            ReportTarget::Record => d.precedes(graph, &RecordId(*target), c),
        };
        if !known {
            return Err(Refusal::new(
                RejectReason::UnknownReference,
                format!("no such {target_kind}"),
            ));
        }
        d.state.reports.push(state::Report {
            id: c.id,
            reporter: author,
            target_kind: *target_kind,
            target: hex::encode(target),
            reason: reason.clone(),
        });
        Ok(())
    }
}

impl Rule for Hide {
    fn apply(
        &self,
        d: &mut Derived,
        graph: Past<'_>,
        c: &Ctx<'_>,
        author: MemberId,
    ) -> Result<(), Refusal> {
        let Hide { record, .. } = self;
        if !d.has_role(&author, Role::Moderator) {
            return Err(Refusal::new(
                RejectReason::NotAllowed,
                "only moderators hide records".into(),
            ));
        }
        if !d.precedes(graph, record, c) {
            return Err(Refusal::new(
                RejectReason::UnknownReference,
                "record is not in the moderation's past".into(),
            ));
        }
        d.state.hidden.entry(*record).or_insert(c.id);
        Ok(())
    }
}
