//! Property tests on the decoders and the gate: arbitrary bytes and arbitrary edits of valid
//! envelopes never panic and are never accepted (docs/RULES.md R12: nothing panics on malformed input).

use std::sync::OnceLock;

use proptest::prelude::*;

use coop_model::*;

use super::support::*;

/// A small community and a valid, not yet ingested envelope for it (built once).
struct Fixture {
    envelopes: Vec<Envelope>,
    fresh: Envelope,
}

fn fixture() -> &'static Fixture {
    static F: OnceLock<Fixture> = OnceLock::new();
    F.get_or_init(|| {
        let mut town = Town::found(Params::default(), &["alice", "bob"]);
        let alice = town.id("alice");
        let a = town.write("bob", attest(alice, 60, "sweeping the yard"));
        let fresh = town.forged("alice", 0, &confirm(a));
        Fixture {
            envelopes: town.ledger.envelopes().collect(),
            fresh,
        }
    })
}

fn ledger() -> Ledger {
    let f = fixture();
    let mut l = Ledger::new(CommunityId(rid(&f.envelopes[0]).0));
    let _ = l.ingest_trusted(f.envelopes.iter().cloned());
    l
}

/// Feeds wire bytes through decoding and the gate; returns whether anything was accepted.
fn feed(l: &mut Ledger, bytes: &[u8]) -> bool {
    match Envelope::decode(bytes) {
        Err(_) => false,
        Ok(env) => {
            let out = l.ingest([env]);
            !out.accepted.is_empty()
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 300, ..ProptestConfig::default() })]

    #[test]
    fn arbitrary_bytes_are_never_accepted(bytes in prop::collection::vec(any::<u8>(), 0..600)) {
        let mut l = ledger();
        prop_assert!(!feed(&mut l, &bytes));
        prop_assert!(EquivocationProof::decode(&bytes).is_err() || l.ingest_proof(
            EquivocationProof::decode(&bytes).expect("checked")).is_err());
        prop_assert!(Receipt::from_json(&String::from_utf8_lossy(&bytes)).is_err());
    }

    #[test]
    fn edited_envelopes_are_never_accepted(
        edits in prop::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..6),
        cut in prop::option::of(any::<prop::sample::Index>()),
    ) {
        let f = fixture();
        let good = f.fresh.encode();
        let mut bytes = good.clone();
        for (at, value) in &edits {
            let i = at.index(bytes.len());
            bytes[i] = *value;
        }
        if let Some(c) = cut {
            bytes.truncate(c.index(bytes.len()));
        }
        let mut l = ledger();
        // Only the untouched envelope may be accepted.
        prop_assert_eq!(feed(&mut l, &bytes), bytes == good);
    }

    #[test]
    fn arbitrary_change_bytes_in_a_valid_header_are_never_accepted(
        body in prop::collection::vec(any::<u8>(), 0..400),
        keep in 0usize..64,
    ) {
        // Keep a prefix of a real change (magic, checksum, type) so the change decoder
        // itself is exercised, then random bytes.
        let f = fixture();
        let mut change = f.fresh.change[..keep.min(f.fresh.change.len())].to_vec();
        change.extend(body);
        let env = Envelope { change, ..f.fresh.clone() };
        let mut l = ledger();
        let out = l.ingest([env.clone()]);
        prop_assert_eq!(out.accepted.len(), usize::from(env == f.fresh));
    }
}
