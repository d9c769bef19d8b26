//! A member's node without the network: the store, the keys and the ledger in one place.
//!
//! `coop` commands use it directly when no `coop up` runs for the data dir; the running
//! node's store actor owns one. Every accepted change is in the store, flushed, before a
//! call returns.

use coop_model::record;
use coop_model::{
    CommunityId, DeviceId, Envelope, EquivocationProof, Ledger, MemberId, Outcome, Params, Record,
    RecordId, Rejection, State,
};
use serde::{Deserialize, Serialize};

use crate::datadir::{Config, DataDir};
use crate::error::NodeError;
use crate::snapshot::{self, Snapshot};
use crate::store::Store;

/// Fewest log entries worth a snapshot of the document (below, replaying the log is quick).
pub const SNAPSHOT_MIN: u64 = 1_000;
/// New log entries since the last snapshot after which the node writes another while it
/// runs: at least this many, and at least as many as the last one covered (the interval
/// doubles), so the cost of `save()`, linear in the document, stays a bounded share of
/// ingesting — about one `save()` per doubling of the log.
pub const SNAPSHOT_EVERY: u64 = 50_000;

/// A snapshot of the node for `coop status`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Status {
    /// This member.
    pub member: MemberId,
    /// Display name.
    pub display_name: String,
    /// This device.
    pub device: DeviceId,
    /// The community.
    pub community: CommunityId,
    /// Its name (empty until the genesis arrived).
    pub community_name: String,
    /// `admitted`, `pending`, `removed` or `unknown`.
    pub membership: String,
    /// Accepted changes.
    pub changes: usize,
    /// Changes waiting for dependencies.
    pub pending: usize,
    /// Records that count.
    pub counted: usize,
    /// Records refused by derivation.
    pub refused: usize,
    /// Document heads.
    pub heads: Vec<RecordId>,
    /// Digest of the derived state (equal on converged replicas).
    pub digest: String,
    /// Devices known to have equivocated.
    pub forked_devices: Vec<DeviceId>,
    /// Whether `coop up` is serving this data dir.
    pub running: bool,
    /// Connected peers (when running).
    pub peers: Vec<String>,
    /// Listen addresses (when running).
    pub listen: Vec<String>,
    /// Envelopes peers sent that the gate refused (when running).
    pub rejected_from_peers: u64,
    /// Reachability: AutoNAT's verdict, relays, direct or relayed peers (when running).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reach: Option<crate::reach_status::ReachStatus>,
    /// LAN discovery (when running): whether mDNS is on, whom it found, for how long it ran.
    #[serde(default)]
    pub mdns: MdnsStatus,
}

/// What mDNS did, for the status hint "mDNS: on, no neighbour found yet (N s)".
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct MdnsStatus {
    /// Whether the node discovers peers on the LAN by mDNS.
    pub on: bool,
    /// Neighbours mDNS sees on the LAN now.
    pub neighbours: usize,
    /// Neighbours mDNS found since the node started.
    pub found: u64,
    /// Seconds since the node started looking.
    pub searching_secs: u64,
}

/// What `coop verify` found.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct VerifyReport {
    /// Stored envelopes checked.
    pub checked: usize,
    /// Stored entries that fail the gate: (log position, record id if readable, reason).
    pub bad_entries: Vec<BadEntry>,
    /// Digest of state derived from scratch from fully re-verified changes.
    pub digest_from_scratch: String,
    /// Digest of the state the node serves.
    pub digest_served: String,
    /// Records refused by derivation (not an error: they stay in the ledger with reasons).
    pub refused_records: usize,
    /// Why the store does not match its manifest (it refuses writes), when it does not.
    #[serde(default)]
    pub store_damage: Option<String>,
}

/// A stored entry that does not verify.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BadEntry {
    /// Position in the store's log.
    pub position: u64,
    /// The record id, when the change still decodes.
    pub id: Option<RecordId>,
    /// Why it fails.
    pub reason: String,
}

impl VerifyReport {
    /// Whether everything verified and both derivations agree.
    pub fn ok(&self) -> bool {
        self.bad_entries.is_empty()
            && self.digest_from_scratch == self.digest_served
            && self.store_damage.is_none()
    }
}

/// What [`LocalNode::ingest_proof`] made of a proof.
#[derive(Debug, Clone, PartialEq, Eq)]
#[must_use = "a new proof is to be published and a refused one blamed on its sender"]
pub enum ProofIngest {
    /// New: it is stored, and the ledger now knows the fork.
    New,
    /// Already held.
    Known,
    /// Refused by the ledger (not an equivocation, or about an unknown device).
    Refused(Rejection),
}

/// The node's local half.
#[derive(Debug)]
pub struct LocalNode {
    dir: DataDir,
    config: Config,
    /// The member this device acts for (its identity key may live elsewhere).
    member: MemberId,
    device: coop_model::DeviceKey,
    store: Store,
    ledger: Ledger,
    /// Log entries the snapshot on disk covers (0: none usable).
    snapshot_at: u64,
    /// New log entries that make a snapshot due ([`SNAPSHOT_EVERY`]; fewer in tests).
    snapshot_every: u64,
    /// Log entries when the node opened: snapshots while it runs count new entries from
    /// here, so a node opened without a snapshot does not stall its first write on one (it
    /// writes one when it closes).
    opened_at: u64,
    /// The store was written around the ledger ([`LocalNode::store_mut`]): the document no
    /// longer matches the log, so no snapshot is taken of it.
    bypassed: bool,
    /// Whether the derived-state cache on disk was usable at open or written since (when
    /// not, a close writes it with the snapshot).
    derived_cached: bool,
    /// Whether the decoded-log cache on disk described the whole log at open or was
    /// written since (when not, a close writes it with the snapshot).
    decoded_cached: bool,
    /// Log entries whose decoding came from the decoded-log cache at open.
    #[cfg_attr(not(test), allow(dead_code))]
    from_decoded_cache: u64,
}

impl Drop for LocalNode {
    /// On a clean close (the running node's shutdown, the end of a command), snapshots the
    /// document when the log has grown by [`SNAPSHOT_MIN`] entries since the last snapshot,
    /// so the next open starts from it.
    fn drop(&mut self) {
        let entries = self.store.head().0;
        let stale = entries >= self.snapshot_at + SNAPSHOT_MIN
            || !self.derived_cached
            || !self.decoded_cached;
        if entries >= SNAPSHOT_MIN && stale {
            self.snapshot_quietly();
        }
    }
}

impl LocalNode {
    /// Opens the node of a data dir that belongs to a community, rebuilding the ledger
    /// (document and derived state) from the stored log.
    ///
    /// The document starts from the snapshot beside the store when it was taken from this
    /// log (see `snapshot`); otherwise it is built from the changes.
    pub fn open(dir: &DataDir) -> Result<LocalNode, NodeError> {
        LocalNode::open_observed(dir, &mut |_| {})
    }

