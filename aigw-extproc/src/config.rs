//! The processor over a loaded configuration: a [`Catalog`] backed by the compiled
//! routing snapshot, the Envoy [`Plan`] derived from the same YAML, and the mapping
//! from BackendSecurityPolicies to credential providers.

use crate::credentials::{self, MetadataCredential, ProviderCache, ProviderSet};
use crate::envoy::{ClusterPlan, EndpointPlan, HeaderMatch, Plan, RetryPlan, RoutePlan};
use crate::runtime::{Catalog, RouteInfo, Runtime};
use aigw_auth::AuthOptions;
use aigw_core::config::{Config, HeaderMatchType};
use aigw_core::cost::{CostInput, CostSet};
use aigw_core::exchange::{BodyMutation, ExchangeRecord, Target, UpstreamAddr};
use aigw_core::limits::RateLimits;
use aigw_core::routing::{self, Candidate, Endpoint as RoutingEndpoint};
use aigw_core::{Error, HeaderMutation, Result};
use http::{HeaderMap, HeaderName, HeaderValue};
use std::collections::HashMap;
use std::path::Path;
use std::sync::Arc;

fn header_mutation(c: &Candidate) -> Result<HeaderMutation> {
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
    Ok(headers)
}

/// A [`Catalog`] over a compiled configuration. Every per-rule backend is resolved
/// once, at load: the request path only does map lookups.
pub struct ConfigCatalog {
    snapshot: routing::Snapshot,
    targets: HashMap<String, Arc<Target>>,
    metadata_credentials: HashMap<String, MetadataCredential>,
    costs: HashMap<String, Arc<CostSet>>,
}

impl std::fmt::Debug for ConfigCatalog {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ConfigCatalog")
            .field("targets", &self.targets.len())
            .finish_non_exhaustive()
    }
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
        let snapshot = routing::Snapshot::compile(config)?;
        let mut providers = ProviderSet::new(config, auth, cache);
        let mut targets = HashMap::new();
        let mut metadata_credentials = HashMap::new();
        let mut costs = HashMap::new();
        for rule in snapshot.rules() {
            if !rule.costs.is_empty() {
                costs.insert(rule.route_name.to_owned(), Arc::new(rule.costs.clone()));
            }
            for c in rule.groups.iter().flat_map(|g| &g.candidates) {
                let credential = match c.target.security_policy.as_deref() {
                    Some(p) => Some(providers.get(p)?),
                    None => None,
                };
                if let Some(md) = c
                    .target
                    .security_policy
                    .as_deref()
                    .and_then(credentials::metadata_source)
                {
                    metadata_credentials.insert(c.backend_name.clone(), md);
                }
                let endpoint = c.target.endpoints.first().ok_or_else(|| {
                    Error::internal(format!("backend {} has no endpoint", c.target.backend))
                })?;
                targets.insert(
                    c.backend_name.clone(),
                    Arc::new(Target {
                        backend: Arc::from(c.backend_name.as_str()),
                        schema: c.target.schema.clone(),
                        upstream: UpstreamAddr {
                            scheme: c.target.scheme().to_owned(),
                            authority: endpoint.authority(),
                        },
                        model_override: c.model_name_override.as_deref().map(Arc::from),
                        headers: header_mutation(c)?,
                        body: BodyMutation {
                            set: c.body_mutation.set.clone(),
                            remove: c.body_mutation.remove.clone(),
                        },
                        credential,
                        priority: c.priority,
                    }),
                );
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
            snapshot,
            targets,
            metadata_credentials,
            costs,
        })
    }

    /// The compiled routing snapshot.
    pub const fn snapshot(&self) -> &routing::Snapshot {
        &self.snapshot
    }
}

impl Catalog for ConfigCatalog {
    fn route(&self, model: &str, headers: &HeaderMap) -> Result<Arc<str>> {
        let m = self.snapshot.route(model, headers)?;
        if m.groups.iter().all(|g| g.candidates.is_empty()) {
            return Err(Error::NoRoute {
                model: model.to_owned(),
            });
        }
        Ok(Arc::from(m.route_name))
    }

    fn resolve(&self, model: &str, headers: &HeaderMap) -> Result<RouteInfo> {
        let m = self.snapshot.route(model, headers)?;
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

    fn target(&self, backend_name: &str) -> Option<Arc<Target>> {
        self.targets.get(backend_name).cloned()
    }

    fn metadata_credential(&self, backend_name: &str) -> Option<&MetadataCredential> {
        self.metadata_credentials.get(backend_name)
    }

    fn costs(&self, r: &ExchangeRecord) -> Vec<(String, u64)> {
        let (Some(route), Some(backend)) = (r.route.as_deref(), r.backend.as_deref()) else {
            return Vec::new();
        };
        let Some(set) = self.costs.get(route) else {
            return Vec::new();
        };
        set.evaluate(&CostInput {
            model: r.effective_model.as_deref().unwrap_or(&r.request_model),
            backend,
            route_name: route,
            usage: &r.usage,
        })
    }

    fn wants_usage(&self, route: &str) -> bool {
        self.costs.contains_key(route)
    }

    fn body_limit(&self) -> Option<u64> {
        self.snapshot.body_limit()
    }

    fn models(&self, host: Option<&str>) -> Vec<(String, String)> {
        self.snapshot
            .models(host)
            .into_iter()
            .map(|m| (m.id.clone(), m.owned_by.clone()))
            .collect()
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
    // The meter first: a selector it cannot apply rejects the configuration before any
    // credential provider is built for it.
    let meter = limits.meter(config)?;
    let runtime = Runtime::new(
        Arc::new(ConfigCatalog::build(
            config,
            &AuthOptions::default(),
            cache,
        )?),
        Arc::new(aigw_providers::ProviderFactory),
    );
    Ok(match meter {
        Some(m) => runtime.with_meter(m),
        None => runtime,
    })
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
                    });
                }
            }
            if endpoints.is_empty() {
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
            plan.clusters.push(ClusterPlan {
                name: cluster.clone(),
                endpoints,
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
        Ok(plan)
    }
}
