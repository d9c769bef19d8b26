//! The wire protocols between nodes: the transport stack, the gossip topic and its message
//! framing, the catch-up sync protocol, and the gossipsub configuration with its peer-scoring
//! parameters. Everything a compatible peer (or a test harness) needs to speak to a node.
//!
//! # Transport
//! TCP, then (when the community has a LAN key) the libp2p private-network handshake
//! (`pnet`, XSalsa20 with the 32-byte pre-shared key), then multistream-select, Noise XX and
//! Yamux. The node's libp2p identity is the ed25519 key derived from its device key seed, so
//! its PeerId is stable per device.
//!
//! # Gossip (`coop/<community id hex>/v1`)
//! Each gossipsub message's data is one tag byte and a payload:
//!
//! | tag | payload |
//! |---|---|
//! | `0x01` ([`TAG_ENVELOPE`]) | one signed envelope (`Envelope::encode`), at most `MAX_ENVELOPE_BYTES` |
//! | `0x02` ([`TAG_PROOF`]) | one equivocation proof (`EquivocationProof::encode`): two envelopes |
//!
//! Any other tag is malformed. Messages are signed by the publishing peer (gossipsub
//! `Strict` validation), identified by the SHA-256 of their data (content-addressed, so the
//! same envelope published by two peers is one message), and forwarded only after the
//! receiving node's gate accepted them (`validate_messages`).
//!
//! # Catch-up sync (`/coop/sync/1`, request-response, CBOR)
//! A request carries the community id, the requester's [`SyncClock`] (each device's highest
//! sequence number it holds, with the id of the change at that number) and the devices whose
//! equivocation proofs it holds. A responder that does not hold the change the requester
//! names for a device also sends its own change at that number: a clock alone cannot see two
//! replicas holding different changes with the same (device, sequence number). The
//! response carries the responder's community id, up to [`SYNC_BATCH`] envelopes the
//! requester lacks, in causal order and within [`SYNC_BYTE_BUDGET`] bytes, the proofs the
//! requester lacks (at most [`SYNC_MAX_PROOFS`]), and `more` when the responder holds more.
//! The requester ingests and asks again while `more`. A responder of another community
//! answers with its own id and nothing else.
//!
//! # Catch-up sync v2 (`/coop/sync/2`, request-response, CBOR)
//! The same request. The response ([`SyncResponse2`]) carries up to [`SYNC2_BATCH`]
//! changes as one Automerge bundle and their signatures (see [`crate::bundle`]), any change
//! that could not be bundled as a plain envelope, the proofs, `more`, and `tops`: for each
//! device in the batch the highest sequence number sent, so that the requester can ask for
//! the next batch before it has ingested this one (pipelining). A node asks a peer in v2
//! first and falls back to v1 when the peer does not speak it.

use std::collections::{BTreeSet, HashMap};
use std::time::Duration;

use coop_model::envelope::MAX_ENVELOPE_BYTES;
use coop_model::{
    CommunityId, DeviceId, Envelope, EquivocationProof, RecordId, RejectReason, Rejection,
    SyncClock,
};
use libp2p::core::muxing::StreamMuxerBox;
use libp2p::core::transport::Boxed;
use libp2p::core::upgrade::Version;
use libp2p::gossipsub::{
    self, IdentTopic, MessageId, PeerScoreParams, PeerScoreThresholds, TopicScoreParams,
    ValidationMode,
};
use libp2p::identity::Keypair;
use libp2p::pnet::{PnetConfig, PreSharedKey};
use libp2p::request_response::{self, ProtocolSupport};
use libp2p::{noise, tcp, yamux, PeerId, StreamProtocol, Transport};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

/// Tag byte of a gossip message carrying one envelope.
pub const TAG_ENVELOPE: u8 = 0x01;
/// Tag byte of a gossip message carrying one equivocation proof.
pub const TAG_PROOF: u8 = 0x02;
/// Largest gossip message data: a tagged proof (two envelopes and a length prefix).
pub const MAX_GOSSIP_DATA: usize = 1 + 4 + 2 * MAX_ENVELOPE_BYTES;
/// Largest gossipsub frame: [`MAX_GOSSIP_DATA`] and room for the RPC framing, the
/// publisher's signature and key, and control messages.
pub const MAX_GOSSIP_FRAME: usize = MAX_GOSSIP_DATA + 4 * 1024;

