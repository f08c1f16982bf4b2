//! The `aigw-extproc` binary.

fn main() {}
