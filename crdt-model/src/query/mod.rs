//! Read queries over a derived [`State`]: what a member's node answers, as typed values.
//!
//! One query layer for every reader: the node's local API answers with these functions, and
//! the `coop` command answers with the same functions over the store when no node runs, so a
//! command gives the same answer either way. They are pure functions of a state, the member
//! asking (`viewer`, for visibility, docs/RULES.md R10) and, where an answer depends on time, `now`.
//!
//! The answer types are serialization edges (JSON over the API): every map of the state is
//! handed out as a list, so no answer depends on how a format encodes map keys, and none is
//! an internally tagged enum (serde buffers those, and buffered JSON map keys stay strings).

mod views;

use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::envelope::RejectReason;
use crate::ids::{Day, DeviceId, MemberId, RecordId};
use crate::metrics::Metrics;
use crate::params::Params;
use crate::record::{Kind, Role, Visibility};
use crate::state::{
    AidHistory, AidRequest, Application, Attestation, Contribution, Decision, EntryStatus,
    LogEntry, MemberStatus, ParamChange, Pool, Proposal, Purchase, ReliefRequest, Report,
    SpAccount, State, TimeAccount,
};

pub use views::*;

/// The most ledger rows one page holds.
pub const MAX_PAGE: usize = 500;
/// Ledger rows per page when the asker names no limit.
pub const DEFAULT_PAGE: usize = 50;

/// One member as listed: who they are and, where visibility allows, their accounts.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MemberRow {
    /// Identity.
    pub id: MemberId,
    /// Display name.
    pub display_name: String,
    /// Admission status.
    pub status: MemberStatus,
    /// Roles held.
    pub roles: Vec<Role>,
    /// Their visibility setting.
    pub visibility: Visibility,
    /// Who vouched for them.
    pub vouched_by: Vec<MemberId>,
    /// How many devices they certified.
    pub devices: usize,
    /// Time account; `None` where their visibility keeps it from the viewer.
    pub time: Option<TimeAccount>,
    /// Support Points; `None` where their visibility keeps it from the viewer.
    pub sp: Option<SpAccount>,
}

/// `members`: every member, in id order.
pub fn members(state: &State, viewer: Option<&MemberId>) -> Vec<MemberRow> {
    state
        .members
        .values()
        .map(|m| {
            let sees = state.can_see(viewer, &m.id);
            MemberRow {
                id: m.id,
                display_name: m.display_name.clone(),
                status: m.status,
                roles: m.roles.clone(),
                visibility: m.visibility,
                vouched_by: m.vouched_by.iter().copied().collect(),
                devices: m.devices.len(),
                time: sees.then(|| m.time.clone()),
                sp: sees.then(|| m.sp.clone()),
            }
        })
        .collect()
}

/// One member's profile: the row plus their visible history.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Profile {
    /// The member as listed.
    pub member: MemberRow,
    /// Mutual-aid history; `None` where visibility withholds it. Its `completed` requests
    /// and `ratings` are the newest [`PROFILE_HOURS`] (see the totals below).
    pub aid: Option<AidHistory>,
    /// How many completed requests they took part in, in all (0 where withheld).
    #[serde(default)]
    pub aid_completed_total: usize,
    /// How many ratings they received, in all (0 where withheld).
    #[serde(default)]
    pub aid_ratings_total: usize,
    /// Their newest [`PROFILE_HOURS`] hour attestations (given and received), oldest first
    /// by day of service; empty where visibility withholds them. The whole list is
    /// `members/{id}/hours`.
    pub hours: Vec<Attestation>,
    /// How many hour attestations they have in all (0 where withheld).
    #[serde(default)]
    pub hours_total: usize,
    /// When the record that admitted them or that they joined with was written (Unix s).
    pub joined: Option<i64>,
    /// Whether their history is withheld from the viewer.
    pub withheld: bool,
}

