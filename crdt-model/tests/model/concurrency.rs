//! Concurrent writes that only conflict once merged: every replica must refuse the same one,
//! whatever order the changes arrive in (docs/RULES.md R0: rules evaluated in the total order).

use coop_model::*;

use super::support::*;

/// Changes written on `replica` since it was a copy of `base`.
pub(crate) fn written_since(base: &Ledger, replica: &Ledger) -> Vec<Envelope> {
    replica.envelopes().skip(base.len()).collect()
}

/// Fresh replicas of `base` fed the concurrent changes of two sides in many orders: one
/// side first, the other first, reversed (children before parents), and shuffled with
/// duplicates, one envelope per ingest.
pub(crate) fn every_order(base: &Ledger, left: &[Envelope], right: &[Envelope]) -> Vec<Ledger> {
    let mut orders: Vec<Vec<Envelope>> = vec![
        [left, right].concat(),
        [right, left].concat(),
        [left, right].concat().into_iter().rev().collect(),
    ];
    let mut rng = Rng(7);
    for _ in 0..8 {
        let mut all = [left, right].concat();
        let extra = all[rng.below(all.len())].clone();
        all.push(extra);
        rng.shuffle(&mut all);
        orders.push(all);
    }
    orders
        .into_iter()
        .map(|order| {
            let mut l = replica_of(base);
            for env in order {
                let out = l.ingest([env]);
                assert!(out.rejected.is_empty(), "{:?}", out.rejected);
                let fresh = l.derive_from_scratch();
                assert_eq!(l.state(), &fresh);
            }
            assert_eq!(l.pending_len(), 0);
            l
        })
        .collect()
}

/// Asserts that exactly one of `x` and `y` counts on every replica, the same one everywhere,
/// the other refused for `reason`; returns the refused one.
pub(crate) fn same_refusal_everywhere(
    replicas: &mut [Ledger],
    x: RecordId,
    y: RecordId,
    reason: RejectReason,
) -> RecordId {
    let first = (status(&mut replicas[0], &x), status(&mut replicas[0], &y));
    let refused = match first {
        (Ok(()), Err(r)) if r == reason => y,
        (Err(r), Ok(())) if r == reason => x,
        other => panic!("expected one of the two refused {reason}, got {other:?}"),
    };
    let (head, rest) = replicas.split_at_mut(1);
    for r in rest {
        assert_eq!((status(r, &x), status(r, &y)), first);
        assert_converged(&mut head[0], r);
    }
    // The loser is the one later in the total order: the log lists it after the winner.
    let state = replicas[0].state();
    let pos = |id: &RecordId| log_entry(state, id).position;
    let winner = if refused == x { y } else { x };
    assert!(pos(&refused) > pos(&winner));
    refused
}

#[test]
fn one_member_allocating_from_two_devices_is_refused_over_budget_once() {
    // Budget 100; alice spends 60 from her laptop and 60 from her phone, offline. Per
    // proposal caps (60) do not interfere: the two allocations go to different proposals.
    let params = Params {
        sp_max_per_proposal: 60,
        ..Params::default()
    };
    let mut town = Town::found(params, &["alice", "bob"]);
    town.add_device("alice", 1);
    let p1 = town.write("bob", proposal("Solar panels"));
    let p2 = town.write("bob", proposal("Heat pump"));
    let base = town.replica();

    let (mut laptop, mut phone) = (town.replica(), town.replica());
    let x = laptop
        .author(&town.dev("alice", 0), allocate(p1, 60), T0 + 10_000)
        .map(|e| rid(&e))
        .expect("fits the budget on the laptop");
    let y = phone
        .author(&town.dev("alice", 1), allocate(p2, 60), T0 + 10_001)
        .map(|e| rid(&e))
        .expect("fits the budget on the phone");
    // Each side counted its own allocation before it heard of the other.
    assert_eq!(status(&mut laptop, &x), Ok(()));
    assert_eq!(status(&mut phone, &y), Ok(()));

    let (l, r) = (written_since(&base, &laptop), written_since(&base, &phone));
    let mut replicas = every_order(&base, &l, &r);
    sync(&mut laptop, &mut phone);
    replicas.push(laptop);
    replicas.push(phone);
    same_refusal_everywhere(&mut replicas, x, y, RejectReason::OverBudget);

    let alice = town.id("alice");
    let state = replicas[0].state();
    assert_eq!(state.members[&alice].sp.allocated, Points(60));
    assert_eq!(state.members[&alice].sp.available, Points(40));
}

