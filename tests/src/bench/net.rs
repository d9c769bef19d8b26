//! The network figures, over real libp2p on 127.0.0.1: catch-up sync of a newcomer
//! (time, bytes on the wire through a counting proxy, ÷ Automerge `save()`), and
//! propagation of a record written on one of several nodes to every node. Beside the
//! catch-up, the reference rows ([`super::amsync`]): Automerge's own sync protocol on the
//! same document, and the peer row ([`super::samod`]): two samod repos syncing it.
//!
//! Waits are on conditions (node events, then a status check), each with a generous
//! deadline; nothing sleeps to synchronise.

use coop_model::record;
use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::Path;
use std::time::{Duration, Instant};

use coop_model::state::EntryStatus;
use coop_model::{CommunityId, Day, Envelope, Record, RecordId};
use coop_node::run::{start, NodeEvent, NodeHandle, RunOptions};
use coop_node::{DataDir, LocalNode};
use serde::Serialize;
use tokio::sync::broadcast::error::RecvError;
use tokio::sync::{broadcast, mpsc};

use super::amsync::{self, AutomergeSyncFigure};
use super::community::{Community, MemberKeys};
use super::proxy::CountingProxy;
use super::samod::{self, SamodFigure};
use super::BenchError;

/// Anti-entropy interval of the bench's nodes (the node's default).
pub const SYNC_INTERVAL: Duration = Duration::from_secs(10);
/// Longest a record may take to reach every node before it counts as lost.
pub const PROPAGATION_DEADLINE: Duration = Duration::from_secs(30);
/// Envelopes written to a store per batch when preparing a data dir.
const SETUP_BATCH: usize = 10_000;

/// Figure 3: a newcomer catching up from one running peer.
#[derive(Debug, Clone, Serialize)]
pub struct CatchUpFigure {
    /// Changes the peer holds.
    pub changes: usize,
    /// From starting the newcomer's node to its last needed change being durable.
    pub secs: f64,
    /// Changes per second.
    pub per_sec: f64,
    /// Bytes on the wire: the larger of the TCP payload through the proxy (both
    /// directions) and the sync payload the newcomer counted (`NetStats::sync_bytes_received`:
    /// an AutoNAT dial-back opens a direct connection the proxy does not see, and libp2p
    /// spreads requests over both connections).
    pub wire_bytes: u64,
    /// TCP payload through the proxy, both directions.
    pub proxy_bytes: u64,
    /// Sync response payload the newcomer received, on any connection.
    pub sync_payload_bytes: u64,
    /// Of which from the peer.
    pub wire_bytes_from_peer: u64,
    /// Automerge `save()` of the same document, bytes.
    pub save_bytes: usize,
    /// Wire bytes ÷ `save()` bytes (target ≤ 3).
    pub wire_vs_save: f64,
    /// The encoded envelopes of the ledger (what the log stores), bytes.
    pub envelope_bytes: usize,
    /// Wire bytes ÷ envelope bytes (the protocol's overhead over the signed changes).
    pub wire_vs_envelopes: f64,
    /// Automerge's own sync protocol on the same document (in memory and over loopback TCP).
    pub reference: AutomergeSyncFigure,
    /// samod (the Rust automerge-repo) syncing the same document between two repos over
    /// loopback TCP; `None` when it could not be measured (see `samod_error`).
    pub samod: Option<SamodFigure>,
    /// Why the samod row is missing.
    pub samod_error: Option<String>,
    /// Catch-up seconds ÷ samod's seconds when samod converged, else ÷ Automerge sync over
    /// TCP (target ≤ 2).
    pub secs_vs_reference: f64,
    /// What `secs_vs_reference` compares against: `"samod"` or `"automerge-tcp"`.
    pub time_reference: String,
    /// Catch-up seconds ÷ Automerge sync over TCP.
    pub secs_vs_automerge_tcp: f64,
    /// Catch-up wire bytes ÷ the reference's bytes over TCP.
    pub bytes_vs_reference: f64,
    /// What-if: each sync batch as an Automerge bundle plus signatures, ÷ `save()` bytes.
    pub bundled_vs_save: f64,
    /// What-if: the whole ledger as one bundle plus signatures, ÷ `save()` bytes.
    pub bundled_whole_vs_save: f64,
    /// TCP connections through the proxy.
    pub connections: u64,
    /// Both nodes ended with the same state digest (newcomer's join included).
    pub converged: bool,
}

