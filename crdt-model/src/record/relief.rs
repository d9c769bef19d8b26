//! Relief records: a member's request to a relief fund, with its reason sealed to the
//! stewards, and the stewards' approvals. Rules: docs/RULES.md, "Relief".

use super::layout::{record_layout, Blob, Codec, Field, Fields, Raw, RecordError, Word, MONEY};
use super::Urgency;
use crate::ids::RecordId;

/// A sealed reason: at most [`crate::seal::MAX_SEALED_BYTES`], with a readable header.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Sealed;

impl Codec<Vec<u8>> for Sealed {
    fn put(&self, name: &'static str, v: &Vec<u8>, out: &mut Vec<(&'static str, Field)>) {
        Blob(crate::seal::MAX_SEALED_BYTES).put(name, v, out)
    }
    fn take(&self, f: &Fields<'_>, name: &'static str) -> Result<Vec<u8>, RecordError> {
        let b = Blob(crate::seal::MAX_SEALED_BYTES).take(f, name)?;
        crate::seal::recipients(&b).map_err(|e| RecordError::Invalid {
            field: name,
            reason: format!("field {name:?}: {e}"),
        })?;
        Ok(b)
    }
}

record_layout! {
    /// A member asks a relief fund for help; they are the beneficiary.
    "relief_request" => pub struct ReliefRequest {
        /// The relief fund (a pool flagged relief).
        fund: RecordId = Raw,
        /// Minor units, 1..=[`MAX_MONEY`](crate::terms::MAX_MONEY).
        amount: i64 = MONEY,
        /// Urgency.
        urgency: Urgency = Word,
        /// The reason, sealed to the stewards ([`crate::seal`]).
        #[serde(with = "crate::ids::hex_vec")]
        reason: Vec<u8> = Sealed,
    }
}

record_layout! {
    /// A steward approves a relief request.
    "relief_approve" => pub struct ReliefApprove {
        /// The request.
        request: RecordId = Raw,
    }
}

impl ReliefRequest {
    pub(crate) fn summary(&self) -> String {
        format!(
            "asked fund {} for {} ({} urgency)",
            self.fund.short(),
            super::money(self.amount),
            self.urgency
        )
    }
}

impl ReliefApprove {
    pub(crate) fn summary(&self) -> String {
        format!("approved relief {}", self.request.short())
    }
}

// ---- Derivation rules (docs/RULES.md) ----

use super::pools::{refuse, DAY_SECS};
use super::Role;
use crate::envelope::{Refusal, RejectReason};
use crate::fold::{Ctx, Derived, Past, Rule};
use crate::ids::MemberId;
use crate::state::{self, *};

impl Rule for ReliefRequest {
    fn apply(
        &self,
        d: &mut Derived,
        graph: Past<'_>,
        c: &Ctx<'_>,
        author: MemberId,
    ) -> Result<(), Refusal> {
        let ReliefRequest {
            fund,
            amount,
            urgency,
            reason,
        } = self;
        d.relief_request(graph, c, author, fund, *amount, *urgency, reason)
    }
}

impl Rule for ReliefApprove {
    fn apply(
        &self,
        d: &mut Derived,
        graph: Past<'_>,
        c: &Ctx<'_>,
        author: MemberId,
    ) -> Result<(), Refusal> {
        let ReliefApprove { request } = self;
        d.relief_approve(graph, c, author, request)
    }
}

impl Derived {
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn relief_request(
        &mut self,
        graph: Past<'_>,
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

    pub(crate) fn relief_request_known(
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
            state::ReliefRequest {
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

    pub(crate) fn relief_approve(
        &mut self,
        graph: Past<'_>,
        c: &Ctx<'_>,
        author: MemberId,
        request: &RecordId,
    ) -> Result<(), Refusal> {
        self.require_role(&author, Role::Steward, "approve relief")?;
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
    pub(crate) fn relief_approve_known(
        &mut self,
        c: &Ctx<'_>,
        author: MemberId,
        request: &RecordId,
    ) -> Result<(), Refusal> {
        self.require_role(&author, Role::Steward, "approve relief")?;
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
