//! Sidecar injection: the mutating admission decision for Envoy Gateway's proxy pods,
//! as a pure function (AdmissionReview in, JSON Patch out).
//!
//! A pod Envoy Gateway creates for a Gateway carries the labels
//! `gateway.envoyproxy.io/owning-gateway-name` / `-namespace`. When that Gateway has
//! AIGatewayRoutes or MCPRoutes, the pod gets `aigw-extproc` as a native sidecar (an
//! init container with `restartPolicy: Always`, so it is up before Envoy), an
//! `emptyDir` for the Unix socket Envoy reaches it on (mounted into every container),
//! and a projected volume of the Gateway's configuration parts (one optional slot per
//! possible part, so a configuration that grows never needs a new pod spec). The
//! GatewayConfig the Gateway names sets the image, resources, env, security context and
//! extra mounts, as upstream. The sidecar also gets a projected service-account token
//! for AWS web identity (audience `sts.amazonaws.com`, kubelet-rotated) and
//! `AWS_WEB_IDENTITY_TOKEN_FILE` pointing at it: credentials rotate in the ExtProc
//! (aigw-auth), so no secret material is written through the API server. The MCP
//! session-encryption seeds come from a Secret by reference ([`McpSession`]).
//!
//! Idempotent (a pod that already has the sidecar gets no patch) and fail-safe: any
//! pod this does not own, or any failure, is admitted unchanged.

use crate::render::{Manifests, bundle};
use aigw_core::config::{GATEWAY_CONFIG_ANNOTATION, GatewayConfigSpec};
use serde_json::{Value, json};

/// The sidecar container's name (upstream's).
pub const CONTAINER: &str = "ai-gateway-extproc";
/// The socket volume's name.
pub const UDS_VOLUME: &str = "ai-gateway-extproc-uds";
/// The configuration volume's name.
pub const CONFIG_VOLUME: &str = "ai-gateway-config";
/// The projected service-account token volume's name.
pub const TOKEN_VOLUME: &str = "aigw-sa-token";
/// The environment variable naming the AWS web-identity token file.
pub const AWS_TOKEN_ENV: &str = "AWS_WEB_IDENTITY_TOKEN_FILE";
/// The sidecar's environment variable with the MCP session-encryption seed
/// (`aigw-extproc --mcp-session-seed`).
pub const MCP_SEED_ENV: &str = "AIGW_MCP_SESSION_SEED";
/// The sidecar's environment variable with the previous seed, still accepted during a
/// rotation (`aigw-extproc --mcp-fallback-session-seed`).
pub const MCP_FALLBACK_SEED_ENV: &str = "AIGW_MCP_FALLBACK_SESSION_SEED";
/// Key of the seed in the MCP session Secret (upstream's
/// `controller.mcp.sessionEncryption.seed`).
pub const MCP_SEED_KEY: &str = "seed";
/// Key of the fallback seed in the MCP session Secret (upstream's
/// `controller.mcp.sessionEncryption.fallback.seed`).
pub const MCP_FALLBACK_SEED_KEY: &str = "fallbackSeed";
/// Label Envoy Gateway puts on a proxy pod: the Gateway's name.
pub const OWNING_GATEWAY_NAME: &str = "gateway.envoyproxy.io/owning-gateway-name";
/// Label Envoy Gateway puts on a proxy pod: the Gateway's namespace.
pub const OWNING_GATEWAY_NAMESPACE: &str = "gateway.envoyproxy.io/owning-gateway-namespace";

/// Where things go inside the pod.
#[derive(Debug, Clone)]
pub struct SidecarOptions {
    /// Image when the GatewayConfig names none.
    pub image: String,
    /// The socket Envoy's `ai-gateway-extproc-uds` cluster points at.
    pub uds_path: String,
    /// Where the configuration parts are mounted.
    pub config_dir: String,
    /// Where the projected service-account token is mounted (file `token`).
    pub token_dir: String,
    /// The projected token's audience (the STS that accepts it).
    pub token_audience: String,
    /// The projected token's lifetime; the kubelet rotates it at 80 %.
    pub token_expiration_seconds: u32,
    /// The MCP session-encryption settings of every sidecar.
    pub mcp_session: McpSession,
}

/// Where the sidecars' MCP session-encryption seed comes from: upstream's controller
/// passes `-mcpSessionEncryptionSeed` (and the fallback seed) to every ExtProc on its
/// command line; here the seeds stay in a Secret of the proxy pods' namespace and reach
/// the sidecar as environment variables (`secretKeyRef`), so they appear in no pod spec,
/// command line or log. Every replica gets the same seed, so an MCP session opened
/// through one Envoy pod continues through any other and survives restarts.
#[derive(Debug, Clone, Default)]
pub struct McpSession {
    /// The Secret (in the pod's namespace) with the keys [`MCP_SEED_KEY`] and, during a
    /// rotation, [`MCP_FALLBACK_SEED_KEY`]. Both are optional references: without the
    /// Secret the sidecar seals sessions with a random key and says so in its log.
    /// `None`: no seed is injected.
    pub secret: Option<String>,
    /// PBKDF2 iterations deriving the key from the seeds (`--mcp-session-iterations`);
    /// `None` keeps the sidecar's default (upstream's 100000).
    pub iterations: Option<u32>,
}

