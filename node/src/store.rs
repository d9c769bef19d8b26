//! The durable store: sled 0.34 behind a narrow interface, checked against a manifest.
//!
//! The signed-envelope log is the source of truth. Trees:
//! - `meta`: `format` → the on-disk format version ([`STORE_FORMAT`]).
//! - `log`: big-endian u64 position → envelope bytes, in the order accepted (a causal order).
//! - `proofs`: SHA-256 of the proof → equivocation proof bytes.
//!
//! Every write is flushed, read back and recorded in the manifest (`<data dir>/store.manifest`,
//! see `manifest`) before it is acknowledged. Opening checks the store against the manifest:
//! a store that holds less than the manifest records, or other bytes, is *damaged* — it still
//! opens, so that it can be read, verified and repaired, but every write is refused with
//! [`NodeError::Damaged`]. Everything else (the Automerge document, derived state) is a
//! projection rebuilt from the log when the store opens.

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use coop_model::{Envelope, EquivocationProof};

use crate::error::NodeError;
use crate::manifest::{self, LoadError, Manifest};

/// On-disk format version of the store. Format 2 is format 1 plus the manifest; a format-1
/// store gets its manifest built from what it holds the first time it opens.
pub const STORE_FORMAT: u64 = 2;

/// sled's page cache. The log is read whole only when the store opens and is appended to
/// afterwards, so a large cache (sled's default is 1 GiB) would only keep the log in memory
/// a second time beside the ledger.
const CACHE_BYTES: u64 = 16 * 1024 * 1024;

/// An opened store.
#[derive(Debug)]
pub struct Store {
    path: PathBuf,
    db: sled::Db,
    log: sled::Tree,
    proofs: sled::Tree,
    next: u64,
    /// What the store must hold (as of the last acknowledged write).
    manifest: Manifest,
    manifest_path: PathBuf,
    /// Why the store cannot be trusted with writes, when it cannot.
    damage: Option<String>,
    /// The chain after the number of entries asked for at open ([`Store::open_marked`]).
    mark: Option<(u64, [u8; 32])>,
    /// Whether the scan on open showed every log entry, in order, to its reader
    /// ([`Store::open_reading`]): the log held no gap and read without error.
    read_whole: bool,
    /// Makes [`Store::put_proof`] fail while reads still work (tests of error paths).
    #[cfg(test)]
    fail_proof_writes: bool,
    /// Declared last, so dropped after every sled handle above (see [`Released`]).
    _released: Released,
}

/// How long dropping a store waits for sled to let go of its files.
const RELEASE_DEADLINE: Duration = Duration::from_secs(10);

/// Dropping a [`Store`] returns only once the store's lock is free again. sled closes its
/// database file (and so drops its lock) when the last of its background threads lets go
/// of it, which can be a moment after the handles are dropped; reopening the store in that
/// moment failed with "in use by another coop process" (issue 15, `bench_smoke`). So the
/// drop waits for the condition itself — the lock can be taken — with a generous deadline,
/// after which it gives up quietly (another process may have taken the store by then).
#[derive(Debug)]
struct Released {
    db_file: PathBuf,
}

impl Drop for Released {
    fn drop(&mut self) {
        if !wait_until_unlocked(&self.db_file, RELEASE_DEADLINE) {
            tracing::debug!(file = %self.db_file.display(), "store still locked after it was closed");
        }
    }
}

/// Waits until `db_file`'s lock can be taken (and releases it at once). `false` when the
/// deadline passed first. A file that cannot be opened holds no lock.
pub(crate) fn wait_until_unlocked(db_file: &Path, deadline: Duration) -> bool {
    let end = Instant::now() + deadline;
    let mut pause = Duration::from_millis(1);
    loop {
        let Ok(file) = std::fs::File::open(db_file) else {
            return true;
        };
        match file.try_lock() {
            Ok(()) => return true,
            Err(std::fs::TryLockError::WouldBlock) => {}
            Err(std::fs::TryLockError::Error(_)) => return true,
        }
        drop(file);
        if Instant::now() >= end {
            return false;
        }
        std::thread::sleep(pause);
        pause = (pause * 2).min(Duration::from_millis(50));
    }
}

