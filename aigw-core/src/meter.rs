//! The [`TokenMeter`] trait: token budgets reserved before and settled after a call.

use crate::error::Result;
use crate::usage::TokenUsage;
use async_trait::async_trait;
use http::HeaderMap;
use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

/// `Global` (shared, e.g. Redis) or `Local` (per instance).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RateLimitScope {
    /// Shared across instances.
    Global,
    /// Per instance.
    Local,
}

/// How much a request or response costs against a limit.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LimitCost {
    /// A fixed number (0 = only check the budget).
    Number(u64),
    /// The value of dynamic metadata `namespace`/`key`, e.g. `io.envoy.ai_gateway` /
    /// `llm_total_token` (a cost key of the route).
    Metadata {
        /// Namespace.
        namespace: String,
        /// Key.
        key: String,
    },
}

/// Everything a cost is computed from.
#[derive(Debug, Clone, Copy)]
pub struct CostInput<'a> {
    /// The effective model (after `modelNameOverride`).
    pub model: &'a str,
    /// The per-rule backend name (`ns/name/route/{route}/rule/{i}/ref/{j}`).
    pub backend: &'a str,
    /// The route, `ns/name`.
    pub route_name: &'a str,
    /// The final token usage.
    pub usage: &'a TokenUsage,
}

/// The cost values of a route (`llmRequestCosts`) for a usage: what a [`MeterGuard`]
/// computes when an exchange is abandoned. Implemented by
/// [`CostSet`](crate::cost::CostSet).
pub trait RouteCosts: Send + Sync + std::fmt::Debug {
    /// `(metadataKey, value)` for every cost that evaluates.
    fn evaluate(&self, input: &CostInput<'_>) -> Vec<(String, u64)>;
}

/// What a meter needs to know about a request to account for it.
#[derive(Debug, Clone, Copy)]
pub struct MeterRequest<'a> {
    /// The route (`namespace/name`).
    pub route: &'a str,
    /// The backend (`namespace/name`).
    pub backend: &'a str,
    /// The model after any override.
    pub model: &'a str,
    /// The client identity (API key id, JWT subject), when known.
    pub client: Option<&'a str>,
    /// Estimated tokens of the request (prompt estimate plus `max_tokens`).
    pub estimate: u64,
    /// The estimated usage, input and output apart, when the meter asked for it
    /// ([`TokenMeter::reserve_settings`]): the prompt counted by the model's tokenizer
    /// (or heuristic) and the output budget the request names, else the default.
    pub estimated: Option<TokenUsage>,
    /// The route's cost values (`llmRequestCosts`), to price `estimated` with.
    pub costs: Option<&'a dyn RouteCosts>,
    /// The client's request headers (`x-ai-eg-model` set), for client selectors.
    pub headers: &'a HeaderMap,
    /// The client's address, when the transport knows it.
    pub client_ip: Option<IpAddr>,
}

/// A charge deferred to the end of the exchange: a rate-limit bucket whose response
/// cost is only known from the final usage.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResponseCharge {
    /// The bucket's key without its window ([`crate::limits::bucket_base`]).
    pub bucket: String,
    /// The bucket's window.
    pub window: Duration,
    /// What the response costs.
    pub cost: LimitCost,
    /// Which store holds the bucket.
    pub scope: RateLimitScope,
}

/// What a finished (or abandoned) exchange used, handed to [`TokenMeter::settle`].
#[derive(Debug, Clone, Copy)]
pub struct Settlement<'a> {
    /// The cumulative usage seen (partial after a client hang-up).
    pub usage: &'a TokenUsage,
    /// The route's `llmRequestCosts` computed from that usage, by metadata key (empty
    /// when the route has none).
    pub costs: &'a [(String, u64)],
    /// Whether the usage is (partly) the gateway's estimate rather than the provider's
    /// report (a cut stream): a reserve-mode meter caps such a charge at what it held.
    pub estimated: bool,
}

