//! The peer store: addresses of other nodes that this node has reached or been told about,
//! kept in `<data dir>/peers.json` so a restarted node finds its peers again without being
//! told (docs/PROTOCOL.md §10).
//!
//! Each entry is one dialable multiaddr with where it came from ([`Source`]) and when a
//! connection to it last worked. The store is bounded ([`MAX_STORED`]): a full store forgets
//! the learned address (mDNS, peer) seen longest ago before any address a person gave
//! (invite, manual). Both the running node and `coop peer add|remove` write it; every write
//! is a read-modify-write under an exclusive lock on `peers.lock`, written atomically (temp
//! file, fsync, rename), so neither loses the other's change.
//!
//! A stored address that no longer parses is skipped with a warning, never an error: a node
//! must not fail to start because of what it remembered.

use std::fs;
use std::io::Write;
use std::path::Path;
use std::str::FromStr;

use libp2p::multiaddr::Protocol;
use libp2p::{Multiaddr, PeerId};
use serde::{Deserialize, Serialize};

use crate::datadir::DataDir;
use crate::error::NodeError;

/// Version of `peers.json`.
pub const PEERS_VERSION: u32 = 1;
/// Most addresses the store keeps.
pub const MAX_STORED: usize = 128;
/// Most addresses kept for one peer.
pub const MAX_ADDRS_PER_PEER: usize = 8;

/// Where a stored address came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Source {
    /// Discovered on the LAN by mDNS.
    Mdns,
    /// Told by a peer about itself (identify) on a connection it opened to us.
    Peer,
    /// Carried by the invite code this member joined with.
    Invite,
    /// Added by hand (`coop peer add`, `coop up --peer`).
    Manual,
}

impl Source {
    /// The word used in files, `--json` and tables.
    pub fn as_str(self) -> &'static str {
        match self {
            Source::Mdns => "mdns",
            Source::Peer => "peer",
            Source::Invite => "invite",
            Source::Manual => "manual",
        }
    }

    /// Whether a person gave this address (kept before anything learned).
    pub fn is_given(self) -> bool {
        matches!(self, Source::Invite | Source::Manual)
    }
}

impl std::fmt::Display for Source {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One stored address.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StoredPeer {
    /// The multiaddr, ending in `/p2p/<peer id>` when the peer is known.
    pub addr: String,
    /// The peer's id, when known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub peer: Option<String>,
    /// Where the address came from.
    pub source: Source,
    /// When a connection to it last worked (Unix seconds), if ever.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_seen: Option<u64>,
}

/// The stored addresses.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct PeerBook {
    /// Format version.
    pub version: u32,
    /// The addresses, at most [`MAX_STORED`].
    pub peers: Vec<StoredPeer>,
}

/// Something the running node saw: a connection to `addr` worked at `when` (or, with
/// `worked: false`, a peer told us it listens there).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Observation {
    /// The address (with `/p2p/<peer id>`).
    pub addr: Multiaddr,
    /// Where it came from.
    pub source: Source,
    /// Unix seconds.
    pub when: u64,
    /// Whether a connection to it worked (else it was only heard of).
    pub worked: bool,
}

/// Why an address cannot be stored, dialled or put in an invite.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum AddrError {
    /// Not a multiaddr at all.
    #[error("{addr:?} is not a multiaddr ({why})")]
    Malformed {
        /// The text given.
        addr: String,
        /// What the parser said.
        why: String,
    },
    /// A multiaddr, but not one a node can dial.
    #[error("{addr:?} is not a dialable address ({why})")]
    NotDialable {
        /// The text given.
        addr: String,
        /// What is missing or wrong.
        why: &'static str,
    },
}

impl From<AddrError> for NodeError {
    fn from(e: AddrError) -> NodeError {
        NodeError::InvalidInput(e.to_string())
    }
}

/// Parses an address another node can dial: `/ip4|ip6|dns|dns4|dns6/<host>/tcp/<port>`,
/// optionally followed by `/p2p/<peer id>` (and, through a relay, `/p2p-circuit/p2p/<id>`).
/// Refuses the unspecified address and port 0, which nobody can dial.
pub fn parse_dialable(addr: &str) -> Result<Multiaddr, AddrError> {
    let text = addr.trim();
    let m = Multiaddr::from_str(text).map_err(|e| AddrError::Malformed {
        addr: addr.to_string(),
        why: e.to_string(),
    })?;
    let bad = |why| AddrError::NotDialable {
        addr: addr.to_string(),
        why,
    };
    let mut it = m.iter();
    match it.next() {
        Some(Protocol::Ip4(ip)) if ip.is_unspecified() => return Err(bad("unspecified address")),
        Some(Protocol::Ip6(ip)) if ip.is_unspecified() => return Err(bad("unspecified address")),
        Some(Protocol::Ip4(_) | Protocol::Ip6(_))
        | Some(Protocol::Dns(_) | Protocol::Dns4(_) | Protocol::Dns6(_)) => {}
        _ => return Err(bad("it must start with /ip4, /ip6 or /dns")),
    }
    match it.next() {
        Some(Protocol::Tcp(0)) => return Err(bad("port 0")),
        Some(Protocol::Tcp(_)) => {}
        _ => return Err(bad("coop speaks TCP: /tcp/<port> must follow the host")),
    }
    for p in it {
        match p {
            Protocol::P2p(_) | Protocol::P2pCircuit => {}
            _ => return Err(bad("only /p2p/<peer id> may follow the port")),
        }
    }
    Ok(m)
}

