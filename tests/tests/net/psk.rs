//! The LAN pre-shared key: members with the key form a swarm; a peer without it cannot
//! connect at all.

use coop_tests::hostile::{Hostile, SyncMode};
use coop_tests::{
    addr, community_with, converged, describe, proposal, seed, start_node, wait_until, DEADLINE,
};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn only_holders_of_the_lan_key_join_the_swarm() {
    coop_tests::init_tracing();
    let root = tempfile::tempdir().unwrap();
    let c = community_with(root.path(), 1, Some(hex::encode(seed())));
    let a = start_node(&c.dirs[0], vec![]).await;
    let b = start_node(&c.dirs[1], vec![addr(&a)]).await;
    let base = a.status().await.unwrap().changes;
    b.submit(proposal("behind the fence")).await.unwrap();
    let both = [a.clone(), b.clone()];
    assert!(
        wait_until(DEADLINE, || converged(&both, base + 1)).await,
        "{}",
        describe(&both).await
    );

    // A peer without the key: the private-network handshake fails, no connection forms.
    let outsider = Hostile::start(c.id, SyncMode::Empty);
    outsider.dial(&addr(&a)).await;
    let failed = wait_until(DEADLINE, || async {
        outsider.observed().dial_failures >= 1
    })
    .await;
    assert!(
        failed,
        "the dial without the key did not fail: {:?}",
        outsider.observed()
    );
    assert!(outsider.observed().connected.is_empty());
    assert!(!a.peers().contains(&outsider.peer_id.to_string()));
    assert_eq!(a.peers(), vec![b.peer_id()]);
    a.shutdown().await.unwrap();
    b.shutdown().await.unwrap();
}