/// One stored log entry, as read back.
#[derive(Debug)]
pub struct StoredEnvelope {
    /// Position in the log.
    pub position: u64,
    /// The bytes as stored.
    pub bytes: Vec<u8>,
}

/// What a scan of the sled trees found: the manifest of what they hold.
struct Scan {
    held: Manifest,
    /// The chain after the first `n` entries, for the `n` asked for.
    chain_at: Option<[u8; 32]>,
    /// The chain after the first `mark` entries, for the mark asked for.
    chain_at_mark: Option<[u8; 32]>,
}

impl Store {
    /// Opens (or creates) the store at `path` and checks it against its manifest.
    ///
    /// A store held by another process is a [`NodeError::Locked`] naming the directory; one
    /// sled cannot open at all is [`NodeError::Damaged`]. A store that opens but does not
    /// match its manifest opens damaged: readable, with writes refused (see [`Store::damage`]).
    pub fn open(path: &Path) -> Result<Store, NodeError> {
        Store::open_marked(path, None)
    }

    /// [`Store::open`], also noting the manifest's hash chain after the first `mark` log
    /// entries (the scan on open computes it anyway): what a snapshot of the document taken
    /// after `mark` entries is checked against ([`Store::chain_at_mark`]).
    pub(crate) fn open_marked(path: &Path, mark: Option<u64>) -> Result<Store, NodeError> {
        Store::open_reading(path, mark, &mut |_, _| {})
    }

    /// [`Store::open_marked`], also showing every log entry (position, bytes) to `read`
    /// as the scan on open reads it, so that whoever opens the store to replay its log
    /// reads it once, not twice. When the scan stops early (a gap, a read error: the
    /// store is then damaged), `read` has seen only a prefix; [`Store::read_whole`] says
    /// whether it saw everything.
    pub(crate) fn open_reading(
        path: &Path,
        mark: Option<u64>,
        read: &mut dyn FnMut(u64, &[u8]),
    ) -> Result<Store, NodeError> {
        std::fs::create_dir_all(path).map_err(|e| NodeError::io(path, e))?;
        let data_dir = path.parent().unwrap_or(path).to_path_buf();
        let damaged = |what: String| NodeError::Damaged {
            dir: data_dir.clone(),
            what,
        };
        // sled 0.34 panics on some damaged files instead of returning an error.
        let opened = catch_unwind(AssertUnwindSafe(|| {
            sled::Config::new()
                .path(path)
                .cache_capacity(CACHE_BYTES)
                .open()
        }))
        .map_err(|p| damaged(format!("sled panicked opening it: {}", panic_text(&p))))?;
        let db = opened.map_err(|e| match e {
            sled::Error::Io(io)
                if io.kind() == std::io::ErrorKind::WouldBlock
                    || io.to_string().contains("lock") =>
            {
                NodeError::Locked(data_dir.clone())
            }
            sled::Error::Io(io)
                if !matches!(
                    io.kind(),
                    std::io::ErrorKind::UnexpectedEof | std::io::ErrorKind::InvalidData
                ) =>
            {
                NodeError::store(format!("opening {}", path.display()), io)
            }
            other => damaged(format!("sled cannot open it: {other}")),
        })?;
        let manifest_path = manifest::path_for(path);
        let mut marked = None;
        let mut read_whole = false;
        let checked = catch_unwind(AssertUnwindSafe(|| {
            check(
                &db,
                &manifest_path,
                mark,
                &mut marked,
                &mut read_whole,
                read,
            )
        }))
        .map_err(|p| damaged(format!("sled panicked reading it: {}", panic_text(&p))))??;
        let (log, proofs, manifest, damage) = checked;
        let next = manifest.entries;
        if let Some(d) = &damage {
            tracing::error!(store = %path.display(), "store damaged: {d}");
        }
        Ok(Store {
            path: path.to_path_buf(),
            db,
            log,
            proofs,
            next,
            manifest,
            manifest_path,
            damage,
            mark: mark.zip(marked),
            read_whole,
            #[cfg(test)]
            fail_proof_writes: false,
            _released: Released {
                db_file: path.join("db"),
            },
        })
    }

