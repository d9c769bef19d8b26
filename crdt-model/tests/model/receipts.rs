//! Two-party hour receipts (docs/RULES.md R2): exported from a ledger, verified with nothing else.

use coop_model::receipt::ReceiptPart;
use coop_model::*;

use super::support::*;

/// Bob attests 3 h of car repair to alice, who confirms; carol attests 1 h to alice, who
/// declines. Returns the town and the two attestations.
fn town() -> (Town, RecordId, RecordId) {
    let mut town = Town::found(Params::default(), &["alice", "bob", "carol"]);
    let alice = town.id("alice");
    let a = town.write("bob", attest(alice, 180, "car repair"));
    town.write("alice", confirm(a));
    let b = town.write("carol", attest(alice, 60, "hedge trimming"));
    town.write("alice", decline(b));
    (town, a, b)
}

#[test]
fn a_confirmed_receipt_verifies_on_its_own() {
    let (town, a, _) = town();
    let receipt = town.ledger.receipt(&a).expect("settled");
    let summary = receipt.verify().expect("valid");
    assert_eq!(summary.provider, town.id("bob"));
    assert_eq!(summary.receiver, town.id("alice"));
    assert_eq!(summary.minutes, Minutes(180));
    assert_eq!(summary.service, "car repair");
    assert_eq!(summary.date, day("2026-11-01"));
    assert!(summary.confirmed);
    assert_eq!(summary.attestation, a);
    assert_eq!(summary.community, town.community());
    // alice is the founder: her certificate is the genesis itself.
    assert_eq!(receipt.receiver_cert, town.genesis);

    // The JSON form carries everything needed, and nothing else is consulted.
    let json = receipt.to_json();
    let back = Receipt::from_json(&json).expect("parses");
    assert_eq!(back, receipt);
    assert_eq!(back.verify(), Ok(summary));
}

#[test]
fn a_declined_receipt_verifies_as_declined() {
    let (town, _, b) = town();
    let summary = town
        .ledger
        .receipt(&b)
        .expect("settled")
        .verify()
        .expect("valid");
    assert!(!summary.confirmed);
    assert_eq!(summary.provider, town.id("carol"));
}

#[test]
fn receipts_name_the_certificates_of_further_devices() {
    let (mut town, _, _) = town();
    town.add_device("bob", 1);
    town.add_device("alice", 2);
    let alice = town.id("alice");
    let a = town.write_on("bob", 1, attest(alice, 45, "bike lights"));
    town.write_on("alice", 2, confirm(a));
    let receipt = town.ledger.receipt(&a).expect("settled");
    assert_eq!(receipt.verify().map(|s| s.minutes), Ok(Minutes(45)));
    for cert in [&receipt.provider_cert, &receipt.receiver_cert] {
        let (_, record) = town.ledger.get(&rid(cert)).expect("held");
        assert_eq!(record.kind(), "device");
    }
}

#[test]
fn there_is_no_receipt_for_a_pending_or_refused_settlement() {
    let (mut town, _, _) = town();
    let bob = town.id("bob");
    let pending = town.write("carol", attest(bob, 30, "pending help"));
    assert!(town.ledger.receipt(&pending).is_none());
    // A confirmation refused below the floor settles nothing.
    let big = town.write("carol", attest(bob, 1_000, "too much"));
    let refused = town.force("bob", 0, &confirm(big));
    assert_eq!(town.status(&refused), Err(RejectReason::BelowFloor));
    assert!(town.ledger.receipt(&big).is_none());
    assert!(town.ledger.receipt(&RecordId([7; 32])).is_none());
}

fn part_mut(r: &mut Receipt, part: ReceiptPart) -> &mut Envelope {
    match part {
        ReceiptPart::Attestation => &mut r.attestation,
        ReceiptPart::Settlement => &mut r.settlement,
        ReceiptPart::ProviderCertificate => &mut r.provider_cert,
        _ => &mut r.receiver_cert,
    }
}

const PARTS: [ReceiptPart; 4] = [
    ReceiptPart::Attestation,
    ReceiptPart::Settlement,
    ReceiptPart::ProviderCertificate,
    ReceiptPart::ReceiverCertificate,
];

#[test]
fn a_tampered_byte_anywhere_is_refused() {
    let (town, a, _) = town();
    let good = town.ledger.receipt(&a).expect("settled");
    for part in PARTS {
        let len = part_mut(&mut good.clone(), part).change.len();
        for at in [0, 5, 8, 20, len / 2, len - 1] {
            let mut r = good.clone();
            part_mut(&mut r, part).change[at] ^= 0x10;
            match r.verify() {
                Err(ReceiptError::Refused { part: p, .. }) => assert_eq!(p, part),
                other => panic!("{part} byte {at}: {other:?}"),
            }
        }
        let mut r = good.clone();
        part_mut(&mut r, part).signature[10] ^= 1;
        match r.verify() {
            Err(ReceiptError::Refused { part: p, rejection }) => {
                assert_eq!(p, part);
                assert_eq!(rejection.reason, RejectReason::BadSignature);
            }
            other => panic!("{part} signature: {other:?}"),
        }
    }
    // Tampering with the JSON text is caught the same way.
    let json = good.to_json();
    let at = json.find("\"settlement\": \"").expect("field") + 15 + 400;
    let mut bytes = json.into_bytes();
    bytes[at] = if bytes[at] == b'0' { b'1' } else { b'0' };
    let tampered = String::from_utf8(bytes).expect("still text");
    let r = Receipt::from_json(&tampered).expect("still parses");
    assert!(matches!(
        r.verify(),
        Err(ReceiptError::Refused {
            part: ReceiptPart::Settlement,
            ..
        })
    ));
}

