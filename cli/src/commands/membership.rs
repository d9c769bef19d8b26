//! Identity and membership: `init`, `found`, `invite`, `join`, `vouch`, `status`, `members`.

use coop_model::record;
use std::time::Duration;

use anyhow::{Context, Result};
use coop_model::{Params, Record};
use coop_node::api::ApiClient;
use coop_node::{DataDir, LocalNode, NodeError, Status};
use rand::RngCore;
use serde_json::json;

use crate::app::{self, App, Report};
use crate::parse::Param;
use crate::show::{self, Table};
use coop_model::query::Family;
use coop_node::invite::{Invite, MAX_PEERS, MAX_RELAYS};
use coop_node::peerstore;

fn seed() -> [u8; 32] {
    let mut s = [0u8; 32];
    rand::rngs::OsRng.fill_bytes(&mut s);
    s
}

pub(crate) fn init(app: &App, name: &str) -> Result<Report> {
    let config = app.dir.init(name, seed(), seed())?;
    let member = app.dir.identity()?.member_id();
    let device = app.dir.device()?.device_id();
    let root = app.dir.root().display().to_string();
    let text = format!(
        "Created the identity of {name:?}.\n\
         member    {member}\n\
         device    {device}\n\
         data dir  {root}\n\
         Next: `coop found --community NAME`, or `coop join CODE` with a neighbour's invite.\n",
        name = config.display_name,
    );
    Ok(Report::new(
        json!({
            "member": member,
            "device": device,
            "display_name": config.display_name,
            "data_dir": root,
        }),
        text,
    ))
}

pub(crate) fn found(
    app: &App,
    name: &str,
    assignments: &[Param],
    no_lan_key: bool,
) -> Result<Report> {
    let mut params = Params::default();
    for a in assignments {
        params.set(&a.key, &a.value)?;
    }
    let node = LocalNode::found(&app.dir, name, params.clone(), app.now)?;
    let community = node.community();
    let founder = node.member();
    // Release the store before touching the configuration again.
    drop(node);
    if !no_lan_key {
        let mut config = app.dir.config()?;
        config.psk = Some(hex::encode(seed()));
        app.dir.save_config(&config)?;
    }
    let lan = if no_lan_key {
        "none (--no-lan-key): any coop node on the LAN may connect"
    } else {
        "generated; invite codes carry it"
    };
    let text = format!(
        "Founded {name:?} with you as its founder.\n\
         community  {community}\n\
         LAN key    {lan}\n\
         Next: `coop up` to run your node, and `coop invite` for a neighbour.\n"
    );
    Ok(Report::new(
        json!({
            "community": community,
            "name": name,
            "founder": founder,
            "lan_key": !no_lan_key,
            "params": params,
        }),
        text,
    ))
}

/// The running node's status, if `coop up` serves the data dir.
pub(crate) fn running_status(dir: &DataDir) -> Option<Status> {
    let socket = dir.api_socket();
    if !socket.exists() {
        return None;
    }
    let client = ApiClient::new(&socket)
        .ok()?
        .with_timeout(Duration::from_secs(10));
    client.get::<Status>("/status").ok().filter(|s| s.running)
}

/// Whether a multiaddr can be dialled by someone else (not an unspecified address or port 0).
pub(crate) fn dialable(addr: &str) -> bool {
    peerstore::parse_dialable(addr).is_ok()
}

