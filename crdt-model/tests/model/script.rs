//! Tests as data: a tiny script of signed operations from several members, run on one
//! replica, and the derived state rendered as compact text for `expect-test`.
//!
//! ```text
//! param sp_max_per_proposal=60        # before `community`: genesis parameters
//! community alice bob carol           # alice founds; bob and carol join, alice vouches
//! join erin                           # erin only asks to join
//! now 2026-12-01                      # render the fair-exchange index at that day
//! a1 = bob: attest alice 180 "car repair" [2026-11-01]
//! alice: confirm a1                   # also: decline LABEL
//! p1 = alice: propose "Garden"
//! bob@1: allocate p1 10               # device 1 of bob (its certificate is written first)
//! bob!: allocate p1 1                 # `!` skips the author's dry run: derivation decides
//! alice: close p1 delivered
//! r1 = bob: request skill "Fix my bike"
//! o1 = carol: offer r1 "I can do it on Saturday"
//! bob: accept o1
//! bob: done r1 [5] ["feedback"]       # aid confirmation with optional rating and feedback
//! bob: cancel r1
//! alice: vouch erin                   # also: remove NAME (refused: removal is by decision)
//! bob@1: revoke_device bob@0 ["why"]  # a member revokes one of their devices
//! d1 = alice: decide param sp_max_per_proposal=20   # window: 1 day from now
//! d2 = alice: decide grant bob moderator   # also: revoke NAME ROLE, remove NAME, general "T", allocate APPLICATION
//! bob: vote d1 yes                    # yes, no, abstain
//! wait 2d                             # advance the authors' clock (also 3h, 90m, 30s)
//! carol: tally d1                     # closes the decision after its window
//! bob: hide p1 "spam"                 # moderation; also: report record LABEL "why",
//!                                     # report member NAME "why"
//! bob: visibility private             # public | members | private
//! bob: rename "Robert B."             # a new display name for its author
//! clock 2026-10-05                    # later records claim times from 09:00 UTC that day
//! metrics 2026-12-01 [2026-10-01]     # render the metrics at that day [since that day]
//! clock 2026-10-01T18:00              # with a time: the next write claims exactly that
//! ```
//!
//! Collective-purchase verbs are listed in `purchase.rs`.
//! Pools and relief (`tests/model/pools.rs`; amounts in minor units):
//!
//! ```text
//! p1 = bob: pool "Solar" EUR reinvest   # distribute, hybrid; `relief` after: a relief fund
//! k1 = bob: contribute p1 30000
//! alice: confirm_contribution k1
//! a1 = carol: apply p1 45000 "Panels"
//! alice: disburse a1 10000
//! alice: return a1 5000                 # or a pool: money back into it
//! r1 = bob: relief f1 20000 high "The boiler broke"   # sealed to the founder
//! alice: approve r1
//! ```
//!
//! A line the author's dry run refuses is not written and is listed as "(not written)".
//! After every line, incremental derivation must equal derivation from scratch; at the end
//! a second replica fed the envelopes in reverse order must derive byte-identical state.

use coop_model::record;
use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;

use coop_model::record::DecisionAction;
use coop_model::state::{AttestationStatus, EntryStatus, ProposalStatus};
use coop_model::*;

use super::support::*;

/// Runs a script and compares the rendered state with the expectation (`UPDATE_EXPECT=1`
/// rewrites it).
pub(crate) fn check(script: &str, expected: expect_test::Expect) {
    expected.assert_eq(&run(script));
}

