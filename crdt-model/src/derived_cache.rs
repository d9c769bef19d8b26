//! The derived-state cache codec: the fold's result (the state and the indices incremental
//! derivation goes on from) as bytes, so that a node reopening a long log need not fold it
//! again. Pure: bytes in, bytes out; the node decides where the bytes live.
//!
//! A cache is only ever a shortcut. It names what it was derived from twice over: the
//! caller's key (the node's: the log entries it covers and the manifest's hash chain after
//! them) and the ledger's own digest of the entries it folded — each entry's change hash and
//! whether it was excluded, in ledger order — and the devices proven forked. The ledger
//! installs a cache only when that digest and those forks are exactly its own over the same
//! first entries ([`crate::Ledger::use_derived_cache`]); entries accepted since are then
//! folded on top by the same incremental path a running node takes, or everything is
//! derived from scratch when they cannot be. Anything else — another log, another version,
//! damaged or truncated bytes — is refused with a [`CacheError`] naming why.
//!
//! Layout (integers big-endian):
//!
//! ```text
//! 0       8     magic "COOPDRVD"
//! 8       1     version = 1
//! 9       4     derivation version (DERIVATION_VERSION: bumped whenever a rule changes)
//! 13      8     the caller's key: log entries N it covers
//! 21      32    the caller's key: the chain after N entries
//! 53      32    the ledger's digest of the entries folded (change hash, excluded)
//! 85      8     payload length P
//! 93      P     the fold's result, MessagePack (rmp-serde, fields named)
//! 93+P    32    SHA-256 of every byte before it
//! ```

use sha2::{Digest, Sha256};

use crate::fold::{Derived, Fold};
use crate::ids::RecordId;
use crate::state::State;

const MAGIC: &[u8; 8] = b"COOPDRVD";
const VERSION: u8 = 1;
const HEADER: usize = 93;

/// The version of the derivation rules a cache was folded with. A cache folded by other
/// rules is stale even over the same log: bump this whenever derivation can give another
/// answer for the same changes (a rule, a refusal's wording, a field of the state or the
/// fold).
pub const DERIVATION_VERSION: u32 = 1;

/// What a cache says it was derived from, in the caller's terms (the node's log).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CacheKey {
    /// Log entries the cache covers.
    pub entries: u64,
    /// The log's hash chain after those entries.
    pub chain: [u8; 32],
}

/// Why a cache was not written or not used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum CacheError {
    /// Fewer bytes than a cache can be.
    #[error("the derived-state cache is {0} bytes, too short")]
    Short(usize),
    /// The checksum does not match the bytes.
    #[error("the derived-state cache's checksum does not match")]
    Checksum,
    /// Not a cache at all.
    #[error("the derived-state cache's magic is wrong")]
    Magic,
    /// Another format version.
    #[error("the derived-state cache has format version {0}, this build reads {VERSION}")]
    Version(u8),
    /// Folded by other derivation rules.
    #[error("the derived-state cache was folded by derivation version {0}, this build has {DERIVATION_VERSION}")]
    Rules(u32),
    /// The payload's length disagrees with the file's.
    #[error("the derived-state cache's payload length does not match its size")]
    Length,
    /// The payload does not decode (or the state did not encode).
    #[error("the derived-state cache's payload: {0}")]
    Payload(String),
    /// Taken from another log or another ledger than the one asking.
    #[error("the derived-state cache is stale: {0}")]
    Stale(&'static str),
}

/// What the payload holds: the fold's result without its epoch (a ledger's private count).
#[derive(serde::Serialize, serde::Deserialize)]
struct Payload {
    state: State,
    fold: Fold,
    last_key: Option<(u32, RecordId)>,
    folded: usize,
}

/// A cache read back and checked against its checksum, not yet against a ledger: its key,
/// the ledger digest it was folded over, and the fold. Decoding takes time (the state of a
/// long log is large), so a node decodes it on a thread of its own while it replays the
/// log, then hands it to [`crate::Ledger::use_derived_cache`].
#[derive(Debug)]
pub struct Decoded {
    pub(crate) key: CacheKey,
    pub(crate) digest: [u8; 32],
    pub(crate) derived: Derived,
}

impl Decoded {
    /// The key the cache names.
    pub fn key(&self) -> CacheKey {
        self.key
    }
}

/// The ledger's digest of the entries a fold covers: each entry's change hash and whether
/// it is excluded, in ledger order.
pub(crate) fn ledger_digest<'a>(entries: impl Iterator<Item = (&'a RecordId, bool)>) -> [u8; 32] {
    let mut h = Sha256::new();
    for (id, excluded) in entries {
        h.update(id.0);
        h.update([u8::from(excluded)]);
    }
    h.finalize().into()
}

