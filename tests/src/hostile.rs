//! A hostile peer: its own libp2p swarm speaking the real gossip topic and sync protocol
//! (from `coop_node::wire`), publishing whatever bytes a test gives it and, if asked,
//! answering sync requests with forged envelopes.

use coop_model::record;
use std::collections::HashSet;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use coop_model::{CommunityId, DeviceKey, Envelope, IdentityKey, Ledger, Record};
use coop_node::wire::{self, SyncRequest, SyncResponse};
use futures::StreamExt;
use libp2p::gossipsub::{self, IdentTopic, ValidationMode};
use libp2p::identity::Keypair;
use libp2p::swarm::{NetworkBehaviour, SwarmEvent};
use libp2p::{identify, request_response, Multiaddr, PeerId, Swarm};
use tokio::sync::mpsc;

/// The hostile peer's gossipsub frame cap: far above the nodes' own, so that it can send
/// frames they must refuse.
pub const HOSTILE_MAX_FRAME: usize = 1024 * 1024;

/// How the hostile peer answers sync requests.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SyncMode {
    /// An empty, well-formed answer.
    Empty,
    /// Forged envelopes of the right community, and undecodable bytes.
    Forged,
}

#[derive(NetworkBehaviour)]
struct HostileBehaviour {
    gossipsub: gossipsub::Behaviour,
    sync: request_response::cbor::Behaviour<SyncRequest, SyncResponse>,
    identify: identify::Behaviour,
}

/// What the hostile peer observed.
#[derive(Debug, Default, Clone)]
pub struct Observed {
    /// Peers connected now.
    pub connected: HashSet<PeerId>,
    /// Peers subscribed to the community topic.
    pub subscribed: HashSet<PeerId>,
    /// Connections closed so far.
    pub closed: usize,
    /// Failed dials so far.
    pub dial_failures: usize,
    /// Sync requests answered.
    pub sync_answered: usize,
    /// Messages its gossipsub refused to publish.
    pub publish_errors: Vec<String>,
}

#[derive(Debug)]
enum Cmd {
    Dial(Multiaddr),
    Publish(Vec<u8>),
}

/// A running hostile peer.
#[derive(Debug)]
pub struct Hostile {
    /// Its peer id.
    pub peer_id: PeerId,
    cmd: mpsc::Sender<Cmd>,
    observed: Arc<Mutex<Observed>>,
    task: tokio::task::JoinHandle<()>,
}

impl Hostile {
    /// Starts a hostile peer for `community` (not listening; it dials).
    pub fn start(community: CommunityId, mode: SyncMode) -> Hostile {
        let keypair = Keypair::generate_ed25519();
        let peer_id = keypair.public().to_peer_id();
        let config = gossipsub::ConfigBuilder::default()
            .validation_mode(ValidationMode::Strict)
            .message_id_fn(|m| wire::message_id(&m.data))
            .max_transmit_size(HOSTILE_MAX_FRAME)
            .heartbeat_interval(Duration::from_millis(500))
            .build()
            .expect("gossipsub config");
        let mut gossipsub = gossipsub::Behaviour::new(
            gossipsub::MessageAuthenticity::Signed(keypair.clone()),
            config,
        )
        .expect("gossipsub");
        let topic = wire::topic(&community);
        gossipsub.subscribe(&topic).expect("subscribe");
        let behaviour = HostileBehaviour {
            gossipsub,
            sync: wire::sync_behaviour(),
            // It passes for a member's node: same identify protocol version.
            identify: identify::Behaviour::new(identify::Config::new(
                wire::identify_protocol(&community),
                keypair.public(),
            )),
        };
        let swarm = Swarm::new(
            wire::transport(&keypair, None),
            behaviour,
            peer_id,
            libp2p::swarm::Config::with_tokio_executor()
                .with_idle_connection_timeout(Duration::from_secs(600)),
        );
        let (tx, rx) = mpsc::channel(1024);
        let observed = Arc::new(Mutex::new(Observed::default()));
        let task = tokio::spawn(run(swarm, rx, observed.clone(), topic, community, mode));
        Hostile {
            peer_id,
            cmd: tx,
            observed,
            task,
        }
    }

