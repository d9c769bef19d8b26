//! The dry run of authoring: would a record, written now, count? It is folded on a copy of
//! the state that holds only what the record's rules read or write, so authoring costs the
//! same whatever the size of the ledger.

use std::collections::HashMap;

use crate::causal::Clock;
use crate::envelope::Refusal;
use crate::fold::{Ctx, Derived, Fold, GovFold};
use crate::graph::Graph;
use crate::ids::{DeviceId, MemberId, RecordId};
use crate::record::{self, Record, ReportTarget};
use crate::state::{AidHistory, Member, State};

/// The entries of `ids` in `map` (all of it when `ids` is `None`).
fn pick<V: Clone>(map: &HashMap<MemberId, V>, ids: Option<&[MemberId]>) -> HashMap<MemberId, V> {
    match ids {
        Some(ids) => ids
            .iter()
            .filter_map(|m| map.get(m).map(|v| (*m, v.clone())))
            .collect(),
        None => map.clone(),
    }
}

/// A member as the narrow copy holds them: everything but the lists of their mutual-aid
/// history (the requests completed and the ratings received), which grow with the ledger
/// and which no rule reads (the aid confirmation appends to them; the counts stay). Cloning
/// them for every write grew authoring's cost with the ledger.
fn trial_member(m: &Member) -> Member {
    Member {
        id: m.id,
        display_name: m.display_name.clone(),
        status: m.status,
        roles: m.roles.clone(),
        devices: m.devices.clone(),
        vouched_by: m.vouched_by.clone(),
        time: m.time.clone(),
        sp: m.sp.clone(),
        aid: AidHistory {
            given: m.aid.given,
            received: m.aid.received,
            ratings: Vec::new(),
            completed: Vec::new(),
        },
        visibility: m.visibility,
        recovered: m.recovered,
    }
}

impl Derived {
    /// Would `record`, written now, count? Folds it on a copy of the current state.
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn would_refuse(
        &self,
        graph: Graph<'_>,
        dev: u32,
        device: DeviceId,
        seq: u64,
        time: i64,
        record: &Record,
        clock: &[u32],
    ) -> Option<Refusal> {
        let ctx = Ctx {
            id: RecordId([0xff; 32]),
            dev,
            device,
            seq,
            time,
            clock: Clock::Dense(clock),
            excluded: false,
        };
        let run = |mut copy: Derived| copy.apply(graph, &ctx, record).err();
        let refusal = run(self.trial_copy(record, dev, true));
        debug_assert_eq!(
            refusal,
            run(self.trial_copy(record, dev, false)),
            "the dry run on the involved members decides as on all of them"
        );
        refusal
    }

    /// A copy holding only what `record`'s rules (authorization included) read or write,
    /// when written by device `dev`: the members involved and their fold entries, and the
    /// one attestation, proposal, request or offer it refers to. Keeps authoring cheap
    /// whatever the size of the ledger: members carry their history, so copying them all
    /// grew with it (and was most of the cost of writing a record).
    /// With `narrow` false, every member is copied (the reference the narrow copy is
    /// checked against in debug builds).
    fn trial_copy(&self, record: &Record, dev: u32, narrow: bool) -> Derived {
        let st = &self.state;
        let author = self.fold.device_member.get(&dev).copied();
        let involved = narrow
            .then(|| self.involved_members(record, author))
            .flatten();
        let members = match &involved {
            Some(ids) => ids
                .iter()
                .filter_map(|m| st.members.get(m).map(|v| (*m, trial_member(v))))
                .collect(),
            None => st.members.clone(),
        };
        // Only what the rules of `record` may read; everything else starts empty.
        let mut state = State {
            founder: st.founder,
            params: st.params.clone(),
            members,
            pools: st.pools.clone(),
            contributions: st.contributions.clone(),
            applications: st.applications.clone(),
            relief_requests: st.relief_requests.clone(),
            devices: st.devices.clone(),
            ..State::empty(st.community)
        };
        let device_member = match (&involved, author) {
            (Some(_), Some(m)) => HashMap::from([(dev, m)]),
            _ => self.fold.device_member.clone(),
        };
        let mut fold = Fold {
            genesis: self.fold.genesis,
            device_member,
            joins: pick(&self.fold.joins, involved.as_deref()),
            vouches: pick(&self.fold.vouches, involved.as_deref()),
            removals: pick(&self.fold.removals, involved.as_deref()),
            forked: self.fold.forked.clone(),
            revocations: self.fold.revocations.clone(),
            passed_revocations: Default::default(),
            revoked: self.fold.revoked.clone(),
            locked: HashMap::new(),
            offers: HashMap::new(),
            admission_threshold: pick(&self.fold.admission_threshold, involved.as_deref()),
            gov: GovFold {
                known_removals: self.fold.gov.known_removals.clone(),
                ..GovFold::default()
            },
        };
        let copy_proposal = |id: &RecordId, state: &mut State, fold: &mut Fold| {
            if let Some(p) = st.proposals.get(id) {
                state.proposals.insert(*id, p.clone());
            }
            for (k, v) in self.fold.locked.iter().filter(|((_, p), _)| p == id) {
                fold.locked.insert(*k, *v);
            }
        };
        let copy_request = |id: &RecordId, state: &mut State| {
            if let Some(r) = st.aid_requests.get(id) {
                state.aid_requests.insert(*id, r.clone());
            }
        };
        match record {
            Record::Confirm(record::Confirm { attestation })
            | Record::Decline(record::Decline { attestation }) => {
                if let Some(a) = st.attestations.get(attestation) {
                    state.attestations.insert(*attestation, a.clone());
                }
            }
            Record::Close(record::Close { proposal, .. })
            | Record::Allocate(record::Allocate { proposal, .. }) => {
                copy_proposal(proposal, &mut state, &mut fold)
            }
            Record::AidOffer(record::AidOffer { request, .. })
            | Record::AidConfirm(record::AidConfirm { request, .. })
            | Record::AidCancel(record::AidCancel { request }) => copy_request(request, &mut state),
            Record::AidAccept(record::AidAccept { offer }) => {
                if let Some(request) = self.fold.offers.get(offer) {
                    fold.offers.insert(*offer, *request);
                    copy_request(request, &mut state);
                }
            }
            Record::Vote(record::Vote { decision, .. })
            | Record::Tally(record::Tally { decision }) => {
                if let Some(d) = st.decisions.get(decision) {
                    state.decisions.insert(*decision, d.clone());
                }
            }
            _ => {}
        }
        self.copy_purchase_for(record, &mut state);
        Derived {
            state,
            fold,
            last_key: self.last_key,
            folded: self.folded,
            epoch: self.epoch,
        }
    }

