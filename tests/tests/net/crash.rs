//! Crash safety: a process writing through the real store is killed with SIGKILL at random
//! moments; after each restart the store opens and every acknowledged write is there.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use coop_model::RecordId;
use coop_node::LocalNode;
use rand::{Rng, SeedableRng};

/// Kill-and-restart cycles.
const CYCLES: usize = 24;

#[test]
fn killed_writers_never_lose_acknowledged_writes() {
    let root = tempfile::tempdir().unwrap();
    let c = coop_tests::community(root.path(), 0);
    let dir = &c.dirs[0];
    let seed: u64 = rand::random();
    println!("crash test seed {seed}");
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
    let mut acked: Vec<RecordId> = Vec::new();
    for cycle in 0..CYCLES {
        let mut child = Command::new(env!("CARGO_BIN_EXE_crash_writer"))
            .arg(dir.root())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("spawn crash_writer");
        let stdout = child.stdout.take().unwrap();
        let (tx, rx) = mpsc::channel();
        let reader = std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        // Kill after a random number of acknowledgements (sometimes before the first one,
        // while the store is still opening), or at a random moment in between.
        let acks_before_kill = rng.gen_range(0..40usize);
        let extra_delay = Duration::from_micros(rng.gen_range(0..20_000));
        let deadline = Instant::now() + Duration::from_secs(120);
        let mut seen = 0;
        while seen < acks_before_kill && Instant::now() < deadline {
            match rx.recv_timeout(Duration::from_secs(1)) {
                Ok(line) => {
                    acked.push(parse_ack(&line));
                    seen += 1;
                }
                Err(mpsc::RecvTimeoutError::Timeout) => {}
                Err(mpsc::RecvTimeoutError::Disconnected) => break,
            }
        }
        std::thread::sleep(extra_delay);
        child.kill().expect("SIGKILL");
        let status = child.wait().unwrap();
        assert!(!status.success(), "cycle {cycle}: the writer was killed");
        reader.join().unwrap();
        // Lines printed before the kill were acknowledged too.
        acked.extend(rx.try_iter().map(|l| parse_ack(&l)));

        let node = LocalNode::open(dir)
            .unwrap_or_else(|e| panic!("cycle {cycle}: store does not open after SIGKILL: {e}"));
        for id in &acked {
            assert!(
                node.ledger().contains(id),
                "cycle {cycle}: acknowledged write {} lost (seed {seed})",
                id.short()
            );
        }
        let report = {
            let mut node = node;
            node.verify().unwrap()
        };
        assert!(report.ok(), "cycle {cycle}: {report:?}");
    }
    assert!(!acked.is_empty(), "some writes were acknowledged");
}

fn parse_ack(line: &str) -> RecordId {
    let hex = line
        .strip_prefix("ack ")
        .unwrap_or_else(|| panic!("bad line {line:?}"));
    RecordId::from_hex(hex.trim()).expect("record id")
}
