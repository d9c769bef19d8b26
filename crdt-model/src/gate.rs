//! The stateless part of the gate (docs/PROTOCOL.md §5 rules 1, 2 and 4; docs/RULES.md R12): decode within caps, check the
//! signature against the actor id, and check the operations against the layout's write rules.
//!
//! Rule 5 (dependencies present) and equivocation are checked by [`crate::Ledger`]; rule 3
//! (causal authorization) is evaluated by derivation, because strong removal depends on
//! changes that may arrive later.

use crate::record;
use std::collections::BTreeMap;
use std::panic::{catch_unwind, AssertUnwindSafe};

use automerge::legacy::{Key, ObjectId, OpType};
use automerge::{Change, ObjType, ScalarValue};

use crate::envelope::{
    signing_message, Envelope, Refusal, RejectReason, Rejection, MAX_CHANGE_BYTES, MAX_DEPS,
    MAX_OPS,
};
use crate::identity::{usable_key, verify, verify_cert};
use crate::ids::{CommunityId, DeviceId, DocId, MemberId, RecordId};
use crate::record::layout::Field;
use crate::record::Record;
use crate::verify::{zip215_batch, SigItem};

/// A change that passed rules 1, 2 and 4.
#[derive(Debug, Clone)]
pub struct Verified {
    /// The envelope as received.
    pub envelope: Envelope,
    /// The change hash.
    pub id: RecordId,
    /// The signing device (= actor id).
    pub device: DeviceId,
    /// The device's sequence number of this change.
    pub seq: u64,
    /// Dependencies.
    pub deps: Vec<RecordId>,
    /// The author-claimed time (Unix seconds), signed with the change.
    pub time: i64,
    /// The record the change carries.
    pub record: Record,
    /// The decoded change, until the ledger hands it to the document (it is decoded again
    /// from `envelope` when the document is rebuilt): one copy of each change, not two.
    pub(crate) change: Option<Box<Change>>,
    /// The change's first and last op counters when `change` is not held (a change whose
    /// decoding comes from the decoded-log cache, `log_cache`).
    pub(crate) op_range: Option<(std::num::NonZeroU64, u64)>,
}

/// Byte offset of the chunk type in an Automerge chunk (after magic and checksum).
const CHUNK_TYPE_OFFSET: usize = 8;
const CHUNK_TYPE_CHANGE: u8 = 1;

/// Runs rules 1, 2 and 4 on one envelope. `check_signature` is false only for envelopes
/// read back from this node's own store, which were verified when they were first accepted;
/// it skips both the change signature and a certificate's identity signature.
pub fn verify_envelope(
    envelope: Envelope,
    community: &CommunityId,
    check_signature: bool,
) -> Result<Verified, Rejection> {
    let opened = open(envelope, None, community)?;
    if check_signature
        && !verify(
            &opened.device.0,
            &opened.message(community),
            &opened.signature(),
        )
    {
        return Err(opened.bad_signature());
    }
    finish(opened, community, check_signature)
}

/// [`verify_envelope`] for many envelopes, with one answer per envelope in their order.
/// The change signatures are checked together ([`crate::verify::zip215_batch`], under the
/// same rule and with the same answers as one at a time); `seed` draws the batch's random
/// coefficients and changes no answer.
pub fn verify_envelopes(
    envelopes: Vec<Envelope>,
    community: &CommunityId,
    check_signature: bool,
    seed: &[u8; 32],
) -> Vec<Result<Verified, Rejection>> {
    verify_arrivals(envelopes, community, check_signature, seed)
}

/// Something for the gate: an envelope, and perhaps the change its bytes were already
/// parsed into by whoever decoded it (a sync bundle's decoder does, [`Ledger::ingest_parsed`]).
///
/// [`Ledger::ingest_parsed`]: crate::Ledger::ingest_parsed
pub(crate) trait Arrival {
    /// The envelope, and the change parsed from it if there is one.
    fn into_parts(self) -> (Envelope, Option<Change>);
}

impl Arrival for Envelope {
    fn into_parts(self) -> (Envelope, Option<Change>) {
        (self, None)
    }
}

impl Arrival for (Envelope, Option<Change>) {
    fn into_parts(self) -> (Envelope, Option<Change>) {
        self
    }
}

