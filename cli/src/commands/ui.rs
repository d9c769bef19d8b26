//! `coop ui`: the app's URL with a fresh one-time login token, opened in the browser where
//! one can be opened (docs/APP.md).

use std::process::{Command, Stdio};

use anyhow::{bail, Result};
use serde_json::json;

use crate::app::{App, Report};
use crate::commands::membership::running_status;

/// Prints (and, unless `no_open`, opens) the login URL of this data dir's running node.
pub(crate) fn ui(app: &App, no_open: bool) -> Result<Report> {
    if running_status(&app.dir).is_none() {
        bail!(
            "no node is running for {}; start it with `coop up` (or `coop service install`) first",
            app.dir.root().display()
        );
    }
    let Some(url) = coop_node::app::login_url(&app.dir)? else {
        bail!("this node does not serve the app (it was started with --no-ui); restart it without --no-ui");
    };
    let opened = if no_open { None } else { Some(open(&url)) };
    let mut text = format!(
        "Open the app: {url}\n(the link logs in once; run `coop ui` again for a new one)\n"
    );
    match &opened {
        Some(Ok(())) => text.push_str("Opened in your browser.\n"),
        Some(Err(why)) => text.push_str(&format!(
            "Could not open a browser ({why}): open the link yourself.\n"
        )),
        None => {}
    }
    Ok(Report::new(
        json!({ "url": url, "opened": matches!(opened, Some(Ok(()))) }),
        text.trim_end().to_string(),
    ))
}

/// Opens a URL with the desktop's opener (`xdg-open`; `open` on macOS).
fn open(url: &str) -> Result<(), String> {
    let opener = if cfg!(target_os = "macos") {
        "open"
    } else {
        "xdg-open"
    };
    let child = Command::new(opener)
        .arg(url)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn();
    match child {
        // The opener hands the URL to the browser and returns; do not wait on the browser.
        Ok(mut c) => match c.wait() {
            Ok(s) if s.success() => Ok(()),
            Ok(s) => Err(format!("{opener} exited with {s}")),
            Err(e) => Err(format!("{opener}: {e}")),
        },
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            Err(format!("{opener} is not installed"))
        }
        Err(e) => Err(format!("{opener}: {e}")),
    }
}
