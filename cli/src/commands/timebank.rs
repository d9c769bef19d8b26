//! The time bank: `hours log|pending|confirm|decline` and `balance`.

use std::collections::HashMap;

use anyhow::{Context, Result};
use coop_model::query;
use coop_model::record;
use coop_model::{Day, MemberId, Minutes, Record};
use serde_json::json;

use crate::app::{self, App, Report};
use crate::cli::HoursCommand;
use crate::show::{self, Table};
use coop_model::query::Family;

pub(crate) fn hours(app: &App, cmd: HoursCommand) -> Result<Report> {
    match cmd {
        HoursCommand::Log {
            to,
            minutes,
            service,
            category,
            date,
        } => log(app, &to, minutes, service, category, date),
        HoursCommand::Pending => pending(app),
        HoursCommand::List { member } => list(app, member.as_deref()),
        HoursCommand::Confirm { id } => settle(app, &id, true),
        HoursCommand::Decline { id } => settle(app, &id, false),
    }
}

fn log(
    app: &App,
    to: &str,
    minutes: i64,
    service: String,
    category: String,
    date: Option<Day>,
) -> Result<Report> {
    let mut b = app.backend()?;
    let state = app::view(&mut b, Family::Hours)?;
    let to = app::member(&state, to)?;
    let date = date.unwrap_or_else(|| Day::from_unix(app.now));
    let record = Record::Attest(record::Attest {
        to,
        minutes: coop_model::Minutes(minutes),
        service: service.clone(),
        category: category.clone(),
        date,
    });
    let id = b.submit(record, app.now)?;
    let name = show::name(&state, &to);
    Ok(Report::new(
        json!({
            "id": id,
            "to": to,
            "minutes": minutes,
            "service": service,
            "category": category,
            "date": date,
            "status": "pending",
        }),
        format!(
            "Logged {} of {service:?} for {name} on {date}: attestation {id}\n\
             It counts once {name} confirms it (`coop hours confirm {}`).\n",
            show::minutes(Minutes(minutes)),
            id.short()
        ),
    ))
}

fn pending(app: &App) -> Result<Report> {
    let me = app.me()?;
    let state = app.view(Family::Hours)?;
    let mut t = Table::new(&["id", "from", "minutes", "date", "category", "service"]);
    let mut list = Vec::new();
    for a in state.pending_for(&me) {
        if app::hidden(&state, &a.id) {
            continue;
        }
        t.row(vec![
            a.id.short(),
            show::name(&state, &a.provider),
            show::minutes(a.minutes),
            a.date.to_string(),
            a.category.clone(),
            show::clip(&a.service, 50),
        ]);
        list.push(json!({
            "id": a.id,
            "provider": a.provider,
            "provider_name": show::name(&state, &a.provider),
            "minutes": a.minutes,
            "service": a.service,
            "category": a.category,
            "date": a.date,
        }));
    }
    let text = if t.is_empty() {
        "No attestations await your confirmation.\n".to_string()
    } else {
        format!(
            "{}Confirm with `coop hours confirm ID`, or decline with `coop hours decline ID`.\n",
            t.render()
        )
    };
    Ok(Report::new(json!({ "pending": list }), text))
}

fn settle(app: &App, query: &str, confirm: bool) -> Result<Report> {
    let me = app.me()?;
    let mut b = app.backend()?;
    let state = app::view(&mut b, Family::Hours)?;
    let attestation = app::record(Family::Hours, &state, query)?;
    let record = if confirm {
        Record::Confirm(record::Confirm { attestation })
    } else {
        Record::Decline(record::Decline { attestation })
    };
    let id = b.submit(record, app.now)?;
    let state = app::view(&mut b, Family::Hours)?;
    let a = state
        .attestations
        .get(&attestation)
        .context("the attestation vanished from the derived state")?;
    let balance = state
        .members
        .get(&me)
        .map_or(Minutes(0), |m| m.time.balance);
    let (verb, status) = if confirm {
        ("Confirmed", "confirmed")
    } else {
        ("Declined", "declined")
    };
    Ok(Report::new(
        json!({
            "id": id,
            "attestation": attestation,
            "status": status,
            "minutes": a.minutes,
            "provider": a.provider,
            "balance_minutes": balance,
        }),
        format!(
            "{verb} {} of {:?} from {}: record {id}\nYour balance: {}\n",
            show::minutes(a.minutes),
            a.service,
            show::name(&state, &a.provider),
            show::signed_minutes(balance)
        ),
    ))
}

