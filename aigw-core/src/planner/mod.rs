//! The one layer between a loaded configuration and the exchange engine, shared by
//! every packaging.
//!
//! A [`Planner`] is one immutable generation: the compiled routing snapshot, every
//! per-rule backend resolved to a [`Target`] with its credential provider, each route's
//! `llmRequestCosts` and the rate-limit meter. It is built in full at load — the request
//! path only does map lookups, takes no lock and never builds anything. A [`Loader`]
//! holds what outlives a generation (the credential resolver, the providers of unchanged
//! policies, the rate-limit counters) and builds each one; [`reload`] decides when.
//!
//! The adapters narrow it: `aigw-axum` asks for a [`Plan`] (the weighted attempt order)
//! and adds its upstream connections; `aigw-extproc`, where Envoy picks the backend,
//! asks for [`Planner::resolve`] and [`Planner::target`] by per-rule backend name.

pub mod credentials;
pub mod reload;

pub use credentials::{CredentialResolver, ProviderCache, ProviderSet};
pub use reload::{Baseline, Fingerprint, Reloader};

use crate::config::{Config, SecretSource};
use crate::cost::CostSet;
use crate::exchange::{self, BodyMutation, ExchangeRecord, Plan, Target, UpstreamAddr};
use crate::health::{HostHealth, RuleHealth};
use crate::limits::{RateLimitMeter, RateLimits};
use crate::routing::{self, Candidate, ModelInfo};
use crate::{ApiSchema, Error, HeaderMutation, Result};
use http::{HeaderMap, HeaderName, HeaderValue};
use std::collections::HashMap;

/// The planner's maps by backend or route name, looked up on every request: foldhash
/// with a per-process seed, where SipHash cost ≈ 250 instructions a lookup. Their keys
/// come from the configuration, not from clients.
type ByName<V> = HashMap<String, V, foldhash::fast::RandomState>;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

/// A routed request before any backend is picked (what an adapter that leaves the pick
/// to someone else needs).
#[derive(Debug, Clone)]
pub struct RouteInfo {
    /// The route (`namespace/name`).
    pub route: Arc<str>,
    /// The backend tried first (highest priority).
    pub first: Option<Arc<Target>>,
    /// The route's `llmRequestCosts`, when it has any.
    pub costs: Option<Arc<CostSet>>,
}

/// What one build reads besides the configuration.
#[derive(Clone, Copy)]
pub struct Inputs<'a> {
    /// Where secret references resolve (loaded Secrets, a directory, the environment).
    pub secrets: &'a SecretSource,
    /// BackendSecurityPolicy → credential provider.
    pub credentials: &'a CredentialResolver,
    /// Providers of the previous generation, reused for unchanged policies.
    pub providers: Option<&'a ProviderCache>,
    /// The rate-limit counters the meter counts in.
    pub limits: &'a RateLimits,
}

impl std::fmt::Debug for Inputs<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Inputs").finish_non_exhaustive()
    }
}

/// One compiled configuration generation.
pub struct Planner {
    routing: routing::Snapshot,
    targets: ByName<Arc<Target>>,
    /// Per-rule backend name → its health, for rules whose BackendTrafficPolicy has
    /// passive or active health checks.
    health: ByName<HostHealth>,
    costs: ByName<Arc<CostSet>>,
    /// Costs of routes the configuration does not list (global costs only).
    default_costs: Option<Arc<CostSet>>,
    meter: Option<Arc<RateLimitMeter>>,
    counter: AtomicU64,
}

impl std::fmt::Debug for Planner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Planner")
            .field("targets", &self.targets.len())
            .field("costs", &self.costs.len())
            .field("rate_limited", &self.meter.is_some())
            .finish_non_exhaustive()
    }
}

impl Planner {
    /// Compiles `config`: routing, the rate-limit meter (first, so a selector it cannot
    /// apply rejects the configuration before any credential provider is built), then
    /// every backend's target with its provider. Any failure fails the whole build (see
    /// [`credentials`] for the credential-failure policy); the providers cache takes
    /// this build's providers only when it succeeds.
    pub fn compile(config: &Config, inputs: Inputs<'_>) -> Result<Self> {
        let routing = routing::Snapshot::compile_with_secrets(config, inputs.secrets)?;
        let meter = inputs.limits.meter(config)?;
        let providers = ProviderSet::new(Some(config), inputs.credentials, inputs.providers);
        Self::build(routing, meter, providers, None)
    }

