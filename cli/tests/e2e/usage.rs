//! Usage errors exit 2 before anything is opened or written.

use std::process::Stdio;

use super::support::*;

#[test]
fn usage_errors_exit_2() {
    let w = World::new();
    let alice = w.found(&[]);
    let before = changes(&alice);
    // Command lines split at spaces (no argument here contains one).
    let cases = [
        "",
        "frobnicate",
        "init",
        "hours log --minutes 60 --service x",
        "hours log --to Bob --minutes 0 --service x",
        "hours log --to Bob --minutes 1441 --service x",
        "hours log --to Bob --minutes sixty --service x",
        "hours log --to Bob --minutes 60 --service x --date 2026-02-30",
        "hours log --to Bob --minutes 60 --service x --date 1800-01-01",
        "proposal open --title ab",
        "proposal close abcd --outcome maybe",
        "sp allocate abcd 0",
        "found --community X --param nope=1",
        "found --community X --param sp_budget=lots",
        "found --community X --param timebank_floor_minutes=5",
        "aid confirm abcd --rating 6",
        "aid request --category time --title Hi --description long-enough-text",
        "aid request --category time --title Help --description short",
        "aid request --category time --title Help --description long-enough-text --urgency urgent",
        "aid list --status lost",
        "ledger --limit -1",
        "up --sync-interval 0",
    ];
    for line in cases {
        let args: Vec<&str> = line.split_whitespace().collect();
        let r = coop(&alice, &args);
        assert_eq!(
            r.code, 2,
            "{line:?}\nstdout: {}\nstderr: {}",
            r.stdout, r.stderr
        );
        assert!(r.stdout.is_empty(), "{line:?}: {}", r.stdout);
    }
    assert_eq!(changes(&alice), before);
    // --help and --version are not errors.
    coop(&alice, &["--help"]).ok();
    assert!(coop(&alice, &["--version"])
        .ok()
        .stdout
        .starts_with("coop "));
}

#[test]
fn the_data_dir_comes_from_the_environment_too() {
    let w = World::new();
    let dir = w.dir("Env");
    let out = command()
        .env("COOP_DATA_DIR", &dir)
        .args(["--json", "init", "--name", "Env"])
        .output()
        .unwrap();
    assert!(out.status.success());
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["data_dir"], dir.display().to_string());
    assert!(dir.join("identity.key").exists());
}

#[test]
fn other_errors_exit_1_with_a_json_error_for_scripts() {
    let w = World::new();
    let nobody = w.dir("nobody");
    let r = coop(&nobody, &["--json", "status"]).code(1);
    assert_eq!(r.stderr.lines().count(), 1);
    let e = &r.json()["error"];
    assert_eq!(e["kind"], "error");
    assert!(e["message"].as_str().unwrap().contains("coop init"));
}

#[test]
fn completions_and_man_pages_are_generated_from_the_commands() {
    let w = World::new();
    let dir = w.dir("nobody");
    let bash = coop(&dir, &["completions", "bash"]).ok().stdout;
    assert!(bash.contains("_coop") && bash.contains("inbox"), "{bash}");
    for shell in ["zsh", "fish"] {
        let script = coop(&dir, &["completions", shell]).ok().stdout;
        assert!(script.contains("profile"), "{shell}: {script}");
    }
    coop(&dir, &["completions", "tcsh-ish"]).code(2);
    let page = coop(&dir, &["man"]).ok().stdout;
    assert!(
        page.starts_with(".ie") || page.contains(".TH coop"),
        "{page}"
    );
    let out = w.file("man");
    coop(&dir, &["man", "--out", out.to_str().unwrap()]).ok();
    for p in [
        "coop.1",
        "coop-inbox.1",
        "coop-hours.1",
        "coop-hours-list.1",
    ] {
        assert!(out.join(p).exists(), "{p} not written");
    }
    // Neither needed a data dir.
    assert!(!dir.exists());
}

#[test]
fn coop_allocates_with_jemalloc_in_one_arena() {
    // jemalloc prints its configuration at exit when asked through its own variable
    // (the prefixed build's `_RJEM_MALLOC_CONF`): present only if it is the allocator,
    // and its build-time setting (`.cargo/config.toml`) shows.
    let out = command()
        .env("_RJEM_MALLOC_CONF", "stats_print:true")
        .arg("--version")
        .stdin(Stdio::null())
        .output()
        .expect("run coop");
    assert!(out.status.success());
    let stats = String::from_utf8_lossy(&out.stderr);
    assert!(
        stats.contains("config.malloc_conf: \"narenas:1\""),
        "jemalloc's build-time configuration is not in its stats:\n{stats}"
    );
    assert!(stats.contains("opt.narenas: 1"), "{stats}");
}
