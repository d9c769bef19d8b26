//! Reaching members in other homes, behind NATs: the relay client, AutoNAT, DCUtR and
//! rendezvous parts of a node, and the limits a community's relay (`coop relay`,
//! [`crate::relay`]) enforces.
//!
//! # How a node uses its relays (`coop up --relay ADDR`)
//! Every node that is given relays reserves a slot on each (it listens on
//! `<relay>/p2p-circuit`), whatever AutoNAT says: a reservation is cheap, and a node that
//! believes itself public can still sit behind a firewall that AutoNAT cannot see. Once the
//! relay holds the reservation, the node registers its relayed address at the relay's
//! rendezvous point under [`rendezvous_namespace`] (a hash of the community id, so the
//! rendezvous table does not name the community) and asks the rendezvous point who else is
//! registered there, at once and then every [`DISCOVER_INTERVAL`] (at most
//! [`DISCOVER_LIMIT`] registrations each time). It dials each member it is not connected to
//! through the relay; when two members find each other, the one with the smaller peer id
//! dials first and the other only if still unconnected a round later, so two crossing
//! relayed connections are rare. DCUtR then tries to upgrade the relayed connection to a
//! direct one (TCP simultaneous open through both NATs); if that fails, the relayed
//! connection stays and gossip and catch-up sync run over it.
//!
//! AutoNAT's verdict (public, private, unknown) is reported in the status
//! ([`crate::reach_status::ReachStatus`]), along with the reservations and, per peer,
//! whether the connection is direct or relayed.
//!
//! The state here is driven by the swarm loop in `net.rs`: it feeds [`Reach`] the events that
//! concern it and performs the [`ReachAction`]s it returns.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use coop_model::CommunityId;
use libp2p::autonat;
use libp2p::core::muxing::StreamMuxerBox;
use libp2p::core::transport::upgrade::Version;
use libp2p::core::transport::ListenerId;
use libp2p::core::transport::{Boxed, OrTransport};
use libp2p::core::ConnectedPoint;
use libp2p::identity::Keypair;
use libp2p::multiaddr::Protocol;
use libp2p::pnet::{PnetConfig, PreSharedKey};
use libp2p::rendezvous::{self, Namespace};
use libp2p::swarm::{ConnectionId, NetworkBehaviour};
use libp2p::{dcutr, noise, relay, tcp, yamux, Multiaddr, PeerId, Transport};
use sha2::{Digest, Sha256};

use crate::reach_status::{PeerLink, ReachStatus, RelayLink};

/// Most relays a node uses.
pub const MAX_RELAYS: usize = 8;
/// How often a node asks each relay's rendezvous point who is registered.
pub const DISCOVER_INTERVAL: Duration = Duration::from_secs(30);
/// Most registrations asked for in one discovery.
pub const DISCOVER_LIMIT: u64 = 64;
/// The first wait before listening on a relay again after it failed or the relay went away;
/// it doubles up to [`RELAY_RETRY_MAX`].
pub const RELAY_RETRY_MIN: Duration = Duration::from_secs(2);
/// The longest wait before trying a relay again.
pub const RELAY_RETRY_MAX: Duration = Duration::from_secs(60);
/// How long a registration at the rendezvous point lives (the protocol's minimum, 2 h); the
/// node registers again each time its reservation is renewed and after reconnecting.
pub const REGISTRATION_TTL: u64 = rendezvous::MIN_TTL;
/// How long a failed registration waits before it is tried again.
pub const REGISTER_RETRY: Duration = Duration::from_secs(10);
/// Most peers remembered between discovery rounds (to let the larger peer id dial too).
const MAX_SEEN: usize = 256;

// The limits of `coop relay` (the circuit relay v2 server). libp2p's defaults (a circuit
// lives 2 minutes and carries 128 KiB) are made for a public relay that only bridges a
// hole punch; a co-op's relay also carries catch-up sync when hole punching fails, and a
// 10 000-change catch-up is a few MiB. These allow that while keeping one small machine
// safe from a member's runaway node.

