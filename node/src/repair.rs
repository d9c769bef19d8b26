//! `coop repair`: a new store built from every envelope that still verifies.
//!
//! The damaged store is read as far as sled still yields it (errors and panics tolerated),
//! together with envelopes from other sources (a sync file); everything goes through the
//! gate into a fresh ledger, and the accepted changes, in causal order, make a new store
//! (with a new manifest). The damaged store and its manifest are renamed aside, never
//! deleted. The report says what came from where and what is missing; the node's own
//! changes that no source could restore are named, since no peer can send them back.
//! Afterwards [`pull_from_peers`] runs the node briefly on the new store so that its peers
//! send back what they hold (own changes included, when they were gossiped).

use std::collections::BTreeSet;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::{Path, PathBuf};

use coop_model::{DeviceId, Envelope, EquivocationProof, Ledger, RecordId};
use serde::{Deserialize, Serialize};

use crate::datadir::DataDir;
use crate::error::NodeError;
use crate::manifest::{self, Manifest};
use crate::store::Store;

mod peers;
pub use peers::{pull_from_peers, PullProgress, Pulled};

/// Most log entries read from a damaged store (a damaged tree could claim anything).
const MAX_SALVAGED: usize = 1 << 24;

/// What `coop repair` did.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RepairReport {
    /// Where the damaged store was kept (renamed aside).
    pub kept_aside: PathBuf,
    /// Log entries the damaged store's manifest recorded, when it could be read.
    pub recorded: Option<u64>,
    /// Log entries sled still yielded from the damaged store.
    pub read_from_store: usize,
    /// Of those, how many did not decode as envelopes.
    pub undecodable: usize,
    /// Why reading the damaged store stopped early, when it did.
    pub read_error: Option<String>,
    /// Changes in the new store that came from the damaged store.
    pub recovered_from_store: usize,
    /// Changes in the new store that only the other sources had.
    pub recovered_from_sources: usize,
    /// Changes the peers sent back afterwards ([`pull_from_peers`]).
    #[serde(default)]
    pub recovered_from_peers: usize,
    /// Changes in the new store.
    pub total: usize,
    /// Changes from the other sources that the gate refused.
    pub refused_from_sources: usize,
    /// Changes the old manifest recorded beyond what the new store holds (a lower bound
    /// of what is missing: the count, not which).
    pub missing_at_least: u64,
    /// Changes read from the damaged store that did not make it into the new one.
    pub not_restored: Vec<NotRestored>,
    /// Equivocation proofs in the new store.
    pub proofs: usize,
    /// What asking the peers brought back, when they were asked.
    #[serde(default)]
    pub pulled: Option<Pulled>,
}

/// A change read from the damaged store that the new store does not hold.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NotRestored {
    /// Its record id.
    pub id: Option<RecordId>,
    /// Its writing device, when known.
    pub device: Option<DeviceId>,
    /// Whether this node's device wrote it: no peer may have it.
    pub own: bool,
    /// Why it was not restored.
    pub reason: String,
}

impl RepairReport {
    /// This node's own changes that could not be restored.
    pub fn own_lost(&self) -> impl Iterator<Item = &NotRestored> {
        self.not_restored.iter().filter(|n| n.own)
    }
}

/// What could be read out of a damaged store.
#[derive(Debug, Default)]
struct Salvage {
    entries: Vec<Vec<u8>>,
    proofs: Vec<Vec<u8>>,
    error: Option<String>,
}

/// Reads what sled still yields from the store at `path`. A store another process holds is
/// [`NodeError::Locked`]: repair never runs beside `coop up`.
fn salvage(path: &Path) -> Result<Salvage, NodeError> {
    if !path.exists() {
        return Ok(Salvage {
            error: Some("there is no store".into()),
            ..Salvage::default()
        });
    }
    let opened = catch_unwind(AssertUnwindSafe(|| sled::Config::new().path(path).open()));
    let db = match opened {
        Ok(Ok(db)) => db,
        Ok(Err(sled::Error::Io(io)))
            if io.kind() == std::io::ErrorKind::WouldBlock || io.to_string().contains("lock") =>
        {
            return Err(NodeError::Locked(
                path.parent().unwrap_or(path).to_path_buf(),
            ))
        }
        Ok(Err(e)) => {
            return Ok(Salvage {
                error: Some(format!("sled cannot open it: {e}")),
                ..Salvage::default()
            })
        }
        Err(_) => {
            return Ok(Salvage {
                error: Some("sled panicked opening it".into()),
                ..Salvage::default()
            })
        }
    };
    let mut out = Salvage::default();
    let read = catch_unwind(AssertUnwindSafe(|| {
        let mut entries = Vec::new();
        let mut proofs = Vec::new();
        let mut error = None;
        match db.open_tree("log") {
            Ok(log) => {
                for r in log.iter().take(MAX_SALVAGED) {
                    match r {
                        Ok((_, v)) => entries.push(v.to_vec()),
                        Err(e) => {
                            error = Some(format!("reading the log stopped: {e}"));
                            break;
                        }
                    }
                }
            }
            Err(e) => error = Some(format!("the log cannot be opened: {e}")),
        }
        if let Ok(t) = db.open_tree("proofs") {
            proofs.extend(t.iter().values().map_while(Result::ok).map(|v| v.to_vec()));
        }
        (entries, proofs, error)
    }));
    match read {
        Ok((entries, proofs, error)) => {
            out.entries = entries;
            out.proofs = proofs;
            out.error = error;
        }
        Err(_) => out.error = Some("sled panicked reading it".into()),
    }
    Ok(out)
}

