//! Every write form of the app over plain HTTP against two real nodes on 127.0.0.1 that
//! sync with each other: the display name, the decision forms for every action, pools
//! (open, pledge, confirm, apply, allocate by decision, disburse, return), relief (request
//! sealed to the stewards, approval), moderation (report, hide), the network page's
//! catch-up progress; and a session that survives a restart of the node. Each refusal
//! comes back as a sentence beside its form with nothing written.

use std::time::{Duration, Instant};

use coop_tests::init_tracing;

use super::http::{form, request, Answer};
use super::security::csrf_of;
use super::{alice_and_bob, port, start_app_node};

/// Generous for a loaded 2-core machine; syncs take a second on an idle one.
const DEADLINE: Duration = Duration::from_secs(120);

/// One logged-in browser, over plain HTTP.
struct Client {
    port: u16,
    cookie: String,
    csrf: String,
}

impl Client {
    fn log_in(dir: &coop_node::DataDir, port: u16) -> Client {
        let token = coop_node::app::issue_login_token(dir).unwrap();
        let a = blocking(|| request(port, "GET", &format!("/login?token={token}"), &[], ""));
        assert_eq!(a.status, 303, "{a:?}");
        let cookie = a.header("set-cookie").expect("a cookie");
        assert!(cookie.contains("Max-Age="), "{cookie}");
        let cookie = cookie.split(';').next().unwrap().to_string();
        let mut c = Client {
            port,
            cookie,
            csrf: String::new(),
        };
        c.csrf = csrf_of(&c.get("/settings"));
        c
    }

    fn get(&self, path: &str) -> Answer {
        blocking(|| request(self.port, "GET", path, &[("cookie", &self.cookie)], ""))
    }

    /// Posts a form of `kind` (id `form_id`) from page `back`.
    fn post(&self, back: &str, form_id: &str, kind: &str, fields: &[(&str, &str)]) -> Answer {
        let mut all = vec![
            ("_csrf", self.csrf.as_str()),
            ("_back", back),
            ("_form", form_id),
            ("kind", kind),
        ];
        all.extend_from_slice(fields);
        let body = form(&all);
        let origin = format!("http://127.0.0.1:{}", self.port);
        blocking(|| {
            request(
                self.port,
                "POST",
                "/write",
                &[
                    ("content-type", "application/x-www-form-urlencoded"),
                    ("cookie", &self.cookie),
                    ("origin", &origin),
                ],
                &body,
            )
        })
    }

    /// Posts and expects the record written (a redirect back).
    #[track_caller]
    fn wrote(&self, back: &str, form_id: &str, kind: &str, fields: &[(&str, &str)]) {
        let a = self.post(back, form_id, kind, fields);
        assert_eq!(a.status, 303, "{form_id}: {}", refusal_of(&a));
    }

    /// Posts and expects a refusal whose sentence beside the form starts with `sentence`,
    /// nothing written.
    #[track_caller]
    fn refused(
        &self,
        back: &str,
        form_id: &str,
        kind: &str,
        fields: &[(&str, &str)],
        sentence: &str,
    ) {
        let before = self.changes();
        let a = self.post(back, form_id, kind, fields);
        assert_eq!(a.status, 422, "{form_id}: {a:?}");
        let got = refusal_of(&a);
        assert!(got.starts_with(sentence), "{form_id}: {got:?}");
        assert_eq!(self.changes(), before, "{form_id}: nothing written");
    }

    fn changes(&self) -> u64 {
        let a = self.get("/api/v1/status");
        let v: serde_json::Value = serde_json::from_str(&a.body).unwrap();
        v["changes"].as_u64().unwrap()
    }

    /// Polls a page until `check` holds.
    #[track_caller]
    fn until(&self, path: &str, what: &str, check: impl Fn(&str) -> bool) -> String {
        let start = Instant::now();
        loop {
            let a = self.get(path);
            if a.status == 200 && check(&a.body) {
                return a.body;
            }
            assert!(
                start.elapsed() < DEADLINE,
                "{what}: not within {DEADLINE:?}; {path} was:\n{}",
                a.body
            );
            blocking(|| std::thread::sleep(Duration::from_millis(200)));
        }
    }
}

/// Waits until `b`'s node holds as many changes as `a`'s (all `a` wrote), so that a
/// refusal's "nothing written" check at `b` is not disturbed by records still arriving.
fn converged(a: &Client, b: &Client) {
    let start = Instant::now();
    while b.changes() != a.changes() {
        assert!(start.elapsed() < DEADLINE, "the nodes never converged");
        blocking(|| std::thread::sleep(Duration::from_millis(200)));
    }
}

fn blocking<T>(f: impl FnOnce() -> T) -> T {
    tokio::task::block_in_place(f)
}

