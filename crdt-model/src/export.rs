//! What `coop export` writes: the records a viewer may see (docs/RULES.md R10, docs/RULES.md R11), in total order, and
//! the two-party hour receipts among them, which verify on their own ([`Receipt::verify`]).
//!
//! A record the viewer may not see in full (another member's history they keep from the
//! viewer) is exported as a stub: position, id, kind, time and status, without author,
//! fields, summary or refusal detail. Records hidden by moderators are left out unless
//! asked for. A pure function: envelopes in (as the store holds them), export out.

use std::collections::HashMap;

use serde::{Deserialize, Serialize};

use crate::envelope::{Envelope, RejectReason};
use crate::gate::verify_envelope;
use crate::ids::{CommunityId, DeviceId, MemberId, RecordId};
use crate::receipt::Receipt;
use crate::record::Record;
use crate::state::{EntryStatus, State};

/// One exported record.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ExportRecord {
    /// Position in the total order.
    pub position: usize,
    /// Record id (change hash).
    pub id: RecordId,
    /// Record kind.
    pub kind: crate::record::Kind,
    /// Author-claimed time, Unix seconds.
    pub time: i64,
    /// Counted or refused.
    pub status: EntryStatus,
    /// The refusal reason, when refused.
    pub reason: Option<RejectReason>,
    /// Hidden by a moderator (only exported when hidden records are asked for).
    pub hidden: bool,
    /// Withheld: the record belongs to a history the viewer may not see.
    pub redacted: bool,
    /// The author (`None` when redacted or unknown).
    pub member: Option<MemberId>,
    /// A one-line summary (`None` when redacted).
    pub summary: Option<String>,
    /// Details of the refusal (`None` when redacted).
    pub detail: Option<String>,
    /// The record's fields (`None` when redacted).
    pub record: Option<Record>,
    /// A settled attestation whose receipt is in [`Export::receipts`].
    pub receipt: bool,
}

/// An export.
#[derive(Debug, Clone)]
pub struct Export {
    /// The community.
    pub community: CommunityId,
    /// Who the export is for (`None`: anyone, only public histories in full).
    pub viewer: Option<MemberId>,
    /// Records in total order.
    pub records: Vec<ExportRecord>,
    /// Receipts of the settled attestations the viewer sees in full, in total order of the
    /// attestations.
    pub receipts: Vec<Receipt>,
    /// How many records were withheld as stubs.
    pub redacted: usize,
}

/// Builds the export of `state` for `viewer` from the envelopes the ledger holds.
/// `include_hidden` keeps records hidden by moderators (marked `hidden`).
pub fn export(
    state: &State,
    envelopes: &[Envelope],
    viewer: Option<MemberId>,
    include_hidden: bool,
) -> Export {
    // The envelopes were verified when the store accepted them; decoding is enough here.
    let mut by_id: HashMap<RecordId, (Envelope, Record, DeviceId, u64)> = HashMap::new();
    for env in envelopes {
        if let Ok(v) = verify_envelope(env.clone(), &state.community, false) {
            by_id.insert(v.id, (v.envelope, v.record, v.device, v.seq));
        }
    }
    // The certificate of each device: its counted (canonical) seq-1 change.
    let mut certs: HashMap<DeviceId, &Envelope> = HashMap::new();
    for e in &state.log {
        if let Some((env, rec, dev, 1)) = by_id.get(&e.id) {
            if rec.is_certificate() {
                certs.entry(*dev).or_insert(env);
            }
        }
    }
    let view = state.viewer(viewer);
    let mut records = Vec::new();
    let mut receipts = Vec::new();
    let mut redacted = 0;
    for e in &state.log {
        let hidden = state.hidden.contains_key(&e.id);
        if hidden && !include_hidden {
            continue;
        }
        let full = view.sees_entry(e);
        let mut receipt = false;
        if full {
            let settled = state.attestations.get(&e.id).and_then(|a| a.settled_by);
            let settlement_shown =
                settled.is_some_and(|s| include_hidden || !state.hidden.contains_key(&s));
            if let (Some(s), true) = (settled, settlement_shown) {
                if let Some(r) = assemble(state.community, &by_id, &certs, &e.id, &s) {
                    receipts.push(r);
                    receipt = true;
                }
            }
        } else {
            redacted += 1;
        }
        records.push(ExportRecord {
            position: e.position,
            id: e.id,
            kind: e.kind,
            time: e.time,
            status: e.status,
            reason: e.reason,
            hidden,
            redacted: !full,
            member: if full { e.member } else { None },
            summary: full.then(|| e.summary.clone()),
            detail: if full { e.detail.clone() } else { None },
            record: if full {
                by_id.get(&e.id).map(|(_, r, _, _)| r.clone())
            } else {
                None
            },
            receipt,
        });
    }
    Export {
        community: state.community,
        viewer,
        records,
        receipts,
        redacted,
    }
}

fn assemble(
    community: CommunityId,
    by_id: &HashMap<RecordId, (Envelope, Record, DeviceId, u64)>,
    certs: &HashMap<DeviceId, &Envelope>,
    attestation: &RecordId,
    settlement: &RecordId,
) -> Option<Receipt> {
    let (a_env, _, a_dev, _) = by_id.get(attestation)?;
    let (s_env, _, s_dev, _) = by_id.get(settlement)?;
    Some(Receipt {
        community,
        attestation: a_env.clone(),
        settlement: s_env.clone(),
        provider_cert: (*certs.get(a_dev)?).clone(),
        receiver_cert: (*certs.get(s_dev)?).clone(),
    })
}
