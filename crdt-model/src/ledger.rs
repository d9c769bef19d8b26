//! The ledger: the set of accepted changes of one community, their Automerge document, and
//! the derived state. Entry points: [`Ledger::ingest`], [`Ledger::state`], [`Ledger::author`],
//! [`Ledger::missing_for`].
//!
//! Gate rule 5 (dependencies present) and equivocation live here. A change whose
//! dependencies are missing waits in a bounded buffer; when the buffer is full the oldest
//! waiting change is dropped (anti-entropy fetches it again).

use crate::record;
use std::collections::{BTreeMap, BTreeSet, HashMap, VecDeque};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Condvar, Mutex};

use automerge::{Automerge, Change};
use serde::Serialize;

use crate::causal::Clocks;
use crate::envelope::{Envelope, Refusal, RejectReason, Rejection, MAX_DEPS};
use crate::fold::Derived;
use crate::gate::{certified_member, verify_arrivals, verify_envelope, Arrival, Verified};
use crate::graph::{Entry, Graph};
use crate::identity::{DeviceKey, IdentityKey};
use crate::ids::{CommunityId, DeviceId, DocId, MemberId, RecordId};
use crate::params::Params;
use crate::receipt::Receipt;
use crate::record::Record;
use crate::state::State;

/// Most changes that may wait for missing dependencies at once.
pub const MAX_PENDING: usize = 20_000;
/// Most bytes of change data that may wait for missing dependencies at once.
pub const MAX_PENDING_BYTES: usize = 64 * 1024 * 1024;
/// Accepted changes applied to the Automerge document in one batch, at the least (a
/// ledger larger than `DOC_BATCH × DOC_BATCH_SHARE` waits for a larger share).
pub const DOC_BATCH: usize = 1024;
/// Stored envelopes [`Ledger::ingest_stored`] takes through the gate at a time.
const STORED_CHUNK: usize = 4 * DOC_BATCH;
/// Past `DOC_BATCH × DOC_BATCH_SHARE` changes, accepted changes wait for the document until
/// they are this share of the ledger (1/16: the walk of the root map costs each change
/// about 16 map entries; see `Ledger::doc_batch`).
const DOC_BATCH_SHARE: usize = 16;
/// Smallest share of a batch worth a verification thread.
const PARALLEL_CHUNK: usize = 64;
/// Envelopes a verification thread takes from a large batch at a time, and the size of a
/// signature batch ([`crate::verify::zip215_batch`]).
const WORK_CHUNK: usize = 4 * PARALLEL_CHUNK;
/// Accepted changes the ingest of a large batch applies to the document at a time while
/// later chunks are still being verified.
const PIPELINE_APPLY: usize = 4 * DOC_BATCH;

/// What one call to [`Ledger::ingest`] did.
#[derive(Debug, Default, Clone)]
#[non_exhaustive]
#[must_use = "accepted changes must be persisted and new forks gossiped"]
pub struct Outcome {
    /// Changes accepted into the ledger, in a causal order (persist these).
    pub accepted: Vec<Envelope>,
    /// Changes refused by the gate, with reasons.
    pub rejected: Vec<Rejection>,
    /// Changes already held (replays); they change nothing.
    pub duplicates: usize,
    /// Changes now waiting for missing dependencies (in total, after this call).
    pub pending: usize,
    /// Waiting changes dropped because the buffer was full.
    pub dropped: usize,
    /// Equivocations discovered by this call; gossip them.
    pub new_forks: Vec<EquivocationProof>,
}

/// Proof that a device signed two different changes with the same sequence number.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EquivocationProof {
    /// One signed change.
    pub a: Envelope,
    /// Another signed change with the same actor and sequence number.
    pub b: Envelope,
}

impl EquivocationProof {
    /// The wire form: two length-prefixed envelopes.
    pub fn encode(&self) -> Vec<u8> {
        let (a, b) = (self.a.encode(), self.b.encode());
        let mut out = Vec::with_capacity(a.len() + b.len() + 8);
        out.extend_from_slice(&(a.len() as u32).to_be_bytes());
        out.extend_from_slice(&a);
        out.extend_from_slice(&b);
        out
    }

    /// Parses the wire form (the proof is checked by [`Ledger::ingest_proof`]).
    pub fn decode(bytes: &[u8]) -> Result<EquivocationProof, Rejection> {
        let bad = || Rejection::anonymous(RejectReason::Malformed, "not an equivocation proof");
        let len = u32::from_be_bytes(
            bytes
                .get(..4)
                .ok_or_else(bad)?
                .try_into()
                .map_err(|_| bad())?,
        ) as usize;
        let a = bytes.get(4..4usize.saturating_add(len)).ok_or_else(bad)?;
        let b = &bytes[4 + len..];
        Ok(EquivocationProof {
            a: Envelope::decode(a)?,
            b: Envelope::decode(b)?,
        })
    }
}

/// Summary of what a replica holds, for catch-up sync: each device's highest sequence number.
pub type SyncClock = BTreeMap<DeviceId, u64>;

/// One community's ledger.
#[derive(Debug)]
pub struct Ledger {
    community: CommunityId,
    /// The ledger's document id, `DocId::ledger(&community)`: every held envelope's.
    doc_id: DocId,
    doc: Automerge,
    /// Entries whose changes are not yet applied to `doc` (applied in batches: Automerge
    /// applies one big batch far faster than many small ones).
    unapplied: Vec<u32>,
    /// Whether `doc` is left unbuilt until [`Ledger::finish_doc`] (while a node reopens its
    /// log and may have a snapshot of the document).
    doc_deferred: bool,
    /// The thread applying a batch of written changes to the document, which it holds
    /// meanwhile (`doc` is an empty placeholder then): see [`Ledger::apply_behind`]. Joined
    /// before anything reads or writes `doc`.
    applying: Option<Applying>,
    /// Heads of the accepted, non-excluded change graph (= the document's heads).
    heads: BTreeSet<RecordId>,
    entries: Vec<Entry>,
    /// The causal past of each entry, indexed like `entries`.
    clocks: Clocks,
    /// The dependencies of every entry, as entry indices: entry `i`'s are the run
    /// `deps[e.deps_at..][..e.deps_len]` (one list, not one allocation per change).
    deps: Vec<u32>,
    index: HashMap<RecordId, u32>,
    devices: Vec<DeviceId>,
    device_index: HashMap<DeviceId, u32>,
    /// Canonical entry per (device, seq).
    by_seq: HashMap<(u32, u64), u32>,
    /// Every hash seen at a fork point.
    fork_points: BTreeMap<(DeviceId, u64), BTreeSet<RecordId>>,
    proofs: BTreeMap<DeviceId, EquivocationProof>,
    /// Proofs of further versions at a fork point (a device may sign more than two): every
    /// replica must learn every version, or they would pick different canonical branches.
    more_proofs: BTreeMap<(RecordId, RecordId), EquivocationProof>,
    /// One held envelope per fork point, to prove a further version against.
    fork_envelopes: BTreeMap<(DeviceId, u64), Envelope>,
    device_members: HashMap<DeviceId, MemberId>,
    /// The founder's device index and identity, once the genesis is held.
    founder: Option<(u32, MemberId)>,
    /// Accepted vouches per member: (device index, seq, voucher).
    vouches: HashMap<MemberId, Vec<(u32, u64, MemberId)>>,
    pending: HashMap<RecordId, Verified>,
    pending_order: VecDeque<RecordId>,
    waiting_on: HashMap<RecordId, Vec<RecordId>>,
    pending_bytes: usize,
    verify_threads: usize,
    /// Mixed into the random coefficients of batch verification (see `set_batch_seed`).
    batch_seed: [u8; 32],
    /// Whether ingest lists the accepted envelopes in its outcome (not when a node reopens
    /// its own log: they are stored already).
    collect_accepted: bool,
    /// Bumped whenever something invalidates incremental derivation.
    epoch: u64,
    derived: Option<Derived>,
}

impl Ledger {
    /// An empty ledger for a community (a newcomer's, before the first sync).
    pub fn new(community: CommunityId) -> Ledger {
        Ledger {
            community,
            doc_id: DocId::ledger(&community),
            doc: Automerge::new(),
            unapplied: Vec::new(),
            doc_deferred: false,
            applying: None,
            heads: BTreeSet::new(),
            entries: Vec::new(),
            clocks: Clocks::default(),
            deps: Vec::new(),
            index: HashMap::new(),
            devices: Vec::new(),
            device_index: HashMap::new(),
            by_seq: HashMap::new(),
            fork_points: BTreeMap::new(),
            proofs: BTreeMap::new(),
            more_proofs: BTreeMap::new(),
            fork_envelopes: BTreeMap::new(),
            device_members: HashMap::new(),
            founder: None,
            vouches: HashMap::new(),
            pending: HashMap::new(),
            pending_order: VecDeque::new(),
            waiting_on: HashMap::new(),
            pending_bytes: 0,
            epoch: 0,
            derived: None,
            verify_threads: 1,
            batch_seed: [0; 32],
            collect_accepted: true,
        }
    }

