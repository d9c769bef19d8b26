//! Collective purchasing (docs/RULES.md R7): fixture scripts for every rule and refusal, the solidarity
//! pool under concurrent discount requests, recurring rounds, and the record generator the
//! convergence property uses.
//!
//! Script verbs (amounts in minor units, times `YYYY-MM-DDTHH:MM` UTC):
//!
//! ```text
//! p1 = alice: purchase "Olive oil" litre 100 1250 EUR 3 2026-10-01T18:00 [monthly]
//! c1 = bob: commit p1 0 30 [+10|-5]     # round, quantity, solidarity percent
//! b1 = carol: bid p1 0 "Farm" local 1100 50   # round, supplier, local|remote, price, min qty
//! alice: order p1 0                     # also: deliver p1 0
//! alice: paid p1 0 bob                  # also: pickup p1 0 bob
//! ```

use coop_model::record;
use std::collections::BTreeMap;
use std::fmt::Write as _;

use coop_model::record::{PurchaseMark, PurchaseStep, Recurrence};
use coop_model::state::{add_months, format_time, Purchase};
use coop_model::*;
use expect_test::expect;

use super::script::{check, run};
use super::support::*;

// --- helpers shared with script.rs and support.rs

/// `YYYY-MM-DDTHH:MM[:SS]` (UTC) as Unix seconds.
pub(crate) fn at(s: &str) -> i64 {
    let (d, t) = s.split_once('T').expect("YYYY-MM-DDTHH:MM");
    let mut hms = t.split(':').map(|x| x.parse::<i64>().expect("a time"));
    let (h, m) = (hms.next().unwrap_or(0), hms.next().unwrap_or(0));
    let sec = hms.next().unwrap_or(0);
    day(d).0 as i64 * 86_400 + h * 3600 + m * 60 + sec
}

pub(crate) fn purchase(
    item: &str,
    target: i64,
    reference: i64,
    min_participants: i64,
    deadline: i64,
    recurrence: Recurrence,
) -> Record {
    Record::from(record::Purchase {
        item: item.into(),
        unit: "kg".into(),
        target_quantity: target,
        reference_price: reference,
        currency: "EUR".into(),
        min_participants,
        deadline,
        recurrence,
    })
}

pub(crate) fn commit(purchase: RecordId, round: i64, quantity: i64, solidarity: i64) -> Record {
    Record::PurchaseCommit(record::PurchaseCommit {
        purchase,
        round,
        quantity,
        solidarity_percent: solidarity,
    })
}

pub(crate) fn bid(purchase: RecordId, round: i64, local: bool, price: i64, min: i64) -> Record {
    Record::PurchaseBid(record::PurchaseBid {
        purchase,
        round,
        supplier: if local {
            "Farm down the road"
        } else {
            "Wholesale Ltd"
        }
        .into(),
        local,
        unit_price: price,
        min_quantity: min,
    })
}

pub(crate) fn step(purchase: RecordId, round: i64, step: PurchaseStep) -> Record {
    Record::PurchaseStep(record::RoundStep {
        purchase,
        round,
        step,
    })
}

pub(crate) fn mark(purchase: RecordId, round: i64, member: MemberId, mark: PurchaseMark) -> Record {
    Record::PurchaseMark(record::RoundMark {
        purchase,
        round,
        member,
        mark,
    })
}

/// The purchase verbs of the script DSL; `None` for any other verb.
pub(crate) fn verb(
    town: &Town,
    labels: &BTreeMap<String, RecordId>,
    w: &[String],
) -> Option<Record> {
    let label = |i: usize| -> RecordId {
        *labels
            .get(&w[i])
            .unwrap_or_else(|| panic!("no record labelled {}", w[i]))
    };
    let num = |i: usize| -> i64 {
        w[i].trim_start_matches('+')
            .parse()
            .unwrap_or_else(|_| panic!("{:?} is not a number", w[i]))
    };
    Some(match w[0].as_str() {
        "purchase" => Record::from(record::Purchase {
            item: w[1].clone(),
            unit: w[2].clone(),
            target_quantity: num(3),
            reference_price: num(4),
            currency: w[5].clone(),
            min_participants: num(6),
            deadline: at(&w[7]),
            recurrence: w
                .get(8)
                .map_or(Recurrence::None, |r| r.parse().expect("none|monthly")),
        }),
        "commit" => commit(label(1), num(2), num(3), w.get(4).map_or(0, |_| num(4))),
        "bid" => Record::PurchaseBid(record::PurchaseBid {
            purchase: label(1),
            round: num(2),
            supplier: w[3].clone(),
            local: match w[4].as_str() {
                "local" => true,
                "remote" => false,
                other => panic!("local or remote, not {other}"),
            },
            unit_price: num(5),
            min_quantity: num(6),
        }),
        "order" => step(label(1), num(2), PurchaseStep::Ordered),
        "deliver" => step(label(1), num(2), PurchaseStep::Delivered),
        "paid" => mark(label(1), num(2), town.id(&w[3]), PurchaseMark::Paid),
        "pickup" => mark(label(1), num(2), town.id(&w[3]), PurchaseMark::PickedUp),
        _ => return None,
    })
}

