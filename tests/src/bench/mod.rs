//! The benchmark harness behind `coop-bench` (issue 5): how fast a newcomer catches up,
//! how fast a busy community's ledger is verified and derived, how much memory a node
//! takes — each figure measured beside the raw cost of the parts coop is made of
//! (ed25519, Automerge) in the same run, so that it reads as a ratio that holds on any
//! machine.
//!
//! - [`rng`]: SplitMix64, the seeded PRNG of the generator.
//! - [`community`]: the synthetic community, written with `Ledger::author`.
//! - [`core`]: in-memory figures (ingest, derivation, incremental update).
//! - [`amsync`]: the catch-up's reference rows (Automerge's own sync protocol).
//! - [`samod`]: the catch-up's peer row (two samod repos over loopback TCP).
//! - [`net`]: libp2p figures on 127.0.0.1 (catch-up sync, propagation).
//! - [`proxy`]: the counting TCP proxy of the catch-up figure.
//! - [`child`]: measurements in a child process (cold start, peak RSS).
//! - [`api`]: the local API of a running node (reads and sequential writes).
//! - [`report`]: the report, its targets and its table.
//!
//! [`run`] measures everything for a [`Config`]; the binary and the smoke test
//! (`tests/tests/bench_smoke/main.rs`) are thin shells around it.

pub mod amsync;
pub mod api;
pub mod child;
pub mod community;
pub mod core;
pub mod net;
pub mod proxy;
pub mod report;
pub mod rng;
pub mod samod;

use std::fmt;
use std::path::PathBuf;
use std::time::Instant;

use coop_node::NodeError;

pub use report::Report;

/// What to measure, and how hard.
#[derive(Debug, Clone)]
pub struct Config {
    /// `quick`, `full` or `tiny` (the smoke test).
    pub mode: String,
    /// Seed of the synthetic community.
    pub seed: u64,
    /// Members of the community (founder included).
    pub members: usize,
    /// Ledger sizes of the in-memory figures, ascending.
    pub sizes: Vec<usize>,
    /// Runs per in-memory figure for sizes up to [`Config::small`] changes (best taken).
    pub reps_small: usize,
    /// Runs for sizes up to [`Config::large`] (larger sizes run once).
    pub reps_large: usize,
    /// Sizes up to this many changes are "small".
    pub small: usize,
    /// Sizes up to this many changes are "large"; beyond, "huge" (one run).
    pub large: usize,
    /// Changes measured one by one for the incremental figure.
    pub samples: usize,
    /// Ledger size of the node figures (catch-up, cold start, memory); one of `sizes`.
    pub node_size: usize,
    /// Nodes of the propagation figure.
    pub propagation_nodes: usize,
    /// Ledger size each propagating node holds; at most `node_size`.
    pub propagation_size: usize,
    /// Records measured by the propagation figure.
    pub propagation_records: usize,
    /// Records sent first, not measured (gossip mesh warm-up).
    pub propagation_warmup: usize,
    /// Signature-verification threads for ingest.
    pub verify_threads: usize,
    /// The bench binary, re-executed for child-process measurements.
    pub exe: PathBuf,
    /// Where data dirs go (a temporary directory inside it); the system's by default.
    pub workdir: Option<PathBuf>,
    /// Skip the node figures (catch-up, propagation, cold start, memory, API).
    pub in_memory_only: bool,
    /// Only the catch-up figure (after the in-memory figures, which give the document it
    /// is compared with): for profiling the sync. Skips cold start, memory, propagation
    /// and the API.
    pub catch_up_only: bool,
    /// Ledger sizes of the API figure (reads through a running node), ascending; the
    /// targets compare the largest with the smallest.
    pub api_sizes: Vec<usize>,
    /// Requests per read of the API figure.
    pub api_samples: usize,
    /// Sequential writes of the API figure at each size (at the least).
    pub api_writes: usize,
    /// Whether the API figure's writes run past one document batch of the node
    /// (`coop_model::ledger::doc_batch_for`: at 100k, about 6,300 writes), so that their
    /// slowest write includes the one a batch lands on.
    pub api_writes_past_batch: bool,
    /// Only the API figure (after generating the community): for measuring the API.
    pub api_only: bool,
    /// Only generate the community (and time its authoring): for profiling the generator.
    /// The large node is measured too when [`Config::large_node`] asks for one.
    pub generate_only: bool,
    /// Size of the large node whose cold start is measured (open + `balance` in a child,
    /// peak RSS against 4 GiB); `None` skips it. Full mode: 1M.
    pub large_node: Option<usize>,
    /// Keep the large node's data dir here (a new directory) instead of a temporary one,
    /// for profiling its open directly (`coop-bench __child cold-start DIR MEMBER NOW`).
    pub keep_node: Option<PathBuf>,
}

