//! [`RateLimitMeter`]: a [`TokenMeter`] enforcing BackendTrafficPolicy rate limits.

use super::failure::fail_closed;
use super::hold::{Adjustment, Admission, Hold};
use super::key::{bucket_base, bucket_key, seconds_to_reset, window_start};
use super::quota::{Check, Quota, Quotas, Subject};
use super::selector::{ClientSelector, match_all};
use super::status::{LimitStatus, LimitUnit, Standing};
use super::store::LimitStore;
use crate::config::Config;
use crate::config::traffic::{LimitCost, RateLimitRule, RateLimitScope, TrafficSettings};
use crate::cost::short_backend_name;
use crate::error::{ConfigIssue, Error, Result};
use crate::meter::{
    MeterRequest, Reservation, ReserveSettings, ResponseCharge, Settlement, TokenMeter,
};
use async_trait::async_trait;
use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// The dynamic metadata namespace response costs are read from.
pub const METADATA_NAMESPACE: &str = "io.envoy.ai_gateway";

/// How long a failing store stays quiet in the logs after reporting.
const STORE_ERROR_LOG_INTERVAL: u64 = 10;

/// What a limit does when its store cannot be reached: let requests through (fail open,
/// Envoy's default) or refuse them with a 503 (fail closed, Envoy's
/// `failure_mode_deny`). Set separately for BackendTrafficPolicy rate limits and for
/// QuotaPolicy quotas (upstream's `-quotaRateLimitServiceFailureModeDeny`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct FailureModes {
    /// Refuse rate-limited requests while the store is down.
    pub rate_limits_deny: bool,
    /// Refuse requests under a quota while the store is down.
    pub quotas_deny: bool,
}

/// When a limit charges: after the exchange, on the budget already spent (upstream
/// Envoy AI Gateway's semantics, the default), or by reserving an estimate before it and
/// settling the difference after.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum LimitMode {
    /// Admitted on the budget already spent, charged when the exchange ends.
    #[default]
    Upstream,
    /// An estimate held before the call (refused when it does not fit), corrected
    /// once with the actual usage.
    Reserve(ReserveSettings),
}

impl LimitMode {
    /// This mode, holding `tokens` of output for a request that names no budget.
    #[must_use]
    pub const fn with_default_output(self, tokens: u64) -> Self {
        match self {
            Self::Upstream => Self::Upstream,
            Self::Reserve(_) => Self::Reserve(ReserveSettings {
                default_output_tokens: tokens,
            }),
        }
    }
}

impl std::str::FromStr for LimitMode {
    type Err = String;

    fn from_str(s: &str) -> std::result::Result<Self, Self::Err> {
        match s {
            "upstream" => Ok(Self::Upstream),
            "reserve" => Ok(Self::Reserve(ReserveSettings::default())),
            other => Err(format!(
                "`{other}` is not a limit mode: use `upstream` or `reserve`"
            )),
        }
    }
}

/// The refusal of a fail-closed limit whose store is down.
fn store_down(what: &str) -> Error {
    Error::Overloaded {
        message: format!(
            "the {what} store is unavailable; requests it limits are refused until it recovers"
        ),
        retry_after: Duration::from_secs(1),
    }
}

/// The current time in Unix seconds.
pub type Clock = Arc<dyn Fn() -> u64 + Send + Sync>;

fn system_clock() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// Counts of rate-limit decisions, shared across configuration reloads and exported as
/// `aigw_ratelimit_decisions_total{decision}`.
#[derive(Debug, Default)]
pub struct LimitStats {
    /// Buckets checked and within their limit.
    pub ok: AtomicU64,
    /// Buckets over their limit; the request was refused.
    pub over_limit: AtomicU64,
    /// Shadow-mode buckets over their limit; the request went on.
    pub shadow_over_limit: AtomicU64,
    /// Store calls that failed (either failure mode).
    pub store_error: AtomicU64,
    /// Of those, the ones whose request was refused (fail closed).
    pub store_error_refused: AtomicU64,
    last_error_log: AtomicU64,
}

