//! Errors of the node's operations: one enum, values a person can act on.

use std::path::{Path, PathBuf};

use coop_model::Rejection;

/// What went wrong in the node.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum NodeError {
    /// `coop init` has not run for this data dir.
    #[error("no coop identity in {0} (run `coop init --name NAME` first)")]
    NotInitialized(PathBuf),
    /// `coop init` already ran here.
    #[error("{0} already holds a coop identity")]
    AlreadyInitialized(PathBuf),
    /// No community founded or joined yet.
    #[error("this node has no community yet (run `coop found` or `coop join CODE`)")]
    NoCommunity,
    /// A community is already configured.
    #[error("this node already belongs to community {0}")]
    AlreadyInCommunity(String),
    /// Another process holds the store.
    #[error("the store in {0} is in use by another coop process (is `coop up` running for this data dir?)")]
    Locked(PathBuf),
    /// The store does not hold what its manifest records (or sled cannot read it): it may
    /// have lost acknowledged writes, so it refuses new ones until it is repaired.
    #[error("the store in {} is damaged: {what}; writes are refused — run `coop repair` (it keeps the damaged store aside) and then `coop verify`", dir.display())]
    Damaged {
        /// The data dir.
        dir: PathBuf,
        /// What is wrong.
        what: String,
    },
    /// The store or a file is damaged or of an unknown format.
    #[error("corrupt or unsupported data: {0}")]
    Corrupt(String),
    /// Bad input from the user.
    #[error("{0}")]
    InvalidInput(String),
    /// The data dir was made on another machine: writing as its device from here could
    /// fork the device (docs/RULES.md R15).
    #[error("{} was made on another machine; writing as its device here could fork it. Pair this machine as a new device (`coop device request` in a fresh data dir), or, if the old machine will never write again, run `coop device moved`", .0.display())]
    OtherMachine(PathBuf),
    /// The ledger refused a write; nothing was written.
    #[error("refused: {0}")]
    Refused(Rejection),
    /// I/O on a path.
    #[error("{}", path.display())]
    Io {
        /// The path.
        path: PathBuf,
        /// The error.
        source: std::io::Error,
    },
    /// The storage engine failed (or the store actor is gone).
    #[error("store: {what}")]
    Store {
        /// What the node was doing.
        what: String,
        /// The underlying error, when there is one.
        #[source]
        source: Option<Source>,
    },
    /// The running node's queue stayed full: it is busy, try again.
    #[error("the node is busy (too many requests waiting); try again in a moment")]
    Busy,
    /// The node's local API failed (or the running node answered with an error).
    #[error("node API: {what}")]
    Api {
        /// What the node was doing, or the running node's one-line answer.
        what: String,
        /// The underlying error, when there is one.
        #[source]
        source: Option<Source>,
    },
    /// The network failed to start (or has stopped).
    #[error("network: {what}")]
    Network {
        /// What the node was doing.
        what: String,
        /// The underlying error, when there is one.
        #[source]
        source: Option<Source>,
    },
}

/// The underlying cause of a [`NodeError`]: boxed, so that no third-party error type
/// (sled, libp2p, serde) is part of the node's API; callers read it through
/// [`std::error::Error::source`].
pub type Source = Box<dyn std::error::Error + Send + Sync + 'static>;

impl NodeError {
    /// The store failed while doing `what`, because of `source`.
    pub(crate) fn store(what: impl Into<String>, source: impl Into<Source>) -> NodeError {
        NodeError::Store {
            what: what.into(),
            source: Some(source.into()),
        }
    }

    /// The store failed while doing `what`, with no underlying error to show.
    pub(crate) fn store_msg(what: impl Into<String>) -> NodeError {
        NodeError::Store {
            what: what.into(),
            source: None,
        }
    }

    /// The local API failed while doing `what`, because of `source`.
    pub(crate) fn api(what: impl Into<String>, source: impl Into<Source>) -> NodeError {
        NodeError::Api {
            what: what.into(),
            source: Some(source.into()),
        }
    }

    /// The local API failed (or answered an error), with no underlying error to show.
    pub(crate) fn api_msg(what: impl Into<String>) -> NodeError {
        NodeError::Api {
            what: what.into(),
            source: None,
        }
    }

    /// The network failed while doing `what`, because of `source`.
    pub(crate) fn network(what: impl Into<String>, source: impl Into<Source>) -> NodeError {
        NodeError::Network {
            what: what.into(),
            source: Some(source.into()),
        }
    }

    /// The network failed, with no underlying error to show.
    pub(crate) fn network_msg(what: impl Into<String>) -> NodeError {
        NodeError::Network {
            what: what.into(),
            source: None,
        }
    }

    pub(crate) fn io(path: &Path, source: std::io::Error) -> NodeError {
        NodeError::Io {
            path: path.to_path_buf(),
            source,
        }
    }
}

/// An error and its causes on one line (`outer: inner: root`), for logs and for the API's
/// error answers, which carry one line.
pub(crate) fn one_line(e: &(dyn std::error::Error + 'static)) -> String {
    let mut line = e.to_string();
    let mut cause = e.source();
    while let Some(c) = cause {
        let msg = c.to_string();
        // A cause an outer message already quotes is not repeated.
        if !line.contains(&msg) {
            line.push_str(": ");
            line.push_str(&msg);
        }
        cause = c.source();
    }
    line
}
