//! The time bank: `hours log|pending|confirm|decline` and `balance`.

use anyhow::{Context, Result};
use coop_model::record;
use coop_model::{Day, MemberId, Minutes, Record, State};
use serde_json::json;

use crate::app::{self, App, Report};
use crate::cli::HoursCommand;
use crate::show::{self, Table};

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
    let state = b.state()?;
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
    let state = app.backend()?.state()?;
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
    let state = b.state()?;
    let attestation = app::record(&state, query)?;
    let record = if confirm {
        Record::Confirm(record::Confirm { attestation })
    } else {
        Record::Decline(record::Decline { attestation })
    };
    let id = b.submit(record, app.now)?;
    let state = b.state()?;
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
    let state = app.backend()?.state()?;
    let member = match who {
        Some(q) => app::member(&state, q)?,
        None => app.me()?,
    };
    crate::commands::insight::ensure_visible(app, &state, &member)?;
    let b = state
        .balance(&member, app.now)
        .with_context(|| format!("member {} is not in this ledger yet", member.short()))?;
    let text = balance_text(&state, &member, &b);
    let mut json = serde_json::to_value(&b)?;
    json["display_name"] = json!(show::name(&state, &member));
    json["warn_percent"] = json!(state.params.fairness_warn_percent);
    Ok(Report::new(json, text))
}

fn balance_text(state: &State, member: &MemberId, b: &coop_model::Balance) -> String {
    let limit = state.params.fairness_warn_percent;
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
        "{} ({})\n\
         balance        {}\n\
         provided       {}\n\
         received       {}\n\
         fair exchange  last {} days: received {}, provided {}; {ratio}; {verdict}\n",
        show::name(state, member),
        member.short(),
        show::signed_minutes(b.minutes),
        show::minutes(b.provided),
        show::minutes(b.received),
        b.window_days,
        show::minutes(b.window_received),
        show::minutes(b.window_provided),
    )
}
