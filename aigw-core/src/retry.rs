//! Which failed attempts may be retried (or failed over): the retry conditions of an
//! Envoy Gateway `BackendTrafficPolicy.retry.retryOn`, with Envoy's meaning of each
//! trigger, and the gateway's own default when no policy sets them.
//!
//! Only attempts whose response has not reached the client are ever retried; these
//! conditions decide among those.

use http::StatusCode;
use std::sync::LazyLock;

/// Why an attempt produced no response.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TransportFailure {
    /// The connection could not be opened (refused, unreachable, TLS, connect timeout)
    /// or credentials for the backend could not be obtained: nothing was sent.
    Connect,
    /// The connection was reset or closed before a complete response.
    Reset,
    /// The attempt's timeout expired before the response (or its first byte).
    Timeout,
}

/// Retry conditions.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RetryOn {
    /// Any 5xx, a reset, a connect failure or a timeout (`5xx`).
    five_xx: bool,
    /// 502, 503, 504, a connect failure or a timeout (`gateway-error`).
    gateway_error: bool,
    /// Connect failures (`connect-failure`, also `refused-stream`).
    connect_failure: bool,
    /// Resets and timeouts (`reset`, `reset-before-request`).
    reset: bool,
    /// 409 (`retriable-4xx`).
    retriable_4xx: bool,
    /// The statuses of `retriable-status-codes`.
    statuses: Vec<u16>,
    /// The triggers in Envoy's terms, as Envoy Gateway writes them for the route.
    triggers: Vec<String>,
}

impl Default for RetryOn {
    /// The gateway's own default, used when no policy configures retries: connect
    /// failures, resets, timeouts, 429 and every 5xx — the failures after which another
    /// backend (or a later try) can still answer.
    fn default() -> Self {
        Self {
            five_xx: true,
            gateway_error: true,
            connect_failure: true,
            reset: true,
            retriable_4xx: false,
            statuses: vec![429],
            triggers: ["5xx", "reset", "connect-failure", "retriable-status-codes"]
                .map(String::from)
                .to_vec(),
        }
    }
}

/// The gateway's default conditions ([`RetryOn::default`]), built once.
pub fn gateway_default() -> &'static RetryOn {
    static DEFAULT: LazyLock<RetryOn> = LazyLock::new(RetryOn::default);
    &DEFAULT
}

/// Envoy Gateway's default `retryOn` when a policy has `retry` without it, with status
/// 503 (`unavailable` and `cancelled` are gRPC conditions, which match nothing here).
const ENVOY_GATEWAY_DEFAULT_TRIGGERS: [&str; 5] = [
    "connect-failure",
    "refused-stream",
    "unavailable",
    "cancelled",
    "retriable-status-codes",
];

impl RetryOn {
    /// The conditions of a policy's `retryOn`: Envoy `triggers` and the
    /// `httpStatusCodes` used by `retriable-status-codes`. Both empty means Envoy
    /// Gateway's default. Unknown triggers (gRPC ones among them) match nothing.
    pub fn from_policy<S: AsRef<str>>(triggers: &[S], http_status_codes: &[u16]) -> Self {
        let defaults = triggers.is_empty() && http_status_codes.is_empty();
        let (mut names, codes): (Vec<String>, Vec<u16>) = if defaults {
            (
                ENVOY_GATEWAY_DEFAULT_TRIGGERS.map(String::from).to_vec(),
                vec![503],
            )
        } else {
            (
                triggers.iter().map(|t| t.as_ref().to_owned()).collect(),
                http_status_codes.to_vec(),
            )
        };
        // A list of codes has no use but retrying them, so it counts without the
        // trigger being named.
        if !codes.is_empty() && !names.iter().any(|n| n == "retriable-status-codes") {
            names.push("retriable-status-codes".to_owned());
        }
        let mut on = Self {
            five_xx: false,
            gateway_error: false,
            connect_failure: false,
            reset: false,
            retriable_4xx: false,
            statuses: Vec::new(),
            triggers: Vec::new(),
        };
        for t in &names {
            match t.as_str() {
                "5xx" => on.five_xx = true,
                "gateway-error" => on.gateway_error = true,
                "connect-failure" | "refused-stream" => on.connect_failure = true,
                "reset" | "reset-before-request" => on.reset = true,
                "retriable-4xx" => on.retriable_4xx = true,
                "retriable-status-codes" => on.statuses.clone_from(&codes),
                _ => {}
            }
        }
        on.triggers = names;
        on
    }

