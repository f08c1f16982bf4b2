//! Shared helpers of the integration tests: finding external peers and spawning them.
#![allow(
    unreachable_pub,
    dead_code,
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::print_stdout
)]

use std::path::PathBuf;
use std::process::Stdio;

/// The venv python, or `None` (with a printed note) when the peer is not installed.
/// With `AIGW_REQUIRE_EXTERNAL=1` a missing peer fails the test instead.
pub fn python(test: &str) -> Option<PathBuf> {
    match std::env::var_os("AIGW_PYTHON") {
        Some(p) if !p.is_empty() => Some(PathBuf::from(p)),
        _ => skip(test, "AIGW_PYTHON"),
    }
}

/// The venv's bin directory (for `moto_server`).
pub fn venv_bin(test: &str) -> Option<PathBuf> {
    match std::env::var_os("AIGW_VENV_BIN") {
        Some(p) if !p.is_empty() => Some(PathBuf::from(p)),
        _ => skip(test, "AIGW_VENV_BIN"),
    }
}

/// The directory `npm install --prefix` put `oauth2-mock-server` in.
pub fn npm_dir(test: &str) -> Option<PathBuf> {
    match std::env::var_os("AIGW_NPM_DIR") {
        Some(p) if !p.is_empty() => Some(PathBuf::from(p)),
        _ => skip(test, "AIGW_NPM_DIR"),
    }
}

fn skip<T>(test: &str, var: &str) -> Option<T> {
    if std::env::var("AIGW_REQUIRE_EXTERNAL").as_deref() == Ok("1") {
        panic!("{test}: {var} is not set but AIGW_REQUIRE_EXTERNAL=1");
    }
    println!("skipping {test}: {var} is not set (run scripts/test.sh)");
    None
}

/// Path of a helper script under `tests/py`.
pub fn script(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/py")
        .join(name)
}

/// Runs `python script` with `input` on stdin and parses its stdout as JSON.
pub fn run_py(python: &PathBuf, script_name: &str, input: &serde_json::Value) -> serde_json::Value {
    use std::io::Write;
    let mut child = std::process::Command::new(python)
        .arg(script(script_name))
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(input.to_string().as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "{script_name} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

/// A child process killed when dropped.
#[derive(Debug)]
pub struct Peer(pub std::process::Child);

impl Drop for Peer {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[path = "../../aigw-axum/tests/peers/ports.rs"]
mod ports;
#[allow(unused_imports)]
pub use ports::free_port;

/// Waits until something accepts connections on `port`.
pub async fn wait_for_port(port: u16) {
    for _ in 0..200 {
        if tokio::net::TcpStream::connect(("127.0.0.1", port))
            .await
            .is_ok()
        {
            return;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    panic!("nothing listens on 127.0.0.1:{port}");
}

/// A bearer token's value.
pub fn bearer_of(c: &aigw_core::Credential) -> String {
    match &c.material {
        aigw_core::CredentialMaterial::Token(t) => t.expose().to_owned(),
        other => panic!("{other:?}"),
    }
}

/// Waits for a background refresh of `rot` to finish.
pub async fn settle(rot: &aigw_auth::Rotating) {
    for _ in 0..400 {
        if !rot.is_refreshing() {
            return;
        }
        tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    }
    panic!("refresh did not finish");
}

/// The token-endpoint outage every federated path must survive, starting with `old`
/// (valid for an hour) cached, the subject token file rewritten and the endpoint down:
/// `old` keeps being served while valid; past its expiry an error names `policy` and
/// leaks no token; with the endpoint back (`up`), the next refresh gives `new`.
pub async fn outage_until_expiry_then_recovery(
    rot: &aigw_auth::Rotating,
    clock: &aigw_auth::ManualClock,
    up: impl Fn(),
    (old, new, policy): (&str, &str, &str),
) {
    use aigw_core::CredentialProvider;
    use std::time::Duration;
    clock.advance(Duration::from_secs(3600 - 60));
    assert_eq!(
        bearer_of(&rot.credential().await.unwrap()),
        old,
        "still valid"
    );
    settle(rot).await;
    assert_eq!(bearer_of(&rot.credential().await.unwrap()), old);
    settle(rot).await;

    // Past its expiry the old token is never used: a clear error naming the policy.
    clock.advance(Duration::from_secs(61));
    let e = rot.credential().await.unwrap_err().to_string();
    settle(rot).await;
    assert!(e.contains(policy), "{e}");
    assert!(!e.contains(old), "{e}");

    // The endpoint is back: the next refresh (after the backoff) succeeds.
    up();
    clock.advance(Duration::from_secs(120));
    let mut got = None;
    for _ in 0..20 {
        match rot.credential().await {
            Ok(c) => {
                got = Some(bearer_of(&c));
                break;
            }
            Err(_) => {
                settle(rot).await;
                clock.advance(Duration::from_secs(60));
            }
        }
    }
    assert_eq!(got.as_deref(), Some(new));
}
