//! `decision open|vote|close|list|show`, `report`, `moderation list|hide`, and `params`
//! history after a decision.

use std::time::{SystemTime, UNIX_EPOCH};

use super::support::*;

fn unix_now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("clock after 1970")
        .as_secs() as i64
}

#[test]
fn a_decision_raises_sp_max_per_proposal_and_the_allocation_is_then_allowed() {
    let w = World::new();
    let (alice, bob) = w.two(&[]);
    let p = s(
        &json(&alice, &["proposal", "open", "--title", "Tool library"]),
        "id",
    );
    w.carry(&alice, &bob);
    coop(&bob, &["sp", "allocate", &p[..8], "15"])
        .refused("refused: over_proposal_cap: 15 SP on one proposal, cap is 10");

    let opened = json(
        &alice,
        &[
            "decision",
            "open",
            "--title",
            "Bigger pledges",
            "--window",
            "1h",
            "--param",
            "sp_max_per_proposal=20",
        ],
    );
    let d = s(&opened, "id");
    assert_eq!(opened["action"]["action"], "param");
    let closes = i(&opened, "closes_at");
    w.carry(&alice, &bob);
    let v = json(&bob, &["decision", "vote", &d[..8], "yes"]);
    assert_eq!(s(&v, "choice"), "yes");
    coop(&bob, &["decision", "vote", &d[..8], "no"])
        .refused("refused: already_voted: one member, one vote");
    w.carry(&bob, &alice);
    json(&alice, &["decision", "vote", &d[..8], "yes"]);

    // Before the window ends the vote cannot be closed; after it, it can.
    coop(&alice, &["decision", "close", &d[..8]]).refused("refused: window_open");
    let closed = coop_at(
        &alice,
        closes + 1,
        &["--json", "decision", "close", &d[..8]],
    )
    .ok()
    .json();
    assert_eq!(s(&closed, "status"), "passed");
    assert_eq!(closed["tally"]["yes"], 2);
    assert_eq!(closed["tally"]["eligible"], 2);
    assert_eq!(closed["votes"].as_array().unwrap().len(), 2);

    // The change is in force for every later record, and `params` shows its history.
    w.carry(&alice, &bob);
    let a = coop_at(
        &bob,
        closes + 60,
        &["--json", "sp", "allocate", &p[..8], "15"],
    )
    .ok()
    .json();
    assert_eq!(i(&a, "points"), 15);
    let params = json(&bob, &["params"]);
    assert_eq!(params["params"]["sp_max_per_proposal"], 20);
    let change = params["history"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["decision"].as_str() == Some(d.as_str()))
        .expect("the decision's change in the history");
    assert_eq!(change["key"], "sp_max_per_proposal");
    assert_eq!(change["value"], "20");
    let text = coop(&bob, &["params"]).ok().stdout;
    assert!(text.contains("sp_max_per_proposal"), "{text}");
    assert!(text.contains(&d[..8]), "{text}");

    // Listing and showing.
    let list = json(&bob, &["decision", "list"]);
    assert_eq!(list["decisions"][0]["status"], "passed");
    let shown = coop(&bob, &["decision", "show", &d[..8]]).ok().stdout;
    assert!(
        shown.contains("passed — yes 2, no 0, abstain 0 of 2 members"),
        "{shown}"
    );
    // A vote after the close is refused.
    coop_at(&bob, closes + 120, &["decision", "vote", &d[..8], "no"])
        .refused("refused: window_closed");
}

#[test]
fn moderators_are_made_by_decision_see_reports_and_hide_records() {
    let w = World::new();
    let (alice, bob) = w.two(&[]);
    let now = unix_now();
    let spam = s(
        &json(&bob, &["proposal", "open", "--title", "Buy my stuff"]),
        "id",
    );
    w.carry(&bob, &alice);
    // Bob is no moderator: he may report, not see reports or hide.
    json(
        &bob,
        &["report", "record", &spam[..8], "--reason", "advertising"],
    );
    coop(&bob, &["moderation", "list"]).code(1);
    coop(
        &bob,
        &["moderation", "hide", &spam[..8], "--reason", "advertising"],
    )
    .refused("refused: not_allowed: only moderators hide records");

    let d = s(
        &json(
            &alice,
            &[
                "decision",
                "open",
                "--title",
                "Bob moderates",
                "--window",
                "10m",
                "--grant",
                "moderator",
                "--member",
                "Bob",
            ],
        ),
        "id",
    );
    json(&alice, &["decision", "vote", &d[..8], "yes"]);
    coop_at(&alice, now + 3_600, &["decision", "close", &d[..8]]).ok();
    w.carry(&alice, &bob);
    w.carry(&bob, &alice);
    let members = coop(&bob, &["members"]).ok().stdout;
    assert!(members.contains("moderator"), "{members}");

    let m = json(&bob, &["moderation", "list"]);
    let reports = m["reports"].as_array().unwrap();
    assert_eq!(reports.len(), 1);
    assert_eq!(reports[0]["target"], spam.as_str());
    assert_eq!(reports[0]["reason"], "advertising");
    let hid = coop_at(
        &bob,
        now + 3_700,
        &[
            "--json",
            "moderation",
            "hide",
            &spam[..8],
            "--reason",
            "advertising",
        ],
    )
    .ok()
    .json();
    assert_eq!(s(&hid, "record"), spam);
    // Hidden from listings, still in the ledger for audit.
    let listed = json(&bob, &["proposal", "list"]);
    assert!(
        listed["proposals"].as_array().unwrap().is_empty(),
        "{listed}"
    );
    let all = json(&bob, &["proposal", "list", "--all"]);
    assert_eq!(all["proposals"][0]["hidden"], true);
    let ledger = coop(&bob, &["ledger", "--all"]).ok().stdout;
    assert!(ledger.contains(&spam[..8]), "{ledger}");
    assert_eq!(
        json(&bob, &["moderation", "list"])["reports"][0]["hidden"],
        true
    );
}

