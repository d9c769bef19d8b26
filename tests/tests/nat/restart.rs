//! A restarted node comes back on the same port and reconnects without being told: Bob
//! (home 2) and Alice (home 1), each behind a NAT, run `coop up` with default listen
//! options and nothing on the command line about peers (the community's relay is kept in
//! their config by `coop peer add --relay`). Bob stops; Alice writes; Bob starts again with
//! the same data dir and the same command: he listens on the port he had, reconnects to
//! Alice (through the relay or directly) and converges on what she wrote meanwhile.

use std::path::Path;
use std::time::Instant;

use coop_node::{DataDir, Status};

use crate::{coop, internet, peer_id_of, start_relay, status, Internet, Proc, DEADLINE, POLL};

/// The TCP port of the node's own (not relayed) listen address.
fn own_port(s: &Status) -> Option<u16> {
    s.listen
        .iter()
        .filter(|a| !a.contains("/p2p-circuit"))
        .find_map(|a| a.split("/tcp/").nth(1)?.split('/').next()?.parse().ok())
}

/// `coop up` with default listen options, no relay or peer flags: what the config and the
/// peer store say is all it has.
fn up(net: &Internet, ns: &str, dir: &Path, log: &Path) -> Proc {
    Proc::start(
        &net.ns(ns),
        &[
            "--data-dir",
            dir.to_str().unwrap(),
            "up",
            "--no-mdns",
            "--no-ui",
            "--sync-interval",
            "2",
        ],
        log.to_path_buf(),
    )
}

/// Waits until Alice and Bob are connected to each other and hold the same changes, with
/// at least `changes` of them; returns their last statuses.
fn converged(da: &DataDir, db: &DataDir, changes: usize) -> Result<(Status, Status), String> {
    let start = Instant::now();
    let mut last = (None, None);
    while start.elapsed() < DEADLINE {
        last = (status(da), status(db));
        if let (Some(sa), Some(sb)) = &last {
            let (ida, idb) = (peer_id_of(sa), peer_id_of(sb));
            let linked = idb.is_some_and(|id| sa.peers.contains(&id))
                && ida.is_some_and(|id| sb.peers.contains(&id));
            if linked && sa.digest == sb.digest && sb.changes == sa.changes && sb.changes >= changes
            {
                return Ok((sa.clone(), sb.clone()));
            }
        }
        std::thread::sleep(POLL);
    }
    Err(format!("{last:#?}"))
}

#[test]
fn a_restarted_node_comes_back_on_its_port_and_reconnects_untold() {
    let Some(net) = internet(false, 'b') else {
        return;
    };
    let root = tempfile::tempdir().unwrap();
    let (alice, bob, relay_dir) = (
        root.path().join("alice"),
        root.path().join("bob"),
        root.path().join("relay"),
    );
    coop(&alice, &["init", "--name", "Alice"]);
    coop(&alice, &["found", "--community", "Hill Street Co-op"]);
    let invite: serde_json::Value =
        serde_json::from_str(&coop(&alice, &["--json", "invite"])).unwrap();
    let code = invite["code"].as_str().expect("invite code").to_string();
    coop(&bob, &["init", "--name", "Bob"]);
    coop(&bob, &["join", &code]);
    let (relay, relay_out, relay_addr) = start_relay(&net, &relay_dir, &code, root.path());
    for dir in [&alice, &bob] {
        coop(dir, &["peer", "add", "--relay", &relay_addr]);
    }
    let (da, db) = (DataDir::new(&alice), DataDir::new(&bob));
    let logs = root.path();
    let a = up(&net, "h1", &alice, &logs.join("alice.log"));
    let b = up(&net, "h2", &bob, &logs.join("bob.log"));
    let (sa, sb) = converged(&da, &db, 1).unwrap_or_else(|last| {
        panic!(
            "Alice and Bob did not first connect: {last}\n--- alice ---\n{}\n--- bob ---\n{}\n--- relay ---\n{}",
            a.tail(),
            b.tail(),
            relay.tail()
        )
    });
    let port = own_port(&sb).expect("Bob's listen port");
    let bob_id = peer_id_of(&sb).unwrap();
    drop(b);
    // Alice sees him go, then writes something he can only get after his restart.
    let gone = Instant::now();
    while gone.elapsed() < DEADLINE && status(&da).is_some_and(|s| s.peers.contains(&bob_id)) {
        std::thread::sleep(POLL);
    }
    assert!(
        status(&da).is_some_and(|s| !s.peers.contains(&bob_id)),
        "Alice still lists Bob as connected after he stopped"
    );
    coop(
        &alice,
        &[
            "proposal",
            "open",
            "--title",
            "Tool library",
            "--description",
            "Shared tools",
        ],
    );
    let written = status(&da).expect("Alice's status").changes;
    assert!(written > sa.changes, "Alice's write was stored");

    let restarted = Instant::now();
    let b = up(&net, "h2", &bob, &logs.join("bob-again.log"));
    let (sa, sb) = converged(&da, &db, written).unwrap_or_else(|last| {
        panic!(
            "Bob did not reconnect to Alice after his restart: {last}\n--- alice ---\n{}\n--- bob ---\n{}\n--- relay ---\n{}",
            a.tail(),
            b.tail(),
            relay.tail()
        )
    });
    let took = restarted.elapsed();
    assert_eq!(
        own_port(&sb),
        Some(port),
        "Bob came back on another port: {:?}",
        sb.listen
    );
    assert_eq!(sa.digest, sb.digest);
    let props: serde_json::Value =
        serde_json::from_str(&coop(&bob, &["--json", "proposal", "list"])).unwrap();
    assert!(
        props.to_string().contains("Tool library"),
        "Bob has Alice's proposal: {props}"
    );
    println!(
        "nat (restart): Bob came back on port {port} and converged with Alice {:.1} s after coop up",
        took.as_secs_f64()
    );
    drop((a, b));
    drop(relay);
    drop(relay_out);
}
