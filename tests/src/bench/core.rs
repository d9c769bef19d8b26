//! The in-memory figures — ingest, derivation from scratch, incremental update — each
//! measured beside the raw cost of the part coop is made of, in the same run and on the
//! same changes: ed25519 `verify_strict`, Automerge `apply_changes`, an Automerge read of
//! every field.
//!
//! Timings are the best of `reps` runs, the coop figure and its baselines interleaved so
//! that a noisy neighbour slows both alike.

use coop_model::record;
use std::collections::HashMap;
use std::time::Instant;

use automerge::{Automerge, Change, ReadDoc, ScalarValueRef, ValueRef, ROOT};
use coop_model::envelope::signing_message;
use coop_model::{Day, Envelope, Ledger, Record};
use ed25519_dalek::{Signature, VerifyingKey};
use serde::Serialize;

use super::community::Community;
use super::BenchError;

/// Figure 1: ingest of a whole batch, and its baselines.
#[derive(Debug, Clone, Serialize)]
pub struct IngestFigure {
    /// Changes in the batch.
    pub changes: usize,
    /// Signature-verification threads coop used (`available_parallelism`).
    pub verify_threads: usize,
    /// Runs; every time below is the best of them.
    pub reps: usize,
    /// `Ledger::ingest` of the batch then `state()`: verified, gated, applied, derived.
    pub secs: f64,
    /// Of which `ingest` (the rest is the first `state()`).
    pub ingest_secs: f64,
    /// Changes per second through ingest + state.
    pub per_sec: f64,
    /// Raw `verify_strict` of one signature per change, one thread, keys pre-parsed.
    pub raw_verify_secs: f64,
    /// Signatures per second, raw.
    pub raw_verify_per_sec: f64,
    /// coop's rate ÷ the raw verify rate (target ≥ 0.8).
    pub vs_raw_verify: f64,
    /// Raw Automerge: decoding the change chunks.
    pub automerge_decode_secs: f64,
    /// Raw Automerge: `apply_changes` of the decoded changes in one batch.
    pub automerge_apply_secs: f64,
    /// coop's time ÷ Automerge's apply time.
    pub vs_automerge_apply: f64,
    /// Changes accepted.
    pub accepted: usize,
    /// Changes refused by the gate (expected 0).
    pub rejected: usize,
    /// Records that count in the derived state.
    pub counted: usize,
    /// Records derivation refused (expected 0 for a generated ledger).
    pub refused: usize,
}

/// Figure 2: derivation from scratch, and its baseline.
#[derive(Debug, Clone, Serialize)]
pub struct DeriveFigure {
    /// Changes in the ledger.
    pub changes: usize,
    /// Runs; times are the best of them.
    pub reps: usize,
    /// `Ledger::derive_from_scratch`.
    pub from_scratch_secs: f64,
    /// Reading every field of every record through the Automerge API.
    pub raw_read_secs: f64,
    /// Fields read by the raw read.
    pub raw_read_fields: usize,
    /// From scratch ÷ raw read (target ≤ 1.5).
    pub vs_raw_read: f64,
    /// Digest of the derived state (the same seed gives the same digest on any machine).
    pub state_digest: String,
}

/// Figure 2b: the cost of one more change on a ledger of `base_changes`.
#[derive(Debug, Clone, Serialize)]
pub struct IncrementalFigure {
    /// Changes held before the samples.
    pub base_changes: usize,
    /// Changes measured (each kind).
    pub samples: usize,
    /// A peer's change arriving: `ingest` of one envelope (gate, signature) then `state()`, mean µs.
    pub ingest_and_state_us: f64,
    /// Writing one record: `Ledger::author` then `state()`, mean µs.
    pub author_and_state_us: f64,
    /// Of which `state()` alone (the incremental fold), mean µs.
    pub state_us: f64,
}

