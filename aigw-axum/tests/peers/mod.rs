//! Helpers for the tests that drive the `aigw` binary and external peers as processes.
#![allow(
    unreachable_pub,
    clippy::unwrap_used,
    clippy::panic,
    clippy::print_stderr,
    dead_code
)]

use std::net::{SocketAddr, TcpStream};
use std::path::PathBuf;
use std::process::Child;
use std::time::{Duration, Instant};

/// The path an external peer's variable names, set by `scripts/test.sh`; `None` (skip)
/// when unset, a failure when `AIGW_REQUIRE_EXTERNAL=1`.
pub fn external(var: &str) -> Option<PathBuf> {
    match std::env::var_os(var) {
        Some(p) => Some(PathBuf::from(p)),
        None if std::env::var("AIGW_REQUIRE_EXTERNAL").as_deref() == Ok("1") => {
            panic!("{var} is not set but AIGW_REQUIRE_EXTERNAL=1")
        }
        None => {
            eprintln!("skipping: {var} is not set (run scripts/test.sh)");
            None
        }
    }
}

/// A child process killed and reaped when dropped.
pub struct Proc(pub Child);

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[path = "ports.rs"]
mod ports;
// Not every test binary that includes these helpers takes a port itself.
#[allow(unused_imports)]
pub use ports::{free_addr, free_port};

/// Waits until something accepts connections on `addr` (a debug binary under a loaded
/// machine can take many seconds to start).
pub fn wait_listening(addr: SocketAddr) {
    let start = Instant::now();
    while TcpStream::connect(addr).is_err() {
        assert!(
            start.elapsed() < Duration::from_secs(30),
            "{addr} never listened"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[path = "redis.rs"]
mod redis;
// Not every test binary that includes these helpers starts a Redis.
#[allow(unused_imports)]
pub use redis::{REDIS_PASSWORD, RedisServer, redis_server};

/// An Envoy Gateway `Backend` at `addr` and the `AIServiceBackend` of `schema` on it.
pub fn backend(name: &str, schema: &str, addr: SocketAddr) -> String {
    format!(
        "---\napiVersion: gateway.envoyproxy.io/v1alpha1\nkind: Backend\nmetadata:\n  name: {name}\n  namespace: default\nspec:\n  endpoints:\n    - ip:\n        address: {ip}\n        port: {port}\n---\napiVersion: aigateway.envoyproxy.io/v1beta1\nkind: AIServiceBackend\nmetadata:\n  name: {name}\n  namespace: default\nspec:\n  schema:\n    name: {schema}\n  backendRef:\n    name: {name}\n    kind: Backend\n    group: gateway.envoyproxy.io\n",
        ip = addr.ip(),
        port = addr.port()
    )
}

/// A `BackendSecurityPolicy` named `name` over `targets` with the `spec` lines given.
pub fn policy(name: &str, targets: &[&str], spec: &str) -> String {
    let refs: String = targets
        .iter()
        .map(|t| {
            format!("    - group: aigateway.envoyproxy.io\n      kind: AIServiceBackend\n      name: {t}\n")
        })
        .collect();
    format!(
        "---\napiVersion: aigateway.envoyproxy.io/v1beta1\nkind: BackendSecurityPolicy\nmetadata:\n  name: {name}\n  namespace: default\nspec:\n  targetRefs:\n{refs}{spec}"
    )
}

/// A `Secret` with one string entry.
pub fn secret(name: &str, key: &str, value: &str) -> String {
    // A one-line value stays one line (a block scalar would add a newline).
    let value = if value.contains('\n') {
        let indented: String = value.lines().map(|l| format!("    {l}\n")).collect();
        format!("|\n{indented}")
    } else {
        format!("{}\n", serde_json::to_string(value).unwrap())
    };
    format!(
        "---\napiVersion: v1\nkind: Secret\nmetadata:\n  name: {name}\n  namespace: default\ntype: Opaque\nstringData:\n  {key}: {value}"
    )
}

/// `aigw simulate` on a free loopback port, and its address.
pub fn simulator_process(aigw: &std::path::Path) -> (Proc, SocketAddr) {
    let sim = free_addr();
    let p = Proc(
        std::process::Command::new(aigw)
            .args(["simulate", "--listen", &sim.to_string()])
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap(),
    );
    wait_listening(sim);
    (p, sim)
}

/// `tests/py/bedrock_botocore_proxy.py` in front of `upstream`: every Bedrock request's
/// SigV4 recomputed with botocore for `key`/`secret`/`region` and its body validated,
/// one JSON line per request appended to `checks`. Returns the hop's address.
pub fn botocore_checker(
    python: &std::path::Path,
    upstream: SocketAddr,
    (key, secret, region): (&str, &str, &str),
    checks: &std::path::Path,
) -> (Proc, SocketAddr) {
    let checker = free_addr();
    let script =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/py/bedrock_botocore_proxy.py");
    let p = Proc(
        std::process::Command::new(python)
            .arg(&script)
            .args([
                &checker.port().to_string(),
                &upstream.to_string(),
                key,
                secret,
                region,
            ])
            .arg(checks)
            .stdout(std::process::Stdio::null())
            .spawn()
            .unwrap(),
    );
    wait_listening(checker);
    (p, checker)
}

/// `aigw run CONFIG` with its log (info level) in `log`; returns the listen and admin
/// addresses.
pub fn aigw_run(
    aigw: &std::path::Path,
    config: &std::path::Path,
    log: &std::path::Path,
) -> (Proc, SocketAddr, SocketAddr) {
    let (listen, admin) = (free_addr(), free_addr());
    let p = Proc(
        std::process::Command::new(aigw)
            .arg("run")
            .arg(config)
            .args([
                "--listen",
                &listen.to_string(),
                "--admin",
                &admin.to_string(),
            ])
            .env("RUST_LOG", "info")
            .stdout(std::process::Stdio::null())
            .stderr(std::fs::File::create(log).unwrap())
            .spawn()
            .unwrap(),
    );
    wait_listening(listen);
    (p, listen, admin)
}
