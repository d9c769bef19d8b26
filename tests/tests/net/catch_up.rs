//! A late joiner catches up on a long history through the catch-up sync protocol.

use std::time::Duration;

use coop_tests::{
    addr, bulk_proposals, community, converged, describe, joiner, start_node, wait_until,
};

/// Changes written before the joiner arrives.
const HISTORY: usize = 10_000;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn late_joiner_catches_up_on_ten_thousand_changes() {
    coop_tests::init_tracing();
    let root = tempfile::tempdir().unwrap();
    let c = community(root.path(), 1);
    let before = bulk_proposals(&c.dirs[0], HISTORY);
    assert!(before > HISTORY);
    // The other member catches up too: it holds only the first few changes.
    let late = joiner(root.path(), "late", c.id);

    let a = start_node(&c.dirs[0], vec![]).await;
    let b = start_node(&c.dirs[1], vec![addr(&a)]).await;
    let l = start_node(&late, vec![addr(&a)]).await;
    let nodes = [a.clone(), b.clone(), l.clone()];
    // The joiner's own join request travels the other way.
    let total = before + 1;
    let ok = wait_until(Duration::from_secs(600), || converged(&nodes, total)).await;
    assert!(ok, "no convergence: {}", describe(&nodes).await);
    let stats = l.net_stats();
    assert!(
        stats.sync_rounds >= (HISTORY / coop_node::wire::SYNC2_BATCH) as u64,
        "the history came in sync batches: {stats:?}"
    );
    assert!(
        stats.bundled_batches >= (HISTORY / coop_node::wire::SYNC2_BATCH) as u64,
        "the history came in /coop/sync/2 bundles: {stats:?}"
    );
    for n in &nodes {
        n.shutdown().await.unwrap();
    }
}
