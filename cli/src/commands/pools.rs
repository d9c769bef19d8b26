//! Investment pools and relief: `pool create|contribute|confirm|apply|disburse|return|show|
//! list` and `relief request|approve|show|list`.
//!
//! Amounts are parsed from decimal text into minor units at the edge (`cli.rs`) and printed
//! with two decimals; JSON carries the integers. A relief reason is sealed to the stewards
//! here, with fresh bytes from the OS RNG, and opened here with this member's identity key
//! when they are a steward; everyone else sees "sealed".

use anyhow::{bail, Context, Result};
use coop_model::record;
use coop_model::record::money;
use coop_model::seal::{self, SealEntropy};
use coop_model::state::{
    Application, ApplicationStatus, ContributionStatus, MovementKind, Pool, ReliefRequest,
};
use coop_model::{IdentityKey, MemberId, Record, RecordId, State};
use rand::RngCore;
use serde_json::{json, Value};

use crate::app::{self, App, Report};
use crate::cli::{PoolCommand, ReliefCommand};
use crate::show::{self, Table};
use coop_model::query::Family;

pub(crate) fn pool(app: &App, cmd: PoolCommand) -> Result<Report> {
    match cmd {
        PoolCommand::Create {
            name,
            description,
            currency,
            policy,
            relief,
        } => {
            let mut b = app.backend()?;
            let id = b.submit(
                Record::Pool(record::Pool {
                    name: name.clone(),
                    description,
                    currency: currency.clone(),
                    policy,
                    relief,
                }),
                app.now,
            )?;
            let what = if relief { "relief fund" } else { "pool" };
            let next = if relief {
                format!(
                    "Members contribute with `coop pool contribute {} AMOUNT` and ask for help with `coop relief request {} AMOUNT --reason TEXT`.",
                    id.short(),
                    id.short()
                )
            } else {
                format!(
                    "Members contribute with `coop pool contribute {} AMOUNT` and apply with `coop pool apply {}`.",
                    id.short(),
                    id.short()
                )
            };
            Ok(Report::new(
                json!({ "id": id, "name": name, "currency": currency, "policy": policy, "relief": relief }),
                format!("Opened {what} {name:?} ({currency}, returns: {policy}): {id}\n{next}\n"),
            ))
        }
        PoolCommand::Contribute { pool, amount } => {
            let mut b = app.backend()?;
            let state = app::view(&mut b, Family::Pools)?;
            let pid = app::record(Family::Pools, &state, &pool)?;
            let id = b.submit(
                Record::Contribution(record::Contribution { pool: pid, amount }),
                app.now,
            )?;
            let currency = currency_of(&state, &pid);
            Ok(Report::new(
                json!({ "id": id, "pool": pid, "amount": amount, "currency": currency, "status": "pledged" }),
                format!(
                    "Pledged {} {currency} to {:?}: contribution {id}\nIt counts once a treasurer confirms the money arrived (`coop pool confirm {}`).\n",
                    money(amount),
                    pool_name(&state, &pid),
                    id.short()
                ),
            ))
        }
        PoolCommand::Confirm { contribution } => {
            let mut b = app.backend()?;
            let state = app::view(&mut b, Family::Pools)?;
            let kid = app::record(Family::Pools, &state, &contribution)?;
            let id = b.submit(
                Record::ContributionConfirm(record::ContributionConfirm { contribution: kid }),
                app.now,
            )?;
            let state = app::view(&mut b, Family::Pools)?;
            let k = state
                .contributions
                .get(&kid)
                .context("the contribution left the ledger")?;
            let p = state.pools.get(&k.pool).context("no such pool")?;
            Ok(Report::new(
                json!({
                    "id": id, "contribution": kid, "pool": p.id, "amount": k.amount,
                    "currency": p.currency, "balance": p.balance,
                }),
                format!(
                    "Confirmed {} {} from {} to {:?}: record {id}\nThe pool holds {} {}.\n",
                    money(k.amount),
                    p.currency,
                    show::name(&state, &k.contributor),
                    p.name,
                    money(p.balance),
                    p.currency
                ),
            ))
        }
        PoolCommand::Apply {
            pool,
            title,
            amount,
            terms,
        } => {
            let mut b = app.backend()?;
            let state = app::view(&mut b, Family::Pools)?;
            let pid = app::record(Family::Pools, &state, &pool)?;
            let id = b.submit(
                Record::Application(record::Application {
                    pool: pid,
                    title: title.clone(),
                    amount,
                    terms,
                }),
                app.now,
            )?;
            Ok(Report::new(
                json!({ "id": id, "pool": pid, "title": title, "amount": amount, "currency": currency_of(&state, &pid), "status": "pending" }),
                format!(
                    "Applied to {:?} for {} {}: application {id}\nA pool-allocation decision allocates it; then treasurers disburse.\n",
                    pool_name(&state, &pid),
                    money(amount),
                    currency_of(&state, &pid)
                ),
            ))
        }
        PoolCommand::Disburse {
            application,
            amount,
        } => {
            let mut b = app.backend()?;
            let state = app::view(&mut b, Family::Pools)?;
            let aid = app::record(Family::Pools, &state, &application)?;
            let id = b.submit(
                Record::Disbursement(record::Disbursement {
                    application: aid,
                    amount,
                }),
                app.now,
            )?;
            let state = app::view(&mut b, Family::Pools)?;
            let a = state
                .applications
                .get(&aid)
                .context("the application left the ledger")?;
            let p = state.pools.get(&a.pool).context("no such pool")?;
            Ok(Report::new(
                json!({
                    "id": id, "application": aid, "pool": p.id, "amount": amount,
                    "currency": p.currency, "disbursed": a.disbursed, "allocated": a.allocated,
                    "balance": p.balance,
                }),
                format!(
                    "Disbursed {} {} to {:?}: record {id}\n{} of {} allocated paid out; the pool holds {}.\n",
                    money(amount),
                    p.currency,
                    a.title,
                    money(a.disbursed),
                    money(a.allocated),
                    money(p.balance)
                ),
            ))
        }
        PoolCommand::Return { from, amount } => {
            let mut b = app.backend()?;
            let state = app::view(&mut b, Family::Pools)?;
            let fid = app::record(Family::Pools, &state, &from)?;
            let id = b.submit(
                Record::Return(record::Return { from: fid, amount }),
                app.now,
            )?;
            let state = app::view(&mut b, Family::Pools)?;
            let pid = state.applications.get(&fid).map_or(fid, |a| a.pool);
            let p = state.pools.get(&pid).context("no such pool")?;
            let distributed = p
                .movements
                .iter()
                .find(|m| m.id == id)
                .map_or(0, |m| m.distributed);
            Ok(Report::new(
                json!({
                    "id": id, "from": fid, "pool": pid, "amount": amount, "currency": p.currency,
                    "distributed": distributed, "reinvested": amount - distributed,
                    "balance": p.balance,
                }),
                format!(
                    "Returned {} {} to {:?} ({}): record {id}\n{} owed to contributors, {} kept; the pool holds {}.\n",
                    money(amount),
                    p.currency,
                    p.name,
                    p.policy,
                    money(distributed),
                    money(amount - distributed),
                    money(p.balance)
                ),
            ))
        }
        PoolCommand::Show { pool } => {
            let state = app.view(Family::Pools)?;
            let pid = app::record(Family::Pools, &state, &pool)?;
            let p = state
                .pools
                .get(&pid)
                .with_context(|| format!("{} is not a pool", pid.short()))?;
            Ok(Report::new(
                pool_json(&state, p, true),
                pool_text(&state, p),
            ))
        }
        PoolCommand::List { all } => {
            let state = app.view(Family::Pools)?;
            let pos = app::positions(&state);
            let mut ps: Vec<&Pool> = state
                .pools
                .values()
                .filter(|p| all || !app::hidden(&state, &p.id))
                .collect();
            ps.sort_by_key(|p| std::cmp::Reverse(pos.get(&p.id).copied()));
            let mut t = Table::new(&[
                "id",
                "kind",
                "currency",
                "balance",
                "confirmed",
                "pledged",
                "contributors",
                "policy",
                "name",
            ]);
            for p in &ps {
                t.row(vec![
                    p.id.short(),
                    if p.relief { "relief" } else { "pool" }.into(),
                    p.currency.clone(),
                    money(p.balance),
                    money(p.confirmed),
                    money(p.pledged),
                    p.contributors.len().to_string(),
                    p.policy.to_string(),
                    show::clip(&p.name, 40),
                ]);
            }
            let text = if t.is_empty() {
                "No pools yet. Open one with `coop pool create`.\n".into()
            } else {
                t.render()
            };
            let totals: serde_json::Map<String, Value> = state
                .pool_totals()
                .into_iter()
                .map(|(c, t)| (c, json!(t)))
                .collect();
            let list: Vec<Value> = ps.iter().map(|p| pool_json(&state, p, false)).collect();
            Ok(Report::new(
                json!({ "pools": list, "totals": totals }),
                text,
            ))
        }
    }
}

