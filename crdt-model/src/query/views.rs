//! Family views: what one `coop` command needs of the ledger to list, show or name the
//! records of one family (proposals, aid, governance, purchases, pools and relief, hours),
//! and record lookup by id prefix among the kinds a command expects.
//!
//! A [`FamilyView`] holds the family's records, the members (accounts and aid history
//! emptied where the viewer may not see them, docs/RULES.md R10), the hidden records, the
//! parameters, and the log entries of the family's own records (for their places in the
//! total order and for id-prefix lookup). It costs what the family and the member list
//! cost, never the whole derived state: in particular the log, which grows with every
//! change, is not in it. [`FamilyView::into_state`] turns it into a [`State`] holding only
//! those parts, for renderers written against `State`.

use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::ids::{CommunityId, DeviceId, MemberId, RecordId};
use crate::params::Params;
use crate::record::Kind;
use crate::state::{
    AidHistory, AidRequest, Application, Attestation, Contribution, Decision, DeviceInfo, LogEntry,
    Member, Pool, Proposal, ReliefRequest, Report, SpAccount, State, TimeAccount,
};

use super::{Hidden, PurchaseAnswer, Round};

/// A family of records one command lists, shows or writes about.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum Family {
    /// Members only (names, roles, status), no records.
    Members,
    /// The viewer's hour attestations, given and received.
    Hours,
    /// Support Point proposals and their allocations.
    Proposals,
    /// Mutual-aid requests and their offers.
    Aid,
    /// Decisions, reports and devices that equivocated.
    Governance,
    /// Collective purchases.
    Purchases,
    /// Pools, relief funds, contributions, applications and relief requests.
    Pools,
}

impl Family {
    /// Every family, for help texts and errors.
    pub const ALL: [Family; 7] = [
        Family::Members,
        Family::Hours,
        Family::Proposals,
        Family::Aid,
        Family::Governance,
        Family::Purchases,
        Family::Pools,
    ];

    /// Its name in URLs.
    pub fn as_str(self) -> &'static str {
        match self {
            Family::Members => "members",
            Family::Hours => "hours",
            Family::Proposals => "proposals",
            Family::Aid => "aid",
            Family::Governance => "governance",
            Family::Purchases => "purchases",
            Family::Pools => "pools",
        }
    }

    /// The kinds of record a command of this family names by id (and lists in order).
    pub fn kinds(self) -> &'static [Kind] {
        match self {
            Family::Members => &[],
            Family::Hours => &[Kind::Attest],
            Family::Proposals => &[Kind::Proposal],
            Family::Aid => &[Kind::AidRequest, Kind::AidOffer],
            Family::Governance => &[Kind::Decision],
            Family::Purchases => &[Kind::Purchase],
            Family::Pools => &[
                Kind::Pool,
                Kind::Contribution,
                Kind::Application,
                Kind::ReliefRequest,
            ],
        }
    }
}

impl FromStr for Family {
    type Err = String;
    fn from_str(s: &str) -> Result<Family, String> {
        Family::ALL
            .into_iter()
            .find(|f| f.as_str() == s)
            .ok_or_else(|| {
                format!(
                    "no view {s:?}; views are: {}",
                    Family::ALL.map(Family::as_str).join(", ")
                )
            })
    }
}

/// A device that equivocated, and its member when known.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ForkedDevice {
    /// The device.
    pub device: DeviceId,
    /// Its member.
    pub member: Option<MemberId>,
}

/// A certified device and what the ledger says of it (docs/RULES.md R18).
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeviceRow {
    /// The device.
    pub device: DeviceId,
    /// Its member, label, certificate, when added and last wrote, fork point, revocation.
    #[serde(flatten)]
    pub info: DeviceInfo,
}

