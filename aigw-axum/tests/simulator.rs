//! The provider simulator over real sockets: exact response shapes per provider and
//! mode, scripted failures, credential checks, and the official clients (openai,
//! anthropic, boto3) parsing what it sends.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::print_stdout,
    missing_docs
)]

use std::net::SocketAddr;
use std::process::Command;
use std::time::Duration;

use aigw_axum::simulator::{AwsCredentials, Simulator, SimulatorConfig};
use aws_smithy_eventstream::frame::{DecodedFrame, MessageFrameDecoder};
use aws_smithy_types::event_stream::Message;
use base64::Engine as _;
use bytes::Bytes;
use serde_json::{Value, json};

struct Running {
    addr: SocketAddr,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
}

impl Running {
    fn url(&self, path: &str) -> String {
        format!("http://{}{}", self.addr, path)
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }
}

async fn start(cfg: SimulatorConfig) -> Running {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (tx, rx) = tokio::sync::oneshot::channel();
    tokio::spawn(Simulator::new(cfg).serve(listener, async {
        let _ = rx.await;
    }));
    Running {
        addr,
        stop: Some(tx),
    }
}

fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .timeout(Duration::from_secs(20))
        .build()
        .unwrap()
}

async fn post(url: &str, headers: &[(&str, &str)], body: Value) -> reqwest::Response {
    let mut req = client().post(url).json(&body);
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    req.send().await.unwrap()
}

/// `data:` payloads of an SSE body (comments and `event:` lines skipped).
fn sse_data(body: &str) -> Vec<String> {
    body.split("\n\n")
        .flat_map(|ev| ev.lines())
        .filter_map(|l| {
            l.trim_end_matches('\r')
                .strip_prefix("data: ")
                .map(str::to_owned)
        })
        .collect()
}

fn decode_frames(mut buf: Bytes) -> Vec<Message> {
    let mut decoder = MessageFrameDecoder::new();
    let mut out = Vec::new();
    while !buf.is_empty() {
        match decoder.decode_frame(&mut buf).unwrap() {
            DecodedFrame::Complete(m) => out.push(m),
            DecodedFrame::Incomplete => panic!("truncated frame"),
        }
    }
    out
}

fn header(m: &Message, name: &str) -> String {
    m.headers()
        .iter()
        .find(|h| h.name().as_str() == name)
        .map(|h| h.value().as_string().unwrap().as_str().to_owned())
        .unwrap()
}

fn chat_body(stream: bool) -> Value {
    json!({"model": "gpt-4o-mini", "stream": stream, "stream_options": {"include_usage": true},
           "messages": [{"role": "system", "content": "be brief"}, {"role": "user", "content": "hello there simulator"}]})
}

const REPLY: &str = "Hello from the aigw simulator. Model gpt-4o-mini received 3 words.";

#[tokio::test]
async fn openai_chat_json_exact() {
    let sim = start(SimulatorConfig::default()).await;
    let resp = post(&sim.url("/v1/chat/completions"), &[], chat_body(false)).await;
    assert_eq!(resp.status(), 200);
    assert_eq!(resp.headers()["content-type"], "application/json");
    let v: Value = resp.json().await.unwrap();
    let id = v["id"].as_str().unwrap().to_owned();
    assert!(id.starts_with("chatcmpl-"));
    assert_eq!(
        v,
        json!({"id": id, "object": "chat.completion", "created": 1_700_000_000, "model": "gpt-4o-mini",
               "choices": [{"index": 0, "message": {"role": "assistant", "content": REPLY, "refusal": null, "annotations": []},
                            "logprobs": null, "finish_reason": "stop"}],
               "usage": {"prompt_tokens": 5, "completion_tokens": 10, "total_tokens": 15,
                         "prompt_tokens_details": {"cached_tokens": 0, "audio_tokens": 0},
                         "completion_tokens_details": {"reasoning_tokens": 0, "audio_tokens": 0,
                            "accepted_prediction_tokens": 0, "rejected_prediction_tokens": 0}},
               "service_tier": "default", "system_fingerprint": null})
    );
}

