//! Upstream health from a BackendTrafficPolicy: the circuit-breaker thresholds, passive
//! outlier ejection and the state active health checks report into, with Envoy's
//! meaning of each field.
//!
//! The unit is Envoy's: a rule's backends are the hosts of one cluster (upstream puts
//! every backendRef of a rule in one cluster, one priority per `priority`), so an
//! ejected backend is skipped and the request goes to the next one in the attempt
//! order — the next priority when the ejected backend was the last of its own.
//! `maxEjectionPercent` is a share of the rule's backends. When every backend of a rule
//! is unavailable they are all tried anyway (Envoy's panic mode: a guess beats a
//! certain failure).
//!
//! No I/O here: adapters report outcomes ([`HostHealth::report`]) and probe results
//! ([`HostHealth::record_probe`]), and run the checks themselves.

use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, Weak};
use std::time::{Duration, Instant};

/// Envoy's cap on an ejection's length (`max_ejection_time` default).
pub const MAX_EJECTION_TIME: Duration = Duration::from_secs(300);

/// `circuitBreaker`, defaults filled in (1024 each, as Envoy Gateway).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CircuitLimits {
    /// Connections to the backend (one per request in flight over HTTP/1).
    pub max_connections: u32,
    /// Requests allowed to wait for a connection.
    pub max_pending_requests: u32,
    /// Requests in flight.
    pub max_parallel_requests: u32,
}

/// `healthCheck.passive`, defaults filled in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutlierPolicy {
    /// Count connect failures, resets and timeouts apart from upstream 5xx.
    pub split_local_origin: bool,
    /// Sweep interval (Envoy's; ejections expire lazily here, so it is reported only).
    pub interval: Duration,
    /// Consecutive local-origin failures that eject (with `split_local_origin`).
    pub consecutive_local_origin: u32,
    /// Consecutive 502/503/504 (and local-origin failures unless split) that eject.
    pub consecutive_gateway: Option<u32>,
    /// Consecutive 5xx (and local-origin failures unless split) that eject.
    pub consecutive_5xx: u32,
    /// Ejection time, multiplied by the times ejected in a row.
    pub base_ejection: Duration,
    /// Largest share of the rule's backends ejected at once, in percent.
    pub max_ejection_percent: u32,
    /// Eject one backend even beyond the percentage.
    pub always_eject_one: bool,
}

/// `healthCheck.active` with an HTTP checker, defaults filled in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ActiveCheck {
    /// Time to wait for an answer.
    pub timeout: Duration,
    /// Time between checks.
    pub interval: Duration,
    /// Failed checks before a backend is marked unhealthy.
    pub unhealthy_threshold: u32,
    /// Passed checks before it is marked healthy again.
    pub healthy_threshold: u32,
    /// Path requested.
    pub path: String,
    /// Method.
    pub method: String,
    /// Statuses counted as healthy.
    pub expected_statuses: Vec<u16>,
    /// `Host` header, when not the backend's own.
    pub hostname: Option<String>,
}

/// How one attempt on a backend ended, for outlier detection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// The backend answered with this status.
    Status(u16),
    /// No answer: connect failure, reset or timeout (Envoy's local-origin failure).
    LocalFailure,
}

#[derive(Debug, Default)]
struct HostState {
    consecutive_5xx: AtomicU32,
    consecutive_gateway: AtomicU32,
    consecutive_local: AtomicU32,
    /// Milliseconds since the group's clock until which the host is ejected (0: not).
    ejected_until: AtomicU64,
    /// Times ejected in a row (reset by a success).
    ejections: AtomicU32,
    /// Set by active checks.
    unhealthy: AtomicBool,
    probe_failures: AtomicU32,
    probe_passes: AtomicU32,
}

/// The health of one rule's backends.
#[derive(Debug)]
pub struct RuleHealth {
    passive: Option<OutlierPolicy>,
    active: Option<ActiveCheck>,
    hosts: Vec<HostState>,
    clock: Instant,
}

impl RuleHealth {
    /// State for `hosts` backends under the given policies.
    pub fn new(
        hosts: usize,
        passive: Option<OutlierPolicy>,
        active: Option<ActiveCheck>,
    ) -> Arc<Self> {
        Arc::new(Self {
            passive,
            active,
            hosts: (0..hosts).map(|_| HostState::default()).collect(),
            clock: Instant::now(),
        })
    }

    fn now_ms(&self) -> u64 {
        u64::try_from(self.clock.elapsed().as_millis()).unwrap_or(u64::MAX)
    }

    fn ejected_now(&self, now: u64) -> usize {
        self.hosts
            .iter()
            .filter(|h| h.ejected_until.load(Ordering::Acquire) > now)
            .count()
    }
}

/// One backend's handle into its rule's health.
#[derive(Debug, Clone)]
pub struct HostHealth {
    rule: Arc<RuleHealth>,
    index: usize,
}

