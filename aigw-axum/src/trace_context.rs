//! W3C Trace Context (`traceparent` / `tracestate`) towards upstreams.
//!
//! * A request that arrives with a valid `traceparent` continues that trace: every
//!   upstream attempt carries the same trace id and flags with a fresh parent id (the
//!   attempt is a child span of the caller's), and `tracestate` is forwarded unchanged.
//! * Without one (or with an invalid one, which the specification says to treat as
//!   absent), a trace is started only when propagation is on (`aigw run
//!   --trace-propagation`, [`crate::Settings::trace_propagation`]): a new trace id per
//!   request, sampled, and a fresh parent id per attempt.
//!
//! The trace id is also recorded on the request's `tracing` span, so access logs can be
//! joined with the upstream's traces.

use http::{HeaderMap, HeaderName, HeaderValue};
use std::hash::{BuildHasher, Hasher};
use std::sync::atomic::{AtomicU64, Ordering};

/// `traceparent`.
pub const TRACEPARENT: HeaderName = HeaderName::from_static("traceparent");
/// `tracestate`.
pub const TRACESTATE: HeaderName = HeaderName::from_static("tracestate");

/// A parsed `traceparent` (version 00).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TraceParent {
    /// 16-byte trace id, never all zero.
    pub trace_id: u128,
    /// 8-byte parent (span) id, never zero.
    pub parent_id: u64,
    /// Trace flags (bit 0: sampled).
    pub flags: u8,
}

impl TraceParent {
    /// Parses a `traceparent` value; `None` when it is not a valid version-00 value
    /// (future versions are read by their first four fields, as the specification asks).
    pub fn parse(value: &str) -> Option<Self> {
        let mut parts = value.trim().split('-');
        let version = parts.next()?;
        let trace = parts.next()?;
        let parent = parts.next()?;
        let flags = parts.next()?;
        let rest = parts.next();
        if version.len() != 2 || version == "ff" || !is_lower_hex(version) {
            return None;
        }
        if version == "00" && rest.is_some() {
            return None;
        }
        if trace.len() != 32 || parent.len() != 16 || flags.len() != 2 {
            return None;
        }
        if !is_lower_hex(trace) || !is_lower_hex(parent) || !is_lower_hex(flags) {
            return None;
        }
        let trace_id = u128::from_str_radix(trace, 16).ok()?;
        let parent_id = u64::from_str_radix(parent, 16).ok()?;
        let flags = u8::from_str_radix(flags, 16).ok()?;
        (trace_id != 0 && parent_id != 0).then_some(Self {
            trace_id,
            parent_id,
            flags,
        })
    }

    /// A new sampled trace with a random trace id and parent id.
    pub fn new_root() -> Self {
        let trace_id = (u128::from(random_u64()) << 64) | u128::from(random_u64());
        Self {
            trace_id: trace_id.max(1),
            parent_id: random_u64().max(1),
            flags: 0x01,
        }
    }

    /// The same trace with a fresh parent id: the context for one upstream attempt.
    #[must_use]
    pub fn child(&self) -> Self {
        Self {
            parent_id: random_u64().max(1),
            ..*self
        }
    }

    /// The trace id as 32 lowercase hex digits.
    pub fn trace_id_hex(&self) -> String {
        format!("{:032x}", self.trace_id)
    }

    /// The header value (always version 00).
    pub fn to_header_value(&self) -> HeaderValue {
        let s = format!(
            "00-{:032x}-{:016x}-{:02x}",
            self.trace_id, self.parent_id, self.flags
        );
        // Hex digits and dashes only: always a valid header value.
        HeaderValue::from_str(&s).unwrap_or_else(|_| HeaderValue::from_static(""))
    }
}

fn is_lower_hex(s: &str) -> bool {
    s.bytes()
        .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

/// A random 64-bit value from the standard library's per-process keyed hasher and a
/// counter (span ids need uniqueness, not cryptographic strength).
fn random_u64() -> u64 {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u64(COUNTER.fetch_add(1, Ordering::Relaxed));
    if let Ok(d) = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH) {
        h.write_u128(d.as_nanos());
    }
    h.finish()
}

/// The trace context of one request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequestTrace {
    parent: TraceParent,
    state: Option<HeaderValue>,
}

