//! The document snapshot: a cache of the Automerge document beside the store, so that a node
//! opens without applying every change of its log again.
//!
//! The log stays the truth. The snapshot records which log it was taken from — the number
//! of log entries it covers and the manifest's hash chain after them — and is used only
//! when the store's chain after that many entries is the same; the changes accepted since
//! are applied on top, and the document is kept only if it then holds exactly the ledger's
//! canonical changes (`Ledger::finish_doc`). Anything else (no file, a damaged or truncated
//! one, another log, another version) is ignored and the document is rebuilt from the log.
//! It is written atomically (temporary file, fsync, rename, fsync of the directory), so a
//! crash while writing leaves the previous snapshot or none, never a partial one that is
//! used. Layout (docs/PROTOCOL.md §9, integers big-endian):
//!
//! ```text
//! 0       8     magic "COOPSNAP"
//! 8       1     version = 1
//! 9       8     log entries N it covers
//! 17      32    the manifest's chain after N entries
//! 49      8     ledger entries when taken (where the changes since begin)
//! 57      8     document length D
//! 65      D     Automerge save() of the document
//! 65+D    32    SHA-256 of every byte before it
//! ```

use std::path::{Path, PathBuf};

use coop_model::derived_cache::{self, CacheKey};
use sha2::{Digest, Sha256};

const MAGIC: &[u8; 8] = b"COOPSNAP";
const VERSION: u8 = 1;
const HEADER: usize = 65;

/// A snapshot read back from disk.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Snapshot {
    /// Log entries it covers.
    pub(crate) entries: u64,
    /// The manifest's chain after those entries.
    pub(crate) chain: [u8; 32],
    /// Ledger entries when it was taken.
    pub(crate) ledger_len: u64,
    /// Automerge `save()` bytes.
    pub(crate) doc: Vec<u8>,
}

/// Where the snapshot of the store at `store` lives: `<data dir>/store.snapshot`.
pub(crate) fn path_for(store: &Path) -> PathBuf {
    let mut name = store.file_name().unwrap_or_default().to_os_string();
    name.push(".snapshot");
    store.with_file_name(name)
}

/// Where the derived-state cache of the store at `store` lives: `<data dir>/store.derived`
/// (its format: `coop_model::derived_cache`; PROTOCOL.md §9).
pub(crate) fn derived_path_for(store: &Path) -> PathBuf {
    let mut name = store.file_name().unwrap_or_default().to_os_string();
    name.push(".derived");
    store.with_file_name(name)
}

/// Where the decoded-log cache of the store at `store` lives: `<data dir>/store.decoded`
/// (its format: `coop_model::log_cache`; PROTOCOL.md §9).
pub(crate) fn decoded_path_for(store: &Path) -> PathBuf {
    let mut name = store.file_name().unwrap_or_default().to_os_string();
    name.push(".decoded");
    store.with_file_name(name)
}

/// The decoded-log cache at `path`, checked, for replaying a log of `community`: `Ok(None)`
/// when there is none, `Err` (a reason to log) when it cannot be used.
pub(crate) fn load_decoded(
    path: &Path,
    community: coop_model::CommunityId,
) -> Result<Option<coop_model::log_cache::LogCache>, String> {
    let bytes = match std::fs::read(path) {
        Ok(b) => b,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(format!("reading {}: {e}", path.display())),
    };
    coop_model::log_cache::LogCache::open(bytes, community)
        .map(Some)
        .map_err(|e| e.to_string())
}

/// The key the derived-state cache at `path` names, from its header alone: `Ok(None)` when
/// there is none, `Err` (a reason to log) when it cannot be used. The whole file is read,
/// checked and decoded by [`load_derived`], on another thread.
pub(crate) fn derived_key(path: &Path) -> Result<Option<CacheKey>, String> {
    use std::io::Read;
    let mut file = match std::fs::File::open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(format!("reading {}: {e}", path.display())),
    };
    let mut head = Vec::with_capacity(128);
    file.by_ref()
        .take(128)
        .read_to_end(&mut head)
        .map_err(|e| format!("reading {}: {e}", path.display()))?;
    derived_cache::read_key(&head)
        .map(Some)
        .map_err(|e| e.to_string())
}

/// The derived-state cache at `path`, decoded, when it names `key`; `Err` (a reason to
/// log) when it cannot be used.
pub(crate) fn load_derived(path: &Path, key: CacheKey) -> Result<derived_cache::Decoded, String> {
    // Read twice (checksum, then decode) from one open file rather than held whole beside
    // the state it decodes to: the cache is about as large as that state.
    let file = std::fs::File::open(path).map_err(|e| format!("reading {}: {e}", path.display()))?;
    let decoded = derived_cache::decode_read(file).map_err(|e| e.to_string())?;
    if decoded.key() != key {
        return Err("it changed while the node opened".into());
    }
    Ok(decoded)
}

