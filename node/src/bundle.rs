//! The compact batch of catch-up sync `/coop/sync/2` (docs/PROTOCOL.md §11): the Automerge
//! changes of a batch as one Automerge bundle (columnar, the changes' dependencies on each
//! other as indices rather than hashes, per-column DEFLATE), beside the 64-byte signature of
//! each change in the bundle's order.
//!
//! The receiver turns a bundle back into one envelope per change and hands them to the gate
//! like any other: every change is still verified against its own signature before it
//! reaches the document. Before Automerge sees a byte, [`decode`] walks the bundle's layout
//! itself and refuses it when it is over [`BUNDLE_MAX_BYTES`], when its DEFLATE columns
//! would inflate past [`BUNDLE_MAX_INFLATED`] (each is inflated into a buffer that stops at
//! the cap), or when a column's run-length encoding claims more than
//! [`BUNDLE_MAX_COLUMN_ITEMS`] items: a small bundle can never make a node allocate much.

use std::collections::BTreeMap;
use std::io::Read;

use automerge::{Automerge, Bundle, Change, ChangeHash};
use coop_model::envelope::{MAX_DEPS, MAX_OPS};
use coop_model::{CommunityId, DeviceId, DocId, Envelope, RecordId, RejectReason, Rejection};
use sha2::{Digest, Sha256};

/// Most changes in one bundle.
pub const BUNDLE_MAX_CHANGES: usize = 5_000;
/// Largest bundle accepted, in bytes as received.
pub const BUNDLE_MAX_BYTES: usize = 8 * 1024 * 1024;
/// Most bytes a bundle's columns may inflate to, in all.
pub const BUNDLE_MAX_INFLATED: usize = 64 * 1024 * 1024;
/// Most items one column of a bundle may hold: an operation, a dependency or a change each
/// count one, so a full bundle of changes at their caps stays under it.
pub const BUNDLE_MAX_COLUMN_ITEMS: u64 = (BUNDLE_MAX_CHANGES * (MAX_OPS + MAX_DEPS + 2)) as u64;
/// Most columns in one column group of a bundle.
const MAX_COLUMNS: u64 = 64;
/// Bytes of one signature.
pub const SIGNATURE_BYTES: usize = 64;

/// A batch in its compact form.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Bundled {
    /// The Automerge bundle of the changes.
    pub bundle: Vec<u8>,
    /// The changes' signatures, 64 bytes each, in the bundle's order.
    pub signatures: Vec<u8>,
    /// For each device with a change in the bundle, its highest sequence number there.
    pub tops: Vec<(DeviceId, u64)>,
}

/// The batch `envelopes` (held in `doc`, in causal order) as a bundle, or `None` when
/// Automerge cannot bundle them (a change the document does not hold): the caller then
/// sends the envelopes as they are.
pub fn encode(doc: &Automerge, envelopes: &[Envelope]) -> Option<Bundled> {
    if envelopes.is_empty() || envelopes.len() > BUNDLE_MAX_CHANGES {
        return None;
    }
    let hashes: Vec<ChangeHash> = envelopes
        .iter()
        .map(|e| change_id(&e.change).map(|id| id.change_hash()))
        .collect::<Option<_>>()?;
    let bundle = doc.bundle(hashes.iter().copied()).ok()?;
    let bytes = bundle.bytes();
    if bytes.len() > BUNDLE_MAX_BYTES {
        return None;
    }
    // Automerge rebuilds each change from the bundle; the signatures hold only if it
    // rebuilds the very bytes that were signed. It does not always (the order of a change's
    // dependencies can differ), so check before sending: a batch that does not come back
    // identical goes out as plain envelopes.
    let back = Bundle::try_from(bytes).ok()?.to_changes().ok()?;
    if back.len() != hashes.len() || back.iter().zip(&hashes).any(|(c, h)| c.hash() != *h) {
        return None;
    }
    let mut signatures = Vec::with_capacity(envelopes.len() * SIGNATURE_BYTES);
    for e in envelopes {
        signatures.extend_from_slice(&e.signature);
    }
    let actors: Vec<Option<DeviceId>> = bundle
        .actors()
        .iter()
        .map(|a| Some(DeviceId(a.to_bytes().try_into().ok()?)))
        .collect();
    let mut tops: BTreeMap<DeviceId, u64> = BTreeMap::new();
    for c in bundle.iter_changes() {
        if let Some(Some(d)) = actors.get(c.actor) {
            let t = tops.entry(*d).or_insert(0);
            *t = (*t).max(c.seq);
        }
    }
    Some(Bundled {
        bundle: bytes.to_vec(),
        signatures,
        tops: tops.into_iter().collect(),
    })
}