/// Everything measured in memory at one size.
#[derive(Debug, Clone, Serialize)]
pub struct SizeFigures {
    /// Figure 1.
    pub ingest: IngestFigure,
    /// Figure 2.
    pub derive: DeriveFigure,
    /// Figure 2b.
    pub incremental: IncrementalFigure,
    /// Automerge `save()` of the document, bytes.
    pub save_bytes: usize,
    /// Sum of the encoded envelopes, bytes.
    pub envelope_bytes: usize,
    /// What-if for catch-up: every sync batch (`SYNC_BATCH` changes) as an Automerge
    /// bundle (the experimental compact encoding of a set of changes, the same tricks as
    /// `save()`) plus one 64-byte signature per change, bytes.
    pub bundled_batches_bytes: usize,
    /// The same with the whole ledger as one bundle (the floor of that design), bytes.
    pub bundled_whole_bytes: usize,
}

/// One change prepared for the raw signature baseline.
struct Signed {
    key: usize,
    message: Vec<u8>,
    signature: Signature,
}

/// Measures figures 1, 2 and 2b on the first `n` changes of a community. Also returns the
/// Automerge `save()` of those `n` changes (the memory and catch-up baselines).
pub fn measure(
    c: &Community,
    n: usize,
    reps: usize,
    samples: usize,
    threads: usize,
) -> Result<(SizeFigures, Vec<u8>), BenchError> {
    let envs = c.envelopes.get(..n).ok_or_else(|| {
        BenchError::new(format!(
            "the community has {} changes, {n} asked",
            c.envelopes.len()
        ))
    })?;
    let (keys, signed) = prepare_signatures(c, envs)?;
    let mut best = Best::default();
    let mut ledger = None;
    for _ in 0..reps.max(1) {
        // The baselines first, so that their memory is freed before coop's ledger is built.
        best.verify = best.verify.min(raw_verify(&keys, &signed)?);

        let t = Instant::now();
        let changes: Vec<Change> = envs
            .iter()
            .map(|e| Change::try_from(e.change.as_slice()))
            .collect::<Result<_, _>>()
            .map_err(|e| BenchError::new(format!("a generated change does not decode: {e}")))?;
        best.decode = best.decode.min(t.elapsed().as_secs_f64());
        let mut doc = Automerge::new();
        let t = Instant::now();
        doc.apply_changes(changes)
            .map_err(|e| BenchError::new(format!("Automerge refused the changes: {e}")))?;
        best.apply = best.apply.min(t.elapsed().as_secs_f64());
        drop(doc);

        // coop: the whole batch through the gate, then derived. The previous run's
        // ledger is dropped first, outside the timed section.
        drop(ledger.take());
        let batch = envs.to_vec();
        let mut l = Ledger::new(c.id);
        l.set_verify_threads(threads);
        // As the node does: a secret seed for batch verification's coefficients (the
        // accepted set and the cost do not depend on its value).
        l.set_batch_seed(rand::random());
        let t = Instant::now();
        let out = l.ingest(batch);
        let ingest_secs = t.elapsed().as_secs_f64();
        let state = l.state();
        let secs = t.elapsed().as_secs_f64();
        let (counted, refused) = (state.counted, state.refused);
        if secs < best.coop {
            best.coop = secs;
            best.coop_ingest = ingest_secs;
        }
        best.outcome = (out.accepted.len(), out.rejected.len(), counted, refused);
        drop(out);
        ledger = Some(l);
    }
    let mut ledger = ledger.ok_or_else(|| BenchError::new("no run"))?;
    let (accepted, rejected, counted, refused) = best.outcome;
    let ingest = IngestFigure {
        changes: n,
        verify_threads: threads,
        reps: reps.max(1),
        secs: best.coop,
        ingest_secs: best.coop_ingest,
        per_sec: n as f64 / best.coop,
        raw_verify_secs: best.verify,
        raw_verify_per_sec: n as f64 / best.verify,
        vs_raw_verify: best.verify / best.coop,
        automerge_decode_secs: best.decode,
        automerge_apply_secs: best.apply,
        vs_automerge_apply: best.coop / best.apply,
        accepted,
        rejected,
        counted,
        refused,
    };

    let derive = measure_derive(&mut ledger, reps)?;
    let save = ledger.doc().save();
    let bundled_batches_bytes = bundled(&mut ledger, envs, coop_node::wire::SYNC2_BATCH)?;
    let bundled_whole_bytes = bundled(&mut ledger, envs, envs.len().max(1))?;
    let incremental = measure_incremental(c, &mut ledger, n, samples)?;
    let envelope_bytes = envs.iter().map(|e| e.encode().len()).sum();
    drop(ledger);
    Ok((
        SizeFigures {
            ingest,
            derive,
            incremental,
            save_bytes: save.len(),
            envelope_bytes,
            bundled_batches_bytes,
            bundled_whole_bytes,
        },
        save,
    ))
}

