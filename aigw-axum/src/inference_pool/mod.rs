//! InferencePool routing in-process: before each attempt on a pool, the pool's endpoint
//! picker (EPP) is asked which model server takes the request, as the Gateway API
//! Inference Extension's endpoint picker protocol specifies; the request is then sent
//! to the `ip:port` it names.
//!
//! [`EndpointPicker`] is the question asked; the Envoy ext_proc client that asks a real
//! picker is [`grpc::ExtProcPicker`] (cargo feature `inference-pool`, which brings
//! tonic). When the picker fails, the pool's `endpointPickerRef.failureMode` decides:
//! `FailClose` (the default) answers 503 naming the pool; `FailOpen` sends to an
//! endpoint of the gateway's own picking — outside the cluster the gateway cannot list
//! the pool's pods, so it picks among the endpoints the picker named recently, and
//! answers 503 when it has seen none.

#[cfg(feature = "inference-pool")]
pub mod grpc;

use aigw_core::Error;
use aigw_core::routing::{InferencePoolTarget, PickerFailureMode};
use async_trait::async_trait;
use bytes::Bytes;
use http::{HeaderMap, HeaderName, HeaderValue, StatusCode};
use std::collections::VecDeque;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// The header (and `envoy.lb` dynamic-metadata key) carrying the picked endpoints.
pub const DESTINATION_ENDPOINT: &str = "x-gateway-destination-endpoint";
/// The dynamic-metadata key reporting which endpoint served the request.
pub const DESTINATION_ENDPOINT_SERVED: &str = "x-gateway-destination-endpoint-served";
/// The metadata namespace of both keys.
pub const METADATA_NAMESPACE: &str = "envoy.lb";

/// How many endpoints named by a picker are remembered for `FailOpen`.
const RECENT_ENDPOINTS: usize = 16;

/// The request as the picker sees it: what the model server will receive.
#[derive(Debug)]
pub struct PickRequest<'a> {
    /// Method.
    pub method: &'a http::Method,
    /// Path and query.
    pub path: &'a str,
    /// Host the request is for.
    pub authority: &'a str,
    /// Headers.
    pub headers: &'a HeaderMap,
    /// The whole body.
    pub body: &'a Bytes,
}

/// The picker's answer.
pub struct Picked {
    /// `ip:port` endpoints, the first preferred, the others for a failed connect.
    pub endpoints: Vec<String>,
    /// Headers the picker sets on the request (besides the destination).
    pub set_headers: Vec<(HeaderName, HeaderValue)>,
    /// Headers the picker removes.
    pub remove_headers: Vec<HeaderName>,
    /// A body replacing the request's (a picker may rewrite the model, for instance).
    pub body: Option<Bytes>,
    /// Where to report the endpoint that served the request.
    pub report: Option<Box<dyn ServedReport>>,
}

impl std::fmt::Debug for Picked {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Picked")
            .field("endpoints", &self.endpoints)
            .field("set_headers", &self.set_headers.len())
            .field("remove_headers", &self.remove_headers)
            .field("body_replaced", &self.body.is_some())
            .finish_non_exhaustive()
    }
}

/// Tells the picker which endpoint served a request
/// (`x-gateway-destination-endpoint-served`).
pub trait ServedReport: Send {
    /// The upstream answered: `endpoint` served it with `status` and `headers`.
    fn served(self: Box<Self>, endpoint: &str, status: StatusCode, headers: &HeaderMap);
}

/// Why no endpoint was picked.
#[derive(Debug, thiserror::Error)]
pub enum PickError {
    /// The picker answered the request itself (an ext_proc `ImmediateResponse`): 503
    /// when no endpoint is ready, 429 when the request is shed. The client gets it.
    #[error("endpoint picker answered {status}: {message}")]
    Rejected {
        /// The status the picker chose.
        status: StatusCode,
        /// Its body, or a description.
        message: String,
    },
    /// The picker could not be asked or gave no usable answer; the pool's failure mode
    /// applies.
    #[error("{0}")]
    Failed(String),
}

