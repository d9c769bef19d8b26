//! A member's devices: `coop device request`, `approve`, `complete`, `list`, `revoke` and
//! `moved` (docs/CLI.md, "Devices"; docs/RULES.md R18; codes in docs/PROTOCOL.md).

use std::time::{Duration, Instant};

use anyhow::{bail, Context as _, Result};
use coop_model::query::Family;
use coop_model::record;
use coop_model::{DeviceId, Record, State};
use coop_node::device::{self as pairing, Approval, Request};
use rand::RngCore;
use serde_json::json;

use crate::app::{App, Report};
use crate::cli::DeviceCommand;
use crate::commands::membership::{dialable, running_status};
use crate::show::{self, Table};

pub(crate) fn device(app: &App, cmd: DeviceCommand) -> Result<Report> {
    match cmd {
        DeviceCommand::Request { name } => request(app, name.as_deref().unwrap_or("")),
        DeviceCommand::Approve { code } => approve(app, &code),
        DeviceCommand::Complete {
            code,
            wait,
            peer,
            no_mdns,
            listen,
        } => complete(
            app,
            code.as_deref(),
            &Fetch {
                wait: Duration::from_secs(wait),
                peers: peer,
                mdns: !no_mdns,
                listen,
            },
        ),
        DeviceCommand::RecoverRequest { name } => {
            recover_request(app, name.as_deref().unwrap_or(""))
        }
        DeviceCommand::List => list(app),
        DeviceCommand::Revoke { device, reason } => revoke(app, &device, &reason),
        DeviceCommand::Moved => moved(app),
    }
}

fn request(app: &App, label: &str) -> Result<Report> {
    let mut seed = [0u8; 32];
    rand::rngs::OsRng.fill_bytes(&mut seed);
    let r = pairing::request(&app.dir, seed, label)?;
    let code = r.encode();
    eprintln!(
        "Device {} asks to be paired. On a device of yours that holds your identity key, run\n  \
         coop device approve CODE\nand bring its answer back here: coop device complete ANSWER",
        r.device.short()
    );
    Ok(Report::new(
        json!({ "code": code, "device": r.device, "label": r.label }),
        format!("{code}\n"),
    ))
}

fn recover_request(app: &App, label: &str) -> Result<Report> {
    let (mut id_seed, mut dev_seed) = ([0u8; 32], [0u8; 32]);
    rand::rngs::OsRng.fill_bytes(&mut id_seed);
    rand::rngs::OsRng.fill_bytes(&mut dev_seed);
    let r = pairing::recovery_request(&app.dir, id_seed, dev_seed, label)?;
    let code = r.encode();
    eprintln!(
        "This machine made a new identity key ({}). Give the code to another member, who runs\n  \
         coop decision open --title \"Recover NAME\" --recover NAME CODE\n\
         and brings its answer back here: coop device complete ANSWER",
        r.identity.short()
    );
    Ok(Report::new(
        json!({ "code": code, "identity": r.identity, "device": r.device, "label": r.label }),
        format!("{code}\n"),
    ))
}

fn approve(app: &App, code: &str) -> Result<Report> {
    let request = Request::decode(code)?;
    let (identity, member) = pairing::signer(&app.dir)?;
    let config = app.dir.config()?;
    let state = app.backend()?.view(Family::Members)?.into_state();
    if let Some(info) = state.devices.get(&request.device) {
        bail!(
            "device {} is already certified (for {}); nothing to approve",
            request.device.short(),
            show::name(&state, &info.member)
        );
    }
    let peers = match running_status(&app.dir) {
        Some(s) => s.listen,
        None => config.listen.iter().chain(&config.peers).cloned().collect(),
    };
    let mut peers: Vec<String> = peers.into_iter().filter(|a| dialable(a)).collect();
    peers.dedup();
    peers.truncate(pairing::MAX_PEERS);
    let approval = pairing::approve_for(&identity, member, &config, &request, peers)?;
    let answer = approval.encode();
    eprintln!(
        "Approved device {}{} for {}. On the new machine run: coop device complete ANSWER\n\
         The answer carries your community's LAN key: give it only to your own machine.",
        request.device.short(),
        if request.label.is_empty() {
            String::new()
        } else {
            format!(" ({:?})", request.label)
        },
        config.display_name,
    );
    Ok(Report::new(
        json!({
            "code": answer,
            "device": request.device,
            "label": request.label,
            "member": approval.member,
            "community": approval.community,
            "peers": approval.peers,
        }),
        format!("{answer}\n"),
    ))
}

