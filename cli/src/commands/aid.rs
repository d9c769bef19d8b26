//! Mutual aid: `aid request|offer|accept|confirm|cancel|list|show`.

use anyhow::{Context, Result};
use coop_model::record;
use coop_model::state::AidRequest;
use coop_model::{Record, RecordId, State};
use serde_json::{json, Value};

use crate::app::{self, App, Report};
use crate::cli::AidCommand;
use crate::show::{self, Table};
use coop_model::query::Family;

pub(crate) fn aid(app: &App, cmd: AidCommand) -> Result<Report> {
    match cmd {
        AidCommand::Request {
            category,
            title,
            description,
            urgency,
            needed_by,
            location,
        } => {
            let mut b = app.backend()?;
            let id = b.submit(
                Record::from(record::AidRequest {
                    category: category.clone(),
                    title: title.clone(),
                    description,
                    urgency,
                    needed_by,
                    location,
                }),
                app.now,
            )?;
            Ok(Report::new(
                json!({ "id": id, "title": title, "category": category, "urgency": urgency, "status": "open" }),
                format!(
                    "Asked for help: {title:?} ({category}, {urgency} urgency): request {id}\n\
                     Neighbours offer with `coop aid offer {}`; see offers with `coop aid show {}`.\n",
                    id.short(),
                    id.short()
                ),
            ))
        }
        AidCommand::Offer {
            request,
            message,
            availability,
        } => {
            let mut b = app.backend()?;
            let state = app::view(&mut b, Family::Aid)?;
            let rid = app::record(Family::Aid, &state, &request)?;
            let id = b.submit(
                Record::AidOffer(record::AidOffer {
                    request: rid,
                    message,
                    availability,
                }),
                app.now,
            )?;
            let (title, requester) = state
                .aid_requests
                .get(&rid)
                .map(|r| (r.title.clone(), show::name(&state, &r.requester)))
                .unwrap_or_default();
            Ok(Report::new(
                json!({ "id": id, "request": rid }),
                format!("Offered help on {title:?}: offer {id}\n{requester} can accept it with `coop aid accept {}`.\n", id.short()),
            ))
        }
        AidCommand::Accept { offer } => {
            let mut b = app.backend()?;
            let state = app::view(&mut b, Family::Aid)?;
            let oid = app::record(Family::Aid, &state, &offer)?;
            let id = b.submit(Record::AidAccept(record::AidAccept { offer: oid }), app.now)?;
            let state = app::view(&mut b, Family::Aid)?;
            let req = request_of_offer(&state, &oid);
            Ok(Report::new(
                json!({ "id": id, "offer": oid, "request": req.map(|r| r.id) }),
                format!(
                    "Accepted offer {} of {}: record {id}\nWhen the help is given, both of you run `coop aid confirm {}`.\n",
                    oid.short(),
                    req.and_then(|r| r.helper).map_or("?".into(), |h| show::name(&state, &h)),
                    req.map_or("REQUEST".into(), |r| r.id.short()),
                ),
            ))
        }
        AidCommand::Confirm {
            request,
            rating,
            feedback,
        } => {
            let mut b = app.backend()?;
            let state = app::view(&mut b, Family::Aid)?;
            let rid = app::record(Family::Aid, &state, &request)?;
            let id = b.submit(
                Record::AidConfirm(record::AidConfirm {
                    request: rid,
                    rating,
                    feedback,
                }),
                app.now,
            )?;
            let state = app::view(&mut b, Family::Aid)?;
            let status = state
                .aid_requests
                .get(&rid)
                .map_or("unknown", |r| r.status.as_str());
            let next = if status == "completed" {
                "Both parties confirmed: the aid is completed and in both histories."
            } else {
                "Waiting for the other party's confirmation."
            };
            Ok(Report::new(
                json!({ "id": id, "request": rid, "status": status }),
                format!("Confirmed aid {}: record {id}\n{next}\n", rid.short()),
            ))
        }
        AidCommand::Cancel { request } => {
            let mut b = app.backend()?;
            let state = app::view(&mut b, Family::Aid)?;
            let rid = app::record(Family::Aid, &state, &request)?;
            let id = b.submit(
                Record::AidCancel(record::AidCancel { request: rid }),
                app.now,
            )?;
            Ok(Report::new(
                json!({ "id": id, "request": rid, "status": "cancelled" }),
                format!("Cancelled request {}: record {id}\n", rid.short()),
            ))
        }
        AidCommand::List { status, all } => list(app, status.as_deref(), all),
        AidCommand::Show { request } => {
            let state = app.view(Family::Aid)?;
            let rid = app::record(Family::Aid, &state, &request)?;
            let r = state
                .aid_requests
                .get(&rid)
                .with_context(|| format!("{} is not a mutual-aid request", rid.short()))?;
            let r = &crate::commands::insight::redact_aid(app, &state, r);
            Ok(Report::new(request_json(&state, r), show_text(&state, r)))
        }
    }
}

