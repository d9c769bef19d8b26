//! The synthetic community: a reproducible, realistic ledger written with `Ledger::author`.
//!
//! Members join early (a join request, a vouch, for some a second device), then the
//! community lives: hour attestations that the receiver confirms or declines, Support
//! Point proposals with allocations and closes, mutual-aid requests with offers, an
//! accepted offer and both confirmations (or a cancel), and the odd report and hide.
//! The generator keeps its own view of balances, budgets and flows so that what it writes
//! counts; `Ledger::author` refuses anything derivation would refuse, and such refusals are
//! counted (they should stay near zero).
//!
//! Everything is drawn from [`Rng`] streams of one seed: the same seed gives the same keys,
//! records and times, so the same changes byte for byte except for the signatures'
//! deterministic nonces (ed25519 signing is deterministic too), hence the same ledger.
//!
//! One ledger writes everything, always on top of its heads, so the generated history is
//! a single causal chain; concurrency appears in the network figures only.

use coop_model::record;
use std::collections::{BTreeMap, VecDeque};
use std::time::Instant;

use coop_model::record::{Outcome, ReportTarget, Urgency};
use coop_model::{
    CommunityId, Day, DeviceKey, Envelope, IdentityKey, Ledger, MemberId, Params, Record, RecordId,
};

use super::rng::Rng;

/// Unix time of the first record: 2024-01-01T00:00:00Z.
pub const EPOCH: i64 = 1_704_067_200;

/// What to generate.
#[derive(Debug, Clone)]
pub struct Spec {
    /// The seed of every random draw.
    pub seed: u64,
    /// Number of changes to write (genesis included).
    pub changes: usize,
    /// Number of members (founder included).
    pub members: usize,
    /// Percentage of members with a second device.
    pub second_device_percent: u32,
}

/// What authoring cost per change at one size of the ledger: the time of the window of
/// changes that ends at that size, divided by the changes in it. It is the marginal cost
/// of writing at that size, so a cost that grows with the ledger shows as growth across
/// the checkpoints (the mean over the whole generation would hide it).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct AuthoringCost {
    /// The ledger size at the end of the window.
    pub changes: usize,
    /// Changes in the window.
    pub window: usize,
    /// Seconds per change, written through `Ledger::author` with the generator's own
    /// bookkeeping (refused records included: they cost a dry run each): wall time.
    pub secs_per_change: f64,
    /// The same in CPU time of the whole process (every thread's: the ledger applies its
    /// document batches on a thread of its own), which a machine shared with other work
    /// does not inflate; `None` where it is unavailable.
    pub cpu_secs_per_change: Option<f64>,
    /// The slowest single write in the window (wall time, seconds): a write that waited
    /// for a document batch shows here.
    pub max_write_secs: f64,
    /// The 99th percentile of the window's writes (wall time, seconds).
    pub p99_write_secs: f64,
}

/// Nanoseconds the process has run on a CPU, all its threads (live or ended) together.
pub fn process_cpu_ns() -> Option<u64> {
    let t = rustix::time::clock_gettime(rustix::time::ClockId::ProcessCPUTime);
    let secs = u64::try_from(t.tv_sec).ok()?;
    let nanos = u64::try_from(t.tv_nsec).ok()?;
    Some(secs * 1_000_000_000 + nanos)
}

/// The window of changes timed to end at `size`: a quarter of it, and at least two of the
/// ledger's document batches ([`coop_model::ledger::DOC_BATCH`]; a larger ledger's batches are a
/// sixteenth of it), so that every window pays its share of applying changes to the
/// document, which happens in bursts; at most half of `size`.
pub fn authoring_window(size: usize) -> usize {
    (size / 4)
        .max(2 * coop_model::ledger::DOC_BATCH)
        .min(size / 2)
        .max(1)
}

/// One member's keys (seeds, so a data dir can be made for them).
#[derive(Debug, Clone)]
pub struct MemberKeys {
    /// The member id.
    pub id: MemberId,
    /// Identity key seed.
    pub identity_seed: [u8; 32],
    /// Device key seeds; the first device wrote the join request (or the genesis).
    pub device_seeds: Vec<[u8; 32]>,
    /// Display name.
    pub name: String,
}

