//! Pairing a further device of a member, and the guard against writing as a device from a
//! copied data dir. Codes and files: docs/PROTOCOL.md, "Device pairing"; rules:
//! docs/RULES.md R18.
//!
//! Pairing moves no private key between machines: the new machine makes its device key and
//! shows a *request code* (its device id and a label); a device holding the member's
//! identity key checks it and answers with an *approval code* (the certificate it signed,
//! the community, the LAN key, known peers); the new machine writes its `device` record as
//! its first change once its ledger holds the member's admission.
//!
//! ```text
//! request  = "coopdev1" base64url-without-padding(version u8 (= 1) | device id [32]
//!            | label length u8 | label, UTF-8 | check)
//! approval = "coopok1" base64url-without-padding(version u8 (= 1) | community [32]
//!            | member [32] | device id [32] | certificate [64] | flags u8 (bit 0: LAN key)
//!            | [LAN key [32]] | name length u8 | display name | label length u8 | label
//!            | peer count u8 | (length u16 big-endian | multiaddr)* | check)
//! check    = the first 4 bytes of SHA-256 of what precedes it
//! ```
//! The approval carries the LAN key: it is for the member's own machine only.

use std::fs;
use std::path::Path;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use coop_model::identity::verify_cert;
use coop_model::{record, CommunityId, DeviceId, IdentityKey, MemberId, Record};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::datadir::{Config, DataDir, CONFIG_VERSION};
use crate::error::NodeError;

/// The text that starts every request code (also its format version).
pub const REQUEST_PREFIX: &str = "coopdev1";
/// The text that starts every approval code (also its format version).
pub const APPROVAL_PREFIX: &str = "coopok1";
/// The text that starts every recovery request code (docs/RULES.md R19).
pub const RECOVERY_REQUEST_PREFIX: &str = "cooprec1";
/// The text that starts every recovery answer: an approval code whose certificate the new
/// machine signs itself with its new identity key (the certificate bytes are zero).
pub const RECOVERY_ANSWER_PREFIX: &str = "cooprok1";
const VERSION: u8 = 1;
/// Most peer addresses one approval carries.
pub const MAX_PEERS: usize = 16;
const MAX_ADDR: usize = 512;
const MAX_CODE: usize = 16 * 1024;
/// Longest device label, in bytes of UTF-8 (the `device` record allows 64 characters).
const MAX_LABEL: usize = 64;

/// Why a pairing code could not be read.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[non_exhaustive]
pub enum CodeError {
    /// The code is damaged, cut short or not a code of this kind.
    #[error("invalid {kind} code: {why}")]
    Invalid {
        /// "request" or "approval".
        kind: &'static str,
        /// What is wrong, in a few words.
        why: String,
    },
}

/// What a new machine asks to be certified as.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Request {
    /// The new device's public key.
    pub device: DeviceId,
    /// Its label ("laptop"); may be empty.
    pub label: String,
}

/// What a device holding the identity key answers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Approval {
    /// The community.
    pub community: CommunityId,
    /// The member.
    pub member: MemberId,
    /// The new device.
    pub device: DeviceId,
    /// The identity key's certificate of the device for the community.
    pub cert: [u8; 64],
    /// The LAN pre-shared key, when the community uses one.
    pub psk: Option<[u8; 32]>,
    /// The member's display name.
    pub display_name: String,
    /// The device's label, as requested.
    pub label: String,
    /// Addresses of known peers (multiaddrs).
    pub peers: Vec<String>,
    /// The identity key that signed the certificate when it is not the member's own: a
    /// recovered member's new key (docs/RULES.md R19); `None` otherwise.
    pub identity: Option<MemberId>,
}

fn seal(prefix: &str, mut payload: Vec<u8>) -> String {
    let check = Sha256::digest(&payload);
    payload.extend_from_slice(&check[..4]);
    format!("{prefix}{}", URL_SAFE_NO_PAD.encode(payload))
}

