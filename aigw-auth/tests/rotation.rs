//! The rotation wrapper under a manual clock: refresh-ahead, single-flight, backoff,
//! outages before and after expiry.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::print_stdout,
    missing_docs
)]

use aigw_auth::{Clock, ManualClock, RefreshObserver, RefreshOutcome, Rotating, RotationConfig};
use aigw_core::{
    Credential, CredentialMaterial, CredentialProvider, OutgoingRequest, Result, Secret,
};
use async_trait::async_trait;
use http::StatusCode;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, UNIX_EPOCH};

const HOUR: Duration = Duration::from_secs(3600);
const MIN: Duration = Duration::from_secs(60);

/// A token endpoint stand-in: counts fetches, can fail, and takes a little time.
#[derive(Debug)]
struct Endpoint {
    clock: Arc<ManualClock>,
    fetches: AtomicUsize,
    down: AtomicBool,
    ttl: Duration,
    latency: Duration,
    /// While set, fetches wait for `release` before answering.
    held: AtomicBool,
    release: tokio::sync::Notify,
}

impl Endpoint {
    fn new(clock: Arc<ManualClock>) -> Arc<Self> {
        Arc::new(Self {
            clock,
            fetches: AtomicUsize::new(0),
            down: AtomicBool::new(false),
            ttl: HOUR,
            latency: Duration::from_millis(30),
            held: AtomicBool::new(false),
            release: tokio::sync::Notify::new(),
        })
    }
    fn fetches(&self) -> usize {
        self.fetches.load(Ordering::SeqCst)
    }
}

#[async_trait]
impl CredentialProvider for Endpoint {
    fn name(&self) -> &str {
        "team-a/bedrock"
    }
    async fn credential(&self) -> Result<Credential> {
        let n = self.fetches.fetch_add(1, Ordering::SeqCst) + 1;
        tokio::time::sleep(self.latency).await;
        if self.held.load(Ordering::SeqCst) {
            self.release.notified().await;
        }
        if self.down.load(Ordering::SeqCst) {
            return Err(aigw_core::Error::Credential {
                policy: self.name().into(),
                message: "https://sts.example/ failed: HTTP 503".into(),
            });
        }
        Ok(Credential {
            material: CredentialMaterial::Token(Secret::new(format!("secret-token-{n}"))),
            expires_at: Some(self.clock.now() + self.ttl),
        })
    }
    fn apply(&self, _: &Credential, _: &mut OutgoingRequest) -> Result<()> {
        Ok(())
    }
}

fn token(c: &Credential) -> String {
    match &c.material {
        CredentialMaterial::Token(t) => t.expose().to_owned(),
        other => panic!("unexpected {other:?}"),
    }
}

fn setup() -> (Arc<ManualClock>, Arc<Endpoint>, Arc<Rotating>) {
    let clock = Arc::new(ManualClock::new(
        UNIX_EPOCH + Duration::from_secs(1_800_000_000),
    ));
    let ep = Endpoint::new(clock.clone());
    let rot = Arc::new(Rotating::new(ep.clone()).with_clock(clock.clone()));
    (clock, ep, rot)
}

