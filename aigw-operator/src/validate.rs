//! What the API server does with an object before storing it, for a structural
//! OpenAPI v3 schema: apply `default`s, then check types, unknown fields, the OpenAPI
//! constraints, list semantics and the `x-kubernetes-validations` CEL rules.
//!
//! Used by the tests to hold every generated object (HTTPRoutes, Envoy Gateway policies,
//! our own kinds) against the CRDs it will meet in a cluster, and to show that the
//! manifests the loader rejects are rejected by the CRDs too.

use serde::ser::{Serialize, SerializeMap, SerializeSeq, Serializer};
use serde_json::{Map, Value};
use std::collections::HashSet;
use std::fmt;
use std::sync::Arc;

/// One failed check.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Violation {
    /// The field (`spec.rules[0].name`).
    pub path: String,
    /// What is wrong, in the API server's words where it has them.
    pub message: String,
}

impl fmt::Display for Violation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.path, self.message)
    }
}

/// Fills absent fields that have a `default`, recursively, as the API server does before
/// validating.
pub fn apply_defaults(schema: &Value, value: &mut Value) {
    match value {
        Value::Object(obj) => {
            if let Some(Value::Object(props)) = schema.get("properties") {
                for (name, sub) in props {
                    if !obj.contains_key(name)
                        && let Some(d) = sub.get("default")
                    {
                        obj.insert(name.clone(), d.clone());
                    }
                    if let Some(child) = obj.get_mut(name) {
                        apply_defaults(sub, child);
                    }
                }
            }
            if let Some(extra @ Value::Object(_)) = schema.get("additionalProperties") {
                for child in obj.values_mut() {
                    apply_defaults(extra, child);
                }
            }
        }
        Value::Array(items) => {
            if let Some(sub) = schema.get("items") {
                items.iter_mut().for_each(|i| apply_defaults(sub, i));
            }
        }
        _ => {}
    }
}

/// Defaults `value` and validates it against `schema`; every violation is returned.
pub fn check(schema: &Value, value: &Value) -> Vec<Violation> {
    let mut v = value.clone();
    apply_defaults(schema, &mut v);
    let mut out = Vec::new();
    let mut cel = Cel::default();
    walk(schema, &v, "", &mut out, &mut cel);
    out
}

fn child(path: &str, key: &str) -> String {
    if path.is_empty() {
        key.to_string()
    } else {
        format!("{path}.{key}")
    }
}

fn push(out: &mut Vec<Violation>, path: &str, message: impl Into<String>) {
    out.push(Violation {
        path: if path.is_empty() {
            "(root)".into()
        } else {
            path.into()
        },
        message: message.into(),
    });
}

fn type_ok(schema: &Value, value: &Value) -> bool {
    if schema.get("x-kubernetes-int-or-string") == Some(&Value::Bool(true)) {
        return value.is_string() || value.as_i64().is_some() || value.as_u64().is_some();
    }
    match schema.get("type").and_then(Value::as_str) {
        None => true,
        Some("object") => value.is_object(),
        Some("array") => value.is_array(),
        Some("string") => value.is_string(),
        Some("boolean") => value.is_boolean(),
        Some("integer") => value.as_i64().is_some() || value.as_u64().is_some(),
        Some("number") => value.is_number(),
        Some(_) => false,
    }
}

fn walk(schema: &Value, value: &Value, path: &str, out: &mut Vec<Violation>, cel: &mut Cel) {
    if value.is_null() {
        if schema.get("nullable") != Some(&Value::Bool(true)) {
            push(out, path, "Invalid value: null");
        }
        return;
    }
    if !type_ok(schema, value) {
        let want = schema
            .get("type")
            .and_then(Value::as_str)
            .unwrap_or("int-or-string");
        push(out, path, format!("Invalid value: must be of type {want}"));
        return;
    }
    scalar_constraints(schema, value, path, out);
    match value {
        Value::Object(obj) => object(schema, obj, path, out, cel),
        Value::Array(items) => array(schema, items, path, out, cel),
        _ => {}
    }
    if let Some(Value::Array(rules)) = schema.get("x-kubernetes-validations") {
        for rule in rules {
            let text = rule["rule"].as_str().unwrap_or_default();
            let message = rule["message"].as_str().unwrap_or(text);
            match cel.eval(text, value) {
                Ok(true) => {}
                Ok(false) => push(out, path, format!("Invalid value: {message}")),
                Err(e) => push(
                    out,
                    path,
                    format!("rule `{text}` could not be evaluated: {e}"),
                ),
            }
        }
    }
}

