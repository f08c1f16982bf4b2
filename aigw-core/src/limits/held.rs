//! Reserve, then settle exactly once: [`Held`], the store-level API behind the meter's reserve
//! mode, usable by any budget kept in a [`LimitStore`] (tokens, money, requests).
//!
//! [`Held::take`] checks and holds amounts in several buckets in one atomic step of
//! the store — every bucket's window is taken from the *store's* clock (Redis `TIME`),
//! so replicas whose clocks differ agree on it — and either holds all of them or none.
//! [`Held::settle`] later applies, once, the difference between what was held and what
//! was actually used, in the window the hold was made in (a window that has ended
//! since gets nothing back; an overrun is charged to the current one).
//!
//! ```
//! use aigw_core::limits::{Admission, Held, Hold, MemoryStore};
//!
//! # fn main() -> aigw_core::Result<()> {
//! let store = MemoryStore::default();
//! let hold = |amount| Hold { bucket: "budget/team-a".into(), window: 3600, limit: 100, amount, enforce: true };
//! let first = block_on(Held::take(&store, 10, vec![hold(80)], Admission::All))?;
//! let held = first.held.expect("80 of 100 fits");
//! // 30 more would not fit while 80 are held.
//! assert!(block_on(Held::take(&store, 11, vec![hold(30)], Admission::All))?.held.is_none());
//! held.settle(&store, 12, &[25]); // 55 given back
//! assert!(block_on(Held::take(&store, 13, vec![hold(30)], Admission::All))?.held.is_some());
//! # Ok(())
//! # }
//! # fn block_on<T>(f: impl std::future::Future<Output = T>) -> T {
//! #     let mut f = std::pin::pin!(f);
//! #     let mut cx = std::task::Context::from_waker(std::task::Waker::noop());
//! #     loop { if let std::task::Poll::Ready(v) = f.as_mut().poll(&mut cx) { return v; } }
//! # }
//! ```

use super::hold::{Adjustment, Admission, Hold, Reserved};
use super::store::LimitStore;
use crate::error::Result;

/// Amounts held in a store, settled exactly once ([`Held::settle`] consumes it).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Held {
    entries: Vec<(Hold, Option<u64>)>,
}

/// The result of [`Held::take`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Taken {
    /// The hold, when admitted.
    pub held: Option<Held>,
    /// The store's answer: its time and the buckets' counts.
    pub reserved: Reserved,
}

impl Held {
    /// Holds `holds` in `store` (at `now` for a store without its own clock), or none
    /// of them when `admission` refuses.
    pub async fn take(
        store: &dyn LimitStore,
        now: u64,
        holds: Vec<Hold>,
        admission: Admission,
    ) -> Result<Taken> {
        let reserved = store.reserve(now, &holds, admission).await?;
        let held = reserved.admitted.then(|| Self {
            entries: holds
                .into_iter()
                .map(|h| {
                    let start = super::key::window_start(reserved.now, h.window);
                    (h, Some(start))
                })
                .collect(),
        });
        Ok(Taken { held, reserved })
    }

    /// A hold of nothing: settling it charges the full amounts to the current windows.
    /// For a store that could not be reached when the request was admitted.
    pub fn unheld(holds: Vec<Hold>) -> Self {
        Self {
            entries: holds.into_iter().map(|h| (h, None)).collect(),
        }
    }

    /// The holds, in order.
    pub fn holds(&self) -> impl Iterator<Item = &Hold> {
        self.entries.iter().map(|(h, _)| h)
    }

    /// Whether the store actually holds the amounts.
    pub fn is_held(&self) -> bool {
        self.entries.iter().any(|(_, s)| s.is_some())
    }

    /// The adjustments that replace each held amount with `actual` (in order; a missing
    /// figure leaves its hold as it is).
    pub fn adjustments(&self, actual: &[u64]) -> Vec<Adjustment> {
        self.entries
            .iter()
            .zip(actual)
            .filter_map(|((h, start), &used)| {
                let held = if start.is_some() { h.amount } else { 0 };
                let delta = i128::from(used) - i128::from(held);
                let delta =
                    i64::try_from(delta).unwrap_or(if delta < 0 { i64::MIN } else { i64::MAX });
                (delta != 0).then(|| Adjustment {
                    bucket: h.bucket.clone(),
                    window: h.window,
                    start: *start,
                    delta,
                })
            })
            .collect()
    }

    /// Replaces each held amount with what was used, once.
    pub fn settle(self, store: &dyn LimitStore, now: u64, actual: &[u64]) {
        let adj = self.adjustments(actual);
        if !adj.is_empty() {
            store.adjust(now, adj);
        }
    }

    /// Gives everything back (the request was not made).
    pub fn release(self, store: &dyn LimitStore, now: u64) {
        let zeros = vec![0; self.entries.len()];
        self.settle(store, now, &zeros);
    }
}
