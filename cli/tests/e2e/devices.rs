//! A member's devices and keys with the real binary (docs/RULES.md R15, R18): pairing a
//! second device through running nodes, revocation, the identity-key backup, and the
//! machine-id guard of a copied data dir.

use std::path::Path;
use std::process::Stdio;

use super::support::*;

/// `coop --data-dir DIR args...` on a machine whose id is `machine` (`COOP_MACHINE_ID`).
fn coop_on(machine: &str, dir: &Path, args: &[&str]) -> Run {
    let out = command()
        .env("COOP_MACHINE_ID", machine)
        .arg("--data-dir")
        .arg(dir)
        .args(args)
        .stdin(Stdio::null())
        .output()
        .expect("run coop");
    Run {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

/// Pairs a new data dir `name` as a device of `owner` (who holds the identity key);
/// returns the new data dir, its certificate not yet written.
fn pair(w: &World, owner: &Path, name: &str, label: &str) -> std::path::PathBuf {
    let dir = w.dir(name);
    let req = json(&dir, &["device", "request", "--name", label]);
    let code = s(&req, "code");
    assert!(code.starts_with("coopdev1"), "{code}");
    let ok = json(owner, &["device", "approve", &code]);
    let answer = s(&ok, "code");
    assert!(answer.starts_with("coopok1"), "{answer}");
    dir_complete(&dir, &answer);
    dir
}

fn dir_complete(dir: &Path, answer: &str) {
    let done = json(dir, &["device", "complete", answer, "--wait", "0"]);
    // The new data dir has no ledger yet: the certificate waits for it.
    assert_eq!(done["written"], false, "{done}");
}

#[test]
fn a_paired_device_logs_hours_that_count_for_the_same_member_on_a_third_node() {
    let w = World::new();
    let alice = w.found(&[]);
    let bob = w.admit(&alice, "Bob");
    let carol = w.admit(&alice, "Carol");
    let bob_id = s(&json(&bob, &["status"]), "member");
    let a = Up::start(&alice, &[]);
    let peer = a.listen()[0].clone();
    let _c = Up::start(&carol, &[&peer]);

    let laptop = pair(&w, &bob, "bob-laptop", "laptop");
    // The new machine is Bob's: the same member, another device, no identity key.
    let st = json(&laptop, &["status"]);
    assert_eq!(s(&st, "member"), bob_id);
    assert!(!laptop.join("identity.key").exists());
    // A write before the certificate names the way forward.
    let early = coop(
        &laptop,
        &[
            "hours",
            "log",
            "--to",
            "Carol",
            "--minutes",
            "5",
            "--service",
            "x",
        ],
    );
    assert_eq!(early.code, 1, "{}", early.stderr);

    // One run fetches the member's ledger from the peers and writes the certificate.
    let done = json(
        &laptop,
        &[
            "device",
            "complete",
            "--wait",
            "120",
            "--peer",
            &peer,
            "--no-mdns",
            "--listen",
            "/ip4/127.0.0.1/tcp/0",
        ],
    );
    assert_eq!(done["written"], true, "{done}");
    let _l = Up::start(&laptop, &[&peer]);
    let att = s(
        &json(
            &laptop,
            &[
                "hours",
                "log",
                "--to",
                "Carol",
                "--minutes",
                "45",
                "--service",
                "moving boxes",
            ],
        ),
        "id",
    );
    wait_until("Carol's node to see the laptop's hours", || {
        json(&carol, &["hours", "pending"])["pending"]
            .as_array()
            .unwrap()
            .iter()
            .any(|p| p["id"] == att.as_str())
            .then_some(())
    });
    json(&carol, &["hours", "confirm", &att[..12]]);
    // On Carol's node, the hours are Bob's: whichever device wrote them.
    wait_until("Bob's balance on Carol's node", || {
        (i(&json(&carol, &["balance", "Bob"]), "minutes") == 45).then_some(())
    });
    wait_until("the laptop to see its confirmed hours", || {
        (i(&json(&laptop, &["balance"]), "minutes") == 45).then_some(())
    });
    let list = json(&laptop, &["device", "list"]);
    let devices = list["devices"].as_array().unwrap();
    assert_eq!(devices.len(), 2, "{list}");
    let mine = devices.iter().find(|d| d["this_device"] == true).unwrap();
    assert_eq!(mine["label"], "laptop");
}

#[test]
fn a_revoked_device_can_write_no_more() {
    let w = World::new();
    let alice = w.found(&[]);
    let bob = w.admit(&alice, "Bob");
    let laptop = pair(&w, &bob, "bob-laptop", "laptop");
    // The ledger reaches the laptop on a USB stick; it writes its certificate.
    w.carry(&alice, &laptop);
    let done = json(&laptop, &["device", "complete"]);
    assert_eq!(done["written"], true, "{done}");
    json(
        &laptop,
        &[
            "hours",
            "log",
            "--to",
            "Alice",
            "--minutes",
            "30",
            "--service",
            "before",
        ],
    );
    w.carry(&laptop, &bob);
    // Bob revokes the lost laptop from his first device, by its label.
    let r = json(&bob, &["device", "revoke", "laptop", "--reason", "stolen"]);
    assert!(s(&r, "record").len() == 64);
    let list = json(&bob, &["device", "list"]);
    let revoked = list["devices"]
        .as_array()
        .unwrap()
        .iter()
        .find(|d| d["label"] == "laptop")
        .unwrap()
        .clone();
    assert!(revoked["revoked_by"].is_string(), "{list}");
    w.carry(&bob, &laptop);
    let before = changes(&laptop);
    coop(
        &laptop,
        &[
            "hours",
            "log",
            "--to",
            "Alice",
            "--minutes",
            "60",
            "--service",
            "after",
        ],
    )
    .refused("refused: revoked_device");
    assert_eq!(changes(&laptop), before);
    // Only Bob's own devices are his to revoke.
    coop(&alice, &["device", "revoke", "laptop"]).code(1);
}

#[test]
fn the_identity_key_backs_up_restores_and_is_forgotten() {
    let w = World::new();
    let alice = w.found(&[]);
    let bob = w.admit(&alice, "Bob");
    let bob_id = s(&json(&bob, &["status"]), "member");
    let pass = w.file("pass");
    std::fs::write(&pass, "a long passphrase\n").unwrap();
    let wrong = w.file("wrong");
    std::fs::write(&wrong, "not the passphrase\n").unwrap();
    let backup = w.file("bob.key");
    let p = pass.to_str().unwrap();
    let b = backup.to_str().unwrap();
    json(&bob, &["key", "backup", "--out", b, "--passphrase-file", p]);
    let text = std::fs::read_to_string(&backup).unwrap();
    assert!(text.starts_with("coop-key-backup-v1\n"));
    let seed = std::fs::read_to_string(bob.join("identity.key")).unwrap();
    assert!(!text.contains(seed.trim()), "the key is not in clear");
    // A second backup never overwrites the first.
    coop(&bob, &["key", "backup", "--out", b, "--passphrase-file", p]).code(1);

    // Forgotten: Bob's device still writes as Bob, but cannot approve a device.
    json(&bob, &["key", "forget"]);
    assert!(!bob.join("identity.key").exists());
    assert_eq!(s(&json(&bob, &["status"]), "member"), bob_id);
    json(
        &bob,
        &[
            "hours",
            "log",
            "--to",
            "Alice",
            "--minutes",
            "20",
            "--service",
            "keyless",
        ],
    );
    let req = s(&json(&w.dir("bob-new"), &["device", "request"]), "code");
    let r = coop(&bob, &["device", "approve", &req]).code(1);
    assert!(r.stderr.contains("no identity key"), "{}", r.stderr);

    // A wrong passphrase is refused in one line, and nothing is restored.
    let r = coop(
        &bob,
        &[
            "key",
            "restore",
            b,
            "--passphrase-file",
            wrong.to_str().unwrap(),
        ],
    )
    .code(1);
    assert!(r.stderr.contains("wrong passphrase"), "{}", r.stderr);
    assert_eq!(r.stderr.lines().count(), 1);
    assert!(!bob.join("identity.key").exists());
    json(&bob, &["key", "restore", b, "--passphrase-file", p]);
    assert_eq!(
        std::fs::read_to_string(bob.join("identity.key")).unwrap(),
        seed
    );
    json(&bob, &["device", "approve", &req]);

    // Every device lost: the backup alone makes a new data dir for Bob.
    let fresh = w.dir("bob-rebuilt");
    let r = json(
        &fresh,
        &["key", "restore", b, "--passphrase-file", p, "--name", "Bob"],
    );
    assert_eq!(r["new_data_dir"], true);
    assert_eq!(s(&json(&fresh, &["status"]), "member"), bob_id);
}

#[test]
fn a_data_dir_copied_to_another_machine_asks_to_be_paired_instead_of_writing() {
    let w = World::new();
    let alice = w.dir("alice");
    coop_on("machine-a", &alice, &["init", "--name", "Alice"]).ok();
    coop_on(
        "machine-a",
        &alice,
        &["found", "--community", "Maple Street"],
    )
    .ok();
    let write = [
        "proposal",
        "open",
        "--title",
        "Bench",
        "--description",
        "A bench",
    ];
    coop_on("machine-a", &alice, &write).ok();
    let before = changes(&alice);
    let r = coop_on("machine-b", &alice, &write).code(1);
    assert!(r.stderr.contains("another machine"), "{}", r.stderr);
    assert!(r.stderr.contains("coop device request"), "{}", r.stderr);
    assert_eq!(r.stderr.lines().count(), 1);
    assert_eq!(changes(&alice), before, "nothing written");
    // Moved for good: this machine takes over.
    coop_on("machine-b", &alice, &["device", "moved"]).ok();
    coop_on("machine-b", &alice, &write).ok();
    coop_on("machine-a", &alice, &write).code(1);
}

/// Copies a data dir (no node runs for it), as a backup or a restore would.
fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap() {
        let e = e.unwrap();
        let target = to.join(e.file_name());
        if e.file_type().unwrap().is_dir() {
            copy_dir(&e.path(), &target);
        } else {
            std::fs::copy(e.path(), &target).unwrap();
        }
    }
}

#[test]
fn a_restored_backup_that_catches_up_first_does_not_fork_and_one_that_forks_keeps_its_past() {
    let w = World::new();
    let (alice, bob) = w.two(&[]);
    let carol = w.admit(&alice, "Carol");
    w.carry(&alice, &bob);
    // Bob's hour for Carol, confirmed: it must count whatever happens to his device later.
    let att = s(
        &json(
            &bob,
            &[
                "hours",
                "log",
                "--to",
                "Carol",
                "--minutes",
                "60",
                "--service",
                "fence",
            ],
        ),
        "id",
    );
    w.carry(&bob, &carol);
    json(&carol, &["hours", "confirm", &att[..12]]);
    w.carry(&carol, &alice);
    w.carry(&carol, &bob);
    let backup = w.dir("bob-backup");
    copy_dir(&bob, &backup);
    json(&bob, &["proposal", "open", "--title", "After the backup"]);
    w.carry(&bob, &alice);

    // Restored, it takes in its own later changes first, and writes on after them.
    let careful = w.dir("bob-careful");
    copy_dir(&backup, &careful);
    w.carry(&alice, &careful);
    json(&careful, &["proposal", "open", "--title", "Careful"]);
    w.carry(&careful, &alice);
    assert_eq!(
        json(&alice, &["status"])["forked_devices"],
        serde_json::json!([])
    );

    // Restored and written at once, the copy forks Bob's device. Every replica flags it,
    // and what it wrote before the fork point still counts, for Bob and for Carol.
    let hasty = w.dir("bob-hasty");
    copy_dir(&backup, &hasty);
    json(&hasty, &["proposal", "open", "--title", "Hasty"]);
    w.carry(&hasty, &alice);
    let forked = json(&alice, &["status"])["forked_devices"].clone();
    assert_eq!(forked.as_array().map(Vec::len), Some(1), "{forked}");
    assert_eq!(i(&json(&alice, &["balance", "Bob"]), "minutes"), 60);
    assert_eq!(i(&json(&alice, &["balance", "Carol"]), "minutes"), -60);
    w.carry(&alice, &carol);
    assert_eq!(i(&json(&carol, &["balance"]), "minutes"), -60);
    w.carry(&alice, &bob);
    let list = json(&bob, &["device", "list"]);
    let dev = &list["devices"].as_array().unwrap()[0];
    assert!(dev["forked_at"].is_i64(), "{list}");
    // The forked device cannot write any more: Bob pairs a new one. (Which version is
    // canonical depends on the change hashes: when the copy's is, Bob's own later change
    // sits on the discarded branch and writing again is refused `depends_on_fork`.)
    let r = coop(&bob, &["proposal", "open", "--title", "Still me?"]).code(1);
    assert!(
        r.stderr.starts_with("refused: forked_device")
            || r.stderr.starts_with("refused: depends_on_fork"),
        "{}",
        r.stderr
    );
    assert_eq!(r.stderr.lines().count(), 1);
}

/// `coop up` for `dir` on a machine whose id is `machine`; killed when dropped.
struct UpOn(std::process::Child);

impl UpOn {
    fn start(machine: &str, dir: &Path) -> UpOn {
        let child = command()
            .env("COOP_MACHINE_ID", machine)
            .arg("--data-dir")
            .arg(dir)
            .args(["up", "--listen", "/ip4/127.0.0.1/tcp/0", "--no-mdns"])
            .args(["--no-ui", "--stop-on-stdin-eof"])
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn coop up");
        let mut up = UpOn(child);
        wait_until("coop up to serve its API socket", || {
            if let Ok(Some(status)) = up.0.try_wait() {
                panic!("coop up exited early: {status}");
            }
            let st = coop_on(machine, dir, &["--json", "status"]);
            let v: serde_json::Value = serde_json::from_str(&st.stdout).ok()?;
            (!v["listen"].as_array()?.is_empty()).then_some(())
        });
        up
    }
}

impl Drop for UpOn {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[test]
fn a_node_on_another_machine_answers_a_write_with_a_clear_conflict() {
    let w = World::new();
    let alice = w.dir("alice");
    coop_on("machine-a", &alice, &["init", "--name", "Alice"]).ok();
    coop_on("machine-a", &alice, &["found", "--community", "Oak Lane"]).ok();
    let write = ["proposal", "open", "--title", "Bench"];
    coop_on("machine-a", &alice, &write).ok();
    let before = changes(&alice);
    // The data dir's node runs on machine B: the write goes through its API and is refused
    // as a conflict naming the way out, not as an internal error.
    let _up = UpOn::start("machine-b", &alice);
    let r = coop_on("machine-b", &alice, &write).code(1);
    assert!(r.stderr.contains("another machine"), "{}", r.stderr);
    assert!(r.stderr.contains("coop device request"), "{}", r.stderr);
    assert!(!r.stderr.contains("internal"), "{}", r.stderr);
    assert_eq!(r.stderr.lines().count(), 1, "{}", r.stderr);
    drop(_up);
    assert_eq!(changes(&alice), before, "nothing written");
}

/// `coop --json` at claimed time `now`, asserting success.
#[track_caller]
fn json_at(dir: &Path, now: i64, args: &[&str]) -> serde_json::Value {
    let mut all = vec!["--json"];
    all.extend_from_slice(args);
    coop_at(dir, now, &all).ok().json()
}

#[test]
fn a_member_who_lost_every_device_is_recovered_by_decision() {
    let w = World::new();
    let (alice, bob) = w.two(&[]);
    let carol = w.admit(&alice, "Carol");
    w.carry(&alice, &bob);
    let bob_id = s(&json(&bob, &["status"]), "member");
    // Bob's hour for Carol, confirmed: it must stay his after the recovery.
    let att = s(
        &json(
            &bob,
            &[
                "hours",
                "log",
                "--to",
                "Carol",
                "--minutes",
                "60",
                "--service",
                "fence",
            ],
        ),
        "id",
    );
    w.carry(&bob, &carol);
    json(&carol, &["hours", "confirm", &att[..12]]);
    w.carry(&carol, &alice);

    // Bob lost every device and his backup: his new machine makes a new identity key.
    let new = w.dir("bob-new");
    let req = json(&new, &["device", "recover-request", "--name", "new laptop"]);
    let code = s(&req, "code");
    assert!(code.starts_with("cooprec1"), "{code}");
    assert!(!new.join("identity.key").exists());
    // A code that is not a recovery request is refused with its reason.
    coop(
        &alice,
        &[
            "decision",
            "open",
            "--title",
            "Recover Bob",
            "--recover",
            "Bob",
            "coopdev1AAAA",
        ],
    )
    .code(1);
    // Alice proposes the recovery; it is a decision like any other, visible to Carol.
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64;
    let opened = json_at(
        &alice,
        now,
        &[
            "decision",
            "open",
            "--title",
            "Recover Bob",
            "--recover",
            "Bob",
            &code,
            "--window",
            "1d",
        ],
    );
    let d = s(&opened, "id");
    let answer = s(&opened, "answer");
    assert!(answer.starts_with("cooprok1"), "{answer}");
    w.carry(&alice, &carol);
    let list = coop(&carol, &["decision", "list"]).ok().stdout;
    assert!(list.contains("recover Bob"), "{list}");
    json_at(&alice, now + 60, &["decision", "vote", &d[..8], "yes"]);
    json_at(&carol, now + 60, &["decision", "vote", &d[..8], "yes"]);
    w.carry(&carol, &alice);
    // The window closed but the waiting period (7 days) has not: the tally is refused.
    coop_at(&alice, now + 2 * 86_400, &["decision", "close", &d[..8]])
        .refused("refused: window_open");
    let closed = json_at(&alice, now + 8 * 86_400, &["decision", "close", &d[..8]]);
    assert_eq!(closed["status"], "passed", "{closed}");

    // The new machine takes the answer; once its ledger holds the tally it writes its
    // certificate, signed by the new key, and acts as Bob.
    let later = now + 8 * 86_400 + 600;
    let first = json_at(&new, later, &["device", "complete", &answer, "--wait", "0"]);
    assert_eq!(first["written"], false, "{first}");
    w.carry(&alice, &new);
    let done = json_at(&new, later, &["device", "complete", "--wait", "0"]);
    assert_eq!(done["written"], true, "{done}");
    assert_eq!(s(&json(&new, &["status"]), "member"), bob_id);
    assert_eq!(i(&json(&new, &["balance"]), "minutes"), 60);
    let att2 = s(
        &json_at(
            &new,
            later + 60,
            &[
                "hours",
                "log",
                "--to",
                "Carol",
                "--minutes",
                "30",
                "--service",
                "weeding",
            ],
        ),
        "id",
    );
    w.carry(&new, &carol);
    json_at(&carol, later + 120, &["hours", "confirm", &att2[..12]]);
    assert_eq!(i(&json(&carol, &["balance", "Bob"]), "minutes"), 90);

    // The recovered machine certifies a further device with the new key.
    let tablet = w.dir("bob-tablet");
    let req = json(&tablet, &["device", "request", "--name", "tablet"]);
    let ok = json(&new, &["device", "approve", &s(&req, "code")]);
    assert_eq!(s(&ok, "member"), bob_id);
    let first = json(
        &tablet,
        &["device", "complete", &s(&ok, "code"), "--wait", "0"],
    );
    assert_eq!(first["written"], false, "{first}");
    w.carry(&new, &tablet);
    let done = json_at(&tablet, later + 150, &["device", "complete", "--wait", "0"]);
    assert_eq!(done["written"], true, "{done}");
    let att3 = s(
        &json_at(
            &tablet,
            later + 160,
            &[
                "hours",
                "log",
                "--to",
                "Carol",
                "--minutes",
                "15",
                "--service",
                "sweeping",
            ],
        ),
        "id",
    );
    w.carry(&tablet, &carol);
    json_at(&carol, later + 170, &["hours", "confirm", &att3[..12]]);
    assert_eq!(i(&json(&carol, &["balance", "Bob"]), "minutes"), 105);

    // Bob's old device, once it sees the tally, can write no more, with a named reason.
    w.carry(&carol, &bob);
    coop_at(
        &bob,
        later + 180,
        &["proposal", "open", "--title", "Still the old laptop"],
    )
    .refused("refused: recovered_identity");
    w.carry(&carol, &new);
    let devices = json(&new, &["device", "list"]);
    let devices = devices["devices"].as_array().unwrap();
    assert_eq!(devices.len(), 3, "{devices:?}");
    let old = devices.iter().find(|d| d["label"].is_null()).unwrap();
    assert!(old["revoked_by"].is_string(), "{old}");

    // The recovered machine backs up the key the recovery bound Bob to; restored on the
    // tablet, the tablet approves devices too; an empty data dir is told where it goes.
    let pass = w.file("bob-recovered-pass");
    std::fs::write(&pass, "a long enough passphrase\n").unwrap();
    let backup = w.file("bob-recovered.key");
    let (p, b) = (pass.to_str().unwrap(), backup.to_str().unwrap());
    let saved = json(&new, &["key", "backup", "--out", b, "--passphrase-file", p]);
    assert_eq!(s(&saved, "member"), bob_id);
    let r = coop(
        &w.dir("bob-empty"),
        &["key", "restore", b, "--passphrase-file", p, "--name", "Bob"],
    )
    .code(1);
    assert!(r.stderr.contains("recovery key"), "{}", r.stderr);
    assert!(!tablet.join("recovery.key").exists());
    json(&tablet, &["key", "restore", b, "--passphrase-file", p]);
    assert!(tablet.join("recovery.key").exists());
    let req = json(
        &w.dir("bob-phone"),
        &["device", "request", "--name", "phone"],
    );
    let ok = json(&tablet, &["device", "approve", &s(&req, "code")]);
    assert_eq!(s(&ok, "member"), bob_id);
}
