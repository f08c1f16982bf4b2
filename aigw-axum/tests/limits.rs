//! Listener and request limits over raw TCP: slow headers, slow and stalled bodies, a
//! declared oversize body, idle connections, a connection flood, the in-flight cap and
//! the drain on shutdown. Each asserts the status (or the close) and how long it took.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, missing_docs)]

mod support;

use aigw_axum::Settings;
use aigw_axum::server::{self, Drained, ServerLimits};
use std::net::SocketAddr;
use std::time::{Duration, Instant};
use support::*;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::oneshot;

struct Served {
    addr: SocketAddr,
    records: Records,
    stop: Option<oneshot::Sender<()>>,
    done: tokio::task::JoinHandle<Drained>,
}

async fn serve(behavior: Behavior, settings: Settings, limits: ServerLimits) -> Served {
    let up = upstream(behavior).await;
    let h = gateway(
        StaticPlanner {
            targets: vec![target("b0", up.addr, 0)],
            idle: None,
            timeout: None,
        },
        settings,
    )
    .await;
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (stop, stopped) = oneshot::channel::<()>();
    let router = h.gateway.router();
    let done = tokio::spawn(async move {
        // Keep the upstream alive as long as the server.
        let _up = up;
        server::serve(listener, router, limits, async {
            let _ = stopped.await;
        })
        .await
    });
    Served {
        addr,
        records: h.records,
        stop: Some(stop),
        done,
    }
}

fn ok_stream(chunks: usize, interval_ms: u64) -> Behavior {
    Behavior::Ok {
        chunks,
        interval: Duration::from_millis(interval_ms),
    }
}

const CHAT: &str = r#"{"model":"m","messages":[{"role":"user","content":"hi"}]}"#;
const STREAM: &str = r#"{"model":"m","stream":true,"messages":[{"role":"user","content":"hi"}]}"#;

fn post(path: &str, body: &str, extra: &str) -> String {
    format!(
        "POST {path} HTTP/1.1\r\nhost: gw\r\ncontent-type: application/json\r\ncontent-length: {}\r\n{extra}\r\n{body}",
        body.len()
    )
}

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

fn body_json(response: &str) -> serde_json::Value {
    let body = response.split("\r\n\r\n").nth(1).unwrap_or_default();
    serde_json::from_str(body).unwrap_or_else(|e| panic!("{e}: {response}"))
}

#[tokio::test]
async fn slow_headers_are_cut_at_the_header_read_timeout() {
    let limits = ServerLimits {
        header_read_timeout: Some(Duration::from_millis(400)),
        ..ServerLimits::default()
    };
    let s = serve(ok_stream(1, 0), Settings::default(), limits).await;
    let mut conn = TcpStream::connect(s.addr).await.unwrap();
    let started = Instant::now();
    conn.write_all(b"POST /v1/chat/completions HTTP/1.1\r\n")
        .await
        .unwrap();
    // One header line every 100 ms, never the blank line that ends the head.
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
    let _ = tokio::time::timeout(Duration::from_secs(3), trickle).await;
    let elapsed = started.elapsed();
    assert!(
        elapsed < Duration::from_secs(2),
        "the slow client kept its connection for {elapsed:?}"
    );
    let text = read_to_close(&mut conn, Duration::from_secs(2)).await;
    assert!(
        text.is_empty() || text.starts_with("HTTP/1.1 408"),
        "{text}"
    );
    assert!(started.elapsed() >= Duration::from_millis(350));
}

#[tokio::test]
async fn a_stalled_body_gets_408_in_the_client_api_shape() {
    let settings = Settings {
        body_idle_timeout: Some(Duration::from_millis(300)),
        ..Settings::default()
    };
    let s = serve(ok_stream(1, 0), settings, ServerLimits::default()).await;
    for (path, anthropic) in [("/v1/chat/completions", false), ("/v1/messages", true)] {
        let mut conn = TcpStream::connect(s.addr).await.unwrap();
        let started = Instant::now();
        let head = format!(
            "POST {path} HTTP/1.1\r\nhost: gw\r\ncontent-type: application/json\r\ncontent-length: 100\r\n\r\n{{\"model\":"
        );
        conn.write_all(head.as_bytes()).await.unwrap();
        let text = read_to_close(&mut conn, Duration::from_secs(3)).await;
        let elapsed = started.elapsed();
        assert!(text.starts_with("HTTP/1.1 408"), "{text}");
        assert!(
            (Duration::from_millis(250)..Duration::from_millis(1500)).contains(&elapsed),
            "{elapsed:?}"
        );
        let v = body_json(&text);
        if anthropic {
            assert_eq!(v["type"], "error", "{v}");
            assert_eq!(v["error"]["type"], "invalid_request_error");
        } else {
            assert_eq!(v["error"]["code"], "request_timeout", "{v}");
        }
    }
    assert!(eventually(|| s.records.0.lock().unwrap().len() == 2).await);
}