/// The addresses this node can be reached at when it runs, without it running: each
/// configured listen address with the kept port (an unspecified host stands for this
/// machine's address on its default route, when it has one), ending in `/p2p/<peer id>`.
fn own_addresses(app: &App, config: &coop_node::Config) -> Vec<String> {
    let Ok(me) = peerstore::own_peer_id(&app.dir) else {
        return Vec::new();
    };
    let listen = if config.listen.is_empty() {
        coop_node::RunOptions::default().listen
    } else {
        config.listen.clone()
    };
    let mut out = Vec::new();
    for l in listen {
        // "/ip4/HOST/tcp/PORT..." with PORT 0 meaning the kept port.
        let parts: Vec<&str> = l.trim().split('/').collect();
        let ["", family @ ("ip4" | "ip6"), host, "tcp", port, ..] = parts[..] else {
            continue;
        };
        let port = match (port.parse::<u16>(), config.listen_port) {
            (Ok(0), Some(kept)) => kept,
            (Ok(p), _) if p != 0 => p,
            _ => continue,
        };
        let host = match (family, host) {
            ("ip4", "0.0.0.0") => match default_route_ip("0.0.0.0:0", "192.0.2.1:9") {
                Some(ip) => ip,
                None => continue,
            },
            ("ip6", "::") => match default_route_ip("[::]:0", "[2001:db8::1]:9") {
                Some(ip) => ip,
                None => continue,
            },
            _ => host.to_string(),
        };
        out.push(format!("/{family}/{host}/tcp/{port}/p2p/{me}"));
    }
    out
}

/// This machine's address on the route towards `probe` (a documentation address): a UDP
/// socket "connected" there sends nothing but learns its source address.
fn default_route_ip(bind: &str, probe: &str) -> Option<String> {
    let s = std::net::UdpSocket::bind(bind).ok()?;
    s.connect(probe).ok()?;
    let ip = s.local_addr().ok()?.ip();
    (!ip.is_unspecified() && !ip.is_loopback()).then(|| ip.to_string())
}

pub(crate) fn invite(app: &App) -> Result<Report> {
    let config = app.dir.config()?;
    let community = config.community.ok_or(NodeError::NoCommunity)?;
    let psk = match &config.psk {
        None => None,
        Some(h) => {
            let mut k = [0u8; 32];
            hex::decode_to_slice(h.trim(), &mut k)
                .context("the LAN key in config.json is not 32 bytes of hex")?;
            Some(k)
        }
    };
    let (mut peers, source) = match running_status(&app.dir) {
        Some(s) => (
            s.listen,
            "the running node's listen addresses and the peer store",
        ),
        None => (
            own_addresses(app, &config),
            "this node's kept address and the peer store (no `coop up` running)",
        ),
    };
    // Then the other nodes this one knows: those that worked most recently first, then
    // the invite's own peers.
    let (book, _) = app.dir.peer_book();
    let mut known: Vec<&peerstore::StoredPeer> = book.peers.iter().collect();
    known.sort_by_key(|p| std::cmp::Reverse(p.last_seen));
    peers.extend(known.into_iter().map(|p| p.addr.clone()));
    peers.extend(config.peers.iter().cloned());
    let mut seen = std::collections::HashSet::new();
    let mut peers: Vec<String> = peers
        .into_iter()
        .filter(|a| dialable(a) && seen.insert(a.clone()))
        .collect();
    peers.truncate(MAX_PEERS);
    let mut relays: Vec<String> = config
        .relays
        .iter()
        .filter(|r| peerstore::parse_relay(r).is_ok())
        .cloned()
        .collect();
    relays.truncate(MAX_RELAYS);
    let inv = Invite {
        community,
        psk,
        peers,
        relays,
    };
    let code = inv.encode();
    // The code alone on stdout, so `coop join $(coop invite)` works; the note on stderr.
    eprintln!(
        "Invite to community {} with {} peer address(es) from {source}, {} relay(s){}.",
        community.short(),
        inv.peers.len(),
        inv.relays.len(),
        if psk.is_some() {
            " and the LAN key: share it only with the neighbour you invite"
        } else {
            ""
        }
    );
    if inv.peers.is_empty() {
        eprintln!("No peer addresses: run `coop up` first so the code carries them, or the newcomer relies on mDNS.");
    }
    Ok(Report::new(
        json!({
            "code": code,
            "community": community,
            "lan_key": psk.is_some(),
            "peers": inv.peers,
            "relays": inv.relays,
        }),
        format!("{code}\n"),
    ))
}