impl MemberKeys {
    /// The identity key.
    pub fn identity(&self) -> IdentityKey {
        IdentityKey::from_seed(self.identity_seed)
    }
    /// The `i`-th device key.
    pub fn device(&self, i: usize) -> DeviceKey {
        DeviceKey::from_seed(self.device_seeds[i])
    }
}

/// A generated community.
#[derive(Debug)]
pub struct Community {
    /// The community id.
    pub id: CommunityId,
    /// Members, the founder first, in order of admission.
    pub members: Vec<MemberKeys>,
    /// Every change, in the order written (a causal order: every prefix is a valid ledger).
    pub envelopes: Vec<Envelope>,
    /// Records written, by kind.
    pub kinds: BTreeMap<String, usize>,
    /// Records `Ledger::author` refused (the generator's view disagreed with derivation).
    pub author_refusals: usize,
    /// Unix time of the last record.
    pub last_time: i64,
    /// Seconds the generation took.
    pub generate_secs: f64,
    /// Authoring cost per change at each checkpoint of [`generate_timed`] (none for
    /// [`generate`]).
    pub authoring: Vec<AuthoringCost>,
}

impl Community {
    /// Number of devices.
    pub fn devices(&self) -> usize {
        self.members.iter().map(|m| m.device_seeds.len()).sum()
    }
}

const SERVICES: &[&str] = &[
    "fixed a leaking kitchen tap",
    "two hours of garden work",
    "maths tutoring for a teenager",
    "drove a neighbour to the clinic",
    "cooked meals for a family with a newborn",
    "helped set up a laptop and printer",
    "looked after two children for an afternoon",
    "repaired a bicycle",
    "translated a letter from the council",
    "walked the dog during a hospital stay",
    "sewing and mending",
    "painted a bedroom",
];
const CATEGORIES: &[&str] = &[
    "repairs",
    "gardening",
    "tutoring",
    "transport",
    "cooking",
    "it help",
    "childcare",
    "care",
];
const AID_CATEGORIES: &[&str] = &["material", "time", "skill", "space"];
const AID_TITLES: &[&str] = &[
    "need a ladder for the weekend",
    "help moving a sofa",
    "someone to check on my mother",
    "storage space for a month",
    "borrow a drill",
    "lift to the market on Saturday",
    "help filling in a benefits form",
];
const PROPOSALS: &[&str] = &[
    "community tool library",
    "repair cafe once a month",
    "shared freezer for the food bank",
    "bulk order of seed potatoes",
    "new benches for the courtyard",
    "solar panels on the hall roof",
    "language exchange evenings",
];
const FIRST_NAMES: &[&str] = &[
    "Ada", "Bea", "Cai", "Dev", "Edu", "Fay", "Gil", "Hana", "Ivo", "Jun", "Kai", "Lea", "Mo",
    "Nia", "Oli", "Pia", "Quin", "Ravi", "Sol", "Tess", "Uma", "Vik", "Wen", "Xia", "Yan", "Zoe",
];

#[derive(Debug)]
struct Attestation {
    id: RecordId,
    provider: usize,
    receiver: usize,
    minutes: i64,
}

#[derive(Debug)]
struct Proposal {
    id: RecordId,
    proposer: usize,
    /// (member, points) allocated and still locked.
    locked: Vec<(usize, i64)>,
    born: usize,
}

#[derive(Debug)]
enum AidStage {
    Open { offers: Vec<(RecordId, usize)> },
    Matched { helper: usize, confirmed: [bool; 2] },
}

#[derive(Debug)]
struct Aid {
    id: RecordId,
    requester: usize,
    stage: AidStage,
}

