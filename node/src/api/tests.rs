//! The API's contract without a socket: every route of the router is described in the
//! OpenAPI document (and every described path is a route), and every answer type
//! round-trips through JSON, built from a real ledger with every family of record.

use std::fmt::Debug;

use coop_model::query::{self, Family, LedgerQuery};
use coop_model::record::{self, DecisionAction, Urgency};
use coop_model::{
    CommunityId, Day, DeviceKey, IdentityKey, Ledger, Minutes, Params, Record, RecordId, State,
};
use serde::de::DeserializeOwned;
use serde::Serialize;

use super::*;

const T0: i64 = 1_790_000_000;

fn round_trips<T: Serialize + DeserializeOwned + PartialEq + Debug>(value: &T) {
    let json = serde_json::to_string(value).expect("serializes");
    let back: T = serde_json::from_str(&json).expect("deserializes");
    assert_eq!(&back, value, "{json}");
}

/// A founder and a neighbour who attest, confirm, ask for and give aid, and open a
/// decision; the ledger and the ids.
fn community() -> (Ledger, coop_model::MemberId, coop_model::MemberId) {
    let (ana, ana_dev) = (
        IdentityKey::from_seed([1; 32]),
        DeviceKey::from_seed([2; 32]),
    );
    let (ben, ben_dev) = (
        IdentityKey::from_seed([3; 32]),
        DeviceKey::from_seed([4; 32]),
    );
    let (mut l, genesis) =
        Ledger::found(&ana, &ana_dev, "Elm Street", "Ana", Params::default(), T0).expect("found");
    let community = CommunityId(genesis.record_id().expect("an id").0);
    let mut t = T0;
    let mut write = |l: &mut Ledger, key: &DeviceKey, r: Record| -> RecordId {
        t += 60;
        l.author(key, r, t)
            .expect("counts")
            .record_id()
            .expect("an id")
    };
    write(
        &mut l,
        &ben_dev,
        Record::from(record::Join {
            member: ben.member_id(),
            cert: ben.certify(&community, &ben_dev.device_id()),
            display_name: "Ben".into(),
        }),
    );
    write(
        &mut l,
        &ana_dev,
        Record::Vouch(record::Vouch {
            member: ben.member_id(),
        }),
    );
    for minutes in [60, 45] {
        let a = write(
            &mut l,
            &ana_dev,
            Record::Attest(record::Attest {
                to: ben.member_id(),
                minutes: Minutes(minutes),
                service: "fixed a bicycle".into(),
                category: "repairs".into(),
                date: Day::from_unix(T0),
            }),
        );
        if minutes == 60 {
            write(
                &mut l,
                &ben_dev,
                Record::Confirm(record::Confirm { attestation: a }),
            );
        }
    }
    let request = write(
        &mut l,
        &ben_dev,
        Record::from(record::AidRequest {
            category: "time".into(),
            title: "moving a sofa".into(),
            description: "up two floors, on Saturday".into(),
            urgency: Urgency::Medium,
            needed_by: None,
            location: None,
        }),
    );
    write(
        &mut l,
        &ana_dev,
        Record::AidOffer(record::AidOffer {
            request,
            message: "I can help on Saturday".into(),
            availability: "weekends".into(),
        }),
    );
    write(
        &mut l,
        &ana_dev,
        Record::from(record::Decision {
            title: "paint the shed".into(),
            description: String::new(),
            closes_at: T0 + 86_400,
            action: DecisionAction::General,
        }),
    );
    (l, ana.member_id(), ben.member_id())
}

