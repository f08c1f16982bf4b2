//! Gateway-level settings from Envoy Gateway traffic policies, typed for the adapters:
//! retries, timeouts and rate limits of a BackendTrafficPolicy, and the body buffer
//! limit of a ClientTrafficPolicy.
//!
//! A BackendTrafficPolicy applies to an AIGatewayRoute when it targets the HTTPRoute of
//! the same name (the one upstream generates) or one of the route's Gateways; the
//! route-level policy wins, as in Envoy Gateway.

use super::envoy_gateway::{
    ActiveHealthCheckSettings, BackendTrafficPolicySpec, CircuitBreakerSettings,
    ClientTrafficPolicySpec, PassiveHealthCheckSettings, RateLimitCostSpecifier,
};
use super::meta::{PolicyTargetReference, parse_duration, parse_quantity_bytes};
use super::{AIGatewayRouteSpec, Config, Resource};
use crate::health::{ActiveCheck, CircuitLimits, OutlierPolicy};
pub use crate::meter::{LimitCost, RateLimitScope};
use crate::retry::RetryOn;
use serde_json::Value;
use std::sync::Arc;
use std::time::Duration;

/// Envoy Gateway's default number of retries when `retry` is present without
/// `numRetries`.
pub const DEFAULT_NUM_RETRIES: u32 = 2;

/// Retry behaviour.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Retries after the first attempt.
    pub num_retries: u32,
    /// Attempts per priority level before moving to the next.
    pub num_attempts_per_priority: Option<u32>,
    /// Timeout of each attempt.
    pub per_retry_timeout: Option<Duration>,
    /// Backoff base interval.
    pub backoff_base: Option<Duration>,
    /// Backoff cap.
    pub backoff_max: Option<Duration>,
    /// Statuses that trigger a retry.
    pub retry_on_status: Vec<u16>,
    /// Envoy triggers (`connect-failure`, `retriable-status-codes`, `5xx`, `reset`, …).
    pub triggers: Vec<String>,
    /// The conditions `triggers` and `retry_on_status` stand for.
    pub retry_on: Arc<RetryOn>,
}

/// Timeouts from `timeout`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TrafficTimeouts {
    /// Whole request.
    pub request: Option<Duration>,
    /// TCP connect.
    pub connect: Option<Duration>,
    /// Idle connection.
    pub connection_idle: Option<Duration>,
    /// Maximum connection lifetime.
    pub max_connection_duration: Option<Duration>,
}

/// One rate-limit rule.
#[derive(Debug, Clone, PartialEq)]
pub struct RateLimitRule {
    /// Units per window.
    pub requests: u64,
    /// The window.
    pub window: Duration,
    /// Cost on the request path (default 1).
    pub request_cost: LimitCost,
    /// Cost on the response path (default none).
    pub response_cost: Option<LimitCost>,
    /// Client selectors as written (header matches with `Distinct`/`Exact`, CIDRs);
    /// compiled by [`crate::limits`].
    pub client_selectors: Vec<Value>,
    /// Count without enforcing.
    pub shadow_mode: bool,
    /// One budget across every route the policy applies to, instead of one per route.
    pub shared: bool,
}

/// Rate limits.
#[derive(Debug, Clone, PartialEq)]
pub struct RateLimitPolicy {
    /// Scope.
    pub scope: RateLimitScope,
    /// Rules.
    pub rules: Vec<RateLimitRule>,
}

/// The BackendTrafficPolicy settings that apply to a route.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct TrafficSettings {
    /// The policy, `namespace/name`.
    pub policy: String,
    /// Retries.
    pub retry: Option<RetryPolicy>,
    /// Timeouts.
    pub timeouts: TrafficTimeouts,
    /// Rate limits.
    pub rate_limit: Option<RateLimitPolicy>,
    /// Circuit-breaker thresholds of each backend.
    pub circuit_breaker: Option<CircuitLimits>,
    /// Outlier ejection (`healthCheck.passive`).
    pub passive_health: Option<OutlierPolicy>,
    /// Active HTTP checks (`healthCheck.active` of type `HTTP`).
    pub active_health: Option<ActiveCheck>,
    /// Settings present but not applied by aigw's data plane (reported by `validate`).
    pub ignored: Vec<String>,
}

/// Envoy Gateway's default for every circuit-breaker threshold.
pub const DEFAULT_CIRCUIT_THRESHOLD: u32 = 1024;

fn circuit(c: &CircuitBreakerSettings, ignored: &mut Vec<String>) -> CircuitLimits {
    ignored.extend(c.other.keys().map(|k| format!("circuitBreaker.{k}")));
    CircuitLimits {
        max_connections: c.max_connections.unwrap_or(DEFAULT_CIRCUIT_THRESHOLD),
        max_pending_requests: c.max_pending_requests.unwrap_or(DEFAULT_CIRCUIT_THRESHOLD),
        max_parallel_requests: c.max_parallel_requests.unwrap_or(DEFAULT_CIRCUIT_THRESHOLD),
    }
}

