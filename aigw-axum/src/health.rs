//! Upstream protection the configuration asks for, on this adapter's side: the circuit
//! breaker around each backend's requests and the active HTTP health checks. The state
//! they feed (ejections, check results) and the choice of backend live in
//! [`aigw_core::health`] and the planner.

use crate::client::HttpClient;
use aigw_core::health::{CircuitLimits, HostHealth, WeakHostHealth};
use bytes::Bytes;
use http::{Method, Request};
use http_body_util::{BodyExt, Full};
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

/// One backend's circuit breaker, with Envoy's thresholds: requests in flight
/// (`maxParallelRequests`), connections (`maxConnections`; one per request in flight,
/// as over HTTP/1) and requests waiting for one (`maxPendingRequests`). A request
/// beyond them overflows at once and the next backend is tried.
#[derive(Debug)]
pub struct Circuit {
    limits: CircuitLimits,
    parallel: AtomicU32,
    pending: AtomicU32,
    connections: Arc<Semaphore>,
}

/// Why a request did not get through a circuit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Overflow {
    /// `maxParallelRequests` requests are in flight.
    Parallel(u32),
    /// Every connection is busy and `maxPendingRequests` requests already wait.
    Pending(u32),
    /// No connection freed up within the attempt's time.
    Timeout,
}

impl std::fmt::Display for Overflow {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Parallel(n) => write!(f, "{n} requests in flight (maxParallelRequests)"),
            Self::Pending(n) => write!(
                f,
                "every connection busy and {n} requests waiting (maxPendingRequests)"
            ),
            Self::Timeout => f.write_str("no connection freed up in time"),
        }
    }
}

/// A request's place in a circuit, given back when dropped.
#[derive(Debug)]
pub(crate) struct CircuitPermit {
    circuit: Arc<Circuit>,
    _connection: OwnedSemaphorePermit,
}

impl Drop for CircuitPermit {
    fn drop(&mut self) {
        self.circuit.parallel.fetch_sub(1, Ordering::AcqRel);
    }
}

impl Circuit {
    /// A circuit with the given thresholds.
    pub fn new(limits: CircuitLimits) -> Arc<Self> {
        Arc::new(Self {
            limits,
            parallel: AtomicU32::new(0),
            pending: AtomicU32::new(0),
            connections: Arc::new(Semaphore::new(limits.max_connections as usize)),
        })
    }

    /// Takes a place, waiting at most `wait` for a connection when they are all busy.
    pub(crate) async fn admit(self: &Arc<Self>, wait: Duration) -> Result<CircuitPermit, Overflow> {
        let max = self.limits.max_parallel_requests;
        if self.parallel.fetch_add(1, Ordering::AcqRel) >= max {
            self.parallel.fetch_sub(1, Ordering::AcqRel);
            return Err(Overflow::Parallel(max));
        }
        let connection = match self.connections.clone().try_acquire_owned() {
            Ok(p) => Ok(p),
            Err(_) => self.wait_for_connection(wait).await,
        };
        match connection {
            Ok(c) => Ok(CircuitPermit {
                circuit: self.clone(),
                _connection: c,
            }),
            Err(e) => {
                self.parallel.fetch_sub(1, Ordering::AcqRel);
                Err(e)
            }
        }
    }

    async fn wait_for_connection(&self, wait: Duration) -> Result<OwnedSemaphorePermit, Overflow> {
        let max = self.limits.max_pending_requests;
        if self.pending.fetch_add(1, Ordering::AcqRel) >= max {
            self.pending.fetch_sub(1, Ordering::AcqRel);
            return Err(Overflow::Pending(max));
        }
        let got = tokio::time::timeout(wait, self.connections.clone().acquire_owned()).await;
        self.pending.fetch_sub(1, Ordering::AcqRel);
        match got {
            Ok(Ok(p)) => Ok(p),
            _ => Err(Overflow::Timeout),
        }
    }
}