impl Config {
    /// `--quick`: 10k and 100k changes; under 3 minutes on 2 cores.
    pub fn quick(exe: PathBuf) -> Config {
        Config {
            mode: "quick".into(),
            seed: 1,
            members: 150,
            sizes: vec![10_000, 100_000],
            reps_small: 3,
            reps_large: 1,
            small: 20_000,
            large: 200_000,
            samples: 200,
            node_size: 100_000,
            propagation_nodes: 5,
            propagation_size: 10_000,
            propagation_records: 60,
            propagation_warmup: 5,
            verify_threads: parallelism(),
            exe,
            workdir: None,
            in_memory_only: false,
            catch_up_only: false,
            api_sizes: vec![1_000, 100_000],
            api_samples: 50,
            api_writes: 200,
            api_writes_past_batch: true,
            api_only: false,
            generate_only: false,
            large_node: None,
            keep_node: None,
        }
    }

    /// The full run: 10k, 100k and 1M changes, more repetitions, more samples.
    pub fn full(exe: PathBuf) -> Config {
        Config {
            mode: "full".into(),
            sizes: vec![10_000, 100_000, 1_000_000],
            reps_small: 5,
            reps_large: 2,
            samples: 400,
            propagation_size: 100_000,
            propagation_records: 200,
            large_node: Some(1_000_000),
            ..Config::quick(exe)
        }
    }

    /// The smoke test's sizes: a few hundred changes, three nodes.
    pub fn tiny(exe: PathBuf) -> Config {
        Config {
            mode: "tiny".into(),
            members: 12,
            sizes: vec![150, 300],
            reps_small: 1,
            reps_large: 1,
            samples: 20,
            node_size: 300,
            propagation_nodes: 3,
            propagation_size: 300,
            propagation_records: 5,
            propagation_warmup: 1,
            api_sizes: vec![150, 300],
            api_samples: 5,
            api_writes: 10,
            api_writes_past_batch: false,
            large_node: Some(300),
            ..Config::quick(exe)
        }
    }

    fn reps(&self, n: usize) -> usize {
        if n <= self.small {
            self.reps_small
        } else if n <= self.large {
            self.reps_large
        } else {
            1
        }
    }
}

/// The machine's parallelism (the ingest figure verifies on that many threads).
pub fn parallelism() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
}

/// A benchmark that could not be measured, and why.
#[derive(Debug)]
pub struct BenchError(String);

impl BenchError {
    /// An error with a message.
    pub fn new(msg: impl Into<String>) -> BenchError {
        BenchError(msg.into())
    }
}

impl fmt::Display for BenchError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for BenchError {}

impl From<NodeError> for BenchError {
    fn from(e: NodeError) -> Self {
        BenchError(format!("node: {e}"))
    }
}

impl From<std::io::Error> for BenchError {
    fn from(e: std::io::Error) -> Self {
        BenchError(format!("io: {e}"))
    }
}

