//! Spans and metrics over OTLP from Envoy 1.40 + `aigw-extproc`, driven by the official
//! SDKs and received by a real OTLP receiver: the same checks as the standalone
//! gateway's (`aigw-axum/tests/py/otel_e2e.py`) — span names and attributes equal to the
//! upstream's expected spans, content hidden or captured per the settings, the GenAI
//! convention, the client's `traceparent` as parent and the attempt span on the
//! upstream request Envoy sends, no credential exported or logged, dropped spans
//! counted with the receiver down.
//!
//! Needs the test venv (`AIGW_PYTHON`, `AIGW_VENV_BIN`, set by `scripts/test.sh`);
//! skipped with a note when missing unless `AIGW_REQUIRE_EXTERNAL=1`.
#![allow(clippy::unwrap_used, clippy::panic, clippy::print_stderr, missing_docs)]

mod common;

use common::envoy::envoy_binary;
use std::process::Command;

fn run(scenario: &str) {
    let Some(envoy) = envoy_binary() else { return };
    let Some(py) = std::env::var_os("AIGW_PYTHON") else {
        assert_ne!(
            std::env::var("AIGW_REQUIRE_EXTERNAL").as_deref(),
            Ok("1"),
            "AIGW_PYTHON is not set but AIGW_REQUIRE_EXTERNAL=1"
        );
        eprintln!("skipping: AIGW_PYTHON is not set (run scripts/test.sh)");
        return;
    };
    let script = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../aigw-axum/tests/py/otel_e2e.py"
    );
    let path = format!(
        "{}:{}",
        envoy.parent().unwrap().display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let out = Command::new(py)
        .args([script, env!("CARGO_BIN_EXE_aigw-extproc"), scenario])
        .env("PATH", path)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{scenario}:\n{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn openinference_spans_through_envoy_match_upstream() {
    run("openinference");
}

#[test]
fn openinference_content_hidden_through_envoy() {
    run("hidden");
}

#[test]
fn genai_convention_through_envoy() {
    run("genai");
}

#[test]
fn receiver_down_through_envoy() {
    run("receiver_down");
}
