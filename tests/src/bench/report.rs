//! The report: every figure with its baseline, the scaling rows, the targets of issue 5
//! and where each stands; serialised to JSON and printed as a table.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use serde::Serialize;

use super::child::ChildReport;
use super::community::Community;
use super::core::SizeFigures;
use super::net::{CatchUpFigure, PropagationFigure};
use super::Config;

/// The machine the run was measured on.
#[derive(Debug, Clone, Serialize)]
pub struct Machine {
    /// Logical CPUs available.
    pub nproc: usize,
    /// CPU model (`/proc/cpuinfo`).
    pub cpu: String,
    /// Memory, MiB (`/proc/meminfo`).
    pub mem_total_mb: u64,
    /// `/proc/loadavg` when read.
    pub loadavg: String,
}

impl Machine {
    /// The machine now.
    pub fn now() -> Machine {
        let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
        let cpu = cpuinfo
            .lines()
            .find_map(|l| l.strip_prefix("model name"))
            .map(|v| v.trim_start_matches([' ', '\t', ':']).trim().to_string())
            .unwrap_or_else(|| "unknown".into());
        let meminfo = std::fs::read_to_string("/proc/meminfo").unwrap_or_default();
        let mem_total_mb = meminfo
            .lines()
            .find_map(|l| l.strip_prefix("MemTotal:"))
            .and_then(|v| v.split_whitespace().next())
            .and_then(|v| v.parse::<u64>().ok())
            .map_or(0, |kb| kb / 1024);
        Machine {
            nproc: super::parallelism(),
            cpu,
            mem_total_mb,
            loadavg: std::fs::read_to_string("/proc/loadavg")
                .unwrap_or_default()
                .trim()
                .to_string(),
        }
    }
}

/// The generated community.
#[derive(Debug, Clone, Serialize)]
pub struct CommunitySummary {
    /// Changes generated (largest size plus the incremental samples).
    pub changes: usize,
    /// Members.
    pub members: usize,
    /// Devices.
    pub devices: usize,
    /// Records by kind.
    pub kinds: BTreeMap<String, usize>,
    /// Records the generator's view got wrong (refused by `Ledger::author`, not written).
    pub author_refusals: usize,
    /// Seconds to generate.
    pub generate_secs: f64,
    /// Mean encoded envelope, bytes.
    pub mean_envelope_bytes: f64,
    /// Authoring cost per change at each size (issue 13 item 6), the smallest first.
    pub authoring: Vec<AuthoringRow>,
}

/// What writing one change through `Ledger::author` cost at one ledger size.
#[derive(Debug, Clone, Serialize)]
pub struct AuthoringRow {
    /// The ledger size.
    pub changes: usize,
    /// Changes timed (the window ending at that size).
    pub window: usize,
    /// µs per change, wall time.
    pub us_per_change: f64,
    /// µs per change, CPU time of the process (every thread: the document's batches are
    /// applied on a thread of their own), the wall time where unknown.
    pub cpu_us_per_change: f64,
    /// `cpu_us_per_change` ÷ that of the smallest size (target at the largest: ≤ 1.3).
    /// CPU time, because wall time on a shared machine measures the other work as much as
    /// this.
    pub growth: f64,
    /// The slowest single write of the window, ms (wall time).
    pub max_write_ms: f64,
    /// The 99th percentile of the window's writes, ms (wall time).
    pub p99_write_ms: f64,
}

impl CommunitySummary {
    /// Summarises a community.
    pub fn of(c: &Community) -> CommunitySummary {
        let bytes: usize = c.envelopes.iter().map(|e| e.encode().len()).sum();
        CommunitySummary {
            changes: c.envelopes.len(),
            members: c.members.len(),
            devices: c.devices(),
            kinds: c.kinds.clone(),
            author_refusals: c.author_refusals,
            generate_secs: c.generate_secs,
            mean_envelope_bytes: bytes as f64 / c.envelopes.len().max(1) as f64,
            authoring: authoring_rows(&c.authoring),
        }
    }
}

