//! Token rate limits: the `rateLimit` rules of Envoy Gateway BackendTrafficPolicies,
//! enforced by a [`TokenMeter`](crate::meter::TokenMeter).
//!
//! * [`selector`] — `clientSelectors` (headers `Exact` / `RegularExpression` /
//!   `Distinct`, `invert`, `sourceCIDR`), typed from the YAML and matched;
//! * [`key`] — bucket keys and fixed windows aligned to the unit;
//! * [`store`] — the [`LimitStore`] trait and the in-process [`MemoryStore`];
//! * [`hold`], [`held`] — reserve, then settle exactly once ([`Held`]): amounts held in
//!   several buckets atomically, corrected once with what was used; the meter's
//!   reserve mode, and any other budget kept in a store;
//! * [`status`] — the `x-ratelimit-*` headers ([`LimitStatus`]);
//! * `redis` (feature `redis`) — `RedisStore`, the counters every instance pointed at
//!   one server shares;
//! * [`counters`] — [`RateLimits`], the counters that outlive configuration reloads;
//! * [`quota`] — QuotaPolicy (v1alpha1) budgets per backend and model, enforced by the
//!   same meter over the same stores;
//! * [`meter`] — [`RateLimitMeter`]: request costs checked and added before the
//!   upstream call, response costs (numbers or `llmRequestCosts` values) added once the
//!   exchange ends, whichever way it ends.
//!
//! No I/O here without the `redis` feature: the stores are injected.

pub mod charge;
pub mod counters;
pub mod failure;
pub mod held;
pub mod hold;
pub mod key;
pub mod meter;
pub mod quota;
#[cfg(feature = "redis")]
pub mod redis;
pub mod selector;
pub mod status;
pub mod store;

#[cfg(feature = "redis")]
pub use self::redis::{DEFAULT_TIMEOUT, RedisStore};
pub use charge::HeldCharge;
pub use counters::RateLimits;
pub use failure::FAILURE_MODE_ANNOTATION;
pub use held::{Held, Taken};
pub use hold::{Adjustment, Admission, Hold, Reserved};
pub use key::{bucket_base, bucket_key, seconds_to_reset, window_start};
pub use meter::{Clock, FailureModes, LimitMode, LimitStats, METADATA_NAMESPACE, RateLimitMeter};
pub use quota::QuotaCharge;
pub use selector::{ClientSelector, Descriptor, match_all};
pub use status::{LimitStatus, LimitUnit, Standing};
pub use store::{Increment, LimitStore, MemoryStore};

#[cfg(test)]
mod quota_tests;
#[cfg(test)]
mod reserve_tests;
#[cfg(test)]
mod tests;
