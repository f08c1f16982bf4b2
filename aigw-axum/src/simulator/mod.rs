//! A fake LLM provider that speaks the real wire formats, for tests and benchmarks.
//!
//! The simulator answers on the providers' exact paths with their exact bodies, so the
//! gateway, the Envoy ExtProc adapter and benchmarks can run end to end with no keys and
//! no network. `aigw simulate --listen ADDR` runs it as a process; [`Simulator::router`]
//! mounts it in-process.
//!
//! # Routes
//! | provider | routes |
//! |---|---|
//! | OpenAI | `POST /v1/chat/completions`, `/v1/completions`, `/v1/embeddings`, `/v1/responses` (JSON and typed event stream), `/v1/responses/input_tokens`; `GET /v1/models`; any `{prefix}/chat/completions`, `{prefix}/completions`, `{prefix}/embeddings` (OpenAI-compatible servers) |
//! | Azure OpenAI | `POST /openai/deployments/{deployment}/chat/completions?api-version=…`, `…/completions`, `…/embeddings`; `POST /openai/v1/responses`, `/openai/v1/responses/input_tokens` |
//! | Anthropic | `POST /v1/messages`, `/v1/messages/count_tokens` |
//! | AWS Bedrock | `POST /model/{modelId}/converse`, `/converse-stream`, `/invoke` (Claude, Titan/Cohere embeddings, Titan Image / Nova Canvas / Stability images), `/invoke-with-response-stream`, `/count-tokens`; Agent Runtime `POST /rerank` |
//! | Vertex AI | `POST /v1/projects/{p}/locations/{r}/publishers/google/models/{model}:generateContent`, `:streamGenerateContent` (`?alt=sse` or a JSON array), `:predict` (embeddings, Imagen), `:embedContent`, `:countTokens`; `…/publishers/anthropic/models/{model}:rawPredict`, `:streamRawPredict`; Ranking API `…/rankingConfigs/{config}:rank` |
//! | simulator | `GET /__sim/stats` (requests per path, and per path with query when one was sent, JSON), `DELETE /__sim/stats` (reset) |
//!
//! # Replies
//! Deterministic: the text depends only on the model and the last user message, usage
//! counts words. A request that offers tools gets a tool call unless `tool_choice` is
//! none (Anthropic/Bedrock/Gemini equivalents alike): the tool the user names with
//! "call a tool: NAME key=value" (that argument set), else the first offered tool with
//! arguments built from its schema. After a tool result (system messages that follow it
//! aside) the reply is text, so an agent loop makes one tool round trip per user turn
//! and ends. A JSON schema (`response_format`, `text.format`, `output_config.format`,
//! Converse `outputConfig.textFormat`, Gemini `responseJsonSchema`) gets a conforming
//! object as the text; a reasoning request (`reasoning_effort`, Responses `reasoning`,
//! `thinking`, Converse `thinking`/`reasoningConfig`, Gemini `includeThoughts`) gets a
//! reasoning text first, streamed in the dialect's shape — on the Responses wire a
//! `reasoning` output item whose summary (when `reasoning.summary` asks for one) streams
//! as `response.reasoning_summary_part.added`, `response.reasoning_summary_text.delta`…,
//! `.done`, `response.reasoning_summary_part.done`, as OpenAI's reasoning models do.
//!
//! # Credentials
//! Configured in [`SimulatorConfig`]; a kind left `None` accepts anything. Bedrock
//! requests are verified by recomputing their SigV4 signature.
//!
//! # Scripting (request headers)
//! | header | effect |
//! |---|---|
//! | [`x-sim-status: 503`](HEADER_STATUS) | fail with that status in the provider's error shape |
//! | [`x-sim-retry-after: 2`](HEADER_RETRY_AFTER) | `Retry-After` of a scripted 429 (default 1) |
//! | [`x-sim-delay-ms: 250`](HEADER_DELAY_MS) | wait before sending response headers |
//! | [`x-sim-chunks: 8`](HEADER_CHUNKS) | content chunks in a streamed reply |
//! | [`x-sim-chunk-interval-ms: 20`](HEADER_CHUNK_INTERVAL_MS) | pause between streamed events |
//! | [`x-sim-reset-after-chunks: 2`](HEADER_RESET_AFTER_CHUNKS) | abort the connection after N events (a TCP reset under [`Simulator::serve`]) |
//! | [`x-sim-stall-after-chunks: 2`](HEADER_STALL_AFTER_CHUNKS) | stop sending after N events, keep the connection open |
//! | [`x-sim-malformed: 1`](HEADER_MALFORMED) | invalid JSON body, or a stream with a broken event / truncated frame |
//!
//! ```no_run
//! use aigw_axum::simulator::{Simulator, SimulatorConfig};
//!
//! # async fn run() -> std::io::Result<()> {
//! let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
//! let sim = Simulator::new(SimulatorConfig::default().with_openai_keys(["sk-test"]));
//! sim.serve(listener, async { let _ = tokio::signal::ctrl_c().await; }).await
//! # }
//! ```