fn open(kind: &'static str, prefix: &str, code: &str) -> Result<Vec<u8>, CodeError> {
    let bad = |why: &str| CodeError::Invalid {
        kind,
        why: why.to_string(),
    };
    let code = code.trim();
    if code.len() > MAX_CODE {
        return Err(bad("far too long"));
    }
    let Some(body) = code.strip_prefix(prefix) else {
        return Err(bad(&format!("it must start with {prefix:?}")));
    };
    let bytes = URL_SAFE_NO_PAD
        .decode(body)
        .map_err(|_| bad("not base64url text (was it cut or wrapped?)"))?;
    if bytes.len() <= 5 {
        return Err(bad("too short"));
    }
    let (payload, check) = bytes.split_at(bytes.len() - 4);
    if Sha256::digest(payload)[..4] != *check {
        return Err(bad("checksum mismatch (was it copied completely?)"));
    }
    if payload[0] != VERSION {
        return Err(bad(&format!(
            "version {}, this coop reads version {VERSION}",
            payload[0]
        )));
    }
    Ok(payload[1..].to_vec())
}

struct Reader<'a> {
    kind: &'static str,
    rest: &'a [u8],
}

impl<'a> Reader<'a> {
    fn bad(&self, why: &str) -> CodeError {
        CodeError::Invalid {
            kind: self.kind,
            why: why.to_string(),
        }
    }
    fn take(&mut self, n: usize) -> Result<&'a [u8], CodeError> {
        if self.rest.len() < n {
            return Err(self.bad("cut short"));
        }
        let (head, tail) = self.rest.split_at(n);
        self.rest = tail;
        Ok(head)
    }
    fn u8(&mut self) -> Result<u8, CodeError> {
        Ok(self.take(1)?[0])
    }
    fn array<const N: usize>(&mut self) -> Result<[u8; N], CodeError> {
        let mut out = [0u8; N];
        out.copy_from_slice(self.take(N)?);
        Ok(out)
    }
    fn text(&mut self, len: usize, what: &str) -> Result<String, CodeError> {
        let b = self.take(len)?;
        let s = std::str::from_utf8(b).map_err(|_| self.bad(&format!("{what} is not UTF-8")))?;
        if s.chars().any(char::is_control) {
            return Err(self.bad(&format!("{what} holds control characters")));
        }
        Ok(s.to_string())
    }
    fn end(&self) -> Result<(), CodeError> {
        if self.rest.is_empty() {
            Ok(())
        } else {
            Err(self.bad("trailing bytes"))
        }
    }
}

/// Checks a device label: at most 64 printable characters (empty means none).
pub fn check_label(label: &str) -> Result<String, NodeError> {
    let l = label.trim();
    if l.len() > MAX_LABEL || l.chars().any(char::is_control) {
        return Err(NodeError::InvalidInput(
            "a device label is at most 64 printable characters".into(),
        ));
    }
    Ok(l.to_string())
}

impl Request {
    /// The code.
    pub fn encode(&self) -> String {
        let mut p = vec![VERSION];
        p.extend_from_slice(&self.device.0);
        let label = truncate(&self.label, MAX_LABEL);
        p.push(label.len() as u8);
        p.extend_from_slice(label.as_bytes());
        seal(REQUEST_PREFIX, p)
    }

    /// Parses a code.
    pub fn decode(code: &str) -> Result<Request, CodeError> {
        let payload = open("request", REQUEST_PREFIX, code)?;
        let mut r = Reader {
            kind: "request",
            rest: &payload,
        };
        let device = DeviceId(r.array()?);
        let n = r.u8()? as usize;
        if n > MAX_LABEL {
            return Err(r.bad("label too long"));
        }
        let label = r.text(n, "the label")?;
        r.end()?;
        Ok(Request { device, label })
    }
}

/// The longest prefix of `s` of at most `max` bytes that ends on a character boundary.
fn truncate(s: &str, max: usize) -> &str {
    let mut end = s.len().min(max);
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    &s[..end]
}

impl Approval {
    /// The code.
    pub fn encode(&self) -> String {
        let mut p = vec![VERSION];
        p.extend_from_slice(&self.community.0);
        p.extend_from_slice(&self.member.0);
        p.extend_from_slice(&self.device.0);
        p.extend_from_slice(&self.cert);
        // Flags: bit 0, the LAN key follows; bit 1, the signing identity key follows.
        p.push(u8::from(self.psk.is_some()) | (u8::from(self.identity.is_some()) << 1));
        if let Some(k) = &self.psk {
            p.extend_from_slice(k);
        }
        if let Some(i) = &self.identity {
            p.extend_from_slice(&i.0);
        }
        for s in [&self.display_name, &self.label] {
            let s = truncate(s, 255);
            p.push(s.len() as u8);
            p.extend_from_slice(s.as_bytes());
        }
        let peers: Vec<&String> = self
            .peers
            .iter()
            .filter(|a| a.len() <= MAX_ADDR)
            .take(MAX_PEERS)
            .collect();
        p.push(peers.len() as u8);
        for a in peers {
            p.extend_from_slice(&(a.len() as u16).to_be_bytes());
            p.extend_from_slice(a.as_bytes());
        }
        seal(APPROVAL_PREFIX, p)
    }

