//! The read indexes (`coop_model::state::Indexes`) against the scans they replace: over
//! generated ledgers (attestations confirmed and declined over many days, aid requests
//! through their life, decisions and votes), the indexes kept by derivation equal the ones
//! rebuilt from the finished state, incremental derivation equals derivation from scratch
//! (indexes included), and every indexed query answers what a scan of the state answers.

use std::collections::BTreeSet;

use proptest::prelude::*;

use coop_model::query::{self, LedgerQuery};
use coop_model::state::{
    AidStatus, AttestationStatus, DecisionStatus, EntryStatus, LogEntry, State,
};
use coop_model::*;

use super::support::*;

/// The fair-exchange window by scanning every attestation (what `State::balance` did).
fn scan_window(state: &State, m: &MemberId, now: i64) -> (Minutes, Minutes) {
    let today = Day::from_unix(now);
    let from = Day(today.0 - state.params.fairness_window_days as i32);
    let (mut wp, mut wr) = (Minutes(0), Minutes(0));
    for a in state.attestations.values() {
        if a.status != AttestationStatus::Confirmed || a.date <= from || a.date > today {
            continue;
        }
        if a.provider == *m {
            wp += a.minutes;
        }
        if a.receiver == *m {
            wr += a.minutes;
        }
    }
    (wp, wr)
}

/// Ledger rows of `kind`, newest first, by scanning the log.
fn scan_kind(state: &State, kind: Kind) -> Vec<RecordId> {
    state
        .log
        .iter()
        .rev()
        .filter(|e| e.kind == kind && !state.hidden.contains_key(&e.id))
        .map(|e| e.id)
        .collect()
}

