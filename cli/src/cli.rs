//! The command line: every command, flag and argument, parsed by clap (derive).
//!
//! Values are parsed into the model's types here, at the edge, so a malformed id, date or
//! amount is a usage error (exit 2) before anything is opened.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};
use coop_model::record::{
    Choice, Outcome, ReturnPolicy, Role, Urgency, Visibility, MAX_DEADLINE, MAX_MONEY,
    MAX_PURCHASE_QUANTITY, MAX_PURCHASE_ROUNDS, MAX_UNIT_PRICE,
};
use coop_model::Day;

/// coop: a peer-to-peer, local-first ledger for a neighbourhood cooperative.
#[derive(Debug, Parser)]
#[command(name = "coop", version, propagate_version = true)]
pub(crate) struct Cli {
    /// The data directory (keys, configuration, store). Defaults to the platform data dir.
    #[arg(long, global = true, env = "COOP_DATA_DIR", value_name = "DIR")]
    pub(crate) data_dir: Option<PathBuf>,
    /// Machine-readable JSON on stdout (field names in docs/CLI.md).
    #[arg(long, global = true)]
    pub(crate) json: bool,
    #[command(subcommand)]
    pub(crate) command: Command,
}

#[derive(Debug, Subcommand)]
pub(crate) enum Command {
    /// Create this member's identity and device keys.
    Init {
        /// Your display name (a label others see; 1-64 characters).
        #[arg(long, value_parser = text(1, 64))]
        name: String,
    },
    /// Found a community (write its genesis) and print its id.
    Found {
        /// The community's name (1-100 characters).
        #[arg(long, value_parser = text(1, 100))]
        community: String,
        /// Override a default parameter at genesis, e.g. `--param sp_budget=120`.
        #[arg(long = "param", value_name = "KEY=VALUE", value_parser = parse_param)]
        params: Vec<String>,
        /// Do not generate a LAN pre-shared key (the swarm is then open to any coop node).
        #[arg(long)]
        no_lan_key: bool,
    },
    /// Print an invite code for a neighbour.
    Invite,
    /// Join a community from an invite code; you are pending until a member vouches.
    Join {
        /// The code from `coop invite` (starts with `coop1`).
        code: String,
    },
    /// Vouch for a pending member.
    Vouch {
        /// Display name or id prefix.
        member: String,
    },
    /// Run the node in the foreground until Ctrl-C or SIGTERM.
    Up(UpArgs),
    /// Identity, community, membership, peers, heads and record counts.
    Status,
    /// Members with their roles and status.
    Members,
    /// The time bank: log, confirm and decline hours.
    #[command(subcommand)]
    Hours(HoursCommand),
    /// Time balance, provided, received and the fair-exchange index.
    Balance {
        /// Display name or id prefix (default: you).
        member: Option<String>,
    },
    /// Proposals that members support with Support Points.
    #[command(subcommand)]
    Proposal(ProposalCommand),
    /// Support Points: allocate and see your budget.
    #[command(subcommand)]
    Sp(SpCommand),
    /// Mutual aid: request, offer, accept, confirm, cancel.
    #[command(subcommand)]
    Aid(AidCommand),
    /// Records, newest first, with their status and refusal reasons.
    Ledger {
        /// Only refused records.
        #[arg(long)]
        refused: bool,
        /// Only records of this kind (genesis, join, vouch, attest, confirm, allocate, ...).
        #[arg(long)]
        kind: Option<String>,
        /// At most this many records.
        #[arg(long)]
        limit: Option<usize>,
        /// Include records hidden by moderators.
        #[arg(long)]
        all: bool,
    },
    /// Re-verify every signature and re-derive from scratch.
    Verify,
    /// Carry signed changes on a USB stick.
    #[command(subcommand)]
    Sync(SyncCommand),
    /// Community parameters with their values and history.
    Params,
    /// Governance: open decisions, vote, close the vote, see outcomes.
    #[command(subcommand)]
    Decision(DecisionCommand),
    /// Report a record or a member to the moderators.
    #[command(subcommand)]
    Report(ReportCommand),
    /// Moderators: see reports and forked devices, hide records.
    #[command(subcommand)]
    Moderation(ModerationCommand),
    /// Start three local nodes and run the seed scenarios end to end.
    Demo {
        /// Keep the three data directories (their paths are printed).
        #[arg(long)]
        keep: bool,
    },
    /// Who may see your balance and history: show it, or `set public|members|private`.
    Visibility {
        #[command(subcommand)]
        command: Option<VisibilityCommand>,
    },
    /// Community metrics: SP per proposal over time, aid completion, the time-bank
    /// distribution, hours per month, participation.
    Metrics {
        /// Time series and rates from this day on, YYYY-MM-DD (UTC).
        #[arg(long, value_parser = parse_day)]
        since: Option<Day>,
    },
    /// Export the records you may see, with hour receipts that verify on their own.
    Export {
        /// csv or json.
        #[arg(long, value_enum)]
        format: ExportFormat,
        /// Write to this file (replaced atomically) instead of standard output.
        #[arg(long, value_name = "FILE")]
        out: Option<PathBuf>,
        /// Include records hidden by moderators.
        #[arg(long)]
        all: bool,
    },
    /// Collective purchasing: propose, commit, bid, order, deliver, mark payment and pickup.
    #[command(subcommand)]
    Purchase(PurchaseCommand),
    /// Investment pools: create, contribute, confirm, apply, disburse, return.
    #[command(subcommand)]
    Pool(PoolCommand),
    /// Emergency relief: request, approve (stewards), show, list.
    #[command(subcommand)]
    Relief(ReliefCommand),
}

