//! The gateway over a loaded configuration: [`ConfigPlanner`] narrows the shared
//! [`aigw_core::planner::Planner`] to the in-process packaging.

use crate::client::{ClientSettings, HttpClient, Upstream, build_clients, build_tls_clients};
use crate::gateway::{BackendConnection, ModelEntry, RoutePlanner, Snapshot};
use crate::inference_pool::{self, PickerResolver, PoolRouting};
use aigw_core::api::Endpoint;
use aigw_core::config::traffic::TrafficSettings;
use aigw_core::config::{Config, SecretSource};
use aigw_core::exchange::Plan;
use aigw_core::limits::RateLimits;
use aigw_core::planner::{Inputs, Planner};
use aigw_core::routing::{self, Candidate};
use aigw_core::{Result, TranslatorFactory};
use http::HeaderMap;
use std::collections::HashMap;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

pub use aigw_core::planner::CredentialResolver;

/// [`RoutePlanner`] over the shared [`Planner`]: the plan is the planner's; this adds
/// what only the in-process packaging needs, each backend's upstream connection (every
/// endpoint, and its own TLS client when its policy asks for one), built at load.
pub struct ConfigPlanner {
    planner: Arc<Planner>,
    /// Looked up on every attempt: foldhash with a per-process seed, not SipHash (the
    /// names come from the configuration).
    connections: HashMap<String, Arc<BackendConnection>, foldhash::fast::RandomState>,
}

impl std::fmt::Debug for ConfigPlanner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ConfigPlanner")
            .field("planner", &self.planner)
            .finish_non_exhaustive()
    }
}

impl ConfigPlanner {
    /// Compiles `config`, building every backend's credential provider with
    /// `credentials` (a policy that cannot be served fails the build).
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
        log_warnings(config);
        let planner = Planner::compile(
            config,
            Inputs {
                secrets,
                credentials: &credentials,
                providers: None,
                limits: &RateLimits::default(),
            },
        )?;
        Ok(Self::from_planner(Arc::new(planner)))
    }

    /// Narrows a compiled [`Planner`]; InferencePools are asked through
    /// [`inference_pool::default_resolver`].
    pub fn from_planner(planner: Arc<Planner>) -> Self {
        Self::with_pickers(planner, inference_pool::default_resolver().as_deref())
    }

    /// Narrows a compiled [`Planner`], asking InferencePools' endpoint pickers through
    /// `pickers` (`None`: pools are not served; their requests get a 503 naming them).
    pub fn with_pickers(planner: Arc<Planner>, pickers: Option<&dyn PickerResolver>) -> Self {
        let mut connections = HashMap::default();
        let mut clients = ClientCache::default();
        let mut pools: HashMap<String, Arc<PoolRouting>> = HashMap::new();
        for rule in planner.routing().rules() {
            for c in rule.groups.iter().flat_map(|g| &g.candidates) {
                if connections.contains_key(&c.backend_name) {
                    continue;
                }
                let mut conn = connection_for(c, rule.traffic, &mut clients);
                conn.health = planner.health(&c.backend_name).cloned();
                if let Some(pool) = &c.target.inference_pool {
                    let routing = pools
                        .entry(pool.name.clone())
                        .or_insert_with(|| Arc::new(PoolRouting::new(pool.clone(), pickers)));
                    conn.pool = Some(routing.clone());
                }
                connections.insert(c.backend_name.clone(), Arc::new(conn));
            }
        }
        Self {
            planner,
            connections,
        }
    }

    /// The compiled routing snapshot.
    pub fn routing(&self) -> &routing::Snapshot {
        self.planner.routing()
    }

    /// The shared planner.
    pub const fn planner(&self) -> &Arc<Planner> {
        &self.planner
    }
}

/// Every endpoint, and a dedicated TLS client when the backend's policy needs its own
/// roots or a server name other than the dialled host.
/// Clients for BackendTrafficPolicy connect and idle timeouts, one per distinct pair.
#[derive(Default)]
struct ClientCache(HashMap<(Duration, Duration, bool), (HttpClient, Upstream)>);

impl ClientCache {
    fn get(&mut self, settings: &ClientSettings) -> Option<(HttpClient, Upstream)> {
        let key = (
            settings.connect_timeout,
            settings.pool_idle_timeout,
            settings.http2_only,
        );
        if let Some(c) = self.0.get(&key) {
            return Some(c.clone());
        }
        match build_clients(settings) {
            Ok(c) => {
                self.0.insert(key, c.clone());
                Some(c)
            }
            Err(e) => {
                tracing::error!(error = %e, "cannot build an upstream client for a backend's timeouts or protocol; using the shared one");
                None
            }
        }
    }
}

/// The client settings a policy's `timeout.tcp.connectTimeout` and
/// `timeout.http.connectionIdleTimeout` ask for, when it sets either.
fn policy_client_settings(traffic: Option<&TrafficSettings>) -> Option<ClientSettings> {
    let t = &traffic?.timeouts;
    if t.connect.is_none() && t.connection_idle.is_none() {
        return None;
    }
    let base = ClientSettings::default();
    Some(ClientSettings {
        connect_timeout: t.connect.unwrap_or(base.connect_timeout),
        pool_idle_timeout: t.connection_idle.unwrap_or(base.pool_idle_timeout),
        ..base
    })
}

