//! OpenAPI schemas (feature `openapi`) of the types whose JSON form is written by hand:
//! ids as 64 lowercase hex characters, days as `YYYY-MM-DD`, amounts as integers. The
//! other answer types derive theirs (`utoipa::ToSchema`) beside their serde derives.

use std::borrow::Cow;

use utoipa::openapi::schema::{KnownFormat, ObjectBuilder, Schema, SchemaFormat, Type};
use utoipa::openapi::RefOr;
use utoipa::{PartialSchema, ToSchema};

use crate::ids::{CommunityId, Day, DeviceId, DocId, MemberId, Minutes, Points, RecordId};
use crate::record::{Kind, Record};

fn hex_id(what: &str) -> RefOr<Schema> {
    ObjectBuilder::new()
        .schema_type(Type::String)
        .pattern(Some("^[0-9a-f]{64}$"))
        .description(Some(format!(
            "{what}: 32 bytes as 64 lowercase hex characters"
        )))
        .into()
}

fn integer(what: &str) -> RefOr<Schema> {
    ObjectBuilder::new()
        .schema_type(Type::Integer)
        .format(Some(SchemaFormat::KnownFormat(KnownFormat::Int64)))
        .description(Some(what))
        .into()
}

macro_rules! schema {
    ($t:ty, $name:literal, $schema:expr) => {
        impl PartialSchema for $t {
            fn schema() -> RefOr<Schema> {
                $schema
            }
        }
        impl ToSchema for $t {
            fn name() -> Cow<'static, str> {
                Cow::Borrowed($name)
            }
        }
    };
}

schema!(
    MemberId,
    "MemberId",
    hex_id("a member (their identity key)")
);
schema!(DeviceId, "DeviceId", hex_id("a device (its key)"));
schema!(RecordId, "RecordId", hex_id("a record (its change hash)"));
schema!(
    CommunityId,
    "CommunityId",
    hex_id("a community (its genesis)")
);
schema!(DocId, "DocId", hex_id("a document"));
schema!(Minutes, "Minutes", integer("whole minutes"));
schema!(Points, "Points", integer("whole Support Points"));
schema!(
    Day,
    "Day",
    ObjectBuilder::new()
        .schema_type(Type::String)
        .format(Some(SchemaFormat::KnownFormat(KnownFormat::Date)))
        .description(Some("a calendar day, YYYY-MM-DD"))
        .into()
);

// A record: an object tagged by `kind`; each kind's fields are in docs/PROTOCOL.md §4.
schema!(
    Record,
    "Record",
    ObjectBuilder::new()
        .schema_type(Type::Object)
        .description(Some(
            "a record as JSON, tagged by `kind`; the other fields are those of its kind \
             (docs/PROTOCOL.md §4), e.g. `{\"kind\": \"attest\", \"to\": …, \"minutes\": 60, …}`"
        ))
        .property(
            "kind",
            ObjectBuilder::new()
                .schema_type(Type::String)
                .enum_values(Some(Kind::ALL.iter().map(|k| k.as_str()))),
        )
        .required("kind")
        .into()
);
