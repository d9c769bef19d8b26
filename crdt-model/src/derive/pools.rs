//! Investment pools and emergency relief (§7.5): pools with contributions (pledged, then
//! confirmed by a treasurer), applications allocated by governance decisions,
//! disbursements and returns by treasurers under the pool's return policy, and relief
//! funds whose requests stewards approve, capped per person per period.
//!
//! All money is an integer of minor units (cents) in the pool's currency. Rounding, the one
//! place where integers must be split, is always the same rule ([`apportion`]): every part
//! gets the floor of its exact share, and the units left over go one each to the largest
//! remainders, ties to the lower member id. So parts always sum to the whole, and every
//! replica computes the same parts.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::{Ctx, Derived, Refusal, State};
use crate::envelope::RejectReason;
use crate::ids::{MemberId, RecordId};
use crate::ledger::Graph;
use crate::record::{ReturnPolicy, Urgency};

/// Basis points in a whole: contributor shares sum to this.
pub const WHOLE_BPS: i64 = 10_000;

/// A pool as derived. Balance = confirmed − disbursed + returned − distributed.
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
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ContributionStatus {
    /// Promised; not in the balance.
    Pledged,
    /// A treasurer confirmed the money arrived.
    Confirmed,
}

/// A contribution as derived.
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
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ApplicationStatus {
    /// Waiting for a decision.
    Pending,
    /// A passed decision allocated it.
    Allocated,
}

/// An application as derived.
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
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReliefApproval {
    /// Record id.
    pub id: RecordId,
    /// The steward.
    pub steward: MemberId,
}

/// A relief request as derived. Beneficiary and amount are public; the reason is sealed.
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
    #[serde(with = "crate::record::layout::hex_vec")]
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
                m.status == super::MemberStatus::Admitted && m.roles.iter().any(|r| r == "steward")
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

/// Seconds in a day, for the relief period.
const DAY_SECS: i64 = 86_400;

fn refuse<T>(reason: RejectReason, detail: impl Into<String>) -> Result<T, Refusal> {
    Err(Refusal::new(reason, detail.into()))
}

impl Derived {
    fn must_precede(
        &self,
        graph: Graph<'_>,
        c: &Ctx<'_>,
        id: &RecordId,
        what: &str,
    ) -> Result<(), Refusal> {
        if self.precedes(graph, id, c) {
            Ok(())
        } else {
            refuse(
                RejectReason::UnknownReference,
                format!("{what} {} is not in the record's past", id.short()),
            )
        }
    }

    fn counted_pool(&self, id: &RecordId) -> Result<&Pool, Refusal> {
        self.state.pools.get(id).ok_or(Refusal::new(
            RejectReason::UnknownReference,
            format!("{} is not a counted pool", id.short()),
        ))
    }

    fn require_role(&self, author: &MemberId, role: &str, what: &str) -> Result<(), Refusal> {
        if self.has_role(author, role) {
            Ok(())
        } else {
            refuse(RejectReason::NotAllowed, format!("only {role}s {what}"))
        }
    }

    /// A new pool; a relief fund only by a treasurer (it holds money for urgent needs).
    #[allow(clippy::too_many_arguments)]
    pub(super) fn pool(
        &mut self,
        c: &Ctx<'_>,
        author: MemberId,
        name: &str,
        description: &str,
        currency: &str,
        policy: ReturnPolicy,
        relief: bool,
    ) -> Result<(), Refusal> {
        if relief {
            self.require_role(&author, "treasurer", "open relief funds")?;
        }
        self.state.pools.insert(
            c.id,
            Pool {
                id: c.id,
                creator: author,
                name: name.to_string(),
                description: description.to_string(),
                currency: currency.to_string(),
                policy,
                relief,
                pledged: 0,
                confirmed: 0,
                disbursed: 0,
                returned: 0,
                distributed: 0,
                balance: 0,
                contributors: BTreeMap::new(),
                movements: Vec::new(),
            },
        );
        Ok(())
    }

    pub(super) fn contribute(
        &mut self,
        graph: Graph<'_>,
        c: &Ctx<'_>,
        author: MemberId,
        pool: &RecordId,
        amount: i64,
    ) -> Result<(), Refusal> {
        self.must_precede(graph, c, pool, "pool")?;
        self.contribute_known(c, author, pool, amount)
    }

