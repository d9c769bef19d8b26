//! Every page of the app, rendered on the server with `maud` from `coop_model::query`
//! answers over the state read through the store actor. Records are named by their titles
//! and members by their names; hex ids appear only inside URLs and hidden form fields.
//!
//! Each page is a `<main id="main">` inside one layout (navigation bar, the app's CSS and
//! JS files); the JS file re-fetches the page and swaps `main` when the node reports an
//! event, so pages follow the ledger live.

use std::collections::HashMap;

use axum::http::{StatusCode, Uri};
use axum::response::{Html, IntoResponse, Response};
use coop_model::query::{self, LedgerQuery};
use coop_model::record::{Kind, Role};
use coop_model::state::{AidStatus, AttestationStatus, ProposalStatus};
use coop_model::{Day, MemberId, RecordId, State};
use maud::{html, Markup, PreEscaped, DOCTYPE};

use super::charts::{bar_chart, Bar};
use super::refusal::hours;
use super::session::Session;
use super::{qr, App};
use crate::actor::unix_now;
use crate::api::QUEUE_WAIT;
use crate::datadir::Config;
use crate::local::Status;

/// A refusal to show beside the form it answers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Flash {
    /// The form's id (`_form`).
    pub(crate) form: String,
    /// The sentence.
    pub(crate) sentence: String,
}

/// What a page is rendered from: one read of the node.
struct View<'a> {
    me: MemberId,
    state: State,
    config: Config,
    status: Option<Status>,
    now: i64,
    csrf: &'a str,
    flash: Option<&'a Flash>,
    /// The page's own path and query (where its forms come back to).
    here: String,
    q: HashMap<String, String>,
    /// The node's listen addresses (for the invite code).
    listen: Vec<String>,
    /// Catch-up sync progress per peer (the network page).
    catch_up: Vec<crate::api::events::CatchUp>,
}

impl View<'_> {
    fn name(&self, m: &MemberId) -> String {
        self.state
            .members
            .get(m)
            .map(|x| x.display_name.clone())
            .unwrap_or_else(|| "an unknown member".into())
    }

    fn has_role(&self, r: Role) -> bool {
        self.state
            .members
            .get(&self.me)
            .is_some_and(|m| m.roles.contains(&r))
    }

    /// A form that writes one record; the refusal sentence, if this form was refused, sits
    /// right above its button.
    fn form(&self, id: &str, kind: &str, button: &str, fields: Markup) -> Markup {
        let refused = self.flash.filter(|f| f.form == id);
        html! {
            form.write method="post" action="/write" id=(id) {
                input type="hidden" name="_csrf" value=(self.csrf);
                input type="hidden" name="_back" value=(self.here);
                input type="hidden" name="_form" value=(id);
                input type="hidden" name="kind" value=(kind);
                (fields)
                @if let Some(f) = refused {
                    p.refusal role="alert" { (f.sentence) }
                }
                button type="submit" { (button) }
            }
        }
    }

    /// A one-button form referring to one record.
    fn button(&self, id: &str, kind: &str, field: &str, target: &RecordId, label: &str) -> Markup {
        self.form(
            id,
            kind,
            label,
            html! { input type="hidden" name=(field) value=(target.to_hex()); },
        )
    }
}

/// The word serde writes for a value (`pending`, `picked_up`, ...).
fn word<T: serde::Serialize>(t: &T) -> String {
    match serde_json::to_value(t) {
        Ok(serde_json::Value::String(s)) => s.replace('_', " "),
        Ok(v) => v.to_string(),
        Err(_) => String::new(),
    }
}

fn money(minor: i64, currency: &str) -> String {
    let sign = if minor < 0 { "-" } else { "" };
    let m = minor.unsigned_abs();
    format!("{sign}{}.{:02} {currency}", m / 100, m % 100)
}

fn when(unix: i64) -> String {
    let day = Day::from_unix(unix);
    let s = unix.rem_euclid(86_400);
    format!("{day} {:02}:{:02} UTC", s / 3600, (s % 3600) / 60)
}

const NAV: &[(&str, &str)] = &[
    ("/", "Home"),
    ("/dashboard", "Dashboard"),
    ("/members", "Members"),
    ("/timebank", "Time bank"),
    ("/proposals", "Proposals & SP"),
    ("/aid", "Mutual aid"),
    ("/decisions", "Decisions"),
    ("/purchases", "Purchasing"),
    ("/pools", "Pools & relief"),
    ("/moderation", "Moderation"),
    ("/ledger", "Ledger"),
    ("/settings", "Settings"),
    ("/network", "Network"),
];

pub(super) fn layout(
    title: &str,
    active: &str,
    community: &str,
    moderator: bool,
    main: Markup,
) -> Markup {
    html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                title { (title) " · " (community) }
                link rel="stylesheet" href="/assets/app.css";
                script src="/assets/app.js" defer {}
            }
            body {
                a.skip href="#main" { "Skip to content" }
                header {
                    p.brand { (community) }
                    nav aria-label="Main" {
                        ul {
                            @for (href, label) in NAV {
                                @if *href != "/moderation" || moderator {
                                    li {
                                        @if *href == active {
                                            a href=(href) aria-current="page" { (label) }
                                        } @else {
                                            a href=(href) { (label) }
                                        }
                                    }
                                }
                            }
                        }
                    }
                }
                main id="main" tabindex="-1" { (main) }
                footer { p id="live" aria-live="polite" { "" } }
            }
        }
    }
}

/// The login page (no session).
pub(crate) fn login_page(problem: Option<&str>) -> Html<String> {
    Html(
        html! {
            (DOCTYPE)
            html lang="en" {
                head {
                    meta charset="utf-8";
                    meta name="viewport" content="width=device-width, initial-scale=1";
                    title { "Log in · coop" }
                    link rel="stylesheet" href="/assets/app.css";
                }
                body {
                    main id="main" class="login" {
                        h1 { "Log in to your coop node" }
                        @if let Some(p) = problem {
                            p.refusal role="alert" { (p) }
                        }
                        p { "This app is served by your own node and only to this computer. "
                            "To open it, run " code { "coop ui" } " in a terminal: it prints a "
                            "one-time link and opens it in your browser." }
                    }
                }
            }
        }
        .into_string(),
    )
}

/// Renders the page a URI names (with a refusal beside its form, after a refused write).
pub(crate) async fn render(
    app: &App,
    session: &Session,
    uri: &Uri,
    flash: Option<&Flash>,
) -> Response {
    let path = uri.path().trim_end_matches('/').to_string();
    let network = path == "/network";
    let read = app
        .api
        .store
        .read_within(QUEUE_WAIT, move |n| {
            let status = network.then(|| n.status());
            (n.member(), n.state().clone(), n.config().clone(), status)
        })
        .await;
    let (me, state, config, status) = match read {
        Ok(v) => v,
        Err(e) => {
            return (
                StatusCode::SERVICE_UNAVAILABLE,
                Html(
                    html! { (DOCTYPE) title { "Busy" } p { "The node could not answer: " (crate::error::one_line(&e)) } }
                        .into_string(),
                ),
            )
                .into_response();
        }
    };
    let status = status.map(|s| app.api.snapshot.borrow().fill(s));
    let q: HashMap<String, String> = axum::extract::Query::try_from_uri(uri)
        .map(|q: axum::extract::Query<HashMap<String, String>>| q.0)
        .unwrap_or_default();
    let here = uri
        .path_and_query()
        .map(|p| p.as_str().to_string())
        .unwrap_or_else(|| "/".into());
    let v = View {
        me,
        state,
        config,
        status,
        now: unix_now(),
        csrf: &session.csrf,
        flash,
        here,
        q,
        listen: app.api.snapshot.borrow().listen.clone(),
        catch_up: if network {
            app.api.events.catch_up()
        } else {
            Vec::new()
        },
    };
    let segs: Vec<&str> = path.split('/').filter(|s| !s.is_empty()).collect();
    let (title, active, main) = match segs.as_slice() {
        [] => ("Home", "/", home(&v)),
        ["dashboard"] => ("Dashboard", "/dashboard", dashboard(&v)),
        ["members"] => ("Members", "/members", members(&v)),
        ["members", id] => match MemberId::from_hex(id) {
            Ok(m) if v.state.members.contains_key(&m) => ("Member", "/members", profile(&v, &m)),
            _ => return not_found(&v),
        },
        ["timebank"] => ("Time bank", "/timebank", timebank(&v)),
        ["proposals"] => ("Proposals & SP", "/proposals", proposals(&v)),
        ["aid"] => ("Mutual aid", "/aid", aid(&v)),
        ["decisions"] => ("Decisions", "/decisions", decisions(&v)),
        ["purchases"] => ("Purchasing", "/purchases", purchases(&v)),
        ["pools"] => ("Pools & relief", "/pools", pools(&v)),
        ["moderation"] => ("Moderation", "/moderation", moderation(&v)),
        ["ledger"] => ("Ledger", "/ledger", ledger(&v)),
        ["settings"] => ("Settings", "/settings", settings(&v)),
        ["network"] => ("Network", "/network", network_page(&v)),
        _ => return not_found(&v),
    };
    // A refused form the page no longer shows (the state moved on, or it was posted by
    // hand): its sentence goes at the top, so a refusal is never silent.
    let main = match flash {
        Some(f) if !main.0.contains(&format!("id=\"{}\"", f.form)) => html! {
            p.refusal role="alert" { (f.sentence) }
            (main)
        },
        _ => main,
    };
    let community = v.state.name.clone();
    let moderator = v.has_role(Role::Moderator);
    Html(layout(title, active, &community, moderator, main).into_string()).into_response()
}