#[derive(Debug)]
struct Best {
    coop: f64,
    coop_ingest: f64,
    verify: f64,
    decode: f64,
    apply: f64,
    outcome: (usize, usize, usize, usize),
}

impl Default for Best {
    fn default() -> Self {
        Best {
            coop: f64::INFINITY,
            coop_ingest: f64::INFINITY,
            verify: f64::INFINITY,
            decode: f64::INFINITY,
            apply: f64::INFINITY,
            outcome: (0, 0, 0, 0),
        }
    }
}

/// The size of the catch-up what-if: each batch of `batch` changes as an Automerge
/// bundle, plus one signature per change.
fn bundled(ledger: &mut Ledger, envs: &[Envelope], batch: usize) -> Result<usize, BenchError> {
    let doc = ledger.doc();
    let mut bytes = 0;
    for batch in envs.chunks(batch) {
        let hashes = batch
            .iter()
            .map(|e| e.record_id().map(|id| id.change_hash()))
            .collect::<Option<Vec<_>>>()
            .ok_or_else(|| BenchError::new("a generated change has no id"))?;
        let bundle = doc
            .bundle(hashes)
            .map_err(|e| BenchError::new(format!("Automerge cannot bundle a batch: {e}")))?;
        bytes += bundle.bytes().len() + batch.len() * 64;
    }
    Ok(bytes)
}

/// The device keys (parsed once each) and, per change, the message its device signed.
fn prepare_signatures(
    c: &Community,
    envs: &[Envelope],
) -> Result<(Vec<VerifyingKey>, Vec<Signed>), BenchError> {
    let mut index: HashMap<Vec<u8>, usize> = HashMap::new();
    let mut keys = Vec::new();
    let mut signed = Vec::with_capacity(envs.len());
    for e in envs {
        let change = Change::try_from(e.change.as_slice())
            .map_err(|e| BenchError::new(format!("a generated change does not decode: {e}")))?;
        let actor = change.actor_id().to_bytes().to_vec();
        let key = match index.get(&actor) {
            Some(&k) => k,
            None => {
                let bytes: [u8; 32] = actor
                    .as_slice()
                    .try_into()
                    .map_err(|_| BenchError::new("an actor id is not a key"))?;
                let vk = VerifyingKey::from_bytes(&bytes)
                    .map_err(|e| BenchError::new(format!("a device key does not parse: {e}")))?;
                keys.push(vk);
                index.insert(actor, keys.len() - 1);
                keys.len() - 1
            }
        };
        signed.push(Signed {
            key,
            message: signing_message(&c.id, &e.doc, &change.hash().0),
            signature: Signature::from_bytes(&e.signature),
        });
    }
    Ok((keys, signed))
}

/// One thread, one `verify_strict` per change.
fn raw_verify(keys: &[VerifyingKey], signed: &[Signed]) -> Result<f64, BenchError> {
    let t = Instant::now();
    let mut ok = true;
    for s in signed {
        ok &= keys[s.key].verify_strict(&s.message, &s.signature).is_ok();
    }
    let secs = t.elapsed().as_secs_f64();
    if !ok {
        return Err(BenchError::new("a generated signature does not verify"));
    }
    Ok(secs)
}