impl LimitStats {
    /// `(decision, count)` pairs in a stable order.
    pub fn snapshot(&self) -> [(&'static str, u64); 5] {
        [
            ("ok", self.ok.load(Ordering::Relaxed)),
            ("over_limit", self.over_limit.load(Ordering::Relaxed)),
            (
                "shadow_over_limit",
                self.shadow_over_limit.load(Ordering::Relaxed),
            ),
            ("store_error", self.store_error.load(Ordering::Relaxed)),
            (
                "store_error_refused",
                self.store_error_refused.load(Ordering::Relaxed),
            ),
        ]
    }

    /// Counts a store failure; logs it unless one was logged in the last interval.
    pub(crate) fn store_failed(&self, now: u64, error: &Error, closed: bool) {
        self.store_error.fetch_add(1, Ordering::Relaxed);
        if closed {
            self.store_error_refused.fetch_add(1, Ordering::Relaxed);
        }
        let last = self.last_error_log.load(Ordering::Relaxed);
        if now.saturating_sub(last) >= STORE_ERROR_LOG_INTERVAL
            && self
                .last_error_log
                .compare_exchange(last, now.max(1), Ordering::Relaxed, Ordering::Relaxed)
                .is_ok()
        {
            if closed {
                tracing::warn!(error = %error, "rate-limit store unavailable; limited requests are refused (fail closed) until it recovers");
            } else {
                tracing::warn!(error = %error, "rate-limit store unavailable; requests are let through until it recovers");
            }
        }
    }
}

/// One rule, compiled.
#[derive(Debug)]
struct Rule {
    index: usize,
    selectors: Vec<ClientSelector>,
    limit: u64,
    window: u64,
    request_cost: LimitCost,
    response_cost: Option<LimitCost>,
    shadow: bool,
    shared: bool,
}

impl Rule {
    /// Tokens when the rule charges `llmRequestCosts` values, else requests.
    const fn unit(&self) -> LimitUnit {
        match self.response_cost {
            Some(LimitCost::Metadata { .. }) => LimitUnit::Tokens,
            _ => LimitUnit::Requests,
        }
    }
}

/// The rate limits of one route.
#[derive(Debug)]
struct RouteLimits {
    policy: String,
    scope: RateLimitScope,
    rules: Vec<Rule>,
    /// The policy's failure mode (annotation), when set.
    fail_closed: Option<bool>,
}

fn unit_name(window: u64) -> String {
    match window {
        1 => "second".into(),
        60 => "minute".into(),
        3600 => "hour".into(),
        86_400 => "day".into(),
        2_592_000 => "month".into(),
        31_536_000 => "year".into(),
        n => format!("{n} s"),
    }
}

fn compile_rule(policy: &str, scope: &str, index: usize, r: &RateLimitRule) -> Result<Rule> {
    let selectors = r
        .client_selectors
        .iter()
        .enumerate()
        .map(|(i, v)| {
            ClientSelector::compile(
                v,
                &format!("spec.rateLimit.{scope}.rules[{index}].clientSelectors[{i}]"),
            )
        })
        .collect::<Result<Vec<_>>>()
        .map_err(|e| match e {
            Error::InvalidConfig { mut issues } => {
                for i in &mut issues {
                    i.document = format!("BackendTrafficPolicy/{policy}");
                }
                Error::InvalidConfig { issues }
            }
            other => other,
        })?;
    Ok(Rule {
        index,
        selectors,
        limit: r.requests,
        window: r.window.as_secs().max(1),
        request_cost: r.request_cost.clone(),
        response_cost: r.response_cost.clone(),
        shadow: r.shadow_mode,
        shared: r.shared,
    })
}

/// Enforces the `rateLimit` rules of the BackendTrafficPolicies that apply to each
/// AIGatewayRoute.
///
/// On reserve, every rule whose client selectors match adds its request cost to its
/// bucket for the current window — of the store's clock: Redis `TIME` for the Redis
/// store, so replicas with skewed clocks count in the same window; when a bucket that is not in shadow mode ends up over
/// its limit (for a request cost of 0: is already at it), the request is refused with
/// [`Error::RateLimited`] and a retry delay until the window resets. On settle, each
/// matched rule with a response cost adds it: a number, or the route's
/// `llmRequestCosts` value named by `metadata.key` (namespace `io.envoy.ai_gateway`).
///
/// `Local` policies count in the `local` store and `Global` ones in the `global` store
/// (Redis, or the local store when none is configured). A failing store lets requests
/// through (fail open) and is counted in [`LimitStats::store_error`].
///
/// Build one per configuration snapshot; hold the stores and the stats for the life of
/// the process so counts survive reloads.
pub struct RateLimitMeter {
    routes: HashMap<String, Arc<RouteLimits>>,
    quotas: Quotas,
    local: Arc<dyn LimitStore>,
    global: Arc<dyn LimitStore>,
    stats: Arc<LimitStats>,
    clock: Clock,
    next_id: AtomicU64,
    failure: FailureModes,
    reserve: Option<ReserveSettings>,
}

impl std::fmt::Debug for RateLimitMeter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RateLimitMeter")
            .field("routes", &self.routes.keys().collect::<Vec<_>>())
            .finish_non_exhaustive()
    }
}