    /// [`LocalNode::open`], telling `step` as each step of the open ends (on this thread,
    /// in this order): `"log replayed"` (the store opened and its log taken into the
    /// ledger, while the snapshot and the derived-state cache load on their own threads),
    /// `"derived-state cache"` (waited for and installed, or refused), `"document"` (the
    /// snapshot's document waited for, the changes since applied, or the document rebuilt).
    /// The bench's `stages` child measures memory at each.
    pub fn open_observed(
        dir: &DataDir,
        step: &mut dyn FnMut(&'static str),
    ) -> Result<LocalNode, NodeError> {
        let config = dir.config()?;
        let community = config.community.ok_or(NodeError::NoCommunity)?;
        let path = dir.store_path();
        let snap_path = snapshot::path_for(&path);
        let header = match snapshot::Header::load(&snap_path) {
            Ok(h) => h,
            Err(why) => {
                tracing::warn!("document snapshot ignored: {why}; rebuilding from the log");
                None
            }
        };
        let derived_path = snapshot::derived_path_for(&path);
        let derived_key = match snapshot::derived_key(&derived_path) {
            Ok(k) => k,
            Err(why) => {
                tracing::warn!("derived-state cache ignored: {why}; deriving from the log");
                None
            }
        };
        // The log entries whose chain the snapshot and the cache are checked against: both
        // are written together, so they name the same point of the log.
        let mark = header.map(|h| h.entries).or(derived_key.map(|k| k.entries));
        // The cache is read and decoded on a thread of its own too.
        let derived = derived_key.map(|k| Decoding::start(derived_path, k));
        // The snapshot is read, checked and loaded on its own thread while this one reads
        // and decodes the log.
        let loading = header.map(|h| Loading::start(snap_path, h));
        // The log is read once and streamed: the store's scan on open (its check against
        // the manifest) hands each entry to the replay, which decodes it and ingests the
        // log a chunk at a time, so the whole log is never held twice.
        // What decoding the log gave last time, checked entry by entry as the log streams.
        let decoded_path = snapshot::decoded_path_for(&path);
        let decoded = snapshot::load_decoded(&decoded_path, community).unwrap_or_else(|why| {
            tracing::warn!("decoded-log cache ignored: {why}; decoding the log");
            None
        });
        let mut replay = Replay::new(community, decoded);
        // The log holds as many entries as the manifest records (the store's check on open
        // says whether it does): the ledger's tables are made that large at once (up to a
        // bound, should the manifest be wrong).
        if let Ok(Some(m)) = crate::manifest::Manifest::load(&crate::manifest::path_for(&path)) {
            replay.ledger.reserve(m.entries.min(RESERVE_MAX) as usize);
        }
        let store = Store::open_reading(&path, mark, &mut |at, bytes| replay.push(at, bytes))?;
        let (ledger, from_decoded_cache, decoded_cached) = if store.read_whole() {
            replay.finish()
        } else {
            // The scan stopped early (the store is damaged): replay whatever it yields.
            drop(replay);
            (replay_log(community, &store)?, 0, false)
        };
        step("log replayed");
        let (ledger, snapshot_at, derived_cached) =
            rebuild(ledger, &store, loading, derived, step)?;
        let store_entries = store.head().0;
        Ok(LocalNode {
            member: dir.member()?,
            device: dir.device()?,
            dir: dir.clone(),
            config,
            store,
            ledger,
            snapshot_at,
            snapshot_every: SNAPSHOT_EVERY,
            opened_at: store_entries,
            bypassed: false,
            derived_cached,
            decoded_cached,
            from_decoded_cache,
        })
    }

    /// Writes a snapshot of the document and the derived-state cache for the log as it is
    /// now (each atomically; the log stays the truth).
    pub fn write_snapshot(&mut self) -> Result<(), NodeError> {
        let (entries, chain) = self.store.head();
        // The decoded-log cache is checked entry by entry against the log it is used with,
        // so it may be older or newer than the snapshot: written first, on its own.
        let decoded = self.ledger.log_cache();
        let decoded_path = snapshot::decoded_path_for(self.store.path());
        crate::manifest::write_atomically(&decoded_path, &decoded)
            .map_err(|e| NodeError::io(&decoded_path, e))?;
        drop(decoded);
        self.decoded_cached = true;
        // The derived-state cache next: written alone (a crash before the snapshot), it
        // names other log entries than the snapshot on disk and is ignored at the next open.
        let key = coop_model::derived_cache::CacheKey { entries, chain };
        let cache = self
            .ledger
            .derived_cache(key)
            .map_err(|e| NodeError::Corrupt(format!("encoding the derived-state cache: {e}")))?;
        let cache_path = snapshot::derived_path_for(self.store.path());
        crate::manifest::write_atomically(&cache_path, &cache)
            .map_err(|e| NodeError::io(&cache_path, e))?;
        drop(cache);
        self.derived_cached = true;
        let snap = Snapshot {
            entries,
            chain,
            ledger_len: self.ledger.len() as u64,
            doc: self.ledger.doc().save(),
        };
        let path = snapshot::path_for(self.store.path());
        snap.save(&path).map_err(|e| NodeError::io(&path, e))?;
        self.snapshot_at = entries;
        Ok(())
    }

    /// Log entries the document snapshot this node started from (or last wrote) covers; 0
    /// when the document was built from the log alone.
    pub fn snapshot_covers(&self) -> u64 {
        self.snapshot_at
    }

    /// Writes a snapshot when enough of the log is new since the last one (`SNAPSHOT_EVERY`).
    /// Every write does this itself but a sync batch ([`LocalNode::ingest_parsed`]), whose
    /// caller does it when the sync ends.
    pub fn snapshot_if_due(&mut self) {
        let entries = self.store.head().0;
        if snapshot_due(
            entries,
            self.snapshot_at,
            self.opened_at,
            self.snapshot_every,
        ) {
            self.snapshot_quietly();
        }
    }

    fn snapshot_quietly(&mut self) {
        if self.bypassed || self.store.damage().is_some() {
            return;
        }
        if let Err(e) = self.write_snapshot() {
            tracing::warn!(error = %e, "could not write the document snapshot (the log is intact)");
        }
    }

    /// Founds a community from an initialized data dir; returns its id.
    pub fn found(
        dir: &DataDir,
        name: &str,
        params: Params,
        now: i64,
    ) -> Result<LocalNode, NodeError> {
        let mut config = dir.config()?;
        if let Some(c) = config.community {
            return Err(NodeError::AlreadyInCommunity(c.to_hex()));
        }
        let name = name.trim();
        if name.is_empty() || name.chars().count() > 100 {
            return Err(NodeError::InvalidInput(
                "community name must be 1-100 characters".into(),
            ));
        }
        let identity = dir.identity()?;
        let device = dir.device()?;
        let (ledger, genesis) =
            Ledger::found(&identity, &device, name, &config.display_name, params, now)
                .map_err(NodeError::Refused)?;
        let mut store = Store::open(&dir.store_path())?;
        store.append(&[genesis])?;
        config.community = Some(ledger.community());
        dir.save_config(&config)?;
        Ok(LocalNode {
            dir: dir.clone(),
            config,
            member: identity.member_id(),
            device,
            store,
            ledger,
            snapshot_at: 0,
            snapshot_every: SNAPSHOT_EVERY,
            opened_at: 0,
            bypassed: false,
            derived_cached: false,
            decoded_cached: false,
            from_decoded_cache: 0,
        })
    }

    /// Joins a community from an invite: records it in the config and writes the join request.
    pub fn join(
        dir: &DataDir,
        community: CommunityId,
        psk: Option<String>,
        peers: Vec<String>,
        now: i64,
    ) -> Result<(LocalNode, RecordId), NodeError> {
        let mut config = dir.config()?;
        match config.community {
            Some(c) if c != community => return Err(NodeError::AlreadyInCommunity(c.to_hex())),
            _ => {}
        }
        config.community = Some(community);
        config.psk = psk;
        for p in peers {
            if !config.peers.contains(&p) {
                config.peers.push(p);
            }
        }
        dir.save_config(&config)?;
        let mut node = LocalNode::open(dir)?;
        let dev = node.device.device_id();
        if node.ledger.member_of(&dev).is_some() {
            // Joined before (an invite used twice): nothing new to write.
            let id = node.ledger.envelopes().find_map(|e| {
                let id = e.record_id()?;
                matches!(
                    node.ledger.get(&id),
                    Some((_, Record::Join(_) | Record::Device(_) | Record::Genesis(_)))
                )
                .then_some(id)
                .filter(|_| {
                    coop_model::gate::verify_envelope(e.clone(), &community, false)
                        .is_ok_and(|v| v.device == dev)
                })
            });
            return Ok((node, id.unwrap_or(RecordId([0; 32]))));
        }
        let identity = dir.identity()?;
        let record = Record::from(record::Join {
            member: identity.member_id(),
            cert: identity.certify(&community, &dev),
            display_name: node.config.display_name.clone(),
        });
        let id = node.submit(record, now)?;
        Ok((node, id))
    }

    /// The ledger's Automerge document (brought up to date), e.g. to bundle changes for a
    /// peer (`/coop/sync/2`).
    pub(crate) fn doc(&mut self) -> &automerge::Automerge {
        self.ledger.doc()
    }

    /// The data dir.
    pub fn dir(&self) -> &DataDir {
        &self.dir
    }
    /// The configuration.
    pub fn config(&self) -> &Config {
        &self.config
    }
    /// This member.
    pub fn member(&self) -> MemberId {
        self.member
    }
    /// This device.
    pub fn device_id(&self) -> DeviceId {
        self.device.device_id()
    }
    /// The community.
    pub fn community(&self) -> CommunityId {
        self.ledger.community()
    }
    /// The ledger.
    pub fn ledger(&self) -> &Ledger {
        &self.ledger
    }

    /// Writes a record as this device, if the ledger would count it now. The change is
    /// durable before this returns; a refusal writes nothing.
    pub fn submit(&mut self, record: Record, now: i64) -> Result<RecordId, NodeError> {
        self.store.writable()?;
        crate::device::check_machine(&self.dir, crate::device::machine_id().as_deref())?;
        let env = self
            .ledger
            .author(&self.device, record, now)
            .map_err(NodeError::Refused)?;
        let id = env
            .record_id()
            .ok_or_else(|| NodeError::Corrupt("authored change has no id".into()))?;
        if let Err(e) = self.store.append(&[env]) {
            // Not durable: forget it in memory too, so we never serve an unacknowledged write.
            self.reload()?;
            return Err(e);
        }
        self.snapshot_if_due();
        Ok(id)
    }

    /// The envelope of a held record (to publish after [`LocalNode::submit`]).
    pub fn envelope(&self, id: &RecordId) -> Option<Envelope> {
        self.ledger.get(id).map(|(e, _)| e)
    }

    /// Rebuilds the ledger from the store, as [`LocalNode::open`] does: after a failed
    /// write, so that memory holds exactly what is durable.
    fn reload(&mut self) -> Result<(), NodeError> {
        let ledger = replay_log(self.ledger.community(), &self.store)?;
        self.ledger = rebuild(ledger, &self.store, None, None, &mut |_| {})?.0;
        Ok(())
    }

    /// Ingests envelopes from a peer or a file through the gate; persists (and flushes)
    /// what was accepted and any new equivocation proof before returning.
    pub fn ingest(&mut self, envelopes: Vec<Envelope>) -> Result<Outcome, NodeError> {
        self.store.writable()?;
        let out = self.ledger.ingest(envelopes);
        self.persist_ingested(out)
    }

    /// As [`LocalNode::ingest`], for a batch of catch-up sync whose envelopes may come with
    /// the change their bytes were already parsed into (a sync bundle's; see
    /// [`coop_model::Ledger::ingest_parsed`]). Persists (and flushes) what was accepted and
    /// any new proof before returning, but leaves a due document snapshot for
    /// [`LocalNode::snapshot_if_due`], which the node calls when the sync with that peer
    /// ends: a snapshot (the whole document saved, the derived state encoded) would
    /// otherwise stall a catch-up halfway and again at its last batch. The snapshot is a
    /// cache for the next open; the log it is taken from is already durable.
    pub fn ingest_parsed(
        &mut self,
        arrivals: Vec<(Envelope, Option<automerge::Change>)>,
    ) -> Result<Outcome, NodeError> {
        self.store.writable()?;
        let out = self.ledger.ingest_parsed(arrivals);
        self.persist(out)
    }

    /// Persists what an ingest accepted and the forks it found, then snapshots when due.
    fn persist_ingested(&mut self, out: Outcome) -> Result<Outcome, NodeError> {
        let out = self.persist(out)?;
        self.snapshot_if_due();
        Ok(out)
    }

    /// Persists what an ingest accepted and the forks it found.
    fn persist(&mut self, out: Outcome) -> Result<Outcome, NodeError> {
        if let Err(e) = self.store.append(&out.accepted) {
            // Not durable: forget it in memory too, so we never serve or build on it.
            self.reload()?;
            return Err(e);
        }
        for p in &out.new_forks {
            self.store.put_proof(p)?;
        }
        Ok(out)
    }

    /// Takes in an equivocation proof from a peer; persists (and flushes) it when new. A
    /// refused proof is a value ([`ProofIngest::Refused`]); an error is the store's failure,
    /// and then the proof is forgotten in memory too.
    pub fn ingest_proof(&mut self, proof: EquivocationProof) -> Result<ProofIngest, NodeError> {
        self.store.writable()?;
        match self.ledger.ingest_proof(proof.clone()) {
            Ok(true) => {}
            Ok(false) => return Ok(ProofIngest::Known),
            Err(r) => return Ok(ProofIngest::Refused(r)),
        }
        if let Err(e) = self.store.put_proof(&proof) {
            // Not durable: forget it in memory too, so we never serve or act on it.
            self.reload()?;
            return Err(e);
        }
        Ok(ProofIngest::New)
    }

    /// The derived state (incremental).
    pub fn state(&mut self) -> &State {
        self.ledger.state()
    }

    /// Every accepted envelope, in causal order (for `coop sync export`).
    pub fn export(&self) -> Vec<Envelope> {
        self.ledger.envelopes().collect()
    }

    /// The local part of `coop status`.
    pub fn status(&mut self) -> Status {
        let member = self.member();
        let summary = self.ledger.summary();
        let community = self.ledger.community();
        let state = self.ledger.state();
        let membership = state
            .members
            .get(&member)
            .map(|m| {
                serde_json::to_value(m.status)
                    .ok()
                    .and_then(|v| v.as_str().map(String::from))
                    .unwrap_or_default()
            })
            .unwrap_or_else(|| "unknown".into());
        Status {
            member,
            display_name: self.config.display_name.clone(),
            device: self.device.device_id(),
            community,
            community_name: state.name.clone(),
            membership,
            changes: summary.changes,
            pending: summary.pending,
            counted: state.counted,
            refused: state.refused,
            heads: summary.heads,
            // A state that does not serialize has no digest to compare: say so rather than
            // show one that could match another broken replica's.
            digest: state
                .digest()
                .unwrap_or_else(|e| format!("unavailable ({e})")),
            forked_devices: summary.forked_devices,
            running: false,
            peers: Vec::new(),
            listen: Vec::new(),
            rejected_from_peers: 0,
            reach: None,
            mdns: MdnsStatus::default(),
        }
    }

    /// Re-verifies every stored envelope (signatures included) and re-derives from scratch.
    pub fn verify(&mut self) -> Result<VerifyReport, NodeError> {
        let community = self.ledger.community();
        let mut fresh = Ledger::new(community);
        let mut report = VerifyReport::default();
        for entry in self.store.log() {
            let entry = entry?;
            report.checked += 1;
            let env = match Envelope::decode(&entry.bytes) {
                Ok(e) => e,
                Err(r) => {
                    report.bad_entries.push(BadEntry {
                        position: entry.position,
                        id: None,
                        reason: r.to_string(),
                    });
                    continue;
                }
            };
            let id = env.record_id();
            let out = fresh.ingest([env]);
            if let Some(r) = out.rejected.first() {
                report.bad_entries.push(BadEntry {
                    position: entry.position,
                    id,
                    reason: r.to_string(),
                });
            } else if out.accepted.is_empty() && out.duplicates == 0 {
                report.bad_entries.push(BadEntry {
                    position: entry.position,
                    id,
                    reason: "its dependencies are not in the store before it".into(),
                });
            }
        }
        for p in self.ledger.proofs().cloned().collect::<Vec<_>>() {
            let _ = fresh.ingest_proof(p);
        }
        let scratch = fresh.derive_from_scratch();
        let digest =
            |s: &coop_model::State| s.digest().map_err(|e| NodeError::Corrupt(e.to_string()));
        report.digest_from_scratch = digest(&scratch)?;
        report.refused_records = scratch.refused;
        report.digest_served = digest(self.ledger.state())?;
        report.store_damage = self.store.damage().map(String::from);
        Ok(report)
    }

    /// Flushes the store (on shutdown).
    pub fn flush(&self) -> Result<(), NodeError> {
        self.store.flush()
    }

    /// `Ok` when the store takes writes; [`NodeError::Damaged`] (naming the data dir and
    /// `coop repair`) when it is damaged.
    pub fn writable(&self) -> Result<(), NodeError> {
        self.store.writable()
    }

    /// The store (tests and tools).
    #[doc(hidden)]
    pub fn store_mut(&mut self) -> &mut Store {
        self.bypassed = true;
        &mut self.store
    }
}

/// Builds the ledger from the store: the log (document and derived state), then the stored
/// equivocation proofs, which may name forks whose two changes the log does not both hold.
/// Whether a running node with `entries` log entries writes a snapshot now, the one on disk
/// covering `snapshot_at` and `opened_at` held when it opened, `every` new entries making
/// one due at the least (see [`SNAPSHOT_EVERY`]).
fn snapshot_due(entries: u64, snapshot_at: u64, opened_at: u64, every: u64) -> bool {
    let since = entries.saturating_sub(snapshot_at.max(opened_at));
    since >= every.max(snapshot_at)
}

/// A document snapshot being read, checked and loaded on its own thread while the log is
/// read (Automerge's `load` and the gate's decoding of the log each take one core).
struct Loading {
    header: snapshot::Header,
    doc: Option<std::thread::JoinHandle<Option<automerge::Automerge>>>,
}

impl Loading {
    fn start(path: std::path::PathBuf, header: snapshot::Header) -> Loading {
        let load = move || {
            let snap = match Snapshot::load(&path) {
                Ok(Some(s)) if s.header() == header => s,
                Ok(Some(_)) => {
                    tracing::warn!("document snapshot changed while the node opened; rebuilding");
                    return None;
                }
                Ok(None) => return None,
                Err(why) => {
                    tracing::warn!("document snapshot ignored: {why}; rebuilding from the log");
                    return None;
                }
            };
            // Our own file, checksummed; Automerge checks the document's heads as it
            // loads. Its bytes are dropped as soon as the document is built.
            automerge::Automerge::load(&snap.doc)
                .map_err(|e| tracing::warn!("document snapshot does not load ({e}); rebuilding"))
                .ok()
        };
        let doc = std::thread::Builder::new()
            .name("coop-snapshot".into())
            .spawn(load)
            .map_err(|e| tracing::warn!("could not start loading the snapshot ({e})"))
            .ok();
        Loading { header, doc }
    }

