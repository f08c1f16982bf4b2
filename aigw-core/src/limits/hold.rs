//! The data of a reservation: [`Hold`]s, how their buckets decide ([`Admission`]),
//! a store's answer ([`Reserved`]) and the corrections made when it settles
//! ([`Adjustment`]). [`super::held::Held`] puts them to work.

/// An amount to hold in one bucket.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Hold {
    /// The bucket's key without its window ([`super::key::bucket_base`]).
    pub bucket: String,
    /// The bucket's window, seconds; windows are fixed and aligned to it.
    pub window: u64,
    /// The bucket's limit per window.
    pub limit: u64,
    /// What to hold.
    pub amount: u64,
    /// Whether the bucket can refuse (false: shadow mode, counted only).
    pub enforce: bool,
}

/// How the enforcing buckets of one [`Held::take`] decide.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Admission {
    /// Every enforcing bucket must have room (rate-limit rules).
    All,
    /// One enforcing bucket with room is enough (a QuotaPolicy's `Shared` buckets);
    /// with no enforcing bucket, admitted.
    Any,
    /// Every amount is added whatever the counts, and the caller decides from the
    /// counts afterwards: the upstream-compatible mode, where a request is checked
    /// against the budget already spent and its request cost stays charged even when
    /// it is refused (as in Envoy). Amounts of 0 only read their bucket.
    Always,
}

/// Whether `amount` fits in a bucket at `count` of `limit`: a zero amount only needs
/// the bucket not to be used up.
pub const fn fits(count: u64, amount: u64, limit: u64) -> bool {
    if amount == 0 {
        count < limit
    } else {
        count.saturating_add(amount) <= limit
    }
}

/// A store's answer to a reservation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reserved {
    /// Whether the amounts were held.
    pub admitted: bool,
    /// The store's time (Unix seconds) when it decided: every bucket's window is the
    /// one containing it.
    pub now: u64,
    /// Each bucket's count afterwards (before, when refused), in order.
    pub counts: Vec<u64>,
}

/// A correction to a hold, applied by [`LimitStore::adjust`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Adjustment {
    /// The bucket's key without its window.
    pub bucket: String,
    /// The bucket's window, seconds.
    pub window: u64,
    /// The start of the window the hold was made in; `None` when nothing was held
    /// (the store was down), so the whole amount is charged to the current window.
    pub start: Option<u64>,
    /// What to add (negative: give back).
    pub delta: i64,
}

/// What [`Admission`] decides from the counts before the reservation.
pub fn admits(holds: &[Hold], counts: &[u64], admission: Admission) -> bool {
    let mut enforcing = holds
        .iter()
        .zip(counts)
        .filter(|(h, _)| h.enforce)
        .peekable();
    if enforcing.peek().is_none() {
        return true;
    }
    match admission {
        Admission::All => enforcing.all(|(h, &c)| fits(c, h.amount, h.limit)),
        Admission::Any => enforcing.any(|(h, &c)| fits(c, h.amount, h.limit)),
        Admission::Always => true,
    }
}
