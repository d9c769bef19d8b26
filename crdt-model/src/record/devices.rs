//! A member's devices beyond their certificates: the revocation of a lost or retired
//! device, and the derived list of devices every certificate adds to. Rules: docs/RULES.md
//! R18 (devices and revocation) and R15 (forks).

use super::layout::{record_layout, Raw, Text};
use crate::envelope::{Refusal, RejectReason};
use crate::fold::{Ctx, Derived, Past, Rule};
use crate::ids::{DeviceId, MemberId};
use crate::state::DeviceInfo;

record_layout! {
    /// A member revokes one of their devices: its records outside this record's causal
    /// past stop counting, and it can write no more.
    "device_revoke" => pub struct DeviceRevoke {
        /// The device revoked.
        device: DeviceId = Raw,
        /// Why ("laptop stolen"); may be empty.
        reason: String = Text(0, 200),
    }
}

impl DeviceRevoke {
    pub(crate) fn summary(&self) -> String {
        if self.reason.is_empty() {
            format!("revoked device {}", self.device.short())
        } else {
            format!("revoked device {} ({})", self.device.short(), self.reason)
        }
    }
}

impl Rule for DeviceRevoke {
    fn apply(
        &self,
        d: &mut Derived,
        past: Past<'_>,
        c: &Ctx<'_>,
        author: MemberId,
    ) -> Result<(), Refusal> {
        let DeviceRevoke { device, .. } = self;
        let Some(info) = d.state.devices.get(device) else {
            return Err(Refusal::new(
                RejectReason::UnknownReference,
                format!("no device {} is certified", device.short()),
            ));
        };
        if info.member != author {
            return Err(Refusal::new(
                RejectReason::NotAllowed,
                "only the device's own member may revoke it".into(),
            ));
        }
        // The revocation names a device its writer knew: its certificate is in the past.
        if !past.precedes(&info.certificate, c) {
            return Err(Refusal::new(
                RejectReason::UnknownReference,
                format!(
                    "the certificate of device {} is not in this record's past",
                    device.short()
                ),
            ));
        }
        if d.fold.revoked.contains(device) {
            return Err(Refusal::new(
                RejectReason::Redundant,
                format!("device {} is already revoked", device.short()),
            ));
        }
        d.fold.revoked.insert(*device);
        if let Some(info) = d.state.devices.get_mut(device) {
            // Already set when this revocation was in force from the start of the pass.
            info.revoked_by.get_or_insert(c.id);
        }
        // The dry run folds a record with no place in the ledger: nothing to remember.
        if let Some(i) = past.position(&c.id) {
            d.fold.passed_revocations.insert(i);
        }
        Ok(())
    }
}

impl Derived {
    /// Registers the device of certificate `c` for `member` (docs/RULES.md R18).
    pub(crate) fn add_device(&mut self, c: &Ctx<'_>, member: MemberId, label: Option<String>) {
        let forked_at = self.fold.forked.get(&c.device).copied();
        // A revocation in force from the start of this pass (its record may sort later).
        let revoked_by = self
            .fold
            .revocations
            .get(&c.device)
            .and_then(|r| r.first())
            .map(|&(_, id)| id);
        self.state.devices.entry(c.device).or_insert(DeviceInfo {
            member,
            label,
            certificate: c.id,
            added: c.time,
            last_wrote: c.time,
            forked_at,
            revoked_by,
        });
    }

    /// Notes that a record of `device` claimed at `time` counted.
    pub(crate) fn device_wrote(&mut self, device: &DeviceId, time: i64) {
        if let Some(info) = self.state.devices.get_mut(device) {
            info.last_wrote = info.last_wrote.max(time);
        }
    }
}
