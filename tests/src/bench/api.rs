//! Figure 8: the local API of a running node, as the `coop` command uses it. The reads
//! behind `coop balance`, `members`, `ledger --limit 20`, `inbox` and `profile` — one
//! connection per request over `api.sock`, like the command — timed at each ledger size
//! (p50, p99), and sequential writes (`POST /records`, one attestation at a time, each
//! durable before the next) per second, with their p50, p99 and slowest (quick and full
//! runs write past one document batch, so that the write a batch lands on is among them).
//! The targets of issue 10: each read at the largest size within 1.5× of the same read at
//! the smallest; ≥ 200 sequential writes/s at the largest.

use std::path::Path;
use std::time::{Duration, Instant};

use coop_model::{record, Day, Record};
use coop_node::api::{ApiClient, WriteRequest, Written};
use coop_node::run::start;
use serde::Serialize;

use super::community::Community;
use super::net::{member_dir, options, percentile};
use super::BenchError;

/// How long a request may take before the figure fails.
const CALL_DEADLINE: Duration = Duration::from_secs(60);

/// One read, timed.
#[derive(Debug, Clone, Serialize)]
pub struct ReadFigure {
    /// The command it stands for, e.g. `ledger --limit 20`.
    pub command: String,
    /// The API path.
    pub path: String,
    /// Median, ms.
    pub p50_ms: f64,
    /// 99th percentile, ms.
    pub p99_ms: f64,
    /// Bytes of the answer.
    pub answer_bytes: usize,
}

/// The API figures at one ledger size.
#[derive(Debug, Clone, Serialize)]
pub struct ApiFigure {
    /// Changes the node holds.
    pub changes: usize,
    /// Requests per read.
    pub samples: usize,
    /// The reads.
    pub reads: Vec<ReadFigure>,
    /// Sequential writes measured.
    pub writes: usize,
    /// Sequential writes per second (each answered, so durable, before the next).
    pub writes_per_sec: f64,
    /// Median time of one write, ms.
    pub write_p50_ms: f64,
    /// 99th percentile of one write, ms.
    pub write_p99_ms: f64,
    /// The slowest write, ms: a write on which a document batch lands shows here (the
    /// writes run past one batch when asked to).
    pub write_max_ms: f64,
    /// Whether the writes ran past the point where the node's waiting changes make a
    /// document batch (`coop_model::ledger::doc_batch_for`).
    pub past_doc_batch: bool,
}

/// Measures the API of a node holding the first `changes` changes of `c`, as the community's
/// first member (the founder).
pub fn measure(
    root: &Path,
    c: &Community,
    changes: usize,
    samples: usize,
    writes: usize,
    past_doc_batch: bool,
) -> Result<ApiFigure, BenchError> {
    // The node applies everything to its document as it opens; its writes then wait for
    // the document until they are a batch, which lands on one write (or is handed off).
    let writes = if past_doc_batch {
        writes.max(coop_model::ledger::doc_batch_for(changes) + 64)
    } else {
        writes
    };
    let who = &c.members[0];
    let dir = member_dir(
        root,
        &format!("api-{changes}"),
        who,
        c.id,
        &c.envelopes[..changes],
    )?;
    // The node runs on its own runtime; the blocking client below (like `coop`) calls it
    // from this thread, outside any runtime.
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    let node = rt.block_on(start(dir.clone(), options(Vec::new())))?;
    let client = ApiClient::new(&dir.api_socket())?.with_timeout(CALL_DEADLINE);
    let me = who.id.to_hex();
    let now = c.last_time;
    let reads = [
        ("balance", format!("/members/{me}/balance?now={now}")),
        ("members", "/members".to_string()),
        ("ledger --limit 20", "/ledger?limit=20".to_string()),
        ("inbox", format!("/inbox?now={now}")),
        ("profile", format!("/members/{me}")),
    ];
    let mut figures = Vec::new();
    for (command, path) in reads {
        // One untimed call first: the answer's size, and a check that the read works.
        let answer: serde_json::Value = client.get(&path)?;
        let answer_bytes = serde_json::to_vec(&answer).map_or(0, |b| b.len());
        let mut ms = Vec::with_capacity(samples);
        for _ in 0..samples {
            let t = Instant::now();
            let _: serde_json::Value = client.get(&path)?;
            ms.push(t.elapsed().as_secs_f64() * 1e3);
        }
        figures.push(ReadFigure {
            command: command.into(),
            path,
            p50_ms: percentile(&mut ms, 50.0),
            p99_ms: percentile(&mut ms, 99.0),
            answer_bytes,
        });
    }
    let to = c.members[1].id;
    let mut each = Vec::with_capacity(writes);
    let started = Instant::now();
    for i in 0..writes {
        let claimed = now + 60 * (i as i64 + 1);
        let req = WriteRequest {
            record: Record::Attest(record::Attest {
                to,
                minutes: coop_model::Minutes(15),
                service: format!("api write sample {i}"),
                category: "it help".into(),
                date: Day::from_unix(claimed),
            }),
            now: Some(claimed),
        };
        let t = Instant::now();
        let _: Written = client.post("/records", &req)?;
        each.push(t.elapsed().as_secs_f64() * 1e3);
    }
    let secs = started.elapsed().as_secs_f64();
    rt.block_on(node.shutdown())?;
    Ok(ApiFigure {
        changes,
        samples,
        reads: figures,
        writes,
        writes_per_sec: writes as f64 / secs.max(1e-9),
        write_p50_ms: percentile(&mut each, 50.0),
        write_p99_ms: percentile(&mut each, 99.0),
        write_max_ms: each.iter().copied().fold(0.0, f64::max),
        past_doc_batch,
    })
}
