//! `repair` (the library half of `coop repair`): a damaged store rebuilt from what still
//! verifies in it plus another source, the damaged store kept aside, own writes that no
//! source had named.

use coop_model::{Envelope, RecordId};
use coop_node::repair::repair;
use coop_node::{DataDir, LocalNode, Store};
use coop_tests::{proposal, T0};

/// The founder writes two proposals (the second builds on the first); returns their ids.
fn two_writes(dir: &DataDir) -> (RecordId, RecordId) {
    let mut node = LocalNode::open(dir).unwrap();
    let a = node.submit(proposal("first own write"), T0 + 10).unwrap();
    let b = node.submit(proposal("second own write"), T0 + 11).unwrap();
    (a, b)
}

/// Flips a signature bit of the stored entry of `id`, under the manifest's nose.
fn tamper(dir: &DataDir, id: &RecordId) {
    let mut store = Store::open(&dir.store_path()).unwrap();
    let entry = store
        .log()
        .map(|e| e.unwrap())
        .find(|e| Envelope::decode(&e.bytes).unwrap().record_id() == Some(*id))
        .expect("stored");
    let mut bytes = entry.bytes;
    bytes[100] ^= 1;
    store.corrupt_for_test(entry.position, bytes).unwrap();
}

#[test]
fn own_writes_no_source_had_are_named_and_the_rest_is_restored() {
    let root = tempfile::tempdir().unwrap();
    let c = coop_tests::community(root.path(), 1);
    let dir = &c.dirs[0];
    let before = LocalNode::open(dir).unwrap().ledger().len();
    let (a, b) = two_writes(dir);
    tamper(dir, &a);
    {
        let mut node = LocalNode::open(dir).unwrap();
        let v = node.verify().unwrap();
        assert!(v.store_damage.is_some(), "{v:?}");
        assert!(node.submit(proposal("refused"), T0 + 20).is_err());
    }

    let r = repair(dir, Vec::new(), "100").unwrap();
    let own: Vec<_> = r.own_lost().map(|n| n.id).collect();
    assert_eq!(own, vec![Some(a), Some(b)], "{r:#?}");
    assert!(r.not_restored[0].reason.contains("bad_signature"), "{r:#?}");
    assert_eq!((r.total, r.recovered_from_store), (before, before));
    assert_eq!(
        (r.recorded, r.missing_at_least),
        (Some(before as u64 + 2), 2)
    );
    assert!(r.kept_aside.join("db").exists(), "{r:#?}");
    assert!(r.kept_aside.ends_with("store.damaged-100"), "{r:#?}");

    let mut node = LocalNode::open(dir).unwrap();
    assert!(node.verify().unwrap().ok());
    assert_eq!(node.ledger().len(), before);
    node.submit(proposal("after repair"), T0 + 30).unwrap();
}

#[test]
fn a_replicas_changes_restore_the_damaged_store_to_its_digest() {
    let root = tempfile::tempdir().unwrap();
    let c = coop_tests::community(root.path(), 1);
    let (founder, replica) = (&c.dirs[0], &c.dirs[1]);
    let (a, _) = two_writes(founder);
    let export = LocalNode::open(founder).unwrap().export();
    let mut healthy = LocalNode::open(replica).unwrap();
    let _ = healthy.ingest(export).unwrap();
    let want = healthy.state().digest().expect("the state serializes");
    let sources = healthy.export();
    drop(healthy);
    tamper(founder, &a);

    let r = repair(founder, sources, "200").unwrap();
    assert_eq!(r.own_lost().count(), 0, "{r:#?}");
    assert_eq!(r.missing_at_least, 0);
    // The tampered write came from the replica; the one built on it from the damaged store.
    assert_eq!(r.recovered_from_sources, 1, "{r:#?}");
    assert!(r.not_restored.iter().all(|n| n.id == Some(a)), "{r:#?}");
    let mut node = LocalNode::open(founder).unwrap();
    assert!(node.verify().unwrap().ok());
    assert_eq!(node.state().digest().expect("the state serializes"), want);
}
