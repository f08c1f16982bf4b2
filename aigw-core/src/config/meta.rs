//! Kubernetes and Gateway API building blocks shared by every kind: object metadata,
//! references, header matches, durations and quantities.

use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::collections::BTreeMap;
use std::fmt;
use std::time::Duration;

/// Where a document came from.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash)]
pub struct Source {
    /// The file label (path for files, the caller's label for in-memory text).
    pub file: String,
    /// Zero-based index of the document inside the file.
    pub index: usize,
}

/// Kubernetes `ObjectMeta`, restricted to what a manifest may carry.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct ObjectMeta {
    /// The object name.
    #[serde(default)]
    pub name: String,
    /// The namespace; `None` means `default` for namespaced kinds.
    #[serde(default)]
    pub namespace: Option<String>,
    /// Labels.
    #[serde(default)]
    pub labels: BTreeMap<String, String>,
    /// Annotations.
    #[serde(default)]
    pub annotations: BTreeMap<String, String>,
    /// Name prefix for generated names (not used by the gateway).
    #[serde(default)]
    pub generate_name: Option<String>,
    /// Server-populated fields, accepted so that `kubectl get -o yaml` output loads.
    #[serde(default)]
    pub uid: Option<String>,
    /// Server-populated.
    #[serde(default)]
    pub resource_version: Option<String>,
    /// Server-populated.
    #[serde(default)]
    pub generation: Option<i64>,
    /// Server-populated.
    #[serde(default)]
    pub creation_timestamp: Option<String>,
    /// Server-populated.
    #[serde(default)]
    pub deletion_timestamp: Option<String>,
    /// Server-populated.
    #[serde(default)]
    pub deletion_grace_period_seconds: Option<i64>,
    /// Finalizers.
    #[serde(default)]
    pub finalizers: Vec<String>,
    /// Owner references.
    #[serde(default)]
    pub owner_references: Option<Value>,
    /// Server-side-apply bookkeeping.
    #[serde(default)]
    pub managed_fields: Option<Value>,
}

impl ObjectMeta {
    /// The namespace, defaulting to `default`.
    pub fn namespace(&self) -> &str {
        match self.namespace.as_deref() {
            Some(ns) if !ns.is_empty() => ns,
            _ => "default",
        }
    }

    /// `namespace/name`.
    pub fn key(&self) -> String {
        format!("{}/{}", self.namespace(), self.name)
    }
}

/// Gateway API `ParentReference`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct ParentReference {
    /// Group, default `gateway.networking.k8s.io`.
    #[serde(default)]
    pub group: Option<String>,
    /// Kind, default `Gateway`.
    #[serde(default)]
    pub kind: Option<String>,
    /// Namespace, default the referrer's.
    #[serde(default)]
    pub namespace: Option<String>,
    /// Name.
    pub name: String,
    /// Listener name.
    #[serde(default)]
    pub section_name: Option<String>,
    /// Listener port.
    #[serde(default)]
    pub port: Option<u16>,
}

/// Gateway API `BackendObjectReference`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct BackendObjectReference {
    /// Group (empty is the core group).
    #[serde(default)]
    pub group: Option<String>,
    /// Kind, default `Service`.
    #[serde(default)]
    pub kind: Option<String>,
    /// Name.
    pub name: String,
    /// Namespace, default the referrer's.
    #[serde(default)]
    pub namespace: Option<String>,
    /// Port.
    #[serde(default)]
    pub port: Option<u16>,
}

/// Gateway API `SecretObjectReference`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct SecretObjectReference {
    /// Group (empty is the core group).
    #[serde(default)]
    pub group: Option<String>,
    /// Kind, default `Secret`.
    #[serde(default)]
    pub kind: Option<String>,
    /// Name.
    pub name: String,
    /// Namespace, default the referrer's.
    #[serde(default)]
    pub namespace: Option<String>,
}

impl SecretObjectReference {
    /// `namespace/name`, with the referrer's namespace as default.
    pub fn key(&self, default_ns: &str) -> String {
        format!(
            "{}/{}",
            non_empty(self.namespace.as_deref()).unwrap_or(default_ns),
            self.name
        )
    }
}

/// Gateway API `LocalPolicyTargetReference` (with optional `sectionName`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct PolicyTargetReference {
    /// Group of the target.
    #[serde(default)]
    pub group: String,
    /// Kind of the target.
    pub kind: String,
    /// Name of the target.
    pub name: String,
    /// Section of the target.
    #[serde(default)]
    pub section_name: Option<String>,
}

/// Gateway API `HTTPHeaderMatch` type.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub enum HeaderMatchType {
    /// Byte-exact value (header names are case-insensitive).
    #[default]
    Exact,
    /// RE2 regular expression, anchored to the whole value.
    RegularExpression,
}

