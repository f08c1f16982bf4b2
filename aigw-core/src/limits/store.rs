//! Where rate-limit counters live: the [`LimitStore`] trait and the in-process
//! [`MemoryStore`].

use super::hold::{Adjustment, Admission, Hold, Reserved, admits};
use super::key::{bucket_key, window_start};
use crate::error::{Error, Result};
use async_trait::async_trait;
use std::collections::HashMap;
use std::hash::{BuildHasher, RandomState};
use std::sync::Mutex;

/// One addition to a bucket.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Increment {
    /// The bucket's key, window included ([`super::key::bucket_key`]).
    pub key: String,
    /// What to add (0 reads the count).
    pub cost: u64,
    /// When the window ends (Unix seconds); the bucket may be dropped after it.
    pub expires_at: u64,
}

/// Counters keyed by bucket, shared by every request (and, for a networked store, every
/// instance).
///
/// `incr` adds and returns the counts after the additions, in order, in one round trip;
/// a failing store is reported as an error and the caller decides (the meter lets the
/// request through). `add` is the fire-and-forget form used when a response is settled:
/// it must not block, so a networked store enqueues or spawns the work.
///
/// ```
/// use aigw_core::limits::{Increment, LimitStore, MemoryStore};
///
/// # fn main() -> aigw_core::Result<()> {
/// let store = MemoryStore::default();
/// let inc = |cost| Increment { key: "k_0".into(), cost, expires_at: 60 };
/// let first = [inc(3)];
/// let counts = block_on(store.incr(10, &first))?;
/// assert_eq!(counts, vec![3]);
/// store.add(11, vec![inc(4)]);
/// let check = [inc(0)];
/// assert_eq!(block_on(store.incr(12, &check))?, vec![7]);
/// # Ok(())
/// # }
/// # fn block_on<T>(f: impl std::future::Future<Output = T>) -> T {
/// #     let mut f = std::pin::pin!(f);
/// #     let mut cx = std::task::Context::from_waker(std::task::Waker::noop());
/// #     loop { if let std::task::Poll::Ready(v) = f.as_mut().poll(&mut cx) { return v; } }
/// # }
/// ```
#[async_trait]
pub trait LimitStore: Send + Sync {
    /// Adds each increment's cost to its bucket and returns the resulting counts.
    /// `now` is the current Unix time in seconds.
    async fn incr(&self, now: u64, increments: &[Increment]) -> Result<Vec<u64>>;

    /// Adds without waiting for the result.
    fn add(&self, now: u64, increments: Vec<Increment>);

    /// Holds every amount of `holds`, or none when `admission` refuses, in one atomic
    /// step: no other reservation sees the buckets between the check and the addition.
    /// Each bucket's window is taken from the store's own clock when it has one (Redis
    /// `TIME`), else from `now`. See [`super::held::Held`].
    ///
    /// The default adds with [`LimitStore::incr`] at `now` for [`Admission::Always`] (a
    /// store of counters only serves the upstream-compatible mode) and refuses to hold.
    async fn reserve(&self, now: u64, holds: &[Hold], admission: Admission) -> Result<Reserved> {
        if admission != Admission::Always {
            return Err(Error::internal(
                "this rate-limit store cannot hold reservations",
            ));
        }
        let incs: Vec<Increment> = holds
            .iter()
            .map(|h| hold_increment(now, h, h.amount))
            .collect();
        let counts = self.incr(now, &incs).await?;
        Ok(Reserved {
            admitted: true,
            now,
            counts,
        })
    }

    /// Applies corrections to earlier holds without waiting (see [`Adjustment`]): a
    /// delta goes to the window its hold was made in while that window lasts; once it
    /// has ended, an overrun goes to the current window and a refund is dropped. No
    /// bucket goes below zero.
    ///
    /// The default adds the charges with [`LimitStore::add`] at `now` and drops refunds,
    /// which a store of counters cannot apply.
    fn adjust(&self, now: u64, adjustments: Vec<Adjustment>) {
        let mut adds = Vec::with_capacity(adjustments.len());
        for a in &adjustments {
            match (target_window(now, a), u64::try_from(a.delta)) {
                (Some(start), Ok(cost)) => adds.push(Increment {
                    key: bucket_key(&a.bucket, start),
                    cost,
                    expires_at: start + a.window,
                }),
                (None, _) => {}
                (Some(_), Err(_)) => {
                    tracing::warn!(
                        "rate-limit store cannot give back part of a hold; refund dropped"
                    );
                }
            }
        }
        if !adds.is_empty() {
            self.add(now, adds);
        }
    }
}

