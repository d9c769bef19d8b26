//! Ledger records and their Automerge layout.
//!
//! Every change carries exactly one record: a new map at the document root under the key
//! `{kind}/{device hex}/{seq}`, holding only scalar fields. Records are never updated or
//! deleted; a later record refers to an earlier one by its [`RecordId`] (the change hash).
//! This makes the write rules of the gate (§5 rule 4) a check of one change alone.

use std::collections::BTreeMap;

use std::num::NonZeroU64;

use automerge::legacy::{Key, ObjectId, Op, OpId, OpType, SortedVec};
use automerge::{ObjType, ScalarValue};

use crate::ids::{Day, DeviceId, MemberId, RecordId};
use crate::params::Params;

/// Layout version written into every record as field `v`.
pub const LAYOUT_VERSION: u64 = 1;

/// The outcome with which a proposal closes.
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

/// How urgent a mutual-aid request is.
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

/// What a report points at.
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

/// A role a decision grants or revokes (the founder role is never granted).
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, serde::Serialize, serde::Deserialize,
)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    /// Sees abuse reports, hides records.
    Moderator,
    /// Approves relief requests, reads their sealed reasons.
    Steward,
    /// Confirms pool contributions, records disbursements and returns.
    Treasurer,
}

/// What a decision does when it passes (§7.6).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(tag = "action", rename_all = "snake_case")]
pub enum DecisionAction {
    /// Nothing automatic: the outcome is the record.
    General,
    /// Sets a community parameter from the close of the vote on.
    Param {
        /// Parameter name (§8).
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
    /// Removes a member (strong removal from the close of the vote, §4).
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

/// What a pool does with money that comes back (§7.5).
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

/// The largest amount of money one record may carry, in minor units (ten billion units).
pub const MAX_MONEY: i64 = 1_000_000_000_000;

macro_rules! text_enum {
    ($t:ident { $($v:ident = $s:literal),* }) => {
        impl $t {
            /// The stable text form.
            pub fn as_str(&self) -> &'static str {
                match self { $($t::$v => $s),* }
            }
        }
        impl std::str::FromStr for $t {
            type Err = String;
            fn from_str(s: &str) -> Result<Self, String> {
                match s { $($s => Ok($t::$v),)* _ => Err(format!(
                    "expected one of: {}", [$($s),*].join(", "))) }
            }
        }
        impl std::fmt::Display for $t {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(self.as_str())
            }
        }
    };
}
text_enum!(Outcome { Delivered = "delivered", Cancelled = "cancelled", Rejected = "rejected", Expired = "expired" });
text_enum!(Urgency { Low = "low", Medium = "medium", High = "high" });
text_enum!(ReportTarget { Record = "record", Member = "member" });
text_enum!(Choice { Yes = "yes", No = "no", Abstain = "abstain" });
text_enum!(Role { Moderator = "moderator", Steward = "steward", Treasurer = "treasurer" });

/// Who may see a member's balance and history in the CLI (§9). Aggregates are always shown.
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
text_enum!(ReturnPolicy { Reinvest = "reinvest", Distribute = "distribute", Hybrid = "hybrid" });

/// Whether a collective purchase repeats.
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

/// A coordinator's step in a purchase round.
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

/// What is marked for one participant of a purchase round.
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

text_enum!(Recurrence { None = "none", Monthly = "monthly" });
text_enum!(PurchaseStep { Ordered = "ordered", Delivered = "delivered" });
text_enum!(PurchaseMark { Paid = "paid", PickedUp = "picked_up" });

/// The most rounds a recurring purchase has (ten years of monthly rounds).
pub const MAX_PURCHASE_ROUNDS: i64 = 120;
/// The largest quantity in a purchase record.
pub const MAX_PURCHASE_QUANTITY: i64 = 1_000_000;
/// The largest unit price in a purchase record, in minor units (one million major units).
pub const MAX_UNIT_PRICE: i64 = 100_000_000;
/// The latest deadline a purchase may name: 2200-01-01 00:00 UTC.
pub const MAX_DEADLINE: i64 = 7_258_118_400;

