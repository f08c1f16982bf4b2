//! The bounds of `aigw-extproc`'s HTTP listeners (admin and MCP), with raw sockets
//! against the real binary: slow headers are cut at the header read timeout, idle
//! connections closed, a connection flood beyond the cap answered 503 with
//! `retry-after`, a declared oversize MCP body refused with 413 before it is read, and
//! SIGTERM drains and exits. The same serve loop as `aigw run`'s
//! (`aigw_core::server`), configured by the same flags.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, missing_docs)]

mod common;

use common::envoy::free_port;
use std::net::SocketAddr;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

const CONFIG: &str = r#"apiVersion: gateway.networking.k8s.io/v1
kind: Gateway
metadata: {name: gw, namespace: default}
spec:
  gatewayClassName: c
  listeners: [{name: http, protocol: HTTP, port: 80}]
---
apiVersion: aigateway.envoyproxy.io/v1beta1
kind: AIGatewayRoute
metadata: {name: chat, namespace: default}
spec:
  parentRefs: [{name: gw, kind: Gateway, group: gateway.networking.k8s.io}]
  rules:
    - backendRefs: [{name: openai}]
---
apiVersion: aigateway.envoyproxy.io/v1beta1
kind: AIServiceBackend
metadata: {name: openai, namespace: default}
spec:
  schema: {name: OpenAI}
  backendRef: {name: sim, kind: Backend, group: gateway.envoyproxy.io}
---
apiVersion: aigateway.envoyproxy.io/v1beta1
kind: MCPRoute
metadata: {name: tools, namespace: default}
spec:
  parentRefs: [{name: gw}]
  backendRefs:
    - {name: sim, group: gateway.envoyproxy.io, kind: Backend}
---
apiVersion: gateway.envoyproxy.io/v1alpha1
kind: Backend
metadata: {name: sim, namespace: default}
spec:
  endpoints: [{ip: {address: 127.0.0.1, port: 9}}]
"#;

/// A running `aigw-extproc`; killed on drop.
struct ExtProc {
    child: Child,
    admin: SocketAddr,
    mcp: SocketAddr,
    _dir: tempfile::TempDir,
}

