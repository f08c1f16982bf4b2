//! The gateway with the real translators against an upstream replaying captured AWS
//! eventstream bytes: a whole capture becomes an OpenAI stream with usage; a capture cut
//! inside a frame ends the client's stream with an error event and still settles usage.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, missing_docs)]

mod support;

use aigw_core::{ApiSchema, VersionedSchema};
use bytes::Bytes;
use std::sync::Arc;
use std::time::Duration;
use support::*;

fn capture() -> Option<Bytes> {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/data/bedrock-converse-stream.bin"
    );
    Some(Bytes::from(std::fs::read(path).unwrap()))
}

async fn stream_through(body: Bytes) -> (String, Harness) {
    let up = upstream(Behavior::Raw {
        content_type: "application/vnd.amazon.eventstream",
        body,
    })
    .await;
    let mut t = target("bedrock", up.addr, 0);
    t.schema = VersionedSchema::new(ApiSchema::AWSBedrock);
    let h = gateway_with(
        StaticPlanner {
            targets: vec![t],
            idle: Some(Duration::from_secs(2)),
            timeout: None,
        },
        fast_settings(),
        Arc::new(aigw_providers::ProviderFactory),
    )
    .await;
    let r = reqwest::Client::new()
        .post(format!("{}/v1/chat/completions", h.url))
        .json(&serde_json::json!({"model": "m", "stream": true,
            "stream_options": {"include_usage": true},
            "messages": [{"role": "user", "content": "hi"}]}))
        .timeout(Duration::from_secs(10))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["content-type"], "text/event-stream");
    (r.text().await.unwrap(), h)
}

#[tokio::test]
async fn whole_capture_becomes_an_openai_stream_with_usage() {
    let Some(body) = capture() else { return };
    let (text, h) = stream_through(body).await;
    assert!(text.trim_end().ends_with("data: [DONE]"), "{text}");
    assert!(text.contains("\"chat.completion.chunk\""));
    assert!(eventually(|| h.meter.settled.lock().unwrap().len() == 1).await);
    let u = h.meter.settled.lock().unwrap()[0];
    assert!(u.output.unwrap_or(0) > 0, "{u:?}");
}

#[tokio::test]
async fn truncated_frame_ends_the_stream_with_an_error_event() {
    let Some(body) = capture() else { return };
    // Cut in the middle of the last frame: every earlier frame is complete.
    let cut = body.slice(..body.len() - 7);
    let (text, h) = stream_through(cut).await;
    assert!(!text.contains("[DONE]"), "{text}");
    let last = text.trim_end().rsplit("\n\n").next().unwrap();
    let v: serde_json::Value = serde_json::from_str(last.strip_prefix("data: ").unwrap()).unwrap();
    let msg = v["error"]["message"].as_str().unwrap();
    assert!(msg.contains("truncated"), "{text}");
    // The translator reports the truncation in-band (an error event in the client's
    // format); the exchange still settles exactly once with the usage seen.
    assert!(eventually(|| h.meter.settled.lock().unwrap().len() == 1).await);
    let records = h.records.0.lock().unwrap();
    assert_eq!(records.len(), 1);
    // The status was already 200 on the wire; the record still says the request failed.
    let error = records[0].error.as_deref().unwrap_or_default();
    assert!(error.contains("malformedUpstream"), "{:?}", records[0]);
    assert!(error.contains("truncated"), "{:?}", records[0]);
}