/// Measures every figure for `cfg`, reporting progress lines to `progress`.
pub fn run(cfg: &Config, progress: &mut dyn FnMut(&str)) -> Result<Report, BenchError> {
    let started = Instant::now();
    let machine_before = report::Machine::now();
    // A generate-only run (profiling the generator) stops at the in-memory sizes.
    let api_sizes: &[usize] = if cfg.generate_only {
        &[]
    } else {
        &cfg.api_sizes
    };
    let largest = cfg
        .sizes
        .iter()
        .chain(api_sizes)
        .chain(&cfg.large_node)
        .copied()
        .max()
        .unwrap_or(0);
    if !cfg.sizes.contains(&cfg.node_size) || cfg.propagation_size > cfg.node_size {
        return Err(BenchError::new(
            "node_size must be one of the sizes, and propagation_size at most node_size",
        ));
    }

    progress(&format!(
        "generating a community of {} members, {} changes (seed {})",
        cfg.members,
        largest + cfg.samples,
        cfg.seed
    ));
    // Authoring is timed at the in-memory sizes and the large node's (the API's smallest
    // size falls among the join requests, which are not dry-run: no baseline).
    let mut checkpoints: Vec<usize> = cfg.sizes.iter().chain(&cfg.large_node).copied().collect();
    checkpoints.sort_unstable();
    checkpoints.dedup();
    let c = community::generate_timed(
        &community::Spec {
            seed: cfg.seed,
            changes: largest + cfg.samples,
            members: cfg.members,
            second_device_percent: 30,
        },
        &checkpoints,
    );
    progress(&format!(
        "  {:.1} s ({:.0} µs/change), {} author refusals",
        c.generate_secs,
        c.generate_secs * 1e6 / c.envelopes.len() as f64,
        c.author_refusals
    ));
    for a in &c.authoring {
        progress(&format!(
            "  authoring at {}: {:.0} µs/change, {:.0} µs CPU (the last {} changes; slowest write {:.1} ms, p99 {:.2} ms)",
            report::count(a.changes),
            a.secs_per_change * 1e6,
            a.cpu_secs_per_change.unwrap_or(f64::NAN) * 1e6,
            a.window,
            a.max_write_secs * 1e3,
            a.p99_write_secs * 1e3
        ));
    }
    // A report of some figures only (the options that skip the others).
    let only = |machine_before, c: &community::Community, sizes, api, large_node| {
        Report::new(
            cfg,
            report::Parts {
                machine_before,
                community: report::CommunitySummary::of(c),
                sizes,
                nodes: None,
                api,
                large_node,
                total_secs: started.elapsed().as_secs_f64(),
            },
        )
    };
    if cfg.generate_only {
        // The large node, when one is asked, needs nothing but the community.
        let large = match cfg.large_node {
            Some(n) => Some(large_node(cfg, &c, n, progress)?),
            None => None,
        };
        return Ok(only(machine_before, &c, Vec::new(), Vec::new(), large));
    }

    if cfg.api_only {
        let api = api_figures(cfg, &c, progress)?;
        return Ok(only(machine_before, &c, Vec::new(), api, None));
    }
    let mut sizes = Vec::new();
    let mut node_save = Vec::new();
    for &n in &cfg.sizes {
        progress(&format!("in-memory figures at {n} changes"));
        let (figures, save) = core::measure(&c, n, cfg.reps(n), cfg.samples, cfg.verify_threads)?;
        progress(&format!(
            "  ingest {:.2} s ({:.0}/s; raw verify {:.0}/s), derive {:.3} s (raw read {:.3} s)",
            figures.ingest.secs,
            figures.ingest.per_sec,
            figures.ingest.raw_verify_per_sec,
            figures.derive.from_scratch_secs,
            figures.derive.raw_read_secs
        ));
        if n == cfg.node_size {
            node_save = save;
        }
        sizes.push(figures);
    }
    if cfg.in_memory_only {
        return Ok(only(machine_before, &c, sizes, Vec::new(), None));
    }
    let node_figures = sizes
        .iter()
        .find(|s| s.ingest.changes == cfg.node_size)
        .cloned()
        .ok_or_else(|| BenchError::new("no figures at the node size"))?;

    let tmp = match &cfg.workdir {
        Some(w) => tempfile::Builder::new()
            .prefix("coop-bench")
            .tempdir_in(w)?,
        None => tempfile::Builder::new().prefix("coop-bench").tempdir()?,
    };
    let root = tmp.path();
    progress(&format!("node figures at {} changes", cfg.node_size));
    let peer_dir = net::member_dir(
        root,
        "peer",
        &c.members[0],
        c.id,
        &c.envelopes[..cfg.node_size],
    )?;
    if cfg.catch_up_only {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .enable_all()
            .build()?;
        catch_up_figure(
            cfg,
            &c,
            root,
            &peer_dir,
            &rt,
            &node_save,
            &node_figures,
            progress,
        )?;
        return Ok(only(machine_before, &c, sizes, Vec::new(), None));
    }
    let doc_file = root.join("save.automerge");
    std::fs::write(&doc_file, &node_save)?;
    let idle = child::run(&cfg.exe, &child::Task::Idle)?;
    let cold_task = child::Task::ColdStart {
        dir: peer_dir.root().to_path_buf(),
        member: c.members[1].id,
        now: c.last_time,
    };
    // The data dir was written around the ledger (no document snapshot yet): the first
    // open rebuilds everything from the log and leaves a snapshot as it closes, as a node
    // does the first time it opens an imported log.
    let first_open = child::run(&cfg.exe, &cold_task)?;
    let node = child::run(
        &cfg.exe,
        &child::Task::Node {
            dir: peer_dir.root().to_path_buf(),
        },
    )?;
    // A cold start as a node meets it every other time: after a clean shutdown.
    let cold = child::run(&cfg.exe, &cold_task)?;
    let doc = child::run(&cfg.exe, &child::Task::AutomergeLoad { file: doc_file })?;
    let steps = child::run(
        &cfg.exe,
        &child::Task::Stages {
            dir: peer_dir.root().to_path_buf(),
        },
    )?;
    let cold_start = report::ColdStartFigure::new(cfg.node_size, &cold, &first_open, &doc);
    let memory = report::MemoryFigure::new(cfg.node_size, &node, &doc, &idle, &steps);
    progress(&format!(
        "  cold start {:.2} s (first open, no snapshot: {:.2} s), {:.0} MB peak; running node {:.0} MB peak; Automerge doc {:.0} MB peak",
        cold_start.secs, cold_start.first_open_secs, cold_start.peak_rss_mb, memory.node_peak_rss_mb, memory.automerge_peak_rss_mb
    ));

    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    let catch_up = catch_up_figure(
        cfg,
        &c,
        root,
        &peer_dir,
        &rt,
        &node_save,
        &node_figures,
        progress,
    )?;
    progress(&format!(
        "propagation across {} nodes holding {} changes",
        cfg.propagation_nodes, cfg.propagation_size
    ));
    let propagation = rt.block_on(net::propagation(
        root,
        &c,
        cfg.propagation_nodes,
        cfg.propagation_size,
        cfg.propagation_records,
        cfg.propagation_warmup,
    ))?;
    progress(&format!(
        "  p50 {:.1} ms, p99 {:.1} ms",
        propagation.p50_ms, propagation.p99_ms
    ));
    drop(rt);
    let api = api_figures(cfg, &c, progress)?;
    let large_node = match cfg.large_node {
        Some(n) => Some(large_node(cfg, &c, n, progress)?),
        None => None,
    };

    Ok(Report::new(
        cfg,
        report::Parts {
            machine_before,
            community: report::CommunitySummary::of(&c),
            sizes,
            nodes: Some(report::NodeFigures {
                catch_up,
                propagation,
                cold_start,
                memory,
            }),
            api,
            large_node,
            total_secs: started.elapsed().as_secs_f64(),
        },
    ))
}

