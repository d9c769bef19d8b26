//! Members in different homes, each behind its own NAT, sync through a `coop relay` — real
//! `coop` processes in a small internet of network namespaces the test builds itself:
//!
//! ```text
//!   home1 (Alice)           r1 (NAT)                pub (relay)               r2 (NAT)           home2 (Bob)
//!   192.168.1.2 ── veth ── 192.168.1.1 | 10.99.1.2 ── 10.99.1.1  10.99.0.1  10.99.2.1 ── 10.99.2.2 | 192.168.2.1 ── veth ── 192.168.2.2
//! ```
//! Each router masquerades (nftables) what leaves towards `pub`; `pub` routes between the
//! routers' public addresses and knows no route to either home, so Alice and Bob cannot
//! reach each other's private address — only each other's router, through a hole punch.
//!
//! Two cases: plain masquerade (hole punching works: the connection ends up direct, read
//! from the node's own connection info in its status), and `masquerade random,fully-random`
//! on Bob's router (every connection gets a random source port, which defeats hole
//! punching: they still converge, over the relay). Each prints its figures (time from
//! `coop up` to the first completed sync, direct vs relayed).
//!
//! A third case adds Carol on Alice's home LAN (namespace `h3`, 192.168.1.3, joined to
//! Alice by a bridge in `h1`, one Ethernet segment): with the relay down the whole time,
//! she finds Alice by mDNS and they converge. `restart.rs` restarts Bob's node: same port,
//! reconnected without being told.
//!
//! Where namespaces or nftables are not available it is skipped, saying why — except
//! under `CI=true`, where that is a failure. Everything it creates (namespaces, and with
//! them the veth pairs and nft tables; processes; temporary dirs) is removed on drop, also
//! when an assertion fails.
//!
//! The `coop` binary is the workspace's `target/<profile>/coop`; `cargo test --workspace`
//! builds it (alone: `cargo build -p coop-cli` first).

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

mod catch_up;
mod relay_cli;
mod restart;

use coop_node::reach_status::PeerLink;
use coop_node::{DataDir, Status};

/// Deadline for each wait (a loaded 2-core machine; DCUtR retries a few times).
const DEADLINE: Duration = Duration::from_secs(120);
const POLL: Duration = Duration::from_millis(250);

fn in_ci() -> bool {
    std::env::var("CI").is_ok_and(|v| v == "true")
}

fn run(cmd: &str, args: &[&str]) -> Result<String, String> {
    let out = Command::new(cmd)
        .args(args)
        .output()
        .map_err(|e| format!("cannot run {cmd}: {e}"))?;
    if out.status.success() {
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    } else {
        Err(format!(
            "{cmd} {}: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr).trim()
        ))
    }
}

fn ip(args: &[&str]) -> Result<(), String> {
    run("ip", args).map(drop)
}

/// The namespaces of the small internet; deleting a namespace deletes its veth ends and
/// its nft tables too. Removed on drop.
struct Internet {
    tag: String,
    names: Vec<String>,
}

impl Internet {
    fn ns(&self, which: &str) -> String {
        format!("{}{which}", self.tag)
    }