    /// The members whose state or fold entries `apply` reads or writes for `record`
    /// written by `author`; `None` (all of them) for kinds not listed here.
    fn involved_members(&self, record: &Record, author: Option<MemberId>) -> Option<Vec<MemberId>> {
        let st = &self.state;
        let mut ids: Vec<MemberId> = author.into_iter().collect();
        match record {
            Record::Vouch(record::Vouch { member })
            | Record::Remove(record::Remove { member, .. }) => ids.push(*member),
            Record::Attest(record::Attest { to, .. }) => ids.push(*to),
            Record::Confirm(record::Confirm { attestation })
            | Record::Decline(record::Decline { attestation }) => {
                if let Some(a) = st.attestations.get(attestation) {
                    ids.extend([a.provider, a.receiver]);
                }
            }
            Record::Close(record::Close { proposal, .. }) => {
                if let Some(p) = st.proposals.get(proposal) {
                    ids.extend(p.allocations.iter().map(|a| a.member));
                }
            }
            Record::AidConfirm(record::AidConfirm { request, .. }) => {
                if let Some(r) = st.aid_requests.get(request) {
                    ids.push(r.requester);
                    ids.extend(r.helper);
                }
            }
            Record::Report(record::Report {
                target_kind: ReportTarget::Member,
                target,
                ..
            }) => ids.push(MemberId(*target)),
            Record::Decision(decision) => match &decision.action {
                crate::record::DecisionAction::RoleGrant { member, .. }
                | crate::record::DecisionAction::RoleRevoke { member, .. }
                | crate::record::DecisionAction::Removal { member } => ids.push(*member),
                crate::record::DecisionAction::General
                | crate::record::DecisionAction::Param { .. } => {}
                // Pool allocations read the pools, which the narrow copy leaves out.
                crate::record::DecisionAction::PoolAllocation { .. } => return None,
                // A recovery checks its new key against every member's.
                crate::record::DecisionAction::Recovery { .. } => return None,
            },
            Record::Vote(_) => {}
            // A rename compares the name with every member's: it reads them all.
            Record::Rename(_) => return None,
            Record::Report(_)
            | Record::Proposal(_)
            | Record::Allocate(_)
            | Record::AidRequest(_)
            | Record::AidOffer(_)
            | Record::AidAccept(_)
            | Record::AidCancel(_)
            | Record::Hide(_)
            | Record::Purchase(_)
            | Record::PurchaseCommit(_)
            | Record::PurchaseBid(_)
            | Record::PurchaseStep(_)
            | Record::PurchaseMark(_) => {}
            // Certificates are never dry-run; anything else reads all members.
            _ => return None,
        }
        ids.sort();
        ids.dedup();
        Some(ids)
    }
}