    /// Founds a community: writes the genesis change and returns the new ledger with it.
    pub fn found(
        identity: &IdentityKey,
        device: &DeviceKey,
        name: &str,
        display_name: &str,
        params: Params,
        time: i64,
    ) -> Result<(Ledger, Envelope), Rejection> {
        let dev = device.device_id();
        let record = Record::from(record::Genesis {
            name: name.to_string(),
            founder: identity.member_id(),
            display_name: display_name.to_string(),
            cert: identity.certify(&CommunityId([0; 32]), &dev),
            params,
        });
        let one = std::num::NonZeroU64::MIN;
        let change = record.to_change(&dev, 1, one, Vec::new(), time);
        let hash = change.hash();
        let community = CommunityId(hash.0);
        let env = Envelope::sign(
            community,
            DocId::ledger(&community),
            device,
            &hash.0,
            change.raw_bytes().to_vec(),
        );
        let mut ledger = Ledger::new(community);
        let out = ledger.ingest(vec![env.clone()]);
        if let Some(r) = out.rejected.into_iter().next() {
            return Err(r);
        }
        Ok((ledger, env))
    }

    /// The community this ledger belongs to.
    pub fn community(&self) -> CommunityId {
        self.community
    }

    /// The replicated Automerge document (a projection of the accepted changes).
    pub fn doc(&mut self) -> &Automerge {
        self.settle_doc();
        if self.doc_deferred {
            self.finish_doc(None);
        }
        self.apply_to_doc();
        &self.doc
    }

    /// Leaves the document unbuilt while the ledger takes in its changes, until
    /// [`Ledger::finish_doc`] (or [`Ledger::doc`]) builds it. A node reopening its log uses
    /// this to start from a snapshot of the document instead of applying every change.
    pub fn defer_doc(&mut self) {
        self.doc_deferred = true;
        self.unapplied.clear();
    }

    /// Builds the deferred document, starting from `snapshot` when one is given: the
    /// accepted changes from entry `from` on (in acceptance order) are applied to it, and it
    /// is kept only if it then holds exactly the ledger's canonical changes (its heads are
    /// the ledger's heads: both change sets are closed under dependencies, so equal heads
    /// mean equal sets, and an Automerge document is a function of its change set).
    /// Otherwise the document is rebuilt from the changes. Returns whether the snapshot
    /// was kept. The snapshot is the caller's own (never bytes from a peer).
    pub fn finish_doc(&mut self, snapshot: Option<(Automerge, usize)>) -> bool {
        self.settle_doc();
        self.doc_deferred = false;
        self.unapplied.clear();
        if let Some((mut doc, from)) = snapshot {
            let rest: Vec<Change> = self
                .entries
                .iter_mut()
                .skip(from)
                .filter(|e| !e.excluded)
                .filter_map(take_change)
                .collect();
            let applied = rest.is_empty() || doc.apply_changes(rest).is_ok();
            let heads: BTreeSet<RecordId> =
                doc.get_heads().into_iter().map(RecordId::from).collect();
            if applied && heads == self.heads {
                self.doc = doc;
                return true;
            }
        }
        self.rebuild_doc();
        false
    }

    /// The heads of the document.
    pub fn heads(&self) -> Vec<RecordId> {
        self.heads.iter().copied().collect()
    }

    /// Number of accepted changes (including those excluded by an equivocation).
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether the ledger holds no change at all.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Whether a change is held.
    pub fn contains(&self, id: &RecordId) -> bool {
        self.index.contains_key(id)
    }

    /// Number of changes waiting for dependencies.
    pub fn pending_len(&self) -> usize {
        self.pending.len()
    }

    /// The member a device is certified for, once its certificate is held.
    pub fn member_of(&self, device: &DeviceId) -> Option<MemberId> {
        self.device_members.get(device).copied()
    }

