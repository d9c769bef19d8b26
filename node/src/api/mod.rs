//! The node's local API: HTTP/1.1 + JSON under `/api/v1/`, one router served on
//! `<data dir>/api.sock` for the `coop` command (and on `127.0.0.1:<port>` for the app).
//!
//! Every read answers with a function of `coop_model::query` run on the store actor's
//! state, the same function the `coop` command runs over the store when no node runs.
//! Every answer type is a plain struct (no internally tagged enum, no map keyed by
//! anything but strings), and round-trips through JSON (tests below). Errors are 4xx/5xx
//! with `{ "error": { "reason": "...", "detail": "one line" } }`. Described for people in
//! `docs/API.md`.

mod client;
pub(crate) mod events;
mod openapi;
mod serve;

use std::time::Duration;

use axum::extract::rejection::{JsonRejection, QueryRejection};
use axum::extract::{DefaultBodyLimit, Path, Query, State as AxState};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use coop_model::query::{self, LedgerQuery};
use coop_model::{Day, Envelope, MemberId, Record, RecordId, Rejection};
use serde::{Deserialize, Serialize};
use tokio::sync::{mpsc, oneshot, watch};

use crate::actor::{unix_now, StoreHandle};
use crate::datadir::DataDir;
use crate::error::{one_line, NodeError};
use crate::local::{LocalNode, Status, VerifyReport};
use crate::net::{NetCommand, NetSnapshot};
use crate::peerstore::{self, Source};

pub use crate::actor::ImportSummary;
pub use client::{ApiClient, CALL_TIMEOUT};
pub(crate) use events::EventHub;
pub use events::{ApiEvent, EVENT_RING, KEEP_ALIVE, SUBSCRIBER_BUFFER};
pub(crate) use serve::{bind_unix, serve};
pub use serve::{DRAIN_TIMEOUT, IDLE_TIMEOUT, MAX_CONNECTIONS};

/// The path prefix of this version of the API.
pub const PREFIX: &str = "/api/v1";
/// Largest request body, except an import's.
pub const MAX_BODY: usize = 1024 * 1024;
/// Largest import body (a whole community's export, hex-encoded).
pub const MAX_IMPORT_BODY: usize = 256 * 1024 * 1024;
/// How long a request waits for room in the store actor's queue before "node busy".
pub const QUEUE_WAIT: Duration = Duration::from_secs(2);

/// The body of every error answer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct ErrorBody {
    /// What went wrong.
    pub error: ApiError,
}

/// What went wrong, for people and for programs.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct ApiError {
    /// A stable name: a ledger refusal's reason (`over_proposal_cap`, …) or one of
    /// `bad_request`, `unknown_kind`, `not_found`, `too_large`, `node_busy`, `internal`.
    pub reason: String,
    /// One line for a person.
    pub detail: String,
    /// The ledger's refusal whole, when the ledger refused a write.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rejection: Option<Rejection>,
}

/// `POST /records`: a record to write as this node's device.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct WriteRequest {
    /// The record, tagged by `kind` (docs/PROTOCOL.md §4).
    pub record: Record,
    /// The time the author claims, Unix seconds (`COOP_NOW` travels here); the node's
    /// clock when absent.
    #[serde(default)]
    pub now: Option<i64>,
}

/// A written record.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Written {
    /// Its id.
    pub id: RecordId,
}

/// `POST /peers`: a peer address to remember and dial now.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct AddPeer {
    /// A dialable multiaddr (`/ip4/…/tcp/…`, `/dns4/…`, optionally ending in `/p2p/PEER_ID`).
    pub addr: String,
}

/// A peer address remembered (in the peer store, source `manual`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct PeerAdded {
    /// The address as stored.
    pub addr: String,
    /// Whether it was new to the peer store (else it is now marked manual).
    pub added: bool,
    /// Whether a running node is dialling it now (false when no node runs: it is dialled
    /// at the next start).
    pub dialing: bool,
}

/// Envelopes in their wire form, hex: an import's body, an export's answer.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Envelopes {
    /// Hex of each envelope's wire encoding, in causal order.
    pub envelopes: Vec<String>,
}

impl Envelopes {
    /// Encodes envelopes.
    pub fn encode(envs: &[Envelope]) -> Envelopes {
        Envelopes {
            envelopes: envs.iter().map(|e| hex::encode(e.encode())).collect(),
        }
    }
}

/// Time for reads that depend on it (`?now=`, so that `COOP_NOW` works through a node).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct At {
    /// Unix seconds; the node's clock when absent.
    #[serde(default)]
    pub now: Option<i64>,
}

