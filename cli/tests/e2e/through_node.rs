//! The same commands with no node and through a running `coop up`: every reading command
//! must work through the node after any write, and give the same answer as the store.

use super::support::*;

/// Regression: after `coop purchase commit` through a running node, every reading command
/// failed with `invalid type: string "0", expected u32` (a purchase's rounds, a map keyed by
/// round number, inside an internally tagged response).
#[test]
fn reading_commands_work_through_a_running_node_after_a_purchase_commitment() {
    let w = World::new();
    let alice = w.found(&[]);
    let now = 1_900_000_000_i64;
    let deadline = format!("@{}", now + 86_400);
    let p = coop_at(
        &alice,
        now,
        &[
            "--json",
            "purchase",
            "propose",
            "--item",
            "Olive oil",
            "--unit",
            "litre",
            "--target",
            "10",
            "--reference-price",
            "12.50",
            "--currency",
            "EUR",
            "--deadline",
            &deadline,
        ],
    )
    .ok()
    .json();
    let pid = s(&p, "id");
    let up = Up::start(&alice, &[]);
    coop_at(
        &alice,
        now,
        &["purchase", "commit", &pid[..8], "--quantity", "3"],
    )
    .ok();
    let reads: &[&[&str]] = &[
        &["purchase", "list"],
        &["purchase", "show", &pid[..8]],
        &["balance"],
        &["members"],
        &["ledger", "--all"],
    ];
    let through: Vec<_> = reads
        .iter()
        .map(|args| {
            let mut a = vec!["--json"];
            a.extend_from_slice(args);
            coop_at(&alice, now, &a).ok().stdout
        })
        .collect();
    drop(up);
    for (args, via_node) in reads.iter().zip(through) {
        let mut a = vec!["--json"];
        a.extend_from_slice(args);
        let direct = coop_at(&alice, now, &a).ok().stdout;
        assert_eq!(
            via_node,
            direct,
            "`coop {}` differs through the node",
            args.join(" ")
        );
    }
}

/// Runs `coop --json ARGS` claiming `now`; asserts success; returns stdout.
fn at(dir: &std::path::Path, now: i64, args: &[&str]) -> String {
    let mut a = vec!["--json"];
    a.extend_from_slice(args);
    coop_at(dir, now, &a).ok().stdout
}

