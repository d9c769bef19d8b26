//! The identity key at rest: a passphrase-encrypted backup of it (`coop key backup` and
//! `coop key restore`), and removing it from a device that goes on acting through its
//! certificate (`coop key forget`). Format: docs/PROTOCOL.md, "Identity-key backup".
//!
//! ```text
//! file    = "coop-key-backup-v1\n" base64url-without-padding(header | ciphertext) "\n"
//! header  = version u8 (= 1) | kdf u8 (= 1: argon2id v1.3) | m_cost u32 (KiB, big-endian)
//!           | t_cost u32 | p_cost u32 | salt [16] | nonce [12] | member id [32]
//! cipher  = ChaCha20-Poly1305(key = argon2id(passphrase, salt), nonce, identity seed [32],
//!           aad = header)
//! ```
//!
//! Randomness (salt and nonce) is an argument; the caller draws it from the OS.

use std::fs;
use std::path::Path;

use argon2::{Algorithm, Argon2, Params, Version};
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use chacha20poly1305::aead::{Aead, KeyInit, Payload};
use chacha20poly1305::{ChaCha20Poly1305, Key, Nonce};
use coop_model::{IdentityKey, MemberId};

use crate::datadir::DataDir;
use crate::error::NodeError;

/// The first line of every backup file (also its format version).
pub const BACKUP_MAGIC: &str = "coop-key-backup-v1";
const VERSION: u8 = 1;
const KDF_ARGON2ID: u8 = 1;
const HEADER_LEN: usize = 1 + 1 + 12 + 16 + 12 + 32;
/// Argon2id memory cost written into new backups, KiB (64 MiB).
pub const M_COST: u32 = 64 * 1024;
/// Argon2id passes written into new backups.
pub const T_COST: u32 = 3;
/// Argon2id lanes written into new backups.
pub const P_COST: u32 = 1;
/// Most memory a backup may ask the KDF for, KiB: a file is not allowed to exhaust memory.
const MAX_M_COST: u32 = 1024 * 1024;
/// Most passes a backup may ask for.
const MAX_T_COST: u32 = 64;
/// Most lanes a backup may ask for.
const MAX_P_COST: u32 = 16;
/// Shortest passphrase accepted for a new backup, in characters.
pub const MIN_PASSPHRASE: usize = 8;

/// Why a backup could not be written or read.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum KeyError {
    /// The file is not a coop key backup, or is damaged.
    #[error("not a coop key backup: {0}")]
    Malformed(String),
    /// A backup of a later format.
    #[error("key backup version {0}; this coop reads version {VERSION}")]
    Version(u8),
    /// The passphrase does not open the backup (or the file was altered).
    #[error("wrong passphrase (or the backup file was altered)")]
    WrongPassphrase,
    /// The passphrase is too short for a new backup.
    #[error("the passphrase must be at least {MIN_PASSPHRASE} characters")]
    WeakPassphrase,
    /// The key derivation refused its parameters.
    #[error("key derivation: {0}")]
    Kdf(String),
}

/// The KDF cost parameters of a backup.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cost {
    /// Memory, KiB.
    pub m: u32,
    /// Passes.
    pub t: u32,
    /// Lanes.
    pub p: u32,
}

impl Default for Cost {
    fn default() -> Cost {
        Cost {
            m: M_COST,
            t: T_COST,
            p: P_COST,
        }
    }
}

fn derive_key(passphrase: &[u8], salt: &[u8; 16], cost: Cost) -> Result<[u8; 32], KeyError> {
    let params =
        Params::new(cost.m, cost.t, cost.p, Some(32)).map_err(|e| KeyError::Kdf(e.to_string()))?;
    let mut key = [0u8; 32];
    Argon2::new(Algorithm::Argon2id, Version::V0x13, params)
        .hash_password_into(passphrase, salt, &mut key)
        .map_err(|e| KeyError::Kdf(e.to_string()))?;
    Ok(key)
}