pub(crate) fn relief(app: &App, cmd: ReliefCommand) -> Result<Report> {
    match cmd {
        ReliefCommand::Request {
            fund,
            amount,
            urgency,
            reason,
        } => {
            let mut b = app.backend()?;
            let state = app::view(&mut b, Family::Pools)?;
            let fid = app::record(Family::Pools, &state, &fund)?;
            let stewards = state.stewards();
            if stewards.is_empty() {
                bail!("the community has no stewards to seal the reason to");
            }
            let mut entropy = SealEntropy {
                ephemeral: [0; 32],
                content_key: [0; 32],
                nonce: [0; 12],
            };
            let mut rng = rand::rngs::OsRng;
            rng.fill_bytes(&mut entropy.ephemeral);
            rng.fill_bytes(&mut entropy.content_key);
            rng.fill_bytes(&mut entropy.nonce);
            let sealed =
                seal::seal(reason.as_bytes(), &stewards, &entropy).context("sealing the reason")?;
            let id = b.submit(
                Record::ReliefRequest(record::ReliefRequest {
                    fund: fid,
                    amount,
                    urgency,
                    reason: sealed,
                }),
                app.now,
            )?;
            let names: Vec<String> = stewards.iter().map(|m| show::name(&state, m)).collect();
            Ok(Report::new(
                json!({
                    "id": id, "fund": fid, "amount": amount, "currency": currency_of(&state, &fid),
                    "urgency": urgency, "status": "pending", "sealed_to": stewards,
                }),
                format!(
                    "Asked {:?} for {} {} ({urgency} urgency): request {id}\nThe reason is sealed to the stewards ({}); {} approval(s) release it.\n",
                    pool_name(&state, &fid),
                    money(amount),
                    currency_of(&state, &fid),
                    names.join(", "),
                    state.params.relief_approvals
                ),
            ))
        }
        ReliefCommand::Approve { request } => {
            let mut b = app.backend()?;
            let state = app::view(&mut b, Family::Pools)?;
            let rid = app::record(Family::Pools, &state, &request)?;
            let id = b.submit(
                Record::ReliefApprove(record::ReliefApprove { request: rid }),
                app.now,
            )?;
            let state = app::view(&mut b, Family::Pools)?;
            let r = state
                .relief_requests
                .get(&rid)
                .context("the request left the ledger")?;
            let next = if r.released_by == Some(id) {
                format!(
                    "Released: {} {} to {}.",
                    money(r.amount),
                    currency_of(&state, &r.fund),
                    show::name(&state, &r.beneficiary)
                )
            } else {
                format!(
                    "{} of {} approvals.",
                    r.approvals.len(),
                    state.params.relief_approvals
                )
            };
            Ok(Report::new(
                json!({
                    "id": id, "request": rid, "status": r.status.as_str(),
                    "approvals": r.approvals.len(), "needed": state.params.relief_approvals,
                }),
                format!("Approved relief {}: record {id}\n{next}\n", rid.short()),
            ))
        }
        ReliefCommand::Show { request } => {
            let reader = Reader::of(app)?;
            let state = app.view(Family::Pools)?;
            let rid = app::record(Family::Pools, &state, &request)?;
            let r = state
                .relief_requests
                .get(&rid)
                .with_context(|| format!("{} is not a relief request", rid.short()))?;
            let reason = reader.reason(&state, r);
            let v = relief_json(&state, r, &reason);
            let mut s = format!(
                "Relief {}\nbeneficiary  {}\nfund         {}\namount       {} {}\nurgency      {}\nstatus       {}\napprovals    {} of {}{}\nreason       {}\n",
                r.id,
                show::name(&state, &r.beneficiary),
                pool_name(&state, &r.fund),
                money(r.amount),
                currency_of(&state, &r.fund),
                r.urgency,
                r.status.as_str(),
                r.approvals.len(),
                state.params.relief_approvals,
                names(&state, r.approvals.iter().map(|a| &a.steward)),
                reason.text(),
            );
            if let Some(t) = r.released_at {
                s.push_str(&format!("released     {}\n", show::datetime(t)));
            }
            Ok(Report::new(v, s))
        }
        ReliefCommand::List { status, all } => {
            let reader = Reader::of(app)?;
            let state = app.view(Family::Pools)?;
            let pos = app::positions(&state);
            let mut rs: Vec<&ReliefRequest> = state
                .relief_requests
                .values()
                .filter(|r| status.as_deref().is_none_or(|s| r.status.as_str() == s))
                .filter(|r| all || !app::hidden(&state, &r.id))
                .collect();
            rs.sort_by_key(|r| std::cmp::Reverse(pos.get(&r.id).copied()));
            let mut t = Table::new(&[
                "id",
                "status",
                "urgency",
                "beneficiary",
                "amount",
                "approvals",
                "reason",
            ]);
            let mut list = Vec::new();
            for r in rs {
                let reason = reader.reason(&state, r);
                t.row(vec![
                    r.id.short(),
                    r.status.as_str().into(),
                    r.urgency.to_string(),
                    show::name(&state, &r.beneficiary),
                    format!("{} {}", money(r.amount), currency_of(&state, &r.fund)),
                    format!("{}/{}", r.approvals.len(), state.params.relief_approvals),
                    show::clip(&reason.text(), 50),
                ]);
                list.push(relief_json(&state, r, &reason));
            }
            let text = if t.is_empty() {
                "No relief requests.\n".into()
            } else {
                t.render()
            };
            let totals: serde_json::Map<String, Value> = state
                .relief_totals()
                .into_iter()
                .map(|(c, t)| (c, json!(t)))
                .collect();
            Ok(Report::new(
                json!({ "requests": list, "totals": totals }),
                text,
            ))
        }
    }
}