/// Waits for a background refresh to finish.
async fn settle(rot: &Rotating) {
    for _ in 0..500 {
        if !rot.is_refreshing() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    panic!("refresh did not finish");
}

/// One request, then whatever refresh it started runs to completion.
async fn call(rot: &Rotating) -> Result<Credential> {
    let r = rot.credential().await;
    settle(rot).await;
    r
}

async fn burst(rot: &Arc<Rotating>, n: usize) -> Vec<Result<Credential>> {
    let tasks: Vec<_> = (0..n)
        .map(|_| {
            let r = rot.clone();
            tokio::spawn(async move { r.credential().await })
        })
        .collect();
    let mut out = Vec::with_capacity(n);
    for t in tasks {
        out.push(t.await.unwrap());
    }
    out
}

#[tokio::test]
async fn caches_then_refreshes_ahead_of_expiry() {
    let (clock, ep, rot) = setup();
    assert_eq!(token(&rot.credential().await.unwrap()), "secret-token-1");
    clock.advance(50 * MIN);
    assert_eq!(token(&rot.credential().await.unwrap()), "secret-token-1");
    assert_eq!(ep.fetches(), 1, "cached outside the refresh window");
    // 4m59s before expiry: inside the default 5-minute window. The request gets the
    // still-valid credential at once; the refresh runs in the background.
    clock.advance(5 * MIN + Duration::from_secs(1));
    assert_eq!(token(&call(&rot).await.unwrap()), "secret-token-1");
    assert_eq!(token(&rot.credential().await.unwrap()), "secret-token-2");
    assert_eq!(ep.fetches(), 2);
    assert_eq!(rot.stats().refreshed, 2);
    assert_eq!(rot.stats().expires_at, Some(clock.now() + HOUR));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn thousand_requests_at_expiry_cause_one_fetch() {
    let (clock, ep, rot) = setup();
    rot.credential().await.unwrap();
    clock.advance(HOUR); // exactly at expiry: the old credential must not be served
    let results = burst(&rot, 1000).await;
    assert_eq!(
        ep.fetches(),
        2,
        "one initial fetch plus one for the whole burst"
    );
    for r in results {
        assert_eq!(token(&r.unwrap()), "secret-token-2");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn thousand_requests_in_refresh_window_cause_one_fetch_and_never_wait() {
    let (clock, ep, rot) = setup();
    rot.credential().await.unwrap();
    clock.advance(HOUR - 2 * MIN);
    let results = burst(&rot, 1000).await;
    settle(&rot).await;
    assert_eq!(ep.fetches(), 2);
    let tokens: Vec<String> = results.into_iter().map(|r| token(&r.unwrap())).collect();
    // Everyone got a valid credential without waiting for the fetch.
    assert!(
        tokens
            .iter()
            .all(|t| t == "secret-token-1" || t == "secret-token-2")
    );
    assert_eq!(token(&rot.credential().await.unwrap()), "secret-token-2");
}

#[tokio::test]
async fn outage_with_valid_credential_keeps_requests_working_with_backoff() {
    let (clock, ep, rot) = setup();
    call(&rot).await.unwrap();
    ep.down.store(true, Ordering::SeqCst);
    clock.advance(HOUR - 4 * MIN);
    // Failing refresh: the request still gets the valid credential.
    assert_eq!(token(&call(&rot).await.unwrap()), "secret-token-1");
    assert_eq!(ep.fetches(), 2);
    assert_eq!(rot.stats().failed, 1);
    // Within the 1 s backoff: no new attempt.
    for _ in 0..50 {
        assert_eq!(token(&call(&rot).await.unwrap()), "secret-token-1");
    }
    assert_eq!(ep.fetches(), 2);
    clock.advance(Duration::from_secs(1));
    call(&rot).await.unwrap();
    assert_eq!(ep.fetches(), 3, "retried after the backoff");
    // Second failure doubles the backoff to 2 s.
    clock.advance(Duration::from_secs(1));
    call(&rot).await.unwrap();
    assert_eq!(ep.fetches(), 3);
    clock.advance(Duration::from_secs(1));
    call(&rot).await.unwrap();
    assert_eq!(ep.fetches(), 4);
    // Recovery: the triggering request still gets the old credential, the next the new one.
    ep.down.store(false, Ordering::SeqCst);
    clock.advance(Duration::from_secs(4));
    assert_eq!(token(&call(&rot).await.unwrap()), "secret-token-1");
    assert_eq!(token(&rot.credential().await.unwrap()), "secret-token-5");
    assert_eq!(rot.stats().consecutive_failures, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn outage_past_expiry_is_a_clear_503_and_does_not_hammer() {
    let (clock, ep, rot) = setup();
    rot.credential().await.unwrap();
    ep.down.store(true, Ordering::SeqCst);
    clock.advance(HOUR + Duration::from_secs(1));
    let results = burst(&rot, 1000).await;
    assert_eq!(
        ep.fetches(),
        2,
        "one failed fetch shared by the whole burst"
    );
    for r in results {
        let e = r.unwrap_err();
        assert_eq!(e.status(), StatusCode::SERVICE_UNAVAILABLE);
        let msg = e.to_string();
        assert!(msg.contains("team-a/bedrock"), "{msg}");
        assert!(msg.contains("HTTP 503"), "{msg}");
        assert!(!msg.contains("secret-token"), "{msg}");
    }
    // Within the backoff, callers fail fast without touching the endpoint.
    assert!(rot.credential().await.is_err());
    assert_eq!(ep.fetches(), 2);
    ep.down.store(false, Ordering::SeqCst);
    clock.advance(Duration::from_secs(1));
    assert_eq!(token(&rot.credential().await.unwrap()), "secret-token-3");
}

#[tokio::test]
async fn never_serves_a_credential_at_its_expiry() {
    let (clock, ep, _rot) = setup();
    let rot = Arc::new(
        Rotating::new(ep.clone())
            .with_clock(clock.clone())
            .with_config(RotationConfig {
                refresh_ahead: Duration::ZERO,
                ..RotationConfig::default()
            }),
    );
    rot.credential().await.unwrap();
    ep.down.store(true, Ordering::SeqCst);
    clock.advance(HOUR - Duration::from_secs(1));
    assert_eq!(token(&rot.credential().await.unwrap()), "secret-token-1");
    assert_eq!(ep.fetches(), 1, "no refresh outside the window");
    clock.advance(Duration::from_secs(1));
    assert!(rot.credential().await.is_err());
}

#[derive(Debug, Default)]
struct Recorder(Mutex<Vec<RefreshOutcome>>);

impl RefreshObserver for Recorder {
    fn on_refresh(&self, policy: &str, outcome: &RefreshOutcome) {
        assert_eq!(policy, "team-a/bedrock");
        self.0.lock().unwrap().push(outcome.clone());
    }
}

#[tokio::test]
async fn observer_sees_every_outcome() {
    let (clock, ep, _) = setup();
    let rec = Arc::new(Recorder::default());
    let rot = Rotating::new(ep.clone())
        .with_clock(clock.clone())
        .with_observer(rec.clone());
    rot.credential().await.unwrap();
    ep.down.store(true, Ordering::SeqCst);
    clock.advance(HOUR - MIN);
    call(&rot).await.unwrap();
    let seen = rec.0.lock().unwrap().clone();
    assert_eq!(
        seen,
        vec![
            RefreshOutcome::Refreshed {
                expires_at: Some(clock.now() - (HOUR - MIN) + HOUR)
            },
            RefreshOutcome::Failed {
                still_valid: true,
                consecutive_failures: 1
            },
        ]
    );
}

#[tokio::test]
async fn refresh_ahead_never_blocks_a_request() {
    let (clock, ep, rot) = setup();
    rot.credential().await.unwrap();
    ep.held.store(true, Ordering::SeqCst);
    clock.advance(HOUR - MIN);
    // The token endpoint hangs; requests are still answered immediately.
    for _ in 0..10 {
        let c = tokio::time::timeout(Duration::from_secs(5), rot.credential())
            .await
            .expect("a request waited for the refresh")
            .unwrap();
        assert_eq!(token(&c), "secret-token-1");
    }
    // Let the background task reach the (hanging) endpoint.
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert!(rot.is_refreshing());
    assert_eq!(
        ep.fetches(),
        2,
        "one refresh in flight, not one per request"
    );
    ep.held.store(false, Ordering::SeqCst);
    ep.release.notify_one();
    settle(&rot).await;
    assert_eq!(token(&rot.credential().await.unwrap()), "secret-token-2");
}
