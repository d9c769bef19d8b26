//! Support Point records: proposals, their closing, and allocations. Rules: docs/RULES.md,
//! "Support Points".

use super::layout::{record_layout, Int, Raw, Text, Word};
use crate::ids::{Points, RecordId};
use crate::terms::Outcome;

record_layout! {
    /// A proposal members can support with SP.
    "proposal" => pub struct Proposal {
        /// Title.
        title: String = Text(3, 100),
        /// Description.
        description: String = Text(0, 2000),
    }
}

record_layout! {
    /// The proposer closes their proposal; SP locked on it return.
    "close" => pub struct Close {
        /// The proposal.
        proposal: RecordId = Raw,
        /// How it ended.
        outcome: Outcome = Word,
    }
}

record_layout! {
    /// Support Points locked on a proposal.
    "allocate" => pub struct Allocate {
        /// The proposal.
        proposal: RecordId = Raw,
        /// How many points, 1..=1,000,000.
        points: Points = Int(1, 1_000_000),
    }
}

impl Proposal {
    pub(crate) fn summary(&self) -> String {
        format!("proposal {:?}", self.title)
    }
}

impl Close {
    pub(crate) fn summary(&self) -> String {
        format!("closed {} as {}", self.proposal.short(), self.outcome)
    }
}

impl Allocate {
    pub(crate) fn summary(&self) -> String {
        format!("{} SP to {}", self.points.0, self.proposal.short())
    }
}

// ---- Derivation rules (docs/RULES.md) ----

use crate::envelope::{Refusal, RejectReason};
use crate::fold::{Ctx, Derived, Past, Rule};
use crate::ids::MemberId;
use crate::state::{self, *};

impl Rule for Proposal {
    fn apply(
        &self,
        d: &mut Derived,
        _graph: Past<'_>,
        c: &Ctx<'_>,
        author: MemberId,
    ) -> Result<(), Refusal> {
        let Proposal { title, description } = self;
        d.state.proposals.insert(
            c.id,
            state::Proposal {
                id: c.id,
                proposer: author,
                title: title.clone(),
                description: description.clone(),
                status: ProposalStatus::Open,
                active_points: Points(0),
                peak_points: Points(0),
                supporters: 0,
                prioritized: false,
                allocations: Vec::new(),
            },
        );
        Ok(())
    }
}

impl Rule for Close {
    fn apply(
        &self,
        d: &mut Derived,
        graph: Past<'_>,
        c: &Ctx<'_>,
        author: MemberId,
    ) -> Result<(), Refusal> {
        let Close { proposal, outcome } = self;
        d.close(graph, c, author, proposal, *outcome)
    }
}

impl Rule for Allocate {
    fn apply(
        &self,
        d: &mut Derived,
        graph: Past<'_>,
        c: &Ctx<'_>,
        author: MemberId,
    ) -> Result<(), Refusal> {
        let Allocate { proposal, points } = self;
        d.allocate(graph, c, author, proposal, *points)
    }
}

impl Derived {
    pub(crate) fn proposal(
        &mut self,
        graph: Past<'_>,
        c: &Ctx<'_>,
        id: &RecordId,
    ) -> Result<&mut state::Proposal, Refusal> {
        if !self.precedes(graph, id, c) {
            return Err(Refusal::new(
                RejectReason::UnknownReference,
                format!("proposal {} is not in the record's past", id.short()),
            ));
        }
        self.state.proposals.get_mut(id).ok_or(Refusal::new(
            RejectReason::UnknownReference,
            format!("{} is not a counted proposal", id.short()),
        ))
    }

    pub(crate) fn close(
        &mut self,
        graph: Past<'_>,
        c: &Ctx<'_>,
        author: MemberId,
        id: &RecordId,
        outcome: Outcome,
    ) -> Result<(), Refusal> {
        let p = self.proposal(graph, c, id)?;
        if p.proposer != author {
            return Err(Refusal::new(
                RejectReason::NotAllowed,
                "only the proposer closes a proposal".into(),
            ));
        }
        if p.status != ProposalStatus::Open {
            return Err(Refusal::new(
                RejectReason::AlreadySettled,
                "proposal already closed".into(),
            ));
        }
        p.status = ProposalStatus::Closed(outcome);
        p.active_points = Points(0);
        p.prioritized = false;
        let released: Vec<(MemberId, Points)> =
            p.allocations.iter().map(|a| (a.member, a.points)).collect();
        for (m, pts) in released {
            self.fold.locked.remove(&(m, *id));
            if let Some(mem) = self.state.members.get_mut(&m) {
                mem.sp.allocated -= pts;
                mem.sp.available += pts;
            }
        }
        Ok(())
    }

    pub(crate) fn allocate(
        &mut self,
        graph: Past<'_>,
        c: &Ctx<'_>,
        author: MemberId,
        id: &RecordId,
        points: Points,
    ) -> Result<(), Refusal> {
        let (max, threshold) = (
            Points(self.params().sp_max_per_proposal),
            Points(self.params().sp_priority_threshold),
        );
        let (allocated, budget) = self
            .state
            .members
            .get(&author)
            .map_or((Points(0), Points(0)), |m| (m.sp.allocated, m.sp.budget));
        let locked = self
            .fold
            .locked
            .get(&(author, *id))
            .copied()
            .unwrap_or_default();
        let p = self.proposal(graph, c, id)?;
        if p.status != ProposalStatus::Open {
            return Err(Refusal::new(
                RejectReason::ProposalClosed,
                "proposal is closed".into(),
            ));
        }
        if locked + points > max {
            return Err(Refusal::new(
                RejectReason::OverProposalCap,
                format!("{} SP on one proposal, cap is {max}", locked + points),
            ));
        }
        if allocated + points > budget {
            return Err(Refusal::new(
                RejectReason::OverBudget,
                format!("{} SP allocated, budget is {budget}", allocated + points),
            ));
        }
        if locked == Points(0) {
            p.supporters += 1;
        }
        p.active_points += points;
        p.peak_points = p.peak_points.max(p.active_points);
        p.prioritized = p.active_points >= threshold;
        p.allocations.push(Allocation {
            id: c.id,
            member: author,
            points,
        });
        self.fold.locked.insert((author, *id), locked + points);
        if let Some(m) = self.state.members.get_mut(&author) {
            m.sp.allocated += points;
            m.sp.available -= points;
        }
        Ok(())
    }
}