fn passive(p: &PassiveHealthCheckSettings, ignored: &mut Vec<String>) -> OutlierPolicy {
    ignored.extend(p.other.keys().map(|k| format!("healthCheck.passive.{k}")));
    OutlierPolicy {
        split_local_origin: p.split_external_local_origin_errors.unwrap_or(false),
        interval: dur(&p.interval).unwrap_or(Duration::from_secs(3)),
        consecutive_local_origin: p.consecutive_local_origin_failures.unwrap_or(5),
        consecutive_gateway: p.consecutive_gateway_errors,
        consecutive_5xx: p.consecutive_5xx_errors.unwrap_or(5),
        base_ejection: dur(&p.base_ejection_time).unwrap_or(Duration::from_secs(30)),
        max_ejection_percent: p.max_ejection_percent.unwrap_or(10),
        always_eject_one: p.always_eject_one_endpoint.unwrap_or(false),
    }
}

/// An HTTP check; other checker types are listed as not applied.
fn active(a: &ActiveHealthCheckSettings, ignored: &mut Vec<String>) -> Option<ActiveCheck> {
    ignored.extend(a.other.keys().map(|k| format!("healthCheck.active.{k}")));
    let http = match (a.check_type.as_deref(), &a.http) {
        (Some("HTTP") | None, Some(http)) => http,
        (t, _) => {
            ignored.push(format!(
                "healthCheck.active (type {}: only HTTP checks are run)",
                t.unwrap_or("unset")
            ));
            return None;
        }
    };
    ignored.extend(
        http.other
            .keys()
            .map(|k| format!("healthCheck.active.http.{k}")),
    );
    Some(ActiveCheck {
        timeout: dur(&a.timeout).unwrap_or(Duration::from_secs(1)),
        interval: dur(&a.interval).unwrap_or(Duration::from_secs(3)),
        unhealthy_threshold: a.unhealthy_threshold.unwrap_or(3),
        healthy_threshold: a.healthy_threshold.unwrap_or(1),
        path: http.path.clone(),
        method: http.method.clone().unwrap_or_else(|| "GET".into()),
        expected_statuses: if http.expected_statuses.is_empty() {
            vec![200]
        } else {
            http.expected_statuses.clone()
        },
        hostname: http.hostname.clone(),
    })
}

/// The ClientTrafficPolicy settings for a Gateway.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ClientSettings {
    /// The policy, `namespace/name`.
    pub policy: String,
    /// Largest request body buffered, in bytes.
    pub buffer_limit: Option<u64>,
    /// Settings present but not applied.
    pub ignored: Vec<String>,
}

fn dur(s: &Option<String>) -> Option<Duration> {
    s.as_deref().and_then(|s| parse_duration(s).ok())
}

/// The window of a rate-limit unit.
pub fn unit_window(unit: &str) -> Option<Duration> {
    Some(Duration::from_secs(match unit {
        "Second" => 1,
        "Minute" => 60,
        "Hour" => 3600,
        "Day" => 86_400,
        "Month" => 30 * 86_400,
        "Year" => 365 * 86_400,
        _ => return None,
    }))
}

fn cost(c: &RateLimitCostSpecifier) -> Option<LimitCost> {
    match c.from.as_str() {
        "Number" => Some(LimitCost::Number(c.number.unwrap_or(1))),
        "Metadata" => c.metadata.as_ref().map(|m| LimitCost::Metadata {
            namespace: m.namespace.clone(),
            key: m.key.clone(),
        }),
        _ => None,
    }
}

