//! A member's devices (docs/RULES.md R15, R18): a forked device keeps its records before the
//! fork point, in every delivery order; a restored backup takes in its own later changes
//! before it writes; revocation refuses a device's records outside the revocation's past,
//! the same in every delivery order; certificates must be the member's.

use coop_model::record;
use coop_model::*;

use super::script::check;
use super::support::*;
use expect_test::expect;

/// Every ordering of `items` (Heap's algorithm; `items` is small).
fn permutations<T: Clone>(items: &[T]) -> Vec<Vec<T>> {
    fn go<T: Clone>(k: usize, a: &mut Vec<T>, out: &mut Vec<Vec<T>>) {
        if k <= 1 {
            out.push(a.clone());
            return;
        }
        for i in 0..k {
            go(k - 1, a, out);
            let j = if k.is_multiple_of(2) { i } else { 0 };
            a.swap(j, k - 1);
        }
    }
    let mut a = items.to_vec();
    let mut out = Vec::new();
    go(a.len(), &mut a, &mut out);
    out
}

/// The sequence number of a signed change.
fn seq_of(env: &Envelope) -> u64 {
    automerge::Change::from_bytes(env.change.clone())
        .expect("a change")
        .seq()
}

/// Feeds `items` one by one in `order` to a fresh replica of `base` (with the proofs the
/// replica itself discovers) and returns it.
fn deliver(base: &[Envelope], community: CommunityId, order: &[Envelope]) -> Ledger {
    let mut l = Ledger::new(community);
    let out = l.ingest(base.to_vec());
    assert!(out.rejected.is_empty(), "{:?}", out.rejected);
    for env in order {
        let out = l.ingest([env.clone()]);
        assert!(out.rejected.is_empty(), "{:?}", out.rejected);
        // Incremental derivation matches derivation from scratch after every delivery.
        assert_eq!(l.state().clone(), l.derive_from_scratch());
    }
    l
}

#[test]
fn a_forked_device_keeps_its_records_before_the_fork_point_in_every_delivery_order() {
    let mut town = Town::found(Params::default(), &["alice", "bob", "carol"]);
    let base: Vec<Envelope> = town.ledger.envelopes().collect();
    let (bob, carol) = (town.id("bob"), town.id("carol"));
    let key = town.dev("bob", 0);
    // Before the fork: bob's hour for carol, which carol confirms.
    let hour = town.write("bob", attest(carol, 60, "fixing the fence"));
    let confirmed = town.write("carol", confirm(hour));
    // Then the fork: a restored copy of bob's device writes the same sequence number again,
    // and one copy goes on writing on its own version.
    let mut one_side = town.replica();
    let one = forge(
        &mut one_side,
        &key,
        &attest(carol, 30, "one story"),
        T0 + 9_000,
    );
    let _ = one_side.ingest([one.clone()]);
    let after = forge(&mut one_side, &key, &proposal("Later"), T0 + 9_100);
    let two = forge(
        &mut town.replica(),
        &key,
        &attest(carol, 45, "another story"),
        T0 + 9_000,
    );
    let fork_at = seq_of(&one);
    assert_eq!(seq_of(&two), fork_at);
    let items: Vec<Envelope> = town
        .ledger
        .envelopes()
        .skip(base.len())
        .chain([one.clone(), two.clone(), after.clone()])
        .collect();
    assert_eq!(items.len(), 5);

    let canonical = rid(&one).min(rid(&two));
    let mut reference: Option<Vec<u8>> = None;
    for order in permutations(&items) {
        let mut l = deliver(&base, town.community(), &order);
        let state = l.state().clone();
        // The prefix every version shares keeps counting: the hour, its confirmation.
        assert_eq!(status(&mut l, &hour), Ok(()));
        assert_eq!(status(&mut l, &confirmed), Ok(()));
        assert_eq!(state.members[&bob].time.provided, Minutes(60));
        assert_eq!(state.members[&carol].time.received, Minutes(60));
        // At and after the fork point nothing counts.
        assert_eq!(status(&mut l, &canonical), Err(RejectReason::ForkedDevice));
        if rid(&one) == canonical {
            assert_eq!(
                status(&mut l, &rid(&after)),
                Err(RejectReason::ForkedDevice)
            );
        } else {
            assert!(l.discarded().any(|e| rid(&e) == rid(&after)));
        }
        // The device is flagged, with its fork point.
        assert_eq!(state.forked_devices.get(&key.device_id()), Some(&Some(bob)));
        let info = &state.devices[&key.device_id()];
        assert_eq!(info.forked_at, Some(fork_at));
        assert_eq!(info.member, bob);
        let json = state.canonical_json().expect("the state serializes");
        match &reference {
            None => reference = Some(json),
            Some(r) => assert!(*r == json, "another state for order {order:?}"),
        }
    }
}

