//! Governance records: decisions, votes and tallies. Rules: docs/RULES.md, "Governance".

use super::layout::{
    record_layout, text_enum, Codec, Field, Fields, Int, Raw, RecordError, Text, Word,
};
use crate::ids::{MemberId, RecordId};

/// How a member votes on a decision.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, serde::Serialize, serde::Deserialize,
)]
#[serde(rename_all = "snake_case")]
pub enum Choice {
    /// For.
    Yes,
    /// Against.
    No,
    /// Counts towards the quorum, not towards approval.
    Abstain,
}
text_enum!(Choice { Yes = "yes", No = "no", Abstain = "abstain" });

/// A role a member holds. The founder holds every role from the genesis; decisions grant
/// and revoke the others ([`Role::GRANTABLE`]), never the founder role.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize, serde::Deserialize,
)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    /// Founded the community (held by the genesis author only).
    Founder,
    /// Sees abuse reports, hides records.
    Moderator,
    /// Approves relief requests, reads their sealed reasons.
    Steward,
    /// Confirms pool contributions, records disbursements and returns.
    Treasurer,
}
text_enum!(Role { Founder = "founder", Moderator = "moderator", Steward = "steward", Treasurer = "treasurer" });

impl Role {
    /// The roles a decision may grant or revoke.
    pub const GRANTABLE: [Role; 3] = [Role::Moderator, Role::Steward, Role::Treasurer];
}

/// What a decision does when it passes.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(tag = "action", rename_all = "snake_case")]
pub enum DecisionAction {
    /// Nothing automatic: the outcome is the record.
    General,
    /// Sets a community parameter from the close of the vote on.
    Param {
        /// Parameter name.
        key: String,
        /// New value, text form as `coop found --param` takes it.
        value: String,
    },
    /// Grants a role to a member.
    RoleGrant {
        /// The member.
        member: MemberId,
        /// The role.
        role: Role,
    },
    /// Revokes a role from a member.
    RoleRevoke {
        /// The member.
        member: MemberId,
        /// The role.
        role: Role,
    },
    /// Removes a member (strong removal from the close of the vote).
    Removal {
        /// The member.
        member: MemberId,
    },
    /// Allocates a pool's money to an application.
    PoolAllocation {
        /// The application.
        application: RecordId,
    },
}

impl DecisionAction {
    /// The stable text form of the action's kind.
    pub fn as_str(&self) -> &'static str {
        match self {
            DecisionAction::General => "general",
            DecisionAction::Param { .. } => "param",
            DecisionAction::RoleGrant { .. } => "role_grant",
            DecisionAction::RoleRevoke { .. } => "role_revoke",
            DecisionAction::Removal { .. } => "removal",
            DecisionAction::PoolAllocation { .. } => "pool_allocation",
        }
    }
}

/// The action is laid out as the field `action` (its kind) and the fields of that kind
/// beside it: `key`/`value`, `member`/`role`, `member`, or `application`.
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
    pub(super) fn summary(&self) -> String {
        format!("decision {:?} ({})", self.title, self.action.as_str())
    }
}

impl Vote {
    pub(super) fn summary(&self) -> String {
        format!("voted {} on {}", self.choice, self.decision.short())
    }
}

impl Tally {
    pub(super) fn summary(&self) -> String {
        format!("closed the vote on {}", self.decision.short())
    }
}
