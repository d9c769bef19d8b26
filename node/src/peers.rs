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
//! - LAN neighbours (found by mDNS): dialed when found, and re-dialed with the same back-off
//!   while mDNS still sees them and we are not connected. mDNS reports a (peer, address)
//!   pair only once, when it is new, and keeps it while the neighbour keeps answering: a
//!   first dial that failed (crossing dials, a handshake cut short, a neighbour restarted
//!   on the same port) would otherwise never be tried again while both nodes run.
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
/// Most LAN neighbours (found by mDNS) remembered for re-dialing.
pub const MAX_NEIGHBOURS: usize = 256;
/// Most addresses remembered for one LAN neighbour.
pub const MAX_NEIGHBOUR_ADDRS: usize = 8;

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
    /// mDNS found a neighbour at these addresses.
    Discovered { peer: PeerId, addrs: Vec<Multiaddr> },
    /// mDNS no longer sees the neighbour at these addresses.
    Expired { peer: PeerId, addrs: Vec<Multiaddr> },
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
    /// Dial a LAN neighbour at its addresses, from a new local port (not the listening
    /// one: two neighbours dialing each other from their listening ports at the same
    /// moment make one TCP connection with two initiators, and both handshakes fail).
    DialNeighbour { peer: PeerId, addrs: Vec<Multiaddr> },
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

