//! `coop-bench`: coop's benchmark harness (issue 5). Measures ingest, derivation, catch-up
//! sync, propagation, cold start, memory and scaling, each beside the raw cost of the parts
//! coop is made of in the same run; prints a table and writes JSON.
//!
//! ```text
//! cargo run --release -p coop-tests --bin coop-bench -- --quick
//! ```
//! See `docs/PERFORMANCE.md`. The harness itself lives in `coop_tests::bench`.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Parser;
use coop_tests::bench::{self, child, Config};

/// The allocator `coop` ships with (`cli/src/main.rs`): the node figures run in this
/// process and its children, so they allocate as the node does.
#[global_allocator]
static GLOBAL: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

#[derive(Debug, Parser)]
#[command(name = "coop-bench", about = "coop's benchmark harness")]
struct Args {
    /// 10k and 100k changes, fewer repetitions (under 3 minutes on 2 cores).
    #[arg(long)]
    quick: bool,
    /// The smoke test's sizes (a few hundred changes, three nodes): checks the harness.
    #[arg(long, conflicts_with = "quick")]
    tiny: bool,
    /// Seed of the synthetic community.
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Where to write the JSON report.
    #[arg(long, default_value = "target/bench.json")]
    out: PathBuf,
    /// Directory for the temporary data dirs (default: the system's temporary directory).
    #[arg(long)]
    workdir: Option<PathBuf>,
    /// Ledger sizes of the in-memory figures instead of the mode's (e.g. `20000,200000`).
    #[arg(long, value_delimiter = ',')]
    sizes: Option<Vec<usize>>,
    /// Only the in-memory figures (ingest, derivation, incremental, scaling): for profiling.
    #[arg(long)]
    in_memory_only: bool,
    /// Only the catch-up figure, after the in-memory figures (for profiling the sync; with
    /// `--sizes 100000` only that size is measured in memory first).
    #[arg(long, conflicts_with_all = ["in_memory_only", "api_only", "generate_only"])]
    catch_up_only: bool,
    /// Only the local-API figure (reads and writes through a running node).
    #[arg(long, conflicts_with = "in_memory_only")]
    api_only: bool,
    /// Only generate the community and time its authoring at each size (for profiling),
    /// then the large node's cold start if one is asked (full mode asks for 1M unless
    /// `--large-node 0`).
    #[arg(long, conflicts_with_all = ["in_memory_only", "api_only"])]
    generate_only: bool,
    /// Measure the cold start of a node holding this many changes (0: skip it; full
    /// mode's default is 1000000).
    #[arg(long)]
    large_node: Option<usize>,
    /// Keep the large node's data dir in this directory (which must not hold one yet)
    /// instead of removing it, and print the child command that opens it: for profiling
    /// the open (`--generate-only --large-node 100000 --keep-node DIR`).
    #[arg(long)]
    keep_node: Option<PathBuf>,
}

fn main() -> ExitCode {
    let raw: Vec<String> = std::env::args().collect();
    // A child measurement is asked as `coop-bench __child TASK ARGS...` (hidden from
    // `--help`); it is dispatched before anything else so that it does nothing else.
    if raw.get(1).map(String::as_str) == Some(child::CHILD_SUBCOMMAND) {
        return serve_child(&raw[2..]);
    }
    let args = Args::parse();
    let exe = match std::env::current_exe() {
        Ok(e) => e,
        Err(e) => {
            eprintln!("coop-bench: cannot find its own executable: {e}");
            return ExitCode::FAILURE;
        }
    };
    let mut cfg = if args.tiny {
        Config::tiny(exe)
    } else if args.quick {
        Config::quick(exe)
    } else {
        Config::full(exe)
    };
    cfg.seed = args.seed;
    cfg.workdir = args.workdir;
    cfg.in_memory_only = args.in_memory_only;
    cfg.api_only = args.api_only;
    cfg.catch_up_only = args.catch_up_only;
    cfg.generate_only = args.generate_only;
    cfg.keep_node = args.keep_node;
    if let Some(n) = args.large_node {
        cfg.large_node = (n > 0).then_some(n);
    }
    if let Some(mut sizes) = args.sizes {
        sizes.sort_unstable();
        cfg.node_size = sizes
            .iter()
            .copied()
            .filter(|&n| n <= cfg.node_size)
            .max()
            .unwrap_or(sizes[0]);
        cfg.propagation_size = cfg.propagation_size.min(cfg.node_size);
        cfg.sizes = sizes;
    }
    let report = match bench::run(&cfg, &mut |line| eprintln!("{line}")) {
        Ok(r) => r,
        Err(e) => {
            eprintln!("coop-bench: {e}");
            return ExitCode::FAILURE;
        }
    };
    println!("{}", report.table());
    let json = match serde_json::to_string_pretty(&report) {
        Ok(j) => j,
        Err(e) => {
            eprintln!("coop-bench: cannot serialise the report: {e}");
            return ExitCode::FAILURE;
        }
    };
    if let Some(parent) = args.out.parent().filter(|p| !p.as_os_str().is_empty()) {
        let _ = std::fs::create_dir_all(parent);
    }
    if let Err(e) = std::fs::write(&args.out, json) {
        eprintln!("coop-bench: writing {}: {e}", args.out.display());
        return ExitCode::FAILURE;
    }
    eprintln!("report written to {}", args.out.display());
    ExitCode::SUCCESS
}

fn serve_child(args: &[String]) -> ExitCode {
    let result = child::Task::parse(args).and_then(|task| child::serve(&task));
    match result.map(|r| serde_json::to_string(&r)) {
        Ok(Ok(line)) => {
            println!("{line}");
            ExitCode::SUCCESS
        }
        Ok(Err(e)) => {
            eprintln!("coop-bench child: {e}");
            ExitCode::FAILURE
        }
        Err(e) => {
            eprintln!("coop-bench child: {e}");
            ExitCode::FAILURE
        }
    }
}