/// Every command group writes through a running `coop up` (claiming the time with
/// `COOP_NOW`), and every reading command answers the same through the node as from the
/// store once the node stopped.
#[test]
fn every_command_group_gives_the_same_answers_with_and_without_a_node() {
    let w = World::new();
    let (alice, bob) = w.two(&[]);
    let now = 1_900_000_000_i64;
    let up = Up::start(&alice, &[]);

    // Writes of every group, through the node.
    let v: serde_json::Value = serde_json::from_str(&at(
        &alice,
        now,
        &["proposal", "open", "--title", "Tool library"],
    ))
    .unwrap();
    let prop = s(&v, "id");
    at(&alice, now, &["sp", "allocate", &prop[..8], "5"]);
    at(
        &alice,
        now,
        &[
            "hours",
            "log",
            "--to",
            "Bob",
            "--minutes",
            "90",
            "--service",
            "Fixed a bike",
        ],
    );
    let v: serde_json::Value = serde_json::from_str(&at(
        &alice,
        now,
        &[
            "aid",
            "request",
            "--category",
            "skill",
            "--title",
            "Move a sofa",
            "--description",
            "Second floor, no lift",
        ],
    ))
    .unwrap();
    let aid = s(&v, "id");
    let v: serde_json::Value = serde_json::from_str(&at(
        &alice,
        now,
        &[
            "decision",
            "open",
            "--title",
            "Bigger pledges",
            "--window",
            "1h",
            "--param",
            "sp_max_per_proposal=20",
        ],
    ))
    .unwrap();
    let dec = s(&v, "id");
    at(&alice, now + 10, &["decision", "vote", &dec[..8], "yes"]);
    // The claimed time travels with the write: closing needs the window to be over.
    at(&alice, now + 4_000, &["decision", "close", &dec[..8]]);
    let deadline = format!("@{}", now + 86_400);
    let v: serde_json::Value = serde_json::from_str(&at(
        &alice,
        now,
        &[
            "purchase",
            "propose",
            "--item",
            "Olive oil",
            "--unit",
            "litre",
            "--target",
            "10",
            "--reference-price",
            "12.50",
            "--currency",
            "EUR",
            "--deadline",
            &deadline,
        ],
    ))
    .unwrap();
    let pur = s(&v, "id");
    at(
        &alice,
        now,
        &["purchase", "commit", &pur[..8], "--quantity", "10"],
    );
    at(
        &alice,
        now,
        &[
            "purchase",
            "bid",
            &pur[..8],
            "--supplier",
            "Hill farm",
            "--unit-price",
            "11",
        ],
    );
    let v: serde_json::Value = serde_json::from_str(&at(
        &alice,
        now,
        &[
            "pool",
            "create",
            "--name",
            "Solar roof",
            "--currency",
            "EUR",
        ],
    ))
    .unwrap();
    let pool = s(&v, "id");
    at(&alice, now, &["pool", "contribute", &pool[..8], "100"]);
    let v: serde_json::Value = serde_json::from_str(&at(
        &alice,
        now,
        &[
            "pool",
            "create",
            "--name",
            "Relief",
            "--currency",
            "EUR",
            "--relief",
        ],
    ))
    .unwrap();
    let fund = s(&v, "id");
    let v: serde_json::Value = serde_json::from_str(&at(
        &alice,
        now,
        &["relief", "request", &fund[..8], "1", "--reason", "Mine"],
    ))
    .unwrap();
    let relief = s(&v, "id");
    at(
        &alice,
        now,
        &["report", "member", "Bob", "--reason", "Testing reports"],
    );
    at(&alice, now, &["visibility", "set", "public"]);

    at(
        &alice,
        now + 4_500,
        &[
            "decision",
            "open",
            "--title",
            "Even bigger pledges",
            "--window",
            "1h",
            "--param",
            "sp_max_per_proposal=30",
        ],
    );

    // The ledger shows the claimed times, not the node's clock.
    let ledger: serde_json::Value =
        serde_json::from_str(&at(&alice, now + 5_000, &["ledger", "--all"])).unwrap();
    assert!(
        ledger.to_string().contains(&(now + 4_000).to_string()),
        "{ledger}"
    );

    let reads: Vec<Vec<&str>> = vec![
        vec!["members"],
        vec!["balance"],
        vec!["balance", "Bob"],
        vec!["hours", "pending"],
        vec!["proposal", "list"],
        vec!["proposal", "show", &prop[..8]],
        vec!["sp", "status"],
        vec!["aid", "list"],
        vec!["aid", "show", &aid[..8]],
        vec!["ledger", "--all"],
        vec!["ledger", "--kind", "attest"],
        vec!["ledger", "--limit", "3"],
        vec!["params"],
        vec!["decision", "list"],
        vec!["decision", "show", &dec[..8]],
        vec!["moderation", "list"],
        vec!["purchase", "list"],
        vec!["purchase", "show", &pur[..8]],
        vec!["pool", "list"],
        vec!["pool", "show", &pool[..8]],
        vec!["relief", "list"],
        vec!["relief", "show", &relief[..8]],
        vec!["visibility"],
        vec!["metrics"],
        vec!["export", "--format", "json"],
        vec!["verify"],
        vec!["hours", "list"],
        vec!["hours", "list", "--member", "bob"],
        vec!["profile", "BOB"],
        vec!["profile", "Alice"],
        vec!["inbox"],
    ];
    let later = now + 5_000;
    let through: Vec<String> = reads.iter().map(|r| at(&alice, later, r)).collect();
    api_answers_round_trip_and_page(&alice);
    // `hours list` shows my attestation and its status; names match in any case.
    let mine: serde_json::Value =
        serde_json::from_str(&at(&alice, later, &["hours", "list"])).unwrap();
    let rows = mine["attestations"].as_array().unwrap();
    assert_eq!(rows.len(), 1, "{mine}");
    assert_eq!(
        (s(&rows[0], "status"), s(&rows[0], "with_name")),
        ("pending".into(), "Bob".into())
    );
    let bob_profile: serde_json::Value =
        serde_json::from_str(&at(&alice, later, &["profile", "bOb"])).unwrap();
    assert_eq!(
        bob_profile["member"]["display_name"], "Bob",
        "{bob_profile}"
    );
    coop_at(&alice, later, &["profile", "Nobody"]).code(1);
    // The inbox lists the open decision I have not voted on, with its closing time.
    let inbox: serde_json::Value = serde_json::from_str(&at(&alice, later, &["inbox"])).unwrap();
    let decisions = inbox["decisions"].as_array().unwrap();
    assert_eq!(decisions.len(), 1, "{inbox}");
    assert_eq!(i(&decisions[0], "closes_at"), now + 4_500 + 3_600);
    // Bob, with no node, reads the same ledger once he has Alice's records.
    drop(up);
    for (r, via_node) in reads.iter().zip(&through) {
        let direct = at(&alice, later, r);
        assert_eq!(
            via_node,
            &direct,
            "`coop {}` differs through the node",
            r.join(" ")
        );
    }
    w.carry(&alice, &bob);
    assert_eq!(
        at(&bob, later, &["params"]),
        through[12],
        "params differ between members"
    );
    // Bob's inbox holds Alice's attestation to confirm.
    let inbox: serde_json::Value = serde_json::from_str(&at(&bob, later, &["inbox"])).unwrap();
    assert_eq!(
        inbox["attestations"].as_array().unwrap().len(),
        1,
        "{inbox}"
    );
    let text = coop_at(&bob, later, &["inbox"]).ok().stdout;
    assert!(
        text.contains("confirm hours") && text.contains("Alice"),
        "{text}"
    );
}

