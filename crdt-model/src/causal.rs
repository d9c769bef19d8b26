//! Causal pasts without a vector clock per change: "is change `seq` of device `dev` in the
//! past of change X" answered from per-change deltas and sparse checkpoints.
//!
//! The question is the one a vector clock answers (the highest sequence number of each
//! device in a change's causal past, the change included), and the answers are the same;
//! only the storage differs. Each change records its clock as a delta against one of its
//! dependencies (its *parent*): the devices whose entry differs, which is one device on a
//! chain of writes and grows with the concurrency a merge joins, not with the number of
//! devices. Every [`CHECKPOINT_HOPS`] steps along the parent chain a change stores its whole
//! clock instead (its non-zero entries), so a lookup walks at most that many deltas.
//!
//! Memory is about 16 bytes of metadata and 8 bytes per changed device per change, plus a
//! checkpoint's share (devices × 8 / [`CHECKPOINT_HOPS`]) — against 4 bytes × devices per
//! change for dense clocks.

/// The most parent steps between a change and the checkpoint its lookups end at.
pub(crate) const CHECKPOINT_HOPS: u32 = 32;

/// No parent: the change stores its whole clock.
const NONE: u32 = u32::MAX;

/// Where one change's clock lives.
#[derive(Debug, Clone, Copy)]
struct Meta {
    /// The dependency the delta is relative to, or [`NONE`] for a checkpoint.
    parent: u32,
    /// The delta's (or checkpoint's) first pair in [`Clocks::pairs`].
    start: u32,
    /// Its number of pairs.
    len: u32,
    /// Parent steps from the last checkpoint (0 for a checkpoint).
    hops: u32,
}

/// The clocks of every change of a ledger, indexed like its entries.
#[derive(Debug, Default, Clone)]
pub(crate) struct Clocks {
    metas: Vec<Meta>,
    /// (device index, sequence number), sorted by device within each change's run.
    pairs: Vec<(u32, u32)>,
}

impl Clocks {
    /// The highest sequence number of device `dev` in the past of change `at` (0: none).
    pub(crate) fn get(&self, at: u32, dev: u32) -> u32 {
        let mut at = at;
        loop {
            let Some(m) = self.metas.get(at as usize) else {
                return 0;
            };
            let run = &self.pairs[m.start as usize..(m.start + m.len) as usize];
            if let Ok(k) = run.binary_search_by_key(&dev, |p| p.0) {
                return run[k].1;
            }
            if m.parent == NONE {
                return 0;
            }
            at = m.parent;
        }
    }

    /// Raises `into` (a dense clock, grown as needed) to at least the clock of change `at`.
    pub(crate) fn merge_into(&self, at: u32, into: &mut Vec<u32>) {
        let mut at = at;
        while let Some(m) = self.metas.get(at as usize) {
            for &(dev, seq) in &self.pairs[m.start as usize..(m.start + m.len) as usize] {
                let dev = dev as usize;
                if into.len() <= dev {
                    into.resize(dev + 1, 0);
                }
                into[dev] = into[dev].max(seq);
            }
            if m.parent == NONE {
                break;
            }
            at = m.parent;
        }
    }

    /// Records the clock of the next change (index [`Clocks::len`]): `clock` is its whole
    /// dense clock, `parent` the dependency to store it relative to (one whose clock is at
    /// most `clock` everywhere, as every dependency's is). `known` is the parent's clock
    /// when the caller has it at hand (it is looked up otherwise).
    pub(crate) fn push(&mut self, parent: Option<u32>, clock: &[u32], known: Option<&[u32]>) {
        let start = self.pairs.len() as u32;
        let parent = parent.and_then(|p| self.metas.get(p as usize).map(|m| (p, m.hops + 1)));
        let meta = match parent {
            Some((p, hops)) if hops < CHECKPOINT_HOPS => {
                let mut looked_up = Vec::new();
                let base = match known {
                    Some(b) => b,
                    None => {
                        self.merge_into(p, &mut looked_up);
                        &looked_up
                    }
                };
                for (dev, &seq) in clock.iter().enumerate() {
                    if seq != base.get(dev).copied().unwrap_or(0) {
                        self.pairs.push((dev as u32, seq));
                    }
                }
                Meta {
                    parent: p,
                    start,
                    len: self.pairs.len() as u32 - start,
                    hops,
                }
            }
            _ => {
                for (dev, &seq) in clock.iter().enumerate() {
                    if seq != 0 {
                        self.pairs.push((dev as u32, seq));
                    }
                }
                Meta {
                    parent: NONE,
                    start,
                    len: self.pairs.len() as u32 - start,
                    hops: 0,
                }
            }
        };
        self.metas.push(meta);
    }