/// The catch-up sync protocol.
pub const SYNC_PROTOCOL: StreamProtocol = StreamProtocol::new("/coop/sync/1");
/// The catch-up sync protocol, version 2 (bundled batches).
pub const SYNC2_PROTOCOL: StreamProtocol = StreamProtocol::new("/coop/sync/2");
/// Most changes in one v2 sync response.
pub const SYNC2_BATCH: usize = crate::bundle::BUNDLE_MAX_CHANGES;
/// Largest v2 sync response accepted, in bytes: a full bundle, its signatures, plain
/// envelopes and proofs within the byte budget, and room for the framing.
pub const SYNC2_MAX_RESPONSE_BYTES: u64 = (crate::bundle::BUNDLE_MAX_BYTES
    + SYNC2_BATCH * crate::bundle::SIGNATURE_BYTES
    + SYNC_BYTE_BUDGET
    + 2 * MAX_ENVELOPE_BYTES
    + 64 * 1024) as u64;
/// Most envelopes in one sync response.
pub const SYNC_BATCH: usize = 500;
/// Most envelope and proof bytes in one sync response (one envelope may overshoot it).
pub const SYNC_BYTE_BUDGET: usize = 4 * 1024 * 1024;
/// Most proofs in one sync response.
pub const SYNC_MAX_PROOFS: usize = 64;
/// Largest sync request accepted, in bytes.
pub const SYNC_MAX_REQUEST_BYTES: u64 = 4 * 1024 * 1024;
/// Largest sync response accepted, in bytes.
pub const SYNC_MAX_RESPONSE_BYTES: u64 = (SYNC_BYTE_BUDGET + 2 * MAX_ENVELOPE_BYTES) as u64 * 2;
/// Most clock entries (devices) a sync request may carry.
pub const SYNC_MAX_CLOCK_ENTRIES: usize = 100_000;
/// How long a sync request may take, response included.
pub const SYNC_TIMEOUT: Duration = Duration::from_secs(90);
/// Most concurrent sync streams per connection.
pub const SYNC_MAX_STREAMS: usize = 8;

/// Gossipsub heartbeat.
pub const GOSSIP_HEARTBEAT: Duration = Duration::from_secs(1);

// Peer scoring (see [`peer_score`]).
/// Score below which a peer gets no gossip from us.
pub const SCORE_GOSSIP_THRESHOLD: f64 = -10.0;
/// Score below which we do not publish to a peer.
pub const SCORE_PUBLISH_THRESHOLD: f64 = -50.0;
/// Score below which every message of a peer is ignored; the node also bans it.
pub const SCORE_GRAYLIST_THRESHOLD: f64 = -100.0;
/// Weight (per invalid message, squared) of P4, invalid messages.
pub const SCORE_INVALID_MESSAGE_WEIGHT: f64 = -20.0;
/// The P4 counter decays to 10 % over this time.
pub const SCORE_INVALID_MESSAGE_DECAY: Duration = Duration::from_secs(3600);
/// Weight of the application score, which the node sets to
/// [`APP_SCORE_PER_MISBEHAVIOUR`] times the peer's misbehaviour points.
pub const SCORE_APP_WEIGHT: f64 = 1.0;
/// Application score per misbehaviour point (bad data in sync responses, rejected gossip).
pub const APP_SCORE_PER_MISBEHAVIOUR: f64 = -10.0;

/// The gossip topic of a community.
pub fn topic(community: &CommunityId) -> IdentTopic {
    IdentTopic::new(format!("coop/{}/v1", community.to_hex()))
}

/// The identify protocol version of a community's nodes: peers of another community are
/// told apart by it (and disconnected, without penalty).
pub fn identify_protocol(community: &CommunityId) -> String {
    format!("/coop/{}/1", community.to_hex())
}

