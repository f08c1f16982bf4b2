//! The example with `--mcp` and the standard `OTEL_*` settings: the MCP gateway an axum
//! application mounts exports upstream's MCP spans (a child span per backend request)
//! to a real OTLP receiver, checked by the script `aigw run`'s and `aigw-extproc`'s MCP
//! telemetry tests use (`aigw-axum/tests/py/mcp_otel_e2e.py`).
#![allow(clippy::unwrap_used, clippy::panic, clippy::print_stderr, missing_docs)]

use std::process::Command;

fn run(scenario: &str) {
    let Some(py) = std::env::var_os("AIGW_PYTHON") else {
        assert!(
            std::env::var("AIGW_REQUIRE_EXTERNAL").as_deref() != Ok("1"),
            "AIGW_PYTHON is not set"
        );
        eprintln!("skipping: AIGW_PYTHON is not set (run scripts/test.sh)");
        return;
    };
    let script = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../aigw-axum/tests/py/mcp_otel_e2e.py"
    );
    let out = Command::new(py)
        .args([script, "embed", env!("CARGO_BIN_EXE_embed-axum"), scenario])
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
fn embedded_mcp_spans_in_the_default_vocabulary() {
    run("openinference");
}

#[test]
fn embedded_mcp_spans_in_the_otel_mcp_vocabulary() {
    run("gen_ai");
}
