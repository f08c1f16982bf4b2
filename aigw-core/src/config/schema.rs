//! Every schema error of a document, not just the first.
//!
//! serde stops at the first unknown field, wrong type or missing field. To report all
//! of them, a document is deserialized, the offending node is repaired in a scratch
//! copy (an unknown field removed; a bad value removed, or replaced by a stand-in of
//! the expected type when the field is required), and deserialization runs again until
//! it succeeds. Errors inside a stand-in are consequences of the repair and are not
//! reported. Each error keeps the path of the node it names.

use serde::de::DeserializeOwned;
use serde_json::{Map, Value};
use serde_path_to_error::Segment as PathSegment;
use std::collections::HashMap;

/// Bounds the repair loop; a document with more schema errors than this reports the
/// first ones.
const MAX_ROUNDS: usize = 512;
/// Stand-ins tried per node before giving up on the document.
const MAX_STAND_INS: usize = 8;

/// One schema error: the field path and what is wrong with it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct SchemaError {
    /// `spec.rules[0].backendRefs[1].weight`, including an unknown or missing field's
    /// own name.
    pub path: String,
    /// What is wrong.
    pub message: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
enum Seg {
    Key(String),
    Index(usize),
}

fn display(path: &[Seg]) -> String {
    let mut out = String::new();
    for s in path {
        match s {
            Seg::Key(k) => {
                if !out.is_empty() {
                    out.push('.');
                }
                out.push_str(k);
            }
            Seg::Index(i) => {
                out.push('[');
                out.push_str(&i.to_string());
                out.push(']');
            }
        }
    }
    out
}

enum Kind {
    Unknown(String),
    Missing(String),
    Other,
}

/// Deserializes `doc` as `T`, or returns every schema error in document order.
pub(crate) fn deserialize_all<T: DeserializeOwned>(doc: &Value) -> Result<T, Vec<SchemaError>> {
    // The common case, a valid document, costs one pass and no copy.
    let first = match serde_path_to_error::deserialize::<_, T>(doc) {
        Ok(v) => return Ok(v),
        Err(e) => e,
    };
    let mut work = doc.clone();
    let mut errors = Vec::new();
    let mut stand_in_roots: Vec<Vec<Seg>> = Vec::new();
    // Per node: whether it was removed, and the stand-ins already tried.
    let mut attempts: HashMap<Vec<Seg>, (bool, Vec<Value>)> = HashMap::new();
    let mut next = Some(first);
    for _ in 0..MAX_ROUNDS {
        let Some(err) = next.take() else { break };
        let message = err.inner().to_string();
        let Some(mut path) = segments(err.path()) else {
            errors.push(SchemaError {
                path: err.path().to_string().trim_start_matches('.').to_string(),
                message: describe(&message),
            });
            break;
        };
        let kind = classify(&message);
        match &kind {
            Kind::Unknown(name) => {
                if path.last() != Some(&Seg::Key(name.clone())) {
                    path.push(Seg::Key(name.clone()));
                }
            }
            Kind::Missing(name) => path.push(Seg::Key(name.clone())),
            Kind::Other => {}
        }
        let consequential = stand_in_roots.iter().any(|r| path.starts_with(r));
        if !consequential {
            errors.push(SchemaError {
                path: display(&path),
                message: describe(&message),
            });
        }
        let repaired = match kind {
            Kind::Unknown(_) => remove(&mut work, &path),
            Kind::Missing(_) | Kind::Other => {
                let (removed, tried) = attempts.entry(path.clone()).or_default();
                let removable =
                    matches!(kind, Kind::Other) && !*removed && !consequential && is_key(&path);
                if !consequential {
                    stand_in_roots.push(path.clone());
                }
                if removable {
                    *removed = true;
                    remove(&mut work, &path)
                } else {
                    let pick = stand_ins(&message).into_iter().find(|v| !tried.contains(v));
                    match pick {
                        Some(v) if tried.len() < MAX_STAND_INS => {
                            tried.push(v.clone());
                            set(&mut work, &path, v)
                        }
                        _ => false,
                    }
                }
            }
        };
        if !repaired || path.is_empty() {
            break;
        }
        match serde_path_to_error::deserialize::<_, T>(&work) {
            Ok(_) => break,
            Err(e) => next = Some(e),
        }
    }
    Err(errors)
}

fn is_key(path: &[Seg]) -> bool {
    matches!(path.last(), Some(Seg::Key(_)))
}

fn segments(path: &serde_path_to_error::Path) -> Option<Vec<Seg>> {
    path.iter()
        .map(|s| match s {
            PathSegment::Seq { index } => Some(Seg::Index(*index)),
            PathSegment::Map { key } => Some(Seg::Key(key.clone())),
            _ => None,
        })
        .collect()
}

fn backticked(s: &str) -> Option<(&str, &str)> {
    let (_, rest) = s.split_once('`')?;
    rest.split_once('`')
}

fn classify(message: &str) -> Kind {
    if let Some(rest) = message.strip_prefix("unknown field ")
        && let Some((name, _)) = backticked(rest)
    {
        return Kind::Unknown(name.to_string());
    }
    if let Some(rest) = message.strip_prefix("missing field ")
        && let Some((name, _)) = backticked(rest)
    {
        return Kind::Missing(name.to_string());
    }
    Kind::Other
}

/// The user-facing text: serde's wording, shortened where the path already says it.
fn describe(message: &str) -> String {
    for (prefix, text) in [
        ("unknown field ", "unknown field"),
        ("missing field ", "required field is missing"),
    ] {
        if let Some(rest) = message.strip_prefix(prefix)
            && let Some((_, tail)) = backticked(rest)
        {
            let hint = tail.trim_start_matches(',').trim();
            return if hint.is_empty() {
                text.to_string()
            } else {
                format!("{text} ({hint})")
            };
        }
    }
    message.to_string()
}

