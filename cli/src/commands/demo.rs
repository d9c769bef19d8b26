//! `coop demo`: three real nodes on 127.0.0.1 run the seed's scenarios end to end.
//!
//! Alice founds a community; Bob and Carol join with her invite and she vouches for them.
//! Each runs `coop up` as a child process of this binary with its own temporary data dir;
//! every step goes through that node's API socket (`Backend::open` → remote), and every
//! wait is a condition polled against a deadline. The children are killed and the data dirs
//! removed at the end, on error too (unless `--keep`).

use coop_model::record;
use std::fs::File;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, ensure, Context, Result};
use coop_model::query::Family;
use coop_model::record::Urgency;
use coop_model::state::{AidStatus, AttestationStatus, MemberStatus};
use coop_model::{Day, MemberId, Params, Points, Record, RecordId, State};
use coop_node::{Backend, DataDir, LocalNode, NodeError, Status};
use indicatif::{ProgressBar, ProgressStyle};
use rand::RngCore;
use serde_json::json;

use crate::app::{unix_now, Report};
use crate::commands::membership::running_status;
use crate::show::{self, Table};
use coop_node::invite::Invite;

/// How long any one wait may take before the demo gives up (generous: a loaded machine).
const STEP_DEADLINE: Duration = Duration::from_secs(90);
const POLL: Duration = Duration::from_millis(100);

/// A `coop up` child process, killed when dropped. Its stdin is a lifeline: if this
/// process dies without dropping it, the pipe closes and the node stops by itself.
#[derive(Debug)]
struct NodeProcess {
    name: &'static str,
    dir: DataDir,
    log: PathBuf,
    child: Child,
}

impl NodeProcess {
    fn spawn(name: &'static str, dir: &DataDir, peers: &[String]) -> Result<NodeProcess> {
        let exe = std::env::current_exe().context("cannot find the coop executable")?;
        let log = dir.root().join("node.log");
        let out = File::create(&log).with_context(|| format!("cannot create {}", log.display()))?;
        let mut cmd = Command::new(exe);
        cmd.arg("--data-dir")
            .arg(dir.root())
            .args(["up", "--listen", "/ip4/127.0.0.1/tcp/0", "--no-mdns"])
            .args(["--sync-interval", "1", "--stop-on-stdin-eof"])
            .env_remove("COOP_DATA_DIR")
            .stdin(Stdio::piped())
            .stdout(out.try_clone()?)
            .stderr(out);
        if std::env::var_os("RUST_LOG").is_none() {
            cmd.env("RUST_LOG", "info");
        }
        for p in peers {
            cmd.arg("--peer").arg(p);
        }
        let child = cmd
            .spawn()
            .with_context(|| format!("cannot start {name}'s node"))?;
        Ok(NodeProcess {
            name,
            dir: dir.clone(),
            log,
            child,
        })
    }

    /// An error if the process has exited.
    fn alive(&mut self) -> Result<()> {
        match self.child.try_wait()? {
            None => Ok(()),
            Some(status) => Err(anyhow!(
                "{}'s node exited ({status}); its log is in {}",
                self.name,
                self.log.display()
            )),
        }
    }

    fn submit(&self, record: Record) -> Result<RecordId> {
        Ok(Backend::open(&self.dir)?.submit(record, unix_now())?)
    }
}

impl Drop for NodeProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Narration: stdout for text output, stderr when stdout carries JSON.
struct Narrator {
    json: bool,
}

impl Narrator {
    fn say(&self, line: impl AsRef<str>) {
        if self.json {
            eprintln!("{}", line.as_ref());
        } else {
            println!("{}", line.as_ref());
        }
    }
}

