//! Deterministic derivation (docs/RULES.md R0): fold every accepted change in one total
//! order — ascending (height in the change graph, change hash) — into the community's state.
//!
//! Changes on the discarded branch of an equivocation, and changes built on them, are not
//! part of the canonical document and are not folded either (the ledger still holds them:
//! [`crate::Ledger::discarded`]).
//!
//! Rules that depend on earlier facts (caps, budgets, floors) are evaluated at each record's
//! position, and every refused record stays in [`State::log`] with its reason. The fold
//! reads only the changes and the devices proven forked: never a clock, never the arrival
//! order. Queries that need "now" ([`State::balance`]) take it as an argument.
//!
//! The engine lives here: the fold in total order, strong removal's fixed point, causal
//! authorization, and the dispatch to the rules of each record kind ([`crate::record`],
//! through [`crate::fold::Rule`]). The dry run of authoring is in [`dry_run`].

use std::collections::{BTreeMap, BTreeSet};

use crate::envelope::{Refusal, RejectReason};
use crate::fold::{Ctx, Derived, Fold};
use crate::graph::Graph;
use crate::ids::{CommunityId, DeviceId, MemberId};
use crate::record::{self, DecisionAction, Record};
use crate::state::{EntryStatus, LogEntry, State};

mod dry_run;
mod index;

impl Derived {
    pub(crate) fn from_scratch(
        graph: Graph<'_>,
        forked: &BTreeMap<DeviceId, u64>,
        community: &CommunityId,
        epoch: u64,
    ) -> Derived {
        // Strong removal (docs/RULES.md R14) refuses a removed member's records anywhere in the order that
        // are not in the removal's causal past, which needs the removals before the fold
        // that decides them. So: fold with the removals known so far, and again with those
        // the fold found passed, until no new one appears. The set only grows (a removal
        // that passed stays in force), so this ends after at most one pass per removal
        // decision; every pass is a function of the change set alone.
        // Device revocations (docs/RULES.md R18) reach back the same way and join the same
        // fixed point: a revocation that counted stays in force.
        let mut known: BTreeSet<usize> = BTreeSet::new();
        let mut known_revocations: BTreeSet<usize> = BTreeSet::new();
        loop {
            let d = Self::fold_pass(graph, forked, community, epoch, &known, &known_revocations);
            let removals_known = d.fold.gov.passed_removals.is_subset(&known);
            let revocations_known = d.fold.passed_revocations.is_subset(&known_revocations);
            if removals_known && revocations_known {
                return d;
            }
            known.extend(d.fold.gov.passed_removals.iter().copied());
            known_revocations.extend(d.fold.passed_revocations.iter().copied());
        }
    }