/// `GET /metrics` parameters.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct MetricsQuery {
    /// Unix seconds; the node's clock when absent.
    #[serde(default)]
    pub now: Option<i64>,
    /// Series and rates from this day on (YYYY-MM-DD).
    #[serde(default)]
    pub since: Option<String>,
}

/// `GET /ledger` parameters as they come in a URL (`kind` validated into
/// [`LedgerQuery`]).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct LedgerParams {
    /// A record kind, e.g. `attest`.
    #[serde(default)]
    pub kind: Option<String>,
    /// Only refused records.
    #[serde(default)]
    pub refused: bool,
    /// Include hidden records.
    #[serde(default)]
    pub all: bool,
    /// Rows per page.
    #[serde(default)]
    pub limit: Option<usize>,
    /// Cursor from the previous page's `next`.
    #[serde(default)]
    pub before: Option<usize>,
}

/// `GET /members/{id}/hours` parameters: one page of a member's attestations.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct HoursParams {
    /// Rows per page (default 50, at most 500).
    #[serde(default)]
    pub limit: Option<usize>,
    /// Cursor: an attestation id (64 hex) from the previous page's `next`.
    #[serde(default)]
    pub before: Option<String>,
}

/// `GET /records` parameters: records by id prefix among some kinds.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct RecordsParams {
    /// 4 or more hex characters of a record id.
    pub prefix: String,
    /// Kinds, comma-separated (`aid_request,aid_offer`); any kind when absent.
    #[serde(default)]
    pub kinds: Option<String>,
}

impl RecordsParams {
    /// The parameters of a lookup of `prefix` among `kinds`.
    pub fn new(kinds: &[coop_model::Kind], prefix: &str) -> RecordsParams {
        RecordsParams {
            prefix: prefix.to_string(),
            kinds: (!kinds.is_empty()).then(|| {
                kinds
                    .iter()
                    .map(|k| k.as_str())
                    .collect::<Vec<_>>()
                    .join(",")
            }),
        }
    }

    /// The path of this lookup.
    pub fn path(&self) -> String {
        let mut p = format!("/records?prefix={}", urlencode(&self.prefix));
        if let Some(k) = &self.kinds {
            p.push_str(&format!("&kinds={k}"));
        }
        p
    }

    /// The kinds, validated.
    pub fn kinds(&self) -> Result<Vec<coop_model::Kind>, ApiError> {
        self.kinds
            .as_deref()
            .into_iter()
            .flat_map(|k| k.split(','))
            .filter(|k| !k.is_empty())
            .map(|k| {
                query::parse_kind(k).map_err(|detail| ApiError {
                    reason: "unknown_kind".into(),
                    detail,
                    rejection: None,
                })
            })
            .collect()
    }
}

/// Percent-encodes what a person typed for a query string (ids are hex; anything else
/// is refused by the query, but must still reach it intact).
fn urlencode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// `GET /export/records` parameters.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ExportParams {
    /// Include records moderators hid.
    #[serde(default)]
    pub all: bool,
}

/// An error answer.
#[derive(Debug)]
pub(crate) struct Failure(StatusCode, ApiError);

impl Failure {
    fn new(status: StatusCode, reason: &str, detail: impl Into<String>) -> Failure {
        let detail: String = detail.into();
        Failure(
            status,
            ApiError {
                reason: reason.into(),
                detail: detail.replace('\n', " "),
                rejection: None,
            },
        )
    }
    fn not_found(what: &str) -> Failure {
        Failure::new(StatusCode::NOT_FOUND, "not_found", what)
    }
}

impl IntoResponse for Failure {
    fn into_response(self) -> Response {
        (self.0, Json(ErrorBody { error: self.1 })).into_response()
    }
}

impl From<NodeError> for Failure {
    fn from(e: NodeError) -> Failure {
        match e {
            NodeError::Refused(r) => {
                let reason = serde_json::to_value(r.reason)
                    .ok()
                    .and_then(|v| v.as_str().map(String::from))
                    .unwrap_or_else(|| "refused".into());
                Failure(
                    StatusCode::UNPROCESSABLE_ENTITY,
                    ApiError {
                        reason,
                        detail: r.detail.replace('\n', " "),
                        rejection: Some(r),
                    },
                )
            }
            NodeError::InvalidInput(m) => Failure::new(StatusCode::BAD_REQUEST, "bad_request", m),
            // The node's data dir was copied or moved here: a conflict with the machine it
            // was made on, which the member resolves (docs/API.md), not a node fault.
            e @ NodeError::OtherMachine(_) => {
                Failure::new(StatusCode::CONFLICT, "other_machine", e.to_string())
            }
            NodeError::Busy => Failure::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "node_busy",
                NodeError::Busy.to_string(),
            ),
            other => Failure::new(
                StatusCode::INTERNAL_SERVER_ERROR,
                "internal",
                one_line(&other),
            ),
        }
    }
}