mod anthropic;
mod auth;
mod bedrock;
mod config;
mod errors;
mod eventstream;
mod images_rerank;
mod media;
mod openai;
mod reply;
mod responses;
mod script;
mod server;
mod sigv4;
mod stats;
mod stream;
mod vertex;

use std::sync::Arc;

use axum::Router;
use axum::extract::{DefaultBodyLimit, FromRequest, Request};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use bytes::Bytes;
use http::{HeaderMap, Method, StatusCode, Uri};
use serde_json::Value;

pub use auth::SIM_GCP_TOKEN;
pub use config::{AwsCredentials, SimulatorConfig};
pub use script::{
    HEADER_CHUNK_INTERVAL_MS, HEADER_CHUNKS, HEADER_DELAY_MS, HEADER_MALFORMED,
    HEADER_RESET_AFTER_CHUNKS, HEADER_RETRY_AFTER, HEADER_STALL_AFTER_CHUNKS, HEADER_STATUS,
};
pub use stream::ConnReset;

use errors::Provider;
use script::Script;
use stats::Stats;

/// Largest request body the simulator reads.
const BODY_LIMIT: usize = 32 << 20;

/// The bundled provider simulator.
///
/// Cheap to clone; clones share configuration and request counters.
#[derive(Clone, Debug)]
pub struct Simulator {
    shared: Arc<Shared>,
}

#[derive(Debug)]
struct Shared {
    cfg: SimulatorConfig,
    stats: Stats,
    responses: responses::Stored,
}

type Sim = axum::extract::State<Arc<Shared>>;

impl Simulator {
    /// A simulator with this configuration.
    pub fn new(cfg: SimulatorConfig) -> Self {
        Self {
            shared: Arc::new(Shared {
                cfg,
                stats: Stats::default(),
                responses: responses::Stored::default(),
            }),
        }
    }

    /// The configuration it runs with.
    pub fn config(&self) -> &SimulatorConfig {
        &self.shared.cfg
    }

    /// Requests received so far per path (without query), `/__sim/*` excluded.
    pub fn request_counts(&self) -> std::collections::BTreeMap<String, u64> {
        self.shared.stats.snapshot()
    }

    /// All routes as an axum `Router`, to run in-process or under your own server.
    pub fn router(&self) -> Router {
        Router::new()
            .route("/v1/chat/completions", post(openai::chat))
            .route("/v1/completions", post(openai::completions))
            .route("/v1/embeddings", post(openai::embeddings))
            .route("/v1/models", get(openai::models))
            .route(
                "/openai/deployments/{deployment}/chat/completions",
                post(openai::azure_chat),
            )
            .route(
                "/openai/deployments/{deployment}/completions",
                post(openai::azure_completions),
            )
            .route(
                "/openai/deployments/{deployment}/embeddings",
                post(openai::azure_embeddings),
            )
            .route("/v1/images/generations", post(media::generations))
            .route("/v1/images/edits", post(media::edits))
            .route("/v1/audio/speech", post(media::speech))
            .route("/v1/audio/transcriptions", post(media::transcriptions))
            .route("/v1/audio/translations", post(media::translations))
            .route(
                "/openai/deployments/{deployment}/{kind}/{op}",
                post(media::azure),
            )
            .route("/v2/rerank", post(media::rerank))
            .route("/rerank", post(images_rerank::bedrock_rerank))
            .route(
                "/{version}/projects/{project}/locations/{location}/rankingConfigs/{action}",
                post(images_rerank::vertex_rank),
            )
            .route("/tokenize", post(media::tokenize))
            .route("/v1/responses", post(responses::create))
            .route("/v1/responses/input_tokens", post(responses::input_tokens))
            .route(
                "/v1/responses/{id}",
                get(responses::retrieve).delete(responses::delete),
            )
            .route("/v1/responses/{id}/input_items", get(responses::input_items))
            .route(
                "/openai/v1/responses/{id}",
                get(responses::azure_retrieve).delete(responses::azure_delete),
            )
            .route(
                "/openai/v1/responses/{id}/input_items",
                get(responses::azure_input_items),
            )
            .route("/openai/v1/responses", post(responses::azure_create))
            .route(
                "/openai/v1/responses/input_tokens",
                post(responses::azure_input_tokens),
            )
            .route("/v1/messages", post(anthropic::messages))
            .route("/v1/messages/count_tokens", post(anthropic::count_tokens))
            .route("/model/{model}/converse", post(bedrock::converse))
            .route("/model/{model}/converse-stream", post(bedrock::converse_stream))
            .route("/model/{model}/invoke", post(bedrock::invoke))
            .route("/model/{model}/count-tokens", post(bedrock::count_tokens))
            .route(
                "/model/{model}/invoke-with-response-stream",
                post(bedrock::invoke_stream),
            )
            .route(
                "/{version}/projects/{project}/locations/{location}/publishers/{publisher}/models/{action}",
                post(vertex::dispatch),
            )
            .route(
                "/computeMetadata/v1/instance/service-accounts/default/token",
                get(auth::metadata_token),
            )
            .route(
                "/__sim/stats",
                get(stats::get_stats).delete(stats::reset_stats),
            )
            .fallback(openai::fallback)
            .layer(axum::middleware::from_fn_with_state(
                self.shared.clone(),
                stats::count,
            ))
            .layer(DefaultBodyLimit::max(BODY_LIMIT))
            .with_state(self.shared.clone())
    }

