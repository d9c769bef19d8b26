//! Pool records: investment pools and relief funds, contributions and their confirmation,
//! applications, disbursements and returns. Rules: docs/RULES.md, "Pools".

use super::layout::{record_layout, text_enum, Currency, Flag, Raw, Text, Word, MONEY};
use crate::ids::RecordId;

/// What a pool does with money that comes back.
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

record_layout! {
    /// A pool members contribute money to: an investment pool, or a relief fund.
    "pool" => pub struct Pool {
        /// Name, 1..=100 characters.
        name: String = Text(1, 100),
        /// Description, 0..=2000 characters.
        description: String = Text(0, 2000),
        /// Currency code: three upper-case ASCII letters.
        currency: String = Currency,
        /// What happens to returns.
        policy: ReturnPolicy = Word,
        /// A relief fund (stored as 0/1).
        relief: bool = Flag,
    }
}

record_layout! {
    /// A member pledges money to a pool; it counts once a treasurer confirms it.
    "contribution" => pub struct Contribution {
        /// The pool.
        pool: RecordId = Raw,
        /// Minor units, 1..=[`MAX_MONEY`].
        amount: i64 = MONEY,
    }
}

record_layout! {
    /// A treasurer confirms the money of a contribution arrived.
    "contribution_confirm" => pub struct ContributionConfirm {
        /// The contribution.
        contribution: RecordId = Raw,
    }
}

record_layout! {
    /// A project asks a pool for money; a governance decision allocates it.
    "application" => pub struct Application {
        /// The pool.
        pool: RecordId = Raw,
        /// Title, 3..=100 characters.
        title: String = Text(3, 100),
        /// Minor units asked for, 1..=[`MAX_MONEY`].
        amount: i64 = MONEY,
        /// Terms (repayment, timeline), 10..=2000 characters.
        terms: String = Text(10, 2000),
    }
}

record_layout! {
    /// A treasurer pays out (part of) an allocated application.
    "disbursement" => pub struct Disbursement {
        /// The application.
        application: RecordId = Raw,
        /// Minor units, 1..=[`MAX_MONEY`].
        amount: i64 = MONEY,
    }
}

record_layout! {
    /// A treasurer records money coming back: from an application's project, or into a pool.
    "return" => pub struct Return {
        /// The application or the pool.
        from: RecordId = Raw,
        /// Minor units, 1..=[`MAX_MONEY`].
        amount: i64 = MONEY,
    }
}

impl Pool {
    pub(super) fn summary(&self) -> String {
        let what = if self.relief { "relief fund" } else { "pool" };
        format!(
            "{what} {:?} ({}, {})",
            self.name, self.currency, self.policy
        )
    }
}

impl Contribution {
    pub(super) fn summary(&self) -> String {
        format!(
            "pledged {} to pool {}",
            super::money(self.amount),
            self.pool.short()
        )
    }
}

impl ContributionConfirm {
    pub(super) fn summary(&self) -> String {
        format!("confirmed contribution {}", self.contribution.short())
    }
}

impl Application {
    pub(super) fn summary(&self) -> String {
        format!(
            "applied for {} ({:?})",
            super::money(self.amount),
            self.title
        )
    }
}

impl Disbursement {
    pub(super) fn summary(&self) -> String {
        format!(
            "disbursed {} to {}",
            super::money(self.amount),
            self.application.short()
        )
    }
}

impl Return {
    pub(super) fn summary(&self) -> String {
        format!(
            "returned {} from {}",
            super::money(self.amount),
            self.from.short()
        )
    }
}
