//! Every gate rule fed its attack (docs/PROTOCOL.md §5, docs/RULES.md R12 and R17): each is refused with its named
//! reason, nothing panics, and the honest ledger is unchanged.

use automerge::transaction::{CommitOptions, Transactable};
use automerge::{ActorId, Automerge, ReadDoc, ROOT};
use coop_model::envelope::{MAX_CHANGE_BYTES, MAX_ENVELOPE_BYTES};
use coop_model::record;
use coop_model::record::DecisionAction;
use coop_model::*;

use super::support::*;

/// A town with a pending attestation from bob to alice, to have something to attack.
fn town() -> (Town, RecordId) {
    let mut town = Town::found(Params::default(), &["alice", "bob", "carol"]);
    let alice = town.id("alice");
    let a = town.write("bob", attest(alice, 120, "fixing the fence"));
    (town, a)
}

/// Ingests one envelope and returns the reason it was refused, checking that the ledger,
/// its heads and its derived state did not change.
fn refused(ledger: &mut Ledger, env: Envelope) -> RejectReason {
    let (len, heads, json) = (
        ledger.len(),
        ledger.heads(),
        ledger
            .state()
            .canonical_json()
            .expect("the state serializes"),
    );
    let out = ledger.ingest([env]);
    assert!(out.accepted.is_empty(), "accepted an attack");
    assert_eq!(out.rejected.len(), 1, "{out:?}");
    assert_eq!((ledger.len(), ledger.heads()), (len, heads));
    assert_eq!(
        ledger
            .state()
            .canonical_json()
            .expect("the state serializes"),
        json
    );
    out.rejected[0].reason
}

/// Whether a held change is on a discarded fork branch (not derived).
fn is_discarded(ledger: &Ledger, env: &Envelope) -> bool {
    ledger.discarded().any(|e| rid(&e) == rid(env))
}

/// The reason a change counted for nothing in derivation.
fn derived(ledger: &mut Ledger, env: &Envelope) -> Result<(), RejectReason> {
    status(ledger, &rid(env))
}

#[test]
fn a_forged_signature_is_refused() {
    let (mut town, a) = town();
    let env = town.forged("alice", 0, &confirm(a));
    for i in [0, 31, 32, 63] {
        let mut bad = env.clone();
        bad.signature[i] ^= 0x01;
        assert_eq!(refused(&mut town.ledger, bad), RejectReason::BadSignature);
    }
    let mut zero = env.clone();
    zero.signature = [0; 64];
    assert_eq!(refused(&mut town.ledger, zero), RejectReason::BadSignature);
    // The untouched envelope is fine.
    assert_eq!(town.ledger.ingest([env]).accepted.len(), 1);
}

#[test]
fn a_change_signed_by_a_key_other_than_its_actor_is_refused() {
    // Carol signs a change whose actor is alice's device, confirming alice's attestation.
    let (mut town, a) = town();
    let honest = town.forged("alice", 0, &confirm(a));
    let c = town.community();
    let resigned = Envelope::sign(
        c,
        DocId::ledger(&c),
        &town.dev("carol", 0),
        &rid(&honest).0,
        honest.change.clone(),
    );
    assert_eq!(
        refused(&mut town.ledger, resigned),
        RejectReason::BadSignature
    );

    // An actor id that is not a 32-byte ed25519 key cannot be a signer at all.
    let mut doc: Automerge = town.ledger.doc().clone();
    doc.set_actor(ActorId::from(vec![7u8; 16]));
    let mut tx = doc.transaction();
    tx.put(ROOT, "confirm/x/1", 1).expect("put");
    let (hash, _) = tx.commit_with(CommitOptions::default().with_time(T0));
    let hash = hash.expect("a change");
    let change = doc.get_change_by_hash(&hash).expect("the change");
    let env = Envelope::sign(
        c,
        DocId::ledger(&c),
        &town.dev("carol", 0),
        &hash.0,
        change.raw_bytes().to_vec(),
    );
    assert_eq!(refused(&mut town.ledger, env), RejectReason::ActorNotSigner);
}