    /// Every accepted envelope, in the order accepted (a causal order). Each is put
    /// together as it is read: the ledger holds the signature and the change of each, and
    /// the community and document ids once.
    pub fn envelopes(&self) -> impl Iterator<Item = Envelope> + '_ {
        self.entries.iter().map(|e| self.envelope_of(e))
    }

    /// One accepted envelope and its record.
    pub fn get(&self, id: &RecordId) -> Option<(Envelope, &Record)> {
        self.index.get(id).map(|&i| {
            let e = &self.entries[i as usize];
            (self.envelope_of(e), &e.record)
        })
    }

    /// The envelope of an entry, as it was signed and received.
    fn envelope_of(&self, e: &Entry) -> Envelope {
        Envelope {
            community: self.community,
            doc: self.doc_id,
            signature: e.signature,
            change: e.bytes.to_vec(),
        }
    }

    /// Held changes on the discarded branch of an equivocation, or built on one: kept for
    /// audit, but neither in the document nor in the derived state.
    pub fn discarded(&self) -> impl Iterator<Item = Envelope> + '_ {
        self.entries
            .iter()
            .filter(|e| e.excluded)
            .map(|e| self.envelope_of(e))
    }

    /// Known equivocations.
    pub fn proofs(&self) -> impl Iterator<Item = &EquivocationProof> + '_ {
        self.proofs.values().chain(self.more_proofs.values())
    }

    /// Ingests envelopes from anywhere (gossip, sync, import): every one goes through the gate.
    pub fn ingest(&mut self, envelopes: impl IntoIterator<Item = Envelope>) -> Outcome {
        self.ingest_inner(envelopes, true)
    }

    /// Ingests envelopes read back from this node's own store: as [`Ledger::ingest`] but
    /// without re-verifying signatures, which were verified when first accepted.
    /// `coop verify` re-verifies everything with [`Ledger::ingest`] instead.
    pub fn ingest_trusted(&mut self, envelopes: impl IntoIterator<Item = Envelope>) -> Outcome {
        self.ingest_inner(envelopes, false)
    }

    /// Reopens this node's own stored log: as [`Ledger::ingest_trusted`], but the outcome
    /// lists no accepted envelopes (they are stored already; listing them would copy the
    /// whole log once more while the node opens).
    ///
    /// The log is taken in chunks of 4,096: the gate's output for a whole log at once
    /// (every change decoded, most of it dropped again as it is accepted) would leave that
    /// much freed memory scattered between the entries for as long as the node runs.
    pub fn ingest_stored(&mut self, envelopes: impl IntoIterator<Item = Envelope>) -> Outcome {
        self.collect_accepted = false;
        let mut out = Outcome::default();
        let mut envelopes = envelopes.into_iter();
        loop {
            let chunk: Vec<Envelope> = envelopes.by_ref().take(STORED_CHUNK).collect();
            if chunk.is_empty() {
                break;
            }
            let part = self.ingest_inner(chunk, false);
            out.rejected.extend(part.rejected);
            out.duplicates += part.duplicates;
            out.dropped += part.dropped;
            out.new_forks.extend(part.new_forks);
        }
        out.pending = self.pending.len();
        self.collect_accepted = true;
        out
    }

    /// Ingests envelopes, each perhaps with the Automerge change its bytes were already
    /// parsed into (a sync bundle's decoder parses every change it unbundles): as
    /// [`Ledger::ingest`], with the same outcome and the same ledger afterwards, but the
    /// gate does not parse those changes a second time. Every signature is still verified
    /// against the envelope's own bytes and every change is gated before it reaches the
    /// document; a change is used only when its bytes are exactly its envelope's
    /// (otherwise the envelope is parsed, as `ingest` would).
    ///
    /// This is the entry point of catch-up sync, which arrives as a run of batches: when
    /// the accepted changes waiting for the document reach a document batch, they go to
    /// the document on a thread of their own (`Ledger::apply_behind`, as a write's do)
    /// while the caller persists and acknowledges this batch and gates the next one.
    /// [`Ledger::doc`] and everything else that reads or writes the document wait for it
    /// first; a batch Automerge refuses (or a panic while applying it) rebuilds the
    /// document from the accepted changes.
    pub fn ingest_parsed(
        &mut self,
        arrivals: impl IntoIterator<Item = (Envelope, Option<Change>)>,
    ) -> Outcome {
        let mut run = Run {
            behind: true,
            ..Run::default()
        };
        self.verify_all(arrivals.into_iter().collect(), true, &mut run);
        self.finish_run(run)
    }

    fn ingest_inner<A: Arrival + Send>(
        &mut self,
        envelopes: impl IntoIterator<Item = A>,
        check_sig: bool,
    ) -> Outcome {
        let mut run = Run::default();
        self.verify_all(envelopes.into_iter().collect(), check_sig, &mut run);
        self.finish_run(run)
    }

    /// Ends an ingest: the accepted changes go to the document (or a rebuild), parked ones
    /// are counted.
    fn finish_run(&mut self, run: Run) -> Outcome {
        let Run {
            mut out,
            to_apply,
            rebuild,
            parallel,
            behind,
        } = run;
        if self.doc_deferred {
            // Built by `finish_doc`; a rebuild would be wasted work now.
            if rebuild {
                self.epoch += 1;
            }
        } else if rebuild {
            self.rebuild_doc();
        } else {
            self.unapplied.extend(to_apply);
            if self.unapplied.len() >= self.doc_batch() {
                if behind {
                    // A sync batch: the document catches up on a thread while the caller
                    // goes on (see `ingest_parsed`).
                    self.apply_behind();
                } else if !parallel {
                    self.apply_to_doc();
                }
                // After a batch verified in parallel, what waits is left for the next such
                // batch to apply while its own signatures are verified: the serial apply
                // then overlaps the verification instead of following it. `doc` applies
                // whatever waits before it answers.
            }
        }
        self.pending_order
            .retain(|id| self.pending.contains_key(id));
        out.pending = self.pending.len();
        out
    }

    /// Takes gated changes in, in their order: dependencies, equivocation, acceptance.
    fn take_verified(&mut self, verified: Gated, run: &mut Run) {
        let out = &mut run.out;
        for v in verified {
            let v = match v {
                Ok(v) => v,
                Err(mut r) => {
                    r.member = r.device.and_then(|d| self.device_members.get(&d).copied());
                    out.rejected.push(r);
                    continue;
                }
            };
            if self.index.contains_key(&v.id) || self.pending.contains_key(&v.id) {
                out.duplicates += 1;
                continue;
            }
            // Changes released by this one (most release none: no allocation for them).
            let mut ready = Vec::new();
            let mut next = Some(v);
            while let Some(v) = next.take().or_else(|| ready.pop()) {
                let missing: Vec<RecordId> = v
                    .deps
                    .iter()
                    .filter(|d| !self.index.contains_key(d))
                    .copied()
                    .collect();
                if !missing.is_empty() {
                    self.park(v, missing, out);
                    continue;
                }
                let id = v.id;
                match self.accept(v, out) {
                    Ok(Some(entry)) => run.to_apply.push(entry),
                    Ok(None) => run.rebuild = true,
                    Err(r) => {
                        out.rejected.push(r);
                        continue;
                    }
                }
                for w in self.waiting_on.remove(&id).unwrap_or_default() {
                    let still_missing = self
                        .pending
                        .get(&w)
                        .is_some_and(|p| p.deps.iter().any(|d| !self.index.contains_key(d)));
                    if !still_missing {
                        if let Some(p) = self.pending.remove(&w) {
                            self.pending_bytes -= p.envelope.change.len();
                            ready.push(p);
                        }
                    }
                }
            }
        }
    }

    /// While a large batch is still being verified, applies what is accepted so far to the
    /// document (the rest at the end of the ingest, as ever). Not when the document is
    /// deferred or is to be rebuilt anyway, nor for a sync batch (applied behind instead).
    ///
    /// A batch is at least [`PIPELINE_APPLY`] changes and a quarter of the ledger: each
    /// Automerge `apply_changes` call also costs time in proportion to the document (0.12
    /// copies its object table and walks the root map once per call), so batches that grow
    /// with the document keep the whole ingest linear.
    fn apply_while_verifying(&mut self, run: &mut Run) {
        let batch = PIPELINE_APPLY.max(self.entries.len() / 4);
        if self.doc_deferred || run.rebuild || run.behind || run.to_apply.len() < batch {
            return;
        }
        self.unapplied.append(&mut run.to_apply);
        self.apply_to_doc();
    }

    /// Runs the stateless gate on a batch and takes the results in, in order. Signatures
    /// are verified in batches of [`WORK_CHUNK`] ([`crate::verify`]). A large batch is
    /// verified on `verify_threads` threads while this thread takes the verified chunks in
    /// and applies them to the document: the serial Automerge apply of one chunk overlaps
    /// the verification of the next ones. Results do not depend on the thread count, the
    /// chunking or the batch seed.
    fn verify_all<A: Arrival + Send>(&mut self, envelopes: Vec<A>, check_sig: bool, run: &mut Run) {
        let community = self.community;
        let seed = self.batch_seed;
        let threads = self.verify_threads.max(1);
        let gate = |chunk: Vec<A>| verify_chunk(chunk, &community, check_sig, &seed);
        if threads == 1 || envelopes.len() < 2 * PARALLEL_CHUNK {
            let mut rest = envelopes.into_iter().peekable();
            while rest.peek().is_some() {
                let verified = gate(rest.by_ref().take(WORK_CHUNK).collect());
                self.take_verified(verified, run);
            }
            return;
        }
        // Work is handed out in small chunks from a shared counter rather than in one
        // share per thread: when another process takes a core for a while, the other
        // threads keep verifying instead of waiting for the slow share. This thread takes
        // the chunks in order as they are done, and verifies one itself when the next is
        // not done yet.
        let chunks: Vec<Mutex<Vec<A>>> = {
            let mut out = Vec::new();
            let mut rest = envelopes.into_iter().peekable();
            while rest.peek().is_some() {
                out.push(Mutex::new(rest.by_ref().take(WORK_CHUNK).collect()));
            }
            out
        };
        let next = AtomicUsize::new(0);
        let done: Mutex<Vec<Option<Gated>>> = Mutex::new((0..chunks.len()).map(|_| None).collect());
        let ready = Condvar::new();
        // Verifies the next chunk nobody has taken; false when none is left.
        let verify_next = || {
            let i = next.fetch_add(1, Ordering::Relaxed);
            let Some(chunk) = chunks.get(i) else {
                return false;
            };
            let part = std::mem::take(&mut *chunk.lock().unwrap_or_else(|e| e.into_inner()));
            let verified = gate(part);
            done.lock().unwrap_or_else(|e| e.into_inner())[i] = Some(verified);
            ready.notify_all();
            true
        };
        run.parallel = true;
        std::thread::scope(|scope| {
            for _ in 0..threads.min(chunks.len()) {
                scope.spawn(|| while verify_next() {});
            }
            // What earlier batches left unapplied goes into the document now, while the
            // workers verify this batch's first chunks.
            if !self.doc_deferred && self.unapplied.len() >= self.doc_batch() {
                self.apply_to_doc();
            }
            for i in 0..chunks.len() {
                let verified = loop {
                    let mut slots = done.lock().unwrap_or_else(|e| e.into_inner());
                    if let Some(v) = slots[i].take() {
                        break v;
                    }
                    if next.load(Ordering::Relaxed) < chunks.len() {
                        drop(slots);
                        verify_next();
                    } else {
                        // Being verified by a worker, which notifies when it is done.
                        drop(ready.wait(slots).unwrap_or_else(|e| e.into_inner()));
                    }
                };
                self.take_verified(verified, run);
                self.apply_while_verifying(run);
            }
        });
    }

    /// Sets the 32-byte seed that batch verification mixes into each batch's random
    /// coefficients ([`crate::verify`]). The node passes fresh random bytes once, so that
    /// nobody outside can predict a batch's coefficients; without it the coefficients are a
    /// hash of the batch alone. Which signatures are accepted never depends on it.
    pub fn set_batch_seed(&mut self, seed: [u8; 32]) {
        self.batch_seed = seed;
    }

    /// Sets how many threads verify signatures of large batches (default 1). The node sets
    /// it to the machine's parallelism; the result never depends on it.
    pub fn set_verify_threads(&mut self, threads: usize) {
        self.verify_threads = threads.max(1);
    }

    fn park(&mut self, v: Verified, missing: Vec<RecordId>, out: &mut Outcome) {
        let size = v.envelope.change.len();
        while self.pending.len() >= MAX_PENDING || self.pending_bytes + size > MAX_PENDING_BYTES {
            let Some(old) = self.pending_order.pop_front() else {
                break;
            };
            if let Some(gone) = self.pending.remove(&old) {
                out.dropped += 1;
                self.pending_bytes -= gone.envelope.change.len();
                // Unlink it, so the waiting index never outgrows the buffer.
                for d in &gone.deps {
                    if let Some(w) = self.waiting_on.get_mut(d) {
                        w.retain(|x| *x != old);
                        if w.is_empty() {
                            self.waiting_on.remove(d);
                        }
                    }
                }
            }
        }
        self.pending_bytes += size;
        for m in missing {
            let w = self.waiting_on.entry(m).or_default();
            if w.len() < MAX_PENDING {
                w.push(v.id);
            }
        }
        self.pending_order.push_back(v.id);
        self.pending.insert(v.id, v);
    }

    fn intern(&mut self, d: DeviceId) -> u32 {
        if let Some(&i) = self.device_index.get(&d) {
            return i;
        }
        let i = self.devices.len() as u32;
        self.devices.push(d);
        self.device_index.insert(d, i);
        i
    }

    /// Accepts a verified change whose dependencies are all held. Returns the new entry,
    /// whose change is to be applied to the document, or `None` when the document must be
    /// rebuilt instead.
    fn accept(&mut self, v: Verified, out: &mut Outcome) -> Result<Option<u32>, Rejection> {
        let dev = self.intern(v.device);
        let mut clock: Vec<u32> = Vec::with_capacity(self.devices.len());
        let (mut height, mut max_op, mut excluded) = (0u32, 0u64, false);
        // The clock is stored as a delta against the highest dependency (the one most
        // likely to share most of it).
        let mut parent: Option<(u32, u32)> = None;
        for d in &v.deps {
            let at = self.index[d];
            let e = &self.entries[at as usize];
            self.clocks.merge_into(at, &mut clock);
            if parent.is_none_or(|(h, _)| e.height > h) {
                parent = Some((e.height, at));
            }
            height = height.max(e.height);
            max_op = max_op.max(e.max_op);
            excluded |= e.excluded;
        }
        let member = self
            .device_members
            .get(&v.device)
            .copied()
            .or_else(|| certified_member(&v.record));
        let reject = |reason, detail: String| Rejection {
            id: Some(v.id),
            device: Some(v.device),
            member,
            reason,
            detail,
        };
        // Clocks hold a device's sequence numbers as u32 (half the memory of u64); a device
        // that wrote more is refused, never truncated into a clock that would claim a
        // different past.
        let Ok(seq32) = u32::try_from(v.seq) else {
            return Err(reject(
                RejectReason::BadSequence,
                format!(
                    "seq {} is beyond {}, the most changes one device may write",
                    v.seq,
                    u32::MAX
                ),
            ));
        };
        let prev = clock.get(dev as usize).copied().unwrap_or(0) as u64;
        if prev + 1 != v.seq {
            return Err(reject(
                RejectReason::BadSequence,
                format!(
                    "seq {} does not follow seq {prev} in its causal past",
                    v.seq
                ),
            ));
        }
        // Op counters stay dense: exactly one past the highest in the causal past, as
        // Automerge itself writes them. (An arbitrary jump could push later counters past
        // what Automerge can decode and stop every honest writer.)
        let ops = v.change.as_ref().map(|c| (c.start_op(), c.max_op()));
        let Some((start_op, own_max_op)) = ops.or(v.op_range) else {
            return Err(reject(
                RejectReason::Malformed,
                "the change was not decoded".into(),
            ));
        };
        if start_op.get() != max_op + 1 {
            return Err(reject(
                RejectReason::BadSequence,
                format!(
                    "first op counter {start_op} is not {} (one past its causal past)",
                    max_op + 1
                ),
            ));
        }
        // With one dependency (a chain of writes, the common case) the parent's clock is the
        // merged one before this change's own entry: no second lookup to store the delta.
        let parent_clock = (v.deps.len() == 1).then(|| clock.clone());
        if clock.len() <= dev as usize {
            clock.resize(dev as usize + 1, 0);
        }
        clock[dev as usize] = seq32;
        if !v.record.is_certificate() && !self.admitted_in(member, &clock) {
            // Rule 3 at the gate: an unadmitted key writes its join request and nothing
            // else. Admission in a change's causal past never appears later, so this is the
            // same verdict on every replica; removal and forks are left to derivation.
            return Err(reject(
                RejectReason::NotAMember,
                "the author is not an admitted member in this change's causal past".into(),
            ));
        }
        let idx = self.entries.len() as u32;
        let mut needs_rebuild = false;
        let point = (v.device, v.seq);
        let held = self.by_seq.get(&(dev, v.seq)).copied();
        match held {
            None => {
                self.by_seq.insert((dev, v.seq), idx);
                // A further version at a fork point known only from a proof.
                let known = self.fork_envelopes.get(&point).cloned();
                if let Some(known) = known {
                    self.note_fork(point, (known, None), (&v.envelope, v.id), out);
                }
            }
            Some(other) => {
                let o = &self.entries[other as usize];
                let first = (self.envelope_of(o), Some(o.id));
                self.note_fork(point, first, (&v.envelope, v.id), out);
            }
        }
        if let Some(versions) = self.fork_points.get(&point) {
            if versions.first() == Some(&v.id) {
                self.by_seq.insert((dev, v.seq), idx);
                if held.is_some() {
                    // The newcomer is canonical: what was applied must go.
                    needs_rebuild = true;
                }
            } else {
                excluded = true;
            }
        }
        if let Some(m) = certified_member(&v.record) {
            self.device_members.entry(v.device).or_insert(m);
        }
        match &v.record {
            Record::Genesis(genesis) => {
                self.founder = Some((dev, genesis.founder));
            }
            Record::Vouch(record::Vouch { member: m }) if !excluded => {
                if let Some(voucher) = member {
                    self.vouches
                        .entry(*m)
                        .or_default()
                        .push((dev, v.seq, voucher));
                }
            }
            _ => {}
        }
        self.index.insert(v.id, idx);
        if self.collect_accepted {
            out.accepted.push(v.envelope.clone());
        }
        max_op = max_op.max(own_max_op);
        if !excluded {
            for d in &v.deps {
                self.heads.remove(d);
            }
            self.heads.insert(v.id);
        }
        self.clocks
            .push(parent.map(|(_, at)| at), &clock, parent_clock.as_deref());
        debug_assert_eq!(self.clocks.len(), self.entries.len() + 1);
        let deps_at = self.deps.len() as u32;
        self.deps.extend(v.deps.iter().map(|d| self.index[d]));
        self.entries.push(Entry {
            id: v.id,
            signature: v.envelope.signature,
            // Exactly as long as the change (no spare capacity), as the gate decoded it.
            bytes: v.envelope.change.into_boxed_slice(),
            record: v.record,
            time: v.time,
            max_op,
            // Most of a reopened log is in the snapshot of the document already: keeping
            // every decoded change until `finish_doc` would hold the log twice.
            change: if self.doc_deferred { None } else { v.change },
            seq: seq32,
            dev,
            height: height + 1,
            deps_at,
            // The gate refuses more than MAX_DEPS (64) dependencies.
            deps_len: v.deps.len() as u8,
            excluded,
        });
        if needs_rebuild {
            self.recompute_exclusions();
            return Ok(None);
        }
        Ok((!excluded).then_some(idx))
    }

    /// Marks every entry on a non-canonical fork branch (or built on one) as excluded.
    fn recompute_exclusions(&mut self) {
        for i in 0..self.entries.len() {
            let e = &self.entries[i];
            let non_canonical = self
                .fork_points
                .get(&(self.devices[e.dev as usize], u64::from(e.seq)))
                .is_some_and(|s| s.first() != Some(&e.id));
            let dep_excluded = self
                .deps_of(e)
                .iter()
                .any(|&d| self.entries[d as usize].excluded);
            self.entries[i].excluded = non_canonical || dep_excluded;
        }
        let live = self.entries.iter().filter(|e| !e.excluded);
        let mut heads: BTreeSet<RecordId> = live.clone().map(|e| e.id).collect();
        for e in live {
            for &d in self.deps_of(e) {
                heads.remove(&self.entries[d as usize].id);
            }
        }
        self.heads = heads;
        self.epoch += 1;
    }

    /// The dependencies of an entry, as entry indices.
    fn deps_of(&self, e: &Entry) -> &[u32] {
        let at = e.deps_at as usize;
        &self.deps[at..at + usize::from(e.deps_len)]
    }

    /// The decoded changes of the accepted entries not yet in the document, taken out of
    /// their entries (which keep their bytes), in acceptance order.
    fn take_unapplied(&mut self) -> Vec<Change> {
        std::mem::take(&mut self.unapplied)
            .into_iter()
            .filter_map(|i| self.entries.get_mut(i as usize).and_then(take_change))
            .collect()
    }

    /// Applies the accepted changes not yet in the document, in one batch.
    fn apply_to_doc(&mut self) {
        self.settle_doc();
        if self.unapplied.is_empty() {
            return;
        }
        let batch = self.take_unapplied();
        if self.doc.apply_changes(batch).is_err() {
            // Automerge refused a batch the gate passed: fall back to the slow, exact path.
            self.rebuild_doc();
        }
    }

    fn rebuild_doc(&mut self) {
        if let Some(behind) = self.applying.take() {
            // Its document is about to be replaced; waited for, so that two documents are
            // never being built at once.
            let _ = behind.join();
        }
        self.unapplied.clear();
        if self.doc_deferred {
            // Built by `finish_doc` from the final change set.
            self.epoch += 1;
            return;
        }
        let mut live = Vec::with_capacity(self.entries.len());
        for (i, e) in self.entries.iter_mut().enumerate() {
            if e.excluded {
                // Decoded again from the envelope should a fork flip it back in.
                e.change = None;
            } else {
                live.push(i);
            }
        }
        // In a few large batches (each walks the root map once), decoding each batch as it
        // is applied: a whole log's decoded changes are never held at once, nor copied.
        let batch = self.doc_batch().max(live.len() / 4).max(1);
        let mut doc = Automerge::new();
        let mut whole = true;
        for part in live.chunks(batch) {
            let changes: Vec<Change> = part
                .iter()
                .filter_map(|&i| take_change(&mut self.entries[i]))
                .collect();
            if doc.apply_changes(changes).is_err() {
                whole = false;
                break;
            }
        }
        if !whole {
            doc = Automerge::new();
            for &i in &live {
                // A change Automerge cannot apply stays in the log but not in the document
                // (the changes already taken are decoded again from their bytes).
                if let Some(c) = take_change(&mut self.entries[i]) {
                    let _ = doc.apply_changes([c]);
                }
            }
        }
        self.doc = doc;
        self.epoch += 1;
    }

    /// Records two versions at a fork point (`a`'s id is looked up when not given) and the
    /// proof of any version not known before, for gossip.
    fn note_fork(
        &mut self,
        point: (DeviceId, u64),
        a: (Envelope, Option<RecordId>),
        b: (&Envelope, RecordId),
        out: &mut Outcome,
    ) {
        let Some(a_id) = a.1.or_else(|| a.0.record_id()) else {
            return;
        };
        let versions = self.fork_points.entry(point).or_default();
        let grew = versions.insert(a_id) | versions.insert(b.1);
        self.fork_envelopes
            .entry(point)
            .or_insert_with(|| a.0.clone());
        if !grew && self.proofs.contains_key(&point.0) {
            return;
        }
        let proof = EquivocationProof {
            a: a.0,
            b: b.0.clone(),
        };
        if let std::collections::btree_map::Entry::Vacant(slot) = self.proofs.entry(point.0) {
            slot.insert(proof.clone());
        } else {
            self.more_proofs
                .insert((a_id.min(b.1), a_id.max(b.1)), proof.clone());
        }
        out.new_forks.push(proof);
        self.epoch += 1;
    }

    /// Takes in an equivocation proof received from a peer. Returns whether it was new.
    pub fn ingest_proof(&mut self, proof: EquivocationProof) -> Result<bool, Rejection> {
        let a = verify_envelope(proof.a.clone(), &self.community, true)?;
        let b = verify_envelope(proof.b.clone(), &self.community, true)?;
        if a.device != b.device || a.seq != b.seq || a.id == b.id {
            return Err(Rejection::anonymous(
                RejectReason::Malformed,
                "not an equivocation",
            ));
        }
        if !self.device_members.contains_key(&a.device) {
            // A "proof" about a device nobody certified proves nothing worth keeping; were it
            // kept, fresh keys could grow the proof tables without bound. When the device's
            // certificate arrives, holding both versions reveals the fork anyway.
            return Err(Rejection {
                id: Some(a.id),
                device: Some(a.device),
                member: None,
                reason: RejectReason::UnknownReference,
                detail: "equivocation proof about a device with no certificate here".into(),
            });
        }
        let point = (a.device, a.seq);
        let known = |l: &Ledger| {
            l.fork_points
                .get(&point)
                .is_some_and(|s| s.contains(&a.id) && s.contains(&b.id))
        };
        if known(self) && self.proofs.contains_key(&a.device) {
            return Ok(false);
        }
        let mut out = Outcome::default();
        self.note_fork(
            point,
            (proof.a.clone(), Some(a.id)),
            (&proof.b, b.id),
            &mut out,
        );
        // A version we hold at that point is one more version of the fork: without it in
        // the set, we would discard it even where it is the canonical one.
        let held = self
            .device_index
            .get(&a.device)
            .and_then(|dev| self.by_seq.get(&(*dev, a.seq)))
            .map(|&h| &self.entries[h as usize])
            .map(|e| (self.envelope_of(e), e.id));
        if let Some((env, id)) = held {
            self.note_fork(point, (proof.a, Some(a.id)), (&env, id), &mut out);
        }
        let was_applied: Vec<bool> = self.entries.iter().map(|e| e.excluded).collect();
        self.recompute_exclusions();
        if self
            .entries
            .iter()
            .zip(was_applied)
            .any(|(e, was)| e.excluded != was)
        {
            self.rebuild_doc();
        }
        Ok(true)
    }

    /// What this replica holds, for a peer to compute what we lack.
    pub fn sync_clock(&self) -> SyncClock {
        // Indexed by interned device, not a map lookup per change: a catch-up asks for
        // this (and `missing_for`) every round, each a pass over the whole ledger.
        let mut top = vec![0u64; self.devices.len()];
        for e in self.entries.iter().filter(|e| !e.excluded) {
            let s = &mut top[e.dev as usize];
            *s = (*s).max(u64::from(e.seq));
        }
        self.devices
            .iter()
            .zip(top)
            .filter(|(_, s)| *s > 0)
            .map(|(d, s)| (*d, s))
            .collect()
    }

    /// Up to `limit` envelopes a peer with clock `theirs` lacks, in causal order, and
    /// whether more remain.
    pub fn missing_for(&self, theirs: &SyncClock, limit: usize) -> (Vec<Envelope>, bool) {
        // Their clock indexed by interned device (see `sync_clock`).
        let theirs: Vec<u64> = self
            .devices
            .iter()
            .map(|d| theirs.get(d).copied().unwrap_or(0))
            .collect();
        let mut out = Vec::new();
        for e in self.entries.iter().filter(|e| !e.excluded) {
            if u64::from(e.seq) > theirs[e.dev as usize] {
                if out.len() == limit {
                    return (out, true);
                }
                out.push(self.envelope_of(e));
            }
        }
        (out, false)
    }

    /// The next sequence number this device would write.
    fn next_seq(&self, device: &DeviceId) -> u64 {
        let Some(&dev) = self.device_index.get(device) else {
            return 1;
        };
        self.entries
            .iter()
            .rev()
            .find(|e| e.dev == dev && !e.excluded)
            .map_or(1, |e| u64::from(e.seq) + 1)
    }

    /// Writes a record as a new change of `key`'s device on top of the current heads, after
    /// checking that derivation would count it now. A refusal writes nothing.
    pub fn author(
        &mut self,
        key: &DeviceKey,
        record: Record,
        time: i64,
    ) -> Result<Envelope, Rejection> {
        let device = key.device_id();
        let seq = self.next_seq(&device);
        let member = self
            .device_members
            .get(&device)
            .copied()
            .or_else(|| certified_member(&record));
        let refuse = |reason, detail: String| Rejection {
            id: None,
            device: Some(device),
            member,
            reason,
            detail,
        };
        if (seq == 1) != record.is_certificate() {
            return Err(refuse(
                RejectReason::BadCertificate,
                "a device's first record is its certificate, and only its first".into(),
            ));
        }
        // The device's latest change may sit on a discarded fork branch (it built on another
        // device's equivocation): it is held but excluded, so `next_seq` skips it. Writing
        // that sequence number again would make this honest device equivocate.
        let taken = self
            .device_index
            .get(&device)
            .is_some_and(|&dev| self.by_seq.contains_key(&(dev, seq)));
        if taken {
            return Err(refuse(
                RejectReason::DependsOnFork,
                "this device's last change builds on a discarded fork branch; \
                 writing again would equivocate, so register a new device"
                    .into(),
            ));
        }
        if let Some(Refusal { reason, detail }) = self.dry_run(&device, seq, time, &record) {
            return Err(refuse(reason, detail));
        }
        let deps = self.author_deps(&device, seq);
        let heads: Vec<automerge::ChangeHash> = deps.iter().map(|h| h.change_hash()).collect();
        let max_op = heads
            .iter()
            .filter_map(|h| self.index.get(&RecordId::from(*h)))
            .map(|&i| self.entries[i as usize].max_op)
            .max()
            .unwrap_or(0);
        let start_op = std::num::NonZeroU64::new(max_op + 1).unwrap_or(std::num::NonZeroU64::MIN);
        let record_is_certificate = record.is_certificate();
        let change = record.to_change(&device, seq, start_op, heads, time);
        let env = Envelope::sign(
            self.community,
            DocId::ledger(&self.community),
            key,
            &change.hash().0,
            change.raw_bytes().to_vec(),
        );
        // When this write brings the waiting changes to a document batch, they go to the
        // document on a thread of their own, before the write: past 16k changes a batch is
        // a sixteenth of the ledger, and applying it here would stall this write for as
        // long (seconds at 1M changes).
        if !self.doc_deferred && self.unapplied.len() + 1 >= doc_batch_for(self.len() + 1) {
            self.apply_behind();
        }
        // Our own change takes the same path as everyone else's, but for its signature,
        // made just now with `key` over the bytes the gate decodes: verifying it again was a
        // quarter of the cost of writing. A certificate's own signature (by an identity
        // key, possibly another device's) is checked as ever.
        let out = if record_is_certificate {
            self.ingest([env.clone()])
        } else {
            self.ingest_trusted([env.clone()])
        };
        match out.rejected.into_iter().next() {
            Some(r) => Err(r),
            None => Ok(env),
        }
    }

    /// How many accepted changes wait before they are applied to the document: at least
    /// [`DOC_BATCH`], and a fixed share ([`DOC_BATCH_SHARE`]) of the ledger once it is
    /// larger. Automerge's batch apply walks the document's ops of every object a batch
    /// writes to, from the start to the last key it touches, and every change adds a key to
    /// the root map: one apply costs the size of the ledger, whatever the batch. With a
    /// fixed batch the cost per change grew with the ledger (writing one by one at 300k
    /// changes spent twice as long in Automerge as at 20k); a batch that grows with the
    /// ledger keeps it flat. [`Ledger::doc`] applies what waits before answering.
    fn doc_batch(&self) -> usize {
        doc_batch_for(self.entries.len())
    }

    /// Hands the accepted changes waiting for the document to a thread that applies them
    /// while this one goes on: the document moves to that thread and comes back when
    /// anything next reads or writes it ([`Ledger::settle_doc`]: [`Ledger::doc`], the next
    /// batch, a rebuild), so it still holds every accepted change before any read that
    /// needs it. One batch at a time: a batch still being applied is waited for first.
    /// The work is the same as applying the batch in place (the cost of authoring is
    /// measured as the process's CPU time, this thread's included); only the writer no
    /// longer waits for it.
    fn apply_behind(&mut self) {
        self.settle_doc();
        if self.unapplied.is_empty() {
            return;
        }
        let batch = self.take_unapplied();
        let mut doc = std::mem::take(&mut self.doc);
        let spawned = std::thread::Builder::new()
            .name("coop-doc-apply".into())
            .spawn(move || {
                let applied = doc.apply_changes(batch).is_ok();
                (doc, applied)
            });
        match spawned {
            Ok(behind) => self.applying = Some(behind),
            // No thread to be had: the document went with the closure; built again from
            // the log (the slow, exact path, as when Automerge refuses a batch).
            Err(_) => self.rebuild_doc(),
        }
    }

    /// Waits for a batch being applied behind ([`Ledger::apply_behind`]) and takes its
    /// document back; a batch Automerge refused (or a panic while applying it) rebuilds the
    /// document from the log, as [`Ledger::apply_to_doc`] does.
    fn settle_doc(&mut self) {
        let Some(behind) = self.applying.take() else {
            return;
        };
        match behind.join() {
            Ok((doc, true)) => self.doc = doc,
            Ok((_, false)) | Err(_) => self.rebuild_doc(),
        }
    }

    /// Whether `member` may be admitted in a causal past summarized by `clock`: the founder
    /// once the genesis is in it, anyone else once an accepted vouch for them is. This is
    /// the gate's cheap necessary condition (keys nobody vouched for write only their
    /// certificate); the exact threshold — `admission_vouches` as governed, capped by the
    /// number of admitted members — is derivation's, which refuses `not_a_member` below it.
    fn admitted_in(&self, member: Option<MemberId>, clock: &[u32]) -> bool {
        let Some(member) = member else { return false };
        let seen = |dev: u32, seq: u64| clock.get(dev as usize).is_some_and(|s| *s as u64 >= seq);
        if let Some((gdev, founder)) = self.founder {
            if founder == member {
                return seen(gdev, 1);
            }
        }
        self.vouches
            .get(&member)
            .into_iter()
            .flatten()
            .any(|(dev, seq, _)| seen(*dev, *seq))
    }

    /// The devices proven to have equivocated, each with its fork point (the lowest
    /// sequence number at which two versions are known): what derivation needs of the
    /// proofs (docs/RULES.md R15).
    fn forked(&self) -> BTreeMap<DeviceId, u64> {
        let mut out = BTreeMap::new();
        for &(device, seq) in self.fork_points.keys() {
            // Keys sort by (device, seq): the first seen for a device is its lowest.
            out.entry(device).or_insert(seq);
        }
        out
    }

    /// The dependencies of a new change of `device` as `seq`: at most [`MAX_DEPS`] heads,
    /// always including one that has the device's previous change in its past.
    fn author_deps(&self, device: &DeviceId, seq: u64) -> Vec<RecordId> {
        let dev = self.device_index.get(device).copied();
        let own = dev.filter(|_| seq > 1).and_then(|dev| {
            self.heads.iter().copied().find(|h| {
                self.index
                    .get(h)
                    .is_some_and(|&i| self.clocks.get(i, dev) as u64 + 1 >= seq)
            })
        });
        let mut deps: Vec<RecordId> = own.into_iter().collect();
        for h in &self.heads {
            if deps.len() >= MAX_DEPS {
                break;
            }
            if Some(*h) != own {
                deps.push(*h);
            }
        }
        deps
    }

    /// Whether derivation would refuse `record` if written now by `device` as `seq`.
    fn dry_run(
        &mut self,
        device: &DeviceId,
        seq: u64,
        time: i64,
        record: &Record,
    ) -> Option<Refusal> {
        if record.is_certificate() {
            return None;
        }
        self.derived_mut_current();
        let mut clock: Vec<u32> = Vec::new();
        for h in self.author_deps(device, seq) {
            if let Some(&i) = self.index.get(&h) {
                self.clocks.merge_into(i, &mut clock);
            }
        }
        let Some(&dev) = self.device_index.get(device) else {
            return Some(Refusal::new(
                RejectReason::NotAMember,
                "this device has no certificate in the ledger".into(),
            ));
        };
        let Ok(seq32) = u32::try_from(seq) else {
            return Some(Refusal::new(
                RejectReason::BadSequence,
                format!("this device has written {}, the most it may", u32::MAX),
            ));
        };
        if clock.len() <= dev as usize {
            clock.resize(dev as usize + 1, 0);
        }
        clock[dev as usize] = seq32;
        let graph = Graph {
            entries: &self.entries,
            index: &self.index,
            devices: &self.devices,
            clocks: &self.clocks,
        };
        self.derived
            .as_ref()?
            .would_refuse(graph, dev, *device, seq, time, record, &clock)
    }

    /// Brings the cached derivation up to date and returns it.
    fn derived_mut_current(&mut self) -> &mut Derived {
        let graph = Graph {
            entries: &self.entries,
            index: &self.index,
            devices: &self.devices,
            clocks: &self.clocks,
        };
        let fresh = match self.derived.take() {
            Some(mut d) if d.can_extend(graph, self.epoch) => {
                d.extend(graph);
                d
            }
            _ => Derived::from_scratch(graph, &self.forked(), &self.community, self.epoch),
        };
        self.derived.insert(fresh)
    }

    /// The derived state, updated incrementally where the total order allows it.
    pub fn state(&mut self) -> &State {
        &self.derived_mut_current().state
    }

    /// A two-party receipt for an attestation whose confirmation or decline derivation
    /// counted: both signed changes and the certificates of both devices. `None` while the
    /// attestation is pending, refused, or unknown.
    pub fn receipt(&self, attestation: &RecordId) -> Option<Receipt> {
        let scratch;
        let state = match &self.derived {
            Some(d) if d.is_current(self.entries.len(), self.epoch) => &d.state,
            _ => {
                scratch = self.derive_from_scratch();
                &scratch
            }
        };
        let settlement = state.attestations.get(attestation)?.settled_by?;
        let entry = |id: &RecordId| self.index.get(id).map(|&i| &self.entries[i as usize]);
        let cert = |e: &Entry| {
            let &i = self.by_seq.get(&(e.dev, 1))?;
            Some(self.envelope_of(&self.entries[i as usize]))
        };
        let (a, s) = (entry(attestation)?, entry(&settlement)?);
        Some(Receipt {
            community: self.community,
            attestation: self.envelope_of(a),
            settlement: self.envelope_of(s),
            provider_cert: cert(a)?,
            receiver_cert: cert(s)?,
        })
    }

    /// The derived state computed from scratch (for verification; must equal [`Ledger::state`]).
    pub fn derive_from_scratch(&self) -> State {
        let graph = Graph {
            entries: &self.entries,
            index: &self.index,
            devices: &self.devices,
            clocks: &self.clocks,
        };
        Derived::from_scratch(graph, &self.forked(), &self.community, self.epoch).state
    }
}

