//! The signed envelope (wire and storage format, version 1) and its reasons for refusal.
//!
//! ```text
//! "COOP" | version u8 = 1 | community id [32] | document id [32] | signature [64]
//!        | change length u32 (big-endian) | Automerge change chunk (uncompressed)
//! ```
//! The signature is the device key's ed25519 signature (strict) over
//! `"coop/change/v1" ‖ community id ‖ document id ‖ change hash`; the device key is the
//! change's actor id.

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::identity::DeviceKey;
use crate::ids::{CommunityId, DeviceId, DocId, MemberId, RecordId};

/// The envelope format version this library writes and reads.
pub const ENVELOPE_VERSION: u8 = 1;
/// Magic bytes that open every envelope.
pub const ENVELOPE_MAGIC: &[u8; 4] = b"COOP";
/// Domain tag of change signatures.
pub const CHANGE_DOMAIN: &[u8] = b"coop/change/v1";
/// Largest change accepted, in bytes.
pub const MAX_CHANGE_BYTES: usize = 16 * 1024;
/// Largest envelope accepted, in bytes.
pub const MAX_ENVELOPE_BYTES: usize = MAX_CHANGE_BYTES + HEADER_LEN;
/// Most operations one change may carry.
pub const MAX_OPS: usize = 64;
/// Most dependencies one change may name.
pub const MAX_DEPS: usize = 64;

const HEADER_LEN: usize = 4 + 1 + 32 + 32 + 64 + 4;

/// A signed Automerge change, as it travels and as it is stored.
#[derive(Clone, PartialEq, Eq)]
pub struct Envelope {
    /// The community whose ledger this change belongs to.
    pub community: CommunityId,
    /// The document within that community.
    pub doc: DocId,
    /// The device's signature.
    pub signature: [u8; 64],
    /// The uncompressed Automerge change chunk.
    pub change: Vec<u8>,
}

impl fmt::Debug for Envelope {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Envelope")
            .field("community", &self.community)
            .field("change_len", &self.change.len())
            .finish()
    }
}

/// The message a device signs for a change.
pub fn signing_message(community: &CommunityId, doc: &DocId, change_hash: &[u8; 32]) -> Vec<u8> {
    let mut m = Vec::with_capacity(CHANGE_DOMAIN.len() + 96);
    m.extend_from_slice(CHANGE_DOMAIN);
    m.extend_from_slice(&community.0);
    m.extend_from_slice(&doc.0);
    m.extend_from_slice(change_hash);
    m
}

impl Envelope {
    /// Signs change bytes (whose hash is `hash`) with a device key.
    pub fn sign(
        community: CommunityId,
        doc: DocId,
        key: &DeviceKey,
        hash: &[u8; 32],
        change: Vec<u8>,
    ) -> Envelope {
        let signature = key.sign(&signing_message(&community, &doc, hash));
        Envelope {
            community,
            doc,
            signature,
            change,
        }
    }

    /// The record id (change hash) of the carried change, if it is an uncompressed change chunk.
    pub fn record_id(&self) -> Option<RecordId> {
        if self.change.get(8) != Some(&1) {
            return None;
        }
        std::panic::catch_unwind(|| automerge::Change::try_from(self.change.as_slice()).ok())
            .ok()
            .flatten()
            .map(|c| RecordId::from(c.hash()))
    }

    /// The wire and storage form.
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(HEADER_LEN + self.change.len());
        out.extend_from_slice(ENVELOPE_MAGIC);
        out.push(ENVELOPE_VERSION);
        out.extend_from_slice(&self.community.0);
        out.extend_from_slice(&self.doc.0);
        out.extend_from_slice(&self.signature);
        out.extend_from_slice(&(self.change.len() as u32).to_be_bytes());
        out.extend_from_slice(&self.change);
        out
    }

    /// Parses the wire form, refusing anything over the size cap before reading further.
    pub fn decode(bytes: &[u8]) -> Result<Envelope, Rejection> {
        let bad = |reason, detail: &str| Rejection::anonymous(reason, detail);
        if bytes.len() > MAX_ENVELOPE_BYTES {
            return Err(bad(
                RejectReason::Oversize,
                &format!(
                    "envelope of {} bytes exceeds {MAX_ENVELOPE_BYTES}",
                    bytes.len()
                ),
            ));
        }
        if bytes.len() < HEADER_LEN || &bytes[..4] != ENVELOPE_MAGIC {
            return Err(bad(RejectReason::Malformed, "not a coop envelope"));
        }
        if bytes[4] != ENVELOPE_VERSION {
            return Err(bad(
                RejectReason::UnsupportedVersion,
                &format!("envelope version {}", bytes[4]),
            ));
        }
        let take32 = |at: usize| -> [u8; 32] { bytes[at..at + 32].try_into().unwrap_or([0; 32]) };
        let community = CommunityId(take32(5));
        let doc = DocId(take32(37));
        let signature: [u8; 64] = bytes[69..133].try_into().unwrap_or([0; 64]);
        let len = u32::from_be_bytes(bytes[133..137].try_into().unwrap_or([0; 4])) as usize;
        if len != bytes.len() - HEADER_LEN {
            return Err(bad(
                RejectReason::Malformed,
                "change length does not match the envelope",
            ));
        }
        Ok(Envelope {
            community,
            doc,
            signature,
            change: bytes[HEADER_LEN..].to_vec(),
        })
    }
}