    /// Builds a generation from a configuration resolved elsewhere (upstream's filter
    /// configuration, [`crate::filterapi`]): the same targets, providers and costs as
    /// [`Planner::compile`], over a snapshot without matchers (Envoy routes). No rate
    /// limits: that data plane meters through Envoy's rate-limit filter.
    pub fn assemble(mut config: routing::Assembled, inputs: Inputs<'_>) -> Result<Self> {
        let default_costs = std::mem::take(&mut config.default_costs);
        let routing = routing::Snapshot::assemble(config);
        let providers = ProviderSet::new(None, inputs.credentials, inputs.providers);
        let default_costs = (!default_costs.is_empty()).then(|| Arc::new(default_costs));
        Self::build(routing, None, providers, default_costs)
    }

    fn build(
        routing: routing::Snapshot,
        meter: Option<Arc<RateLimitMeter>>,
        mut providers: ProviderSet<'_>,
        default_costs: Option<Arc<CostSet>>,
    ) -> Result<Self> {
        let mut targets = ByName::default();
        let mut costs = ByName::default();
        let mut health = ByName::default();
        for (route, set) in routing.route_costs() {
            if !set.is_empty() {
                costs.insert(route.to_owned(), set.clone());
            }
        }
        for rule in routing.rules() {
            add_health(&rule, &mut health);
            for c in rule.groups.iter().flat_map(|g| &g.candidates) {
                if targets.contains_key(&c.backend_name) {
                    continue;
                }
                let credential = c
                    .target
                    .security_policy
                    .as_deref()
                    .map(|p| providers.get(p))
                    .transpose()?;
                targets.insert(c.backend_name.clone(), Arc::new(target_for(c, credential)?));
            }
        }
        if providers.reused() > 0 {
            tracing::debug!(
                reused = providers.reused(),
                "credential providers kept from the previous configuration"
            );
        }
        providers.commit();
        Ok(Self {
            routing,
            targets,
            health,
            costs,
            default_costs,
            meter,
            counter: AtomicU64::new(0x2545_f491_4f6c_dd1d),
        })
    }

    /// The compiled routing snapshot.
    pub const fn routing(&self) -> &routing::Snapshot {
        &self.routing
    }

    /// The route for `model` (already in `headers` as `x-ai-eg-model`) with its backends
    /// in attempt order: priority groups in order, a weighted pick within each.
    pub fn plan(&self, model: &str, headers: &HeaderMap) -> Result<Plan> {
        let m = self.routing.route(model, headers)?;
        let order = m.attempt_order(next_random(&self.counter));
        let available = |c: &&Candidate| {
            self.health
                .get(&c.backend_name)
                .is_none_or(HostHealth::is_available)
        };
        // Ejected or unhealthy backends are skipped, so the next one in the order (the
        // next priority, when it was the last of its own) is tried first. With every
        // backend down they are all tried anyway, as Envoy's panic mode does.
        let healthy = self.health.is_empty() || order.iter().all(available);
        let usable = healthy || !order.iter().any(available);
        let targets: Vec<Target> = order
            .into_iter()
            .filter(|c| usable || available(c))
            .filter_map(|c| self.targets.get(&c.backend_name))
            .map(|t| Target::clone(t))
            .collect();
        if targets.is_empty() {
            return Err(Error::NoRoute {
                model: model.to_owned(),
            });
        }
        let retry = m.traffic.and_then(|t| t.retry.as_ref());
        Ok(Plan {
            route: Arc::from(m.route_name),
            targets,
            stream_idle_timeout: m.timeouts.stream_idle,
            request_timeout: m
                .timeouts
                .request
                .or_else(|| m.traffic.and_then(|t| t.timeouts.request)),
            per_try_timeout: m
                .timeouts
                .backend_request
                .or_else(|| retry.and_then(|r| r.per_retry_timeout)),
            costs: self.costs.get(m.route_name).cloned(),
            max_attempts: retry.map(|r| r.num_retries.saturating_add(1)),
            backoff: retry.and_then(|r| r.backoff_base),
            retry_on: retry.map(|r| r.retry_on.clone()),
        })
    }

