//! Governance records: decisions, votes and tallies. Rules: docs/RULES.md, "Governance".

use super::layout::{record_layout, Codec, Field, Fields, Int, Raw, RecordError, Text, Word};
use crate::ids::{MemberId, RecordId};
use crate::terms::{Choice, DecisionAction, Role};

/// The action is laid out as the field `action` (its kind) and the fields of that kind
/// beside it: `key`/`value`, `member`/`role`, `member`, `application`, or
/// `member`/`new_identity`.
#[derive(Debug, Clone, Copy)]
pub(crate) struct ActionFields;

/// A role named in a decision: only the grantable ones.
fn grantable(f: &Fields<'_>) -> Result<Role, RecordError> {
    let role: Role = Word.take(f, "role")?;
    if !Role::GRANTABLE.contains(&role) {
        return Err(RecordError::Invalid {
            field: "role",
            reason: format!("field \"role\": {role} is not granted by decision"),
        });
    }
    Ok(role)
}

impl Codec<DecisionAction> for ActionFields {
    fn put(&self, name: &'static str, v: &DecisionAction, out: &mut Vec<(&'static str, Field)>) {
        Text(1, 32).put(name, &v.as_str().to_string(), out);
        match v {
            DecisionAction::General => {}
            DecisionAction::Param { key, value } => {
                Text(1, 64).put("key", key, out);
                Text(1, 4096).put("value", value, out);
            }
            DecisionAction::RoleGrant { member, role }
            | DecisionAction::RoleRevoke { member, role } => {
                Raw.put("member", member, out);
                Word.put("role", role, out);
            }
            DecisionAction::Removal { member } => Raw.put("member", member, out),
            DecisionAction::PoolAllocation { application } => {
                Raw.put("application", application, out)
            }
            DecisionAction::Recovery {
                member,
                new_identity,
            } => {
                Raw.put("member", member, out);
                Raw.put("new_identity", new_identity, out);
            }
        }
    }
    fn take(&self, f: &Fields<'_>, name: &'static str) -> Result<DecisionAction, RecordError> {
        Ok(match Text(1, 32).take(f, name)?.as_str() {
            "general" => DecisionAction::General,
            "param" => DecisionAction::Param {
                key: Text(1, 64).take(f, "key")?,
                value: Text(1, 4096).take(f, "value")?,
            },
            "role_grant" => DecisionAction::RoleGrant {
                member: Raw.take(f, "member")?,
                role: grantable(f)?,
            },
            "role_revoke" => DecisionAction::RoleRevoke {
                member: Raw.take(f, "member")?,
                role: grantable(f)?,
            },
            "removal" => DecisionAction::Removal {
                member: Raw.take(f, "member")?,
            },
            "pool_allocation" => DecisionAction::PoolAllocation {
                application: Raw.take(f, "application")?,
            },
            "recovery" => DecisionAction::Recovery {
                member: Raw.take(f, "member")?,
                new_identity: Raw.take(f, "new_identity")?,
            },
            other => {
                return Err(RecordError::Invalid {
                    field: name,
                    reason: format!("unknown decision action {other:?}"),
                })
            }
        })
    }
}

record_layout! {
    /// A decision put to the vote of all members.
    "decision" => pub struct Decision {
        /// 3..=100 characters.
        title: String = Text(3, 100),
        /// Up to 2,000 characters.
        description: String = Text(0, 2000),
        /// End of the voting window, Unix seconds.
        closes_at: i64 = Int(i64::MIN, i64::MAX),
        /// What passing it does.
        action: DecisionAction = ActionFields,
    }
}

record_layout! {
    /// One member's vote on a decision.
    "vote" => pub struct Vote {
        /// The decision.
        decision: RecordId = Raw,
        /// Yes, no or abstain.
        choice: Choice = Word,
    }
}

record_layout! {
    /// Closes a decision whose window has ended: the outcome is derived from the votes in
    /// this record's causal past.
    "tally" => pub struct Tally {
        /// The decision.
        decision: RecordId = Raw,
    }
}

impl Decision {
    pub(crate) fn summary(&self) -> String {
        format!("decision {:?} ({})", self.title, self.action.as_str())
    }
}

impl Vote {
    pub(crate) fn summary(&self) -> String {
        format!("voted {} on {}", self.choice, self.decision.short())
    }
}

impl Tally {
    pub(crate) fn summary(&self) -> String {
        format!("closed the vote on {}", self.decision.short())
    }
}

// ---- Derivation rules (docs/RULES.md) ----

use super::Record;
use crate::envelope::{Refusal, RejectReason};
use crate::fold::{Ctx, Derived, Past, Rule};
use crate::ids::Points;
use crate::state::{self, *};
use std::collections::BTreeSet;