#[test]
fn a_member_removed_by_decision_can_no_longer_write() {
    let w = World::new();
    let (alice, bob) = w.two(&[]);
    let now = unix_now();
    let d = s(
        &json(
            &alice,
            &[
                "decision",
                "open",
                "--title",
                "Bob moved away",
                "--window",
                "5m",
                "--remove",
                "Bob",
            ],
        ),
        "id",
    );
    json(&alice, &["decision", "vote", &d[..8], "yes"]);
    let closed = coop_at(&alice, now + 600, &["--json", "decision", "close", &d[..8]])
        .ok()
        .json();
    assert_eq!(s(&closed, "status"), "passed");
    w.carry(&alice, &bob);
    coop_at(
        &bob,
        now + 700,
        &["proposal", "open", "--title", "Still here?"],
    )
    .refused("refused: removed_member");
    let members = json(&alice, &["members"]);
    let bob_entry = members["members"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["display_name"] == "Bob")
        .expect("bob listed");
    assert_eq!(bob_entry["status"], "removed");
}

#[test]
fn bad_decision_input_gets_one_clear_line() {
    let w = World::new();
    let alice = w.found(&[]);
    // Usage errors (exit 2) before anything is opened.
    let r = coop(
        &alice,
        &[
            "decision",
            "open",
            "--title",
            "Roles",
            "--grant",
            "moderator",
        ],
    )
    .code(2);
    assert!(r.stderr.contains("--member"), "{}", r.stderr);
    let r = coop(
        &alice,
        &["decision", "open", "--title", "Soon", "--window", "0d"],
    )
    .code(2);
    assert!(r.stderr.contains("window"), "{}", r.stderr);
    let r = coop(
        &alice,
        &[
            "decision",
            "open",
            "--title",
            "Both",
            "--param",
            "sp_budget=5",
            "--remove",
            "Alice",
        ],
    )
    .code(2);
    assert!(r.stderr.contains("cannot be used with"), "{}", r.stderr);
    coop(&alice, &["decision", "vote", "abcd1234", "maybe"]).code(2);
    // Refusals from the rules (exit 1, the reason named).
    let r = coop(
        &alice,
        &[
            "decision",
            "open",
            "--title",
            "Budget",
            "--param",
            "sp_budget=-5",
        ],
    )
    .code(2);
    assert!(r.stderr.contains("out of range"), "{}", r.stderr);
    coop(
        &alice,
        &[
            "decision",
            "open",
            "--title",
            "Promote",
            "--grant",
            "moderator",
            "--member",
            "Alice",
        ],
    )
    .refused("refused: invalid_decision");
    let r = coop(&alice, &["decision", "show", "ffff0000"]).code(1);
    assert_eq!(r.stderr.lines().count(), 1, "{}", r.stderr);
    let before = changes(&alice);
    coop(&alice, &["decision", "close", "ffff0000"]).code(1);
    assert_eq!(changes(&alice), before);
    let r = command_with_bad_now(&alice);
    assert!(r.stderr.contains("COOP_NOW"), "{}", r.stderr);
}

fn command_with_bad_now(dir: &std::path::Path) -> Run {
    let out = command()
        .env("COOP_NOW", "tomorrow")
        .arg("--data-dir")
        .arg(dir)
        .args(["decision", "list"])
        .output()
        .expect("run coop");
    Run {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

#[test]
fn a_hidden_pool_leaves_its_listing_and_stays_for_audit() {
    let w = World::new();
    let alice = w.found(&[]);
    let pool = s(
        &json(
            &alice,
            &["pool", "create", "--name", "Spam fund", "--currency", "EUR"],
        ),
        "id",
    );
    json(
        &alice,
        &["moderation", "hide", &pool[..8], "--reason", "spam pool"],
    );
    let listed = json(&alice, &["pool", "list"]);
    assert!(listed["pools"].as_array().unwrap().is_empty(), "{listed}");
    let all = json(&alice, &["pool", "list", "--all"]);
    assert_eq!(all["pools"][0]["id"], pool.as_str());
    assert_eq!(all["pools"][0]["hidden"], true);
    let ledger = json(&alice, &["ledger", "--all"]);
    assert!(ledger.to_string().contains(&pool), "{ledger}");
}