fn authoring_rows(costs: &[super::community::AuthoringCost]) -> Vec<AuthoringRow> {
    let mut costs = costs.to_vec();
    costs.sort_by_key(|a| a.changes);
    costs.dedup_by_key(|a| a.changes);
    let cpu =
        |a: &super::community::AuthoringCost| a.cpu_secs_per_change.unwrap_or(a.secs_per_change);
    let base = costs.first().map_or(0.0, cpu);
    costs
        .iter()
        .map(|a| AuthoringRow {
            changes: a.changes,
            window: a.window,
            us_per_change: a.secs_per_change * 1e6,
            cpu_us_per_change: cpu(a) * 1e6,
            growth: cpu(a) / base,
            max_write_ms: a.max_write_secs * 1e3,
            p99_write_ms: a.p99_write_secs * 1e3,
        })
        .collect()
}

/// Figure 10: the cold start (open + `balance`, in a fresh process) of a node holding a
/// large ledger (1M changes in full mode), against 4 GiB of peak RSS.
#[derive(Debug, Clone, Serialize)]
pub struct LargeNodeFigure {
    /// Changes held.
    pub changes: usize,
    /// Seconds to write the data dir (the log appended to the store as raw envelopes).
    pub write_secs: f64,
    /// The first open of the imported log (everything rebuilt, a snapshot left at close),
    /// seconds.
    pub first_open_secs: f64,
    /// Its peak RSS, MiB.
    pub first_open_peak_rss_mb: f64,
    /// The open after that clean shutdown, seconds.
    pub secs: f64,
    /// Its peak RSS, MiB.
    pub peak_rss_mb: f64,
    /// The balance answered, minutes (the same both times).
    pub balance_minutes: Option<i64>,
}

impl LargeNodeFigure {
    /// The limit on the peak RSS of either open, MiB (issue 13 item 5).
    pub const LIMIT_MB: f64 = 4096.0;

    /// From the child reports.
    pub fn new(
        changes: usize,
        write_secs: f64,
        first_open: &ChildReport,
        cold: &ChildReport,
    ) -> LargeNodeFigure {
        LargeNodeFigure {
            changes,
            write_secs,
            first_open_secs: first_open.secs,
            first_open_peak_rss_mb: mb(first_open.peak_rss_kb),
            secs: cold.secs,
            peak_rss_mb: mb(cold.peak_rss_kb),
            balance_minutes: cold
                .balance_minutes
                .filter(|_| cold.balance_minutes == first_open.balance_minutes),
        }
    }

    /// The larger peak of the two opens, MiB.
    pub fn worst_peak_mb(&self) -> f64 {
        self.first_open_peak_rss_mb.max(self.peak_rss_mb)
    }
}

fn mb(kb: u64) -> f64 {
    kb as f64 / 1024.0
}

/// Figure 5: opening a store and answering a balance, in a fresh process.
#[derive(Debug, Clone, Serialize)]
pub struct ColdStartFigure {
    /// Changes in the store.
    pub changes: usize,
    /// `LocalNode::open` + `State::balance`, seconds, with the document snapshot the node
    /// left at its last clean shutdown.
    pub secs: f64,
    /// The same for the first open of a log with no snapshot yet (everything rebuilt).
    pub first_open_secs: f64,
    /// Peak RSS of that process, MiB.
    pub peak_rss_mb: f64,
    /// Baseline: `Automerge::load` of the document's `save()`, seconds.
    pub automerge_load_secs: f64,
    /// Cold start ÷ Automerge load.
    pub vs_automerge_load: f64,
    /// The balance answered, minutes.
    pub balance_minutes: Option<i64>,
}