#[test]
fn an_earlier_fork_point_learnt_later_reaches_back() {
    // Two forks of one device: first known at a later sequence number, then at an earlier
    // one. The earlier point rules from then on, and a replica that learnt them in the
    // other order agrees.
    let mut town = Town::found(Params::default(), &["alice", "bob", "carol"]);
    let carol = town.id("carol");
    let key = town.dev("bob", 0);
    let mut before_early = town.replica();
    let early = town.write("bob", attest(carol, 30, "early"));
    let mut before_late = town.replica();
    let late = town.write("bob", attest(carol, 40, "late"));
    let other_late = forge(
        &mut before_late,
        &key,
        &attest(carol, 50, "copy"),
        T0 + 9_000,
    );
    let other_early = forge(
        &mut before_early,
        &key,
        &attest(carol, 20, "copy"),
        T0 + 9_000,
    );
    let forked_at = |l: &mut Ledger| l.state().devices[&key.device_id()].forked_at;

    let mut a = town.replica();
    let _ = a.ingest([other_late.clone()]);
    assert_eq!(forked_at(&mut a), Some(seq_of(&other_late)));
    assert_eq!(status(&mut a, &early), Ok(()), "before the fork point");
    let canonical_late = late.min(rid(&other_late));
    assert_eq!(
        status(&mut a, &canonical_late),
        Err(RejectReason::ForkedDevice)
    );
    let _ = a.ingest([other_early.clone()]);
    assert_eq!(forked_at(&mut a), Some(seq_of(&other_early)));
    let canonical_early = early.min(rid(&other_early));
    assert_eq!(
        status(&mut a, &canonical_early),
        Err(RejectReason::ForkedDevice)
    );

    let mut b = Ledger::new(town.community());
    let mut all: Vec<Envelope> = a.envelopes().collect();
    all.reverse();
    let _ = b.ingest(all);
    for p in a.proofs().cloned().collect::<Vec<_>>() {
        b.ingest_proof(p).expect("a proof");
    }
    assert_converged(&mut a, &mut b);
}

#[test]
fn a_restored_backup_takes_in_its_own_later_changes_before_it_writes() {
    let mut town = Town::found(Params::default(), &["alice", "bob", "carol"]);
    let carol = town.id("carol");
    let key = town.dev("bob", 0);
    town.write("bob", attest(carol, 30, "before the backup"));
    // Bob's backup, taken now; then his device writes on.
    let backup: Vec<Envelope> = town.ledger.envelopes().collect();
    let later = town.write("bob", attest(carol, 40, "after the backup"));
    let restore = |envs: &[Envelope]| {
        let mut l = Ledger::new(town.community());
        let _ = l.ingest(envs.to_vec());
        l
    };

    // Written from the restored backup at once, the device forks.
    let mut hasty = restore(&backup);
    let env = hasty
        .author(&key, proposal("Hasty"), T0 + 9_000)
        .expect("the backup knows nothing newer");
    let out = town.replica().ingest([env]);
    assert_eq!(
        out.new_forks.len(),
        1,
        "writing from a stale backup forks the device"
    );

    // Taking in what peers hold of its own device first, it writes after its latest change.
    let mut careful = restore(&backup);
    let theirs = town.replica();
    let (missing, _) = theirs.missing_for(&careful.sync_clock(), 1000);
    let out = careful.ingest(missing);
    assert!(out.rejected.is_empty());
    assert!(careful.contains(&later));
    let env = careful
        .author(&key, proposal("Careful"), T0 + 9_100)
        .expect("written after its own latest change");
    let mut peer = theirs;
    let out = peer.ingest([env.clone()]);
    assert!(out.new_forks.is_empty() && out.rejected.is_empty());
    assert_eq!(status(&mut peer, &rid(&env)), Ok(()));
}

/// Bob with a second device (1) beside his first (0).
fn two_devices() -> Town {
    let mut town = Town::found(Params::default(), &["alice", "bob", "carol"]);
    town.add_device("bob", 1);
    town
}

fn revoke(device: DeviceId) -> Record {
    Record::DeviceRevoke(record::DeviceRevoke {
        device,
        reason: "laptop stolen".into(),
    })
}