/// The generator: one ledger and its own view of what counts.
struct Gen {
    rng: Rng,
    ledger: Ledger,
    members: Vec<MemberKeys>,
    devices: Vec<Vec<DeviceKey>>,
    admitted: Vec<usize>,
    balance: Vec<i64>,
    sp_allocated: Vec<i64>,
    pending: VecDeque<Attestation>,
    proposals: Vec<Proposal>,
    aids: Vec<Aid>,
    recent: VecDeque<RecordId>,
    envelopes: Vec<Envelope>,
    kinds: BTreeMap<String, usize>,
    refusals: usize,
    time: i64,
    floor: i64,
    budget: i64,
    per_proposal: i64,
    /// The windows timed for [`Community::authoring`]: (first, end) ledger lengths and the
    /// instant each was reached.
    windows: Vec<Window>,
}

#[derive(Debug)]
struct Window {
    start: usize,
    end: usize,
    /// The instant and thread CPU time at which the ledger reached `start`, then `end`.
    started: Option<(Instant, Option<u64>)>,
    ended: Option<(Instant, Option<u64>)>,
    /// The wall time of each write in the window (refused records included), seconds.
    writes: Vec<f64>,
}

/// Generates a community. Panics only if the founding itself fails (a bug, not data).
pub fn generate(spec: &Spec) -> Community {
    generate_timed(spec, &[])
}

/// [`generate`], timing authoring in a window ending at each of `checkpoints` (ledger
/// sizes; those beyond `spec.changes` are skipped) for [`Community::authoring`].
pub fn generate_timed(spec: &Spec, checkpoints: &[usize]) -> Community {
    let started = Instant::now();
    let mut keys = Rng::derive(spec.seed, 1);
    let members: Vec<MemberKeys> = (0..spec.members.max(2))
        .map(|i| {
            let identity_seed = keys.seed32();
            let first = keys.seed32();
            let second = keys.seed32();
            let two = i > 0 && keys.chance(spec.second_device_percent);
            MemberKeys {
                id: IdentityKey::from_seed(identity_seed).member_id(),
                identity_seed,
                device_seeds: if two {
                    vec![first, second]
                } else {
                    vec![first]
                },
                name: format!("{} {}", FIRST_NAMES[i % FIRST_NAMES.len()], i),
            }
        })
        .collect();
    let params = Params::default();
    let founder = &members[0];
    let (ledger, genesis) = Ledger::found(
        &founder.identity(),
        &founder.device(0),
        "Riverside Co-op",
        &founder.name,
        params.clone(),
        EPOCH,
    )
    .expect("founding a community in memory");
    let mut g = Gen {
        rng: Rng::derive(spec.seed, 2),
        ledger,
        devices: members
            .iter()
            .map(|m| (0..m.device_seeds.len()).map(|d| m.device(d)).collect())
            .collect(),
        balance: vec![0; members.len()],
        sp_allocated: vec![0; members.len()],
        members,
        admitted: vec![0],
        pending: VecDeque::new(),
        proposals: Vec::new(),
        aids: Vec::new(),
        recent: VecDeque::new(),
        envelopes: vec![genesis],
        kinds: BTreeMap::new(),
        refusals: 0,
        time: EPOCH,
        floor: params.timebank_floor_minutes,
        budget: params.sp_budget,
        per_proposal: params.sp_max_per_proposal,
        windows: checkpoints
            .iter()
            .filter(|&&n| n > 1 && n <= spec.changes)
            .map(|&n| Window {
                start: n - authoring_window(n),
                end: n,
                started: None,
                ended: None,
                writes: Vec::new(),
            })
            .collect(),
    };
    *g.kinds.entry("genesis".into()).or_default() += 1;
    g.admit_everyone(spec.changes);
    while g.envelopes.len() < spec.changes {
        g.step();
    }
    g.envelopes.truncate(spec.changes);
    let authoring = g
        .windows
        .iter_mut()
        .filter_map(|w| {
            let ((t0, cpu0), (t1, cpu1)) = (w.started?, w.ended?);
            let n = (w.end - w.start) as f64;
            let cpu = cpu0
                .zip(cpu1)
                .map(|(a, b)| b.saturating_sub(a) as f64 / 1e9);
            w.writes.sort_by(f64::total_cmp);
            let p99 = w
                .writes
                .get((w.writes.len() * 99 / 100).min(w.writes.len().saturating_sub(1)))
                .copied()
                .unwrap_or(0.0);
            Some(AuthoringCost {
                changes: w.end,
                window: w.end - w.start,
                secs_per_change: t1.duration_since(t0).as_secs_f64() / n,
                cpu_secs_per_change: cpu.map(|c| c / n),
                max_write_secs: w.writes.last().copied().unwrap_or(0.0),
                p99_write_secs: p99,
            })
        })
        .collect();
    Community {
        id: g.ledger.community(),
        members: g.members,
        envelopes: g.envelopes,
        kinds: g.kinds,
        author_refusals: g.refusals,
        last_time: g.time,
        generate_secs: started.elapsed().as_secs_f64(),
        authoring,
    }
}