/// The libp2p identity of a device: the ed25519 key with the device key's seed.
pub fn keypair_from_seed(seed: [u8; 32]) -> Keypair {
    let mut seed = seed;
    // A 32-byte seed is always a valid ed25519 secret key.
    Keypair::ed25519_from_bytes(&mut seed).expect("32 bytes are a valid ed25519 secret key")
}

/// Parses the community's LAN key (hex, 32 bytes).
pub fn parse_psk(hex_key: &str) -> Option<PreSharedKey> {
    let mut key = [0u8; 32];
    hex::decode_to_slice(hex_key.trim(), &mut key).ok()?;
    Some(PreSharedKey::new(key))
}

/// TCP (+ pnet with the LAN key) + Noise + Yamux.
pub fn transport(keypair: &Keypair, psk: Option<PreSharedKey>) -> Boxed<(PeerId, StreamMuxerBox)> {
    let tcp = tcp::tokio::Transport::new(tcp::Config::default().nodelay(true));
    let noise = noise::Config::new(keypair).expect("an ed25519 key signs noise keys");
    let yamux = yamux::Config::default();
    let timeout = Duration::from_secs(20);
    match psk {
        Some(psk) => tcp
            .and_then(move |socket, _| PnetConfig::new(psk).handshake(socket))
            .upgrade(Version::V1Lazy)
            .authenticate(noise)
            .multiplex(yamux)
            .timeout(timeout)
            .boxed(),
        None => tcp
            .upgrade(Version::V1Lazy)
            .authenticate(noise)
            .multiplex(yamux)
            .timeout(timeout)
            .boxed(),
    }
}

/// The content-addressed message id: SHA-256 of the data.
pub fn message_id(data: &[u8]) -> MessageId {
    MessageId::from(hex::encode(Sha256::digest(data)))
}

/// The gossipsub configuration every node uses.
pub fn gossipsub_config() -> gossipsub::Config {
    gossipsub::ConfigBuilder::default()
        .validation_mode(ValidationMode::Strict)
        .validate_messages()
        .message_id_fn(|m| message_id(&m.data))
        .max_transmit_size(MAX_GOSSIP_FRAME)
        .heartbeat_interval(GOSSIP_HEARTBEAT)
        // Keep messages awaiting validation long enough for a busy store actor.
        .history_length(30)
        .history_gossip(3)
        .duplicate_cache_time(Duration::from_secs(120))
        .build()
        .expect("static gossipsub configuration is valid")
}

/// Gossipsub peer scoring for a community topic.
///
/// - **P1** time in mesh: weight 0.0033 per second, capped at 3600 s (at most +12).
/// - **P2** first deliveries: weight 1, capped at 20, decaying to 10 % in an hour (at most +20).
/// - **P3/P3b** mesh delivery deficits: off. Ledger traffic is sporadic, so a quiet mesh peer
///   is not a bad one.
/// - **P4** invalid messages (gate verdict Reject): weight −20 × count², decaying to 10 % in
///   an hour. One invalid message takes a peer below the gossip threshold (−10), two below
///   the publish threshold (−50), three below the graylist threshold (−100).
/// - **P5** application score, weight 1: −10 per misbehaviour point (see `net`).
/// - **P6** IP colocation: off. Several nodes behind one address (a shared house, a demo on
///   one machine) are normal here; connection limits bound their number instead.
/// - **P7** behaviour penalty: libp2p defaults (−10, threshold 0, decay 0.2).
/// - Topic weight 1, topic score cap 50, decay interval 1 s, scores retained 1 h.
/// - Thresholds: gossip −10, publish −50, graylist −100, accept PX 100 (PX unused),
///   opportunistic graft 5.
pub fn peer_score(community: &CommunityId) -> (PeerScoreParams, PeerScoreThresholds) {
    let topic_params = TopicScoreParams {
        topic_weight: 1.0,
        time_in_mesh_weight: 0.0033,
        time_in_mesh_quantum: Duration::from_secs(1),
        time_in_mesh_cap: 3600.0,
        first_message_deliveries_weight: 1.0,
        first_message_deliveries_decay: gossipsub::score_parameter_decay(Duration::from_secs(3600)),
        first_message_deliveries_cap: 20.0,
        mesh_message_deliveries_weight: 0.0,
        mesh_failure_penalty_weight: 0.0,
        invalid_message_deliveries_weight: SCORE_INVALID_MESSAGE_WEIGHT,
        invalid_message_deliveries_decay: gossipsub::score_parameter_decay(
            SCORE_INVALID_MESSAGE_DECAY,
        ),
        ..TopicScoreParams::default()
    };
    let mut topics = HashMap::new();
    topics.insert(topic(community).hash(), topic_params);
    let params = PeerScoreParams {
        topics,
        topic_score_cap: 50.0,
        app_specific_weight: SCORE_APP_WEIGHT,
        ip_colocation_factor_weight: 0.0,
        retain_score: Duration::from_secs(3600),
        ..PeerScoreParams::default()
    };
    let thresholds = PeerScoreThresholds {
        gossip_threshold: SCORE_GOSSIP_THRESHOLD,
        publish_threshold: SCORE_PUBLISH_THRESHOLD,
        graylist_threshold: SCORE_GRAYLIST_THRESHOLD,
        accept_px_threshold: 100.0,
        opportunistic_graft_threshold: 5.0,
    };
    (params, thresholds)
}