    /// Builds it; `random_nat` makes r2 masquerade with fully random source ports. `label`
    /// tells apart the internets of tests running at once.
    fn create(random_nat: bool, label: char) -> Result<Internet, String> {
        let tag = format!("cn{}{label}", std::process::id() % 100_000);
        let mut net = Internet {
            tag: tag.clone(),
            names: Vec::new(),
        };
        for n in ["pub", "r1", "r2", "h1", "h2"] {
            let name = net.ns(n);
            // Leftovers of a killed earlier run with the same process id.
            let _ = ip(&["netns", "del", &name]);
            ip(&["netns", "add", &name])?;
            net.names.push(name.clone());
            ip(&["-n", &name, "link", "set", "lo", "up"])?;
        }
        let (p, r1, r2, h1, h2) = (
            net.ns("pub"),
            net.ns("r1"),
            net.ns("r2"),
            net.ns("h1"),
            net.ns("h2"),
        );
        // (namespace a, address a, namespace b, address b, link name)
        let links = [
            (&p, "10.99.1.1/24", &r1, "10.99.1.2/24", "w1"),
            (&p, "10.99.2.1/24", &r2, "10.99.2.2/24", "w2"),
            (&r1, "192.168.1.1/24", &h1, "192.168.1.2/24", "l1"),
            (&r2, "192.168.2.1/24", &h2, "192.168.2.2/24", "l2"),
        ];
        for (a, addr_a, b, addr_b, link) in links {
            let (va, vb) = (format!("{tag}{link}a"), format!("{tag}{link}b"));
            ip(&["link", "add", &va, "type", "veth", "peer", "name", &vb])?;
            ip(&["link", "set", &va, "netns", a])?;
            ip(&["link", "set", &vb, "netns", b])?;
            ip(&["-n", a, "addr", "add", addr_a, "dev", &va])?;
            ip(&["-n", b, "addr", "add", addr_b, "dev", &vb])?;
            ip(&["-n", a, "link", "set", &va, "up"])?;
            ip(&["-n", b, "link", "set", &vb, "up"])?;
        }
        // The relay's address, on pub's loopback.
        ip(&["-n", &p, "addr", "add", "10.99.0.1/32", "dev", "lo"])?;
        for (ns, gw) in [
            (&r1, "10.99.1.1"),
            (&r2, "10.99.2.1"),
            (&h1, "192.168.1.1"),
            (&h2, "192.168.2.1"),
        ] {
            ip(&["-n", ns, "route", "add", "default", "via", gw])?;
        }
        for ns in [&p, &r1, &r2] {
            run(
                "ip",
                &[
                    "netns",
                    "exec",
                    ns,
                    "sysctl",
                    "-q",
                    "-w",
                    "net.ipv4.ip_forward=1",
                ],
            )?;
        }
        for (ns, wan, random) in [(&r1, "w1b", false), (&r2, "w2b", random_nat)] {
            let wan = format!("{tag}{wan}");
            let nft = |rule: &str| run("ip", &["netns", "exec", ns, "nft", rule]);
            nft("add table ip coopnat")?;
            nft("add chain ip coopnat post { type nat hook postrouting priority 100 ; }")?;
            nft(&format!(
                "add rule ip coopnat post oifname \"{wan}\" masquerade{}",
                if random { " random,fully-random" } else { "" }
            ))?;
            // Like a home router: what comes in unsolicited from outside is dropped
            // silently (not refused), which is what lets two SYNs cross in a hole punch.
            nft("add chain ip coopnat inbound { type filter hook input priority 0 ; }")?;
            nft(&format!(
                "add rule ip coopnat inbound iifname \"{wan}\" ct state new drop"
            ))?;
            nft("add chain ip coopnat forwarded { type filter hook forward priority 0 ; }")?;
            nft(&format!(
                "add rule ip coopnat forwarded iifname \"{wan}\" ct state new drop"
            ))?;
        }
        // Count what the relay carries (its TCP port, both directions).
        let nft = |rule: &str| run("ip", &["netns", "exec", &p, "nft", rule]);
        nft("add table ip coopnat")?;
        nft("add chain ip coopnat inbound { type filter hook input priority 0 ; }")?;
        nft("add rule ip coopnat inbound tcp dport 4001 counter")?;
        nft("add chain ip coopnat outbound { type filter hook output priority 0 ; }")?;
        nft("add rule ip coopnat outbound tcp sport 4001 counter")?;
        Ok(net)
    }