/// A handle that does not keep a replaced configuration's state alive (for checkers).
#[derive(Debug, Clone)]
pub struct WeakHostHealth {
    rule: Weak<RuleHealth>,
    index: usize,
}

impl WeakHostHealth {
    /// The handle, while its configuration is still in use.
    pub fn upgrade(&self) -> Option<HostHealth> {
        self.rule.upgrade().map(|rule| HostHealth {
            rule,
            index: self.index,
        })
    }
}

impl HostHealth {
    /// The handle of host `index` of `rule`.
    pub fn new(rule: Arc<RuleHealth>, index: usize) -> Self {
        Self { rule, index }
    }

    /// A weak handle.
    pub fn downgrade(&self) -> WeakHostHealth {
        WeakHostHealth {
            rule: Arc::downgrade(&self.rule),
            index: self.index,
        }
    }

    fn host(&self) -> Option<&HostState> {
        self.rule.hosts.get(self.index)
    }

    /// The active check configured for the backend, if any.
    pub fn active_check(&self) -> Option<&ActiveCheck> {
        self.rule.active.as_ref()
    }

    /// Whether the backend is ejected right now.
    pub fn is_ejected(&self) -> bool {
        let now = self.rule.now_ms();
        self.host()
            .is_some_and(|h| h.ejected_until.load(Ordering::Acquire) > now)
    }

    /// Whether requests should go to the backend: not ejected, not failing its checks.
    pub fn is_available(&self) -> bool {
        !self.is_ejected()
            && !self
                .host()
                .is_some_and(|h| h.unhealthy.load(Ordering::Acquire))
    }

    /// Counts an attempt's outcome; returns the ejection time when it ejects the host.
    pub fn report(&self, outcome: Outcome) -> Option<Duration> {
        let (Some(p), Some(h)) = (&self.rule.passive, self.host()) else {
            return None;
        };
        let reset = |c: &AtomicU32| c.store(0, Ordering::Release);
        let bump = |c: &AtomicU32| c.fetch_add(1, Ordering::AcqRel) + 1;
        let mut trip = false;
        match outcome {
            Outcome::Status(s) if s < 500 => {
                reset(&h.consecutive_5xx);
                reset(&h.consecutive_gateway);
                reset(&h.consecutive_local);
                if !self.is_ejected() {
                    reset(&h.ejections);
                }
                return None;
            }
            Outcome::LocalFailure if p.split_local_origin => {
                trip |= bump(&h.consecutive_local) >= p.consecutive_local_origin.max(1);
            }
            Outcome::Status(s) if p.split_local_origin && !matches!(s, 502..=504) => {
                reset(&h.consecutive_local);
                trip |= bump(&h.consecutive_5xx) >= p.consecutive_5xx.max(1);
                reset(&h.consecutive_gateway);
            }
            _ => {
                // A gateway error (or a local failure, which Envoy counts as one).
                if matches!(outcome, Outcome::Status(_)) && p.split_local_origin {
                    reset(&h.consecutive_local);
                }
                trip |= bump(&h.consecutive_5xx) >= p.consecutive_5xx.max(1);
                let gateway_error =
                    matches!(outcome, Outcome::LocalFailure | Outcome::Status(502..=504));
                match p.consecutive_gateway.filter(|n| *n > 0) {
                    Some(n) if gateway_error => trip |= bump(&h.consecutive_gateway) >= n,
                    _ => reset(&h.consecutive_gateway),
                }
            }
        }
        if trip { self.eject(p, h) } else { None }
    }

    fn eject(&self, p: &OutlierPolicy, h: &HostState) -> Option<Duration> {
        let now = self.rule.now_ms();
        if h.ejected_until.load(Ordering::Acquire) > now {
            return None;
        }
        let total = self.rule.hosts.len().max(1);
        let ejected = self.rule.ejected_now(now);
        // Envoy's rule: the share after this ejection must stay within the percentage.
        let share = 100 * (ejected + 1) / total;
        let within = share <= p.max_ejection_percent as usize;
        if !(within || (p.always_eject_one && ejected == 0)) {
            return None;
        }
        let times = h.ejections.fetch_add(1, Ordering::AcqRel) + 1;
        let length = p
            .base_ejection
            .saturating_mul(times)
            .min(MAX_EJECTION_TIME.max(p.base_ejection));
        let until = now.saturating_add(u64::try_from(length.as_millis()).unwrap_or(u64::MAX));
        h.ejected_until.store(until, Ordering::Release);
        h.consecutive_5xx.store(0, Ordering::Release);
        h.consecutive_gateway.store(0, Ordering::Release);
        h.consecutive_local.store(0, Ordering::Release);
        Some(length)
    }

