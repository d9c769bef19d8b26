//! Membership records: the genesis, join requests, further devices, vouches, a member's
//! change of display name and the old founder's removal. Rules: docs/RULES.md,
//! "Membership and admission".

use super::layout::{record_layout, Codec, Field, Fields, Opt, Raw, RecordError, Text};
use crate::ids::MemberId;
use crate::params::{Params, LATER_PARAMS, PARAM_NAMES};

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
        #[serde(with = "crate::ids::hex_bytes")]
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
        #[serde(with = "crate::ids::hex_bytes")]
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
        #[serde(with = "crate::ids::hex_bytes")]
        cert: [u8; 64] = Raw,
        /// The label its member gave the device when pairing it ("laptop"); optional, so
        /// records written before labels existed still decode.
        label: Option<String> = Opt(Text(1, 64)),
        /// The identity key that signed `cert` when it is not `member` itself: the key a
        /// recovery decision bound the member to (docs/RULES.md R19). Absent otherwise.
        identity: Option<MemberId> = Opt(Raw),
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

record_layout! {
    /// The author's new display name; the latest counted one in total order is in force.
    "rename" => pub struct Rename {
        /// The new display name: 1–64 characters on one line, no control characters, no
        /// space at either end.
        display_name: String = Name,
    }
}

/// A display name: [`Text`] of 1–64 characters on one line (no newline either), with no
/// white space at either end, so that two names that look the same are the same.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Name;

/// The longest display name, in characters.
pub const MAX_NAME_CHARS: usize = 64;

impl Codec<String> for Name {
    fn put(&self, name: &'static str, v: &String, out: &mut Vec<(&'static str, Field)>) {
        Text(1, MAX_NAME_CHARS).put(name, v, out)
    }
    fn take(&self, f: &Fields<'_>, name: &'static str) -> Result<String, RecordError> {
        let s = Text(1, MAX_NAME_CHARS).take(f, name)?;
        check_name(&s).map_err(|reason| RecordError::Invalid {
            field: name,
            reason: reason.into(),
        })?;
        Ok(s)
    }
}

/// Whether `s` may be a display name (docs/RULES.md R1, `rename`): 1–64 characters, one
/// line, no control characters, no white space at either end. The reason otherwise.
pub fn check_name(s: &str) -> Result<(), &'static str> {
    let n = s.chars().count();
    if n == 0 {
        return Err("a name cannot be empty");
    }
    if n > MAX_NAME_CHARS {
        return Err("a name has at most 64 characters");
    }
    if s.chars().any(char::is_control) {
        return Err("a name is one line with no control characters");
    }
    if s.trim() != s {
        return Err("a name cannot start or end with a space");
    }
    Ok(())
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
            // A genesis written before a later parameter existed lacks its field: the
            // parameter keeps its default rather than the record failing to decode.
            let v = if LATER_PARAMS.contains(&k) {
                match Opt(Text(0, 4096)).take(f, k)? {
                    Some(v) => v,
                    None => continue,
                }
            } else {
                Text(0, 4096).take(f, k)?
            };
            params.set(k, &v).map_err(|e| RecordError::Invalid {
                field: k,
                reason: e.to_string(),
            })?;
        }
        Ok(params)
    }
}

impl Genesis {
    pub(crate) fn summary(&self) -> String {
        format!("founded {:?}", self.name)
    }
}

impl Join {
    pub(crate) fn summary(&self) -> String {
        format!("asked to join as {:?}", self.display_name)
    }
}

impl Device {
    pub(crate) fn summary(&self) -> String {
        match &self.label {
            Some(l) => format!("new device {l:?} for {}", self.member.short()),
            None => format!("new device for {}", self.member.short()),
        }
    }
}

impl Vouch {
    pub(crate) fn summary(&self) -> String {
        format!("vouched for {}", self.member.short())
    }
}

impl Rename {
    pub(crate) fn summary(&self) -> String {
        format!("renamed themself {:?}", self.display_name)
    }
}

impl Remove {
    pub(crate) fn summary(&self) -> String {
        format!("removed {} ({})", self.member.short(), self.reason)
    }
}

// ---- Derivation rules (docs/RULES.md) ----

use super::Role;
use crate::envelope::{Refusal, RejectReason};
use crate::fold::{Ctx, Derived, Past, Rule};
use crate::ids::Points;
use crate::state::*;

impl Rule for Genesis {
    const NEEDS_ADMISSION: bool = false;