#[tokio::test]
async fn a_trickled_body_gets_408_at_the_body_timeout() {
    let settings = Settings {
        body_idle_timeout: Some(Duration::from_millis(300)),
        body_timeout: Some(Duration::from_millis(700)),
        ..Settings::default()
    };
    let s = serve(ok_stream(1, 0), settings, ServerLimits::default()).await;
    let mut conn = TcpStream::connect(s.addr).await.unwrap();
    let started = Instant::now();
    conn.write_all(
        b"POST /v1/chat/completions HTTP/1.1\r\nhost: gw\r\ncontent-type: application/json\r\ncontent-length: 1000\r\n\r\n",
    )
    .await
    .unwrap();
    let (mut rd, mut wr) = conn.split();
    // A byte every 100 ms: never idle for 300 ms, but never done either.
    let trickle = async {
        loop {
            tokio::time::sleep(Duration::from_millis(100)).await;
            if wr.write_all(b" ").await.is_err() {
                break;
            }
        }
    };
    let mut buf = Vec::new();
    tokio::select! {
        () = trickle => {}
        _ = rd.read_to_end(&mut buf) => {}
        () = tokio::time::sleep(Duration::from_secs(3)) => panic!("no answer to a trickled body"),
    }
    let elapsed = started.elapsed();
    let text = String::from_utf8_lossy(&buf);
    assert!(text.starts_with("HTTP/1.1 408"), "{text}");
    assert!(text.contains("within"), "{text}");
    assert!(
        (Duration::from_millis(650)..Duration::from_millis(2000)).contains(&elapsed),
        "{elapsed:?}"
    );
}

#[tokio::test]
async fn a_declared_oversize_body_gets_413_before_it_is_sent() {
    let settings = Settings {
        max_body_bytes: 1024 * 1024,
        ..Settings::default()
    };
    let s = serve(ok_stream(1, 0), settings, ServerLimits::default()).await;
    let mut conn = TcpStream::connect(s.addr).await.unwrap();
    let started = Instant::now();
    // Headers only: the 100 MiB body never comes.
    conn.write_all(
        b"POST /v1/messages HTTP/1.1\r\nhost: gw\r\ncontent-type: application/json\r\ncontent-length: 104857600\r\n\r\n",
    )
    .await
    .unwrap();
    let text = read_to_close(&mut conn, Duration::from_secs(2)).await;
    assert!(text.starts_with("HTTP/1.1 413"), "{text}");
    assert!(started.elapsed() < Duration::from_millis(500));
    let v = body_json(&text);
    assert_eq!(v["error"]["type"], "request_too_large", "{v}");
}

#[tokio::test]
async fn idle_connections_are_closed() {
    let limits = ServerLimits {
        header_read_timeout: None,
        idle_timeout: Some(Duration::from_millis(400)),
        ..ServerLimits::default()
    };
    let s = serve(ok_stream(1, 0), Settings::default(), limits).await;
    // Never a byte.
    let mut silent = TcpStream::connect(s.addr).await.unwrap();
    // One request, then idle on a kept-alive connection.
    let mut used = TcpStream::connect(s.addr).await.unwrap();
    used.write_all(post("/v1/chat/completions", CHAT, "").as_bytes())
        .await
        .unwrap();
    let head = read_head(&mut used).await;
    assert!(head.starts_with("HTTP/1.1 200"), "{head}");
    let started = Instant::now();
    read_to_close(&mut used, Duration::from_secs(3)).await;
    read_to_close(&mut silent, Duration::from_secs(1)).await;
    assert!(started.elapsed() < Duration::from_millis(1500));
}