impl From<JsonRejection> for Failure {
    fn from(r: JsonRejection) -> Failure {
        let reason = if r.status() == StatusCode::PAYLOAD_TOO_LARGE {
            "too_large"
        } else {
            "bad_request"
        };
        Failure::new(r.status(), reason, r.body_text())
    }
}

impl From<QueryRejection> for Failure {
    fn from(r: QueryRejection) -> Failure {
        Failure::new(StatusCode::BAD_REQUEST, "bad_request", r.body_text())
    }
}

type Answer<T> = Result<Json<T>, Failure>;

/// What the handlers share.
#[derive(Debug, Clone)]
pub(crate) struct Ctx {
    pub(crate) store: StoreHandle,
    pub(crate) snapshot: watch::Receiver<NetSnapshot>,
    pub(crate) events: EventHub,
    /// Commands to the swarm loop (dial).
    pub(crate) net: mpsc::Sender<NetCommand>,
    /// The node's data dir (its peer store).
    pub(crate) dir: DataDir,
}

impl Ctx {
    /// Runs a read against the node; "node busy" when its queue stays full.
    async fn read<T: Send + 'static>(
        &self,
        f: impl FnOnce(&mut LocalNode) -> T + Send + 'static,
    ) -> Result<T, Failure> {
        Ok(self.store.read_within(QUEUE_WAIT, f).await?)
    }
}

/// The routes under [`PREFIX`], recorded as they are added: the router is only built
/// through this, so its route table ([`route_table`]) is the router's own.
struct Routes {
    router: Router<Ctx>,
    table: Vec<(&'static str, &'static str)>,
}

impl Routes {
    fn get<H: axum::handler::Handler<T, Ctx>, T: 'static>(
        mut self,
        path: &'static str,
        h: H,
    ) -> Routes {
        self.table.push(("GET", path));
        self.router = self.router.route(path, get(h));
        self
    }

    fn post<H: axum::handler::Handler<T, Ctx>, T: 'static>(
        mut self,
        path: &'static str,
        h: H,
        body_limit: usize,
    ) -> Routes {
        self.table.push(("POST", path));
        let route = post(h).layer(DefaultBodyLimit::max(body_limit));
        self.router = self.router.route(path, route);
        self
    }
}

/// Every route of version 1, in the order added.
fn routes() -> Routes {
    Routes {
        router: Router::new(),
        table: Vec::new(),
    }
    .get("/status", status)
    .get("/members", members)
    .get("/members/{id}", profile)
    .get("/members/{id}/balance", balance)
    .get("/members/{id}/hours", hours)
    .get("/members/{id}/pending", pending)
    .get("/views/{family}", view)
    .get("/records", find_records)
    .get("/export/records", export_records)
    .get("/inbox", inbox)
    .get("/proposals", proposals)
    .get("/aid", aid)
    .get("/decisions", decisions)
    .get("/moderation", moderation)
    .get("/purchases", purchases)
    .get("/pools", pools)
    .get("/visibility", visibility)
    .get("/params", params)
    .get("/metrics", metrics)
    .get("/ledger", ledger)
    .post("/verify", verify, MAX_BODY)
    .get("/export", export)
    .post("/import", import, MAX_IMPORT_BODY)
    .post("/records", write, MAX_BODY)
    .post("/peers", add_peer, MAX_BODY)
    .get("/events", events::events)
    .get("/openapi.json", openapi_json)
}

/// The router's routes: `(method, path)` with the [`PREFIX`], as the router serves them.
pub fn route_table() -> Vec<(&'static str, String)> {
    routes()
        .table
        .into_iter()
        .map(|(m, p)| (m, format!("{PREFIX}{p}")))
        .collect()
}

/// The API's router over a running node's store actor, network snapshot and events.
pub(crate) fn router(ctx: Ctx) -> Router {
    Router::new()
        .nest(PREFIX, routes().router)
        .fallback(|| async { Failure::not_found("no such resource") })
        .method_not_allowed_fallback(|| async {
            Failure::new(
                StatusCode::METHOD_NOT_ALLOWED,
                "bad_request",
                "method not allowed on this resource",
            )
        })
        .layer(DefaultBodyLimit::max(MAX_BODY))
        .with_state(ctx)
}