#[test]
fn a_thousand_unadmitted_keys_get_no_sp_and_confirm_nothing() {
    // Sybil resistance (docs/RULES.md R1): 1,000 keys each write a join request, an allocation, and a
    // confirmation of an attestation to alice. None is a member: they hold 0 SP, their
    // allocations and confirmations are refused `not_a_member`.
    let (mut town, a) = town();
    let p = town.write("alice", proposal("Playground"));
    let before = town.ledger.state().clone();
    let mut envs = Vec::new();
    let mut sybils = Vec::new();
    for i in 0..1000 {
        let s = Person::new(&format!("sybil-{i}"));
        let records = [s.join(&town.community(), 0), allocate(p, 10), confirm(a)];
        envs.extend(forge_chain(
            &mut town.ledger,
            &s.dev(0),
            &records,
            T0 + 5_000,
        ));
        sybils.push(s);
    }
    let out = town.ledger.ingest(envs.clone());
    // The gate takes each join request and refuses everything else (docs/RULES.md R13, docs/PROTOCOL.md §5 rule 3).
    assert_eq!(out.accepted.len(), 1000, "{:?}", out.rejected.first());
    // Each sybil's allocation is refused; its confirmation, built on the refused allocation,
    // can only wait for a dependency that will never be accepted (bounded buffer).
    assert_eq!(out.rejected.len(), 1000);
    assert!(out
        .rejected
        .iter()
        .all(|r| r.reason == RejectReason::NotAMember));
    assert_eq!(out.pending, 1000);

    // The author's dry run refuses them too, writing nothing.
    let len = town.ledger.len();
    let r = town
        .ledger
        .author(&sybils[0].dev(0), allocate(p, 1), T0 + 6_000)
        .expect_err("not a member");
    assert_eq!(r.reason, RejectReason::NotAMember);
    assert_eq!(town.ledger.len(), len);

    let state = town.ledger.state().clone();
    for s in &sybils {
        let m = &state.members[&s.id()];
        assert_eq!(m.status, coop_model::state::MemberStatus::Pending);
        assert_eq!(
            (m.sp.budget, m.sp.available, m.sp.allocated),
            (Points(0), Points(0), Points(0))
        );
    }
    for (i, env) in envs.iter().enumerate() {
        if i % 3 == 0 {
            // A join request is the one thing an unadmitted key may write: it counts, grants nothing.
            assert_eq!(log_entry(&state, &rid(env)).reason, None);
        } else {
            assert!(
                !town.ledger.contains(&rid(env)),
                "a sybil's change was stored"
            );
        }
    }
    assert_eq!(state.proposals[&p].active_points, Points(0));
    assert_eq!(state.proposals[&p].supporters, 0);
    assert_eq!(state.attestations, before.attestations);
    assert_eq!(
        state.members[&town.id("alice")],
        before.members[&town.id("alice")]
    );
    assert_eq!(state, town.ledger.derive_from_scratch());
}

#[test]
fn a_removed_member_writing_after_the_removal_is_refused() {
    let (mut town, a) = town();
    let bob = town.id("bob");
    town.decide("alice", DecisionAction::Removal { member: bob }, &["alice"]);
    // The author refuses on bob's behalf, and a change written anyway is refused in derivation.
    let r = town
        .try_write("bob", attest(town.id("carol"), 30, "late"))
        .expect_err("bob is removed");
    assert_eq!(r.reason, RejectReason::RemovedMember);
    let forged = town.forged("bob", 0, &attest(town.id("carol"), 30, "late"));
    let _ = town.ledger.ingest([forged.clone()]);
    assert_eq!(
        derived(&mut town.ledger, &forged),
        Err(RejectReason::RemovedMember)
    );
    // What bob wrote before the removal stays: alice may still confirm it.
    town.write("alice", confirm(a));
    assert_eq!(town.ledger.state().members[&bob].time.balance, Minutes(120));
}

#[test]
fn strong_removal_drops_concurrent_changes_that_sort_before_the_removal() {
    // Bob, offline, allocates SP and attests hours. Meanwhile alice writes a few records
    // and then removes him. Bob's changes are not in the removal's causal past: they stop
    // counting, even those that sort before the removal in the total order.
    let (mut town, _) = town();
    let bob = town.id("bob");
    let p = town.write("alice", proposal("Bike racks"));
    let mut offline = town.replica();
    let x = offline
        .author(&town.dev("bob", 0), allocate(p, 5), T0 + 9_000)
        .expect("bob is a member on his replica");
    let y = offline
        .author(
            &town.dev("bob", 0),
            attest(town.id("carol"), 45, "gutters"),
            T0 + 9_100,
        )
        .expect("bob is a member on his replica");
    assert_eq!(status(&mut offline, &rid(&x)), Ok(()));
    for i in 0..3 {
        town.write("alice", proposal(&format!("Errand {i}")));
    }
    let (_, removal) = town.decide("alice", DecisionAction::Removal { member: bob }, &["alice"]);
    sync(&mut town.ledger, &mut offline);
    assert_converged(&mut town.ledger, &mut offline);

    let state = town.ledger.state().clone();
    let pos = |id: &RecordId| log_entry(&state, id).position;
    assert!(pos(&rid(&x)) < pos(&removal), "the allocation sorts first");
    for env in [&x, &y] {
        assert_eq!(
            derived(&mut town.ledger, env),
            Err(RejectReason::RemovedMember)
        );
    }
    assert_eq!(state.proposals[&p].active_points, Points(0));
    assert!(!state.attestations.contains_key(&rid(&y)));
}

/// Two signed changes with the same (bob's device, seq), built on two forks of the document.
fn equivocate(town: &Town) -> (Envelope, Envelope) {
    let key = town.dev("bob", 0);
    let mut base = town.replica();
    let one = forge(
        &mut base,
        &key,
        &attest(town.id("alice"), 60, "one story"),
        T0 + 9_000,
    );
    let two = forge(
        &mut base,
        &key,
        &attest(town.id("carol"), 60, "another story"),
        T0 + 9_000,
    );
    assert_ne!(rid(&one), rid(&two));
    (one, two)
}

