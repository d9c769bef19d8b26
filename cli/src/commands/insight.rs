//! Privacy and transparency: `visibility [show|set]`, `metrics` and `export`, and the check
//! the other commands run before showing another member's balance or history (docs/RULES.md R10, docs/RULES.md R11).

use coop_model::record;
use std::io::Write as _;
use std::path::Path;

use anyhow::{bail, Context, Result};
use coop_model::export::Export;
use coop_model::metrics::BASIS_POINTS;
use coop_model::record::Visibility;
use coop_model::state::{AidRequest, EntryStatus};
use coop_model::{Day, MemberId, Record, State};
use serde_json::{json, Value};

use crate::app::{App, Report};
use crate::cli::{ExportFormat, VisibilityCommand};
use crate::show::{self, Table};

/// The format tag of `coop export --format json`.
pub(crate) const EXPORT_FORMAT: &str = "coop/export/v1";

/// Who is looking: this data dir's member, or nobody in particular without an identity.
pub(crate) fn viewer(app: &App) -> Option<MemberId> {
    app.me().ok()
}

/// Refuses (exit 1, one line) to show `member`'s balance or history to this data dir's
/// member when their visibility setting keeps it from them. Aggregates are always shown.
pub(crate) fn ensure_visible(app: &App, state: &State, member: &MemberId) -> Result<()> {
    if state.can_see(viewer(app).as_ref(), member) {
        return Ok(());
    }
    let to = match state.visibility_of(member) {
        Visibility::Private => "private",
        _ => "to admitted members",
    };
    bail!(
        "{} keeps their balance and history {to} (community totals: `coop metrics`)",
        show::name(state, member)
    )
}

/// A member's name, or `(a member)` when their history is kept from this viewer.
pub(crate) fn name_if_visible(app: &App, state: &State, member: &MemberId) -> String {
    if state.can_see(viewer(app).as_ref(), member) {
        show::name(state, member)
    } else {
        "(a member)".into()
    }
}

/// A request without the ratings and feedback of its confirmations (reputation history)
/// unless this viewer may see both parties.
pub(crate) fn redact_aid(app: &App, state: &State, r: &AidRequest) -> AidRequest {
    let me = viewer(app);
    let mut r = r.clone();
    let parties = std::iter::once(r.requester).chain(r.helper);
    let party = parties.clone().any(|p| Some(p) == me);
    if !party && !parties.clone().all(|p| state.can_see(me.as_ref(), &p)) {
        for c in [&mut r.requester_confirmation, &mut r.helper_confirmation]
            .into_iter()
            .flatten()
        {
            c.rating = None;
            c.feedback = None;
        }
    }
    r
}

pub(crate) fn visibility(app: &App, cmd: Option<VisibilityCommand>) -> Result<Report> {
    match cmd {
        None => show_visibility(app, None),
        Some(VisibilityCommand::Show { member }) => show_visibility(app, member.as_deref()),
        Some(VisibilityCommand::Set { level }) => set_visibility(app, level),
    }
}

fn meaning(level: Visibility) -> &'static str {
    match level {
        Visibility::Public => "anyone, members or not (exports included)",
        Visibility::Members => "admitted members",
        Visibility::Private => "only you",
    }
}

fn show_visibility(app: &App, who: Option<&str>) -> Result<Report> {
    let rows = app.backend()?.visibility()?;
    let me = app.me()?;
    let member = match who {
        Some(q) => coop_model::query::find_member(
            rows.iter().map(|r| (r.member, r.display_name.as_str())),
            q,
        )?,
        None => me,
    };
    let row = rows.iter().find(|r| r.member == member);
    // A member not in the ledger yet has the default.
    let level = row.map_or(Visibility::default(), |r| r.visibility);
    let set_by = row.and_then(|r| r.set_by);
    let name = row.map_or_else(|| member.short(), |r| r.display_name.clone());
    let you_see = row.is_none_or(|r| r.visible_to_you);
    let text = if member == me {
        format!(
            "Your visibility: {level}{}\nWho sees your balance and history: {}.\n\
             Aggregates (totals, metrics) are always shown. Change it with `coop visibility set public|members|private`.\n",
            if set_by.is_none() { " (the default)" } else { "" },
            meaning(level)
        )
    } else {
        format!(
            "{name}: {level}{}\nWho sees {name}'s balance and history: {}.\n",
            if set_by.is_none() {
                " (the default)"
            } else {
                ""
            },
            match level {
                Visibility::Private => "only them",
                other => meaning(other),
            }
        )
    };
    Ok(Report::new(
        json!({
            "member": member,
            "display_name": name,
            "visibility": level,
            "default": set_by.is_none(),
            "set_by": set_by,
            "you_see": you_see,
        }),
        text,
    ))
}

