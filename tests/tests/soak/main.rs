//! Churn soak: five real nodes, each its own process on 127.0.0.1, write continuously while
//! a driver SIGKILLs and restarts random nodes and splits them into two sides and heals the
//! split (every link is a pair of TCP proxies the driver can cut: `links.rs`). At the end
//! every node holds every acknowledged write, all digests are equal, and `verify` passes on
//! every store. Prints its figures. `COOP_SOAK_SECS` sets the churn phase (default 45 s; CI
//! can ask for minutes).

mod links;

use std::collections::{BTreeSet, HashMap};
use std::io::{BufRead, BufReader, Write};
use std::net::TcpListener;
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::atomic::Ordering;
use std::sync::mpsc;
use std::time::{Duration, Instant};

use coop_model::RecordId;
use coop_node::{DataDir, LocalNode};
use rand::{Rng, SeedableRng};

const NODES: usize = 5;
/// Time for everything to converge after the churn stops.
const CONVERGE_DEADLINE: Duration = Duration::from_secs(180);
/// Time for a (re)started node to listen.
const START_DEADLINE: Duration = Duration::from_secs(60);

/// What a node process said, tagged with the node and its incarnation.
#[derive(Debug)]
struct Said {
    node: usize,
    incarnation: u64,
    line: String,
}

struct Proc {
    child: Child,
    stdin: Option<ChildStdin>,
    incarnation: u64,
}

/// A free port on 127.0.0.1 (bound, then released for the node to take).
fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn spawn(
    dir: &DataDir,
    port: u16,
    peers: &[String],
    node: usize,
    incarnation: u64,
    tx: &mpsc::Sender<Said>,
) -> Proc {
    let mut child = Command::new(env!("CARGO_BIN_EXE_soak_node"))
        .arg(dir.root())
        .arg(format!("/ip4/127.0.0.1/tcp/{port}"))
        .args(peers)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn soak_node");
    let stdout = child.stdout.take().unwrap();
    let tx = tx.clone();
    // Ends when the process's stdout closes (it exited or was killed).
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            if tx
                .send(Said {
                    node,
                    incarnation,
                    line,
                })
                .is_err()
            {
                break;
            }
        }
    });
    Proc {
        stdin: child.stdin.take(),
        child,
        incarnation,
    }
}

fn tell(p: &mut Proc, cmd: &str) {
    if let Some(s) = p.stdin.as_mut() {
        // A node that just died cannot listen; the driver notices by its silence.
        let _ = writeln!(s, "{cmd}").and_then(|_| s.flush());
    }
}

/// The driver's view of the nodes, updated from what they say.
#[derive(Default)]
struct View {
    acked: BTreeSet<RecordId>,
    addrs: HashMap<usize, String>,
    /// Latest (changes, pending, digest) per node, current incarnation only.
    status: HashMap<usize, (usize, usize, String)>,
    /// Set once the driver has told every node to stop writing: from then on a node's status
    /// counts only when it came after the node said `quiet`, which it says after its last
    /// write's `ack` (one pipe, in order). An earlier status could predate a late write.
    settling: bool,
    /// Nodes that said `quiet` (current incarnation).
    quiet: BTreeSet<usize>,
}

impl View {
    fn take(&mut self, s: Said, procs: &[Proc]) {
        let mut parts = s.line.split_whitespace();
        match parts.next() {
            // Acknowledged by any incarnation, even one killed since: it was durable.
            Some("ack") => {
                let id = RecordId::from_hex(parts.next().unwrap_or_default()).expect("ack id");
                self.acked.insert(id);
            }
            Some("listen") => {
                self.addrs
                    .insert(s.node, parts.next().unwrap_or_default().to_string());
            }
            Some("quiet") if procs[s.node].incarnation == s.incarnation => {
                self.status.remove(&s.node);
                self.quiet.insert(s.node);
            }
            Some("status")
                if procs[s.node].incarnation == s.incarnation
                    && (!self.settling || self.quiet.contains(&s.node)) =>
            {
                let v: Vec<&str> = parts.collect();
                if let [c, p, d] = v.as_slice() {
                    self.status.insert(
                        s.node,
                        (c.parse().unwrap(), p.parse().unwrap(), d.to_string()),
                    );
                }
            }
            _ => {}
        }
    }

    fn converged(&self, at_least: usize) -> bool {
        let all: Vec<_> = (0..NODES).filter_map(|i| self.status.get(&i)).collect();
        all.len() == NODES
            && (!self.settling || self.quiet.len() == NODES)
            && all
                .iter()
                .all(|(c, p, d)| *c >= at_least && *p == 0 && *c == all[0].0 && *d == all[0].2)
    }
}

/// Waits for node `i` (incarnation `inc`) to report its listen address.
fn wait_listening(rx: &mpsc::Receiver<Said>, view: &mut View, procs: &[Proc], i: usize) {
    let end = Instant::now() + START_DEADLINE;
    view.addrs.remove(&i);
    while !view.addrs.contains_key(&i) {
        let left = end.saturating_duration_since(Instant::now());
        assert!(!left.is_zero(), "node {i} did not start listening");
        if let Ok(s) = rx.recv_timeout(left) {
            view.take(s, procs);
        }
    }
}

fn stop(mut p: Proc) {
    drop(p.stdin.take());
    // Graceful: the node shuts down when its stdin ends; bounded, then killed.
    let end = Instant::now() + Duration::from_secs(60);
    loop {
        if p.child.try_wait().unwrap().is_some() {
            return;
        }
        if Instant::now() >= end {
            let _ = p.child.kill();
            let _ = p.child.wait();
            return;
        }
        std::thread::park_timeout(Duration::from_millis(50));
    }
}

