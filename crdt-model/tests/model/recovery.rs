//! Recovery by governance decision (docs/RULES.md R19): a member who lost every device and
//! backup is rebound to a new identity key once a recovery decision passes under the normal
//! quorum and approval and its waiting period is over. Their history, balance and roles
//! carry over; devices certified by the old key stop counting from the tally on; devices
//! the new key certifies count for the member after it. Forged, under-voted and early
//! recoveries change nothing, and every delivery order derives the same state.

use coop_model::record;
use coop_model::record::{Choice, DecisionAction, Role};
use coop_model::state::DecisionStatus;
use coop_model::*;

use super::support::*;

const DAY: i64 = 86_400;

/// The person on bob's new machine: a fresh identity key and its devices.
const NEW: &str = "bob-new";

/// Alice, bob, carol and dave; bob provided an hour carol confirmed and is a moderator.
fn town() -> (Town, RecordId) {
    let mut town = Town::found(Params::default(), &["alice", "bob", "carol", "dave"]);
    let (bob, carol) = (town.id("bob"), town.id("carol"));
    let hour = town.write("bob", attest(carol, 60, "fixing the fence"));
    town.write("carol", confirm(hour));
    town.decide(
        "alice",
        DecisionAction::RoleGrant {
            member: bob,
            role: Role::Moderator,
        },
        &["alice", "carol", "dave"],
    );
    town.people.insert(NEW.into(), Person::new(NEW));
    (town, hour)
}

fn recovery(town: &Town) -> DecisionAction {
    DecisionAction::Recovery {
        member: town.id("bob"),
        new_identity: town.id(NEW),
    }
}

/// The certificate bob's new machine writes: signed by the new key, naming bob.
fn new_device_cert(town: &Town, n: usize) -> Record {
    let key = &town.person(NEW).identity;
    Record::from(record::Device {
        member: town.id("bob"),
        cert: key.certify(&town.community(), &town.dev(NEW, n).device_id()),
        label: Some("new laptop".into()),
        identity: Some(key.member_id()),
    })
}

/// Opens the recovery (by `proposer`, one-day window), casts `yes` votes and returns the
/// decision.
fn propose(town: &mut Town, proposer: &str, yes: &[&str]) -> RecordId {
    let d = town.write(
        proposer,
        decision("Recover bob", town.now() + DAY, recovery(town)),
    );
    for v in yes {
        town.write(v, vote(d, Choice::Yes));
    }
    d
}

#[test]
fn a_passed_recovery_rebinds_the_member_after_its_waiting_period() {
    let (mut town, hour) = town();
    let (bob, carol) = (town.id("bob"), town.id("carol"));
    let d = propose(&mut town, "alice", &["alice", "carol", "dave"]);
    // The decision is open for every member to see, like any other.
    assert_eq!(
        town.ledger.state().decisions[&d].status,
        DecisionStatus::Open
    );
    // The voting window closed, but the week's wait is not over: the tally is refused.
    town.advance(2 * DAY);
    let early = town.force("carol", 0, &tally(d));
    assert_eq!(town.status(&early), Err(RejectReason::WindowOpen));
    let detail = log_entry(town.ledger.state(), &early).detail.clone();
    assert!(detail.unwrap().contains("waiting period"));
    assert!(town.ledger.state().members[&bob].recovered.is_none());
    town.advance(6 * DAY);
    let t = town.write("carol", tally(d));
    let state = town.ledger.state().clone();
    assert_eq!(state.decisions[&d].status, DecisionStatus::Passed);
    let m = &state.members[&bob];
    let r = m.recovered.expect("recovered");
    assert_eq!((r.identity, r.decision, r.tally), (town.id(NEW), d, t));
    assert_eq!(m.identity_key(), town.id(NEW));
    // The old device is revoked by the tally.
    assert_eq!(
        state.devices[&town.dev("bob", 0).device_id()].revoked_by,
        Some(t)
    );

    // bob's old device (say, found by a thief) writes after the tally: refused, named.
    let stolen = town.force("bob", 0, &attest(carol, 30, "after the recovery"));
    assert_eq!(town.status(&stolen), Err(RejectReason::RecoveredIdentity));
    // A further device certified by the old key is refused too.
    let old_cert = town.person("bob").device(&town.community(), 1);
    let old = town.force("bob", 1, &old_cert);
    assert_eq!(town.status(&old), Err(RejectReason::RecoveredIdentity));

    // The new machine's device, certified by the new key, acts for bob.
    let cert = town.write_on(NEW, 0, new_device_cert(&town, 0));
    assert_eq!(town.status(&cert), Ok(()));
    let p = town.write_on(NEW, 0, proposal("From the new laptop"));
    let h2 = town.write_on(NEW, 0, attest(carol, 30, "weeding"));
    town.write("carol", confirm(h2));
    let state = town.ledger.state().clone();
    assert_eq!(state.proposals[&p].proposer, bob);
    // History, balance and roles carried over: the first hour still counts.
    assert_eq!(town.status(&hour), Ok(()));
    let m = &state.members[&bob];
    assert_eq!(m.time.provided, Minutes(90));
    assert!(m.roles.contains(&Role::Moderator));
    assert_eq!(m.status, state::MemberStatus::Admitted);
    let info = &state.devices[&town.dev(NEW, 0).device_id()];
    assert_eq!((info.member, info.revoked_by), (bob, None));
    assert_eq!(town.ledger.derive_from_scratch(), state);
    // Another replica fed everything through the gate derives the same.
    let mut other = town.replica();
    assert_converged(&mut town.ledger, &mut other);
}

