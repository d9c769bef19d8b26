//! Keys: a member's long-term identity key and the per-device keys it certifies.
//!
//! Randomness is an argument: callers pass 32 fresh random bytes as a seed.
//! Keys sign with `ed25519-dalek`; every signature, of a change or of a certificate, is
//! checked with one rule (docs/PROTOCOL.md, "Signatures"): the key must be a curve point not
//! of small order, and the signature must verify under ZIP215 ([`crate::verify`]). Every
//! replica, verifying one signature at a time or in batches, accepts exactly the same ones.

use std::cell::RefCell;
use std::collections::HashMap;

use curve25519_dalek::edwards::CompressedEdwardsY;
use ed25519_dalek::{Signer, SigningKey};
use ed25519_zebra::{Signature, VerificationKey, VerificationKeyBytes};

use crate::ids::{CommunityId, DeviceId, MemberId};

/// Domain tag of a device certificate.
pub const DEVICE_CERT_DOMAIN: &[u8] = b"coop/device/v1";

/// A member's long-term identity key. It signs device certificates only.
#[derive(Clone)]
pub struct IdentityKey(SigningKey);

/// A device key: signs envelopes; its public half is the device's Automerge actor id.
#[derive(Clone)]
pub struct DeviceKey(SigningKey);

impl std::fmt::Debug for IdentityKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "IdentityKey({})", self.member_id().short())
    }
}

impl std::fmt::Debug for DeviceKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "DeviceKey({})", self.device_id().short())
    }
}

impl IdentityKey {
    /// The key for a 32-byte secret seed (pass fresh random bytes for a new key).
    pub fn from_seed(seed: [u8; 32]) -> Self {
        Self(SigningKey::from_bytes(&seed))
    }
    /// The secret seed, for storing in the data dir.
    pub fn seed(&self) -> [u8; 32] {
        self.0.to_bytes()
    }
    /// The member id this key stands for.
    pub fn member_id(&self) -> MemberId {
        MemberId(self.0.verifying_key().to_bytes())
    }
    /// Certifies `device` as one of this member's devices, for `community`.
    ///
    /// The founder's first device is certified before the community id exists; that
    /// certificate uses [`CommunityId`] of all zeroes and is carried by the genesis.
    pub fn certify(&self, community: &CommunityId, device: &DeviceId) -> [u8; 64] {
        self.0.sign(&cert_message(community, device)).to_bytes()
    }
}

impl DeviceKey {
    /// The key for a 32-byte secret seed (pass fresh random bytes for a new device).
    pub fn from_seed(seed: [u8; 32]) -> Self {
        Self(SigningKey::from_bytes(&seed))
    }
    /// The secret seed, for storing in the data dir.
    pub fn seed(&self) -> [u8; 32] {
        self.0.to_bytes()
    }
    /// The device id (and Automerge actor id) of this key.
    pub fn device_id(&self) -> DeviceId {
        DeviceId(self.0.verifying_key().to_bytes())
    }
    pub(crate) fn sign(&self, msg: &[u8]) -> [u8; 64] {
        self.0.sign(msg).to_bytes()
    }
}

fn cert_message(community: &CommunityId, device: &DeviceId) -> Vec<u8> {
    let mut m = Vec::with_capacity(DEVICE_CERT_DOMAIN.len() + 64);
    m.extend_from_slice(DEVICE_CERT_DOMAIN);
    m.extend_from_slice(&community.0);
    m.extend_from_slice(&device.0);
    m
}

/// Most parsed public keys one thread keeps (a community has far fewer devices).
const KEY_CACHE_MAX: usize = 4096;

thread_local! {
    /// Parsed public keys. Decompressing a key costs about a tenth of a verification, and a
    /// batch holds many changes of few devices. Parsing is a pure function of the bytes, so
    /// the cache changes no result; it is emptied when full.
    static KEYS: RefCell<HashMap<[u8; 32], Option<VerificationKey>>> = RefCell::new(HashMap::new());
}