    /// Number of changes recorded.
    pub(crate) fn len(&self) -> usize {
        self.metas.len()
    }
}

/// A causal past as the fold reads it: a change's stored clock, or a dense clock (the dry
/// run's prospective change, tests).
#[derive(Debug, Clone, Copy)]
pub(crate) enum Clock<'a> {
    /// A dense vector clock indexed by device.
    Dense(&'a [u32]),
    /// The clock of a stored change.
    Stored(&'a Clocks, u32),
}

impl Clock<'_> {
    /// The highest sequence number of device `dev` in this past (0: none).
    pub(crate) fn get(&self, dev: u32) -> u32 {
        match self {
            Clock::Dense(c) => c.get(dev as usize).copied().unwrap_or(0),
            Clock::Stored(clocks, at) => clocks.get(*at, dev),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A small deterministic generator (no dependency for one test).
    struct Lcg(u64);
    impl Lcg {
        fn next(&mut self, n: u64) -> u64 {
            self.0 = self
                .0
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            (self.0 >> 33) % n
        }
    }

    /// Random DAGs of changes by a few devices: every lookup agrees with dense clocks, and
    /// the stored pairs stay far below changes × devices.
    #[test]
    fn stored_clocks_answer_as_dense_clocks_do() {
        for seed in 0..20u64 {
            let mut rng = Lcg(seed);
            let devices = 1 + rng.next(12) as usize;
            let mut dense: Vec<Vec<u32>> = Vec::new();
            let mut clocks = Clocks::default();
            let mut heads: Vec<u32> = Vec::new();
            for i in 0..600u32 {
                let dev = rng.next(devices as u64) as usize;
                let ndeps = if heads.is_empty() {
                    0
                } else {
                    1 + rng.next(heads.len().min(3) as u64) as usize
                };
                let mut deps: Vec<u32> = Vec::new();
                for _ in 0..ndeps {
                    let d = heads[rng.next(heads.len() as u64) as usize];
                    if !deps.contains(&d) {
                        deps.push(d);
                    }
                }
                // Occasionally build on an older change instead of a head.
                if i > 10 && rng.next(10) == 0 {
                    deps.push(rng.next(i as u64) as u32);
                }
                let mut clock = vec![0u32; devices];
                for &d in &deps {
                    for (c, x) in clock.iter_mut().zip(&dense[d as usize]) {
                        *c = (*c).max(*x);
                    }
                }
                clock[dev] += 1;
                let parent = deps.first().copied();
                // Half the time with the parent's clock given, as the ledger does.
                let known = (i % 2 == 0)
                    .then(|| parent.map(|p| dense[p as usize].clone()))
                    .flatten();
                clocks.push(parent, &clock, known.as_deref());
                dense.push(clock);
                heads.retain(|h| !deps.contains(h));
                heads.push(i);
                if heads.len() > 6 {
                    heads.remove(0);
                }
            }
            for (i, c) in dense.iter().enumerate() {
                for (dev, &seq) in c.iter().enumerate() {
                    assert_eq!(clocks.get(i as u32, dev as u32), seq, "seed {seed}");
                    assert_eq!(
                        Clock::Stored(&clocks, i as u32).get(dev as u32),
                        Clock::Dense(c).get(dev as u32)
                    );
                }
                assert_eq!(clocks.get(i as u32, devices as u32 + 5), 0);
                let mut merged = Vec::new();
                clocks.merge_into(i as u32, &mut merged);
                merged.resize(devices, 0);
                assert_eq!(&merged, c, "seed {seed}");
            }
            assert_eq!(clocks.len(), dense.len());
        }
    }

    /// A chain of writes by many devices stores about one pair per change.
    #[test]
    fn a_chain_stores_one_pair_per_change_and_sparse_checkpoints() {
        let devices = 150;
        let mut clock = vec![0u32; devices];
        let mut clocks = Clocks::default();
        for i in 0..10_000u32 {
            clock[(i as usize * 7) % devices] += 1;
            clocks.push(i.checked_sub(1), &clock, None);
        }
        let per_change = clocks.pairs.len() as f64 / 10_000.0;
        assert!(
            per_change < 1.0 + devices as f64 / CHECKPOINT_HOPS as f64 + 0.5,
            "{per_change} pairs per change"
        );
        assert_eq!(clocks.get(9_999, 0), clock[0]);
    }
}
