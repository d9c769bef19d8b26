//! The running node (`coop up`): the store actor, the swarm loop and the local API (on
//! `api.sock`; on `127.0.0.1:<port>` the member's app with the API read-only behind its
//! session), started together and stopped in stages.
//!
//! [`run`] serves a data dir until its `shutdown` future resolves; [`start`] starts the same
//! node in the background and returns a [`NodeHandle`] (tests, in-process use).
//!
//! Shutdown order: the API stops accepting (requests in flight finish) and its socket is
//! removed; the swarm loop stops and its connections close; the store actor flushes and
//! closes the store; then [`run`] (or [`NodeHandle::shutdown`]) returns.

use std::future::Future;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use coop_model::{Envelope, Record, RecordId, State};
use libp2p::multiaddr::Protocol;
use libp2p::{Multiaddr, PeerId};
use tokio::sync::{broadcast, mpsc, oneshot, watch};
use tracing::Instrument;

use crate::actor::{self, unix_now, ImportSummary, StoreHandle};
use crate::api;
use crate::app;
use crate::datadir::DataDir;
use crate::error::NodeError;
use crate::local::{LocalNode, Status};
use crate::net::{self, Channels, EventLoop, NetCommand, NetSnapshot, NetStats};
use crate::peerstore::{self, Source};
use crate::reach::Reach;
use crate::wire;

pub use crate::event::NodeEvent;

/// Capacity of the node's event broadcast (a subscriber that lags loses the oldest).
pub const EVENT_CAPACITY: usize = 1024;
/// How long start-up waits for the listeners to report their addresses.
pub const LISTEN_TIMEOUT: Duration = Duration::from_secs(30);

/// How to run a node.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RunOptions {
    /// Addresses to listen on (multiaddrs). Empty: the data dir's configured addresses.
    pub listen: Vec<String>,
    /// Peers to dial at start and re-dial while disconnected, besides the configured ones.
    pub peers: Vec<String>,
    /// Whether to discover peers on the LAN by mDNS.
    pub mdns: bool,
    /// How often to run anti-entropy sync with every connected peer.
    pub sync_interval: Duration,
    /// Relays (multiaddrs ending in `/p2p/<relay peer id>`, from `coop relay`): the node
    /// reserves a slot on each, meets the other members at its rendezvous point and reaches
    /// them through it (then directly, when hole punching works). See `reach.rs`.
    pub relays: Vec<String>,
    /// Serve the API read-only on 127.0.0.1 for the app (`--no-ui` turns it off).
    pub ui: bool,
    /// The app's port; else the one kept in config.json; else one the OS picks (then kept).
    pub ui_port: Option<u16>,
    /// Speak only catch-up sync `/coop/sync/1`, as nodes before `/coop/sync/2` did (tests of
    /// the two versions together use it).
    pub sync_v1_only: bool,
}

impl Default for RunOptions {
    fn default() -> Self {
        RunOptions {
            listen: vec!["/ip4/0.0.0.0/tcp/0".into()],
            peers: Vec::new(),
            relays: Vec::new(),
            mdns: true,
            sync_interval: Duration::from_secs(10),
            ui: true,
            ui_port: None,
            sync_v1_only: false,
        }
    }
}

/// Runs the node for a data dir (which must have a community) until `shutdown` resolves;
/// then stops accepting, flushes, removes the API socket, returns.
pub async fn run(
    dir: DataDir,
    opts: RunOptions,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), NodeError> {
    let handle = start(dir, opts).await?;
    let mut done = handle.done.clone();
    tokio::select! {
        _ = shutdown => {}
        _ = finished(&mut done) => {}
    }
    handle.shutdown().await
}

/// A cloneable handle on a running node. When every handle is dropped without
/// [`NodeHandle::shutdown`], the node shuts down by itself.
#[derive(Debug, Clone)]
pub struct NodeHandle {
    store: StoreHandle,
    net: mpsc::Sender<NetCommand>,
    events: broadcast::Sender<NodeEvent>,
    snapshot: watch::Receiver<NetSnapshot>,
    peer_id: PeerId,
    stop: Arc<watch::Sender<bool>>,
    done: watch::Receiver<Option<Result<(), Arc<NodeError>>>>,
    ui_addr: Option<std::net::SocketAddr>,
}

