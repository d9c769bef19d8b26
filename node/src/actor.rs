//! The store actor: one std thread owns the [`LocalNode`] (sled is synchronous) and serves
//! requests from a bounded channel, one at a time. Gossip envelopes waiting in the channel
//! are ingested together, so a burst costs one store flush.
//!
//! The actor never waits on the network: it answers through oneshot channels, and what it
//! accepted that peers should see is handed to the swarm loop through its command channel.

use std::collections::{HashMap, HashSet};
use std::thread;
use std::time::Duration;

use coop_model::{DeviceId, Envelope, EquivocationProof, Record, RecordId, Rejection, SyncClock};
use tokio::sync::{broadcast, mpsc, oneshot};

use crate::error::{one_line, NodeError};
use crate::event::NodeEvent;
use crate::local::{LocalNode, ProofIngest, Status};
use crate::wire::{SyncAsk, SYNC2_BATCH, SYNC_BATCH, SYNC_BYTE_BUDGET, SYNC_MAX_PROOFS};

/// Capacity of the store actor's request channel.
pub(crate) const STORE_QUEUE: usize = 256;
/// Most gossip messages ingested in one batch (one flush).
pub(crate) const GOSSIP_BATCH: usize = 128;

/// What the gate made of one gossip message.
#[derive(Debug, Clone)]
#[must_use = "gossipsub waits for every message's validation result"]
pub(crate) enum Verdict {
    /// New and accepted: forward it.
    Accept,
    /// Held already, or waiting for its dependencies: do not forward; a catch-up sync with
    /// the sender fetches what is missing.
    Ignore,
    /// Refused by the gate: penalize the sender.
    Reject(Rejection),
}

/// What ingesting a sync response did.
#[derive(Debug, Clone, Default)]
#[must_use = "refusals are blamed on the peer and progress decides the next round"]
pub(crate) struct SyncIngested {
    /// Newly accepted changes.
    pub(crate) accepted: usize,
    /// New proofs taken in.
    pub(crate) new_proofs: usize,
    /// Refused envelopes and proofs.
    pub(crate) rejected: Vec<Rejection>,
}

/// What a sync responder sends.
#[derive(Debug, Clone, Default)]
pub(crate) struct Missing {
    /// The batch as one bundle (`/coop/sync/2`), when asked for and possible.
    pub(crate) bundled: Option<crate::bundle::Bundled>,
    pub(crate) envelopes: Vec<Vec<u8>>,
    pub(crate) proofs: Vec<Vec<u8>>,
    pub(crate) more: bool,
}

/// What this replica holds, for a sync request.
#[derive(Debug, Clone, Default)]
pub(crate) struct Holdings {
    pub(crate) clock: SyncClock,
    /// The change at each clock entry (devices not known to have forked).
    pub(crate) heads: HashMap<DeviceId, RecordId>,
    /// Devices whose equivocation proofs are held.
    pub(crate) proofs_held: Vec<DeviceId>,
}

/// A gossip message handed to the store.
#[derive(Debug)]
pub(crate) enum GossipItem {
    Envelope(Envelope),
    Proof(EquivocationProof),
}

/// A read run on the actor thread against the node (a query, status, export, verify).
type ReadFn = Box<dyn FnOnce(&mut LocalNode) + Send>;

/// What an import did.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct ImportSummary {
    /// Changes accepted (new).
    pub accepted: usize,
    /// Changes already held.
    pub duplicates: usize,
    /// Changes waiting for missing dependencies.
    pub pending: usize,
    /// Changes refused by the gate.
    pub rejected: Vec<Rejection>,
}

/// A change from a sync response: its envelope, and the change a bundle's decoder parsed it
/// from (none for a plain envelope), which the gate then does not parse again.
pub(crate) type SyncedChange = (Envelope, Option<automerge::Change>);

enum Cmd {
    Submit {
        record: Record,
        now: i64,
        reply: oneshot::Sender<Result<RecordId, NodeError>>,
    },
    Import {
        envelopes: Vec<Envelope>,
        reply: oneshot::Sender<Result<ImportSummary, NodeError>>,
    },
    Read(ReadFn),
    Gossip {
        item: GossipItem,
        reply: oneshot::Sender<Verdict>,
    },
    SyncIngest {
        envelopes: Vec<SyncedChange>,
        proofs: Vec<EquivocationProof>,
        reply: oneshot::Sender<SyncIngested>,
    },
    Clock {
        reply: oneshot::Sender<Holdings>,
    },
    Missing {
        ask: SyncAsk,
        v2: bool,
        reply: oneshot::Sender<Missing>,
    },
    Shutdown {
        reply: oneshot::Sender<Result<(), NodeError>>,
    },
}