#[derive(Debug, Args)]
pub(crate) struct UpArgs {
    /// Listen on this multiaddr (repeatable); default from the config, else /ip4/0.0.0.0/tcp/0.
    #[arg(long, value_name = "MULTIADDR")]
    pub(crate) listen: Vec<String>,
    /// Dial this peer (repeatable), in addition to the peers in the config.
    #[arg(long, value_name = "MULTIADDR")]
    pub(crate) peer: Vec<String>,
    /// Do not discover peers with mDNS.
    #[arg(long)]
    pub(crate) no_mdns: bool,
    /// Seconds between catch-up syncs with each peer.
    #[arg(long, value_name = "SECS", default_value_t = 10,
          value_parser = clap::value_parser!(u64).range(1..=3600))]
    pub(crate) sync_interval: u64,
    /// Stop when standard input closes: for a supervising process (such as `coop demo`)
    /// whose node must not outlive it.
    #[arg(long, hide = true)]
    pub(crate) stop_on_stdin_eof: bool,
}

#[derive(Debug, Subcommand)]
pub(crate) enum HoursCommand {
    /// Attest hours you provided to another member; they confirm or decline.
    Log {
        /// Who received the service (display name or id prefix).
        #[arg(long, value_name = "MEMBER")]
        to: String,
        /// How long, 1 to 1440 minutes.
        #[arg(long, value_name = "N", value_parser = clap::value_parser!(i64).range(1..=1440))]
        minutes: i64,
        /// What you did (1-200 characters).
        #[arg(long, value_name = "TEXT", value_parser = text(1, 200))]
        service: String,
        /// Category (1-32 characters).
        #[arg(long, value_name = "C", default_value = "general", value_parser = text(1, 32))]
        category: String,
        /// Day of service, YYYY-MM-DD (default: today, UTC).
        #[arg(long, value_parser = parse_day)]
        date: Option<Day>,
    },
    /// Attestations awaiting your confirmation.
    Pending,
    /// Confirm an attestation you received.
    Confirm {
        /// Attestation id prefix.
        id: String,
    },
    /// Decline an attestation you received.
    Decline {
        /// Attestation id prefix.
        id: String,
    },
}

#[derive(Debug, Subcommand)]
pub(crate) enum ProposalCommand {
    /// Open a proposal.
    Open {
        /// Title (3-100 characters).
        #[arg(long, value_parser = text(3, 100))]
        title: String,
        /// Description (up to 2000 characters).
        #[arg(long, default_value = "", value_parser = text(0, 2000))]
        description: String,
    },
    /// Close your proposal; the SP locked on it return to their members.
    Close {
        /// Proposal id prefix.
        id: String,
        /// How it ended: delivered, cancelled, rejected or expired.
        #[arg(long, value_parser = parse_outcome)]
        outcome: Outcome,
    },
    /// Proposals with their SP totals and the prioritized flag.
    List {
        /// Include proposals hidden by moderators.
        #[arg(long)]
        all: bool,
    },
    /// One proposal and its allocations.
    Show {
        /// Proposal id prefix.
        id: String,
    },
}

