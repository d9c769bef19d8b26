//! The change graph as derivation reads it: every accepted change with its height, its
//! causal past ([`Clocks`]) and whether it sits on a discarded fork branch.
//!
//! [`crate::Ledger`] owns the entries; derivation borrows them through [`Graph`], and the
//! rules of the record kinds see only the narrow [`History`] view of it.

use std::collections::HashMap;

use automerge::Change;

use crate::causal::{Clock, Clocks};
use crate::fold::{Ctx, History};
use crate::ids::{DeviceId, RecordId};
use crate::record::Record;

/// A change in the ledger: what the gate verified ([`crate::gate::Verified`]), laid out to
/// be held a million times over. What the ledger already knows is not repeated per change:
/// the envelope's community and document ids are the ledger's own (it puts them back when
/// it hands an envelope out), the device is its index `dev` into the ledger's devices, and
/// the dependencies are a run of entry indices in the ledger's shared dependency list.
#[derive(Debug)]
pub(crate) struct Entry {
    /// The change hash.
    pub(crate) id: RecordId,
    /// The device's signature of the change (the envelope's).
    pub(crate) signature: [u8; 64],
    /// The signed Automerge change chunk, byte for byte as received (it serves sync,
    /// receipts and rebuilds of the document).
    pub(crate) bytes: Box<[u8]>,
    /// The record the change carries.
    pub(crate) record: Record,
    /// The author-claimed time (Unix seconds), signed with the change.
    pub(crate) time: i64,
    /// Highest op counter in its causal past (including itself).
    pub(crate) max_op: u64,
    /// The decoded change, until the ledger hands it to the document.
    pub(crate) change: Option<Box<Change>>,
    /// The device's sequence number of this change (the gate refuses one beyond `u32`).
    pub(crate) seq: u32,
    /// The signing device, as an index into the ledger's devices.
    pub(crate) dev: u32,
    /// 1 + the greatest height of its dependencies: the primary key of the total order.
    pub(crate) height: u32,
    /// Where its dependencies (entry indices) start in the ledger's dependency list.
    pub(crate) deps_at: u32,
    /// How many dependencies it has (at most [`crate::envelope::MAX_DEPS`]).
    pub(crate) deps_len: u8,
    /// On the non-canonical side of an equivocation, or built on it: not in the document.
    pub(crate) excluded: bool,
}

/// A read-only view of the change graph, for derivation.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Graph<'a> {
    pub(crate) entries: &'a [Entry],
    pub(crate) index: &'a HashMap<RecordId, u32>,
    /// The devices, indexed by [`Entry::dev`].
    pub(crate) devices: &'a [DeviceId],
    /// The causal past of each entry, indexed like `entries`.
    pub(crate) clocks: &'a Clocks,
}

impl<'a> Graph<'a> {
    /// Entry `i` as the fold sees it.
    pub(crate) fn ctx(&self, i: usize) -> Ctx<'a> {
        let e = &self.entries[i];
        Ctx {
            id: e.id,
            dev: e.dev,
            device: self.device(e),
            seq: u64::from(e.seq),
            time: e.time,
            clock: Clock::Stored(self.clocks, i as u32),
            excluded: e.excluded,
        }
    }

    /// The device that signed entry `e`.
    pub(crate) fn device(&self, e: &Entry) -> DeviceId {
        self.devices[e.dev as usize]
    }
}

impl Entry {
    /// The key of the total order: (height, change hash).
    pub(crate) fn order_key(&self) -> (u32, RecordId) {
        (self.height, self.id)
    }
}

impl History for Graph<'_> {
    fn precedes(&self, id: &RecordId, c: &Ctx<'_>) -> bool {
        self.index
            .get(id)
            .map(|&i| &self.entries[i as usize])
            .is_some_and(|e| !e.excluded && c.seen(e.dev, u64::from(e.seq)))
    }

    fn position(&self, id: &RecordId) -> Option<usize> {
        self.index.get(id).map(|&i| i as usize)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::mem::size_of;

    /// A ledger holds one entry per change, and a running node holds every change of its
    /// community: these pin the inline sizes reached (docs/PERFORMANCE.md, "Memory") so
    /// that a new field or a large new record kind does not grow them unnoticed. A new
    /// record kind larger than an hour attestation is boxed (see `record/mod.rs`).
    #[test]
    fn an_entry_and_a_record_stay_small() {
        assert!(size_of::<Record>() <= 96, "Record: {}", size_of::<Record>());
        assert!(size_of::<Entry>() <= 256, "Entry: {}", size_of::<Entry>());
    }
}
