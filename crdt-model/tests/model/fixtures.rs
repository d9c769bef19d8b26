//! Fixture-driven derivation tests: signed operations in, derived state out, as text.
//! Run with `UPDATE_EXPECT=1` to rewrite the expectations after a deliberate change, and
//! read the diff: every line is a claim about the rules.

use expect_test::expect;

use super::script::{check, run};

// --- the seed's worked examples

#[test]
fn bob_provides_three_hours_and_receives_two() {
    // Bob provides 3 h of car repair: +3 h. He receives 2 h of tutoring: balance 1 h.
    check(
        r#"
        community alice bob carol
        a1 = bob: attest alice 180 "car repair"
        alice: confirm a1
        a2 = carol: attest bob 120 "maths tutoring"
        bob: confirm a2
        "#,
        expect![[r#"
            members
              alice admitted: time -180 (+0 -180), sp 100/100
              bob admitted: time +60 (+180 -120), sp 100/100
              carol admitted: time +120 (+120 -0), sp 100/100
            attestations
              a1: bob -> alice 180 min "car repair" 2026-11-01 confirmed
              a2: carol -> bob 120 min "maths tutoring" 2026-11-01 confirmed
            counted 9 refused 0
        "#]],
    );
}

#[test]
fn support_points_worked_example() {
    // 100 SP, allocate 10 + 5 + 8 to three proposals: 77 available. An 11th point on the
    // first proposal is refused, whether the author's dry run or derivation decides.
    check(
        r#"
        community alice bob
        p1 = bob: propose "Community garden"
        p2 = bob: propose "Tool library"
        p3 = bob: propose "Repair cafe"
        alice: allocate p1 10
        alice: allocate p2 5
        alice: allocate p3 8
        alice: allocate p1 1
        alice!: allocate p1 1
        "#,
        expect![[r#"
            members
              alice admitted: time +0 (+0 -0), sp 77/100
              bob admitted: time +0 (+0 -0), sp 100/100
            proposals
              p1: "Community garden" by bob open, 10 SP active (peak 10) from 1 supporters
              p2: "Tool library" by bob open, 5 SP active (peak 5) from 1 supporters
              p3: "Repair cafe" by bob open, 8 SP active (peak 8) from 1 supporters
            refused
              alice!: allocate p1 1 => over_proposal_cap: 11 SP on one proposal, cap is 10
              alice: allocate p1 1 => over_proposal_cap: 11 SP on one proposal, cap is 10 (not written)
            counted 9 refused 1
        "#]],
    );
}

#[test]
fn a_proposal_reaching_150_sp_from_15_members_is_prioritized() {
    // Fifteen members give 10 SP each to the garden (150, prioritized); fourteen of them also
    // give 10 SP to the bench (140, not prioritized).
    let names: Vec<String> = (1..=15).map(|i| format!("m{i:02}")).collect();
    let mut script = format!(
        "community alice {}\np1 = alice: propose \"Community garden\"\np2 = alice: propose \"Bench\"\n",
        names.join(" ")
    );
    for n in &names {
        script.push_str(&format!("{n}: allocate p1 10\n"));
    }
    for n in &names[1..] {
        script.push_str(&format!("{n}: allocate p2 10\n"));
    }
    let out = run(&script);
    let proposals: String = out
        .lines()
        .skip_while(|l| *l != "proposals")
        .take(3)
        .collect::<Vec<_>>()
        .join("\n");
    expect![[r#"
        proposals
          p1: "Community garden" by alice open, 150 SP active (peak 150) from 15 supporters, prioritized
          p2: "Bench" by alice open, 140 SP active (peak 140) from 14 supporters"#]]
    .assert_eq(&proposals);
}

#[test]
fn taking_two_and_a_half_times_what_you_give_warns_and_twice_does_not() {
    // Over the trailing 182 days: carol receives 150 min for 60 given (250 %): warned.
    // dave receives 120 for 60 (200 %, not more than 2:1): not warned. erin only receives:
    // warned. Old exchanges outside the window do not count towards the index.
    check(
        r#"
        community alice bob carol dave erin
        now 2026-12-01
        a1 = carol: attest alice 60 "gardening" 2026-11-01
        alice: confirm a1
        a2 = bob: attest carol 150 "plumbing" 2026-11-02
        carol: confirm a2
        a3 = dave: attest alice 60 "gardening" 2026-11-03
        alice: confirm a3
        a4 = bob: attest dave 120 "tutoring" 2026-11-04
        dave: confirm a4
        a5 = bob: attest erin 30 "dog walking" 2026-11-05
        erin: confirm a5
        a6 = alice: attest bob 600 "roofing" 2026-01-10
        bob: confirm a6
        "#,
        expect![[r#"
            members
              alice admitted: time +480 (+600 -120), sp 100/100
              bob admitted: time -300 (+300 -600), sp 100/100
              carol admitted: time -90 (+60 -150), sp 100/100
              dave admitted: time -60 (+60 -120), sp 100/100
              erin admitted: time -30 (+0 -30), sp 100/100
            attestations
              a1: carol -> alice 60 min "gardening" 2026-11-01 confirmed
              a2: bob -> carol 150 min "plumbing" 2026-11-02 confirmed
              a3: dave -> alice 60 min "gardening" 2026-11-03 confirmed
              a4: bob -> dave 120 min "tutoring" 2026-11-04 confirmed
              a5: bob -> erin 30 min "dog walking" 2026-11-05 confirmed
              a6: alice -> bob 600 min "roofing" 2026-01-10 confirmed
            fairness on 2026-12-01 over 182 days
              alice: provided 0 received 120 ratio - WARNING
              bob: provided 300 received 0 ratio 0%
              carol: provided 60 received 150 ratio 250% WARNING
              dave: provided 60 received 120 ratio 200%
              erin: provided 0 received 30 ratio - WARNING
            counted 21 refused 0
        "#]],
    );
}

// --- time bank

#[test]
fn a_declined_attestation_counts_for_nothing_and_stays_declined() {
    check(
        r#"
        community alice bob
        a1 = bob: attest alice 90 "window cleaning"
        alice: decline a1
        alice: confirm a1
        alice!: confirm a1
        "#,
        expect![[r#"
            members
              alice admitted: time +0 (+0 -0), sp 100/100
              bob admitted: time +0 (+0 -0), sp 100/100
            attestations
              a1: bob -> alice 90 min "window cleaning" 2026-11-01 declined
            refused
              alice!: confirm a1 => already_settled: attestation already settled
              alice: confirm a1 => already_settled: attestation already settled (not written)
            counted 5 refused 1
        "#]],
    );
}

#[test]
fn confirmations_stop_at_the_floor() {
    // The floor is -600 min: reaching it exactly is allowed, going one minute under is not.
    check(
        r#"
        community alice bob
        a1 = alice: attest bob 600 "moving house"
        bob: confirm a1
        a2 = alice: attest bob 1 "a quick favour"
        bob: confirm a2
        bob!: confirm a2
        a3 = bob: attest alice 30 "coffee and help"
        alice: confirm a3
        bob: confirm a2
        "#,
        expect![[r#"
            members
              alice admitted: time +571 (+601 -30), sp 100/100
              bob admitted: time -571 (+30 -601), sp 100/100
            attestations
              a1: alice -> bob 600 min "moving house" 2026-11-01 confirmed
              a2: alice -> bob 1 min "a quick favour" 2026-11-01 confirmed
              a3: bob -> alice 30 min "coffee and help" 2026-11-01 confirmed
            refused
              bob!: confirm a2 => below_floor: balance would be -601 min, floor is -600 min
              bob: confirm a2 => below_floor: balance would be -601 min, floor is -600 min (not written)
            counted 9 refused 1
        "#]],
    );
}

#[test]
fn only_the_receiver_settles_an_attestation() {
    check(
        r#"
        community alice bob carol
        a1 = bob: attest alice 60 "bike repair"
        bob: confirm a1
        bob!: confirm a1
        carol!: confirm a1
        carol!: decline a1
        bob!: attest bob 60 "self care"
        "#,
        expect![[r#"
            members
              alice admitted: time +0 (+0 -0), sp 100/100
              bob admitted: time +0 (+0 -0), sp 100/100
              carol admitted: time +0 (+0 -0), sp 100/100
            attestations
              a1: bob -> alice 60 min "bike repair" 2026-11-01 pending
            refused
              bob!: confirm a1 => not_allowed: cannot confirm or decline your own attestation
              carol!: confirm a1 => not_allowed: only the receiver confirms or declines
              carol!: decline a1 => not_allowed: only the receiver confirms or declines
              bob!: attest bob 60 "self care" => not_allowed: cannot attest hours to yourself
              bob: confirm a1 => not_allowed: cannot confirm or decline your own attestation (not written)
            counted 6 refused 4
        "#]],
    );
}

// --- support points

#[test]
fn sp_stay_locked_until_the_proposal_closes_then_return() {
    check(
        r#"
        community alice bob
        p1 = alice: propose "Street party"
        p2 = alice: propose "Bench"
        bob: allocate p1 10
        bob: allocate p2 4
        bob!: close p1 delivered
        alice: close p1 delivered
        bob!: allocate p1 1
        alice!: close p1 cancelled
        "#,
        expect![[r#"
            members
              alice admitted: time +0 (+0 -0), sp 100/100
              bob admitted: time +0 (+0 -0), sp 96/100
            proposals
              p1: "Street party" by alice closed delivered, 0 SP active (peak 10) from 1 supporters
              p2: "Bench" by alice open, 4 SP active (peak 4) from 1 supporters
            refused
              bob!: close p1 delivered => not_allowed: only the proposer closes a proposal
              bob!: allocate p1 1 => proposal_closed: proposal is closed
              alice!: close p1 cancelled => already_settled: proposal already closed
            counted 8 refused 3
        "#]],
    );
}

#[test]
fn allocations_never_exceed_the_budget() {
    check(
        r#"
        param sp_max_per_proposal=60
        community alice bob
        p1 = alice: propose "Solar panels"
        p2 = alice: propose "Heat pump"
        bob: allocate p1 60
        bob: allocate p2 41
        bob!: allocate p2 41
        bob: allocate p2 40
        alice: close p1 rejected
        bob: allocate p2 20
        "#,
        expect![[r#"
            members
              alice admitted: time +0 (+0 -0), sp 100/100
              bob admitted: time +0 (+0 -0), sp 40/100
            proposals
              p1: "Solar panels" by alice closed rejected, 0 SP active (peak 60) from 1 supporters
              p2: "Heat pump" by alice open, 60 SP active (peak 60) from 1 supporters
            refused
              bob!: allocate p2 41 => over_budget: 101 SP allocated, budget is 100
              bob: allocate p2 41 => over_budget: 101 SP allocated, budget is 100 (not written)
            counted 9 refused 1
        "#]],
    );
}

// --- mutual aid

#[test]
fn mutual_aid_from_request_to_completion() {
    check(
        r#"
        community alice bob carol dave
        r1 = bob: request skill "Fix my bike"
        o1 = carol: offer r1 "I can fix it on Saturday"
        o2 = dave: offer r1 "Sunday afternoon works for me"
        bob!: offer r1 "Offering help to myself"
        bob: accept o1
        dave!: offer r1 "One more offer, too late"
        dave!: done r1 5
        bob: done r1 5 "Rides like new"
        carol: done r1 4
        bob!: done r1 5
        bob!: cancel r1
        "#,
        expect![[r#"
            members
              alice admitted: time +0 (+0 -0), sp 100/100
              bob admitted: time +0 (+0 -0), sp 100/100, aid given 0 received 1 ratings [4]
              carol admitted: time +0 (+0 -0), sp 100/100, aid given 1 received 0 ratings [5]
              dave admitted: time +0 (+0 -0), sp 100/100
            aid
              r1: "Fix my bike" (skill) by bob completed, offers [o1 o2], accepted o1 from carol, requester done rating 5 "Rides like new", helper done rating 4
            refused
              bob!: offer r1 "Offering help to myself" => not_allowed: cannot offer help on your own request
              dave!: offer r1 "One more offer, too late" => already_settled: request is matched
              dave!: done r1 5 => not_allowed: only the requester and the helper confirm
              bob!: done r1 5 => already_settled: request is completed
              bob!: cancel r1 => already_settled: request is completed
            counted 13 refused 5
        "#]],
    );
}

#[test]
fn requests_can_be_cancelled_while_open_or_matched_and_never_complete() {
    check(
        r#"
        community alice bob carol
        r1 = bob: request material "Ladder for a day"
        carol!: cancel r1
        bob: cancel r1
        o1 = carol!: offer r1 "I have a ladder you can borrow"
        r2 = bob: request space "Room for a meeting"
        o2 = carol: offer r2 "My living room on Tuesday evening"
        bob: accept o2
        bob: done r2
        bob: cancel r2
        carol!: done r2 5
        r3 = bob!: request dancing "Salsa partner please"
        "#,
        expect![[r#"
            members
              alice admitted: time +0 (+0 -0), sp 100/100
              bob admitted: time +0 (+0 -0), sp 100/100
              carol admitted: time +0 (+0 -0), sp 100/100
            aid
              r1: "Ladder for a day" (material) by bob cancelled, offers []
              r2: "Room for a meeting" (space) by bob cancelled, offers [o2], accepted o2 from carol, requester done
            refused
              carol!: cancel r1 => not_allowed: only the requester cancels
              o1 = carol!: offer r1 "I have a ladder you can borrow" => already_settled: request is cancelled
              carol!: done r2 5 => already_settled: request is cancelled
              r3 = bob!: request dancing "Salsa partner please" => unknown_category: "dancing" is not one of material, time, skill, space
            counted 12 refused 4
        "#]],
    );
}

// --- membership

#[test]
fn newcomers_own_nothing_until_vouched_for() {
    // A join request grants nothing: no SP, no vouching, no allocation. One vouch (the
    // default `admission_vouches`) admits; a second vouch by the same member is redundant.
    check(
        r#"
        community alice bob
        join erin
        join frank
        p1 = alice: propose "Garden"
        erin!: allocate p1 5
        erin!: vouch frank
        erin: vouch erin
        bob: vouch erin
        bob!: vouch erin
        alice: vouch erin
        erin: allocate p1 5
        "#,
        expect![[r#"
            members
              alice admitted: time +0 (+0 -0), sp 100/100
              bob admitted: time +0 (+0 -0), sp 100/100
              erin admitted: time +0 (+0 -0), sp 95/100
              frank pending: time +0 (+0 -0), sp 0/0
            proposals
              p1: "Garden" by alice open, 5 SP active (peak 5) from 1 supporters
            refused
              bob!: vouch erin => redundant: already vouched
              erin!: allocate p1 5 => not_a_member: the author is not an admitted member in this change's causal past (refused by the gate)
              erin!: vouch frank => not_a_member: the author is not an admitted member in this change's causal past (refused by the gate)
              erin: vouch erin => not_a_member: member erin is not admitted in this record's past (not written)
            counted 9 refused 1
        "#]],
    );
}

#[test]
fn admission_waits_for_the_configured_number_of_vouches() {
    // With `admission_vouches=2` one vouch is not enough once two members can vouch.
    check(
        r#"
        param admission_vouches=2
        community alice bob
        join erin
        alice: vouch erin
        p1 = alice: propose "Garden"
        erin!: allocate p1 5
        bob: vouch erin
        erin: allocate p1 4
        "#,
        expect![[r#"
            members
              alice admitted: time +0 (+0 -0), sp 100/100
              bob admitted: time +0 (+0 -0), sp 100/100
              erin admitted: time +0 (+0 -0), sp 96/100
            proposals
              p1: "Garden" by alice open, 4 SP active (peak 4) from 1 supporters
            refused
              erin!: allocate p1 5 => not_a_member: member erin is not admitted in this record's past
            counted 8 refused 1
        "#]],
    );
}

#[test]
fn a_founder_alone_can_admit_the_first_members_whatever_admission_vouches_says() {
    // The threshold is `admission_vouches` or the number of admitted members, the smaller:
    // alice alone admits bob; bob and alice (two members) admit carol; erin needs three.
    check(
        r#"
        param admission_vouches=3
        community alice
        join bob
        alice: vouch bob
        join carol
        alice: vouch carol
        bob: vouch carol
        join erin
        alice: vouch erin
        bob: vouch erin
        "#,
        expect![[r#"
            members
              alice admitted: time +0 (+0 -0), sp 100/100
              bob admitted: time +0 (+0 -0), sp 100/100
              carol admitted: time +0 (+0 -0), sp 100/100
              erin pending: time +0 (+0 -0), sp 0/0
            counted 9 refused 0
        "#]],
    );
}

#[test]
fn removed_members_stop_counting() {
    check(
        r#"
        community alice bob carol
        a1 = bob: attest carol 60 "ironing"
        p1 = alice: propose "Garden"
        rm = alice: decide remove bob
        alice: vote rm yes
        carol: vote rm yes
        wait 2d
        t = alice: tally rm
        carol: confirm a1
        bob!: allocate p1 3
        bob: allocate p1 3
        bob!: attest carol 60 "more ironing"
        carol!: remove alice
        "#,
        expect![[r#"
            members
              alice admitted: time +0 (+0 -0), sp 100/100
              bob removed: time +60 (+60 -0), sp 100/100
              carol admitted: time -60 (+0 -60), sp 100/100
            attestations
              a1: bob -> carol 60 min "ironing" 2026-11-01 confirmed
            proposals
              p1: "Garden" by alice open, 0 SP active (peak 0) from 0 supporters
            decisions
              rm: "remove bob" by alice passed (yes 2 no 0 abstain 0 of 3 eligible)
            refused
              bob!: allocate p1 3 => removed_member: written outside the past of removal t
              bob!: attest carol 60 "more ironing" => removed_member: written outside the past of removal t
              carol!: remove alice => not_allowed: members are removed by decision (a removal decision that passes)
              bob: allocate p1 3 => removed_member: written outside the past of removal t (not written)
            counted 12 refused 3
        "#]],
    );
}