/// How many accepted changes wait before they are applied to the document in a ledger of
/// `len` changes (see `Ledger::doc_batch`): at least [`DOC_BATCH`], else a sixteenth of it.
pub fn doc_batch_for(len: usize) -> usize {
    DOC_BATCH.max(len / DOC_BATCH_SHARE)
}

/// A batch of written changes being applied to the document on a thread of its own
/// ([`Ledger::apply_behind`]): the document comes back with whether Automerge took the batch.
type Applying = std::thread::JoinHandle<(Automerge, bool)>;

/// The gate's answers for a chunk of envelopes, one per envelope in their order.
type Gated = Vec<Result<Verified, Rejection>>;

/// What an ingest has done so far, while its chunks are taken in.
#[derive(Default)]
struct Run {
    out: Outcome,
    /// Accepted entries not yet applied to the document.
    to_apply: Vec<u32>,
    /// Whether the document must be rebuilt (a fork flipped the canonical branch).
    rebuild: bool,
    /// Whether the batch was verified on several threads (see `Ledger::ingest_inner`).
    parallel: bool,
    /// Whether a document batch this ingest completes is applied on a thread of its own
    /// (a sync batch: see `Ledger::ingest_parsed`).
    behind: bool,
}

/// The gate on one chunk. A panic (a decoder bug) refuses the chunk whole, one rejection per
/// envelope, so that results stay aligned with the input and the ingest goes on.
fn verify_chunk<A: Arrival>(
    chunk: Vec<A>,
    community: &CommunityId,
    check_sig: bool,
    seed: &[u8; 32],
) -> Gated {
    let size = chunk.len();
    catch_unwind(AssertUnwindSafe(|| {
        verify_arrivals(chunk, community, check_sig, seed)
    }))
    .unwrap_or_else(|_| {
        (0..size)
            .map(|_| {
                Err(Rejection::anonymous(
                    RejectReason::Malformed,
                    "verifier panicked",
                ))
            })
            .collect()
    })
}