#[test]
fn concurrent_confirmations_that_cross_the_floor_refuse_the_same_one() {
    // Bob (floor -600) confirms 400 min from carol on one device and 400 min from dave on
    // the other, concurrently: each alone is fine, both would reach -800.
    let mut town = Town::found(Params::default(), &["alice", "bob", "carol", "dave"]);
    town.add_device("bob", 1);
    let bob = town.id("bob");
    let a1 = town.write("carol", attest(bob, 400, "rewiring the kitchen"));
    let a2 = town.write("dave", attest(bob, 400, "rebuilding a wall"));
    let base = town.replica();

    let (mut one, mut two) = (town.replica(), town.replica());
    let x = rid(&one
        .author(&town.dev("bob", 0), confirm(a1), T0 + 10_000)
        .expect("-400 is above the floor"));
    let y = rid(&two
        .author(&town.dev("bob", 1), confirm(a2), T0 + 10_000)
        .expect("-400 is above the floor"));

    let (l, r) = (written_since(&base, &one), written_since(&base, &two));
    let mut replicas = every_order(&base, &l, &r);
    sync(&mut one, &mut two);
    replicas.push(one);
    replicas.push(two);
    let refused = same_refusal_everywhere(&mut replicas, x, y, RejectReason::BelowFloor);

    let state = replicas[0].state().clone();
    assert_eq!(state.members[&bob].time.balance, Minutes(-400));
    // The refused confirmation leaves its attestation pending, so bob may still decline it.
    let refused_att = if refused == x { a1 } else { a2 };
    assert_eq!(
        state.attestations[&refused_att].status,
        coop_model::state::AttestationStatus::Pending
    );
    let l = &mut replicas[0];
    let declined = l
        .author(&town.dev("bob", 0), decline(refused_att), T0 + 20_000)
        .expect("a pending attestation can be declined");
    assert_eq!(status(l, &rid(&declined)), Ok(()));
}

#[test]
fn concurrent_accepts_of_two_offers_refuse_the_same_one() {
    let mut town = Town::found(Params::default(), &["alice", "bob", "carol", "dave"]);
    town.add_device("bob", 1);
    let req = town.write("bob", aid_request("skill", "Help me move a sofa"));
    let o1 = town.write("carol", aid_offer(req, "I can lift it on Friday"));
    let o2 = town.write("dave", aid_offer(req, "Saturday morning with my van"));
    let base = town.replica();

    let (mut one, mut two) = (town.replica(), town.replica());
    let x = rid(&one
        .author(&town.dev("bob", 0), aid_accept(o1), T0 + 10_000)
        .expect("the request is open"));
    let y = rid(&two
        .author(&town.dev("bob", 1), aid_accept(o2), T0 + 10_000)
        .expect("the request is open"));

    let (l, r) = (written_since(&base, &one), written_since(&base, &two));
    let mut replicas = every_order(&base, &l, &r);
    sync(&mut one, &mut two);
    replicas.push(one);
    replicas.push(two);
    let refused = same_refusal_everywhere(&mut replicas, x, y, RejectReason::AlreadySettled);

    let (winner_offer, helper) = if refused == x {
        (o2, town.id("dave"))
    } else {
        (o1, town.id("carol"))
    };
    let state = replicas[0].state();
    let r = &state.aid_requests[&req];
    assert_eq!(r.accepted_offer, Some(winner_offer));
    assert_eq!(r.helper, Some(helper));
}

#[test]
fn an_accepted_allocation_can_be_refused_later_by_an_earlier_ordered_one() {
    // docs/RULES.md R0: what a replica counted alone can be refused once a concurrent change that sorts
    // earlier arrives. The caps are per proposal here: bob puts 6 + 6 on one proposal.
    let mut town = Town::found(Params::default(), &["alice", "bob"]);
    town.add_device("bob", 1);
    let p = town.write("alice", proposal("Library shelves"));
    let (mut one, mut two) = (town.replica(), town.replica());
    let x = rid(&one
        .author(&town.dev("bob", 0), allocate(p, 6), T0 + 10_000)
        .expect("6 of 10"));
    let y = rid(&two
        .author(&town.dev("bob", 1), allocate(p, 6), T0 + 10_001)
        .expect("6 of 10"));
    assert_eq!(status(&mut one, &x), Ok(()));
    assert_eq!(status(&mut two, &y), Ok(()));
    sync(&mut one, &mut two);
    assert_converged(&mut one, &mut two);
    let outcomes = [status(&mut one, &x), status(&mut one, &y)];
    assert!(
        outcomes == [Ok(()), Err(RejectReason::OverProposalCap)]
            || outcomes == [Err(RejectReason::OverProposalCap), Ok(())],
        "{outcomes:?}"
    );
    assert_eq!(one.state().proposals[&p].active_points, Points(6));
}
