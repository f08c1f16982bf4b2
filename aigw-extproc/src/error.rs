//! Errors of the ExtProc server outside the request path (startup, listeners, config
//! generation). Request-path failures are [`aigw_core::Error`]s rendered to the client.

use std::path::PathBuf;

/// An error starting or running the ExtProc server.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ExtProcError {
    /// `--root-prefix` / `--endpoint-prefixes` could not be parsed.
    #[error("--root-prefix / --endpoint-prefixes: {message}")]
    InvalidPrefixes {
        /// What is wrong.
        message: String,
    },
    /// A telemetry setting (`OTEL_*`, a header-attribute flag) is invalid, or its
    /// exporter could not be built.
    #[error("telemetry: {message}")]
    Telemetry {
        /// What is wrong (names the setting).
        message: String,
    },
    /// A listener limit's environment variable (`AIGW_HEADER_READ_TIMEOUT`, …) is
    /// invalid.
    #[error("listener limits: {message}")]
    InvalidLimits {
        /// What is wrong (names the setting).
        message: String,
    },
    /// A listen address could not be parsed.
    #[error("invalid listen address {addr:?}: expected unix:///path, host:port or :port")]
    InvalidAddress {
        /// The address given.
        addr: String,
    },
    /// Binding or serving a socket failed.
    #[error("{what} {addr}: {source}")]
    Io {
        /// What was being done.
        what: &'static str,
        /// The address.
        addr: String,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// The gRPC server failed.
    #[error("gRPC server: {0}")]
    Transport(String),
    /// The configuration could not be loaded or compiled.
    #[error("configuration {path}: {source}")]
    Config {
        /// The file.
        path: PathBuf,
        /// The cause.
        #[source]
        source: aigw_core::Error,
    },
    /// The Redis URL for rate-limit counters is unusable (the message never carries the
    /// password).
    #[error("rate-limit Redis: {0}")]
    Redis(String),
    /// The configuration cannot be expressed as an Envoy bootstrap.
    #[error("cannot generate the Envoy configuration: {0}")]
    EnvoyConfig(String),
    /// The virtual-key store cannot be opened (the message never carries a password).
    #[error("--virtual-keys: {0}")]
    VirtualKeys(String),
}

impl From<ExtProcError> for aigw_core::Error {
    fn from(e: ExtProcError) -> Self {
        match e {
            ExtProcError::Config { source, .. } => source,
            other => aigw_core::Error::internal(other.to_string()),
        }
    }
}
