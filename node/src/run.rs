//! The running node (`coop up`): the store actor, the swarm loop and the control socket,
//! started together and stopped in stages.
//!
//! [`run`] serves a data dir until its `shutdown` future resolves; [`start`] starts the same
//! node in the background and returns a [`NodeHandle`] (tests, in-process use).
//!
//! Shutdown order: the control socket stops accepting (requests in flight finish) and is
//! removed; the swarm loop stops and its connections close; the store actor flushes and
//! closes the store; then [`run`] (or [`NodeHandle::shutdown`]) returns.

use std::future::Future;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use coop_model::{Record, RecordId, State};
use libp2p::{Multiaddr, PeerId};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::{UnixListener, UnixStream};
use tokio::sync::{broadcast, mpsc, oneshot, watch, Semaphore};
use tokio::task::JoinSet;
use tracing::Instrument;

use crate::actor::{self, StoreHandle};
use crate::control::{Request, Response, MAX_CONTROL_LINE};
use crate::datadir::DataDir;
use crate::error::{one_line, NodeError};
use crate::local::{LocalNode, Status};
use crate::net::{self, Channels, EventLoop, NetCommand, NetSnapshot, NetStats};
use crate::wire;

pub use crate::event::NodeEvent;

/// Capacity of the node's event broadcast (a subscriber that lags loses the oldest).
pub const EVENT_CAPACITY: usize = 1024;
/// Most control connections served at once.
pub const MAX_CONTROL_CONNECTIONS: usize = 16;
/// How long a control client may take to send its request.
pub const CONTROL_READ_TIMEOUT: Duration = Duration::from_secs(30);
/// How long start-up waits for the listeners to report their addresses.
pub const LISTEN_TIMEOUT: Duration = Duration::from_secs(30);
/// How long shutdown waits for control requests in flight.
pub const CONTROL_DRAIN_TIMEOUT: Duration = Duration::from_secs(30);

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
}

impl Default for RunOptions {
    fn default() -> Self {
        RunOptions {
            listen: vec!["/ip4/0.0.0.0/tcp/0".into()],
            peers: Vec::new(),
            mdns: true,
            sync_interval: Duration::from_secs(10),
        }
    }
}

/// Runs the node for a data dir (which must have a community) until `shutdown` resolves;
/// then stops accepting, flushes, removes the control socket, returns.
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
}

/// Starts the node in the background (for tests and in-process use). Returns once the
/// listeners report their addresses and the control socket accepts requests.
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
    let mut peer_strs = config.peers.clone();
    for p in &opts.peers {
        if !peer_strs.contains(p) {
            peer_strs.push(p.clone());
        }
    }
    let peers = parse_addrs(&peer_strs, "peer address")?;

    let node = {
        let dir = dir.clone();
        tokio::task::spawn_blocking(move || LocalNode::open(&dir))
            .await
            .map_err(|e| NodeError::store("opening the store", e))??
    };

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
        net::build_swarm(&keypair, &community, psk, opts.mdns)
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
    );
    for addr in &listen {
        if let Err(e) = event_loop.listen_on(addr.clone()) {
            stop_store(&store, store_thread).await;
            return Err(e);
        }
    }
    let net_task = tokio::spawn(event_loop.run().instrument(span.clone()));

    // Status.listen must be filled whenever the control socket answers.
    let mut snap = snapshot_rx.clone();
    let wanted = listen.len();
    let listening = tokio::time::timeout(
        LISTEN_TIMEOUT,
        snap.wait_for(|s| wanted == 0 || !s.listen.is_empty() || s.listen_failures >= wanted),
    )
    .await;
    let ok = matches!(&listening, Ok(Ok(s)) if wanted == 0 || !s.listen.is_empty());
    drop(listening);
    if !ok {
        let _ = stop_tx.send(true);
        let _ = net_task.await;
        stop_store(&store, store_thread).await;
        return Err(NodeError::network_msg(format!(
            "could not listen on {}",
            listen_strs.join(", ")
        )));
    }

    let socket = dir.control_socket();
    let listener = match bind_control(&socket) {
        Ok(l) => l,
        Err(e) => {
            let _ = stop_tx.send(true);
            let _ = net_task.await;
            stop_store(&store, store_thread).await;
            return Err(e);
        }
    };
    let control_task = tokio::spawn(
        serve_control(
            listener,
            store.clone(),
            snapshot_rx.clone(),
            stop_rx.clone(),
        )
        .instrument(span.clone()),
    );
    tracing::info!(parent: &span, peer = %peer_id, socket = %socket.display(), "node running");

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
            let _ = control_task.await;
            let _ = std::fs::remove_file(&socket);
            if net_result.is_none() {
                let _ = net_task.await;
            }
            let flushed = store.shutdown().await;
            let _ = tokio::task::spawn_blocking(move || store_thread.join()).await;
            if let Err(e) = std::fs::remove_file(&socket) {
                if e.kind() != std::io::ErrorKind::NotFound {
                    tracing::warn!(error = %e, "could not remove the control socket");
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
    })
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