    /// The log's head as the manifest records it: the number of entries and the hash
    /// chain over them.
    pub fn head(&self) -> (u64, [u8; 32]) {
        (self.manifest.entries, self.manifest.chain)
    }

    /// The chain after the first `n` log entries, when `n` was the mark asked for at open.
    pub(crate) fn chain_at_mark(&self, n: u64) -> Option<[u8; 32]> {
        self.mark.filter(|(m, _)| *m == n).map(|(_, c)| c)
    }

    /// Whether the reader given to [`Store::open_reading`] saw every log entry.
    pub(crate) fn read_whole(&self) -> bool {
        self.read_whole
    }

    /// Where the store lives.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Why the store is damaged (and refuses writes), when it is.
    pub fn damage(&self) -> Option<&str> {
        self.damage.as_deref()
    }

    /// `Ok` when the store takes writes; [`NodeError::Damaged`] when it is damaged. Writers
    /// ask first, so that a damaged store's refusal is what a person sees, not some effect
    /// of the data it lost.
    pub fn writable(&self) -> Result<(), NodeError> {
        self.refuse_if_damaged()
    }

    fn refuse_if_damaged(&self) -> Result<(), NodeError> {
        match &self.damage {
            Some(what) => Err(self.damaged(what.clone())),
            None => Ok(()),
        }
    }

    fn damaged(&self, what: String) -> NodeError {
        NodeError::Damaged {
            dir: self.path.parent().unwrap_or(&self.path).to_path_buf(),
            what,
        }
    }

    /// Marks the store damaged from now on and returns the error to report.
    fn mark_damaged(&mut self, what: String) -> NodeError {
        tracing::error!(store = %self.path.display(), "store damaged: {what}");
        self.damage = Some(what.clone());
        self.damaged(what)
    }

    /// Records `next` as what the store must hold, durably. A manifest that cannot be
    /// written leaves the store damaged: its record would no longer be trustworthy.
    fn commit_manifest(&mut self, next: Manifest) -> Result<(), NodeError> {
        if let Err(e) = next.save(&self.manifest_path) {
            return Err(self.mark_damaged(format!(
                "the manifest {} could not be written ({e})",
                self.manifest_path.display()
            )));
        }
        self.manifest = next;
        Ok(())
    }

    /// Appends envelopes to the log in one batch, flushes, reads them back and records them
    /// in the manifest before returning. A damaged store refuses.
    pub fn append(&mut self, envelopes: &[Envelope]) -> Result<(), NodeError> {
        if envelopes.is_empty() {
            return Ok(());
        }
        self.refuse_if_damaged()?;
        let encoded: Vec<Vec<u8>> = envelopes.iter().map(Envelope::encode).collect();
        let mut batch = sled::Batch::default();
        for (i, bytes) in encoded.iter().enumerate() {
            batch.insert(&(self.next + i as u64).to_be_bytes(), bytes.as_slice());
        }
        self.log
            .apply_batch(batch)
            .map_err(|e| NodeError::store("appending to the log", e))?;
        self.flush()?;
        let mut next = self.manifest.clone();
        for (i, bytes) in encoded.iter().enumerate() {
            let position = self.next + i as u64;
            match self.log.get(position.to_be_bytes()) {
                Ok(Some(v)) if v.as_ref() == bytes.as_slice() => {}
                Ok(_) => {
                    return Err(self.mark_damaged(format!(
                        "log entry {position} does not read back as written"
                    )))
                }
                Err(e) => {
                    return Err(
                        self.mark_damaged(format!("log entry {position} cannot be read ({e})"))
                    )
                }
            }
            next.push(bytes);
        }
        self.commit_manifest(next)?;
        self.next += encoded.len() as u64;
        Ok(())
    }

