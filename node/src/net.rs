//! The swarm event loop: the one task that owns the libp2p [`Swarm`] (the Client /
//! EventLoop split of rust-libp2p's file-sharing example). Others talk to it through
//! bounded channels; it talks to the store actor only through futures it polls itself, so
//! it never blocks on the store.
//!
//! # What it does
//! - Gossip: every message on the community topic goes through the store actor's gate and
//!   is reported to gossipsub as Accept (accepted), Ignore (held or waiting for
//!   dependencies; then a catch-up sync with the sender runs) or Reject (refused).
//! - Catch-up sync: on every new connection, every `sync_interval` with every connected
//!   peer, and when gossip shows we lack something. At most one outgoing sync per peer.
//!   In `/coop/sync/2` (v1 with a peer that does not speak it) a sync is a pipeline: the
//!   next batch is asked for as soon as a response arrives, with the clock advanced by the
//!   response's `tops`, while at most [`SYNC_PIPELINE_DEPTH`] batches are decoded (off this
//!   task) and ingested (one after another, in order, one store flush each).
//! - Discovery: explicit peers (configured, given, or kept in the peer store) are dialed at
//!   start and re-dialed while disconnected (back-off from [`REDIAL_MIN`] to [`REDIAL_MAX`]);
//!   mDNS neighbours are dialed when found and re-dialed the same way while mDNS sees them.
//! - The peer store (`peers.json`, see [`crate::peerstore`]): each address a dial worked on,
//!   and the listen addresses peers announce, are noted and written (off this task, at most
//!   every [`PEER_STORE_SAVE`], and once more when the loop stops).
//! - Reach (members behind NATs): reservations on the relays, rendezvous, AutoNAT and
//!   DCUtR are `reach.rs`'s state ([`crate::reach::Reach`]); this loop hands it the events
//!   that concern it and performs its actions (the `// Reach` blocks below).
//!
//! The rules about peers (misbehaviour points, bans, foreign peers, which peer to sync
//! with, re-dial back-off) are sans-I/O state in `peers.rs`; this loop feeds it what
//! happens and performs the actions it returns.
//!
//! # Misbehaviour
//! Bad data from a peer is a value, not an error: each refused envelope or proof (gossip or
//! sync), each undecodable item and each malformed sync request is counted, attributed to
//! the peer (and to the author when known), logged at `warn`, sent as
//! [`NodeEvent::Rejected`], and earns the peer one misbehaviour point. Points decay by one
//! every [`MISBEHAVIOUR_DECAY`]. Every point lowers the peer's gossipsub application score
//! by 10 (see [`crate::wire::peer_score`]). A peer reaching [`BAN_THRESHOLD`] points, or
//! whose gossipsub score falls below the graylist threshold (−100: three invalid gossip
//! messages), is disconnected and banned for [`BAN_DURATION`].
//!
//! # Bounds
//! Connections: [`MAX_ESTABLISHED_INCOMING`] in, [`MAX_ESTABLISHED_OUTGOING`] out,
//! [`MAX_ESTABLISHED_PER_PEER`] per peer, [`MAX_PENDING_CONNECTIONS`] pending each way.
//! Tables: misbehaviour [`MAX_TRACKED_PEERS`], bans [`MAX_BANS`], foreign peers
//! [`MAX_FOREIGN`], explicit peers [`MAX_DIAL_TARGETS`]. Work in flight: gossip validations
//! [`MAX_INFLIGHT_VALIDATIONS`], sync requests served [`MAX_INFLIGHT_SERVES`] (at most
//! [`MAX_SERVES_PER_PEER`] per peer).

use std::collections::{BTreeSet, HashMap};
use std::time::{Duration, Instant};

use coop_model::{
    CommunityId, DeviceId, Envelope, EquivocationProof, RecordId, Rejection, SyncClock,
};
use futures::future::BoxFuture;
use futures::stream::FuturesUnordered;
use futures::{FutureExt, StreamExt};
use libp2p::gossipsub::{self, IdentTopic, MessageAcceptance, MessageId};
use libp2p::identity::Keypair;
use libp2p::multiaddr::Protocol;
use libp2p::pnet::PreSharedKey;
use libp2p::request_response::{self, OutboundRequestId, ResponseChannel};
use libp2p::swarm::behaviour::toggle::Toggle;
use libp2p::swarm::dial_opts::{DialOpts, PeerCondition};
use libp2p::swarm::{NetworkBehaviour, SwarmEvent};
use libp2p::{allow_block_list, connection_limits, identify, mdns, ping, Multiaddr, PeerId, Swarm};
use tokio::sync::{broadcast, mpsc, oneshot, watch};

use crate::actor::{
    GossipItem, Holdings, Missing, Publish, StoreHandle, SyncIngested, SyncedChange, Verdict,
};
use crate::datadir::DataDir;
use crate::error::NodeError;
use crate::event::NodeEvent;
use crate::local::{MdnsStatus, Status};
use crate::peers::{Action, Input, Peers};
use crate::peerstore::{self, Observation, Source};
use crate::reach::{self, Reach, ReachAction};
use crate::reach_status::ReachStatus;
use crate::wire::{
    self, GossipMessage, SyncRequest, SyncResponse, SyncResponse2, SYNC_BATCH, SYNC_MAX_PROOFS,
};

pub use crate::peers::{
    BAN_DURATION, BAN_THRESHOLD, FOREIGN_MEMORY, MAX_BANS, MAX_DIAL_TARGETS, MAX_FOREIGN,
    MAX_NEIGHBOURS, MAX_NEIGHBOUR_ADDRS, MAX_TRACKED_PEERS, MISBEHAVIOUR_DECAY, REDIAL_MAX,
    REDIAL_MIN,
};

/// How often mDNS asks the LAN who is there (after its first probes at 0.5, 1, 2, 4 and
/// 8 s). A lost query or answer costs at most this long; re-dialing a neighbour already
/// found is the peer table's job, not mDNS's.
pub const MDNS_QUERY_INTERVAL: Duration = Duration::from_secs(10);
/// Most peer-store observations waiting to be written (the oldest are dropped).
pub const MAX_PENDING_OBSERVATIONS: usize = 256;
/// The peer store is written at most this often while the node runs.
pub const PEER_STORE_SAVE: Duration = Duration::from_secs(5);
/// Most established incoming connections.
pub const MAX_ESTABLISHED_INCOMING: u32 = 48;
/// Most established outgoing connections.
pub const MAX_ESTABLISHED_OUTGOING: u32 = 48;
/// Most connections to one peer: a direct one, a relayed one it was upgraded from (DCUtR),
/// and one more for two dials that cross.
pub const MAX_ESTABLISHED_PER_PEER: u32 = 3;
/// Most connections being set up, in each direction.
pub const MAX_PENDING_CONNECTIONS: u32 = 16;
/// Connections with nothing to do are closed after this long (ping and the periodic sync
/// keep peers connected well within it).
pub const IDLE_CONNECTION_TIMEOUT: Duration = Duration::from_secs(3600);
/// Ping interval.
pub const PING_INTERVAL: Duration = Duration::from_secs(15);

/// Most gossip messages waiting for the store's verdict (more are ignored, not lost:
/// anti-entropy fetches them).
pub const MAX_INFLIGHT_VALIDATIONS: usize = 512;
/// Most sync requests being served at once.
pub const MAX_INFLIGHT_SERVES: usize = 32;
/// Most sync requests of one peer being served at once.
pub const MAX_SERVES_PER_PEER: usize = 2;
/// Most v2 sync batches of one peer received and not yet ingested: the depth of the
/// catch-up pipeline (the next request is sent while fewer are waiting).
pub const SYNC_PIPELINE_DEPTH: usize = 2;
/// Capacity of the swarm loop's command channel.
pub const NET_QUEUE: usize = 64;
/// Capacity of the channel of envelopes to publish.
pub const PUBLISH_QUEUE: usize = 256;
/// How often bans, decay and re-dials are looked after.
const MAINTENANCE_TICK: Duration = Duration::from_secs(1);

