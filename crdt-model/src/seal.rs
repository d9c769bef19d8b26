//! Sealed text: a short message (a relief request's reason) encrypted to a set of members,
//! so the shared ledger carries it without showing it to anyone else (docs/RULES.md R8–R9, docs/RULES.md R10).
//!
//! A member id is an ed25519 identity public key; its X25519 form is the birationally
//! equivalent Montgomery point (`VerifyingKey::to_montgomery`), and the matching secret is
//! `SigningKey::to_scalar_bytes` of the identity key. A fresh content key encrypts the text
//! (ChaCha20-Poly1305); for each recipient the content key is wrapped with a key derived
//! (HKDF-SHA256) from an X25519 exchange between a fresh ephemeral key and the recipient.
//!
//! ```text
//! offset  size    field
//! 0       1       version = 1
//! 1       32      ephemeral X25519 public key E
//! 33      12      nonce of the text
//! 45      1       N recipients, 1..=MAX_RECIPIENTS
//! 46      N × 80  per recipient, ascending by member id, no repeats:
//!                   32  member id M
//!                   48  ChaCha20-Poly1305(KEK_M, nonce 0, content key, aad = M)
//! 46+80N  L + 16  ChaCha20-Poly1305(content key, nonce, text, aad = bytes 0..46+80N)
//!
//! KEK_M = HKDF-SHA256(salt "coop/seal/v1", ikm X25519(e, X(M)), info E ‖ X(M) ‖ M)
//! ```
//!
//! Each KEK is used once (the ephemeral key is fresh for every seal), so its all-zero nonce
//! never repeats under one key. The text's tag covers the whole header, so moving, adding
//! or dropping a recipient entry is detected as tampering.
//!
//! This library draws no random numbers: the ephemeral secret, the content key and the
//! nonce are arguments ([`SealEntropy`]); callers fill them from the OS RNG. Parsing never
//! panics on malformed bytes and refuses anything over [`MAX_SEALED_BYTES`] first.

use chacha20poly1305::aead::{Aead, KeyInit, Payload};
use chacha20poly1305::{ChaCha20Poly1305, Key, Nonce};
use ed25519_dalek::{SigningKey, VerifyingKey};
use hkdf::Hkdf;
use sha2_011::Sha256;
use x25519_dalek::{PublicKey, StaticSecret};

use crate::identity::IdentityKey;
use crate::ids::MemberId;

/// The sealed format version.
pub const SEAL_VERSION: u8 = 1;
/// Most bytes of sealed text a record may carry.
pub const MAX_SEALED_BYTES: usize = 6144;
/// Most recipients of one sealed text.
pub const MAX_RECIPIENTS: usize = 48;
/// Most bytes of plain text that can be sealed.
pub const MAX_TEXT_BYTES: usize = 1000;

const HEADER: usize = 1 + 32 + 12 + 1;
const ENTRY: usize = 32 + 32 + TAG;
const TAG: usize = 16;
const SALT: &[u8] = b"coop/seal/v1";

/// The random bytes one seal consumes. Fill every field from a cryptographic RNG, afresh
/// for every seal: reusing them across two texts breaks the encryption.
#[derive(Clone)]
pub struct SealEntropy {
    /// The ephemeral X25519 secret.
    pub ephemeral: [u8; 32],
    /// The content key.
    pub content_key: [u8; 32],
    /// The nonce of the text.
    pub nonce: [u8; 12],
}

impl std::fmt::Debug for SealEntropy {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SealEntropy(..)")
    }
}

/// Why text could not be sealed or opened.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SealError {
    /// Sealing to nobody.
    #[error("no recipients to seal to")]
    NoRecipients,
    /// More recipients than the format holds.
    #[error("{0} recipients, at most {MAX_RECIPIENTS}")]
    TooManyRecipients(usize),
    /// Text longer than the cap, or empty.
    #[error("text of {0} bytes, expected 1 to {MAX_TEXT_BYTES}")]
    TextLength(usize),
    /// A recipient id that is not a usable public key.
    #[error("member {0} has no usable encryption key")]
    BadKey(String),
    /// Bytes that are not sealed text of this version.
    #[error("malformed sealed text: {0}")]
    Malformed(&'static str),
    /// The reader is not among the recipients.
    #[error("not sealed to this member")]
    NotARecipient,
    /// Authentication failed: the bytes were changed, or the key is not the recipient's.
    #[error("sealed text does not authenticate (tampered, or not this member's key)")]
    Tampered,
}

