//! Privacy and transparency: `visibility [show|set]`, the visibility other commands honour,
//! `metrics [--since]` and `export --format csv|json [--out] [--all]`.

use std::path::Path;

use coop_model::Receipt;
use serde_json::Value;

use super::support::*;

/// `hours log` by `from` to `to`, carried over, confirmed (or declined) by `to`, carried back.
fn exchange(w: &World, from: &Path, to: &Path, to_name: &str, minutes: &str, confirm: bool) {
    let att = s(
        &json(
            from,
            &[
                "hours",
                "log",
                "--to",
                to_name,
                "--minutes",
                minutes,
                "--service",
                "gardening, weeding",
                "--date",
                "2026-03-15",
            ],
        ),
        "id",
    );
    w.carry(from, to);
    let verb = if confirm { "confirm" } else { "decline" };
    coop(to, &["hours", verb, &att[..8]]).ok();
    w.carry(to, from);
}

/// The record rows of a `--json ledger` of one kind.
fn ledger_rows(dir: &Path, kind: &str) -> Vec<Value> {
    json(dir, &["ledger", "--kind", kind])["records"]
        .as_array()
        .unwrap()
        .clone()
}

#[test]
fn a_private_members_balance_is_refused_to_others_while_aggregates_still_show() {
    let w = World::new();
    let (alice, bob) = w.two(&[]);
    exchange(&w, &alice, &bob, "Bob", "90", true);
    coop(&bob, &["visibility", "set", "private"]).ok();
    w.carry(&bob, &alice);
    let carol = w.admit(&alice, "Carol");

    // Another member (Carol), and even Alice who took part in one exchange, are refused
    // Bob's balance and SP history with one clear line.
    for dir in [&carol, &alice] {
        let r = coop(dir, &["balance", "Bob"]).code(1);
        assert_eq!(
            r.stderr.trim_end(),
            "error: Bob keeps their balance and history private (community totals: `coop metrics`)"
        );
        assert!(r.stdout.is_empty());
        coop(dir, &["sp", "status", "Bob"]).code(1);
    }
    // Bob sees his own.
    assert_eq!(i(&json(&bob, &["balance"]), "minutes"), -90);

    // The member list withholds his balance, not his membership.
    let members = json(&carol, &["members"]);
    let by_name = |n: &str| -> Value {
        members["members"]
            .as_array()
            .unwrap()
            .iter()
            .find(|m| m["display_name"] == n)
            .cloned()
            .unwrap()
    };
    assert!(by_name("Bob")["balance_minutes"].is_null());
    assert_eq!(s(&by_name("Bob"), "visibility"), "private");
    assert_eq!(i(&by_name("Alice"), "balance_minutes"), 90);
    assert_eq!(s(&by_name("Alice"), "visibility"), "members");
    let text = coop(&carol, &["members"]).ok().stdout;
    assert!(text.contains("(private)"), "{text}");

    // Aggregates are always shown.
    let m = json(&carol, &["metrics"]);
    assert_eq!(m["time"]["members"], 3);
    assert_eq!(m["hours_by_month"][0]["minutes"], 90);
    assert_eq!(m["hours_by_month"][0]["exchanges"], 1);

    // The ledger shows that the exchange exists, not whose or what, except to its parties.
    let rows = ledger_rows(&carol, "attest");
    assert_eq!(rows.len(), 1);
    assert_eq!(rows[0]["redacted"], true);
    assert!(rows[0]["member"].is_null() && rows[0]["summary"].is_null());
    assert_eq!(s(&rows[0], "status"), "counted");
    assert_eq!(ledger_rows(&alice, "attest")[0]["redacted"], false);
    assert_eq!(ledger_rows(&carol, "visibility")[0]["redacted"], false);
    let text = coop(&carol, &["ledger", "--kind", "confirm"]).ok().stdout;
    assert!(
        text.contains("(withheld)") && text.contains("(another member's history)"),
        "{text}"
    );

    // Public again: Carol sees it.
    coop(&bob, &["visibility", "set", "public"]).ok();
    w.carry(&bob, &carol);
    assert_eq!(i(&json(&carol, &["balance", "Bob"]), "minutes"), -90);
}