const SHARDS: usize = 16;
/// Operations on a shard between two sweeps of its expired buckets.
const SWEEP_EVERY: u32 = 1024;

#[derive(Debug, Default)]
struct Shard {
    buckets: HashMap<String, (u64, u64)>,
    ops: u32,
}

impl Shard {
    fn apply(&mut self, now: u64, inc: &Increment) -> u64 {
        self.ops = self.ops.wrapping_add(1);
        if self.ops.is_multiple_of(SWEEP_EVERY) {
            self.buckets.retain(|_, (_, expires)| *expires > now);
        }
        let entry = self
            .buckets
            .entry(inc.key.clone())
            .or_insert((0, inc.expires_at));
        entry.0 = entry.0.saturating_add(inc.cost);
        entry.1 = entry.1.max(inc.expires_at);
        entry.0
    }
}

/// Counters in this process: a sharded map of buckets, expired windows swept as the
/// shards are used. Hold one for the life of the process (outside configuration
/// snapshots) so counts survive reloads.
#[derive(Debug)]
pub struct MemoryStore {
    shards: Vec<Mutex<Shard>>,
    hasher: RandomState,
    /// Serialises reservations, so a check and its addition are one step.
    reserving: Mutex<()>,
}

impl Default for MemoryStore {
    fn default() -> Self {
        Self {
            shards: (0..SHARDS).map(|_| Mutex::new(Shard::default())).collect(),
            hasher: RandomState::new(),
            reserving: Mutex::new(()),
        }
    }
}

impl MemoryStore {
    fn shard(&self, key: &str) -> Result<std::sync::MutexGuard<'_, Shard>> {
        let i = (self.hasher.hash_one(key) as usize) % self.shards.len();
        self.shards
            .get(i)
            .ok_or_else(|| Error::internal("rate-limit shard out of range"))?
            .lock()
            .map_err(|_| Error::internal("rate-limit counters poisoned"))
    }

    fn apply(&self, now: u64, inc: &Increment) -> Result<u64> {
        Ok(self.shard(&inc.key)?.apply(now, inc))
    }

    /// Buckets currently held (expired ones included until swept).
    pub fn len(&self) -> usize {
        self.shards
            .iter()
            .filter_map(|s| s.lock().ok().map(|s| s.buckets.len()))
            .sum()
    }

    /// Whether no bucket is held.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Drops every bucket whose window ended at or before `now`.
    pub fn sweep(&self, now: u64) {
        for s in &self.shards {
            if let Ok(mut s) = s.lock() {
                s.buckets.retain(|_, (_, expires)| *expires > now);
            }
        }
    }
}

#[async_trait]
impl LimitStore for MemoryStore {
    async fn incr(&self, now: u64, increments: &[Increment]) -> Result<Vec<u64>> {
        increments.iter().map(|i| self.apply(now, i)).collect()
    }

    fn add(&self, now: u64, increments: Vec<Increment>) {
        for i in &increments {
            if let Err(e) = self.apply(now, i) {
                tracing::warn!(error = %e, "rate-limit counter update failed");
            }
        }
    }

    async fn reserve(&self, now: u64, holds: &[Hold], admission: Admission) -> Result<Reserved> {
        if admission == Admission::Always {
            // Nothing is decided between a read and a write: each addition is atomic.
            let counts = holds
                .iter()
                .map(|h| self.apply(now, &hold_increment(now, h, h.amount)))
                .collect::<Result<Vec<_>>>()?;
            return Ok(Reserved {
                admitted: true,
                now,
                counts,
            });
        }
        let _one_at_a_time = self
            .reserving
            .lock()
            .map_err(|_| Error::internal("rate-limit reservations poisoned"))?;
        let incs: Vec<Increment> = holds.iter().map(|h| hold_increment(now, h, 0)).collect();
        let mut counts = incs
            .iter()
            .map(|i| self.apply(now, i))
            .collect::<Result<Vec<_>>>()?;
        let admitted = admits(holds, &counts, admission);
        if admitted {
            for ((h, i), c) in holds.iter().zip(&incs).zip(&mut counts) {
                if h.amount > 0 {
                    *c = self.apply(
                        now,
                        &Increment {
                            cost: h.amount,
                            ..i.clone()
                        },
                    )?;
                }
            }
        }
        Ok(Reserved {
            admitted,
            now,
            counts,
        })
    }

    fn adjust(&self, now: u64, adjustments: Vec<Adjustment>) {
        for a in adjustments {
            if let Err(e) = self.adjust_one(now, &a) {
                tracing::warn!(error = %e, "rate-limit counter update failed");
            }
        }
    }
}

