//! MCP request spans from `aigw-extproc`'s MCP listener (`--mcp-addr`) over OTLP: the
//! same checks as `aigw run`'s (`aigw-axum/tests/py/mcp_otel_e2e.py`) — upstream's span
//! names and attributes in both MCP vocabularies, error classes, the client's
//! `traceparent` as parent, one child span per backend request — with the official
//! `mcp` Python SDK as client and SDK-built servers as backends, received by the
//! `opentelemetry-proto` OTLP receiver.
//!
//! Needs the test venv (`AIGW_PYTHON`, set by `scripts/test.sh`); skipped with a note
//! when missing unless `AIGW_REQUIRE_EXTERNAL=1`.
#![allow(clippy::unwrap_used, clippy::panic, clippy::print_stderr, missing_docs)]

use std::process::Command;

fn run(scenario: &str) {
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
        "/../aigw-axum/tests/py/mcp_otel_e2e.py"
    );
    let out = Command::new(py)
        .args([
            script,
            "extproc",
            env!("CARGO_BIN_EXE_aigw-extproc"),
            scenario,
        ])
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
fn mcp_listener_spans_in_the_default_vocabulary() {
    run("openinference");
}

#[test]
fn mcp_listener_spans_in_the_otel_mcp_vocabulary() {
    run("gen_ai");
}