/// The backup file's text for `identity` under `passphrase`.
pub fn seal_backup(
    identity: &IdentityKey,
    passphrase: &str,
    salt: [u8; 16],
    nonce: [u8; 12],
    cost: Cost,
) -> Result<String, KeyError> {
    seal_backup_for(
        identity,
        identity.member_id(),
        passphrase,
        salt,
        nonce,
        cost,
    )
}

/// The backup file's text for the key `identity` that certifies `member`'s devices under
/// `passphrase`: the member's own identity key, or after a recovery by decision the new key
/// the decision bound them to (docs/RULES.md R19), whose public half is not their id. The
/// member id is in the authenticated header, so it cannot be changed without the passphrase.
pub fn seal_backup_for(
    identity: &IdentityKey,
    member: MemberId,
    passphrase: &str,
    salt: [u8; 16],
    nonce: [u8; 12],
    cost: Cost,
) -> Result<String, KeyError> {
    if passphrase.chars().count() < MIN_PASSPHRASE {
        return Err(KeyError::WeakPassphrase);
    }
    let mut header = Vec::with_capacity(HEADER_LEN);
    header.push(VERSION);
    header.push(KDF_ARGON2ID);
    for v in [cost.m, cost.t, cost.p] {
        header.extend_from_slice(&v.to_be_bytes());
    }
    header.extend_from_slice(&salt);
    header.extend_from_slice(&nonce);
    header.extend_from_slice(&member.0);
    let key = derive_key(passphrase.as_bytes(), &salt, cost)?;
    let cipher = ChaCha20Poly1305::new(Key::from_slice(&key));
    let sealed = cipher
        .encrypt(
            Nonce::from_slice(&nonce),
            Payload {
                msg: &identity.seed(),
                aad: &header,
            },
        )
        .map_err(|_| KeyError::Kdf("encryption failed".into()))?;
    header.extend_from_slice(&sealed);
    Ok(format!(
        "{BACKUP_MAGIC}\n{}\n",
        URL_SAFE_NO_PAD.encode(header)
    ))
}

/// The member a backup is for, without the passphrase.
pub fn backup_member(text: &str) -> Result<MemberId, KeyError> {
    let bytes = parse(text)?;
    Ok(MemberId(
        bytes[42..74]
            .try_into()
            .map_err(|_| KeyError::Malformed("cut short".into()))?,
    ))
}

fn parse(text: &str) -> Result<Vec<u8>, KeyError> {
    let mut lines = text.lines().map(str::trim).filter(|l| !l.is_empty());
    match lines.next() {
        Some(BACKUP_MAGIC) => {}
        Some(l) if l.starts_with("coop-key-backup-v") => {
            let v = l.trim_start_matches("coop-key-backup-v");
            return Err(KeyError::Version(v.parse().unwrap_or(u8::MAX)));
        }
        _ => {
            return Err(KeyError::Malformed(format!(
                "the first line is not {BACKUP_MAGIC:?}"
            )))
        }
    }
    let body = lines
        .next()
        .ok_or_else(|| KeyError::Malformed("no key line".into()))?;
    let bytes = URL_SAFE_NO_PAD
        .decode(body)
        .map_err(|_| KeyError::Malformed("the key line is not base64url text".into()))?;
    if bytes.len() != HEADER_LEN + 32 + 16 {
        return Err(KeyError::Malformed(format!(
            "{} bytes, expected {}",
            bytes.len(),
            HEADER_LEN + 48
        )));
    }
    if bytes[0] != VERSION {
        return Err(KeyError::Version(bytes[0]));
    }
    if bytes[1] != KDF_ARGON2ID {
        return Err(KeyError::Malformed(format!("unknown KDF {}", bytes[1])));
    }
    Ok(bytes)
}

