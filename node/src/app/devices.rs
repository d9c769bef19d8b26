//! The devices page under settings (`/settings/devices`): the member's devices with their
//! labels, when each was added and last wrote, and whether it forked or was revoked; the
//! pairing flow (paste a new machine's request code, get the approval code as text and as
//! a QR code); and a revoke button per device. Rules: docs/RULES.md R18; codes:
//! docs/PROTOCOL.md §15.
//!
//! Revoking writes a `device_revoke` record through `POST /write` like every form; the
//! approval is no record (it signs a certificate with the identity key this device
//! holds), so it has its own `POST /settings/devices/approve`, with the same CSRF check.

use axum::extract::{Form, State as AxState};
use axum::http::StatusCode;
use axum::response::{Html, IntoResponse, Response};
use axum::Extension;
use coop_model::{DeviceId, MemberId, State};
use maud::{html, Markup, PreEscaped};

use super::pages::{layout, Flash};
use super::session::{self, Session};
use super::{qr, refuse, App};
use crate::api::QUEUE_WAIT;
use crate::datadir::Config;
use crate::device::{self, Request};
use crate::error::one_line;

/// The page's path (its forms come back here).
pub(crate) const PATH: &str = "/settings/devices";

/// The outcome of pasting a request code.
enum Pairing {
    /// The approval code for the new machine, and its label.
    Approved { code: String, label: String },
    /// Why the request was not approved, in one sentence.
    Refused(String),
}

/// What the page is drawn from: one read of the node.
struct Facts {
    me: MemberId,
    here: DeviceId,
    state: State,
    config: Config,
}

async fn read(app: &App) -> Result<Facts, Response> {
    app.api
        .store
        .read_within(QUEUE_WAIT, |n| Facts {
            me: n.member(),
            here: n.device_id(),
            state: n.state().clone(),
            config: n.config().clone(),
        })
        .await
        .map_err(|e| {
            (
                StatusCode::SERVICE_UNAVAILABLE,
                Html(format!("The node could not answer: {}", one_line(&e))),
            )
                .into_response()
        })
}

/// `GET /settings/devices` (and the page a refused revocation comes back to).
pub(crate) async fn render(app: &App, session: &Session, flash: Option<&Flash>) -> Response {
    match read(app).await {
        Ok(f) => Html(page(&f, session, flash, None).into_string()).into_response(),
        Err(r) => r,
    }
}

/// `POST /settings/devices/approve`: certifies the pasted request's device with this
/// device's identity key and shows the approval code.
pub(crate) async fn approve(
    AxState(app): AxState<App>,
    Extension(session): Extension<Session>,
    Form(fields): Form<Vec<(String, String)>>,
) -> Response {
    let field = |k: &str| fields.iter().find(|(n, _)| n == k).map(|(_, v)| v.as_str());
    if !field("_csrf").is_some_and(|t| session::same(t, &session.csrf)) {
        return refuse(
            StatusCode::FORBIDDEN,
            "bad_csrf",
            "the form's CSRF token is missing or wrong; reload the page",
        );
    }
    let facts = match read(&app).await {
        Ok(f) => f,
        Err(r) => return r,
    };
    let code = field("code").unwrap_or("").to_string();
    // Where this node listens now, loopback last (as the invite code on the settings page).
    let listen = app.api.snapshot.borrow().listen.clone();
    let (mut peers, local): (Vec<String>, Vec<String>) =
        listen.into_iter().partition(|a| !a.contains("/127.0.0.1/"));
    peers.extend(local);
    peers.truncate(device::MAX_PEERS);
    let dir = app.dir.clone();
    let config = facts.config.clone();
    let known = Request::decode(&code).is_ok_and(|r| facts.state.devices.contains_key(&r.device));
    let outcome = tokio::task::spawn_blocking(move || -> Result<Pairing, String> {
        let request = Request::decode(&code).map_err(|e| format!("{e}."))?;
        if known {
            return Err(format!(
                "Device {} is already certified: nothing to approve.",
                request.device.short()
            ));
        }
        let (identity, member) = device::signer(&dir).map_err(|_| {
            "This device does not hold your identity key: approve from a device that does."
                .to_string()
        })?;
        let approval = device::approve_for(&identity, member, &config, &request, peers)
            .map_err(|e| one_line(&e))?;
        Ok(Pairing::Approved {
            code: approval.encode(),
            label: request.label,
        })
    })
    .await
    .unwrap_or_else(|e| Err(format!("The approval stopped: {e}")))
    .unwrap_or_else(Pairing::Refused);
    let status = match outcome {
        Pairing::Approved { .. } => StatusCode::OK,
        Pairing::Refused(_) => StatusCode::UNPROCESSABLE_ENTITY,
    };
    (
        status,
        Html(page(&facts, &session, None, Some(&outcome)).into_string()),
    )
        .into_response()
}