/// Binds the control socket with mode 0600 from the start: bind a temporary name, set its
/// mode, rename it into place (replacing a stale socket; the store lock we hold proves no
/// other node serves this data dir).
fn bind_control(socket: &Path) -> Result<UnixListener, NodeError> {
    use std::os::unix::fs::PermissionsExt;
    let tmp: PathBuf = socket.with_extension("sock.tmp");
    let _ = std::fs::remove_file(&tmp);
    let listener = UnixListener::bind(&tmp).map_err(|e| NodeError::io(&tmp, e))?;
    std::fs::set_permissions(&tmp, std::fs::Permissions::from_mode(0o600))
        .map_err(|e| NodeError::io(&tmp, e))?;
    std::fs::rename(&tmp, socket).map_err(|e| NodeError::io(socket, e))?;
    Ok(listener)
}

async fn serve_control(
    listener: UnixListener,
    store: StoreHandle,
    snapshot: watch::Receiver<NetSnapshot>,
    mut stop: watch::Receiver<bool>,
) {
    let permits = Arc::new(Semaphore::new(MAX_CONTROL_CONNECTIONS));
    let mut tasks = JoinSet::new();
    loop {
        tokio::select! {
            _ = stopped(&mut stop) => break,
            Some(_) = tasks.join_next(), if !tasks.is_empty() => {}
            accepted = listener.accept() => {
                let Ok((stream, _)) = accepted else { continue };
                let Ok(permit) = permits.clone().acquire_owned().await else { break };
                let store = store.clone();
                let snapshot = snapshot.clone();
                tasks.spawn(async move {
                    if let Err(e) = control_connection(stream, &store, &snapshot).await {
                        tracing::debug!(error = %e, "control connection failed");
                    }
                    drop(permit);
                }.in_current_span());
            }
        }
    }
    drop(listener);
    let drained = tokio::time::timeout(CONTROL_DRAIN_TIMEOUT, async {
        while tasks.join_next().await.is_some() {}
    })
    .await;
    if drained.is_err() {
        tasks.abort_all();
    }
}

async fn control_connection(
    stream: UnixStream,
    store: &StoreHandle,
    snapshot: &watch::Receiver<NetSnapshot>,
) -> std::io::Result<()> {
    let (read, mut write) = stream.into_split();
    let mut reader = BufReader::new(read).take(MAX_CONTROL_LINE as u64);
    let mut line = String::new();
    match tokio::time::timeout(CONTROL_READ_TIMEOUT, reader.read_line(&mut line)).await {
        Ok(r) => {
            r?;
        }
        Err(_) => return Ok(()),
    }
    let response = match serde_json::from_str::<Request>(&line) {
        Ok(req) => answer(store, snapshot, req).await,
        Err(e) => Response::Error {
            message: format!("bad request: {e}"),
        },
    };
    let mut out = serde_json::to_vec(&response).unwrap_or_else(|e| {
        serde_json::to_vec(&Response::Error {
            message: e.to_string(),
        })
        .unwrap_or_default()
    });
    out.push(b'\n');
    write.write_all(&out).await?;
    write.flush().await
}

async fn answer(
    store: &StoreHandle,
    snapshot: &watch::Receiver<NetSnapshot>,
    req: Request,
) -> Response {
    match store.control(req).await {
        Ok(Response::Status { status }) => Response::Status {
            status: Box::new(with_net(*status, &snapshot.borrow())),
        },
        Ok(r) => r,
        Err(e) => Response::Error {
            message: one_line(&e),
        },
    }
}

fn with_net(mut status: Status, snap: &NetSnapshot) -> Status {
    status.running = true;
    status.peers = snap.peers.clone();
    status.listen = snap.listen.clone();
    status.rejected_from_peers = snap.rejected_from_peers;
    status
}

impl NodeHandle {
    /// Writes a record as this node's device; it is durable, and published, when this returns.
    pub async fn submit(&self, record: Record) -> Result<RecordId, NodeError> {
        match self.store.control(Request::Submit { record }).await? {
            Response::Submitted { id } => Ok(id),
            Response::Refused { rejection } => Err(NodeError::Refused(rejection)),
            other => Err(unexpected(other)),
        }
    }

    /// The derived state.
    pub async fn state(&self) -> Result<State, NodeError> {
        match self.store.control(Request::State).await? {
            Response::State { state } => Ok(*state),
            other => Err(unexpected(other)),
        }
    }

    /// Status, network part included.
    pub async fn status(&self) -> Result<Status, NodeError> {
        let status = self.store.status().await?;
        Ok(with_net(status, &self.snapshot.borrow()))
    }

    /// Runs any control request (as the control socket would).
    pub async fn control(&self, req: Request) -> Result<Response, NodeError> {
        Ok(answer(&self.store, &self.snapshot, req).await)
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
    /// control socket removed.
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

fn unexpected(r: Response) -> NodeError {
    match r {
        Response::Error { message } => NodeError::control_msg(message),
        other => NodeError::control_msg(format!("unexpected response {other:?}")),
    }
}