/// Figure 4: a record written on one node appearing on every node.
#[derive(Debug, Clone, Serialize)]
pub struct PropagationFigure {
    /// Nodes, fully meshed.
    pub nodes: usize,
    /// Changes every node held at the start.
    pub ledger_changes: usize,
    /// Records measured (written round-robin, one at a time).
    pub records: usize,
    /// Records that reached every node before the deadline.
    pub delivered: usize,
    /// Latency from `submit` to the record being accepted on the last node, ms.
    pub p50_ms: f64,
    /// 90th percentile, ms.
    pub p90_ms: f64,
    /// 99th percentile, ms (target ≤ 1000).
    pub p99_ms: f64,
    /// Worst, ms.
    pub max_ms: f64,
    /// Median time of the `submit` call itself (author, durable write, publish), ms.
    pub submit_p50_ms: f64,
    /// Every measured record counts in every node's derived state at the end.
    pub counted_everywhere: bool,
}

/// Options of a bench node: 127.0.0.1, no mDNS.
pub fn options(peers: Vec<String>) -> RunOptions {
    RunOptions {
        listen: vec!["/ip4/127.0.0.1/tcp/0".into()],
        peers,
        mdns: false,
        sync_interval: SYNC_INTERVAL,
        ui: false,
        ui_port: None,
        ..RunOptions::default()
    }
}

/// A data dir for a member of the community (their first device) holding `envelopes`,
/// written to its store as the node would have written them.
pub fn member_dir(
    root: &Path,
    name: &str,
    member: &MemberKeys,
    community: CommunityId,
    envelopes: &[Envelope],
) -> Result<DataDir, BenchError> {
    let dir = DataDir::new(root.join(name));
    dir.init(&member.name, member.identity_seed, member.device_seeds[0])?;
    let mut config = dir.config()?;
    config.community = Some(community);
    dir.save_config(&config)?;
    let mut node = LocalNode::open(&dir)?;
    for chunk in envelopes.chunks(SETUP_BATCH) {
        node.store_mut().append(chunk)?;
    }
    Ok(dir)
}

/// The TCP address of a node's first listen address (`/ip4/A/tcp/P/p2p/..`).
fn tcp_addr(node: &NodeHandle) -> Result<SocketAddr, BenchError> {
    let addr = node
        .listen_addrs()
        .into_iter()
        .next()
        .ok_or_else(|| BenchError::new("a started node has no listen address"))?;
    let parts: Vec<&str> = addr.split('/').collect();
    match parts.as_slice() {
        ["", "ip4", ip, "tcp", port, ..] => format!("{ip}:{port}")
            .parse()
            .map_err(|e| BenchError::new(format!("listen address {addr}: {e}"))),
        _ => Err(BenchError::new(format!("unexpected listen address {addr}"))),
    }
}

/// Waits until the node holds at least `want` changes, woken by its `Accepted` events.
/// Returns when the last needed change became durable (the arrival of the event that
/// completed the count), or the time of the confirming status when no event was seen.
async fn wait_for_changes(
    node: &NodeHandle,
    events: &mut broadcast::Receiver<NodeEvent>,
    want: usize,
    deadline: Duration,
) -> Result<Instant, BenchError> {
    let end = Instant::now() + deadline;
    let mut last_event: Option<Instant> = None;
    loop {
        let status = node.status().await?;
        if status.changes >= want {
            return Ok(last_event.unwrap_or_else(Instant::now));
        }
        if Instant::now() >= end {
            return Err(BenchError::new(format!(
                "the node holds {} of {want} changes after {deadline:?}",
                status.changes
            )));
        }
        // Check again once enough changes were announced, or after a quiet spell (an
        // event missed before we subscribed must not stall the wait).
        let need = want - status.changes;
        let mut seen = 0usize;
        let quiet = Duration::from_secs(5);
        loop {
            let limit = (Instant::now() + quiet).min(end);
            match tokio::time::timeout_at(limit.into(), events.recv()).await {
                Ok(Ok(NodeEvent::Accepted { .. })) => {
                    seen += 1;
                    last_event = Some(Instant::now());
                }
                Ok(Ok(_)) => {}
                Ok(Err(RecvError::Lagged(n))) => {
                    seen += n as usize;
                    last_event = Some(Instant::now());
                }
                Ok(Err(RecvError::Closed)) | Err(_) => break,
            }
            if seen >= need {
                break;
            }
        }
    }
}

