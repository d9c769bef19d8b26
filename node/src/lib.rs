//! coop's node: the durable store, the network, and the local API around the
//! pure ledger core (`coop-model`). It re-implements none of the ledger's rules.
//!
//! - [`datadir`]: keys (0600), configuration, paths.
//! - [`store`]: the sled store of the signed-envelope log, checked against its manifest.
//! - `manifest`: the independent record of what the store must hold.
//! - `snapshot`: a cache of the Automerge document beside the store, so opening skips
//!   applying every change again (the log stays the truth).
//! - [`repair`]: a new store from what a damaged one still holds plus other sources.
//! - [`local`]: [`LocalNode`], the store + keys + ledger, used directly when no node runs.
//! - [`api`]: the local HTTP/JSON API (docs/API.md), its server limits and its client.
//! - [`app`]: the member's web app on the loopback port (docs/APP.md): pages, forms, sessions.
//! - [`run`]: the running node (`coop up`): [`run::run`], [`run::start`], [`NodeHandle`].
//! - [`net`]: the swarm event loop (gossip, catch-up sync, discovery, peer penalties).
//! - [`reach`]: reaching members behind NATs: relay client, AutoNAT, DCUtR, rendezvous.
//! - [`reach_status`]: what `coop status` shows of it ([`reach_status::ReachStatus`]).
//! - [`relay`]: `coop relay`, a community's relay, AutoNAT server and rendezvous point.
//! - [`peerstore`]: the peer store (`peers.json`): addresses that worked, redialled on start.
//! - `peers`: the peer table and sync driver as sans-I/O state, driven by [`net`].
//! - [`bundle`]: the compact batch of `/coop/sync/2` (an Automerge bundle and signatures).
//! - [`wire`]: the wire protocols (transport, gossip framing, sync messages, peer scoring).
//! - `actor`: the store actor that owns the [`LocalNode`] while the node runs.
//! - [`backend`]: [`Backend`], what CLI commands talk to (running node or store).
//! - [`event`]: what a running node reports, [`NodeEvent`].
//! - [`invite`]: the invite code a newcomer joins with (`coop invite`, `coop join`, the app).
//! - [`error`]: the error type, [`NodeError`].

// A refusal (`Rejection`) is a value people act on, carried whole in errors on purpose.
#![allow(clippy::result_large_err, clippy::large_enum_variant)]

mod actor;
pub mod api;
pub mod app;
pub mod backend;
pub mod bundle;
pub mod datadir;
pub mod device;
pub mod error;
pub mod event;
pub mod invite;
pub mod keys;
pub mod local;
mod manifest;
pub mod net;
mod peers;
pub mod peerstore;
pub mod reach;
pub mod reach_status;
pub mod relay;
pub mod repair;
pub mod run;
mod snapshot;
pub mod store;
pub mod wire;

pub use backend::Backend;
pub use datadir::{Config, DataDir};
pub use error::NodeError;
pub use event::NodeEvent;
pub use local::{LocalNode, MdnsStatus, ProofIngest, Status, VerifyReport};
pub use run::{NodeHandle, RunOptions};
pub use store::Store;
