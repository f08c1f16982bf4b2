//! Token rate limits: the `rateLimit` rules of Envoy Gateway BackendTrafficPolicies,
//! enforced by a [`TokenMeter`](crate::meter::TokenMeter).
//!
//! * [`selector`] — `clientSelectors` (headers `Exact` / `RegularExpression` /
//!   `Distinct`, `invert`, `sourceCIDR`), typed from the YAML and matched;
//! * [`key`] — bucket keys and fixed windows aligned to the unit;
//! * [`store`] — the [`LimitStore`] trait and the in-process [`MemoryStore`] (a Redis
//!   store lives in the axum adapter);
//! * [`meter`] — [`RateLimitMeter`]: request costs checked and added before the
//!   upstream call, response costs (numbers or `llmRequestCosts` values) added once the
//!   exchange ends, whichever way it ends.
//!
//! No I/O here: the stores are injected.

pub mod key;
pub mod meter;
pub mod selector;
pub mod store;

pub use key::{bucket_base, bucket_key, seconds_to_reset, window_start};
pub use meter::{Clock, LimitStats, METADATA_NAMESPACE, RateLimitMeter};
pub use selector::{ClientSelector, Descriptor, match_all};
pub use store::{Increment, LimitStore, MemoryStore};

#[cfg(test)]
mod tests;