pub(crate) fn balance(app: &App, who: Option<&str>) -> Result<Report> {
    let mut b = app.backend()?;
    let rows = b.members()?;
    let member = whom(app, &rows, who)?;
    let row = rows
        .iter()
        .find(|m| m.id == member)
        .with_context(|| format!("member {} is not in this ledger yet", member.short()))?;
    let answer = b.balance(&member, app.now)?;
    let Some(bal) = answer.balance else {
        // The query withholds what the member's visibility keeps from us (docs/RULES.md R10).
        let to = match row.visibility {
            coop_model::record::Visibility::Private => "private",
            _ => "to admitted members",
        };
        anyhow::bail!(
            "{} keeps their balance and history {to} (community totals: `coop metrics`)",
            row.display_name
        );
    };
    let warn = b.params()?.params.fairness_warn_percent;
    let text = balance_text(&row.display_name, warn, &member, &bal);
    let mut json = serde_json::to_value(&bal)?;
    json["display_name"] = json!(row.display_name);
    json["warn_percent"] = json!(warn);
    Ok(Report::new(json, text))
}

fn balance_text(name: &str, limit: i64, member: &MemberId, b: &coop_model::Balance) -> String {
    let ratio = match b.ratio_percent {
        Some(p) => format!("received ÷ provided = {p}%"),
        None if b.window_received > Minutes(0) => "received without providing".into(),
        None => "no exchanges yet".into(),
    };
    let verdict = if b.warning {
        format!("WARNING: over the {limit}% mark (a nudge to give back, never a block)")
    } else {
        format!("within the {limit}% mark")
    };
    format!(
        "{name} ({})\n\
         balance        {}\n\
         provided       {}\n\
         received       {}\n\
         fair exchange  last {} days: received {}, provided {}; {ratio}; {verdict}\n",
        member.short(),
        show::signed_minutes(b.minutes),
        show::minutes(b.provided),
        show::minutes(b.received),
        b.window_days,
        show::minutes(b.window_received),
        show::minutes(b.window_provided),
    )
}

/// Names of listed members, for the rows of a query answer.
fn names(rows: &[query::MemberRow]) -> HashMap<MemberId, String> {
    rows.iter()
        .map(|m| (m.id, m.display_name.clone()))
        .collect()
}

fn name_of(names: &HashMap<MemberId, String>, id: &MemberId) -> String {
    names.get(id).cloned().unwrap_or_else(|| id.short())
}

/// Resolves `who` (or this member) among the listed members.
fn whom(app: &App, rows: &[query::MemberRow], who: Option<&str>) -> Result<MemberId> {
    match who {
        Some(q) => Ok(query::find_member(
            rows.iter().map(|m| (m.id, m.display_name.as_str())),
            q,
        )?),
        None => app.me(),
    }
}

fn list(app: &App, who: Option<&str>) -> Result<Report> {
    let mut b = app.backend()?;
    let rows = b.members()?;
    let names = names(&rows);
    let member = whom(app, &rows, who)?;
    let hours = b.hours(&member)?;
    let mut t = Table::new(&["id", "date", "", "with", "minutes", "status", "service"]);
    let mut list = Vec::new();
    for a in hours.iter().rev() {
        let gave = a.provider == member;
        let other = if gave { a.receiver } else { a.provider };
        t.row(vec![
            a.id.short(),
            a.date.to_string(),
            if gave { "to" } else { "from" }.into(),
            name_of(&names, &other),
            show::minutes(a.minutes),
            crate::commands::membership::enum_str(&a.status),
            show::clip(&a.service, 40),
        ]);
        list.push(json!({
            "id": a.id,
            "date": a.date,
            "direction": if gave { "provided" } else { "received" },
            "with": other,
            "with_name": name_of(&names, &other),
            "minutes": a.minutes,
            "status": a.status,
            "service": a.service,
            "category": a.category,
        }));
    }
    let text = if t.is_empty() {
        format!("No attestations for {}.\n", name_of(&names, &member))
    } else {
        t.render()
    };
    Ok(Report::new(
        json!({ "member": member, "attestations": list }),
        text,
    ))
}

