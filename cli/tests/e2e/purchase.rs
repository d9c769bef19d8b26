//! Collective purchasing: `purchase propose|commit|bid|order|deliver|paid|pickup|show|list`,
//! over sync files between three members' data dirs.

use std::path::Path;
use std::time::{SystemTime, UNIX_EPOCH};

use serde_json::Value;

use super::support::*;

fn unix_now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("a clock after 1970")
        .as_secs() as i64
}

/// Proposes a purchase with the deadline at `deadline` (Unix seconds); returns its id.
fn propose(dir: &Path, deadline: i64, extra: &[&str]) -> Value {
    let at = format!("@{deadline}");
    let mut args = vec![
        "purchase",
        "propose",
        "--item",
        "Olive oil",
        "--unit",
        "litre",
        "--target",
        "10",
        "--reference-price",
        "12.50",
        "--currency",
        "EUR",
        "--min-participants",
        "2",
        "--deadline",
        &at,
    ];
    args.extend_from_slice(extra);
    json(dir, &args)
}

fn by_member<'a>(round: &'a Value, name: &str) -> &'a Value {
    round["commitments"]
        .as_array()
        .expect("commitments")
        .iter()
        .find(|c| c["member_name"] == name)
        .unwrap_or_else(|| panic!("no commitment of {name} in {round}"))
}

#[test]
fn a_purchase_is_funded_ordered_delivered_paid_and_picked_up_with_solidarity_pricing() {
    let w = World::new();
    let (alice, bob) = w.two(&[]);
    let carol = w.admit(&alice, "Carol");
    let p = propose(&alice, unix_now() + 86_400, &[]);
    let pid = s(&p, "id");
    assert_eq!(i(&p, "reference_price"), 1250);
    assert_eq!(s(&p, "recurrence"), "none");
    assert_eq!(s(&p, "phase"), "open");
    w.carry(&alice, &bob);

    // Bob pays 10 % more; Carol asks for 5 % off. Bob records the local farm's bid, Carol
    // the wholesaler's, which is cheaper but needs 20 litres.
    let c1 = json(
        &bob,
        &[
            "purchase",
            "commit",
            &pid[..8],
            "--quantity",
            "6",
            "--surcharge",
            "10",
        ],
    );
    assert_eq!(i(&c1["commitment"], "solidarity_percent"), 10);
    assert_eq!(c1["funded"], false);
    let bid = json(
        &bob,
        &[
            "purchase",
            "bid",
            &pid[..8],
            "--supplier",
            "Hill farm",
            "--local",
            "--unit-price",
            "11",
            "--min-quantity",
            "5",
        ],
    );
    assert_eq!(s(&bid, "winning_bid"), s(&bid, "id"));
    // Committing twice in one round is refused, and nothing is written.
    let before = changes(&bob);
    coop(&bob, &["purchase", "commit", &pid[..8], "--quantity", "1"])
        .refused("refused: already_committed: already committed 6 in round 0");
    assert_eq!(changes(&bob), before);
    w.carry(&bob, &carol);

    let c2 = json(
        &carol,
        &[
            "purchase",
            "commit",
            &pid[..8],
            "--quantity",
            "4",
            "--discount",
            "5",
        ],
    );
    assert_eq!(c2["funded"], true);
    assert_eq!(i(&c2["commitment"], "due"), 4180);
    json(
        &carol,
        &[
            "purchase",
            "bid",
            &pid[..8],
            "--supplier",
            "Wholesale Ltd",
            "--unit-price",
            "10.50",
            "--min-quantity",
            "20",
        ],
    );
    w.carry(&carol, &alice);
    w.carry(&alice, &bob);

    // Only the coordinator orders.
    coop(&bob, &["purchase", "order", &pid[..8]]).refused("refused: not_allowed");
    let order = json(&alice, &["purchase", "order", &pid[..8]]);
    assert_eq!(s(&order, "phase"), "ordered");
    assert_eq!(i(&order, "round"), 0);

    // Payment after the order, pickup after the delivery.
    coop(&alice, &["purchase", "pickup", &pid[..8], "Bob"])
        .refused("refused: not_delivered: round 0 is not delivered");
    let paid = json(&alice, &["purchase", "paid", &pid[..8], "Bob"]);
    assert_eq!(s(&paid, "mark"), "paid");
    coop(&alice, &["purchase", "paid", &pid[..8], "Bob"]).refused("refused: redundant");
    let delivered = json(&alice, &["purchase", "deliver", &pid[..8]]);
    assert_eq!(s(&delivered, "phase"), "delivered");
    w.carry(&alice, &bob);
    let pickup = json(&bob, &["purchase", "pickup", &pid[..8]]);
    assert_eq!(s(&pickup, "member"), s(&json(&bob, &["status"]), "member"));
    coop(&bob, &["purchase", "pickup", &pid[..8], "Carol"]).refused("refused: not_allowed");

    let show = json(&bob, &["purchase", "show", &pid[..8]]);
    let round = &show["round"];
    assert_eq!(s(round, "phase"), "delivered");
    assert_eq!(i(round, "committed_quantity"), 10);
    assert_eq!(i(round, "unit_price"), 1100);
    assert_eq!(s(&round["winning_bid"], "supplier"), "Hill farm");
    assert_eq!(round["winning_bid"]["local"], true);
    let (b, c) = (by_member(round, "Bob"), by_member(round, "Carol"));
    assert_eq!(
        [
            i(b, "base"),
            i(b, "surcharge"),
            i(b, "due"),
            i(b, "savings")
        ],
        [6600, 660, 7260, 900]
    );
    assert_eq!(
        [
            i(c, "base"),
            i(c, "discount_requested"),
            i(c, "discount_granted"),
            i(c, "due")
        ],
        [4400, 220, 220, 4180]
    );
    assert_eq!(
        (b["paid"].clone(), b["picked_up"].clone()),
        (true.into(), true.into())
    );
    assert_eq!(c["paid"], false);
    assert_eq!(i(round, "total_due"), 11_440);
    assert_eq!(i(round, "solidarity_surplus"), 440);
    assert_eq!(i(&show, "total_savings"), 1500);
    assert_eq!(i(&show, "total_spending"), 11_000);
    assert_eq!(i(&show, "local_spending"), 11_000);

    let text = coop(&bob, &["purchase", "show", &pid[..8]]).ok().stdout;
    for needle in [
        "Olive oil",
        "12.50 EUR per litre",
        "Round 0: delivered, 10 of 10 litre from 2 of 2 participants",
        "Hill farm",
        "72.60 EUR",
        "2.20 EUR of 2.20 EUR",
        "savings 15.00 EUR",
    ] {
        assert!(text.contains(needle), "{needle:?} not in:\n{text}");
    }
    let list = json(&bob, &["purchase", "list"]);
    assert_eq!(s(&list["purchases"][0], "id"), pid);
    assert_eq!(s(&list["purchases"][0]["round"], "phase"), "delivered");
    let text = coop(&bob, &["purchase", "list"]).ok().stdout;
    assert!(
        text.contains(&pid[..12]) && text.contains("10/10 litre"),
        "{text}"
    );
}

