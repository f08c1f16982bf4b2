//! The MCP gateway end to end through `aigw run`: two MCP servers built with the
//! official `mcp` Python SDK behind one MCPRoute, driven by the SDK's own client —
//! aggregated lists, routed calls, prompts, resources, a progress notification, a
//! sampling request relayed back to the client, and a backend killed mid-session.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

#[path = "peers/mod.rs"]
mod peers;

use peers::{Proc, free_addr, wait_listening};
use serde_json::{Value, json};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::{Command, Stdio};

const AIGW: &str = env!("CARGO_BIN_EXE_aigw");

fn script(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/py")
        .join(name)
}

fn backend(python: &PathBuf, name: &str, addr: SocketAddr, json: bool) -> Proc {
    let mut c = Command::new(python);
    c.arg(script("mcp_backend.py"))
        .arg(name)
        .arg(addr.port().to_string());
    if json {
        c.arg("--json");
    }
    let p = Proc(c.stdout(Stdio::null()).spawn().unwrap());
    wait_listening(addr);
    p
}

fn config(alpha: SocketAddr, beta: SocketAddr) -> String {
    format!(
        r#"apiVersion: gateway.networking.k8s.io/v1
kind: Gateway
metadata: {{name: gw, namespace: default}}
spec:
  gatewayClassName: aigw
  listeners: [{{name: http, protocol: HTTP, port: 1975}}]
---
apiVersion: aigateway.envoyproxy.io/v1beta1
kind: MCPRoute
metadata: {{name: tools, namespace: default}}
spec:
  parentRefs: [{{name: gw}}]
  backendRefs:
    - name: alpha
      group: gateway.envoyproxy.io
      kind: Backend
      toolSelector:
        excludeRegex: ["^secret_"]
    - name: beta
      group: gateway.envoyproxy.io
      kind: Backend
      securityPolicy:
        apiKey: {{inline: beta-key, header: x-api-key}}
---
apiVersion: gateway.envoyproxy.io/v1alpha1
kind: Backend
metadata: {{name: alpha, namespace: default}}
spec:
  endpoints: [{{ip: {{address: 127.0.0.1, port: {}}}}}]
---
apiVersion: gateway.envoyproxy.io/v1alpha1
kind: Backend
metadata: {{name: beta, namespace: default}}
spec:
  endpoints: [{{ip: {{address: 127.0.0.1, port: {}}}}}]
"#,
        alpha.port(),
        beta.port()
    )
}

fn start_aigw(cfg: &std::path::Path) -> (Proc, SocketAddr, SocketAddr) {
    start_aigw_with(cfg, &[])
}

fn start_aigw_with(cfg: &std::path::Path, extra: &[&str]) -> (Proc, SocketAddr, SocketAddr) {
    let (listen, admin) = (free_addr(), free_addr());
    let p = Proc(
        Command::new(AIGW)
            .args([
                "run",
                cfg.to_str().unwrap(),
                "--listen",
                &listen.to_string(),
            ])
            .args([
                "--admin",
                &admin.to_string(),
                "--mcp-session-seed",
                "test-seed",
            ])
            .args(["--mcp-session-iterations", "1000"])
            .args(extra)
            .stdout(Stdio::null())
            .spawn()
            .unwrap(),
    );
    wait_listening(listen);
    (p, listen, admin)
}

fn http_get(addr: SocketAddr, path: &str) -> String {
    use std::io::{Read, Write};
    let mut s = std::net::TcpStream::connect(addr).unwrap();
    write!(s, "GET {path} HTTP/1.0\r\nHost: {addr}\r\n\r\n").unwrap();
    let mut out = String::new();
    s.read_to_string(&mut out).unwrap();
    out
}

/// POSTs an MCP `initialize` and returns the response's status code.
fn initialize_status(addr: SocketAddr, bearer: Option<&str>) -> u16 {
    use std::io::{Read, Write};
    let body = json!({
        "jsonrpc": "2.0", "id": 1, "method": "initialize",
        "params": {"protocolVersion": "2025-06-18", "capabilities": {},
                   "clientInfo": {"name": "probe", "version": "1"}}
    })
    .to_string();
    let auth = bearer.map_or(String::new(), |k| format!("authorization: Bearer {k}\r\n"));
    let mut s = std::net::TcpStream::connect(addr).unwrap();
    write!(
        s,
        "POST /mcp HTTP/1.0\r\nHost: {addr}\r\ncontent-type: application/json\r\n\
         accept: application/json, text/event-stream\r\n{auth}content-length: {}\r\n\r\n{body}",
        body.len()
    )
    .unwrap();
    let mut out = String::new();
    s.read_to_string(&mut out).unwrap();
    out.split_whitespace().nth(1).unwrap().parse().unwrap()
}

