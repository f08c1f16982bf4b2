//! Reserve mode of the [`RateLimitMeter`]: an estimate held before the upstream call,
//! corrected once with the actual usage when the exchange ends.
//!
//! A request's estimate ([`MeterRequest::estimated`]: prompt tokens by tokenizer or
//! heuristic, output from its `max_tokens` or the configured default) is priced per
//! limit — a rule's request cost plus its response cost over the estimate (a fixed
//! number, or the route's `llmRequestCosts` value), a quota's cost expression over
//! it — and held in every matching bucket in one atomic store step. The rules of the
//! route must all have room (shadow rules aside); a QuotaPolicy needs one enforcing
//! bucket with room, as in upstream mode. A refused request holds nothing.

use super::{RateLimitMeter, Rule, note_status, response_value, standing, store_down, unit_name};
use crate::config::traffic::RateLimitScope;
use crate::error::{Error, Result};
use crate::limits::charge::{HeldCharge, HeldCost};
use crate::limits::held::Held;
use crate::limits::hold::{Admission, Hold};
use crate::limits::selector::match_all;
use crate::limits::status::{LimitStatus, LimitUnit};
use crate::limits::{bucket_base, seconds_to_reset};
use crate::meter::{CostInput, MeterRequest, Reservation, Settlement};
use crate::usage::TokenUsage;
use std::sync::atomic::Ordering;
use std::time::Duration;

/// The holds of a route's matching rules, with how each is priced and its rule.
struct RouteHolds<'r> {
    holds: Vec<Hold>,
    costs: Vec<HeldCost>,
    rules: Vec<&'r Rule>,
}

impl RateLimitMeter {
    /// Reserve mode's `reserve`: route rules, then the quota; a quota refusal gives the
    /// route's holds back.
    pub(super) async fn reserve_holds(
        &self,
        req: &MeterRequest<'_>,
        now: u64,
        reservation: &mut Reservation,
    ) -> Result<()> {
        let estimated = req.estimated.unwrap_or_default();
        self.hold_route(req, &estimated, now, reservation).await?;
        if let Err(e) = self.hold_quota(req, &estimated, now, reservation).await {
            for charge in std::mem::take(&mut reservation.held) {
                charge.held.release(&**self.store(charge.scope), now);
            }
            return Err(e);
        }
        Ok(())
    }