/// The API's OpenAPI document (generated from the handlers and answer types).
pub fn openapi_document() -> utoipa::openapi::OpenApi {
    openapi::document()
}

#[utoipa::path(
    get,
    path = "/api/v1/openapi.json",
    responses((status = 200, description = "this API's OpenAPI 3.1 document", content_type = "application/json"))
)]
async fn openapi_json() -> Json<utoipa::openapi::OpenApi> {
    Json(openapi::document())
}

/// The router as served on the loopback port for the app: read-only (the app's own
/// authentication is a later step: until then writes stay on the 0600 socket), and only
/// for a `Host` naming the loopback (so a web page cannot reach it by DNS rebinding).
pub(crate) fn loopback(router: Router) -> Router {
    router.layer(axum::middleware::from_fn(loopback_guard))
}

async fn loopback_guard(req: axum::extract::Request, next: axum::middleware::Next) -> Response {
    let host = req
        .headers()
        .get("host")
        .and_then(|h| h.to_str().ok())
        .unwrap_or("");
    let name = host.rsplit_once(':').map_or(host, |(n, _)| n);
    if !matches!(name, "127.0.0.1" | "localhost") {
        return Failure::new(
            StatusCode::FORBIDDEN,
            "forbidden",
            "only 127.0.0.1 or localhost may be named as Host",
        )
        .into_response();
    }
    if !matches!(
        *req.method(),
        axum::http::Method::GET | axum::http::Method::HEAD
    ) {
        return Failure::new(
            StatusCode::FORBIDDEN,
            "read_only",
            "the loopback port is read-only; write through api.sock",
        )
        .into_response();
    }
    next.run(req).await
}

fn member_id(s: &str) -> Result<MemberId, Failure> {
    MemberId::from_hex(s).map_err(|e| {
        Failure::new(
            StatusCode::BAD_REQUEST,
            "bad_request",
            format!("bad member id {s:?}: {e}"),
        )
    })
}

fn at(q: Result<Query<At>, QueryRejection>) -> Result<i64, Failure> {
    Ok(q?.0.now.unwrap_or_else(unix_now))
}

#[utoipa::path(get, path = "/api/v1/status", responses((status = 200, description = "the node's status", body = openapi::StatusSchema), (status = 400, description = "bad request (one line in `error.detail`)", body = ErrorBody), (status = 503, description = "node busy", body = ErrorBody)))]
async fn status(AxState(ctx): AxState<Ctx>) -> Answer<Status> {
    let status = ctx.read(LocalNode::status).await?;
    Ok(Json(ctx.snapshot.borrow().fill(status)))
}

#[utoipa::path(get, path = "/api/v1/members", responses((status = 200, description = "every member, in id order", body = Vec<query::MemberRow>), (status = 400, description = "bad request (one line in `error.detail`)", body = ErrorBody), (status = 503, description = "node busy", body = ErrorBody)))]
async fn members(AxState(ctx): AxState<Ctx>) -> Answer<Vec<query::MemberRow>> {
    Ok(Json(
        ctx.read(|n| {
            let me = n.member();
            query::members(n.state(), Some(&me))
        })
        .await?,
    ))
}

#[utoipa::path(get, path = "/api/v1/members/{id}", params(("id" = String, Path, description = "member id, 64 hex characters")), responses((status = 200, description = "one member's profile", body = query::Profile), (status = 404, description = "no such member", body = ErrorBody), (status = 400, description = "bad request (one line in `error.detail`)", body = ErrorBody), (status = 503, description = "node busy", body = ErrorBody)))]
async fn profile(AxState(ctx): AxState<Ctx>, Path(id): Path<String>) -> Answer<query::Profile> {
    let id = member_id(&id)?;
    ctx.read(move |n| {
        let me = n.member();
        query::profile(n.state(), Some(&me), &id)
    })
    .await?
    .map(Json)
    .ok_or_else(|| Failure::not_found("no such member"))
}

