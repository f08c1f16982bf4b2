//! The spend engine: prices a request, reserves its estimated cost in its budgets
//! before the upstream call, watches a stream's running cost for a cut-off, and
//! settles the exact cost after.
//!
//! # Reserve, then settle
//! Before the upstream call, the request's estimated cost — the price table over the
//! estimate reserve-mode limits use ([`crate::estimate::request_estimate`]: the prompt
//! counted, the output the request allows) — is held in every budget it falls under,
//! in one atomic step of the store ([`crate::limits::Held`]: a lock in the process, a
//! Lua script in Redis); when it does not fit in one of them nothing is held and the
//! request is refused. When the exchange ends, each hold is replaced by the exact
//! cost, once. So the requests admitted at any moment, on every replica sharing the
//! store, never hold more than a budget's limit: a budget is exceeded only by what
//! requests use beyond their reservation (a reply longer than the output reserved, a
//! prompt the estimate under-counts), and with `cutoff` a stream is ended once its
//! running cost passes what the budget had left for it at admission (its reservation
//! plus what nobody had reserved).

use super::rules::{BudgetRules, BudgetScope, Budgets};
use super::store::{Charge, SpendStore, UsageCounts, UsageKey};
use super::usage::{UsageQuery, UsageReport};
use super::{BudgetPeriod, BudgetSpec, HOUR, SpendMetrics};
use crate::limits::hold::fits;
use crate::limits::{Admission as Holding, Held, Hold, Increment, Taken, bucket_key, window_start};
use crate::pricing::{Cost, PriceQuery, PriceTable, Pricing, format_instant, format_micros};
use crate::usage::TokenUsage;
use crate::{Error, Result};
use serde::Serialize;
use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// Credentials with their own budget remembered for `GET /admin/budgets`.
const MAX_IDENTITIES: usize = 10_000;

/// The "window" of a `total` budget's bucket: a thousand years, so it never resets.
const TOTAL_WINDOW: u64 = 1000 * 365 * 86_400;

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
    /// The request's estimated usage, priced and held in its budgets until it settles
    /// ([`crate::estimate::request_estimate`]).
    pub estimate: TokenUsage,
    /// What the estimate is priced as (the first backend tried); `None` holds nothing
    /// and only refuses a request whose budget is spent.
    pub billed: Option<Billed<'a>>,
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
    default_output_tokens: u64,
}

/// One budget a request falls under.
#[derive(Debug, Clone)]
struct Applied {
    name: String,
    hold: Hold,
    spec: BudgetSpec,
    end: Option<u64>,
    /// What the request may spend before a cut-off ends its stream: what the budget
    /// had left for it at admission (the whole limit when the store was unreachable).
    allowance: u64,
    cutoff: bool,
}

/// A budget's counter for the period containing `now`, holding `amount`, and when the
/// period ends.
///
/// The counter is a bucket of the budget store whose base names the period and whose
/// window is the instant an hour after the period ends (a thousand years for `total`):
/// every window then starts at 0, so the bucket is `<base>_0` for the whole period,
/// and the store drops it an hour after the period ends, by its own clock.
fn counter(
    scope: BudgetScope,
    subject: &str,
    spec: BudgetSpec,
    amount: u64,
    now: u64,
) -> (Hold, Option<u64>) {
    let (start, end) = spec.period.window(now);
    let bucket = format!(
        "aigw:budget:{}:{subject}:{}:{start}",
        scope.as_str(),
        spec.period.as_str()
    );
    let hold = Hold {
        bucket,
        window: end.map_or(TOTAL_WINDOW, |e| e + HOUR),
        limit: spec.limit_micros,
        amount,
        enforce: true,
    };
    (hold, end)
}