#[test]
fn a_revoked_devices_later_writes_are_refused_and_its_earlier_ones_count() {
    let mut town = two_devices();
    let carol = town.id("carol");
    let old = town.dev("bob", 0);
    let before = town.write("bob", attest(carol, 30, "before"));
    let r = town.write_on("bob", 1, revoke(old.device_id()));
    assert_eq!(town.status(&r), Ok(()));
    assert_eq!(town.status(&before), Ok(()));
    // The author refuses the revoked device's next write with the named reason.
    let refusal = town
        .try_write("bob", proposal("From the stolen laptop"))
        .expect_err("revoked");
    assert_eq!(refusal.reason, RejectReason::RevokedDevice);
    // Written past the author's check, derivation refuses it on every replica.
    let forced = town.force("bob", 0, &proposal("Forced"));
    assert_eq!(town.status(&forced), Err(RejectReason::RevokedDevice));
    let state = town.ledger.state().clone();
    assert_eq!(state.devices[&old.device_id()].revoked_by, Some(r));
    // Bob himself goes on with his other device.
    let p = town.write_on("bob", 1, proposal("From the desktop"));
    assert_eq!(town.status(&p), Ok(()));
    // A second revocation of the same device is redundant.
    let again = town.force("bob", 1, &revoke(old.device_id()));
    assert_eq!(town.status(&again), Err(RejectReason::Redundant));
    let mut fresh = town.replica();
    assert_converged(&mut town.ledger, &mut fresh);
}

#[test]
fn a_write_concurrent_with_its_revocation_resolves_the_same_in_every_delivery_order() {
    let town = two_devices();
    let base: Vec<Envelope> = town.ledger.envelopes().collect();
    let (alice, carol) = (town.id("alice"), town.id("carol"));
    let old = town.dev("bob", 0);
    // On one side, the lost laptop writes an hour and carol confirms it; on the other, bob
    // revokes the laptop from his desktop without having seen either.
    let mut lost = town.replica();
    let hour = lost
        .author(&old, attest(carol, 90, "concurrent"), T0 + 9_000)
        .expect("not revoked yet here");
    let confirmed = lost
        .author(&town.dev("carol", 0), confirm(rid(&hour)), T0 + 9_050)
        .expect("carol confirms");
    let mut desk = town.replica();
    let r = desk
        .author(&town.dev("bob", 1), revoke(old.device_id()), T0 + 9_010)
        .expect("revocation");
    // Alice, having seen the revocation, writes on top of everything.
    let mut both = town.replica();
    let _ = both.ingest([hour.clone(), confirmed.clone(), r.clone()]);
    let on_top = both
        .author(
            &town.dev("alice", 0),
            attest(carol, 15, "on top"),
            T0 + 9_100,
        )
        .expect("alice");
    let items = vec![hour.clone(), confirmed.clone(), r.clone(), on_top.clone()];
    let mut reference: Option<Vec<u8>> = None;
    for order in permutations(&items) {
        let mut l = deliver(&base, town.community(), &order);
        assert_eq!(status(&mut l, &rid(&r)), Ok(()));
        assert_eq!(
            status(&mut l, &rid(&hour)),
            Err(RejectReason::RevokedDevice)
        );
        assert_eq!(
            status(&mut l, &rid(&confirmed)),
            Err(RejectReason::UnknownReference)
        );
        assert_eq!(status(&mut l, &rid(&on_top)), Ok(()));
        let state = l.state().clone();
        // The laptop's hour never counted, for bob or for carol.
        assert_eq!(state.members[&carol].time.received, Minutes(0));
        assert_eq!(state.members[&town.id("bob")].time.provided, Minutes(0));
        assert_eq!(state.attestations[&rid(&on_top)].provider, alice);
        let json = state.canonical_json().expect("the state serializes");
        match &reference {
            None => reference = Some(json),
            Some(x) => assert!(*x == json, "another state for order {order:?}"),
        }
    }
}

#[test]
fn only_the_devices_own_member_may_revoke_it() {
    let mut town = two_devices();
    let bobs = town.dev("bob", 0).device_id();
    let r = town.force("carol", 0, &revoke(bobs));
    assert_eq!(town.status(&r), Err(RejectReason::NotAllowed));
    let refusal = town.try_write("carol", revoke(bobs)).expect_err("not hers");
    assert_eq!(refusal.reason, RejectReason::NotAllowed);
    let unknown = town.force("bob", 1, &revoke(DeviceId([7; 32])));
    assert_eq!(town.status(&unknown), Err(RejectReason::UnknownReference));
    // Bob's device still writes.
    let p = town.write("bob", proposal("Still mine"));
    assert_eq!(town.status(&p), Ok(()));
}

