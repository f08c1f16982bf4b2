//! The gateway's error type.
//!
//! Every error the data path can produce knows its HTTP status and renders itself as
//! the error body of the client API the request arrived on, so an OpenAI SDK sees an
//! OpenAI-shaped error and an Anthropic SDK an Anthropic-shaped one.

use bytes::Bytes;
use http::StatusCode;
use serde_json::json;
use std::fmt;
use std::time::Duration;

/// The family of client API a request came in on; decides the error envelope.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ClientApi {
    /// OpenAI-shaped APIs: `{"error":{"message","type","param","code"}}`.
    OpenAI,
    /// Anthropic-shaped APIs: `{"type":"error","error":{"type","message"}}`.
    Anthropic,
}

/// Shorthand for results in this crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// One problem found in configuration, located precisely enough to fix.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigIssue {
    /// The file the document came from (empty for in-memory sources).
    pub file: String,
    /// The 1-based line of the offending node (or of its nearest enclosing node, or
    /// of the document start) when the document came from YAML text.
    pub line: Option<usize>,
    /// The document, as `Kind/namespace/name` (or `document #N` when unnamed).
    pub document: String,
    /// The field path inside the document, e.g. `spec.rules[0].backendRefs[1].weight`.
    pub field: String,
    /// What is wrong and, where possible, how to fix it.
    pub message: String,
}

impl fmt::Display for ConfigIssue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match (self.file.is_empty(), self.line) {
            (false, Some(line)) => write!(f, "{}:{line}: ", self.file)?,
            (false, None) => write!(f, "{}: ", self.file)?,
            (true, Some(line)) => write!(f, "line {line}: ")?,
            (true, None) => {}
        }
        write!(f, "{}", self.document)?;
        if !self.field.is_empty() {
            write!(f, ": {}", self.field)?;
        }
        write!(f, ": {}", self.message)
    }
}

/// Every error of the gateway core.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The client's request body is not what the endpoint accepts.
    #[error("invalid request: {message}")]
    BadRequest {
        /// What is wrong with the request.
        message: String,
    },
    /// No client credentials, or wrong ones.
    #[error("unauthorized: {message}")]
    Unauthorized {
        /// Why authentication failed (never the credential itself).
        message: String,
    },
    /// The client is authenticated but not allowed.
    #[error("forbidden: {message}")]
    Forbidden {
        /// Why the request is not allowed.
        message: String,
    },
    /// No route matches the request's model.
    #[error(
        "no matching route found for model {model:?}: the model is likely not configured in the gateway"
    )]
    NoRoute {
        /// The model the client asked for.
        model: String,
    },
    /// The path is not an API the gateway serves.
    #[error("unsupported path: {path}")]
    UnsupportedPath {
        /// The request path.
        path: String,
    },
    /// The request body exceeds the configured limit.
    #[error("request body exceeds the limit of {limit} bytes")]
    PayloadTooLarge {
        /// The limit in bytes.
        limit: usize,
    },
    /// The request cannot be expressed in the backend's API.
    #[error("{field} cannot be translated for backend {backend}: {reason}")]
    Untranslatable {
        /// The request field that cannot be mapped (JSON path).
        field: String,
        /// The backend schema or name.
        backend: String,
        /// Why.
        reason: String,
    },
    /// A token limit or rate limit was hit.
    #[error("rate limit exceeded: {message}")]
    RateLimited {
        /// Which limit.
        message: String,
        /// When the client may retry.
        retry_after: Option<Duration>,
        /// Where the client stands against the gateway's limits (`x-ratelimit-*`
        /// headers), when its own limits refused the request.
        status: Option<Box<crate::limits::status::LimitStatus>>,
    },
    /// A money budget is spent (before the request) or ran out during the response
    /// ([`crate::budget`]). Sent as a 429 with OpenAI's `insufficient_quota` type and
    /// code, which clients know not to retry.
    #[error("budget exceeded: {message}")]
    BudgetExceeded {
        /// Which budget, how much was spent and when it resets.
        message: String,
        /// When the budget's period ends, if it does.
        retry_after: Option<Duration>,
    },
    /// The upstream answered with an error, already normalised by a translator.
    #[error("upstream error {status}: {message}")]
    Upstream {
        /// Status to return to the client.
        status: StatusCode,
        /// The upstream's message.
        message: String,
    },
    /// The client did not send its request in time (a request body that stalls or
    /// takes longer than the listener allows).
    #[error("request timeout: {message}")]
    RequestTimeout {
        /// Which phase timed out.
        message: String,
    },
    /// The gateway is at one of its capacity limits (connections, requests in flight,
    /// buffered body memory) or is shutting down; the client should retry later.
    #[error("overloaded: {message}")]
    Overloaded {
        /// Which limit.
        message: String,
        /// When the client may retry.
        retry_after: Duration,
    },
    /// The upstream could not be reached or broke the connection.
    #[error("upstream unavailable: {message}")]
    UpstreamUnavailable {
        /// What went wrong.
        message: String,
    },
    /// The upstream did not answer in time.
    #[error("upstream timed out: {message}")]
    Timeout {
        /// Which timeout.
        message: String,
    },
    /// The upstream sent bytes that do not parse as its API.
    #[error("malformed upstream response: {message}")]
    MalformedUpstream {
        /// What was malformed.
        message: String,
    },
    /// Upstream credentials could not be obtained.
    #[error("credentials for policy {policy} unavailable: {message}")]
    Credential {
        /// The BackendSecurityPolicy (`namespace/name`).
        policy: String,
        /// What failed. Never contains secret material.
        message: String,
    },
    /// The configuration is invalid; every issue found is listed.
    #[error("invalid configuration ({} issue(s)):\n{}", .issues.len(), DisplayIssues(.issues))]
    InvalidConfig {
        /// All issues found.
        issues: Vec<ConfigIssue>,
    },
    /// Reading configuration failed.
    #[error("cannot read {path}: {message}")]
    Io {
        /// The path.
        path: String,
        /// The OS error text.
        message: String,
    },
    /// A bug or an unexpected state inside the gateway.
    #[error("internal error: {message}")]
    Internal {
        /// Details.
        message: String,
    },
}

