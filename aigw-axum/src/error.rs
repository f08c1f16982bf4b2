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
