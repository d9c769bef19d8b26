//! `coop peer list|add|remove`: the addresses this node remembers and dials on start (the
//! peer store, `peers.json`, and the peers its invite carried), and the community's relays
//! (`--relay`, kept in config.json).

use std::collections::HashMap;

use anyhow::{bail, Result};
use coop_node::peerstore::{self, Source};
use serde_json::json;

use crate::app::{App, Report};
use crate::cli::PeerCommand;
use crate::commands::membership::running_status;
use crate::show::Table;

pub(crate) fn peer(app: &App, cmd: PeerCommand) -> Result<Report> {
    match cmd {
        PeerCommand::List => list(app),
        PeerCommand::Add { addr, relay: false } => add(app, &addr),
        PeerCommand::Add { addr, relay: true } => add_relay(app, &addr),
        PeerCommand::Remove { what, relay: false } => remove(app, &what),
        PeerCommand::Remove { what, relay: true } => remove_relay(app, &what),
    }
}

/// Names of the members whose devices' nodes have these peer ids (empty when the ledger
/// cannot be read, e.g. before joining).
fn names(app: &App) -> HashMap<String, String> {
    let Ok(state) = app
        .backend()
        .and_then(|mut b| Ok(b.view(coop_model::query::Family::Members)?.into_state()))
    else {
        return HashMap::new();
    };
    let mut out = HashMap::new();
    for m in state.members.values() {
        for d in m.devices.keys() {
            if let Some(p) = peerstore::device_peer_id(d) {
                out.insert(p.to_string(), m.display_name.clone());
            }
        }
    }
    out
}

fn list(app: &App) -> Result<Report> {
    let config = app.dir.config()?;
    let (book, warning) = app.dir.peer_book();
    let running = running_status(&app.dir);
    let connected: Vec<String> = running
        .as_ref()
        .map(|s| s.peers.clone())
        .unwrap_or_default();
    let names = names(app);
    let now = app.now.max(0) as u64;
    let mut rows = Vec::new();
    let mut entries: Vec<peerstore::StoredPeer> = book.peers.clone();
    // The invite's peers kept in config.json, when the store does not hold them already.
    for p in &config.peers {
        if !entries.iter().any(|e| &e.addr == p) {
            let peer = peerstore::parse_dialable(p)
                .ok()
                .and_then(|m| peerstore::peer_in(&m))
                .map(|p| p.to_string());
            entries.push(peerstore::StoredPeer {
                addr: p.clone(),
                peer,
                source: Source::Invite,
                last_seen: None,
            });
        }
    }
    let mut t = Table::new(&["peer", "address", "source", "last seen", "connected"]);
    for e in &entries {
        let name = e.peer.as_ref().and_then(|p| names.get(p)).cloned();
        let is_connected = e.peer.as_ref().is_some_and(|p| connected.contains(p));
        let who = match (&name, &e.peer) {
            (Some(n), _) => n.clone(),
            (None, Some(p)) => short_peer(p),
            (None, None) => "-".into(),
        };
        t.row(vec![
            who,
            e.addr.clone(),
            e.source.to_string(),
            e.last_seen
                .map_or("never".into(), |s| ago(now.saturating_sub(s))),
            if running.is_none() {
                "-".into()
            } else if is_connected {
                "yes".into()
            } else {
                "no".into()
            },
        ]);
        rows.push(json!({
            "addr": e.addr,
            "peer": e.peer,
            "name": name,
            "source": e.source,
            "last_seen": e.last_seen,
            "connected": running.as_ref().map(|_| is_connected),
        }));
    }
    let mut text = if entries.is_empty() {
        "No remembered peers: `coop peer add ADDR`, an invite, or mDNS on the LAN adds them.\n"
            .to_string()
    } else {
        t.render()
    };
    for r in &config.relays {
        text.push_str(&format!("relay  {r}\n"));
    }
    if let Some(w) = &warning {
        text.push_str(&format!("warning: {w}\n"));
    }
    Ok(Report::new(
        json!({ "peers": rows, "relays": config.relays, "warning": warning }),
        text,
    ))
}

