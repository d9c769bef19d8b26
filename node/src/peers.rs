//! The peer table and the sync driver as sans-I/O state, in the style of iroh-gossip's
//! `proto`: [`Peers::handle`] takes an [`Input`] and the time, and returns the [`Action`]s
//! the swarm loop ([`crate::net`]) performs. No tokio, no Swarm, no clock of its own: the
//! rules below are tested in memory, deterministically.
//!
//! What it decides (the thresholds are those of `docs/PROTOCOL.md` §11):
//! - Misbehaviour points: each point lowers the peer's gossipsub application score by 10;
//!   points decay by one every [`MISBEHAVIOUR_DECAY`].
//! - Bans: at [`BAN_THRESHOLD`] points, or when the peer's gossipsub score falls below the
//!   graylist threshold, the peer is banned for [`BAN_DURATION`].
//! - Peers of other communities: remembered (not synced, not re-dialed by mDNS) for
//!   [`FOREIGN_MEMORY`].
//! - Catch-up sync: at most one outgoing sync per peer, plus at most one queued round;
//!   anti-entropy rounds with every connected peer.
//! - Explicit peers: re-dialed while disconnected, with back-off from [`REDIAL_MIN`]
//!   doubling to [`REDIAL_MAX`], reset when a connection to the address is established.
//!
//! Every table is bounded; a full table forgets its entry with the smallest value
//! ([`make_room`]): the least suspicious peer, the ban or foreign memory expiring first.

use std::collections::{HashMap, HashSet};
use std::hash::Hash;
use std::time::{Duration, Instant};

use libp2p::multiaddr::Protocol;
use libp2p::{Multiaddr, PeerId};

use crate::wire::{APP_SCORE_PER_MISBEHAVIOUR, SCORE_GRAYLIST_THRESHOLD};

/// Misbehaviour points that get a peer banned.
pub const BAN_THRESHOLD: u32 = 10;
/// How long a ban lasts.
pub const BAN_DURATION: Duration = Duration::from_secs(15 * 60);
/// A peer's misbehaviour points drop by one this often.
pub const MISBEHAVIOUR_DECAY: Duration = Duration::from_secs(60);
/// Most peers whose misbehaviour is tracked at once (the least suspicious are forgotten).
pub const MAX_TRACKED_PEERS: usize = 1024;
/// Most bans held at once (the one expiring first is lifted early).
pub const MAX_BANS: usize = 1024;
/// Most peers of other communities remembered (not re-dialed while remembered).
pub const MAX_FOREIGN: usize = 1024;
/// How long a peer of another community is remembered.
pub const FOREIGN_MEMORY: Duration = Duration::from_secs(15 * 60);
/// Most explicit peers (configured, or dialed through the handle).
pub const MAX_DIAL_TARGETS: usize = 256;
/// First re-dial delay of an unreachable explicit peer.
pub const REDIAL_MIN: Duration = Duration::from_secs(2);
/// Longest re-dial delay.
pub const REDIAL_MAX: Duration = Duration::from_secs(30);

/// Something the swarm loop saw or was asked, handed to [`Peers::handle`].
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Input {
    /// A connection to `peer` was established; `first` when it is the peer's only one;
    /// `dialed` is the address we dialed, when we were the dialer.
    Connected {
        peer: PeerId,
        first: bool,
        dialed: Option<Multiaddr>,
    },
    /// The peer's last connection closed.
    Disconnected { peer: PeerId },
    /// Someone asked to dial `addr` (the loop dials it now); it becomes an explicit peer.
    DialRequested { addr: Multiaddr },
    /// The peer earned misbehaviour points.
    Misbehaved { peer: PeerId, points: u32 },
    /// The peer's gossipsub score, read as [`Action::CheckGossipScore`] asked.
    GossipScore { peer: PeerId, score: Option<f64> },
    /// The peer belongs to another community.
    Foreign { peer: PeerId },
    /// Gossip shows the peer holds something we lack: sync with it.
    SyncWanted { peer: PeerId },
    /// A sync round with the peer ended; `more` asks for the next batch at once (the
    /// responder has more and the round made progress).
    SyncFinished { peer: PeerId, more: bool },
    /// Time for anti-entropy: sync with every connected peer.
    AntiEntropy,
    /// Time for maintenance: expire bans and foreign memories, decay points, re-dial.
    Tick,
}