/// A kept-alive connection's later heads are timed too, each from its own start: the
/// connection's timer is reused between requests, not left at the first one's deadline.
#[tokio::test]
async fn a_kept_alive_connections_next_head_is_cut_at_the_header_read_timeout() {
    let limits = ServerLimits {
        header_read_timeout: Some(Duration::from_millis(400)),
        idle_timeout: None,
        ..ServerLimits::default()
    };
    let s = serve(ok_stream(1, 0), Settings::default(), limits).await;
    let mut conn = TcpStream::connect(s.addr).await.unwrap();
    for _ in 0..3 {
        conn.write_all(post("/v1/chat/completions", CHAT, "").as_bytes())
            .await
            .unwrap();
        let head = read_head(&mut conn).await;
        assert!(head.starts_with("HTTP/1.1 200"), "{head}");
        let length: usize = head
            .lines()
            .find_map(|l| l.strip_prefix("content-length: "))
            .and_then(|n| n.trim().parse().ok())
            .unwrap_or_else(|| panic!("{head}"));
        let mut body = vec![0u8; length];
        conn.read_exact(&mut body).await.unwrap();
        // Past the first head's deadline by the third request.
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    let started = Instant::now();
    conn.write_all(b"POST /v1/chat/completions HTTP/1.1\r\nx-half: 1\r\n")
        .await
        .unwrap();
    read_to_close(&mut conn, Duration::from_secs(3)).await;
    let elapsed = started.elapsed();
    assert!(
        elapsed >= Duration::from_millis(100) && elapsed < Duration::from_millis(1500),
        "{elapsed:?}"
    );
}

#[tokio::test]
async fn a_connection_that_never_sends_is_cut_at_the_header_read_timeout() {
    let limits = ServerLimits {
        header_read_timeout: Some(Duration::from_millis(400)),
        idle_timeout: None,
        ..ServerLimits::default()
    };
    let s = serve(ok_stream(1, 0), Settings::default(), limits).await;
    let started = Instant::now();
    let mut silent = TcpStream::connect(s.addr).await.unwrap();
    // Fewer bytes than it takes to tell HTTP/1 from HTTP/2, then nothing.
    let mut partial = TcpStream::connect(s.addr).await.unwrap();
    partial.write_all(b"PRI * HTTP/2").await.unwrap();
    read_to_close(&mut silent, Duration::from_secs(2)).await;
    read_to_close(&mut partial, Duration::from_secs(2)).await;
    let elapsed = started.elapsed();
    assert!(
        elapsed >= Duration::from_millis(350) && elapsed < Duration::from_millis(1500),
        "{elapsed:?}"
    );
}

#[tokio::test]
async fn a_connection_flood_beyond_the_cap_gets_503() {
    let limits = ServerLimits {
        max_connections: 4,
        ..ServerLimits::default()
    };
    let s = serve(ok_stream(1, 0), Settings::default(), limits).await;
    let mut held = Vec::new();
    for _ in 0..4 {
        let mut c = TcpStream::connect(s.addr).await.unwrap();
        c.write_all(b"GET / HTTP/1.1\r\nhost: gw\r\n\r\n")
            .await
            .unwrap();
        let head = read_head(&mut c).await;
        assert!(head.starts_with("HTTP/1.1 200"), "{head}");
        held.push(c);
    }
    let started = Instant::now();
    let mut extra = Vec::new();
    for _ in 0..20 {
        extra.push(TcpStream::connect(s.addr).await.unwrap());
    }
    for c in &mut extra {
        let text = read_to_close(c, Duration::from_secs(2)).await;
        assert!(text.starts_with("HTTP/1.1 503"), "{text}");
        assert!(text.contains("retry-after: 1"), "{text}");
        assert!(
            body_json(&text)["error"]["message"]
                .as_str()
                .unwrap()
                .contains("4 open connections")
        );
    }
    assert!(started.elapsed() < Duration::from_secs(2));
    // A freed slot serves again.
    drop(held.pop());
    tokio::time::sleep(Duration::from_millis(100)).await;
    let mut c = TcpStream::connect(s.addr).await.unwrap();
    c.write_all(b"GET / HTTP/1.1\r\nhost: gw\r\nconnection: close\r\n\r\n")
        .await
        .unwrap();
    let text = read_to_close(&mut c, Duration::from_secs(2)).await;
    assert!(text.starts_with("HTTP/1.1 200"), "{text}");
}

#[tokio::test]
async fn requests_beyond_the_in_flight_cap_get_503_at_once() {
    let settings = Settings {
        max_in_flight: Some(2),
        ..Settings::default()
    };
    let s = serve(ok_stream(10, 100), settings, ServerLimits::default()).await;
    let mut streams = Vec::new();
    for _ in 0..2 {
        let mut c = TcpStream::connect(s.addr).await.unwrap();
        c.write_all(post("/v1/chat/completions", STREAM, "connection: close\r\n").as_bytes())
            .await
            .unwrap();
        let head = read_head(&mut c).await;
        assert!(head.starts_with("HTTP/1.1 200"), "{head}");
        streams.push(c);
    }
    for (path, anthropic) in [("/v1/chat/completions", false), ("/v1/messages", true)] {
        let mut c = TcpStream::connect(s.addr).await.unwrap();
        let started = Instant::now();
        c.write_all(post(path, CHAT, "connection: close\r\n").as_bytes())
            .await
            .unwrap();
        let text = read_to_close(&mut c, Duration::from_secs(2)).await;
        assert!(started.elapsed() < Duration::from_millis(500));
        assert!(text.starts_with("HTTP/1.1 503"), "{text}");
        assert!(text.contains("retry-after: 1"), "{text}");
        let v = body_json(&text);
        if anthropic {
            assert_eq!(v["type"], "error");
        } else {
            assert_eq!(v["error"]["type"], "service_unavailable");
        }
    }
    // The streams were not disturbed, and once they end the slots are free again.
    for c in &mut streams {
        let text = read_to_close(c, Duration::from_secs(5)).await;
        assert!(text.contains("data: [DONE]"), "{text}");
    }
    let mut c = TcpStream::connect(s.addr).await.unwrap();
    c.write_all(post("/v1/chat/completions", CHAT, "connection: close\r\n").as_bytes())
        .await
        .unwrap();
    let text = read_to_close(&mut c, Duration::from_secs(5)).await;
    assert!(text.starts_with("HTTP/1.1 200"), "{text}");
}

#[tokio::test]
async fn shutdown_refuses_new_connections_and_drains_streams() {
    let limits = ServerLimits {
        drain_timeout: Duration::from_secs(5),
        ..ServerLimits::default()
    };
    let mut s = serve(ok_stream(8, 100), Settings::default(), limits).await;
    let mut c = TcpStream::connect(s.addr).await.unwrap();
    c.write_all(post("/v1/chat/completions", STREAM, "").as_bytes())
        .await
        .unwrap();
    let head = read_head(&mut c).await;
    assert!(head.starts_with("HTTP/1.1 200"), "{head}");
    let started = Instant::now();
    s.stop.take().unwrap().send(()).unwrap();
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert!(
        TcpStream::connect(s.addr).await.is_err(),
        "a new connection was accepted while draining"
    );
    // The stream runs to its end, then the connection closes (no keep-alive on drain).
    let text = read_to_close(&mut c, Duration::from_secs(5)).await;
    assert!(text.contains("data: [DONE]"), "{text}");
    let drained = s.done.await.unwrap();
    assert_eq!(drained, Drained { cut: 0 });
    assert!(started.elapsed() < Duration::from_secs(3));
    let recs = s.records.0.lock().unwrap();
    assert_eq!(recs.len(), 1);
    assert_eq!(recs[0].status.map(|s| s.as_u16()), Some(200));
    assert_eq!(recs[0].usage.output, Some(8));
}

#[tokio::test]
async fn the_drain_deadline_cuts_what_is_left_and_records_it() {
    let limits = ServerLimits {
        drain_timeout: Duration::from_millis(300),
        ..ServerLimits::default()
    };
    let mut s = serve(ok_stream(100, 100), Settings::default(), limits).await;
    let mut c = TcpStream::connect(s.addr).await.unwrap();
    c.write_all(post("/v1/chat/completions", STREAM, "").as_bytes())
        .await
        .unwrap();
    read_head(&mut c).await;
    let started = Instant::now();
    s.stop.take().unwrap().send(()).unwrap();
    let drained = s.done.await.unwrap();
    assert_eq!(drained, Drained { cut: 1 });
    assert!(started.elapsed() < Duration::from_secs(1));
    let recs = s.records.0.lock().unwrap();
    assert_eq!(recs.len(), 1, "the cut stream is recorded");
    assert_eq!(recs[0].status.map(|s| s.as_u16()), Some(499));
}