    /// The loaded document, when the snapshot was taken from `store`'s log.
    fn finish(self, store: &Store) -> Option<(automerge::Automerge, usize, u64)> {
        let h = self.header;
        let doc = self.doc?.join().ok().flatten()?;
        (store.chain_at_mark(h.entries) == Some(h.chain)).then_some((
            doc,
            h.ledger_len as usize,
            h.entries,
        ))
    }
}

/// The derived-state cache being read and decoded on its own thread while the log is
/// replayed.
struct Decoding {
    key: coop_model::derived_cache::CacheKey,
    cache: Option<std::thread::JoinHandle<Result<coop_model::derived_cache::Decoded, String>>>,
}

impl Decoding {
    fn start(path: std::path::PathBuf, key: coop_model::derived_cache::CacheKey) -> Decoding {
        let cache = std::thread::Builder::new()
            .name("coop-derived".into())
            .spawn(move || snapshot::load_derived(&path, key))
            .map_err(|e| tracing::warn!("could not start reading the derived-state cache ({e})"))
            .ok();
        Decoding { key, cache }
    }

    /// The decoded cache, or why there is none.
    fn finish(self) -> Result<coop_model::derived_cache::Decoded, String> {
        self.cache
            .ok_or_else(|| "it could not be read".to_string())?
            .join()
            .map_err(|_| "decoding it panicked".to_string())?
    }
}

/// Stored log entries that are decoded and taken into a ledger (with its document
/// deferred) a chunk at a time, as they are read: their decoding read from the
/// decoded-log cache while it matches the log, through the gate from there on.
struct Replay {
    ledger: Ledger,
    /// Entries for the gate (every entry after the cache stopped matching).
    chunk: Vec<Envelope>,
    /// The decoded-log cache, while it matches the log.
    cache: Option<coop_model::log_cache::LogCache>,
    /// Entries decoded from the cache, not yet taken in.
    cached: Vec<coop_model::gate::Verified>,
    /// Entries pushed, and how many of them came from the cache.
    pushed: u64,
    from_cache: u64,
}

/// The most log entries the ledger's tables are sized for before the log is read.
const RESERVE_MAX: u64 = 1 << 22;

/// Log entries decoded before the ledger takes them in: large enough for the gate's
/// decoding to use every core, small enough that the decoded chunk is a small part of the
/// ledger it goes into.
const REPLAY_CHUNK: usize = 4096;

impl Replay {
    fn new(community: CommunityId, cache: Option<coop_model::log_cache::LogCache>) -> Replay {
        let mut ledger = Ledger::new(community);
        ledger.defer_doc();
        // Stored changes are decoded on every core; the result does not depend on the
        // thread count (nor on the chunks: ingesting in parts is ingesting the whole).
        ledger.set_verify_threads(std::thread::available_parallelism().map_or(1, |n| n.get()));
        // Batch verification mixes this secret into its coefficients (docs/PROTOCOL.md,
        // "Signatures"); which signatures are accepted does not depend on it.
        let mut batch_seed = [0u8; 32];
        rand::RngCore::fill_bytes(&mut rand::rngs::OsRng, &mut batch_seed);
        ledger.set_batch_seed(batch_seed);
        Replay {
            ledger,
            chunk: Vec::new(),
            cache,
            cached: Vec::new(),
            pushed: 0,
            from_cache: 0,
        }
    }

