//! What `coop` commands talk to: the running node through its API socket when `coop up`
//! serves the data dir, otherwise the store directly. Either way a read is the same
//! `coop_model::query` function over the same state, so a command gives the same answer
//! with and without a node.

use std::time::Duration;

use coop_model::metrics::Metrics;
use coop_model::query::{self, LedgerQuery};
use coop_model::state::{AidRequest, Attestation, Decision, Proposal};
use coop_model::{Day, Envelope, Kind, MemberId, Record, RecordId, State};

use crate::api::{
    AddPeer, ApiClient, Envelopes, ImportSummary, LedgerParams, PeerAdded, RecordsParams,
    WriteRequest, Written,
};
use crate::datadir::DataDir;
use crate::error::NodeError;
use crate::local::{LocalNode, Status, VerifyReport};

/// How long [`Backend::open`] waits for a running node to answer its status.
pub const PROBE_TIMEOUT: Duration = Duration::from_secs(10);

/// The data dir's node, running or not.
#[derive(Debug)]
#[allow(clippy::large_enum_variant)]
pub enum Backend {
    /// No node runs: the command owns the store for its duration.
    Direct(LocalNode),
    /// `coop up` runs: commands go through its API socket.
    Remote(ApiClient),
}

impl Backend {
    /// Connects to the running node if there is one, else opens the store.
    pub fn open(dir: &DataDir) -> Result<Backend, NodeError> {
        let socket = dir.api_socket();
        let mut probed = false;
        if socket.exists() {
            let probe = ApiClient::new(&socket)?.with_timeout(PROBE_TIMEOUT);
            match probe.get::<Status>("/status") {
                Ok(_) => return Ok(Backend::Remote(ApiClient::new(&socket)?)),
                // A node that answers "busy" runs: say so, rather than "store in use".
                Err(NodeError::Busy) => return Err(NodeError::Busy),
                // A stale socket from a crashed node, or a node that does not answer.
                Err(_) => probed = true,
            }
        }
        match LocalNode::open(dir) {
            Ok(n) => Ok(Backend::Direct(n)),
            // The store is held and a node's socket is there but did not answer: the node
            // is busy (or hung), which "store in use" would not tell.
            Err(NodeError::Locked(_)) if probed => Err(NodeError::Busy),
            Err(e) => Err(e),
        }
    }

    /// Whether a running node serves the data dir.
    pub fn is_remote(&self) -> bool {
        matches!(self, Backend::Remote(_))
    }

    /// Writes a record claiming the time `now`; a refusal is [`NodeError::Refused`] and
    /// writes nothing.
    pub fn submit(&mut self, record: Record, now: i64) -> Result<RecordId, NodeError> {
        match self {
            Backend::Direct(n) => n.submit(record, now),
            Backend::Remote(c) => {
                let w: Written = c.post(
                    "/records",
                    &WriteRequest {
                        record,
                        now: Some(now),
                    },
                )?;
                Ok(w.id)
            }
        }
    }

    /// Status.
    pub fn status(&mut self) -> Result<Status, NodeError> {
        match self {
            Backend::Direct(n) => Ok(n.status()),
            Backend::Remote(c) => c.get("/status"),
        }
    }

    /// Runs a query: over the store here, or the same query by the node.
    fn query<T: serde::de::DeserializeOwned>(
        &mut self,
        path: &str,
        direct: impl FnOnce(&State, &MemberId) -> T,
    ) -> Result<T, NodeError> {
        match self {
            Backend::Direct(n) => {
                let me = n.member();
                Ok(direct(n.state(), &me))
            }
            Backend::Remote(c) => c.get(path),
        }
    }

    /// Every member, with accounts where visibility allows.
    pub fn members(&mut self) -> Result<Vec<query::MemberRow>, NodeError> {
        self.query("/members", |s, me| query::members(s, Some(me)))
    }

    /// One member's profile.
    pub fn profile(&mut self, member: &MemberId) -> Result<query::Profile, NodeError> {
        let m = *member;
        self.query(&format!("/members/{}", member.to_hex()), |s, me| {
            query::profile(s, Some(me), &m)
        })?
        .ok_or_else(|| NodeError::InvalidInput("no such member".into()))
    }

