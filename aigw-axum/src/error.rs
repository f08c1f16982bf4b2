//! Errors of the axum adapter and the `aigw` binary (not of the data path, which uses
//! [`aigw_core::Error`]).

/// Something the adapter could not set up.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum GatewayError {
    /// The TLS client configuration could not be built.
    #[error("TLS setup failed: {0}")]
    Tls(String),
    /// A listener could not be bound or served.
    #[error("cannot serve on {addr}: {message}")]
    Serve {
        /// The address.
        addr: String,
        /// The OS error text.
        message: String,
    },
    /// The configuration cannot be turned into a gateway.
    #[error(transparent)]
    Core(#[from] aigw_core::Error),
}

impl From<GatewayError> for aigw_core::Error {
    fn from(e: GatewayError) -> Self {
        match e {
            GatewayError::Core(e) => e,
            other => Self::internal(other.to_string()),
        }
    }
}

/// A gateway error as the client sees it: the called API's error body with the
/// error's status, `retry-after` when it has one, and for the gateway's own rate
/// limits `x-envoy-ratelimited` (what Envoy's rate-limit filter sets, so clients and
/// dashboards can tell them from an upstream's 429).
pub(crate) fn error_response(
    api: aigw_core::ClientApi,
    e: &aigw_core::Error,
) -> http::Response<axum::body::Body> {
    let mut response = http::Response::new(axum::body::Body::from(e.to_body(api)));
    *response.status_mut() = e.status();
    response.headers_mut().insert(
        http::header::CONTENT_TYPE,
        http::HeaderValue::from_static("application/json"),
    );
    if let Some(after) = e.retry_after()
        && let Ok(v) = http::HeaderValue::from_str(&after.as_secs().max(1).to_string())
    {
        response.headers_mut().insert(http::header::RETRY_AFTER, v);
    }
    if matches!(e, aigw_core::Error::BudgetExceeded { .. }) {
        // A spent budget does not come back in seconds: the OpenAI and Anthropic SDKs
        // read this header and raise at once instead of retrying the 429.
        response.headers_mut().insert(
            http::HeaderName::from_static("x-should-retry"),
            http::HeaderValue::from_static("false"),
        );
    }
    if let Some(status) = e.limit_status() {
        status.apply(response.headers_mut());
    }
    if matches!(e, aigw_core::Error::RateLimited { .. }) {
        // What Envoy's rate-limit filter sets, so clients and dashboards can tell the
        // gateway's own limits from an upstream's 429.
        response.headers_mut().insert(
            http::HeaderName::from_static("x-envoy-ratelimited"),
            http::HeaderValue::from_static("true"),
        );
    }
    response
}