/// Figure 10: the cold start of a node holding `n` changes (issue 13 item 5: open and
/// answer `balance` within 4 GiB), in a child process as a node meets it — the first open
/// of an imported log (everything rebuilt, a snapshot left at close), then an open after
/// that clean shutdown.
fn large_node(
    cfg: &Config,
    c: &community::Community,
    n: usize,
    progress: &mut dyn FnMut(&str),
) -> Result<report::LargeNodeFigure, BenchError> {
    if n > c.envelopes.len() {
        return Err(BenchError::new(format!(
            "the large node's size {n} exceeds the {} changes generated",
            c.envelopes.len()
        )));
    }
    let tmp = match &cfg.workdir {
        Some(w) => tempfile::Builder::new()
            .prefix("coop-bench-large")
            .tempdir_in(w)?,
        None => tempfile::Builder::new()
            .prefix("coop-bench-large")
            .tempdir()?,
    };
    progress(&format!(
        "cold start of a node holding {}",
        report::count(n)
    ));
    let t = Instant::now();
    let root = cfg.keep_node.as_deref().unwrap_or(tmp.path());
    let dir = net::member_dir(root, "large", &c.members[0], c.id, &c.envelopes[..n])?;
    let write_secs = t.elapsed().as_secs_f64();
    let task = child::Task::ColdStart {
        dir: dir.root().to_path_buf(),
        member: c.members[1].id,
        now: c.last_time,
    };
    if cfg.keep_node.is_some() {
        progress(&format!(
            "  kept: {} {} {}",
            cfg.exe.display(),
            child::CHILD_SUBCOMMAND,
            task.args().join(" ")
        ));
    }
    let first_open = child::run(&cfg.exe, &task)?;
    let cold = child::run(&cfg.exe, &task)?;
    if cold.changes != n || first_open.changes != n {
        return Err(BenchError::new(format!(
            "the large node opened with {} and then {} changes, not {n}",
            first_open.changes, cold.changes
        )));
    }
    let figure = report::LargeNodeFigure::new(n, write_secs, &first_open, &cold);
    progress(&format!(
        "  first open {:.1} s, {:.0} MiB peak; after a clean shutdown {:.1} s, {:.0} MiB peak",
        figure.first_open_secs, figure.first_open_peak_rss_mb, figure.secs, figure.peak_rss_mb
    ));
    drop(tmp);
    Ok(figure)
}