    /// Where a request on the stored response `id` goes when a passthrough backend
    /// holds it: the backend that produced it ([`crate::owners`]), else the only
    /// backend that passes the Responses API through (OpenAI without the
    /// `aigw.run/responses: translate` annotation, Azure OpenAI), if there is exactly
    /// one. Returns the plan (that one target, on its route) and the model for records.
    pub fn plan_stored_response(&self, id: &str) -> Option<(Plan, String)> {
        let (target, model) = match crate::owners::owner(id) {
            Some(o) => (self.targets.get(o.backend.as_ref())?.clone(), o.model),
            None => {
                let mut capable = self.targets.values().filter(|t| {
                    matches!(t.schema.name, ApiSchema::AzureOpenAI)
                        || (t.schema.name == ApiSchema::OpenAI && !t.schema.responses_over_chat)
                });
                let first = capable.next()?.clone();
                let same_backend =
                    |t: &&Arc<Target>| t.upstream == first.upstream && t.schema == first.schema;
                if !capable.all(|t| same_backend(&t)) {
                    return None;
                }
                let model = first.model_override.as_deref().unwrap_or("-").to_owned();
                (first, model)
            }
        };
        // Per-rule names are `{backend ns}/{backend}/route/{route}/rule/{i}/ref/{j}`,
        // and a rule's backends live in the route's namespace.
        let ns = target.backend.split('/').next().unwrap_or_default();
        let route = target
            .backend
            .split_once("/route/")
            .and_then(|(_, r)| r.rsplit_once("/rule/"))
            .map_or_else(String::new, |(r, _)| format!("{ns}/{r}"));
        let plan = Plan {
            costs: self.costs.get(&route).cloned(),
            route: Arc::from(route),
            targets: vec![Target::clone(&target)],
            stream_idle_timeout: None,
            request_timeout: None,
            per_try_timeout: None,
            max_attempts: None,
            backoff: None,
            retry_on: None,
        };
        Some((plan, model))
    }

    /// The health of a per-rule backend, when its rule's BackendTrafficPolicy has
    /// health checks: adapters report attempt outcomes and run active checks into it.
    pub fn health(&self, backend_name: &str) -> Option<&HostHealth> {
        self.health.get(backend_name)
    }

    /// Every per-rule backend with health state.
    pub fn health_states(&self) -> impl Iterator<Item = (&str, &HostHealth)> {
        self.health.iter().map(|(k, v)| (k.as_str(), v))
    }

    /// The route for `model`, its first backend and its costs, without a pick.
    pub fn resolve(&self, model: &str, headers: &HeaderMap) -> Result<RouteInfo> {
        let m = self.routing.route(model, headers)?;
        let Some(first) = m.groups.iter().find_map(|g| g.candidates.first()) else {
            return Err(Error::NoRoute {
                model: model.to_owned(),
            });
        };
        Ok(RouteInfo {
            route: Arc::from(m.route_name),
            first: self.targets.get(&first.backend_name).cloned(),
            costs: self.costs.get(m.route_name).cloned(),
        })
    }

    /// The target of a per-rule backend name
    /// (`{ns}/{name}/route/{route}/rule/{i}/ref/{j}`).
    pub fn target(&self, backend_name: &str) -> Option<&Arc<Target>> {
        self.targets.get(backend_name)
    }

    /// Every per-rule backend name with its target.
    pub fn targets(&self) -> impl Iterator<Item = (&str, &Arc<Target>)> {
        self.targets.iter().map(|(k, v)| (k.as_str(), v))
    }

    /// The `llmRequestCosts` of `route` (with the global ones), when it has any.
    pub fn route_costs(&self, route: &str) -> Option<&Arc<CostSet>> {
        self.costs.get(route).or(self.default_costs.as_ref())
    }

    /// Whether any cost is configured anywhere.
    pub fn has_costs(&self) -> bool {
        !self.costs.is_empty() || self.default_costs.is_some()
    }

    /// The cost values of a finished exchange on its route.
    pub fn costs(&self, record: &ExchangeRecord) -> Vec<(String, u64)> {
        record
            .route
            .as_deref()
            .and_then(|r| self.route_costs(r))
            .map(|set| exchange::evaluate_costs(set, record))
            .unwrap_or_default()
    }

    /// The rate-limit meter, when any route has rate limits.
    pub fn meter(&self) -> Option<&Arc<RateLimitMeter>> {
        self.meter.as_ref()
    }

    /// The largest request body accepted (ClientTrafficPolicy `bufferLimit`), if any.
    pub fn body_limit(&self) -> Option<u64> {
        self.routing.body_limit()
    }

    /// Models served on `host` (every host when `None`).
    pub fn models(&self, host: Option<&str>) -> Vec<&ModelInfo> {
        self.routing.models(host)
    }
}

/// Health state for a rule's backends, when its policy checks them.
fn add_health(rule: &routing::RouteMatch<'_>, health: &mut ByName<HostHealth>) {
    let Some(t) = rule.traffic else {
        return;
    };
    if t.passive_health.is_none() && t.active_health.is_none() {
        return;
    }
    let hosts: Vec<&Candidate> = rule.groups.iter().flat_map(|g| &g.candidates).collect();
    let state = RuleHealth::new(
        hosts.len(),
        t.passive_health.clone(),
        t.active_health.clone(),
    );
    for (i, c) in hosts.into_iter().enumerate() {
        health.insert(c.backend_name.clone(), HostHealth::new(state.clone(), i));
    }
}

