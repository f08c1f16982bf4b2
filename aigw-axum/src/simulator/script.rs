//! Per-request scripting: the `x-sim-*` headers a test sends to shape one response.

use std::time::Duration;

use http::{HeaderMap, HeaderValue, StatusCode};

use super::SimulatorConfig;

/// `x-sim-status: 503` — answer with this status and the provider's error body.
pub const HEADER_STATUS: &str = "x-sim-status";
/// `x-sim-retry-after: 2` — with a 429 status, the `Retry-After` header value.
pub const HEADER_RETRY_AFTER: &str = "x-sim-retry-after";
/// `x-sim-delay-ms: 250` — wait this long before sending response headers.
pub const HEADER_DELAY_MS: &str = "x-sim-delay-ms";
/// `x-sim-chunks: 8` — number of content chunks in a streamed reply.
pub const HEADER_CHUNKS: &str = "x-sim-chunks";
/// `x-sim-chunk-interval-ms: 20` — pause between streamed chunks.
pub const HEADER_CHUNK_INTERVAL_MS: &str = "x-sim-chunk-interval-ms";
/// `x-sim-reset-after-chunks: 2` — abort the connection after this many stream events.
pub const HEADER_RESET_AFTER_CHUNKS: &str = "x-sim-reset-after-chunks";
/// `x-sim-stall-after-chunks: 2` — stop sending after this many stream events, keeping
/// the connection open.
pub const HEADER_STALL_AFTER_CHUNKS: &str = "x-sim-stall-after-chunks";
/// `x-sim-malformed: 1` — send an invalid JSON body or a truncated stream frame.
pub const HEADER_MALFORMED: &str = "x-sim-malformed";

/// Upper bound on `x-sim-chunks`, so one header cannot make the simulator build a
/// gigantic reply.
const MAX_CHUNKS: usize = 10_000;

/// How one response is shaped, from the configuration defaults and the request headers.
#[derive(Clone, Debug)]
pub(crate) struct Script {
    pub(crate) status: Option<StatusCode>,
    pub(crate) retry_after: Option<HeaderValue>,
    pub(crate) delay: Duration,
    pub(crate) chunks: usize,
    pub(crate) interval: Duration,
    pub(crate) reset_after: Option<usize>,
    pub(crate) stall_after: Option<usize>,
    pub(crate) malformed: bool,
}

fn number(headers: &HeaderMap, name: &str) -> Option<u64> {
    headers.get(name)?.to_str().ok()?.trim().parse().ok()
}

impl Script {
    pub(crate) fn from_headers(headers: &HeaderMap, cfg: &SimulatorConfig) -> Self {
        let status = number(headers, HEADER_STATUS)
            .and_then(|s| u16::try_from(s).ok())
            .or(cfg.fail_status)
            .and_then(|s| StatusCode::from_u16(s).ok());
        let chunks = number(headers, HEADER_CHUNKS)
            .and_then(|n| usize::try_from(n).ok())
            .unwrap_or(cfg.chunks)
            .clamp(1, MAX_CHUNKS);
        let count = |name| number(headers, name).and_then(|n| usize::try_from(n).ok());
        Self {
            status,
            retry_after: headers.get(HEADER_RETRY_AFTER).cloned(),
            delay: cfg.latency
                + Duration::from_millis(number(headers, HEADER_DELAY_MS).unwrap_or(0)),
            chunks,
            interval: number(headers, HEADER_CHUNK_INTERVAL_MS)
                .map_or(cfg.chunk_interval, Duration::from_millis),
            reset_after: count(HEADER_RESET_AFTER_CHUNKS),
            stall_after: count(HEADER_STALL_AFTER_CHUNKS),
            malformed: headers
                .get(HEADER_MALFORMED)
                .is_some_and(|v| !matches!(v.as_bytes(), b"0" | b"false" | b"")),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn headers_override_config() {
        let mut h = HeaderMap::new();
        h.insert(HEADER_STATUS, HeaderValue::from_static("429"));
        h.insert(HEADER_RETRY_AFTER, HeaderValue::from_static("3"));
        h.insert(HEADER_CHUNKS, HeaderValue::from_static("7"));
        h.insert(HEADER_DELAY_MS, HeaderValue::from_static("5"));
        h.insert(HEADER_MALFORMED, HeaderValue::from_static("1"));
        h.insert(HEADER_RESET_AFTER_CHUNKS, HeaderValue::from_static("2"));
        let cfg = SimulatorConfig::default().with_latency(Duration::from_millis(10));
        let s = Script::from_headers(&h, &cfg);
        assert_eq!(s.status, Some(StatusCode::TOO_MANY_REQUESTS));
        assert_eq!(
            s.retry_after.as_ref().map(|v| v.as_bytes()),
            Some(&b"3"[..])
        );
        assert_eq!(s.chunks, 7);
        assert_eq!(s.delay, Duration::from_millis(15));
        assert!(s.malformed);
        assert_eq!(s.reset_after, Some(2));
        assert_eq!(s.stall_after, None);
    }

    #[test]
    fn config_fail_status_and_bad_values() {
        let mut h = HeaderMap::new();
        h.insert(HEADER_CHUNKS, HeaderValue::from_static("0"));
        h.insert(HEADER_DELAY_MS, HeaderValue::from_static("soon"));
        let cfg = SimulatorConfig::default().with_fail_status(503);
        let s = Script::from_headers(&h, &cfg);
        assert_eq!(s.status, Some(StatusCode::SERVICE_UNAVAILABLE));
        assert_eq!(s.chunks, 1);
        assert_eq!(s.delay, Duration::ZERO);
        assert!(!s.malformed);
    }
}
