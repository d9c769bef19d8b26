//! coop's ledger core: signed changes in, verified documents and derived state out.
//!
//! A pure library: no I/O, no clock, no randomness. Time, key seeds and the seed of
//! batch verification are arguments.
//!
//! - [`ids`]: identifier and amount newtypes.
//! - [`identity`]: identity and device keys, device certificates.
//! - [`verify`]: the signature rule (ZIP215), one signature at a time or in batches.
//! - [`envelope`]: the signed envelope format and the named reasons for refusal.
//! - [`record`]: the ledger records and their Automerge layout.
//! - [`gate`]: the stateless gate rules (decode within caps, signature, write rules).
//! - [`ledger`]: ingest with dependency buffering and equivocation, catch-up sync, authoring.
//! - [`state`]: the derived state of a community and its queries.
//! - `derive` (private): the deterministic fold into [`State`]; the rules of each record kind sit
//!   with the kind in [`record`].
//! - [`derived_cache`]: the derived state as cache bytes, checked against the ledger it is
//!   installed in.
//! - [`receipt`]: two-party hour receipts that verify on their own.
//! - [`metrics`]: community metrics (docs/RULES.md R11), pure functions of a state and `now`.
//! - [`export`]: the records a member may see (docs/RULES.md R10), with their receipts.
//! - [`seal`]: text sealed to a set of members (relief reasons for the stewards).

// `Rejection` is a value on the refusal path (an id, two keys and a reason); boxing it
// would cost every caller clarity for no measurable gain.
#![allow(clippy::result_large_err)]

mod causal;
mod derive;
pub mod derived_cache;
pub mod envelope;
pub mod export;
mod fold;
pub mod gate;
mod graph;
pub mod identity;
pub mod ids;
pub mod ledger;
pub mod log_cache;
pub mod metrics;
#[cfg(feature = "openapi")]
mod openapi;
pub mod params;
pub mod query;
pub mod receipt;
pub mod record;
pub mod seal;
pub mod state;
pub mod terms;
pub mod verify;

pub use envelope::{Envelope, RejectReason, Rejection};
pub use identity::{DeviceKey, IdentityKey};
pub use ids::{CommunityId, Day, DeviceId, DocId, MemberId, Minutes, Points, RecordId};
pub use ledger::{EquivocationProof, Ledger, Outcome, SyncClock};
pub use params::Params;
pub use receipt::{Receipt, ReceiptError, ReceiptSummary};
pub use record::{Kind, Record};
pub use state::{Balance, LookupError, State};
