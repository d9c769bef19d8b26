//! `coop relay`: a long-running relay for one community — a circuit relay v2 server, an
//! AutoNAT server and a rendezvous point — for a machine members can reach (a member's
//! node with a port forward, a small rented server).
//!
//! It holds no ledger and no member keys: it forwards bytes between members' nodes, tells
//! them whether they are reachable, and keeps the rendezvous table of the community's
//! namespace ([`crate::reach::rendezvous_namespace`]). It speaks pnet exactly when the
//! community has a LAN key (so nodes of other communities cannot even finish a handshake),
//! and identifies itself with the community's identify protocol, so the community's nodes
//! accept it and the relay disconnects peers that identify as another community's.
//!
//! Its limits: the circuit limits of [`crate::reach::relay_server_config`], at most
//! [`RELAY_MAX_CONNECTIONS`] connections ([`RELAY_MAX_PER_PEER`] per peer), rendezvous
//! registrations bounded by [`RENDEZVOUS_MAX_REGISTRATIONS`].
//!
//! The event loop owns the swarm alone, like the node's (`net.rs`).

use std::future::Future;
use std::path::{Path, PathBuf};
use std::time::Duration;

use coop_model::CommunityId;
use futures::StreamExt;
use libp2p::identity::Keypair;
use libp2p::multiaddr::Protocol;
use libp2p::pnet::PreSharedKey;
use libp2p::swarm::{NetworkBehaviour, SwarmEvent};
use libp2p::{
    autonat, connection_limits, identify, ping, relay, rendezvous, Multiaddr, PeerId, Swarm,
};

use crate::error::NodeError;
use crate::{reach, wire};

/// Most connections the relay keeps open.
pub const RELAY_MAX_CONNECTIONS: u32 = 512;
/// Most connections per peer.
pub const RELAY_MAX_PER_PEER: u32 = 4;
/// Most connections being set up.
pub const RELAY_MAX_PENDING: u32 = 64;
/// Most rendezvous registrations in total (one per member's node and relay is usual).
pub const RENDEZVOUS_MAX_REGISTRATIONS: usize = 1024;
/// Most rendezvous registrations per peer.
pub const RENDEZVOUS_MAX_PER_PEER: usize = 4;
/// How long start-up waits for the listeners to report their addresses.
pub const RELAY_LISTEN_TIMEOUT: Duration = Duration::from_secs(30);
/// Connections with nothing to do are closed after this long. Reservations keep their
/// connection open while they last.
pub const RELAY_IDLE_TIMEOUT: Duration = Duration::from_secs(120);
/// The identity key file in the relay's data dir.
pub const RELAY_KEY_FILE: &str = "relay.key";

/// What a relay serves and where.
#[derive(Debug, Clone)]
pub struct RelayOptions {
    /// The community it serves (from an invite code).
    pub community: CommunityId,
    /// The community's LAN key, when it has one (from the invite code).
    pub psk: Option<[u8; 32]>,
    /// Addresses to listen on (multiaddrs).
    pub listen: Vec<String>,
    /// Where to keep the identity key (a stable peer id across restarts); `None`: a new
    /// identity every start.
    pub data_dir: Option<PathBuf>,
}

/// The relay's behaviours.
#[derive(NetworkBehaviour)]
pub struct RelayBehaviour {
    limits: connection_limits::Behaviour,
    relay: relay::Behaviour,
    autonat: autonat::Behaviour,
    rendezvous: rendezvous::server::Behaviour,
    identify: identify::Behaviour,
    ping: ping::Behaviour,
}

impl std::fmt::Debug for RelayBehaviour {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RelayBehaviour").finish_non_exhaustive()
    }
}

/// A relay that listens and has not started serving yet.
pub struct Relay {
    swarm: Swarm<RelayBehaviour>,
    community: CommunityId,
    addresses: Vec<Multiaddr>,
}

impl std::fmt::Debug for Relay {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Relay")
            .field("peer", self.swarm.local_peer_id())
            .field("addresses", &self.addresses)
            .finish_non_exhaustive()
    }
}