/// Starts the node in the background (for tests and in-process use). Returns once the
/// listeners report their addresses and the API socket accepts requests.
pub async fn start(dir: DataDir, opts: RunOptions) -> Result<NodeHandle, NodeError> {
    let config = dir.config()?;
    let community = config.community.ok_or(NodeError::NoCommunity)?;
    let device = dir.device()?;
    let keypair = wire::keypair_from_seed(device.seed());
    let peer_id = keypair.public().to_peer_id();
    let span = tracing::info_span!("node", id = %device.device_id().short());

    let psk = match &config.psk {
        Some(k) => Some(wire::parse_psk(k).ok_or_else(|| {
            NodeError::Corrupt("config.json: the LAN key is not 32 bytes of hex".into())
        })?),
        None => None,
    };
    let listen_strs = if opts.listen.is_empty() {
        config.listen.clone()
    } else {
        opts.listen.clone()
    };
    let listen = parse_addrs(&listen_strs, "listen address")?;
    let peer_sources = dial_targets(&dir, &config, &opts)?;
    let peers: Vec<Multiaddr> = peer_sources.iter().map(|(a, _)| a.clone()).collect();
    let mut relays = parse_addrs(&opts.relays, "relay address")?;
    // Relays kept in config.json (`coop peer add --relay`, invites): a bad one is skipped
    // with a warning, never a reason not to start.
    for r in &config.relays {
        match peerstore::parse_relay(r) {
            Ok(m) if !relays.contains(&m) => relays.push(m),
            Ok(_) => {}
            Err(e) => tracing::warn!(parent: &span, error = %e, "skipping a stored relay"),
        }
    }
    let reach = Reach::new(peer_id, &community, relays, std::time::Instant::now())
        .map_err(NodeError::InvalidInput)?;

    let node = {
        let dir = dir.clone();
        tokio::task::spawn_blocking(move || LocalNode::open(&dir))
            .await
            .map_err(|e| NodeError::store("opening the store", e))??
    };
    // A damaged store takes no writes: serving it would refuse every record a peer sends
    // and every command a member runs. Say what to do instead of starting.
    node.writable()?;

    let (events, _) = broadcast::channel(EVENT_CAPACITY);
    let (publish_tx, publish_rx) = mpsc::channel(net::PUBLISH_QUEUE);
    let (net_tx, net_rx) = mpsc::channel(net::NET_QUEUE);
    let (snapshot_tx, snapshot_rx) = watch::channel(NetSnapshot::default());
    let (stop_tx, stop_rx) = watch::channel(false);
    let stop_tx = Arc::new(stop_tx);
    let (done_tx, done_rx) = watch::channel(None);

    let (store, store_thread) = actor::spawn(node, publish_tx, events.clone(), span.clone())?;

    let swarm = {
        let _g = span.enter();
        net::build_swarm(&keypair, &community, psk, opts.mdns, !opts.sync_v1_only)
    };
    let swarm = match swarm {
        Ok(s) => s,
        Err(e) => {
            stop_store(&store, store_thread).await;
            return Err(e);
        }
    };
    let mut event_loop = EventLoop::new(
        swarm,
        community,
        store.clone(),
        Channels {
            commands: net_rx,
            publish: publish_rx,
            events: events.clone(),
            snapshot: snapshot_tx,
            stop: stop_rx.clone(),
        },
        opts.sync_interval,
        peers,
        reach,
    )
    .with_peer_store(dir.clone(), peer_sources, opts.mdns)
    .with_sync_v2(!opts.sync_v1_only);
    // Port 0 asks for the port kept in config.json, so peers find this node again after a
    // restart; the OS picks one the first time (or when the kept one is taken).
    let mut wants_port = false;
    for addr in &listen {
        let kept = match (tcp_port(addr), config.listen_port) {
            (Some(0), Some(port)) => Some(with_tcp_port(addr, port)),
            _ => None,
        };
        wants_port |= tcp_port(addr) == Some(0);
        let listened = match kept {
            Some(k) => match event_loop.listen_on(k.clone()) {
                Ok(()) => Ok(()),
                Err(e) => {
                    tracing::warn!(parent: &span, error = %e, "the kept port is taken; listening on a new one");
                    event_loop.listen_on(addr.clone())
                }
            },
            None => event_loop.listen_on(addr.clone()),
        };
        if let Err(e) = listened {
            stop_store(&store, store_thread).await;
            return Err(e);
        }
    }
    let net_task = tokio::spawn(event_loop.run().instrument(span.clone()));

    // Status.listen must be filled whenever the API answers.
    let mut snap = snapshot_rx.clone();
    let wanted = listen.len();
    let listening = tokio::time::timeout(
        LISTEN_TIMEOUT,
        snap.wait_for(|s| wanted == 0 || !s.listen.is_empty() || s.listen_failures >= wanted),
    )
    .await;
    let ok = matches!(&listening, Ok(Ok(s)) if wanted == 0 || !s.listen.is_empty());
    drop(listening);
    if ok && wants_port {
        let chosen = snapshot_rx
            .borrow()
            .listen
            .iter()
            .filter_map(|a| a.parse::<Multiaddr>().ok())
            .find_map(|a| tcp_port(&a));
        if let Some(port) = chosen.filter(|p| config.listen_port != Some(*p)) {
            // Re-read: the config may have changed since start-up read it.
            let kept = dir.config().and_then(|mut c| {
                c.listen_port = Some(port);
                dir.save_config(&c)
            });
            if let Err(e) = kept {
                tracing::warn!(parent: &span, error = %e, "could not keep the listen port in config.json");
            }
        }
    }
    if !ok {
        let _ = stop_tx.send(true);
        let _ = net_task.await;
        stop_store(&store, store_thread).await;
        return Err(NodeError::network_msg(format!(
            "could not listen on {}",
            listen_strs.join(", ")
        )));
    }

    let socket = dir.api_socket();
    let hub = api::EventHub::start(events.subscribe(), stop_rx.clone());
    let ctx = api::Ctx {
        store: store.clone(),
        snapshot: snapshot_rx.clone(),
        events: hub,
        net: net_tx.clone(),
        dir: dir.clone(),
    };
    let router = api::router(ctx.clone());
    let bound = bind_api(&dir, &socket, &opts, &config);
    let (listener, ui) = match bound {
        Ok(l) => l,
        Err(e) => {
            let _ = stop_tx.send(true);
            let _ = net_task.await;
            stop_store(&store, store_thread).await;
            return Err(e);
        }
    };
    let ui_addr = ui.as_ref().and_then(|l| l.local_addr().ok());
    let mut api_tasks = vec![tokio::spawn(
        api::serve(listener, router.clone(), stop_rx.clone()).instrument(span.clone()),
    )];
    if let (Some(ui), Some(addr)) = (ui, ui_addr) {
        // The member's app and, behind its session, the read-only API (docs/APP.md).
        let app = app::App {
            api: ctx,
            dir: dir.clone(),
            sessions: std::sync::Arc::new(app::session::Sessions::open(
                &dir,
                crate::actor::unix_now(),
            )),
            port: addr.port(),
        };
        let site = app::router(app, api::loopback(router));
        api_tasks.push(tokio::spawn(
            api::serve(ui, site, stop_rx.clone()).instrument(span.clone()),
        ));
    }
    tracing::info!(parent: &span, peer = %peer_id, socket = %socket.display(), ui = ?ui_addr, "node running");

    // The supervisor: waits for the stop signal (or for the network to end on its own),
    // then stops everything in order.
    let supervisor = {
        let store = store.clone();
        let stop_tx = stop_tx.clone();
        let mut stop_rx = stop_rx;
        async move {
            let mut net_task = net_task;
            let net_result = tokio::select! {
                r = &mut net_task => Some(r),
                _ = stopped(&mut stop_rx) => None,
            };
            // Whatever ended first, everyone stops now.
            let _ = stop_tx.send(true);
            for t in api_tasks {
                let _ = t.await;
            }
            let _ = std::fs::remove_file(&socket);
            if net_result.is_none() {
                let _ = net_task.await;
            }
            let flushed = store.shutdown().await;
            let _ = tokio::task::spawn_blocking(move || store_thread.join()).await;
            if let Err(e) = std::fs::remove_file(&socket) {
                if e.kind() != std::io::ErrorKind::NotFound {
                    tracing::warn!(error = %e, "could not remove the API socket");
                }
            }
            tracing::info!("node stopped");
            let _ = done_tx.send(Some(flushed.map_err(Arc::new)));
        }
        .instrument(span)
    };
    tokio::spawn(supervisor);

    Ok(NodeHandle {
        store,
        net: net_tx,
        events,
        snapshot: snapshot_rx,
        peer_id,
        stop: stop_tx,
        done: done_rx,
        ui_addr,
    })
}