#[derive(Debug, Subcommand)]
pub(crate) enum SpCommand {
    /// Lock Support Points on a proposal until it closes.
    Allocate {
        /// Proposal id prefix.
        proposal: String,
        /// Points (1 or more).
        #[arg(value_parser = clap::value_parser!(i64).range(1..=1_000_000))]
        points: i64,
    },
    /// Budget, allocated, available and the allocations.
    Status {
        /// Display name or id prefix (default: you).
        member: Option<String>,
    },
}

#[derive(Debug, Subcommand)]
pub(crate) enum AidCommand {
    /// Ask the community for help.
    Request {
        /// One of the community's categories (see `coop params`).
        #[arg(long, value_parser = text(1, 32))]
        category: String,
        /// Title (3-100 characters).
        #[arg(long, value_parser = text(3, 100))]
        title: String,
        /// Description (10-500 characters).
        #[arg(long, value_parser = text(10, 500))]
        description: String,
        /// low, medium or high.
        #[arg(long, default_value = "medium", value_parser = parse_urgency)]
        urgency: Urgency,
        /// Date by which help is needed, YYYY-MM-DD.
        #[arg(long, value_parser = parse_day)]
        needed_by: Option<Day>,
        /// A coarse location (1-100 characters), e.g. a street, never an address.
        #[arg(long, value_parser = text(1, 100))]
        location: Option<String>,
    },
    /// Offer help on a request.
    Offer {
        /// Request id prefix.
        request: String,
        /// Message (10-500 characters).
        #[arg(long, value_parser = text(10, 500))]
        message: String,
        /// When you are available (1-200 characters).
        #[arg(long, value_parser = text(1, 200))]
        availability: String,
    },
    /// Accept one offer on your request.
    Accept {
        /// Offer id prefix (see `coop aid show REQUEST`).
        offer: String,
    },
    /// Confirm the aid was given (both parties confirm).
    Confirm {
        /// Request id prefix.
        request: String,
        /// Rating of the other party, 1-5.
        #[arg(long, value_parser = clap::value_parser!(i64).range(1..=5))]
        rating: Option<i64>,
        /// Feedback (1-500 characters).
        #[arg(long, value_parser = text(1, 500))]
        feedback: Option<String>,
    },
    /// Cancel your request while it is open or matched.
    Cancel {
        /// Request id prefix.
        request: String,
    },
    /// Requests, newest first.
    List {
        /// Only requests with this status.
        #[arg(long, value_parser = ["open", "matched", "completed", "cancelled"])]
        status: Option<String>,
        /// Include requests hidden by moderators.
        #[arg(long)]
        all: bool,
    },
    /// One request with its offers.
    Show {
        /// Request id prefix.
        request: String,
    },
}

#[derive(Debug, Subcommand)]
pub(crate) enum SyncCommand {
    /// Write every signed change this node holds to a file.
    Export {
        /// Where to write (replaced atomically).
        file: PathBuf,
    },
    /// Take in the signed changes of a file, through the same gate as the network.
    Import {
        /// The file written by `coop sync export`.
        file: PathBuf,
    },
}

#[derive(Debug, Subcommand)]
pub(crate) enum VisibilityCommand {
    /// A member's setting (default: yours).
    Show {
        /// Display name or id prefix.
        member: Option<String>,
    },
    /// Set yours: public (anyone), members (admitted members; the default) or private (you).
    Set {
        /// public, members or private.
        #[arg(value_parser = parse_visibility)]
        level: Visibility,
    },
}

/// The format of `coop export`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub(crate) enum ExportFormat {
    /// One header row, then one row per record (RFC 4180).
    Csv,
    /// One JSON document with the records and the receipts.
    Json,
}

