use coop_model::*;

#[test]
fn smoke() {
    let alice = IdentityKey::from_seed([1; 32]);
    let alice_dev = DeviceKey::from_seed([2; 32]);
    let (mut l, _g) = Ledger::found(
        &alice,
        &alice_dev,
        "Elm Street",
        "alice",
        Params::default(),
        1_700_000_000,
    )
    .unwrap();
    let bob = IdentityKey::from_seed([3; 32]);
    let bob_dev = DeviceKey::from_seed([4; 32]);
    let c = l.community();
    let mut lb = Ledger::new(c);
    let j = lb
        .author(
            &bob_dev,
            Record::Join {
                member: bob.member_id(),
                cert: bob.certify(&c, &bob_dev.device_id()),
                display_name: "bob".into(),
            },
            1_700_000_100,
        )
        .unwrap();
    let o = l.ingest(vec![j]);
    assert_eq!(o.accepted.len(), 1, "{:?}", o.rejected);
    l.author(
        &alice_dev,
        Record::Vouch {
            member: bob.member_id(),
        },
        1_700_000_200,
    )
    .unwrap();
    let o = lb.ingest(l.envelopes().cloned().collect::<Vec<_>>());
    assert!(o.rejected.is_empty(), "{:?}", o.rejected);
    let att = lb
        .author(
            &bob_dev,
            Record::Attest {
                to: alice.member_id(),
                minutes: 180,
                service: "car repair".into(),
                category: "repair".into(),
                date: "2026-11-01".parse().unwrap(),
            },
            1_700_000_300,
        )
        .unwrap();
    l.ingest(vec![att.clone()]);
    let id = RecordId::from(
        automerge::Change::try_from(att.change.as_slice())
            .unwrap()
            .hash(),
    );
    l.author(
        &alice_dev,
        Record::Confirm { attestation: id },
        1_700_000_400,
    )
    .unwrap();
    let s = l.state().clone();
    assert_eq!(
        s.members[&bob.member_id()].time.balance,
        180,
        "{:#?}",
        s.log
    );
    assert_eq!(s, l.derive_from_scratch());
    // Self-confirm refused without writing.
    let before = lb.len();
    assert!(lb
        .author(&bob_dev, Record::Confirm { attestation: id }, 1)
        .is_err());
    assert_eq!(lb.len(), before);
}
