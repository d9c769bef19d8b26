//! Shared helpers: deterministic people and keys, a community with a main replica, record
//! builders, hand-built changes that skip `Ledger::author`'s dry run, and replica sync.

use coop_model::record;
use std::collections::BTreeMap;

use automerge::transaction::{CommitOptions, Transactable, Transaction};
use automerge::{ObjType, ReadDoc, ROOT};
use coop_model::record::{Outcome as Closing, Urgency};
use coop_model::state::{EntryStatus, LogEntry};
use coop_model::*;
use sha2::{Digest, Sha256};

/// Unix time of the first record in every test: 2026-09-21 (a Monday), 09:46 UTC.
pub(crate) const T0: i64 = 1_790_000_000;

/// A 32-byte seed derived from a label, so every test's keys are fixed and distinct.
pub(crate) fn seed(label: &str) -> [u8; 32] {
    Sha256::digest(format!("coop-model tests/{label}")).into()
}

/// A person: an identity key and their device keys (created on demand).
#[derive(Debug, Clone)]
pub(crate) struct Person {
    pub(crate) name: String,
    pub(crate) identity: IdentityKey,
}

impl Person {
    pub(crate) fn new(name: &str) -> Person {
        Person {
            name: name.to_string(),
            identity: IdentityKey::from_seed(seed(&format!("{name}/identity"))),
        }
    }
    pub(crate) fn id(&self) -> MemberId {
        self.identity.member_id()
    }
    /// Device `n` (0 is the first device).
    pub(crate) fn dev(&self, n: usize) -> DeviceKey {
        DeviceKey::from_seed(seed(&format!("{}/device/{n}", self.name)))
    }
    /// The join record of device `n`, certified for `community`.
    pub(crate) fn join(&self, community: &CommunityId, n: usize) -> Record {
        Record::from(record::Join {
            member: self.id(),
            cert: self.identity.certify(community, &self.dev(n).device_id()),
            display_name: self.name.clone(),
        })
    }
    /// The certificate record of a further device `n`.
    pub(crate) fn device(&self, community: &CommunityId, n: usize) -> Record {
        Record::from(record::Device {
            member: self.id(),
            cert: self.identity.certify(community, &self.dev(n).device_id()),
            label: None,
            identity: None,
        })
    }
}

/// A community under test: people by name, and the main replica everything is written on.
#[derive(Debug)]
pub(crate) struct Town {
    pub(crate) ledger: Ledger,
    pub(crate) people: BTreeMap<String, Person>,
    pub(crate) founder: String,
    pub(crate) genesis: Envelope,
    clock: i64,
}

impl Town {
    /// The first name founds the community with `params`; the others join on their device 0
    /// and are vouched for by the founder.
    pub(crate) fn found(params: Params, names: &[&str]) -> Town {
        let founder = Person::new(names[0]);
        let (ledger, genesis) = Ledger::found(
            &founder.identity,
            &founder.dev(0),
            "Elm Street",
            names[0],
            params,
            T0,
        )
        .expect("genesis");
        let mut town = Town {
            ledger,
            people: BTreeMap::new(),
            founder: names[0].to_string(),
            genesis,
            clock: T0,
        };
        town.people.insert(names[0].to_string(), founder);
        for name in &names[1..] {
            town.admit(name);
        }
        town
    }

    /// A newcomer who joins (device 0) and is vouched for by the founder.
    pub(crate) fn admit(&mut self, name: &str) -> MemberId {
        self.newcomer(name);
        let id = self.id(name);
        let founder = self.founder.clone();
        self.write(&founder, Record::Vouch(record::Vouch { member: id }));
        id
    }

    /// A newcomer who only writes a join request (device 0).
    pub(crate) fn newcomer(&mut self, name: &str) -> RecordId {
        let p = Person::new(name);
        let join = p.join(&self.community(), 0);
        self.people.insert(name.to_string(), p);
        self.write(name, join)
    }

    pub(crate) fn community(&self) -> CommunityId {
        self.ledger.community()
    }
    pub(crate) fn person(&self, name: &str) -> &Person {
        self.people
            .get(name)
            .unwrap_or_else(|| panic!("no person {name}"))
    }
    pub(crate) fn id(&self, name: &str) -> MemberId {
        self.person(name).id()
    }
    pub(crate) fn dev(&self, name: &str, n: usize) -> DeviceKey {
        self.person(name).dev(n)
    }
    /// The time of the last record written.
    pub(crate) fn now(&self) -> i64 {
        self.clock
    }

