//! The samod row of the catch-up figure: two samod repos (samod is the Rust
//! automerge-repo) syncing the ledger's Automerge document over loopback TCP, the way an
//! automerge-repo application catches a new device up. One repo holds the document (loaded
//! from the community's `save()`), the other dials it through a counting proxy, finds the
//! document by its id and is timed until its heads equal the holder's. No signatures are
//! checked; this is the figure issue 13's catch-up time target compares against.
//!
//! samod frames its messages with its own length-delimited codec (`Transport::from_tokio_io`)
//! and runs Automerge's sync protocol per document inside its repo protocol (handshake,
//! request, sync messages), with in-memory storage on both sides.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use automerge::{Automerge, ChangeHash};
use futures::StreamExt;
use samod::{BackoffConfig, DocHandle, Repo, Url};
use serde::Serialize;
use tokio::net::TcpListener;

use super::proxy::CountingProxy;
use super::BenchError;

/// Connections the holding repo accepts before it stops listening (the dialer retries
/// with backoff should a connection fail; a handful is plenty on loopback).
const MAX_ACCEPTS: usize = 8;

/// samod syncing the ledger's document between two repos over loopback TCP.
#[derive(Debug, Clone, Serialize)]
pub struct SamodFigure {
    /// Seconds from the newcomer dialing to its copy's heads being the holder's.
    pub secs: f64,
    /// TCP payload through the proxy, both directions (samod's framing included).
    pub bytes: u64,
    /// Of which from the holder.
    pub bytes_from_holder: u64,
    /// The newcomer's document ended with the holder's heads.
    pub converged: bool,
}

/// Measures the row on the document saved as `save`; gives up after `deadline`.
pub async fn measure(save: &[u8], deadline: Duration) -> Result<SamodFigure, BenchError> {
    let full = Automerge::load(save)
        .map_err(|e| BenchError::new(format!("Automerge cannot load the saved ledger: {e}")))?;
    let heads = full.get_heads();

    // The holder: a repo with the document, accepting connections on 127.0.0.1.
    let holder = Repo::build_tokio().load().await;
    let doc = holder
        .create(full)
        .await
        .map_err(|e| BenchError::new(format!("samod: creating the document: {e}")))?;
    let doc_id = doc.document_id().clone();
    let listener = TcpListener::bind("127.0.0.1:0").await?;
    let at = listener.local_addr()?;
    let acceptor = holder
        .make_acceptor(url(at)?)
        .map_err(|e| BenchError::new(format!("samod: an acceptor: {e}")))?;
    let accepting = tokio::spawn(async move {
        for _ in 0..MAX_ACCEPTS {
            let Ok((io, _)) = listener.accept().await else {
                break;
            };
            let _ = io.set_nodelay(true);
            if acceptor.accept_tokio_io(io).is_err() {
                break;
            }
        }
    });
    let proxy = CountingProxy::start(at).await?;

    // The newcomer: an empty repo dialing the holder through the proxy.
    let newcomer = Repo::build_tokio().load().await;
    let t = Instant::now();
    let end = t + deadline;
    let result = async {
        let dialer = newcomer
            .dial_tcp(url(proxy.addr())?, BackoffConfig::default())
            .map_err(|e| BenchError::new(format!("samod: dialing: {e}")))?;
        tokio::time::timeout_at(end.into(), dialer.established())
            .await
            .map_err(|_| BenchError::new("samod: no connection before the deadline"))?
            .map_err(|e| BenchError::new(format!("samod: connecting: {e:?}")))?;
        let found = tokio::time::timeout_at(end.into(), newcomer.find(doc_id))
            .await
            .map_err(|_| BenchError::new("samod: the document was not found before the deadline"))?
            .map_err(|e| BenchError::new(format!("samod: finding the document: {e}")))?
            .ok_or_else(|| BenchError::new("samod: the holder did not share the document"))?;
        Ok::<_, BenchError>(wait_for_heads(&found, &heads, end).await)
    }
    .await;
    let secs = t.elapsed().as_secs_f64();
    let (to_holder, from_holder) = proxy.bytes();
    newcomer.stop().await;
    holder.stop().await;
    accepting.abort();
    drop(proxy);
    let converged = result?;
    Ok(SamodFigure {
        secs,
        bytes: to_holder + from_holder,
        bytes_from_holder: from_holder,
        converged,
    })
}

/// Waits, woken by the document's change notifications, until its heads are `heads` or
/// `end` passes; whether they are.
async fn wait_for_heads(doc: &DocHandle, heads: &[ChangeHash], end: Instant) -> bool {
    let mut changes = doc.changes();
    loop {
        if doc.with_document(|d| d.get_heads()) == heads {
            return true;
        }
        // A notification may fire before we subscribed: a second bounds each wait.
        let limit = (Instant::now() + Duration::from_secs(1)).min(end);
        if Instant::now() >= end {
            return false;
        }
        let _ = tokio::time::timeout_at(limit.into(), changes.next()).await;
    }
}

fn url(at: SocketAddr) -> Result<Url, BenchError> {
    Url::parse(&format!("tcp://{at}")).map_err(|e| BenchError::new(format!("a URL for {at}: {e}")))
}
