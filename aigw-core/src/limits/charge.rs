//! [`HeldCharge`]: what a reserve-mode request holds, and how each hold is priced when
//! the exchange settles.

use super::held::Held;
use super::quota::QuotaCharge;
use crate::config::traffic::{LimitCost, RateLimitScope};

/// How one hold of a [`HeldCharge`] is priced from the exchange's actual usage.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum HeldCost {
    /// A BackendTrafficPolicy rule: its request cost plus its response cost.
    Route {
        /// The rule's fixed request cost.
        request: u64,
        /// The rule's response cost, when it has one.
        response: Option<LimitCost>,
    },
    /// A QuotaPolicy bucket: the quota's cost expression (or total tokens).
    Quota(QuotaCharge),
}

/// Amounts a reserve-mode request holds in one store, with how each is priced when the
/// exchange ends; settled exactly once with the difference.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HeldCharge {
    /// The store holding the amounts.
    pub(crate) scope: RateLimitScope,
    /// The holds.
    pub(crate) held: Held,
    /// One pricing per hold, in order.
    pub(crate) costs: Vec<HeldCost>,
}

impl HeldCharge {
    /// Whether pricing needs the route's cost values (`llmRequestCosts`).
    pub fn needs_costs(&self) -> bool {
        self.costs.iter().any(|c| {
            matches!(
                c,
                HeldCost::Route {
                    response: Some(LimitCost::Metadata { .. }),
                    ..
                }
            )
        })
    }
}