/// The id (Automerge change hash), author device and sequence number of the uncompressed
/// change `bytes`, read from its chunk header without decoding its operations; `None` when
/// the bytes do not start like an uncompressed change chunk whose checksum matches.
///
/// Automerge hashes a chunk as SHA-256 of its type, length and body: everything after the
/// 4-byte magic and the 4-byte checksum (which is the hash's first four bytes). This is what
/// [`Envelope::record_id`] computes by parsing the whole change, at a fraction of the cost;
/// it answers the same for any change Automerge parses (checked by
/// `change_meta_matches_automerges_parse`), and is meant for changes already through the
/// gate or on their way to it (which parses them in full).
pub fn change_meta(bytes: &[u8]) -> Option<(RecordId, DeviceId, u64)> {
    let (id, body) = chunk(bytes)?;
    let mut r = Reader { bytes: body, at: 0 };
    let deps = usize::try_from(r.uleb()?).ok()?;
    r.take(deps.checked_mul(32)?)?;
    let actor_len = usize::try_from(r.uleb()?).ok()?;
    let device = DeviceId(r.take(actor_len)?.try_into().ok()?);
    let seq = r.uleb()?;
    Some((id, device, seq))
}

/// The id of the uncompressed change `bytes`, whatever its actor (see [`change_meta`]).
pub fn change_id(bytes: &[u8]) -> Option<RecordId> {
    chunk(bytes).map(|(id, _)| id)
}

/// The hash and body of an uncompressed change chunk whose checksum matches.
fn chunk(bytes: &[u8]) -> Option<(RecordId, &[u8])> {
    let mut r = Reader { bytes, at: 0 };
    if r.take(4)? != [0x85, 0x6f, 0x4a, 0x83] {
        return None;
    }
    let checksum = r.take(4)?;
    if r.take(1)? != [1] {
        return None;
    }
    let len = usize::try_from(r.uleb()?).ok()?;
    if len != bytes.len() - r.at {
        return None;
    }
    let hash: [u8; 32] = Sha256::digest(&bytes[8..]).into();
    if hash[..4] != *checksum {
        return None;
    }
    Some((RecordId::from(ChangeHash(hash)), &bytes[r.at..]))
}

fn refuse(reason: RejectReason, detail: impl Into<String>) -> Rejection {
    Rejection {
        id: None,
        device: None,
        member: None,
        reason,
        detail: detail.into(),
    }
}

/// The envelopes of a bundle received from a peer of `community`: one per change, each with
/// its signature, for the gate to verify. Refuses (as one rejection) a bundle over a cap,
/// malformed, or whose change count does not match its signatures.
pub fn decode(
    community: &CommunityId,
    bundle: &[u8],
    signatures: &[u8],
) -> Result<Vec<Envelope>, Rejection> {
    Ok(decode_parsed(community, bundle, signatures)?
        .into_iter()
        .map(|(e, _)| e)
        .collect())
}

/// As [`decode`], each envelope beside the change Automerge unbundled it from (its bytes are
/// the envelope's), for [`coop_model::Ledger::ingest_parsed`]: the gate then does not parse
/// each change again.
pub fn decode_parsed(
    community: &CommunityId,
    bundle: &[u8],
    signatures: &[u8],
) -> Result<Vec<(Envelope, Change)>, Rejection> {
    if bundle.len() > BUNDLE_MAX_BYTES {
        return Err(refuse(
            RejectReason::Oversize,
            format!(
                "bundle of {} bytes exceeds {BUNDLE_MAX_BYTES}",
                bundle.len()
            ),
        ));
    }
    if !signatures.len().is_multiple_of(SIGNATURE_BYTES) {
        return Err(refuse(
            RejectReason::Malformed,
            "bundle signatures are not 64 bytes each",
        ));
    }
    let n = signatures.len() / SIGNATURE_BYTES;
    if n > BUNDLE_MAX_CHANGES {
        return Err(refuse(
            RejectReason::Oversize,
            format!("bundle of {n} changes exceeds {BUNDLE_MAX_CHANGES}"),
        ));
    }
    check_layout(bundle)?;
    // Automerge's parser is not meant for hostile input: a panic is a malformed bundle.
    let changes = std::panic::catch_unwind(|| {
        let b = Bundle::try_from(bundle).ok()?;
        let metas: Vec<(u64, u64)> = b.iter_changes().map(|c| (c.start_op, c.max_op)).collect();
        if metas.len() != n
            || metas
                .iter()
                .any(|(s, m)| m.saturating_sub(*s) >= MAX_OPS as u64)
        {
            return Some(Err(()));
        }
        Some(b.to_changes().map_err(|_| ()))
    })
    .ok()
    .flatten()
    .ok_or_else(|| refuse(RejectReason::Malformed, "not an Automerge bundle"))?
    .map_err(|()| {
        refuse(
            RejectReason::Malformed,
            "bundle changes do not match their signatures or exceed the operation cap",
        )
    })?;
    if changes.len() != n {
        return Err(refuse(
            RejectReason::Malformed,
            "bundle changes do not match their signatures",
        ));
    }
    let doc = DocId::ledger(community);
    Ok(changes
        .into_iter()
        .zip(signatures.chunks_exact(SIGNATURE_BYTES))
        .map(|(c, sig)| {
            let envelope = Envelope {
                community: *community,
                doc,
                signature: sig.try_into().unwrap_or([0; SIGNATURE_BYTES]),
                change: c.raw_bytes().to_vec(),
            };
            (envelope, c)
        })
        .collect())
}

