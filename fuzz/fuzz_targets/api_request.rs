//! The node's local API (`node/src/api/`: hyper's HTTP/1.1 parser, axum's router, the typed
//! query and body extractors, the handlers) on arbitrary bytes sent as one request on the
//! API socket of a real running node. Oracles: nothing panics (libFuzzer aborts on any
//! panic, in any task); every answer is an HTTP response that is not a 500; and the node
//! still answers `GET /api/v1/status` afterwards.
#![no_main]

use std::path::PathBuf;
use std::sync::OnceLock;
use std::time::Duration;

use coop_model::Params;
use coop_node::run::{start, NodeHandle, RunOptions};
use coop_node::{DataDir, LocalNode};
use libfuzzer_sys::fuzz_target;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::UnixStream;
use tokio::runtime::Runtime;

/// A request is answered (or the connection closed) within this, else the node is stuck.
const ANSWER_WITHIN: Duration = Duration::from_secs(30);

struct Node {
    runtime: Runtime,
    socket: PathBuf,
    _handle: NodeHandle,
    _dir: tempfile::TempDir,
}

fn node() -> &'static Node {
    static NODE: OnceLock<Node> = OnceLock::new();
    NODE.get_or_init(|| {
        let tmp = tempfile::tempdir().expect("temp dir");
        let dir = DataDir::new(tmp.path().join("alice"));
        dir.init("Alice", [7; 32], [8; 32]).expect("init");
        LocalNode::found(&dir, "Fuzz Co-op", Params::default(), 1_750_000_000).expect("found");
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .expect("runtime");
        let opts = RunOptions {
            listen: vec!["/ip4/127.0.0.1/tcp/0".into()],
            mdns: false,
            ui: false,
            ..RunOptions::default()
        };
        let handle = runtime
            .block_on(start(dir.clone(), opts))
            .expect("node starts");
        Node {
            runtime,
            socket: dir.api_socket(),
            _handle: handle,
            _dir: tmp,
        }
    })
}

/// Sends `request` on a fresh connection, half-closes, and reads the whole answer — or, for
/// an event stream (which never ends by itself), its head.
async fn exchange(socket: &PathBuf, request: &[u8]) -> Vec<u8> {
    let mut s = UnixStream::connect(socket)
        .await
        .expect("the API socket accepts");
    // The node may answer (and close) before reading everything: a failed write is fine.
    let _ = s.write_all(request).await;
    let _ = s.shutdown().await;
    let mut answer = Vec::new();
    let mut buf = [0u8; 8192];
    let read = tokio::time::timeout(ANSWER_WITHIN, async {
        loop {
            match s.read(&mut buf).await {
                Ok(0) | Err(_) => return,
                Ok(k) => answer.extend_from_slice(&buf[..k]),
            }
            let head_end = answer.windows(4).position(|w| w == b"\r\n\r\n");
            if let Some(end) = head_end {
                let head = String::from_utf8_lossy(&answer[..end]).to_ascii_lowercase();
                if head.contains("content-type: text/event-stream") {
                    return;
                }
            }
        }
    })
    .await;
    assert!(
        read.is_ok(),
        "no answer within {ANSWER_WITHIN:?}: {:?}",
        String::from_utf8_lossy(&answer)
    );
    answer
}

/// The status code of an HTTP/1.x response, None when `answer` is not one.
fn status_of(answer: &[u8]) -> Option<u16> {
    let line = answer.split(|b| *b == b'\n').next()?;
    let rest = line
        .strip_prefix(b"HTTP/1.1 ")
        .or_else(|| line.strip_prefix(b"HTTP/1.0 "))?;
    let code = rest.get(..3)?;
    std::str::from_utf8(code).ok()?.parse().ok()
}

fuzz_target!(init: init(), |data: &[u8]| {
    let n = node();
    n.runtime.block_on(async {
        let answer = exchange(&n.socket, data).await;
        if !answer.is_empty() {
            let code = status_of(&answer);
            assert!(code.is_some(), "not an HTTP response: {:?}", String::from_utf8_lossy(&answer));
            assert_ne!(code, Some(500), "{}", String::from_utf8_lossy(&answer));
        }
        let status = exchange(
            &n.socket,
            b"GET /api/v1/status HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n",
        )
        .await;
        assert_eq!(status_of(&status), Some(200), "the node stopped answering");
    });
});

fn init() {
    // A Rust binary ignores SIGPIPE before `main`; libFuzzer's C `main` does not, and the
    // node writes to connections the harness has dropped (an event stream) as it would to
    // a client that went away.
    // SAFETY: setting a signal disposition to SIG_IGN before any thread of ours runs.
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_IGN);
    }
    quiet_automerge_panics();
}

/// As in `gate.rs`: automerge's internal panics are caught on purpose by the gate.
fn quiet_automerge_panics() {
    let abort = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        if info
            .location()
            .is_some_and(|l| l.file().contains("automerge"))
        {
            return;
        }
        abort(info);
    }));
}
