//! Proposals and Support Points: `proposal open|close|list|show`, `sp allocate|status`.

use anyhow::{Context, Result};
use coop_model::record;
use coop_model::state::{Proposal, ProposalStatus};
use coop_model::{MemberId, Points, Record, State};
use serde_json::{json, Value};

use crate::app::{self, App, Report};
use crate::cli::{ProposalCommand, SpCommand};
use crate::show::{self, Table};
use coop_model::query::Family;

pub(crate) fn proposal(app: &App, cmd: ProposalCommand) -> Result<Report> {
    match cmd {
        ProposalCommand::Open { title, description } => {
            let mut b = app.backend()?;
            let id = b.submit(
                Record::Proposal(record::Proposal {
                    title: title.clone(),
                    description: description.clone(),
                }),
                app.now,
            )?;
            Ok(Report::new(
                json!({ "id": id, "title": title, "description": description }),
                format!(
                    "Opened proposal {title:?}: {id}\nMembers support it with `coop sp allocate {} POINTS`.\n",
                    id.short()
                ),
            ))
        }
        ProposalCommand::Close { id, outcome } => {
            let mut b = app.backend()?;
            let state = app::view(&mut b, Family::Proposals)?;
            let proposal = app::record(Family::Proposals, &state, &id)?;
            let rec = b.submit(Record::Close(record::Close { proposal, outcome }), app.now)?;
            let title = state
                .proposals
                .get(&proposal)
                .map_or(String::new(), |p| p.title.clone());
            Ok(Report::new(
                json!({ "id": rec, "proposal": proposal, "outcome": outcome }),
                format!(
                    "Closed proposal {title:?} as {outcome}: record {rec}\nThe SP locked on it are available to their members again.\n"
                ),
            ))
        }
        ProposalCommand::List { all } => list(app, all),
        ProposalCommand::Show { id } => {
            let state = app.view(Family::Proposals)?;
            let pid = app::record(Family::Proposals, &state, &id)?;
            let p = state
                .proposals
                .get(&pid)
                .with_context(|| format!("{} is not a proposal", pid.short()))?;
            let mut t = Table::new(&["allocation", "member", "points"]);
            for a in &p.allocations {
                t.row(vec![
                    a.id.short(),
                    crate::commands::insight::name_if_visible(app, &state, &a.member),
                    a.points.to_string(),
                ]);
            }
            let text = format!(
                "{title:?} ({id})\nproposer     {proposer}\nstatus       {status}\nSP           {active} active (peak {peak}), {supporters} supporter(s){flag}\n{desc}\n{allocs}",
                title = p.title,
                id = p.id,
                proposer = show::name(&state, &p.proposer),
                status = status_text(p),
                active = p.active_points,
                peak = p.peak_points,
                supporters = p.supporters,
                flag = if p.prioritized { ", PRIORITIZED" } else { "" },
                desc = if p.description.is_empty() {
                    String::new()
                } else {
                    format!("\n{}\n", p.description)
                },
                allocs = if t.is_empty() {
                    "No allocations.\n".into()
                } else {
                    t.render()
                },
            );
            let mut json = proposal_json(&state, p, true);
            // Who allocated is SP history: withheld where the member keeps it from you.
            let me = crate::commands::insight::viewer(app);
            let rows = json["allocations"].as_array_mut().into_iter().flatten();
            for (a, row) in p.allocations.iter().zip(rows) {
                if !state.can_see(me.as_ref(), &a.member) {
                    row["member"] = Value::Null;
                }
            }
            Ok(Report::new(json, text))
        }
    }
}

fn status_text(p: &Proposal) -> String {
    match p.status {
        ProposalStatus::Open => "open".into(),
        ProposalStatus::Closed(o) => format!("closed ({o})"),
    }
}

fn proposal_json(state: &State, p: &Proposal, with_allocations: bool) -> Value {
    let (status, outcome) = match p.status {
        ProposalStatus::Open => ("open", None),
        ProposalStatus::Closed(o) => ("closed", Some(o.as_str())),
    };
    let mut v = json!({
        "id": p.id,
        "title": p.title,
        "description": p.description,
        "proposer": p.proposer,
        "status": status,
        "outcome": outcome,
        "active_points": p.active_points,
        "peak_points": p.peak_points,
        "supporters": p.supporters,
        "prioritized": p.prioritized,
        "priority_threshold": state.params.sp_priority_threshold,
        "hidden": app::hidden(state, &p.id),
    });
    if with_allocations {
        v["allocations"] = p
            .allocations
            .iter()
            .map(|a| json!({ "id": a.id, "member": a.member, "points": a.points }))
            .collect();
    }
    v
}