#[test]
fn past_the_deadline_commitments_are_refused_the_round_expires_and_the_next_round_opens() {
    let w = World::new();
    let (alice, bob) = w.two(&[]);
    coop(
        &alice,
        &[
            "purchase",
            "propose",
            "--item",
            "Too late",
            "--unit",
            "kg",
            "--target",
            "1",
            "--reference-price",
            "1",
            "--currency",
            "EUR",
            "--deadline",
            "2020-01-01",
        ],
    )
    .refused("refused: deadline_passed: deadline 2020-01-01 00:00 UTC is not after");
    // A monthly purchase whose first round closes in three seconds.
    let deadline = unix_now() + 3;
    let p = propose(&alice, deadline, &["--monthly"]);
    let pid = s(&p, "id");
    assert_eq!(s(&p, "recurrence"), "monthly");
    json(
        &alice,
        &["purchase", "commit", &pid[..8], "--quantity", "3"],
    );
    let open = json(&alice, &["purchase", "show", &pid[..8]]);
    assert_eq!(i(&open, "current_round"), 0);
    assert_eq!(s(&open["round"], "phase"), "open");
    w.carry(&alice, &bob);

    wait_until("the deadline to pass", || {
        (unix_now() > deadline).then_some(())
    });
    coop(
        &bob,
        &[
            "purchase",
            "commit",
            &pid[..8],
            "--quantity",
            "9",
            "--round",
            "0",
        ],
    )
    .refused("refused: deadline_passed: claimed at");
    coop(&alice, &["purchase", "order", &pid[..8]])
        .refused("refused: not_funded: round 0 has 3 of 10 litre from 1 of 2 participants");

    // Round 0 expired; round 1 is open from round 0's deadline to one month later, and a
    // commitment without --round goes there.
    let show = json(&bob, &["purchase", "show", &pid[..8], "--round", "0"]);
    assert_eq!(s(&show["round"], "phase"), "expired");
    assert_eq!(i(&show, "current_round"), 1);
    assert_eq!(s(&show, "current_phase"), "open");
    let c = json(&bob, &["purchase", "commit", &pid[..8], "--quantity", "9"]);
    assert_eq!(i(&c, "round"), 1);
    let show = json(&bob, &["purchase", "show", &pid[..8]]);
    assert_eq!(i(&show["round"], "round"), 1);
    assert_eq!(i(&show["round"], "opens_at"), deadline);
    assert!(i(&show["round"], "deadline") >= deadline + 28 * 86_400);
    // As at a moment before the first deadline, round 0 was open.
    let earlier = format!("@{}", deadline - 1);
    let then = json(&bob, &["purchase", "show", &pid[..8], "--at", &earlier]);
    assert_eq!(i(&then, "current_round"), 0);
    assert_eq!(s(&then["round"], "phase"), "open");
    let list = json(&bob, &["purchase", "list"]);
    assert_eq!(i(&list["purchases"][0]["round"], "round"), 1);
}

