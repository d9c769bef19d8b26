//! The sync file of `coop sync export` / `coop sync import`: signed envelopes on a USB stick.
//!
//! ```text
//! file     = magic "COOPSYNC" | version u8 (= 1) | community id [32] | count u32 (BE)
//!            | entry{count} | check [32]
//! entry    = length u32 (BE, at most MAX_ENVELOPE_BYTES) | envelope (Envelope::encode)
//! check    = SHA-256 of every byte before it
//! ```
//! The container proves nothing: every envelope carries its own signature and goes through
//! the gate on import. The checksum only tells a damaged or truncated file from a good one
//! before anything is imported. Documented in docs/PROTOCOL.md §10.

use std::io::{BufReader, BufWriter, Read, Write};
use std::path::Path;

use anyhow::{bail, ensure, Context, Result};
use coop_model::envelope::MAX_ENVELOPE_BYTES;
use coop_model::{CommunityId, Envelope};
use sha2::{Digest, Sha256};

/// The bytes that open a sync file.
pub(crate) const MAGIC: &[u8; 8] = b"COOPSYNC";
/// The version this build writes and reads.
pub(crate) const VERSION: u8 = 1;
/// Most envelopes one file may carry.
pub(crate) const MAX_ENTRIES: u32 = 1 << 24;

/// Writes the envelopes of `community` to `w`.
pub(crate) fn write(w: impl Write, community: &CommunityId, envelopes: &[Envelope]) -> Result<()> {
    let mut w = HashingWriter {
        inner: w,
        hash: Sha256::new(),
    };
    ensure!(
        envelopes.len() <= MAX_ENTRIES as usize,
        "too many changes for one sync file ({})",
        envelopes.len()
    );
    w.write_all(MAGIC)?;
    w.write_all(&[VERSION])?;
    w.write_all(&community.0)?;
    w.write_all(&(envelopes.len() as u32).to_be_bytes())?;
    for env in envelopes {
        let bytes = env.encode();
        w.write_all(&(bytes.len() as u32).to_be_bytes())?;
        w.write_all(&bytes)?;
    }
    let check: [u8; 32] = w.hash.finalize().into();
    w.inner.write_all(&check)?;
    w.inner.flush()?;
    Ok(())
}

/// Reads a sync file: its community and its envelopes. Sizes are checked before anything
/// is allocated, and the checksum before anything is returned.
pub(crate) fn read(r: impl Read) -> Result<(CommunityId, Vec<Envelope>)> {
    let mut r = HashingReader {
        inner: r,
        hash: Sha256::new(),
    };
    let mut magic = [0u8; 8];
    r.exact(&mut magic)
        .context("not a coop sync file (too short)")?;
    ensure!(&magic == MAGIC, "not a coop sync file (bad magic bytes)");
    let mut version = [0u8; 1];
    r.exact(&mut version)?;
    ensure!(
        version[0] == VERSION,
        "sync file version {} is not supported (this coop reads version {VERSION})",
        version[0]
    );
    let mut community = [0u8; 32];
    r.exact(&mut community)?;
    let mut count = [0u8; 4];
    r.exact(&mut count)?;
    let count = u32::from_be_bytes(count);
    ensure!(
        count <= MAX_ENTRIES,
        "sync file claims {count} changes, at most {MAX_ENTRIES}"
    );
    let mut envelopes = Vec::with_capacity(count.min(4096) as usize);
    for i in 0..count {
        let mut len = [0u8; 4];
        r.exact(&mut len)?;
        let len = u32::from_be_bytes(len) as usize;
        ensure!(
            len <= MAX_ENVELOPE_BYTES,
            "sync file entry {i} is {len} bytes, larger than any envelope ({MAX_ENVELOPE_BYTES})"
        );
        let mut bytes = vec![0u8; len];
        r.exact(&mut bytes)?;
        match Envelope::decode(&bytes) {
            Ok(env) => envelopes.push(env),
            Err(rej) => bail!("sync file entry {i} is not an envelope: {rej}"),
        }
    }
    let computed: [u8; 32] = r.hash.finalize().into();
    let mut check = [0u8; 32];
    r.inner
        .read_exact(&mut check)
        .context("sync file is truncated (checksum missing)")?;
    ensure!(
        check == computed,
        "sync file is damaged (checksum mismatch); nothing was imported"
    );
    let mut rest = [0u8; 1];
    ensure!(
        r.inner.read(&mut rest)? == 0,
        "sync file has trailing bytes after its checksum"
    );
    Ok((CommunityId(community), envelopes))
}