/// One ledger record: the payload of one signed change.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
#[non_exhaustive]
pub enum Record {
    /// The founding record; its change hash is the community id.
    Genesis {
        /// Community name.
        name: String,
        /// The founder's identity.
        founder: MemberId,
        /// The founder's display name.
        display_name: String,
        /// The founder's certificate of this (first) device, for the all-zero community.
        #[serde(with = "hex_bytes")]
        cert: [u8; 64],
        /// Initial parameters.
        params: Params,
    },
    /// A newcomer's request to join, written by their first device.
    Join {
        /// The newcomer's identity.
        member: MemberId,
        /// Identity certificate of the writing device.
        #[serde(with = "hex_bytes")]
        cert: [u8; 64],
        /// Display name.
        display_name: String,
    },
    /// A further device of an existing member, written by that device first.
    Device {
        /// The member.
        member: MemberId,
        /// Identity certificate of the writing device.
        #[serde(with = "hex_bytes")]
        cert: [u8; 64],
    },
    /// A vouch admitting (with others) a newcomer.
    Vouch {
        /// The newcomer.
        member: MemberId,
    },
    /// Removal of a member (by the founder, until governance lands).
    Remove {
        /// The member removed.
        member: MemberId,
        /// Why.
        reason: String,
    },
    /// An hour attestation, written by the provider.
    Attest {
        /// Who received the service.
        to: MemberId,
        /// How long, 1..=1440 minutes.
        minutes: i64,
        /// What was done.
        service: String,
        /// Category (free text, 1..=32 chars).
        category: String,
        /// The day of service.
        date: Day,
    },
    /// The receiver confirms an attestation.
    Confirm {
        /// The attestation.
        attestation: RecordId,
    },
    /// The receiver declines an attestation.
    Decline {
        /// The attestation.
        attestation: RecordId,
    },
    /// A proposal members can support with SP.
    Proposal {
        /// Title.
        title: String,
        /// Description.
        description: String,
    },
    /// The proposer closes their proposal; SP locked on it return.
    Close {
        /// The proposal.
        proposal: RecordId,
        /// How it ended.
        outcome: Outcome,
    },
    /// Support Points locked on a proposal.
    Allocate {
        /// The proposal.
        proposal: RecordId,
        /// How many points (1 or more).
        points: i64,
    },
    /// A mutual-aid request.
    AidRequest {
        /// Category, one of the `aid_categories` parameter.
        category: String,
        /// 3..=100 characters.
        title: String,
        /// 10..=500 characters.
        description: String,
        /// Urgency.
        urgency: Urgency,
        /// Optional date by which help is needed.
        needed_by: Option<Day>,
        /// Optional coarse location.
        location: Option<String>,
    },
    /// An offer of help on a request.
    AidOffer {
        /// The request.
        request: RecordId,
        /// 10..=500 characters.
        message: String,
        /// Availability text.
        availability: String,
    },
    /// The requester accepts one offer.
    AidAccept {
        /// The offer.
        offer: RecordId,
    },
    /// One party confirms the aid was given.
    AidConfirm {
        /// The request.
        request: RecordId,
        /// Optional rating 1..=5 of the other party.
        rating: Option<i64>,
        /// Optional feedback.
        feedback: Option<String>,
    },
    /// The requester cancels their request.
    AidCancel {
        /// The request.
        request: RecordId,
    },
    /// An abuse report for moderators.
    Report {
        /// What kind of thing is reported.
        target_kind: ReportTarget,
        /// The record id or member id bytes.
        #[serde(with = "hex_bytes")]
        target: [u8; 32],
        /// Why.
        reason: String,
    },
    /// A moderator hides a record from listings (it stays in the ledger for audit).
    Hide {
        /// The record.
        record: RecordId,
        /// Why.
        reason: String,
    },
    /// A decision put to the vote of all members (§7.6).
    Decision {
        /// 3..=100 characters.
        title: String,
        /// Up to 2,000 characters.
        description: String,
        /// End of the voting window, Unix seconds.
        closes_at: i64,
        /// What passing it does.
        action: DecisionAction,
    },
    /// One member's vote on a decision.
    Vote {
        /// The decision.
        decision: RecordId,
        /// Yes, no or abstain.
        choice: Choice,
    },
    /// Closes a decision whose window has ended: the outcome is derived from the votes in
    /// this record's causal past.
    Tally {
        /// The decision.
        decision: RecordId,
    },
    /// The author's visibility setting (§9); the latest in total order wins.
    Visibility {
        /// Who may see the author's balance and history.
        level: Visibility,
    },
    /// A collective purchase proposed by its coordinator (the author).
    Purchase {
        /// What is bought, 3..=100 characters.
        item: String,
        /// The unit quantities count in (`kg`, `litre`, ...), 1..=16 characters.
        unit: String,
        /// Quantity that funds the purchase, 1..=1,000,000.
        target_quantity: i64,
        /// Reference (retail) price of one unit, in minor units, 0..=100,000,000.
        reference_price: i64,
        /// ISO 4217-style code: three upper-case ASCII letters.
        currency: String,
        /// Participants needed to fund it, 1..=10,000.
        min_participants: i64,
        /// Deadline of round 0, Unix seconds (before 2200-01-01).
        deadline: i64,
        /// One round, or monthly rounds.
        recurrence: Recurrence,
    },
    /// A member commits to buy a quantity in one round of a purchase.
    PurchaseCommit {
        /// The purchase.
        purchase: RecordId,
        /// The round, 0..MAX_PURCHASE_ROUNDS.
        round: i64,
        /// Quantity, 1..=1,000,000.
        quantity: i64,
        /// Solidarity: 0 plain, +N pays N % more, -N asks for an N % discount (-100..=100).
        solidarity_percent: i64,
    },
    /// A supplier's bid, recorded openly by any member.
    PurchaseBid {
        /// The purchase.
        purchase: RecordId,
        /// The round, 0..MAX_PURCHASE_ROUNDS.
        round: i64,
        /// Supplier name, 1..=100 characters.
        supplier: String,
        /// Whether the supplier is local (layout: integer 0 or 1).
        local: bool,
        /// Price of one unit, in minor units, 0..=100,000,000.
        unit_price: i64,
        /// The least quantity the supplier sells at that price, 1..=1,000,000.
        min_quantity: i64,
    },
    /// The coordinator marks a round ordered or delivered.
    PurchaseStep {
        /// The purchase.
        purchase: RecordId,
        /// The round.
        round: i64,
        /// Which step.
        step: PurchaseStep,
    },
    /// Payment or pickup of one participant in a round.
    PurchaseMark {
        /// The purchase.
        purchase: RecordId,
        /// The round.
        round: i64,
        /// The participant.
        member: MemberId,
        /// What is marked.
        mark: PurchaseMark,
    },
    /// A pool members contribute money to: an investment pool, or a relief fund.
    Pool {
        /// Name, 1..=100 characters.
        name: String,
        /// Description, 0..=2000 characters.
        description: String,
        /// Currency code: three upper-case ASCII letters.
        currency: String,
        /// What happens to returns.
        policy: ReturnPolicy,
        /// A relief fund (stored as 0/1).
        relief: bool,
    },
    /// A member pledges money to a pool; it counts once a treasurer confirms it.
    Contribution {
        /// The pool.
        pool: RecordId,
        /// Minor units, 1..=[`MAX_MONEY`].
        amount: i64,
    },
    /// A treasurer confirms the money of a contribution arrived.
    ContributionConfirm {
        /// The contribution.
        contribution: RecordId,
    },
    /// A project asks a pool for money; a governance decision allocates it.
    Application {
        /// The pool.
        pool: RecordId,
        /// Title, 3..=100 characters.
        title: String,
        /// Minor units asked for, 1..=[`MAX_MONEY`].
        amount: i64,
        /// Terms (repayment, timeline), 10..=2000 characters.
        terms: String,
    },
    /// A treasurer pays out (part of) an allocated application.
    Disbursement {
        /// The application.
        application: RecordId,
        /// Minor units, 1..=[`MAX_MONEY`].
        amount: i64,
    },
    /// A treasurer records money coming back: from an application's project, or into a pool.
    Return {
        /// The application or the pool.
        from: RecordId,
        /// Minor units, 1..=[`MAX_MONEY`].
        amount: i64,
    },
    /// A member asks a relief fund for help; they are the beneficiary.
    ReliefRequest {
        /// The relief fund (a pool flagged relief).
        fund: RecordId,
        /// Minor units, 1..=[`MAX_MONEY`].
        amount: i64,
        /// Urgency.
        urgency: Urgency,
        /// The reason, sealed to the stewards ([`crate::seal`]).
        #[serde(with = "hex_vec")]
        reason: Vec<u8>,
    },
    /// A steward approves a relief request.
    ReliefApprove {
        /// The request.
        request: RecordId,
    },
}

