//! The command line: every command, flag and argument, parsed by clap (derive).
//!
//! Values are parsed into the model's types here, at the edge, by the parsers of `parse.rs`,
//! so a malformed id, date or amount is a usage error (exit 2) before anything is opened.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};
use coop_model::record::{
    Choice, Outcome, ReturnPolicy, Role, Urgency, Visibility, MAX_MONEY, MAX_PURCHASE_QUANTITY,
    MAX_UNIT_PRICE,
};
use coop_model::Day;

use crate::parse::{self, text, Param};

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
        #[arg(long = "param", value_name = "KEY=VALUE", value_parser = parse::param)]
        params: Vec<Param>,
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
    /// Peers this node remembers and dials on start, and the community's relays.
    #[command(subcommand)]
    Peer(PeerCommand),
    /// Vouch for a pending member.
    Vouch {
        /// Display name or id prefix.
        member: String,
    },
    /// Change your display name (1–64 characters on one line; no other member may bear
    /// it). Every node shows the new name everywhere.
    Rename {
        /// The new display name.
        #[arg(value_parser = parse::name)]
        name: String,
    },
    /// Run the node in the foreground until Ctrl-C or SIGTERM.
    Up(UpArgs),
    /// Run a relay for your community (circuit relay, AutoNAT, rendezvous point) on a
    /// machine members can reach, until Ctrl-C or SIGTERM; prints its addresses.
    Relay(RelayArgs),
    /// Identity, community, membership, peers, heads and record counts.
    Status,
    /// Members with their roles and status.
    Members,
    /// Print a shell completion script (e.g. `coop completions bash > ~/.local/share/bash-completion/completions/coop`).
    Completions {
        /// The shell.
        #[arg(value_enum)]
        shell: clap_complete::Shell,
    },
    /// Write man pages: `coop.1` and one per command (`coop-hours.1`, ...) into DIR, or
    /// print `coop.1` without --out.
    Man {
        /// Directory to write the pages into (created if missing).
        #[arg(long, value_name = "DIR")]
        out: Option<PathBuf>,
    },
    /// Everything waiting on you: attestations to confirm, offers on your requests, matched
    /// aid to confirm, open decisions you have not voted on, relief approvals (stewards),
    /// pledges to confirm (treasurers).
    Inbox,
    /// One member's visible history: hours provided and received, aid given and received
    /// with ratings, roles, when they joined (honouring their visibility).
    Profile {
        /// Display name (any case) or id prefix.
        member: String,
    },
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
        /// Only records of this kind.
        #[arg(long, value_parser = parse::kind())]
        kind: Option<coop_model::Kind>,
        /// At most this many records.
        #[arg(long)]
        limit: Option<usize>,
        /// Include records hidden by moderators.
        #[arg(long)]
        all: bool,
    },
    /// Re-verify every signature and re-derive from scratch.
    Verify,
    /// Rebuild a damaged store from what still verifies in it, plus a sync file, then ask
    /// the peers for the rest; the damaged store is kept aside. Stop `coop up` first.
    Repair(RepairArgs),
    /// Carry signed changes on a USB stick.
    #[command(subcommand)]
    Sync(SyncCommand),
    /// Your devices: pair a new one, list them, revoke a lost one.
    #[command(subcommand)]
    Device(DeviceCommand),
    /// Your identity key: back it up, restore it, remove it from this device.
    #[command(subcommand)]
    Key(KeyCommand),
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
        /// Afterwards keep the three nodes running and print their app URLs until Ctrl-C.
        #[arg(long)]
        ui: bool,
    },
    /// Open the app: print its URL with a one-time login link and open it in the browser.
    Ui {
        /// Only print the URL; do not open a browser.
        #[arg(long)]
        no_open: bool,
    },
    /// Run `coop up` as a user service that starts at login (a systemd user unit).
    Service {
        /// install, uninstall or status.
        #[arg(value_enum)]
        action: ServiceAction,
        /// Print what would be written or removed, and change nothing.
        #[arg(long)]
        dry_run: bool,
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
        #[arg(long, value_parser = parse::day)]
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

/// `coop repair`.
#[derive(Debug, Args)]
pub(crate) struct RepairArgs {
    /// A sync file (`coop sync export`) with changes the damaged store lost.
    #[arg(long, value_name = "FILE")]
    pub(crate) from: Option<std::path::PathBuf>,
    /// Do not ask peers afterwards (only the damaged store and --from are used).
    #[arg(long)]
    pub(crate) offline: bool,
    /// Ask this peer too (repeatable), besides the peers in the config.
    #[arg(long, value_name = "MULTIADDR")]
    pub(crate) peer: Vec<String>,
    /// Do not look for peers with mDNS.
    #[arg(long)]
    pub(crate) no_mdns: bool,
    /// Listen on this address while asking (repeatable; default: any interface, a port the
    /// OS picks).
    #[arg(long, value_name = "MULTIADDR")]
    pub(crate) listen: Vec<String>,
    /// Give up asking peers after this many seconds.
    #[arg(long, value_name = "SECS", default_value_t = 30)]
    pub(crate) wait: u64,
}

#[derive(Debug, Args)]
pub(crate) struct UpArgs {
    /// Listen on this multiaddr (repeatable); default from the config, else /ip4/0.0.0.0/tcp/0.
    #[arg(long, value_name = "MULTIADDR")]
    pub(crate) listen: Vec<String>,
    /// Dial this peer (repeatable), in addition to the peers in the config.
    #[arg(long, value_name = "MULTIADDR")]
    pub(crate) peer: Vec<String>,
    /// Use this relay (repeatable; a `coop relay` address ending in /p2p/PEER_ID): reserve a
    /// slot on it, meet the other members at its rendezvous point, reach them through it.
    #[arg(long, value_name = "MULTIADDR")]
    pub(crate) relay: Vec<String>,
    /// Do not discover peers with mDNS.
    #[arg(long)]
    pub(crate) no_mdns: bool,
    /// Seconds between catch-up syncs with each peer.
    #[arg(long, value_name = "SECS", default_value_t = 10,
          value_parser = clap::value_parser!(u64).range(1..=3600))]
    pub(crate) sync_interval: u64,
    /// Serve the app's (read-only) API on this 127.0.0.1 port; default: the port kept in
    /// config.json, else one the OS picks, which is then kept.
    #[arg(long, value_name = "PORT", conflicts_with = "no_ui")]
    pub(crate) ui_port: Option<u16>,
    /// Do not serve the app's API on 127.0.0.1 (the API socket is always served).
    #[arg(long)]
    pub(crate) no_ui: bool,
    /// Stop when standard input closes: for a supervising process (such as `coop demo`)
    /// whose node must not outlive it.
    #[arg(long, hide = true)]
    pub(crate) stop_on_stdin_eof: bool,
}