/// `members/{id}`: one member's profile, `None` for an unknown member.
pub fn profile(state: &State, viewer: Option<&MemberId>, member: &MemberId) -> Option<Profile> {
    let row = members_one(state, viewer, member)?;
    let sees = state.can_see(viewer, member);
    let (hours, hours_total) = if sees {
        recent_hours(state, member, PROFILE_HOURS)
    } else {
        (Vec::new(), 0)
    };
    let aid = &state.members[member].aid;
    Some(Profile {
        aid: sees.then(|| AidHistory {
            given: aid.given,
            received: aid.received,
            ratings: newest(&aid.ratings, PROFILE_HOURS),
            completed: newest(&aid.completed, PROFILE_HOURS),
        }),
        aid_completed_total: if sees { aid.completed.len() } else { 0 },
        aid_ratings_total: if sees { aid.ratings.len() } else { 0 },
        hours,
        hours_total,
        joined: joined(state, member),
        withheld: !sees,
        member: row,
    })
}

/// The last `n` of `items`.
fn newest<T: Clone>(items: &[T], n: usize) -> Vec<T> {
    items[items.len().saturating_sub(n)..].to_vec()
}

/// When `member` joined: the time of their counted join request (or the genesis). Their
/// first device's certificate is that record, so it is looked up by the certificate's log
/// position rather than by scanning the log.
fn joined(state: &State, member: &MemberId) -> Option<i64> {
    let is_join = |e: &LogEntry| {
        e.member.as_ref() == Some(member)
            && e.status == EntryStatus::Counted
            && matches!(e.kind, Kind::Join | Kind::Genesis)
    };
    let ix = state.indexes();
    let mut first: Option<&LogEntry> = None;
    for kind in [Kind::Genesis, Kind::Join] {
        // Join requests are few beside the rest of the ledger; the earliest one of the
        // member's that counted is theirs.
        if let Some(e) = ix
            .positions_of(kind)
            .iter()
            .filter_map(|&p| state.log.get(p))
            .find(|e| is_join(e))
        {
            if first.is_none_or(|f| e.position < f.position) {
                first = Some(e);
            }
        }
    }
    first.map(|e| e.time)
}

fn members_one(state: &State, viewer: Option<&MemberId>, member: &MemberId) -> Option<MemberRow> {
    let m = state.members.get(member)?;
    let sees = state.can_see(viewer, member);
    Some(MemberRow {
        id: m.id,
        display_name: m.display_name.clone(),
        status: m.status,
        roles: m.roles.clone(),
        visibility: m.visibility,
        vouched_by: m.vouched_by.iter().copied().collect(),
        devices: m.devices.len(),
        time: sees.then(|| m.time.clone()),
        sp: sees.then(|| m.sp.clone()),
    })
}

/// A member's balance at `now`.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BalanceAnswer {
    /// The member.
    pub member: MemberId,
    /// Their display name.
    pub display_name: String,
    /// The balance; `None` where their visibility keeps it from the viewer.
    pub balance: Option<crate::state::Balance>,
    /// Support Points; `None` where withheld.
    pub sp: Option<SpAccount>,
}

/// `members/{id}/balance`: `None` for an unknown member.
pub fn balance(
    state: &State,
    viewer: Option<&MemberId>,
    member: &MemberId,
    now: i64,
) -> Option<BalanceAnswer> {
    let m = state.members.get(member)?;
    let sees = state.can_see(viewer, member);
    Some(BalanceAnswer {
        member: *member,
        display_name: m.display_name.clone(),
        balance: if sees {
            state.balance(member, now)
        } else {
            None
        },
        sp: sees.then(|| m.sp.clone()),
    })
}

/// `members/{id}/hours`: a member's attestations, given and received, with their status,
/// oldest first by day of service (then id) (the caller checks visibility; see [`profile`]).
pub fn hours(state: &State, member: &MemberId) -> Vec<Attestation> {
    state
        .indexes()
        .hours_of(member)
        .iter()
        .filter_map(|(_, id)| state.attestations.get(id))
        .cloned()
        .collect()
}

