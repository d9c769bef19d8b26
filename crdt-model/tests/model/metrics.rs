//! Privacy (docs/RULES.md R10) and metrics (docs/RULES.md R11): visibility fixtures, who sees which record, the metrics
//! of a scripted community, exports whose receipts verify on their own, and visibility
//! settings written concurrently from two devices.

use coop_model::record;
use std::collections::BTreeMap;
use std::fmt::Write as _;

use coop_model::export::export;
use coop_model::metrics::Metrics;
use coop_model::record::Visibility;
use coop_model::*;
use expect_test::expect;

use super::script::{check, run};
use super::support::*;

/// A visibility record for the convergence property test.
pub(crate) fn arbitrary_record(y: u16) -> Record {
    let level = [Visibility::Public, Visibility::Members, Visibility::Private][y as usize % 3];
    Record::Visibility(record::VisibilitySetting { level })
}

/// The metrics of `state` at noon of `at` (from `since`), as text, records named by `label`.
pub(crate) fn render(
    state: &State,
    at: Day,
    since: Option<Day>,
    label: &dyn Fn(&RecordId) -> String,
) -> String {
    let m = Metrics::compute(state, at.0 as i64 * 86_400 + 43_200, since);
    let bp = |x: Option<i64>| x.map_or("-".to_string(), |x| format!("{x} bp"));
    let mut o = String::new();
    let _ = write!(o, "metrics on {at}");
    if let Some(s) = since {
        let _ = write!(o, " since {s}");
    }
    o.push_str("\n  support\n");
    for p in &m.support {
        let _ = writeln!(
            o,
            "    {} {:?} {}: {} SP active, {} allocated by {} supporters",
            label(&p.id),
            p.title,
            p.status,
            p.active_points,
            p.allocated_points,
            p.supporters
        );
        let periods = |ps: &[coop_model::metrics::Period]| -> String {
            ps.iter()
                .map(|p| format!("{} +{}", p.start, p.points))
                .collect::<Vec<_>>()
                .join(", ")
        };
        let _ = writeln!(o, "      days  {}", periods(&p.by_day));
        let _ = writeln!(o, "      weeks {}", periods(&p.by_week));
    }
    let a = &m.aid;
    let _ = writeln!(
        o,
        "  aid: {} requests, {} completed, {} open, {} matched, {} cancelled; completion {}",
        a.requests,
        a.completed,
        a.open,
        a.matched,
        a.cancelled,
        bp(a.completion_bp)
    );
    let t = &m.time;
    let buckets: Vec<String> = t
        .histogram
        .iter()
        .map(|b| format!("[{},{}) {}", b.from_minutes, b.to_minutes, b.members))
        .collect();
    let _ = writeln!(
        o,
        "  time: {} members; {}; gini of balance-floor {}, of provided {} (floor {})",
        t.members,
        buckets.join(" "),
        bp(t.balance_gini_bp),
        bp(t.provided_gini_bp),
        t.floor_minutes
    );
    let months: Vec<String> = m
        .hours_by_month
        .iter()
        .map(|h| format!("{} {} min ({})", h.month, h.minutes, h.exchanges))
        .collect();
    let _ = writeln!(o, "  hours by month: {}", months.join(", "));
    let p = &m.participation;
    let _ = writeln!(
        o,
        "  participation: {} of {} active in {} days ({})",
        p.active,
        p.admitted,
        p.window_days,
        bp(p.share_bp)
    );
    let _ = writeln!(
        o,
        "  purchases {}, pools {}, relief {}",
        if m.purchases.is_some() { "yes" } else { "-" },
        if m.pools.is_some() { "yes" } else { "-" },
        if m.relief.is_some() { "yes" } else { "-" }
    );
    let money = |v: &[coop_model::metrics::Money]| -> String {
        v.iter()
            .map(|x| format!("{} {}", x.minor, x.currency))
            .collect::<Vec<_>>()
            .join(", ")
    };
    if let Some(pm) = &m.purchases {
        let _ = writeln!(
            o,
            "  purchases: {} funded rounds, savings [{}], spending [{}], local [{}] ({})",
            pm.funded,
            money(&pm.savings),
            money(&pm.spending),
            money(&pm.local_spending),
            bp(pm.local_share_bp)
        );
    }
    o
}

