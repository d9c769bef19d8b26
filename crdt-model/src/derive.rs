//! Deterministic derivation (§6, §7.1–§7.3): fold every accepted change in one total order
//! — ascending (height in the change graph, change hash) — into the community's state.
//!
//! Changes on the discarded branch of an equivocation, and changes built on them, are not
//! part of the canonical document and are not folded either (the ledger still holds them:
//! [`crate::Ledger::discarded`]).
//!
//! Rules that depend on earlier facts (caps, budgets, floors) are evaluated at each record's
//! position, and every refused record stays in [`State::log`] with its reason. The fold
//! reads only the changes and the equivocation proofs: never a clock, never the arrival
//! order. Queries that need "now" ([`State::balance`]) take it as an argument.

use crate::record;
use std::collections::{BTreeMap, BTreeSet, HashMap};

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::envelope::{Refusal, RejectReason};
use crate::ids::{CommunityId, Day, DeviceId, MemberId, RecordId};
use crate::ledger::{Entry, EquivocationProof, Graph};
use crate::params::Params;
use crate::record::{Outcome, Record, ReportTarget, Urgency, Visibility};

mod privacy;
pub use privacy::*;

mod governance;
pub use governance::*;

mod purchase;
pub use purchase::*;
mod pools;
pub use pools::*;

/// The derived state of a community. Serializes canonically (sorted maps, integers only),
/// so two replicas can be compared byte for byte.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct State {
    /// The community.
    pub community: CommunityId,
    /// Its name (empty until the genesis is held).
    pub name: String,
    /// The founder (unknown until the genesis is held).
    pub founder: Option<MemberId>,
    /// Parameters in force at the end of the order.
    pub params: Params,
    /// Every parameter value ever in force, oldest first.
    pub params_history: Vec<ParamChange>,
    /// Members, admitted or pending or removed.
    pub members: BTreeMap<MemberId, Member>,
    /// Hour attestations.
    pub attestations: BTreeMap<RecordId, Attestation>,
    /// Support Point proposals.
    pub proposals: BTreeMap<RecordId, Proposal>,
    /// Mutual-aid requests (offers inside).
    pub aid_requests: BTreeMap<RecordId, AidRequest>,
    /// Abuse reports.
    pub reports: Vec<Report>,
    /// Hidden records and the moderation record that hid each.
    pub hidden: BTreeMap<RecordId, RecordId>,
    /// Devices that equivocated.
    pub forked_devices: BTreeMap<DeviceId, Option<MemberId>>,
    /// Every change in total order with its status.
    pub log: Vec<LogEntry>,
    /// How many records counted.
    pub counted: usize,
    /// How many records were refused.
    pub refused: usize,
    /// Governance decisions (§7.6).
    pub decisions: BTreeMap<RecordId, Decision>,
    /// Collective purchases (§7.4).
    pub purchases: BTreeMap<RecordId, Purchase>,
    /// Investment pools and relief funds (§7.5).
    pub pools: BTreeMap<RecordId, Pool>,
    /// Contributions to pools, pledged or confirmed.
    pub contributions: BTreeMap<RecordId, Contribution>,
    /// Applications to pools.
    pub applications: BTreeMap<RecordId, Application>,
    /// Relief requests (reasons sealed to the stewards).
    pub relief_requests: BTreeMap<RecordId, ReliefRequest>,
}

/// A parameter value and the record that set it (`None` for the genesis defaults).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ParamChange {
    /// The record that put the value in force (the genesis, or the tally of a decision).
    pub at: RecordId,
    /// The decision, for a change made by governance.
    pub decision: Option<RecordId>,
    /// Author-claimed time of the record that put it in force.
    pub time: i64,
    /// Parameter name.
    pub key: String,
    /// Value in text form.
    pub value: String,
}

/// Admission status.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MemberStatus {
    /// Asked to join; waiting for vouches.
    Pending,
    /// Admitted.
    Admitted,
    /// Removed.
    Removed,
}

/// One member as derived.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Member {
    /// Identity.
    pub id: MemberId,
    /// Display name (a label, not an identity).
    pub display_name: String,
    /// Admission status.
    pub status: MemberStatus,
    /// Roles held (the founder holds all until governance grants any).
    pub roles: Vec<String>,
    /// Devices and whether each forked.
    pub devices: BTreeMap<DeviceId, bool>,
    /// Who vouched.
    pub vouched_by: BTreeSet<MemberId>,
    /// Time bank.
    pub time: TimeAccount,
    /// Support Points.
    pub sp: SpAccount,
    /// Mutual-aid history.
    pub aid: AidHistory,
    /// Who may see this member's balance and history (§9); `members` until they set it.
    pub visibility: Visibility,
}

/// A member's confirmed time, in minutes.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct TimeAccount {
    /// Confirmed minutes provided.
    pub provided: i64,
    /// Confirmed minutes received.
    pub received: i64,
    /// provided − received.
    pub balance: i64,
}

/// A member's Support Points.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SpAccount {
    /// Budget.
    pub budget: i64,
    /// Locked on open proposals.
    pub allocated: i64,
    /// budget − allocated.
    pub available: i64,
}

/// Visible mutual-aid history (reputation is history, not a score).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct AidHistory {
    /// Completed aids given.
    pub given: u32,
    /// Completed aids received.
    pub received: u32,
    /// Ratings received (1..=5), in order.
    pub ratings: Vec<i64>,
    /// Completed requests this member took part in.
    pub completed: Vec<RecordId>,
}

/// Settlement of an attestation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AttestationStatus {
    /// Awaiting the receiver.
    Pending,
    /// Confirmed: counts in balances.
    Confirmed,
    /// Declined by the receiver.
    Declined,
}

/// An hour attestation as derived.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Attestation {
    /// Record id.
    pub id: RecordId,
    /// Who provided the service.
    pub provider: MemberId,
    /// Who received it.
    pub receiver: MemberId,
    /// Minutes.
    pub minutes: i64,
    /// Service.
    pub service: String,
    /// Category.
    pub category: String,
    /// Day of service.
    pub date: Day,
    /// Settlement.
    pub status: AttestationStatus,
    /// The confirmation or decline.
    pub settled_by: Option<RecordId>,
}

