//! Pool records: investment pools and relief funds, contributions and their confirmation,
//! applications, disbursements and returns. Rules: docs/RULES.md, "Pools".

use super::layout::{record_layout, Currency, Flag, Raw, Text, Word, MONEY};
use crate::ids::RecordId;
use crate::terms::ReturnPolicy;

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
        /// Minor units, 1..=[`MAX_MONEY`](crate::terms::MAX_MONEY).
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
        /// Minor units asked for, 1..=[`MAX_MONEY`](crate::terms::MAX_MONEY).
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
        /// Minor units, 1..=[`MAX_MONEY`](crate::terms::MAX_MONEY).
        amount: i64 = MONEY,
    }
}

record_layout! {
    /// A treasurer records money coming back: from an application's project, or into a pool.
    "return" => pub struct Return {
        /// The application or the pool.
        from: RecordId = Raw,
        /// Minor units, 1..=[`MAX_MONEY`](crate::terms::MAX_MONEY).
        amount: i64 = MONEY,
    }
}

impl Pool {
    pub(crate) fn summary(&self) -> String {
        let what = if self.relief { "relief fund" } else { "pool" };
        format!(
            "{what} {:?} ({}, {})",
            self.name, self.currency, self.policy
        )
    }
}

impl Contribution {
    pub(crate) fn summary(&self) -> String {
        format!(
            "pledged {} to pool {}",
            super::money(self.amount),
            self.pool.short()
        )
    }
}

impl ContributionConfirm {
    pub(crate) fn summary(&self) -> String {
        format!("confirmed contribution {}", self.contribution.short())
    }
}

impl Application {
    pub(crate) fn summary(&self) -> String {
        format!(
            "applied for {} ({:?})",
            super::money(self.amount),
            self.title
        )
    }
}

impl Disbursement {
    pub(crate) fn summary(&self) -> String {
        format!(
            "disbursed {} to {}",
            super::money(self.amount),
            self.application.short()
        )
    }
}

impl Return {
    pub(crate) fn summary(&self) -> String {
        format!(
            "returned {} from {}",
            super::money(self.amount),
            self.from.short()
        )
    }
}

// ---- Derivation rules (docs/RULES.md) ----

use super::Role;
use crate::envelope::{Refusal, RejectReason};
use crate::fold::{Ctx, Derived, Past, Rule};
use crate::ids::MemberId;
use crate::state::{self, *};
use std::collections::BTreeMap;

impl Rule for Pool {
    fn apply(
        &self,
        d: &mut Derived,
        _graph: Past<'_>,
        c: &Ctx<'_>,
        author: MemberId,
    ) -> Result<(), Refusal> {
        let Pool {
            name,
            description,
            currency,
            policy,
            relief,
        } = self;
        d.pool(c, author, name, description, currency, *policy, *relief)
    }
}

impl Rule for Contribution {
    fn apply(
        &self,
        d: &mut Derived,
        graph: Past<'_>,
        c: &Ctx<'_>,
        author: MemberId,
    ) -> Result<(), Refusal> {
        let Contribution { pool, amount } = self;
        d.contribute(graph, c, author, pool, *amount)
    }
}

impl Rule for ContributionConfirm {
    fn apply(
        &self,
        d: &mut Derived,
        graph: Past<'_>,
        c: &Ctx<'_>,
        author: MemberId,
    ) -> Result<(), Refusal> {
        let ContributionConfirm { contribution } = self;
        d.confirm_contribution(graph, c, author, contribution)
    }
}

impl Rule for Application {
    fn apply(
        &self,
        d: &mut Derived,
        graph: Past<'_>,
        c: &Ctx<'_>,
        author: MemberId,
    ) -> Result<(), Refusal> {
        let Application {
            pool,
            title,
            amount,
            terms,
        } = self;
        d.apply_to_pool(graph, c, author, pool, title, *amount, terms)
    }
}

impl Rule for Disbursement {
    fn apply(
        &self,
        d: &mut Derived,
        graph: Past<'_>,
        c: &Ctx<'_>,
        author: MemberId,
    ) -> Result<(), Refusal> {
        let Disbursement {
            application,
            amount,
        } = self;
        d.disburse(graph, c, author, application, *amount)
    }
}