fn parse_visibility(s: &str) -> Result<Visibility, String> {
    s.parse()
}
#[derive(Debug, Subcommand)]
pub(crate) enum PoolCommand {
    /// Open a pool; `--relief` opens a relief fund (treasurers only).
    Create {
        /// Name (1-100 characters).
        #[arg(long, value_parser = text(1, 100))]
        name: String,
        /// Description (up to 2000 characters).
        #[arg(long, default_value = "", value_parser = text(0, 2000))]
        description: String,
        /// Currency code, three upper-case letters (e.g. EUR).
        #[arg(long, value_parser = parse_currency)]
        currency: String,
        /// What happens to returns: reinvest, distribute or hybrid.
        #[arg(long, default_value = "reinvest", value_parser = parse_policy)]
        policy: ReturnPolicy,
        /// A relief fund: it takes relief requests instead of applications.
        #[arg(long)]
        relief: bool,
    },
    /// Pledge money to a pool; it counts once a treasurer confirms it arrived.
    Contribute {
        /// Pool id prefix.
        pool: String,
        /// Amount, e.g. 25 or 12.50 (two decimals at most).
        #[arg(value_parser = parse_money)]
        amount: i64,
    },
    /// Confirm the money of a contribution arrived (treasurers; not your own).
    Confirm {
        /// Contribution id prefix.
        contribution: String,
    },
    /// Ask a pool for money for a project; a governance decision allocates it.
    Apply {
        /// Pool id prefix.
        pool: String,
        /// Title (3-100 characters).
        #[arg(long, value_parser = text(3, 100))]
        title: String,
        /// Amount asked for, e.g. 1500 or 1499.99.
        #[arg(long, value_parser = parse_money)]
        amount: i64,
        /// Terms: repayment, timeline (10-2000 characters).
        #[arg(long, value_parser = text(10, 2000))]
        terms: String,
    },
    /// Pay out (part of) an allocated application (treasurers).
    Disburse {
        /// Application id prefix.
        application: String,
        /// Amount, e.g. 250.
        #[arg(value_parser = parse_money)]
        amount: i64,
    },
    /// Record money coming back, from an application's project or into a pool (treasurers).
    Return {
        /// Application or pool id prefix.
        from: String,
        /// Amount, e.g. 80.25.
        #[arg(value_parser = parse_money)]
        amount: i64,
    },
    /// One pool: balance, contributors and shares, applications, movements.
    Show {
        /// Pool id prefix.
        pool: String,
    },
    /// Pools and relief funds with their balances.
    List {
        /// Include pools hidden by moderators.
        #[arg(long)]
        all: bool,
    },
}

#[derive(Debug, Subcommand)]
pub(crate) enum ReliefCommand {
    /// Ask a relief fund for help; the reason is sealed to the stewards.
    Request {
        /// Relief fund id prefix.
        fund: String,
        /// Amount, e.g. 300 or 299.50.
        #[arg(value_parser = parse_money)]
        amount: i64,
        /// low, medium or high.
        #[arg(long, default_value = "medium", value_parser = parse_urgency)]
        urgency: Urgency,
        /// Why (1-500 characters); only the stewards can read it.
        #[arg(long, value_parser = parse_reason)]
        reason: String,
    },
    /// Approve a relief request (stewards); enough approvals release it from the fund.
    Approve {
        /// Request id prefix.
        request: String,
    },
    /// One request; stewards see the reason.
    Show {
        /// Request id prefix.
        request: String,
    },
    /// Relief requests, newest first; stewards see the reasons.
    List {
        /// Only requests with this status.
        #[arg(long, value_parser = ["pending", "released"])]
        status: Option<String>,
        /// Include requests hidden by moderators.
        #[arg(long)]
        all: bool,
    },
}

/// A text argument of `min..=max` characters without control characters (the ledger's
/// own limits, checked here so a mistake is a usage error and nothing is written).
fn text(min: usize, max: usize) -> impl Fn(&str) -> Result<String, String> + Clone {
    move |s: &str| {
        let n = s.chars().count();
        if n < min || n > max {
            Err(format!("expected {min} to {max} characters, got {n}"))
        } else if s.chars().any(|c| c.is_control() && c != '\n') {
            Err("control characters are not allowed".into())
        } else {
            Ok(s.to_string())
        }
    }
}

fn parse_param(s: &str) -> Result<String, String> {
    coop_model::Params::default()
        .assign(s)
        .map(|()| s.to_string())
        .map_err(|e| e.to_string())
}

