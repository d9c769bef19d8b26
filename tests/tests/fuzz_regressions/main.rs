//! Every input a fuzz target crashed on, replayed in the normal suite: `fuzz/regressions/
//! <target>/<name>` runs through what the target checks. A new crash is a new file there.
//!
//! - `gate/automerge-change-decode-unwrap` (found by the `gate` target in its first five
//!   minutes): a change whose operations name an actor index automerge 0.12 does not have;
//!   `Change::decode` panics on an `unwrap`. The gate catches that panic and refuses the
//!   change as `malformed`; libFuzzer reported it because its hook aborts on every panic.

use std::path::{Path, PathBuf};

use coop_model::gate::verify_envelope;
use coop_model::{CommunityId, DocId, Envelope, Ledger, RejectReason};

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
            name == "gate",
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