impl ColdStartFigure {
    /// From the child reports.
    pub fn new(
        changes: usize,
        cold: &ChildReport,
        first_open: &ChildReport,
        doc: &ChildReport,
    ) -> ColdStartFigure {
        ColdStartFigure {
            changes,
            secs: cold.secs,
            first_open_secs: first_open.secs,
            peak_rss_mb: mb(cold.peak_rss_kb),
            automerge_load_secs: doc.secs,
            vs_automerge_load: cold.secs / doc.secs,
            balance_minutes: cold.balance_minutes,
        }
    }
}

/// Figure 6: the memory of a running node against the bare Automerge document.
#[derive(Debug, Clone, Serialize)]
pub struct MemoryFigure {
    /// Changes held.
    pub changes: usize,
    /// A running node (`run::start`, store opened, swarm up): peak RSS, MiB.
    pub node_peak_rss_mb: f64,
    /// Its RSS once running, MiB.
    pub node_rss_mb: f64,
    /// A process holding only `Automerge::load(save())`: peak RSS, MiB.
    pub automerge_peak_rss_mb: f64,
    /// Its RSS after loading, MiB.
    pub automerge_rss_mb: f64,
    /// An idle bench process (the floor both pay), MiB.
    pub idle_rss_mb: f64,
    /// Node peak ÷ document peak, both net of the idle floor.
    pub vs_automerge: f64,
    /// Node RSS per change held, bytes.
    pub node_bytes_per_change: f64,
    /// What `LocalNode::open` holds, step by step: (step, MiB of RSS it added; negative
    /// where it freed more than it took, as when the snapshot's load ends).
    pub open_steps_mb: Vec<(String, f64)>,
}

impl MemoryFigure {
    /// From the child reports.
    pub fn new(
        changes: usize,
        node: &ChildReport,
        doc: &ChildReport,
        idle: &ChildReport,
        steps: &ChildReport,
    ) -> MemoryFigure {
        let floor = idle.peak_rss_kb;
        let net = |kb: u64| kb.saturating_sub(floor).max(1) as f64;
        MemoryFigure {
            changes,
            node_peak_rss_mb: mb(node.peak_rss_kb),
            node_rss_mb: mb(node.rss_kb),
            automerge_peak_rss_mb: mb(doc.peak_rss_kb),
            automerge_rss_mb: mb(doc.rss_kb),
            idle_rss_mb: mb(idle.peak_rss_kb),
            vs_automerge: net(node.peak_rss_kb) / net(doc.peak_rss_kb),
            node_bytes_per_change: net(node.rss_kb) * 1024.0 / changes.max(1) as f64,
            open_steps_mb: steps
                .stages
                .windows(2)
                .map(|w| (w[1].0.clone(), mb(w[1].1) - mb(w[0].1)))
                .collect(),
        }
    }
}

/// Figure 7: per-change costs at one size, and their growth over the smallest size.
#[derive(Debug, Clone, Serialize)]
pub struct ScalingRow {
    /// Changes.
    pub changes: usize,
    /// Ingest + state, µs per change.
    pub ingest_us: f64,
    /// Raw verify, µs per change (the baseline's own growth: none expected).
    pub raw_verify_us: f64,
    /// Automerge apply, µs per change.
    pub automerge_apply_us: f64,
    /// Derivation from scratch, µs per change.
    pub derive_us: f64,
    /// One more change (ingest + state), µs.
    pub incremental_us: f64,
    /// `ingest_us` ÷ that of the smallest size (target at 100k: ≤ 1.3).
    pub ingest_growth: f64,
    /// `derive_us` ÷ that of the smallest size.
    pub derive_growth: f64,
    /// `automerge_apply_us` ÷ that of the smallest size.
    pub automerge_apply_growth: f64,
}

/// One target of issue 5 and where the run stands.
#[derive(Debug, Clone, Serialize)]
pub struct Target {
    /// What is measured.
    pub name: String,
    /// The target, in words.
    pub target: String,
    /// The measured value, in words.
    pub value: String,
    /// Whether it is met.
    pub met: bool,
}