    /// Records one active check; returns the new state when it changes (`true`:
    /// healthy).
    pub fn record_probe(&self, passed: bool) -> Option<bool> {
        let (Some(c), Some(h)) = (&self.rule.active, self.host()) else {
            return None;
        };
        let unhealthy = h.unhealthy.load(Ordering::Acquire);
        if passed {
            h.probe_failures.store(0, Ordering::Release);
            let n = h.probe_passes.fetch_add(1, Ordering::AcqRel) + 1;
            if unhealthy && n >= c.healthy_threshold.max(1) {
                h.unhealthy.store(false, Ordering::Release);
                return Some(true);
            }
        } else {
            h.probe_passes.store(0, Ordering::Release);
            let n = h.probe_failures.fetch_add(1, Ordering::AcqRel) + 1;
            if !unhealthy && n >= c.unhealthy_threshold.max(1) {
                h.unhealthy.store(true, Ordering::Release);
                return Some(false);
            }
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy() -> OutlierPolicy {
        OutlierPolicy {
            split_local_origin: false,
            interval: Duration::from_secs(3),
            consecutive_local_origin: 5,
            consecutive_gateway: None,
            consecutive_5xx: 3,
            base_ejection: Duration::from_millis(200),
            max_ejection_percent: 50,
            always_eject_one: false,
        }
    }

    #[test]
    fn consecutive_5xx_eject_for_the_base_time_then_longer() {
        let rule = RuleHealth::new(2, Some(policy()), None);
        let h = HostHealth::new(rule.clone(), 0);
        assert_eq!(h.report(Outcome::Status(500)), None);
        assert_eq!(h.report(Outcome::LocalFailure), None);
        assert_eq!(
            h.report(Outcome::Status(503)),
            Some(Duration::from_millis(200))
        );
        assert!(!h.is_available());
        // The other backend stays: 2 of 2 would exceed 50 %.
        let other = HostHealth::new(rule, 1);
        for _ in 0..3 {
            other.report(Outcome::Status(500));
        }
        assert!(other.is_available());
        std::thread::sleep(Duration::from_millis(250));
        assert!(h.is_available());
        for _ in 0..3 {
            h.report(Outcome::Status(500));
        }
        assert!(h.is_ejected(), "second ejection");
    }

    #[test]
    fn a_success_resets_the_count() {
        let h = HostHealth::new(RuleHealth::new(2, Some(policy()), None), 0);
        h.report(Outcome::Status(500));
        h.report(Outcome::Status(500));
        h.report(Outcome::Status(200));
        h.report(Outcome::Status(500));
        assert!(h.is_available());
    }

    #[test]
    fn default_percentage_never_ejects_one_of_two_unless_told() {
        let p = OutlierPolicy {
            max_ejection_percent: 10,
            ..policy()
        };
        let h = HostHealth::new(RuleHealth::new(2, Some(p.clone()), None), 0);
        for _ in 0..10 {
            h.report(Outcome::Status(500));
        }
        assert!(h.is_available());
        let p = OutlierPolicy {
            always_eject_one: true,
            ..p
        };
        let h = HostHealth::new(RuleHealth::new(2, Some(p), None), 0);
        for _ in 0..3 {
            h.report(Outcome::Status(500));
        }
        assert!(!h.is_available());
    }

    #[test]
    fn gateway_errors_and_split_local_failures() {
        let p = OutlierPolicy {
            consecutive_5xx: 100,
            consecutive_gateway: Some(2),
            ..policy()
        };
        let h = HostHealth::new(RuleHealth::new(2, Some(p.clone()), None), 0);
        h.report(Outcome::Status(502));
        assert!(h.report(Outcome::LocalFailure).is_some());
        let p = OutlierPolicy {
            split_local_origin: true,
            consecutive_local_origin: 2,
            ..p
        };
        let h = HostHealth::new(RuleHealth::new(2, Some(p), None), 0);
        h.report(Outcome::LocalFailure);
        h.report(Outcome::Status(500));
        assert!(h.is_available(), "a 500 breaks the local-failure run");
        h.report(Outcome::LocalFailure);
        assert!(h.report(Outcome::LocalFailure).is_some());
    }

    #[test]
    fn active_thresholds() {
        let c = ActiveCheck {
            timeout: Duration::from_secs(1),
            interval: Duration::from_secs(1),
            unhealthy_threshold: 2,
            healthy_threshold: 2,
            path: "/health".into(),
            method: "GET".into(),
            expected_statuses: vec![200],
            hostname: None,
        };
        let rule = RuleHealth::new(1, None, Some(c));
        let h = HostHealth::new(rule.clone(), 0);
        assert_eq!(h.record_probe(false), None);
        assert_eq!(h.record_probe(false), Some(false));
        assert!(!h.is_available());
        assert_eq!(h.record_probe(true), None);
        assert_eq!(h.record_probe(true), Some(true));
        assert!(h.is_available());
        let weak = h.downgrade();
        drop(h);
        assert!(weak.upgrade().is_some());
        drop(rule);
        assert!(weak.upgrade().is_none());
    }
}