/// Parses a relay's address: dialable and naming the relay's peer id (`/p2p/<id>` last).
pub fn parse_relay(addr: &str) -> Result<Multiaddr, AddrError> {
    let m = parse_dialable(addr)?;
    if !matches!(m.iter().last(), Some(Protocol::P2p(_)))
        || m.iter().any(|p| p == Protocol::P2pCircuit)
    {
        return Err(AddrError::NotDialable {
            addr: addr.to_string(),
            why: "a relay address ends in /p2p/<the relay's peer id>",
        });
    }
    Ok(m)
}

/// The peer id an address names (its last `/p2p/<id>`), if any.
pub fn peer_in(addr: &Multiaddr) -> Option<PeerId> {
    addr.iter()
        .filter_map(|p| match p {
            Protocol::P2p(id) => Some(id),
            _ => None,
        })
        .last()
}

/// The libp2p peer id of a device (its node's id: the device key is the node's key).
pub fn device_peer_id(device: &coop_model::DeviceId) -> Option<PeerId> {
    let pk = libp2p::identity::ed25519::PublicKey::try_from_bytes(&device.0).ok()?;
    Some(libp2p::identity::PublicKey::from(pk).to_peer_id())
}

/// This data dir's own peer id.
pub fn own_peer_id(dir: &DataDir) -> Result<PeerId, NodeError> {
    Ok(crate::wire::keypair_from_seed(dir.device()?.seed())
        .public()
        .to_peer_id())
}

impl PeerBook {
    /// An empty book.
    pub fn new() -> PeerBook {
        PeerBook {
            version: PEERS_VERSION,
            peers: Vec::new(),
        }
    }

    /// The stored addresses that parse as dialable, and a warning for each that does not.
    pub fn dialable(&self) -> (Vec<(Multiaddr, Source)>, Vec<String>) {
        let mut ok = Vec::new();
        let mut warnings = Vec::new();
        for p in &self.peers {
            match parse_dialable(&p.addr) {
                Ok(m) => ok.push((m, p.source)),
                Err(e) => warnings.push(format!("skipping a stored peer address: {e}")),
            }
        }
        (ok, warnings)
    }

    /// Adds an address given by a person (or updates its source), keeping the bound.
    /// Returns whether it was new.
    pub fn add(&mut self, addr: &Multiaddr, source: Source) -> bool {
        let text = addr.to_string();
        if let Some(p) = self.peers.iter_mut().find(|p| p.addr == text) {
            if source.is_given() || !p.source.is_given() {
                p.source = source;
            }
            return false;
        }
        self.make_room();
        self.peers.push(StoredPeer {
            addr: text,
            peer: peer_in(addr).map(|p| p.to_string()),
            source,
            last_seen: None,
        });
        true
    }

    /// Records what the node saw. An address a person gave keeps its source; a learned one
    /// takes the latest. A peer keeps at most [`MAX_ADDRS_PER_PEER`] learned addresses.
    pub fn observe(&mut self, o: &Observation) {
        let text = o.addr.to_string();
        match self.peers.iter_mut().find(|p| p.addr == text) {
            Some(p) => {
                if !p.source.is_given() {
                    p.source = o.source;
                }
                if o.worked {
                    p.last_seen = Some(o.when);
                }
            }
            None => {
                let peer = peer_in(&o.addr).map(|p| p.to_string());
                if peer.is_some() {
                    let learned: Vec<usize> = (0..self.peers.len())
                        .filter(|&i| self.peers[i].peer == peer && !self.peers[i].source.is_given())
                        .collect();
                    if learned.len() >= MAX_ADDRS_PER_PEER {
                        // The one of this peer seen longest ago makes room.
                        if let Some(&i) = learned.iter().min_by_key(|&&i| self.peers[i].last_seen) {
                            self.peers.remove(i);
                        }
                    }
                }
                self.make_room();
                self.peers.push(StoredPeer {
                    addr: text,
                    peer,
                    source: o.source,
                    last_seen: o.worked.then_some(o.when),
                });
            }
        }
    }

