//! The app's security over plain HTTP against a real running node: wrong `Host` (DNS
//! rebinding), no session, POST without or with a wrong CSRF token, a cross-origin
//! `Origin`, a login token used twice, the security headers, and a refused form that
//! writes nothing.

use coop_tests::init_tracing;

use super::http::{form, request, Answer};
use super::{alice_and_bob, port, start_app_node};

pub(crate) fn log_in(dir: &coop_node::DataDir, port: u16) -> (String, String) {
    let token = coop_node::app::issue_login_token(dir).unwrap();
    let a = request(port, "GET", &format!("/login?token={token}"), &[], "");
    assert_eq!(a.status, 303, "{a:?}");
    let cookie = a
        .header("set-cookie")
        .expect("a session cookie")
        .to_string();
    assert!(cookie.contains("HttpOnly"), "{cookie}");
    assert!(cookie.contains("SameSite=Strict"), "{cookie}");
    let cookie = cookie.split(';').next().unwrap().to_string();
    // The token is good once.
    let again = request(port, "GET", &format!("/login?token={token}"), &[], "");
    assert_eq!(again.status, 401);
    assert!(again.body.contains("not valid any more"), "{}", again.body);
    let home = request(port, "GET", "/", &[("cookie", &cookie)], "");
    assert_eq!(home.status, 200, "{home:?}");
    assert!(home.body.contains("Hello, Alice"));
    let page = request(port, "GET", "/timebank", &[("cookie", &cookie)], "");
    (cookie, csrf_of(&page))
}