#[test]
fn nodes_killed_at_random_lose_no_acknowledged_write_and_converge() {
    let churn = Duration::from_secs(
        std::env::var("COOP_SOAK_SECS")
            .ok()
            .and_then(|s| s.parse().ok())
            .unwrap_or(45),
    );
    let seed: u64 = rand::random();
    println!("soak seed {seed}");
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
    let root = tempfile::tempdir().unwrap();
    let c = coop_tests::community(root.path(), NODES - 1);
    let initial = LocalNode::open(&c.dirs[0]).unwrap().ledger().len();
    let ports: Vec<u16> = (0..NODES).map(|_| free_port()).collect();
    let (tx, rx) = mpsc::channel();
    let mut view = View::default();
    let links = links::Links::start(&ports);
    let mut procs: Vec<Proc> = Vec::new();
    for (i, (dir, port)) in c.dirs.iter().zip(&ports).enumerate() {
        procs.push(spawn(dir, *port, &links.peers_of(i), i, 0, &tx));
        wait_listening(&rx, &mut view, &procs, i);
    }
    for p in &mut procs {
        tell(p, "write");
    }

    let started = Instant::now();
    let mut kills = 0usize;
    let mut partitions = 0usize;
    let mut split: Option<Vec<usize>> = None;
    let mut last_restart = Instant::now();
    while started.elapsed() < churn {
        // Let the nodes write for a random while, taking in what they say meanwhile.
        let pause = Instant::now() + Duration::from_millis(rng.gen_range(500..3000));
        while let Some(left) = pause.checked_duration_since(Instant::now()) {
            if let Ok(s) = rx.recv_timeout(left) {
                view.take(s, &procs);
            }
        }
        // Half the time a node dies; otherwise the nodes split in two, or the split heals.
        if rng.gen_bool(0.5) {
            if split.take().is_some() {
                links.heal();
            } else {
                let mut side: Vec<usize> = (0..NODES).filter(|_| rng.gen_bool(0.5)).collect();
                if side.is_empty() || side.len() == NODES {
                    side = vec![rng.gen_range(0..NODES)];
                }
                links.partition(&side);
                partitions += 1;
                split = Some(side);
            }
            continue;
        }
        let i = rng.gen_range(0..NODES);
        procs[i].child.kill().expect("SIGKILL");
        procs[i].child.wait().unwrap();
        kills += 1;
        view.status.remove(&i);
        let inc = procs[i].incarnation + 1;
        procs[i] = spawn(&c.dirs[i], ports[i], &links.peers_of(i), i, inc, &tx);
        wait_listening(&rx, &mut view, &procs, i);
        tell(&mut procs[i], "write");
        last_restart = Instant::now();
    }
    links.heal();
    view.settling = true;
    for p in &mut procs {
        tell(p, "quiet");
    }
    let quiet = Instant::now();
    // Acks still in the pipes are taken in while waiting to converge: each node's last ack
    // comes before its `quiet`, and only statuses after `quiet` count.
    let end = quiet + CONVERGE_DEADLINE;
    while !view.converged(initial + view.acked.len()) {
        let left = end.saturating_duration_since(Instant::now());
        assert!(
            !left.is_zero(),
            "no convergence within {CONVERGE_DEADLINE:?} (seed {seed}): {:?}, {} acked",
            view.status,
            view.acked.len()
        );
        if let Ok(s) = rx.recv_timeout(left) {
            view.take(s, &procs);
        }
    }
    let converge_secs = quiet.elapsed().as_secs_f64();
    let since_restart = last_restart.elapsed().as_secs_f64();
    for p in procs {
        stop(p);
    }
    drop(tx);
    // Anything said before the processes ended.
    for s in rx.try_iter().collect::<Vec<_>>() {
        if s.line.starts_with("ack ") {
            view.acked
                .insert(RecordId::from_hex(&s.line[4..]).expect("ack id"));
        }
    }

    // The stores themselves, offline: every acknowledged write everywhere, one digest, verify ok.
    let mut digests = BTreeSet::new();
    for (i, dir) in c.dirs.iter().enumerate() {
        let mut node = LocalNode::open(dir).unwrap();
        let missing: Vec<String> = view
            .acked
            .iter()
            .filter(|id| !node.ledger().contains(id))
            .map(|id| id.to_hex())
            .collect();
        assert!(
            missing.is_empty(),
            "node {i} lacks {} acknowledged writes, e.g. {:?} (seed {seed})",
            missing.len(),
            &missing[..missing.len().min(3)]
        );
        let report = node.verify().unwrap();
        assert!(report.ok(), "node {i}: {report:?}");
        digests.insert(node.state().digest().expect("the state serializes"));
    }
    assert_eq!(digests.len(), 1, "one digest everywhere (seed {seed})");
    assert!(kills > 0 && !view.acked.is_empty());
    let stats = &links.stats;
    let (carried, severed, refused) = (
        stats.carried.load(Ordering::Relaxed),
        stats.severed.load(Ordering::Relaxed),
        stats.refused.load(Ordering::Relaxed),
    );
    // The nodes talked only through the proxies, and the cuts cut something.
    assert!(carried > 0, "no connection went through the link proxies");
    if partitions > 0 {
        assert!(
            severed + refused > 0,
            "{partitions} partitions severed or refused no connection"
        );
    }
    println!(
        "soak: {NODES} nodes, {:.0} s of churn, {} acknowledged writes, {kills} SIGKILLs and restarts, {partitions} partitions healed ({severed} connections severed, {refused} refused, {carried} carried); converged {converge_secs:.1} s after the writes stopped and every link healed ({since_restart:.1} s after the last restart); every store verifies, one digest",
        churn.as_secs_f64(),
        view.acked.len()
    );
}
