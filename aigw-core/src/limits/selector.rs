//! Client selectors of a rate-limit rule (`clientSelectors[]` of an Envoy Gateway
//! BackendTrafficPolicy), typed from the YAML as written and matched against a request.
//!
//! A rule applies to a request when every selector matches, and a selector matches when
//! every header match and its `sourceCIDR` hold. A `Distinct` match also splits the
//! rule's budget: each distinct header value (or client address) gets its own bucket,
//! so a match yields the descriptor entries that go into the bucket key.

use crate::error::{Error, Result};
use http::HeaderMap;
use regex::Regex;
use serde::Deserialize;
use serde_json::Value;
use std::net::IpAddr;

/// How a header is matched.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
pub enum HeaderMatchType {
    /// The value equals `value`; all matching requests share one bucket.
    #[default]
    Exact,
    /// The whole value matches the regular expression `value`.
    RegularExpression,
    /// Any value; each distinct value has its own bucket.
    Distinct,
}

/// How `sourceCIDR` is matched.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
pub enum SourceMatchType {
    /// Every address in the range shares one bucket.
    #[default]
    Exact,
    /// Each client address in the range has its own bucket.
    Distinct,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct RawHeaderMatch {
    name: String,
    #[serde(default, rename = "type")]
    kind: Option<HeaderMatchType>,
    #[serde(default)]
    value: Option<String>,
    #[serde(default)]
    invert: Option<bool>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct RawSourceMatch {
    #[serde(default, rename = "type")]
    kind: Option<SourceMatchType>,
    value: String,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct RawSelector {
    #[serde(default)]
    headers: Vec<RawHeaderMatch>,
    #[serde(default, rename = "sourceCIDR")]
    source_cidr: Option<RawSourceMatch>,
}

/// An address range, `addr/prefix`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cidr {
    addr: IpAddr,
    prefix: u8,
}

impl Cidr {
    /// Parses `10.0.0.0/8`, `2001:db8::/32` or a bare address (a single-host range).
    pub fn parse(s: &str) -> Option<Self> {
        let (addr, prefix) = match s.split_once('/') {
            Some((a, p)) => (
                a.trim().parse::<IpAddr>().ok()?,
                Some(p.trim().parse().ok()?),
            ),
            None => (s.trim().parse::<IpAddr>().ok()?, None),
        };
        let max = if addr.is_ipv4() { 32 } else { 128 };
        let prefix = prefix.unwrap_or(max);
        (prefix <= max).then_some(Self { addr, prefix })
    }

    /// Whether `ip` is in the range (IPv4-mapped IPv6 addresses count as IPv4).
    pub fn contains(&self, ip: IpAddr) -> bool {
        match (self.addr, ip.to_canonical()) {
            (IpAddr::V4(net), IpAddr::V4(ip)) => {
                let mask = u32::MAX
                    .checked_shl(32 - u32::from(self.prefix))
                    .unwrap_or(0);
                u32::from(net) & mask == u32::from(ip) & mask
            }
            (IpAddr::V6(net), IpAddr::V6(ip)) => {
                let mask = u128::MAX
                    .checked_shl(128 - u32::from(self.prefix))
                    .unwrap_or(0);
                u128::from(net) & mask == u128::from(ip) & mask
            }
            _ => false,
        }
    }
}

#[derive(Debug, Clone)]
enum HeaderTest {
    Exact(String),
    Regex(Regex),
    Distinct,
}

/// One compiled header match.
#[derive(Debug, Clone)]
pub struct HeaderMatch {
    name: http::HeaderName,
    test: HeaderTest,
    invert: bool,
}

/// One compiled `sourceCIDR` match.
#[derive(Debug, Clone)]
pub struct SourceMatch {
    cidr: Cidr,
    distinct: bool,
}

/// One compiled client selector.
#[derive(Debug, Clone, Default)]
pub struct ClientSelector {
    headers: Vec<HeaderMatch>,
    source: Option<SourceMatch>,
}

/// A part of a bucket's identity contributed by a `Distinct` match.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Descriptor {
    /// A header's value.
    Header {
        /// The header name (lower case).
        name: String,
        /// Its value.
        value: String,
    },
    /// The client address.
    SourceIp(IpAddr),
}

fn invalid(field: &str, message: impl Into<String>) -> Error {
    Error::InvalidConfig {
        issues: vec![crate::error::ConfigIssue {
            file: String::new(),
            line: None,
            document: String::new(),
            field: field.to_owned(),
            message: message.into(),
        }],
    }
}

impl ClientSelector {
    /// Types and compiles one selector as written in YAML; `field` names it in errors
    /// (e.g. `spec.rateLimit.global.rules[0].clientSelectors[1]`).
    pub fn compile(value: &Value, field: &str) -> Result<Self> {
        let raw: RawSelector = serde_json::from_value(value.clone()).map_err(|e| {
            invalid(
                field,
                format!(
                    "unsupported client selector ({e}); aigw matches `headers` and `sourceCIDR`"
                ),
            )
        })?;
        let mut headers = Vec::with_capacity(raw.headers.len());
        for (i, h) in raw.headers.into_iter().enumerate() {
            let f = format!("{field}.headers[{i}]");
            let name = http::HeaderName::try_from(h.name.as_str())
                .map_err(|_| invalid(&f, format!("invalid header name {:?}", h.name)))?;
            let kind = h.kind.unwrap_or_default();
            let test = match (kind, h.value) {
                (HeaderMatchType::Distinct, _) => HeaderTest::Distinct,
                (HeaderMatchType::Exact, Some(v)) => HeaderTest::Exact(v),
                (HeaderMatchType::RegularExpression, Some(v)) => {
                    let re = Regex::new(&format!("^(?:{v})$"))
                        .map_err(|e| invalid(&format!("{f}.value"), e.to_string()))?;
                    HeaderTest::Regex(re)
                }
                (_, None) => {
                    return Err(invalid(
                        &format!("{f}.value"),
                        "required unless type is Distinct",
                    ));
                }
            };
            let invert = h.invert.unwrap_or(false);
            if invert && kind == HeaderMatchType::Distinct {
                return Err(invalid(
                    &format!("{f}.invert"),
                    "cannot be set when type is Distinct",
                ));
            }
            headers.push(HeaderMatch { name, test, invert });
        }
        let source = match raw.source_cidr {
            Some(s) => Some(SourceMatch {
                cidr: Cidr::parse(&s.value).ok_or_else(|| {
                    invalid(
                        &format!("{field}.sourceCIDR.value"),
                        format!("{:?} is not a CIDR", s.value),
                    )
                })?,
                distinct: s.kind.unwrap_or_default() == SourceMatchType::Distinct,
            }),
            None => None,
        };
        Ok(Self { headers, source })
    }