/// A gossipsub behaviour signing with `keypair`, subscribed to nothing yet, with scoring on.
pub fn gossipsub_behaviour(
    keypair: &Keypair,
    community: &CommunityId,
) -> Result<gossipsub::Behaviour, String> {
    let mut g = gossipsub::Behaviour::new(
        gossipsub::MessageAuthenticity::Signed(keypair.clone()),
        gossipsub_config(),
    )
    .map_err(str::to_string)?;
    let (params, thresholds) = peer_score(community);
    g.with_peer_score(params, thresholds)?;
    Ok(g)
}

/// The sync protocol behaviour (CBOR codec with the size caps above).
pub fn sync_behaviour() -> request_response::cbor::Behaviour<SyncRequest, SyncResponse> {
    let codec = request_response::cbor::codec::Codec::default()
        .set_request_size_maximum(SYNC_MAX_REQUEST_BYTES)
        .set_response_size_maximum(SYNC_MAX_RESPONSE_BYTES);
    request_response::Behaviour::with_codec(
        codec,
        [(SYNC_PROTOCOL, ProtocolSupport::Full)],
        request_response::Config::default()
            .with_request_timeout(SYNC_TIMEOUT)
            .with_max_concurrent_streams(SYNC_MAX_STREAMS),
    )
}

/// The v2 sync protocol behaviour; with `enabled` false the node neither asks nor answers
/// in v2 (tests use it to stand in for a node that only speaks `/coop/sync/1`).
pub fn sync2_behaviour(
    enabled: bool,
) -> request_response::cbor::Behaviour<SyncRequest, SyncResponse2> {
    let codec = request_response::cbor::codec::Codec::default()
        .set_request_size_maximum(SYNC_MAX_REQUEST_BYTES)
        .set_response_size_maximum(SYNC2_MAX_RESPONSE_BYTES);
    let protocols = enabled.then_some((SYNC2_PROTOCOL, ProtocolSupport::Full));
    request_response::Behaviour::with_codec(
        codec,
        protocols,
        request_response::Config::default()
            .with_request_timeout(SYNC_TIMEOUT)
            .with_max_concurrent_streams(SYNC_MAX_STREAMS),
    )
}

/// One gossip message, decoded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum GossipMessage {
    /// A signed envelope.
    Envelope(Envelope),
    /// An equivocation proof.
    Proof(EquivocationProof),
}

impl GossipMessage {
    /// The tagged wire form.
    pub fn encode(&self) -> Vec<u8> {
        let (tag, body) = match self {
            GossipMessage::Envelope(e) => (TAG_ENVELOPE, e.encode()),
            GossipMessage::Proof(p) => (TAG_PROOF, p.encode()),
        };
        let mut out = Vec::with_capacity(1 + body.len());
        out.push(tag);
        out.extend_from_slice(&body);
        out
    }