fn run_client(python: &PathBuf, url: &str, kill: Option<u32>) -> Value {
    let mut c = Command::new(python);
    c.arg(script("mcp_client.py")).arg(url);
    if let Some(pid) = kill {
        c.arg(pid.to_string());
    }
    let out = c.output().unwrap();
    assert!(
        out.status.success(),
        "client failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

#[test]
fn python_sdk_client_through_aigw_run() {
    let Some(python) = peers::external("AIGW_PYTHON") else {
        return;
    };
    let (a, b) = (free_addr(), free_addr());
    let _alpha = backend(&python, "alpha", a, false);
    let beta = backend(&python, "beta", b, true);
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("mcp.yaml");
    std::fs::write(&cfg, config(a, b)).unwrap();
    let (_gw, listen, admin) = start_aigw(&cfg);
    let out = run_client(&python, &format!("http://{listen}/mcp"), Some(beta.0.id()));

    assert_eq!(out["server"], "aigw");
    assert_eq!(out["protocol"], "2025-06-18");
    let tools: Vec<&str> = out["tools"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap())
        .collect();
    for t in [
        "alpha__echo",
        "alpha__ask",
        "beta__add",
        "beta__countdown",
        "beta__secret_admin",
    ] {
        assert!(tools.contains(&t), "{t} missing from {tools:?}");
    }
    assert!(
        !tools.contains(&"alpha__secret_admin"),
        "toolSelector must hide it"
    );
    assert_eq!(out["echo"], json!(["alpha: hi"]));
    assert_eq!(out["add"], json!(["5"]));
    assert!(
        out["hidden"]["error"]
            .as_str()
            .is_some_and(|e| e.contains("invalid tool name")),
        "{}",
        out["hidden"]
    );
    assert_eq!(out["prompts"], json!(["alpha__greet", "beta__greet"]));
    assert_eq!(out["prompt"], json!(["beta greets ann"]));
    assert_eq!(
        out["resources"],
        json!(["alpha+mem://alpha/info", "beta+mem://beta/info"])
    );
    assert_eq!(
        out["templates"],
        json!([
            "alpha+mem://alpha/items/{item}",
            "beta+mem://beta/items/{item}"
        ])
    );
    assert_eq!(
        out["read"],
        json!([["alpha+mem://alpha/info", "info of alpha"]])
    );
    assert_eq!(out["read_template"], json!(["beta item 7"]));
    assert_eq!(out["countdown"], json!(["alpha counted 3"]));
    assert_eq!(
        out["progress"].as_array().unwrap().len(),
        3,
        "{}",
        out["progress"]
    );
    assert_eq!(out["sampled"], json!(["meaning of life?"]));
    assert_eq!(out["ask"], json!(["alpha heard: forty-two"]));
    assert_eq!(out["link"], json!(["alpha+mem://alpha/info"]));
    // beta killed mid-session: its calls fail, alpha's go on, lists name the failure.
    assert!(
        out["after_kill_beta"]["error"]
            .as_str()
            .is_some_and(|e| e.contains("beta")),
        "{}",
        out["after_kill_beta"]
    );
    assert_eq!(out["after_kill_alpha"], json!(["alpha: still here"]));
    assert!(
        out["after_kill_tools"]
            .as_array()
            .unwrap()
            .iter()
            .all(|t| t.as_str().unwrap().starts_with("alpha__"))
    );
    assert_eq!(
        out["after_kill_meta"]["aigw/failedBackends"][0]["backend"],
        "beta"
    );
    // Metrics per method, backend and tool on the admin listener.
    let metrics = http_get(admin, "/metrics");
    for series in [
        r#"mcp_method_count_total{mcp_method_name="tools/call",mcp_backend="alpha",mcp_tool_name="echo",status="success"} 2"#,
        r#"mcp_method_count_total{mcp_method_name="tools/call",mcp_backend="beta",mcp_tool_name="echo",status="error"} 1"#,
        r#"mcp_backend_errors_total{mcp_method_name="tools/list",mcp_backend="beta"} 1"#,
    ] {
        assert!(metrics.contains(series), "{series} missing:\n{metrics}");
    }
}

/// A Gateway-level client key guards an MCPRoute without OAuth of its own, as Envoy
/// applies a Gateway's SecurityPolicy to every route.
#[test]
fn gateway_client_auth_guards_mcp_routes_without_their_own_oauth() {
    let Some(python) = peers::external("AIGW_PYTHON") else {
        return;
    };
    let (a, b) = (free_addr(), free_addr());
    let _alpha = backend(&python, "alpha", a, false);
    let _beta = backend(&python, "beta", b, true);
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("mcp.yaml");
    std::fs::write(&cfg, config(a, b)).unwrap();
    let keys = dir.path().join("keys");
    std::fs::write(&keys, "team-a:sk-team-a\n").unwrap();
    let (_gw, listen, _admin) =
        start_aigw_with(&cfg, &["--client-api-keys", keys.to_str().unwrap()]);
    wait_listening(a);
    wait_listening(b);
    assert_eq!(initialize_status(listen, None), 401);
    assert_eq!(initialize_status(listen, Some("sk-wrong")), 401);
    assert_eq!(initialize_status(listen, Some("sk-team-a")), 200);
}

/// The Rust MCP SDK's client (`rmcp`, Streamable HTTP) against the gateway, with a
/// bearer token when given: initialize, the aggregated tool list, and one call.
async fn rmcp_session(
    url: &str,
    bearer: Option<&str>,
) -> Result<rmcp::service::RunningService<rmcp::RoleClient, ()>, String> {
    use rmcp::ServiceExt as _;
    use rmcp::transport::StreamableHttpClientTransport;
    use rmcp::transport::streamable_http_client::StreamableHttpClientTransportConfig;
    let mut config = StreamableHttpClientTransportConfig::with_uri(url.to_string());
    if let Some(t) = bearer {
        config = config.auth_header(t.to_string());
    }
    ().serve(StreamableHttpClientTransport::from_config(config))
        .await
        .map_err(|e| e.to_string())
}

async fn rmcp_call(
    client: &rmcp::service::RunningService<rmcp::RoleClient, ()>,
    name: &str,
    args: Value,
) -> Result<String, String> {
    let params = rmcp::model::CallToolRequestParams::new(name.to_string())
        .with_arguments(args.as_object().cloned().unwrap_or_default());
    let r = client.call_tool(params).await.map_err(|e| e.to_string())?;
    let v = serde_json::to_value(&r).unwrap();
    Ok(v["content"][0]["text"]
        .as_str()
        .unwrap_or_default()
        .to_string())
}

async fn rmcp_tools(client: &rmcp::service::RunningService<rmcp::RoleClient, ()>) -> Vec<String> {
    let mut t: Vec<String> = client
        .list_all_tools()
        .await
        .unwrap()
        .into_iter()
        .map(|t| t.name.to_string())
        .collect();
    t.sort();
    t
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rmcp_client_through_aigw_run() {
    let Some(python) = peers::external("AIGW_PYTHON") else {
        return;
    };
    let (a, b) = (free_addr(), free_addr());
    let _alpha = backend(&python, "alpha", a, false);
    let _beta = backend(&python, "beta", b, true);
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("mcp.yaml");
    std::fs::write(&cfg, config(a, b)).unwrap();
    let (_gw, listen, _admin) = start_aigw(&cfg);

    let client = rmcp_session(&format!("http://{listen}/mcp"), None)
        .await
        .unwrap();
    let info = client.peer_info().unwrap();
    assert_eq!(info.server_info.as_ref().unwrap().name, "aigw");
    let tools = rmcp_tools(&client).await;
    for t in [
        "alpha__echo",
        "alpha__ask",
        "beta__add",
        "beta__secret_admin",
    ] {
        assert!(tools.iter().any(|x| x == t), "{t} missing from {tools:?}");
    }
    assert!(!tools.iter().any(|x| x == "alpha__secret_admin"));
    assert_eq!(
        rmcp_call(&client, "alpha__echo", json!({"text": "from rust"}))
            .await
            .unwrap(),
        "alpha: from rust"
    );
    assert_eq!(
        rmcp_call(&client, "beta__add", json!({"a": 40, "b": 2}))
            .await
            .unwrap(),
        "42"
    );
    // A hidden tool is refused by the gateway, and the SDK reports it.
    assert!(
        rmcp_call(&client, "alpha__secret_admin", json!({}))
            .await
            .is_err()
    );
    client.cancel().await.unwrap();
}

/// An issuer on oauth2-mock-server (npm), started as `tests/js/oauth_issuer.mjs`.
struct Issuer {
    _proc: Proc,
    url: String,
}

fn oauth_issuer() -> Option<Issuer> {
    use std::io::BufRead as _;
    let npm = peers::external("AIGW_NPM_DIR")?;
    let port = free_addr().port();
    let mut child = Command::new("node")
        .arg(PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/js/oauth_issuer.mjs"))
        .arg(port.to_string())
        .env("AIGW_NPM_DIR", npm)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut line = String::new();
    std::io::BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let url = line
        .strip_prefix("READY ")
        .unwrap_or_else(|| panic!("oauth issuer did not start: {line:?}"))
        .trim()
        .to_string();
    Some(Issuer {
        _proc: Proc(child),
        url,
    })
}

impl Issuer {
    async fn token(&self, scope: &str, extra: &[(&str, &str)]) -> String {
        let mut form = vec![
            ("grant_type", "client_credentials"),
            ("client_id", "mcp-test"),
            ("scope", scope),
        ];
        form.extend_from_slice(extra);
        let v: Value = reqwest::Client::new()
            .post(format!("{}/token", self.url))
            .form(&form)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        v["access_token"].as_str().unwrap().to_string()
    }
}

fn oauth_config(alpha: SocketAddr, beta: SocketAddr, issuer: &str, listen: SocketAddr) -> String {
    config(alpha, beta).replace(
        "  backendRefs:\n",
        &format!(
            r#"  securityPolicy:
    oauth:
      issuer: {issuer}
      audiences: [mcp-gateway]
      protectedResourceMetadata:
        resource: http://{listen}/mcp
        scopesSupported: [tools.read, tools.admin]
    authorization:
      rules:
        - source: {{jwt: {{scopes: [tools.admin]}}}}
        - source: {{jwt: {{scopes: [tools.read]}}}}
          target: {{tools: [{{backend: alpha, tool: echo}}]}}
  backendRefs:
"#
        ),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oauth_with_tokens_from_oauth2_mock_server() {
    let Some(python) = peers::external("AIGW_PYTHON") else {
        return;
    };
    let Some(issuer) = oauth_issuer() else {
        return;
    };
    let (a, b) = (free_addr(), free_addr());
    let _alpha = backend(&python, "alpha", a, false);
    let _beta = backend(&python, "beta", b, true);
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("mcp.yaml");
    let listen = free_addr();
    // No `jwks`: the keys are found through the issuer's discovery metadata.
    std::fs::write(&cfg, oauth_config(a, b, &issuer.url, listen)).unwrap();
    let admin = free_addr();
    let _gw = Proc(
        Command::new(AIGW)
            .args([
                "run",
                cfg.to_str().unwrap(),
                "--listen",
                &listen.to_string(),
            ])
            .args(["--admin", &admin.to_string(), "--mcp-session-seed", "s"])
            .args(["--mcp-session-iterations", "1000"])
            .stdout(Stdio::null())
            .spawn()
            .unwrap(),
    );
    wait_listening(listen);
    let url = format!("http://{listen}/mcp");

    // Refused tokens: none, expired, another audience.
    assert_eq!(initialize_status(listen, None), 401);
    let expired = issuer.token("tools.admin", &[("expired", "1")]).await;
    assert_eq!(initialize_status(listen, Some(&expired)), 401);
    let other = issuer
        .token("tools.admin", &[("audience", "someone-else")])
        .await;
    assert_eq!(initialize_status(listen, Some(&other)), 401);
    assert!(rmcp_session(&url, Some(&expired)).await.is_err());

    // A reader sees and calls alpha's echo only; other calls get 403.
    let reader = issuer.token("tools.read", &[]).await;
    let client = rmcp_session(&url, Some(&reader)).await.unwrap();
    assert_eq!(rmcp_tools(&client).await, ["alpha__echo"]);
    assert_eq!(
        rmcp_call(&client, "alpha__echo", json!({"text": "hi"}))
            .await
            .unwrap(),
        "alpha: hi"
    );
    let denied = rmcp_call(&client, "beta__add", json!({"a": 1, "b": 2})).await;
    assert!(denied.is_err(), "{denied:?}");
    client.cancel().await.unwrap();

    // An admin sees and calls everything the selectors allow.
    let admin_token = issuer.token("tools.admin", &[("sub", "bob")]).await;
    let client = rmcp_session(&url, Some(&admin_token)).await.unwrap();
    assert!(rmcp_tools(&client).await.iter().any(|t| t == "beta__add"));
    assert_eq!(
        rmcp_call(&client, "beta__add", json!({"a": 2, "b": 3}))
            .await
            .unwrap(),
        "5"
    );
    client.cancel().await.unwrap();

    // The RFC 9728 document and the issuer's own metadata, proxied.
    let prm = http_get(listen, "/.well-known/oauth-protected-resource/mcp");
    assert!(prm.contains(&issuer.url), "{prm}");
    let asm = http_get(listen, "/.well-known/oauth-authorization-server/mcp");
    assert!(
        asm.contains(&format!("\"token_endpoint\":\"{}/token\"", issuer.url)),
        "{asm}"
    );
}

/// An MCPRoute without OAuth of its own, guarded by the gateway-level JWT check
/// (`--jwt-jwks`, as a Gateway SecurityPolicy `jwt`): its authorization rules read the
/// verified token's claims and scopes (`request.auth.jwt.claims`, `.scopes` in CEL,
/// optional syntax included; `source.jwt` rules need the route's own `oauth`, as
/// upstream's validation says).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn gateway_jwt_claims_reach_mcp_authorization_rules() {
    let Some(python) = peers::external("AIGW_PYTHON") else {
        return;
    };
    let Some(issuer) = oauth_issuer() else {
        return;
    };
    let (a, b) = (free_addr(), free_addr());
    let _alpha = backend(&python, "alpha", a, false);
    let _beta = backend(&python, "beta", b, true);
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("mcp.yaml");
    let rules = r#"  securityPolicy:
    authorization:
      rules:
        - cel: "request.auth.jwt.claims.team == 'blue' && request.auth.jwt.claims.?sub.orValue('') == 'carol'"
          target: {tools: [{backend: alpha, tool: echo}]}
        - cel: "'tools.admin' in request.auth.jwt.scopes"
  backendRefs:
"#;
    std::fs::write(&cfg, config(a, b).replace("  backendRefs:\n", rules)).unwrap();
    let jwks = format!("{}/jwks", issuer.url);
    let (_gw, listen, _admin) =
        start_aigw_with(&cfg, &["--jwt-jwks", &jwks, "--jwt-issuer", &issuer.url]);
    wait_listening(a);
    wait_listening(b);
    let url = format!("http://{listen}/mcp");
    assert_eq!(initialize_status(listen, None), 401);

    // Team blue's carol: alpha's echo, from the CEL rule on her claims.
    let blue = issuer
        .token("tools.read", &[("team", "blue"), ("sub", "carol")])
        .await;
    let client = rmcp_session(&url, Some(&blue)).await.unwrap();
    assert_eq!(rmcp_tools(&client).await, ["alpha__echo"]);
    assert_eq!(
        rmcp_call(&client, "alpha__echo", json!({"text": "hi"}))
            .await
            .unwrap(),
        "alpha: hi"
    );
    let denied = rmcp_call(&client, "beta__add", json!({"a": 1, "b": 2})).await;
    assert!(denied.is_err(), "{denied:?}");
    client.cancel().await.unwrap();

    // Another team: nothing (the default is Deny).
    let red = issuer
        .token("tools.read", &[("team", "red"), ("sub", "carol")])
        .await;
    let client = rmcp_session(&url, Some(&red)).await.unwrap();
    assert!(rmcp_tools(&client).await.is_empty());
    let denied = rmcp_call(&client, "alpha__echo", json!({"text": "hi"})).await;
    assert!(denied.is_err(), "{denied:?}");
    client.cancel().await.unwrap();

    // The admin scope of the verified token: everything.
    let admin = issuer.token("tools.admin", &[("sub", "bob")]).await;
    let client = rmcp_session(&url, Some(&admin)).await.unwrap();
    assert_eq!(
        rmcp_call(&client, "beta__add", json!({"a": 2, "b": 3}))
            .await
            .unwrap(),
        "5"
    );
    client.cancel().await.unwrap();
}