    /// Moves the authors' clock forward.
    pub(crate) fn advance(&mut self, secs: i64) {
        self.clock += secs;
    }

    /// Puts `action` to the vote: `author` opens a decision with a one-hour window, each of
    /// `voters` votes yes, the window passes and `author` writes the tally. Returns the
    /// decision and the tally.
    pub(crate) fn decide(
        &mut self,
        author: &str,
        action: coop_model::record::DecisionAction,
        voters: &[&str],
    ) -> (RecordId, RecordId) {
        let d = self.write(author, decision("by vote", self.clock + 3_600, action));
        for v in voters {
            self.write(v, vote(d, coop_model::record::Choice::Yes));
        }
        self.advance(3_600);
        let t = self.write(author, tally(d));
        (d, t)
    }

    /// Sets the author clock: the next record claims one minute after `t`.
    pub(crate) fn set_clock(&mut self, t: i64) {
        self.clock = t;
    }
    /// The next author time: one minute after the previous one.
    pub(crate) fn tick(&mut self) -> i64 {
        self.clock += 60;
        self.clock
    }

    /// Writes a record with `name`'s device 0; panics if `Ledger::author` refuses it.
    pub(crate) fn write(&mut self, name: &str, record: Record) -> RecordId {
        self.write_on(name, 0, record)
    }

    /// Writes a record with device `n` of `name`; panics if refused.
    pub(crate) fn write_on(&mut self, name: &str, n: usize, record: Record) -> RecordId {
        let what = format!("{name}@{n}: {record:?}");
        match self.try_write_on(name, n, record) {
            Ok(id) => id,
            Err(r) => panic!("{what} refused: {r}"),
        }
    }

    /// Writes a record with `name`'s device 0; returns the refusal if `author` refuses.
    pub(crate) fn try_write(&mut self, name: &str, record: Record) -> Result<RecordId, Rejection> {
        self.try_write_on(name, 0, record)
    }

    pub(crate) fn try_write_on(
        &mut self,
        name: &str,
        n: usize,
        record: Record,
    ) -> Result<RecordId, Rejection> {
        let key = self.dev(name, n);
        let t = self.tick();
        self.ledger.author(&key, record, t).map(|e| rid(&e))
    }

    /// Registers device `n` of `name` (its certificate change), written by that device.
    pub(crate) fn add_device(&mut self, name: &str, n: usize) -> RecordId {
        let rec = self.person(name).device(&self.community(), n);
        self.write_on(name, n, rec)
    }

    /// Writes a record without the author's dry run (so derivation may refuse it) and
    /// ingests it into the main replica.
    pub(crate) fn force(&mut self, name: &str, n: usize, record: &Record) -> RecordId {
        match self.try_force(name, n, record) {
            Ok(id) => id,
            Err(r) => panic!("forged change refused: {r}"),
        }
    }

    /// As [`Town::force`], but returns the gate's refusal instead of panicking.
    pub(crate) fn try_force(
        &mut self,
        name: &str,
        n: usize,
        record: &Record,
    ) -> Result<RecordId, Rejection> {
        let env = self.forged(name, n, record);
        let out = self.ledger.ingest([env.clone()]);
        if let Some(r) = out.rejected.into_iter().next() {
            return Err(r);
        }
        assert_eq!(
            out.accepted.len(),
            1,
            "forged change neither accepted nor refused"
        );
        Ok(rid(&env))
    }

    /// A change carrying `record` by device `n` of `name` on the main replica's heads,
    /// without the author's dry run; not ingested.
    pub(crate) fn forged(&mut self, name: &str, n: usize, record: &Record) -> Envelope {
        let key = self.dev(name, n);
        let t = self.tick();
        forge(&mut self.ledger, &key, record, t)
    }

