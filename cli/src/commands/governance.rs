//! Governance and moderation: `decision open|vote|close|list|show`, `report record|member`,
//! `moderation list|hide`.

use anyhow::{bail, Context, Result};
use coop_model::record;
use coop_model::record::{DecisionAction, ReportTarget};
use coop_model::state::{Decision, DecisionStatus};
use coop_model::{Record, State};
use serde_json::{json, Value};

use crate::app::{self, App, Report};
use crate::cli::{DecisionCommand, ModerationCommand, ReportCommand};
use crate::parse::Param;
use crate::show::{self, Table};
use coop_model::query::Family;

pub(crate) fn decision(app: &App, cmd: DecisionCommand) -> Result<Report> {
    match cmd {
        DecisionCommand::Open {
            title,
            description,
            window,
            param,
            grant,
            revoke,
            remove,
            allocate,
            member,
            recover,
        } => {
            let mut b = app.backend()?;
            let state = app::view(&mut b, Family::Governance)?;
            let member = |what: &str| -> Result<coop_model::MemberId> {
                let m = member
                    .as_deref()
                    .with_context(|| format!("{what} needs --member NAME"))?;
                app::member(&state, m)
            };
            let action = if let Some(Param { key, value }) = param {
                DecisionAction::Param { key, value }
            } else if let Some(role) = grant {
                DecisionAction::RoleGrant {
                    member: member("--grant")?,
                    role,
                }
            } else if let Some(role) = revoke {
                DecisionAction::RoleRevoke {
                    member: member("--revoke")?,
                    role,
                }
            } else if let Some(m) = remove {
                DecisionAction::Removal {
                    member: app::member(&state, &m)?,
                }
            } else if let [m, code] = recover.as_slice() {
                let request = coop_node::device::RecoveryRequest::decode(code)?;
                DecisionAction::Recovery {
                    member: app::member(&state, m)?,
                    new_identity: request.identity,
                }
            } else if let Some(a) = allocate {
                DecisionAction::PoolAllocation {
                    application: app::find(&mut b, &[coop_model::Kind::Application], &a)?,
                }
            } else {
                DecisionAction::General
            };
            let closes_at = app.now + window;
            let id = b.submit(
                Record::from(record::Decision {
                    title: title.clone(),
                    description,
                    closes_at,
                    action: action.clone(),
                }),
                app.now,
            )?;
            let mut text = format!(
                "Opened decision {title:?} ({}): {id}\nVoting is open until {} UTC: `coop decision vote {} yes|no|abstain`; then `coop decision close {}`.\n",
                action_text(&state, &action),
                show::datetime(closes_at),
                id.short(),
                id.short(),
            );
            let mut out =
                json!({ "id": id, "title": title, "closes_at": closes_at, "action": action });
            if let ([_, code], DecisionAction::Recovery { member, .. }) =
                (recover.as_slice(), &action)
            {
                let answer = recovery_answer(app, &state, member, code)?;
                text.push_str(&format!(
                    "A recovery takes effect after `recovery_wait_days` ({} days) and needs a yes from a member other than you.\n\
                     Give this answer to the member's new machine (it carries the LAN key); there run\n  coop device complete ANSWER\n{answer}\n",
                    state.params.recovery_wait_days
                ));
                out["answer"] = json!(answer);
            }
            Ok(Report::new(out, text))
        }
        DecisionCommand::Vote { id, choice } => {
            let mut b = app.backend()?;
            let state = app::view(&mut b, Family::Governance)?;
            let decision = app::record(Family::Governance, &state, &id)?;
            let rec = b.submit(Record::Vote(record::Vote { decision, choice }), app.now)?;
            Ok(Report::new(
                json!({ "id": rec, "decision": decision, "choice": choice }),
                format!("Voted {choice} on {}: record {rec}\n", decision.short()),
            ))
        }
        DecisionCommand::Close { id } => {
            let mut b = app.backend()?;
            let state = app::view(&mut b, Family::Governance)?;
            let decision = app::record(Family::Governance, &state, &id)?;
            let rec = b.submit(Record::Tally(record::Tally { decision }), app.now)?;
            let state = app::view(&mut b, Family::Governance)?;
            let d = state
                .decisions
                .get(&decision)
                .context("the decision vanished from the derived state")?;
            Ok(Report::new(
                decision_json(&state, d, true),
                format!(
                    "Closed the vote on {:?}: {} — record {rec}\n{}",
                    d.title,
                    outcome_text(d),
                    effect_text(d)
                ),
            ))
        }
        DecisionCommand::List { all } => {
            let state = app.view(Family::Governance)?;
            let pos = app::positions(&state);
            let mut ds: Vec<&Decision> = state
                .decisions
                .values()
                .filter(|d| all || !app::hidden(&state, &d.id))
                .collect();
            ds.sort_by_key(|d| {
                (
                    d.status != DecisionStatus::Open,
                    std::cmp::Reverse(pos.get(&d.id).copied()),
                )
            });
            let mut t = Table::new(&["id", "title", "action", "status", "closes (UTC)"]);
            for d in &ds {
                t.row(vec![
                    d.id.short(),
                    show::clip(&d.title, 40),
                    action_text(&state, &d.action),
                    d.status.as_str().into(),
                    show::datetime(d.closes_at),
                ]);
            }
            let text = if t.is_empty() {
                "No decisions yet. Open one with `coop decision open --title ...`.\n".into()
            } else {
                t.render()
            };
            let list: Vec<Value> = ds.iter().map(|d| decision_json(&state, d, false)).collect();
            Ok(Report::new(json!({ "decisions": list }), text))
        }
        DecisionCommand::Show { id } => {
            let state = app.view(Family::Governance)?;
            let did = app::record(Family::Governance, &state, &id)?;
            let d = state
                .decisions
                .get(&did)
                .with_context(|| format!("{} is not a decision", did.short()))?;
            let mut t = Table::new(&["vote", "member", "choice", "cast (UTC)"]);
            for v in &d.votes {
                t.row(vec![
                    v.id.short(),
                    show::name(&state, &v.member),
                    v.choice.to_string(),
                    show::datetime(v.time),
                ]);
            }
            let text = format!(
                "{title:?} ({id})\nproposer     {proposer}\naction       {action}\nwindow       {opened} to {closes} UTC\nstatus       {status}\n{effect}{desc}{votes}",
                title = d.title,
                id = d.id,
                proposer = show::name(&state, &d.proposer),
                action = action_text(&state, &d.action),
                opened = show::datetime(d.opened_at),
                closes = show::datetime(d.closes_at),
                status = outcome_text(d),
                effect = effect_text(d),
                desc = if d.description.is_empty() {
                    String::new()
                } else {
                    format!("\n{}\n\n", d.description)
                },
                votes = if t.is_empty() {
                    "No votes.\n".into()
                } else {
                    t.render()
                },
            );
            Ok(Report::new(decision_json(&state, d, true), text))
        }
    }
}

