//! The store manifest: an independent record, kept outside sled, of what the store must hold.
//!
//! sled 0.34 can lose data without reporting an error (a damaged `db` file can make it open
//! an older or empty tree and accept writes it never persists). The manifest lets the node
//! notice: it holds the number of log entries, a hash chain over their bytes in log order,
//! and the hashes of the stored equivocation proofs. It is rewritten atomically (temporary
//! file, fsync, rename, fsync of the directory) after every flush of the store, and checked
//! when the store opens. Layout (docs/PROTOCOL.md §9, all integers big-endian):
//!
//! ```text
//! 0       8     magic "COOPMNFT"
//! 8       1     version = 1
//! 9       8     entries N
//! 17      32    chain after N entries: c0 = 32 zero bytes, c(i+1) = SHA-256(c(i) || SHA-256(entry i))
//! 49      4     proof count P
//! 53      32*P  SHA-256 of each stored proof, ascending
//! end-32  32    SHA-256 of every byte before it
//! ```

use std::collections::BTreeSet;
use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

const MAGIC: &[u8; 8] = b"COOPMNFT";
const VERSION: u8 = 1;
/// More proofs than this in a manifest is damage, not a ledger (checked before allocating).
const MAX_PROOFS: usize = 1 << 20;

/// What the store must hold.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Manifest {
    /// Log entries, positions `0..entries`.
    pub(crate) entries: u64,
    /// The hash chain over those entries.
    pub(crate) chain: [u8; 32],
    /// SHA-256 of each stored proof (the proofs tree's keys).
    pub(crate) proofs: BTreeSet<[u8; 32]>,
}

/// One step of the hash chain: the chain after `entry`, given the chain before it.
pub(crate) fn chain_step(chain: &[u8; 32], entry: &[u8]) -> [u8; 32] {
    let mut h = Sha256::new();
    h.update(chain);
    h.update(Sha256::digest(entry));
    h.finalize().into()
}

/// Where the manifest of the store at `store` lives: beside it, `<data dir>/store.manifest`.
pub(crate) fn path_for(store: &Path) -> PathBuf {
    let mut name = store.file_name().unwrap_or_default().to_os_string();
    name.push(".manifest");
    store.with_file_name(name)
}

impl Manifest {
    /// The manifest after appending `entry`.
    pub(crate) fn push(&mut self, entry: &[u8]) {
        self.chain = chain_step(&self.chain, entry);
        self.entries += 1;
    }

    /// The bytes of the manifest.
    pub(crate) fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(53 + 32 * self.proofs.len() + 32);
        out.extend_from_slice(MAGIC);
        out.push(VERSION);
        out.extend_from_slice(&self.entries.to_be_bytes());
        out.extend_from_slice(&self.chain);
        out.extend_from_slice(&(self.proofs.len() as u32).to_be_bytes());
        for p in &self.proofs {
            out.extend_from_slice(p);
        }
        let sum: [u8; 32] = Sha256::digest(&out).into();
        out.extend_from_slice(&sum);
        out
    }

    /// Reads manifest bytes; an error says what is wrong with them.
    pub(crate) fn decode(bytes: &[u8]) -> Result<Manifest, String> {
        if bytes.len() < 53 + 32 {
            return Err(format!("the manifest is {} bytes, too short", bytes.len()));
        }
        let (body, sum) = bytes.split_at(bytes.len() - 32);
        if Sha256::digest(body).as_slice() != sum {
            return Err("the manifest's checksum does not match".into());
        }
        if &body[..8] != MAGIC {
            return Err("the manifest's magic is wrong".into());
        }
        if body[8] != VERSION {
            return Err(format!(
                "the manifest has version {}, this build reads {VERSION}",
                body[8]
            ));
        }
        let entries = u64::from_be_bytes(body[9..17].try_into().map_err(|_| "short")?);
        let chain: [u8; 32] = body[17..49].try_into().map_err(|_| "short")?;
        let count = u32::from_be_bytes(body[49..53].try_into().map_err(|_| "short")?) as usize;
        let rest = &body[53..];
        if count > MAX_PROOFS || rest.len() != count * 32 {
            return Err("the manifest's proof list has the wrong length".into());
        }
        let proofs = rest
            .chunks_exact(32)
            .map(|c| c.try_into().unwrap_or([0; 32]))
            .collect();
        Ok(Manifest {
            entries,
            chain,
            proofs,
        })
    }

    /// Reads the manifest at `path`: `Ok(None)` when there is none.
    pub(crate) fn load(path: &Path) -> Result<Option<Manifest>, LoadError> {
        match fs::read(path) {
            Ok(bytes) => Manifest::decode(&bytes)
                .map(Some)
                .map_err(LoadError::Damaged),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(LoadError::Io(e)),
        }
    }

    /// Writes the manifest atomically: a temporary file beside it, fsync, rename, fsync of
    /// the directory, so that a crash leaves either the old or the new manifest.
    pub(crate) fn save(&self, path: &Path) -> std::io::Result<()> {
        write_atomically(path, &self.encode())
    }
}

/// Writes `bytes` to `path` atomically: a temporary file beside it, fsync, rename, fsync of
/// the directory, so that a crash leaves either the old file or the new one.
pub(crate) fn write_atomically(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let mut tmp = path.as_os_str().to_os_string();
    tmp.push(".tmp");
    let tmp = PathBuf::from(tmp);
    let mut f = fs::File::create(&tmp)?;
    f.write_all(bytes)?;
    f.sync_all()?;
    drop(f);
    fs::rename(&tmp, path)?;
    if let Some(dir) = path.parent() {
        // Makes the rename itself durable (on Linux a directory can be opened and synced).
        if let Ok(d) = fs::File::open(dir) {
            d.sync_all()?;
        }
    }
    Ok(())
}

/// Why a manifest could not be read.
#[derive(Debug)]
pub(crate) enum LoadError {
    /// The file exists but is not a valid manifest.
    Damaged(String),
    /// The file could not be read.
    Io(std::io::Error),
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Manifest {
        let mut m = Manifest::default();
        m.push(b"first");
        m.push(b"second");
        m.proofs.insert([3; 32]);
        m.proofs.insert([1; 32]);
        m
    }

    #[test]
    fn a_manifest_reads_back_as_written() {
        let m = sample();
        assert_eq!(Manifest::decode(&m.encode()), Ok(m));
        assert_eq!(
            Manifest::decode(&Manifest::default().encode()),
            Ok(Manifest::default())
        );
    }

    #[test]
    fn the_chain_depends_on_every_entry_and_its_order() {
        let mut a = Manifest::default();
        a.push(b"x");
        a.push(b"y");
        let mut b = Manifest::default();
        b.push(b"y");
        b.push(b"x");
        assert_ne!(a.chain, b.chain);
        assert_eq!(a.entries, 2);
    }

    #[test]
    fn every_flipped_bit_and_every_truncation_is_refused() {
        let bytes = sample().encode();
        for i in 0..bytes.len() {
            for bit in 0..8 {
                let mut b = bytes.clone();
                b[i] ^= 1 << bit;
                assert!(Manifest::decode(&b).is_err(), "byte {i} bit {bit}");
            }
            assert!(Manifest::decode(&bytes[..i]).is_err(), "truncated to {i}");
        }
    }
}