/// A scalar field value in the layout.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Field {
    Str(String),
    Int(i64),
    Bytes(Vec<u8>),
}

impl Record {
    /// The kind: the first segment of the root key, and the name `coop ledger --kind` takes.
    pub fn kind(&self) -> &'static str {
        match self {
            Record::Genesis { .. } => "genesis",
            Record::Join { .. } => "join",
            Record::Device { .. } => "device",
            Record::Vouch { .. } => "vouch",
            Record::Remove { .. } => "remove",
            Record::Attest { .. } => "attest",
            Record::Confirm { .. } => "confirm",
            Record::Decline { .. } => "decline",
            Record::Proposal { .. } => "proposal",
            Record::Close { .. } => "close",
            Record::Allocate { .. } => "allocate",
            Record::AidRequest { .. } => "aid_request",
            Record::AidOffer { .. } => "aid_offer",
            Record::AidAccept { .. } => "aid_accept",
            Record::AidConfirm { .. } => "aid_confirm",
            Record::AidCancel { .. } => "aid_cancel",
            Record::Report { .. } => "report",
            Record::Hide { .. } => "hide",
            Record::Decision { .. } => "decision",
            Record::Vote { .. } => "vote",
            Record::Tally { .. } => "tally",
            Record::Visibility { .. } => "visibility",
            Record::Purchase { .. } => "purchase",
            Record::PurchaseCommit { .. } => "purchase_commit",
            Record::PurchaseBid { .. } => "purchase_bid",
            Record::PurchaseStep { .. } => "purchase_step",
            Record::PurchaseMark { .. } => "purchase_mark",
            Record::Pool { .. } => "pool",
            Record::Contribution { .. } => "contribution",
            Record::ContributionConfirm { .. } => "contribution_confirm",
            Record::Application { .. } => "application",
            Record::Disbursement { .. } => "disbursement",
            Record::Return { .. } => "return",
            Record::ReliefRequest { .. } => "relief_request",
            Record::ReliefApprove { .. } => "relief_approve",
        }
    }

    /// Whether this is a device's first record (the certificate that binds it to a member).
    pub fn is_certificate(&self) -> bool {
        matches!(
            self,
            Record::Genesis { .. } | Record::Join { .. } | Record::Device { .. }
        )
    }

    /// The root key of this record when written as change `seq` of `device`.
    pub fn root_key(&self, device: &DeviceId, seq: u64) -> String {
        format!("{}/{}/{}", self.kind(), device.to_hex(), seq)
    }

    pub(crate) fn fields(&self) -> Vec<(&'static str, Field)> {
        use Field::*;
        let id = |r: &RecordId| Bytes(r.0.to_vec());
        let mut f = match self {
            Record::Genesis {
                name,
                founder,
                display_name,
                cert,
                params,
            } => {
                let mut f = vec![
                    ("name", Str(name.clone())),
                    ("founder", Bytes(founder.0.to_vec())),
                    ("display_name", Str(display_name.clone())),
                    ("cert", Bytes(cert.to_vec())),
                ];
                for (k, v) in params.entries() {
                    f.push((k, Str(v)));
                }
                f
            }
            Record::Join {
                member,
                cert,
                display_name,
            } => vec![
                ("member", Bytes(member.0.to_vec())),
                ("cert", Bytes(cert.to_vec())),
                ("display_name", Str(display_name.clone())),
            ],
            Record::Device { member, cert } => vec![
                ("member", Bytes(member.0.to_vec())),
                ("cert", Bytes(cert.to_vec())),
            ],
            Record::Vouch { member } => vec![("member", Bytes(member.0.to_vec()))],
            Record::Remove { member, reason } => vec![
                ("member", Bytes(member.0.to_vec())),
                ("reason", Str(reason.clone())),
            ],
            Record::Attest {
                to,
                minutes,
                service,
                category,
                date,
            } => vec![
                ("to", Bytes(to.0.to_vec())),
                ("minutes", Int(*minutes)),
                ("service", Str(service.clone())),
                ("category", Str(category.clone())),
                ("date", Int(date.0 as i64)),
            ],
            Record::Confirm { attestation } | Record::Decline { attestation } => {
                vec![("attestation", id(attestation))]
            }
            Record::Proposal { title, description } => vec![
                ("title", Str(title.clone())),
                ("description", Str(description.clone())),
            ],
            Record::Close { proposal, outcome } => vec![
                ("proposal", id(proposal)),
                ("outcome", Str(outcome.as_str().into())),
            ],
            Record::Allocate { proposal, points } => {
                vec![("proposal", id(proposal)), ("points", Int(*points))]
            }
            Record::AidRequest {
                category,
                title,
                description,
                urgency,
                needed_by,
                location,
            } => {
                let mut f = vec![
                    ("category", Str(category.clone())),
                    ("title", Str(title.clone())),
                    ("description", Str(description.clone())),
                    ("urgency", Str(urgency.as_str().into())),
                ];
                if let Some(d) = needed_by {
                    f.push(("needed_by", Int(d.0 as i64)));
                }
                if let Some(l) = location {
                    f.push(("location", Str(l.clone())));
                }
                f
            }
            Record::AidOffer {
                request,
                message,
                availability,
            } => vec![
                ("request", id(request)),
                ("message", Str(message.clone())),
                ("availability", Str(availability.clone())),
            ],
            Record::AidAccept { offer } => vec![("offer", id(offer))],
            Record::AidConfirm {
                request,
                rating,
                feedback,
            } => {
                let mut f = vec![("request", id(request))];
                if let Some(r) = rating {
                    f.push(("rating", Int(*r)));
                }
                if let Some(t) = feedback {
                    f.push(("feedback", Str(t.clone())));
                }
                f
            }
            Record::AidCancel { request } => vec![("request", id(request))],
            Record::Report {
                target_kind,
                target,
                reason,
            } => vec![
                ("target_kind", Str(target_kind.as_str().into())),
                ("target", Bytes(target.to_vec())),
                ("reason", Str(reason.clone())),
            ],
            Record::Hide { record, reason } => {
                vec![("record", id(record)), ("reason", Str(reason.clone()))]
            }
            Record::Decision {
                title,
                description,
                closes_at,
                action,
            } => {
                let mut f = vec![
                    ("title", Str(title.clone())),
                    ("description", Str(description.clone())),
                    ("closes_at", Int(*closes_at)),
                    ("action", Str(action.as_str().into())),
                ];
                match action {
                    DecisionAction::General => {}
                    DecisionAction::Param { key, value } => {
                        f.push(("key", Str(key.clone())));
                        f.push(("value", Str(value.clone())));
                    }
                    DecisionAction::RoleGrant { member, role }
                    | DecisionAction::RoleRevoke { member, role } => {
                        f.push(("member", Bytes(member.0.to_vec())));
                        f.push(("role", Str(role.as_str().into())));
                    }
                    DecisionAction::Removal { member } => {
                        f.push(("member", Bytes(member.0.to_vec())))
                    }
                    DecisionAction::PoolAllocation { application } => {
                        f.push(("application", id(application)))
                    }
                }
                f
            }
            Record::Vote { decision, choice } => vec![
                ("decision", id(decision)),
                ("choice", Str(choice.as_str().into())),
            ],
            Record::Tally { decision } => vec![("decision", id(decision))],
            Record::Visibility { level } => vec![("level", Str(level.as_str().into()))],
            Record::Purchase {
                item,
                unit,
                target_quantity,
                reference_price,
                currency,
                min_participants,
                deadline,
                recurrence,
            } => vec![
                ("item", Str(item.clone())),
                ("unit", Str(unit.clone())),
                ("target_quantity", Int(*target_quantity)),
                ("reference_price", Int(*reference_price)),
                ("currency", Str(currency.clone())),
                ("min_participants", Int(*min_participants)),
                ("deadline", Int(*deadline)),
                ("recurrence", Str(recurrence.as_str().into())),
            ],
            Record::PurchaseCommit {
                purchase,
                round,
                quantity,
                solidarity_percent,
            } => vec![
                ("purchase", id(purchase)),
                ("round", Int(*round)),
                ("quantity", Int(*quantity)),
                ("solidarity_percent", Int(*solidarity_percent)),
            ],
            Record::PurchaseBid {
                purchase,
                round,
                supplier,
                local,
                unit_price,
                min_quantity,
            } => vec![
                ("purchase", id(purchase)),
                ("round", Int(*round)),
                ("supplier", Str(supplier.clone())),
                ("local", Int(i64::from(*local))),
                ("unit_price", Int(*unit_price)),
                ("min_quantity", Int(*min_quantity)),
            ],
            Record::PurchaseStep {
                purchase,
                round,
                step,
            } => vec![
                ("purchase", id(purchase)),
                ("round", Int(*round)),
                ("step", Str(step.as_str().into())),
            ],
            Record::PurchaseMark {
                purchase,
                round,
                member,
                mark,
            } => vec![
                ("purchase", id(purchase)),
                ("round", Int(*round)),
                ("member", Bytes(member.0.to_vec())),
                ("mark", Str(mark.as_str().into())),
            ],
            Record::Pool {
                name,
                description,
                currency,
                policy,
                relief,
            } => vec![
                ("name", Str(name.clone())),
                ("description", Str(description.clone())),
                ("currency", Str(currency.clone())),
                ("policy", Str(policy.as_str().into())),
                ("relief", Int(i64::from(*relief))),
            ],
            Record::Contribution { pool, amount } => {
                vec![("pool", id(pool)), ("amount", Int(*amount))]
            }
            Record::ContributionConfirm { contribution } => {
                vec![("contribution", id(contribution))]
            }
            Record::Application {
                pool,
                title,
                amount,
                terms,
            } => vec![
                ("pool", id(pool)),
                ("title", Str(title.clone())),
                ("amount", Int(*amount)),
                ("terms", Str(terms.clone())),
            ],
            Record::Disbursement {
                application,
                amount,
            } => vec![("application", id(application)), ("amount", Int(*amount))],
            Record::Return { from, amount } => vec![("from", id(from)), ("amount", Int(*amount))],
            Record::ReliefRequest {
                fund,
                amount,
                urgency,
                reason,
            } => vec![
                ("fund", id(fund)),
                ("amount", Int(*amount)),
                ("urgency", Str(urgency.as_str().into())),
                ("reason", Bytes(reason.clone())),
            ],
            Record::ReliefApprove { request } => vec![("request", id(request))],
        };
        f.insert(0, ("v", Int(LAYOUT_VERSION as i64)));
        f
    }

    /// Builds the Automerge change that carries this record as change `seq` of `device`,
    /// with the given first op counter, dependencies and author-claimed time.
    ///
    /// The change is built directly from its operations (no document transaction), so
    /// authoring costs the same whatever the size of the document.
    pub(crate) fn to_change(
        &self,
        device: &DeviceId,
        seq: u64,
        start_op: NonZeroU64,
        mut deps: Vec<automerge::ChangeHash>,
        time: i64,
    ) -> automerge::Change {
        let actor = device.actor();
        let obj = ObjectId::Id(OpId::new(start_op.get(), &actor));
        let mut ops = vec![Op {
            action: OpType::Make(ObjType::Map),
            obj: ObjectId::Root,
            key: Key::Map(self.root_key(device, seq).into()),
            pred: SortedVec::new(),
            insert: false,
        }];
        for (k, v) in self.fields() {
            let value = match v {
                Field::Str(s) => ScalarValue::Str(s.into()),
                Field::Int(i) => ScalarValue::Int(i),
                Field::Bytes(b) => ScalarValue::Bytes(b),
            };
            ops.push(Op {
                action: OpType::Put(value),
                obj: obj.clone(),
                key: Key::Map(k.into()),
                pred: SortedVec::new(),
                insert: false,
            });
        }
        deps.sort();
        automerge::Change::from(automerge::ExpandedChange {
            operations: ops,
            actor_id: actor,
            hash: None,
            seq,
            start_op,
            time,
            message: None,
            deps,
            extra_bytes: Vec::new(),
            author: None,
        })
    }

    /// Parses and validates a record from its kind and fields. The error names the problem.
    pub(crate) fn from_fields(
        kind: &str,
        fields: &BTreeMap<String, Field>,
    ) -> Result<Record, String> {
        let f = Fields(fields);
        match f.int("v")? {
            v if v == LAYOUT_VERSION as i64 => {}
            v => return Err(format!("unsupported layout version {v}")),
        }
        let rec = match kind {
            "genesis" => {
                let mut params = Params::default();
                for k in crate::params::PARAM_NAMES {
                    params
                        .set(k, &f.str(k, 0, 4096)?)
                        .map_err(|e| e.to_string())?;
                }
                Record::Genesis {
                    name: f.str("name", 1, 100)?,
                    founder: MemberId(f.b32("founder")?),
                    display_name: f.str("display_name", 1, 64)?,
                    cert: f.b64("cert")?,
                    params,
                }
            }
            "join" => Record::Join {
                member: MemberId(f.b32("member")?),
                cert: f.b64("cert")?,
                display_name: f.str("display_name", 1, 64)?,
            },
            "device" => Record::Device {
                member: MemberId(f.b32("member")?),
                cert: f.b64("cert")?,
            },
            "vouch" => Record::Vouch {
                member: MemberId(f.b32("member")?),
            },
            "remove" => Record::Remove {
                member: MemberId(f.b32("member")?),
                reason: f.str("reason", 0, 500)?,
            },
            "attest" => {
                let minutes = f.int("minutes")?;
                if !(1..=1440).contains(&minutes) {
                    return Err(format!("minutes {minutes} outside 1..=1440"));
                }
                Record::Attest {
                    to: MemberId(f.b32("to")?),
                    minutes,
                    service: f.str("service", 1, 200)?,
                    category: f.str("category", 1, 32)?,
                    date: f.day("date")?,
                }
            }
            "confirm" => Record::Confirm {
                attestation: f.id("attestation")?,
            },
            "decline" => Record::Decline {
                attestation: f.id("attestation")?,
            },
            "proposal" => Record::Proposal {
                title: f.str("title", 3, 100)?,
                description: f.str("description", 0, 2000)?,
            },
            "close" => Record::Close {
                proposal: f.id("proposal")?,
                outcome: f.str("outcome", 1, 16)?.parse()?,
            },
            "allocate" => {
                let points = f.int("points")?;
                if !(1..=1_000_000).contains(&points) {
                    return Err(format!("points {points} outside 1..=1000000"));
                }
                Record::Allocate {
                    proposal: f.id("proposal")?,
                    points,
                }
            }
            "aid_request" => Record::AidRequest {
                category: f.str("category", 1, 32)?,
                title: f.str("title", 3, 100)?,
                description: f.str("description", 10, 500)?,
                urgency: f.str("urgency", 1, 16)?.parse()?,
                needed_by: f.opt("needed_by", |f| f.day("needed_by"))?,
                location: f.opt("location", |f| f.str("location", 1, 100))?,
            },
            "aid_offer" => Record::AidOffer {
                request: f.id("request")?,
                message: f.str("message", 10, 500)?,
                availability: f.str("availability", 1, 200)?,
            },
            "aid_accept" => Record::AidAccept {
                offer: f.id("offer")?,
            },
            "aid_confirm" => {
                let rating = f.opt("rating", |f| f.int("rating"))?;
                if let Some(r) = rating {
                    if !(1..=5).contains(&r) {
                        return Err(format!("rating {r} outside 1..=5"));
                    }
                }
                Record::AidConfirm {
                    request: f.id("request")?,
                    rating,
                    feedback: f.opt("feedback", |f| f.str("feedback", 1, 500))?,
                }
            }
            "aid_cancel" => Record::AidCancel {
                request: f.id("request")?,
            },
            "report" => Record::Report {
                target_kind: f.str("target_kind", 1, 16)?.parse()?,
                target: f.b32("target")?,
                reason: f.str("reason", 3, 500)?,
            },
            "hide" => Record::Hide {
                record: f.id("record")?,
                reason: f.str("reason", 3, 500)?,
            },
            "decision" => {
                let action = match f.str("action", 1, 32)?.as_str() {
                    "general" => DecisionAction::General,
                    "param" => DecisionAction::Param {
                        key: f.str("key", 1, 64)?,
                        value: f.str("value", 1, 4096)?,
                    },
                    "role_grant" => DecisionAction::RoleGrant {
                        member: MemberId(f.b32("member")?),
                        role: f.str("role", 1, 16)?.parse()?,
                    },
                    "role_revoke" => DecisionAction::RoleRevoke {
                        member: MemberId(f.b32("member")?),
                        role: f.str("role", 1, 16)?.parse()?,
                    },
                    "removal" => DecisionAction::Removal {
                        member: MemberId(f.b32("member")?),
                    },
                    "pool_allocation" => DecisionAction::PoolAllocation {
                        application: f.id("application")?,
                    },
                    other => return Err(format!("unknown decision action {other:?}")),
                };
                Record::Decision {
                    title: f.str("title", 3, 100)?,
                    description: f.str("description", 0, 2000)?,
                    closes_at: f.int("closes_at")?,
                    action,
                }
            }
            "vote" => Record::Vote {
                decision: f.id("decision")?,
                choice: f.str("choice", 1, 16)?.parse()?,
            },
            "tally" => Record::Tally {
                decision: f.id("decision")?,
            },
            "visibility" => Record::Visibility {
                level: f.str("level", 1, 16)?.parse()?,
            },
            "purchase" => {
                let currency = f.str("currency", 3, 3)?;
                if !currency.chars().all(|c| c.is_ascii_uppercase()) {
                    return Err(format!(
                        "currency {currency:?} is not three upper-case letters"
                    ));
                }
                Record::Purchase {
                    item: f.str("item", 3, 100)?,
                    unit: f.str("unit", 1, 16)?,
                    target_quantity: f.int_in("target_quantity", 1, MAX_PURCHASE_QUANTITY)?,
                    reference_price: f.int_in("reference_price", 0, MAX_UNIT_PRICE)?,
                    currency,
                    min_participants: f.int_in("min_participants", 1, 10_000)?,
                    deadline: f.int_in("deadline", 1, MAX_DEADLINE)?,
                    recurrence: f.str("recurrence", 1, 16)?.parse()?,
                }
            }
            "purchase_commit" => Record::PurchaseCommit {
                purchase: f.id("purchase")?,
                round: f.int_in("round", 0, MAX_PURCHASE_ROUNDS - 1)?,
                quantity: f.int_in("quantity", 1, MAX_PURCHASE_QUANTITY)?,
                solidarity_percent: f.int_in("solidarity_percent", -100, 100)?,
            },
            "purchase_bid" => Record::PurchaseBid {
                purchase: f.id("purchase")?,
                round: f.int_in("round", 0, MAX_PURCHASE_ROUNDS - 1)?,
                supplier: f.str("supplier", 1, 100)?,
                local: f.int_in("local", 0, 1)? == 1,
                unit_price: f.int_in("unit_price", 0, MAX_UNIT_PRICE)?,
                min_quantity: f.int_in("min_quantity", 1, MAX_PURCHASE_QUANTITY)?,
            },
            "purchase_step" => Record::PurchaseStep {
                purchase: f.id("purchase")?,
                round: f.int_in("round", 0, MAX_PURCHASE_ROUNDS - 1)?,
                step: f.str("step", 1, 16)?.parse()?,
            },
            "purchase_mark" => Record::PurchaseMark {
                purchase: f.id("purchase")?,
                round: f.int_in("round", 0, MAX_PURCHASE_ROUNDS - 1)?,
                member: MemberId(f.b32("member")?),
                mark: f.str("mark", 1, 16)?.parse()?,
            },
            "pool" => {
                let currency = f.str("currency", 3, 3)?;
                if !currency.bytes().all(|b| b.is_ascii_uppercase()) {
                    return Err(format!(
                        "currency {currency:?} is not three upper-case letters"
                    ));
                }
                Record::Pool {
                    name: f.str("name", 1, 100)?,
                    description: f.str("description", 0, 2000)?,
                    currency,
                    policy: f.str("policy", 1, 16)?.parse()?,
                    relief: match f.int("relief")? {
                        0 => false,
                        1 => true,
                        r => return Err(format!("relief {r} is not 0 or 1")),
                    },
                }
            }
            "contribution" => Record::Contribution {
                pool: f.id("pool")?,
                amount: f.money("amount")?,
            },
            "contribution_confirm" => Record::ContributionConfirm {
                contribution: f.id("contribution")?,
            },
            "application" => Record::Application {
                pool: f.id("pool")?,
                title: f.str("title", 3, 100)?,
                amount: f.money("amount")?,
                terms: f.str("terms", 10, 2000)?,
            },
            "disbursement" => Record::Disbursement {
                application: f.id("application")?,
                amount: f.money("amount")?,
            },
            "return" => Record::Return {
                from: f.id("from")?,
                amount: f.money("amount")?,
            },
            "relief_request" => {
                let reason = f.blob("reason", crate::seal::MAX_SEALED_BYTES)?;
                crate::seal::recipients(&reason).map_err(|e| format!("field \"reason\": {e}"))?;
                Record::ReliefRequest {
                    fund: f.id("fund")?,
                    amount: f.money("amount")?,
                    urgency: f.str("urgency", 1, 16)?.parse()?,
                    reason,
                }
            }
            "relief_approve" => Record::ReliefApprove {
                request: f.id("request")?,
            },
            other => return Err(format!("unknown record kind {other:?}")),
        };
        // Every field written must be one this kind knows: no smuggled extra data.
        let known: Vec<&str> = rec.fields().iter().map(|(k, _)| *k).collect();
        if let Some(extra) = fields.keys().find(|k| !known.contains(&k.as_str())) {
            return Err(format!("unexpected field {extra:?}"));
        }
        Ok(rec)
    }

    /// A one-line human summary (ids shortened).
    pub fn summary(&self) -> String {
        match self {
            Record::Genesis { name, .. } => format!("founded {name:?}"),
            Record::Join { display_name, .. } => format!("asked to join as {display_name:?}"),
            Record::Device { member, .. } => format!("new device for {}", member.short()),
            Record::Vouch { member } => format!("vouched for {}", member.short()),
            Record::Remove { member, reason } => format!("removed {} ({reason})", member.short()),
            Record::Attest {
                to,
                minutes,
                service,
                date,
                ..
            } => {
                format!("{minutes} min of {service:?} to {} on {date}", to.short())
            }
            Record::Confirm { attestation } => format!("confirmed {}", attestation.short()),
            Record::Decline { attestation } => format!("declined {}", attestation.short()),
            Record::Proposal { title, .. } => format!("proposal {title:?}"),
            Record::Close { proposal, outcome } => {
                format!("closed {} as {outcome}", proposal.short())
            }
            Record::Allocate { proposal, points } => format!("{points} SP to {}", proposal.short()),
            Record::AidRequest {
                title, category, ..
            } => format!("aid request {title:?} ({category})"),
            Record::AidOffer { request, .. } => format!("offered help on {}", request.short()),
            Record::AidAccept { offer } => format!("accepted offer {}", offer.short()),
            Record::AidConfirm { request, .. } => format!("confirmed aid {}", request.short()),
            Record::AidCancel { request } => format!("cancelled aid {}", request.short()),
            Record::Report {
                target_kind,
                target,
                reason,
            } => {
                format!(
                    "reported {target_kind} {} ({reason})",
                    hex::encode(&target[..6])
                )
            }
            Record::Hide { record, reason } => format!("hid {} ({reason})", record.short()),
            Record::Decision { title, action, .. } => {
                format!("decision {title:?} ({})", action.as_str())
            }
            Record::Vote { decision, choice } => {
                format!("voted {choice} on {}", decision.short())
            }
            Record::Tally { decision } => format!("closed the vote on {}", decision.short()),
            Record::Visibility { level } => format!("visibility set to {level}"),
            Record::Purchase {
                item,
                target_quantity,
                unit,
                recurrence,
                ..
            } => format!("purchase {item:?} ({target_quantity} {unit}, {recurrence})"),
            Record::PurchaseCommit {
                purchase,
                round,
                quantity,
                solidarity_percent,
            } => format!(
                "committed {quantity} to {} round {round} (solidarity {solidarity_percent:+}%)",
                purchase.short()
            ),
            Record::PurchaseBid {
                purchase,
                round,
                supplier,
                unit_price,
                ..
            } => format!(
                "bid by {supplier:?} at {unit_price} on {} round {round}",
                purchase.short()
            ),
            Record::PurchaseStep {
                purchase,
                round,
                step,
            } => format!("{} round {round} {step}", purchase.short()),
            Record::PurchaseMark {
                purchase,
                round,
                member,
                mark,
            } => format!(
                "{} {mark} in {} round {round}",
                member.short(),
                purchase.short()
            ),
            Record::Pool {
                name,
                currency,
                policy,
                relief,
                ..
            } => {
                let what = if *relief { "relief fund" } else { "pool" };
                format!("{what} {name:?} ({currency}, {policy})")
            }
            Record::Contribution { pool, amount } => {
                format!("pledged {} to pool {}", money(*amount), pool.short())
            }
            Record::ContributionConfirm { contribution } => {
                format!("confirmed contribution {}", contribution.short())
            }
            Record::Application { title, amount, .. } => {
                format!("applied for {} ({title:?})", money(*amount))
            }
            Record::Disbursement {
                application,
                amount,
            } => format!("disbursed {} to {}", money(*amount), application.short()),
            Record::Return { from, amount } => {
                format!("returned {} from {}", money(*amount), from.short())
            }
            Record::ReliefRequest {
                fund,
                amount,
                urgency,
                ..
            } => format!(
                "asked fund {} for {} ({urgency} urgency)",
                fund.short(),
                money(*amount)
            ),
            Record::ReliefApprove { request } => format!("approved relief {}", request.short()),
        }
    }
}

