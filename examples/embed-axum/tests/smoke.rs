//! Runs the example in smoke mode: it must start, serve one request through its own auth
//! layer and the mounted gateway to the in-process simulator, and exit 0.
#![allow(clippy::unwrap_used, missing_docs)]

#[test]
fn example_serves_one_request_and_exits_zero() {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_embed-axum"))
        .arg("--smoke")
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.contains("smoke ok"), "{stdout}");
}
