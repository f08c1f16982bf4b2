//! Header and body mutations, merged route-level over backend-level.
//!
//! Merging follows upstream (`mergeHeaderMutations` / `mergeBodyMutations`): start from
//! the backend's, then the route's entries replace same-named ones (header names are
//! case-insensitive); a name the route sets is no longer removed and vice versa.

use super::aigateway::{HttpBodyMutation, HttpHeaderMutation};
use crate::error::{Error, Result};
use crate::translate::HeaderMutation;
use bytes::Bytes;
use http::{HeaderName, HeaderValue};
use serde_json::Value;

/// A merged, validated header mutation.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct HeaderMutationConfig {
    /// Headers to set, names lower-cased.
    pub set: Vec<(String, String)>,
    /// Headers to remove, lower-cased.
    pub remove: Vec<String>,
}

impl HeaderMutationConfig {
    /// Merges a route-level mutation over a backend-level one.
    pub fn merge(route: Option<&HttpHeaderMutation>, backend: Option<&HttpHeaderMutation>) -> Self {
        let mut out = Self::default();
        for m in [backend, route].into_iter().flatten() {
            for h in &m.set {
                let name = h.name.to_ascii_lowercase();
                out.remove.retain(|r| *r != name);
                out.set.retain(|(n, _)| *n != name);
                out.set.push((name, h.value.clone()));
            }
            for r in &m.remove {
                let name = r.to_ascii_lowercase();
                out.set.retain(|(n, _)| *n != name);
                if !out.remove.contains(&name) {
                    out.remove.push(name);
                }
            }
        }
        out
    }

    /// Whether nothing changes.
    pub fn is_empty(&self) -> bool {
        self.set.is_empty() && self.remove.is_empty()
    }

    /// The mutation in the translator's form. Names and values were validated at load;
    /// any that are not valid HTTP are skipped.
    pub fn to_mutation(&self) -> HeaderMutation {
        let mut m = HeaderMutation::default();
        for (n, v) in &self.set {
            if let (Ok(n), Ok(v)) = (
                HeaderName::try_from(n.as_str()),
                HeaderValue::try_from(v.as_str()),
            ) {
                m.set(n, v);
            }
        }
        for n in &self.remove {
            if let Ok(n) = HeaderName::try_from(n.as_str()) {
                m.remove(n);
            }
        }
        m
    }
}

/// A merged body mutation of top-level JSON fields.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct BodyMutation {
    /// Fields to set with their parsed JSON values.
    pub set: Vec<(String, Value)>,
    /// Fields to remove.
    pub remove: Vec<String>,
}

impl BodyMutation {
    /// Merges a route-level mutation over a backend-level one. Values that are not JSON
    /// are rejected by validation; here they are kept as JSON strings.
    pub fn merge(route: Option<&HttpBodyMutation>, backend: Option<&HttpBodyMutation>) -> Self {
        let mut out = Self::default();
        for m in [backend, route].into_iter().flatten() {
            for f in &m.set {
                let value = serde_json::from_str(&f.value)
                    .unwrap_or_else(|_| Value::String(f.value.clone()));
                out.remove.retain(|r| *r != f.path);
                out.set.retain(|(p, _)| *p != f.path);
                out.set.push((f.path.clone(), value));
            }
            for r in &m.remove {
                out.set.retain(|(p, _)| p != r);
                if !out.remove.contains(r) {
                    out.remove.push(r.clone());
                }
            }
        }
        out
    }

    /// Whether nothing changes.
    pub fn is_empty(&self) -> bool {
        self.set.is_empty() && self.remove.is_empty()
    }

    /// Applies the mutation to a JSON object body. A no-op mutation returns the same
    /// `Bytes` without parsing.
    ///
    /// ```
    /// use aigw_core::config::BodyMutation;
    /// let m = BodyMutation { set: vec![("service_tier".into(), "scale".into())], remove: vec!["user".into()] };
    /// let out = m.apply(&bytes::Bytes::from_static(br#"{"model":"m","user":"u"}"#)).unwrap();
    /// assert_eq!(&out[..], br#"{"model":"m","service_tier":"scale"}"#);
    /// ```
    pub fn apply(&self, body: &Bytes) -> Result<Bytes> {
        if self.is_empty() {
            return Ok(body.clone());
        }
        let mut value: Value = serde_json::from_slice(body)
            .map_err(|e| Error::bad_request(format!("request body is not JSON: {e}")))?;
        let Some(obj) = value.as_object_mut() else {
            return Err(Error::bad_request("request body is not a JSON object"));
        };
        for r in &self.remove {
            obj.shift_remove(r);
        }
        for (k, v) in &self.set {
            obj.insert(k.clone(), v.clone());
        }
        serde_json::to_vec(&value)
            .map(Bytes::from)
            .map_err(|e| Error::internal(format!("re-encoding mutated body: {e}")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{HttpBodyField, HttpHeader};

    #[test]
    fn route_wins_over_backend() {
        let backend = HttpHeaderMutation {
            set: vec![
                HttpHeader {
                    name: "X-A".into(),
                    value: "backend".into(),
                },
                HttpHeader {
                    name: "x-b".into(),
                    value: "backend".into(),
                },
            ],
            remove: vec!["x-c".into()],
        };
        let route = HttpHeaderMutation {
            set: vec![
                HttpHeader {
                    name: "x-a".into(),
                    value: "route".into(),
                },
                HttpHeader {
                    name: "x-c".into(),
                    value: "route".into(),
                },
            ],
            remove: vec!["X-B".into()],
        };
        let m = HeaderMutationConfig::merge(Some(&route), Some(&backend));
        assert_eq!(
            m.set,
            vec![
                ("x-a".into(), "route".into()),
                ("x-c".into(), "route".into())
            ]
        );
        assert_eq!(m.remove, vec!["x-b".to_string()]);
    }

    #[test]
    fn body_noop_returns_same_bytes() {
        let b = Bytes::from_static(b"not json");
        let out = BodyMutation::default().apply(&b).unwrap();
        assert_eq!(out.as_ptr(), b.as_ptr());
    }

    #[test]
    fn body_merge_route_wins() {
        let backend = HttpBodyMutation {
            set: vec![HttpBodyField {
                path: "t".into(),
                value: "1".into(),
            }],
            remove: vec!["x".into()],
        };
        let route = HttpBodyMutation {
            set: vec![HttpBodyField {
                path: "t".into(),
                value: "2".into(),
            }],
            remove: vec![],
        };
        let m = BodyMutation::merge(Some(&route), Some(&backend));
        assert_eq!(m.set, vec![("t".to_string(), serde_json::json!(2))]);
        let out = m.apply(&Bytes::from_static(br#"{"x":1,"t":0}"#)).unwrap();
        assert_eq!(&out[..], br#"{"t":2}"#);
    }
}