/// Gateway API `HTTPHeaderMatch`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct HttpHeaderMatch {
    /// Match type, default `Exact`.
    #[serde(default, rename = "type")]
    pub match_type: HeaderMatchType,
    /// Header name.
    pub name: String,
    /// Value or pattern.
    pub value: String,
}

/// Gateway API `HTTPHeader`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct HttpHeader {
    /// Header name.
    pub name: String,
    /// Header value.
    pub value: String,
}

/// Gateway API `HTTPRouteTimeouts`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct HttpRouteTimeouts {
    /// Whole-request timeout (Gateway API duration, e.g. `60s`).
    #[serde(default)]
    pub request: Option<String>,
    /// Per upstream attempt timeout.
    #[serde(default)]
    pub backend_request: Option<String>,
}

/// Returns `Some(s)` unless `s` is `None` or empty.
pub(crate) fn non_empty(s: Option<&str>) -> Option<&str> {
    s.filter(|s| !s.is_empty())
}

/// A duration string that failed to parse.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DurationError(pub String);

impl fmt::Display for DurationError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "invalid duration {:?}: expected a Gateway API duration such as \"500ms\", \"30s\", \"2m\" or \"1h30m\"",
            self.0
        )
    }
}

/// Parses a Gateway API / Envoy Gateway duration (`1h30m`, `120s`, `100ms`, `0s`).
///
/// Units `h`, `m`, `s`, `ms` are accepted (and `us`/`ns` for Go-style durations), with
/// optional fractional values, as Envoy Gateway accepts `time.ParseDuration` strings.
pub fn parse_duration(s: &str) -> Result<Duration, DurationError> {
    let err = || DurationError(s.to_string());
    let t = s.trim();
    if t.is_empty() {
        return Err(err());
    }
    if t == "0" {
        return Ok(Duration::ZERO);
    }
    let bytes = t.as_bytes();
    let mut i = 0;
    let mut total = 0f64;
    while i < bytes.len() {
        let start = i;
        while i < bytes.len() && (bytes[i].is_ascii_digit() || bytes[i] == b'.') {
            i += 1;
        }
        if start == i {
            return Err(err());
        }
        let num: f64 = t[start..i].parse().map_err(|_| err())?;
        let ustart = i;
        while i < bytes.len() && bytes[i].is_ascii_alphabetic() {
            i += 1;
        }
        let scale = match &t[ustart..i] {
            "h" => 3600.0,
            "m" => 60.0,
            "s" => 1.0,
            "ms" => 1e-3,
            "us" | "µs" => 1e-6,
            "ns" => 1e-9,
            _ => return Err(err()),
        };
        total += num * scale;
    }
    if !total.is_finite() || total < 0.0 {
        return Err(err());
    }
    Ok(Duration::from_secs_f64(total))
}

/// Parses a Kubernetes quantity as a byte count (`50Mi`, `32Ki`, `1G`, `1024`).
pub fn parse_quantity_bytes(s: &str) -> Option<u64> {
    let t = s.trim();
    let split = t
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(t.len());
    let (num, suffix) = t.split_at(split);
    let n: f64 = num.parse().ok()?;
    let mult: f64 = match suffix {
        "" => 1.0,
        "Ki" => 1024.0,
        "Mi" => 1024.0 * 1024.0,
        "Gi" => 1024.0 * 1024.0 * 1024.0,
        "Ti" => 1024.0f64.powi(4),
        "k" => 1e3,
        "M" => 1e6,
        "G" => 1e9,
        "T" => 1e12,
        _ => return None,
    };
    let v = n * mult;
    (v.is_finite() && v >= 0.0).then_some(v as u64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        assert_eq!(parse_duration("60s").unwrap(), Duration::from_secs(60));
        assert_eq!(parse_duration("3m").unwrap(), Duration::from_secs(180));
        assert_eq!(parse_duration("1h30m").unwrap(), Duration::from_secs(5400));
        assert_eq!(parse_duration("100ms").unwrap(), Duration::from_millis(100));
        assert!(parse_duration("10").is_err());
        assert!(parse_duration("abc").is_err());
        assert!(parse_duration("5x").is_err());
    }

    proptest::proptest! {
        #[test]
        fn duration_components_add_up(h in 0u64..100, m in 0u64..60, s in 0u64..60, ms in 0u64..1000) {
            let text = format!("{h}h{m}m{s}s{ms}ms");
            let want = Duration::from_millis(((h * 60 + m) * 60 + s) * 1000 + ms);
            proptest::prop_assert_eq!(parse_duration(&text).unwrap(), want);
        }

        #[test]
        fn duration_parser_never_panics(text in ".{0,12}") {
            let _ = parse_duration(&text);
        }
    }

    #[test]
    fn quantities() {
        assert_eq!(parse_quantity_bytes("50Mi"), Some(50 * 1024 * 1024));
        assert_eq!(parse_quantity_bytes("1024"), Some(1024));
        assert_eq!(parse_quantity_bytes("1k"), Some(1000));
        assert_eq!(parse_quantity_bytes("1Zi"), None);
    }
}