/// Proposal status.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ProposalStatus {
    /// Accepting SP.
    Open,
    /// Closed with an outcome.
    Closed(Outcome),
}

/// One allocation.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Allocation {
    /// Record id.
    pub id: RecordId,
    /// Who allocated.
    pub member: MemberId,
    /// Points.
    pub points: i64,
}

/// A proposal as derived.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Proposal {
    /// Record id.
    pub id: RecordId,
    /// Proposer.
    pub proposer: MemberId,
    /// Title.
    pub title: String,
    /// Description.
    pub description: String,
    /// Status.
    pub status: ProposalStatus,
    /// SP locked on it now (0 once closed).
    pub active_points: i64,
    /// The most SP it ever held.
    pub peak_points: i64,
    /// Distinct members who allocated.
    pub supporters: usize,
    /// Active SP reached the priority threshold.
    pub prioritized: bool,
    /// Counted allocations, in total order.
    pub allocations: Vec<Allocation>,
}

/// Aid request status.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AidStatus {
    /// Waiting for offers.
    Open,
    /// An offer was accepted.
    Matched,
    /// Both parties confirmed.
    Completed,
    /// Cancelled by the requester.
    Cancelled,
}

impl AidStatus {
    /// Stable text form.
    pub fn as_str(&self) -> &'static str {
        match self {
            AidStatus::Open => "open",
            AidStatus::Matched => "matched",
            AidStatus::Completed => "completed",
            AidStatus::Cancelled => "cancelled",
        }
    }
}

/// An offer of help.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AidOffer {
    /// Record id.
    pub id: RecordId,
    /// Who offers.
    pub helper: MemberId,
    /// Message.
    pub message: String,
    /// Availability.
    pub availability: String,
}

/// One party's confirmation of completed aid.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AidConfirmation {
    /// Record id.
    pub id: RecordId,
    /// Rating of the other party.
    pub rating: Option<i64>,
    /// Feedback.
    pub feedback: Option<String>,
}

/// A mutual-aid request as derived.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AidRequest {
    /// Record id.
    pub id: RecordId,
    /// Requester.
    pub requester: MemberId,
    /// Category.
    pub category: String,
    /// Title.
    pub title: String,
    /// Description.
    pub description: String,
    /// Urgency.
    pub urgency: Urgency,
    /// Needed by.
    pub needed_by: Option<Day>,
    /// Coarse location.
    pub location: Option<String>,
    /// Status.
    pub status: AidStatus,
    /// Counted offers.
    pub offers: Vec<AidOffer>,
    /// The accepted offer.
    pub accepted_offer: Option<RecordId>,
    /// The helper of the accepted offer.
    pub helper: Option<MemberId>,
    /// The requester's confirmation.
    pub requester_confirmation: Option<AidConfirmation>,
    /// The helper's confirmation.
    pub helper_confirmation: Option<AidConfirmation>,
}

/// An abuse report.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Report {
    /// Record id.
    pub id: RecordId,
    /// Reporter.
    pub reporter: MemberId,
    /// What is reported.
    pub target_kind: ReportTarget,
    /// Its id (hex).
    pub target: String,
    /// Why.
    pub reason: String,
}

/// Whether a record counted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EntryStatus {
    /// It counts.
    Counted,
    /// It was refused; see the reason.
    Refused,
}

/// One change in total order.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LogEntry {
    /// Position in the total order.
    pub position: usize,
    /// Record id (change hash).
    pub id: RecordId,
    /// Record kind.
    pub kind: String,
    /// Writing device.
    pub device: DeviceId,
    /// Its member.
    pub member: Option<MemberId>,
    /// Author-claimed time, Unix seconds.
    pub time: i64,
    /// Human summary.
    pub summary: String,
    /// Counted or refused.
    pub status: EntryStatus,
    /// The reason, when refused.
    pub reason: Option<RejectReason>,
    /// Details of the refusal.
    pub detail: Option<String>,
}

/// A member's time balance and fair-exchange index at a given moment.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Balance {
    /// The member.
    pub member: MemberId,
    /// Balance in minutes.
    pub minutes: i64,
    /// Confirmed minutes provided (all time).
    pub provided: i64,
    /// Confirmed minutes received (all time).
    pub received: i64,
    /// Minutes provided within the fairness window.
    pub window_provided: i64,
    /// Minutes received within the fairness window.
    pub window_received: i64,
    /// received ÷ provided over the window, in percent (None when nothing was provided).
    pub ratio_percent: Option<i64>,
    /// The fair-exchange warning.
    pub warning: bool,
    /// The window, in days.
    pub window_days: i64,
}

/// Why a member or record name did not resolve.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum LookupError {
    /// Nothing matched.
    #[error("no {what} matches {query:?}")]
    NotFound {
        /// What was looked for.
        what: &'static str,
        /// The query.
        query: String,
    },
    /// Several matched.
    #[error("{query:?} matches {count} {what}s; give a longer id prefix")]
    Ambiguous {
        /// What was looked for.
        what: &'static str,
        /// The query.
        query: String,
        /// How many matched.
        count: usize,
    },
}

impl State {
    fn empty(community: CommunityId) -> State {
        State {
            community,
            name: String::new(),
            founder: None,
            params: Params::default(),
            params_history: Vec::new(),
            members: BTreeMap::new(),
            attestations: BTreeMap::new(),
            proposals: BTreeMap::new(),
            aid_requests: BTreeMap::new(),
            reports: Vec::new(),
            hidden: BTreeMap::new(),
            forked_devices: BTreeMap::new(),
            log: Vec::new(),
            counted: 0,
            refused: 0,
            decisions: BTreeMap::new(),
            purchases: BTreeMap::new(),
            pools: BTreeMap::new(),
            contributions: BTreeMap::new(),
            applications: BTreeMap::new(),
            relief_requests: BTreeMap::new(),
        }
    }