/// Where and how one backend is checked.
#[derive(Debug, Clone)]
pub(crate) struct CheckTarget {
    /// The per-rule backend name, for logs.
    pub(crate) backend: String,
    /// `http` or `https`.
    pub(crate) scheme: &'static str,
    /// `host:port` dialled.
    pub(crate) authority: String,
    /// The client that reaches it (the backend's own TLS client, or the shared one).
    pub(crate) client: Option<HttpClient>,
}

/// Runs one backend's active checks until its configuration is replaced.
pub(crate) fn spawn_checks(target: CheckTarget, health: WeakHostHealth, shared: HttpClient) {
    let Ok(runtime) = tokio::runtime::Handle::try_current() else {
        tracing::warn!(backend = %target.backend, "no runtime: active health checks not started");
        return;
    };
    runtime.spawn(async move {
        let client = target.client.clone().unwrap_or(shared);
        loop {
            let Some(h) = health.upgrade() else {
                return;
            };
            let Some(check) = h.active_check().cloned() else {
                return;
            };
            let passed = probe(&client, &target, &check).await;
            if let Some(healthy) = h.record_probe(passed) {
                if healthy {
                    tracing::info!(backend = %target.backend, "active health check: healthy again");
                } else {
                    tracing::warn!(backend = %target.backend, path = %check.path, "active health check: unhealthy, requests go to the next backend");
                }
            }
            drop(h);
            tokio::time::sleep(check.interval).await;
        }
    });
}

async fn probe(
    client: &HttpClient,
    target: &CheckTarget,
    check: &aigw_core::health::ActiveCheck,
) -> bool {
    let uri = format!("{}://{}{}", target.scheme, target.authority, check.path);
    let method = Method::from_bytes(check.method.as_bytes()).unwrap_or(Method::GET);
    let mut builder = Request::builder().method(method).uri(uri);
    if let Some(host) = &check.hostname {
        builder = builder.header(http::header::HOST, host);
    }
    let Ok(request) = builder.body(Full::new(Bytes::new())) else {
        return false;
    };
    let answer = tokio::time::timeout(check.timeout, async {
        let response = client.request(request).await.ok()?;
        let status = response.status().as_u16();
        // Read the body so the connection can go back to the pool.
        let _ = response.into_body().collect().await;
        Some(status)
    })
    .await;
    matches!(answer, Ok(Some(s)) if check.expected_statuses.contains(&s))
}

/// The outcome reported to outlier detection, and its log line when it ejects.
pub(crate) fn report(
    health: Option<&HostHealth>,
    backend: &str,
    outcome: aigw_core::health::Outcome,
) {
    if let Some(h) = health
        && let Some(length) = h.report(outcome)
    {
        tracing::warn!(%backend, ejected_for = ?length, "outlier detection: backend ejected");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn circuit_overflows_instead_of_queueing_beyond_pending() {
        let c = Circuit::new(CircuitLimits {
            max_connections: 1,
            max_pending_requests: 1,
            max_parallel_requests: 3,
        });
        let first = c.admit(Duration::from_secs(1)).await.unwrap();
        // The second waits for the connection; the third finds the queue full.
        let c2 = c.clone();
        let waiting = tokio::spawn(async move { c2.admit(Duration::from_secs(2)).await.is_ok() });
        tokio::time::sleep(Duration::from_millis(50)).await;
        assert_eq!(
            c.admit(Duration::from_secs(1)).await.unwrap_err(),
            Overflow::Pending(1)
        );
        drop(first);
        assert!(waiting.await.unwrap());
        let c = Circuit::new(CircuitLimits {
            max_connections: 10,
            max_pending_requests: 10,
            max_parallel_requests: 1,
        });
        let _held = c.admit(Duration::ZERO).await.unwrap();
        assert_eq!(
            c.admit(Duration::ZERO).await.unwrap_err(),
            Overflow::Parallel(1)
        );
    }
}