impl RateLimitMeter {
    /// Compiles the rate limits of every route in `config`. Fails on a client selector
    /// aigw cannot apply (an unsupported kind, a bad regular expression or CIDR), since
    /// ignoring it would widen the rule to every request.
    pub fn from_config(
        config: &Config,
        local: Arc<dyn LimitStore>,
        global: Arc<dyn LimitStore>,
        stats: Arc<LimitStats>,
    ) -> Result<Self> {
        let mut routes = HashMap::new();
        let mut issues: Vec<ConfigIssue> = Vec::new();
        for route in &config.ai_gateway_routes {
            let Some(settings) = TrafficSettings::for_route(config, route) else {
                continue;
            };
            match Self::compile(&settings) {
                Ok(Some(mut limits)) => {
                    limits.fail_closed = config
                        .backend_traffic_policies
                        .iter()
                        .find(|p| p.key() == settings.policy)
                        .and_then(|p| fail_closed(p, &mut issues));
                    routes.insert(route.key(), Arc::new(limits));
                }
                Ok(None) => {}
                Err(Error::InvalidConfig { issues: found }) => {
                    for i in found {
                        if !issues.contains(&i) {
                            issues.push(i);
                        }
                    }
                }
                Err(e) => return Err(e),
            }
        }
        let quotas = match Quotas::compile(config) {
            Ok(q) => q,
            Err(Error::InvalidConfig { issues: found }) => {
                issues.extend(found);
                Quotas::default()
            }
            Err(e) => return Err(e),
        };
        if !issues.is_empty() {
            return Err(Error::InvalidConfig { issues });
        }
        Ok(Self {
            routes,
            quotas,
            local,
            global,
            stats,
            clock: Arc::new(system_clock),
            next_id: AtomicU64::new(1),
            failure: FailureModes::default(),
            reserve: None,
        })
    }

    fn compile(settings: &TrafficSettings) -> Result<Option<RouteLimits>> {
        let Some(rl) = &settings.rate_limit else {
            return Ok(None);
        };
        if rl.rules.is_empty() {
            return Ok(None);
        }
        let scope = match rl.scope {
            RateLimitScope::Global => "global",
            RateLimitScope::Local => "local",
        };
        let rules = rl
            .rules
            .iter()
            .enumerate()
            .map(|(i, r)| compile_rule(&settings.policy, scope, i, r))
            .collect::<Result<Vec<_>>>()?;
        Ok(Some(RouteLimits {
            policy: settings.policy.clone(),
            scope: rl.scope,
            rules,
            fail_closed: None,
        }))
    }

