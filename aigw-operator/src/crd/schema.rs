//! From a schemars JSON Schema to a Kubernetes structural schema.
//!
//! schemars describes the Rust types as the YAML loader reads them; the API server needs
//! a *structural* OpenAPI v3 schema: no `$ref`, no `anyOf` around `null`, no
//! `additionalProperties: false`, a `type` on every node (or
//! `x-kubernetes-preserve-unknown-fields`), and integer formats it knows. The passes
//! here are pure functions over `serde_json::Value`, so every step is testable.

use serde_json::{Map, Value, json};

/// A schema split into its root and its named definitions, as schemars emits it.
#[derive(Debug, Clone)]
pub struct Generated {
    /// The root type's schema.
    pub root: Value,
    /// `$defs`, by type name.
    pub defs: Map<String, Value>,
}

/// Generates the schema of `T` with its definitions kept apart (so rules can be attached
/// per type before they are inlined), each node already cleaned of the constructs a
/// structural schema forbids.
pub fn generate<T: schemars::JsonSchema>() -> Generated {
    let generator = schemars::generate::SchemaSettings::draft2020_12().into_generator();
    let mut root = generator.into_root_schema_for::<T>().to_value();
    let defs = match root.as_object_mut().and_then(|o| o.remove("$defs")) {
        Some(Value::Object(defs)) => defs,
        _ => Map::new(),
    };
    let mut out = Generated { root, defs };
    clean(&mut out.root);
    for def in out.defs.values_mut() {
        clean(def);
    }
    out
}

/// Removes what schemars adds that a CRD must not carry, recursively (not through
/// `$ref`s: definitions are cleaned on their own).
pub fn clean(node: &mut Value) {
    if let Value::Bool(_) = node {
        // `serde_json::Value`: anything. A CRD keeps it as written.
        *node = json!({ "x-kubernetes-preserve-unknown-fields": true });
        return;
    }
    let Some(obj) = node.as_object_mut() else {
        return;
    };
    for key in ["$schema", "title", "default", "examples"] {
        obj.remove(key);
    }
    if obj.get("additionalProperties") == Some(&Value::Bool(false)) {
        obj.remove("additionalProperties");
    }
    if obj.get("additionalProperties") == Some(&Value::Bool(true)) {
        obj.insert(
            "additionalProperties".into(),
            json!({ "x-kubernetes-preserve-unknown-fields": true }),
        );
    }
    drop_null_type(obj);
    unwrap_nullable_any_of(obj);
    collapse_unit_enum(obj);
    fix_integer_format(obj);
    if let Some(Value::Object(props)) = obj.get_mut("properties") {
        for child in props.values_mut() {
            clean(child);
        }
    }
    for key in ["items", "additionalProperties"] {
        if let Some(child) = obj.get_mut(key) {
            clean(child);
        }
    }
    for key in ["anyOf", "oneOf", "allOf"] {
        if let Some(Value::Array(list)) = obj.get_mut(key) {
            list.iter_mut().for_each(clean);
        }
    }
    // A node that is only a description (an `Option<Value>` after its `null` branch went)
    // is free-form.
    if obj.keys().all(|k| k == "description") {
        obj.insert(
            "x-kubernetes-preserve-unknown-fields".into(),
            Value::Bool(true),
        );
    }
}

/// `"type": ["string", "null"]` → `"type": "string"`: absence is how a CRD says optional.
fn drop_null_type(obj: &mut Map<String, Value>) {
    if let Some(Value::Array(types)) = obj.get("type") {
        let rest: Vec<Value> = types
            .iter()
            .filter(|t| t.as_str() != Some("null"))
            .cloned()
            .collect();
        let ty = match rest.as_slice() {
            [one] => one.clone(),
            _ => Value::Array(rest),
        };
        obj.insert("type".into(), ty);
    }
    if let Some(Value::Array(values)) = obj.get_mut("enum") {
        values.retain(|v| !v.is_null());
    }
}

/// `anyOf: [X, {type: null}]` (an `Option` of a referenced type) → X's content.
fn unwrap_nullable_any_of(obj: &mut Map<String, Value>) {
    let Some(Value::Array(list)) = obj.get("anyOf") else {
        return;
    };
    let non_null: Vec<Value> = list
        .iter()
        .filter(|s| s.get("type").and_then(Value::as_str) != Some("null"))
        .cloned()
        .collect();
    if non_null.len() != 1 || non_null.len() == list.len() {
        return;
    }
    obj.remove("anyOf");
    if let Some(Value::Object(inner)) = non_null.into_iter().next() {
        for (k, v) in inner {
            obj.entry(k).or_insert(v);
        }
    }
}

/// A Rust enum of unit variants with documented variants comes out as `oneOf` of
/// `const`s; a structural schema wants `enum`. The variants' documentation moves into
/// the field's description, so `kubectl explain` still shows it.
fn collapse_unit_enum(obj: &mut Map<String, Value>) {
    let Some(Value::Array(variants)) = obj.get("oneOf") else {
        return;
    };
    let mut values = Vec::new();
    let mut docs = Vec::new();
    for v in variants {
        let Some(c) = v
            .get("const")
            .or_else(|| v.get("enum").and_then(|e| e.get(0)))
        else {
            return;
        };
        if let (Some(name), Some(doc)) = (c.as_str(), v.get("description").and_then(Value::as_str))
        {
            docs.push(format!("`{name}`: {doc}"));
        }
        values.push(c.clone());
    }
    obj.remove("oneOf");
    obj.insert("type".into(), Value::String("string".into()));
    obj.insert("enum".into(), Value::Array(values));
    if !docs.is_empty() {
        let head = obj
            .get("description")
            .and_then(Value::as_str)
            .map(|d| format!("{d}\n\n"))
            .unwrap_or_default();
        obj.insert(
            "description".into(),
            Value::String(format!("{head}{}", docs.join("\n"))),
        );
    }
}