    /// Envoy's `retry_on` for these conditions (comma-separated triggers).
    pub fn envoy_retry_on(&self) -> String {
        self.triggers.join(",")
    }

    /// The statuses of `retriable-status-codes` (Envoy's `retriable_status_codes`).
    pub fn status_codes(&self) -> &[u16] {
        &self.statuses
    }

    /// Whether an error status may be retried.
    pub fn status(&self, status: StatusCode) -> bool {
        let code = status.as_u16();
        (self.five_xx && status.is_server_error())
            || (self.gateway_error && matches!(code, 502..=504))
            || (self.retriable_4xx && code == 409)
            || self.statuses.contains(&code)
    }

    /// Whether an attempt that produced no response may be retried.
    pub const fn transport(&self, failure: TransportFailure) -> bool {
        match failure {
            TransportFailure::Connect => self.connect_failure || self.five_xx || self.gateway_error,
            TransportFailure::Reset => self.reset || self.five_xx,
            TransportFailure::Timeout => self.reset || self.five_xx || self.gateway_error,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(code: u16) -> StatusCode {
        StatusCode::from_u16(code).unwrap()
    }

    #[test]
    fn gateway_default_retries_429_5xx_and_transport_failures() {
        let on = RetryOn::default();
        for c in [429, 500, 502, 503, 504, 529] {
            assert!(on.status(s(c)), "{c}");
        }
        for c in [400, 401, 404, 409, 413] {
            assert!(!on.status(s(c)), "{c}");
        }
        assert!(on.transport(TransportFailure::Connect));
        assert!(on.transport(TransportFailure::Reset));
        assert!(on.transport(TransportFailure::Timeout));
    }

    #[test]
    fn listed_codes_and_connect_failure_only() {
        // The upstream provider-fallback example.
        let on = RetryOn::from_policy(&["connect-failure", "retriable-status-codes"], &[500]);
        assert!(on.status(s(500)));
        assert!(!on.status(s(503)));
        assert!(!on.status(s(429)));
        assert!(on.transport(TransportFailure::Connect));
        assert!(!on.transport(TransportFailure::Reset));
        assert!(!on.transport(TransportFailure::Timeout));
    }

    #[test]
    fn envoy_gateway_default_when_retry_on_is_absent() {
        let on = RetryOn::from_policy::<&str>(&[], &[]);
        assert!(on.status(s(503)));
        assert!(!on.status(s(500)));
        assert!(!on.status(s(429)));
        assert!(on.transport(TransportFailure::Connect));
        assert!(!on.transport(TransportFailure::Reset));
    }

    #[test]
    fn five_xx_and_gateway_error_and_4xx() {
        let on = RetryOn::from_policy(&["5xx"], &[]);
        assert!(on.status(s(500)) && on.status(s(599)) && !on.status(s(429)));
        assert!(on.transport(TransportFailure::Reset) && on.transport(TransportFailure::Timeout));
        let on = RetryOn::from_policy(&["gateway-error", "retriable-4xx"], &[]);
        assert!(on.status(s(502)) && on.status(s(504)) && !on.status(s(500)));
        assert!(on.status(s(409)));
        assert!(on.transport(TransportFailure::Connect) && !on.transport(TransportFailure::Reset));
        let on = RetryOn::from_policy(&["reset"], &[429]);
        assert!(on.status(s(429)) && !on.status(s(503)));
        assert!(on.transport(TransportFailure::Reset) && !on.transport(TransportFailure::Connect));
    }
}
