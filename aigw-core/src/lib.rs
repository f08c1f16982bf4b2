//! # aigw-core
//!
//! The transport-agnostic core of the aigw AI gateway. Every packaging (the axum
//! middleware, the Envoy ExtProc server, the Kubernetes operator and the standalone
//! `aigw` binary) is a thin adapter over the pieces defined here:
//!
//! * [`api`] — client-facing wire types (OpenAI and Anthropic) and the request sniffer;
//! * [`usage::TokenUsage`] — the six token counters with cumulative stream semantics;
//! * the three traits the product is built on:
//!   [`translate::Translator`], [`credential::CredentialProvider`] and [`meter::TokenMeter`];
//! * [`config`] — the upstream project's Kubernetes YAML, loaded and validated unchanged;
//! * [`routing`] — the compiled, immutable routing snapshot;
//! * [`planner`] — the one layer between a configuration and the engine: targets,
//!   credential providers, costs, rate limits and hot reload, for every packaging;
//! * [`cost`] — `llmRequestCosts` including CEL expressions;
//! * [`health`] — circuit-breaker thresholds, outlier ejection and active-check state;
//! * [`error::Error`] — one error type that knows its HTTP status and renders as the
//!   client API's error body.
//!
//! The crate performs no I/O of its own beyond reading configuration files.

#[cfg(feature = "keys")]
pub mod admin;
pub mod api;
pub mod audit;
pub mod budget;
pub mod config;
pub mod conversations;
pub mod cost;
pub mod credential;
pub mod error;
pub mod estimate;
pub mod exchange;
pub mod filterapi;
pub mod health;
pub mod identity;
pub mod identity_headers;
#[cfg(feature = "keys")]
pub mod keys;
pub mod limits;
#[cfg(feature = "mcp")]
pub mod mcp;
pub mod memory;
pub mod meter;
pub mod metrics;
pub mod owners;
pub mod planner;
pub mod pricing;
pub mod reloadable;
pub mod retry;
pub mod routing;
pub mod schema;
pub mod secret;
#[cfg(feature = "server")]
pub mod server;
mod strip_headers;
pub mod telemetry;
pub mod translate;
pub mod usage;

pub use credential::{Credential, CredentialMaterial, CredentialProvider, OutgoingRequest};
pub use error::{ClientApi, Error, Result};
pub use meter::{MeterGuard, Reservation, TokenMeter};
pub use schema::{ApiSchema, VersionedSchema};
pub use secret::Secret;
pub use translate::{
    BodyChange, DroppedField, ErrorResponse, HeaderMutation, RequestContext, ResponseChunk,
    Translator, TranslatorFactory, UpstreamRequest,
};
pub use usage::TokenUsage;
