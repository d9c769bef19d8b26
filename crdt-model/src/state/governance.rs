//! Governance as derived: decisions, their votes and tallies.

use serde::{Deserialize, Serialize};

use crate::ids::{MemberId, RecordId};
use crate::terms::{Choice, DecisionAction};

/// The longest voting window a decision may ask for.
pub const MAX_WINDOW_SECS: i64 = 366 * 86_400;

/// Where a decision stands.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
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
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
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
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
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
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
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
