//! A form's fields as a ledger record, written through the same path as `POST
//! /api/v1/records` (the author's claimed time, the store actor's dry run and gate, the
//! store); a refusal comes back as one sentence (`refusal`), and nothing is written.
//!
//! Field names carry their type as a prefix, so that the record's JSON form follows
//! without a per-kind table: `n:` an integer, `on:` an optional integer, `m:` money in
//! major units ("12.50") as minor units, `t:` a `datetime-local` value (UTC) as Unix
//! seconds, `b:` `true`/`false`, `o:` optional text (left out when empty); a name without
//! prefix is text; `j:` is a JSON value the page itself wrote (a decision's action); `a:` a
//! text field of the record's `action` object (a decision's action, `a:action=param`,
//! `a:key`, `a:value`); `seal:` text sealed to the community's stewards before it is
//! written (a relief request's reason). Names starting `_` are the form's own (`_csrf`,
//! `_back`, `_form`).

use coop_model::{Record, RejectReason};
use serde_json::{Map, Value};

use super::refusal::{self, Facts};
use super::App;
use crate::actor::unix_now;
use crate::api::QUEUE_WAIT;
use crate::error::{one_line, NodeError};

/// A local path to go back to: a path on this origin, never another site.
pub(super) fn back_path(p: &str) -> String {
    if p.starts_with('/') && !p.starts_with("//") && !p.contains('\\') {
        p.to_string()
    } else {
        "/".into()
    }
}

/// The record a form describes; a one-line error naming the bad field otherwise.
pub(super) fn record(fields: &[(String, String)]) -> Result<Record, String> {
    let mut obj = Map::new();
    let mut action = Map::new();
    for (name, value) in fields {
        if name.starts_with('_') {
            continue;
        }
        let v = value.trim();
        let (prefix, key) = name.split_once(':').unwrap_or(("", name.as_str()));
        let bad = |what: &str| format!("{key}: {v:?} is not {what}");
        let json = match prefix {
            "" => Value::String(v.to_string()),
            "o" if v.is_empty() => continue,
            "o" => Value::String(v.to_string()),
            "on" if v.is_empty() => continue,
            "n" | "on" => Value::from(v.parse::<i64>().map_err(|_| bad("a whole number"))?),
            "m" => Value::from(money(v).ok_or_else(|| bad("an amount like 12.50"))?),
            "t" => Value::from(local_time(v).ok_or_else(|| bad("a date and time"))?),
            "b" => Value::Bool(v == "true"),
            "j" => serde_json::from_str(v).map_err(|_| bad("a JSON value"))?,
            "a" => {
                action.insert(key.to_string(), Value::String(v.to_string()));
                continue;
            }
            _ => return Err(format!("unknown field {name:?}")),
        };
        obj.insert(key.to_string(), json);
    }
    if !action.is_empty() {
        obj.insert("action".into(), Value::Object(action));
    }
    serde_json::from_value(Value::Object(obj))
        .map_err(|e| format!("The form is not complete: {e}").replace('\n', " "))
}

/// "12.50" → 1250; "3" → 300.
fn money(s: &str) -> Option<i64> {
    let (whole, frac) = s.split_once('.').unwrap_or((s, ""));
    if frac.len() > 2 || whole.is_empty() || !whole.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    if !frac.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let frac: i64 = format!("{frac:0<2}").parse().ok()?;
    whole
        .parse::<i64>()
        .ok()?
        .checked_mul(100)?
        .checked_add(frac)
}

/// `YYYY-MM-DDTHH:MM` (UTC) → Unix seconds.
fn local_time(s: &str) -> Option<i64> {
    let (date, time) = s.split_once('T')?;
    let day: coop_model::Day = date.parse().ok()?;
    let (h, m) = time.split_once(':')?;
    let (h, m): (i64, i64) = (h.parse().ok()?, m.get(..2)?.parse().ok()?);
    if !(0..24).contains(&h) || !(0..60).contains(&m) {
        return None;
    }
    Some(i64::from(day.0) * 86_400 + h * 3600 + m * 60)
}

/// Writes the form's record; the sentence to show beside the form when it is not written.
pub(super) async fn write(app: &App, fields: &[(String, String)]) -> Result<(), String> {
    let fields = seal_fields(app, fields).await?;
    let record = record(&fields)?;
    if let Record::Rename(r) = &record {
        // The gate would refuse a bad name as an invalid record; say which rule it broke.
        coop_model::record::check_name(&r.display_name)
            .map_err(|why| format!("{}{}.", why[..1].to_uppercase(), &why[1..]))?;
    }
    let now = unix_now();
    match app
        .api
        .store
        .submit_within(QUEUE_WAIT, record.clone(), now)
        .await
    {
        Ok(_) => Ok(()),
        Err(NodeError::Refused(r)) => {
            let facts = facts(app, record, r.reason, r.detail).await;
            Err(refusal::sentence(r.reason, &facts))
        }
        Err(e) => Err(format!("Not written: {}", one_line(&e))),
    }
}