/// [`verify_envelopes`] for envelopes that may come with their parsed changes. A parsed
/// change is used only when its bytes are exactly the envelope's (then parsing the
/// envelope would give the very same change); otherwise it is dropped and the envelope's
/// bytes are parsed, so the answers are always those of [`verify_envelopes`].
pub(crate) fn verify_arrivals<A: Arrival>(
    arrivals: Vec<A>,
    community: &CommunityId,
    check_signature: bool,
    seed: &[u8; 32],
) -> Vec<Result<Verified, Rejection>> {
    let opened: Vec<Result<Opened, Rejection>> = arrivals
        .into_iter()
        .map(|a| {
            let (envelope, parsed) = a.into_parts();
            open(envelope, parsed, community)
        })
        .collect();
    let mut good = vec![true; opened.len()];
    if check_signature {
        // Keys that may not sign fail before the batch (the rule of `identity::verify`).
        let signed: Vec<(usize, &Opened, Vec<u8>)> = opened
            .iter()
            .enumerate()
            .filter_map(|(i, o)| o.as_ref().ok().map(|o| (i, o)))
            .filter(|(i, o)| {
                let usable = usable_key(&o.device.0);
                good[*i] = usable;
                usable
            })
            .map(|(i, o)| (i, o, o.message(community)))
            .collect();
        let items: Vec<SigItem<'_>> = signed
            .iter()
            .map(|(_, o, msg)| SigItem {
                public: o.device.0,
                msg,
                sig: o.signature(),
            })
            .collect();
        let answers = zip215_batch(&items, seed);
        for ((i, ..), ok) in signed.iter().zip(answers) {
            good[*i] = ok;
        }
    }
    opened
        .into_iter()
        .zip(good)
        .map(|(o, good)| {
            let o = o?;
            if !good {
                return Err(o.bad_signature());
            }
            finish(o, community, check_signature)
        })
        .collect()
}

/// A change that passed the checks before its signature (rules 1 and 2, less the
/// signature): decoded within caps, byte-exact, its actor a 32-byte key.
struct Opened {
    envelope: Envelope,
    change: Change,
    id: RecordId,
    device: DeviceId,
}

impl Opened {
    /// The message the device signed.
    fn message(&self, community: &CommunityId) -> Vec<u8> {
        signing_message(community, &self.envelope.doc, &self.id.0)
    }
    fn signature(&self) -> [u8; 64] {
        self.envelope.signature
    }
    fn bad_signature(&self) -> Rejection {
        authored(
            self.id,
            Some(self.device),
            RejectReason::BadSignature,
            "signature does not verify for the change's actor".into(),
        )
    }
}

/// A refusal that names the change and its claimed author.
fn authored(
    id: RecordId,
    device: Option<DeviceId>,
    reason: RejectReason,
    detail: String,
) -> Rejection {
    Rejection {
        id: Some(id),
        device,
        member: None,
        reason,
        detail,
    }
}