/// Who reads relief reasons: this member, with their identity key.
struct Reader {
    me: MemberId,
    key: IdentityKey,
}

/// A relief reason as this member may see it.
enum Reason {
    /// Opened (the reader is a steward it was sealed to).
    Open(String),
    /// Not for this reader.
    Sealed,
    /// Sealed to this steward but it would not open.
    Unreadable(String),
}

impl Reason {
    fn text(&self) -> String {
        match self {
            Reason::Open(t) => t.clone(),
            Reason::Sealed => "sealed".into(),
            Reason::Unreadable(e) => format!("sealed ({e})"),
        }
    }
}

impl Reader {
    fn of(app: &App) -> Result<Reader> {
        Ok(Reader {
            me: app.me()?,
            key: app.dir.identity()?,
        })
    }

    /// The reason opens for current stewards only (docs/RULES.md R8–R9: shown to stewards only), and only
    /// when it was sealed to them.
    fn reason(&self, state: &State, r: &ReliefRequest) -> Reason {
        if !state.stewards().contains(&self.me) {
            return Reason::Sealed;
        }
        if !r.sealed_to.contains(&self.me) {
            return Reason::Unreadable("not sealed to you".into());
        }
        match seal::open(&r.sealed_reason, &self.key) {
            Ok(t) => Reason::Open(String::from_utf8_lossy(&t).into_owned()),
            Err(e) => Reason::Unreadable(e.to_string()),
        }
    }
}