impl RequestTrace {
    /// The context for a request: continued from its headers, started when `start` is
    /// set, or `None`.
    pub fn from_headers(headers: &HeaderMap, start: bool) -> Option<Self> {
        let incoming = headers
            .get(TRACEPARENT)
            .and_then(|v| v.to_str().ok())
            .and_then(TraceParent::parse);
        match incoming {
            Some(parent) => Some(Self {
                parent,
                state: headers.get(TRACESTATE).cloned(),
            }),
            None if start => Some(Self {
                parent: TraceParent::new_root(),
                state: None,
            }),
            None => None,
        }
    }

    /// The request's trace id.
    pub fn trace_id_hex(&self) -> String {
        self.parent.trace_id_hex()
    }

    /// The trace id.
    pub const fn trace_id(&self) -> u128 {
        self.parent.trace_id
    }

    /// Writes the context of a new attempt (a child span) onto upstream headers.
    pub fn apply_attempt(&self, headers: &mut HeaderMap) {
        headers.insert(TRACEPARENT, self.parent.child().to_header_value());
        match &self.state {
            Some(s) => {
                headers.insert(TRACESTATE, s.clone());
            }
            None => {
                headers.remove(TRACESTATE);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const TP: &str = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";

    #[test]
    fn parses_and_renders_the_specification_example() {
        let t = TraceParent::parse(TP).unwrap();
        assert_eq!(t.trace_id_hex(), "4bf92f3577b34da6a3ce929d0e0e4736");
        assert_eq!(t.parent_id, 0x00f0_67aa_0ba9_02b7);
        assert_eq!(t.flags, 1);
        assert_eq!(t.to_header_value(), TP);
    }

    #[test]
    fn rejects_invalid_values() {
        for bad in [
            "",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7",
            "00-00000000000000000000000000000000-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01",
            "ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
            "00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-extra",
            "00-4bf92f3577b34da6a3ce929d0e0e47-00f067aa0ba902b7-01",
        ] {
            assert!(TraceParent::parse(bad).is_none(), "{bad}");
        }
        // A future version with extra fields is read by its first four.
        assert!(
            TraceParent::parse("01-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-xyz")
                .is_some()
        );
    }

    #[test]
    fn attempts_continue_the_trace_with_fresh_span_ids() {
        let mut h = HeaderMap::new();
        h.insert(TRACEPARENT, HeaderValue::from_static(TP));
        h.insert(TRACESTATE, HeaderValue::from_static("vendor=x"));
        let trace = RequestTrace::from_headers(&h, false).unwrap();
        let (mut a, mut b) = (HeaderMap::new(), HeaderMap::new());
        trace.apply_attempt(&mut a);
        trace.apply_attempt(&mut b);
        let (ta, tb) = (
            TraceParent::parse(a[TRACEPARENT].to_str().unwrap()).unwrap(),
            TraceParent::parse(b[TRACEPARENT].to_str().unwrap()).unwrap(),
        );
        assert_eq!(ta.trace_id_hex(), "4bf92f3577b34da6a3ce929d0e0e4736");
        assert_eq!(tb.trace_id, ta.trace_id);
        assert_ne!(ta.parent_id, 0x00f0_67aa_0ba9_02b7);
        assert_ne!(ta.parent_id, tb.parent_id);
        assert_eq!(ta.flags, 1);
        assert_eq!(a[TRACESTATE], "vendor=x");
    }

    #[test]
    fn starts_a_trace_only_when_asked() {
        assert!(RequestTrace::from_headers(&HeaderMap::new(), false).is_none());
        let mut h = HeaderMap::new();
        h.insert(TRACEPARENT, HeaderValue::from_static("garbage"));
        h.insert(TRACESTATE, HeaderValue::from_static("vendor=x"));
        assert!(RequestTrace::from_headers(&h, false).is_none());
        let t = RequestTrace::from_headers(&h, true).unwrap();
        let mut out = HeaderMap::new();
        out.insert(TRACESTATE, HeaderValue::from_static("stale"));
        t.apply_attempt(&mut out);
        assert!(TraceParent::parse(out[TRACEPARENT].to_str().unwrap()).is_some());
        // The invalid context's tracestate is dropped with it.
        assert!(!out.contains_key(TRACESTATE));
        let other = RequestTrace::from_headers(&HeaderMap::new(), true).unwrap();
        assert_ne!(t.trace_id_hex(), other.trace_id_hex());
    }
}
