//! QuotaPolicy (v1alpha1): token budgets per AIServiceBackend and model, enforced by
//! the [`RateLimitMeter`](super::RateLimitMeter) with the same stores and selectors as
//! BackendTrafficPolicy rate limits.
//!
//! Semantics, from upstream's API documentation:
//!
//! * a policy applies to requests served by its `targetRefs` backends;
//! * `perModelQuotas[].modelName` is the backendRef's `modelNameOverride` (the model the
//!   backend is asked for); `serviceQuota` covers the backend's other models — a
//!   per-model quota overrides it for its model;
//! * a request's cost is `costExpression` (CEL over the token counts, as
//!   `llmRequestCosts` CEL) or `total_tokens`, charged once the exchange ends;
//! * `mode: Shared`: the cost is charged to the `defaultBucket` *and* every
//!   `bucketRules` entry whose `clientSelectors` match; the request is refused (429)
//!   only when every matching bucket that is not in `shadowMode` is used up — a
//!   request is admitted on the budget already spent, as upstream's rate-limit
//!   service does;
//! * when several policies name the same model on the same backend, the one whose
//!   `namespace/name` sorts first wins.
//!
//! Windows are fixed and aligned to the unit ([`super::key`]), on the store's clock
//! (Redis `TIME`), so replicas agree on them whatever their own clocks; the buckets
//! live in the `global` store (Redis when configured), so replicas share one quota.

use super::failure::fail_closed;
use super::hold::{Adjustment, Hold};
use super::key::{bucket_base, seconds_to_reset};
use super::selector::{ClientSelector, match_all};
use super::status::Standing;
use crate::config::{Config, QuotaPolicySpec, QuotaValue, Resource};
use crate::cost::{CelCost, CostInput};
use crate::error::{ConfigIssue, Error, Result};
use crate::usage::TokenUsage;
use http::HeaderMap;
use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Arc;

/// One bucket of a quota: the default bucket (no selectors) or a bucket rule.
#[derive(Debug)]
struct Bucket {
    selectors: Vec<ClientSelector>,
    limit: u64,
    window: u64,
    shadow: bool,
}

/// The quota of one (backend, model) pair or of a backend's other models.
#[derive(Debug)]
pub(crate) struct Quota {
    /// `QuotaPolicy/ns/name`, for messages.
    policy: String,
    /// The bucket keys' prefix: policy, backend and model.
    prefix: String,
    cost: Option<CelCost>,
    buckets: Vec<Bucket>,
    /// The policy's failure mode (annotation), when set.
    fail_closed: Option<bool>,
}

/// Buckets a request matched, to be charged when it ends.
#[derive(Debug, Clone)]
pub struct QuotaCharge {
    quota: Arc<Quota>,
    /// `(bucket base, window seconds)`.
    buckets: Vec<(String, u64)>,
    model: String,
    backend: String,
    route: String,
}

impl PartialEq for QuotaCharge {
    fn eq(&self, other: &Self) -> bool {
        Arc::ptr_eq(&self.quota, &other.quota) && self.buckets == other.buckets
    }
}

impl Eq for QuotaCharge {}

impl QuotaCharge {
    /// What the exchange costs against the quota: its cost expression (or total
    /// tokens) over the final usage; 0 when the expression fails.
    pub fn cost(&self, usage: &TokenUsage) -> u64 {
        match &self.quota.cost {
            None => usage.total_or_sum().unwrap_or(0),
            Some(cel) => cel
                .eval(&CostInput {
                    model: &self.model,
                    backend: &self.backend,
                    route_name: &self.route,
                    usage,
                })
                .unwrap_or_else(|e| {
                    tracing::warn!(policy = %self.quota.policy, error = %e, "quota cost expression failed; nothing charged");
                    0
                }),
        }
    }

    /// The additions charging `cost` to every matched bucket, in the current window of
    /// the store's clock.
    pub(crate) fn charges(&self, cost: u64) -> Vec<Adjustment> {
        let delta = i64::try_from(cost).unwrap_or(i64::MAX);
        self.buckets
            .iter()
            .map(|(base, window)| Adjustment {
                bucket: base.clone(),
                window: *window,
                start: None,
                delta,
            })
            .collect()
    }
}

/// Every quota of a configuration, by AIServiceBackend `ns/name`.
#[derive(Debug, Default)]
pub(crate) struct Quotas {
    backends: HashMap<String, BackendQuotas>,
}