    /// Stores an equivocation proof, flushes, reads it back and records it in the manifest.
    pub fn put_proof(&mut self, proof: &EquivocationProof) -> Result<(), NodeError> {
        #[cfg(test)]
        if self.fail_proof_writes {
            return Err(NodeError::store(
                "storing an equivocation proof",
                std::io::Error::other("injected failure"),
            ));
        }
        self.refuse_if_damaged()?;
        // Keyed by content hash: storing the same proof twice is a no-op.
        let bytes = proof.encode();
        let key = sha256(&bytes);
        self.proofs
            .insert(key, bytes.as_slice())
            .map_err(|e| NodeError::store("storing an equivocation proof", e))?;
        self.flush()?;
        match self.proofs.get(key) {
            Ok(Some(v)) if v.as_ref() == bytes.as_slice() => {}
            _ => {
                return Err(
                    self.mark_damaged("an equivocation proof does not read back as written".into())
                )
            }
        }
        if self.manifest.proofs.contains(&key) {
            return Ok(());
        }
        let mut next = self.manifest.clone();
        next.proofs.insert(key);
        self.commit_manifest(next)
    }

    /// Every stored proof.
    pub fn proofs(&self) -> Result<Vec<Vec<u8>>, NodeError> {
        self.proofs
            .iter()
            .values()
            .map(|v| {
                v.map(|v| v.to_vec())
                    .map_err(|e| NodeError::store("reading the equivocation proofs", e))
            })
            .collect()
    }

    /// The whole log, in order.
    pub fn log(&self) -> impl Iterator<Item = Result<StoredEnvelope, NodeError>> + '_ {
        self.log.iter().map(|r| {
            let (k, v) = r.map_err(|e| NodeError::store("reading the log", e))?;
            let position = u64::from_be_bytes(k.as_ref().try_into().unwrap_or([0; 8]));
            Ok(StoredEnvelope {
                position,
                bytes: v.to_vec(),
            })
        })
    }

    /// Number of stored envelopes.
    pub fn len(&self) -> usize {
        self.log.len()
    }

    /// Whether the log is empty.
    pub fn is_empty(&self) -> bool {
        self.log.is_empty()
    }

    /// Durably writes everything written so far.
    pub fn flush(&self) -> Result<(), NodeError> {
        self.db
            .flush()
            .map(|_| ())
            .map_err(|e| NodeError::store("flushing", e))
    }

    /// Drops the proofs tree under the open store, so that storing (and reading) proofs
    /// fails inside sled as on a broken disk (tests of error paths).
    #[cfg(test)]
    pub(crate) fn break_proofs_for_test(&self) {
        self.db.drop_tree("proofs").expect("drop the proofs tree");
    }

    /// Makes storing a proof fail while everything else works (tests of error paths).
    #[cfg(test)]
    pub(crate) fn fail_proof_writes_for_test(&mut self, fail: bool) {
        self.fail_proof_writes = fail;
    }

    /// Overwrites one stored entry (for tests of `verify`: simulates disk corruption).
    #[doc(hidden)]
    pub fn corrupt_for_test(&mut self, position: u64, bytes: Vec<u8>) -> Result<(), NodeError> {
        self.log
            .insert(position.to_be_bytes(), bytes)
            .map_err(|e| NodeError::store("overwriting a log entry", e))?;
        self.flush()
    }
}

fn sha256(bytes: &[u8]) -> [u8; 32] {
    use sha2::{Digest, Sha256};
    Sha256::digest(bytes).into()
}

