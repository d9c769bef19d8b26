//! Crash-test writer: opens a data dir's store and writes proposals in a loop, printing
//! `ack <record id hex>` after each write returned (that is, after it is durable). The
//! crash test kills it with SIGKILL at random moments and checks every acknowledged write.
//!
//! Usage: `crash_writer DATA_DIR [MAX_WRITES]`

use coop_model::record;
use std::io::Write;
use std::process::ExitCode;

use coop_model::Record;
use coop_node::{DataDir, LocalNode};

fn main() -> ExitCode {
    let mut args = std::env::args().skip(1);
    let Some(dir) = args.next() else {
        eprintln!("usage: crash_writer DATA_DIR [MAX_WRITES]");
        return ExitCode::from(2);
    };
    let max: u64 = args.next().and_then(|s| s.parse().ok()).unwrap_or(100_000);
    let mut node = match LocalNode::open(&DataDir::new(dir)) {
        Ok(n) => n,
        Err(e) => {
            eprintln!("crash_writer: {e}");
            return ExitCode::FAILURE;
        }
    };
    let pid = std::process::id();
    let stdout = std::io::stdout();
    for i in 0..max {
        let record = Record::Proposal(record::Proposal {
            title: format!("crash {pid} {i}"),
            description: format!("written by crash_writer {pid}, write {i}"),
        });
        let id = match node.submit(record, 1_750_000_000 + i as i64) {
            Ok(id) => id,
            Err(e) => {
                eprintln!("crash_writer: {e}");
                return ExitCode::FAILURE;
            }
        };
        let mut out = stdout.lock();
        if writeln!(out, "ack {}", id.to_hex())
            .and_then(|_| out.flush())
            .is_err()
        {
            // Nobody listens any more.
            return ExitCode::SUCCESS;
        }
    }
    ExitCode::SUCCESS
}