#[test]
fn an_equivocating_device_is_detected_by_both_halves_and_stops_counting() {
    let (town, _) = town();
    let (one, two) = equivocate(&town);
    let bob_dev = town.dev("bob", 0).device_id();
    // Four replicas: the left half sees one story, the right half the other, and each half
    // builds on what it saw before they meet.
    let mut left: Vec<Ledger> = (0..2).map(|_| town.replica()).collect();
    let mut right: Vec<Ledger> = (0..2).map(|_| town.replica()).collect();
    for l in &mut left {
        assert_eq!(l.ingest([one.clone()]).accepted.len(), 1);
    }
    for r in &mut right {
        assert_eq!(r.ingest([two.clone()]).accepted.len(), 1);
    }
    let on_left = left[0]
        .author(&town.dev("alice", 0), confirm(rid(&one)), T0 + 9_500)
        .expect("alice confirms what she saw");
    let _ = left[1].ingest([on_left.clone()]);
    let on_right = right[0]
        .author(&town.dev("carol", 0), confirm(rid(&two)), T0 + 9_500)
        .expect("carol confirms what she saw");
    let _ = right[1].ingest([on_right.clone()]);
    assert_eq!(status(&mut left[0], &rid(&on_left)), Ok(()));

    // Heal: one link between the halves, then each half spreads what it learnt.
    let mut new_forks = 0;
    {
        let out = right[0].ingest(left[0].envelopes().collect::<Vec<_>>());
        new_forks += out.new_forks.len();
        let out = left[0].ingest(right[0].envelopes().collect::<Vec<_>>());
        new_forks += out.new_forks.len();
    }
    assert_eq!(new_forks, 2, "both sides detect the fork");
    let (l0, l1) = left.split_at_mut(1);
    sync(&mut l0[0], &mut l1[0]);
    let (r0, r1) = right.split_at_mut(1);
    sync(&mut r0[0], &mut r1[0]);

    let mut all: Vec<Ledger> = left.into_iter().chain(right).collect();
    let canonical = rid(&one).min(rid(&two));
    for l in &mut all {
        let proofs: Vec<_> = l.proofs().cloned().collect();
        assert_eq!(proofs.len(), 1);
        let ids = [rid(&proofs[0].a), rid(&proofs[0].b)];
        assert!(ids.contains(&rid(&one)) && ids.contains(&rid(&two)));
        let state = l.state().clone();
        assert_eq!(
            state.forked_devices.get(&bob_dev),
            Some(&Some(town.id("bob")))
        );
        assert!(state.members[&town.id("bob")].devices[&bob_dev]);
        // The canonical story is refused `forked_device`; the other one, and the
        // confirmation built on it, are discarded: held for audit, not derived.
        for (story, confirmation) in [(&one, &on_left), (&two, &on_right)] {
            if rid(story) == canonical {
                assert_eq!(derived(l, story), Err(RejectReason::ForkedDevice));
                // It confirms a record of the forked device, which never counted.
                assert_eq!(
                    derived(l, confirmation),
                    Err(RejectReason::UnknownReference)
                );
            } else {
                assert!(is_discarded(l, story) && is_discarded(l, confirmation));
                assert!(l.state().log.iter().all(|e| e.id != rid(story)));
            }
        }
        assert_eq!(l.discarded().count(), 2);
        // Only the canonical branch is in the document.
        assert!(l.heads().iter().all(|h| *h != rid(&one).max(rid(&two))));
    }
    let (first, rest) = all.split_at_mut(1);
    for l in rest {
        assert_converged(&mut first[0], l);
    }
    // A device that forked cannot write any more either.
    let r = first[0]
        .author(&town.dev("bob", 0), proposal("Trust me"), T0 + 10_000)
        .expect_err("forked");
    assert_eq!(r.reason, RejectReason::ForkedDevice);
}