/// The decoded change of an entry, taken out of it (decoded again from its envelope when
/// it was taken before; the gate decoded the same bytes when it accepted them).
fn take_change(e: &mut Entry) -> Option<Change> {
    e.change
        .take()
        .map(|c| *c)
        .or_else(|| Change::try_from(&e.bytes[..]).ok())
}

/// A serializable summary of the ledger for status output.
#[derive(Debug, Clone, Serialize)]
pub struct LedgerSummary {
    /// Accepted changes.
    pub changes: usize,
    /// Waiting for dependencies.
    pub pending: usize,
    /// Heads of the document.
    pub heads: Vec<RecordId>,
    /// Devices known to have equivocated.
    pub forked_devices: Vec<DeviceId>,
}

impl Ledger {
    /// Counts for `coop status`.
    pub fn summary(&self) -> LedgerSummary {
        LedgerSummary {
            changes: self.entries.len(),
            pending: self.pending.len(),
            heads: self.heads(),
            forked_devices: self.proofs.keys().copied().collect(),
        }
    }
}

impl Ledger {
    /// The derived state as cache bytes (brought up to date first), named by the caller's
    /// `key` and by this ledger's digest of the entries folded (see [`crate::derived_cache`]).
    pub fn derived_cache(
        &mut self,
        key: crate::derived_cache::CacheKey,
    ) -> Result<Vec<u8>, crate::derived_cache::CacheError> {
        self.derived_mut_current();
        let digest = self.entries_digest(self.entries.len());
        let derived = self
            .derived
            .as_ref()
            .ok_or(crate::derived_cache::CacheError::Stale(
                "the ledger has no derivation",
            ))?;
        crate::derived_cache::encode(key, digest, derived)
    }