/// Figure 3. `peer_dir` holds the community's first `changes` changes.
pub async fn catch_up(
    root: &Path,
    c: &Community,
    peer_dir: &DataDir,
    changes: usize,
    save: &[u8],
    envelope_bytes: usize,
    bundled: (usize, usize),
) -> Result<CatchUpFigure, BenchError> {
    let save_bytes = save.len();
    // The references first, alone on the machine.
    let reference = amsync::measure(save).await?;
    let samod_deadline = Duration::from_secs(120 + changes as u64 / 500);
    let (samod, samod_error) = match samod::measure(save, samod_deadline).await {
        Ok(f) => (Some(f), None),
        Err(e) => (None, Some(e.to_string())),
    };
    let deadline = Duration::from_secs(120 + changes as u64 / 100);
    let peer = start(peer_dir.clone(), options(Vec::new())).await?;
    let proxy = CountingProxy::start(tcp_addr(&peer)?).await?;
    let via_proxy = format!(
        "/ip4/127.0.0.1/tcp/{}/p2p/{}",
        proxy.addr().port(),
        peer.peer_id()
    );

    let dir = DataDir::new(root.join("newcomer"));
    dir.init("Newcomer", [0xA5; 32], [0x5A; 32])?;
    let (node, _) = LocalNode::join(&dir, c.id, None, vec![via_proxy], c.last_time)?;
    drop(node);

    let t = Instant::now();
    let fresh = start(dir, options(Vec::new())).await?;
    let mut events = fresh.subscribe();
    // Its own join request plus everything the peer holds.
    let done = wait_for_changes(&fresh, &mut events, changes + 1, deadline).await;
    let (up, down) = proxy.bytes();
    let sync_payload_bytes = fresh.net_stats().sync_bytes_received;
    let done = done?;
    let secs = done.duration_since(t).as_secs_f64();
    let connections = proxy.connections();

    // Convergence (not timed): the peer gets the newcomer's join request back.
    let mut peer_events = peer.subscribe();
    let converged = match wait_for_changes(
        &peer,
        &mut peer_events,
        changes + 1,
        Duration::from_secs(60),
    )
    .await
    {
        Ok(_) => fresh.status().await?.digest == peer.status().await?.digest,
        Err(_) => false,
    };
    fresh.shutdown().await?;
    peer.shutdown().await?;
    drop(proxy);
    let proxy_bytes = up + down;
    let wire = proxy_bytes.max(sync_payload_bytes);
    let (time_reference, reference_secs) = match &samod {
        Some(s) if s.converged => ("samod", s.secs),
        _ => ("automerge-tcp", reference.tcp_secs),
    };
    Ok(CatchUpFigure {
        changes,
        secs,
        per_sec: changes as f64 / secs,
        wire_bytes: wire,
        proxy_bytes,
        sync_payload_bytes,
        wire_bytes_from_peer: down,
        save_bytes,
        wire_vs_save: wire as f64 / save_bytes as f64,
        secs_vs_reference: secs / reference_secs,
        time_reference: time_reference.into(),
        secs_vs_automerge_tcp: secs / reference.tcp_secs,
        samod,
        samod_error,
        bytes_vs_reference: wire as f64 / reference.tcp_bytes as f64,
        reference,
        envelope_bytes,
        wire_vs_envelopes: wire as f64 / envelope_bytes as f64,
        bundled_vs_save: bundled.0 as f64 / save_bytes as f64,
        bundled_whole_vs_save: bundled.1 as f64 / save_bytes as f64,
        connections,
        converged,
    })
}

