//! Partitions heal: a node stopped while others write catches up after a restart, and two
//! halves that wrote concurrently converge once connected.

use coop_tests::{
    addr, community, converged, describe, proposal, start_node, wait_until, DEADLINE,
};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stopped_node_catches_up_after_restart() {
    coop_tests::init_tracing();
    let root = tempfile::tempdir().unwrap();
    let c = community(root.path(), 2);
    let a = start_node(&c.dirs[0], vec![]).await;
    let b = start_node(&c.dirs[1], vec![addr(&a)]).await;
    let d = start_node(&c.dirs[2], vec![addr(&a)]).await;
    let base = a.status().await.unwrap().changes;
    d.submit(proposal("before the stop")).await.unwrap();
    let all = [a.clone(), b.clone(), d.clone()];
    assert!(
        wait_until(DEADLINE, || converged(&all, base + 1)).await,
        "{}",
        describe(&all).await
    );

    d.shutdown().await.unwrap();
    for i in 0..5 {
        a.submit(proposal(&format!("a while d is away {i}")))
            .await
            .unwrap();
        b.submit(proposal(&format!("b while d is away {i}")))
            .await
            .unwrap();
    }
    let d = start_node(&c.dirs[2], vec![addr(&a)]).await;
    d.submit(proposal("d after the restart")).await.unwrap();
    let all = [a.clone(), b.clone(), d.clone()];
    assert!(
        wait_until(DEADLINE, || converged(&all, base + 12)).await,
        "{}",
        describe(&all).await
    );
    for n in &all {
        n.shutdown().await.unwrap();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_halves_that_wrote_concurrently_converge() {
    coop_tests::init_tracing();
    let root = tempfile::tempdir().unwrap();
    let c = community(root.path(), 3);
    // Two halves that do not know each other.
    let a = start_node(&c.dirs[0], vec![]).await;
    let b = start_node(&c.dirs[1], vec![addr(&a)]).await;
    let x = start_node(&c.dirs[2], vec![]).await;
    let y = start_node(&c.dirs[3], vec![addr(&x)]).await;
    let base = a.status().await.unwrap().changes;
    for i in 0..4 {
        a.submit(proposal(&format!("left a {i}"))).await.unwrap();
        b.submit(proposal(&format!("left b {i}"))).await.unwrap();
        x.submit(proposal(&format!("right x {i}"))).await.unwrap();
        y.submit(proposal(&format!("right y {i}"))).await.unwrap();
    }
    let left = [a.clone(), b.clone()];
    let right = [x.clone(), y.clone()];
    assert!(wait_until(DEADLINE, || converged(&left, base + 8)).await);
    assert!(wait_until(DEADLINE, || converged(&right, base + 8)).await);
    let l = left[0].status().await.unwrap();
    let r = right[0].status().await.unwrap();
    assert_ne!(l.digest, r.digest, "the halves differ before they meet");

    // Heal: one link between the halves.
    b.dial(addr(&x)).await.unwrap();
    let all = [a.clone(), b.clone(), x.clone(), y.clone()];
    assert!(
        wait_until(DEADLINE, || converged(&all, base + 16)).await,
        "{}",
        describe(&all).await
    );
    for n in &all {
        n.shutdown().await.unwrap();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn explicit_peers_are_redialed_when_they_come_back() {
    coop_tests::init_tracing();
    let root = tempfile::tempdir().unwrap();
    let c = community(root.path(), 1);
    let a = start_node(&c.dirs[0], vec![]).await;
    let a_addr = addr(&a);
    let b = start_node(&c.dirs[1], vec![a_addr.clone()]).await;
    let base = a.status().await.unwrap().changes;
    let both = [a.clone(), b.clone()];
    assert!(wait_until(DEADLINE, || converged(&both, base)).await);
    let a_peer = a.peer_id();

    // `a` goes away; `b` writes meanwhile.
    a.shutdown().await.unwrap();
    assert!(
        wait_until(DEADLINE, || async { !b.peers().contains(&a_peer) }).await,
        "b never noticed a left"
    );
    b.submit(proposal("while a is away")).await.unwrap();

    // `a` comes back on the same address, knowing no peers: `b` must dial it again.
    let listen = a_addr
        .rsplit_once("/p2p/")
        .map(|(l, _)| l.to_string())
        .unwrap();
    let a = coop_node::run::start(
        c.dirs[0].clone(),
        coop_node::RunOptions {
            listen: vec![listen],
            ..coop_tests::test_options(vec![])
        },
    )
    .await
    .unwrap();
    assert_eq!(a.peer_id(), a_peer, "the peer id is stable per device");
    let both = [a.clone(), b.clone()];
    assert!(
        wait_until(DEADLINE, || converged(&both, base + 1)).await,
        "{}",
        describe(&both).await
    );
    a.shutdown().await.unwrap();
    b.shutdown().await.unwrap();
}