    /// Starts derivation from a decoded cache, when they were folded over exactly this
    /// ledger's first entries with the same forked devices: the entries accepted since are
    /// folded on top when [`Ledger::state`] is next asked (incrementally where the total
    /// order allows, as for a running node; from scratch otherwise). Returns the cache's
    /// key; refuses (and changes nothing) with the reason otherwise.
    /// The cache is decoded first ([`crate::derived_cache::decode`], on any thread).
    pub fn use_derived_cache(
        &mut self,
        cache: crate::derived_cache::Decoded,
    ) -> Result<crate::derived_cache::CacheKey, crate::derived_cache::CacheError> {
        use crate::derived_cache::CacheError;
        let mut d = cache;
        d.derived.epoch = self.epoch;
        let folded = d.derived.folded;
        if folded > self.entries.len() {
            return Err(CacheError::Stale(
                "it covers more changes than the ledger holds",
            ));
        }
        if self.entries_digest(folded) != d.digest {
            return Err(CacheError::Stale(
                "its changes are not the ledger's first changes",
            ));
        }
        if d.derived.fold.forked != self.forked() {
            return Err(CacheError::Stale("the forked devices differ"));
        }
        self.derived = Some(d.derived);
        Ok(d.key)
    }

    /// The digest of the first `n` entries (change hash, excluded), in ledger order.
    fn entries_digest(&self, n: usize) -> [u8; 32] {
        crate::derived_cache::ledger_digest(self.entries[..n].iter().map(|e| (&e.id, e.excluded)))
    }
}