struct Fields<'a>(&'a BTreeMap<String, Field>);

impl Fields<'_> {
    fn get(&self, k: &str) -> Result<&Field, String> {
        self.0.get(k).ok_or_else(|| format!("missing field {k:?}"))
    }
    fn opt<T>(&self, k: &str, f: impl Fn(&Self) -> Result<T, String>) -> Result<Option<T>, String> {
        if self.0.contains_key(k) {
            f(self).map(Some)
        } else {
            Ok(None)
        }
    }
    fn str(&self, k: &str, min: usize, max: usize) -> Result<String, String> {
        match self.get(k)? {
            Field::Str(s) => {
                let n = s.chars().count();
                if n < min || n > max {
                    Err(format!(
                        "field {k:?} has {n} characters, expected {min}..={max}"
                    ))
                } else if s.chars().any(|c| c.is_control() && c != '\n') {
                    Err(format!("field {k:?} contains control characters"))
                } else {
                    Ok(s.clone())
                }
            }
            _ => Err(format!("field {k:?} is not text")),
        }
    }
    fn int(&self, k: &str) -> Result<i64, String> {
        match self.get(k)? {
            Field::Int(i) => Ok(*i),
            _ => Err(format!("field {k:?} is not an integer")),
        }
    }
    fn int_in(&self, k: &str, min: i64, max: i64) -> Result<i64, String> {
        let i = self.int(k)?;
        if (min..=max).contains(&i) {
            Ok(i)
        } else {
            Err(format!("field {k:?} is {i}, expected {min}..={max}"))
        }
    }
    fn day(&self, k: &str) -> Result<Day, String> {
        let d = self.int(k)?;
        // Years 1900..=2200 are plenty for a ledger of services.
        if !(-25_567..=84_006).contains(&d) {
            return Err(format!("field {k:?} is not a plausible date"));
        }
        Ok(Day(d as i32))
    }
    fn bytes<const N: usize>(&self, k: &str) -> Result<[u8; N], String> {
        match self.get(k)? {
            Field::Bytes(b) => b
                .as_slice()
                .try_into()
                .map_err(|_| format!("field {k:?} must be {N} bytes")),
            _ => Err(format!("field {k:?} is not bytes")),
        }
    }
    fn b32(&self, k: &str) -> Result<[u8; 32], String> {
        self.bytes::<32>(k)
    }
    fn b64(&self, k: &str) -> Result<[u8; 64], String> {
        self.bytes::<64>(k)
    }
    fn id(&self, k: &str) -> Result<RecordId, String> {
        self.b32(k).map(RecordId)
    }
    fn money(&self, k: &str) -> Result<i64, String> {
        let a = self.int(k)?;
        if !(1..=MAX_MONEY).contains(&a) {
            return Err(format!("field {k:?} is {a}, expected 1..={MAX_MONEY}"));
        }
        Ok(a)
    }
    fn blob(&self, k: &str, max: usize) -> Result<Vec<u8>, String> {
        match self.get(k)? {
            Field::Bytes(b) if b.len() <= max => Ok(b.clone()),
            Field::Bytes(b) => Err(format!("field {k:?} has {} bytes, at most {max}", b.len())),
            _ => Err(format!("field {k:?} is not bytes")),
        }
    }
}

