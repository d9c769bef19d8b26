//! The decoded-log cache codec: what the gate's decoding of each change of a node's own log
//! gave — its id, device, sequence number, dependencies, time, op counters and record — so
//! that a node reopening a long log need not parse every Automerge change again. Pure:
//! bytes in, bytes out; the node decides where the bytes live.
//!
//! A cache is only ever a shortcut, and it is checked entry by entry against the log it is
//! used with: an entry is used only when the change bytes the log holds at its position
//! hash to the entry's id (an Automerge change's id is the SHA-256 of its chunk), and the
//! envelope is of this community's ledger. From the first entry that does not match (a
//! log the cache was not written from, an entry missing or moved), the rest of the log goes
//! through the gate as without a cache. The record is kept as the layout fields the change
//! carried and read back through the same layout decoder the gate uses
//! (`Record::from_fields`), so a cached record is the record the change decodes to. The
//! whole file is covered by a SHA-256 checksum: damaged or truncated bytes are refused
//! before anything is used.
//!
//! Layout (integers big-endian; `uleb` is LEB128, `zz` zigzag LEB128):
//!
//! ```text
//! 0       8     magic "COOPLOGD"
//! 8       1     version = 1
//! 9       8     entries M the cache describes (the ledger's first M, in ledger order)
//! 17      4     devices D
//! 21      32*D  the devices, by index
//! ..      8     payload length P
//! ..      P     M entries: id (32), device index (uleb), seq (uleb), time (zz),
//!               first op counter (uleb), ops (uleb), dependency count (uleb) and each
//!               dependency as the distance back to its entry (uleb), the record kind
//!               (uleb length, UTF-8), field count (uleb), each field: name (uleb
//!               length, UTF-8), type (0 text, 1 integer, 2 bytes), value (text and
//!               bytes: uleb length then the bytes; integer: zz)
//! ..      32    SHA-256 of every byte before it
//! ```

use std::collections::BTreeMap;
use std::num::NonZeroU64;

use sha2::{Digest, Sha256};

use crate::envelope::Envelope;
use crate::gate::Verified;
use crate::ids::{CommunityId, DeviceId, DocId, RecordId};
use crate::record::layout::Field;
use crate::record::Record;

const MAGIC: &[u8; 8] = b"COOPLOGD";
const VERSION: u8 = 1;
/// Magic, version, entry count, device count.
const FIXED: usize = 21;

/// Why a decoded-log cache was not used (from its first bytes on, or from one entry on).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum LogCacheError {
    /// Fewer bytes than the header says.
    #[error("the decoded-log cache is {0} bytes, too short")]
    Short(usize),
    /// The checksum does not match the bytes.
    #[error("the decoded-log cache's checksum does not match")]
    Checksum,
    /// Not a cache at all.
    #[error("the decoded-log cache's magic is wrong")]
    Magic,
    /// Another format version.
    #[error("the decoded-log cache has format version {0}, this build reads {VERSION}")]
    Version(u8),
    /// The payload's length disagrees with the file's.
    #[error("the decoded-log cache's payload length does not match its size")]
    Length,
    /// An entry does not decode.
    #[error("the decoded-log cache's entry {0} does not decode: {1}")]
    Entry(usize, String),
    /// The log's entry is not the change the cache describes at that place.
    #[error("the log's entry at {0} is not the change the decoded-log cache describes there")]
    Mismatch(usize),
}

/// One entry of the cache as the ledger holds it, for [`encode`].
pub(crate) struct Source<'a> {
    pub(crate) id: RecordId,
    pub(crate) dev: u32,
    pub(crate) seq: u64,
    pub(crate) time: i64,
    pub(crate) start_op: u64,
    pub(crate) max_op: u64,
    /// Dependencies as indices of earlier entries.
    pub(crate) deps: &'a [u32],
    pub(crate) record: &'a Record,
}

