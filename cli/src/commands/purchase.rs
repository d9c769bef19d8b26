//! Collective purchasing: `purchase propose|commit|bid|order|deliver|paid|pickup|show|list`.
//!
//! Amounts are integers in minor units everywhere below the edge: `--unit-price 12.50` is
//! parsed from its text into 1250 (cli.rs), and printed back as `12.50 EUR`.

use anyhow::{Context, Result};
use coop_model::record;
use coop_model::record::{PurchaseMark, PurchaseStep, Recurrence};
use coop_model::state::{format_time, Bid, Commitment, Purchase, PurchaseRound};
use coop_model::{Record, RecordId, State};
use serde_json::{json, Value};

use crate::app::{self, App, Report};
use crate::cli::PurchaseCommand;
use crate::show::money;
use crate::show::{self, Table};
use coop_model::query::Family;

pub(crate) fn purchase(app: &App, cmd: PurchaseCommand) -> Result<Report> {
    match cmd {
        PurchaseCommand::Propose {
            item,
            unit,
            target,
            reference_price,
            currency,
            min_participants,
            deadline,
            monthly,
        } => {
            let recurrence = if monthly {
                Recurrence::Monthly
            } else {
                Recurrence::None
            };
            let id = app.backend()?.submit(
                Record::from(record::Purchase {
                    item: item.clone(),
                    unit: unit.clone(),
                    target_quantity: target,
                    reference_price,
                    currency: currency.clone(),
                    min_participants,
                    deadline,
                    recurrence,
                }),
                app.now,
            )?;
            Ok(Report::new(
                json!({
                    "id": id, "item": item, "unit": unit, "target_quantity": target,
                    "reference_price": reference_price, "currency": currency,
                    "min_participants": min_participants, "deadline": deadline,
                    "recurrence": recurrence, "phase": "open",
                }),
                format!(
                    "Proposed {item:?}: {target} {unit} at {} reference, at least \
                     {min_participants} participants by {}{}: purchase {id}\n\
                     Neighbours commit with `coop purchase commit {} --quantity N`; \
                     record supplier bids with `coop purchase bid {} ...`.\n",
                    money(reference_price, &currency),
                    format_time(deadline),
                    if monthly { ", every month" } else { "" },
                    id.short(),
                    id.short()
                ),
            ))
        }
        PurchaseCommand::Commit {
            purchase,
            quantity,
            surcharge,
            discount,
            round,
        } => {
            let mut b = app.backend()?;
            let state = app::view(&mut b, Family::Purchases)?;
            let p = find(&state, &purchase)?;
            let round = round.unwrap_or_else(|| open_round(p, app.now));
            let solidarity = surcharge.unwrap_or(0) - discount.unwrap_or(0);
            let id = b.submit(
                Record::PurchaseCommit(record::PurchaseCommit {
                    purchase: p.id,
                    round,
                    quantity,
                    solidarity_percent: solidarity,
                }),
                app.now,
            )?;
            let state = app::view(&mut b, Family::Purchases)?;
            let p = find_id(&state, &p.id)?;
            let r = p.round(round as u32);
            let c = r.commitments.iter().find(|c| c.id == id);
            let mut text = format!(
                "Committed {quantity} {} of {:?} in round {round}: record {id}\n\
                 Round {round}: {} of {} {} from {} of {} participants{}.\n",
                p.unit,
                p.item,
                r.committed_quantity,
                p.target_quantity,
                p.unit,
                r.participants,
                p.min_participants,
                if r.funded { ", funded" } else { "" },
            );
            if let (Some(c), Some(_)) = (c, r.unit_price) {
                text.push_str(&format!(
                    "At the winning bid you owe {}.\n",
                    money(c.due, &p.currency)
                ));
            }
            Ok(Report::new(
                json!({
                    "id": id, "purchase": p.id, "round": round,
                    "commitment": c.map(|c| commitment_json(&state, c)),
                    "funded": r.funded,
                }),
                text,
            ))
        }
        PurchaseCommand::Bid {
            purchase,
            supplier,
            local,
            unit_price,
            min_quantity,
            round,
        } => {
            let mut b = app.backend()?;
            let state = app::view(&mut b, Family::Purchases)?;
            let p = find(&state, &purchase)?;
            let round = round.unwrap_or_else(|| open_round(p, app.now));
            let id = b.submit(
                Record::PurchaseBid(record::PurchaseBid {
                    purchase: p.id,
                    round,
                    supplier: supplier.clone(),
                    local,
                    unit_price,
                    min_quantity,
                }),
                app.now,
            )?;
            let state = app::view(&mut b, Family::Purchases)?;
            let p = find_id(&state, &p.id)?;
            let r = p.round(round as u32);
            let winner = r.winner();
            Ok(Report::new(
                json!({
                    "id": id, "purchase": p.id, "round": round,
                    "winning_bid": winner.map(|w| w.id),
                }),
                format!(
                    "Recorded {supplier:?}'s bid at {} per {} (from {min_quantity}): record {id}\n\
                     Winning bid of round {round}: {}.\n",
                    money(unit_price, &p.currency),
                    p.unit,
                    winner.map_or("none yet".into(), |w| format!(
                        "{:?} at {}",
                        w.supplier,
                        money(w.unit_price, &p.currency)
                    )),
                ),
            ))
        }
        PurchaseCommand::Order { purchase, round } => {
            step(app, &purchase, round, PurchaseStep::Ordered)
        }
        PurchaseCommand::Deliver { purchase, round } => {
            step(app, &purchase, round, PurchaseStep::Delivered)
        }
        PurchaseCommand::Paid {
            purchase,
            member,
            round,
        } => mark(app, &purchase, Some(&member), round, PurchaseMark::Paid),
        PurchaseCommand::Pickup {
            purchase,
            member,
            round,
        } => mark(
            app,
            &purchase,
            member.as_deref(),
            round,
            PurchaseMark::PickedUp,
        ),
        PurchaseCommand::Show {
            purchase,
            round,
            at,
        } => {
            let state = app.view(Family::Purchases)?;
            let p = find(&state, &purchase)?;
            let now = at.unwrap_or(app.now);
            let k = round.unwrap_or_else(|| open_round(p, now)) as u32;
            let mut v = purchase_json(&state, p, now);
            v["round"] = round_json(&state, p, &p.round(k), now);
            v["rounds"] = p
                .rounds
                .values()
                .map(|r| round_json(&state, p, r, now))
                .collect();
            Ok(Report::new(v, show_text(&state, p, k, now)))
        }
        PurchaseCommand::List { at, all } => list(app, at.unwrap_or(app.now), all),
    }
}