/// What a command needs of the ledger to show one family (see the module comment).
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FamilyView {
    /// Which family.
    pub family: Family,
    /// The community.
    pub community: CommunityId,
    /// Its name.
    pub name: String,
    /// The founder.
    pub founder: Option<MemberId>,
    /// Parameters in force.
    pub params: Params,
    /// Every member; time, SP and aid history emptied where the viewer may not see them.
    pub members: Vec<Member>,
    /// Records moderators hid.
    pub hidden: Vec<Hidden>,
    /// The log entries of the family's records (kinds [`Family::kinds`]), in total order.
    pub entries: Vec<LogEntry>,
    /// Hours: the viewer's attestations, given and received.
    pub attestations: Vec<Attestation>,
    /// Proposals.
    pub proposals: Vec<Proposal>,
    /// Aid requests (ratings and feedback withheld unless the viewer is a party or sees
    /// both parties).
    pub aid_requests: Vec<AidRequest>,
    /// Decisions.
    pub decisions: Vec<Decision>,
    /// Abuse reports.
    pub reports: Vec<Report>,
    /// Devices that equivocated.
    pub forked_devices: Vec<ForkedDevice>,
    /// Every certified device (the members view only).
    #[serde(default)]
    pub devices: Vec<DeviceRow>,
    /// Purchases, rounds listed.
    pub purchases: Vec<PurchaseAnswer>,
    /// Pools and relief funds.
    pub pools: Vec<Pool>,
    /// Contributions.
    pub contributions: Vec<Contribution>,
    /// Applications.
    pub applications: Vec<Application>,
    /// Relief requests.
    pub relief_requests: Vec<ReliefRequest>,
}

/// `views/{family}`: what a command of `family` needs, for `viewer`.
pub fn family(state: &State, viewer: Option<&MemberId>, family: Family) -> FamilyView {
    let kinds = family.kinds();
    // Hours lists only the viewer's own attestations (below), never every one's entries.
    let entries = if kinds.is_empty() || family == Family::Hours {
        Vec::new()
    } else {
        // From the positions of the family's kinds (the index), in total order.
        let mut positions: Vec<usize> = kinds
            .iter()
            .flat_map(|k| state.indexes().positions_of(*k).iter().copied())
            .collect();
        positions.sort_unstable();
        positions
            .into_iter()
            .filter_map(|p| state.log.get(p))
            .cloned()
            .collect()
    };
    let mut v = FamilyView {
        family,
        community: state.community,
        name: state.name.clone(),
        founder: state.founder,
        params: state.params.clone(),
        members: state
            .members
            .values()
            .map(|m| {
                let mut m = m.clone();
                if !state.can_see(viewer, &m.id) {
                    m.time = TimeAccount::default();
                    m.sp = SpAccount::default();
                    m.aid = AidHistory::default();
                }
                m
            })
            .collect(),
        hidden: state
            .hidden
            .iter()
            .map(|(record, by)| Hidden {
                record: *record,
                by: *by,
            })
            .collect(),
        entries,
        attestations: Vec::new(),
        proposals: Vec::new(),
        aid_requests: Vec::new(),
        decisions: Vec::new(),
        reports: Vec::new(),
        forked_devices: Vec::new(),
        devices: Vec::new(),
        purchases: Vec::new(),
        pools: Vec::new(),
        contributions: Vec::new(),
        applications: Vec::new(),
        relief_requests: Vec::new(),
    };
    match family {
        Family::Members => {
            v.devices = state
                .devices
                .iter()
                .map(|(device, info)| DeviceRow {
                    device: *device,
                    info: info.clone(),
                })
                .collect();
        }
        Family::Hours => {
            if let Some(me) = viewer {
                v.attestations = super::hours(state, me);
            }
            // Only the viewer's own attestations: others' belong to their histories.
            let mut mine: Vec<usize> = v
                .attestations
                .iter()
                .filter_map(|a| state.indexes().position_of(&a.id))
                .collect();
            mine.sort_unstable();
            v.entries = mine
                .into_iter()
                .filter_map(|p| state.log.get(p))
                .cloned()
                .collect();
        }
        Family::Proposals => v.proposals = super::proposals(state),
        Family::Aid => {
            v.aid_requests = state
                .aid_requests
                .values()
                .map(|r| redact_aid(state, viewer, r))
                .collect();
        }
        Family::Governance => {
            v.decisions = super::decisions(state);
            v.reports = state.reports.clone();
            v.forked_devices = state
                .forked_devices
                .iter()
                .map(|(device, member)| ForkedDevice {
                    device: *device,
                    member: *member,
                })
                .collect();
        }
        Family::Purchases => v.purchases = super::purchases(state),
        Family::Pools => {
            let p = super::pools(state);
            v.pools = p.pools;
            v.contributions = p.contributions;
            v.applications = p.applications;
            v.relief_requests = p.relief;
        }
    }
    v
}

