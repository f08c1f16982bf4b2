//! The standalone `aigw` binary.

fn main() {}