/// The form's `seal:` fields sealed to the community's stewards (hex, as the record's JSON
/// form carries sealed text); the other fields as they are.
async fn seal_fields(
    app: &App,
    fields: &[(String, String)],
) -> Result<Vec<(String, String)>, String> {
    if !fields.iter().any(|(n, _)| n.starts_with("seal:")) {
        return Ok(fields.to_vec());
    }
    let stewards = app
        .api
        .store
        .read_within(QUEUE_WAIT, |n| n.state().stewards())
        .await
        .map_err(|e| format!("Not written: {}", one_line(&e)))?;
    if stewards.is_empty() {
        return Err("The community has no stewards to seal the reason to.".into());
    }
    let mut out = Vec::with_capacity(fields.len());
    for (name, value) in fields {
        let Some(key) = name.strip_prefix("seal:") else {
            out.push((name.clone(), value.clone()));
            continue;
        };
        let text = value.trim();
        if text.is_empty() {
            return Err(format!("{key}: say why, in a few words."));
        }
        let mut entropy = coop_model::seal::SealEntropy {
            ephemeral: [0; 32],
            content_key: [0; 32],
            nonce: [0; 12],
        };
        let mut rng = rand::rngs::OsRng;
        rand::RngCore::fill_bytes(&mut rng, &mut entropy.ephemeral);
        rand::RngCore::fill_bytes(&mut rng, &mut entropy.content_key);
        rand::RngCore::fill_bytes(&mut rng, &mut entropy.nonce);
        let sealed = coop_model::seal::seal(text.as_bytes(), &stewards, &entropy)
            .map_err(|e| format!("{key}: {e}"))?;
        out.push((key.to_string(), hex::encode(sealed)));
    }
    Ok(out)
}

/// The numbers that make a refusal's sentence concrete, from the state it was judged by.
async fn facts(app: &App, record: Record, reason: RejectReason, detail: String) -> Facts {
    app.api
        .store
        .read_within(QUEUE_WAIT, move |n| {
            let me = n.member();
            let state = n.state();
            let mine_on = |p: &coop_model::RecordId| {
                coop_model::query::proposals(state)
                    .into_iter()
                    .find(|x| &x.id == p)
                    .map(|x| {
                        x.allocations
                            .iter()
                            .filter(|a| a.member == me)
                            .map(|a| a.points.0)
                            .sum::<i64>()
                    })
            };
            let _ = reason;
            let mut detail = detail;
            for m in state.members.values() {
                detail = detail.replace(&m.id.short(), &m.display_name);
            }
            Facts {
                kind: Some(record.kind_of()),
                detail: Some(detail),
                proposal_cap: Some(state.params.sp_max_per_proposal),
                mine_on_proposal: match &record {
                    Record::Allocate(a) => mine_on(&a.proposal),
                    _ => None,
                },
                sp_available: state.members.get(&me).map(|m| m.sp.available.0),
                floor_minutes: Some(state.params.timebank_floor_minutes),
            }
        })
        .await
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn f(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(a, b)| (a.to_string(), b.to_string()))
            .collect()
    }

    #[test]
    fn a_form_becomes_its_record() {
        let to = coop_model::MemberId([7; 32]).to_hex();
        let r = record(&f(&[
            ("_csrf", "x"),
            ("kind", "attest"),
            ("to", &to),
            ("n:minutes", "90"),
            ("service", "Garden work"),
            ("category", "garden"),
            ("date", "2026-11-29"),
        ]))
        .unwrap();
        match r {
            Record::Attest(a) => {
                assert_eq!(a.minutes.0, 90);
                assert_eq!(a.service, "Garden work");
            }
            other => panic!("{other:?}"),
        }
        let e = record(&f(&[("kind", "attest"), ("n:minutes", "ninety")])).unwrap_err();
        assert_eq!(e, "minutes: \"ninety\" is not a whole number");
        assert!(record(&f(&[("kind", "attest")]))
            .unwrap_err()
            .starts_with("The form is not complete"));
    }

    #[test]
    fn action_fields_make_the_decision_action() {
        let bob = coop_model::MemberId([9; 32]).to_hex();
        let r = record(&f(&[
            ("kind", "decision"),
            ("title", "Bob keeps the books"),
            ("description", ""),
            ("n:closes_at", "2000000000"),
            ("a:action", "role_grant"),
            ("a:member", &bob),
            ("a:role", "treasurer"),
        ]))
        .unwrap();
        match r {
            Record::Decision(d) => assert_eq!(
                d.action,
                coop_model::record::DecisionAction::RoleGrant {
                    member: coop_model::MemberId([9; 32]),
                    role: coop_model::record::Role::Treasurer
                }
            ),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn money_times_and_paths() {
        assert_eq!(money("12.5"), Some(1250));
        assert_eq!(money("3"), Some(300));
        assert_eq!(money("0.07"), Some(7));
        assert_eq!(money("1.234"), None);
        assert_eq!(money("-1"), None);
        assert_eq!(local_time("1970-01-02T01:01"), Some(86400 + 3660));
        assert_eq!(local_time("1970-01-02T25:01"), None);
        assert_eq!(back_path("/proposals?x=1"), "/proposals?x=1");
        assert_eq!(back_path("//evil.example/"), "/");
        assert_eq!(back_path("http://evil.example/"), "/");
    }
}
