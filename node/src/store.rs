//! The durable store: sled 0.34 behind a narrow interface.
//!
//! The signed-envelope log is the source of truth. Trees:
//! - `meta`: `format` → the on-disk format version ([`STORE_FORMAT`]).
//! - `log`: big-endian u64 position → envelope bytes, in the order accepted (a causal order).
//! - `proofs`: device id → equivocation proof bytes.
//!
//! Every write is flushed before it is acknowledged. Everything else (the Automerge
//! document, derived state) is a projection rebuilt from the log when the store opens.

use std::path::{Path, PathBuf};

use coop_model::{Envelope, EquivocationProof};

use crate::error::NodeError;

/// On-disk format version of the store.
pub const STORE_FORMAT: u64 = 1;

/// An opened store.
#[derive(Debug)]
pub struct Store {
    path: PathBuf,
    db: sled::Db,
    log: sled::Tree,
    proofs: sled::Tree,
    next: u64,
    /// Makes [`Store::put_proof`] fail while reads still work (tests of error paths).
    #[cfg(test)]
    fail_proof_writes: bool,
}

/// One stored log entry, as read back.
#[derive(Debug)]
pub struct StoredEnvelope {
    /// Position in the log.
    pub position: u64,
    /// The bytes as stored.
    pub bytes: Vec<u8>,
}

impl Store {
    /// Opens (or creates) the store at `path`. A store held by another process is a
    /// [`NodeError::Locked`] naming the directory.
    pub fn open(path: &Path) -> Result<Store, NodeError> {
        std::fs::create_dir_all(path).map_err(|e| NodeError::io(path, e))?;
        let db = sled::Config::new().path(path).open().map_err(|e| match e {
            sled::Error::Io(io)
                if io.kind() == std::io::ErrorKind::WouldBlock
                    || io.to_string().contains("lock") =>
            {
                NodeError::Locked(path.parent().unwrap_or(path).to_path_buf())
            }
            other => NodeError::store(format!("opening {}", path.display()), other),
        })?;
        let err = |e: sled::Error| NodeError::store(format!("opening {}", path.display()), e);
        let meta = db.open_tree("meta").map_err(err)?;
        match meta.get("format").map_err(err)? {
            None => {
                meta.insert("format", &STORE_FORMAT.to_be_bytes())
                    .map_err(err)?;
                db.flush().map_err(err)?;
            }
            Some(v) if v.as_ref() == STORE_FORMAT.to_be_bytes() => {}
            Some(v) => {
                return Err(NodeError::Corrupt(format!(
                    "store {} has format {:?}, this build reads {STORE_FORMAT}",
                    path.display(),
                    v.as_ref()
                )))
            }
        }
        let log = db.open_tree("log").map_err(err)?;
        let proofs = db.open_tree("proofs").map_err(err)?;
        let next = match log.last().map_err(err)? {
            Some((k, _)) => u64::from_be_bytes(k.as_ref().try_into().unwrap_or([0; 8])) + 1,
            None => 0,
        };
        Ok(Store {
            path: path.to_path_buf(),
            db,
            log,
            proofs,
            next,
            #[cfg(test)]
            fail_proof_writes: false,
        })
    }

    /// Where the store lives.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Appends envelopes to the log in one batch and flushes before returning.
    pub fn append(&mut self, envelopes: &[Envelope]) -> Result<(), NodeError> {
        if envelopes.is_empty() {
            return Ok(());
        }
        let mut batch = sled::Batch::default();
        let mut next = self.next;
        for env in envelopes {
            batch.insert(&next.to_be_bytes(), env.encode());
            next += 1;
        }
        self.log
            .apply_batch(batch)
            .map_err(|e| NodeError::store("appending to the log", e))?;
        self.flush()?;
        self.next = next;
        Ok(())
    }

    /// Stores an equivocation proof and flushes.
    pub fn put_proof(&mut self, proof: &EquivocationProof) -> Result<(), NodeError> {
        #[cfg(test)]
        if self.fail_proof_writes {
            return Err(NodeError::store(
                "storing an equivocation proof",
                std::io::Error::other("injected failure"),
            ));
        }
        // Keyed by content hash: storing the same proof twice is a no-op.
        let bytes = proof.encode();
        self.proofs
            .insert(sha256(&bytes), bytes)
            .map_err(|e| NodeError::store("storing an equivocation proof", e))?;
        self.flush()
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