    fn apply(
        &self,
        d: &mut Derived,
        _graph: Past<'_>,
        c: &Ctx<'_>,
        _author: MemberId,
    ) -> Result<(), Refusal> {
        let forked = d.fold.forked.contains_key(&c.device);
        let Genesis {
            name,
            founder,
            display_name,
            params,
            ..
        } = self;
        d.fold.genesis = Some((c.dev, *founder));
        d.state.name = name.clone();
        d.state.founder = Some(*founder);
        d.state.params = params.clone();
        d.state.params_history = params
            .entries()
            .into_iter()
            .map(|(k, v)| ParamChange {
                at: c.id,
                decision: None,
                time: c.time,
                key: k.to_string(),
                value: v,
            })
            .collect();
        let m = d.member_entry(*founder, display_name);
        m.status = MemberStatus::Admitted;
        m.roles = vec![
            Role::Founder,
            Role::Moderator,
            Role::Steward,
            Role::Treasurer,
        ];
        m.devices.insert(c.device, forked);
        d.add_device(c, *founder, None);
        // Only admitted members hold SP (docs/RULES.md R1: unadmitted keys own nothing).
        let budget = params.sp_budget;
        for m in d.state.members.values_mut() {
            if m.status == MemberStatus::Admitted {
                m.sp.budget = Points(budget);
                m.sp.available = Points(budget) - m.sp.allocated;
            }
        }
        Ok(())
    }
}

impl Rule for Join {
    const NEEDS_ADMISSION: bool = false;

    fn apply(
        &self,
        d: &mut Derived,
        _graph: Past<'_>,
        c: &Ctx<'_>,
        _author: MemberId,
    ) -> Result<(), Refusal> {
        let forked = d.fold.forked.contains_key(&c.device);
        let Join {
            member,
            display_name,
            ..
        } = self;
        d.fold.joins.entry(*member).or_default().push(c.dev);
        let removed = d
            .state
            .members
            .get(member)
            .is_some_and(|m| m.status == MemberStatus::Removed);
        if removed {
            return Err(Refusal::new(
                RejectReason::RemovedMember,
                "removed members cannot rejoin".into(),
            ));
        }
        // A member's recovery key certifies that member's devices; it is no one's id.
        let recovery_key = d
            .state
            .members
            .values()
            .any(|m| m.recovered.is_some_and(|r| r.identity == *member));
        if recovery_key {
            return Err(Refusal::new(
                RejectReason::NotAllowed,
                format!(
                    "{} is a member's identity key since a recovery, not a newcomer",
                    member.short()
                ),
            ));
        }
        let m = d.member_entry(*member, display_name);
        m.devices.insert(c.device, forked);
        d.add_device(c, *member, None);
        Ok(())
    }
}

impl Rule for Device {
    fn apply(
        &self,
        d: &mut Derived,
        past: Past<'_>,
        c: &Ctx<'_>,
        _author: MemberId,
    ) -> Result<(), Refusal> {
        let forked = d.fold.forked.contains_key(&c.device);
        let Device {
            member,
            label,
            identity,
            ..
        } = self;
        // Which identity key may certify the member's devices here (docs/RULES.md R19).
        let recovered = d.state.members.get(member).and_then(|m| m.recovered);
        match (identity, recovered) {
            (Some(key), Some(r)) if *key == r.identity && past.precedes(&r.tally, c) => {}
            (Some(key), _) => {
                return Err(Refusal::new(
                    RejectReason::BadCertificate,
                    format!(
                        "certified by {}, which no recovery in this record's past made the \
                         identity key of {}",
                        key.short(),
                        member.short()
                    ),
                ))
            }
            (None, Some(r)) => {
                return Err(Refusal::new(
                    RejectReason::RecoveredIdentity,
                    format!(
                        "certified by the identity key the recovery closed by {} replaced",
                        r.tally.short()
                    ),
                ))
            }
            (None, None) => {}
        }
        if let Some(m) = d.state.members.get_mut(member) {
            m.devices.insert(c.device, forked);
        }
        d.add_device(c, *member, label.clone());
        Ok(())
    }
}

impl Rule for Vouch {
    fn apply(
        &self,
        d: &mut Derived,
        _graph: Past<'_>,
        c: &Ctx<'_>,
        author: MemberId,
    ) -> Result<(), Refusal> {
        let Vouch { member } = self;
        d.vouch(c, author, *member)
    }
}