    /// The recovery answer for a member's new machine: this approval without a
    /// certificate (the new machine signs its own with its new identity key).
    pub fn encode_recovery(&self) -> String {
        let code = Approval {
            cert: [0; 64],
            ..self.clone()
        }
        .encode();
        let body = code.strip_prefix(APPROVAL_PREFIX).unwrap_or(&code);
        let payload = URL_SAFE_NO_PAD.decode(body).unwrap_or_default();
        let payload = payload[..payload.len().saturating_sub(4)].to_vec();
        seal(RECOVERY_ANSWER_PREFIX, payload)
    }

    /// Parses a recovery answer (its certificate is zero: nothing to check yet).
    pub fn decode_recovery(code: &str) -> Result<Approval, CodeError> {
        let payload = open("recovery answer", RECOVERY_ANSWER_PREFIX, code)?;
        Self::decode_payload("recovery answer", &payload, false)
    }

    /// Parses a code and checks its certificate against the member and community it names.
    pub fn decode(code: &str) -> Result<Approval, CodeError> {
        let payload = open("approval", APPROVAL_PREFIX, code)?;
        Self::decode_payload("approval", &payload, true)
    }

    fn decode_payload(
        kind: &'static str,
        payload: &[u8],
        check_cert: bool,
    ) -> Result<Approval, CodeError> {
        let mut r = Reader {
            kind,
            rest: payload,
        };
        let community = CommunityId(r.array()?);
        let member = MemberId(r.array()?);
        let device = DeviceId(r.array()?);
        let cert: [u8; 64] = r.array()?;
        let flags = r.u8()?;
        if flags & !3 != 0 {
            return Err(r.bad(&format!("unknown flags {flags}")));
        }
        let psk = if flags & 1 != 0 {
            Some(r.array()?)
        } else {
            None
        };
        let identity = if flags & 2 != 0 {
            Some(MemberId(r.array()?))
        } else {
            None
        };
        let n = r.u8()? as usize;
        let display_name = r.text(n, "the display name")?;
        let n = r.u8()? as usize;
        if n > MAX_LABEL {
            return Err(r.bad("label too long"));
        }
        let label = r.text(n, "the label")?;
        let count = r.u8()? as usize;
        if count > MAX_PEERS {
            return Err(r.bad(&format!("{count} peers, at most {MAX_PEERS}")));
        }
        let mut peers = Vec::with_capacity(count);
        for _ in 0..count {
            let len = u16::from_be_bytes(r.array()?) as usize;
            if len > MAX_ADDR {
                return Err(r.bad("peer address too long"));
            }
            peers.push(r.text(len, "a peer address")?);
        }
        r.end()?;
        let signer = identity.unwrap_or(member);
        if check_cert && !verify_cert(&community, &signer, &device, &cert) {
            return Err(r.bad("its certificate is not signed by the member's identity key"));
        }
        Ok(Approval {
            community,
            member,
            device,
            cert,
            psk,
            display_name,
            label,
            peers,
            identity,
        })
    }
}

/// What a member's new machine asks a recovery decision to bind them to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecoveryRequest {
    /// The public half of the new identity key (kept on the new machine).
    pub identity: MemberId,
    /// The new machine's device.
    pub device: DeviceId,
    /// Its label; may be empty.
    pub label: String,
}

impl RecoveryRequest {
    /// The code (docs/PROTOCOL.md §15): `"cooprec1"` base64url of the version, the new
    /// identity key, the device id, the label's length and the label, and the check.
    pub fn encode(&self) -> String {
        let mut p = vec![VERSION];
        p.extend_from_slice(&self.identity.0);
        p.extend_from_slice(&self.device.0);
        let label = truncate(&self.label, MAX_LABEL);
        p.push(label.len() as u8);
        p.extend_from_slice(label.as_bytes());
        seal(RECOVERY_REQUEST_PREFIX, p)
    }

