//! `coop repair`: a new store from what the damaged one still holds plus a sync file.

use std::path::Path;

use anyhow::{bail, Result};
use coop_node::NodeError;
use serde_json::json;

use crate::app::{App, Report};
use crate::syncfile;

pub(crate) fn repair(app: &App, from: Option<&Path>) -> Result<Report> {
    let community = app.dir.config()?.community.ok_or(NodeError::NoCommunity)?;
    let sources = match from {
        None => Vec::new(),
        Some(file) => {
            let (theirs, envelopes) = syncfile::import(file)?;
            if theirs != community {
                bail!(
                    "{} carries changes of community {}, but this node belongs to {}; nothing was repaired",
                    file.display(),
                    theirs.short(),
                    community.short()
                );
            }
            envelopes
        }
    };
    // Pulling from the peers of a running node is not done here: repair needs the store,
    // so `coop up` must be stopped; its peers' changes come back by sync once it restarts.
    let r = coop_node::repair::repair(&app.dir, sources, &app.now.to_string())?;
    let mut text = format!(
        "Repaired the store of {}: {} change(s) in the new store, {} from the damaged store and {} only {} had.\n",
        app.dir.root().display(),
        r.total,
        r.recovered_from_store,
        r.recovered_from_sources,
        from.map_or("other sources".into(), |f| f.display().to_string()),
    );
    text.push_str(&format!(
        "The damaged store is kept at {}.\n",
        r.kept_aside.display()
    ));
    if let Some(e) = &r.read_error {
        text.push_str(&format!(
            "Reading the damaged store stopped early ({e}); {} entr(y/ies) were read.\n",
            r.read_from_store
        ));
    }
    if r.missing_at_least > 0 {
        text.push_str(&format!(
            "MISSING: the damaged store recorded {} change(s); at least {} are in no source. A peer that has them sends them back at the next sync.\n",
            r.recorded.unwrap_or_default(),
            r.missing_at_least
        ));
    }
    let own: Vec<_> = r.own_lost().collect();
    if !own.is_empty() {
        text.push_str(&format!(
            "LOST: {} of your own change(s) could not be restored (no peer can send them back):\n",
            own.len()
        ));
        for n in &own {
            let id = n.id.map_or("(unknown id)".into(), |id| id.to_hex());
            text.push_str(&format!("  {id}: {}\n", n.reason));
        }
    }
    let others = r.not_restored.len() - own.len();
    if others > 0 {
        text.push_str(&format!(
            "{others} other change(s) read from the damaged store were not restored (a peer may still hold them).\n"
        ));
    }
    if r.refused_from_sources > 0 {
        text.push_str(&format!(
            "{} change(s) from the sync file were refused by the gate.\n",
            r.refused_from_sources
        ));
    }
    text.push_str("Run `coop verify` to check the new store.\n");
    let json = json!({
        "report": r,
        "own_lost": own.iter().map(|n| n.id).collect::<Vec<_>>(),
    });
    Ok(Report::new(json, text))
}
