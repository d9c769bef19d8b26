//! Investment pools and emergency relief (docs/RULES.md R8–R9): fixture scripts for every rule and refusal,
//! the relief caps under concurrent approvals, and the record generator the convergence
//! property uses. Amounts are minor units; the renderer prints them with two decimals.

use coop_model::record;
use std::collections::BTreeMap;
use std::fmt::Write as _;

use expect_test::expect;
use proptest::prelude::*;
use sha2::{Digest, Sha256};

use coop_model::record::{money, ReturnPolicy, Urgency};
use coop_model::seal::{self, SealEntropy};
use coop_model::state::{ApplicationStatus, ContributionStatus, ReliefStatus};
use coop_model::*;

use super::concurrency::{every_order, same_refusal_everywhere};
use super::script::check;
use super::support::*;

// --- record builders

pub(crate) fn pool(name: &str, currency: &str, policy: ReturnPolicy, relief: bool) -> Record {
    Record::Pool(record::Pool {
        name: name.into(),
        description: format!("{name}, for the street"),
        currency: currency.into(),
        policy,
        relief,
    })
}

pub(crate) fn contribution(pool: RecordId, amount: i64) -> Record {
    Record::Contribution(record::Contribution { pool, amount })
}

pub(crate) fn contribution_confirm(contribution: RecordId) -> Record {
    Record::ContributionConfirm(record::ContributionConfirm { contribution })
}

pub(crate) fn application(pool: RecordId, amount: i64, title: &str) -> Record {
    Record::Application(record::Application {
        pool,
        title: title.into(),
        amount,
        terms: "Paid back within two years".into(),
    })
}

pub(crate) fn disbursement(application: RecordId, amount: i64) -> Record {
    Record::Disbursement(record::Disbursement {
        application,
        amount,
    })
}

pub(crate) fn pool_return(from: RecordId, amount: i64) -> Record {
    Record::Return(record::Return { from, amount })
}

/// A relief request whose reason is sealed to `to`, with entropy fixed by the reason.
pub(crate) fn relief_request(
    fund: RecordId,
    amount: i64,
    urgency: Urgency,
    reason: &str,
    to: &[MemberId],
) -> Record {
    let e = |tag: &str| -> [u8; 32] { Sha256::digest(format!("{tag}/{reason}")).into() };
    let nonce: [u8; 12] = e("nonce")[..12].try_into().expect("12 bytes");
    let entropy = SealEntropy {
        ephemeral: e("ephemeral"),
        content_key: e("key"),
        nonce,
    };
    Record::ReliefRequest(record::ReliefRequest {
        fund,
        amount,
        urgency,
        reason: seal::seal(reason.as_bytes(), to, &entropy).expect("sealed"),
    })
}

pub(crate) fn relief_approve(request: RecordId) -> Record {
    Record::ReliefApprove(record::ReliefApprove { request })
}

// --- the script verbs and the renderer

/// The record of a script verb of this file, or `None` when the verb is not one of them.
pub(crate) fn parse_verb(
    town: &Town,
    label: &dyn Fn(usize) -> RecordId,
    w: &[String],
) -> Option<Record> {
    let num = |i: usize| -> i64 { w[i].parse().expect("a number") };
    Some(match w[0].as_str() {
        "pool" => pool(
            &w[1],
            &w[2],
            w[3].parse().expect("a return policy"),
            w.get(4).is_some_and(|r| r == "relief"),
        ),
        "contribute" => contribution(label(1), num(2)),
        "confirm_contribution" => contribution_confirm(label(1)),
        "apply" => application(label(1), num(2), &w[3]),
        "disburse" => disbursement(label(1), num(2)),
        "return" => pool_return(label(1), num(2)),
        // Sealed to the founder, or to the members named after the reason.
        "relief" => relief_request(
            label(1),
            num(2),
            w[3].parse().expect("an urgency"),
            &w[4],
            &if w.len() > 5 {
                w[5..].iter().map(|n| town.id(n)).collect::<Vec<_>>()
            } else {
                vec![town.id(&town.founder)]
            },
        ),
        "approve" => relief_approve(label(1)),
        _ => return None,
    })
}

