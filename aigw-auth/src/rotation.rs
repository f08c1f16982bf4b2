//! The one caching and rotation wrapper shared by every expiring credential.
//!
//! Providers only know how to fetch a credential once. [`Rotating`] caches it and:
//! * refreshes ahead of expiry (default five minutes before), while requests keep using
//!   the still-valid credential;
//! * single-flights fetches: however many requests arrive at expiry, one fetch runs and
//!   the rest wait for it (or keep using the current credential while it is valid);
//! * retries with exponential backoff after a failure, gating attempts on the clock rather
//!   than sleeping, so an outage costs one token request per backoff step, not one per
//!   request;
//! * never returns a credential at or past its expiry; once none is valid and refreshing
//!   fails, callers get a clear 503 naming the policy.

use crate::clock::{Clock, SystemClock};
use crate::error::AuthError;
use aigw_core::{Credential, CredentialProvider, OutgoingRequest, Result};
use async_trait::async_trait;
use std::fmt;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

/// Tuning of [`Rotating`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RotationConfig {
    /// How long before expiry a refresh starts.
    pub refresh_ahead: Duration,
    /// Wait after the first failed refresh; doubles per consecutive failure.
    pub initial_backoff: Duration,
    /// Upper bound of the wait between attempts.
    pub max_backoff: Duration,
}

impl Default for RotationConfig {
    fn default() -> Self {
        Self {
            refresh_ahead: Duration::from_secs(5 * 60),
            initial_backoff: Duration::from_secs(1),
            max_backoff: Duration::from_secs(60),
        }
    }
}

impl RotationConfig {
    fn backoff(&self, consecutive_failures: u32) -> Duration {
        let factor = 1u32
            .checked_shl(consecutive_failures.saturating_sub(1).min(20))
            .unwrap_or(u32::MAX);
        self.initial_backoff
            .checked_mul(factor)
            .unwrap_or(self.max_backoff)
            .min(self.max_backoff)
    }
}

/// The result of one refresh attempt, reported to a [`RefreshObserver`].
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum RefreshOutcome {
    /// A new credential was obtained.
    Refreshed {
        /// Its expiry.
        expires_at: Option<SystemTime>,
    },
    /// The fetch failed.
    Failed {
        /// Whether a previously obtained credential is still valid (requests keep working).
        still_valid: bool,
        /// Consecutive failures so far.
        consecutive_failures: u32,
    },
}

/// Receives every refresh outcome, e.g. to count them in metrics.
pub trait RefreshObserver: Send + Sync + fmt::Debug {
    /// Called after each fetch attempt of policy `policy`.
    fn on_refresh(&self, policy: &str, outcome: &RefreshOutcome);
}

/// Counters of a [`Rotating`] provider.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RotationStats {
    /// Successful fetches.
    pub refreshed: u64,
    /// Failed fetches.
    pub failed: u64,
    /// Failures since the last success.
    pub consecutive_failures: u32,
    /// Expiry of the cached credential.
    pub expires_at: Option<SystemTime>,
}

#[derive(Debug, Default)]
struct State {
    current: Option<Credential>,
    /// Bumped by every completed fetch, so waiters can tell a fetch happened meanwhile.
    generation: u64,
    last_error: Option<String>,
    next_attempt: Option<SystemTime>,
    stats: RotationStats,
}

/// Caching, refresh-ahead, single-flight wrapper around any [`CredentialProvider`].
///
/// Inside a tokio runtime the refresh ahead of expiry runs as a background task, so no
/// request waits for it; callers only wait when no valid credential exists at all.
///
/// ```
/// # async fn demo() -> aigw_core::Result<()> {
/// use aigw_auth::{ApiKeyProvider, KeySource, Rotating};
/// use aigw_core::CredentialProvider;
/// use std::sync::Arc;
/// let p = Rotating::new(Arc::new(ApiKeyProvider::bearer("ns/p", KeySource::value("k"))));
/// let c = p.credential().await?;
/// assert_eq!(p.stats().refreshed, 1);
/// # Ok(()) }
/// ```
pub struct Rotating {
    core: Core,
    /// Held by whoever is fetching: the single-flight gate.
    fetch: Arc<tokio::sync::Mutex<()>>,
}

/// Everything a refresh needs, cheap to clone into a background task.
#[derive(Clone)]
struct Core {
    inner: Arc<dyn CredentialProvider>,
    config: RotationConfig,
    clock: Arc<dyn Clock>,
    state: Arc<Mutex<State>>,
    observer: Option<Arc<dyn RefreshObserver>>,
}

impl fmt::Debug for Rotating {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Rotating")
            .field("inner", &self.core.inner)
            .field("config", &self.core.config)
            .field("stats", &self.stats())
            .finish_non_exhaustive()
    }
}

impl Rotating {
    /// Wraps `inner` with the default configuration and the system clock.
    pub fn new(inner: Arc<dyn CredentialProvider>) -> Self {
        Self {
            core: Core {
                inner,
                config: RotationConfig::default(),
                clock: Arc::new(SystemClock),
                state: Arc::new(Mutex::new(State::default())),
                observer: None,
            },
            fetch: Arc::new(tokio::sync::Mutex::new(())),
        }
    }

    /// Uses `config`.
    #[must_use]
    pub fn with_config(mut self, config: RotationConfig) -> Self {
        self.core.config = config;
        self
    }

    /// Reads time from `clock`.
    #[must_use]
    pub fn with_clock(mut self, clock: Arc<dyn Clock>) -> Self {
        self.core.clock = clock;
        self
    }

    /// Reports refresh outcomes to `observer`.
    #[must_use]
    pub fn with_observer(mut self, observer: Arc<dyn RefreshObserver>) -> Self {
        self.core.observer = Some(observer);
        self
    }