fn measure_derive(ledger: &mut Ledger, reps: usize) -> Result<DeriveFigure, BenchError> {
    let changes = ledger.len();
    let state_digest = ledger.state().digest().expect("the state serializes");
    let mut scratch = f64::INFINITY;
    let mut read = f64::INFINITY;
    let mut fields = 0;
    for _ in 0..reps.max(1) {
        let t = Instant::now();
        let s = ledger.derive_from_scratch();
        scratch = scratch.min(t.elapsed().as_secs_f64());
        if s.digest().expect("the state serializes") != state_digest {
            return Err(BenchError::new(
                "derivation from scratch differs from the incremental state",
            ));
        }
        drop(s);
        let doc = ledger.doc();
        let t = Instant::now();
        let (n, checksum) = raw_read(doc);
        read = read.min(t.elapsed().as_secs_f64());
        fields = n;
        // Keep the read from being optimised away.
        std::hint::black_box(checksum);
    }
    Ok(DeriveFigure {
        changes,
        reps: reps.max(1),
        from_scratch_secs: scratch,
        raw_read_secs: read,
        raw_read_fields: fields,
        vs_raw_read: scratch / read,
        state_digest,
    })
}

/// Reads every field of every record map at the document root; returns the number of
/// fields and a checksum of what was read.
pub fn raw_read(doc: &Automerge) -> (usize, u64) {
    let mut fields = 0usize;
    let mut sum = 0u64;
    for record in doc.map_range(ROOT, ..) {
        sum = sum.wrapping_add(record.key.len() as u64);
        let obj = record.id();
        for field in doc.map_range(&obj, ..) {
            fields += 1;
            sum = sum.wrapping_add(field.key.len() as u64);
            sum = sum.wrapping_add(match field.value {
                ValueRef::Scalar(ScalarValueRef::Str(s)) => s.len() as u64,
                ValueRef::Scalar(ScalarValueRef::Bytes(b)) => u64::from(b[0]) + b.len() as u64,
                ValueRef::Scalar(ScalarValueRef::Int(i)) => i as u64,
                ValueRef::Scalar(ScalarValueRef::Uint(u)) => u,
                _ => 1,
            });
        }
    }
    (fields, sum)
}

fn measure_incremental(
    c: &Community,
    ledger: &mut Ledger,
    n: usize,
    samples: usize,
) -> Result<IncrementalFigure, BenchError> {
    let next = c.envelopes.get(n..n + samples).ok_or_else(|| {
        BenchError::new(format!(
            "the community needs {samples} changes beyond {n} for the incremental figure"
        ))
    })?;
    let _ = ledger.state();
    let mut ingest_total = 0.0;
    for env in next {
        let env = env.clone();
        let t = Instant::now();
        let out = ledger.ingest([env]);
        let _ = ledger.state();
        ingest_total += t.elapsed().as_secs_f64();
        if out.accepted.len() != 1 {
            return Err(BenchError::new("a generated change was not accepted"));
        }
    }
    // Two early members attest hours to each other, alternately.
    let (a, b) = (&c.members[1], &c.members[2]);
    let (ka, kb) = (a.device(0), b.device(0));
    let (mut author_total, mut state_total) = (0.0, 0.0);
    let mut time = c.last_time;
    for i in 0..samples {
        time += 60;
        let (key, to) = if i % 2 == 0 { (&ka, b.id) } else { (&kb, a.id) };
        let record = Record::Attest(record::Attest {
            to,
            minutes: coop_model::Minutes(60),
            service: "helped with the incremental benchmark".into(),
            category: "it help".into(),
            date: Day::from_unix(time),
        });
        let t = Instant::now();
        ledger
            .author(key, record, time)
            .map_err(|r| BenchError::new(format!("authoring a sample was refused: {r}")))?;
        let t2 = Instant::now();
        let _ = ledger.state();
        state_total += t2.elapsed().as_secs_f64();
        author_total += t.elapsed().as_secs_f64();
    }
    let us = |total: f64| total * 1e6 / samples.max(1) as f64;
    Ok(IncrementalFigure {
        base_changes: n,
        samples,
        ingest_and_state_us: us(ingest_total),
        author_and_state_us: us(author_total),
        state_us: us(state_total),
    })
}