#[test]
fn visibility_shows_the_default_and_sets_a_level() {
    let w = World::new();
    let alice = w.found(&[]);
    let v = json(&alice, &["visibility"]);
    assert_eq!(s(&v, "visibility"), "members");
    assert_eq!(v["default"], true);
    assert!(coop(&alice, &["visibility"])
        .ok()
        .stdout
        .starts_with("Your visibility: members (the default)"));

    let set = json(&alice, &["visibility", "set", "public"]);
    assert_eq!(s(&set, "visibility"), "public");
    assert_eq!(s(&set, "id").len(), 64);
    let v = json(&alice, &["visibility", "show"]);
    assert_eq!(s(&v, "visibility"), "public");
    assert_eq!(v["default"], false);
    assert_eq!(s(&v, "set_by"), s(&set, "id"));
    let v = json(&alice, &["visibility", "show", "Alice"]);
    assert_eq!(s(&v, "display_name"), "Alice");

    // Bad input: usage errors exit 2 and write nothing; an unknown member is one line.
    let before = changes(&alice);
    for args in [
        &["visibility", "set", "secret"][..],
        &["visibility", "set"],
        &["visibility", "hide"],
    ] {
        let r = coop(&alice, args).code(2);
        assert!(r.stdout.is_empty());
    }
    assert_eq!(changes(&alice), before);
    let r = coop(&alice, &["visibility", "show", "Nobody"]).code(1);
    assert_eq!(r.stderr.lines().count(), 1, "{}", r.stderr);
    assert!(r.stderr.contains("no member matches"), "{}", r.stderr);
}

#[test]
fn metrics_report_support_aid_time_hours_and_participation_as_json() {
    let w = World::new();
    let (alice, bob) = w.two(&[]);
    let pid = s(
        &json(&alice, &["proposal", "open", "--title", "Community garden"]),
        "id",
    );
    coop(&alice, &["sp", "allocate", &pid[..8], "3"]).ok();
    w.carry(&alice, &bob);
    coop(&bob, &["sp", "allocate", &pid[..8], "7"]).ok();
    exchange(&w, &bob, &alice, "Alice", "120", true);

    // One aid request completed, one left open: 50 %.
    let req = |title: &str| {
        s(
            &json(
                &alice,
                &[
                    "aid",
                    "request",
                    "--category",
                    "time",
                    "--title",
                    title,
                    "--description",
                    "Boxes and a sofa, third floor.",
                ],
            ),
            "id",
        )
    };
    let r1 = req("Help moving on Saturday");
    req("Help painting a fence");
    w.carry(&alice, &bob);
    let offer = s(
        &json(
            &bob,
            &[
                "aid",
                "offer",
                &r1[..8],
                "--message",
                "I can help 2-4pm with my van.",
                "--availability",
                "Sat",
            ],
        ),
        "id",
    );
    w.carry(&bob, &alice);
    coop(&alice, &["aid", "accept", &offer[..8]]).ok();
    coop(&alice, &["aid", "confirm", &r1[..8], "--rating", "5"]).ok();
    w.carry(&alice, &bob);
    coop(&bob, &["aid", "confirm", &r1[..8]]).ok();
    w.carry(&bob, &alice);

    let m = json(&alice, &["metrics"]);
    let support = m["support"].as_array().unwrap();
    assert_eq!(support.len(), 1);
    assert_eq!(s(&support[0], "id"), pid);
    assert_eq!(s(&support[0], "title"), "Community garden");
    assert_eq!(s(&support[0], "status"), "open");
    assert_eq!(support[0]["allocated_points"], 10);
    assert_eq!(support[0]["active_points"], 10);
    assert_eq!(support[0]["supporters"], 2);
    let days: i64 = support[0]["by_day"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| i(d, "points"))
        .sum();
    assert_eq!(days, 10);
    assert!(!support[0]["by_week"].as_array().unwrap().is_empty());

    assert_eq!(m["aid"]["requests"], 2);
    assert_eq!(m["aid"]["completed"], 1);
    assert_eq!(m["aid"]["open"], 1);
    assert_eq!(m["aid"]["completion_bp"], 5000);

    // Balances -120 and +120: one member either side of zero. From the -600 floor they are
    // 480 and 720 (Gini 0.1); provided 0 and 120 (Gini 0.5).
    let t = &m["time"];
    assert_eq!(t["members"], 2);
    assert_eq!(t["bucket_minutes"], 300);
    assert_eq!(
        t["histogram"],
        serde_json::json!([
            { "from_minutes": -300, "to_minutes": 0, "members": 1 },
            { "from_minutes": 0, "to_minutes": 300, "members": 1 },
        ])
    );
    assert_eq!(t["balance_gini_bp"], 1000);
    assert_eq!(t["provided_gini_bp"], 5000);
    assert_eq!(t["floor_minutes"], -600);
    assert_eq!(
        m["hours_by_month"],
        serde_json::json!([{ "month": "2026-03", "minutes": 120, "exchanges": 1 }])
    );
    assert_eq!(m["participation"]["admitted"], 2);
    assert_eq!(m["participation"]["active"], 2);
    assert_eq!(m["participation"]["share_bp"], 10_000);
    assert_eq!(m["participation"]["window_days"], 30);
    for later in ["purchases", "pools", "relief"] {
        assert!(m[later].is_null(), "{later}");
    }
    let text = coop(&alice, &["metrics"]).ok().stdout;
    for needle in [
        "completion 50.00 %",
        "Gini 0.1000",
        "2026-03  2 h (1 exchange)",
        "2 of 2 members active in the last 30 days (100.00 %)",
    ] {
        assert!(text.contains(needle), "{needle:?} in\n{text}");
    }

    // From a day after everything: no series, no rate; the snapshot stays.
    let m = json(&alice, &["metrics", "--since", "2199-01-01"]);
    assert_eq!(s(&m, "since"), "2199-01-01");
    assert!(m["support"].as_array().unwrap().is_empty());
    assert!(m["hours_by_month"].as_array().unwrap().is_empty());
    assert_eq!(m["aid"]["requests"], 0);
    assert!(m["aid"]["completion_bp"].is_null());
    assert_eq!(m["time"]["members"], 2);
    for bad in ["2026-13-01", "yesterday"] {
        coop(&alice, &["metrics", "--since", bad]).code(2);
    }
}

