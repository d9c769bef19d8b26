//! The integration tests of `coop-model`, as one test binary (one link, one run).
//!
//! Topic files live in `tests/model/`: `support` and `script` are shared helpers, the rest
//! are tests grouped by what they exercise.

// `Rejection` is the library's refusal value; helpers return it as the library does.
#![allow(clippy::result_large_err)]

#[path = "model/support.rs"]
mod support;

#[path = "model/script.rs"]
mod script;

#[path = "model/fixtures.rs"]
mod fixtures;

#[path = "model/concurrency.rs"]
mod concurrency;

#[path = "model/attacks.rs"]
mod attacks;

#[path = "model/receipts.rs"]
mod receipts;

#[path = "model/timebank.rs"]
mod timebank;

#[path = "model/convergence.rs"]
mod convergence;

#[path = "model/fuzz.rs"]
mod fuzz;

#[path = "model/sync.rs"]
mod sync;

#[path = "model/governance.rs"]
mod governance;
#[path = "model/metrics.rs"]
mod metrics;
#[path = "model/pools.rs"]
mod pools;
#[path = "model/purchase.rs"]
mod purchase;