// --- visibility

#[test]
fn visibility_defaults_to_members_the_latest_setting_wins_and_only_members_write_one() {
    check(
        r#"
        community alice bob carol
        join erin
        bob: visibility private
        bob: visibility public
        carol: visibility private
        carol: visibility private
        erin: visibility public
        erin!: visibility public
        "#,
        expect![[r#"
            members
              alice admitted: time +0 (+0 -0), sp 100/100
              bob admitted: time +0 (+0 -0), sp 100/100, visibility public
              carol admitted: time +0 (+0 -0), sp 100/100, visibility private
              erin pending: time +0 (+0 -0), sp 0/0
            refused
              erin: visibility public => not_a_member: member erin is not admitted in this record's past (not written)
              erin!: visibility public => not_a_member: the author is not an admitted member in this change's causal past (refused by the gate)
            counted 10 refused 0
        "#]],
    );
}

#[test]
fn who_may_see_whom() {
    let mut town = Town::found(Params::default(), &["alice", "bob", "carol", "dave"]);
    town.newcomer("erin");
    town.write(
        "bob",
        Record::Visibility(record::VisibilitySetting {
            level: Visibility::Public,
        }),
    );
    town.write(
        "carol",
        Record::Visibility(record::VisibilitySetting {
            level: Visibility::Private,
        }),
    );
    let s = town.ledger.state().clone();
    let [alice, bob, carol, dave, erin] =
        ["alice", "bob", "carol", "dave", "erin"].map(|n| town.id(n));
    let stranger = Person::new("stranger").id();
    let sees = |viewer: Option<&MemberId>| -> String {
        [
            ("alice", alice),
            ("bob", bob),
            ("carol", carol),
            ("dave", dave),
            ("erin", erin),
        ]
        .iter()
        .map(|(n, m)| {
            if s.can_see(viewer, m) {
                n.to_string()
            } else {
                "-".into()
            }
        })
        .collect::<Vec<_>>()
        .join(" ")
    };
    let table: String = [
        ("alice", Some(&alice)),
        ("carol", Some(&carol)),
        ("erin (pending)", Some(&erin)),
        ("stranger", Some(&stranger)),
        ("nobody", None),
    ]
    .iter()
    .map(|(n, v)| format!("{n}: {}\n", sees(*v)))
    .collect();
    // alice, dave and erin never wrote a setting (members); bob is public; carol private.
    // A pending member and a key that never joined see only public histories (and their own).
    expect![[r#"
        alice: alice bob - dave erin
        carol: alice bob carol dave erin
        erin (pending): - bob - - erin
        stranger: - bob - - -
        nobody: - bob - - -
    "#]]
    .assert_eq(&table);
    assert_eq!(s.visibility_of(&alice), Visibility::Members);
    assert_eq!(s.visibility_of(&stranger), Visibility::Members);
}

#[test]
fn history_records_are_shown_in_full_only_to_their_parties_and_to_those_who_may_see_both() {
    let mut town = Town::found(Params::default(), &["alice", "bob", "carol"]);
    town.write(
        "carol",
        Record::Visibility(record::VisibilitySetting {
            level: Visibility::Private,
        }),
    );
    let a1 = town.write("carol", attest(town.id("bob"), 60, "gardening"));
    let c1 = town.write("bob", confirm(a1));
    let a2 = town.write("bob", attest(town.id("alice"), 30, "ironing"));
    let p = town.write("alice", proposal("Garden"));
    let al = town.write("carol", allocate(p, 5));
    // Refused by derivation: bob confirms his own attestation; the state cannot name its
    // other party, so only bob sees it in full.
    let bad = town.force("bob", 0, &confirm(a2));
    let s = town.ledger.state().clone();
    let entry = |id| log_entry(&s, &id).clone();
    let shown = |viewer: &str| -> String {
        let v = s.viewer(Some(town.id(viewer)));
        [
            ("a1", a1),
            ("c1", c1),
            ("a2", a2),
            ("p", p),
            ("al", al),
            ("bad", bad),
        ]
        .iter()
        .filter(|(_, id)| v.sees_entry(&entry(*id)))
        .map(|(n, _)| *n)
        .collect::<Vec<_>>()
        .join(" ")
    };
    assert_eq!(shown("alice"), "a2 p");
    assert_eq!(shown("bob"), "a1 c1 a2 p bad");
    assert_eq!(shown("carol"), "a1 c1 a2 p al");
    let public = s.viewer(None);
    assert!(public.sees_entry(&entry(p)));
    assert!(!public.sees_entry(&entry(a2)));
    assert_eq!(
        public.subjects(&entry(c1)),
        Some(vec![town.id("carol"), town.id("bob")])
    );
    assert_eq!(public.subjects(&entry(bad)), None);
    // A viewer built for a page of entries (the ledger query's) answers as the whole one,
    // for every viewer, on every entry alone and on the whole log at once.
    for viewer in [None, Some("alice"), Some("bob"), Some("carol")] {
        let who = viewer.map(|v| town.id(v));
        let whole = s.viewer(who);
        let all: Vec<&coop_model::state::LogEntry> = s.log.iter().collect();
        let paged = s.viewer_for(who, &all);
        for e in &s.log {
            let alone = s.viewer_for(who, &[e]);
            for v in [&paged, &alone] {
                assert_eq!(v.subjects(e), whole.subjects(e), "{viewer:?} {:?}", e.kind);
                assert_eq!(
                    v.sees_entry(e),
                    whole.sees_entry(e),
                    "{viewer:?} {:?}",
                    e.kind
                );
            }
        }
    }
}

#[test]
fn concurrent_settings_from_two_devices_resolve_to_the_later_in_total_order_everywhere() {
    let mut town = Town::found(Params::default(), &["alice", "bob"]);
    town.add_device("bob", 1);
    let base = town.replica();
    let (mut left, mut right) = (town.replica(), town.replica());
    let t = T0 + 86_400;
    let set = |level| Record::Visibility(record::VisibilitySetting { level });
    let l = left
        .author(&town.dev("bob", 0), set(Visibility::Private), t)
        .expect("written");
    let r = right
        .author(&town.dev("bob", 1), set(Visibility::Public), t)
        .expect("written");
    let (l_id, r_id) = (rid(&l), rid(&r));
    let mut outcomes = Vec::new();
    for order in [
        vec![l.clone(), r.clone()],
        vec![r.clone(), l.clone()],
        vec![r.clone(), l.clone(), r.clone()],
    ] {
        let mut replica = replica_of(&base);
        for env in order {
            let out = replica.ingest([env]);
            assert!(out.rejected.is_empty(), "{:?}", out.rejected);
            let fresh = replica.derive_from_scratch();
            assert_eq!(replica.state(), &fresh);
        }
        let s = replica.state();
        let later = if log_entry(s, &l_id).position > log_entry(s, &r_id).position {
            Visibility::Private
        } else {
            Visibility::Public
        };
        let got = s.visibility_of(&town.id("bob"));
        assert_eq!(got, later, "the later setting in total order wins");
        outcomes.push((got, s.digest().expect("the state serializes")));
    }
    assert!(outcomes.windows(2).all(|w| w[0] == w[1]), "{outcomes:?}");
}

// --- metrics

const COMMUNITY: &str = r#"
    community alice bob carol dave
    clock 2026-10-05
    p1 = alice: propose "Community garden"
    p2 = bob: propose "Tool library"
    p3 = carol: propose "Nobody cares"
    bob: allocate p1 10
    carol: allocate p1 5
    carol!: allocate p1 6
    clock 2026-10-14
    dave: allocate p1 3
    carol: allocate p2 4
    bob: close p2 delivered
    a1 = bob: attest alice 180 "car repair" 2026-10-03
    alice: confirm a1
    a2 = carol: attest bob 120 "maths tutoring" 2026-11-02
    bob: confirm a2
    a3 = dave: attest carol 60 "gardening" 2026-11-20
    carol: decline a3
    r2 = alice: request time "Help moving boxes"
    alice: cancel r2
    clock 2026-11-25
    r1 = dave: request skill "Fix my bike"
    o1 = carol: offer r1 "I can do it on Saturday"
    dave: accept o1
    dave: done r1 5
    carol: done r1 4
    r3 = bob: request space "Room for a meeting"
"#;

#[test]
fn metrics_of_a_scripted_community() {
    // Balances -180, +60, +120, 0 (from the -600 floor: 420, 660, 720, 600: Gini 0.1);
    // provided 0, 180, 120, 0 (Gini 0.55). Active in the 30 days before 2026-12-01 noon:
    // bob, carol and dave (alice's last record is from October).
    let out = run(&format!("{COMMUNITY}\nmetrics 2026-12-01\n"));
    let metrics: String =
        out.lines()
            .skip_while(|l| !l.starts_with("metrics"))
            .fold(String::new(), |mut s, l| {
                s.push_str(l);
                s.push('\n');
                s
            });
    expect![[r#"
        metrics on 2026-12-01
          support
            p1 "Community garden" open: 18 SP active, 18 allocated by 3 supporters
              days  2026-10-05 +15, 2026-10-14 +3
              weeks 2026-10-05 +15, 2026-10-12 +3
            p2 "Tool library" delivered: 0 SP active, 4 allocated by 1 supporters
              days  2026-10-14 +4
              weeks 2026-10-12 +4
          aid: 3 requests, 1 completed, 1 open, 0 matched, 1 cancelled; completion 3333 bp
          time: 4 members; [-300,0) 1 [0,300) 3; gini of balance-floor 1000 bp, of provided 5500 bp (floor -600)
          hours by month: 2026-10 180 min (1), 2026-11 120 min (1)
          participation: 3 of 4 active in 30 days (7500 bp)
          purchases -, pools -, relief -
    "#]]
    .assert_eq(&metrics);
}

#[test]
fn metrics_since_a_day_keep_only_what_was_claimed_from_that_day_on() {
    // From 2026-10-10: the first week's allocations and the October service drop out; the
    // balance distribution and participation are snapshots and do not move.
    let out = run(&format!("{COMMUNITY}\nmetrics 2026-12-01 2026-10-10\n"));
    let metrics: String = out
        .lines()
        .skip_while(|l| !l.starts_with("metrics"))
        .map(|l| format!("{l}\n"))
        .collect();
    expect![[r#"
        metrics on 2026-12-01 since 2026-10-10
          support
            p2 "Tool library" delivered: 0 SP active, 4 allocated by 1 supporters
              days  2026-10-14 +4
              weeks 2026-10-12 +4
            p1 "Community garden" open: 18 SP active, 3 allocated by 1 supporters
              days  2026-10-14 +3
              weeks 2026-10-12 +3
          aid: 3 requests, 1 completed, 1 open, 0 matched, 1 cancelled; completion 3333 bp
          time: 4 members; [-300,0) 1 [0,300) 3; gini of balance-floor 1000 bp, of provided 5500 bp (floor -600)
          hours by month: 2026-11 120 min (1)
          participation: 3 of 4 active in 30 days (7500 bp)
          purchases -, pools -, relief -
    "#]]
    .assert_eq(&metrics);
}

#[test]
fn metrics_of_an_empty_community_have_no_ratios() {
    let town = Town::found(Params::default(), &["alice"]);
    let mut ledger = town.replica();
    let m = Metrics::compute(ledger.state(), T0, None);
    assert!(m.support.is_empty() && m.hours_by_month.is_empty());
    assert_eq!(m.aid.completion_bp, None);
    assert_eq!(m.time.members, 1);
    assert_eq!(m.time.balance_gini_bp, Some(0));
    assert_eq!(m.time.provided_gini_bp, Some(0));
    // The genesis was written at T0: alice is active at T0, not 30 days and a second later.
    assert_eq!(m.participation.share_bp, Some(10_000));
    let later = Metrics::compute(ledger.state(), T0 + 30 * 86_400 + 1, None);
    assert_eq!(later.participation.active, 0);
}

// --- export

#[test]
fn an_export_holds_what_the_viewer_may_see_and_its_receipts_verify_alone() {
    let mut town = Town::found(Params::default(), &["alice", "bob", "carol"]);
    town.write(
        "carol",
        Record::Visibility(record::VisibilitySetting {
            level: Visibility::Private,
        }),
    );
    let a1 = town.write("bob", attest(town.id("alice"), 60, "gardening"));
    town.write("alice", confirm(a1));
    let a2 = town.write("carol", attest(town.id("bob"), 30, "ironing"));
    town.write("bob", decline(a2));
    let a3 = town.write("alice", attest(town.id("bob"), 45, "spam"));
    town.write("bob", confirm(a3));
    town.write(
        "alice",
        Record::Hide(record::Hide {
            record: a3,
            reason: "entered twice".into(),
        }),
    );
    let envs: Vec<Envelope> = town.ledger.envelopes().collect();
    let state = town.ledger.state().clone();

    let receipts_of = |viewer: Option<MemberId>, all: bool| -> BTreeMap<RecordId, bool> {
        let x = export(&state, &envs, viewer, all);
        x.receipts
            .iter()
            .map(|r| {
                // Through the JSON form, as a reader of the file would.
                let back = Receipt::from_json(&r.to_json()).expect("parses");
                let sum = back.verify().expect("verifies without a ledger");
                (sum.attestation, sum.confirmed)
            })
            .collect()
    };
    // alice sees her receipt; bob↔carol is carol's private history; a3 is hidden.
    assert_eq!(
        receipts_of(Some(town.id("alice")), false),
        BTreeMap::from([(a1, true)])
    );
    // bob is a party to all three; the hidden one only with `all`.
    assert_eq!(
        receipts_of(Some(town.id("bob")), false),
        BTreeMap::from([(a1, true), (a2, false)])
    );
    assert_eq!(
        receipts_of(Some(town.id("bob")), true),
        BTreeMap::from([(a1, true), (a2, false), (a3, true)])
    );
    // Nobody in particular: alice and bob keep the default (members), carol is private.
    assert!(receipts_of(None, true).is_empty());

    let x = export(&state, &envs, Some(town.id("alice")), false);
    assert_eq!(
        x.records.len(),
        state.log.len() - 1,
        "the hidden attestation is left out"
    );
    let a2_row = x.records.iter().find(|r| r.id == a2).expect("a stub");
    assert!(a2_row.redacted && a2_row.record.is_none() && a2_row.member.is_none());
    assert_eq!(a2_row.kind, "attest");
    assert_eq!(x.redacted, 2, "a2 and its decline");
    let a1_row = x.records.iter().find(|r| r.id == a1).expect("a row");
    assert!(a1_row.receipt && !a1_row.redacted);
    assert!(matches!(
        a1_row.record,
        Some(Record::Attest(record::Attest {
            minutes: coop_model::Minutes(60),
            ..
        }))
    ));
    let all = export(&state, &envs, Some(town.id("alice")), true);
    assert!(all.records.iter().any(|r| r.id == a3 && r.hidden));
}

#[test]
fn a_visibility_with_an_unknown_level_is_refused_at_the_gate() {
    use automerge::transaction::Transactable;
    use automerge::{ObjType, ScalarValue, ROOT};
    let mut town = Town::found(Params::default(), &["alice", "bob"]);
    let device = town.dev("bob", 0).device_id();
    let before = town.ledger.state().digest().expect("the state serializes");
    let env = town.raw("bob", 0, |tx, seq| {
        let key = format!("visibility/{}/{seq}", device.to_hex());
        let obj = tx.put_object(ROOT, key, ObjType::Map).expect("map");
        tx.put(&obj, "v", ScalarValue::Int(1)).expect("v");
        tx.put(&obj, "level", "secret").expect("level");
    });
    let out = town.ledger.ingest([env]);
    assert_eq!(out.rejected.len(), 1, "{out:?}");
    assert_eq!(out.rejected[0].reason, RejectReason::InvalidRecord);
    assert!(
        out.rejected[0].detail.contains("public, members, private"),
        "{}",
        out.rejected[0].detail
    );
    assert_eq!(
        town.ledger.state().digest().expect("the state serializes"),
        before
    );
}

#[test]
fn purchase_metrics_sum_savings_and_local_spending_per_currency() {
    // Rice from the local farm (ordered) and coffee from a remote roaster (ordered); a
    // third purchase never funded adds nothing.
    check(
        r#"
        community alice bob carol
        clock 2026-09-25T10:00
        p1 = alice: purchase "Brown rice" kg 60 250 EUR 2 2026-10-01T18:00
        bob: commit p1 0 30
        carol: commit p1 0 30
        bob: bid p1 0 "Farm down the road" local 200 10
        p2 = alice: purchase "Coffee beans" kg 10 2000 EUR 2 2026-10-01T18:00
        bob: commit p2 0 5
        carol: commit p2 0 5
        carol: bid p2 0 "Roasters Inc" remote 1500 5
        p3 = bob: purchase "Olive oil" litre 100 900 EUR 5 2026-10-01T18:00
        carol: commit p3 0 10
        clock 2026-10-02T09:00
        alice: order p1 0
        alice: order p2 0
        metrics 2026-10-03
        "#,
        expect![[r#"
            members
              alice admitted: time +0 (+0 -0), sp 100/100
              bob admitted: time +0 (+0 -0), sp 100/100
              carol admitted: time +0 (+0 -0), sp 100/100
            purchases
              p1: "Brown rice" by alice: 60 kg at 250 EUR, min 2 participants, deadline 2026-10-01 18:00 UTC, none; savings 3000 spending 12000 (local 12000)
                round 0 (deadline 2026-10-01 18:00 UTC): 60 kg from 2 participants, funded, winner 5cf76532079e at 200, ordered
                  bid 5cf76532079e: "Farm down the road" local 200 min 10
                  e30c10682c27 bob 30 +0%: base 6000 surcharge 0 discount 0/0 due 6000 savings 1500
                  044711c5f20a carol 30 +0%: base 6000 surcharge 0 discount 0/0 due 6000 savings 1500
                  total base 12000 + pool 0 - granted 0/0 = due 12000 (surplus 0), savings 3000
              p2: "Coffee beans" by alice: 10 kg at 2000 EUR, min 2 participants, deadline 2026-10-01 18:00 UTC, none; savings 5000 spending 15000 (local 0)
                round 0 (deadline 2026-10-01 18:00 UTC): 10 kg from 2 participants, funded, winner 292d33cc0c4b at 1500, ordered
                  bid 292d33cc0c4b: "Roasters Inc" remote 1500 min 5
                  3ec08c74cac0 bob 5 +0%: base 7500 surcharge 0 discount 0/0 due 7500 savings 2500
                  9e26957cbac0 carol 5 +0%: base 7500 surcharge 0 discount 0/0 due 7500 savings 2500
                  total base 15000 + pool 0 - granted 0/0 = due 15000 (surplus 0), savings 5000
              p3: "Olive oil" by bob: 100 litre at 900 EUR, min 5 participants, deadline 2026-10-01 18:00 UTC, none; savings 0 spending 0 (local 0)
                round 0 (deadline 2026-10-01 18:00 UTC): 10 litre from 1 participants
                  2192962d07c5 carol 10 +0%: base 0 surcharge 0 discount 0/0 due 0 savings 0
            counted 17 refused 0
            metrics on 2026-10-03
              support
              aid: 0 requests, 0 completed, 0 open, 0 matched, 0 cancelled; completion -
              time: 3 members; [0,300) 3; gini of balance-floor 0 bp, of provided 0 bp (floor -600)
              hours by month: 
              participation: 3 of 3 active in 30 days (10000 bp)
              purchases yes, pools -, relief -
              purchases: 2 funded rounds, savings [8000 EUR], spending [27000 EUR], local [12000 EUR] (4444 bp)
        "#]],
    );
}
