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
    assert!(
        r.stderr.contains("no node is running") && r.stderr.contains("coop up"),
        "{}",
        r.stderr
    );
    let _up = Up::start(&alice, &[]);
    let v = json(&alice, &["ui", "--no-open"]);
    let url = s(&v, "url");
    let config: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(alice.join("config.json")).unwrap()).unwrap();
    let port = config["ui_port"].as_u64().unwrap();
    assert!(
        url.starts_with(&format!("http://127.0.0.1:{port}/login?token=")),
        "{url}"
    );
    assert_eq!(v["opened"], false);
    let token = std::fs::read_to_string(alice.join("app.token")).unwrap();
    assert!(
        url.ends_with(&token),
        "the link carries the token in the data dir"
    );
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(alice.join("app.token"))
            .unwrap()
            .permissions()
            .mode();
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
    assert!(
        r.stdout.contains("Open the app: http://127.0.0.1:"),
        "{}",
        r.stdout
    );
    assert!(
        r.stdout
            .contains("Could not open a browser (xdg-open is not installed)"),
        "{}",
        r.stdout
    );
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
    assert!(
        unit.contains("[Service]") && unit.contains("WantedBy=default.target"),
        "{unit}"
    );
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

/// `coop demo --ui`: after the scenario the three nodes stay up, each link logs in to its
/// node's app, and Ctrl-C (SIGINT) stops them all.
#[test]
fn coop_demo_ui_keeps_the_nodes_and_prints_their_app_links_until_ctrl_c() {
    use std::io::{BufRead, BufReader, Read, Write};
    use std::net::TcpStream;
    use std::sync::mpsc;
    use std::time::{Duration, Instant};

    let mut child = command()
        .args(["demo", "--ui"])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let (tx, rx) = mpsc::channel();
    let out = child.stdout.take().unwrap();
    std::thread::spawn(move || {
        for line in BufReader::new(out).lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    let end = Instant::now() + Duration::from_secs(300);
    let mut links = Vec::new();
    let mut seen = String::new();
    while !seen.contains("Press Ctrl-C") {
        let left = end.saturating_duration_since(Instant::now());
        let line = rx
            .recv_timeout(left)
            .unwrap_or_else(|_| panic!("the demo printed no app links in time:\n{seen}"));
        if let Some(at) = line.find("http://127.0.0.1:") {
            links.push(line[at..].trim().to_string());
        }
        seen.push_str(&line);
        seen.push('\n');
    }
    assert_eq!(links.len(), 3, "{seen}");
    for (name, link) in ["Alice", "Bob", "Carol"].iter().zip(&links) {
        assert!(seen.contains(&format!("  {name:<6} {link}")), "{seen}");
        let rest = link.strip_prefix("http://127.0.0.1:").unwrap();
        let (port, path) = rest.split_once('/').unwrap();
        let mut s = TcpStream::connect(("127.0.0.1", port.parse::<u16>().unwrap())).unwrap();
        write!(
            s,
            "GET /{path} HTTP/1.1\r\nhost: 127.0.0.1:{port}\r\nconnection: close\r\n\r\n"
        )
        .unwrap();
        let mut answer = String::new();
        let _ = s.read_to_string(&mut answer);
        assert!(
            answer.starts_with("HTTP/1.1 303"),
            "{name}'s link logs in: {answer}"
        );
    }
    // The nodes are still up a moment later; Ctrl-C stops the demo cleanly.
    assert!(
        child.try_wait().unwrap().is_none(),
        "the demo keeps running"
    );
    let pid = child.id().to_string();
    assert!(std::process::Command::new("kill")
        .args(["-INT", &pid])
        .status()
        .unwrap()
        .success());
    let end = Instant::now() + Duration::from_secs(60);
    let status = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break s;
        }
        assert!(Instant::now() < end, "the demo did not stop on Ctrl-C");
        std::thread::sleep(Duration::from_millis(100));
    };
    assert!(status.success(), "{status}");
    let mut rest = String::new();
    while let Ok(l) = rx.recv_timeout(Duration::from_secs(5)) {
        rest.push_str(&l);
        rest.push('\n');
    }
    assert!(rest.contains("Stopping the three nodes."), "{rest}");
    // Its nodes are gone: their ports no longer answer.
    for link in &links {
        let port: u16 = link["http://127.0.0.1:".len()..]
            .split('/')
            .next()
            .unwrap()
            .parse()
            .unwrap();
        let gone = (0..100).any(|_| {
            let down = TcpStream::connect(("127.0.0.1", port)).is_err();
            if !down {
                std::thread::sleep(Duration::from_millis(100));
            }
            down
        });
        assert!(gone, "port {port} still answers after the demo stopped");
    }
}

#[test]
fn coop_rename_changes_the_name_everywhere_with_and_without_a_node() {
    // docs/RULES.md R20. Without a node: the store directly.
    let w = World::new();
    let (alice, bob) = w.two(&[]);
    let v = json(&bob, &["rename", "Robert"]);
    assert_eq!(s(&v, "display_name"), "Robert");
    assert_eq!(s(&v, "was"), "Bob");
    let names = |dir: &std::path::Path| -> Vec<String> {
        json(dir, &["members"])["members"]
            .as_array()
            .unwrap()
            .iter()
            .map(|m| s(m, "display_name"))
            .collect()
    };
    assert!(names(&bob).contains(&"Robert".to_string()));
    // Bad names are refused before anything is written, in one line naming the problem.
    let before = changes(&bob);
    let r = coop(&bob, &["rename", ""]).code(2);
    assert!(r.stderr.contains("empty"), "{}", r.stderr);
    let r = coop(&bob, &["rename", "Bob\nAdmin"]).code(2);
    assert!(r.stderr.contains("one line"), "{}", r.stderr);
    let r = coop(&bob, &["rename", &"x".repeat(65)]).code(2);
    assert!(r.stderr.contains("64"), "{}", r.stderr);
    // Alice's name is hers, in any case; the same name again is redundant.
    coop(&bob, &["rename", "ALICE"]).refused("refused: not_allowed");
    coop(&bob, &["rename", "Robert"]).refused("refused: redundant");
    assert_eq!(changes(&bob), before);

    // Through a running node: the same command, and Alice's node hears of it.
    w.carry(&bob, &alice);
    assert!(names(&alice).contains(&"Robert".to_string()));
    let _up = Up::start(&alice, &[]);
    let v = json(&alice, &["rename", "Alice M."]);
    assert_eq!(s(&v, "was"), "Alice");
    let st = json(&alice, &["members"]);
    let me = st["members"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["you"] == true)
        .cloned()
        .unwrap();
    assert_eq!(s(&me, "display_name"), "Alice M.");
    coop(&alice, &["rename", "robert"]).refused("refused: not_allowed");
}