/// What [`Report::new`] assembles.
#[derive(Debug)]
pub struct Parts {
    /// The machine at the start.
    pub machine_before: Machine,
    /// The community.
    pub community: CommunitySummary,
    /// In-memory figures per size.
    pub sizes: Vec<SizeFigures>,
    /// The node figures, unless skipped.
    pub nodes: Option<NodeFigures>,
    /// Figure 8 per size (empty when skipped).
    pub api: Vec<super::api::ApiFigure>,
    /// Figure 10, when measured (full mode).
    pub large_node: Option<LargeNodeFigure>,
    /// Seconds the whole run took.
    pub total_secs: f64,
}

/// Figures 3 to 6: real nodes.
#[derive(Debug, Clone, Serialize)]
pub struct NodeFigures {
    /// Figure 3.
    pub catch_up: CatchUpFigure,
    /// Figure 4.
    pub propagation: PropagationFigure,
    /// Figure 5.
    pub cold_start: ColdStartFigure,
    /// Figure 6.
    pub memory: MemoryFigure,
}

/// The whole report (written as JSON).
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    /// `quick`, `full` or `tiny`.
    pub mode: String,
    /// Seed of the community.
    pub seed: u64,
    /// The machine at the start.
    pub machine: Machine,
    /// `/proc/loadavg` at the end.
    pub loadavg_end: String,
    /// The community.
    pub community: CommunitySummary,
    /// Figures 1 and 2 (and the incremental update), per size.
    pub sizes: Vec<SizeFigures>,
    /// Figures 3 to 6 (absent when skipped).
    #[serde(flatten)]
    pub nodes: Option<NodeFigures>,
    /// Figure 7.
    pub scaling: Vec<ScalingRow>,
    /// Figure 8: the local API, per size.
    pub api: Vec<super::api::ApiFigure>,
    /// Figure 10: the cold start of a large node (full mode).
    pub large_node: Option<LargeNodeFigure>,
    /// The targets of issue 5.
    pub targets: Vec<Target>,
    /// Seconds the whole run took.
    pub total_secs: f64,
}

impl Report {
    /// Assembles the report and evaluates the targets.
    pub fn new(cfg: &Config, p: Parts) -> Report {
        let scaling = scaling(&p.sizes);
        let mut report = Report {
            mode: cfg.mode.clone(),
            seed: cfg.seed,
            machine: p.machine_before,
            loadavg_end: super::report::Machine::now().loadavg,
            community: p.community,
            sizes: p.sizes,
            nodes: p.nodes,
            scaling,
            api: p.api,
            large_node: p.large_node,
            targets: Vec::new(),
            total_secs: p.total_secs,
        };
        report.targets = report.evaluate(cfg.node_size);
        report
    }

