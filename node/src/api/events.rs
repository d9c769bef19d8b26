//! `GET /api/v1/events`: the node's events as Server-Sent Events, numbered, with a bounded
//! in-memory ring so that a client that reconnects with `Last-Event-ID` misses nothing
//! that is still in the ring.

use std::collections::VecDeque;
use std::convert::Infallible;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::extract::State as AxState;
use axum::http::HeaderMap;
use axum::response::sse::{Event, KeepAlive, Sse};
use coop_model::RecordId;
use futures::stream::{self, Stream};
use serde::{Deserialize, Serialize};
use tokio::sync::{broadcast, watch};

use super::Ctx;
use crate::event::NodeEvent;

/// Events kept for `Last-Event-ID` resume.
pub const EVENT_RING: usize = 1024;
/// Events buffered for one subscriber; one that falls further behind is told it lagged.
pub const SUBSCRIBER_BUFFER: usize = 256;
/// Comment lines keep idle streams open through proxies and show the client we live.
pub const KEEP_ALIVE: Duration = Duration::from_secs(15);

/// One event as sent: `event:` is its `kind`, `id:` its `id`, `data:` this object.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct ApiEvent {
    /// Increasing from 1 for this run of the node.
    pub id: u64,
    /// `accepted`, `refused` (a local write the ledger refused), `peer_connected`,
    /// `peer_disconnected`, `rejected`, `banned`, `listening` or `catch_up`.
    pub kind: String,
    /// The record, for `accepted`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub record: Option<RecordId>,
    /// The peer, for peer events, refusals and catch-up progress.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub peer: Option<String>,
    /// Details: `local` or `peer` for `accepted`, a refusal's reason, an address,
    /// catch-up counts.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
}

impl ApiEvent {
    fn from_node(id: u64, e: &NodeEvent) -> ApiEvent {
        let (kind, record, peer, detail) = match e {
            NodeEvent::Accepted { id, local } => (
                "accepted",
                Some(*id),
                None,
                Some(if *local { "local" } else { "peer" }.to_string()),
            ),
            NodeEvent::PeerConnected(p) => ("peer_connected", None, Some(p.clone()), None),
            NodeEvent::PeerDisconnected(p) => ("peer_disconnected", None, Some(p.clone()), None),
            NodeEvent::Rejected { peer, reason } => {
                ("rejected", None, Some(peer.clone()), Some(reason.clone()))
            }
            NodeEvent::Refused { reason, detail } => {
                ("refused", None, None, Some(format!("{reason}: {detail}")))
            }
            NodeEvent::Banned(p) => ("banned", None, Some(p.clone()), None),
            NodeEvent::Listening(a) => ("listening", None, None, Some(a.clone())),
            NodeEvent::CatchUp {
                peer,
                accepted,
                more,
            } => (
                "catch_up",
                None,
                Some(peer.clone()),
                Some(format!(
                    "accepted {accepted}{}",
                    if *more {
                        ", more to come"
                    } else {
                        ", caught up"
                    }
                )),
            ),
        };
        ApiEvent {
            id,
            kind: kind.into(),
            record,
            peer,
            detail,
        }
    }
}

/// Numbers the node's events, keeps the last [`EVENT_RING`] and fans them out.
#[derive(Debug, Clone)]
pub(crate) struct EventHub {
    ring: Arc<Mutex<VecDeque<ApiEvent>>>,
    tx: broadcast::Sender<ApiEvent>,
    stop: watch::Receiver<bool>,
}

impl EventHub {
    /// Starts numbering `events` (until `stop`).
    pub(crate) fn start(
        mut events: broadcast::Receiver<NodeEvent>,
        stop: watch::Receiver<bool>,
    ) -> EventHub {
        let (tx, _) = broadcast::channel(SUBSCRIBER_BUFFER);
        let hub = EventHub {
            ring: Arc::new(Mutex::new(VecDeque::with_capacity(EVENT_RING))),
            tx,
            stop: stop.clone(),
        };
        let h = hub.clone();
        let mut stop = stop;
        tokio::spawn(async move {
            let mut next = 1u64;
            loop {
                let e = tokio::select! {
                    _ = super::serve::stopped(&mut stop) => break,
                    e = events.recv() => e,
                };
                let e = match e {
                    Ok(e) => e,
                    Err(broadcast::error::RecvError::Lagged(n)) => {
                        tracing::warn!(missed = n, "the API's event hub lagged");
                        continue;
                    }
                    Err(broadcast::error::RecvError::Closed) => break,
                };
                let ev = ApiEvent::from_node(next, &e);
                next += 1;
                {
                    let mut ring = h.ring.lock().unwrap_or_else(|p| p.into_inner());
                    if ring.len() == EVENT_RING {
                        ring.pop_front();
                    }
                    ring.push_back(ev.clone());
                }
                let _ = h.tx.send(ev);
            }
        });
        hub
    }

    /// The events after `last` still in the ring, and a subscription to what follows.
    fn resume(&self, last: Option<u64>) -> (Vec<ApiEvent>, broadcast::Receiver<ApiEvent>) {
        // Subscribe under the ring's lock, so nothing falls between replay and live.
        let ring = self.ring.lock().unwrap_or_else(|p| p.into_inner());
        let rx = self.tx.subscribe();
        let replay = match last {
            Some(l) => ring.iter().filter(|e| e.id > l).cloned().collect(),
            None => Vec::new(),
        };
        (replay, rx)
    }
}

fn sse(e: &ApiEvent) -> Event {
    Event::default()
        .id(e.id.to_string())
        .event(e.kind.clone())
        .json_data(e)
        .unwrap_or_else(|_| Event::default().comment("unencodable event"))
}

#[utoipa::path(
    get,
    path = "/api/v1/events",
    params(("Last-Event-ID" = Option<u64>, Header, description = "resume after this event")),
    responses((
        status = 200,
        description = "Server-Sent Events, each `data:` one event",
        content_type = "text/event-stream",
        body = ApiEvent
    ))
)]
pub(super) async fn events(
    AxState(ctx): AxState<Ctx>,
    headers: HeaderMap,
) -> Sse<impl Stream<Item = Result<Event, Infallible>>> {
    let last = headers
        .get("last-event-id")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok());
    let (replay, rx) = ctx.events.resume(last);
    let stop = ctx.events.stop.clone();
    let replayed = stream::iter(replay.into_iter().map(|e| Ok(sse(&e))));
    let live = stream::unfold(rx, move |mut rx| {
        let mut stop = stop.clone();
        async move {
            let next = tokio::select! {
                _ = super::serve::stopped(&mut stop) => return None,
                n = rx.recv() => n,
            };
            match next {
                Ok(e) => Some((Ok(sse(&e)), rx)),
                Err(broadcast::error::RecvError::Lagged(n)) => {
                    // Bounded buffer: a slow subscriber loses events, is told how many, and
                    // may reconnect with Last-Event-ID to fetch them from the ring.
                    let ev = Event::default()
                        .event("lagged")
                        .data(format!("{{\"missed\":{n}}}"));
                    Some((Ok(ev), rx))
                }
                Err(broadcast::error::RecvError::Closed) => None,
            }
        }
    });
    Sse::new(futures::StreamExt::chain(replayed, live))
        .keep_alive(KeepAlive::new().interval(KEEP_ALIVE))
}