/// Writes a sync file atomically: a temp file beside the target, synced, then renamed.
pub(crate) fn export(path: &Path, community: &CommunityId, envelopes: &[Envelope]) -> Result<()> {
    let parent = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    let tmp = tempfile::NamedTempFile::new_in(parent)
        .with_context(|| format!("cannot write in {}", parent.display()))?;
    write(BufWriter::new(tmp.as_file()), community, envelopes)?;
    tmp.as_file().sync_all()?;
    tmp.persist(path)
        .with_context(|| format!("cannot write {}", path.display()))?;
    Ok(())
}

/// Reads the sync file at `path`.
pub(crate) fn import(path: &Path) -> Result<(CommunityId, Vec<Envelope>)> {
    let f = std::fs::File::open(path).with_context(|| format!("cannot read {}", path.display()))?;
    read(BufReader::new(f)).with_context(|| path.display().to_string())
}

struct HashingWriter<W> {
    inner: W,
    hash: Sha256,
}

impl<W: Write> Write for HashingWriter<W> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.hash.update(&buf[..n]);
        Ok(n)
    }
    fn flush(&mut self) -> std::io::Result<()> {
        self.inner.flush()
    }
}

struct HashingReader<R> {
    inner: R,
    hash: Sha256,
}

impl<R: Read> HashingReader<R> {
    fn exact(&mut self, buf: &mut [u8]) -> Result<()> {
        self.inner
            .read_exact(buf)
            .context("sync file is truncated")?;
        self.hash.update(&*buf);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use coop_model::{DeviceKey, DocId};

    fn envelopes() -> Vec<Envelope> {
        let key = DeviceKey::from_seed([3; 32]);
        (0u8..3)
            .map(|i| {
                Envelope::sign(
                    CommunityId([1; 32]),
                    DocId([2; 32]),
                    &key,
                    &[i; 32],
                    vec![i; 20 + i as usize],
                )
            })
            .collect()
    }

    #[test]
    fn files_round_trip() {
        let mut buf = Vec::new();
        write(&mut buf, &CommunityId([1; 32]), &envelopes()).unwrap();
        let (community, back) = read(buf.as_slice()).unwrap();
        assert_eq!(community, CommunityId([1; 32]));
        assert_eq!(back, envelopes());

        let mut empty = Vec::new();
        write(&mut empty, &CommunityId([5; 32]), &[]).unwrap();
        assert_eq!(empty.len(), 8 + 1 + 32 + 4 + 32);
        assert_eq!(read(empty.as_slice()).unwrap().1, vec![]);
    }

    #[test]
    fn damaged_files_are_refused_whole() {
        let mut good = Vec::new();
        write(&mut good, &CommunityId([1; 32]), &envelopes()).unwrap();
        let err = |bytes: &[u8]| format!("{:#}", read(bytes).unwrap_err());

        assert!(err(&good[..good.len() - 1]).contains("truncated"));
        assert!(err(&good[..30]).contains("truncated"));
        assert!(err(b"PK\x03\x04 not ours").contains("not a coop sync file"));
        let mut flipped = good.clone();
        flipped[60] ^= 1;
        assert!(err(&flipped).contains("damaged"));
        let mut v2 = good.clone();
        v2[8] = 2;
        assert!(err(&v2).contains("version 2"));
        let mut longer = good.clone();
        longer.push(0);
        assert!(err(&longer).contains("trailing"));
        let mut huge = good[..45].to_vec();
        huge.extend_from_slice(&u32::MAX.to_be_bytes());
        assert!(err(&huge).contains("larger than any envelope"));
    }
}