/// Polls `check` until it yields a value, with a spinner (shown only on a terminal). Fails
/// at the deadline, or as soon as one of the nodes has exited.
fn wait_for<T>(
    what: &str,
    nodes: &mut [&mut NodeProcess],
    mut check: impl FnMut() -> Result<Option<T>>,
) -> Result<T> {
    let spinner = ProgressBar::new_spinner();
    spinner.set_style(
        ProgressStyle::with_template("{spinner} {msg} ({elapsed})")
            .unwrap_or_else(|_| ProgressStyle::default_spinner()),
    );
    spinner.set_message(format!("waiting: {what}"));
    spinner.enable_steady_tick(Duration::from_millis(120));
    let start = Instant::now();
    let mut last_err = None;
    let result = loop {
        for n in nodes.iter_mut() {
            if let Err(e) = n.alive() {
                spinner.finish_and_clear();
                return Err(e);
            }
        }
        match check() {
            Ok(Some(v)) => break Ok(v),
            Ok(None) => {}
            Err(e) => last_err = Some(e),
        }
        if start.elapsed() > STEP_DEADLINE {
            break Err(match last_err {
                Some(e) => e.context(format!("timed out waiting for {what}")),
                None => anyhow!("timed out after {STEP_DEADLINE:?} waiting for {what}"),
            });
        }
        std::thread::sleep(POLL);
    };
    spinner.finish_and_clear();
    result
}

fn seed() -> [u8; 32] {
    let mut s = [0u8; 32];
    rand::rngs::OsRng.fill_bytes(&mut s);
    s
}

fn member_status(state: &State, m: &MemberId) -> Option<MemberStatus> {
    state.members.get(m).map(|m| m.status)
}

/// The refusal line, as every `coop` command prints it.
fn refusal_line(e: &anyhow::Error) -> Option<String> {
    match e.downcast_ref::<NodeError>() {
        Some(NodeError::Refused(r)) => Some(format!("refused: {}: {}", r.reason, r.detail)),
        _ => None,
    }
}

pub(crate) fn demo(keep: bool, ui: bool, json: bool) -> Result<Report> {
    let base = tempfile::Builder::new()
        .prefix("coop-demo-")
        .tempdir()
        .context("cannot create a temporary directory")?;
    let result = scenario(base.path(), ui, json);
    if keep {
        let path = base.keep();
        eprintln!("The data dirs are kept in {}", path.display());
    }
    result
}

