//! YAML text → typed documents, with field paths on every error.

use super::meta::{ObjectMeta, Source};
use super::secret::SecretDocument;
use super::{Config, IgnoredDocument, Resource};
use crate::error::ConfigIssue;
use serde::Deserialize;
use serde::de::DeserializeOwned;
use serde_json::Value;
use std::collections::BTreeMap;

/// `aigateway.envoyproxy.io`.
pub(crate) const AIGW_GROUP: &str = "aigateway.envoyproxy.io";
/// `gateway.envoyproxy.io`.
pub(crate) const EG_GROUP: &str = "gateway.envoyproxy.io";
/// `gateway.networking.k8s.io`.
pub(crate) const GWAPI_GROUP: &str = "gateway.networking.k8s.io";
/// `inference.networking.k8s.io`.
pub(crate) const INFERENCE_GROUP: &str = "inference.networking.k8s.io";

/// Envoy and Gateway API kinds that configure Envoy itself; accepted and ignored.
const ENVOY_ONLY_KINDS: &[&str] = &[
    "GatewayClass",
    "EnvoyProxy",
    "HTTPRouteFilter",
    "EnvoyPatchPolicy",
    "EnvoyExtensionPolicy",
    "GRPCRoute",
    "TCPRoute",
    "TLSRoute",
    "UDPRoute",
    "ListenerSet",
    "XListenerSet",
];

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct Envelope<S> {
    #[allow(dead_code)]
    api_version: String,
    #[allow(dead_code)]
    kind: String,
    #[serde(default)]
    metadata: ObjectMeta,
    #[serde(default = "Option::default")]
    spec: Option<S>,
    #[serde(default)]
    #[allow(dead_code)]
    status: Option<Value>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub(crate) struct RawSecret {
    #[allow(dead_code)]
    pub api_version: String,
    #[allow(dead_code)]
    pub kind: String,
    #[serde(default)]
    pub metadata: ObjectMeta,
    #[serde(default, rename = "type")]
    pub secret_type: Option<String>,
    #[serde(default)]
    pub data: BTreeMap<String, String>,
    #[serde(default)]
    pub string_data: BTreeMap<String, String>,
    #[serde(default)]
    #[allow(dead_code)]
    pub immutable: Option<bool>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct RawConfigMap {
    #[allow(dead_code)]
    api_version: String,
    #[allow(dead_code)]
    kind: String,
    #[serde(default)]
    metadata: ObjectMeta,
    #[serde(default)]
    data: BTreeMap<String, String>,
    #[serde(default)]
    #[allow(dead_code)]
    binary_data: BTreeMap<String, String>,
    #[serde(default)]
    #[allow(dead_code)]
    immutable: Option<bool>,
}

/// Context for issues of one document.
pub(crate) struct DocCtx<'a> {
    pub file: &'a str,
    pub document: String,
}

impl DocCtx<'_> {
    pub fn issue(&self, field: impl Into<String>, message: impl Into<String>) -> ConfigIssue {
        ConfigIssue {
            file: self.file.to_string(),
            document: self.document.clone(),
            field: field.into(),
            message: message.into(),
        }
    }
}

/// Parses every document of one file into `config`, pushing problems to `issues`.
pub(crate) fn parse_file(
    config: &mut Config,
    text: &str,
    file: &str,
    issues: &mut Vec<ConfigIssue>,
) {
    config.files.push(file.to_string());
    let docs: Vec<Value> = match serde_saphyr::from_multiple(text) {
        Ok(docs) => docs,
        Err(e) => {
            issues.push(ConfigIssue {
                file: file.to_string(),
                document: "(YAML)".into(),
                field: String::new(),
                message: format!("not valid YAML: {e}"),
            });
            return;
        }
    };
    for (index, doc) in docs.into_iter().enumerate() {
        if doc.is_null() {
            continue;
        }
        parse_document(
            config,
            doc,
            Source {
                file: file.to_string(),
                index,
            },
            issues,
        );
    }
}

fn str_at<'v>(v: &'v Value, path: &[&str]) -> Option<&'v str> {
    let mut cur = v;
    for p in path {
        cur = cur.get(p)?;
    }
    cur.as_str()
}