/// One page of a member's attestations: `members/{id}/hours?limit=&before=`.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HoursPage {
    /// The page, oldest first by day of service (then id): the newest `limit` attestations
    /// before the cursor.
    pub attestations: Vec<Attestation>,
    /// The cursor of the next (older) page, when there is one: the oldest attestation on
    /// this page. Pass it as `before`.
    pub next: Option<RecordId>,
    /// How many attestations the member has in all.
    pub total: usize,
}

/// Why an hours page cannot be listed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PageError {
    /// The cursor names no attestation of this member.
    #[error("the cursor {0} names no attestation of this member")]
    UnknownCursor(String),
}

/// `members/{id}/hours?limit=&before=`: the newest `limit` (default [`DEFAULT_PAGE`], at
/// most [`MAX_PAGE`]) of a member's attestations before the cursor `before` (an
/// attestation's id, from the previous page's `next`), oldest first. It costs the page, not
/// the member's history: the index is ordered by (day of service, id).
pub fn hours_page(
    state: &State,
    member: &MemberId,
    limit: Option<usize>,
    before: Option<&RecordId>,
) -> Result<HoursPage, PageError> {
    let index = state.indexes().hours_of(member);
    let limit = limit.unwrap_or(DEFAULT_PAGE).clamp(1, MAX_PAGE);
    let mut older: Vec<&(Day, RecordId)> = match before {
        None => index.iter().rev().take(limit + 1).collect(),
        Some(id) => {
            let day = state
                .attestations
                .get(id)
                .map(|a| a.date)
                .filter(|d| index.contains(&(*d, *id)))
                .ok_or_else(|| PageError::UnknownCursor(id.short()))?;
            index.range(..(day, *id)).rev().take(limit + 1).collect()
        }
    };
    let more = older.len() > limit;
    older.truncate(limit);
    older.reverse();
    let attestations: Vec<Attestation> = older
        .iter()
        .filter_map(|(_, id)| state.attestations.get(id))
        .cloned()
        .collect();
    Ok(HoursPage {
        next: if more {
            older.first().map(|(_, id)| *id)
        } else {
            None
        },
        attestations,
        total: index.len(),
    })
}

/// How many of a member's attestations a [`Profile`] lists (the newest), and how many of
/// their completed aid requests and ratings.
pub const PROFILE_HOURS: usize = 20;

/// A member's newest `limit` attestations, oldest first by day of service, and how many
/// they have in all.
pub fn recent_hours(state: &State, member: &MemberId, limit: usize) -> (Vec<Attestation>, usize) {
    let all = state.indexes().hours_of(member);
    let mut newest: Vec<Attestation> = all
        .iter()
        .rev()
        .take(limit)
        .filter_map(|(_, id)| state.attestations.get(id))
        .cloned()
        .collect();
    newest.reverse();
    (newest, all.len())
}

/// `proposals`: Support Point proposals in id order.
pub fn proposals(state: &State) -> Vec<Proposal> {
    state.proposals.values().cloned().collect()
}

/// `aid`: mutual-aid requests with their offers.
pub fn aid(state: &State) -> Vec<AidRequest> {
    state.aid_requests.values().cloned().collect()
}

/// `decisions`: governance decisions.
pub fn decisions(state: &State) -> Vec<Decision> {
    state.decisions.values().cloned().collect()
}

/// A record moderators hid and the moderation record that hid it.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Hidden {
    /// The hidden record.
    pub record: RecordId,
    /// The moderation record.
    pub by: RecordId,
}

/// `moderation`: reports and hidden records.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Moderation {
    /// Abuse reports, in order.
    pub reports: Vec<Report>,
    /// Hidden records.
    pub hidden: Vec<Hidden>,
}

/// `moderation`.
pub fn moderation(state: &State) -> Moderation {
    Moderation {
        reports: state.reports.clone(),
        hidden: state
            .hidden
            .iter()
            .map(|(record, by)| Hidden {
                record: *record,
                by: *by,
            })
            .collect(),
    }
}

/// One collective purchase with its rounds as a list.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PurchaseAnswer {
    /// The purchase (its `rounds` map emptied: see `rounds`).
    pub purchase: Purchase,
    /// Its rounds, by number.
    pub rounds: Vec<Round>,
}

