//! YAML text → typed documents, with field paths on every error.

use super::lines::{DocCtx, LineTree, Lines, document_lines};
use super::meta::{ObjectMeta, Source};
use super::schema::{SchemaError, deserialize_all};
use super::secret::{RawSecret, SecretDocument};
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

fn schema_issues(ctx: &DocCtx<'_>, errors: Vec<SchemaError>, issues: &mut Vec<ConfigIssue>) {
    issues.extend(errors.into_iter().map(|e| ctx.issue(e.path, e.message)));
}

/// Parses every document of one file into `config`, pushing problems to `issues` and
/// each document's line index to `lines`.
pub(crate) fn parse_file(
    config: &mut Config,
    text: &str,
    file: &str,
    issues: &mut Vec<ConfigIssue>,
    lines: &mut Lines,
) {
    config.files.push(file.to_string());
    let docs: Vec<Value> = match serde_saphyr::from_multiple(text) {
        Ok(docs) => docs,
        Err(e) => {
            issues.push(ConfigIssue {
                file: file.to_string(),
                line: e.location().map(|l| l.line() as usize).filter(|l| *l > 0),
                document: "(YAML)".into(),
                field: String::new(),
                message: format!("not valid YAML: {e}"),
            });
            return;
        }
    };
    // Both parses see the same stream, so documents pair up by index; if they ever
    // disagree, issues go without lines rather than with wrong ones.
    let trees = document_lines(text).filter(|t| t.len() == docs.len());
    for (index, doc) in docs.into_iter().enumerate() {
        if doc.is_null() {
            continue;
        }
        let tree = trees.as_ref().and_then(|t| t.get(index));
        parse_document(
            config,
            doc,
            Source {
                file: file.to_string(),
                index,
            },
            tree,
            issues,
            lines,
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

fn parse_document(
    config: &mut Config,
    doc: Value,
    source: Source,
    tree: Option<&LineTree>,
    issues: &mut Vec<ConfigIssue>,
    lines: &mut Lines,
) {
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
    if let Some(tree) = tree {
        lines.insert(&source, &document, tree.clone());
    }
    let ctx = DocCtx {
        file: &file,
        document,
        lines: tree,
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
            if let Some(r) = typed_resource(&doc, &api_version, &kind, source.clone(), &ctx, issues)
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
        "" if kind == "Secret" => match deserialize_all::<RawSecret>(&doc) {
            Ok(raw) => {
                if let Some(secret) = SecretDocument::from_raw(raw, source, &ctx, issues) {
                    config.secrets.push(secret);
                }
            }
            Err(errors) => schema_issues(&ctx, errors, issues),
        },
        "" if kind == "ConfigMap" => match deserialize_all::<RawConfigMap>(&doc) {
            Ok(raw) => config.config_maps.push(Resource {
                api_version,
                kind,
                metadata: raw.metadata,
                spec: raw.data,
                source,
            }),
            Err(errors) => schema_issues(&ctx, errors, issues),
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
    doc: &Value,
    api_version: &str,
    kind: &str,
    source: Source,
    ctx: &DocCtx<'_>,
    issues: &mut Vec<ConfigIssue>,
) -> Option<Resource<S>> {
    match deserialize_all::<Envelope<S>>(doc) {
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
        Err(errors) => {
            schema_issues(ctx, errors, issues);
            None
        }
    }
}