/// Binds the API socket and, unless turned off, the app's loopback port (kept in
/// config.json once chosen, so the app finds it again).
fn bind_api(
    dir: &DataDir,
    socket: &Path,
    opts: &RunOptions,
    config: &crate::datadir::Config,
) -> Result<(tokio::net::UnixListener, Option<tokio::net::TcpListener>), NodeError> {
    let listener = api::bind_unix(socket)?;
    if !opts.ui {
        return Ok((listener, None));
    }
    let port = opts.ui_port.or(config.ui_port).unwrap_or(0);
    let addr = std::net::SocketAddr::from(([127, 0, 0, 1], port));
    let std_listener = std::net::TcpListener::bind(addr).map_err(|e| {
        NodeError::network(
            format!("cannot serve the app on {addr} (use --ui-port PORT or --no-ui)"),
            e,
        )
    })?;
    std_listener
        .set_nonblocking(true)
        .map_err(|e| NodeError::network("app listener", e))?;
    let ui = tokio::net::TcpListener::from_std(std_listener)
        .map_err(|e| NodeError::network("app listener", e))?;
    let chosen = ui
        .local_addr()
        .map_err(|e| NodeError::network("app listener", e))?
        .port();
    if config.ui_port != Some(chosen) {
        // Re-read: the config may have changed since start-up read it.
        let mut c = dir.config()?;
        c.ui_port = Some(chosen);
        dir.save_config(&c)?;
    }
    Ok((listener, Some(ui)))
}

