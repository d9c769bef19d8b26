//! Keeps the benchmark harness from rotting: runs every figure of `coop-bench` on a tiny
//! community (a few hundred changes, three nodes) and checks that each was produced and
//! is sane. No timing assertions: only that the harness measures what it says.

use std::path::PathBuf;

use coop_tests::bench::{self, Config};

#[test]
fn the_harness_produces_every_figure() {
    let exe = PathBuf::from(env!("CARGO_BIN_EXE_coop-bench"));
    let cfg = Config::tiny(exe);
    let report = bench::run(&cfg, &mut |line| eprintln!("{line}")).expect("the harness runs");

    assert_eq!(
        report.community.author_refusals, 0,
        "the generator writes only what counts"
    );
    assert!(
        report.community.kinds.len() >= 10,
        "a varied community: {:?}",
        report.community.kinds
    );
    assert_eq!(report.sizes.len(), cfg.sizes.len());
    for s in &report.sizes {
        let n = s.ingest.changes;
        assert_eq!(s.ingest.accepted, n, "every generated change is accepted");
        assert_eq!(s.ingest.rejected, 0);
        assert_eq!(s.ingest.refused, 0, "every generated record counts");
        assert_eq!(s.ingest.counted, n);
        for x in [
            s.ingest.secs,
            s.ingest.raw_verify_secs,
            s.ingest.automerge_apply_secs,
            s.derive.from_scratch_secs,
            s.derive.raw_read_secs,
        ] {
            assert!(x.is_finite() && x > 0.0, "a measured time: {x}");
        }
        assert!(
            s.derive.raw_read_fields > n,
            "the raw read reads every field"
        );
        assert_eq!(s.incremental.samples, cfg.samples);
        assert!(s.save_bytes > 0 && s.envelope_bytes > s.save_bytes);
    }

    let nodes = report
        .nodes
        .as_ref()
        .expect("the node figures were measured");
    let cu = &nodes.catch_up;
    assert_eq!(cu.changes, cfg.node_size);
    assert!(cu.converged, "newcomer and peer converge");
    assert!(
        cu.connections >= 1,
        "the newcomer went through the counting proxy"
    );
    assert!(
        cu.proxy_bytes > 0,
        "the newcomer went through the counting proxy"
    );
    // Bundled (`/coop/sync/2`): less than the envelopes, but every change's signature
    // crossed. The wire figure is the larger of the proxy's count and the node's own (the
    // node's counter is read as the last change lands, and may still miss that batch).
    assert!(
        cu.wire_bytes >= 64 * cu.changes as u64,
        "every change's signature arrived ({} bytes on the wire for {} changes)",
        cu.wire_bytes,
        cu.changes
    );
    assert!(cu.wire_bytes >= cu.sync_payload_bytes.max(cu.proxy_bytes));
    // The samod row: two samod repos synced the same document over loopback TCP, the
    // newcomer's heads became the holder's, and the time target compares against it.
    let samod = cu
        .samod
        .as_ref()
        .unwrap_or_else(|| panic!("the samod row was measured: {:?}", cu.samod_error));
    assert!(
        samod.converged,
        "samod's newcomer reached the holder's heads"
    );
    assert!(
        samod.bytes_from_holder > 0 && samod.bytes > samod.bytes_from_holder,
        "samod's sync crossed the counting proxy both ways: {samod:?}"
    );
    assert!(samod.secs > 0.0 && samod.secs.is_finite());
    assert_eq!(cu.time_reference, "samod");
    assert!((cu.secs_vs_reference - cu.secs / samod.secs).abs() < 1e-9);

    let p = &nodes.propagation;
    assert_eq!(
        (p.nodes, p.records),
        (cfg.propagation_nodes, cfg.propagation_records)
    );
    assert_eq!(p.delivered, p.records, "every record reached every node");
    assert!(p.counted_everywhere);
    assert!(p.p50_ms <= p.p99_ms && p.p99_ms <= p.max_ms);

    assert_eq!(nodes.cold_start.changes, cfg.node_size);
    assert!(
        nodes.cold_start.balance_minutes.is_some(),
        "the cold start answered a balance"
    );
    assert!(nodes.cold_start.peak_rss_mb > 0.0);
    assert!(nodes.memory.node_peak_rss_mb > nodes.memory.idle_rss_mb);
    assert!(nodes.memory.automerge_peak_rss_mb > 0.0);
    assert_eq!(
        nodes.memory.open_steps_mb.len(),
        4,
        "the shipped open's steps: log replayed, derived-state cache, document, state"
    );
    assert!(
        nodes.cold_start.first_open_secs > 0.0,
        "the first open (no snapshot) was timed too"
    );
    assert!(
        bundled_what_if_computed(&report),
        "the catch-up what-if was computed"
    );

    assert_eq!(report.scaling.len(), cfg.sizes.len());
    // The local API at each size: five reads timed, writes counted.
    assert_eq!(report.api.len(), cfg.api_sizes.len());
    for f in &report.api {
        assert_eq!(f.reads.len(), 5, "{f:?}");
        for r in &f.reads {
            assert!(r.p50_ms > 0.0 && r.p50_ms <= r.p99_ms, "{r:?}");
            assert!(r.answer_bytes > 0, "{r:?}");
        }
        assert_eq!(f.writes, cfg.api_writes);
        assert!(f.writes_per_sec > 0.0);
        assert!(
            f.write_p50_ms > 0.0
                && f.write_p50_ms <= f.write_p99_ms
                && f.write_p99_ms <= f.write_max_ms,
            "{f:?}"
        );
    }
    // Bulk authoring timed at every size (issue 13 item 6), the smallest first.
    let authoring: Vec<usize> = report
        .community
        .authoring
        .iter()
        .map(|a| a.changes)
        .collect();
    let mut sizes: Vec<usize> = cfg.sizes.iter().chain(&cfg.large_node).copied().collect();
    sizes.sort_unstable();
    sizes.dedup();
    assert_eq!(authoring, sizes, "authoring timed at each size");
    for a in &report.community.authoring {
        assert!(a.us_per_change > 0.0 && a.window > 0, "{a:?}");
        assert!(
            a.p99_write_ms > 0.0 && a.p99_write_ms <= a.max_write_ms,
            "{a:?}"
        );
    }
    // The large node's cold start (issue 13 item 5): both opens answered the balance.
    let large = report
        .large_node
        .as_ref()
        .expect("the large node was measured");
    assert_eq!(Some(large.changes), cfg.large_node);
    assert!(large.balance_minutes.is_some(), "{large:?}");
    assert!(large.first_open_peak_rss_mb > 0.0 && large.peak_rss_mb > 0.0);

    // Issue 5's five targets, issue 10's (five reads at the largest size against the
    // smallest, and the write rate), and issue 13's catch-up time against Automerge's sync,
    // cold start, memory, bulk authoring and the large node.
    assert_eq!(report.targets.len(), 5 + 6 + 5, "every target is evaluated");

    let json = serde_json::to_value(&report).expect("the report serialises");
    for key in [
        "sizes",
        "catch_up",
        "propagation",
        "cold_start",
        "memory",
        "scaling",
        "api",
        "targets",
    ] {
        assert!(json.get(key).is_some(), "{key} in the JSON report");
    }
    let table = report.table();
    for figure in [
        "1 ingest",
        "2 derive",
        "3 catch-up",
        "4 propagation",
        "5 cold start",
        "6 memory",
        "7 per change",
        "8 API balance",
        "8 API writes",
        "9 bulk authoring",
        "10 node holding",
    ] {
        assert!(table.contains(figure), "{figure} in the table:\n{table}");
    }
}

fn bundled_what_if_computed(report: &bench::Report) -> bool {
    report.sizes.iter().all(|s| s.bundled_batches_bytes > 0)
        && report
            .nodes
            .as_ref()
            .is_some_and(|n| n.catch_up.bundled_vs_save > 0.0)
}