/// A cloneable handle on the store actor.
#[derive(Debug, Clone)]
pub(crate) struct StoreHandle {
    tx: mpsc::Sender<Cmd>,
}

/// Things the actor hands to the swarm loop: envelopes and proofs to publish.
#[derive(Debug)]
pub(crate) enum Publish {
    Envelopes(Vec<Envelope>),
    Proofs(Vec<EquivocationProof>),
}

impl std::fmt::Debug for Cmd {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Cmd::Submit { .. } => "Submit",
            Cmd::Import { .. } => "Import",
            Cmd::Read(_) => "Read",
            Cmd::Gossip { .. } => "Gossip",
            Cmd::SyncIngest { .. } => "SyncIngest",
            Cmd::Clock { .. } => "Clock",
            Cmd::Missing { .. } => "Missing",
            Cmd::Shutdown { .. } => "Shutdown",
        })
    }
}

fn gone() -> NodeError {
    NodeError::store_msg("the store actor has stopped")
}

impl StoreHandle {
    async fn ask<T>(&self, make: impl FnOnce(oneshot::Sender<T>) -> Cmd) -> Result<T, NodeError> {
        let (tx, rx) = oneshot::channel();
        self.tx.send(make(tx)).await.map_err(|_| gone())?;
        rx.await.map_err(|_| gone())
    }

    /// Like `ask`, but gives up with [`NodeError::Busy`] when the queue stays full for
    /// `wait` (a request admitted to the queue is always answered).
    async fn ask_within<T>(
        &self,
        wait: Duration,
        make: impl FnOnce(oneshot::Sender<T>) -> Cmd,
    ) -> Result<T, NodeError> {
        let (tx, rx) = oneshot::channel();
        match self.tx.send_timeout(make(tx), wait).await {
            Ok(()) => {}
            Err(mpsc::error::SendTimeoutError::Timeout(_)) => return Err(NodeError::Busy),
            Err(mpsc::error::SendTimeoutError::Closed(_)) => return Err(gone()),
        }
        rx.await.map_err(|_| gone())
    }

    /// [`StoreHandle::submit`], "busy" after `wait` in the queue.
    pub(crate) async fn submit_within(
        &self,
        wait: Duration,
        record: Record,
        now: i64,
    ) -> Result<RecordId, NodeError> {
        self.ask_within(wait, |reply| Cmd::Submit { record, now, reply })
            .await?
    }

    /// [`StoreHandle::import`], "busy" after `wait` in the queue.
    pub(crate) async fn import_within(
        &self,
        wait: Duration,
        envelopes: Vec<Envelope>,
    ) -> Result<ImportSummary, NodeError> {
        self.ask_within(wait, |reply| Cmd::Import { envelopes, reply })
            .await?
    }