#[test]
fn forged_under_voted_and_lone_recoveries_change_nothing() {
    // A member cannot propose their own recovery.
    let (mut town, _) = town();
    let own = town.force(
        "bob",
        0,
        &decision("Recover me", town.now() + DAY, recovery(&town)),
    );
    assert_eq!(town.status(&own), Err(RejectReason::NotAllowed));

    // The new key may not be an existing member's.
    let taken = DecisionAction::Recovery {
        member: town.id("bob"),
        new_identity: town.id("dave"),
    };
    let t = town.force("alice", 0, &decision("Merge", town.now() + DAY, taken));
    assert_eq!(town.status(&t), Err(RejectReason::InvalidDecision));

    // Under-voted: the proposer's yes alone of four members misses the 30 % quorum.
    let d = propose(&mut town, "alice", &["alice"]);
    town.advance(8 * DAY);
    town.write("carol", tally(d));
    assert_eq!(
        town.ledger.state().decisions[&d].status,
        DecisionStatus::NoQuorum
    );
    let bob = town.id("bob");
    assert!(town.ledger.state().members[&bob].recovered.is_none());
    // The new key's certificate is refused, and the device then acts for no one.
    let cert = town.force(NEW, 0, &new_device_cert(&town, 0));
    assert_eq!(town.status(&cert), Err(RejectReason::BadCertificate));
    let p = town.force(NEW, 0, &proposal("Taking over bob"));
    assert_eq!(town.status(&p), Err(RejectReason::NotAMember));
    // bob's old device still counts.
    let ok = town.write("bob", proposal("Still me"));
    assert_eq!(town.status(&ok), Ok(()));

    // Quorum reached by the proposer alone (one of three is over 30 %), and a yes from the
    // member recovered: still rejected, the proposer is never the only yes.
    let mut small = Town::found(Params::default(), &["alice", "bob", "carol"]);
    small.people.insert(NEW.into(), Person::new(NEW));
    let d = propose(&mut small, "alice", &["alice", "bob"]);
    small.advance(8 * DAY);
    small.write("carol", tally(d));
    let state = small.ledger.state().clone();
    let decided = &state.decisions[&d];
    assert_eq!(decided.status, DecisionStatus::Rejected);
    let why = decided.tally.as_ref().and_then(|t| t.effect_error.clone());
    assert!(why.unwrap().contains("other than its proposer"));
    assert!(state.members[&small.id("bob")].recovered.is_none());
}

#[test]
fn a_certificate_by_the_new_key_before_the_tally_is_refused() {
    let (mut town, _) = town();
    let d = propose(&mut town, "alice", &["alice", "carol", "dave"]);
    // Written before the tally (not in its past): refused even once the recovery passes.
    let early = town.force(NEW, 0, &new_device_cert(&town, 0));
    town.advance(8 * DAY);
    town.write("dave", tally(d));
    assert_eq!(town.status(&early), Err(RejectReason::BadCertificate));
    // A certificate signed by some other key that claims to be bob's new one: the gate
    // refuses the signature.
    let mut forged = new_device_cert(&town, 1);
    if let Record::Device(r) = &mut forged {
        r.cert = town
            .person("carol")
            .identity
            .certify(&town.community(), &town.dev(NEW, 1).device_id());
    }
    let refused = town.try_force(NEW, 1, &forged).expect_err("refused");
    assert_eq!(refused.reason, RejectReason::BadCertificate);
    // A second device of the new key, after the tally, counts.
    let later = town.force(NEW, 2, &new_device_cert(&town, 2));
    assert_eq!(town.status(&later), Ok(()));
}

#[test]
fn the_old_devices_concurrent_write_and_the_tally_converge_in_every_delivery_order() {
    let (mut town, _) = town();
    let (bob, carol) = (town.id("bob"), town.id("carol"));
    let d = propose(&mut town, "alice", &["alice", "carol", "dave"]);
    town.advance(8 * DAY);
    let base: Vec<Envelope> = town.ledger.envelopes().collect();
    // bob's old device writes concurrently with the tally (it never saw it).
    let concurrent = forge(
        &mut town.replica(),
        &town.dev("bob", 0),
        &attest(carol, 15, "concurrent"),
        town.now() + 60,
    );
    let t = town.write("carol", tally(d));
    let cert = town.write_on(NEW, 0, new_device_cert(&town, 0));
    let after = town.write_on(NEW, 0, proposal("Back again"));
    let mut items: Vec<Envelope> = town.ledger.envelopes().skip(base.len()).collect();
    items.push(concurrent.clone());
    assert_eq!(items.len(), 4);
    let mut reference: Option<Vec<u8>> = None;
    let mut orders = vec![items.clone()];
    // Every rotation and its reverse: each item first and last at least once.
    for k in 1..items.len() {
        let mut o = items.clone();
        o.rotate_left(k);
        orders.push(o);
    }
    for o in orders.clone() {
        orders.push(o.into_iter().rev().collect());
    }
    for order in orders {
        let mut l = Ledger::new(town.community());
        assert!(l.ingest(base.clone()).rejected.is_empty());
        for env in &order {
            let out = l.ingest([env.clone()]);
            assert!(out.rejected.is_empty(), "{:?}", out.rejected);
            assert_eq!(l.state().clone(), l.derive_from_scratch());
        }
        assert_eq!(
            status(&mut l, &rid(&concurrent)),
            Err(RejectReason::RecoveredIdentity)
        );
        assert_eq!(status(&mut l, &t), Ok(()));
        assert_eq!(status(&mut l, &cert), Ok(()));
        assert_eq!(status(&mut l, &after), Ok(()));
        assert_eq!(l.state().proposals[&after].proposer, bob);
        let json = l.state().canonical_json().expect("serializes");
        match &reference {
            None => reference = Some(json),
            Some(r) => assert!(*r == json, "another state for another order"),
        }
    }
}
