//! # aigw-operator
//!
//! The Kubernetes control plane of aigw: it reconciles the Envoy AI Gateway CRDs
//! (AIGatewayRoute, AIServiceBackend, BackendSecurityPolicy, GatewayConfig, MCPRoute,
//! QuotaPolicy) into the objects Envoy Gateway and `aigw-extproc` need.
//!
//! * [`controller`]: the kube-runtime controller that applies what [`render`] computes,
//!   with status conditions, events, leader election and metrics.
//! * [`crd`]: the CustomResourceDefinitions, generated from `aigw-core`'s configuration
//!   types (the same types the loader reads manifests into) plus the API server's
//!   validation rules.
//! * [`render`]: the whole reconcile as pure functions — manifests in, every object the
//!   controller writes out.
//! * [`extension`]: the Envoy Gateway Extension Server (gRPC) that adds the ExtProc
//!   wiring to the xDS Envoy Gateway translates.
//! * [`sidecar`]: the sidecar-injection decision for Envoy proxy pods (AdmissionReview in,
//!   JSON Patch out).
//! * [`webhook`]: that decision served over HTTPS as a mutating admission webhook.
//! * [`validate`]: the API server's defaulting and validation (OpenAPI constraints and
//!   CEL rules) for a structural schema, to hold generated objects against their CRDs.

pub mod controller;
pub mod crd;
mod error;
pub mod extension;
pub mod render;
pub mod sidecar;
pub mod validate;
pub mod webhook;

pub use error::{Error, Result};
