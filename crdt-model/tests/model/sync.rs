//! Catch-up sync as the node runs it: exchange `sync_clock()`s, send `missing_for()` in
//! bounded pages, gossip equivocation proofs. Replicas that only ever talk this way converge.

use coop_model::*;

use super::support::*;

/// One round of catch-up from `from` to `to`, in pages of `page` envelopes, plus proofs.
/// Proofs first, then pages until a page makes no progress (see `convergence::catch_up`).
fn catch_up(from: &mut Ledger, to: &mut Ledger, page: usize) -> usize {
    for p in from.proofs().cloned().collect::<Vec<_>>() {
        to.ingest_proof(p).expect("valid proof");
    }
    let mut sent = 0;
    loop {
        let clock = to.sync_clock();
        let (envs, more) = from.missing_for(&clock, page);
        sent += envs.len();
        let out = to.ingest(envs);
        assert!(out.rejected.is_empty(), "{:?}", out.rejected);
        for p in out.new_forks {
            from.ingest_proof(p).expect("valid proof");
        }
        if !more || to.sync_clock() == clock {
            break;
        }
    }
    sent
}

#[test]
fn replicas_converge_through_paged_catch_up_alone() {
    let mut town = Town::found(Params::default(), &["alice", "bob", "carol"]);
    let (alice, bob) = (town.id("alice"), town.id("bob"));
    let a = town.write("bob", attest(alice, 90, "painting"));
    town.write("alice", confirm(a));
    let p = town.write("carol", proposal("Benches"));
    town.write("bob", allocate(p, 7));
    let mut far = Ledger::new(town.community());
    assert!(catch_up(&mut town.ledger, &mut far, 3) > 0);
    assert_converged(&mut town.ledger, &mut far);
    // Nothing more to send either way.
    assert_eq!(catch_up(&mut town.ledger, &mut far, 3), 0);
    assert_eq!(catch_up(&mut far, &mut town.ledger, 3), 0);
    assert_eq!(far.state().members[&bob].time.balance, Minutes(90));
}

#[test]
fn a_replica_that_only_saw_one_branch_and_the_proof_converges() {
    // Bob equivocates. The left replica holds both stories (and an honest change built on
    // the discarded one); the right replica only ever talks to it through catch-up sync,
    // which sends the canonical branch, and gossip, which carries the proof.
    let mut town = Town::found(Params::default(), &["alice", "bob", "carol"]);
    let alice = town.id("alice");
    let mut base = town.replica();
    let key = town.dev("bob", 0);
    let one = forge(&mut base, &key, &attest(alice, 60, "one story"), T0 + 9_000);
    let two = forge(&mut base, &key, &attest(alice, 60, "another"), T0 + 9_000);
    let discarded = if rid(&one) > rid(&two) { &one } else { &two };
    let mut left = town.replica();
    let _ = left.ingest([discarded.clone()]);
    left.author(&town.dev("alice", 0), confirm(rid(discarded)), T0 + 9_500)
        .expect("alice confirms what she saw");
    let _ = left.ingest([one.clone(), two.clone()]);
    assert_eq!(left.proofs().count(), 1);

    let mut right = town.replica();
    catch_up(&mut left, &mut right, 2);
    catch_up(&mut right, &mut left, 2);
    let dev = key.device_id();
    assert!(right.state().forked_devices.contains_key(&dev));
    assert_converged(&mut left, &mut right);
    let _ = town.ledger.ingest([one, two]);
}
