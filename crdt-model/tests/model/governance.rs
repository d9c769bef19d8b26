//! Governance (docs/RULES.md R6): decisions, one member one vote within a window, tallies, and what a
//! passed decision does — parameters, roles, removal — at the tally's place in the order.

use coop_model::record;
use expect_test::expect;

use coop_model::record::{Choice, DecisionAction, Role};
use coop_model::state::DecisionStatus;
use coop_model::*;

use super::script::check;
use super::support::*;

#[test]
fn a_passed_parameter_change_applies_from_the_tally_on() {
    // sp_max_per_proposal 10 → 20: 15 SP on one proposal are refused before the tally and
    // allowed after it; the history shows the change and the decision.
    check(
        r#"
        community alice bob carol
        p1 = alice: propose "Garden"
        bob!: allocate p1 15
        d1 = alice: decide param sp_max_per_proposal=20
        alice: vote d1 yes
        bob: vote d1 yes
        carol: vote d1 no
        bob!: allocate p1 15
        wait 1d
        carol: tally d1
        bob: allocate p1 15
        "#,
        expect![[r#"
            members
              alice admitted: time +0 (+0 -0), sp 100/100
              bob admitted: time +0 (+0 -0), sp 85/100
              carol admitted: time +0 (+0 -0), sp 100/100
            proposals
              p1: "Garden" by alice open, 15 SP active (peak 15) from 1 supporters
            decisions
              d1: "param sp_max_per_proposal=20" by alice passed (yes 2 no 1 abstain 0 of 3 eligible)
            parameter changes
              sp_max_per_proposal=20 by d1
            refused
              bob!: allocate p1 15 => over_proposal_cap: 15 SP on one proposal, cap is 10
              bob!: allocate p1 15 => over_proposal_cap: 15 SP on one proposal, cap is 10
            counted 12 refused 2
        "#]],
    );
}

#[test]
fn quorum_counts_abstentions_and_approval_is_strictly_more_than_the_threshold() {
    // Ten members, quorum 30 %: two votes are too few; three (one abstaining) reach it.
    // Approval 50 %: one yes against one no is not more than half.
    check(
        r#"
        community a b c d e f g h i j
        d1 = a: decide general "Two votes"
        a: vote d1 yes
        b: vote d1 yes
        d2 = a: decide general "A tie"
        a: vote d2 yes
        b: vote d2 no
        c: vote d2 abstain
        d3 = a: decide general "Carried"
        a: vote d3 yes
        b: vote d3 yes
        c: vote d3 abstain
        d: vote d3 no
        wait 2d
        j: tally d1
        j: tally d2
        j: tally d3
        "#,
        expect![[r#"
            members
              a admitted: time +0 (+0 -0), sp 100/100
              b admitted: time +0 (+0 -0), sp 100/100
              c admitted: time +0 (+0 -0), sp 100/100
              d admitted: time +0 (+0 -0), sp 100/100
              e admitted: time +0 (+0 -0), sp 100/100
              f admitted: time +0 (+0 -0), sp 100/100
              g admitted: time +0 (+0 -0), sp 100/100
              h admitted: time +0 (+0 -0), sp 100/100
              i admitted: time +0 (+0 -0), sp 100/100
              j admitted: time +0 (+0 -0), sp 100/100
            decisions
              d1: "general Two votes" by a no_quorum (yes 2 no 0 abstain 0 of 10 eligible)
              d2: "general A tie" by a rejected (yes 1 no 1 abstain 1 of 10 eligible)
              d3: "general Carried" by a passed (yes 2 no 1 abstain 1 of 10 eligible)
            counted 34 refused 0
        "#]],
    );
}

#[test]
fn votes_outside_the_window_twice_or_before_a_tally_are_refused() {
    check(
        r#"
        community alice bob carol
        d1 = alice: decide general "Bike shed colour"
        alice: vote d1 yes
        alice: vote d1 no
        alice!: vote d1 no
        carol: tally d1
        carol!: tally d1
        wait 2d
        bob!: vote d1 yes
        bob: tally d1
        carol: tally d1
        carol!: tally d1
        "#,
        expect![[r#"
            members
              alice admitted: time +0 (+0 -0), sp 100/100
              bob admitted: time +0 (+0 -0), sp 100/100
              carol admitted: time +0 (+0 -0), sp 100/100
            decisions
              d1: "general Bike shed colour" by alice passed (yes 1 no 0 abstain 0 of 3 eligible)
            refused
              alice!: vote d1 no => already_voted: one member, one vote
              carol!: tally d1 => window_open: the voting window is open until 2026-09-22 14:17:20 UTC
              bob!: vote d1 yes => window_closed: cast after the voting window closed
              carol!: tally d1 => already_settled: the decision is already passed
              alice: vote d1 no => already_voted: one member, one vote (not written)
              carol: tally d1 => window_open: the voting window is open until 2026-09-22 14:17:20 UTC (not written)
              carol: tally d1 => already_settled: the decision is already passed (not written)
            counted 8 refused 4
        "#]],
    );
}

#[test]
fn roles_are_granted_and_revoked_by_decision() {
    // Bob becomes a moderator and hides a record; once revoked he can no longer hide.
    check(
        r#"
        community alice bob carol
        p1 = carol: propose "Spam spam spam"
        bob!: hide p1 "spam"
        d1 = alice: decide grant bob moderator
        alice: vote d1 yes
        wait 1d
        alice: tally d1
        bob: hide p1 "spam"
        d2 = alice: decide revoke bob moderator
        carol: vote d2 yes
        wait 1d
        carol: tally d2
        p2 = carol: propose "More spam"
        bob!: hide p2 "spam"
        "#,
        expect![[r#"
            members
              alice admitted: time +0 (+0 -0), sp 100/100
              bob admitted: time +0 (+0 -0), sp 100/100
              carol admitted: time +0 (+0 -0), sp 100/100
            proposals
              p1: "Spam spam spam" by carol open, 0 SP active (peak 0) from 0 supporters
              p2: "More spam" by carol open, 0 SP active (peak 0) from 0 supporters
            decisions
              d1: "grant bob moderator" by alice passed (yes 1 no 0 abstain 0 of 3 eligible)
              d2: "revoke bob moderator" by alice passed (yes 1 no 0 abstain 0 of 3 eligible)
            refused
              bob!: hide p1 "spam" => not_allowed: only moderators hide records
              bob!: hide p2 "spam" => not_allowed: only moderators hide records
            counted 14 refused 2
        "#]],
    );
}

#[test]
fn decisions_that_could_not_take_effect_are_refused_when_opened() {
    check(
        r#"
        community alice bob
        join erin
        alice!: decide param sp_budget=lots
        alice!: decide param no_such_thing=1
        alice!: decide grant erin steward
        alice!: decide revoke bob treasurer
        alice!: decide grant alice moderator
        alice!: decide remove erin
        "#,
        expect![[r#"
            members
              alice admitted: time +0 (+0 -0), sp 100/100
              bob admitted: time +0 (+0 -0), sp 100/100
              erin pending: time +0 (+0 -0), sp 0/0
            refused
              alice!: decide param sp_budget=lots => invalid_decision: invalid value "lots" for sp_budget: expected an integer
              alice!: decide param no_such_thing=1 => invalid_decision: unknown parameter "no_such_thing"
              alice!: decide grant erin steward => invalid_decision: erin is not an admitted member
              alice!: decide revoke bob treasurer => invalid_decision: bob is not a treasurer
              alice!: decide grant alice moderator => invalid_decision: alice is already a moderator
              alice!: decide remove erin => invalid_decision: erin is not an admitted member
            counted 4 refused 6
        "#]],
    );
}

#[test]
fn a_smaller_sp_budget_leaves_allocations_locked_and_refuses_new_ones() {
    check(
        r#"
        community alice bob
        p1 = alice: propose "Garden"
        p2 = alice: propose "Library"
        bob: allocate p1 10
        bob: allocate p2 10
        d1 = alice: decide param sp_budget=15
        alice: vote d1 yes
        wait 1d
        alice: tally d1
        p3 = alice: propose "Bakery"
        bob!: allocate p3 1
        bob: close p1 delivered
        alice: close p1 delivered
        bob: allocate p3 5
        "#,
        expect![[r#"
            members
              alice admitted: time +0 (+0 -0), sp 15/15
              bob admitted: time +0 (+0 -0), sp 0/15
            proposals
              p1: "Garden" by alice closed delivered, 0 SP active (peak 10) from 1 supporters
              p2: "Library" by alice open, 10 SP active (peak 10) from 1 supporters
              p3: "Bakery" by alice open, 5 SP active (peak 5) from 1 supporters
            decisions
              d1: "param sp_budget=15" by alice passed (yes 1 no 0 abstain 0 of 2 eligible)
            parameter changes
              sp_budget=15 by d1
            refused
              bob!: allocate p3 1 => over_budget: 21 SP allocated, budget is 15
              bob: close p1 delivered => not_allowed: only the proposer closes a proposal (not written)
            counted 13 refused 1
        "#]],
    );
}

#[test]
fn raising_admission_vouches_does_not_unadmit_anyone() {
    check(
        r#"
        community alice bob carol
        d1 = alice: decide param admission_vouches=3
        alice: vote d1 yes
        wait 1d
        alice: tally d1
        p1 = bob: propose "Still here"
        join erin
        alice: vouch erin
        bob: vouch erin
        erin!: propose "Too early"
        carol: vouch erin
        erin: propose "Now admitted"
        "#,
        expect![[r#"
            members
              alice admitted: time +0 (+0 -0), sp 100/100
              bob admitted: time +0 (+0 -0), sp 100/100
              carol admitted: time +0 (+0 -0), sp 100/100
              erin admitted: time +0 (+0 -0), sp 100/100
            proposals
              p1: "Still here" by bob open, 0 SP active (peak 0) from 0 supporters
              d232723ef216: "Now admitted" by erin open, 0 SP active (peak 0) from 0 supporters
            decisions
              d1: "param admission_vouches=3" by alice passed (yes 1 no 0 abstain 0 of 3 eligible)
            parameter changes
              admission_vouches=3 by d1
            refused
              erin!: propose "Too early" => not_a_member: member erin is not admitted in this record's past
            counted 14 refused 1
        "#]],
    );
}

#[test]
fn a_tally_counts_only_the_votes_in_its_causal_past() {
    // Bob votes offline before the window closes; alice tallies without having seen it.
    // On every replica bob's vote is refused `window_closed` and the outcome is the same.
    let mut town = Town::found(Params::default(), &["alice", "bob", "carol"]);
    let closes = town.now() + 3_600;
    let d = town.write(
        "alice",
        decision("Repaint", closes, DecisionAction::General),
    );
    town.write("carol", vote(d, Choice::No));
    let mut offline = town.replica();
    let late = offline
        .author(&town.dev("bob", 0), vote(d, Choice::Yes), closes - 60)
        .expect("bob votes inside the window on his replica");
    town.advance(3_600);
    let t = town.write("alice", tally(d));
    sync(&mut town.ledger, &mut offline);
    assert_converged(&mut town.ledger, &mut offline);
    for ledger in [&mut town.ledger, &mut offline] {
        assert_eq!(
            status(ledger, &rid(&late)),
            Err(RejectReason::WindowClosed),
            "the vote the tally did not see"
        );
        let state = ledger.state().clone();
        let dec = &state.decisions[&d];
        assert_eq!(dec.status, DecisionStatus::Rejected);
        let result = dec.tally.as_ref().expect("tallied");
        assert_eq!((result.yes, result.no, result.id), (0, 1, t));
        assert_eq!(state, ledger.derive_from_scratch());
    }
}

#[test]
fn removal_by_decision_is_strong_and_replaces_the_founders_removal() {
    // Carol, offline, keeps writing on an old head after the community removed her: those
    // records sort before the tally, and still stop counting on every replica.
    let mut town = Town::found(Params::default(), &["alice", "bob", "carol"]);
    let carol = town.id("carol");
    let p = town.write("alice", proposal("Benches"));
    let mut offline = town.replica();
    let x = offline
        .author(&town.dev("carol", 0), allocate(p, 7), town.now() + 10)
        .expect("carol is a member on her replica");
    let (d, t) = town.decide(
        "alice",
        DecisionAction::Removal { member: carol },
        &["alice", "bob"],
    );
    sync(&mut town.ledger, &mut offline);
    assert_converged(&mut town.ledger, &mut offline);
    let state = town.ledger.state().clone();
    assert_eq!(state.decisions[&d].status, DecisionStatus::Passed);
    assert_eq!(state.members[&carol].status, state::MemberStatus::Removed);
    assert!(log_entry(&state, &rid(&x)).position < log_entry(&state, &t).position);
    assert_eq!(
        status(&mut town.ledger, &rid(&x)),
        Err(RejectReason::RemovedMember)
    );
    assert_eq!(state.proposals[&p].active_points, Points(0));
    // A removed member cannot vote, open decisions or tally.
    let r = town
        .try_write(
            "carol",
            decision("Reinstate me", town.now() + 60, DecisionAction::General),
        )
        .expect_err("removed");
    assert_eq!(r.reason, RejectReason::RemovedMember);
    let _ = Role::Steward;
}

#[test]
fn a_role_revoked_concurrently_with_its_use_decides_the_same_everywhere() {
    // Bob is a moderator. On one side the community revokes it (the tally closes the vote);
    // on the other, offline, bob hides a record. Whether the hide counts depends only on its
    // place in the total order against the tally: every replica, whatever the delivery
    // order, agrees — and the moderation is refused exactly when it sorts after the tally.
    let mut town = Town::found(Params::default(), &["alice", "bob", "carol"]);
    let bob = town.id("bob");
    town.decide(
        "alice",
        DecisionAction::RoleGrant {
            member: bob,
            role: Role::Moderator,
        },
        &["alice"],
    );
    let spam = town.write("carol", proposal("Spam"));
    let base = town.replica();
    let mut right = town.replica();
    let (d, t) = town.decide(
        "alice",
        DecisionAction::RoleRevoke {
            member: bob,
            role: Role::Moderator,
        },
        &["alice", "carol"],
    );
    let hide = right
        .author(
            &town.dev("bob", 0),
            Record::Hide(record::Hide {
                record: spam,
                reason: "spam".into(),
            }),
            town.now() + 120,
        )
        .expect("bob is a moderator on his replica");
    let l = super::concurrency::written_since(&base, &town.ledger);
    let r = super::concurrency::written_since(&base, &right);
    let mut replicas = super::concurrency::every_order(&base, &l, &r);
    let first = replicas[0].state().clone();
    let hide_pos = log_entry(&first, &rid(&hide)).position;
    let tally_pos = log_entry(&first, &t).position;
    let expected = if hide_pos > tally_pos {
        Err(RejectReason::NotAllowed)
    } else {
        Ok(())
    };
    assert_eq!(first.decisions[&d].status, DecisionStatus::Passed);
    for replica in &mut replicas {
        assert_eq!(status(replica, &rid(&hide)), expected);
        assert_eq!(
            replica
                .state()
                .canonical_json()
                .expect("the state serializes"),
            first.canonical_json().expect("the state serializes")
        );
        assert!(!replica.state().members[&bob]
            .roles
            .contains(&Role::Moderator));
    }
}
