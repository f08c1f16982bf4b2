//! # aigw-axum
//!
//! The gateway in-process: build it from a configuration snapshot and mount it as a
//! tower `Service`, an axum `Router` or a `Layer` in your own service. Also home of the
//! standalone `aigw` binary and its bundled provider simulator.
//!
//! * [`Gateway`] — the `tower::Service`, with [`Gateway::router`] and [`Gateway::layer`];
//!   its [`Snapshot`] (routing, translators, meter) is hot-swappable with
//!   [`Gateway::swap`];
//! * [`RoutePlanner`] — routing, implemented over a loaded configuration by
//!   [`config::ConfigPlanner`];
//! * [`RecordSink`] — one [`aigw_core::exchange::ExchangeRecord`] per request, the hook
//!   for access logs and metrics.

pub mod admin;
pub mod admin_api;
pub mod admin_usage;
mod admission;
pub mod autoconfig;
pub mod client;
pub mod client_auth;
pub mod client_auth_config;
pub mod client_metrics;
pub mod config;
pub mod console;
pub mod credentials;
mod error;
mod gateway;
pub mod health;
mod identity;
pub mod inference_pool;
mod layer;
#[cfg(feature = "cli")]
pub mod log_fields;
#[cfg(feature = "mcp")]
pub mod mcp;
pub mod net;
mod proxy;
pub mod record;
pub mod server;
mod service;
#[cfg(feature = "simulator")]
pub mod simulator;
mod stream;
#[cfg(test)]
mod stream_sizes;
pub mod trace_context;
mod upstream;
pub mod virtual_keys;

pub use error::GatewayError;
pub use gateway::{
    BackendConnection, ClientId, Gateway, GatewayBuilder, ModelEntry, RetryPolicy, RoutePlanner,
    Settings, Snapshot,
};
pub use layer::{GatewayLayer, GatewayService};
pub use record::{RecordSink, TracingSink};
