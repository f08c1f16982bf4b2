//! What the processor consults per request: the compiled configuration behind a
//! [`Catalog`], the translator factory and the token meter, swapped atomically on reload.

use crate::credentials::MetadataCredential;
use aigw_core::exchange::{ExchangeRecord, Target};
use aigw_core::meter::NoopMeter;
pub use aigw_core::planner::RouteInfo;
use aigw_core::routing::ModelInfo;
use aigw_core::{Result, TokenMeter, TranslatorFactory};
use http::HeaderMap;
use std::sync::Arc;

/// The configuration as the ExtProc needs it at request time.
///
/// Envoy does the routing and the fallback; the processor only needs to know whether a
/// model is routable at all (to answer 404 in the client's error format instead of
/// Envoy's empty one), what each per-rule backend name stands for, and which cost
/// metadata to emit.
pub trait Catalog: Send + Sync + 'static {
    /// The route (`namespace/name`) that serves `model` with these headers, or
    /// [`aigw_core::Error::NoRoute`].
    fn route(&self, model: &str, headers: &HeaderMap) -> Result<Arc<str>>;

    /// As [`Catalog::route`], with the first backend and the route's costs. Without a
    /// first backend the processor reserves when the first upstream attempt starts.
    fn resolve(&self, model: &str, headers: &HeaderMap) -> Result<RouteInfo> {
        Ok(RouteInfo {
            route: self.route(model, headers)?,
            first: None,
            costs: None,
        })
    }

    /// The backend behind a per-rule backend name
    /// (`{ns}/{name}/route/{route}/rule/{i}/ref/{j}`), or a plain `ns/name`.
    fn target(&self, backend_name: &str) -> Option<Arc<Target>>;

    /// Where the backend's per-request credential sits in Envoy's dynamic metadata,
    /// when its policy has `credentialOverride.fromDynamicMetadata`.
    fn metadata_credential(&self, backend_name: &str) -> Option<&MetadataCredential> {
        let _ = backend_name;
        None
    }

    /// The host SigV4 signs for when Envoy sends no `upstream_host` endpoint metadata
    /// and the backend has no endpoint of its own: upstream's default Bedrock host of
    /// the policy's region (`bedrock-runtime.{region}.amazonaws.com`), never the
    /// downstream authority.
    fn default_signing_host(&self, backend_name: &str) -> Option<&str> {
        let _ = backend_name;
        None
    }

    /// Cost metadata (`llmRequestCosts`: metadata key → value) for a finished request.
    fn costs(&self, record: &ExchangeRecord) -> Vec<(String, u64)> {
        let _ = record;
        Vec::new()
    }

    /// The costs of `route` (named by Envoy's route metadata when the router-level
    /// filter could not know it), when any are configured.
    fn route_costs(&self, route: &str) -> Option<Arc<aigw_core::cost::CostSet>> {
        let _ = route;
        None
    }

    /// Whether any cost is configured for `route` (then streams ask for usage).
    fn wants_usage(&self, route: &str) -> bool {
        let _ = route;
        false
    }

    /// The largest request body accepted (ClientTrafficPolicy buffer limit), if any.
    fn body_limit(&self) -> Option<u64> {
        None
    }

    /// Models served by `/v1/models` on `host` (routes with `hostnames` only list
    /// their models on those hosts).
    fn models(&self, host: Option<&str>) -> Vec<ModelInfo> {
        let _ = host;
        Vec::new()
    }

    /// Where a request on the stored Responses API response `id` goes when a
    /// passthrough backend holds it: the plan and the model to route by (see
    /// `Planner::plan_stored_response`). `None`: answered from the gateway's store.
    fn plan_stored_response(&self, id: &str) -> Option<(aigw_core::exchange::Plan, String)> {
        let _ = id;
        None
    }
}

/// One immutable generation of the processor's configuration.
#[derive(Clone)]
pub struct Runtime {
    /// The compiled configuration.
    pub catalog: Arc<dyn Catalog>,
    /// Builds translators for (endpoint, backend schema) pairs.
    pub factory: Arc<dyn TranslatorFactory>,
    /// Reserves and settles tokens.
    pub meter: Arc<dyn TokenMeter>,
}

impl Runtime {
    /// A runtime without token metering.
    pub fn new(catalog: Arc<dyn Catalog>, factory: Arc<dyn TranslatorFactory>) -> Self {
        Self {
            catalog,
            factory,
            meter: Arc::new(NoopMeter),
        }
    }

    /// Replaces the token meter.
    #[must_use]
    pub fn with_meter(mut self, meter: Arc<dyn TokenMeter>) -> Self {
        self.meter = meter;
        self
    }
}

impl std::fmt::Debug for Runtime {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Runtime").finish_non_exhaustive()
    }
}