pub(crate) fn join(app: &App, code: &str) -> Result<Report> {
    let inv = Invite::decode(code)?;
    // Every address is checked before anything is written: a bad one would stop `coop up`.
    inv.check_addresses(
        |a| peerstore::parse_dialable(a).map(drop),
        |a| peerstore::parse_relay(a).map(drop),
    )?;
    let (node, request) = LocalNode::join(
        &app.dir,
        inv.community,
        inv.psk.map(hex::encode),
        inv.peers.clone(),
        app.now,
    )?;
    let member = node.member();
    drop(node);
    if !inv.relays.is_empty() {
        let mut config = app.dir.config()?;
        for r in &inv.relays {
            if !config.relays.contains(r) {
                config.relays.push(r.clone());
            }
        }
        app.dir.save_config(&config)?;
    }
    let text = format!(
        "Asked to join community {community}.\n\
         join request  {request}\n\
         member id     {member}\n\
         You are pending until a member vouches for you: run `coop up` so your request reaches\n\
         them, and ask them to run `coop vouch {short}`.\n",
        community = inv.community,
        short = member.short(),
    );
    Ok(Report::new(
        json!({
            "community": inv.community,
            "member": member,
            "request": request,
            "peers": inv.peers,
            "relays": inv.relays,
            "lan_key": inv.psk.is_some(),
        }),
        text,
    ))
}

pub(crate) fn vouch(app: &App, who: &str) -> Result<Report> {
    let mut b = app.backend()?;
    let state = app::view(&mut b, Family::Members)?;
    let member = app::member(&state, who)?;
    let id = b.submit(Record::Vouch(record::Vouch { member }), app.now)?;
    let state = app::view(&mut b, Family::Members)?;
    let status = state
        .members
        .get(&member)
        .map_or("unknown".to_string(), |m| enum_str(&m.status));
    let name = show::name(&state, &member);
    Ok(Report::new(
        json!({ "id": id, "member": member, "status": status }),
        format!(
            "Vouched for {name} ({}): record {id}\n{name} is now {status}.\n",
            member.short()
        ),
    ))
}

/// `coop rename NAME`: a `rename` record for this member (docs/RULES.md R20).
pub(crate) fn rename(app: &App, name: &str) -> Result<Report> {
    let me = app.me()?;
    let mut b = app.backend()?;
    let before = show::name(&app::view(&mut b, Family::Members)?, &me);
    let id = b.submit(
        Record::Rename(record::Rename {
            display_name: name.to_string(),
        }),
        app.now,
    )?;
    Ok(Report::new(
        json!({ "id": id, "member": me, "display_name": name, "was": before }),
        format!("You are now {name:?} (were {before:?}): record {id}\n"),
    ))
}

/// The snake_case name a serde enum serializes to.
pub(crate) fn enum_str(v: &impl serde::Serialize) -> String {
    serde_json::to_value(v)
        .ok()
        .and_then(|v| v.as_str().map(String::from))
        .unwrap_or_default()
}

