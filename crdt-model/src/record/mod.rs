//! Ledger records and their Automerge layout, one module per family of record kinds.
//!
//! Every change carries exactly one record: a new map at the document root under the key
//! `{kind}/{device hex}/{seq}`, holding only scalar fields. Records are never updated or
//! deleted; a later record refers to an earlier one by its [`RecordId`](crate::ids::RecordId) (the change hash).
//! This makes the write rules of the gate (docs/PROTOCOL.md, "Layout v1") a check of one
//! change alone.
//!
//! Each family module holds its record structs, their layout (one `record_layout!`
//! declaration from which encoding and decoding both follow), their one-line summaries and
//! their derivation rules. This module lists the kinds once, in `records!`, and
//! dispatches on them. The checklist for adding a kind is in docs/ARCHITECTURE.md.

use std::collections::BTreeMap;
use std::num::NonZeroU64;

use automerge::legacy::{Key, ObjectId, Op, OpId, OpType, SortedVec};
use automerge::{ObjType, ScalarValue};

use crate::envelope::Refusal;
use crate::fold::{Ctx, Derived, Past, Rule};
use crate::ids::{DeviceId, MemberId};

pub(crate) mod layout;

pub mod aid;
pub mod devices;
pub mod governance;
pub mod membership;
pub mod moderation;
pub mod pools;
pub mod privacy;
pub mod purchase;
pub mod relief;
pub mod support;
pub mod timebank;

pub use crate::terms::*;
pub use aid::*;
pub use devices::*;
pub use governance::*;
pub use layout::RecordError;
pub use membership::*;
pub use moderation::*;
pub use pools::*;
pub use privacy::*;
pub use purchase::*;
pub use relief::*;
pub use support::*;
pub use timebank::*;

use layout::{Field, Fields, Layout};

/// Layout version written into every record as field `v`.
pub const LAYOUT_VERSION: u64 = 1;