fn when(unix: i64) -> String {
    let day = coop_model::Day::from_unix(unix);
    let s = unix.rem_euclid(86_400);
    format!("{day} {:02}:{:02} UTC", s / 3600, (s % 3600) / 60)
}

fn page(f: &Facts, session: &Session, flash: Option<&Flash>, pairing: Option<&Pairing>) -> Markup {
    let mine: Vec<_> = f
        .state
        .devices
        .iter()
        .filter(|(_, i)| i.member == f.me)
        .collect();
    let main = html! {
        h1 { "Your devices" }
        p { a href="/settings" { "← Settings" } }
        section aria-label="Devices" {
            @if mine.is_empty() {
                p.empty { "No device of yours is in the ledger yet." }
            } @else {
                table #devices {
                    thead { tr { th { "Device" } th { "Added" } th { "Last wrote" } th { "Status" } th { "" } } }
                    tbody {
                        @for (id, info) in &mine {
                            @let form = format!("revoke-{}", id.short());
                            tr {
                                td { (info.label.clone().unwrap_or_else(|| format!("device {}", id.short()))) }
                                td { (when(info.added)) }
                                td { (when(info.last_wrote)) }
                                td {
                                    @if info.revoked_by.is_some() { "revoked" }
                                    @else if let Some(at) = info.forked_at { "forked at its change " (at) ": pair a new device" }
                                    @else if **id == f.here { "this device" }
                                    @else { "active" }
                                }
                                td {
                                    @if info.revoked_by.is_none() && **id != f.here {
                                        form.write method="post" action="/write" id=(form) {
                                            input type="hidden" name="_csrf" value=(session.csrf);
                                            input type="hidden" name="_back" value=(PATH);
                                            input type="hidden" name="_form" value=(form);
                                            input type="hidden" name="kind" value="device_revoke";
                                            input type="hidden" name="device" value=(id.to_hex());
                                            label { "Why (optional) " input type="text" name="reason" maxlength="200"; }
                                            @if let Some(fl) = flash.filter(|fl| fl.form == form) {
                                                p.refusal role="alert" { (fl.sentence) }
                                            }
                                            button type="submit" { "Revoke" }
                                        }
                                    }
                                }
                            }
                        }
                    }
                }
            }
        }
        section aria-label="Pair a new device" {
            h2 { "Pair a new device" }
            p { "On the new machine run " code { "coop device request --name LABEL" } ", then paste its code here. "
                "No private key leaves either machine." }
            form.write method="post" action="/settings/devices/approve" id="device-approve" {
                input type="hidden" name="_csrf" value=(session.csrf);
                label { "Request code " input type="text" name="code" required; }
                button type="submit" { "Approve" }
            }
            @match pairing {
                Some(Pairing::Approved { code, label }) => {
                    div #approval data-keep="1" {
                        p { "Approved" @if !label.is_empty() { " “" (label) "”" } ". On the new machine run "
                            code { "coop device complete ANSWER" } " with this answer. It carries your "
                            "community's LAN key: give it only to your own machine." }
                        p { code.invite #approval-code { (code) } }
                        @if let Some(svg) = qr::svg(code) { div.qr { (PreEscaped(svg)) } }
                    }
                }
                Some(Pairing::Refused(why)) => { p.refusal role="alert" { (why) } }
                None => {}
            }
        }
    };
    let moderator = f
        .state
        .members
        .get(&f.me)
        .is_some_and(|m| m.roles.contains(&coop_model::record::Role::Moderator));
    layout("Devices", "/settings", &f.state.name, moderator, main)
}
