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
    /// The store or a file is damaged or of an unknown format.
    #[error("corrupt or unsupported data: {0}")]
    Corrupt(String),
    /// Bad input from the user.
    #[error("{0}")]
    InvalidInput(String),
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
    /// The storage engine failed.
    #[error("store: {0}")]
    Store(String),
    /// The control endpoint failed.
    #[error("control endpoint: {0}")]
    Control(String),
    /// The network failed to start.
    #[error("network: {0}")]
    Network(String),
}

impl NodeError {
    pub(crate) fn io(path: &Path, source: std::io::Error) -> NodeError {
        NodeError::Io {
            path: path.to_path_buf(),
            source,
        }
    }
}