    /// Removes every address that is `what` or names the peer `what`; returns how many.
    pub fn remove(&mut self, what: &str) -> usize {
        let before = self.peers.len();
        let as_addr = Multiaddr::from_str(what.trim()).ok().map(|m| m.to_string());
        self.peers.retain(|p| {
            Some(&p.addr) != as_addr.as_ref() && p.addr != what && p.peer.as_deref() != Some(what)
        });
        before - self.peers.len()
    }

    /// Makes room for one more entry: forgets learned before given, then the one seen
    /// longest ago (never seen counts as oldest), then the first stored.
    fn make_room(&mut self) {
        while self.peers.len() >= MAX_STORED {
            let victim = (0..self.peers.len())
                .min_by_key(|&i| (self.peers[i].source.is_given(), self.peers[i].last_seen, i));
            match victim {
                Some(i) => {
                    self.peers.remove(i);
                }
                None => return,
            }
        }
    }
}

impl DataDir {
    /// The peer store's file.
    pub fn peers_path(&self) -> std::path::PathBuf {
        self.root().join("peers.json")
    }

    /// Reads the peer store (empty when there is none). A file that does not parse is
    /// reported as a warning and read as empty: it must never stop a node from starting.
    pub fn peer_book(&self) -> (PeerBook, Option<String>) {
        let path = self.peers_path();
        match fs::read_to_string(&path) {
            Ok(text) => match serde_json::from_str::<PeerBook>(&text) {
                Ok(b) if b.version == PEERS_VERSION => {
                    let mut b = b;
                    b.peers.truncate(MAX_STORED);
                    (b, None)
                }
                Ok(b) => (
                    PeerBook::new(),
                    Some(format!(
                        "{}: unsupported version {}; ignoring it",
                        path.display(),
                        b.version
                    )),
                ),
                Err(e) => (
                    PeerBook::new(),
                    Some(format!("{}: {e}; ignoring it", path.display())),
                ),
            },
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => (PeerBook::new(), None),
            Err(e) => (
                PeerBook::new(),
                Some(format!("{}: {e}; ignoring it", path.display())),
            ),
        }
    }

    /// Changes the peer store: reads it, applies `f`, writes it atomically, all under an
    /// exclusive lock so the node and `coop peer` never lose each other's change. A file
    /// that does not parse is replaced (the warning says so).
    pub fn update_peer_book<R>(
        &self,
        f: impl FnOnce(&mut PeerBook) -> R,
    ) -> Result<(R, Option<String>), NodeError> {
        let lock_path = self.root().join("peers.lock");
        let lock = fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&lock_path)
            .map_err(|e| NodeError::io(&lock_path, e))?;
        lock.lock().map_err(|e| NodeError::io(&lock_path, e))?;
        let (mut book, warning) = self.peer_book();
        let r = f(&mut book);
        let written = write_atomically(&self.peers_path(), &book);
        let _ = lock.unlock();
        written.map(|()| (r, warning))
    }
}

fn write_atomically(path: &Path, book: &PeerBook) -> Result<(), NodeError> {
    let tmp = path.with_extension("json.tmp");
    let text = serde_json::to_string_pretty(book).map_err(|e| NodeError::Corrupt(e.to_string()))?;
    let mut opts = fs::OpenOptions::new();
    opts.write(true).create(true).truncate(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        opts.mode(0o600);
    }
    let mut f = opts.open(&tmp).map_err(|e| NodeError::io(&tmp, e))?;
    f.write_all(text.as_bytes())
        .map_err(|e| NodeError::io(&tmp, e))?;
    f.sync_all().map_err(|e| NodeError::io(&tmp, e))?;
    fs::rename(&tmp, path).map_err(|e| NodeError::io(path, e))
}

#[cfg(test)]
mod tests {
    use super::*;

    const ID: &str = "12D3KooWD3eckifWpRn9wQpMG9R9hX3sD158z7EqHWmweQAJU5SA";

    fn addr(port: u16) -> Multiaddr {
        format!("/ip4/10.0.0.1/tcp/{port}/p2p/{ID}")
            .parse()
            .unwrap()
    }

    #[test]
    fn dialable_addresses_are_checked_naming_the_address() {
        for ok in [
            "/ip4/192.168.1.20/tcp/4001",
            "/ip6/::1/tcp/4001",
            "/dns4/coop.example.org/tcp/4001",
            &format!("/ip4/1.2.3.4/tcp/4001/p2p/{ID}"),
            &format!("/ip4/1.2.3.4/tcp/4001/p2p/{ID}/p2p-circuit/p2p/{ID}"),
        ] {
            parse_dialable(ok).unwrap_or_else(|e| panic!("{ok}: {e}"));
        }
        for (bad, why) in [
            ("not an address", "not a multiaddr"),
            ("/ip4/999.1.1.1/tcp/1", "not a multiaddr"),
            ("/ip4/0.0.0.0/tcp/4001", "unspecified"),
            ("/ip4/1.2.3.4/tcp/0", "port 0"),
            ("/ip4/1.2.3.4/udp/4001", "TCP"),
            ("/ip4/1.2.3.4", "TCP"),
            ("/tcp/4001", "must start with"),
            ("/ip4/1.2.3.4/tcp/1/ws", "only /p2p"),
        ] {
            let e = parse_dialable(bad).unwrap_err().to_string();
            assert!(e.contains(why) && e.contains(bad), "{bad}: {e}");
            assert!(!e.contains('\n'));
        }
        parse_relay(&format!("/ip4/1.2.3.4/tcp/4001/p2p/{ID}")).unwrap();
        let e = parse_relay("/ip4/1.2.3.4/tcp/4001")
            .unwrap_err()
            .to_string();
        assert!(e.contains("peer id"), "{e}");
    }