/// A request without the ratings and feedback of its confirmations (reputation history)
/// unless `viewer` is a party or may see both parties (docs/RULES.md R10).
pub fn redact_aid(state: &State, viewer: Option<&MemberId>, r: &AidRequest) -> AidRequest {
    let mut r = r.clone();
    let parties: Vec<MemberId> = std::iter::once(r.requester).chain(r.helper).collect();
    let party = parties.iter().any(|p| Some(p) == viewer);
    if !party && !parties.iter().all(|p| state.can_see(viewer, p)) {
        for c in [&mut r.requester_confirmation, &mut r.helper_confirmation]
            .into_iter()
            .flatten()
        {
            c.rating = None;
            c.feedback = None;
        }
    }
    r
}

impl FamilyView {
    /// A [`State`] holding only this view's parts: its members, hidden records,
    /// parameters, the family's records, and a log of only the family's entries (so
    /// `State::find_record` and positions work among them). Counts and everything of
    /// other families are empty.
    pub fn into_state(self) -> State {
        let mut s = State::empty(self.community);
        s.name = self.name;
        s.founder = self.founder;
        s.params = self.params;
        s.members = self.members.into_iter().map(|m| (m.id, m)).collect();
        s.hidden = self.hidden.into_iter().map(|h| (h.record, h.by)).collect();
        s.log = self.entries;
        s.attestations = self.attestations.into_iter().map(|a| (a.id, a)).collect();
        s.proposals = self.proposals.into_iter().map(|p| (p.id, p)).collect();
        s.aid_requests = self.aid_requests.into_iter().map(|r| (r.id, r)).collect();
        s.decisions = self.decisions.into_iter().map(|d| (d.id, d)).collect();
        s.reports = self.reports;
        s.devices = self
            .devices
            .into_iter()
            .map(|r| (r.device, r.info))
            .collect();
        s.forked_devices = self
            .forked_devices
            .into_iter()
            .map(|f| (f.device, f.member))
            .collect();
        s.purchases = self
            .purchases
            .into_iter()
            .map(
                |PurchaseAnswer {
                     mut purchase,
                     rounds,
                 }| {
                    purchase.rounds = rounds
                        .into_iter()
                        .map(|Round { number, round }| (number, round))
                        .collect();
                    (purchase.id, purchase)
                },
            )
            .collect();
        s.pools = self.pools.into_iter().map(|p| (p.id, p)).collect();
        s.contributions = self.contributions.into_iter().map(|c| (c.id, c)).collect();
        s.applications = self.applications.into_iter().map(|a| (a.id, a)).collect();
        s.relief_requests = self
            .relief_requests
            .into_iter()
            .map(|r| (r.id, r))
            .collect();
        s.rebuild_indexes();
        s
    }
}

/// A record named by id prefix.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RecordRef {
    /// Its id.
    pub id: RecordId,
    /// Its kind.
    pub kind: Kind,
    /// Its one-line summary.
    pub summary: String,
}

/// Why a record could not be resolved from what a person typed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum RecordLookup {
    /// Not a hex id prefix of 4 or more characters.
    #[error("{0:?} is not a record id (4 or more hex characters of one)")]
    NotAnId(String),
    /// No record of the expected kinds has that prefix.
    #[error(
        "{query:?} is not {} {what} (no {what} id starts with it)",
        article(what)
    )]
    NotFound {
        /// What was looked for (`record`, or the kinds expected).
        what: String,
        /// What was typed.
        query: String,
    },
    /// Several do; the candidates are listed, one line each.
    #[error("{query:?} matches several {what}s; give a longer prefix:{}", candidates.iter().map(|c| format!("\n  {}  {}", c.id.short(), clip(&c.summary, 70))).collect::<String>())]
    Ambiguous {
        /// What was looked for.
        what: String,
        /// What was typed.
        query: String,
        /// The records it matches.
        candidates: Vec<RecordRef>,
    },
}

fn clip(text: &str, max: usize) -> String {
    let flat = text.replace('\n', " ");
    if flat.chars().count() <= max {
        flat
    } else {
        let mut s: String = flat.chars().take(max.saturating_sub(1)).collect();
        s.push('…');
        s
    }
}

/// The candidates listed for an ambiguous prefix, at most.
pub const MAX_CANDIDATES: usize = 10;

/// Resolves a record id prefix among `entries` (a log, or a view's entries) whose kind is
/// one of `kinds` (any kind when empty); an ambiguous prefix lists its candidates (at most
/// [`MAX_CANDIDATES`]) with their summaries.
pub fn find_record_in<'a>(
    entries: impl IntoIterator<Item = &'a LogEntry>,
    kinds: &[Kind],
    query: &str,
) -> Result<RecordRef, RecordLookup> {
    let matches = record_matches(entries, kinds, query)?;
    pick_record(kinds, query, matches)
}

