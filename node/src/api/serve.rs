//! Serving the API's router on a listener, with limits: at most [`MAX_CONNECTIONS`] open
//! connections, idle ones closed after [`IDLE_TIMEOUT`], and — so that a flood of idle,
//! half-open or subscribed connections cannot lock the owner out — a new connection at the
//! cap closes the oldest idle one instead of waiting, else the oldest that only streams an
//! answer (an event stream, whose client resumes with `Last-Event-ID`). Only when every
//! connection is handling a request does a newcomer get `503 node_busy`.

use std::collections::VecDeque;
use std::future::Future;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::Router;
use hyper::server::conn::http1;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::service::TowerToHyperService;
use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt};
use tokio::net::{TcpListener, UnixListener};
use tokio::sync::{oneshot, watch};
use tokio::task::JoinSet;

use crate::error::NodeError;

/// Most connections open at once (per listener).
pub const MAX_CONNECTIONS: usize = 32;
/// A connection with no request in flight for this long is closed; so is one that does
/// not send a whole request head within it.
pub const IDLE_TIMEOUT: Duration = Duration::from_secs(5);
/// How long shutdown waits for requests in flight.
pub const DRAIN_TIMEOUT: Duration = Duration::from_secs(10);

/// The stop signal the serve loop and its connections watch.
pub(crate) type Shutdown = watch::Receiver<bool>;

/// Binds a Unix socket with mode 0600 from the start: bind a temporary name, set its mode,
/// rename it into place (replacing a stale socket: the store lock we hold proves no other
/// node serves this data dir).
pub(crate) fn bind_unix(socket: &Path) -> Result<UnixListener, NodeError> {
    use std::os::unix::fs::PermissionsExt;
    let tmp: PathBuf = socket.with_extension("sock.tmp");
    let _ = std::fs::remove_file(&tmp);
    let listener = UnixListener::bind(&tmp).map_err(|e| NodeError::io(&tmp, e))?;
    std::fs::set_permissions(&tmp, std::fs::Permissions::from_mode(0o600))
        .map_err(|e| NodeError::io(&tmp, e))?;
    std::fs::rename(&tmp, socket).map_err(|e| NodeError::io(socket, e))?;
    Ok(listener)
}

/// A listener the API can be served on.
pub(crate) trait Accept: Send + 'static {
    /// A connection.
    type Io: AsyncRead + AsyncWrite + Unpin + Send + 'static;
    /// The next connection.
    fn accept_io(&self) -> impl Future<Output = std::io::Result<Self::Io>> + Send;
}

impl Accept for UnixListener {
    type Io = tokio::net::UnixStream;
    async fn accept_io(&self) -> std::io::Result<Self::Io> {
        self.accept().await.map(|(s, _)| s)
    }
}

impl Accept for TcpListener {
    type Io = tokio::net::TcpStream;
    async fn accept_io(&self) -> std::io::Result<Self::Io> {
        self.accept().await.map(|(s, _)| s)
    }
}

/// One open connection as the cap sees it.
struct Slot {
    id: u64,
    /// Requests in flight, until their answer's body is sent (0 or 1 with HTTP/1.1).
    busy: Arc<AtomicUsize>,
    /// Requests whose handler is still running (not yet streaming their answer).
    handling: Arc<AtomicUsize>,
    /// Closes the connection.
    close: Option<oneshot::Sender<()>>,
}

#[derive(Default)]
struct Slots {
    open: Mutex<VecDeque<Slot>>,
}

impl Slots {
    /// Admits a connection, closing the oldest idle one when at the cap; `false` when every
    /// connection is busy.
    fn admit(&self, slot: Slot) -> bool {
        let mut open = self.open.lock().unwrap_or_else(|p| p.into_inner());
        if open.len() >= MAX_CONNECTIONS {
            let idle = |s: &Slot| s.busy.load(Ordering::Acquire) == 0;
            let streaming = |s: &Slot| s.handling.load(Ordering::Acquire) == 0;
            let Some(i) = open
                .iter()
                .position(idle)
                .or_else(|| open.iter().position(streaming))
            else {
                return false;
            };
            if let Some(mut old) = open.remove(i) {
                if let Some(c) = old.close.take() {
                    let _ = c.send(());
                }
            }
        }
        open.push_back(slot);
        true
    }

    fn remove(&self, id: u64) {
        let mut open = self.open.lock().unwrap_or_else(|p| p.into_inner());
        open.retain(|s| s.id != id);
    }
}

const BUSY_RESPONSE: &[u8] = b"HTTP/1.1 503 Service Unavailable\r\ncontent-type: application/json\r\nconnection: close\r\ncontent-length: 94\r\n\r\n{\"error\":{\"reason\":\"node_busy\",\"detail\":\"every API connection is busy; try again in a moment\"}}";