/// Walks a bundle's layout — chunk header, dependencies, actors, then the change columns
/// and the operation columns — inflating each DEFLATE column into a buffer that stops at
/// what is left of [`BUNDLE_MAX_INFLATED`], and counting each column's items without
/// decoding them. Refuses anything over a cap or cut short.
fn check_layout(bytes: &[u8]) -> Result<(), Rejection> {
    let bad = || refuse(RejectReason::Malformed, "not an Automerge bundle");
    let mut r = Reader { bytes, at: 0 };
    // Header: magic, checksum, chunk type, body length.
    if r.take(4).ok_or_else(bad)? != [0x85, 0x6f, 0x4a, 0x83] {
        return Err(bad());
    }
    r.take(5).ok_or_else(bad)?;
    let len = r.uleb().ok_or_else(bad)?;
    if len != (bytes.len() - r.at) as u64 {
        return Err(bad());
    }
    let deps = r.uleb().ok_or_else(bad)?;
    r.take(usize::try_from(deps.checked_mul(32).ok_or_else(bad)?).map_err(|_| bad())?)
        .ok_or_else(bad)?;
    let actors = r.uleb().ok_or_else(bad)?;
    if actors > BUNDLE_MAX_CHANGES as u64 {
        return Err(bad());
    }
    for _ in 0..actors {
        let l = r.uleb().ok_or_else(bad)?;
        r.take(usize::try_from(l).map_err(|_| bad())?)
            .ok_or_else(bad)?;
    }
    let mut budget = BUNDLE_MAX_INFLATED;
    for _group in 0..2 {
        let count = r.uleb().ok_or_else(bad)?;
        if count > MAX_COLUMNS {
            return Err(bad());
        }
        let mut specs = Vec::with_capacity(count as usize);
        for _ in 0..count {
            let spec = r.uleb().ok_or_else(bad)?;
            let len = r.uleb().ok_or_else(bad)?;
            specs.push((spec, usize::try_from(len).map_err(|_| bad())?));
        }
        for (spec, len) in specs {
            let data = r.take(len).ok_or_else(bad)?;
            let inflated;
            let data = if spec & 0b1000 != 0 {
                let mut out = Vec::new();
                flate2::read::DeflateDecoder::new(data)
                    .take(budget as u64 + 1)
                    .read_to_end(&mut out)
                    .map_err(|_| bad())?;
                if out.len() > budget {
                    return Err(refuse(
                        RejectReason::Oversize,
                        format!("bundle inflates beyond {BUNDLE_MAX_INFLATED} bytes"),
                    ));
                }
                budget -= out.len();
                inflated = out;
                inflated.as_slice()
            } else {
                data
            };
            let items = count_items(spec & 0b111, data).ok_or_else(bad)?;
            if items > BUNDLE_MAX_COLUMN_ITEMS {
                return Err(refuse(
                    RejectReason::Oversize,
                    format!("a bundle column claims more than {BUNDLE_MAX_COLUMN_ITEMS} items"),
                ));
            }
        }
    }
    if r.at != bytes.len() {
        return Err(bad());
    }
    Ok(())
}

/// The number of items a column of `kind` (Automerge's column type, the spec's low three
/// bits) holds, read from its run lengths without decoding its values; `None` when the
/// data is cut short. Raw value columns (type 7) count their bytes.
fn count_items(kind: u64, data: &[u8]) -> Option<u64> {
    let mut r = Reader { bytes: data, at: 0 };
    let mut items = 0u64;
    match kind {
        // Booleans: alternating run lengths.
        4 => {
            while r.at < data.len() {
                items = items.checked_add(r.uleb()?)?;
            }
        }
        7 => items = data.len() as u64,
        // Run-length encoded: a signed count n, then one value repeated n times (n > 0),
        // -n literal values (n < 0), or the length of a run of nulls (n = 0).
        _ => {
            while r.at < data.len() {
                let n = r.sleb()?;
                let (count, values) = match n {
                    0 => (r.uleb()?, 0),
                    n if n > 0 => (n as u64, 1),
                    n => (n.unsigned_abs(), n.unsigned_abs()),
                };
                items = items.checked_add(count)?;
                if items > BUNDLE_MAX_COLUMN_ITEMS {
                    return Some(items);
                }
                for _ in 0..values {
                    match kind {
                        // Strings: a length, then the bytes.
                        5 => {
                            let l = usize::try_from(r.uleb()?).ok()?;
                            r.take(l)?;
                        }
                        3 => {
                            r.sleb()?;
                        }
                        _ => {
                            r.uleb()?;
                        }
                    }
                }
            }
        }
    }
    Some(items)
}