/// Most reservations the relay holds (members' devices behind NATs).
pub const RELAY_MAX_RESERVATIONS: usize = 128;
/// Most reservations per peer.
pub const RELAY_MAX_RESERVATIONS_PER_PEER: usize = 2;
/// How long a reservation lasts before the client renews it.
pub const RELAY_RESERVATION_DURATION: Duration = Duration::from_secs(60 * 60);
/// Most circuits relayed at once.
pub const RELAY_MAX_CIRCUITS: usize = 64;
/// Most circuits per peer at once.
pub const RELAY_MAX_CIRCUITS_PER_PEER: usize = 8;
/// The longest a circuit lives; a node whose relayed connection closes reconnects.
pub const RELAY_MAX_CIRCUIT_DURATION: Duration = Duration::from_secs(30 * 60);
/// Most bytes one circuit carries (both directions together).
pub const RELAY_MAX_CIRCUIT_BYTES: u64 = 64 * 1024 * 1024;

/// The relay server's configuration: the limits above, plus libp2p's default rate limits
/// (per peer and per IP) on new reservations and circuits.
pub fn relay_server_config() -> relay::Config {
    relay::Config {
        max_reservations: RELAY_MAX_RESERVATIONS,
        max_reservations_per_peer: RELAY_MAX_RESERVATIONS_PER_PEER,
        reservation_duration: RELAY_RESERVATION_DURATION,
        max_circuits: RELAY_MAX_CIRCUITS,
        max_circuits_per_peer: RELAY_MAX_CIRCUITS_PER_PEER,
        max_circuit_duration: RELAY_MAX_CIRCUIT_DURATION,
        max_circuit_bytes: RELAY_MAX_CIRCUIT_BYTES,
        ..relay::Config::default()
    }
}

/// AutoNAT's configuration (client and server alike). Private addresses count: a
/// co-op's relay is often on a LAN or a VPN, and the NAT tests run on private ranges.
pub fn autonat_config() -> autonat::Config {
    autonat::Config {
        boot_delay: Duration::from_secs(5),
        retry_interval: Duration::from_secs(30),
        only_global_ips: false,
        ..autonat::Config::default()
    }
}

/// The rendezvous namespace of a community: `coop-` and the first 16 bytes, in hex, of
/// SHA-256(`"coop rendezvous v1"` ‖ community id). The rendezvous point stores
/// registrations under it without learning the community id from it.
pub fn rendezvous_namespace(community: &CommunityId) -> Namespace {
    let mut h = Sha256::new();
    h.update(b"coop rendezvous v1");
    h.update(community.0);
    let digest = h.finalize();
    Namespace::new(format!("coop-{}", hex::encode(&digest[..16])))
        .expect("37 characters is within the namespace limit")
}

/// TCP and relayed circuits, each through pnet when the community has a LAN key, then
/// Noise and Yamux. Relayed circuits go through pnet too, so a relay that carries a
/// circuit learns nothing from it and nodes without the key cannot use it.
pub fn transport(
    keypair: &Keypair,
    psk: Option<PreSharedKey>,
    relay_transport: relay::client::Transport,
) -> Boxed<(PeerId, StreamMuxerBox)> {
    let tcp = tcp::tokio::Transport::new(tcp::Config::default().nodelay(true));
    let noise = noise::Config::new(keypair).expect("an ed25519 key signs noise keys");
    let timeout = Duration::from_secs(20);
    match psk {
        Some(psk) => OrTransport::new(
            relay_transport.and_then(move |s, _| PnetConfig::new(psk).handshake(s)),
            tcp.and_then(move |s, _| PnetConfig::new(psk).handshake(s)),
        )
        .upgrade(Version::V1Lazy)
        .authenticate(noise)
        .multiplex(yamux::Config::default())
        .timeout(timeout)
        .boxed(),
        None => OrTransport::new(relay_transport, tcp)
            .upgrade(Version::V1Lazy)
            .authenticate(noise)
            .multiplex(yamux::Config::default())
            .timeout(timeout)
            .boxed(),
    }
}