/// The network behaviours of a node.
#[derive(NetworkBehaviour)]
pub(crate) struct Behaviour {
    limits: connection_limits::Behaviour,
    blocked: allow_block_list::Behaviour<allow_block_list::BlockedPeers>,
    gossipsub: gossipsub::Behaviour,
    sync: request_response::cbor::Behaviour<SyncRequest, SyncResponse>,
    sync2: request_response::cbor::Behaviour<SyncRequest, SyncResponse2>,
    identify: identify::Behaviour,
    ping: ping::Behaviour,
    mdns: Toggle<mdns::tokio::Behaviour>,
    /// Relay client, DCUtR, AutoNAT, rendezvous client (`reach.rs`).
    reach: reach::Behaviour,
}

impl std::fmt::Debug for Behaviour {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Behaviour").finish_non_exhaustive()
    }
}

/// Builds the swarm of a node.
pub(crate) fn build_swarm(
    keypair: &Keypair,
    community: &CommunityId,
    psk: Option<PreSharedKey>,
    use_mdns: bool,
    sync_v2: bool,
) -> Result<Swarm<Behaviour>, NodeError> {
    let peer_id = keypair.public().to_peer_id();
    let limits = connection_limits::ConnectionLimits::default()
        .with_max_established_incoming(Some(MAX_ESTABLISHED_INCOMING))
        .with_max_established_outgoing(Some(MAX_ESTABLISHED_OUTGOING))
        .with_max_established_per_peer(Some(MAX_ESTABLISHED_PER_PEER))
        .with_max_pending_incoming(Some(MAX_PENDING_CONNECTIONS))
        .with_max_pending_outgoing(Some(MAX_PENDING_CONNECTIONS));
    let mut gossipsub = wire::gossipsub_behaviour(keypair, community)
        .map_err(|e| NodeError::network("gossip configuration", e))?;
    gossipsub
        .subscribe(&wire::topic(community))
        .map_err(|e| NodeError::network("gossip subscription", e))?;
    let mdns = if use_mdns {
        Some(
            mdns::tokio::Behaviour::new(
                mdns::Config {
                    // The default re-queries every 5 min: one lost packet would hide a
                    // neighbour that long. One small multicast query every 10 s is cheap.
                    query_interval: MDNS_QUERY_INTERVAL,
                    ..mdns::Config::default()
                },
                peer_id,
            )
            .map_err(|e| NodeError::network("mDNS", e))?,
        )
    } else {
        None
    };
    let (reach_behaviour, relay_transport) = reach::Behaviour::new(keypair);
    let behaviour = Behaviour {
        limits: connection_limits::Behaviour::new(limits),
        blocked: allow_block_list::Behaviour::default(),
        gossipsub,
        sync: wire::sync_behaviour(),
        sync2: wire::sync2_behaviour(sync_v2),
        identify: identify::Behaviour::new(
            identify::Config::new(wire::identify_protocol(community), keypair.public())
                .with_agent_version(format!("coop/{}", env!("CARGO_PKG_VERSION"))),
        ),
        ping: ping::Behaviour::new(ping::Config::new().with_interval(PING_INTERVAL)),
        mdns: Toggle::from(mdns),
        reach: reach_behaviour,
    };
    Ok(Swarm::new(
        reach::transport(keypair, psk, relay_transport),
        behaviour,
        peer_id,
        libp2p::swarm::Config::with_tokio_executor()
            .with_idle_connection_timeout(IDLE_CONNECTION_TIMEOUT),
    ))
}

/// Commands to the swarm loop.
#[derive(Debug)]
pub(crate) enum NetCommand {
    /// Dial an address now, and re-dial it while disconnected.
    Dial {
        addr: Multiaddr,
        reply: oneshot::Sender<Result<(), NodeError>>,
    },
}

/// Counters and table sizes of the network part, for status and tests.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct NetStats {
    /// Connected peers.
    pub connected: usize,
    /// Peers in the misbehaviour table (at most [`MAX_TRACKED_PEERS`]).
    pub tracked_peers: usize,
    /// Peers banned now (at most [`MAX_BANS`]).
    pub banned: usize,
    /// Bans since start.
    pub bans_total: u64,
    /// Peers of other communities remembered (at most [`MAX_FOREIGN`]).
    pub foreign: usize,
    /// Explicit peers (at most [`MAX_DIAL_TARGETS`]).
    pub dial_targets: usize,
    /// Gossip messages waiting for a verdict (at most [`MAX_INFLIGHT_VALIDATIONS`]).
    pub inflight_validations: usize,
    /// Sync requests being served (at most [`MAX_INFLIGHT_SERVES`]).
    pub inflight_serves: usize,
    /// Sync rounds completed (responses ingested).
    pub sync_rounds: u64,
    /// Bundled batches received (`/coop/sync/2` responses with a bundle).
    pub bundled_batches: u64,
    /// Payload bytes of the sync responses received, v1 and v2 (bundles, signatures,
    /// envelopes, proofs and `tops` entries; without CBOR keys, Noise and Yamux framing).
    /// Counted here because a peer may use more than one connection (an AutoNAT dial-back
    /// opens a second one, and requests are spread over both).
    pub sync_bytes_received: u64,
}

/// What the swarm loop publishes about itself.
#[derive(Debug, Clone, Default)]
pub(crate) struct NetSnapshot {
    pub(crate) peers: Vec<String>,
    pub(crate) listen: Vec<String>,
    pub(crate) listen_failures: usize,
    pub(crate) rejected_from_peers: u64,
    pub(crate) stats: NetStats,
    pub(crate) reach: ReachStatus,
    pub(crate) mdns: MdnsStatus,
}

impl NetSnapshot {
    /// `status` (the store's part) with the network part filled in from this snapshot.
    pub(crate) fn fill(&self, mut status: Status) -> Status {
        status.running = true;
        status.peers = self.peers.clone();
        status.listen = self.listen.clone();
        status.rejected_from_peers = self.rejected_from_peers;
        status.reach = Some(self.reach.clone());
        status.mdns = self.mdns.clone();
        status
    }
}

enum Done {
    Gossip {
        id: MessageId,
        source: PeerId,
        verdict: Option<Verdict>,
    },
    Serve {
        peer: PeerId,
        channel: Reply,
        missing: Option<Missing>,
    },
    Clock {
        peer: PeerId,
        clock: Option<Holdings>,
    },
    Ingested {
        peer: PeerId,
        result: Option<SyncIngested>,
        more: bool,
    },
    /// A v2 batch was decoded (refusals of what did not decode in `bad`) and ingested.
    Ingested2 {
        peer: PeerId,
        result: Option<SyncIngested>,
        bad: Vec<Rejection>,
    },
    /// The peer store was written.
    BookSaved,
    /// The store took its due document snapshot after a sync ended (or had none due).
    Settled,
}

/// Where a sync response goes: the version the request came in.
enum Reply {
    V1(ResponseChannel<SyncResponse>),
    V2(ResponseChannel<SyncResponse2>),
}

/// A sync response received, in the version it came in.
enum Answer {
    V1(SyncResponse),
    V2(SyncResponse2),
}