/// The round open at `now`, or the last round when every round has closed (so a late
/// commitment is refused by the ledger with `deadline_passed`, not guessed here).
fn open_round(p: &Purchase, now: i64) -> i64 {
    p.current_round(now).unwrap_or(p.round_count() - 1) as i64
}

/// The latest round with commitments (round 0 when there are none): the round the
/// coordinator's steps and marks are about unless `--round` says otherwise.
fn latest_round(p: &Purchase) -> i64 {
    p.rounds
        .values()
        .rev()
        .find(|r| !r.commitments.is_empty())
        .map_or(0, |r| r.round as i64)
}

fn find<'a>(state: &'a State, query: &str) -> Result<&'a Purchase> {
    let id = app::record(Family::Purchases, state, query)?;
    find_id(state, &id)
}

fn find_id<'a>(state: &'a State, id: &RecordId) -> Result<&'a Purchase> {
    state
        .purchases
        .get(id)
        .with_context(|| format!("{} is not a purchase", id.short()))
}

fn step(app: &App, purchase: &str, round: Option<i64>, step: PurchaseStep) -> Result<Report> {
    let mut b = app.backend()?;
    let state = app::view(&mut b, Family::Purchases)?;
    let p = find(&state, purchase)?;
    let round = round.unwrap_or_else(|| latest_round(p));
    let id = b.submit(
        Record::PurchaseStep(record::RoundStep {
            purchase: p.id,
            round,
            step,
        }),
        app.now,
    )?;
    let state = app::view(&mut b, Family::Purchases)?;
    let p = find_id(&state, &p.id)?;
    let r = p.round(round as u32);
    let text = match step {
        PurchaseStep::Ordered => {
            let w = r.winner();
            format!(
                "Ordered round {round} of {:?}: {} {} from {:?} at {} (total {}): record {id}\n\
                 Mark payments with `coop purchase paid {} MEMBER`.\n",
                p.item,
                r.committed_quantity,
                p.unit,
                w.map_or("?", |w| w.supplier.as_str()),
                money(r.unit_price.unwrap_or(0), &p.currency),
                money(r.base_total, &p.currency),
                p.id.short()
            )
        }
        PurchaseStep::Delivered => format!(
            "Delivered round {round} of {:?}: record {id}\n\
             Participants mark their pickup with `coop purchase pickup {}`.\n",
            p.item,
            p.id.short()
        ),
    };
    Ok(Report::new(
        json!({
            "id": id, "purchase": p.id, "round": round, "step": step,
            "phase": p.phase(round as u32, app.now),
        }),
        text,
    ))
}

