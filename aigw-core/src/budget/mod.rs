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
