//! The terms records and the derived state share: what each kind is called, the words a
//! field may hold (roles, outcomes, urgencies, choices, ...) and the limits of amounts.
//!
//! These sit below both [`crate::record`] and [`crate::state`], so neither needs the
//! other's internals to name them. `coop_model::record` re-exports them all.

use crate::ids::{MemberId, RecordId};

/// An enum with a stable text form (implemented by `text_enum!`).
pub trait TextEnum: Sized + Copy {
    /// Every text form, in declaration order.
    const WORDS: &'static [&'static str];
    /// The stable text form.
    fn as_str(&self) -> &'static str;
    /// Parses the text form.
    fn from_word(s: &str) -> Option<Self>;
}

/// Gives an enum its stable text form: [`TextEnum`], `FromStr` (the error lists the
/// words) and `Display`.
macro_rules! text_enum {
    ($t:ident { $($v:ident = $s:literal),* $(,)? }) => {
        impl $crate::terms::TextEnum for $t {
            const WORDS: &'static [&'static str] = &[$($s),*];
            fn as_str(&self) -> &'static str {
                match self { $($t::$v => $s),* }
            }
            fn from_word(s: &str) -> Option<Self> {
                match s { $($s => Some($t::$v),)* _ => None }
            }
        }
        impl $t {
            /// The stable text form.
            pub fn as_str(&self) -> &'static str {
                $crate::terms::TextEnum::as_str(self)
            }
        }
        impl std::str::FromStr for $t {
            type Err = String;
            fn from_str(s: &str) -> Result<Self, String> {
                <$t as $crate::terms::TextEnum>::from_word(s).ok_or_else(|| {
                    format!("expected one of: {}", [$($s),*].join(", "))
                })
            }
        }
        impl std::fmt::Display for $t {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(self.as_str())
            }
        }
    };
}

/// A record kind, without its data: what `coop ledger --kind` takes. The list must match
/// the kinds of `records!` in [`crate::record`] (the compiler checks both ways); its text
/// forms, `ALL` and parsing are generated there.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize, serde::Deserialize,
)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
#[allow(missing_docs)] // each kind is documented on its record struct
pub enum Kind {
    Genesis,
    Join,
    Device,
    DeviceRevoke,
    Vouch,
    Remove,
    Rename,
    Attest,
    Confirm,
    Decline,
    Proposal,
    Close,
    Allocate,
    AidRequest,
    AidOffer,
    AidAccept,
    AidConfirm,
    AidCancel,
    Report,
    Hide,
    Decision,
    Vote,
    Tally,
    Visibility,
    Purchase,
    PurchaseCommit,
    PurchaseBid,
    PurchaseStep,
    PurchaseMark,
    Pool,
    Contribution,
    ContributionConfirm,
    Application,
    Disbursement,
    Return,
    ReliefRequest,
    ReliefApprove,
}

/// The outcome with which a proposal closes.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, serde::Serialize, serde::Deserialize,
)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    /// The proposal was carried out.
    Delivered,
    /// Withdrawn by its proposer.
    Cancelled,
    /// Turned down.
    Rejected,
    /// Ran out of time.
    Expired,
}

text_enum!(Outcome { Delivered = "delivered", Cancelled = "cancelled", Rejected = "rejected", Expired = "expired" });

/// How urgent a mutual-aid (or relief) request is.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, serde::Serialize, serde::Deserialize,
)]
#[serde(rename_all = "snake_case")]
pub enum Urgency {
    /// Whenever convenient.
    Low,
    /// Soon.
    Medium,
    /// Now.
    High,
}

text_enum!(Urgency { Low = "low", Medium = "medium", High = "high" });

/// What a report points at.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, serde::Serialize, serde::Deserialize,
)]
#[serde(rename_all = "snake_case")]
pub enum ReportTarget {
    /// A record, by its id.
    Record,
    /// A member, by their id.
    Member,
}

text_enum!(ReportTarget { Record = "record", Member = "member" });

/// How a member votes on a decision.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
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
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
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
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
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
    /// Rebinds a member who lost every device and backup to a new identity key
    /// (docs/RULES.md R19): from the tally on, only devices that key certifies act for them.
    Recovery {
        /// The member recovered.
        member: MemberId,
        /// The public half of the identity key made on the member's new machine.
        new_identity: MemberId,
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
            DecisionAction::Recovery { .. } => "recovery",
        }
    }
}

/// Who may see a member's balance and history (aggregates are always shown).
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(
    Debug,
    Clone,
    Copy,
    Default,
    PartialEq,
    Eq,
    PartialOrd,
    Ord,
    Hash,
    serde::Serialize,
    serde::Deserialize,
)]
#[serde(rename_all = "snake_case")]
pub enum Visibility {
    /// Anyone, members or not (exports included).
    Public,
    /// Admitted members (the default for anyone who never wrote a setting).
    #[default]
    Members,
    /// Only the member themself.
    Private,
}

text_enum!(Visibility { Public = "public", Members = "members", Private = "private" });

/// Whether a collective purchase repeats.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, serde::Serialize, serde::Deserialize,
)]
#[serde(rename_all = "snake_case")]
pub enum Recurrence {
    /// One round only.
    None,
    /// A new round every calendar month (round k+1's deadline is one month after round k's).
    Monthly,
}

text_enum!(Recurrence { None = "none", Monthly = "monthly" });

/// A coordinator's step in a purchase round.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, serde::Serialize, serde::Deserialize,
)]
#[serde(rename_all = "snake_case")]
pub enum PurchaseStep {
    /// The order was placed with the winning bid's supplier.
    Ordered,
    /// The goods arrived.
    Delivered,
}

text_enum!(PurchaseStep { Ordered = "ordered", Delivered = "delivered" });

/// What is marked for one participant of a purchase round.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, serde::Serialize, serde::Deserialize,
)]
#[serde(rename_all = "snake_case")]
pub enum PurchaseMark {
    /// The participant paid their amount due.
    Paid,
    /// The participant picked up their share.
    PickedUp,
}

text_enum!(PurchaseMark { Paid = "paid", PickedUp = "picked_up" });

/// The most rounds a recurring purchase has (ten years of monthly rounds).
pub const MAX_PURCHASE_ROUNDS: i64 = 120;

/// The largest quantity in a purchase record.
pub const MAX_PURCHASE_QUANTITY: i64 = 1_000_000;

/// The largest unit price in a purchase record, in minor units (one million major units).
pub const MAX_UNIT_PRICE: i64 = 100_000_000;

/// The latest deadline a purchase may name: 2200-01-01 00:00 UTC.
pub const MAX_DEADLINE: i64 = 7_258_118_400;

/// What a pool does with money that comes back.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, serde::Serialize, serde::Deserialize,
)]
#[serde(rename_all = "snake_case")]
pub enum ReturnPolicy {
    /// Returns stay in the pool.
    Reinvest,
    /// Returns are owed to the contributors, pro rata.
    Distribute,
    /// Half stays, half is owed to the contributors.
    Hybrid,
}

text_enum!(ReturnPolicy { Reinvest = "reinvest", Distribute = "distribute", Hybrid = "hybrid" });

/// The largest amount of money one record may carry, in minor units (ten billion units).
pub const MAX_MONEY: i64 = 1_000_000_000_000;