impl Default for SidecarOptions {
    fn default() -> Self {
        Self {
            image: "aigw-extproc:0.1.0".into(),
            uds_path: "/etc/ai-gateway-extproc-uds/run.sock".into(),
            config_dir: "/etc/aigw/config".into(),
            token_dir: "/var/run/secrets/aigw/serviceaccount".into(),
            token_audience: "sts.amazonaws.com".into(),
            token_expiration_seconds: 3600,
            mcp_session: McpSession {
                secret: Some(DEFAULT_MCP_SESSION_SECRET.into()),
                iterations: None,
            },
        }
    }
}

/// The MCP session Secret the sidecars read unless told otherwise.
pub const DEFAULT_MCP_SESSION_SECRET: &str = "aigw-mcp-session";

fn uds_dir(opts: &SidecarOptions) -> &str {
    opts.uds_path
        .rsplit_once('/')
        .map(|(d, _)| d)
        .unwrap_or("/")
}

/// The JSON Patch for `pod` (empty: admit unchanged).
pub fn patch(pod: &Value, m: &Manifests, opts: &SidecarOptions) -> Vec<Value> {
    let labels = &pod["metadata"]["labels"];
    let (Some(gw_name), Some(gw_ns)) = (
        labels[OWNING_GATEWAY_NAME].as_str(),
        labels[OWNING_GATEWAY_NAMESPACE].as_str(),
    ) else {
        return Vec::new();
    };
    let spec = &pod["spec"];
    let has = |list: &str, name: &str| {
        spec[list]
            .as_array()
            .is_some_and(|l| l.iter().any(|c| c["name"] == name))
    };
    if has("initContainers", CONTAINER) || has("containers", CONTAINER) {
        return Vec::new();
    }
    if !crate::render::gateways(&m.config).contains(&(gw_ns.to_string(), gw_name.to_string())) {
        return Vec::new();
    }
    let gateway_config = m
        .config
        .gateways
        .iter()
        .find(|g| g.namespace() == gw_ns && g.name() == gw_name)
        .and_then(|g| g.metadata.annotations.get(GATEWAY_CONFIG_ANNOTATION))
        .and_then(|n| {
            m.config
                .gateway_configs
                .iter()
                .find(|c| c.namespace() == gw_ns && c.name() == n)
        })
        .map(|c| &c.spec);
    let mut ops = Vec::new();
    let mut add =
        |path: String, value: Value| ops.push(json!({ "op": "add", "path": path, "value": value }));
    let volumes = [
        json!({ "name": UDS_VOLUME, "emptyDir": {} }),
        json!({ "name": CONFIG_VOLUME, "projected": { "sources": (0..bundle::MAX_PARTS).map(|i| json!({
            "secret": {
                "name": bundle::part_name(gw_ns, gw_name, i),
                "items": [{ "key": bundle::PART_KEY, "path": format!("part-{i:03}.yaml") }],
                "optional": true,
            }
        })).collect::<Vec<_>>() } }),
        json!({ "name": TOKEN_VOLUME, "projected": { "sources": [{ "serviceAccountToken": {
            "audience": opts.token_audience,
            "expirationSeconds": opts.token_expiration_seconds,
            "path": "token",
        } }] } }),
    ];
    if spec["volumes"].is_array() {
        for v in volumes {
            add("/spec/volumes/-".into(), v);
        }
    } else {
        add("/spec/volumes".into(), json!(volumes));
    }
    let container = container(gateway_config, opts);
    if spec["initContainers"].is_array() {
        add("/spec/initContainers/-".into(), container);
    } else {
        add("/spec/initContainers".into(), json!([container]));
    }
    let mount = json!({ "name": UDS_VOLUME, "mountPath": uds_dir(opts) });
    for (i, c) in spec["containers"]
        .as_array()
        .into_iter()
        .flatten()
        .enumerate()
    {
        if c["volumeMounts"].is_array() {
            add(
                format!("/spec/containers/{i}/volumeMounts/-"),
                mount.clone(),
            );
        } else {
            add(format!("/spec/containers/{i}/volumeMounts"), json!([mount]));
        }
    }
    ops
}