/// The cache bytes of `entries` (the ledger's, in its order; entry `i`'s dependencies are
/// earlier entries), whose device indices name `devices`.
pub(crate) fn encode<'a>(
    devices: &[DeviceId],
    count: usize,
    entries: impl Iterator<Item = Source<'a>>,
) -> Vec<u8> {
    let mut payload = Vec::with_capacity(count * 160);
    for (i, e) in entries.enumerate() {
        payload.extend_from_slice(&e.id.0);
        uleb(&mut payload, u64::from(e.dev));
        uleb(&mut payload, e.seq);
        uleb(&mut payload, zigzag(e.time));
        uleb(&mut payload, e.start_op);
        uleb(&mut payload, e.max_op + 1 - e.start_op);
        uleb(&mut payload, e.deps.len() as u64);
        for &d in e.deps {
            uleb(&mut payload, (i as u64).saturating_sub(u64::from(d)));
        }
        let fields = e.record.fields();
        text(&mut payload, e.record.kind().as_bytes());
        uleb(&mut payload, fields.len() as u64);
        for (name, value) in fields {
            text(&mut payload, name.as_bytes());
            match value {
                Field::Str(s) => {
                    payload.push(0);
                    text(&mut payload, s.as_bytes());
                }
                Field::Int(n) => {
                    payload.push(1);
                    uleb(&mut payload, zigzag(n));
                }
                Field::Bytes(b) => {
                    payload.push(2);
                    text(&mut payload, &b);
                }
            }
        }
    }
    let mut out = Vec::with_capacity(FIXED + 32 * devices.len() + 8 + payload.len() + 32);
    out.extend_from_slice(MAGIC);
    out.push(VERSION);
    out.extend_from_slice(&(count as u64).to_be_bytes());
    out.extend_from_slice(&(devices.len() as u32).to_be_bytes());
    for d in devices {
        out.extend_from_slice(&d.0);
    }
    out.extend_from_slice(&(payload.len() as u64).to_be_bytes());
    out.extend_from_slice(&payload);
    drop(payload);
    let sum: [u8; 32] = Sha256::digest(&out).into();
    out.extend_from_slice(&sum);
    out
}

/// A cache checked against its checksum, read entry by entry as the log it describes is
/// replayed ([`LogCache::next`]).
#[derive(Debug)]
pub struct LogCache {
    community: CommunityId,
    doc: DocId,
    bytes: Vec<u8>,
    /// Where the next entry starts in `bytes`.
    at: usize,
    /// Where the payload ends.
    end: usize,
    devices: Vec<DeviceId>,
    /// The ids of the entries read so far (dependencies name them by distance).
    ids: Vec<RecordId>,
    count: usize,
}

impl LogCache {
    /// Checks cache bytes (checksum, version, lengths) for replaying a log of
    /// `community`'s ledger; the entries are checked one by one as they are used.
    pub fn open(bytes: Vec<u8>, community: CommunityId) -> Result<LogCache, LogCacheError> {
        if bytes.len() < FIXED + 8 + 32 {
            return Err(LogCacheError::Short(bytes.len()));
        }
        let body = bytes.len() - 32;
        if Sha256::digest(&bytes[..body]).as_slice() != &bytes[body..] {
            return Err(LogCacheError::Checksum);
        }
        if &bytes[..8] != MAGIC {
            return Err(LogCacheError::Magic);
        }
        if bytes[8] != VERSION {
            return Err(LogCacheError::Version(bytes[8]));
        }
        let u64_at = |at: usize| {
            let mut a = [0; 8];
            a.copy_from_slice(&bytes[at..at + 8]);
            u64::from_be_bytes(a)
        };
        let count = usize::try_from(u64_at(9)).map_err(|_| LogCacheError::Length)?;
        let mut d = [0; 4];
        d.copy_from_slice(&bytes[17..21]);
        let n_devices = u32::from_be_bytes(d) as usize;
        let at = n_devices
            .checked_mul(32)
            .and_then(|n| n.checked_add(FIXED))
            .filter(|&at| at + 8 <= body)
            .ok_or(LogCacheError::Length)?;
        let devices = bytes[FIXED..at]
            .chunks_exact(32)
            .map(|c| {
                let mut id = [0; 32];
                id.copy_from_slice(c);
                DeviceId(id)
            })
            .collect();
        let len = u64_at(at);
        if len != (body - at - 8) as u64 {
            return Err(LogCacheError::Length);
        }
        Ok(LogCache {
            community,
            doc: DocId::ledger(&community),
            bytes,
            at: at + 8,
            end: body,
            devices,
            ids: Vec::with_capacity(count),
            count,
        })
    }

