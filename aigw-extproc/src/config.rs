//! The processor over a loaded configuration: a [`Catalog`] over the shared
//! [`Planner`], the Envoy [`Plan`] derived from the same YAML, and the ExtProc's
//! credential resolver.

use crate::credentials::{self, MetadataCredential};
use crate::envoy::{
    ClusterPlan, EndpointPlan, HeaderMatch, Plan, PoolPlan, Protection, RetryPlan, RoutePlan,
};
use crate::runtime::{Catalog, RouteInfo, Runtime};
use aigw_auth::AuthOptions;
use aigw_core::Result;
use aigw_core::config::{
    Config, HeaderMatchType, ResolvedSecurityPolicy, SecretSource, SecurityPolicyKind,
};
use aigw_core::exchange::{ExchangeRecord, Target};
use aigw_core::filterapi::{self, FilterConfig};
use aigw_core::limits::RateLimits;
use aigw_core::planner::{CredentialResolver, Inputs, Planner, ProviderCache};
use aigw_core::routing::{self, Endpoint as RoutingEndpoint};
use http::HeaderMap;
use std::collections::HashMap;
use std::path::Path;
use std::sync::Arc;

/// A [`Catalog`] over the shared [`Planner`]: Envoy routes and retries, so the
/// ExtProc narrows the planner to lookups by route and per-rule backend name, and adds
/// the one thing only it serves, credentials read from Envoy's dynamic metadata.
pub struct ConfigCatalog {
    planner: Arc<Planner>,
    metadata_credentials: HashMap<String, MetadataCredential>,
    /// AWS backends without an endpoint: their default Bedrock host.
    signing_hosts: HashMap<String, String>,
    /// Whether Envoy's routes are the only routing (upstream's filter configuration
    /// carries no matches): the router-level filter then neither answers 404 nor
    /// knows the route until the upstream filter reports it.
    envoy_routed: bool,
}

impl std::fmt::Debug for ConfigCatalog {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ConfigCatalog")
            .field("planner", &self.planner)
            .finish_non_exhaustive()
    }
}

/// The ExtProc's credential resolver: aigw-auth's for every policy type, with the
/// `fromDynamicMetadata` override wired to the internal staging headers.
pub fn resolver(auth: AuthOptions) -> CredentialResolver {
    Arc::new(move |policy: &ResolvedSecurityPolicy| credentials::provider_for(policy, &auth))
}

impl ConfigCatalog {
    /// Compiles `config`. A backend whose credentials cannot be served fails the load,
    /// so a bad reload keeps the previous configuration.
    pub fn new(config: &Config) -> Result<Self> {
        Self::with_auth(config, &AuthOptions::default())
    }

    /// Compiles `config`, building each security policy's provider once with `auth`
    /// (rotation state then lives as long as this configuration).
    pub fn with_auth(config: &Config, auth: &AuthOptions) -> Result<Self> {
        Self::build(config, auth, None)
    }

    /// Compiles `config`, taking unchanged policies' providers from `cache` (and leaving
    /// this load's providers there when it succeeds).
    pub fn build(
        config: &Config,
        auth: &AuthOptions,
        cache: Option<&ProviderCache>,
    ) -> Result<Self> {
        let planner = Planner::compile(
            config,
            Inputs {
                secrets: &SecretSource::from_config(config),
                credentials: &resolver(auth.clone()),
                providers: cache,
                limits: &RateLimits::default(),
            },
        )?;
        Ok(Self::from_planner(Arc::new(planner)))
    }

    /// Narrows a compiled [`Planner`].
    pub fn from_planner(planner: Arc<Planner>) -> Self {
        let (mut metadata_credentials, mut signing_hosts) = (HashMap::new(), HashMap::new());
        for rule in planner.routing().rules() {
            for c in rule.groups.iter().flat_map(|g| &g.candidates) {
                if let Some(md) = c
                    .target
                    .security_policy
                    .as_deref()
                    .and_then(credentials::metadata_source)
                {
                    metadata_credentials.insert(c.backend_name.clone(), md);
                }
                if let Some(SecurityPolicyKind::AWSCredentials { region, .. }) =
                    c.target.security_policy.as_deref().map(|p| &p.kind)
                    && c.target.endpoints.is_empty()
                {
                    signing_hosts.insert(
                        c.backend_name.clone(),
                        format!("bedrock-runtime.{region}.amazonaws.com"),
                    );
                }
            }
        }
        Self {
            planner,
            metadata_credentials,
            signing_hosts,
            envoy_routed: false,
        }
    }