    fn contribute_known(
        &mut self,
        c: &Ctx<'_>,
        author: MemberId,
        pool: &RecordId,
        amount: i64,
    ) -> Result<(), Refusal> {
        self.counted_pool(pool)?;
        if let Some(p) = self.state.pools.get_mut(pool) {
            p.pledged = p.pledged.saturating_add(amount);
        }
        self.state.contributions.insert(
            c.id,
            Contribution {
                id: c.id,
                pool: *pool,
                contributor: author,
                amount,
                status: ContributionStatus::Pledged,
                confirmed_by: None,
            },
        );
        Ok(())
    }

    pub(super) fn confirm_contribution(
        &mut self,
        graph: Graph<'_>,
        c: &Ctx<'_>,
        author: MemberId,
        contribution: &RecordId,
    ) -> Result<(), Refusal> {
        self.require_role(&author, "treasurer", "confirm contributions")?;
        self.must_precede(graph, c, contribution, "contribution")?;
        self.confirm_contribution_known(c, author, contribution)
    }

    fn confirm_contribution_known(
        &mut self,
        c: &Ctx<'_>,
        author: MemberId,
        contribution: &RecordId,
    ) -> Result<(), Refusal> {
        self.require_role(&author, "treasurer", "confirm contributions")?;
        let k = self
            .state
            .contributions
            .get_mut(contribution)
            .ok_or(Refusal::new(
                RejectReason::UnknownReference,
                format!("{} is not a counted contribution", contribution.short()),
            ))?;
        // Four eyes: the money a treasurer brings is confirmed by another treasurer.
        if k.contributor == author {
            return refuse(
                RejectReason::NotAllowed,
                "a treasurer does not confirm their own contribution",
            );
        }
        if k.status == ContributionStatus::Confirmed {
            return refuse(
                RejectReason::AlreadySettled,
                "contribution already confirmed",
            );
        }
        k.status = ContributionStatus::Confirmed;
        k.confirmed_by = Some(c.id);
        let (pool, who, amount) = (k.pool, k.contributor, k.amount);
        if let Some(p) = self.state.pools.get_mut(&pool) {
            p.pledged -= amount;
            p.confirmed = p.confirmed.saturating_add(amount);
            p.balance = p.balance.saturating_add(amount);
            let entry = p.contributors.entry(who).or_default();
            entry.confirmed = entry.confirmed.saturating_add(amount);
            let weights: BTreeMap<MemberId, i64> = p
                .contributors
                .iter()
                .map(|(m, x)| (*m, x.confirmed))
                .collect();
            for (m, bps) in apportion(WHOLE_BPS, &weights) {
                if let Some(x) = p.contributors.get_mut(&m) {
                    x.share_bps = bps;
                }
            }
            p.movements.push(Movement {
                id: c.id,
                kind: MovementKind::Contribution,
                amount,
                of: Some(*contribution),
                time: c.time,
                distributed: 0,
            });
        }
        Ok(())
    }

    #[allow(clippy::too_many_arguments)]
    pub(super) fn apply_to_pool(
        &mut self,
        graph: Graph<'_>,
        c: &Ctx<'_>,
        author: MemberId,
        pool: &RecordId,
        title: &str,
        amount: i64,
        terms: &str,
    ) -> Result<(), Refusal> {
        self.must_precede(graph, c, pool, "pool")?;
        self.apply_to_pool_known(c, author, pool, title, amount, terms)
    }

    fn apply_to_pool_known(
        &mut self,
        c: &Ctx<'_>,
        author: MemberId,
        pool: &RecordId,
        title: &str,
        amount: i64,
        terms: &str,
    ) -> Result<(), Refusal> {
        if self.counted_pool(pool)?.relief {
            return refuse(
                RejectReason::NotAllowed,
                "a relief fund takes relief requests, not applications",
            );
        }
        self.state.applications.insert(
            c.id,
            Application {
                id: c.id,
                pool: *pool,
                applicant: author,
                title: title.to_string(),
                amount,
                terms: terms.to_string(),
                status: ApplicationStatus::Pending,
                decision: None,
                allocated: 0,
                disbursed: 0,
                returned: 0,
            },
        );
        Ok(())
    }