impl Settlement<'_> {
    /// The cost value of a metadata key, as Envoy's rate-limit filter reads it from
    /// `io.envoy.ai_gateway` dynamic metadata.
    pub fn cost(&self, key: &str) -> Option<u64> {
        self.costs.iter().find(|(k, _)| k == key).map(|(_, v)| *v)
    }
}

/// A reservation handed out by [`TokenMeter::reserve`]; settled exactly once.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Reservation {
    /// Meter-specific id of the reservation.
    pub id: u64,
    /// The estimate that was reserved.
    pub estimate: u64,
    /// The buckets the reservation was charged to.
    pub keys: Vec<String>,
    /// Charges to make when the exchange ends.
    pub response: Vec<ResponseCharge>,
    /// QuotaPolicy buckets to charge when the exchange ends.
    pub quota: Vec<crate::limits::QuotaCharge>,
    /// Amounts held in reserve mode, corrected with the actual usage on settle.
    pub held: Vec<crate::limits::HeldCharge>,
    /// Where the client stands against the limits checked, for the `x-ratelimit-*`
    /// response headers.
    pub status: Option<crate::limits::LimitStatus>,
}

impl Reservation {
    /// Whether the exchange must see the provider's usage (a charge depends on it), so
    /// streams ask the upstream for it.
    pub fn needs_usage(&self) -> bool {
        !self.quota.is_empty() || !self.held.is_empty() || self.needs_costs()
    }

    /// Whether settling needs the route's cost values (a charge reads metadata).
    pub fn needs_costs(&self) -> bool {
        self.response
            .iter()
            .any(|c| matches!(c.cost, LimitCost::Metadata { .. }))
            || self.held.iter().any(crate::limits::HeldCharge::needs_costs)
    }
}

/// Meters tokens against limits.
///
/// `reserve` runs before the upstream call and may refuse it (an
/// [`Error::RateLimited`](crate::Error::RateLimited), a 429). `settle` runs exactly
/// once afterwards with the actual usage — after success, after an upstream error and
/// after a client hang-up — and is synchronous so it can run from `Drop`
/// ([`MeterGuard`] does that); implementations that talk to a store enqueue the
/// settlement and return.
///
/// ```
/// use aigw_core::meter::{MeterRequest, Reservation, Settlement, TokenMeter};
/// use aigw_core::Result;
/// use std::sync::atomic::{AtomicU64, Ordering};
///
/// #[derive(Default)]
/// struct Counting(AtomicU64);
///
/// #[async_trait::async_trait]
/// impl TokenMeter for Counting {
///     async fn reserve(&self, req: &MeterRequest<'_>) -> Result<Reservation> {
///         Ok(Reservation { estimate: req.estimate, ..Reservation::default() })
///     }
///     fn settle(&self, _r: Reservation, done: &Settlement<'_>) {
///         self.0.fetch_add(done.usage.total_or_sum().unwrap_or(0), Ordering::Relaxed);
///     }
/// }
/// ```
#[async_trait]
pub trait TokenMeter: Send + Sync {
    /// Reserves an estimate, or refuses the request.
    async fn reserve(&self, request: &MeterRequest<'_>) -> Result<Reservation>;

    /// Settles a reservation with the actual usage and cost values. Called exactly once
    /// per reservation.
    fn settle(&self, reservation: Reservation, settlement: &Settlement<'_>);

    /// `Some` when the meter reserves estimates before the call (reserve mode): the
    /// caller then fills [`MeterRequest::estimated`] and [`MeterRequest::costs`].
    fn reserve_settings(&self) -> Option<ReserveSettings> {
        None
    }
}

/// How a reserve-mode meter estimates a request it holds budget for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReserveSettings {
    /// Output tokens reserved when the request names no `max_tokens`,
    /// `max_completion_tokens` or `max_output_tokens`.
    pub default_output_tokens: u64,
}

impl Default for ReserveSettings {
    /// 4096: the usual ceiling of a reply when the client sets none.
    fn default() -> Self {
        Self {
            default_output_tokens: 4096,
        }
    }
}

/// A meter that never refuses and records nothing.
#[derive(Debug, Clone, Copy, Default)]
pub struct NoopMeter;

#[async_trait]
impl TokenMeter for NoopMeter {
    async fn reserve(&self, request: &MeterRequest<'_>) -> Result<Reservation> {
        Ok(Reservation {
            estimate: request.estimate,
            ..Reservation::default()
        })
    }