/// A flood of idle and half-open connections to the API socket does not keep the owner's
/// commands out: `coop status` and a write still answer within 2 s.
#[test]
fn a_flood_of_idle_connections_does_not_lock_out_the_cli() {
    use std::io::Write;
    use std::os::unix::net::UnixStream;
    use std::time::{Duration, Instant};

    let w = World::new();
    let alice = w.found(&[]);
    let _up = Up::start(&alice, &[]);
    let socket = alice.join("api.sock");
    let mut flood = Vec::new();
    for i in 0..64 {
        let mut s = UnixStream::connect(&socket).expect("connect");
        if i % 2 == 1 {
            // Half-open: a request head that never ends.
            s.write_all(b"GET /api/v1/status HTTP/1.1\r\nhost: coop\r\n")
                .unwrap();
        }
        flood.push(s);
    }
    let start = Instant::now();
    coop(&alice, &["status"]).ok();
    let status_took = start.elapsed();
    let start = Instant::now();
    coop(
        &alice,
        &["proposal", "open", "--title", "Despite the flood"],
    )
    .ok();
    let write_took = start.elapsed();
    assert!(
        status_took < Duration::from_secs(2),
        "status took {status_took:?}"
    );
    assert!(
        write_took < Duration::from_secs(2),
        "the write took {write_took:?}"
    );
    drop(flood);
}

/// An oversized body is refused with 413 and a JSON reason; malformed JSON with 400.
#[test]
fn oversized_and_malformed_bodies_get_json_errors() {
    use std::io::{Read, Write};
    use std::os::unix::net::UnixStream;

    let w = World::new();
    let alice = w.found(&[]);
    let _up = Up::start(&alice, &[]);
    let socket = alice.join("api.sock");
    let send = |body: &[u8]| {
        let mut s = UnixStream::connect(&socket).expect("connect");
        write!(
            s,
            "POST /api/v1/records HTTP/1.1\r\nhost: coop\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n",
            body.len()
        )
        .unwrap();
        // The node may answer and close before reading a body it refuses.
        let _ = s.write_all(body);
        let mut answer = String::new();
        let _ = s.read_to_string(&mut answer);
        answer
    };
    let big = vec![b' '; 2 * 1024 * 1024];
    let answer = send(&big);
    assert!(answer.starts_with("HTTP/1.1 413"), "{answer}");
    assert!(answer.contains("\"reason\":\"too_large\""), "{answer}");
    let answer = send(b"{\"record\": 12");
    assert!(answer.starts_with("HTTP/1.1 4"), "{answer}");
    let answer = send(b"not json at all");
    assert!(answer.starts_with("HTTP/1.1 400"), "{answer}");
    assert!(answer.contains("\"reason\":\"bad_request\""), "{answer}");
    // A refusal keeps the ledger's reason name.
    let refused = coop(&alice, &["sp", "allocate", "00", "500"]);
    assert_eq!(refused.code, 1, "{refused:?}");
}

