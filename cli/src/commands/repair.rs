//! `coop repair`: a new store from what the damaged one still holds plus a sync file, then
//! whatever the peers send back while the node runs briefly on it.

use std::io::{IsTerminal, Write};
use std::time::Duration;

use anyhow::{bail, Context, Result};
use coop_node::repair::{pull_from_peers, PullProgress};
use coop_node::run::RunOptions;
use coop_node::{LocalNode, NodeError};
use serde_json::json;

use crate::app::{App, Report};
use crate::cli::RepairArgs;
use crate::syncfile;

pub(crate) fn repair(app: &App, args: RepairArgs) -> Result<Report> {
    let from = args.from.as_deref();
    let community = app.dir.config()?.community.ok_or(NodeError::NoCommunity)?;
    let sources = match from {
        None => Vec::new(),
        Some(file) => {
            let (theirs, envelopes) = syncfile::import(file)?;
            if theirs != community {
                bail!(
                    "{} carries changes of community {}, but this node belongs to {}; nothing was repaired",
                    file.display(),
                    theirs.short(),
                    community.short()
                );
            }
            envelopes
        }
    };
    let mut r = coop_node::repair::repair(&app.dir, sources, &app.now.to_string())?;
    if !args.offline {
        let opts = RunOptions {
            listen: if args.listen.is_empty() {
                RunOptions::default().listen
            } else {
                args.listen.clone()
            },
            peers: args.peer.clone(),
            mdns: !args.no_mdns,
            ..RunOptions::default()
        };
        let wait = Duration::from_secs(args.wait);
        eprintln!(
            "Asking peers for the rest (up to {} s; --offline skips this)...",
            args.wait
        );
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .enable_all()
            .build()
            .context("cannot start the async runtime")?;
        let live = std::io::stderr().is_terminal();
        let pulled =
            runtime.block_on(pull_from_peers(&app.dir, opts, wait, |p| progress(p, live)))?;
        if live {
            eprintln!();
        }
        let node = LocalNode::open(&app.dir)?;
        r.account_for(&pulled, |id| node.ledger().contains(id));
    }
    let mut text = format!(
        "Repaired the store of {}: {} change(s) in the new store, {} from the damaged store and {} only {} had.\n",
        app.dir.root().display(),
        r.total,
        r.recovered_from_store,
        r.recovered_from_sources,
        from.map_or("other sources".into(), |f| f.display().to_string()),
    );
    if let Some(p) = &r.pulled {
        text.push_str(&match (p.peers, p.timed_out) {
            (0, _) => format!(
                "No peer answered within {} s; changes only peers hold come back when `coop up` syncs.\n",
                args.wait
            ),
            (n, false) => format!(
                "{} change(s) came back from {n} peer(s); caught up with them.\n",
                r.recovered_from_peers
            ),
            (n, true) => format!(
                "{} change(s) came back from {n} peer(s) before the {} s limit; `coop up` syncs the rest.\n",
                r.recovered_from_peers, args.wait
            ),
        });
    }
    text.push_str(&format!(
        "The damaged store is kept at {}.\n",
        r.kept_aside.display()
    ));
    if let Some(e) = &r.read_error {
        text.push_str(&format!(
            "Reading the damaged store stopped early ({e}); {} entr(y/ies) were read.\n",
            r.read_from_store
        ));
    }
    if r.missing_at_least > 0 {
        text.push_str(&format!(
            "MISSING: the damaged store recorded {} change(s); at least {} are in no source. A peer that has them sends them back when it is reachable.\n",
            r.recorded.unwrap_or_default(),
            r.missing_at_least
        ));
    }
    let own: Vec<_> = r.own_lost().collect();
    if !own.is_empty() {
        text.push_str(&format!(
            "LOST: {} of your own change(s) could not be restored (no source or peer had them):\n",
            own.len()
        ));
        for n in &own {
            let id = n.id.map_or("(unknown id)".into(), |id| id.to_hex());
            text.push_str(&format!("  {id}: {}\n", n.reason));
        }
    }
    let others = r.not_restored.len() - own.len();
    if others > 0 {
        text.push_str(&format!(
            "{others} other change(s) read from the damaged store were not restored (a peer may still hold them).\n"
        ));
    }
    if r.refused_from_sources > 0 {
        text.push_str(&format!(
            "{} change(s) from the sync file were refused by the gate.\n",
            r.refused_from_sources
        ));
    }
    text.push_str("Run `coop verify` to check the new store.\n");
    let json = json!({
        "report": r,
        "own_lost": own.iter().map(|n| n.id).collect::<Vec<_>>(),
    });
    Ok(Report::new(json, text))
}

/// One progress line, rewritten in place on a terminal.
fn progress(p: &PullProgress, live: bool) {
    if !live {
        return;
    }
    let mut err = std::io::stderr().lock();
    let _ = write!(
        err,
        "\r  {} s: {} peer(s) connected, {} change(s), {} sync round(s)   ",
        p.elapsed.as_secs(),
        p.connected,
        p.changes,
        p.sync_rounds
    );
    let _ = err.flush();
}