/// A `YYYY-MM-DD` date within the years the ledger takes (1900 to 2199).
fn parse_day(s: &str) -> Result<Day, String> {
    let day: Day = s
        .parse()
        .map_err(|e: coop_model::ids::ParseDayError| e.to_string())?;
    let (y, _, _) = day.ymd();
    if (1900..=2199).contains(&y) {
        Ok(day)
    } else {
        Err(format!("{day} is outside the years 1900 to 2199"))
    }
}

fn parse_urgency(s: &str) -> Result<Urgency, String> {
    s.parse()
}

fn parse_outcome(s: &str) -> Result<Outcome, String> {
    s.parse()
}
fn parse_policy(s: &str) -> Result<ReturnPolicy, String> {
    s.parse()
}

/// A relief reason: what `text` takes, and at most what a seal holds in bytes.
fn parse_reason(s: &str) -> Result<String, String> {
    let t = text(1, 500)(s)?;
    if t.len() > coop_model::seal::MAX_TEXT_BYTES {
        return Err(format!(
            "{} bytes, at most {}",
            t.len(),
            coop_model::seal::MAX_TEXT_BYTES
        ));
    }
    Ok(t)
}

/// Money as decimal text (`25`, `12.5`, `12.50`) in minor units (`2500`, `1250`, `1250`):
/// digits only, at most two decimals, never through a float.
pub(crate) fn parse_money(s: &str) -> Result<i64, String> {
    let bad =
        || format!("{s:?} is not an amount: expected e.g. 25 or 12.50 (two decimals at most)");
    let (whole, frac) = s.trim().split_once('.').unwrap_or((s.trim(), ""));
    let digits = |t: &str| !t.is_empty() && t.bytes().all(|b| b.is_ascii_digit());
    if !digits(whole) || (s.contains('.') && !digits(frac)) || frac.len() > 2 {
        return Err(bad());
    }
    let cents = format!("{frac:0<2}");
    let minor = whole
        .parse::<i64>()
        .ok()
        .and_then(|w| w.checked_mul(100))
        .and_then(|w| w.checked_add(cents.parse::<i64>().ok()?))
        .ok_or_else(bad)?;
    if !(1..=MAX_MONEY).contains(&minor) {
        return Err(format!(
            "{s:?} is outside 0.01 to {}",
            coop_model::record::money(MAX_MONEY)
        ));
    }
    Ok(minor)
}