#[derive(Debug, Default)]
struct BackendQuotas {
    models: HashMap<String, Arc<Quota>>,
    service: Option<Arc<Quota>>,
}

fn window_of(v: &QuotaValue) -> u64 {
    match v.duration.as_str() {
        "1m" => 60,
        "1h" => 3600,
        "1d" => 86_400,
        _ => 1,
    }
}

fn bucket(v: &QuotaValue, selectors: Vec<ClientSelector>, shadow: bool) -> Bucket {
    Bucket {
        selectors,
        limit: v.limit,
        window: window_of(v),
        shadow,
    }
}

fn compile_cost(expr: Option<&str>) -> Option<CelCost> {
    // Validation compiled it already; a failure here cannot happen on a loaded config.
    expr.and_then(|e| CelCost::compile(e).ok())
}

fn compile_model(
    q: &Resource<QuotaPolicySpec>,
    backend: &str,
    i: usize,
    issues: &mut Vec<ConfigIssue>,
) -> Option<(String, Quota)> {
    let pm = q.spec.per_model_quotas.get(i)?;
    let fail_closed = fail_closed(q, &mut Vec::new());
    let mut buckets: Vec<Bucket> = pm
        .quota
        .default_bucket
        .iter()
        .map(|v| bucket(v, Vec::new(), false))
        .collect();
    for (k, rule) in pm.quota.bucket_rules.iter().enumerate() {
        let mut selectors = Vec::new();
        for (s, v) in rule.client_selectors.iter().enumerate() {
            let field =
                format!("spec.perModelQuotas[{i}].quota.bucketRules[{k}].clientSelectors[{s}]");
            match ClientSelector::compile(v, &field) {
                Ok(c) => selectors.push(c),
                Err(Error::InvalidConfig { issues: found }) => {
                    issues.extend(found.into_iter().map(|mut x| {
                        x.document = q.label();
                        x
                    }));
                }
                Err(_) => {}
            }
        }
        buckets.push(bucket(
            &rule.quota,
            selectors,
            rule.shadow_mode.unwrap_or(false),
        ));
    }
    let quota = Quota {
        policy: q.label(),
        prefix: format!("quota/{}/{backend}/{}", q.key(), pm.model_name),
        cost: compile_cost(pm.quota.cost_expression.as_deref()),
        buckets,
        fail_closed,
    };
    Some((pm.model_name.clone(), quota))
}

impl Quotas {
    /// Compiles every QuotaPolicy of `config`. Fails on a client selector that cannot
    /// be applied (ignoring it would widen the bucket to every request).
    pub(crate) fn compile(config: &Config) -> Result<Self> {
        let mut policies: Vec<&Resource<QuotaPolicySpec>> = config.quota_policies.iter().collect();
        // The policy whose namespace/name sorts first wins a (backend, model) pair.
        policies.sort_by_key(|q| q.key());
        let mut out = Self::default();
        let mut issues = Vec::new();
        for q in policies {
            let fail_closed = fail_closed(q, &mut issues);
            for t in &q.spec.target_refs {
                let backend = format!("{}/{}", q.namespace(), t.name);
                let entry = out.backends.entry(backend.clone()).or_default();
                for i in 0..q.spec.per_model_quotas.len() {
                    if let Some((model, quota)) = compile_model(q, &backend, i, &mut issues) {
                        entry.models.entry(model).or_insert_with(|| Arc::new(quota));
                    }
                }
                if let (Some(sq), None) = (&q.spec.service_quota, &entry.service) {
                    entry.service = Some(Arc::new(Quota {
                        policy: q.label(),
                        prefix: format!("quota/{}/{backend}/*", q.key()),
                        cost: compile_cost(sq.cost_expression.as_deref()),
                        buckets: vec![bucket(&sq.quota, Vec::new(), false)],
                        fail_closed,
                    }));
                }
            }
        }
        if !issues.is_empty() {
            return Err(Error::InvalidConfig { issues });
        }
        out.backends
            .retain(|_, b| !b.models.is_empty() || b.service.is_some());
        Ok(out)
    }

    /// Whether no backend has a quota.
    pub(crate) fn is_empty(&self) -> bool {
        self.backends.is_empty()
    }

    /// The quota of a request for `model` on `backend` (`ns/name`).
    pub(crate) fn find(&self, backend: &str, model: &str) -> Option<&Arc<Quota>> {
        let b = self.backends.get(backend)?;
        b.models.get(model).or(b.service.as_ref())
    }
}