fn request_of_offer<'a>(state: &'a State, offer: &RecordId) -> Option<&'a AidRequest> {
    state
        .aid_requests
        .values()
        .find(|r| r.offers.iter().any(|o| o.id == *offer))
}

fn request_json(state: &State, r: &AidRequest) -> Value {
    let conf = |c: &Option<coop_model::state::AidConfirmation>| {
        c.as_ref()
            .map(|c| json!({ "id": c.id, "rating": c.rating, "feedback": c.feedback }))
    };
    json!({
        "id": r.id,
        "requester": r.requester,
        "requester_name": show::name(state, &r.requester),
        "category": r.category,
        "title": r.title,
        "description": r.description,
        "urgency": r.urgency,
        "needed_by": r.needed_by,
        "location": r.location,
        "status": r.status.as_str(),
        "offers": r.offers.iter().map(|o| json!({
            "id": o.id,
            "helper": o.helper,
            "helper_name": show::name(state, &o.helper),
            "message": o.message,
            "availability": o.availability,
            "accepted": r.accepted_offer == Some(o.id),
        })).collect::<Vec<_>>(),
        "accepted_offer": r.accepted_offer,
        "helper": r.helper,
        "requester_confirmation": conf(&r.requester_confirmation),
        "helper_confirmation": conf(&r.helper_confirmation),
        "hidden": app::hidden(state, &r.id),
    })
}

fn show_text(state: &State, r: &AidRequest) -> String {
    let mut s = format!(
        "{:?} ({})\nrequester   {}\ncategory    {}\nurgency     {}\nstatus      {}\n",
        r.title,
        r.id,
        show::name(state, &r.requester),
        r.category,
        r.urgency,
        r.status.as_str()
    );
    if let Some(d) = r.needed_by {
        s.push_str(&format!("needed by   {d}\n"));
    }
    if let Some(l) = &r.location {
        s.push_str(&format!("location    {l}\n"));
    }
    if let Some(h) = r.helper {
        s.push_str(&format!("helper      {}\n", show::name(state, &h)));
    }
    let confirmed = |c: &Option<coop_model::state::AidConfirmation>| {
        c.as_ref().map_or("no".to_string(), |c| match c.rating {
            Some(n) => format!("yes, rated {n}/5"),
            None => "yes".into(),
        })
    };
    if r.accepted_offer.is_some() {
        s.push_str(&format!(
            "confirmed   requester: {}; helper: {}\n",
            confirmed(&r.requester_confirmation),
            confirmed(&r.helper_confirmation)
        ));
    }
    s.push_str(&format!("\n{}\n\n", r.description));
    if r.offers.is_empty() {
        s.push_str("No offers yet.\n");
    } else {
        let mut t = Table::new(&["offer", "helper", "accepted", "availability", "message"]);
        for o in &r.offers {
            t.row(vec![
                o.id.short(),
                show::name(state, &o.helper),
                if r.accepted_offer == Some(o.id) {
                    "yes"
                } else {
                    ""
                }
                .into(),
                show::clip(&o.availability, 30),
                show::clip(&o.message, 50),
            ]);
        }
        s.push_str(&t.render());
    }
    s
}

fn list(app: &App, status: Option<&str>, all: bool) -> Result<Report> {
    let state = app.view(Family::Aid)?;
    let pos = app::positions(&state);
    let mut rs: Vec<&AidRequest> = state
        .aid_requests
        .values()
        .filter(|r| all || !app::hidden(&state, &r.id))
        .filter(|r| status.is_none_or(|s| r.status.as_str() == s))
        .collect();
    rs.sort_by_key(|r| std::cmp::Reverse(pos.get(&r.id).copied()));
    let mut t = Table::new(&[
        "id",
        "status",
        "urgency",
        "category",
        "requester",
        "offers",
        "helper",
        "title",
    ]);
    for r in &rs {
        t.row(vec![
            r.id.short(),
            r.status.as_str().into(),
            r.urgency.to_string(),
            r.category.clone(),
            show::name(&state, &r.requester),
            r.offers.len().to_string(),
            r.helper.map_or("-".into(), |h| show::name(&state, &h)),
            show::clip(&r.title, 50),
        ]);
    }
    let text = if t.is_empty() {
        "No mutual-aid requests.\n".into()
    } else {
        t.render()
    };
    let list: Vec<Value> = rs
        .iter()
        .map(|r| {
            request_json(
                &state,
                &crate::commands::insight::redact_aid(app, &state, r),
            )
        })
        .collect();
    Ok(Report::new(json!({ "requests": list }), text))
}