    /// [`StoreHandle::read`], "busy" after `wait` in the queue.
    pub(crate) async fn read_within<T: Send + 'static>(
        &self,
        wait: Duration,
        f: impl FnOnce(&mut LocalNode) -> T + Send + 'static,
    ) -> Result<T, NodeError> {
        self.ask_within(wait, |reply| {
            Cmd::Read(Box::new(move |node| {
                let _ = reply.send(f(node));
            }))
        })
        .await
    }

    /// Writes a record as this node's device at the claimed time `now`; durable and handed
    /// to the network for publishing when this returns. A refusal is [`NodeError::Refused`].
    pub(crate) async fn submit(&self, record: Record, now: i64) -> Result<RecordId, NodeError> {
        self.ask(|reply| Cmd::Submit { record, now, reply }).await?
    }

    /// Ingests envelopes through the gate (publishing what it accepted).
    pub(crate) async fn import(
        &self,
        envelopes: Vec<Envelope>,
    ) -> Result<ImportSummary, NodeError> {
        self.ask(|reply| Cmd::Import { envelopes, reply }).await?
    }

    /// Runs `f` against the node on the actor thread, between writes.
    pub(crate) async fn read<T: Send + 'static>(
        &self,
        f: impl FnOnce(&mut LocalNode) -> T + Send + 'static,
    ) -> Result<T, NodeError> {
        self.ask(|reply| {
            Cmd::Read(Box::new(move |node| {
                let _ = reply.send(f(node));
            }))
        })
        .await
    }

    /// Runs one gossip message through the gate. `None` when the store queue is full
    /// (the caller ignores the message; anti-entropy fetches it later).
    pub(crate) fn try_gossip(&self, item: GossipItem) -> Option<oneshot::Receiver<Verdict>> {
        let (reply, rx) = oneshot::channel();
        self.tx.try_send(Cmd::Gossip { item, reply }).ok()?;
        Some(rx)
    }

    /// Ingests a sync response.
    pub(crate) async fn sync_ingest(
        &self,
        envelopes: Vec<SyncedChange>,
        proofs: Vec<EquivocationProof>,
    ) -> Result<SyncIngested, NodeError> {
        self.ask(|reply| Cmd::SyncIngest {
            envelopes,
            proofs,
            reply,
        })
        .await
    }

    /// What we hold, for a sync request.
    pub(crate) async fn holdings(&self) -> Result<Holdings, NodeError> {
        self.ask(|reply| Cmd::Clock { reply }).await
    }

    /// What a peer that asks `ask` lacks; bundled when `v2`.
    pub(crate) async fn missing(&self, ask: SyncAsk, v2: bool) -> Result<Missing, NodeError> {
        self.ask(|reply| Cmd::Missing { ask, v2, reply }).await
    }

    /// Flushes and closes the store; the actor thread ends.
    pub(crate) async fn shutdown(&self) -> Result<(), NodeError> {
        self.ask(|reply| Cmd::Shutdown { reply }).await?
    }

    /// Status without the network part.
    pub(crate) async fn status(&self) -> Result<Status, NodeError> {
        self.read(LocalNode::status).await
    }
}

/// Seconds since the Unix epoch (the time authors claim for what they write).
pub(crate) fn unix_now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

/// Starts the actor thread around an opened node.
pub(crate) fn spawn(
    node: LocalNode,
    publish: mpsc::Sender<Publish>,
    events: broadcast::Sender<NodeEvent>,
    span: tracing::Span,
) -> Result<(StoreHandle, thread::JoinHandle<()>), NodeError> {
    let (tx, rx) = mpsc::channel(STORE_QUEUE);
    let join = thread::Builder::new()
        .name("coop-store".into())
        .spawn(move || {
            let _guard = span.enter();
            let mut actor = Actor {
                node,
                publish,
                events,
                tops: HashMap::new(),
            };
            for e in actor.node.export() {
                actor.note(&e);
            }
            actor.run(rx)
        })
        .map_err(|e| NodeError::store("cannot start the store thread", e))?;
    Ok((StoreHandle { tx }, join))
}

struct Actor {
    node: LocalNode,
    publish: mpsc::Sender<Publish>,
    events: broadcast::Sender<NodeEvent>,
    /// Each device's highest sequence number held and the change there (first seen).
    tops: HashMap<DeviceId, (u64, RecordId)>,
}

