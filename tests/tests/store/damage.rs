//! Store damage is reported, never silent: single-bit flips and truncations of every file in
//! `store/` (the first bytes of sled's `db` included, issue 15) and of the manifest. After
//! each, the next open or the next write reports the damage, or every acknowledged write is
//! still there and a new write survives a reopen.

use std::fs;
use std::path::{Path, PathBuf};

use coop_model::{record, Record, RecordId};
use coop_node::{DataDir, LocalNode, NodeError};

use coop_tests::T0;

fn proposal(title: &str) -> Record {
    Record::Proposal(record::Proposal {
        title: title.into(),
        description: format!("a test proposal called {title}"),
    })
}

/// A founded community with a few acknowledged writes, each by a separate writer process
/// that exits, as `coop` commands do (sled then leaves a snapshot file and a full-size
/// `db` segment, as in a member's real data dir). Returns the acknowledged ids.
pub(crate) fn template(root: &Path) -> (DataDir, Vec<RecordId>) {
    let c = coop_tests::community(root, 0);
    let dir = c.dirs[0].clone();
    let mut acked: Vec<RecordId> = LocalNode::open(&dir)
        .unwrap()
        .export()
        .iter()
        .filter_map(|e| e.record_id())
        .collect();
    for _ in 0..3 {
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_crash_writer"))
            .arg(dir.root())
            .arg("1")
            .output()
            .expect("run crash_writer");
        assert!(out.status.success(), "{out:?}");
        for line in String::from_utf8(out.stdout).unwrap().lines() {
            let hex = line.strip_prefix("ack ").expect("an ack line");
            acked.push(RecordId::from_hex(hex).unwrap());
        }
    }
    assert_eq!(acked.len(), 4);
    (dir, acked)
}

pub(crate) fn copy_dir(from: &Path, to: &Path) {
    fs::create_dir_all(to).unwrap();
    for e in fs::read_dir(from).unwrap() {
        let e = e.unwrap();
        let target = to.join(e.file_name());
        if e.file_type().unwrap().is_dir() {
            copy_dir(&e.path(), &target);
        } else {
            fs::copy(e.path(), &target).unwrap();
        }
    }
}

fn files(dir: &Path, out: &mut Vec<PathBuf>) {
    for e in fs::read_dir(dir).unwrap() {
        let e = e.unwrap();
        if e.file_type().unwrap().is_dir() {
            files(&e.path(), out);
        } else {
            out.push(e.path());
        }
    }
}

#[derive(Debug, Clone, Copy)]
pub(crate) enum Damage {
    /// Flips one bit.
    Flip { offset: u64, bit: u8 },
    /// Keeps the first `len` bytes.
    Truncate { len: u64 },
}

pub(crate) fn apply(path: &Path, damage: Damage) {
    let mut bytes = fs::read(path).unwrap();
    match damage {
        Damage::Flip { offset, bit } => bytes[offset as usize] ^= 1 << bit,
        Damage::Truncate { len } => bytes.truncate(len as usize),
    }
    fs::write(path, bytes).unwrap();
}

/// How a case ended (all of them acceptable; anything else panics).
#[derive(Debug, Default)]
struct Tally {
    refused_at_open: usize,
    damaged_at_open: usize,
    harmless: usize,
}

/// A damage report is one line naming the data dir and what to do.
fn assert_actionable(e: &NodeError, dir: &DataDir, case: &str) {
    let line = e.to_string();
    assert!(
        line.contains(&dir.root().display().to_string()) || matches!(e, NodeError::Corrupt(_)),
        "{case}: the error names the data dir: {line}"
    );
    assert!(!line.contains('\n'), "{case}: one line: {line}");
}