/// Appends pools, applications and relief requests to a rendered state.
pub(crate) fn render(
    o: &mut String,
    town: &Town,
    s: &State,
    rec: &dyn Fn(&RecordId) -> String,
    who: &dyn Fn(&MemberId) -> String,
) {
    let position: BTreeMap<RecordId, usize> = s.log.iter().map(|e| (e.id, e.position)).collect();
    let pos = |r: &RecordId| position.get(r).copied().unwrap_or(usize::MAX);
    let mut pools: Vec<_> = s.pools.values().collect();
    pools.sort_by_key(|p| pos(&p.id));
    if !pools.is_empty() {
        o.push_str("pools\n");
    }
    for p in pools {
        let _ = writeln!(
            o,
            "  {}: {:?} {} {}{} by {}: balance {} = confirmed {} - disbursed {} + returned {} - distributed {}; pledged {}",
            rec(&p.id),
            p.name,
            p.currency,
            p.policy,
            if p.relief { " relief" } else { "" },
            who(&p.creator),
            money(p.balance),
            money(p.confirmed),
            money(p.disbursed),
            money(p.returned),
            money(p.distributed),
            money(p.pledged),
        );
        for (m, c) in &p.contributors {
            let _ = writeln!(
                o,
                "    {} {} bps of {}, owed {}",
                who(m),
                c.share_bps,
                money(c.confirmed),
                money(c.owed)
            );
        }
        let mut ks: Vec<_> = s
            .contributions
            .values()
            .filter(|k| k.pool == p.id)
            .collect();
        ks.sort_by_key(|k| pos(&k.id));
        for k in ks {
            let status = match k.status {
                ContributionStatus::Pledged => "pledged",
                ContributionStatus::Confirmed => "confirmed",
            };
            let _ = writeln!(
                o,
                "    {}: {} {} {status}",
                rec(&k.id),
                who(&k.contributor),
                money(k.amount)
            );
        }
    }
    let mut apps: Vec<_> = s.applications.values().collect();
    apps.sort_by_key(|a| pos(&a.id));
    if !apps.is_empty() {
        o.push_str("applications\n");
    }
    for a in apps {
        let status = match a.status {
            ApplicationStatus::Pending => "pending",
            ApplicationStatus::Allocated => "allocated",
        };
        let _ = writeln!(
            o,
            "  {}: {:?} to {} by {} for {} {status}, allocated {} disbursed {} returned {}",
            rec(&a.id),
            a.title,
            rec(&a.pool),
            who(&a.applicant),
            money(a.amount),
            money(a.allocated),
            money(a.disbursed),
            money(a.returned),
        );
    }
    let mut reqs: Vec<_> = s.relief_requests.values().collect();
    reqs.sort_by_key(|r| pos(&r.id));
    if !reqs.is_empty() {
        o.push_str("relief\n");
    }
    for r in reqs {
        let approvals: Vec<String> = r.approvals.iter().map(|a| who(&a.steward)).collect();
        let sealed_to: Vec<String> = r.sealed_to.iter().map(who).collect();
        // What a steward reads: the reason opens with their identity key, and only theirs.
        let opened = town
            .people
            .values()
            .filter_map(|p| {
                seal::open(&r.sealed_reason, &p.identity)
                    .ok()
                    .map(|t| format!("{} reads {:?}", p.name, String::from_utf8_lossy(&t)))
            })
            .collect::<Vec<_>>()
            .join(", ");
        let _ = writeln!(
            o,
            "  {}: {} asks {} for {} ({}) {}, approvals [{}], sealed to [{}]: {opened}",
            rec(&r.id),
            who(&r.beneficiary),
            rec(&r.fund),
            money(r.amount),
            r.urgency,
            r.status.as_str(),
            approvals.join(" "),
            sealed_to.join(" "),
        );
    }
    let totals = s.relief_totals();
    for (cur, t) in &totals {
        let _ = writeln!(
            o,
            "relief {cur}: open {} for {}, released {} for {}, funds hold {}",
            t.open_requests,
            money(t.open_amount),
            t.released_requests,
            money(t.released_amount),
            money(t.fund_balance)
        );
    }
}

// --- pools

