//! Governance (§7.6): decisions put to one-member-one-vote within a window, closed by a
//! tally whose outcome is derived from the votes in the tally's causal past.
//!
//! - A `decision` names its window's end (`closes_at`, author-claimed Unix time) and an
//!   action: general, parameter change, role grant or revoke, member removal, pool allocation.
//!   The action is checked when the decision is opened and again when it passes.
//! - A `vote` counts only while the decision is open in total order and was cast (claimed
//!   time) before `closes_at`; one per member.
//! - A `tally`, by any member, at or after `closes_at`, closes the decision. Votes in its
//!   causal past, by members admitted at its position, are counted; votes it did not see are
//!   marked refused (`window_closed`) at that point, so the log never shows a vote as counted
//!   that the outcome ignored. Quorum: votes cast (abstentions included) × 100 ≥
//!   `quorum_percent` × admitted members. Approval: yes × 100 > `approval_percent` ×
//!   (yes + no). Both parameters are those in force at the tally's position.
//! - A passed decision takes effect at the tally's position in the total order: a parameter
//!   applies to every later record, a role is held from there, a removal is a strong removal
//!   (every record of the member outside the tally's causal past stops counting, §4).
//!
//! Support Points are signals, never votes: nothing here reads them.

use crate::record;
use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};

use super::{Ctx, Derived, EntryStatus, MemberStatus, ParamChange, Refusal};
use crate::envelope::RejectReason;
use crate::ids::{MemberId, RecordId};
use crate::ledger::Graph;
use crate::record::{Choice, DecisionAction, Record, Role};

/// The longest voting window a decision may ask for.
pub const MAX_WINDOW_SECS: i64 = 366 * 86_400;

/// Where a decision stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DecisionStatus {
    /// Accepting votes (until `closes_at`, and until a tally closes it).
    Open,
    /// Quorum reached and approval strictly above the threshold.
    Passed,
    /// Quorum reached, approval not.
    Rejected,
    /// Too few members voted.
    NoQuorum,
}

impl DecisionStatus {
    /// Stable text form.
    pub fn as_str(&self) -> &'static str {
        match self {
            DecisionStatus::Open => "open",
            DecisionStatus::Passed => "passed",
            DecisionStatus::Rejected => "rejected",
            DecisionStatus::NoQuorum => "no_quorum",
        }
    }
}

/// One counted vote.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Vote {
    /// Record id.
    pub id: RecordId,
    /// The voter.
    pub member: MemberId,
    /// Their choice.
    pub choice: Choice,
    /// Author-claimed time.
    pub time: i64,
}

/// The count a tally derived.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TallyResult {
    /// The tally record.
    pub id: RecordId,
    /// Its author-claimed time.
    pub time: i64,
    /// Yes votes.
    pub yes: u32,
    /// No votes.
    pub no: u32,
    /// Abstentions.
    pub abstain: u32,
    /// Admitted members at the tally's position (the quorum's base).
    pub eligible: u32,
    /// `quorum_percent` in force.
    pub quorum_percent: i64,
    /// `approval_percent` in force.
    pub approval_percent: i64,
    /// Why a passed decision's action could not take effect, if it could not.
    pub effect_error: Option<String>,
}

/// A decision as derived.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Decision {
    /// Record id.
    pub id: RecordId,
    /// Who opened it.
    pub proposer: MemberId,
    /// Title.
    pub title: String,
    /// Description.
    pub description: String,
    /// Author-claimed time of opening.
    pub opened_at: i64,
    /// End of the voting window.
    pub closes_at: i64,
    /// What passing it does.
    pub action: DecisionAction,
    /// Where it stands.
    pub status: DecisionStatus,
    /// Counted votes, in total order (after the tally: those the tally counted).
    pub votes: Vec<Vote>,
    /// The tally, once closed.
    pub tally: Option<TallyResult>,
}

/// Fold indices for governance.
#[derive(Debug, Clone, Default)]
pub(crate) struct GovFold {
    /// Log position of each counted vote (to mark it refused if the tally did not see it).
    pub(crate) vote_pos: BTreeMap<RecordId, usize>,
    /// Entry indices of tallies that passed a removal in this pass.
    pub(crate) passed_removals: BTreeSet<usize>,
    /// Entry indices of removal tallies in force from the start of this pass.
    pub(crate) known_removals: BTreeSet<usize>,
}

fn invalid(detail: impl Into<String>) -> Refusal {
    Refusal::new(RejectReason::InvalidDecision, detail.into())
}

