//! The member's app against real nodes on 127.0.0.1: its security over plain HTTP
//! (`security`), every write form and a session kept across a restart (`forms`), and a real headless Chromium driven over WebDriver through two members'
//! browsers (`scenario`).
//!
//! The WebDriver client is this test's own (`webdriver`, ~150 lines over `http`): the
//! handful of commands used here need no TLS stack or async client crate.

mod devices;
mod forms;
mod http;
mod scenario;
mod security;
mod webdriver;

use std::path::Path;

use coop_model::{record, Params, Record};
use coop_node::run::{start, NodeHandle, RunOptions};
use coop_node::{DataDir, LocalNode};
use coop_tests::{init_dir, T0, TEST_SYNC_INTERVAL};

/// Alice (founder) and Bob (admitted), both holding the same log.
pub(crate) fn alice_and_bob(root: &Path) -> (DataDir, DataDir) {
    let alice = init_dir(root, "Alice");
    let mut founder =
        LocalNode::found(&alice, "Maple Street Co-op", Params::default(), T0).expect("found");
    let bob = init_dir(root, "Bob");
    let (node, _) =
        LocalNode::join(&bob, founder.community(), None, Vec::new(), T0 + 1).expect("join");
    let _ = founder.ingest(node.export()).expect("founder ingests join");
    founder
        .submit(
            Record::Vouch(record::Vouch {
                member: node.member(),
            }),
            T0 + 2,
        )
        .expect("vouch");
    let log = founder.export();
    drop(node);
    drop(founder);
    let mut n = LocalNode::open(&bob).expect("open Bob");
    let _ = n.ingest(log).expect("Bob ingests the log");
    (alice, bob)
}

/// A node serving the app on a port the OS picks.
pub(crate) async fn start_app_node(dir: &DataDir, peers: Vec<String>) -> NodeHandle {
    start(
        dir.clone(),
        RunOptions {
            listen: vec!["/ip4/127.0.0.1/tcp/0".into()],
            peers,
            mdns: false,
            sync_interval: TEST_SYNC_INTERVAL,
            ui: true,
            ui_port: None,
            relays: Vec::new(),
            sync_v1_only: false,
        },
    )
    .await
    .expect("start node")
}

/// The port a node serves its app on.
pub(crate) fn port(node: &NodeHandle) -> u16 {
    node.ui_addr().expect("the app is served").port()
}
