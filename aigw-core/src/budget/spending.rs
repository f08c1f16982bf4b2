//! The spend engine: prices a request, checks its budgets before the upstream call,
//! watches a stream's running cost for a cut-off, and settles the exact cost after.
//!
//! # Concurrency bound
//! A request is admitted when every budget it falls under has spend left *as the
//! store counts it at admission*; its cost is added when it ends. Requests in flight
//! at the same time do not see each other's cost, so a budget can be exceeded by at
//! most the cost of the requests admitted while it still had spend left and not yet
//! settled. With `cutoff`, each of those streams is also ended once its own running
//! cost exceeds what was left at its admission, so the overshoot is at most
//! (in-flight requests) × (what was left when each started) — and no request admitted
//! after the budget is spent gets through, on any replica sharing the store.

use super::rules::{BudgetRules, BudgetScope, Budgets};
use super::store::{Charge, SpendStore, UsageCounts, UsageKey};
use super::usage::{UsageQuery, UsageReport};
use super::{BudgetPeriod, BudgetSpec, HOUR, SpendMetrics};
use crate::pricing::{Cost, PriceQuery, PriceTable, Pricing, format_instant, format_micros};
use crate::usage::TokenUsage;
use crate::{Error, Result};
use serde::Serialize;
use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// Credentials with their own budget remembered for `GET /admin/budgets`.
const MAX_IDENTITIES: usize = 10_000;

/// Who a request is from and where it goes, for its budgets.
#[derive(Debug, Clone, Copy, Default)]
pub struct Admission<'a> {
    /// The route (`namespace/name`).
    pub route: &'a str,
    /// The client's id (key id, static key name, JWT subject).
    pub key: Option<&'a str>,
    /// The client's team.
    pub team: Option<&'a str>,
    /// A budget carried by the client's credential.
    pub key_budget: Option<BudgetSpec>,
}

/// The spend engine, shared by every request (and replica, through its store).
#[derive(Debug)]
pub struct Spending {
    pricing: Arc<Pricing>,
    budgets: Arc<Budgets>,
    store: Arc<dyn SpendStore>,
    metrics: SpendMetrics,
    identities: Mutex<HashMap<String, (Option<String>, BudgetSpec)>>,
    unpriced: Mutex<HashSet<String>>,
}

/// One budget a request falls under.
#[derive(Debug, Clone)]
struct Applied {
    name: String,
    store_key: String,
    spec: BudgetSpec,
    end: Option<u64>,
    remaining: u64,
    cutoff: bool,
}

/// The store key of a budget's counter for the period containing `now`, and when
/// that period ends.
fn counter(
    scope: BudgetScope,
    subject: &str,
    period: BudgetPeriod,
    now: u64,
) -> (String, Option<u64>) {
    let (start, end) = period.window(now);
    let key = format!(
        "aigw:budget:{}:{subject}:{}:{start}",
        scope.as_str(),
        period.as_str()
    );
    (key, end)
}

impl Spending {
    /// An engine over these prices, budgets and store.
    pub fn new(pricing: Arc<Pricing>, budgets: Arc<Budgets>, store: Arc<dyn SpendStore>) -> Self {
        Self {
            pricing,
            budgets,
            store,
            metrics: SpendMetrics::default(),
            identities: Mutex::default(),
            unpriced: Mutex::default(),
        }
    }

    /// An engine over the price table in `pricing` and the budgets in `budgets` (none
    /// when absent), both reloaded by [`Spending::reload_changed_files`].
    pub fn from_files(
        pricing: &std::path::Path,
        budgets: Option<&std::path::Path>,
        store: Arc<dyn SpendStore>,
    ) -> Result<Self> {
        let pricing = Pricing::from_file(pricing)?;
        let budgets = match budgets {
            Some(f) => Budgets::from_file(f)?,
            None => Budgets::new(BudgetRules::default()),
        };
        tracing::info!(
            prices = pricing.current().entries().len(),
            budgets = budgets.current().rules.len(),
            "requests priced; money budgets enforced"
        );
        Ok(Self::new(Arc::new(pricing), Arc::new(budgets), store))
    }

    /// Reloads the price table and the budgets files that changed since they were
    /// read; an invalid file is logged and the one in force stays. Call it
    /// periodically.
    pub fn reload_changed_files(&self) {
        for (what, outcome) in [
            ("pricing", self.pricing.reload_if_changed()),
            ("budgets", self.budgets.reload_if_changed()),
        ] {
            match outcome {
                Some(Ok(n)) => tracing::info!(file = what, entries = n, "reloaded"),
                Some(Err(e)) => tracing::error!(
                    file = what,
                    error = %e,
                    "not reloaded; the previous one stays in force"
                ),
                None => {}
            }
        }
    }