impl TrafficSettings {
    /// Types a BackendTrafficPolicy.
    pub fn from_policy(p: &Resource<BackendTrafficPolicySpec>) -> Self {
        let s = &p.spec;
        let retry = s.retry.as_ref().map(|r| {
            let per = r.per_retry.as_ref();
            let back = per.and_then(|p| p.back_off.as_ref());
            let retry_on_status = r
                .retry_on
                .as_ref()
                .map(|o| o.http_status_codes.clone())
                .unwrap_or_default();
            let triggers = r
                .retry_on
                .as_ref()
                .map(|o| o.triggers.clone())
                .unwrap_or_default();
            RetryPolicy {
                num_retries: r.num_retries.unwrap_or(DEFAULT_NUM_RETRIES),
                num_attempts_per_priority: r.num_attempts_per_priority,
                per_retry_timeout: per.and_then(|p| dur(&p.timeout)),
                backoff_base: back.and_then(|b| dur(&b.base_interval)),
                backoff_max: back.and_then(|b| dur(&b.max_interval)),
                retry_on: Arc::new(RetryOn::from_policy(&triggers, &retry_on_status)),
                retry_on_status,
                triggers,
            }
        });
        let timeouts = s
            .timeout
            .as_ref()
            .map(|t| TrafficTimeouts {
                request: t.http.as_ref().and_then(|h| dur(&h.request_timeout)),
                connect: t.tcp.as_ref().and_then(|h| dur(&h.connect_timeout)),
                connection_idle: t
                    .http
                    .as_ref()
                    .and_then(|h| dur(&h.connection_idle_timeout)),
                max_connection_duration: t
                    .http
                    .as_ref()
                    .and_then(|h| dur(&h.max_connection_duration)),
            })
            .unwrap_or_default();
        let rate_limit = s.rate_limit.as_ref().and_then(|rl| {
            let (scope, rules) = match (&rl.global, &rl.local) {
                (Some(g), _) if rl.limit_type.as_deref() != Some("Local") => {
                    (RateLimitScope::Global, g)
                }
                (_, Some(l)) => (RateLimitScope::Local, l),
                (Some(g), None) => (RateLimitScope::Global, g),
                (None, None) => return None,
            };
            Some(RateLimitPolicy {
                scope,
                rules: rules
                    .rules
                    .iter()
                    .filter_map(|r| {
                        Some(RateLimitRule {
                            requests: r.limit.requests,
                            window: unit_window(&r.limit.unit)?,
                            request_cost: r
                                .cost
                                .as_ref()
                                .and_then(|c| c.request.as_ref())
                                .and_then(cost)
                                .unwrap_or(LimitCost::Number(1)),
                            response_cost: r
                                .cost
                                .as_ref()
                                .and_then(|c| c.response.as_ref())
                                .and_then(cost),
                            client_selectors: r.client_selectors.clone(),
                            shadow_mode: r.shadow_mode.unwrap_or(false),
                            shared: r.shared.unwrap_or(false),
                        })
                    })
                    .collect(),
            })
        });
        let mut ignored: Vec<String> = s.other.keys().cloned().collect();
        if let Some(h) = s.timeout.as_ref().and_then(|t| t.http.as_ref()) {
            for (set, name) in [
                (
                    h.max_connection_duration.is_some(),
                    "timeout.http.maxConnectionDuration",
                ),
                (
                    h.max_stream_duration.is_some(),
                    "timeout.http.maxStreamDuration",
                ),
            ] {
                if set {
                    ignored.push(name.into());
                }
            }
        }
        let circuit_breaker = s.circuit_breaker.as_ref().map(|c| circuit(c, &mut ignored));
        let health = s.health_check.as_ref();
        if let Some(h) = health {
            ignored.extend(h.other.keys().map(|k| format!("healthCheck.{k}")));
        }
        let passive_health = health
            .and_then(|h| h.passive.as_ref())
            .map(|p| passive(p, &mut ignored));
        let active_health = health
            .and_then(|h| h.active.as_ref())
            .and_then(|a| active(a, &mut ignored));
        Self {
            policy: p.key(),
            retry,
            timeouts,
            rate_limit,
            circuit_breaker,
            passive_health,
            active_health,
            ignored,
        }
    }

    /// The settings for an AIGatewayRoute: a policy targeting the generated HTTPRoute
    /// (same name) wins over one targeting a parent Gateway.
    pub fn for_route(config: &Config, route: &Resource<AIGatewayRouteSpec>) -> Option<Self> {
        let ns = route.namespace();
        let targets = |p: &Resource<BackendTrafficPolicySpec>, kind: &str, name: &str| {
            p.namespace() == ns
                && policy_targets(&p.spec.target_refs, &p.spec.target_ref, kind, name)
        };
        if let Some(p) = config
            .backend_traffic_policies
            .iter()
            .find(|p| targets(p, "HTTPRoute", route.name()))
        {
            return Some(Self::from_policy(p));
        }
        route.spec.parent_refs.iter().find_map(|parent| {
            config
                .backend_traffic_policies
                .iter()
                .find(|p| targets(p, "Gateway", &parent.name))
                .map(Self::from_policy)
        })
    }
}

pub(crate) fn policy_targets(
    refs: &[PolicyTargetReference],
    single: &Option<PolicyTargetReference>,
    kind: &str,
    name: &str,
) -> bool {
    refs.iter()
        .chain(single.iter())
        .any(|t| t.kind == kind && t.name == name)
}

impl ClientSettings {
    /// Types a ClientTrafficPolicy.
    pub fn from_policy(p: &Resource<ClientTrafficPolicySpec>) -> Self {
        let mut ignored: Vec<String> = p.spec.other.keys().cloned().collect();
        if let Some(c) = &p.spec.connection {
            ignored.extend(c.other.keys().map(|k| format!("connection.{k}")));
        }
        Self {
            policy: p.key(),
            buffer_limit: p
                .spec
                .connection
                .as_ref()
                .and_then(|c| c.buffer_limit.as_deref())
                .and_then(parse_quantity_bytes),
            ignored,
        }
    }

    /// The settings for a Gateway `namespace/name`.
    pub fn for_gateway(config: &Config, namespace: &str, name: &str) -> Option<Self> {
        config
            .client_traffic_policies
            .iter()
            .find(|p| {
                p.namespace() == namespace
                    && policy_targets(&p.spec.target_refs, &p.spec.target_ref, "Gateway", name)
            })
            .map(Self::from_policy)
    }
}