#[derive(Debug, Subcommand)]
pub(crate) enum PurchaseCommand {
    /// Propose a collective purchase; you coordinate it.
    Propose {
        /// What is bought (3-100 characters).
        #[arg(long, value_parser = text(3, 100))]
        item: String,
        /// The unit quantities count in, e.g. kg or litre (1-16 characters).
        #[arg(long, value_parser = text(1, 16))]
        unit: String,
        /// Quantity that funds the purchase.
        #[arg(long, value_name = "N", value_parser = clap::value_parser!(i64).range(1..=MAX_PURCHASE_QUANTITY))]
        target: i64,
        /// Reference (retail) price of one unit, e.g. 12.50.
        #[arg(long, value_name = "AMOUNT", value_parser = parse_amount)]
        reference_price: i64,
        /// Currency: three upper-case letters, e.g. EUR.
        #[arg(long, value_parser = parse_currency)]
        currency: String,
        /// Participants that fund it.
        #[arg(long, value_name = "N", default_value_t = 1,
              value_parser = clap::value_parser!(i64).range(1..=10_000))]
        min_participants: i64,
        /// Deadline of the (first) round: YYYY-MM-DD (00:00 UTC), YYYY-MM-DDTHH:MM[:SS] (UTC)
        /// or @UNIX-SECONDS.
        #[arg(long, value_name = "TIME", value_parser = parse_time)]
        deadline: i64,
        /// A new round every month (the deadline moves one calendar month each round).
        #[arg(long)]
        monthly: bool,
    },
    /// Commit to buy a quantity in a round (once per round).
    Commit {
        /// Purchase id prefix.
        purchase: String,
        /// Quantity.
        #[arg(long, value_name = "N", value_parser = clap::value_parser!(i64).range(1..=MAX_PURCHASE_QUANTITY))]
        quantity: i64,
        /// Solidarity: pay N % more to fund others' discounts (1-100).
        #[arg(long, value_name = "N", conflicts_with = "discount",
              value_parser = clap::value_parser!(i64).range(1..=100))]
        surcharge: Option<i64>,
        /// Solidarity: ask for an N % discount, granted as far as surcharges fund it (1-100).
        #[arg(long, value_name = "N", value_parser = clap::value_parser!(i64).range(1..=100))]
        discount: Option<i64>,
        /// Round (default: the round open now).
        #[arg(long, value_name = "K", value_parser = parse_round)]
        round: Option<i64>,
    },
    /// Record a supplier's bid, openly (any member may).
    Bid {
        /// Purchase id prefix.
        purchase: String,
        /// Supplier name (1-100 characters).
        #[arg(long, value_parser = text(1, 100))]
        supplier: String,
        /// The supplier is local.
        #[arg(long)]
        local: bool,
        /// Price of one unit, e.g. 11.00.
        #[arg(long, value_name = "AMOUNT", value_parser = parse_amount)]
        unit_price: i64,
        /// The least quantity the supplier sells at that price.
        #[arg(long, value_name = "N", default_value_t = 1,
              value_parser = clap::value_parser!(i64).range(1..=MAX_PURCHASE_QUANTITY))]
        min_quantity: i64,
        /// Round (default: the round open now).
        #[arg(long, value_name = "K", value_parser = parse_round)]
        round: Option<i64>,
    },
    /// The coordinator places the order with the winning bid (the round must be funded).
    Order {
        /// Purchase id prefix.
        purchase: String,
        /// Round (default: the latest round with commitments).
        #[arg(long, value_name = "K", value_parser = parse_round)]
        round: Option<i64>,
    },
    /// The coordinator marks an ordered round delivered.
    Deliver {
        /// Purchase id prefix.
        purchase: String,
        /// Round (default: the latest round with commitments).
        #[arg(long, value_name = "K", value_parser = parse_round)]
        round: Option<i64>,
    },
    /// The coordinator marks a participant's payment (after the order).
    Paid {
        /// Purchase id prefix.
        purchase: String,
        /// The participant (display name or id prefix).
        member: String,
        /// Round (default: the latest round with commitments).
        #[arg(long, value_name = "K", value_parser = parse_round)]
        round: Option<i64>,
    },
    /// Mark a pickup (after delivery): the coordinator for anyone, a participant for themself.
    Pickup {
        /// Purchase id prefix.
        purchase: String,
        /// The participant (display name or id prefix; default: you).
        member: Option<String>,
        /// Round (default: the latest round with commitments).
        #[arg(long, value_name = "K", value_parser = parse_round)]
        round: Option<i64>,
    },
    /// One purchase: a round with its bids, commitments and amounts due (default: the
    /// round open now).
    Show {
        /// Purchase id prefix.
        purchase: String,
        /// Round to show.
        #[arg(long, value_name = "K", value_parser = parse_round)]
        round: Option<i64>,
        /// Show the phase as at this time instead of now (same forms as --deadline).
        #[arg(long, value_name = "TIME", value_parser = parse_time)]
        at: Option<i64>,
    },
    /// Purchases, newest first, with their current round.
    List {
        /// Phases as at this time instead of now (same forms as --deadline).
        #[arg(long, value_name = "TIME", value_parser = parse_time)]
        at: Option<i64>,
        /// Include purchases hidden by moderators.
        #[arg(long)]
        all: bool,
    },
}

/// An amount of money in major units with at most two decimals (`12`, `12.5`, `12.50`),
/// parsed from its text into minor units (`1250`): never through a float.
pub(crate) fn parse_amount(s: &str) -> Result<i64, String> {
    let bad = || format!("{s:?} is not an amount like 12.50 (at most two decimals)");
    let (whole, frac) = s.split_once('.').unwrap_or((s, ""));
    let digits = |t: &str| !t.is_empty() && t.chars().all(|c| c.is_ascii_digit());
    if !digits(whole) || (s.contains('.') && !digits(frac)) || frac.len() > 2 || whole.len() > 9 {
        return Err(bad());
    }
    let whole: i64 = whole.parse().map_err(|_| bad())?;
    let cents: i64 = format!("{frac:0<2}").parse().map_err(|_| bad())?;
    let minor = whole * 100 + cents;
    if minor > MAX_UNIT_PRICE {
        return Err(format!(
            "{s} is more than the largest price, {}",
            MAX_UNIT_PRICE / 100
        ));
    }
    Ok(minor)
}

