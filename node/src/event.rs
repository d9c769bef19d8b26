//! What a running node reports to its subscribers ([`NodeEvent`]): a leaf module, so that
//! the store actor and the swarm loop can emit events without depending on [`crate::run`].

use coop_model::RecordId;

/// Something that happened in a running node.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum NodeEvent {
    /// A change was accepted (from any source) and is durable.
    Accepted {
        /// Its id.
        id: RecordId,
        /// Written or imported here (`false`: received from a peer).
        local: bool,
    },
    /// A peer connected.
    PeerConnected(String),
    /// A peer's last connection closed.
    PeerDisconnected(String),
    /// A peer sent data the gate refused.
    Rejected {
        /// The peer.
        peer: String,
        /// Why (reason, change and author).
        reason: String,
    },
    /// The ledger refused a record written here (`POST /records`, a `coop` command through
    /// the node); nothing was written.
    Refused {
        /// The refusal's reason name, e.g. `over_proposal_cap`.
        reason: String,
        /// One line for a person.
        detail: String,
    },
    /// A peer was banned for misbehaviour.
    Banned(String),
    /// A new listen address (with `/p2p/<peer id>`).
    Listening(String),
    /// A catch-up sync round with a peer ingested a batch.
    CatchUp {
        /// The peer.
        peer: String,
        /// Changes newly accepted from this batch.
        accepted: usize,
        /// Whether the peer has more to send.
        more: bool,
    },
}