    /// The price table.
    pub fn pricing(&self) -> &Arc<Pricing> {
        &self.pricing
    }

    /// The budget rules.
    pub fn budgets(&self) -> &Arc<Budgets> {
        &self.budgets
    }

    /// The Prometheus counters.
    pub fn metrics(&self) -> &SpendMetrics {
        &self.metrics
    }

    /// The budgets `a` falls under, with their counters for the period of `now`.
    fn applicable(&self, rules: &BudgetRules, a: &Admission<'_>, now: u64) -> Vec<Applied> {
        let mut out = Vec::new();
        let mut push = |name: String, scope, subject: &str, spec: BudgetSpec, cutoff| {
            let (store_key, end) = counter(scope, subject, spec.period, now);
            out.push(Applied {
                name,
                store_key,
                spec,
                end,
                remaining: spec.limit_micros,
                cutoff,
            });
        };
        if let (Some(key), Some(spec)) = (a.key, a.key_budget) {
            self.remember(key, a.team, spec);
            push(
                format!("key:{key}"),
                BudgetScope::Key,
                key,
                spec,
                rules.identity_cutoff,
            );
        }
        for r in &rules.rules {
            let subject = match r.scope {
                BudgetScope::Key => a.key,
                BudgetScope::Team => a.team,
                BudgetScope::Route => Some(a.route),
            };
            if subject == Some(r.subject.as_str()) {
                push(r.name.clone(), r.scope, &r.subject, r.spec, r.cutoff);
            }
        }
        out
    }

    fn remember(&self, key: &str, team: Option<&str>, spec: BudgetSpec) {
        if let Ok(mut m) = self.identities.lock()
            && (m.len() < MAX_IDENTITIES || m.contains_key(key))
        {
            m.insert(key.to_owned(), (team.map(str::to_owned), spec));
        }
    }

    /// Checks `a`'s budgets before the upstream call: refuses with
    /// [`Error::BudgetExceeded`] when one is spent, else returns the guard that watches
    /// and settles the request. A store that fails lets the request through (logged and
    /// counted in `aigw_spend_store_errors_total`).
    pub async fn admit(self: &Arc<Self>, a: &Admission<'_>) -> Result<SpendGuard> {
        let now = crate::pricing::unix_now();
        let rules = self.budgets.current();
        let mut applied = self.applicable(&rules, a, now);
        if !applied.is_empty() {
            let keys: Vec<String> = applied.iter().map(|b| b.store_key.clone()).collect();
            match self.store.spent(&keys).await {
                Ok(spent) => {
                    for (b, spent) in applied.iter_mut().zip(spent) {
                        b.remaining = b.spec.limit_micros.saturating_sub(spent);
                        if b.remaining == 0 {
                            self.metrics.refused(&b.name);
                            return Err(exceeded(b, spent, now, "is exhausted"));
                        }
                    }
                }
                Err(e) => {
                    self.metrics.store_error();
                    tracing::warn!(error = %e, "budgets not checked: the spend store failed; request let through");
                }
            }
        }
        Ok(SpendGuard {
            spending: self.clone(),
            table: self.pricing.current(),
            at: now,
            applied,
            row: UsageKey {
                key: a.key.unwrap_or_default().to_owned(),
                team: a.team.unwrap_or_default().to_owned(),
                model: String::new(),
                route: a.route.to_owned(),
            },
        })
    }

    /// Answers a usage query from the store.
    pub async fn usage(&self, q: &UsageQuery) -> Result<UsageReport> {
        let rows = self.store.usage(q.from, q.to).await?;
        Ok(q.report(rows))
    }

    /// The state of every configured budget and of every credential budget seen by
    /// this process, for the period in force now.
    pub async fn budget_states(&self) -> Result<Vec<BudgetState>> {
        let now = crate::pricing::unix_now();
        let rules = self.budgets.current();
        let mut states: Vec<(BudgetState, String)> = Vec::new();
        let mut add =
            |name: String, scope: BudgetScope, subject: &str, spec: BudgetSpec, cutoff| {
                let (key, end) = counter(scope, subject, spec.period, now);
                let state = BudgetState {
                    name,
                    scope: scope.as_str(),
                    subject: subject.to_owned(),
                    period: spec.period.as_str(),
                    limit_usd: format_micros(spec.limit_micros),
                    spent_usd: String::new(),
                    remaining_usd: String::new(),
                    resets_at: end.map(format_instant),
                    cutoff,
                    limit_micros: spec.limit_micros,
                };
                states.push((state, key));
            };
        for r in &rules.rules {
            add(r.name.clone(), r.scope, &r.subject, r.spec, r.cutoff);
        }
        let identities: Vec<(String, BudgetSpec)> = self
            .identities
            .lock()
            .map(|m| m.iter().map(|(k, (_, s))| (k.clone(), *s)).collect())
            .unwrap_or_default();
        for (key, spec) in identities {
            add(
                format!("key:{key}"),
                BudgetScope::Key,
                &key,
                spec,
                rules.identity_cutoff,
            );
        }
        let keys: Vec<String> = states.iter().map(|(_, k)| k.clone()).collect();
        let spent = self.store.spent(&keys).await?;
        Ok(states
            .into_iter()
            .zip(spent)
            .map(|((mut s, _), spent)| {
                s.spent_usd = format_micros(spent);
                s.remaining_usd = format_micros(s.limit_micros.saturating_sub(spent));
                s
            })
            .collect())
    }