    /// Parses a code.
    pub fn decode(code: &str) -> Result<RecoveryRequest, CodeError> {
        let payload = open("recovery request", RECOVERY_REQUEST_PREFIX, code)?;
        let mut r = Reader {
            kind: "recovery request",
            rest: &payload,
        };
        let identity = MemberId(r.array()?);
        let device = DeviceId(r.array()?);
        let n = r.u8()? as usize;
        if n > MAX_LABEL {
            return Err(r.bad("label too long"));
        }
        let label = r.text(n, "the label")?;
        r.end()?;
        Ok(RecoveryRequest {
            identity,
            device,
            label,
        })
    }
}

fn recovery_key_path(dir: &DataDir) -> std::path::PathBuf {
    dir.root().join("recovery.key")
}

/// The new identity key a recovery request made here, if any (`recovery.key`, 0600). It
/// is kept apart from `identity.key`: this data dir acts for the recovered member, whose
/// id is not this key's.
pub fn recovery_key(dir: &DataDir) -> Result<Option<IdentityKey>, NodeError> {
    let path = recovery_key_path(dir);
    if !path.exists() {
        return Ok(None);
    }
    let text = fs::read_to_string(&path).map_err(|e| NodeError::io(&path, e))?;
    let mut seed = [0u8; 32];
    hex::decode_to_slice(text.trim(), &mut seed)
        .map_err(|_| NodeError::Corrupt(format!("{} is not a 32-byte hex key", path.display())))?;
    Ok(Some(IdentityKey::from_seed(seed)))
}

/// Puts a recovery key restored from a backup (`coop key restore`) back as `recovery.key`
/// (0600); nothing is replaced when one is there already.
pub fn restore_recovery_key(dir: &DataDir, key: &IdentityKey) -> Result<(), NodeError> {
    let path = recovery_key_path(dir);
    if path.exists() {
        return Ok(());
    }
    crate::datadir::write_secret(&path, &hex::encode(key.seed()))
}

/// A member's new machine, when every device and backup is lost (docs/RULES.md R19): a
/// device key and a new identity key (both kept if made before); returns the request a
/// recovery decision names.
pub fn recovery_request(
    dir: &DataDir,
    identity_seed: [u8; 32],
    device_seed: [u8; 32],
    label: &str,
) -> Result<RecoveryRequest, NodeError> {
    let r = request(dir, device_seed, label)?;
    let path = recovery_key_path(dir);
    if !path.exists() {
        crate::datadir::write_secret(&path, &hex::encode(identity_seed))?;
    }
    let identity = recovery_key(dir)?
        .ok_or_else(|| NodeError::Corrupt("recovery.key vanished".into()))?
        .member_id();
    Ok(RecoveryRequest {
        identity,
        device: r.device,
        label: r.label,
    })
}

/// The new machine takes a recovery answer: signs its own certificate with the new
/// identity key and makes the data dir the recovered member's. The certificate is written
/// once the ledger holds the passed recovery.
pub fn accept_recovery(dir: &DataDir, answer: &Approval) -> Result<(), NodeError> {
    let key = recovery_key(dir)?.ok_or_else(|| {
        NodeError::InvalidInput(format!(
            "{} holds no recovery key: run `coop device recover-request` here first",
            dir.root().display()
        ))
    })?;
    let approval = Approval {
        cert: key.certify(&answer.community, &answer.device),
        identity: Some(key.member_id()),
        ..answer.clone()
    };
    adopt(dir, &approval)
}

/// A new machine's half of pairing, step 1: the data dir gets a device key (kept if the
/// request was made before) and nothing else; returns the request.
pub fn request(dir: &DataDir, device_seed: [u8; 32], label: &str) -> Result<Request, NodeError> {
    let label = check_label(label)?;
    if dir.root().join("config.json").exists() {
        return Err(NodeError::AlreadyInitialized(dir.root().to_path_buf()));
    }
    fs::create_dir_all(dir.root()).map_err(|e| NodeError::io(dir.root(), e))?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        fs::set_permissions(dir.root(), fs::Permissions::from_mode(0o700))
            .map_err(|e| NodeError::io(dir.root(), e))?;
    }
    let key = dir.root().join("device.key");
    if !key.exists() {
        crate::datadir::write_secret(&key, &hex::encode(device_seed))?;
    }
    Ok(Request {
        device: dir.device()?.device_id(),
        label,
    })
}