    /// Matches a request; on a match, appends the `Distinct` descriptors to `out`.
    /// Returns false (leaving `out` as it may have been extended) when it does not match.
    pub fn matches(
        &self,
        headers: &HeaderMap,
        client_ip: Option<IpAddr>,
        out: &mut Vec<Descriptor>,
    ) -> bool {
        for h in &self.headers {
            let value = headers.get(&h.name).and_then(|v| v.to_str().ok());
            let hit = match (&h.test, value) {
                (HeaderTest::Distinct, Some(v)) => {
                    out.push(Descriptor::Header {
                        name: h.name.as_str().to_owned(),
                        value: v.to_owned(),
                    });
                    true
                }
                (HeaderTest::Distinct, None) => false,
                (HeaderTest::Exact(want), Some(v)) => (v == want) != h.invert,
                (HeaderTest::Regex(re), Some(v)) => re.is_match(v) != h.invert,
                // An absent header matches only an inverted test, as in Envoy.
                (_, None) => h.invert,
            };
            if !hit {
                return false;
            }
        }
        if let Some(s) = &self.source {
            let Some(ip) = client_ip.map(|ip| ip.to_canonical()) else {
                return false;
            };
            if !s.cidr.contains(ip) {
                return false;
            }
            if s.distinct {
                out.push(Descriptor::SourceIp(ip));
            }
        }
        true
    }
}

/// Matches a rule's selectors (all must hold; none = every request). Returns the
/// descriptors of the rule's bucket, or `None` when the rule does not apply.
pub fn match_all(
    selectors: &[ClientSelector],
    headers: &HeaderMap,
    client_ip: Option<IpAddr>,
) -> Option<Vec<Descriptor>> {
    let mut out = Vec::new();
    selectors
        .iter()
        .all(|s| s.matches(headers, client_ip, &mut out))
        .then_some(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn sel(v: Value) -> ClientSelector {
        ClientSelector::compile(&v, "s").unwrap()
    }

    fn headers(pairs: &[(&'static str, &'static str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.insert(*k, http::HeaderValue::from_static(v));
        }
        h
    }

    #[test]
    fn exact_is_default_and_shares_one_bucket() {
        let s = sel(json!({"headers": [{"name": "x-tier", "value": "free"}]}));
        let mut d = Vec::new();
        assert!(s.matches(&headers(&[("x-tier", "free")]), None, &mut d));
        assert!(d.is_empty(), "Exact adds no descriptor: {d:?}");
        assert!(!s.matches(&headers(&[("x-tier", "paid")]), None, &mut d));
        assert!(!s.matches(&HeaderMap::new(), None, &mut d));
    }

    #[test]
    fn regex_is_a_full_match_and_invert_negates() {
        let s = sel(
            json!({"headers": [{"name": "x-user", "type": "RegularExpression", "value": "bot-[0-9]+"}]}),
        );
        let mut d = Vec::new();
        assert!(s.matches(&headers(&[("x-user", "bot-42")]), None, &mut d));
        assert!(!s.matches(&headers(&[("x-user", "bot-42x")]), None, &mut d));
        let inv = sel(
            json!({"headers": [{"name": "x-user", "type": "RegularExpression", "value": "bot-.*", "invert": true}]}),
        );
        assert!(inv.matches(&headers(&[("x-user", "alice")]), None, &mut d));
        assert!(!inv.matches(&headers(&[("x-user", "bot-1")]), None, &mut d));
        // An absent header satisfies an inverted match.
        assert!(inv.matches(&HeaderMap::new(), None, &mut d));
    }

    #[test]
    fn distinct_yields_the_value_and_needs_the_header() {
        let s = sel(json!({"headers": [{"name": "x-tenant-id", "type": "Distinct"}]}));
        let mut d = Vec::new();
        assert!(s.matches(&headers(&[("x-tenant-id", "a")]), None, &mut d));
        assert_eq!(
            d,
            vec![Descriptor::Header {
                name: "x-tenant-id".into(),
                value: "a".into()
            }]
        );
        assert!(!s.matches(&HeaderMap::new(), None, &mut Vec::new()));
    }

    #[test]
    fn source_cidr_exact_and_distinct() {
        let exact = sel(json!({"sourceCIDR": {"type": "Exact", "value": "10.0.0.0/8"}}));
        let distinct = sel(json!({"sourceCIDR": {"type": "Distinct", "value": "10.0.0.0/8"}}));
        let inside: IpAddr = "10.1.2.3".parse().unwrap();
        let mapped: IpAddr = "::ffff:10.1.2.3".parse().unwrap();
        let outside: IpAddr = "192.168.0.1".parse().unwrap();
        let h = HeaderMap::new();
        let mut d = Vec::new();
        assert!(exact.matches(&h, Some(inside), &mut d));
        assert!(d.is_empty());
        assert!(!exact.matches(&h, Some(outside), &mut d));
        assert!(!exact.matches(&h, None, &mut d));
        assert!(distinct.matches(&h, Some(mapped), &mut d));
        assert_eq!(d, vec![Descriptor::SourceIp(inside)]);
        let v6 = sel(json!({"sourceCIDR": {"value": "2001:db8::/32"}}));
        assert!(v6.matches(&h, Some("2001:db8::1".parse().unwrap()), &mut d));
        assert!(!v6.matches(&h, Some("2001:db9::1".parse().unwrap()), &mut d));
        let all = sel(json!({"sourceCIDR": {"value": "0.0.0.0/0"}}));
        assert!(all.matches(&h, Some(outside), &mut d));
    }

    #[test]
    fn all_selectors_and_all_matches_must_hold() {
        let rule = vec![
            sel(
                json!({"headers": [{"name": "x-tenant-id", "type": "Distinct"}, {"name": "x-tier", "value": "free"}]}),
            ),
            sel(json!({"sourceCIDR": {"type": "Distinct", "value": "127.0.0.0/8"}})),
        ];
        let ip: IpAddr = "127.0.0.1".parse().unwrap();
        let h = headers(&[("x-tenant-id", "t1"), ("x-tier", "free")]);
        let d = match_all(&rule, &h, Some(ip)).unwrap();
        assert_eq!(d.len(), 2);
        assert!(match_all(&rule, &h, None).is_none());
        assert!(match_all(&rule, &headers(&[("x-tenant-id", "t1")]), Some(ip)).is_none());
        assert_eq!(match_all(&[], &HeaderMap::new(), None), Some(vec![]));
    }

    #[test]
    fn unsupported_or_invalid_selectors_are_config_errors() {
        for bad in [
            json!({"methods": [{"value": "GET"}]}),
            json!({"headers": [{"name": "x", "type": "RegularExpression", "value": "("}]}),
            json!({"headers": [{"name": "x", "type": "Exact"}]}),
            json!({"headers": [{"name": "x", "type": "Distinct", "invert": true}]}),
            json!({"sourceCIDR": {"value": "10.0.0.0/40"}}),
        ] {
            let e = ClientSelector::compile(&bad, "sel").unwrap_err();
            assert!(matches!(e, Error::InvalidConfig { .. }), "{bad}: {e}");
            assert!(e.to_string().contains("sel"), "{e}");
        }
    }
}