    fn settle(&self, _reservation: Reservation, _settlement: &Settlement<'_>) {}
}

/// Owns a reservation and guarantees it is settled exactly once.
///
/// Adapters feed it the cumulative usage as chunks arrive; it settles on
/// [`MeterGuard::finish`] or, if the request is abandoned (client disconnect, panic,
/// cancelled future), when dropped — with the tokens seen so far, so a hang-up never
/// makes tokens free. Bound to the route's costs ([`MeterGuard::with_costs`]), it
/// computes the cost values itself when dropped, so charges read from
/// `llmRequestCosts` apply to abandoned exchanges too.
pub struct MeterGuard {
    meter: Arc<dyn TokenMeter>,
    reservation: Option<Reservation>,
    usage: TokenUsage,
    costs: Option<CostBinding>,
    estimated: bool,
}

/// What the cost expressions of a route need besides the usage.
struct CostBinding {
    set: Arc<dyn RouteCosts>,
    route: Arc<str>,
    backend: Arc<str>,
    model: String,
}

impl std::fmt::Debug for MeterGuard {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MeterGuard")
            .field("reservation", &self.reservation)
            .field("usage", &self.usage)
            .finish_non_exhaustive()
    }
}

impl MeterGuard {
    /// Wraps a reservation.
    pub fn new(meter: Arc<dyn TokenMeter>, reservation: Reservation) -> Self {
        Self {
            meter,
            reservation: Some(reservation),
            usage: TokenUsage::default(),
            costs: None,
            estimated: false,
        }
    }

    /// Marks the usage as (partly) the gateway's estimate.
    pub fn mark_estimated(&mut self) {
        self.estimated = true;
    }

    /// Where the client stands against the limits checked, for response headers.
    pub fn status(&self) -> Option<&crate::limits::LimitStatus> {
        self.reservation.as_ref().and_then(|r| r.status.as_ref())
    }

    /// Binds the route's cost set, for settling without [`MeterGuard::finish_with_costs`].
    #[must_use]
    pub fn with_costs(
        mut self,
        set: Arc<dyn RouteCosts>,
        route: Arc<str>,
        backend: Arc<str>,
        model: String,
    ) -> Self {
        self.costs = Some(CostBinding {
            set,
            route,
            backend,
            model,
        });
        self
    }

    /// Records the backend and effective model of the current attempt (what cost
    /// expressions see).
    pub fn set_target(&mut self, backend: &Arc<str>, model: &str) {
        if let Some(c) = self.costs.as_mut() {
            if !Arc::ptr_eq(&c.backend, backend) {
                c.backend = backend.clone();
            }
            if c.model != model {
                model.clone_into(&mut c.model);
            }
        }
    }

    /// Folds in the latest cumulative usage.
    pub fn update(&mut self, usage: &TokenUsage) {
        self.usage.update(usage);
    }

    /// The usage recorded so far.
    pub const fn usage(&self) -> &TokenUsage {
        &self.usage
    }

    /// Settles now, computing cost values when the reservation needs them.
    pub fn finish(mut self) {
        self.settle_once(None);
    }

    /// Settles now with cost values already computed from [`MeterGuard::usage`].
    pub fn finish_with_costs(mut self, costs: &[(String, u64)]) {
        self.settle_once(Some(costs));
    }