    /// A hand-built change by device `n` of `name` on the main replica's heads; not ingested.
    pub(crate) fn raw(
        &mut self,
        name: &str,
        n: usize,
        ops: impl FnOnce(&mut Transaction<'_>, u64),
    ) -> Envelope {
        let key = self.dev(name, n);
        let t = self.tick();
        raw_change(&mut self.ledger, &key, t, ops)
    }

    /// A fresh replica holding everything the main one holds.
    pub(crate) fn replica(&self) -> Ledger {
        replica_of(&self.ledger)
    }

    /// The derivation status of a record on the main replica.
    pub(crate) fn status(&mut self, id: &RecordId) -> Result<(), RejectReason> {
        status(&mut self.ledger, id)
    }

    /// Sets the author clock so that the next write claims exactly `t` (Unix seconds).
    pub(crate) fn claim_next(&mut self, t: i64) {
        self.clock = t - 60;
    }
}

/// A fresh replica of `ledger`, fed every accepted envelope (through the full gate).
pub(crate) fn replica_of(ledger: &Ledger) -> Ledger {
    let mut r = Ledger::new(ledger.community());
    let out = r.ingest(ledger.envelopes().collect::<Vec<_>>());
    assert!(out.rejected.is_empty(), "{:?}", out.rejected);
    r
}

/// The record id of an envelope.
pub(crate) fn rid(env: &Envelope) -> RecordId {
    env.record_id().expect("an uncompressed change")
}

/// The log entry of a record in the derived state.
pub(crate) fn log_entry<'a>(state: &'a State, id: &RecordId) -> &'a LogEntry {
    state
        .log
        .iter()
        .find(|e| e.id == *id)
        .unwrap_or_else(|| panic!("{id:?} is not in the log"))
}

/// Whether derivation counted a record (`Ok`) or refused it (the reason).
pub(crate) fn status(ledger: &mut Ledger, id: &RecordId) -> Result<(), RejectReason> {
    let e = log_entry(ledger.state(), id);
    match e.status {
        EntryStatus::Counted => Ok(()),
        EntryStatus::Refused => Err(e.reason.expect("a refused entry has a reason")),
    }
}

/// Delivers everything each ledger holds to the other (full envelopes, so both end up with
/// the same set of changes, fork branches included) and the equivocation proofs.
pub(crate) fn sync(a: &mut Ledger, b: &mut Ledger) {
    let from_a: Vec<Envelope> = a.envelopes().collect();
    let from_b: Vec<Envelope> = b.envelopes().collect();
    let proofs_a: Vec<EquivocationProof> = a.proofs().cloned().collect();
    let proofs_b: Vec<EquivocationProof> = b.proofs().cloned().collect();
    let out = b.ingest(from_a);
    assert!(out.rejected.is_empty(), "{:?}", out.rejected);
    let out = a.ingest(from_b);
    assert!(out.rejected.is_empty(), "{:?}", out.rejected);
    for p in proofs_a {
        b.ingest_proof(p).expect("a valid proof");
    }
    for p in proofs_b {
        a.ingest_proof(p).expect("a valid proof");
    }
}

/// Asserts two replicas have converged: same heads, byte-identical derived state, and
/// incremental derivation equal to derivation from scratch on both.
pub(crate) fn assert_converged(a: &mut Ledger, b: &mut Ledger) {
    let mut ha = a.heads();
    let mut hb = b.heads();
    ha.sort();
    hb.sort();
    assert_eq!(ha, hb, "heads differ");
    let (sa, sb) = (a.state().clone(), b.state().clone());
    assert_eq!(
        String::from_utf8_lossy(&sa.canonical_json().expect("the state serializes")),
        String::from_utf8_lossy(&sb.canonical_json().expect("the state serializes")),
        "derived states differ"
    );
    assert_eq!(sa, a.derive_from_scratch(), "incremental != scratch");
    assert_eq!(sb, b.derive_from_scratch(), "incremental != scratch");
}

