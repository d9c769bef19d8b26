//! A node in its own process, for tests that run nodes in network namespaces:
//! `node_proc DATA_DIR [--no-mdns] [--peer ADDR]...`. Runs until SIGTERM, SIGINT or the
//! end of standard input, then shuts down gracefully.

use std::process::ExitCode;
use std::time::Duration;

use coop_node::run::{run, RunOptions};
use coop_node::DataDir;
use tokio::io::AsyncReadExt;
use tokio::signal::unix::{signal, SignalKind};

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
        .with_writer(std::io::stderr)
        .init();
    let mut args = std::env::args().skip(1);
    let Some(dir) = args.next() else {
        eprintln!("usage: node_proc DATA_DIR [--no-mdns] [--peer ADDR]...");
        return ExitCode::from(2);
    };
    let mut opts = RunOptions {
        sync_interval: Duration::from_secs(2),
        ..RunOptions::default()
    };
    while let Some(a) = args.next() {
        match a.as_str() {
            "--no-mdns" => opts.mdns = false,
            "--peer" => opts.peers.extend(args.next()),
            other => {
                eprintln!("node_proc: unknown argument {other}");
                return ExitCode::from(2);
            }
        }
    }
    let shutdown = async {
        let (Ok(mut term), Ok(mut int)) = (
            signal(SignalKind::terminate()),
            signal(SignalKind::interrupt()),
        ) else {
            return;
        };
        let mut stdin = tokio::io::stdin();
        let mut buf = [0u8; 64];
        let eof = async move {
            // Bounded by the parent: it closes our stdin when it is done or gone.
            while let Ok(n) = stdin.read(&mut buf).await {
                if n == 0 {
                    break;
                }
            }
        };
        tokio::select! {
            _ = term.recv() => {}
            _ = int.recv() => {}
            _ = eof => {}
        }
    };
    match run(DataDir::new(dir), opts, shutdown).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("node_proc: {e}");
            ExitCode::FAILURE
        }
    }
}
