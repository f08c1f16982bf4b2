//! Shared by the integration tests that include it.
#![allow(dead_code, unreachable_pub)]

pub mod xds;
