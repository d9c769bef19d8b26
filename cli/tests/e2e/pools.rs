//! Investment pools and relief: `pool create|contribute|confirm|apply|disburse|return|show|
//! list` and `relief request|approve|show|list`, with `--json`, refusals and usage errors.

use std::path::Path;

use serde_json::Value;

use super::support::*;

/// `coop --json pool create ...`; returns the pool id.
fn create(dir: &Path, name: &str, extra: &[&str]) -> String {
    let mut args = vec!["pool", "create", "--name", name, "--currency", "EUR"];
    args.extend_from_slice(extra);
    s(&json(dir, &args), "id")
}

/// The contributor entry of `name` in a `pool show --json`.
fn contributor<'a>(pool: &'a Value, name: &str) -> &'a Value {
    pool["contributors"]
        .as_array()
        .expect("contributors")
        .iter()
        .find(|c| c["name"] == name)
        .unwrap_or_else(|| panic!("no contributor {name} in {pool}"))
}

#[test]
fn pledges_count_once_another_treasurer_confirms_them_and_returns_are_shared() {
    let w = World::new();
    let (alice, bob) = w.two(&[]);
    let pid = create(
        &bob,
        "Solar roof",
        &[
            "--policy",
            "distribute",
            "--description",
            "Panels on the hall",
        ],
    );
    let k_bob = json(&bob, &["pool", "contribute", &pid[..8], "300"]);
    assert_eq!(i(&k_bob, "amount"), 30_000);
    assert_eq!(s(&k_bob, "status"), "pledged");
    let k_bob = s(&k_bob, "id");
    // Only treasurers confirm: bob is not one.
    coop(&bob, &["pool", "confirm", &k_bob[..8]])
        .refused("refused: not_allowed: only treasurers confirm contributions");
    w.carry(&bob, &alice);
    let k_alice = s(
        &json(&alice, &["pool", "contribute", &pid[..8], "100.5"]),
        "id",
    );
    // Four eyes: alice, the one treasurer, cannot confirm her own money.
    coop(&alice, &["pool", "confirm", &k_alice[..8]])
        .refused("refused: not_allowed: a treasurer does not confirm their own contribution");
    let c = json(&alice, &["pool", "confirm", &k_bob[..8]]);
    assert_eq!(i(&c, "balance"), 30_000);
    assert_eq!(s(&c, "currency"), "EUR");
    coop(&alice, &["pool", "confirm", &k_bob[..8]])
        .refused("refused: already_settled: contribution already confirmed");

    let show = json(&alice, &["pool", "show", &pid[..8]]);
    assert_eq!(i(&show, "balance"), 30_000);
    assert_eq!(i(&show, "pledged"), 10_050);
    assert_eq!(s(&show, "policy"), "distribute");
    assert_eq!(i(contributor(&show, "Bob"), "share_bps"), 10_000);
    let statuses: Vec<&str> = show["contributions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| k["status"].as_str().unwrap())
        .collect();
    assert_eq!(statuses.len(), 2);
    assert!(statuses.contains(&"pledged") && statuses.contains(&"confirmed"));

    // Money back into the pool: under `distribute` all of it is owed to bob.
    let r = json(&alice, &["pool", "return", &pid[..8], "10.01"]);
    assert_eq!((i(&r, "distributed"), i(&r, "reinvested")), (1_001, 0));
    assert_eq!(i(&r, "balance"), 30_000);
    coop(&bob, &["pool", "return", &pid[..8], "1"])
        .refused("refused: not_allowed: only treasurers record returns");
    let show = json(&alice, &["pool", "show", &pid[..8]]);
    assert_eq!(i(contributor(&show, "Bob"), "owed"), 1_001);
    assert_eq!(i(&show, "distributed"), 1_001);
    let text = coop(&alice, &["pool", "show", &pid[..8]]).ok().stdout;
    assert!(
        text.contains("300.00")
            && text.contains("100.00 %")
            && text.contains("10.01 owed to contributors")
            && text.contains("Panels on the hall"),
        "{text}"
    );

    let list = json(&alice, &["pool", "list"]);
    let pools = list["pools"].as_array().unwrap();
    assert_eq!(pools.len(), 1);
    assert_eq!(s(&pools[0], "id"), pid);
    assert_eq!(i(&list["totals"]["EUR"], "balance"), 30_000);
    assert_eq!(i(&list["totals"]["EUR"], "pools"), 1);
    let text = coop(&alice, &["pool", "list"]).ok().stdout;
    assert!(
        text.contains("Solar roof") && text.contains("300.00"),
        "{text}"
    );
}

#[test]
fn applications_get_no_money_before_an_allocation() {
    let w = World::new();
    let (alice, bob) = w.two(&[]);
    let pid = create(&alice, "Repair cafe", &[]);
    let k = s(
        &json(&alice, &["pool", "contribute", &pid[..8], "500"]),
        "id",
    );
    w.carry(&alice, &bob);
    let a = json(
        &bob,
        &[
            "pool",
            "apply",
            &pid[..8],
            "--title",
            "Workbench",
            "--amount",
            "199.99",
            "--terms",
            "Paid back from repair fees within a year.",
        ],
    );
    assert_eq!(i(&a, "amount"), 19_999);
    assert_eq!(s(&a, "status"), "pending");
    let aid = s(&a, "id");
    w.carry(&bob, &alice);
    coop(&alice, &["pool", "disburse", &aid[..8], "100"])
        .refused("refused: not_allocated: no decision has allocated this application");
    coop(&bob, &["pool", "disburse", &aid[..8], "100"])
        .refused("refused: not_allowed: only treasurers disburse");
    coop(&alice, &["pool", "return", &aid[..8], "100"]).refused("refused: not_allocated");
    let show = json(&alice, &["pool", "show", &pid[..8]]);
    let apps = show["applications"].as_array().unwrap();
    assert_eq!(apps.len(), 1);
    assert_eq!(s(&apps[0], "status"), "pending");
    assert_eq!(s(&apps[0], "applicant_name"), "Bob");
    assert_eq!(
        i(&show, "balance"),
        0,
        "alice's own pledge {k} is unconfirmed"
    );

    // A relief fund takes relief requests, not applications.
    let fund = create(&alice, "Relief", &["--relief"]);
    coop(
        &alice,
        &[
            "pool",
            "apply",
            &fund[..8],
            "--title",
            "Workbench",
            "--amount",
            "5",
            "--terms",
            "Paid back from repair fees.",
        ],
    )
    .refused("refused: not_allowed: a relief fund takes relief requests, not applications");
}

#[test]
fn relief_reasons_are_sealed_to_stewards_and_releases_disclose_who_and_how_much() {
    let w = World::new();
    let (alice, bob) = w.two(&[
        "--param",
        "relief_approvals=1",
        "--param",
        "relief_max_per_person=50000",
    ]);
    coop(
        &bob,
        &[
            "pool",
            "create",
            "--name",
            "Mine",
            "--currency",
            "EUR",
            "--relief",
        ],
    )
    .refused("refused: not_allowed: only treasurers open relief funds");
    let fund = create(&alice, "Relief fund", &["--relief"]);
    w.carry(&alice, &bob);
    let k = s(
        &json(&bob, &["pool", "contribute", &fund[..8], "400"]),
        "id",
    );
    w.carry(&bob, &alice);
    json(&alice, &["pool", "confirm", &k[..8]]);
    w.carry(&alice, &bob);

    const REASON: &str = "The boiler broke and the flat is freezing";
    coop(
        &bob,
        &[
            "relief",
            "request",
            &fund[..8],
            "500.01",
            "--reason",
            "Too much",
        ],
    )
    .refused("refused: over_relief_cap");
    let req = json(
        &bob,
        &[
            "relief",
            "request",
            &fund[..8],
            "300",
            "--urgency",
            "high",
            "--reason",
            REASON,
        ],
    );
    assert_eq!(s(&req, "status"), "pending");
    assert_eq!(req["sealed_to"].as_array().unwrap().len(), 1);
    let rid = s(&req, "id");

    // The reason is not in the shared ledger in clear: not in the sync file either.
    let file = w.file("ledger.coopsync");
    coop(&bob, &["sync", "export", file.to_str().unwrap()]).ok();
    let bytes = std::fs::read(&file).unwrap();
    assert!(!bytes.windows(REASON.len()).any(|x| x == REASON.as_bytes()));
    w.carry(&bob, &alice);

    // Bob (not a steward) sees "sealed"; alice (the steward) reads it.
    let mine = json(&bob, &["relief", "show", &rid[..8]]);
    assert_eq!(mine["reason"], Value::Null);
    assert_eq!(mine["reason_sealed"], true);
    assert!(coop(&bob, &["relief", "show", &rid[..8]])
        .ok()
        .stdout
        .contains("reason       sealed"));
    let theirs = json(&alice, &["relief", "show", &rid[..8]]);
    assert_eq!(s(&theirs, "reason"), REASON);
    assert_eq!(s(&theirs, "beneficiary_name"), "Bob");
    assert_eq!(i(&theirs, "amount"), 30_000);
    let list = coop(&alice, &["relief", "list"]).ok().stdout;
    assert!(list.contains("The boiler broke"), "{list}");

    // Only stewards approve, and not their own requests.
    coop(&bob, &["relief", "approve", &rid[..8]])
        .refused("refused: not_allowed: only stewards approve relief");
    let ok = json(&alice, &["relief", "approve", &rid[..8]]);
    assert_eq!(s(&ok, "status"), "released");
    coop(&alice, &["relief", "approve", &rid[..8]]).refused("refused: already_settled");
    let own = s(
        &json(
            &alice,
            &["relief", "request", &fund[..8], "1", "--reason", "Mine"],
        ),
        "id",
    );
    coop(&alice, &["relief", "approve", &own[..8]])
        .refused("refused: not_allowed: a steward does not approve their own request");

    // The release discloses beneficiary and amount in the fund's movements.
    let show = json(&alice, &["pool", "show", &fund[..8]]);
    assert_eq!(i(&show, "balance"), 10_000);
    let release = show["movements"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["kind"] == "release")
        .expect("a release");
    assert_eq!(i(release, "amount"), 30_000);
    assert_eq!(s(release, "beneficiary_name"), "Bob");
    let text = coop(&alice, &["pool", "show", &fund[..8]]).ok().stdout;
    assert!(
        text.contains("relief") && text.contains("to Bob") && !text.contains("boiler"),
        "{text}"
    );

    // 300.00 received: 200.01 more within the period crosses the 500.00 cap, even with
    // money in the fund; a fund that cannot cover a request refuses it too.
    w.carry(&alice, &bob);
    let k2 = s(
        &json(&bob, &["pool", "contribute", &fund[..8], "1000"]),
        "id",
    );
    w.carry(&bob, &alice);
    json(&alice, &["pool", "confirm", &k2[..8]]);
    w.carry(&alice, &bob);
    let more = s(
        &json(
            &bob,
            &[
                "relief",
                "request",
                &fund[..8],
                "200.01",
                "--reason",
                "Again",
            ],
        ),
        "id",
    );
    w.carry(&bob, &alice);
    coop(&alice, &["relief", "approve", &more[..8]]).refused(
        "refused: over_relief_cap: 300.00 received within 365 days, 200.01 more would exceed 500.00",
    );
    let pending = json(&alice, &["relief", "list", "--status", "pending"]);
    assert_eq!(pending["requests"].as_array().unwrap().len(), 2);
    let released = json(&alice, &["relief", "list", "--status", "released"]);
    let released = released["requests"].as_array().unwrap();
    assert_eq!(released.len(), 1);
    assert_eq!(s(&released[0], "id"), rid);
    let totals = &json(&alice, &["relief", "list"])["totals"]["EUR"];
    assert_eq!(i(totals, "released_amount"), 30_000);
    assert_eq!(i(totals, "open_amount"), 20_001 + 100);
    assert_eq!(i(totals, "fund_balance"), 110_000);
    let m = json(&alice, &["metrics"]);
    assert_eq!(m["relief"]["open_requests"], 2);
    assert_eq!(m["relief"]["open_amount"][0]["minor"], 20_101);
    assert_eq!(m["relief"]["disbursed"][0]["minor"], 30_000);
    assert_eq!(
        m["pools"],
        Value::Null,
        "a relief fund is not an investment pool"
    );
    let text = coop(&alice, &["metrics"]).ok().stdout;
    assert!(text.contains("2 open request(s) for 201.01 EUR"), "{text}");
}

#[test]
fn relief_waits_for_two_stewards_by_default() {
    // relief_approvals defaults to 2; until role grants land the founder is the only
    // steward, so one approval counts and a second by the same steward is redundant.
    let w = World::new();
    let (alice, bob) = w.two(&[]);
    let fund = create(&alice, "Relief", &["--relief"]);
    w.carry(&alice, &bob);
    let rid = s(
        &json(
            &bob,
            &["relief", "request", &fund[..8], "20", "--reason", "Rent"],
        ),
        "id",
    );
    w.carry(&bob, &alice);
    let a = json(&alice, &["relief", "approve", &rid[..8]]);
    assert_eq!(s(&a, "status"), "pending");
    assert_eq!((i(&a, "approvals"), i(&a, "needed")), (1, 2));
    coop(&alice, &["relief", "approve", &rid[..8]]).refused("refused: redundant");
}

#[test]
fn bad_amounts_currencies_and_choices_are_usage_errors() {
    let w = World::new();
    let alice = w.found(&[]);
    let before = changes(&alice);
    let cases: &[&[&str]] = &[
        &["pool", "create", "--name", "X", "--currency", "eur"],
        &["pool", "create", "--name", "X", "--currency", "EURO"],
        &[
            "pool",
            "create",
            "--name",
            "X",
            "--currency",
            "EUR",
            "--policy",
            "burn",
        ],
        &["pool", "create", "--currency", "EUR"],
        &["pool", "contribute", "abcd", "12.505"],
        &["pool", "contribute", "abcd", "-5"],
        &["pool", "contribute", "abcd", "0"],
        &["pool", "contribute", "abcd", "1,50"],
        &["pool", "contribute", "abcd", "ten"],
        &["pool", "disburse", "abcd", "1e3"],
        &["pool", "return", "abcd"],
        &[
            "pool",
            "apply",
            "abcd",
            "--title",
            "Hi",
            "--amount",
            "5",
            "--terms",
            "Paid back soon.",
        ],
        &["relief", "request", "abcd", "5"],
        &["relief", "request", "abcd", "5", "--reason", ""],
        &[
            "relief",
            "request",
            "abcd",
            "5",
            "--reason",
            "x",
            "--urgency",
            "now",
        ],
        &["relief", "list", "--status", "lost"],
    ];
    for args in cases {
        let r = coop(&alice, args);
        assert_eq!(
            r.code, 2,
            "{args:?}\nstdout: {}\nstderr: {}",
            r.stdout, r.stderr
        );
        assert!(r.stderr.starts_with("error:"), "{args:?}: {}", r.stderr);
    }
    // An id that names nothing: a one-line error, exit 1, nothing written.
    let r = coop(&alice, &["pool", "show", "abcdef"]);
    assert_eq!(r.code, 1);
    assert_eq!(r.stderr.lines().count(), 1, "{}", r.stderr);
    let genesis = s(&json(&alice, &["status"]), "community");
    let r = coop(&alice, &["pool", "show", &genesis[..12]]);
    assert_eq!(r.code, 1);
    assert!(r.stderr.contains("is not a pool"), "{}", r.stderr);
    let r = coop(&alice, &["--json", "relief", "show", &genesis[..12]]);
    assert_eq!(r.code, 1);
    assert_eq!(r.json()["error"]["kind"], "error");
    assert_eq!(changes(&alice), before);
}

#[test]
fn a_decision_allocates_an_application_which_treasurers_then_disburse() {
    let w = World::new();
    let (alice, bob) = w.two(&[]);
    let pid = create(&alice, "Tool library", &["--policy", "hybrid"]);
    w.carry(&alice, &bob);
    let k = s(&json(&bob, &["pool", "contribute", &pid[..8], "400"]), "id");
    let aid = s(
        &json(
            &bob,
            &[
                "pool",
                "apply",
                &pid[..8],
                "--title",
                "Shelves and tools",
                "--amount",
                "250",
                "--terms",
                "Repaid from lending fees within a year.",
            ],
        ),
        "id",
    );
    w.carry(&bob, &alice);
    json(&alice, &["pool", "confirm", &k[..8]]);
    coop(&alice, &["pool", "disburse", &aid[..8], "100"]).refused("refused: not_allocated");

    let opened = json(
        &alice,
        &[
            "decision",
            "open",
            "--title",
            "Fund the shelves",
            "--window",
            "1h",
            "--allocate",
            &aid[..8],
        ],
    );
    let d = s(&opened, "id");
    let closes = i(&opened, "closes_at");
    json(&alice, &["decision", "vote", &d[..8], "yes"]);
    let closed = coop_at(
        &alice,
        closes + 1,
        &["--json", "decision", "close", &d[..8]],
    )
    .ok()
    .json();
    assert_eq!(s(&closed, "status"), "passed");

    let after = closes + 60;
    coop_at(&alice, after, &["pool", "disburse", &aid[..8], "250.01"])
        .refused("refused: over_allocation");
    let paid = coop_at(
        &alice,
        after,
        &["--json", "pool", "disburse", &aid[..8], "200"],
    )
    .ok()
    .json();
    assert_eq!(
        (i(&paid, "disbursed"), i(&paid, "allocated")),
        (20_000, 25_000)
    );
    assert_eq!(i(&paid, "balance"), 20_000);
    // Half of a 100.01 return is owed to bob (the one contributor), 50.01 stays.
    let back = coop_at(
        &alice,
        after,
        &["--json", "pool", "return", &aid[..8], "100.01"],
    )
    .ok()
    .json();
    assert_eq!(
        (i(&back, "distributed"), i(&back, "balance")),
        (5_000, 25_001)
    );
    let show = json(&alice, &["pool", "show", &pid[..8]]);
    let app = &show["applications"][0];
    assert_eq!(s(app, "status"), "allocated");
    assert_eq!(s(app, "decision"), d);
    assert_eq!(i(app, "returned"), 10_001);
    assert_eq!(i(contributor(&show, "Bob"), "owed"), 5_000);
    let m = json(&alice, &["metrics"]);
    assert_eq!(m["pools"]["pools"], 1);
    assert_eq!(m["pools"]["balance"][0]["minor"], 25_001);
    assert_eq!(m["pools"]["disbursed"][0]["minor"], 20_000);
    // A second decision on an allocated application cannot be opened.
    coop(
        &alice,
        &[
            "decision",
            "open",
            "--title",
            "Again",
            "--allocate",
            &aid[..8],
        ],
    )
    .refused("refused: already_settled: application already allocated");
}