/// What `coop service` does.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub(crate) enum ServiceAction {
    /// Write the unit, enable it and start it.
    Install,
    /// Stop and disable the service and remove the unit.
    Uninstall,
    /// Whether the unit is installed (and, with systemd, running).
    Status,
}

/// `coop relay`'s arguments (`--data-dir` keeps its identity, so its address is stable).
#[derive(Debug, Args)]
pub(crate) struct RelayArgs {
    /// An invite code of the community to serve (any member's `coop invite`): it carries the
    /// community and its LAN key.
    #[arg(long, value_name = "CODE")]
    pub(crate) invite: String,
    /// Listen on this multiaddr (repeatable), e.g. /ip4/0.0.0.0/tcp/4001.
    #[arg(long, value_name = "MULTIADDR", required = true)]
    pub(crate) listen: Vec<String>,
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
        #[arg(long, value_parser = parse::day)]
        date: Option<Day>,
    },
    /// Attestations awaiting your confirmation.
    Pending,
    /// Your attestations, given and received, with their status (or a member's, where
    /// their visibility allows).
    List {
        /// Whose (display name or id prefix; default: you).
        #[arg(long, value_name = "MEMBER")]
        member: Option<String>,
    },
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
        #[arg(long, value_parser = parse::keyword::<Outcome>)]
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
        #[arg(long, default_value = "medium", value_parser = parse::keyword::<Urgency>)]
        urgency: Urgency,
        /// Date by which help is needed, YYYY-MM-DD.
        #[arg(long, value_parser = parse::day)]
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
pub(crate) enum DeviceCommand {
    /// On a new machine: make its device key and print a request code.
    Request {
        /// A label for this device ("laptop"), shown in `coop device list`.
        #[arg(long, value_parser = text(0, 64))]
        name: Option<String>,
    },
    /// On a device holding your identity key: certify a new device, print the answer.
    Approve {
        /// The request code `coop device request` printed.
        code: String,
    },
    /// On the new machine: take the answer, fetch the member's ledger from the running
    /// node or the peers (up to --wait seconds), then write this device's certificate.
    Complete {
        /// The answer `coop device approve` (or, for a recovery, `coop decision open
        /// --recover`) printed.
        code: Option<String>,
        /// Seconds to wait for the ledger (0: only look at what is here now).
        #[arg(long, value_name = "SECS", default_value_t = 120)]
        wait: u64,
        /// Ask this peer too (repeatable), besides the answer's and the config's.
        #[arg(long, value_name = "MULTIADDR")]
        peer: Vec<String>,
        /// Do not look for peers with mDNS.
        #[arg(long)]
        no_mdns: bool,
        /// Listen on this multiaddr while asking (repeatable; default: the config's, else
        /// any interface on a port the OS picks).
        #[arg(long, value_name = "MULTIADDR")]
        listen: Vec<String>,
    },
    /// On a new machine of a member who lost every device and backup: make a device key
    /// and a new identity key, and print the code another member's recovery decision names.
    RecoverRequest {
        /// A label for this device ("laptop").
        #[arg(long, value_parser = text(0, 64))]
        name: Option<String>,
    },
    /// Your devices: labels, when each was added and last wrote, forks and revocations.
    List,
    /// Revoke one of your devices (lost or retired): what it wrote outside the
    /// revocation's past stops counting and it can write no more.
    Revoke {
        /// Its label or id prefix (see `coop device list`).
        device: String,
        /// Why (optional, up to 200 characters).
        #[arg(long, default_value = "", value_parser = text(0, 200))]
        reason: String,
    },
    /// This data dir was moved here for good: let this machine write as its device.
    Moved,
}