/// Figure 4: `nodes` members' nodes holding the first `ledger_changes` changes, fully
/// meshed; `records` attestations written round-robin, one at a time.
pub async fn propagation(
    root: &Path,
    c: &Community,
    nodes: usize,
    ledger_changes: usize,
    records: usize,
    warmup: usize,
) -> Result<PropagationFigure, BenchError> {
    let nodes = nodes.clamp(2, c.members.len());
    let log = &c.envelopes[..ledger_changes];
    let mut handles: Vec<NodeHandle> = Vec::with_capacity(nodes);
    let mut addrs: Vec<String> = Vec::new();
    for i in 0..nodes {
        let dir = member_dir(root, &format!("node{i}"), &c.members[i], c.id, log)?;
        let h = start(dir, options(addrs.clone())).await?;
        addrs.push(
            h.listen_addrs()
                .into_iter()
                .next()
                .ok_or_else(|| BenchError::new("a started node has no listen address"))?,
        );
        handles.push(h);
    }
    wait_for_mesh(&handles, Duration::from_secs(60)).await?;

    // One listener per node reports every accepted change with its arrival time.
    let (tx, mut rx) = mpsc::channel::<(usize, RecordId, Instant)>(4096);
    let mut listeners = Vec::new();
    for (i, h) in handles.iter().enumerate() {
        let mut events = h.subscribe();
        let tx = tx.clone();
        listeners.push(tokio::spawn(async move {
            loop {
                match events.recv().await {
                    Ok(NodeEvent::Accepted { id, .. }) => {
                        if tx.send((i, id, Instant::now())).await.is_err() {
                            break;
                        }
                    }
                    Ok(_) | Err(RecvError::Lagged(_)) => {}
                    Err(RecvError::Closed) => break,
                }
            }
        }));
    }
    drop(tx);

    let mut arrivals: HashMap<RecordId, Vec<Instant>> = HashMap::new();
    let mut latencies = Vec::new();
    let mut submits = Vec::new();
    let mut measured = Vec::new();
    let mut time = c.last_time;
    for r in 0..warmup + records {
        let writer = r % nodes;
        let to = c.members[(writer + 1) % nodes].id;
        time += 60;
        let record = Record::Attest(record::Attest {
            to,
            minutes: coop_model::Minutes(30),
            service: format!("propagation sample {r}"),
            category: "it help".into(),
            date: Day::from_unix(time),
        });
        let t = Instant::now();
        let id = handles[writer].submit(record).await?;
        let submitted = t.elapsed();
        let end = Instant::now() + PROPAGATION_DEADLINE;
        let reached = loop {
            if arrivals.get(&id).is_some_and(|a| a.len() >= nodes) {
                break true;
            }
            match tokio::time::timeout_at(end.into(), rx.recv()).await {
                Ok(Some((_, got, at))) => arrivals.entry(got).or_default().push(at),
                Ok(None) | Err(_) => break false,
            }
        };
        if r < warmup {
            if !reached {
                return Err(BenchError::new(
                    "a warm-up record did not reach every node; is gossip working?",
                ));
            }
            continue;
        }
        measured.push(id);
        submits.push(submitted.as_secs_f64() * 1e3);
        if reached {
            let last = arrivals[&id].iter().max().copied().unwrap_or(t);
            latencies.push(last.duration_since(t).as_secs_f64() * 1e3);
        }
    }
    for l in listeners {
        l.abort();
    }

    let mut counted_everywhere = true;
    for h in &handles {
        let state = h.state().await?;
        let counted: HashMap<RecordId, bool> = state
            .log
            .iter()
            .map(|e| (e.id, e.status == EntryStatus::Counted))
            .collect();
        counted_everywhere &= measured.iter().all(|id| counted.get(id) == Some(&true));
    }
    for h in &handles {
        h.shutdown().await?;
    }
    let delivered = latencies.len();
    Ok(PropagationFigure {
        nodes,
        ledger_changes,
        records,
        delivered,
        p50_ms: percentile(&mut latencies, 50.0),
        p90_ms: percentile(&mut latencies, 90.0),
        p99_ms: percentile(&mut latencies, 99.0),
        max_ms: percentile(&mut latencies, 100.0),
        submit_p50_ms: percentile(&mut submits, 50.0),
        counted_everywhere,
    })
}

/// Waits until every node is connected to every other, woken by peer events.
async fn wait_for_mesh(handles: &[NodeHandle], deadline: Duration) -> Result<(), BenchError> {
    let end = Instant::now() + deadline;
    let want = handles.len() - 1;
    let mut events: Vec<_> = handles.iter().map(NodeHandle::subscribe).collect();
    for (h, ev) in handles.iter().zip(events.iter_mut()) {
        while h.peers().len() < want {
            if Instant::now() >= end {
                return Err(BenchError::new(format!(
                    "a node has {} of {want} peers after {deadline:?}",
                    h.peers().len()
                )));
            }
            // The peer list is refreshed with every connection event; a second bounds
            // the wait should one arrive before we subscribed.
            let limit = (Instant::now() + Duration::from_secs(1)).min(end);
            let _ = tokio::time::timeout_at(limit.into(), ev.recv()).await;
        }
    }
    Ok(())
}

/// The `p`-th percentile (nearest rank) of `xs`; NaN when empty.
pub fn percentile(xs: &mut [f64], p: f64) -> f64 {
    if xs.is_empty() {
        return f64::NAN;
    }
    xs.sort_by(f64::total_cmp);
    let rank = ((p / 100.0) * xs.len() as f64).ceil() as usize;
    xs[rank.clamp(1, xs.len()) - 1]
}