impl Actor {
    fn run(mut self, mut rx: mpsc::Receiver<Cmd>) {
        let mut next: Option<Cmd> = None;
        loop {
            let cmd = match next.take() {
                Some(c) => c,
                None => match rx.blocking_recv() {
                    Some(c) => c,
                    None => break,
                },
            };
            match cmd {
                Cmd::Gossip { item, reply } => {
                    let mut batch = vec![(item, reply)];
                    while batch.len() < GOSSIP_BATCH {
                        match rx.try_recv() {
                            Ok(Cmd::Gossip { item, reply }) => batch.push((item, reply)),
                            Ok(other) => {
                                next = Some(other);
                                break;
                            }
                            Err(_) => break,
                        }
                    }
                    self.gossip(batch);
                }
                Cmd::Submit { record, now, reply } => {
                    let r = self.write(|node| {
                        let id = node.submit(record, now)?;
                        Ok((id, node.envelope(&id).into_iter().collect()))
                    });
                    if let Err(NodeError::Refused(rej)) = &r {
                        // Subscribers (the app) hear of refused local writes too.
                        let reason = serde_json::to_value(rej.reason)
                            .ok()
                            .and_then(|v| v.as_str().map(String::from))
                            .unwrap_or_else(|| "refused".into());
                        let _ = self.events.send(NodeEvent::Refused {
                            reason,
                            detail: rej.detail.clone(),
                        });
                    }
                    let _ = reply.send(r);
                }
                Cmd::Import { envelopes, reply } => {
                    let r = self.write(|node| {
                        let out = node.ingest(envelopes)?;
                        let summary = ImportSummary {
                            accepted: out.accepted.len(),
                            duplicates: out.duplicates,
                            pending: out.pending,
                            rejected: out.rejected,
                        };
                        Ok((summary, out.accepted))
                    });
                    let _ = reply.send(r);
                }
                Cmd::Read(f) => f(&mut self.node),
                Cmd::SyncIngest {
                    envelopes,
                    proofs,
                    reply,
                } => {
                    let r = self.sync_ingest(envelopes, proofs);
                    let _ = reply.send(r);
                }
                Cmd::Clock { reply } => {
                    let _ = reply.send(self.holdings());
                }
                Cmd::Missing { ask, v2, reply } => {
                    let _ = reply.send(self.missing(ask, v2));
                }
                Cmd::Shutdown { reply } => {
                    let r = self.node.flush();
                    tracing::info!("store flushed and closed");
                    drop(self);
                    let _ = reply.send(r);
                    return;
                }
            }
        }
        if let Err(e) = self.node.flush() {
            tracing::error!(error = %one_line(&e), "store flush at exit failed");
        }
    }

    /// A local write (submit or import): announces and publishes what it accepted, and
    /// gossips the proofs of any equivocation it revealed. (Proofs are rare; comparing
    /// them whole is cheap.)
    fn write<T>(
        &mut self,
        f: impl FnOnce(&mut LocalNode) -> Result<(T, Vec<Envelope>), NodeError>,
    ) -> Result<T, NodeError> {
        let proofs_before: HashSet<Vec<u8>> =
            self.node.ledger().proofs().map(|p| p.encode()).collect();
        let (answer, accepted) = f(&mut self.node)?;
        self.announce(&accepted, true);
        if !accepted.is_empty() {
            self.send_publish(Publish::Envelopes(accepted));
        }
        let new_proofs: Vec<EquivocationProof> = self
            .node
            .ledger()
            .proofs()
            .filter(|p| !proofs_before.contains(&p.encode()))
            .cloned()
            .collect();
        if !new_proofs.is_empty() {
            self.send_publish(Publish::Proofs(new_proofs));
        }
        Ok(answer)
    }

    fn send_publish(&self, p: Publish) {
        // The swarm loop never waits on this actor, so blocking here cannot deadlock; it
        // fails only when the network is gone (shutdown), and then there is no one to tell.
        if self.publish.blocking_send(p).is_err() {
            tracing::debug!("network stopped; nothing published");
        }
    }

    /// Records an accepted change in the per-device tops and returns its id.
    fn note(&mut self, e: &Envelope) -> Option<RecordId> {
        // The change passed the gate: its header is enough (no second full parse).
        let (id, device, seq) = crate::bundle::change_meta(&e.change)?;
        match self.tops.get(&device) {
            Some((s, _)) if *s >= seq => {}
            _ => {
                self.tops.insert(device, (seq, id));
            }
        }
        Some(id)
    }

    /// Reports accepted changes: `local` for this node's writes and imports, otherwise
    /// from peers (gossip, catch-up sync, a fork's proof).
    fn announce(&mut self, accepted: &[Envelope], local: bool) {
        for e in accepted {
            if let Some(id) = self.note(e) {
                let _ = self.events.send(NodeEvent::Accepted { id, local });
            }
        }
    }

    fn holdings(&self) -> Holdings {
        let ledger = self.node.ledger();
        let clock = ledger.sync_clock();
        let proofs_held = ledger.summary().forked_devices;
        let heads = clock
            .iter()
            .filter(|(d, _)| !proofs_held.contains(d))
            .filter_map(|(d, seq)| match self.tops.get(d) {
                Some((s, id)) if s == seq => Some((*d, *id)),
                _ => None,
            })
            .collect();
        Holdings {
            clock,
            heads,
            proofs_held,
        }
    }

