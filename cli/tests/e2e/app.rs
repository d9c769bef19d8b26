//! `coop ui` and `coop service` (docs/APP.md): the login link of a running node (and what
//! happens without a browser opener), and the systemd user unit written under
//! `$XDG_CONFIG_HOME`, checked with `--dry-run` and `status` (no systemd needed).

use std::process::Stdio;

use super::support::*;

fn run_of(out: std::process::Output) -> Run {
    Run {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

#[test]
fn coop_ui_prints_a_one_time_login_link_of_the_running_node() {
    let w = World::new();
    let alice = w.found(&[]);
    // No node: a plain line saying what to do.
    let r = coop(&alice, &["ui"]).code(1);
    assert!(r.stderr.contains("no node is running") && r.stderr.contains("coop up"), "{}", r.stderr);
    let _up = Up::start(&alice, &[]);
    let v = json(&alice, &["ui", "--no-open"]);
    let url = s(&v, "url");
    let config: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(alice.join("config.json")).unwrap()).unwrap();
    let port = config["ui_port"].as_u64().unwrap();
    assert!(url.starts_with(&format!("http://127.0.0.1:{port}/login?token=")), "{url}");
    assert_eq!(v["opened"], false);
    let token = std::fs::read_to_string(alice.join("app.token")).unwrap();
    assert!(url.ends_with(&token), "the link carries the token in the data dir");
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(alice.join("app.token")).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
    }
    // Without an opener on PATH, it says so and still prints the link.
    let out = command()
        .env("PATH", "/nonexistent")
        .arg("--data-dir")
        .arg(&alice)
        .arg("ui")
        .stdin(Stdio::null())
        .output()
        .unwrap();
    let r = run_of(out).ok();
    assert!(r.stdout.contains("Open the app: http://127.0.0.1:"), "{}", r.stdout);
    assert!(r.stdout.contains("Could not open a browser (xdg-open is not installed)"), "{}", r.stdout);
}

#[test]
fn coop_service_writes_a_user_unit_under_xdg_config_home() {
    let w = World::new();
    let alice = w.found(&[]);
    let config = w.file("xdg");
    let run_json = |args: &[&str]| {
        let out = command()
            .env("XDG_CONFIG_HOME", &config)
            .arg("--json")
            .arg("--data-dir")
            .arg(&alice)
            .args(args)
            .stdin(Stdio::null())
            .output()
            .unwrap();
        run_of(out).ok().json()
    };
    let unit_path = config.join("systemd/user/coop.service");
    let v = run_json(&["service", "install", "--dry-run"]);
    assert_eq!(s(&v, "unit_path"), unit_path.display().to_string());
    let unit = s(&v, "unit");
    assert!(unit.contains("[Service]") && unit.contains("WantedBy=default.target"), "{unit}");
    assert!(
        unit.contains(&format!("--data-dir \"{}\" up", alice.display())),
        "the unit runs coop up for this data dir: {unit}"
    );
    assert!(unit.contains(env!("CARGO_BIN_EXE_coop")), "{unit}");
    assert_eq!(v["written"], false);
    assert!(!unit_path.exists(), "a dry run writes nothing");
    let v = run_json(&["service", "status"]);
    assert_eq!(v["installed"], false);
    assert_eq!(s(&v, "unit_path"), unit_path.display().to_string());
    let v = run_json(&["service", "uninstall", "--dry-run"]);
    assert_eq!(v["installed"], false);
}