    fn fold_pass(
        graph: Graph<'_>,
        forked: &BTreeMap<DeviceId, u64>,
        community: &CommunityId,
        epoch: u64,
        known_removals: &BTreeSet<usize>,
        known_revocations: &BTreeSet<usize>,
    ) -> Derived {
        let mut fold = Fold {
            forked: forked.clone(),
            ..Fold::default()
        };
        fold.gov.known_removals = known_removals.clone();
        for (member, i) in Self::removal_targets(graph, known_removals) {
            fold.removals.entry(member).or_default().push(i);
        }
        // In total order, not arrival order: the first removal a record falls outside of
        // is named in its refusal, which must read the same on every replica.
        for removals in fold.removals.values_mut() {
            removals.sort_by_key(|&i| graph.entries[i].order_key());
        }
        for &i in known_revocations {
            let e = &graph.entries[i];
            if let Record::DeviceRevoke(record::DeviceRevoke { device, .. }) = &e.record {
                fold.revocations.entry(*device).or_default().push((i, e.id));
            }
        }
        // A recovery in force revokes, from its tally on, every device of the member that
        // another identity key than the new one certified (docs/RULES.md R19).
        for (member, identity, i) in Self::recovery_targets(graph, known_removals) {
            let tally = graph.entries[i].id;
            for e in graph.entries.iter().filter(|e| e.seq == 1) {
                if crate::gate::certified_member(&e.record) == Some(member)
                    && certifying_key(&e.record) != Some(identity)
                {
                    fold.revocations
                        .entry(graph.device(e))
                        .or_default()
                        .push((i, tally));
                }
            }
        }
        for revocations in fold.revocations.values_mut() {
            revocations.sort_by_key(|&(i, _)| graph.entries[i].order_key());
        }
        let state = State::empty(*community);
        // Changes on a discarded fork branch (or built on one) are not folded: a replica
        // that learnt of the fork through a proof and catch-up sync never receives them,
        // and must still derive the same state as one that holds them.
        let mut order: Vec<usize> = (0..graph.entries.len())
            .filter(|&i| !graph.entries[i].excluded)
            .collect();
        order.sort_by_key(|&i| graph.entries[i].order_key());
        let mut d = Derived {
            state,
            fold,
            last_key: None,
            folded: graph.entries.len(),
            epoch,
        };
        for i in order {
            d.fold_entry(graph, i);
            d.last_key = Some(graph.entries[i].order_key());
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
                && !matches!(e.record, Record::Genesis(_) | Record::DeviceRevoke(_))
                && !self.tally_needs_refold(&e.record)
                && !self.certifies_for_recovered(&e.record)
                && self.last_key.is_none_or(|k| e.order_key() > k)
        })
    }

    /// Whether `record` certifies a device for a member a recovery rebound: the recovery
    /// revokes such a device unless the new key signed it, which is decided when the fold
    /// starts (docs/RULES.md R19), so it needs a full refold.
    fn certifies_for_recovered(&self, record: &Record) -> bool {
        crate::gate::certified_member(record).is_some_and(|m| {
            self.state
                .members
                .get(&m)
                .is_some_and(|m| m.recovered.is_some())
        })
    }

    pub(crate) fn extend(&mut self, graph: Graph<'_>) {
        let mut new: Vec<usize> = (self.folded..graph.entries.len())
            .filter(|&i| !graph.entries[i].excluded)
            .collect();
        new.sort_by_key(|&i| graph.entries[i].order_key());
        for i in new {
            self.fold_entry(graph, i);
            self.last_key = Some(graph.entries[i].order_key());
        }
        self.folded = graph.entries.len();
    }

    fn fold_entry(&mut self, graph: Graph<'_>, i: usize) {
        let e = &graph.entries[i];
        if let Some(m) = crate::gate::certified_member(&e.record) {
            self.fold.device_member.entry(e.dev).or_insert(m);
        }
        let ctx = graph.ctx(i);
        let result = self.apply(graph, &ctx, &e.record);
        // A certificate signed by a recovery key that did not count binds its device to no
        // one: else the device would write as the member it names (docs/RULES.md R19).
        if result.is_err()
            && matches!(&e.record, Record::Device(device) if device.identity.is_some())
        {
            self.fold.device_member.remove(&e.dev);
        }
        let member = self.fold.device_member.get(&e.dev).copied();
        let (status, reason, detail) = match result {
            Ok(()) => {
                self.index_counted(&e.id, &e.record);
                self.state.counted += 1;
                self.device_wrote(&graph.device(e), e.time);
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
        self.state
            .indexes
            .logged(e.record.kind_of(), e.id, position, reason.is_some());
        self.state.log.push(LogEntry {
            position,
            id: e.id,
            kind: e.record.kind_of(),
            device: graph.device(e),
            member,
            time: e.time,
            summary: e.record.summary(),
            status,
            reason,
            detail,
        });
    }

    /// Causal authorization (docs/RULES.md, "Authorization and causality") and then the
    /// rules of the record's kind.
    fn apply(&mut self, graph: Graph<'_>, c: &Ctx<'_>, record: &Record) -> Result<(), Refusal> {
        if let Some(&fork_at) = self.fold.forked.get(&c.device) {
            if let Some(m) = self.fold.device_member.get(&c.dev) {
                self.state.forked_devices.insert(c.device, Some(*m));
                if let Some(mem) = self.state.members.get_mut(m) {
                    mem.devices.insert(c.device, true);
                }
            }
            // Records before the fork point are the prefix every version shares: they keep
            // counting (docs/RULES.md R15). The canonical certificate of a forked device
            // still binds it to its member: the member must stay in the state to be
            // flagged, and a founder's genesis is the community itself. Everything at and
            // after the fork point stops counting.
            let before_fork = c.seq < fork_at;
            if !(before_fork || record.is_certificate()) || c.excluded {
                return Err(Refusal::new(
                    RejectReason::ForkedDevice,
                    format!(
                        "the device equivocated at its change {fork_at}; this is its change {}",
                        c.seq
                    ),
                ));
            }
        }
        // A revoked device's records count only inside the revocation's causal past
        // (docs/RULES.md R18), the first revocation in total order named.
        let outside = self
            .fold
            .revocations
            .get(&c.device)
            .and_then(|rs| rs.iter().find(|&&(r, _)| !graph.ctx(r).seen(c.dev, c.seq)));
        if let Some(&(r, id)) = outside {
            return Err(if matches!(graph.entries[r].record, Record::Tally(_)) {
                Refusal::new(
                    RejectReason::RecoveredIdentity,
                    format!(
                        "certified by an identity key the recovery closed by {} replaced, \
                         and written outside that tally's past",
                        id.short()
                    ),
                )
            } else {
                Refusal::new(
                    RejectReason::RevokedDevice,
                    format!("written outside the past of revocation {}", id.short()),
                )
            });
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
        if record.needs_admission() {
            self.authorize(graph, c, author)?;
        }
        record.apply(self, &graph, c, author)
    }

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
            if !graph.ctx(r).seen(c.dev, c.seq) {
                return Err(Refusal::new(
                    RejectReason::RemovedMember,
                    format!("written outside the past of removal {}", removal.id.short()),
                ));
            }
        }
        Ok(())
    }

    /// The recovery tallies among `tallies`: (member, new identity key, entry index).
    fn recovery_targets(
        graph: Graph<'_>,
        tallies: &BTreeSet<usize>,
    ) -> Vec<(MemberId, MemberId, usize)> {
        tallies
            .iter()
            .filter_map(|&i| {
                let Record::Tally(record::Tally { decision }) = &graph.entries[i].record else {
                    return None;
                };
                let d = graph.index.get(decision)?;
                match &graph.entries[*d as usize].record {
                    Record::Decision(decision) => match decision.action {
                        DecisionAction::Recovery {
                            member,
                            new_identity,
                        } => Some((member, new_identity, i)),
                        _ => None,
                    },
                    _ => None,
                }
            })
            .collect()
    }

    /// The removal tallies (entry index → removed member) among `tallies`.
    fn removal_targets(graph: Graph<'_>, tallies: &BTreeSet<usize>) -> Vec<(MemberId, usize)> {
        tallies
            .iter()
            .filter_map(|&i| {
                let Record::Tally(record::Tally { decision }) = &graph.entries[i].record else {
                    return None;
                };
                let d = graph.index.get(decision)?;
                match &graph.entries[*d as usize].record {
                    Record::Decision(decision) => match decision.action {
                        DecisionAction::Removal { member } => Some((member, i)),
                        _ => None,
                    },
                    _ => None,
                }
            })
            .collect()
    }
}

/// The identity key that signed a certificate record: the member's own key, or the recovery
/// key a `device` record names.
fn certifying_key(record: &Record) -> Option<MemberId> {
    match record {
        Record::Device(device) => Some(device.identity.unwrap_or(device.member)),
        other => crate::gate::certified_member(other),
    }
}
