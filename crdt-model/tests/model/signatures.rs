//! Signatures (docs/PROTOCOL.md, "Signatures"): the ZIP215 rule on its published edge
//! cases, single and batched alike; coop's key rule on top of it; and batch verification
//! inside ingest, where one bad signature among many is refused with its reason while the
//! accepted set stays the same for any thread count, chunking and batch seed.

use crate::support::*;
use coop_model::identity;
use coop_model::verify::{zip215, zip215_batch, SigItem};
use coop_model::*;

/// The message every edge case is signed over (as in ed25519-zebra's tests).
const ZCASH: &[u8] = b"Zcash";

/// One edge case of `tests/data/zip215_edge_cases.txt`.
#[derive(Debug)]
struct Case {
    public: [u8; 32],
    sig: [u8; 64],
    valid: bool,
    line: String,
}

fn cases() -> Vec<Case> {
    include_str!("../data/zip215_edge_cases.txt")
        .lines()
        .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
        .map(|line| {
            let cols: Vec<&str> = line.split_whitespace().collect();
            assert_eq!(cols.len(), 5, "a malformed vector line: {line}");
            let hex32 = |s: &str| -> [u8; 32] {
                hex::decode(s).expect("hex").try_into().expect("32 bytes")
            };
            let sig: [u8; 64] = hex::decode(cols[1])
                .expect("hex")
                .try_into()
                .expect("64 bytes");
            let valid = match cols[4] {
                "valid" => true,
                "invalid" => false,
                other => panic!("expected valid or invalid, not {other}"),
            };
            Case {
                public: hex32(cols[0]),
                sig,
                valid,
                line: line.to_string(),
            }
        })
        .collect()
}

fn item(c: &Case) -> SigItem<'static> {
    SigItem {
        public: c.public,
        msg: ZCASH,
        sig: c.sig,
    }
}

#[test]
fn zip215_edge_cases_verify_as_published_single_and_in_batches() {
    let cases = cases();
    assert_eq!(cases.len(), 201);
    assert_eq!(cases.iter().filter(|c| c.valid).count(), 196);
    let expected: Vec<bool> = cases.iter().map(|c| c.valid).collect();
    for c in &cases {
        assert_eq!(
            zip215(&c.public, ZCASH, &c.sig),
            c.valid,
            "single: {}",
            c.line
        );
        assert_eq!(
            zip215_batch(&[item(c)], &[3; 32]),
            vec![c.valid],
            "batch of one: {}",
            c.line
        );
    }
    // Every case beside an ordinary signature, so that the batch equation itself decides.
    let real = DeviceKey::from_seed(seed("zip215/real"));
    let real_msg = b"an ordinary change".to_vec();
    let ordinary = SigItem {
        public: real.device_id().0,
        msg: &real_msg,
        sig: ordinary_signature(&real, &real_msg),
    };
    for c in &cases {
        assert_eq!(
            zip215_batch(&[ordinary, item(c)], &[5; 32]),
            vec![true, c.valid],
            "batch of two: {}",
            c.line
        );
    }
    // All at once (mixed: the batch fails and falls back), and the valid ones alone.
    let all: Vec<SigItem<'_>> = cases.iter().map(item).collect();
    for seed in [[0u8; 32], [1; 32], [0xfe; 32]] {
        assert_eq!(zip215_batch(&all, &seed), expected);
    }
    let valid: Vec<SigItem<'_>> = cases.iter().filter(|c| c.valid).map(item).collect();
    assert_eq!(zip215_batch(&valid, &[9; 32]), vec![true; valid.len()]);
}

/// A device signs through an envelope; take the signature of a plain message the same way
/// the library does (ed25519-dalek, which ZIP215 accepts).
fn ordinary_signature(key: &DeviceKey, msg: &[u8]) -> [u8; 64] {
    use ed25519_dalek::Signer;
    ed25519_dalek::SigningKey::from_bytes(&key.seed())
        .sign(msg)
        .to_bytes()
}

#[test]
fn small_order_keys_may_not_sign_though_zip215_accepts_their_forgeries() {
    for c in cases().iter().filter(|c| c.valid) {
        // Every valid edge case has a small-order key: anyone can sign for it.
        assert!(!identity::usable_key(&c.public), "{}", c.line);
        assert!(!identity::verify(&c.public, ZCASH, &c.sig), "{}", c.line);
        // The rule before ZIP215 (verify_strict) refused these as well.
        let strict = ed25519_dalek::VerifyingKey::from_bytes(&c.public).is_ok_and(|k| {
            k.verify_strict(ZCASH, &ed25519_dalek::Signature::from_bytes(&c.sig))
                .is_ok()
        });
        assert!(!strict, "{}", c.line);
    }
}

/// A community with four members and `n` attestations written round-robin on the main
/// replica; every envelope it holds, in log order.
fn busy_town(n: usize) -> (Town, Vec<Envelope>) {
    let names = ["alice", "bob", "carol", "dave"];
    let mut town = Town::found(Params::default(), &names);
    for i in 0..n {
        let to = town.id(names[(i + 1) % 4]);
        town.write(names[i % 4], attest(to, 30 + (i % 90) as i64, "help"));
    }
    let envs: Vec<Envelope> = town.ledger.envelopes().collect();
    (town, envs)
}

/// What an ingest did, comparable across configurations.
#[derive(Debug, PartialEq)]
struct Took {
    accepted: Vec<RecordId>,
    rejected: Vec<(Option<RecordId>, RejectReason)>,
    pending: usize,
    state: Vec<u8>,
}

