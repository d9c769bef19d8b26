//! What the rules of every record kind work on: the derived state being built, the fold's
//! own indices beside it, the change being folded ([`Ctx`]) and its causal past
//! ([`History`]). The engine that runs the fold is in [`crate::derive`]; the rules are in
//! the record kinds' modules ([`crate::record`]), each implementing [`Rule`].

use std::collections::{BTreeMap, BTreeSet, HashMap};

use crate::causal::Clock;
use crate::envelope::Refusal;
use crate::ids::{DeviceId, MemberId, Points, RecordId};
use crate::params::Params;
use crate::state::{AidHistory, Member, MemberStatus, SpAccount, State, TimeAccount};
use crate::terms::{Role, Visibility};

/// A change as the fold sees it.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Ctx<'a> {
    pub(crate) id: RecordId,
    pub(crate) dev: u32,
    pub(crate) device: DeviceId,
    pub(crate) seq: u64,
    /// Author-claimed time, Unix seconds (signed, never the deriving node's clock).
    pub(crate) time: i64,
    /// Its causal past (the change included).
    pub(crate) clock: Clock<'a>,
    pub(crate) excluded: bool,
}

impl Ctx<'_> {
    /// Whether change `seq` of device index `dev` is in this change's causal past.
    pub(crate) fn seen(&self, dev: u32, seq: u64) -> bool {
        self.clock.get(dev) as u64 >= seq
    }
}

/// The causal past of the change being folded, as the rules may read it.
pub(crate) trait History {
    /// Whether record `id` is held, canonical, and in the causal past of `c`.
    fn precedes(&self, id: &RecordId, c: &Ctx<'_>) -> bool;
    /// The ledger's index of record `id` (stable for the life of a derivation).
    fn position(&self, id: &RecordId) -> Option<usize>;
}

/// How the rules receive the causal past.
pub(crate) type Past<'a> = &'a dyn History;

/// The rules of one record kind, evaluated at the record's place in the total order.
pub(crate) trait Rule {
    /// Whether the author must be admitted in the record's causal past (and not removed):
    /// every kind but the genesis and join requests, which are how members come to be.
    const NEEDS_ADMISSION: bool = true;

    /// Counts the record into `d`, or refuses it. A refusal must leave `d` as it was.
    fn apply(
        &self,
        d: &mut Derived,
        past: Past<'_>,
        c: &Ctx<'_>,
        author: MemberId,
    ) -> Result<(), Refusal>;
}

/// Fold indices for governance.
#[derive(Debug, Clone, Default, serde::Serialize, serde::Deserialize)]
pub(crate) struct GovFold {
    /// Log position of each counted vote (to mark it refused if the tally did not see it).
    pub(crate) vote_pos: BTreeMap<RecordId, usize>,
    /// Entry indices of tallies that passed a removal or a recovery in this pass: both
    /// reach back to records concurrent with them.
    pub(crate) passed_removals: BTreeSet<usize>,
    /// Entry indices of removal and recovery tallies in force from the start of this pass.
    pub(crate) known_removals: BTreeSet<usize>,
}

/// Indices the fold keeps beside the state (serialized in the derived-state cache,
/// `crate::derived_cache`).
#[derive(Debug, Clone, Default, serde::Serialize, serde::Deserialize)]
pub(crate) struct Fold {
    pub(crate) genesis: Option<(u32, MemberId)>,
    pub(crate) device_member: HashMap<u32, MemberId>,
    pub(crate) joins: HashMap<MemberId, Vec<u32>>,
    pub(crate) vouches: HashMap<MemberId, Vec<(u32, u64, MemberId)>>,
    /// Counting removals per member: (device index, seq, clock owner entry index).
    pub(crate) removals: HashMap<MemberId, Vec<usize>>,
    /// Devices proven to have equivocated, each with its fork point: the first sequence
    /// number its versions do not share (docs/RULES.md R15).
    pub(crate) forked: BTreeMap<DeviceId, u64>,
    /// Revocations in force from the start of this pass, per revoked device: (entry index,
    /// record id), in total order (docs/RULES.md R18).
    pub(crate) revocations: HashMap<DeviceId, Vec<(usize, RecordId)>>,
    /// Entry indices of revocations that counted in this pass.
    pub(crate) passed_revocations: BTreeSet<usize>,
    /// Devices a revocation counted for in this pass (a second one is redundant).
    pub(crate) revoked: BTreeSet<DeviceId>,
    pub(crate) locked: HashMap<(MemberId, RecordId), Points>,
    pub(crate) offers: HashMap<RecordId, RecordId>,
    /// The vouch count each member was admitted with (later changes of
    /// `admission_vouches` do not reach back).
    pub(crate) admission_threshold: HashMap<MemberId, i64>,
    pub(crate) gov: GovFold,
}

/// State plus what incremental derivation needs.
#[derive(Debug, Clone)]
pub(crate) struct Derived {
    pub(crate) state: State,
    pub(crate) fold: Fold,
    pub(crate) last_key: Option<(u32, RecordId)>,
    pub(crate) folded: usize,
    pub(crate) epoch: u64,
}

impl Derived {
    pub(crate) fn params(&self) -> &Params {
        &self.state.params
    }

    pub(crate) fn has_role(&self, m: &MemberId, role: Role) -> bool {
        self.state
            .members
            .get(m)
            .is_some_and(|m| m.roles.contains(&role))
    }

    pub(crate) fn precedes(&self, graph: Past<'_>, a: &RecordId, c: &Ctx<'_>) -> bool {
        graph.precedes(a, c)
    }

    /// The member's entry, created pending with no SP: the budget comes with admission.
    pub(crate) fn member_entry(&mut self, id: MemberId, name: &str) -> &mut Member {
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
            recovered: None,
        })
    }
}