/// Where `coop device complete` looks for the member's ledger, and for how long.
struct Fetch {
    wait: Duration,
    peers: Vec<String>,
    mdns: bool,
    listen: Vec<String>,
}

/// Whether `state` lets the pairing's certificate count now: the member is admitted and,
/// for a recovered member's new machine, the recovery to its key has passed.
fn ready(state: &State, p: &pairing::Pairing) -> bool {
    if !state.is_admitted(&p.member) {
        return false;
    }
    match p.identity {
        None => true,
        Some(key) => state
            .members
            .get(&p.member)
            .and_then(|m| m.recovered)
            .is_some_and(|r| r.identity == key),
    }
}

fn complete(app: &App, code: Option<&str>, fetch: &Fetch) -> Result<Report> {
    if let Some(code) = code {
        if code.trim().starts_with(pairing::RECOVERY_ANSWER_PREFIX) {
            pairing::accept_recovery(&app.dir, &Approval::decode_recovery(code)?)?;
        } else {
            pairing::accept(&app.dir, &Approval::decode(code)?)?;
        }
    }
    let Some(p) = pairing::pending(&app.dir)? else {
        if code.is_some() {
            // Accepted an approval for a device whose certificate is already written.
            return Ok(Report::new(
                json!({ "written": true }),
                "This device is already paired.\n",
            ));
        }
        bail!("no approved pairing waits here: run `coop device request`, then `coop device complete ANSWER`");
    };
    let device = app.dir.device()?.device_id();
    let deadline = Instant::now() + fetch.wait;
    let mut state = app.backend()?.view(Family::Members)?.into_state();
    // Wait (bounded) for the member's ledger: through the running node, or by asking the
    // peers directly when none runs for this data dir.
    while !state.devices.contains_key(&device) && !ready(&state, &p) {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            break;
        }
        if running_status(&app.dir).is_some() {
            eprintln!(
                "Waiting for the node to fetch the ledger ({} s left)...",
                left.as_secs()
            );
            std::thread::sleep(left.min(Duration::from_secs(2)));
        } else {
            pull(app, fetch, left)?;
        }
        state = app.backend()?.view(Family::Members)?.into_state();
    }
    let name = show::name(&state, &p.member);
    if state.devices.contains_key(&device) {
        pairing::done(&app.dir)?;
        return Ok(Report::new(
            json!({ "written": true, "device": device, "member": p.member }),
            format!("This device already acts for {name}.\n"),
        ));
    }
    if !ready(&state, &p) {
        // The certificate must come after the member's admission (or recovery) in the
        // ledger, so the device waits for the ledger before its first change.
        let what = if p.identity.is_some() {
            "the passed recovery decision (its tally, after the waiting period)"
        } else {
            "that membership"
        };
        return Ok(Report::new(
            json!({ "written": false, "device": device, "member": p.member }),
            format!(
                "Paired: this data dir now belongs to the member named in the answer.\n\
                 Its ledger does not hold {what} yet. Run `coop device complete` again\n\
                 (it asks your peers for up to --wait seconds), or start `coop up` first.\n"
            ),
        ));
    }
    let mut b = app.backend()?;
    let id = b.submit(p.record()?, app.now)?;
    pairing::done(&app.dir)?;
    Ok(Report::new(
        json!({ "written": true, "device": device, "member": p.member, "record": id }),
        format!(
            "This device now acts for {name} (member {}): certificate {id}.\n\
             Your hours, Support Points and roles are the same from every device.\n",
            p.member.short()
        ),
    ))
}

/// Runs this data dir's node briefly to take in what its peers hold (at most `left`).
fn pull(app: &App, fetch: &Fetch, left: Duration) -> Result<()> {
    let config = app.dir.config()?;
    let mut peers = config.peers.clone();
    peers.extend(fetch.peers.iter().cloned());
    let opts = coop_node::run::RunOptions {
        listen: if !fetch.listen.is_empty() {
            fetch.listen.clone()
        } else if !config.listen.is_empty() {
            config.listen.clone()
        } else {
            coop_node::run::RunOptions::default().listen
        },
        peers,
        mdns: fetch.mdns,
        ..coop_node::run::RunOptions::default()
    };
    eprintln!(
        "Asking your peers for the ledger (up to {} s; --wait sets it)...",
        left.as_secs()
    );
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    let mut shown = None;
    let pulled = runtime.block_on(coop_node::repair::pull_from_peers(
        &app.dir,
        opts,
        left,
        |p| {
            // One line every five seconds, whatever the callback's rate.
            let step = p.elapsed.as_secs() / 5;
            if shown != Some(step) {
                shown = Some(step);
                eprintln!("  {} peer(s), {} change(s) so far", p.connected, p.changes);
            }
        },
    ))?;
    if pulled.peers == 0 {
        eprintln!("No peer answered.");
    }
    Ok(())
}

