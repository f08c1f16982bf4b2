//! Mounts the aigw gateway inside an existing axum application.

fn main() {}