fn not_found(v: &View<'_>) -> Response {
    let main = html! { h1 { "Not found" } p { "There is no such page here." } };
    (
        StatusCode::NOT_FOUND,
        Html(layout("Not found", "", &v.state.name, false, main).into_string()),
    )
        .into_response()
}

// ---------------------------------------------------------------- home

fn home(v: &View<'_>) -> Markup {
    let bal = query::balance(&v.state, Some(&v.me), &v.me, v.now);
    let inbox = query::inbox(&v.state, &v.me, v.now);
    let b = bal.as_ref().and_then(|b| b.balance.clone());
    let sp = bal.as_ref().and_then(|b| b.sp.clone());
    html! {
        h1 { "Hello, " (v.name(&v.me)) }
        section.cards aria-label="My accounts" {
            div.card #my-balance {
                h2 { "Time balance" }
                @if let Some(b) = &b {
                    p.big data-minutes=(b.minutes.0) { (hours(b.minutes.0)) }
                    p.small { "Provided " (hours(b.provided.0)) ", received " (hours(b.received.0)) }
                }
            }
            div.card #my-sp {
                h2 { "Support Points left" }
                @if let Some(sp) = &sp {
                    p.big data-sp=(sp.available.0) { (sp.available.0) " SP" }
                    p.small { (sp.allocated.0) " of " (sp.budget.0) " on proposals" }
                }
            }
            @if let Some(b) = &b {
                div.card #fairness {
                    h2 { "Fair exchange" }
                    (gauge(b.window_received.0, b.window_provided.0))
                    p.small { "Last " (b.window_days) " days: received " (hours(b.window_received.0))
                        ", provided " (hours(b.window_provided.0)) }
                    @if b.warning {
                        p.warning role="status" { "You have received more than twice what you provided lately. "
                            "Offering some help keeps the time bank fair." }
                    }
                }
            }
        }
        section #inbox aria-labelledby="inbox-title" {
            h2 #inbox-title { "Waiting on me" }
            @if inbox.is_empty() {
                p.empty { "Nothing waits on you." }
            }
            @for a in &inbox.attestations {
                article.item.attestation {
                    p { strong { (v.name(&a.provider)) } " says they gave you " strong { (hours(a.minutes.0)) }
                        " of " em { (a.service) } " (" (a.category) ") on " (a.date) "." }
                    div.actions {
                        (v.button(&format!("confirm-{}", a.id.to_hex()), "confirm", "attestation", &a.id, "Confirm"))
                        (v.button(&format!("decline-{}", a.id.to_hex()), "decline", "attestation", &a.id, "Decline"))
                    }
                }
            }
            @for o in &inbox.offers {
                article.item {
                    p { strong { (v.name(&o.offer.helper)) } " offers to help with " em { (o.title) } ": " (o.offer.message)
                        " (" (o.offer.availability) ")" }
                    (v.button(&format!("accept-{}", o.offer.id.to_hex()), "aid_accept", "offer", &o.offer.id, "Accept offer"))
                }
            }
            @for a in &inbox.aid_to_confirm {
                article.item {
                    p { "Did " em { (a.title) } " happen with " strong { (v.name(&a.with)) } "?" }
                    (v.form(&format!("aidconfirm-{}", a.request.to_hex()), "aid_confirm", "Confirm aid", html! {
                        input type="hidden" name="request" value=(a.request.to_hex());
                        label { "Rating (1–5, optional) " input type="number" name="on:rating" min="1" max="5"; }
                        label { "Feedback (optional) " input type="text" name="o:feedback" maxlength="500"; }
                    }))
                }
            }
            @for d in &inbox.decisions {
                article.item {
                    p { "Vote on " em { (d.title) } " (closes " (when(d.closes_at)) ")" }
                    (vote_form(v, &d.id))
                }
            }
            @for r in &inbox.relief {
                article.item {
                    p { strong { (v.name(&r.beneficiary)) } " asks " (pool_name(v, &r.fund)) " for relief of " (pool_money(v, &r.fund, r.amount)) ", " (word(&r.urgency)) " urgency." }
                    (v.button(&format!("relief-{}", r.id.to_hex()), "relief_approve", "request", &r.id, "Approve relief"))
                }
            }
            @for c in &inbox.pledges {
                article.item {
                    p { strong { (v.name(&c.contributor)) } " pledged " (pool_money(v, &c.pool, c.amount)) " to " (pool_name(v, &c.pool)) "." }
                    (v.button(&format!("pledge-{}", c.id.to_hex()), "contribution_confirm", "contribution", &c.id, "Confirm pledge"))
                }
            }
        }
    }
}

/// The fair-exchange gauge: received against twice what was provided (the 2:1 line).
fn gauge(received: i64, provided: i64) -> Markup {
    let limit = (2 * provided).max(1);
    let full = 300i64;
    let fill = (received.min(2 * limit) * full / (2 * limit)).clamp(0, full);
    let line = full / 2;
    html! {
        svg.gauge role="img" viewBox="0 0 320 40" width="100%" aria-label={"Received " (hours(received)) " against twice provided " (hours(2 * provided))} {
            rect.track x="10" y="10" width=(full) height="16" {}
            rect class=(if received > 2 * provided { "fill over" } else { "fill" }) x="10" y="10" width=(fill) height="16" {}
            line.limit x1=(10 + line) x2=(10 + line) y1="4" y2="32" {}
            text.value x=(14 + line) y="38" { "2:1" }
        }
    }
}

fn vote_form(v: &View<'_>, d: &RecordId) -> Markup {
    v.form(
        &format!("vote-{}", d.to_hex()),
        "vote",
        "Vote",
        html! {
            input type="hidden" name="decision" value=(d.to_hex());
            fieldset {
                legend { "Your vote" }
                label { input type="radio" name="choice" value="yes" required; " Yes" }
                label { input type="radio" name="choice" value="no"; " No" }
                label { input type="radio" name="choice" value="abstain"; " Abstain" }
            }
        },
    )
}

fn pool_name(v: &View<'_>, pool: &RecordId) -> String {
    query::pools(&v.state)
        .pools
        .into_iter()
        .find(|p| &p.id == pool)
        .map(|p| p.name)
        .unwrap_or_else(|| "a pool".into())
}

