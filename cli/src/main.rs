//! `coop`: a member's command line on the cooperative's ledger.
//!
//! A thin binary over `coop-node` (store, network, local API) and `coop-model` (the
//! ledger's rules). It parses arguments into the model's types, reads the clock and the OS
//! RNG (the libraries take time and seeds as arguments), and prints text or `--json`.
//!
//! Exit codes: 0 success; 1 a refusal by the ledger (`refused: reason: detail`) or any other
//! failure, with a one-line cause on stderr; 2 a usage error (clap).

/// jemalloc: glibc's malloc slowed as a large ledger's heap fragmented (docs/PERFORMANCE.md,
/// "The allocator"). Configured at build time (`.cargo/config.toml`).
#[cfg(not(target_env = "msvc"))]
#[global_allocator]
static GLOBAL: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

mod app;
mod cli;
mod commands;
mod parse;
mod show;
mod syncfile;

use std::process::ExitCode;

use clap::Parser;
use coop_node::NodeError;
use serde_json::json;

use crate::app::{App, Report};
use crate::cli::{Cli, Command};
use crate::commands::{
    aid, audit, demo, device, governance, insight, key, membership, peer, pools, purchase, relay,
    repair, service, shell, support, timebank, ui, up,
};

fn main() -> ExitCode {
    let cli = Cli::parse();
    let json = cli.json;
    match run(cli) {
        Ok(report) => {
            if json {
                println!("{}", report.json);
            } else {
                print!("{}", report.text);
            }
            if report.failed {
                ExitCode::FAILURE
            } else {
                ExitCode::SUCCESS
            }
        }
        Err(e) => {
            let (line, value) = describe(&e);
            eprintln!("{line}");
            if json {
                println!("{value}");
            }
            ExitCode::FAILURE
        }
    }
}

/// One line for people and a JSON value for scripts. A refusal by the ledger reads
/// `refused: over_proposal_cap: 11 SP on one proposal, cap is 10`.
fn describe(e: &anyhow::Error) -> (String, serde_json::Value) {
    let refusal = e.chain().find_map(|c| match c.downcast_ref::<NodeError>() {
        Some(NodeError::Refused(r)) => Some(r),
        _ => None,
    });
    match refusal {
        Some(r) => {
            let line = if r.detail.is_empty() {
                format!("refused: {}", r.reason)
            } else {
                format!("refused: {}: {}", r.reason, r.detail)
            };
            let value = json!({ "error": {
                "kind": "refused",
                "reason": r.reason,
                "detail": r.detail,
                "message": line,
            }});
            (line, value)
        }
        None => {
            let message = one_line(e);
            let value = json!({ "error": { "kind": "error", "message": message } });
            (format!("error: {message}"), value)
        }
    }
}

/// The error and its causes on one line, without repeating a cause an outer message
/// already quotes.
fn one_line(e: &anyhow::Error) -> String {
    let mut line = String::new();
    for cause in e.chain() {
        let msg = cause.to_string();
        if line.contains(&msg) {
            continue;
        }
        if !line.is_empty() {
            line.push_str(": ");
        }
        line.push_str(&msg);
    }
    line.replace('\n', " ")
}

fn run(cli: Cli) -> anyhow::Result<Report> {
    // These need no data dir.
    match &cli.command {
        Command::Completions { shell } => return shell::completions(*shell),
        Command::Man { out } => return shell::man(out.as_deref()),
        Command::Relay(args) => return relay::relay(args, cli.data_dir.clone(), cli.json),
        _ => {}
    }
    let app = App::new(cli.data_dir)?;
    match cli.command {
        Command::Init { name } => membership::init(&app, &name),
        Command::Found {
            community,
            params,
            no_lan_key,
        } => membership::found(&app, &community, &params, no_lan_key),
        Command::Invite => membership::invite(&app),
        Command::Join { code } => membership::join(&app, &code),
        Command::Vouch { member } => membership::vouch(&app, &member),
        Command::Rename { name } => membership::rename(&app, &name),
        Command::Peer(cmd) => peer::peer(&app, cmd),
        Command::Status => membership::status(&app),
        Command::Members => membership::members(&app),
        Command::Profile { member } => timebank::profile(&app, &member),
        Command::Inbox => timebank::inbox(&app),
        Command::Completions { .. } | Command::Man { .. } | Command::Relay(_) => {
            unreachable!("handled above")
        }
        Command::Hours(cmd) => timebank::hours(&app, cmd),
        Command::Balance { member } => timebank::balance(&app, member.as_deref()),
        Command::Proposal(cmd) => support::proposal(&app, cmd),
        Command::Sp(cmd) => support::sp(&app, cmd),
        Command::Aid(cmd) => aid::aid(&app, cmd),
        Command::Ledger {
            refused,
            kind,
            limit,
            all,
        } => audit::ledger(&app, refused, kind, limit, all),
        Command::Verify => audit::verify(&app),
        Command::Repair(args) => repair::repair(&app, args),
        Command::Sync(cmd) => audit::sync(&app, cmd),
        Command::Device(cmd) => device::device(&app, cmd),
        Command::Key(cmd) => key::key(&app, cmd),
        Command::Params => audit::params(&app),
        Command::Decision(cmd) => governance::decision(&app, cmd),
        Command::Report(cmd) => governance::report(&app, cmd),
        Command::Moderation(cmd) => governance::moderation(&app, cmd),
        Command::Up(args) => up::up(&app, args, cli.json),
        Command::Demo { keep, ui } => demo::demo(keep, ui, cli.json),
        Command::Ui { no_open } => ui::ui(&app, no_open),
        Command::Service { action, dry_run } => service::service(&app, action, dry_run),
        Command::Visibility { command } => insight::visibility(&app, command),
        Command::Metrics { since } => insight::metrics(&app, since),
        Command::Export { format, out, all } => insight::export(&app, format, out.as_deref(), all),
        Command::Purchase(cmd) => purchase::purchase(&app, cmd),
        Command::Pool(cmd) => pools::pool(&app, cmd),
        Command::Relief(cmd) => pools::relief(&app, cmd),
    }
}
