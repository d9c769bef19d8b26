//! Read indexes beside the derived state: what the queries of [`crate::query`] look up so
//! that each answer costs what the answer holds, not what the ledger holds.
//!
//! The indexes are a pure function of the rest of the [`State`]: [`Indexes::build`] computes
//! them by scanning it, and derivation keeps them current record by record
//! ([`Indexes::touch`], called by the fold for every record that counts, with the records it
//! names). Both give the same value (tested over generated ledgers), so the indexes are
//! deterministic, rebuildable, and not part of the canonical serialization.
//!
//! Every set holds record ids in id order (or `(day, id)` for hours), so a query that walks
//! an index lists in the same order as one that scans the state's maps.

use std::collections::{BTreeMap, BTreeSet};

use crate::ids::{Day, MemberId, Minutes, RecordId};
use crate::terms::Kind;

use super::{
    AidStatus, AttestationStatus, ContributionStatus, DecisionStatus, EntryStatus, ReliefStatus,
    State,
};

/// Confirmed minutes of one member on one day of service.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct DayMinutes {
    /// Minutes provided.
    pub provided: Minutes,
    /// Minutes received.
    pub received: Minutes,
}

/// The read indexes of a [`State`] (see the module docs).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Indexes {
    /// Every attestation of each member, given or received, by (day of service, id).
    hours: BTreeMap<MemberId, BTreeSet<(Day, RecordId)>>,
    /// Pending attestations, by receiver.
    pending: BTreeMap<MemberId, BTreeSet<RecordId>>,
    /// Confirmed minutes per member and day of service (the fair-exchange window sums
    /// these days instead of the attestations).
    confirmed: BTreeMap<MemberId, BTreeMap<Day, DayMinutes>>,
    /// The attestation each confirmation or decline settled.
    settlements: BTreeMap<RecordId, RecordId>,
    /// The aid request each counted aid confirmation confirmed.
    aid_confirmations: BTreeMap<RecordId, RecordId>,
    /// Aid requests open or matched, by party (requester; helper once matched).
    active_aid: BTreeMap<MemberId, BTreeSet<RecordId>>,
    /// Decisions still open (their closing time is checked by the reader).
    open_decisions: BTreeSet<RecordId>,
    /// Relief requests awaiting approval.
    pending_relief: BTreeSet<RecordId>,
    /// Contributions pledged and not yet confirmed.
    pledged: BTreeSet<RecordId>,
    /// Log positions of each kind of record, ascending.
    by_kind: BTreeMap<Kind, Vec<usize>>,
    /// The log position of each record.
    position: BTreeMap<RecordId, usize>,
    /// Log positions of refused records.
    refused: BTreeSet<usize>,
}

static EMPTY_IDS: BTreeSet<RecordId> = BTreeSet::new();
static EMPTY_HOURS: BTreeSet<(Day, RecordId)> = BTreeSet::new();
static EMPTY_DAYS: BTreeMap<Day, DayMinutes> = BTreeMap::new();

impl Indexes {
    /// The indexes of `state`, by scanning it (what derivation keeps current).
    pub fn build(state: &State) -> Indexes {
        let mut ix = Indexes::default();
        // Indices into the log (its positions, in a derived state).
        for (i, e) in state.log.iter().enumerate() {
            ix.logged(e.kind, e.id, i, e.status == EntryStatus::Refused);
        }
        let ids = state
            .attestations
            .keys()
            .chain(state.aid_requests.keys())
            .chain(state.decisions.keys())
            .chain(state.relief_requests.keys())
            .chain(state.contributions.keys());
        for id in ids {
            ix.touch(state, id);
        }
        ix
    }

    /// Records a log entry of `kind` and id `id` at `position` (positions arrive in
    /// ascending order), refused or not.
    pub(crate) fn logged(&mut self, kind: Kind, id: RecordId, position: usize, refused: bool) {
        self.by_kind.entry(kind).or_default().push(position);
        self.position.insert(id, position);
        if refused {
            self.refused.insert(position);
        }
    }

    /// Records the votes a tally refused after they had counted (it did not see them):
    /// every vote's entry is checked, which costs the votes, once per tally.
    pub(crate) fn tallied(&mut self, state: &State) {
        for &p in self.by_kind.get(&Kind::Vote).into_iter().flatten() {
            if state
                .log
                .get(p)
                .is_some_and(|e| e.status == EntryStatus::Refused)
            {
                self.refused.insert(p);
            }
        }
    }