/// What the swarm loop must do, in order.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Action {
    /// Start a sync round with the peer: ask the store what we hold, send the request.
    SyncRound(PeerId),
    /// Set the peer's gossipsub application score.
    SetAppScore { peer: PeerId, score: f64 },
    /// Read the peer's gossipsub score and hand it back as [`Input::GossipScore`].
    CheckGossipScore { peer: PeerId, points: u32 },
    /// Block the peer (which disconnects it) and announce the ban.
    Ban(PeerId),
    /// Unblock the peer and reset its application score.
    Unban(PeerId),
    /// Close every connection to the peer.
    Disconnect(PeerId),
    /// Dial an explicit peer again.
    Redial {
        peer: Option<PeerId>,
        addr: Multiaddr,
    },
}

/// Outgoing sync with one connected peer.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
struct SyncState {
    in_flight: bool,
    again: bool,
}

/// An explicit peer: dialed at start and re-dialed while disconnected.
#[derive(Debug, Clone, PartialEq, Eq)]
struct DialTarget {
    addr: Multiaddr,
    peer: Option<PeerId>,
    next_attempt: Instant,
    backoff: Duration,
}

/// The peer table and sync driver. Owned by the swarm loop; see the module docs.
#[derive(Debug)]
pub(crate) struct Peers {
    /// Peers with at least one established connection (bounded by the connection limits).
    connected: HashSet<PeerId>,
    /// Outgoing sync state of each connected peer that is neither banned nor foreign.
    syncs: HashMap<PeerId, SyncState>,
    misbehaviour: HashMap<PeerId, u32>,
    /// Ban expiry times.
    bans: HashMap<PeerId, Instant>,
    /// Expiry times of the memories of foreign peers.
    foreign: HashMap<PeerId, Instant>,
    targets: Vec<DialTarget>,
    last_decay: Instant,
    bans_total: u64,
}

impl Peers {
    /// The table at start, with the explicit peers to dial now (at most
    /// [`MAX_DIAL_TARGETS`]).
    pub(crate) fn new(explicit: Vec<Multiaddr>, now: Instant) -> Peers {
        let targets = explicit
            .into_iter()
            .take(MAX_DIAL_TARGETS)
            .map(|addr| DialTarget {
                peer: peer_of(&addr),
                addr,
                next_attempt: now,
                backoff: REDIAL_MIN,
            })
            .collect();
        Peers {
            connected: HashSet::new(),
            syncs: HashMap::new(),
            misbehaviour: HashMap::new(),
            bans: HashMap::new(),
            foreign: HashMap::new(),
            targets,
            last_decay: now,
            bans_total: 0,
        }
    }