fn panic_text(p: &Box<dyn std::any::Any + Send>) -> String {
    p.downcast_ref::<String>()
        .cloned()
        .or_else(|| p.downcast_ref::<&str>().map(|s| s.to_string()))
        .unwrap_or_else(|| "unknown panic".into())
}

/// The opened trees, the manifest to go on from, and the damage found, if any.
type Checked = (sled::Tree, sled::Tree, Manifest, Option<String>);

/// Opens the trees and checks them against the manifest (creating or migrating it when the
/// store is new or of format 1). Damage is a value; an error is a failure to even look.
fn check(
    db: &sled::Db,
    manifest_path: &Path,
    mark: Option<u64>,
    marked: &mut Option<[u8; 32]>,
    read_whole: &mut bool,
    read: &mut dyn FnMut(u64, &[u8]),
) -> Result<Checked, NodeError> {
    let dir = manifest_path
        .parent()
        .unwrap_or(manifest_path)
        .to_path_buf();
    let damaged = |what: String| NodeError::Damaged {
        dir: dir.clone(),
        what,
    };
    let sled_err = |e: sled::Error| damaged(format!("sled fails reading it: {e}"));
    let meta = db.open_tree("meta").map_err(sled_err)?;
    let log = db.open_tree("log").map_err(sled_err)?;
    let proofs = db.open_tree("proofs").map_err(sled_err)?;
    let format = meta.get("format").map_err(sled_err)?;
    let format = format
        .map(|v| <[u8; 8]>::try_from(v.as_ref()).map(u64::from_be_bytes))
        .transpose()
        .map_err(|_| damaged("its format record is unreadable".into()))?;
    let loaded = match Manifest::load(manifest_path) {
        Ok(m) => Ok(m),
        Err(LoadError::Damaged(what)) => Err(what),
        Err(LoadError::Io(e)) => return Err(NodeError::io(manifest_path, e)),
    };
    let want = loaded
        .as_ref()
        .ok()
        .and_then(|m| m.as_ref())
        .map(|m| m.entries);
    let scan = match scan(&log, &proofs, want, mark, read) {
        Ok(s) => {
            *marked = s.chain_at_mark;
            *read_whole = true;
            s
        }
        Err(what) => {
            // Nothing trustworthy to go on from: the store stays read-only.
            let m = loaded.ok().flatten().unwrap_or_default();
            return Ok((log, proofs, m, Some(what)));
        }
    };
    let save = |m: &Manifest| {
        m.save(manifest_path)
            .map_err(|e| NodeError::io(manifest_path, e))
    };
    let set_format = || -> Result<(), NodeError> {
        meta.insert("format", &STORE_FORMAT.to_be_bytes())
            .map_err(sled_err)?;
        db.flush().map_err(sled_err)?;
        Ok(())
    };
    let empty = scan.held.entries == 0 && scan.held.proofs.is_empty();
    let shown = manifest_path.display();
    match (format, loaded) {
        (_, Err(what)) => {
            let what = format!("{what} ({shown})");
            Ok((log, proofs, scan.held, Some(what)))
        }
        // A new store: its manifest is written before anything else.
        (None, Ok(None)) if empty => {
            save(&scan.held)?;
            set_format()?;
            Ok((log, proofs, scan.held, None))
        }
        // A store of format 1 (before manifests): record what it holds now.
        (Some(1), Ok(None)) => {
            save(&scan.held)?;
            set_format()?;
            tracing::info!(store = %dir.display(), entries = scan.held.entries, "store upgraded to format {STORE_FORMAT}: manifest built");
            Ok((log, proofs, scan.held, None))
        }
        (Some(STORE_FORMAT), Ok(Some(m))) => {
            let damage = if scan.held.entries < m.entries {
                Some(format!(
                    "the manifest records {} log entries but the store yields {}",
                    m.entries, scan.held.entries
                ))
            } else if scan.chain_at != Some(m.chain) {
                Some(format!(
                    "its first {} log entries differ from what the manifest records",
                    m.entries
                ))
            } else if !m.proofs.is_subset(&scan.held.proofs) {
                Some(format!(
                    "{} equivocation proof(s) the manifest records are missing",
                    m.proofs.difference(&scan.held.proofs).count()
                ))
            } else {
                None
            };
            match damage {
                Some(d) => Ok((log, proofs, m, Some(d))),
                None => {
                    // More than recorded: a write flushed just before a crash, never
                    // acknowledged. The store holds it, so the manifest now records it.
                    if scan.held != m {
                        save(&scan.held)?;
                    }
                    Ok((log, proofs, scan.held, None))
                }
            }
        }
        (Some(STORE_FORMAT), Ok(None)) => Ok((
            log,
            proofs,
            scan.held,
            Some(format!("its manifest {shown} is missing")),
        )),
        (None, Ok(_)) => Ok((
            log,
            proofs,
            scan.held,
            Some("its format record is missing".into()),
        )),
        (Some(1), Ok(Some(m))) => Ok((
            log,
            proofs,
            m,
            Some("it records format 1 but has a manifest".into()),
        )),
        (Some(v), Ok(_)) => Err(NodeError::Corrupt(format!(
            "store in {} has format {v}, this build reads {STORE_FORMAT}",
            dir.display()
        ))),
    }
}

