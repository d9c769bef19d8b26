//! The change graph as derivation reads it: every accepted change with its height, its
//! causal past ([`Clocks`]) and whether it sits on a discarded fork branch.
//!
//! [`crate::Ledger`] owns the entries; derivation borrows them through [`Graph`], and the
//! rules of the record kinds see only the narrow [`History`] view of it.

use std::collections::HashMap;

use crate::causal::{Clock, Clocks};
use crate::fold::{Ctx, History};
use crate::gate::Verified;
use crate::ids::RecordId;

/// A change in the ledger.
#[derive(Debug)]
pub(crate) struct Entry {
    pub(crate) v: Verified,
    pub(crate) dev: u32,
    /// 1 + the greatest height of its dependencies: the primary key of the total order.
    pub(crate) height: u32,
    /// Highest op counter in its causal past (including itself).
    pub(crate) max_op: u64,
    /// On the non-canonical side of an equivocation, or built on it: not in the document.
    pub(crate) excluded: bool,
}

/// A read-only view of the change graph, for derivation.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Graph<'a> {
    pub(crate) entries: &'a [Entry],
    pub(crate) index: &'a HashMap<RecordId, u32>,
    /// The causal past of each entry, indexed like `entries`.
    pub(crate) clocks: &'a Clocks,
}

impl<'a> Graph<'a> {
    /// Entry `i` as the fold sees it.
    pub(crate) fn ctx(&self, i: usize) -> Ctx<'a> {
        let e = &self.entries[i];
        Ctx {
            id: e.v.id,
            dev: e.dev,
            device: e.v.device,
            seq: e.v.seq,
            time: e.v.time,
            clock: Clock::Stored(self.clocks, i as u32),
            excluded: e.excluded,
        }
    }
}

impl Entry {
    /// The key of the total order: (height, change hash).
    pub(crate) fn order_key(&self) -> (u32, RecordId) {
        (self.height, self.v.id)
    }
}

impl History for Graph<'_> {
    fn precedes(&self, id: &RecordId, c: &Ctx<'_>) -> bool {
        self.index
            .get(id)
            .map(|&i| &self.entries[i as usize])
            .is_some_and(|e| !e.excluded && c.seen(e.dev, e.v.seq))
    }

    fn position(&self, id: &RecordId) -> Option<usize> {
        self.index.get(id).map(|&i| i as usize)
    }
}