/// The X25519 public key of a member id.
fn x25519_public(member: &MemberId) -> Result<PublicKey, SealError> {
    let key = VerifyingKey::from_bytes(&member.0).map_err(|_| SealError::BadKey(member.short()))?;
    Ok(PublicKey::from(key.to_montgomery().to_bytes()))
}

fn kek(shared: &[u8; 32], ephemeral: &PublicKey, x: &PublicKey, member: &MemberId) -> Key {
    let mut info = Vec::with_capacity(96);
    info.extend_from_slice(ephemeral.as_bytes());
    info.extend_from_slice(x.as_bytes());
    info.extend_from_slice(&member.0);
    let mut okm = [0u8; 32];
    // 32 bytes is far below HKDF-SHA256's 8160-byte limit: expand cannot fail.
    let _ = Hkdf::<Sha256>::new(Some(SALT), shared).expand(&info, &mut okm);
    Key::from(okm)
}

/// Seals `text` to `recipients` (duplicates are dropped; order does not matter).
pub fn seal(
    text: &[u8],
    recipients: &[MemberId],
    entropy: &SealEntropy,
) -> Result<Vec<u8>, SealError> {
    if text.is_empty() || text.len() > MAX_TEXT_BYTES {
        return Err(SealError::TextLength(text.len()));
    }
    let mut to: Vec<MemberId> = recipients.to_vec();
    to.sort();
    to.dedup();
    if to.is_empty() {
        return Err(SealError::NoRecipients);
    }
    if to.len() > MAX_RECIPIENTS {
        return Err(SealError::TooManyRecipients(to.len()));
    }
    let secret = StaticSecret::from(entropy.ephemeral);
    let ephemeral = PublicKey::from(&secret);
    let mut out = Vec::with_capacity(HEADER + ENTRY * to.len() + text.len() + TAG);
    out.push(SEAL_VERSION);
    out.extend_from_slice(ephemeral.as_bytes());
    out.extend_from_slice(&entropy.nonce);
    out.push(to.len() as u8);
    for m in &to {
        let x = x25519_public(m)?;
        let shared = secret.diffie_hellman(&x);
        if !shared.was_contributory() {
            return Err(SealError::BadKey(m.short()));
        }
        let wrap = ChaCha20Poly1305::new(&kek(shared.as_bytes(), &ephemeral, &x, m));
        let wrapped = wrap
            .encrypt(
                &Nonce::default(),
                Payload {
                    msg: &entropy.content_key,
                    aad: &m.0,
                },
            )
            .map_err(|_| SealError::Malformed("content key did not encrypt"))?;
        out.extend_from_slice(&m.0);
        out.extend_from_slice(&wrapped);
    }
    let cipher = ChaCha20Poly1305::new(&Key::from(entropy.content_key));
    let sealed = cipher
        .encrypt(
            &Nonce::from(entropy.nonce),
            Payload {
                msg: text,
                aad: &out,
            },
        )
        .map_err(|_| SealError::Malformed("text did not encrypt"))?;
    out.extend_from_slice(&sealed);
    Ok(out)
}

/// The parts of sealed text, borrowed from its bytes.
struct Parsed<'a> {
    ephemeral: [u8; 32],
    nonce: [u8; 12],
    header: &'a [u8],
    entries: Vec<(MemberId, &'a [u8])>,
    text: &'a [u8],
}

fn parse(blob: &[u8]) -> Result<Parsed<'_>, SealError> {
    use SealError::Malformed;
    if blob.len() > MAX_SEALED_BYTES {
        return Err(Malformed("larger than the cap"));
    }
    if blob.len() < HEADER {
        return Err(Malformed("shorter than its header"));
    }
    if blob[0] != SEAL_VERSION {
        return Err(Malformed("unknown version"));
    }
    let n = blob[45] as usize;
    if n == 0 || n > MAX_RECIPIENTS {
        return Err(Malformed("recipient count out of range"));
    }
    let end = HEADER + n * ENTRY;
    let text_len = blob
        .len()
        .checked_sub(end + TAG)
        .ok_or(Malformed("shorter than its recipients and tag"))?;
    if text_len == 0 || text_len > MAX_TEXT_BYTES {
        return Err(Malformed("text length out of range"));
    }
    let mut entries = Vec::with_capacity(n);
    for i in 0..n {
        let at = HEADER + i * ENTRY;
        let mut m = [0u8; 32];
        m.copy_from_slice(&blob[at..at + 32]);
        let m = MemberId(m);
        if entries.last().is_some_and(|(prev, _)| *prev >= m) {
            return Err(Malformed("recipients not strictly ascending"));
        }
        entries.push((m, &blob[at + 32..at + ENTRY]));
    }
    let mut ephemeral = [0u8; 32];
    ephemeral.copy_from_slice(&blob[1..33]);
    let mut nonce = [0u8; 12];
    nonce.copy_from_slice(&blob[33..45]);
    Ok(Parsed {
        ephemeral,
        nonce,
        header: &blob[..end],
        entries,
        text: &blob[end..],
    })
}