#[test]
fn an_equivocation_proof_alone_marks_the_device_on_a_replica_that_saw_one_branch() {
    let (mut town, _) = town();
    let (one, two) = equivocate(&town);
    let mut seen_both = town.replica();
    let _ = seen_both.ingest([one.clone()]);
    let out = seen_both.ingest([two.clone()]);
    let proof = out.new_forks.into_iter().next().expect("detected");
    // Gossip carries the proof in its wire form.
    let proof = EquivocationProof::decode(&proof.encode()).expect("round trip");

    let mut gossiped = town.replica();
    let _ = gossiped.ingest([one.clone()]);
    assert_eq!(gossiped.ingest_proof(proof.clone()), Ok(true));
    assert_eq!(gossiped.ingest_proof(proof.clone()), Ok(false));
    let canonical = if rid(&one) < rid(&two) { &one } else { &two };
    if canonical == &one {
        assert_eq!(
            derived(&mut gossiped, &one),
            Err(RejectReason::ForkedDevice)
        );
    } else {
        assert!(is_discarded(&gossiped, &one));
    }
    let bob_dev = town.dev("bob", 0).device_id();
    assert!(gossiped.state().forked_devices.contains_key(&bob_dev));
    // Once it also holds the other branch, it is exactly where the other replica is.
    let _ = gossiped.ingest([two]);
    assert_converged(&mut gossiped, &mut seen_both);

    // A "proof" of two changes by different devices, or of one change twice, is refused.
    let other = town.forged("carol", 0, &proposal("Unrelated"));
    let fake = EquivocationProof {
        a: one.clone(),
        b: other,
    };
    assert_eq!(
        gossiped.ingest_proof(fake).map_err(|r| r.reason),
        Err(RejectReason::Malformed)
    );
    let same = EquivocationProof {
        a: one.clone(),
        b: one,
    };
    assert_eq!(
        gossiped.ingest_proof(same).map_err(|r| r.reason),
        Err(RejectReason::Malformed)
    );
}

#[test]
fn an_oversize_change_is_refused_before_decoding() {
    let (mut town, _) = town();
    let big = "x".repeat(MAX_CHANGE_BYTES + 1);
    let carol = town.dev("carol", 0).device_id();
    let env = town.raw("carol", 0, |tx, seq| {
        let key = format!("proposal/{carol}/{seq}");
        let obj = tx
            .put_object(ROOT, key, automerge::ObjType::Map)
            .expect("put_object");
        tx.put(&obj, "title", big.as_str()).expect("put");
    });
    assert!(env.change.len() > MAX_CHANGE_BYTES);
    assert_eq!(
        refused(&mut town.ledger, env.clone()),
        RejectReason::Oversize
    );
    // The wire decoder refuses the encoded envelope by its length alone.
    let bytes = env.encode();
    assert!(bytes.len() > MAX_ENVELOPE_BYTES);
    assert_eq!(
        Envelope::decode(&bytes).map_err(|r| r.reason),
        Err(RejectReason::Oversize)
    );
}

#[test]
fn a_change_with_too_many_operations_is_refused() {
    let (mut town, _) = town();
    let carol = town.dev("carol", 0);
    let env = town.raw("carol", 0, |tx, seq| {
        let key = format!("proposal/{}/{seq}", carol.device_id());
        let obj = tx
            .put_object(ROOT, key, automerge::ObjType::Map)
            .expect("put_object");
        for i in 0..100 {
            tx.put(&obj, format!("f{i}"), i as i64).expect("put");
        }
    });
    assert_eq!(refused(&mut town.ledger, env), RejectReason::TooManyOps);
}

#[test]
fn a_compressed_chunk_is_refused_without_inflating_it() {
    // A "bomb": a megabyte of zeroes that deflates to a couple of kilobytes. The gate looks
    // at the chunk type (byte 8) and refuses compressed chunks outright.
    let (mut town, _) = town();
    let carol = town.dev("carol", 0);
    let payload = vec![0u8; 1 << 20];
    let mut doc = town.ledger.doc().clone();
    doc.set_actor(carol.device_id().actor());
    let mut tx = doc.transaction();
    let obj = tx
        .put_object(
            ROOT,
            format!("proposal/{}/2", carol.device_id()),
            automerge::ObjType::Map,
        )
        .expect("put_object");
    tx.put(&obj, "blob", automerge::ScalarValue::Bytes(payload))
        .expect("put");
    let (hash, _) = tx.commit_with(CommitOptions::default().with_time(T0));
    let mut change = doc
        .get_change_by_hash(&hash.expect("a change"))
        .expect("the change");
    let compressed = change.bytes().to_vec();
    assert_eq!(compressed[8], 2, "a compressed change chunk");
    assert!(
        compressed.len() < MAX_CHANGE_BYTES,
        "small enough to pass the size cap"
    );
    let c = town.community();
    let env = Envelope::sign(c, DocId::ledger(&c), &carol, &change.hash().0, compressed);
    assert_eq!(
        refused(&mut town.ledger, env.clone()),
        RejectReason::CompressedChange
    );
    assert_eq!(env.record_id(), None, "record_id does not inflate either");
}