/// The cache bytes of `derived`, folded over entries whose [`ledger_digest`] is `digest`.
pub(crate) fn encode(
    key: CacheKey,
    digest: [u8; 32],
    derived: &Derived,
) -> Result<Vec<u8>, CacheError> {
    // The payload borrows nothing: serializing a clone would double the state in memory.
    #[derive(serde::Serialize)]
    struct PayloadRef<'a> {
        state: &'a State,
        fold: &'a Fold,
        last_key: Option<(u32, RecordId)>,
        folded: usize,
    }
    let payload = rmp_serde::to_vec_named(&PayloadRef {
        state: &derived.state,
        fold: &derived.fold,
        last_key: derived.last_key,
        folded: derived.folded,
    })
    .map_err(|e| CacheError::Payload(e.to_string()))?;
    let mut out = Vec::with_capacity(HEADER + payload.len() + 32);
    out.extend_from_slice(MAGIC);
    out.push(VERSION);
    out.extend_from_slice(&DERIVATION_VERSION.to_be_bytes());
    out.extend_from_slice(&key.entries.to_be_bytes());
    out.extend_from_slice(&key.chain);
    out.extend_from_slice(&digest);
    out.extend_from_slice(&(payload.len() as u64).to_be_bytes());
    out.extend_from_slice(&payload);
    drop(payload);
    let sum: [u8; 32] = Sha256::digest(&out).into();
    out.extend_from_slice(&sum);
    Ok(out)
}

/// The key a cache names, from its header alone (not checked against the checksum:
/// [`decode`] does that). The caller learns which log entries to compare before reading
/// the rest.
pub fn read_key(bytes: &[u8]) -> Result<CacheKey, CacheError> {
    header(bytes).map(|(key, _, _)| key)
}

fn header(bytes: &[u8]) -> Result<(CacheKey, [u8; 32], u64), CacheError> {
    if bytes.len() < HEADER {
        return Err(CacheError::Short(bytes.len()));
    }
    if &bytes[..8] != MAGIC {
        return Err(CacheError::Magic);
    }
    if bytes[8] != VERSION {
        return Err(CacheError::Version(bytes[8]));
    }
    let arr = |at: usize| -> [u8; 32] {
        let mut a = [0; 32];
        a.copy_from_slice(&bytes[at..at + 32]);
        a
    };
    let u64_at = |at: usize| {
        let mut a = [0; 8];
        a.copy_from_slice(&bytes[at..at + 8]);
        u64::from_be_bytes(a)
    };
    let mut rules = [0; 4];
    rules.copy_from_slice(&bytes[9..13]);
    let rules = u32::from_be_bytes(rules);
    if rules != DERIVATION_VERSION {
        return Err(CacheError::Rules(rules));
    }
    let key = CacheKey {
        entries: u64_at(13),
        chain: arr(21),
    };
    Ok((key, arr(53), u64_at(85)))
}

/// Reads cache bytes (checksum, versions, payload); the ledger that installs it checks the
/// rest.
pub fn decode(bytes: &[u8]) -> Result<Decoded, CacheError> {
    if bytes.len() < HEADER + 32 {
        return Err(CacheError::Short(bytes.len()));
    }
    let (body, sum) = bytes.split_at(bytes.len() - 32);
    if Sha256::digest(body).as_slice() != sum {
        return Err(CacheError::Checksum);
    }
    let (key, digest, len) = header(body)?;
    if len != (body.len() - HEADER) as u64 {
        return Err(CacheError::Length);
    }
    let p: Payload =
        rmp_serde::from_slice(&body[HEADER..]).map_err(|e| CacheError::Payload(e.to_string()))?;
    Ok(decoded(key, digest, p))
}