impl Rule for Vote {
    fn apply(
        &self,
        d: &mut Derived,
        graph: Past<'_>,
        c: &Ctx<'_>,
        author: MemberId,
    ) -> Result<(), Refusal> {
        let Vote { decision, choice } = self;
        d.cast_vote(graph, c, author, decision, *choice)
    }
}

impl Rule for Tally {
    fn apply(
        &self,
        d: &mut Derived,
        graph: Past<'_>,
        c: &Ctx<'_>,
        _author: MemberId,
    ) -> Result<(), Refusal> {
        let Tally { decision } = self;
        d.tally(graph, c, decision)
    }
}

impl Rule for Decision {
    fn apply(
        &self,
        d: &mut Derived,
        _graph: Past<'_>,
        c: &Ctx<'_>,
        author: MemberId,
    ) -> Result<(), Refusal> {
        d.open_decision(c, author, self)
    }
}

fn invalid(detail: impl Into<String>) -> Refusal {
    Refusal::new(RejectReason::InvalidDecision, detail.into())
}

impl Derived {
    /// Counts a decision record.
    pub(crate) fn open_decision(
        &mut self,
        c: &Ctx<'_>,
        author: MemberId,
        record: &Decision,
    ) -> Result<(), Refusal> {
        let Decision {
            title,
            description,
            closes_at,
            action,
        } = record;
        if *closes_at <= c.time || *closes_at - c.time > MAX_WINDOW_SECS {
            return Err(invalid(format!(
                "the window must end after the decision is opened and within {} days",
                MAX_WINDOW_SECS / 86_400
            )));
        }
        self.check_action(action)?;
        if let DecisionAction::Recovery { member, .. } = action {
            // One member alone never takes over another, nor themself (docs/RULES.md R19):
            // a member who still writes has devices and needs no recovery.
            if *member == author {
                return Err(Refusal::new(
                    RejectReason::NotAllowed,
                    "a member cannot propose their own recovery: another member proposes it".into(),
                ));
            }
        }
        self.state.decisions.insert(
            c.id,
            state::Decision {
                id: c.id,
                proposer: author,
                title: title.clone(),
                description: description.clone(),
                opened_at: c.time,
                closes_at: *closes_at,
                action: action.clone(),
                status: DecisionStatus::Open,
                votes: Vec::new(),
                tally: None,
            },
        );
        Ok(())
    }

    /// Whether `action` could take effect now.
    fn check_action(&self, action: &DecisionAction) -> Result<(), Refusal> {
        let member_status = |m: &MemberId| self.state.members.get(m).map(|m| m.status);
        match action {
            DecisionAction::General => Ok(()),
            DecisionAction::Param { key, value } => {
                let mut p = self.state.params.clone();
                p.set(key, value).map_err(|e| invalid(e.to_string()))
            }
            DecisionAction::RoleGrant { member, role } => {
                if member_status(member) != Some(MemberStatus::Admitted) {
                    return Err(invalid(format!(
                        "{} is not an admitted member",
                        member.short()
                    )));
                }
                if self.has_role(member, *role) {
                    return Err(invalid(format!("{} is already a {role}", member.short())));
                }
                Ok(())
            }
            DecisionAction::RoleRevoke { member, role } => {
                if !self.has_role(member, *role) {
                    return Err(invalid(format!("{} is not a {role}", member.short())));
                }
                Ok(())
            }
            DecisionAction::Removal { member } => {
                if member_status(member) != Some(MemberStatus::Admitted) {
                    return Err(invalid(format!(
                        "{} is not an admitted member",
                        member.short()
                    )));
                }
                Ok(())
            }
            DecisionAction::PoolAllocation { application } => {
                self.check_pool_allocation(application)
            }
            DecisionAction::Recovery {
                member,
                new_identity,
            } => {
                if member_status(member) != Some(MemberStatus::Admitted) {
                    return Err(invalid(format!(
                        "{} is not an admitted member",
                        member.short()
                    )));
                }
                // The new key must be no one's yet: not a member id (that would merge two
                // members) and not the identity key of any member.
                let taken = self.state.members.values().any(|m| {
                    m.id == *new_identity
                        || m.recovered.is_some_and(|r| r.identity == *new_identity)
                });
                if taken {
                    return Err(invalid(format!(
                        "the new identity key {} already belongs to a member",
                        new_identity.short()
                    )));
                }
                Ok(())
            }
        }
    }