/// The increment of `cost` in a hold's bucket for the window containing `now`.
fn hold_increment(now: u64, h: &Hold, cost: u64) -> Increment {
    let start = window_start(now, h.window);
    Increment {
        key: bucket_key(&h.bucket, start),
        cost,
        expires_at: start + h.window,
    }
}

/// The window an adjustment applies to at `now`: its hold's while that lasts; after it,
/// the current one for an overrun, none for a refund (which is moot).
fn target_window(now: u64, a: &Adjustment) -> Option<u64> {
    let current = window_start(now, a.window);
    match a.start {
        Some(s) if s == current => Some(s),
        _ if a.delta > 0 => Some(current),
        _ => None,
    }
}

impl MemoryStore {
    fn adjust_one(&self, now: u64, a: &Adjustment) -> Result<()> {
        let Some(start) = target_window(now, a) else {
            return Ok(());
        };
        let key = bucket_key(&a.bucket, start);
        let mut shard = self.shard(&key)?;
        let entry = shard.buckets.entry(key).or_insert((0, start + a.window));
        entry.0 = entry.0.saturating_add_signed(a.delta);
        entry.1 = entry.1.max(start + a.window);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ready<F: std::future::Future>(f: F) -> F::Output {
        let mut f = std::pin::pin!(f);
        let mut cx = std::task::Context::from_waker(std::task::Waker::noop());
        match f.as_mut().poll(&mut cx) {
            std::task::Poll::Ready(v) => v,
            std::task::Poll::Pending => panic!("memory store never waits"),
        }
    }

    fn inc(key: &str, cost: u64, expires_at: u64) -> Increment {
        Increment {
            key: key.into(),
            cost,
            expires_at,
        }
    }

    #[test]
    fn counts_per_key_and_zero_reads() {
        let s = MemoryStore::default();
        assert_eq!(
            ready(s.incr(0, &[inc("a", 2, 60), inc("b", 5, 60)])).unwrap(),
            vec![2, 5]
        );
        assert_eq!(
            ready(s.incr(1, &[inc("a", 3, 60), inc("b", 0, 60)])).unwrap(),
            vec![5, 5]
        );
        s.add(2, vec![inc("a", 10, 60)]);
        assert_eq!(ready(s.incr(3, &[inc("a", 0, 60)])).unwrap(), vec![15]);
    }

    /// A store of counters only, as an embedder may bring.
    struct CountersOnly(MemoryStore);

    #[async_trait]
    impl LimitStore for CountersOnly {
        async fn incr(&self, now: u64, increments: &[Increment]) -> Result<Vec<u64>> {
            self.0.incr(now, increments).await
        }
        fn add(&self, now: u64, increments: Vec<Increment>) {
            self.0.add(now, increments);
        }
    }

    #[test]
    fn a_store_of_counters_serves_the_upstream_mode() {
        let s = CountersOnly(MemoryStore::default());
        let hold = |amount| Hold {
            bucket: "b".into(),
            window: 60,
            limit: 10,
            amount,
            enforce: true,
        };
        let r = ready(s.reserve(125, &[hold(3)], Admission::Always)).unwrap();
        assert_eq!((r.admitted, r.now, r.counts), (true, 125, vec![3]));
        assert!(ready(s.reserve(125, &[hold(3)], Admission::All)).is_err());
        let charge = |delta| Adjustment {
            bucket: "b".into(),
            window: 60,
            start: None,
            delta,
        };
        s.adjust(130, vec![charge(4), charge(-2)]);
        assert_eq!(
            ready(s.incr(131, &[inc("b_120", 0, 180)])).unwrap(),
            vec![7]
        );
    }

    #[test]
    fn expired_windows_are_swept() {
        let s = MemoryStore::default();
        ready(s.incr(0, &[inc("w0", 1, 60), inc("w1", 1, 120)])).unwrap();
        assert_eq!(s.len(), 2);
        s.sweep(60);
        assert_eq!(s.len(), 1);
        // Sweeping also happens while the store is in use: every shard sees far more
        // than one sweep interval of operations here.
        let ops = u64::from(SWEEP_EVERY) * SHARDS as u64 * 4;
        for n in 0..ops {
            s.add(200, vec![inc(&format!("k{n}"), 1, 150)]);
        }
        assert!(s.len() < SWEEP_EVERY as usize * SHARDS, "{}", s.len());
        assert_eq!(ready(s.incr(200, &[inc("w1", 0, 120)])).unwrap(), vec![0]);
    }
}
