//! A 10,000-change catch-up over a relayed connection (Bob behind a NAT that defeats hole
//! punching, so every byte goes through the relay): it completes within the relay's
//! circuit limits, and the test prints the time and the bytes the relay carried.

use std::io::{BufRead, BufReader};
use std::time::{Duration, Instant};

use coop_node::reach_status::PeerLink;
use coop_tests::bench::community::{generate, Spec};
use coop_tests::bench::net::member_dir;

use crate::{coop, internet, link, peer_id_of, status, Proc, POLL};

/// Changes in the ledger Bob catches up on.
const CHANGES: usize = 10_000;
/// Deadline for the whole catch-up (debug build, loaded 2-core machine).
const CATCH_UP_DEADLINE: Duration = Duration::from_secs(600);

#[test]
fn a_ten_thousand_change_catch_up_completes_over_the_relay() {
    let Some(net) = internet(true, 'c') else {
        return;
    };
    let root = tempfile::tempdir().unwrap();
    let c = generate(&Spec {
        seed: 12,
        changes: CHANGES,
        members: 12,
        second_device_percent: 0,
    });
    let alice = member_dir(root.path(), "alice", &c.members[0], c.id, &c.envelopes).unwrap();
    let bob = member_dir(root.path(), "bob", &c.members[1], c.id, &[]).unwrap();
    let invite: serde_json::Value =
        serde_json::from_str(&coop(alice.root(), &["--json", "invite"])).unwrap();
    let code = invite["code"].as_str().unwrap().to_string();

    let relay_dir = root.path().join("relay");
    let mut relay = Proc::start(
        &net.ns("pub"),
        &[
            "--json",
            "relay",
            "--invite",
            &code,
            "--listen",
            "/ip4/10.99.0.1/tcp/4001",
            "--data-dir",
            relay_dir.to_str().unwrap(),
        ],
        root.path().join("relay.log"),
    );
    let mut first = String::new();
    let mut relay_out = BufReader::new(relay.child.stdout.take().unwrap());
    relay_out.read_line(&mut first).unwrap();
    let printed: serde_json::Value = serde_json::from_str(first.trim())
        .unwrap_or_else(|e| panic!("relay printed {first:?} ({e})\n{}", relay.tail()));
    let relay_addr = printed["addresses"][0].as_str().unwrap().to_string();

    let up = |dir: &coop_node::DataDir, ns: &str, name: &str| {
        Proc::start(
            &net.ns(ns),
            &[
                "--data-dir",
                dir.root().to_str().unwrap(),
                "up",
                "--listen",
                "/ip4/0.0.0.0/tcp/0",
                "--relay",
                &relay_addr,
                "--no-mdns",
                "--no-ui",
                "--sync-interval",
                "2",
            ],
            root.path().join(format!("{name}.log")),
        )
    };
    let before = net.relay_bytes();
    let started = Instant::now();
    let a = up(&alice, "h1", "alice");
    let b = up(&bob, "h2", "bob");
    let want = c.envelopes.len();
    let mut last = None;
    let mut done = false;
    while started.elapsed() < CATCH_UP_DEADLINE {
        last = status(&bob);
        if last.as_ref().is_some_and(|s| s.changes >= want) {
            done = true;
            break;
        }
        std::thread::sleep(POLL);
    }
    let took = started.elapsed();
    assert!(
        done,
        "Bob holds {:?} of {want} changes after {CATCH_UP_DEADLINE:?}\n--- alice ---\n{}\n--- bob ---\n{}\n--- relay ---\n{}",
        last.map(|s| s.changes),
        a.tail(),
        b.tail(),
        relay.tail()
    );
    let after = net.relay_bytes();
    let (sa, sb) = (status(&alice).unwrap(), status(&bob).unwrap());
    assert_eq!(sa.digest, sb.digest, "converged");
    let ida = peer_id_of(&sa).unwrap();
    let via = link(&sb, &ida).map(|l| l.via.clone()).unwrap_or_default();
    assert_eq!(via, PeerLink::RELAYED, "the catch-up ran over the relay");
    let (rx, tx) = (after.0 - before.0, after.1 - before.1);
    let bytes: usize = c.envelopes.iter().map(|e| e.encode().len()).sum();
    println!(
        "nat catch-up: {want} changes ({:.1} MiB of envelopes) over the relay in {:.1} s; the relay received {:.1} MiB and sent {:.1} MiB",
        bytes as f64 / 1048576.0,
        took.as_secs_f64(),
        rx as f64 / 1048576.0,
        tx as f64 / 1048576.0
    );
    // `/coop/sync/2` ships the changes compressed as bundles, but each change's own
    // 64-byte signature crosses as it is: at least that much went through the relay.
    assert!(
        rx as usize >= want * 64,
        "every change's signature went through the relay ({rx} bytes for {want} changes)"
    );
    drop((a, b));
    drop(relay);
    drop(relay_out);
}
