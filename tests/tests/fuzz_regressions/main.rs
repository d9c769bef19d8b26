//! Every input a fuzz target crashed on, replayed in the normal suite: `fuzz/regressions/
//! <target>/<name>` runs through what the target checks. A new crash is a new file there.
//!
//! - `gate/automerge-change-decode-unwrap` (found by the `gate` target in its first five
//!   minutes): a change whose operations name an actor index automerge 0.12 does not have;
//!   `Change::decode` panics on an `unwrap`. The gate catches that panic and refuses the
//!   change as `malformed`; libFuzzer reported it because its hook aborts on every panic.
//! - `api_request` (its first input, the empty request, then `GET /api/v1/status`): a client
//!   that shut its write half after sending a whole request got no answer — hyper closes a
//!   connection whose reader sees EOF unless half-closes are allowed. The API now answers.

use std::path::{Path, PathBuf};

use coop_model::gate::verify_envelope;
use coop_model::{CommunityId, DocId, Envelope, Ledger, RejectReason};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

fn inputs(target: &str) -> Vec<(PathBuf, Vec<u8>)> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../fuzz/regressions")
        .join(target);
    let mut out: Vec<_> = std::fs::read_dir(&dir)
        .map(|d| d.filter_map(Result::ok).map(|e| e.path()).collect())
        .unwrap_or_default();
    out.sort();
    out.into_iter()
        .map(|p| {
            let bytes = std::fs::read(&p).unwrap();
            (p, bytes)
        })
        .collect()
}

#[test]
fn every_regression_directory_has_a_replay() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../fuzz/regressions");
    for e in std::fs::read_dir(root).unwrap() {
        let name = e.unwrap().file_name().to_string_lossy().into_owned();
        assert!(
            name == "gate" || name == "api_request",
            "fuzz/regressions/{name} has no replay in this file"
        );
    }
}

#[test]
fn gate_inputs_are_refused_without_a_panic() {
    let cases = inputs("gate");
    assert!(!cases.is_empty());
    for (path, data) in cases {
        // The `gate` target's input: community id, signature, change bytes.
        let community = CommunityId(data[..32].try_into().unwrap());
        let env = Envelope {
            community,
            doc: DocId::ledger(&community),
            signature: data[32..96].try_into().unwrap(),
            change: data[96..].to_vec(),
        };
        for check_signature in [true, false] {
            let r = verify_envelope(env.clone(), &community, check_signature);
            assert!(r.is_err(), "{}: accepted", path.display());
        }
        let r = verify_envelope(env.clone(), &community, false).unwrap_err();
        assert_eq!(r.reason, RejectReason::Malformed, "{}: {r}", path.display());
        let out = Ledger::new(community).ingest([env.clone()]);
        assert_eq!(out.rejected.len(), 1, "{}", path.display());
        let out = Ledger::new(community).ingest_trusted([env]);
        assert_eq!(out.rejected.len(), 1, "{}", path.display());
    }
}

/// The `api_request` target's inputs: each sent on the API socket of a running node, then
/// the write half shut, as the target does; each is answered (or closed) and the node still
/// answers `GET /api/v1/status` — including to a client that half-closes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn api_requests_followed_by_a_half_close_are_answered() {
    let cases = inputs("api_request");
    assert!(!cases.is_empty());
    let root = tempfile::tempdir().unwrap();
    let c = coop_tests::community(root.path(), 0);
    let node = coop_tests::start_node(&c.dirs[0], Vec::new()).await;
    let socket = c.dirs[0].api_socket();
    let exchange = |request: Vec<u8>| {
        let socket = socket.clone();
        async move {
            let mut s = tokio::net::UnixStream::connect(&socket).await.unwrap();
            let _ = s.write_all(&request).await;
            s.shutdown().await.unwrap();
            let mut answer = Vec::new();
            tokio::time::timeout(coop_tests::DEADLINE, s.read_to_end(&mut answer))
                .await
                .expect("answered within the deadline")
                .unwrap();
            String::from_utf8_lossy(&answer).into_owned()
        }
    };
    for (path, data) in cases {
        let answer = exchange(data).await;
        assert!(
            !answer.starts_with("HTTP/1.1 500"),
            "{}: {answer}",
            path.display()
        );
        let status = exchange(
            b"GET /api/v1/status HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n".to_vec(),
        )
        .await;
        assert!(
            status.starts_with("HTTP/1.1 200 OK"),
            "{}: then status: {status:?}",
            path.display()
        );
    }
    node.shutdown().await.unwrap();
}
