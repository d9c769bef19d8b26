//! `init`, `found`, `invite`, `join`, `vouch`, `status`, `members`.

use super::support::*;

#[test]
fn init_found_and_status_describe_the_founder() {
    let w = World::new();
    let alice = w.dir("Alice");
    let init = json(&alice, &["init", "--name", "Alice"]);
    let member = s(&init, "member");
    assert_eq!(member.len(), 64);
    assert!(member
        .chars()
        .all(|c| c.is_ascii_hexdigit() && !c.is_ascii_uppercase()));
    assert_eq!(s(&init, "display_name"), "Alice");

    // Before a community, status still says who you are.
    let st = json(&alice, &["status"]);
    assert_eq!(s(&st, "membership"), "none");
    assert!(st["community"].is_null());

    let found = json(
        &alice,
        &[
            "found",
            "--community",
            "Maple Street",
            "--param",
            "sp_budget=120",
        ],
    );
    let community = s(&found, "community");
    assert_eq!(community.len(), 64);
    assert_eq!(found["lan_key"], true);
    assert_eq!(found["params"]["sp_budget"], 120);

    let st = json(&alice, &["status"]);
    assert_eq!(s(&st, "community"), community);
    assert_eq!(s(&st, "community_name"), "Maple Street");
    assert_eq!(s(&st, "member"), member);
    assert_eq!(s(&st, "membership"), "admitted");
    assert_eq!(st["running"], false);
    assert_eq!(i(&st, "changes"), 1);
    assert_eq!(i(&st, "refused"), 0);
    assert_eq!(st["heads"].as_array().unwrap().len(), 1);

    let text = coop(&alice, &["status"]).ok().stdout;
    assert!(
        text.contains("Maple Street") && text.contains("admitted"),
        "{text}"
    );

    let members = json(&alice, &["members"]);
    let list = members["members"].as_array().unwrap();
    assert_eq!(list.len(), 1);
    assert_eq!(s(&list[0], "id"), member);
    assert_eq!(s(&list[0], "status"), "admitted");
    assert_eq!(list[0]["you"], true);
    assert!(list[0]["roles"]
        .as_array()
        .unwrap()
        .contains(&"moderator".into()));

    // The full text form of the community id is printed for people too.
    let w2 = World::new();
    let bob = w2.init("Bob");
    let out = coop(&bob, &["found", "--community", "Elm Row", "--no-lan-key"]).ok();
    let id = s(&json(&bob, &["status"]), "community");
    assert!(out.stdout.contains(&id), "{}", out.stdout);
    assert_eq!(json(&bob, &["invite"])["lan_key"], false);
}

#[test]
fn init_and_found_refuse_to_overwrite() {
    let w = World::new();
    let alice = w.found(&[]);
    let again = coop(&alice, &["init", "--name", "Eve"]).code(1);
    assert!(
        again.stderr.contains("already holds a coop identity"),
        "{}",
        again.stderr
    );
    assert_eq!(again.stderr.lines().count(), 1);
    let twice = coop(&alice, &["found", "--community", "Other"]).code(1);
    assert!(
        twice.stderr.contains("already belongs to community"),
        "{}",
        twice.stderr
    );
}

#[test]
fn commands_before_init_say_what_to_do() {
    let w = World::new();
    let nobody = w.dir("nobody");
    for args in [&["status"][..], &["members"], &["balance"], &["invite"]] {
        let r = coop(&nobody, args).code(1);
        assert!(
            r.stderr.contains("coop init --name NAME"),
            "{args:?}: {}",
            r.stderr
        );
        assert_eq!(r.stderr.lines().count(), 1, "{}", r.stderr);
    }
    let w2 = World::new();
    let lonely = w2.init("Lonely");
    let r = coop(&lonely, &["members"]).code(1);
    assert!(r.stderr.contains("no community yet"), "{}", r.stderr);
}

#[test]
fn invite_join_and_vouch_admit_a_newcomer() {
    let w = World::new();
    let alice = w.found(&[]);
    let inv = json(&alice, &["invite"]);
    let code = s(&inv, "code");
    assert!(code.starts_with("coop1"), "{code}");
    assert_eq!(inv["lan_key"], true);
    assert_eq!(
        s(&inv, "community"),
        s(&json(&alice, &["status"]), "community")
    );
    // Text mode prints the code alone on stdout, so `coop join $(coop invite)` works.
    assert_eq!(coop(&alice, &["invite"]).ok().stdout.trim(), code);

    let bob = w.init("Bob");
    let joined = json(&bob, &["join", &code]);
    assert_eq!(s(&joined, "community"), s(&inv, "community"));
    assert_eq!(s(&json(&bob, &["status"]), "membership"), "pending");

    // A pending member can write nothing but the join request.
    let before = changes(&bob);
    coop(&bob, &["proposal", "open", "--title", "Bike racks"]).refused("refused: not_a_member: ");
    assert_eq!(changes(&bob), before);

    w.carry(&bob, &alice);
    let alice_view = json(&alice, &["members"]);
    let pending: Vec<_> = alice_view["members"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|m| m["status"] == "pending")
        .collect();
    assert_eq!(pending.len(), 1);
    assert_eq!(s(pending[0], "display_name"), "Bob");

    // By unique id prefix as well as by name.
    let prefix = &s(&joined, "member")[..10];
    let v = json(&alice, &["vouch", prefix]);
    assert_eq!(s(&v, "member"), s(&joined, "member"));
    assert_eq!(s(&v, "status"), "admitted");
    // Vouching twice is refused and writes nothing.
    let before = changes(&alice);
    coop(&alice, &["vouch", "Bob"]).refused("refused: redundant: already vouched");
    assert_eq!(changes(&alice), before);

    w.carry(&alice, &bob);
    assert_eq!(s(&json(&bob, &["status"]), "membership"), "admitted");
    assert_eq!(
        s(&json(&bob, &["status"]), "community_name"),
        "Maple Street"
    );
}

#[test]
fn unknown_and_ambiguous_members_fail_with_one_line() {
    let w = World::new();
    let (alice, _bob) = w.two(&[]);
    let r = coop(&alice, &["vouch", "Zed"]).code(1);
    assert_eq!(r.stderr.trim(), "error: no member matches \"Zed\"");
    let r = coop(&alice, &["balance", "Zed"]).code(1);
    assert!(r.stderr.contains("no member matches"), "{}", r.stderr);
}

#[test]
fn bad_invite_codes_fail_with_one_clear_line() {
    let w = World::new();
    let alice = w.found(&[]);
    let code = s(&json(&alice, &["invite"]), "code");
    let bob = w.init("Bob");
    // One character changed in the middle keeps valid base64url but breaks the checksum.
    let mut chars: Vec<char> = code.chars().collect();
    chars[20] = if chars[20] == 'A' { 'B' } else { 'A' };
    let mistyped: String = chars.into_iter().collect();
    for (bad, why) in [
        ("hello", "must start with \"coop1\""),
        (mistyped.as_str(), "checksum mismatch"),
        ("coop1%%%", "not base64url"),
    ] {
        let r = coop(&bob, &["join", bad]).code(1);
        assert!(
            r.stderr.contains("invalid invite code") && r.stderr.contains(why),
            "{}",
            r.stderr
        );
        assert_eq!(r.stderr.lines().count(), 1, "{}", r.stderr);
    }
    // Nothing was recorded: Bob still has no community.
    assert!(json(&bob, &["status"])["community"].is_null());
}
