//! Mutual-aid records: requests, offers, acceptance, confirmation by both parties, and
//! cancellation. Rules: docs/RULES.md, "Mutual aid".

use super::layout::{record_layout, Date, Int, Opt, Raw, Text, Word};
use crate::ids::{Day, RecordId};
use crate::terms::Urgency;

record_layout! {
    /// A mutual-aid request.
    "aid_request" => pub struct AidRequest {
        /// Category, one of the `aid_categories` parameter.
        category: String = Text(1, 32),
        /// 3..=100 characters.
        title: String = Text(3, 100),
        /// 10..=500 characters.
        description: String = Text(10, 500),
        /// Urgency.
        urgency: Urgency = Word,
        /// Optional date by which help is needed.
        needed_by: Option<Day> = Opt(Date),
        /// Optional coarse location.
        location: Option<String> = Opt(Text(1, 100)),
    }
}

record_layout! {
    /// An offer of help on a request.
    "aid_offer" => pub struct AidOffer {
        /// The request.
        request: RecordId = Raw,
        /// 10..=500 characters.
        message: String = Text(10, 500),
        /// Availability text.
        availability: String = Text(1, 200),
    }
}

record_layout! {
    /// The requester accepts one offer.
    "aid_accept" => pub struct AidAccept {
        /// The offer.
        offer: RecordId = Raw,
    }
}

record_layout! {
    /// One party confirms the aid was given.
    "aid_confirm" => pub struct AidConfirm {
        /// The request.
        request: RecordId = Raw,
        /// Optional rating 1..=5 of the other party.
        rating: Option<i64> = Opt(Int(1, 5)),
        /// Optional feedback.
        feedback: Option<String> = Opt(Text(1, 500)),
    }
}

record_layout! {
    /// The requester cancels their request.
    "aid_cancel" => pub struct AidCancel {
        /// The request.
        request: RecordId = Raw,
    }
}

impl AidRequest {
    pub(crate) fn summary(&self) -> String {
        format!("aid request {:?} ({})", self.title, self.category)
    }
}

impl AidOffer {
    pub(crate) fn summary(&self) -> String {
        format!("offered help on {}", self.request.short())
    }
}

impl AidAccept {
    pub(crate) fn summary(&self) -> String {
        format!("accepted offer {}", self.offer.short())
    }
}

impl AidConfirm {
    pub(crate) fn summary(&self) -> String {
        format!("confirmed aid {}", self.request.short())
    }
}

impl AidCancel {
    pub(crate) fn summary(&self) -> String {
        format!("cancelled aid {}", self.request.short())
    }
}

// ---- Derivation rules (docs/RULES.md) ----

use crate::envelope::{Refusal, RejectReason};
use crate::fold::{Ctx, Derived, Past, Rule};
use crate::ids::MemberId;
use crate::state::{self, *};

impl Rule for AidRequest {
    fn apply(
        &self,
        d: &mut Derived,
        _graph: Past<'_>,
        c: &Ctx<'_>,
        author: MemberId,
    ) -> Result<(), Refusal> {
        let AidRequest {
            category,
            title,
            description,
            urgency,
            needed_by,
            location,
        } = self;
        if !d.params().aid_categories.contains(category) {
            return Err(Refusal::new(
                RejectReason::UnknownCategory,
                format!(
                    "{category:?} is not one of {}",
                    d.params().aid_categories.join(", ")
                ),
            ));
        }
        d.state.aid_requests.insert(
            c.id,
            state::AidRequest {
                id: c.id,
                requester: author,
                category: category.clone(),
                title: title.clone(),
                description: description.clone(),
                urgency: *urgency,
                needed_by: *needed_by,
                location: location.clone(),
                status: AidStatus::Open,
                offers: Vec::new(),
                accepted_offer: None,
                helper: None,
                requester_confirmation: None,
                helper_confirmation: None,
            },
        );
        Ok(())
    }
}

impl Rule for AidOffer {
    fn apply(
        &self,
        d: &mut Derived,
        graph: Past<'_>,
        c: &Ctx<'_>,
        author: MemberId,
    ) -> Result<(), Refusal> {
        let AidOffer {
            request,
            message,
            availability,
        } = self;
        let req = d.aid_request(graph, c, request)?;
        if req.requester == author {
            return Err(Refusal::new(
                RejectReason::NotAllowed,
                "cannot offer help on your own request".into(),
            ));
        }
        if req.status != AidStatus::Open {
            return Err(Refusal::new(
                RejectReason::AlreadySettled,
                format!("request is {}", req.status.as_str()),
            ));
        }
        req.offers.push(state::AidOffer {
            id: c.id,
            helper: author,
            message: message.clone(),
            availability: availability.clone(),
        });
        d.fold.offers.insert(c.id, *request);
        Ok(())
    }
}

