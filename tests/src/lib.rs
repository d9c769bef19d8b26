//! Helpers for coop's multi-node integration tests: communities set up on disk, real nodes
//! on 127.0.0.1, polling with deadlines, and a hostile peer that speaks the real protocols.

pub mod bench;
pub mod hostile;

use coop_model::record;
use std::future::Future;
use std::path::Path;
use std::time::{Duration, Instant};

use coop_model::{CommunityId, Envelope, Ledger, MemberId, Params, Record, RecordId};
use coop_node::run::{start, NodeHandle, RunOptions};
use coop_node::{DataDir, LocalNode, NodeError, Status};

/// Generous deadline for conditions on a loaded 2-core machine.
pub const DEADLINE: Duration = Duration::from_secs(120);
/// How often a condition is polled.
pub const POLL: Duration = Duration::from_millis(200);
/// Anti-entropy interval used by test nodes.
pub const TEST_SYNC_INTERVAL: Duration = Duration::from_secs(2);

/// A fixed "now" for records written offline.
pub const T0: i64 = 1_750_000_000;

/// Fresh 32 random bytes (key seeds).
pub fn seed() -> [u8; 32] {
    rand::random()
}

/// A community on disk: the founder and `members` admitted members, every data dir
/// holding the same log.
#[derive(Debug)]
pub struct Community {
    /// The community id.
    pub id: CommunityId,
    /// Data dirs: the founder first.
    pub dirs: Vec<DataDir>,
    /// Member ids, in the order of `dirs`.
    pub members: Vec<MemberId>,
}

/// Creates a data dir under `root` named `name`.
pub fn init_dir(root: &Path, name: &str) -> DataDir {
    let dir = DataDir::new(root.join(name));
    dir.init(name, seed(), seed()).expect("init data dir");
    dir
}

/// Founds a community in `root/founder` and admits `members` more members, all holding
/// the same log when this returns.
pub fn community(root: &Path, members: usize) -> Community {
    community_with(root, members, None)
}

/// As [`community`], with an optional LAN key (hex).
pub fn community_with(root: &Path, members: usize, psk: Option<String>) -> Community {
    let founder_dir = init_dir(root, "founder");
    let mut founder =
        LocalNode::found(&founder_dir, "Test Co-op", Params::default(), T0).expect("found");
    if psk.is_some() {
        let mut c = founder_dir.config().expect("config");
        c.psk = psk.clone();
        founder_dir.save_config(&c).expect("save config");
    }
    let id = founder.community();
    let mut dirs = vec![founder_dir];
    let mut ids = vec![founder.member()];
    for i in 0..members {
        let dir = init_dir(root, &format!("member{i}"));
        let (node, _) = LocalNode::join(&dir, id, psk.clone(), Vec::new(), T0 + 1).expect("join");
        ids.push(node.member());
        let _ = founder.ingest(node.export()).expect("founder ingests join");
        founder
            .submit(
                Record::Vouch(record::Vouch {
                    member: node.member(),
                }),
                T0 + 2,
            )
            .expect("vouch");
        dirs.push(dir);
    }
    let log = founder.export();
    drop(founder);
    for dir in &dirs[1..] {
        let mut n = LocalNode::open(dir).expect("open member");
        let _ = n.ingest(log.clone()).expect("member ingests log");
    }
    Community {
        id,
        dirs,
        members: ids,
    }
}

/// A data dir that joined `community` (only its join request in its log).
pub fn joiner(root: &Path, name: &str, community: CommunityId) -> DataDir {
    let dir = init_dir(root, name);
    LocalNode::join(&dir, community, None, Vec::new(), T0 + 1).expect("join");
    dir
}

