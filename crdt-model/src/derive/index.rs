//! Keeping the state's read indexes ([`crate::state::Indexes`]) current during the fold:
//! after a record counts, the records whose indexed status it may have changed — itself,
//! and the attestation, aid request, decision, relief request or contribution it names —
//! are brought up to date. The same entries as [`crate::state::Indexes::build`] gives for
//! the finished state (tested in `tests/model/indexes.rs`).

use crate::fold::Derived;
use crate::ids::RecordId;
use crate::record::{self, Record};

impl Derived {
    /// Updates the indexes for `record` (id `id`), which just counted.
    pub(super) fn index_counted(&mut self, id: &RecordId, record: &Record) {
        let named = match record {
            Record::Confirm(record::Confirm { attestation })
            | Record::Decline(record::Decline { attestation }) => Some(*attestation),
            Record::AidOffer(record::AidOffer { request, .. })
            | Record::AidConfirm(record::AidConfirm { request, .. })
            | Record::AidCancel(record::AidCancel { request }) => Some(*request),
            Record::AidAccept(record::AidAccept { offer }) => self.fold.offers.get(offer).copied(),
            Record::Vote(record::Vote { decision, .. })
            | Record::Tally(record::Tally { decision }) => Some(*decision),
            Record::ReliefApprove(record::ReliefApprove { request }) => Some(*request),
            Record::ContributionConfirm(record::ContributionConfirm { contribution }) => {
                Some(*contribution)
            }
            _ => None,
        };
        // The record's own id is an entry of the indexed maps only for the kinds that
        // create one (each keyed by the id of the record that made it): looking it up in
        // all five maps for every other record cost five B-tree searches of maps that grow
        // with the ledger (a sixteenth of authoring's cost at 1M changes).
        let creates = matches!(
            record,
            Record::Attest(_)
                | Record::AidRequest(_)
                | Record::Decision(_)
                | Record::ReliefRequest(_)
                | Record::Contribution(_)
        );
        // Taken out for the update, which reads the rest of the state.
        let mut ix = std::mem::take(&mut self.state.indexes);
        for touched in creates.then_some(*id).into_iter().chain(named) {
            ix.touch(&self.state, &touched);
        }
        if matches!(record, Record::Tally(_)) {
            ix.tallied(&self.state);
        }
        self.state.indexes = ix;
    }
}
