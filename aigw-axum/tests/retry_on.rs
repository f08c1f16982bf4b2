//! A BackendTrafficPolicy's `retry.retryOn` decides which failures fail over: only the
//! listed statuses and triggers, with Envoy's meaning of each; without a policy the
//! gateway's own default (connect failures, resets, timeouts, 429, 5xx) applies.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, missing_docs)]

mod support;

use aigw_axum::RoutePlanner;
use aigw_core::Result;
use aigw_core::api::Endpoint;
use aigw_core::config::Config;
use aigw_core::config::traffic::TrafficSettings;
use aigw_core::exchange::Plan;
use aigw_core::retry::RetryOn;
use http::HeaderMap;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;
use support::*;

/// The static planner with a policy's retry conditions.
struct WithRetryOn(StaticPlanner, Option<Arc<RetryOn>>);

impl RoutePlanner for WithRetryOn {
    fn plan(&self, e: Endpoint, model: &str, h: &HeaderMap) -> Result<Plan> {
        let mut plan = self.0.plan(e, model, h)?;
        plan.retry_on.clone_from(&self.1);
        Ok(plan)
    }
    fn models(&self) -> Vec<aigw_axum::ModelEntry> {
        self.0.models()
    }
}

/// The retry conditions of upstream's provider-fallback example, read from the
/// manifest itself.
fn fallback_example_retry_on() -> Arc<RetryOn> {
    // The committed copy of the upstream manifest.
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../aigw-core/tests/fixtures/config/upstream/provider_fallback__fallback.yaml"
    );
    let text = std::fs::read_to_string(path).unwrap();
    let config = Config::from_yaml_str(&text, "fallback.yaml").unwrap();
    let policy = &config.backend_traffic_policies[0];
    let settings = TrafficSettings::from_policy(policy);
    settings.retry.unwrap().retry_on
}

async fn through(first: Behavior, retry_on: Option<Arc<RetryOn>>) -> (u16, usize, usize, Harness) {
    let primary = upstream(first).await;
    let fallback = upstream(Behavior::Ok {
        chunks: 1,
        interval: Duration::from_millis(1),
    })
    .await;
    run_against(primary.addr, &primary, &fallback, retry_on).await
}

async fn run_against(
    primary_addr: std::net::SocketAddr,
    primary: &Upstream,
    fallback: &Upstream,
    retry_on: Option<Arc<RetryOn>>,
) -> (u16, usize, usize, Harness) {
    let planner = StaticPlanner {
        targets: vec![
            target("primary", primary_addr, 0),
            target("fallback", fallback.addr, 1),
        ],
        idle: None,
        timeout: None,
    };
    let h = gateway_over(
        Arc::new(WithRetryOn(planner, retry_on)),
        fast_settings(),
        Arc::new(PassthroughFactory),
    )
    .await;
    let status = reqwest::Client::new()
        .post(format!("{}/v1/chat/completions", h.url))
        .json(&serde_json::json!({"model": "m", "messages": [{"role": "user", "content": "hi"}]}))
        .timeout(Duration::from_secs(10))
        .send()
        .await
        .unwrap()
        .status()
        .as_u16();
    (
        status,
        primary.hits.load(Ordering::SeqCst),
        fallback.hits.load(Ordering::SeqCst),
        h,
    )
}

#[tokio::test]
async fn listed_status_fails_over() {
    let (status, p, f, _h) = through(
        Behavior::Status(500, None),
        Some(fallback_example_retry_on()),
    )
    .await;
    assert_eq!((status, p, f), (200, 1, 1));
}

#[tokio::test]
async fn unlisted_status_is_returned_without_failing_over() {
    // The example lists 500 only: a 429 or a 503 goes back to the client as it is.
    for code in [429, 503] {
        let (status, p, f, _h) = through(
            Behavior::Status(code, None),
            Some(fallback_example_retry_on()),
        )
        .await;
        assert_eq!((status, p, f), (code, 1, 0), "{code}");
    }
}

#[tokio::test]
async fn connect_failure_trigger_fails_over_and_its_absence_does_not() {
    let fallback = upstream(Behavior::Ok {
        chunks: 1,
        interval: Duration::from_millis(1),
    })
    .await;
    let dead_primary = upstream(Behavior::Status(500, None)).await;
    let refused = refused_addr().await;
    let (status, _, f, _h) = run_against(
        refused,
        &dead_primary,
        &fallback,
        Some(fallback_example_retry_on()),
    )
    .await;
    assert_eq!((status, f), (200, 1));

    // Only `retriable-status-codes`: a connect failure is final.
    let only_codes = Arc::new(RetryOn::from_policy(&["retriable-status-codes"], &[500]));
    let (status, _, f, _h) = run_against(refused, &dead_primary, &fallback, Some(only_codes)).await;
    assert_eq!((status, f), (502, 1), "fallback hits are cumulative");
}

#[tokio::test]
async fn without_a_policy_429_fails_over() {
    let (status, p, f, _h) = through(Behavior::Status(429, None), None).await;
    assert_eq!((status, p, f), (200, 1, 1));
}