/// Opens a backup of a member's own identity key with its passphrase; a backup of a
/// recovery key is refused (see [`open_backup_for`]).
pub fn open_backup(text: &str, passphrase: &str) -> Result<IdentityKey, KeyError> {
    let (identity, member) = open_backup_for(text, passphrase)?;
    if identity.member_id() != member {
        return Err(KeyError::Malformed(
            "the key does not match the member the file names".into(),
        ));
    }
    Ok(identity)
}

/// Opens a backup with its passphrase: the key and the member whose devices it certifies
/// (the key's own member, or the member a recovery bound it to).
pub fn open_backup_for(text: &str, passphrase: &str) -> Result<(IdentityKey, MemberId), KeyError> {
    let bytes = parse(text)?;
    let u32_at =
        |i: usize| u32::from_be_bytes([bytes[i], bytes[i + 1], bytes[i + 2], bytes[i + 3]]);
    let cost = Cost {
        m: u32_at(2),
        t: u32_at(6),
        p: u32_at(10),
    };
    if cost.m > MAX_M_COST || cost.t > MAX_T_COST || cost.p > MAX_P_COST {
        return Err(KeyError::Malformed(format!(
            "KDF costs {cost:?} beyond what this coop accepts"
        )));
    }
    let mut salt = [0u8; 16];
    salt.copy_from_slice(&bytes[14..30]);
    let (header, sealed) = bytes.split_at(HEADER_LEN);
    let key = derive_key(passphrase.as_bytes(), &salt, cost)?;
    let cipher = ChaCha20Poly1305::new(Key::from_slice(&key));
    let seed = cipher
        .decrypt(
            Nonce::from_slice(&header[30..42]),
            Payload {
                msg: sealed,
                aad: header,
            },
        )
        .map_err(|_| KeyError::WrongPassphrase)?;
    let seed: [u8; 32] = seed
        .try_into()
        .map_err(|_| KeyError::Malformed("the key is not 32 bytes".into()))?;
    let member = MemberId(
        header[42..74]
            .try_into()
            .map_err(|_| KeyError::Malformed("cut short".into()))?,
    );
    Ok((IdentityKey::from_seed(seed), member))
}

/// Writes a backup file (0600; refuses to replace an existing file).
pub fn write_backup(path: &Path, text: &str) -> Result<(), NodeError> {
    crate::datadir::write_secret(path, text)
}

/// Puts a restored identity key back into a data dir of the same member.
pub fn restore_identity(dir: &DataDir, identity: &IdentityKey) -> Result<(), NodeError> {
    let member = dir.member()?;
    if member != identity.member_id() {
        return Err(NodeError::InvalidInput(format!(
            "this backup holds the key of member {}, but this data dir is member {}",
            identity.member_id().short(),
            member.short()
        )));
    }
    let path = dir.root().join("identity.key");
    if path.exists() {
        return Ok(());
    }
    crate::datadir::write_secret(&path, &hex::encode(identity.seed()))
}

/// Puts a restored key back into a data dir of `member`: their identity key as
/// `identity.key`, or a recovery key (docs/RULES.md R19) as `recovery.key`.
pub fn restore_key(dir: &DataDir, key: &IdentityKey, member: MemberId) -> Result<(), NodeError> {
    if key.member_id() == member {
        return restore_identity(dir, key);
    }
    let here = dir.member()?;
    if here != member {
        return Err(NodeError::InvalidInput(format!(
            "this backup holds the recovery key of member {}, but this data dir is member {}",
            member.short(),
            here.short()
        )));
    }
    crate::device::restore_recovery_key(dir, key)
}