#[utoipa::path(get, path = "/api/v1/members/{id}/balance", params(("id" = String, Path, description = "member id, 64 hex characters"), At), responses((status = 200, description = "balance and fair-exchange figures at `now`", body = query::BalanceAnswer), (status = 404, description = "no such member", body = ErrorBody), (status = 400, description = "bad request (one line in `error.detail`)", body = ErrorBody), (status = 503, description = "node busy", body = ErrorBody)))]
async fn balance(
    AxState(ctx): AxState<Ctx>,
    Path(id): Path<String>,
    q: Result<Query<At>, QueryRejection>,
) -> Answer<query::BalanceAnswer> {
    let id = member_id(&id)?;
    let now = at(q)?;
    ctx.read(move |n| {
        let me = n.member();
        query::balance(n.state(), Some(&me), &id, now)
    })
    .await?
    .map(Json)
    .ok_or_else(|| Failure::not_found("no such member"))
}

#[utoipa::path(get, path = "/api/v1/members/{id}/hours", params(("id" = String, Path, description = "member id, 64 hex characters"), HoursParams), responses((status = 200, description = "a page of the member's attestations with status: the newest `limit` before the cursor, oldest first", body = query::HoursPage), (status = 403, description = "withheld by their visibility", body = ErrorBody), (status = 404, description = "no such member", body = ErrorBody), (status = 400, description = "bad request (one line in `error.detail`)", body = ErrorBody), (status = 503, description = "node busy", body = ErrorBody)))]
async fn hours(
    AxState(ctx): AxState<Ctx>,
    Path(id): Path<String>,
    q: Result<Query<HoursParams>, QueryRejection>,
) -> Answer<query::HoursPage> {
    let q = q?.0;
    let before = match q.before.as_deref() {
        None => None,
        Some(hex) => Some(RecordId::from_hex(hex).map_err(|e| {
            Failure::new(
                StatusCode::BAD_REQUEST,
                "bad_request",
                format!("bad cursor {hex:?}: {e}"),
            )
        })?),
    };
    visible_history(ctx, &id, move |state, id| {
        query::hours_page(state, id, q.limit, before.as_ref())
            .map_err(|e| Failure::new(StatusCode::BAD_REQUEST, "bad_request", e.to_string()))
    })
    .await
}

#[utoipa::path(get, path = "/api/v1/members/{id}/pending", params(("id" = String, Path, description = "member id, 64 hex characters")), responses((status = 200, description = "attestations waiting on the member's confirmation", body = Vec<coop_model::state::Attestation>), (status = 403, description = "withheld by their visibility", body = ErrorBody), (status = 404, description = "no such member", body = ErrorBody), (status = 400, description = "bad request (one line in `error.detail`)", body = ErrorBody), (status = 503, description = "node busy", body = ErrorBody)))]
async fn pending(
    AxState(ctx): AxState<Ctx>,
    Path(id): Path<String>,
) -> Answer<Vec<coop_model::state::Attestation>> {
    visible_history(ctx, &id, |state, id| Ok(query::pending(state, id))).await
}

/// `f` of a member whose history the asking member may see: 404 for no such member, 403
/// `withheld` when their visibility keeps it from the asker.
async fn visible_history<T: Send + 'static>(
    ctx: Ctx,
    id: &str,
    f: impl FnOnce(&coop_model::State, &MemberId) -> Result<T, Failure> + Send + 'static,
) -> Answer<T> {
    let id = member_id(id)?;
    ctx.read(move |n| {
        let me = n.member();
        let state = n.state();
        if !state.members.contains_key(&id) {
            return Err(Failure::not_found("no such member"));
        }
        if !state.can_see(Some(&me), &id) {
            return Err(Failure::new(
                StatusCode::FORBIDDEN,
                "withheld",
                "this member's visibility keeps their history from you",
            ));
        }
        f(state, &id)
    })
    .await?
    .map(Json)
}

#[utoipa::path(get, path = "/api/v1/views/{family}", params(("family" = String, Path, description = "members, hours, proposals, aid, governance, purchases or pools")), responses((status = 200, description = "what a command of the family needs", body = query::FamilyView), (status = 404, description = "no such family (the detail lists them)", body = ErrorBody), (status = 400, description = "bad request (one line in `error.detail`)", body = ErrorBody), (status = 503, description = "node busy", body = ErrorBody)))]
async fn view(AxState(ctx): AxState<Ctx>, Path(family): Path<String>) -> Answer<query::FamilyView> {
    let family: query::Family = family
        .parse()
        .map_err(|e: String| Failure::new(StatusCode::NOT_FOUND, "not_found", e))?;
    Ok(Json(
        ctx.read(move |n| {
            let me = n.member();
            query::family(n.state(), Some(&me), family)
        })
        .await?,
    ))
}

