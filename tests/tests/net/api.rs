//! The API socket of a running node: permissions, status, writes published, refusals and
//! malformed requests as JSON errors, removal at shutdown.

// The node's errors carry a whole `Rejection` by design (see coop-node's lib docs).
#![allow(clippy::result_large_err)]

use std::os::unix::fs::PermissionsExt;
use std::time::Duration;

use coop_node::api::{ApiClient, WriteRequest, Written};
use coop_node::{NodeError, Status};
use coop_tests::{addr, community, holds, proposal, start_node, wait_until, DEADLINE};

fn client(socket: &std::path::Path) -> ApiClient {
    ApiClient::new(socket)
        .expect("client")
        .with_timeout(Duration::from_secs(60))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn api_socket_serves_status_and_publishes_writes() {
    coop_tests::init_tracing();
    let root = tempfile::tempdir().unwrap();
    let c = community(root.path(), 1);
    let socket = c.dirs[0].api_socket();
    // A stale socket file from a crashed run is replaced.
    std::fs::write(&socket, b"stale").unwrap();
    let a = start_node(&c.dirs[0], vec![]).await;
    let b = start_node(&c.dirs[1], vec![addr(&a)]).await;

    let mode = std::fs::metadata(&socket).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600, "API socket mode");

    let s = socket.clone();
    let status: Status = tokio::task::spawn_blocking(move || client(&s).get("/status"))
        .await
        .unwrap()
        .expect("status");
    assert!(status.running);
    assert!(!status.listen.is_empty());
    for l in &status.listen {
        assert!(l.ends_with(&format!("/p2p/{}", a.peer_id())), "{l}");
    }
    assert_eq!(status.listen, a.listen_addrs());

    // The machine-readable description is served, and describes what is served.
    let s = socket.clone();
    let doc: serde_json::Value =
        tokio::task::spawn_blocking(move || client(&s).get("/openapi.json"))
            .await
            .unwrap()
            .expect("openapi.json");
    assert!(
        doc["openapi"].as_str().is_some_and(|v| v.starts_with("3.")),
        "{doc}"
    );
    for (method, path) in coop_node::api::route_table() {
        let op = &doc["paths"][&path][method.to_lowercase()];
        assert!(op.is_object(), "{method} {path} not in the served document");
    }

    // Status lists the peer once connected.
    let b_id = b.peer_id();
    let s = socket.clone();
    let connected = wait_until(DEADLINE, || {
        let s = s.clone();
        let b_id = b_id.clone();
        async move {
            tokio::task::spawn_blocking(move || {
                client(&s)
                    .get::<Status>("/status")
                    .is_ok_and(|st| st.peers.contains(&b_id))
            })
            .await
            .unwrap()
        }
    })
    .await;
    assert!(connected, "status never listed the connected peer");

    // A write through the socket is durable, answered, and reaches the other node.
    let s = socket.clone();
    let written: Written = tokio::task::spawn_blocking(move || {
        client(&s).post(
            "/records",
            &WriteRequest {
                record: proposal("via the API socket"),
                now: None,
            },
        )
    })
    .await
    .unwrap()
    .expect("write");
    assert!(
        wait_until(DEADLINE, || holds(&b, &written.id)).await,
        "b never got it"
    );

    // A body that is not JSON gets a 4xx JSON error with a one-line reason, and the node
    // carries on.
    let s = socket.clone();
    let raw = tokio::task::spawn_blocking(move || {
        use std::io::{Read, Write};
        let mut st = std::os::unix::net::UnixStream::connect(&s).unwrap();
        let body = "this is not json";
        write!(
            st,
            "POST /api/v1/records HTTP/1.1\r\nhost: coop\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
            body.len()
        )
        .unwrap();
        let mut answer = String::new();
        st.read_to_string(&mut answer).unwrap();
        answer
    })
    .await
    .unwrap();
    assert!(raw.starts_with("HTTP/1.1 400"), "{raw}");
    assert!(raw.contains("\"reason\":\"bad_request\""), "{raw}");
    assert!(a.status().await.unwrap().running);

    // An unknown resource is a JSON 404 too; the client turns it into a plain error.
    let s = socket.clone();
    let missing = tokio::task::spawn_blocking(move || client(&s).get::<Status>("/nothing"))
        .await
        .unwrap();
    assert!(
        matches!(missing, Err(NodeError::InvalidInput(_))),
        "{missing:?}"
    );

    a.shutdown().await.unwrap();
    assert!(!socket.exists(), "socket removed at shutdown");
    // The store is closed: the data dir opens directly again.
    let n = coop_node::LocalNode::open(&c.dirs[0]).unwrap();
    assert!(n.ledger().contains(&written.id));
    drop(n);
    b.shutdown().await.unwrap();
}