    /// Decodes one stored log entry; a damaged entry must not lock the member out of their
    /// node (nor out of `coop verify`, which names it): it is skipped, loudly.
    fn push(&mut self, position: u64, bytes: &[u8]) {
        self.pushed += 1;
        let env = match Envelope::decode(bytes) {
            Ok(env) => env,
            Err(r) => {
                tracing::warn!(
                    position,
                    "stored entry does not decode ({r}); skipped — run `coop verify`"
                );
                return;
            }
        };
        let Some(cache) = self.cache.as_mut() else {
            return self.push_to_gate(env);
        };
        let env = match cache.next(env) {
            Ok(v) => {
                self.from_cache += 1;
                self.cached.push(v);
                if self.cached.len() >= REPLAY_CHUNK {
                    self.ingest_cached();
                }
                return;
            }
            Err((env, why)) => {
                let cache = self.cache.take();
                // A cache written before the log grew ends early: that is no fault.
                if cache.is_none_or(|c| c.used() < c.len()) {
                    tracing::warn!("decoded-log cache no longer used: {why}; decoding the log");
                }
                self.ingest_cached();
                env
            }
        };
        self.push_to_gate(env);
    }

    fn push_to_gate(&mut self, env: Envelope) {
        self.chunk.push(env);
        if self.chunk.len() >= REPLAY_CHUNK {
            self.ingest();
        }
    }

