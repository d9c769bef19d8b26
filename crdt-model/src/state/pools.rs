//! Pools and relief funds as derived: balances, contributors' shares, movements,
//! applications and relief requests, and their totals.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::ids::{MemberId, RecordId};
use crate::terms::{ReturnPolicy, Role, Urgency};

use super::State;

/// Basis points in a whole: contributor shares sum to this.
pub const WHOLE_BPS: i64 = 10_000;

/// A pool as derived. Balance = confirmed − disbursed + returned − distributed.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Pool {
    /// Record id.
    pub id: RecordId,
    /// Who opened it.
    pub creator: MemberId,
    /// Name.
    pub name: String,
    /// Description.
    pub description: String,
    /// Currency code.
    pub currency: String,
    /// What happens to returns.
    pub policy: ReturnPolicy,
    /// A relief fund.
    pub relief: bool,
    /// Contributions pledged and not yet confirmed (not in the balance).
    pub pledged: i64,
    /// Confirmed contributions.
    pub confirmed: i64,
    /// Paid out: disbursements to applications and relief releases.
    pub disbursed: i64,
    /// Money that came back.
    pub returned: i64,
    /// The part of returns owed to contributors (left the balance).
    pub distributed: i64,
    /// What the pool holds.
    pub balance: i64,
    /// Contributors with confirmed money: their total, share and what they are owed.
    pub contributors: BTreeMap<MemberId, Contributor>,
    /// Every movement of money, in total order.
    pub movements: Vec<Movement>,
}

/// One contributor of a pool.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Contributor {
    /// Confirmed contributions.
    pub confirmed: i64,
    /// Share of the pool in basis points (all shares of a pool sum to 10,000).
    pub share_bps: i64,
    /// Distributed returns owed to this contributor.
    pub owed: i64,
}

/// What moved money in or out of a pool.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MovementKind {
    /// A contribution was confirmed (in).
    Contribution,
    /// A disbursement to an application (out).
    Disbursement,
    /// A relief request was released (out).
    Release,
    /// Money came back (in; the distributed part is owed to contributors).
    Return,
}

/// One movement of money.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Movement {
    /// The record that moved it.
    pub id: RecordId,
    /// What kind.
    pub kind: MovementKind,
    /// Minor units.
    pub amount: i64,
    /// The contribution, application or relief request concerned.
    pub of: Option<RecordId>,
    /// The author-claimed time of the record.
    pub time: i64,
    /// For returns: the part owed to contributors.
    pub distributed: i64,
}

/// Settlement of a contribution.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ContributionStatus {
    /// Promised; not in the balance.
    Pledged,
    /// A treasurer confirmed the money arrived.
    Confirmed,
}

/// A contribution as derived.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Contribution {
    /// Record id.
    pub id: RecordId,
    /// The pool.
    pub pool: RecordId,
    /// Who contributes.
    pub contributor: MemberId,
    /// Minor units.
    pub amount: i64,
    /// Settlement.
    pub status: ContributionStatus,
    /// The treasurer's confirmation.
    pub confirmed_by: Option<RecordId>,
}

/// Where an application stands.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ApplicationStatus {
    /// Waiting for a decision.
    Pending,
    /// A passed decision allocated it.
    Allocated,
}

/// An application as derived.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Application {
    /// Record id.
    pub id: RecordId,
    /// The pool.
    pub pool: RecordId,
    /// Who applied.
    pub applicant: MemberId,
    /// Title.
    pub title: String,
    /// Minor units asked for.
    pub amount: i64,
    /// Terms.
    pub terms: String,
    /// Status.
    pub status: ApplicationStatus,
    /// The decision that allocated it.
    pub decision: Option<RecordId>,
    /// Minor units allocated (the amount asked for, once allocated).
    pub allocated: i64,
    /// Minor units disbursed so far.
    pub disbursed: i64,
    /// Minor units returned from the project.
    pub returned: i64,
}

/// Where a relief request stands.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ReliefStatus {
    /// Waiting for steward approvals.
    Pending,
    /// Approved by enough stewards and paid out of the fund.
    Released,
}

impl ReliefStatus {
    /// Stable text form.
    pub fn as_str(&self) -> &'static str {
        match self {
            ReliefStatus::Pending => "pending",
            ReliefStatus::Released => "released",
        }
    }
}

/// One steward's approval.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReliefApproval {
    /// Record id.
    pub id: RecordId,
    /// The steward.
    pub steward: MemberId,
}

/// A relief request as derived. Beneficiary and amount are public; the reason is sealed.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReliefRequest {
    /// Record id.
    pub id: RecordId,
    /// The relief fund.
    pub fund: RecordId,
    /// Who asks (and receives).
    pub beneficiary: MemberId,
    /// Minor units.
    pub amount: i64,
    /// Urgency.
    pub urgency: Urgency,
    /// The reason, sealed ([`crate::seal`]); only its recipients can open it.
    #[serde(with = "crate::ids::hex_vec")]
    pub sealed_reason: Vec<u8>,
    /// Who the reason is sealed to.
    pub sealed_to: Vec<MemberId>,
    /// The author-claimed time of the request.
    pub time: i64,
    /// Status.
    pub status: ReliefStatus,
    /// Counted approvals, in total order.
    pub approvals: Vec<ReliefApproval>,
    /// The approval that released it.
    pub released_by: Option<RecordId>,
    /// The author-claimed time of that approval: when the relief counts against the cap.
    pub released_at: Option<i64>,
}