    /// Takes in a new proof's two changes too, so that every replica holding the proof
    /// holds both sides of the fork (derivation lists both).
    fn ingest_proof_changes(&mut self, p: &EquivocationProof) {
        match self.node.ingest(vec![p.a.clone(), p.b.clone()]) {
            Ok(out) => self.announce(&out.accepted, false),
            Err(e) => tracing::error!(error = %one_line(&e), "storing a fork's changes failed"),
        }
    }

    fn gossip(&mut self, batch: Vec<(GossipItem, oneshot::Sender<Verdict>)>) {
        let community = self.node.community();
        let doc = coop_model::DocId::ledger(&community);
        let mut waiting: Vec<(RecordId, oneshot::Sender<Verdict>)> = Vec::new();
        let mut envelopes = Vec::new();
        let mut new_proofs = Vec::new();
        for (item, reply) in batch {
            match item {
                GossipItem::Proof(p) => {
                    let verdict = match self.node.ingest_proof(p.clone()) {
                        Ok(ProofIngest::New) => {
                            self.ingest_proof_changes(&p);
                            new_proofs.push(p);
                            Verdict::Accept
                        }
                        Ok(ProofIngest::Known) => Verdict::Ignore,
                        Ok(ProofIngest::Refused(r)) => Verdict::Reject(r),
                        // Our store failed, not the sender: do not forward, do not blame.
                        Err(e) => {
                            tracing::error!(error = %one_line(&e), "storing a proof failed");
                            Verdict::Ignore
                        }
                    };
                    let _ = reply.send(verdict);
                }
                GossipItem::Envelope(env) => {
                    // Refusals that carry no change id are decided here, so that every
                    // refusal of the batch below can be matched to its message by id.
                    if env.community != community || env.doc != doc {
                        let _ = reply.send(Verdict::Reject(Rejection {
                            id: None,
                            device: None,
                            member: None,
                            reason: coop_model::RejectReason::WrongCommunity,
                            detail: "signed for another community or document".into(),
                        }));
                        continue;
                    }
                    let Some(id) = env.record_id() else {
                        let _ = reply.send(Verdict::Reject(Rejection {
                            id: None,
                            device: None,
                            member: None,
                            reason: coop_model::RejectReason::Malformed,
                            detail: "not an uncompressed Automerge change".into(),
                        }));
                        continue;
                    };
                    if self.node.ledger().contains(&id) {
                        let _ = reply.send(Verdict::Ignore);
                        continue;
                    }
                    waiting.push((id, reply));
                    envelopes.push(env);
                }
            }
        }
        if !new_proofs.is_empty() {
            self.send_publish(Publish::Proofs(new_proofs));
        }
        if envelopes.is_empty() {
            return;
        }
        let out = match self.node.ingest(envelopes) {
            Ok(out) => out,
            Err(e) => {
                tracing::error!(error = %one_line(&e), "storing gossip failed");
                for (_, reply) in waiting {
                    let _ = reply.send(Verdict::Ignore);
                }
                return;
            }
        };
        let accepted: HashSet<RecordId> = out
            .accepted
            .iter()
            .filter_map(Envelope::record_id)
            .collect();
        let mut rejected: HashMap<RecordId, Rejection> = out
            .rejected
            .iter()
            .filter_map(|r| Some((r.id?, r.clone())))
            .collect();
        let in_batch: HashSet<RecordId> = waiting.iter().map(|(id, _)| *id).collect();
        for (id, reply) in waiting {
            let verdict = if accepted.contains(&id) {
                Verdict::Accept
            } else if let Some(r) = rejected.remove(&id) {
                Verdict::Reject(r)
            } else {
                Verdict::Ignore
            };
            let _ = reply.send(verdict);
        }
        for r in rejected.values() {
            // A change released from the pending buffer and refused now; its sender is
            // no longer known.
            tracing::info!(rejection = %r, "a waiting change was refused");
        }
        self.announce(&out.accepted, false);
        // Changes released from the pending buffer were ignored when they arrived; publish
        // them now so that peers in the same situation get them without waiting.
        let released: Vec<Envelope> = out
            .accepted
            .into_iter()
            .filter(|e| e.record_id().is_some_and(|id| !in_batch.contains(&id)))
            .collect();
        if !released.is_empty() {
            self.send_publish(Publish::Envelopes(released));
        }
        if !out.new_forks.is_empty() {
            self.send_publish(Publish::Proofs(out.new_forks));
        }
    }

