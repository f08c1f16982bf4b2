//! The gateway against scripted upstreams: success paths, fallback and retries, and every
//! fault the issue lists, each with its documented client outcome and usage accounting.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, missing_docs)]

mod support;

use aigw_axum::Settings;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};
use support::*;

fn chat(stream: bool) -> serde_json::Value {
    serde_json::json!({"model": "m", "stream": stream, "messages": [{"role": "user", "content": "hi"}]})
}

async fn post(url: &str, body: &serde_json::Value) -> reqwest::Response {
    reqwest::Client::new()
        .post(format!("{url}/v1/chat/completions"))
        .json(body)
        .timeout(Duration::from_secs(10))
        .send()
        .await
        .unwrap()
}

fn ok(chunks: usize) -> Behavior {
    Behavior::Ok {
        chunks,
        interval: Duration::from_millis(5),
    }
}

#[tokio::test]
async fn non_stream_success_settles_usage_once() {
    let up = upstream(ok(3)).await;
    let h = gateway(
        StaticPlanner {
            targets: vec![target("b0", up.addr, 0)],
            idle: None,
            timeout: None,
        },
        fast_settings(),
    )
    .await;
    let r = post(&h.url, &chat(false)).await;
    assert_eq!(r.status(), 200);
    let v: serde_json::Value = r.json().await.unwrap();
    assert_eq!(v["usage"]["completion_tokens"], 3);
    assert!(eventually(|| h.meter.settled.lock().unwrap().len() == 1).await);
    assert_eq!(h.meter.settled.lock().unwrap()[0].output, Some(3));
    let recs = h.records.0.lock().unwrap();
    assert_eq!(recs[0].response_model.as_deref(), Some("up-model"));
    assert_eq!(recs[0].status.map(|s| s.as_u16()), Some(200));
    // The routing header is set from the body, whatever the client sent.
    assert_eq!(recs[0].request_model, "m");
}

#[tokio::test]
async fn stream_is_forwarded_chunk_by_chunk() {
    let up = upstream(Behavior::Ok {
        chunks: 5,
        interval: Duration::from_millis(100),
    })
    .await;
    let h = gateway(
        StaticPlanner {
            targets: vec![target("b0", up.addr, 0)],
            idle: None,
            timeout: None,
        },
        fast_settings(),
    )
    .await;
    let start = Instant::now();
    let mut r = post(&h.url, &chat(true)).await;
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["content-type"], "text/event-stream");
    let first = r.chunk().await.unwrap().unwrap();
    // The first chunk arrives long before the upstream finishes (5 × 100 ms).
    assert!(
        start.elapsed() < Duration::from_millis(300),
        "{:?}",
        start.elapsed()
    );
    assert!(String::from_utf8_lossy(&first).contains("tok0"));
    let mut rest = Vec::new();
    while let Some(c) = r.chunk().await.unwrap() {
        rest.extend_from_slice(&c);
    }
    let text = String::from_utf8_lossy(&rest);
    assert!(text.contains("[DONE]"));
    assert!(eventually(|| h.meter.settled.lock().unwrap().len() == 1).await);
    let u = h.meter.settled.lock().unwrap()[0];
    assert_eq!((u.input, u.output), (Some(10), Some(5)));
}

#[tokio::test]
async fn falls_back_from_failing_priority_zero_to_priority_one() {
    let bad = upstream(Behavior::Status(503, None)).await;
    let good = upstream(ok(2)).await;
    let h = gateway(
        StaticPlanner {
            targets: vec![target("bad", bad.addr, 0), target("good", good.addr, 1)],
            idle: None,
            timeout: None,
        },
        fast_settings(),
    )
    .await;
    let r = post(&h.url, &chat(false)).await;
    assert_eq!(r.status(), 200);
    assert_eq!(bad.hits.load(Ordering::SeqCst), 1);
    assert_eq!(good.hits.load(Ordering::SeqCst), 1);
    // Each attempt got the original body.
    assert_eq!(
        bad.bodies.lock().unwrap()[0],
        good.bodies.lock().unwrap()[0]
    );
    assert!(eventually(|| h.records.0.lock().unwrap().len() == 1).await);
    let rec = &h.records.0.lock().unwrap()[0];
    assert_eq!(rec.attempts, 2);
    assert_eq!(rec.backend.as_deref(), Some("good"));
}