#[tokio::test]
async fn openai_chat_stream_with_usage_and_done() {
    let sim = start(SimulatorConfig::default()).await;
    let resp = post(
        &sim.url("/v1/chat/completions"),
        &[("x-sim-chunks", "3")],
        chat_body(true),
    )
    .await;
    assert!(
        resp.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/event-stream")
    );
    let data = sse_data(&resp.text().await.unwrap());
    // role chunk, 3 content chunks, finish chunk, usage chunk, [DONE]
    assert_eq!(data.len(), 7, "{data:?}");
    assert_eq!(data.last().unwrap(), "[DONE]");
    let chunks: Vec<Value> = data[..6]
        .iter()
        .map(|d| serde_json::from_str(d).unwrap())
        .collect();
    assert_eq!(chunks[0]["choices"][0]["delta"]["role"], "assistant");
    let text: String = chunks[1..4]
        .iter()
        .map(|c| c["choices"][0]["delta"]["content"].as_str().unwrap())
        .collect();
    assert_eq!(text, REPLY);
    assert!(
        chunks[..5]
            .iter()
            .all(|c| c["usage"].is_null() && c["object"] == "chat.completion.chunk")
    );
    assert_eq!(chunks[4]["choices"][0]["finish_reason"], "stop");
    assert_eq!(chunks[5]["choices"], json!([]));
    assert_eq!(chunks[5]["usage"]["completion_tokens"], 10);
}