fn pool_money(v: &View<'_>, pool: &RecordId, amount: i64) -> String {
    let cur = query::pools(&v.state)
        .pools
        .into_iter()
        .find(|p| &p.id == pool)
        .map(|p| p.currency)
        .unwrap_or_default();
    money(amount, &cur)
}

// ---------------------------------------------------------------- dashboard

fn dashboard(v: &View<'_>) -> Markup {
    let m = query::metrics(&v.state, v.now, None);
    let months: Vec<Bar> = m
        .hours_by_month
        .iter()
        .map(|h| {
            Bar::new(
                &h.month,
                h.minutes,
                format!("{} ({} exchanges)", hours(h.minutes), h.exchanges),
            )
        })
        .collect();
    let dist: Vec<Bar> = m
        .time
        .histogram
        .iter()
        .map(|b| {
            Bar::new(
                format!("{} to {}", hours(b.from_minutes), hours(b.to_minutes)),
                b.members,
                format!("{} members", b.members),
            )
        })
        .collect();
    let props = query::proposals(&v.state);
    let sp: Vec<Bar> = m
        .support
        .iter()
        .map(|s| {
            let mut b = Bar::new(
                &s.title,
                s.active_points,
                format!("{} SP now, {} supporters", s.active_points, s.supporters),
            );
            b.marked = props.iter().any(|p| p.id == s.id && p.prioritized);
            b
        })
        .collect();
    let aid = vec![
        Bar::new("Requests", m.aid.requests, m.aid.requests.to_string()),
        Bar::new("Completed", m.aid.completed, m.aid.completed.to_string()),
        Bar::new("Matched", m.aid.matched, m.aid.matched.to_string()),
        Bar::new("Open", m.aid.open, m.aid.open.to_string()),
        Bar::new("Cancelled", m.aid.cancelled, m.aid.cancelled.to_string()),
    ];
    let mut flows = Vec::new();
    if let Some(p) = &m.pools {
        for (what, list) in [
            ("Contributed", &p.contributed),
            ("Disbursed", &p.disbursed),
            ("Pool balance", &p.balance),
        ] {
            for x in list {
                flows.push(Bar::new(
                    format!("{what} ({})", x.currency),
                    x.minor,
                    money(x.minor, &x.currency),
                ));
            }
        }
    }
    if let Some(r) = &m.relief {
        for x in &r.disbursed {
            flows.push(Bar::new(
                format!("Relief disbursed ({})", x.currency),
                x.minor,
                money(x.minor, &x.currency),
            ));
        }
        for x in &r.open_amount {
            flows.push(Bar::new(
                format!("Relief asked, open ({})", x.currency),
                x.minor,
                money(x.minor, &x.currency),
            ));
        }
    }
    let mut buying = Vec::new();
    if let Some(p) = &m.purchases {
        for (what, list) in [
            ("Savings", &p.savings),
            ("Spending", &p.spending),
            ("Local spending", &p.local_spending),
        ] {
            for x in list {
                buying.push(Bar::new(
                    format!("{what} ({})", x.currency),
                    x.minor,
                    money(x.minor, &x.currency),
                ));
            }
        }
    }
    let part = vec![
        Bar::new(
            "Admitted members",
            m.participation.admitted,
            m.participation.admitted.to_string(),
        ),
        Bar::new(
            format!("Active in {} days", m.participation.window_days),
            m.participation.active,
            m.participation.active.to_string(),
        ),
    ];
    let bp = |x: Option<i64>| {
        x.map(|b| format!("{}.{:02} %", b / 100, b % 100))
            .unwrap_or_else(|| "–".into())
    };
    html! {
        h1 { "Dashboard" }
        p { "Everything here is computed by your node from the ledger it holds; every member's node shows the same." }
        dl.facts {
            dt { "Aid completion" } dd { (bp(m.aid.completion_bp)) }
            dt { "Participation" } dd { (bp(m.participation.share_bp)) }
            dt { "Balance inequality (Gini)" } dd { (bp(m.time.balance_gini_bp)) }
            @if let Some(p) = &m.purchases {
                dt { "Local share of purchase spending" } dd { (bp(p.local_share_bp)) }
            }
        }
        (bar_chart("chart-hours", "Hours exchanged per month", "hours", &months))
        (bar_chart("chart-balances", "Time-balance distribution", "members", &dist))
        (bar_chart("chart-sp", "Support Points per proposal (prioritized in accent)", "SP", &sp))
        (bar_chart("chart-aid", "Mutual aid", "requests", &aid))
        (bar_chart("chart-flows", "Pools and relief flows", "amount", &flows))
        (bar_chart("chart-purchases", "Purchase savings and local value", "amount", &buying))
        (bar_chart("chart-participation", "Participation", "members", &part))
    }
}

// ---------------------------------------------------------------- members

fn members(v: &View<'_>) -> Markup {
    let needle =
        v.q.get("q")
            .map(|s| s.trim().to_lowercase())
            .unwrap_or_default();
    let rows: Vec<_> = query::members(&v.state, Some(&v.me))
        .into_iter()
        .filter(|m| needle.is_empty() || m.display_name.to_lowercase().contains(&needle))
        .collect();
    html! {
        h1 { "Members" }
        form.search method="get" action="/members" role="search" {
            label { "Search by name " input type="search" name="q" value=(needle); }
            button type="submit" { "Search" }
        }
        table {
            thead { tr { th { "Name" } th { "Status" } th { "Roles" } th { "Balance" } th { "SP on proposals" } } }
            tbody {
                @for m in &rows {
                    tr {
                        td { a href={"/members/" (m.id.to_hex())} { (m.display_name) } }
                        td { (word(&m.status)) }
                        td { (m.roles.iter().map(word).collect::<Vec<_>>().join(", ")) }
                        td { @if let Some(t) = &m.time { (hours(t.balance.0)) } @else { span.withheld { "private" } } }
                        td { @if let Some(s) = &m.sp { (s.allocated.0) } @else { span.withheld { "private" } } }
                    }
                }
            }
        }
    }
}

fn profile(v: &View<'_>, id: &MemberId) -> Markup {
    let Some(p) = query::profile(&v.state, Some(&v.me), id) else {
        return html! { p { "No such member." } };
    };
    html! {
        h1 { (p.member.display_name) }
        @if *id != v.me { (report_form(v, "member", &id.to_hex())) }
        dl.facts {
            dt { "Status" } dd { (word(&p.member.status)) }
            dt { "Roles" } dd { @if p.member.roles.is_empty() { "none" } @else { (p.member.roles.iter().map(word).collect::<Vec<_>>().join(", ")) } }
            dt { "Joined" } dd { (p.joined.map(when).unwrap_or_else(|| "–".into())) }
            dt { "Vouched for by" } dd { (p.member.vouched_by.iter().map(|m| v.name(m)).collect::<Vec<_>>().join(", ")) }
            dt { "Visibility" } dd { (word(&p.member.visibility)) }
        }
        @if p.withheld {
            p.withheld { (p.member.display_name) " keeps their history private." }
        } @else {
            @if let Some(t) = &p.member.time {
                dl.facts {
                    dt { "Hours provided" } dd { (hours(t.provided.0)) }
                    dt { "Hours received" } dd { (hours(t.received.0)) }
                    dt { "Balance" } dd { (hours(t.balance.0)) }
                }
            }
            @if let Some(a) = &p.aid {
                h2 { "Mutual aid" }
                p { "Given " (a.given) ", received " (a.received) "." }
                @if !a.ratings.is_empty() {
                    p { "Ratings: " (a.ratings.iter().map(|r| format!("{r}/5")).collect::<Vec<_>>().join(", ")) }
                }
                @let feedback: Vec<_> = query::aid(&v.state).into_iter().filter(|r| a.completed.contains(&r.id)).collect();
                @if !feedback.is_empty() {
                    ul {
                        @for r in &feedback {
                            li { em { (r.title) } @for c in [&r.requester_confirmation, &r.helper_confirmation].into_iter().flatten() {
                                @if let Some(f) = &c.feedback { " — “" (f) "”" } } }
                        }
                    }
                }
            }
            h2 { "Hours" }
            (hours_table(v, &p.hours))
        }
    }
}

