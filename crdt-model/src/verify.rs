//! The signature rule, ZIP215 (docs/PROTOCOL.md, "Signatures"), one signature at a time or
//! many at once: under ZIP215 a batch accepts exactly the signatures that single
//! verification accepts, so batching is a speed-up and never a change of rule.
//!
//! Batch verification multiplies each signature's equation by a random 128-bit coefficient.
//! This crate reads no randomness: the coefficients come from ChaCha20 seeded with
//! SHA-256 of a caller's seed and the batch's whole content, so a batch whose signatures are
//! not all valid passes only if someone predicts coefficients that depend on the very bytes
//! they choose (Fiat–Shamir); a secret seed (the node passes 32 random bytes once) takes even
//! that prediction away. Which signatures are accepted never depends on the seed: a batch
//! that fails is checked again one signature at a time.

use chacha20::rand_core::SeedableRng;
use chacha20::ChaCha20Rng;
use ed25519_zebra::{batch, Signature, VerificationKey, VerificationKeyBytes};
use sha2::{Digest, Sha256};

/// Domain tag of the hash that seeds a batch's coefficients.
const BATCH_DOMAIN: &[u8] = b"coop/batch-coefficients/v1";

/// One signature to check: the signer's public key, the signed message, the signature.
#[derive(Debug, Clone, Copy)]
pub struct SigItem<'a> {
    /// The signer's public key (32 bytes, as signed over and as carried).
    pub public: [u8; 32],
    /// The message that was signed.
    pub msg: &'a [u8],
    /// The signature, `R ‖ S`.
    pub sig: [u8; 64],
}

/// ZIP215 verification of one signature: `A` and `R` must decode as curve points
/// (non-canonical encodings accepted), `S` must be canonical (below the group order), and
/// the cofactored equation `[8][S]B = [8]R + [8][k]A` must hold.
///
/// This is the bare rule; [`crate::identity::verify`] adds coop's key rule (no small-order
/// keys) on top of it.
pub fn zip215(public: &[u8; 32], msg: &[u8], sig: &[u8; 64]) -> bool {
    VerificationKey::try_from(VerificationKeyBytes::from(*public))
        .and_then(|key| key.verify(&Signature::from_bytes(sig), msg))
        .is_ok()
}

/// ZIP215 verification of many signatures at once: the answer for each item is exactly
/// [`zip215`]'s. The batch equation is checked first; when it fails, every item is checked
/// on its own, so a bad signature costs its batch a second pass but changes no other answer.
///
/// `seed` is mixed with the batch's content to draw the coefficients (see the module
/// documentation); the answers do not depend on it.
pub fn zip215_batch(items: &[SigItem<'_>], seed: &[u8; 32]) -> Vec<bool> {
    match items {
        [] => return Vec::new(),
        [one] => return vec![zip215(&one.public, one.msg, &one.sig)],
        _ => {}
    }
    let prepared: Vec<batch::Item> = items
        .iter()
        .map(|i| {
            batch::Item::from((
                VerificationKeyBytes::from(i.public),
                Signature::from_bytes(&i.sig),
                i.msg,
            ))
        })
        .collect();
    let mut verifier = batch::Verifier::new();
    for item in &prepared {
        verifier.queue(item.clone());
    }
    if verifier.verify(batch_rng(items, seed)).is_ok() {
        return vec![true; items.len()];
    }
    prepared
        .into_iter()
        .map(|item| item.verify_single().is_ok())
        .collect()
}

/// The coefficient generator of one batch: ChaCha20 keyed with
/// SHA-256(domain ‖ seed ‖ every item's key, signature, message length and message).
fn batch_rng(items: &[SigItem<'_>], seed: &[u8; 32]) -> ChaCha20Rng {
    let mut h = Sha256::new();
    h.update(BATCH_DOMAIN);
    h.update(seed);
    for i in items {
        h.update(i.public);
        h.update(i.sig);
        h.update((i.msg.len() as u64).to_le_bytes());
        h.update(i.msg);
    }
    ChaCha20Rng::from_seed(h.finalize().into())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::identity::DeviceKey;

    type Signed = (Vec<[u8; 32]>, Vec<Vec<u8>>, Vec<[u8; 64]>);

    fn signed(n: usize) -> Signed {
        let keys: Vec<DeviceKey> = (0..4u8)
            .map(|i| DeviceKey::from_seed([i + 1; 32]))
            .collect();
        let msgs: Vec<Vec<u8>> = (0..n)
            .map(|i| format!("message {i}").into_bytes())
            .collect();
        let publics = (0..n).map(|i| keys[i % 4].device_id().0).collect();
        let sigs = (0..n).map(|i| keys[i % 4].sign(&msgs[i])).collect();
        (publics, msgs, sigs)
    }

    fn items<'a>(p: &[[u8; 32]], m: &'a [Vec<u8>], s: &[[u8; 64]]) -> Vec<SigItem<'a>> {
        (0..p.len())
            .map(|i| SigItem {
                public: p[i],
                msg: &m[i],
                sig: s[i],
            })
            .collect()
    }

    #[test]
    fn a_batch_of_good_signatures_passes_whole() {
        let (p, m, s) = signed(40);
        assert_eq!(zip215_batch(&items(&p, &m, &s), &[7; 32]), vec![true; 40]);
    }

    #[test]
    fn a_bad_signature_is_found_and_only_it_fails() {
        let (p, m, mut s) = signed(40);
        s[17][5] ^= 1;
        let got = zip215_batch(&items(&p, &m, &s), &[7; 32]);
        let want: Vec<bool> = (0..40).map(|i| i != 17).collect();
        assert_eq!(got, want);
    }

    #[test]
    fn the_seed_changes_no_answer() {
        let (p, m, mut s) = signed(12);
        s[3][40] ^= 4;
        let first = zip215_batch(&items(&p, &m, &s), &[0; 32]);
        for seed in 1..6u8 {
            assert_eq!(zip215_batch(&items(&p, &m, &s), &[seed; 32]), first);
        }
        assert_eq!(first.iter().filter(|ok| !**ok).count(), 1);
    }
}