impl Relay {
    /// Loads or creates the identity, builds the swarm, listens, and returns once every
    /// listener has reported its addresses (or failed).
    pub async fn start(opts: RelayOptions) -> Result<Relay, NodeError> {
        if opts.listen.is_empty() {
            return Err(NodeError::InvalidInput(
                "a relay needs at least one --listen address".into(),
            ));
        }
        let listen = opts
            .listen
            .iter()
            .map(|a| {
                a.trim()
                    .parse::<Multiaddr>()
                    .map_err(|e| NodeError::InvalidInput(format!("bad listen address {a:?}: {e}")))
            })
            .collect::<Result<Vec<_>, _>>()?;
        let keypair = match &opts.data_dir {
            Some(dir) => load_or_create_key(dir)?,
            None => Keypair::generate_ed25519(),
        };
        let peer_id = keypair.public().to_peer_id();
        let psk = opts.psk.map(PreSharedKey::new);
        let limits = connection_limits::ConnectionLimits::default()
            .with_max_established(Some(RELAY_MAX_CONNECTIONS))
            .with_max_established_per_peer(Some(RELAY_MAX_PER_PEER))
            .with_max_pending_incoming(Some(RELAY_MAX_PENDING))
            .with_max_pending_outgoing(Some(RELAY_MAX_PENDING));
        let mut relay = relay::Behaviour::new(peer_id, reach::relay_server_config());
        // Serve reservations from the start: the relay is reachable by definition (the
        // operator gave its address to the members); libp2p's default waits for an
        // external address to be confirmed first.
        relay.set_status(Some(relay::Status::Enable));
        let behaviour = RelayBehaviour {
            limits: connection_limits::Behaviour::new(limits),
            relay,
            autonat: autonat::Behaviour::new(peer_id, reach::autonat_config()),
            rendezvous: rendezvous::server::Behaviour::new(
                rendezvous::server::Config::default()
                    .with_max_registration_total(RENDEZVOUS_MAX_REGISTRATIONS)
                    .with_max_registration_per_peer(RENDEZVOUS_MAX_PER_PEER)
                    .with_max_stored_cookies(RENDEZVOUS_MAX_REGISTRATIONS),
            ),
            identify: identify::Behaviour::new(
                identify::Config::new(wire::identify_protocol(&opts.community), keypair.public())
                    .with_agent_version(format!("coop-relay/{}", env!("CARGO_PKG_VERSION"))),
            ),
            ping: ping::Behaviour::new(ping::Config::new()),
        };
        let mut swarm = Swarm::new(
            wire::transport(&keypair, psk),
            behaviour,
            peer_id,
            libp2p::swarm::Config::with_tokio_executor()
                .with_idle_connection_timeout(RELAY_IDLE_TIMEOUT),
        );
        let mut pending = 0usize;
        for addr in &listen {
            swarm
                .listen_on(addr.clone())
                .map_err(|e| NodeError::network(format!("cannot listen on {addr}"), e))?;
            pending += 1;
        }
        let mut addresses = Vec::new();
        let mut failures = Vec::new();
        let deadline = tokio::time::Instant::now() + RELAY_LISTEN_TIMEOUT;
        // Each listener reports at least one address or an error; a wildcard one reports
        // one address per interface, at once.
        while addresses.is_empty() || pending > 0 {
            let event = tokio::time::timeout_at(deadline, swarm.select_next_some()).await;
            match event {
                Err(_) => break,
                Ok(SwarmEvent::NewListenAddr { address, .. }) => {
                    swarm.add_external_address(address.clone());
                    addresses.push(address.with(Protocol::P2p(peer_id)));
                    pending = pending.saturating_sub(1);
                }
                Ok(SwarmEvent::ListenerClosed {
                    reason: Err(e),
                    addresses: a,
                    ..
                }) => {
                    failures.push(e.to_string());
                    if a.is_empty() {
                        pending = pending.saturating_sub(1);
                    }
                }
                Ok(SwarmEvent::ListenerError { error, .. }) => failures.push(error.to_string()),
                Ok(_) => {}
            }
            if pending == 0 && addresses.is_empty() {
                break;
            }
        }
        // Let a wildcard listener finish reporting its interfaces.
        while let Ok(Some(SwarmEvent::NewListenAddr { address, .. })) =
            tokio::time::timeout(Duration::from_millis(200), swarm.next()).await
        {
            swarm.add_external_address(address.clone());
            addresses.push(address.with(Protocol::P2p(peer_id)));
        }
        if addresses.is_empty() {
            return Err(NodeError::network_msg(format!(
                "could not listen on {}{}",
                opts.listen.join(", "),
                if failures.is_empty() {
                    String::new()
                } else {
                    format!(": {}", failures.join("; "))
                }
            )));
        }
        addresses.sort();
        addresses.dedup();
        Ok(Relay {
            swarm,
            community: opts.community,
            addresses,
        })
    }