#[test]
fn a_swapped_settlement_is_refused() {
    // The settlement of another attestation between the same two members, and one between
    // other members entirely.
    let (mut town, a, b) = town();
    let alice = town.id("alice");
    let c = town.write("bob", attest(alice, 30, "a second repair"));
    town.write("alice", confirm(c));
    let good = town.ledger.receipt(&a).expect("settled");
    let other = town.ledger.receipt(&c).expect("settled");
    let swapped = Receipt {
        settlement: other.settlement.clone(),
        ..good.clone()
    };
    assert_eq!(
        swapped.verify(),
        Err(ReceiptError::SettlementMismatch {
            expected: a,
            found: c,
        })
    );
    // An attestation in the settlement's place.
    let wrong_kind = Receipt {
        settlement: other.attestation.clone(),
        receiver_cert: other.provider_cert.clone(),
        ..good.clone()
    };
    assert!(matches!(
        wrong_kind.verify(),
        Err(ReceiptError::WrongKind {
            part: ReceiptPart::Settlement,
            ..
        })
    ));
    // Certificates swapped: each names a device that wrote something else.
    let certs = Receipt {
        provider_cert: good.receiver_cert.clone(),
        receiver_cert: good.provider_cert.clone(),
        ..good.clone()
    };
    assert!(matches!(
        certs.verify(),
        Err(ReceiptError::CertificateMismatch { .. })
    ));
    // The declined attestation with the confirmation of another one.
    let declined = town.ledger.receipt(&b).expect("settled");
    let mixed = Receipt {
        settlement: good.settlement.clone(),
        ..declined
    };
    assert!(matches!(
        mixed.verify(),
        Err(ReceiptError::SettlementMismatch { .. })
    ));
}

#[test]
fn a_settlement_by_a_third_party_is_refused() {
    // Carol signs a confirmation of bob's attestation to alice. The ledger refuses it; a
    // receipt built from it by hand must not verify either.
    let (mut town, _, _) = town();
    let alice = town.id("alice");
    let a = town.write("bob", attest(alice, 90, "tiling"));
    let by_carol = town.forged("carol", 0, &confirm(a));
    let _ = town.ledger.ingest([by_carol.clone()]);
    assert_eq!(town.status(&rid(&by_carol)), Err(RejectReason::NotAllowed));
    assert!(town.ledger.receipt(&a).is_none());
    let bob_cert = town.ledger.envelopes().find(|e| {
        town.ledger
            .get(&rid(e))
            .is_some_and(|(_, r)| matches!(r, Record::Join(join) if join.member == town.id("bob")))
    });
    let carol_cert = town.ledger.envelopes().find(|e| {
        town.ledger.get(&rid(e)).is_some_and(
            |(_, r)| matches!(r, Record::Join(join) if join.member == town.id("carol")),
        )
    });
    let forged = Receipt {
        community: town.community(),
        attestation: town.ledger.get(&a).expect("held").0,
        settlement: by_carol,
        provider_cert: bob_cert.expect("bob joined").clone(),
        receiver_cert: carol_cert.expect("carol joined").clone(),
    };
    assert_eq!(
        forged.verify(),
        Err(ReceiptError::NotTheReceiver {
            receiver: alice,
            settled_by: town.id("carol"),
        })
    );
}

#[test]
fn a_receipt_is_bound_to_its_community() {
    let (town, a, _) = town();
    let good = town.ledger.receipt(&a).expect("settled");
    let elsewhere = Receipt {
        community: CommunityId([1; 32]),
        ..good
    };
    match elsewhere.verify() {
        Err(ReceiptError::Refused { rejection, .. }) => {
            assert_eq!(rejection.reason, RejectReason::WrongCommunity)
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn malformed_receipt_json_is_refused() {
    let (town, a, _) = town();
    let json = town.ledger.receipt(&a).expect("settled").to_json();
    for bad in [
        String::new(),
        "{}".to_string(),
        "[1, 2, 3]".to_string(),
        json.replace("coop/receipt/v1", "coop/receipt/v9"),
        json.replace("\"attestation\": \"", "\"attestation\": \"zz"),
        json.replace("\"settlement\": \"", "\"settlement\": \"00"),
    ] {
        assert!(
            matches!(Receipt::from_json(&bad), Err(ReceiptError::Format(_))),
            "{bad:.80}"
        );
    }
}
