//! `coop completions SHELL` and `coop man`: generated from the command definitions, so
//! they never drift from `--help`.

use std::path::Path;

use anyhow::{Context, Result};
use clap::CommandFactory;
use serde_json::json;

use crate::app::Report;
use crate::cli::Cli;

pub(crate) fn completions(shell: clap_complete::Shell) -> Result<Report> {
    let mut cmd = Cli::command();
    let mut out = Vec::new();
    clap_complete::generate(shell, &mut cmd, "coop", &mut out);
    let script = String::from_utf8(out).context("the completion script is not UTF-8")?;
    Ok(Report::new(
        json!({ "shell": shell.to_string(), "script": script }),
        script,
    ))
}

pub(crate) fn man(out: Option<&Path>) -> Result<Report> {
    let cmd = Cli::command();
    let Some(dir) = out else {
        let mut page = Vec::new();
        clap_mangen::Man::new(cmd).render(&mut page)?;
        let page = String::from_utf8(page).context("the man page is not UTF-8")?;
        return Ok(Report::new(json!({ "page": page }), page));
    };
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    clap_mangen::generate_to(cmd, dir)
        .with_context(|| format!("writing man pages to {}", dir.display()))?;
    let mut pages: Vec<String> = std::fs::read_dir(dir)?
        .filter_map(|e| e.ok())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".1"))
        .collect();
    pages.sort();
    let text = format!("Wrote {} man page(s) to {}.\n", pages.len(), dir.display());
    Ok(Report::new(json!({ "dir": dir, "pages": pages }), text))
}
