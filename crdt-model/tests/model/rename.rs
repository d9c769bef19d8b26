//! A member's change of display name (docs/RULES.md R1, `rename`): validated names, only
//! the author renamed, and concurrent renames resolved the same way on every replica
//! whatever order the changes arrive in.

use coop_model::record::{self, check_name};
use coop_model::*;

use super::concurrency::{every_order, same_refusal_everywhere, written_since};
use super::script::check;
use super::support::*;

fn rename(name: &str) -> Record {
    Record::Rename(record::Rename {
        display_name: name.to_string(),
    })
}

#[test]
fn a_member_renames_themself_and_every_view_follows() {
    check(
        r#"
        community alice bob carol
        a1 = bob: attest alice 60 "gardening"
        bob: rename "Robert"
        carol: rename "Robert"
        carol: rename "ROBERT"
        bob: rename "Robert"
        carol!: rename "robert"
        alice: rename "Al"
        alice: rename "Alice again"
        "#,
        expect_test::expect![[r#"
            members
              Alice again admitted: time +0 (+0 -0), sp 100/100
              Robert admitted: time +0 (+0 -0), sp 100/100
              carol admitted: time +0 (+0 -0), sp 100/100
            attestations
              a1: bob -> alice 60 min "gardening" 2026-11-01 pending
            refused
              carol!: rename "robert" => not_allowed: another member is already called "robert"
              carol: rename "Robert" => not_allowed: another member is already called "Robert" (not written)
              carol: rename "ROBERT" => not_allowed: another member is already called "ROBERT" (not written)
              bob: rename "Robert" => redundant: already called "Robert" (not written)
            counted 9 refused 1
        "#]],
    );
}

#[test]
fn names_are_one_short_line() {
    assert_eq!(check_name("Bob"), Ok(()));
    assert_eq!(check_name("Zoë Ångström-Ødegård"), Ok(()));
    assert!(check_name("").is_err());
    assert!(check_name(" Bob").is_err());
    assert!(check_name("Bob ").is_err());
    assert!(check_name("Bob\nAdmin").is_err());
    assert!(check_name("Bob\u{7}").is_err());
    assert!(check_name(&"x".repeat(64)).is_ok());
    assert!(check_name(&"x".repeat(65)).is_err());

    // A bad name never reaches the ledger: the gate refuses it as an invalid record, and
    // the state is unchanged.
    let mut town = Town::found(Params::default(), &["alice", "bob"]);
    for bad in ["", "Bob\nAdmin", " Bob", &"y".repeat(65)] {
        let before = town.ledger.state().canonical_json().expect("serializes");
        let env = town.forged("bob", 0, &rename(bad));
        let out = town.ledger.ingest([env]);
        assert!(out.accepted.is_empty(), "{bad:?} accepted");
        assert_eq!(out.rejected.len(), 1);
        assert_eq!(
            out.rejected[0].reason,
            RejectReason::InvalidRecord,
            "{bad:?}"
        );
        assert_eq!(
            town.ledger.state().canonical_json().expect("serializes"),
            before
        );
    }
    // The author's dry run refuses the same before anything is signed.
    assert!(town.try_write("bob", rename("Bob\nAdmin")).is_err());
    let bob = town.id("bob");
    assert_eq!(town.ledger.state().members[&bob].display_name, "bob");
}

#[test]
fn concurrent_renames_of_one_member_end_on_the_same_name_everywhere() {
    // Bob renames himself on his laptop and on his phone, offline. Both count; the one later
    // in the total order is in force, on every replica and in every delivery order.
    let mut town = Town::found(Params::default(), &["alice", "bob"]);
    town.add_device("bob", 1);
    let base = town.replica();
    let (mut laptop, mut phone) = (town.replica(), town.replica());
    let x = rid(&laptop
        .author(&town.dev("bob", 0), rename("Bobby"), T0 + 10_000)
        .expect("a new name"));
    let y = rid(&phone
        .author(&town.dev("bob", 1), rename("Robert"), T0 + 10_000)
        .expect("a new name"));
    let (l, r) = (written_since(&base, &laptop), written_since(&base, &phone));
    let mut replicas = every_order(&base, &l, &r);
    sync(&mut laptop, &mut phone);
    replicas.push(laptop);
    replicas.push(phone);

    let bob = town.id("bob");
    let first = replicas[0].state().clone();
    let pos = |id: &RecordId| log_entry(&first, id).position;
    let later = if pos(&x) > pos(&y) { "Bobby" } else { "Robert" };
    for rep in &mut replicas {
        assert_eq!(status(rep, &x), Ok(()));
        assert_eq!(status(rep, &y), Ok(()));
        assert_eq!(rep.state().members[&bob].display_name, later);
    }
    let (head, rest) = replicas.split_at_mut(1);
    for rep in rest {
        assert_converged(&mut head[0], rep);
    }
}

#[test]
fn two_members_taking_the_same_name_concurrently_refuse_the_same_one() {
    // Alice and Bob both rename themselves "Sam" offline: once merged, the one later in the
    // total order is refused `not_allowed` on every replica, and only one member is "Sam".
    let town = Town::found(Params::default(), &["alice", "bob"]);
    let base = town.replica();
    let (mut one, mut two) = (town.replica(), town.replica());
    let x = rid(&one
        .author(&town.dev("alice", 0), rename("Sam"), T0 + 10_000)
        .expect("free on this side"));
    let y = rid(&two
        .author(&town.dev("bob", 0), rename("Sam"), T0 + 10_000)
        .expect("free on this side"));
    let (l, r) = (written_since(&base, &one), written_since(&base, &two));
    let mut replicas = every_order(&base, &l, &r);
    sync(&mut one, &mut two);
    replicas.push(one);
    replicas.push(two);
    let refused = same_refusal_everywhere(&mut replicas, x, y, RejectReason::NotAllowed);

    let state = replicas[0].state();
    let sams = state
        .members
        .values()
        .filter(|m| m.display_name == "Sam")
        .count();
    assert_eq!(sams, 1);
    let loser = if refused == x { "alice" } else { "bob" };
    assert_eq!(state.members[&town.id(loser)].display_name, loser);
}