    /// Counts a vote.
    pub(crate) fn cast_vote(
        &mut self,
        graph: Past<'_>,
        c: &Ctx<'_>,
        author: MemberId,
        decision: &RecordId,
        choice: Choice,
    ) -> Result<(), Refusal> {
        let d = self.decision(graph, c, decision)?;
        if d.status != DecisionStatus::Open {
            return Err(Refusal::new(
                RejectReason::WindowClosed,
                format!("the decision is already {}", d.status.as_str()),
            ));
        }
        if c.time >= d.closes_at {
            return Err(Refusal::new(
                RejectReason::WindowClosed,
                "cast after the voting window closed".into(),
            ));
        }
        if d.votes.iter().any(|v| v.member == author) {
            return Err(Refusal::new(
                RejectReason::AlreadyVoted,
                "one member, one vote".into(),
            ));
        }
        d.votes.push(state::Vote {
            id: c.id,
            member: author,
            choice,
            time: c.time,
        });
        // The position this vote will take in the log (it is pushed right after `apply`).
        let pos = self.state.log.len();
        self.fold.gov.vote_pos.insert(c.id, pos);
        Ok(())
    }

    /// Closes a decision and applies its action when it passed.
    pub(crate) fn tally(
        &mut self,
        graph: Past<'_>,
        c: &Ctx<'_>,
        decision: &RecordId,
    ) -> Result<(), Refusal> {
        let (quorum_percent, approval_percent) =
            (self.params().quorum_percent, self.params().approval_percent);
        let wait_secs = self.params().recovery_wait_days.saturating_mul(86_400);
        let eligible = self
            .state
            .members
            .values()
            .filter(|m| m.status == MemberStatus::Admitted)
            .count() as u32;
        let admitted: BTreeSet<MemberId> = self
            .state
            .members
            .values()
            .filter(|m| m.status == MemberStatus::Admitted)
            .map(|m| m.id)
            .collect();
        let d = self.decision(graph, c, decision)?;
        if d.status != DecisionStatus::Open {
            return Err(Refusal::new(
                RejectReason::AlreadySettled,
                format!("the decision is already {}", d.status.as_str()),
            ));
        }
        if let DecisionAction::Recovery { .. } = d.action {
            // A recovery takes effect only after its waiting period too (docs/RULES.md R19),
            // so the member, if they still can, sees it and objects.
            let ready = d.opened_at.saturating_add(wait_secs).max(d.closes_at);
            if c.time < ready {
                return Err(Refusal::new(
                    RejectReason::WindowOpen,
                    format!(
                        "the recovery's waiting period runs until {}",
                        state::format_time(ready)
                    ),
                ));
            }
        }
        if c.time < d.closes_at {
            return Err(Refusal::new(
                RejectReason::WindowOpen,
                // A date for people, not Unix seconds (the refusal reaches them as is).
                format!(
                    "the voting window is open until {}",
                    state::format_time(d.closes_at)
                ),
            ));
        }
        let votes = std::mem::take(&mut d.votes);
        let (seen, unseen): (Vec<state::Vote>, Vec<state::Vote>) = votes
            .into_iter()
            .partition(|v| admitted.contains(&v.member) && graph.precedes(&v.id, c));
        let count = |ch: Choice| seen.iter().filter(|v| v.choice == ch).count() as u32;
        let (yes, no, abstain) = (
            count(Choice::Yes),
            count(Choice::No),
            count(Choice::Abstain),
        );
        let cast = (yes + no + abstain) as i64;
        let mut status = if cast * 100 < quorum_percent * eligible as i64 {
            DecisionStatus::NoQuorum
        } else if (yes as i64) * 100 > approval_percent * (yes as i64 + no as i64) {
            DecisionStatus::Passed
        } else {
            DecisionStatus::Rejected
        };
        let mut lone_proposer = false;
        if let (DecisionAction::Recovery { member, .. }, DecisionStatus::Passed) =
            (&d.action, status)
        {
            // The proposer is never the only yes (docs/RULES.md R19), nor is the member
            // recovered (whose lost device may be in someone else's hands).
            let others = seen
                .iter()
                .any(|v| v.choice == Choice::Yes && v.member != d.proposer && v.member != *member);
            if !others {
                status = DecisionStatus::Rejected;
                lone_proposer = true;
            }
        }
        d.status = status;
        d.votes = seen;
        let action = d.action.clone();
        let mut result = TallyResult {
            id: c.id,
            time: c.time,
            yes,
            no,
            abstain,
            eligible,
            quorum_percent,
            approval_percent,
            effect_error: lone_proposer.then(|| {
                "a recovery needs a yes from a member other than its proposer and the member \
                 recovered"
                    .to_string()
            }),
        };
        // Votes the tally did not see stop counting here, on every replica alike.
        for v in &unseen {
            let detail = if admitted.contains(&v.member) {
                "not in the causal past of the tally that closed the decision".to_string()
            } else {
                "the voter is no longer an admitted member".to_string()
            };
            self.unsee_vote(&v.id, detail);
        }
        let this = graph.position(&c.id);
        let known_removal = this.is_some_and(|i| self.fold.gov.known_removals.contains(&i));
        if status == DecisionStatus::Passed || known_removal {
            if let Err(Refusal { detail: why, .. }) =
                self.enact(c, &action, *decision, known_removal)
            {
                result.effect_error = Some(why);
            } else if let (
                DecisionAction::Removal { .. } | DecisionAction::Recovery { .. },
                Some(i),
            ) = (&action, this)
            {
                self.fold.gov.passed_removals.insert(i);
            }
        }
        if let Some(d) = self.state.decisions.get_mut(decision) {
            d.tally = Some(result);
        }
        Ok(())
    }