    /// Sets what happens while a store is down (fail open by default).
    #[must_use]
    pub const fn with_failure_modes(mut self, modes: FailureModes) -> Self {
        self.failure = modes;
        self
    }

    /// Sets when limits charge (upstream semantics by default).
    #[must_use]
    pub const fn with_mode(mut self, mode: LimitMode) -> Self {
        self.reserve = match mode {
            LimitMode::Upstream => None,
            LimitMode::Reserve(s) => Some(s),
        };
        self
    }

    /// Replaces the clock (Unix seconds), for tests.
    #[must_use]
    pub fn with_clock(mut self, clock: Clock) -> Self {
        self.clock = clock;
        self
    }

    /// Whether no route has rate limits and no backend a quota.
    pub fn is_empty(&self) -> bool {
        self.routes.is_empty() && self.quotas.is_empty()
    }

    /// Whether any route has `Global` rate limits or any backend a quota (quotas are
    /// shared by every instance).
    pub fn has_global(&self) -> bool {
        !self.quotas.is_empty()
            || self
                .routes
                .values()
                .any(|r| r.scope == RateLimitScope::Global)
    }

    /// Whether a response cost reads `llmRequestCosts` or a quota counts tokens, so
    /// streams must carry usage.
    pub fn needs_usage(&self) -> bool {
        !self.quotas.is_empty()
            || self.routes.values().any(|r| {
                r.rules
                    .iter()
                    .any(|rule| matches!(rule.response_cost, Some(LimitCost::Metadata { .. })))
            })
    }

    pub(super) fn store(&self, scope: RateLimitScope) -> &Arc<dyn LimitStore> {
        match scope {
            RateLimitScope::Global => &self.global,
            RateLimitScope::Local => &self.local,
        }
    }
}

/// A number cost as known on the request path; metadata costs are only known once the
/// response has been read, so they only check the budget here.
fn request_cost(c: &LimitCost) -> u64 {
    match c {
        LimitCost::Number(n) => *n,
        LimitCost::Metadata { .. } => 0,
    }
}

#[async_trait]
impl TokenMeter for RateLimitMeter {
    async fn reserve(&self, req: &MeterRequest<'_>) -> Result<Reservation> {
        let mut reservation = Reservation {
            id: self.next_id.fetch_add(1, Ordering::Relaxed),
            estimate: req.estimate,
            ..Reservation::default()
        };
        let now = (self.clock)();
        if self.reserve.is_some() {
            self.reserve_holds(req, now, &mut reservation).await?;
            return Ok(reservation);
        }
        if let Some(limits) = self.routes.get(req.route) {
            self.check_route(limits, req, now, &mut reservation).await?;
        }
        self.check_quota(req, now, &mut reservation).await?;
        Ok(reservation)
    }

    fn settle(&self, mut reservation: Reservation, settlement: &Settlement<'_>) {
        self.settle_held(std::mem::take(&mut reservation.held), settlement);
        self.settle_quota(&reservation, settlement);
        self.settle_route(reservation, settlement);
    }

    fn reserve_settings(&self) -> Option<ReserveSettings> {
        self.reserve
    }
}