/// A LAN neighbour found by mDNS: re-dialed while disconnected.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Neighbour {
    addrs: Vec<Multiaddr>,
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
    /// LAN neighbours mDNS sees now (at most [`MAX_NEIGHBOURS`]).
    neighbours: HashMap<PeerId, Neighbour>,
    /// Neighbours mDNS found since start (for the status hint).
    neighbours_found: u64,
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
            neighbours: HashMap::new(),
            neighbours_found: 0,
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
                if let Some(n) = self.neighbours.get_mut(&peer) {
                    n.backoff = REDIAL_MIN;
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
            Input::Discovered { peer, addrs } => self.discovered(peer, addrs, now, &mut out),
            Input::Expired { peer, addrs } => {
                if let Some(n) = self.neighbours.get_mut(&peer) {
                    n.addrs.retain(|a| !addrs.contains(a));
                    if n.addrs.is_empty() {
                        self.neighbours.remove(&peer);
                    }
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

    /// LAN neighbours mDNS sees now.
    pub(crate) fn neighbours(&self) -> usize {
        self.neighbours.len()
    }

    /// Neighbours mDNS found since start.
    pub(crate) fn neighbours_found(&self) -> u64 {
        self.neighbours_found
    }

    /// Whether mDNS sees the peer on the LAN now.
    pub(crate) fn is_neighbour(&self, peer: &PeerId) -> bool {
        self.neighbours.contains_key(peer)
    }

    /// Whether a neighbour may be dialed now: not connected, banned or foreign.
    fn may_dial(&self, peer: &PeerId) -> bool {
        !self.connected.contains(peer)
            && !self.bans.contains_key(peer)
            && !self.foreign.contains_key(peer)
    }

    fn discovered(
        &mut self,
        peer: PeerId,
        addrs: Vec<Multiaddr>,
        now: Instant,
        out: &mut Vec<Action>,
    ) {
        if !self.neighbours.contains_key(&peer) {
            if self.neighbours.len() >= MAX_NEIGHBOURS {
                // The neighbour due latest (the one failing longest) makes room.
                let victim = self
                    .neighbours
                    .iter()
                    .max_by(|a, b| {
                        a.1.next_attempt
                            .cmp(&b.1.next_attempt)
                            .then_with(|| a.0.cmp(b.0))
                    })
                    .map(|(p, _)| *p);
                if let Some(v) = victim {
                    self.neighbours.remove(&v);
                }
            }
            self.neighbours_found += 1;
        }
        let n = self.neighbours.entry(peer).or_insert(Neighbour {
            addrs: Vec::new(),
            next_attempt: now,
            backoff: REDIAL_MIN,
        });
        for a in addrs {
            if !n.addrs.contains(&a) {
                if n.addrs.len() >= MAX_NEIGHBOUR_ADDRS {
                    n.addrs.remove(0);
                }
                n.addrs.push(a);
            }
        }
        // Something new to try: dial now, whatever the back-off said.
        n.next_attempt = now;
        if self.may_dial(&peer) {
            self.dial_neighbour(peer, now, out);
        }
    }

    fn dial_neighbour(&mut self, peer: PeerId, now: Instant, out: &mut Vec<Action>) {
        let Some(n) = self.neighbours.get_mut(&peer) else {
            return;
        };
        n.next_attempt = now + n.backoff;
        n.backoff = (n.backoff * 2).min(REDIAL_MAX);
        out.push(Action::DialNeighbour {
            peer,
            addrs: n.addrs.clone(),
        });
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
        let mut due: Vec<PeerId> = self
            .neighbours
            .iter()
            .filter(|(p, n)| n.next_attempt <= now && self.may_dial(p))
            .map(|(p, _)| *p)
            .collect();
        due.sort();
        for p in due {
            self.dial_neighbour(p, now, out);
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

#[cfg(test)]
mod tests {
    use super::*;

    /// A deterministic peer id.
    fn peer(i: u32) -> PeerId {
        let mut seed = [0u8; 32];
        seed[..4].copy_from_slice(&i.to_be_bytes());
        crate::wire::keypair_from_seed(seed).public().to_peer_id()
    }

    fn addr(port: u16, id: Option<PeerId>) -> Multiaddr {
        let a: Multiaddr = format!("/ip4/127.0.0.1/tcp/{port}").parse().unwrap();
        match id {
            Some(p) => a.with(Protocol::P2p(p)),
            None => a,
        }
    }

    fn secs(n: u64) -> Duration {
        Duration::from_secs(n)
    }

    /// A table with `peers` connected (their first sync rounds already started).
    fn connected(t0: Instant, peers: &[PeerId]) -> Peers {
        let mut p = Peers::new(Vec::new(), t0);
        for &peer in peers {
            let _ = p.handle(
                Input::Connected {
                    peer,
                    first: true,
                    dialed: None,
                },
                t0,
            );
        }
        p
    }

    /// Penalizes `peer` as the loop does, with gossipsub reporting `score`.
    fn misbehave(p: &mut Peers, peer: PeerId, score: Option<f64>, now: Instant) -> Vec<Action> {
        let mut out = p.handle(Input::Misbehaved { peer, points: 1 }, now);
        out.extend(p.handle(Input::GossipScore { peer, score }, now));
        out
    }

    fn bans(actions: &[Action]) -> Vec<PeerId> {
        actions
            .iter()
            .filter_map(|a| match a {
                Action::Ban(p) => Some(*p),
                _ => None,
            })
            .collect()
    }

    fn redials(actions: &[Action]) -> Vec<Multiaddr> {
        actions
            .iter()
            .filter_map(|a| match a {
                Action::Redial { addr, .. } => Some(addr.clone()),
                _ => None,
            })
            .collect()
    }

    #[test]
    fn each_point_lowers_the_application_score_by_ten_and_asks_for_the_gossip_score() {
        let t0 = Instant::now();
        let a = peer(1);
        let mut p = connected(t0, &[a]);
        let _ = p.handle(Input::Misbehaved { peer: a, points: 1 }, t0);
        let out = p.handle(Input::Misbehaved { peer: a, points: 2 }, t0);
        assert_eq!(
            out,
            vec![
                Action::SetAppScore {
                    peer: a,
                    score: -30.0
                },
                Action::CheckGossipScore { peer: a, points: 3 },
            ]
        );
        assert_eq!(p.tracked(), 1);
    }

    #[test]
    fn a_peer_is_banned_at_the_threshold_and_not_before() {
        let t0 = Instant::now();
        let a = peer(1);
        let mut p = connected(t0, &[a]);
        for _ in 1..BAN_THRESHOLD {
            assert_eq!(bans(&misbehave(&mut p, a, Some(0.0), t0)), vec![]);
        }
        assert!(!p.is_banned(&a) && p.may_sync(&a));
        assert_eq!(bans(&misbehave(&mut p, a, Some(0.0), t0)), vec![a]);
        assert!(p.is_banned(&a) && !p.may_sync(&a));
        assert_eq!((p.banned(), p.bans_total()), (1, 1));
        // Banned once: more bad data does not ban (nor count) it again.
        assert_eq!(bans(&misbehave(&mut p, a, Some(0.0), t0)), vec![]);
        assert_eq!(p.bans_total(), 1);
    }

    #[test]
    fn a_gossip_score_below_the_graylist_threshold_bans_at_once() {
        let t0 = Instant::now();
        let (a, b) = (peer(1), peer(2));
        let mut p = connected(t0, &[a, b]);
        let at = Some(SCORE_GRAYLIST_THRESHOLD);
        let below = Some(SCORE_GRAYLIST_THRESHOLD - 0.5);
        assert_eq!(bans(&misbehave(&mut p, a, at, t0)), vec![]);
        assert_eq!(bans(&misbehave(&mut p, a, None, t0)), vec![]);
        assert_eq!(bans(&misbehave(&mut p, b, below, t0)), vec![b]);
        assert!(!p.is_banned(&a));
    }

    #[test]
    fn a_ban_ends_after_its_duration_and_the_points_are_forgotten() {
        let t0 = Instant::now();
        let a = peer(1);
        let mut p = connected(t0, &[a]);
        let _ = misbehave(&mut p, a, Some(-200.0), t0);
        assert!(p.is_banned(&a));
        let before = p.handle(Input::Tick, t0 + BAN_DURATION - Duration::from_millis(1));
        assert!(!before.contains(&Action::Unban(a)), "{before:?}");
        assert!(p.is_banned(&a));
        let at = p.handle(Input::Tick, t0 + BAN_DURATION);
        assert!(at.contains(&Action::Unban(a)), "{at:?}");
        assert!(!p.is_banned(&a));
        assert_eq!((p.points(&a), p.tracked()), (0, 0));
        // The peer starts from zero: one point does not ban it again.
        assert_eq!(
            bans(&misbehave(&mut p, a, Some(0.0), t0 + BAN_DURATION)),
            vec![]
        );
    }

    #[test]
    fn points_decay_by_one_per_interval() {
        let t0 = Instant::now();
        let a = peer(1);
        let mut p = connected(t0, &[a]);
        let _ = p.handle(Input::Misbehaved { peer: a, points: 3 }, t0);
        let early = p.handle(Input::Tick, t0 + MISBEHAVIOUR_DECAY - secs(1));
        assert_eq!((early, p.points(&a)), (vec![], 3));
        let once = p.handle(Input::Tick, t0 + MISBEHAVIOUR_DECAY);
        assert_eq!(
            once,
            vec![Action::SetAppScore {
                peer: a,
                score: -20.0
            }]
        );
        assert_eq!(p.points(&a), 2);
        // The interval counts from the last decay, not from each tick.
        let _ = p.handle(Input::Tick, t0 + MISBEHAVIOUR_DECAY + secs(30));
        assert_eq!(p.points(&a), 2);
        let _ = p.handle(Input::Tick, t0 + MISBEHAVIOUR_DECAY * 2);
        assert_eq!(p.points(&a), 1);
        let last = p.handle(Input::Tick, t0 + MISBEHAVIOUR_DECAY * 3);
        // At zero the peer leaves the table (and gets no new score).
        assert_eq!((last, p.points(&a), p.tracked()), (vec![], 0, 0));
    }

    #[test]
    fn a_full_misbehaviour_table_forgets_the_least_suspicious_peer() {
        let t0 = Instant::now();
        let mut p = Peers::new(Vec::new(), t0);
        let mild = peer(0);
        let _ = p.handle(
            Input::Misbehaved {
                peer: mild,
                points: 1,
            },
            t0,
        );
        for i in 1..MAX_TRACKED_PEERS as u32 {
            let _ = p.handle(
                Input::Misbehaved {
                    peer: peer(i),
                    points: 2,
                },
                t0,
            );
        }
        assert_eq!(p.tracked(), MAX_TRACKED_PEERS);
        // A known peer earns more points without evicting anyone.
        let _ = p.handle(
            Input::Misbehaved {
                peer: peer(5),
                points: 1,
            },
            t0,
        );
        assert_eq!((p.tracked(), p.points(&mild)), (MAX_TRACKED_PEERS, 1));
        let newcomer = peer(MAX_TRACKED_PEERS as u32);
        let _ = p.handle(
            Input::Misbehaved {
                peer: newcomer,
                points: 1,
            },
            t0,
        );
        assert_eq!(p.tracked(), MAX_TRACKED_PEERS);
        assert_eq!((p.points(&mild), p.points(&newcomer)), (0, 1));
        assert_eq!(p.points(&peer(5)), 3);
    }

    #[test]
    fn a_full_ban_table_lifts_the_ban_expiring_first() {
        let t0 = Instant::now();
        let mut p = Peers::new(Vec::new(), t0);
        for i in 0..MAX_BANS as u32 {
            let _ = misbehave(
                &mut p,
                peer(i),
                Some(-200.0),
                t0 + Duration::from_millis(i.into()),
            );
        }
        assert_eq!(p.banned(), MAX_BANS);
        let late = peer(MAX_BANS as u32);
        let out = misbehave(&mut p, late, Some(-200.0), t0 + secs(5));
        let lifted: Vec<&Action> = out
            .iter()
            .filter(|a| matches!(a, Action::Unban(_) | Action::Ban(_)))
            .collect();
        assert_eq!(lifted, vec![&Action::Unban(peer(0)), &Action::Ban(late)]);
        assert_eq!(p.banned(), MAX_BANS);
        assert!(!p.is_banned(&peer(0)) && p.is_banned(&peer(1)) && p.is_banned(&late));
        assert_eq!(p.bans_total(), MAX_BANS as u64 + 1);
    }

    #[test]
    fn foreign_peers_are_remembered_for_a_while_in_a_bounded_table() {
        let t0 = Instant::now();
        let a = peer(0);
        let mut p = connected(t0, &[a]);
        assert_eq!(
            p.handle(Input::Foreign { peer: a }, t0),
            vec![Action::Disconnect(a)]
        );
        assert!(p.is_foreign(&a));
        // No sync with it any more.
        assert_eq!(p.handle(Input::SyncWanted { peer: a }, t0), vec![]);
        for i in 1..MAX_FOREIGN as u32 {
            let _ = p.handle(Input::Foreign { peer: peer(i) }, t0 + secs(1));
        }
        assert_eq!(p.foreign(), MAX_FOREIGN);
        // Meeting a remembered peer again at the cap forgets no one.
        let _ = p.handle(Input::Foreign { peer: peer(7) }, t0 + secs(2));
        assert_eq!(p.foreign(), MAX_FOREIGN);
        assert!(p.is_foreign(&a));
        // A new one pushes out the memory expiring first.
        let _ = p.handle(Input::Foreign { peer: peer(5000) }, t0 + secs(2));
        assert_eq!(p.foreign(), MAX_FOREIGN);
        assert!(!p.is_foreign(&a) && p.is_foreign(&peer(5000)));
        let _ = p.handle(Input::Tick, t0 + secs(1) + FOREIGN_MEMORY);
        assert_eq!(p.foreign(), 2, "only the two marked later remain");
        let _ = p.handle(Input::Tick, t0 + secs(2) + FOREIGN_MEMORY);
        assert_eq!(p.foreign(), 0);
    }

    #[test]
    fn make_room_evicts_the_smallest_value_only_for_a_new_key_at_the_cap() {
        let mut t: HashMap<u32, u32> = [(1, 5), (2, 3), (3, 3)].into_iter().collect();
        assert_eq!(make_room(&mut t, &9, 4), None, "below the cap");
        assert_eq!(make_room(&mut t, &1, 3), None, "a key already held");
        assert_eq!(t.len(), 3);
        // Equal values: the smallest key goes.
        assert_eq!(make_room(&mut t, &9, 3), Some(2));
        assert_eq!(t, [(1, 5), (3, 3)].into_iter().collect());
    }

    #[test]
    fn only_one_outgoing_sync_per_peer_with_at_most_one_queued() {
        let t0 = Instant::now();
        let a = peer(1);
        let mut p = Peers::new(Vec::new(), t0);
        let first = p.handle(
            Input::Connected {
                peer: a,
                first: true,
                dialed: None,
            },
            t0,
        );
        assert_eq!(first, vec![Action::SyncRound(a)]);
        // While a round runs, more wishes queue one round.
        assert_eq!(p.handle(Input::SyncWanted { peer: a }, t0), vec![]);
        assert_eq!(p.handle(Input::AntiEntropy, t0), vec![]);
        assert_eq!(p.handle(Input::SyncWanted { peer: a }, t0), vec![]);
        // The responder has more: the next batch at once, still one round in flight.
        let more = p.handle(
            Input::SyncFinished {
                peer: a,
                more: true,
            },
            t0,
        );
        assert_eq!(more, vec![Action::SyncRound(a)]);
        assert_eq!(p.handle(Input::SyncWanted { peer: a }, t0), vec![]);
        // Done: the one queued round starts, then nothing.
        let queued = p.handle(
            Input::SyncFinished {
                peer: a,
                more: false,
            },
            t0,
        );
        assert_eq!(queued, vec![Action::SyncRound(a)]);
        assert_eq!(
            p.handle(
                Input::SyncFinished {
                    peer: a,
                    more: false
                },
                t0
            ),
            vec![]
        );
        // Idle again: a wish starts a round.
        assert_eq!(
            p.handle(Input::SyncWanted { peer: a }, t0),
            vec![Action::SyncRound(a)]
        );
    }

    #[test]
    fn anti_entropy_syncs_with_every_connected_idle_peer() {
        let t0 = Instant::now();
        let (a, b, c) = (peer(1), peer(2), peer(3));
        let mut p = connected(t0, &[a, b, c]);
        for x in [a, b] {
            let _ = p.handle(
                Input::SyncFinished {
                    peer: x,
                    more: false,
                },
                t0,
            );
        }
        let _ = p.handle(Input::Disconnected { peer: b }, t0);
        let mut round = p.handle(Input::AntiEntropy, t0);
        round.sort_by_key(|a| format!("{a:?}"));
        // `b` is gone; `c` is still in its first round (its next one is queued).
        assert_eq!(round, vec![Action::SyncRound(a)]);
        let next = p.handle(
            Input::SyncFinished {
                peer: c,
                more: false,
            },
            t0,
        );
        assert_eq!(next, vec![Action::SyncRound(c)]);
    }

    #[test]
    fn no_sync_with_banned_disconnected_or_unknown_peers() {
        let t0 = Instant::now();
        let (a, b) = (peer(1), peer(2));
        let mut p = connected(t0, &[a, b]);
        let _ = misbehave(&mut p, a, Some(-200.0), t0);
        assert_eq!(
            p.handle(
                Input::SyncFinished {
                    peer: a,
                    more: true
                },
                t0
            ),
            vec![]
        );
        assert_eq!(p.handle(Input::SyncWanted { peer: a }, t0), vec![]);
        let _ = p.handle(Input::Disconnected { peer: b }, t0);
        assert!(!p.may_sync(&b));
        assert_eq!(
            p.handle(
                Input::SyncFinished {
                    peer: b,
                    more: true
                },
                t0
            ),
            vec![]
        );
        assert_eq!(p.handle(Input::SyncWanted { peer: peer(9) }, t0), vec![]);
        assert_eq!(p.handle(Input::AntiEntropy, t0), vec![]);
    }

    #[test]
    fn redial_back_off_doubles_up_to_the_cap_and_resets_on_connection() {
        let t0 = Instant::now();
        let a = peer(1);
        let target = addr(4001, Some(a));
        let mut p = Peers::new(vec![target.clone()], t0);
        let mut at = t0;
        let mut gaps = Vec::new();
        let mut last: Option<Instant> = None;
        // One tick per second for three minutes: note when re-dials happen.
        while at <= t0 + secs(180) {
            if !redials(&p.handle(Input::Tick, at)).is_empty() {
                if let Some(l) = last {
                    gaps.push((at - l).as_secs());
                }
                last = Some(at);
            }
            at += secs(1);
        }
        assert_eq!(gaps, vec![2, 4, 8, 16, 30, 30, 30, 30, 30]);
        // Connected through the dialed address (the listener's port; no /p2p): no re-dial
        // while connected, and the back-off starts over.
        let _ = p.handle(
            Input::Connected {
                peer: a,
                first: true,
                dialed: Some(addr(4001, None)),
            },
            at,
        );
        assert_eq!(redials(&p.handle(Input::Tick, at + secs(60))), vec![]);
        let _ = p.handle(Input::Disconnected { peer: a }, at + secs(60));
        let t1 = at + secs(61);
        assert_eq!(redials(&p.handle(Input::Tick, t1)), vec![target.clone()]);
        assert_eq!(redials(&p.handle(Input::Tick, t1 + secs(1))), vec![]);
        assert_eq!(
            redials(&p.handle(Input::Tick, t1 + REDIAL_MIN)),
            vec![target]
        );
    }

    #[test]
    fn an_explicit_peer_learns_its_id_from_the_connection_and_is_not_redialed_while_banned() {
        let t0 = Instant::now();
        let a = peer(1);
        let bare = addr(4002, None);
        let mut p = Peers::new(vec![bare.clone()], t0);
        assert_eq!(
            p.handle(Input::Tick, t0),
            vec![Action::Redial {
                peer: None,
                addr: bare.clone()
            }]
        );
        let _ = p.handle(
            Input::Connected {
                peer: a,
                first: true,
                dialed: Some(bare.clone().with(Protocol::P2p(a))),
            },
            t0 + secs(1),
        );
        let _ = misbehave(&mut p, a, Some(-200.0), t0 + secs(1));
        let _ = p.handle(Input::Disconnected { peer: a }, t0 + secs(1));
        assert_eq!(redials(&p.handle(Input::Tick, t0 + secs(60))), vec![]);
        // When the ban ends the peer is dialed again, by id.
        let after = p.handle(Input::Tick, t0 + secs(1) + BAN_DURATION);
        assert!(
            after.contains(&Action::Redial {
                peer: Some(a),
                addr: bare
            }),
            "{after:?}"
        );
    }

    #[test]
    fn explicit_peers_are_bounded_and_the_oldest_makes_room() {
        let t0 = Instant::now();
        let first = addr(1, None);
        let mut p = Peers::new(vec![first.clone()], t0);
        for port in 2..=MAX_DIAL_TARGETS as u16 {
            let _ = p.handle(
                Input::DialRequested {
                    addr: addr(port, None),
                },
                t0,
            );
        }
        let _ = p.handle(
            Input::DialRequested {
                addr: first.clone(),
            },
            t0,
        );
        assert_eq!(p.dial_targets(), MAX_DIAL_TARGETS, "no duplicates");
        let _ = p.handle(
            Input::DialRequested {
                addr: addr(9999, None),
            },
            t0,
        );
        assert_eq!(p.dial_targets(), MAX_DIAL_TARGETS);
        // The first target is gone: it is never re-dialed; the newest one is, after REDIAL_MIN.
        let dialed = redials(&p.handle(Input::Tick, t0 + REDIAL_MIN));
        assert!(!dialed.contains(&first) && dialed.contains(&addr(9999, None)));
        assert_eq!(dialed.len(), MAX_DIAL_TARGETS);
    }

    fn neighbour_dials(actions: &[Action]) -> Vec<PeerId> {
        actions
            .iter()
            .filter_map(|a| match a {
                Action::DialNeighbour { peer, .. } => Some(*peer),
                _ => None,
            })
            .collect()
    }

    #[test]
    fn a_neighbour_whose_first_dial_failed_is_redialed_with_back_off_until_connected() {
        let t0 = Instant::now();
        let a = peer(1);
        let mut p = Peers::new(Vec::new(), t0);
        let found = p.handle(
            Input::Discovered {
                peer: a,
                addrs: vec![addr(1, None)],
            },
            t0,
        );
        assert_eq!(
            found,
            vec![Action::DialNeighbour {
                peer: a,
                addrs: vec![addr(1, None)]
            }]
        );
        assert_eq!((p.neighbours(), p.neighbours_found()), (1, 1));
        // The dial failed (no connection): mDNS says nothing more, the table re-dials.
        let mut at = t0;
        let mut gaps = Vec::new();
        let mut last = t0;
        while at < t0 + secs(120) {
            at += secs(1);
            if !neighbour_dials(&p.handle(Input::Tick, at)).is_empty() {
                gaps.push(at.duration_since(last).as_secs());
                last = at;
            }
        }
        assert_eq!(&gaps[..5], &[2, 4, 8, 16, 30], "{gaps:?}");
        assert!(gaps[5..].iter().all(|g| *g == 30), "{gaps:?}");
        // Connected: no more dials, and the back-off starts again from the minimum.
        let _ = p.handle(
            Input::Connected {
                peer: a,
                first: true,
                dialed: Some(addr(1, None)),
            },
            at,
        );
        assert!(neighbour_dials(&p.handle(Input::Tick, at + secs(300))).is_empty());
        let _ = p.handle(Input::Disconnected { peer: a }, at + secs(300));
        let t = at + secs(300);
        assert_eq!(neighbour_dials(&p.handle(Input::Tick, t)), vec![a]);
        assert!(neighbour_dials(&p.handle(Input::Tick, t + secs(1))).is_empty());
        assert_eq!(
            neighbour_dials(&p.handle(Input::Tick, t + secs(2))),
            vec![a]
        );
        // mDNS no longer sees it: forgotten, never dialed again.
        let _ = p.handle(
            Input::Expired {
                peer: a,
                addrs: vec![addr(1, None)],
            },
            t + secs(2),
        );
        assert_eq!(p.neighbours(), 0);
        assert!(neighbour_dials(&p.handle(Input::Tick, t + secs(600))).is_empty());
    }

    #[test]
    fn connected_banned_or_foreign_neighbours_are_not_dialed_and_the_table_is_bounded() {
        let t0 = Instant::now();
        let (a, b, c) = (peer(1), peer(2), peer(3));
        let mut p = connected(t0, &[a]);
        let _ = misbehave(&mut p, b, Some(-200.0), t0);
        let _ = p.handle(Input::Foreign { peer: c }, t0);
        for x in [a, b, c] {
            let out = p.handle(
                Input::Discovered {
                    peer: x,
                    addrs: vec![addr(9, None)],
                },
                t0,
            );
            assert!(neighbour_dials(&out).is_empty(), "{out:?}");
        }
        assert!(neighbour_dials(&p.handle(Input::Tick, t0 + secs(60))).is_empty());
        let mut p = Peers::new(Vec::new(), t0);
        for i in 0..(MAX_NEIGHBOURS as u32 + 10) {
            let _ = p.handle(
                Input::Discovered {
                    peer: peer(100 + i),
                    addrs: (0..20).map(|port| addr(port, None)).collect(),
                },
                t0,
            );
        }
        assert_eq!(p.neighbours(), MAX_NEIGHBOURS);
        assert!(p
            .neighbours
            .values()
            .all(|n| n.addrs.len() <= MAX_NEIGHBOUR_ADDRS));
    }
}