/// The key this data dir certifies new devices with, and the member they are for: the
/// identity key, or on a recovered member's device the recovery key its certificate was
/// signed with (docs/RULES.md R19).
pub fn signer(dir: &DataDir) -> Result<(IdentityKey, MemberId), NodeError> {
    if let Ok(identity) = dir.identity() {
        let id = identity.member_id();
        return Ok((identity, id));
    }
    match recovery_key(dir)? {
        Some(key) if pending(dir)?.is_none() => Ok((key, dir.member()?)),
        _ => Err(NodeError::InvalidInput(
            "this device holds no identity key: approve from a device that does".into(),
        )),
    }
}

/// A device holding the identity key approves a request: signs the certificate.
pub fn approve(
    identity: &IdentityKey,
    config: &Config,
    request: &Request,
    peers: Vec<String>,
) -> Result<Approval, NodeError> {
    approve_for(identity, identity.member_id(), config, request, peers)
}

/// As [`approve`], for `member`, whose identity key `identity` is since a recovery when it
/// is not their own.
pub fn approve_for(
    identity: &IdentityKey,
    member: MemberId,
    config: &Config,
    request: &Request,
    peers: Vec<String>,
) -> Result<Approval, NodeError> {
    let community = config.community.ok_or(NodeError::NoCommunity)?;
    let psk = match &config.psk {
        None => None,
        Some(h) => {
            let mut k = [0u8; 32];
            hex::decode_to_slice(h.trim(), &mut k).map_err(|_| {
                NodeError::Corrupt("the LAN key in config.json is not 32 bytes of hex".into())
            })?;
            Some(k)
        }
    };
    Ok(Approval {
        community,
        member,
        device: request.device,
        cert: identity.certify(&community, &request.device),
        psk,
        display_name: config.display_name.clone(),
        label: request.label.clone(),
        peers,
        identity: (identity.member_id() != member).then(|| identity.member_id()),
    })
}

/// The approved certificate a paired device writes as its first change (`pairing.json`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Pairing {
    /// The member.
    pub member: MemberId,
    /// The certificate, hex.
    pub cert: String,
    /// The label, if any.
    pub label: Option<String>,
    /// The new identity key that signed the certificate, for a device of a member
    /// recovered by decision (docs/RULES.md R19); absent for ordinary pairing.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub identity: Option<MemberId>,
}

impl Pairing {
    /// The `device` record to write.
    pub fn record(&self) -> Result<Record, NodeError> {
        let mut cert = [0u8; 64];
        hex::decode_to_slice(&self.cert, &mut cert)
            .map_err(|_| NodeError::Corrupt("pairing.json: the certificate is not hex".into()))?;
        Ok(Record::from(record::Device {
            member: self.member,
            cert,
            label: self.label.clone(),
            identity: self.identity,
        }))
    }
}

fn pairing_path(dir: &DataDir) -> std::path::PathBuf {
    dir.root().join("pairing.json")
}

/// The certificate waiting to be written, if pairing is not complete.
pub fn pending(dir: &DataDir) -> Result<Option<Pairing>, NodeError> {
    let path = pairing_path(dir);
    if !path.exists() {
        return Ok(None);
    }
    let text = fs::read_to_string(&path).map_err(|e| NodeError::io(&path, e))?;
    serde_json::from_str(&text)
        .map(Some)
        .map_err(|e| NodeError::Corrupt(format!("{}: {e}", path.display())))
}

/// Pairing is complete: the certificate is in the ledger.
pub fn done(dir: &DataDir) -> Result<(), NodeError> {
    let path = pairing_path(dir);
    match fs::remove_file(&path) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(NodeError::io(&path, e)),
        _ => Ok(()),
    }
}

/// The new machine's half, step 2: checks the approval is for this device, and makes the
/// data dir the member's (configuration, member id, the certificate to write).
pub fn accept(dir: &DataDir, approval: &Approval) -> Result<(), NodeError> {
    adopt(dir, approval)
}