impl RateLimitMeter {
    /// The route's BackendTrafficPolicy rules: request costs added, budgets checked.
    async fn check_route(
        &self,
        limits: &RouteLimits,
        req: &MeterRequest<'_>,
        now: u64,
        reservation: &mut Reservation,
    ) -> Result<()> {
        let mut holds = Vec::new();
        let mut checked = Vec::new();
        for rule in &limits.rules {
            let Some(descriptors) = match_all(&rule.selectors, req.headers, req.client_ip) else {
                continue;
            };
            let route = (!rule.shared).then_some(req.route);
            let base = bucket_base(&limits.policy, rule.index, route, &descriptors);
            let cost = request_cost(&rule.request_cost);
            if let Some(c) = &rule.response_cost {
                reservation.response.push(ResponseCharge {
                    bucket: base.clone(),
                    window: Duration::from_secs(rule.window),
                    cost: c.clone(),
                    scope: limits.scope,
                });
            }
            holds.push(Hold {
                bucket: base,
                window: rule.window,
                limit: rule.limit,
                amount: cost,
                enforce: !rule.shadow,
            });
            checked.push((rule, cost));
        }
        if holds.is_empty() {
            return Ok(());
        }
        // The request costs are added whatever the counts (as Envoy does), in the
        // window of the store's clock (Redis `TIME`), and decided on here.
        let store = self.store(limits.scope);
        let (now, counts) = match store.reserve(now, &holds, Admission::Always).await {
            Ok(r) => (r.now, r.counts),
            Err(e) => {
                let deny = limits.fail_closed.unwrap_or(self.failure.rate_limits_deny);
                self.stats.store_failed(now, &e, deny);
                return if deny {
                    Err(store_down("rate-limit"))
                } else {
                    Ok(())
                };
            }
        };
        for h in &holds {
            reservation
                .keys
                .push(bucket_key(&h.bucket, window_start(now, h.window)));
        }
        let mut refused: Option<(u64, &Rule)> = None;
        let mut status = LimitStatus::default();
        for ((rule, cost), count) in checked.into_iter().zip(counts) {
            if !rule.shadow {
                status.note(rule.unit(), standing(rule, count, now));
            }
            let over = if cost == 0 {
                count >= rule.limit
            } else {
                count > rule.limit
            };
            if !over {
                self.stats.ok.fetch_add(1, Ordering::Relaxed);
            } else if rule.shadow {
                self.stats.shadow_over_limit.fetch_add(1, Ordering::Relaxed);
                tracing::debug!(policy = %limits.policy, rule = rule.index, count, limit = rule.limit, "shadow-mode rate limit exceeded");
            } else {
                self.stats.over_limit.fetch_add(1, Ordering::Relaxed);
                let reset = seconds_to_reset(now, rule.window);
                if refused.is_none_or(|(r, _)| reset > r) {
                    refused = Some((reset, rule));
                }
            }
        }
        note_status(reservation, &status);
        match refused {
            // The request is not made, so nothing is settled: the charges already added
            // on the request path stay, as in Envoy.
            Some((reset, rule)) => Err(Error::RateLimited {
                status: Some(Box::new(status)),
                message: format!(
                    "the limit of {} per {} (rule {} of {}) is used up",
                    rule.limit,
                    unit_name(rule.window),
                    rule.index,
                    limits.policy
                ),
                retry_after: Some(Duration::from_secs(reset)),
            }),
            None => Ok(()),
        }
    }

    /// The quota of the request's backend and model and the buckets the request falls
    /// into, when any.
    fn quota_check(&self, req: &MeterRequest<'_>) -> Option<(&Arc<Quota>, Check)> {
        let quota = self
            .quotas
            .find(short_backend_name(req.backend), req.model)?;
        let subject = Subject {
            backend: req.backend,
            model: req.model,
            route: req.route,
            headers: req.headers,
            client_ip: req.client_ip,
        };
        let check = quota.check(&subject)?;
        Some((quota, check))
    }

