//! The member's app: server-rendered pages served by the node on its loopback port, beside
//! the JSON API (docs/APP.md).
//!
//! - [`session`]: the one-time login token (data dir, 0600), sessions and CSRF tokens.
//! - `pages`: every page, rendered with `maud` from `coop_model::query` answers.
//! - `charts`: the dashboard's SVG bar charts, each with its numbers in a table.
//! - `forms`: a form's fields as a ledger record, for the one write path.
//! - `refusal`: one sentence per ledger refusal reason.
//! - `qr`: the invite code and its QR code as SVG.
//! - `devices`: the devices page under settings (list, pairing with a QR code, revoke).
//!
//! Security (docs/APP.md, "Security model"): every request must name the loopback with the
//! served port as `Host` (DNS rebinding), every state-changing request is a POST with the
//! session's CSRF token and, when the browser sends one, our own `Origin`; every answer
//! carries a Content-Security-Policy that allows only this origin's own script and style
//! files and no framing. Without a session the pages answer with the login page and the
//! JSON API with `401 session_required`: the API on this port is readable only by a
//! browser that logged in, never by another web page or another local user.

mod charts;
mod devices;
mod forms;
mod pages;
mod qr;
mod refusal;
pub mod session;

use std::sync::Arc;

use axum::extract::{Form, Query, Request, State as AxState};
use axum::http::{header, HeaderValue, Method, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use axum::{Extension, Router};

use crate::api::Ctx;
use crate::datadir::DataDir;
use crate::error::NodeError;
pub use session::{issue_login_token, sessions_path, token_path, MAX_SESSIONS, SESSION_TTL_SECS};
use session::{Session, Sessions};

/// The Content-Security-Policy of every answer: only this origin's own files, no inline
/// script or style, no framing, forms post only here.
pub const CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; \
connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'";

/// What the app's handlers share.
#[derive(Debug, Clone)]
pub(crate) struct App {
    pub(crate) api: Ctx,
    pub(crate) dir: DataDir,
    pub(crate) sessions: Arc<Sessions>,
    /// The served port (the only one a `Host` or `Origin` may name).
    pub(crate) port: u16,
}

/// The app's URL with a fresh one-time login token, for a data dir whose node serves the
/// app (`ui_port` in its config); `None` when no port was ever chosen.
pub fn login_url(dir: &DataDir) -> Result<Option<String>, NodeError> {
    let Some(port) = dir.config()?.ui_port else {
        return Ok(None);
    };
    let token = issue_login_token(dir)?;
    Ok(Some(format!("http://127.0.0.1:{port}/login?token={token}")))
}

/// The whole loopback router: the app's pages and forms, and `api` (the JSON API, already
/// read-only), behind the app's security layer.
pub(crate) fn router(app: App, api: Router) -> Router {
    let pages = Router::new()
        .route("/login", get(login))
        .route("/assets/app.css", get(css))
        .route("/assets/app.js", get(js))
        // After a refused form the address bar shows /write: a reload (or the live
        // refresh) goes home rather than to an error.
        .route("/write", post(write).get(|| async { Redirect::to("/") }))
        .route(
            "/settings/devices/approve",
            post(devices::approve).get(|| async { Redirect::to(devices::PATH) }),
        )
        .route("/", get(page))
        .route("/{*path}", get(page))
        .with_state(app.clone());
    pages
        .merge(api)
        .layer(axum::middleware::from_fn_with_state(app, guard))
}

/// Refuses what the app must refuse before any handler runs, and adds the security
/// headers to every answer.
async fn guard(AxState(app): AxState<App>, mut req: Request, next: Next) -> Response {
    let mut resp = match check(&app, &mut req) {
        Ok(()) => next.run(req).await,
        Err(r) => r,
    };
    let h = resp.headers_mut();
    h.insert("content-security-policy", HeaderValue::from_static(CSP));
    h.insert("x-frame-options", HeaderValue::from_static("DENY"));
    h.insert(
        "x-content-type-options",
        HeaderValue::from_static("nosniff"),
    );
    // The login URL carries a token: never hand it on to another site. (`no-referrer`
    // would make Chromium send `Origin: null` with our own forms.)
    h.insert("referrer-policy", HeaderValue::from_static("same-origin"));
    h.entry(header::CACHE_CONTROL)
        .or_insert(HeaderValue::from_static("no-store"));
    resp
}

fn check(app: &App, req: &mut Request) -> Result<(), Response> {
    let headers = req.headers();
    let host = headers
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .unwrap_or("");
    if !loopback_host(host, app.port) {
        return Err(refuse(
            StatusCode::FORBIDDEN,
            "forbidden",
            "only 127.0.0.1 or localhost with this port may be named as Host",
        ));
    }
    let path = req.uri().path().to_string();
    let api = path.starts_with(crate::api::PREFIX);
    let read = matches!(*req.method(), Method::GET | Method::HEAD);
    if !read {
        if let Some(origin) = headers.get(header::ORIGIN) {
            let ok = origin
                .to_str()
                .ok()
                .and_then(|o| o.strip_prefix("http://"))
                .is_some_and(|o| loopback_host(o, app.port));
            if !ok {
                return Err(refuse(
                    StatusCode::FORBIDDEN,
                    "cross_origin",
                    "a request from another origin",
                ));
            }
        }
        if headers
            .get("sec-fetch-site")
            .is_some_and(|v| v.as_bytes() == b"cross-site")
        {
            return Err(refuse(
                StatusCode::FORBIDDEN,
                "cross_origin",
                "a request from another site",
            ));
        }
        if api {
            // The API on this port is read-only; its own guard answers `read_only`.
            return Ok(());
        }
    }
    if read && (path == "/login" || path.starts_with("/assets/")) {
        return Ok(());
    }
    let cookie = headers
        .get(header::COOKIE)
        .and_then(|c| c.to_str().ok())
        .unwrap_or("");
    match app.sessions.find(cookie, crate::actor::unix_now()) {
        Some(s) => {
            req.extensions_mut().insert(s);
            Ok(())
        }
        None if !read => Err(refuse(
            StatusCode::FORBIDDEN,
            "session_required",
            "log in first: run `coop ui` for a login link",
        )),
        None if api => Err(refuse(
            StatusCode::UNAUTHORIZED,
            "session_required",
            "log in first: run `coop ui` for a login link",
        )),
        None => Err((StatusCode::UNAUTHORIZED, pages::login_page(None)).into_response()),
    }
}

/// `127.0.0.1:<port>` or `localhost:<port>`, the port required.
fn loopback_host(host: &str, port: u16) -> bool {
    let Some((name, p)) = host.rsplit_once(':') else {
        return false;
    };
    matches!(name, "127.0.0.1" | "localhost") && p.parse::<u16>().ok() == Some(port)
}

/// An error answer in the JSON API's shape (`{ "error": { "reason", "detail" } }`).
fn refuse(status: StatusCode, reason: &str, detail: &str) -> Response {
    let body = crate::api::ErrorBody {
        error: crate::api::ApiError {
            reason: reason.into(),
            detail: detail.into(),
            rejection: None,
        },
    };
    (status, axum::Json(body)).into_response()
}

#[derive(Debug, serde::Deserialize)]
struct LoginQuery {
    #[serde(default)]
    token: Option<String>,
}

/// `GET /login?token=…`: trades the one-time token for a session cookie.
async fn login(
    AxState(app): AxState<App>,
    q: Result<Query<LoginQuery>, axum::extract::rejection::QueryRejection>,
) -> Response {
    let token = q.ok().and_then(|q| q.0.token).unwrap_or_default();
    if token.is_empty() {
        return (StatusCode::UNAUTHORIZED, pages::login_page(None)).into_response();
    }
    let dir = app.dir.clone();
    let sessions = app.sessions.clone();
    let s =
        tokio::task::spawn_blocking(move || sessions.login(&dir, &token, crate::actor::unix_now()))
            .await
            .ok()
            .flatten();
    match s {
        Some(s) => {
            let cookie = format!(
                "{}={}; Path=/; Max-Age={}; HttpOnly; SameSite=Strict",
                session::COOKIE,
                s.id,
                session::SESSION_TTL_SECS
            );
            let mut r = Redirect::to("/").into_response();
            if let Ok(v) = HeaderValue::from_str(&cookie) {
                r.headers_mut().insert(header::SET_COOKIE, v);
            }
            r
        }
        None => (
            StatusCode::UNAUTHORIZED,
            pages::login_page(Some(
                "That login link is not valid any more (each link works once). \
                 Run `coop ui` for a new one.",
            )),
        )
            .into_response(),
    }
}

async fn css() -> Response {
    asset("text/css; charset=utf-8", include_str!("assets/app.css"))
}

async fn js() -> Response {
    asset(
        "text/javascript; charset=utf-8",
        include_str!("assets/app.js"),
    )
}

fn asset(kind: &'static str, body: &'static str) -> Response {
    (
        [
            (header::CONTENT_TYPE, kind),
            (header::CACHE_CONTROL, "no-cache"),
        ],
        body,
    )
        .into_response()
}

/// Every page: rendered from the path and query.
async fn page(
    AxState(app): AxState<App>,
    Extension(session): Extension<Session>,
    uri: axum::http::Uri,
) -> Response {
    show(&app, &session, &uri, None).await
}

/// The page at `uri`: the devices page (`devices`), or one of `pages`.
async fn show(
    app: &App,
    session: &Session,
    uri: &axum::http::Uri,
    flash: Option<&pages::Flash>,
) -> Response {
    if uri.path().trim_end_matches('/') == devices::PATH {
        return devices::render(app, session, flash).await;
    }
    pages::render(app, session, uri, flash).await
}

/// `POST /write`: a form written as a record through the same path as `POST
/// /api/v1/records`; on refusal the page it came from, with the sentence beside the form.
async fn write(
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
    let back = forms::back_path(field("_back").unwrap_or("/"));
    let form_id = field("_form").unwrap_or("").to_string();
    let flash = match forms::write(&app, &fields).await {
        Ok(()) => return Redirect::to(&back).into_response(),
        Err(sentence) => pages::Flash {
            form: form_id,
            sentence,
        },
    };
    let uri: axum::http::Uri = back
        .parse()
        .unwrap_or_else(|_| "/".parse().expect("a path"));
    let mut r = show(&app, &session, &uri, Some(&flash)).await;
    if r.status() == StatusCode::OK {
        *r.status_mut() = StatusCode::UNPROCESSABLE_ENTITY;
    }
    r
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_loopback_with_our_port_is_a_host() {
        assert!(loopback_host("127.0.0.1:8080", 8080));
        assert!(loopback_host("localhost:8080", 8080));
        assert!(!loopback_host("localhost", 8080));
        assert!(!loopback_host("127.0.0.1:8081", 8080));
        assert!(!loopback_host("evil.example:8080", 8080));
        assert!(!loopback_host("127.0.0.1.evil:8080", 8080));
    }
}