#[tokio::test]
async fn connect_refused_fails_over_and_reports_502_when_alone() {
    let dead = refused_addr().await;
    let good = upstream(ok(1)).await;
    let h = gateway(
        StaticPlanner {
            targets: vec![target("dead", dead, 0), target("good", good.addr, 1)],
            idle: None,
            timeout: None,
        },
        fast_settings(),
    )
    .await;
    assert_eq!(post(&h.url, &chat(true)).await.status(), 200);

    let h = gateway(
        StaticPlanner {
            targets: vec![target("dead", dead, 0)],
            idle: None,
            timeout: None,
        },
        fast_settings(),
    )
    .await;
    let r = post(&h.url, &chat(false)).await;
    assert_eq!(r.status(), 502);
    let v: serde_json::Value = r.json().await.unwrap();
    assert_eq!(v["error"]["type"], "bad_gateway");
    assert!(eventually(|| h.meter.settled.lock().unwrap().len() == 1).await);
    assert_eq!(h.records.0.lock().unwrap()[0].attempts, 3);
}

#[tokio::test]
async fn persistent_5xx_is_retried_boundedly_then_returned() {
    let bad = upstream(Behavior::Status(500, None)).await;
    let h = gateway(
        StaticPlanner {
            targets: vec![target("bad", bad.addr, 0)],
            idle: None,
            timeout: None,
        },
        fast_settings(),
    )
    .await;
    let r = post(&h.url, &chat(false)).await;
    assert_eq!(r.status(), 500);
    let v: serde_json::Value = r.json().await.unwrap();
    assert_eq!(v["error"]["message"], "scripted 500");
    assert_eq!(bad.hits.load(Ordering::SeqCst), 3);
    assert!(eventually(|| h.meter.settled.lock().unwrap().len() == 1).await);
}

#[tokio::test]
async fn retry_after_is_honoured_up_to_the_cap() {
    let limited = upstream(Behavior::Status(429, Some("1"))).await;
    let h = gateway(
        StaticPlanner {
            targets: vec![target("lim", limited.addr, 0)],
            idle: None,
            timeout: None,
        },
        fast_settings(),
    )
    .await;
    let start = Instant::now();
    let r = post(&h.url, &chat(false)).await;
    assert_eq!(r.status(), 429);
    assert_eq!(r.headers()["retry-after"], "1");
    // Three attempts, two waits of one second each.
    assert_eq!(limited.hits.load(Ordering::SeqCst), 3);
    assert!(
        start.elapsed() >= Duration::from_secs(2),
        "{:?}",
        start.elapsed()
    );

    // A Retry-After beyond the cap ends the retries at once.
    let long = upstream(Behavior::Status(429, Some("60"))).await;
    let h = gateway(
        StaticPlanner {
            targets: vec![target("long", long.addr, 0)],
            idle: None,
            timeout: None,
        },
        fast_settings(),
    )
    .await;
    let start = Instant::now();
    assert_eq!(post(&h.url, &chat(false)).await.status(), 429);
    assert_eq!(long.hits.load(Ordering::SeqCst), 1);
    assert!(start.elapsed() < Duration::from_secs(1));
}

#[tokio::test]
async fn reset_mid_stream_ends_with_an_error_event_and_settles() {
    let up = upstream(Behavior::ResetMidStream).await;
    let h = gateway(
        StaticPlanner {
            targets: vec![target("reset", up.addr, 0)],
            idle: None,
            timeout: None,
        },
        fast_settings(),
    )
    .await;
    let r = post(&h.url, &chat(true)).await;
    assert_eq!(r.status(), 200);
    let text = r.text().await.unwrap();
    assert!(text.contains("tok0"), "{text}");
    let last = text.trim_end().rsplit("\n\n").next().unwrap();
    let v: serde_json::Value = serde_json::from_str(last.strip_prefix("data: ").unwrap()).unwrap();
    assert_eq!(v["error"]["type"], "bad_gateway");
    assert!(eventually(|| h.meter.settled.lock().unwrap().len() == 1).await);
    assert_eq!(
        up.hits.load(Ordering::SeqCst),
        1,
        "no retry after bytes were sent"
    );
    assert_eq!(
        h.records.0.lock().unwrap()[0].status.map(|s| s.as_u16()),
        Some(502)
    );
}