/// The sidecar, with the GatewayConfig's settings over the defaults.
fn container(gc: Option<&GatewayConfigSpec>, opts: &SidecarOptions) -> Value {
    let k = gc
        .and_then(|g| g.ext_proc.as_ref())
        .and_then(|e| e.kubernetes.as_ref());
    let image = match (
        k.and_then(|k| k.image.clone()),
        k.and_then(|k| k.image_repository.clone()),
    ) {
        (Some(image), _) => image,
        (None, Some(repo)) => {
            let tag = opts
                .image
                .rsplit_once(':')
                .map(|(_, t)| t)
                .unwrap_or("latest");
            format!("{repo}:{tag}")
        }
        (None, None) => opts.image.clone(),
    };
    let mut mounts = vec![
        json!({ "name": UDS_VOLUME, "mountPath": uds_dir(opts) }),
        json!({ "name": CONFIG_VOLUME, "mountPath": opts.config_dir, "readOnly": true }),
        json!({ "name": TOKEN_VOLUME, "mountPath": opts.token_dir, "readOnly": true }),
    ];
    if let Some(k) = k {
        mounts.extend(
            k.volume_mounts
                .iter()
                .filter_map(|m| serde_json::to_value(m).ok()),
        );
    }
    let security = k
        .and_then(|k| k.security_context.clone())
        .unwrap_or_else(|| {
            json!({
                "allowPrivilegeEscalation": false,
                "capabilities": { "drop": ["ALL"] },
                "privileged": false,
                "runAsGroup": 65532,
                "runAsNonRoot": true,
                "runAsUser": 65532,
                "seccompProfile": { "type": "RuntimeDefault" },
            })
        });
    let mut c = json!({
        "name": CONTAINER,
        "image": image,
        "restartPolicy": "Always",
        "args": [
            "--config", opts.config_dir,
            "--listen", format!("unix://{}", opts.uds_path),
            "--admin", "0.0.0.0:1064",
            // The MCP proxy, where the extension server points MCPRoutes' proxy rules
            // (upstream's ExtProc serves it on the same port).
            "--mcp-addr", format!("127.0.0.1:{}", crate::render::mcp_route::PROXY_PORT),
        ],
        "ports": [{ "name": "aigw-admin", "containerPort": 1064 }],
        "volumeMounts": mounts,
        "securityContext": security,
        "readinessProbe": {
            "httpGet": { "path": "/health", "port": 1064, "scheme": "HTTP" },
            "initialDelaySeconds": 2, "periodSeconds": 10, "timeoutSeconds": 5,
            "successThreshold": 1, "failureThreshold": 1,
        },
    });
    let mut env: Vec<Value> = k
        .map(|k| {
            k.env
                .iter()
                .filter_map(|e| serde_json::to_value(e).ok())
                .collect()
        })
        .unwrap_or_default();
    // The GatewayConfig's own value wins (a token mounted elsewhere).
    if !env.iter().any(|e| e["name"] == AWS_TOKEN_ENV) {
        env.push(json!({ "name": AWS_TOKEN_ENV, "value": format!("{}/token", opts.token_dir) }));
    }
    mcp_session_env(&mut env, &opts.mcp_session);
    c["env"] = Value::Array(env);
    if let (Some(n), Some(args)) = (opts.mcp_session.iterations, c["args"].as_array_mut()) {
        args.extend([json!("--mcp-session-iterations"), json!(n.to_string())]);
    }
    if let Some(r) = k.and_then(|k| k.resources.as_ref()) {
        c["resources"] = serde_json::to_value(r).unwrap_or_default();
    }
    strip_empty(&mut c);
    c
}

/// The seeds as references into the MCP session Secret (never their values: the
/// operator does not read them). A GatewayConfig that sets either variable itself wins.
fn mcp_session_env(env: &mut Vec<Value>, session: &McpSession) {
    let Some(secret) = session.secret.as_deref().filter(|s| !s.is_empty()) else {
        return;
    };
    for (name, key) in [
        (MCP_SEED_ENV, MCP_SEED_KEY),
        (MCP_FALLBACK_SEED_ENV, MCP_FALLBACK_SEED_KEY),
    ] {
        if env.iter().any(|e| e["name"] == name) {
            continue;
        }
        env.push(json!({ "name": name, "valueFrom": { "secretKeyRef": {
            "name": secret, "key": key, "optional": true,
        } } }));
    }
}

fn strip_empty(v: &mut Value) {
    if let Value::Object(o) = v {
        o.retain(|_, x| {
            !(x.is_null()
                || x.as_array().is_some_and(Vec::is_empty)
                || x.as_object().is_some_and(|m| m.is_empty()))
        });
        o.values_mut().for_each(strip_empty);
    } else if let Value::Array(a) = v {
        a.iter_mut().for_each(strip_empty);
    }
}

/// Answers an `admission.k8s.io/v1` AdmissionReview: always allowed; a JSON Patch when
/// the pod needs the sidecar. `manifests` is `None` when the configuration could not be
/// read: the pod is admitted unchanged (the controller re-rolls it later).
pub fn review(request: &Value, m: Option<&Manifests>, opts: &SidecarOptions) -> Value {
    let uid = request["request"]["uid"].clone();
    let ops = match (m, request["request"]["kind"]["kind"].as_str()) {
        (Some(m), Some("Pod")) => patch(&request["request"]["object"], m, opts),
        _ => Vec::new(),
    };
    let mut response = json!({ "uid": uid, "allowed": true });
    if !ops.is_empty() {
        use base64::Engine as _;
        let text = serde_json::to_vec(&ops).unwrap_or_default();
        response["patchType"] = json!("JSONPatch");
        response["patch"] = json!(base64::engine::general_purpose::STANDARD.encode(text));
    }
    json!({ "apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview", "response": response })
}
