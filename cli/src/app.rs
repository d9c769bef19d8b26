//! What every command shares: the data dir, the clock, the output mode, name resolution,
//! and the [`Report`] a command hands back for printing.

use std::path::PathBuf;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::{Context, Result};
use coop_model::query::Family;
use coop_model::{Kind, MemberId, RecordId, State};
use coop_node::{Backend, DataDir, NodeError};

/// How long a command waits for a store another coop process holds.
pub(crate) const LOCK_WAIT: Duration = Duration::from_secs(15);
use serde_json::Value;

/// The context of one `coop` invocation.
#[derive(Debug)]
pub(crate) struct App {
    /// The member's data directory.
    pub(crate) dir: DataDir,
    /// The system clock at start, Unix seconds; passed down, never read below the CLI.
    pub(crate) now: i64,
}

/// What a command prints: JSON for `--json`, text otherwise. `failed` makes the exit code 1
/// after printing (e.g. `coop verify` finding a bad record).
#[derive(Debug)]
#[must_use = "a command's report is its output and its exit status: print it"]
pub(crate) struct Report {
    pub(crate) json: Value,
    pub(crate) text: String,
    pub(crate) failed: bool,
}

impl Report {
    pub(crate) fn new(json: Value, text: impl Into<String>) -> Report {
        Report {
            json,
            text: text.into(),
            failed: false,
        }
    }
}

impl App {
    pub(crate) fn new(data_dir: Option<PathBuf>) -> Result<App> {
        let root = match data_dir {
            Some(d) => d,
            None => default_data_dir()?,
        };
        // `COOP_NOW` (Unix seconds) sets the time this invocation claims in what it writes
        // and uses for "now" in queries: for replaying a scenario and for tests that must
        // get past a voting window or a deadline without waiting for it.
        let now = match std::env::var("COOP_NOW") {
            Ok(v) => crate::parse::unix_seconds(&v)
                .ok()
                .with_context(|| format!("COOP_NOW must be Unix seconds, got {v:?}"))?,
            Err(_) => unix_now(),
        };
        Ok(App {
            dir: DataDir::new(root),
            now,
        })
    }

    /// The running node if `coop up` serves the data dir, else the store. Another command
    /// may hold the store for a moment (or `coop up` may be starting): wait a little for it.
    pub(crate) fn backend(&self) -> Result<Backend> {
        let start = Instant::now();
        loop {
            match Backend::open(&self.dir) {
                Err(NodeError::Locked(_)) if start.elapsed() < LOCK_WAIT => {
                    std::thread::sleep(Duration::from_millis(100));
                }
                r => return Ok(r?),
            }
        }
    }

    /// [`view`] through a backend opened for it.
    pub(crate) fn view(&self, family: Family) -> Result<State> {
        view(&mut self.backend()?, family)
    }

    /// This data dir's member.
    pub(crate) fn me(&self) -> Result<MemberId> {
        // The configuration check names the missing `coop init` in one clear line.
        self.dir.config()?;
        Ok(self.dir.member()?)
    }
}

/// The platform data directory (e.g. `~/.local/share/coop` on Linux).
pub(crate) fn default_data_dir() -> Result<PathBuf> {
    directories::ProjectDirs::from("", "", "coop")
        .map(|p| p.data_dir().to_path_buf())
        .context("no home directory to keep coop's data in; pass --data-dir DIR")
}

/// Now, in Unix seconds.
pub(crate) fn unix_now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64)
}

/// A member by display name (in any case) or unique id prefix; an ambiguous name or prefix
/// lists the candidates.
pub(crate) fn member(state: &State, query: &str) -> Result<MemberId> {
    Ok(coop_model::query::find_member(
        state
            .members
            .values()
            .map(|m| (m.id, m.display_name.as_str())),
        query,
    )?)
}

/// A record of `family`'s kinds by unique id prefix among the records `state` holds (a
/// [`view`] of that family); an ambiguous prefix lists the candidates, one line each.
pub(crate) fn record(family: Family, state: &State, query: &str) -> Result<RecordId> {
    Ok(coop_model::query::find_record_in(&state.log, family.kinds(), query)?.id)
}

/// A record of one of `kinds` (any kind when empty) by unique id prefix, over the ledger.
pub(crate) fn find(b: &mut Backend, kinds: &[Kind], query: &str) -> Result<RecordId> {
    Ok(b.find_record(kinds, query)?.id)
}

/// What a command of `family` needs of the ledger, as a [`State`] holding only those parts
/// (`coop_model::query::FamilyView::into_state`): never the whole derived state.
pub(crate) fn view(b: &mut Backend, family: Family) -> Result<State> {
    Ok(b.view(family)?.into_state())
}

/// Whether moderators hid a record.
pub(crate) fn hidden(state: &State, id: &RecordId) -> bool {
    state.hidden.contains_key(id)
}

/// Position of each record in the total order (for newest-first listings).
pub(crate) fn positions(state: &State) -> std::collections::HashMap<RecordId, usize> {
    state.log.iter().map(|e| (e.id, e.position)).collect()
}