/// An event of either sync protocol (`/coop/sync/1` or `/coop/sync/2`), in the shape both
/// share: the two behaviours differ only in their response type.
enum SyncEvent {
    Request {
        peer: PeerId,
        request: SyncRequest,
        channel: Reply,
    },
    Response {
        peer: PeerId,
        request_id: OutboundRequestId,
        response: Answer,
    },
    OutboundFailure {
        peer: PeerId,
        request_id: OutboundRequestId,
        /// Whether the failed request was a `/coop/sync/2` one.
        v2: bool,
        error: request_response::OutboundFailure,
    },
    InboundFailure {
        peer: PeerId,
        error: request_response::InboundFailure,
    },
    ResponseSent,
}

impl SyncEvent {
    /// The event of a behaviour whose responses are `R`: `reply` and `answer` say which
    /// version they belong to.
    fn from_event<R>(
        event: request_response::Event<SyncRequest, R>,
        reply: fn(ResponseChannel<R>) -> Reply,
        answer: fn(R) -> Answer,
        v2: bool,
    ) -> SyncEvent {
        match event {
            request_response::Event::Message {
                peer,
                message:
                    request_response::Message::Request {
                        request, channel, ..
                    },
                ..
            } => SyncEvent::Request {
                peer,
                request,
                channel: reply(channel),
            },
            request_response::Event::Message {
                peer,
                message:
                    request_response::Message::Response {
                        request_id,
                        response,
                    },
                ..
            } => SyncEvent::Response {
                peer,
                request_id,
                response: answer(response),
            },
            request_response::Event::OutboundFailure {
                peer,
                request_id,
                error,
                ..
            } => SyncEvent::OutboundFailure {
                peer,
                request_id,
                v2,
                error,
            },
            request_response::Event::InboundFailure { peer, error, .. } => {
                SyncEvent::InboundFailure { peer, error }
            }
            request_response::Event::ResponseSent { .. } => SyncEvent::ResponseSent,
        }
    }
}

/// An outgoing v2 sync with one peer: the clock its next request carries and what is in
/// flight.
#[derive(Debug)]
struct Pipe {
    /// The store's clock at the start, advanced by each response's `tops`.
    clock: SyncClock,
    /// The change held at a clock entry, for entries not advanced since.
    heads: HashMap<DeviceId, RecordId>,
    proofs_held: Vec<DeviceId>,
    /// A request is outstanding.
    asking: bool,
    /// Batches received and not yet ingested.
    ingesting: usize,
    /// The last response said `more` and the next request is not sent yet.
    next: bool,
    /// The peer said it holds more (the last response's `more`).
    more: bool,
    /// Some batch made progress (accepted changes or proofs).
    progress: bool,
    /// Resolves when the previous batch is ingested: batches reach the store in order.
    prev: Option<oneshot::Receiver<()>>,
}

/// What the loop keeps for the peer store: observations not yet written, and where each
/// explicit address came from.
#[derive(Debug)]
struct Book {
    dir: DataDir,
    pending: std::collections::VecDeque<Observation>,
    /// The source of each explicit address, without its `/p2p` part.
    sources: HashMap<Multiaddr, Source>,
    saving: bool,
    last_save: Instant,
}

/// The swarm loop's state.
pub(crate) struct EventLoop {
    swarm: Swarm<Behaviour>,
    community: CommunityId,
    topic: IdentTopic,
    store: StoreHandle,
    commands: mpsc::Receiver<NetCommand>,
    publish: mpsc::Receiver<Publish>,
    events: broadcast::Sender<NodeEvent>,
    snapshot: watch::Sender<NetSnapshot>,
    stop: watch::Receiver<bool>,
    sync_interval: Duration,
    inflight: FuturesUnordered<BoxFuture<'static, Done>>,
    inflight_validations: usize,
    serving: HashMap<PeerId, usize>,
    outbound: HashMap<OutboundRequestId, PeerId>,
    /// Outgoing v2 requests, kept to be sent again in v1 when the peer lacks v2.
    outbound2: HashMap<OutboundRequestId, (PeerId, SyncRequest)>,
    /// Whether this node speaks `/coop/sync/2`.
    sync2_on: bool,
    /// Connected peers that do not speak `/coop/sync/2` (forgotten on disconnect).
    v1_peers: BTreeSet<PeerId>,
    /// Outgoing v2 syncs, one per peer at most.
    pipes: HashMap<PeerId, Pipe>,
    /// Misbehaviour, bans, foreign peers, outgoing syncs and re-dials: the sans-I/O state
    /// this loop drives.
    peers: Peers,
    listen: BTreeSet<Multiaddr>,
    listen_failures: usize,
    rejected_from_peers: u64,
    sync_rounds: u64,
    bundled_batches: u64,
    sync_bytes_received: u64,
    /// Relays, rendezvous, AutoNAT's verdict, direct or relayed connections.
    reach: Reach,
    book: Option<Book>,
    mdns_on: bool,
    started: Instant,
    /// Connected peers whose connection is over loopback (their loopback listen addresses
    /// are worth keeping; a LAN peer's are not).
    loopback_peers: BTreeSet<PeerId>,
}

impl std::fmt::Debug for EventLoop {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EventLoop")
            .field("peer", self.swarm.local_peer_id())
            .finish_non_exhaustive()
    }
}

/// The channels of a swarm loop.
#[derive(Debug)]
pub(crate) struct Channels {
    pub(crate) commands: mpsc::Receiver<NetCommand>,
    pub(crate) publish: mpsc::Receiver<Publish>,
    pub(crate) events: broadcast::Sender<NodeEvent>,
    pub(crate) snapshot: watch::Sender<NetSnapshot>,
    pub(crate) stop: watch::Receiver<bool>,
}

impl EventLoop {
    pub(crate) fn new(
        swarm: Swarm<Behaviour>,
        community: CommunityId,
        store: StoreHandle,
        channels: Channels,
        sync_interval: Duration,
        peers: Vec<Multiaddr>,
        reach: Reach,
    ) -> EventLoop {
        EventLoop {
            reach,
            swarm,
            topic: wire::topic(&community),
            community,
            store,
            commands: channels.commands,
            publish: channels.publish,
            events: channels.events,
            snapshot: channels.snapshot,
            stop: channels.stop,
            sync_interval: sync_interval.max(Duration::from_millis(100)),
            inflight: FuturesUnordered::new(),
            inflight_validations: 0,
            serving: HashMap::new(),
            outbound: HashMap::new(),
            outbound2: HashMap::new(),
            sync2_on: true,
            v1_peers: BTreeSet::new(),
            pipes: HashMap::new(),
            peers: Peers::new(peers, Instant::now()),
            listen: BTreeSet::new(),
            listen_failures: 0,
            rejected_from_peers: 0,
            sync_rounds: 0,
            bundled_batches: 0,
            sync_bytes_received: 0,
            book: None,
            mdns_on: false,
            started: Instant::now(),
            loopback_peers: BTreeSet::new(),
        }
    }

    /// Whether to speak `/coop/sync/2` (the swarm's v2 behaviour must agree).
    pub(crate) fn with_sync_v2(mut self, on: bool) -> EventLoop {
        self.sync2_on = on;
        self
    }

    /// Keeps the peer store of `dir` up to date; `sources` says where each explicit
    /// address came from.
    pub(crate) fn with_peer_store(
        mut self,
        dir: DataDir,
        sources: Vec<(Multiaddr, Source)>,
        mdns_on: bool,
    ) -> EventLoop {
        self.mdns_on = mdns_on;
        self.book = Some(Book {
            dir,
            pending: std::collections::VecDeque::new(),
            sources: sources
                .into_iter()
                .map(|(a, s)| (strip_p2p(&a), s))
                .collect(),
            saving: false,
            last_save: Instant::now(),
        });
        self
    }

    /// Notes an observation for the peer store (bounded; the oldest is dropped).
    fn observe(&mut self, addr: Multiaddr, source: Source, worked: bool) {
        let Some(book) = &mut self.book else { return };
        if book.pending.len() >= MAX_PENDING_OBSERVATIONS {
            book.pending.pop_front();
        }
        book.pending.push_back(Observation {
            addr,
            source,
            when: crate::actor::unix_now().max(0) as u64,
            worked,
        });
    }