    /// Adds a second host to home 1's LAN, in namespace `h3` at 192.168.1.3: Alice's
    /// side of the home link becomes a port of a bridge in `h1` (which then holds her
    /// address), and a veth pair joins `h3` to that bridge — one Ethernet segment, as a
    /// home switch makes, so multicast (mDNS) reaches both. Returns `h3`'s namespace name.
    fn add_lan_neighbour(&mut self) -> Result<String, String> {
        let (tag, h1, h3) = (self.tag.clone(), self.ns("h1"), self.ns("h3"));
        let _ = ip(&["netns", "del", &h3]);
        ip(&["netns", "add", &h3])?;
        self.names.push(h3.clone());
        ip(&["-n", &h3, "link", "set", "lo", "up"])?;
        let (br, alice_port) = (format!("{tag}br1"), format!("{tag}l1b"));
        let (va, vb) = (format!("{tag}l3a"), format!("{tag}l3b"));
        ip(&["-n", &h1, "link", "add", &br, "type", "bridge"])?;
        ip(&[
            "-n",
            &h1,
            "addr",
            "del",
            "192.168.1.2/24",
            "dev",
            &alice_port,
        ])?;
        ip(&["-n", &h1, "link", "set", &alice_port, "master", &br])?;
        ip(&["link", "add", &va, "type", "veth", "peer", "name", &vb])?;
        ip(&["link", "set", &va, "netns", &h1])?;
        ip(&["link", "set", &vb, "netns", &h3])?;
        ip(&["-n", &h1, "link", "set", &va, "master", &br])?;
        ip(&["-n", &h1, "link", "set", &va, "up"])?;
        ip(&["-n", &h1, "addr", "add", "192.168.1.2/24", "dev", &br])?;
        ip(&["-n", &h1, "link", "set", &br, "up"])?;
        ip(&["-n", &h3, "addr", "add", "192.168.1.3/24", "dev", &vb])?;
        ip(&["-n", &h3, "link", "set", &vb, "up"])?;
        // Deleting the address took Alice's default route with it.
        for ns in [&h1, &h3] {
            ip(&[
                "-n",
                ns,
                "route",
                "replace",
                "default",
                "via",
                "192.168.1.1",
            ])?;
        }
        Ok(h3)
    }

    /// Bytes the relay received and sent on its port so far (IP packets, headers included).
    fn relay_bytes(&self) -> (u64, u64) {
        let text = run(
            "ip",
            &[
                "netns",
                "exec",
                &self.ns("pub"),
                "nft",
                "list",
                "table",
                "ip",
                "coopnat",
            ],
        )
        .unwrap_or_default();
        let counters: Vec<u64> = text
            .lines()
            .filter_map(|l| l.split("bytes ").nth(1))
            .filter_map(|b| b.split_whitespace().next()?.parse().ok())
            .collect();
        (
            counters.first().copied().unwrap_or(0),
            counters.get(1).copied().unwrap_or(0),
        )
    }
}

impl Drop for Internet {
    fn drop(&mut self) {
        for n in &self.names {
            let _ = run(
                "ip",
                &[
                    "netns", "exec", n, "nft", "delete", "table", "ip", "coopnat",
                ],
            );
            let _ = ip(&["netns", "del", n]);
        }
    }
}

/// The workspace's `coop` binary, beside this test's own directory.
pub(crate) fn coop_bin() -> PathBuf {
    let exe = std::env::current_exe().expect("test executable path");
    // target/<profile>/deps/nat-<hash>
    let bin = exe
        .parent()
        .and_then(Path::parent)
        .expect("target dir")
        .join("coop");
    assert!(
        bin.exists(),
        "{} is missing: build it first (cargo build -p coop-cli; cargo test --workspace does)",
        bin.display()
    );
    bin
}

