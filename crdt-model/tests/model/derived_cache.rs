//! The derived-state cache over generated ledgers: a cache folded over the first changes of
//! a ledger, installed in a ledger holding those changes and more, gives exactly the state
//! derivation from scratch gives; installed anywhere else, it is refused and changes nothing.

use proptest::prelude::*;

use coop_model::derived_cache::{decode, CacheError, CacheKey};
use coop_model::*;

use super::support::*;

const KEY: CacheKey = CacheKey {
    entries: 3,
    chain: [9; 32],
};

fn canonical(state: &State) -> Vec<u8> {
    state.canonical_json().expect("a state serializes")
}

/// A ledger of the community holding `envelopes`, taken in the order given.
fn ledger_of(community: CommunityId, envelopes: &[Envelope]) -> Ledger {
    let mut l = Ledger::new(community);
    let out = l.ingest_trusted(envelopes.to_vec());
    assert!(out.rejected.is_empty(), "{:?}", out.rejected);
    l
}

fn check(ops: &[Op]) -> Result<(), TestCaseError> {
    let town = build(ops);
    let community = town.ledger.community();
    let all: Vec<Envelope> = town.ledger.envelopes().collect();
    let scratch = canonical(&town.ledger.derive_from_scratch());
    for n in [1, all.len() / 3, all.len() / 2, all.len() - 1, all.len()] {
        let mut first = ledger_of(community, &all[..n]);
        let bytes = first.derived_cache(KEY).expect("the state encodes");
        // Installed in a ledger of every change: the rest is folded on top of it.
        let mut whole = ledger_of(community, &all);
        prop_assert_eq!(whole.use_derived_cache(decode(&bytes).unwrap()), Ok(KEY));
        prop_assert_eq!(canonical(whole.state()), scratch.clone());
        // A ledger that holds fewer, or other, first changes refuses it.
        if n > 1 {
            let mut shorter = ledger_of(community, &all[..n - 1]);
            prop_assert!(matches!(
                shorter.use_derived_cache(decode(&bytes).unwrap()),
                Err(CacheError::Stale(_))
            ));
            prop_assert_eq!(
                canonical(shorter.state()),
                canonical(&shorter.derive_from_scratch())
            );
        }
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 12, ..ProptestConfig::default() })]

    #[test]
    fn a_cache_of_the_first_changes_then_the_rest_derives_what_scratch_does(
        ops in prop::collection::vec((any::<u8>(), any::<u16>(), any::<u16>(), any::<u16>()), 1..100),
    ) {
        check(&ops)?;
    }
}

/// A fixed, long ledger (attestations, settlements, aid, decisions, refusals).
#[test]
fn a_cache_of_a_long_generated_ledger_derives_what_scratch_does() {
    check(&generated_ops(11, 300)).expect("the cache derives what scratch does");
}

#[test]
fn a_cache_of_other_changes_is_refused() {
    // The same founding (the generated town is deterministic), then other records.
    let a = build(&[(0, 1, 2, 30), (0, 2, 1, 40)]);
    let b = build(&[(0, 1, 2, 31), (0, 2, 1, 40)]);
    let mut from_b = ledger_of(
        b.ledger.community(),
        &b.ledger.envelopes().collect::<Vec<_>>(),
    );
    let bytes = from_b.derived_cache(KEY).unwrap();
    let mut ledger = ledger_of(
        a.ledger.community(),
        &a.ledger.envelopes().collect::<Vec<_>>(),
    );
    assert!(matches!(
        ledger.use_derived_cache(decode(&bytes).unwrap()),
        Err(CacheError::Stale(_))
    ));
}
