//! The mutual-aid lifecycle: `aid request|offer|accept|confirm|cancel|list|show`.

use std::path::Path;

use super::support::*;

fn request(dir: &Path, title: &str) -> String {
    s(
        &json(
            dir,
            &[
                "aid",
                "request",
                "--category",
                "time",
                "--title",
                title,
                "--description",
                "Boxes and a sofa, third floor.",
            ],
        ),
        "id",
    )
}

#[test]
fn request_offer_accept_and_both_confirmations_complete_the_aid() {
    let w = World::new();
    let (alice, bob) = w.two(&[]);
    let req = json(
        &alice,
        &[
            "aid",
            "request",
            "--category",
            "time",
            "--title",
            "Help moving on Saturday",
            "--description",
            "Boxes and a sofa, third floor.",
            "--urgency",
            "high",
            "--needed-by",
            "2026-12-05",
            "--location",
            "Maple Street",
        ],
    );
    let rid = s(&req, "id");
    assert_eq!(s(&req, "status"), "open");
    coop(
        &alice,
        &[
            "aid",
            "offer",
            &rid[..8],
            "--message",
            "I could help myself.",
            "--availability",
            "now",
        ],
    )
    .refused("refused: not_allowed: cannot offer help on your own request");
    w.carry(&alice, &bob);

    let offer = s(
        &json(
            &bob,
            &[
                "aid",
                "offer",
                &rid[..8],
                "--message",
                "I can help 2-4pm with my van.",
                "--availability",
                "Sat 2-4pm",
            ],
        ),
        "id",
    );
    w.carry(&bob, &alice);
    let show = json(&alice, &["aid", "show", &rid[..8]]);
    assert_eq!(s(&show, "status"), "open");
    assert_eq!(s(&show, "urgency"), "high");
    assert_eq!(s(&show, "needed_by"), "2026-12-05");
    assert_eq!(s(&show, "location"), "Maple Street");
    assert_eq!(s(&show["offers"][0], "id"), offer);
    assert_eq!(s(&show["offers"][0], "helper_name"), "Bob");
    let text = coop(&alice, &["aid", "show", &rid[..8]]).ok().stdout;
    assert!(
        text.contains(&offer[..12]) && text.contains("Sat 2-4pm"),
        "{text}"
    );

    // Only the requester accepts an offer.
    w.carry(&alice, &bob);
    coop(&bob, &["aid", "accept", &offer[..8]]).refused("refused: not_allowed");
    let acc = json(&alice, &["aid", "accept", &offer[..8]]);
    assert_eq!(s(&acc, "request"), rid);
    assert_eq!(
        s(&json(&alice, &["aid", "show", &rid]), "status"),
        "matched"
    );

    // One confirmation is not completion.
    let c1 = json(
        &alice,
        &[
            "aid",
            "confirm",
            &rid[..8],
            "--rating",
            "5",
            "--feedback",
            "Thanks!",
        ],
    );
    assert_eq!(s(&c1, "status"), "matched");
    w.carry(&alice, &bob);
    let c2 = json(&bob, &["aid", "confirm", &rid[..8], "--rating", "4"]);
    assert_eq!(s(&c2, "status"), "completed");
    w.carry(&bob, &alice);

    let done = json(&alice, &["aid", "list", "--status", "completed"]);
    let list = done["requests"].as_array().unwrap();
    assert_eq!(list.len(), 1);
    assert_eq!(s(&list[0], "id"), rid);
    assert_eq!(s(&list[0], "helper"), s(&json(&bob, &["status"]), "member"));
    assert_eq!(list[0]["requester_confirmation"]["rating"], 5);
    assert_eq!(list[0]["helper_confirmation"]["rating"], 4);
    assert!(
        json(&alice, &["aid", "list", "--status", "open"])["requests"]
            .as_array()
            .unwrap()
            .is_empty()
    );
    let text = coop(&alice, &["aid", "list"]).ok().stdout;
    assert!(
        text.contains("completed") && text.contains("Help moving"),
        "{text}"
    );
    // Completed aid cannot be cancelled.
    coop(&alice, &["aid", "cancel", &rid[..8]]).refused("refused: already_settled");
}

#[test]
fn the_requester_cancels_and_only_once() {
    let w = World::new();
    let (alice, bob) = w.two(&[]);
    let rid = request(&alice, "Ladder for the weekend");
    w.carry(&alice, &bob);
    coop(&bob, &["aid", "cancel", &rid]).refused("refused: not_allowed");
    let c = json(&alice, &["aid", "cancel", &rid]);
    assert_eq!(s(&c, "status"), "cancelled");
    coop(&alice, &["aid", "cancel", &rid]).refused("refused: already_settled");
    let list = json(&alice, &["aid", "list", "--status", "cancelled"]);
    assert_eq!(list["requests"].as_array().unwrap().len(), 1);
}

#[test]
fn unknown_categories_are_refused() {
    let w = World::new();
    let alice = w.found(&[]);
    coop(
        &alice,
        &[
            "aid",
            "request",
            "--category",
            "money",
            "--title",
            "Rent",
            "--description",
            "Short this month, sorry.",
        ],
    )
    .refused("refused: unknown_category");
    assert_eq!(changes(&alice), 1);
}
