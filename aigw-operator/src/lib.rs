//! # aigw-operator
//!
//! The Kubernetes control plane of aigw: it reconciles the Envoy AI Gateway CRDs
//! (AIGatewayRoute, AIServiceBackend, BackendSecurityPolicy, GatewayConfig, MCPRoute,
//! QuotaPolicy) into the objects Envoy Gateway and `aigw-extproc` need.
//!
//! * [`crd`]: the CustomResourceDefinitions, generated from `aigw-core`'s configuration
//!   types (the same types the loader reads manifests into) plus the API server's
//!   validation rules.

pub mod crd;
mod error;

pub use error::{Error, Result};