/// A numbered round of a purchase.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Round {
    /// Round number (0 for the first).
    pub number: u32,
    /// The round.
    pub round: crate::state::PurchaseRound,
}

/// `purchases`: collective purchases, rounds listed.
pub fn purchases(state: &State) -> Vec<PurchaseAnswer> {
    state
        .purchases
        .values()
        .map(|p| {
            let mut purchase = p.clone();
            let rounds = std::mem::take(&mut purchase.rounds)
                .into_iter()
                .map(|(number, round)| Round { number, round })
                .collect();
            PurchaseAnswer { purchase, rounds }
        })
        .collect()
}

/// `pools`: investment pools and relief funds, with contributions, applications and relief
/// requests (relief reasons stay sealed to the stewards).
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Pools {
    /// Pools and relief funds.
    pub pools: Vec<Pool>,
    /// Contributions, pledged or confirmed.
    pub contributions: Vec<Contribution>,
    /// Applications to pools.
    pub applications: Vec<Application>,
    /// Relief requests.
    pub relief: Vec<ReliefRequest>,
}

/// `pools`.
pub fn pools(state: &State) -> Pools {
    Pools {
        pools: state.pools.values().cloned().collect(),
        contributions: state.contributions.values().cloned().collect(),
        applications: state.applications.values().cloned().collect(),
        relief: state.relief_requests.values().cloned().collect(),
    }
}

/// One member's visibility.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct VisibilityRow {
    /// The member.
    pub member: MemberId,
    /// Display name.
    pub display_name: String,
    /// Their setting.
    pub visibility: Visibility,
    /// Whether the viewer sees their balance and history.
    pub visible_to_you: bool,
    /// The record that set it (latest counted); `None`: the default.
    pub set_by: Option<RecordId>,
}

/// `visibility`: every member's setting and whether the viewer sees them.
pub fn visibility(state: &State, viewer: Option<&MemberId>) -> Vec<VisibilityRow> {
    // The setting in force is the latest counted `visibility` record of each member.
    let mut set_by = std::collections::HashMap::new();
    let settings = state
        .indexes()
        .positions_of(Kind::Visibility)
        .iter()
        .filter_map(|&p| state.log.get(p));
    for e in settings {
        if e.status == EntryStatus::Counted {
            if let Some(m) = e.member {
                set_by.insert(m, e.id);
            }
        }
    }
    state
        .members
        .values()
        .map(|m| VisibilityRow {
            member: m.id,
            display_name: m.display_name.clone(),
            visibility: m.visibility,
            visible_to_you: state.can_see(viewer, &m.id),
            set_by: set_by.get(&m.id).copied(),
        })
        .collect()
}

/// `params`: the parameters in force and every value ever in force.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ParamsAnswer {
    /// In force now.
    pub params: Params,
    /// Every value ever in force, oldest first.
    pub history: Vec<ParamChange>,
}

/// `params`.
pub fn params(state: &State) -> ParamsAnswer {
    ParamsAnswer {
        params: state.params.clone(),
        history: state.params_history.clone(),
    }
}

/// `metrics`: community metrics at `now`, series from `since`.
pub fn metrics(state: &State, now: i64, since: Option<Day>) -> Metrics {
    Metrics::compute(state, now, since)
}

/// Which ledger rows to list: newest first, from a cursor.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct LedgerQuery {
    /// Only this kind (parse with [`parse_kind`]).
    #[serde(default)]
    pub kind: Option<Kind>,
    /// Only refused records.
    #[serde(default)]
    pub refused: bool,
    /// Include records moderators hid.
    #[serde(default)]
    pub all: bool,
    /// Rows per page (default [`DEFAULT_PAGE`], at most [`MAX_PAGE`]).
    #[serde(default)]
    pub limit: Option<usize>,
    /// The cursor: list rows before this position (from the previous page's `next`).
    #[serde(default)]
    pub before: Option<usize>,
}

/// A record kind named by a person or a URL, validated against the kinds that exist.
pub fn parse_kind(s: &str) -> Result<Kind, String> {
    Kind::from_str(s)
}