    /// Entries the cache describes.
    pub fn len(&self) -> usize {
        self.count
    }

    /// Whether it describes none.
    pub fn is_empty(&self) -> bool {
        self.count == 0
    }

    /// Entries used so far.
    pub fn used(&self) -> usize {
        self.ids.len()
    }

    /// The next entry's decoding, for `envelope`, the log's entry at this place: used only
    /// when the envelope is of this community's ledger and its change hashes to the entry's
    /// id. An error (the cache is spent, or describes another change) gives the envelope
    /// back: it and every later entry go through the gate.
    #[allow(clippy::result_large_err)]
    pub fn next(&mut self, envelope: Envelope) -> Result<Verified, (Envelope, LogCacheError)> {
        let i = self.ids.len();
        if i >= self.count {
            return Err((envelope, LogCacheError::Mismatch(i)));
        }
        let decoded = match self.entry() {
            Ok(d) => d,
            Err(why) => {
                self.count = i;
                return Err((envelope, LogCacheError::Entry(i, why)));
            }
        };
        if envelope.community != self.community
            || envelope.doc != self.doc
            || change_hash(&envelope.change) != Some(decoded.id)
        {
            self.count = i;
            return Err((envelope, LogCacheError::Mismatch(i)));
        }
        self.ids.push(decoded.id);
        Ok(Verified {
            envelope,
            id: decoded.id,
            device: decoded.device,
            seq: decoded.seq,
            deps: decoded.deps,
            time: decoded.time,
            record: decoded.record,
            change: None,
            op_range: Some(decoded.ops),
        })
    }

    /// Reads the next entry.
    fn entry(&mut self) -> Result<Entry, String> {
        let mut r = Reader {
            bytes: &self.bytes[..self.end],
            at: self.at,
        };
        let id = RecordId(r.array()?);
        let device = *usize::try_from(r.uleb()?)
            .ok()
            .and_then(|d| self.devices.get(d))
            .ok_or("a device index out of range")?;
        let seq = r.uleb()?;
        let time = unzigzag(r.uleb()?);
        let start_op = NonZeroU64::new(r.uleb()?).ok_or("a first op counter of 0")?;
        let ops = r.uleb()?;
        let max_op = (start_op.get() - 1)
            .checked_add(ops)
            .filter(|_| ops > 0)
            .ok_or("an empty or overflowing op range")?;
        let n_deps = r.uleb()?;
        let mut deps = Vec::with_capacity(n_deps.min(64) as usize);
        let i = self.ids.len();
        for _ in 0..n_deps {
            let back = usize::try_from(r.uleb()?).map_err(|_| "a dependency out of range")?;
            let dep = i
                .checked_sub(back)
                .and_then(|d| self.ids.get(d))
                .ok_or("a dependency out of range")?;
            deps.push(*dep);
        }
        let kind = r.text()?.to_string();
        let n_fields = r.uleb()?;
        let mut fields = BTreeMap::new();
        for _ in 0..n_fields {
            let name = r.text()?.to_string();
            let value = match r.byte()? {
                0 => Field::Str(r.text()?.to_string()),
                1 => Field::Int(unzigzag(r.uleb()?)),
                2 => Field::Bytes(r.bytes()?.to_vec()),
                t => return Err(format!("field type {t}")),
            };
            fields.insert(name, value);
        }
        let record = Record::from_fields(&kind, &fields).map_err(|e| e.to_string())?;
        self.at = r.at;
        Ok(Entry {
            id,
            device,
            seq,
            time,
            ops: (start_op, max_op),
            deps,
            record,
        })
    }
}

/// One entry read back.
struct Entry {
    id: RecordId,
    device: DeviceId,
    seq: u64,
    time: i64,
    ops: (NonZeroU64, u64),
    deps: Vec<RecordId>,
    record: Record,
}