/// Pool figures of one currency, for metrics.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct PoolTotals {
    /// Investment pools.
    pub pools: usize,
    /// Relief funds.
    pub relief_funds: usize,
    /// Pledged, not yet confirmed.
    pub pledged: i64,
    /// Confirmed contributions.
    pub confirmed: i64,
    /// Paid out (disbursements and relief).
    pub disbursed: i64,
    /// Came back.
    pub returned: i64,
    /// Owed to contributors from returns.
    pub distributed: i64,
    /// Held by all pools and funds.
    pub balance: i64,
}

/// Relief figures of one currency, for metrics.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReliefTotals {
    /// Requests waiting for approvals.
    pub open_requests: usize,
    /// Minor units they ask for.
    pub open_amount: i64,
    /// Requests released.
    pub released_requests: usize,
    /// Minor units released.
    pub released_amount: i64,
    /// What the relief funds hold.
    pub fund_balance: i64,
}

impl State {
    /// Pool figures per currency (investment pools and relief funds together).
    pub fn pool_totals(&self) -> BTreeMap<String, PoolTotals> {
        let mut out: BTreeMap<String, PoolTotals> = BTreeMap::new();
        for p in self.pools.values() {
            let t = out.entry(p.currency.clone()).or_default();
            if p.relief {
                t.relief_funds += 1;
            } else {
                t.pools += 1;
            }
            t.pledged += p.pledged;
            t.confirmed += p.confirmed;
            t.disbursed += p.disbursed;
            t.returned += p.returned;
            t.distributed += p.distributed;
            t.balance += p.balance;
        }
        out
    }

    /// Relief figures per currency: open requests, releases, and what the funds hold.
    pub fn relief_totals(&self) -> BTreeMap<String, ReliefTotals> {
        let mut out: BTreeMap<String, ReliefTotals> = BTreeMap::new();
        for p in self.pools.values().filter(|p| p.relief) {
            out.entry(p.currency.clone()).or_default().fund_balance += p.balance;
        }
        for r in self.relief_requests.values() {
            let Some(fund) = self.pools.get(&r.fund) else {
                continue;
            };
            let t = out.entry(fund.currency.clone()).or_default();
            match r.status {
                ReliefStatus::Pending => {
                    t.open_requests += 1;
                    t.open_amount += r.amount;
                }
                ReliefStatus::Released => {
                    t.released_requests += 1;
                    t.released_amount += r.amount;
                }
            }
        }
        out
    }

    /// Admitted members holding the steward role: whom relief reasons are sealed to.
    pub fn stewards(&self) -> Vec<MemberId> {
        self.members
            .values()
            .filter(|m| {
                m.status == super::MemberStatus::Admitted && m.roles.contains(&Role::Steward)
            })
            .map(|m| m.id)
            .collect()
    }
}

/// Splits `total` minor units (or basis points) in proportion to `weights`, in integers:
/// each part is the floor of `total × weight ÷ Σweights`; the units left over go one each to
/// the parts with the largest remainders, ties broken by ascending member id. The parts sum
/// to `total` exactly (to nothing when all weights are zero).
pub fn apportion(total: i64, weights: &BTreeMap<MemberId, i64>) -> BTreeMap<MemberId, i64> {
    let sum: i128 = weights.values().map(|w| i128::from(*w)).sum();
    if sum <= 0 {
        return weights.keys().map(|m| (*m, 0)).collect();
    }
    let t = i128::from(total);
    let mut out = BTreeMap::new();
    let mut rems: Vec<(i128, MemberId)> = Vec::with_capacity(weights.len());
    let mut given: i128 = 0;
    for (m, w) in weights {
        let exact = t * i128::from(*w);
        let part = exact / sum;
        given += part;
        rems.push((exact % sum, *m));
        out.insert(*m, part as i64);
    }
    // Largest remainder first; among equal remainders the lower member id first.
    rems.sort_by(|a, b| b.0.cmp(&a.0).then(a.1.cmp(&b.1)));
    for (_, m) in rems.iter().take((t - given) as usize) {
        if let Some(p) = out.get_mut(m) {
            *p += 1;
        }
    }
    out
}

/// The part of a return owed to contributors under `policy`: none (reinvest), all
/// (distribute), or half rounded down (hybrid: the odd minor unit stays in the pool).
pub fn distributed_part(policy: ReturnPolicy, amount: i64) -> i64 {
    match policy {
        ReturnPolicy::Reinvest => 0,
        ReturnPolicy::Distribute => amount,
        ReturnPolicy::Hybrid => amount / 2,
    }
}