    fn sync_ingest(
        &mut self,
        envelopes: Vec<SyncedChange>,
        proofs: Vec<EquivocationProof>,
    ) -> SyncIngested {
        let mut r = SyncIngested::default();
        let mut new_proofs = Vec::new();
        for p in proofs {
            match self.node.ingest_proof(p.clone()) {
                Ok(ProofIngest::New) => {
                    r.new_proofs += 1;
                    self.ingest_proof_changes(&p);
                    new_proofs.push(p);
                }
                Ok(ProofIngest::Known) => {}
                Ok(ProofIngest::Refused(rej)) => r.rejected.push(rej),
                Err(e) => tracing::error!(error = %one_line(&e), "storing a synced proof failed"),
            }
        }
        if !envelopes.is_empty() {
            // Refusals of changes released from the pending buffer belong to whoever sent
            // those changes, not to this peer: blame it only for what it sent.
            let sent: std::collections::HashSet<coop_model::RecordId> = envelopes
                .iter()
                .filter_map(|(e, c)| match c {
                    // Unbundled from these very bytes: its hash is theirs (no second SHA-256).
                    Some(c) if c.raw_bytes() == e.change.as_slice() => Some(c.hash().into()),
                    _ => crate::bundle::change_id(&e.change),
                })
                .collect();
            match self.node.ingest_parsed(envelopes) {
                Ok(out) => {
                    r.accepted = out.accepted.len();
                    r.rejected.extend(
                        out.rejected
                            .into_iter()
                            .filter(|rej| rej.id.is_none_or(|id| sent.contains(&id))),
                    );
                    self.announce(&out.accepted, false);
                    new_proofs.extend(out.new_forks);
                }
                Err(e) => tracing::error!(error = %one_line(&e), "storing synced changes failed"),
            }
        }
        if !new_proofs.is_empty() {
            self.send_publish(Publish::Proofs(new_proofs));
        }
        r
    }

    /// What a peer with `ask` lacks: up to [`SYNC_BATCH`] envelopes within the byte budget,
    /// or with `v2` up to [`SYNC2_BATCH`] changes as one bundle (plain envelopes when they
    /// cannot be bundled).
    fn missing(&mut self, ask: SyncAsk, v2: bool) -> Missing {
        let ledger = self.node.ledger();
        let SyncAsk {
            mut clock,
            heads,
            proofs_held: held,
        } = ask;
        // Where the requester holds a change we do not, we may hold another change with the
        // same sequence number (an equivocation): send ours from that number on.
        for (device, head) in heads {
            if !ledger.contains(&head) {
                if let Some(s) = clock.get_mut(&device) {
                    *s = s.saturating_sub(1);
                }
            }
        }
        let limit = if v2 { SYNC2_BATCH } else { SYNC_BATCH };
        let (mut envs, mut more) = ledger.missing_for(&clock, limit);
        let mut out = Missing::default();
        let mut bytes = 0usize;
        // Proofs first: they are few and change what counts. `Ledger::proofs` yields one
        // proof per forked device (in the order of `forked_devices`), then the proofs of
        // further versions at a fork point; the requester's list of devices cannot name
        // those, so they are always sent (they are rare, and capped).
        let forked = ledger.summary().forked_devices;
        for (i, proof) in ledger.proofs().enumerate() {
            if forked.get(i).is_some_and(|device| held.contains(device)) {
                continue;
            }
            if out.proofs.len() == SYNC_MAX_PROOFS {
                more = true;
                break;
            }
            let b = proof.encode();
            bytes += b.len();
            out.proofs.push(b);
        }
        if v2 {
            if let Some(b) = crate::bundle::encode(self.node.doc(), &envs) {
                out.bundled = Some(b);
                out.more = more;
                return out;
            }
            // Not bundled: the v1 batch as plain envelopes.
            if envs.len() > SYNC_BATCH {
                envs.truncate(SYNC_BATCH);
                more = true;
            }
        }
        for e in envs {
            if bytes >= SYNC_BYTE_BUDGET {
                more = true;
                break;
            }
            let b = e.encode();
            bytes += b.len();
            out.envelopes.push(b);
        }
        out.more = more;
        out
    }
}