/// Whether `public` may sign under coop's rule: the encoding of a curve point (ZIP215 takes
/// non-canonical encodings too) that is not of small order. Anyone can make signatures that
/// verify for a small-order key, so such a key would let anyone write as its device or
/// certify devices for its member; no real key is one.
pub fn usable_key(public: &[u8; 32]) -> bool {
    parsed_key(public).is_some()
}

/// The parsed key for `public` (`None` when it may not sign: see [`usable_key`]).
fn parsed_key(public: &[u8; 32]) -> Option<VerificationKey> {
    KEYS.with(|keys| {
        let mut keys = keys.borrow_mut();
        if let Some(k) = keys.get(public) {
            return *k;
        }
        if keys.len() >= KEY_CACHE_MAX {
            keys.clear();
        }
        let small_order = CompressedEdwardsY(*public)
            .decompress()
            .is_none_or(|p| p.is_small_order());
        let k = if small_order {
            None
        } else {
            VerificationKey::try_from(VerificationKeyBytes::from(*public)).ok()
        };
        keys.insert(*public, k);
        k
    })
}

/// Verifies an ed25519 signature under coop's rule: a [usable key](usable_key) and ZIP215.
/// Batches of change signatures are checked with [`crate::verify::zip215_batch`] after the
/// same key check, with the same answers.
pub fn verify(public: &[u8; 32], msg: &[u8], sig: &[u8; 64]) -> bool {
    let Some(key) = parsed_key(public) else {
        return false;
    };
    key.verify(&Signature::from_bytes(sig), msg).is_ok()
}

/// Checks that `member` certified `device` for `community`.
pub fn verify_cert(
    community: &CommunityId,
    member: &MemberId,
    device: &DeviceId,
    sig: &[u8; 64],
) -> bool {
    verify(&member.0, &cert_message(community, device), sig)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn certificates_bind_a_device_to_a_member_and_a_community() {
        let id = IdentityKey::from_seed([1; 32]);
        let dev = DeviceKey::from_seed([2; 32]).device_id();
        let c = CommunityId([3; 32]);
        let sig = id.certify(&c, &dev);
        assert!(verify_cert(&c, &id.member_id(), &dev, &sig));
        assert!(!verify_cert(
            &CommunityId([4; 32]),
            &id.member_id(),
            &dev,
            &sig
        ));
        let other = DeviceKey::from_seed([5; 32]).device_id();
        assert!(!verify_cert(&c, &id.member_id(), &other, &sig));
    }

    #[test]
    fn cached_keys_verify_as_fresh_ones() {
        let dev = DeviceKey::from_seed([9; 32]);
        let public = dev.device_id().0;
        let sig = dev.sign(b"message");
        for _ in 0..3 {
            assert!(verify(&public, b"message", &sig));
            assert!(!verify(&public, b"another message", &sig));
        }
        // Arbitrary bytes, points or not: the cached answer is the uncached one, every time.
        let mut not_points = 0;
        for b in 0..16u8 {
            let public = [b; 32];
            let fresh = VerificationKey::try_from(VerificationKeyBytes::from(public))
                .map(|k| k.verify(&Signature::from_bytes(&sig), b"message").is_ok())
                .ok();
            not_points += usize::from(fresh.is_none());
            for _ in 0..2 {
                assert_eq!(verify(&public, b"message", &sig), fresh.unwrap_or(false));
            }
        }
        assert!(
            not_points > 0,
            "some of the candidates are not curve points"
        );
    }

    #[test]
    fn a_small_order_key_is_refused_though_zip215_accepts_its_forgery() {
        // The identity point is a small-order key: with R the identity and S = 0 the
        // cofactored equation holds for any message, so ZIP215 alone accepts the forgery.
        let mut small = [0u8; 32];
        small[0] = 1;
        let mut sig = [0u8; 64];
        sig[0] = 1;
        assert!(crate::verify::zip215(&small, b"anything", &sig));
        assert!(!usable_key(&small));
        assert!(!verify(&small, b"anything", &sig));
        assert!(usable_key(&DeviceKey::from_seed([3; 32]).device_id().0));
    }
}