    fn evaluate(&self, main: usize) -> Vec<Target> {
        let mut t = Vec::new();
        let at = self.sizes.iter().find(|s| s.ingest.changes == main);
        if let Some(s) = at {
            t.push(Target {
                name: format!("ingest rate at {}", count(main)),
                target: "≥ 1.0× raw single-signature verify".into(),
                value: format!("{:.2}×", s.ingest.vs_raw_verify),
                met: s.ingest.vs_raw_verify >= 1.0,
            });
            t.push(Target {
                name: format!("derivation from scratch at {}", count(main)),
                target: "≤ 1.5× raw Automerge field read".into(),
                value: format!("{:.2}×", s.derive.vs_raw_read),
                met: s.derive.vs_raw_read <= 1.5,
            });
        }
        if let Some(nodes) = &self.nodes {
            let cu = &nodes.catch_up;
            t.push(Target {
                name: format!("catch-up bytes at {}", count(cu.changes)),
                target: "≤ 3× Automerge save()".into(),
                value: format!("{:.2}×", cu.wire_vs_save),
                met: cu.wire_vs_save <= 3.0,
            });
            t.push(Target {
                name: format!("catch-up time at {}", count(cu.changes)),
                target: if cu.time_reference == "samod" {
                    "≤ 2× samod over loopback TCP".into()
                } else {
                    "≤ 2× Automerge sync over loopback TCP (samod unavailable)".into()
                },
                value: format!("{:.2}×", cu.secs_vs_reference),
                met: cu.secs_vs_reference <= 2.0 && cu.reference.converged,
            });
            let prop = &nodes.propagation;
            t.push(Target {
                name: format!("propagation p99, {} nodes", prop.nodes),
                target: "≤ 1000 ms on loopback".into(),
                value: format!(
                    "{:.0} ms ({}/{} delivered)",
                    prop.p99_ms, prop.delivered, prop.records
                ),
                met: prop.p99_ms <= 1000.0 && prop.delivered == prop.records,
            });
            // Issue 13, items 4 and 5.
            let cs = &nodes.cold_start;
            t.push(Target {
                name: format!("cold start at {} (open + balance)", count(cs.changes)),
                target: "≤ 1.5× Automerge load(save())".into(),
                value: format!(
                    "{:.2}× ({:.2} s vs {:.2} s)",
                    cs.vs_automerge_load, cs.secs, cs.automerge_load_secs
                ),
                met: cs.vs_automerge_load <= 1.5,
            });
            let mem = &nodes.memory;
            t.push(Target {
                name: format!("running node memory at {}", count(mem.changes)),
                target: "≤ 2× the bare Automerge document (peak, net of the idle floor)".into(),
                value: format!(
                    "{:.2}× ({:.0} vs {:.0} MiB)",
                    mem.vs_automerge, mem.node_peak_rss_mb, mem.automerge_peak_rss_mb
                ),
                met: mem.vs_automerge <= 2.0,
            });
        }
        if let Some(row) = self.scaling.iter().find(|r| r.changes == main) {
            let base = self.scaling.first().map_or(0, |r| r.changes);
            if base != main {
                t.push(Target {
                    name: format!("per-change ingest cost, {} vs {}", count(main), count(base)),
                    target: "≤ 1.3×".into(),
                    value: format!("{:.2}×", row.ingest_growth),
                    met: row.ingest_growth <= 1.3,
                });
            }
        }
        // Issue 10: each read at the largest size within 1.5× of the same read at the
        // smallest (p50); ≥ 200 sequential writes/s at the largest.
        if let (Some(small), Some(large)) = (self.api.first(), self.api.last()) {
            if small.changes != large.changes {
                for (s, l) in small.reads.iter().zip(&large.reads) {
                    let ratio = l.p50_ms / s.p50_ms.max(1e-6);
                    t.push(Target {
                        name: format!(
                            "API {} p50, {} vs {}",
                            l.command,
                            count(large.changes),
                            count(small.changes)
                        ),
                        target: "≤ 1.5×".into(),
                        value: format!("{ratio:.2}× ({:.2} vs {:.2} ms)", l.p50_ms, s.p50_ms),
                        met: ratio <= 1.5,
                    });
                }
            }
            t.push(Target {
                name: format!("API sequential writes at {}", count(large.changes)),
                target: "≥ 200/s".into(),
                value: format!("{:.0}/s", large.writes_per_sec),
                met: large.writes_per_sec >= 200.0,
            });
        }
        // Issue 13 item 6: bulk authoring flat from the smallest size to the largest.
        let authoring = &self.community.authoring;
        if let (Some(small), Some(large)) = (authoring.first(), authoring.last()) {
            if small.changes != large.changes {
                t.push(Target {
                    name: format!(
                        "bulk authoring per change, {} vs {}",
                        count(large.changes),
                        count(small.changes)
                    ),
                    target: "≤ 1.3× (CPU time)".into(),
                    value: format!(
                        "{:.2}× ({:.0} vs {:.0} µs)",
                        large.growth, large.cpu_us_per_change, small.cpu_us_per_change
                    ),
                    met: large.growth <= 1.3,
                });
            }
        }
        // Issue 13 item 5: a large node opens and answers `balance` within 4 GiB.
        if let Some(l) = &self.large_node {
            t.push(Target {
                name: format!("node holding {}: open + balance", count(l.changes)),
                target: "≤ 4 GiB peak RSS (either open)".into(),
                value: format!(
                    "{:.0} MiB (first open {:.0}, then {:.0})",
                    l.worst_peak_mb(),
                    l.first_open_peak_rss_mb,
                    l.peak_rss_mb
                ),
                met: l.worst_peak_mb() <= LargeNodeFigure::LIMIT_MB && l.balance_minutes.is_some(),
            });
        }
        t
    }