/// Reads every log entry and proof key, building the manifest of what the trees hold (and
/// the chain after the first `upto` entries), and showing each entry to `read`. A gap in
/// the positions or a read error is damage.
fn scan(
    log: &sled::Tree,
    proofs: &sled::Tree,
    upto: Option<u64>,
    mark: Option<u64>,
    read: &mut dyn FnMut(u64, &[u8]),
) -> Result<Scan, String> {
    let mut held = Manifest::default();
    let mut chain_at = (upto == Some(0)).then_some(held.chain);
    let mut chain_at_mark = (mark == Some(0)).then_some(held.chain);
    for r in log.iter() {
        let (k, v) = r.map_err(|e| format!("reading log entry {} fails ({e})", held.entries))?;
        let position = <[u8; 8]>::try_from(k.as_ref()).map(u64::from_be_bytes).ok();
        if position != Some(held.entries) {
            return Err(format!("the log has a gap at entry {}", held.entries));
        }
        read(held.entries, &v);
        held.push(&v);
        if Some(held.entries) == upto {
            chain_at = Some(held.chain);
        }
        if Some(held.entries) == mark {
            chain_at_mark = Some(held.chain);
        }
    }
    for k in proofs.iter().keys() {
        let k = k.map_err(|e| format!("reading the equivocation proofs fails ({e})"))?;
        let key = <[u8; 32]>::try_from(k.as_ref())
            .map_err(|_| "an equivocation proof has a malformed key".to_string())?;
        held.proofs.insert(key);
    }
    Ok(Scan {
        held,
        chain_at,
        chain_at_mark,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Writes raw entries into the sled trees of `path`, as format `format` would have.
    fn raw(path: &Path, format: Option<u64>, entries: &[&[u8]], first: u64) {
        let db = sled::open(path).unwrap();
        if let Some(f) = format {
            db.open_tree("meta")
                .unwrap()
                .insert("format", &f.to_be_bytes())
                .unwrap();
        }
        let log = db.open_tree("log").unwrap();
        for (i, e) in entries.iter().enumerate() {
            log.insert((first + i as u64).to_be_bytes(), *e).unwrap();
        }
        db.flush().unwrap();
        drop((log, db));
        released(path);
    }

    /// Waits, as a dropped [`Store`] does, until sled's threads let go of `path`'s lock:
    /// a raw handle dropped here may hold it a moment longer.
    fn released(path: &Path) {
        assert!(
            wait_until_unlocked(&path.join("db"), RELEASE_DEADLINE),
            "{} still locked",
            path.display()
        );
    }

    #[test]
    fn a_format_1_store_gets_its_manifest_on_first_open() {
        let root = tempfile::tempdir().unwrap();
        let path = root.path().join("store");
        raw(&path, Some(1), &[b"one", b"two"], 0);
        let store = Store::open(&path).unwrap();
        assert_eq!(store.damage(), None);
        assert_eq!(store.manifest.entries, 2);
        drop(store);
        let m = Manifest::load(&manifest::path_for(&path)).unwrap().unwrap();
        assert_eq!(m.entries, 2);
        // From now on it is format 2, and its manifest is required.
        std::fs::remove_file(manifest::path_for(&path)).unwrap();
        let store = Store::open(&path).unwrap();
        assert!(store.damage().unwrap().contains("missing"), "{store:?}");
        assert!(matches!(store.writable(), Err(NodeError::Damaged { .. })));
    }

    #[test]
    fn an_entry_flushed_but_never_recorded_is_taken_in_not_damage() {
        let root = tempfile::tempdir().unwrap();
        let path = root.path().join("store");
        drop(Store::open(&path).unwrap());
        // A crash between sled's flush and the manifest's rename leaves one more entry.
        raw(&path, None, &[b"flushed before the crash"], 0);
        let store = Store::open(&path).unwrap();
        assert_eq!(store.damage(), None);
        assert_eq!((store.manifest.entries, store.next), (1, 1));
    }

    #[test]
    fn fewer_or_other_entries_than_recorded_are_damage() {
        let root = tempfile::tempdir().unwrap();
        let path = root.path().join("store");
        raw(&path, Some(1), &[b"one", b"two"], 0);
        drop(Store::open(&path).unwrap());
        raw(&path, None, &[b"TWO"], 1);
        let store = Store::open(&path).unwrap();
        assert!(store.damage().unwrap().contains("differ"), "{store:?}");
        drop(store);
        let db = sled::open(&path).unwrap();
        db.open_tree("log")
            .unwrap()
            .remove(1u64.to_be_bytes())
            .unwrap();
        db.flush().unwrap();
        drop(db);
        released(&path);
        let store = Store::open(&path).unwrap();
        assert!(
            store.damage().unwrap().contains("records 2 log entries"),
            "{store:?}"
        );
    }

    #[test]
    fn a_dropped_store_has_released_its_lock() {
        let root = tempfile::tempdir().unwrap();
        let path = root.path().join("store");
        for round in 0..30u64 {
            let store = Store::open(&path).unwrap();
            // Enough writes that sled's background threads have I/O in flight.
            for i in 0..20u64 {
                store
                    .log
                    .insert((round * 20 + i).to_be_bytes(), vec![7u8; 40_000])
                    .unwrap();
            }
            let locked = std::fs::File::open(path.join("db")).unwrap().try_lock();
            assert!(locked.is_err(), "an open store holds its lock");
            // Dropped unflushed: sled writes the last buffer on its way out.
            drop(store);
            // No waiting here: the lock must already be free, in this process or another.
            let db = std::fs::File::open(path.join("db")).unwrap();
            assert!(
                db.try_lock().is_ok(),
                "round {round}: the store is still locked"
            );
        }
    }

    #[test]
    fn a_gap_in_the_log_is_damage() {
        let root = tempfile::tempdir().unwrap();
        let path = root.path().join("store");
        raw(&path, Some(1), &[b"zero", b"two"], 0);
        let db = sled::open(&path).unwrap();
        let log = db.open_tree("log").unwrap();
        log.remove(1u64.to_be_bytes()).unwrap();
        log.insert(2u64.to_be_bytes(), b"two".as_slice()).unwrap();
        db.flush().unwrap();
        drop((log, db));
        released(&path);
        let store = Store::open(&path).unwrap();
        assert!(store.damage().unwrap().contains("gap"), "{store:?}");
    }
}