    /// Writes the pending observations off this task, unless a write is in flight or the
    /// last one was too recent (`force` ignores the latter).
    fn save_book(&mut self, force: bool) {
        let Some(book) = &mut self.book else { return };
        if book.saving
            || book.pending.is_empty()
            || (!force && book.last_save.elapsed() < PEER_STORE_SAVE)
        {
            return;
        }
        let pending: Vec<Observation> = book.pending.drain(..).collect();
        book.saving = true;
        book.last_save = Instant::now();
        let dir = book.dir.clone();
        self.inflight.push(
            async move {
                let written = tokio::task::spawn_blocking(move || write_book(&dir, &pending)).await;
                if let Ok(Err(e)) = written {
                    tracing::warn!(error = %e, "could not write the peer store");
                }
                Done::BookSaved
            }
            .boxed(),
        );
    }

    /// The source of an address a dial worked on.
    fn source_of(&self, peer: &PeerId, addr: &Multiaddr) -> Source {
        if let Some(s) = self
            .book
            .as_ref()
            .and_then(|b| b.sources.get(&strip_p2p(addr)))
        {
            return *s;
        }
        if self.peers.is_neighbour(peer) {
            Source::Mdns
        } else {
            Source::Peer
        }
    }

    /// Listens on an address (before [`EventLoop::run`]).
    pub(crate) fn listen_on(&mut self, addr: Multiaddr) -> Result<(), NodeError> {
        self.swarm
            .listen_on(addr.clone())
            .map(|_| ())
            .map_err(|e| NodeError::network(format!("cannot listen on {addr}"), e))
    }