/// The answer a recovered member's new machine takes: the community, LAN key, peers and
/// the member it will act for (docs/PROTOCOL.md, "Device pairing").
fn recovery_answer(
    app: &App,
    state: &State,
    member: &coop_model::MemberId,
    code: &str,
) -> Result<String> {
    let request = coop_node::device::RecoveryRequest::decode(code)?;
    let config = app.dir.config()?;
    let peers = match crate::commands::membership::running_status(&app.dir) {
        Some(s) => s.listen,
        None => config.listen.iter().chain(&config.peers).cloned().collect(),
    };
    let mut peers: Vec<String> = peers
        .into_iter()
        .filter(|a| crate::commands::membership::dialable(a))
        .collect();
    peers.dedup();
    peers.truncate(coop_node::device::MAX_PEERS);
    let community = config.community.context("this data dir has no community")?;
    let psk = match &config.psk {
        None => None,
        Some(h) => {
            let mut k = [0u8; 32];
            hex::decode_to_slice(h.trim(), &mut k).map_err(|_| {
                anyhow::anyhow!("the LAN key in config.json is not 32 bytes of hex")
            })?;
            Some(k)
        }
    };
    let display_name = state
        .members
        .get(member)
        .map(|m| m.display_name.clone())
        .unwrap_or_default();
    Ok(coop_node::device::Approval {
        community,
        member: *member,
        device: request.device,
        cert: [0; 64],
        psk,
        display_name,
        label: request.label,
        peers,
        identity: None,
    }
    .encode_recovery())
}

fn action_text(state: &State, action: &DecisionAction) -> String {
    match action {
        DecisionAction::General => "general".into(),
        DecisionAction::Param { key, value } => format!("set {key}={value}"),
        DecisionAction::RoleGrant { member, role } => {
            format!("grant {role} to {}", show::name(state, member))
        }
        DecisionAction::RoleRevoke { member, role } => {
            format!("revoke {role} from {}", show::name(state, member))
        }
        DecisionAction::Removal { member } => format!("remove {}", show::name(state, member)),
        DecisionAction::PoolAllocation { application } => {
            format!("allocate to application {}", application.short())
        }
        DecisionAction::Recovery {
            member,
            new_identity,
        } => format!(
            "recover {} to new identity key {}",
            show::name(state, member),
            new_identity.short()
        ),
    }
}

fn outcome_text(d: &Decision) -> String {
    match &d.tally {
        None => format!("open, {} vote(s) so far", d.votes.len()),
        Some(t) => format!(
            "{} — yes {}, no {}, abstain {} of {} members (quorum {} %, approval > {} %)",
            d.status.as_str(),
            t.yes,
            t.no,
            t.abstain,
            t.eligible,
            t.quorum_percent,
            t.approval_percent
        ),
    }
}

fn effect_text(d: &Decision) -> String {
    match d.tally.as_ref().and_then(|t| t.effect_error.as_ref()) {
        Some(e) => format!("passed, but could not take effect: {e}\n"),
        None => String::new(),
    }
}