#[test]
fn every_route_is_described_in_the_openapi_document_and_every_description_is_a_route() {
    let doc = openapi_document();
    let table = route_table();
    assert!(table.len() > 20, "{table:?}");
    for (method, path) in &table {
        let item =
            doc.paths.paths.get(path).unwrap_or_else(|| {
                panic!("{method} {path} is a route the document does not describe")
            });
        let op = match *method {
            "GET" => item.get.as_ref(),
            "POST" => item.post.as_ref(),
            other => panic!("a route with method {other}"),
        };
        let op = op.unwrap_or_else(|| panic!("{method} {path}: no operation described"));
        assert!(
            op.responses.responses.contains_key("200"),
            "{method} {path}: no answer described"
        );
    }
    for (path, item) in &doc.paths.paths {
        for (method, op) in [("GET", &item.get), ("POST", &item.post)] {
            if op.is_some() {
                assert!(
                    table.iter().any(|(m, p)| *m == method && p == path),
                    "{method} {path} is described but is no route"
                );
            }
        }
    }
    // Every schema an answer names is in the document's components.
    let json = serde_json::to_value(&doc).expect("the document serializes");
    let schemas = json["components"]["schemas"]
        .as_object()
        .expect("components");
    for name in [
        "Profile",
        "LedgerPage",
        "Inbox",
        "FamilyView",
        "ErrorBody",
        "Attestation",
    ] {
        assert!(schemas.contains_key(name), "no schema {name}");
    }
    let text = json.to_string();
    for reference in text.split("\"#/components/schemas/").skip(1) {
        let name = reference.split('"').next().unwrap_or_default();
        assert!(
            schemas.contains_key(name),
            "a reference to a missing schema {name}"
        );
    }
}

#[test]
fn every_answer_type_round_trips_through_json() {
    let (mut l, ana, ben) = community();
    let now = T0 + 3_600;
    let envelopes: Vec<_> = l.envelopes().collect();
    let state: &State = l.state();
    let me = Some(&ana);
    round_trips(&query::members(state, me));
    round_trips(&query::profile(state, me, &ben).expect("a member"));
    round_trips(&query::balance(state, me, &ben, now).expect("a member"));
    round_trips(&query::hours(state, &ben));
    round_trips(&query::hours_page(state, &ben, Some(1), None).expect("a page"));
    round_trips(&query::pending(state, &ben));
    round_trips(&query::inbox(state, &ana, now));
    round_trips(&query::inbox(state, &ben, now));
    round_trips(&query::proposals(state));
    round_trips(&query::aid(state));
    round_trips(&query::decisions(state));
    round_trips(&query::moderation(state));
    round_trips(&query::purchases(state));
    round_trips(&query::pools(state));
    round_trips(&query::visibility(state, me));
    round_trips(&query::params(state));
    round_trips(&query::metrics(state, now, None));
    round_trips(&query::ledger(
        state,
        me,
        &LedgerQuery {
            limit: Some(3),
            ..LedgerQuery::default()
        },
    ));
    for family in Family::ALL {
        round_trips(&query::family(state, me, family));
    }
    let some_id = state.log[1].id.to_hex();
    round_trips(&query::record_matches_in_state(state, &[], &some_id[..6]).expect("an id"));
    round_trips(&query::export(state, &envelopes, me, false));
    // The answers of the API module itself.
    round_trips(&ErrorBody {
        error: ApiError {
            reason: "not_found".into(),
            detail: "no such member".into(),
            rejection: None,
        },
    });
    round_trips(&Written {
        id: state.log[1].id,
    });
    round_trips(&PeerAdded {
        addr: "/ip4/127.0.0.1/tcp/4001".into(),
        added: true,
        dialing: false,
    });
    round_trips(&Envelopes::encode(&envelopes));
    round_trips(&WriteRequest {
        record: Record::Vouch(record::Vouch { member: ben }),
        now: Some(now),
    });
    round_trips(&ImportSummary::default());
    // What the document says an answer holds is what it holds: the profile's fields.
    let doc = serde_json::to_value(openapi_document()).expect("serializes");
    let props = doc["components"]["schemas"]["Profile"]["properties"]
        .as_object()
        .expect("Profile's properties");
    let answer = serde_json::to_value(query::profile(state, me, &ben)).expect("serializes");
    let fields = answer.as_object().expect("an object");
    assert_eq!(
        props.keys().collect::<Vec<_>>(),
        fields.keys().collect::<Vec<_>>()
    );
}
