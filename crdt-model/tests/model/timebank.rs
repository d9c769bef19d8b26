//! The time bank through the public API: two replicas joining, the balance query at a given
//! `now`, and what a receiver still has to settle.

use coop_model::record;
use coop_model::*;

use super::support::*;

#[test]
fn a_newcomer_joins_from_their_own_replica_and_trades_hours() {
    // Alice founds; Bob starts from an empty ledger of the community, asks to join, is
    // vouched for, attests 3 h to alice, who confirms. Both replicas agree.
    let alice = Person::new("alice");
    let bob = Person::new("bob");
    let (mut la, _) = Ledger::found(
        &alice.identity,
        &alice.dev(0),
        "Elm Street",
        "alice",
        Params::default(),
        T0,
    )
    .expect("genesis");
    let c = la.community();
    let mut lb = Ledger::new(c);
    let join = lb
        .author(&bob.dev(0), bob.join(&c, 0), T0 + 100)
        .expect("a join request needs no admission");
    assert_eq!(la.ingest([join]).accepted.len(), 1);
    la.author(
        &alice.dev(0),
        Record::Vouch(record::Vouch { member: bob.id() }),
        T0 + 200,
    )
    .expect("vouch");
    let out = lb.ingest(la.envelopes().collect::<Vec<_>>());
    assert!(out.rejected.is_empty(), "{:?}", out.rejected);
    assert_eq!(out.duplicates, 1, "bob's own join came back");
    let att = lb
        .author(&bob.dev(0), attest(alice.id(), 180, "car repair"), T0 + 300)
        .expect("bob is a member now");
    let _ = la.ingest([att.clone()]);
    let id = rid(&att);
    assert_eq!(la.state().pending_for(&alice.id()).len(), 1);
    la.author(&alice.dev(0), confirm(id), T0 + 400)
        .expect("alice confirms");
    assert_eq!(la.state().members[&bob.id()].time.balance, Minutes(180));
    assert_eq!(la.state().members[&alice.id()].time.balance, Minutes(-180));
    assert!(la.state().pending_for(&alice.id()).is_empty());

    // Bob cannot confirm his own attestation: the author refuses and writes nothing.
    let before = lb.len();
    let r = lb
        .author(&bob.dev(0), confirm(id), T0 + 500)
        .expect_err("self-confirm");
    assert_eq!(r.reason, RejectReason::NotAllowed);
    assert_eq!(lb.len(), before);

    sync(&mut la, &mut lb);
    assert_converged(&mut la, &mut lb);
}

#[test]
fn the_fair_exchange_window_trails_the_given_now() {
    let mut town = Town::found(Params::default(), &["alice", "bob"]);
    let bob = town.id("bob");
    let a = town.write("alice", attest_on(bob, 120, "painting", "2026-11-01"));
    town.write("bob", confirm(a));
    let noon = |d: &str| day(d).0 as i64 * 86_400 + 43_200;
    let state = town.ledger.state().clone();
    let at = |d: &str| state.balance(&bob, noon(d)).expect("a member");

    // Before the day of service, nothing is in the window yet; the balance is all-time.
    let before = at("2026-10-31");
    assert_eq!(
        (before.minutes, before.window_received),
        (Minutes(-120), Minutes(0))
    );
    assert!(!before.warning);
    // On the day and for 181 days after, bob has received without providing: warned.
    for d in ["2026-11-01", "2027-01-01", "2027-05-01"] {
        let b = at(d);
        assert_eq!(
            (b.window_received, b.window_provided),
            (Minutes(120), Minutes(0)),
            "{d}"
        );
        assert_eq!(b.ratio_percent, None);
        assert!(b.warning, "{d}");
    }
    // 182 days on, it has left the window.
    let after = at("2027-05-02");
    assert_eq!(after.window_received, Minutes(0));
    assert!(!after.warning);
    assert_eq!(after.window_days, 182);
    assert_eq!(state.balance(&MemberId([0; 32]), noon("2027-01-01")), None);
}

#[test]
fn members_and_records_resolve_by_name_or_id_prefix() {
    let mut town = Town::found(Params::default(), &["alice", "bob"]);
    let bob = town.id("bob");
    let a = town.write("alice", attest(bob, 30, "a lift to the station"));
    let state = town.ledger.state().clone();
    assert_eq!(state.find_member("bob"), Ok(bob));
    assert_eq!(state.find_member(&bob.to_hex()[..8]), Ok(bob));
    assert!(state.find_member("nobody").is_err());
    assert_eq!(state.find_record(&a.to_hex()[..10]), Ok(a));
    assert!(state.find_record("zz").is_err());
}