fn ingest_with(community: CommunityId, envs: &[Envelope], threads: usize, seed: [u8; 32]) -> Took {
    let mut l = Ledger::new(community);
    l.set_verify_threads(threads);
    l.set_batch_seed(seed);
    let out = l.ingest(envs.to_vec());
    Took {
        accepted: out.accepted.iter().map(rid).collect(),
        rejected: out.rejected.iter().map(|r| (r.id, r.reason)).collect(),
        pending: out.pending,
        state: l.state().canonical_json().expect("the state serializes"),
    }
}

#[test]
fn one_bad_signature_in_a_big_batch_is_refused_and_only_it() {
    // Enough changes for several signature batches and for the document to be applied
    // while later chunks are still being verified.
    let (mut town, log) = busy_town(4_600);
    let community = town.community();
    // One more change, on the latest heads, delivered in the middle of the batch: it waits
    // for its dependencies, and nothing depends on it.
    let alice = town.id("alice");
    let late = town.forged("carol", 0, &attest(alice, 45, "late help"));
    let with = |e: &Envelope| {
        let mut v = log.clone();
        v.insert(log.len() / 2, e.clone());
        v
    };
    let clean = ingest_with(community, &with(&late), 2, [1; 32]);
    assert_eq!(clean.accepted.len(), log.len() + 1);
    assert!(clean.rejected.is_empty());

    let mut bad = late.clone();
    bad.signature[10] ^= 0x20;
    let envs = with(&bad);
    let want = ingest_with(community, &envs, 1, [0; 32]);
    assert_eq!(
        want.rejected,
        vec![(Some(rid(&bad)), RejectReason::BadSignature)]
    );
    assert_eq!(want.accepted.len(), log.len());
    assert_eq!(want.pending, 0);

    // Any thread count and seed: the same answer, to the byte of the derived state.
    for (threads, seed) in [(2, [7u8; 32]), (3, [0xab; 32]), (8, [0; 32])] {
        assert_eq!(
            ingest_with(community, &envs, threads, seed),
            want,
            "{threads} threads"
        );
    }

    // And the same as taking the changes one at a time (no batch at all).
    let mut one = Ledger::new(community);
    let (mut accepted, mut rejected) = (Vec::new(), Vec::new());
    for e in &envs {
        let out = one.ingest([e.clone()]);
        accepted.extend(out.accepted.iter().map(rid));
        rejected.extend(out.rejected.iter().map(|r| (r.id, r.reason)));
    }
    assert_eq!((accepted, rejected), (want.accepted, want.rejected));
    assert_eq!(
        one.state().canonical_json().expect("the state serializes"),
        want.state
    );
}

/// `ingest_parsed` of `arrivals`, comparable with [`ingest_with`].
fn ingest_parsed_with(
    community: CommunityId,
    arrivals: Vec<(Envelope, Option<automerge::Change>)>,
    threads: usize,
) -> Took {
    let mut l = Ledger::new(community);
    l.set_verify_threads(threads);
    let out = l.ingest_parsed(arrivals);
    Took {
        accepted: out.accepted.iter().map(rid).collect(),
        rejected: out.rejected.iter().map(|r| (r.id, r.reason)).collect(),
        pending: out.pending,
        state: l.state().canonical_json().expect("the state serializes"),
    }
}

fn parse(e: &Envelope) -> automerge::Change {
    automerge::Change::try_from(e.change.as_slice()).expect("a generated change parses")
}

#[test]
fn parsed_changes_are_gated_exactly_as_their_envelopes() {
    // Large enough for several signature batches and the parallel pipeline.
    let (mut town, mut log) = busy_town(1_200);
    let community = town.community();
    let alice = town.id("alice");
    // A forged signature on a change whose parsed form is its own.
    let mut forged = town.forged("carol", 0, &attest(alice, 45, "late help"));
    forged.signature[10] ^= 0x20;
    log.insert(log.len() / 2, forged.clone());
    // Bytes that are not a change at all, beside a well-formed parsed change.
    let mut broken = log[700].clone();
    broken.change.truncate(broken.change.len() / 2);
    log.insert(300, broken.clone());
    let want = ingest_with(community, &log, 1, [0; 32]);
    assert!(want
        .rejected
        .contains(&(Some(rid(&forged)), RejectReason::BadSignature)));
    assert!(want
        .rejected
        .iter()
        .any(|(id, reason)| id.is_none() && *reason == RejectReason::Malformed));
    assert_eq!(want.rejected.len(), 2);
    assert_eq!(want.accepted.len(), log.len() - 2);

    let arrivals = |threads| {
        let mut arrivals: Vec<(Envelope, Option<automerge::Change>)> = log
            .iter()
            .enumerate()
            .map(|(i, e)| {
                let parsed = match i {
                    // The broken bytes come with the intact change they were cut from.
                    300 => Some(parse(&log[701])),
                    // A plain envelope among parsed ones.
                    i if i % 7 == 0 => None,
                    _ => Some(parse(e)),
                };
                (e.clone(), parsed)
            })
            .collect();
        // Parsed forms that disagree with their bytes: two changes' forms swapped. Each
        // envelope is still taken as its own bytes say.
        let (a, b) = (arrivals[50].1.take(), arrivals[51].1.take());
        arrivals[50].1 = b;
        arrivals[51].1 = a;
        ingest_parsed_with(community, arrivals, threads)
    };
    for threads in [1, 2, 3] {
        assert_eq!(arrivals(threads), want, "{threads} threads");
    }
}