    /// Runs until told to stop (or until every command sender is gone); the swarm and its
    /// connections are dropped on return.
    pub(crate) async fn run(mut self) {
        let mut anti_entropy = tokio::time::interval(self.sync_interval);
        anti_entropy.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut maintenance = tokio::time::interval(MAINTENANCE_TICK);
        maintenance.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                event = self.swarm.select_next_some() => self.on_swarm_event(event),
                cmd = self.commands.recv() => match cmd {
                    Some(cmd) => self.on_command(cmd),
                    None => break,
                },
                Some(p) = self.publish.recv() => self.on_publish(p),
                Some(done) = self.inflight.next(), if !self.inflight.is_empty() => self.on_done(done),
                _ = anti_entropy.tick() => self.drive(Input::AntiEntropy),
                _ = maintenance.tick() => {
                    self.drive(Input::Tick);
                    self.reach_tick();
                    self.save_book(false);
                    self.update_snapshot();
                }
                r = self.stop.changed() => {
                    if r.is_err() || *self.stop.borrow() {
                        break;
                    }
                }
            }
        }
        // What was seen since the last write is kept too.
        if let Some(book) = self.book.take() {
            if !book.pending.is_empty() {
                let pending: Vec<Observation> = book.pending.into_iter().collect();
                let dir = book.dir;
                match tokio::task::spawn_blocking(move || write_book(&dir, &pending)).await {
                    Ok(Err(e)) => tracing::warn!(error = %e, "could not write the peer store"),
                    Err(e) => tracing::warn!(error = %e, "could not write the peer store"),
                    Ok(Ok(())) => {}
                }
            }
        }
        tracing::info!("network stopped");
    }

    fn emit(&self, e: NodeEvent) {
        // No subscriber is fine; a lagging one loses the oldest events (bounded).
        let _ = self.events.send(e);
    }

    fn update_snapshot(&self) {
        let peers: Vec<String> = self
            .swarm
            .connected_peers()
            .map(|p| p.to_string())
            .collect();
        let stats = NetStats {
            connected: peers.len(),
            tracked_peers: self.peers.tracked(),
            banned: self.peers.banned(),
            bans_total: self.peers.bans_total(),
            foreign: self.peers.foreign(),
            dial_targets: self.peers.dial_targets(),
            inflight_validations: self.inflight_validations,
            inflight_serves: self.serving.values().sum(),
            sync_rounds: self.sync_rounds,
            bundled_batches: self.bundled_batches,
            sync_bytes_received: self.sync_bytes_received,
        };
        let listen = self.listen.iter().map(|a| a.to_string()).collect();
        let mdns = MdnsStatus {
            on: self.mdns_on,
            neighbours: self.peers.neighbours(),
            found: self.peers.neighbours_found(),
            searching_secs: if self.mdns_on {
                self.started.elapsed().as_secs()
            } else {
                0
            },
        };
        self.snapshot.send_modify(|s| {
            s.peers = peers;
            s.listen = listen;
            s.listen_failures = self.listen_failures;
            s.rejected_from_peers = self.rejected_from_peers;
            s.stats = stats;
            s.reach = self.reach.status();
            s.mdns = mdns;
        });
    }

    // Reach: the relays, rendezvous, AutoNAT and DCUtR (state in `reach.rs`).

    fn reach_tick(&mut self) {
        let actions = self
            .reach
            .tick(&mut self.swarm.behaviour_mut().reach, Instant::now());
        self.reach_actions(actions);
    }

    fn reach_actions(&mut self, actions: Vec<ReachAction>) {
        for a in actions {
            match a {
                ReachAction::Listen { relay, addr } => {
                    let id = match self.swarm.listen_on(addr.clone()) {
                        Ok(id) => Some(id),
                        Err(e) => {
                            tracing::warn!(%addr, error = %e, "cannot listen through the relay");
                            None
                        }
                    };
                    self.reach.listening(relay, id);
                }
                ReachAction::Dial { peer, addrs } => {
                    if self.peers.is_banned(&peer) || self.peers.is_foreign(&peer) {
                        continue;
                    }
                    // Not `DisconnectedAndNotDialing`: a direct dial to an address the
                    // peer's router now drops hangs until TCP gives up (~20 s), and the
                    // circuit must not wait behind it (docs/PROTOCOL.md §11, "Relays and rendezvous").
                    let opts = DialOpts::peer_id(peer)
                        .condition(PeerCondition::Disconnected)
                        .addresses(addrs)
                        .build();
                    if let Err(e) = self.swarm.dial(opts) {
                        tracing::debug!(%peer, error = %e, "dial through the relay failed");
                    }
                }
            }
        }
    }

    fn on_command(&mut self, cmd: NetCommand) {
        match cmd {
            NetCommand::Dial { addr, reply } => {
                if let Some(b) = &mut self.book {
                    b.sources.entry(strip_p2p(&addr)).or_insert(Source::Manual);
                }
                self.drive(Input::DialRequested { addr: addr.clone() });
                let r = self
                    .swarm
                    .dial(addr.clone())
                    .map_err(|e| NodeError::network(format!("cannot dial {addr}"), e));
                let _ = reply.send(r);
                self.update_snapshot();
            }
        }
    }

    fn on_publish(&mut self, p: Publish) {
        let messages: Vec<Vec<u8>> = match p {
            Publish::Envelopes(envs) => envs
                .into_iter()
                .map(|e| GossipMessage::Envelope(e).encode())
                .collect(),
            Publish::Proofs(proofs) => proofs
                .into_iter()
                .map(|p| GossipMessage::Proof(p).encode())
                .collect(),
        };
        for m in messages {
            match self
                .swarm
                .behaviour_mut()
                .gossipsub
                .publish(self.topic.clone(), m)
            {
                Ok(_) | Err(gossipsub::PublishError::Duplicate) => {}
                Err(e) => {
                    // Peers that miss it get it through catch-up sync.
                    tracing::debug!(error = %e, "not published on gossip");
                }
            }
        }
    }

    fn on_swarm_event(&mut self, event: SwarmEvent<BehaviourEvent>) {
        match event {
            SwarmEvent::Behaviour(BehaviourEvent::Gossipsub(e)) => self.on_gossip(e),
            SwarmEvent::Behaviour(BehaviourEvent::Sync(e)) => {
                self.on_sync(SyncEvent::from_event(e, Reply::V1, Answer::V1, false));
            }
            SwarmEvent::Behaviour(BehaviourEvent::Sync2(e)) => {
                self.on_sync(SyncEvent::from_event(e, Reply::V2, Answer::V2, true));
            }
            SwarmEvent::Behaviour(BehaviourEvent::Identify(identify::Event::Received {
                peer_id,
                info,
                ..
            })) if info.protocol_version != wire::identify_protocol(&self.community) => {
                tracing::info!(peer = %peer_id, version = %info.protocol_version,
                    "peer of another community or protocol; disconnecting");
                self.drive(Input::Foreign { peer: peer_id });
            }
            SwarmEvent::Behaviour(BehaviourEvent::Identify(identify::Event::Received {
                peer_id,
                info,
                ..
            })) => {
                // Where a peer of our community says it listens: worth dialing after a
                // restart, whoever dialed whom this time.
                let loopback = self.loopback_peers.contains(&peer_id);
                let source = if self.peers.is_neighbour(&peer_id) {
                    Source::Mdns
                } else {
                    Source::Peer
                };
                for a in info
                    .listen_addrs
                    .into_iter()
                    .take(peerstore::MAX_ADDRS_PER_PEER)
                {
                    let a = strip_p2p(&a).with(Protocol::P2p(peer_id));
                    if peerstore::parse_dialable(&a.to_string()).is_err()
                        || (is_loopback(&a) && !loopback)
                    {
                        continue;
                    }
                    self.observe(a, source, false);
                }
            }
            SwarmEvent::Behaviour(BehaviourEvent::Reach(e)) => {
                let actions =
                    self.reach
                        .on_event(&mut self.swarm.behaviour_mut().reach, e, Instant::now());
                self.reach_actions(actions);
                self.update_snapshot();
            }
            SwarmEvent::Behaviour(BehaviourEvent::Mdns(mdns::Event::Discovered(list))) => {
                for (peer, addrs) in by_peer(list) {
                    if peer == *self.swarm.local_peer_id() {
                        continue;
                    }
                    tracing::debug!(%peer, ?addrs, "discovered by mDNS");
                    // The peer table dials it (unless connected, banned or foreign), and
                    // dials it again with back-off while mDNS sees it and no connection
                    // holds: mDNS reports a (peer, address) pair only once.
                    self.drive(Input::Discovered { peer, addrs });
                }
                self.update_snapshot();
            }
            SwarmEvent::Behaviour(BehaviourEvent::Mdns(mdns::Event::Expired(list))) => {
                for (peer, addrs) in by_peer(list) {
                    tracing::debug!(%peer, ?addrs, "mDNS record expired");
                    self.drive(Input::Expired { peer, addrs });
                }
                self.update_snapshot();
            }
            SwarmEvent::Behaviour(_) => {}
            SwarmEvent::ConnectionEstablished {
                peer_id,
                connection_id,
                endpoint,
                num_established,
                ..
            } => {
                self.reach.connected(
                    &mut self.swarm.behaviour_mut().reach,
                    peer_id,
                    connection_id,
                    &endpoint,
                    Instant::now(),
                );
                let first = num_established.get() == 1;
                if first {
                    tracing::info!(peer = %peer_id, addr = %endpoint.get_remote_address(), "connected");
                    self.emit(NodeEvent::PeerConnected(peer_id.to_string()));
                }
                if is_loopback(endpoint.get_remote_address()) {
                    self.loopback_peers.insert(peer_id);
                }
                if endpoint.is_dialer() {
                    // An address that worked: kept, so a restart dials it again.
                    let addr =
                        strip_p2p(endpoint.get_remote_address()).with(Protocol::P2p(peer_id));
                    let source = self.source_of(&peer_id, &addr);
                    self.observe(addr, source, true);
                }
                self.drive(Input::Connected {
                    peer: peer_id,
                    first,
                    dialed: endpoint
                        .is_dialer()
                        .then(|| endpoint.get_remote_address().clone()),
                });
                if first {
                    self.update_snapshot();
                }
            }
            SwarmEvent::ConnectionClosed {
                peer_id,
                connection_id,
                num_established,
                ..
            } if num_established > 0 => {
                self.reach.disconnected(peer_id, connection_id);
                self.update_snapshot();
            }
            SwarmEvent::ConnectionClosed {
                peer_id,
                connection_id,
                cause,
                ..
            } => {
                self.reach.disconnected(peer_id, connection_id);
                tracing::info!(peer = %peer_id, cause = ?cause, "disconnected");
                self.loopback_peers.remove(&peer_id);
                self.v1_peers.remove(&peer_id);
                self.drive(Input::Disconnected { peer: peer_id });
                self.serving.remove(&peer_id);
                self.emit(NodeEvent::PeerDisconnected(peer_id.to_string()));
                self.update_snapshot();
            }
            SwarmEvent::NewListenAddr { address, .. } => {
                let full = address.with(Protocol::P2p(*self.swarm.local_peer_id()));
                tracing::info!(addr = %full, "listening");
                self.emit(NodeEvent::Listening(full.to_string()));
                self.listen.insert(full);
                self.update_snapshot();
            }
            SwarmEvent::ExpiredListenAddr { address, .. } => {
                let full = address.with(Protocol::P2p(*self.swarm.local_peer_id()));
                self.listen.remove(&full);
                self.update_snapshot();
            }
            SwarmEvent::ListenerClosed {
                listener_id,
                addresses,
                ..
            } if self.reach.listener_closed(listener_id, Instant::now()) => {
                for a in addresses {
                    self.listen
                        .remove(&a.with(Protocol::P2p(*self.swarm.local_peer_id())));
                }
                self.update_snapshot();
            }
            SwarmEvent::ListenerClosed {
                reason: Err(e),
                addresses,
                ..
            } => {
                tracing::warn!(error = %e, "listener closed");
                for a in addresses {
                    self.listen
                        .remove(&a.with(Protocol::P2p(*self.swarm.local_peer_id())));
                }
                self.listen_failures += 1;
                self.update_snapshot();
            }
            SwarmEvent::ListenerError {
                listener_id, error, ..
            } if self.reach.is_relay_listener(listener_id) => {
                tracing::debug!(%error, "relay listener error");
            }
            SwarmEvent::ListenerError { error, .. } => {
                tracing::warn!(%error, "listener error");
                self.listen_failures += 1;
                self.update_snapshot();
            }
            SwarmEvent::OutgoingConnectionError { peer_id, error, .. } => {
                tracing::debug!(peer = ?peer_id, %error, "dial failed");
            }
            SwarmEvent::IncomingConnectionError { error, .. } => {
                tracing::debug!(%error, "incoming connection failed");
            }
            _ => {}
        }
    }

    fn on_gossip(&mut self, event: gossipsub::Event) {
        let gossipsub::Event::Message {
            propagation_source,
            message_id,
            message,
        } = event
        else {
            return;
        };
        let report = |this: &mut Self, acceptance| {
            this.swarm
                .behaviour_mut()
                .gossipsub
                .report_message_validation_result(&message_id, &propagation_source, acceptance);
        };
        if message.topic != self.topic.hash() {
            report(self, MessageAcceptance::Reject);
            return;
        }
        let item = match GossipMessage::decode(&message.data) {
            Ok(GossipMessage::Envelope(e)) => GossipItem::Envelope(e),
            Ok(GossipMessage::Proof(p)) => GossipItem::Proof(p),
            Err(r) => {
                report(self, MessageAcceptance::Reject);
                self.on_rejected(propagation_source, &r);
                return;
            }
        };
        if self.inflight_validations >= MAX_INFLIGHT_VALIDATIONS {
            report(self, MessageAcceptance::Ignore);
            return;
        }
        let Some(rx) = self.store.try_gossip(item) else {
            // The store is saturated: drop it here; anti-entropy fetches it later.
            report(self, MessageAcceptance::Ignore);
            return;
        };
        self.inflight_validations += 1;
        self.inflight.push(
            async move {
                Done::Gossip {
                    id: message_id,
                    source: propagation_source,
                    verdict: rx.await.ok(),
                }
            }
            .boxed(),
        );
    }

    /// One handler for both sync protocols: each event is put in the shape they share
    /// ([`SyncEvent`]), and only what differs by version (the response's handling, and a v2
    /// request refused as unsupported) is told apart.
    fn on_sync(&mut self, event: SyncEvent) {
        match event {
            SyncEvent::Request {
                peer,
                request,
                channel,
            } => self.serve(peer, request, channel),
            SyncEvent::Response {
                peer,
                request_id,
                response: Answer::V1(response),
            } => {
                self.outbound.remove(&request_id);
                self.on_response(peer, response);
            }
            SyncEvent::Response {
                peer,
                request_id,
                response: Answer::V2(response),
            } => {
                self.outbound2.remove(&request_id);
                self.on_response2(peer, response);
            }
            SyncEvent::OutboundFailure {
                peer,
                request_id,
                v2: false,
                error,
            } => {
                self.outbound.remove(&request_id);
                tracing::debug!(%peer, %error, "sync request failed");
                self.settle_store();
                self.drive(Input::SyncFinished { peer, more: false });
            }
            SyncEvent::OutboundFailure {
                peer,
                request_id,
                v2: true,
                error: request_response::OutboundFailure::UnsupportedProtocols,
            } => {
                // A node from before `/coop/sync/2`: the same request in v1.
                self.pipes.remove(&peer);
                let Some((_, request)) = self.outbound2.remove(&request_id) else {
                    self.drive(Input::SyncFinished { peer, more: false });
                    return;
                };
                tracing::debug!(%peer, "peer does not speak /coop/sync/2; syncing in v1");
                self.v1_peers.insert(peer);
                let id = self.swarm.behaviour_mut().sync.send_request(&peer, request);
                self.outbound.insert(id, peer);
            }
            SyncEvent::OutboundFailure {
                peer,
                request_id,
                v2: true,
                error,
            } => {
                self.outbound2.remove(&request_id);
                tracing::debug!(%peer, %error, "sync request failed");
                if let Some(p) = self.pipes.get_mut(&peer) {
                    p.asking = false;
                    p.next = false;
                    p.more = false;
                }
                self.finish_if_idle(peer);
            }
            SyncEvent::InboundFailure { peer, error } => {
                tracing::debug!(%peer, %error, "serving a sync request failed");
            }
            SyncEvent::ResponseSent => {}
        }
    }

    fn serve(&mut self, peer: PeerId, request: SyncRequest, channel: Reply) {
        if !request.is_for(&self.community) {
            let sync = &mut self.swarm.behaviour_mut();
            let _ = match channel {
                Reply::V1(c) => sync
                    .sync
                    .send_response(c, SyncResponse::foreign(&self.community))
                    .is_ok(),
                Reply::V2(c) => sync
                    .sync2
                    .send_response(c, SyncResponse2::foreign(&self.community))
                    .is_ok(),
            };
            return;
        }
        let Some(ask) = request.parts() else {
            self.penalize(peer, 1, "malformed sync request");
            return;
        };
        let serving: usize = self.serving.values().sum();
        let mine = self.serving.get(&peer).copied().unwrap_or(0);
        if serving >= MAX_INFLIGHT_SERVES || mine >= MAX_SERVES_PER_PEER {
            // Dropping the channel tells the peer we are busy; it retries later.
            tracing::debug!(%peer, "busy; sync request not served");
            return;
        }
        *self.serving.entry(peer).or_insert(0) += 1;
        let store = self.store.clone();
        let v2 = matches!(channel, Reply::V2(_));
        self.inflight.push(
            async move {
                Done::Serve {
                    peer,
                    channel,
                    missing: store.missing(ask, v2).await.ok(),
                }
            }
            .boxed(),
        );
    }

    fn on_response(&mut self, peer: PeerId, response: SyncResponse) {
        if !response.is_for(&self.community) {
            tracing::info!(%peer, "sync peer belongs to another community; disconnecting");
            self.drive(Input::Foreign { peer });
            self.drive(Input::SyncFinished { peer, more: false });
            return;
        }
        let mut bad = Vec::new();
        self.sync_bytes_received += payload_bytes(&response.envelopes, &response.proofs);
        if response.envelopes.len() > SYNC_BATCH || response.proofs.len() > SYNC_MAX_PROOFS {
            bad.push(Rejection {
                id: None,
                device: None,
                member: None,
                reason: coop_model::RejectReason::Oversize,
                detail: "sync response over its caps".into(),
            });
        }
        let mut envelopes = Vec::new();
        for b in response.envelopes.iter().take(SYNC_BATCH) {
            match Envelope::decode(b) {
                Ok(e) => envelopes.push((e, None)),
                Err(r) => bad.push(r),
            }
        }
        let mut proofs = Vec::new();
        for b in response.proofs.iter().take(SYNC_MAX_PROOFS) {
            match EquivocationProof::decode(b) {
                Ok(p) => proofs.push(p),
                Err(r) => bad.push(r),
            }
        }
        for r in &bad {
            self.on_rejected(peer, r);
        }
        if envelopes.is_empty() && proofs.is_empty() {
            self.sync_rounds += 1;
            self.drive(Input::SyncFinished { peer, more: false });
            return;
        }
        let store = self.store.clone();
        let more = response.more;
        self.inflight.push(
            async move {
                Done::Ingested {
                    peer,
                    result: store.sync_ingest(envelopes, proofs).await.ok(),
                    more,
                }
            }
            .boxed(),
        );
    }

    fn on_done(&mut self, done: Done) {
        match done {
            Done::Gossip {
                id,
                source,
                verdict,
            } => {
                self.inflight_validations = self.inflight_validations.saturating_sub(1);
                let acceptance = match &verdict {
                    Some(Verdict::Accept) => MessageAcceptance::Accept,
                    Some(Verdict::Reject(_)) => MessageAcceptance::Reject,
                    Some(Verdict::Ignore) | None => MessageAcceptance::Ignore,
                };
                self.swarm
                    .behaviour_mut()
                    .gossipsub
                    .report_message_validation_result(&id, &source, acceptance);
                match verdict {
                    Some(Verdict::Reject(r)) => self.on_rejected(source, &r),
                    Some(Verdict::Ignore) => self.drive(Input::SyncWanted { peer: source }),
                    _ => {}
                }
            }
            Done::Serve {
                peer,
                channel,
                missing,
            } => {
                if let Some(n) = self.serving.get_mut(&peer) {
                    *n = n.saturating_sub(1);
                    if *n == 0 {
                        self.serving.remove(&peer);
                    }
                }
                let Some(m) = missing else { return };
                let community = self.community.0.to_vec();
                let envelopes = m.envelopes.into_iter().map(Into::into).collect();
                let proofs = m.proofs.into_iter().map(Into::into).collect();
                match channel {
                    Reply::V1(c) => {
                        let response = SyncResponse {
                            community,
                            envelopes,
                            proofs,
                            more: m.more,
                        };
                        let _ = self.swarm.behaviour_mut().sync.send_response(c, response);
                    }
                    Reply::V2(c) => {
                        let b = m.bundled.unwrap_or_default();
                        let response = SyncResponse2 {
                            community,
                            bundle: b.bundle,
                            signatures: b.signatures,
                            envelopes,
                            proofs,
                            tops: b
                                .tops
                                .into_iter()
                                .map(|(d, seq)| wire::ClockEntry {
                                    device: d.0.to_vec(),
                                    seq,
                                    head: None,
                                })
                                .collect(),
                            more: m.more,
                        };
                        let _ = self.swarm.behaviour_mut().sync2.send_response(c, response);
                    }
                }
            }
            Done::Clock { peer, clock } => {
                let Some(h) = clock.filter(|_| self.peers.may_sync(&peer)) else {
                    self.drive(Input::SyncFinished { peer, more: false });
                    return;
                };
                if self.sync2_on && !self.v1_peers.contains(&peer) {
                    if self.pipes.contains_key(&peer) {
                        // The running pipeline ends this round.
                        return;
                    }
                    self.pipes.insert(
                        peer,
                        Pipe {
                            clock: h.clock,
                            heads: h.heads,
                            proofs_held: h.proofs_held,
                            asking: false,
                            ingesting: 0,
                            next: true,
                            more: false,
                            progress: false,
                            prev: None,
                        },
                    );
                    self.ask_next(peer);
                    return;
                }
                let req = SyncRequest::new(&self.community, &h.clock, &h.heads, &h.proofs_held);
                let id = self.swarm.behaviour_mut().sync.send_request(&peer, req);
                self.outbound.insert(id, peer);
            }
            Done::Ingested { peer, result, more } => {
                self.sync_rounds += 1;
                let Some(r) = result else {
                    self.settle_store();
                    self.drive(Input::SyncFinished { peer, more: false });
                    return;
                };
                for rej in &r.rejected {
                    self.on_rejected(peer, rej);
                }
                if r.accepted > 0 {
                    tracing::debug!(%peer, accepted = r.accepted, more, "synced");
                    self.emit(NodeEvent::CatchUp {
                        peer: peer.to_string(),
                        accepted: r.accepted,
                        more,
                    });
                }
                let progress = r.accepted > 0 || r.new_proofs > 0;
                if !(more && progress) {
                    self.settle_store();
                }
                self.drive(Input::SyncFinished {
                    peer,
                    more: more && progress,
                });
            }
            Done::Ingested2 { peer, result, bad } => {
                self.sync_rounds += 1;
                for r in &bad {
                    self.on_rejected(peer, r);
                }
                let r = result.unwrap_or_default();
                for rej in &r.rejected {
                    self.on_rejected(peer, rej);
                }
                let more = self.pipes.get(&peer).is_some_and(|p| p.more);
                if r.accepted > 0 {
                    tracing::debug!(%peer, accepted = r.accepted, more, "synced");
                    self.emit(NodeEvent::CatchUp {
                        peer: peer.to_string(),
                        accepted: r.accepted,
                        more,
                    });
                }
                if let Some(p) = self.pipes.get_mut(&peer) {
                    p.ingesting = p.ingesting.saturating_sub(1);
                    if r.accepted > 0 || r.new_proofs > 0 {
                        p.progress = true;
                    } else {
                        // A batch that brought nothing new ends the pipeline: asking on
                        // could loop on what we cannot take.
                        p.next = false;
                        p.more = false;
                    }
                }
                self.ask_next(peer);
                self.finish_if_idle(peer);
            }
            Done::BookSaved => {
                if let Some(b) = &mut self.book {
                    b.saving = false;
                }
            }
            Done::Settled => {}
        }
        self.update_snapshot();
    }

    /// Hands one input to the peer table and performs what it asks, in order (a gossip
    /// score it asks for is read here and handed back).
    fn drive(&mut self, input: Input) {
        let mut todo: std::collections::VecDeque<Action> =
            self.peers.handle(input, Instant::now()).into();
        while let Some(action) = todo.pop_front() {
            match action {
                // Relays hold no ledger: nothing to sync with them.
                Action::SyncRound(peer) if self.reach.is_relay(&peer) => {
                    todo.extend(
                        self.peers
                            .handle(Input::SyncFinished { peer, more: false }, Instant::now()),
                    );
                }
                Action::SyncRound(peer) => self.request_clock(peer),
                Action::SetAppScore { peer, score } => {
                    self.swarm
                        .behaviour_mut()
                        .gossipsub
                        .set_application_score(&peer, score);
                }
                Action::CheckGossipScore { peer, points } => {
                    let score = self.swarm.behaviour().gossipsub.peer_score(&peer);
                    tracing::debug!(%peer, points, ?score, "peer penalized");
                    let next = self
                        .peers
                        .handle(Input::GossipScore { peer, score }, Instant::now());
                    // What the score decides comes before anything queued after it.
                    for a in next.into_iter().rev() {
                        todo.push_front(a);
                    }
                }
                Action::Ban(peer) => {
                    tracing::warn!(%peer, duration = ?BAN_DURATION, "banning misbehaving peer");
                    self.swarm.behaviour_mut().blocked.block_peer(peer);
                    self.emit(NodeEvent::Banned(peer.to_string()));
                    self.update_snapshot();
                }
                Action::Unban(peer) => {
                    self.swarm.behaviour_mut().blocked.unblock_peer(peer);
                    self.swarm
                        .behaviour_mut()
                        .gossipsub
                        .set_application_score(&peer, 0.0);
                    tracing::info!(%peer, "ban lifted");
                }
                Action::Disconnect(peer) => {
                    let _ = self.swarm.disconnect_peer_id(peer);
                }
                Action::Redial { peer, addr } => {
                    let opts = match peer {
                        Some(p) => DialOpts::peer_id(p)
                            .condition(PeerCondition::DisconnectedAndNotDialing)
                            .addresses(vec![addr.clone()])
                            .build(),
                        None => DialOpts::unknown_peer_id().address(addr.clone()).build(),
                    };
                    if let Err(e) = self.swarm.dial(opts) {
                        tracing::debug!(%addr, error = %e, "re-dial failed");
                    }
                }
                Action::DialNeighbour { peer, addrs } => {
                    tracing::debug!(%peer, "dialing a LAN neighbour");
                    // A new local port, not the listening one: two neighbours usually
                    // discover each other within a millisecond and dial at once. From
                    // their listening ports both dials are the same TCP 4-tuple, the SYNs
                    // cross (TCP simultaneous open) and the one connection has two
                    // initiators, so both handshakes fail.
                    let opts = DialOpts::peer_id(peer)
                        .condition(PeerCondition::DisconnectedAndNotDialing)
                        .addresses(addrs)
                        .allocate_new_port()
                        .build();
                    if let Err(e) = self.swarm.dial(opts) {
                        tracing::debug!(%peer, error = %e, "mDNS dial failed");
                    }
                }
            }
        }
    }

    /// Sends the next v2 request of a pipeline when one is due and the pipeline has room.
    fn ask_next(&mut self, peer: PeerId) {
        let may = self.peers.may_sync(&peer);
        let Some(p) = self.pipes.get_mut(&peer) else {
            return;
        };
        if !p.next || p.asking || p.ingesting >= SYNC_PIPELINE_DEPTH || !may {
            return;
        }
        let req = SyncRequest::new(&self.community, &p.clock, &p.heads, &p.proofs_held);
        p.asking = true;
        p.next = false;
        let id = self
            .swarm
            .behaviour_mut()
            .sync2
            .send_request(&peer, req.clone());
        self.outbound2.insert(id, (peer, req));
    }

    /// Ends a peer's v2 sync once nothing of it is in flight.
    fn finish_if_idle(&mut self, peer: PeerId) {
        let idle = match self.pipes.get(&peer) {
            Some(p) => !p.asking && p.ingesting == 0 && !p.next,
            None => true,
        };
        if !idle {
            return;
        }
        let Some(pipe) = self.pipes.remove(&peer) else {
            self.drive(Input::SyncFinished { peer, more: false });
            return;
        };
        if pipe.progress {
            self.settle_store();
        }
        let more = pipe.more && pipe.progress;
        self.drive(Input::SyncFinished { peer, more });
    }

    /// Asks the store for the document snapshot its sync batches left due
    /// (`LocalNode::ingest_parsed` leaves it for the end of the sync, so that it never
    /// stalls a catch-up halfway).
    fn settle_store(&mut self) {
        let store = self.store.clone();
        self.inflight.push(
            async move {
                let _ = store.read(|node| node.snapshot_if_due()).await;
                Done::Settled
            }
            .boxed(),
        );
    }

    /// A v2 response: the next request goes out at once (clock advanced by `tops`) while
    /// this batch is decoded off the loop and ingested after the one before it.
    fn on_response2(&mut self, peer: PeerId, response: SyncResponse2) {
        if !response.is_for(&self.community) {
            tracing::info!(%peer, "sync peer belongs to another community; disconnecting");
            if let Some(p) = self.pipes.get_mut(&peer) {
                p.asking = false;
                p.next = false;
                p.more = false;
            }
            self.drive(Input::Foreign { peer });
            self.finish_if_idle(peer);
            return;
        }
        let mut bad = Vec::new();
        if response.envelopes.len() > SYNC_BATCH || response.proofs.len() > SYNC_MAX_PROOFS {
            bad.push(Rejection {
                id: None,
                device: None,
                member: None,
                reason: coop_model::RejectReason::Oversize,
                detail: "sync response over its caps".into(),
            });
        }
        self.sync_bytes_received += payload_bytes(&response.envelopes, &response.proofs)
            + (response.bundle.len() + response.signatures.len() + 41 * response.tops.len()) as u64;
        let empty = response.bundle.is_empty()
            && response.envelopes.is_empty()
            && response.proofs.is_empty();
        let tops = response.tops();
        let Some(p) = self.pipes.get_mut(&peer) else {
            // Not ours (the pipeline ended): ignore it.
            for r in &bad {
                self.on_rejected(peer, r);
            }
            return;
        };
        p.asking = false;
        p.more = response.more;
        p.next = response.more && !empty && bad.is_empty();
        for (d, seq) in tops {
            let s = p.clock.entry(d).or_insert(0);
            if seq > *s {
                *s = seq;
                p.heads.remove(&d);
            }
        }
        if empty {
            for r in &bad {
                self.on_rejected(peer, r);
            }
            self.sync_rounds += 1;
            self.finish_if_idle(peer);
            return;
        }
        p.ingesting += 1;
        if !response.bundle.is_empty() {
            self.bundled_batches += 1;
        }
        let prev = p.prev.take();
        let (done_tx, done_rx) = oneshot::channel();
        p.prev = Some(done_rx);
        let community = self.community;
        let store = self.store.clone();
        self.inflight.push(
            async move {
                let decoded = tokio::task::spawn_blocking(move || {
                    decode_response2(&community, response, bad)
                })
                .await;
                // A decoding task that panicked brings nothing.
                let (envelopes, proofs, bad) = decoded.unwrap_or_default();
                if let Some(prev) = prev {
                    let _ = prev.await;
                }
                let result = if envelopes.is_empty() && proofs.is_empty() {
                    Some(SyncIngested::default())
                } else {
                    store.sync_ingest(envelopes, proofs).await.ok()
                };
                let _ = done_tx.send(());
                Done::Ingested2 { peer, result, bad }
            }
            .boxed(),
        );
        self.ask_next(peer);
    }

    fn request_clock(&mut self, peer: PeerId) {
        let store = self.store.clone();
        self.inflight.push(
            async move {
                Done::Clock {
                    peer,
                    clock: store.holdings().await.ok(),
                }
            }
            .boxed(),
        );
    }

    fn on_rejected(&mut self, peer: PeerId, r: &Rejection) {
        self.rejected_from_peers += 1;
        tracing::warn!(
            %peer,
            reason = %r.reason,
            author_member = ?r.member.map(|m| m.short()),
            author_device = ?r.device.map(|d| d.short()),
            change = ?r.id.map(|i| i.short()),
            "refused data from peer: {r}"
        );
        self.emit(NodeEvent::Rejected {
            peer: peer.to_string(),
            reason: r.to_string(),
        });
        self.penalize(peer, 1, r.reason.as_str());
    }

    fn penalize(&mut self, peer: PeerId, points: u32, why: &str) {
        tracing::debug!(%peer, points, why, "misbehaviour");
        self.drive(Input::Misbehaved { peer, points });
    }
}