    /// Parses the tagged wire form.
    pub fn decode(data: &[u8]) -> Result<GossipMessage, Rejection> {
        let refuse = |reason, detail: &str| Rejection {
            id: None,
            device: None,
            member: None,
            reason,
            detail: detail.to_string(),
        };
        if data.len() > MAX_GOSSIP_DATA {
            return Err(refuse(
                RejectReason::Oversize,
                "gossip message exceeds its cap",
            ));
        }
        match data.split_first() {
            Some((&TAG_ENVELOPE, body)) => Envelope::decode(body).map(GossipMessage::Envelope),
            Some((&TAG_PROOF, body)) => EquivocationProof::decode(body).map(GossipMessage::Proof),
            _ => Err(refuse(
                RejectReason::Malformed,
                "unknown gossip message tag",
            )),
        }
    }
}

/// One entry of a sync clock on the wire.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClockEntry {
    /// Device id (32 bytes).
    #[serde(with = "serde_bytes")]
    pub device: Vec<u8>,
    /// Highest sequence number held.
    pub seq: u64,
    /// The id (32 bytes) of the change held at `seq`, when known.
    #[serde(default)]
    pub head: Option<serde_bytes::ByteBuf>,
}

/// A sync request, parsed.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SyncAsk {
    /// What the requester holds.
    pub clock: SyncClock,
    /// For some devices, the change the requester holds at its clock's sequence number.
    pub heads: Vec<(DeviceId, RecordId)>,
    /// Devices whose equivocation proofs the requester holds.
    pub proofs_held: BTreeSet<DeviceId>,
}

/// A catch-up sync request.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SyncRequest {
    /// The requester's community id (32 bytes).
    #[serde(with = "serde_bytes")]
    pub community: Vec<u8>,
    /// What the requester holds.
    pub clock: Vec<ClockEntry>,
    /// Devices whose equivocation proofs the requester holds.
    pub proofs_held: Vec<serde_bytes::ByteBuf>,
}

/// A catch-up sync response.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SyncResponse {
    /// The responder's community id (32 bytes).
    #[serde(with = "serde_bytes")]
    pub community: Vec<u8>,
    /// Envelopes the requester lacks, in causal order.
    pub envelopes: Vec<serde_bytes::ByteBuf>,
    /// Equivocation proofs the requester lacks.
    pub proofs: Vec<serde_bytes::ByteBuf>,
    /// Whether the responder holds more the requester lacks.
    pub more: bool,
}

/// A catch-up sync response, version 2.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SyncResponse2 {
    /// The responder's community id (32 bytes).
    #[serde(with = "serde_bytes")]
    pub community: Vec<u8>,
    /// The changes the requester lacks as one Automerge bundle (empty when none).
    #[serde(with = "serde_bytes")]
    pub bundle: Vec<u8>,
    /// The bundle's changes' signatures, 64 bytes each, in the bundle's order.
    #[serde(with = "serde_bytes")]
    pub signatures: Vec<u8>,
    /// Changes the requester lacks that are not in the bundle, as envelopes.
    pub envelopes: Vec<serde_bytes::ByteBuf>,
    /// Equivocation proofs the requester lacks.
    pub proofs: Vec<serde_bytes::ByteBuf>,
    /// For each device with a change in this response, the highest sequence number sent.
    pub tops: Vec<ClockEntry>,
    /// Whether the responder holds more the requester lacks.
    pub more: bool,
}

impl SyncResponse2 {
    /// Whether it comes from this community.
    pub fn is_for(&self, community: &CommunityId) -> bool {
        self.community.as_slice() == community.0.as_slice()
    }

    /// The answer of a node of another community: its id and nothing else.
    pub fn foreign(community: &CommunityId) -> SyncResponse2 {
        SyncResponse2 {
            community: community.0.to_vec(),
            bundle: Vec::new(),
            signatures: Vec::new(),
            envelopes: Vec::new(),
            proofs: Vec::new(),
            tops: Vec::new(),
            more: false,
        }
    }

    /// `tops` parsed (malformed entries and entries past the clock cap are skipped: they
    /// only steer which batch is asked for next).
    pub fn tops(&self) -> Vec<(DeviceId, u64)> {
        self.tops
            .iter()
            .take(SYNC_MAX_CLOCK_ENTRIES)
            .filter_map(|e| Some((DeviceId(e.device.as_slice().try_into().ok()?), e.seq)))
            .collect()
    }
}