/// The node's reachability behaviours, one field of the node's behaviour.
#[derive(NetworkBehaviour)]
pub struct Behaviour {
    relay_client: relay::client::Behaviour,
    dcutr: dcutr::Behaviour,
    autonat: autonat::Behaviour,
    rendezvous: rendezvous::client::Behaviour,
}

impl std::fmt::Debug for Behaviour {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("reach::Behaviour").finish_non_exhaustive()
    }
}

impl Behaviour {
    /// The behaviours, and the relay client transport that goes with them.
    pub fn new(keypair: &Keypair) -> (Behaviour, relay::client::Transport) {
        let peer_id = keypair.public().to_peer_id();
        let (relay_transport, relay_client) = relay::client::new(peer_id);
        let behaviour = Behaviour {
            relay_client,
            dcutr: dcutr::Behaviour::new(peer_id),
            autonat: autonat::Behaviour::new(peer_id, autonat_config()),
            rendezvous: rendezvous::client::Behaviour::new(keypair.clone()),
        };
        (behaviour, relay_transport)
    }
}

/// What the swarm loop does for [`Reach`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ReachAction {
    /// Listen on a relay's circuit address (reserve a slot); report the listener id with
    /// [`Reach::listening`].
    Listen {
        /// Index of the relay.
        relay: usize,
        /// `<relay>/p2p-circuit`.
        addr: Multiaddr,
    },
    /// Dial a member found at a rendezvous point, at these (relayed) addresses.
    Dial {
        /// The member's node.
        peer: PeerId,
        /// Its registered addresses.
        addrs: Vec<Multiaddr>,
    },
}

#[derive(Debug)]
struct RelayState {
    /// As given, ending in `/p2p/<relay>`.
    addr: Multiaddr,
    peer: PeerId,
    listener: Option<ListenerId>,
    connections: usize,
    reserved: bool,
    registered: bool,
    next_register: Instant,
    next_listen: Instant,
    backoff: Duration,
}

/// The reachability state of a node: its relays, AutoNAT's verdict, and how each
/// connection runs (direct or relayed).
#[derive(Debug)]
pub struct Reach {
    local: PeerId,
    namespace: Namespace,
    relays: Vec<RelayState>,
    nat: autonat::NatStatus,
    /// Every open connection: its peer and whether it runs through a relay. Bounded by the
    /// swarm's connection limits.
    connections: HashMap<ConnectionId, (PeerId, bool)>,
    next_discover: Instant,
    /// Members seen at a rendezvous point and not connected, with the rounds seen.
    seen: HashMap<PeerId, u8>,
    hole_punches: u64,
    hole_punch_failures: u64,
}

impl Reach {
    /// The state for a node of `community` with these relays (each a multiaddr ending in
    /// `/p2p/<relay peer id>`; at most [`MAX_RELAYS`] are used).
    pub fn new(
        local: PeerId,
        community: &CommunityId,
        relays: Vec<Multiaddr>,
        now: Instant,
    ) -> Result<Reach, String> {
        let mut states = Vec::new();
        for addr in relays.into_iter().take(MAX_RELAYS) {
            let peer = relay_peer(&addr)
                .ok_or_else(|| format!("relay address {addr} does not end in /p2p/<peer id>"))?;
            states.push(RelayState {
                addr,
                peer,
                listener: None,
                connections: 0,
                reserved: false,
                registered: false,
                next_register: now,
                next_listen: now,
                backoff: RELAY_RETRY_MIN,
            });
        }
        Ok(Reach {
            local,
            namespace: rendezvous_namespace(community),
            relays: states,
            nat: autonat::NatStatus::Unknown,
            connections: HashMap::new(),
            next_discover: now,
            seen: HashMap::new(),
            hole_punches: 0,
            hole_punch_failures: 0,
        })
    }

