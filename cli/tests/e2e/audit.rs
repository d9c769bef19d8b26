//! `ledger`, `verify` (including a tampered store) and `params`.

use coop_model::record;
use coop_model::{Envelope, Record, RecordId};
use coop_node::{DataDir, LocalNode, Store};

use super::support::*;

#[test]
fn a_concurrent_allocation_on_a_closed_proposal_is_listed_as_refused() {
    let w = World::new();
    let (alice, bob) = w.two(&[]);
    let p = s(
        &json(&alice, &["proposal", "open", "--title", "Bike racks"]),
        "id",
    );
    w.carry(&alice, &bob);
    // Alice closes it while Bob, who has not heard, supports it after two other records:
    // in the total order his allocation comes after her close.
    json(&alice, &["proposal", "close", &p, "--outcome", "cancelled"]);
    for service in ["weeding", "watering"] {
        json(
            &bob,
            &[
                "hours",
                "log",
                "--to",
                "Alice",
                "--minutes",
                "30",
                "--service",
                service,
            ],
        );
    }
    let alloc = s(&json(&bob, &["sp", "allocate", &p, "5"]), "id");
    assert_eq!(i(&json(&bob, &["sp", "status"]), "available"), 95);
    w.carry(&bob, &alice);
    w.carry(&alice, &bob);

    for dir in [&alice, &bob] {
        let refused = json(dir, &["ledger", "--refused"]);
        let records = refused["records"].as_array().unwrap();
        assert_eq!(records.len(), 1, "{refused}");
        assert_eq!(s(&records[0], "id"), alloc);
        assert_eq!(s(&records[0], "kind"), "allocate");
        assert_eq!(s(&records[0], "status"), "refused");
        assert_eq!(s(&records[0], "reason"), "proposal_closed");
        assert_eq!(i(&refused, "refused"), 1);
        assert_eq!(i(&json(dir, &["status"]), "refused"), 1);
    }
    // Once both hold the same changes, both agree: Bob's points are back.
    assert_eq!(i(&json(&bob, &["sp", "status"]), "available"), 100);
    assert_eq!(
        s(&json(&alice, &["status"]), "digest"),
        s(&json(&bob, &["status"]), "digest")
    );
    let text = coop(&alice, &["ledger", "--refused"]).ok().stdout;
    assert!(
        text.contains("proposal_closed") && text.contains(&alloc[..12]),
        "{text}"
    );

    // Refused records are not damage: verify passes and counts them.
    let v = json(&alice, &["verify"]);
    assert_eq!(v["ok"], true);
    assert_eq!(i(&v, "refused_records"), 1);
}

#[test]
fn ledger_lists_newest_first_filters_and_hides_moderated_records() {
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
                "15",
                "--service",
                "spam spam",
            ],
        ),
        "id",
    );
    w.carry(&bob, &alice);
    let all = json(&alice, &["ledger"]);
    let records = all["records"].as_array().unwrap();
    assert_eq!(s(&records[0], "id"), att, "newest first");
    assert!(records.iter().any(|r| r["kind"] == "genesis"));
    let positions: Vec<i64> = records.iter().map(|r| i(r, "position")).collect();
    assert!(positions.windows(2).all(|w| w[0] > w[1]), "{positions:?}");
    assert_eq!(positions[0] as usize, records.len() - 1);
    for key in [
        "id", "kind", "device", "member", "time", "summary", "status",
    ] {
        assert!(!records[0][key].is_null(), "{key} in {}", records[0]);
    }
    let vouches = json(&alice, &["ledger", "--kind", "vouch"]);
    assert_eq!(vouches["records"].as_array().unwrap().len(), 1);
    let limited = json(&alice, &["ledger", "--limit", "2"]);
    assert_eq!(limited["records"].as_array().unwrap().len(), 2);

    // A moderator (the founder) hides the attestation: it leaves listings, not the ledger.
    {
        let mut node = LocalNode::open(&DataDir::new(&alice)).unwrap();
        node.submit(
            Record::Hide(record::Hide {
                record: RecordId::from_hex(&att).unwrap(),
                reason: "spam".into(),
            }),
            1_800_000_000,
        )
        .unwrap();
    }
    let shown = json(&alice, &["ledger", "--kind", "attest"]);
    assert!(shown["records"].as_array().unwrap().is_empty(), "{shown}");
    let everything = json(&alice, &["ledger", "--kind", "attest", "--all"]);
    assert_eq!(everything["records"][0]["hidden"], true);
    assert!(json(&alice, &["hours", "pending"])["pending"]
        .as_array()
        .unwrap()
        .is_empty());
}

#[test]
fn verify_names_the_record_whose_stored_signature_was_tampered_with() {
    let w = World::new();
    let alice = w.found(&[]);
    let p = s(
        &json(&alice, &["proposal", "open", "--title", "Bike racks"]),
        "id",
    );
    json(&alice, &["proposal", "open", "--title", "Tool library"]);
    let ok = coop(&alice, &["verify"]).ok().stdout;
    assert!(ok.contains("every signature"), "{ok}");
    assert_eq!(json(&alice, &["verify"])["ok"], true);

    {
        let mut store = Store::open(&alice.join("store")).unwrap();
        let (position, mut bytes) = store
            .log()
            .map(|e| e.unwrap())
            .find(|e| {
                Envelope::decode(&e.bytes)
                    .ok()
                    .and_then(|env| env.record_id())
                    .is_some_and(|id| id.to_hex() == p)
            })
            .map(|e| (e.position, e.bytes))
            .expect("the proposal is stored");
        // The signature is bytes 69..133 of an envelope (docs/PROTOCOL.md).
        bytes[100] ^= 0x01;
        store.corrupt_for_test(position, bytes).unwrap();
    }

    let r = coop(&alice, &["verify"]).code(1);
    assert!(r.stdout.contains("FAILED"), "{}", r.stdout);
    assert!(r.stdout.contains(&format!("record {p}")), "{}", r.stdout);
    assert!(r.stdout.contains("bad_signature"), "{}", r.stdout);
    let j = coop(&alice, &["--json", "verify"]).code(1).json();
    assert_eq!(j["ok"], false);
    // The tampered record is named first; records built on it cannot verify either.
    let bad = j["bad_entries"].as_array().unwrap();
    assert_eq!(s(&bad[0], "id"), p);
    assert!(s(&bad[0], "reason").contains("bad_signature"), "{j}");
}

#[test]
fn params_show_values_and_their_origin() {
    let w = World::new();
    let alice = w.found(&[
        "--param",
        "sp_budget=120",
        "--param",
        "aid_categories=food,rides",
    ]);
    let p = json(&alice, &["params"]);
    assert_eq!(p["params"]["sp_budget"], 120);
    assert_eq!(p["params"]["admission_vouches"], 1);
    assert_eq!(
        p["params"]["aid_categories"],
        serde_json::json!(["food", "rides"])
    );
    let history = p["history"].as_array().unwrap();
    let genesis = s(&json(&alice, &["status"]), "community");
    assert!(history
        .iter()
        .any(|c| c["key"] == "sp_budget" && c["value"] == "120" && c["at"] == genesis.as_str()));
    let text = coop(&alice, &["params"]).ok().stdout;
    assert!(text.contains("sp_budget") && text.contains("120"), "{text}");
    assert!(
        text.contains("timebank_floor_minutes") && text.contains("-600"),
        "{text}"
    );
    assert_eq!(i(&json(&alice, &["sp", "status"]), "budget"), 120);
}
