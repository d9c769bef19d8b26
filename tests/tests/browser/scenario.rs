//! Two members' browsers (real headless Chromium over WebDriver) against their own real
//! nodes on 127.0.0.1: Bob logs 90 minutes; Alice's open inbox shows it live, without a
//! reload; she confirms; both home pages show the new balances; an 11th SP on one
//! proposal shows the refusal sentence; a purchase goes from proposal to pickup; the
//! dashboard's charts carry the expected bars. Screenshots of every page go to
//! `target/app-screenshots/`.
//!
//! Without Chromium and chromedriver the test says why and passes, except under `CI=true`,
//! where it fails (`.ci/run` installs them).

use std::path::PathBuf;
use std::time::{Duration, Instant};

use coop_tests::{addr, init_tracing, wait_until, DEADLINE};

use super::webdriver::{tools, Browser, Driver};
use super::{alice_and_bob, port, start_app_node};

/// How long a live update may take to show in the other member's open page. The brief's
/// aim is a second on an idle machine; this deadline is generous for a loaded CI machine,
/// and the measured latency is printed.
const LIVE_DEADLINE: Duration = Duration::from_secs(30);
const STEP: Duration = Duration::from_secs(60);

fn shots() -> PathBuf {
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../target"));
    let dir = target.join("app-screenshots");
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// Waits until the page's source satisfies `check`, without reloading it.
fn until(b: &Browser, what: &str, deadline: Duration, check: impl Fn(&str) -> bool) -> Duration {
    let start = Instant::now();
    loop {
        if check(&b.source()) {
            return start.elapsed();
        }
        assert!(
            start.elapsed() < deadline,
            "{what}: not within {deadline:?}; the page was:\n{}",
            b.source()
        );
        std::thread::sleep(Duration::from_millis(25));
    }
}

fn submit(b: &Browser, form_css: &str) {
    let button = b.find(&format!("{form_css} button[type=submit]"), STEP);
    b.click(&button);
}

fn fill(b: &Browser, css: &str, text: &str) {
    let el = b.find(css, STEP);
    b.fill(&el, text);
}

fn choose(b: &Browser, css: &str) {
    let el = b.find(css, STEP);
    b.click(&el);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_members_use_the_app_in_real_browsers() {
    init_tracing();
    let (browser_bin, driver_bin) = match tools() {
        Ok(t) => t,
        Err(why) if std::env::var("CI").as_deref() == Ok("true") => {
            panic!("CI=true and the browser test cannot run: {why}")
        }
        Err(why) => {
            eprintln!("skipping the browser test: {why}");
            return;
        }
    };
    let root = tempfile::tempdir().unwrap();
    let (alice_dir, bob_dir) = alice_and_bob(root.path());
    let alice = start_app_node(&alice_dir, vec![]).await;
    let bob = start_app_node(&bob_dir, vec![addr(&alice)]).await;
    let a_id = alice.peer_id();
    assert!(
        wait_until(DEADLINE, || {
            let a_id = a_id.clone();
            let bob = bob.clone();
            async move { bob.peers().contains(&a_id) }
        })
        .await,
        "Bob's node connects to Alice's"
    );
    let alice_member = alice.status().await.unwrap().member;
    let (pa, pb) = (port(&alice), port(&bob));
    let login_a = format!(
        "http://127.0.0.1:{pa}/login?token={}",
        coop_node::app::issue_login_token(&alice_dir).unwrap()
    );
    let login_b = format!(
        "http://127.0.0.1:{pb}/login?token={}",
        coop_node::app::issue_login_token(&bob_dir).unwrap()
    );
    let shots = shots();

    let report = tokio::task::spawn_blocking(move || {
        let driver = Driver::start(&driver_bin);
        let a = Browser::open(&driver, &browser_bin);
        let b = Browser::open(&driver, &browser_bin);
        let home_a = format!("http://127.0.0.1:{pa}/");
        let home_b = format!("http://127.0.0.1:{pb}/");

        // Logging in trades the link for a cookie and lands on the home page.
        a.go(&login_a);
        b.go(&login_b);
        until(&a, "Alice's home", STEP, |s| s.contains("Hello, Alice"));
        until(&b, "Bob's home", STEP, |s| s.contains("Hello, Bob"));
        assert_eq!(a.url(), home_a, "the token is gone from the address bar");

        // Bob logs 90 minutes for Alice in his browser; Alice's inbox is open meanwhile.
        b.go(&format!("http://127.0.0.1:{pb}/timebank"));
        choose(&b, &format!("#log-hours select[name=to] option[value='{}']", alice_member.to_hex()));
        fill(&b, "#log-hours input[name='n:minutes']", "90");
        fill(&b, "#log-hours input[name=service]", "Garden work");
        fill(&b, "#log-hours input[name=category]", "garden");
        b.screenshot(&shots.join("timebank-bob.png"));
        let logged = Instant::now();
        submit(&b, "#log-hours");
        until(&b, "Bob's hours list", STEP, |s| s.contains("Garden work") && s.contains("pending"));
        let live = until(&a, "Alice's inbox shows Bob's hours (live)", LIVE_DEADLINE, |s| {
            s.contains("Garden work") && s.contains("1 h 30 min")
        });
        let live_total = logged.elapsed();
        a.screenshot(&shots.join("home-inbox-alice.png"));

        // Bob keeps his home page open: it follows the confirmation live too.
        b.go(&home_b);
        until(&b, "Bob's home", STEP, |s| s.contains("Hello, Bob"));

        // Alice confirms.
        submit(&a, "form[id^='confirm-']");
        until(&a, "Alice's balance", STEP, |s| {
            s.contains(r#"data-minutes="-90""#) && s.contains("Nothing waits on you.")
        });
        let confirmed = Instant::now();
        until(&b, "Bob's balance (live)", LIVE_DEADLINE, |s| s.contains(r#"data-minutes="90""#));
        let live_confirm = confirmed.elapsed();
        a.screenshot(&shots.join("home-alice.png"));
        b.screenshot(&shots.join("home-bob.png"));
        let balance = a.text(&a.find("#my-balance .big", STEP));
        assert_eq!(balance, "−1 h 30 min");
        assert_eq!(b.text(&b.find("#my-balance .big", STEP)), "1 h 30 min");

        // Alice proposes, puts 10 SP on it, then an 11th: the sentence beside the form.
        a.go(&format!("http://127.0.0.1:{pa}/proposals"));
        fill(&a, "#new-proposal input[name=title]", "Community oven");
        fill(&a, "#new-proposal textarea[name=description]", "A shared bread oven in the courtyard.");
        submit(&a, "#new-proposal");
        until(&a, "the proposal", STEP, |s| s.contains("Community oven"));
        fill(&a, "form[id^='allocate-'] input[name='n:points']", "10");
        submit(&a, "form[id^='allocate-']");
        until(&a, "10 SP on it", STEP, |s| s.contains("You have 10 SP on it."));
        fill(&a, "form[id^='allocate-'] input[name='n:points']", "1");
        submit(&a, "form[id^='allocate-']");
        let refusal = a.find("form[id^='allocate-'] .refusal", STEP);
        assert_eq!(
            a.text(&refusal),
            "You can put at most 10 SP on one proposal; you have 10 on it already"
        );
        a.screenshot(&shots.join("proposals-refusal.png"));

        // A purchase from proposal to pickup, coordinated by Alice.
        a.go(&format!("http://127.0.0.1:{pa}/purchases"));
        fill(&a, "#new-purchase input[name=item]", "Organic flour");
        fill(&a, "#new-purchase input[name='n:target_quantity']", "10");
        fill(&a, "#new-purchase input[name='m:reference_price']", "3.00");
        submit(&a, "#new-purchase");
        until(&a, "the purchase", STEP, |s| s.contains("Organic flour") && s.contains(r#"data-state="open""#));
        fill(&a, "form[id^='commit-'] input[name='n:quantity']", "10");
        submit(&a, "form[id^='commit-']");
        until(&a, "the commitment", STEP, |s| s.contains(r#"data-state="funded""#));
        fill(&a, "form[id^='bid-'] input[name=supplier]", "Mill Farm");
        fill(&a, "form[id^='bid-'] input[name='m:unit_price']", "2.00");
        submit(&a, "form[id^='bid-']");
        until(&a, "the bid", STEP, |s| s.contains("Mill Farm (local)"));
        submit(&a, "form[id^='ordered-']");
        until(&a, "ordered", STEP, |s| s.contains(r#"data-state="ordered""#));
        submit(&a, "form[id^='delivered-']");
        until(&a, "delivered", STEP, |s| s.contains(r#"data-state="delivered""#));
        submit(&a, "form[id^='mark-paid-']");
        until(&a, "paid", STEP, |s| !s.contains("id=\"mark-paid-"));
        submit(&a, "form[id^='mark-picked_up-']");
        until(&a, "picked up", STEP, |s| !s.contains("id=\"mark-picked_up-"));
        let row = a.text(&a.find("section.round tbody tr", STEP));
        assert!(row.contains("Alice") && row.contains("yes yes"), "{row:?}");
        a.screenshot(&shots.join("purchases.png"));

        // The dashboard's charts carry the bars of what happened.
        a.go(&format!("http://127.0.0.1:{pa}/dashboard"));
        until(&a, "the dashboard", STEP, |s| s.contains("Hours exchanged per month"));
        let bars = |css: &str| a.all(css).len();
        assert_eq!(bars("#chart-hours rect.bar[data-value='90']"), 1, "one month of 90 minutes");
        assert_eq!(bars("#chart-sp rect.bar[data-label='Community oven'][data-value='10']"), 1);
        assert_eq!(bars("#chart-purchases rect.bar[data-label='Savings (EUR)'][data-value='1000']"), 1);
        assert_eq!(bars("#chart-participation rect.bar[data-label='Admitted members'][data-value='2']"), 1);
        a.screenshot(&shots.join("dashboard.png"));

        // Every other page renders in the browser.
        for page in ["members", "aid", "decisions", "pools", "ledger", "settings", "network"] {
            a.go(&format!("http://127.0.0.1:{pa}/{page}"));
            until(&a, page, STEP, |s| s.contains("id=\"main\"") && s.contains("</h1>"));
            a.screenshot(&shots.join(format!("{page}.png")));
            if page == "ledger" {
                let s = a.source();
                assert!(s.contains("allocate: 10 SP to “Community oven”"), "records named by title: {s}");
                assert!(s.contains("confirmed Bob's 1 h 30 min of “Garden work”"), "{s}");
            }
            if page == "settings" {
                assert!(a.source().contains("qr-dark"), "the settings page draws the invite's QR code");
            }
        }
        // Bob changes his name in his settings: Alice's name is taken (the sentence beside the
        // form), "Robert" is not; Alice's node then names him Robert.
        b.go(&format!("http://127.0.0.1:{pb}/settings"));
        fill(&b, "#rename input[name=display_name]", "alice");
        submit(&b, "#rename");
        let refusal = b.find("#rename .refusal", STEP);
        assert_eq!(b.text(&refusal), "Another member is already called that; choose another name.");
        fill(&b, "#rename input[name=display_name]", "Robert");
        submit(&b, "#rename");
        until(&b, "Bob's new name", STEP, |s| s.contains(r#"id="my-name">Robert<"#));
        b.screenshot(&shots.join("settings-rename-bob.png"));
        a.go(&format!("http://127.0.0.1:{pa}/members"));
        until(&a, "Robert in Alice's directory", STEP, |s| s.contains(">Robert</a>"));
        a.go(&format!("http://127.0.0.1:{pa}/members/{}", alice_member.to_hex()));
        until(&a, "Alice's profile", STEP, |s| s.contains("Garden work"));
        a.screenshot(&shots.join("profile.png"));
        // Small screens: the home page at 375 px.
        a.resize(375, 900);
        a.go(&home_a);
        until(&a, "home", STEP, |s| s.contains("Hello, Alice"));
        a.screenshot(&shots.join("home-375px.png"));
        format!(
            "live: Bob's hours in Alice's open inbox after {live:?} of polling ({live_total:?} from his click); \
             Alice's confirmation in Bob's open home page after {live_confirm:?}"
        )
    })
    .await
    .unwrap();
    eprintln!("{report}");
    bob.shutdown().await.unwrap();
    alice.shutdown().await.unwrap();
}