pub(crate) fn profile(app: &App, who: &str) -> Result<Report> {
    let mut b = app.backend()?;
    let rows = b.members()?;
    let names = names(&rows);
    let member = query::find_member(rows.iter().map(|m| (m.id, m.display_name.as_str())), who)?;
    let p = b.profile(&member)?;
    let m = &p.member;
    let mut text = format!(
        "{} ({})\n  status       {}\n  roles        {}\n  visibility   {}\n",
        m.display_name,
        m.id.short(),
        crate::commands::membership::enum_str(&m.status),
        if m.roles.is_empty() {
            "-".to_string()
        } else {
            m.roles
                .iter()
                .map(|r| r.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        },
        m.visibility,
    );
    if let Some(t) = p.joined {
        text.push_str(&format!("  joined       {}\n", show::datetime(t)));
    }
    if p.withheld {
        text.push_str("  Their visibility keeps their balance and history from you.\n");
    } else {
        if let Some(t) = &m.time {
            text.push_str(&format!(
                "  hours        provided {}, received {}, balance {}\n",
                show::minutes(t.provided),
                show::minutes(t.received),
                show::signed_minutes(t.balance)
            ));
        }
        if let Some(aid) = &p.aid {
            let ratings = if aid.ratings.is_empty() {
                "no ratings".to_string()
            } else {
                let list: Vec<String> = aid.ratings.iter().map(|r| r.to_string()).collect();
                format!("ratings {}", list.join(" "))
            };
            text.push_str(&format!(
                "  aid          given {}, received {}; {ratings}\n",
                aid.given, aid.received
            ));
        }
        let confirmed = p
            .hours
            .iter()
            .filter(|a| a.status == coop_model::state::AttestationStatus::Confirmed);
        for a in confirmed.rev().take(10) {
            let gave = a.provider == member;
            let other = if gave { a.receiver } else { a.provider };
            text.push_str(&format!(
                "  {} {} {} {}: {}\n",
                a.date,
                show::minutes(a.minutes),
                if gave { "to" } else { "from" },
                name_of(&names, &other),
                show::clip(&a.service, 40)
            ));
        }
    }
    Ok(Report::new(serde_json::to_value(&p)?, text))
}

pub(crate) fn inbox(app: &App) -> Result<Report> {
    let mut b = app.backend()?;
    let rows = b.members()?;
    let names = names(&rows);
    let n = |id: &MemberId| name_of(&names, id);
    let inbox = b.inbox(app.now)?;
    let mut text = String::new();
    for a in &inbox.attestations {
        text.push_str(&format!(
            "confirm hours   {}  {} from {} on {}: {} (`coop hours confirm {}`)\n",
            a.id.short(),
            show::minutes(a.minutes),
            n(&a.provider),
            a.date,
            show::clip(&a.service, 40),
            a.id.short()
        ));
    }
    for o in &inbox.offers {
        text.push_str(&format!(
            "offer           {}  {} offers help on {:?} (`coop aid accept {}`)\n",
            o.offer.id.short(),
            n(&o.offer.helper),
            o.title,
            o.offer.id.short()
        ));
    }
    for a in &inbox.aid_to_confirm {
        text.push_str(&format!(
            "confirm aid     {}  {:?} with {} (`coop aid confirm {}`)\n",
            a.request.short(),
            a.title,
            n(&a.with),
            a.request.short()
        ));
    }
    for d in &inbox.decisions {
        text.push_str(&format!(
            "vote            {}  {:?}, closes {} (`coop decision vote {} yes|no|abstain`)\n",
            d.id.short(),
            d.title,
            show::datetime(d.closes_at),
            d.id.short()
        ));
    }
    for r in &inbox.relief {
        text.push_str(&format!(
            "approve relief  {}  for {} (`coop relief show {}`)\n",
            r.id.short(),
            n(&r.beneficiary),
            r.id.short()
        ));
    }
    for c in &inbox.pledges {
        text.push_str(&format!(
            "confirm pledge  {}  from {} (`coop pool confirm {}`)\n",
            c.id.short(),
            n(&c.contributor),
            c.id.short()
        ));
    }
    if inbox.is_empty() {
        text.push_str("Nothing waits on you.\n");
    }
    Ok(Report::new(serde_json::to_value(&inbox)?, text))
}
