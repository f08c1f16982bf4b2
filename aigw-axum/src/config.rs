//! The gateway over a loaded configuration: [`ConfigPlanner`] turns the compiled
//! routing snapshot's matches into attempt plans with resolved credentials.

use crate::client::{ClientSettings, build_tls_client};
use crate::gateway::{BackendConnection, ModelEntry, RoutePlanner, Snapshot};
use aigw_core::api::Endpoint;
use aigw_core::config::{Config, ResolvedSecurityPolicy, SecretSource};
use aigw_core::cost::CostSet;
use aigw_core::exchange::{BodyMutation, Plan, Target, UpstreamAddr};
use aigw_core::limits::RateLimits;
use aigw_core::routing::{self, Candidate};
use aigw_core::{CredentialProvider, Error, HeaderMutation, Result, TranslatorFactory};
use arc_swap::ArcSwap;
use http::{HeaderMap, HeaderName, HeaderValue};
use std::collections::HashMap;
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

/// Turns a resolved BackendSecurityPolicy into a credential provider.
pub type CredentialResolver =
    Arc<dyn Fn(&ResolvedSecurityPolicy) -> Result<Arc<dyn CredentialProvider>> + Send + Sync>;

/// Routing over a compiled configuration.
///
/// Targets (with their credential providers) and route cost sets are built on first
/// use and cached in copy-on-write maps, so the request path reads them without locks;
/// one provider serves every backend of the same policy, so rotation state is shared.
pub struct ConfigPlanner {
    routing: routing::Snapshot,
    credentials: CredentialResolver,
    targets: ArcSwap<HashMap<String, Target>>,
    connections: ArcSwap<HashMap<String, Arc<BackendConnection>>>,
    costs: ArcSwap<HashMap<String, Option<Arc<CostSet>>>>,
    providers: Mutex<HashMap<String, Arc<dyn CredentialProvider>>>,
    counter: AtomicU64,
}

impl std::fmt::Debug for ConfigPlanner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ConfigPlanner")
            .field("targets", &self.targets.load().len())
            .finish_non_exhaustive()
    }
}

impl ConfigPlanner {
    /// Compiles `config`; backends with a security policy get their provider from
    /// `credentials` when first used.
    pub fn new(config: &Config, credentials: CredentialResolver) -> Result<Self> {
        Self::with_secrets(config, &SecretSource::from_config(config), credentials)
    }

    /// Like [`ConfigPlanner::new`], resolving secret references from `secrets` (loaded
    /// Secrets, a secrets directory, the environment).
    pub fn with_secrets(
        config: &Config,
        secrets: &SecretSource,
        credentials: CredentialResolver,
    ) -> Result<Self> {
        Ok(Self {
            routing: routing::Snapshot::compile_with_secrets(config, secrets)?,
            credentials,
            targets: ArcSwap::from_pointee(HashMap::new()),
            connections: ArcSwap::from_pointee(HashMap::new()),
            costs: ArcSwap::from_pointee(HashMap::new()),
            providers: Mutex::new(HashMap::new()),
            counter: AtomicU64::new(0x2545_f491_4f6c_dd1d),
        })
    }

    /// The compiled routing snapshot.
    pub const fn routing(&self) -> &routing::Snapshot {
        &self.routing
    }

    fn provider(&self, policy: &ResolvedSecurityPolicy) -> Result<Arc<dyn CredentialProvider>> {
        let mut providers = self
            .providers
            .lock()
            .map_err(|_| Error::internal("credential cache poisoned"))?;
        if let Some(p) = providers.get(&policy.name) {
            return Ok(p.clone());
        }
        let p = (self.credentials)(policy)?;
        providers.insert(policy.name.clone(), p.clone());
        Ok(p)
    }

    fn target(&self, c: &Candidate) -> Result<Target> {
        if let Some(t) = self.targets.load().get(&c.backend_name) {
            return Ok(t.clone());
        }
        let credential = c
            .target
            .security_policy
            .as_deref()
            .map(|p| self.provider(p))
            .transpose()?;
        let t = target_for(c, credential)?;
        let conn = Arc::new(connection_for(c));
        self.connections.rcu(|m| {
            let mut m = HashMap::clone(m);
            m.entry(c.backend_name.clone())
                .or_insert_with(|| conn.clone());
            m
        });
        self.targets.rcu(|m| {
            let mut m = HashMap::clone(m);
            m.insert(c.backend_name.clone(), t.clone());
            m
        });
        Ok(t)
    }