/// Serves `router` on `listener` until `stop`; then stops accepting and lets requests in
/// flight finish (up to [`DRAIN_TIMEOUT`]).
pub(crate) async fn serve<L: Accept>(listener: L, router: Router, mut stop: Shutdown) {
    let slots = Arc::new(Slots::default());
    let epoch = Instant::now();
    let mut tasks = JoinSet::new();
    let mut next_id = 0u64;
    loop {
        let io = tokio::select! {
            _ = stopped(&mut stop) => break,
            Some(_) = tasks.join_next(), if !tasks.is_empty() => continue,
            accepted = listener.accept_io() => match accepted {
                Ok(io) => io,
                Err(e) => {
                    // Out of descriptors, say: back off a little rather than spin.
                    tracing::debug!(error = %e, "API accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
        };
        next_id += 1;
        let id = next_id;
        let busy = Arc::new(AtomicUsize::new(0));
        let handling = Arc::new(AtomicUsize::new(0));
        let (close_tx, close_rx) = oneshot::channel();
        if !slots.admit(Slot {
            id,
            busy: busy.clone(),
            handling: handling.clone(),
            close: Some(close_tx),
        }) {
            tasks.spawn(async move {
                let mut io = io;
                let _ = tokio::time::timeout(IDLE_TIMEOUT, io.write_all(BUSY_RESPONSE)).await;
                let _ = io.shutdown().await;
            });
            continue;
        }
        let slots = slots.clone();
        let router = router.clone();
        let stop = stop.clone();
        tasks.spawn(async move {
            connection(io, router, (busy, handling), epoch, close_rx, stop).await;
            slots.remove(id);
        });
    }
    drop(listener);
    let drained = tokio::time::timeout(DRAIN_TIMEOUT, async {
        while tasks.join_next().await.is_some() {}
    })
    .await;
    if drained.is_err() {
        tasks.abort_all();
    }
}

/// Counts a request in flight for as long as it lives: until its answer's body is sent
/// (an event stream is busy for as long as it streams).
struct InFlight {
    busy: Arc<AtomicUsize>,
    last: Arc<AtomicU64>,
    epoch: Instant,
}

impl Drop for InFlight {
    fn drop(&mut self) {
        self.last
            .store(self.epoch.elapsed().as_millis() as u64, Ordering::Release);
        self.busy.fetch_sub(1, Ordering::AcqRel);
    }
}

/// Counts a request whose handler runs (until its answer's head is ready).
struct Handling(Arc<AtomicUsize>);

impl Drop for Handling {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::AcqRel);
    }
}

async fn connection<Io: AsyncRead + AsyncWrite + Unpin + Send + 'static>(
    io: Io,
    router: Router,
    (busy, handling): (Arc<AtomicUsize>, Arc<AtomicUsize>),
    epoch: Instant,
    mut close: oneshot::Receiver<()>,
    mut stop: Shutdown,
) {
    // Milliseconds since `epoch` of the last request's end (or the connection's start).
    let last = Arc::new(AtomicU64::new(epoch.elapsed().as_millis() as u64));
    let svc = TowerToHyperService::new(router);
    let service = {
        let busy = busy.clone();
        let last = last.clone();
        hyper::service::service_fn(move |req| {
            busy.fetch_add(1, Ordering::AcqRel);
            handling.fetch_add(1, Ordering::AcqRel);
            let handler = Handling(handling.clone());
            let guard = InFlight {
                busy: busy.clone(),
                last: last.clone(),
                epoch,
            };
            let fut = hyper::service::Service::call(&svc, req);
            async move {
                let r = fut.await;
                drop(handler);
                r.map(|resp| {
                    resp.map(move |body| {
                        http_body_util::BodyExt::map_frame(body, move |f| {
                            let _in_flight = &guard;
                            f
                        })
                    })
                })
            }
        })
    };
    let conn = http1::Builder::new()
        .timer(TokioTimer::new())
        .header_read_timeout(IDLE_TIMEOUT)
        // A client that shuts its write half after sending the request (`nc -N`, scripts)
        // still gets its answer.
        .half_close(true)
        .serve_connection(TokioIo::new(io), service);
    tokio::pin!(conn);
    let idle = async {
        loop {
            tokio::time::sleep(IDLE_TIMEOUT / 4).await;
            let quiet = epoch.elapsed().as_millis() as u64 - last.load(Ordering::Acquire);
            if busy.load(Ordering::Acquire) == 0 && quiet >= IDLE_TIMEOUT.as_millis() as u64 {
                return;
            }
        }
    };
    tokio::select! {
        r = conn.as_mut() => {
            if let Err(e) = r {
                tracing::debug!(error = %e, "API connection ended with an error");
            }
            return;
        }
        _ = &mut close => tracing::debug!("API connection closed to make room"),
        _ = idle => {}
        _ = stopped(&mut stop) => {}
    }
    // Let a request in flight finish; an idle connection closes at once.
    conn.as_mut().graceful_shutdown();
    let _ = tokio::time::timeout(DRAIN_TIMEOUT, conn).await;
}

/// Resolves once `stop` says so (or its sender is gone); holds no borrow of the value.
pub(crate) async fn stopped(stop: &mut Shutdown) {
    let _ = stop.wait_for(|s| *s).await;
}
