//! Refusal sentences: what the app says beside a form when the ledger refuses what it wrote.
//!
//! One place maps every [`RejectReason`] to a sentence a member can act on. The match is
//! exhaustive over the reasons this build knows (a test reads the enum's declaration in
//! `coop-model` and checks every variant has a sentence here), and the facts that make a
//! sentence concrete ("you have 10 on it already") are gathered by the caller from the
//! state the refused record was judged against.

use coop_model::{Kind, RejectReason};

/// Numbers that make a refusal concrete, where the caller knows them.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Facts {
    /// `sp_max_per_proposal`.
    pub(crate) proposal_cap: Option<i64>,
    /// SP the member has on the proposal the record names.
    pub(crate) mine_on_proposal: Option<i64>,
    /// SP the member has left to allocate.
    pub(crate) sp_available: Option<i64>,
    /// The time-bank floor, minutes.
    pub(crate) floor_minutes: Option<i64>,
    /// The kind of the refused record (some reasons read differently per kind).
    pub(crate) kind: Option<Kind>,
    /// The ledger's detail, with member ids replaced by names ("only treasurers
    /// disburse").
    pub(crate) detail: Option<String>,
}

/// The ledger's detail as a sentence of its own: capitalised, with a full stop.
fn as_sentence(detail: &str) -> String {
    let d = detail.trim().trim_end_matches('.');
    let mut c = d.chars();
    match c.next() {
        Some(first) => format!("{}{}.", first.to_uppercase(), c.as_str()),
        None => String::new(),
    }
}

/// The sentence for a refusal.
pub(crate) fn sentence(reason: RejectReason, f: &Facts) -> String {
    use RejectReason::*;
    match reason {
        Malformed
        | UnsupportedVersion
        | CompressedChange
        | TooManyOps
        | TooManyDeps
        | ActorNotSigner
        | BadSignature
        | DeletesRecord
        | OverwritesForeignRecord
        | ImmutableFact
        | ForbiddenWrite
        | BadCertificate
        | ForeignGenesis
        | BadSequence
        | WrongCommunity => format!(
            "This node could not write a valid record ({}); nothing was written. \
             Please report it: it is a bug, not something you did.",
            reason.as_str()
        ),
        Oversize => "That is too long to write as one record; shorten the text.".into(),
        InvalidRecord if f.kind == Some(Kind::Rename) => {
            "A name is 1 to 64 characters on one line, with no space at either end.".into()
        }
        InvalidRecord => {
            "Some field is out of range or empty; check the lengths and numbers.".into()
        }
        NotAMember => "You are not an admitted member yet: your vouches have not arrived.".into(),
        RemovedMember => {
            "You were removed from the community; your records no longer count.".into()
        }
        ForkedDevice | DependsOnFork => {
            "This device wrote two conflicting records; what it wrote from then on no \
             longer counts. Pair a new device (coop device request)."
                .into()
        }
        RevokedDevice => {
            "This device was revoked by its member and can write no more; pair a new device.".into()
        }
        RecoveredIdentity => {
            "This device's member was recovered to a new identity key by decision; this \
             device can write no more. Pair a new device from the recovered one."
                .into()
        }
        UnknownReference => {
            "The record this refers to is not known here yet; wait for sync and try again.".into()
        }
        NotAllowed if f.kind == Some(Kind::Rename) => {
            "Another member is already called that; choose another name.".into()
        }
        NotAllowed => match f.detail.as_deref().filter(|d| !d.trim().is_empty()) {
            Some(d) => as_sentence(d),
            None => "You may not do this to that record.".into(),
        },
        AlreadySettled => "That was already settled; nothing more to do.".into(),
        BelowFloor => match f.floor_minutes {
            Some(floor) => format!(
                "Confirming would take the receiver below the time-bank floor of {}.",
                hours(floor)
            ),
            None => "Confirming would take the receiver below the time-bank floor.".into(),
        },
        OverProposalCap => match (f.proposal_cap, f.mine_on_proposal) {
            (Some(cap), Some(mine)) => format!(
                "You can put at most {cap} SP on one proposal; you have {mine} on it already"
            ),
            (Some(cap), None) => format!("You can put at most {cap} SP on one proposal"),
            _ => "That is more SP than one proposal may hold from you".into(),
        },
        OverBudget => match f.sp_available {
            Some(left) => format!("You have only {left} SP left to allocate"),
            None => "That is more SP than you have left".into(),
        },
        ProposalClosed => "That proposal is closed; its SP went back to its supporters.".into(),
        UnknownCategory => "That category is not one of the community's aid categories.".into(),
        Redundant if f.kind == Some(Kind::Rename) => "That is your name already.".into(),
        Redundant => "Already done: that changes nothing.".into(),
        WindowClosed => "The voting window has closed.".into(),
        WindowOpen => "The voting window is still open; tally it after it closes.".into(),
        AlreadyVoted => "You have voted on this decision already.".into(),
        InvalidDecision => match f.detail.as_deref().filter(|d| !d.trim().is_empty()) {
            Some(d) => format!("That decision could not take effect as written: {d}."),
            None => "That decision could not take effect as written.".into(),
        },
        DeadlinePassed => "The deadline has passed.".into(),
        RoundNotOpen => "That purchase round is not open now.".into(),
        AlreadyCommitted => "You have committed to this round already.".into(),
        NotFunded => "The round is not funded yet (quantity or participants short).".into(),
        NoWinningBid => "No bid covers the committed quantity yet.".into(),
        NotOrdered => "The round has not been ordered yet.".into(),
        NotDelivered => "The round has not been delivered yet.".into(),
        NotAParticipant => "That member has no commitment in this round.".into(),
        NotAllocated => "No decision has allocated money to that application.".into(),
        OverAllocation => "That is more than is left of the application's allocation.".into(),
        InsufficientFunds => "The pool does not hold that much.".into(),
        OverReliefCap => "That is more relief than one person may receive in the period.".into(),
        // `RejectReason` is non-exhaustive across crates; a reason added to coop-model
        // fails the test below until it has its own sentence here.
        _ => format!("Refused ({}); nothing was written.", reason.as_str()),
    }
}

