//! Several nodes with explicit peers converge on the same state.

use coop_tests::{
    addr, community, converged, describe, proposal, start_node, wait_until, DEADLINE,
};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn four_nodes_with_explicit_peers_converge() {
    coop_tests::init_tracing();
    let root = tempfile::tempdir().unwrap();
    let c = community(root.path(), 3);
    // A chain: each node dials the one before it.
    let mut nodes = vec![start_node(&c.dirs[0], vec![]).await];
    for dir in &c.dirs[1..] {
        let prev = addr(nodes.last().unwrap());
        nodes.push(start_node(dir, vec![prev]).await);
    }
    let start_changes = nodes[0].status().await.unwrap().changes;
    let mut ids = Vec::new();
    for round in 0..3 {
        for (i, n) in nodes.iter().enumerate() {
            ids.push(
                n.submit(proposal(&format!("node {i} round {round}")))
                    .await
                    .unwrap(),
            );
        }
    }
    let total = start_changes + ids.len();
    let ok = wait_until(DEADLINE, || converged(&nodes, total)).await;
    assert!(ok, "nodes did not converge: {}", describe(&nodes).await);
    let states: Vec<_> = futures_join(&nodes).await;
    for s in &states[1..] {
        assert_eq!(
            s.digest().expect("the state serializes"),
            states[0].digest().expect("the state serializes")
        );
    }
    for id in &ids {
        assert!(states[0].log.iter().any(|e| e.id == *id));
    }
    for n in &nodes {
        n.shutdown().await.unwrap();
    }
}

async fn futures_join(nodes: &[coop_node::NodeHandle]) -> Vec<coop_model::State> {
    let mut out = Vec::new();
    for n in nodes {
        out.push(n.state().await.unwrap());
    }
    out
}
