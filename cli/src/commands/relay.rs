//! `coop relay`: run a community's relay (circuit relay v2, AutoNAT, rendezvous) in the
//! foreground until Ctrl-C or SIGTERM. The relay itself is `coop_node::relay`; this module
//! reads the invite code (the community and its LAN key), installs the tracing subscriber,
//! prints where the relay can be reached, and handles the signals.

use std::io::{IsTerminal, Write};
use std::path::PathBuf;

use anyhow::{Context, Result};
use coop_node::relay::{Relay, RelayOptions};
use serde_json::json;
use tracing_subscriber::EnvFilter;

use crate::app::Report;
use crate::cli::RelayArgs;
use crate::invite::Invite;

pub(crate) fn relay(args: &RelayArgs, data_dir: Option<PathBuf>, json: bool) -> Result<Report> {
    let invite = Invite::decode(&args.invite)?;
    let listen = args.listen.clone();
    tracing_subscriber::fmt()
        .with_env_filter(
            EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info")),
        )
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        .init();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    runtime.block_on(async move {
        let relay = Relay::start(RelayOptions {
            community: invite.community,
            psk: invite.psk,
            listen,
            data_dir,
        })
        .await?;
        let addresses: Vec<String> = relay.addresses().iter().map(|a| a.to_string()).collect();
        // Print at once (a script waits for these lines), not at exit like other reports.
        let mut out = std::io::stdout().lock();
        if json {
            writeln!(out, "{}", json!({ "addresses": addresses }))?;
        } else {
            for a in &addresses {
                writeln!(out, "{a}")?;
            }
        }
        out.flush()?;
        drop(out);
        relay.run(shutdown_signal()).await;
        anyhow::Ok(())
    })?;
    Ok(Report::new(
        json!({ "event": "stopped" }),
        "coop relay: stopped.\n",
    ))
}

/// Resolves on Ctrl-C (SIGINT) or SIGTERM.
async fn shutdown_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        match signal(SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    _ = tokio::signal::ctrl_c() => {}
                    _ = term.recv() => {}
                }
            }
            Err(_) => {
                let _ = tokio::signal::ctrl_c().await;
            }
        }
    }
    #[cfg(not(unix))]
    let _ = tokio::signal::ctrl_c().await;
    tracing::info!("shutting down");
}