impl SyncRequest {
    /// A request from a replica with this clock and these proofs.
    pub fn new(
        community: &CommunityId,
        clock: &SyncClock,
        heads: &HashMap<DeviceId, RecordId>,
        proofs_held: &[DeviceId],
    ) -> SyncRequest {
        SyncRequest {
            community: community.0.to_vec(),
            clock: clock
                .iter()
                .map(|(d, s)| ClockEntry {
                    device: d.0.to_vec(),
                    seq: *s,
                    head: heads
                        .get(d)
                        .map(|h| serde_bytes::ByteBuf::from(h.0.to_vec())),
                })
                .collect(),
            proofs_held: proofs_held
                .iter()
                .map(|d| serde_bytes::ByteBuf::from(d.0.to_vec()))
                .collect(),
        }
    }

    /// Whether it is for this community.
    pub fn is_for(&self, community: &CommunityId) -> bool {
        self.community.as_slice() == community.0.as_slice()
    }

    /// The request parsed, or `None` when malformed or over the caps.
    pub fn parts(&self) -> Option<SyncAsk> {
        if self.clock.len() > SYNC_MAX_CLOCK_ENTRIES
            || self.proofs_held.len() > SYNC_MAX_CLOCK_ENTRIES
        {
            return None;
        }
        let b32 = |b: &[u8]| -> Option<[u8; 32]> { b.try_into().ok() };
        let mut ask = SyncAsk::default();
        for e in &self.clock {
            let d = DeviceId(b32(&e.device)?);
            ask.clock.insert(d, e.seq);
            if let Some(h) = &e.head {
                ask.heads.push((d, RecordId(b32(h)?)));
            }
        }
        for d in &self.proofs_held {
            ask.proofs_held.insert(DeviceId(b32(d)?));
        }
        Some(ask)
    }
}

impl SyncResponse {
    /// Whether it comes from this community.
    pub fn is_for(&self, community: &CommunityId) -> bool {
        self.community.as_slice() == community.0.as_slice()
    }

    /// The answer of a node of another community: its id and nothing else.
    pub fn foreign(community: &CommunityId) -> SyncResponse {
        SyncResponse {
            community: community.0.to_vec(),
            envelopes: Vec::new(),
            proofs: Vec::new(),
            more: false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gossip_messages_round_trip_and_refuse_junk() {
        let key = coop_model::DeviceKey::from_seed([7; 32]);
        let env = Envelope::sign(
            CommunityId([1; 32]),
            coop_model::DocId([2; 32]),
            &key,
            &[3; 32],
            vec![9; 10],
        );
        let m = GossipMessage::Envelope(env.clone());
        assert_eq!(GossipMessage::decode(&m.encode()), Ok(m));
        let p = GossipMessage::Proof(EquivocationProof {
            a: env.clone(),
            b: env,
        });
        assert_eq!(GossipMessage::decode(&p.encode()), Ok(p));
        assert_eq!(
            GossipMessage::decode(&[0x7f, 1, 2]).unwrap_err().reason,
            RejectReason::Malformed
        );
        assert_eq!(
            GossipMessage::decode(&[]).unwrap_err().reason,
            RejectReason::Malformed
        );
        let mut big = vec![TAG_ENVELOPE];
        big.resize(MAX_ENVELOPE_BYTES + 2, 0);
        assert_eq!(
            GossipMessage::decode(&big).unwrap_err().reason,
            RejectReason::Oversize
        );
    }

    #[test]
    fn peer_score_parameters_are_valid_and_ids_are_stable() {
        let (p, t) = peer_score(&CommunityId([5; 32]));
        p.validate().unwrap();
        t.validate().unwrap();
        let a = keypair_from_seed([9; 32]).public().to_peer_id();
        let b = keypair_from_seed([9; 32]).public().to_peer_id();
        assert_eq!(a, b);
        assert_eq!(message_id(b"x"), message_id(b"x"));
    }
}
