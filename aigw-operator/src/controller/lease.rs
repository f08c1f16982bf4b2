//! Leader election on a `coordination.k8s.io/v1` Lease, so several replicas can run
//! and exactly one reconciles.
//!
//! The holder renews every `duration / 3`; another replica takes the Lease over only
//! once `renewTime + leaseDurationSeconds` has passed. Every write carries the
//! `resourceVersion` it read, so two replicas racing for an expired Lease cannot both
//! win: the loser gets 409 Conflict and waits. A holder that cannot renew before its
//! Lease expires stops ([`Elector::hold`] returns), and the process exits so that it
//! never reconciles beside a new leader.

use k8s_openapi::api::coordination::v1::{Lease, LeaseSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::MicroTime;
use k8s_openapi::jiff::{SignedDuration, Timestamp};
use kube::api::{Api, ObjectMeta, PostParams};
use std::time::Duration;

/// One replica's claim on a Lease.
#[derive(Clone)]
pub struct Elector {
    api: Api<Lease>,
    name: String,
    identity: String,
    duration: Duration,
}

impl std::fmt::Debug for Elector {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Elector")
            .field("name", &self.name)
            .field("identity", &self.identity)
            .field("duration", &self.duration)
            .finish_non_exhaustive()
    }
}

/// What one attempt found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// This replica holds the Lease.
    Leader,
    /// Another live replica does.
    Follower,
}

impl Elector {
    /// A claim on Lease `namespace/name` as `identity` (the pod name).
    pub fn new(api: Api<Lease>, name: &str, identity: &str, duration: Duration) -> Self {
        Self {
            api,
            name: name.into(),
            identity: identity.into(),
            duration,
        }
    }

    fn spec(&self, now: Timestamp, transitions: i32, acquired: Option<MicroTime>) -> LeaseSpec {
        LeaseSpec {
            holder_identity: Some(self.identity.clone()),
            lease_duration_seconds: Some(i32::try_from(self.duration.as_secs()).unwrap_or(15)),
            acquire_time: acquired.or(Some(MicroTime(now))),
            renew_time: Some(MicroTime(now)),
            lease_transitions: Some(transitions),
            ..LeaseSpec::default()
        }
    }

    /// One attempt to acquire or renew at time `now`.
    pub async fn try_acquire(&self, now: Timestamp) -> Result<Outcome, kube::Error> {
        let current = match self.api.get_opt(&self.name).await? {
            None => {
                let lease = Lease {
                    metadata: ObjectMeta {
                        name: Some(self.name.clone()),
                        ..ObjectMeta::default()
                    },
                    spec: Some(self.spec(now, 0, None)),
                };
                return match self.api.create(&PostParams::default(), &lease).await {
                    Ok(_) => Ok(Outcome::Leader),
                    Err(kube::Error::Api(s)) if s.code == 409 => Ok(Outcome::Follower),
                    Err(e) => Err(e),
                };
            }
            Some(l) => l,
        };
        let spec = current.spec.clone().unwrap_or_default();
        let mine = spec.holder_identity.as_deref() == Some(self.identity.as_str());
        let expired = match (&spec.renew_time, spec.lease_duration_seconds) {
            (Some(MicroTime(renewed)), Some(secs)) => {
                *renewed + SignedDuration::from_secs(i64::from(secs)) < now
            }
            _ => true,
        };
        if !mine && !expired {
            return Ok(Outcome::Follower);
        }
        let transitions = spec.lease_transitions.unwrap_or(0) + i32::from(!mine);
        let acquired = if mine {
            spec.acquire_time.clone()
        } else {
            None
        };
        let mut next = current.clone();
        next.spec = Some(self.spec(now, transitions, acquired));
        match self
            .api
            .replace(&self.name, &PostParams::default(), &next)
            .await
        {
            Ok(_) => Ok(Outcome::Leader),
            // Someone wrote in between (renewed, or won the race): not ours.
            Err(kube::Error::Api(s)) if s.code == 409 => Ok(Outcome::Follower),
            Err(e) => Err(e),
        }
    }

    /// Waits until this replica leads.
    pub async fn acquire(&self) {
        loop {
            match self.try_acquire(Timestamp::now()).await {
                Ok(Outcome::Leader) => return,
                Ok(Outcome::Follower) => {}
                Err(e) => tracing::warn!(error = %e, lease = %self.name, "leader election"),
            }
            tokio::time::sleep(self.duration / 3).await;
        }
    }

    /// Renews while leading; returns when leadership is lost (not renewed in time).
    pub async fn hold(&self) {
        let mut last_renewal = std::time::Instant::now();
        loop {
            tokio::time::sleep(self.duration / 3).await;
            match self.try_acquire(Timestamp::now()).await {
                Ok(Outcome::Leader) => last_renewal = std::time::Instant::now(),
                Ok(Outcome::Follower) => return,
                Err(e) => {
                    tracing::warn!(error = %e, lease = %self.name, "lease renewal failed");
                    if last_renewal.elapsed() >= self.duration {
                        return;
                    }
                }
            }
        }
    }
}