fn scenario(base: &Path, ui: bool, json: bool) -> Result<Report> {
    let started = Instant::now();
    let say = Narrator { json };
    let dirs = ["alice", "bob", "carol"].map(|n| DataDir::new(base.join(n)));
    let [alice_dir, bob_dir, carol_dir] = &dirs;

    // Identities and the community, written directly to the stores (no node runs yet).
    alice_dir.init("Alice", seed(), seed())?;
    bob_dir.init("Bob", seed(), seed())?;
    carol_dir.init("Carol", seed(), seed())?;
    let founded = LocalNode::found(
        alice_dir,
        "Maple Street Co-op",
        Params::default(),
        unix_now(),
    )?;
    let community = founded.community();
    let alice = founded.member();
    drop(founded);
    let psk = seed();
    let mut config = alice_dir.config()?;
    config.psk = Some(hex::encode(psk));
    alice_dir.save_config(&config)?;
    say.say(format!(
        "Alice founded \"Maple Street Co-op\" (community {}), with a LAN key.",
        community.short()
    ));

    let mut logs = LogsOnFailure {
        logs: Vec::new(),
        armed: true,
    };
    let mut a = NodeProcess::spawn("Alice", alice_dir, &[])?;
    logs.logs.push((a.name, a.log.clone()));
    let alice_addr = wait_for("Alice's node to listen", &mut [&mut a], || {
        Ok(running_status(alice_dir).and_then(|s| s.listen.into_iter().next()))
    })?;
    say.say(format!("Alice's node is up at {alice_addr}"));

    // Bob and Carol join with Alice's invite code.
    let code = Invite {
        community,
        psk: Some(psk),
        peers: vec![alice_addr.clone()],
        relays: Vec::new(),
    }
    .encode();
    let mut joined = Vec::new();
    for dir in [bob_dir, carol_dir] {
        let inv = Invite::decode(&code)?;
        let (node, _) = LocalNode::join(
            dir,
            inv.community,
            inv.psk.map(hex::encode),
            inv.peers,
            unix_now(),
        )?;
        joined.push(node.member());
    }
    let (bob, carol) = (joined[0], joined[1]);
    say.say("Bob and Carol joined with Alice's invite code; they are pending.");
    let mut b = NodeProcess::spawn("Bob", bob_dir, std::slice::from_ref(&alice_addr))?;
    let mut c = NodeProcess::spawn("Carol", carol_dir, std::slice::from_ref(&alice_addr))?;
    logs.logs.push((b.name, b.log.clone()));
    logs.logs.push((c.name, c.log.clone()));
    wait_for(
        "Bob's and Carol's nodes to start",
        &mut [&mut b, &mut c],
        || {
            Ok(
                (running_status(bob_dir).is_some() && running_status(carol_dir).is_some())
                    .then_some(()),
            )
        },
    )?;

    // Admission: Alice vouches for both once their join requests reached her node.
    wait_for(
        "the join requests to reach Alice",
        &mut [&mut a, &mut b, &mut c],
        || {
            let s = state_of(alice_dir)?;
            Ok(
                (member_status(&s, &bob).is_some() && member_status(&s, &carol).is_some())
                    .then_some(()),
            )
        },
    )?;
    for (who, name) in [(bob, "Bob"), (carol, "Carol")] {
        a.submit(Record::Vouch(record::Vouch { member: who }))?;
        say.say(format!("Alice vouched for {name}."));
    }
    wait_for(
        "Bob and Carol to see themselves admitted",
        &mut [&mut a, &mut b, &mut c],
        || {
            let bs = state_of(bob_dir)?;
            let cs = state_of(carol_dir)?;
            Ok((member_status(&bs, &bob) == Some(MemberStatus::Admitted)
                && member_status(&cs, &carol) == Some(MemberStatus::Admitted))
            .then_some(()))
        },
    )?;
    say.say("Bob and Carol are admitted members.");

    // Time bank: Bob repairs Alice's car for 3 h; Carol tutors Bob for 2 h.
    let today = Day::from_unix(unix_now());
    let repair = b.submit(Record::Attest(record::Attest {
        to: alice,
        minutes: coop_model::Minutes(180),
        service: "car repair".into(),
        category: "repair".into(),
        date: today,
    }))?;
    say.say(format!(
        "Bob logged 180 min of car repair for Alice ({}).",
        repair.short()
    ));
    let tutoring = c.submit(Record::Attest(record::Attest {
        to: bob,
        minutes: coop_model::Minutes(120),
        service: "tutoring".into(),
        category: "teaching".into(),
        date: today,
    }))?;
    say.say(format!(
        "Carol logged 120 min of tutoring for Bob ({}).",
        tutoring.short()
    ));
    wait_for(
        "Alice to receive Bob's attestation",
        &mut [&mut a, &mut b, &mut c],
        || {
            Ok(state_of(alice_dir)?
                .attestations
                .contains_key(&repair)
                .then_some(()))
        },
    )?;
    a.submit(Record::Confirm(record::Confirm {
        attestation: repair,
    }))?;
    say.say("Alice confirmed the car repair.");
    wait_for(
        "Bob to receive Carol's attestation",
        &mut [&mut a, &mut b, &mut c],
        || {
            Ok(state_of(bob_dir)?
                .attestations
                .contains_key(&tutoring)
                .then_some(()))
        },
    )?;
    b.submit(Record::Confirm(record::Confirm {
        attestation: tutoring,
    }))?;
    say.say("Bob confirmed the tutoring: 3 h earned, 2 h used, +60 min.");

    // Support Points: 10 + 5 + 8 leave 77 of 100; an 11th point on one proposal is refused.
    let mut proposals = Vec::new();
    for title in ["Community Garden", "Farmers Market", "Repair Cafe"] {
        let id = a.submit(Record::Proposal(record::Proposal {
            title: title.into(),
            description: String::new(),
        }))?;
        proposals.push((title, id));
    }
    for ((title, id), points) in proposals.iter().zip([10, 5, 8]) {
        a.submit(Record::Allocate(record::Allocate {
            proposal: *id,
            points: coop_model::Points(points),
        }))?;
        say.say(format!("Alice allocated {points} SP to {title:?}."));
    }
    let available = state_of(alice_dir)?
        .members
        .get(&alice)
        .map_or(Points(0), |m| m.sp.available);
    say.say(format!("Alice has {available} of 100 SP available."));
    ensure!(
        available == Points(77),
        "expected 77 SP available, found {available}"
    );
    match a.submit(Record::Allocate(record::Allocate {
        proposal: proposals[0].1,
        points: coop_model::Points(1),
    })) {
        Err(e) if refusal_line(&e).is_some() => {
            say.say(format!(
                "Alice tried an 11th SP on \"Community Garden\": {}",
                refusal_line(&e).unwrap_or_default()
            ));
        }
        Err(e) => return Err(e),
        Ok(id) => bail!("the 11th SP on one proposal was accepted ({})", id.short()),
    }

    // Mutual aid: Carol asks for help moving, Bob offers, both confirm.
    let request = c.submit(Record::from(record::AidRequest {
        category: "time".into(),
        title: "Help moving on Saturday".into(),
        description: "Boxes and a sofa to carry from the 3rd floor.".into(),
        urgency: Urgency::Medium,
        needed_by: None,
        location: Some("Maple Street".into()),
    }))?;
    say.say(format!(
        "Carol asked for help moving ({}).",
        request.short()
    ));
    wait_for(
        "Bob to see Carol's request",
        &mut [&mut a, &mut b, &mut c],
        || {
            Ok(state_of(bob_dir)?
                .aid_requests
                .contains_key(&request)
                .then_some(()))
        },
    )?;
    let offer = b.submit(Record::AidOffer(record::AidOffer {
        request,
        message: "I can help 2-4pm, with my van.".into(),
        availability: "Saturday 2-4pm".into(),
    }))?;
    say.say("Bob offered to help, Saturday 2-4pm.");
    wait_for(
        "Carol to see Bob's offer",
        &mut [&mut a, &mut b, &mut c],
        || {
            Ok(state_of(carol_dir)?
                .aid_requests
                .get(&request)
                .is_some_and(|r| r.offers.iter().any(|o| o.id == offer))
                .then_some(()))
        },
    )?;
    c.submit(Record::AidAccept(record::AidAccept { offer }))?;
    say.say("Carol accepted Bob's offer.");
    wait_for(
        "Bob to see the acceptance",
        &mut [&mut a, &mut b, &mut c],
        || {
            Ok(state_of(bob_dir)?
                .aid_requests
                .get(&request)
                .is_some_and(|r| r.status == AidStatus::Matched)
                .then_some(()))
        },
    )?;
    b.submit(Record::AidConfirm(record::AidConfirm {
        request,
        rating: Some(5),
        feedback: Some("Lovely neighbour, good coffee.".into()),
    }))?;
    c.submit(Record::AidConfirm(record::AidConfirm {
        request,
        rating: Some(5),
        feedback: Some("Thank you, Bob!".into()),
    }))?;
    say.say("Bob and Carol both confirmed the help was given.");

    // Convergence: the three nodes derive byte-identical state.
    let digests = wait_for(
        "the three nodes to converge",
        &mut [&mut a, &mut b, &mut c],
        || {
            let d = [
                status_of(alice_dir)?.digest,
                status_of(bob_dir)?.digest,
                status_of(carol_dir)?.digest,
            ];
            Ok((d[0] == d[1] && d[1] == d[2]).then_some(d))
        },
    )?;
    let state = state_of(alice_dir)?;
    let aid = state
        .aid_requests
        .get(&request)
        .context("the aid request is missing")?;
    ensure!(
        aid.status == AidStatus::Completed,
        "the aid request is {}, expected completed",
        aid.status.as_str()
    );
    // Each attestation is in the history of its two parties: the repair in Alice's, the
    // tutoring (Carol for Bob) in Bob's.
    let bobs = state_of(bob_dir)?;
    for (id, seen_by) in [(repair, &state), (tutoring, &bobs)] {
        ensure!(
            seen_by.attestations.get(&id).map(|a| a.status) == Some(AttestationStatus::Confirmed),
            "attestation {} is not confirmed",
            id.short()
        );
    }
    let mut alices = backend_of(alice_dir)?;
    let now = unix_now();
    let mut t = Table::new(&[
        "member",
        "balance",
        "provided",
        "received",
        "fair exchange",
        "SP available",
        "aid given/received",
    ]);
    let mut members = Vec::new();
    for (who, name) in [(alice, "Alice"), (bob, "Bob"), (carol, "Carol")] {
        let bal = alices
            .balance(&who, now)?
            .balance
            .context("a member's balance is withheld")?;
        let m = state.members.get(&who).context("member missing")?;
        let fair = match (bal.ratio_percent, bal.warning) {
            (Some(p), false) => format!("{p}% ok"),
            (Some(p), true) => format!("{p}% WARNING"),
            (None, true) => "received only: WARNING".into(),
            (None, false) => "no exchanges".into(),
        };
        t.row(vec![
            name.into(),
            show::signed_minutes(bal.minutes),
            format!("{} min", bal.provided),
            format!("{} min", bal.received),
            fair,
            format!("{} / {}", m.sp.available, m.sp.budget),
            format!("{} / {}", m.aid.given, m.aid.received),
        ]);
        members.push(json!({
            "member": who,
            "display_name": name,
            "balance_minutes": bal.minutes,
            "provided_minutes": bal.provided,
            "received_minutes": bal.received,
            "ratio_percent": bal.ratio_percent,
            "warning": bal.warning,
            "sp_budget": m.sp.budget,
            "sp_available": m.sp.available,
            "aid_given": m.aid.given,
            "aid_received": m.aid.received,
        }));
    }
    logs.armed = false;
    if ui {
        // The nodes stay up (they are dropped, and killed, when this returns).
        let mut nodes = [&mut a, &mut b, &mut c];
        app_urls(&say, &mut nodes)?;
    }
    let mut text = String::from("\n");
    text.push_str(&t.render());
    text.push_str("\nConvergence check:\n");
    for (name, d) in ["Alice", "Bob", "Carol"].iter().zip(&digests) {
        text.push_str(&format!("  {name:<6} {d}\n"));
    }
    text.push_str(&format!(
        "All three digests are equal: the nodes converged. Demo finished in {:.1} s.\n",
        started.elapsed().as_secs_f64()
    ));
    Ok(Report::new(
        json!({
            "community": community,
            "members": members,
            "digests": digests,
            "converged": true,
            "refusal": "over_proposal_cap",
        }),
        text,
    ))
}