#[derive(Debug, Subcommand)]
pub(crate) enum KeyCommand {
    /// Write your identity key to FILE, encrypted under a passphrase (argon2id).
    Backup {
        /// The backup file to create.
        #[arg(long, value_name = "FILE")]
        out: PathBuf,
        /// Read the passphrase from the first line of this file instead of the terminal.
        #[arg(long, value_name = "FILE")]
        passphrase_file: Option<PathBuf>,
    },
    /// Bring your identity key back from a backup (into a new data dir too, with --name).
    Restore {
        /// The backup file.
        file: PathBuf,
        /// Read the passphrase from the first line of this file instead of the terminal.
        #[arg(long, value_name = "FILE")]
        passphrase_file: Option<PathBuf>,
        /// Your display name, when restoring into a new data dir.
        #[arg(long, value_parser = text(1, 64))]
        name: Option<String>,
    },
    /// Remove your identity key from this device; it keeps acting through its certificate.
    Forget,
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
        #[arg(value_parser = parse::keyword::<Visibility>)]
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
        #[arg(long, value_parser = parse::currency)]
        currency: String,
        /// What happens to returns: reinvest, distribute or hybrid.
        #[arg(long, default_value = "reinvest", value_parser = parse::keyword::<ReturnPolicy>)]
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
        #[arg(value_parser = parse::money(1, MAX_MONEY))]
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
        #[arg(long, value_parser = parse::money(1, MAX_MONEY))]
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
        #[arg(value_parser = parse::money(1, MAX_MONEY))]
        amount: i64,
    },
    /// Record money coming back, from an application's project or into a pool (treasurers).
    Return {
        /// Application or pool id prefix.
        from: String,
        /// Amount, e.g. 80.25.
        #[arg(value_parser = parse::money(1, MAX_MONEY))]
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
        #[arg(value_parser = parse::money(1, MAX_MONEY))]
        amount: i64,
        /// low, medium or high.
        #[arg(long, default_value = "medium", value_parser = parse::keyword::<Urgency>)]
        urgency: Urgency,
        /// Why (1-500 characters); only the stewards can read it.
        #[arg(long, value_parser = parse::reason)]
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
        #[arg(long, value_name = "AMOUNT", value_parser = parse::money(0, MAX_UNIT_PRICE))]
        reference_price: i64,
        /// Currency: three upper-case letters, e.g. EUR.
        #[arg(long, value_parser = parse::currency)]
        currency: String,
        /// Participants that fund it.
        #[arg(long, value_name = "N", default_value_t = 1,
              value_parser = clap::value_parser!(i64).range(1..=10_000))]
        min_participants: i64,
        /// Deadline of the (first) round: YYYY-MM-DD (00:00 UTC), YYYY-MM-DDTHH:MM[:SS] (UTC)
        /// or @UNIX-SECONDS.
        // This doc comment is `--help` text, which clap prints verbatim: `[:SS]` means
        // "optional", not a rustdoc link, and escaping it would print the backslashes.
        #[allow(rustdoc::broken_intra_doc_links)]
        #[arg(long, value_name = "TIME", value_parser = parse::time)]
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
        #[arg(long, value_name = "K", value_parser = parse::round)]
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
        #[arg(long, value_name = "AMOUNT", value_parser = parse::money(0, MAX_UNIT_PRICE))]
        unit_price: i64,
        /// The least quantity the supplier sells at that price.
        #[arg(long, value_name = "N", default_value_t = 1,
              value_parser = clap::value_parser!(i64).range(1..=MAX_PURCHASE_QUANTITY))]
        min_quantity: i64,
        /// Round (default: the round open now).
        #[arg(long, value_name = "K", value_parser = parse::round)]
        round: Option<i64>,
    },
    /// The coordinator places the order with the winning bid (the round must be funded).
    Order {
        /// Purchase id prefix.
        purchase: String,
        /// Round (default: the latest round with commitments).
        #[arg(long, value_name = "K", value_parser = parse::round)]
        round: Option<i64>,
    },
    /// The coordinator marks an ordered round delivered.
    Deliver {
        /// Purchase id prefix.
        purchase: String,
        /// Round (default: the latest round with commitments).
        #[arg(long, value_name = "K", value_parser = parse::round)]
        round: Option<i64>,
    },
    /// The coordinator marks a participant's payment (after the order).
    Paid {
        /// Purchase id prefix.
        purchase: String,
        /// The participant (display name or id prefix).
        member: String,
        /// Round (default: the latest round with commitments).
        #[arg(long, value_name = "K", value_parser = parse::round)]
        round: Option<i64>,
    },
    /// Mark a pickup (after delivery): the coordinator for anyone, a participant for themself.
    Pickup {
        /// Purchase id prefix.
        purchase: String,
        /// The participant (display name or id prefix; default: you).
        member: Option<String>,
        /// Round (default: the latest round with commitments).
        #[arg(long, value_name = "K", value_parser = parse::round)]
        round: Option<i64>,
    },
    /// One purchase: a round with its bids, commitments and amounts due (default: the
    /// round open now).
    Show {
        /// Purchase id prefix.
        purchase: String,
        /// Round to show.
        #[arg(long, value_name = "K", value_parser = parse::round)]
        round: Option<i64>,
        /// Show the phase as at this time instead of now (same forms as --deadline).
        #[arg(long, value_name = "TIME", value_parser = parse::time)]
        at: Option<i64>,
    },
    /// Purchases, newest first, with their current round.
    List {
        /// Phases as at this time instead of now (same forms as --deadline).
        #[arg(long, value_name = "TIME", value_parser = parse::time)]
        at: Option<i64>,
        /// Include purchases hidden by moderators.
        #[arg(long)]
        all: bool,
    },
}