    fn ingest_cached(&mut self) {
        if self.cached.is_empty() {
            return;
        }
        let chunk = std::mem::take(&mut self.cached);
        let out = self.ledger.ingest_cached(chunk);
        for r in &out.rejected {
            tracing::warn!(
                "stored change no longer passes the gate ({r}); skipped — run `coop verify`"
            );
        }
    }

    fn ingest(&mut self) {
        let chunk = std::mem::replace(&mut self.chunk, Vec::with_capacity(REPLAY_CHUNK));
        // Our own log was verified on the way in; `coop verify` re-checks signatures.
        let out = self.ledger.ingest_stored(chunk);
        for r in &out.rejected {
            tracing::warn!(
                "stored change no longer passes the gate ({r}); skipped — run `coop verify`"
            );
        }
    }

    /// The ledger of every entry pushed, how many entries the decoded-log cache
    /// described, and whether it described them all.
    fn finish(mut self) -> (Ledger, u64, bool) {
        self.ingest_cached();
        self.ingest();
        let pending = self.ledger.pending_len();
        if pending > 0 {
            tracing::warn!(
                pending,
                "stored changes wait for dependencies the store lacks"
            );
        }
        let whole = self.from_cache == self.pushed;
        (self.ledger, self.from_cache, whole)
    }
}

/// The ledger of the store's log, read again (for a reload, and for a store whose scan on
/// open stopped early).
fn replay_log(community: CommunityId, store: &Store) -> Result<Ledger, NodeError> {
    let mut replay = Replay::new(community, None);
    for entry in store.log() {
        let entry = entry?;
        replay.push(entry.position, &entry.bytes);
    }
    Ok(replay.finish().0)
}

/// The one path of [`LocalNode::open`] and [`LocalNode::reload`] after the log's replay:
/// the stored proofs, the derived-state cache and the document. Returns the ledger, the log entries the snapshot it started from covers (0 when it was built
/// without one), and whether derivation starts from the derived-state cache. The snapshot
/// and the cache are used only when taken from this log (and the cache only when the
/// ledger finds it folded over exactly its own first changes).
fn rebuild(
    mut ledger: Ledger,
    store: &Store,
    loading: Option<Loading>,
    derived: Option<Decoding>,
    step: &mut dyn FnMut(&'static str),
) -> Result<(Ledger, u64, bool), NodeError> {
    for bytes in store.proofs()? {
        if let Ok(p) = EquivocationProof::decode(&bytes) {
            // A stored proof passed this check when it was stored; one that fails now
            // (say, after a format change) is skipped like a damaged log entry.
            let _ = ledger.ingest_proof(p);
        }
    }
    // Installed while the snapshot's document may still be loading on the other thread.
    let derived_cached = derived.is_some_and(|d| {
        let key = d.key;
        // Waited for even when it is of no use, so that no thread outlives the open.
        let used = d.finish().and_then(|cache| {
            if store.chain_at_mark(key.entries) != Some(key.chain) {
                return Err("it was taken from another log or at another point of it".into());
            }
            ledger
                .use_derived_cache(cache)
                .map(|_| ())
                .map_err(|e| e.to_string())
        });
        if let Err(why) = &used {
            tracing::warn!("derived-state cache ignored: {why}; deriving from the log");
        }
        used.is_ok()
    });
    step("derived-state cache");
    let doc = loading.and_then(|l| l.finish(store));
    let covered = match doc {
        Some((doc, from, entries)) => {
            if ledger.finish_doc(Some((doc, from))) {
                entries
            } else {
                tracing::warn!("document snapshot does not match the log; rebuilt from the log");
                0
            }
        }
        None => {
            ledger.finish_doc(None);
            0
        }
    };
    step("document");
    Ok((ledger, covered, derived_cached))
}

#[cfg(test)]
mod tests {
    use coop_model::{EquivocationProof, Params, Record};

    use super::*;

    const T0: i64 = 1_700_000_000;
    const IDENTITY: [u8; 32] = [7; 32];
    const DEVICE: [u8; 32] = [9; 32];

    fn proposal(title: &str) -> Record {
        Record::Proposal(coop_model::record::Proposal {
            title: title.into(),
            description: format!("a test proposal called {title}"),
        })
    }

    /// A replica of `community` in `root/name` with the founder's keys, holding `log`.
    fn replica(
        root: &std::path::Path,
        name: &str,
        community: CommunityId,
        log: &[Envelope],
    ) -> LocalNode {
        let dir = DataDir::new(root.join(name));
        dir.init(name, IDENTITY, DEVICE).unwrap();
        let mut config = dir.config().unwrap();
        config.community = Some(community);
        dir.save_config(&config).unwrap();
        let mut node = LocalNode::open(&dir).unwrap();
        let out = node.ingest(log.to_vec()).unwrap();
        assert_eq!(out.accepted.len(), log.len(), "{out:?}");
        node
    }

    /// A founder's node holding only the genesis, and a proof that its device (the
    /// founder's, restored on two machines) signed two different second changes.
    fn genesis_and_fork(root: &std::path::Path) -> (LocalNode, EquivocationProof) {
        let founder = DataDir::new(root.join("founder"));
        founder.init("founder", IDENTITY, DEVICE).unwrap();
        let mut a = LocalNode::found(&founder, "Test Co-op", Params::default(), T0).unwrap();
        let genesis = a.export();
        let mut b = replica(root, "restored", a.community(), &genesis);
        let x = a.submit(proposal("from the original"), T0 + 10).unwrap();
        let y = b
            .submit(proposal("from the restored copy"), T0 + 10)
            .unwrap();
        let proof = EquivocationProof {
            a: a.envelope(&x).unwrap(),
            b: b.envelope(&y).unwrap(),
        };
        let holder = replica(root, "holder", a.community(), &genesis);
        (holder, proof)
    }

    /// A founded community of `n + 1` changes written in memory, replicated into a node.
    fn community_of(root: &std::path::Path, name: &str, n: usize) -> LocalNode {
        let identity = coop_model::IdentityKey::from_seed(IDENTITY);
        let device = coop_model::DeviceKey::from_seed(DEVICE);
        let (mut ledger, genesis) =
            Ledger::found(&identity, &device, name, "founder", Params::default(), T0).unwrap();
        let mut log = vec![genesis];
        for i in 0..n {
            let t = T0 + 1 + i as i64;
            log.push(
                ledger
                    .author(&device, proposal(&format!("proposal {i}")), t)
                    .unwrap(),
            );
        }
        replica(root, name, ledger.community(), &log)
    }

    /// Whether the node's document holds exactly its ledger's canonical changes.
    fn doc_matches(node: &mut LocalNode) -> bool {
        let heads = node.ledger.heads();
        let doc = node.ledger.doc();
        let mut doc_heads: Vec<RecordId> =
            doc.get_heads().into_iter().map(RecordId::from).collect();
        doc_heads.sort();
        doc_heads == heads && doc.get_changes(&[]).len() == node.ledger.len()
    }

    /// A founded community of `n + 1` changes in `root/a` that wrote its snapshot and
    /// caches, then `later` more changes, closed: its data dir and its state's digest.
    fn snapshotted(root: &std::path::Path, n: usize, later: i64) -> (DataDir, String) {
        let mut node = community_of(root, "a", n);
        node.write_snapshot().unwrap();
        assert_eq!(node.snapshot_covers(), n as u64 + 1);
        for i in 0..later {
            node.submit(proposal(&format!("later {i}")), T0 + 100 + i)
                .unwrap();
        }
        let digest = node.status().digest;
        let dir = node.dir().clone();
        drop(node);
        (dir, digest)
    }

    #[test]
    fn a_snapshot_of_this_log_is_used_on_open_with_the_changes_since_applied() {
        let root = tempfile::tempdir().unwrap();
        let (dir, digest) = snapshotted(root.path(), 20, 5);
        let mut reopened = LocalNode::open(&dir).unwrap();
        assert_eq!(reopened.snapshot_covers(), 21);
        assert_eq!(reopened.ledger().len(), 26);
        assert!(doc_matches(&mut reopened));
        assert_eq!(reopened.status().digest, digest);
    }

    #[test]
    fn a_truncated_or_damaged_snapshot_is_ignored_and_the_document_rebuilt() {
        let root = tempfile::tempdir().unwrap();
        let (dir, digest) = snapshotted(root.path(), 10, 0);
        let path = snapshot::path_for(&dir.store_path());
        let good = std::fs::read(&path).unwrap();
        let mut flipped = good.clone();
        flipped[70] ^= 0x40;
        for bad in [good[..good.len() / 2].to_vec(), flipped, Vec::new()] {
            std::fs::write(&path, bad).unwrap();
            let mut reopened = LocalNode::open(&dir).unwrap();
            assert_eq!(reopened.snapshot_covers(), 0);
            assert!(doc_matches(&mut reopened));
            assert_eq!(reopened.status().digest, digest);
        }
    }

    #[test]
    fn a_snapshot_of_another_log_is_ignored() {
        let root = tempfile::tempdir().unwrap();
        let mut a = community_of(root.path(), "a", 10);
        a.write_snapshot().unwrap();
        let from_a = snapshot::path_for(&a.dir().store_path());
        let b = community_of(root.path(), "b", 10);
        let dir = b.dir().clone();
        drop(b);
        std::fs::copy(&from_a, snapshot::path_for(&dir.store_path())).unwrap();
        let mut reopened = LocalNode::open(&dir).unwrap();
        assert_eq!(reopened.snapshot_covers(), 0);
        assert!(doc_matches(&mut reopened));
    }

    #[test]
    fn a_snapshot_whose_document_disagrees_with_the_log_is_not_kept() {
        let root = tempfile::tempdir().unwrap();
        let node = community_of(root.path(), "a", 10);
        let (entries, chain) = node.store.head();
        // The right key, the wrong document: the heads check refuses it.
        let wrong = Snapshot {
            entries,
            chain,
            ledger_len: node.ledger().len() as u64,
            doc: automerge::Automerge::new().save(),
        };
        let dir = node.dir().clone();
        drop(node);
        wrong.save(&snapshot::path_for(&dir.store_path())).unwrap();
        let mut reopened = LocalNode::open(&dir).unwrap();
        assert_eq!(reopened.snapshot_covers(), 0);
        assert!(doc_matches(&mut reopened));
    }

    /// Whether the node serves the state a derivation from scratch gives, byte for byte.
    fn state_is_derived_right(node: &mut LocalNode) -> bool {
        let scratch = node
            .ledger()
            .derive_from_scratch()
            .canonical_json()
            .unwrap();
        node.state().canonical_json().unwrap() == scratch
    }

    #[test]
    fn the_derived_state_cache_is_used_on_open_and_answers_the_same() {
        let root = tempfile::tempdir().unwrap();
        let (dir, digest) = snapshotted(root.path(), 20, 0);
        assert!(snapshot::derived_path_for(&dir.store_path()).exists());
        let mut reopened = LocalNode::open(&dir).unwrap();
        assert!(reopened.derived_cached);
        assert_eq!(reopened.status().digest, digest);
        assert!(state_is_derived_right(&mut reopened));
    }

    #[test]
    fn a_cache_written_at_n_changes_then_m_more_gives_the_state_of_all() {
        let root = tempfile::tempdir().unwrap();
        let (dir, digest) = snapshotted(root.path(), 20, 7);
        let mut reopened = LocalNode::open(&dir).unwrap();
        // The cache covers the first 21 changes; the 7 since are folded on top of it.
        assert!(reopened.derived_cached);
        assert_eq!(reopened.ledger().len(), 28);
        assert_eq!(reopened.status().digest, digest);
        assert!(state_is_derived_right(&mut reopened));
        assert_eq!(reopened.state().log.len(), 28);
    }

    #[test]
    fn a_damaged_truncated_foreign_or_stale_cache_is_ignored_and_derived_again() {
        let root = tempfile::tempdir().unwrap();
        let mut node = community_of(root.path(), "a", 10);
        node.write_snapshot().unwrap();
        let path = snapshot::derived_path_for(&node.dir().store_path());
        let older = std::fs::read(&path).unwrap();
        for i in 0..3 {
            node.submit(proposal(&format!("later {i}")), T0 + 100 + i)
                .unwrap();
        }
        node.write_snapshot().unwrap();
        let digest = node.status().digest;
        let dir = node.dir().clone();
        drop(node);
        let good = std::fs::read(&path).unwrap();
        // Another community's cache, and one of it re-keyed to this log's head: the key
        // matches, the ledger's own digest of its changes does not.
        let mut b = community_of(root.path(), "b", 10);
        let foreign = b
            .ledger
            .derived_cache(coop_model::derived_cache::CacheKey {
                entries: 0,
                chain: [0; 32],
            })
            .unwrap();
        let (entries, chain) = {
            let probe = LocalNode::open(&dir).unwrap();
            probe.store.head()
        };
        let forged = b
            .ledger
            .derived_cache(coop_model::derived_cache::CacheKey { entries, chain })
            .unwrap();
        drop(b);
        let mut flipped = good.clone();
        flipped[good.len() / 2] ^= 0x10;
        let cases = [
            ("truncated", good[..good.len() / 2].to_vec()),
            ("flipped", flipped),
            ("empty", Vec::new()),
            ("foreign", foreign),
            ("forged key", forged),
            ("stale", older),
        ];
        for (what, bad) in cases {
            std::fs::write(&path, bad).unwrap();
            let mut reopened = LocalNode::open(&dir).unwrap();
            assert!(!reopened.derived_cached, "{what}");
            assert_eq!(reopened.status().digest, digest, "{what}");
            assert!(state_is_derived_right(&mut reopened), "{what}");
            // Its close writes a good cache again; the next open uses it.
            drop(reopened);
            std::fs::write(&path, &good).unwrap();
        }
        let mut reopened = LocalNode::open(&dir).unwrap();
        assert!(reopened.derived_cached);
        assert_eq!(reopened.status().digest, digest);
    }

    #[test]
    fn a_cache_from_before_a_fork_was_proven_is_not_used() {
        let root = tempfile::tempdir().unwrap();
        let (mut node, proof) = genesis_and_fork(root.path());
        node.write_snapshot().unwrap();
        assert_eq!(node.ingest_proof(proof).unwrap(), ProofIngest::New);
        let digest = node.status().digest;
        let dir = node.dir().clone();
        drop(node);
        let mut reopened = LocalNode::open(&dir).unwrap();
        assert!(!reopened.derived_cached);
        assert_eq!(reopened.ledger().summary().forked_devices.len(), 1);
        assert_eq!(reopened.status().digest, digest);
        assert!(state_is_derived_right(&mut reopened));
    }

    #[test]
    fn a_long_log_closed_without_a_cache_writes_one() {
        let root = tempfile::tempdir().unwrap();
        let n = SNAPSHOT_MIN as usize;
        let node = community_of(root.path(), "a", n);
        let dir = node.dir().clone();
        drop(node);
        let path = snapshot::derived_path_for(&dir.store_path());
        std::fs::remove_file(&path).unwrap();
        // The snapshot is current, the cache is missing: the close writes it.
        let reopened = LocalNode::open(&dir).unwrap();
        assert!(!reopened.derived_cached);
        drop(reopened);
        assert!(path.exists());
        let reopened = LocalNode::open(&dir).unwrap();
        assert!(reopened.derived_cached);
        assert_eq!(reopened.snapshot_covers(), n as u64 + 1);
    }

    /// Whether the node holds exactly the envelopes, state and document heads a node that
    /// decoded every change of the same log through the gate holds.
    fn same_as_decoded_by_the_gate(node: &mut LocalNode) -> bool {
        let mut fresh = replay_log(node.community(), &node.store).unwrap();
        for p in node.ledger.proofs() {
            let _ = fresh.ingest_proof(p.clone());
        }
        let ours: Vec<Envelope> = node.ledger.envelopes().collect();
        let theirs: Vec<Envelope> = fresh.envelopes().collect();
        ours == theirs
            && node.ledger.heads() == fresh.heads()
            && node.state().canonical_json().unwrap() == fresh.state().canonical_json().unwrap()
            && doc_heads(node) == fresh.heads()
            && state_is_derived_right(node)
    }

    /// The node's document heads, sorted as the ledger's are (with a fork in the log, the
    /// document holds fewer changes than the ledger: the excluded ones are not in it).
    fn doc_heads(node: &mut LocalNode) -> Vec<RecordId> {
        let mut heads: Vec<RecordId> = node
            .ledger
            .doc()
            .get_heads()
            .into_iter()
            .map(RecordId::from)
            .collect();
        heads.sort();
        heads
    }

    #[test]
    fn the_decoded_log_cache_is_used_on_open_and_answers_the_same() {
        let root = tempfile::tempdir().unwrap();
        let (dir, digest) = snapshotted(root.path(), 20, 0);
        assert!(snapshot::decoded_path_for(&dir.store_path()).exists());
        let mut reopened = LocalNode::open(&dir).unwrap();
        assert!(reopened.decoded_cached);
        assert_eq!(reopened.from_decoded_cache, 21);
        assert_eq!(reopened.status().digest, digest);
        assert!(same_as_decoded_by_the_gate(&mut reopened));
        assert!(doc_matches(&mut reopened));
        // And it takes writes as any node does.
        reopened.submit(proposal("after"), T0 + 500).unwrap();
        assert!(same_as_decoded_by_the_gate(&mut reopened));
    }

    #[test]
    fn a_decoded_cache_written_at_n_changes_then_m_more_decodes_the_rest() {
        let root = tempfile::tempdir().unwrap();
        let (dir, digest) = snapshotted(root.path(), 20, 7);
        let mut reopened = LocalNode::open(&dir).unwrap();
        // The first 21 from the cache, the 7 since through the gate.
        assert_eq!(reopened.from_decoded_cache, 21);
        assert!(!reopened.decoded_cached);
        assert_eq!(reopened.ledger().len(), 28);
        assert_eq!(reopened.status().digest, digest);
        assert!(same_as_decoded_by_the_gate(&mut reopened));
    }

    #[test]
    fn a_damaged_truncated_empty_foreign_or_stale_decoded_cache_is_ignored() {
        let root = tempfile::tempdir().unwrap();
        let mut node = community_of(root.path(), "a", 10);
        node.write_snapshot().unwrap();
        let path = snapshot::decoded_path_for(&node.dir().store_path());
        let older = std::fs::read(&path).unwrap();
        for i in 0..3 {
            node.submit(proposal(&format!("later {i}")), T0 + 100 + i)
                .unwrap();
        }
        node.write_snapshot().unwrap();
        let digest = node.status().digest;
        let dir = node.dir().clone();
        drop(node);
        let good = std::fs::read(&path).unwrap();
        // Another community's log of as many changes: a cache with a good checksum whose
        // entries are other changes.
        let foreign = community_of(root.path(), "b", 13).ledger.log_cache();
        let mut flipped = good.clone();
        flipped[good.len() / 2] ^= 0x10;
        let cases = [
            ("truncated", good[..good.len() / 2].to_vec(), 0),
            ("flipped", flipped, 0),
            ("empty", Vec::new(), 0),
            ("foreign", foreign, 0),
            ("stale", older, 11),
        ];
        for (what, bad, used) in cases {
            std::fs::write(&path, bad).unwrap();
            let mut reopened = LocalNode::open(&dir).unwrap();
            assert!(!reopened.decoded_cached, "{what}");
            assert_eq!(reopened.from_decoded_cache, used, "{what}");
            assert_eq!(reopened.status().digest, digest, "{what}");
            assert!(same_as_decoded_by_the_gate(&mut reopened), "{what}");
        }
        std::fs::write(&path, &good).unwrap();
        let reopened = LocalNode::open(&dir).unwrap();
        assert!(reopened.decoded_cached);
    }

    #[test]
    fn a_decoded_cache_of_a_log_that_parts_ways_is_used_up_to_where_it_does() {
        let root = tempfile::tempdir().unwrap();
        let mut node = community_of(root.path(), "a", 10);
        node.write_snapshot().unwrap();
        let cache = std::fs::read(snapshot::decoded_path_for(&node.dir().store_path())).unwrap();
        // A replica of the same community that took the first 6 changes, then wrote other
        // changes of its own from there.
        let log = node.export();
        let mut b = replica(root.path(), "b", node.community(), &log[..6]);
        drop(node);
        for i in 0..4 {
            b.submit(proposal(&format!("other {i}")), T0 + 300 + i)
                .unwrap();
        }
        let digest = b.status().digest;
        let dir = b.dir().clone();
        drop(b);
        std::fs::write(snapshot::decoded_path_for(&dir.store_path()), cache).unwrap();
        let mut reopened = LocalNode::open(&dir).unwrap();
        assert_eq!(reopened.from_decoded_cache, 6);
        assert!(!reopened.decoded_cached);
        assert_eq!(reopened.status().digest, digest);
        assert!(same_as_decoded_by_the_gate(&mut reopened));
    }

    #[test]
    fn a_decoded_cache_of_a_log_holding_both_sides_of_a_fork_answers_the_same() {
        let root = tempfile::tempdir().unwrap();
        let (mut node, proof) = genesis_and_fork(root.path());
        let out = node.ingest(vec![proof.a.clone(), proof.b.clone()]).unwrap();
        assert_eq!(out.accepted.len(), 2);
        assert_eq!(node.ledger().summary().forked_devices.len(), 1);
        node.write_snapshot().unwrap();
        let digest = node.status().digest;
        let dir = node.dir().clone();
        drop(node);
        let mut reopened = LocalNode::open(&dir).unwrap();
        assert!(reopened.decoded_cached);
        assert_eq!(reopened.from_decoded_cache, 3);
        assert_eq!(reopened.ledger().summary().forked_devices.len(), 1);
        assert_eq!(reopened.status().digest, digest);
        assert!(same_as_decoded_by_the_gate(&mut reopened));
    }

    #[test]
    fn a_crash_while_writing_the_decoded_cache_loses_nothing() {
        let root = tempfile::tempdir().unwrap();
        let (dir, digest) = snapshotted(root.path(), 20, 0);
        let path = snapshot::decoded_path_for(&dir.store_path());
        let good = std::fs::read(&path).unwrap();
        // The temporary file of a write cut short, beside the cache it was to replace.
        let mut tmp = path.as_os_str().to_os_string();
        tmp.push(".tmp");
        std::fs::write(&tmp, &good[..good.len() / 3]).unwrap();
        let mut reopened = LocalNode::open(&dir).unwrap();
        assert!(reopened.decoded_cached);
        assert_eq!(reopened.status().digest, digest);
        assert!(same_as_decoded_by_the_gate(&mut reopened));
        drop(reopened);
        // Cut short before the first cache was ever renamed into place: none is used.
        std::fs::remove_file(&path).unwrap();
        let mut reopened = LocalNode::open(&dir).unwrap();
        assert_eq!(reopened.from_decoded_cache, 0);
        assert_eq!(reopened.status().digest, digest);
        assert!(same_as_decoded_by_the_gate(&mut reopened));
        // The next snapshot writes a whole cache over the temporary file.
        reopened.write_snapshot().unwrap();
        drop(reopened);
        assert_eq!(std::fs::read(&path).unwrap(), good);
        assert!(LocalNode::open(&dir).unwrap().decoded_cached);
    }

    #[test]
    fn a_running_node_snapshots_once_per_doubling_and_never_on_its_first_write() {
        let every = SNAPSHOT_EVERY;
        let due = |entries, at, opened| snapshot_due(entries, at, opened, every);
        assert!(!due(every - 1, 0, 0));
        assert!(due(every, 0, 0));
        // Opened on a long log without a snapshot: the close writes it, not the next write.
        assert!(!due(2 * every + 1, 0, 2 * every));
        assert!(due(3 * every, 0, 2 * every));
        // The interval doubles with what the last snapshot covered.
        assert!(!due(2 * every + every / 2, 2 * every, 0));
        assert!(due(4 * every, 2 * every, 0));
    }

    /// A sync batch that makes a snapshot due leaves it for the end of the sync
    /// (`snapshot_if_due`, which the network loop calls then); any other ingest takes it.
    #[test]
    fn a_sync_batch_leaves_the_due_snapshot_for_the_end_of_the_sync() {
        let root = tempfile::tempdir().unwrap();
        let source = community_of(root.path(), "source", 70);
        let log = source.export();
        let dir = DataDir::new(root.path().join("newcomer"));
        dir.init("newcomer", IDENTITY, DEVICE).unwrap();
        let mut config = dir.config().unwrap();
        config.community = Some(source.community());
        dir.save_config(&config).unwrap();
        let mut node = LocalNode::open(&dir).unwrap();
        node.snapshot_every = 10;
        let batch = |envs: &[Envelope]| envs.iter().map(|e| (e.clone(), None)).collect();
        let out = node.ingest_parsed(batch(&log[..20])).unwrap();
        assert_eq!(out.accepted.len(), 20);
        assert_eq!(node.snapshot_covers(), 0, "not in the middle of a sync");
        let out = node.ingest_parsed(batch(&log[20..30])).unwrap();
        assert_eq!(out.accepted.len(), 10);
        assert_eq!(node.snapshot_covers(), 0);
        // The sync ends: the snapshot covers everything taken in, and the next open uses it.
        node.snapshot_if_due();
        assert_eq!(node.snapshot_covers(), 30);
        assert!(snapshot::path_for(&dir.store_path()).exists());
        // A plain ingest (gossip, import) snapshots as it goes.
        let out = node.ingest(log[30..].to_vec()).unwrap();
        assert_eq!(out.accepted.len(), log.len() - 30);
        assert_eq!(node.snapshot_covers(), log.len() as u64);
        let digest = node.status().digest;
        drop(node);
        let mut reopened = LocalNode::open(&dir).unwrap();
        assert_eq!(reopened.ledger().len(), log.len());
        assert!(doc_matches(&mut reopened));
        assert_eq!(reopened.status().digest, digest);
    }

    #[test]
    fn closing_a_node_with_a_long_log_leaves_a_snapshot_the_next_open_uses() {
        let root = tempfile::tempdir().unwrap();
        let n = SNAPSHOT_MIN as usize;
        let node = community_of(root.path(), "a", n);
        assert_eq!(node.snapshot_covers(), 0);
        let dir = node.dir().clone();
        drop(node);
        assert!(snapshot::path_for(&dir.store_path()).exists());
        let mut reopened = LocalNode::open(&dir).unwrap();
        assert_eq!(reopened.snapshot_covers(), n as u64 + 1);
        assert!(doc_matches(&mut reopened));
    }

    #[test]
    fn reload_keeps_the_forks_known_only_from_stored_proofs() {
        let root = tempfile::tempdir().unwrap();
        let (mut node, proof) = genesis_and_fork(root.path());
        let device = node.device_id();
        assert_eq!(node.ingest_proof(proof).unwrap(), ProofIngest::New);
        // The log holds neither side of the fork: only the stored proof names it.
        assert_eq!(node.export().len(), 1);
        assert_eq!(node.ledger().summary().forked_devices, vec![device]);
        // What a failed append does: rebuild memory from the store.
        node.reload().unwrap();
        assert_eq!(node.ledger().summary().forked_devices, vec![device]);
        let digest = node.status().digest;
        // And the same as a fresh open.
        let dir = node.dir().clone();
        drop(node);
        let mut reopened = LocalNode::open(&dir).unwrap();
        assert_eq!(reopened.ledger().summary().forked_devices, vec![device]);
        assert_eq!(reopened.status().digest, digest);
    }

    #[test]
    fn a_proof_the_store_cannot_keep_is_an_error_and_is_forgotten() {
        let root = tempfile::tempdir().unwrap();
        let (mut node, proof) = genesis_and_fork(root.path());
        node.store_mut().fail_proof_writes_for_test(true);
        let err = node.ingest_proof(proof.clone()).unwrap_err();
        assert!(matches!(err, NodeError::Store { .. }), "{err:?}");
        assert_eq!(
            crate::error::one_line(&err),
            "store: storing an equivocation proof: injected failure"
        );
        // Not durable, so not known either: the node does not act on it.
        assert_eq!(node.ledger().summary().forked_devices, vec![]);
        node.store_mut().fail_proof_writes_for_test(false);
        assert_eq!(node.ingest_proof(proof.clone()).unwrap(), ProofIngest::New);
        assert_eq!(node.ingest_proof(proof).unwrap(), ProofIngest::Known);
        let dir = node.dir().clone();
        drop(node);
        let reopened = LocalNode::open(&dir).unwrap();
        assert_eq!(reopened.ledger().summary().forked_devices.len(), 1);
    }

    #[test]
    fn a_sled_failure_storing_a_proof_reaches_the_caller_with_its_source() {
        let root = tempfile::tempdir().unwrap();
        let (mut node, proof) = genesis_and_fork(root.path());
        node.store_mut().break_proofs_for_test();
        let err = node.ingest_proof(proof).unwrap_err();
        assert!(matches!(err, NodeError::Store { .. }), "{err:?}");
        assert!(std::error::Error::source(&err).is_some(), "{err:?}");
    }

    #[test]
    fn a_refused_proof_is_a_value_not_an_error() {
        let root = tempfile::tempdir().unwrap();
        let (mut node, proof) = genesis_and_fork(root.path());
        let same = EquivocationProof {
            a: proof.a.clone(),
            b: proof.a,
        };
        assert!(matches!(
            node.ingest_proof(same),
            Ok(ProofIngest::Refused(_))
        ));
        assert!(node.store_mut().proofs().unwrap().is_empty());
    }
}