impl Gen {
    /// Writes `record` as device `device` of member `member`; returns its id if it counted.
    fn write(&mut self, member: usize, device: usize, record: Record) -> Option<RecordId> {
        self.time += 20 + self.rng.below(400) as i64;
        let kind = record.kind();
        let key = &self.devices[member][device];
        let t = Instant::now();
        let written = self.ledger.author(key, record, self.time);
        let secs = t.elapsed().as_secs_f64();
        // The write belongs to the windows the ledger is inside of (started, not ended).
        let len = self.envelopes.len();
        for w in &mut self.windows {
            if w.start <= len && len < w.end {
                w.writes.push(secs);
            }
        }
        match written {
            Ok(env) => {
                let id = env.record_id().expect("an authored change has an id");
                self.envelopes.push(env);
                self.mark();
                *self.kinds.entry(kind.to_string()).or_default() += 1;
                self.recent.push_back(id);
                if self.recent.len() > 64 {
                    self.recent.pop_front();
                }
                Some(id)
            }
            Err(_) => {
                self.refusals += 1;
                None
            }
        }
    }

    /// Notes the instant the ledger reached the start or end of a timed window.
    fn mark(&mut self) {
        let len = self.envelopes.len();
        if !self.windows.iter().any(|w| w.start == len || w.end == len) {
            return;
        }
        let now = (Instant::now(), process_cpu_ns());
        for w in &mut self.windows {
            if w.start == len {
                w.started = Some(now);
            }
            if w.end == len {
                w.ended = Some(now);
            }
        }
    }

    /// Writes as a random device of `member`.
    fn write_as(&mut self, member: usize, record: Record) -> Option<RecordId> {
        let device = self.rng.below(self.devices[member].len());
        self.write(member, device, record)
    }

    fn random_admitted(&mut self) -> usize {
        *self.rng.pick(&self.admitted)
    }

    /// Two distinct admitted members.
    fn pair(&mut self) -> (usize, usize) {
        let a = self.random_admitted();
        loop {
            let b = self.random_admitted();
            if b != a {
                return (a, b);
            }
        }
    }

    fn today(&self) -> Day {
        Day::from_unix(self.time)
    }

    /// Join requests, vouches and second devices, with a little activity in between so
    /// that the early ledger is not only membership.
    fn admit_everyone(&mut self, budget: usize) {
        let community = self.ledger.community();
        for m in 1..self.members.len() {
            if self.envelopes.len() + 3 >= budget {
                break;
            }
            let keys = self.members[m].clone();
            let join = Record::from(record::Join {
                member: keys.id,
                cert: keys
                    .identity()
                    .certify(&community, &keys.device(0).device_id()),
                display_name: keys.name.clone(),
            });
            if self.write(m, 0, join).is_none() {
                continue;
            }
            let voucher = self.random_admitted();
            if self
                .write_as(voucher, Record::Vouch(record::Vouch { member: keys.id }))
                .is_none()
            {
                continue;
            }
            self.admitted.push(m);
            if keys.device_seeds.len() > 1 {
                let device = Record::from(record::Device {
                    member: keys.id,
                    cert: keys
                        .identity()
                        .certify(&community, &keys.device(1).device_id()),
                    label: None,
                    identity: None,
                });
                self.write(m, 1, device);
            }
            if self.admitted.len() > 3 && self.rng.chance(30) {
                self.attest();
            }
        }
    }