/// The refusal sentence on a page (HTML entities for quotes undone).
fn refusal_of(a: &Answer) -> String {
    let Some(at) = a.body.find(r#"class="refusal" role="alert">"#) else {
        return format!("(no refusal; status {})", a.status);
    };
    let rest = &a.body[at + r#"class="refusal" role="alert">"#.len()..];
    rest[..rest.find("</p>").unwrap()]
        .replace("&quot;", "\"")
        .replace("&#39;", "'")
        .replace("&amp;", "&")
}

/// The hex id that follows `prefix` in an element id (`id="apply-<hex>"`).
#[track_caller]
fn id_after(body: &str, prefix: &str) -> String {
    let key = format!("id=\"{prefix}");
    let at = body
        .find(&key)
        .unwrap_or_else(|| panic!("no {key} in:\n{body}"));
    body[at + key.len()..at + key.len() + 64].to_string()
}

/// The value of the option whose label starts with `label` in a page.
#[track_caller]
fn option_for(body: &str, label: &str) -> String {
    let at = body
        .find(&format!("\">{label}"))
        .unwrap_or_else(|| panic!("no option {label:?} in:\n{body}"));
    let before = &body[..at];
    let v = before.rfind("value=\"").unwrap() + "value=\"".len();
    before[v..].to_string()
}

fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

/// Opens a decision that closes in a few seconds, votes yes, and tallies it once the window
/// has closed; returns the page after the tally.
fn decide_now(c: &Client, form_id: &str, title: &str, action: &[(&str, &str)]) -> String {
    // Long enough to vote in on a loaded machine; the test then waits for it to close.
    let closes = (now() + 15).to_string();
    let mut fields = vec![
        ("title", title),
        ("description", ""),
        ("n:closes_at", closes.as_str()),
    ];
    fields.extend_from_slice(action);
    c.wrote("/decisions", form_id, "decision", &fields);
    let page = c.get("/decisions").body;
    let at = page
        .find(&format!("<h2>{title}"))
        .unwrap_or_else(|| panic!("no decision {title:?} in:\n{page}"));
    let vote = id_after(&page[at..], "vote-");
    c.wrote(
        "/decisions",
        &format!("vote-{vote}"),
        "vote",
        &[("decision", &vote), ("choice", "yes")],
    );
    // The tally counts only once the window has closed by this node's clock.
    let page = c.until("/decisions", "the window to close", |b| {
        b.contains(&format!("id=\"tally-{vote}\""))
    });
    assert!(page.contains(title));
    c.wrote(
        "/decisions",
        &format!("tally-{vote}"),
        "tally",
        &[("decision", &vote)],
    );
    c.get("/decisions").body
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_form_of_the_app_writes_its_record_or_says_why() {
    init_tracing();
    let root = tempfile::tempdir().unwrap();
    let (alice_dir, bob_dir) = alice_and_bob(root.path());
    let alice_node = start_app_node(&alice_dir, vec![]).await;
    let alice = Client::log_in(&alice_dir, port(&alice_node));

    // --- The display name (settings).
    let settings = alice.get("/settings");
    assert!(settings.body.contains(r#"id="rename""#), "a rename form");
    alice.wrote(
        "/settings",
        "rename",
        "rename",
        &[("display_name", "Alice M.")],
    );
    assert!(alice.get("/").body.contains("Hello, Alice M."));
    alice.refused(
        "/settings",
        "rename",
        "rename",
        &[("display_name", "BOB")],
        "Another member is already called that; choose another name.",
    );
    alice.refused(
        "/settings",
        "rename",
        "rename",
        &[("display_name", "Alice M.")],
        "That is your name already.",
    );
    alice.refused(
        "/settings",
        "rename",
        "rename",
        &[("display_name", "  ")],
        "A name cannot be empty.",
    );
    alice.refused(
        "/settings",
        "rename",
        "rename",
        &[("display_name", &"x".repeat(65))],
        "A name has at most 64 characters.",
    );

    // --- Written while Bob's node is off, so that he catches up when it starts.
    alice.wrote(
        "/pools",
        "new-pool",
        "pool",
        &[
            ("name", "Solar roof"),
            ("description", "Panels on the hall"),
            ("currency", "EUR"),
            ("policy", "reinvest"),
            ("b:relief", "false"),
        ],
    );
    alice.wrote(
        "/pools",
        "new-pool",
        "pool",
        &[
            ("name", "Hardship fund"),
            ("description", ""),
            ("currency", "EUR"),
            ("policy", "reinvest"),
            ("b:relief", "true"),
        ],
    );
    alice.wrote(
        "/proposals",
        "new-proposal",
        "proposal",
        &[("title", "A bench by the bus stop"), ("description", "")],
    );
    let pools = alice.get("/pools").body;
    let solar = id_after(&pools, "apply-");
    let fund = id_after(&pools, "relief-new-");

    let bob_node = start_app_node(&bob_dir, vec![coop_tests::addr(&alice_node)]).await;
    let bob = Client::log_in(&bob_dir, port(&bob_node));

    // --- The network page shows the catch-up from Alice's node.
    let net = bob.until("/network", "Bob's catch-up from Alice", |b| {
        b.contains("class=\"catch-up\"") && b.contains("caught up")
    });
    assert!(net.contains("Catching up"), "{net}");
    // Alice's new name reached Bob's node and shows where names are shown.
    bob.until("/members", "Alice's new name at Bob's", |b| {
        b.contains("Alice M.")
    });

    // --- Pools: pledge, apply (Bob), confirm (Alice, a treasurer).
    bob.refused(
        "/pools",
        &format!("apply-{solar}"),
        "application",
        &[
            ("pool", &solar),
            ("title", "Panels"),
            ("m:amount", "150.00"),
            ("terms", "short"),
        ],
        "Some field is out of range or empty; check the lengths and numbers.",
    );
    bob.wrote(
        "/pools",
        &format!("pledge-new-{solar}"),
        "contribution",
        &[("pool", &solar), ("m:amount", "200.00")],
    );
    bob.wrote(
        "/pools",
        &format!("apply-{solar}"),
        "application",
        &[
            ("pool", &solar),
            ("title", "Panels for the hall"),
            ("m:amount", "150.00"),
            ("terms", "Paid back from the savings within two years"),
        ],
    );
    let pools = alice.until("/pools", "Bob's pledge and application at Alice's", |b| {
        b.contains("Panels for the hall") && b.contains("id=\"pledge-")
    });
    let contributions = &pools[pools.find("<h2>Contributions").expect("contributions")..];
    let pledge = id_after(contributions, "pledge-");
    alice.wrote(
        "/pools",
        &format!("pledge-{pledge}"),
        "contribution_confirm",
        &[("contribution", &pledge)],
    );

    // --- Decisions: every action has its form; the allocation passes and funds Bob.
    let page = alice.get("/decisions").body;
    for id in [
        "new-decision",
        "decide-param",
        "decide-role",
        "decide-removal",
        "decide-allocation",
    ] {
        assert!(page.contains(&format!("id=\"{id}\"")), "no {id} form");
    }
    assert!(page.contains("sp_max_per_proposal (now 10)"), "{page}");
    let week = (now() + 7 * 86_400).to_string();
    let application = option_for(&page, "Panels for the hall by Bob");
    let bob_id = option_for(&page, "Bob");
    alice.refused(
        "/decisions",
        "decide-param",
        "decision",
        &[
            ("title", "More SP per proposal"),
            ("description", ""),
            ("n:closes_at", &week),
            ("a:action", "param"),
            ("a:key", "sp_max_per_proposal"),
            ("a:value", "lots"),
        ],
        "That decision could not take effect as written: invalid value \"lots\"",
    );
    alice.wrote(
        "/decisions",
        "decide-param",
        "decision",
        &[
            ("title", "More SP per proposal"),
            ("description", ""),
            ("n:closes_at", &week),
            ("a:action", "param"),
            ("a:key", "sp_max_per_proposal"),
            ("a:value", "20"),
        ],
    );
    alice.wrote(
        "/decisions",
        "decide-removal",
        "decision",
        &[
            ("title", "Remove Bob"),
            ("description", ""),
            ("n:closes_at", &week),
            ("a:action", "removal"),
            ("a:member", &bob_id),
        ],
    );
    let after = decide_now(
        &alice,
        "decide-allocation",
        "Fund the panels",
        &[
            ("a:action", "pool_allocation"),
            ("a:application", &application),
        ],
    );
    assert!(after.contains("Fund the panels"));
    let pools = alice.until("/pools", "the allocation", |b| {
        b.contains(&format!("id=\"disburse-{application}\""))
    });
    assert!(pools.contains("allocated"), "{pools}");
    alice.refused(
        "/pools",
        &format!("disburse-{application}"),
        "disbursement",
        &[("application", &application), ("m:amount", "500.00")],
        "That is more than is left of the application's allocation.",
    );
    alice.wrote(
        "/pools",
        &format!("disburse-{application}"),
        "disbursement",
        &[("application", &application), ("m:amount", "100.00")],
    );
    alice.wrote(
        "/pools",
        &format!("return-{application}"),
        "return",
        &[("from", &application), ("m:amount", "20.00")],
    );
    let pools = alice.get("/pools").body;
    assert!(pools.contains("disbursed 100.00 EUR"), "{pools}");
    assert!(pools.contains("returned 20.00 EUR"), "{pools}");
    // Bob is no treasurer: the ledger's own words come back.
    bob.until("/pools", "the allocation at Bob's", |b| {
        b.contains("allocated")
    });
    converged(&alice, &bob);
    bob.refused(
        "/pools",
        &format!("disburse-{application}"),
        "disbursement",
        &[("application", &application), ("m:amount", "10.00")],
        "Only treasurers disburse.",
    );

    // --- Roles: Bob becomes a steward by decision.
    decide_now(
        &alice,
        "decide-role",
        "Bob as steward",
        &[
            ("a:action", "role_grant"),
            ("a:member", &bob_id),
            ("a:role", "steward"),
        ],
    );
    alice.until(&format!("/members/{bob_id}"), "Bob a steward", |b| {
        b.contains("steward")
    });

    // --- Relief: Alice asks, sealed to the stewards; she may not approve herself; Bob does.
    alice.wrote(
        "/pools",
        &format!("relief-new-{fund}"),
        "relief_request",
        &[
            ("fund", &fund),
            ("m:amount", "50.00"),
            ("urgency", "high"),
            ("seal:reason", "The boiler broke in November"),
        ],
    );
    // Bob, a steward now, sees the request with its approval button.
    let pools = bob.until(
        "/pools",
        "Alice's relief request at Bob's, a steward",
        |b| {
            b.find("<h2>Relief requests")
                .is_some_and(|i| b[i..].contains("id=\"relief-"))
        },
    );
    let requests = &pools[pools.find("<h2>Relief requests").unwrap()..];
    let request_id = id_after(requests, "relief-");
    alice.refused(
        "/pools",
        &format!("relief-{request_id}"),
        "relief_approve",
        &[("request", &request_id)],
        "A steward does not approve their own request.",
    );
    bob.wrote(
        "/pools",
        &format!("relief-{request_id}"),
        "relief_approve",
        &[("request", &request_id)],
    );
    bob.until("/pools", "Bob's approval counted", |b| {
        b.contains("1 approvals")
    });

    // --- Moderation: Bob reports Alice's proposal; Alice, a moderator, hides it.
    let props = bob.until("/proposals", "the proposal at Bob's", |b| {
        b.contains("A bench by the bus stop")
    });
    let target = id_after(&props, "report-");
    converged(&alice, &bob);
    bob.refused(
        "/proposals",
        &format!("report-{target}"),
        "report",
        &[
            ("target_kind", "record"),
            ("target", &target),
            ("reason", "no"),
        ],
        "Some field is out of range or empty; check the lengths and numbers.",
    );
    bob.wrote(
        "/proposals",
        &format!("report-{target}"),
        "report",
        &[
            ("target_kind", "record"),
            ("target", &target),
            ("reason", "It duplicates last year's proposal"),
        ],
    );
    assert!(bob
        .get("/moderation")
        .body
        .contains("Only moderators see reports"));
    let m = alice.until("/moderation", "Bob's report at Alice's", |b| {
        b.contains("It duplicates last year")
    });
    assert!(m.contains("Proposal “A bench by the bus stop”"), "{m}");
    let hide = id_after(&m, "hide-");
    let hide_form = format!("hide-{hide}");
    alice.refused(
        "/moderation",
        &hide_form,
        "hide",
        &[("record", &target), ("reason", "x")],
        "Some field is out of range or empty; check the lengths and numbers.",
    );
    alice.wrote(
        "/moderation",
        &hide_form,
        "hide",
        &[("record", &target), ("reason", "A duplicate")],
    );
    let m = alice.get("/moderation").body;
    assert!(m.contains("Hidden."), "{m}");
    converged(&alice, &bob);
    bob.refused(
        "/moderation",
        "hide-any",
        "hide",
        &[("record", &target), ("reason", "Bob tries")],
        "Only moderators hide records.",
    );

    bob_node.shutdown().await.unwrap();
    alice_node.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_session_survives_a_restart_of_the_node() {
    init_tracing();
    let root = tempfile::tempdir().unwrap();
    let (alice_dir, _bob) = alice_and_bob(root.path());
    let node = start_app_node(&alice_dir, vec![]).await;
    let alice = Client::log_in(&alice_dir, port(&node));
    assert!(alice.get("/").body.contains("Hello, Alice"));
    node.shutdown().await.unwrap();

    let node = start_app_node(&alice_dir, vec![]).await;
    let again = Client {
        port: port(&node),
        cookie: alice.cookie.clone(),
        csrf: alice.csrf.clone(),
    };
    let home = again.get("/");
    assert_eq!(home.status, 200, "still logged in: {home:?}");
    assert!(home.body.contains("Hello, Alice"));
    // The same CSRF token still writes.
    again.wrote(
        "/proposals",
        "new-proposal",
        "proposal",
        &[("title", "Written after a restart"), ("description", "")],
    );
    // A cookie the node never issued is still refused.
    let stranger = Client {
        cookie: format!("coop_session={}", "ab".repeat(32)),
        ..again
    };
    assert_eq!(stranger.get("/").status, 401);
    node.shutdown().await.unwrap();
}