/// Runs `coop --data-dir DIR args` to completion (outside any namespace: these commands
/// use no network) and returns its stdout.
fn coop(dir: &Path, args: &[&str]) -> String {
    let out = Command::new(coop_bin())
        .env_remove("COOP_DATA_DIR")
        .arg("--data-dir")
        .arg(dir)
        .args(args)
        .stdin(Stdio::null())
        .output()
        .expect("run coop");
    assert!(
        out.status.success(),
        "coop {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// A long-running `coop` process in a namespace, stopped with SIGTERM on drop (killed if it
/// does not stop). Its log goes to a file, shown when the test fails.
struct Proc {
    child: Child,
    log: PathBuf,
}

impl Proc {
    fn start(ns: &str, args: &[&str], log: PathBuf) -> Proc {
        let file = std::fs::File::create(&log).expect("log file");
        let child = Command::new("ip")
            .args(["netns", "exec", ns])
            .arg(coop_bin())
            .args(args)
            .env_remove("COOP_DATA_DIR")
            .env(
                "RUST_LOG",
                "info,coop_node=debug,libp2p_dcutr=debug,libp2p_relay=debug",
            )
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::from(file))
            .spawn()
            .expect("spawn coop");
        Proc { child, log }
    }

    fn tail(&self) -> String {
        let text = std::fs::read_to_string(&self.log).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        lines[lines.len().saturating_sub(60)..].join("\n")
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status();
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

fn status(dir: &DataDir) -> Option<Status> {
    coop_node::api::ApiClient::new(&dir.api_socket())
        .ok()?
        .with_timeout(Duration::from_secs(10))
        .get::<Status>("/status")
        .ok()
        .filter(|s| s.running)
}

fn peer_id_of(s: &Status) -> Option<String> {
    s.listen
        .first()
        .and_then(|a| a.rsplit("/p2p/").next())
        .map(str::to_string)
}

/// How `s` is connected to `peer`, when it is.
fn link<'a>(s: &'a Status, peer: &str) -> Option<&'a PeerLink> {
    s.reach
        .as_ref()?
        .connections
        .iter()
        .find(|l| l.peer == peer)
}

/// Builds the internet, or says why it cannot (a skip, or a failure under CI).
fn internet(random_nat: bool, label: char) -> Option<Internet> {
    setup_or_skip(Internet::create(random_nat, label))
}

/// `made`, or `None` after printing why it could not be made (a failure under CI).
fn setup_or_skip<T>(made: Result<T, String>) -> Option<T> {
    match made {
        Ok(net) => Some(net),
        Err(why) if in_ci() => {
            panic!("CI=true but the NAT namespaces cannot be created here: {why}")
        }
        Err(why) => {
            println!("skipping the NAT test: network namespaces with nftables NAT cannot be created here ({why})");
            None
        }
    }
}

/// Starts `coop relay` for the community of invite `code` in `pub`, and returns it, its
/// stdout (kept open while the relay runs: it prints a last line when it stops) and the
/// address it printed.
fn start_relay(
    net: &Internet,
    relay_dir: &Path,
    code: &str,
    logs: &Path,
) -> (Proc, BufReader<std::process::ChildStdout>, String) {
    let mut relay = Proc::start(
        &net.ns("pub"),
        &[
            "--json",
            "relay",
            "--invite",
            code,
            "--listen",
            "/ip4/10.99.0.1/tcp/4001",
            "--data-dir",
            relay_dir.to_str().unwrap(),
        ],
        logs.join("relay.log"),
    );
    let mut first = String::new();
    let mut relay_out = BufReader::new(relay.child.stdout.take().unwrap());
    relay_out.read_line(&mut first).unwrap();
    let printed: serde_json::Value = serde_json::from_str(first.trim()).unwrap_or_else(|e| {
        panic!(
            "relay printed {first:?} ({e})\n--- relay ---\n{}",
            relay.tail()
        )
    });
    let relay_addr = printed["addresses"][0]
        .as_str()
        .expect("a relay address")
        .to_string();
    assert!(
        relay_addr.starts_with("/ip4/10.99.0.1/tcp/4001/p2p/"),
        "{relay_addr}"
    );
    (relay, relay_out, relay_addr)
}

/// What one case measured.
struct Figures {
    first_sync: Duration,
    via_at_sync: String,
    direct_after: Option<Duration>,
}

/// Alice (home 1) founds, Bob (home 2) joins from her invite; both run `coop up` with only
/// `--relay`. Waits until they converge; with `want_direct`, also until their connection
/// is direct.
fn alice_and_bob(net: &Internet, want_direct: bool) -> Figures {
    let root = tempfile::tempdir().unwrap();
    let (alice, bob, relay_dir) = (
        root.path().join("alice"),
        root.path().join("bob"),
        root.path().join("relay"),
    );
    coop(&alice, &["init", "--name", "Alice"]);
    coop(&alice, &["found", "--community", "Hill Street Co-op"]);
    // Something Bob can only get by catch-up sync.
    coop(
        &alice,
        &[
            "proposal",
            "open",
            "--title",
            "Tool library",
            "--description",
            "Shared tools",
        ],
    );
    let invite: serde_json::Value =
        serde_json::from_str(&coop(&alice, &["--json", "invite"])).unwrap();
    let code = invite["code"].as_str().expect("invite code").to_string();
    coop(&bob, &["init", "--name", "Bob"]);
    coop(&bob, &["join", &code]);

    let (relay, relay_out, relay_addr) = start_relay(net, &relay_dir, &code, root.path());

    let up = |dir: &Path, ns: &str, name: &str| {
        Proc::start(
            &net.ns(ns),
            &[
                "--data-dir",
                dir.to_str().unwrap(),
                "up",
                "--listen",
                "/ip4/0.0.0.0/tcp/0",
                "--relay",
                &relay_addr,
                "--no-mdns",
                "--no-ui",
                "--sync-interval",
                "2",
            ],
            root.path().join(format!("{name}.log")),
        )
    };
    let started = Instant::now();
    let a = up(&alice, "h1", "alice");
    let b = up(&bob, "h2", "bob");
    let (da, db) = (DataDir::new(&alice), DataDir::new(&bob));
    let logs = |a: &Proc, b: &Proc, relay: &Proc| {
        format!(
            "--- alice ---\n{}\n--- bob ---\n{}\n--- relay ---\n{}",
            a.tail(),
            b.tail(),
            relay.tail()
        )
    };

    // Converged: same changes, same digest, with the genesis (Bob had none).
    let mut last = (None, None);
    let mut converged = None;
    while started.elapsed() < DEADLINE {
        last = (status(&da), status(&db));
        if let (Some(sa), Some(sb)) = &last {
            if sa.digest == sb.digest && sa.changes == sb.changes && !sb.community_name.is_empty() {
                let idb = peer_id_of(sb).unwrap_or_default();
                let via = link(sa, &idb).map(|l| l.via.clone()).unwrap_or_default();
                converged = Some((started.elapsed(), via));
                break;
            }
        }
        std::thread::sleep(POLL);
    }
    let Some((first_sync, via_at_sync)) = converged else {
        panic!(
            "Alice and Bob did not converge through the relay: {last:#?}\n{}",
            logs(&a, &b, &relay)
        );
    };
    let (Some(sa), Some(sb)) = &last else {
        unreachable!()
    };
    // No private address of the other side was ever known: they found each other at the
    // rendezvous point.
    let (ida, idb) = (peer_id_of(sa).unwrap(), peer_id_of(sb).unwrap());
    assert!(
        link(sa, &idb).is_some() && link(sb, &ida).is_some(),
        "{last:#?}"
    );
    for s in [sa, sb] {
        let reach = s.reach.as_ref().unwrap();
        assert!(
            reach.relays.len() == 1 && reach.relays[0].reserved,
            "a reservation on the relay: {reach:#?}"
        );
    }

    let punches = |s: &Option<Status>| {
        s.as_ref()
            .and_then(|s| s.reach.as_ref())
            .map(|r| (r.hole_punches, r.hole_punch_failures))
            .unwrap_or_default()
    };
    let mut direct_after = None;
    if !want_direct {
        // Wait until DCUtR has tried and given up, then the connection is still relayed and
        // still carries the sync.
        let mut gave_up = false;
        while started.elapsed() < first_sync + DEADLINE {
            let (sa, sb) = (status(&da), status(&db));
            if punches(&sa).1 + punches(&sb).1 > 0 {
                gave_up = true;
                break;
            }
            std::thread::sleep(POLL);
        }
        let (sa, sb) = (status(&da), status(&db));
        assert!(
            gave_up,
            "no hole punch was tried: {:#?}\n{}",
            (&sa, &sb),
            logs(&a, &b, &relay)
        );
        assert_eq!(
            punches(&sa).0 + punches(&sb).0,
            0,
            "no hole punch can succeed"
        );
        let (sa, sb) = (sa.unwrap(), sb.unwrap());
        assert_eq!(
            link(&sa, &idb).map(|l| l.via.as_str()),
            Some(PeerLink::RELAYED)
        );
        assert_eq!(sa.digest, sb.digest);
    }
    if want_direct {
        while started.elapsed() < first_sync + DEADLINE {
            let (sa, sb) = (status(&da), status(&db));
            let direct = |s: &Option<Status>, id: &str| {
                s.as_ref()
                    .and_then(|s| link(s, id))
                    .is_some_and(PeerLink::is_direct)
            };
            if direct(&sa, &idb) && direct(&sb, &ida) {
                direct_after = Some(started.elapsed());
                break;
            }
            std::thread::sleep(POLL);
        }
        let (sa, sb) = (status(&da), status(&db));
        assert!(
            direct_after.is_some() && punches(&sa).0 + punches(&sb).0 > 0,
            "the relayed connection was not upgraded to a direct one (DCUtR): {:#?}\n{}",
            (sa, sb),
            logs(&a, &b, &relay)
        );
        // What a person reads: `coop status` names the link and the reservation.
        let text = coop(&alice, &["status"]);
        assert!(
            text.contains(&format!("link        {idb} direct")),
            "{text}"
        );
        assert!(
            text.contains(&format!("relay       {relay_addr} (reservation held)")),
            "{text}"
        );
    }
    drop((a, b));
    drop(relay);
    drop(relay_out);
    Figures {
        first_sync,
        via_at_sync,
        direct_after,
    }
}

#[test]
fn members_behind_two_nats_converge_and_end_up_directly_connected() {
    let Some(net) = internet(false, 'd') else {
        return;
    };
    let f = alice_and_bob(&net, true);
    println!(
        "nat (masquerade): first completed sync {:.1} s after coop up (connection then {}); direct (DCUtR) after {:.1} s",
        f.first_sync.as_secs_f64(),
        f.via_at_sync,
        f.direct_after.unwrap().as_secs_f64()
    );
}

#[test]
fn members_behind_a_hole_punch_defeating_nat_converge_over_the_relay() {
    let Some(net) = internet(true, 'r') else {
        return;
    };
    let f = alice_and_bob(&net, false);
    assert_eq!(
        f.via_at_sync,
        PeerLink::RELAYED,
        "fully random source ports defeat hole punching; the sync ran over the relay"
    );
    println!(
        "nat (fully random ports on one side): first completed sync {:.1} s after coop up, relayed",
        f.first_sync.as_secs_f64()
    );
}

/// `coop up` as a member runs it at home: the community's relay, mDNS on, no `--peer`.
fn up_at_home(net_ns: &str, dir: &Path, relay_addr: &str, log: PathBuf) -> Proc {
    Proc::start(
        net_ns,
        &[
            "--data-dir",
            dir.to_str().unwrap(),
            "up",
            "--listen",
            "/ip4/0.0.0.0/tcp/0",
            "--relay",
            relay_addr,
            "--no-ui",
            "--sync-interval",
            "2",
        ],
        log,
    )
}

#[test]
fn a_neighbour_on_the_home_lan_finds_alice_by_mdns_while_the_relay_is_down() {
    let Some(mut net) = internet(false, 'm') else {
        return;
    };
    let Some(h3) = setup_or_skip(net.add_lan_neighbour()) else {
        return;
    };
    let root = tempfile::tempdir().unwrap();
    let (alice, carol, relay_dir) = (
        root.path().join("alice"),
        root.path().join("carol"),
        root.path().join("relay"),
    );
    coop(&alice, &["init", "--name", "Alice"]);
    coop(&alice, &["found", "--community", "Hill Street Co-op"]);
    // Something Carol can only get by catch-up sync from Alice.
    coop(
        &alice,
        &[
            "proposal",
            "open",
            "--title",
            "Tool library",
            "--description",
            "Shared tools",
        ],
    );
    let invite: serde_json::Value =
        serde_json::from_str(&coop(&alice, &["--json", "invite"])).unwrap();
    let code = invite["code"].as_str().expect("invite code").to_string();
    coop(&carol, &["init", "--name", "Carol"]);
    coop(&carol, &["join", &code]);

    // The relay ran once, so both know its address — and is stopped (waited for) before
    // either node starts: the whole time they run, it is down.
    let (relay, relay_out, relay_addr) = start_relay(&net, &relay_dir, &code, root.path());
    drop(relay);
    drop(relay_out);

    let started = Instant::now();
    let a = up_at_home(
        &net.ns("h1"),
        &alice,
        &relay_addr,
        root.path().join("alice.log"),
    );
    let c = up_at_home(&h3, &carol, &relay_addr, root.path().join("carol.log"));
    let (da, dc) = (DataDir::new(&alice), DataDir::new(&carol));
    let mut last = (None, None);
    let mut found_after = None;
    while started.elapsed() < DEADLINE {
        last = (status(&da), status(&dc));
        if let (Some(sa), Some(sc)) = &last {
            let (ida, idc) = (peer_id_of(sa), peer_id_of(sc));
            let linked = idc.is_some_and(|id| sa.peers.contains(&id))
                && ida.is_some_and(|id| sc.peers.contains(&id));
            // Each finds the other by mDNS in its own time (the one that started first
            // sees the other at its next query, within MDNS_QUERY_INTERVAL), which may be
            // after they are already linked by the other's dial: waited for, not assumed.
            let both_found = sa.mdns.found >= 1 && sc.mdns.found >= 1;
            if linked
                && both_found
                && sa.digest == sc.digest
                && sa.changes == sc.changes
                && !sc.community_name.is_empty()
            {
                found_after = Some(started.elapsed());
                break;
            }
        }
        std::thread::sleep(POLL);
    }
    let Some(found_after) = found_after else {
        panic!(
            "Carol did not find Alice on their LAN with the relay down: {last:#?}\n--- alice ---\n{}\n--- carol ---\n{}",
            a.tail(),
            c.tail()
        );
    };
    let (Some(sa), Some(sc)) = &last else {
        unreachable!()
    };
    // Found by mDNS (neither had the other's address), directly on the LAN, and the relay
    // gave neither of them anything: no reservation was ever held.
    assert!(sa.mdns.on && sc.mdns.on, "{last:#?}");
    assert!(sc.mdns.found >= 1 && sa.mdns.found >= 1, "{last:#?}");
    let idc = peer_id_of(sc).unwrap();
    assert!(
        link(sa, &idc).is_some_and(PeerLink::is_direct),
        "a direct LAN connection: {last:#?}"
    );
    assert!(
        sc.listen.iter().any(|l| l.contains("/ip4/192.168.1.3/")),
        "{:?}",
        sc.listen
    );
    for s in [sa, sc] {
        let reach = s.reach.as_ref().expect("reach status");
        assert!(
            reach.relays.iter().all(|r| !r.reserved),
            "the relay is down, yet a reservation: {reach:#?}"
        );
    }
    println!(
        "nat (relay down): Carol found Alice by mDNS on their home LAN and converged {:.1} s after coop up",
        found_after.as_secs_f64()
    );
}
