//! The operator's error type.

/// Everything the operator can fail with.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A validation rule names a field its type does not have (a programming error the
    /// CRD tests catch).
    #[error("CRD rule for {ty}.{field}: no such field in the generated schema")]
    SchemaRule {
        /// The type.
        ty: String,
        /// The field.
        field: String,
    },
    /// Objects could not be rendered.
    #[error("render: {0}")]
    Render(String),
    /// YAML output failed.
    #[error("YAML serialization failed: {0}")]
    Yaml(String),
    /// The configuration failed to load or validate.
    #[error(transparent)]
    Config(#[from] aigw_core::Error),
}

/// The operator's result type.
pub type Result<T, E = Error> = std::result::Result<T, E>;