fn set_visibility(app: &App, level: Visibility) -> Result<Report> {
    app.me()?;
    let mut b = app.backend()?;
    let id = b.submit(
        Record::Visibility(record::VisibilitySetting { level }),
        app.now,
    )?;
    Ok(Report::new(
        json!({ "id": id, "visibility": level }),
        format!(
            "Your visibility is now {level}: {} see your balance and history.\nRecord {id}\n",
            meaning(level)
        ),
    ))
}

/// Basis points as a percentage with two decimals: 3333 → `33.33 %`.
fn percent(bp: i64) -> String {
    format!("{}.{:02} %", bp / 100, bp % 100)
}

/// A coefficient in basis points as a decimal: 1000 → `0.1000`.
fn decimal(bp: i64) -> String {
    format!("{}.{:04}", bp / BASIS_POINTS, bp % BASIS_POINTS)
}

fn hours(minutes: i64) -> String {
    let (sign, a) = if minutes < 0 {
        ("-", -minutes)
    } else {
        ("", minutes)
    };
    match a % 60 {
        0 => format!("{sign}{} h", a / 60),
        r => format!("{sign}{} h {r} min", a / 60),
    }
}

pub(crate) fn metrics(app: &App, since: Option<Day>) -> Result<Report> {
    let m = app.backend()?.metrics(app.now, since)?;
    let mut text = format!("Community metrics at {} UTC", show::datetime(m.now));
    if let Some(s) = since {
        text.push_str(&format!(", series from {s}"));
    }
    text.push_str("\n\nSupport Points per proposal\n");
    if m.support.is_empty() {
        text.push_str("  No allocations.\n");
    } else {
        let mut t = Table::new(&[
            "  id",
            "active",
            "allocated",
            "supporters",
            "status",
            "by week (Mondays)",
        ]);
        for p in &m.support {
            let weeks: Vec<String> = p
                .by_week
                .iter()
                .map(|w| format!("{} +{}", w.start, w.points))
                .collect();
            t.row(vec![
                format!("  {}", p.id.short()),
                p.active_points.to_string(),
                p.allocated_points.to_string(),
                p.supporters.to_string(),
                p.status.clone(),
                format!("{:?}: {}", show::clip(&p.title, 40), weeks.join(", ")),
            ]);
        }
        text.push_str(&t.render());
    }
    let a = &m.aid;
    text.push_str(&format!(
        "\nMutual aid      {} requests: {} completed, {} open, {} matched, {} cancelled; completion {}\n",
        a.requests,
        a.completed,
        a.open,
        a.matched,
        a.cancelled,
        a.completion_bp.map_or("-".into(), percent)
    ));
    let t = &m.time;
    text.push_str(&format!(
        "\nTime bank       {} members; Gini {} (balances above the {} floor), {} (hours provided)\n",
        t.members,
        t.balance_gini_bp.map_or("-".into(), decimal),
        hours(t.floor_minutes),
        t.provided_gini_bp.map_or("-".into(), decimal),
    ));
    let mut h = Table::new(&["  balance", "members"]);
    for b in &t.histogram {
        h.row(vec![
            format!("  {} to {}", hours(b.from_minutes), hours(b.to_minutes)),
            format!(
                "{:>3} {}",
                b.members,
                "#".repeat(b.members.min(60) as usize)
            ),
        ]);
    }
    if !h.is_empty() {
        text.push_str(&h.render());
    }
    text.push_str("\nHours exchanged per month (confirmed, by day of service)\n");
    if m.hours_by_month.is_empty() {
        text.push_str("  None yet.\n");
    }
    for mh in &m.hours_by_month {
        text.push_str(&format!(
            "  {}  {} ({} exchange{})\n",
            mh.month,
            hours(mh.minutes),
            mh.exchanges,
            if mh.exchanges == 1 { "" } else { "s" }
        ));
    }
    let p = &m.participation;
    text.push_str(&format!(
        "\nParticipation   {} of {} members active in the last {} days ({})\n",
        p.active,
        p.admitted,
        p.window_days,
        p.share_bp.map_or("-".into(), percent)
    ));
    let sums = |v: &[coop_model::metrics::Money]| -> String {
        if v.is_empty() {
            return "-".into();
        }
        v.iter()
            .map(|x| crate::show::money(x.minor, &x.currency))
            .collect::<Vec<_>>()
            .join(", ")
    };
    if let Some(pm) = &m.purchases {
        text.push_str(&format!(
            "\nPurchases       {} funded round(s); savings {}; spending {} of which local {} ({})\n",
            pm.funded,
            sums(&pm.savings),
            sums(&pm.spending),
            sums(&pm.local_spending),
            pm.local_share_bp.map_or("-".into(), percent)
        ));
    }
    let money = |v: &[coop_model::metrics::Money]| -> String {
        if v.is_empty() {
            return "0.00".into();
        }
        v.iter()
            .map(|x| format!("{} {}", coop_model::record::money(x.minor), x.currency))
            .collect::<Vec<_>>()
            .join(", ")
    };
    if let Some(p) = &m.pools {
        text.push_str(&format!(
            "Pools           {} holding {} (contributed {}, disbursed {})\n",
            p.pools,
            money(&p.balance),
            money(&p.contributed),
            money(&p.disbursed)
        ));
    }
    if let Some(r) = &m.relief {
        text.push_str(&format!(
            "Relief          {} open request(s) for {}; released {}\n",
            r.open_requests,
            money(&r.open_amount),
            money(&r.disbursed)
        ));
    }
    if m.purchases.is_none() && m.pools.is_none() && m.relief.is_none() {
        text.push_str("Purchases, pools, relief: none in this ledger.\n");
    }
    Ok(Report::new(serde_json::to_value(&m)?, text))
}

