//! The controller: watches the AI kinds and everything their configuration reads, and
//! for each Gateway with AI or MCP routes applies what [`crate::render`] computes —
//! the same pure functions `aigw-operator render` prints.
//!
//! One reconcile per Gateway: read the objects (lists, so a reconcile sees one
//! consistent set), load them through the core's loader ([`accept`] sets aside what it
//! rejects), render, server-side apply with field manager [`FIELD_MANAGER`], delete
//! configuration parts no longer needed, and write `Accepted`/`NotAccepted` with
//! `observedGeneration` on the AI objects. Any change to a watched kind re-reconciles
//! every Gateway: the configuration is one graph, and a Backend or Secret change can
//! matter to any of them.

pub mod accept;
pub mod lease;
pub mod metrics;

use crate::render::{self, Options, bundle, doc_key};
use futures::StreamExt;
use kube::api::{
    Api, ApiResource, DeleteParams, DynamicObject, GroupVersionKind, ListParams, Patch, PatchParams,
};
use kube::runtime::controller::{Action, Controller};
use kube::runtime::events::{Event, EventType, Recorder, Reporter};
use kube::runtime::{WatchStreamExt, watcher};
use kube::{Client, Resource, ResourceExt};
use serde_json::{Value, json};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// The server-side apply field manager of every write.
pub const FIELD_MANAGER: &str = "aigw-operator";

