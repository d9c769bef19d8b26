//! The integration tests of `coop-model`, as one test binary (one link, one run).
//!
//! Topic files live beside this one in `tests/model/`: `support` and `script` are shared helpers, the rest
//! are tests grouped by what they exercise.

// `Rejection` is the library's refusal value; helpers return it as the library does.
#![allow(clippy::result_large_err)]
mod attacks;
mod authoring;
mod concurrency;
mod convergence;
mod derived_cache;
mod devices;
mod fixtures;
mod fuzz;
mod governance;
mod indexes;
mod metrics;
mod pools;
mod purchase;
mod receipts;
mod recovery;
mod rename;
mod reopen;
mod script;
mod signatures;
mod support;
mod sync;
mod timebank;