    /// A catalog over a planner of upstream's filter configuration: routing is
    /// entirely Envoy's.
    pub fn envoy_routed(planner: Arc<Planner>) -> Self {
        Self {
            envoy_routed: true,
            ..Self::from_planner(planner)
        }
    }

    /// The compiled routing snapshot.
    pub fn snapshot(&self) -> &routing::Snapshot {
        self.planner.routing()
    }
}

impl Catalog for ConfigCatalog {
    fn route(&self, model: &str, headers: &HeaderMap) -> Result<Arc<str>> {
        self.resolve(model, headers).map(|r| r.route)
    }

    fn resolve(&self, model: &str, headers: &HeaderMap) -> Result<RouteInfo> {
        if self.envoy_routed {
            return Ok(RouteInfo {
                route: Arc::from(""),
                first: None,
                costs: None,
            });
        }
        self.planner.resolve(model, headers)
    }

    fn route_costs(&self, route: &str) -> Option<Arc<aigw_core::cost::CostSet>> {
        self.planner.route_costs(route).cloned()
    }

    fn target(&self, backend_name: &str) -> Option<Arc<Target>> {
        self.planner.target(backend_name).cloned()
    }

    fn metadata_credential(&self, backend_name: &str) -> Option<&MetadataCredential> {
        self.metadata_credentials.get(backend_name)
    }

    fn default_signing_host(&self, backend_name: &str) -> Option<&str> {
        self.signing_hosts.get(backend_name).map(String::as_str)
    }

    fn costs(&self, r: &ExchangeRecord) -> Vec<(String, u64)> {
        self.planner.costs(r)
    }

    fn wants_usage(&self, route: &str) -> bool {
        if self.envoy_routed {
            // Upstream forces usage on streams whenever any cost is configured.
            return self.planner.has_costs();
        }
        self.planner.route_costs(route).is_some()
    }

    fn body_limit(&self) -> Option<u64> {
        self.planner.body_limit()
    }

    fn plan_stored_response(&self, id: &str) -> Option<(aigw_core::exchange::Plan, String)> {
        self.planner.plan_stored_response(id)
    }

    fn models(&self, host: Option<&str>) -> Vec<aigw_core::routing::ModelInfo> {
        self.planner.models(host).into_iter().cloned().collect()
    }
}

/// Loads the YAML files and builds a runtime with the bundled translators. Rate limits
/// count in counters of this runtime's own: use [`load_runtime_with_limits`] to keep
/// them across reloads or share them through Redis.
pub fn load_runtime(paths: &[impl AsRef<Path>]) -> Result<Runtime> {
    load_runtime_cached(paths, None)
}

/// As [`load_runtime`], keeping unchanged policies' providers in `cache` across loads.
pub fn load_runtime_cached(
    paths: &[impl AsRef<Path>],
    cache: Option<&ProviderCache>,
) -> Result<Runtime> {
    load_runtime_with_limits(paths, cache, &RateLimits::default())
}

/// As [`load_runtime_cached`], enforcing the BackendTrafficPolicy rate limits with the
/// counters of `limits` (hold one for the life of the process, so a reload keeps the
/// budgets already spent).
pub fn load_runtime_with_limits(
    paths: &[impl AsRef<Path>],
    cache: Option<&ProviderCache>,
    limits: &RateLimits,
) -> Result<Runtime> {
    let config = Config::load_paths(paths)?;
    runtime_for(&config, cache, limits)
}

/// Builds a runtime for a loaded configuration: the catalog, the bundled translators
/// and, when any route has rate limits, a [`aigw_core::limits::RateLimitMeter`] over
/// the counters of `limits`.
pub fn runtime_for(
    config: &Config,
    cache: Option<&ProviderCache>,
    limits: &RateLimits,
) -> Result<Runtime> {
    let planner = Planner::compile(
        config,
        Inputs {
            secrets: &SecretSource::from_config(config),
            credentials: &resolver(AuthOptions::default()),
            providers: cache,
            limits,
        },
    )?;
    Ok(runtime_from(Arc::new(planner)))
}