fn relief_json(state: &State, r: &ReliefRequest, reason: &Reason) -> Value {
    json!({
        "id": r.id,
        "fund": r.fund,
        "beneficiary": r.beneficiary,
        "beneficiary_name": show::name(state, &r.beneficiary),
        "amount": r.amount,
        "currency": currency_of(state, &r.fund),
        "urgency": r.urgency,
        "status": r.status.as_str(),
        "approvals": r.approvals.iter().map(|a| json!({
            "id": a.id, "steward": a.steward, "steward_name": show::name(state, &a.steward),
        })).collect::<Vec<_>>(),
        "needed": state.params.relief_approvals,
        "released_by": r.released_by,
        "released_at": r.released_at,
        "sealed_to": r.sealed_to,
        "reason": match reason { Reason::Open(t) => Value::from(t.as_str()), _ => Value::Null },
        "reason_sealed": !matches!(reason, Reason::Open(_)),
    })
}

fn currency_of(state: &State, pool: &RecordId) -> String {
    state
        .pools
        .get(pool)
        .map_or_else(|| "?".into(), |p| p.currency.clone())
}

fn pool_name(state: &State, pool: &RecordId) -> String {
    state
        .pools
        .get(pool)
        .map_or_else(|| pool.short(), |p| p.name.clone())
}

