//! Where a client stands against the limits that applied to its request, told in the
//! `x-ratelimit-*` headers OpenAI sends and its SDKs, LiteLLM and most rate-limit-aware
//! clients read:
//!
//! | header | value |
//! |---|---|
//! | `x-ratelimit-limit-requests` / `x-ratelimit-limit-tokens` | the tightest limit's size |
//! | `x-ratelimit-remaining-requests` / `x-ratelimit-remaining-tokens` | what is left of it after this request |
//! | `x-ratelimit-reset-requests` / `x-ratelimit-reset-tokens` | until its window resets, as OpenAI writes it (`1s`, `6m0s`, `1h2m3s`) |
//!
//! A limit counts requests when its rule charges fixed numbers, tokens when it charges
//! `llmRequestCosts` values or it is a QuotaPolicy bucket.

use http::{HeaderMap, HeaderName, HeaderValue};

/// What a limit counts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LimitUnit {
    /// Requests (fixed costs).
    Requests,
    /// Tokens (or values of a cost expression over them).
    Tokens,
}

/// One limit's standing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Standing {
    /// The limit per window.
    pub limit: u64,
    /// What is left in the current window.
    pub remaining: u64,
    /// Seconds until the window resets (at least 1).
    pub reset: u64,
}

/// The tightest standing per unit among the limits a request was checked against.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct LimitStatus {
    /// The tightest request-counting limit.
    pub requests: Option<Standing>,
    /// The tightest token-counting limit.
    pub tokens: Option<Standing>,
}

fn tighter(a: Option<Standing>, b: Standing) -> Standing {
    match a {
        Some(a) if (a.remaining, u64::MAX - a.reset) <= (b.remaining, u64::MAX - b.reset) => a,
        _ => b,
    }
}

impl LimitStatus {
    /// Keeps `s` when it is tighter than what is known for `unit` (less remaining; on
    /// a tie, the later reset).
    pub fn note(&mut self, unit: LimitUnit, s: Standing) {
        let slot = match unit {
            LimitUnit::Requests => &mut self.requests,
            LimitUnit::Tokens => &mut self.tokens,
        };
        *slot = Some(tighter(*slot, s));
    }

    /// Folds in another status, unit by unit.
    pub fn merge(&mut self, other: &Self) {
        if let Some(s) = other.requests {
            self.note(LimitUnit::Requests, s);
        }
        if let Some(s) = other.tokens {
            self.note(LimitUnit::Tokens, s);
        }
    }

    /// Whether no limit applied.
    pub const fn is_empty(&self) -> bool {
        self.requests.is_none() && self.tokens.is_none()
    }

    /// The headers, in a stable order.
    pub fn headers(&self) -> Vec<(HeaderName, HeaderValue)> {
        let mut out = Vec::with_capacity(6);
        for (unit, s) in [("requests", self.requests), ("tokens", self.tokens)] {
            let Some(s) = s else { continue };
            for (what, value) in [
                ("limit", s.limit.to_string()),
                ("remaining", s.remaining.to_string()),
                ("reset", go_duration(s.reset)),
            ] {
                let name = format!("x-ratelimit-{what}-{unit}");
                if let (Ok(n), Ok(v)) = (
                    HeaderName::from_bytes(name.as_bytes()),
                    HeaderValue::from_str(&value),
                ) {
                    out.push((n, v));
                }
            }
        }
        out
    }

    /// Sets the headers on `headers` in place of every `x-ratelimit-*` there (an
    /// upstream provider's own, which describe the gateway's credential, not this
    /// client: a unit the gateway does not limit is not told at all).
    pub fn apply(&self, headers: &mut HeaderMap) {
        for n in provider_headers(headers) {
            headers.remove(n);
        }
        for (n, v) in self.headers() {
            headers.insert(n, v);
        }
    }
}

/// The `x-ratelimit-*` headers of `headers` (an upstream provider's, when they are a
/// response's).
pub fn provider_headers(headers: &HeaderMap) -> Vec<HeaderName> {
    headers
        .keys()
        .filter(|n| n.as_str().starts_with("x-ratelimit-"))
        .cloned()
        .collect()
}

/// Seconds as OpenAI writes its reset headers (Go's duration format): `1s`, `6m0s`,
/// `1h2m3s`.
pub fn go_duration(secs: u64) -> String {
    let (h, m, s) = (secs / 3600, secs % 3600 / 60, secs % 60);
    match (h, m) {
        (0, 0) => format!("{s}s"),
        (0, _) => format!("{m}m{s}s"),
        _ => format!("{h}h{m}m{s}s"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_providers_headers_make_way_for_the_gateways() {
        let mut h = HeaderMap::new();
        h.insert(
            "x-ratelimit-limit-requests",
            HeaderValue::from_static("10000"),
        );
        h.insert(
            "x-ratelimit-remaining-tokens",
            HeaderValue::from_static("9"),
        );
        h.insert("x-request-id", HeaderValue::from_static("r"));
        let mut s = LimitStatus::default();
        s.note(
            LimitUnit::Tokens,
            Standing {
                limit: 30,
                remaining: 20,
                reset: 60,
            },
        );
        s.apply(&mut h);
        assert_eq!(h["x-ratelimit-remaining-tokens"], "20");
        assert_eq!(h["x-ratelimit-reset-tokens"], "1m0s");
        assert!(!h.contains_key("x-ratelimit-limit-requests"));
        assert_eq!(h["x-request-id"], "r");
    }

    #[test]
    fn durations_read_like_openai_headers() {
        assert_eq!(go_duration(1), "1s");
        assert_eq!(go_duration(360), "6m0s");
        assert_eq!(go_duration(3723), "1h2m3s");
    }

    #[test]
    fn the_tightest_limit_per_unit_is_told() {
        let mut s = LimitStatus::default();
        let st = |limit, remaining, reset| Standing {
            limit,
            remaining,
            reset,
        };
        s.note(LimitUnit::Tokens, st(1000, 500, 60));
        s.note(LimitUnit::Tokens, st(100, 40, 3600));
        s.note(LimitUnit::Tokens, st(5000, 4000, 10));
        s.note(LimitUnit::Requests, st(10, 9, 1));
        let h: Vec<_> = s
            .headers()
            .into_iter()
            .map(|(n, v)| format!("{n}: {}", v.to_str().unwrap()))
            .collect();
        assert_eq!(
            h,
            [
                "x-ratelimit-limit-requests: 10",
                "x-ratelimit-remaining-requests: 9",
                "x-ratelimit-reset-requests: 1s",
                "x-ratelimit-limit-tokens: 100",
                "x-ratelimit-remaining-tokens: 40",
                "x-ratelimit-reset-tokens: 1h0m0s",
            ]
        );
    }
}