/// One ledger row, redacted where the viewer may not see whose or what.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LedgerRow {
    /// Position in the total order.
    pub position: usize,
    /// Record id.
    pub id: RecordId,
    /// Kind.
    pub kind: Kind,
    /// Writing device (withheld when redacted).
    pub device: Option<DeviceId>,
    /// Author member (withheld when redacted).
    pub member: Option<MemberId>,
    /// Author-claimed time, Unix seconds.
    pub time: i64,
    /// Summary (withheld when redacted).
    pub summary: Option<String>,
    /// Counted or refused.
    pub status: EntryStatus,
    /// Why it was refused.
    pub reason: Option<RejectReason>,
    /// Details of the refusal (withheld when redacted).
    pub detail: Option<String>,
    /// Moderators hid it.
    pub hidden: bool,
    /// Whose or what is withheld from the viewer (docs/RULES.md R10).
    pub redacted: bool,
}

/// A page of the ledger, newest first.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LedgerPage {
    /// The rows.
    pub rows: Vec<LedgerRow>,
    /// The cursor of the next (older) page, when there is one.
    pub next: Option<usize>,
    /// Records that count, in the whole ledger.
    pub counted: usize,
    /// Records refused, in the whole ledger.
    pub refused: usize,
}

/// `ledger`: a page of rows, newest first.
pub fn ledger(state: &State, viewer: Option<&MemberId>, q: &LedgerQuery) -> LedgerPage {
    let limit = q.limit.unwrap_or(DEFAULT_PAGE).min(MAX_PAGE);
    let end = q.before.unwrap_or(state.log.len()).min(state.log.len());
    let mut rows = Vec::new();
    let mut next = None;
    let matches = |e: &LogEntry| {
        (!q.refused || e.status == EntryStatus::Refused)
            && q.kind.is_none_or(|k| e.kind == k)
            && (q.all || !state.hidden.contains_key(&e.id))
    };
    // The page first, then who may see what of it: the privacy lookups cost the page,
    // not the ledger. With a kind, the page comes from that kind's positions (the index),
    // so it costs the page too, not the log before it.
    let mut page: Vec<&LogEntry> = Vec::with_capacity(limit + 1);
    let candidates: Box<dyn Iterator<Item = &LogEntry>> = match q.kind {
        // Refused records from their index (fewer than those of any kind, as a rule).
        _ if q.refused => Box::new(
            state
                .indexes()
                .refused()
                .range(..end)
                .rev()
                .filter_map(|&p| state.log.get(p)),
        ),
        Some(k) => {
            let positions = state.indexes().positions_of(k);
            let upto = positions.partition_point(|&p| p < end);
            Box::new(
                positions[..upto]
                    .iter()
                    .rev()
                    .filter_map(|&p| state.log.get(p)),
            )
        }
        None => Box::new(state.log[..end].iter().rev()),
    };
    for e in candidates.filter(|e| matches(e)) {
        if page.len() == limit {
            next = Some(e.position + 1);
            break;
        }
        page.push(e);
    }
    let view = state.viewer_for(viewer.copied(), &page);
    for e in page {
        let full = view.sees_entry(e);
        rows.push(LedgerRow {
            position: e.position,
            id: e.id,
            kind: e.kind,
            device: full.then_some(e.device),
            member: if full { e.member } else { None },
            time: e.time,
            summary: full.then(|| e.summary.clone()),
            status: e.status,
            reason: e.reason,
            detail: if full { e.detail.clone() } else { None },
            hidden: state.hidden.contains_key(&e.id),
            redacted: !full,
        });
    }
    LedgerPage {
        rows,
        next,
        counted: state.counted,
        refused: state.refused,
    }
}

/// An offer of help waiting on one of my requests.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct InboxOffer {
    /// My request.
    pub request: RecordId,
    /// Its title.
    pub title: String,
    /// The offer.
    pub offer: crate::state::AidOffer,
}

/// Matched aid I have not confirmed yet.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct InboxAid {
    /// The request.
    pub request: RecordId,
    /// Its title.
    pub title: String,
    /// The other party (helper, or requester).
    pub with: MemberId,
    /// Whether I am the one who was helped.
    pub i_requested: bool,
}