fn parse_currency(s: &str) -> Result<String, String> {
    if s.len() == 3 && s.chars().all(|c| c.is_ascii_uppercase()) {
        Ok(s.to_string())
    } else {
        Err(format!(
            "{s:?} is not a currency code like EUR (three upper-case letters)"
        ))
    }
}

fn parse_round(s: &str) -> Result<i64, String> {
    match s.parse::<i64>() {
        Ok(k) if (0..MAX_PURCHASE_ROUNDS).contains(&k) => Ok(k),
        _ => Err(format!(
            "expected a round number from 0 to {}",
            MAX_PURCHASE_ROUNDS - 1
        )),
    }
}

/// A moment in UTC: `YYYY-MM-DD` (its start), `YYYY-MM-DDTHH:MM[:SS]` with an optional `Z`,
/// or `@` and Unix seconds. Years 1970 to 2199.
pub(crate) fn parse_time(s: &str) -> Result<i64, String> {
    let bad = || {
        format!("{s:?} is not a time: expected YYYY-MM-DD, YYYY-MM-DDTHH:MM[:SS] (UTC) or @UNIX-SECONDS")
    };
    if let Some(secs) = s.strip_prefix('@') {
        let t: i64 = secs.parse().map_err(|_| bad())?;
        return if (1..MAX_DEADLINE).contains(&t) {
            Ok(t)
        } else {
            Err(bad())
        };
    }
    let (date, time) = s.split_once('T').unwrap_or((s, ""));
    let day = parse_day(date)?;
    if day.0 < 0 {
        return Err(format!("{day} is before 1970"));
    }
    let time = time.strip_suffix('Z').unwrap_or(time);
    let mut secs = 0;
    if !time.is_empty() {
        let parts: Vec<&str> = time.split(':').collect();
        let ok = (2..=3).contains(&parts.len())
            && parts
                .iter()
                .all(|p| p.len() == 2 && p.chars().all(|c| c.is_ascii_digit()));
        if !ok {
            return Err(bad());
        }
        let n: Vec<i64> = parts.iter().map(|p| p.parse().unwrap_or(99)).collect();
        let (h, m, sec) = (n[0], n[1], n.get(2).copied().unwrap_or(0));
        if h > 23 || m > 59 || sec > 59 {
            return Err(bad());
        }
        secs = h * 3600 + m * 60 + sec;
    }
    Ok(day.0 as i64 * 86_400 + secs)
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn the_command_line_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn money_parses_from_decimal_text_into_minor_units() {
        for (text, minor) in [
            ("25", 2500),
            ("12.5", 1250),
            ("12.50", 1250),
            ("0.01", 1),
            ("007.10", 710),
            ("10000000000", MAX_MONEY),
        ] {
            assert_eq!(parse_money(text), Ok(minor), "{text}");
        }
        for bad in [
            "",
            ".",
            "1.",
            ".5",
            "12.505",
            "-3",
            "+3",
            "1,50",
            "1e3",
            "abc",
            "0",
            "0.00",
            "10000000000.01",
            "99999999999999999999",
        ] {
            assert!(parse_money(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn amounts_parse_from_their_text_into_minor_units() {
        assert_eq!(parse_amount("12.50"), Ok(1250));
        assert_eq!(parse_amount("12.5"), Ok(1250));
        assert_eq!(parse_amount("12"), Ok(1200));
        assert_eq!(parse_amount("0.07"), Ok(7));
        assert_eq!(parse_amount("1000000"), Ok(100_000_000));
        for bad in [
            "",
            ".5",
            "12.",
            "12.345",
            "-1",
            "1e3",
            "12,50",
            "1000000.01",
            "٣",
        ] {
            assert!(parse_amount(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn times_parse_as_utc() {
        assert_eq!(parse_time("1970-01-02"), Ok(86_400));
        assert_eq!(parse_time("1970-01-02T01:01"), Ok(86_400 + 3_660));
        assert_eq!(parse_time("1970-01-02T01:01:05Z"), Ok(86_400 + 3_665));
        assert_eq!(parse_time("@1790000000"), Ok(1_790_000_000));
        for bad in [
            "2026-13-01",
            "2026-10-01T24:00",
            "2026-10-01T9:00",
            "@x",
            "@0",
            "tomorrow",
        ] {
            assert!(parse_time(bad).is_err(), "{bad:?}");
        }
    }
}

#[derive(Debug, Subcommand)]
pub(crate) enum DecisionCommand {
    /// Put a decision to the vote of all members (one action at most; none is general).
    #[command(group(clap::ArgGroup::new("action").multiple(false)
        .args(["param", "grant", "revoke", "remove", "allocate"])))]
    Open {
        /// Title (3-100 characters).
        #[arg(long, value_parser = text(3, 100))]
        title: String,
        /// Description (up to 2000 characters).
        #[arg(long, default_value = "", value_parser = text(0, 2000))]
        description: String,
        /// How long the vote stays open: e.g. 7d, 36h, 90m (at most 366d).
        #[arg(long, default_value = "7d", value_parser = parse_window)]
        window: i64,
        /// Change a parameter when it passes, e.g. `--param sp_max_per_proposal=20`.
        #[arg(long, value_name = "KEY=VALUE", value_parser = parse_param)]
        param: Option<String>,
        /// Grant a role (moderator, steward, treasurer) to `--member`.
        #[arg(long, value_name = "ROLE", requires = "member", value_parser = parse_role)]
        grant: Option<Role>,
        /// Revoke a role from `--member`.
        #[arg(long, value_name = "ROLE", requires = "member", value_parser = parse_role)]
        revoke: Option<Role>,
        /// Remove this member (display name or id prefix) when it passes.
        #[arg(long, value_name = "MEMBER")]
        remove: Option<String>,
        /// Allocate a pool's money to this application (id prefix) when it passes.
        #[arg(long, value_name = "APPLICATION")]
        allocate: Option<String>,
        /// The member of `--grant` or `--revoke`.
        #[arg(long, value_name = "MEMBER")]
        member: Option<String>,
    },
    /// Vote yes, no or abstain (abstentions count towards the quorum only).
    Vote {
        /// Decision id prefix.
        id: String,
        /// yes, no or abstain.
        #[arg(value_parser = parse_choice)]
        choice: Choice,
    },
    /// Close the vote once its window has ended; the outcome is derived from the votes
    /// this node holds.
    Close {
        /// Decision id prefix.
        id: String,
    },
    /// Decisions, open first.
    List {
        /// Include decisions hidden by moderators.
        #[arg(long)]
        all: bool,
    },
    /// One decision, its votes and its outcome.
    Show {
        /// Decision id prefix.
        id: String,
    },
}

#[derive(Debug, Subcommand)]
pub(crate) enum ReportCommand {
    /// Report a record.
    Record {
        /// Record id prefix.
        id: String,
        /// Why (3-500 characters).
        #[arg(long, value_parser = text(3, 500))]
        reason: String,
    },
    /// Report a member.
    Member {
        /// Display name or id prefix.
        member: String,
        /// Why (3-500 characters).
        #[arg(long, value_parser = text(3, 500))]
        reason: String,
    },
}

#[derive(Debug, Subcommand)]
pub(crate) enum ModerationCommand {
    /// Reports, hidden records and members whose device forked (moderators only).
    List,
    /// Hide a record from listings; it stays in `coop ledger --all` for audit.
    Hide {
        /// Record id prefix.
        id: String,
        /// Why (3-500 characters).
        #[arg(long, value_parser = text(3, 500))]
        reason: String,
    },
}

fn parse_window(s: &str) -> Result<i64, String> {
    let bad = || format!("expected a duration such as 7d, 36h or 90m, got {s:?}");
    let s = s.trim();
    let (n, unit) = s.split_at(s.len().saturating_sub(1));
    let n: i64 = n.parse().map_err(|_| bad())?;
    let secs = match unit {
        "d" => n.checked_mul(86_400),
        "h" => n.checked_mul(3_600),
        "m" => n.checked_mul(60),
        _ => None,
    }
    .ok_or_else(bad)?;
    if secs <= 0 || secs > coop_model::state::MAX_WINDOW_SECS {
        return Err(format!(
            "the window must be between 1 minute and 366 days, got {s:?}"
        ));
    }
    Ok(secs)
}

fn parse_role(s: &str) -> Result<Role, String> {
    s.parse()
}

fn parse_choice(s: &str) -> Result<Choice, String> {
    s.parse()
}
