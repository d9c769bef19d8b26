//! Two `coop up` processes on 127.0.0.1 sync a workflow started by commands on each side.

use std::process::Command;
use std::time::Instant;

use super::support::*;

#[test]
fn two_running_nodes_sync_a_time_bank_exchange() {
    let w = World::new();
    let alice = w.found(&[]);
    let a = Up::start(&alice, &[]);
    let listen = a.listen();
    assert!(
        !listen.is_empty() && listen.iter().all(|l| l.contains("/p2p/")),
        "{listen:?}"
    );

    // The invite of a running node carries its addresses.
    let inv = json(&alice, &["invite"]);
    let peers: Vec<String> = inv["peers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p.as_str().unwrap().to_string())
        .collect();
    assert_eq!(peers, listen);

    let bob = w.init("Bob");
    json(&bob, &["join", &s(&inv, "code")]);
    let b = Up::start(&bob, &[]);

    // Alice sees Bob's join request arrive, and vouches through her running node.
    let bob_id = s(&json(&bob, &["status"]), "member");
    wait_until("Bob's join request to reach Alice", || {
        json(&alice, &["members"])["members"]
            .as_array()
            .unwrap()
            .iter()
            .any(|m| m["id"] == bob_id.as_str())
            .then_some(())
    });
    let st = json(&alice, &["status"]);
    assert_eq!(st["running"], true);
    assert!(!st["peers"].as_array().unwrap().is_empty());
    json(&alice, &["vouch", &bob_id[..12]]);
    wait_until("Bob to be admitted on his node", || {
        (json(&bob, &["status"])["membership"] == "admitted").then_some(())
    });

    // Bob logs hours on his node; Alice confirms on hers; Bob's node sees the balance.
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
                "gardening",
            ],
        ),
        "id",
    );
    wait_until("Alice to see Bob's attestation", || {
        json(&alice, &["hours", "pending"])["pending"]
            .as_array()
            .unwrap()
            .iter()
            .any(|p| p["id"] == att.as_str())
            .then_some(())
    });
    json(&alice, &["hours", "confirm", &att[..12]]);
    wait_until("Bob's node to count the confirmation", || {
        (i(&json(&bob, &["balance"]), "minutes") == 90).then_some(())
    });
    // A refusal through the API socket is still exit 1 and one line.
    coop(&alice, &["hours", "confirm", &att[..12]]).refused("refused: already_settled");

    wait_until("both nodes to converge", || {
        let (da, db) = (
            s(&json(&alice, &["status"]), "digest"),
            s(&json(&bob, &["status"]), "digest"),
        );
        (da == db).then_some(())
    });
    assert_eq!(json(&bob, &["verify"])["ok"], true);
    drop((a, b));
}

#[test]
fn coop_up_stops_cleanly_on_sigterm() {
    let w = World::new();
    let alice = w.found(&[]);
    let mut a = Up::start(&alice, &[]);
    assert!(alice.join("api.sock").exists());
    let pid = a.child.id().to_string();
    let killed = Command::new("kill").args(["-TERM", &pid]).status().unwrap();
    assert!(killed.success());
    let start = Instant::now();
    let status = loop {
        if let Some(s) = a.child.try_wait().unwrap() {
            break s;
        }
        assert!(
            start.elapsed() < DEADLINE,
            "coop up did not stop on SIGTERM"
        );
        std::thread::sleep(std::time::Duration::from_millis(100));
    };
    assert!(status.success(), "{status}");
    let out = a.output();
    assert!(out.contains("listening on /ip4/127.0.0.1/tcp/"), "{out}");
    assert!(out.contains("stopped"), "{out}");
    assert!(!alice.join("api.sock").exists());
    // The store is free again: commands open it directly.
    assert_eq!(json(&alice, &["status"])["running"], false);
}

#[test]
fn coop_up_with_a_lifeline_stops_when_its_supervisor_goes_away() {
    let w = World::new();
    let alice = w.found(&[]);
    let mut a = Up::start(&alice, &[]);
    // Closing stdin is what the supervisor's death looks like to the node.
    drop(a.child.stdin.take());
    let start = Instant::now();
    let status = loop {
        if let Some(s) = a.child.try_wait().unwrap() {
            break s;
        }
        assert!(
            start.elapsed() < DEADLINE,
            "coop up ignored the closed stdin"
        );
        std::thread::sleep(std::time::Duration::from_millis(100));
    };
    assert!(status.success(), "{status}");
    assert!(a.output().contains("stopped"));
    assert!(!alice.join("api.sock").exists());
}
