//! A node in its own process that writes as its member, for the churn soak:
//! `soak_node DATA_DIR LISTEN_ADDR [PEER_ADDR]...`.
//!
//! Standard input takes commands, one a line: `write` (write proposals continuously) and
//! `quiet` (stop writing); its end shuts the node down gracefully. Standard output reports,
//! one a line: `listen <multiaddr>` once listening; `ack <record id hex>` after each write
//! returned (that is, after it is durable); `quiet` once it has stopped writing (after its
//! last `ack`); `status <changes> <pending> <digest>` about
//! three times a second. The soak kills it with SIGKILL at random moments.

use std::io::Write;
use std::process::ExitCode;
use std::time::Duration;

use coop_model::{record, Record};
use coop_node::run::{start, RunOptions};
use coop_node::DataDir;
use tokio::io::{AsyncBufReadExt, BufReader};

/// Pause between two writes while writing.
const WRITE_EVERY: Duration = Duration::from_millis(40);
/// How often the status is reported.
const STATUS_EVERY: Duration = Duration::from_millis(300);

fn say(line: &str) -> bool {
    let mut out = std::io::stdout().lock();
    writeln!(out, "{line}").and_then(|_| out.flush()).is_ok()
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
        .with_writer(std::io::stderr)
        .init();
    let mut args = std::env::args().skip(1);
    let (Some(dir), Some(listen)) = (args.next(), args.next()) else {
        eprintln!("usage: soak_node DATA_DIR LISTEN_ADDR [PEER_ADDR]...");
        return ExitCode::from(2);
    };
    let opts = RunOptions {
        listen: vec![listen],
        peers: args.collect(),
        mdns: false,
        sync_interval: Duration::from_secs(1),
        ui: false,
        ..RunOptions::default()
    };
    let node = match start(DataDir::new(dir), opts).await {
        Ok(n) => n,
        Err(e) => {
            eprintln!("soak_node: {e}");
            return ExitCode::FAILURE;
        }
    };
    for a in node.listen_addrs() {
        say(&format!("listen {a}"));
    }
    let pid = std::process::id();
    let mut lines = BufReader::new(tokio::io::stdin()).lines();
    let mut writing = false;
    let mut written = 0u64;
    let mut write_tick = tokio::time::interval(WRITE_EVERY);
    let mut status_tick = tokio::time::interval(STATUS_EVERY);
    loop {
        tokio::select! {
            line = lines.next_line() => match line {
                Ok(Some(l)) if l.trim() == "write" => writing = true,
                Ok(Some(l)) if l.trim() == "quiet" => {
                    writing = false;
                    // After every `ack`: the driver knows it has them all once it reads this.
                    if !say("quiet") {
                        break;
                    }
                }
                Ok(Some(other)) => eprintln!("soak_node: unknown command {other:?}"),
                // The driver is done (or gone): stop gracefully.
                Ok(None) | Err(_) => break,
            },
            _ = write_tick.tick(), if writing => {
                let record = Record::Proposal(record::Proposal {
                    title: format!("soak {pid} {written}"),
                    description: format!("written by soak_node {pid}, write {written}"),
                });
                match node.submit(record).await {
                    Ok(id) => {
                        written += 1;
                        if !say(&format!("ack {}", id.to_hex())) {
                            break;
                        }
                    }
                    Err(e) => eprintln!("soak_node: write refused: {e}"),
                }
            }
            _ = status_tick.tick() => {
                if let Ok(s) = node.status().await {
                    if !say(&format!("status {} {} {}", s.changes, s.pending, s.digest)) {
                        break;
                    }
                }
            }
        }
    }
    match node.shutdown().await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("soak_node: {e}");
            ExitCode::FAILURE
        }
    }
}