    /// Whether a pool-allocation decision on `application` may be opened: it is a counted
    /// application that is not allocated yet (it was folded earlier in the total order).
    pub(super) fn check_pool_allocation(&self, application: &RecordId) -> Result<(), Refusal> {
        let a = self
            .state
            .applications
            .get(application)
            .ok_or(Refusal::new(
                RejectReason::UnknownReference,
                format!("{} is not a counted application", application.short()),
            ))?;
        if a.status != ApplicationStatus::Pending {
            return refuse(
                RejectReason::AlreadySettled,
                "application already allocated",
            );
        }
        Ok(())
    }

    /// A passed `decision` allocates `application` the amount it asked for; treasurers may
    /// then disburse up to it. Refused as [`Derived::check_pool_allocation`] refuses (a
    /// concurrent decision may have allocated it first).
    pub(super) fn apply_pool_allocation(
        &mut self,
        application: &RecordId,
        decision: RecordId,
    ) -> Result<(), Refusal> {
        self.check_pool_allocation(application)?;
        if let Some(a) = self.state.applications.get_mut(application) {
            a.status = ApplicationStatus::Allocated;
            a.decision = Some(decision);
            a.allocated = a.amount;
        }
        Ok(())
    }

    pub(super) fn disburse(
        &mut self,
        graph: Graph<'_>,
        c: &Ctx<'_>,
        author: MemberId,
        application: &RecordId,
        amount: i64,
    ) -> Result<(), Refusal> {
        self.require_role(&author, "treasurer", "disburse")?;
        self.must_precede(graph, c, application, "application")?;
        self.disburse_known(c, author, application, amount)
    }

    fn disburse_known(
        &mut self,
        c: &Ctx<'_>,
        author: MemberId,
        application: &RecordId,
        amount: i64,
    ) -> Result<(), Refusal> {
        self.require_role(&author, "treasurer", "disburse")?;
        let a = self
            .state
            .applications
            .get(application)
            .ok_or(Refusal::new(
                RejectReason::UnknownReference,
                format!("{} is not a counted application", application.short()),
            ))?;
        if a.status != ApplicationStatus::Allocated {
            return refuse(
                RejectReason::NotAllocated,
                "no decision has allocated this application",
            );
        }
        let left = a.allocated - a.disbursed;
        if amount > left {
            return refuse(
                RejectReason::OverAllocation,
                format!(
                    "{} asked, {} of the allocation left",
                    crate::record::money(amount),
                    crate::record::money(left)
                ),
            );
        }
        let pool = a.pool;
        let balance = self.counted_pool(&pool)?.balance;
        if amount > balance {
            return refuse(
                RejectReason::InsufficientFunds,
                format!(
                    "{} asked, the pool holds {}",
                    crate::record::money(amount),
                    crate::record::money(balance)
                ),
            );
        }
        if let Some(a) = self.state.applications.get_mut(application) {
            a.disbursed += amount;
        }
        if let Some(p) = self.state.pools.get_mut(&pool) {
            p.disbursed = p.disbursed.saturating_add(amount);
            p.balance -= amount;
            p.movements.push(Movement {
                id: c.id,
                kind: MovementKind::Disbursement,
                amount,
                of: Some(*application),
                time: c.time,
                distributed: 0,
            });
        }
        Ok(())
    }

    pub(super) fn pool_return(
        &mut self,
        graph: Graph<'_>,
        c: &Ctx<'_>,
        author: MemberId,
        from: &RecordId,
        amount: i64,
    ) -> Result<(), Refusal> {
        self.require_role(&author, "treasurer", "record returns")?;
        self.must_precede(graph, c, from, "application or pool")?;
        self.pool_return_known(c, author, from, amount)
    }