/// Runs a script and returns the rendered state.
pub(crate) fn run(script: &str) -> String {
    let mut params = Params::default();
    let mut town: Option<Town> = None;
    let mut labels: BTreeMap<String, RecordId> = BTreeMap::new();
    let mut lines_of: BTreeMap<RecordId, String> = BTreeMap::new();
    let mut not_written: Vec<(String, Rejection, &str)> = Vec::new();
    let mut devices: BTreeSet<(String, usize)> = BTreeSet::new();
    let mut now: Option<Day> = None;
    let mut metrics: Option<(Day, Option<Day>)> = None;

    for raw in script.lines() {
        let line = raw.split(" #").next().unwrap_or("").trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let words = tokens(line);
        match words[0].as_str() {
            "param" => params.assign(&words[1]).expect("a valid parameter"),
            "community" => {
                let names: Vec<&str> = words[1..].iter().map(String::as_str).collect();
                let tw = Town::found(params.clone(), &names);
                for n in &names {
                    devices.insert((n.to_string(), 0));
                }
                town = Some(tw);
            }
            "join" => {
                town.as_mut()
                    .expect("`community` must come first")
                    .newcomer(&words[1]);
                devices.insert((words[1].clone(), 0));
            }
            "now" => now = Some(day(&words[1])),
            "wait" => {
                let w = &words[1];
                let (n, unit) = w.split_at(w.len() - 1);
                let n: i64 = n.parse().expect("wait N[dhms]");
                let secs = match unit {
                    "d" => n * 86_400,
                    "h" => n * 3_600,
                    "m" => n * 60,
                    "s" => n,
                    _ => panic!("wait N[dhms]"),
                };
                town.as_mut()
                    .expect("`community` must come first")
                    .advance(secs);
            }
            "clock" => {
                let town = town.as_mut().expect("`community` must come first");
                if words[1].contains('T') {
                    town.claim_next(super::purchase::at(&words[1]));
                } else {
                    town.set_clock(day(&words[1]).0 as i64 * 86_400 + 9 * 3600);
                }
            }
            "metrics" => metrics = Some((day(&words[1]), words.get(2).map(|w| day(w)))),
            _ => {
                let town = town.as_mut().expect("`community` must come first");
                let (label, rest) = match line.split_once(" = ") {
                    Some((l, r)) => (Some(l.trim().to_string()), r),
                    None => (None, line),
                };
                let (who, op) = rest.split_once(':').expect("NAME: VERB ...");
                let force = who.ends_with('!');
                let who = who.trim_end_matches('!');
                let (name, dev) = match who.split_once('@') {
                    Some((n, d)) => (n.to_string(), d.parse::<usize>().expect("a device")),
                    None => (who.to_string(), 0),
                };
                if devices.insert((name.clone(), dev)) {
                    town.add_device(&name, dev);
                }
                let record = parse_record(town, &labels, &tokens(op.trim()));
                let written = if force {
                    town.try_force(&name, dev, &record)
                        .map_err(|r| (r, "refused by the gate"))
                } else {
                    town.try_write_on(&name, dev, record)
                        .map_err(|r| (r, "not written"))
                };
                match written {
                    Ok(id) => {
                        lines_of.insert(id, line.to_string());
                        if let Some(l) = label {
                            labels.insert(l, id);
                        }
                    }
                    Err((r, how)) => not_written.push((line.to_string(), r, how)),
                }
                let fresh = town.ledger.derive_from_scratch();
                assert_eq!(
                    town.ledger.state(),
                    &fresh,
                    "incremental != scratch after {line:?}"
                );
            }
        }
    }

    let mut town = town.expect("a community");
    let state = town.ledger.state().clone();
    let mut backwards = Ledger::new(town.community());
    let mut envs: Vec<Envelope> = town.ledger.envelopes().collect();
    envs.reverse();
    let out = backwards.ingest(envs);
    assert!(out.rejected.is_empty() && out.pending == 0, "{out:?}");
    assert_eq!(
        backwards
            .state()
            .canonical_json()
            .expect("the state serializes"),
        state.canonical_json().expect("the state serializes"),
        "a replica fed in reverse order differs"
    );
    let mut out = render(&town, &state, &labels, &lines_of, &not_written, now);
    if let Some((at, since)) = metrics {
        let by_id: BTreeMap<RecordId, &str> =
            labels.iter().map(|(l, id)| (*id, l.as_str())).collect();
        let label = |r: &RecordId| by_id.get(r).map_or_else(|| r.short(), |l| l.to_string());
        out.push_str(&super::metrics::render(&state, at, since, &label));
    }
    out
}

