//! # aigw-providers
//!
//! One module per backend API; a [`Translator`](aigw_core::Translator) for every
//! (client API × backend) pair of the translation matrix, streaming included; the SSE
//! and AWS eventstream codecs; and provider error normalisation. No I/O.
//!
//! * [`sse`] — incremental server-sent-events decoder and encoder;
//! * [`compression`] — incremental gzip/deflate/brotli decoding of upstream bodies;
//! * [`error_map`] — upstream error bodies into OpenAI/Anthropic envelopes;
//! * [`openai`] — OpenAI, OpenAI-compatible and Azure OpenAI passthrough;
//! * [`anthropic`] — OpenAI Chat ↔ Anthropic Messages, Anthropic passthrough,
//!   Anthropic on Vertex (GCPAnthropic), count_tokens;
//! * [`eventstream`] — AWS eventstream decoder and encoder;
//! * [`bedrock`] — Bedrock Converse (chat), Titan/Cohere embeddings;
//! * [`vertex`] — Gemini on Vertex AI (chat), Vertex embeddings;
//! * [`responses`] — the OpenAI Responses API: passthrough to OpenAI/Azure, translation
//!   to every other backend over its Chat Completions translator;
//! * [`canonical`] — the neutral chat model Bedrock and Gemini translate through;
//! * [`factory::ProviderFactory`] — the [`TranslatorFactory`](aigw_core::TranslatorFactory)
//!   over the whole matrix.

pub mod anthropic;
pub mod bedrock;
mod borrowed;
pub mod canonical;
pub mod compression;
pub mod error_map;
pub mod eventstream;
pub mod factory;
mod json_out;
mod json_scan;
pub mod openai;
pub mod responses;
pub mod sse;
pub mod tokenize;
pub mod vertex;

pub use factory::ProviderFactory;