    /// A member's balance at `now`.
    pub fn balance(
        &mut self,
        member: &MemberId,
        now: i64,
    ) -> Result<query::BalanceAnswer, NodeError> {
        let m = *member;
        let path = format!("/members/{}/balance?now={now}", member.to_hex());
        match self {
            Backend::Direct(n) => {
                let me = n.member();
                query::balance(n.state(), Some(&me), &m, now)
                    .ok_or_else(|| NodeError::InvalidInput("no such member".into()))
            }
            Backend::Remote(c) => c.get(&path),
        }
    }

    /// A member's attestations (given and received) with their status.
    pub fn hours(&mut self, member: &MemberId) -> Result<Vec<Attestation>, NodeError> {
        let m = *member;
        let mut pages: Vec<Vec<Attestation>> = Vec::new();
        let mut before: Option<coop_model::RecordId> = None;
        // Newest page first, each older than the last; bounded by the member's total.
        loop {
            let path = format!(
                "/members/{}/hours?limit={}{}",
                m.to_hex(),
                query::MAX_PAGE,
                before.map_or(String::new(), |b| format!("&before={}", b.to_hex()))
            );
            let cursor = before;
            let page: query::HoursPage = match self {
                Backend::Direct(n) => {
                    query::hours_page(n.state(), &m, Some(query::MAX_PAGE), cursor.as_ref())
                        .map_err(|e| NodeError::InvalidInput(e.to_string()))?
                }
                Backend::Remote(c) => c.get(&path)?,
            };
            let full = pages.iter().map(Vec::len).sum::<usize>() + page.attestations.len();
            pages.push(page.attestations);
            match page.next {
                Some(next) if full < page.total => before = Some(next),
                _ => break,
            }
        }
        Ok(pages.into_iter().rev().flatten().collect())
    }

    /// Attestations waiting on `member`'s confirmation.
    pub fn pending(&mut self, member: &MemberId) -> Result<Vec<Attestation>, NodeError> {
        let m = *member;
        self.query(&format!("/members/{}/pending", member.to_hex()), |s, _| {
            query::pending(s, &m)
        })
    }

    /// What a command of one family needs (see `coop_model::query::FamilyView`).
    pub fn view(&mut self, family: query::Family) -> Result<query::FamilyView, NodeError> {
        self.query(&format!("/views/{}", family.as_str()), |s, me| {
            query::family(s, Some(me), family)
        })
    }

    /// A record of one of `kinds` (any kind when empty) by id prefix; an ambiguous prefix
    /// is an error listing the candidates.
    pub fn find_record(
        &mut self,
        kinds: &[Kind],
        prefix: &str,
    ) -> Result<query::RecordRef, NodeError> {
        let matches = match self {
            Backend::Direct(n) => query::record_matches_in_state(n.state(), kinds, prefix)
                .map_err(|e| NodeError::InvalidInput(e.to_string()))?,
            Backend::Remote(c) => c.get(&RecordsParams::new(kinds, prefix).path())?,
        };
        query::pick_record(kinds, prefix, matches)
            .map_err(|e| NodeError::InvalidInput(e.to_string()))
    }

    /// What `coop export` writes for this member.
    pub fn export_records(&mut self, all: bool) -> Result<query::ExportAnswer, NodeError> {
        match self {
            Backend::Direct(n) => {
                let me = n.member();
                let envelopes = n.export();
                Ok(query::export(n.state(), &envelopes, Some(&me), all))
            }
            Backend::Remote(c) => c.get(&format!("/export/records?all={all}")),
        }
    }

    /// Everything waiting on this member at `now`.
    pub fn inbox(&mut self, now: i64) -> Result<query::Inbox, NodeError> {
        self.query(&format!("/inbox?now={now}"), |s, me| {
            query::inbox(s, me, now)
        })
    }

    /// Support Point proposals.
    pub fn proposals(&mut self) -> Result<Vec<Proposal>, NodeError> {
        self.query("/proposals", |s, _| query::proposals(s))
    }

    /// Mutual-aid requests.
    pub fn aid(&mut self) -> Result<Vec<AidRequest>, NodeError> {
        self.query("/aid", |s, _| query::aid(s))
    }

    /// Governance decisions.
    pub fn decisions(&mut self) -> Result<Vec<Decision>, NodeError> {
        self.query("/decisions", |s, _| query::decisions(s))
    }