pub(crate) fn export(
    app: &App,
    format: ExportFormat,
    out: Option<&Path>,
    all: bool,
) -> Result<Report> {
    // The configuration check names a missing `coop init` in one line.
    app.me()?;
    let answer = app.backend()?.export_records(all)?;
    let x = answer.to_export().context("a receipt in the export")?;
    let state = answer.view.into_state();
    let body = match format {
        ExportFormat::Json => {
            let mut s = serde_json::to_string_pretty(&export_json(&state, &x, app.now, all))?;
            s.push('\n');
            s
        }
        ExportFormat::Csv => export_csv(&state, &x)?,
    };
    let summary = json!({
        "format": match format { ExportFormat::Csv => "csv", ExportFormat::Json => "json" },
        "records": x.records.len(),
        "receipts": x.receipts.len(),
        "redacted": x.redacted,
        "include_hidden": all,
    });
    match out {
        Some(path) => {
            write_atomically(path, body.as_bytes())?;
            let mut json = summary;
            json["path"] = json!(path.display().to_string());
            Ok(Report::new(
                json,
                format!(
                    "Wrote {} records ({} hour receipts, {} withheld by their members' visibility) to {}\n",
                    x.records.len(),
                    x.receipts.len(),
                    x.redacted,
                    path.display()
                ),
            ))
        }
        None => {
            let json = match format {
                ExportFormat::Json => serde_json::from_str(&body)?,
                ExportFormat::Csv => {
                    let mut j = summary;
                    j["csv"] = json!(body);
                    j
                }
            };
            Ok(Report::new(json, body))
        }
    }
}

/// A receipt's JSON form as a value (it is compact in CSV cells, nested in JSON).
fn receipt_value(r: &coop_model::Receipt) -> Result<Value> {
    Ok(serde_json::from_str(&r.to_json())?)
}

fn record_value(state: &State, r: &coop_model::export::ExportRecord) -> Result<Value> {
    let mut v = serde_json::to_value(r)?;
    v["member_name"] = json!(r.member.map(|m| show::name(state, &m)));
    Ok(v)
}

