//! Catch-up sync `/coop/sync/2`: batches as one Automerge bundle plus signatures. The
//! bundle round trip on a generated community, the decoder's caps on hostile bundles, and a
//! `/coop/sync/1`-only node catching up from (and serving) a node that speaks both.

use std::time::Duration;

use coop_model::{Ledger, RejectReason};
use coop_node::bundle::{self, BUNDLE_MAX_CHANGES, BUNDLE_MAX_INFLATED};
use coop_node::wire::{SYNC2_BATCH, SYNC_BATCH};
use coop_node::RunOptions;
use coop_tests::bench::community::{generate, Spec};
use coop_tests::{
    addr, bulk_proposals, community, converged, describe, joiner, start_node, test_options,
    wait_until,
};

/// Changes written before the joiners arrive: more than one v2 batch, so that the v2
/// catch-up is a pipeline of several batches.
const HISTORY: usize = SYNC2_BATCH + 1_000;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_v1_only_node_and_a_v2_node_catch_up_from_each_other() {
    coop_tests::init_tracing();
    let root = tempfile::tempdir().unwrap();
    let c = community(root.path(), 1);
    let total = bulk_proposals(&c.dirs[0], HISTORY) + 2;
    let old = joiner(root.path(), "old", c.id);
    let new = joiner(root.path(), "new", c.id);

    let a = start_node(&c.dirs[0], vec![]).await;
    // A node that speaks only `/coop/sync/1` catches up from a node that speaks both.
    let v1 = coop_node::run::start(
        old,
        RunOptions {
            sync_v1_only: true,
            ..test_options(vec![addr(&a)])
        },
    )
    .await
    .unwrap();
    let ok = wait_until(Duration::from_secs(600), || async {
        v1.status().await.is_ok_and(|s| s.changes + 1 >= total)
    })
    .await;
    assert!(
        ok,
        "the v1 node did not catch up: {}",
        describe(&[a.clone(), v1.clone()]).await
    );
    // In v1 batches, so many rounds.
    let rounds = v1.net_stats().sync_rounds;
    assert!(rounds >= (HISTORY / SYNC_BATCH) as u64, "{rounds} rounds");
    assert_eq!(v1.net_stats().bundled_batches, 0);

    // A v2 node that knows only the v1 node falls back to v1 and catches up from it.
    let v2 = start_node(&new, vec![addr(&v1)]).await;
    let nodes = [a.clone(), v1.clone(), v2.clone()];
    let ok = wait_until(Duration::from_secs(600), || converged(&nodes, total)).await;
    assert!(ok, "no convergence: {}", describe(&nodes).await);
    let rounds = v2.net_stats().sync_rounds;
    assert!(
        rounds >= (HISTORY / SYNC_BATCH) as u64,
        "the v2 node synced with the v1 node in v1 batches: {rounds} rounds"
    );
    assert_eq!(
        v2.net_stats().bundled_batches,
        0,
        "no bundle from a v1 node"
    );
    for n in &nodes {
        n.shutdown().await.unwrap();
    }
}

fn spec(changes: usize) -> Spec {
    Spec {
        seed: 7,
        changes,
        members: 40,
        second_device_percent: 20,
    }
}

#[test]
fn bundles_round_trip_every_change_and_signature_through_the_gate() {
    let c = generate(&spec(3_000));
    let mut source = Ledger::new(c.id);
    let out = source.ingest(c.envelopes.clone());
    assert!(out.rejected.is_empty(), "{:?}", out.rejected.first());
    let doc = source.doc().clone();
    let mut fresh = Ledger::new(c.id);
    let mut wire = 0usize;
    let mut total = 0usize;
    for batch in c.envelopes.chunks(1_000) {
        let b = bundle::encode(&doc, batch).expect("a held batch bundles");
        wire += b.bundle.len() + b.signatures.len();
        let back = bundle::decode(&c.id, &b.bundle, &b.signatures).unwrap();
        // Byte for byte the envelopes that were signed.
        assert_eq!(back.len(), batch.len());
        for (a, e) in back.iter().zip(batch) {
            assert_eq!(a, e);
        }
        let out = fresh.ingest(back);
        assert!(out.rejected.is_empty(), "{:?}", out.rejected.first());
        total += out.accepted.len();
    }
    assert_eq!(total, c.envelopes.len());
    assert_eq!(fresh.heads(), source.heads());
    let envelope_bytes: usize = c.envelopes.iter().map(|e| e.encode().len()).sum();
    assert!(
        wire * 2 < envelope_bytes,
        "bundles ({wire} B) are not half the envelopes ({envelope_bytes} B)"
    );
}

