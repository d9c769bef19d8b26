//! Peers that persist: a node restarted with default options comes back on the same port,
//! and it and its peer find each other again with nobody telling them (the peer store).

use std::time::Duration;

use coop_node::peerstore::Source;
use coop_node::NodeHandle;
use coop_tests::{addr, community, converged, describe, proposal, start_node, wait_until};

/// Whether `a` and `b` are connected to each other, as each reports it.
fn linked(a: &NodeHandle, b: &NodeHandle) -> bool {
    a.peers().contains(&b.peer_id()) && b.peers().contains(&a.peer_id())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restarted_node_keeps_its_port_and_reconnects_untold() {
    coop_tests::init_tracing();
    let root = tempfile::tempdir().unwrap();
    let c = community(root.path(), 1);
    let (alice_dir, bob_dir) = (&c.dirs[0], &c.dirs[1]);

    // Bob knows nobody; Alice is told Bob's address once, on the command line (not kept in
    // config.json).
    let bob = start_node(bob_dir, vec![]).await;
    let bob_addr = addr(&bob);
    let alice = start_node(alice_dir, vec![bob_addr.clone()]).await;
    let alice_addr = addr(&alice);
    let ok = wait_until(Duration::from_secs(120), || async { linked(&alice, &bob) }).await;
    assert!(
        ok,
        "first connection: {}",
        describe(&[alice.clone(), bob.clone()]).await
    );
    assert_eq!(
        alice_dir.config().unwrap().peers,
        Vec::<String>::new(),
        "--peer is not written to config.json"
    );

    // Alice restarts with default options (port 0, no peers): same port, and she dials
    // Bob from her peer store; nobody tells anyone anything.
    alice.shutdown().await.unwrap();
    let ok = wait_until(Duration::from_secs(120), || async {
        bob.peers().is_empty()
    })
    .await;
    assert!(ok, "Bob saw Alice go");
    let (book, warning) = alice_dir.peer_book();
    assert!(warning.is_none(), "{warning:?}");
    let kept = book
        .peers
        .iter()
        .find(|p| p.addr == bob_addr)
        .unwrap_or_else(|| panic!("Bob's address is in Alice's peer store: {book:?}"));
    assert_eq!(kept.source, Source::Manual);
    assert!(kept.last_seen.is_some(), "{kept:?}");
    assert!(alice_dir.config().unwrap().listen_port.is_some());

    let alice = start_node(alice_dir, vec![]).await;
    assert_eq!(addr(&alice), alice_addr, "Alice came back on the same port");
    alice
        .submit(proposal("after Alice's restart"))
        .await
        .unwrap();
    let nodes = [alice.clone(), bob.clone()];
    let ok = wait_until(Duration::from_secs(120), || async { linked(&alice, &bob) }).await;
    assert!(
        ok,
        "reconnect after Alice's restart: {}",
        describe(&nodes).await
    );
    // Alice wrote the only new change: both hold what she holds.
    let total = alice.status().await.unwrap().changes;
    let ok = wait_until(Duration::from_secs(120), || converged(&nodes, total)).await;
    assert!(
        ok,
        "convergence after Alice's restart: {}",
        describe(&nodes).await
    );

    // Now Bob restarts: he never dialed Alice, but she told him where she listens
    // (identify), so he dials her; and she redials him. Either way they meet again.
    bob.shutdown().await.unwrap();
    let bob = start_node(bob_dir, vec![]).await;
    assert_eq!(addr(&bob), bob_addr, "Bob came back on the same port");
    let (book, _) = bob_dir.peer_book();
    assert!(
        book.peers.iter().any(|p| p.addr == alice_addr),
        "Alice's listen address is in Bob's peer store: {book:?}"
    );
    bob.submit(proposal("after Bob's restart")).await.unwrap();
    let nodes = [alice.clone(), bob.clone()];
    let ok = wait_until(Duration::from_secs(120), || async { linked(&alice, &bob) }).await;
    assert!(
        ok,
        "reconnect after Bob's restart: {}",
        describe(&nodes).await
    );
    let total = total + 1;
    let ok = wait_until(Duration::from_secs(120), || converged(&nodes, total)).await;
    assert!(
        ok,
        "convergence after the restarts: {}",
        describe(&nodes).await
    );
    for n in &nodes {
        n.shutdown().await.unwrap();
    }
}

/// A node must never fail to start because of what it remembered: a bad address in the
/// peer store or in config.json is skipped with a warning.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_stored_addresses_never_stop_a_node() {
    coop_tests::init_tracing();
    let root = tempfile::tempdir().unwrap();
    let c = community(root.path(), 0);
    let dir = &c.dirs[0];
    let mut config = dir.config().unwrap();
    config.peers = vec!["not a multiaddr".into(), "/ip4/0.0.0.0/tcp/0".into()];
    dir.save_config(&config).unwrap();
    std::fs::write(
        dir.peers_path(),
        r#"{"version": 1, "peers": [{"addr": "/garbage", "source": "mdns"}]}"#,
    )
    .unwrap();
    let node = start_node(dir, vec![]).await;
    assert!(!node.listen_addrs().is_empty());
    node.shutdown().await.unwrap();
    // A peer store that is not even JSON is a warning too.
    std::fs::write(dir.peers_path(), "{{{").unwrap();
    let node = start_node(dir, vec![]).await;
    node.shutdown().await.unwrap();
}