struct DisplayIssues<'a>(&'a [ConfigIssue]);

impl fmt::Display for DisplayIssues<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, issue) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str("\n")?;
            }
            write!(f, "  - {issue}")?;
        }
        Ok(())
    }
}

impl Error {
    /// Convenience constructor for [`Error::BadRequest`].
    pub fn bad_request(message: impl Into<String>) -> Self {
        Self::BadRequest {
            message: message.into(),
        }
    }

    /// Convenience constructor for [`Error::Untranslatable`].
    pub fn untranslatable(
        field: impl Into<String>,
        backend: impl Into<String>,
        reason: impl Into<String>,
    ) -> Self {
        Self::Untranslatable {
            field: field.into(),
            backend: backend.into(),
            reason: reason.into(),
        }
    }

    /// Convenience constructor for [`Error::Internal`].
    pub fn internal(message: impl Into<String>) -> Self {
        Self::Internal {
            message: message.into(),
        }
    }

    /// Convenience constructor for [`Error::MalformedUpstream`].
    pub fn malformed_upstream(message: impl Into<String>) -> Self {
        Self::MalformedUpstream {
            message: message.into(),
        }
    }

    /// The HTTP status this error is returned with.
    pub fn status(&self) -> StatusCode {
        match self {
            Self::BadRequest { .. } => StatusCode::BAD_REQUEST,
            Self::Unauthorized { .. } => StatusCode::UNAUTHORIZED,
            Self::Forbidden { .. } => StatusCode::FORBIDDEN,
            Self::NoRoute { .. } | Self::UnsupportedPath { .. } => StatusCode::NOT_FOUND,
            Self::PayloadTooLarge { .. } => StatusCode::PAYLOAD_TOO_LARGE,
            Self::RequestTimeout { .. } => StatusCode::REQUEST_TIMEOUT,
            Self::Overloaded { .. } => StatusCode::SERVICE_UNAVAILABLE,
            Self::Untranslatable { .. } => StatusCode::UNPROCESSABLE_ENTITY,
            Self::RateLimited { .. } | Self::BudgetExceeded { .. } => StatusCode::TOO_MANY_REQUESTS,
            Self::Upstream { status, .. } => *status,
            Self::UpstreamUnavailable { .. } | Self::MalformedUpstream { .. } => {
                StatusCode::BAD_GATEWAY
            }
            Self::Timeout { .. } => StatusCode::GATEWAY_TIMEOUT,
            Self::Credential { .. } => StatusCode::SERVICE_UNAVAILABLE,
            Self::InvalidConfig { .. } | Self::Io { .. } | Self::Internal { .. } => {
                StatusCode::INTERNAL_SERVER_ERROR
            }
        }
    }