fn tokens(s: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut cur = String::new();
    let mut quoted = false;
    for c in s.chars() {
        match c {
            '"' => {
                if quoted {
                    out.push(std::mem::take(&mut cur));
                }
                quoted = !quoted;
            }
            c if c.is_whitespace() && !quoted => {
                if !cur.is_empty() {
                    out.push(std::mem::take(&mut cur));
                }
            }
            c => cur.push(c),
        }
    }
    if !cur.is_empty() {
        out.push(cur);
    }
    out
}

fn parse_record(town: &Town, labels: &BTreeMap<String, RecordId>, w: &[String]) -> Record {
    let label = |i: usize| -> RecordId {
        *labels
            .get(&w[i])
            .unwrap_or_else(|| panic!("no record labelled {}", w[i]))
    };
    let num = |i: usize| -> i64 { w[i].parse().expect("a number") };
    match w[0].as_str() {
        "attest" => attest_on(
            town.id(&w[1]),
            num(2),
            &w[3],
            w.get(4).map_or("2026-11-01", String::as_str),
        ),
        "confirm" => confirm(label(1)),
        "decline" => decline(label(1)),
        "propose" => proposal(&w[1]),
        "allocate" => allocate(label(1), num(2)),
        "close" => close(label(1), w[2].parse().expect("an outcome")),
        "request" => aid_request(&w[1], &w[2]),
        "offer" => aid_offer(label(1), &w[2]),
        "accept" => aid_accept(label(1)),
        "done" => aid_confirm(
            label(1),
            w.get(2).map(|r| r.parse().expect("a rating")),
            w.get(3).map(String::as_str),
        ),
        "cancel" => aid_cancel(label(1)),
        "vouch" => Record::Vouch(record::Vouch {
            member: town.id(&w[1]),
        }),
        "remove" => remove(town.id(&w[1])),
        "revoke_device" => {
            let (name, n) = w[1].split_once('@').expect("NAME@DEVICE");
            Record::DeviceRevoke(record::DeviceRevoke {
                device: town.dev(name, n.parse().expect("a device")).device_id(),
                reason: w.get(2).cloned().unwrap_or_default(),
            })
        }
        "decide" => {
            let action = match w[1].as_str() {
                "general" => DecisionAction::General,
                "param" => {
                    let (key, value) = w[2].split_once('=').expect("KEY=VALUE");
                    DecisionAction::Param {
                        key: key.into(),
                        value: value.into(),
                    }
                }
                "grant" => DecisionAction::RoleGrant {
                    member: town.id(&w[2]),
                    role: w[3].parse().expect("a role"),
                },
                "revoke" => DecisionAction::RoleRevoke {
                    member: town.id(&w[2]),
                    role: w[3].parse().expect("a role"),
                },
                "remove" => DecisionAction::Removal {
                    member: town.id(&w[2]),
                },
                "allocate" => DecisionAction::PoolAllocation {
                    application: label(2),
                },
                other => panic!("unknown decision action {other}"),
            };
            decision(&w[1..].join(" "), town.now() + 86_400, action)
        }
        "vote" => vote(label(1), w[2].parse().expect("yes, no or abstain")),
        "hide" => Record::Hide(record::Hide {
            record: label(1),
            reason: w[2].clone(),
        }),
        "report" => Record::Report(record::Report {
            target_kind: w[1].parse().expect("record or member"),
            target: if w[1] == "member" {
                town.id(&w[2]).0
            } else {
                label(2).0
            },
            reason: w[3].clone(),
        }),
        "tally" => tally(label(1)),
        "visibility" => Record::Visibility(record::VisibilitySetting {
            level: w[1].parse().expect("public, members or private"),
        }),
        "rename" => Record::Rename(record::Rename {
            display_name: w[1].clone(),
        }),
        other => super::purchase::verb(town, labels, w)
            .or_else(|| super::pools::parse_verb(town, &label, w))
            .unwrap_or_else(|| panic!("unknown verb {other}")),
    }
}