fn export_json(state: &State, x: &Export, now: i64, all: bool) -> Value {
    let records: Vec<Value> = x
        .records
        .iter()
        .filter_map(|r| record_value(state, r).ok())
        .collect();
    let receipts: Vec<Value> = x
        .receipts
        .iter()
        .filter_map(|r| receipt_value(r).ok())
        .collect();
    json!({
        "format": EXPORT_FORMAT,
        "community": x.community,
        "community_name": state.name,
        "viewer": x.viewer,
        "exported_at": now,
        "include_hidden": all,
        "redacted": x.redacted,
        "records": records,
        "receipts": receipts,
    })
}

/// The CSV header of `coop export --format csv`.
pub(crate) const CSV_HEADER: [&str; 14] = [
    "position",
    "id",
    "time",
    "kind",
    "status",
    "reason",
    "member",
    "member_name",
    "hidden",
    "redacted",
    "summary",
    "detail",
    "fields",
    "receipt",
];

fn export_csv(state: &State, x: &Export) -> Result<String> {
    let receipts: std::collections::HashMap<_, _> = x
        .receipts
        .iter()
        .filter_map(|r| {
            let id = r.attestation.record_id()?;
            let v = receipt_value(r).ok()?;
            Some((id, v.to_string()))
        })
        .collect();
    let mut out = String::new();
    csv_row(&mut out, CSV_HEADER.iter().map(|h| h.to_string()));
    for r in &x.records {
        let fields = match &r.record {
            Some(rec) => serde_json::to_string(rec)?,
            None => String::new(),
        };
        csv_row(
            &mut out,
            [
                r.position.to_string(),
                r.id.to_string(),
                show::datetime(r.time),
                r.kind.to_string(),
                match r.status {
                    EntryStatus::Counted => "counted".into(),
                    EntryStatus::Refused => "refused".into(),
                },
                r.reason.map(|x| x.to_string()).unwrap_or_default(),
                r.member.map(|m| m.to_string()).unwrap_or_default(),
                r.member.map(|m| show::name(state, &m)).unwrap_or_default(),
                r.hidden.to_string(),
                r.redacted.to_string(),
                r.summary.clone().unwrap_or_default(),
                r.detail.clone().unwrap_or_default(),
                fields,
                receipts.get(&r.id).cloned().unwrap_or_default(),
            ],
        );
    }
    Ok(out)
}

/// Appends one RFC 4180 row: fields holding a comma, a quote, CR or LF are quoted, quotes
/// doubled; rows end with CRLF. A few lines, so no CSV crate for writing only.
pub(crate) fn csv_row(out: &mut String, fields: impl IntoIterator<Item = String>) {
    for (i, f) in fields.into_iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        if f.contains([',', '"', '\r', '\n']) {
            out.push('"');
            out.push_str(&f.replace('"', "\"\""));
            out.push('"');
        } else {
            out.push_str(&f);
        }
    }
    out.push_str("\r\n");
}

/// A temp file beside the target, synced, then renamed over it.
fn write_atomically(path: &Path, bytes: &[u8]) -> Result<()> {
    let parent = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    let mut tmp = tempfile::NamedTempFile::new_in(parent)
        .with_context(|| format!("cannot write in {}", parent.display()))?;
    tmp.write_all(bytes)?;
    tmp.as_file().sync_all()?;
    tmp.persist(path)
        .with_context(|| format!("cannot write {}", path.display()))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn csv_rows_quote_only_what_needs_it() {
        let mut s = String::new();
        csv_row(
            &mut s,
            [
                "plain".to_string(),
                "a,b".into(),
                "say \"hi\"".into(),
                "two\nlines".into(),
                String::new(),
            ],
        );
        assert_eq!(s, "plain,\"a,b\",\"say \"\"hi\"\"\",\"two\nlines\",\r\n");
    }

    #[test]
    fn ratios_format_from_integers() {
        assert_eq!(percent(3333), "33.33 %");
        assert_eq!(percent(10_000), "100.00 %");
        assert_eq!(decimal(1000), "0.1000");
        assert_eq!(decimal(10_000), "1.0000");
        assert_eq!(hours(-600), "-10 h");
        assert_eq!(hours(90), "1 h 30 min");
    }
}