/// Fetches `path` from the node as `T` and checks that it survives JSON both ways.
fn round_trip<T>(c: &coop_node::api::ApiClient, path: &str) -> T
where
    T: serde::Serialize + serde::de::DeserializeOwned + PartialEq + std::fmt::Debug,
{
    let v: T = c.get(path).unwrap_or_else(|e| panic!("GET {path}: {e}"));
    let text = serde_json::to_string(&v).unwrap();
    let back: T = serde_json::from_str(&text).unwrap_or_else(|e| panic!("{path}: {e}: {text}"));
    assert_eq!(v, back, "{path} does not round-trip");
    v
}

/// Every answer type of the API, on a ledger with records of every group, round-trips
/// through JSON; the ledger pages join up; a bad kind is refused with the list of kinds.
fn api_answers_round_trip_and_page(dir: &std::path::Path) {
    use coop_model::query::{self, LedgerPage};
    use coop_node::api::{self, ApiClient, Envelopes};
    use coop_node::{NodeError, Status, VerifyReport};

    let c = ApiClient::new(&dir.join("api.sock")).unwrap();
    let status: Status = round_trip(&c, "/status");
    let me = status.member.to_hex();
    // The whole state is no resource: commands read typed answers only.
    assert!(matches!(
        c.get::<serde_json::Value>("/state"),
        Err(NodeError::InvalidInput(_))
    ));
    for family in query::Family::ALL {
        let v: query::FamilyView = round_trip(&c, &format!("/views/{}", family.as_str()));
        assert_eq!(v.family, family);
        assert!(!v.members.is_empty(), "{family:?}");
    }
    let pools_view: query::FamilyView = round_trip(&c, "/views/pools");
    assert_eq!(
        (pools_view.pools.len(), pools_view.relief_requests.len()),
        (2, 1)
    );
    let purchases_view: query::FamilyView = round_trip(&c, "/views/purchases");
    assert_eq!(purchases_view.purchases[0].rounds.len(), 1);
    assert!(matches!(
        c.get::<query::FamilyView>("/views/everything"),
        Err(NodeError::InvalidInput(m)) if m.contains("views are: ")
    ));
    // Records by id prefix, among the kinds asked for.
    let entry = &pools_view.entries[0];
    let hex = entry.id.to_hex();
    let found: Vec<query::RecordRef> = round_trip(
        &c,
        &api::RecordsParams::new(&[entry.kind], &hex[..8]).path(),
    );
    assert_eq!(found.len(), 1);
    assert_eq!(found[0].id, entry.id);
    let none: Vec<query::RecordRef> = round_trip(
        &c,
        &api::RecordsParams::new(&[coop_model::Kind::Vote], &hex[..8]).path(),
    );
    assert!(none.is_empty(), "{none:?}");
    assert!(matches!(
        c.get::<Vec<query::RecordRef>>("/records?prefix=zz"),
        Err(NodeError::InvalidInput(_))
    ));
    assert!(matches!(
        c.get::<Vec<query::RecordRef>>("/records?prefix=abcd&kinds=nonsense"),
        Err(NodeError::InvalidInput(m)) if m.contains("kinds are: ")
    ));
    round_trip::<Vec<coop_model::state::Attestation>>(&c, &format!("/members/{me}/pending"));
    let x: query::ExportAnswer = round_trip(&c, "/export/records?all=true");
    assert!(!x.records.is_empty());
    assert!(x.to_export().is_ok());
    round_trip::<Vec<query::MemberRow>>(&c, "/members");
    round_trip::<query::Profile>(&c, &format!("/members/{me}"));
    round_trip::<query::BalanceAnswer>(&c, &format!("/members/{me}/balance?now=1900000000"));
    let hours: query::HoursPage = round_trip(&c, &format!("/members/{me}/hours"));
    assert_eq!(
        (hours.attestations.len(), hours.total, hours.next),
        (1, 1, None)
    );
    // A cursor naming no attestation of the member is a one-line 400.
    let bad = c.get::<query::HoursPage>(&format!("/members/{me}/hours?before={}", "ab".repeat(32)));
    assert!(
        matches!(&bad, Err(NodeError::InvalidInput(m)) if m.contains("cursor")),
        "{bad:?}"
    );
    round_trip::<query::Inbox>(&c, "/inbox?now=1900005000");
    round_trip::<Vec<coop_model::state::Proposal>>(&c, "/proposals");
    round_trip::<Vec<coop_model::state::AidRequest>>(&c, "/aid");
    round_trip::<Vec<coop_model::state::Decision>>(&c, "/decisions");
    round_trip::<query::Moderation>(&c, "/moderation");
    let purchases: Vec<query::PurchaseAnswer> = round_trip(&c, "/purchases");
    assert_eq!(purchases[0].rounds.len(), 1, "{purchases:?}");
    let pools: query::Pools = round_trip(&c, "/pools");
    assert_eq!((pools.pools.len(), pools.relief.len()), (2, 1));
    round_trip::<Vec<query::VisibilityRow>>(&c, "/visibility");
    let params: query::ParamsAnswer = round_trip(&c, "/params");
    assert!(!params.history.is_empty(), "{params:?}");
    round_trip::<coop_model::metrics::Metrics>(&c, "/metrics?now=1900005000&since=2030-01-01");
    round_trip::<Envelopes>(&c, "/export");
    let report: VerifyReport = c.post("/verify", &()).unwrap();
    assert!(report.ok(), "{report:?}");

    // Pages of 4 join up to the whole ledger, newest first.
    let all: LedgerPage = round_trip(&c, "/ledger?all=true&limit=500");
    let mut joined = Vec::new();
    let mut path = "/ledger?all=true&limit=4".to_string();
    for _ in 0..all.rows.len() + 1 {
        let page: LedgerPage = round_trip(&c, &path);
        assert!(page.rows.len() <= 4);
        joined.extend(page.rows);
        match page.next {
            Some(n) => path = format!("/ledger?all=true&limit=4&before={n}"),
            None => break,
        }
    }
    assert_eq!(joined, all.rows);
    let attests: LedgerPage = round_trip(&c, "/ledger?kind=attest");
    assert_eq!(attests.rows.len(), 1);
    match c.get::<LedgerPage>("/ledger?kind=nonsense") {
        Err(NodeError::InvalidInput(m)) => assert!(m.contains("kinds are: "), "{m}"),
        other => panic!("a bad kind was not refused: {other:?}"),
    }
    // Error bodies and events are API types too.
    let e: api::ErrorBody = serde_json::from_str(
        r#"{"error":{"reason":"over_proposal_cap","detail":"11 SP on one proposal, cap is 10"}}"#,
    )
    .unwrap();
    assert_eq!(
        serde_json::to_value(&e).unwrap()["error"]["reason"],
        "over_proposal_cap"
    );
}