#[test]
fn two_devices_revoking_each_other_concurrently_are_both_revoked_everywhere() {
    let town = two_devices();
    let base: Vec<Envelope> = town.ledger.envelopes().collect();
    let (d0, d1) = (town.dev("bob", 0), town.dev("bob", 1));
    let a = town
        .replica()
        .author(&d0, revoke(d1.device_id()), T0 + 9_000)
        .expect("revoke 1");
    let b = town
        .replica()
        .author(&d1, revoke(d0.device_id()), T0 + 9_000)
        .expect("revoke 0");
    let mut reference: Option<Vec<u8>> = None;
    for order in permutations(&[a.clone(), b.clone()]) {
        let mut l = deliver(&base, town.community(), &order);
        let state = l.state().clone();
        // Each revocation is outside the other's past: neither device can write any more,
        // and bob pairs a new device with his identity key.
        for d in [&d0, &d1] {
            let r = l
                .author(d, proposal("Still here?"), T0 + 9_500)
                .expect_err("revoked");
            assert_eq!(r.reason, RejectReason::RevokedDevice);
        }
        let json = state.canonical_json().expect("the state serializes");
        match &reference {
            None => reference = Some(json),
            Some(x) => assert!(*x == json),
        }
        let cert = town.person("bob").device(&town.community(), 2);
        let e = l
            .author(&town.dev("bob", 2), cert, T0 + 9_600)
            .expect("new");
        assert_eq!(status(&mut l, &rid(&e)), Ok(()));
        let p = l
            .author(&town.dev("bob", 2), proposal("Fresh"), T0 + 9_700)
            .expect("a new device writes");
        assert_eq!(status(&mut l, &rid(&p)), Ok(()));
    }
}

#[test]
fn a_device_certificate_not_signed_by_the_members_identity_key_is_refused() {
    let mut town = two_devices();
    let bob = town.id("bob");
    // Carol certifies a device of hers as bob's.
    let forged = Record::from(record::Device {
        member: bob,
        cert: town
            .person("carol")
            .identity
            .certify(&town.community(), &town.dev("carol", 5).device_id()),
        label: Some("not bob's".into()),
        identity: None,
    });
    let env = town.forged("carol", 5, &forged);
    let out = town.ledger.ingest([env]);
    assert_eq!(out.rejected.len(), 1);
    assert_eq!(out.rejected[0].reason, RejectReason::BadCertificate);
}

#[test]
fn device_list_shows_labels_and_when_each_device_added_and_last_wrote() {
    let mut town = Town::found(Params::default(), &["alice", "bob"]);
    let bob = town.id("bob");
    let labelled = Record::from(record::Device {
        member: bob,
        cert: town
            .person("bob")
            .identity
            .certify(&town.community(), &town.dev("bob", 1).device_id()),
        label: Some("desktop".into()),
        identity: None,
    });
    let cert = town.write_on("bob", 1, labelled);
    let added = town.now();
    let p = town.write_on("bob", 1, proposal("From the desktop"));
    let wrote = town.now();
    assert_eq!(town.status(&p), Ok(()));
    let state = town.ledger.state().clone();
    let info = &state.devices[&town.dev("bob", 1).device_id()];
    assert_eq!(info.label.as_deref(), Some("desktop"));
    assert_eq!(info.certificate, cert);
    assert_eq!((info.added, info.last_wrote), (added, wrote));
    assert_eq!(info.member, bob);
    let first = &state.devices[&town.dev("bob", 0).device_id()];
    assert_eq!(first.label, None);
    assert!(first.added < added);
}

#[test]
fn revocation_fixture_every_refusal_named() {
    check(
        r#"
        community alice bob carol
        a1 = bob: attest carol 60 "before"
        carol: confirm a1
        p1 = bob@1: propose "From the desktop"
        r1 = bob@1: revoke_device bob@0 "laptop stolen"
        bob: attest carol 30 "after"
        f1 = bob!: attest carol 30 "forced"
        carol: revoke_device bob@1
        carol!: revoke_device bob@1
        bob@1!: revoke_device bob@0
        bob@1!: revoke_device carol@5
        "#,
        expect![[r#"
            members
              alice admitted: time +0 (+0 -0), sp 100/100
              bob admitted: time +60 (+60 -0), sp 100/100, 2 devices (0 forked)
              carol admitted: time -60 (+0 -60), sp 100/100
            attestations
              a1: bob -> carol 60 min "before" 2026-11-01 confirmed
            proposals
              p1: "From the desktop" by bob open, 0 SP active (peak 0) from 0 supporters
            refused
              f1 = bob!: attest carol 30 "forced" => revoked_device: written outside the past of revocation r1
              carol!: revoke_device bob@1 => not_allowed: only the device's own member may revoke it
              bob@1!: revoke_device bob@0 => redundant: device d053b4da18b6 is already revoked
              bob@1!: revoke_device carol@5 => unknown_reference: no device c5c28c03705a is certified
              bob: attest carol 30 "after" => revoked_device: written outside the past of revocation r1 (not written)
              carol: revoke_device bob@1 => not_allowed: only the device's own member may revoke it (not written)
            counted 10 refused 4
        "#]],
    );
}
