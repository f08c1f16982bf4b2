//! OpenAI wire types (Chat Completions, Completions, Embeddings, Models).
