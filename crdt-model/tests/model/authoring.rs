//! Authoring at length: a long run of changes written one by one through `Ledger::author`
//! (past the point where the document's batches grow with the ledger) reaches the document
//! whole and verifies on another replica; a certificate's signature is still checked when
//! its own device writes it.

use automerge::{ReadDoc, ROOT};
use coop_model::*;

use crate::support::*;

/// More than `DOC_BATCH × DOC_BATCH_SHARE` (16,384) changes: the document's batches are a
/// share of the ledger by the end.
const LONG_RUN: usize = 17_000;

#[test]
fn a_long_run_of_authored_changes_reaches_the_document_and_verifies_elsewhere() {
    let mut town = Town::found(Params::default(), &["alice", "bob"]);
    let (alice, bob) = (town.id("alice"), town.id("bob"));
    let mut written = Vec::new();
    while town.ledger.len() < LONG_RUN {
        let i = town.ledger.len();
        let (from, to) = if i.is_multiple_of(2) {
            ("alice", bob)
        } else {
            ("bob", alice)
        };
        let date = Day::from_unix(town.now()).to_string();
        written.push(town.write(from, attest_on(to, 30, &format!("job {i}"), &date)));
        // The document answers in full at any point, whatever waits to be applied.
        if i == 5_000 || i == 16_500 {
            assert_eq!(town.ledger.doc().length(ROOT), town.ledger.len());
        }
    }
    let n = town.ledger.len();
    let heads: Vec<RecordId> = town.ledger.heads();
    let doc = town.ledger.doc();
    assert_eq!(doc.length(ROOT), n, "one root key per change");
    let doc_heads: Vec<RecordId> = doc.get_heads().into_iter().map(RecordId::from).collect();
    assert_eq!(doc_heads, heads, "the document holds exactly the ledger");
    for id in written.iter().step_by(997) {
        assert_eq!(town.status(id), Ok(()), "every authored record counts");
    }

    // Another replica verifies every signature (the author did not verify its own again)
    // and derives the same state and document.
    let mut other = Ledger::new(town.community());
    let out = other.ingest(town.ledger.envelopes().collect::<Vec<_>>());
    assert!(out.rejected.is_empty(), "{:?}", out.rejected.first());
    assert_eq!(other.len(), n);
    assert_eq!(
        other.state().canonical_json().expect("serializes"),
        town.ledger.state().canonical_json().expect("serializes")
    );
    assert_eq!(other.doc().save(), town.ledger.doc().save());
}

#[test]
fn authoring_a_certificate_still_checks_its_identity_signature() {
    let mut town = Town::found(Params::default(), &["alice", "bob", "carol"]);
    let bob = town.id("bob");
    // Carol's identity key certifies a device as bob's; the device writes it itself.
    let forged = Record::Device(Box::new(record::Device {
        member: bob,
        cert: town
            .person("carol")
            .identity
            .certify(&town.community(), &town.dev("carol", 7).device_id()),
        label: None,
        identity: None,
    }));
    let before = town.ledger.len();
    let refusal = town
        .try_write_on("carol", 7, forged)
        .expect_err("a certificate bob's identity key did not sign");
    assert_eq!(refusal.reason, RejectReason::BadCertificate);
    assert_eq!(town.ledger.len(), before, "nothing written");
    // The same device certified by carol as her own is written.
    town.add_device("carol", 7);
    assert_eq!(town.ledger.len(), before + 1);
}
