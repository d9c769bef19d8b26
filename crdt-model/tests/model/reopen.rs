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