    /// Brings the entries of record `id` up to date with `state`: an attestation, aid
    /// request, decision, relief request or contribution that was created or changed. Any
    /// other id is ignored. Idempotent.
    pub(crate) fn touch(&mut self, state: &State, id: &RecordId) {
        if let Some(a) = state.attestations.get(id) {
            for m in [a.provider, a.receiver] {
                self.hours.entry(m).or_default().insert((a.date, a.id));
            }
            if a.status == AttestationStatus::Pending {
                self.pending.entry(a.receiver).or_default().insert(a.id);
            } else {
                remove(&mut self.pending, &a.receiver, &a.id);
            }
            if let Some(s) = a.settled_by {
                // Settled once: the first time it is seen settled, its minutes count.
                if self.settlements.insert(s, a.id).is_none()
                    && a.status == AttestationStatus::Confirmed
                {
                    for (m, gave) in [(a.provider, true), (a.receiver, false)] {
                        let day = self.confirmed.entry(m).or_default();
                        let day = day.entry(a.date).or_default();
                        if gave {
                            day.provided += a.minutes;
                        } else {
                            day.received += a.minutes;
                        }
                    }
                }
            }
        }
        if let Some(r) = state.aid_requests.get(id) {
            for c in [&r.requester_confirmation, &r.helper_confirmation]
                .into_iter()
                .flatten()
            {
                self.aid_confirmations.insert(c.id, r.id);
            }
            let active = matches!(r.status, AidStatus::Open | AidStatus::Matched);
            for m in std::iter::once(r.requester).chain(r.helper) {
                if active {
                    self.active_aid.entry(m).or_default().insert(r.id);
                } else {
                    remove(&mut self.active_aid, &m, &r.id);
                }
            }
        }
        if let Some(d) = state.decisions.get(id) {
            toggle(
                &mut self.open_decisions,
                d.id,
                d.status == DecisionStatus::Open,
            );
        }
        if let Some(r) = state.relief_requests.get(id) {
            toggle(
                &mut self.pending_relief,
                r.id,
                r.status == ReliefStatus::Pending,
            );
        }
        if let Some(c) = state.contributions.get(id) {
            toggle(
                &mut self.pledged,
                c.id,
                c.status == ContributionStatus::Pledged,
            );
        }
    }

    /// A member's attestations, given and received, by (day of service, id).
    pub fn hours_of(&self, member: &MemberId) -> &BTreeSet<(Day, RecordId)> {
        self.hours.get(member).unwrap_or(&EMPTY_HOURS)
    }

    /// Attestations waiting on `member`'s confirmation, in id order.
    pub fn pending_for(&self, member: &MemberId) -> &BTreeSet<RecordId> {
        self.pending.get(member).unwrap_or(&EMPTY_IDS)
    }

    /// A member's confirmed minutes by day of service.
    pub fn confirmed_days(&self, member: &MemberId) -> &BTreeMap<Day, DayMinutes> {
        self.confirmed.get(member).unwrap_or(&EMPTY_DAYS)
    }

    /// The attestation a confirmation or decline settled.
    pub fn settled(&self, settlement: &RecordId) -> Option<&RecordId> {
        self.settlements.get(settlement)
    }

    /// The aid request an aid confirmation confirmed.
    pub fn confirmed_request(&self, confirmation: &RecordId) -> Option<&RecordId> {
        self.aid_confirmations.get(confirmation)
    }

    /// Aid requests open or matched in which `member` is the requester or the helper.
    pub fn active_aid(&self, member: &MemberId) -> &BTreeSet<RecordId> {
        self.active_aid.get(member).unwrap_or(&EMPTY_IDS)
    }

    /// Decisions whose status is still open.
    pub fn open_decisions(&self) -> &BTreeSet<RecordId> {
        &self.open_decisions
    }

    /// Relief requests awaiting approval.
    pub fn pending_relief(&self) -> &BTreeSet<RecordId> {
        &self.pending_relief
    }

    /// Contributions pledged and not yet confirmed.
    pub fn pledged(&self) -> &BTreeSet<RecordId> {
        &self.pledged
    }

    /// Log positions of the refused records, ascending.
    pub fn refused(&self) -> &BTreeSet<usize> {
        &self.refused
    }

    /// Log positions (indices into [`State::log`]) of the records of `kind`, ascending.
    pub fn positions_of(&self, kind: Kind) -> &[usize] {
        self.by_kind.get(&kind).map_or(&[], Vec::as_slice)
    }
}

impl Indexes {
    /// The log position of record `id`.
    pub fn position_of(&self, id: &RecordId) -> Option<usize> {
        self.position.get(id).copied()
    }

    /// The records whose id starts with the lowercase hex `prefix`, in id order, with
    /// their log positions: a range of the id index, not a scan of the log.
    pub fn with_prefix<'a>(
        &'a self,
        prefix: &'a str,
    ) -> impl Iterator<Item = (&'a RecordId, usize)> + 'a {
        // The smallest id with this prefix: its hex digits, then zeros.
        let mut low = [0u8; 32];
        for (i, c) in prefix.chars().take(64).enumerate() {
            let v = c.to_digit(16).unwrap_or(0) as u8;
            low[i / 2] |= if i % 2 == 0 { v << 4 } else { v };
        }
        self.position
            .range(RecordId(low)..)
            .take_while(move |(id, _)| id.to_hex().starts_with(prefix))
            .map(|(id, p)| (id, *p))
    }
}

fn remove<K: Ord>(map: &mut BTreeMap<MemberId, BTreeSet<K>>, m: &MemberId, k: &K) {
    if let Some(set) = map.get_mut(m) {
        set.remove(k);
        if set.is_empty() {
            map.remove(m);
        }
    }
}

fn toggle(set: &mut BTreeSet<RecordId>, id: RecordId, member: bool) {
    if member {
        set.insert(id);
    } else {
        set.remove(&id);
    }
}