    /// The canonical serialization: identical on replicas holding the same changes.
    pub fn canonical_json(&self) -> Vec<u8> {
        serde_json::to_vec(self).unwrap_or_default()
    }

    /// SHA-256 of the canonical serialization, hex: a short convergence check.
    pub fn digest(&self) -> String {
        hex::encode(Sha256::digest(self.canonical_json()))
    }

    /// A member's balance and fair-exchange index at Unix time `now`.
    pub fn balance(&self, member: &MemberId, now: i64) -> Option<Balance> {
        let m = self.members.get(member)?;
        let today = Day::from_unix(now);
        let from = Day(today.0 - self.params.fairness_window_days as i32);
        let (mut wp, mut wr) = (0, 0);
        for a in self.attestations.values() {
            if a.status != AttestationStatus::Confirmed || a.date <= from || a.date > today {
                continue;
            }
            if a.provider == *member {
                wp += a.minutes;
            }
            if a.receiver == *member {
                wr += a.minutes;
            }
        }
        let ratio_percent = (wp > 0).then(|| wr * 100 / wp);
        let warning = if wp == 0 {
            wr > 0
        } else {
            wr * 100 > wp * self.params.fairness_warn_percent
        };
        Some(Balance {
            member: *member,
            minutes: m.time.balance,
            provided: m.time.provided,
            received: m.time.received,
            window_provided: wp,
            window_received: wr,
            ratio_percent,
            warning,
            window_days: self.params.fairness_window_days,
        })
    }

    /// Attestations waiting for `member` to confirm or decline.
    pub fn pending_for(&self, member: &MemberId) -> Vec<&Attestation> {
        self.attestations
            .values()
            .filter(|a| a.receiver == *member && a.status == AttestationStatus::Pending)
            .collect()
    }

    /// Resolves a member by unique display name or unique id prefix.
    pub fn find_member(&self, query: &str) -> Result<MemberId, LookupError> {
        let q = query.trim();
        let by_name: Vec<_> = self
            .members
            .values()
            .filter(|m| m.display_name == q)
            .collect();
        if by_name.len() == 1 {
            return Ok(by_name[0].id);
        }
        let lower = q.to_lowercase();
        let by_id: Vec<_> = if lower.len() >= 4 && lower.chars().all(|c| c.is_ascii_hexdigit()) {
            self.members
                .keys()
                .filter(|k| k.to_hex().starts_with(&lower))
                .collect()
        } else {
            Vec::new()
        };
        match (by_name.len(), by_id.len()) {
            (_, 1) => Ok(*by_id[0]),
            (0, 0) => Err(LookupError::NotFound {
                what: "member",
                query: q.into(),
            }),
            (n, m) => Err(LookupError::Ambiguous {
                what: "member",
                query: q.into(),
                count: n.max(m),
            }),
        }
    }

    /// Resolves a record by unique id prefix (at least 4 hex characters).
    pub fn find_record(&self, query: &str) -> Result<RecordId, LookupError> {
        let q = query.trim().to_lowercase();
        if q.len() < 4 || !q.chars().all(|c| c.is_ascii_hexdigit()) {
            return Err(LookupError::NotFound {
                what: "record",
                query: q,
            });
        }
        let hits: Vec<_> = self
            .log
            .iter()
            .filter(|e| e.id.to_hex().starts_with(&q))
            .collect();
        match hits.len() {
            1 => Ok(hits[0].id),
            0 => Err(LookupError::NotFound {
                what: "record",
                query: q,
            }),
            n => Err(LookupError::Ambiguous {
                what: "record",
                query: q,
                count: n,
            }),
        }
    }

    /// Whether a member is admitted (and not removed).
    pub fn is_admitted(&self, member: &MemberId) -> bool {
        self.members
            .get(member)
            .is_some_and(|m| m.status == MemberStatus::Admitted)
    }
}

/// A change as the fold sees it.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Ctx<'a> {
    id: RecordId,
    dev: u32,
    device: DeviceId,
    seq: u64,
    /// Author-claimed time, Unix seconds (signed, never the deriving node's clock).
    #[allow(dead_code)] // read by the window and deadline rules of issue 6
    time: i64,
    clock: &'a [u32],
    excluded: bool,
}

impl<'a> Ctx<'a> {
    fn of(e: &'a Entry) -> Ctx<'a> {
        Ctx {
            id: e.v.id,
            dev: e.dev,
            device: e.v.device,
            seq: e.v.seq,
            time: e.v.time,
            clock: &e.clock,
            excluded: e.excluded,
        }
    }
    fn seen(&self, dev: u32, seq: u64) -> bool {
        self.clock.get(dev as usize).copied().unwrap_or(0) as u64 >= seq
    }
}

/// Indices the fold keeps beside the state.
#[derive(Debug, Clone, Default)]
pub(crate) struct Fold {
    genesis: Option<(u32, MemberId)>,
    device_member: HashMap<u32, MemberId>,
    joins: HashMap<MemberId, Vec<u32>>,
    vouches: HashMap<MemberId, Vec<(u32, u64, MemberId)>>,
    /// Counting removals per member: (device index, seq, clock owner entry index).
    removals: HashMap<MemberId, Vec<usize>>,
    forked: BTreeSet<DeviceId>,
    locked: HashMap<(MemberId, RecordId), i64>,
    offers: HashMap<RecordId, RecordId>,
    /// The vouch count each member was admitted with (later changes of
    /// `admission_vouches` do not reach back).
    admission_threshold: HashMap<MemberId, i64>,
    gov: GovFold,
}

/// State plus what incremental derivation needs.
#[derive(Debug, Clone)]
pub(crate) struct Derived {
    pub(crate) state: State,
    fold: Fold,
    last_key: Option<(u32, RecordId)>,
    folded: usize,
    epoch: u64,
}

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

fn key(e: &Entry) -> (u32, RecordId) {
    (e.height, e.v.id)
}

impl Derived {
    pub(crate) fn from_scratch(
        graph: Graph<'_>,
        proofs: &BTreeMap<DeviceId, EquivocationProof>,
        community: &CommunityId,
        epoch: u64,
    ) -> Derived {
        // Strong removal (§4) refuses a removed member's records anywhere in the order that
        // are not in the removal's causal past, which needs the removals before the fold
        // that decides them. So: fold with the removals known so far, and again with those
        // the fold found passed, until no new one appears. The set only grows (a removal
        // that passed stays in force), so this ends after at most one pass per removal
        // decision; every pass is a function of the change set alone.
        let mut known: BTreeSet<usize> = BTreeSet::new();
        loop {
            let d = Self::fold_pass(graph, proofs, community, epoch, &known);
            if d.fold.gov.passed_removals.is_subset(&known) {
                return d;
            }
            known.extend(d.fold.gov.passed_removals.iter().copied());
        }
    }