/// `records?prefix=&kinds=`: the records of one of `kinds` (any kind when empty) whose id
/// starts with `query`, at most [`MAX_CANDIDATES`] + 1, in total order.
pub fn record_matches<'a>(
    entries: impl IntoIterator<Item = &'a LogEntry>,
    kinds: &[Kind],
    query: &str,
) -> Result<Vec<RecordRef>, RecordLookup> {
    let q = query.trim().to_lowercase();
    if q.len() < 4 || !q.chars().all(|c| c.is_ascii_hexdigit()) {
        return Err(RecordLookup::NotAnId(query.trim().into()));
    }
    Ok(entries
        .into_iter()
        .filter(|e| kinds.is_empty() || kinds.contains(&e.kind))
        .filter(|e| e.id.to_hex().starts_with(&q))
        .take(MAX_CANDIDATES + 1)
        .map(|e| RecordRef {
            id: e.id,
            kind: e.kind,
            summary: e.summary.clone(),
        })
        .collect())
}

/// [`record_matches`] over a state's whole log, from its id index: the records whose id
/// starts with the prefix are a range of ids, so this costs the matches, not the log.
pub fn record_matches_in_state(
    state: &State,
    kinds: &[Kind],
    query: &str,
) -> Result<Vec<RecordRef>, RecordLookup> {
    let q = query.trim().to_lowercase();
    if q.len() < 4 || !q.chars().all(|c| c.is_ascii_hexdigit()) {
        return Err(RecordLookup::NotAnId(query.trim().into()));
    }
    let mut positions: Vec<usize> = state
        .indexes()
        .with_prefix(&q)
        .map(|(_, p)| p)
        .filter(|&p| {
            state
                .log
                .get(p)
                .is_some_and(|e| kinds.is_empty() || kinds.contains(&e.kind))
        })
        .collect();
    // In total order, as a scan of the log lists them.
    positions.sort_unstable();
    Ok(positions
        .into_iter()
        .take(MAX_CANDIDATES + 1)
        .filter_map(|p| state.log.get(p))
        .map(|e| RecordRef {
            id: e.id,
            kind: e.kind,
            summary: e.summary.clone(),
        })
        .collect())
}

/// The one record among `matches` ([`record_matches`]' answer), or why there is not one.
pub fn pick_record(
    kinds: &[Kind],
    query: &str,
    mut matches: Vec<RecordRef>,
) -> Result<RecordRef, RecordLookup> {
    let q = query.trim().to_lowercase();
    let what = if kinds.is_empty() {
        "record".to_string()
    } else {
        kinds
            .iter()
            .map(|k| noun(*k))
            .collect::<Vec<_>>()
            .join(" or ")
    };
    match matches.len() {
        0 => Err(RecordLookup::NotFound { what, query: q }),
        1 => Ok(matches.remove(0)),
        _ => {
            matches.truncate(MAX_CANDIDATES);
            Err(RecordLookup::Ambiguous {
                what,
                query: q,
                candidates: matches,
            })
        }
    }
}

/// What a person calls a record of `kind` ("attestation" for `attest`).
pub fn noun(kind: Kind) -> String {
    match kind {
        Kind::Attest => "attestation".into(),
        Kind::Allocate => "allocation".into(),
        Kind::Contribution => "contribution".into(),
        k => k.as_str().replace('_', " "),
    }
}

/// "a" or "an" before `word`.
fn article(word: &str) -> &'static str {
    if word.starts_with(['a', 'e', 'i', 'o', 'u']) {
        "an"
    } else {
        "a"
    }
}

/// A record of one of `kinds` (any kind when empty) by id prefix, over the whole log.
pub fn find_record(state: &State, kinds: &[Kind], query: &str) -> Result<RecordRef, RecordLookup> {
    let matches = record_matches_in_state(state, kinds, query)?;
    pick_record(kinds, query, matches)
}

/// `members/{id}/pending`: attestations waiting on `member`'s confirmation, hidden ones
/// left out, oldest first.
pub fn pending(state: &State, member: &MemberId) -> Vec<Attestation> {
    state
        .pending_for(member)
        .into_iter()
        .filter(|a| !state.hidden.contains_key(&a.id))
        .cloned()
        .collect()
}

