//! Invite codes: one copy-pastable token carrying what a newcomer needs to join.
//!
//! ```text
//! code    = "coop1" base64url-without-padding( payload | check )
//! payload = version u8 (2; 1 is still read) | community id [32]
//!           | flags u8 (bit 0: LAN key follows) | [LAN key [32]]
//!           | peer count u8 | addr*            (peers)
//!           | relay count u8 | addr*           (version 2 only: community relays)
//! addr    = length u16 (big-endian) | multiaddr, UTF-8
//! check   = the first 4 bytes of SHA-256(payload): catches a code cut short or mistyped
//! ```
//! Decoding reads the format only; `coop join` then checks every address it carries
//! ([`Invite::check_addresses`]) and refuses the code with one line naming a bad one. The
//! one implementation of the format: `coop invite`/`coop join`, the app's settings page
//! (with its QR code) and the fuzz target all use this module.
//! The code is not secret-free: it carries the LAN pre-shared key, so share it only with
//! the neighbour you invite.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use coop_model::CommunityId;
use sha2::{Digest, Sha256};

/// Why an invite code does not decode: one line, "…".
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid invite code: {0}")]
pub struct InviteError(String);

type Result<T, E = InviteError> = std::result::Result<T, E>;

/// Returns an [`InviteError`] saying `$($t)*` unless `$cond` holds.
macro_rules! ensure {
    ($cond:expr, $($t:tt)*) => {
        if !$cond {
            return Err(InviteError(format!($($t)*)));
        }
    };
}

/// Returns an [`InviteError`] saying `$($t)*`.
macro_rules! bail {
    ($($t:tt)*) => {
        return Err(InviteError(format!($($t)*)))
    };
}

/// The text that starts every invite code (also its format version).
pub const PREFIX: &str = "coop1";
const VERSION: u8 = 2;
/// Most peer addresses one code carries.
pub const MAX_PEERS: usize = 16;
/// Most relay addresses one code carries.
pub const MAX_RELAYS: usize = 8;
const MAX_ADDR: usize = 512;
const MAX_CODE: usize = 16 * 1024;

/// What an invite carries.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Invite {
    /// The community to join.
    pub community: CommunityId,
    /// The LAN pre-shared key, when the community uses one.
    pub psk: Option<[u8; 32]>,
    /// Addresses of known peers (multiaddrs).
    pub peers: Vec<String>,
    /// Addresses of the community's relays (multiaddrs ending in `/p2p/<id>`).
    pub relays: Vec<String>,
}

fn push_addrs(p: &mut Vec<u8>, addrs: &[String], max: usize) {
    let addrs: Vec<&String> = addrs
        .iter()
        .filter(|a| a.len() <= MAX_ADDR)
        .take(max)
        .collect();
    p.push(addrs.len() as u8);
    for a in addrs {
        p.extend_from_slice(&(a.len() as u16).to_be_bytes());
        p.extend_from_slice(a.as_bytes());
    }
}

impl Invite {
    /// The code.
    pub fn encode(&self) -> String {
        let mut p = vec![VERSION];
        p.extend_from_slice(&self.community.0);
        match &self.psk {
            Some(k) => {
                p.push(1);
                p.extend_from_slice(k);
            }
            None => p.push(0),
        }
        push_addrs(&mut p, &self.peers, MAX_PEERS);
        push_addrs(&mut p, &self.relays, MAX_RELAYS);
        let check = Sha256::digest(&p);
        p.extend_from_slice(&check[..4]);
        format!("{PREFIX}{}", URL_SAFE_NO_PAD.encode(p))
    }

    /// Parses a code; every error is one line that says what is wrong.
    pub fn decode(code: &str) -> Result<Invite> {
        let code = code.trim();
        ensure!(code.len() <= MAX_CODE, "far too long");
        let Some(body) = code.strip_prefix(PREFIX) else {
            bail!("it must start with {PREFIX:?}");
        };
        let bytes = URL_SAFE_NO_PAD
            .decode(body)
            .map_err(|_| InviteError("not base64url text (was it cut or wrapped?)".into()))?;
        ensure!(bytes.len() > 4, "too short");
        let (payload, check) = bytes.split_at(bytes.len() - 4);
        ensure!(
            Sha256::digest(payload)[..4] == *check,
            "checksum mismatch (was it copied completely?)"
        );
        let mut r = Reader(payload);
        let version = r.u8()?;
        ensure!(
            version == 1 || version == VERSION,
            "version {version}, this coop reads versions 1 and {VERSION}"
        );
        let community = CommunityId(r.array()?);
        let psk = match r.u8()? {
            0 => None,
            1 => Some(r.array()?),
            f => bail!("unknown flags {f}"),
        };
        let peers = r.addrs("peer", MAX_PEERS)?;
        let relays = if version >= 2 {
            r.addrs("relay", MAX_RELAYS)?
        } else {
            Vec::new()
        };
        ensure!(r.0.is_empty(), "trailing bytes");
        Ok(Invite {
            community,
            psk,
            peers,
            relays,
        })
    }
}

impl Invite {
    /// Checks every address with `peer` (peers) and `relay` (relays), which say why an
    /// address is bad; the error names the first bad one, on one line.
    pub fn check_addresses<E: std::fmt::Display>(
        &self,
        peer: impl Fn(&str) -> std::result::Result<(), E>,
        relay: impl Fn(&str) -> std::result::Result<(), E>,
    ) -> Result<()> {
        for a in &self.peers {
            peer(a).map_err(|e| InviteError(format!("peer {e}")))?;
        }
        for a in &self.relays {
            relay(a).map_err(|e| InviteError(format!("relay {e}")))?;
        }
        Ok(())
    }
}