/// Money in minor units as a decimal with two places (`1250` → `12.50`), the form people
/// read and the CLI parses. Every currency is shown with two places.
pub fn money(minor: i64) -> String {
    let sign = if minor < 0 { "-" } else { "" };
    let a = minor.unsigned_abs();
    format!("{sign}{}.{:02}", a / 100, a % 100)
}

/// Serde for fixed-size byte arrays as hex strings.
mod hex_bytes {
    use serde::{Deserialize, Deserializer, Serializer};

    pub(super) fn serialize<S: Serializer, const N: usize>(
        b: &[u8; N],
        s: S,
    ) -> Result<S::Ok, S::Error> {
        s.serialize_str(&hex::encode(b))
    }

    pub(super) fn deserialize<'de, D: Deserializer<'de>, const N: usize>(
        d: D,
    ) -> Result<[u8; N], D::Error> {
        let s = String::deserialize(d)?;
        let mut out = [0u8; N];
        hex::decode_to_slice(&s, &mut out).map_err(serde::de::Error::custom)?;
        Ok(out)
    }
}

/// Serde for byte vectors as hex strings.
pub(crate) mod hex_vec {
    use serde::{Deserialize, Deserializer, Serializer};

    pub(crate) fn serialize<S: Serializer>(b: &[u8], s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&hex::encode(b))
    }

    pub(crate) fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<u8>, D::Error> {
        let s = String::deserialize(d)?;
        hex::decode(&s).map_err(serde::de::Error::custom)
    }
}
