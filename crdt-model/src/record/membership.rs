//! Membership records: the genesis, join requests, further devices, vouches and the old
//! founder's removal. Rules: docs/RULES.md, "Membership and admission".

use super::layout::{record_layout, Codec, Field, Fields, Raw, RecordError, Text};
use crate::ids::MemberId;
use crate::params::{Params, PARAM_NAMES};

record_layout! {
    /// The founding record; its change hash is the community id.
    "genesis" => pub struct Genesis {
        /// Community name.
        name: String = Text(1, 100),
        /// The founder's identity.
        founder: MemberId = Raw,
        /// The founder's display name.
        display_name: String = Text(1, 64),
        /// The founder's certificate of this (first) device, for the all-zero community.
        #[serde(with = "super::layout::hex_bytes")]
        cert: [u8; 64] = Raw,
        /// Initial parameters, one field per parameter (text form).
        params: Params = ParamFields,
    }
}

record_layout! {
    /// A newcomer's request to join, written by their first device.
    "join" => pub struct Join {
        /// The newcomer's identity.
        member: MemberId = Raw,
        /// Identity certificate of the writing device.
        #[serde(with = "super::layout::hex_bytes")]
        cert: [u8; 64] = Raw,
        /// Display name.
        display_name: String = Text(1, 64),
    }
}

record_layout! {
    /// A further device of an existing member, written by that device first.
    "device" => pub struct Device {
        /// The member.
        member: MemberId = Raw,
        /// Identity certificate of the writing device.
        #[serde(with = "super::layout::hex_bytes")]
        cert: [u8; 64] = Raw,
    }
}

record_layout! {
    /// A vouch admitting (with others) a newcomer.
    "vouch" => pub struct Vouch {
        /// The newcomer.
        member: MemberId = Raw,
    }
}

record_layout! {
    /// The founder's removal of a member, from before governance: always refused now
    /// (members are removed by decision), kept so old ledgers still decode.
    "remove" => pub struct Remove {
        /// The member removed.
        member: MemberId = Raw,
        /// Why.
        reason: String = Text(0, 500),
    }
}

/// The genesis carries every parameter as its own text field, named as the parameter.
#[derive(Debug, Clone, Copy)]
pub(crate) struct ParamFields;

impl Codec<Params> for ParamFields {
    fn put(&self, _: &'static str, v: &Params, out: &mut Vec<(&'static str, Field)>) {
        for (k, v) in v.entries() {
            out.push((k, Field::Str(v)));
        }
    }
    fn take(&self, f: &Fields<'_>, _: &'static str) -> Result<Params, RecordError> {
        let mut params = Params::default();
        for k in PARAM_NAMES {
            let v = Text(0, 4096).take(f, k)?;
            params.set(k, &v).map_err(|e| RecordError::Invalid {
                field: k,
                reason: e.to_string(),
            })?;
        }
        Ok(params)
    }
}

impl Genesis {
    pub(super) fn summary(&self) -> String {
        format!("founded {:?}", self.name)
    }
}

impl Join {
    pub(super) fn summary(&self) -> String {
        format!("asked to join as {:?}", self.display_name)
    }
}

impl Device {
    pub(super) fn summary(&self) -> String {
        format!("new device for {}", self.member.short())
    }
}

impl Vouch {
    pub(super) fn summary(&self) -> String {
        format!("vouched for {}", self.member.short())
    }
}

impl Remove {
    pub(super) fn summary(&self) -> String {
        format!("removed {} ({})", self.member.short(), self.reason)
    }
}
