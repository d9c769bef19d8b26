//! mDNS discovery: two nodes with no peers configured find each other and converge, also
//! when the second starts long after the first (whose first mDNS probes are then over), and
//! when their first dials fail (mDNS reports a neighbour only once: the node must dial again).
//!
//! libp2p's mDNS ignores loopback interfaces, and the host's real interface is not ours to
//! multicast on. So the test makes two network namespaces joined by a veth pair (addresses
//! exist only inside them) and runs each node as a child process in its namespace. Where
//! namespaces cannot be created (no root, no `ip`) it is skipped, saying why — except under
//! `CI=true`, where that is a failure.

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use coop_node::{LocalNode, Status};
use coop_tests::{proposal, T0};

/// Two namespaces and a veth pair between them; removed on drop.
struct Namespaces {
    names: [String; 2],
}

fn ip(args: &[&str]) -> Result<(), String> {
    let out = Command::new("ip")
        .args(args)
        .output()
        .map_err(|e| format!("cannot run ip: {e}"))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(format!(
            "ip {}: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr).trim()
        ))
    }
}

impl Namespaces {
    /// `test` tells apart the namespaces of tests running at once in this process.
    fn create(test: char) -> Result<Namespaces, String> {
        let tag = format!("cmd{}{test}", std::process::id() % 1_000_000);
        let ns = Namespaces {
            names: [format!("{tag}a"), format!("{tag}b")],
        };
        let [a, b] = &ns.names;
        let (va, vb) = (format!("{tag}va"), format!("{tag}vb"));
        // Leftovers of a killed earlier run with the same process id.
        let _ = ip(&["netns", "del", a]);
        let _ = ip(&["netns", "del", b]);
        ip(&["netns", "add", a])?;
        ip(&["netns", "add", b])?;
        ip(&["link", "add", &va, "type", "veth", "peer", "name", &vb])?;
        ip(&["link", "set", &va, "netns", a])?;
        ip(&["link", "set", &vb, "netns", b])?;
        for (n, dev, addr) in [(a, &va, "10.77.0.1/24"), (b, &vb, "10.77.0.2/24")] {
            ip(&["-n", n, "addr", "add", addr, "dev", dev])?;
            ip(&["-n", n, "link", "set", dev, "up"])?;
            ip(&["-n", n, "link", "set", "lo", "up"])?;
            // mDNS multicasts to 224.0.0.251; without a route the send fails.
            ip(&["-n", n, "route", "add", "224.0.0.0/4", "dev", dev])?;
        }
        Ok(ns)
    }
}

impl Drop for Namespaces {
    fn drop(&mut self) {
        for n in &self.names {
            // Deleting a namespace deletes the veth end inside it.
            let _ = ip(&["netns", "del", n]);
        }
    }
}

/// A node process; stopped gracefully (stdin closed) on drop, killed if it hangs. Its
/// log (discovery, dials, connections) goes to a file, shown if the test fails.
struct NodeProc {
    child: Child,
    log: std::path::PathBuf,
}

impl NodeProc {
    fn start(ns: &str, dir: &Path, log: std::path::PathBuf) -> NodeProc {
        let file = std::fs::File::create(&log).expect("node log file");
        let child = Command::new("ip")
            .args(["netns", "exec", ns, env!("CARGO_BIN_EXE_node_proc")])
            .arg(dir)
            .env(
                "RUST_LOG",
                "coop_node=debug,libp2p_mdns=debug,libp2p_swarm=debug",
            )
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::from(file))
            .spawn()
            .expect("spawn node_proc");
        NodeProc { child, log }
    }

    /// The last lines the node logged.
    fn tail(&self) -> String {
        let text = std::fs::read_to_string(&self.log).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        lines[lines.len().saturating_sub(40)..].join("\n")
    }
}

