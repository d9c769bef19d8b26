//! A node reopening its own log (`Ledger::ingest_stored`): the log goes through the gate in
//! chunks, so that the decoded changes of a whole log are never held at once; the ledger it
//! builds is the one a single pass over the log builds.

use coop_model::*;

use super::support::*;

/// More changes than one chunk of `ingest_stored` (4,096), in a causal order.
fn long_log() -> (Town, Vec<Envelope>) {
    let mut town = Town::found(Params::default(), &["alice", "bob"]);
    for i in 0..2_200 {
        for name in ["alice", "bob"] {
            town.write(
                name,
                Record::Rename(record::Rename {
                    display_name: format!("{name} {i}"),
                }),
            );
        }
    }
    let log: Vec<Envelope> = town.ledger.envelopes().collect();
    assert!(log.len() > 4_096 + 100, "{} changes", log.len());
    (town, log)
}

fn reopen(community: CommunityId, log: Vec<Envelope>) -> (Ledger, Outcome) {
    let mut l = Ledger::new(community);
    l.defer_doc();
    let out = l.ingest_stored(log);
    l.finish_doc(None);
    (l, out)
}

#[test]
fn a_long_log_reopened_in_chunks_is_the_ledger_it_was() {
    let (mut town, log) = long_log();
    let (mut l, out) = reopen(town.community(), log.clone());
    assert!(out.rejected.is_empty(), "{:?}", out.rejected.first());
    assert!(
        out.accepted.is_empty(),
        "a reopened log is not listed again"
    );
    assert_eq!((out.pending, out.duplicates, out.dropped), (0, 0, 0));
    assert_eq!(l.envelopes().collect::<Vec<_>>(), log);
    assert_eq!(l.heads(), town.ledger.heads());
    assert_eq!(l.doc().get_heads(), town.ledger.doc().get_heads());
    assert_eq!(l.state(), town.ledger.state());
}

/// A change that comes late in the stored order (a log damaged and repaired, say) parks
/// everything built on it across chunk boundaries; it all goes in once the change does.
#[test]
fn a_change_missing_until_the_last_chunk_lets_everything_after_it_in() {
    let (mut town, log) = long_log();
    let mut moved = log.clone();
    let early = moved.remove(10);
    moved.push(early);
    let (mut l, out) = reopen(town.community(), moved);
    assert!(out.rejected.is_empty(), "{:?}", out.rejected.first());
    assert_eq!((out.pending, out.dropped), (0, 0));
    assert_eq!(l.len(), log.len());
    assert_eq!(l.heads(), town.ledger.heads());
    assert_eq!(l.state(), town.ledger.state());
}

/// Reopens `log` with its decoding read from `cache` while the cache matches it, through
/// the gate after, as the node does; returns the ledger and how many came from the cache.
fn reopen_cached(community: CommunityId, log: &[Envelope], cache: Vec<u8>) -> (Ledger, usize) {
    let mut cache = log_cache::LogCache::open(cache, community).expect("the cache checks");
    let mut l = Ledger::new(community);
    l.defer_doc();
    let (mut cached, mut rest) = (Vec::new(), Vec::new());
    for env in log {
        if rest.is_empty() {
            match cache.next(env.clone()) {
                Ok(v) => cached.push(v),
                Err((env, _)) => rest.push(env),
            }
        } else {
            rest.push(env.clone());
        }
    }
    let from_cache = cached.len();
    let out = l.ingest_cached(cached);
    assert!(out.rejected.is_empty(), "{:?}", out.rejected.first());
    let out = l.ingest_stored(rest);
    assert!(out.rejected.is_empty(), "{:?}", out.rejected.first());
    l.finish_doc(None);
    (l, from_cache)
}

/// Every kind the generated town writes (attestations, settlements, aid, decisions and
/// votes, some refused by derivation) reads back from the decoded-log cache as the gate
/// decodes it: the same envelopes, heads, document and state.
#[test]
fn a_generated_ledger_reopened_from_its_decoded_log_cache_is_the_ledger_it_was() {
    let mut town = build(&generated_ops(5, 400));
    let log: Vec<Envelope> = town.ledger.envelopes().collect();
    let cache = town.ledger.log_cache();
    let (mut l, from_cache) = reopen_cached(town.community(), &log, cache.clone());
    assert_eq!(from_cache, log.len());
    assert_eq!(l.envelopes().collect::<Vec<_>>(), log);
    assert_eq!(l.heads(), town.ledger.heads());
    assert_eq!(l.doc().get_heads(), town.ledger.doc().get_heads());
    assert_eq!(l.state(), town.ledger.state());
    assert_eq!(l.derive_from_scratch(), town.ledger.derive_from_scratch());
    // Written again from the reopened ledger, the cache is byte for byte the same.
    assert_eq!(l.log_cache(), cache);
}

/// A cache of the first changes of a log: those come from it, the rest through the gate.
#[test]
fn a_decoded_log_cache_of_the_first_changes_then_the_gate_is_the_whole_ledger() {
    let (mut town, log) = long_log();
    let mut first = Ledger::new(town.community());
    let out = first.ingest_trusted(log[..1_000].to_vec());
    assert!(out.rejected.is_empty());
    let (mut l, from_cache) = reopen_cached(town.community(), &log, first.log_cache());
    assert_eq!(from_cache, 1_000);
    assert_eq!(l.envelopes().collect::<Vec<_>>(), log);
    assert_eq!(l.heads(), town.ledger.heads());
    assert_eq!(l.state(), town.ledger.state());
}

/// A cache of another community's log is used for none of this one's changes.
#[test]
fn a_decoded_log_cache_of_another_log_is_used_for_nothing() {
    let (mut town, log) = long_log();
    let other = build(&generated_ops(6, 50));
    let (mut l, from_cache) = reopen_cached(town.community(), &log, other.ledger.log_cache());
    assert_eq!(from_cache, 0);
    assert_eq!(l.envelopes().collect::<Vec<_>>(), log);
    assert_eq!(l.state(), town.ledger.state());
}