    /// The OpenAI error `type` for this error.
    fn openai_type(&self) -> &'static str {
        match self {
            Self::BadRequest { .. }
            | Self::Untranslatable { .. }
            | Self::PayloadTooLarge { .. }
            | Self::RequestTimeout { .. } => "invalid_request_error",
            Self::Overloaded { .. } => "service_unavailable",
            Self::Unauthorized { .. } => "authentication_error",
            Self::Forbidden { .. } => "permission_error",
            Self::NoRoute { .. } | Self::UnsupportedPath { .. } => "not_found_error",
            Self::RateLimited { .. } => "rate_limit_error",
            Self::BudgetExceeded { .. } => "insufficient_quota",
            Self::Upstream { .. } => "upstream_error",
            Self::UpstreamUnavailable { .. } | Self::MalformedUpstream { .. } => "bad_gateway",
            Self::Timeout { .. } => "timeout",
            Self::Credential { .. } => "service_unavailable",
            Self::InvalidConfig { .. } | Self::Io { .. } | Self::Internal { .. } => "server_error",
        }
    }

    /// The OpenAI error `code` for this error, where one is conventional.
    fn openai_code(&self) -> serde_json::Value {
        match self {
            Self::NoRoute { .. } => json!("model_not_found"),
            Self::Unauthorized { .. } => json!("invalid_api_key"),
            Self::RateLimited { .. } => json!("rate_limit_exceeded"),
            Self::BudgetExceeded { .. } => json!("insufficient_quota"),
            Self::PayloadTooLarge { .. } => json!("request_too_large"),
            Self::RequestTimeout { .. } => json!("request_timeout"),
            Self::Untranslatable { .. } => json!("unsupported_parameter"),
            _ => serde_json::Value::Null,
        }
    }

    /// The OpenAI error `param` for this error.
    fn openai_param(&self) -> serde_json::Value {
        match self {
            Self::NoRoute { .. } => json!("model"),
            Self::Untranslatable { field, .. } => json!(field),
            _ => serde_json::Value::Null,
        }
    }

    /// The `x-ratelimit-*` standing a refusal by the gateway's own limits carries.
    pub fn limit_status(&self) -> Option<&crate::limits::status::LimitStatus> {
        match self {
            Self::RateLimited { status, .. } => status.as_deref(),
            _ => None,
        }
    }

    /// The `Retry-After` delay to advertise, if any.
    pub fn retry_after(&self) -> Option<Duration> {
        match self {
            Self::RateLimited { retry_after, .. } | Self::BudgetExceeded { retry_after, .. } => {
                *retry_after
            }
            Self::Overloaded { retry_after, .. } => Some(*retry_after),
            _ => None,
        }
    }

    /// Renders the error as the JSON body of the given client API.
    pub fn to_body(&self, api: ClientApi) -> Bytes {
        let message = self.to_string();
        let value = match api {
            ClientApi::OpenAI => json!({
                "error": {
                    "message": message,
                    "type": self.openai_type(),
                    "param": self.openai_param(),
                    "code": self.openai_code(),
                }
            }),
            ClientApi::Anthropic => json!({
                "type": "error",
                "error": {
                    "type": anthropic_error_type(self.status()),
                    "message": message,
                }
            }),
        };
        Bytes::from(value.to_string())
    }
}

/// Maps an HTTP status to Anthropic's error `type` vocabulary.
pub fn anthropic_error_type(status: StatusCode) -> &'static str {
    match status.as_u16() {
        400 | 408 | 422 => "invalid_request_error",
        401 => "authentication_error",
        402 => "billing_error",
        403 => "permission_error",
        404 => "not_found_error",
        413 => "request_too_large",
        429 => "rate_limit_error",
        503 => "service_unavailable_error",
        504 => "timeout_error",
        529 => "overloaded_error",
        _ => "api_error",
    }
}

/// Maps an HTTP status to an OpenAI-style error `type`.
pub fn openai_error_type(status: StatusCode) -> &'static str {
    match status.as_u16() {
        400 | 408 | 413 | 422 => "invalid_request_error",
        401 => "authentication_error",
        403 => "permission_error",
        404 => "not_found_error",
        429 => "rate_limit_error",
        503 | 529 => "service_unavailable",
        _ => "server_error",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn no_route_renders_openai_shape_naming_model() {
        let e = Error::NoRoute {
            model: "gpt-9".into(),
        };
        assert_eq!(e.status(), StatusCode::NOT_FOUND);
        let v: serde_json::Value = serde_json::from_slice(&e.to_body(ClientApi::OpenAI)).unwrap();
        assert!(v["error"]["message"].as_str().unwrap().contains("gpt-9"));
        assert_eq!(v["error"]["code"], "model_not_found");
    }

    #[test]
    fn overload_and_request_timeout_statuses() {
        let e = Error::Overloaded {
            message: "too many requests in flight".into(),
            retry_after: Duration::from_secs(1),
        };
        assert_eq!(e.status(), StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(e.retry_after(), Some(Duration::from_secs(1)));
        let v: serde_json::Value =
            serde_json::from_slice(&e.to_body(ClientApi::Anthropic)).unwrap();
        assert_eq!(v["error"]["type"], "service_unavailable_error");
        let e = Error::RequestTimeout {
            message: "request body".into(),
        };
        assert_eq!(e.status(), StatusCode::REQUEST_TIMEOUT);
        let v: serde_json::Value = serde_json::from_slice(&e.to_body(ClientApi::OpenAI)).unwrap();
        assert_eq!(v["error"]["code"], "request_timeout");
    }

    #[test]
    fn anthropic_shape() {
        let e = Error::PayloadTooLarge { limit: 10 };
        let v: serde_json::Value =
            serde_json::from_slice(&e.to_body(ClientApi::Anthropic)).unwrap();
        assert_eq!(v["type"], "error");
        assert_eq!(v["error"]["type"], "request_too_large");
    }
}