    /// Whether `peer` is one of this node's relays.
    pub fn is_relay(&self, peer: &PeerId) -> bool {
        self.relays.iter().any(|r| r.peer == *peer)
    }

    /// Once a second: (re)listen on relays without a listener, register where the
    /// reservation is held, ask the rendezvous points who is there.
    pub fn tick(&mut self, b: &mut Behaviour, now: Instant) -> Vec<ReachAction> {
        let mut out = Vec::new();
        for (i, r) in self.relays.iter_mut().enumerate() {
            if r.listener.is_none() && now >= r.next_listen {
                r.next_listen = now + r.backoff;
                r.backoff = (r.backoff * 2).min(RELAY_RETRY_MAX);
                out.push(ReachAction::Listen {
                    relay: i,
                    addr: r.addr.clone().with(Protocol::P2pCircuit),
                });
            }
        }
        self.register_due(b, now);
        if now >= self.next_discover {
            self.next_discover = now + DISCOVER_INTERVAL;
            for r in self.relays.iter().filter(|r| r.connections > 0) {
                b.rendezvous.discover(
                    Some(self.namespace.clone()),
                    None,
                    Some(DISCOVER_LIMIT),
                    r.peer,
                );
            }
        }
        out
    }

    fn register_due(&mut self, b: &mut Behaviour, now: Instant) {
        for r in self
            .relays
            .iter_mut()
            .filter(|r| r.reserved && !r.registered && now >= r.next_register)
        {
            r.next_register = now + REGISTER_RETRY;
            if let Err(e) =
                b.rendezvous
                    .register(self.namespace.clone(), r.peer, Some(REGISTRATION_TTL))
            {
                tracing::debug!(relay = %r.peer, error = %e, "cannot register yet");
            }
        }
    }

    /// The swarm accepted a [`ReachAction::Listen`] (or refused it: `None`).
    pub fn listening(&mut self, relay: usize, listener: Option<ListenerId>) {
        if let Some(r) = self.relays.get_mut(relay) {
            r.listener = listener;
        }
    }

    /// Whether a listener is a relay's.
    pub fn is_relay_listener(&self, id: ListenerId) -> bool {
        self.relays.iter().any(|r| r.listener == Some(id))
    }

    /// A listener closed. Returns whether it was a relay's (then it is tried again later).
    pub fn listener_closed(&mut self, id: ListenerId, now: Instant) -> bool {
        let Some(r) = self.relays.iter_mut().find(|r| r.listener == Some(id)) else {
            return false;
        };
        tracing::info!(relay = %r.addr, "relay listener closed; will try again");
        r.listener = None;
        r.reserved = false;
        r.registered = false;
        r.next_listen = r.next_listen.max(now + RELAY_RETRY_MIN);
        true
    }

    /// A connection opened.
    pub fn connected(
        &mut self,
        b: &mut Behaviour,
        peer: PeerId,
        id: ConnectionId,
        endpoint: &ConnectedPoint,
        now: Instant,
    ) {
        let relayed = is_relayed(endpoint);
        self.connections.insert(id, (peer, relayed));
        self.seen.remove(&peer);
        if let Some(r) = self.relays.iter_mut().find(|r| r.peer == peer) {
            r.connections += 1;
            if r.connections == 1 {
                b.autonat.add_server(peer, Some(r.addr.clone()));
                // Ask who is there as soon as the relay is reachable.
                self.next_discover = now;
            }
        }
        if relayed {
            tracing::info!(%peer, "connected through a relay");
        }
    }

    /// A connection closed.
    pub fn disconnected(&mut self, peer: PeerId, id: ConnectionId) {
        self.connections.remove(&id);
        if let Some(r) = self.relays.iter_mut().find(|r| r.peer == peer) {
            r.connections = r.connections.saturating_sub(1);
            if r.connections == 0 {
                r.reserved = false;
                r.registered = false;
            }
        }
    }