/// What outlives a configuration generation: the credential resolver, the providers of
/// unchanged policies and the rate-limit counters. Hold one per process and build
/// every generation — the first and each reload — with it.
pub struct Loader {
    credentials: CredentialResolver,
    providers: ProviderCache,
    limits: Arc<RateLimits>,
    secrets_dir: Option<PathBuf>,
    env_fallback: bool,
}

impl std::fmt::Debug for Loader {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Loader")
            .field("providers", &self.providers)
            .field("limits", &self.limits)
            .field("secrets_dir", &self.secrets_dir)
            .finish_non_exhaustive()
    }
}

impl Loader {
    /// A loader building providers with `credentials` and counting rate limits in
    /// process.
    pub fn new(credentials: CredentialResolver) -> Self {
        Self {
            credentials,
            providers: ProviderCache::default(),
            limits: Arc::new(RateLimits::default()),
            secrets_dir: None,
            env_fallback: false,
        }
    }

    /// Counts rate limits in `limits` (e.g. with a Redis store for `Global` policies).
    #[must_use]
    pub fn with_limits(mut self, limits: Arc<RateLimits>) -> Self {
        self.limits = limits;
        self
    }

    /// Also resolves secret references from files under `dir` (`<ns>/<name>/<key>`).
    #[must_use]
    pub fn with_secrets_dir(mut self, dir: impl Into<PathBuf>) -> Self {
        self.secrets_dir = Some(dir.into());
        self
    }

    /// Also resolves secret references from the environment.
    #[must_use]
    pub const fn with_env_fallback(mut self) -> Self {
        self.env_fallback = true;
        self
    }

    /// The rate-limit counters.
    pub const fn limits(&self) -> &Arc<RateLimits> {
        &self.limits
    }

    /// Where secret references resolve for `config`.
    pub fn secrets(&self, config: &Config) -> SecretSource {
        let mut s = SecretSource::from_config(config);
        if self.env_fallback {
            s = s.with_env_fallback();
        }
        if let Some(dir) = &self.secrets_dir {
            s = s.with_dir(dir.clone());
        }
        s
    }

    /// Builds the generation for a loaded configuration.
    pub fn compile(&self, config: &Config) -> Result<Planner> {
        Planner::compile(
            config,
            Inputs {
                secrets: &self.secrets(config),
                credentials: &self.credentials,
                providers: Some(&self.providers),
                limits: &self.limits,
            },
        )
    }

    /// Loads, validates and builds the configuration in `paths` (files or directories).
    pub fn load(&self, paths: &[impl AsRef<Path>]) -> Result<(Config, Planner)> {
        let config = Config::load_paths(paths)?;
        let planner = self.compile(&config)?;
        Ok((config, planner))
    }
}

fn target_for(
    c: &Candidate,
    credential: Option<Arc<dyn crate::CredentialProvider>>,
) -> Result<Target> {
    // A pool's endpoint is named per request by its picker; until then the target
    // carries a placeholder the adapters replace. Without endpoints (a configuration
    // whose endpoints Envoy holds) the authority is left empty: the data plane sends
    // to whichever host Envoy picked.
    let authority = match (&c.target.inference_pool, c.target.endpoints.first()) {
        (_, Some(endpoint)) => endpoint.authority(),
        (Some(pool), None) => pool.placeholder_authority(),
        (None, None) => String::new(),
    };
    let mut headers = HeaderMutation::default();
    for (name, value) in &c.header_mutation.set {
        let n = HeaderName::try_from(name.as_str())
            .map_err(|_| Error::internal(format!("invalid header name {name:?}")))?;
        let v = HeaderValue::try_from(value.as_str())
            .map_err(|_| Error::internal(format!("invalid value for header {name:?}")))?;
        headers.set(n, v);
    }
    for name in &c.header_mutation.remove {
        let n = HeaderName::try_from(name.as_str())
            .map_err(|_| Error::internal(format!("invalid header name {name:?}")))?;
        headers.remove(n);
    }
    Ok(Target {
        backend: Arc::from(c.backend_name.as_str()),
        schema: c.target.schema.clone(),
        upstream: UpstreamAddr {
            scheme: c.target.scheme().into(),
            authority: authority.into(),
        },
        model_override: c.model_name_override.as_deref().map(Arc::from),
        headers,
        body: BodyMutation {
            set: c.body_mutation.set.clone(),
            remove: c.body_mutation.remove.clone(),
        },
        credential,
        priority: c.priority,
    })
}

/// A cheap per-request random number for weighted picks (no cryptographic need).
fn next_random(counter: &AtomicU64) -> u64 {
    let mut x = counter.fetch_add(0x9E37_79B9_7F4A_7C15, Ordering::Relaxed);
    x = (x ^ (x >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    x ^ (x >> 31)
}