/// Applies observations to the peer store on disk (a blocking read-modify-write).
fn write_book(dir: &DataDir, pending: &[Observation]) -> Result<(), NodeError> {
    let ((), warning) = dir.update_peer_book(|b| {
        for o in pending {
            b.observe(o);
        }
    })?;
    if let Some(w) = warning {
        tracing::warn!("peer store: {w}");
    }
    Ok(())
}

/// mDNS's (peer, address) pairs grouped by peer, in a stable order.
fn by_peer(list: Vec<(PeerId, Multiaddr)>) -> std::collections::BTreeMap<PeerId, Vec<Multiaddr>> {
    let mut out: std::collections::BTreeMap<PeerId, Vec<Multiaddr>> = Default::default();
    for (peer, addr) in list {
        out.entry(peer).or_default().push(addr);
    }
    out
}

/// The address without its `/p2p/<id>` parts.
fn strip_p2p(addr: &Multiaddr) -> Multiaddr {
    addr.iter()
        .filter(|p| !matches!(p, Protocol::P2p(_)))
        .collect()
}

/// Whether the address is on a loopback interface.
fn is_loopback(addr: &Multiaddr) -> bool {
    match addr.iter().next() {
        Some(Protocol::Ip4(ip)) => ip.is_loopback(),
        Some(Protocol::Ip6(ip)) => ip.is_loopback(),
        _ => false,
    }
}

