//! `proposal open|close|list|show` and `sp allocate|status`.

use super::support::*;

fn open(dir: &std::path::Path, title: &str) -> String {
    s(&json(dir, &["proposal", "open", "--title", title]), "id")
}

#[test]
fn the_worked_example_leaves_77_and_refuses_the_11th_point() {
    let w = World::new();
    let alice = w.found(&[]);
    let garden = open(&alice, "Community Garden");
    let market = open(&alice, "Farmers Market");
    let cafe = open(&alice, "Repair Cafe");
    for (p, n) in [(&garden, "10"), (&market, "5"), (&cafe, "8")] {
        let a = json(&alice, &["sp", "allocate", &p[..8], n]);
        assert_eq!(s(&a, "proposal"), *p);
    }
    let st = json(&alice, &["sp", "status"]);
    assert_eq!(i(&st, "budget"), 100);
    assert_eq!(i(&st, "allocated"), 23);
    assert_eq!(i(&st, "available"), 77);
    assert_eq!(st["allocations"].as_array().unwrap().len(), 3);

    let before = changes(&alice);
    let r = coop(&alice, &["sp", "allocate", &garden[..8], "1"]).code(1);
    assert_eq!(
        r.stderr,
        "refused: over_proposal_cap: 11 SP on one proposal, cap is 10\n"
    );
    assert!(r.stdout.is_empty());
    assert_eq!(changes(&alice), before);
    assert_eq!(i(&json(&alice, &["sp", "status"]), "available"), 77);

    // --json errors carry the reason for scripts.
    let r = coop(&alice, &["--json", "sp", "allocate", &garden[..8], "1"]).code(1);
    let e = &r.json()["error"];
    assert_eq!(s(e, "kind"), "refused");
    assert_eq!(s(e, "reason"), "over_proposal_cap");
    assert_eq!(s(e, "detail"), "11 SP on one proposal, cap is 10");

    let text = coop(&alice, &["sp", "status"]).ok().stdout;
    assert!(text.contains("available  77 SP"), "{text}");
}

#[test]
fn the_budget_caps_all_allocations_together() {
    let w = World::new();
    let alice = w.found(&["--param", "sp_budget=12"]);
    let p1 = open(&alice, "First idea");
    let p2 = open(&alice, "Second idea");
    json(&alice, &["sp", "allocate", &p1, "10"]);
    coop(&alice, &["sp", "allocate", &p2, "3"])
        .refused("refused: over_budget: 13 SP allocated, budget is 12");
}

#[test]
fn proposals_list_show_close_and_prioritize() {
    let w = World::new();
    let (alice, bob) = w.two(&["--param", "sp_priority_threshold=15"]);
    let garden = open(&alice, "Community Garden");
    json(&alice, &["sp", "allocate", &garden, "10"]);
    w.carry(&alice, &bob);
    json(&bob, &["sp", "allocate", &garden[..6], "5"]);
    w.carry(&bob, &alice);

    let list = json(&alice, &["proposal", "list"]);
    let p = &list["proposals"][0];
    assert_eq!(s(p, "id"), garden);
    assert_eq!(s(p, "title"), "Community Garden");
    assert_eq!(s(p, "status"), "open");
    assert_eq!(i(p, "active_points"), 15);
    assert_eq!(i(p, "supporters"), 2);
    assert_eq!(p["prioritized"], true);
    assert_eq!(i(p, "priority_threshold"), 15);
    let text = coop(&alice, &["proposal", "list"]).ok().stdout;
    assert!(
        text.contains("15 *") && text.contains("prioritized"),
        "{text}"
    );

    let show = json(&alice, &["proposal", "show", &garden[..8]]);
    let allocs = show["allocations"].as_array().unwrap();
    assert_eq!(allocs.len(), 2);
    assert_eq!(allocs.iter().map(|a| i(a, "points")).sum::<i64>(), 15);
    let text = coop(&alice, &["proposal", "show", &garden[..8]])
        .ok()
        .stdout;
    assert!(
        text.contains("PRIORITIZED") && text.contains("Bob"),
        "{text}"
    );

    // Only the proposer closes; closing returns the points.
    coop(
        &bob,
        &["proposal", "close", &garden[..8], "--outcome", "delivered"],
    )
    .refused("refused: not_allowed: only the proposer closes a proposal");
    let c = json(
        &alice,
        &["proposal", "close", &garden[..8], "--outcome", "delivered"],
    );
    assert_eq!(s(&c, "outcome"), "delivered");
    let p = &json(&alice, &["proposal", "list"])["proposals"][0];
    assert_eq!(s(p, "status"), "closed");
    assert_eq!(s(p, "outcome"), "delivered");
    assert_eq!(i(p, "active_points"), 0);
    assert_eq!(p["prioritized"], false);
    let st = json(&alice, &["sp", "status"]);
    assert_eq!(i(&st, "available"), 100);
    assert_eq!(st["allocations"][0]["locked"], false);
    let bob_sp = json(&alice, &["sp", "status", "Bob"]);
    assert_eq!(i(&bob_sp, "available"), 100);
    coop(&alice, &["sp", "allocate", &garden[..8], "1"]).refused("refused: proposal_closed");
}
