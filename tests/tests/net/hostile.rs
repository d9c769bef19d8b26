//! A hostile peer speaking the real protocols: forged, oversize and malformed data is
//! refused, the peer is penalized and banned, honest records keep flowing, and the node's
//! tables stay within their caps.

use std::collections::HashSet;

use coop_model::envelope::MAX_ENVELOPE_BYTES;
use coop_model::CommunityId;
use coop_node::net::{MAX_BANS, MAX_INFLIGHT_SERVES, MAX_INFLIGHT_VALIDATIONS, MAX_TRACKED_PEERS};
use coop_node::run::NodeEvent;
use coop_node::wire::{GossipMessage, TAG_ENVELOPE};
use coop_tests::hostile::{forged_envelope, join_envelope, Hostile, SyncMode};
use coop_tests::{addr, community, holds, proposal, start_node, wait_until, DEADLINE};
use tokio::sync::broadcast;

/// Collects the node events seen so far (bounded by the broadcast capacity).
fn drain(rx: &mut broadcast::Receiver<NodeEvent>, into: &mut Vec<NodeEvent>) {
    loop {
        match rx.try_recv() {
            Ok(e) => into.push(e),
            Err(broadcast::error::TryRecvError::Lagged(_)) => continue,
            Err(_) => return,
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_peers_are_refused_penalized_and_banned_while_honest_records_flow() {
    coop_tests::init_tracing();
    let root = tempfile::tempdir().unwrap();
    let c = community(root.path(), 1);
    let a = start_node(&c.dirs[0], vec![]).await;
    let b = start_node(&c.dirs[1], vec![addr(&a)]).await;
    let mut events = a.subscribe();
    let mut seen = Vec::new();

    // --- Gossip: a peer that publishes junk on the community topic.
    let m = Hostile::start(c.id, SyncMode::Empty);
    m.dial(&addr(&a)).await;
    let a_peer: libp2p::PeerId = a.peer_id().parse().unwrap();
    assert!(
        wait_until(DEADLINE, || async {
            m.observed().subscribed.contains(&a_peer)
        })
        .await,
        "the hostile peer never saw the node's subscription: {:?}",
        m.observed()
    );
    let m_id = m.peer_id.to_string();
    assert!(
        wait_until(DEADLINE, || async { a.peers().contains(&m_id) }).await,
        "the node never listed the hostile peer"
    );

    let mut junk: Vec<Vec<u8>> = Vec::new();
    // A forged signature.
    junk.push(GossipMessage::Envelope(forged_envelope(&c.id, "forger")).encode());
    // Oversize: a valid tag with more than an envelope may hold.
    let mut big = vec![TAG_ENVELOPE];
    big.extend(std::iter::repeat_n(7u8, MAX_ENVELOPE_BYTES + 100));
    junk.push(big);
    // Malformed: not an envelope, and an unknown tag.
    junk.push([&[TAG_ENVELOPE][..], b"COOP this is not an envelope"].concat());
    junk.push(vec![0x7f, 1, 2, 3]);
    // A well-signed change of another community.
    junk.push(GossipMessage::Envelope(join_envelope(&CommunityId([9; 32]), "elsewhere")).encode());
    // A frame larger than the node accepts at all.
    let mut huge = vec![TAG_ENVELOPE];
    huge.extend(std::iter::repeat_n(1u8, 200 * 1024));
    junk.push(huge);
    for i in 0..30 {
        junk.push(GossipMessage::Envelope(forged_envelope(&c.id, &format!("flood {i}"))).encode());
    }
    for j in junk {
        m.publish(j).await;
    }

    let banned = wait_until(DEADLINE, || {
        let m_id = m_id.clone();
        let a = a.clone();
        async move { a.net_stats().banned >= 1 && !a.peers().contains(&m_id) }
    })
    .await;
    assert!(
        banned,
        "the hostile peer was not banned: {:?}",
        a.net_stats()
    );
    drain(&mut events, &mut seen);
    let rejected: Vec<&String> = seen
        .iter()
        .filter_map(|e| match e {
            NodeEvent::Rejected { peer, reason } if *peer == m_id => Some(reason),
            _ => None,
        })
        .collect();
    assert!(
        rejected.len() >= 3,
        "refusals attributed to the hostile peer: {rejected:?}"
    );
    let reasons: HashSet<&str> = rejected
        .iter()
        .filter_map(|r| r.split_whitespace().next())
        .collect();
    assert!(reasons.contains("bad_signature"), "{reasons:?}");
    assert!(seen.contains(&NodeEvent::Banned(m_id.clone())), "{seen:?}");
    let status = a.status().await.unwrap();
    assert!(status.rejected_from_peers >= 3);
    assert!(!status.peers.contains(&m_id));
    // None of the junk got in.
    let state = a.state().await.unwrap();
    assert_eq!(state.members.len(), 2, "no forged join request got in");
    assert_eq!(status.pending, 0);

    // A banned peer cannot come back.
    let before = m.observed();
    m.dial(&addr(&a)).await;
    let refused = wait_until(DEADLINE, || async {
        let o = m.observed();
        o.closed + o.dial_failures > before.closed + before.dial_failures
    })
    .await;
    assert!(refused, "re-dial of a banned peer was not refused");
    assert!(!a.peers().contains(&m_id));

    // --- Sync: a peer answering catch-up requests with forged envelopes.
    let s = Hostile::start(c.id, SyncMode::Forged);
    s.dial(&addr(&a)).await;
    let s_id = s.peer_id.to_string();
    let banned_too = wait_until(DEADLINE, || {
        let a = a.clone();
        async move { a.net_stats().banned >= 2 }
    })
    .await;
    assert!(
        banned_too,
        "the forging sync peer was not banned: {:?}",
        a.net_stats()
    );
    assert!(s.observed().sync_answered >= 1);
    drain(&mut events, &mut seen);
    assert!(seen
        .iter()
        .any(|e| matches!(e, NodeEvent::Rejected { peer, .. } if *peer == s_id)));
    assert!(!a.peers().contains(&s_id));

    // --- Honest records keep flowing both ways.
    let from_b = b.submit(proposal("honest after the attack")).await.unwrap();
    let from_a = a.submit(proposal("honest reply")).await.unwrap();
    assert!(wait_until(DEADLINE, || holds(&a, &from_b)).await);
    assert!(wait_until(DEADLINE, || holds(&b, &from_a)).await);
    assert!(a.peers().contains(&b.peer_id()));

    // --- Memory stays bounded.
    let stats = a.net_stats();
    assert!(stats.tracked_peers <= MAX_TRACKED_PEERS);
    assert!(stats.banned <= MAX_BANS);
    assert!(stats.inflight_validations <= MAX_INFLIGHT_VALIDATIONS);
    assert!(stats.inflight_serves <= MAX_INFLIGHT_SERVES);
    let status = a.status().await.unwrap();
    assert!(status.pending <= coop_model::ledger::MAX_PENDING);
    assert_eq!(
        status.changes,
        b.status().await.unwrap().changes,
        "the honest nodes agree"
    );
    a.shutdown().await.unwrap();
    b.shutdown().await.unwrap();
}
