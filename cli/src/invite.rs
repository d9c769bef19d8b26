//! Invite codes: one copy-pastable token carrying what a newcomer needs to join.
//!
//! ```text
//! code    = "coop1" base64url-without-padding( payload | check )
//! payload = version u8 (= 1) | community id [32] | flags u8 (bit 0: LAN key follows)
//!           | [LAN key [32]] | peer count u8 | peer*
//! peer    = length u16 (big-endian) | multiaddr, UTF-8
//! check   = the first 4 bytes of SHA-256(payload): catches a code cut short or mistyped
//! ```
//! The code is not secret-free: it carries the LAN pre-shared key, so share it only with
//! the neighbour you invite.

use anyhow::{bail, ensure, Context, Result};
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use coop_model::CommunityId;
use sha2::{Digest, Sha256};

/// The text that starts every invite code (also its format version).
pub(crate) const PREFIX: &str = "coop1";
const VERSION: u8 = 1;
/// Most peer addresses one code carries.
pub(crate) const MAX_PEERS: usize = 16;
const MAX_ADDR: usize = 512;
const MAX_CODE: usize = 16 * 1024;

/// What an invite carries.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Invite {
    /// The community to join.
    pub(crate) community: CommunityId,
    /// The LAN pre-shared key, when the community uses one.
    pub(crate) psk: Option<[u8; 32]>,
    /// Addresses of known peers (multiaddrs).
    pub(crate) peers: Vec<String>,
}

impl Invite {
    /// The code.
    pub(crate) fn encode(&self) -> String {
        let mut p = vec![VERSION];
        p.extend_from_slice(&self.community.0);
        match &self.psk {
            Some(k) => {
                p.push(1);
                p.extend_from_slice(k);
            }
            None => p.push(0),
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
        let check = Sha256::digest(&p);
        p.extend_from_slice(&check[..4]);
        format!("{PREFIX}{}", URL_SAFE_NO_PAD.encode(p))
    }

    /// Parses a code; every error is one line that says what is wrong.
    pub(crate) fn decode(code: &str) -> Result<Invite> {
        let code = code.trim();
        ensure!(code.len() <= MAX_CODE, "invalid invite code: far too long");
        let Some(body) = code.strip_prefix(PREFIX) else {
            bail!("invalid invite code: it must start with {PREFIX:?}");
        };
        let bytes = URL_SAFE_NO_PAD.decode(body).map_err(|_| {
            anyhow::anyhow!("invalid invite code: not base64url text (was it cut or wrapped?)")
        })?;
        ensure!(bytes.len() > 4, "invalid invite code: too short");
        let (payload, check) = bytes.split_at(bytes.len() - 4);
        ensure!(
            Sha256::digest(payload)[..4] == *check,
            "invalid invite code: checksum mismatch (was it copied completely?)"
        );
        let mut r = Reader(payload);
        let version = r.u8()?;
        ensure!(
            version == VERSION,
            "invalid invite code: version {version}, this coop reads version {VERSION}"
        );
        let community = CommunityId(r.array()?);
        let psk = match r.u8()? {
            0 => None,
            1 => Some(r.array()?),
            f => bail!("invalid invite code: unknown flags {f}"),
        };
        let n = r.u8()? as usize;
        ensure!(
            n <= MAX_PEERS,
            "invalid invite code: {n} peers, at most {MAX_PEERS}"
        );
        let mut peers = Vec::with_capacity(n);
        for _ in 0..n {
            let len = u16::from_be_bytes(r.array()?) as usize;
            ensure!(
                len <= MAX_ADDR,
                "invalid invite code: peer address too long"
            );
            let addr = std::str::from_utf8(r.take(len)?)
                .context("invalid invite code: peer address is not UTF-8")?;
            peers.push(addr.to_string());
        }
        ensure!(r.0.is_empty(), "invalid invite code: trailing bytes");
        Ok(Invite {
            community,
            psk,
            peers,
        })
    }
}

struct Reader<'a>(&'a [u8]);

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8]> {
        ensure!(self.0.len() >= n, "invalid invite code: cut short");
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
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Invite {
        Invite {
            community: CommunityId([7; 32]),
            psk: Some([9; 32]),
            peers: vec![
                "/ip4/192.168.1.20/tcp/4001/p2p/12D3KooWExample".into(),
                "/ip4/127.0.0.1/tcp/4001".into(),
            ],
        }
    }

    #[test]
    fn codes_round_trip() {
        for invite in [
            sample(),
            Invite {
                psk: None,
                peers: vec![],
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