    fn route_holds<'r>(
        &self,
        rules: &'r [Rule],
        policy: &str,
        req: &MeterRequest<'_>,
        estimated: &TokenUsage,
    ) -> RouteHolds<'r> {
        let costs_of_estimate = req.costs.map(|c| {
            c.evaluate(&CostInput {
                model: req.model,
                backend: req.backend,
                route_name: req.route,
                usage: estimated,
            })
        });
        let lookup = |key: &str| {
            costs_of_estimate
                .as_ref()
                .and_then(|v| v.iter().find(|(k, _)| k == key).map(|(_, n)| *n))
        };
        let mut out = RouteHolds {
            holds: Vec::new(),
            costs: Vec::new(),
            rules: Vec::new(),
        };
        for rule in rules {
            let Some(descriptors) = match_all(&rule.selectors, req.headers, req.client_ip) else {
                continue;
            };
            let route = (!rule.shared).then_some(req.route);
            let request = super::request_cost(&rule.request_cost);
            let response = rule
                .response_cost
                .as_ref()
                .map_or(0, |c| response_value(c, lookup));
            out.holds.push(Hold {
                bucket: bucket_base(policy, rule.index, route, &descriptors),
                window: rule.window,
                limit: rule.limit,
                amount: request.saturating_add(response),
                enforce: !rule.shadow,
            });
            out.costs.push(HeldCost::Route {
                request,
                response: rule.response_cost.clone(),
            });
            out.rules.push(rule);
        }
        out
    }

    async fn hold_route(
        &self,
        req: &MeterRequest<'_>,
        estimated: &TokenUsage,
        now: u64,
        reservation: &mut Reservation,
    ) -> Result<()> {
        let Some(limits) = self.routes.get(req.route) else {
            return Ok(());
        };
        let RouteHolds {
            holds,
            costs,
            rules,
        } = self.route_holds(&limits.rules, &limits.policy, req, estimated);
        if holds.is_empty() {
            return Ok(());
        }
        let store = self.store(limits.scope);
        let taken = match Held::take(&**store, now, holds.clone(), Admission::All).await {
            Ok(t) => t,
            Err(e) => {
                let deny = limits.fail_closed.unwrap_or(self.failure.rate_limits_deny);
                self.stats.store_failed(now, &e, deny);
                if deny {
                    return Err(store_down("rate-limit"));
                }
                reservation.held.push(HeldCharge {
                    scope: limits.scope,
                    held: Held::unheld(holds),
                    costs,
                });
                return Ok(());
            }
        };
        let at = taken.reserved.now;
        let mut status = LimitStatus::default();
        let mut refused: Option<(u64, &Rule, u64)> = None;
        for ((rule, hold), &count) in rules.iter().zip(&holds).zip(&taken.reserved.counts) {
            if rule.shadow {
                if !crate::limits::hold::fits(count, 0, rule.limit) {
                    self.stats.shadow_over_limit.fetch_add(1, Ordering::Relaxed);
                }
                continue;
            }
            status.note(rule.unit(), standing(rule, count, at));
            let fits =
                taken.held.is_some() || crate::limits::hold::fits(count, hold.amount, rule.limit);
            if fits {
                self.stats.ok.fetch_add(1, Ordering::Relaxed);
            } else {
                self.stats.over_limit.fetch_add(1, Ordering::Relaxed);
                let reset = seconds_to_reset(at, rule.window);
                if refused.is_none_or(|(r, _, _)| reset > r) {
                    refused = Some((reset, rule, hold.amount));
                }
            }
        }
        note_status(reservation, &status);
        match taken.held {
            Some(held) => {
                reservation.held.push(HeldCharge {
                    scope: limits.scope,
                    held,
                    costs,
                });
                Ok(())
            }
            None => {
                // A refusal names the enforcing rule without room.
                let Some((reset, rule, amount)) = refused else {
                    return Err(Error::internal("a reservation was refused by no rule"));
                };
                Err(Error::RateLimited {
                    message: format!(
                        "the limit of {} per {} (rule {} of {}) has no room for this request's estimate of {amount}",
                        rule.limit,
                        unit_name(rule.window),
                        rule.index,
                        limits.policy
                    ),
                    retry_after: Some(Duration::from_secs(reset)),
                    status: reservation.status.map(Box::new),
                })
            }
        }
    }

    async fn hold_quota(
        &self,
        req: &MeterRequest<'_>,
        estimated: &TokenUsage,
        now: u64,
        reservation: &mut Reservation,
    ) -> Result<()> {
        let Some((quota, check)) = self.quota_check(req) else {
            return Ok(());
        };
        let amount = check.charge.cost(estimated);
        let holds = check.holds(amount);
        let costs = vec![HeldCost::Quota(check.charge.clone()); holds.len()];
        let taken = match Held::take(&*self.global, now, holds.clone(), Admission::Any).await {
            Ok(t) => t,
            Err(e) => {
                let deny = quota.fail_closed().unwrap_or(self.failure.quotas_deny);
                self.stats.store_failed(now, &e, deny);
                if deny {
                    return Err(store_down("quota"));
                }
                reservation.held.push(HeldCharge {
                    scope: RateLimitScope::Global,
                    held: Held::unheld(holds),
                    costs,
                });
                return Ok(());
            }
        };
        let at = taken.reserved.now;
        let counts = &taken.reserved.counts;
        let mut status = LimitStatus::default();
        if let Some(s) = check.standing(at, counts) {
            status.note(LimitUnit::Tokens, s);
        }
        note_status(reservation, &status);
        for (h, &c) in holds.iter().zip(counts) {
            let room = taken.held.is_some() || crate::limits::hold::fits(c, h.amount, h.limit);
            let counter = match (room, h.enforce) {
                (true, _) => &self.stats.ok,
                (false, true) => &self.stats.over_limit,
                (false, false) => &self.stats.shadow_over_limit,
            };
            counter.fetch_add(1, Ordering::Relaxed);
        }
        let Some(held) = taken.held else {
            let (limit, window) = check.limit();
            return Err(Error::RateLimited {
                message: format!(
                    "the quota of {limit} per {} of {} for model {} has no room for this request's estimate of {amount}",
                    unit_name(window),
                    quota.policy(),
                    req.model
                ),
                retry_after: Some(Duration::from_secs(seconds_to_reset(at, window))),
                status: reservation.status.map(Box::new),
            });
        };
        reservation.held.push(HeldCharge {
            scope: RateLimitScope::Global,
            held,
            costs,
        });
        Ok(())
    }

    /// Corrects every hold with what the exchange used: its actual price, capped at
    /// what was held when the usage is the gateway's estimate (a cut stream).
    pub(super) fn settle_held(&self, charges: Vec<HeldCharge>, settlement: &Settlement<'_>) {
        if charges.is_empty() {
            return;
        }
        let now = (self.clock)();
        for charge in charges {
            let actual: Vec<u64> = charge
                .costs
                .iter()
                .zip(charge.held.holds())
                .map(|(cost, hold)| {
                    let price = match cost {
                        HeldCost::Route { request, response } => request.saturating_add(
                            response
                                .as_ref()
                                .map_or(0, |c| response_value(c, |k| settlement.cost(k))),
                        ),
                        HeldCost::Quota(q) => q.cost(settlement.usage),
                    };
                    if settlement.estimated && charge.held.is_held() && hold.amount > 0 {
                        price.min(hold.amount)
                    } else {
                        price
                    }
                })
                .collect();
            charge
                .held
                .settle(&**self.store(charge.scope), now, &actual);
        }
    }
}