fn check(dir: &DataDir, acked: &[RecordId], case: &str, tally: &mut Tally) {
    let mut node = match LocalNode::open(dir) {
        Err(e) => {
            assert_actionable(&e, dir, case);
            tally.refused_at_open += 1;
            return;
        }
        Ok(n) => n,
    };
    let report = node.verify().unwrap();
    if !report.ok() {
        // Reported: then writes are refused, with the way out named.
        let err = node
            .submit(proposal("after damage"), T0 + 100)
            .expect_err(&format!("{case}: a write to a store reported damaged"));
        assert_actionable(&err, dir, case);
        assert!(err.to_string().contains("coop repair"), "{case}: {err}");
        tally.damaged_at_open += 1;
        return;
    }
    // Not reported: then nothing may be missing, and a new write must last.
    for id in acked {
        assert!(
            node.ledger().contains(id),
            "{case}: acknowledged write {} lost silently (verify says ok over {} entries)",
            id.short(),
            report.checked
        );
    }
    let new = match node.submit(proposal("after damage"), T0 + 100) {
        Ok(id) => id,
        Err(e) => {
            assert_actionable(&e, dir, case);
            tally.damaged_at_open += 1;
            return;
        }
    };
    drop(node);
    match LocalNode::open(dir) {
        Err(e) => assert_actionable(&e, dir, case),
        Ok(mut node) => {
            if node.verify().unwrap().ok() {
                for id in acked.iter().chain([&new]) {
                    assert!(
                        node.ledger().contains(id),
                        "{case}: acknowledged write {} lost silently after a reopen",
                        id.short()
                    );
                }
            }
        }
    }
    tally.harmless += 1;
}

#[test]
fn a_flipped_bit_in_the_first_bytes_of_db_is_reported_not_silent() {
    // The reproduction of issue 15: bit 5 of byte 5 of `store/db`.
    let root = tempfile::tempdir().unwrap();
    let (template, acked) = template(root.path());
    let dir = DataDir::new(root.path().join("case"));
    copy_dir(template.root(), dir.root());
    apply(
        &dir.store_path().join("db"),
        Damage::Flip { offset: 5, bit: 5 },
    );
    check(&dir, &acked, "db byte 5 bit 5", &mut Tally::default());
}

#[test]
fn a_sample_of_flips_and_truncations_in_every_store_file_is_reported_or_harmless() {
    let root = tempfile::tempdir().unwrap();
    let (template, acked) = template(root.path());
    let mut targets = Vec::new();
    files(&template.store_path(), &mut targets);
    targets.push(template.root().join("store.manifest"));
    targets.sort();
    let names: Vec<String> = targets
        .iter()
        .map(|p| {
            p.strip_prefix(template.root())
                .unwrap()
                .display()
                .to_string()
        })
        .collect();
    assert!(names.iter().any(|n| n == "store/db"), "{names:?}");

    let mut cases = Vec::new();
    for (path, name) in targets.iter().zip(&names) {
        let len = fs::metadata(path).unwrap().len();
        if len == 0 {
            continue;
        }
        let mut offsets: Vec<u64> = if name == "store/db" {
            // The first 20 bytes of `db` one by one (the report), then a spread.
            (0..20.min(len)).collect()
        } else {
            (0..4.min(len)).collect()
        };
        offsets.extend((1..12).map(|k| k * len / 12));
        offsets.push(len - 1);
        offsets.sort();
        offsets.dedup();
        for (i, offset) in offsets.into_iter().enumerate() {
            // Every bit of the first 20 bytes of `db`; one bit elsewhere, varied.
            let bits = if name == "store/db" && offset < 20 {
                0..8
            } else {
                let bit = ((offset + i as u64) % 8) as u8;
                bit..bit + 1
            };
            for bit in bits {
                cases.push((path.clone(), name.clone(), Damage::Flip { offset, bit }));
            }
        }
        for keep in [0, len / 2, len - 1] {
            cases.push((path.clone(), name.clone(), Damage::Truncate { len: keep }));
        }
    }

    let mut tally = Tally::default();
    for (n, (path, name, damage)) in cases.iter().enumerate() {
        let dir = DataDir::new(root.path().join(format!("case{n}")));
        copy_dir(template.root(), dir.root());
        let target = dir.root().join(path.strip_prefix(template.root()).unwrap());
        apply(&target, *damage);
        check(&dir, &acked, &format!("{name} {damage:?}"), &mut tally);
        fs::remove_dir_all(dir.root()).unwrap();
    }
    println!("{} cases over {:?}: {tally:?}", cases.len(), names);
    assert_eq!(
        tally.refused_at_open + tally.damaged_at_open + tally.harmless,
        cases.len()
    );
    assert!(
        tally.refused_at_open + tally.damaged_at_open > 0,
        "some damage was detected: {tally:?}"
    );
}