/// The runtime of a compiled [`Planner`]: its catalog, the bundled translators and its
/// rate-limit meter, if any.
pub fn runtime_from(planner: Arc<Planner>) -> Runtime {
    let meter = planner.meter().cloned();
    let runtime = Runtime::new(
        Arc::new(ConfigCatalog::from_planner(planner)),
        Arc::new(aigw_providers::ProviderFactory),
    );
    match meter {
        Some(m) => runtime.with_meter(m),
        None => runtime,
    }
}

/// Builds a runtime for upstream's filter configuration: the same planner (targets,
/// credential providers, costs) over Envoy's routing, the bundled translators, no
/// rate-limit meter (upstream meters through Envoy's rate-limit filter, fed by the
/// cost metadata).
pub fn filter_runtime(config: &FilterConfig, cache: Option<&ProviderCache>) -> Result<Runtime> {
    let planner = config.planner(Inputs {
        secrets: &SecretSource::default(),
        credentials: &resolver(AuthOptions::default()),
        providers: cache,
        limits: &RateLimits::default(),
    })?;
    Ok(Runtime::new(
        Arc::new(ConfigCatalog::envoy_routed(Arc::new(planner))),
        Arc::new(aigw_providers::ProviderFactory),
    ))
}

/// Reads, version-checks and builds a filter configuration, logging what it carries
/// but this build does not serve.
pub fn load_filter_runtime(
    source: &filterapi::Source,
    versions: &filterapi::VersionPolicy,
    cache: Option<&ProviderCache>,
) -> Result<Runtime> {
    let loaded = filterapi::load(source, versions)?;
    for w in &loaded.warnings {
        tracing::warn!(config = ?source, "{w}");
    }
    let runtime = filter_runtime(&loaded.config, cache)?;
    tracing::info!(
        uuid = %loaded.config.uuid,
        version = %loaded.config.version,
        backends = loaded.config.backends.len(),
        "filter configuration loaded"
    );
    Ok(runtime)
}

/// The bootstrap's view of an InferencePool, with the annotations upstream reads off
/// the pool object.
fn pool_plan(config: &Config, pool: &routing::InferencePoolTarget, backend_name: &str) -> PoolPlan {
    let annotation = |k: &str| {
        config
            .inference_pools
            .iter()
            .find(|p| p.key() == pool.name)
            .and_then(|p| p.metadata.annotations.get(k).cloned())
    };
    let (namespace, name) = pool
        .name
        .split_once('/')
        .unwrap_or((pool.namespace.as_str(), pool.name.as_str()));
    PoolPlan {
        namespace: namespace.to_owned(),
        name: name.to_owned(),
        backend_name: backend_name.to_owned(),
        picker_authority: pool.picker_authority(),
        fail_open: pool.failure_mode == routing::PickerFailureMode::FailOpen,
        buffered: annotation("aigateway.envoyproxy.io/processing-body-mode").as_deref()
            == Some("buffered"),
        allow_mode_override: annotation("aigateway.envoyproxy.io/allow-mode-override").as_deref()
            == Some("true"),
    }
}