/// Rust integer widths → the two formats Kubernetes knows; unsigned lower bounds of 0 are
/// implied by the rules where upstream states them.
fn fix_integer_format(obj: &mut Map<String, Value>) {
    let Some(format) = obj.get("format").and_then(Value::as_str).map(str::to_owned) else {
        return;
    };
    let (k8s, unsigned) = match format.as_str() {
        "int8" | "int16" | "int32" => ("int32", false),
        "uint8" | "uint16" | "uint32" => ("int32", true),
        "int64" => ("int64", false),
        "uint64" | "uint" => ("int64", true),
        "int" => ("int64", false),
        _ => return,
    };
    obj.insert("format".into(), Value::String(k8s.into()));
    if unsigned {
        obj.remove("minimum");
        if format == "uint16" {
            obj.remove("maximum");
        }
    }
}

/// Replaces every `$ref` with a copy of its definition; keys written next to the `$ref`
/// (rules attached at the use site) win over the definition's.
pub fn inline(node: &mut Value, defs: &Map<String, Value>, depth: usize) {
    let Some(obj) = node.as_object_mut() else {
        return;
    };
    if let Some(Value::String(reference)) = obj.remove("$ref") {
        let name = reference.rsplit('/').next().unwrap_or_default();
        if let Some(Value::Object(def)) = defs.get(name).cloned() {
            for (k, v) in def {
                match (obj.get_mut(&k), v) {
                    (None, v) => {
                        obj.insert(k, v);
                    }
                    (Some(Value::Array(site)), Value::Array(mut from_def))
                        if k == "x-kubernetes-validations" =>
                    {
                        // The type's own rules hold wherever it is used; the site adds to them.
                        from_def.append(site);
                        *site = from_def;
                    }
                    (Some(Value::Object(site)), Value::Object(from_def)) if k == "properties" => {
                        for (pk, pv) in from_def {
                            match site.get_mut(&pk) {
                                Some(existing) => merge(existing, pv),
                                None => {
                                    site.insert(pk, pv);
                                }
                            }
                        }
                    }
                    _ => {}
                }
            }
        }
    }
    if depth > 64 {
        return;
    }
    for (key, child) in obj.iter_mut() {
        match key.as_str() {
            "properties" => {
                if let Value::Object(props) = child {
                    for p in props.values_mut() {
                        inline(p, defs, depth + 1);
                    }
                }
            }
            "items" | "additionalProperties" => inline(child, defs, depth + 1),
            "anyOf" | "oneOf" | "allOf" => {
                if let Value::Array(list) = child {
                    for s in list {
                        inline(s, defs, depth + 1);
                    }
                }
            }
            _ => {}
        }
    }
}

/// Merges `add` into `base`: objects key by key (recursively), anything else replaced,
/// except `x-kubernetes-validations` lists, which are appended.
pub fn merge(base: &mut Value, add: Value) {
    match (base, add) {
        (Value::Object(b), Value::Object(a)) => {
            for (k, v) in a {
                match b.get_mut(&k) {
                    Some(Value::Array(existing)) if k == "x-kubernetes-validations" => {
                        if let Value::Array(more) = v {
                            existing.extend(more);
                        }
                    }
                    Some(existing) => merge(existing, v),
                    None => {
                        b.insert(k, v);
                    }
                }
            }
        }
        (b, a) => *b = a,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn optional_reference_becomes_its_target() {
        let mut node =
            json!({"anyOf": [{"$ref": "#/$defs/A"}, {"type": "null"}], "description": "d"});
        clean(&mut node);
        let mut defs = Map::new();
        defs.insert(
            "A".into(),
            json!({"type": "object", "properties": {"x": {"type": "string"}}}),
        );
        inline(&mut node, &defs, 0);
        assert_eq!(
            node,
            json!({"description": "d", "type": "object", "properties": {"x": {"type": "string"}}})
        );
    }

    #[test]
    fn nullable_scalars_and_unsigned_formats() {
        let mut node = json!({"type": ["integer", "null"], "format": "uint16", "minimum": 0, "maximum": 65535, "default": null});
        clean(&mut node);
        assert_eq!(node, json!({"type": "integer", "format": "int32"}));
    }

    #[test]
    fn free_form_values_are_preserved() {
        let mut node =
            json!({"type": "object", "properties": {"v": true}, "additionalProperties": false});
        clean(&mut node);
        assert_eq!(
            node,
            json!({"type": "object", "properties": {"v": {"x-kubernetes-preserve-unknown-fields": true}}})
        );
    }

    #[test]
    fn documented_unit_enums_become_enums() {
        let mut node = json!({"oneOf": [
            {"type": "string", "const": "A", "description": "first"},
            {"type": "string", "const": "B"}
        ]});
        clean(&mut node);
        assert_eq!(
            node,
            json!({"type": "string", "enum": ["A", "B"], "description": "`A`: first"})
        );
    }

    #[test]
    fn site_rules_win_over_definition() {
        let mut node = json!({"$ref": "#/$defs/A", "maxLength": 3});
        let mut defs = Map::new();
        defs.insert("A".into(), json!({"type": "string", "maxLength": 10}));
        inline(&mut node, &defs, 0);
        assert_eq!(node, json!({"type": "string", "maxLength": 3}));
    }
}