    /// The report as a plain-text table.
    pub fn table(&self) -> String {
        let mut o = String::new();
        let m = &self.machine;
        let _ = writeln!(
            o,
            "coop-bench ({} mode, seed {}) on {} × {}, {} MiB; load {} → {}",
            self.mode, self.seed, m.nproc, m.cpu, m.mem_total_mb, m.loadavg, self.loadavg_end
        );
        let c = &self.community;
        let _ = writeln!(
            o,
            "community: {} members, {} devices, {} changes generated in {:.1} s, {:.0} B/envelope",
            c.members, c.devices, c.changes, c.generate_secs, c.mean_envelope_bytes
        );
        let _ = writeln!(o);
        let _ = writeln!(
            o,
            "{:<40} {:>26}   {:<48} {:>8}",
            "figure", "coop", "baseline (same run)", "ratio"
        );
        let _ = writeln!(o, "{}", "-".repeat(128));
        let mut row = |name: String, coop: String, base: String, ratio: String| {
            let _ = writeln!(o, "{name:<40} {coop:>26}   {base:<48} {ratio:>8}");
        };
        for s in &self.sizes {
            let i = &s.ingest;
            row(
                format!("1 ingest {} (verify+gate+apply+derive)", count(i.changes)),
                format!("{:.0} changes/s", i.per_sec),
                format!(
                    "ed25519 verify_strict {:.0}/s (1 thread)",
                    i.raw_verify_per_sec
                ),
                format!("{:.2}×", i.vs_raw_verify),
            );
            row(
                String::new(),
                format!("{:.3} s", i.secs),
                format!("Automerge apply_changes {:.3} s", i.automerge_apply_secs),
                format!("{:.2}×", i.vs_automerge_apply),
            );
            let d = &s.derive;
            row(
                format!("2 derive from scratch {}", count(d.changes)),
                format!("{:.3} s", d.from_scratch_secs),
                format!(
                    "Automerge read of {} fields {:.3} s",
                    count(d.raw_read_fields),
                    d.raw_read_secs
                ),
                format!("{:.2}×", d.vs_raw_read),
            );
            let n = &s.incremental;
            row(
                format!("2 one more change at {}", count(n.base_changes)),
                format!("{:.0} µs", n.ingest_and_state_us),
                format!(
                    "(ingest+state; author+state {:.0} µs, state {:.0} µs)",
                    n.author_and_state_us, n.state_us
                ),
                String::new(),
            );
        }
        if let Some(nodes) = &self.nodes {
            let cu = &nodes.catch_up;
            row(
                format!("3 catch-up sync {}", count(cu.changes)),
                format!("{:.1} s, {:.1} MB", cu.secs, cu.wire_bytes as f64 / 1e6),
                format!("Automerge save() {:.1} MB", cu.save_bytes as f64 / 1e6),
                format!("{:.2}×", cu.wire_vs_save),
            );
            row(
                String::new(),
                format!("{:.0} changes/s", cu.per_sec),
                format!("signed envelopes {:.1} MB", cu.envelope_bytes as f64 / 1e6),
                format!("{:.2}×", cu.wire_vs_envelopes),
            );
            row(
                String::new(),
                String::new(),
                format!(
                    "what-if: bundles of {} + sigs (one bundle: {:.2}×)",
                    coop_node::wire::SYNC2_BATCH,
                    cu.bundled_whole_vs_save
                ),
                format!("{:.2}×", cu.bundled_vs_save),
            );
            row(
                String::new(),
                String::new(),
                format!(
                    "through the proxy {:.1} MB, sync payload counted by the node {:.1} MB",
                    cu.proxy_bytes as f64 / 1e6,
                    cu.sync_payload_bytes as f64 / 1e6
                ),
                String::new(),
            );
            match &cu.samod {
                Some(s) => row(
                    String::new(),
                    format!("{:.2} s, {:.1} MB", s.secs, s.bytes as f64 / 1e6),
                    format!(
                        "peer: samod, two repos over loopback TCP (no signatures){}",
                        if s.converged {
                            ""
                        } else {
                            ", did not converge"
                        }
                    ),
                    format!("{:.2}× time", cu.secs / s.secs),
                ),
                None => row(
                    String::new(),
                    "—".into(),
                    format!(
                        "peer: samod unavailable: {}",
                        cu.samod_error.as_deref().unwrap_or("no figure")
                    ),
                    String::new(),
                ),
            }
            let r = &cu.reference;
            row(
                String::new(),
                format!("{:.2} s, {:.1} MB", r.tcp_secs, r.tcp_bytes as f64 / 1e6),
                "reference: Automerge sync over loopback TCP (no signatures)".into(),
                format!("{:.2}× time", cu.secs_vs_automerge_tcp),
            );
            row(
                String::new(),
                format!("{:.2} s, {:.1} MB", r.mem_secs, r.mem_bytes as f64 / 1e6),
                format!(
                    "reference: Automerge sync in memory, {} round trips",
                    r.mem_round_trips
                ),
                format!("{:.2}× bytes", cu.bytes_vs_reference),
            );
            let p = &nodes.propagation;
            row(
                format!(
                    "4 propagation, {} nodes @ {}",
                    p.nodes,
                    count(p.ledger_changes)
                ),
                format!("p50 {:.0} ms, p99 {:.0} ms", p.p50_ms, p.p99_ms),
                format!(
                    "max {:.0} ms, submit p50 {:.0} ms, {}/{} delivered",
                    p.max_ms, p.submit_p50_ms, p.delivered, p.records
                ),
                String::new(),
            );
            let cs = &nodes.cold_start;
            row(
                format!("5 cold start {} (open + balance)", count(cs.changes)),
                format!(
                    "{:.2} s, {:.0} MiB peak (first open, no snapshot: {:.2} s)",
                    cs.secs, cs.peak_rss_mb, cs.first_open_secs
                ),
                format!("Automerge load(save()) {:.2} s", cs.automerge_load_secs),
                format!("{:.2}×", cs.vs_automerge_load),
            );
            let me = &nodes.memory;
            row(
                format!("6 memory, running node {}", count(me.changes)),
                format!(
                    "{:.0} MiB peak, {:.0} now",
                    me.node_peak_rss_mb, me.node_rss_mb
                ),
                format!(
                    "Automerge doc {:.0} MiB peak (idle {:.0})",
                    me.automerge_peak_rss_mb, me.idle_rss_mb
                ),
                format!("{:.2}×", me.vs_automerge),
            );
            let steps: Vec<String> = me
                .open_steps_mb
                .iter()
                .map(|(step, mb)| format!("{step} {mb:+.0}"))
                .collect();
            row(
                String::new(),
                format!("{:.0} B/change", me.node_bytes_per_change),
                format!("open, MiB: {}", steps.join(", ")),
                String::new(),
            );
        }
        for r in &self.scaling {
            row(
                format!("7 per change at {}", count(r.changes)),
                format!("{:.1} µs ingest", r.ingest_us),
                format!(
                    "derive {:.2} µs, apply {:.1} µs, verify {:.1} µs",
                    r.derive_us, r.automerge_apply_us, r.raw_verify_us
                ),
                format!("{:.2}×", r.ingest_growth),
            );
        }
        for f in &self.api {
            for r in &f.reads {
                row(
                    format!("8 API {} at {}", r.command, count(f.changes)),
                    format!("p50 {:.2} ms, p99 {:.2} ms", r.p50_ms, r.p99_ms),
                    format!("{} B answer, {} requests", r.answer_bytes, f.samples),
                    String::new(),
                );
            }
            row(
                format!("8 API writes at {}", count(f.changes)),
                format!("{:.0}/s sequential", f.writes_per_sec),
                format!(
                    "p50 {:.2} ms, p99 {:.2} ms, max {:.1} ms each, {} writes",
                    f.write_p50_ms, f.write_p99_ms, f.write_max_ms, f.writes
                ),
                String::new(),
            );
        }
        for a in &self.community.authoring {
            row(
                format!("9 bulk authoring at {}", count(a.changes)),
                format!("{:.0} µs/change CPU", a.cpu_us_per_change),
                format!(
                    "Ledger::author, last {} changes; wall {:.0} µs, p99 {:.2} ms, max {:.1} ms",
                    a.window, a.us_per_change, a.p99_write_ms, a.max_write_ms
                ),
                format!("{:.2}×", a.growth),
            );
        }
        if let Some(l) = &self.large_node {
            row(
                format!("10 node holding {} (open + balance)", count(l.changes)),
                format!("{:.1} s, {:.0} MiB peak", l.secs, l.peak_rss_mb),
                format!(
                    "first open (no snapshot) {:.1} s, {:.0} MiB peak",
                    l.first_open_secs, l.first_open_peak_rss_mb
                ),
                format!("{:.2}× 4G", l.worst_peak_mb() / LargeNodeFigure::LIMIT_MB),
            );
        }
        let _ = writeln!(o);
        let _ = writeln!(o, "targets:");
        for t in &self.targets {
            let _ = writeln!(
                o,
                "  [{}] {:<44} {:<40} {}",
                if t.met { "met " } else { "MISS" },
                t.name,
                t.target,
                t.value
            );
        }
        let _ = writeln!(o, "total {:.0} s", self.total_secs);
        o
    }
}