fn mark(
    app: &App,
    purchase: &str,
    member: Option<&str>,
    round: Option<i64>,
    mark: PurchaseMark,
) -> Result<Report> {
    let mut b = app.backend()?;
    let state = app::view(&mut b, Family::Purchases)?;
    let p = find(&state, purchase)?;
    let who = match member {
        Some(q) => app::member(&state, q)?,
        None => app.me()?,
    };
    let round = round.unwrap_or_else(|| latest_round(p));
    let id = b.submit(
        Record::PurchaseMark(record::RoundMark {
            purchase: p.id,
            round,
            member: who,
            mark,
        }),
        app.now,
    )?;
    let what = match mark {
        PurchaseMark::Paid => "paid",
        PurchaseMark::PickedUp => "picked up",
    };
    Ok(Report::new(
        json!({ "id": id, "purchase": p.id, "round": round, "member": who, "mark": mark }),
        format!(
            "Marked {} {what} in round {round} of {:?}: record {id}\n",
            show::name(&state, &who),
            p.item
        ),
    ))
}

fn purchase_json(state: &State, p: &Purchase, now: i64) -> Value {
    let current = p.current_round(now);
    json!({
        "id": p.id,
        "coordinator": p.coordinator,
        "coordinator_name": show::name(state, &p.coordinator),
        "item": p.item,
        "unit": p.unit,
        "target_quantity": p.target_quantity,
        "reference_price": p.reference_price,
        "currency": p.currency,
        "min_participants": p.min_participants,
        "deadline": p.deadline,
        "recurrence": p.recurrence,
        "current_round": current,
        "current_phase": current.map(|k| p.phase(k, now)),
        "total_savings": p.total_savings,
        "total_spending": p.total_spending,
        "local_spending": p.local_spending,
        "hidden": app::hidden(state, &p.id),
    })
}

fn bid_json(b: &Bid) -> Value {
    json!({
        "id": b.id,
        "recorded_by": b.recorded_by,
        "supplier": b.supplier,
        "local": b.local,
        "unit_price": b.unit_price,
        "min_quantity": b.min_quantity,
    })
}

fn commitment_json(state: &State, c: &Commitment) -> Value {
    json!({
        "id": c.id,
        "member": c.member,
        "member_name": show::name(state, &c.member),
        "quantity": c.quantity,
        "solidarity_percent": c.solidarity_percent,
        "base": c.base,
        "surcharge": c.surcharge,
        "discount_requested": c.discount_requested,
        "discount_granted": c.discount_granted,
        "due": c.due,
        "savings": c.savings,
        "paid": c.paid.is_some(),
        "picked_up": c.picked_up.is_some(),
    })
}

fn round_json(state: &State, p: &Purchase, r: &PurchaseRound, now: i64) -> Value {
    json!({
        "round": r.round,
        "opens_at": p.opens_at(r.round),
        "deadline": r.deadline,
        "phase": p.phase(r.round, now),
        "committed_quantity": r.committed_quantity,
        "participants": r.participants,
        "funded": r.funded,
        "winning_bid": r.winner().map(bid_json),
        "unit_price": r.unit_price,
        "base_total": r.base_total,
        "surcharge_pool": r.surcharge_pool,
        "discounts_requested": r.discounts_requested,
        "discounts_granted": r.discounts_granted,
        "solidarity_surplus": r.solidarity_surplus,
        "total_due": r.total_due,
        "savings": r.savings,
        "ordered": r.ordered,
        "delivered": r.delivered,
        "bids": r.bids.iter().map(bid_json).collect::<Vec<_>>(),
        "commitments": r.commitments.iter().map(|c| commitment_json(state, c)).collect::<Vec<_>>(),
    })
}