/// Opens the event stream (with `Last-Event-ID` when given) and returns it once the
/// answer's head has arrived: from then on the subscription is in place.
async fn subscribe(
    socket: &std::path::Path,
    last_event_id: Option<u64>,
) -> (tokio::net::UnixStream, String) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut s = tokio::net::UnixStream::connect(socket)
        .await
        .expect("connect");
    let resume = last_event_id.map_or(String::new(), |id| format!("last-event-id: {id}\r\n"));
    s.write_all(
        format!("GET /api/v1/events HTTP/1.1\r\nhost: coop\r\naccept: text/event-stream\r\n{resume}\r\n")
            .as_bytes(),
    )
    .await
    .unwrap();
    let mut seen = String::new();
    let mut buf = [0u8; 4096];
    tokio::time::timeout(DEADLINE, async {
        while !seen.contains("\r\n\r\n") {
            match s.read(&mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(n) => seen.push_str(&String::from_utf8_lossy(&buf[..n])),
            }
        }
    })
    .await
    .expect("the event stream's head");
    assert!(seen.starts_with("HTTP/1.1 200"), "{seen}");
    assert!(seen.contains("text/event-stream"), "{seen}");
    (s, seen)
}

/// Reads an open event stream until `want` appears in it or the deadline passes.
async fn read_until(s: &mut tokio::net::UnixStream, mut seen: String, want: &str) -> String {
    use tokio::io::AsyncReadExt;
    let mut buf = [0u8; 4096];
    let _ = tokio::time::timeout(DEADLINE, async {
        while !seen.contains(want) {
            match s.read(&mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(n) => seen.push_str(&String::from_utf8_lossy(&buf[..n])),
            }
        }
    })
    .await;
    seen
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_record_written_on_another_node_arrives_on_the_event_stream() {
    coop_tests::init_tracing();
    let root = tempfile::tempdir().unwrap();
    let c = community(root.path(), 1);
    let a = start_node(&c.dirs[0], vec![]).await;
    let b = start_node(&c.dirs[1], vec![addr(&a)]).await;
    let socket = c.dirs[0].api_socket();
    let b_id = b.peer_id();
    let connected = wait_until(DEADLINE, || async { a.peers().contains(&b_id) }).await;
    assert!(connected, "the nodes never connected");

    // Subscribe on a, then write on b: the record arrives on a's stream.
    let (mut stream, head) = subscribe(&socket, None).await;
    let id = b.submit(proposal("seen live")).await.unwrap();
    let seen = read_until(&mut stream, head, &id.to_hex()).await;
    assert!(
        seen.contains("event: accepted") && seen.contains(&id.to_hex()),
        "no accepted event for {id} on a's stream: {seen}"
    );
    let line = seen
        .lines()
        .find(|l| l.starts_with("data:") && l.contains(&id.to_hex()))
        .expect("the event's data line");
    let event: coop_node::api::ApiEvent =
        serde_json::from_str(line.trim_start_matches("data:").trim()).expect("event JSON");
    assert_eq!(
        (event.kind.as_str(), event.detail.as_deref()),
        ("accepted", Some("peer"))
    );
    assert_eq!(event.record, Some(id));

    // A client that reconnects with Last-Event-ID gets what it missed from the ring.
    let (mut again, head) = subscribe(&socket, Some(0)).await;
    let replay = read_until(&mut again, head, &id.to_hex()).await;
    assert!(replay.contains(&id.to_hex()), "not replayed: {replay}");
    drop((stream, again));

    a.shutdown().await.unwrap();
    b.shutdown().await.unwrap();
}

/// A local write the ledger refuses is answered with the refusal and reported to event
/// subscribers as a `refused` event naming the reason; nothing is written.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_local_write_is_a_refused_event_on_the_stream() {
    coop_tests::init_tracing();
    let root = tempfile::tempdir().unwrap();
    let c = community(root.path(), 0);
    let a = start_node(&c.dirs[0], vec![]).await;
    let socket = c.dirs[0].api_socket();
    let before = a.status().await.unwrap().changes;

    let (mut stream, head) = subscribe(&socket, None).await;
    // Support Points on a proposal that does not exist.
    let s = socket.clone();
    let answer = tokio::task::spawn_blocking(move || {
        client(&s).post::<_, Written>(
            "/records",
            &WriteRequest {
                record: coop_model::Record::Allocate(coop_model::record::Allocate {
                    proposal: coop_model::RecordId([7; 32]),
                    points: coop_model::Points(5),
                }),
                now: None,
            },
        )
    })
    .await
    .unwrap();
    let Err(NodeError::Refused(rejection)) = answer else {
        panic!("the write was not refused: {answer:?}");
    };
    let reason = serde_json::to_value(rejection.reason).unwrap();
    let reason = reason.as_str().unwrap().to_string();
    let seen = read_until(&mut stream, head, "event: refused").await;
    let line = seen
        .lines()
        .skip_while(|l| *l != "event: refused")
        .find(|l| l.starts_with("data:"))
        .unwrap_or_else(|| panic!("no refused event on the stream: {seen}"));
    let event: coop_node::api::ApiEvent =
        serde_json::from_str(line.trim_start_matches("data:").trim()).expect("event JSON");
    assert_eq!(event.kind, "refused");
    assert!(
        event
            .detail
            .as_deref()
            .is_some_and(|d| d.starts_with(&reason)),
        "{event:?} does not name {reason}"
    );
    assert_eq!(
        a.status().await.unwrap().changes,
        before,
        "something was written"
    );
    drop(stream);
    a.shutdown().await.unwrap();
}
