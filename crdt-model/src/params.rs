//! Community parameters (docs/RULES.md R16): integers and lists, set at genesis, changed only by governance.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// Why a parameter assignment was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ParamError {
    /// No parameter has that name.
    #[error("unknown parameter {0:?}")]
    Unknown(String),
    /// The value does not parse or is out of range.
    #[error("invalid value {value:?} for {key}: {why}")]
    Invalid {
        /// The parameter.
        key: String,
        /// The value given.
        value: String,
        /// What is wrong with it.
        why: &'static str,
    },
    /// `KEY=VALUE` was expected.
    #[error("expected KEY=VALUE, got {0:?}")]
    Syntax(String),
}

/// Every community parameter with its value.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Params {
    /// Vouches that admit a newcomer.
    pub admission_vouches: i64,
    /// Lowest time balance a confirmation may reach, in minutes.
    pub timebank_floor_minutes: i64,
    /// Trailing window of the fair-exchange index, in days.
    pub fairness_window_days: i64,
    /// Warn when received ÷ provided exceeds this / 100.
    pub fairness_warn_percent: i64,
    /// Support Points per member.
    pub sp_budget: i64,
    /// Most SP one member may lock on one proposal.
    pub sp_max_per_proposal: i64,
    /// Active SP that make a proposal prioritized.
    pub sp_priority_threshold: i64,
    /// Mutual-aid categories.
    pub aid_categories: Vec<String>,
    /// Share of members who must vote, percent.
    pub quorum_percent: i64,
    /// Share of votes cast that must be yes (strictly more), percent.
    pub approval_percent: i64,
    /// Steward approvals that release a relief request.
    pub relief_approvals: i64,
    /// Most relief one member may receive per period, in minor units.
    pub relief_max_per_person: i64,
    /// The period of that cap, in days.
    pub relief_period_days: i64,
    /// Days a recovery decision waits after it was opened before its tally may rebind the
    /// member to a new identity key (docs/RULES.md R19). Absent from records written before
    /// recovery existed: it then takes its default.
    #[serde(default = "default_recovery_wait_days")]
    pub recovery_wait_days: i64,
}

/// The default of [`Params::recovery_wait_days`]: a week, so every member can see the
/// decision and object before it takes effect.
pub const DEFAULT_RECOVERY_WAIT_DAYS: i64 = 7;

fn default_recovery_wait_days() -> i64 {
    DEFAULT_RECOVERY_WAIT_DAYS
}

/// Parameters added after the first release: a record written before one existed lacks
/// its field, and the parameter keeps its default.
pub const LATER_PARAMS: [&str; 1] = ["recovery_wait_days"];

impl Default for Params {
    fn default() -> Self {
        Params {
            admission_vouches: 1,
            timebank_floor_minutes: -600,
            fairness_window_days: 182,
            fairness_warn_percent: 200,
            sp_budget: 100,
            sp_max_per_proposal: 10,
            sp_priority_threshold: 150,
            aid_categories: ["material", "time", "skill", "space"]
                .map(String::from)
                .to_vec(),
            quorum_percent: 30,
            approval_percent: 50,
            relief_approvals: 2,
            relief_max_per_person: 50_000,
            relief_period_days: 365,
            recovery_wait_days: DEFAULT_RECOVERY_WAIT_DAYS,
        }
    }
}

/// The names of all parameters, in the order of docs/RULES.md R16.
pub const PARAM_NAMES: [&str; 14] = [
    "admission_vouches",
    "timebank_floor_minutes",
    "fairness_window_days",
    "fairness_warn_percent",
    "sp_budget",
    "sp_max_per_proposal",
    "sp_priority_threshold",
    "aid_categories",
    "quorum_percent",
    "approval_percent",
    "relief_approvals",
    "relief_max_per_person",
    "relief_period_days",
    "recovery_wait_days",
];

impl Params {
    /// Sets one parameter from its text form (`aid_categories` takes a comma-separated list).
    pub fn set(&mut self, key: &str, value: &str) -> Result<(), ParamError> {
        let invalid = |why| ParamError::Invalid {
            key: key.to_string(),
            value: value.to_string(),
            why,
        };
        if key == "aid_categories" {
            let cats: Vec<String> = value
                .split(',')
                .map(|c| c.trim().to_lowercase())
                .filter(|c| !c.is_empty())
                .collect();
            if cats.is_empty() || cats.iter().any(|c| c.len() > 32) {
                return Err(invalid("a comma-separated list of 1-32 character names"));
            }
            self.aid_categories = cats;
            return Ok(());
        }
        let n: i64 = value
            .trim()
            .parse()
            .map_err(|_| invalid("expected an integer"))?;
        let (slot, ok): (&mut i64, bool) = match key {
            "admission_vouches" => (&mut self.admission_vouches, (1..=100).contains(&n)),
            "timebank_floor_minutes" => (
                &mut self.timebank_floor_minutes,
                (-1_000_000..=0).contains(&n),
            ),
            "fairness_window_days" => (&mut self.fairness_window_days, (1..=3650).contains(&n)),
            "fairness_warn_percent" => (
                &mut self.fairness_warn_percent,
                (100..=100_000).contains(&n),
            ),
            "sp_budget" => (&mut self.sp_budget, (0..=1_000_000).contains(&n)),
            "sp_max_per_proposal" => (&mut self.sp_max_per_proposal, (1..=1_000_000).contains(&n)),
            "sp_priority_threshold" => (
                &mut self.sp_priority_threshold,
                (1..=1_000_000_000).contains(&n),
            ),
            "quorum_percent" => (&mut self.quorum_percent, (0..=100).contains(&n)),
            "approval_percent" => (&mut self.approval_percent, (0..=99).contains(&n)),
            "relief_approvals" => (&mut self.relief_approvals, (1..=100).contains(&n)),
            "relief_max_per_person" => (
                &mut self.relief_max_per_person,
                (0..=i64::MAX / 4).contains(&n),
            ),
            "relief_period_days" => (&mut self.relief_period_days, (1..=3650).contains(&n)),
            "recovery_wait_days" => (&mut self.recovery_wait_days, (0..=365).contains(&n)),
            _ => return Err(ParamError::Unknown(key.to_string())),
        };
        if !ok {
            return Err(invalid("out of range"));
        }
        *slot = n;
        Ok(())
    }