#[tokio::test]
async fn openai_tool_call_stream_and_compatible_prefix() {
    let sim = start(SimulatorConfig::default()).await;
    let body = json!({"model": "m", "stream": true,
        "messages": [{"role": "user", "content": "please call a tool"}],
        "tools": [{"type": "function", "function": {"name": "lookup", "parameters": {"type": "object", "properties": {"q": {"type": "string"}, "n": {"type": "integer"}}}}}]});
    let resp = post(&sim.url("/api/openai/v1/chat/completions"), &[], body).await;
    assert_eq!(resp.status(), 200);
    let data = sse_data(&resp.text().await.unwrap());
    let chunks: Vec<Value> = data[..data.len() - 1]
        .iter()
        .map(|d| serde_json::from_str(d).unwrap())
        .collect();
    let first = &chunks[0]["choices"][0]["delta"]["tool_calls"][0];
    assert_eq!(first["function"]["name"], "lookup");
    assert!(first["id"].as_str().unwrap().starts_with("call_"));
    let args: String = chunks
        .iter()
        .filter_map(|c| c["choices"][0]["delta"]["tool_calls"][0]["function"]["arguments"].as_str())
        .collect();
    assert_eq!(args, r#"{"q":"simulated","n":1}"#);
    assert_eq!(
        chunks.last().unwrap()["choices"][0]["finish_reason"],
        "tool_calls"
    );
}

#[tokio::test]
async fn openai_completions_embeddings_models_and_azure() {
    let sim = start(SimulatorConfig::default().with_azure_api_keys(["az-key"])).await;
    let v: Value = post(
        &sim.url("/v1/completions"),
        &[],
        json!({"model": "gpt-3.5-turbo-instruct", "prompt": "say hi"}),
    )
    .await
    .json()
    .await
    .unwrap();
    assert_eq!(v["object"], "text_completion");
    assert_eq!(v["choices"][0]["finish_reason"], "stop");
    assert_eq!(v["usage"]["prompt_tokens"], 2);
    let v: Value = post(
        &sim.url("/v1/embeddings"),
        &[],
        json!({"model": "text-embedding-3-small", "input": ["a b", "c"], "dimensions": 4}),
    )
    .await
    .json()
    .await
    .unwrap();
    assert_eq!(v["data"].as_array().unwrap().len(), 2);
    assert_eq!(v["data"][1]["index"], 1);
    assert_eq!(v["data"][0]["embedding"].as_array().unwrap().len(), 4);
    assert_eq!(v["usage"], json!({"prompt_tokens": 3, "total_tokens": 3}));
    let b64: Value = post(
        &sim.url("/v1/embeddings"),
        &[],
        json!({"model": "e", "input": "a b", "encoding_format": "base64"}),
    )
    .await
    .json()
    .await
    .unwrap();
    let raw = base64::engine::general_purpose::STANDARD
        .decode(b64["data"][0]["embedding"].as_str().unwrap())
        .unwrap();
    assert_eq!(raw.len(), 8 * 4);
    let models: Value = client()
        .get(sim.url("/v1/models"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(models["object"], "list");
    assert_eq!(models["data"][0]["object"], "model");

    let azure = sim.url("/openai/deployments/my-gpt/chat/completions?api-version=2024-10-21");
    let bad = post(&azure, &[("api-key", "nope")], chat_body(false)).await;
    assert_eq!(bad.status(), 401);
    assert_eq!(bad.json::<Value>().await.unwrap()["error"]["code"], "401");
    let ok: Value = post(
        &azure,
        &[("api-key", "az-key")],
        json!({"messages": [{"role": "user", "content": "x"}]}),
    )
    .await
    .json()
    .await
    .unwrap();
    assert_eq!(ok["model"], "my-gpt");
}

#[tokio::test]
async fn anthropic_messages_json_and_stream_sequence() {
    let sim = start(SimulatorConfig::default().with_anthropic_keys(["ak"])).await;
    let body = json!({"model": "claude-sonnet-4-5", "max_tokens": 100, "system": "be brief",
                      "messages": [{"role": "user", "content": [{"type": "text", "text": "hello there"}]}]});
    let h = [("x-api-key", "ak"), ("anthropic-version", "2023-06-01")];
    let v: Value = post(&sim.url("/v1/messages"), &h, body.clone())
        .await
        .json()
        .await
        .unwrap();
    let id = v["id"].as_str().unwrap().to_owned();
    assert!(id.starts_with("msg_"));
    assert_eq!(
        v,
        json!({"id": id, "type": "message", "role": "assistant", "model": "claude-sonnet-4-5",
               "content": [{"type": "text", "text": "Hello from the aigw simulator. Model claude-sonnet-4-5 received 2 words."}],
               "stop_reason": "end_turn", "stop_sequence": null,
               "usage": {"input_tokens": 4, "cache_creation_input_tokens": 0, "cache_read_input_tokens": 0, "output_tokens": 10}})
    );
    let mut sbody = body.clone();
    sbody["stream"] = json!(true);
    let text = post(&sim.url("/v1/messages"), &h, sbody)
        .await
        .text()
        .await
        .unwrap();
    let names: Vec<&str> = text
        .lines()
        .filter_map(|l| l.strip_prefix("event: "))
        .collect();
    assert_eq!(
        names,
        [
            "message_start",
            "content_block_start",
            "ping",
            "content_block_delta",
            "content_block_delta",
            "content_block_delta",
            "content_block_delta",
            "content_block_stop",
            "message_delta",
            "message_stop"
        ]
    );
    let events: Vec<Value> = sse_data(&text)
        .iter()
        .map(|d| serde_json::from_str(d).unwrap())
        .collect();
    assert_eq!(events[8]["usage"]["output_tokens"], 10);
    assert_eq!(events[8]["delta"]["stop_reason"], "end_turn");

    let missing_version = post(
        &sim.url("/v1/messages"),
        &[("x-api-key", "ak")],
        body.clone(),
    )
    .await;
    assert_eq!(missing_version.status(), 400);
    let bad = post(
        &sim.url("/v1/messages"),
        &[("x-api-key", "no"), ("anthropic-version", "2023-06-01")],
        body,
    )
    .await;
    assert_eq!(bad.status(), 401);
    assert_eq!(
        bad.json::<Value>().await.unwrap()["error"]["type"],
        "authentication_error"
    );
}

#[tokio::test]
async fn bedrock_converse_stream_is_valid_eventstream_like_a_real_capture() {
    let sim = start(SimulatorConfig::default()).await;
    let body = json!({"messages": [{"role": "user", "content": [{"text": "hello there"}]}]});
    let resp = post(
        &sim.url("/model/anthropic.claude-3-haiku-20240307-v1%3A0/converse-stream"),
        &[("x-sim-chunks", "2")],
        body.clone(),
    )
    .await;
    assert_eq!(
        resp.headers()["content-type"],
        "application/vnd.amazon.eventstream"
    );
    let ours = decode_frames(resp.bytes().await.unwrap());
    let real = decode_frames(Bytes::from(
        std::fs::read(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/simulator_fixtures/bedrock-converse-stream-basic.bin"
        ))
        .unwrap(),
    ));
    let shape = |ms: &[Message]| -> Vec<(Vec<String>, String)> {
        let mut s: Vec<_> = ms
            .iter()
            .map(|m| {
                (
                    m.headers()
                        .iter()
                        .map(|h| h.name().as_str().to_owned())
                        .collect(),
                    header(m, ":event-type"),
                )
            })
            .collect();
        s.dedup();
        s
    };
    // Same header set and order, same event sequence (runs of deltas collapsed).
    assert_eq!(shape(&ours), shape(&real));
    let payloads: Vec<Value> = ours
        .iter()
        .map(|m| serde_json::from_slice(m.payload()).unwrap())
        .collect();
    assert_eq!(payloads[0], json!({"role": "assistant"}));
    let text: String = payloads[1..3]
        .iter()
        .map(|p| p["delta"]["text"].as_str().unwrap())
        .collect();
    assert!(text.starts_with(
        "Hello from the aigw simulator. Model anthropic.claude-3-haiku-20240307-v1:0"
    ));
    assert_eq!(payloads[4], json!({"stopReason": "end_turn"}));
    assert_eq!(
        payloads[5]["usage"],
        json!({"inputTokens": 2, "outputTokens": 10, "totalTokens": 12})
    );

    let v: Value = post(
        &sim.url("/model/amazon.titan-embed-text-v2%3A0/invoke"),
        &[],
        json!({"inputText": "a b c"}),
    )
    .await
    .json()
    .await
    .unwrap();
    assert_eq!(v["inputTextTokenCount"], 3);
    assert_eq!(v["embedding"].as_array().unwrap().len(), 8);

    let resp = post(&sim.url("/model/anthropic.claude-3-haiku-20240307-v1%3A0/invoke-with-response-stream"), &[],
        json!({"anthropic_version": "bedrock-2023-05-31", "max_tokens": 10, "messages": [{"role": "user", "content": "hi"}]})).await;
    assert_eq!(
        resp.headers()["x-amzn-bedrock-content-type"],
        "application/json"
    );
    let frames = decode_frames(resp.bytes().await.unwrap());
    assert!(frames.iter().all(|m| header(m, ":event-type") == "chunk"));
    let events: Vec<Value> = frames
        .iter()
        .map(|m| {
            let p: Value = serde_json::from_slice(m.payload()).unwrap();
            serde_json::from_slice(
                &base64::engine::general_purpose::STANDARD
                    .decode(p["bytes"].as_str().unwrap())
                    .unwrap(),
            )
            .unwrap()
        })
        .collect();
    assert_eq!(events[0]["type"], "message_start");
    assert_eq!(events.last().unwrap()["type"], "message_stop");
    assert!(
        events.last().unwrap()["amazon-bedrock-invocationMetrics"]["outputTokenCount"]
            .as_u64()
            .unwrap()
            > 0
    );
}

#[tokio::test]
async fn bedrock_errors_have_the_aws_shape() {
    let aws = AwsCredentials::new("AKIDSIMULATOR", "sim-secret", "us-east-1");
    let sim = start(SimulatorConfig::default().with_aws(aws)).await;
    let resp = post(&sim.url("/model/m/converse"), &[], json!({"messages": []})).await;
    assert_eq!(resp.status(), 403);
    assert_eq!(
        resp.headers()["x-amzn-errortype"],
        "MissingAuthenticationTokenException"
    );
    let sim = start(SimulatorConfig::default()).await;
    let resp = post(
        &sim.url("/model/m/converse"),
        &[("x-sim-status", "429")],
        json!({}),
    )
    .await;
    assert_eq!(resp.status(), 429);
    assert_eq!(resp.headers()["x-amzn-errortype"], "ThrottlingException");
    assert!(resp.json::<Value>().await.unwrap()["message"].is_string());
    let resp = post(&sim.url("/model/m/converse"), &[], json!({"nothing": 1})).await;
    assert_eq!(resp.status(), 400);
    assert_eq!(resp.headers()["x-amzn-errortype"], "ValidationException");
}

#[tokio::test]
async fn vertex_gemini_json_sse_array_and_anthropic() {
    let sim = start(SimulatorConfig::default().with_gcp_tokens(["ya29.sim"])).await;
    let base = "/v1/projects/p/locations/us-central1/publishers";
    let auth = [("authorization", "Bearer ya29.sim")];
    let body = json!({"contents": [{"role": "user", "parts": [{"text": "hello there"}]}]});
    let v: Value = post(
        &sim.url(&format!(
            "{base}/google/models/gemini-2.5-flash:generateContent"
        )),
        &auth,
        body.clone(),
    )
    .await
    .json()
    .await
    .unwrap();
    assert_eq!(v["candidates"][0]["content"]["role"], "model");
    assert_eq!(v["candidates"][0]["finishReason"], "STOP");
    assert_eq!(v["usageMetadata"]["candidatesTokenCount"], 10);
    assert_eq!(v["modelVersion"], "gemini-2.5-flash");

    let text = post(
        &sim.url(&format!(
            "{base}/google/models/gemini-2.5-flash:streamGenerateContent?alt=sse"
        )),
        &auth,
        body.clone(),
    )
    .await
    .text()
    .await
    .unwrap();
    let chunks: Vec<Value> = sse_data(&text)
        .iter()
        .map(|d| serde_json::from_str(d).unwrap())
        .collect();
    assert_eq!(chunks.len(), 4);
    let joined: String = chunks
        .iter()
        .map(|c| {
            c["candidates"][0]["content"]["parts"][0]["text"]
                .as_str()
                .unwrap()
        })
        .collect();
    assert_eq!(
        joined,
        v["candidates"][0]["content"]["parts"][0]["text"]
            .as_str()
            .unwrap()
    );
    assert_eq!(chunks[3]["usageMetadata"]["totalTokenCount"], 12);
    assert!(
        chunks[..3]
            .iter()
            .all(|c| c["candidates"][0].get("finishReason").is_none())
    );

    let arr: Value = post(
        &sim.url(&format!(
            "{base}/google/models/gemini-2.5-flash:streamGenerateContent"
        )),
        &auth,
        body.clone(),
    )
    .await
    .json()
    .await
    .unwrap();
    assert_eq!(arr.as_array().unwrap().len(), 4);

    let tool = json!({"contents": [{"role": "user", "parts": [{"text": "weather?"}]}],
        "tools": [{"functionDeclarations": [{"name": "get_weather", "parameters": {"type": "OBJECT", "properties": {"city": {"type": "STRING"}}}}]}],
        "toolConfig": {"functionCallingConfig": {"mode": "ANY"}}});
    let v: Value = post(
        &sim.url(&format!(
            "{base}/google/models/gemini-2.5-flash:generateContent"
        )),
        &auth,
        tool,
    )
    .await
    .json()
    .await
    .unwrap();
    assert_eq!(
        v["candidates"][0]["content"]["parts"][0]["functionCall"],
        json!({"name": "get_weather", "args": {"city": "simulated"}})
    );

    let emb: Value = post(
        &sim.url(&format!("{base}/google/models/text-embedding-005:predict")),
        &auth,
        json!({"instances": [{"content": "a b"}, {"content": "c"}]}),
    )
    .await
    .json()
    .await
    .unwrap();
    assert_eq!(
        emb["predictions"][1]["embeddings"]["statistics"]["token_count"],
        1
    );

    let raw = json!({"anthropic_version": "vertex-2023-10-16", "max_tokens": 10, "messages": [{"role": "user", "content": "hi"}]});
    let v: Value = post(
        &sim.url(&format!(
            "{base}/anthropic/models/claude-sonnet-4-5@20250929:rawPredict"
        )),
        &auth,
        raw.clone(),
    )
    .await
    .json()
    .await
    .unwrap();
    assert_eq!(v["type"], "message");
    assert_eq!(v["model"], "claude-sonnet-4-5@20250929");
    let text = post(
        &sim.url(&format!(
            "{base}/anthropic/models/claude-sonnet-4-5@20250929:streamRawPredict"
        )),
        &auth,
        raw,
    )
    .await
    .text()
    .await
    .unwrap();
    assert!(text.starts_with("event: message_start\n"));

    let bad = post(
        &sim.url(&format!(
            "{base}/google/models/gemini-2.5-flash:generateContent"
        )),
        &[("authorization", "Bearer x")],
        body,
    )
    .await;
    assert_eq!(bad.status(), 401);
    assert_eq!(
        bad.json::<Value>().await.unwrap()["error"]["status"],
        "UNAUTHENTICATED"
    );
}

#[tokio::test]
async fn scripted_failures_delays_and_stats() {
    let sim = start(SimulatorConfig::default().with_openai_keys(["sk-sim"])).await;
    let auth = ("authorization", "Bearer sk-sim");
    let url = sim.url("/v1/chat/completions");

    let bad = post(&url, &[("authorization", "Bearer wrong")], chat_body(false)).await;
    assert_eq!(bad.status(), 401);
    assert_eq!(
        bad.json::<Value>().await.unwrap()["error"]["code"],
        "invalid_api_key"
    );

    let r = post(&url, &[auth, ("x-sim-status", "503")], chat_body(false)).await;
    assert_eq!(r.status(), 503);
    assert_eq!(
        r.json::<Value>().await.unwrap()["error"]["type"],
        "server_error"
    );
    let r = post(
        &url,
        &[auth, ("x-sim-status", "429"), ("x-sim-retry-after", "4")],
        chat_body(false),
    )
    .await;
    assert_eq!(r.status(), 429);
    assert_eq!(r.headers()["retry-after"], "4");

    let started = std::time::Instant::now();
    let r = post(&url, &[auth, ("x-sim-delay-ms", "200")], chat_body(false)).await;
    assert_eq!(r.status(), 200);
    assert!(started.elapsed() >= Duration::from_millis(200));

    let r = post(&url, &[auth, ("x-sim-malformed", "1")], chat_body(false)).await;
    assert_eq!(r.status(), 200);
    assert!(serde_json::from_slice::<Value>(&r.bytes().await.unwrap()).is_err());

    // Reset: the first events arrive, then the transfer fails instead of ending.
    let mut r = post(
        &url,
        &[
            auth,
            ("x-sim-reset-after-chunks", "2"),
            ("x-sim-chunks", "6"),
        ],
        chat_body(true),
    )
    .await;
    let mut got = Vec::new();
    let err = loop {
        match r.chunk().await {
            Ok(Some(c)) => got.extend_from_slice(&c),
            Ok(None) => panic!(
                "stream ended cleanly after {:?}",
                String::from_utf8_lossy(&got)
            ),
            Err(e) => break e,
        }
    };
    assert_eq!(sse_data(&String::from_utf8_lossy(&got)).len(), 2, "{err}");

    // Stall: two events, then nothing while the connection stays open.
    let mut r = post(
        &url,
        &[auth, ("x-sim-stall-after-chunks", "2")],
        chat_body(true),
    )
    .await;
    let mut got = Vec::new();
    let stalled = tokio::time::timeout(Duration::from_millis(500), async {
        while let Some(c) = r.chunk().await.unwrap() {
            got.extend_from_slice(&c);
        }
    })
    .await;
    assert!(stalled.is_err());
    assert_eq!(sse_data(&String::from_utf8_lossy(&got)).len(), 2);

    let failing = start(SimulatorConfig::default().with_fail_status(503)).await;
    let r = post(
        &failing.url("/v1/messages"),
        &[("anthropic-version", "2023-06-01")],
        json!({}),
    )
    .await;
    assert_eq!(r.status(), 503);
    assert_eq!(
        r.json::<Value>().await.unwrap()["error"]["type"],
        "overloaded_error"
    );

    let bad_json = client()
        .post(sim.url("/v1/chat/completions"))
        .header(auth.0, auth.1)
        .body("{nope")
        .send()
        .await
        .unwrap();
    assert_eq!(bad_json.status(), 400);
    assert_eq!(
        bad_json.json::<Value>().await.unwrap()["error"]["type"],
        "invalid_request_error"
    );

    let stats: Value = client()
        .get(sim.url("/__sim/stats"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(stats["paths"]["/v1/chat/completions"], 8);
    assert_eq!(stats["total"], 8);
    let cleared = client()
        .delete(sim.url("/__sim/stats"))
        .send()
        .await
        .unwrap();
    assert_eq!(cleared.status(), 204);
    let stats: Value = client()
        .get(sim.url("/__sim/stats"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(stats["total"], 0);
}

/// Runs `tests/py/simulator_sdks.py KIND BASE` with the venv python, or skips.
fn run_python(kind: &str, base: &str) -> Option<Value> {
    let Ok(python) = std::env::var("AIGW_PYTHON") else {
        assert!(
            std::env::var_os("AIGW_REQUIRE_EXTERNAL").is_none(),
            "AIGW_PYTHON is required"
        );
        println!("skipping: AIGW_PYTHON is not set (run scripts/test.sh)");
        return None;
    };
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/py/simulator_sdks.py");
    let out = Command::new(python)
        .arg(script)
        .arg(kind)
        .arg(base)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{kind} client failed:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let stdout = String::from_utf8(out.stdout).unwrap();
    Some(serde_json::from_str(stdout.lines().last().unwrap()).unwrap())
}

async fn python_against(cfg: SimulatorConfig, kind: &'static str) -> Option<Value> {
    let sim = start(cfg).await;
    let base = sim.url("");
    let result = tokio::task::spawn_blocking(move || run_python(kind, &base))
        .await
        .unwrap();
    drop(sim);
    result
}

#[tokio::test(flavor = "multi_thread")]
async fn official_openai_sdk_parses_everything() {
    let Some(v) = python_against(
        SimulatorConfig::default().with_openai_keys(["sk-sim"]),
        "openai",
    )
    .await
    else {
        return;
    };
    assert_eq!(v["text"], REPLY);
    assert_eq!(v["finish"], "stop");
    assert_eq!(v["usage"], json!([3, 10, 13]));
    assert_eq!(v["stream_text"], REPLY);
    assert_eq!(v["stream_chunks"], 4);
    assert_eq!(v["stream_usage"], json!([3, 10]));
    assert_eq!(v["stream_finish"], "stop");
    assert_eq!(
        v["tool"],
        json!(["get_weather", {"city": "simulated"}, "tool_calls"])
    );
    assert_eq!(v["stream_tool_args"], json!({"city": "simulated"}));
    assert_eq!(v["embeddings"], json!([2, 8, 3]));
    assert_eq!(v["bad_key"], json!([401, "invalid_api_key"]));
    assert_eq!(v["reasoning_output"], json!(["reasoning", "message"]));
    let summary = v["reasoning_summary"].as_str().unwrap();
    assert!(summary.starts_with("The user wrote"), "{summary}");
    assert_eq!(
        v["reasoning_tokens"].as_u64(),
        Some(summary.split_whitespace().count() as u64)
    );
    let reasoning_reply = REPLY.replace("gpt-4o-mini", "o4-mini");
    assert_eq!(v["reasoning_text"], reasoning_reply);
    assert_eq!(v["stream_reasoning_summary"], summary);
    assert_eq!(v["stream_final_summary"], summary);
    assert_eq!(v["stream_final_output"], json!(["reasoning", "message"]));
    assert_eq!(v["stream_final_text"], reasoning_reply);
    let events: Vec<&str> = v["stream_reasoning_events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e.as_str().unwrap())
        .collect();
    let deltas = events
        .iter()
        .filter(|e| **e == "response.reasoning_summary_text.delta")
        .count();
    assert!(deltas >= 1, "{events:?}");
    let mut expected = vec![
        "response.output_item.added",
        "response.reasoning_summary_part.added",
    ];
    expected.extend(std::iter::repeat_n(
        "response.reasoning_summary_text.delta",
        deltas,
    ));
    expected.extend([
        "response.reasoning_summary_text.done",
        "response.reasoning_summary_part.done",
        "response.output_item.done",
        "response.output_item.added",
        "response.output_item.done",
    ]);
    assert_eq!(events, expected);
    assert_eq!(v["no_summary"], json!([["reasoning", "message"], []]));
}

#[tokio::test(flavor = "multi_thread")]
async fn official_anthropic_sdk_parses_everything() {
    let Some(v) = python_against(
        SimulatorConfig::default().with_anthropic_keys(["sk-ant-sim"]),
        "anthropic",
    )
    .await
    else {
        return;
    };
    let text = "Hello from the aigw simulator. Model claude-sonnet-4-5 received 3 words.";
    assert_eq!(v["text"], text);
    assert_eq!(v["stop"], "end_turn");
    assert_eq!(v["usage"], json!([3, 10]));
    assert_eq!(v["stream_text"], text);
    assert_eq!(v["stream_usage"], json!([3, 10]));
    assert_eq!(v["stream_stop"], "end_turn");
    assert_eq!(
        v["stream_tool"],
        json!(["tool_use", "get_weather", {"city": "simulated"}, "tool_use"])
    );
    assert_eq!(v["count"], 3);
    assert_eq!(v["bad_key"], json!([401, "authentication_error"]));
}

#[tokio::test(flavor = "multi_thread")]
async fn boto3_converse_stream_and_sigv4_verification() {
    let aws = AwsCredentials::new("AKIDSIMULATOR", "sim-secret", "us-east-1");
    let Some(v) = python_against(SimulatorConfig::default().with_aws(aws), "bedrock").await else {
        return;
    };
    let text = "Hello from the aigw simulator. Model anthropic.claude-3-haiku-20240307-v1:0 received 3 words.";
    assert_eq!(v["text"], text);
    assert_eq!(v["stop"], "end_turn");
    assert_eq!(v["usage"], json!([3, 10, 13]));
    assert_eq!(v["stream_text"], text);
    assert_eq!(
        v["stream_events"],
        json!([
            "messageStart",
            "contentBlockDelta",
            "contentBlockDelta",
            "contentBlockDelta",
            "contentBlockDelta",
            "contentBlockStop",
            "messageStop",
            "metadata"
        ])
    );
    assert_eq!(v["stream_usage"], json!([3, 10]));
    assert_eq!(v["stream_tool_input"], json!({"city": "simulated"}));
    assert_eq!(v["invoke_text"], text);
    assert_eq!(
        v["invoke_stream_types"],
        json!([
            "message_start",
            "content_block_start",
            "content_block_delta",
            "content_block_delta",
            "content_block_delta",
            "content_block_delta",
            "content_block_stop",
            "message_delta",
            "message_stop"
        ])
    );
    assert_eq!(v["bad_secret"], json!([403, "InvalidSignatureException"]));
}
