//! # aigw-providers
//!
//! One module per backend API; a [`Translator`](aigw_core::Translator) for every
//! (client API × backend) pair of the translation matrix, streaming included; the SSE
//! and AWS eventstream codecs; and provider error normalisation. No I/O.

pub mod bedrock;
pub mod canonical;
pub mod eventstream;