    /// Reports and hidden records.
    pub fn moderation(&mut self) -> Result<query::Moderation, NodeError> {
        self.query("/moderation", |s, _| query::moderation(s))
    }

    /// Collective purchases.
    pub fn purchases(&mut self) -> Result<Vec<query::PurchaseAnswer>, NodeError> {
        self.query("/purchases", |s, _| query::purchases(s))
    }

    /// Pools, relief funds and what hangs on them.
    pub fn pools(&mut self) -> Result<query::Pools, NodeError> {
        self.query("/pools", |s, _| query::pools(s))
    }

    /// Every member's visibility.
    pub fn visibility(&mut self) -> Result<Vec<query::VisibilityRow>, NodeError> {
        self.query("/visibility", |s, me| query::visibility(s, Some(me)))
    }

    /// Parameters and their history.
    pub fn params(&mut self) -> Result<query::ParamsAnswer, NodeError> {
        self.query("/params", |s, _| query::params(s))
    }

    /// Community metrics at `now`.
    pub fn metrics(&mut self, now: i64, since: Option<Day>) -> Result<Metrics, NodeError> {
        let mut path = format!("/metrics?now={now}");
        if let Some(d) = since {
            path.push_str(&format!("&since={d}"));
        }
        self.query(&path, |s, _| query::metrics(s, now, since))
    }

    /// A page of the ledger, newest first.
    pub fn ledger(&mut self, q: &LedgerQuery) -> Result<query::LedgerPage, NodeError> {
        let p = LedgerParams {
            kind: q.kind.map(|k| k.as_str().to_string()),
            refused: q.refused,
            all: q.all,
            limit: q.limit,
            before: q.before,
        };
        let mut path = format!("/ledger?refused={}&all={}", p.refused, p.all);
        if let Some(k) = &p.kind {
            path.push_str(&format!("&kind={k}"));
        }
        if let Some(l) = p.limit {
            path.push_str(&format!("&limit={l}"));
        }
        if let Some(b) = p.before {
            path.push_str(&format!("&before={b}"));
        }
        self.query(&path, |s, me| query::ledger(s, Some(me), q))
    }

    /// Imports envelopes through the gate.
    pub fn import(&mut self, envelopes: Vec<Envelope>) -> Result<ImportSummary, NodeError> {
        match self {
            Backend::Direct(n) => {
                let out = n.ingest(envelopes)?;
                Ok(ImportSummary {
                    accepted: out.accepted.len(),
                    duplicates: out.duplicates,
                    pending: out.pending,
                    rejected: out.rejected,
                })
            }
            Backend::Remote(c) => c.post("/import", &Envelopes::encode(&envelopes)),
        }
    }

    /// Every accepted envelope, in causal order.
    pub fn export(&mut self) -> Result<Vec<Envelope>, NodeError> {
        match self {
            Backend::Direct(n) => Ok(n.export()),
            Backend::Remote(c) => {
                let e: Envelopes = c.get("/export")?;
                e.envelopes
                    .iter()
                    .map(|h| {
                        hex::decode(h)
                            .ok()
                            .and_then(|b| Envelope::decode(&b).ok())
                            .ok_or_else(|| NodeError::api_msg("bad envelope in export"))
                    })
                    .collect()
            }
        }
    }

    /// Remembers a peer address (source manual). A running node also dials it at once;
    /// without one it is dialled at the next start. A bad address is
    /// [`NodeError::InvalidInput`] and stores nothing.
    pub fn add_peer(&mut self, addr: &str) -> Result<PeerAdded, NodeError> {
        match self {
            Backend::Direct(n) => {
                let m = crate::peerstore::parse_dialable(addr)
                    .map_err(|e| NodeError::InvalidInput(e.to_string()))?;
                let (added, _) = n
                    .dir()
                    .update_peer_book(|b| b.add(&m, crate::peerstore::Source::Manual))?;
                Ok(PeerAdded {
                    addr: m.to_string(),
                    added,
                    dialing: false,
                })
            }
            Backend::Remote(c) => c.post(
                "/peers",
                &AddPeer {
                    addr: addr.to_string(),
                },
            ),
        }
    }

    /// Re-verifies the store.
    pub fn verify(&mut self) -> Result<VerifyReport, NodeError> {
        match self {
            Backend::Direct(n) => n.verify(),
            Backend::Remote(c) => c.post("/verify", &()),
        }
    }
}