#[tokio::test]
async fn idle_before_first_byte_fails_over_and_mid_stream_ends_with_timeout() {
    let stalled = upstream(Behavior::Stall { first: 0 }).await;
    let good = upstream(ok(2)).await;
    let h = gateway(
        StaticPlanner {
            targets: vec![
                target("stall", stalled.addr, 0),
                target("good", good.addr, 1),
            ],
            idle: Some(Duration::from_millis(200)),
            timeout: None,
        },
        fast_settings(),
    )
    .await;
    let r = post(&h.url, &chat(true)).await;
    assert_eq!(r.status(), 200);
    assert!(r.text().await.unwrap().contains("[DONE]"));
    assert_eq!(good.hits.load(Ordering::SeqCst), 1);

    let mid = upstream(Behavior::Stall { first: 2 }).await;
    let h = gateway(
        StaticPlanner {
            targets: vec![target("mid", mid.addr, 0)],
            idle: Some(Duration::from_millis(200)),
            timeout: None,
        },
        fast_settings(),
    )
    .await;
    let start = Instant::now();
    let r = post(&h.url, &chat(true)).await;
    assert_eq!(r.status(), 200);
    let text = r.text().await.unwrap();
    assert!(start.elapsed() < Duration::from_secs(2));
    assert!(text.contains("tok1"));
    assert!(text.contains("\"type\":\"timeout\""), "{text}");
    assert!(eventually(|| h.meter.settled.lock().unwrap().len() == 1).await);
    assert_eq!(
        h.records.0.lock().unwrap()[0].status.map(|s| s.as_u16()),
        Some(504)
    );
}

#[tokio::test]
async fn malformed_upstream_json_is_502() {
    let up = upstream(Behavior::Malformed).await;
    let h = gateway(
        StaticPlanner {
            targets: vec![target("mal", up.addr, 0)],
            idle: None,
            timeout: None,
        },
        fast_settings(),
    )
    .await;
    let r = post(&h.url, &chat(false)).await;
    assert_eq!(r.status(), 502);
    let v: serde_json::Value = r.json().await.unwrap();
    assert!(
        v["error"]["message"]
            .as_str()
            .unwrap()
            .contains("malformed upstream response")
    );
    assert!(eventually(|| h.meter.settled.lock().unwrap().len() == 1).await);
}

#[tokio::test]
async fn client_disconnect_cancels_upstream_and_settles_partial_usage() {
    let up = upstream(Behavior::Ok {
        chunks: 200,
        interval: Duration::from_millis(20),
    })
    .await;
    let h = gateway(
        StaticPlanner {
            targets: vec![target("slow", up.addr, 0)],
            idle: None,
            timeout: None,
        },
        // Without reading on after a hang-up, the upstream is cut at once.
        aigw_axum::Settings {
            cancel_drain: aigw_core::estimate::CancelDrain::OFF,
            ..fast_settings()
        },
    )
    .await;
    let mut r = post(&h.url, &chat(true)).await;
    let _ = r.chunk().await.unwrap().unwrap();
    drop(r);
    assert!(
        eventually(|| up.cancelled.load(Ordering::SeqCst)).await,
        "upstream not cancelled"
    );
    assert!(eventually(|| h.meter.settled.lock().unwrap().len() == 1).await);
    let recs = h.records.0.lock().unwrap();
    assert_eq!(recs[0].status.map(|s| s.as_u16()), Some(499));
}

#[tokio::test]
async fn unknown_model_oversize_body_and_bad_json() {
    let up = upstream(ok(1)).await;
    let settings = aigw_axum::Settings {
        max_body_bytes: 1024,
        ..fast_settings()
    };
    let h = gateway(
        StaticPlanner {
            targets: vec![target("b", up.addr, 0)],
            idle: None,
            timeout: None,
        },
        settings,
    )
    .await;
    let r = post(
        &h.url,
        &serde_json::json!({"model": "nope", "messages": []}),
    )
    .await;
    assert_eq!(r.status(), 404);
    let v: serde_json::Value = r.json().await.unwrap();
    assert!(v["error"]["message"].as_str().unwrap().contains("nope"));

    let big = "x".repeat(4096);
    let r = post(
        &h.url,
        &serde_json::json!({"model": "m", "messages": [{"role": "user", "content": big}]}),
    )
    .await;
    assert_eq!(r.status(), 413);
    let v: serde_json::Value = r.json().await.unwrap();
    assert_eq!(v["error"]["code"], "request_too_large");

    let r = reqwest::Client::new()
        .post(format!("{}/anthropic/v1/messages", h.url))
        .body("{\"model\": ")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    let v: serde_json::Value = r.json().await.unwrap();
    assert_eq!(
        v["type"], "error",
        "Anthropic envelope for an Anthropic path"
    );
    assert_eq!(up.hits.load(Ordering::SeqCst), 0);

    let r = reqwest::get(format!("{}/v1/models", h.url)).await.unwrap();
    let v: serde_json::Value = r.json().await.unwrap();
    assert_eq!(v["data"][0]["id"], "m");
}

