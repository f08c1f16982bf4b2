//! CustomResourceDefinitions for the `aigateway.envoyproxy.io` kinds, generated from the
//! configuration types of `aigw-core` (the same types the loader reads manifests into)
//! plus the API server's validation rules ([`rules`]).

pub mod compare;
pub mod rules;
pub mod schema;

use crate::error::{Error, Result};
use aigw_core::config::{
    AIGatewayRouteSpec, AIServiceBackendSpec, BackendSecurityPolicySpec, GatewayConfigSpec,
    MCPRouteSpec, QuotaPolicySpec,
};
use rules::{Action, Rule};
use schema::Generated;
use serde_json::{Map, Value, json};

/// The API group.
pub const GROUP: &str = "aigateway.envoyproxy.io";

/// One served version of a kind.
#[derive(Debug, Clone, Copy)]
pub struct Version {
    /// `v1alpha1`, `v1beta1`.
    pub name: &'static str,
    /// The version objects are stored in.
    pub storage: bool,
    /// Served with a deprecation warning.
    pub deprecated: bool,
}

const ALPHA_DEPRECATED: Version = Version {
    name: "v1alpha1",
    storage: false,
    deprecated: true,
};
const BETA: Version = Version {
    name: "v1beta1",
    storage: true,
    deprecated: false,
};
const ALPHA_ONLY: Version = Version {
    name: "v1alpha1",
    storage: true,
    deprecated: false,
};

/// One kind of the group.
#[derive(Debug, Clone, Copy)]
pub struct Kind {
    /// `AIGatewayRoute`.
    pub kind: &'static str,
    /// `aigatewayroutes`.
    pub plural: &'static str,
    /// `kubectl` short names.
    pub short_names: &'static [&'static str],
    /// A Gateway API direct policy (labelled `gateway.networking.k8s.io/policy: direct`).
    pub direct_policy: bool,
    /// Conditions are a list map keyed by `type` (at most 8), as upstream declares them
    /// for this kind.
    pub conditions_list_map: bool,
    /// Served versions; every version shares the one shape of the core's types.
    pub versions: &'static [Version],
    spec: fn() -> Generated,
}

impl Kind {
    /// `<plural>.<group>`, the CRD's name.
    pub fn crd_name(&self) -> String {
        format!("{}.{GROUP}", self.plural)
    }
}

/// The six kinds, with the versions upstream serves.
pub const KINDS: &[Kind] = &[
    Kind {
        kind: "AIGatewayRoute",
        plural: "aigatewayroutes",
        short_names: &[],
        direct_policy: false,
        conditions_list_map: false,
        versions: &[ALPHA_DEPRECATED, BETA],
        spec: schema::generate::<AIGatewayRouteSpec>,
    },
    Kind {
        kind: "AIServiceBackend",
        plural: "aiservicebackends",
        short_names: &[],
        direct_policy: false,
        conditions_list_map: false,
        versions: &[ALPHA_DEPRECATED, BETA],
        spec: schema::generate::<AIServiceBackendSpec>,
    },
    Kind {
        kind: "BackendSecurityPolicy",
        plural: "backendsecuritypolicies",
        short_names: &[],
        direct_policy: true,
        conditions_list_map: false,
        versions: &[ALPHA_DEPRECATED, BETA],
        spec: schema::generate::<BackendSecurityPolicySpec>,
    },
    Kind {
        kind: "GatewayConfig",
        plural: "gatewayconfigs",
        short_names: &["gwconfig"],
        direct_policy: false,
        conditions_list_map: true,
        versions: &[ALPHA_DEPRECATED, BETA],
        spec: schema::generate::<GatewayConfigSpec>,
    },
    Kind {
        kind: "MCPRoute",
        plural: "mcproutes",
        short_names: &[],
        direct_policy: false,
        conditions_list_map: false,
        versions: &[ALPHA_DEPRECATED, BETA],
        spec: schema::generate::<MCPRouteSpec>,
    },
    Kind {
        kind: "QuotaPolicy",
        plural: "quotapolicies",
        short_names: &[],
        direct_policy: true,
        conditions_list_map: false,
        versions: &[ALPHA_ONLY],
        spec: schema::generate::<QuotaPolicySpec>,
    },
];

/// The structural OpenAPI schema of a kind's `spec`.
pub fn spec_schema(kind: &Kind) -> Result<Value> {
    let Generated { mut root, mut defs } = (kind.spec)();
    let root_name = root_type_name(kind);
    for rule in rules::rules() {
        let target = if rule.ty == root_name {
            Some(&mut root)
        } else {
            defs.get_mut(rule.ty)
        };
        // A rule for a type this kind does not use is simply not for this kind.
        if let Some(target) = target {
            apply(target, &rule)?;
        }
    }
    schema::inline(&mut root, &defs, 0);
    Ok(root)
}

fn root_type_name(kind: &Kind) -> String {
    format!("{}Spec", kind.kind)
}

