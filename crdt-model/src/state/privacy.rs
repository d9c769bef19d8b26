//! Privacy (docs/RULES.md R10): each member's signed visibility setting, and who may see whose balance and
//! history.
//!
//! The ledger itself is shared (every replica must verify it); visibility decides what the
//! CLI and exports *show* of another member. The rule is one function, [`State::can_see`]:
//!
//! | setting   | who sees the member's balance and history           |
//! |-----------|-----------------------------------------------------|
//! | `public`  | anyone, members or not (exports included)           |
//! | `members` | admitted members (the default: no setting written)  |
//! | `private` | the member alone                                    |
//!
//! A record belongs to the history of its *subjects*: an hour attestation, its confirmation
//! or decline belong to provider and receiver; an allocation to its author; an aid
//! confirmation (which carries a rating) to requester and helper. [`Viewer::sees_entry`]
//! shows such a record in full only to a viewer who is one of its subjects or may see all
//! of them. Every other kind (membership, proposals, aid requests and offers, reports,
//! moderation, visibility settings) is community business and always shown. Aggregates
//! (totals, metrics) are always shown.

use std::collections::HashMap;

use crate::ids::{MemberId, RecordId};
use crate::terms::{Kind, Visibility};

use super::{LogEntry, State};

/// Whether records of `kind` belong to some member's balance or history (and so are shown
/// only to those who may see their subjects). An exhaustive match: a new kind cannot be
/// added without deciding (docs/RULES.md, "Privacy").
pub fn is_history(kind: Kind) -> bool {
    match kind {
        Kind::Attest | Kind::Confirm | Kind::Decline | Kind::Allocate | Kind::AidConfirm => true,
        Kind::Genesis
        | Kind::Join
        | Kind::Device
        | Kind::DeviceRevoke
        | Kind::Vouch
        | Kind::Remove
        | Kind::Rename
        | Kind::Proposal
        | Kind::Close
        | Kind::AidRequest
        | Kind::AidOffer
        | Kind::AidAccept
        | Kind::AidCancel
        | Kind::Report
        | Kind::Hide
        | Kind::Decision
        | Kind::Vote
        | Kind::Tally
        | Kind::Visibility
        | Kind::Purchase
        | Kind::PurchaseCommit
        | Kind::PurchaseBid
        | Kind::PurchaseStep
        | Kind::PurchaseMark
        | Kind::Pool
        | Kind::Contribution
        | Kind::ContributionConfirm
        | Kind::Application
        | Kind::Disbursement
        | Kind::Return
        | Kind::ReliefRequest
        | Kind::ReliefApprove => false,
    }
}

impl State {
    /// A member's visibility setting (`members` for anyone who never wrote one, or who is
    /// not in the ledger).
    pub fn visibility_of(&self, member: &MemberId) -> Visibility {
        self.members
            .get(member)
            .map_or(Visibility::default(), |m| m.visibility)
    }

    /// Whether `viewer` (`None`: someone who is not a member, e.g. a reader of an export)
    /// may see `subject`'s balance and history. A member always sees their own.
    pub fn can_see(&self, viewer: Option<&MemberId>, subject: &MemberId) -> bool {
        if viewer == Some(subject) {
            return true;
        }
        match self.visibility_of(subject) {
            Visibility::Public => true,
            Visibility::Members => viewer.is_some_and(|v| self.is_admitted(v)),
            Visibility::Private => false,
        }
    }

    /// What `viewer` may see of this state's records: indices built once, for listings.
    pub fn viewer(&self, viewer: Option<MemberId>) -> Viewer<'_> {
        let mut parties = HashMap::new();
        for a in self.attestations.values() {
            let both = vec![a.provider, a.receiver];
            if let Some(s) = a.settled_by {
                parties.insert(s, both.clone());
            }
            parties.insert(a.id, both);
        }
        for r in self.aid_requests.values() {
            let both: Vec<MemberId> = std::iter::once(r.requester).chain(r.helper).collect();
            for c in [&r.requester_confirmation, &r.helper_confirmation]
                .into_iter()
                .flatten()
            {
                parties.insert(c.id, both.clone());
            }
        }
        Viewer {
            state: self,
            viewer,
            parties,
        }
    }
}

impl State {
    /// [`State::viewer`] for a few log entries only (a page of the ledger): the same
    /// answers for those entries, but the parties are looked up for them alone — an
    /// attestation by id, a settlement or aid confirmation through the indexes of what
    /// settled or confirmed what — instead of indexing every record.
    pub fn viewer_for<'a>(&'a self, viewer: Option<MemberId>, entries: &[&LogEntry]) -> Viewer<'a> {
        let mut parties = HashMap::new();
        let mut settlements = std::collections::HashSet::new();
        let mut aid_confirmations = std::collections::HashSet::new();
        for e in entries {
            match e.kind {
                Kind::Attest => {
                    if let Some(a) = self.attestations.get(&e.id) {
                        parties.insert(a.id, vec![a.provider, a.receiver]);
                    }
                }
                Kind::Confirm | Kind::Decline => {
                    settlements.insert(e.id);
                }
                Kind::AidConfirm => {
                    aid_confirmations.insert(e.id);
                }
                _ => {}
            }
        }
        // A settlement's attestation from the settlement index, not a pass over them all.
        for s in settlements {
            let settled = self.indexes.settled(&s);
            if let Some(a) = settled.and_then(|id| self.attestations.get(id)) {
                parties.insert(s, vec![a.provider, a.receiver]);
            }
        }
        for c in aid_confirmations {
            let confirmed = self.indexes.confirmed_request(&c);
            if let Some(r) = confirmed.and_then(|id| self.aid_requests.get(id)) {
                parties.insert(c, std::iter::once(r.requester).chain(r.helper).collect());
            }
        }
        Viewer {
            state: self,
            viewer,
            parties,
        }
    }
}

/// One viewer's window on a state (see the module docs for the rule).
#[derive(Debug)]
pub struct Viewer<'a> {
    state: &'a State,
    viewer: Option<MemberId>,
    /// Counted history records naming two parties, by record id.
    parties: HashMap<RecordId, Vec<MemberId>>,
}

impl Viewer<'_> {
    /// The viewer.
    pub fn viewer(&self) -> Option<&MemberId> {
        self.viewer.as_ref()
    }

    /// Whether the viewer may see this member's balance and history.
    pub fn sees_member(&self, subject: &MemberId) -> bool {
        self.state.can_see(self.viewer.as_ref(), subject)
    }

    /// The members whose history a record belongs to: empty for community records; `None`
    /// when the record belongs to a history whose other party the state cannot name (a
    /// refused attestation, confirmation or aid confirmation), which only its author sees.
    pub fn subjects(&self, e: &LogEntry) -> Option<Vec<MemberId>> {
        if !is_history(e.kind) {
            return Some(Vec::new());
        }
        let Some(author) = e.member else {
            // A device that never certified a member wrote it: nobody's history.
            return Some(Vec::new());
        };
        match e.kind {
            Kind::Allocate => Some(vec![author]),
            _ => self.parties.get(&e.id).cloned(),
        }
    }

    /// Whether the viewer sees a record in full (otherwise only its position, id, kind,
    /// time and status: that it exists, not whose or what).
    pub fn sees_entry(&self, e: &LogEntry) -> bool {
        match self.subjects(e) {
            Some(subjects) => {
                subjects.iter().any(|s| Some(s) == self.viewer.as_ref())
                    || subjects.iter().all(|s| self.sees_member(s))
            }
            None => e.member.is_some() && e.member == self.viewer,
        }
    }
}