fn hours_table(v: &View<'_>, rows: &[coop_model::state::Attestation]) -> Markup {
    html! {
        @if rows.is_empty() { p.empty { "No hours yet." } } @else {
            table {
                thead { tr { th { "Day" } th { "From" } th { "To" } th { "Service" } th { "Time" } th { "Status" } } }
                tbody {
                    @for a in rows {
                        tr {
                            td { (a.date) } td { (v.name(&a.provider)) } td { (v.name(&a.receiver)) }
                            td { (a.service) " (" (a.category) ")" } td { (hours(a.minutes.0)) } td { (word(&a.status)) }
                        }
                    }
                }
            }
        }
    }
}

fn member_options(v: &View<'_>) -> Markup {
    html! {
        @for m in query::members(&v.state, Some(&v.me)) {
            @if m.id != v.me {
                option value=(m.id.to_hex()) { (m.display_name) }
            }
        }
    }
}

// ---------------------------------------------------------------- time bank

fn timebank(v: &View<'_>) -> Markup {
    let mine = query::hours(&v.state, &v.me);
    let today = Day::from_unix(v.now);
    html! {
        h1 { "Time bank" }
        section aria-labelledby="log-title" {
            h2 #log-title { "Log hours you gave" }
            (v.form("log-hours", "attest", "Log hours", html! {
                label { "Who received it " select name="to" required { (member_options(v)) } }
                label { "Minutes " input type="number" name="n:minutes" min="1" max="1440" required; }
                label { "What you did " input type="text" name="service" maxlength="200" required; }
                label { "Category " input type="text" name="category" maxlength="32" value="general" required; }
                label { "Day " input type="date" name="date" value=(today) required; }
            }))
        }
        section aria-labelledby="mine-title" {
            h2 #mine-title { "My hours" }
            (hours_table(v, &mine))
        }
        @let pending: Vec<_> = mine.iter().filter(|a| a.status == AttestationStatus::Pending && a.provider == v.me).collect();
        @if !pending.is_empty() {
            p.small { (pending.len()) " waiting for the receiver to confirm." }
        }
    }
}

// ---------------------------------------------------------------- proposals

fn proposals(v: &View<'_>) -> Markup {
    let list = query::proposals(&v.state);
    let cap = v.state.params.sp_max_per_proposal;
    html! {
        h1 { "Proposals & Support Points" }
        p { "You may put up to " (cap) " SP on one proposal. A proposal with "
            (v.state.params.sp_priority_threshold) " SP or more is prioritized." }
        section {
            h2 { "Propose something" }
            (v.form("new-proposal", "proposal", "Propose", html! {
                label { "Title " input type="text" name="title" minlength="3" maxlength="100" required; }
                label { "Description " textarea name="description" maxlength="2000" {} }
            }))
        }
        @for p in &list {
            article.item.proposal data-title=(p.title) {
                h2 { (p.title) @if p.prioritized { " " span.badge { "prioritized" } } }
                p { (p.description) }
                p.small { "By " (v.name(&p.proposer)) " · " (p.active_points.0) " SP now from " (p.supporters) " supporters · "
                    (match p.status { ProposalStatus::Open => "open".to_string(), ProposalStatus::Closed(o) => format!("closed: {}", word(&o)) }) }
                @if p.proposer != v.me { (report_form(v, "record", &p.id.to_hex())) }
                @if p.status == ProposalStatus::Open {
                    @let mine: i64 = p.allocations.iter().filter(|a| a.member == v.me).map(|a| a.points.0).sum();
                    p.small { "You have " (mine) " SP on it." }
                    (v.form(&format!("allocate-{}", p.id.to_hex()), "allocate", "Support", html! {
                        input type="hidden" name="proposal" value=(p.id.to_hex());
                        label { "SP to add " input type="number" name="n:points" min="1" required; }
                    }))
                    @if p.proposer == v.me {
                        (v.form(&format!("close-{}", p.id.to_hex()), "close", "Close proposal", html! {
                            input type="hidden" name="proposal" value=(p.id.to_hex());
                            label { "Outcome " select name="outcome" {
                                option value="delivered" { "delivered" } option value="cancelled" { "cancelled" }
                                option value="rejected" { "rejected" } option value="expired" { "expired" } } }
                        }))
                    }
                }
            }
        }
    }
}

// ---------------------------------------------------------------- aid

fn aid(v: &View<'_>) -> Markup {
    let list = query::aid(&v.state);
    html! {
        h1 { "Mutual aid" }
        section {
            h2 { "Ask for help" }
            (v.form("new-aid", "aid_request", "Ask", html! {
                label { "Category " select name="category" required {
                    @for c in &v.state.params.aid_categories { option value=(c) { (c) } } } }
                label { "Title " input type="text" name="title" minlength="3" maxlength="100" required; }
                label { "What you need (10 characters or more) " textarea name="description" minlength="10" maxlength="500" required {} }
                label { "Urgency " select name="urgency" { option value="low" { "low" } option value="medium" selected { "medium" } option value="high" { "high" } } }
                label { "Needed by (optional) " input type="date" name="o:needed_by"; }
                label { "Where, roughly (optional) " input type="text" name="o:location" maxlength="100"; }
            }))
        }
        @for r in &list {
            article.item {
                h2 { (r.title) " " span.badge { (word(&r.status)) } }
                p { (r.description) }
                p.small { (v.name(&r.requester)) " · " (r.category) " · " (word(&r.urgency)) " urgency"
                    @if let Some(d) = r.needed_by { " · by " (d) }
                    @if let Some(h) = &r.helper { " · helped by " (v.name(h)) } }
                @if r.requester != v.me { (report_form(v, "record", &r.id.to_hex())) }
                @if r.status == AidStatus::Open && r.requester != v.me {
                    (v.form(&format!("offer-{}", r.id.to_hex()), "aid_offer", "Offer help", html! {
                        input type="hidden" name="request" value=(r.id.to_hex());
                        label { "Message (10 characters or more) " input type="text" name="message" minlength="10" maxlength="500" required; }
                        label { "When you can " input type="text" name="availability" maxlength="200" required; }
                    }))
                }
                @if r.requester == v.me && matches!(r.status, AidStatus::Open | AidStatus::Matched) {
                    @for o in &r.offers {
                        @if r.status == AidStatus::Open {
                            p { (v.name(&o.helper)) ": " (o.message) }
                            (v.button(&format!("accept-{}", o.id.to_hex()), "aid_accept", "offer", &o.id, "Accept offer"))
                        }
                    }
                    (v.button(&format!("cancel-{}", r.id.to_hex()), "aid_cancel", "request", &r.id, "Cancel request"))
                }
            }
        }
    }
}

// ---------------------------------------------------------------- decisions

/// A week after `now`, as a `datetime-local` value in UTC (a form's default deadline).
fn week_from(now: i64) -> String {
    let week = now + 7 * 86_400;
    let s = week.rem_euclid(86_400);
    format!(
        "{}T{:02}:{:02}",
        Day::from_unix(week),
        s / 3600,
        (s % 3600) / 60
    )
}

fn decisions(v: &View<'_>) -> Markup {
    let list = query::decisions(&v.state);
    let default_close = week_from(v.now);
    html! {
        h1 { "Decisions" }
        p { "One member, one vote. A question passes when the vote closes with more yes than no; "
            "a change of a parameter, a role, a removal or a pool allocation then takes effect by itself." }
        (decision_forms(v, &default_close))
        @for d in &list {
            article.item {
                h2 { (d.title) " " span.badge { (word(&d.status)) } }
                p { (d.description) }
                p.small { "By " (v.name(&d.proposer)) " · " (word(&d.action)) " · closes " (when(d.closes_at)) " · " (d.votes.len()) " votes" }
                @if d.closes_at > v.now && !d.votes.iter().any(|x| x.member == v.me) && d.tally.is_none() {
                    (vote_form(v, &d.id))
                }
                @if d.closes_at <= v.now && d.tally.is_none() {
                    (v.button(&format!("tally-{}", d.id.to_hex()), "tally", "decision", &d.id, "Close the vote (tally)"))
                }
            }
        }
    }
}

