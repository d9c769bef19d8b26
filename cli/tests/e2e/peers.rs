//! `coop peer list|add|remove` (and `--relay`), invites that carry the known addresses and
//! relays with no node running, and `coop join` refusing a code with a bad address.

use serde_json::Value;
use sha2::{Digest, Sha256};

use crate::support::{coop, json, s, wait_until, Up, World};

const ID: &str = "12D3KooWD3eckifWpRn9wQpMG9R9hX3sD158z7EqHWmweQAJU5SA";

fn edit_config(dir: &std::path::Path, f: impl FnOnce(&mut Value)) {
    let path = dir.join("config.json");
    let mut c: Value = serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
    f(&mut c);
    std::fs::write(&path, serde_json::to_string_pretty(&c).unwrap()).unwrap();
}

#[test]
fn peers_and_relays_are_added_listed_carried_by_invites_and_removed() {
    let w = World::new();
    let alice = w.found(&[]);
    let peer = format!("/ip4/10.1.2.3/tcp/4001/p2p/{ID}");
    let relay = format!("/dns4/relay.example.org/tcp/4001/p2p/{ID}");

    // Bad addresses: exit 1, one line naming the address, nothing stored.
    for (args, named) in [
        (vec!["peer", "add", "bogus"], "bogus"),
        (
            vec!["peer", "add", "/ip4/10.1.2.3/tcp/0"],
            "/ip4/10.1.2.3/tcp/0",
        ),
        (
            vec!["peer", "add", "--relay", "/ip4/10.1.2.3/tcp/4001"],
            "/ip4/10.1.2.3/tcp/4001",
        ),
    ] {
        let r = coop(&alice, &args).code(1);
        assert!(r.stderr.contains(named), "{args:?}: {}", r.stderr);
        assert_eq!(r.stderr.lines().count(), 1, "{}", r.stderr);
    }
    assert_eq!(
        json(&alice, &["peer", "list"])["peers"],
        serde_json::json!([])
    );

    assert_eq!(json(&alice, &["peer", "add", &peer])["added"], true);
    assert_eq!(
        json(&alice, &["peer", "add", "--relay", &relay])["added"],
        true
    );
    let list = json(&alice, &["peer", "list"]);
    let row = &list["peers"][0];
    assert_eq!(s(row, "addr"), peer);
    assert_eq!(s(row, "source"), "manual");
    assert_eq!(s(row, "peer"), ID);
    assert!(
        row["last_seen"].is_null() && row["connected"].is_null(),
        "{row}"
    );
    assert_eq!(list["relays"], serde_json::json!([relay]));
    let text = coop(&alice, &["peer", "list"]).ok().stdout;
    assert!(
        text.contains(&peer) && text.contains("manual") && text.contains("never"),
        "{text}"
    );
    assert!(text.contains(&format!("relay  {relay}")), "{text}");

    // With no node running, the invite carries this node's kept address, the stored
    // peers and the relays; the newcomer keeps the relays.
    edit_config(&alice, |c| {
        c["listen"] = serde_json::json!(["/ip4/127.0.0.1/tcp/0"]);
        c["listen_port"] = serde_json::json!(4321);
    });
    let inv = json(&alice, &["invite"]);
    let peers: Vec<String> = inv["peers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p.as_str().unwrap().to_string())
        .collect();
    assert!(
        peers[0].starts_with("/ip4/127.0.0.1/tcp/4321/p2p/12D3"),
        "{peers:?}"
    );
    assert!(peers.contains(&peer), "{peers:?}");
    assert_eq!(inv["relays"], serde_json::json!([relay]));
    let bob = w.init("Bob");
    let joined = json(&bob, &["join", &s(&inv, "code")]);
    assert_eq!(joined["relays"], serde_json::json!([relay]));
    assert_eq!(
        json(&bob, &["peer", "list"])["relays"],
        serde_json::json!([relay])
    );
    let bob_list = json(&bob, &["peer", "list"]);
    assert!(
        bob_list["peers"]
            .as_array()
            .unwrap()
            .iter()
            .any(|p| p["addr"] == peers[0] && p["source"] == "invite"),
        "{bob_list}"
    );

    // Removed by peer id (every address of that peer) and by relay address.
    assert_eq!(json(&alice, &["peer", "remove", ID])["removed"], 1);
    let r = coop(&alice, &["peer", "remove", ID]).code(1);
    assert!(r.stderr.contains("no remembered peer"), "{}", r.stderr);
    json(&alice, &["peer", "remove", "--relay", &relay]);
    let list = json(&alice, &["peer", "list"]);
    assert_eq!(list["peers"], serde_json::json!([]));
    assert_eq!(list["relays"], serde_json::json!([]));
}

/// A version-1 invite code (as coop wrote before relays) with these peer addresses.
fn v1_code(community_hex: &str, peers: &[&str]) -> String {
    let mut p = vec![1u8];
    let mut community = [0u8; 32];
    hex_decode(community_hex, &mut community);
    p.extend_from_slice(&community);
    p.push(0);
    p.push(peers.len() as u8);
    for a in peers {
        p.extend_from_slice(&(a.len() as u16).to_be_bytes());
        p.extend_from_slice(a.as_bytes());
    }
    let check = Sha256::digest(&p);
    p.extend_from_slice(&check[..4]);
    format!("coop1{}", base64url(&p))
}

fn hex_decode(h: &str, out: &mut [u8]) {
    for (i, b) in out.iter_mut().enumerate() {
        *b = u8::from_str_radix(&h[2 * i..2 * i + 2], 16).unwrap();
    }
}

/// base64url without padding.
fn base64url(bytes: &[u8]) -> String {
    const A: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    let mut out = String::new();
    for chunk in bytes.chunks(3) {
        let n = chunk
            .iter()
            .enumerate()
            .fold(0u32, |n, (i, b)| n | u32::from(*b) << (16 - 8 * i));
        for i in 0..=chunk.len() {
            out.push(A[(n >> (18 - 6 * i) & 63) as usize] as char);
        }
    }
    out
}

#[test]
fn join_refuses_a_code_with_a_bad_address_and_old_codes_still_join() {
    let w = World::new();
    let alice = w.found(&["--no-lan-key"]);
    let community = s(&json(&alice, &["status"]), "community");
    let bob = w.init("Bob");
    let bad = "/ip4/10.0.0.2/udp/4001";
    let r = coop(
        &bob,
        &[
            "join",
            &v1_code(&community, &["/ip4/10.0.0.1/tcp/4001", bad]),
        ],
    )
    .code(1);
    assert!(
        r.stderr.contains(bad) && r.stderr.contains("invalid invite code"),
        "{}",
        r.stderr
    );
    assert_eq!(r.stderr.lines().count(), 1, "{}", r.stderr);
    // Nothing was written: Bob still has no community and no peers.
    assert!(json(&bob, &["status"])["community"].is_null());
    // A good version-1 code (no relays) still joins.
    let good = "/ip4/10.0.0.1/tcp/4001";
    let joined = json(&bob, &["join", &v1_code(&community, &[good])]);
    assert_eq!(s(&joined, "community"), community);
    assert_eq!(joined["relays"], serde_json::json!([]));
}

#[test]
fn a_running_node_keeps_the_addresses_that_worked_listed_by_name() {
    let w = World::new();
    let (alice, bob) = w.two(&[]);
    let a = Up::start(&alice, &[]);
    let alice_addr = a.listen()[0].clone();
    let _b = Up::start(&bob, &[&alice_addr]);
    // Bob's node keeps Alice's address once the dial worked (written within seconds), and
    // `coop peer list` names her and says she is connected.
    let row = wait_until("Bob's peer store to hold Alice's address", || {
        let list = json(&bob, &["peer", "list"]);
        list["peers"]
            .as_array()
            .unwrap()
            .iter()
            .find(|p| p["addr"] == alice_addr.as_str() && p["connected"] == true)
            .cloned()
    });
    assert_eq!(s(&row, "name"), "Alice", "{row}");
    assert_eq!(s(&row, "source"), "manual", "{row}");
    assert!(row["last_seen"].is_u64(), "{row}");
    let text = coop(&bob, &["peer", "list"]).ok().stdout;
    assert!(text.contains("Alice") && text.contains("yes"), "{text}");
    // The status says LAN discovery is off here (Up::start runs with --no-mdns).
    let status = coop(&bob, &["status"]).ok().stdout;
    assert!(status.contains("mDNS        off (--no-mdns)"), "{status}");
}

#[test]
fn peer_add_on_a_running_node_dials_at_once() {
    let w = World::new();
    let (alice, bob) = w.two(&[]);
    let a = Up::start(&alice, &[]);
    let alice_addr = a.listen()[0].clone();
    let alice_id = alice_addr.rsplit("/p2p/").next().unwrap().to_string();
    // Bob runs knowing no one (no --peer, no mDNS); Alice writes what he can only get by
    // syncing with her.
    let _b = Up::start(&bob, &[]);
    coop(
        &alice,
        &[
            "proposal",
            "open",
            "--title",
            "Tool library",
            "--description",
            "Shared tools",
        ],
    )
    .ok();
    let before = json(&bob, &["status"]);
    assert_eq!(before["peers"], serde_json::json!([]), "{before}");

    // A bad address through the running node: one line naming it, nothing stored.
    let r = coop(&bob, &["peer", "add", "/ip4/127.0.0.1/tcp/0"]).code(1);
    assert!(r.stderr.contains("/ip4/127.0.0.1/tcp/0"), "{}", r.stderr);
    assert_eq!(r.stderr.lines().count(), 1, "{}", r.stderr);
    assert_eq!(
        json(&bob, &["peer", "list"])["peers"],
        serde_json::json!([])
    );

    // The API route itself refuses one (400 bad_request naming it), storing nothing.
    let api = coop_node::api::ApiClient::new(&coop_node::DataDir::new(&bob).api_socket()).unwrap();
    let refused = api
        .post::<_, coop_node::api::PeerAdded>(
            "/peers",
            &coop_node::api::AddPeer {
                addr: "/ip4/127.0.0.1/udp/9".into(),
            },
        )
        .unwrap_err();
    assert!(
        matches!(&refused, coop_node::NodeError::InvalidInput(m) if m.contains("/ip4/127.0.0.1/udp/9")),
        "{refused:?}"
    );
    assert_eq!(
        json(&bob, &["peer", "list"])["peers"],
        serde_json::json!([])
    );

    let added = json(&bob, &["peer", "add", &alice_addr]);
    assert_eq!(added["added"], true, "{added}");
    assert_eq!(added["dialing"], true, "{added}");
    let text = coop(&bob, &["peer", "list"]).ok().stdout;
    assert!(text.contains(&alice_addr), "{text}");
    // Connected and converged, with no restart of either node.
    wait_until("Bob's node to connect to Alice's and converge", || {
        let (sa, sb) = (json(&alice, &["status"]), json(&bob, &["status"]));
        let linked = sb["peers"]
            .as_array()
            .unwrap()
            .iter()
            .any(|p| p == alice_id.as_str())
            && !sa["peers"].as_array().unwrap().is_empty();
        (linked && sa["digest"] == sb["digest"] && sa["changes"] == sb["changes"]).then_some(())
    });
    let proposals = json(&bob, &["proposal", "list"]);
    assert!(
        proposals.to_string().contains("Tool library"),
        "{proposals}"
    );
}
