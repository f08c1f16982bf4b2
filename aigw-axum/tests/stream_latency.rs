//! Streamed responses through `aigw run` over real TCP arrive without Nagle/delayed-ACK
//! stalls: with a zero-interval simulator each stream completes in well under the
//! ~40 ms a delayed ACK costs, on a reused keep-alive connection.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, missing_docs)]

mod peers;
use peers::{Proc, free_addr, wait_listening};
use std::io::{Read, Write};
use std::net::TcpStream;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// Reads one chunked HTTP/1.1 response off `conn`, returning its body text.
fn read_chunked_response(conn: &mut TcpStream) -> String {
    let mut buf = Vec::new();
    let mut tmp = [0u8; 8192];
    loop {
        let n = conn.read(&mut tmp).unwrap();
        assert!(
            n > 0,
            "connection closed early: {}",
            String::from_utf8_lossy(&buf)
        );
        buf.extend_from_slice(&tmp[..n]);
        if buf.ends_with(b"\r\n0\r\n\r\n") {
            return String::from_utf8_lossy(&buf).into_owned();
        }
    }
}

#[test]
fn streamed_requests_complete_without_delayed_ack_stalls() {
    let (listen, admin) = (free_addr(), free_addr());
    let _gw = Proc(
        Command::new(env!("CARGO_BIN_EXE_aigw"))
            .args([
                "run",
                "--listen",
                &listen.to_string(),
                "--admin",
                &admin.to_string(),
            ])
            .env_remove("OPENAI_API_KEY")
            .env_remove("AZURE_OPENAI_API_KEY")
            .env_remove("ANTHROPIC_API_KEY")
            .env_remove("AWS_ACCESS_KEY_ID")
            .env("RUST_LOG", "warn")
            .stdout(Stdio::null())
            .spawn()
            .unwrap(),
    );
    wait_listening(listen);
    let body =
        r#"{"model":"gpt-4o-mini","stream":true,"messages":[{"role":"user","content":"hi"}]}"#;
    let request = format!(
        "POST /v1/chat/completions HTTP/1.1\r\nhost: {listen}\r\ncontent-type: application/json\r\nauthorization: Bearer x\r\ncontent-length: {}\r\n\r\n{body}",
        body.len()
    );
    let mut conn = TcpStream::connect(listen).unwrap();
    // Warm up: connection setup and the gateway's first upstream connection.
    conn.write_all(request.as_bytes()).unwrap();
    let first = read_chunked_response(&mut conn);
    assert!(first.contains("data: [DONE]"), "{first}");

    let mut times = Vec::new();
    for _ in 0..10 {
        let t = Instant::now();
        conn.write_all(request.as_bytes()).unwrap();
        let text = read_chunked_response(&mut conn);
        times.push(t.elapsed());
        assert!(text.starts_with("HTTP/1.1 200"), "{text}");
        assert!(text.matches("data: ").count() >= 3, "{text}");
    }
    times.sort();
    let median = times[times.len() / 2];
    assert!(
        median < Duration::from_millis(30),
        "median streamed request took {median:?} (all: {times:?}); Nagle + delayed ACK?"
    );
}
