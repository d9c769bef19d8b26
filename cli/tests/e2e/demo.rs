//! `coop demo` runs three real nodes through the seed's scenarios and converges.

use super::support::*;

#[test]
fn the_demo_runs_the_seed_scenarios_and_converges() {
    let out = command().arg("demo").output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "stdout: {stdout}\nstderr: {stderr}");
    for expected in [
        "Bob logged 180 min of car repair for Alice",
        "Carol logged 120 min of tutoring for Bob",
        "Alice has 77 of 100 SP available.",
        "refused: over_proposal_cap: 11 SP on one proposal, cap is 10",
        "Bob and Carol both confirmed the help was given.",
        "All three digests are equal",
    ] {
        assert!(
            stdout.contains(expected),
            "missing {expected:?} in:\n{stdout}"
        );
    }
    let row = |name: &str| {
        stdout
            .lines()
            .find(|l| l.starts_with(&format!("{name} ")) && l.contains(" / "))
            .unwrap_or_else(|| panic!("no row for {name} in:\n{stdout}"))
            .to_string()
    };
    assert!(row("Alice").contains("-180 min (-3 h)") && row("Alice").contains("77 / 100"));
    assert!(row("Bob").contains("+60 min (+1 h)") && row("Bob").contains("1 / 0"));
    assert!(row("Carol").contains("+120 min (+2 h)") && row("Carol").contains("0 / 1"));
}

#[test]
fn the_demo_reports_json_and_can_keep_its_data_dirs() {
    let out = command()
        .args(["--json", "demo", "--keep"])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "stderr: {stderr}");
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["converged"], true);
    let d = v["digests"].as_array().unwrap();
    assert_eq!(d.len(), 3);
    assert!(d[0] == d[1] && d[1] == d[2]);
    let members = v["members"].as_array().unwrap();
    let by = |n: &str| {
        members
            .iter()
            .find(|m| m["display_name"] == n)
            .unwrap()
            .clone()
    };
    assert_eq!(by("Alice")["balance_minutes"], -180);
    assert_eq!(by("Alice")["sp_available"], 77);
    assert_eq!(by("Alice")["warning"], true);
    assert_eq!(by("Bob")["balance_minutes"], 60);
    assert_eq!(by("Bob")["ratio_percent"], 66);
    assert_eq!(by("Carol")["balance_minutes"], 120);
    assert_eq!(by("Carol")["aid_received"], 1);

    // The narration went to stderr; the kept dirs are named there and hold three stores.
    let kept = stderr
        .lines()
        .find_map(|l| l.strip_prefix("The data dirs are kept in "))
        .expect("the kept path is printed");
    let kept = std::path::Path::new(kept.trim());
    for n in ["alice", "bob", "carol"] {
        assert!(kept.join(n).join("store").is_dir(), "{}", kept.display());
    }
    // The children were stopped: the stores open directly again.
    let st = json(&kept.join("bob"), &["status"]);
    assert_eq!(st["running"], false);
    assert_eq!(s(&st, "digest"), d[0].as_str().unwrap());
    std::fs::remove_dir_all(kept).unwrap();
}