/// The fields every decision form shares: title, description, when the vote closes.
fn decision_common(default_close: &str, title: &str) -> Markup {
    html! {
        label { "Title " input type="text" name="title" minlength="3" maxlength="100" value=(title) required; }
        label { "Description " textarea name="description" maxlength="2000" {} }
        label { "Voting closes (UTC) " input type="datetime-local" name="t:closes_at" value=(default_close) required; }
    }
}

/// One form per decision action: a general question, a parameter change (keys listed with
/// their current values), a role granted or revoked, a removal, a pool allocation.
fn decision_forms(v: &View<'_>, default_close: &str) -> Markup {
    let params = v.state.params.entries();
    let pending_apps: Vec<_> = query::pools(&v.state)
        .applications
        .into_iter()
        .filter(|a| a.status == coop_model::state::ApplicationStatus::Pending)
        .collect();
    let everyone = query::members(&v.state, Some(&v.me));
    let admitted: Vec<_> = everyone
        .iter()
        .filter(|m| m.status == coop_model::state::MemberStatus::Admitted)
        .collect();
    html! {
        section #decide {
            h2 { "Put something to the vote" }
            details open[v.flash.is_some_and(|f| f.form == "new-decision")] {
                summary { "A general question" }
                (v.form("new-decision", "decision", "Put to the vote", html! {
                    input type="hidden" name="a:action" value="general";
                    (decision_common(default_close, ""))
                }))
            }
            details open[v.flash.is_some_and(|f| f.form == "decide-param")] {
                summary { "Change a community parameter" }
                table.params {
                    caption { "Parameters now" }
                    thead { tr { th { "Parameter" } th { "Value" } } }
                    tbody { @for (k, val) in &params { tr { td { code { (k) } } td { (val) } } } }
                }
                (v.form("decide-param", "decision", "Put the change to the vote", html! {
                    input type="hidden" name="a:action" value="param";
                    label { "Parameter " select name="a:key" required {
                        @for (k, val) in &params { option value=(k) { (k) " (now " (val) ")" } } } }
                    label { "New value " input type="text" name="a:value" maxlength="4096" required; }
                    (decision_common(default_close, "Change a parameter"))
                }))
            }
            details open[v.flash.is_some_and(|f| f.form == "decide-role")] {
                summary { "Grant or revoke a role" }
                (v.form("decide-role", "decision", "Put the role to the vote", html! {
                    label { "Grant or revoke " select name="a:action" {
                        option value="role_grant" { "grant" } option value="role_revoke" { "revoke" } } }
                    label { "Member " select name="a:member" required {
                        @for m in &admitted { option value=(m.id.to_hex()) { (m.display_name)
                            @if !m.roles.is_empty() { " (" (m.roles.iter().map(word).collect::<Vec<_>>().join(", ")) ")" } } } } }
                    label { "Role " select name="a:role" required {
                        @for r in Role::GRANTABLE { option value=(r.as_str()) { (r.as_str()) } } } }
                    (decision_common(default_close, "A role"))
                }))
            }
            details open[v.flash.is_some_and(|f| f.form == "decide-removal")] {
                summary { "Remove a member" }
                (v.form("decide-removal", "decision", "Put the removal to the vote", html! {
                    input type="hidden" name="a:action" value="removal";
                    label { "Member " select name="a:member" required {
                        @for m in &admitted { @if m.id != v.me { option value=(m.id.to_hex()) { (m.display_name) } } } } }
                    (decision_common(default_close, "Remove a member"))
                }))
            }
            details open[v.flash.is_some_and(|f| f.form == "decide-allocation")] {
                summary { "Allocate a pool's money to an application" }
                @if pending_apps.is_empty() {
                    p.empty { "No application waits for an allocation." }
                } @else {
                    (v.form("decide-allocation", "decision", "Put the allocation to the vote", html! {
                        input type="hidden" name="a:action" value="pool_allocation";
                        label { "Application " select name="a:application" required {
                            @for a in &pending_apps { option value=(a.id.to_hex()) {
                                (a.title) " by " (v.name(&a.applicant)) ": " (pool_money(v, &a.pool, a.amount)) " from " (pool_name(v, &a.pool)) } } } }
                        (decision_common(default_close, "Fund an application"))
                    }))
                }
            }
        }
    }
}

// ---------------------------------------------------------------- purchasing

fn purchases(v: &View<'_>) -> Markup {
    let list = query::purchases(&v.state);
    let default_deadline = week_from(v.now);
    html! {
        h1 { "Collective purchasing" }
        section {
            h2 { "Propose a purchase" }
            (v.form("new-purchase", "purchase", "Propose purchase", html! {
                label { "What " input type="text" name="item" minlength="3" maxlength="100" required; }
                label { "Unit " input type="text" name="unit" maxlength="16" value="kg" required; }
                label { "Quantity that funds it " input type="number" name="n:target_quantity" min="1" required; }
                label { "Retail price per unit " input type="text" inputmode="decimal" name="m:reference_price" required; }
                label { "Currency " input type="text" name="currency" value="EUR" pattern="[A-Z]{3}" required; }
                label { "Participants needed " input type="number" name="n:min_participants" min="1" value="1" required; }
                label { "Deadline (UTC) " input type="datetime-local" name="t:deadline" value=(default_deadline) required; }
                label { "Repeats " select name="recurrence" { option value="none" { "once" } option value="monthly" { "monthly" } } }
            }))
        }
        @for p in &list {
            @let pu = &p.purchase;
            article.item.purchase data-item=(pu.item) {
                h2 { (pu.item) }
                p.small { "Coordinated by " (v.name(&pu.coordinator)) " · " (pu.target_quantity) " " (pu.unit) " to fund · retail "
                    (money(pu.reference_price, &pu.currency)) " per " (pu.unit) " · savings so far " (money(pu.total_savings, &pu.currency)) }
                @if p.rounds.is_empty() && pu.deadline > v.now {
                    // No record names a round yet: round one is open until the deadline.
                    section.round data-round="0" data-state="open" {
                        h3 { "Round 1 — open" }
                        p.small { "Nobody has committed yet · deadline " (when(pu.deadline)) }
                        (open_round_forms(v, &pu.id.to_hex(), 0))
                    }
                }
                @for r in &p.rounds {
                    @let rd = &r.round;
                    @let hexid = pu.id.to_hex();
                    @let n = r.number;
                    @let state_word = if rd.delivered.is_some() { "delivered" } else if rd.ordered.is_some() { "ordered" } else if rd.funded { "funded" } else { "open" };
                    section.round data-round=(n) data-state=(state_word) {
                        h3 { "Round " (n + 1) " — " (state_word) }
                        p.small { (rd.committed_quantity) " " (pu.unit) " committed by " (rd.participants) " · deadline " (when(rd.deadline))
                            @if let Some(price) = rd.unit_price { " · winning price " (money(price, &pu.currency)) } }
                        @if !rd.commitments.is_empty() {
                            table {
                                thead { tr { th { "Member" } th { "Quantity" } th { "Paid" } th { "Picked up" } th { "Actions" } } }
                                tbody {
                                    @for c in &rd.commitments {
                                        tr {
                                            td { (v.name(&c.member)) } td { (c.quantity) }
                                            td { (if c.paid.is_some() { "yes" } else { "no" }) } td { (if c.picked_up.is_some() { "yes" } else { "no" }) }
                                            td {
                                                @if rd.delivered.is_some() && (c.member == v.me || pu.coordinator == v.me) {
                                                    @for (mark, label, done) in [("paid", "Mark paid", c.paid.is_some()), ("picked_up", "Mark picked up", c.picked_up.is_some())] {
                                                        @if !done {
                                                            (v.form(&format!("mark-{mark}-{hexid}-{n}-{}", c.member.to_hex()), "purchase_mark", label, html! {
                                                                input type="hidden" name="purchase" value=(hexid);
                                                                input type="hidden" name="n:round" value=(n);
                                                                input type="hidden" name="member" value=(c.member.to_hex());
                                                                input type="hidden" name="mark" value=(mark);
                                                            }))
                                                        }
                                                    }
                                                }
                                            }
                                        }
                                    }
                                }
                            }
                        }
                        @if rd.ordered.is_none() && rd.deadline > v.now {
                            (open_round_forms(v, &hexid, n))
                        }
                        @if !rd.bids.is_empty() {
                            ul.bids { @for b in &rd.bids { li { (b.supplier) @if b.local { " (local)" } ": " (money(b.unit_price, &pu.currency)) " from " (b.min_quantity) " " (pu.unit) } } }
                        }
                        @if pu.coordinator == v.me {
                            @if rd.ordered.is_none() {
                                (v.form(&format!("ordered-{hexid}-{n}"), "purchase_step", "Mark ordered", html! {
                                    input type="hidden" name="purchase" value=(hexid);
                                    input type="hidden" name="n:round" value=(n);
                                    input type="hidden" name="step" value="ordered";
                                }))
                            } @else if rd.delivered.is_none() {
                                (v.form(&format!("delivered-{hexid}-{n}"), "purchase_step", "Mark delivered", html! {
                                    input type="hidden" name="purchase" value=(hexid);
                                    input type="hidden" name="n:round" value=(n);
                                    input type="hidden" name="step" value="delivered";
                                }))
                            }
                        }
                    }
                }
            }
        }
    }
}