#[test]
fn deleting_or_overwriting_another_members_record_is_refused() {
    let (mut town, a) = town();
    let bob_key = Record::Attest(record::Attest {
        to: town.id("alice"),
        minutes: coop_model::Minutes(120),
        service: "fixing the fence".into(),
        category: "general".into(),
        date: day("2026-11-01"),
    })
    .root_key(&town.dev("bob", 0).device_id(), 2);
    assert!(town
        .ledger
        .doc()
        .get(ROOT, &bob_key)
        .expect("get")
        .is_some());

    let delete = town.raw("carol", 0, |tx, _| {
        tx.delete(ROOT, &bob_key).expect("delete");
    });
    assert_eq!(
        refused(&mut town.ledger, delete),
        RejectReason::DeletesRecord
    );

    let inflate = town.raw("carol", 0, |tx, _| {
        let (_, obj) = tx.get(ROOT, &bob_key).expect("get").expect("bob's record");
        tx.put(&obj, "minutes", 1440).expect("put");
    });
    assert_eq!(
        refused(&mut town.ledger, inflate),
        RejectReason::OverwritesForeignRecord
    );

    let replace = town.raw("carol", 0, |tx, _| {
        tx.put(ROOT, &bob_key, "gone").expect("put");
    });
    assert_eq!(
        refused(&mut town.ledger, replace),
        RejectReason::OverwritesForeignRecord
    );
    assert_eq!(
        town.ledger.state().attestations[&a].minutes,
        Minutes(120),
        "bob's record is intact"
    );
}

#[test]
fn changing_an_immutable_fact_is_refused() {
    // Bob raises the minutes of his own attestation after writing it.
    let (mut town, a) = town();
    let bob = town.dev("bob", 0);
    let key = town
        .ledger
        .get(&a)
        .expect("held")
        .1
        .root_key(&bob.device_id(), 2);
    let env = town.raw("bob", 0, |tx, _| {
        let (_, obj) = tx.get(ROOT, &key).expect("get").expect("the record");
        tx.put(&obj, "minutes", 600).expect("put");
    });
    assert_eq!(refused(&mut town.ledger, env), RejectReason::ImmutableFact);
    // Deleting one's own record is refused too: records are never deleted.
    let env = town.raw("bob", 0, |tx, _| {
        tx.delete(ROOT, &key).expect("delete");
    });
    assert_eq!(refused(&mut town.ledger, env), RejectReason::DeletesRecord);
}

#[test]
fn writing_outside_ones_own_new_record_is_refused() {
    let (mut town, _) = town();
    let carol = town.dev("carol", 0);
    // A record under bob's namespace, written by carol.
    let bob = town.dev("bob", 0).device_id();
    let squat = town.raw("carol", 0, |tx, seq| {
        let key = format!("proposal/{bob}/{seq}");
        let obj = tx
            .put_object(ROOT, key, automerge::ObjType::Map)
            .expect("put_object");
        tx.put(&obj, "v", 1).expect("put");
    });
    assert_eq!(
        refused(&mut town.ledger, squat),
        RejectReason::ForbiddenWrite
    );
    // A record with a field it does not know.
    let smuggle = town.raw("carol", 0, |tx, seq| {
        let key = format!("proposal/{}/{seq}", carol.device_id());
        let obj = tx
            .put_object(ROOT, key, automerge::ObjType::Map)
            .expect("put_object");
        for (k, v) in proposal("Smuggler").layout() {
            tx.put(&obj, k, v).expect("put");
        }
        tx.put(&obj, "payload", "extra").expect("put");
    });
    assert_eq!(
        refused(&mut town.ledger, smuggle),
        RejectReason::InvalidRecord
    );
}

#[test]
fn a_change_replayed_into_another_community_is_refused() {
    let (mut town, a) = town();
    let honest = town.forged("alice", 0, &confirm(a));
    let mut other = Town::found(Params::default(), &["zoe", "alice"]);
    assert_ne!(other.community(), town.community());
    // As is: signed for the first community.
    assert_eq!(
        refused(&mut other.ledger, honest.clone()),
        RejectReason::WrongCommunity
    );
    assert_eq!(
        refused(&mut other.ledger, town.genesis.clone()),
        RejectReason::WrongCommunity
    );
    // Relabelled for the second community: the signature is domain-separated by it.
    let c = other.community();
    let relabelled = Envelope {
        community: c,
        doc: DocId::ledger(&c),
        ..honest.clone()
    };
    assert_eq!(
        refused(&mut other.ledger, relabelled),
        RejectReason::BadSignature
    );
    // The right community with another document id.
    let wrong_doc = Envelope {
        doc: DocId([9; 32]),
        ..honest.clone()
    };
    assert_eq!(
        refused(&mut town.ledger, wrong_doc),
        RejectReason::WrongCommunity
    );
    assert_eq!(town.ledger.ingest([honest]).accepted.len(), 1);
}

#[test]
fn replaying_a_held_change_changes_nothing() {
    let (mut town, _) = town();
    let all: Vec<Envelope> = town.ledger.envelopes().collect();
    let (heads, json, len) = (
        town.ledger.heads(),
        town.ledger
            .state()
            .canonical_json()
            .expect("the state serializes"),
        town.ledger.len(),
    );
    let out = town
        .ledger
        .ingest(all.iter().cloned().chain(all.iter().cloned()));
    assert_eq!(out.duplicates, 2 * all.len());
    assert!(out.accepted.is_empty() && out.rejected.is_empty());
    assert_eq!(town.ledger.heads(), heads);
    assert_eq!(town.ledger.len(), len);
    assert_eq!(
        town.ledger
            .state()
            .canonical_json()
            .expect("the state serializes"),
        json
    );
    // Via the wire form as well.
    let out = town
        .ledger
        .ingest([Envelope::decode(&all[3].encode()).expect("decodes")]);
    assert_eq!(out.duplicates, 1);
}

