//! Measurements in a child process (the bench binary re-executed with a hidden
//! subcommand), so that peak RSS (`VmHWM`) belongs to one task alone: a cold start of a
//! node's store, a running node, a bare Automerge document loaded from `save()` bytes, and
//! an idle process for the floor every process pays.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

use automerge::{Automerge, ReadDoc};
use coop_model::MemberId;
use coop_node::{DataDir, LocalNode};
use serde::{Deserialize, Serialize};

use super::BenchError;

/// What a child measures.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Task {
    /// Nothing: the RSS floor of the bench binary.
    Idle,
    /// `LocalNode::open` of a data dir, then one member's balance.
    ColdStart {
        /// The data dir.
        dir: PathBuf,
        /// The member whose balance is asked.
        member: MemberId,
        /// "Now" for the balance query.
        now: i64,
    },
    /// A running node (`run::start`) on the data dir, until its status answers.
    Node {
        /// The data dir.
        dir: PathBuf,
    },
    /// `Automerge::load` of a file of `save()` bytes.
    AutomergeLoad {
        /// The file.
        file: PathBuf,
    },
    /// `LocalNode::open` (as it ships, through `LocalNode::open_observed`), with the RSS
    /// after each of its steps.
    Stages {
        /// The data dir.
        dir: PathBuf,
    },
}

impl Task {
    /// The command-line arguments that ask a child for this task.
    pub fn args(&self) -> Vec<String> {
        let path = |p: &Path| p.display().to_string();
        match self {
            Task::Idle => vec!["idle".into()],
            Task::ColdStart { dir, member, now } => vec![
                "cold-start".into(),
                path(dir),
                member.to_hex(),
                now.to_string(),
            ],
            Task::Node { dir } => vec!["node".into(), path(dir)],
            Task::AutomergeLoad { file } => vec!["automerge-load".into(), path(file)],
            Task::Stages { dir } => vec!["stages".into(), path(dir)],
        }
    }

    /// Parses [`Task::args`].
    pub fn parse(args: &[String]) -> Result<Task, BenchError> {
        let bad = || BenchError::new(format!("bad child task {args:?}"));
        let arg = |i: usize| args.get(i).ok_or_else(bad);
        Ok(match arg(0)?.as_str() {
            "idle" => Task::Idle,
            "cold-start" => Task::ColdStart {
                dir: PathBuf::from(arg(1)?),
                member: MemberId::from_hex(arg(2)?).map_err(|_| bad())?,
                now: arg(3)?.parse().map_err(|_| bad())?,
            },
            "node" => Task::Node {
                dir: PathBuf::from(arg(1)?),
            },
            "automerge-load" => Task::AutomergeLoad {
                file: PathBuf::from(arg(1)?),
            },
            "stages" => Task::Stages {
                dir: PathBuf::from(arg(1)?),
            },
            _ => return Err(bad()),
        })
    }
}

/// What a child reports (one JSON line on stdout).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct ChildReport {
    /// Seconds the measured work took.
    pub secs: f64,
    /// Peak resident set (`VmHWM`), KiB.
    pub peak_rss_kb: u64,
    /// Resident set at the end (`VmRSS`), KiB.
    pub rss_kb: u64,
    /// Changes held (cold start, node).
    pub changes: usize,
    /// The balance answered (cold start), minutes.
    pub balance_minutes: Option<i64>,
    /// RSS after each step (stages), KiB.
    #[serde(default)]
    pub stages: Vec<(String, u64)>,
}

/// Runs `task` in a child process of `exe` (the bench binary) and reads its report.
pub fn run(exe: &Path, task: &Task) -> Result<ChildReport, BenchError> {
    let out = Command::new(exe)
        .arg(CHILD_SUBCOMMAND)
        .args(task.args())
        .output()
        .map_err(|e| BenchError::new(format!("running {}: {e}", exe.display())))?;
    if !out.status.success() {
        return Err(BenchError::new(format!(
            "child {:?} failed ({}): {}",
            task.args(),
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        )));
    }
    let stdout = String::from_utf8_lossy(&out.stdout);
    let line = stdout
        .lines()
        .last()
        .ok_or_else(|| BenchError::new("the child printed nothing"))?;
    serde_json::from_str(line)
        .map_err(|e| BenchError::new(format!("the child's report {line:?}: {e}")))
}

/// The hidden subcommand that runs a child task.
pub const CHILD_SUBCOMMAND: &str = "__child";

/// Performs `task` in this (child) process and returns its report.
pub fn serve(task: &Task) -> Result<ChildReport, BenchError> {
    let mut report = ChildReport::default();
    match task {
        Task::Idle => {}
        Task::ColdStart { dir, member, now } => {
            let t = Instant::now();
            let mut node = LocalNode::open(&DataDir::new(dir))?;
            let balance = node.state().balance(member, *now);
            report.secs = t.elapsed().as_secs_f64();
            report.changes = node.ledger().len();
            report.balance_minutes = balance.map(|b| b.minutes.0);
        }
        Task::Node { dir } => {
            let rt = tokio::runtime::Builder::new_multi_thread()
                .enable_all()
                .build()?;
            let dir = DataDir::new(dir);
            report = rt.block_on(async move {
                let t = Instant::now();
                let node = coop_node::run::start(dir, super::net::options(Vec::new())).await?;
                let status = node.status().await?;
                let secs = t.elapsed().as_secs_f64();
                let (peak, rss) = rss_kb();
                node.shutdown().await?;
                Ok::<_, BenchError>(ChildReport {
                    secs,
                    peak_rss_kb: peak,
                    rss_kb: rss,
                    changes: status.changes,
                    ..ChildReport::default()
                })
            })?;
            return Ok(report);
        }
        Task::AutomergeLoad { file } => {
            let bytes = std::fs::read(file)?;
            let t = Instant::now();
            let doc = Automerge::load(&bytes)
                .map_err(|e| BenchError::new(format!("loading {}: {e}", file.display())))?;
            report.secs = t.elapsed().as_secs_f64();
            drop(bytes);
            // One record map per change at the root (cheap to count, allocates nothing).
            report.changes = doc.length(automerge::ROOT);
        }
        Task::Stages { dir } => {
            // The shipped open (`LocalNode::open`), with the RSS after each of its steps.
            let mut stages = vec![("process".to_string(), rss_kb().1)];
            let mut node = LocalNode::open_observed(&DataDir::new(dir), &mut |step| {
                stages.push((step.to_string(), rss_kb().1));
            })?;
            let _ = node.state();
            stages.push(("derived state brought up to date".into(), rss_kb().1));
            report.changes = node.ledger().len();
            report.stages = stages;
        }
    }
    let (peak, rss) = rss_kb();
    report.peak_rss_kb = peak;
    report.rss_kb = rss;
    Ok(report)
}

/// `VmHWM` and `VmRSS` of this process, KiB (0 where /proc is unavailable).
pub fn rss_kb() -> (u64, u64) {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let field = |name: &str| {
        status
            .lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|v| v.split_whitespace().next())
            .and_then(|v| v.parse().ok())
            .unwrap_or(0)
    };
    (field("VmHWM:"), field("VmRSS:"))
}
