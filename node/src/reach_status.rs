//! What a running node knows about its reachability, as `coop status` and the status API
//! show it: AutoNAT's verdict, the relays and whether they hold a reservation for us, and
//! for each connected peer whether the connection is direct or relayed. A leaf module (plain
//! data), so that [`crate::local::Status`] can carry it without knowing the network.

use serde::{Deserialize, Serialize};

/// The reachability part of a running node's status.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReachStatus {
    /// AutoNAT's verdict: `public` (others can dial us), `private` (behind a NAT or a
    /// firewall: reach us through a relay) or `unknown` (not probed yet).
    pub reachability: String,
    /// The address AutoNAT confirmed others can dial, when `public`.
    #[serde(default)]
    pub public_address: Option<String>,
    /// The relays this node was given (`coop up --relay`), one entry each.
    #[serde(default)]
    pub relays: Vec<RelayLink>,
    /// Every connected peer (relays included) and how it is connected.
    #[serde(default)]
    pub connections: Vec<PeerLink>,
    /// Relayed connections upgraded to direct ones by hole punching (DCUtR) since start.
    #[serde(default)]
    pub hole_punches: u64,
    /// Hole punches that failed since start (the connection stayed relayed).
    #[serde(default)]
    pub hole_punch_failures: u64,
}

/// One configured relay.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RelayLink {
    /// The relay's address as given (ends in `/p2p/<relay peer id>`).
    pub address: String,
    /// Whether a connection to the relay is open.
    pub connected: bool,
    /// Whether the relay holds a reservation for us (others can reach us through it).
    pub reserved: bool,
}

/// How a connected peer is connected.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PeerLink {
    /// The peer's libp2p id.
    pub peer: String,
    /// `direct` when at least one connection does not go through a relay (a LAN or
    /// hole-punched connection), else `relayed`.
    pub via: String,
    /// Whether the peer is one of our relays.
    pub relay: bool,
}

impl PeerLink {
    /// `via` for a direct connection.
    pub const DIRECT: &'static str = "direct";
    /// `via` for a connection through a relay only.
    pub const RELAYED: &'static str = "relayed";

    /// Whether the peer has a direct connection.
    pub fn is_direct(&self) -> bool {
        self.via == Self::DIRECT
    }
}