/// A v2 response's bundle, envelopes and proofs decoded (off the swarm loop): what decoded,
/// and a refusal for each thing that did not, added to `bad`.
fn decode_response2(
    community: &CommunityId,
    response: SyncResponse2,
    mut bad: Vec<Rejection>,
) -> (Vec<SyncedChange>, Vec<EquivocationProof>, Vec<Rejection>) {
    let mut envelopes = Vec::new();
    if !response.bundle.is_empty() || !response.signatures.is_empty() {
        // The decoder parses every change: they go to the gate parsed.
        match crate::bundle::decode_parsed(community, &response.bundle, &response.signatures) {
            Ok(e) => envelopes = e.into_iter().map(|(e, c)| (e, Some(c))).collect(),
            Err(r) => bad.push(r),
        }
    }
    for b in response.envelopes.iter().take(SYNC_BATCH) {
        match Envelope::decode(b) {
            Ok(e) => envelopes.push((e, None)),
            Err(r) => bad.push(r),
        }
    }
    let mut proofs = Vec::new();
    for b in response.proofs.iter().take(SYNC_MAX_PROOFS) {
        match EquivocationProof::decode(b) {
            Ok(p) => proofs.push(p),
            Err(r) => bad.push(r),
        }
    }
    (envelopes, proofs, bad)
}

/// Bytes of the envelopes and proofs of a sync response.
fn payload_bytes(envelopes: &[serde_bytes::ByteBuf], proofs: &[serde_bytes::ByteBuf]) -> u64 {
    envelopes.iter().chain(proofs).map(|b| b.len() as u64).sum()
}