/// `coop demo --ui`: prints each node's app URL (a one-time login link each) and waits
/// for Ctrl-C, failing if a node exits meanwhile.
fn app_urls(say: &Narrator, nodes: &mut [&mut NodeProcess]) -> Result<()> {
    say.say("\nThe three nodes keep running. Open their apps (each link logs in once):");
    for n in nodes.iter() {
        let url = coop_node::app::login_url(&n.dir)?
            .with_context(|| format!("{}'s node serves no app", n.name))?;
        say.say(format!("  {:<6} {url}", n.name));
    }
    say.say("Press Ctrl-C to stop them.");
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("cannot start a runtime")?;
    loop {
        for n in nodes.iter_mut() {
            n.alive()?;
        }
        let stop = rt.block_on(async {
            tokio::select! {
                r = tokio::signal::ctrl_c() => r.is_ok(),
                _ = tokio::time::sleep(Duration::from_secs(1)) => false,
            }
        });
        if stop {
            say.say("Stopping the three nodes.");
            return Ok(());
        }
    }
}

fn backend_of(dir: &DataDir) -> Result<Backend> {
    let b = Backend::open(dir)?;
    ensure!(
        b.is_remote(),
        "the node of {} is not serving its API socket",
        dir.root().display()
    );
    Ok(b)
}

/// What the demo checks of a node: its aid requests and members, and the attestations of
/// its member's history (family views of the local API, never the whole state).
fn state_of(dir: &DataDir) -> Result<State> {
    let mut b = backend_of(dir)?;
    let mut s = b.view(Family::Aid)?.into_state();
    s.attestations = b.view(Family::Hours)?.into_state().attestations;
    Ok(s)
}

fn status_of(dir: &DataDir) -> Result<Status> {
    Ok(backend_of(dir)?.status()?)
}

/// Prints the end of every node's log when the demo fails (dropped while armed).
#[derive(Debug)]
struct LogsOnFailure {
    logs: Vec<(&'static str, PathBuf)>,
    armed: bool,
}

impl Drop for LogsOnFailure {
    fn drop(&mut self) {
        if !self.armed {
            return;
        }
        for (name, path) in &self.logs {
            let text = std::fs::read_to_string(path).unwrap_or_default();
            let lines: Vec<&str> = text.lines().collect();
            let tail = lines[lines.len().saturating_sub(20)..].join("\n");
            eprintln!("--- the last lines of {name}'s node log ---\n{tail}");
        }
    }
}