    /// Money back into a pool, from an allocated application's project or straight into the
    /// pool. The policy's distributed part is owed to the contributors pro rata to their
    /// confirmed contributions ([`apportion`]); with no confirmed contributor, all of it
    /// stays in the pool.
    fn pool_return_known(
        &mut self,
        c: &Ctx<'_>,
        author: MemberId,
        from: &RecordId,
        amount: i64,
    ) -> Result<(), Refusal> {
        self.require_role(&author, "treasurer", "record returns")?;
        let (pool, application) = if let Some(a) = self.state.applications.get(from) {
            if a.status != ApplicationStatus::Allocated {
                return refuse(
                    RejectReason::NotAllocated,
                    "no decision has allocated this application",
                );
            }
            (a.pool, Some(*from))
        } else if self.state.pools.contains_key(from) {
            (*from, None)
        } else {
            return refuse(
                RejectReason::UnknownReference,
                format!("{} is not a counted application or pool", from.short()),
            );
        };
        if let Some(a) = application.and_then(|a| self.state.applications.get_mut(&a)) {
            a.returned = a.returned.saturating_add(amount);
        }
        let p = self.state.pools.get_mut(&pool).ok_or(Refusal::new(
            RejectReason::UnknownReference,
            "no such pool".to_string(),
        ))?;
        let weights: BTreeMap<MemberId, i64> = p
            .contributors
            .iter()
            .map(|(m, x)| (*m, x.confirmed))
            .collect();
        let distributed = if p.confirmed > 0 {
            distributed_part(p.policy, amount)
        } else {
            0
        };
        for (m, part) in apportion(distributed, &weights) {
            if let Some(x) = p.contributors.get_mut(&m) {
                x.owed = x.owed.saturating_add(part);
            }
        }
        p.returned = p.returned.saturating_add(amount);
        p.distributed = p.distributed.saturating_add(distributed);
        p.balance = p.balance.saturating_add(amount - distributed);
        p.movements.push(Movement {
            id: c.id,
            kind: MovementKind::Return,
            amount,
            of: application,
            time: c.time,
            distributed,
        });
        Ok(())
    }

    #[allow(clippy::too_many_arguments)]
    pub(super) fn relief_request(
        &mut self,
        graph: Graph<'_>,
        c: &Ctx<'_>,
        author: MemberId,
        fund: &RecordId,
        amount: i64,
        urgency: Urgency,
        reason: &[u8],
    ) -> Result<(), Refusal> {
        self.must_precede(graph, c, fund, "fund")?;
        self.relief_request_known(c, author, fund, amount, urgency, reason)
    }

    fn relief_request_known(
        &mut self,
        c: &Ctx<'_>,
        author: MemberId,
        fund: &RecordId,
        amount: i64,
        urgency: Urgency,
        reason: &[u8],
    ) -> Result<(), Refusal> {
        if !self.counted_pool(fund)?.relief {
            return refuse(
                RejectReason::NotAllowed,
                "relief requests go to relief funds",
            );
        }
        let cap = self.params().relief_max_per_person;
        if amount > cap {
            return refuse(
                RejectReason::OverReliefCap,
                format!(
                    "{} asked, at most {} per person per period",
                    crate::record::money(amount),
                    crate::record::money(cap)
                ),
            );
        }
        // The gate parsed the sealed reason already; a malformed one never gets here.
        let sealed_to = crate::seal::recipients(reason).unwrap_or_default();
        self.state.relief_requests.insert(
            c.id,
            ReliefRequest {
                id: c.id,
                fund: *fund,
                beneficiary: author,
                amount,
                urgency,
                sealed_reason: reason.to_vec(),
                sealed_to,
                time: c.time,
                status: ReliefStatus::Pending,
                approvals: Vec::new(),
                released_by: None,
                released_at: None,
            },
        );
        Ok(())
    }

    pub(super) fn relief_approve(
        &mut self,
        graph: Graph<'_>,
        c: &Ctx<'_>,
        author: MemberId,
        request: &RecordId,
    ) -> Result<(), Refusal> {
        self.require_role(&author, "steward", "approve relief")?;
        self.must_precede(graph, c, request, "relief request")?;
        self.relief_approve_known(c, author, request)
    }