async fn stop_store(store: &StoreHandle, thread: std::thread::JoinHandle<()>) {
    let _ = store.shutdown().await;
    let _ = tokio::task::spawn_blocking(move || thread.join()).await;
}

async fn stopped(rx: &mut watch::Receiver<bool>) {
    let _ = rx.wait_for(|s| *s).await;
}

async fn finished(rx: &mut watch::Receiver<Option<Result<(), Arc<NodeError>>>>) {
    let _ = rx.wait_for(Option::is_some).await;
}

/// The addresses to dial and where each came from: `--peer` (manual; a bad one is an
/// error), the configured peers (from the invite) and the peer store. A bad stored address
/// is skipped with a warning: the node starts anyway.
fn dial_targets(
    dir: &DataDir,
    config: &crate::datadir::Config,
    opts: &RunOptions,
) -> Result<Vec<(Multiaddr, Source)>, NodeError> {
    let mut out: Vec<(Multiaddr, Source)> = Vec::new();
    let mut push = |a: Multiaddr, s: Source| {
        if !out.iter().any(|(b, _)| *b == a) {
            out.push((a, s));
        }
    };
    for a in parse_addrs(&opts.peers, "peer address")? {
        push(a, Source::Manual);
    }
    for p in &config.peers {
        match peerstore::parse_dialable(p) {
            Ok(a) => push(a, Source::Invite),
            Err(e) => tracing::warn!("config.json: skipping a peer address: {e}"),
        }
    }
    let (book, warning) = dir.peer_book();
    if let Some(w) = warning {
        tracing::warn!("peer store: {w}");
    }
    // Given addresses first, then those that worked most recently, so the bound keeps the
    // best.
    let mut stored: Vec<_> = book.peers.iter().collect();
    stored.sort_by_key(|p| {
        (
            std::cmp::Reverse(p.source.is_given()),
            std::cmp::Reverse(p.last_seen),
        )
    });
    for p in stored {
        match peerstore::parse_dialable(&p.addr) {
            Ok(a) => push(a, p.source),
            Err(e) => tracing::warn!("peer store: skipping a stored peer address: {e}"),
        }
    }
    out.truncate(net::MAX_DIAL_TARGETS);
    Ok(out)
}