pub(crate) fn csrf_of(page: &Answer) -> String {
    let at = page
        .body
        .find(r#"name="_csrf" value=""#)
        .expect("a CSRF field");
    let rest = &page.body[at + r#"name="_csrf" value=""#.len()..];
    rest[..rest.find('"').unwrap()].to_string()
}

fn log_len(port: u16, cookie: &str) -> usize {
    let a = request(port, "GET", "/api/v1/status", &[("cookie", cookie)], "");
    assert_eq!(a.status, 200, "{a:?}");
    let v: serde_json::Value = serde_json::from_str(&a.body).unwrap();
    v["changes"].as_u64().unwrap() as usize
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_app_refuses_what_a_web_page_or_a_stranger_could_do() {
    init_tracing();
    let root = tempfile::tempdir().unwrap();
    let (alice, _bob) = alice_and_bob(root.path());
    let node = start_app_node(&alice, vec![]).await;
    let p = port(&node);
    let dir = alice.clone();
    tokio::task::spawn_blocking(move || {
        // No session: the login page, and the API says so.
        let a = request(p, "GET", "/", &[], "");
        assert_eq!(a.status, 401);
        assert!(a.body.contains("Log in to your coop node"), "{}", a.body);
        let a = request(p, "GET", "/api/v1/status", &[], "");
        assert_eq!(a.status, 401);
        assert!(a.body.contains("session_required"), "{}", a.body);
        // Every answer carries the policy and refuses framing.
        let csp = a.header("content-security-policy").expect("a CSP");
        assert!(csp.contains("frame-ancestors 'none'") && csp.contains("script-src 'self'"));
        assert!(!csp.contains("unsafe-inline"));
        assert_eq!(a.header("x-frame-options"), Some("DENY"));
        // Assets are served without a session (the login page needs its CSS).
        let css = request(p, "GET", "/assets/app.css", &[], "");
        assert_eq!(css.status, 200);
        assert!(css.header("content-type").unwrap().starts_with("text/css"));

        let (cookie, csrf) = log_in(&dir, p);
        let before = log_len(p, &cookie);

        // A foreign Host (DNS rebinding), even with a session.
        for host in [
            "evil.example",
            "evil.example:80",
            &format!("evil.example:{p}"),
            "127.0.0.1:1",
        ] {
            let a = request(p, "GET", "/", &[("host", host), ("cookie", &cookie)], "");
            assert_eq!(a.status, 403, "Host {host}: {a:?}");
            assert!(a.body.contains("forbidden"));
        }

        let proposal = |csrf: &str| {
            form(&[
                ("_csrf", csrf),
                ("_back", "/proposals"),
                ("_form", "new-proposal"),
                ("kind", "proposal"),
                ("title", "A bench by the bus stop"),
                ("description", ""),
            ])
        };
        let ct = ("content-type", "application/x-www-form-urlencoded");
        // POST without a session, without a CSRF token, with a wrong one.
        let a = request(p, "POST", "/write", &[ct], &proposal(&csrf));
        assert_eq!(a.status, 403, "{a:?}");
        assert!(a.body.contains("session_required"));
        let no_token = proposal(&csrf).replace(&format!("_csrf={csrf}&"), "");
        let a = request(p, "POST", "/write", &[ct, ("cookie", &cookie)], &no_token);
        assert_eq!(a.status, 403, "{a:?}");
        assert!(a.body.contains("bad_csrf"));
        let wrong = "0".repeat(csrf.len());
        let a = request(
            p,
            "POST",
            "/write",
            &[ct, ("cookie", &cookie)],
            &proposal(&wrong),
        );
        assert_eq!(a.status, 403, "{a:?}");
        // A cross-origin POST, with the right token and cookie.
        for origin in [
            "http://evil.example",
            &format!("http://evil.example:{p}"),
            "null",
        ] {
            let a = request(
                p,
                "POST",
                "/write",
                &[ct, ("cookie", &cookie), ("origin", origin)],
                &proposal(&csrf),
            );
            assert_eq!(a.status, 403, "Origin {origin}: {a:?}");
            assert!(a.body.contains("cross_origin"));
        }
        // A GET never writes: it goes home.
        let a = request(
            p,
            "GET",
            &format!("/write?{}", proposal(&csrf)),
            &[("cookie", &cookie)],
            "",
        );
        assert_eq!((a.status, a.header("location")), (303, Some("/")), "{a:?}");
        assert_eq!(log_len(p, &cookie), before, "nothing refused was written");

        // The real thing, from our own origin: written, and back to the page.
        let origin = format!("http://127.0.0.1:{p}");
        let a = request(
            p,
            "POST",
            "/write",
            &[ct, ("cookie", &cookie), ("origin", &origin)],
            &proposal(&csrf),
        );
        assert_eq!(a.status, 303, "{a:?}");
        assert_eq!(a.header("location"), Some("/proposals"));
        assert_eq!(log_len(p, &cookie), before + 1);

        // A refused record: the sentence beside its form, nothing written.
        let page = request(p, "GET", "/proposals", &[("cookie", &cookie)], "");
        let at = page.body.find("id=\"allocate-").expect("an allocate form");
        let id = &page.body[at + "id=\"allocate-".len()..];
        let id = &id[..id.find('"').unwrap()];
        let allocate = |points: &str| {
            form(&[
                ("_csrf", &csrf),
                ("_back", "/proposals"),
                ("_form", &format!("allocate-{id}")),
                ("kind", "allocate"),
                ("proposal", id),
                ("n:points", points),
            ])
        };
        let a = request(
            p,
            "POST",
            "/write",
            &[ct, ("cookie", &cookie)],
            &allocate("10"),
        );
        assert_eq!(a.status, 303, "{a:?}");
        let written = log_len(p, &cookie);
        let a = request(
            p,
            "POST",
            "/write",
            &[ct, ("cookie", &cookie)],
            &allocate("1"),
        );
        assert_eq!(a.status, 422, "{a:?}");
        assert!(
            a.body
                .contains("You can put at most 10 SP on one proposal; you have 10 on it already"),
            "{}",
            a.body
        );
        assert_eq!(log_len(p, &cookie), written, "nothing written on refusal");
        // A malformed form is a sentence too, not a crash.
        let a = request(
            p,
            "POST",
            "/write",
            &[ct, ("cookie", &cookie)],
            &allocate("ten"),
        );
        assert_eq!(a.status, 422);
        assert!(
            a.body
                .contains("points: &quot;ten&quot; is not a whole number"),
            "{}",
            a.body
        );
        // The API on this port stays read-only.
        let a = request(p, "POST", "/api/v1/records", &[("cookie", &cookie)], "{}");
        assert_eq!(a.status, 403);
        assert!(a.body.contains("read_only"));
    })
    .await
    .unwrap();
    node.shutdown().await.unwrap();
}
