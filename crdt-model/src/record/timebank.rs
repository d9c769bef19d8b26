//! Time-bank records: hour attestations and their confirmation or decline. Rules:
//! docs/RULES.md, "Time bank".

use super::layout::{record_layout, Date, Int, Raw, Text};
use crate::ids::{Day, MemberId, Minutes, RecordId};

record_layout! {
    /// An hour attestation, written by the provider.
    "attest" => pub struct Attest {
        /// Who received the service.
        to: MemberId = Raw,
        /// How long, 1..=1440 minutes.
        minutes: Minutes = Int(1, 1440),
        /// What was done.
        service: String = Text(1, 200),
        /// Category (free text, 1..=32 chars).
        category: String = Text(1, 32),
        /// The day of service.
        date: Day = Date,
    }
}

record_layout! {
    /// The receiver confirms an attestation.
    "confirm" => pub struct Confirm {
        /// The attestation.
        attestation: RecordId = Raw,
    }
}

record_layout! {
    /// The receiver declines an attestation.
    "decline" => pub struct Decline {
        /// The attestation.
        attestation: RecordId = Raw,
    }
}

impl Attest {
    pub(crate) fn summary(&self) -> String {
        format!(
            "{} min of {:?} to {} on {}",
            self.minutes.0,
            self.service,
            self.to.short(),
            self.date
        )
    }
}

impl Confirm {
    pub(crate) fn summary(&self) -> String {
        format!("confirmed {}", self.attestation.short())
    }
}

impl Decline {
    pub(crate) fn summary(&self) -> String {
        format!("declined {}", self.attestation.short())
    }
}

// ---- Derivation rules (docs/RULES.md) ----

use crate::envelope::{Refusal, RejectReason};
use crate::fold::{Ctx, Derived, Past, Rule};
use crate::state::*;

impl Rule for Attest {
    fn apply(
        &self,
        d: &mut Derived,
        _graph: Past<'_>,
        c: &Ctx<'_>,
        author: MemberId,
    ) -> Result<(), Refusal> {
        let Attest {
            to,
            minutes,
            service,
            category,
            date,
        } = self;
        if *to == author {
            return Err(Refusal::new(
                RejectReason::NotAllowed,
                "cannot attest hours to yourself".into(),
            ));
        }
        if !d.state.is_admitted(to) {
            return Err(Refusal::new(
                RejectReason::UnknownReference,
                format!("receiver {} is not a member", to.short()),
            ));
        }
        d.state.attestations.insert(
            c.id,
            Attestation {
                id: c.id,
                provider: author,
                receiver: *to,
                minutes: *minutes,
                service: service.clone(),
                category: category.clone(),
                date: *date,
                status: AttestationStatus::Pending,
                settled_by: None,
            },
        );
        Ok(())
    }
}

impl Rule for Confirm {
    fn apply(
        &self,
        d: &mut Derived,
        graph: Past<'_>,
        c: &Ctx<'_>,
        author: MemberId,
    ) -> Result<(), Refusal> {
        d.settle(graph, c, author, &self.attestation, true)
    }
}

impl Rule for Decline {
    fn apply(
        &self,
        d: &mut Derived,
        graph: Past<'_>,
        c: &Ctx<'_>,
        author: MemberId,
    ) -> Result<(), Refusal> {
        d.settle(graph, c, author, &self.attestation, false)
    }
}

impl Derived {
    pub(crate) fn settle(
        &mut self,
        graph: Past<'_>,
        c: &Ctx<'_>,
        author: MemberId,
        attestation: &RecordId,
        confirm: bool,
    ) -> Result<(), Refusal> {
        if !self.precedes(graph, attestation, c) {
            return Err(Refusal::new(
                RejectReason::UnknownReference,
                format!(
                    "attestation {} is not in the record's past",
                    attestation.short()
                ),
            ));
        }
        let floor = self.params().timebank_floor_minutes;
        let a = self
            .state
            .attestations
            .get(attestation)
            .ok_or(Refusal::new(
                RejectReason::UnknownReference,
                format!("{} is not a counted attestation", attestation.short()),
            ))?;
        if a.provider == author {
            return Err(Refusal::new(
                RejectReason::NotAllowed,
                "cannot confirm or decline your own attestation".into(),
            ));
        }
        if a.receiver != author {
            return Err(Refusal::new(
                RejectReason::NotAllowed,
                "only the receiver confirms or declines".into(),
            ));
        }
        if a.status != AttestationStatus::Pending {
            return Err(Refusal::new(
                RejectReason::AlreadySettled,
                "attestation already settled".into(),
            ));
        }
        let (provider, receiver, minutes) = (a.provider, a.receiver, a.minutes);
        if confirm {
            let balance = self
                .state
                .members
                .get(&receiver)
                .map_or(Minutes(0), |m| m.time.balance);
            if balance - minutes < Minutes(floor) {
                return Err(Refusal::new(
                    RejectReason::BelowFloor,
                    format!(
                        "balance would be {} min, floor is {floor} min",
                        balance - minutes
                    ),
                ));
            }
            if let Some(m) = self.state.members.get_mut(&provider) {
                m.time.provided += minutes;
                m.time.balance += minutes;
            }
            if let Some(m) = self.state.members.get_mut(&receiver) {
                m.time.received += minutes;
                m.time.balance -= minutes;
            }
        }
        if let Some(a) = self.state.attestations.get_mut(attestation) {
            a.status = if confirm {
                AttestationStatus::Confirmed
            } else {
                AttestationStatus::Declined
            };
            a.settled_by = Some(c.id);
        }
        Ok(())
    }
}
