//! The example with `--mcp`: the MCP gateway mounted beside the application's routes,
//! two MCP servers built with the official `mcp` Python SDK behind it, driven by the
//! SDK's client (the scripts `aigw run`'s MCP test uses).
#![allow(clippy::unwrap_used, clippy::panic, clippy::print_stderr, missing_docs)]

use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

struct Proc(Child);
impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn free() -> SocketAddr {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
}

fn wait(addr: SocketAddr) {
    let start = Instant::now();
    while TcpStream::connect(addr).is_err() {
        assert!(
            start.elapsed() < Duration::from_secs(30),
            "{addr} never listened"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn script(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../aigw-axum/tests/py")
        .join(name)
}

#[test]
fn mcp_mounted_beside_the_application() {
    let Some(python) = std::env::var_os("AIGW_PYTHON").map(PathBuf::from) else {
        assert!(
            std::env::var("AIGW_REQUIRE_EXTERNAL").as_deref() != Ok("1"),
            "AIGW_PYTHON is not set"
        );
        eprintln!("skipping: AIGW_PYTHON is not set (run scripts/test.sh)");
        return;
    };
    let (a, b, listen) = (free(), free(), free());
    let backend = |name: &str, addr: SocketAddr| {
        let p = Proc(
            Command::new(&python)
                .arg(script("mcp_backend.py"))
                .args([name, &addr.port().to_string()])
                .stdout(Stdio::null())
                .spawn()
                .unwrap(),
        );
        wait(addr);
        p
    };
    let _alpha = backend("alpha", a);
    let beta = backend("beta", b);
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("mcp.yaml");
    let backend_doc = |name: &str, addr: SocketAddr| {
        format!(
            "---\napiVersion: gateway.envoyproxy.io/v1alpha1\nkind: Backend\nmetadata: {{name: {name}, namespace: default}}\nspec: {{endpoints: [{{ip: {{address: 127.0.0.1, port: {}}}}}]}}\n",
            addr.port()
        )
    };
    let yaml = format!(
        "apiVersion: gateway.networking.k8s.io/v1\nkind: Gateway\nmetadata: {{name: gw, namespace: default}}\nspec: {{gatewayClassName: app, listeners: [{{name: http, protocol: HTTP, port: 3000}}]}}\n---\napiVersion: aigateway.envoyproxy.io/v1beta1\nkind: MCPRoute\nmetadata: {{name: tools, namespace: default}}\nspec:\n  parentRefs: [{{name: gw}}]\n  backendRefs:\n    - {{name: alpha, group: gateway.envoyproxy.io, kind: Backend, toolSelector: {{exclude: [secret_admin]}}}}\n    - {{name: beta, group: gateway.envoyproxy.io, kind: Backend}}\n{}{}",
        backend_doc("alpha", a),
        backend_doc("beta", b)
    );
    std::fs::write(&cfg, yaml).unwrap();
    let _app = Proc(
        Command::new(env!("CARGO_BIN_EXE_embed-axum"))
            .arg("--mcp")
            .arg(&cfg)
            .args(["--listen", &listen.to_string()])
            .stdout(Stdio::null())
            .spawn()
            .unwrap(),
    );
    wait(listen);
    let out = Command::new(&python)
        .arg(script("mcp_client.py"))
        .arg(format!("http://{listen}/mcp"))
        .arg(beta.0.id().to_string())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "client failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["echo"], serde_json::json!(["alpha: hi"]));
    assert_eq!(v["add"], serde_json::json!(["5"]));
    assert_eq!(v["ask"], serde_json::json!(["alpha heard: forty-two"]));
    assert_eq!(v["progress"].as_array().unwrap().len(), 3);
    assert!(
        !v["tools"]
            .as_array()
            .unwrap()
            .contains(&serde_json::json!("alpha__secret_admin"))
    );
    assert_eq!(
        v["after_kill_alpha"],
        serde_json::json!(["alpha: still here"])
    );
}