/// An open decision I have not voted on.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct InboxDecision {
    /// The decision.
    pub id: RecordId,
    /// Its title.
    pub title: String,
    /// When voting closes, Unix seconds.
    pub closes_at: i64,
}

/// Everything waiting on one member at `now`.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Inbox {
    /// Attestations to confirm or decline.
    pub attestations: Vec<Attestation>,
    /// Offers on my open requests.
    pub offers: Vec<InboxOffer>,
    /// Matched aid to confirm.
    pub aid_to_confirm: Vec<InboxAid>,
    /// Open decisions I have not voted on, soonest closing first.
    pub decisions: Vec<InboxDecision>,
    /// Relief requests awaiting my approval (stewards).
    pub relief: Vec<ReliefRequest>,
    /// Pledges awaiting confirmation (treasurers; not my own).
    pub pledges: Vec<Contribution>,
}

impl Inbox {
    /// Whether nothing waits.
    pub fn is_empty(&self) -> bool {
        self.attestations.is_empty()
            && self.offers.is_empty()
            && self.aid_to_confirm.is_empty()
            && self.decisions.is_empty()
            && self.relief.is_empty()
            && self.pledges.is_empty()
    }
}

/// `inbox`: what waits on `me` at `now` (hidden records left out).
pub fn inbox(state: &State, me: &MemberId, now: i64) -> Inbox {
    use crate::state::{AidStatus, ContributionStatus, DecisionStatus, ReliefStatus};
    let shown = |id: &RecordId| !state.hidden.contains_key(id);
    let roles: &[Role] = state.members.get(me).map_or(&[], |m| m.roles.as_slice());
    let mut out = Inbox {
        attestations: state
            .pending_for(me)
            .into_iter()
            .filter(|a| shown(&a.id))
            .cloned()
            .collect(),
        ..Inbox::default()
    };
    // From the indexes of open items: what is still open, never the whole history.
    let ix = state.indexes();
    let my_aid = ix
        .active_aid(me)
        .iter()
        .filter_map(|id| state.aid_requests.get(id));
    for r in my_aid.filter(|r| shown(&r.id)) {
        match r.status {
            AidStatus::Open if r.requester == *me => {
                out.offers.extend(r.offers.iter().map(|o| InboxOffer {
                    request: r.id,
                    title: r.title.clone(),
                    offer: o.clone(),
                }));
            }
            AidStatus::Matched => {
                let Some(helper) = r.helper else { continue };
                if r.requester == *me && r.requester_confirmation.is_none() {
                    out.aid_to_confirm.push(InboxAid {
                        request: r.id,
                        title: r.title.clone(),
                        with: helper,
                        i_requested: true,
                    });
                } else if helper == *me && r.helper_confirmation.is_none() {
                    out.aid_to_confirm.push(InboxAid {
                        request: r.id,
                        title: r.title.clone(),
                        with: r.requester,
                        i_requested: false,
                    });
                }
            }
            _ => {}
        }
    }
    if state.is_admitted(me) {
        out.decisions = state
            .indexes()
            .open_decisions()
            .iter()
            .filter_map(|id| state.decisions.get(id))
            .filter(|d| d.status == DecisionStatus::Open && now < d.closes_at && shown(&d.id))
            .filter(|d| !d.votes.iter().any(|v| v.member == *me))
            .map(|d| InboxDecision {
                id: d.id,
                title: d.title.clone(),
                closes_at: d.closes_at,
            })
            .collect();
        out.decisions.sort_by_key(|d| (d.closes_at, d.id));
    }
    if roles.contains(&Role::Steward) {
        out.relief = state
            .indexes()
            .pending_relief()
            .iter()
            .filter_map(|id| state.relief_requests.get(id))
            .filter(|r| r.status == ReliefStatus::Pending && r.beneficiary != *me)
            .filter(|r| !r.approvals.iter().any(|a| a.steward == *me))
            .cloned()
            .collect();
    }
    if roles.contains(&Role::Treasurer) {
        out.pledges = state
            .indexes()
            .pledged()
            .iter()
            .filter_map(|id| state.contributions.get(id))
            .filter(|c| c.status == ContributionStatus::Pledged && c.contributor != *me)
            .cloned()
            .collect();
    }
    out
}