    /// An event of the reachability behaviours.
    pub fn on_event(
        &mut self,
        b: &mut Behaviour,
        event: BehaviourEvent,
        now: Instant,
    ) -> Vec<ReachAction> {
        match event {
            BehaviourEvent::RelayClient(relay::client::Event::ReservationReqAccepted {
                relay_peer_id,
                renewal,
                ..
            }) => {
                if let Some(r) = self.relays.iter_mut().find(|r| r.peer == relay_peer_id) {
                    if !r.reserved {
                        tracing::info!(relay = %r.addr, "reservation held on relay");
                    }
                    r.reserved = true;
                    r.backoff = RELAY_RETRY_MIN;
                    // A renewal refreshes the registration as well.
                    if renewal || !r.registered {
                        r.registered = false;
                        r.next_register = now;
                    }
                }
                self.register_due(b, now);
                Vec::new()
            }
            BehaviourEvent::RelayClient(_) => Vec::new(),
            BehaviourEvent::Rendezvous(rendezvous::client::Event::Registered {
                rendezvous_node,
                ..
            }) => {
                if let Some(r) = self.relays.iter_mut().find(|r| r.peer == rendezvous_node) {
                    tracing::info!(relay = %r.addr, "registered at the rendezvous point");
                    r.registered = true;
                }
                // Someone may have been waiting for us: look again now.
                self.next_discover = now;
                Vec::new()
            }
            BehaviourEvent::Rendezvous(rendezvous::client::Event::RegisterFailed {
                rendezvous_node,
                error,
                ..
            }) => {
                tracing::warn!(relay = %rendezvous_node, ?error, "rendezvous registration refused");
                Vec::new()
            }
            BehaviourEvent::Rendezvous(rendezvous::client::Event::Discovered {
                registrations,
                ..
            }) => self.discovered(registrations),
            BehaviourEvent::Rendezvous(rendezvous::client::Event::DiscoverFailed {
                rendezvous_node,
                error,
                ..
            }) => {
                tracing::debug!(relay = %rendezvous_node, ?error, "rendezvous discovery failed");
                Vec::new()
            }
            BehaviourEvent::Rendezvous(_) => Vec::new(),
            BehaviourEvent::Dcutr(dcutr::Event {
                remote_peer_id,
                result,
            }) => {
                match result {
                    Ok(_) => {
                        self.hole_punches += 1;
                        tracing::info!(peer = %remote_peer_id, "hole punched: direct connection");
                    }
                    Err(e) => {
                        self.hole_punch_failures += 1;
                        tracing::info!(peer = %remote_peer_id, error = %e,
                            "hole punch failed; staying relayed");
                    }
                }
                Vec::new()
            }
            BehaviourEvent::Autonat(autonat::Event::StatusChanged { old, new }) => {
                tracing::info!(?old, ?new, "reachability changed");
                self.nat = new;
                Vec::new()
            }
            BehaviourEvent::Autonat(_) => Vec::new(),
        }
    }

    fn discovered(&mut self, registrations: Vec<rendezvous::Registration>) -> Vec<ReachAction> {
        let mut out = Vec::new();
        let connected: std::collections::HashSet<PeerId> =
            self.connections.values().map(|(p, _)| *p).collect();
        for reg in registrations.into_iter().take(DISCOVER_LIMIT as usize) {
            let peer = reg.record.peer_id();
            if peer == self.local || connected.contains(&peer) || self.is_relay(&peer) {
                continue;
            }
            // The smaller peer id dials at once; the larger one only when the peer is still
            // unconnected a round later (its reservation may have failed).
            let rounds = if self.seen.len() < MAX_SEEN || self.seen.contains_key(&peer) {
                let n = self.seen.entry(peer).or_insert(0);
                *n = n.saturating_add(1);
                *n
            } else {
                1
            };
            if self.local < peer || rounds >= 2 {
                let addrs: Vec<Multiaddr> = reg.record.addresses().to_vec();
                if !addrs.is_empty() {
                    tracing::debug!(%peer, "found at the rendezvous point; dialing");
                    out.push(ReachAction::Dial { peer, addrs });
                }
            }
        }
        out
    }

