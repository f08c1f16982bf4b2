//! # aigw-providers
//!
//! One module per backend API; a [`Translator`](aigw_core::Translator) for every
//! (client API × backend) pair of the translation matrix, streaming included; the SSE
//! and AWS eventstream codecs; and provider error normalisation. No I/O.
//!
//! * [`eventstream`] — AWS eventstream decoder and encoder;
//! * [`bedrock`] — Bedrock Converse (chat), Titan/Cohere embeddings;
//! * [`vertex`] — Gemini on Vertex AI (chat), Vertex embeddings;
//! * [`canonical`] — the neutral chat model Bedrock and Gemini translate through.

pub mod bedrock;
pub mod canonical;
pub mod eventstream;
pub mod vertex;
