//! Budgets from the client's identity, in the axum gateway: an authentication layer in
//! front hands each request an `Arc<ClientIdentity>` (here: a test layer reading a
//! header), and the gateway enforces the key's own budget and its team's budget.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, missing_docs)]

use aigw_axum::simulator::{Simulator, SimulatorConfig};
use aigw_axum::{Gateway, autoconfig, config, credentials};
use aigw_core::budget::{
    BudgetPeriod, BudgetRules, BudgetSpec, Budgets, MemorySpendStore, Spending,
};
use aigw_core::config::{Config, SecretSource};
use aigw_core::identity::{ClientIdentity, IdentityKind};
use aigw_core::pricing::{PriceTable, Pricing};
use axum::extract::Request;
use std::net::SocketAddr;
use std::sync::Arc;
use tokio::net::TcpListener;

/// A gpt-4o-mini answer of the simulator (1 input token, 10 output) at these prices
/// costs 1 × 1000 + 10 × 2000 = 21 000 µ$.
const PRICES: &str = "prices: [{model: gpt-4o-mini, input: \"1000\", output: \"2000\"}]";
const PER_REQUEST: u64 = 21_000;

/// `x-test-identity: id,team[,budget micro-dollars]` becomes the request's identity.
async fn identify(mut req: Request) -> Request {
    let Some(v) = req.headers().get("x-test-identity").cloned() else {
        return req;
    };
    let parts: Vec<&str> = v.to_str().unwrap().split(',').collect();
    let mut id = ClientIdentity::new(parts[0], IdentityKind::VirtualKey);
    id.team = Some(Arc::from(parts[1]));
    id.budget = parts.get(2).map(|m| BudgetSpec {
        limit_micros: m.parse().unwrap(),
        period: BudgetPeriod::Total,
    });
    req.extensions_mut().insert(Arc::new(id));
    req
}

async fn start(spending: Arc<Spending>) -> String {
    let sim_listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let sim = sim_listener.local_addr().unwrap();
    tokio::spawn(
        Simulator::new(SimulatorConfig::default()).serve(sim_listener, std::future::pending()),
    );
    let yaml = autoconfig::simulator(sim).yaml;
    let config = Config::from_yaml_str(&yaml, "simulator").unwrap();
    let snapshot = config::snapshot_with_secrets(
        &config,
        &SecretSource::from_config(&config),
        Arc::new(aigw_providers::ProviderFactory),
        &credentials::default_resolver(),
    )
    .unwrap();
    let gw = Gateway::builder(snapshot)
        .spending(spending)
        .build()
        .unwrap();
    let app = axum::Router::new()
        .fallback_service(gw)
        .layer(axum::middleware::map_request(identify));
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        axum::serve(
            listener,
            app.into_make_service_with_connect_info::<SocketAddr>(),
        )
        .await
        .unwrap();
    });
    format!("http://{addr}")
}

/// Status and error message of one chat completion as `identity`.
async fn chat(url: &str, identity: &str) -> (u16, String) {
    let r = reqwest::Client::new()
        .post(format!("{url}/v1/chat/completions"))
        .header("x-test-identity", identity)
        .json(
            &serde_json::json!({"model": "gpt-4o-mini", "max_tokens": 10,
                                  "messages": [{"role": "user", "content": "hi"}]}),
        )
        .send()
        .await
        .unwrap();
    let status = r.status().as_u16();
    let body: serde_json::Value = r.json().await.unwrap();
    (
        status,
        body["error"]["message"].as_str().unwrap_or("").to_owned(),
    )
}

/// Sends until refused; returns how many were admitted and the refusal's message.
async fn until_refused(url: &str, identity: &str) -> (u64, String) {
    for n in 0..20 {
        let (status, message) = chat(url, identity).await;
        if status == 429 {
            return (n, message);
        }
        assert_eq!(status, 200, "{message}");
    }
    panic!("{identity} was never refused");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_keys_own_budget_and_its_teams_budget_both_hold() {
    let rules = BudgetRules::parse(
        "budgets: [{name: research, team: research, limit_usd: \"0.1\", period: month}]",
        "test",
    )
    .unwrap();
    let spending = Arc::new(Spending::new(
        Arc::new(Pricing::new(PriceTable::parse(PRICES, "test").unwrap())),
        Arc::new(Budgets::new(rules)),
        Arc::new(MemorySpendStore::default()),
    ));
    let url = start(spending.clone()).await;

    // Each request reserves about 21 000 µ$ (its prompt and the 10 tokens it allows)
    // and costs exactly that. The key's own budget (0.05) refuses first: a third
    // reservation would not fit after two requests.
    let (n, message) = until_refused(&url, "vk-1,research,50000").await;
    assert_eq!(n, 2);
    assert!(
        message.contains("\"key:vk-1\" has too little left"),
        "{message}"
    );
    // Another key of the team spends the team's 0.1 up to its last reservation: two
    // more requests.
    let (n, message) = until_refused(&url, "vk-2,research").await;
    assert_eq!(n, 2);
    assert!(
        message.contains("\"research\" has too little left"),
        "{message}"
    );
    // Another team is not affected.
    assert_eq!(chat(&url, "vk-3,support").await.0, 200);

    let states = spending.budget_states().await.unwrap();
    let spent = |name: &str| {
        states
            .iter()
            .find(|s| s.name == name)
            .map(|s| s.spent_usd.clone())
            .unwrap()
    };
    assert_eq!(
        spent("research"),
        aigw_core::pricing::format_micros(4 * PER_REQUEST)
    );
    assert_eq!(
        spent("key:vk-1"),
        aigw_core::pricing::format_micros(2 * PER_REQUEST)
    );
    let q = aigw_core::budget::UsageQuery::parse(
        [("group_by", "team")],
        aigw_core::pricing::unix_now() + 1,
    )
    .unwrap();
    let report = spending.usage(&q).await.unwrap();
    let research = report
        .rows
        .iter()
        .find(|r| r.team.as_deref() == Some("research"));
    assert_eq!(research.unwrap().requests, 4, "{report:?}");
}