fn adopt(dir: &DataDir, approval: &Approval) -> Result<(), NodeError> {
    let device = dir.device().map_err(|_| {
        NodeError::InvalidInput(format!(
            "{} has no device key: run `coop device request` here first",
            dir.root().display()
        ))
    })?;
    if device.device_id() != approval.device {
        return Err(NodeError::InvalidInput(format!(
            "this approval is for device {}, but this data dir is device {}",
            approval.device.short(),
            device.device_id().short()
        )));
    }
    if dir.root().join("config.json").exists() {
        let c = dir.config()?;
        if c.community != Some(approval.community) || dir.member()? != approval.member {
            return Err(NodeError::AlreadyInitialized(dir.root().to_path_buf()));
        }
    }
    let pairing = Pairing {
        member: approval.member,
        cert: hex::encode(approval.cert),
        label: (!approval.label.is_empty()).then(|| approval.label.clone()),
        identity: approval.identity,
    };
    let text = serde_json::to_string_pretty(&pairing)
        .map_err(|e| NodeError::Corrupt(format!("pairing: {e}")))?;
    let path = pairing_path(dir);
    fs::write(&path, text).map_err(|e| NodeError::io(&path, e))?;
    dir.remember_member(&approval.member)?;
    let config = Config {
        version: CONFIG_VERSION,
        display_name: approval.display_name.clone(),
        community: Some(approval.community),
        psk: approval.psk.map(hex::encode),
        peers: approval.peers.clone(),
        listen: Vec::new(),
        listen_port: None,
        relays: Vec::new(),
        ui_port: None,
    };
    dir.save_config(&config)?;
    Ok(())
}

// ---- The machine-id guard ----

/// The environment variable that overrides the platform's machine id (for tests, and for
/// platforms without one).
pub const MACHINE_ID_ENV: &str = "COOP_MACHINE_ID";

/// This machine's id: `COOP_MACHINE_ID`, else `/etc/machine-id` or
/// `/var/lib/dbus/machine-id` where they exist; `None` where the platform gives none.
pub fn machine_id() -> Option<String> {
    if let Ok(v) = std::env::var(MACHINE_ID_ENV) {
        let v = v.trim().to_string();
        return (!v.is_empty()).then_some(v);
    }
    ["/etc/machine-id", "/var/lib/dbus/machine-id"]
        .iter()
        .find_map(|p| fs::read_to_string(p).ok())
        .map(|s| s.trim().to_string())
        .filter(|s| !s.is_empty())
}

/// What `machine.id` holds for a machine id: a hash, so the data dir does not copy the id.
fn fingerprint(id: &str) -> String {
    let mut h = Sha256::new();
    h.update(b"coop/machine/v1");
    h.update(id.as_bytes());
    hex::encode(h.finalize())
}

fn machine_path(dir: &DataDir) -> std::path::PathBuf {
    dir.root().join("machine.id")
}

/// Refuses to write as this data dir's device from another machine than the one it was
/// made on (a copied or moved data dir writing as the old device forks it; docs/RULES.md
/// R15). A data dir that records no machine yet adopts `current`; without a machine id
/// there is nothing to check.
pub fn check_machine(dir: &DataDir, current: Option<&str>) -> Result<(), NodeError> {
    let Some(current) = current else {
        return Ok(());
    };
    let path = machine_path(dir);
    let mine = fingerprint(current);
    match fs::read_to_string(&path) {
        Ok(recorded) if recorded.trim() == mine => Ok(()),
        Ok(_) => Err(NodeError::OtherMachine(dir.root().to_path_buf())),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => record_machine(&path, &mine),
        Err(e) => Err(NodeError::io(&path, e)),
    }
}

/// `coop device moved`: this machine takes over the data dir's device (the old machine
/// must never write as it again).
pub fn adopt_machine(dir: &DataDir, current: Option<&str>) -> Result<(), NodeError> {
    let current = current.ok_or_else(|| {
        NodeError::InvalidInput("this platform gives no machine id: nothing to adopt".into())
    })?;
    record_machine(&machine_path(dir), &fingerprint(current))
}