/// The recipients of sealed text, ascending; an error when the bytes are not well formed.
/// Checks the structure only (no key is needed to read it).
pub fn recipients(blob: &[u8]) -> Result<Vec<MemberId>, SealError> {
    Ok(parse(blob)?.entries.into_iter().map(|(m, _)| m).collect())
}

/// Opens sealed text with a recipient's identity key.
pub fn open(blob: &[u8], identity: &IdentityKey) -> Result<Vec<u8>, SealError> {
    let p = parse(blob)?;
    let me = identity.member_id();
    let wrapped = p
        .entries
        .iter()
        .find(|(m, _)| *m == me)
        .map(|(_, w)| *w)
        .ok_or(SealError::NotARecipient)?;
    let secret = StaticSecret::from(SigningKey::from_bytes(&identity.seed()).to_scalar_bytes());
    let x = x25519_public(&me)?;
    let ephemeral = PublicKey::from(p.ephemeral);
    let shared = secret.diffie_hellman(&ephemeral);
    if !shared.was_contributory() {
        return Err(SealError::Tampered);
    }
    let unwrap = ChaCha20Poly1305::new(&kek(shared.as_bytes(), &ephemeral, &x, &me));
    let content_key = unwrap
        .decrypt(
            &Nonce::default(),
            Payload {
                msg: wrapped,
                aad: &me.0,
            },
        )
        .map_err(|_| SealError::Tampered)?;
    let content_key: [u8; 32] = content_key
        .as_slice()
        .try_into()
        .map_err(|_| SealError::Tampered)?;
    ChaCha20Poly1305::new(&Key::from(content_key))
        .decrypt(
            &Nonce::from(p.nonce),
            Payload {
                msg: p.text,
                aad: p.header,
            },
        )
        .map_err(|_| SealError::Tampered)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(n: u8) -> IdentityKey {
        IdentityKey::from_seed([n; 32])
    }

    fn entropy(n: u8) -> SealEntropy {
        SealEntropy {
            ephemeral: [n; 32],
            content_key: [n.wrapping_add(1); 32],
            nonce: [n.wrapping_add(2); 12],
        }
    }

    const REASON: &[u8] = b"The boiler broke and the landlord will not pay before March.";

    #[test]
    fn every_steward_opens_what_was_sealed_to_them() {
        let stewards = [key(1), key(2), key(3)];
        let ids: Vec<MemberId> = stewards.iter().map(IdentityKey::member_id).collect();
        let blob = seal(REASON, &ids, &entropy(9)).expect("seals");
        let mut sorted = ids.clone();
        sorted.sort();
        assert_eq!(recipients(&blob), Ok(sorted));
        assert_eq!(blob.len(), HEADER + 3 * ENTRY + REASON.len() + TAG);
        for s in &stewards {
            assert_eq!(open(&blob, s).as_deref(), Ok(REASON));
        }
        // The text is not in the blob in clear.
        assert!(!blob.windows(10).any(|w| w == &REASON[..10]));
    }

    #[test]
    fn a_member_the_text_was_not_sealed_to_cannot_open_it() {
        let ids = [key(1).member_id(), key(2).member_id()];
        let blob = seal(REASON, &ids, &entropy(9)).expect("seals");
        assert_eq!(open(&blob, &key(4)), Err(SealError::NotARecipient));

        // Nor by relabelling a recipient's entry with their own id: the wrapped key was not
        // made for their key, and the header the text authenticates changed.
        let outsider = key(4);
        let mut entries: Vec<([u8; 32], Vec<u8>)> = (0..2)
            .map(|i| {
                let at = HEADER + i * ENTRY;
                let mut m = [0u8; 32];
                m.copy_from_slice(&blob[at..at + 32]);
                (m, blob[at + 32..at + ENTRY].to_vec())
            })
            .collect();
        entries[0].0 = outsider.member_id().0;
        entries.sort();
        let mut forged = blob[..HEADER].to_vec();
        for (m, w) in &entries {
            forged.extend_from_slice(m);
            forged.extend_from_slice(w);
        }
        forged.extend_from_slice(&blob[HEADER + 2 * ENTRY..]);
        assert!(recipients(&forged).is_ok());
        assert_eq!(open(&forged, &outsider), Err(SealError::Tampered));
    }

    #[test]
    fn any_changed_byte_is_detected() {
        let stewards = [key(1), key(2)];
        let ids: Vec<MemberId> = stewards.iter().map(IdentityKey::member_id).collect();
        let blob = seal(REASON, &ids, &entropy(5)).expect("seals");
        for i in 0..blob.len() {
            let mut bad = blob.clone();
            bad[i] ^= 0x20;
            for s in &stewards {
                let r = open(&bad, s);
                assert!(
                    matches!(
                        r,
                        Err(SealError::Tampered
                            | SealError::Malformed(_)
                            | SealError::NotARecipient)
                    ),
                    "byte {i}: {r:?}"
                );
            }
        }
    }

    #[test]
    fn malformed_bytes_are_refused_without_panicking() {
        let blob = seal(REASON, &[key(1).member_id()], &entropy(3)).expect("seals");
        // A cut blob is malformed until only text bytes are missing; then the tag fails.
        for len in 0..blob.len() {
            if len <= HEADER + ENTRY + TAG {
                assert!(recipients(&blob[..len]).is_err(), "prefix of {len} bytes");
            }
            assert!(
                open(&blob[..len], &key(1)).is_err(),
                "prefix of {len} bytes"
            );
        }
        assert!(recipients(&vec![1u8; MAX_SEALED_BYTES + 1]).is_err());
        let mut zero = blob.clone();
        zero[45] = 0;
        assert_eq!(
            recipients(&zero),
            Err(SealError::Malformed("recipient count out of range"))
        );
        let mut v2 = blob.clone();
        v2[0] = 2;
        assert_eq!(
            recipients(&v2),
            Err(SealError::Malformed("unknown version"))
        );
        // A small-order ephemeral key gives no shared secret: refused, not a zero key.
        let mut small = blob;
        small[1..33].copy_from_slice(&[0; 32]);
        assert_eq!(open(&small, &key(1)), Err(SealError::Tampered));
        // Junk of every short length, and some longer, never panics.
        let mut x = 0x1234_5678_u32;
        for len in 0..300 {
            let junk: Vec<u8> = (0..len)
                .map(|_| {
                    x ^= x << 13;
                    x ^= x >> 17;
                    x ^= x << 5;
                    x as u8
                })
                .collect();
            let _ = recipients(&junk);
            let _ = open(&junk, &key(1));
        }
    }

    #[test]
    fn sealing_checks_its_inputs() {
        let one = [key(1).member_id()];
        assert_eq!(seal(b"", &one, &entropy(1)), Err(SealError::TextLength(0)));
        assert_eq!(
            seal(&[b'x'; MAX_TEXT_BYTES + 1], &one, &entropy(1)),
            Err(SealError::TextLength(MAX_TEXT_BYTES + 1))
        );
        assert_eq!(seal(REASON, &[], &entropy(1)), Err(SealError::NoRecipients));
        let many: Vec<MemberId> = (0..=MAX_RECIPIENTS as u8)
            .map(|n| key(n + 10).member_id())
            .collect();
        assert_eq!(
            seal(REASON, &many, &entropy(1)),
            Err(SealError::TooManyRecipients(MAX_RECIPIENTS + 1))
        );
        // The largest seal fits the cap.
        let blob = seal(
            &[b'x'; MAX_TEXT_BYTES],
            &many[..MAX_RECIPIENTS],
            &entropy(1),
        )
        .expect("the largest seal");
        assert!(blob.len() <= MAX_SEALED_BYTES);
        // Not a curve point: no encryption key.
        let mut not_point = None;
        for b in 0..=255u8 {
            if VerifyingKey::from_bytes(&[b; 32]).is_err() {
                not_point = Some(MemberId([b; 32]));
                break;
            }
        }
        let bad = not_point.expect("some byte pattern is not a point");
        assert!(matches!(
            seal(REASON, &[bad], &entropy(1)),
            Err(SealError::BadKey(_))
        ));
        // Duplicates collapse; the same entropy and recipients give the same bytes.
        let twice = seal(REASON, &[one[0], one[0]], &entropy(1)).expect("seals");
        assert_eq!(twice, seal(REASON, &one, &entropy(1)).expect("seals"));
    }
}