fn show_text(state: &State, p: &Purchase, k: u32, now: i64) -> String {
    let cur = &p.currency;
    let r = p.round(k);
    let mut s = format!(
        "{:?} ({})\ncoordinator  {}\ntarget       {} {} from at least {} participants\n\
         reference    {} per {}\nrecurrence   {}\n",
        p.item,
        p.id,
        show::name(state, &p.coordinator),
        p.target_quantity,
        p.unit,
        p.min_participants,
        money(p.reference_price, cur),
        p.unit,
        p.recurrence,
    );
    match p.current_round(now) {
        Some(c) => s.push_str(&format!(
            "now          round {c}, {}, closes {}\n",
            p.phase(c, now).as_str(),
            format_time(p.deadline_of(c))
        )),
        None => s.push_str("now          every round has closed\n"),
    }
    if p.total_spending > 0 {
        s.push_str(&format!(
            "ordered      spent {} ({} local), saved {}\n",
            money(p.total_spending, cur),
            money(p.local_spending, cur),
            money(p.total_savings, cur)
        ));
    }
    s.push_str(&format!(
        "\nRound {k}: {}, {} of {} {} from {} of {} participants, deadline {}\n",
        p.phase(k, now).as_str(),
        r.committed_quantity,
        p.target_quantity,
        p.unit,
        r.participants,
        p.min_participants,
        format_time(r.deadline),
    ));
    if r.bids.is_empty() {
        s.push_str("No bids yet.\n");
    } else {
        let mut t = Table::new(&["bid", "supplier", "local", "unit price", "min qty", "wins"]);
        for b in &r.bids {
            t.row(vec![
                b.id.short(),
                show::clip(&b.supplier, 30),
                if b.local { "yes" } else { "no" }.into(),
                money(b.unit_price, cur),
                b.min_quantity.to_string(),
                if r.winning_bid == Some(b.id) {
                    "yes"
                } else {
                    ""
                }
                .into(),
            ]);
        }
        s.push_str(&t.render());
    }
    if !r.commitments.is_empty() {
        s.push('\n');
        let mut t = Table::new(&[
            "member",
            "qty",
            "solidarity",
            "base",
            "surcharge",
            "discount",
            "due",
            "savings",
            "paid",
            "picked up",
        ]);
        for c in &r.commitments {
            t.row(vec![
                show::name(state, &c.member),
                c.quantity.to_string(),
                format!("{:+}%", c.solidarity_percent),
                money(c.base, cur),
                money(c.surcharge, cur),
                format!(
                    "{} of {}",
                    money(c.discount_granted, cur),
                    money(c.discount_requested, cur)
                ),
                money(c.due, cur),
                money(c.savings, cur),
                if c.paid.is_some() { "yes" } else { "" }.into(),
                if c.picked_up.is_some() { "yes" } else { "" }.into(),
            ]);
        }
        s.push_str(&t.render());
    }
    if r.unit_price.is_some() {
        s.push_str(&format!(
            "\ntotal due {} for a supplier bill of {}: surcharges {}, discounts granted {} of {} \
             asked, surplus {}; savings {}\n",
            money(r.total_due, cur),
            money(r.base_total, cur),
            money(r.surcharge_pool, cur),
            money(r.discounts_granted, cur),
            money(r.discounts_requested, cur),
            money(r.solidarity_surplus, cur),
            money(r.savings, cur),
        ));
    }
    s
}

fn list(app: &App, now: i64, all: bool) -> Result<Report> {
    let state = app.view(Family::Purchases)?;
    let pos = app::positions(&state);
    let mut ps: Vec<&Purchase> = state
        .purchases
        .values()
        .filter(|p| all || !app::hidden(&state, &p.id))
        .collect();
    ps.sort_by_key(|p| std::cmp::Reverse(pos.get(&p.id).copied()));
    let mut t = Table::new(&[
        "id",
        "round",
        "phase",
        "committed",
        "closes",
        "coordinator",
        "item",
    ]);
    for p in &ps {
        let k = open_round(p, now) as u32;
        let r = p.round(k);
        t.row(vec![
            p.id.short(),
            k.to_string(),
            p.phase(k, now).as_str().into(),
            format!("{}/{} {}", r.committed_quantity, p.target_quantity, p.unit),
            format_time(r.deadline),
            show::name(&state, &p.coordinator),
            show::clip(&p.item, 40),
        ]);
    }
    let text = if t.is_empty() {
        "No purchases.\n".into()
    } else {
        t.render()
    };
    let list: Vec<Value> = ps
        .iter()
        .map(|p| {
            let k = open_round(p, now) as u32;
            let mut v = purchase_json(&state, p, now);
            v["round"] = round_json(&state, p, &p.round(k), now);
            v
        })
        .collect();
    Ok(Report::new(json!({ "purchases": list }), text))
}