/// A quota decision on the request path.
#[derive(Debug)]
pub(crate) struct Check {
    /// For each matched bucket: limit, window, shadow.
    limits: Vec<(u64, u64, bool)>,
    /// What to charge when the exchange ends.
    pub(crate) charge: QuotaCharge,
}

/// What the counts of a [`Check`] decide.
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct Decision {
    /// Buckets within their limit.
    pub(crate) ok: u64,
    /// Shadow buckets over their limit (the request goes on).
    pub(crate) shadow_over: u64,
    /// Enforcing buckets over their limit.
    pub(crate) over: u64,
    /// When every enforcing bucket is used up: seconds until the first one resets.
    pub(crate) refuse_for: Option<u64>,
}

/// Everything a quota check reads from the request.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Subject<'a> {
    pub(crate) backend: &'a str,
    pub(crate) model: &'a str,
    pub(crate) route: &'a str,
    pub(crate) headers: &'a HeaderMap,
    pub(crate) client_ip: Option<IpAddr>,
}

impl Quota {
    /// The buckets `subject` falls into, or `None` when it matches none.
    pub(crate) fn check(self: &Arc<Self>, subject: &Subject<'_>) -> Option<Check> {
        let mut limits = Vec::new();
        let mut buckets = Vec::new();
        for (i, b) in self.buckets.iter().enumerate() {
            let Some(descriptors) = match_all(&b.selectors, subject.headers, subject.client_ip)
            else {
                continue;
            };
            buckets.push((bucket_base(&self.prefix, i, None, &descriptors), b.window));
            limits.push((b.limit, b.window, b.shadow));
        }
        if buckets.is_empty() {
            return None;
        }
        Some(Check {
            limits,
            charge: QuotaCharge {
                quota: self.clone(),
                buckets,
                model: subject.model.to_owned(),
                backend: subject.backend.to_owned(),
                route: subject.route.to_owned(),
            },
        })
    }

    /// `QuotaPolicy/ns/name`.
    pub(crate) fn policy(&self) -> &str {
        &self.policy
    }

    /// The policy's failure mode (annotation), when set.
    pub(crate) const fn fail_closed(&self) -> Option<bool> {
        self.fail_closed
    }
}

impl Check {
    /// Decides from the matched buckets' counts, in order.
    pub(crate) fn decide(&self, now: u64, counts: &[u64]) -> Decision {
        let mut d = Decision {
            ok: 0,
            shadow_over: 0,
            over: 0,
            refuse_for: None,
        };
        let mut enforcing = 0;
        let mut first_reset: Option<u64> = None;
        for (&(limit, window, shadow), &count) in self.limits.iter().zip(counts) {
            let used_up = count >= limit;
            match (used_up, shadow) {
                (false, _) => d.ok += 1,
                (true, true) => d.shadow_over += 1,
                (true, false) => d.over += 1,
            }
            if !shadow {
                enforcing += 1;
                if used_up {
                    let reset = seconds_to_reset(now, window);
                    first_reset = Some(first_reset.map_or(reset, |r| r.min(reset)));
                }
            }
        }
        if enforcing > 0 && d.over == enforcing {
            d.refuse_for = first_reset;
        }
        d
    }

    /// Holds of `amount` in every matched bucket, for reserve mode.
    pub(crate) fn holds(&self, amount: u64) -> Vec<Hold> {
        self.charge
            .buckets
            .iter()
            .zip(&self.limits)
            .map(|((base, window), &(limit, _, shadow))| Hold {
                bucket: base.clone(),
                window: *window,
                limit,
                amount,
                enforce: !shadow,
            })
            .collect()
    }

    /// The standing the client sees: the enforcing bucket with the most left (one
    /// with room is enough to be admitted).
    pub(crate) fn standing(&self, now: u64, counts: &[u64]) -> Option<Standing> {
        self.limits
            .iter()
            .zip(counts)
            .filter(|((_, _, shadow), _)| !shadow)
            .map(|(&(limit, window, _), &count)| Standing {
                limit,
                remaining: limit.saturating_sub(count),
                reset: seconds_to_reset(now, window),
            })
            .max_by_key(|s| s.remaining)
    }

    /// The limit of the first enforcing bucket, for the refusal's message.
    pub(crate) fn limit(&self) -> (u64, u64) {
        self.limits
            .iter()
            .find(|(_, _, shadow)| !shadow)
            .map_or((0, 1), |(l, w, _)| (*l, *w))
    }
}