fn decision_json(state: &State, d: &Decision, with_votes: bool) -> Value {
    let mut v = json!({
        "id": d.id,
        "title": d.title,
        "description": d.description,
        "proposer": d.proposer,
        "opened_at": d.opened_at,
        "closes_at": d.closes_at,
        "action": d.action,
        "status": d.status,
        "votes": d.votes.len(),
        "tally": d.tally,
        "hidden": app::hidden(state, &d.id),
    });
    if with_votes {
        v["votes"] = d
            .votes
            .iter()
            .map(|x| json!({ "id": x.id, "member": x.member, "choice": x.choice, "time": x.time }))
            .collect();
    }
    v
}

pub(crate) fn report(app: &App, cmd: ReportCommand) -> Result<Report> {
    let mut b = app.backend()?;
    let state = app::view(&mut b, Family::Governance)?;
    let (target_kind, target, label, reason) = match cmd {
        ReportCommand::Record { id, reason } => {
            let r = app::find(&mut b, &[], &id)?;
            (
                ReportTarget::Record,
                r.0,
                format!("record {}", r.short()),
                reason,
            )
        }
        ReportCommand::Member { member, reason } => {
            let m = app::member(&state, &member)?;
            (
                ReportTarget::Member,
                m.0,
                format!("member {}", show::name(&state, &m)),
                reason,
            )
        }
    };
    let id = b.submit(
        Record::Report(record::Report {
            target_kind,
            target,
            reason: reason.clone(),
        }),
        app.now,
    )?;
    Ok(Report::new(
        json!({ "id": id, "target_kind": target_kind, "target": hex::encode(target), "reason": reason }),
        format!("Reported {label} to the moderators: record {id}\n"),
    ))
}

pub(crate) fn moderation(app: &App, cmd: ModerationCommand) -> Result<Report> {
    match cmd {
        ModerationCommand::List => {
            let state = app.view(Family::Governance)?;
            let me = app.me()?;
            let is_moderator = state
                .members
                .get(&me)
                .is_some_and(|m| m.roles.contains(&coop_model::record::Role::Moderator));
            if !is_moderator {
                bail!("only moderators see reports (the role is granted by decision: `coop decision open --grant moderator --member NAME`)");
            }
            let mut text = String::new();
            let mut t = Table::new(&["report", "by", "target", "reason", "hidden"]);
            let mut reports = Vec::new();
            for r in &state.reports {
                let target = match r.target_kind {
                    ReportTarget::Member => {
                        let id = coop_model::MemberId::from_hex(&r.target).ok();
                        format!(
                            "member {}",
                            id.map_or_else(
                                || r.target[..12].to_string(),
                                |m| show::name(&state, &m)
                            )
                        )
                    }
                    ReportTarget::Record => format!("record {}", &r.target[..12]),
                };
                let hidden = coop_model::RecordId::from_hex(&r.target)
                    .ok()
                    .is_some_and(|id| app::hidden(&state, &id));
                t.row(vec![
                    r.id.short(),
                    show::name(&state, &r.reporter),
                    target,
                    show::clip(&r.reason, 40),
                    if hidden { "yes".into() } else { String::new() },
                ]);
                reports.push(json!({
                    "id": r.id, "reporter": r.reporter, "target_kind": r.target_kind,
                    "target": r.target, "reason": r.reason, "hidden": hidden,
                }));
            }
            if t.is_empty() {
                text.push_str("No reports.\n");
            } else {
                text.push_str(&t.render());
            }
            let forked: Vec<Value> = state
                .forked_devices
                .iter()
                .map(|(d, m)| json!({ "device": d, "member": m }))
                .collect();
            if !state.forked_devices.is_empty() {
                text.push_str(
                    "\nDevices that equivocated (their records after the fork stop counting):\n",
                );
                let mut f = Table::new(&["device", "member"]);
                for (d, m) in &state.forked_devices {
                    f.row(vec![
                        d.short(),
                        m.map_or_else(|| "?".into(), |m| show::name(&state, &m)),
                    ]);
                }
                text.push_str(&f.render());
            }
            let hidden: Vec<Value> = state
                .hidden
                .iter()
                .map(|(r, by)| json!({ "record": r, "hidden_by": by }))
                .collect();
            if !state.hidden.is_empty() {
                text.push_str(&format!(
                    "\n{} record(s) hidden; `coop ledger --all` shows them.\n",
                    state.hidden.len()
                ));
            }
            Ok(Report::new(
                json!({ "reports": reports, "forked_devices": forked, "hidden": hidden }),
                text,
            ))
        }
        ModerationCommand::Hide { id, reason } => {
            let mut b = app.backend()?;
            let record = app::find(&mut b, &[], &id)?;
            let rec = b.submit(
                Record::Hide(record::Hide {
                    record,
                    reason: reason.clone(),
                }),
                app.now,
            )?;
            Ok(Report::new(
                json!({ "id": rec, "record": record, "reason": reason }),
                format!(
                    "Hid {} from listings: record {rec}\nIt stays in the ledger: `coop ledger --all` shows it.\n",
                    record.short()
                ),
            ))
        }
    }
}