    #[test]
    fn a_device_id_gives_its_nodes_peer_id() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = DataDir::new(tmp.path());
        dir.init("A", [1; 32], [2; 32]).unwrap();
        let device = dir.device().unwrap().device_id();
        assert_eq!(device_peer_id(&device), Some(own_peer_id(&dir).unwrap()));
    }

    #[test]
    fn observations_update_and_given_sources_stay() {
        let mut b = PeerBook::new();
        assert!(b.add(&addr(1), Source::Invite));
        b.observe(&Observation {
            addr: addr(1),
            source: Source::Mdns,
            when: 50,
            worked: true,
        });
        assert_eq!(b.peers[0].source, Source::Invite);
        assert_eq!(b.peers[0].last_seen, Some(50));
        assert_eq!(b.peers[0].peer.as_deref(), Some(ID));
        b.observe(&Observation {
            addr: addr(2),
            source: Source::Peer,
            when: 60,
            worked: false,
        });
        assert_eq!(b.peers[1].last_seen, None);
        assert_eq!(b.remove(ID), 2);
        assert!(b.peers.is_empty());
    }

    #[test]
    fn the_store_is_bounded_and_forgets_learned_addresses_first() {
        let mut b = PeerBook::new();
        b.add(&"/ip4/10.9.9.9/tcp/1".parse().unwrap(), Source::Manual);
        // Learned addresses of many peers (no /p2p, so the per-peer cap does not apply).
        for i in 0..(MAX_STORED as u16 + 40) {
            b.observe(&Observation {
                addr: format!("/ip4/10.0.1.1/tcp/{}", 1000 + i).parse().unwrap(),
                source: Source::Mdns,
                when: u64::from(i),
                worked: true,
            });
        }
        assert_eq!(b.peers.len(), MAX_STORED);
        assert!(b.peers.iter().any(|p| p.source == Source::Manual));
        // The oldest learned ones went.
        assert!(!b.peers.iter().any(|p| p.addr == "/ip4/10.0.1.1/tcp/1000"));
        // One peer keeps at most MAX_ADDRS_PER_PEER learned addresses.
        let mut b = PeerBook::new();
        for port in 1..=20 {
            b.observe(&Observation {
                addr: addr(port),
                source: Source::Peer,
                when: u64::from(port),
                worked: true,
            });
        }
        assert_eq!(b.peers.len(), MAX_ADDRS_PER_PEER);
        assert!(b.peers.iter().any(|p| p.addr == addr(20).to_string()));
    }

    #[test]
    fn the_file_is_written_atomically_and_bad_entries_are_skipped() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = DataDir::new(tmp.path());
        let (book, warning) = dir.peer_book();
        assert!(book.peers.is_empty() && warning.is_none());
        dir.update_peer_book(|b| b.add(&addr(7), Source::Manual))
            .unwrap();
        // A hand-edited bad entry beside a good one.
        let mut text = std::fs::read_to_string(dir.peers_path()).unwrap();
        text = text.replace(
            "\"peers\": [",
            "\"peers\": [{\"addr\": \"garbage\", \"source\": \"manual\"},",
        );
        std::fs::write(dir.peers_path(), text).unwrap();
        let (book, _) = dir.peer_book();
        let (ok, warnings) = book.dialable();
        assert_eq!(ok, vec![(addr(7), Source::Manual)]);
        assert_eq!(warnings.len(), 1);
        assert!(warnings[0].contains("garbage"), "{warnings:?}");
        // A file that is not JSON at all is a warning, and the next update replaces it.
        std::fs::write(dir.peers_path(), "{not json").unwrap();
        let (book, warning) = dir.peer_book();
        assert!(book.peers.is_empty() && warning.is_some());
        let (_, warning) = dir
            .update_peer_book(|b| b.add(&addr(8), Source::Manual))
            .unwrap();
        assert!(warning.is_some());
        assert_eq!(dir.peer_book().0.peers.len(), 1);
        assert!(!dir.root().join("peers.json.tmp").exists());
    }
}