    /// Dials an address.
    pub async fn dial(&self, addr: &str) {
        let addr: Multiaddr = addr.parse().expect("multiaddr");
        self.cmd.send(Cmd::Dial(addr)).await.expect("hostile runs");
    }

    /// Publishes raw message data on the community topic.
    pub async fn publish(&self, data: Vec<u8>) {
        self.cmd
            .send(Cmd::Publish(data))
            .await
            .expect("hostile runs");
    }

    /// What it observed so far.
    pub fn observed(&self) -> Observed {
        self.observed.lock().expect("lock").clone()
    }
}

impl Drop for Hostile {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn run(
    mut swarm: Swarm<HostileBehaviour>,
    mut rx: mpsc::Receiver<Cmd>,
    observed: Arc<Mutex<Observed>>,
    topic: IdentTopic,
    community: CommunityId,
    mode: SyncMode,
) {
    loop {
        tokio::select! {
            cmd = rx.recv() => match cmd {
                None => return,
                Some(Cmd::Dial(a)) => {
                    if swarm.dial(a).is_err() {
                        observed.lock().expect("lock").dial_failures += 1;
                    }
                }
                Some(Cmd::Publish(data)) => {
                    if let Err(e) = swarm.behaviour_mut().gossipsub.publish(topic.clone(), data) {
                        observed.lock().expect("lock").publish_errors.push(e.to_string());
                    }
                }
            },
            event = swarm.select_next_some() => {
                let mut o = observed.lock().expect("lock");
                match event {
                    SwarmEvent::ConnectionEstablished { peer_id, .. } => {
                        o.connected.insert(peer_id);
                    }
                    SwarmEvent::ConnectionClosed { peer_id, num_established, .. } => {
                        o.closed += 1;
                        if num_established == 0 {
                            o.connected.remove(&peer_id);
                            o.subscribed.remove(&peer_id);
                        }
                    }
                    SwarmEvent::OutgoingConnectionError { .. } => o.dial_failures += 1,
                    SwarmEvent::Behaviour(HostileBehaviourEvent::Gossipsub(
                        gossipsub::Event::Subscribed { peer_id, topic: t },
                    )) if t == topic.hash() => {
                        o.subscribed.insert(peer_id);
                    }
                    SwarmEvent::Behaviour(HostileBehaviourEvent::Sync(
                        request_response::Event::Message {
                            message: request_response::Message::Request { channel, .. },
                            ..
                        },
                    )) => {
                        o.sync_answered += 1;
                        let response = match mode {
                            SyncMode::Empty => SyncResponse {
                                community: community.0.to_vec(),
                                envelopes: Vec::new(),
                                proofs: Vec::new(),
                                more: false,
                            },
                            SyncMode::Forged => SyncResponse {
                                community: community.0.to_vec(),
                                envelopes: (0..12)
                                    .map(|i| forged_envelope(&community, &format!("sync {i}")).encode().into())
                                    .chain(std::iter::once(b"COOP garbage".to_vec().into()))
                                    .collect(),
                                proofs: vec![b"not a proof".to_vec().into()],
                                // A lie: it has nothing more, and must not be asked forever.
                                more: true,
                            },
                        };
                        let _ = swarm.behaviour_mut().sync.send_response(channel, response);
                    }
                    _ => {}
                }
            }
        }
    }
}

/// A join request of a fresh device whose signature does not verify (`bad_signature`).
pub fn forged_envelope(community: &CommunityId, name: &str) -> Envelope {
    let mut env = join_envelope(community, name);
    env.signature[0] ^= 0x55;
    env
}

/// A well-signed join request of a fresh device for `community`.
pub fn join_envelope(community: &CommunityId, name: &str) -> Envelope {
    let key = DeviceKey::from_seed(crate::seed());
    let identity = IdentityKey::from_seed(crate::seed());
    let mut ledger = Ledger::new(*community);
    ledger
        .author(
            &key,
            Record::from(record::Join {
                member: identity.member_id(),
                cert: identity.certify(community, &key.device_id()),
                display_name: name.to_string(),
            }),
            crate::T0,
        )
        .expect("a join request authors")
}
