//! Money budgets: how much a key, a team or a route may spend in a period.
//!
//! Amounts are integers in micro-dollars (USD × 10⁻⁶) so that sums are exact and
//! spend recorded equals the price table times the usage, to the cent.

/// How long a budget's spend accumulates before it starts again.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum BudgetPeriod {
    /// A calendar day in UTC.
    Day,
    /// A calendar month in UTC.
    Month,
    /// Never resets.
    Total,
}

/// A spending limit over a period.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BudgetSpec {
    /// The limit, in micro-dollars.
    pub limit_micros: u64,
    /// The period the limit applies to.
    pub period: BudgetPeriod,
}

mod metrics;
#[cfg(feature = "redis")]
mod redis;
mod rules;
mod spending;
mod store;
mod usage;

pub use metrics::{MAX_VALUES_PER_LABEL, OVERFLOW_VALUE, SpendMetrics};
#[cfg(feature = "redis")]
pub use redis::RedisSpendStore;
pub use rules::{BudgetRule, BudgetRules, BudgetScope, Budgets};
pub use spending::{Admission, Billed, BudgetState, SpendGuard, Spending};
pub use store::{
    Charge, DEFAULT_USAGE_RETENTION_HOURS, HourRow, MemorySpendStore, SpendStore, UsageCounts,
    UsageKey,
};
pub use usage::{GroupBy, MAX_RANGE_HOURS, UsageQuery, UsageReport, UsageRow};

/// Seconds in an hour, the width of a usage bucket.
pub const HOUR: u64 = 3600;

impl BudgetPeriod {
    /// The period's name in files, logs and the admin API.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Day => "day",
            Self::Month => "month",
            Self::Total => "total",
        }
    }

    /// Parses `day`, `month` or `total`.
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "day" | "daily" => Some(Self::Day),
            "month" | "monthly" => Some(Self::Month),
            "total" => Some(Self::Total),
            _ => None,
        }
    }

    /// The UTC calendar period containing `now` (seconds since the Unix epoch): its
    /// start and, unless the period is [`BudgetPeriod::Total`], its end.
    pub fn window(self, now: u64) -> (u64, Option<u64>) {
        let Some(t) = i64::try_from(now)
            .ok()
            .and_then(|s| time::OffsetDateTime::from_unix_timestamp(s).ok())
        else {
            return (0, None);
        };
        let day = t.date();
        let secs =
            |d: time::Date| u64::try_from(d.midnight().assume_utc().unix_timestamp()).unwrap_or(0);
        match self {
            Self::Total => (0, None),
            Self::Day => {
                let start = secs(day);
                (start, Some(start + 86_400))
            }
            Self::Month => {
                let first = day.replace_day(1).unwrap_or(day);
                let next = if first.month() == time::Month::December {
                    time::Date::from_calendar_date(first.year() + 1, time::Month::January, 1)
                } else {
                    time::Date::from_calendar_date(first.year(), first.month().next(), 1)
                };
                (secs(first), next.ok().map(secs))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pricing::parse_instant;

    #[test]
    fn periods_are_utc_calendar_windows() {
        let now = parse_instant("2026-12-31T23:59:59Z").unwrap();
        let (s, e) = BudgetPeriod::Day.window(now);
        assert_eq!(s, parse_instant("2026-12-31T00:00:00Z").unwrap());
        assert_eq!(e, Some(parse_instant("2027-01-01T00:00:00Z").unwrap()));
        let (s, e) = BudgetPeriod::Month.window(now);
        assert_eq!(s, parse_instant("2026-12-01T00:00:00Z").unwrap());
        assert_eq!(e, Some(parse_instant("2027-01-01T00:00:00Z").unwrap()));
        let feb = parse_instant("2028-02-29T12:00:00Z").unwrap();
        let (s, e) = BudgetPeriod::Month.window(feb);
        assert_eq!(s, parse_instant("2028-02-01T00:00:00Z").unwrap());
        assert_eq!(e, Some(parse_instant("2028-03-01T00:00:00Z").unwrap()));
        assert_eq!(BudgetPeriod::Total.window(now), (0, None));
    }
}