impl Plan {
    /// Derives routes and clusters from a configuration: one cluster per rule
    /// (`httproute/{ns}/{route}/rule/{i}`) holding every backendRef's endpoints at its
    /// priority and weight; one route per rule match, most specific first, as the
    /// gateway's own matcher orders them.
    pub fn from_config(config: &Config) -> Result<Self> {
        let snapshot = routing::Snapshot::compile(config)?;
        let mut plan = Self::default();
        let mut routes: Vec<(usize, RoutePlan)> = Vec::new();
        for rule in snapshot.rules() {
            let (ns, name) = rule
                .route_name
                .split_once('/')
                .unwrap_or(("default", rule.route_name));
            let cluster = format!("httproute/{ns}/{name}/rule/{}", rule.rule_index);
            let mut endpoints = Vec::new();
            let mut pool = None;
            for c in rule.groups.iter().flat_map(|g| &g.candidates) {
                if let Some(md) = c
                    .target
                    .security_policy
                    .as_deref()
                    .and_then(credentials::metadata_source)
                    && !plan.metadata_namespaces.contains(&md.namespace)
                {
                    plan.metadata_namespaces.push(md.namespace);
                }
                if let Some(p) = &c.target.inference_pool {
                    // A rule holds one pool and nothing else (the loader checks).
                    pool.get_or_insert_with(|| pool_plan(config, p, &c.backend_name));
                    continue;
                }
                let sni = c.target.tls.as_ref().map(|t| t.sni.clone());
                for e in &c.target.endpoints {
                    let (host, port) = match e {
                        RoutingEndpoint::Fqdn { hostname, port } => (hostname.clone(), *port),
                        RoutingEndpoint::Ip { address, port } => (address.clone(), *port),
                        RoutingEndpoint::Unix { .. } => continue,
                    };
                    endpoints.push(EndpointPlan {
                        host,
                        port,
                        priority: c.priority,
                        weight: c.weight,
                        backend_name: c.backend_name.clone(),
                        tls_sni: sni.clone(),
                        http2: c.target.http2_prior_knowledge,
                    });
                }
            }
            if endpoints.is_empty() && pool.is_none() {
                continue;
            }
            let policy_retry = rule.traffic.and_then(|t| t.retry.as_ref());
            // A policy's `numRetries` as written; else enough to visit every endpoint
            // once (fallback across priorities).
            let retries = policy_retry.map_or_else(
                || u32::try_from(endpoints.len().saturating_sub(1)).unwrap_or(u32::MAX),
                |r| r.num_retries,
            );
            let retry = policy_retry.map(|r| {
                let backoff = r
                    .backoff_base
                    .map(|base| (base, r.backoff_max.unwrap_or(base.saturating_mul(10))));
                RetryPlan {
                    retry_on: r.retry_on.envoy_retry_on(),
                    status_codes: r.retry_on.status_codes().to_vec(),
                    backoff,
                }
            });
            let per_try_timeout = rule
                .timeouts
                .backend_request
                .or_else(|| policy_retry.and_then(|r| r.per_retry_timeout));
            let protection = rule
                .traffic
                .map(|t| Protection {
                    connect_timeout: t.timeouts.connect,
                    idle_timeout: t.timeouts.connection_idle,
                    circuit: t.circuit_breaker,
                    passive: t.passive_health.clone(),
                    active: t.active_health.clone(),
                })
                .unwrap_or_default();
            plan.clusters.push(ClusterPlan {
                name: cluster.clone(),
                endpoints,
                protection,
                pool,
            });
            let route = config
                .ai_gateway_routes
                .iter()
                .find(|r| r.key() == rule.route_name);
            let hostnames: Vec<String> = route
                .map(|r| {
                    r.spec
                        .hostnames
                        .iter()
                        .map(|h| h.to_ascii_lowercase())
                        .collect()
                })
                .unwrap_or_default();
            let source = route.and_then(|r| r.spec.rules.get(rule.rule_index));
            let matches: Vec<Vec<HeaderMatch>> = match source {
                Some(r) if !r.matches.is_empty() => r
                    .matches
                    .iter()
                    .map(|m| {
                        m.headers
                            .iter()
                            .map(|h| {
                                let name = h.name.to_ascii_lowercase();
                                match h.match_type {
                                    HeaderMatchType::RegularExpression => HeaderMatch::Regex {
                                        name,
                                        regex: h.value.clone(),
                                    },
                                    _ => HeaderMatch::Exact {
                                        name,
                                        value: h.value.clone(),
                                    },
                                }
                            })
                            .collect()
                    })
                    .collect(),
                _ => vec![Vec::new()],
            };
            for headers in matches {
                routes.push((
                    headers.len(),
                    RoutePlan {
                        route: rule.route_name.to_owned(),
                        hostnames: hostnames.clone(),
                        headers,
                        cluster: cluster.clone(),
                        timeout: rule.timeouts.request,
                        per_try_timeout,
                        retries,
                        retry: retry.clone(),
                    },
                ));
            }
        }
        // Envoy takes the first match: put the most specific first (stable, so load
        // order breaks ties as in the gateway's matcher).
        routes.sort_by_key(|r| std::cmp::Reverse(r.0));
        plan.routes = routes.into_iter().map(|(_, r)| r).collect();
        for m in &config.mcp_routes {
            let path = m
                .spec
                .path
                .clone()
                .filter(|p| !p.is_empty())
                .unwrap_or_else(|| aigw_core::config::DEFAULT_MCP_PATH.into());
            if !plan.mcp_paths.contains(&path) {
                plan.mcp_paths.push(path);
            }
        }
        Ok(plan)
    }
}
