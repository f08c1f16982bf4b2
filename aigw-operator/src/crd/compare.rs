//! Field-by-field comparison of two CRDs: ours against the upstream project's published
//! one. The result is rendered into `docs/crd-differences.md` by a test, so every
//! difference is listed and none appears or disappears unnoticed.

use serde_json::{Map, Value};
use std::collections::BTreeSet;
use std::fmt::Write as _;

/// One difference.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Difference {
    /// Field path (`spec.rules[].name`), or `(crd)` / `(version v1beta1)` for metadata.
    pub path: String,
    /// The attribute that differs (`maxItems`, `x-kubernetes-validations`, `field`).
    pub what: String,
    /// Our value (`-` when absent).
    pub ours: String,
    /// Upstream's value (`-` when absent).
    pub upstream: String,
}

/// Schema keywords compared (descriptions are ours to write and are not compared).
const ATTRIBUTES: &[&str] = &[
    "type",
    "format",
    "enum",
    "default",
    "minimum",
    "maximum",
    "minLength",
    "maxLength",
    "pattern",
    "minItems",
    "maxItems",
    "minProperties",
    "maxProperties",
    "required",
    "x-kubernetes-list-type",
    "x-kubernetes-list-map-keys",
    "x-kubernetes-map-type",
    "x-kubernetes-preserve-unknown-fields",
    "x-kubernetes-int-or-string",
    "nullable",
];

/// Compares two CRDs of the same kind. Versions are matched by name.
pub fn compare(ours: &Value, upstream: &Value) -> Vec<(String, Difference)> {
    let mut out = Vec::new();
    for key in ["group", "names", "scope"] {
        let (a, b) = (&ours["spec"][key], &upstream["spec"][key]);
        if a != b {
            out.push((all_versions(), diff("(crd)", key, Some(a), Some(b))));
        }
    }
    let (a, b) = (&ours["metadata"]["labels"], &upstream["metadata"]["labels"]);
    if a != b {
        out.push((all_versions(), diff("(crd)", "labels", Some(a), Some(b))));
    }
    let versions = |crd: &Value| -> Vec<Value> {
        crd["spec"]["versions"]
            .as_array()
            .cloned()
            .unwrap_or_default()
    };
    let theirs = versions(upstream);
    for v in versions(ours) {
        let name = v["name"].as_str().unwrap_or_default().to_string();
        let Some(u) = theirs.iter().find(|u| u["name"] == v["name"]) else {
            out.push((
                name.clone(),
                diff("(version)", "served", Some(&v["name"]), None),
            ));
            continue;
        };
        for key in [
            "served",
            "storage",
            "deprecated",
            "deprecationWarning",
            "subresources",
            "additionalPrinterColumns",
        ] {
            let (a, b) = (v.get(key), u.get(key));
            if a != b {
                out.push((name.clone(), diff("(version)", key, a, b)));
            }
        }
        let mut diffs = Vec::new();
        walk(
            "",
            &v["schema"]["openAPIV3Schema"],
            &u["schema"]["openAPIV3Schema"],
            &mut diffs,
        );
        out.extend(diffs.into_iter().map(|d| (name.clone(), d)));
    }
    for u in &theirs {
        if !versions(ours).iter().any(|v| v["name"] == u["name"]) {
            out.push((
                u["name"].as_str().unwrap_or_default().to_string(),
                diff("(version)", "served", None, Some(&u["name"])),
            ));
        }
    }
    out
}

fn all_versions() -> String {
    "all".to_string()
}

fn diff(path: &str, what: &str, ours: Option<&Value>, upstream: Option<&Value>) -> Difference {
    Difference {
        path: path.to_string(),
        what: what.to_string(),
        ours: show(ours),
        upstream: show(upstream),
    }
}

fn show(v: Option<&Value>) -> String {
    match v {
        None | Some(Value::Null) => "-".to_string(),
        Some(Value::String(s)) => s.clone(),
        Some(v) => v.to_string(),
    }
}

fn join(path: &str, key: &str) -> String {
    if path.is_empty() {
        key.to_string()
    } else {
        format!("{path}.{key}")
    }
}

/// Counts the fields below a schema node, to say how much a missing subtree holds.
fn count_fields(node: &Value) -> usize {
    let props = node
        .get("properties")
        .and_then(Value::as_object)
        .map(|p| p.values().map(|c| 1 + count_fields(c)).sum())
        .unwrap_or(0);
    let items = node.get("items").map(count_fields).unwrap_or(0);
    props + items
}