    /// Takes in one input at time `now`; returns what the swarm loop must do, in order.
    #[must_use = "the swarm loop must perform every action, in order"]
    pub(crate) fn handle(&mut self, input: Input, now: Instant) -> Vec<Action> {
        let mut out = Vec::new();
        match input {
            Input::Connected {
                peer,
                first,
                dialed,
            } => {
                if let Some(addr) = dialed {
                    for t in &mut self.targets {
                        if t.addr == addr || strip_p2p(&t.addr) == strip_p2p(&addr) {
                            t.peer = Some(peer);
                            t.backoff = REDIAL_MIN;
                        }
                    }
                }
                if first {
                    self.connected.insert(peer);
                    self.syncs.insert(peer, SyncState::default());
                    self.start_sync(peer, &mut out);
                }
            }
            Input::Disconnected { peer } => {
                self.connected.remove(&peer);
                self.syncs.remove(&peer);
            }
            Input::DialRequested { addr } => {
                if !self.targets.iter().any(|t| t.addr == addr) {
                    if self.targets.len() >= MAX_DIAL_TARGETS {
                        // The oldest explicit peer makes room.
                        self.targets.remove(0);
                    }
                    self.targets.push(DialTarget {
                        peer: peer_of(&addr),
                        addr,
                        next_attempt: now + REDIAL_MIN,
                        backoff: REDIAL_MIN,
                    });
                }
            }
            Input::Misbehaved { peer, points } => {
                make_room(&mut self.misbehaviour, &peer, MAX_TRACKED_PEERS);
                let total = {
                    let e = self.misbehaviour.entry(peer).or_insert(0);
                    *e = e.saturating_add(points);
                    *e
                };
                out.push(Action::SetAppScore {
                    peer,
                    score: app_score(total),
                });
                // The ban decision needs gossipsub's score with the new application score
                // in it: the loop reads it and hands it back.
                out.push(Action::CheckGossipScore {
                    peer,
                    points: total,
                });
            }
            Input::GossipScore { peer, score } => {
                let points = self.misbehaviour.get(&peer).copied().unwrap_or(0);
                if points >= BAN_THRESHOLD || score.is_some_and(|s| s < SCORE_GRAYLIST_THRESHOLD) {
                    self.ban(peer, now, &mut out);
                }
            }
            Input::Foreign { peer } => {
                make_room(&mut self.foreign, &peer, MAX_FOREIGN);
                self.foreign.insert(peer, now + FOREIGN_MEMORY);
                self.syncs.remove(&peer);
                out.push(Action::Disconnect(peer));
            }
            Input::SyncWanted { peer } => self.start_sync(peer, &mut out),
            Input::SyncFinished { peer, more } => {
                let reachable = self.may_sync(&peer);
                let Some(state) = self.syncs.get_mut(&peer) else {
                    return out;
                };
                if more && reachable {
                    out.push(Action::SyncRound(peer));
                    return out;
                }
                state.in_flight = false;
                if std::mem::take(&mut state.again) && reachable {
                    self.start_sync(peer, &mut out);
                }
            }
            Input::AntiEntropy => {
                let mut peers: Vec<PeerId> = self.syncs.keys().copied().collect();
                peers.sort();
                for p in peers {
                    self.start_sync(p, &mut out);
                }
            }
            Input::Tick => self.maintain(now, &mut out),
        }
        out
    }

    /// Whether a sync round with the peer may go on now (connected and not banned).
    pub(crate) fn may_sync(&self, peer: &PeerId) -> bool {
        self.connected.contains(peer) && !self.bans.contains_key(peer)
    }

    /// Whether the peer is banned.
    pub(crate) fn is_banned(&self, peer: &PeerId) -> bool {
        self.bans.contains_key(peer)
    }

    /// Whether the peer is remembered as one of another community.
    pub(crate) fn is_foreign(&self, peer: &PeerId) -> bool {
        self.foreign.contains_key(peer)
    }

    /// Peers in the misbehaviour table.
    pub(crate) fn tracked(&self) -> usize {
        self.misbehaviour.len()
    }

    /// Peers banned now.
    pub(crate) fn banned(&self) -> usize {
        self.bans.len()
    }

    /// Bans since start.
    pub(crate) fn bans_total(&self) -> u64 {
        self.bans_total
    }

    /// Peers of other communities remembered.
    pub(crate) fn foreign(&self) -> usize {
        self.foreign.len()
    }

    /// Explicit peers.
    pub(crate) fn dial_targets(&self) -> usize {
        self.targets.len()
    }

