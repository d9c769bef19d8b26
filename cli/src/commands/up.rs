//! `coop up`: run the node in the foreground until Ctrl-C or SIGTERM.
//!
//! The node itself is `coop_node::run::run`; this module adds what belongs to a binary: the
//! tracing subscriber, the signal handling, the runtime, and a line saying where it listens
//! once the API answers (stdout), so a person or a script knows it is ready.

use std::io::{IsTerminal, Read};
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use coop_node::run::{self, RunOptions};
use coop_node::{DataDir, NodeError};
use serde_json::json;
use tokio::sync::watch;
use tracing_subscriber::EnvFilter;

use crate::app::{App, Report, LOCK_WAIT};
use crate::cli::UpArgs;
use crate::commands::membership::running_status;

pub(crate) fn up(app: &App, args: UpArgs, json: bool) -> Result<Report> {
    tracing_subscriber::fmt()
        .with_env_filter(
            EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info")),
        )
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        .init();
    let config = app.dir.config()?;
    // --listen wins; else the configured addresses (run reads them when given none); else
    // every interface on a port the OS picks.
    let listen = if !args.listen.is_empty() {
        args.listen
    } else if !config.listen.is_empty() {
        Vec::new()
    } else {
        RunOptions::default().listen
    };
    let opts = RunOptions {
        listen,
        peers: args.peer,
        relays: args.relay,
        mdns: !args.no_mdns,
        sync_interval: Duration::from_secs(args.sync_interval),
        ui: !args.no_ui,
        ui_port: args.ui_port,
        sync_v1_only: false,
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    let announcer = {
        let dir = app.dir.clone();
        std::thread::spawn(move || announce(&dir, json))
    };
    // The lifeline: with --stop-on-stdin-eof, the end of stdin (the supervisor exited, however
    // it died) stops the node like a signal does.
    let (eof_tx, eof_rx) = watch::channel(false);
    // Without the flag the sender lives until the end, so the lifeline never fires.
    let keep_lifeline = if args.stop_on_stdin_eof {
        std::thread::spawn(move || {
            let mut buf = [0u8; 256];
            let mut stdin = std::io::stdin();
            while matches!(stdin.read(&mut buf), Ok(n) if n > 0) {}
            let _ = eof_tx.send(true);
        });
        None
    } else {
        Some(eof_tx)
    };
    // A command may hold the store for a moment; `coop up` waits for it rather than failing.
    let start = Instant::now();
    loop {
        let shutdown = shutdown_signal(eof_rx.clone());
        match runtime.block_on(run::run(app.dir.clone(), opts.clone(), shutdown)) {
            Err(NodeError::Locked(_)) if start.elapsed() < LOCK_WAIT => {
                std::thread::sleep(Duration::from_millis(200));
            }
            r => break r?,
        }
    }
    drop((announcer, keep_lifeline));
    Ok(Report::new(
        json!({ "event": "stopped" }),
        "coop up: stopped; every acknowledged write is on disk.\n",
    ))
}

/// Prints where the node listens once its API answers.
fn announce(dir: &DataDir, json: bool) {
    let deadline = Instant::now() + run::LISTEN_TIMEOUT + Duration::from_secs(30);
    while Instant::now() < deadline {
        if let Some(s) = running_status(dir) {
            if json {
                let line = json!({ "event": "running", "status": s });
                println!("{line}");
            } else {
                let name = if s.community_name.is_empty() {
                    "(genesis not received yet)".to_string()
                } else {
                    format!("{:?}", s.community_name)
                };
                println!(
                    "coop up: serving {} for community {name} ({}); Ctrl-C stops it.",
                    dir.root().display(),
                    s.community.short()
                );
                for a in &s.listen {
                    println!("listening on {a}");
                }
            }
            return;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Resolves on Ctrl-C (SIGINT), SIGTERM, or the lifeline (end of stdin).
async fn shutdown_signal(mut lifeline: watch::Receiver<bool>) {
    let eof = async move {
        let fired = lifeline.wait_for(|eof| *eof).await.is_ok();
        if !fired {
            std::future::pending::<()>().await;
        }
        tracing::info!("standard input closed");
    };
    let ctrl_c = async {
        tokio::select! {
            _ = tokio::signal::ctrl_c() => {}
            _ = eof => {}
        }
    };
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        match signal(SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    _ = ctrl_c => {}
                    _ = term.recv() => {}
                }
            }
            Err(_) => ctrl_c.await,
        }
    }
    #[cfg(not(unix))]
    ctrl_c.await;
    tracing::info!("shutting down");
}