/// The id of an Automerge change chunk — the SHA-256 of its type, length and body — when
/// `change` is exactly one change chunk (as every change the gate accepted is).
fn change_hash(change: &[u8]) -> Option<RecordId> {
    let rest = change.get(8..)?;
    if rest.first() != Some(&1) {
        return None;
    }
    let mut r = Reader { bytes: rest, at: 1 };
    let len = usize::try_from(r.uleb().ok()?).ok()?;
    if r.at.checked_add(len) != Some(rest.len()) {
        return None;
    }
    Some(RecordId(Sha256::digest(rest).into()))
}

struct Reader<'a> {
    bytes: &'a [u8],
    at: usize,
}

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], String> {
        let end = self
            .at
            .checked_add(n)
            .filter(|&e| e <= self.bytes.len())
            .ok_or("it ends early")?;
        let out = &self.bytes[self.at..end];
        self.at = end;
        Ok(out)
    }
    fn byte(&mut self) -> Result<u8, String> {
        Ok(self.take(1)?[0])
    }
    fn array(&mut self) -> Result<[u8; 32], String> {
        let mut a = [0; 32];
        a.copy_from_slice(self.take(32)?);
        Ok(a)
    }
    fn uleb(&mut self) -> Result<u64, String> {
        let mut v = 0u64;
        for shift in (0..64).step_by(7) {
            let b = self.byte()?;
            v |= u64::from(b & 0x7f) << shift;
            if b & 0x80 == 0 {
                return Ok(v);
            }
        }
        Err("a number longer than 64 bits".into())
    }
    fn bytes(&mut self) -> Result<&'a [u8], String> {
        let n = usize::try_from(self.uleb()?).map_err(|_| "a length out of range")?;
        self.take(n)
    }
    fn text(&mut self) -> Result<&'a str, String> {
        std::str::from_utf8(self.bytes()?).map_err(|_| "text that is not UTF-8".to_string())
    }
}

fn uleb(out: &mut Vec<u8>, mut v: u64) {
    loop {
        let b = (v & 0x7f) as u8;
        v >>= 7;
        if v == 0 {
            out.push(b);
            return;
        }
        out.push(b | 0x80);
    }
}

fn text(out: &mut Vec<u8>, b: &[u8]) {
    uleb(out, b.len() as u64);
    out.extend_from_slice(b);
}

fn zigzag(v: i64) -> u64 {
    ((v << 1) ^ (v >> 63)) as u64
}

fn unzigzag(v: u64) -> i64 {
    ((v >> 1) as i64) ^ -((v & 1) as i64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_round_trip_through_their_encodings() {
        for v in [0i64, 1, -1, 63, -64, 1 << 40, i64::MAX, i64::MIN] {
            let mut out = Vec::new();
            uleb(&mut out, zigzag(v));
            let mut r = Reader { bytes: &out, at: 0 };
            assert_eq!(unzigzag(r.uleb().unwrap()), v);
            assert_eq!(r.at, out.len());
        }
        let mut r = Reader {
            bytes: &[0xff; 11],
            at: 0,
        };
        assert!(r.uleb().is_err());
    }

    #[test]
    fn damaged_truncated_or_foreign_bytes_are_refused_with_a_reason() {
        let community = CommunityId([1; 32]);
        let bytes = encode(&[DeviceId([2; 32])], 0, std::iter::empty());
        assert!(LogCache::open(bytes.clone(), community).is_ok());
        for cut in [0, 10, FIXED, bytes.len() - 1] {
            assert!(LogCache::open(bytes[..cut].to_vec(), community).is_err());
        }
        let mut flipped = bytes.clone();
        flipped[FIXED + 3] ^= 1;
        assert_eq!(
            LogCache::open(flipped, community).err(),
            Some(LogCacheError::Checksum)
        );
        let mut version = bytes[..bytes.len() - 32].to_vec();
        version[8] = 9;
        let sum: [u8; 32] = Sha256::digest(&version).into();
        version.extend_from_slice(&sum);
        assert_eq!(
            LogCache::open(version, community).err(),
            Some(LogCacheError::Version(9))
        );
    }
}