fn parse_document(config: &mut Config, doc: Value, source: Source, issues: &mut Vec<ConfigIssue>) {
    let kind = str_at(&doc, &["kind"]).unwrap_or_default().to_string();
    let api_version = str_at(&doc, &["apiVersion"])
        .unwrap_or_default()
        .to_string();
    let name = str_at(&doc, &["metadata", "name"])
        .unwrap_or_default()
        .to_string();
    let namespace = str_at(&doc, &["metadata", "namespace"])
        .filter(|s| !s.is_empty())
        .unwrap_or("default")
        .to_string();
    let document = if kind.is_empty() && name.is_empty() {
        format!("document #{}", source.index + 1)
    } else {
        format!(
            "{}/{namespace}/{name}",
            if kind.is_empty() { "?" } else { &kind }
        )
    };
    let file = source.file.clone();
    let ctx = DocCtx {
        file: &file,
        document,
    };
    if !doc.is_object() {
        issues.push(ctx.issue("", "a document must be a mapping with apiVersion and kind"));
        return;
    }
    if kind.is_empty() {
        issues.push(ctx.issue("kind", "kind is required"));
        return;
    }
    if api_version.is_empty() {
        issues.push(ctx.issue("apiVersion", "apiVersion is required"));
        return;
    }
    if name.is_empty()
        && doc
            .get("metadata")
            .is_none_or(|m| m.get("generateName").is_none())
    {
        issues.push(ctx.issue("metadata.name", "metadata.name is required"));
    }
    let (group, version) = match api_version.rsplit_once('/') {
        Some((g, v)) => (g, v),
        None => ("", api_version.as_str()),
    };

    macro_rules! typed {
        ($list:ident) => {{
            if let Some(r) = typed_resource(doc, &api_version, &kind, source.clone(), &ctx, issues)
            {
                config.$list.push(r);
            }
        }};
    }

    match group {
        AIGW_GROUP => {
            if !matches!(version, "v1alpha1" | "v1beta1") {
                issues.push(ctx.issue(
                    "apiVersion",
                    format!(
                        "unsupported version {version:?} of {AIGW_GROUP}; use v1beta1 (or v1alpha1)"
                    ),
                ));
                return;
            }
            match kind.as_str() {
                "AIGatewayRoute" => typed!(ai_gateway_routes),
                "AIServiceBackend" => typed!(ai_service_backends),
                "BackendSecurityPolicy" => typed!(backend_security_policies),
                "MCPRoute" => typed!(mcp_routes),
                "GatewayConfig" => typed!(gateway_configs),
                "QuotaPolicy" => typed!(quota_policies),
                _ => issues.push(ctx.issue(
                    "kind",
                    format!(
                        "unknown kind {kind:?} in {AIGW_GROUP}; expected AIGatewayRoute, AIServiceBackend, \
                         BackendSecurityPolicy, MCPRoute, GatewayConfig or QuotaPolicy"
                    ),
                )),
            }
        }
        EG_GROUP => match kind.as_str() {
            "Backend" => typed!(backends),
            "BackendTrafficPolicy" => typed!(backend_traffic_policies),
            "ClientTrafficPolicy" => typed!(client_traffic_policies),
            "SecurityPolicy" => typed!(envoy_security_policies),
            _ => ignore(config, &ctx, &api_version, source, envoy_reason(&kind)),
        },
        GWAPI_GROUP => match kind.as_str() {
            "Gateway" => typed!(gateways),
            "BackendTLSPolicy" => typed!(backend_tls_policies),
            "HTTPRoute" => typed!(http_routes),
            "ReferenceGrant" => typed!(reference_grants),
            _ => ignore(config, &ctx, &api_version, source, envoy_reason(&kind)),
        },
        INFERENCE_GROUP if kind == "InferencePool" => typed!(inference_pools),
        "" if kind == "Secret" => match serde_path_to_error::deserialize::<_, RawSecret>(doc) {
            Ok(raw) => {
                if let Some(secret) = SecretDocument::from_raw(raw, source, &ctx, issues) {
                    config.secrets.push(secret);
                }
            }
            Err(e) => issues.push(path_issue(&ctx, e)),
        },
        "" if kind == "ConfigMap" => match serde_path_to_error::deserialize::<_, RawConfigMap>(doc)
        {
            Ok(raw) => config.config_maps.push(Resource {
                api_version,
                kind,
                metadata: raw.metadata,
                spec: raw.data,
                source,
            }),
            Err(e) => issues.push(path_issue(&ctx, e)),
        },
        _ => ignore(
            config,
            &ctx,
            &api_version,
            source,
            "not a kind the gateway reads".into(),
        ),
    }
}

fn envoy_reason(kind: &str) -> String {
    if ENVOY_ONLY_KINDS.contains(&kind) {
        "configures Envoy itself; aigw's own data plane does not need it".into()
    } else {
        "not a kind the gateway reads".into()
    }
}

fn ignore(
    config: &mut Config,
    ctx: &DocCtx<'_>,
    api_version: &str,
    source: Source,
    reason: String,
) {
    config.ignored.push(IgnoredDocument {
        label: ctx.document.clone(),
        api_version: api_version.to_string(),
        source,
        reason,
    });
}

fn typed_resource<S: DeserializeOwned>(
    doc: Value,
    api_version: &str,
    kind: &str,
    source: Source,
    ctx: &DocCtx<'_>,
    issues: &mut Vec<ConfigIssue>,
) -> Option<Resource<S>> {
    match serde_path_to_error::deserialize::<_, Envelope<S>>(doc) {
        Ok(env) => match env.spec {
            Some(spec) => Some(Resource {
                api_version: api_version.to_string(),
                kind: kind.to_string(),
                metadata: env.metadata,
                spec,
                source,
            }),
            None => {
                issues.push(ctx.issue("spec", "spec is required"));
                None
            }
        },
        Err(e) => {
            issues.push(path_issue(ctx, e));
            None
        }
    }
}

/// Turns a deserialization error into an issue whose field path points at the
/// offending field (including the unknown or missing field's own name).
pub(crate) fn path_issue(
    ctx: &DocCtx<'_>,
    err: serde_path_to_error::Error<serde_json::Error>,
) -> ConfigIssue {
    let mut path = err.path().to_string();
    if path == "." {
        path.clear();
    }
    let message = err.inner().to_string();
    let join = |path: &str, name: &str| {
        // Unknown fields already carry their own name as the last path segment.
        if path == name || path.ends_with(&format!(".{name}")) {
            path.to_string()
        } else if path.is_empty() {
            name.to_string()
        } else {
            format!("{path}.{name}")
        }
    };
    for (prefix, text) in [
        ("unknown field `", "unknown field"),
        ("missing field `", "required field is missing"),
    ] {
        if let Some(rest) = message.strip_prefix(prefix)
            && let Some((name, tail)) = rest.split_once('`')
        {
            let field = join(&path, name);
            let hint = tail.trim_start_matches(',').trim();
            let message = if hint.is_empty() {
                text.to_string()
            } else {
                format!("{text} ({hint})")
            };
            return ctx.issue(field, message);
        }
    }
    ctx.issue(path, message)
}
