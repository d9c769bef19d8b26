//! The control socket of a running node: permissions, status, writes published, removal.

use std::os::unix::fs::PermissionsExt;
use std::time::Duration;

use coop_node::control::{self, Request, Response};
use coop_tests::{addr, community, holds, proposal, start_node, wait_until, DEADLINE};

fn call(socket: std::path::PathBuf, req: Request) -> Response {
    control::call(&socket, &req, Duration::from_secs(60)).expect("control call")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn control_socket_serves_status_and_publishes_submits() {
    coop_tests::init_tracing();
    let root = tempfile::tempdir().unwrap();
    let c = community(root.path(), 1);
    let socket = c.dirs[0].control_socket();
    // A stale socket file from a crashed run is replaced.
    std::fs::write(&socket, b"stale").unwrap();
    let a = start_node(&c.dirs[0], vec![]).await;
    let b = start_node(&c.dirs[1], vec![addr(&a)]).await;

    let mode = std::fs::metadata(&socket).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600, "control socket mode");

    let s = socket.clone();
    let status = match tokio::task::spawn_blocking(move || call(s, Request::Status))
        .await
        .unwrap()
    {
        Response::Status { status } => status,
        other => panic!("unexpected {other:?}"),
    };
    assert!(status.running);
    assert!(!status.listen.is_empty());
    for l in &status.listen {
        assert!(l.ends_with(&format!("/p2p/{}", a.peer_id())), "{l}");
    }
    assert_eq!(status.listen, a.listen_addrs());

    // Status lists the peer once connected.
    let b_id = b.peer_id();
    let s = socket.clone();
    let connected = wait_until(DEADLINE, || {
        let s = s.clone();
        let b_id = b_id.clone();
        async move {
            tokio::task::spawn_blocking(move || match call(s, Request::Status) {
                Response::Status { status } => status.peers.contains(&b_id),
                _ => false,
            })
            .await
            .unwrap()
        }
    })
    .await;
    assert!(connected, "status never listed the connected peer");

    // A write through the socket is durable, answered, and reaches the other node.
    let s = socket.clone();
    let id = match tokio::task::spawn_blocking(move || {
        call(
            s,
            Request::Submit {
                record: proposal("via the control socket"),
            },
        )
    })
    .await
    .unwrap()
    {
        Response::Submitted { id } => id,
        other => panic!("unexpected {other:?}"),
    };
    assert!(
        wait_until(DEADLINE, || holds(&b, &id)).await,
        "b never got it"
    );

    // A request that is not JSON gets an error answer, and the node carries on.
    let s = socket.clone();
    let raw = tokio::task::spawn_blocking(move || {
        use std::io::{BufRead, BufReader, Write};
        let mut st = std::os::unix::net::UnixStream::connect(&s).unwrap();
        st.write_all(b"this is not json\n").unwrap();
        let mut line = String::new();
        BufReader::new(st).read_line(&mut line).unwrap();
        line
    })
    .await
    .unwrap();
    assert!(raw.contains("\"result\":\"error\""), "{raw}");
    assert!(a.status().await.unwrap().running);

    a.shutdown().await.unwrap();
    assert!(!socket.exists(), "socket removed at shutdown");
    // The store is closed: the data dir opens directly again.
    let n = coop_node::LocalNode::open(&c.dirs[0]).unwrap();
    assert!(n.ledger().contains(&id));
    drop(n);
    b.shutdown().await.unwrap();
}