/// Renders the purchases of `s` (rounds, bids, commitments with their pricing); with `now`,
/// each round's phase and the current round at noon of that day.
pub(crate) fn render(
    o: &mut String,
    s: &State,
    who: &dyn Fn(&MemberId) -> String,
    rec: &dyn Fn(&RecordId) -> String,
    now: Option<Day>,
) {
    if s.purchases.is_empty() {
        return;
    }
    let position: BTreeMap<RecordId, usize> = s.log.iter().map(|e| (e.id, e.position)).collect();
    let mut purchases: Vec<&Purchase> = s.purchases.values().collect();
    purchases.sort_by_key(|p| position.get(&p.id).copied());
    let now = now.map(|d| d.0 as i64 * 86_400 + 43_200);
    o.push_str("purchases\n");
    for p in purchases {
        let _ = writeln!(
            o,
            "  {}: {:?} by {}: {} {} at {} {}, min {} participants, deadline {}, {}; \
             savings {} spending {} (local {})",
            rec(&p.id),
            p.item,
            who(&p.coordinator),
            p.target_quantity,
            p.unit,
            p.reference_price,
            p.currency,
            p.min_participants,
            format_time(p.deadline),
            p.recurrence,
            p.total_savings,
            p.total_spending,
            p.local_spending,
        );
        for r in p.rounds.values() {
            let _ = write!(
                o,
                "    round {} (deadline {}): {} {} from {} participants",
                r.round,
                format_time(r.deadline),
                r.committed_quantity,
                p.unit,
                r.participants,
            );
            if r.funded {
                o.push_str(", funded");
            }
            if let (Some(w), Some(price)) = (r.winning_bid, r.unit_price) {
                let _ = write!(o, ", winner {} at {price}", rec(&w));
            }
            if r.ordered.is_some() {
                o.push_str(", ordered");
            }
            if r.delivered.is_some() {
                o.push_str(", delivered");
            }
            if let Some(now) = now {
                let _ = write!(o, " [{}]", p.phase(r.round, now).as_str());
            }
            o.push('\n');
            for b in &r.bids {
                let _ = writeln!(
                    o,
                    "      bid {}: {:?} {} {} min {}",
                    rec(&b.id),
                    b.supplier,
                    if b.local { "local" } else { "remote" },
                    b.unit_price,
                    b.min_quantity
                );
            }
            for c in &r.commitments {
                let _ = write!(
                    o,
                    "      {} {} {} {:+}%: base {} surcharge {} discount {}/{} due {} savings {}",
                    rec(&c.id),
                    who(&c.member),
                    c.quantity,
                    c.solidarity_percent,
                    c.base,
                    c.surcharge,
                    c.discount_granted,
                    c.discount_requested,
                    c.due,
                    c.savings
                );
                if c.paid.is_some() {
                    o.push_str(", paid");
                }
                if c.picked_up.is_some() {
                    o.push_str(", picked up");
                }
                o.push('\n');
            }
            if r.unit_price.is_some() {
                let _ = writeln!(
                    o,
                    "      total base {} + pool {} - granted {}/{} = due {} (surplus {}), savings {}",
                    r.base_total,
                    r.surcharge_pool,
                    r.discounts_granted,
                    r.discounts_requested,
                    r.total_due,
                    r.solidarity_surplus,
                    r.savings
                );
            }
        }
        if let Some(now) = now {
            match p.current_round(now) {
                Some(k) => {
                    let _ = writeln!(
                        o,
                        "    now: round {k} {}, closes {}",
                        p.phase(k, now).as_str(),
                        format_time(p.deadline_of(k))
                    );
                }
                None => o.push_str("    now: no round left\n"),
            }
        }
    }
}

// --- fixtures: the rules, one script each