/// Parses RFC 4180 CSV (quoted fields, doubled quotes, CRLF rows).
fn parse_csv(text: &str) -> Vec<Vec<String>> {
    let mut rows = Vec::new();
    let mut row = Vec::new();
    let mut field = String::new();
    let mut quoted = false;
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        match (quoted, c) {
            (true, '"') if chars.peek() == Some(&'"') => {
                chars.next();
                field.push('"');
            }
            (true, '"') => quoted = false,
            (true, c) => field.push(c),
            (false, '"') => quoted = true,
            (false, ',') => row.push(std::mem::take(&mut field)),
            (false, '\r') => {}
            (false, '\n') => {
                row.push(std::mem::take(&mut field));
                rows.push(std::mem::take(&mut row));
            }
            (false, c) => field.push(c),
        }
    }
    rows
}

/// Verifies a receipt from its JSON text, as a reader of the export would (no ledger).
fn verify(receipt: &str) -> coop_model::ReceiptSummary {
    Receipt::from_json(receipt)
        .expect("a receipt")
        .verify()
        .expect("verifies on its own")
}

#[test]
fn exports_hold_what_the_member_may_see_and_their_receipts_verify_alone() {
    let w = World::new();
    let (alice, bob) = w.two(&[]);
    let carol = w.admit(&alice, "Carol");
    exchange(&w, &alice, &bob, "Bob", "60", true);
    w.carry(&alice, &carol);
    coop(&carol, &["visibility", "set", "private"]).ok();
    w.carry(&carol, &bob);
    exchange(&w, &bob, &carol, "Carol", "30", false);
    w.carry(&bob, &alice);

    // JSON to a file.
    let file = w.file("alice.json");
    let summary = json(
        &alice,
        &[
            "export",
            "--format",
            "json",
            "--out",
            file.to_str().unwrap(),
        ],
    );
    let doc: Value = serde_json::from_str(&std::fs::read_to_string(&file).unwrap()).unwrap();
    assert_eq!(s(&doc, "format"), "coop/export/v1");
    assert_eq!(s(&doc, "community_name"), "Maple Street");
    let records = doc["records"].as_array().unwrap();
    assert_eq!(summary["records"], records.len());
    // Bob↔Carol is Carol's private history: the attestation and the decline are stubs.
    assert_eq!(doc["redacted"], 2);
    assert_eq!(summary["redacted"], 2);
    let stubs: Vec<&Value> = records.iter().filter(|r| r["redacted"] == true).collect();
    assert_eq!(stubs.len(), 2);
    assert!(stubs
        .iter()
        .all(|r| r["record"].is_null() && r["member"].is_null() && r["summary"].is_null()));
    // One receipt (Alice's own exchange), which verifies without any ledger.
    let receipts = doc["receipts"].as_array().unwrap();
    assert_eq!(receipts.len(), 1);
    let sum = verify(&receipts[0].to_string());
    assert!(sum.confirmed);
    assert_eq!(sum.minutes.0, 60);
    assert_eq!(sum.service, "gardening, weeding");
    let attest = records
        .iter()
        .find(|r| r["receipt"] == true)
        .expect("the attestation row");
    assert_eq!(s(attest, "id"), sum.attestation.to_hex());
    assert_eq!(attest["record"]["minutes"], 60);
    assert_eq!(s(attest, "member_name"), "Alice");

    // A tampered receipt does not verify.
    let mut bad = receipts[0].clone();
    let mut settlement: Vec<char> = s(&bad, "settlement").chars().collect();
    // A hex digit inside the signature (after magic, version, community and document).
    settlement[150] = if settlement[150] == '0' { '1' } else { '0' };
    bad["settlement"] = Value::String(settlement.into_iter().collect());
    assert!(Receipt::from_json(&bad.to_string())
        .map(|r| r.verify().is_err())
        .unwrap_or(true));

    // Bob took part in both exchanges: both receipts, one confirmed, one declined.
    let doc = json(&bob, &["export", "--format", "json"]);
    let mut got: Vec<(i64, bool)> = doc["receipts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            let s = verify(&r.to_string());
            (s.minutes.0, s.confirmed)
        })
        .collect();
    got.sort();
    assert_eq!(got, vec![(30, false), (60, true)]);
    assert_eq!(doc["redacted"], 0);

    // CSV: one header row, one row per record, the receipt in its own column.
    let csv_file = w.file("alice.csv");
    coop(
        &alice,
        &[
            "export",
            "--format",
            "csv",
            "--out",
            csv_file.to_str().unwrap(),
        ],
    )
    .ok();
    let text = std::fs::read_to_string(&csv_file).unwrap();
    assert!(text.ends_with("\r\n"));
    let rows = parse_csv(&text);
    assert_eq!(
        rows[0],
        [
            "position",
            "id",
            "time",
            "kind",
            "status",
            "reason",
            "member",
            "member_name",
            "hidden",
            "redacted",
            "summary",
            "detail",
            "fields",
            "receipt"
        ]
    );
    assert_eq!(rows.len() - 1, records.len());
    assert!(
        rows.iter().all(|r| r.len() == 14),
        "every row has 14 fields"
    );
    let with_receipt: Vec<&Vec<String>> = rows[1..].iter().filter(|r| !r[13].is_empty()).collect();
    assert_eq!(with_receipt.len(), 1);
    assert_eq!(with_receipt[0][3], "attest");
    assert_eq!(verify(&with_receipt[0][13]).minutes.0, 60);
    let fields: Value = serde_json::from_str(&with_receipt[0][12]).unwrap();
    assert_eq!(s(&fields, "service"), "gardening, weeding");
    assert_eq!(rows[1..].iter().filter(|r| r[9] == "true").count(), 2);

    // To standard output, and with --json around CSV; --all is accepted (nothing hidden).
    let out = coop(&alice, &["export", "--format", "csv", "--all"])
        .ok()
        .stdout;
    assert_eq!(out, text);
    let j = json(&alice, &["export", "--format", "csv"]);
    assert_eq!(s(&j, "csv"), text);
    assert_eq!(j["receipts"], 1);

    // Bad input.
    for args in [
        &["export"][..],
        &["export", "--format", "xml"],
        &["export", "--format"],
    ] {
        coop(&alice, args).code(2);
    }
    let nowhere = w.file("no/such/dir/x.json");
    let r = coop(
        &alice,
        &[
            "export",
            "--format",
            "json",
            "--out",
            nowhere.to_str().unwrap(),
        ],
    )
    .code(1);
    assert_eq!(r.stderr.lines().count(), 1, "{}", r.stderr);
    assert!(
        r.stderr.starts_with("error: cannot write in"),
        "{}",
        r.stderr
    );
}