/// The checks before the signature. `parsed` is the change the envelope's bytes were
/// already parsed into, if any: used only when its bytes are exactly the envelope's.
fn open(
    envelope: Envelope,
    parsed: Option<Change>,
    community: &CommunityId,
) -> Result<Opened, Rejection> {
    let reject = |reason, detail: String| Rejection::anonymous(reason, &detail);
    if envelope.community != *community || envelope.doc != DocId::ledger(community) {
        return Err(reject(
            RejectReason::WrongCommunity,
            format!("signed for community {}", envelope.community.short()),
        ));
    }
    let bytes = &envelope.change;
    if bytes.len() > MAX_CHANGE_BYTES {
        return Err(reject(
            RejectReason::Oversize,
            format!("change of {} bytes", bytes.len()),
        ));
    }
    match bytes.get(CHUNK_TYPE_OFFSET) {
        Some(&CHUNK_TYPE_CHANGE) => {}
        Some(2) => {
            return Err(reject(
                RejectReason::CompressedChange,
                "compressed chunks are never inflated".into(),
            ))
        }
        _ => {
            return Err(reject(
                RejectReason::Malformed,
                "not an Automerge change chunk".into(),
            ))
        }
    }
    // Automerge validates the chunk; the unwind guard keeps a decoder bug from taking the node down.
    // A change parsed from these very bytes already is the change parsing them would give
    // (Automerge builds a change's hash and every field from its bytes).
    let decoded = match parsed.filter(|c| c.raw_bytes() == bytes.as_slice()) {
        Some(c) => Ok(Ok(c)),
        None => catch_unwind(AssertUnwindSafe(|| Change::try_from(bytes.as_slice()))),
    };
    let change = match decoded {
        Ok(Ok(c)) => c,
        Ok(Err(e)) => return Err(reject(RejectReason::Malformed, e.to_string())),
        Err(_) => {
            return Err(reject(
                RejectReason::Malformed,
                "change decoder panicked".into(),
            ))
        }
    };
    let id = RecordId::from(change.hash());
    // Automerge does not check a change chunk's checksum (bytes 4..8, the first bytes of the
    // change hash). Without this check the same signed change could travel in many byte
    // forms: every envelope of a change must be byte-identical.
    if bytes.get(4..8) != Some(&id.0[..4]) {
        return Err(reject(
            RejectReason::Malformed,
            "the chunk checksum does not match the change".into(),
        ));
    }
    let actor = change.actor_id().to_bytes();
    let device_bytes: Option<DeviceId> = <[u8; 32]>::try_from(actor).ok().map(DeviceId);
    let with_author = |reason, detail: String| authored(id, device_bytes, reason, detail);
    if change.len() > MAX_OPS {
        return Err(with_author(
            RejectReason::TooManyOps,
            format!("{} operations", change.len()),
        ));
    }
    if change.deps().len() > MAX_DEPS {
        return Err(with_author(
            RejectReason::TooManyDeps,
            format!("{} dependencies", change.deps().len()),
        ));
    }
    // No free-form payload rides along: the record is the whole change (this also keeps an
    // unadmitted device's join request small).
    if change.message().is_some() || !change.extra_bytes().is_empty() || change.author().is_some() {
        return Err(with_author(
            RejectReason::ForbiddenWrite,
            "changes carry no message, author footer or extra bytes".into(),
        ));
    }
    let Some(device) = device_bytes else {
        return Err(with_author(
            RejectReason::ActorNotSigner,
            "actor id is not a 32-byte key".into(),
        ));
    };
    Ok(Opened {
        envelope,
        change,
        id,
        device,
    })
}

/// The checks after the signature: the write rules (rule 4) and the certificate.
fn finish(
    opened: Opened,
    community: &CommunityId,
    check_signature: bool,
) -> Result<Verified, Rejection> {
    let Opened {
        envelope,
        change,
        id,
        device,
    } = opened;
    let with_author = |reason, detail: String| authored(id, Some(device), reason, detail);
    let expanded = match catch_unwind(AssertUnwindSafe(|| change.decode())) {
        Ok(e) => e,
        Err(_) => {
            return Err(with_author(
                RejectReason::Malformed,
                "operations do not decode".into(),
            ))
        }
    };
    let record = check_layout(&expanded, &device, change.seq())
        .map_err(|r| with_author(r.reason, r.detail))?;
    check_certificate(
        &record,
        community,
        &device,
        change.seq(),
        &id,
        change.deps().is_empty(),
        check_signature,
    )
    .map_err(|r| with_author(r.reason, r.detail))?;
    Ok(Verified {
        id,
        device,
        seq: change.seq(),
        deps: change.deps().iter().map(|h| RecordId(h.0)).collect(),
        time: change.timestamp(),
        record,
        envelope,
        change: Some(Box::new(change)),
        op_range: None,
    })
}