    /// Serves the simulator on `listener` until `shutdown` completes.
    ///
    /// Sets `TCP_NODELAY` on every connection and turns `x-sim-reset-after-chunks` into a
    /// real TCP reset. On shutdown it stops accepting, lets in-flight requests finish for
    /// a short grace period and then drops the rest (stalled streams never finish).
    pub async fn serve(
        self,
        listener: tokio::net::TcpListener,
        shutdown: impl Future<Output = ()> + Send,
    ) -> std::io::Result<()> {
        server::serve(self.router(), listener, shutdown).await
    }
}

/// What every handler needs from the request.
pub(crate) struct SimRequest {
    pub(crate) method: Method,
    pub(crate) uri: Uri,
    pub(crate) headers: HeaderMap,
    pub(crate) body: Bytes,
    pub(crate) reset: Option<ConnReset>,
}

impl<S: Send + Sync> FromRequest<S> for SimRequest {
    type Rejection = Response;

    async fn from_request(req: Request, _state: &S) -> Result<Self, Self::Rejection> {
        let (parts, body) = req.into_parts();
        let body = axum::body::to_bytes(body, BODY_LIMIT)
            .await
            .map_err(|_| StatusCode::PAYLOAD_TOO_LARGE.into_response())?;
        Ok(Self {
            reset: parts.extensions.get::<ConnReset>().cloned(),
            method: parts.method,
            uri: parts.uri,
            headers: parts.headers,
            body,
        })
    }
}

impl SimRequest {
    /// The body as JSON, or the provider's 400.
    #[allow(clippy::result_large_err)]
    fn json(&self, provider: Provider) -> Result<Value, Response> {
        serde_json::from_slice(&self.body).map_err(|e| {
            errors::bad_request(
                provider,
                &format!("The request body is not valid JSON: {e}"),
            )
        })
    }

    /// Whether the query string has `key=value`.
    fn query_has(&self, key: &str, value: &str) -> bool {
        self.uri.query().is_some_and(|q| {
            q.split('&')
                .any(|kv| kv.split_once('=') == Some((key, value)))
        })
    }
}

/// The common start of every provider request: scripted delay, credential check,
/// scripted failure. Returns the script that shapes the reply.
#[allow(clippy::result_large_err)]
async fn begin(shared: &Shared, provider: Provider, req: &SimRequest) -> Result<Script, Response> {
    let script = Script::from_headers(&req.headers, &shared.cfg);
    if !script.delay.is_zero() {
        tokio::time::sleep(script.delay).await;
    }
    auth::check(provider, &shared.cfg, req)?;
    if let Some(status) = script.status {
        return Err(errors::scripted(
            provider,
            status,
            script.retry_after.as_ref(),
        ));
    }
    Ok(script)
}

/// A fixed `created` timestamp keeps replies byte-for-byte deterministic.
const CREATED: u64 = 1_700_000_000;