    /// Starts a sync round with a peer, or notes that another round is wanted.
    fn start_sync(&mut self, peer: PeerId, out: &mut Vec<Action>) {
        if self.bans.contains_key(&peer) {
            return;
        }
        let Some(state) = self.syncs.get_mut(&peer) else {
            return;
        };
        if state.in_flight {
            state.again = true;
            return;
        }
        state.in_flight = true;
        out.push(Action::SyncRound(peer));
    }

    fn ban(&mut self, peer: PeerId, now: Instant, out: &mut Vec<Action>) {
        if self.bans.contains_key(&peer) {
            return;
        }
        if let Some(lifted) = make_room(&mut self.bans, &peer, MAX_BANS) {
            self.unban(lifted, out);
        }
        self.bans.insert(peer, now + BAN_DURATION);
        self.bans_total += 1;
        self.syncs.remove(&peer);
        out.push(Action::Ban(peer));
    }

    fn unban(&mut self, peer: PeerId, out: &mut Vec<Action>) {
        self.bans.remove(&peer);
        self.misbehaviour.remove(&peer);
        out.push(Action::Unban(peer));
    }

    fn maintain(&mut self, now: Instant, out: &mut Vec<Action>) {
        let mut expired: Vec<PeerId> = self
            .bans
            .iter()
            .filter(|(_, t)| **t <= now)
            .map(|(p, _)| *p)
            .collect();
        expired.sort();
        for p in expired {
            self.unban(p, out);
        }
        self.foreign.retain(|_, t| *t > now);
        if now.duration_since(self.last_decay) >= MISBEHAVIOUR_DECAY {
            self.last_decay = now;
            self.misbehaviour.retain(|_, pts| {
                *pts = pts.saturating_sub(1);
                *pts > 0
            });
            let mut scores: Vec<(PeerId, u32)> =
                self.misbehaviour.iter().map(|(p, s)| (*p, *s)).collect();
            scores.sort();
            for (peer, points) in scores {
                out.push(Action::SetAppScore {
                    peer,
                    score: app_score(points),
                });
            }
        }
        for t in &mut self.targets {
            if t.next_attempt > now {
                continue;
            }
            if let Some(p) = t.peer {
                if self.connected.contains(&p) || self.bans.contains_key(&p) {
                    continue;
                }
            }
            t.next_attempt = now + t.backoff;
            t.backoff = (t.backoff * 2).min(REDIAL_MAX);
            out.push(Action::Redial {
                peer: t.peer,
                addr: t.addr.clone(),
            });
        }
    }

    /// A peer's misbehaviour points (tests).
    #[cfg(test)]
    fn points(&self, peer: &PeerId) -> u32 {
        self.misbehaviour.get(peer).copied().unwrap_or(0)
    }
}

/// The gossipsub application score of a peer with `points` misbehaviour points.
fn app_score(points: u32) -> f64 {
    f64::from(points) * APP_SCORE_PER_MISBEHAVIOUR
}

/// Makes room for `key` in a table bounded to `cap` entries: when `key` is new and the table
/// is full, removes the entry with the smallest value (of equal values, the smallest key)
/// and returns its key. The one eviction rule of every bounded peer table.
fn make_room<K: Copy + Ord + Hash, V: Ord>(
    table: &mut HashMap<K, V>,
    key: &K,
    cap: usize,
) -> Option<K> {
    if table.contains_key(key) || table.len() < cap {
        return None;
    }
    let victim = table
        .iter()
        .min_by(|a, b| a.1.cmp(b.1).then_with(|| a.0.cmp(b.0)))
        .map(|(k, _)| *k)?;
    table.remove(&victim);
    Some(victim)
}

/// The peer id an address names (`/p2p/<id>`), if any.
pub(crate) fn peer_of(addr: &Multiaddr) -> Option<PeerId> {
    addr.iter().find_map(|p| match p {
        Protocol::P2p(id) => Some(id),
        _ => None,
    })
}

fn strip_p2p(addr: &Multiaddr) -> Multiaddr {
    addr.iter()
        .filter(|p| !matches!(p, Protocol::P2p(_)))
        .collect()
}