impl Drop for ExtProc {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Starts the binary with `flags` and waits until both HTTP listeners answer.
async fn start(flags: &[&str]) -> ExtProc {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("gateway.yaml"), CONFIG).unwrap();
    let (admin, mcp) = (free_port(), free_port());
    let child = Command::new(env!("CARGO_BIN_EXE_aigw-extproc"))
        .arg("--config")
        .arg(dir.path().join("gateway.yaml"))
        .arg("--listen")
        .arg(format!("unix://{}", sock(dir.path()).display()))
        .args(["--admin", &format!("127.0.0.1:{admin}")])
        .args(["--mcp-addr", &format!("127.0.0.1:{mcp}")])
        .args(flags)
        .env_remove("AIGW_REDIS_URL")
        .env_remove("AIGW_HEADER_READ_TIMEOUT")
        .env_remove("AIGW_IDLE_TIMEOUT")
        .env_remove("AIGW_MAX_CONNECTIONS")
        .env_remove("AIGW_DRAIN_TIMEOUT")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let p = ExtProc {
        child,
        admin: ([127, 0, 0, 1], admin).into(),
        mcp: ([127, 0, 0, 1], mcp).into(),
        _dir: dir,
    };
    let started = Instant::now();
    loop {
        if let Ok(mut c) = TcpStream::connect(p.admin).await
            && c.write_all(GET_HEALTH).await.is_ok()
            && read_to_close(&mut c, Duration::from_secs(2))
                .await
                .starts_with("HTTP/1.1 200")
            && TcpStream::connect(p.mcp).await.is_ok()
        {
            return p;
        }
        assert!(started.elapsed() < Duration::from_secs(20), "never ready");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

fn sock(dir: &Path) -> std::path::PathBuf {
    dir.join("extproc.sock")
}

const GET_HEALTH: &[u8] = b"GET /health HTTP/1.1\r\nhost: a\r\nconnection: close\r\n\r\n";

/// Reads until the peer closes (or `limit` passes, which fails the test).
async fn read_to_close(conn: &mut TcpStream, limit: Duration) -> String {
    let mut buf = Vec::new();
    let read = tokio::time::timeout(limit, async {
        let mut tmp = [0u8; 4096];
        loop {
            match conn.read(&mut tmp).await {
                Ok(0) | Err(_) => break,
                Ok(n) => buf.extend_from_slice(&tmp[..n]),
            }
        }
    })
    .await;
    assert!(
        read.is_ok(),
        "connection still open after {limit:?}; got {:?}",
        String::from_utf8_lossy(&buf)
    );
    String::from_utf8_lossy(&buf).into_owned()
}

/// Reads one response's head (through the blank line).
async fn read_head(conn: &mut TcpStream) -> String {
    let mut buf = Vec::new();
    let mut b = [0u8; 1];
    while !buf.ends_with(b"\r\n\r\n") {
        let n = tokio::time::timeout(Duration::from_secs(5), conn.read(&mut b))
            .await
            .unwrap()
            .unwrap();
        assert!(n > 0, "closed: {}", String::from_utf8_lossy(&buf));
        buf.push(b[0]);
    }
    String::from_utf8_lossy(&buf).into_owned()
}

/// Sends a request head one header line every 100 ms, never ending it; returns how
/// long the listener kept the connection.
async fn trickle_headers(addr: SocketAddr, first_line: &str) -> Duration {
    let mut conn = TcpStream::connect(addr).await.unwrap();
    let started = Instant::now();
    conn.write_all(first_line.as_bytes()).await.unwrap();
    let trickle = async {
        for i in 0.. {
            tokio::time::sleep(Duration::from_millis(100)).await;
            if conn
                .write_all(format!("x-slow-{i}: 1\r\n").as_bytes())
                .await
                .is_err()
            {
                break;
            }
        }
    };
    let _ = tokio::time::timeout(Duration::from_secs(5), trickle).await;
    let text = read_to_close(&mut conn, Duration::from_secs(2)).await;
    assert!(
        text.is_empty() || text.starts_with("HTTP/1.1 408"),
        "{text}"
    );
    started.elapsed()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slow_headers_are_cut_on_the_admin_and_mcp_listeners() {
    let p = start(&["--header-read-timeout", "500ms"]).await;
    for (name, addr, line) in [
        ("admin", p.admin, "GET /health HTTP/1.1\r\n"),
        ("mcp", p.mcp, "POST /mcp HTTP/1.1\r\n"),
    ] {
        let kept = trickle_headers(addr, line).await;
        assert!(
            kept >= Duration::from_millis(450) && kept < Duration::from_millis(2500),
            "{name}: the slow client kept its connection for {kept:?}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idle_connections_are_closed() {
    // The header read timeout also bounds HTTP/1's wait for the next request: off
    // here, so the idle timeout is what closes.
    let p = start(&["--header-read-timeout", "0", "--idle-timeout", "500ms"]).await;
    for (name, addr) in [("admin", p.admin), ("mcp", p.mcp)] {
        let mut silent = TcpStream::connect(addr).await.unwrap();
        let mut used = TcpStream::connect(addr).await.unwrap();
        used.write_all(b"GET /health HTTP/1.1\r\nhost: a\r\n\r\n")
            .await
            .unwrap();
        let head = read_head(&mut used).await;
        assert!(head.starts_with("HTTP/1.1 "), "{name}: {head}");
        let started = Instant::now();
        read_to_close(&mut used, Duration::from_secs(3)).await;
        read_to_close(&mut silent, Duration::from_secs(1)).await;
        let took = started.elapsed();
        assert!(
            took < Duration::from_millis(2000),
            "{name}: idle connections closed after {took:?}"
        );
    }
}

/// Holds `held` connections open on `addr`, then checks that the next ones are
/// answered 503 with `retry-after` at once.
async fn flood(addr: SocketAddr, held: usize) {
    // The readiness probes' connections closed and released first.
    tokio::time::sleep(Duration::from_millis(300)).await;
    let mut open = Vec::new();
    for _ in 0..held {
        open.push(TcpStream::connect(addr).await.unwrap());
    }
    // Every held connection accepted before the extra ones arrive.
    tokio::time::sleep(Duration::from_millis(200)).await;
    let started = Instant::now();
    for _ in 0..5 {
        let mut c = TcpStream::connect(addr).await.unwrap();
        let text = read_to_close(&mut c, Duration::from_secs(2)).await;
        assert!(text.starts_with("HTTP/1.1 503"), "{addr}: {text}");
        assert!(text.contains("retry-after: 1"), "{text}");
        assert!(text.contains(&format!("{held} open connections")), "{text}");
    }
    assert!(started.elapsed() < Duration::from_secs(3));
    // A freed slot serves again.
    drop(open.pop());
    tokio::time::sleep(Duration::from_millis(200)).await;
    let mut c = TcpStream::connect(addr).await.unwrap();
    c.write_all(GET_HEALTH).await.unwrap();
    let text = read_to_close(&mut c, Duration::from_secs(2)).await;
    assert!(
        text.starts_with("HTTP/1.1 ") && !text.starts_with("HTTP/1.1 503"),
        "{text}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_connection_flood_beyond_the_cap_gets_503_with_retry_after() {
    let p = start(&["--max-connections", "4"]).await;
    flood(p.mcp, 4).await;
    // The admin listener's own cap (probes and scrapers).
    flood(p.admin, 64).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_declared_oversize_mcp_body_gets_413_before_it_is_read() {
    let p = start(&["--mcp-max-body-bytes", "1024"]).await;
    let mut conn = TcpStream::connect(p.mcp).await.unwrap();
    let started = Instant::now();
    // The head alone: the 100 MiB it announces never comes.
    conn.write_all(
        b"POST /mcp HTTP/1.1\r\nhost: a\r\ncontent-type: application/json\r\naccept: application/json, text/event-stream\r\ncontent-length: 104857600\r\n\r\n",
    )
    .await
    .unwrap();
    let head = read_head(&mut conn).await;
    assert!(head.starts_with("HTTP/1.1 413"), "{head}");
    assert!(started.elapsed() < Duration::from_secs(1));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_closes_idle_connections_and_exits_after_draining() {
    let mut p = start(&["--drain-timeout", "5s"]).await;
    let mut idle = TcpStream::connect(p.mcp).await.unwrap();
    idle.write_all(b"GET /nothing-here HTTP/1.1\r\nhost: a\r\n\r\n")
        .await
        .unwrap();
    read_head(&mut idle).await;
    let started = Instant::now();
    let status = Command::new("kill")
        .args(["-TERM", &p.child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    read_to_close(&mut idle, Duration::from_secs(3)).await;
    loop {
        if let Some(exit) = p.child.try_wait().unwrap() {
            assert!(exit.success(), "{exit:?}");
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(4),
            "still running after SIGTERM"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(TcpStream::connect(p.admin).await.is_err());
    assert!(TcpStream::connect(p.mcp).await.is_err());
}
