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
/// Peers whose catch-up progress is kept; past it the one heard from longest ago goes.
pub(crate) const MAX_CATCH_UP_PEERS: usize = 64;

/// Catch-up sync with one peer since the node started, as the network page shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct CatchUp {
    /// The peer.
    pub(crate) peer: String,
    /// Batches that brought changes.
    pub(crate) batches: u64,
    /// Changes accepted from this peer's batches in all.
    pub(crate) accepted: u64,
    /// Whether the last batch said the peer has more to send.
    pub(crate) more: bool,
    /// When the last batch arrived (Unix seconds).
    pub(crate) at: i64,
}

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
    /// Catch-up progress per peer, at most [`MAX_CATCH_UP_PEERS`].
    catch_up: Arc<Mutex<VecDeque<CatchUp>>>,
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
            catch_up: Arc::default(),
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
                if let NodeEvent::CatchUp {
                    peer,
                    accepted,
                    more,
                } = &e
                {
                    h.note_catch_up(peer, *accepted, *more, crate::actor::unix_now());
                }
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

    /// Records one catch-up batch from `peer` (the most recent peer last).
    fn note_catch_up(&self, peer: &str, accepted: usize, more: bool, at: i64) {
        let mut log = self.catch_up.lock().unwrap_or_else(|p| p.into_inner());
        let found = log
            .iter()
            .position(|c| c.peer == peer)
            .and_then(|i| log.remove(i));
        let mut entry = match found {
            Some(c) => c,
            None => CatchUp {
                peer: peer.to_string(),
                batches: 0,
                accepted: 0,
                more,
                at,
            },
        };
        entry.batches += 1;
        entry.accepted += accepted as u64;
        entry.more = more;
        entry.at = at;
        if log.len() == MAX_CATCH_UP_PEERS {
            log.pop_front();
        }
        log.push_back(entry);
    }

    /// Catch-up progress per peer since the node started, the most recent last.
    pub(crate) fn catch_up(&self) -> Vec<CatchUp> {
        let log = self.catch_up.lock().unwrap_or_else(|p| p.into_inner());
        log.iter().cloned().collect()
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

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn catch_up_progress_is_kept_per_peer_and_bounded() {
        let (tx, rx) = broadcast::channel(16);
        let (_stop_tx, stop) = watch::channel(false);
        let hub = EventHub::start(rx, stop);
        let batch = |peer: &str, accepted, more| NodeEvent::CatchUp {
            peer: peer.into(),
            accepted,
            more,
        };
        tx.send(batch("p1", 100, true)).unwrap();
        tx.send(batch("p2", 5, false)).unwrap();
        tx.send(batch("p1", 20, false)).unwrap();
        let deadline = std::time::Instant::now() + Duration::from_secs(60);
        let got = loop {
            let got = hub.catch_up();
            if got.len() == 2 && got[1].batches == 2 {
                break got;
            }
            assert!(std::time::Instant::now() < deadline, "{got:?}");
            tokio::time::sleep(Duration::from_millis(10)).await;
        };
        assert_eq!((got[0].peer.as_str(), got[0].accepted), ("p2", 5));
        assert_eq!((got[1].peer.as_str(), got[1].accepted), ("p1", 120));
        assert!(!got[1].more);

        for i in 0..MAX_CATCH_UP_PEERS + 3 {
            hub.note_catch_up(&format!("q{i}"), 1, true, 0);
        }
        let got = hub.catch_up();
        assert_eq!(got.len(), MAX_CATCH_UP_PEERS);
        assert_eq!(
            got.last().unwrap().peer,
            format!("q{}", MAX_CATCH_UP_PEERS + 2)
        );
    }
}