/// A name beside `path` that does not exist yet: `<name>.<tag>-<stamp>[-n]`.
fn free_name(path: &Path, tag: &str, stamp: &str) -> PathBuf {
    let base = path.file_name().unwrap_or_default().to_string_lossy();
    (0..1000)
        .map(|n| match n {
            0 => format!("{base}.{tag}-{stamp}"),
            n => format!("{base}.{tag}-{stamp}-{n}"),
        })
        .map(|name| path.with_file_name(name))
        .find(|p| !p.exists() && !manifest::path_for(p).exists())
        .unwrap_or_else(|| path.with_file_name(format!("{base}.{tag}-{stamp}-last")))
}

fn rename(from: &Path, to: &Path) -> Result<(), NodeError> {
    std::fs::rename(from, to).map_err(|e| NodeError::io(from, e))
}

/// Rebuilds the store of `dir` from what its damaged store still holds plus `sources`
/// (envelopes from a sync file, say). `stamp` names the aside copy (the caller's clock).
pub fn repair(
    dir: &DataDir,
    sources: Vec<Envelope>,
    stamp: &str,
) -> Result<RepairReport, NodeError> {
    let config = dir.config()?;
    let community = config.community.ok_or(NodeError::NoCommunity)?;
    let own = dir.device()?.device_id();
    let store_path = dir.store_path();
    let manifest_path = manifest::path_for(&store_path);
    let recorded = Manifest::load(&manifest_path)
        .ok()
        .flatten()
        .map(|m| m.entries);
    let salvage = salvage(&store_path)?;

    let mut ledger = Ledger::new(community);
    let mut from_store: Vec<Envelope> = Vec::new();
    let mut not_restored = Vec::new();
    let mut undecodable = 0;
    for bytes in &salvage.entries {
        match Envelope::decode(bytes) {
            Ok(env) => from_store.push(env),
            Err(r) => {
                undecodable += 1;
                not_restored.push(NotRestored {
                    id: None,
                    device: None,
                    own: false,
                    reason: r.to_string(),
                });
            }
        }
    }
    // Every envelope goes through the full gate, signatures included: the damaged store
    // is not trusted, and neither is the file.
    let first = ledger.ingest(from_store.clone());
    let second = ledger.ingest(sources);
    // What the damaged store gave that the gate took (a refused entry a source held intact
    // counts as recovered from that source).
    let refused_from_store: BTreeSet<Option<RecordId>> =
        first.rejected.iter().map(|r| r.id).collect();
    let store_ids: BTreeSet<RecordId> = from_store
        .iter()
        .filter_map(|e| e.record_id())
        .filter(|id| !refused_from_store.contains(&Some(*id)))
        .collect();
    let refused_ids: BTreeSet<Option<RecordId>> = first
        .rejected
        .iter()
        .chain(&second.rejected)
        .map(|r| r.id)
        .collect();
    // A refused entry a source held intact is restored, not lost.
    for r in first
        .rejected
        .iter()
        .filter(|r| !r.id.is_some_and(|id| ledger.contains(&id)))
    {
        not_restored.push(NotRestored {
            id: r.id,
            device: r.device,
            own: r.device == Some(own),
            reason: r.to_string(),
        });
    }
    for env in &from_store {
        let id = env.record_id();
        if id.is_some_and(|id| ledger.contains(&id)) || refused_ids.contains(&id) {
            continue;
        }
        let device = coop_model::gate::verify_envelope(env.clone(), &community, false)
            .ok()
            .map(|v| v.device);
        not_restored.push(NotRestored {
            id,
            device,
            own: device == Some(own),
            reason: "it depends on changes no source had".into(),
        });
    }
    let proofs_before = ledger.proofs().count();
    for bytes in &salvage.proofs {
        if let Ok(p) = EquivocationProof::decode(bytes) {
            // A proof that no longer passes is left behind like a damaged entry.
            let _ = ledger.ingest_proof(p);
        }
    }
    tracing::debug!(
        proofs_before,
        proofs = ledger.proofs().count(),
        "proofs carried over"
    );
    let envelopes: Vec<Envelope> = ledger.envelopes().collect();
    let recovered_from_store = envelopes
        .iter()
        .filter(|e| e.record_id().is_some_and(|id| store_ids.contains(&id)))
        .count();

    // The new store is built in a directory of its own, then swapped in. Every crash point
    // of the swap leaves a state the next open reports as damaged, never a silent one.
    let work = free_name(&dir.root().join("store-repair"), "tmp", stamp);
    std::fs::create_dir_all(&work).map_err(|e| NodeError::io(&work, e))?;
    let new_store = work.join("store");
    {
        let mut store = Store::open(&new_store)?;
        store.append(&envelopes)?;
        for p in ledger.proofs() {
            store.put_proof(p)?;
        }
    }
    let aside = free_name(&store_path, "damaged", stamp);
    if store_path.exists() {
        rename(&store_path, &aside)?;
    }
    rename(&new_store, &store_path)?;
    if manifest_path.exists() {
        rename(&manifest_path, &manifest::path_for(&aside))?;
    }
    rename(&manifest::path_for(&new_store), &manifest_path)?;
    std::fs::remove_dir_all(&work).map_err(|e| NodeError::io(&work, e))?;

    let total = envelopes.len();
    Ok(RepairReport {
        kept_aside: aside,
        recorded,
        read_from_store: salvage.entries.len(),
        undecodable,
        read_error: salvage.error,
        recovered_from_store,
        recovered_from_sources: total - recovered_from_store,
        recovered_from_peers: 0,
        total,
        refused_from_sources: second.rejected.len(),
        missing_at_least: recorded.map_or(0, |r| r.saturating_sub(total as u64)),
        not_restored,
        proofs: ledger.proofs().count(),
        pulled: None,
    })
}