fn list(app: &App, all: bool) -> Result<Report> {
    let state = app.view(Family::Proposals)?;
    let pos = app::positions(&state);
    let mut ps: Vec<&Proposal> = state
        .proposals
        .values()
        .filter(|p| all || !app::hidden(&state, &p.id))
        .collect();
    // Open before closed, most supported first, then newest.
    ps.sort_by_key(|p| {
        (
            p.status != ProposalStatus::Open,
            -p.active_points,
            std::cmp::Reverse(pos.get(&p.id).copied()),
        )
    });
    let mut t = Table::new(&["id", "SP", "supporters", "status", "proposer", "title"]);
    for p in &ps {
        t.row(vec![
            p.id.short(),
            format!(
                "{}{}",
                p.active_points,
                if p.prioritized { " *" } else { "" }
            ),
            p.supporters.to_string(),
            status_text(p),
            show::name(&state, &p.proposer),
            show::clip(&p.title, 60),
        ]);
    }
    let text = if t.is_empty() {
        "No proposals yet (`coop proposal open --title T`).\n".into()
    } else {
        format!(
            "{}* prioritized: {} SP or more active\n",
            t.render(),
            state.params.sp_priority_threshold
        )
    };
    let list: Vec<Value> = ps.iter().map(|p| proposal_json(&state, p, false)).collect();
    Ok(Report::new(json!({ "proposals": list }), text))
}

pub(crate) fn sp(app: &App, cmd: SpCommand) -> Result<Report> {
    match cmd {
        SpCommand::Allocate { proposal, points } => {
            let me = app.me()?;
            let mut b = app.backend()?;
            let state = app::view(&mut b, Family::Proposals)?;
            let pid = app::record(Family::Proposals, &state, &proposal)?;
            let id = b.submit(
                Record::Allocate(record::Allocate {
                    proposal: pid,
                    points: coop_model::Points(points),
                }),
                app.now,
            )?;
            let state = app::view(&mut b, Family::Proposals)?;
            let acct = state
                .members
                .get(&me)
                .map(|m| m.sp.clone())
                .unwrap_or_default();
            let title = state
                .proposals
                .get(&pid)
                .map_or(String::new(), |p| p.title.clone());
            Ok(Report::new(
                json!({
                    "id": id,
                    "proposal": pid,
                    "points": points,
                    "budget": acct.budget,
                    "allocated": acct.allocated,
                    "available": acct.available,
                }),
                format!(
                    "Allocated {points} SP to {title:?}: record {id}\nAvailable: {} of {} SP.\n",
                    acct.available, acct.budget
                ),
            ))
        }
        SpCommand::Status { member } => {
            let state = app.view(Family::Proposals)?;
            let who = match member {
                Some(q) => app::member(&state, &q)?,
                None => app.me()?,
            };
            crate::commands::insight::ensure_visible(app, &state, &who)?;
            sp_status(&state, &who)
        }
    }
}

fn sp_status(state: &State, who: &MemberId) -> Result<Report> {
    let m = state
        .members
        .get(who)
        .with_context(|| format!("member {} is not in this ledger yet", who.short()))?;
    let mut t = Table::new(&["proposal", "points", "state", "title"]);
    let mut list = Vec::new();
    for p in state.proposals.values() {
        let points: Points = p
            .allocations
            .iter()
            .filter(|a| a.member == *who)
            .map(|a| a.points)
            .sum();
        if points == Points(0) {
            continue;
        }
        let locked = p.status == ProposalStatus::Open;
        t.row(vec![
            p.id.short(),
            points.to_string(),
            if locked { "locked" } else { "returned" }.into(),
            show::clip(&p.title, 60),
        ]);
        list.push(json!({
            "proposal": p.id,
            "title": p.title,
            "points": points,
            "locked": locked,
        }));
    }
    let text = format!(
        "{} ({})\nbudget     {} SP\nallocated  {} SP\navailable  {} SP\n{}",
        m.display_name,
        who.short(),
        m.sp.budget,
        m.sp.allocated,
        m.sp.available,
        if t.is_empty() {
            "No allocations.\n".into()
        } else {
            t.render()
        }
    );
    Ok(Report::new(
        json!({
            "member": who,
            "budget": m.sp.budget,
            "allocated": m.sp.allocated,
            "available": m.sp.available,
            "allocations": list,
        }),
        text,
    ))
}