/// Rule 4: exactly one new map at the root, under this change's own key, holding scalars.
fn check_layout(
    c: &automerge::ExpandedChange,
    device: &DeviceId,
    seq: u64,
) -> Result<Record, Refusal> {
    let mut ops = c.operations.iter();
    let Some(first) = ops.next() else {
        return Err(Refusal::new(
            RejectReason::ForbiddenWrite,
            "empty change".into(),
        ));
    };
    let own = |actor: &automerge::ActorId| actor.to_bytes() == device.0.as_slice();
    for op in &c.operations {
        if op.action == OpType::Delete {
            return Err(Refusal::new(
                RejectReason::DeletesRecord,
                "changes may not delete".into(),
            ));
        }
        if let Some(p) = op.pred.iter().next() {
            return Err(if own(p.actor()) {
                Refusal::new(
                    RejectReason::ImmutableFact,
                    "records are immutable once written".into(),
                )
            } else {
                Refusal::new(
                    RejectReason::OverwritesForeignRecord,
                    "overwrites another member's record".into(),
                )
            });
        }
        if op.insert {
            return Err(Refusal::new(
                RejectReason::ForbiddenWrite,
                "list insertion is not part of the layout".into(),
            ));
        }
    }
    let root_key = match (&first.action, &first.obj, &first.key) {
        (OpType::Make(ObjType::Map), ObjectId::Root, Key::Map(k)) => k.to_string(),
        _ => {
            return Err(Refusal::new(
                RejectReason::ForbiddenWrite,
                "a change must open with one new record map".into(),
            ))
        }
    };
    let mut parts = root_key.splitn(3, '/');
    let (kind, key_device, key_seq) = (parts.next(), parts.next(), parts.next());
    if key_device != Some(device.to_hex().as_str()) || key_seq != Some(seq.to_string().as_str()) {
        return Err(Refusal::new(
            RejectReason::ForbiddenWrite,
            format!("record key {root_key:?} is outside the author's namespace"),
        ));
    }
    let record_obj = ObjectId::Id(automerge::legacy::OpId::new(c.start_op.get(), &c.actor_id));
    let mut fields = BTreeMap::new();
    for op in ops {
        if op.obj != record_obj {
            return Err(Refusal::new(
                RejectReason::ForbiddenWrite,
                "writes outside the change's own record".into(),
            ));
        }
        let Key::Map(k) = &op.key else {
            return Err(Refusal::new(
                RejectReason::ForbiddenWrite,
                "record fields are map keys".into(),
            ));
        };
        let v = match &op.action {
            OpType::Put(ScalarValue::Str(s)) => Field::Str(s.to_string()),
            OpType::Put(ScalarValue::Int(i)) => Field::Int(*i),
            OpType::Put(ScalarValue::Uint(u)) => Field::Int(i64::try_from(*u).map_err(|_| {
                Refusal::new(
                    RejectReason::InvalidRecord,
                    format!("field {k:?} is out of range"),
                )
            })?),
            OpType::Put(ScalarValue::Bytes(b)) => Field::Bytes(b.clone()),
            _ => {
                return Err(Refusal::new(
                    RejectReason::ForbiddenWrite,
                    format!("field {k:?} is not a plain scalar"),
                ))
            }
        };
        if fields.insert(k.to_string(), v).is_some() {
            return Err(Refusal::new(
                RejectReason::ForbiddenWrite,
                format!("field {k:?} written twice"),
            ));
        }
    }
    Record::from_fields(kind.unwrap_or(""), &fields)
        .map_err(|e| Refusal::new(RejectReason::InvalidRecord, e.to_string()))
}

/// A device's first change is its certificate (and only its first). The certificate's
/// signature is checked with the change's: both were verified when first accepted.
fn check_certificate(
    record: &Record,
    community: &CommunityId,
    device: &DeviceId,
    seq: u64,
    id: &RecordId,
    no_deps: bool,
    check_signature: bool,
) -> Result<(), Refusal> {
    let bad = |d: &str| Err(Refusal::new(RejectReason::BadCertificate, d.to_string()));
    match (seq == 1, record) {
        (true, Record::Genesis(genesis)) => {
            let record::Genesis { founder, cert, .. } = &**genesis;
            if id.0 != community.0 || !no_deps {
                return Err(Refusal::new(
                    RejectReason::ForeignGenesis,
                    "not this community's genesis".into(),
                ));
            }
            if check_signature && !verify_cert(&CommunityId([0; 32]), founder, device, cert) {
                return bad("the founder did not certify this device");
            }
            Ok(())
        }
        (true, Record::Join(join)) => {
            let record::Join { member, cert, .. } = &**join;
            if check_signature && !verify_cert(community, member, device, cert) {
                return bad("the identity key did not certify this device");
            }
            Ok(())
        }
        // After a recovery (docs/RULES.md R19) the certificate is signed by the member's new
        // identity key, which the record names; derivation checks that key is the member's.
        (true, Record::Device(further)) => {
            let record::Device {
                member,
                cert,
                identity,
                ..
            } = &**further;
            let signer = identity.as_ref().unwrap_or(member);
            if check_signature && !verify_cert(community, signer, device, cert) {
                return bad("the identity key did not certify this device");
            }
            Ok(())
        }
        (true, _) => bad("a device's first change must be its certificate"),
        (false, r) if r.is_certificate() => bad("a certificate must be a device's first change"),
        (false, _) => Ok(()),
    }
}

/// The member a certificate record binds its device to.
pub(crate) fn certified_member(record: &Record) -> Option<MemberId> {
    match record {
        Record::Genesis(genesis) => Some(genesis.founder),
        Record::Join(join) => Some(join.member),
        Record::Device(device) => Some(device.member),
        _ => None,
    }
}