#[test]
fn pledges_count_once_a_treasurer_confirms_them_and_shares_sum_to_the_whole() {
    // Three equal contributions: 3,334 + 3,333 + 3,333 bps (the spare point to the largest
    // remainder, here a tie, broken by the lower member id). A pledge is not in the balance
    // until confirmed; a treasurer's own money needs another treasurer, and there is none.
    check(
        r#"
        community alice bob carol dave
        p1 = bob: pool "Solar roof" EUR reinvest
        k1 = bob: contribute p1 10000
        k2 = carol: contribute p1 10000
        k3 = dave: contribute p1 10000
        k4 = alice: contribute p1 5000
        k5 = dave: contribute p1 99
        alice: confirm_contribution k1
        alice: confirm_contribution k2
        alice: confirm_contribution k3
        alice: confirm_contribution k1
        alice!: confirm_contribution k1
        alice: confirm_contribution k4
        bob: confirm_contribution k5
        bob!: confirm_contribution k5
        "#,
        expect![[r#"
            members
              alice admitted: time +0 (+0 -0), sp 100/100
              bob admitted: time +0 (+0 -0), sp 100/100
              carol admitted: time +0 (+0 -0), sp 100/100
              dave admitted: time +0 (+0 -0), sp 100/100
            pools
              p1: "Solar roof" EUR reinvest by bob: balance 300.00 = confirmed 300.00 - disbursed 0.00 + returned 0.00 - distributed 0.00; pledged 50.99
                bob 3334 bps of 100.00, owed 0.00
                carol 3333 bps of 100.00, owed 0.00
                dave 3333 bps of 100.00, owed 0.00
                k1: bob 100.00 confirmed
                k2: carol 100.00 confirmed
                k3: dave 100.00 confirmed
                k4: alice 50.00 pledged
                k5: dave 0.99 pledged
            refused
              alice!: confirm_contribution k1 => already_settled: contribution already confirmed
              bob!: confirm_contribution k5 => not_allowed: only treasurers confirm contributions
              alice: confirm_contribution k1 => already_settled: contribution already confirmed (not written)
              alice: confirm_contribution k4 => not_allowed: a treasurer does not confirm their own contribution (not written)
              bob: confirm_contribution k5 => not_allowed: only treasurers confirm contributions (not written)
            counted 16 refused 2
        "#]],
    );
}

#[test]
fn contributions_and_applications_need_a_counted_pool_of_the_right_kind() {
    // Only a treasurer opens a relief fund; money goes to pools (not to other records);
    // relief funds take no applications; a currency is three upper-case letters (the gate
    // refuses anything else, whoever writes it).
    check(
        r#"
        community alice bob
        f1 = alice: pool "Relief" EUR reinvest relief
        bob: pool "My relief" EUR reinvest relief
        bob!: pool "My relief" EUR reinvest relief
        p1 = bob: pool "Garden" EUR distribute
        t1 = bob: attest alice 60 "weeding"
        bob: contribute t1 100
        bob!: contribute t1 100
        bob: apply f1 10000 "Boiler"
        bob!: apply f1 10000 "Boiler"
        a1 = bob: apply p1 10000 "Raised beds"
        bob!: pool "Bad" eur reinvest
        "#,
        expect![[r#"
            members
              alice admitted: time +0 (+0 -0), sp 100/100
              bob admitted: time +0 (+0 -0), sp 100/100
            attestations
              t1: bob -> alice 60 min "weeding" 2026-11-01 pending
            pools
              f1: "Relief" EUR reinvest relief by alice: balance 0.00 = confirmed 0.00 - disbursed 0.00 + returned 0.00 - distributed 0.00; pledged 0.00
              p1: "Garden" EUR distribute by bob: balance 0.00 = confirmed 0.00 - disbursed 0.00 + returned 0.00 - distributed 0.00; pledged 0.00
            applications
              a1: "Raised beds" to p1 by bob for 100.00 pending, allocated 0.00 disbursed 0.00 returned 0.00
            relief EUR: open 0 for 0.00, released 0 for 0.00, funds hold 0.00
            refused
              bob!: pool "My relief" EUR reinvest relief => not_allowed: only treasurers open relief funds
              bob!: contribute t1 100 => unknown_reference: t1 is not a counted pool
              bob!: apply f1 10000 "Boiler" => not_allowed: a relief fund takes relief requests, not applications
              bob: pool "My relief" EUR reinvest relief => not_allowed: only treasurers open relief funds (not written)
              bob: contribute t1 100 => unknown_reference: t1 is not a counted pool (not written)
              bob: apply f1 10000 "Boiler" => not_allowed: a relief fund takes relief requests, not applications (not written)
              bob!: pool "Bad" eur reinvest => invalid_record: currency "eur" is not three upper-case letters (refused by the gate)
            counted 7 refused 3
        "#]],
    );
}

#[test]
fn disbursements_and_returns_need_an_allocation_and_a_treasurer() {
    // Allocation is a governance decision (unit-tested in derive/pools.rs until decisions
    // land): an application that was never allocated gets no money and no returns.
    check(
        r#"
        community alice bob carol
        p1 = bob: pool "Repair cafe" EUR reinvest
        k1 = bob: contribute p1 50000
        alice: confirm_contribution k1
        a1 = carol: apply p1 20000 "Workbench"
        alice: disburse a1 20000
        alice!: disburse a1 20000
        bob!: disburse a1 100
        alice!: return a1 100
        carol!: return p1 100
        "#,
        expect![[r#"
            members
              alice admitted: time +0 (+0 -0), sp 100/100
              bob admitted: time +0 (+0 -0), sp 100/100
              carol admitted: time +0 (+0 -0), sp 100/100
            pools
              p1: "Repair cafe" EUR reinvest by bob: balance 500.00 = confirmed 500.00 - disbursed 0.00 + returned 0.00 - distributed 0.00; pledged 0.00
                bob 10000 bps of 500.00, owed 0.00
                k1: bob 500.00 confirmed
            applications
              a1: "Workbench" to p1 by carol for 200.00 pending, allocated 0.00 disbursed 0.00 returned 0.00
            refused
              alice!: disburse a1 20000 => not_allocated: no decision has allocated this application
              bob!: disburse a1 100 => not_allowed: only treasurers disburse
              alice!: return a1 100 => not_allocated: no decision has allocated this application
              carol!: return p1 100 => not_allowed: only treasurers record returns
              alice: disburse a1 20000 => not_allocated: no decision has allocated this application (not written)
            counted 9 refused 4
        "#]],
    );
}

#[test]
fn returns_follow_the_pool_policy_split_pro_rata_by_largest_remainder() {
    // bob 300.00 and carol 100.00 hold 7,500 and 2,500 bps. A return of 10.01:
    // reinvest keeps it all; distribute owes 7.51 to bob and 2.50 to carol (7.5075 and
    // 2.5025: floors 7.50 and 2.50, the spare cent to the larger remainder); hybrid owes
    // half rounded down (5.00: 3.75 and 1.25) and keeps 5.01. With no confirmed
    // contributor, a return stays in the pool whatever the policy.
    check(
        r#"
        community alice bob carol
        r1 = bob: pool "Reinvest" EUR reinvest
        d1 = bob: pool "Distribute" EUR distribute
        h1 = bob: pool "Hybrid" EUR hybrid
        e1 = bob: pool "Empty" EUR distribute
        kr1 = bob: contribute r1 30000
        kr2 = carol: contribute r1 10000
        kd1 = bob: contribute d1 30000
        kd2 = carol: contribute d1 10000
        kh1 = bob: contribute h1 30000
        kh2 = carol: contribute h1 10000
        alice: confirm_contribution kr1
        alice: confirm_contribution kr2
        alice: confirm_contribution kd1
        alice: confirm_contribution kd2
        alice: confirm_contribution kh1
        alice: confirm_contribution kh2
        alice: return r1 1001
        alice: return d1 1001
        alice: return h1 1001
        alice: return e1 1001
        alice: return d1 1
        "#,
        expect![[r#"
            members
              alice admitted: time +0 (+0 -0), sp 100/100
              bob admitted: time +0 (+0 -0), sp 100/100
              carol admitted: time +0 (+0 -0), sp 100/100
            pools
              r1: "Reinvest" EUR reinvest by bob: balance 410.01 = confirmed 400.00 - disbursed 0.00 + returned 10.01 - distributed 0.00; pledged 0.00
                bob 7500 bps of 300.00, owed 0.00
                carol 2500 bps of 100.00, owed 0.00
                kr1: bob 300.00 confirmed
                kr2: carol 100.00 confirmed
              d1: "Distribute" EUR distribute by bob: balance 400.00 = confirmed 400.00 - disbursed 0.00 + returned 10.02 - distributed 10.02; pledged 0.00
                bob 7500 bps of 300.00, owed 7.52
                carol 2500 bps of 100.00, owed 2.50
                kd1: bob 300.00 confirmed
                kd2: carol 100.00 confirmed
              h1: "Hybrid" EUR hybrid by bob: balance 405.01 = confirmed 400.00 - disbursed 0.00 + returned 10.01 - distributed 5.00; pledged 0.00
                bob 7500 bps of 300.00, owed 3.75
                carol 2500 bps of 100.00, owed 1.25
                kh1: bob 300.00 confirmed
                kh2: carol 100.00 confirmed
              e1: "Empty" EUR distribute by bob: balance 10.01 = confirmed 0.00 - disbursed 0.00 + returned 10.01 - distributed 0.00; pledged 0.00
            counted 26 refused 0
        "#]],
    );
}

#[test]
fn an_allocation_by_decision_opens_disbursements_within_allocation_and_balance() {
    // A decision allocates the 450.00 carol asked for; the pool holds 400.00. Treasurers
    // disburse up to the balance, then up to the allocation once money comes back (hybrid:
    // 100.00 of the 200.01 returned is owed to bob and carol 3:1, 100.01 stays). A second
    // decision on the same application can be opened while it is pending, but takes no
    // effect once the first allocated it; a third cannot even be opened.
    check(
        r#"
        community alice bob carol
        p1 = bob: pool "Repair cafe" EUR hybrid
        k1 = bob: contribute p1 30000
        k2 = carol: contribute p1 10000
        alice: confirm_contribution k1
        alice: confirm_contribution k2
        a1 = carol: apply p1 45000 "Workbench"
        alice!: disburse a1 100
        d1 = alice: decide allocate a1
        d2 = bob: decide allocate a1
        alice: vote d1 yes
        bob: vote d1 yes
        bob: vote d2 yes
        wait 1d
        alice: tally d1
        bob: tally d2
        alice!: decide allocate a1
        alice!: disburse a1 40001
        alice: disburse a1 30000
        alice!: disburse a1 15001
        alice: disburse a1 10000
        alice!: disburse a1 5000
        alice: return a1 20001
        alice: disburse a1 5000
        alice!: disburse a1 1
        "#,
        expect![[r#"
            members
              alice admitted: time +0 (+0 -0), sp 100/100
              bob admitted: time +0 (+0 -0), sp 100/100
              carol admitted: time +0 (+0 -0), sp 100/100
            decisions
              d1: "allocate a1" by alice passed (yes 2 no 0 abstain 0 of 3 eligible)
              d2: "allocate a1" by bob passed (yes 1 no 0 abstain 0 of 3 eligible), not applied: application already allocated
            pools
              p1: "Repair cafe" EUR hybrid by bob: balance 50.01 = confirmed 400.00 - disbursed 450.00 + returned 200.01 - distributed 100.00; pledged 0.00
                bob 7500 bps of 300.00, owed 75.00
                carol 2500 bps of 100.00, owed 25.00
                k1: bob 300.00 confirmed
                k2: carol 100.00 confirmed
            applications
              a1: "Workbench" to p1 by carol for 450.00 allocated, allocated 450.00 disbursed 450.00 returned 200.01
            refused
              alice!: disburse a1 100 => not_allocated: no decision has allocated this application
              alice!: decide allocate a1 => already_settled: application already allocated
              alice!: disburse a1 40001 => insufficient_funds: 400.01 asked, the pool holds 400.00
              alice!: disburse a1 15001 => over_allocation: 150.01 asked, 150.00 of the allocation left
              alice!: disburse a1 5000 => insufficient_funds: 50.00 asked, the pool holds 0.00
              alice!: disburse a1 1 => over_allocation: 0.01 asked, 0.00 of the allocation left
            counted 22 refused 6
        "#]],
    );
}

// --- relief

#[test]
fn two_stewards_release_together_once_a_decision_makes_a_second_one() {
    // relief_approvals stays 2: the founder's approval alone waits; bob, made a steward by
    // decision, brings the second and releases. The reason, sealed to both, opens for both.
    // Once his role is revoked, bob approves nothing more.
    check(
        r#"
        community alice bob carol dave
        f1 = alice: pool "Relief" EUR reinvest relief
        k1 = dave: contribute f1 100000
        alice: confirm_contribution k1
        r0 = carol: relief f1 10000 low "Before bob" alice
        bob!: approve r0
        d1 = alice: decide grant bob steward
        alice: vote d1 yes
        dave: vote d1 yes
        wait 1d
        alice: tally d1
        r1 = carol: relief f1 30000 high "Roof leak" alice bob
        alice: approve r1
        bob: approve r1
        d2 = alice: decide revoke bob steward
        alice: vote d2 yes
        dave: vote d2 yes
        wait 1d
        alice: tally d2
        alice: approve r0
        bob!: approve r0
        "#,
        expect![[r#"
            members
              alice admitted: time +0 (+0 -0), sp 100/100
              bob admitted: time +0 (+0 -0), sp 100/100
              carol admitted: time +0 (+0 -0), sp 100/100
              dave admitted: time +0 (+0 -0), sp 100/100
            decisions
              d1: "grant bob steward" by alice passed (yes 2 no 0 abstain 0 of 4 eligible)
              d2: "revoke bob steward" by alice passed (yes 2 no 0 abstain 0 of 4 eligible)
            pools
              f1: "Relief" EUR reinvest relief by alice: balance 700.00 = confirmed 1000.00 - disbursed 300.00 + returned 0.00 - distributed 0.00; pledged 0.00
                dave 10000 bps of 1000.00, owed 0.00
                k1: dave 1000.00 confirmed
            relief
              r0: carol asks f1 for 100.00 (low) pending, approvals [alice], sealed to [alice]: alice reads "Before bob"
              r1: carol asks f1 for 300.00 (high) released, approvals [alice bob], sealed to [bob alice]: alice reads "Roof leak", bob reads "Roof leak"
            relief EUR: open 1 for 100.00, released 1 for 300.00, funds hold 700.00
            refused
              bob!: approve r0 => not_allowed: only stewards approve relief
              bob!: approve r0 => not_allowed: only stewards approve relief
            counted 23 refused 2
        "#]],
    );
}

#[test]
fn relief_is_released_by_enough_stewards_within_the_fund() {
    // One steward approval releases (relief_approvals=1). The founder is the only steward:
    // they cannot approve their own request, nor twice; a fund that does not hold the
    // amount refuses the release, which a later approval may retry once money arrives.
    check(
        r#"
        param relief_approvals=1
        community alice bob carol
        f1 = alice: pool "Relief" EUR reinvest relief
        p1 = alice: pool "Garden" EUR reinvest
        k1 = carol: contribute f1 40000
        alice: confirm_contribution k1
        bob: relief p1 1000 low "Wrong pool"
        bob!: relief p1 1000 low "Wrong pool"
        r1 = bob: relief f1 30000 high "The boiler broke in January"
        r2 = carol: relief f1 20000 medium "Lost my job"
        bob: approve r1
        bob!: approve r1
        alice: approve r1
        alice: approve r1
        alice!: approve r1
        alice: approve r2
        alice!: approve r2
        k2 = bob: contribute f1 10000
        alice: confirm_contribution k2
        alice: approve r2
        r3 = alice: relief f1 100 low "Founder's own"
        alice!: approve r3
        "#,
        expect![[r#"
            members
              alice admitted: time +0 (+0 -0), sp 100/100
              bob admitted: time +0 (+0 -0), sp 100/100
              carol admitted: time +0 (+0 -0), sp 100/100
            pools
              f1: "Relief" EUR reinvest relief by alice: balance 0.00 = confirmed 500.00 - disbursed 500.00 + returned 0.00 - distributed 0.00; pledged 0.00
                bob 2000 bps of 100.00, owed 0.00
                carol 8000 bps of 400.00, owed 0.00
                k1: carol 400.00 confirmed
                k2: bob 100.00 confirmed
              p1: "Garden" EUR reinvest by alice: balance 0.00 = confirmed 0.00 - disbursed 0.00 + returned 0.00 - distributed 0.00; pledged 0.00
            relief
              r1: bob asks f1 for 300.00 (high) released, approvals [alice], sealed to [alice]: alice reads "The boiler broke in January"
              r2: carol asks f1 for 200.00 (medium) released, approvals [alice], sealed to [alice]: alice reads "Lost my job"
              r3: alice asks f1 for 1.00 (low) pending, approvals [], sealed to [alice]: alice reads "Founder's own"
            relief EUR: open 1 for 1.00, released 2 for 500.00, funds hold 0.00
            refused
              bob!: relief p1 1000 low "Wrong pool" => not_allowed: relief requests go to relief funds
              bob!: approve r1 => not_allowed: only stewards approve relief
              alice!: approve r1 => already_settled: request already released
              alice!: approve r2 => insufficient_funds: 200.00 asked, the fund holds 100.00
              alice!: approve r3 => not_allowed: a steward does not approve their own request
              bob: relief p1 1000 low "Wrong pool" => not_allowed: relief requests go to relief funds (not written)
              bob: approve r1 => not_allowed: only stewards approve relief (not written)
              alice: approve r1 => already_settled: request already released (not written)
              alice: approve r2 => insufficient_funds: 200.00 asked, the fund holds 100.00 (not written)
            counted 16 refused 5
        "#]],
    );
}

#[test]
fn two_approvals_are_two_different_stewards() {
    // With the default of two approvals and one steward, nothing is released yet: the same
    // steward cannot approve twice. (A second steward comes with role grants by decision.)
    check(
        r#"
        community alice bob
        f1 = alice: pool "Relief" EUR reinvest relief
        k1 = bob: contribute f1 40000
        alice: confirm_contribution k1
        r1 = bob: relief f1 30000 high "Rent arrears"
        alice: approve r1
        alice!: approve r1
        "#,
        expect![[r#"
            members
              alice admitted: time +0 (+0 -0), sp 100/100
              bob admitted: time +0 (+0 -0), sp 100/100
            pools
              f1: "Relief" EUR reinvest relief by alice: balance 400.00 = confirmed 400.00 - disbursed 0.00 + returned 0.00 - distributed 0.00; pledged 0.00
                bob 10000 bps of 400.00, owed 0.00
                k1: bob 400.00 confirmed
            relief
              r1: bob asks f1 for 300.00 (high) pending, approvals [alice], sealed to [alice]: alice reads "Rent arrears"
            relief EUR: open 1 for 300.00, released 0 for 0.00, funds hold 400.00
            refused
              alice!: approve r1 => redundant: already approved
            counted 8 refused 1
        "#]],
    );
}

#[test]
fn relief_per_person_is_capped_within_the_period() {
    // Cap 500.00 per 30 days. bob receives 300.00, then asks 200.01: refused for the cap
    // until a full period after the first release; a request above the cap is refused as
    // it is written. The cap is per person: carol is not affected by bob's relief.
    check(
        r#"
        param relief_approvals=1
        param relief_max_per_person=50000
        param relief_period_days=30
        community alice bob carol
        f1 = alice: pool "Relief" EUR reinvest relief
        k1 = carol: contribute f1 200000
        alice: confirm_contribution k1
        bob: relief f1 50001 high "Too much at once"
        bob!: relief f1 50001 high "Too much at once"
        r1 = bob: relief f1 30000 high "Heating repair"
        alice: approve r1
        r2 = bob: relief f1 20001 high "Heating again"
        alice: approve r2
        alice!: approve r2
        r3 = carol: relief f1 50000 medium "Flooded kitchen"
        alice: approve r3
        wait 30d
        alice: approve r2
        "#,
        expect![[r#"
            members
              alice admitted: time +0 (+0 -0), sp 100/100
              bob admitted: time +0 (+0 -0), sp 100/100
              carol admitted: time +0 (+0 -0), sp 100/100
            pools
              f1: "Relief" EUR reinvest relief by alice: balance 999.99 = confirmed 2000.00 - disbursed 1000.01 + returned 0.00 - distributed 0.00; pledged 0.00
                carol 10000 bps of 2000.00, owed 0.00
                k1: carol 2000.00 confirmed
            relief
              r1: bob asks f1 for 300.00 (high) released, approvals [alice], sealed to [alice]: alice reads "Heating repair"
              r2: bob asks f1 for 200.01 (high) released, approvals [alice], sealed to [alice]: alice reads "Heating again"
              r3: carol asks f1 for 500.00 (medium) released, approvals [alice], sealed to [alice]: alice reads "Flooded kitchen"
            relief EUR: open 0 for 0.00, released 3 for 1000.01, funds hold 999.99
            refused
              bob!: relief f1 50001 high "Too much at once" => over_relief_cap: 500.01 asked, at most 500.00 per person per period
              alice!: approve r2 => over_relief_cap: 300.00 received within 30 days, 200.01 more would exceed 500.00
              bob: relief f1 50001 high "Too much at once" => over_relief_cap: 500.01 asked, at most 500.00 per person per period (not written)
              alice: approve r2 => over_relief_cap: 300.00 received within 30 days, 200.01 more would exceed 500.00 (not written)
            counted 14 refused 2
        "#]],
    );
}

// --- concurrency

/// A community with a funded relief fund and bob's two requests, and two replicas on which
/// alice approves one request each while they are apart.
fn concurrent_approvals(
    params: Params,
    fund: i64,
    asks: [i64; 2],
) -> (Ledger, [RecordId; 2], [Envelope; 2]) {
    let mut town = Town::found(params, &["alice", "bob", "carol"]);
    town.add_device("alice", 1);
    let f = town.write("alice", pool("Relief", "EUR", ReturnPolicy::Reinvest, true));
    let k = town.write("carol", contribution(f, fund));
    town.write("alice", contribution_confirm(k));
    let founder = [town.id("alice")];
    let r1 = town.write(
        "bob",
        relief_request(f, asks[0], Urgency::High, "Boiler", &founder),
    );
    let r2 = town.write(
        "bob",
        relief_request(f, asks[1], Urgency::High, "Roof", &founder),
    );
    let base = town.replica();
    let (mut one, mut two) = (town.replica(), town.replica());
    let x = one
        .author(&town.dev("alice", 0), relief_approve(r1), T0 + 10_000)
        .expect("fits on its own");
    let y = two
        .author(&town.dev("alice", 1), relief_approve(r2), T0 + 10_000)
        .expect("fits on its own");
    (base, [r1, r2], [x, y])
}

#[test]
fn concurrent_releases_that_cross_the_cap_refuse_the_same_one_everywhere() {
    // Cap 500.00; bob's requests of 300.00 and 250.00 are each approved on a different
    // device of the one steward while apart. Together they cross the cap: every replica,
    // whatever the delivery order, refuses the later one in the total order.
    let params = Params {
        relief_approvals: 1,
        relief_max_per_person: 50_000,
        ..Params::default()
    };
    let (base, [r1, r2], [x, y]) = concurrent_approvals(params, 100_000, [30_000, 25_000]);
    let mut replicas = every_order(&base, std::slice::from_ref(&x), std::slice::from_ref(&y));
    let refused =
        same_refusal_everywhere(&mut replicas, rid(&x), rid(&y), RejectReason::OverReliefCap);
    let state = replicas[0].state().clone();
    let (released, pending) = if refused == rid(&x) {
        (r2, r1)
    } else {
        (r1, r2)
    };
    assert_eq!(
        state.relief_requests[&released].status,
        ReliefStatus::Released
    );
    assert_eq!(
        state.relief_requests[&pending].status,
        ReliefStatus::Pending
    );
    let fund = state.relief_requests[&released].fund;
    assert_eq!(
        state.pools[&fund].balance,
        100_000 - state.relief_requests[&released].amount
    );
}

#[test]
fn concurrent_releases_beyond_the_fund_refuse_the_same_one_everywhere() {
    // The fund holds 400.00; two releases of 250.00 each fit alone, not together.
    let params = Params {
        relief_approvals: 1,
        ..Params::default()
    };
    let (base, _, [x, y]) = concurrent_approvals(params, 40_000, [25_000, 25_000]);
    let mut replicas = every_order(&base, std::slice::from_ref(&x), std::slice::from_ref(&y));
    same_refusal_everywhere(
        &mut replicas,
        rid(&x),
        rid(&y),
        RejectReason::InsufficientFunds,
    );
    let state = replicas[0].state();
    assert_eq!(state.relief_totals()["EUR"].fund_balance, 15_000);
}

// --- property tests

/// A pool or relief record for the convergence property (`convergence::Step::Pools`),
/// referring to what replica's `state` holds; `None` when there is nothing to refer to.
/// Many are refused (no role, no allocation, no funds, over the cap): on purpose.
pub(crate) fn generated(state: &State, what: u8, x: u8, y: u16) -> Option<Record> {
    let pick = |ids: Vec<RecordId>| -> Option<RecordId> {
        (!ids.is_empty()).then(|| ids[x as usize % ids.len()])
    };
    let pools = || pick(state.pools.keys().copied().collect());
    let amount = 1 + i64::from(y % 5_000) * 13;
    Some(match what % 9 {
        0 => {
            let policy = [
                ReturnPolicy::Reinvest,
                ReturnPolicy::Distribute,
                ReturnPolicy::Hybrid,
            ][y as usize % 3];
            pool(&format!("Pool {y}"), "EUR", policy, x.is_multiple_of(2))
        }
        1 | 2 => contribution(pools()?, amount),
        3 => contribution_confirm(pick(state.contributions.keys().copied().collect())?),
        4 => application(pools()?, amount, &format!("Project {y}")),
        5 => disbursement(pick(state.applications.keys().copied().collect())?, amount),
        6 => {
            let from: Vec<RecordId> = state
                .applications
                .keys()
                .chain(state.pools.keys())
                .copied()
                .collect();
            pool_return(pick(from)?, amount)
        }
        7 => {
            let stewards = state.stewards();
            let urgency = [Urgency::Low, Urgency::Medium, Urgency::High][y as usize % 3];
            relief_request(
                pools()?,
                amount * 2,
                urgency,
                &format!("Reason {y}"),
                &stewards,
            )
        }
        _ => relief_approve(pick(state.relief_requests.keys().copied().collect())?),
    })
}

/// One write of the relief property: replica `at` (alice's device `at`) approves a request
/// or confirms a pledge, at a claimed time spread over about two years.
#[derive(Debug, Clone)]
struct ReliefOp {
    at: usize,
    approve: bool,
    pick: usize,
    days: i64,
    force: bool,
}

fn relief_op() -> impl Strategy<Value = ReliefOp> {
    (
        0usize..3,
        prop::bool::weighted(0.7),
        0usize..16,
        0i64..730,
        prop::bool::weighted(0.3),
    )
        .prop_map(|(at, approve, pick, days, force)| ReliefOp {
            at,
            approve,
            pick,
            days,
            force,
        })
}

/// Three replicas apart: the steward approves relief and confirms pledges on each. Fed to
/// fresh replicas in shuffled orders, every replica derives the same state, and the
/// derived releases keep to the fund and the cap: within any window of a period starting
/// at a release, a beneficiary receives at most the cap; no fund goes below zero.
fn relief_converges(ops: &[ReliefOp], seed: u64) -> Result<(), TestCaseError> {
    let params = Params {
        relief_approvals: 1,
        relief_max_per_person: 25_000,
        relief_period_days: 180,
        ..Params::default()
    };
    let mut town = Town::found(params.clone(), &["alice", "bob", "carol", "dave"]);
    town.add_device("alice", 1);
    town.add_device("alice", 2);
    let f = town.write("alice", pool("Relief", "EUR", ReturnPolicy::Reinvest, true));
    let k = town.write("dave", contribution(f, 40_000));
    town.write("alice", contribution_confirm(k));
    let pledges: Vec<RecordId> = (0..3)
        .map(|i| town.write("dave", contribution(f, 10_000 + i)))
        .collect();
    let founder = [town.id("alice")];
    let mut requests = Vec::new();
    for (i, who) in ["bob", "carol", "bob", "carol", "bob"].iter().enumerate() {
        let amount = 8_000 + 3_000 * i as i64;
        let reason = format!("Need {i}");
        requests.push(town.write(
            who,
            relief_request(f, amount, Urgency::High, &reason, &founder),
        ));
    }
    let base = town.replica();
    let mut replicas = [town.replica(), town.replica(), town.replica()];
    let mut written: Vec<Envelope> = Vec::new();
    for op in ops {
        let key = town.dev("alice", op.at);
        let record = if op.approve {
            relief_approve(requests[op.pick % requests.len()])
        } else {
            contribution_confirm(pledges[op.pick % pledges.len()])
        };
        let t = T0 + 100_000 + op.days * 86_400;
        let l = &mut replicas[op.at];
        let env = if op.force {
            let env = forge(l, &key, &record, t);
            let out = l.ingest([env.clone()]);
            prop_assert!(out.rejected.is_empty(), "{:?}", out.rejected);
            Some(env)
        } else {
            l.author(&key, record, t).ok()
        };
        written.extend(env);
    }
    let mut digests = Vec::new();
    for round in 0..4u64 {
        let mut order = written.clone();
        Rng(seed ^ round).shuffle(&mut order);
        let mut l = replica_of(&base);
        for env in order {
            let out = l.ingest([env]);
            prop_assert!(out.rejected.is_empty(), "{:?}", out.rejected);
        }
        prop_assert_eq!(l.pending_len(), 0);
        let fresh = l.derive_from_scratch();
        prop_assert_eq!(l.state(), &fresh);
        digests.push(l.state().canonical_json().expect("the state serializes"));
        if round == 0 {
            let s = l.state();
            let period = params.relief_period_days * 86_400;
            prop_assert!(s.pools.values().all(|p| p.balance >= 0));
            let released: Vec<_> = s
                .relief_requests
                .values()
                .filter(|r| r.status == ReliefStatus::Released)
                .collect();
            for r in &released {
                let t = r.released_at.expect("a release time");
                let window: i64 = released
                    .iter()
                    .filter(|o| o.beneficiary == r.beneficiary)
                    .filter(|o| o.released_at.is_some_and(|u| u >= t && u < t + period))
                    .map(|o| o.amount)
                    .sum();
                prop_assert!(window <= params.relief_max_per_person, "{window}");
            }
        }
    }
    prop_assert!(digests.windows(2).all(|w| w[0] == w[1]), "orders differ");
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, ..ProptestConfig::default() })]

    #[test]
    fn relief_releases_converge_and_keep_to_fund_and_cap(
        ops in prop::collection::vec(relief_op(), 1..14),
        seed in any::<u64>(),
    ) {
        relief_converges(&ops, seed)?;
    }
}
