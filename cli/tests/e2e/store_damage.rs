//! A damaged store through the real binary (issue 15): writes are refused with one line
//! naming the data dir and `coop repair`, and `coop verify` fails.

use super::support::*;

/// Flips bit `bit` of byte `offset` of `store/db`.
fn flip(dir: &std::path::Path, offset: usize, bit: u8) {
    let db = dir.join("store").join("db");
    let mut bytes = std::fs::read(&db).unwrap();
    bytes[offset] ^= 1 << bit;
    std::fs::write(&db, bytes).unwrap();
}

#[test]
fn a_flipped_bit_at_the_start_of_db_stops_writes_and_fails_verify() {
    let w = World::new();
    let alice = w.found(&[]);
    json(&alice, &["proposal", "open", "--title", "Before damage"]);
    flip(&alice, 5, 5);

    let r = coop(&alice, &["proposal", "open", "--title", "After damage"]).code(1);
    assert_eq!(r.stderr.lines().count(), 1, "one line: {}", r.stderr);
    assert!(
        r.stderr.contains(&alice.display().to_string()) && r.stderr.contains("coop repair"),
        "names the data dir and what to do: {}",
        r.stderr
    );

    let v = coop(&alice, &["verify"]).code(1);
    assert!(
        v.stdout.contains("FAILED") && v.stdout.contains("manifest"),
        "{}",
        v.stdout
    );
    let j = coop(&alice, &["--json", "verify"]).code(1).json();
    assert_eq!(j["ok"], false);
    assert!(j["store_damage"].is_string(), "{j}");
}

#[test]
fn coop_up_refuses_to_serve_a_damaged_store() {
    let w = World::new();
    let alice = w.found(&[]);
    json(&alice, &["proposal", "open", "--title", "Before damage"]);
    flip(&alice, 5, 5);
    // Standard input is closed: were the node to start, it would stop again at once (exit 0).
    let r = coop(
        &alice,
        &[
            "up",
            "--listen",
            "/ip4/127.0.0.1/tcp/0",
            "--no-mdns",
            "--no-ui",
            "--stop-on-stdin-eof",
        ],
    )
    .code(1);
    assert!(
        r.stderr.contains(&alice.display().to_string()) && r.stderr.contains("coop repair"),
        "names the data dir and what to do: {}",
        r.stderr
    );
    assert!(!alice.join("api.sock").exists(), "nothing is served");
}

#[test]
fn repair_recovers_a_damaged_store_to_a_healthy_replicas_digest_from_a_sync_file() {
    let w = World::new();
    let (alice, bob) = w.two(&[]);
    json(&alice, &["proposal", "open", "--title", "Bike racks"]);
    json(&alice, &["proposal", "open", "--title", "Tool library"]);
    w.carry(&alice, &bob);
    // Alice's last write reaches nobody before the damage.
    json(&alice, &["proposal", "open", "--title", "Never gossiped"]);
    let recorded = changes(&alice);
    // Damage sled cannot read past at all: repair must take everything from the file.
    std::fs::write(alice.join("store").join("db"), b"").unwrap();
    coop(&alice, &["proposal", "open", "--title", "Refused"]).code(1);

    let file = w.file("bob.coopsync");
    coop(&bob, &["sync", "export", file.to_str().unwrap()]).ok();
    let r = coop(
        &alice,
        &[
            "--json",
            "repair",
            "--offline",
            "--from",
            file.to_str().unwrap(),
        ],
    )
    .ok()
    .json();
    let report = &r["report"];
    assert_eq!(i(report, "total"), changes(&bob), "{r}");
    assert_eq!(i(report, "recorded"), recorded, "{r}");
    assert_eq!(
        i(report, "missing_at_least"),
        1,
        "the ungossiped write is missing: {r}"
    );
    let aside = std::path::PathBuf::from(s(report, "kept_aside"));
    assert!(aside.join("db").exists(), "the damaged store is kept: {r}");

    coop(&alice, &["verify"]).ok();
    assert_eq!(
        s(&json(&alice, &["status"]), "digest"),
        s(&json(&bob, &["status"]), "digest")
    );
    // Writes work again and last.
    json(&alice, &["proposal", "open", "--title", "After repair"]);
    assert_eq!(changes(&alice), changes(&bob) + 1);
    coop(&alice, &["verify"]).ok();

    let text = coop(&bob, &["repair", "--offline"]).ok().stdout;
    assert!(text.contains("0 only other sources had"), "{text}");
}

#[test]
fn repair_asks_a_running_peer_for_what_the_damaged_store_lost() {
    let w = World::new();
    let (alice, bob) = w.two(&[]);
    json(&alice, &["proposal", "open", "--title", "Bike racks"]);
    w.carry(&alice, &bob);
    // Alice's last write reaches nobody before the damage.
    json(&alice, &["proposal", "open", "--title", "Never gossiped"]);
    let recorded = changes(&alice);
    std::fs::write(alice.join("store").join("db"), b"").unwrap();
    coop(&alice, &["proposal", "open", "--title", "Refused"]).code(1);

    let bob_up = Up::start(&bob, &[]);
    let want = changes(&bob);
    let addr = bob_up.listen().remove(0);
    let r = coop(
        &alice,
        &[
            "--json",
            "repair",
            "--peer",
            &addr,
            "--no-mdns",
            "--listen",
            "/ip4/127.0.0.1/tcp/0",
            "--wait",
            "120",
        ],
    )
    .ok()
    .json();
    let report = &r["report"];
    assert_eq!(i(report, "recovered_from_store"), 0, "{r}");
    assert_eq!(i(report, "recovered_from_peers"), want, "{r}");
    assert_eq!(i(report, "total"), want, "{r}");
    assert_eq!(i(&report["pulled"], "peers"), 1, "{r}");
    assert_eq!(report["pulled"]["timed_out"], false, "{r}");
    assert_eq!(
        i(report, "missing_at_least"),
        recorded - want,
        "only the ungossiped write is missing: {r}"
    );
    drop(bob_up);
    coop(&alice, &["verify"]).ok();
    assert_eq!(
        s(&json(&alice, &["status"]), "digest"),
        s(&json(&bob, &["status"]), "digest")
    );
    json(&alice, &["proposal", "open", "--title", "After repair"]);
}
