//! Reference rows of the catch-up figure: the same Automerge document (the one the
//! community's ledger builds, loaded from its `save()`) synced to an empty document with
//! Automerge's own sync protocol — once in memory (bytes and round trips), once between two
//! tasks over a loopback TCP connection (time and bytes until the heads are equal). This is
//! the protocol samod (the Rust automerge-repo) runs between two repos, without its repo
//! framing and storage; no signatures are checked.
//!
//! The TCP exchange frames each sync message with a 4-byte big-endian length. Each side
//! answers every message it receives with the message its sync state asks for, if any; the
//! receiver reports when its heads equal the sender's.

use std::time::Instant;

use automerge::sync::{Message, State, SyncDoc};
use automerge::{Automerge, ChangeHash};
use serde::Serialize;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

use super::BenchError;

/// Most messages either side sends before the exchange counts as stuck.
const MAX_MESSAGES: usize = 100_000;
/// Largest sync message accepted from the other task, in bytes.
const MAX_MESSAGE_BYTES: usize = 1 << 30;

/// Automerge's sync protocol on the ledger's document.
#[derive(Debug, Clone, Serialize)]
pub struct AutomergeSyncFigure {
    /// In memory: bytes of every message, both ways.
    pub mem_bytes: u64,
    /// In memory: round trips (a message each way) until neither side has anything to send.
    pub mem_round_trips: usize,
    /// In memory: seconds.
    pub mem_secs: f64,
    /// Over loopback TCP: seconds from connecting to the receiver's heads being the sender's.
    pub tcp_secs: f64,
    /// Over loopback TCP: bytes, both ways, framing included.
    pub tcp_bytes: u64,
    /// The receiving document ended with the sender's heads (both runs).
    pub converged: bool,
}

/// Measures both runs on the document saved as `save`.
pub async fn measure(save: &[u8]) -> Result<AutomergeSyncFigure, BenchError> {
    let full = Automerge::load(save)
        .map_err(|e| BenchError::new(format!("Automerge cannot load the saved ledger: {e}")))?;
    let heads = full.get_heads();
    let (mem_bytes, mem_round_trips, mem_secs, mem_ok) = in_memory(&full, &heads)?;
    let (tcp_secs, tcp_bytes, tcp_ok) = over_tcp(full, heads).await?;
    Ok(AutomergeSyncFigure {
        mem_bytes,
        mem_round_trips,
        mem_secs,
        tcp_secs,
        tcp_bytes,
        converged: mem_ok && tcp_ok,
    })
}

fn in_memory(
    full: &Automerge,
    heads: &[ChangeHash],
) -> Result<(u64, usize, f64, bool), BenchError> {
    let mut a = full.clone();
    let mut b = Automerge::new();
    let (mut sa, mut sb) = (State::new(), State::new());
    let t = Instant::now();
    let mut bytes = 0u64;
    let mut round_trips = 0;
    for _ in 0..MAX_MESSAGES {
        let to_b = a.generate_sync_message(&mut sa);
        let sent_a = to_b.is_some();
        if let Some(m) = to_b {
            let e = m.encode();
            bytes += e.len() as u64;
            b.receive_sync_message(&mut sb, decode(&e)?)
                .map_err(|e| BenchError::new(format!("in-memory sync: {e}")))?;
        }
        let to_a = b.generate_sync_message(&mut sb);
        let sent_b = to_a.is_some();
        if let Some(m) = to_a {
            let e = m.encode();
            bytes += e.len() as u64;
            a.receive_sync_message(&mut sa, decode(&e)?)
                .map_err(|e| BenchError::new(format!("in-memory sync: {e}")))?;
        }
        if !sent_a && !sent_b {
            break;
        }
        round_trips += 1;
    }
    let secs = t.elapsed().as_secs_f64();
    Ok((bytes, round_trips, secs, b.get_heads() == heads))
}

fn decode(bytes: &[u8]) -> Result<Message, BenchError> {
    Message::decode(bytes).map_err(|e| BenchError::new(format!("a sync message: {e}")))
}

async fn over_tcp(full: Automerge, heads: Vec<ChangeHash>) -> Result<(f64, u64, bool), BenchError> {
    let listener = TcpListener::bind("127.0.0.1:0").await?;
    let at = listener.local_addr()?;
    let sender = tokio::spawn(async move {
        let (mut s, _) = listener.accept().await?;
        s.set_nodelay(true)?;
        let mut doc = full;
        let mut state = State::new();
        let mut sent = 0u64;
        // The side that holds the document speaks first.
        if let Some(m) = doc.generate_sync_message(&mut state) {
            sent += send(&mut s, &m.encode()).await?;
        }
        for _ in 0..MAX_MESSAGES {
            let Some(msg) = recv(&mut s).await? else {
                break;
            };
            doc.receive_sync_message(&mut state, decode(&msg)?)
                .map_err(|e| BenchError::new(format!("TCP sync: {e}")))?;
            if let Some(m) = doc.generate_sync_message(&mut state) {
                // The receiver closes the connection as soon as its heads are ours, which
                // may be while this answer to its last message is on its way: a write
                // refused then (broken pipe, reset) ends the exchange; it is not a failure.
                match send(&mut s, &m.encode()).await {
                    Ok(n) => sent += n,
                    Err(_) => break,
                }
            }
        }
        Ok::<u64, BenchError>(sent)
    });
    let t = Instant::now();
    let mut s = TcpStream::connect(at).await?;
    s.set_nodelay(true)?;
    let mut doc = Automerge::new();
    let mut state = State::new();
    let mut sent = 0u64;
    let mut done = None;
    if let Some(m) = doc.generate_sync_message(&mut state) {
        sent += send(&mut s, &m.encode()).await?;
    }
    for _ in 0..MAX_MESSAGES {
        let Some(msg) = recv(&mut s).await? else {
            break;
        };
        doc.receive_sync_message(&mut state, decode(&msg)?)
            .map_err(|e| BenchError::new(format!("TCP sync: {e}")))?;
        if doc.get_heads() == heads {
            done = Some(t.elapsed().as_secs_f64());
            break;
        }
        if let Some(m) = doc.generate_sync_message(&mut state) {
            sent += send(&mut s, &m.encode()).await?;
        }
    }
    drop(s);
    let from_sender = sender
        .await
        .map_err(|e| BenchError::new(format!("the sending task: {e}")))??;
    let secs = done.unwrap_or_else(|| t.elapsed().as_secs_f64());
    Ok((secs, sent + from_sender, done.is_some()))
}

async fn send(s: &mut TcpStream, bytes: &[u8]) -> Result<u64, BenchError> {
    s.write_all(&(bytes.len() as u32).to_be_bytes()).await?;
    s.write_all(bytes).await?;
    Ok(4 + bytes.len() as u64)
}

/// The next framed message, or `None` when the other side closed the connection.
async fn recv(s: &mut TcpStream) -> Result<Option<Vec<u8>>, BenchError> {
    let mut len = [0u8; 4];
    if s.read_exact(&mut len).await.is_err() {
        return Ok(None);
    }
    let len = u32::from_be_bytes(len) as usize;
    if len > MAX_MESSAGE_BYTES {
        return Err(BenchError::new("a sync message over 1 GiB"));
    }
    let mut buf = vec![0u8; len];
    s.read_exact(&mut buf).await?;
    Ok(Some(buf))
}
