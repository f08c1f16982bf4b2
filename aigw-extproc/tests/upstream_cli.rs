//! The binary started as the upstream controller starts its ExtProc: flag errors,
//! version gate at start, and a config bundle still being written.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::print_stderr,
    missing_docs
)]

mod common;

use common::envoy::{Proc, free_port, wait_http_ok};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const BIN: &str = env!("CARGO_BIN_EXE_aigw-extproc");

const CONFIG: &str = "version: v1.1.0\nuuid: u1\nbackends:\n  - name: b\n    schema: {name: OpenAI}\n    auth: {apiKey: {key: sk-cli}}\n";

#[test]
fn bad_flags_exit_2_as_go_flag_does() {
    let out = Command::new(BIN)
        .args(["-adminPort", "1064"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("either configPath or configBundlePath"),
        "{err}"
    );
    let out = Command::new(BIN)
        .args(["-configPath", "x", "-noSuchFlag", "1"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
}

#[test]
fn version_mismatch_at_start_fails() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("filter-config.yaml");
    std::fs::write(&cfg, CONFIG.replace("v1.1.0", "v1.0.2")).unwrap();
    let out = Command::new(BIN)
        .arg("-configPath")
        .arg(&cfg)
        .args(["-extProcAddr", &format!(":{}", free_port())])
        .args(["-adminPort", &free_port().to_string()])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("config version mismatch"), "{err}");
    assert!(!err.contains("sk-cli"), "{err}");
}

#[tokio::test]
async fn bundle_being_written_is_retried() {
    let dir = tempfile::tempdir().unwrap();
    let bundle = dir.path().join("bundle");
    std::fs::create_dir_all(bundle.join("parts")).unwrap();
    std::fs::write(bundle.join("parts/000"), CONFIG).unwrap();
    let index = |sum: &str| {
        format!(
            "version: v1.1.0\nuuid: u1\nchecksum: \"{sum}\"\nparts:\n  - {{name: p0, path: parts/000}}\n"
        )
    };
    std::fs::write(bundle.join("index.yaml"), index(&"a".repeat(64))).unwrap();
    let admin = free_port();
    let log = dir.path().join("log");
    let _p = Proc(
        Command::new(BIN)
            .arg("-configBundlePath")
            .arg(&bundle)
            .arg(format!(
                "-extProcAddr=unix://{}",
                dir.path().join("s.sock").display()
            ))
            .args(["-adminPort", &admin.to_string()])
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).unwrap())
            .spawn()
            .unwrap(),
    );
    wait_http_ok(&format!("http://127.0.0.1:{admin}/health")).await;
    let text = std::fs::read_to_string(&log).unwrap();
    assert!(text.contains("not complete yet"), "{text}");
    // The controller finishes writing: the next poll loads it.
    std::fs::write(
        bundle.join("index.yaml"),
        index(&aigw_core::filterapi::bundle_checksum(CONFIG.as_bytes())),
    )
    .unwrap();
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let text = std::fs::read_to_string(&log).unwrap();
        if text.contains("filter configuration loaded") {
            break;
        }
        assert!(Instant::now() < deadline, "{text}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}
