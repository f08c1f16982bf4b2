//! The [`TokenMeter`] trait: token budgets reserved before and settled after a call.

use crate::error::Result;
use crate::usage::TokenUsage;
use async_trait::async_trait;
use std::sync::Arc;

/// What a meter needs to know about a request to account for it.
#[derive(Debug, Clone, Copy)]
pub struct MeterRequest<'a> {
    /// The route (`namespace/name`).
    pub route: &'a str,
    /// The backend (`namespace/name`).
    pub backend: &'a str,
    /// The model after any override.
    pub model: &'a str,
    /// The client identity (API key id, JWT subject), when known.
    pub client: Option<&'a str>,
    /// Estimated tokens of the request (prompt estimate plus `max_tokens`).
    pub estimate: u64,
}

/// A reservation handed out by [`TokenMeter::reserve`]; settled exactly once.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reservation {
    /// Meter-specific id of the reservation.
    pub id: u64,
    /// The estimate that was reserved.
    pub estimate: u64,
    /// The buckets the reservation was charged to.
    pub keys: Vec<String>,
}

/// Meters tokens against limits.
///
/// `reserve` runs before the upstream call and may refuse it (an
/// [`Error::RateLimited`](crate::Error::RateLimited), a 429). `settle` runs exactly
/// once afterwards with the actual usage — after success, after an upstream error and
/// after a client hang-up — and is synchronous so it can run from `Drop`
/// ([`MeterGuard`] does that); implementations that talk to a store enqueue the
/// settlement and return.
///
/// ```
/// use aigw_core::meter::{MeterRequest, Reservation, TokenMeter};
/// use aigw_core::{Result, TokenUsage};
/// use std::sync::atomic::{AtomicU64, Ordering};
///
/// #[derive(Default)]
/// struct Counting(AtomicU64);
///
/// #[async_trait::async_trait]
/// impl TokenMeter for Counting {
///     async fn reserve(&self, req: &MeterRequest<'_>) -> Result<Reservation> {
///         Ok(Reservation { id: 0, estimate: req.estimate, keys: vec![] })
///     }
///     fn settle(&self, _r: Reservation, usage: &TokenUsage) {
///         self.0.fetch_add(usage.total_or_sum().unwrap_or(0), Ordering::Relaxed);
///     }
/// }
/// ```
#[async_trait]
pub trait TokenMeter: Send + Sync {
    /// Reserves an estimate, or refuses the request.
    async fn reserve(&self, request: &MeterRequest<'_>) -> Result<Reservation>;

    /// Settles a reservation with the actual usage. Called exactly once per reservation.
    fn settle(&self, reservation: Reservation, usage: &TokenUsage);
}

/// A meter that never refuses and records nothing.
#[derive(Debug, Clone, Copy, Default)]
pub struct NoopMeter;

#[async_trait]
impl TokenMeter for NoopMeter {
    async fn reserve(&self, request: &MeterRequest<'_>) -> Result<Reservation> {
        Ok(Reservation {
            id: 0,
            estimate: request.estimate,
            keys: Vec::new(),
        })
    }

    fn settle(&self, _reservation: Reservation, _usage: &TokenUsage) {}
}

/// Owns a reservation and guarantees it is settled exactly once.
///
/// Adapters feed it the cumulative usage as chunks arrive; it settles on
/// [`MeterGuard::finish`] or, if the request is abandoned (client disconnect, panic,
/// cancelled future), when dropped — with the tokens seen so far, so a hang-up never
/// makes tokens free.
pub struct MeterGuard {
    meter: Arc<dyn TokenMeter>,
    reservation: Option<Reservation>,
    usage: TokenUsage,
}

impl std::fmt::Debug for MeterGuard {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MeterGuard")
            .field("reservation", &self.reservation)
            .field("usage", &self.usage)
            .finish_non_exhaustive()
    }
}

impl MeterGuard {
    /// Wraps a reservation.
    pub fn new(meter: Arc<dyn TokenMeter>, reservation: Reservation) -> Self {
        Self {
            meter,
            reservation: Some(reservation),
            usage: TokenUsage::default(),
        }
    }

    /// Folds in the latest cumulative usage.
    pub fn update(&mut self, usage: &TokenUsage) {
        self.usage.update(usage);
    }

    /// The usage recorded so far.
    pub const fn usage(&self) -> &TokenUsage {
        &self.usage
    }

    /// Settles now.
    pub fn finish(mut self) {
        self.settle_once();
    }

    fn settle_once(&mut self) {
        if let Some(r) = self.reservation.take() {
            self.meter.settle(r, &self.usage);
        }
    }
}

impl Drop for MeterGuard {
    fn drop(&mut self) {
        self.settle_once();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Mutex;

    #[derive(Default)]
    struct Rec(Mutex<Vec<TokenUsage>>);

    #[async_trait]
    impl TokenMeter for Rec {
        async fn reserve(&self, r: &MeterRequest<'_>) -> Result<Reservation> {
            Ok(Reservation {
                id: 1,
                estimate: r.estimate,
                keys: vec![],
            })
        }
        fn settle(&self, _r: Reservation, usage: &TokenUsage) {
            self.0.lock().unwrap().push(*usage);
        }
    }

    #[test]
    fn drop_settles_once_with_partial_usage() {
        let rec = Arc::new(Rec::default());
        let r = Reservation {
            id: 1,
            estimate: 5,
            keys: vec![],
        };
        {
            let mut g = MeterGuard::new(rec.clone(), r.clone());
            g.update(&TokenUsage {
                output: Some(3),
                ..Default::default()
            });
        }
        let g = MeterGuard::new(rec.clone(), r);
        g.finish();
        let v = rec.0.lock().unwrap();
        assert_eq!(v.len(), 2);
        assert_eq!(v[0].output, Some(3));
    }
}