/// Declares [`Record`] (one variant per kind, holding the kind's struct), the text forms of
/// [`Kind`] (declared in [`crate::terms`]) and the dispatch from a record to its kind's module.
macro_rules! records {
    ($( $(#[$meta:meta])* $variant:ident($ty:ty), )*) => {
        /// One ledger record: the payload of one signed change.
        #[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
        #[serde(tag = "kind", rename_all = "snake_case")]
        #[non_exhaustive]
        pub enum Record {
            $( $(#[$meta])* $variant($ty), )*
        }

        impl Kind {
            /// Every kind, in declaration order.
            pub const ALL: &'static [Kind] = &[$(Kind::$variant),*];

            /// The kind's name: the first segment of the root key.
            pub fn as_str(&self) -> &'static str {
                match self { $( Kind::$variant => <$ty as Layout>::KIND, )* }
            }
        }

        impl Record {
            /// The record's kind.
            pub fn kind_of(&self) -> Kind {
                match self { $( Record::$variant(_) => Kind::$variant, )* }
            }

            fn put_fields(&self, out: &mut Vec<(&'static str, Field)>) {
                match self { $( Record::$variant(r) => r.put_fields(out), )* }
            }

            fn decode(kind: &str, f: &Fields<'_>) -> Result<Record, RecordError> {
                $( if kind == <$ty as Layout>::KIND {
                    return <$ty as Layout>::from_fields(f).map(Record::$variant);
                } )*
                Err(RecordError::UnknownKind(kind.to_string()))
            }

            /// A one-line human summary (ids shortened).
            pub fn summary(&self) -> String {
                match self { $( Record::$variant(r) => r.summary(), )* }
            }

            /// Whether the author must be admitted in the record's causal past.
            pub(crate) fn needs_admission(&self) -> bool {
                match self { $( Record::$variant(_) => <$ty as Rule>::NEEDS_ADMISSION, )* }
            }

            /// The rules of the record's kind, at its place in the total order.
            pub(crate) fn apply(
                &self,
                d: &mut Derived,
                past: Past<'_>,
                c: &Ctx<'_>,
                author: MemberId,
            ) -> Result<(), Refusal> {
                match self { $( Record::$variant(r) => r.apply(d, past, c, author), )* }
            }
        }

        $( impl From<$ty> for Record {
            fn from(r: $ty) -> Record {
                Record::$variant(r)
            }
        } )*
    };
}

records! {
    /// The founding record; its change hash is the community id.
    Genesis(Box<Genesis>),
    /// A newcomer's request to join.
    Join(Box<Join>),
    /// A further device of an existing member.
    Device(Box<Device>),
    /// A member revokes one of their devices.
    DeviceRevoke(DeviceRevoke),
    /// A vouch for a newcomer.
    Vouch(Vouch),
    /// The founder's removal of a member (refused since governance).
    Remove(Remove),
    /// A member's new display name.
    Rename(Rename),
    /// An hour attestation.
    Attest(Attest),
    /// The receiver confirms an attestation.
    Confirm(Confirm),
    /// The receiver declines an attestation.
    Decline(Decline),
    /// A proposal for Support Points.
    Proposal(Proposal),
    /// The proposer closes a proposal.
    Close(Close),
    /// Support Points locked on a proposal.
    Allocate(Allocate),
    /// A mutual-aid request.
    AidRequest(Box<AidRequest>),
    /// An offer of help.
    AidOffer(AidOffer),
    /// The requester accepts an offer.
    AidAccept(AidAccept),
    /// One party confirms the aid.
    AidConfirm(AidConfirm),
    /// The requester cancels.
    AidCancel(AidCancel),
    /// An abuse report.
    Report(Report),
    /// A moderator hides a record.
    Hide(Hide),
    /// A decision put to the vote.
    Decision(Box<Decision>),
    /// A vote.
    Vote(Vote),
    /// The close of a vote.
    Tally(Tally),
    /// A member's visibility setting.
    Visibility(VisibilitySetting),
    /// A collective purchase.
    Purchase(Box<Purchase>),
    /// A commitment to a purchase round.
    PurchaseCommit(PurchaseCommit),
    /// A supplier's bid.
    PurchaseBid(PurchaseBid),
    /// The coordinator's step in a round.
    PurchaseStep(RoundStep),
    /// A participant's payment or pickup.
    PurchaseMark(RoundMark),
    /// An investment pool or relief fund.
    Pool(Pool),
    /// A pledge to a pool.
    Contribution(Contribution),
    /// A treasurer confirms a pledge.
    ContributionConfirm(ContributionConfirm),
    /// An application to a pool.
    Application(Application),
    /// A disbursement to an application.
    Disbursement(Disbursement),
    /// Money coming back.
    Return(Return),
    /// A request to a relief fund.
    ReliefRequest(ReliefRequest),
    /// A steward's approval of a relief request.
    ReliefApprove(ReliefApprove),
}

// The kinds whose records are larger than an hour attestation are boxed, so that a
// `Record` is as small as the common kinds (104 bytes, not 272: a ledger holds one per
// change). Each converts from its plain struct too.
macro_rules! boxed_from {
    ($($variant:ident),*) => {
        $( impl From<$variant> for Record {
            fn from(r: $variant) -> Record {
                Record::$variant(Box::new(r))
            }
        } )*
    };
}

boxed_from!(Genesis, Join, Device, AidRequest, Decision, Purchase);

impl<T: Rule> Rule for Box<T> {
    const NEEDS_ADMISSION: bool = T::NEEDS_ADMISSION;

    fn apply(
        &self,
        d: &mut Derived,
        past: Past<'_>,
        c: &Ctx<'_>,
        author: MemberId,
    ) -> Result<(), Refusal> {
        (**self).apply(d, past, c, author)
    }
}

impl std::fmt::Display for Kind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::str::FromStr for Kind {
    type Err = String;
    fn from_str(s: &str) -> Result<Kind, String> {
        Kind::ALL
            .iter()
            .find(|k| k.as_str() == s)
            .copied()
            .ok_or_else(|| {
                let names: Vec<&str> = Kind::ALL.iter().map(|k| k.as_str()).collect();
                format!("unknown record kind {s:?}; kinds are: {}", names.join(", "))
            })
    }
}

impl PartialEq<str> for Kind {
    fn eq(&self, other: &str) -> bool {
        self.as_str() == other
    }
}

impl PartialEq<&str> for Kind {
    fn eq(&self, other: &&str) -> bool {
        self.as_str() == *other
    }
}

impl Record {
    /// The kind's name: the first segment of the root key, and the name `coop ledger
    /// --kind` takes.
    pub fn kind(&self) -> &'static str {
        self.kind_of().as_str()
    }

    /// Whether this is a device's first record (the certificate that binds it to a member).
    pub fn is_certificate(&self) -> bool {
        matches!(
            self,
            Record::Genesis(_) | Record::Join(_) | Record::Device(_)
        )
    }

    /// The member a certificate record binds its device to.
    pub fn certified_member(&self) -> Option<MemberId> {
        match self {
            Record::Genesis(g) => Some(g.founder),
            Record::Join(j) => Some(j.member),
            Record::Device(d) => Some(d.member),
            _ => None,
        }
    }

    /// The root key of this record when written as change `seq` of `device`.
    pub fn root_key(&self, device: &DeviceId, seq: u64) -> String {
        format!("{}/{}/{}", self.kind(), device.to_hex(), seq)
    }

    /// The layout fields, the version `v` first.
    pub(crate) fn fields(&self) -> Vec<(&'static str, Field)> {
        let mut f = vec![("v", Field::Int(LAYOUT_VERSION as i64))];
        self.put_fields(&mut f);
        f
    }

    /// The record's fields as the layout stores them, the version `v` first: what a change
    /// carrying this record puts into its record map (tools and tests that build changes
    /// by hand use this rather than a copy of the layout).
    pub fn layout(&self) -> Vec<(&'static str, ScalarValue)> {
        self.fields()
            .into_iter()
            .map(|(k, v)| (k, v.into_scalar()))
            .collect()
    }

    /// Builds the Automerge change that carries this record as change `seq` of `device`,
    /// with the given first op counter, dependencies and author-claimed time.
    ///
    /// The change is built directly from its operations (no document transaction), so
    /// authoring costs the same whatever the size of the document.
    pub(crate) fn to_change(
        &self,
        device: &DeviceId,
        seq: u64,
        start_op: NonZeroU64,
        mut deps: Vec<automerge::ChangeHash>,
        time: i64,
    ) -> automerge::Change {
        let actor = device.actor();
        let obj = ObjectId::Id(OpId::new(start_op.get(), &actor));
        let mut ops = vec![Op {
            action: OpType::Make(ObjType::Map),
            obj: ObjectId::Root,
            key: Key::Map(self.root_key(device, seq).into()),
            pred: SortedVec::new(),
            insert: false,
        }];
        for (k, v) in self.layout() {
            ops.push(Op {
                action: OpType::Put(v),
                obj: obj.clone(),
                key: Key::Map(k.into()),
                pred: SortedVec::new(),
                insert: false,
            });
        }
        deps.sort();
        automerge::Change::from(automerge::ExpandedChange {
            operations: ops,
            actor_id: actor,
            hash: None,
            seq,
            start_op,
            time,
            message: None,
            deps,
            extra_bytes: Vec::new(),
            author: None,
        })
    }

    /// Parses and validates a record from its kind and fields.
    pub(crate) fn from_fields(
        kind: &str,
        fields: &BTreeMap<String, Field>,
    ) -> Result<Record, RecordError> {
        let f = Fields(fields);
        match f.int("v")? {
            v if v == LAYOUT_VERSION as i64 => {}
            v => return Err(RecordError::Version(v)),
        }
        let rec = Record::decode(kind, &f)?;
        // Every field written must be one this kind knows: no smuggled extra data.
        let known: Vec<&str> = rec.fields().iter().map(|(k, _)| *k).collect();
        if let Some(extra) = fields.keys().find(|k| !known.contains(&k.as_str())) {
            return Err(RecordError::Unexpected(extra.clone()));
        }
        Ok(rec)
    }
}

/// Money in minor units as a decimal with two places (`1250` → `12.50`), the form people
/// read and the CLI parses. Every currency is shown with two places.
pub fn money(minor: i64) -> String {
    let sign = if minor < 0 { "-" } else { "" };
    let a = minor.unsigned_abs();
    format!("{sign}{}.{:02}", a / 100, a % 100)
}