impl Snapshot {
    /// The bytes of the snapshot file.
    pub(crate) fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(HEADER + self.doc.len() + 32);
        out.extend_from_slice(MAGIC);
        out.push(VERSION);
        out.extend_from_slice(&self.entries.to_be_bytes());
        out.extend_from_slice(&self.chain);
        out.extend_from_slice(&self.ledger_len.to_be_bytes());
        out.extend_from_slice(&(self.doc.len() as u64).to_be_bytes());
        out.extend_from_slice(&self.doc);
        let sum: [u8; 32] = Sha256::digest(&out).into();
        out.extend_from_slice(&sum);
        out
    }

    /// Reads snapshot bytes (keeping the document's in place); an error says what is
    /// wrong with them.
    pub(crate) fn decode(mut bytes: Vec<u8>) -> Result<Snapshot, String> {
        if bytes.len() < HEADER + 32 {
            return Err(format!("the snapshot is {} bytes, too short", bytes.len()));
        }
        let (body, sum) = bytes.split_at(bytes.len() - 32);
        if Sha256::digest(body).as_slice() != sum {
            return Err("the snapshot's checksum does not match".into());
        }
        let header = Header::decode(body)?;
        if header.doc_len != (body.len() - HEADER) as u64 {
            return Err("the snapshot's document length does not match the file".into());
        }
        // The document's bytes stay where they are: a snapshot of a large ledger is tens
        // of megabytes, and the node opens while holding it.
        bytes.truncate(bytes.len() - 32);
        bytes.drain(..HEADER);
        Ok(Snapshot {
            entries: header.entries,
            chain: header.chain,
            ledger_len: header.ledger_len,
            doc: bytes,
        })
    }

    /// Reads the snapshot at `path`: `Ok(None)` when there is none, `Err` (a reason to
    /// log) when it cannot be used.
    pub(crate) fn load(path: &Path) -> Result<Option<Snapshot>, String> {
        match std::fs::read(path) {
            Ok(bytes) => Snapshot::decode(bytes).map(Some),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(format!("reading {}: {e}", path.display())),
        }
    }

    /// Writes the snapshot atomically.
    pub(crate) fn save(&self, path: &Path) -> std::io::Result<()> {
        crate::manifest::write_atomically(path, &self.encode())
    }

    /// The header of this snapshot.
    pub(crate) fn header(&self) -> Header {
        Header {
            entries: self.entries,
            chain: self.chain,
            ledger_len: self.ledger_len,
            doc_len: self.doc.len() as u64,
        }
    }
}

/// What a snapshot's first bytes say: which log it was taken from. Read on its own while
/// the node opens (the store's scan needs the entry count), before the whole file is read
/// and checked on another thread.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Header {
    /// Log entries it covers.
    pub(crate) entries: u64,
    /// The manifest's chain after those entries.
    pub(crate) chain: [u8; 32],
    /// Ledger entries when it was taken.
    pub(crate) ledger_len: u64,
    /// Length of the document's bytes.
    pub(crate) doc_len: u64,
}

impl Header {
    fn decode(body: &[u8]) -> Result<Header, String> {
        if body.len() < HEADER {
            return Err(format!("the snapshot is {} bytes, too short", body.len()));
        }
        if &body[..8] != MAGIC {
            return Err("the snapshot's magic is wrong".into());
        }
        if body[8] != VERSION {
            return Err(format!("the snapshot has version {}", body[8]));
        }
        let u64_at = |at: usize| {
            body.get(at..at + 8)
                .and_then(|b| <[u8; 8]>::try_from(b).ok())
                .map(u64::from_be_bytes)
                .ok_or_else(|| "the snapshot's header is short".to_string())
        };
        let chain: [u8; 32] = body[17..49]
            .try_into()
            .map_err(|_| "the snapshot's header is short")?;
        Ok(Header {
            entries: u64_at(9)?,
            chain,
            ledger_len: u64_at(49)?,
            doc_len: u64_at(57)?,
        })
    }

    /// Reads the header of the snapshot at `path` (not checked against its checksum:
    /// [`Snapshot::load`] does that, and the two must then agree): `Ok(None)` when there
    /// is none, `Err` (a reason to log) when it cannot be used.
    pub(crate) fn load(path: &Path) -> Result<Option<Header>, String> {
        use std::io::Read;
        let mut file = match std::fs::File::open(path) {
            Ok(f) => f,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(format!("reading {}: {e}", path.display())),
        };
        let mut head = Vec::with_capacity(HEADER);
        file.by_ref()
            .take(HEADER as u64)
            .read_to_end(&mut head)
            .map_err(|e| format!("reading {}: {e}", path.display()))?;
        Header::decode(&head).map(Some)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Snapshot {
        Snapshot {
            entries: 7,
            chain: [4; 32],
            ledger_len: 6,
            doc: b"not really a document".to_vec(),
        }
    }

    #[test]
    fn a_snapshot_reads_back_as_written() {
        let s = sample();
        assert_eq!(Snapshot::decode(s.encode()), Ok(s.clone()));
        assert_eq!(Header::decode(&s.encode()), Ok(s.header()));
    }

    #[test]
    fn a_truncated_or_altered_snapshot_is_refused() {
        let bytes = sample().encode();
        for cut in [0, 10, HEADER, bytes.len() - 1] {
            assert!(
                Snapshot::decode(bytes[..cut].to_vec()).is_err(),
                "cut at {cut}"
            );
        }
        let mut flipped = bytes.clone();
        flipped[HEADER + 2] ^= 1;
        assert_eq!(
            Snapshot::decode(flipped),
            Err("the snapshot's checksum does not match".into())
        );
    }

    #[test]
    fn saving_replaces_the_file_and_leaves_no_temporary() {
        let dir = tempfile::tempdir().unwrap();
        let path = path_for(&dir.path().join("store"));
        assert_eq!(Snapshot::load(&path), Ok(None));
        sample().save(&path).unwrap();
        let mut next = sample();
        next.entries = 9;
        next.save(&path).unwrap();
        assert_eq!(Snapshot::load(&path), Ok(Some(next)));
        let names: Vec<_> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names, vec![std::ffi::OsString::from("store.snapshot")]);
    }
}
