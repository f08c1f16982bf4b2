//! Routing: the compiled, immutable snapshot requests are matched against.