#[test]
fn random_bytes_are_refused_as_malformed_without_panicking() {
    let (mut town, _) = town();
    let mut rng = Rng(42);
    for i in 0..2_000 {
        let len = rng.below(700);
        let mut bytes: Vec<u8> = (0..len).map(|_| rng.next() as u8).collect();
        if i % 2 == 0 && bytes.len() > 137 {
            // Half of them wear a valid header, so the change decoder is reached.
            let good = town.genesis.encode();
            bytes[..69].copy_from_slice(&good[..69]);
            let body = (bytes.len() - 137) as u32;
            bytes[133..137].copy_from_slice(&body.to_be_bytes());
        }
        match Envelope::decode(&bytes) {
            Err(r) => assert!(
                matches!(
                    r.reason,
                    RejectReason::Malformed | RejectReason::UnsupportedVersion
                ),
                "{r}"
            ),
            Ok(env) => {
                let reason = refused(&mut town.ledger, env);
                assert!(
                    matches!(
                        reason,
                        RejectReason::Malformed | RejectReason::CompressedChange
                    ),
                    "{reason}"
                );
            }
        }
    }
}

#[test]
fn truncated_envelopes_are_refused_as_malformed() {
    let (town, _) = town();
    let bytes = town.ledger.envelopes().last().expect("some").encode();
    for n in 0..bytes.len() {
        assert_eq!(
            Envelope::decode(&bytes[..n]).map_err(|r| r.reason),
            Err(RejectReason::Malformed),
            "truncated to {n}"
        );
    }
    // A change chunk cut short, in an envelope whose length field agrees.
    let (mut town, _) = self::town();
    let env = town.ledger.envelopes().last().expect("some").clone();
    for n in [0, 1, 8, 9, 20, env.change.len() / 2, env.change.len() - 1] {
        let cut = Envelope {
            change: env.change[..n].to_vec(),
            ..env.clone()
        };
        assert_eq!(refused(&mut town.ledger, cut), RejectReason::Malformed);
    }
}

#[test]
fn every_single_bit_flip_is_refused() {
    let (mut town, a) = town();
    let env = town.forged("alice", 0, &confirm(a));
    let bytes = env.encode();
    for bit in 0..bytes.len() * 8 {
        let mut b = bytes.clone();
        b[bit / 8] ^= 1 << (bit % 8);
        let reason = match Envelope::decode(&b) {
            Err(r) => r.reason,
            Ok(e) => {
                let out = town.ledger.ingest([e]);
                assert!(
                    out.accepted.is_empty(),
                    "bit {bit} (byte {}) accepted",
                    bit / 8
                );
                out.rejected[0].reason
            }
        };
        let expected: &[RejectReason] = match bit / 8 {
            0..=3 => &[RejectReason::Malformed],
            4 => &[RejectReason::UnsupportedVersion],
            5..=68 => &[RejectReason::WrongCommunity],
            69..=132 => &[RejectReason::BadSignature],
            133..=136 => &[RejectReason::Malformed, RejectReason::Oversize],
            _ => &[
                RejectReason::Malformed,
                RejectReason::CompressedChange,
                RejectReason::BadSignature,
            ],
        };
        assert!(expected.contains(&reason), "bit {bit}: {reason}");
    }
    assert_eq!(town.ledger.ingest([env]).accepted.len(), 1);
}

#[test]
fn a_signed_change_travels_in_exactly_one_byte_form() {
    // Malleability: the signature covers the change hash, so any other bytes that decode to
    // the same change (a wrong checksum, bytes after the chunk) must be refused.
    let (mut town, a) = town();
    let env = town.forged("alice", 0, &confirm(a));
    let mut checksum = env.clone();
    checksum.change[5] ^= 0x40;
    assert_eq!(refused(&mut town.ledger, checksum), RejectReason::Malformed);
    let mut trailing = env.clone();
    trailing.change.push(0);
    assert_eq!(refused(&mut town.ledger, trailing), RejectReason::Malformed);
    assert_eq!(town.ledger.ingest([env]).accepted.len(), 1);
}

#[test]
fn a_forked_member_stays_flagged_and_can_go_on_with_a_new_device() {
    let (mut town, _) = town();
    let (one, two) = equivocate(&town);
    let out = town.ledger.ingest([one, two]);
    assert_eq!(out.new_forks.len(), 1);
    let bob = town.id("bob");
    let old = town.dev("bob", 0).device_id();
    let state = town.ledger.state().clone();
    // Bob is still a member, flagged through his forked device.
    let m = &state.members[&bob];
    assert_eq!(m.status, coop_model::state::MemberStatus::Admitted);
    assert_eq!(m.devices.get(&old), Some(&true));
    assert_eq!(state.forked_devices.get(&old), Some(&Some(bob)));
    // A new device, certified by his identity key, writes for him again.
    let new = town.add_device("bob", 1);
    assert_eq!(town.status(&new), Ok(()));
    let p = town.write_on("bob", 1, proposal("Fresh start"));
    assert_eq!(town.status(&p), Ok(()));
    let state = town.ledger.state().clone();
    assert_eq!(state.members[&bob].devices.len(), 2);
    assert_eq!(state, town.ledger.derive_from_scratch());
}