impl Rule for Return {
    fn apply(
        &self,
        d: &mut Derived,
        graph: Past<'_>,
        c: &Ctx<'_>,
        author: MemberId,
    ) -> Result<(), Refusal> {
        let Return { from, amount } = self;
        d.pool_return(graph, c, author, from, *amount)
    }
}

/// Seconds in a day, for the relief period.
pub(crate) const DAY_SECS: i64 = 86_400;

pub(crate) fn refuse<T>(reason: RejectReason, detail: impl Into<String>) -> Result<T, Refusal> {
    Err(Refusal::new(reason, detail.into()))
}

impl Derived {
    pub(crate) fn must_precede(
        &self,
        graph: Past<'_>,
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

    pub(crate) fn counted_pool(&self, id: &RecordId) -> Result<&state::Pool, Refusal> {
        self.state.pools.get(id).ok_or(Refusal::new(
            RejectReason::UnknownReference,
            format!("{} is not a counted pool", id.short()),
        ))
    }

    pub(crate) fn require_role(
        &self,
        author: &MemberId,
        role: Role,
        what: &str,
    ) -> Result<(), Refusal> {
        if self.has_role(author, role) {
            Ok(())
        } else {
            refuse(RejectReason::NotAllowed, format!("only {role}s {what}"))
        }
    }

    /// A new pool; a relief fund only by a treasurer (it holds money for urgent needs).
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn pool(
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
            self.require_role(&author, Role::Treasurer, "open relief funds")?;
        }
        self.state.pools.insert(
            c.id,
            state::Pool {
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

    pub(crate) fn contribute(
        &mut self,
        graph: Past<'_>,
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
            state::Contribution {
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

    pub(crate) fn confirm_contribution(
        &mut self,
        graph: Past<'_>,
        c: &Ctx<'_>,
        author: MemberId,
        contribution: &RecordId,
    ) -> Result<(), Refusal> {
        self.require_role(&author, Role::Treasurer, "confirm contributions")?;
        self.must_precede(graph, c, contribution, "contribution")?;
        self.confirm_contribution_known(c, author, contribution)
    }

    fn confirm_contribution_known(
        &mut self,
        c: &Ctx<'_>,
        author: MemberId,
        contribution: &RecordId,
    ) -> Result<(), Refusal> {
        self.require_role(&author, Role::Treasurer, "confirm contributions")?;
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
    pub(crate) fn apply_to_pool(
        &mut self,
        graph: Past<'_>,
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
            state::Application {
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
    pub(crate) fn check_pool_allocation(&self, application: &RecordId) -> Result<(), Refusal> {
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
    pub(crate) fn apply_pool_allocation(
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

    pub(crate) fn disburse(
        &mut self,
        graph: Past<'_>,
        c: &Ctx<'_>,
        author: MemberId,
        application: &RecordId,
        amount: i64,
    ) -> Result<(), Refusal> {
        self.require_role(&author, Role::Treasurer, "disburse")?;
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
        self.require_role(&author, Role::Treasurer, "disburse")?;
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

    pub(crate) fn pool_return(
        &mut self,
        graph: Past<'_>,
        c: &Ctx<'_>,
        author: MemberId,
        from: &RecordId,
        amount: i64,
    ) -> Result<(), Refusal> {
        self.require_role(&author, Role::Treasurer, "record returns")?;
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
        self.require_role(&author, Role::Treasurer, "record returns")?;
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
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fold::Fold;
    use crate::ids::{CommunityId, DeviceId};
    use crate::params::Params;
    use crate::record::Urgency;

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
            (1, &[Role::Treasurer, Role::Steward][..]),
            (2, &[Role::Treasurer][..]),
            (3, &[][..]),
            (4, &[Role::Steward][..]),
        ] {
            state.members.insert(
                m(n),
                Member {
                    id: m(n),
                    display_name: format!("m{n}"),
                    status: MemberStatus::Admitted,
                    roles: roles.to_vec(),
                    devices: BTreeMap::new(),
                    vouched_by: Default::default(),
                    time: Default::default(),
                    sp: Default::default(),
                    aid: Default::default(),
                    visibility: Default::default(),
                    recovered: None,
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
            clock: crate::causal::Clock::Dense(&[]),
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