#[tokio::test]
async fn hot_swap_changes_routing_without_restart() {
    let a = upstream(ok(1)).await;
    let b = upstream(ok(1)).await;
    let h = gateway(
        StaticPlanner {
            targets: vec![target("a", a.addr, 0)],
            idle: None,
            timeout: None,
        },
        fast_settings(),
    )
    .await;
    assert_eq!(post(&h.url, &chat(false)).await.status(), 200);
    h.gateway.swap(aigw_axum::Snapshot::new(
        std::sync::Arc::new(StaticPlanner {
            targets: vec![target("b", b.addr, 0)],
            idle: None,
            timeout: None,
        }),
        std::sync::Arc::new(PassthroughFactory),
    ));
    assert_eq!(post(&h.url, &chat(false)).await.status(), 200);
    assert_eq!(a.hits.load(Ordering::SeqCst), 1);
    assert_eq!(b.hits.load(Ordering::SeqCst), 1);
}

#[tokio::test]
async fn client_identity_from_an_auth_layer_reaches_the_record() {
    use tower::ServiceExt;
    let up = upstream(ok(1)).await;
    let h = gateway(
        StaticPlanner {
            targets: vec![target("b", up.addr, 0)],
            idle: None,
            timeout: None,
        },
        fast_settings(),
    )
    .await;
    let mut req = http::Request::post("/v1/chat/completions")
        .body(axum::body::Body::from(chat(false).to_string()))
        .unwrap();
    req.extensions_mut()
        .insert(aigw_axum::ClientId(std::sync::Arc::from("team-a")));
    let r = h.gateway.clone().oneshot(req).await.unwrap();
    assert_eq!(r.status(), 200);
    assert!(eventually(|| h.records.0.lock().unwrap().len() == 1).await);
    assert_eq!(
        h.records.0.lock().unwrap()[0].client.as_deref(),
        Some("team-a")
    );
}

#[tokio::test]
async fn credential_failure_fails_over_like_a_connect_failure() {
    let unreachable = upstream(ok(1)).await;
    let good = upstream(ok(1)).await;
    let mut broken = target("broken", unreachable.addr, 0);
    let e = aigw_core::Error::Credential {
        policy: "default/broken".into(),
        message: "token endpoint unreachable".into(),
    };
    broken.credential = Some(std::sync::Arc::new(
        aigw_axum::credentials::Unavailable::new("default/broken", &e),
    ));
    let h = gateway(
        StaticPlanner {
            targets: vec![broken.clone(), target("good", good.addr, 1)],
            idle: None,
            timeout: None,
        },
        fast_settings(),
    )
    .await;
    assert_eq!(post(&h.url, &chat(false)).await.status(), 200);
    // Nothing was sent to the backend whose credentials failed.
    assert_eq!(unreachable.hits.load(Ordering::SeqCst), 0);
    assert_eq!(good.hits.load(Ordering::SeqCst), 1);
    assert!(eventually(|| h.records.0.lock().unwrap().len() == 1).await);
    assert_eq!(
        h.records.0.lock().unwrap()[0].backend.as_deref(),
        Some("good")
    );

    // Alone, it is a 503 naming the policy, never a request upstream.
    let h = gateway(
        StaticPlanner {
            targets: vec![broken],
            idle: None,
            timeout: None,
        },
        fast_settings(),
    )
    .await;
    let r = post(&h.url, &chat(false)).await;
    assert_eq!(r.status(), 503);
    assert!(r.text().await.unwrap().contains("default/broken"));
    assert_eq!(unreachable.hits.load(Ordering::SeqCst), 0);
}

#[tokio::test]
async fn route_request_timeout_bounds_the_whole_stream() {
    let slow = Behavior::Ok {
        chunks: 10,
        interval: Duration::from_millis(100),
    };
    let up = upstream(slow).await;
    let h = gateway(
        StaticPlanner {
            targets: vec![target("slow", up.addr, 0)],
            idle: None,
            timeout: Some(Duration::from_millis(350)),
        },
        fast_settings(),
    )
    .await;
    let start = Instant::now();
    let r = post(&h.url, &chat(true)).await;
    assert_eq!(r.status(), 200);
    let text = r.text().await.unwrap();
    assert!(
        start.elapsed() < Duration::from_millis(900),
        "{:?}",
        start.elapsed()
    );
    assert!(text.contains("tok0"), "{text}");
    assert!(!text.contains("[DONE]"), "{text}");
    assert!(text.contains("\"type\":\"timeout\""), "{text}");
    assert!(eventually(|| h.records.0.lock().unwrap().len() == 1).await);
    assert_eq!(
        h.records.0.lock().unwrap()[0].status.map(|s| s.as_u16()),
        Some(504)
    );

    // Without a route timeout the default only bounds the start: the stream completes.
    let h = gateway(
        StaticPlanner {
            targets: vec![target("slow", up.addr, 0)],
            idle: None,
            timeout: None,
        },
        Settings {
            default_request_timeout: Duration::from_millis(350),
            ..fast_settings()
        },
    )
    .await;
    let text = post(&h.url, &chat(true)).await.text().await.unwrap();
    assert!(text.contains("[DONE]"), "{text}");
}