fn scalar_constraints(schema: &Value, value: &Value, path: &str, out: &mut Vec<Violation>) {
    if let Some(Value::Array(allowed)) = schema.get("enum")
        && !allowed.contains(value)
    {
        push(out, path, format!("Unsupported value: {value}"));
    }
    if let Some(s) = value.as_str() {
        let len = s.chars().count() as u64;
        if let Some(max) = schema.get("maxLength").and_then(Value::as_u64)
            && len > max
        {
            push(
                out,
                path,
                format!("Too long: may not be more than {max} bytes"),
            );
        }
        if let Some(min) = schema.get("minLength").and_then(Value::as_u64)
            && len < min
        {
            push(
                out,
                path,
                format!("Invalid value: should be at least {min} chars long"),
            );
        }
        if let Some(p) = schema.get("pattern").and_then(Value::as_str) {
            match regex::Regex::new(p) {
                Ok(re) if !re.is_match(s) => {
                    push(out, path, format!("Invalid value: should match '{p}'"))
                }
                Ok(_) => {}
                Err(e) => push(out, path, format!("pattern {p} does not compile: {e}")),
            }
        }
    }
    if let Some(n) = value.as_f64() {
        if let Some(min) = schema.get("minimum").and_then(Value::as_f64)
            && n < min
        {
            push(
                out,
                path,
                format!("Invalid value: should be greater than or equal to {min}"),
            );
        }
        if let Some(max) = schema.get("maximum").and_then(Value::as_f64)
            && n > max
        {
            push(
                out,
                path,
                format!("Invalid value: should be less than or equal to {max}"),
            );
        }
    }
}

fn object(
    schema: &Value,
    obj: &Map<String, Value>,
    path: &str,
    out: &mut Vec<Violation>,
    cel: &mut Cel,
) {
    let props = schema.get("properties").and_then(Value::as_object);
    let extra = schema.get("additionalProperties");
    let preserve = schema.get("x-kubernetes-preserve-unknown-fields") == Some(&Value::Bool(true));
    if let Some(Value::Array(req)) = schema.get("required") {
        for r in req.iter().filter_map(Value::as_str) {
            if !obj.contains_key(r) {
                push(out, &child(path, r), "Required value");
            }
        }
    }
    let count = obj.len() as u64;
    if let Some(max) = schema.get("maxProperties").and_then(Value::as_u64)
        && count > max
    {
        push(
            out,
            path,
            format!("Too many: must have at most {max} items"),
        );
    }
    if let Some(min) = schema.get("minProperties").and_then(Value::as_u64)
        && count < min
    {
        push(
            out,
            path,
            format!("Invalid value: should have at least {min} properties"),
        );
    }
    for (k, v) in obj {
        let here = child(path, k);
        // The object's own metadata is the API server's business.
        if path.is_empty() && matches!(k.as_str(), "apiVersion" | "kind" | "metadata") {
            continue;
        }
        match (props.and_then(|p| p.get(k)), extra) {
            (Some(sub), _) => walk(sub, v, &here, out, cel),
            (None, Some(sub @ Value::Object(_))) => walk(sub, v, &here, out, cel),
            _ if preserve => {}
            _ => push(out, &here, "unknown field"),
        }
    }
}

fn array(schema: &Value, items: &[Value], path: &str, out: &mut Vec<Violation>, cel: &mut Cel) {
    let n = items.len() as u64;
    if let Some(max) = schema.get("maxItems").and_then(Value::as_u64)
        && n > max
    {
        push(
            out,
            path,
            format!("Too many: {n}: must have at most {max} items"),
        );
    }
    if let Some(min) = schema.get("minItems").and_then(Value::as_u64)
        && n < min
    {
        push(
            out,
            path,
            format!("Invalid value: should have at least {min} items"),
        );
    }
    match schema.get("x-kubernetes-list-type").and_then(Value::as_str) {
        Some("set") => {
            let mut seen = HashSet::new();
            for (i, item) in items.iter().enumerate() {
                if !seen.insert(item.to_string()) {
                    push(
                        out,
                        &format!("{path}[{i}]"),
                        format!("Duplicate value: {item}"),
                    );
                }
            }
        }
        Some("map") => {
            let keys: Vec<&str> = schema["x-kubernetes-list-map-keys"]
                .as_array()
                .map(|k| k.iter().filter_map(Value::as_str).collect())
                .unwrap_or_default();
            let mut seen = HashSet::new();
            for (i, item) in items.iter().enumerate() {
                let key: Vec<String> = keys.iter().map(|k| item[*k].to_string()).collect();
                if !seen.insert(key.clone()) {
                    push(
                        out,
                        &format!("{path}[{i}]"),
                        format!("Duplicate value: {}", key.join(",")),
                    );
                }
            }
        }
        _ => {}
    }
    if let Some(sub) = schema.get("items") {
        for (i, item) in items.iter().enumerate() {
            walk(sub, item, &format!("{path}[{i}]"), out, cel);
        }
    }
}

