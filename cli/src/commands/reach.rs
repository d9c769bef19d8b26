//! `coop status`'s lines about a running node's reachability: AutoNAT's verdict, its relays,
//! and how each peer is connected (direct or through a relay).

/// `coop status`'s lines about reachability (a running node's AutoNAT verdict, its relays,
/// and how each peer is connected), as (label, value) pairs.
pub(crate) fn reach_lines(s: &coop_node::Status) -> Vec<(&'static str, String)> {
    let Some(r) = s.reach.as_ref().filter(|_| s.running) else {
        return Vec::new();
    };
    let mut out = Vec::new();
    out.push((
        "reachable",
        match (r.reachability.as_str(), &r.public_address) {
            ("public", Some(a)) => format!("yes, at {a} (AutoNAT)"),
            ("public", None) => "yes (AutoNAT)".into(),
            ("private", _) => {
                "no: behind a NAT or firewall (AutoNAT); others reach this node through its relays"
                    .into()
            }
            _ => "not known yet (AutoNAT has not finished probing)".into(),
        },
    ));
    for relay in &r.relays {
        let state = if relay.reserved {
            "reservation held"
        } else if relay.connected {
            "connected, no reservation yet"
        } else {
            "not connected (retrying)"
        };
        out.push(("relay", format!("{} ({state})", relay.address)));
    }
    for link in r.connections.iter().filter(|l| !l.relay) {
        out.push(("link", format!("{} {}", link.peer, link.via)));
    }
    if r.hole_punches + r.hole_punch_failures > 0 {
        out.push((
            "hole punch",
            format!(
                "{} succeeded, {} failed",
                r.hole_punches, r.hole_punch_failures
            ),
        ));
    }
    out
}