    /// One step of community life.
    fn step(&mut self) {
        let roll = self.rng.below(100);
        match roll {
            0..=34 if self.pending.len() > 3 => self.settle(),
            0..=59 => self.attest(),
            60..=79 => self.support_points(),
            80..=98 => self.mutual_aid(),
            _ => self.moderation(),
        }
    }

    fn attest(&mut self) {
        let (mut provider, mut receiver) = self.pair();
        let minutes = *self.rng.pick(&[30i64, 45, 60, 60, 90, 120, 180]);
        // People in debt to the time bank give more than they receive.
        if self.balance[receiver] - minutes < self.floor + 120 {
            std::mem::swap(&mut provider, &mut receiver);
        }
        let back = self.rng.below(5) as i32;
        let record = Record::Attest(record::Attest {
            to: self.members[receiver].id,
            minutes: coop_model::Minutes(minutes),
            service: self.rng.pick(SERVICES).to_string(),
            category: self.rng.pick(CATEGORIES).to_string(),
            date: Day(self.today().0 - back),
        });
        if let Some(id) = self.write_as(provider, record) {
            self.pending.push_back(Attestation {
                id,
                provider,
                receiver,
                minutes,
            });
        }
    }

    /// The receiver confirms (or, one time in twenty or when it would cross the floor,
    /// declines) one of the oldest pending attestations; a few stay pending for good.
    fn settle(&mut self) {
        let at = self.rng.below(self.pending.len().min(4));
        let Some(a) = self.pending.remove(at) else {
            return;
        };
        if self.rng.chance(2) {
            return; // Never settled: some attestations stay pending.
        }
        let confirm = !self.rng.chance(5) && self.balance[a.receiver] - a.minutes >= self.floor;
        let record = if confirm {
            Record::Confirm(record::Confirm { attestation: a.id })
        } else {
            Record::Decline(record::Decline { attestation: a.id })
        };
        if self.write_as(a.receiver, record).is_some() && confirm {
            self.balance[a.provider] += a.minutes;
            self.balance[a.receiver] -= a.minutes;
        }
    }

    fn support_points(&mut self) {
        let open = self.proposals.len();
        let roll = self.rng.below(100);
        if open < 3 || (roll < 8 && open < 12) {
            let proposer = self.random_admitted();
            let title = format!("{} #{}", self.rng.pick(PROPOSALS), self.envelopes.len());
            let record = Record::Proposal(record::Proposal {
                description: format!(
                    "Proposed by {}: {title}. Costs and volunteers to be discussed at the \
                     next assembly.",
                    self.members[proposer].name
                ),
                title,
            });
            if let Some(id) = self.write_as(proposer, record) {
                self.proposals.push(Proposal {
                    id,
                    proposer,
                    locked: Vec::new(),
                    born: self.envelopes.len(),
                });
            }
            return;
        }
        let p = self.rng.below(open);
        let age = self.envelopes.len() - self.proposals[p].born;
        if roll < 20 && age > 300 {
            let proposal = self.proposals.swap_remove(p);
            let outcome = *self.rng.pick(&[
                Outcome::Delivered,
                Outcome::Delivered,
                Outcome::Delivered,
                Outcome::Cancelled,
                Outcome::Rejected,
                Outcome::Expired,
            ]);
            let record = Record::Close(record::Close {
                proposal: proposal.id,
                outcome,
            });
            if self.write_as(proposal.proposer, record).is_some() {
                for (m, points) in proposal.locked {
                    self.sp_allocated[m] -= points;
                }
            } else {
                self.proposals.push(proposal);
            }
            return;
        }
        let member = self.random_admitted();
        let on_this: i64 = self.proposals[p]
            .locked
            .iter()
            .filter(|(m, _)| *m == member)
            .map(|(_, pts)| pts)
            .sum();
        let room = (self.per_proposal - on_this).min(self.budget - self.sp_allocated[member]);
        if room <= 0 {
            self.attest();
            return;
        }
        let points = self.rng.range(1, room.min(5));
        let record = Record::Allocate(record::Allocate {
            proposal: self.proposals[p].id,
            points: coop_model::Points(points),
        });
        if self.write_as(member, record).is_some() {
            self.proposals[p].locked.push((member, points));
            self.sp_allocated[member] += points;
        }
    }

