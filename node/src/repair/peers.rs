//! The second half of `coop repair`: after the new store is built, the node runs briefly on
//! it and asks its peers for the rest. Catch-up sync brings back whatever a peer holds —
//! including this node's own changes that the damaged store lost, if they were gossiped
//! before the damage. It stops once caught up with the peers it reached, or at a deadline.

use std::time::{Duration, Instant};

use coop_model::RecordId;
use serde::{Deserialize, Serialize};

use super::RepairReport;
use crate::datadir::DataDir;
use crate::error::NodeError;
use crate::run::{self, RunOptions};

/// How often the pull looks at the node's progress.
const POLL: Duration = Duration::from_millis(200);
/// Sync rounds with no new change, per connected peer, that count as caught up.
const QUIET_ROUNDS_PER_PEER: u64 = 2;

/// Where a pull from peers stands (for progress lines).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PullProgress {
    /// Peers connected now.
    pub connected: usize,
    /// Changes the store holds now.
    pub changes: usize,
    /// Sync rounds completed.
    pub sync_rounds: u64,
    /// Time since the node started.
    pub elapsed: Duration,
}

/// What asking the peers brought back.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Pulled {
    /// Most peers connected at once.
    pub peers: usize,
    /// Changes in the store after.
    pub changes_after: usize,
    /// Sync rounds completed.
    pub sync_rounds: u64,
    /// Whether the deadline ended the pull before it was caught up with a peer.
    pub timed_out: bool,
}

/// Runs the node of `dir` with `opts` (mDNS, peers, listen addresses) until it has caught
/// up with the peers it reached — every connected peer answered two
/// sync rounds with nothing new and nothing waits for a dependency — or `wait` passed.
/// The API and the app are not served meanwhile.
pub async fn pull_from_peers(
    dir: &DataDir,
    mut opts: RunOptions,
    wait: Duration,
    mut progress: impl FnMut(&PullProgress),
) -> Result<Pulled, NodeError> {
    opts.ui = false;
    opts.sync_interval = opts.sync_interval.min(Duration::from_secs(1));
    let started = Instant::now();
    let node = run::start(dir.clone(), opts).await?;
    let mut peers = 0;
    // Sync rounds counted when the change count last moved (or the first peer came).
    let mut settled_from: Option<(usize, u64)> = None;
    let result = loop {
        let status = match node.status().await {
            Ok(s) => s,
            Err(e) => break Err(e),
        };
        let stats = node.net_stats();
        peers = peers.max(stats.connected);
        let now = PullProgress {
            connected: stats.connected,
            changes: status.changes,
            sync_rounds: stats.sync_rounds,
            elapsed: started.elapsed(),
        };
        progress(&now);
        if stats.connected > 0 {
            match settled_from {
                Some((changes, _)) if changes == status.changes => {}
                _ => settled_from = Some((status.changes, stats.sync_rounds)),
            }
        }
        let quiet_since = settled_from.map(|(_, rounds)| stats.sync_rounds.saturating_sub(rounds));
        let needed = QUIET_ROUNDS_PER_PEER * stats.connected.max(1) as u64;
        if stats.connected > 0 && status.pending == 0 && quiet_since >= Some(needed) {
            break Ok(false);
        }
        if started.elapsed() >= wait {
            break Ok(true);
        }
        tokio::time::sleep(POLL).await;
    };
    let after = node.status().await.map(|s| s.changes);
    node.shutdown().await?;
    let timed_out = result?;
    let stats = node.net_stats();
    Ok(Pulled {
        peers,
        changes_after: after?,
        sync_rounds: stats.sync_rounds,
        timed_out,
    })
}

impl RepairReport {
    /// Takes into account what the peers sent back to the store this report built:
    /// changes it could not restore that the store now `holds` are no longer missing.
    pub fn account_for(&mut self, pulled: &Pulled, holds: impl Fn(&RecordId) -> bool) {
        self.not_restored
            .retain(|n| !n.id.as_ref().is_some_and(&holds));
        // A sync can finish before the node's first status answer: count from the store
        // the repair built, not from the running node.
        self.recovered_from_peers = pulled.changes_after.saturating_sub(self.total);
        self.total = pulled.changes_after;
        self.missing_at_least = self
            .recorded
            .map_or(0, |r| r.saturating_sub(self.total as u64));
        self.pulled = Some(pulled.clone());
    }
}