    fn warn_unpriced(&self, model: &str) {
        self.metrics.unpriced(model);
        if let Ok(mut seen) = self.unpriced.lock()
            && seen.len() < 1000
            && seen.insert(model.to_owned())
        {
            tracing::warn!(
                model,
                "no price for the model in the price table: its requests cost nothing against budgets"
            );
        }
    }
}

fn exceeded(b: &Applied, spent: u64, now: u64, how: &str) -> Error {
    let period = match b.spec.period {
        BudgetPeriod::Day => " today",
        BudgetPeriod::Month => " this month",
        BudgetPeriod::Total => "",
    };
    let resets = b
        .end
        .map(|e| format!("; it resets at {}", format_instant(e)))
        .unwrap_or_default();
    Error::BudgetExceeded {
        message: format!(
            "budget {:?} {how}: ${} of ${} spent{period}{resets}",
            b.name,
            format_micros(spent),
            format_micros(b.spec.limit_micros),
        ),
        retry_after: b
            .end
            .map(|e| Duration::from_secs(e.saturating_sub(now).max(1))),
    }
}

/// The state of one budget, as `GET /admin/budgets` returns it.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct BudgetState {
    /// The budget's name (`key:<id>` for a credential's own budget).
    pub name: String,
    /// `key`, `team` or `route`.
    pub scope: &'static str,
    /// The key id, team or route.
    pub subject: String,
    /// `day`, `month` or `total`.
    pub period: &'static str,
    /// The limit in USD.
    pub limit_usd: String,
    /// Spent this period, in USD.
    pub spent_usd: String,
    /// Left this period, in USD.
    pub remaining_usd: String,
    /// When the period ends (RFC 3339), unless it is `total`.
    pub resets_at: Option<String>,
    /// Whether streams are cut off when it runs out.
    pub cutoff: bool,
    #[serde(skip)]
    limit_micros: u64,
}

/// What a backend is billed for: its model, provider and name.
#[derive(Debug, Clone, Copy)]
pub struct Billed<'a> {
    /// The model billed (after any override).
    pub model: &'a str,
    /// The backend's provider name.
    pub provider: Option<&'a str>,
    /// The backend (`namespace/name`).
    pub backend: Option<&'a str>,
}

/// One admitted request's budgets and prices: watches its running cost (for the
/// cut-off) and settles its cost exactly once.
#[derive(Debug)]
pub struct SpendGuard {
    spending: Arc<Spending>,
    table: Arc<PriceTable>,
    at: u64,
    applied: Vec<Applied>,
    row: UsageKey,
}

impl SpendGuard {
    /// Whether any of the request's budgets cuts streams off.
    pub fn cuts(&self) -> bool {
        self.applied.iter().any(|b| b.cutoff)
    }

    /// The request's cost for `usage` at the prices in force when it started, `None`
    /// when the model has no price.
    pub fn cost(&self, usage: &TokenUsage, billed: &Billed<'_>) -> Option<Cost> {
        let entry = self.table.lookup(&PriceQuery {
            model: billed.model,
            provider: billed.provider,
            backend: billed.backend,
            at: self.at,
        })?;
        Some(entry.prices.cost(usage))
    }

    /// Checks a stream's running cost: fails with [`Error::BudgetExceeded`] when it
    /// exceeds what a cut-off budget had left at admission.
    pub fn check(&self, usage: &TokenUsage, billed: &Billed<'_>) -> Result<()> {
        let Some(cost) = self.cost(usage, billed) else {
            return Ok(());
        };
        let micros = cost.micros();
        for b in self.applied.iter().filter(|b| b.cutoff) {
            if micros > b.remaining {
                self.spending.metrics.cut_off(&b.name);
                let spent = b.spec.limit_micros - b.remaining + micros;
                return Err(exceeded(
                    b,
                    spent,
                    crate::pricing::unix_now(),
                    "ran out during the response",
                ));
            }
        }
        Ok(())
    }

