//! The devices page under settings over plain HTTP against a real running node: the
//! member's devices with their status, pairing (a request code pasted, the approval code
//! shown as text and as a QR code, a bad code refused with its reason, a missing CSRF token
//! refused), and revoking a device with its button.

use coop_node::device::{self, Approval};
use coop_node::{DataDir, LocalNode};
use coop_tests::{init_tracing, seed, T0};

use super::http::{form, request};
use super::security::{csrf_of, log_in};
use super::{alice_and_bob, port, start_app_node};

/// Pairs a second device ("desktop") of Alice offline and writes its certificate into
/// Alice's ledger.
fn pair_desktop(root: &std::path::Path, alice: &DataDir) -> coop_model::DeviceId {
    let desk = DataDir::new(root.join("alice-desktop"));
    let req = device::request(&desk, seed(), "desktop").expect("request");
    let mut a = LocalNode::open(alice).expect("open Alice");
    let approval =
        device::approve(&alice.identity().unwrap(), a.config(), &req, Vec::new()).expect("approve");
    device::accept(&desk, &approval).expect("accept");
    let mut d = LocalNode::open(&desk).expect("open the desktop");
    let out = d.ingest(a.export()).expect("the desktop takes the ledger");
    assert!(out.rejected.is_empty(), "{:?}", out.rejected);
    let pairing = device::pending(&desk).unwrap().expect("a pending pairing");
    d.submit(pairing.record().unwrap(), T0 + 100)
        .expect("certificate");
    let out = a.ingest(d.export()).expect("Alice takes the certificate");
    assert!(out.rejected.is_empty(), "{:?}", out.rejected);
    req.device
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_devices_page_lists_pairs_and_revokes() {
    init_tracing();
    let root = tempfile::tempdir().unwrap();
    let (alice, _bob) = alice_and_bob(root.path());
    let desktop = pair_desktop(root.path(), &alice);
    let node = start_app_node(&alice, vec![]).await;
    let p = port(&node);
    let dir = alice.clone();
    let root_path = root.path().to_path_buf();
    tokio::task::spawn_blocking(move || {
        let (cookie, _) = log_in(&dir, p);
        let ck = ("cookie", cookie.as_str());
        let ct = ("content-type", "application/x-www-form-urlencoded");
        // Settings links to the page; it lists both devices by label and status.
        let settings = request(p, "GET", "/settings", &[ck], "");
        assert!(settings.body.contains(r#"href="/settings/devices""#));
        let page = request(p, "GET", "/settings/devices", &[ck], "");
        assert_eq!(page.status, 200, "{page:?}");
        assert!(page.body.contains("this device"), "{}", page.body);
        assert!(page.body.contains("desktop"), "{}", page.body);
        assert!(page.body.contains("active"), "{}", page.body);
        let csrf = csrf_of(&page);

        // Pairing: a new machine's request code pasted gives the approval code and its QR.
        let laptop = DataDir::new(root_path.join("alice-laptop"));
        let req = device::request(&laptop, seed(), "laptop").expect("request");
        let body = form(&[("_csrf", &csrf), ("code", &req.encode())]);
        let a = request(p, "POST", "/settings/devices/approve", &[ck, ct], &body);
        assert_eq!(a.status, 200, "{}", a.body);
        // The live refresh (app.js) leaves a page holding `data-keep` alone, so the code
        // stays while the member copies it.
        assert!(
            a.body.contains(r#"<div id="approval" data-keep="1">"#),
            "the approval is marked to be kept"
        );
        let at = a.body.find("coopok1").expect("the approval code");
        let code: String = a.body[at..]
            .chars()
            .take_while(|c| c.is_ascii_alphanumeric() || *c == '-' || *c == '_')
            .collect();
        let approval = Approval::decode(&code).expect("a valid approval");
        assert_eq!(approval.device, req.device);
        assert_eq!(approval.member, dir.identity().unwrap().member_id());
        assert_eq!(approval.label, "laptop");
        assert!(
            a.body.contains(r#"<svg class="qr""#),
            "the QR code is drawn"
        );
        // A damaged code is refused with its reason; no token, no approval.
        let bad = form(&[("_csrf", &csrf), ("code", "coopdev1AAAA")]);
        let a = request(p, "POST", "/settings/devices/approve", &[ck, ct], &bad);
        assert_eq!(a.status, 422, "{}", a.body);
        assert!(a.body.contains("invalid request code"), "{}", a.body);
        assert!(!a.body.contains("coopok1"));
        let no_token = form(&[("code", &req.encode())]);
        let a = request(p, "POST", "/settings/devices/approve", &[ck, ct], &no_token);
        assert_eq!(a.status, 403, "{}", a.body);
        assert!(!a.body.contains("coopok1"));

        // Revoking the desktop with its button: the page then shows it revoked.
        let form_id = format!("revoke-{}", desktop.short());
        let body = form(&[
            ("_csrf", &csrf),
            ("_back", "/settings/devices"),
            ("_form", &form_id),
            ("kind", "device_revoke"),
            ("device", &desktop.to_hex()),
            ("reason", "sold it"),
        ]);
        let a = request(p, "POST", "/write", &[ck, ct], &body);
        assert_eq!(a.status, 303, "{}", a.body);
        assert_eq!(a.header("location"), Some("/settings/devices"));
        let page = request(p, "GET", "/settings/devices", &[ck], "");
        assert!(page.body.contains("revoked"), "{}", page.body);
        assert!(
            !page.body.contains(&form_id),
            "no button for a revoked device"
        );
        // Revoking it again is refused beside its form... there is no form any more, so a
        // hand-made post comes back to the page with the sentence.
        let a = request(p, "POST", "/write", &[ck, ct], &body);
        assert_eq!(a.status, 422, "{}", a.body);
        assert!(a.body.contains("Your devices"), "{}", a.body);
    })
    .await
    .unwrap();
    node.shutdown().await.unwrap();
}
