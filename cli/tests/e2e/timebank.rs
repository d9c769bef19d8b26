//! `hours log|pending|confirm|decline` and `balance`.

use super::support::*;

#[test]
fn hours_flow_from_attestation_to_balance() {
    let w = World::new();
    let (alice, bob) = w.two(&[]);
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64;
    let today = coop_model::Day::from_unix(now).to_string();

    // Bob repairs Alice's car for 3 h.
    let logged = json(
        &bob,
        &[
            "hours",
            "log",
            "--to",
            "Alice",
            "--minutes",
            "180",
            "--service",
            "car repair",
            "--category",
            "repair",
            "--date",
            &today,
        ],
    );
    let att = s(&logged, "id");
    assert_eq!(att.len(), 64);
    assert_eq!(i(&logged, "minutes"), 180);
    assert_eq!(s(&logged, "date"), today);
    assert_eq!(s(&logged, "status"), "pending");

    // Bob cannot confirm his own attestation; nothing is written.
    let before = changes(&bob);
    coop(&bob, &["hours", "confirm", &att[..8]])
        .refused("refused: not_allowed: cannot confirm or decline your own attestation");
    assert_eq!(changes(&bob), before);

    w.carry(&bob, &alice);
    let pending = json(&alice, &["hours", "pending"]);
    let list = pending["pending"].as_array().unwrap();
    assert_eq!(list.len(), 1);
    assert_eq!(s(&list[0], "id"), att);
    assert_eq!(s(&list[0], "provider_name"), "Bob");
    assert_eq!(i(&list[0], "minutes"), 180);
    let text = coop(&alice, &["hours", "pending"]).ok().stdout;
    assert!(
        text.contains(&att[..12]) && text.contains("car repair"),
        "{text}"
    );

    let conf = json(&alice, &["hours", "confirm", &att[..10]]);
    assert_eq!(s(&conf, "attestation"), att);
    assert_eq!(s(&conf, "status"), "confirmed");
    assert_eq!(i(&conf, "balance_minutes"), -180);
    assert!(json(&alice, &["hours", "pending"])["pending"]
        .as_array()
        .unwrap()
        .is_empty());
    // Settled once.
    coop(&alice, &["hours", "confirm", &att[..10]]).refused("refused: already_settled");

    let b = json(&alice, &["balance", "Bob"]);
    assert_eq!(i(&b, "minutes"), 180);
    assert_eq!(i(&b, "provided"), 180);
    assert_eq!(i(&b, "received"), 0);
    assert_eq!(s(&b, "display_name"), "Bob");
    assert_eq!(b["warning"], false);
    let a = json(&alice, &["balance"]);
    assert_eq!(i(&a, "minutes"), -180);
    assert_eq!(i(&a, "received"), 180);
    assert!(a["ratio_percent"].is_null());
    // Received without providing: the fair-exchange nudge.
    assert_eq!(a["warning"], true);
    assert_eq!(i(&a, "window_days"), 182);
    let text = coop(&alice, &["balance"]).ok().stdout;
    assert!(
        text.contains("-180 min (-3 h)") && text.contains("WARNING"),
        "{text}"
    );
}

#[test]
fn declining_settles_without_moving_time() {
    let w = World::new();
    let (alice, bob) = w.two(&[]);
    let att = s(
        &json(
            &bob,
            &[
                "hours",
                "log",
                "--to",
                "Alice",
                "--minutes",
                "30",
                "--service",
                "dog walk",
            ],
        ),
        "id",
    );
    w.carry(&bob, &alice);
    let d = json(&alice, &["hours", "decline", &att]);
    assert_eq!(s(&d, "status"), "declined");
    assert_eq!(i(&json(&alice, &["balance"]), "minutes"), 0);
    coop(&alice, &["hours", "confirm", &att]).refused("refused: already_settled");
}

#[test]
fn a_confirmation_below_the_floor_is_refused_and_writes_nothing() {
    let w = World::new();
    let (alice, bob) = w.two(&["--param", "timebank_floor_minutes=-60"]);
    let att = s(
        &json(
            &bob,
            &[
                "hours",
                "log",
                "--to",
                "Alice",
                "--minutes",
                "90",
                "--service",
                "painting",
            ],
        ),
        "id",
    );
    w.carry(&bob, &alice);
    let before = changes(&alice);
    coop(&alice, &["hours", "confirm", &att[..12]])
        .refused("refused: below_floor: balance would be -90 min, floor is -60 min");
    assert_eq!(changes(&alice), before);
    assert_eq!(i(&json(&alice, &["balance"]), "minutes"), 0);
}

#[test]
fn unknown_record_ids_fail_with_one_line() {
    let w = World::new();
    let alice = w.found(&[]);
    let r = coop(&alice, &["hours", "confirm", "abcdef"]).code(1);
    // Looked up among the attestations, the kind `hours confirm` expects.
    assert_eq!(
        r.stderr.trim(),
        "error: \"abcdef\" is not an attestation (no attestation id starts with it)"
    );
}