    fn mutual_aid(&mut self) {
        if self.aids.len() < 4 || (self.aids.len() < 10 && self.rng.chance(15)) {
            let requester = self.random_admitted();
            let title = self.rng.pick(AID_TITLES).to_string();
            let record = Record::from(record::AidRequest {
                category: self.rng.pick(AID_CATEGORIES).to_string(),
                description: format!("{title}: anyone nearby who can help? Thank you!"),
                title,
                urgency: *self
                    .rng
                    .pick(&[Urgency::Low, Urgency::Medium, Urgency::High]),
                needed_by: self
                    .rng
                    .chance(50)
                    .then(|| Day(self.today().0 + self.rng.range(1, 14) as i32)),
                location: self.rng.chance(40).then(|| "north side".to_string()),
            });
            if let Some(id) = self.write_as(requester, record) {
                self.aids.push(Aid {
                    id,
                    requester,
                    stage: AidStage::Open { offers: Vec::new() },
                });
            }
            return;
        }
        let a = self.rng.below(self.aids.len());
        let (id, requester) = (self.aids[a].id, self.aids[a].requester);
        let offers = match &self.aids[a].stage {
            AidStage::Open { offers } => Some(offers.clone()),
            AidStage::Matched { .. } => None,
        };
        match offers {
            Some(_) if self.rng.chance(4) => {
                if self
                    .write_as(
                        requester,
                        Record::AidCancel(record::AidCancel { request: id }),
                    )
                    .is_some()
                {
                    self.aids.swap_remove(a);
                }
            }
            Some(offers) if offers.is_empty() || (offers.len() < 3 && self.rng.chance(40)) => {
                let helper = loop {
                    let h = self.random_admitted();
                    if h != requester {
                        break h;
                    }
                };
                let record = Record::AidOffer(record::AidOffer {
                    request: id,
                    message: format!("I can help, {}.", self.members[requester].name),
                    availability: "weekday evenings".into(),
                });
                if let Some(offer) = self.write_as(helper, record) {
                    if let AidStage::Open { offers } = &mut self.aids[a].stage {
                        offers.push((offer, helper));
                    }
                }
            }
            Some(offers) => {
                let (offer, helper) = *self.rng.pick(&offers);
                if self
                    .write_as(requester, Record::AidAccept(record::AidAccept { offer }))
                    .is_some()
                {
                    self.aids[a].stage = AidStage::Matched {
                        helper,
                        confirmed: [false, false],
                    };
                }
            }
            None => {
                let AidStage::Matched { helper, confirmed } = self.aids[a].stage else {
                    return;
                };
                let side = if confirmed[0] { 1 } else { 0 };
                let who = if side == 0 { requester } else { helper };
                let record = Record::AidConfirm(record::AidConfirm {
                    request: id,
                    rating: self.rng.chance(70).then(|| self.rng.range(3, 5)),
                    feedback: self.rng.chance(30).then(|| "thank you!".to_string()),
                });
                if self.write_as(who, record).is_some() {
                    if side == 1 {
                        self.aids.swap_remove(a);
                    } else if let AidStage::Matched { confirmed, .. } = &mut self.aids[a].stage {
                        confirmed[0] = true;
                    }
                }
            }
        }
    }

    /// Reports (most) and a moderator hiding a reported record (a few).
    fn moderation(&mut self) {
        let Some(&target) = self.recent.front() else {
            return;
        };
        let reporter = self.random_admitted();
        let reported = self.write_as(
            reporter,
            Record::Report(record::Report {
                target_kind: ReportTarget::Record,
                target: target.0,
                reason: "looks like a duplicate entry".into(),
            }),
        );
        if reported.is_some() && self.rng.chance(30) {
            self.write_as(
                0,
                Record::Hide(record::Hide {
                    record: target,
                    reason: "duplicate, hidden after a report".into(),
                }),
            );
        }
    }
}