/// Commit and bid forms of an open round.
fn open_round_forms(v: &View<'_>, hexid: &str, n: u32) -> Markup {
    html! {
        (v.form(&format!("commit-{hexid}-{n}"), "purchase_commit", "Commit", html! {
            input type="hidden" name="purchase" value=(hexid);
            input type="hidden" name="n:round" value=(n);
            label { "Quantity " input type="number" name="n:quantity" min="1" required; }
            label { "Solidarity % (+ pays more, − asks a discount) " input type="number" name="n:solidarity_percent" min="-100" max="100" value="0"; }
        }))
        (v.form(&format!("bid-{hexid}-{n}"), "purchase_bid", "Record bid", html! {
            input type="hidden" name="purchase" value=(hexid);
            input type="hidden" name="n:round" value=(n);
            label { "Supplier " input type="text" name="supplier" maxlength="100" required; }
            label { "Local supplier " select name="b:local" { option value="true" { "yes" } option value="false" { "no" } } }
            label { "Price per unit " input type="text" inputmode="decimal" name="m:unit_price" required; }
            label { "Least quantity at that price " input type="number" name="n:min_quantity" min="1" value="1" required; }
        }))
    }
}

// ---------------------------------------------------------------- pools

fn pools(v: &View<'_>) -> Markup {
    let p = query::pools(&v.state);
    let treasurer = v.has_role(Role::Treasurer);
    let steward = v.has_role(Role::Steward);
    html! {
        h1 { "Pools & relief" }
        p { "A pool gathers money for a shared project; a relief fund helps members in need. Money is "
            "pledged, confirmed by a treasurer, allocated to an application by decision, and disbursed "
            "by a treasurer. Relief is released by " (v.state.params.relief_approvals) " stewards' approvals." }
        details open[v.flash.is_some_and(|f| f.form == "new-pool")] {
            summary { "Open a pool or a relief fund" }
            (v.form("new-pool", "pool", "Open", html! {
                label { "Name " input type="text" name="name" maxlength="100" required; }
                label { "Description " textarea name="description" maxlength="2000" {} }
                label { "Currency " input type="text" name="currency" value="EUR" pattern="[A-Z]{3}" required; }
                label { "What happens to money returned " select name="policy" {
                    option value="reinvest" { "stays in the pool (reinvest)" }
                    option value="distribute" { "goes back to contributors (distribute)" }
                    option value="hybrid" { "half and half (hybrid)" } } }
                label { "Kind " select name="b:relief" {
                    option value="false" { "an investment pool" }
                    option value="true" { "a relief fund (treasurers only)" } } }
            }))
        }
        @if p.pools.is_empty() { p.empty { "No pools or relief funds yet." } }
        @for pool in &p.pools {
            article.item {
                h2 { (pool.name) @if pool.relief { " " span.badge { "relief fund" } } }
                p { (pool.description) }
                dl.facts {
                    dt { "Balance" } dd { (money(pool.balance, &pool.currency)) }
                    dt { "Confirmed contributions" } dd { (money(pool.confirmed, &pool.currency)) }
                    dt { "Pledged, unconfirmed" } dd { (money(pool.pledged, &pool.currency)) }
                    dt { "Disbursed" } dd { (money(pool.disbursed, &pool.currency)) }
                    dt { "Returned" } dd { (money(pool.returned, &pool.currency)) }
                }
                (v.form(&format!("pledge-new-{}", pool.id.to_hex()), "contribution", "Pledge", html! {
                    input type="hidden" name="pool" value=(pool.id.to_hex());
                    label { "Amount (" (pool.currency) ") " input type="text" inputmode="decimal" name="m:amount" required; }
                }))
                @if pool.relief {
                    (v.form(&format!("relief-new-{}", pool.id.to_hex()), "relief_request", "Ask for relief", html! {
                        input type="hidden" name="fund" value=(pool.id.to_hex());
                        label { "Amount (" (pool.currency) ") " input type="text" inputmode="decimal" name="m:amount" required; }
                        label { "Urgency " select name="urgency" { option value="low" { "low" } option value="medium" selected { "medium" } option value="high" { "high" } } }
                        label { "Why (sealed: only the stewards can read it) " textarea name="seal:reason" maxlength="2000" required {} }
                    }))
                } @else {
                    (v.form(&format!("apply-{}", pool.id.to_hex()), "application", "Apply", html! {
                        input type="hidden" name="pool" value=(pool.id.to_hex());
                        label { "Project " input type="text" name="title" minlength="3" maxlength="100" required; }
                        label { "Amount (" (pool.currency) ") " input type="text" inputmode="decimal" name="m:amount" required; }
                        label { "Terms (how and when it comes back, 10 characters or more) " textarea name="terms" minlength="10" maxlength="2000" required {} }
                    }))
                }
                @if treasurer {
                    (v.form(&format!("return-pool-{}", pool.id.to_hex()), "return", "Record money returned to the pool", html! {
                        input type="hidden" name="from" value=(pool.id.to_hex());
                        label { "Amount (" (pool.currency) ") " input type="text" inputmode="decimal" name="m:amount" required; }
                    }))
                }
            }
        }
        @if !p.contributions.is_empty() {
            h2 { "Contributions" }
            table {
                thead { tr { th { "Member" } th { "Pool" } th { "Amount" } th { "Status" } } }
                tbody { @for c in &p.contributions {
                    tr { td { (v.name(&c.contributor)) } td { (pool_name(v, &c.pool)) } td { (pool_money(v, &c.pool, c.amount)) } td { (word(&c.status))
                        @if treasurer && c.status == coop_model::state::ContributionStatus::Pledged && c.contributor != v.me {
                            (v.button(&format!("pledge-{}", c.id.to_hex()), "contribution_confirm", "contribution", &c.id, "Confirm pledge"))
                        } } }
                } }
            }
        }
        @if !p.applications.is_empty() {
            h2 { "Applications" }
            @for a in &p.applications {
                article.item.application {
                    p { em { (a.title) } " by " (v.name(&a.applicant)) " from " (pool_name(v, &a.pool)) ": " (pool_money(v, &a.pool, a.amount))
                        " · " (word(&a.status)) " · disbursed " (pool_money(v, &a.pool, a.disbursed)) " · returned " (pool_money(v, &a.pool, a.returned)) }
                    p.small { (a.terms) }
                    @if a.status == coop_model::state::ApplicationStatus::Pending {
                        p.small { "Waits for a decision that allocates it (Decisions page)." }
                    }
                    @if treasurer && a.status == coop_model::state::ApplicationStatus::Allocated {
                        @if a.disbursed < a.allocated {
                            (v.form(&format!("disburse-{}", a.id.to_hex()), "disbursement", "Disburse", html! {
                                input type="hidden" name="application" value=(a.id.to_hex());
                                label { "Amount (" (pool_money(v, &a.pool, a.allocated - a.disbursed)) " left) " input type="text" inputmode="decimal" name="m:amount" required; }
                            }))
                        }
                        (v.form(&format!("return-{}", a.id.to_hex()), "return", "Record a return", html! {
                            input type="hidden" name="from" value=(a.id.to_hex());
                            label { "Amount " input type="text" inputmode="decimal" name="m:amount" required; }
                        }))
                    }
                }
            }
        }
        @if !p.relief.is_empty() {
            h2 { "Relief requests" }
            p.small { "Reasons are sealed to the stewards; amounts are public." }
            ul { @for r in &p.relief {
                li { (v.name(&r.beneficiary)) ": " (pool_money(v, &r.fund, r.amount)) " from " (pool_name(v, &r.fund)) " · " (word(&r.status))
                    " · " (r.approvals.len()) " approvals"
                    @if steward && r.status == coop_model::state::ReliefStatus::Pending && r.beneficiary != v.me {
                        (v.button(&format!("relief-{}", r.id.to_hex()), "relief_approve", "request", &r.id, "Approve relief"))
                    } }
            } }
        }
    }
}