/// Asks one pool's endpoint picker.
#[async_trait]
pub trait EndpointPicker: Send + Sync + 'static {
    /// Picks the endpoints for `request`, within `timeout`.
    async fn pick(&self, request: PickRequest<'_>, timeout: Duration) -> Result<Picked, PickError>;
}

/// Gives each pool of a configuration its picker.
pub trait PickerResolver: Send + Sync + 'static {
    /// The picker of `pool`, or why there is none.
    fn picker(&self, pool: &InferencePoolTarget) -> Result<Arc<dyn EndpointPicker>, String>;
}

/// The resolver a packaging gets by default: with the `inference-pool` feature, ext_proc
/// clients to each picker's in-cluster Service; without it, none.
pub fn default_resolver() -> Option<Arc<dyn PickerResolver>> {
    #[cfg(feature = "inference-pool")]
    {
        Some(Arc::new(grpc::ExtProcPickers::default()))
    }
    #[cfg(not(feature = "inference-pool"))]
    {
        None
    }
}

/// One pool's routing: its picker and the endpoints it named recently.
pub struct PoolRouting {
    pool: Arc<InferencePoolTarget>,
    picker: Result<Arc<dyn EndpointPicker>, String>,
    recent: Mutex<VecDeque<String>>,
    next: AtomicUsize,
}

impl std::fmt::Debug for PoolRouting {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PoolRouting")
            .field("pool", &self.pool.name)
            .field("picker", &self.picker.as_ref().map(|_| ()))
            .finish_non_exhaustive()
    }
}

/// Where an attempt on a pool goes.
#[derive(Debug)]
pub(crate) struct Routed {
    /// Endpoints to dial, in order.
    pub(crate) endpoints: Vec<String>,
    /// Where to report the serving endpoint.
    pub(crate) report: Option<Box<dyn ServedReport>>,
}

impl std::fmt::Debug for dyn ServedReport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ServedReport")
    }
}

/// Why an attempt on a pool cannot start.
#[derive(Debug)]
pub(crate) enum RouteFailure {
    /// The picker's own answer, for the client.
    Answer(Error),
    /// The picker failed and the failure mode gives no endpoint: another attempt may.
    Unavailable(Error),
}

impl PoolRouting {
    /// Routing for `pool` through `resolver` (`None`: this build cannot ask pickers).
    pub fn new(pool: Arc<InferencePoolTarget>, resolver: Option<&dyn PickerResolver>) -> Self {
        let picker = match resolver {
            Some(r) => r.picker(&pool),
            None => Err(
                "this build has no endpoint-picker client (cargo feature `inference-pool`)".into(),
            ),
        };
        if let Err(e) = &picker {
            tracing::warn!(pool = %pool.name, error = %e, "InferencePool cannot be served");
        }
        Self {
            pool,
            picker,
            recent: Mutex::new(VecDeque::new()),
            next: AtomicUsize::new(0),
        }
    }

    /// The pool.
    pub fn pool(&self) -> &InferencePoolTarget {
        &self.pool
    }