struct Reader<'a>(&'a [u8]);

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8]> {
        ensure!(self.0.len() >= n, "cut short");
        let (head, tail) = self.0.split_at(n);
        self.0 = tail;
        Ok(head)
    }
    fn u8(&mut self) -> Result<u8> {
        Ok(self.take(1)?[0])
    }
    fn array<const N: usize>(&mut self) -> Result<[u8; N]> {
        let mut out = [0u8; N];
        out.copy_from_slice(self.take(N)?);
        Ok(out)
    }
    /// A count and that many addresses (`what`: "peer" or "relay").
    fn addrs(&mut self, what: &str, max: usize) -> Result<Vec<String>> {
        let n = self.u8()? as usize;
        ensure!(n <= max, "{n} {what}s, at most {max}");
        let mut out = Vec::with_capacity(n);
        for _ in 0..n {
            let len = u16::from_be_bytes(self.array()?) as usize;
            ensure!(len <= MAX_ADDR, "{what} address too long");
            let addr = std::str::from_utf8(self.take(len)?)
                .map_err(|_| InviteError(format!("{what} address is not UTF-8")))?;
            out.push(addr.to_string());
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Invite {
        Invite {
            community: CommunityId([7; 32]),
            psk: Some([9; 32]),
            peers: vec![
                format!("/ip4/192.168.1.20/tcp/4001/p2p/{ID}"),
                "/ip4/127.0.0.1/tcp/4001".into(),
            ],
            relays: vec![format!("/dns4/relay.example.org/tcp/4001/p2p/{ID}")],
        }
    }

    const ID: &str = "12D3KooWD3eckifWpRn9wQpMG9R9hX3sD158z7EqHWmweQAJU5SA";

    /// A version-1 code, as coop wrote them before relays (no relay list).
    fn v1_code(community: [u8; 32], peers: &[&str]) -> String {
        let mut p = vec![1u8];
        p.extend_from_slice(&community);
        p.push(0);
        p.push(peers.len() as u8);
        for a in peers {
            p.extend_from_slice(&(a.len() as u16).to_be_bytes());
            p.extend_from_slice(a.as_bytes());
        }
        let check = Sha256::digest(&p);
        p.extend_from_slice(&check[..4]);
        format!("{PREFIX}{}", URL_SAFE_NO_PAD.encode(p))
    }

    #[test]
    fn version_1_codes_still_decode() {
        let code = v1_code([3; 32], &["/ip4/10.0.0.2/tcp/4001"]);
        let inv = Invite::decode(&code).unwrap();
        assert_eq!(inv.community, CommunityId([3; 32]));
        assert_eq!(inv.peers, vec!["/ip4/10.0.0.2/tcp/4001".to_string()]);
        assert!(inv.relays.is_empty() && inv.psk.is_none());
    }

    fn check(inv: &Invite) -> Result<()> {
        use crate::peerstore::{parse_dialable, parse_relay};
        inv.check_addresses(
            |a| parse_dialable(a).map(drop),
            |a| parse_relay(a).map(drop),
        )
    }

    #[test]
    fn a_bad_address_refuses_the_code_naming_it() {
        for (peers, relays, named) in [
            (
                vec!["/ip4/10.0.0.2/tcp/4001", "not-an-addr"],
                vec![],
                "not-an-addr",
            ),
            (
                vec!["/ip4/0.0.0.0/tcp/4001"],
                vec![],
                "/ip4/0.0.0.0/tcp/4001",
            ),
            (
                vec![],
                vec!["/ip4/10.0.0.9/tcp/4001"],
                "/ip4/10.0.0.9/tcp/4001",
            ),
        ] {
            let inv = Invite {
                peers: peers.iter().map(|s| s.to_string()).collect(),
                relays: relays.iter().map(|s| s.to_string()).collect(),
                ..sample()
            };
            let decoded = Invite::decode(&inv.encode()).unwrap();
            let err = format!("{:#}", check(&decoded).unwrap_err());
            assert!(err.contains(named), "{err}");
            assert!(!err.contains('\n'), "{err}");
        }
        let old = Invite::decode(&v1_code([3; 32], &["/ip4/1.2.3.4/udp/9"])).unwrap();
        let err = format!("{:#}", check(&old).unwrap_err());
        assert!(err.contains("/ip4/1.2.3.4/udp/9"), "{err}");
    }

    #[test]
    fn codes_round_trip() {
        for invite in [
            sample(),
            Invite {
                psk: None,
                peers: vec![],
                relays: vec![],
                ..sample()
            },
        ] {
            let code = invite.encode();
            assert!(code.starts_with("coop1"));
            assert!(!code.contains(['+', '/', '=', ' ']));
            assert_eq!(Invite::decode(&format!("  {code}\n")).unwrap(), invite);
        }
    }

    #[test]
    fn damaged_codes_fail_with_one_clear_line() {
        let code = sample().encode();
        let cases = [
            ("coop2abc".to_string(), "must start with"),
            (code[..code.len() - 8].to_string(), "checksum"),
            ("coop1!!!".to_string(), "not base64url"),
            ("coop1AA".to_string(), "too short"),
        ];
        for (bad, expected) in cases {
            let err = format!("{:#}", Invite::decode(&bad).unwrap_err());
            assert!(err.starts_with("invalid invite code: "), "{err}");
            assert!(err.contains(expected), "{bad}: {err}");
            assert!(!err.contains('\n'), "{err}");
        }
        // A flipped character changes the checksum.
        let mut chars: Vec<char> = code.chars().collect();
        let i = 20;
        chars[i] = if chars[i] == 'A' { 'B' } else { 'A' };
        let flipped: String = chars.into_iter().collect();
        assert!(Invite::decode(&flipped).is_err());
    }
}