    fn fold_pass(
        graph: Graph<'_>,
        proofs: &BTreeMap<DeviceId, EquivocationProof>,
        community: &CommunityId,
        epoch: u64,
        known_removals: &BTreeSet<usize>,
    ) -> Derived {
        let mut fold = Fold {
            forked: proofs.keys().copied().collect(),
            ..Fold::default()
        };
        fold.gov.known_removals = known_removals.clone();
        for (member, i) in Self::removal_targets(graph, known_removals) {
            fold.removals.entry(member).or_default().push(i);
        }
        // In total order, not arrival order: the first removal a record falls outside of
        // is named in its refusal, which must read the same on every replica.
        for removals in fold.removals.values_mut() {
            removals.sort_by_key(|&i| key(&graph.entries[i]));
        }
        let state = State::empty(*community);
        // Changes on a discarded fork branch (or built on one) are not folded: a replica
        // that learnt of the fork through a proof and catch-up sync never receives them,
        // and must still derive the same state as one that holds them.
        let mut order: Vec<usize> = (0..graph.entries.len())
            .filter(|&i| !graph.entries[i].excluded)
            .collect();
        order.sort_by_key(|&i| key(&graph.entries[i]));
        let mut d = Derived {
            state,
            fold,
            last_key: None,
            folded: graph.entries.len(),
            epoch,
        };
        for i in order {
            let e = &graph.entries[i];
            d.fold_entry(graph, e);
            d.last_key = Some(key(e));
        }
        d
    }

    /// Whether this derivation covers exactly `len` entries of the given epoch.
    pub(crate) fn is_current(&self, len: usize, epoch: u64) -> bool {
        self.epoch == epoch && self.folded == len
    }

    /// Whether the entries added since the last fold all sort after it and change nothing
    /// that earlier positions depend on (equivocations, removals).
    pub(crate) fn can_extend(&self, graph: Graph<'_>, epoch: u64) -> bool {
        if epoch != self.epoch {
            return false;
        }
        let new = &graph.entries[self.folded.min(graph.entries.len())..];
        new.iter().all(|e| {
            !e.excluded
                && !matches!(e.v.record, Record::Genesis(_))
                && !self.tally_needs_refold(&e.v.record)
                && self.last_key.is_none_or(|k| key(e) > k)
        })
    }

    pub(crate) fn extend(
        &mut self,
        graph: Graph<'_>,
        _proofs: &BTreeMap<DeviceId, EquivocationProof>,
    ) {
        let mut new: Vec<&Entry> = graph.entries[self.folded..]
            .iter()
            .filter(|e| !e.excluded)
            .collect();
        new.sort_by_key(|e| key(e));
        for e in new {
            self.fold_entry(graph, e);
            self.last_key = Some(key(e));
        }
        self.folded = graph.entries.len();
    }