impl Drop for NodeProc {
    fn drop(&mut self) {
        drop(self.child.stdin.take());
        let end = Instant::now() + Duration::from_secs(30);
        while Instant::now() < end {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn status(dir: &coop_node::DataDir) -> Option<Status> {
    coop_node::api::ApiClient::new(&dir.api_socket())
        .ok()?
        .with_timeout(Duration::from_secs(10))
        .get("/status")
        .ok()
}

fn peer_id_of(s: &Status) -> Option<String> {
    s.listen
        .first()
        .and_then(|a| a.rsplit("/p2p/").next())
        .map(str::to_string)
}

/// The namespaces, or `None` (skip, saying why) where they cannot be made — except under
/// `CI=true`, where a test that cannot run is a failure, never a silent skip.
fn namespaces(test: char) -> Option<Namespaces> {
    match Namespaces::create(test) {
        Ok(ns) => Some(ns),
        Err(why) if std::env::var("CI").is_ok_and(|v| v == "true") => {
            panic!("CI=true but network namespaces cannot be created here: {why}")
        }
        Err(why) => {
            println!("skipping the mDNS test: network namespaces cannot be created here ({why})");
            None
        }
    }
}

/// Whether the two nodes are connected to each other and hold the same changes.
fn linked_and_converged(sa: &Status, sb: &Status) -> bool {
    let (ida, idb) = (peer_id_of(sa), peer_id_of(sb));
    let linked = idb.is_some_and(|id| sa.peers.contains(&id))
        && ida.is_some_and(|id| sb.peers.contains(&id));
    linked && sa.digest == sb.digest && sa.changes == sb.changes
}

#[test]
fn two_nodes_find_each_other_by_mdns() {
    let Some(ns) = namespaces('x') else { return };
    let root = tempfile::tempdir().unwrap();
    let c = coop_tests::community(root.path(), 1);
    // Each writes something the other lacks.
    for (i, dir) in c.dirs.iter().enumerate() {
        let mut n = LocalNode::open(dir).unwrap();
        n.submit(proposal(&format!("offline {i}")), T0 + 100)
            .unwrap();
    }
    let a = NodeProc::start(&ns.names[0], c.dirs[0].root(), root.path().join("a.log"));
    let b = NodeProc::start(&ns.names[1], c.dirs[1].root(), root.path().join("b.log"));

    let deadline = Instant::now() + Duration::from_secs(120);
    let mut last = (None, None);
    let mut found = false;
    while Instant::now() < deadline {
        last = (status(&c.dirs[0]), status(&c.dirs[1]));
        if let (Some(sa), Some(sb)) = &last {
            if linked_and_converged(sa, sb) {
                found = true;
                break;
            }
        }
        std::thread::sleep(Duration::from_millis(250));
    }
    assert!(
        found,
        "no discovery and convergence by mDNS: {last:#?}\n--- node a ---\n{}\n--- node b ---\n{}",
        a.tail(),
        b.tail()
    );
    let (Some(sa), _) = &last else { unreachable!() };
    assert!(
        sa.listen.iter().any(|l| l.contains("/ip4/10.77.0.1/")),
        "{:?}",
        sa.listen
    );
    drop(a);
    drop(b);
    assert!(
        !c.dirs[0].api_socket().exists(),
        "graceful stop removes the socket"
    );
}

/// How long the first node runs alone: past its first mDNS probes (0.5 + 1 + 2 + 4 + 8 s),
/// so only its periodic queries, its answers and the newcomer's own probes are left.
const ALONE: Duration = Duration::from_secs(20);
/// How soon the late neighbour must be found and synced with once it starts.
const LATE_DEADLINE: Duration = Duration::from_secs(30);

#[test]
fn a_late_neighbour_is_found_within_seconds() {
    let Some(ns) = namespaces('y') else { return };
    let root = tempfile::tempdir().unwrap();
    let c = coop_tests::community(root.path(), 1);
    for (i, dir) in c.dirs.iter().enumerate() {
        let mut n = LocalNode::open(dir).unwrap();
        n.submit(proposal(&format!("offline {i}")), T0 + 100)
            .unwrap();
    }
    let a = NodeProc::start(&ns.names[0], c.dirs[0].root(), root.path().join("a.log"));
    // Alone on its LAN, the first node says mDNS is on and has found nobody, for how long.
    let deadline = Instant::now() + Duration::from_secs(120);
    let mut alone = None;
    while Instant::now() < deadline {
        alone = status(&c.dirs[0]);
        if alone
            .as_ref()
            .is_some_and(|s| s.mdns.searching_secs >= ALONE.as_secs())
        {
            break;
        }
        std::thread::sleep(Duration::from_millis(250));
    }
    let alone = alone.unwrap_or_else(|| panic!("the first node runs\n{}", a.tail()));
    assert!(alone.running && alone.mdns.on, "{alone:#?}");
    assert_eq!(
        (alone.mdns.found, alone.mdns.neighbours),
        (0, 0),
        "{alone:#?}"
    );
    assert!(alone.mdns.searching_secs >= ALONE.as_secs(), "{alone:#?}");
    assert!(alone.peers.is_empty());

    let started = Instant::now();
    let b = NodeProc::start(&ns.names[1], c.dirs[1].root(), root.path().join("b.log"));
    let mut last = (None, None);
    let mut took = None;
    while started.elapsed() < LATE_DEADLINE {
        last = (status(&c.dirs[0]), status(&c.dirs[1]));
        if let (Some(sa), Some(sb)) = &last {
            if linked_and_converged(sa, sb) {
                took = Some(started.elapsed());
                break;
            }
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    let Some(took) = took else {
        panic!(
            "the late neighbour was not found within {LATE_DEADLINE:?}: {last:#?}\n--- node a ---\n{}\n--- node b ---\n{}",
            a.tail(),
            b.tail()
        );
    };
    println!("late neighbour found and synced {took:?} after it started");
    let (_, Some(sb)) = &last else { unreachable!() };
    assert!(sb.mdns.found >= 1 && sb.mdns.on, "{sb:#?}");
    drop(b);
    drop(a);
}

/// mDNS reports a neighbour once; if the dials that follow fail, the nodes must dial again
/// by themselves. Here each namespace's route to the other's address is "unreachable"
/// (multicast has its own route, so mDNS still works), so every first dial fails at once;
/// then the routes go and the nodes must connect with nobody telling them.
#[test]
fn neighbours_whose_first_dials_failed_connect_later() {
    let Some(ns) = namespaces('z') else { return };
    for (n, other) in [(&ns.names[0], "10.77.0.2"), (&ns.names[1], "10.77.0.1")] {
        ip(&["-n", n, "route", "add", "unreachable", other]).expect("unreachable route");
    }
    let root = tempfile::tempdir().unwrap();
    let c = coop_tests::community(root.path(), 1);
    for (i, dir) in c.dirs.iter().enumerate() {
        let mut n = LocalNode::open(dir).unwrap();
        n.submit(proposal(&format!("offline {i}")), T0 + 100)
            .unwrap();
    }
    let a = NodeProc::start(&ns.names[0], c.dirs[0].root(), root.path().join("a.log"));
    let b = NodeProc::start(&ns.names[1], c.dirs[1].root(), root.path().join("b.log"));
    // Both found each other (and their dials failed: no route).
    let deadline = Instant::now() + Duration::from_secs(120);
    let mut last = (None, None);
    while Instant::now() < deadline {
        last = (status(&c.dirs[0]), status(&c.dirs[1]));
        if let (Some(sa), Some(sb)) = &last {
            if sa.mdns.found >= 1 && sb.mdns.found >= 1 {
                break;
            }
        }
        std::thread::sleep(Duration::from_millis(250));
    }
    let (Some(sa), Some(sb)) = &last else {
        panic!("nodes did not run: {last:#?}\n{}\n{}", a.tail(), b.tail())
    };
    assert!(
        sa.mdns.found >= 1 && sb.mdns.found >= 1,
        "mDNS works without unicast routes: {last:#?}\n--- node a ---\n{}\n--- node b ---\n{}",
        a.tail(),
        b.tail()
    );
    assert!(sa.peers.is_empty() && sb.peers.is_empty(), "{last:#?}");
    for (n, other) in [(&ns.names[0], "10.77.0.2"), (&ns.names[1], "10.77.0.1")] {
        ip(&["-n", n, "route", "del", "unreachable", other]).expect("route removed");
    }
    let healed = Instant::now();
    let mut took = None;
    while healed.elapsed() < Duration::from_secs(120) {
        last = (status(&c.dirs[0]), status(&c.dirs[1]));
        if let (Some(sa), Some(sb)) = &last {
            if linked_and_converged(sa, sb) {
                took = Some(healed.elapsed());
                break;
            }
        }
        std::thread::sleep(Duration::from_millis(250));
    }
    let Some(took) = took else {
        panic!(
            "no connection after the routes came back: {last:#?}\n--- node a ---\n{}\n--- node b ---\n{}",
            a.tail(),
            b.tail()
        );
    };
    println!("connected {took:?} after the routes came back");
    drop(b);
    drop(a);
}