impl Derived {
    /// Counts a decision record.
    pub(super) fn open_decision(
        &mut self,
        c: &Ctx<'_>,
        author: MemberId,
        record: &Record,
    ) -> Result<(), Refusal> {
        let Record::Decision(record::Decision {
            title,
            description,
            closes_at,
            action,
        }) = record
        else {
            return Ok(());
        };
        if *closes_at <= c.time || *closes_at - c.time > MAX_WINDOW_SECS {
            return Err(invalid(format!(
                "the window must end after the decision is opened and within {} days",
                MAX_WINDOW_SECS / 86_400
            )));
        }
        self.check_action(action)?;
        self.state.decisions.insert(
            c.id,
            Decision {
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
                if self.has_role(member, role.as_str()) {
                    return Err(invalid(format!("{} is already a {role}", member.short())));
                }
                Ok(())
            }
            DecisionAction::RoleRevoke { member, role } => {
                if !self.has_role(member, role.as_str()) {
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
        }
    }

    /// Counts a vote.
    pub(super) fn cast_vote(
        &mut self,
        graph: Graph<'_>,
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
        d.votes.push(Vote {
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
    pub(super) fn tally(
        &mut self,
        graph: Graph<'_>,
        c: &Ctx<'_>,
        decision: &RecordId,
    ) -> Result<(), Refusal> {
        let (quorum_percent, approval_percent) =
            (self.params().quorum_percent, self.params().approval_percent);
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
        if c.time < d.closes_at {
            return Err(Refusal::new(
                RejectReason::WindowOpen,
                format!("the voting window is open until {}", d.closes_at),
            ));
        }
        let votes = std::mem::take(&mut d.votes);
        let (seen, unseen): (Vec<Vote>, Vec<Vote>) = votes.into_iter().partition(|v| {
            admitted.contains(&v.member)
                && graph
                    .index
                    .get(&v.id)
                    .map(|&i| &graph.entries[i as usize])
                    .is_some_and(|e| c.seen(e.dev, e.v.seq))
        });
        let count = |ch: Choice| seen.iter().filter(|v| v.choice == ch).count() as u32;
        let (yes, no, abstain) = (
            count(Choice::Yes),
            count(Choice::No),
            count(Choice::Abstain),
        );
        let cast = (yes + no + abstain) as i64;
        let status = if cast * 100 < quorum_percent * eligible as i64 {
            DecisionStatus::NoQuorum
        } else if (yes as i64) * 100 > approval_percent * (yes as i64 + no as i64) {
            DecisionStatus::Passed
        } else {
            DecisionStatus::Rejected
        };
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
            effect_error: None,
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
        let this = graph.index.get(&c.id).map(|&i| i as usize);
        let known_removal = this.is_some_and(|i| self.fold.gov.known_removals.contains(&i));
        if status == DecisionStatus::Passed || known_removal {
            if let Err(Refusal { detail: why, .. }) = self.enact(c, &action, *decision) {
                result.effect_error = Some(why);
            } else if let (DecisionAction::Removal { .. }, Some(i)) = (&action, this) {
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
    ) -> Result<(), Refusal> {
        // A removal already in force from an earlier pass stays in force (see `from_scratch`).
        if !matches!(action, DecisionAction::Removal { .. }) {
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
                            m.sp.budget = budget;
                            m.sp.available = budget - m.sp.allocated;
                        }
                    }
                }
            }
            DecisionAction::RoleGrant { member, role } => {
                if let Some(m) = self.state.members.get_mut(member) {
                    m.roles.push(role.as_str().to_string());
                    m.roles.sort();
                    m.roles.dedup();
                }
            }
            DecisionAction::RoleRevoke { member, role } => {
                if let Some(m) = self.state.members.get_mut(member) {
                    m.roles.retain(|r| r != role.as_str());
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
        }
        Ok(())
    }

    fn decision(
        &mut self,
        graph: Graph<'_>,
        c: &Ctx<'_>,
        id: &RecordId,
    ) -> Result<&mut Decision, Refusal> {
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
    pub(super) fn tally_needs_refold(&self, record: &Record) -> bool {
        match record {
            Record::Tally(record::Tally { decision }) => !matches!(
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

    /// The removal tallies (entry index → removed member) among `tallies`.
    pub(super) fn removal_targets(
        graph: Graph<'_>,
        tallies: &BTreeSet<usize>,
    ) -> Vec<(MemberId, usize)> {
        tallies
            .iter()
            .filter_map(|&i| {
                let Record::Tally(record::Tally { decision }) = &graph.entries[i].v.record else {
                    return None;
                };
                let d = graph.index.get(decision)?;
                match &graph.entries[*d as usize].v.record {
                    Record::Decision(record::Decision {
                        action: DecisionAction::Removal { member },
                        ..
                    }) => Some((*member, i)),
                    _ => None,
                }
            })
            .collect()
    }
}

/// Roles a decision may grant (the founder role comes only with the genesis).
pub const GRANTABLE_ROLES: [Role; 3] = [Role::Moderator, Role::Steward, Role::Treasurer];