    fn costs(&self, route: &str, set: &CostSet) -> Option<Arc<CostSet>> {
        if let Some(c) = self.costs.load().get(route) {
            return c.clone();
        }
        let value = (!set.is_empty()).then(|| Arc::new(set.clone()));
        self.costs.rcu(|m| {
            let mut m = HashMap::clone(m);
            m.insert(route.to_owned(), value.clone());
            m
        });
        value
    }
}

/// Every endpoint, and a dedicated TLS client when the backend's policy needs its own
/// roots or a server name other than the dialled host.
fn connection_for(c: &Candidate) -> BackendConnection {
    let t = &c.target;
    let authorities = t
        .endpoints
        .iter()
        .filter(|e| !matches!(e, routing::Endpoint::Unix { .. }))
        .map(routing::Endpoint::authority)
        .collect();
    let mut conn = BackendConnection {
        authorities,
        ..BackendConnection::default()
    };
    if let Some(tls) = &t.tls {
        let first_host = t.endpoints.first().map(routing::Endpoint::host);
        if tls.roots != routing::TlsRoots::System || first_host != Some(tls.sni.as_str()) {
            match build_tls_client(&ClientSettings::default(), tls) {
                Ok(client) => conn.client = Some(client),
                Err(e) => {
                    tracing::error!(backend = %c.backend_name, error = %e, "backend TLS settings unusable");
                    conn.tls_error = Some(e.to_string());
                }
            }
        }
    }
    conn
}

fn target_for(c: &Candidate, credential: Option<Arc<dyn CredentialProvider>>) -> Result<Target> {
    let endpoint =
        c.target.endpoints.first().ok_or_else(|| {
            Error::internal(format!("backend {} has no endpoint", c.target.backend))
        })?;
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
            scheme: c.target.scheme().to_owned(),
            authority: endpoint.authority(),
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

impl RoutePlanner for ConfigPlanner {
    fn plan(&self, _endpoint: Endpoint, model: &str, headers: &HeaderMap) -> Result<Plan> {
        let m = self.routing.route(model, headers)?;
        let order = m.attempt_order(next_random(&self.counter));
        let targets = order
            .into_iter()
            .map(|c| self.target(c))
            .collect::<Result<Vec<_>>>()?;
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
            costs: self.costs(m.route_name, m.costs),
            max_attempts: retry.map(|r| r.num_retries.saturating_add(1)),
            backoff: retry.and_then(|r| r.backoff_base),
            retry_on: retry.map(|r| r.retry_on.clone()),
        })
    }

    fn connection(&self, backend: &str) -> Option<Arc<BackendConnection>> {
        self.connections.load().get(backend).cloned()
    }

    fn max_body_bytes(&self) -> Option<usize> {
        self.routing
            .body_limit()
            .and_then(|l| usize::try_from(l).ok())
    }

    fn models(&self) -> Vec<ModelEntry> {
        self.routing
            .models(None)
            .into_iter()
            .map(|m| ModelEntry {
                id: m.id.clone(),
                owned_by: m.owned_by.clone(),
                created: i64::try_from(m.created).unwrap_or(0),
            })
            .collect()
    }
}

/// Loads configuration files or directories and validates them.
pub fn load(paths: &[impl AsRef<Path>]) -> Result<Config> {
    Config::load_paths(paths)
}

/// Builds a gateway snapshot from a configuration.
pub fn snapshot(
    config: &Config,
    factory: Arc<dyn TranslatorFactory>,
    credentials: &CredentialResolver,
) -> Result<Snapshot> {
    let planner = ConfigPlanner::new(config, credentials.clone())?;
    Ok(Snapshot::new(Arc::new(planner), factory))
}

/// Builds a gateway snapshot, resolving secret references from `secrets`.
pub fn snapshot_with_secrets(
    config: &Config,
    secrets: &SecretSource,
    factory: Arc<dyn TranslatorFactory>,
    credentials: &CredentialResolver,
) -> Result<Snapshot> {
    let planner = ConfigPlanner::with_secrets(config, secrets, credentials.clone())?;
    Ok(Snapshot::new(Arc::new(planner), factory))
}

/// Builds a gateway snapshot that enforces the configuration's rate limits with the
/// counters of `limits`.
pub fn snapshot_with_limits(
    config: &Config,
    secrets: &SecretSource,
    factory: Arc<dyn TranslatorFactory>,
    credentials: &CredentialResolver,
    limits: &RateLimits,
) -> Result<Snapshot> {
    let snapshot = snapshot_with_secrets(config, secrets, factory, credentials)?;
    Ok(match limits.meter(config)? {
        Some(meter) => snapshot.with_meter(meter),
        None => snapshot,
    })
}
