//! Anthropic Messages wire types.
