//! The derived state of a community and its queries: members, balances, attestations,
//! proposals, aid, and (in the submodules) decisions, purchases, pools and privacy.
//!
//! A [`State`] is a pure function of the accepted changes (the private `derive` module builds it);
//! nothing here reads a clock: queries that need "now" take it as an argument.

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::envelope::RejectReason;
use crate::ids::{CommunityId, Day, DeviceId, MemberId, Minutes, Points, RecordId};
use crate::params::Params;
use crate::terms::{Kind, Outcome, ReportTarget, Role, Urgency, Visibility};

mod governance;
mod index;
mod pools;
mod privacy;
mod purchase;

pub use governance::*;
pub use index::{DayMinutes, Indexes};
pub use pools::*;
pub use privacy::*;
pub use purchase::*;

/// The derived state of a community. Serializes canonically (sorted maps, integers only),
/// so two replicas can be compared byte for byte.
///
/// (De)serialization is derived as inherent functions (`remote = "Self"`) wrapped by the
/// trait impls below, so that a deserialized state rebuilds its read indexes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(remote = "Self")]
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
    /// Every certified device: its member, label, when it was added and last wrote, and
    /// whether it forked or was revoked (docs/RULES.md R18).
    pub devices: BTreeMap<DeviceId, DeviceInfo>,
    /// Every change in total order with its status.
    pub log: Vec<LogEntry>,
    /// How many records counted.
    pub counted: usize,
    /// How many records were refused.
    pub refused: usize,
    /// Governance decisions (docs/RULES.md R6).
    pub decisions: BTreeMap<RecordId, Decision>,
    /// Collective purchases (docs/RULES.md R7).
    pub purchases: BTreeMap<RecordId, Purchase>,
    /// Investment pools and relief funds (docs/RULES.md R8–R9).
    pub pools: BTreeMap<RecordId, Pool>,
    /// Contributions to pools, pledged or confirmed.
    pub contributions: BTreeMap<RecordId, Contribution>,
    /// Applications to pools.
    pub applications: BTreeMap<RecordId, Application>,
    /// Relief requests (reasons sealed to the stewards).
    pub relief_requests: BTreeMap<RecordId, ReliefRequest>,
    /// Read indexes, a function of the fields above (kept current by derivation, rebuilt
    /// by [`State::rebuild_indexes`]); not part of the canonical serialization.
    #[serde(skip)]
    pub(crate) indexes: Indexes,
}

impl Serialize for State {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        State::serialize(self, serializer)
    }
}

impl<'de> Deserialize<'de> for State {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<State, D::Error> {
        let mut state = State::deserialize(deserializer)?;
        state.rebuild_indexes();
        Ok(state)
    }
}

/// One certified device of a member, as derived (docs/RULES.md R18).
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeviceInfo {
    /// The member the device acts for.
    pub member: MemberId,
    /// The label its member gave it when pairing (`None` for first devices and old records).
    pub label: Option<String>,
    /// The device's certificate (genesis, join or `device` record).
    pub certificate: RecordId,
    /// Author-claimed time of the certificate, Unix seconds.
    pub added: i64,
    /// Author-claimed time of its latest record that counted, Unix seconds.
    pub last_wrote: i64,
    /// The first sequence number its versions do not share, when it equivocated: its
    /// records before it count, those at and after it do not (docs/RULES.md R15).
    pub forked_at: Option<u64>,
    /// The `device_revoke` record that revoked it, once one counted; or the tally of the
    /// recovery that replaced the identity key which certified it (docs/RULES.md R19).
    pub revoked_by: Option<RecordId>,
}

/// A parameter value and the record that set it (`None` for the genesis defaults).
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
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
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
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
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Member {
    /// Identity.
    pub id: MemberId,
    /// Display name (a label, not an identity).
    pub display_name: String,
    /// Admission status.
    pub status: MemberStatus,
    /// Roles held, in order (the founder holds every role from the genesis; decisions
    /// grant and revoke the others).
    pub roles: Vec<Role>,
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
    /// Who may see this member's balance and history (docs/RULES.md R10); `members` until they set it.
    pub visibility: Visibility,
    /// The recovery that rebound the member to a new identity key, the latest one when
    /// several did (docs/RULES.md R19); `None` while their first identity key stands.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub recovered: Option<Recovered>,
}

/// A member's rebinding to a new identity key by a recovery decision (docs/RULES.md R19).
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Recovered {
    /// The identity key that certifies the member's devices from the tally on.
    pub identity: MemberId,
    /// The recovery decision.
    pub decision: RecordId,
    /// The tally that put it in force.
    pub tally: RecordId,
}

impl Member {
    /// The public key of the identity key that certifies this member's new devices: the
    /// member id itself until a recovery rebinds them.
    pub fn identity_key(&self) -> MemberId {
        self.recovered.map_or(self.id, |r| r.identity)
    }
}

/// A member's confirmed time, in minutes.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct TimeAccount {
    /// Confirmed minutes provided.
    pub provided: Minutes,
    /// Confirmed minutes received.
    pub received: Minutes,
    /// provided − received.
    pub balance: Minutes,
}