/// A device of `state`'s member `me` by label or unique id prefix.
fn find_device(state: &State, me: &coop_model::MemberId, query: &str) -> Result<DeviceId> {
    let q = query.trim();
    let mine: Vec<(&DeviceId, &coop_model::state::DeviceInfo)> = state
        .devices
        .iter()
        .filter(|(_, i)| i.member == *me)
        .collect();
    let by_label: Vec<&DeviceId> = mine
        .iter()
        .filter(|(_, i)| i.label.as_deref() == Some(q))
        .map(|(d, _)| *d)
        .collect();
    if by_label.len() == 1 {
        return Ok(*by_label[0]);
    }
    let by_id: Vec<&DeviceId> = mine
        .iter()
        .filter(|(d, _)| !q.is_empty() && d.to_hex().starts_with(&q.to_lowercase()))
        .map(|(d, _)| *d)
        .collect();
    match (by_label.len(), by_id.len()) {
        (0, 1) => Ok(*by_id[0]),
        (0, 0) => {
            bail!("you have no device labelled or starting with {q:?} (see `coop device list`)")
        }
        _ => bail!("{q:?} names more than one of your devices; give more of its id"),
    }
}

fn list(app: &App) -> Result<Report> {
    let me = app.me()?;
    let here = app.dir.device()?.device_id();
    let state = app.backend()?.view(Family::Members)?.into_state();
    let mut t = Table::new(&["DEVICE", "LABEL", "ADDED", "LAST WROTE", "STATUS"]);
    let mut rows = Vec::new();
    for (d, i) in state.devices.iter().filter(|(_, i)| i.member == me) {
        let status = match (i.revoked_by, i.forked_at) {
            (Some(r), _) => format!("revoked ({})", r.short()),
            (None, Some(s)) => format!("forked at change {s}: pair a new device"),
            (None, None) if *d == here => "this device".to_string(),
            (None, None) => "active".to_string(),
        };
        t.row(vec![
            d.short(),
            i.label.clone().unwrap_or_else(|| "-".into()),
            show::datetime(i.added),
            show::datetime(i.last_wrote),
            status.clone(),
        ]);
        rows.push(json!({
            "device": d,
            "label": i.label,
            "added": i.added,
            "last_wrote": i.last_wrote,
            "this_device": *d == here,
            "forked_at": i.forked_at,
            "revoked_by": i.revoked_by,
        }));
    }
    let mut text = if t.is_empty() {
        "No device of yours is in the ledger yet.\n".to_string()
    } else {
        t.render()
    };
    if pairing::pending(&app.dir)?.is_some() {
        text.push_str("This device is paired but its certificate is not written yet: run `coop device complete`.\n");
    }
    Ok(Report::new(json!({ "devices": rows }), text))
}

fn revoke(app: &App, query: &str, reason: &str) -> Result<Report> {
    let me = app.me()?;
    let mut b = app.backend()?;
    let state = b.view(Family::Members)?.into_state();
    let device = find_device(&state, &me, query)?;
    let id = b.submit(
        Record::DeviceRevoke(record::DeviceRevoke {
            device,
            reason: reason.trim().to_string(),
        }),
        app.now,
    )?;
    Ok(Report::new(
        json!({ "record": id, "device": device }),
        format!(
            "Revoked device {}: record {id}. What it wrote outside this record's past no \
             longer counts, and it can write no more.\n",
            device.short()
        ),
    ))
}

fn moved(app: &App) -> Result<Report> {
    app.dir.config()?;
    pairing::adopt_machine(&app.dir, pairing::machine_id().as_deref())?;
    Ok(Report::new(
        json!({ "adopted": true }),
        "This machine now writes as this data dir's device. The old machine must never \
         write as it again (its copy would fork the device).\n",
    ))
}