    /// Current counters.
    pub fn stats(&self) -> RotationStats {
        self.core.lock().stats.clone()
    }

    /// Whether a fetch is running right now (e.g. a background refresh).
    pub fn is_refreshing(&self) -> bool {
        self.fetch.try_lock().is_err()
    }
}

impl Core {
    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn is_valid(c: &Credential, now: SystemTime) -> bool {
        c.expires_at.is_none_or(|e| now < e)
    }

    fn wants_refresh(&self, c: &Credential, now: SystemTime) -> bool {
        c.expires_at
            .is_some_and(|e| now + self.config.refresh_ahead >= e)
    }

    /// The cached credential if still valid (dropping an expired one), and the generation.
    fn snapshot(&self, now: SystemTime) -> (Option<Credential>, u64) {
        let mut st = self.lock();
        if st.current.as_ref().is_some_and(|c| !Self::is_valid(c, now)) {
            st.current = None;
        }
        (st.current.clone(), st.generation)
    }

    fn unavailable(&self, st: &State) -> AuthError {
        let why = st
            .last_error
            .as_deref()
            .unwrap_or("no credential has been obtained yet");
        AuthError::Expired {
            policy: self.inner.name().to_owned(),
            message: format!("no valid credential: last refresh failed: {why}"),
        }
    }

    fn backing_off(&self, now: SystemTime) -> bool {
        self.lock().next_attempt.is_some_and(|t| now < t)
    }

    /// Runs one fetch; the caller holds the fetch lock.
    async fn refresh(&self) -> Result<Credential, AuthError> {
        let result = self.inner.credential().await;
        let now = self.clock.now();
        let mut st = self.lock();
        st.generation += 1;
        let outcome = match &result {
            Ok(c) if Self::is_valid(c, now) => {
                st.current = Some(c.clone());
                st.last_error = None;
                st.next_attempt = None;
                st.stats.refreshed += 1;
                st.stats.consecutive_failures = 0;
                st.stats.expires_at = c.expires_at;
                tracing::debug!(policy = self.inner.name(), "credential refreshed");
                RefreshOutcome::Refreshed {
                    expires_at: c.expires_at,
                }
            }
            other => {
                let message = match other {
                    Ok(_) => "the fetched credential is already expired".to_owned(),
                    Err(aigw_core::Error::Credential { message, .. }) => message.clone(),
                    Err(e) => e.to_string(),
                };
                st.stats.failed += 1;
                st.stats.consecutive_failures += 1;
                let failures = st.stats.consecutive_failures;
                st.next_attempt = Some(now + self.config.backoff(failures));
                let still_valid = st.current.as_ref().is_some_and(|c| Self::is_valid(c, now));
                tracing::warn!(
                    policy = self.inner.name(),
                    error = %message,
                    still_valid,
                    failures,
                    "credential refresh failed"
                );
                st.last_error = Some(message);
                RefreshOutcome::Failed {
                    still_valid,
                    consecutive_failures: failures,
                }
            }
        };
        let result = match &outcome {
            RefreshOutcome::Refreshed { .. } => {
                st.current.clone().ok_or_else(|| self.unavailable(&st))
            }
            RefreshOutcome::Failed { .. } => Err(self.unavailable(&st)),
        };
        drop(st);
        if let Some(o) = &self.observer {
            o.on_refresh(self.inner.name(), &outcome);
        }
        result
    }
}

#[async_trait]
impl CredentialProvider for Rotating {
    fn name(&self) -> &str {
        self.core.inner.name()
    }

    async fn credential(&self) -> Result<Credential> {
        let core = &self.core;
        let now = core.clock.now();
        let (cached, generation) = core.snapshot(now);
        if let Some(current) = cached {
            if !core.wants_refresh(&current, now) || core.backing_off(now) {
                return Ok(current);
            }
            // Refresh ahead: one caller starts the fetch, everyone keeps the valid credential.
            let Ok(guard) = self.fetch.clone().try_lock_owned() else {
                return Ok(current);
            };
            if core.lock().generation != generation {
                return Ok(core.snapshot(core.clock.now()).0.unwrap_or(current));
            }
            if let Ok(runtime) = tokio::runtime::Handle::try_current() {
                let background = core.clone();
                runtime.spawn(async move {
                    let _guard = guard;
                    // The outcome lands in the shared state and the observer.
                    let _ = background.refresh().await;
                });
                return Ok(current);
            }
            let _guard = guard;
            return match core.refresh().await {
                Ok(c) => Ok(c),
                // The fetch may have outlasted the old credential.
                Err(_) if Core::is_valid(&current, core.clock.now()) => Ok(current),
                Err(e) => Err(e.into()),
            };
        }
        if core.backing_off(now) {
            return Err(core.unavailable(&core.lock()).into());
        }
        let _guard = self.fetch.lock().await;
        let (cached, now_generation) = core.snapshot(core.clock.now());
        if let Some(c) = cached {
            return Ok(c);
        }
        if now_generation != generation {
            // A fetch completed while this caller waited, and failed: share its result.
            return Err(core.unavailable(&core.lock()).into());
        }
        Ok(core.refresh().await?)
    }

    fn apply(&self, credential: &Credential, request: &mut OutgoingRequest) -> Result<()> {
        self.core.inner.apply(credential, request)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_and_caps() {
        let c = RotationConfig::default();
        assert_eq!(c.backoff(1), Duration::from_secs(1));
        assert_eq!(c.backoff(2), Duration::from_secs(2));
        assert_eq!(c.backoff(4), Duration::from_secs(8));
        assert_eq!(c.backoff(7), Duration::from_secs(60));
        assert_eq!(c.backoff(400), Duration::from_secs(60));
    }
}