    fn fold_entry(&mut self, graph: Graph<'_>, e: &Entry) {
        if let Some(m) = crate::gate::certified_member(&e.v.record) {
            self.fold.device_member.entry(e.dev).or_insert(m);
        }
        let ctx = Ctx::of(e);
        let result = self.apply(graph, &ctx, &e.v.record);
        let member = self.fold.device_member.get(&e.dev).copied();
        let (status, reason, detail) = match result {
            Ok(()) => {
                self.state.counted += 1;
                (EntryStatus::Counted, None, None)
            }
            Err(Refusal {
                reason: r,
                detail: d,
            }) => {
                self.state.refused += 1;
                (EntryStatus::Refused, Some(r), Some(d))
            }
        };
        let position = self.state.log.len();
        self.state.log.push(LogEntry {
            position,
            id: e.v.id,
            kind: e.v.record.kind().to_string(),
            device: e.v.device,
            member,
            time: e.v.time,
            summary: e.v.record.summary(),
            status,
            reason,
            detail,
        });
    }

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
            clock,
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
                .filter_map(|m| st.members.get(m).map(|v| (*m, v.clone())))
                .collect(),
            None => st.members.clone(),
        };
        let mut state = State {
            community: st.community,
            name: String::new(),
            founder: st.founder,
            params: st.params.clone(),
            params_history: Vec::new(),
            members,
            attestations: BTreeMap::new(),
            proposals: BTreeMap::new(),
            aid_requests: BTreeMap::new(),
            reports: Vec::new(),
            hidden: BTreeMap::new(),
            forked_devices: BTreeMap::new(),
            log: Vec::new(),
            counted: 0,
            refused: 0,
            decisions: BTreeMap::new(),
            purchases: BTreeMap::new(),
            pools: st.pools.clone(),
            contributions: st.contributions.clone(),
            applications: st.applications.clone(),
            relief_requests: st.relief_requests.clone(),
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
            Record::Decision(record::Decision { action, .. }) => match action {
                crate::record::DecisionAction::RoleGrant { member, .. }
                | crate::record::DecisionAction::RoleRevoke { member, .. }
                | crate::record::DecisionAction::Removal { member } => ids.push(*member),
                crate::record::DecisionAction::General
                | crate::record::DecisionAction::Param { .. } => {}
                // Pool allocations read the pools, which the narrow copy leaves out.
                crate::record::DecisionAction::PoolAllocation { .. } => return None,
            },
            Record::Vote(_) => {}
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

    fn params(&self) -> &Params {
        &self.state.params
    }

    /// Causal authorization (§4) and then the domain rules of the record.
    fn apply(&mut self, graph: Graph<'_>, c: &Ctx<'_>, record: &Record) -> Result<(), Refusal> {
        let forked = self.fold.forked.contains(&c.device);
        if forked {
            if let Some(m) = self.fold.device_member.get(&c.dev) {
                self.state.forked_devices.insert(c.device, Some(*m));
                if let Some(mem) = self.state.members.get_mut(m) {
                    mem.devices.insert(c.device, true);
                }
            }
            // The canonical certificate of a forked device still binds it to its member:
            // the member must stay in the state to be flagged (§5), and a founder's genesis
            // is the community itself. Everything else the device wrote stops counting.
            if !record.is_certificate() || c.excluded {
                return Err(Refusal::new(
                    RejectReason::ForkedDevice,
                    "the device equivocated".into(),
                ));
            }
        }
        if c.excluded {
            return Err(Refusal::new(
                RejectReason::DependsOnFork,
                "builds on a non-canonical fork branch".into(),
            ));
        }
        let author = *self.fold.device_member.get(&c.dev).ok_or(Refusal::new(
            RejectReason::NotAMember,
            "device has no certificate".to_string(),
        ))?;
        match record {
            Record::Genesis(record::Genesis {
                name,
                founder,
                display_name,
                params,
                ..
            }) => {
                self.fold.genesis = Some((c.dev, *founder));
                self.state.name = name.clone();
                self.state.founder = Some(*founder);
                self.state.params = params.clone();
                self.state.params_history = params
                    .entries()
                    .into_iter()
                    .map(|(k, v)| ParamChange {
                        at: c.id,
                        decision: None,
                        time: c.time,
                        key: k.to_string(),
                        value: v,
                    })
                    .collect();
                let m = self.member_entry(*founder, display_name);
                m.status = MemberStatus::Admitted;
                m.roles = vec![
                    "founder".into(),
                    "moderator".into(),
                    "steward".into(),
                    "treasurer".into(),
                ];
                m.devices.insert(c.device, forked);
                // Only admitted members hold SP (§4: unadmitted keys own nothing).
                let budget = params.sp_budget;
                for m in self.state.members.values_mut() {
                    if m.status == MemberStatus::Admitted {
                        m.sp.budget = budget;
                        m.sp.available = budget - m.sp.allocated;
                    }
                }
                return Ok(());
            }
            Record::Join(record::Join {
                member,
                display_name,
                ..
            }) => {
                self.fold.joins.entry(*member).or_default().push(c.dev);
                let removed = self
                    .state
                    .members
                    .get(member)
                    .is_some_and(|m| m.status == MemberStatus::Removed);
                if removed {
                    return Err(Refusal::new(
                        RejectReason::RemovedMember,
                        "removed members cannot rejoin".into(),
                    ));
                }
                let m = self.member_entry(*member, display_name);
                m.devices.insert(c.device, forked);
                return Ok(());
            }
            _ => {}
        }
        self.authorize(graph, c, author)?;
        match record {
            Record::Genesis(_) | Record::Join(_) => Ok(()),
            Record::Device(record::Device { member, .. }) => {
                if let Some(m) = self.state.members.get_mut(member) {
                    m.devices.insert(c.device, forked);
                }
                Ok(())
            }
            Record::Vouch(record::Vouch { member }) => self.vouch(c, author, *member),
            Record::Remove(_) => Err(Refusal::new(
                RejectReason::NotAllowed,
                "members are removed by decision (a removal decision that passes)".into(),
            )),
            Record::Attest(record::Attest {
                to,
                minutes,
                service,
                category,
                date,
            }) => {
                if *to == author {
                    return Err(Refusal::new(
                        RejectReason::NotAllowed,
                        "cannot attest hours to yourself".into(),
                    ));
                }
                if !self.state.is_admitted(to) {
                    return Err(Refusal::new(
                        RejectReason::UnknownReference,
                        format!("receiver {} is not a member", to.short()),
                    ));
                }
                self.state.attestations.insert(
                    c.id,
                    Attestation {
                        id: c.id,
                        provider: author,
                        receiver: *to,
                        minutes: minutes.0,
                        service: service.clone(),
                        category: category.clone(),
                        date: *date,
                        status: AttestationStatus::Pending,
                        settled_by: None,
                    },
                );
                Ok(())
            }
            Record::Confirm(record::Confirm { attestation })
            | Record::Decline(record::Decline { attestation }) => {
                let confirm = matches!(record, Record::Confirm(_));
                self.settle(graph, c, author, attestation, confirm)
            }
            Record::Proposal(record::Proposal { title, description }) => {
                self.state.proposals.insert(
                    c.id,
                    Proposal {
                        id: c.id,
                        proposer: author,
                        title: title.clone(),
                        description: description.clone(),
                        status: ProposalStatus::Open,
                        active_points: 0,
                        peak_points: 0,
                        supporters: 0,
                        prioritized: false,
                        allocations: Vec::new(),
                    },
                );
                Ok(())
            }
            Record::Close(record::Close { proposal, outcome }) => {
                self.close(graph, c, author, proposal, *outcome)
            }
            Record::Allocate(record::Allocate { proposal, points }) => {
                self.allocate(graph, c, author, proposal, points.0)
            }
            Record::AidRequest(record::AidRequest {
                category,
                title,
                description,
                urgency,
                needed_by,
                location,
            }) => {
                if !self.params().aid_categories.contains(category) {
                    return Err(Refusal::new(
                        RejectReason::UnknownCategory,
                        format!(
                            "{category:?} is not one of {}",
                            self.params().aid_categories.join(", ")
                        ),
                    ));
                }
                self.state.aid_requests.insert(
                    c.id,
                    AidRequest {
                        id: c.id,
                        requester: author,
                        category: category.clone(),
                        title: title.clone(),
                        description: description.clone(),
                        urgency: *urgency,
                        needed_by: *needed_by,
                        location: location.clone(),
                        status: AidStatus::Open,
                        offers: Vec::new(),
                        accepted_offer: None,
                        helper: None,
                        requester_confirmation: None,
                        helper_confirmation: None,
                    },
                );
                Ok(())
            }
            Record::AidOffer(record::AidOffer {
                request,
                message,
                availability,
            }) => {
                let req = self.aid_request(graph, c, request)?;
                if req.requester == author {
                    return Err(Refusal::new(
                        RejectReason::NotAllowed,
                        "cannot offer help on your own request".into(),
                    ));
                }
                if req.status != AidStatus::Open {
                    return Err(Refusal::new(
                        RejectReason::AlreadySettled,
                        format!("request is {}", req.status.as_str()),
                    ));
                }
                req.offers.push(AidOffer {
                    id: c.id,
                    helper: author,
                    message: message.clone(),
                    availability: availability.clone(),
                });
                self.fold.offers.insert(c.id, *request);
                Ok(())
            }
            Record::AidAccept(record::AidAccept { offer }) => {
                let request = *self.fold.offers.get(offer).ok_or(Refusal::new(
                    RejectReason::UnknownReference,
                    format!("no offer {}", offer.short()),
                ))?;
                if !self.precedes(graph, offer, c) {
                    return Err(Refusal::new(
                        RejectReason::UnknownReference,
                        "offer is not in the record's past".into(),
                    ));
                }
                let req = self.aid_request(graph, c, &request)?;
                if req.requester != author {
                    return Err(Refusal::new(
                        RejectReason::NotAllowed,
                        "only the requester accepts an offer".into(),
                    ));
                }
                if req.status != AidStatus::Open {
                    return Err(Refusal::new(
                        RejectReason::AlreadySettled,
                        format!("request is {}", req.status.as_str()),
                    ));
                }
                let helper = req.offers.iter().find(|o| o.id == *offer).map(|o| o.helper);
                req.status = AidStatus::Matched;
                req.accepted_offer = Some(*offer);
                req.helper = helper;
                Ok(())
            }
            Record::AidConfirm(record::AidConfirm {
                request,
                rating,
                feedback,
            }) => {
                let req = self.aid_request(graph, c, request)?;
                if req.status != AidStatus::Matched {
                    return Err(Refusal::new(
                        RejectReason::AlreadySettled,
                        format!("request is {}", req.status.as_str()),
                    ));
                }
                let conf = AidConfirmation {
                    id: c.id,
                    rating: *rating,
                    feedback: feedback.clone(),
                };
                let slot = if author == req.requester {
                    &mut req.requester_confirmation
                } else if Some(author) == req.helper {
                    &mut req.helper_confirmation
                } else {
                    return Err(Refusal::new(
                        RejectReason::NotAllowed,
                        "only the requester and the helper confirm".into(),
                    ));
                };
                if slot.is_some() {
                    return Err(Refusal::new(
                        RejectReason::AlreadySettled,
                        "already confirmed".into(),
                    ));
                }
                *slot = Some(conf);
                if req.requester_confirmation.is_some() && req.helper_confirmation.is_some() {
                    req.status = AidStatus::Completed;
                    let (requester, helper) = (req.requester, req.helper);
                    let rating_of_helper =
                        req.requester_confirmation.as_ref().and_then(|c| c.rating);
                    let rating_of_requester =
                        req.helper_confirmation.as_ref().and_then(|c| c.rating);
                    let id = req.id;
                    if let Some(m) = self.state.members.get_mut(&requester) {
                        m.aid.received += 1;
                        m.aid.completed.push(id);
                        m.aid.ratings.extend(rating_of_requester);
                    }
                    if let Some(m) = helper.and_then(|h| self.state.members.get_mut(&h)) {
                        m.aid.given += 1;
                        m.aid.completed.push(id);
                        m.aid.ratings.extend(rating_of_helper);
                    }
                }
                Ok(())
            }
            Record::AidCancel(record::AidCancel { request }) => {
                let req = self.aid_request(graph, c, request)?;
                if req.requester != author {
                    return Err(Refusal::new(
                        RejectReason::NotAllowed,
                        "only the requester cancels".into(),
                    ));
                }
                if !matches!(req.status, AidStatus::Open | AidStatus::Matched) {
                    return Err(Refusal::new(
                        RejectReason::AlreadySettled,
                        format!("request is {}", req.status.as_str()),
                    ));
                }
                req.status = AidStatus::Cancelled;
                Ok(())
            }
            Record::Report(record::Report {
                target_kind,
                target,
                reason,
            }) => {
                let known = match target_kind {
                    ReportTarget::Member => self.state.members.contains_key(&MemberId(*target)),
                    ReportTarget::Record => self.precedes(graph, &RecordId(*target), c),
                };
                if !known {
                    return Err(Refusal::new(
                        RejectReason::UnknownReference,
                        format!("no such {target_kind}"),
                    ));
                }
                self.state.reports.push(Report {
                    id: c.id,
                    reporter: author,
                    target_kind: *target_kind,
                    target: hex::encode(target),
                    reason: reason.clone(),
                });
                Ok(())
            }
            Record::Hide(record::Hide { record, .. }) => {
                if !self.has_role(&author, "moderator") {
                    return Err(Refusal::new(
                        RejectReason::NotAllowed,
                        "only moderators hide records".into(),
                    ));
                }
                if !self.precedes(graph, record, c) {
                    return Err(Refusal::new(
                        RejectReason::UnknownReference,
                        "record is not in the moderation's past".into(),
                    ));
                }
                self.state.hidden.entry(*record).or_insert(c.id);
                Ok(())
            }
            Record::Decision(_) => self.open_decision(c, author, record),
            Record::Vote(record::Vote { decision, choice }) => {
                self.cast_vote(graph, c, author, decision, *choice)
            }
            Record::Tally(record::Tally { decision }) => self.tally(graph, c, decision),
            Record::Visibility(record::VisibilitySetting { level }) => {
                self.set_visibility(author, *level)
            }
            Record::Purchase(_)
            | Record::PurchaseCommit(_)
            | Record::PurchaseBid(_)
            | Record::PurchaseStep(_)
            | Record::PurchaseMark(_) => self.apply_purchase(graph, c, author, record),
            Record::Pool(record::Pool {
                name,
                description,
                currency,
                policy,
                relief,
            }) => self.pool(c, author, name, description, currency, *policy, *relief),
            Record::Contribution(record::Contribution { pool, amount }) => {
                self.contribute(graph, c, author, pool, *amount)
            }
            Record::ContributionConfirm(record::ContributionConfirm { contribution }) => {
                self.confirm_contribution(graph, c, author, contribution)
            }
            Record::Application(record::Application {
                pool,
                title,
                amount,
                terms,
            }) => self.apply_to_pool(graph, c, author, pool, title, *amount, terms),
            Record::Disbursement(record::Disbursement {
                application,
                amount,
            }) => self.disburse(graph, c, author, application, *amount),
            Record::Return(record::Return { from, amount }) => {
                self.pool_return(graph, c, author, from, *amount)
            }
            Record::ReliefRequest(record::ReliefRequest {
                fund,
                amount,
                urgency,
                reason,
            }) => self.relief_request(graph, c, author, fund, *amount, *urgency, reason),
            Record::ReliefApprove(record::ReliefApprove { request }) => {
                self.relief_approve(graph, c, author, request)
            }
        }
    }

    fn has_role(&self, m: &MemberId, role: &str) -> bool {
        self.state
            .members
            .get(m)
            .is_some_and(|m| m.roles.iter().any(|r| r == role))
    }

    fn precedes(&self, graph: Graph<'_>, a: &RecordId, c: &Ctx<'_>) -> bool {
        graph
            .index
            .get(a)
            .map(|&i| &graph.entries[i as usize])
            .is_some_and(|e| !e.excluded && c.seen(e.dev, e.v.seq))
    }

    /// The member's entry, created pending with no SP: the budget comes with admission.
    fn member_entry(&mut self, id: MemberId, name: &str) -> &mut Member {
        self.state.members.entry(id).or_insert_with(|| Member {
            id,
            display_name: name.to_string(),
            status: MemberStatus::Pending,
            roles: Vec::new(),
            devices: BTreeMap::new(),
            vouched_by: BTreeSet::new(),
            time: TimeAccount::default(),
            sp: SpAccount::default(),
            aid: AidHistory::default(),
            visibility: Visibility::default(),
        })
    }

    /// Rule 3: the author's admission (and device certificate) is in the change's causal
    /// past, and no removal of the author excludes it.
    fn authorize(&self, graph: Graph<'_>, c: &Ctx<'_>, author: MemberId) -> Result<(), Refusal> {
        let admitted = match self.fold.genesis {
            Some((gdev, founder)) if founder == author => c.seen(gdev, 1),
            _ => match self.fold.admission_threshold.get(&author) {
                Some(&needed) => {
                    let mut vouchers = BTreeSet::new();
                    for (dev, seq, voucher) in self.fold.vouches.get(&author).into_iter().flatten()
                    {
                        if c.seen(*dev, *seq) {
                            vouchers.insert(*voucher);
                        }
                    }
                    vouchers.len() as i64 >= needed
                }
                None => false,
            },
        };
        if !admitted {
            return Err(Refusal::new(
                RejectReason::NotAMember,
                format!(
                    "member {} is not admitted in this record's past",
                    author.short()
                ),
            ));
        }
        for &r in self.fold.removals.get(&author).into_iter().flatten() {
            let removal = &graph.entries[r];
            if removal
                .clock
                .get(c.dev as usize)
                .is_none_or(|s| (*s as u64) < c.seq)
            {
                return Err(Refusal::new(
                    RejectReason::RemovedMember,
                    format!(
                        "written outside the past of removal {}",
                        removal.v.id.short()
                    ),
                ));
            }
        }
        Ok(())
    }

    fn vouch(&mut self, c: &Ctx<'_>, author: MemberId, member: MemberId) -> Result<(), Refusal> {
        if member == author {
            return Err(Refusal::new(
                RejectReason::NotAllowed,
                "cannot vouch for yourself".into(),
            ));
        }
        let joined = self
            .fold
            .joins
            .get(&member)
            .is_some_and(|devs| devs.iter().any(|d| c.seen(*d, 1)));
        if !joined {
            return Err(Refusal::new(
                RejectReason::UnknownReference,
                format!("no join request from {}", member.short()),
            ));
        }
        let list = self.fold.vouches.entry(member).or_default();
        if list.iter().any(|(_, _, v)| *v == author) {
            return Err(Refusal::new(
                RejectReason::Redundant,
                "already vouched".into(),
            ));
        }
        list.push((c.dev, c.seq, author));
        let count = list.len() as i64;
        // A young community cannot muster more vouches than it has members: the threshold
        // is `admission_vouches`, or the number of admitted members when that is smaller.
        let admitted = self
            .state
            .members
            .values()
            .filter(|m| m.status == MemberStatus::Admitted)
            .count() as i64;
        let needed = self.params().admission_vouches.min(admitted.max(1));
        let budget = self.params().sp_budget;
        if let Some(m) = self.state.members.get_mut(&member) {
            m.vouched_by.insert(author);
            if m.status == MemberStatus::Pending && count >= needed {
                m.status = MemberStatus::Admitted;
                m.sp.budget = budget;
                m.sp.available = budget - m.sp.allocated;
                self.fold.admission_threshold.insert(member, needed);
            }
        }
        Ok(())
    }

    fn settle(
        &mut self,
        graph: Graph<'_>,
        c: &Ctx<'_>,
        author: MemberId,
        attestation: &RecordId,
        confirm: bool,
    ) -> Result<(), Refusal> {
        if !self.precedes(graph, attestation, c) {
            return Err(Refusal::new(
                RejectReason::UnknownReference,
                format!(
                    "attestation {} is not in the record's past",
                    attestation.short()
                ),
            ));
        }
        let floor = self.params().timebank_floor_minutes;
        let a = self
            .state
            .attestations
            .get(attestation)
            .ok_or(Refusal::new(
                RejectReason::UnknownReference,
                format!("{} is not a counted attestation", attestation.short()),
            ))?;
        if a.provider == author {
            return Err(Refusal::new(
                RejectReason::NotAllowed,
                "cannot confirm or decline your own attestation".into(),
            ));
        }
        if a.receiver != author {
            return Err(Refusal::new(
                RejectReason::NotAllowed,
                "only the receiver confirms or declines".into(),
            ));
        }
        if a.status != AttestationStatus::Pending {
            return Err(Refusal::new(
                RejectReason::AlreadySettled,
                "attestation already settled".into(),
            ));
        }
        let (provider, receiver, minutes) = (a.provider, a.receiver, a.minutes);
        if confirm {
            let balance = self
                .state
                .members
                .get(&receiver)
                .map_or(0, |m| m.time.balance);
            if balance - minutes < floor {
                return Err(Refusal::new(
                    RejectReason::BelowFloor,
                    format!(
                        "balance would be {} min, floor is {floor} min",
                        balance - minutes
                    ),
                ));
            }
            if let Some(m) = self.state.members.get_mut(&provider) {
                m.time.provided += minutes;
                m.time.balance += minutes;
            }
            if let Some(m) = self.state.members.get_mut(&receiver) {
                m.time.received += minutes;
                m.time.balance -= minutes;
            }
        }
        if let Some(a) = self.state.attestations.get_mut(attestation) {
            a.status = if confirm {
                AttestationStatus::Confirmed
            } else {
                AttestationStatus::Declined
            };
            a.settled_by = Some(c.id);
        }
        Ok(())
    }

    fn proposal(
        &mut self,
        graph: Graph<'_>,
        c: &Ctx<'_>,
        id: &RecordId,
    ) -> Result<&mut Proposal, Refusal> {
        if !self.precedes(graph, id, c) {
            return Err(Refusal::new(
                RejectReason::UnknownReference,
                format!("proposal {} is not in the record's past", id.short()),
            ));
        }
        self.state.proposals.get_mut(id).ok_or(Refusal::new(
            RejectReason::UnknownReference,
            format!("{} is not a counted proposal", id.short()),
        ))
    }

    fn close(
        &mut self,
        graph: Graph<'_>,
        c: &Ctx<'_>,
        author: MemberId,
        id: &RecordId,
        outcome: Outcome,
    ) -> Result<(), Refusal> {
        let p = self.proposal(graph, c, id)?;
        if p.proposer != author {
            return Err(Refusal::new(
                RejectReason::NotAllowed,
                "only the proposer closes a proposal".into(),
            ));
        }
        if p.status != ProposalStatus::Open {
            return Err(Refusal::new(
                RejectReason::AlreadySettled,
                "proposal already closed".into(),
            ));
        }
        p.status = ProposalStatus::Closed(outcome);
        p.active_points = 0;
        p.prioritized = false;
        let released: Vec<(MemberId, i64)> =
            p.allocations.iter().map(|a| (a.member, a.points)).collect();
        for (m, pts) in released {
            self.fold.locked.remove(&(m, *id));
            if let Some(mem) = self.state.members.get_mut(&m) {
                mem.sp.allocated -= pts;
                mem.sp.available += pts;
            }
        }
        Ok(())
    }

    fn allocate(
        &mut self,
        graph: Graph<'_>,
        c: &Ctx<'_>,
        author: MemberId,
        id: &RecordId,
        points: i64,
    ) -> Result<(), Refusal> {
        let (max, threshold) = (
            self.params().sp_max_per_proposal,
            self.params().sp_priority_threshold,
        );
        let (allocated, budget) = self
            .state
            .members
            .get(&author)
            .map_or((0, 0), |m| (m.sp.allocated, m.sp.budget));
        let locked = self.fold.locked.get(&(author, *id)).copied().unwrap_or(0);
        let p = self.proposal(graph, c, id)?;
        if p.status != ProposalStatus::Open {
            return Err(Refusal::new(
                RejectReason::ProposalClosed,
                "proposal is closed".into(),
            ));
        }
        if locked + points > max {
            return Err(Refusal::new(
                RejectReason::OverProposalCap,
                format!("{} SP on one proposal, cap is {max}", locked + points),
            ));
        }
        if allocated + points > budget {
            return Err(Refusal::new(
                RejectReason::OverBudget,
                format!("{} SP allocated, budget is {budget}", allocated + points),
            ));
        }
        if locked == 0 {
            p.supporters += 1;
        }
        p.active_points += points;
        p.peak_points = p.peak_points.max(p.active_points);
        p.prioritized = p.active_points >= threshold;
        p.allocations.push(Allocation {
            id: c.id,
            member: author,
            points,
        });
        self.fold.locked.insert((author, *id), locked + points);
        if let Some(m) = self.state.members.get_mut(&author) {
            m.sp.allocated += points;
            m.sp.available -= points;
        }
        Ok(())
    }

    fn aid_request(
        &mut self,
        graph: Graph<'_>,
        c: &Ctx<'_>,
        id: &RecordId,
    ) -> Result<&mut AidRequest, Refusal> {
        if !self.precedes(graph, id, c) {
            return Err(Refusal::new(
                RejectReason::UnknownReference,
                format!("request {} is not in the record's past", id.short()),
            ));
        }
        self.state.aid_requests.get_mut(id).ok_or(Refusal::new(
            RejectReason::UnknownReference,
            format!("{} is not a counted aid request", id.short()),
        ))
    }
}