    /// Every address it can be reached at, each ending in `/p2p/<relay peer id>`.
    pub fn addresses(&self) -> &[Multiaddr] {
        &self.addresses
    }

    /// The relay's peer id.
    pub fn peer_id(&self) -> PeerId {
        *self.swarm.local_peer_id()
    }

    /// Serves until `shutdown` resolves.
    pub async fn run(mut self, shutdown: impl Future<Output = ()>) {
        let protocol = wire::identify_protocol(&self.community);
        tokio::pin!(shutdown);
        loop {
            tokio::select! {
                _ = &mut shutdown => break,
                event = self.swarm.select_next_some() => self.on_event(event, &protocol),
            }
        }
        tracing::info!("relay stopped");
    }

    fn on_event(&mut self, event: SwarmEvent<RelayBehaviourEvent>, protocol: &str) {
        match event {
            SwarmEvent::Behaviour(RelayBehaviourEvent::Identify(identify::Event::Received {
                peer_id,
                info,
                ..
            })) if info.protocol_version != protocol => {
                tracing::info!(peer = %peer_id, version = %info.protocol_version,
                    "peer of another community; disconnecting");
                let _ = self.swarm.disconnect_peer_id(peer_id);
            }
            SwarmEvent::Behaviour(RelayBehaviourEvent::Relay(e)) => {
                tracing::info!(event = ?e, "relay");
            }
            SwarmEvent::Behaviour(RelayBehaviourEvent::Rendezvous(e)) => match e {
                rendezvous::server::Event::PeerRegistered { peer, registration } => {
                    tracing::debug!(%peer, namespace = %registration.namespace,
                        addresses = registration.record.addresses().len(), "registered");
                }
                rendezvous::server::Event::DiscoverServed {
                    enquirer,
                    registrations,
                } => {
                    tracing::debug!(peer = %enquirer, found = registrations.len(), "discovery served");
                }
                other => tracing::debug!(event = ?other, "rendezvous"),
            },
            SwarmEvent::NewListenAddr { address, .. } => {
                self.swarm.add_external_address(address.clone());
                tracing::info!(addr = %address, "listening");
            }
            SwarmEvent::ConnectionEstablished {
                peer_id, endpoint, ..
            } => {
                tracing::debug!(peer = %peer_id, addr = %endpoint.get_remote_address(), "connected");
            }
            _ => {}
        }
    }
}

/// The relay's identity: the key in `<dir>/relay.key` (32 bytes of hex, mode 0600),
/// created on first use.
fn load_or_create_key(dir: &Path) -> Result<Keypair, NodeError> {
    let path = dir.join(RELAY_KEY_FILE);
    match std::fs::read_to_string(&path) {
        Ok(text) => {
            let mut seed = [0u8; 32];
            hex::decode_to_slice(text.trim(), &mut seed).map_err(|_| {
                NodeError::Corrupt(format!("{} is not a 32-byte hex key", path.display()))
            })?;
            Ok(wire::keypair_from_seed(seed))
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            std::fs::create_dir_all(dir).map_err(|e| NodeError::io(dir, e))?;
            let keypair = Keypair::generate_ed25519();
            let secret = keypair
                .clone()
                .try_into_ed25519()
                .expect("an ed25519 keypair")
                .secret();
            let mut opts = std::fs::OpenOptions::new();
            opts.write(true).create_new(true);
            #[cfg(unix)]
            {
                use std::os::unix::fs::OpenOptionsExt;
                opts.mode(0o600);
            }
            use std::io::Write;
            let mut f = opts.open(&path).map_err(|e| NodeError::io(&path, e))?;
            f.write_all(hex::encode(secret.as_ref()).as_bytes())
                .and_then(|_| f.sync_all())
                .map_err(|e| NodeError::io(&path, e))?;
            Ok(keypair)
        }
        Err(e) => Err(NodeError::io(&path, e)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_relay_key_is_kept_and_reused() {
        let dir = tempfile::tempdir().unwrap();
        let a = load_or_create_key(dir.path()).unwrap();
        let b = load_or_create_key(dir.path()).unwrap();
        assert_eq!(a.public().to_peer_id(), b.public().to_peer_id());
        std::fs::write(dir.path().join(RELAY_KEY_FILE), "nope").unwrap();
        let e = load_or_create_key(dir.path()).unwrap_err().to_string();
        assert!(e.contains("relay.key"), "{e}");
    }
}