    /// What `coop status` shows.
    pub fn status(&self) -> ReachStatus {
        let (reachability, public_address) = match &self.nat {
            autonat::NatStatus::Public(a) => ("public", Some(a.to_string())),
            autonat::NatStatus::Private => ("private", None),
            autonat::NatStatus::Unknown => ("unknown", None),
        };
        let mut by_peer: std::collections::BTreeMap<PeerId, bool> = Default::default();
        for (peer, relayed) in self.connections.values() {
            let direct = by_peer.entry(*peer).or_insert(false);
            *direct |= !relayed;
        }
        ReachStatus {
            reachability: reachability.into(),
            public_address,
            relays: self
                .relays
                .iter()
                .map(|r| RelayLink {
                    address: r.addr.to_string(),
                    connected: r.connections > 0,
                    reserved: r.reserved,
                })
                .collect(),
            connections: by_peer
                .into_iter()
                .map(|(peer, direct)| PeerLink {
                    peer: peer.to_string(),
                    via: if direct {
                        PeerLink::DIRECT
                    } else {
                        PeerLink::RELAYED
                    }
                    .into(),
                    relay: self.is_relay(&peer),
                })
                .collect(),
            hole_punches: self.hole_punches,
            hole_punch_failures: self.hole_punch_failures,
        }
    }
}

/// The peer id a relay address ends with.
pub fn relay_peer(addr: &Multiaddr) -> Option<PeerId> {
    match addr.iter().last() {
        Some(Protocol::P2p(p)) => Some(p),
        _ => None,
    }
}

fn is_relayed(endpoint: &ConnectedPoint) -> bool {
    let addr = match endpoint {
        ConnectedPoint::Dialer { address, .. } => address,
        ConnectedPoint::Listener { local_addr, .. } => local_addr,
    };
    addr.iter().any(|p| p == Protocol::P2pCircuit)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_namespace_hides_the_community_id_and_differs_between_communities() {
        let a = CommunityId([7; 32]);
        let b = CommunityId([8; 32]);
        let na = rendezvous_namespace(&a).to_string();
        assert_eq!(na, rendezvous_namespace(&a).to_string());
        assert_ne!(na, rendezvous_namespace(&b).to_string());
        assert!(na.starts_with("coop-") && na.len() == 37, "{na}");
        assert!(!na.contains(&hex::encode(a.0)[..8]));
    }

    #[test]
    fn a_relay_address_must_name_the_relay() {
        let now = Instant::now();
        let c = CommunityId([1; 32]);
        let me = PeerId::random();
        let bad: Multiaddr = "/ip4/10.0.0.1/tcp/4001".parse().unwrap();
        assert!(Reach::new(me, &c, vec![bad], now).is_err());
        let relay = PeerId::random();
        let good: Multiaddr = format!("/ip4/10.0.0.1/tcp/4001/p2p/{relay}")
            .parse()
            .unwrap();
        let reach = Reach::new(me, &c, vec![good], now).unwrap();
        assert!(reach.is_relay(&relay));
        let s = reach.status();
        assert_eq!(s.reachability, "unknown");
        assert_eq!(s.relays.len(), 1);
        assert!(!s.relays[0].reserved);
    }

    #[test]
    fn relay_limits_allow_a_catch_up_sync() {
        let c = relay_server_config();
        assert!(c.max_circuit_bytes >= 32 * 1024 * 1024);
        assert!(c.max_circuit_duration >= Duration::from_secs(600));
    }
}
