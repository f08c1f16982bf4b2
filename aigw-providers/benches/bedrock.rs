//! Bedrock translation benchmarks (placeholder until the Bedrock translators land).
#![allow(missing_docs)]
fn main() {}
