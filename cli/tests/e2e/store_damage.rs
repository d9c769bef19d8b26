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