fn connection_for(
    c: &Candidate,
    traffic: Option<&TrafficSettings>,
    clients: &mut ClientCache,
) -> BackendConnection {
    let t = &c.target;
    let mut settings = policy_client_settings(traffic);
    if t.http2_prior_knowledge {
        settings
            .get_or_insert_with(ClientSettings::default)
            .http2_only = true;
    }
    let authorities = t
        .endpoints
        .iter()
        .filter(|e| !matches!(e, routing::Endpoint::Unix { .. }))
        .map(routing::Endpoint::authority)
        .collect();
    let mut conn = BackendConnection {
        authorities,
        circuit: traffic
            .and_then(|t| t.circuit_breaker)
            .map(crate::health::Circuit::new),
        ..BackendConnection::default()
    };
    if let Some(tls) = &t.tls {
        let first_host = t.endpoints.first().map(routing::Endpoint::host);
        if tls.roots != routing::TlsRoots::System
            || first_host != Some(tls.sni.as_str())
            || settings.is_some()
        {
            match build_tls_clients(&settings.clone().unwrap_or_default(), tls) {
                Ok((client, upstream)) => {
                    conn.client = Some(client);
                    conn.upstream = Some(upstream);
                }
                Err(e) => {
                    tracing::error!(backend = %c.backend_name, error = %e, "backend TLS settings unusable");
                    conn.tls_error = Some(e.to_string());
                }
            }
        }
    } else if let Some((client, upstream)) = settings.as_ref().and_then(|s| clients.get(s)) {
        conn.client = Some(client);
        conn.upstream = Some(upstream);
    }
    conn
}

impl RoutePlanner for ConfigPlanner {
    fn plan(&self, _endpoint: Endpoint, model: &str, headers: &HeaderMap) -> Result<Plan> {
        self.planner.plan(model, headers)
    }

    fn plan_stored_response(&self, id: &str) -> Option<(Plan, String)> {
        self.planner.plan_stored_response(id)
    }

    fn connection(&self, backend: &str) -> Option<Arc<BackendConnection>> {
        self.connections.get(backend).cloned()
    }

    fn start(&self, client: &HttpClient) {
        for (name, health) in self.planner.health_states() {
            if health.active_check().is_none() {
                continue;
            }
            let Some(target) = self.planner.target(name) else {
                continue;
            };
            let conn = self.connections.get(name);
            let check = crate::health::CheckTarget {
                backend: name.to_owned(),
                scheme: if &*target.upstream.scheme == "https" {
                    "https"
                } else {
                    "http"
                },
                authority: str::to_owned(&target.upstream.authority),
                client: conn.and_then(|c| c.client.clone()),
            };
            crate::health::spawn_checks(check, health.downgrade(), client.clone());
        }
    }

    fn max_body_bytes(&self) -> Option<usize> {
        self.planner
            .body_limit()
            .and_then(|l| usize::try_from(l).ok())
    }

    fn models(&self) -> Vec<ModelEntry> {
        self.planner
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

/// A gateway snapshot over a compiled [`Planner`]: its routing and, when any route has
/// rate limits, its meter.
pub fn snapshot_for(planner: Arc<Planner>, factory: Arc<dyn TranslatorFactory>) -> Snapshot {
    snapshot_with_pickers(
        planner,
        factory,
        inference_pool::default_resolver().as_deref(),
    )
}

/// Like [`snapshot_for`], asking InferencePools' endpoint pickers through `pickers`.
pub fn snapshot_with_pickers(
    planner: Arc<Planner>,
    factory: Arc<dyn TranslatorFactory>,
    pickers: Option<&dyn PickerResolver>,
) -> Snapshot {
    let meter = planner.meter().cloned();
    let snapshot = Snapshot::new(
        Arc::new(ConfigPlanner::with_pickers(planner, pickers)),
        factory,
    );
    match meter {
        Some(m) => snapshot.with_meter(m),
        None => snapshot,
    }
}

/// Logs, at `warn`, what this packaging will not do with `config`: the
/// configuration's own warnings ([`Config::warnings`]) and, in a build without the
/// `inference-pool` feature, every InferencePool backendRef
/// ([`Config::inference_pool_warnings`]). Called wherever a configuration is compiled
/// for the gateway.
pub fn log_warnings(config: &Config) {
    for w in config.warnings() {
        tracing::warn!("{w}");
    }
    for w in unserved_pools(config) {
        tracing::warn!("{w}");
    }
}

/// The InferencePool backendRefs this build cannot serve: every one without the
/// `inference-pool` feature, none with it.
pub fn unserved_pools(config: &Config) -> Vec<aigw_core::config::ConfigIssue> {
    if inference_pool::default_resolver().is_some() {
        return Vec::new();
    }
    config.inference_pool_warnings(
        "by this build: it has no endpoint-picker client (cargo feature `inference-pool` of aigw-axum)",
    )
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
    snapshot_with_secrets(
        config,
        &SecretSource::from_config(config),
        factory,
        credentials,
    )
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
    log_warnings(config);
    let planner = Planner::compile(
        config,
        Inputs {
            secrets,
            credentials,
            providers: None,
            limits,
        },
    )?;
    Ok(snapshot_for(Arc::new(planner), factory))
}