/// Minutes as "3 h 20 min".
pub(crate) fn hours(minutes: i64) -> String {
    let sign = if minutes < 0 { "−" } else { "" };
    let m = minutes.unsigned_abs();
    match (m / 60, m % 60) {
        (0, r) => format!("{sign}{r} min"),
        (h, 0) => format!("{sign}{h} h"),
        (h, r) => format!("{sign}{h} h {r} min"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every variant declared in coop-model's `RejectReason`, read from its source.
    fn declared() -> Vec<RejectReason> {
        let src = include_str!("../../../crdt-model/src/envelope.rs");
        let start = src.find("pub enum RejectReason {").expect("the enum");
        let body = &src[start..];
        let body = &body[..body.find("\n}").expect("its end")];
        body.lines()
            .skip(1)
            .map(str::trim)
            .filter(|l| !l.is_empty() && !l.starts_with("//") && !l.starts_with('#'))
            .map(|l| {
                let name = l.trim_end_matches(',');
                let snake: String =
                    name.chars()
                        .enumerate()
                        .fold(String::new(), |mut s, (i, c)| {
                            if c.is_uppercase() {
                                if i > 0 {
                                    s.push('_');
                                }
                                s.extend(c.to_lowercase());
                            } else {
                                s.push(c);
                            }
                            s
                        });
                serde_json::from_value(serde_json::Value::String(snake.clone()))
                    .unwrap_or_else(|e| panic!("{name} ({snake}) is not a reason: {e}"))
            })
            .collect()
    }

    #[test]
    fn every_reason_has_its_own_sentence() {
        let reasons = declared();
        assert!(reasons.len() >= 45, "read {} reasons", reasons.len());
        for r in reasons {
            let s = sentence(r, &Facts::default());
            assert!(!s.is_empty());
            assert!(
                !s.starts_with("Refused ("),
                "{} has no sentence of its own",
                r.as_str()
            );
        }
    }

    #[test]
    fn the_proposal_cap_sentence_names_the_numbers() {
        let f = Facts {
            proposal_cap: Some(10),
            mine_on_proposal: Some(10),
            ..Facts::default()
        };
        assert_eq!(
            sentence(RejectReason::OverProposalCap, &f),
            "You can put at most 10 SP on one proposal; you have 10 on it already"
        );
        assert_eq!(hours(90), "1 h 30 min");
        assert_eq!(hours(-60), "−1 h");
    }

    #[test]
    fn a_refusal_reads_per_kind_and_with_the_ledger_detail() {
        let rename = Facts {
            kind: Some(Kind::Rename),
            ..Facts::default()
        };
        assert_eq!(
            sentence(RejectReason::NotAllowed, &rename),
            "Another member is already called that; choose another name."
        );
        assert_eq!(
            sentence(RejectReason::Redundant, &rename),
            "That is your name already."
        );
        let disburse = Facts {
            kind: Some(Kind::Disbursement),
            detail: Some("only treasurers disburse".into()),
            ..Facts::default()
        };
        assert_eq!(
            sentence(RejectReason::NotAllowed, &disburse),
            "Only treasurers disburse."
        );
        assert_eq!(
            sentence(RejectReason::NotAllowed, &Facts::default()),
            "You may not do this to that record."
        );
    }
}
