//! # aigw-axum
//!
//! The gateway in-process: build it from a configuration snapshot and mount it as a
//! tower `Service`, an axum `Router` or a `Layer` in your own service. Also home of the
//! standalone `aigw` binary and its bundled provider simulator.
