//! Looking at the ledger itself: `ledger`, `verify`, `params`, `sync export|import`.

use anyhow::{bail, Result};
use std::collections::HashMap;

use coop_model::query::{self, LedgerQuery};
use coop_model::{Kind, MemberId};
use coop_node::NodeError;
use serde_json::{json, Value};

use crate::app::{App, Report};
use crate::cli::SyncCommand;
use crate::show::{self, Table};
use crate::syncfile;

pub(crate) fn ledger(
    app: &App,
    refused: bool,
    kind: Option<Kind>,
    limit: Option<usize>,
    all: bool,
) -> Result<Report> {
    let mut b = app.backend()?;
    // Names for the member column (the rows carry ids).
    let names: HashMap<MemberId, String> = b
        .members()?
        .into_iter()
        .map(|m| (m.id, m.display_name))
        .collect();
    let name = |m: &MemberId| names.get(m).cloned().unwrap_or_else(|| m.short());
    // Page through the ledger, newest first, until the limit or its start.
    let want = limit.unwrap_or(usize::MAX);
    let mut q = LedgerQuery {
        kind,
        refused,
        all,
        limit: Some(want.min(query::MAX_PAGE)),
        before: None,
    };
    let mut rows = Vec::new();
    let totals = loop {
        let page = b.ledger(&q)?;
        rows.extend(page.rows);
        match page.next {
            Some(n) if rows.len() < want => {
                q.before = Some(n);
                q.limit = Some((want - rows.len()).min(query::MAX_PAGE));
            }
            _ => break (page.counted, page.refused),
        }
    };
    let mut t = Table::new(&["#", "id", "time (UTC)", "member", "kind", "status", "what"]);
    let mut list = Vec::new();
    // Another member's history is withheld where their visibility keeps it from you (docs/RULES.md R10):
    // the row shows that the record exists, its kind and status, not whose or what.
    for e in rows {
        let full = !e.redacted;
        let who = match (full, e.member, e.device) {
            (false, _, _) => "(withheld)".into(),
            (true, Some(m), _) => name(&m),
            (true, None, Some(d)) => d.short(),
            (true, None, None) => String::new(),
        };
        let reason = e.reason.map(|r| r.to_string());
        let what = match (full, &reason, &e.detail) {
            (false, Some(r), _) => format!("(another member's history) — {r}"),
            (false, None, _) => "(another member's history)".into(),
            (true, Some(r), Some(d)) => {
                format!("{} — {r}: {d}", e.summary.as_deref().unwrap_or(""))
            }
            (true, Some(r), None) => format!("{} — {r}", e.summary.as_deref().unwrap_or("")),
            _ => e.summary.clone().unwrap_or_default(),
        };
        t.row(vec![
            e.position.to_string(),
            e.id.short(),
            show::datetime(e.time),
            who,
            e.kind.to_string(),
            format!(
                "{}{}",
                crate::commands::membership::enum_str(&e.status),
                if e.hidden { ",hidden" } else { "" }
            ),
            show::clip(&what, 100),
        ]);
        list.push(json!({
            "position": e.position,
            "id": e.id,
            "kind": e.kind,
            "device": e.device,
            "member": e.member,
            "time": e.time,
            "summary": e.summary,
            "status": e.status,
            "reason": e.reason,
            "detail": e.detail,
            "hidden": e.hidden,
            "redacted": e.redacted,
        }));
    }
    let text = if t.is_empty() {
        "No records match.\n".into()
    } else {
        t.render()
    };
    Ok(Report::new(
        json!({ "records": list, "counted": totals.0, "refused": totals.1 }),
        text,
    ))
}

pub(crate) fn verify(app: &App) -> Result<Report> {
    let report = app.backend()?.verify()?;
    let ok = report.ok();
    let mut text = String::new();
    if report.bad_entries.is_empty() {
        text.push_str(&format!(
            "Checked {} stored change(s): every signature and gate rule verifies.\n",
            report.checked
        ));
    } else {
        text.push_str(&format!(
            "FAILED: {} of {} stored change(s) do not verify:\n",
            report.bad_entries.len(),
            report.checked
        ));
        for b in &report.bad_entries {
            let id =
                b.id.map_or("(undecodable)".to_string(), |id| format!("record {id}"));
            text.push_str(&format!("  entry {}: {id}: {}\n", b.position, b.reason));
        }
    }
    if report.digest_from_scratch == report.digest_served {
        text.push_str(&format!(
            "State derived from scratch equals the served state (digest {}).\n",
            report.digest_from_scratch
        ));
    } else {
        text.push_str(&format!(
            "FAILED: state derived from scratch ({}) differs from the served state ({}).\n",
            report.digest_from_scratch, report.digest_served
        ));
    }
    if let Some(damage) = &report.store_damage {
        text.push_str(&format!(
            "FAILED: the store does not hold what its manifest records: {damage}. It refuses writes; run `coop repair` (it keeps the damaged store aside).\n"
        ));
    }
    if report.refused_records > 0 {
        text.push_str(&format!(
            "{} record(s) were refused by the ledger's rules; they stay in the ledger with their reasons (`coop ledger --refused`).\n",
            report.refused_records
        ));
    }
    let mut json = serde_json::to_value(&report)?;
    json["ok"] = json!(ok);
    Ok(Report {
        json,
        text,
        failed: !ok,
    })
}