/// A cursor over bytes that never reads past the end.
struct Reader<'a> {
    bytes: &'a [u8],
    at: usize,
}

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Option<&'a [u8]> {
        let end = self.at.checked_add(n)?;
        let s = self.bytes.get(self.at..end)?;
        self.at = end;
        Some(s)
    }

    fn uleb(&mut self) -> Option<u64> {
        let mut v = 0u64;
        for shift in (0..64).step_by(7) {
            let b = *self.take(1)?.first()?;
            v |= u64::from(b & 0x7f).checked_shl(shift)?;
            if b & 0x80 == 0 {
                return Some(v);
            }
        }
        None
    }

    fn sleb(&mut self) -> Option<i64> {
        let mut v = 0i64;
        let mut shift = 0u32;
        loop {
            let b = *self.take(1)?.first()?;
            if shift >= 64 {
                return None;
            }
            v |= i64::from(b & 0x7f) << shift;
            shift += 7;
            if b & 0x80 == 0 {
                if shift < 64 && b & 0x40 != 0 {
                    v |= -1i64 << shift;
                }
                return Some(v);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use automerge::transaction::Transactable;
    use automerge::{ActorId, AutomergeError, ROOT};

    /// A document written by two actors (one with a 32-byte id, as a device's, one with
    /// Automerge's 16-byte default), with merges so that changes have several dependencies.
    fn changes() -> Vec<automerge::Change> {
        let mut a = Automerge::new().with_actor(ActorId::from([7u8; 32].as_slice()));
        let mut b = Automerge::new();
        for i in 0..20i64 {
            a.transact::<_, _, AutomergeError>(|tx| {
                tx.put(ROOT, format!("a{i}"), i)?;
                Ok(())
            })
            .unwrap();
            b.transact::<_, _, AutomergeError>(|tx| {
                tx.put(ROOT, format!("b{i}"), "x".repeat(i as usize))?;
                Ok(())
            })
            .unwrap();
            if i % 5 == 0 {
                a.merge(&mut b).unwrap();
            }
        }
        a.get_changes(&[])
    }

    #[test]
    fn change_meta_matches_automerges_parse() {
        let all = changes();
        assert!(all.iter().any(|c| c.deps().len() > 1), "a merge change");
        let mut devices = 0;
        for c in &all {
            let bytes = c.raw_bytes();
            let parsed = automerge::Change::try_from(bytes).unwrap();
            assert_eq!(change_id(bytes), Some(RecordId::from(parsed.hash())));
            match change_meta(bytes) {
                Some((id, device, seq)) => {
                    devices += 1;
                    assert_eq!(id, RecordId::from(c.hash()));
                    assert_eq!(device.0.as_slice(), c.actor_id().to_bytes());
                    assert_eq!(seq, c.seq());
                }
                // Only the 16-byte actor is not a device.
                None => assert_eq!(c.actor_id().to_bytes().len(), 16),
            }
        }
        assert_eq!(devices, 20, "every change of the 32-byte actor");
    }

    #[test]
    fn change_meta_refuses_what_is_not_an_intact_change() {
        let all = changes();
        let good = all[3].raw_bytes().to_vec();
        assert!(change_meta(&good).is_some());
        // A flipped byte in the body: the checksum no longer matches.
        let mut body = good.clone();
        let last = body.len() - 1;
        body[last] ^= 1;
        assert_eq!(change_meta(&body), None);
        // A flipped checksum.
        let mut sum = good.clone();
        sum[5] ^= 1;
        assert_eq!(change_meta(&sum), None);
        // Cut short, wrong magic, a compressed-chunk type, nothing.
        assert_eq!(change_meta(&good[..good.len() - 1]), None);
        let mut magic = good.clone();
        magic[0] = 0;
        assert_eq!(change_meta(&magic), None);
        let mut kind = good.clone();
        kind[8] = 2;
        assert_eq!(change_meta(&kind), None);
        assert_eq!(change_meta(&[]), None);
    }
}