#[utoipa::path(get, path = "/api/v1/records", params(RecordsParams), responses((status = 200, description = "records by id prefix, at most 11, in total order", body = Vec<query::RecordRef>), (status = 400, description = "bad request (one line in `error.detail`)", body = ErrorBody), (status = 503, description = "node busy", body = ErrorBody)))]
async fn find_records(
    AxState(ctx): AxState<Ctx>,
    q: Result<Query<RecordsParams>, QueryRejection>,
) -> Answer<Vec<query::RecordRef>> {
    let p = q?.0;
    let kinds = p.kinds().map_err(|e| Failure(StatusCode::BAD_REQUEST, e))?;
    ctx.read(move |n| query::record_matches_in_state(n.state(), &kinds, &p.prefix))
        .await?
        .map(Json)
        .map_err(|e| Failure::new(StatusCode::BAD_REQUEST, "bad_request", e.to_string()))
}

#[utoipa::path(get, path = "/api/v1/export/records", params(ExportParams), responses((status = 200, description = "what `coop export` writes for you", body = query::ExportAnswer), (status = 400, description = "bad request (one line in `error.detail`)", body = ErrorBody), (status = 503, description = "node busy", body = ErrorBody)))]
async fn export_records(
    AxState(ctx): AxState<Ctx>,
    q: Result<Query<ExportParams>, QueryRejection>,
) -> Answer<query::ExportAnswer> {
    let all = q?.0.all;
    Ok(Json(
        ctx.read(move |n| {
            let me = n.member();
            let envelopes = n.export();
            query::export(n.state(), &envelopes, Some(&me), all)
        })
        .await?,
    ))
}

#[utoipa::path(get, path = "/api/v1/inbox", params(At), responses((status = 200, description = "what waits on you at `now`", body = query::Inbox), (status = 400, description = "bad request (one line in `error.detail`)", body = ErrorBody), (status = 503, description = "node busy", body = ErrorBody)))]
async fn inbox(
    AxState(ctx): AxState<Ctx>,
    q: Result<Query<At>, QueryRejection>,
) -> Answer<query::Inbox> {
    let now = at(q)?;
    Ok(Json(
        ctx.read(move |n| {
            let me = n.member();
            query::inbox(n.state(), &me, now)
        })
        .await?,
    ))
}

#[utoipa::path(get, path = "/api/v1/proposals", responses((status = 200, description = "Support Point proposals", body = Vec<coop_model::state::Proposal>), (status = 400, description = "bad request (one line in `error.detail`)", body = ErrorBody), (status = 503, description = "node busy", body = ErrorBody)))]
async fn proposals(AxState(ctx): AxState<Ctx>) -> Answer<Vec<coop_model::state::Proposal>> {
    Ok(Json(ctx.read(|n| query::proposals(n.state())).await?))
}

#[utoipa::path(get, path = "/api/v1/aid", responses((status = 200, description = "mutual-aid requests with offers", body = Vec<coop_model::state::AidRequest>), (status = 400, description = "bad request (one line in `error.detail`)", body = ErrorBody), (status = 503, description = "node busy", body = ErrorBody)))]
async fn aid(AxState(ctx): AxState<Ctx>) -> Answer<Vec<coop_model::state::AidRequest>> {
    Ok(Json(ctx.read(|n| query::aid(n.state())).await?))
}

#[utoipa::path(get, path = "/api/v1/decisions", responses((status = 200, description = "governance decisions", body = Vec<coop_model::state::Decision>), (status = 400, description = "bad request (one line in `error.detail`)", body = ErrorBody), (status = 503, description = "node busy", body = ErrorBody)))]
async fn decisions(AxState(ctx): AxState<Ctx>) -> Answer<Vec<coop_model::state::Decision>> {
    Ok(Json(ctx.read(|n| query::decisions(n.state())).await?))
}

#[utoipa::path(get, path = "/api/v1/moderation", responses((status = 200, description = "reports and hidden records", body = query::Moderation), (status = 400, description = "bad request (one line in `error.detail`)", body = ErrorBody), (status = 503, description = "node busy", body = ErrorBody)))]
async fn moderation(AxState(ctx): AxState<Ctx>) -> Answer<query::Moderation> {
    Ok(Json(ctx.read(|n| query::moderation(n.state())).await?))
}

#[utoipa::path(get, path = "/api/v1/purchases", responses((status = 200, description = "collective purchases, rounds listed", body = Vec<query::PurchaseAnswer>), (status = 400, description = "bad request (one line in `error.detail`)", body = ErrorBody), (status = 503, description = "node busy", body = ErrorBody)))]
async fn purchases(AxState(ctx): AxState<Ctx>) -> Answer<Vec<query::PurchaseAnswer>> {
    Ok(Json(ctx.read(|n| query::purchases(n.state())).await?))
}