impl Rule for Rename {
    /// docs/RULES.md R1, `rename`: a member renames only themself (the record names no
    /// member: its author is the subject); the name is refused `redundant` when it is
    /// already theirs and `not_allowed` when another member who is not removed bears it
    /// (compared without regard to case) at this position. Concurrent renames resolve by
    /// the total order: the latest counted one is in force.
    fn apply(
        &self,
        d: &mut Derived,
        _graph: Past<'_>,
        _c: &Ctx<'_>,
        author: MemberId,
    ) -> Result<(), Refusal> {
        let Rename { display_name } = self;
        let wanted = display_name.to_lowercase();
        let taken = d.state.members.values().any(|m| {
            m.id != author
                && m.status != MemberStatus::Removed
                && m.display_name.to_lowercase() == wanted
        });
        if taken {
            return Err(Refusal::new(
                RejectReason::NotAllowed,
                format!("another member is already called {display_name:?}"),
            ));
        }
        let Some(m) = d.state.members.get_mut(&author) else {
            return Err(Refusal::new(
                RejectReason::NotAMember,
                "the author is not a member".into(),
            ));
        };
        if m.display_name == *display_name {
            return Err(Refusal::new(
                RejectReason::Redundant,
                format!("already called {display_name:?}"),
            ));
        }
        m.display_name = display_name.clone();
        Ok(())
    }
}

impl Rule for Remove {
    fn apply(
        &self,
        _d: &mut Derived,
        _graph: Past<'_>,
        _c: &Ctx<'_>,
        _author: MemberId,
    ) -> Result<(), Refusal> {
        Err(Refusal::new(
            RejectReason::NotAllowed,
            "members are removed by decision (a removal decision that passes)".into(),
        ))
    }
}

impl Derived {
    pub(crate) fn vouch(
        &mut self,
        c: &Ctx<'_>,
        author: MemberId,
        member: MemberId,
    ) -> Result<(), Refusal> {
        if member == author {
            return Err(Refusal::new(
                RejectReason::NotAllowed,
                "cannot vouch for yourself".into(),
            ));
        }
        let joined = self
            .fold
            .joins
            .get(&member)
            .is_some_and(|devs| devs.iter().any(|d| c.seen(*d, 1)));
        if !joined {
            return Err(Refusal::new(
                RejectReason::UnknownReference,
                format!("no join request from {}", member.short()),
            ));
        }
        let list = self.fold.vouches.entry(member).or_default();
        if list.iter().any(|(_, _, v)| *v == author) {
            return Err(Refusal::new(
                RejectReason::Redundant,
                "already vouched".into(),
            ));
        }
        list.push((c.dev, c.seq, author));
        let count = list.len() as i64;
        // A young community cannot muster more vouches than it has members: the threshold
        // is `admission_vouches`, or the number of admitted members when that is smaller.
        let admitted = self
            .state
            .members
            .values()
            .filter(|m| m.status == MemberStatus::Admitted)
            .count() as i64;
        let needed = self.params().admission_vouches.min(admitted.max(1));
        let budget = self.params().sp_budget;
        if let Some(m) = self.state.members.get_mut(&member) {
            m.vouched_by.insert(author);
            if m.status == MemberStatus::Pending && count >= needed {
                m.status = MemberStatus::Admitted;
                m.sp.budget = Points(budget);
                m.sp.available = Points(budget) - m.sp.allocated;
                self.fold.admission_threshold.insert(member, needed);
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::super::layout::Field;
    use super::super::Record;
    use super::*;
    use std::collections::BTreeMap;

    fn fields_of(r: &Record) -> BTreeMap<String, Field> {
        r.fields()
            .into_iter()
            .map(|(k, v)| (k.to_string(), v))
            .collect()
    }

    #[test]
    fn records_written_before_recovery_existed_still_decode() {
        // A genesis as an older coop wrote it: no `recovery_wait_days` field. It decodes,
        // and the parameter takes its default.
        let g = Record::from(Genesis {
            name: "Elm Street".into(),
            founder: MemberId([1; 32]),
            display_name: "Alice".into(),
            cert: [2; 64],
            params: Params::default(),
        });
        let mut old = fields_of(&g);
        assert!(old.remove("recovery_wait_days").is_some());
        let Ok(Record::Genesis(back)) = Record::from_fields("genesis", &old) else {
            panic!("an old genesis must decode")
        };
        assert_eq!(
            back.params.recovery_wait_days,
            crate::params::DEFAULT_RECOVERY_WAIT_DAYS
        );
        // A device record without the recovery key decodes as an ordinary one.
        let d = Record::from(Device {
            member: MemberId([1; 32]),
            cert: [2; 64],
            label: Some("laptop".into()),
            identity: None,
        });
        let f = fields_of(&d);
        assert!(!f.contains_key("identity"));
        assert_eq!(Record::from_fields("device", &f).ok(), Some(d));
        // A genesis with a bad value for the new field is still refused.
        let mut bad = fields_of(&g);
        bad.insert("recovery_wait_days".into(), Field::Str("soon".into()));
        assert!(Record::from_fields("genesis", &bad).is_err());
    }
}
