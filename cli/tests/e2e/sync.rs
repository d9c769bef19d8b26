//! `sync export` / `sync import` between data dirs that never connect, and the gate on import.

use sha2::{Digest, Sha256};

use super::support::*;

/// Splits a sync file into its envelopes (docs/SYNC_FILE.md), independently of the CLI.
fn entries(file: &[u8]) -> (Vec<u8>, Vec<Vec<u8>>) {
    assert_eq!(&file[..8], b"COOPSYNC");
    assert_eq!(file[8], 1);
    let header = file[..45].to_vec();
    let count = u32::from_be_bytes(file[41..45].try_into().unwrap()) as usize;
    let mut at = 45;
    let mut out = Vec::new();
    for _ in 0..count {
        let len = u32::from_be_bytes(file[at..at + 4].try_into().unwrap()) as usize;
        out.push(file[at + 4..at + 4 + len].to_vec());
        at += 4 + len;
    }
    assert_eq!(file.len(), at + 32);
    assert_eq!(&file[at..], Sha256::digest(&file[..at]).as_slice());
    (header, out)
}

fn assemble(header: &[u8], envelopes: &[Vec<u8>]) -> Vec<u8> {
    let mut f = header[..41].to_vec();
    f.extend_from_slice(&(envelopes.len() as u32).to_be_bytes());
    for e in envelopes {
        f.extend_from_slice(&(e.len() as u32).to_be_bytes());
        f.extend_from_slice(e);
    }
    let check = Sha256::digest(&f);
    f.extend_from_slice(&check);
    f
}

#[test]
fn export_and_import_carry_changes_and_are_idempotent() {
    let w = World::new();
    let (alice, bob) = w.two(&[]);
    json(&alice, &["proposal", "open", "--title", "Bike racks"]);
    let file = w.file("usb.coopsync");
    let f = file.to_str().unwrap();
    let ex = json(&alice, &["sync", "export", f]);
    assert_eq!(i(&ex, "changes"), changes(&alice));
    assert_eq!(
        i(&ex, "bytes") as u64,
        std::fs::metadata(&file).unwrap().len()
    );
    assert_eq!(
        s(&ex, "community"),
        s(&json(&alice, &["status"]), "community")
    );

    let im = json(&bob, &["sync", "import", f]);
    assert_eq!(i(&im, "accepted"), 1);
    assert_eq!(i(&im, "read"), i(&ex, "changes"));
    assert_eq!(i(&im, "pending"), 0);
    assert!(im["rejected"].as_array().unwrap().is_empty());
    let again = json(&bob, &["sync", "import", f]);
    assert_eq!(i(&again, "accepted"), 0);
    assert_eq!(i(&again, "duplicates"), i(&ex, "changes"));
    assert_eq!(
        s(&json(&alice, &["status"]), "digest"),
        s(&json(&bob, &["status"]), "digest")
    );
    let text = coop(&bob, &["sync", "import", f]).ok().stdout;
    assert!(text.contains("0 new"), "{text}");
}

#[test]
fn import_runs_every_envelope_through_the_gate() {
    let w = World::new();
    let (alice, bob) = w.two(&[]);
    let p = s(
        &json(&alice, &["proposal", "open", "--title", "Bike racks"]),
        "id",
    );
    json(&alice, &["proposal", "open", "--title", "Tool library"]);
    let file = w.file("forged.coopsync");
    coop(&alice, &["sync", "export", file.to_str().unwrap()]).ok();
    let (header, mut envs) = entries(&std::fs::read(&file).unwrap());
    // Forge the signature of the last envelope (the second proposal).
    let last = envs.len() - 1;
    envs[last][100] ^= 0x01;
    std::fs::write(&file, assemble(&header, &envs)).unwrap();

    let before = changes(&bob);
    let im = json(&bob, &["sync", "import", file.to_str().unwrap()]);
    let rejected = im["rejected"].as_array().unwrap();
    assert_eq!(rejected.len(), 1, "{im}");
    assert_eq!(s(&rejected[0], "reason"), "bad_signature");
    assert_eq!(i(&im, "accepted"), 1, "the honest proposal still comes in");
    assert_eq!(changes(&bob), before + 1);
    let list = json(&bob, &["proposal", "list"]);
    assert_eq!(list["proposals"].as_array().unwrap().len(), 1);
    assert_eq!(s(&list["proposals"][0], "id"), p);
}

#[test]
fn damaged_and_foreign_files_import_nothing() {
    let w = World::new();
    let (alice, bob) = w.two(&[]);
    json(&alice, &["proposal", "open", "--title", "Bike racks"]);
    let file = w.file("a.coopsync");
    let f = file.to_str().unwrap();
    coop(&alice, &["sync", "export", f]).ok();
    let mut bytes = std::fs::read(&file).unwrap();
    let n = bytes.len();
    bytes[n - 40] ^= 0xff;
    let damaged = w.file("damaged.coopsync");
    std::fs::write(&damaged, &bytes).unwrap();
    let before = changes(&bob);
    let r = coop(&bob, &["sync", "import", damaged.to_str().unwrap()]).code(1);
    assert!(
        r.stderr.contains("damaged") && r.stderr.contains("nothing was imported"),
        "{}",
        r.stderr
    );
    assert_eq!(r.stderr.lines().count(), 1);
    let truncated = w.file("truncated.coopsync");
    std::fs::write(&truncated, &std::fs::read(&file).unwrap()[..n / 2]).unwrap();
    let r = coop(&bob, &["sync", "import", truncated.to_str().unwrap()]).code(1);
    assert!(r.stderr.contains("truncated"), "{}", r.stderr);
    assert_eq!(changes(&bob), before);

    let w2 = World::new();
    let other = w2.found(&[]);
    let r = coop(&other, &["sync", "import", f]).code(1);
    assert!(
        r.stderr.contains("carries changes of community"),
        "{}",
        r.stderr
    );
    assert_eq!(changes(&other), 1);

    let r = coop(
        &bob,
        &["sync", "import", w.file("missing").to_str().unwrap()],
    )
    .code(1);
    assert!(r.stderr.contains("cannot read"), "{}", r.stderr);
}