#[test]
fn a_bundle_with_a_forged_signature_is_refused_by_the_gate_change_by_change() {
    let c = generate(&spec(300));
    let mut source = Ledger::new(c.id);
    let _ = source.ingest(c.envelopes.clone());
    let doc = source.doc().clone();
    let mut b = bundle::encode(&doc, &c.envelopes).unwrap();
    // The 11th change's signature, one bit flipped.
    b.signatures[10 * 64 + 5] ^= 1;
    let back = bundle::decode(&c.id, &b.bundle, &b.signatures).unwrap();
    let mut fresh = Ledger::new(c.id);
    let out = fresh.ingest(back);
    assert!(out
        .rejected
        .iter()
        .any(|r| r.reason == RejectReason::BadSignature));
    // What came before it counts; what depends on it waits for a change that never comes.
    assert!(out.accepted.len() >= 10 && out.accepted.len() < c.envelopes.len());
}

#[test]
fn hostile_bundles_are_refused_before_automerge_reads_them() {
    let c = generate(&spec(200));
    let mut source = Ledger::new(c.id);
    let _ = source.ingest(c.envelopes.clone());
    let doc = source.doc().clone();
    let b = bundle::encode(&doc, &c.envelopes).unwrap();
    let reason =
        |bundle: &[u8], sigs: &[u8]| bundle::decode(&c.id, bundle, sigs).unwrap_err().reason;
    // Signatures that do not match the changes in number.
    assert_eq!(
        reason(&b.bundle, &b.signatures[64..]),
        RejectReason::Malformed
    );
    assert_eq!(
        reason(&b.bundle, &b.signatures[1..]),
        RejectReason::Malformed
    );
    assert_eq!(
        reason(&b.bundle, &vec![0; (BUNDLE_MAX_CHANGES + 1) * 64]),
        RejectReason::Oversize
    );
    // Cut short, junk, empty.
    assert_eq!(
        reason(&b.bundle[..b.bundle.len() / 2], &b.signatures),
        RejectReason::Malformed
    );
    assert_eq!(
        reason(&[0x85, 0x6f, 0x4a, 0x83, 1, 2], &[]),
        RejectReason::Malformed
    );
    assert_eq!(reason(&[], &[]), RejectReason::Malformed);
    // Every single-byte corruption is refused or decodes to changes the gate then judges;
    // none panics.
    for i in (0..b.bundle.len()).step_by(7) {
        let mut x = b.bundle.clone();
        x[i] ^= 0x5a;
        let _ = bundle::decode(&c.id, &x, &b.signatures);
    }
    // A DEFLATE bomb: a column that inflates past the cap.
    let bomb = bomb_bundle(BUNDLE_MAX_INFLATED + 1);
    assert_eq!(reason(&bomb, &[]), RejectReason::Oversize);
    // A run-length bomb: a few bytes claiming billions of items.
    assert_eq!(reason(&rle_bomb(), &[]), RejectReason::Oversize);
}

fn uleb(mut v: u64, out: &mut Vec<u8>) {
    loop {
        let b = (v & 0x7f) as u8;
        v >>= 7;
        if v == 0 {
            out.push(b);
            return;
        }
        out.push(b | 0x80);
    }
}

/// A bundle chunk (wrong checksum: the caps come first) with one change column of `body`.
fn chunk(spec: u64, body: &[u8]) -> Vec<u8> {
    let mut data = Vec::new();
    uleb(0, &mut data); // deps
    uleb(0, &mut data); // actors
    uleb(1, &mut data); // one change column
    uleb(spec, &mut data);
    uleb(body.len() as u64, &mut data);
    data.extend_from_slice(body);
    uleb(0, &mut data); // no op columns
    let mut out = vec![0x85, 0x6f, 0x4a, 0x83, 0, 0, 0, 0, 3];
    uleb(data.len() as u64, &mut out);
    out.extend(data);
    out
}

fn bomb_bundle(inflated: usize) -> Vec<u8> {
    use std::io::Write;
    let mut enc = flate2::write::DeflateEncoder::new(Vec::new(), flate2::Compression::best());
    let zeros = vec![0u8; 1 << 20];
    let mut left = inflated;
    while left > 0 {
        let n = left.min(zeros.len());
        enc.write_all(&zeros[..n]).unwrap();
        left -= n;
    }
    let body = enc.finish().unwrap();
    // A raw value column (type 7), DEFLATE bit set.
    chunk((1 << 4) | 0b1000 | 7, &body)
}

fn rle_bomb() -> Vec<u8> {
    // An integer column (type 2): a null run of 2^40 items.
    let mut body = vec![0u8];
    uleb(1 << 40, &mut body);
    chunk((1 << 4) | 2, &body)
}