pub(crate) fn status(app: &App) -> Result<Report> {
    let config = app.dir.config()?;
    if config.community.is_none() {
        let member = app.me()?;
        let device = app.dir.device()?.device_id();
        return Ok(Report::new(
            json!({
                "member": member,
                "display_name": config.display_name,
                "device": device,
                "community": null,
                "membership": "none",
                "running": false,
                "data_dir": app.dir.root().display().to_string(),
            }),
            format!(
                "member      {} {member}\ndevice      {device}\ncommunity   none yet (run `coop found` or `coop join CODE`)\n",
                config.display_name
            ),
        ));
    }
    let s = app.backend()?.status()?;
    let mut t = String::new();
    let mut line = |k: &str, v: String| t.push_str(&format!("{k:<11} {v}\n"));
    line("member", format!("{} {}", s.display_name, s.member));
    line("device", s.device.to_hex());
    let name = if s.community_name.is_empty() {
        "(genesis not received yet)".to_string()
    } else {
        format!("{:?}", s.community_name)
    };
    line("community", format!("{name} {}", s.community));
    line("membership", s.membership.clone());
    line(
        "node",
        if s.running {
            format!("running, {} peer(s) connected", s.peers.len())
        } else {
            "not running (`coop up` starts it)".into()
        },
    );
    for a in &s.listen {
        line("listen", a.clone());
    }
    if let Some(hint) = mdns_hint(&s) {
        line("mDNS", hint);
    }
    for p in &s.peers {
        line("peer", p.clone());
    }
    for (k, v) in crate::commands::reach::reach_lines(&s) {
        line(k, v);
    }
    line(
        "changes",
        format!(
            "{} accepted, {} waiting for dependencies",
            s.changes, s.pending
        ),
    );
    line(
        "records",
        format!("{} counted, {} refused", s.counted, s.refused),
    );
    if s.running {
        line(
            "rejected",
            format!(
                "{} envelope(s) from peers refused by the gate",
                s.rejected_from_peers
            ),
        );
    }
    line(
        "heads",
        s.heads
            .iter()
            .map(|h| h.short())
            .collect::<Vec<_>>()
            .join(" "),
    );
    line("digest", s.digest.clone());
    if !s.forked_devices.is_empty() {
        line(
            "forked",
            s.forked_devices
                .iter()
                .map(|d| d.short())
                .collect::<Vec<_>>()
                .join(" "),
        );
    }
    let mut json = serde_json::to_value(&s)?;
    json["data_dir"] = json!(app.dir.root().display().to_string());
    Ok(Report::new(json, t))
}

pub(crate) fn members(app: &App) -> Result<Report> {
    let me = app.me()?;
    let rows = app.backend()?.members()?;
    let names: std::collections::HashMap<_, _> = rows
        .iter()
        .map(|m| (m.id, m.display_name.clone()))
        .collect();
    let name = |id: &coop_model::MemberId| names.get(id).cloned().unwrap_or_else(|| id.short());
    let mut t = Table::new(&["id", "name", "status", "roles", "vouched by", "balance"]);
    let mut list = Vec::new();
    let mut ms: Vec<_> = rows.iter().collect();
    ms.sort_by(|a, b| (&a.display_name, a.id).cmp(&(&b.display_name, b.id)));
    for m in ms {
        // Another member's balance is shown only if their visibility allows it (docs/RULES.md R10): the
        // query leaves it out otherwise.
        let balance = m.time.as_ref().map(|t| t.balance);
        let vouchers: Vec<String> = m.vouched_by.iter().map(name).collect();
        let you = if m.id == me { " (you)" } else { "" };
        t.row(vec![
            m.id.short(),
            format!("{}{you}", m.display_name),
            enum_str(&m.status),
            if m.roles.is_empty() {
                "-".into()
            } else {
                m.roles
                    .iter()
                    .map(|r| r.as_str())
                    .collect::<Vec<_>>()
                    .join(",")
            },
            if vouchers.is_empty() {
                "-".into()
            } else {
                vouchers.join(",")
            },
            match balance {
                Some(b) => show::signed_minutes(b),
                None => format!("({})", m.visibility),
            },
        ]);
        list.push(json!({
            "id": m.id,
            "display_name": m.display_name,
            "status": m.status,
            "roles": m.roles,
            "vouched_by": m.vouched_by,
            "devices": m.devices,
            "balance_minutes": balance,
            "visibility": m.visibility,
            "you": m.id == me,
        }));
    }
    Ok(Report::new(json!({ "members": list }), t.render()))
}

/// The status line about LAN discovery, when a node runs: "on, no neighbour found yet
/// (N s)" says why a node may show no peers; "off (--no-mdns)" that it will not look.
pub(crate) fn mdns_hint(s: &coop_node::Status) -> Option<String> {
    if !s.running {
        return None;
    }
    let m = &s.mdns;
    Some(if !m.on {
        "off (--no-mdns): peers come from the peer store, invites and --peer".into()
    } else if m.found == 0 {
        format!(
            "on, no neighbour found yet ({} s); is the other node on this LAN with mDNS on?",
            m.searching_secs
        )
    } else {
        format!(
            "on, {} neighbour(s) on the LAN now, {} found since start",
            m.neighbours, m.found
        )
    })
}
