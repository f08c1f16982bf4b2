//! Budgets configured in a file (`--budgets-file`): per key id, per team, per route.
//!
//! ```yaml
//! budgets:
//!   - name: research-monthly
//!     team: research
//!     limit_usd: "100.00"
//!     period: month
//!     cutoff: true
//!   - name: batch-route-daily
//!     route: default/batch
//!     limit_usd: "25"
//!     period: day
//! identity_budgets:
//!   cutoff: true
//! ```
//!
//! `identity_budgets.cutoff` applies to the budgets that come with a credential itself
//! (a virtual key's [`crate::identity::ClientIdentity::budget`]).

use super::{BudgetPeriod, BudgetSpec};
use crate::Result;
use crate::reloadable::{FileBacked, Loadable, invalid};
use serde::Deserialize;

/// What a budget is counted for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum BudgetScope {
    /// One client: a key id, a static key's name or a JWT subject.
    Key,
    /// Every client of a team.
    Team,
    /// Every request on a route (`namespace/name`).
    Route,
}

impl BudgetScope {
    /// The scope's name in store keys and the admin API.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Key => "key",
            Self::Team => "team",
            Self::Route => "route",
        }
    }
}

/// One configured budget.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BudgetRule {
    /// Its name, in errors, metrics and the admin API.
    pub name: String,
    /// What it is counted for.
    pub scope: BudgetScope,
    /// The key id, team or route.
    pub subject: String,
    /// Limit and period.
    pub spec: BudgetSpec,
    /// Whether a stream is ended when the budget runs out mid-way.
    pub cutoff: bool,
}

/// The budgets of a file.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct BudgetRules {
    /// The configured budgets.
    pub rules: Vec<BudgetRule>,
    /// Whether budgets carried by a credential cut streams off.
    pub identity_cutoff: bool,
}

/// The budget rules in force, swapped whole on reload.
pub type Budgets = FileBacked<BudgetRules>;

impl BudgetRules {
    /// Parses a budgets file's text (YAML or JSON).
    pub fn parse(text: &str, origin: &str) -> Result<Self> {
        let invalid = |m| invalid(<Self as Loadable>::KIND, origin, m);
        let file: RawFile = serde_saphyr::from_str(text)
            .map_err(|e| invalid(format!("not a budgets file: {e}")))?;
        let mut rules = Vec::with_capacity(file.budgets.len());
        for (i, raw) in file.budgets.into_iter().enumerate() {
            let rule = raw
                .compile()
                .map_err(|m| invalid(format!("budgets[{i}]: {m}")))?;
            if rules.iter().any(|r: &BudgetRule| r.name == rule.name) {
                return Err(invalid(format!(
                    "budgets[{i}]: name {:?} is used twice",
                    rule.name
                )));
            }
            rules.push(rule);
        }
        Ok(Self {
            rules,
            identity_cutoff: file.identity_budgets.is_some_and(|d| d.cutoff),
        })
    }
}

impl Loadable for BudgetRules {
    const KIND: &'static str = "budgets file";
    fn parse(text: &str, origin: &str) -> Result<Self> {
        Self::parse(text, origin)
    }
    fn entry_count(&self) -> usize {
        self.rules.len()
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawFile {
    #[serde(default)]
    budgets: Vec<RawRule>,
    #[serde(default)]
    identity_budgets: Option<RawDefaults>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawDefaults {
    #[serde(default)]
    cutoff: bool,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRule {
    name: String,
    #[serde(default)]
    key: Option<String>,
    #[serde(default)]
    team: Option<String>,
    #[serde(default)]
    route: Option<String>,
    limit_usd: String,
    period: String,
    #[serde(default)]
    cutoff: bool,
}

impl RawRule {
    fn compile(self) -> std::result::Result<BudgetRule, String> {
        if self.name.is_empty() {
            return Err("name: must not be empty".into());
        }
        let (scope, subject) = match (self.key, self.team, self.route) {
            (Some(k), None, None) => (BudgetScope::Key, k),
            (None, Some(t), None) => (BudgetScope::Team, t),
            (None, None, Some(r)) => (BudgetScope::Route, r),
            _ => return Err("exactly one of key, team or route is required".into()),
        };
        let limit_micros = crate::pricing::parse_decimal(&self.limit_usd, 6)
            .map_err(|e| format!("limit_usd: {e}"))?;
        let period = BudgetPeriod::parse(&self.period)
            .ok_or_else(|| format!("period: {:?} is not day, month or total", self.period))?;
        Ok(BudgetRule {
            name: self.name,
            scope,
            subject,
            spec: BudgetSpec {
                limit_micros,
                period,
            },
            cutoff: self.cutoff,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_shipped_example_parses() {
        let r = BudgetRules::parse(
            include_str!("../../../examples/pricing/budgets.example.yaml"),
            "example",
        )
        .unwrap();
        assert_eq!(r.rules.len(), 3);
        assert!(r.identity_cutoff);
    }

    #[test]
    fn parses_and_refuses_ambiguous_rules() {
        let r = BudgetRules::parse(
            "budgets:\n  - {name: a, team: t, limit_usd: \"1.5\", period: month, cutoff: true}\nidentity_budgets: {cutoff: true}\n",
            "f",
        )
        .unwrap();
        assert_eq!(r.rules[0].spec.limit_micros, 1_500_000);
        assert_eq!(r.rules[0].scope, BudgetScope::Team);
        assert!(r.identity_cutoff && r.rules[0].cutoff);
        let e = BudgetRules::parse(
            "budgets: [{name: a, team: t, route: r, limit_usd: \"1\", period: day}]",
            "f",
        )
        .unwrap_err();
        assert!(e.to_string().contains("exactly one"), "{e}");
        let e = BudgetRules::parse(
            "budgets: [{name: a, team: t, limit_usd: \"1\", period: week}]",
            "f",
        )
        .unwrap_err();
        assert!(e.to_string().contains("week"), "{e}");
    }
}