    fn settle_once(&mut self, costs: Option<&[(String, u64)]>) {
        let Some(r) = self.reservation.take() else {
            return;
        };
        let computed;
        let costs = match (costs, &self.costs) {
            (Some(c), _) => c,
            (None, Some(b)) if r.needs_costs() => {
                computed = b.set.evaluate(&CostInput {
                    model: &b.model,
                    backend: &b.backend,
                    route_name: &b.route,
                    usage: &self.usage,
                });
                &computed
            }
            (None, _) => &[],
        };
        self.meter.settle(
            r,
            &Settlement {
                usage: &self.usage,
                costs,
                estimated: self.estimated,
            },
        );
    }
}

impl Drop for MeterGuard {
    fn drop(&mut self) {
        self.settle_once(None);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cost::CostSet;
    use std::sync::Mutex;

    type Settled = (TokenUsage, Vec<(String, u64)>);

    #[derive(Default)]
    struct Rec(Mutex<Vec<Settled>>);

    #[async_trait]
    impl TokenMeter for Rec {
        async fn reserve(&self, r: &MeterRequest<'_>) -> Result<Reservation> {
            Ok(Reservation {
                id: 1,
                estimate: r.estimate,
                ..Reservation::default()
            })
        }
        fn settle(&self, _r: Reservation, s: &Settlement<'_>) {
            self.0.lock().unwrap().push((*s.usage, s.costs.to_vec()));
        }
    }

    #[test]
    fn drop_settles_once_with_partial_usage() {
        let rec = Arc::new(Rec::default());
        let r = Reservation {
            id: 1,
            estimate: 5,
            ..Reservation::default()
        };
        {
            let mut g = MeterGuard::new(rec.clone(), r.clone());
            g.update(&TokenUsage {
                output: Some(3),
                ..Default::default()
            });
        }
        let g = MeterGuard::new(rec.clone(), r);
        g.finish();
        let v = rec.0.lock().unwrap();
        assert_eq!(v.len(), 2);
        assert_eq!(v[0].0.output, Some(3));
    }

    #[test]
    fn dropped_guard_computes_costs_a_charge_needs() {
        use crate::config::{LlmRequestCost, LlmRequestCostType};
        let set = Arc::new(
            CostSet::compile(
                &[LlmRequestCost {
                    metadata_key: "llm_total_token".into(),
                    cost_type: LlmRequestCostType::TotalToken,
                    cel: None,
                }],
                &[],
            )
            .unwrap(),
        );
        let charge = |cost| ResponseCharge {
            bucket: "b".into(),
            window: Duration::from_secs(60),
            cost,
            scope: RateLimitScope::Local,
        };
        let rec = Arc::new(Rec::default());
        let bind = |r: Reservation| {
            MeterGuard::new(rec.clone(), r).with_costs(
                set.clone(),
                Arc::from("ns/r"),
                Arc::from("ns/b"),
                "m".into(),
            )
        };
        let usage = TokenUsage {
            input: Some(4),
            output: Some(3),
            ..Default::default()
        };
        {
            let mut g = bind(Reservation {
                response: vec![charge(LimitCost::Metadata {
                    namespace: "io.envoy.ai_gateway".into(),
                    key: "llm_total_token".into(),
                })],
                ..Reservation::default()
            });
            g.update(&usage);
        }
        {
            // A fixed-number charge does not pay for cost expressions.
            let mut g = bind(Reservation {
                response: vec![charge(LimitCost::Number(2))],
                ..Reservation::default()
            });
            g.update(&usage);
        }
        let mut g = bind(Reservation::default());
        g.update(&usage);
        g.finish_with_costs(&[("k".into(), 9)]);
        let v = rec.0.lock().unwrap();
        assert_eq!(v[0].1, vec![("llm_total_token".to_string(), 7)]);
        assert!(v[1].1.is_empty());
        assert_eq!(v[2].1, vec![("k".to_string(), 9)]);
    }
}
