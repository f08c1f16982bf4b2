//! MCP request spans from `aigw run` over OTLP, received by a real OTLP receiver (the
//! official `opentelemetry-proto` messages behind a gRPC server) while the official
//! `mcp` Python SDK client talks to two SDK-built MCP servers through the gateway:
//! upstream's span names and attributes in both MCP vocabularies, errors with its
//! error classes, the client's `traceparent` (header or `_meta`) as parent, one child
//! span per backend request whose context reaches the backend. The checks live in
//! `tests/py/mcp_otel_e2e.py`.
//!
//! Needs the test venv (`AIGW_PYTHON`, set by `scripts/test.sh`); skipped with a note
//! when it is missing, unless `AIGW_REQUIRE_EXTERNAL=1`.
#![allow(clippy::unwrap_used, clippy::panic, clippy::print_stderr, missing_docs)]

#[path = "peers/mod.rs"]
mod peers;

use std::process::Command;

fn run(scenario: &str) {
    let Some(py) = peers::external("AIGW_PYTHON") else {
        return;
    };
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/py/mcp_otel_e2e.py");
    let out = Command::new(py)
        .args([script, "aigw", env!("CARGO_BIN_EXE_aigw"), scenario])
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
fn mcp_spans_in_the_default_vocabulary() {
    run("openinference");
}

#[test]
fn mcp_spans_in_the_otel_mcp_vocabulary() {
    run("gen_ai");
}

#[test]
fn mcp_tool_content_only_with_the_genai_opt_in() {
    run("gen_ai_content");
}