/// [`decode`], reading the cache from `r` (its start to its end) in two passes instead of
/// holding its bytes beside what they decode to: the first checks the checksum, the second
/// (after seeking back) decodes. Nothing is decoded before the checksum holds.
pub fn decode_read<R: std::io::Read + std::io::Seek>(mut r: R) -> Result<Decoded, CacheError> {
    use std::io::{Read, SeekFrom};
    let io = |e: std::io::Error| CacheError::Payload(e.to_string());
    let len = r.seek(SeekFrom::End(0)).map_err(io)?;
    let body = len
        .checked_sub(32)
        .filter(|&b| b >= HEADER as u64)
        .ok_or(CacheError::Short(len as usize))?;
    r.seek(SeekFrom::Start(0)).map_err(io)?;
    let mut h = Sha256::new();
    let mut head = [0u8; HEADER];
    r.read_exact(&mut head).map_err(io)?;
    h.update(head);
    let mut rest = (&mut r).take(body - HEADER as u64);
    let mut buf = vec![0u8; 1 << 16];
    loop {
        let n = rest.read(&mut buf).map_err(io)?;
        if n == 0 {
            break;
        }
        h.update(&buf[..n]);
    }
    drop(buf);
    let mut sum = [0u8; 32];
    r.read_exact(&mut sum).map_err(io)?;
    if h.finalize().as_slice() != sum {
        return Err(CacheError::Checksum);
    }
    let (key, digest, payload_len) = header(&head)?;
    if payload_len != body - HEADER as u64 {
        return Err(CacheError::Length);
    }
    r.seek(SeekFrom::Start(HEADER as u64)).map_err(io)?;
    let payload = std::io::BufReader::with_capacity(1 << 16, r.take(payload_len));
    let p: Payload =
        rmp_serde::from_read(payload).map_err(|e| CacheError::Payload(e.to_string()))?;
    Ok(decoded(key, digest, p))
}

fn decoded(key: CacheKey, digest: [u8; 32], p: Payload) -> Decoded {
    Decoded {
        key,
        digest,
        derived: Derived {
            state: p.state,
            fold: p.fold,
            last_key: p.last_key,
            folded: p.folded,
            // Set to the installing ledger's own when installed.
            epoch: 0,
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ids::CommunityId;

    fn sample() -> Derived {
        Derived {
            state: State::empty(CommunityId([3; 32])),
            fold: Fold::default(),
            last_key: Some((4, RecordId([5; 32]))),
            folded: 9,
            epoch: 0,
        }
    }

    const KEY: CacheKey = CacheKey {
        entries: 12,
        chain: [6; 32],
    };

    #[test]
    fn a_cache_reads_back_as_written() {
        let bytes = encode(KEY, [8; 32], &sample()).unwrap();
        assert_eq!(read_key(&bytes), Ok(KEY));
        let d = decode(&bytes).unwrap();
        assert_eq!((d.key, d.digest), (KEY, [8; 32]));
        assert_eq!(d.derived.state, sample().state);
        assert_eq!(
            (d.derived.last_key, d.derived.folded),
            (sample().last_key, 9)
        );
    }

    #[test]
    fn a_cache_read_in_two_passes_reads_as_one_in_memory() {
        let bytes = encode(KEY, [8; 32], &sample()).unwrap();
        let d = decode_read(std::io::Cursor::new(&bytes)).unwrap();
        assert_eq!((d.key, d.digest), (KEY, [8; 32]));
        assert_eq!(d.derived.state, sample().state);
        assert_eq!(d.derived.folded, 9);
    }

    #[test]
    fn damaged_truncated_or_foreign_bytes_are_refused_with_a_reason() {
        let bytes = encode(KEY, [8; 32], &sample()).unwrap();
        for cut in [0, 10, HEADER, bytes.len() - 1] {
            assert!(decode(&bytes[..cut]).is_err(), "cut at {cut}");
            assert!(decode_read(std::io::Cursor::new(&bytes[..cut])).is_err());
        }
        let mut flipped = bytes.clone();
        flipped[HEADER + 3] ^= 1;
        assert_eq!(decode(&flipped).err(), Some(CacheError::Checksum));
        assert_eq!(
            decode_read(std::io::Cursor::new(&flipped)).err(),
            Some(CacheError::Checksum)
        );
        let mut other = bytes.clone();
        other[0] = b'X';
        assert_eq!(read_key(&other), Err(CacheError::Magic));
        let mut rules = bytes[..bytes.len() - 32].to_vec();
        rules[12] ^= 1;
        let sum: [u8; 32] = Sha256::digest(&rules).into();
        rules.extend_from_slice(&sum);
        assert!(matches!(decode(&rules), Err(CacheError::Rules(_))));
        assert!(decode(b"COOPSNAP and then some other file").is_err());
    }

    #[test]
    fn the_ledger_digest_sees_order_and_exclusion() {
        let (a, b) = (RecordId([1; 32]), RecordId([2; 32]));
        let d = ledger_digest([(&a, false), (&b, false)].into_iter());
        assert_ne!(d, ledger_digest([(&b, false), (&a, false)].into_iter()));
        assert_ne!(d, ledger_digest([(&a, false), (&b, true)].into_iter()));
        assert_ne!(d, ledger_digest([(&a, false)].into_iter()));
    }
}
