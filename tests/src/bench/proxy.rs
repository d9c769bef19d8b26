//! A counting TCP proxy on 127.0.0.1: the catch-up figure's bytes on the wire, measured
//! outside the node (no dependence on its internals). Every connection to the proxy is
//! forwarded to one target; bytes are counted in both directions.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::{JoinHandle, JoinSet};

/// Size of each forwarding buffer.
const BUFFER: usize = 64 * 1024;

#[derive(Debug, Default)]
struct Counters {
    to_target: AtomicU64,
    from_target: AtomicU64,
    connections: AtomicU64,
}

/// A running proxy; stops (with its connections) when dropped.
#[derive(Debug)]
pub struct CountingProxy {
    addr: SocketAddr,
    counters: Arc<Counters>,
    task: JoinHandle<()>,
}

impl CountingProxy {
    /// Listens on 127.0.0.1 (a free port) and forwards every connection to `target`.
    pub async fn start(target: SocketAddr) -> std::io::Result<CountingProxy> {
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        let counters = Arc::new(Counters::default());
        let task = tokio::spawn(accept_loop(listener, target, counters.clone()));
        Ok(CountingProxy {
            addr,
            counters,
            task,
        })
    }

    /// The address to dial instead of the target.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Bytes forwarded to the target and bytes forwarded back from it.
    pub fn bytes(&self) -> (u64, u64) {
        (
            self.counters.to_target.load(Ordering::Relaxed),
            self.counters.from_target.load(Ordering::Relaxed),
        )
    }

    /// Connections accepted.
    pub fn connections(&self) -> u64 {
        self.counters.connections.load(Ordering::Relaxed)
    }
}

impl Drop for CountingProxy {
    fn drop(&mut self) {
        // Aborting the accept loop drops its JoinSet, which aborts every connection.
        self.task.abort();
    }
}

async fn accept_loop(listener: TcpListener, target: SocketAddr, counters: Arc<Counters>) {
    let mut connections = JoinSet::new();
    loop {
        tokio::select! {
            Some(_) = connections.join_next(), if !connections.is_empty() => {}
            accepted = listener.accept() => {
                let Ok((inbound, _)) = accepted else { continue };
                counters.connections.fetch_add(1, Ordering::Relaxed);
                connections.spawn(forward(inbound, target, counters.clone()));
            }
        }
    }
}

async fn forward(inbound: TcpStream, target: SocketAddr, counters: Arc<Counters>) {
    let Ok(outbound) = TcpStream::connect(target).await else {
        return;
    };
    let _ = inbound.set_nodelay(true);
    let _ = outbound.set_nodelay(true);
    let (in_read, in_write) = inbound.into_split();
    let (out_read, out_write) = outbound.into_split();
    let up = pump(in_read, out_write, counters.clone(), true);
    let down = pump(out_read, in_write, counters, false);
    tokio::join!(up, down);
}

async fn pump(mut from: OwnedReadHalf, mut to: OwnedWriteHalf, c: Arc<Counters>, up: bool) {
    let mut buf = vec![0u8; BUFFER];
    loop {
        let n = match from.read(&mut buf).await {
            Ok(0) | Err(_) => break,
            Ok(n) => n,
        };
        let counter = if up { &c.to_target } else { &c.from_target };
        counter.fetch_add(n as u64, Ordering::Relaxed);
        if to.write_all(&buf[..n]).await.is_err() {
            break;
        }
    }
    let _ = to.shutdown().await;
}
