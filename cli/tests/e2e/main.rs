//! End-to-end tests of the real `coop` binary: every command, refusals (exit 1, one line,
//! nothing written), usage errors (exit 2), `--json` shapes, sync files between data dirs
//! that never connect, two `coop up` processes syncing over 127.0.0.1, `coop demo`, and
//! `coop verify` on a tampered store. Waits are conditions with generous deadlines.

pub(crate) mod support;

mod aid;
mod app;
mod audit;
mod demo;
mod devices;
mod governance;
mod insight;
mod membership;
mod network;
mod peers;
mod pools;
mod support_points;
mod sync;
mod timebank;
mod usage;

mod purchase;
mod store_damage;
mod through_node;