pub(crate) fn params(app: &App) -> Result<Report> {
    let p = app.backend()?.params()?;
    let mut t = Table::new(&["parameter", "value", "set by"]);
    for (k, v) in p.params.entries() {
        let by = p
            .history
            .iter()
            .rev()
            .find(|c| c.key == k)
            .map_or("default".into(), |c| c.at.short());
        t.row(vec![k.to_string(), v, by]);
    }
    let mut text = t.render();
    // The genesis sets every value; the history is worth showing once governance changed one.
    let genesis = p.history.first().map(|c| c.at);
    let changes: Vec<_> = p.history.iter().filter(|c| Some(c.at) != genesis).collect();
    if changes.is_empty() {
        text.push_str("Every value is as set at the genesis; governance has changed none.\n");
    } else {
        text.push_str("\nChanges since the genesis (oldest first):\n");
        let mut h = Table::new(&["in force from (UTC)", "parameter", "value", "decision"]);
        for c in changes {
            h.row(vec![
                crate::show::datetime(c.time),
                c.key.clone(),
                c.value.clone(),
                c.decision.map_or_else(|| c.at.short(), |d| d.short()),
            ]);
        }
        text.push_str(&h.render());
    }
    let history: Vec<Value> = p
        .history
        .iter()
        .map(|c| {
            json!({ "at": c.at, "decision": c.decision, "time": c.time, "key": c.key, "value": c.value })
        })
        .collect();
    Ok(Report::new(
        json!({ "params": p.params, "history": history }),
        text,
    ))
}

pub(crate) fn sync(app: &App, cmd: SyncCommand) -> Result<Report> {
    let community = app.dir.config()?.community.ok_or(NodeError::NoCommunity)?;
    match cmd {
        SyncCommand::Export { file } => {
            let envelopes = app.backend()?.export()?;
            syncfile::export(&file, &community, &envelopes)?;
            let bytes = std::fs::metadata(&file).map_or(0, |m| m.len());
            Ok(Report::new(
                json!({
                    "file": file.display().to_string(),
                    "community": community,
                    "changes": envelopes.len(),
                    "bytes": bytes,
                }),
                format!(
                    "Wrote {} signed change(s) of community {} to {} ({bytes} bytes).\n",
                    envelopes.len(),
                    community.short(),
                    file.display()
                ),
            ))
        }
        SyncCommand::Import { file } => {
            let (theirs, envelopes) = syncfile::import(&file)?;
            if theirs != community {
                bail!(
                    "{} carries changes of community {}, but this node belongs to {}; nothing was imported",
                    file.display(),
                    theirs.short(),
                    community.short()
                );
            }
            let total = envelopes.len();
            let s = app.backend()?.import(envelopes)?;
            let mut text = format!(
                "Imported {}: {} change(s) read, {} new, {} already held, {} waiting for missing dependencies, {} refused.\n",
                file.display(),
                total,
                s.accepted,
                s.duplicates,
                s.pending,
                s.rejected.len()
            );
            for r in &s.rejected {
                text.push_str(&format!("  refused: {r}\n"));
            }
            let rejected: Vec<Value> = s
                .rejected
                .iter()
                .map(|r| {
                    json!({
                        "id": r.id,
                        "device": r.device,
                        "member": r.member,
                        "reason": r.reason,
                        "detail": r.detail,
                    })
                })
                .collect();
            Ok(Report::new(
                json!({
                    "file": file.display().to_string(),
                    "read": total,
                    "accepted": s.accepted,
                    "duplicates": s.duplicates,
                    "pending": s.pending,
                    "rejected": rejected,
                }),
                text,
            ))
        }
    }
}
