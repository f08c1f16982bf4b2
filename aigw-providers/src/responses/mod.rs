//! The OpenAI Responses API (`POST /v1/responses`, `POST /v1/responses/input_tokens`)
//! on every backend.
//!
//! * OpenAI and Azure OpenAI: a passthrough ([`ResponsesPassthrough`]) that only sniffs
//!   model and usage (Azure through its `/openai/v1/responses` API, where `model` names
//!   the deployment).
//! * Every other backend, and OpenAI-compatible servers without the Responses API
//!   (annotated `aigw.run/responses: translate`, e.g. vLLM or Ollama):
//!   [`ResponsesOverChat`] translates the request into a Chat
//!   Completions request ([`request`]), hands it to the backend's own Chat Completions
//!   translator (Anthropic, Claude on Bedrock or Vertex, Bedrock Converse, Gemini — all
//!   of which go through the neutral model), and renders that translator's output as a
//!   response object or the typed Responses event stream ([`response`]). Composing
//!   with the chat translators rather than duplicating them keeps one translation per
//!   backend; the cost is one extra JSON pass per request, and per chunk only for
//!   chat-only OpenAI servers: the other backends hand their stream over as values
//!   ([`events`], [`crate::anthropic::handoff`]).
//!
//! Reasoning is carried across turns in the gateway's sealed `encrypted_content`
//! ([`reasoning`]). Translated backends keep no conversation state, so responses with
//! `store` not `false` are kept in the gateway's bounded, TTL'd in-process
//! [`store`] and a `previous_response_id` continuation is expanded from it.

pub mod chunk;
pub mod events;
pub mod input_tokens;
pub mod passthrough;
pub mod reasoning;
pub mod request;
pub mod response;
pub mod retrieve;
pub mod store;
pub mod translator;
pub mod wire;

pub use input_tokens::InputTokensOverCount;
pub use passthrough::{ResponsesPassthrough, StoredResponsePassthrough};
pub use translator::ResponsesOverChat;

use crate::openai::Flavor;
use aigw_core::api::Endpoint;
use aigw_core::translate::TranslatorSpec;
use aigw_core::{ApiSchema, Result, Translator, TranslatorFactory};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

static DROPPED_TOOLS: AtomicU64 = AtomicU64::new(0);
static DROP_LOGGED: AtomicBool = AtomicBool::new(false);

/// How many hosted tools (cache-only `web_search`) translated requests have dropped
/// since start.
pub fn dropped_tool_count() -> u64 {
    DROPPED_TOOLS.load(Ordering::Relaxed)
}

/// Records a dropped hosted tool: counted always, logged at `warn` the first time (a
/// client such as Codex sends it on every request) and at `debug` after that.
pub(crate) fn note_dropped_tool(kind: &str, backend: &str) {
    DROPPED_TOOLS.fetch_add(1, Ordering::Relaxed);
    if DROP_LOGGED.swap(true, Ordering::Relaxed) {
        tracing::debug!(tool = kind, backend, "cache-only hosted tool dropped");
    } else {
        tracing::warn!(
            tool = kind,
            backend,
            "cache-only hosted tool dropped: the backend has no web search; \
             further drops are logged at debug level"
        );
    }
}

/// The translator for a Responses endpoint on `spec`'s backend.
pub fn translator(
    spec: &TranslatorSpec<'_>,
    factory: &dyn TranslatorFactory,
) -> Result<Box<dyn Translator>> {
    let schema = spec.schema;
    if spec.endpoint == Endpoint::ResponsesStored {
        return match schema.name {
            ApiSchema::OpenAI if !schema.responses_over_chat => {
                Ok(Box::new(StoredResponsePassthrough::new(Flavor::OpenAI {
                    prefix: schema.prefix.clone(),
                })))
            }
            ApiSchema::AzureOpenAI => Ok(Box::new(StoredResponsePassthrough::new(Flavor::Azure {
                version: schema.version.clone().unwrap_or_default(),
            }))),
            name => Err(aigw_core::Error::untranslatable(
                "endpoint responses_retrieve",
                name.as_str(),
                "stored responses of translated backends are answered by the gateway",
            )),
        };
    }
    let input_tokens = spec.endpoint == Endpoint::ResponsesInputTokens;
    match schema.name {
        ApiSchema::OpenAI if !schema.responses_over_chat => {
            Ok(Box::new(ResponsesPassthrough::new(
                Flavor::OpenAI {
                    prefix: schema.prefix.clone(),
                },
                input_tokens,
                spec.model_override,
            )))
        }
        ApiSchema::AzureOpenAI => Ok(Box::new(ResponsesPassthrough::new(
            Flavor::Azure {
                version: schema.version.clone().unwrap_or_default(),
            },
            input_tokens,
            spec.model_override,
        ))),
        name if input_tokens => {
            let count = factory.translator(&TranslatorSpec {
                endpoint: Endpoint::CountTokens,
                ..*spec
            })?;
            Ok(Box::new(InputTokensOverCount::new(count, name.as_str())))
        }
        name => {
            let spec = TranslatorSpec {
                endpoint: Endpoint::ChatCompletions,
                ..*spec
            };
            let sink = crate::canonical::sink::EventSink::default();
            if let Some(chat) = events::chat_translator(&spec, &sink) {
                return Ok(Box::new(ResponsesOverChat::over_events(
                    chat,
                    name.as_str(),
                    sink,
                )));
            }
            if let Some(platform) = crate::anthropic::handoff::platform(spec.schema) {
                let sink = crate::anthropic::handoff::ChunkSink::default();
                let chat = crate::anthropic::ChatToAnthropic::new(platform, spec.model_override)
                    .with_chunk_sink(sink.clone());
                return Ok(Box::new(ResponsesOverChat::over_chunks(
                    Box::new(chat),
                    name.as_str(),
                    sink,
                )));
            }
            if name == ApiSchema::OpenAI {
                let sink = crate::openai::handoff::SseSink::default();
                let chat = crate::openai::OpenAiTranslator::new(
                    crate::openai::Operation::ChatCompletions,
                    crate::openai::Flavor::OpenAI {
                        prefix: spec.schema.prefix.clone(),
                    },
                    spec.model_override,
                )
                .with_sse_sink(sink.clone());
                let translator = ResponsesOverChat::over_sse(Box::new(chat), name.as_str(), sink);
                return Ok(Box::new(translator.chat_only()));
            }
            let chat = factory.translator(&spec)?;
            Ok(Box::new(ResponsesOverChat::new(chat, name.as_str())))
        }
    }
}
