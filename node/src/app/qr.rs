//! The invite code a member hands a neighbour, and its QR code drawn as SVG.
//!
//! The code's format is the `coop join` invite (cli/src/invite.rs, docs/PROTOCOL.md):
//! `"coop1"` + base64url-without-padding(payload | first 4 bytes of SHA-256(payload)),
//! payload = version 1 | community id | flags (bit 0: LAN key follows) | [LAN key] |
//! peer count | (u16 big-endian length | multiaddr)*.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use coop_model::CommunityId;
use sha2::{Digest, Sha256};

/// Most peer addresses one code carries (as the command's encoder).
const MAX_PEERS: usize = 16;
const MAX_ADDR: usize = 512;

/// The invite code for a community, its LAN key and some peer addresses.
pub(crate) fn invite_code(
    community: &CommunityId,
    psk: Option<[u8; 32]>,
    peers: &[String],
) -> String {
    let mut p = vec![1u8];
    p.extend_from_slice(&community.0);
    match psk {
        Some(k) => {
            p.push(1);
            p.extend_from_slice(&k);
        }
        None => p.push(0),
    }
    let peers: Vec<&String> = peers
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
    format!("coop1{}", URL_SAFE_NO_PAD.encode(p))
}

/// The QR code of `text` as an SVG element (one path of dark modules), or `None` when it
/// does not fit in a QR code.
pub(crate) fn svg(text: &str) -> Option<String> {
    let code = qrcode::QrCode::with_error_correction_level(text, qrcode::EcLevel::L).ok()?;
    let w = code.width();
    let quiet = 4;
    let size = w + 2 * quiet;
    let mut d = String::new();
    for (i, c) in code.to_colors().into_iter().enumerate() {
        if c == qrcode::Color::Dark {
            d.push_str(&format!("M{} {}h1v1h-1z", i % w + quiet, i / w + quiet));
        }
    }
    Some(format!(
        r#"<svg class="qr" xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {size} {size}" role="img" aria-label="QR code of the invite code" shape-rendering="crispEdges"><rect class="qr-light" width="{size}" height="{size}"/><path class="qr-dark" d="{d}"/></svg>"#
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_invite_follows_the_format_and_its_qr_is_drawn() {
        let c = CommunityId([9; 32]);
        let code = invite_code(&c, Some([3; 32]), &["/ip4/127.0.0.1/tcp/1".into()]);
        let bytes = URL_SAFE_NO_PAD
            .decode(code.strip_prefix("coop1").unwrap())
            .unwrap();
        let (payload, check) = bytes.split_at(bytes.len() - 4);
        assert_eq!(&Sha256::digest(payload)[..4], check);
        assert_eq!(payload[0], 1);
        assert_eq!(&payload[1..33], &[9; 32]);
        assert_eq!(payload[33], 1);
        assert_eq!(payload[66], 1, "one peer");
        let svg = svg(&code).unwrap();
        assert!(svg.contains("<path class=\"qr-dark\" d=\"M"));
        assert!(!svg.contains("style"));
    }
}