/// The app's loopback port: chosen once and kept in config.json, the same router read-only
/// behind the app's session (docs/APP.md), and only for a loopback `Host` with that port.
#[test]
fn the_app_port_is_kept_read_only_and_loopback_only() {
    use std::io::{Read, Write};
    use std::net::TcpStream;

    let w = World::new();
    let alice = w.found(&[]);
    let port = |dir: &std::path::Path| -> u16 {
        let config: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(dir.join("config.json")).unwrap())
                .unwrap();
        config["ui_port"]
            .as_u64()
            .expect("ui_port kept in config.json") as u16
    };
    let ask = |port: u16, method: &str, path: &str, host: &str, cookie: &str| -> String {
        let mut s = TcpStream::connect(("127.0.0.1", port)).expect("connect to the app port");
        write!(
            s,
            "{method} {path} HTTP/1.1\r\nhost: {host}\r\ncookie: {cookie}\r\ncontent-length: 0\r\nconnection: close\r\n\r\n"
        )
        .unwrap();
        let mut answer = String::new();
        let _ = s.read_to_string(&mut answer);
        answer
    };
    // `coop ui` prints a one-time login link; opening it sets the session cookie.
    let log_in = |port: u16| -> String {
        let ui = json(&alice, &["ui", "--no-open"]);
        let url = s(&ui, "url");
        let path = url
            .split_once(&format!(":{port}"))
            .expect("the app's URL")
            .1;
        let answer = ask(port, "GET", path, &format!("127.0.0.1:{port}"), "");
        assert!(answer.starts_with("HTTP/1.1 303"), "{answer}");
        let line = answer
            .lines()
            .find(|l| l.to_ascii_lowercase().starts_with("set-cookie:"))
            .expect("a session cookie");
        line.split_once(':')
            .unwrap()
            .1
            .trim()
            .split(';')
            .next()
            .unwrap()
            .to_string()
    };
    let up = Up::start(&alice, &[]);
    let first = port(&alice);
    let host = format!("127.0.0.1:{first}");
    let anonymous = ask(first, "GET", "/api/v1/status", &host, "");
    assert!(
        anonymous.starts_with("HTTP/1.1 401") && anonymous.contains("session_required"),
        "{anonymous}"
    );
    let cookie = log_in(first);
    let status = ask(first, "GET", "/api/v1/status", &host, &cookie);
    assert!(status.starts_with("HTTP/1.1 200"), "{status}");
    assert!(status.contains("\"running\":true"), "{status}");
    let write = ask(
        first,
        "POST",
        "/api/v1/status",
        &format!("localhost:{first}"),
        &cookie,
    );
    assert!(
        write.starts_with("HTTP/1.1 403") && write.contains("read_only"),
        "{write}"
    );
    let rebound = ask(first, "GET", "/api/v1/status", "evil.example:80", &cookie);
    assert!(
        rebound.starts_with("HTTP/1.1 403") && rebound.contains("forbidden"),
        "{rebound}"
    );
    drop(up);
    // Started again, the node serves the app on the same port (sessions end with the node).
    let _up = Up::start(&alice, &[]);
    assert_eq!(port(&alice), first);
    let cookie = log_in(first);
    let again = ask(
        first,
        "GET",
        "/api/v1/status",
        &format!("localhost:{first}"),
        &cookie,
    );
    assert!(again.starts_with("HTTP/1.1 200"), "{again}");
}

/// Event-stream subscribers beyond the connection cap do not lock out the owner's CLI
/// either: the oldest stream is closed to make room (its client resumes with
/// `Last-Event-ID`).
#[test]
fn a_flood_of_event_subscribers_does_not_lock_out_the_cli() {
    use std::io::{BufRead, BufReader, Write};
    use std::os::unix::net::UnixStream;
    use std::time::{Duration, Instant};

    let w = World::new();
    let alice = w.found(&[]);
    let _up = Up::start(&alice, &[]);
    let socket = alice.join("api.sock");
    let mut streams = Vec::new();
    for _ in 0..40 {
        let mut s = UnixStream::connect(&socket).expect("connect");
        s.write_all(b"GET /api/v1/events HTTP/1.1\r\nhost: coop\r\n\r\n")
            .unwrap();
        s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
        let mut head = String::new();
        let mut r = BufReader::new(s.try_clone().unwrap());
        r.read_line(&mut head).unwrap();
        assert!(head.starts_with("HTTP/1.1 200"), "{head}");
        streams.push((s, r));
    }
    let start = Instant::now();
    coop(&alice, &["status"]).ok();
    let took = start.elapsed();
    assert!(took < Duration::from_secs(2), "status took {took:?}");
    drop(streams);
}