fn walk(path: &str, ours: &Value, upstream: &Value, out: &mut Vec<Difference>) {
    let here = if path.is_empty() { "(root)" } else { path };
    for attr in ATTRIBUTES {
        let (a, b) = (ours.get(*attr), upstream.get(*attr));
        let equal = match (a, b) {
            (Some(Value::Array(x)), Some(Value::Array(y))) if *attr == "required" => {
                x.iter().map(Value::to_string).collect::<BTreeSet<_>>()
                    == y.iter().map(Value::to_string).collect::<BTreeSet<_>>()
            }
            _ => a == b,
        };
        if !equal {
            out.push(diff(here, attr, a, b));
        }
    }
    compare_rules(here, ours, upstream, out);
    let empty = Map::new();
    let props = |n: &Value| n.get("properties").and_then(Value::as_object).cloned();
    let (po, pu) = (props(ours), props(upstream));
    let (po, pu) = (po.as_ref().unwrap_or(&empty), pu.as_ref().unwrap_or(&empty));
    let keys: BTreeSet<&String> = po.keys().chain(pu.keys()).collect();
    for key in keys {
        let child = join(path, key);
        match (po.get(key), pu.get(key)) {
            (Some(a), Some(b)) => walk(&child, a, b, out),
            (Some(a), None) => out.push(Difference {
                path: child,
                what: "field".into(),
                ours: nested("present", count_fields(a)),
                upstream: "-".into(),
            }),
            (None, Some(b)) => out.push(Difference {
                path: child,
                what: "field".into(),
                ours: "-".into(),
                upstream: nested("present", count_fields(b)),
            }),
            (None, None) => {}
        }
    }
    for sub in ["items", "additionalProperties"] {
        match (ours.get(sub), upstream.get(sub)) {
            (Some(a), Some(b)) if a.is_object() && b.is_object() => {
                let suffix = if sub == "items" { "[]" } else { "{}" };
                walk(&format!("{here}{suffix}"), a, b, out);
            }
            (a, b) if a.is_some() != b.is_some() => out.push(diff(
                here,
                sub,
                a.map(|_| Value::String("present".into())).as_ref(),
                b.map(|_| Value::String("present".into())).as_ref(),
            )),
            _ => {}
        }
    }
}

fn nested(word: &str, n: usize) -> String {
    if n == 0 {
        word.to_string()
    } else {
        format!("{word} (+{n} nested fields)")
    }
}

/// CEL rules are compared one by one (by rule text), so a reordering is no difference.
fn compare_rules(path: &str, ours: &Value, upstream: &Value, out: &mut Vec<Difference>) {
    let rules = |n: &Value| -> Vec<(String, String)> {
        n.get("x-kubernetes-validations")
            .and_then(Value::as_array)
            .map(|l| {
                l.iter()
                    .map(|r| {
                        (
                            r["rule"].as_str().unwrap_or_default().to_string(),
                            r["message"].as_str().unwrap_or_default().to_string(),
                        )
                    })
                    .collect()
            })
            .unwrap_or_default()
    };
    let (a, b) = (rules(ours), rules(upstream));
    for (rule, message) in &a {
        match b.iter().find(|(r, _)| r == rule) {
            None => out.push(Difference {
                path: path.into(),
                what: "x-kubernetes-validations".into(),
                ours: format!("`{rule}` ({message})"),
                upstream: "-".into(),
            }),
            Some((_, m)) if m != message => out.push(Difference {
                path: path.into(),
                what: "x-kubernetes-validations message".into(),
                ours: message.clone(),
                upstream: m.clone(),
            }),
            Some(_) => {}
        }
    }
    for (rule, message) in &b {
        if !a.iter().any(|(r, _)| r == rule) {
            out.push(Difference {
                path: path.into(),
                what: "x-kubernetes-validations".into(),
                ours: "-".into(),
                upstream: format!("`{rule}` ({message})"),
            });
        }
    }
}

/// Renders one kind's differences as a Markdown table; a difference found in every
/// version is listed once.
pub fn markdown(kind: &str, versions: &[&str], diffs: &[(String, Difference)]) -> String {
    let mut rows: Vec<(Difference, BTreeSet<String>)> = Vec::new();
    for (v, d) in diffs {
        match rows.iter_mut().find(|(x, _)| x == d) {
            Some((_, vs)) => {
                vs.insert(v.clone());
            }
            None => rows.push((d.clone(), BTreeSet::from([v.clone()]))),
        }
    }
    let mut out = format!("### {kind}\n\n");
    if rows.is_empty() {
        out.push_str("No differences.\n\n");
        return out;
    }
    out.push_str("| version | field | attribute | ours | upstream |\n|---|---|---|---|---|\n");
    for (d, vs) in rows {
        let in_all = vs.contains("all") || versions.iter().all(|v| vs.contains(*v));
        let label = if in_all {
            "all".to_string()
        } else {
            vs.into_iter().collect::<Vec<_>>().join(", ")
        };
        let _ = writeln!(
            out,
            "| {label} | `{}` | {} | {} | {} |",
            d.path,
            d.what,
            cell(&d.ours),
            cell(&d.upstream)
        );
    }
    out.push('\n');
    out
}

fn cell(s: &str) -> String {
    let escaped = s.replace('|', "\\|").replace('\n', " ");
    if escaped.starts_with('`') || escaped == "-" || escaped.starts_with("present") {
        escaped
    } else {
        format!("`{escaped}`")
    }
}
