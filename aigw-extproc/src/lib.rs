//! # aigw-extproc
//!
//! The gateway as an Envoy External Processor: a tonic `ExternalProcessor` that speaks
//! the same wire conventions as the upstream Envoy AI Gateway (two-stage processing,
//! `x-ai-eg-model`, dynamic metadata namespace `io.envoy.ai_gateway`), plus an Envoy
//! bootstrap generator so Envoy + `aigw-extproc` is a complete gateway on one host.

pub mod config;
pub mod credentials;
pub mod envoy;
mod error;
pub mod grpc_limits;
pub mod listener_flags;
pub mod mcp;
pub mod metrics;
mod processor;
pub mod reload;
mod runtime;
pub mod server;
mod state;
pub mod upstream_flags;
pub mod wire;

pub use error::ExtProcError;
pub use processor::Processor;
pub use runtime::{Catalog, RouteInfo, Runtime};