fn apply(node: &mut Value, rule: &Rule) -> Result<()> {
    let missing = || Error::SchemaRule {
        ty: rule.ty.to_string(),
        field: rule.field.to_string(),
    };
    if rule.field.is_empty() {
        match &rule.action {
            Action::Add(v) => schema::merge(node, v.clone()),
            Action::Replace(v) => *node = v.clone(),
            Action::Omit => return Err(missing()),
        }
        return Ok(());
    }
    let (field, sub) = match rule.field.strip_suffix("[]") {
        Some(f) => (f, Some("items")),
        None => match rule.field.strip_suffix("{}") {
            Some(f) => (f, Some("additionalProperties")),
            None => (rule.field, None),
        },
    };
    let props = node
        .get_mut("properties")
        .and_then(Value::as_object_mut)
        .ok_or_else(missing)?;
    match (&rule.action, sub) {
        (Action::Replace(v), None) => *props.get_mut(field).ok_or_else(missing)? = v.clone(),
        (Action::Replace(v), Some(sub)) => {
            *props
                .get_mut(field)
                .and_then(|p| p.get_mut(sub))
                .ok_or_else(missing)? = v.clone();
        }
        (Action::Omit, _) => {
            props.remove(field).ok_or_else(missing)?;
            if let Some(Value::Array(req)) = node.get_mut("required") {
                req.retain(|r| r.as_str() != Some(field));
            }
        }
        (Action::Add(v), None) => {
            schema::merge(props.get_mut(field).ok_or_else(missing)?, v.clone())
        }
        (Action::Add(v), Some(sub)) => {
            let child = props
                .get_mut(field)
                .and_then(|p| p.get_mut(sub))
                .ok_or_else(missing)?;
            schema::merge(child, v.clone());
        }
    }
    Ok(())
}

/// `status`: the conditions every kind reports (`metav1.Condition`).
pub fn status_schema(kind: &Kind) -> Value {
    let mut status = json!({
        "description": "The observed state: conditions Accepted or NotAccepted, with the generation they were computed from.",
        "type": "object",
        "properties": {
            "conditions": {
                "description": "The latest observations of the object's state.",
                "type": "array",
                "items": {
                    "type": "object",
                    "required": ["lastTransitionTime", "message", "reason", "status", "type"],
                    "properties": {
                        "lastTransitionTime": { "type": "string", "format": "date-time" },
                        "message": { "type": "string", "maxLength": 32768 },
                        "observedGeneration": { "type": "integer", "format": "int64", "minimum": 0 },
                        "reason": {
                            "type": "string", "maxLength": 1024, "minLength": 1,
                            "pattern": "^[A-Za-z]([A-Za-z0-9_,:]*[A-Za-z0-9_])?$"
                        },
                        "status": { "type": "string", "enum": ["True", "False", "Unknown"] },
                        "type": {
                            "type": "string", "maxLength": 316,
                            "pattern": "^([a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*/)?(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])$"
                        }
                    }
                }
            }
        }
    });
    if kind.conditions_list_map {
        schema::merge(
            &mut status["properties"]["conditions"],
            json!({ "maxItems": 8, "x-kubernetes-list-type": "map", "x-kubernetes-list-map-keys": ["type"] }),
        );
    }
    status
}

/// The CustomResourceDefinition of one kind.
pub fn crd(kind: &Kind) -> Result<Value> {
    let spec = spec_schema(kind)?;
    let description = spec
        .get("description")
        .cloned()
        .unwrap_or_else(|| json!(format!("{} of the Envoy AI Gateway API.", kind.kind)));
    let object_schema = json!({
        "description": description,
        "type": "object",
        "properties": {
            "apiVersion": { "type": "string", "description": "The versioned schema of this representation of an object." },
            "kind": { "type": "string", "description": "The REST resource this object represents." },
            "metadata": { "type": "object" },
            "spec": spec,
            "status": status_schema(kind),
        }
    });
    let versions: Vec<Value> = kind
        .versions
        .iter()
        .map(|v| {
            let mut out = json!({
                "name": v.name,
                "served": true,
                "storage": v.storage,
                "schema": { "openAPIV3Schema": object_schema },
                "subresources": { "status": {} },
                "additionalPrinterColumns": [
                    { "name": "Status", "type": "string", "jsonPath": ".status.conditions[-1:].type" }
                ],
            });
            if v.deprecated {
                out["deprecated"] = json!(true);
                out["deprecationWarning"] = json!(format!(
                    "{GROUP}/{} is deprecated; use {GROUP}/v1beta1 instead",
                    v.name
                ));
            }
            out
        })
        .collect();
    let mut names = Map::new();
    names.insert("kind".into(), json!(kind.kind));
    names.insert("listKind".into(), json!(format!("{}List", kind.kind)));
    names.insert("plural".into(), json!(kind.plural));
    if !kind.short_names.is_empty() {
        names.insert("shortNames".into(), json!(kind.short_names));
    }
    names.insert("singular".into(), json!(kind.kind.to_lowercase()));
    let mut metadata = json!({ "name": kind.crd_name() });
    if kind.direct_policy {
        metadata["labels"] = json!({ "gateway.networking.k8s.io/policy": "direct" });
    }
    Ok(json!({
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": metadata,
        "spec": {
            "group": GROUP,
            "names": names,
            "scope": "Namespaced",
            "versions": versions,
        }
    }))
}

/// Every CRD, in [`KINDS`] order.
pub fn all() -> Result<Vec<Value>> {
    KINDS.iter().map(crd).collect()
}

/// Every CRD as one multi-document YAML stream (what `aigw-operator crds` prints and
/// `deploy/crds/` holds).
pub fn to_yaml(crds: &[Value]) -> Result<String> {
    let mut out = String::new();
    for crd in crds {
        out.push_str("---\n");
        out.push_str(&serde_saphyr::to_string(crd).map_err(|e| Error::Yaml(e.to_string()))?);
    }
    Ok(out)
}