/// Builds a signed change by hand on top of `ledger`'s document: `ops` writes into a
/// transaction whose actor is `key`'s device. Nothing checks the result: the gate will.
pub(crate) fn raw_change(
    ledger: &mut Ledger,
    key: &DeviceKey,
    time: i64,
    ops: impl FnOnce(&mut Transaction<'_>, u64),
) -> Envelope {
    let mut doc = ledger.doc().clone();
    let device = key.device_id();
    doc.set_actor(device.actor());
    let seq = ledger.sync_clock().get(&device).copied().unwrap_or(0) + 1;
    let mut tx = doc.transaction();
    ops(&mut tx, seq);
    let (hash, _) = tx.commit_with(CommitOptions::default().with_time(time));
    let hash = hash.expect("a non-empty change");
    let change = doc.get_change_by_hash(&hash).expect("the new change");
    let c = ledger.community();
    Envelope::sign(
        c,
        DocId::ledger(&c),
        key,
        &hash.0,
        change.raw_bytes().to_vec(),
    )
}

/// A correctly laid-out change carrying `record` on `ledger`'s heads, with no dry run.
pub(crate) fn forge(ledger: &mut Ledger, key: &DeviceKey, record: &Record, time: i64) -> Envelope {
    let device = key.device_id();
    raw_change(ledger, key, time, |tx, seq| {
        put_record(tx, &device, seq, record)
    })
}

/// A chain of changes by one device, each on the previous one, starting on `ledger`'s
/// heads; none is ingested anywhere, and nothing checks them.
pub(crate) fn forge_chain(
    ledger: &mut Ledger,
    key: &DeviceKey,
    records: &[Record],
    time: i64,
) -> Vec<Envelope> {
    let mut doc = ledger.doc().clone();
    let device = key.device_id();
    doc.set_actor(device.actor());
    let first = ledger.sync_clock().get(&device).copied().unwrap_or(0) + 1;
    let c = ledger.community();
    let mut out = Vec::new();
    for (i, record) in records.iter().enumerate() {
        let mut tx = doc.transaction();
        put_record(&mut tx, &device, first + i as u64, record);
        let (hash, _) = tx.commit_with(CommitOptions::default().with_time(time + i as i64));
        let hash = hash.expect("a non-empty change");
        let change = doc.get_change_by_hash(&hash).expect("the new change");
        out.push(Envelope::sign(
            c,
            DocId::ledger(&c),
            key,
            &hash.0,
            change.raw_bytes().to_vec(),
        ));
    }
    out
}

fn put_record(tx: &mut Transaction<'_>, device: &DeviceId, seq: u64, record: &Record) {
    let obj = tx
        .put_object(ROOT, record.root_key(device, seq), ObjType::Map)
        .expect("put_object");
    for (k, v) in record.layout() {
        tx.put(&obj, k, v).expect("put");
    }
}

pub(crate) fn day(s: &str) -> Day {
    s.parse().expect("a YYYY-MM-DD date")
}

pub(crate) fn attest(to: MemberId, minutes: i64, service: &str) -> Record {
    attest_on(to, minutes, service, "2026-11-01")
}

pub(crate) fn attest_on(to: MemberId, minutes: i64, service: &str, date: &str) -> Record {
    Record::Attest(record::Attest {
        to,
        minutes: coop_model::Minutes(minutes),
        service: service.into(),
        category: "general".into(),
        date: day(date),
    })
}

pub(crate) fn confirm(attestation: RecordId) -> Record {
    Record::Confirm(record::Confirm { attestation })
}

pub(crate) fn decline(attestation: RecordId) -> Record {
    Record::Decline(record::Decline { attestation })
}

pub(crate) fn proposal(title: &str) -> Record {
    Record::Proposal(record::Proposal {
        title: title.into(),
        description: format!("{title}, for everyone on the street"),
    })
}

pub(crate) fn allocate(proposal: RecordId, points: i64) -> Record {
    Record::Allocate(record::Allocate {
        proposal,
        points: coop_model::Points(points),
    })
}

pub(crate) fn close(proposal: RecordId, outcome: Closing) -> Record {
    Record::Close(record::Close { proposal, outcome })
}

pub(crate) fn aid_request(category: &str, title: &str) -> Record {
    Record::from(record::AidRequest {
        category: category.into(),
        title: title.into(),
        description: format!("{title}: details for helpers"),
        urgency: Urgency::Medium,
        needed_by: None,
        location: None,
    })
}

pub(crate) fn aid_offer(request: RecordId, message: &str) -> Record {
    Record::AidOffer(record::AidOffer {
        request,
        message: message.into(),
        availability: "weekends".into(),
    })
}

pub(crate) fn aid_accept(offer: RecordId) -> Record {
    Record::AidAccept(record::AidAccept { offer })
}

pub(crate) fn aid_confirm(
    request: RecordId,
    rating: Option<i64>,
    feedback: Option<&str>,
) -> Record {
    Record::AidConfirm(record::AidConfirm {
        request,
        rating,
        feedback: feedback.map(String::from),
    })
}

pub(crate) fn aid_cancel(request: RecordId) -> Record {
    Record::AidCancel(record::AidCancel { request })
}

pub(crate) fn decision(
    title: &str,
    closes_at: i64,
    action: coop_model::record::DecisionAction,
) -> Record {
    Record::from(record::Decision {
        title: title.into(),
        description: String::new(),
        closes_at,
        action,
    })
}

pub(crate) fn vote(decision: RecordId, choice: coop_model::record::Choice) -> Record {
    Record::Vote(record::Vote { decision, choice })
}

pub(crate) fn tally(decision: RecordId) -> Record {
    Record::Tally(record::Tally { decision })
}

pub(crate) fn remove(member: MemberId) -> Record {
    Record::Remove(record::Remove {
        member,
        reason: "moved away".into(),
    })
}

/// A small deterministic RNG for tests that want variety without a dependency (SplitMix64).
#[derive(Debug, Clone)]
pub(crate) struct Rng(pub u64);

impl Rng {
    pub(crate) fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    pub(crate) fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
    pub(crate) fn shuffle<T>(&mut self, v: &mut [T]) {
        for i in (1..v.len()).rev() {
            let j = self.below(i + 1);
            v.swap(i, j);
        }
    }
}

// Generated ledgers (the read-index and derived-cache tests): a founded town of five
// members writing attestations, settlements, aid and decisions from a list of steps.

/// The members of a generated town.
pub(crate) const NAMES: [&str; 5] = ["ana", "ben", "cy", "dee", "eve"];

/// One generated step: what, who, and two numbers to pick targets and amounts with.
pub(crate) type Op = (u8, u16, u16, u16);

fn pick<T: Copy>(items: &[T], n: u16) -> Option<T> {
    (!items.is_empty()).then(|| items[n as usize % items.len()])
}

/// A generated town: writes the steps that `Ledger::author` accepts (refused ones are
/// skipped), some of them forced past the author's dry run so that derivation refuses a few.
pub(crate) fn build(ops: &[Op]) -> Town {
    let mut town = Town::found(Params::default(), &NAMES);
    let (mut attestations, mut requests, mut offers, mut decisions) =
        (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    for &(what, who, a, b) in ops {
        let name = NAMES[who as usize % NAMES.len()];
        let other = NAMES[a as usize % NAMES.len()];
        let today = Day::from_unix(town.now()).0;
        let record = match what % 10 {
            0..=2 => Record::Attest(record::Attest {
                to: town.id(other),
                minutes: Minutes(1 + i64::from(b % 240)),
                service: "help with the garden".into(),
                category: "gardening".into(),
                // Days of service spread over a year, so windows cut through them.
                date: Day(today - i32::from(b % 400)),
            }),
            3 | 4 => match pick(&attestations, a) {
                Some(att) if b % 3 == 0 => decline(att),
                Some(att) => confirm(att),
                None => continue,
            },
            5 => aid_request("time", "moving a sofa"),
            6 => match pick(&requests, a) {
                Some(r) => aid_offer(r, "I can help on Saturday"),
                None => continue,
            },
            7 => match (pick(&offers, a), b % 3) {
                (Some(o), 0 | 1) => aid_accept(o),
                _ => match pick(&requests, a) {
                    Some(r) if b % 5 == 0 => aid_cancel(r),
                    Some(r) => aid_confirm(r, Some(1 + i64::from(b % 5)), None),
                    None => continue,
                },
            },
            8 => decision(
                "paint the shed",
                town.now() + 3_600 * i64::from(1 + b % 48),
                record::DecisionAction::General,
            ),
            _ => match pick(&decisions, a) {
                Some(d) if b % 4 == 0 => tally(d),
                Some(d) => vote(d, record::Choice::Yes),
                None => continue,
            },
        };
        let kind = record.kind_of();
        // Attestations and settlements need the receiver as author.
        let author = match &record {
            Record::Confirm(record::Confirm { attestation })
            | Record::Decline(record::Decline { attestation }) => {
                let receiver = town
                    .ledger
                    .state()
                    .attestations
                    .get(attestation)
                    .map(|x| x.receiver);
                NAMES
                    .iter()
                    .find(|n| Some(town.id(n)) == receiver)
                    .copied()
                    .unwrap_or(name)
            }
            _ => name,
        };
        town.advance(60 * i64::from(1 + b % 600));
        if b % 7 == 0 {
            // Some records skip the author's dry run, so derivation refuses a few (a
            // settlement by someone other than the receiver, a vote on a closed decision).
            let _ = town.try_force(name, 0, &record);
            continue;
        }
        if let Ok(id) = town.try_write(author, record) {
            match kind {
                Kind::Attest => attestations.push(id),
                Kind::AidRequest => requests.push(id),
                Kind::AidOffer => offers.push(id),
                Kind::Decision => decisions.push(id),
                _ => {}
            }
        }
    }
    town
}

/// `n` generated steps from a fixed seed: a long ledger without proptest's variety.
pub(crate) fn generated_ops(seed: u64, n: usize) -> Vec<Op> {
    let mut rng = Rng(seed);
    (0..n)
        .map(|_| {
            (
                rng.next() as u8,
                rng.next() as u16,
                rng.next() as u16,
                rng.next() as u16,
            )
        })
        .collect()
}