    /// Asks the picker where `request` goes and applies its header and body changes.
    pub(crate) async fn route(
        &self,
        request: &mut aigw_core::OutgoingRequest,
        timeout: Duration,
    ) -> Result<Routed, RouteFailure> {
        let failure = match &self.picker {
            Ok(picker) => {
                let asked = picker
                    .pick(
                        PickRequest {
                            method: &request.method,
                            path: &request.path,
                            authority: &request.authority,
                            headers: &request.headers,
                            body: &request.body,
                        },
                        timeout,
                    )
                    .await;
                match asked {
                    Ok(picked) => return Ok(self.apply(picked, request)),
                    Err(PickError::Rejected { status, message }) => {
                        return Err(RouteFailure::Answer(self.rejected(status, message)));
                    }
                    Err(PickError::Failed(e)) => e,
                }
            }
            Err(e) => e.clone(),
        };
        tracing::warn!(pool = %self.pool.name, error = %failure, mode = ?self.pool.failure_mode, "endpoint picker failed");
        // 503 as Envoy answers when its picker filter leaves no endpoint, and as the
        // protocol has pickers answer when no endpoint is ready.
        let unavailable = |why: String| {
            RouteFailure::Unavailable(Error::Upstream {
                status: StatusCode::SERVICE_UNAVAILABLE,
                message: format!(
                    "endpoint picker of InferencePool {} failed ({why}): {failure}",
                    self.pool.name
                ),
            })
        };
        match self.pool.failure_mode {
            PickerFailureMode::FailClose => Err(unavailable("failureMode FailClose".into())),
            PickerFailureMode::FailOpen => match self.fallback() {
                Some(endpoint) => {
                    request.authority.clone_from(&endpoint);
                    request.scheme = "http".into();
                    Ok(Routed {
                        endpoints: vec![endpoint],
                        report: None,
                    })
                }
                None => Err(unavailable(
                    "failureMode FailOpen, and no endpoint of the pool is known yet".into(),
                )),
            },
        }
    }

    fn apply(&self, picked: Picked, request: &mut aigw_core::OutgoingRequest) -> Routed {
        for name in &picked.remove_headers {
            request.headers.remove(name);
        }
        for (name, value) in picked.set_headers {
            request.headers.insert(name, value);
        }
        if let Some(body) = picked.body {
            if let Ok(v) = HeaderValue::from_str(&body.len().to_string())
                && request.headers.contains_key(http::header::CONTENT_LENGTH)
            {
                request.headers.insert(http::header::CONTENT_LENGTH, v);
            }
            request.body = body;
        }
        // The picker names model servers inside the pool: plain HTTP on the pod.
        request.scheme = "http".into();
        if let Some(first) = picked.endpoints.first() {
            request.authority.clone_from(first);
        }
        request.headers.remove(http::header::HOST);
        self.remember(&picked.endpoints);
        Routed {
            endpoints: picked.endpoints,
            report: picked.report,
        }
    }

    fn rejected(&self, status: StatusCode, message: String) -> Error {
        let message = format!(
            "endpoint picker of InferencePool {} answered {status}: {message}",
            self.pool.name
        );
        if status == StatusCode::TOO_MANY_REQUESTS {
            Error::RateLimited {
                message,
                retry_after: None,
                status: None,
            }
        } else {
            Error::Upstream { status, message }
        }
    }

    fn remember(&self, endpoints: &[String]) {
        let Ok(mut recent) = self.recent.lock() else {
            return;
        };
        for e in endpoints {
            if !recent.contains(e) {
                if recent.len() == RECENT_ENDPOINTS {
                    recent.pop_front();
                }
                recent.push_back(e.clone());
            }
        }
    }

    /// `FailOpen`: the next of the endpoints the picker named recently, round robin.
    fn fallback(&self) -> Option<String> {
        let recent = self.recent.lock().ok()?;
        if recent.is_empty() {
            return None;
        }
        let i = self.next.fetch_add(1, Ordering::Relaxed) % recent.len();
        recent.get(i).cloned()
    }
}

/// Parses a picker's endpoint list (`ip:port[,ip:port...]`): every well-formed entry, in
/// order.
pub fn parse_endpoints(value: &str) -> Vec<String> {
    value
        .split(',')
        .map(str::trim)
        .filter(|e| e.parse::<std::net::SocketAddr>().is_ok())
        .map(str::to_owned)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn endpoint_lists_keep_order_and_drop_malformed_entries() {
        assert_eq!(
            parse_endpoints("10.0.0.1:8000, 10.0.0.2:8000,pod-a:80,[::1]:9"),
            vec!["10.0.0.1:8000", "10.0.0.2:8000", "[::1]:9"]
        );
        assert!(parse_endpoints("").is_empty());
    }
}