#[utoipa::path(get, path = "/api/v1/pools", responses((status = 200, description = "pools, contributions, applications and relief", body = query::Pools), (status = 400, description = "bad request (one line in `error.detail`)", body = ErrorBody), (status = 503, description = "node busy", body = ErrorBody)))]
async fn pools(AxState(ctx): AxState<Ctx>) -> Answer<query::Pools> {
    Ok(Json(ctx.read(|n| query::pools(n.state())).await?))
}

#[utoipa::path(get, path = "/api/v1/visibility", responses((status = 200, description = "each member's visibility setting", body = Vec<query::VisibilityRow>), (status = 400, description = "bad request (one line in `error.detail`)", body = ErrorBody), (status = 503, description = "node busy", body = ErrorBody)))]
async fn visibility(AxState(ctx): AxState<Ctx>) -> Answer<Vec<query::VisibilityRow>> {
    Ok(Json(
        ctx.read(|n| {
            let me = n.member();
            query::visibility(n.state(), Some(&me))
        })
        .await?,
    ))
}

#[utoipa::path(get, path = "/api/v1/params", responses((status = 200, description = "parameters in force and their history", body = query::ParamsAnswer), (status = 400, description = "bad request (one line in `error.detail`)", body = ErrorBody), (status = 503, description = "node busy", body = ErrorBody)))]
async fn params(AxState(ctx): AxState<Ctx>) -> Answer<query::ParamsAnswer> {
    Ok(Json(ctx.read(|n| query::params(n.state())).await?))
}

#[utoipa::path(get, path = "/api/v1/metrics", params(MetricsQuery), responses((status = 200, description = "community metrics", body = coop_model::metrics::Metrics), (status = 400, description = "bad request (one line in `error.detail`)", body = ErrorBody), (status = 503, description = "node busy", body = ErrorBody)))]
async fn metrics(
    AxState(ctx): AxState<Ctx>,
    q: Result<Query<MetricsQuery>, QueryRejection>,
) -> Answer<coop_model::metrics::Metrics> {
    let q = q?.0;
    let now = q.now.unwrap_or_else(unix_now);
    let since = match q.since {
        Some(s) => Some(s.parse::<Day>().map_err(|e| {
            Failure::new(
                StatusCode::BAD_REQUEST,
                "bad_request",
                format!("bad since {s:?}: {e}"),
            )
        })?),
        None => None,
    };
    Ok(Json(
        ctx.read(move |n| query::metrics(n.state(), now, since))
            .await?,
    ))
}

/// Validates URL parameters into a ledger query (`kind` must name a record kind).
pub fn ledger_query(p: LedgerParams) -> Result<LedgerQuery, ApiError> {
    let kind = match p.kind.as_deref() {
        Some(k) => Some(query::parse_kind(k).map_err(|detail| ApiError {
            reason: "unknown_kind".into(),
            detail,
            rejection: None,
        })?),
        None => None,
    };
    Ok(LedgerQuery {
        kind,
        refused: p.refused,
        all: p.all,
        limit: p.limit,
        before: p.before,
    })
}

#[utoipa::path(get, path = "/api/v1/ledger", params(LedgerParams), responses((status = 200, description = "a page of the ledger, newest first", body = query::LedgerPage), (status = 400, description = "bad request (one line in `error.detail`)", body = ErrorBody), (status = 503, description = "node busy", body = ErrorBody)))]
async fn ledger(
    AxState(ctx): AxState<Ctx>,
    q: Result<Query<LedgerParams>, QueryRejection>,
) -> Answer<query::LedgerPage> {
    let q = ledger_query(q?.0).map_err(|e| Failure(StatusCode::BAD_REQUEST, e))?;
    Ok(Json(
        ctx.read(move |n| {
            let me = n.member();
            query::ledger(n.state(), Some(&me), &q)
        })
        .await?,
    ))
}

#[utoipa::path(post, path = "/api/v1/verify", responses((status = 200, description = "re-verified every envelope and re-derived", body = openapi::VerifyReportSchema), (status = 500, description = "the store failed", body = ErrorBody), (status = 400, description = "bad request (one line in `error.detail`)", body = ErrorBody), (status = 503, description = "node busy", body = ErrorBody)))]
async fn verify(AxState(ctx): AxState<Ctx>) -> Answer<VerifyReport> {
    Ok(Json(ctx.read(LocalNode::verify).await??))
}

