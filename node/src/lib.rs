//! coop's node: the durable store, the network, and the local control API around the
//! pure ledger core (`coop-model`). It re-implements none of the ledger's rules.
//!
//! - [`datadir`]: keys (0600), configuration, paths.
//! - [`store`]: the sled store of the signed-envelope log.
//! - [`local`]: [`LocalNode`], the store + keys + ledger, used directly when no node runs.
//! - [`control`]: the control protocol (JSON lines over a Unix socket) and its client.
//! - [`backend`]: [`Backend`], what CLI commands talk to (running node or store).
//! - [`error`]: [`NodeError`].

pub mod backend;
pub mod control;
pub mod datadir;
pub mod error;
pub mod local;
pub mod store;

pub use backend::Backend;
pub use datadir::{Config, DataDir};
pub use error::NodeError;
pub use local::{LocalNode, Status, VerifyReport};
pub use store::Store;