    /// An approval; the one that brings the count to `relief_approvals` releases the
    /// request, and is refused instead when the fund cannot cover it (`insufficient_funds`)
    /// or when it would take the beneficiary over `relief_max_per_person`
    /// (`over_relief_cap`). A refused approval changes nothing; a later one (another
    /// steward's, once the fund holds more) may release the request.
    ///
    /// The cap: a release at claimed time T is refused when the beneficiary's releases in
    /// the same currency at claimed times t with |t − T| < `relief_period_days` × 86,400 s,
    /// earlier in the total order, plus this one exceed the cap. Checking both directions
    /// means every window of that length, wherever it lies, holds at most the cap, whatever
    /// times the stewards' clocks claim.
    fn relief_approve_known(
        &mut self,
        c: &Ctx<'_>,
        author: MemberId,
        request: &RecordId,
    ) -> Result<(), Refusal> {
        self.require_role(&author, "steward", "approve relief")?;
        let (needed, cap, period) = (
            self.params().relief_approvals,
            self.params().relief_max_per_person,
            self.params().relief_period_days.saturating_mul(DAY_SECS),
        );
        let r = self.state.relief_requests.get(request).ok_or(Refusal::new(
            RejectReason::UnknownReference,
            format!("{} is not a counted relief request", request.short()),
        ))?;
        if r.beneficiary == author {
            return refuse(
                RejectReason::NotAllowed,
                "a steward does not approve their own request",
            );
        }
        if r.status == ReliefStatus::Released {
            return refuse(RejectReason::AlreadySettled, "request already released");
        }
        if r.approvals.iter().any(|a| a.steward == author) {
            return refuse(RejectReason::Redundant, "already approved");
        }
        let (fund, beneficiary, amount) = (r.fund, r.beneficiary, r.amount);
        let releases = r.approvals.len() as i64 + 1 >= needed;
        if releases {
            let f = self.counted_pool(&fund)?;
            if amount > f.balance {
                return refuse(
                    RejectReason::InsufficientFunds,
                    format!(
                        "{} asked, the fund holds {}",
                        crate::record::money(amount),
                        crate::record::money(f.balance)
                    ),
                );
            }
            let currency = f.currency.clone();
            let received: i64 = self
                .state
                .relief_requests
                .values()
                .filter(|o| o.beneficiary == beneficiary && o.id != *request)
                .filter(|o| o.released_at.is_some_and(|t| (t - c.time).abs() < period))
                .filter(|o| {
                    self.state
                        .pools
                        .get(&o.fund)
                        .is_some_and(|p| p.currency == currency)
                })
                .map(|o| o.amount)
                .sum();
            if received + amount > cap {
                return refuse(
                    RejectReason::OverReliefCap,
                    format!(
                        "{} received within {} days, {} more would exceed {}",
                        crate::record::money(received),
                        period / DAY_SECS,
                        crate::record::money(amount),
                        crate::record::money(cap)
                    ),
                );
            }
        }
        if let Some(r) = self.state.relief_requests.get_mut(request) {
            r.approvals.push(ReliefApproval {
                id: c.id,
                steward: author,
            });
            if releases {
                r.status = ReliefStatus::Released;
                r.released_by = Some(c.id);
                r.released_at = Some(c.time);
            }
        }
        if releases {
            if let Some(f) = self.state.pools.get_mut(&fund) {
                f.disbursed = f.disbursed.saturating_add(amount);
                f.balance -= amount;
                f.movements.push(Movement {
                    id: c.id,
                    kind: MovementKind::Release,
                    amount,
                    of: Some(*request),
                    time: c.time,
                    distributed: 0,
                });
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::super::{Fold, Member, MemberStatus};
    use super::*;
    use crate::ids::{CommunityId, DeviceId};
    use crate::params::Params;

    fn m(n: u8) -> MemberId {
        MemberId([n; 32])
    }
    fn r(n: u8) -> RecordId {
        RecordId([n; 32])
    }

    /// A derivation with members 1 (treasurer and steward), 2 (treasurer), 3, 4 (steward).
    fn derived(params: Params) -> Derived {
        let mut state = State::empty(CommunityId([0; 32]));
        state.params = params;
        for (n, roles) in [
            (1, &["treasurer", "steward"][..]),
            (2, &["treasurer"][..]),
            (3, &[][..]),
            (4, &["steward"][..]),
        ] {
            state.members.insert(
                m(n),
                Member {
                    id: m(n),
                    display_name: format!("m{n}"),
                    status: MemberStatus::Admitted,
                    roles: roles.iter().map(|r| r.to_string()).collect(),
                    devices: BTreeMap::new(),
                    vouched_by: Default::default(),
                    time: Default::default(),
                    sp: Default::default(),
                    aid: Default::default(),
                    visibility: Default::default(),
                },
            );
        }
        Derived {
            state,
            fold: Fold::default(),
            last_key: None,
            folded: 0,
            epoch: 0,
        }
    }

    fn ctx(id: u8, time: i64) -> Ctx<'static> {
        Ctx {
            id: r(id),
            dev: 0,
            device: DeviceId([0; 32]),
            seq: 1,
            time,
            clock: &[],
            excluded: false,
        }
    }

    const POOL: u8 = 10;

    /// A pool (id 10) with 300.00 from member 3 and 100.00 from member 2, confirmed.
    fn funded(d: &mut Derived, policy: ReturnPolicy) {
        d.pool(&ctx(POOL, 0), m(3), "Solar", "", "EUR", policy, false)
            .expect("a pool");
        d.contribute_known(&ctx(11, 0), m(3), &r(POOL), 30_000)
            .expect("pledge");
        d.contribute_known(&ctx(12, 0), m(2), &r(POOL), 10_000)
            .expect("pledge");
        d.confirm_contribution_known(&ctx(13, 0), m(1), &r(11))
            .expect("confirm");
        d.confirm_contribution_known(&ctx(14, 0), m(1), &r(12))
            .expect("confirm");
    }

    #[test]
    fn apportion_sums_to_the_whole_and_breaks_ties_by_member() {
        let w = |v: &[(u8, i64)]| v.iter().map(|(k, x)| (m(*k), *x)).collect();
        // Thirds of 10,000 bps: 3,333 each and one left over for the lowest id.
        let thirds = apportion(10_000, &w(&[(3, 5), (1, 5), (2, 5)]));
        assert_eq!(
            thirds.values().copied().collect::<Vec<_>>(),
            [3334, 3333, 3333]
        );
        // 7 split 1:2 → 2.33 and 4.67: floors 2 and 4, the one left goes to the larger rest.
        let parts = apportion(7, &w(&[(1, 100), (2, 200)]));
        assert_eq!(parts[&m(1)], 2);
        assert_eq!(parts[&m(2)], 5);
        for total in [0, 1, 9, 10_000, 999_999_999_999] {
            let p = apportion(
                total,
                &w(&[(1, 3), (2, 7), (3, 11), (4, 1_000_000_000_000)]),
            );
            assert_eq!(p.values().sum::<i64>(), total);
        }
        assert_eq!(apportion(5, &w(&[(1, 0)]))[&m(1)], 0);
        assert_eq!(distributed_part(ReturnPolicy::Hybrid, 101), 50);
    }

    #[test]
    fn allocation_checks_and_applies_once() {
        let mut d = derived(Params::default());
        funded(&mut d, ReturnPolicy::Reinvest);
        assert_eq!(
            d.check_pool_allocation(&r(20)).map_err(|e| e.reason),
            Err(RejectReason::UnknownReference)
        );
        d.apply_to_pool_known(
            &ctx(20, 0),
            m(3),
            &r(POOL),
            "Panels",
            25_000,
            "Repaid in 2 years",
        )
        .expect("an application");
        assert_eq!(d.check_pool_allocation(&r(20)), Ok(()));
        // Nothing is paid before a decision allocates it.
        assert_eq!(
            d.disburse_known(&ctx(21, 0), m(1), &r(20), 100)
                .map_err(|e| e.reason),
            Err(RejectReason::NotAllocated)
        );
        assert_eq!(d.apply_pool_allocation(&r(20), r(99)), Ok(()));
        let a = &d.state.applications[&r(20)];
        assert_eq!(
            (a.status, a.allocated, a.decision),
            (ApplicationStatus::Allocated, 25_000, Some(r(99)))
        );
        // A second decision on the same application is refused at open and at pass.
        assert_eq!(
            d.check_pool_allocation(&r(20)).map_err(|e| e.reason),
            Err(RejectReason::AlreadySettled)
        );
        assert_eq!(
            d.apply_pool_allocation(&r(20), r(98)).map_err(|e| e.reason),
            Err(RejectReason::AlreadySettled)
        );
        assert_eq!(d.state.applications[&r(20)].decision, Some(r(99)));
    }

    #[test]
    fn disbursements_stay_within_the_allocation_and_the_balance() {
        let mut d = derived(Params::default());
        funded(&mut d, ReturnPolicy::Reinvest);
        d.apply_to_pool_known(
            &ctx(20, 0),
            m(3),
            &r(POOL),
            "Panels",
            45_000,
            "Repaid in 2 years",
        )
        .expect("an application");
        d.apply_pool_allocation(&r(20), r(99)).expect("allocated");
        let refused = |d: &mut Derived, id: u8, who: u8, amount: i64| {
            d.disburse_known(&ctx(id, 0), m(who), &r(20), amount)
                .map_err(|e| e.reason)
        };
        assert_eq!(refused(&mut d, 21, 3, 100), Err(RejectReason::NotAllowed));
        // The pool holds 400.00 of the 450.00 allocated.
        assert_eq!(
            refused(&mut d, 21, 1, 40_001),
            Err(RejectReason::InsufficientFunds)
        );
        assert_eq!(refused(&mut d, 21, 1, 30_000), Ok(()));
        assert_eq!(
            refused(&mut d, 22, 2, 15_001),
            Err(RejectReason::OverAllocation)
        );
        assert_eq!(refused(&mut d, 22, 2, 10_000), Ok(()));
        let p = &d.state.pools[&r(POOL)];
        assert_eq!((p.confirmed, p.disbursed, p.balance), (40_000, 40_000, 0));
        assert_eq!(
            refused(&mut d, 23, 2, 5_000),
            Err(RejectReason::InsufficientFunds)
        );
        assert_eq!(d.state.applications[&r(20)].disbursed, 40_000);

        // The project pays 500.01 back: reinvested, all of it is in the pool again.
        d.pool_return_known(&ctx(24, 0), m(1), &r(20), 50_001)
            .expect("a return");
        let p = &d.state.pools[&r(POOL)];
        assert_eq!((p.returned, p.distributed, p.balance), (50_001, 0, 50_001));
        assert_eq!(d.state.applications[&r(20)].returned, 50_001);
        assert_eq!(refused(&mut d, 25, 2, 5_000), Ok(()));
        assert_eq!(d.state.applications[&r(20)].disbursed, 45_000);
        assert_eq!(refused(&mut d, 26, 2, 1), Err(RejectReason::OverAllocation));
    }

    #[test]
    fn returns_follow_the_policy_and_split_by_shares() {
        for (policy, owed3, owed2, balance) in [
            (ReturnPolicy::Reinvest, 0, 0, 40_000 + 1_001),
            // 10.01 split 3:1 → 7.5075 and 2.5025: floors 750 and 250, the unit left to
            // member 3 (remainder 0.75 > 0.25).
            (ReturnPolicy::Distribute, 751, 250, 40_000),
            // Half of 10.01 is 5.00 (rounded down; 5.01 stays): 3.75 and 1.25.
            (ReturnPolicy::Hybrid, 375, 125, 40_000 + 501),
        ] {
            let mut d = derived(Params::default());
            funded(&mut d, policy);
            let p = &d.state.pools[&r(POOL)];
            assert_eq!(p.contributors[&m(3)].share_bps, 7_500);
            assert_eq!(p.contributors[&m(2)].share_bps, 2_500);
            d.pool_return_known(&ctx(30, 0), m(2), &r(POOL), 1_001)
                .expect("a return into the pool");
            let p = &d.state.pools[&r(POOL)];
            assert_eq!(p.contributors[&m(3)].owed, owed3, "{policy}");
            assert_eq!(p.contributors[&m(2)].owed, owed2, "{policy}");
            assert_eq!(p.balance, balance, "{policy}");
            assert_eq!(p.distributed, owed3 + owed2);
            assert_eq!(
                p.balance,
                p.confirmed - p.disbursed + p.returned - p.distributed
            );
        }
    }

    #[test]
    fn relief_releases_at_the_threshold_within_funds_and_cap() {
        let params = Params {
            relief_approvals: 2,
            relief_max_per_person: 50_000,
            relief_period_days: 365,
            ..Params::default()
        };
        let mut d = derived(params);
        d.pool(
            &ctx(POOL, 0),
            m(1),
            "Relief",
            "",
            "EUR",
            ReturnPolicy::Reinvest,
            true,
        )
        .expect("a fund");
        d.contribute_known(&ctx(11, 0), m(3), &r(POOL), 80_000)
            .expect("pledge");
        d.confirm_contribution_known(&ctx(12, 0), m(2), &r(11))
            .expect("confirm");
        let blob = crate::seal::seal(
            b"rent",
            &[crate::IdentityKey::from_seed([1; 32]).member_id()],
            &crate::seal::SealEntropy {
                ephemeral: [5; 32],
                content_key: [6; 32],
                nonce: [7; 12],
            },
        )
        .expect("sealed");
        let ask = |d: &mut Derived, id: u8, amount: i64, time: i64| {
            d.relief_request_known(&ctx(id, time), m(3), &r(POOL), amount, Urgency::High, &blob)
                .map_err(|e| e.reason)
        };
        let approve = |d: &mut Derived, id: u8, who: u8, req: u8, time: i64| {
            d.relief_approve_known(&ctx(id, time), m(who), &r(req))
                .map_err(|e| e.reason)
        };
        assert_eq!(ask(&mut d, 20, 50_001, 0), Err(RejectReason::OverReliefCap));
        assert_eq!(ask(&mut d, 20, 30_000, 0), Ok(()));
        assert_eq!(approve(&mut d, 21, 2, 20, 0), Err(RejectReason::NotAllowed));
        assert_eq!(approve(&mut d, 21, 1, 20, 100), Ok(()));
        assert_eq!(
            d.state.relief_requests[&r(20)].status,
            ReliefStatus::Pending
        );
        assert_eq!(
            approve(&mut d, 22, 1, 20, 100),
            Err(RejectReason::Redundant)
        );
        assert_eq!(approve(&mut d, 22, 4, 20, 200), Ok(()));
        let q = &d.state.relief_requests[&r(20)];
        assert_eq!(
            (q.status, q.released_at),
            (ReliefStatus::Released, Some(200))
        );
        assert_eq!(d.state.pools[&r(POOL)].balance, 50_000);
        assert_eq!(
            approve(&mut d, 23, 2, 20, 200),
            Err(RejectReason::NotAllowed)
        );

        // 300.00 received; 200.01 more within a year crosses 500.00 (either side in time).
        let year = 365 * DAY_SECS;
        assert_eq!(ask(&mut d, 30, 20_001, 1_000), Ok(()));
        assert_eq!(approve(&mut d, 31, 1, 30, 1_000), Ok(()));
        assert_eq!(
            approve(&mut d, 32, 4, 30, 200 + year - 1),
            Err(RejectReason::OverReliefCap)
        );
        assert_eq!(
            approve(&mut d, 32, 4, 30, 200 - year + 1),
            Err(RejectReason::OverReliefCap)
        );
        assert_eq!(
            d.state.relief_requests[&r(30)].status,
            ReliefStatus::Pending
        );
        // A full period later it fits.
        assert_eq!(approve(&mut d, 32, 4, 30, 200 + year), Ok(()));
        // The fund now holds 299.99: a request for 300.00 has no funds.
        assert_eq!(ask(&mut d, 40, 30_000, 3 * year), Ok(()));
        assert_eq!(approve(&mut d, 41, 1, 40, 3 * year), Ok(()));
        assert_eq!(
            approve(&mut d, 42, 4, 40, 3 * year),
            Err(RejectReason::InsufficientFunds)
        );
        let totals = &d.state.relief_totals()["EUR"];
        assert_eq!(
            (
                totals.open_requests,
                totals.open_amount,
                totals.released_amount,
                totals.fund_balance
            ),
            (1, 30_000, 50_001, 29_999)
        );
        // Relief funds take no applications; investment pools take no relief requests.
        assert_eq!(
            d.apply_to_pool_known(
                &ctx(50, 0),
                m(3),
                &r(POOL),
                "Panels",
                5,
                "Repaid in 2 years"
            )
            .map_err(|e| e.reason),
            Err(RejectReason::NotAllowed)
        );
        d.pool(
            &ctx(51, 0),
            m(3),
            "Garden",
            "",
            "EUR",
            ReturnPolicy::Reinvest,
            false,
        )
        .expect("a pool");
        assert_eq!(
            d.relief_request_known(&ctx(52, 0), m(3), &r(51), 5, Urgency::Low, &blob)
                .map_err(|e| e.reason),
            Err(RejectReason::NotAllowed)
        );
        // Only treasurers open relief funds.
        assert_eq!(
            d.pool(
                &ctx(53, 0),
                m(3),
                "Mine",
                "",
                "EUR",
                ReturnPolicy::Reinvest,
                true
            )
            .map_err(|e| e.reason),
            Err(RejectReason::NotAllowed)
        );
    }
}
