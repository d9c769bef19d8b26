//! `coop relay` on loopback (no namespaces needed): what it prints, that `--data-dir` keeps
//! its peer id across restarts, and one-line errors for a bad invite or listen address.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::coop_bin;

fn founded_invite(dir: &std::path::Path) -> String {
    for args in [
        &["init", "--name", "Alice"][..],
        &["found", "--community", "Loopback Co-op"][..],
    ] {
        let out = Command::new(coop_bin())
            .env_remove("COOP_DATA_DIR")
            .arg("--data-dir")
            .arg(dir)
            .args(args)
            .output()
            .unwrap();
        assert!(out.status.success(), "{out:?}");
    }
    let out = Command::new(coop_bin())
        .env_remove("COOP_DATA_DIR")
        .arg("--data-dir")
        .arg(dir)
        .args(["--json", "invite"])
        .output()
        .unwrap();
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    v["code"].as_str().unwrap().to_string()
}

/// Starts a relay, reads the addresses it prints (the first stdout line with `--json`,
/// else every line until the first one read), stops it with SIGTERM.
fn relay_addresses(code: &str, data_dir: &std::path::Path, json: bool) -> Vec<String> {
    let mut cmd = Command::new(coop_bin());
    cmd.env_remove("COOP_DATA_DIR");
    if json {
        cmd.arg("--json");
    }
    let mut child = cmd
        .args([
            "relay",
            "--invite",
            code,
            "--listen",
            "/ip4/127.0.0.1/tcp/0",
        ])
        .arg("--data-dir")
        .arg(data_dir)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut line = String::new();
    // Kept open until the relay exits: it prints a last line when it stops.
    let mut stdout = BufReader::new(child.stdout.take().unwrap());
    stdout.read_line(&mut line).unwrap();
    let _ = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status();
    let end = Instant::now() + Duration::from_secs(30);
    while matches!(child.try_wait(), Ok(None)) && Instant::now() < end {
        std::thread::sleep(Duration::from_millis(50));
    }
    let hung = matches!(child.try_wait(), Ok(None));
    if hung {
        let _ = child.kill();
    }
    let status = child.wait().unwrap();
    assert!(!hung, "the relay did not stop on SIGTERM");
    assert!(
        status.success(),
        "SIGTERM stops the relay cleanly: {status}"
    );
    drop(stdout);
    if json {
        let v: serde_json::Value = serde_json::from_str(line.trim()).unwrap();
        v["addresses"]
            .as_array()
            .unwrap()
            .iter()
            .map(|a| a.as_str().unwrap().to_string())
            .collect()
    } else {
        vec![line.trim().to_string()]
    }
}

#[test]
fn a_relay_prints_full_addresses_and_keeps_its_peer_id_in_its_data_dir() {
    let root = tempfile::tempdir().unwrap();
    let code = founded_invite(&root.path().join("alice"));
    let data = root.path().join("relay");
    let first = relay_addresses(&code, &data, true);
    assert_eq!(first.len(), 1, "{first:?}");
    assert!(
        first[0].starts_with("/ip4/127.0.0.1/tcp/") && first[0].contains("/p2p/12D3KooW"),
        "{first:?}"
    );
    let id = |a: &str| a.rsplit("/p2p/").next().unwrap().to_string();
    let second = relay_addresses(&code, &data, false);
    assert_eq!(
        id(&first[0]),
        id(&second[0]),
        "same peer id after a restart"
    );
    let other = relay_addresses(&code, &root.path().join("relay2"), false);
    assert_ne!(
        id(&first[0]),
        id(&other[0]),
        "another data dir, another identity"
    );
}

#[test]
fn a_relay_refuses_bad_input_with_one_line() {
    let root = tempfile::tempdir().unwrap();
    let code = founded_invite(&root.path().join("alice"));
    for (args, wanted) in [
        (
            vec![
                "relay",
                "--invite",
                "coop1nonsense",
                "--listen",
                "/ip4/127.0.0.1/tcp/0",
            ],
            "invite",
        ),
        (
            vec![
                "relay",
                "--invite",
                code.as_str(),
                "--listen",
                "127.0.0.1:4001",
            ],
            "listen address",
        ),
    ] {
        let out = Command::new(coop_bin())
            .env_remove("COOP_DATA_DIR")
            .args(&args)
            .stdin(Stdio::null())
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{args:?}: {err}");
        assert_eq!(err.lines().count(), 1, "{err}");
        assert!(err.starts_with("error: ") && err.contains(wanted), "{err}");
    }
}