/// Why a member could not be resolved from what a person typed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum MemberLookup {
    /// No member has that name or id prefix.
    #[error("no member matches {0:?}")]
    NotFound(String),
    /// Several do; the candidates are listed.
    #[error("{query:?} matches several members: {}", candidates.iter().map(|(id, n)| format!("{n} ({})", id.short())).collect::<Vec<_>>().join(", "))]
    Ambiguous {
        /// What was typed.
        query: String,
        /// The members it matches: id and display name.
        candidates: Vec<(MemberId, String)>,
    },
}

/// Resolves a member by display name (case-insensitively) or by id prefix (4 or more hex
/// characters) among `(id, display name)` pairs; an ambiguous query names its candidates.
pub fn find_member<'a>(
    members: impl IntoIterator<Item = (MemberId, &'a str)>,
    query: &str,
) -> Result<MemberId, MemberLookup> {
    let members: Vec<(MemberId, &str)> = members.into_iter().collect();
    let q = query.trim();
    let lower = q.to_lowercase();
    let by_name: Vec<(MemberId, &str)> = members
        .iter()
        .filter(|(_, n)| n.to_lowercase() == lower)
        .copied()
        .collect();
    // An exact (case-sensitive) match wins over names that differ only in case.
    let exact: Vec<&(MemberId, &str)> = by_name.iter().filter(|(_, n)| *n == q).collect();
    if exact.len() == 1 {
        return Ok(exact[0].0);
    }
    if by_name.len() == 1 {
        return Ok(by_name[0].0);
    }
    let by_id: Vec<(MemberId, &str)> =
        if lower.len() >= 4 && lower.chars().all(|c| c.is_ascii_hexdigit()) {
            members
                .iter()
                .filter(|(id, _)| id.to_hex().starts_with(&lower))
                .copied()
                .collect()
        } else {
            Vec::new()
        };
    if by_id.len() == 1 {
        return Ok(by_id[0].0);
    }
    let candidates: Vec<(MemberId, String)> = by_name
        .iter()
        .chain(by_id.iter())
        .map(|(id, n)| (*id, n.to_string()))
        .collect();
    if candidates.is_empty() {
        Err(MemberLookup::NotFound(q.into()))
    } else {
        Err(MemberLookup::Ambiguous {
            query: q.into(),
            candidates,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(byte: u8, name: &str) -> MemberRow {
        MemberRow {
            id: MemberId([byte; 32]),
            display_name: name.into(),
            status: MemberStatus::Admitted,
            roles: Vec::new(),
            visibility: Visibility::default(),
            vouched_by: Vec::new(),
            devices: 1,
            time: None,
            sp: None,
        }
    }

    #[test]
    fn members_resolve_by_name_in_any_case_or_by_id_prefix_and_ambiguity_names_candidates() {
        let rows = [
            row(0xaa, "Ana"),
            row(0xab, "Bob"),
            row(0xac, "bob"),
            row(0xbb, "Cy"),
        ];
        let cases: &[(&str, Result<u8, &str>)] = &[
            ("ana", Ok(0xaa)),
            ("ANA", Ok(0xaa)),
            ("Bob", Ok(0xab)),
            ("bob", Ok(0xac)),
            (
                "BOB",
                Err("\"BOB\" matches several members: Bob (abababababab), bob (acacacacacac)"),
            ),
            ("bbbb", Ok(0xbb)),
            ("aaaa", Ok(0xaa)),
            ("dan", Err("no member matches \"dan\"")),
        ];
        for (q, want) in cases {
            let got = find_member(rows.iter().map(|m| (m.id, m.display_name.as_str())), q)
                .map(|id| id.0[0])
                .map_err(|e| e.to_string());
            assert_eq!(got, want.map_err(String::from), "{q}");
        }
    }
}