/// The bucket key of a counter at `now`, and when it expires.
fn counter_key(hold: &Hold, now: u64) -> Increment {
    let start = window_start(now, hold.window);
    Increment {
        key: bucket_key(&hold.bucket, start),
        cost: 0,
        expires_at: start + hold.window,
    }
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
            default_output_tokens: crate::meter::ReserveSettings::default().default_output_tokens,
        }
    }

    /// Sets the output tokens a request that names no `max_tokens` reserves (4096 by
    /// default; a reserve-mode meter's own setting wins where it reserves too).
    #[must_use]
    pub const fn with_default_output_tokens(mut self, tokens: u64) -> Self {
        self.default_output_tokens = tokens;
        self
    }

    /// The output tokens a request that names no `max_tokens` reserves.
    pub const fn default_output_tokens(&self) -> u64 {
        self.default_output_tokens
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

    /// Whether a request could fall under a budget: one is configured, or its
    /// credential carries one (`key_budget`). When not, admission holds nothing and
    /// needs no estimate.
    pub fn may_hold(&self, key_budget: bool) -> bool {
        key_budget || !self.budgets.current().rules.is_empty()
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

    /// The budgets `a` falls under, with their counters for the period of `now`, each
    /// to hold `amount`.
    fn applicable(
        &self,
        rules: &BudgetRules,
        a: &Admission<'_>,
        now: u64,
        amount: u64,
    ) -> Vec<Applied> {
        let mut out = Vec::new();
        let mut push = |name: String, scope, subject: &str, spec: BudgetSpec, cutoff| {
            let (hold, end) = counter(scope, subject, spec, amount, now);
            out.push(Applied {
                name,
                hold,
                spec,
                end,
                allowance: spec.limit_micros,
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

    /// Reserves `a`'s estimated cost in every budget it falls under before the upstream
    /// call, atomically: refuses with [`Error::BudgetExceeded`] when it does not fit in
    /// one of them (nothing is then held), else returns the guard that watches and
    /// settles the request. A store that fails lets the request through (logged and
    /// counted in `aigw_spend_store_errors_total`); its cost is then added in full when
    /// it settles.
    pub async fn admit(self: &Arc<Self>, a: &Admission<'_>) -> Result<SpendGuard> {
        let now = crate::pricing::unix_now();
        let rules = self.budgets.current();
        let table = self.pricing.current();
        let amount = a
            .billed
            .and_then(|b| price(&table, &a.estimate, &b, now))
            .map_or(0, Cost::micros);
        let mut applied = self.applicable(&rules, a, now, amount);
        let held = self.hold(&mut applied, now).await?;
        Ok(SpendGuard {
            spending: self.clone(),
            table,
            at: now,
            applied,
            held,
            row: UsageKey {
                key: a.key.unwrap_or_default().to_owned(),
                team: a.team.unwrap_or_default().to_owned(),
                model: String::new(),
                route: a.route.to_owned(),
            },
        })
    }

    /// Holds each budget's amount, all or none; notes what each had left.
    async fn hold(&self, applied: &mut [Applied], now: u64) -> Result<Option<Held>> {
        if applied.is_empty() {
            return Ok(None);
        }
        let holds: Vec<Hold> = applied.iter().map(|b| b.hold.clone()).collect();
        let taken = Held::take(self.store.budgets(), now, holds.clone(), Holding::All).await;
        match taken {
            Ok(Taken {
                held: Some(held),
                reserved,
            }) => {
                for (b, count) in applied.iter_mut().zip(reserved.counts) {
                    let before = count.saturating_sub(b.hold.amount);
                    b.allowance = b.spec.limit_micros.saturating_sub(before);
                }
                Ok(Some(held))
            }
            Ok(Taken {
                held: None,
                reserved,
            }) => {
                let refused = applied
                    .iter()
                    .zip(reserved.counts)
                    .find(|(b, c)| !fits(*c, b.hold.amount, b.spec.limit_micros));
                let Some((b, count)) = refused else {
                    return Err(Error::internal(
                        "a budget reservation was refused by no budget",
                    ));
                };
                self.metrics.refused(&b.name);
                Err(refusal(b, count, now))
            }
            Err(e) => {
                self.metrics.store_error();
                tracing::warn!(error = %e, "budgets not checked: the spend store failed; request let through");
                Ok(Some(Held::unheld(holds)))
            }
        }
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
        let mut states: Vec<(BudgetState, Increment)> = Vec::new();
        let mut add =
            |name: String, scope: BudgetScope, subject: &str, spec: BudgetSpec, cutoff| {
                let (hold, end) = counter(scope, subject, spec, 0, now);
                let key = counter_key(&hold, now);
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
        let keys: Vec<Increment> = states.iter().map(|(_, k)| k.clone()).collect();
        let spent = self.store.budgets().incr(now, &keys).await?;
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

/// The price of `usage` at the table's prices in force at `at`.
fn price(table: &PriceTable, usage: &TokenUsage, billed: &Billed<'_>, at: u64) -> Option<Cost> {
    let entry = table.lookup(&PriceQuery {
        model: billed.model,
        provider: billed.provider,
        backend: billed.backend,
        at,
    })?;
    Some(entry.prices.cost(usage))
}

/// Why a request whose reservation did not fit in `b` (at `count` spent or reserved)
/// is refused.
fn refusal(b: &Applied, count: u64, now: u64) -> Error {
    if count >= b.spec.limit_micros {
        return exceeded(b, count, now, "is exhausted");
    }
    let mut e = exceeded(b, count, now, "has too little left for this request");
    if let Error::BudgetExceeded { message, .. } = &mut e {
        message.push_str(&format!(
            " (its estimated cost of ${} is held until it ends; a lower max_tokens reserves less)",
            format_micros(b.hold.amount)
        ));
    }
    e
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
            "budget {:?} {how}: ${} of ${} spent or reserved{period}{resets}",
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
    /// The estimate held in the budgets, until settled.
    held: Option<Held>,
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
        price(&self.table, usage, billed, self.at)
    }

    /// Checks a stream's running cost: fails with [`Error::BudgetExceeded`] when it
    /// exceeds what a cut-off budget had left for the request at admission.
    pub fn check(&self, usage: &TokenUsage, billed: &Billed<'_>) -> Result<()> {
        let Some(cost) = self.cost(usage, billed) else {
            return Ok(());
        };
        let micros = cost.micros();
        for b in self.applied.iter().filter(|b| b.cutoff) {
            if micros > b.allowance {
                self.spending.metrics.cut_off(&b.name);
                let spent = b.spec.limit_micros - b.allowance + micros;
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

    /// Settles the request: its exact cost (micro-dollars, rounded up once) replaces
    /// the estimate held in every budget it falls under, is added to its usage row and
    /// counted in Prometheus. Returns the cost, `None` when the model has no price.
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
        if let Some(held) = self.held.take() {
            let actual = vec![micros; self.applied.len()];
            held.settle(
                self.spending.store.budgets(),
                crate::pricing::unix_now(),
                &actual,
            );
        }
        self.spending.store.charge(Charge {
            hour: self.at - self.at % HOUR,
            row,
            counts,
        });
        cost.map(|c| c.micros())
    }
}

impl Drop for SpendGuard {
    /// A guard dropped unsettled gives its reservation back.
    fn drop(&mut self) {
        if let Some(held) = self.held.take() {
            held.release(self.spending.store.budgets(), crate::pricing::unix_now());
        }
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
            ..Default::default()
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
    async fn estimates_are_held_atomically_and_settled_with_the_actual_cost() {
        let s = engine(
            "budgets: [{name: t, team: research, limit_usd: \"0.003\", period: month, cutoff: true}]",
        );
        // 1000 input at $1/M + 500 output at $2/M: 2000 µ$ held per request.
        let a = Admission {
            route: "ns/r",
            team: Some("research"),
            estimate: usage(1000, 500),
            billed: Some(BILLED),
            ..Default::default()
        };
        let first = s.admit(&a).await.unwrap();
        let e = s.admit(&a).await.unwrap_err();
        assert!(e.to_string().contains("too little left"), "{e}");
        assert!(e.to_string().contains("$0.002000 of $0.003000"), "{e}");
        // It had the whole budget left: the cut-off lets it spend all of it.
        assert!(first.check(&usage(1000, 1000), &BILLED).is_ok());
        assert!(first.check(&usage(1000, 1001), &BILLED).is_err());
        // Settled at half the estimate: 1000 µ$ spent, 2000 free again.
        assert_eq!(first.settle(&usage(500, 250), &BILLED), Some(1000));
        let second = s.admit(&a).await.unwrap();
        // 1000 are spent, so it may spend 2000 before the cut-off.
        assert!(second.check(&usage(1000, 500), &BILLED).is_ok());
        assert!(second.check(&usage(1000, 501), &BILLED).is_err());
        drop(second);
        let states = s.budget_states().await.unwrap();
        assert_eq!(
            states[0].spent_usd, "0.001000",
            "a dropped guard gives back"
        );
        // 1000 spent + 2000 held fit; once settled in full, nothing more does.
        let held = s.admit(&a).await.unwrap();
        assert_eq!(held.settle(&usage(1000, 500), &BILLED), Some(2000));
        assert!(s.admit(&a).await.is_err());
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