#[test]
fn a_founder_device_that_equivocates_does_not_take_the_community_with_it() {
    // The genesis is the community: it keeps counting, and so does the founder's membership.
    // The forked device's records before the fork point keep counting (docs/RULES.md R15),
    // vouches included, so the members it admitted stay admitted; its records at and after
    // the fork point do not.
    let (mut town, _) = town();
    let key = town.dev("alice", 0);
    let mut base = town.replica();
    let one = forge(&mut base, &key, &proposal("Version one"), T0 + 9_000);
    let two = forge(&mut base, &key, &proposal("Version two"), T0 + 9_000);
    let _ = town.ledger.ingest([one.clone(), two.clone()]);
    let state = town.ledger.state().clone();
    let alice = town.id("alice");
    assert_eq!(state.name, "Elm Street");
    assert_eq!(state.founder, Some(alice));
    assert_eq!(state.params, Params::default());
    assert!(state.is_admitted(&alice));
    assert_eq!(status(&mut town.ledger, &rid(&town.genesis)), Ok(()));
    assert!(state.forked_devices.contains_key(&key.device_id()));
    assert!(
        state.is_admitted(&town.id("bob")),
        "vouched before the fork"
    );
    let canonical = if rid(&one) < rid(&two) { &one } else { &two };
    assert_eq!(
        derived(&mut town.ledger, canonical),
        Err(RejectReason::ForkedDevice)
    );
    // The founder goes on with a new device.
    town.add_device("alice", 1);
    let p = town.write_on("alice", 1, proposal("After the fork"));
    assert_eq!(town.status(&p), Ok(()));
}

#[test]
fn an_honest_device_that_built_on_the_discarded_branch_is_not_made_an_equivocator() {
    // Bob equivocates; alice confirms the story that turns out to be the discarded branch.
    // Her confirmation cannot count (it depends on a change no replica keeps), but her
    // device did nothing wrong: writing again must not fork it.
    let (town, _) = town();
    let (one, two) = equivocate(&town);
    let discarded = if rid(&one) > rid(&two) { one } else { two };
    let mut mine = town.replica();
    let _ = mine.ingest([discarded.clone()]);
    let alice = town.dev("alice", 0);
    let conf = mine
        .author(&alice, confirm(rid(&discarded)), T0 + 9_500)
        .expect("alice confirms what she saw");
    let mut others = town.replica();
    let _ = others.ingest([one_of(&town, &discarded)]);
    sync(&mut mine, &mut others);
    assert_converged(&mut mine, &mut others);
    assert!(is_discarded(&mine, &conf));

    // The author refuses rather than reuse the sequence number of her discarded change.
    let before = mine.len();
    let r = mine
        .author(&alice, proposal("Life goes on"), T0 + 10_000)
        .expect_err("would equivocate");
    assert_eq!(r.reason, RejectReason::DependsOnFork);
    assert_eq!(mine.len(), before);
    assert_eq!(mine.proofs().count(), 1, "only bob's fork");
    let state = mine.state().clone();
    assert!(!state.forked_devices.contains_key(&alice.device_id()));
    assert!(state.is_admitted(&town.id("alice")));
    // She goes on with a new device; her history before the fork still counts.
    let new = town.person("alice").device(&town.community(), 1);
    let cert = mine
        .author(&town.dev("alice", 1), new, T0 + 10_100)
        .expect("a new device");
    assert_eq!(derived(&mut mine, &cert), Ok(()));
    let p = mine
        .author(&town.dev("alice", 1), proposal("Life goes on"), T0 + 10_200)
        .expect("counts");
    assert_eq!(derived(&mut mine, &p), Ok(()));
    assert_eq!(status(&mut mine, &rid(&town.genesis)), Ok(()));
}

/// The other branch of bob's equivocation.
fn one_of(town: &Town, not: &Envelope) -> Envelope {
    let (one, two) = equivocate(town);
    if rid(&one) == rid(not) {
        two
    } else {
        one
    }
}