/// Appends `n` proposals by the data dir's own device, built in memory and written with one
/// ingest call. Returns the new number of changes.
pub fn bulk_proposals(dir: &DataDir, n: usize) -> usize {
    let mut node = LocalNode::open(dir).expect("open");
    let mut ledger = Ledger::new(node.community());
    let out = ledger.ingest(node.export());
    assert!(out.rejected.is_empty(), "own log re-verifies");
    let key = dir.device().expect("device key");
    let mut envelopes: Vec<Envelope> = Vec::with_capacity(n);
    for i in 0..n {
        let env = ledger
            .author(
                &key,
                Record::Proposal(record::Proposal {
                    title: format!("bulk proposal {i}"),
                    description: format!("generated for the catch-up test, number {i}"),
                }),
                T0 + 10 + i as i64,
            )
            .expect("author");
        envelopes.push(env);
    }
    let out = node.ingest(envelopes).expect("ingest");
    assert_eq!(out.accepted.len(), n, "every generated change is accepted");
    node.ledger().len()
}

/// Options of a test node: 127.0.0.1 only, no mDNS, quick anti-entropy.
pub fn test_options(peers: Vec<String>) -> RunOptions {
    RunOptions {
        listen: vec!["/ip4/127.0.0.1/tcp/0".into()],
        peers,
        mdns: false,
        sync_interval: TEST_SYNC_INTERVAL,
        ui: false,
        ui_port: None,
        ..RunOptions::default()
    }
}

/// Starts a node on 127.0.0.1 that dials `peers`.
pub async fn start_node(dir: &DataDir, peers: Vec<String>) -> NodeHandle {
    start(dir.clone(), test_options(peers))
        .await
        .expect("start node")
}

/// The first listen address of a node.
pub fn addr(node: &NodeHandle) -> String {
    node.listen_addrs()
        .into_iter()
        .next()
        .expect("a started node listens")
}

/// A proposal record.
pub fn proposal(title: &str) -> Record {
    Record::Proposal(record::Proposal {
        title: title.to_string(),
        description: format!("a test proposal called {title}"),
    })
}

/// Polls `check` every [`POLL`] until it returns `true` or `deadline` passes. Returns
/// whether it held.
pub async fn wait_until<F, Fut>(deadline: Duration, mut check: F) -> bool
where
    F: FnMut() -> Fut,
    Fut: Future<Output = bool>,
{
    let end = Instant::now() + deadline;
    loop {
        if check().await {
            return true;
        }
        if Instant::now() >= end {
            return false;
        }
        tokio::time::sleep(POLL).await;
    }
}

/// Statuses of some nodes.
pub async fn statuses(nodes: &[NodeHandle]) -> Result<Vec<Status>, NodeError> {
    let mut out = Vec::with_capacity(nodes.len());
    for n in nodes {
        out.push(n.status().await?);
    }
    Ok(out)
}

/// Whether all nodes hold `changes` changes and agree on digest and heads.
pub async fn converged(nodes: &[NodeHandle], changes: usize) -> bool {
    let Ok(s) = statuses(nodes).await else {
        return false;
    };
    s.iter().all(|x| {
        x.changes == changes && x.digest == s[0].digest && x.heads == s[0].heads && x.pending == 0
    })
}

/// A one-line picture of some nodes, for assertion messages.
pub async fn describe(nodes: &[NodeHandle]) -> String {
    match statuses(nodes).await {
        Ok(s) => s
            .iter()
            .map(|x| {
                format!(
                    "[{} changes={} pending={} peers={} digest={}]",
                    x.display_name,
                    x.changes,
                    x.pending,
                    x.peers.len(),
                    &x.digest[..x.digest.len().min(12)]
                )
            })
            .collect::<Vec<_>>()
            .join(" "),
        Err(e) => format!("status failed: {e}"),
    }
}

/// Whether a node holds a record.
pub async fn holds(node: &NodeHandle, id: &RecordId) -> bool {
    match node.state().await {
        Ok(s) => s.log.iter().any(|e| e.id == *id),
        Err(_) => false,
    }
}

/// Installs a log subscriber for a test (filtered by `RUST_LOG`; silent by default).
pub fn init_tracing() {
    let _ = tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
        .with_test_writer()
        .try_init();
}