    /// Settles the request: its exact cost (micro-dollars, rounded up once) is added to
    /// every budget it falls under and to its usage row, and counted in Prometheus.
    /// Returns the cost, `None` when the model has no price.
    pub fn settle(mut self, usage: &TokenUsage, billed: &Billed<'_>) -> Option<u64> {
        let cost = self.cost(usage, billed);
        if cost.is_none() {
            self.spending.warn_unpriced(billed.model);
        }
        let micros = cost.map_or(0, Cost::micros);
        let mut row = std::mem::take(&mut self.row);
        billed.model.clone_into(&mut row.model);
        let counts = UsageCounts {
            requests: 1,
            input_tokens: usage.input.unwrap_or(0),
            output_tokens: usage.output.unwrap_or(0),
            cost_micros: micros,
        };
        self.spending.metrics.record(&row, &counts);
        let budgets = if micros > 0 {
            self.applied
                .iter()
                .map(|b| (b.store_key.clone(), b.end))
                .collect()
        } else {
            Vec::new()
        };
        self.spending.store.charge(Charge {
            budgets,
            micros,
            hour: self.at - self.at % HOUR,
            row,
            counts,
        });
        cost.map(|c| c.micros())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::budget::MemorySpendStore;

    fn engine(budgets: &str) -> Arc<Spending> {
        let table =
            PriceTable::parse("prices: [{model: m, input: \"1\", output: \"2\"}]", "t").unwrap();
        let rules = BudgetRules::parse(budgets, "t").unwrap();
        Arc::new(Spending::new(
            Arc::new(Pricing::new(table)),
            Arc::new(Budgets::new(rules)),
            Arc::new(MemorySpendStore::default()),
        ))
    }

    const BILLED: Billed<'static> = Billed {
        model: "m",
        provider: None,
        backend: None,
    };

    fn usage(input: u64, output: u64) -> TokenUsage {
        TokenUsage {
            input: Some(input),
            output: Some(output),
            ..Default::default()
        }
    }

    #[tokio::test]
    async fn spend_is_settled_and_an_exhausted_budget_refuses() {
        let s = engine(
            "budgets: [{name: t, team: research, limit_usd: \"0.003\", period: day, cutoff: true}]",
        );
        let a = Admission {
            route: "ns/r",
            key: Some("k1"),
            team: Some("research"),
            key_budget: Some(BudgetSpec {
                limit_micros: 1_000_000,
                period: BudgetPeriod::Total,
            }),
        };
        let g = s.admit(&a).await.unwrap();
        assert!(g.cuts());
        // 1000 input at $1/M + 500 output at $2/M = 2000 µ$.
        assert!(g.check(&usage(1000, 500), &BILLED).is_ok());
        let e = g.check(&usage(1000, 1001), &BILLED).unwrap_err();
        assert_eq!(e.status(), http::StatusCode::TOO_MANY_REQUESTS);
        assert_eq!(g.settle(&usage(1000, 500), &BILLED), Some(2000));
        let g = s.admit(&a).await.unwrap();
        assert_eq!(g.settle(&usage(1000, 500), &BILLED), Some(2000));
        let e = s.admit(&a).await.unwrap_err();
        assert!(e.to_string().contains("\"t\" is exhausted"), "{e}");
        let states = s.budget_states().await.unwrap();
        let t = states.iter().find(|b| b.name == "t").unwrap();
        assert_eq!(
            (t.spent_usd.as_str(), t.remaining_usd.as_str()),
            ("0.004000", "0.000000")
        );
        let k = states.iter().find(|b| b.name == "key:k1").unwrap();
        assert_eq!(k.remaining_usd, "0.996000");
        let q = UsageQuery::parse([("group_by", "key")], crate::pricing::unix_now() + 1).unwrap();
        let r = s.usage(&q).await.unwrap();
        assert_eq!(r.rows.len(), 1);
        assert_eq!(r.rows[0].cost_usd, "0.004000");
        assert_eq!(r.rows[0].requests, 2);
        assert!(
            s.metrics()
                .encode()
                .contains("aigw_budget_refusals_total{budget=\"t\"} 1")
        );
    }

    #[tokio::test]
    async fn other_teams_and_routes_are_not_charged() {
        let s =
            engine("budgets: [{name: r, route: ns/other, limit_usd: \"0.000001\", period: month}]");
        let a = Admission {
            route: "ns/r",
            ..Default::default()
        };
        for _ in 0..3 {
            let g = s.admit(&a).await.unwrap();
            assert!(!g.cuts());
            g.settle(&usage(10, 10), &BILLED);
        }
    }
}
