//! The API's machine-readable description: an OpenAPI 3.1 document generated from the
//! handlers' `#[utoipa::path]` attributes and the answer types' schemas, served at
//! `GET /api/v1/openapi.json`. A test walks the router's route table and checks every
//! route is described here (so a route added without a description fails it).

use std::borrow::Cow;

use utoipa::openapi::schema::{ObjectBuilder, Schema, Type};
use utoipa::openapi::RefOr;
use utoipa::{OpenApi, PartialSchema, ToSchema};

/// The document's root: every path of the router, and the components they name.
#[derive(Debug, OpenApi)]
#[openapi(
    info(
        title = "coop node local API",
        version = "1",
        description = "The local API of a running coop node (docs/API.md): on <data dir>/api.sock \
                       for the coop command, read-only on 127.0.0.1:<port> for the app."
    ),
    paths(
        super::status,
        super::members,
        super::profile,
        super::balance,
        super::hours,
        super::pending,
        super::view,
        super::find_records,
        super::export_records,
        super::inbox,
        super::proposals,
        super::aid,
        super::decisions,
        super::moderation,
        super::purchases,
        super::pools,
        super::visibility,
        super::params,
        super::metrics,
        super::ledger,
        super::verify,
        super::export,
        super::import,
        super::write,
        super::add_peer,
        super::events::events,
        super::openapi_json,
    )
)]
pub(super) struct ApiDoc;

/// The document as served.
pub(super) fn document() -> utoipa::openapi::OpenApi {
    ApiDoc::openapi()
}

/// An answer whose type is defined outside the API's schema-derived types (a node
/// snapshot, a verification or import report): described as an object, with
/// where its fields are documented.
macro_rules! described_object {
    ($t:ident, $name:literal, $what:literal) => {
        #[doc = $what]
        #[derive(Debug)]
        pub(super) struct $t;
        impl PartialSchema for $t {
            fn schema() -> RefOr<Schema> {
                ObjectBuilder::new()
                    .schema_type(Type::Object)
                    .description(Some($what))
                    .into()
            }
        }
        impl ToSchema for $t {
            fn name() -> Cow<'static, str> {
                Cow::Borrowed($name)
            }
        }
    };
}

described_object!(
    StatusSchema,
    "Status",
    "The node's status: member, device, community, membership, change counts, heads, \
     digest, forked devices, running, peers, listen addresses, refusals, mdns and reach \
     (fields in docs/API.md, `GET /status`; the node's `Status` type)."
);
described_object!(
    VerifyReportSchema,
    "VerifyReport",
    "What re-verification found: envelopes checked, signatures, the digest derived from \
     scratch and whether it equals the incremental one (the node's `VerifyReport`)."
);
described_object!(
    ImportSummarySchema,
    "ImportSummary",
    "What an import did: `accepted`, `duplicates`, `pending` and `rejected` (a list of \
     rejections: `{ id, device, member, reason, detail }`)."
);