/// `export/records`: what `coop export` writes for `viewer` (docs/RULES.md R10), with the
/// member names and community name its text needs.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ExportAnswer {
    /// The community.
    pub community: CommunityId,
    /// Who the export is for.
    pub viewer: Option<MemberId>,
    /// Records in total order.
    pub records: Vec<crate::export::ExportRecord>,
    /// Receipts of the settled attestations the viewer sees in full, each in its JSON form
    /// (`Receipt::to_json`).
    pub receipts: Vec<String>,
    /// How many records were withheld as stubs.
    pub redacted: usize,
    /// Members and community name (a [`Family::Members`] view).
    pub view: FamilyView,
}

/// `export/records`: the export of `state` for `viewer` from the envelopes the ledger holds.
pub fn export(
    state: &State,
    envelopes: &[crate::envelope::Envelope],
    viewer: Option<&MemberId>,
    include_hidden: bool,
) -> ExportAnswer {
    let x = crate::export::export(state, envelopes, viewer.copied(), include_hidden);
    ExportAnswer {
        community: x.community,
        viewer: x.viewer,
        records: x.records,
        receipts: x.receipts.iter().map(|r| r.to_json()).collect(),
        redacted: x.redacted,
        view: family(state, viewer, Family::Members),
    }
}

impl ExportAnswer {
    /// The export as `coop_model::export` builds it (receipts parsed back).
    pub fn to_export(&self) -> Result<crate::export::Export, crate::receipt::ReceiptError> {
        Ok(crate::export::Export {
            community: self.community,
            viewer: self.viewer,
            records: self.records.clone(),
            receipts: self
                .receipts
                .iter()
                .map(|r| crate::receipt::Receipt::from_json(r))
                .collect::<Result<_, _>>()?,
            redacted: self.redacted,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::state::EntryStatus;

    fn entry(first: [u8; 2], kind: Kind, summary: &str) -> LogEntry {
        let mut id = [0x11; 32];
        id[..2].copy_from_slice(&first);
        LogEntry {
            position: 0,
            id: RecordId(id),
            kind,
            device: DeviceId([1; 32]),
            member: None,
            time: 0,
            summary: summary.into(),
            status: EntryStatus::Counted,
            reason: None,
            detail: None,
        }
    }

    #[test]
    fn record_prefixes_resolve_among_the_expected_kinds_and_ambiguity_lists_candidates() {
        let log = [
            entry([0xab, 0xc1], Kind::Purchase, "purchase of olive oil"),
            entry([0xab, 0xc2], Kind::Proposal, "proposal \"Tool library\""),
            entry([0xab, 0xc1], Kind::Purchase, "purchase of flour"),
            entry([0xcd, 0x01], Kind::Proposal, "proposal \"Garden\""),
        ];
        let purchase: &[Kind] = &[Kind::Purchase];
        let proposal: &[Kind] = &[Kind::Proposal];
        let cases: &[(&[Kind], &str, Result<&str, &str>)] = &[
            // Unique among the kind asked for, though not among all records; any case.
            (
                proposal,
                "ABC",
                Err("\"ABC\" is not a record id (4 or more hex characters of one)"),
            ),
            (proposal, "abc2", Ok("proposal \"Tool library\"")),
            (proposal, "ABC2", Ok("proposal \"Tool library\"")),
            (proposal, "cd01", Ok("proposal \"Garden\"")),
            (
                purchase,
                "cd01",
                Err("\"cd01\" is not a purchase (no purchase id starts with it)"),
            ),
            (&[], "cd01", Ok("proposal \"Garden\"")),
            (
                &[],
                "zzzz",
                Err("\"zzzz\" is not a record id (4 or more hex characters of one)"),
            ),
            (
                &[],
                "ffff",
                Err("\"ffff\" is not a record (no record id starts with it)"),
            ),
            // Ambiguous: the candidates of the kind asked for, one line each.
            (
                purchase,
                "abc1",
                Err(
                    "\"abc1\" matches several purchases; give a longer prefix:\n  \
                     abc111111111  purchase of olive oil\n  abc111111111  purchase of flour",
                ),
            ),
        ];
        for (kinds, q, want) in cases {
            let got = find_record_in(&log, kinds, q)
                .map(|r| r.summary)
                .map_err(|e| e.to_string());
            assert_eq!(
                got,
                want.map(String::from).map_err(String::from),
                "{q} {kinds:?}"
            );
        }
    }
}