fn names<'a>(state: &State, ms: impl Iterator<Item = &'a MemberId>) -> String {
    let v: Vec<String> = ms.map(|m| show::name(state, m)).collect();
    if v.is_empty() {
        String::new()
    } else {
        format!(" ({})", v.join(", "))
    }
}

fn application_status(a: &Application) -> &'static str {
    match a.status {
        ApplicationStatus::Pending => "pending",
        ApplicationStatus::Allocated => "allocated",
    }
}

fn applications_of<'a>(state: &'a State, pool: &RecordId) -> Vec<&'a Application> {
    state
        .applications
        .values()
        .filter(|a| a.pool == *pool)
        .collect()
}

fn pool_json(state: &State, p: &Pool, detail: bool) -> Value {
    let mut v = json!({
        "id": p.id,
        "name": p.name,
        "description": p.description,
        "creator": p.creator,
        "currency": p.currency,
        "policy": p.policy,
        "relief": p.relief,
        "balance": p.balance,
        "confirmed": p.confirmed,
        "pledged": p.pledged,
        "disbursed": p.disbursed,
        "returned": p.returned,
        "distributed": p.distributed,
        "contributors": p.contributors.iter().map(|(m, c)| json!({
            "member": m,
            "name": show::name(state, m),
            "confirmed": c.confirmed,
            "share_bps": c.share_bps,
            "owed": c.owed,
        })).collect::<Vec<_>>(),
        "hidden": app::hidden(state, &p.id),
    });
    if detail {
        let contributions: Vec<Value> = state
            .contributions
            .values()
            .filter(|k| k.pool == p.id)
            .map(|k| {
                json!({
                    "id": k.id,
                    "contributor": k.contributor,
                    "contributor_name": show::name(state, &k.contributor),
                    "amount": k.amount,
                    "status": match k.status {
                        ContributionStatus::Pledged => "pledged",
                        ContributionStatus::Confirmed => "confirmed",
                    },
                    "confirmed_by": k.confirmed_by,
                })
            })
            .collect();
        let applications: Vec<Value> = applications_of(state, &p.id)
            .into_iter()
            .map(|a| {
                json!({
                    "id": a.id,
                    "applicant": a.applicant,
                    "applicant_name": show::name(state, &a.applicant),
                    "title": a.title,
                    "amount": a.amount,
                    "terms": a.terms,
                    "status": application_status(a),
                    "decision": a.decision,
                    "allocated": a.allocated,
                    "disbursed": a.disbursed,
                    "returned": a.returned,
                })
            })
            .collect();
        // Relief releases disclose beneficiary and amount (docs/RULES.md R8–R9), never the reason.
        let movements: Vec<Value> = p
            .movements
            .iter()
            .map(|m| {
                let beneficiary = (m.kind == MovementKind::Release)
                    .then(|| m.of.and_then(|r| state.relief_requests.get(&r)))
                    .flatten()
                    .map(|r| r.beneficiary);
                json!({
                    "id": m.id,
                    "kind": m.kind,
                    "amount": m.amount,
                    "of": m.of,
                    "time": m.time,
                    "distributed": m.distributed,
                    "beneficiary": beneficiary,
                    "beneficiary_name": beneficiary.map(|b| show::name(state, &b)),
                })
            })
            .collect();
        v["contributions"] = json!(contributions);
        v["applications"] = json!(applications);
        v["movements"] = json!(movements);
    }
    v
}