fn check(town: &mut Town) -> Result<(), TestCaseError> {
    let now = town.now();
    let state = town.ledger.state().clone();
    // Kept by derivation = rebuilt from the finished state; incremental = from scratch.
    let mut rebuilt = state.clone();
    rebuilt.rebuild_indexes();
    prop_assert_eq!(state.indexes(), rebuilt.indexes());
    prop_assert!(state == town.ledger.derive_from_scratch());
    for name in NAMES {
        let m = town.id(name);
        for at in [now, now - 200 * 86_400, now + 150 * 86_400] {
            let b = state.balance(&m, at).expect("a member");
            prop_assert_eq!(
                (b.window_provided, b.window_received),
                scan_window(&state, &m, at)
            );
        }
        let pending: Vec<RecordId> = state.pending_for(&m).iter().map(|a| a.id).collect();
        let scanned: Vec<RecordId> = state
            .attestations
            .values()
            .filter(|a| a.receiver == m && a.status == AttestationStatus::Pending)
            .map(|a| a.id)
            .collect();
        prop_assert_eq!(pending, scanned);
        let mut hours: Vec<_> = state
            .attestations
            .values()
            .filter(|a| a.provider == m || a.receiver == m)
            .cloned()
            .collect();
        hours.sort_by_key(|a| (a.date, a.id));
        prop_assert_eq!(query::hours(&state, &m), hours.clone());
        // Pages of 3, newest first, each older than the last, join up to the whole list.
        let mut pages = Vec::new();
        let mut before = None;
        for _ in 0..=hours.len() {
            let page = query::hours_page(&state, &m, Some(3), before.as_ref()).expect("a page");
            prop_assert_eq!(page.total, hours.len());
            prop_assert!(page.attestations.len() <= 3);
            pages.push(page.attestations);
            match page.next {
                Some(next) => before = Some(next),
                None => break,
            }
        }
        let joined: Vec<_> = pages.into_iter().rev().flatten().collect();
        prop_assert_eq!(joined, hours.clone());
        let profile = query::profile(&state, Some(&m), &m).expect("a member");
        prop_assert_eq!(profile.hours_total, hours.len());
        let newest = &hours[hours.len().saturating_sub(query::PROFILE_HOURS)..];
        prop_assert_eq!(&profile.hours[..], newest);
        let aid = &state.members[&m].aid;
        let shown = profile.aid.as_ref().expect("their own history");
        prop_assert_eq!(profile.aid_completed_total, aid.completed.len());
        prop_assert_eq!(profile.aid_ratings_total, aid.ratings.len());
        let from = aid.completed.len().saturating_sub(query::PROFILE_HOURS);
        prop_assert_eq!(&shown.completed[..], &aid.completed[from..]);
        prop_assert_eq!((shown.given, shown.received), (aid.given, aid.received));
        // The inbox's open items by scanning requests and decisions.
        let inbox = query::inbox(&state, &m, now);
        let offers: Vec<RecordId> = state
            .aid_requests
            .values()
            .filter(|r| r.status == AidStatus::Open && r.requester == m)
            .flat_map(|r| r.offers.iter().map(|o| o.id))
            .collect();
        prop_assert_eq!(
            inbox.offers.iter().map(|o| o.offer.id).collect::<Vec<_>>(),
            offers
        );
        let to_confirm: Vec<RecordId> = state
            .aid_requests
            .values()
            .filter(|r| r.status == AidStatus::Matched)
            .filter(|r| {
                (r.requester == m && r.requester_confirmation.is_none())
                    || (r.helper == Some(m) && r.helper_confirmation.is_none())
            })
            .map(|r| r.id)
            .collect();
        prop_assert_eq!(
            inbox
                .aid_to_confirm
                .iter()
                .map(|a| a.request)
                .collect::<Vec<_>>(),
            to_confirm
        );
        let mut decisions: Vec<(i64, RecordId)> = state
            .decisions
            .values()
            .filter(|d| d.status == DecisionStatus::Open && now < d.closes_at)
            .filter(|d| !d.votes.iter().any(|v| v.member == m))
            .map(|d| (d.closes_at, d.id))
            .collect();
        decisions.sort();
        prop_assert_eq!(
            inbox
                .decisions
                .iter()
                .map(|d| (d.closes_at, d.id))
                .collect::<Vec<_>>(),
            decisions
        );
    }
    // Ledger pages by kind, followed by cursor to the end, list what a scan lists.
    for kind in [Kind::Attest, Kind::Confirm, Kind::AidOffer, Kind::Vote] {
        let mut listed = Vec::new();
        let mut before = None;
        for _ in 0..1_000 {
            let page = query::ledger(
                &state,
                None,
                &LedgerQuery {
                    kind: Some(kind),
                    limit: Some(3),
                    before,
                    ..LedgerQuery::default()
                },
            );
            listed.extend(page.rows.iter().map(|r| r.id));
            before = page.next;
            if before.is_none() {
                break;
            }
        }
        prop_assert_eq!(listed, scan_kind(&state, kind));
    }
    // Refused records, paged from their index = a scan of the log.
    let mut listed = Vec::new();
    let mut before = None;
    for _ in 0..1_000 {
        let page = query::ledger(
            &state,
            None,
            &LedgerQuery {
                refused: true,
                limit: Some(2),
                before,
                ..LedgerQuery::default()
            },
        );
        listed.extend(page.rows.iter().map(|r| r.id));
        before = page.next;
        if before.is_none() {
            break;
        }
    }
    let scanned: Vec<RecordId> = state
        .log
        .iter()
        .rev()
        .filter(|e| e.status == EntryStatus::Refused && !state.hidden.contains_key(&e.id))
        .map(|e| e.id)
        .collect();
    prop_assert_eq!(listed, scanned);
    // Id-prefix lookup from the id index = a scan of the log.
    let ids: BTreeSet<String> = state
        .log
        .iter()
        .map(|e| e.id.to_hex()[..4].into())
        .collect();
    for prefix in ids.iter().take(20) {
        for kinds in [&[][..], &[Kind::Attest][..]] {
            prop_assert_eq!(
                query::record_matches_in_state(&state, kinds, prefix),
                query::record_matches(&state.log, kinds, prefix)
            );
        }
    }
    // A family view's entries are the family's, in total order.
    let view = query::family(&state, Some(&town.id("ana")), query::Family::Aid);
    let scanned: Vec<&LogEntry> = state
        .log
        .iter()
        .filter(|e| matches!(e.kind, Kind::AidRequest | Kind::AidOffer))
        .collect();
    prop_assert_eq!(view.entries.iter().collect::<Vec<_>>(), scanned);
    let counted = state
        .log
        .iter()
        .filter(|e| e.status == EntryStatus::Counted)
        .count();
    prop_assert_eq!(counted, state.counted);
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 24, ..ProptestConfig::default() })]

    #[test]
    fn indexed_queries_answer_as_scans_do(
        ops in prop::collection::vec((any::<u8>(), any::<u16>(), any::<u16>(), any::<u16>()), 1..120),
    ) {
        let mut town = build(&ops);
        check(&mut town)?;
    }
}

/// A fixed ledger, so that a run without proptest's variety still covers every index.
#[test]
fn indexes_follow_a_long_generated_ledger() {
    let mut town = build(&generated_ops(7, 400));
    let state = town.ledger.state();
    assert!(
        state.attestations.len() > 50,
        "{}",
        state.attestations.len()
    );
    assert!(
        state
            .attestations
            .values()
            .any(|a| a.status == AttestationStatus::Confirmed),
        "some confirmed"
    );
    assert!(
        state
            .aid_requests
            .values()
            .any(|r| r.status == AidStatus::Matched || r.status == AidStatus::Completed),
        "some aid matched"
    );
    assert!(state.refused > 5, "some refused: {}", state.refused);
    check(&mut town).expect("indexed answers equal scans");
}