#[tokio::test]
async fn oversized_headers_get_431_in_the_client_apis_shape() {
    let up = upstream(ok(1)).await;
    let h = gateway(
        StaticPlanner {
            targets: vec![target("b0", up.addr, 0)],
            idle: None,
            timeout: None,
        },
        Settings {
            max_header_bytes: 1024,
            ..fast_settings()
        },
    )
    .await;
    let big = "x".repeat(2048);
    let r = reqwest::Client::new()
        .post(format!("{}/v1/chat/completions", h.url))
        .header("x-big", &big)
        .json(&chat(false))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 431);
    let v: serde_json::Value = r.json().await.unwrap();
    assert!(
        v["error"]["message"].as_str().unwrap().contains("1024"),
        "{v}"
    );
    let r = reqwest::Client::new()
        .post(format!("{}/v1/messages", h.url))
        .header("x-big", &big)
        .json(&serde_json::json!({"model": "m", "max_tokens": 5, "messages": []}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 431);
    let v: serde_json::Value = r.json().await.unwrap();
    assert_eq!(v["type"], "error", "{v}");
    assert_eq!(up.hits.load(Ordering::SeqCst), 0);
    // Under the limit it is served.
    assert_eq!(post(&h.url, &chat(false)).await.status(), 200);
}

/// Passthrough that, like the Bedrock translator on a stream exception, reports an
/// error to the client in-band once it sees `tok1`.
#[derive(Default)]
struct InBandTranslator {
    inner: PassthroughTranslator,
    failed: bool,
}

impl aigw_core::Translator for InBandTranslator {
    fn request(
        &mut self,
        req: &aigw_core::RequestContext<'_>,
    ) -> aigw_core::Result<aigw_core::UpstreamRequest> {
        self.inner.request(req)
    }
    fn response_headers(
        &mut self,
        s: http::StatusCode,
        h: &http::HeaderMap,
    ) -> aigw_core::Result<aigw_core::HeaderMutation> {
        self.inner.response_headers(s, h)
    }
    fn response_chunk(
        &mut self,
        chunk: &[u8],
        end: bool,
    ) -> aigw_core::Result<aigw_core::ResponseChunk> {
        if chunk.windows(4).any(|w| w == b"tok1") {
            self.failed = true;
        }
        self.inner.response_chunk(chunk, end)
    }
    fn response_error(
        &mut self,
        s: http::StatusCode,
        h: &http::HeaderMap,
        b: &[u8],
    ) -> aigw_core::Result<aigw_core::ErrorResponse> {
        self.inner.response_error(s, h, b)
    }
    fn in_band_error(&self) -> Option<String> {
        self.failed
            .then(|| "modelStreamErrorException reported in the stream".to_owned())
    }
}

struct InBandFactory;
impl aigw_core::TranslatorFactory for InBandFactory {
    fn translator(
        &self,
        _spec: &aigw_core::translate::TranslatorSpec<'_>,
    ) -> aigw_core::Result<Box<dyn aigw_core::Translator>> {
        Ok(Box::new(InBandTranslator::default()))
    }
}

#[tokio::test]
async fn in_band_translator_error_marks_the_record_failed() {
    let up = upstream(ok(3)).await;
    let h = gateway_with(
        StaticPlanner {
            targets: vec![target("b0", up.addr, 0)],
            idle: None,
            timeout: None,
        },
        fast_settings(),
        std::sync::Arc::new(InBandFactory),
    )
    .await;
    let r = post(&h.url, &chat(true)).await;
    assert_eq!(r.status(), 200);
    let _ = r.text().await.unwrap();
    assert!(eventually(|| h.records.0.lock().unwrap().len() == 1).await);
    let rec = h.records.0.lock().unwrap()[0].clone();
    assert_eq!(rec.status.map(|s| s.as_u16()), Some(200));
    assert_eq!(
        rec.error.as_deref(),
        Some("modelStreamErrorException reported in the stream")
    );
    // The GenAI metrics count it as a failure.
    let m = aigw_core::metrics::GenAiMetrics::new();
    m.record(&rec);
    assert!(m.encode().contains("error_type=\"_OTHER\""));
}