fn pool_text(state: &State, p: &Pool) -> String {
    let c = &p.currency;
    let mut s = format!(
        "{:?} ({})\nkind         {}\ncurrency     {c}\nreturns      {}\nbalance      {} {c}\n             = confirmed {} - disbursed {} + returned {} - distributed {}\npledged      {} {c} awaiting a treasurer\n",
        p.name,
        p.id,
        if p.relief { "relief fund" } else { "investment pool" },
        p.policy,
        money(p.balance),
        money(p.confirmed),
        money(p.disbursed),
        money(p.returned),
        money(p.distributed),
        money(p.pledged),
    );
    if !p.description.is_empty() {
        s.push_str(&format!("\n{}\n", p.description));
    }
    s.push('\n');
    if p.contributors.is_empty() {
        s.push_str("No confirmed contributions yet.\n");
    } else {
        let mut t = Table::new(&["contributor", "confirmed", "share", "owed"]);
        for (m, x) in &p.contributors {
            t.row(vec![
                show::name(state, m),
                money(x.confirmed),
                format!("{}.{:02} %", x.share_bps / 100, x.share_bps % 100),
                money(x.owed),
            ]);
        }
        s.push_str(&t.render());
    }
    let apps = applications_of(state, &p.id);
    if !apps.is_empty() {
        s.push('\n');
        let mut t = Table::new(&[
            "application",
            "applicant",
            "status",
            "asked",
            "disbursed",
            "returned",
            "title",
        ]);
        for a in apps {
            t.row(vec![
                a.id.short(),
                show::name(state, &a.applicant),
                application_status(a).into(),
                money(a.amount),
                money(a.disbursed),
                money(a.returned),
                show::clip(&a.title, 40),
            ]);
        }
        s.push_str(&t.render());
    }
    if !p.movements.is_empty() {
        s.push('\n');
        let mut t = Table::new(&["record", "when", "movement", "amount", "detail"]);
        for m in &p.movements {
            let detail = match m.kind {
                MovementKind::Release => {
                    m.of.and_then(|r| state.relief_requests.get(&r))
                        .map_or(String::new(), |r| {
                            format!("to {}", show::name(state, &r.beneficiary))
                        })
                }
                MovementKind::Return if m.distributed > 0 => {
                    format!("{} owed to contributors", money(m.distributed))
                }
                _ => m.of.map_or(String::new(), |r| r.short()),
            };
            let (kind, sign) = match m.kind {
                MovementKind::Contribution => ("contribution", "+"),
                MovementKind::Disbursement => ("disbursement", "-"),
                MovementKind::Release => ("relief", "-"),
                MovementKind::Return => ("return", "+"),
            };
            t.row(vec![
                m.id.short(),
                show::datetime(m.time),
                kind.into(),
                format!("{sign}{}", money(m.amount)),
                detail,
            ]);
        }
        s.push_str(&t.render());
    }
    s
}