#[test]
fn bad_purchase_arguments_are_usage_errors_and_unknown_purchases_clear_errors() {
    let w = World::new();
    let alice = w.found(&[]);
    let p = propose(&alice, unix_now() + 86_400, &[]);
    let pid = s(&p, "id");
    let before = changes(&alice);
    let base =
        "purchase propose --item Rice --unit kg --target 5 --currency EUR --deadline 2099-01-01";
    let cases = [
        format!("{base} --reference-price 12.345"),
        format!("{base} --reference-price -1"),
        format!("{base} --reference-price 1,50"),
        format!("{base} --reference-price 1e3"),
        format!("{base} --reference-price 1000000.01"),
        "purchase propose --item Rice --unit kg --target 5 --currency eur --deadline 2099-01-01 --reference-price 1".into(),
        "purchase propose --item Rice --unit kg --target 0 --currency EUR --deadline 2099-01-01 --reference-price 1".into(),
        "purchase propose --item Rice --unit kg --target 5 --currency EUR --deadline 2099-13-01 --reference-price 1".into(),
        "purchase propose --item Rice --unit kg --target 5 --currency EUR --deadline 2099-01-01T25:00 --reference-price 1".into(),
        "purchase propose --item Rice --unit kg --target 5 --currency EUR --reference-price 1".into(),
        format!("purchase commit {} --quantity 0", &pid[..8]),
        format!("purchase commit {} --quantity 1 --surcharge 0", &pid[..8]),
        format!("purchase commit {} --quantity 1 --discount 101", &pid[..8]),
        format!("purchase commit {} --quantity 1 --surcharge 5 --discount 5", &pid[..8]),
        format!("purchase commit {} --quantity 1 --round 120", &pid[..8]),
        format!("purchase commit {}", &pid[..8]),
        format!("purchase bid {} --supplier Mill --unit-price 1.5.0", &pid[..8]),
        format!("purchase show {} --at yesterday", &pid[..8]),
        "purchase paid".into(),
    ];
    for line in &cases {
        let args: Vec<&str> = line.split_whitespace().collect();
        let r = coop(&alice, &args);
        assert_eq!(
            r.code, 2,
            "{line:?}\nstdout: {}\nstderr: {}",
            r.stdout, r.stderr
        );
    }
    assert_eq!(changes(&alice), before);

    // A record that is not a purchase, and an id that matches nothing: one clear line.
    let prop = s(
        &json(&alice, &["proposal", "open", "--title", "Garden"]),
        "id",
    );
    let r = coop(&alice, &["purchase", "show", &prop[..8]]).code(1);
    assert!(r.stderr.starts_with("error: ") && r.stderr.contains("is not a purchase"));
    assert_eq!(r.stderr.lines().count(), 1, "{}", r.stderr);
    let r = coop(
        &alice,
        &[
            "--json",
            "purchase",
            "commit",
            "ffffffff",
            "--quantity",
            "1",
        ],
    )
    .code(1);
    assert_eq!(r.json()["error"]["kind"], "error");
    // The lookup is among the kinds the command expects, and says which.
    assert!(
        r.stderr.contains("\"ffffffff\" is not a purchase"),
        "{}",
        r.stderr
    );
    let r = coop(&alice, &["--json", "purchase", "paid", &pid[..8], "Alice"]).code(1);
    assert_eq!(r.json()["error"]["reason"], "not_a_participant");
    // Nothing listed is hidden; an empty community lists no purchases in text.
    let empty = w.init("Zed");
    coop(&empty, &["found", "--community", "Empty"]).ok();
    assert_eq!(
        coop(&empty, &["purchase", "list"]).ok().stdout,
        "No purchases.\n"
    );
}