fn record_machine(path: &Path, fingerprint: &str) -> Result<(), NodeError> {
    let tmp = path.with_extension("id.tmp");
    fs::write(&tmp, fingerprint).map_err(|e| NodeError::io(&tmp, e))?;
    fs::rename(&tmp, path).map_err(|e| NodeError::io(path, e))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn approval() -> Approval {
        let id = IdentityKey::from_seed([3; 32]);
        let device = coop_model::DeviceKey::from_seed([4; 32]).device_id();
        let community = CommunityId([5; 32]);
        Approval {
            community,
            member: id.member_id(),
            device,
            cert: id.certify(&community, &device),
            psk: Some([6; 32]),
            display_name: "Bob".into(),
            label: "laptop".into(),
            peers: vec!["/ip4/127.0.0.1/tcp/4001".into()],
            identity: None,
        }
    }

    #[test]
    fn codes_round_trip() {
        let r = Request {
            device: DeviceId([1; 32]),
            label: "laptop".into(),
        };
        let code = r.encode();
        assert!(code.starts_with(REQUEST_PREFIX));
        assert_eq!(Request::decode(&format!("  {code}\n")), Ok(r));
        let a = approval();
        assert_eq!(Approval::decode(&a.encode()), Ok(a.clone()));
        // A recovered member's device certifies with the new key, which the code names.
        let key = IdentityKey::from_seed([8; 32]);
        let recovered = Approval {
            cert: key.certify(&a.community, &a.device),
            identity: Some(key.member_id()),
            psk: None,
            ..a
        };
        assert_eq!(Approval::decode(&recovered.encode()), Ok(recovered.clone()));
        let wrong = Approval {
            identity: None,
            ..recovered
        };
        assert!(Approval::decode(&wrong.encode()).is_err());
    }

    #[test]
    fn recovery_codes_round_trip_and_are_not_pairing_codes() {
        let r = RecoveryRequest {
            identity: MemberId([7; 32]),
            device: DeviceId([8; 32]),
            label: "new laptop".into(),
        };
        let code = r.encode();
        assert!(code.starts_with(RECOVERY_REQUEST_PREFIX));
        assert_eq!(RecoveryRequest::decode(&code), Ok(r));
        assert!(Request::decode(&code).is_err());
        let a = approval();
        let answer = a.encode_recovery();
        assert!(answer.starts_with(RECOVERY_ANSWER_PREFIX));
        let back = Approval::decode_recovery(&answer).expect("decodes");
        assert_eq!(back.cert, [0; 64]);
        assert_eq!(
            (back.member, back.device, back.psk),
            (a.member, a.device, a.psk)
        );
        assert!(Approval::decode(&answer).is_err());
        assert!(Approval::decode_recovery(&a.encode()).is_err());
    }

    #[test]
    fn damaged_or_forged_codes_are_refused_with_a_reason() {
        let a = approval();
        let code = a.encode();
        let why = |r: Result<Approval, CodeError>| match r {
            Err(CodeError::Invalid { why, .. }) => why,
            Ok(_) => panic!("accepted"),
        };
        // One character changed in the middle: the checksum catches it.
        let mut chars: Vec<char> = code.chars().collect();
        let mid = chars.len() / 2;
        chars[mid] = if chars[mid] == 'A' { 'B' } else { 'A' };
        let typo: String = chars.into_iter().collect();
        assert!(why(Approval::decode(&typo)).contains("checksum"));
        assert!(why(Approval::decode("coopdev1AAAA")).contains("start with"));
        assert!(why(Approval::decode("coopok1!!!")).contains("base64url"));
        // A certificate signed by someone else's identity key, with a valid checksum.
        let mut forged = a.clone();
        forged.cert = IdentityKey::from_seed([9; 32]).certify(&a.community, &a.device);
        assert!(why(Approval::decode(&forged.encode())).contains("not signed"));
        // A request code is not an approval code, and the other way round.
        let r = Request {
            device: DeviceId([1; 32]),
            label: String::new(),
        };
        assert!(why(Approval::decode(&r.encode())).contains("start with"));
        assert!(Request::decode(&code).is_err());
    }

    #[test]
    fn a_data_dir_moved_to_another_machine_refuses_to_write_until_adopted() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let dir = DataDir::new(tmp.path().join("d"));
        dir.init("Bob", [1; 32], [2; 32]).expect("init");
        // No machine id on this platform: nothing to check.
        check_machine(&dir, None).expect("no id");
        // First write on machine A records it; A may write again.
        check_machine(&dir, Some("machine-a")).expect("adopted");
        check_machine(&dir, Some("machine-a")).expect("same machine");
        let recorded = fs::read_to_string(dir.root().join("machine.id")).expect("file");
        assert!(!recorded.contains("machine-a"), "only a hash is kept");
        // The same data dir on machine B is refused, naming the way out.
        let err = check_machine(&dir, Some("machine-b")).expect_err("moved");
        assert!(matches!(err, NodeError::OtherMachine(_)));
        assert!(err.to_string().contains("coop device request"));
        adopt_machine(&dir, Some("machine-b")).expect("adopt");
        check_machine(&dir, Some("machine-b")).expect("adopted");
        assert!(check_machine(&dir, Some("machine-a")).is_err());
    }
}
