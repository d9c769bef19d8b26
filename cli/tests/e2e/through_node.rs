//! The same commands with no node and through a running `coop up`: every reading command
//! must work through the node after any write, and give the same answer as the store.

use super::support::*;

/// Regression: after `coop purchase commit` through a running node, every reading command
/// failed with `invalid type: string "0", expected u32` (a purchase's rounds, a map keyed by
/// round number, inside an internally tagged response).
#[test]
fn reading_commands_work_through_a_running_node_after_a_purchase_commitment() {
    let w = World::new();
    let alice = w.found(&[]);
    let now = 1_900_000_000_i64;
    let deadline = format!("@{}", now + 86_400);
    let p = coop_at(
        &alice,
        now,
        &[
            "--json",
            "purchase",
            "propose",
            "--item",
            "Olive oil",
            "--unit",
            "litre",
            "--target",
            "10",
            "--reference-price",
            "12.50",
            "--currency",
            "EUR",
            "--deadline",
            &deadline,
        ],
    )
    .ok()
    .json();
    let pid = s(&p, "id");
    let up = Up::start(&alice, &[]);
    coop_at(
        &alice,
        now,
        &["purchase", "commit", &pid[..8], "--quantity", "3"],
    )
    .ok();
    let reads: &[&[&str]] = &[
        &["purchase", "list"],
        &["purchase", "show", &pid[..8]],
        &["balance"],
        &["members"],
        &["ledger", "--all"],
    ];
    let through: Vec<_> = reads
        .iter()
        .map(|args| {
            let mut a = vec!["--json"];
            a.extend_from_slice(args);
            coop_at(&alice, now, &a).ok().stdout
        })
        .collect();
    drop(up);
    for (args, via_node) in reads.iter().zip(through) {
        let mut a = vec!["--json"];
        a.extend_from_slice(args);
        let direct = coop_at(&alice, now, &a).ok().stdout;
        assert_eq!(
            via_node,
            direct,
            "`coop {}` differs through the node",
            args.join(" ")
        );
    }
}