/// Why one record does not count, or one change does not pass the gate: a named reason and
/// a detail for people. [`Rejection`] adds who wrote the change and its id.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{reason}: {detail}")]
pub struct Refusal {
    /// The named reason.
    pub reason: RejectReason,
    /// Details for people.
    pub detail: String,
}

impl Refusal {
    /// A refusal for `reason`, explained by `detail`.
    pub fn new(reason: RejectReason, detail: String) -> Refusal {
        Refusal { reason, detail }
    }
}

/// Why a change was refused by the gate (docs/PROTOCOL.md §5) or counted for nothing by derivation (docs/RULES.md R17).
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum RejectReason {
    // --- gate, rule 1: decoding and caps
    /// Bytes that are not an envelope or not an Automerge change.
    Malformed,
    /// An envelope version this build does not read.
    UnsupportedVersion,
    /// Larger than the byte cap.
    Oversize,
    /// A compressed chunk (never inflated) or a document chunk.
    CompressedChange,
    /// More operations than the cap.
    TooManyOps,
    /// More dependencies than the cap.
    TooManyDeps,
    /// Signed for another community, or for a document that is not this ledger.
    WrongCommunity,
    // --- gate, rule 2: signature
    /// The actor id is not an ed25519 device key.
    ActorNotSigner,
    /// The signature does not verify.
    BadSignature,
    // --- gate, rule 4: write rules and layout
    /// Deletes a record.
    DeletesRecord,
    /// Overwrites another member's record.
    OverwritesForeignRecord,
    /// Changes a record that is immutable once written.
    ImmutableFact,
    /// Writes outside the author's own new record, or an op the layout does not allow.
    ForbiddenWrite,
    /// The record's fields do not validate.
    InvalidRecord,
    /// A device's first change must be its certificate, and only its first.
    BadCertificate,
    /// A genesis that is not the one this community was founded with.
    ForeignGenesis,
    /// Sequence numbers of a device must be consecutive along its causal chain.
    BadSequence,
    // --- derivation: authorization (rule 3) and the domain
    /// The author is not an admitted member in the change's causal past.
    NotAMember,
    /// The author was removed and this change is not in the causal past of the removal.
    RemovedMember,
    /// The writing device equivocated and this record is at or after the fork point (the
    /// first sequence number its versions do not share); its earlier records still count.
    ForkedDevice,
    /// The writing device was revoked by its member and this change is not in the causal
    /// past of the revocation.
    RevokedDevice,
    /// The writing device was certified by an identity key that a recovery decision
    /// replaced, and this change is not in the causal past of the recovery's tally
    /// (docs/RULES.md R19).
    RecoveredIdentity,
    /// The change builds on the non-canonical branch of an equivocation.
    DependsOnFork,
    /// A record it refers to is not in its causal past (or is of the wrong kind).
    UnknownReference,
    /// The author may not do this to that record.
    NotAllowed,
    /// The record was already settled (confirmed, declined, closed, completed...).
    AlreadySettled,
    /// The confirmation would take the receiver below the time-bank floor.
    BelowFloor,
    /// More SP on one proposal than `sp_max_per_proposal`.
    OverProposalCap,
    /// More active SP than the member's budget.
    OverBudget,
    /// The proposal is closed.
    ProposalClosed,
    /// The category is not one of the community's categories.
    UnknownCategory,
    /// Nothing new: a second vouch by the same member, a second approval by the same
    /// steward, a payment or pickup already marked.
    Redundant,
    /// A vote after the decision's window closed, or outside the tally's causal past.
    WindowClosed,
    /// A tally before the decision's window closed.
    WindowOpen,
    /// A second vote by the same member on one decision.
    AlreadyVoted,
    /// A decision that could not take effect as written (bad window, parameter, role, member).
    InvalidDecision,
    /// Claimed at or after the deadline it must beat (a purchase round's, or a new
    /// purchase's own deadline not after its record).
    DeadlinePassed,
    /// The purchase round is not open at the record's claimed time (a later round of a
    /// recurring purchase before the previous deadline, or a round a one-off purchase lacks).
    RoundNotOpen,
    /// The member already committed to this purchase round.
    AlreadyCommitted,
    /// The purchase round is not funded (quantity or participants short of the target).
    NotFunded,
    /// No bid covers the committed quantity.
    NoWinningBid,
    /// The purchase round is not ordered yet.
    NotOrdered,
    /// The purchase round is not delivered yet.
    NotDelivered,
    /// The member has no commitment in the purchase round.
    NotAParticipant,
    /// A disbursement or return on an application no decision has allocated.
    NotAllocated,
    /// A disbursement beyond what is left of the application's allocation.
    OverAllocation,
    /// More than the pool or relief fund holds.
    InsufficientFunds,
    /// Relief beyond `relief_max_per_person` within `relief_period_days`.
    OverReliefCap,
}