#[derive(Debug, Subcommand)]
pub(crate) enum DecisionCommand {
    /// Put a decision to the vote of all members (one action at most; none is general).
    #[command(group(clap::ArgGroup::new("action").multiple(false)
        .args(["param", "grant", "revoke", "remove", "allocate", "recover"])))]
    Open {
        /// Title (3-100 characters).
        #[arg(long, value_parser = text(3, 100))]
        title: String,
        /// Description (up to 2000 characters).
        #[arg(long, default_value = "", value_parser = text(0, 2000))]
        description: String,
        /// How long the vote stays open: e.g. 7d, 36h, 90m (at most 366d).
        #[arg(long, default_value = "7d", value_parser = parse::window)]
        window: i64,
        /// Change a parameter when it passes, e.g. `--param sp_max_per_proposal=20`.
        #[arg(long, value_name = "KEY=VALUE", value_parser = parse::param)]
        param: Option<Param>,
        /// Grant a role (moderator, steward, treasurer) to `--member`.
        #[arg(long, value_name = "ROLE", requires = "member", value_parser = parse::keyword::<Role>)]
        grant: Option<Role>,
        /// Revoke a role from `--member`.
        #[arg(long, value_name = "ROLE", requires = "member", value_parser = parse::keyword::<Role>)]
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
        /// Recover MEMBER (who lost every device and backup) to the new identity key of
        /// CODE, the code `coop device recover-request` printed on their new machine, when it
        /// passes, after `recovery_wait_days` (docs/RULES.md R19).
        #[arg(long, num_args = 2, value_names = ["MEMBER", "CODE"])]
        recover: Vec<String>,
    },
    /// Vote yes, no or abstain (abstentions count towards the quorum only).
    Vote {
        /// Decision id prefix.
        id: String,
        /// yes, no or abstain.
        #[arg(value_parser = parse::keyword::<Choice>)]
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

/// `coop peer` subcommands.
#[derive(Debug, Subcommand)]
pub(crate) enum PeerCommand {
    /// Remembered peer addresses (source, last seen, connected) and relays.
    List,
    /// Remember a peer address (dialed at every start), or a relay with --relay.
    Add {
        /// A multiaddr, e.g. /ip4/192.168.1.20/tcp/4001/p2p/12D3KooW...
        addr: String,
        /// ADDR is a community relay (it must end in /p2p/RELAY_PEER_ID).
        #[arg(long)]
        relay: bool,
    },
    /// Forget a peer (an address, a peer id or a member's name), or a relay with --relay.
    Remove {
        /// The address, the peer id, or the display name of the member whose node it is.
        what: String,
        /// WHAT is a relay address.
        #[arg(long)]
        relay: bool,
    },
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn the_command_line_is_consistent() {
        Cli::command().debug_assert();
    }
}