    /// The QuotaPolicy of the request's backend and model: its matching buckets read,
    /// the request refused when every enforcing one is used up.
    async fn check_quota(
        &self,
        req: &MeterRequest<'_>,
        now: u64,
        reservation: &mut Reservation,
    ) -> Result<()> {
        let Some((quota, check)) = self.quota_check(req) else {
            return Ok(());
        };
        // Read in the window of the store's clock, decided on here.
        let holds = check.holds(0);
        let (now, counts) = match self.global.reserve(now, &holds, Admission::Always).await {
            Ok(r) => (r.now, r.counts),
            Err(e) => {
                let deny = quota.fail_closed().unwrap_or(self.failure.quotas_deny);
                self.stats.store_failed(now, &e, deny);
                if deny {
                    return Err(store_down("quota"));
                }
                reservation.quota.push(check.charge);
                return Ok(());
            }
        };
        let d = check.decide(now, &counts);
        let mut status = reservation.status.unwrap_or_default();
        if let Some(s) = check.standing(now, &counts) {
            status.note(LimitUnit::Tokens, s);
        }
        note_status(reservation, &status);
        self.stats.ok.fetch_add(d.ok, Ordering::Relaxed);
        self.stats
            .shadow_over_limit
            .fetch_add(d.shadow_over, Ordering::Relaxed);
        self.stats.over_limit.fetch_add(d.over, Ordering::Relaxed);
        if d.shadow_over > 0 {
            tracing::debug!(policy = quota.policy(), "shadow-mode quota exceeded");
        }
        if let Some(reset) = d.refuse_for {
            let (limit, window) = check.limit();
            return Err(Error::RateLimited {
                status: Some(Box::new(status)),
                message: format!(
                    "the quota of {limit} per {} of {} for model {} is used up",
                    unit_name(window),
                    quota.policy(),
                    req.model
                ),
                retry_after: Some(Duration::from_secs(reset)),
            });
        }
        reservation.quota.push(check.charge);
        Ok(())
    }

    /// Charges the quota buckets the exchange's cost, in the current window of the
    /// store's clock.
    fn settle_quota(&self, reservation: &Reservation, settlement: &Settlement<'_>) {
        if reservation.quota.is_empty() {
            return;
        }
        let now = (self.clock)();
        let mut charges = Vec::new();
        for q in &reservation.quota {
            let cost = q.cost(settlement.usage);
            if cost > 0 {
                charges.extend(q.charges(cost));
            }
        }
        if !charges.is_empty() {
            self.global.adjust(now, charges);
        }
    }

    /// Adds the response costs, in the current window of the store's clock.
    fn settle_route(&self, reservation: Reservation, settlement: &Settlement<'_>) {
        if reservation.response.is_empty() {
            return;
        }
        let now = (self.clock)();
        let mut local = Vec::new();
        let mut global = Vec::new();
        for charge in reservation.response {
            let cost = response_value(&charge.cost, |k| settlement.cost(k));
            if cost == 0 {
                continue;
            }
            let add = Adjustment {
                bucket: charge.bucket,
                window: charge.window.as_secs().max(1),
                start: None,
                delta: i64::try_from(cost).unwrap_or(i64::MAX),
            };
            match charge.scope {
                RateLimitScope::Local => local.push(add),
                RateLimitScope::Global => global.push(add),
            }
        }
        if !local.is_empty() {
            self.local.adjust(now, local);
        }
        if !global.is_empty() {
            self.global.adjust(now, global);
        }
    }
}

/// The value of a response cost: a number, or the cost value `lookup` gives for its
/// `io.envoy.ai_gateway` metadata key (0 for any other namespace, which aigw never
/// writes).
fn response_value(cost: &LimitCost, lookup: impl Fn(&str) -> Option<u64>) -> u64 {
    match cost {
        LimitCost::Number(n) => *n,
        LimitCost::Metadata { namespace, key } if namespace == METADATA_NAMESPACE => {
            lookup(key).unwrap_or(0)
        }
        LimitCost::Metadata { .. } => 0,
    }
}

/// A rule's standing after a count.
const fn standing(rule: &Rule, count: u64, now: u64) -> Standing {
    Standing {
        limit: rule.limit,
        remaining: rule.limit.saturating_sub(count),
        reset: seconds_to_reset(now, rule.window),
    }
}

/// Folds `status` into the reservation's.
fn note_status(reservation: &mut Reservation, status: &LimitStatus) {
    if status.is_empty() {
        return;
    }
    reservation
        .status
        .get_or_insert_with(LimitStatus::default)
        .merge(status);
}

mod reserve;