fn render(
    town: &Town,
    s: &State,
    labels: &BTreeMap<String, RecordId>,
    lines_of: &BTreeMap<RecordId, String>,
    not_written: &[(String, Rejection, &str)],
    now: Option<Day>,
) -> String {
    let names: BTreeMap<MemberId, &str> = town
        .people
        .values()
        .map(|p| (p.id(), p.name.as_str()))
        .collect();
    let who = |m: &MemberId| names.get(m).copied().unwrap_or("?").to_string();
    let by_id: BTreeMap<RecordId, &str> = labels.iter().map(|(l, id)| (*id, l.as_str())).collect();
    let rec = |r: &RecordId| by_id.get(r).map_or_else(|| r.short(), |l| l.to_string());
    // Records are listed in total order, which is stable and reads like the script.
    let position: BTreeMap<RecordId, usize> = s.log.iter().map(|e| (e.id, e.position)).collect();
    let pos = |r: &RecordId| position.get(r).copied().unwrap_or(usize::MAX);
    let mut attestations: Vec<_> = s.attestations.values().collect();
    attestations.sort_by_key(|a| pos(&a.id));
    let mut proposals: Vec<_> = s.proposals.values().collect();
    proposals.sort_by_key(|p| pos(&p.id));
    let mut requests: Vec<_> = s.aid_requests.values().collect();
    requests.sort_by_key(|r| pos(&r.id));
    // Details name members and records by short id; show names and labels instead.
    let named = |detail: &str| -> String {
        let mut d = detail.to_string();
        for (id, name) in &names {
            d = d.replace(&id.short(), name);
        }
        for (id, label) in &by_id {
            d = d.replace(&id.short(), label);
        }
        d
    };
    let mut members: Vec<_> = s.members.values().collect();
    members.sort_by_key(|m| m.display_name.clone());

    let mut o = String::new();
    o.push_str("members\n");
    for m in &members {
        let status = format!("{:?}", m.status).to_lowercase();
        let _ = write!(
            o,
            "  {} {status}: time {:+} (+{} -{}), sp {}/{}",
            m.display_name,
            m.time.balance,
            m.time.provided,
            m.time.received,
            m.sp.available,
            m.sp.budget,
        );
        if m.aid.given + m.aid.received > 0 {
            let _ = write!(
                o,
                ", aid given {} received {} ratings {:?}",
                m.aid.given, m.aid.received, m.aid.ratings
            );
        }
        if Some(m.id) != s.founder && !m.roles.is_empty() {
            let _ = write!(
                o,
                ", roles {}",
                m.roles
                    .iter()
                    .map(|r| r.as_str())
                    .collect::<Vec<_>>()
                    .join(" ")
            );
        }
        if m.visibility != Default::default() {
            let _ = write!(o, ", visibility {}", m.visibility);
        }
        if m.devices.len() > 1 || m.devices.values().any(|f| *f) {
            let forked = m.devices.values().filter(|f| **f).count();
            let _ = write!(o, ", {} devices ({forked} forked)", m.devices.len());
        }
        o.push('\n');
    }
    if !s.attestations.is_empty() {
        o.push_str("attestations\n");
        for a in attestations {
            let status = match a.status {
                AttestationStatus::Pending => "pending",
                AttestationStatus::Confirmed => "confirmed",
                AttestationStatus::Declined => "declined",
            };
            let _ = writeln!(
                o,
                "  {}: {} -> {} {} min {:?} {} {status}",
                rec(&a.id),
                who(&a.provider),
                who(&a.receiver),
                a.minutes,
                a.service,
                a.date
            );
        }
    }
    if !s.proposals.is_empty() {
        o.push_str("proposals\n");
        for p in proposals {
            let status = match p.status {
                ProposalStatus::Open => "open".to_string(),
                ProposalStatus::Closed(c) => format!("closed {c}"),
            };
            let _ = writeln!(
                o,
                "  {}: {:?} by {} {status}, {} SP active (peak {}) from {} supporters{}",
                rec(&p.id),
                p.title,
                who(&p.proposer),
                p.active_points,
                p.peak_points,
                p.supporters,
                if p.prioritized { ", prioritized" } else { "" }
            );
        }
    }
    if !s.aid_requests.is_empty() {
        o.push_str("aid\n");
        for r in requests {
            let offers: Vec<String> = r.offers.iter().map(|x| rec(&x.id)).collect();
            let _ = write!(
                o,
                "  {}: {:?} ({}) by {} {}, offers [{}]",
                rec(&r.id),
                r.title,
                r.category,
                who(&r.requester),
                r.status.as_str(),
                offers.join(" ")
            );
            if let (Some(off), Some(h)) = (r.accepted_offer, r.helper) {
                let _ = write!(o, ", accepted {} from {}", rec(&off), who(&h));
            }
            for (side, c) in [
                ("requester", &r.requester_confirmation),
                ("helper", &r.helper_confirmation),
            ] {
                if let Some(c) = c {
                    let _ = write!(o, ", {side} done");
                    if let Some(x) = c.rating {
                        let _ = write!(o, " rating {x}");
                    }
                    if let Some(f) = &c.feedback {
                        let _ = write!(o, " {f:?}");
                    }
                }
            }
            o.push('\n');
        }
    }
    if let Some(today) = now {
        let _ = writeln!(
            o,
            "fairness on {today} over {} days",
            s.params.fairness_window_days
        );
        for m in &members {
            let b = s
                .balance(&m.id, today.0 as i64 * 86_400 + 43_200)
                .expect("a member");
            if b.window_provided + b.window_received == Minutes(0) {
                continue;
            }
            let ratio = b.ratio_percent.map_or("-".into(), |r| format!("{r}%"));
            let _ = writeln!(
                o,
                "  {}: provided {} received {} ratio {ratio}{}",
                m.display_name,
                b.window_provided,
                b.window_received,
                if b.warning { " WARNING" } else { "" }
            );
        }
    }
    if !s.decisions.is_empty() {
        o.push_str("decisions\n");
        let mut decisions: Vec<_> = s.decisions.values().collect();
        decisions.sort_by_key(|d| pos(&d.id));
        for d in decisions {
            let _ = write!(
                o,
                "  {}: {:?} by {} {}",
                rec(&d.id),
                d.title,
                who(&d.proposer),
                d.status.as_str()
            );
            if let Some(t) = &d.tally {
                let _ = write!(
                    o,
                    " (yes {} no {} abstain {} of {} eligible)",
                    t.yes, t.no, t.abstain, t.eligible
                );
                if let Some(e) = &t.effect_error {
                    let _ = write!(o, ", not applied: {}", named(e));
                }
            } else {
                let _ = write!(o, ", {} votes", d.votes.len());
            }
            o.push('\n');
        }
    }
    let changed: Vec<_> = s
        .params_history
        .iter()
        .filter(|c| c.decision.is_some())
        .collect();
    if !changed.is_empty() {
        o.push_str("parameter changes\n");
        for c in changed {
            let d = c.decision.map(|d| rec(&d)).unwrap_or_default();
            let _ = writeln!(o, "  {}={} by {d}", c.key, c.value);
        }
    }
    super::purchase::render(&mut o, s, &who, &rec, now);
    super::pools::render(&mut o, town, s, &rec, &who);
    let refused: Vec<_> = s
        .log
        .iter()
        .filter(|e| e.status == EntryStatus::Refused)
        .collect();
    if !refused.is_empty() || !not_written.is_empty() {
        o.push_str("refused\n");
        for e in refused {
            let what = lines_of
                .get(&e.id)
                .cloned()
                .unwrap_or_else(|| format!("{} {}", e.kind, e.summary));
            let _ = writeln!(
                o,
                "  {what} => {}: {}",
                e.reason.map_or("?", |r| r.as_str()),
                named(e.detail.as_deref().unwrap_or(""))
            );
        }
        for (line, r, how) in not_written {
            let _ = writeln!(o, "  {line} => {}: {} ({how})", r.reason, named(&r.detail));
        }
    }
    let _ = writeln!(o, "counted {} refused {}", s.counted, s.refused);
    o
}