// ---------------------------------------------------------------- moderation

fn moderation(v: &View<'_>) -> Markup {
    if !v.has_role(Role::Moderator) {
        return html! { h1 { "Moderation" } p { "Only moderators see reports. To report a record or a member, use "
        "the “Report” button beside it." } };
    }
    let m = query::moderation(&v.state);
    let hidden: std::collections::BTreeSet<RecordId> = m.hidden.iter().map(|h| h.record).collect();
    html! {
        h1 { "Moderation" }
        h2 { "Reports" }
        @if m.reports.is_empty() { p.empty { "No reports." } }
        @for r in &m.reports {
            article.item.report {
                p { (v.name(&r.reporter)) " reported " (report_target(v, r)) ": " (r.reason) }
                @if let Some(rec) = RecordId::from_hex(&r.target).ok().filter(|_| r.target_kind == coop_model::record::ReportTarget::Record) {
                    @if hidden.contains(&rec) {
                        p.small { "Hidden." }
                    } @else {
                        (hide_form(v, &format!("hide-{}", r.id.to_hex()), &rec))
                    }
                }
            }
        }
        h2 { "Hide a record" }
        p.small { "Hidden records leave every listing but stay in the ledger for audit." }
        @let shown: Vec<_> = hideable(v).into_iter().filter(|(id, _)| !hidden.contains(id)).collect();
        @if shown.is_empty() { p.empty { "Nothing to hide." } } @else {
            (v.form("hide-any", "hide", "Hide", html! {
                label { "Record " select name="record" required {
                    @for (id, title) in &shown { option value=(id.to_hex()) { (title) } } } }
                label { "Why (3 characters or more) " input type="text" name="reason" minlength="3" maxlength="500" required; }
            }))
        }
        h2 { "Hidden records" }
        @if m.hidden.is_empty() { p.empty { "No record is hidden." } }
        ul { @for h in &m.hidden { li { (title_of(v, &h.record)) } } }
    }
}

/// What a report names, in words.
fn report_target(v: &View<'_>, r: &coop_model::state::Report) -> String {
    match r.target_kind {
        coop_model::record::ReportTarget::Member => MemberId::from_hex(&r.target)
            .map(|m| v.name(&m))
            .unwrap_or_else(|_| "a member".into()),
        _ => RecordId::from_hex(&r.target)
            .map(|id| title_of(v, &id))
            .unwrap_or_else(|_| "a record".into()),
    }
}

/// Records a moderator may hide, by title: proposals, aid requests and offers, decisions,
/// purchases, pools and applications.
fn hideable(v: &View<'_>) -> Vec<(RecordId, String)> {
    let mut out: Vec<(RecordId, String)> = Vec::new();
    out.extend(
        query::proposals(&v.state)
            .into_iter()
            .map(|p| (p.id, format!("Proposal “{}”", p.title))),
    );
    for r in query::aid(&v.state) {
        for o in &r.offers {
            out.push((
                o.id,
                format!("{}'s offer on “{}”", v.name(&o.helper), r.title),
            ));
        }
        out.push((r.id, format!("Aid request “{}”", r.title)));
    }
    out.extend(
        query::decisions(&v.state)
            .into_iter()
            .map(|d| (d.id, format!("Decision “{}”", d.title))),
    );
    out.extend(
        query::purchases(&v.state)
            .into_iter()
            .map(|p| (p.purchase.id, format!("Purchase “{}”", p.purchase.item))),
    );
    let pools = query::pools(&v.state);
    out.extend(
        pools
            .pools
            .into_iter()
            .map(|p| (p.id, format!("Pool “{}”", p.name))),
    );
    out.extend(
        pools
            .applications
            .into_iter()
            .map(|a| (a.id, format!("Application “{}”", a.title))),
    );
    out
}

/// A record's title as a person reads it ("a record" when this view has none).
fn title_of(v: &View<'_>, id: &RecordId) -> String {
    hideable(v)
        .into_iter()
        .find(|(r, _)| r == id)
        .map(|(_, t)| t)
        .unwrap_or_else(|| "a record".into())
}

fn hide_form(v: &View<'_>, form_id: &str, record: &RecordId) -> Markup {
    v.form(form_id, "hide", "Hide it", html! {
        input type="hidden" name="record" value=(record.to_hex());
        label { "Why (3 characters or more) " input type="text" name="reason" minlength="3" maxlength="500" required; }
    })
}

/// The "Report" form every member sees beside a record or a member: folded away until
/// opened, and open again when its report was refused.
fn report_form(v: &View<'_>, target_kind: &str, target: &str) -> Markup {
    let id = format!("report-{target}");
    let open = v.flash.is_some_and(|f| f.form == id);
    html! {
        details.report open[open] {
            summary { "Report" }
            (v.form(&id, "report", "Send to the moderators", html! {
                input type="hidden" name="target_kind" value=(target_kind);
                input type="hidden" name="target" value=(target);
                label { "What is wrong (3 characters or more) " input type="text" name="reason" minlength="3" maxlength="500" required; }
            }))
        }
    }
}

// ---------------------------------------------------------------- ledger

fn ledger(v: &View<'_>) -> Markup {
    let kind =
        v.q.get("kind")
            .filter(|k| !k.is_empty())
            .and_then(|k| query::parse_kind(k).ok());
    let refused = v.q.get("refused").is_some_and(|x| x == "on" || x == "true");
    let member = v.q.get("member").and_then(|m| MemberId::from_hex(m).ok());
    let before = v.q.get("before").and_then(|b| b.parse().ok());
    let page = query::ledger(
        &v.state,
        Some(&v.me),
        &LedgerQuery {
            kind,
            refused,
            all: false,
            limit: Some(query::DEFAULT_PAGE),
            before,
        },
    );
    let rows: Vec<_> = page
        .rows
        .iter()
        .filter(|r| member.is_none() || r.member == member)
        .collect();
    html! {
        h1 { "Ledger" }
        p { (page.counted) " records count; " (page.refused) " were refused, each with its reason." }
        form.search method="get" action="/ledger" {
            label { "Kind " select name="kind" {
                option value="" { "any" }
                @for k in Kind::ALL { option value=(k.as_str()) selected[Some(*k) == kind] { (k.as_str().replace('_', " ")) } } } }
            label { "Member " select name="member" {
                option value="" { "anyone" }
                @for m in query::members(&v.state, Some(&v.me)) { option value=(m.id.to_hex()) selected[Some(m.id) == member] { (m.display_name) } } } }
            label.check { input type="checkbox" name="refused" checked[refused]; " only refused" }
            button type="submit" { "Filter" }
        }
        table.ledger {
            thead { tr { th { "#" } th { "When" } th { "Who" } th { "What" } th { "Status" } } }
            tbody {
                @for r in &rows {
                    tr class=(if r.reason.is_some() { "refused" } else { "" }) {
                        td { (r.position) }
                        td { (when(r.time)) }
                        td { (r.member.as_ref().map(|m| v.name(m)).unwrap_or_else(|| "unknown".into())) }
                        td { (r.kind.as_str().replace('_', " ")) @if let Some(s) = &r.summary { ": " (named(v, s)) } @if r.redacted { " (private)" } }
                        td { (word(&r.status))
                            @if let Some(reason) = r.reason {
                                " — " (super::refusal::sentence(reason, &Default::default()))
                                @if let Some(d) = &r.detail { " (" (d) ")" }
                            } }
                    }
                }
            }
        }
        @if let Some(next) = page.next {
            p { a href={"/ledger?before=" (next) (v.q.get("kind").map(|k| format!("&kind={k}")).unwrap_or_default()) (if refused { "&refused=on" } else { "" })} { "Older records" } }
        }
    }
}

