//! The invite code a member hands a neighbour, and its QR code drawn as SVG.
//!
//! The code is [`crate::invite`]'s, the same `coop invite` prints (docs/PROTOCOL.md): this
//! module only gathers what goes in it and draws it.

use coop_model::CommunityId;

use crate::invite::{Invite, MAX_PEERS, MAX_RELAYS};

/// The invite code for a community, its LAN key, some peer addresses and the community's
/// relays (as `coop invite` writes it).
pub(crate) fn invite_code(
    community: &CommunityId,
    psk: Option<[u8; 32]>,
    peers: &[String],
    relays: &[String],
) -> String {
    let mut peers = peers.to_vec();
    peers.truncate(MAX_PEERS);
    let mut relays: Vec<String> = relays
        .iter()
        .filter(|r| crate::peerstore::parse_relay(r).is_ok())
        .cloned()
        .collect();
    relays.truncate(MAX_RELAYS);
    Invite {
        community: *community,
        psk,
        peers,
        relays,
    }
    .encode()
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
    fn the_invite_is_the_commands_and_its_qr_is_drawn() {
        let c = CommunityId([9; 32]);
        let relay =
            "/ip4/10.0.0.9/tcp/4001/p2p/12D3KooWD3eckifWpRn9wQpMG9R9hX3sD158z7EqHWmweQAJU5SA";
        let code = invite_code(
            &c,
            Some([3; 32]),
            &["/ip4/127.0.0.1/tcp/1".into()],
            &[relay.into(), "not a relay".into()],
        );
        let inv = Invite::decode(&code).unwrap();
        assert_eq!(inv.community, c);
        assert_eq!(inv.psk, Some([3; 32]));
        assert_eq!(inv.peers, vec!["/ip4/127.0.0.1/tcp/1".to_string()]);
        assert_eq!(inv.relays, vec![relay.to_string()], "bad relays left out");
        let svg = svg(&code).unwrap();
        assert!(svg.contains("<path class=\"qr-dark\" d=\"M"));
        assert!(!svg.contains("style"));
    }
}