impl RejectReason {
    /// The stable snake_case name shown to people and scripts.
    pub fn as_str(&self) -> &'static str {
        use RejectReason::*;
        match self {
            Malformed => "malformed",
            UnsupportedVersion => "unsupported_version",
            Oversize => "oversize",
            CompressedChange => "compressed_change",
            TooManyOps => "too_many_ops",
            TooManyDeps => "too_many_deps",
            WrongCommunity => "wrong_community",
            ActorNotSigner => "actor_not_signer",
            BadSignature => "bad_signature",
            DeletesRecord => "deletes_record",
            OverwritesForeignRecord => "overwrites_foreign_record",
            ImmutableFact => "immutable_fact",
            ForbiddenWrite => "forbidden_write",
            InvalidRecord => "invalid_record",
            BadCertificate => "bad_certificate",
            ForeignGenesis => "foreign_genesis",
            BadSequence => "bad_sequence",
            NotAMember => "not_a_member",
            RemovedMember => "removed_member",
            ForkedDevice => "forked_device",
            RevokedDevice => "revoked_device",
            RecoveredIdentity => "recovered_identity",
            DependsOnFork => "depends_on_fork",
            UnknownReference => "unknown_reference",
            NotAllowed => "not_allowed",
            AlreadySettled => "already_settled",
            BelowFloor => "below_floor",
            OverProposalCap => "over_proposal_cap",
            OverBudget => "over_budget",
            ProposalClosed => "proposal_closed",
            UnknownCategory => "unknown_category",
            Redundant => "redundant",
            WindowClosed => "window_closed",
            WindowOpen => "window_open",
            AlreadyVoted => "already_voted",
            InvalidDecision => "invalid_decision",
            DeadlinePassed => "deadline_passed",
            RoundNotOpen => "round_not_open",
            AlreadyCommitted => "already_committed",
            NotFunded => "not_funded",
            NoWinningBid => "no_winning_bid",
            NotOrdered => "not_ordered",
            NotDelivered => "not_delivered",
            NotAParticipant => "not_a_participant",
            NotAllocated => "not_allocated",
            OverAllocation => "over_allocation",
            InsufficientFunds => "insufficient_funds",
            OverReliefCap => "over_relief_cap",
        }
    }
}

impl fmt::Display for RejectReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A refused change: a value, not an error. Says what was refused, who wrote it, and why.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Rejection {
    /// The change hash, when the change decoded far enough to have one.
    pub id: Option<RecordId>,
    /// The writing device, when known.
    pub device: Option<DeviceId>,
    /// The member that device belongs to, when known.
    pub member: Option<MemberId>,
    /// The named reason.
    pub reason: RejectReason,
    /// Details for people.
    pub detail: String,
}

impl Rejection {
    pub(crate) fn anonymous(reason: RejectReason, detail: &str) -> Rejection {
        Rejection {
            id: None,
            device: None,
            member: None,
            reason,
            detail: detail.to_string(),
        }
    }
}

impl fmt::Display for Rejection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.reason)?;
        if let Some(id) = &self.id {
            write!(f, " (change {})", id.short())?;
        }
        match (&self.member, &self.device) {
            (Some(m), _) => write!(f, " by member {}", m.short())?,
            (None, Some(d)) => write!(f, " by device {}", d.short())?,
            _ => write!(f, " by an unknown author")?,
        }
        if !self.detail.is_empty() {
            write!(f, ": {}", self.detail)?;
        }
        Ok(())
    }
}

impl std::error::Error for Rejection {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn envelopes_round_trip_and_refuse_junk() {
        let key = DeviceKey::from_seed([7; 32]);
        let env = Envelope::sign(
            CommunityId([1; 32]),
            DocId([2; 32]),
            &key,
            &[3; 32],
            vec![9; 10],
        );
        let bytes = env.encode();
        assert_eq!(Envelope::decode(&bytes), Ok(env));
        assert_eq!(
            Envelope::decode(&bytes[..20]).unwrap_err().reason,
            RejectReason::Malformed
        );
        let mut longer = bytes.clone();
        longer.push(0);
        assert_eq!(
            Envelope::decode(&longer).unwrap_err().reason,
            RejectReason::Malformed
        );
        let mut v2 = bytes;
        v2[4] = 2;
        assert_eq!(
            Envelope::decode(&v2).unwrap_err().reason,
            RejectReason::UnsupportedVersion
        );
        let huge = vec![0u8; MAX_ENVELOPE_BYTES + 1];
        assert_eq!(
            Envelope::decode(&huge).unwrap_err().reason,
            RejectReason::Oversize
        );
    }
}