    /// Marks an already counted vote as refused.
    fn unsee_vote(&mut self, vote: &RecordId, detail: String) {
        let Some(pos) = self.fold.gov.vote_pos.remove(vote) else {
            return;
        };
        if let Some(entry) = self.state.log.get_mut(pos) {
            if entry.status == EntryStatus::Counted {
                entry.status = EntryStatus::Refused;
                entry.reason = Some(RejectReason::WindowClosed);
                entry.detail = Some(detail);
                self.state.counted -= 1;
                self.state.refused += 1;
            }
        }
    }

    /// Applies a passed decision's action at the tally `c`.
    fn enact(
        &mut self,
        c: &Ctx<'_>,
        action: &DecisionAction,
        decision: RecordId,
        known: bool,
    ) -> Result<(), Refusal> {
        // A removal already in force from an earlier pass stays in force (see `from_scratch`),
        // and so does a recovery.
        let in_force = matches!(action, DecisionAction::Removal { .. })
            || (known && matches!(action, DecisionAction::Recovery { .. }));
        if !in_force {
            self.check_action(action)?;
        }
        match action {
            DecisionAction::General => {}
            DecisionAction::Param { key, value } => {
                let mut p = self.state.params.clone();
                p.set(key, value).map_err(|e| invalid(e.to_string()))?;
                let budget_changed = p.sp_budget != self.state.params.sp_budget;
                self.state.params = p;
                let value = self
                    .state
                    .params
                    .entries()
                    .into_iter()
                    .find(|(k, _)| k == key)
                    .map_or_else(|| value.clone(), |(_, v)| v);
                self.state.params_history.push(ParamChange {
                    at: c.id,
                    decision: Some(decision),
                    time: c.time,
                    key: key.clone(),
                    value,
                });
                if budget_changed {
                    let budget = self.state.params.sp_budget;
                    for m in self.state.members.values_mut() {
                        if m.status == MemberStatus::Admitted {
                            m.sp.budget = Points(budget);
                            m.sp.available = Points(budget) - m.sp.allocated;
                        }
                    }
                }
            }
            DecisionAction::RoleGrant { member, role } => {
                if let Some(m) = self.state.members.get_mut(member) {
                    m.roles.push(*role);
                    m.roles.sort();
                    m.roles.dedup();
                }
            }
            DecisionAction::RoleRevoke { member, role } => {
                if let Some(m) = self.state.members.get_mut(member) {
                    m.roles.retain(|r| r != role);
                }
            }
            DecisionAction::Removal { member } => {
                if let Some(m) = self.state.members.get_mut(member) {
                    m.status = MemberStatus::Removed;
                }
            }
            DecisionAction::PoolAllocation { application } => {
                self.apply_pool_allocation(application, decision)?;
            }
            DecisionAction::Recovery {
                member,
                new_identity,
            } => {
                // The member keeps their id, history, balance and roles; their old devices
                // stop counting outside this tally's past (in `derive`), and devices the new
                // key certifies count from here on (`record::devices`).
                if let Some(m) = self.state.members.get_mut(member) {
                    m.recovered = Some(Recovered {
                        identity: *new_identity,
                        decision,
                        tally: c.id,
                    });
                }
            }
        }
        Ok(())
    }

    fn decision(
        &mut self,
        graph: Past<'_>,
        c: &Ctx<'_>,
        id: &RecordId,
    ) -> Result<&mut state::Decision, Refusal> {
        if !self.precedes(graph, id, c) {
            return Err(Refusal::new(
                RejectReason::UnknownReference,
                format!("decision {} is not in the record's past", id.short()),
            ));
        }
        self.state.decisions.get_mut(id).ok_or(Refusal::new(
            RejectReason::UnknownReference,
            format!("{} is not a counted decision", id.short()),
        ))
    }

    /// Whether a new tally could change earlier positions (a removal): such a change needs
    /// a full refold rather than an append.
    pub(crate) fn tally_needs_refold(&self, record: &Record) -> bool {
        match record {
            Record::Tally(Tally { decision }) => !matches!(
                self.state.decisions.get(decision).map(|d| &d.action),
                Some(
                    DecisionAction::General
                        | DecisionAction::Param { .. }
                        | DecisionAction::RoleGrant { .. }
                        | DecisionAction::RoleRevoke { .. }
                        | DecisionAction::PoolAllocation { .. }
                )
            ),
            _ => false,
        }
    }
}