    /// Applies a `KEY=VALUE` assignment.
    pub fn assign(&mut self, kv: &str) -> Result<(), ParamError> {
        let (k, v) = kv
            .split_once('=')
            .ok_or_else(|| ParamError::Syntax(kv.to_string()))?;
        self.set(k.trim(), v)
    }

    /// Every parameter as (name, text value), in the order of docs/RULES.md R16.
    pub fn entries(&self) -> Vec<(&'static str, String)> {
        let map = self.to_map();
        PARAM_NAMES
            .iter()
            .map(|k| (*k, map.get(*k).cloned().unwrap_or_default()))
            .collect()
    }

    /// The parameters as a name → text map (the form stored in the genesis record).
    pub fn to_map(&self) -> BTreeMap<String, String> {
        let mut m = BTreeMap::new();
        let ints = [
            ("admission_vouches", self.admission_vouches),
            ("timebank_floor_minutes", self.timebank_floor_minutes),
            ("fairness_window_days", self.fairness_window_days),
            ("fairness_warn_percent", self.fairness_warn_percent),
            ("sp_budget", self.sp_budget),
            ("sp_max_per_proposal", self.sp_max_per_proposal),
            ("sp_priority_threshold", self.sp_priority_threshold),
            ("quorum_percent", self.quorum_percent),
            ("approval_percent", self.approval_percent),
            ("relief_approvals", self.relief_approvals),
            ("relief_max_per_person", self.relief_max_per_person),
            ("relief_period_days", self.relief_period_days),
            ("recovery_wait_days", self.recovery_wait_days),
        ];
        for (k, v) in ints {
            m.insert(k.to_string(), v.to_string());
        }
        m.insert("aid_categories".into(), self.aid_categories.join(","));
        m
    }

    /// Rebuilds parameters from their stored map; every key must be known and valid,
    /// missing keys keep their defaults.
    pub fn from_map<'a>(
        entries: impl IntoIterator<Item = (&'a str, &'a str)>,
    ) -> Result<Params, ParamError> {
        let mut p = Params::default();
        for (k, v) in entries {
            p.set(k, v)?;
        }
        Ok(p)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn assignments_parse_and_refuse_nonsense() {
        let mut p = Params::default();
        p.assign("sp_budget=120").unwrap();
        assert_eq!(p.sp_budget, 120);
        p.assign("aid_categories=food, rides").unwrap();
        assert_eq!(p.aid_categories, vec!["food", "rides"]);
        assert!(matches!(p.assign("nope=1"), Err(ParamError::Unknown(_))));
        assert!(matches!(
            p.assign("sp_budget=lots"),
            Err(ParamError::Invalid { .. })
        ));
        assert!(matches!(
            p.assign("timebank_floor_minutes=5"),
            Err(ParamError::Invalid { .. })
        ));
        assert!(matches!(p.assign("sp_budget"), Err(ParamError::Syntax(_))));
        let back =
            Params::from_map(p.to_map().iter().map(|(k, v)| (k.as_str(), v.as_str()))).unwrap();
        assert_eq!(back, p);
    }

    #[test]
    fn parameters_saved_before_recovery_existed_take_its_default() {
        // JSON of the parameters as a node wrote it before `recovery_wait_days` existed.
        let mut old = serde_json::to_value(Params::default()).unwrap();
        old.as_object_mut().unwrap().remove("recovery_wait_days");
        let back: Params = serde_json::from_value(old).unwrap();
        assert_eq!(back.recovery_wait_days, DEFAULT_RECOVERY_WAIT_DAYS);
        // A stored map without the key keeps the default too.
        let mut map = Params::default().to_map();
        map.remove("recovery_wait_days");
        let p = Params::from_map(map.iter().map(|(k, v)| (k.as_str(), v.as_str()))).unwrap();
        assert_eq!(p.recovery_wait_days, DEFAULT_RECOVERY_WAIT_DAYS);
        let mut p = Params::default();
        p.assign("recovery_wait_days=0").unwrap();
        assert_eq!(p.recovery_wait_days, 0);
        assert!(p.assign("recovery_wait_days=400").is_err());
    }
}