impl Ledger {
    /// The decoded-log cache of this ledger's entries, in ledger order (see
    /// [`crate::log_cache`]): what decoding each change gave, so that reopening the log
    /// they were stored in need not decode them again.
    pub fn log_cache(&self) -> Vec<u8> {
        let sources = self.entries.iter().map(|e| {
            let deps = self.deps_of(e);
            // Rule: a change's first op counter is one past the highest in its causal past
            // (`accept` refuses any other), and an entry's `max_op` is its change's last.
            let past = deps
                .iter()
                .map(|&d| self.entries[d as usize].max_op)
                .max()
                .unwrap_or(0);
            crate::log_cache::Source {
                id: e.id,
                dev: e.dev,
                seq: u64::from(e.seq),
                time: e.time,
                start_op: past + 1,
                max_op: e.max_op,
                deps,
                record: &e.record,
            }
        });
        crate::log_cache::encode(&self.devices, self.entries.len(), sources)
    }

    /// Reopens stored changes whose decoding came from the decoded-log cache
    /// ([`crate::log_cache::LogCache::next`], which checks each against the log's bytes):
    /// as [`Ledger::ingest_stored`] without the gate's decoding, which the cache stands
    /// for. Everything after the gate — dependencies, sequence and op counters, forks,
    /// admission — is checked as for any change.
    pub fn ingest_cached(&mut self, verified: Vec<Verified>) -> Outcome {
        self.collect_accepted = false;
        let mut run = Run::default();
        self.take_verified(verified.into_iter().map(Ok).collect(), &mut run);
        self.collect_accepted = true;
        self.finish_run(run)
    }
}