/// Values to put in place of a bad or missing node, the likeliest first: what the
/// error says is expected, then one value of each JSON type.
fn stand_ins(message: &str) -> Vec<Value> {
    let expected = message
        .rsplit_once("expected ")
        .map(|(_, e)| e)
        .unwrap_or_default();
    let mut out = Vec::new();
    if let Some((variant, _)) = backticked(expected) {
        out.push(Value::String(variant.to_string()));
    }
    let hinted = if expected.contains("struct") || expected.contains("map") {
        Some(Value::Object(Map::new()))
    } else if expected.contains("sequence") {
        Some(Value::Array(Vec::new()))
    } else if expected.contains("bool") {
        Some(Value::Bool(false))
    } else if expected.contains("string") || expected.contains("char") {
        Some(Value::String(String::new()))
    } else if [
        "u8", "u16", "u32", "u64", "i32", "i64", "integer", "f64", "number",
    ]
    .iter()
    .any(|t| expected.contains(t))
    {
        Some(Value::from(0))
    } else {
        None
    };
    out.extend(hinted);
    for v in [
        Value::String(String::new()),
        Value::from(0),
        Value::Bool(false),
        Value::Object(Map::new()),
        Value::Array(Vec::new()),
    ] {
        if !out.contains(&v) {
            out.push(v);
        }
    }
    out
}

fn node_mut<'a>(mut v: &'a mut Value, path: &[Seg]) -> Option<&'a mut Value> {
    for s in path {
        v = match (s, v) {
            (Seg::Key(k), Value::Object(m)) => m.get_mut(k)?,
            (Seg::Index(i), Value::Array(a)) => a.get_mut(*i)?,
            _ => return None,
        };
    }
    Some(v)
}

fn remove(work: &mut Value, path: &[Seg]) -> bool {
    let Some((Seg::Key(k), parent)) = path.split_last() else {
        return false;
    };
    match node_mut(work, parent) {
        // Keep the order of the other keys: errors are found in document order.
        Some(Value::Object(m)) => m.shift_remove(k).is_some(),
        _ => false,
    }
}

fn set(work: &mut Value, path: &[Seg], value: Value) -> bool {
    let Some((last, parent)) = path.split_last() else {
        return false;
    };
    match (last, node_mut(work, parent)) {
        (Seg::Key(k), Some(Value::Object(m))) => {
            m.insert(k.clone(), value);
            true
        }
        (Seg::Index(i), Some(Value::Array(a))) if *i < a.len() => {
            a[*i] = value;
            true
        }
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde::Deserialize;

    #[derive(Debug, Deserialize)]
    #[serde(deny_unknown_fields, rename_all = "camelCase")]
    #[allow(dead_code)]
    struct Outer {
        name: String,
        #[serde(default)]
        items: Vec<Item>,
        #[serde(default)]
        inner: Option<Inner>,
    }

    #[derive(Debug, Deserialize)]
    #[serde(deny_unknown_fields, rename_all = "camelCase")]
    #[allow(dead_code)]
    struct Item {
        weight: u32,
        #[serde(default)]
        mode: Option<Mode>,
    }

    #[derive(Debug, Deserialize)]
    #[serde(deny_unknown_fields, rename_all = "camelCase")]
    #[allow(dead_code)]
    struct Inner {
        required: Item,
        #[serde(default)]
        flag: bool,
    }

    #[derive(Debug, Deserialize)]
    #[allow(dead_code)]
    enum Mode {
        Shared,
        Exclusive,
    }

    fn errors(v: Value) -> Vec<(String, String)> {
        deserialize_all::<Outer>(&v)
            .unwrap_err()
            .into_iter()
            .map(|e| (e.path, e.message))
            .collect()
    }

    #[test]
    fn every_kind_of_error_is_reported_once_with_its_path() {
        let got = errors(serde_json::json!({
            "name": "n",
            "extra": 1,
            "items": [
                {"weight": "heavy"},
                {"weight": 1, "mode": "Sometimes", "colour": "red"},
                {}
            ],
            "inner": {"flag": "yes"}
        }));
        let paths: Vec<&str> = got.iter().map(|(p, _)| p.as_str()).collect();
        assert_eq!(
            paths,
            [
                "extra",
                "items[0].weight",
                "items[1].mode",
                "items[1].colour",
                "items[2].weight",
                "inner.flag",
                "inner.required",
            ],
            "{got:#?}"
        );
        assert!(got[0].1.starts_with("unknown field (expected one of"));
        assert!(got[1].1.contains("invalid type"), "{}", got[1].1);
        assert!(got[2].1.contains("unknown variant"), "{}", got[2].1);
        assert_eq!(got[4].1, "required field is missing");
        assert_eq!(got[6].1, "required field is missing");
    }

    #[test]
    fn a_required_struct_that_is_missing_reports_only_itself() {
        let got = errors(serde_json::json!({"inner": {}}));
        assert_eq!(
            got.iter().map(|(p, _)| p.as_str()).collect::<Vec<_>>(),
            ["inner.required", "name"]
        );
    }

    #[test]
    fn a_valid_document_deserializes() {
        let v = serde_json::json!({"name": "n", "items": [{"weight": 2, "mode": "Shared"}]});
        let o = deserialize_all::<Outer>(&v).unwrap();
        assert_eq!(o.items[0].weight, 2);
    }

    proptest::proptest! {
        #[test]
        fn terminates_on_arbitrary_json(s in "[\\[\\]{}:,\"a-z0-9 ]{0,60}") {
            if let Ok(v) = serde_json::from_str::<Value>(&s) {
                let _ = deserialize_all::<Outer>(&v);
            }
        }
    }
}