fn add(app: &App, addr: &str) -> Result<Report> {
    let m = peerstore::parse_dialable(addr)?;
    app.dir.config()?;
    // A running node stores it and dials it at once (its API); else it is stored here and
    // `coop up` dials it at every start.
    let (new, dialing) = if running_status(&app.dir).is_some() {
        let added = app.backend()?.add_peer(&m.to_string())?;
        (added.added, added.dialing)
    } else {
        (
            app.dir.update_peer_book(|b| b.add(&m, Source::Manual))?.0,
            false,
        )
    };
    let note = if dialing {
        " The running node is dialling it now (and `coop up` at every start)."
    } else {
        " `coop up` dials it at every start."
    };
    Ok(Report::new(
        json!({ "addr": m.to_string(), "added": new, "dialing": dialing }),
        format!(
            "{} {m}.{note}\n",
            if new {
                "Remembered"
            } else {
                "Already remembered (now as manual)"
            }
        ),
    ))
}

fn remove(app: &App, what: &str) -> Result<Report> {
    let what = what.trim();
    // A member's name stands for every peer id of their devices.
    let names = names(app);
    let mut keys: Vec<String> = names
        .iter()
        .filter(|(_, n)| n.eq_ignore_ascii_case(what))
        .map(|(p, _)| p.clone())
        .collect();
    if keys.is_empty() {
        keys.push(what.to_string());
    }
    let (removed, _) = app
        .dir
        .update_peer_book(|b| keys.iter().map(|k| b.remove(k)).sum::<usize>())?;
    let mut config = app.dir.config()?;
    let before = config.peers.len();
    config.peers.retain(|p| {
        let peer = peerstore::parse_dialable(p)
            .ok()
            .and_then(|m| peerstore::peer_in(&m))
            .map(|p| p.to_string());
        !keys
            .iter()
            .any(|k| p == k || peer.as_deref() == Some(k.as_str()))
    });
    let from_config = before - config.peers.len();
    if from_config > 0 {
        app.dir.save_config(&config)?;
    }
    let total = removed + from_config;
    if total == 0 {
        bail!("no remembered peer is {what:?} (see `coop peer list`)");
    }
    Ok(Report::new(
        json!({ "removed": total }),
        format!("Forgot {total} address(es) of {what}.\n"),
    ))
}

fn add_relay(app: &App, addr: &str) -> Result<Report> {
    let m = peerstore::parse_relay(addr)?;
    let mut config = app.dir.config()?;
    let text = m.to_string();
    let new = !config.relays.contains(&text);
    if new {
        config.relays.push(text.clone());
        app.dir.save_config(&config)?;
    }
    Ok(Report::new(
        json!({ "relay": text, "added": new }),
        format!(
            "{} relay {text}.\n",
            if new { "Added" } else { "Already have" }
        ),
    ))
}

fn remove_relay(app: &App, addr: &str) -> Result<Report> {
    let mut config = app.dir.config()?;
    let before = config.relays.len();
    let normal = peerstore::parse_dialable(addr)
        .map(|m| m.to_string())
        .unwrap_or_default();
    config.relays.retain(|r| r != addr.trim() && *r != normal);
    if config.relays.len() == before {
        bail!("no relay {addr:?} in config.json (see `coop peer list`)");
    }
    app.dir.save_config(&config)?;
    Ok(Report::new(
        json!({ "removed": addr.trim() }),
        format!("Removed relay {}.\n", addr.trim()),
    ))
}

/// A peer id shortened for people: its last 8 characters.
fn short_peer(p: &str) -> String {
    let n = p.len();
    format!("…{}", &p[n.saturating_sub(8)..])
}

/// "5 s ago", "3 min ago", "2 h ago", "4 d ago".
fn ago(secs: u64) -> String {
    match secs {
        0..60 => format!("{secs} s ago"),
        60..3600 => format!("{} min ago", secs / 60),
        3600..86400 => format!("{} h ago", secs / 3600),
        _ => format!("{} d ago", secs / 86400),
    }
}