/// A controller failure (the reconcile is retried with backoff).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ReconcileError {
    /// The API server refused or failed a call.
    #[error("Kubernetes API: {0}")]
    Kube(#[from] kube::Error),
    /// Rendering failed (a configuration too large for its Secrets, …).
    #[error(transparent)]
    Render(#[from] crate::Error),
    /// An object could not be (de)serialized.
    #[error("serialization: {0}")]
    Json(#[from] serde_json::Error),
}

fn resource(group: &str, version: &str, kind: &str, plural: &str) -> ApiResource {
    ApiResource::from_gvk_with_plural(&GroupVersionKind::gvk(group, version, kind), plural)
}

/// The Gateway API Gateway.
pub fn gateway_resource() -> ApiResource {
    resource("gateway.networking.k8s.io", "v1", "Gateway", "gateways")
}

/// Every kind the configuration reads (the Gateway included).
pub fn read_kinds() -> Vec<ApiResource> {
    let ai = crate::crd::GROUP;
    vec![
        resource(ai, "v1beta1", "AIGatewayRoute", "aigatewayroutes"),
        resource(ai, "v1beta1", "AIServiceBackend", "aiservicebackends"),
        resource(
            ai,
            "v1beta1",
            "BackendSecurityPolicy",
            "backendsecuritypolicies",
        ),
        resource(ai, "v1beta1", "GatewayConfig", "gatewayconfigs"),
        resource(ai, "v1beta1", "MCPRoute", "mcproutes"),
        resource(ai, "v1alpha1", "QuotaPolicy", "quotapolicies"),
        gateway_resource(),
        resource(
            "gateway.networking.k8s.io",
            "v1",
            "BackendTLSPolicy",
            "backendtlspolicies",
        ),
        resource(
            "gateway.networking.k8s.io",
            "v1beta1",
            "ReferenceGrant",
            "referencegrants",
        ),
        resource("gateway.envoyproxy.io", "v1alpha1", "Backend", "backends"),
        resource(
            "gateway.envoyproxy.io",
            "v1alpha1",
            "BackendTrafficPolicy",
            "backendtrafficpolicies",
        ),
        resource(
            "gateway.envoyproxy.io",
            "v1alpha1",
            "ClientTrafficPolicy",
            "clienttrafficpolicies",
        ),
        resource(
            "gateway.envoyproxy.io",
            "v1alpha1",
            "SecurityPolicy",
            "securitypolicies",
        ),
        resource(
            "inference.networking.k8s.io",
            "v1",
            "InferencePool",
            "inferencepools",
        ),
        resource("", "v1", "Secret", "secrets"),
        resource("", "v1", "ConfigMap", "configmaps"),
    ]
}

/// Kinds written.
fn written(kind: &str) -> Option<ApiResource> {
    match kind {
        "HTTPRoute" => Some(resource(
            "gateway.networking.k8s.io",
            "v1",
            "HTTPRoute",
            "httproutes",
        )),
        "HTTPRouteFilter" => Some(resource(
            "gateway.envoyproxy.io",
            "v1alpha1",
            "HTTPRouteFilter",
            "httproutefilters",
        )),
        "Secret" => Some(resource("", "v1", "Secret", "secrets")),
        "Backend" => Some(resource(
            "gateway.envoyproxy.io",
            "v1alpha1",
            "Backend",
            "backends",
        )),
        "SecurityPolicy" => Some(resource(
            "gateway.envoyproxy.io",
            "v1alpha1",
            "SecurityPolicy",
            "securitypolicies",
        )),
        "BackendTrafficPolicy" => Some(resource(
            "gateway.envoyproxy.io",
            "v1alpha1",
            "BackendTrafficPolicy",
            "backendtrafficpolicies",
        )),
        _ => None,
    }
}

/// What every reconcile shares.
pub struct Context {
    /// The API client.
    pub client: Client,
    /// Rendering options.
    pub options: Options,
    /// Reconcile metrics.
    pub metrics: metrics::Metrics,
    /// How often [`sweep`] runs.
    pub sweep_interval: Duration,
    /// Consecutive failures per Gateway, for the backoff.
    failures: Mutex<HashMap<String, u32>>,
    recorder: Recorder,
}

impl std::fmt::Debug for Context {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Context")
            .field("options", &self.options)
            .field("metrics", &self.metrics)
            .field("sweep_interval", &self.sweep_interval)
            .finish_non_exhaustive()
    }
}

impl Context {
    /// A context over `client`.
    pub fn new(client: Client, options: Options, metrics: metrics::Metrics) -> Self {
        let reporter = Reporter {
            controller: FIELD_MANAGER.into(),
            instance: std::env::var("POD_NAME").ok(),
        };
        Self {
            recorder: Recorder::new(client.clone(), reporter),
            client,
            options,
            metrics,
            sweep_interval: Duration::from_secs(30),
            failures: Mutex::default(),
        }
    }
}

/// Lists every object of the kinds the configuration reads, as documents, keeping only
/// the Secrets and ConfigMaps something references. A kind whose CRD is not installed
/// is skipped (its objects cannot exist).
pub async fn snapshot(client: &Client) -> Result<Vec<Value>, ReconcileError> {
    let mut docs = Vec::new();
    for ar in read_kinds() {
        let api: Api<DynamicObject> = Api::all_with(client.clone(), &ar);
        let list = match api.list(&ListParams::default()).await {
            Ok(l) => l,
            Err(kube::Error::Api(s)) if s.code == 404 => continue,
            Err(e) => return Err(e.into()),
        };
        for o in list.items {
            let mut v = serde_json::to_value(&o)?;
            v["apiVersion"] = json!(ar.api_version);
            v["kind"] = json!(ar.kind);
            docs.push(v);
        }
    }
    Ok(bundle::referenced_only(docs))
}

fn now_rfc3339() -> String {
    k8s_openapi::jiff::Timestamp::now().to_string()
}

/// Reconciles one Gateway.
pub async fn reconcile(
    gw: Arc<DynamicObject>,
    ctx: Arc<Context>,
) -> Result<Action, ReconcileError> {
    let started = Instant::now();
    let result = reconcile_inner(&gw, &ctx).await;
    let key = format!("{}/{}", gw.namespace().unwrap_or_default(), gw.name_any());
    ctx.metrics.observe(result.is_ok(), started.elapsed());
    if result.is_ok()
        && let Ok(mut f) = ctx.failures.lock()
    {
        f.remove(&key);
    }
    result
}

async fn reconcile_inner(gw: &DynamicObject, ctx: &Context) -> Result<Action, ReconcileError> {
    let gw_ns = gw.namespace().unwrap_or_else(|| "default".into());
    let gw_name = gw.name_any();
    let docs = snapshot(&ctx.client).await?;
    let (manifests, rejected) = accept::load_accepting(docs.clone());
    let mut keep: Vec<(String, String)> = Vec::new();
    let mut all_rendered = Vec::new();
    if let Some(m) = &manifests {
        let rendered = render::render(m, &ctx.options)?;
        for w in &rendered.warnings {
            tracing::warn!(gateway = %format!("{gw_ns}/{gw_name}"), "{w}");
        }
        all_rendered.clone_from(&rendered.objects);
        let on_gateway = |parents: &[aigw_core::config::ParentReference], route_ns: &str| {
            parents
                .iter()
                .any(|p| p.name == gw_name && p.namespace.as_deref().unwrap_or(route_ns) == gw_ns)
        };
        let attached: Vec<String> = m
            .config
            .ai_gateway_routes
            .iter()
            .filter(|r| on_gateway(&r.spec.parent_refs, r.namespace()))
            .map(|r| format!("{}/{}", r.namespace(), r.name()))
            .collect();
        let attached_mcp: Vec<(String, String)> = m
            .config
            .mcp_routes
            .iter()
            .filter(|r| on_gateway(&r.spec.parent_refs, r.namespace()))
            .map(|r| (r.namespace().to_owned(), r.name().to_owned()))
            .collect();
        for obj in &rendered.objects {
            if belongs_to(obj, &gw_ns, &gw_name, &attached) || belongs_to_mcp(obj, &attached_mcp) {
                apply(&ctx.client, obj).await?;
                if obj["kind"] == "Secret" {
                    let (_, ns, name) = doc_key(obj);
                    keep.push((ns, name));
                }
            }
        }
    }
    delete_stale_parts(ctx, &gw_ns, &gw_name, &keep).await?;
    delete_orphans(ctx, &all_rendered).await?;
    write_statuses(ctx, &docs, &rejected, &gw_ns, &gw_name).await?;
    Ok(Action::requeue(Duration::from_secs(300)))
}

/// Whether a rendered object is this Gateway's: its configuration Secrets, and the
/// HTTPRoutes and filters of the routes attached to it.
fn belongs_to(obj: &Value, gw_ns: &str, gw_name: &str, attached: &[String]) -> bool {
    let (kind, ns, name) = doc_key(obj);
    match kind.as_str() {
        "Secret" => {
            obj["metadata"]["labels"][bundle::GATEWAY_LABEL] == format!("{gw_ns}.{gw_name}")
        }
        "HTTPRoute" => attached.contains(&format!("{ns}/{name}")),
        "HTTPRouteFilter" => attached.iter().any(|r| {
            let (rns, rname) = r.split_once('/').unwrap_or_default();
            rns == ns
                && [
                    render::http_route::HOST_REWRITE_FILTER,
                    render::http_route::ROUTE_NOT_FOUND_FILTER,
                ]
                .iter()
                .any(|p| name == format!("{p}-{rname}"))
        }),
        _ => false,
    }
}

/// Whether a rendered object is one of the MCPRoutes attached to this Gateway (by the
/// names upstream gives them), or the MCP proxy Backend of their namespace.
fn belongs_to_mcp(obj: &Value, attached: &[(String, String)]) -> bool {
    use render::mcp_route as mcp;
    use render::mcp_security as security;
    let (kind, ns, name) = doc_key(obj);
    attached
        .iter()
        .filter(|(rns, _)| *rns == ns)
        .any(|(_, route)| {
            let per_backend = |prefix: &str| name.starts_with(&format!("{prefix}{route}-"));
            match kind.as_str() {
                "HTTPRoute" => {
                    name == format!("{}{route}", mcp::MAIN_ROUTE_PREFIX)
                        || per_backend(mcp::BACKEND_ROUTE_PREFIX)
                }
                "HTTPRouteFilter" => {
                    per_backend(mcp::BACKEND_FILTER_PREFIX)
                        || name == security::protected_resource_name(route)
                        || name == security::auth_server_name(route)
                }
                "SecurityPolicy" => name == security::policy_name(route),
                "BackendTrafficPolicy" => name == security::protected_resource_name(route),
                "Secret" => per_backend(mcp::CREDENTIAL_SECRET_PREFIX),
                "Backend" => name == mcp::PROXY_BACKEND,
                _ => false,
            }
        })
}

/// Server-side apply, forcing ownership of the fields this controller manages.
pub async fn apply(client: &Client, obj: &Value) -> Result<(), ReconcileError> {
    let (kind, ns, name) = doc_key(obj);
    let Some(ar) = written(&kind) else {
        return Ok(());
    };
    let api: Api<DynamicObject> = Api::namespaced_with(client.clone(), &ns, &ar);
    let params = PatchParams::apply(FIELD_MANAGER).force();
    api.patch(&name, &params, &Patch::Apply(obj)).await?;
    Ok(())
}

async fn delete_stale_parts(
    ctx: &Context,
    gw_ns: &str,
    gw_name: &str,
    keep: &[(String, String)],
) -> Result<(), ReconcileError> {
    let secrets: Api<DynamicObject> = match &ctx.options.config_namespace {
        Some(ns) => Api::namespaced_with(
            ctx.client.clone(),
            ns,
            &resource("", "v1", "Secret", "secrets"),
        ),
        None => Api::namespaced_with(
            ctx.client.clone(),
            gw_ns,
            &resource("", "v1", "Secret", "secrets"),
        ),
    };
    let selector = format!("{}={gw_ns}.{gw_name}", bundle::GATEWAY_LABEL);
    for s in secrets
        .list(&ListParams::default().labels(&selector))
        .await?
        .items
    {
        let ns = s.namespace().unwrap_or_default();
        let name = s.name_any();
        if !keep.iter().any(|(kns, kname)| *kns == ns && *kname == name) {
            match secrets.delete(&name, &DeleteParams::default()).await {
                Ok(_) => {}
                Err(kube::Error::Api(e)) if e.code == 404 => {}
                Err(e) => return Err(e.into()),
            }
        }
    }
    Ok(())
}

/// Removes what no Gateway reconcile can: configuration Secrets of Gateways that no
/// longer exist or no longer have routes, and generated HTTPRoutes and filters whose
/// route is gone when no Gateway is left to reconcile. Runs every `interval`.
pub async fn sweep(ctx: &Context) -> Result<(), ReconcileError> {
    let docs = snapshot(&ctx.client).await?;
    let (manifests, _) = accept::load_accepting(docs);
    let rendered = match &manifests {
        Some(m) => render::render(m, &ctx.options)?.objects,
        None => Vec::new(),
    };
    delete_orphans(ctx, &rendered).await?;
    let ns = ctx.options.config_namespace.clone();
    let secrets: Api<DynamicObject> = match &ns {
        Some(ns) => Api::namespaced_with(
            ctx.client.clone(),
            ns,
            &resource("", "v1", "Secret", "secrets"),
        ),
        None => Api::all_with(ctx.client.clone(), &resource("", "v1", "Secret", "secrets")),
    };
    let selector = format!(
        "{}={}",
        render::http_route::MANAGED_BY.0,
        render::http_route::MANAGED_BY.1
    );
    for s in secrets
        .list(&ListParams::default().labels(&selector))
        .await?
        .items
    {
        let managed = s
            .labels()
            .get(render::http_route::MANAGED_BY.0)
            .map(String::as_str)
            == Some(render::http_route::MANAGED_BY.1);
        if !managed || !s.labels().contains_key(bundle::GATEWAY_LABEL) {
            continue;
        }
        let key = (
            "Secret".to_string(),
            s.namespace().unwrap_or_default(),
            s.name_any(),
        );
        if !rendered.iter().any(|r| doc_key(r) == key) {
            let api: Api<DynamicObject> = Api::namespaced_with(
                ctx.client.clone(),
                &key.1,
                &resource("", "v1", "Secret", "secrets"),
            );
            match api.delete(&key.2, &DeleteParams::default()).await {
                Ok(_) => {
                    tracing::info!(namespace = %key.1, name = %key.2, "deleted a configuration no Gateway uses")
                }
                Err(kube::Error::Api(e)) if e.code == 404 => {}
                Err(e) => return Err(e.into()),
            }
        }
    }
    Ok(())
}

/// Deletes HTTPRoutes, HTTPRouteFilters, MCP proxy Backends and MCP security policies
/// this controller wrote
/// whose route is gone or rejected (MCP credential Secrets go with their MCPRoute
/// through their owner reference). Owner references let the garbage collector do this too; doing
/// it here also covers objects written before their owner had a `uid`, and clusters
/// without a garbage collector.
async fn delete_orphans(ctx: &Context, rendered: &[Value]) -> Result<(), ReconcileError> {
    let selector = format!(
        "{}={}",
        render::http_route::MANAGED_BY.0,
        render::http_route::MANAGED_BY.1
    );
    for kind in [
        "HTTPRoute",
        "HTTPRouteFilter",
        "Backend",
        "SecurityPolicy",
        "BackendTrafficPolicy",
    ] {
        let Some(ar) = written(kind) else { continue };
        let api: Api<DynamicObject> = Api::all_with(ctx.client.clone(), &ar);
        let list = match api.list(&ListParams::default().labels(&selector)).await {
            Ok(l) => l,
            Err(kube::Error::Api(s)) if s.code == 404 => continue,
            Err(e) => return Err(e.into()),
        };
        for o in list.items {
            if o.labels()
                .get(render::http_route::MANAGED_BY.0)
                .map(String::as_str)
                != Some(render::http_route::MANAGED_BY.1)
            {
                continue;
            }
            let ns = o.namespace().unwrap_or_default();
            let name = o.name_any();
            let wanted = rendered
                .iter()
                .any(|r| doc_key(r) == (kind.to_string(), ns.clone(), name.clone()));
            if !wanted {
                let api: Api<DynamicObject> = Api::namespaced_with(ctx.client.clone(), &ns, &ar);
                match api.delete(&name, &DeleteParams::default()).await {
                    Ok(_) => {
                        tracing::info!(kind, namespace = %ns, name = %name, "deleted: its route is gone")
                    }
                    Err(kube::Error::Api(s)) if s.code == 404 => {}
                    Err(e) => return Err(e.into()),
                }
            }
        }
    }
    Ok(())
}

/// `Accepted` / `NotAccepted` on the AI objects of this Gateway's namespace.
async fn write_statuses(
    ctx: &Context,
    docs: &[Value],
    rejected: &accept::Rejected,
    gw_ns: &str,
    gw_name: &str,
) -> Result<(), ReconcileError> {
    let now = now_rfc3339();
    for doc in docs {
        let (kind, ns, name) = doc_key(doc);
        let is_ai = doc["apiVersion"]
            .as_str()
            .is_some_and(|a| a.starts_with(crate::crd::GROUP));
        // Routes report through the Gateway they attach to; other AI kinds through any.
        let routes_here = doc["spec"]["parentRefs"].as_array().is_none_or(|refs| {
            refs.iter()
                .any(|p| p["name"] == gw_name && p["namespace"].as_str().unwrap_or(&ns) == gw_ns)
        });
        if !is_ai || !routes_here {
            continue;
        }
        let messages = rejected
            .get(&format!("{kind}/{ns}/{name}"))
            .map(Vec::as_slice);
        let status = accept::status(
            doc.get("status"),
            doc["metadata"]["generation"].as_i64(),
            messages,
            &now,
        );
        if doc.get("status") == Some(&status) {
            continue;
        }
        let Some(ar) = read_kinds().into_iter().find(|a| a.kind == kind) else {
            continue;
        };
        let api: Api<DynamicObject> = Api::namespaced_with(ctx.client.clone(), &ns, &ar);
        let patch = json!({ "apiVersion": ar.api_version, "kind": kind, "status": status });
        api.patch_status(
            &name,
            &PatchParams::apply(FIELD_MANAGER).force(),
            &Patch::Apply(&patch),
        )
        .await?;
        if let Some(m) = messages {
            publish(ctx, doc, &kind, m).await;
        }
    }
    Ok(())
}

async fn publish(ctx: &Context, doc: &Value, kind: &str, messages: &[String]) {
    let Ok(obj) = serde_json::from_value::<DynamicObject>(doc.clone()) else {
        return;
    };
    let Some(ar) = read_kinds().into_iter().find(|a| a.kind == kind) else {
        return;
    };
    let reference = obj.object_ref(&ar);
    let note: String = messages.join("; ").chars().take(1000).collect();
    let event = Event {
        type_: EventType::Warning,
        reason: accept::reason::INVALID.into(),
        note: Some(note),
        action: "Reconcile".into(),
        secondary: None,
    };
    if let Err(e) = ctx.recorder.publish(&event, &reference).await {
        tracing::warn!(error = %e, "event not recorded");
    }
}

/// Retries a failed reconcile after 1 s, 2 s, 4 s, … up to 5 minutes.
pub fn error_policy(gw: Arc<DynamicObject>, err: &ReconcileError, ctx: Arc<Context>) -> Action {
    let key = format!("{}/{}", gw.namespace().unwrap_or_default(), gw.name_any());
    let n = match ctx.failures.lock() {
        Ok(mut f) => {
            let n = f.entry(key.clone()).or_insert(0);
            *n = n.saturating_add(1);
            *n
        }
        Err(_) => 1,
    };
    let delay = backoff(n);
    tracing::warn!(gateway = %key, error = %err, retry_in = ?delay, "reconcile failed");
    Action::requeue(delay)
}

/// The delay before retry `n` (1-based): doubling from 1 s, capped at 5 minutes.
pub fn backoff(n: u32) -> Duration {
    Duration::from_secs(1u64 << n.saturating_sub(1).min(9)).min(Duration::from_secs(300))
}

/// Runs the controller until `shutdown` resolves.
pub async fn run(
    ctx: Arc<Context>,
    shutdown: impl std::future::Future<Output = ()> + Send + Sync + 'static,
) {
    let client = ctx.client.clone();
    let gw_ar = gateway_resource();
    let gateways: Api<DynamicObject> = Api::all_with(client.clone(), &gw_ar);
    let mut triggers = futures::stream::SelectAll::new();
    // Everything read, plus what is written (an edit by someone else is reverted).
    let written_kinds = ["HTTPRoute", "HTTPRouteFilter"]
        .into_iter()
        .filter_map(written);
    for ar in read_kinds()
        .into_iter()
        .filter(|a| a.kind != "Gateway")
        .chain(written_kinds)
    {
        let api: Api<DynamicObject> = Api::all_with(client.clone(), &ar);
        triggers.push(
            watcher(api, watcher::Config::default())
                .default_backoff()
                .touched_objects()
                .filter_map(|r| async move { r.ok().map(|_| ()) })
                .boxed(),
        );
    }
    let sweeper = {
        let ctx = ctx.clone();
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(ctx.sweep_interval);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                tick.tick().await;
                if let Err(e) = sweep(&ctx).await {
                    tracing::warn!(error = %e, "sweep failed");
                }
            }
        })
    };
    Controller::new_with(gateways, watcher::Config::default(), gw_ar)
        .reconcile_all_on(triggers)
        .graceful_shutdown_on(shutdown)
        .run(reconcile, error_policy, ctx)
        .for_each(|r| async move {
            if let Err(e) = r {
                tracing::debug!(error = %e, "controller event");
            }
        })
        .await;
    sweeper.abort();
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_and_is_bounded() {
        assert_eq!(backoff(1), Duration::from_secs(1));
        assert_eq!(backoff(2), Duration::from_secs(2));
        assert_eq!(backoff(5), Duration::from_secs(16));
        assert_eq!(backoff(40), Duration::from_secs(300));
    }

    #[test]
    fn a_gateway_applies_the_mcp_objects_of_its_own_mcp_routes_only() {
        let obj = |kind: &str, ns: &str, name: &str| json!({ "kind": kind, "metadata": { "namespace": ns, "name": name } });
        let attached = [("default".to_string(), "tools".to_string())];
        for (kind, name) in [
            ("HTTPRoute", "ai-eg-mcp-main-tools"),
            ("HTTPRoute", "ai-eg-mcp-br-tools-github"),
            ("HTTPRouteFilter", "ai-eg-mcp-brf-tools-github"),
            ("Secret", "ai-eg-mcp-cred-tools-github"),
            ("Backend", "ai-eg-mcp-proxy"),
            ("SecurityPolicy", "ai-eg-mcp-tools"),
            (
                "BackendTrafficPolicy",
                "ai-eg-mcp-tools-oauth-protected-resource-metadata",
            ),
            (
                "HTTPRouteFilter",
                "ai-eg-mcp-tools-oauth-protected-resource-metadata",
            ),
            (
                "HTTPRouteFilter",
                "ai-eg-mcp-tools-oauth-authorization-server-metadata",
            ),
        ] {
            assert!(
                belongs_to_mcp(&obj(kind, "default", name), &attached),
                "{kind} {name}"
            );
            assert!(
                !belongs_to_mcp(&obj(kind, "other", name), &attached),
                "{kind} {name}"
            );
        }
        for (kind, name) in [
            ("HTTPRoute", "ai-eg-mcp-main-tools2"),
            ("HTTPRoute", "tools"),
            ("Secret", "aigw-gw-default-part-000"),
            ("SecurityPolicy", "ai-eg-mcp-tools2"),
            ("SecurityPolicy", "user-policy"),
        ] {
            assert!(
                !belongs_to_mcp(&obj(kind, "default", name), &attached),
                "{kind} {name}"
            );
        }
    }
}