/// A record summary with the short member ids it names replaced by names.
/// A record summary with the short member and record ids it names replaced by names and
/// titles (a record it names that this view cannot title stays "a record").
fn named(v: &View<'_>, summary: &str) -> String {
    let mut s = summary.to_string();
    for m in v.state.members.values() {
        s = s.replace(&m.id.short(), &m.display_name);
    }
    let mut titles: Vec<(RecordId, String)> = Vec::new();
    titles.extend(
        query::proposals(&v.state)
            .into_iter()
            .map(|p| (p.id, format!("“{}”", p.title))),
    );
    titles.extend(
        query::purchases(&v.state)
            .into_iter()
            .map(|p| (p.purchase.id, format!("“{}”", p.purchase.item))),
    );
    titles.extend(
        query::aid(&v.state)
            .into_iter()
            .map(|r| (r.id, format!("“{}”", r.title))),
    );
    titles.extend(
        query::decisions(&v.state)
            .into_iter()
            .map(|d| (d.id, format!("“{}”", d.title))),
    );
    let pools = query::pools(&v.state);
    titles.extend(
        pools
            .pools
            .into_iter()
            .map(|p| (p.id, format!("“{}”", p.name))),
    );
    titles.extend(
        pools
            .applications
            .into_iter()
            .map(|a| (a.id, format!("“{}”", a.title))),
    );
    titles.extend(query::hours(&v.state, &v.me).into_iter().map(|a| {
        (
            a.id,
            format!(
                "{}'s {} of “{}”",
                v.name(&a.provider),
                hours(a.minutes.0),
                a.service
            ),
        )
    }));
    for (id, title) in titles {
        if s.contains(&id.short()) {
            s = s.replace(&id.short(), &title);
        }
    }
    // Whatever short hex is left names a record this view has no title for.
    s.split(' ')
        .map(|w| {
            let core = w.trim_matches(|c: char| !c.is_ascii_hexdigit());
            if core.len() == 12
                && core
                    .bytes()
                    .all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase())
                && core.bytes().any(|b| b.is_ascii_digit())
            {
                w.replace(core, "a record")
            } else {
                w.to_string()
            }
        })
        .collect::<Vec<_>>()
        .join(" ")
}

// ---------------------------------------------------------------- settings

fn settings(v: &View<'_>) -> Markup {
    let me = v.state.members.get(&v.me);
    let vis = me.map(|m| m.visibility).unwrap_or_default();
    let psk = v.config.psk.as_deref().and_then(|k| {
        let mut b = [0u8; 32];
        hex::decode_to_slice(k.trim(), &mut b).ok().map(|_| b)
    });
    // Where this node listens now (as `coop invite` does with a running node), loopback last.
    let mut peers: Vec<String> = v
        .listen
        .iter()
        .filter(|a| !a.contains("/127.0.0.1/"))
        .cloned()
        .collect();
    peers.extend(
        v.listen
            .iter()
            .filter(|a| a.contains("/127.0.0.1/"))
            .cloned(),
    );
    let code = qr::invite_code(&v.state.community, psk, &peers, &v.config.relays);
    html! {
        h1 { "Settings" }
        section {
            h2 { "Your devices" }
            p { a href="/settings/devices" { "Your devices" } ": pair a new one, see when each last wrote, revoke a lost one." }
        }
        section {
            h2 { "Your name" }
            p { "You are " strong #my-name { (v.name(&v.me)) } " to the community. A new name is written to the ledger, "
                "so every member's node shows it, everywhere your name appears." }
            (v.form("rename", "rename", "Change my name", html! {
                label { "New name (1–64 characters, not another member's) "
                    input type="text" name="display_name" minlength="1" maxlength="64" required value=(v.name(&v.me)); }
            }))
        }
        section {
            h2 { "Who sees your balance and history" }
            (v.form("visibility", "visibility", "Save", html! {
                fieldset {
                    legend { "Visibility" }
                    @for (value, label) in [("public", "Everyone"), ("members", "Members"), ("private", "Only me (and the people I exchanged with)")] {
                        label { input type="radio" name="level" value=(value) checked[word(&vis) == value]; " " (label) }
                    }
                }
            }))
        }
        section {
            h2 { "Invite a neighbour" }
            p { "Give this code to the neighbour you invite (" code { "coop join CODE" } "). It carries the LAN key: share it only with them." }
            p { code.invite { (code) } }
            @if let Some(svg) = qr::svg(&code) { div.qr { (PreEscaped(svg)) } }
            @if let Some(k) = &v.config.psk {
                details { summary { "LAN key" } p { code { (k) } } }
            } @else {
                p.small { "This community uses no LAN key." }
            }
        }
    }
}

// ---------------------------------------------------------------- network

fn network_page(v: &View<'_>) -> Markup {
    let Some(s) = &v.status else {
        return html! { p { "No status." } };
    };
    html! {
        h1 { "Network" }
        dl.facts {
            dt { "Community" } dd { (s.community_name) }
            dt { "Records held" } dd { (s.changes) " (" (s.counted) " count, " (s.refused) " refused)" }
            dt { "Waiting for what they build on" } dd { (s.pending) }
            dt { "Connected peers" } dd { (s.peers.len()) }
            dt { "Refused from peers" } dd { (s.rejected_from_peers) }
            dt { "Ledger digest" } dd { code { (s.digest.get(..16).unwrap_or(&s.digest)) } }
        }
        h2 { "Catching up" }
        @if v.catch_up.is_empty() {
            p.empty #catch-up { @if s.pending > 0 { (s.pending) " records wait for what they build on; " }
                "no catch-up batch has arrived since the node started." }
        } @else {
            @let behind = v.catch_up.iter().filter(|c| c.more).count();
            p #catch-up { @if behind == 0 && s.pending == 0 { "Caught up with every peer that sent changes." }
                @else if behind > 0 { "Still receiving from " (behind) " peers." }
                @else { (s.pending) " records wait for what they build on." } }
            table.catch-up {
                thead { tr { th { "Peer" } th { "Batches" } th { "Records received" } th { "State" } th { "Last batch" } } }
                tbody { @for c in v.catch_up.iter().rev() {
                    tr { td { code { (c.peer.get(..16).unwrap_or(&c.peer)) "…" } } td { (c.batches) } td { (c.accepted) }
                        td { (if c.more { "more to come" } else { "caught up" }) } td { (when(c.at)) } }
                } }
            }
        }
        h2 { "Peers" }
        @if s.peers.is_empty() { p.empty { "No peer connected." } }
        ul { @for p in &s.peers { li { code { (p) } } } }
        h2 { "Listening on" }
        ul { @for a in &s.listen { li { code { (a) } } } }
    }
}