/// Figure 8 at each of `cfg.api_sizes`.
fn api_figures(
    cfg: &Config,
    c: &community::Community,
    progress: &mut dyn FnMut(&str),
) -> Result<Vec<api::ApiFigure>, BenchError> {
    let tmp = match &cfg.workdir {
        Some(w) => tempfile::Builder::new()
            .prefix("coop-bench-api")
            .tempdir_in(w)?,
        None => tempfile::Builder::new()
            .prefix("coop-bench-api")
            .tempdir()?,
    };
    let mut out = Vec::new();
    for &n in &cfg.api_sizes {
        progress(&format!("local API of a running node at {n} changes"));
        let f = api::measure(
            tmp.path(),
            c,
            n,
            cfg.api_samples,
            cfg.api_writes,
            cfg.api_writes_past_batch,
        )?;
        for r in &f.reads {
            progress(&format!(
                "  {:<18} p50 {:.2} ms, p99 {:.2} ms ({} bytes)",
                r.command, r.p50_ms, r.p99_ms, r.answer_bytes
            ));
        }
        progress(&format!(
            "  {} sequential writes: {:.0}/s (p50 {:.2} ms, p99 {:.2} ms, max {:.1} ms)",
            f.writes, f.writes_per_sec, f.write_p50_ms, f.write_p99_ms, f.write_max_ms
        ));
        out.push(f);
    }
    Ok(out)
}

/// Figure 3 (catch-up) with its progress lines.
#[allow(clippy::too_many_arguments)]
fn catch_up_figure(
    cfg: &Config,
    c: &community::Community,
    root: &std::path::Path,
    peer_dir: &coop_node::DataDir,
    rt: &tokio::runtime::Runtime,
    node_save: &[u8],
    node_figures: &core::SizeFigures,
    progress: &mut dyn FnMut(&str),
) -> Result<net::CatchUpFigure, BenchError> {
    progress(&format!(
        "catch-up sync of {} changes over libp2p",
        cfg.node_size
    ));
    let catch_up = rt.block_on(net::catch_up(
        root,
        c,
        peer_dir,
        cfg.node_size,
        node_save,
        node_figures.envelope_bytes,
        (
            node_figures.bundled_batches_bytes,
            node_figures.bundled_whole_bytes,
        ),
    ))?;
    progress(&format!(
        "  {:.1} s, {} bytes on the wire ({:.2}× save()); {:.2}× {}",
        catch_up.secs,
        catch_up.wire_bytes,
        catch_up.wire_vs_save,
        catch_up.secs_vs_reference,
        catch_up.time_reference
    ));
    progress(&format!(
        "  Automerge sync over TCP: {:.2} s, {} bytes; in memory {} bytes in {} round trips",
        catch_up.reference.tcp_secs,
        catch_up.reference.tcp_bytes,
        catch_up.reference.mem_bytes,
        catch_up.reference.mem_round_trips
    ));
    match &catch_up.samod {
        Some(s) => progress(&format!(
            "  samod over TCP: {:.2} s, {} bytes{}",
            s.secs,
            s.bytes,
            if s.converged {
                ""
            } else {
                " (did not converge)"
            }
        )),
        None => progress(&format!(
            "  samod unavailable ({}); the time target compares against Automerge sync over TCP",
            catch_up.samod_error.as_deref().unwrap_or("no figure")
        )),
    }
    Ok(catch_up)
}