impl Rule for AidAccept {
    fn apply(
        &self,
        d: &mut Derived,
        graph: Past<'_>,
        c: &Ctx<'_>,
        author: MemberId,
    ) -> Result<(), Refusal> {
        let AidAccept { offer } = self;
        let request = *d.fold.offers.get(offer).ok_or(Refusal::new(
            RejectReason::UnknownReference,
            format!("no offer {}", offer.short()),
        ))?;
        if !d.precedes(graph, offer, c) {
            return Err(Refusal::new(
                RejectReason::UnknownReference,
                "offer is not in the record's past".into(),
            ));
        }
        let req = d.aid_request(graph, c, &request)?;
        if req.requester != author {
            return Err(Refusal::new(
                RejectReason::NotAllowed,
                "only the requester accepts an offer".into(),
            ));
        }
        if req.status != AidStatus::Open {
            return Err(Refusal::new(
                RejectReason::AlreadySettled,
                format!("request is {}", req.status.as_str()),
            ));
        }
        let helper = req.offers.iter().find(|o| o.id == *offer).map(|o| o.helper);
        req.status = AidStatus::Matched;
        req.accepted_offer = Some(*offer);
        req.helper = helper;
        Ok(())
    }
}

impl Rule for AidConfirm {
    fn apply(
        &self,
        d: &mut Derived,
        graph: Past<'_>,
        c: &Ctx<'_>,
        author: MemberId,
    ) -> Result<(), Refusal> {
        let AidConfirm {
            request,
            rating,
            feedback,
        } = self;
        let req = d.aid_request(graph, c, request)?;
        if req.status != AidStatus::Matched {
            return Err(Refusal::new(
                RejectReason::AlreadySettled,
                format!("request is {}", req.status.as_str()),
            ));
        }
        let conf = AidConfirmation {
            id: c.id,
            rating: *rating,
            feedback: feedback.clone(),
        };
        let slot = if author == req.requester {
            &mut req.requester_confirmation
        } else if Some(author) == req.helper {
            &mut req.helper_confirmation
        } else {
            return Err(Refusal::new(
                RejectReason::NotAllowed,
                "only the requester and the helper confirm".into(),
            ));
        };
        if slot.is_some() {
            return Err(Refusal::new(
                RejectReason::AlreadySettled,
                "already confirmed".into(),
            ));
        }
        *slot = Some(conf);
        if req.requester_confirmation.is_some() && req.helper_confirmation.is_some() {
            req.status = AidStatus::Completed;
            let (requester, helper) = (req.requester, req.helper);
            let rating_of_helper = req.requester_confirmation.as_ref().and_then(|c| c.rating);
            let rating_of_requester = req.helper_confirmation.as_ref().and_then(|c| c.rating);
            let id = req.id;
            if let Some(m) = d.state.members.get_mut(&requester) {
                m.aid.received += 1;
                m.aid.completed.push(id);
                m.aid.ratings.extend(rating_of_requester);
            }
            if let Some(m) = helper.and_then(|h| d.state.members.get_mut(&h)) {
                m.aid.given += 1;
                m.aid.completed.push(id);
                m.aid.ratings.extend(rating_of_helper);
            }
        }
        Ok(())
    }
}

impl Rule for AidCancel {
    fn apply(
        &self,
        d: &mut Derived,
        graph: Past<'_>,
        c: &Ctx<'_>,
        author: MemberId,
    ) -> Result<(), Refusal> {
        let AidCancel { request } = self;
        let req = d.aid_request(graph, c, request)?;
        if req.requester != author {
            return Err(Refusal::new(
                RejectReason::NotAllowed,
                "only the requester cancels".into(),
            ));
        }
        if !matches!(req.status, AidStatus::Open | AidStatus::Matched) {
            return Err(Refusal::new(
                RejectReason::AlreadySettled,
                format!("request is {}", req.status.as_str()),
            ));
        }
        req.status = AidStatus::Cancelled;
        Ok(())
    }
}

impl Derived {
    pub(crate) fn aid_request(
        &mut self,
        graph: Past<'_>,
        c: &Ctx<'_>,
        id: &RecordId,
    ) -> Result<&mut state::AidRequest, Refusal> {
        if !self.precedes(graph, id, c) {
            return Err(Refusal::new(
                RejectReason::UnknownReference,
                format!("request {} is not in the record's past", id.short()),
            ));
        }
        self.state.aid_requests.get_mut(id).ok_or(Refusal::new(
            RejectReason::UnknownReference,
            format!("{} is not a counted aid request", id.short()),
        ))
    }
}