impl Ledger {
    /// Makes room for `additional` more accepted changes at once (a node reopening a log
    /// of known length): the entry table and the id index are allocated once at their
    /// size, not grown by doubling — which would hold the old and the new table together
    /// while it copies, and leave up to half of the last one unused.
    pub fn reserve(&mut self, additional: usize) {
        self.entries.reserve_exact(additional);
        self.index.reserve(additional);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use automerge::{ReadDoc, ROOT};

    const T0: i64 = 1_700_000_000;

    fn founded() -> (Ledger, DeviceKey) {
        let identity = IdentityKey::from_seed([1; 32]);
        let device = DeviceKey::from_seed([2; 32]);
        let (ledger, _) = Ledger::found(
            &identity,
            &device,
            "Riverside",
            "Ada",
            Params::default(),
            T0,
        )
        .expect("founding");
        (ledger, device)
    }

    fn rename(name: String) -> Record {
        Record::Rename(record::Rename { display_name: name })
    }

    /// Writes renames until the ledger holds `len` changes.
    /// Another version of `mine` (the same device's next change, written at `t` on a replica
    /// holding `log`) whose id sorts first, so that it is the canonical one of the fork.
    fn rival_sorting_first(
        log: &[Envelope],
        device: &DeviceKey,
        t: i64,
        mine: &Envelope,
    ) -> Envelope {
        let community = log[0].community;
        (0..64)
            .map(|k| {
                let mut other = Ledger::new(community);
                let out = other.ingest(log.to_vec());
                assert!(out.rejected.is_empty());
                other
                    .author(device, rename(format!("Ada theirs {k}")), t)
                    .expect("counts")
            })
            .find(|e| e.record_id() < mine.record_id())
            .expect("one of 64 versions sorts first")
    }

    fn write_to(l: &mut Ledger, device: &DeviceKey, len: usize) {
        while l.len() < len {
            let t = T0 + 60 * l.len() as i64;
            l.author(device, rename(format!("Ada {}", l.len())), t)
                .expect("a rename counts");
        }
    }

    fn doc_holds_the_ledger(l: &mut Ledger) {
        let heads = l.heads();
        let doc = l.doc();
        let doc_heads: Vec<RecordId> = doc.get_heads().into_iter().map(RecordId::from).collect();
        assert_eq!(doc_heads, heads, "the document holds exactly the ledger");
        let len = doc.length(ROOT);
        assert_eq!(len, l.len(), "one root key per change");
    }

    /// The write that completes a document batch hands the batch to a thread instead of
    /// applying it in place; the document has it before anything reads it.
    #[test]
    fn the_write_that_completes_a_document_batch_hands_it_off() {
        let (mut l, device) = founded();
        write_to(&mut l, &device, DOC_BATCH - 1);
        assert!(l.applying.is_none(), "no batch yet");
        assert_eq!(l.unapplied.len(), DOC_BATCH - 1);
        write_to(&mut l, &device, DOC_BATCH);
        assert!(l.applying.is_some(), "the batch went to a thread");
        assert_eq!(
            l.unapplied.len(),
            1,
            "the write itself waits for the next batch"
        );
        doc_holds_the_ledger(&mut l);
        assert!(l.applying.is_none(), "reading the document waited for it");
        // The next batch lands the same way, and a derivation reads the same state as one
        // from scratch.
        write_to(&mut l, &device, 2 * DOC_BATCH + 5);
        doc_holds_the_ledger(&mut l);
        let scratch = l.derive_from_scratch();
        assert_eq!(l.state(), &scratch);
    }

    /// A fork that rebuilds the document while a batch is being applied behind: the rebuild
    /// waits for the thread and the batch's document never comes back over the rebuilt one.
    #[test]
    fn a_rebuild_while_a_batch_is_applied_behind_keeps_the_rebuilt_document() {
        let (mut base, device) = founded();
        write_to(&mut base, &device, DOC_BATCH - 1);
        let log: Vec<Envelope> = base.envelopes().collect();
        // The same device writes its next change twice, on two replicas: an equivocation.
        // Try names until the other replica's version is the canonical one (the lower id),
        // so that taking it in excludes a change the document already holds: a rebuild.
        let t = T0 + 60 * base.len() as i64;
        let mine = base
            .author(&device, rename("Ada mine".into()), t)
            .expect("counts");
        assert!(base.applying.is_some(), "the batch went to a thread");
        let theirs = rival_sorting_first(&log, &device, t, &mine);
        // Ingested while the batch is still being applied (or just done: either way it has
        // not been taken back yet).
        assert!(base.applying.is_some());
        let out = base.ingest([theirs.clone()]);
        assert!(out.rejected.is_empty(), "{:?}", out.rejected);
        assert_eq!(out.new_forks.len(), 1, "the equivocation is found");
        assert!(base.applying.is_none(), "the rebuild waited for the thread");
        doc_holds_the_ledger_but(&mut base, 1);
        assert!(base.heads().contains(&theirs.record_id().expect("an id")));
        assert!(!base.heads().contains(&mine.record_id().expect("an id")));
    }

    /// A ledger of `len` changes written by one device, as envelopes in causal order.
    fn written(len: usize) -> (CommunityId, Vec<Envelope>) {
        let (mut l, device) = founded();
        write_to(&mut l, &device, len);
        (l.community(), l.envelopes().collect())
    }

    /// A newcomer verifying on two threads, as a node does.
    fn newcomer(community: CommunityId) -> Ledger {
        let mut l = Ledger::new(community);
        l.set_verify_threads(2);
        l
    }

    fn arrivals(envelopes: &[Envelope]) -> Vec<(Envelope, Option<Change>)> {
        envelopes.iter().map(|e| (e.clone(), None)).collect()
    }

    /// A sync batch that completes a document batch hands it to a thread instead of
    /// applying it in place (not even while its signatures are verified); a read of the
    /// document waits for it, and the ledger ends as the plain ingest of the same changes
    /// leaves it.
    #[test]
    fn a_sync_batch_goes_to_the_document_behind_and_reads_wait_for_it() {
        let (community, log) = written(PIPELINE_APPLY + 2 * DOC_BATCH + 7);
        let mut l = newcomer(community);
        let first = PIPELINE_APPLY + 100;
        let out = l.ingest_parsed(arrivals(&log[..first]));
        assert!(out.rejected.is_empty(), "{:?}", out.rejected);
        assert_eq!(out.accepted.len(), first);
        assert!(l.applying.is_some(), "the batch went to a thread");
        assert!(l.unapplied.is_empty(), "all of it");
        doc_holds_the_ledger(&mut l);
        assert!(l.applying.is_none(), "reading the document waited for it");
        // Further batches, the next one taken in while the one before is still applied.
        let second = first + DOC_BATCH;
        let out = l.ingest_parsed(arrivals(&log[first..second]));
        assert!(out.rejected.is_empty());
        assert!(l.applying.is_some());
        let out = l.ingest_parsed(arrivals(&log[second..]));
        assert!(out.rejected.is_empty());
        assert_eq!(l.len(), log.len());
        let state = l.state().clone();
        doc_holds_the_ledger(&mut l);
        let mut plain = newcomer(community);
        let out = plain.ingest(log.clone());
        assert!(out.rejected.is_empty());
        assert_eq!(plain.heads(), l.heads());
        assert_eq!(plain.state(), &state);
        assert_eq!(l.derive_from_scratch(), state);
    }

    /// A forged change in a later sync batch, taken in while the batch before it is applied
    /// behind, is refused, and only it; the document holds everything else.
    #[test]
    fn a_bad_change_in_a_later_sync_batch_is_refused_alone() {
        let (community, log) = written(2 * DOC_BATCH + 300);
        let mut l = newcomer(community);
        let first = DOC_BATCH + 10;
        let out = l.ingest_parsed(arrivals(&log[..first]));
        assert!(out.rejected.is_empty());
        assert!(l.applying.is_some(), "the first batch went to a thread");
        // The second batch's last change (nothing depends on it) with a forged signature.
        let mut rest = log[first..].to_vec();
        let forged = rest.last_mut().expect("a change");
        forged.signature[7] ^= 1;
        let forged_id = forged.record_id().expect("an id");
        let out = l.ingest_parsed(arrivals(&rest));
        assert_eq!(out.rejected.len(), 1, "{:?}", out.rejected);
        assert_eq!(out.rejected[0].reason, RejectReason::BadSignature);
        assert_eq!(out.rejected[0].id, Some(forged_id));
        assert_eq!(out.accepted.len(), rest.len() - 1);
        assert!(!l.contains(&forged_id));
        assert_eq!(l.len(), log.len() - 1);
        doc_holds_the_ledger(&mut l);
        assert_eq!(l.derive_from_scratch(), *l.state());
    }

    /// A fork that flips the canonical branch, arriving in a sync batch while the batch
    /// before it is applied behind: the rebuild waits for the thread, and the document holds
    /// the canonical ledger.
    #[test]
    fn a_fork_in_a_sync_batch_while_the_last_is_applied_behind_rebuilds() {
        let (mut base, device) = founded();
        write_to(&mut base, &device, DOC_BATCH + 20);
        let log: Vec<Envelope> = base.envelopes().collect();
        let t = T0 + 60 * base.len() as i64;
        let mine = base
            .author(&device, rename("Ada mine".into()), t)
            .expect("counts");
        // The other version of the same sequence number, sorting first (the canonical one).
        let theirs = rival_sorting_first(&log, &device, t, &mine);
        let mut l = newcomer(base.community());
        let mut first = arrivals(&log);
        first.push((mine.clone(), None));
        let out = l.ingest_parsed(first);
        assert!(out.rejected.is_empty());
        assert!(l.applying.is_some(), "the batch went to a thread");
        let out = l.ingest_parsed(arrivals(std::slice::from_ref(&theirs)));
        assert!(out.rejected.is_empty(), "{:?}", out.rejected);
        assert_eq!(out.new_forks.len(), 1, "the equivocation is found");
        assert!(l.applying.is_none(), "the rebuild waited for the thread");
        doc_holds_the_ledger_but(&mut l, 1);
        assert!(l.heads().contains(&theirs.record_id().expect("an id")));
    }

    /// As `doc_holds_the_ledger`, for a ledger holding `excluded` changes on a discarded
    /// fork branch (not in the document).
    fn doc_holds_the_ledger_but(l: &mut Ledger, excluded: usize) {
        let heads = l.heads();
        let doc = l.doc();
        let doc_heads: Vec<RecordId> = doc.get_heads().into_iter().map(RecordId::from).collect();
        assert_eq!(
            doc_heads, heads,
            "the document holds exactly the canonical ledger"
        );
        let len = doc.length(ROOT);
        assert_eq!(len, l.len() - excluded);
    }
}