/// Removes the identity key from a data dir whose device is certified: the device goes
/// on writing as the member through its certificate, and a thief of the machine cannot
/// certify new devices. Refused while the device has no certificate in the ledger.
pub fn forget_identity(dir: &DataDir, certified: bool) -> Result<(), NodeError> {
    let path = dir.root().join("identity.key");
    if !path.exists() {
        return Err(NodeError::InvalidInput(
            "this device holds no identity key (already forgotten)".into(),
        ));
    }
    if !certified {
        return Err(NodeError::InvalidInput(
            "this device has no certificate in the ledger yet: forgetting the key now would \
             leave it unable to act as you"
                .into(),
        ));
    }
    // The public half stays, so the data dir still knows whose it is.
    dir.remember_member(&dir.member()?)?;
    fs::remove_file(&path).map_err(|e| NodeError::io(&path, e))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Cheap costs: the format and its checks, not the KDF's strength, are under test.
    const CHEAP: Cost = Cost { m: 64, t: 1, p: 1 };

    #[test]
    fn a_backup_round_trips_and_a_wrong_passphrase_is_refused() {
        let id = IdentityKey::from_seed([4; 32]);
        let text = seal_backup(&id, "correct horse", [1; 16], [2; 12], CHEAP).expect("sealed");
        assert!(text.starts_with(BACKUP_MAGIC));
        assert_eq!(backup_member(&text).expect("member"), id.member_id());
        let back = open_backup(&text, "correct horse").expect("opened");
        assert_eq!(back.seed(), id.seed());
        assert!(matches!(
            open_backup(&text, "wrong horse!"),
            Err(KeyError::WrongPassphrase)
        ));
    }

    #[test]
    fn altered_or_foreign_files_are_refused_with_a_reason() {
        let id = IdentityKey::from_seed([4; 32]);
        let text = seal_backup(&id, "correct horse", [1; 16], [2; 12], CHEAP).expect("sealed");
        let body = text.lines().nth(1).expect("body");
        let mut bytes = URL_SAFE_NO_PAD.decode(body).expect("b64");
        // A flipped bit in the member id (authenticated data) fails like a wrong passphrase.
        bytes[50] ^= 1;
        let altered = format!("{BACKUP_MAGIC}\n{}\n", URL_SAFE_NO_PAD.encode(&bytes));
        assert!(matches!(
            open_backup(&altered, "correct horse"),
            Err(KeyError::WrongPassphrase)
        ));
        assert!(matches!(
            open_backup("hello\nworld\n", "x"),
            Err(KeyError::Malformed(_))
        ));
        assert!(matches!(
            open_backup("coop-key-backup-v2\nAAAA\n", "x"),
            Err(KeyError::Version(2))
        ));
        let short = format!("{BACKUP_MAGIC}\nAAAA\n");
        assert!(matches!(
            open_backup(&short, "x"),
            Err(KeyError::Malformed(_))
        ));
        // A file asking the KDF for absurd memory is refused before deriving anything.
        let mut bytes = URL_SAFE_NO_PAD.decode(body).expect("b64");
        bytes[2..6].copy_from_slice(&u32::MAX.to_be_bytes());
        let greedy = format!("{BACKUP_MAGIC}\n{}\n", URL_SAFE_NO_PAD.encode(&bytes));
        assert!(matches!(
            open_backup(&greedy, "correct horse"),
            Err(KeyError::Malformed(_))
        ));
        assert!(matches!(
            seal_backup(&id, "short", [1; 16], [2; 12], CHEAP),
            Err(KeyError::WeakPassphrase)
        ));
    }

    #[test]
    fn a_recovery_key_backup_names_the_member_it_acts_for() {
        let key = IdentityKey::from_seed([7; 32]);
        let member = IdentityKey::from_seed([8; 32]).member_id();
        let text = seal_backup_for(&key, member, "correct horse", [1; 16], [2; 12], CHEAP)
            .expect("sealed");
        assert_eq!(backup_member(&text).expect("member"), member);
        let (back, whose) = open_backup_for(&text, "correct horse").expect("opened");
        assert_eq!((back.seed(), whose), (key.seed(), member));
        // Read as a member's own identity key, it is refused: its public half is not theirs.
        assert!(matches!(
            open_backup(&text, "correct horse"),
            Err(KeyError::Malformed(_))
        ));
        assert!(matches!(
            open_backup_for(&text, "wrong horse!"),
            Err(KeyError::WrongPassphrase)
        ));
    }
}