/// The TCP port of an address, if it has one.
fn tcp_port(addr: &Multiaddr) -> Option<u16> {
    addr.iter().find_map(|p| match p {
        Protocol::Tcp(port) => Some(port),
        _ => None,
    })
}

/// The address with its TCP port replaced.
fn with_tcp_port(addr: &Multiaddr, port: u16) -> Multiaddr {
    addr.iter()
        .map(|p| match p {
            Protocol::Tcp(_) => Protocol::Tcp(port),
            p => p,
        })
        .collect()
}

fn parse_addrs(addrs: &[String], what: &str) -> Result<Vec<Multiaddr>, NodeError> {
    addrs
        .iter()
        .map(|a| {
            a.trim()
                .parse::<Multiaddr>()
                .map_err(|e| NodeError::InvalidInput(format!("bad {what} {a:?}: {e}")))
        })
        .collect()
}

impl NodeHandle {
    /// Writes a record as this node's device; it is durable, and published, when this returns.
    pub async fn submit(&self, record: Record) -> Result<RecordId, NodeError> {
        self.store.submit(record, unix_now()).await
    }

    /// Ingests envelopes through the gate, as `POST /api/v1/import` does.
    pub async fn import(&self, envelopes: Vec<Envelope>) -> Result<ImportSummary, NodeError> {
        self.store.import(envelopes).await
    }

    /// The derived state.
    pub async fn state(&self) -> Result<State, NodeError> {
        self.store.read(|n| n.state().clone()).await
    }

    /// The app's loopback address, when it is served.
    pub fn ui_addr(&self) -> Option<std::net::SocketAddr> {
        self.ui_addr
    }

    /// Status, network part included.
    pub async fn status(&self) -> Result<Status, NodeError> {
        let status = self.store.status().await?;
        Ok(self.snapshot.borrow().fill(status))
    }

    /// The node's libp2p peer id.
    pub fn peer_id(&self) -> String {
        self.peer_id.to_string()
    }

    /// Listen addresses, each ending `/p2p/<peer id>`.
    pub fn listen_addrs(&self) -> Vec<String> {
        self.snapshot.borrow().listen.clone()
    }

    /// Connected peers.
    pub fn peers(&self) -> Vec<String> {
        self.snapshot.borrow().peers.clone()
    }

    /// Counters and table sizes of the network part.
    pub fn net_stats(&self) -> NetStats {
        self.snapshot.borrow().stats.clone()
    }

    /// Dials a peer now (and re-dials it while disconnected).
    pub async fn dial(&self, addr: String) -> Result<(), NodeError> {
        let addr: Multiaddr = addr
            .trim()
            .parse()
            .map_err(|e| NodeError::InvalidInput(format!("bad peer address {addr:?}: {e}")))?;
        let (reply, rx) = oneshot::channel();
        self.net
            .send(NetCommand::Dial { addr, reply })
            .await
            .map_err(|_| NodeError::network_msg("the network has stopped"))?;
        rx.await
            .map_err(|_| NodeError::network_msg("the network has stopped"))?
    }

    /// Events from now on.
    pub fn subscribe(&self) -> broadcast::Receiver<NodeEvent> {
        self.events.subscribe()
    }

    /// Stops the node gracefully and waits until the store is flushed and closed and the
    /// API socket removed.
    pub async fn shutdown(&self) -> Result<(), NodeError> {
        self.stop.send_replace(true);
        let mut done = self.done.clone();
        let r = done
            .wait_for(Option::is_some)
            .await
            .map_err(|_| NodeError::store_msg("the node stopped abnormally"))?
            .clone();
        match r {
            Some(Ok(())) | None => Ok(()),
            Some(Err(e)) => Err(NodeError::store("closing the store", e)),
        }
    }
}