#[utoipa::path(get, path = "/api/v1/export", responses((status = 200, description = "every accepted envelope, hex, causal order", body = Envelopes), (status = 400, description = "bad request (one line in `error.detail`)", body = ErrorBody), (status = 503, description = "node busy", body = ErrorBody)))]
async fn export(AxState(ctx): AxState<Ctx>) -> Answer<Envelopes> {
    Ok(Json(ctx.read(|n| Envelopes::encode(&n.export())).await?))
}

#[utoipa::path(post, path = "/api/v1/import", request_body = Envelopes, responses((status = 200, description = "what the import did", body = openapi::ImportSummarySchema), (status = 413, description = "body over 256 MiB", body = ErrorBody), (status = 400, description = "bad request (one line in `error.detail`)", body = ErrorBody), (status = 503, description = "node busy", body = ErrorBody)))]
async fn import(
    AxState(ctx): AxState<Ctx>,
    body: Result<Json<Envelopes>, JsonRejection>,
) -> Answer<ImportSummary> {
    let Json(body) = body?;
    let mut decoded = Vec::with_capacity(body.envelopes.len());
    let mut bad = Vec::new();
    for h in &body.envelopes {
        match hex::decode(h).ok().and_then(|b| Envelope::decode(&b).ok()) {
            Some(e) => decoded.push(e),
            None => bad.push(Rejection {
                id: None,
                device: None,
                member: None,
                reason: coop_model::RejectReason::Malformed,
                detail: "not a hex-encoded envelope".into(),
            }),
        }
    }
    let mut summary = ctx.store.import_within(QUEUE_WAIT, decoded).await?;
    summary.rejected.extend(bad);
    Ok(Json(summary))
}

/// Remembers a peer address (source manual, in the peer store the node redials at every
/// start) and dials it now through the swarm loop.
#[utoipa::path(post, path = "/api/v1/peers", request_body = AddPeer, responses((status = 200, description = "remembered and dialling", body = PeerAdded), (status = 400, description = "bad request (one line in `error.detail`)", body = ErrorBody), (status = 503, description = "node busy", body = ErrorBody)))]
async fn add_peer(
    AxState(ctx): AxState<Ctx>,
    body: Result<Json<AddPeer>, JsonRejection>,
) -> Answer<PeerAdded> {
    let Json(req) = body?;
    let addr = peerstore::parse_dialable(&req.addr)
        .map_err(|e| Failure::new(StatusCode::BAD_REQUEST, "bad_request", e.to_string()))?;
    let (dir, stored) = (ctx.dir.clone(), addr.clone());
    let (added, _) = tokio::task::spawn_blocking(move || {
        dir.update_peer_book(|b| b.add(&stored, Source::Manual))
    })
    .await
    .map_err(|e| NodeError::api_msg(format!("the peer store update stopped: {e}")))??;
    let (reply, dialed) = oneshot::channel();
    ctx.net
        .send_timeout(
            NetCommand::Dial {
                addr: addr.clone(),
                reply,
            },
            QUEUE_WAIT,
        )
        .await
        .map_err(|e| match e {
            mpsc::error::SendTimeoutError::Timeout(_) => NodeError::Busy,
            mpsc::error::SendTimeoutError::Closed(_) => {
                NodeError::network_msg("the network has stopped")
            }
        })?;
    dialed
        .await
        .map_err(|_| NodeError::network_msg("the network has stopped"))??;
    Ok(Json(PeerAdded {
        addr: addr.to_string(),
        added,
        dialing: true,
    }))
}

#[utoipa::path(post, path = "/api/v1/records", request_body = WriteRequest, responses((status = 200, description = "written: durable and published", body = Written), (status = 422, description = "the ledger refused it; nothing was written", body = ErrorBody), (status = 413, description = "body over 1 MiB", body = ErrorBody), (status = 400, description = "bad request (one line in `error.detail`)", body = ErrorBody), (status = 503, description = "node busy", body = ErrorBody)))]
async fn write(
    AxState(ctx): AxState<Ctx>,
    body: Result<Json<WriteRequest>, JsonRejection>,
) -> Answer<Written> {
    let Json(req) = body?;
    let now = req.now.unwrap_or_else(unix_now);
    let id = ctx.store.submit_within(QUEUE_WAIT, req.record, now).await?;
    Ok(Json(Written { id }))
}

#[cfg(test)]
mod tests;