#[test]
fn more_concurrent_heads_than_a_change_may_name_do_not_stop_writers() {
    // 70 newcomers each write a join request on the genesis alone: 70 concurrent heads, more
    // than the 64 dependencies the gate lets one change name. Members keep writing, and
    // successive writes merge the heads down.
    let mut town = Town::found(Params::default(), &["alice"]);
    let genesis = town.genesis.clone();
    for i in 0..70 {
        let p = Person::new(&format!("newcomer-{i}"));
        let mut own = Ledger::new(town.community());
        let _ = own.ingest([genesis.clone()]);
        let join = own
            .author(&p.dev(0), p.join(&town.community(), 0), T0 + 10)
            .expect("a join request");
        let out = town.ledger.ingest([join]);
        assert_eq!(out.accepted.len(), 1);
    }
    assert_eq!(town.ledger.heads().len(), 70);
    let first = town.write("alice", proposal("Garden"));
    assert!(town.ledger.heads().len() <= 70 - 64 + 1);
    let second = town.write("alice", proposal("Market"));
    assert_eq!(town.ledger.heads(), vec![second]);
    let state = town.ledger.state().clone();
    assert!(state.proposals.contains_key(&first) && state.proposals.contains_key(&second));
}

#[test]
fn an_op_counter_that_jumps_ahead_is_refused() {
    // Op counters must be dense (one past the causal past): a join request whose counters
    // start near 2^32 would otherwise push every later change past what Automerge decodes.
    let mut town = Town::found(Params::default(), &["alice"]);
    let p = Person::new("mallory");
    let c = town.community();
    let dev = p.dev(0);
    // An honest join request, rewritten so its first op counter is 2^32 - 5, and re-signed.
    let mut own = Ledger::new(c);
    let _ = own.ingest([town.genesis.clone()]);
    let honest = own.author(&dev, p.join(&c, 0), T0).expect("a join request");
    let mut expanded = automerge::Change::try_from(honest.change.as_slice())
        .expect("a change")
        .decode();
    let start = (1u64 << 32) - 5;
    expanded.start_op = std::num::NonZeroU64::new(start).expect("non-zero");
    let own_obj = automerge::legacy::ObjectId::Id(automerge::legacy::OpId::new(
        start,
        &ActorId::from(dev.device_id().0),
    ));
    for op in expanded.operations.iter_mut().skip(1) {
        op.obj = own_obj.clone();
    }
    expanded.hash = None;
    let change = automerge::Change::from(expanded);
    let env = Envelope::sign(
        c,
        DocId::ledger(&c),
        &dev,
        &change.hash().0,
        change.raw_bytes().to_vec(),
    );
    assert_eq!(refused(&mut town.ledger, env), RejectReason::BadSequence);
}

#[test]
fn a_sequence_number_beyond_u32_is_refused_not_truncated() {
    // Vector clocks keep sequence numbers as u32. A change claiming seq 2^32 + 1 would be
    // truncated to 1 in a clock and read as following nothing; it is refused by name.
    let mut town = Town::found(Params::default(), &["alice"]);
    let c = town.community();
    let dev = town.dev("alice", 0);
    let mut own = replica_of(&town.ledger);
    let honest = own
        .author(&dev, proposal("Far future"), T0)
        .expect("a proposal");
    let mut expanded = automerge::Change::try_from(honest.change.as_slice())
        .expect("a change")
        .decode();
    let seq = (1u64 << 32) + 1;
    expanded.seq = seq;
    let root = proposal("Far future").root_key(&dev.device_id(), seq);
    expanded.operations[0].key = automerge::legacy::Key::Map(root.into());
    expanded.hash = None;
    let change = automerge::Change::from(expanded);
    let env = Envelope::sign(
        c,
        DocId::ledger(&c),
        &dev,
        &change.hash().0,
        change.raw_bytes().to_vec(),
    );
    let out = town.ledger.ingest([env]);
    assert!(out.accepted.is_empty(), "{out:?}");
    let r = out.rejected.first().expect("refused");
    assert_eq!(r.reason, RejectReason::BadSequence);
    assert!(
        r.detail.contains("the most changes one device may write"),
        "{}",
        r.detail
    );
}

#[test]
fn a_removal_refused_in_the_log_removes_nobody() {
    // A removal decision about a member id who has not joined in its past is refused, and
    // so is the founder's old-style removal record; neither bans the member who joins later.
    let mut town = Town::found(Params::default(), &["alice"]);
    let erin = Person::new("erin").id();
    let removal = town
        .try_force(
            "alice",
            0,
            &decision(
                "pre-emptive",
                town.now() + 3_600,
                DecisionAction::Removal { member: erin },
            ),
        )
        .expect("the gate takes it; derivation judges it");
    let old_style = town
        .try_force(
            "alice",
            0,
            &Record::Remove(record::Remove {
                member: erin,
                reason: "pre-emptive".into(),
            }),
        )
        .expect("the gate takes it; derivation judges it");
    town.admit("erin");
    let p = town.write("erin", proposal("Garden"));
    let state = town.ledger.state().clone();
    assert_eq!(
        log_entry(&state, &removal).reason,
        Some(RejectReason::InvalidDecision)
    );
    assert_eq!(
        log_entry(&state, &old_style).reason,
        Some(RejectReason::NotAllowed)
    );
    assert!(state.is_admitted(&erin));
    assert!(state.proposals.contains_key(&p));
    assert_eq!(state, town.ledger.derive_from_scratch());
}