#[test]
fn a_funded_purchase_is_ordered_delivered_paid_and_picked_up() {
    // 100 kg of rice, reference 250 cents/kg, at least 3 participants by Oct 1st 18:00.
    // Three neighbours commit 100 kg; the local farm's 200 beats the wholesaler's 210.
    check(
        r#"
        community alice bob carol dave
        clock 2026-09-25T10:00
        p1 = alice: purchase "Brown rice" kg 100 250 EUR 3 2026-10-01T18:00
        c1 = bob: commit p1 0 40
        c2 = carol: commit p1 0 35
        b1 = dave: bid p1 0 "Wholesale Ltd" remote 210 50
        b2 = bob: bid p1 0 "Farm down the road" local 200 80
        c3 = dave: commit p1 0 25
        clock 2026-10-02T09:00
        alice: order p1 0
        alice: paid p1 0 bob
        alice: deliver p1 0
        bob: pickup p1 0 bob
        alice: pickup p1 0 carol
        now 2026-10-03
        "#,
        expect![[r#"
            members
              alice admitted: time +0 (+0 -0), sp 100/100
              bob admitted: time +0 (+0 -0), sp 100/100
              carol admitted: time +0 (+0 -0), sp 100/100
              dave admitted: time +0 (+0 -0), sp 100/100
            fairness on 2026-10-03 over 182 days
            purchases
              p1: "Brown rice" by alice: 100 kg at 250 EUR, min 3 participants, deadline 2026-10-01 18:00 UTC, none; savings 5000 spending 20000 (local 20000)
                round 0 (deadline 2026-10-01 18:00 UTC): 100 kg from 3 participants, funded, winner b2 at 200, ordered, delivered [delivered]
                  bid b1: "Wholesale Ltd" remote 210 min 50
                  bid b2: "Farm down the road" local 200 min 80
                  c1 bob 40 +0%: base 8000 surcharge 0 discount 0/0 due 8000 savings 2000, paid, picked up
                  c2 carol 35 +0%: base 7000 surcharge 0 discount 0/0 due 7000 savings 1750, picked up
                  c3 dave 25 +0%: base 5000 surcharge 0 discount 0/0 due 5000 savings 1250
                  total base 20000 + pool 0 - granted 0/0 = due 20000 (surplus 0), savings 5000
                now: no round left
            counted 18 refused 0
        "#]],
    );
}

#[test]
fn the_winning_bid_is_the_cheapest_that_covers_the_committed_quantity() {
    // Committed 120 kg. The 150 bid needs 200 kg: not eligible. Three bids at 180: the local
    // ones beat the remote one, and of the two local ones the earlier wins.
    check(
        r#"
        community alice bob carol
        clock 2026-09-25T10:00
        p1 = alice: purchase "Flour" kg 100 220 EUR 1 2026-10-01T18:00
        c1 = bob: commit p1 0 60
        b1 = carol: bid p1 0 "Big mill" remote 150 200
        b2 = carol: bid p1 0 "Remote mill" remote 180 10
        b3 = carol: bid p1 0 "Village mill" local 180 100
        b4 = carol: bid p1 0 "Other village mill" local 180 10
        c2 = carol: commit p1 0 60
        "#,
        expect![[r#"
            members
              alice admitted: time +0 (+0 -0), sp 100/100
              bob admitted: time +0 (+0 -0), sp 100/100
              carol admitted: time +0 (+0 -0), sp 100/100
            purchases
              p1: "Flour" by alice: 100 kg at 220 EUR, min 1 participants, deadline 2026-10-01 18:00 UTC, none; savings 0 spending 0 (local 0)
                round 0 (deadline 2026-10-01 18:00 UTC): 120 kg from 2 participants, funded, winner b3 at 180
                  bid b1: "Big mill" remote 150 min 200
                  bid b2: "Remote mill" remote 180 min 10
                  bid b3: "Village mill" local 180 min 100
                  bid b4: "Other village mill" local 180 min 10
                  c1 bob 60 +0%: base 10800 surcharge 0 discount 0/0 due 10800 savings 2400
                  c2 carol 60 +0%: base 10800 surcharge 0 discount 0/0 due 10800 savings 2400
                  total base 21600 + pool 0 - granted 0/0 = due 21600 (surplus 0), savings 4800
            counted 12 refused 0
        "#]],
    );
}

#[test]
fn the_winner_is_recomputed_as_commitments_grow() {
    // With 60 kg committed only the 10-kg bid qualifies; at 120 kg the cheaper 100-kg bid
    // takes over. Savings turn negative while the only eligible bid is above the reference.
    let before = run(r#"
        community alice bob carol
        clock 2026-09-25T10:00
        p1 = alice: purchase "Flour" kg 100 220 EUR 1 2026-10-01T18:00
        c1 = bob: commit p1 0 60
        b1 = carol: bid p1 0 "Corner shop" remote 230 10
        b2 = carol: bid p1 0 "Village mill" local 180 100
        "#);
    let after = run(r#"
        community alice bob carol
        clock 2026-09-25T10:00
        p1 = alice: purchase "Flour" kg 100 220 EUR 1 2026-10-01T18:00
        c1 = bob: commit p1 0 60
        b1 = carol: bid p1 0 "Corner shop" remote 230 10
        b2 = carol: bid p1 0 "Village mill" local 180 100
        c2 = carol: commit p1 0 60
        "#);
    let rounds = |s: &str| -> String {
        s.lines()
            .filter(|l| l.contains("round 0") || l.contains("total"))
            .map(str::trim)
            .collect::<Vec<_>>()
            .join("\n")
    };
    expect![[r#"
        round 0 (deadline 2026-10-01 18:00 UTC): 60 kg from 1 participants, winner b1 at 230
        total base 13800 + pool 0 - granted 0/0 = due 13800 (surplus 0), savings -600"#]]
    .assert_eq(&rounds(&before));
    expect![[r#"
        round 0 (deadline 2026-10-01 18:00 UTC): 120 kg from 2 participants, funded, winner b2 at 180
        total base 21600 + pool 0 - granted 0/0 = due 21600 (surplus 0), savings 4800"#]]
    .assert_eq(&rounds(&after));
}

#[test]
fn solidarity_discounts_are_granted_in_order_up_to_the_surcharge_pool() {
    // Price 333: bob pays +10 % of 9990 = 999, carol +5 % of 6660 = 333: a pool of 1332.
    // In total order, dave asks 25 % of 3330 = 832 (832.5 rounded down) and gets it all;
    // erin asks 50 % of 3330 = 1665 and gets the 500 left; frank's 10 % finds the pool
    // empty. The amounts due add up to the supplier's bill: the purchase is fully paid.
    check(
        r#"
        community alice bob carol dave erin frank
        clock 2026-09-25T10:00
        p1 = alice: purchase "Coffee beans" kg 100 400 EUR 2 2026-10-01T18:00
        b1 = alice: bid p1 0 "Roaster" local 333 1
        c1 = bob: commit p1 0 30 +10
        c2 = dave: commit p1 0 10 -25
        c3 = carol: commit p1 0 20 +5
        c4 = erin: commit p1 0 10 -50
        c5 = frank: commit p1 0 30 -10
        "#,
        expect![[r#"
            members
              alice admitted: time +0 (+0 -0), sp 100/100
              bob admitted: time +0 (+0 -0), sp 100/100
              carol admitted: time +0 (+0 -0), sp 100/100
              dave admitted: time +0 (+0 -0), sp 100/100
              erin admitted: time +0 (+0 -0), sp 100/100
              frank admitted: time +0 (+0 -0), sp 100/100
            purchases
              p1: "Coffee beans" by alice: 100 kg at 400 EUR, min 2 participants, deadline 2026-10-01 18:00 UTC, none; savings 0 spending 0 (local 0)
                round 0 (deadline 2026-10-01 18:00 UTC): 100 kg from 5 participants, funded, winner b1 at 333
                  bid b1: "Roaster" local 333 min 1
                  c1 bob 30 +10%: base 9990 surcharge 999 discount 0/0 due 10989 savings 2010
                  c2 dave 10 -25%: base 3330 surcharge 0 discount 832/832 due 2498 savings 670
                  c3 carol 20 +5%: base 6660 surcharge 333 discount 0/0 due 6993 savings 1340
                  c4 erin 10 -50%: base 3330 surcharge 0 discount 500/1665 due 2830 savings 670
                  c5 frank 30 -10%: base 9990 surcharge 0 discount 0/999 due 9990 savings 2010
                  total base 33300 + pool 1332 - granted 1332/3496 = due 33300 (surplus 0), savings 6700
            counted 18 refused 0
        "#]],
    );
}

#[test]
fn commitments_and_bids_at_or_after_the_deadline_are_refused_and_an_unfunded_round_expires() {
    // Claimed one second before the deadline counts; at the deadline it does not. A purchase
    // whose deadline is not after its own time is refused. Unfunded past its deadline, the
    // round is expired and cannot be ordered.
    check(
        r#"
        community alice bob carol
        clock 2026-09-25T10:00
        alice: purchase "Late olives" kg 10 900 EUR 1 2026-09-25T10:00
        p1 = alice: purchase "Olive oil" litre 100 1250 EUR 3 2026-10-01T18:00
        clock 2026-10-01T17:59:59
        c1 = bob: commit p1 0 30
        clock 2026-10-01T18:00
        carol: commit p1 0 30
        carol!: commit p1 0 30
        carol!: bid p1 0 "Mill" local 1000 1
        alice!: order p1 0
        now 2026-10-02
        "#,
        expect![[r#"
            members
              alice admitted: time +0 (+0 -0), sp 100/100
              bob admitted: time +0 (+0 -0), sp 100/100
              carol admitted: time +0 (+0 -0), sp 100/100
            fairness on 2026-10-02 over 182 days
            purchases
              p1: "Olive oil" by alice: 100 litre at 1250 EUR, min 3 participants, deadline 2026-10-01 18:00 UTC, none; savings 0 spending 0 (local 0)
                round 0 (deadline 2026-10-01 18:00 UTC): 30 litre from 1 participants [expired]
                  c1 bob 30 +0%: base 0 surcharge 0 discount 0/0 due 0 savings 0
                now: no round left
            refused
              carol!: commit p1 0 30 => deadline_passed: claimed at 2026-10-01 18:01 UTC, round 0 closed at 2026-10-01 18:00 UTC
              carol!: bid p1 0 "Mill" local 1000 1 => deadline_passed: claimed at 2026-10-01 18:02 UTC, round 0 closed at 2026-10-01 18:00 UTC
              alice!: order p1 0 => not_funded: round 0 has 30 of 100 litre from 1 of 3 participants
              alice: purchase "Late olives" kg 10 900 EUR 1 2026-09-25T10:00 => deadline_passed: deadline 2026-09-25 10:00 UTC is not after the purchase's time 2026-09-25 10:00 UTC (not written)
              carol: commit p1 0 30 => deadline_passed: claimed at 2026-10-01 18:00 UTC, round 0 closed at 2026-10-01 18:00 UTC (not written)
            counted 7 refused 3
        "#]],
    );
}

#[test]
fn ordering_needs_the_coordinator_funding_and_a_winning_bid_and_closes_the_round() {
    check(
        r#"
        community alice bob carol
        clock 2026-09-25T10:00
        p1 = alice: purchase "Honey" kg 20 1500 EUR 2 2026-10-01T18:00
        c1 = bob: commit p1 0 10
        alice!: order p1 0
        c2 = carol: commit p1 0 10
        b1 = bob: bid p1 0 "Bee farm" local 1200 50
        alice!: order p1 0
        b2 = bob: bid p1 0 "Bee farm" local 1300 20
        bob!: order p1 0
        alice!: deliver p1 0
        alice: order p1 0
        alice!: order p1 0
        alice!: commit p1 0 5
        carol!: bid p1 0 "Cheaper farm" local 1000 1
        alice: deliver p1 0
        alice!: deliver p1 0
        alice!: order p1 1
        "#,
        expect![[r#"
            members
              alice admitted: time +0 (+0 -0), sp 100/100
              bob admitted: time +0 (+0 -0), sp 100/100
              carol admitted: time +0 (+0 -0), sp 100/100
            purchases
              p1: "Honey" by alice: 20 kg at 1500 EUR, min 2 participants, deadline 2026-10-01 18:00 UTC, none; savings 4000 spending 26000 (local 26000)
                round 0 (deadline 2026-10-01 18:00 UTC): 20 kg from 2 participants, funded, winner b2 at 1300, ordered, delivered
                  bid b1: "Bee farm" local 1200 min 50
                  bid b2: "Bee farm" local 1300 min 20
                  c1 bob 10 +0%: base 13000 surcharge 0 discount 0/0 due 13000 savings 2000
                  c2 carol 10 +0%: base 13000 surcharge 0 discount 0/0 due 13000 savings 2000
                  total base 26000 + pool 0 - granted 0/0 = due 26000 (surplus 0), savings 4000
            refused
              alice!: order p1 0 => not_funded: round 0 has 10 of 20 kg from 1 of 2 participants
              alice!: order p1 0 => no_winning_bid: no bid in round 0 sells 20 kg
              bob!: order p1 0 => not_allowed: only the coordinator orders and delivers
              alice!: deliver p1 0 => not_ordered: round 0 is not ordered
              alice!: order p1 0 => already_settled: round 0 is already ordered
              alice!: commit p1 0 5 => already_settled: round 0 is already ordered
              carol!: bid p1 0 "Cheaper farm" local 1000 1 => already_settled: round 0 is already ordered
              alice!: deliver p1 0 => already_settled: round 0 is already delivered
              alice!: order p1 1 => round_not_open: a one-off purchase has only round 0, not round 1
            counted 12 refused 9
        "#]],
    );
}

#[test]
fn payments_follow_the_order_and_pickups_follow_the_delivery() {
    // The coordinator marks payments; a pickup by the coordinator or the participant.
    check(
        r#"
        community alice bob carol dave
        clock 2026-09-25T10:00
        p1 = alice: purchase "Apples" kg 10 300 EUR 1 2026-10-01T18:00
        c1 = bob: commit p1 0 10
        c2 = carol: commit p1 0 5
        b1 = bob: bid p1 0 "Orchard" local 200 1
        alice!: paid p1 0 bob
        alice: order p1 0
        bob!: paid p1 0 bob
        alice!: paid p1 0 dave
        alice: paid p1 0 bob
        alice!: paid p1 0 bob
        bob!: pickup p1 0 bob
        alice: deliver p1 0
        dave!: pickup p1 0 bob
        bob!: pickup p1 0 carol
        carol: pickup p1 0 carol
        alice!: pickup p1 0 carol
        alice: pickup p1 0 bob
        "#,
        expect![[r#"
            members
              alice admitted: time +0 (+0 -0), sp 100/100
              bob admitted: time +0 (+0 -0), sp 100/100
              carol admitted: time +0 (+0 -0), sp 100/100
              dave admitted: time +0 (+0 -0), sp 100/100
            purchases
              p1: "Apples" by alice: 10 kg at 300 EUR, min 1 participants, deadline 2026-10-01 18:00 UTC, none; savings 1500 spending 3000 (local 3000)
                round 0 (deadline 2026-10-01 18:00 UTC): 15 kg from 2 participants, funded, winner b1 at 200, ordered, delivered
                  bid b1: "Orchard" local 200 min 1
                  c1 bob 10 +0%: base 2000 surcharge 0 discount 0/0 due 2000 savings 1000, paid, picked up
                  c2 carol 5 +0%: base 1000 surcharge 0 discount 0/0 due 1000 savings 500, picked up
                  total base 3000 + pool 0 - granted 0/0 = due 3000 (surplus 0), savings 1500
            refused
              alice!: paid p1 0 bob => not_ordered: round 0 is not ordered
              bob!: paid p1 0 bob => not_allowed: only the coordinator marks payments
              alice!: paid p1 0 dave => not_a_participant: dave has no commitment in round 0
              alice!: paid p1 0 bob => redundant: bob is already marked paid
              bob!: pickup p1 0 bob => not_delivered: round 0 is not delivered
              dave!: pickup p1 0 bob => not_allowed: only the coordinator or the participant marks a pickup
              bob!: pickup p1 0 carol => not_allowed: only the coordinator or the participant marks a pickup
              alice!: pickup p1 0 carol => redundant: carol is already marked picked_up
            counted 16 refused 8
        "#]],
    );
}

#[test]
fn a_member_commits_once_per_round() {
    check(
        r#"
        community alice bob
        clock 2026-09-25T10:00
        p1 = alice: purchase "Lentils" kg 50 400 EUR 1 2026-10-01T18:00
        c1 = bob: commit p1 0 10
        bob: commit p1 0 20
        bob@1!: commit p1 0 20 +5
        "#,
        expect![[r#"
            members
              alice admitted: time +0 (+0 -0), sp 100/100
              bob admitted: time +0 (+0 -0), sp 100/100, 2 devices (0 forked)
            purchases
              p1: "Lentils" by alice: 50 kg at 400 EUR, min 1 participants, deadline 2026-10-01 18:00 UTC, none; savings 0 spending 0 (local 0)
                round 0 (deadline 2026-10-01 18:00 UTC): 10 kg from 1 participants
                  c1 bob 10 +0%: base 0 surcharge 0 discount 0/0 due 0 savings 0
            refused
              bob@1!: commit p1 0 20 +5 => already_committed: already committed 10 in round 0
              bob: commit p1 0 20 => already_committed: already committed 10 in round 0 (not written)
            counted 6 refused 1
        "#]],
    );
}

#[test]
fn a_monthly_purchase_opens_its_next_round_at_each_deadline() {
    // Round 0 closes Oct 31 18:00; round 1 on Nov 30 (the 31st clamped), round 2 on Dec 31.
    // A commitment for round 1 before round 0 closes is early; round 0 after its deadline is
    // late; round 1 in its own window counts and funds independently of round 0.
    check(
        r#"
        community alice bob carol
        clock 2026-10-01T10:00
        p1 = alice: purchase "Vegetable box" box 2 1800 EUR 2 2026-10-31T18:00 monthly
        c1 = bob: commit p1 0 1
        bob!: commit p1 1 1
        clock 2026-11-02T08:00
        carol!: commit p1 0 1
        c2 = carol: commit p1 1 1 -10
        c3 = bob: commit p1 1 1 +10
        b1 = alice: bid p1 1 "Market garden" local 1500 2
        clock 2026-12-01T09:00
        alice: order p1 1
        now 2026-12-01
        "#,
        expect![[r#"
            members
              alice admitted: time +0 (+0 -0), sp 100/100
              bob admitted: time +0 (+0 -0), sp 100/100
              carol admitted: time +0 (+0 -0), sp 100/100
            fairness on 2026-12-01 over 182 days
            purchases
              p1: "Vegetable box" by alice: 2 box at 1800 EUR, min 2 participants, deadline 2026-10-31 18:00 UTC, monthly; savings 600 spending 3000 (local 3000)
                round 0 (deadline 2026-10-31 18:00 UTC): 1 box from 1 participants [expired]
                  c1 bob 1 +0%: base 0 surcharge 0 discount 0/0 due 0 savings 0
                round 1 (deadline 2026-11-30 18:00 UTC): 2 box from 2 participants, funded, winner b1 at 1500, ordered [ordered]
                  bid b1: "Market garden" local 1500 min 2
                  c2 carol 1 -10%: base 1500 surcharge 0 discount 150/150 due 1350 savings 300
                  c3 bob 1 +10%: base 1500 surcharge 150 discount 0/0 due 1650 savings 300
                  total base 3000 + pool 150 - granted 150/150 = due 3000 (surplus 0), savings 600
                now: round 2 open, closes 2026-12-31 18:00 UTC
            refused
              bob!: commit p1 1 1 => round_not_open: claimed at 2026-10-01 10:02 UTC, round 1 opens at 2026-10-31 18:00 UTC
              carol!: commit p1 0 1 => deadline_passed: claimed at 2026-11-02 08:00 UTC, round 0 closed at 2026-10-31 18:00 UTC
            counted 11 refused 2
        "#]],
    );
}

#[test]
fn purchase_records_must_refer_to_a_purchase_in_their_past() {
    // Also: a refused step on a round no record named leaves no trace of that round.
    check(
        r#"
        community alice bob
        clock 2026-09-25T10:00
        q1 = alice: propose "Not a purchase"
        bob!: commit q1 0 10
        bob!: bid q1 0 "Mill" local 100 1
        alice!: order q1 0
        alice!: paid q1 0 bob
        p1 = alice: purchase "One-off" kg 10 100 EUR 1 2026-10-01T18:00
        bob!: commit p1 1 10
        alice!: paid p1 0 bob
        alice!: order p1 0
        alice!: deliver p1 0
        "#,
        expect![[r#"
            members
              alice admitted: time +0 (+0 -0), sp 100/100
              bob admitted: time +0 (+0 -0), sp 100/100
            proposals
              q1: "Not a purchase" by alice open, 0 SP active (peak 0) from 0 supporters
            purchases
              p1: "One-off" by alice: 10 kg at 100 EUR, min 1 participants, deadline 2026-10-01 18:00 UTC, none; savings 0 spending 0 (local 0)
            refused
              bob!: commit q1 0 10 => unknown_reference: q1 is not a counted purchase
              bob!: bid q1 0 "Mill" local 100 1 => unknown_reference: q1 is not a counted purchase
              alice!: order q1 0 => unknown_reference: q1 is not a counted purchase
              alice!: paid q1 0 bob => unknown_reference: q1 is not a counted purchase
              bob!: commit p1 1 10 => round_not_open: a one-off purchase has only round 0, not round 1
              alice!: paid p1 0 bob => not_a_participant: bob has no commitment in round 0
              alice!: order p1 0 => not_funded: round 0 has 0 of 10 kg from 0 of 1 participants
              alice!: deliver p1 0 => not_ordered: round 0 is not ordered
            counted 5 refused 8
        "#]],
    );
}

#[test]
fn malformed_purchase_fields_are_refused_at_the_gate() {
    check(
        r#"
        community alice bob
        clock 2026-09-25T10:00
        alice!: purchase "Rice" kg 10 100 eur 1 2026-10-01T18:00
        alice!: purchase "Rice" kg 0 100 EUR 1 2026-10-01T18:00
        alice!: purchase "Rice" kg 10 -1 EUR 1 2026-10-01T18:00
        p1 = alice: purchase "Rice" kg 10 100 EUR 1 2026-10-01T18:00
        bob!: commit p1 0 10 +101
        bob!: commit p1 120 10
        bob!: commit p1 0 0
        bob!: bid p1 0 "Mill" local -5 1
        "#,
        expect![[r#"
            members
              alice admitted: time +0 (+0 -0), sp 100/100
              bob admitted: time +0 (+0 -0), sp 100/100
            purchases
              p1: "Rice" by alice: 10 kg at 100 EUR, min 1 participants, deadline 2026-10-01 18:00 UTC, none; savings 0 spending 0 (local 0)
            refused
              alice!: purchase "Rice" kg 10 100 eur 1 2026-10-01T18:00 => invalid_record: currency "eur" is not three upper-case letters (refused by the gate)
              alice!: purchase "Rice" kg 0 100 EUR 1 2026-10-01T18:00 => invalid_record: field "target_quantity" is 0, expected 1..=1000000 (refused by the gate)
              alice!: purchase "Rice" kg 10 -1 EUR 1 2026-10-01T18:00 => invalid_record: field "reference_price" is -1, expected 0..=100000000 (refused by the gate)
              bob!: commit p1 0 10 +101 => invalid_record: field "solidarity_percent" is 101, expected -100..=100 (refused by the gate)
              bob!: commit p1 120 10 => invalid_record: field "round" is 120, expected 0..=119 (refused by the gate)
              bob!: commit p1 0 0 => invalid_record: field "quantity" is 0, expected 1..=1000000 (refused by the gate)
              bob!: bid p1 0 "Mill" local -5 1 => invalid_record: field "unit_price" is -5, expected 0..=100000000 (refused by the gate)
            counted 4 refused 0
        "#]],
    );
}

// --- calendar months

#[test]
fn monthly_deadlines_keep_the_day_clamped_and_the_time_of_day() {
    let d0 = at("2027-01-31T18:30");
    let months: Vec<String> = (0..5).map(|k| format_time(add_months(d0, k))).collect();
    assert_eq!(
        months,
        [
            "2027-01-31 18:30 UTC",
            "2027-02-28 18:30 UTC",
            "2027-03-31 18:30 UTC",
            "2027-04-30 18:30 UTC",
            "2027-05-31 18:30 UTC"
        ]
    );
    assert_eq!(
        format_time(add_months(at("2027-12-29T00:00:05"), 2)),
        "2028-02-29 00:00:05 UTC"
    );
    assert_eq!(
        format_time(add_months(at("2027-11-15T23:59"), 14)),
        "2029-01-15 23:59 UTC"
    );
}

// --- concurrency: the solidarity pool

/// Fresh replicas of `base` fed `changes` in several orders (forward, reversed, shuffled
/// with duplicates), one envelope per ingest, checking incremental = scratch each time.
fn in_many_orders(base: &Ledger, changes: &[Envelope]) -> Vec<Ledger> {
    let mut orders: Vec<Vec<Envelope>> =
        vec![changes.to_vec(), changes.iter().rev().cloned().collect()];
    let mut rng = Rng(11);
    for _ in 0..8 {
        let mut all = changes.to_vec();
        all.push(all[rng.below(all.len())].clone());
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

#[test]
fn discount_requests_racing_for_a_small_pool_get_the_same_grants_everywhere() {
    // bob's +10 % on 10 kg at 500 funds a pool of 500. carol, dave and erin each ask -10 %
    // on 4 kg (200 each), offline on three replicas: 500 covers two and a half of them. Every
    // replica grants the same: in total order, 200, 200, 100.
    let mut town = Town::found(
        Params::default(),
        &["alice", "bob", "carol", "dave", "erin"],
    );
    let deadline = T0 + 30 * 86_400;
    let p = town.write(
        "alice",
        purchase("Olive oil", 20, 700, 2, deadline, Recurrence::None),
    );
    town.write("alice", bid(p, 0, true, 500, 1));
    town.write("bob", commit(p, 0, 10, 10));
    let base = town.replica();
    let mut sides = Vec::new();
    let mut ids = Vec::new();
    for (i, who) in ["carol", "dave", "erin"].into_iter().enumerate() {
        let mut side = town.replica();
        let env = side
            .author(
                &town.dev(who, 0),
                commit(p, 0, 4, -10),
                T0 + 10_000 + i as i64,
            )
            .expect("alone, the request fits the pool");
        ids.push(rid(&env));
        sides.push(side);
    }
    let changes: Vec<Envelope> = sides
        .iter()
        .flat_map(|s| s.envelopes().skip(base.len()).collect::<Vec<_>>())
        .collect();
    let mut replicas = in_many_orders(&base, &changes);
    for side in &mut sides {
        let _ = side.ingest(changes.clone());
    }
    replicas.extend(sides);

    let grants = |l: &mut Ledger| -> Vec<(RecordId, i64, i64)> {
        let r = &l.state().purchases[&p].rounds[&0];
        r.commitments
            .iter()
            .map(|c| (c.id, c.discount_granted, c.due))
            .collect()
    };
    let first = grants(&mut replicas[0]);
    let (head, rest) = replicas.split_at_mut(1);
    for r in rest {
        assert_eq!(grants(r), first);
        assert_converged(&mut head[0], r);
    }
    // The three requests in total order get 200, 200 and the 100 left.
    let state = replicas[0].state();
    let round = &state.purchases[&p].rounds[&0];
    let granted: Vec<i64> = round
        .commitments
        .iter()
        .filter(|c| c.solidarity_percent < 0)
        .map(|c| c.discount_granted)
        .collect();
    assert_eq!(granted, [200, 200, 100]);
    let pos = |id: &RecordId| log_entry(state, id).position;
    let mut by_order = ids.clone();
    by_order.sort_by_key(pos);
    let requesters: Vec<RecordId> = round
        .commitments
        .iter()
        .filter(|c| c.solidarity_percent < 0)
        .map(|c| c.id)
        .collect();
    assert_eq!(requesters, by_order, "discounts are served in total order");
    assert_eq!(round.surcharge_pool, 500);
    assert_eq!(round.discounts_granted, 500);
    assert_eq!(round.total_due, round.base_total);
    assert!(round.commitments.iter().map(|c| c.due).sum::<i64>() >= round.base_total);
}

#[test]
fn a_member_committing_from_two_devices_at_once_counts_once_everywhere() {
    let mut town = Town::found(Params::default(), &["alice", "bob"]);
    town.add_device("bob", 1);
    let p = town.write(
        "alice",
        purchase("Oats", 20, 300, 1, T0 + 86_400, Recurrence::None),
    );
    let base = town.replica();
    let (mut one, mut two) = (town.replica(), town.replica());
    let x = rid(&one
        .author(&town.dev("bob", 0), commit(p, 0, 5, 0), T0 + 1_000)
        .expect("first commitment on the laptop"));
    let y = rid(&two
        .author(&town.dev("bob", 1), commit(p, 0, 7, 0), T0 + 1_000)
        .expect("first commitment on the phone"));
    let changes: Vec<Envelope> = [&one, &two]
        .iter()
        .flat_map(|l| l.envelopes().skip(base.len()).collect::<Vec<_>>())
        .collect();
    let mut replicas = in_many_orders(&base, &changes);
    let outcome = (status(&mut replicas[0], &x), status(&mut replicas[0], &y));
    assert!(
        matches!(
            outcome,
            (Ok(()), Err(RejectReason::AlreadyCommitted))
                | (Err(RejectReason::AlreadyCommitted), Ok(()))
        ),
        "{outcome:?}"
    );
    let (head, rest) = replicas.split_at_mut(1);
    for r in rest {
        assert_eq!((status(r, &x), status(r, &y)), outcome);
        assert_converged(&mut head[0], r);
    }
    assert_eq!(replicas[0].state().purchases[&p].rounds[&0].participants, 1);
}

#[test]
fn a_commitment_concurrent_with_the_order_counts_only_if_it_sorts_before_it() {
    // alice orders on her replica while carol commits on hers. Whichever sorts first in
    // the total order decides: the same on every replica, and the order's totals agree.
    let mut town = Town::found(Params::default(), &["alice", "bob", "carol"]);
    let p = town.write(
        "alice",
        purchase("Oats", 10, 300, 1, T0 + 86_400, Recurrence::None),
    );
    town.write("bob", commit(p, 0, 10, 0));
    town.write("bob", bid(p, 0, false, 250, 1));
    let base = town.replica();
    let (mut one, mut two) = (town.replica(), town.replica());
    let order = rid(&one
        .author(
            &town.dev("alice", 0),
            step(p, 0, PurchaseStep::Ordered),
            T0 + 1_000,
        )
        .expect("funded with a winner"));
    let late = rid(&two
        .author(&town.dev("carol", 0), commit(p, 0, 5, 0), T0 + 1_000)
        .expect("open on carol's replica"));
    let changes: Vec<Envelope> = [&one, &two]
        .iter()
        .flat_map(|l| l.envelopes().skip(base.len()).collect::<Vec<_>>())
        .collect();
    let mut replicas = in_many_orders(&base, &changes);
    assert_eq!(status(&mut replicas[0], &order), Ok(()));
    let counted = status(&mut replicas[0], &late);
    let state = replicas[0].state().clone();
    let before = log_entry(&state, &late).position < log_entry(&state, &order).position;
    assert_eq!(
        counted,
        if before {
            Ok(())
        } else {
            Err(RejectReason::AlreadySettled)
        }
    );
    let pur = &state.purchases[&p];
    assert_eq!(pur.total_spending, pur.rounds[&0].base_total);
    let (head, rest) = replicas.split_at_mut(1);
    for r in rest {
        assert_eq!(status(r, &late), counted);
        assert_converged(&mut head[0], r);
    }
}

// --- the convergence property's purchase records

/// A purchase record for a random write step by `author` on a replica whose state is
/// `state`, and the time it claims: around the deadline of the round it names (sometimes
/// after it), so windows, later rounds and deadlines all come into play. `None` when there
/// is nothing to refer to yet.
pub(crate) fn arbitrary(
    state: &State,
    author: MemberId,
    ids: &[MemberId],
    what: u8,
    x: u8,
    y: u16,
    t: i64,
) -> Option<(Record, i64)> {
    // Independent-looking small numbers from the step's bytes.
    let mut h = (y as u64) << 8 | x as u64;
    let mut pick = |n: u64| {
        h = h.wrapping_mul(0x9E37_79B9_7F4A_7C15).rotate_left(29) ^ 0x5851_F42D;
        (h % n) as i64
    };
    let all: Vec<&Purchase> = state.purchases.values().collect();
    // Steps and marks are the coordinator's: prefer the author's own purchases for them.
    let own: Vec<&Purchase> = all
        .iter()
        .copied()
        .filter(|p| p.coordinator == author)
        .collect();
    let kind = what % 16;
    let from = if kind >= 10 && !own.is_empty() {
        &own
    } else {
        &all
    };
    let p = (!from.is_empty()).then(|| from[pick(from.len() as u64) as usize]);
    let round = [0, 0, 1, 2][pick(4) as usize];
    let near_deadline = |p: &Purchase, off: i64| p.deadline_of(round as u32) + off;
    let offset = [-4000, -900, -61, -1, 0, 30][pick(6) as usize];
    Some(match kind {
        0 => (
            purchase(
                &format!("Item {y}"),
                1 + pick(15),
                100 + pick(50),
                1 + pick(2),
                t + 600 + pick(5) * 900,
                if pick(2) == 0 {
                    Recurrence::Monthly
                } else {
                    Recurrence::None
                },
            ),
            t,
        ),
        1..=6 => {
            let p = p?;
            let pct = [0, 10, -10, 25, -50, 100, -100][pick(7) as usize];
            (
                commit(p.id, round, 1 + pick(12), pct),
                near_deadline(p, offset),
            )
        }
        7..=9 => {
            let p = p?;
            (
                bid(p.id, round, pick(2) == 0, 50 + pick(90), 1 + pick(20)),
                near_deadline(p, offset),
            )
        }
        10..=12 => {
            let s = if pick(3) == 0 {
                PurchaseStep::Delivered
            } else {
                PurchaseStep::Ordered
            };
            (step(p?.id, round, s), t)
        }
        _ => {
            let p = p?;
            let r = p.round(round as u32);
            let member = match r.commitments.len() {
                0 => ids[pick(ids.len() as u64) as usize],
                n => r.commitments[pick(n as u64) as usize].member,
            };
            let m = if pick(2) == 0 {
                PurchaseMark::Paid
            } else {
                PurchaseMark::PickedUp
            };
            (mark(p.id, round, member, m), t)
        }
    })
}

#[test]
fn the_generator_exercises_every_purchase_kind_counted_and_refused() {
    // One replica, many generated records: every kind counts at least once and the rules
    // refuse some, so the convergence property covers more than refusals.
    let mut town = Town::found(Params::default(), &["alice", "bob", "carol"]);
    let ids: Vec<MemberId> = ["alice", "bob", "carol"].map(|n| town.id(n)).to_vec();
    let mut rng = Rng(3);
    let mut t = T0;
    for i in 0..600 {
        let who = ["alice", "bob", "carol"][i % 3];
        let (what, x, y) = (rng.next() as u8, rng.next() as u8, rng.next() as u16);
        t += 60;
        let state = town.ledger.state().clone();
        let author = town.id(who);
        if let Some((record, time)) = arbitrary(&state, author, &ids, what, x, y, t) {
            let key = town.dev(who, 0);
            if what >= 192 {
                let env = forge(&mut town.ledger, &key, &record, time);
                let _ = town.ledger.ingest([env]);
            } else {
                let _ = town.ledger.author(&key, record, time);
            }
        }
    }
    let state = town.ledger.state().clone();
    let mut counted = std::collections::BTreeSet::new();
    let mut refused = std::collections::BTreeSet::new();
    for e in state
        .log
        .iter()
        .filter(|e| e.kind.as_str().starts_with("purchase"))
    {
        match e.reason {
            None => counted.insert(e.kind.as_str()),
            Some(r) => refused.insert(r.as_str()),
        };
    }
    assert_eq!(
        counted.into_iter().collect::<Vec<_>>(),
        [
            "purchase",
            "purchase_bid",
            "purchase_commit",
            "purchase_mark",
            "purchase_step"
        ]
    );
    assert!(refused.len() >= 6, "{refused:?}");
    assert_eq!(state, town.ledger.derive_from_scratch());
}

#[test]
fn purchase_state_round_trips_through_its_json() {
    // The control socket hands `State` to the CLI as JSON: rounds keyed by number survive.
    let mut town = Town::found(Params::default(), &["alice", "bob"]);
    let p = town.write(
        "alice",
        purchase("Oats", 5, 300, 1, T0 + 86_400, Recurrence::Monthly),
    );
    town.write("bob", commit(p, 0, 5, -10));
    town.write("alice", bid(p, 0, true, 250, 1));
    town.write("alice", step(p, 0, PurchaseStep::Ordered));
    let state = town.ledger.state().clone();
    let back: State =
        serde_json::from_slice(&state.canonical_json().expect("the state serializes"))
            .expect("State from JSON");
    assert_eq!(back, state);
    assert_eq!(back.purchases[&p].rounds[&0].base_total, 1250);
    assert_eq!(back.purchase_totals()["EUR"].local_spending, 1250);
}