/// A member's Support Points.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SpAccount {
    /// Budget.
    pub budget: Points,
    /// Locked on open proposals.
    pub allocated: Points,
    /// budget − allocated.
    pub available: Points,
}

/// Visible mutual-aid history (reputation is history, not a score).
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
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
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
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
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Attestation {
    /// Record id.
    pub id: RecordId,
    /// Who provided the service.
    pub provider: MemberId,
    /// Who received it.
    pub receiver: MemberId,
    /// Minutes.
    pub minutes: Minutes,
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
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ProposalStatus {
    /// Accepting SP.
    Open,
    /// Closed with an outcome.
    Closed(Outcome),
}

/// One allocation.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Allocation {
    /// Record id.
    pub id: RecordId,
    /// Who allocated.
    pub member: MemberId,
    /// Points.
    pub points: Points,
}

/// A proposal as derived.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
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
    pub active_points: Points,
    /// The most SP it ever held.
    pub peak_points: Points,
    /// Distinct members who allocated.
    pub supporters: usize,
    /// Active SP reached the priority threshold.
    pub prioritized: bool,
    /// Counted allocations, in total order.
    pub allocations: Vec<Allocation>,
}

/// Aid request status.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
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
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
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
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
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
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
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
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
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
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EntryStatus {
    /// It counts.
    Counted,
    /// It was refused; see the reason.
    Refused,
}

/// One change in total order.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LogEntry {
    /// Position in the total order.
    pub position: usize,
    /// Record id (change hash).
    pub id: RecordId,
    /// Record kind.
    pub kind: Kind,
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
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Balance {
    /// The member.
    pub member: MemberId,
    /// Balance in minutes.
    pub minutes: Minutes,
    /// Confirmed minutes provided (all time).
    pub provided: Minutes,
    /// Confirmed minutes received (all time).
    pub received: Minutes,
    /// Minutes provided within the fairness window.
    pub window_provided: Minutes,
    /// Minutes received within the fairness window.
    pub window_received: Minutes,
    /// received ÷ provided over the window, in percent (None when nothing was provided).
    pub ratio_percent: Option<i64>,
    /// The fair-exchange warning.
    pub warning: bool,
    /// The window, in days.
    pub window_days: i64,
}

/// Why the state could not be serialized canonically.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StateError {
    /// serde_json refused a value.
    #[error("the derived state does not serialize: {0}")]
    Serialize(#[source] serde_json::Error),
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
    pub(crate) fn empty(community: CommunityId) -> State {
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
            devices: BTreeMap::new(),
            log: Vec::new(),
            counted: 0,
            refused: 0,
            decisions: BTreeMap::new(),
            purchases: BTreeMap::new(),
            pools: BTreeMap::new(),
            contributions: BTreeMap::new(),
            applications: BTreeMap::new(),
            relief_requests: BTreeMap::new(),
            indexes: Indexes::default(),
        }
    }

    /// The read indexes (see [`Indexes`]).
    pub fn indexes(&self) -> &Indexes {
        &self.indexes
    }

    /// Recomputes the read indexes from the rest of the state: for a state assembled from
    /// parts (a family view, a deserialized state) rather than derived.
    pub fn rebuild_indexes(&mut self) {
        self.indexes = Indexes::build(self);
    }

    /// The canonical serialization: identical on replicas holding the same changes.
    ///
    /// Every field serializes (maps are keyed by ids or integers), so this fails only if a
    /// future field breaks that; the failure is then an error, never an empty document
    /// whose digest two broken replicas would share.
    pub fn canonical_json(&self) -> Result<Vec<u8>, StateError> {
        serde_json::to_vec(self).map_err(StateError::Serialize)
    }

    /// SHA-256 of the canonical serialization, hex: a short convergence check.
    pub fn digest(&self) -> Result<String, StateError> {
        Ok(hex::encode(Sha256::digest(self.canonical_json()?)))
    }

    /// A member's balance and fair-exchange index at Unix time `now`.
    pub fn balance(&self, member: &MemberId, now: i64) -> Option<Balance> {
        let m = self.members.get(member)?;
        let today = Day::from_unix(now);
        let from = Day(today.0 - self.params.fairness_window_days as i32);
        let (mut wp, mut wr) = (Minutes(0), Minutes(0));
        // The window's days of confirmed minutes, not the community's attestations.
        let days = self.indexes.confirmed_days(member);
        let window = if from < today {
            days.range((
                std::ops::Bound::Excluded(from),
                std::ops::Bound::Included(today),
            ))
        } else {
            // An empty window (a zero-day fairness window).
            days.range(today..today)
        };
        for (_, d) in window {
            wp += d.provided;
            wr += d.received;
        }
        let (wp_, wr_) = (wp.0, wr.0);
        let ratio_percent = (wp_ > 0).then(|| wr_ * 100 / wp_);
        let warning = if wp_ == 0 {
            wr_ > 0
        } else {
            wr_ * 100 > wp_ * self.params.fairness_warn_percent
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
        self.indexes
            .pending_for(member)
            .iter()
            .filter_map(|id| self.attestations.get(id))
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