/// CEL with the Kubernetes conventions: `self` is the node, integers are `int`.
#[derive(Default)]
struct Cel {
    programs: std::collections::HashMap<String, Result<Arc<cel::Program>, String>>,
}

impl Cel {
    fn eval(&mut self, rule: &str, value: &Value) -> Result<bool, String> {
        let program = self
            .programs
            .entry(rule.to_string())
            .or_insert_with(|| {
                let mut env = cel::Env::stdlib();
                env.add_extension(cel::extensions::strings)
                    .map_err(|e| e.to_string())?;
                env.compile(rule).map(Arc::new).map_err(|e| e.to_string())
            })
            .clone()?;
        let mut env = cel::Env::stdlib();
        env.add_extension(cel::extensions::strings)
            .map_err(|e| e.to_string())?;
        let mut ctx = cel::Context::with_env(Arc::new(env));
        let this = cel::to_value(AsCel(value)).map_err(|e| e.to_string())?;
        ctx.add_variable_from_value("self", this);
        match program.execute(&ctx) {
            Ok(cel::Value::Bool(b)) => Ok(b),
            Ok(other) => Err(format!("rule returned {:?}, not a bool", other.type_of())),
            Err(e) => Err(e.to_string()),
        }
    }
}

/// JSON as Kubernetes hands it to CEL: whole numbers are `int`, not `uint`.
struct AsCel<'a>(&'a Value);

impl Serialize for AsCel<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self.0 {
            Value::Null => s.serialize_unit(),
            Value::Bool(b) => s.serialize_bool(*b),
            Value::Number(n) => match n.as_i64() {
                Some(i) => s.serialize_i64(i),
                None => s.serialize_f64(n.as_f64().unwrap_or(f64::NAN)),
            },
            Value::String(t) => s.serialize_str(t),
            Value::Array(items) => {
                let mut seq = s.serialize_seq(Some(items.len()))?;
                for i in items {
                    seq.serialize_element(&AsCel(i))?;
                }
                seq.end()
            }
            Value::Object(obj) => {
                let mut map = s.serialize_map(Some(obj.len()))?;
                for (k, v) in obj {
                    map.serialize_entry(k, &AsCel(v))?;
                }
                map.end()
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn schema() -> Value {
        json!({
            "type": "object",
            "properties": {
                "kind": { "type": "string", "default": "Gateway" },
                "n": { "type": "integer", "minimum": 0 },
                "t": { "type": "string", "pattern": "^([0-9]{1,5}(h|m|s|ms)){1,4}$" },
                "u": { "type": "string" },
            },
            "x-kubernetes-validations": [
                { "rule": "self.kind == 'Gateway'", "message": "only Gateway" },
                { "rule": "!has(self.t) || !has(self.u) || duration(self.t) <= duration(self.u)", "message": "t <= u" },
                { "rule": "!has(self.u) || self.u.lowerAscii() == self.u", "message": "lower" },
            ]
        })
    }

    #[test]
    fn defaults_apply_before_rules() {
        assert_eq!(check(&schema(), &json!({ "n": 1 })), vec![]);
    }

    #[test]
    fn constraints_and_rules_report_paths() {
        let v = check(
            &schema(),
            &json!({ "kind": "Service", "n": -1, "extra": 1, "t": "2m", "u": "60S" }),
        );
        let text: Vec<String> = v.iter().map(ToString::to_string).collect();
        assert!(
            text.iter()
                .any(|t| t.starts_with("n: Invalid value: should be greater")),
            "{text:?}"
        );
        assert!(text.iter().any(|t| t == "extra: unknown field"), "{text:?}");
        assert!(text.iter().any(|t| t.contains("only Gateway")), "{text:?}");
        assert!(text.iter().any(|t| t.contains("lower")), "{text:?}");
    }

    #[test]
    fn durations_compare() {
        assert!(check(&schema(), &json!({ "t": "2m", "u": "1h" })).is_empty());
        let v = check(&schema(), &json!({ "t": "2h", "u": "1h" }));
        assert!(v.iter().any(|v| v.message.contains("t <= u")), "{v:?}");
    }
}
