//! The listener limits of the `aigw-extproc` command line: the names, environment
//! variables and defaults `aigw run` uses for the same bounds (docs/limits.md).

use crate::grpc_limits::GrpcLimits;
use aigw_core::server::ServerLimits;
use std::time::Duration;

/// Listener limits and timeouts. Durations are written like the configuration's
/// (`500ms`, `30s`, `2m`); `0` turns a timeout off.
#[derive(Debug, Clone, clap::Args)]
pub struct ListenerArgs {
    /// Time for a client of the MCP or admin listener to send a request's headers (in
    /// HTTP/1 it also bounds how long a kept-alive connection waits for its next
    /// request), and for a new gRPC connection to send its first bytes.
    #[arg(long, default_value = "30s", value_parser = duration, env = "AIGW_HEADER_READ_TIMEOUT")]
    pub header_read_timeout: Duration,
    /// An MCP or admin connection with no request in flight for this long is closed.
    #[arg(long, default_value = "60s", value_parser = duration, env = "AIGW_IDLE_TIMEOUT")]
    pub idle_timeout: Duration,
    /// Open MCP connections; beyond, new ones get 503 with `retry-after` (the admin
    /// listener takes 64).
    #[arg(long, default_value_t = 10_000, env = "AIGW_MAX_CONNECTIONS")]
    pub max_connections: usize,
    /// Largest total size of an MCP request's headers, in bytes (the admin listener
    /// takes 16 KiB).
    #[arg(long, default_value_t = 64 * 1024)]
    pub max_header_bytes: usize,
    /// Concurrent streams per HTTP/2 connection to the MCP or admin listener.
    #[arg(long, default_value_t = 256)]
    pub http2_max_concurrent_streams: u32,
    /// Interval of HTTP/2 keep-alive pings on every listener, gRPC included (0: none).
    #[arg(long, default_value = "30s", value_parser = duration)]
    pub http2_keepalive_interval: Duration,
    /// How long a keep-alive ping may go unanswered.
    #[arg(long, default_value = "20s", value_parser = duration)]
    pub http2_keepalive_timeout: Duration,
    /// On SIGTERM or Ctrl-C, how long in-flight ext_proc streams and MCP requests may
    /// take to finish before the process exits.
    #[arg(long, default_value = "30s", value_parser = duration, env = "AIGW_DRAIN_TIMEOUT")]
    pub drain_timeout: Duration,
    /// Open gRPC connections (Envoy opens one per worker); beyond, new ones are closed.
    #[arg(long, default_value_t = 1024, env = "AIGW_EXTPROC_MAX_CONNECTIONS")]
    pub grpc_max_connections: usize,
    /// Concurrent ext_proc streams (one per request Envoy processes) per gRPC
    /// connection; Envoy opens another connection when one's are all in use.
    #[arg(long, default_value_t = 10_000)]
    pub grpc_max_concurrent_streams: u32,
}

/// The limits of each listener.
#[derive(Debug, Clone)]
pub struct ListenerLimits {
    /// The MCP listener.
    pub mcp: ServerLimits,
    /// The admin listener (health, metrics, admin API).
    pub admin: ServerLimits,
    /// The ext_proc gRPC listener.
    pub grpc: GrpcLimits,
}

#[derive(clap::Parser)]
struct EnvOnly {
    #[command(flatten)]
    limits: ListenerArgs,
}

impl ListenerArgs {
    /// The defaults, with the environment variables above applied: the limits of the
    /// upstream-compatible command line, which has no flags for them.
    pub fn from_env() -> Result<Self, String> {
        <EnvOnly as clap::Parser>::try_parse_from(["aigw-extproc"])
            .map(|e| e.limits)
            .map_err(|e| e.to_string())
    }

    /// Each listener's limits.
    pub fn limits(&self) -> ListenerLimits {
        let mcp = ServerLimits {
            header_read_timeout: nonzero(self.header_read_timeout),
            idle_timeout: nonzero(self.idle_timeout),
            max_connections: self.max_connections,
            max_header_bytes: self.max_header_bytes,
            http2_max_concurrent_streams: self.http2_max_concurrent_streams,
            http2_keepalive_interval: nonzero(self.http2_keepalive_interval),
            http2_keepalive_timeout: self.http2_keepalive_timeout,
            drain_timeout: self.drain_timeout,
        };
        // Probes and scrapers: a small connection cap, and no drain of its own (it
        // stays up until the other listeners have drained, then stops).
        let admin = ServerLimits {
            max_connections: 64,
            max_header_bytes: 16 * 1024,
            drain_timeout: Duration::ZERO,
            ..mcp.clone()
        };
        let grpc = GrpcLimits {
            max_connections: self.grpc_max_connections,
            max_concurrent_streams: self.grpc_max_concurrent_streams,
            keepalive_interval: nonzero(self.http2_keepalive_interval),
            keepalive_timeout: self.http2_keepalive_timeout,
            first_byte_timeout: nonzero(self.header_read_timeout),
            drain_timeout: self.drain_timeout,
        };
        ListenerLimits { mcp, admin, grpc }
    }
}

fn duration(s: &str) -> Result<Duration, String> {
    aigw_core::config::parse_duration(s).map_err(|e| e.to_string())
}

/// `0` turns a bound off.
fn nonzero(d: Duration) -> Option<Duration> {
    (!d.is_zero()).then_some(d)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_match_aigw_run() {
        let l = ListenerArgs::from_env().unwrap().limits();
        let d = ServerLimits::default();
        assert_eq!(l.mcp.header_read_timeout, d.header_read_timeout);
        assert_eq!(l.mcp.idle_timeout, d.idle_timeout);
        assert_eq!(l.mcp.max_connections, d.max_connections);
        assert_eq!(l.mcp.drain_timeout, d.drain_timeout);
        assert_eq!(l.admin.max_connections, 64);
        assert_eq!(
            l.grpc.max_connections,
            GrpcLimits::default().max_connections
        );
    }
}