fn scaling(sizes: &[SizeFigures]) -> Vec<ScalingRow> {
    let per = |secs: f64, n: usize| secs * 1e6 / n.max(1) as f64;
    let rows: Vec<ScalingRow> = sizes
        .iter()
        .map(|s| {
            let n = s.ingest.changes;
            ScalingRow {
                changes: n,
                ingest_us: per(s.ingest.secs, n),
                raw_verify_us: per(s.ingest.raw_verify_secs, n),
                automerge_apply_us: per(s.ingest.automerge_apply_secs, n),
                derive_us: per(s.derive.from_scratch_secs, n),
                incremental_us: s.incremental.ingest_and_state_us,
                ingest_growth: 1.0,
                derive_growth: 1.0,
                automerge_apply_growth: 1.0,
            }
        })
        .collect();
    let Some(first) = rows.first().cloned() else {
        return rows;
    };
    rows.into_iter()
        .map(|mut r| {
            r.ingest_growth = r.ingest_us / first.ingest_us;
            r.derive_growth = r.derive_us / first.derive_us;
            r.automerge_apply_growth = r.automerge_apply_us / first.automerge_apply_us;
            r
        })
        .collect()
}

/// 10000 → "10k", 1000000 → "1M".
pub fn count(n: usize) -> String {
    match n {
        n if n >= 1_000_000 && n % 1_000_000 == 0 => format!("{}M", n / 1_000_000),
        n if n >= 1_000 && n % 1_000 == 0 => format!("{}k", n / 1_000),
        n => n.to_string(),
    }
}
