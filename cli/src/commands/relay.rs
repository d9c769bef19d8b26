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
use coop_node::invite::Invite;

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
        // Handle the signals before printing the addresses: whoever reads them may stop the
        // relay at once.
        let shutdown = shutdown_signal()?;
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
        relay.run(shutdown).await;
        anyhow::Ok(())
    })?;
    Ok(Report::new(
        json!({ "event": "stopped" }),
        "coop relay: stopped.\n",
    ))
}

/// A future that resolves on Ctrl-C (SIGINT) or SIGTERM; the handlers are installed when
/// this returns, not when the future is first polled.
#[cfg(unix)]
fn shutdown_signal() -> Result<impl std::future::Future<Output = ()>> {
    use tokio::signal::unix::{signal, SignalKind};
    let mut int = signal(SignalKind::interrupt()).context("cannot handle SIGINT")?;
    let mut term = signal(SignalKind::terminate()).context("cannot handle SIGTERM")?;
    Ok(async move {
        tokio::select! {
            _ = int.recv() => {}
            _ = term.recv() => {}
        }
        tracing::info!("shutting down");
    })
}

/// A future that resolves on Ctrl-C.
#[cfg(not(unix))]
fn shutdown_signal() -> Result<impl std::future::Future<Output = ()>> {
    Ok(async {
        let _ = tokio::signal::ctrl_c().await;
        tracing::info!("shutting down");
    })
}
