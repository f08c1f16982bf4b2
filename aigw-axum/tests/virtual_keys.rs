//! Virtual keys end to end through `aigw run`: two replicas on one real Redis share the
//! keys, a key created on one works on the other, its models are enforced, its
//! identity reaches the rate-limit selectors (per key and per team, client copies of
//! the identity headers ignored), the access log and the metrics; a rotated or revoked
//! key is refused by both replicas within a second; the file store survives a restart;
//! and no key ever appears in a log.
//!
//! Needs `redis-server` (skipped without it unless `AIGW_REQUIRE_EXTERNAL=1`).
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::print_stderr,
    missing_docs
)]

use aigw_axum::simulator::{Simulator, SimulatorConfig};
use serde_json::{Value, json};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};
use tokio::net::TcpListener;

mod peers;
use peers::{Proc, free_addr, redis_server, wait_listening};

const ADMIN_TOKEN: &str = "adm-token-for-tests-0f3c";

/// Each key of team `capped` gets two requests a minute (its own bucket); other keys
/// are not limited.
const RULES: &str = r#"
        - clientSelectors:
            - headers:
                - {name: x-aigw-team, type: Exact, value: capped}
                - {name: x-aigw-client-id, type: Distinct}
          limit: {requests: 2, unit: Minute}"#;

fn config(dir: &Path, sim: SocketAddr) -> PathBuf {
    let yaml = include_str!(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../aigw-core/tests/fixtures/config/rate-limit.yaml.in"
    ))
    .replace("SIM_PORT", &sim.port().to_string())
    .replace("RULES", RULES);
    let path = dir.join("gateway.yaml");
    std::fs::write(&path, yaml).unwrap();
    path
}

async fn simulator() -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(
        Simulator::new(SimulatorConfig::default()).serve(listener, std::future::pending()),
    );
    addr
}

/// One `aigw run` replica: its process, gateway URL, admin URL and log files.
struct Replica {
    _proc: Proc,
    url: String,
    admin: String,
}

fn replica(dir: &Path, name: &str, config: &Path, store: &[(&str, &str)]) -> Replica {
    let (listen, admin) = (free_addr(), free_addr());
    let out = std::fs::File::create(dir.join(format!("{name}.log"))).unwrap();
    let err = out.try_clone().unwrap();
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_aigw"));
    cmd.arg("run")
        .arg(config)
        .args([
            "--listen",
            &listen.to_string(),
            "--admin",
            &admin.to_string(),
        ])
        .args(["--virtual-keys", "--admin-token", ADMIN_TOKEN])
        .arg("--audit-log")
        .arg(dir.join(format!("{name}.audit")))
        // As verbose as the gateway gets, so the log scan sees every line it could write.
        .env("RUST_LOG", "debug,hyper=info,h2=info,reqwest=info")
        .stdout(Stdio::from(out))
        .stderr(Stdio::from(err));
    for (k, v) in store {
        cmd.env(k, v);
    }
    let p = Proc(cmd.spawn().unwrap());
    wait_listening(listen);
    wait_listening(admin);
    Replica {
        _proc: p,
        url: format!("http://{listen}"),
        admin: format!("http://{admin}"),
    }
}

fn http() -> reqwest::Client {
    reqwest::Client::builder()
        .timeout(Duration::from_secs(10))
        .build()
        .unwrap()
}

async fn admin(
    r: &Replica,
    method: reqwest::Method,
    path: &str,
    body: Option<Value>,
) -> (u16, Value) {
    let mut req = http()
        .request(method, format!("{}{path}", r.admin))
        .bearer_auth(ADMIN_TOKEN);
    if let Some(b) = body {
        req = req.json(&b);
    }
    let resp = req.send().await.unwrap();
    let status = resp.status().as_u16();
    (status, resp.json().await.unwrap_or(Value::Null))
}

/// A chat completion with `key` as a bearer token (and extra headers).
async fn chat(r: &Replica, key: &str, model: &str, extra: &[(&str, &str)]) -> u16 {
    let mut req = http()
        .post(format!("{}/v1/chat/completions", r.url))
        .bearer_auth(key)
        .json(&json!({"model": model, "messages": [{"role": "user", "content": "hi"}]}));
    for (k, v) in extra {
        req = req.header(*k, *v);
    }
    req.send().await.unwrap().status().as_u16()
}

/// An Anthropic Messages call with `key` in `x-api-key`, as the Anthropic SDK sends it.
async fn messages(r: &Replica, key: &str) -> u16 {
    http()
        .post(format!("{}/v1/messages", r.url))
        .header("x-api-key", key)
        .json(&json!({"model": "gpt-sim", "max_tokens": 16, "messages": [{"role": "user", "content": "hi"}]}))
        .send()
        .await
        .unwrap()
        .status()
        .as_u16()
}

/// Waits out the last seconds of a minute: the per-minute windows are aligned to the
/// clock, and a window that ends between two requests would reset the count.
async fn well_inside_a_minute() {
    let secs = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    if secs % 60 >= 55 {
        tokio::time::sleep(Duration::from_secs(61 - secs % 60)).await;
    }
}

/// Polls both replicas until each refuses `key`; the time it took.
async fn refused_everywhere(replicas: [&Replica; 2], key: &str) -> Duration {
    let start = Instant::now();
    let mut done = [false, false];
    while !done.iter().all(|d| *d) {
        for (i, r) in replicas.iter().enumerate() {
            if !done[i] && chat(r, key, "gpt-sim", &[]).await == 401 {
                done[i] = true;
            }
        }
        assert!(
            start.elapsed() < Duration::from_secs(5),
            "{key:.16}… still accepted after 5 s"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    start.elapsed()
}

async fn create(r: &Replica, spec: Value) -> (String, String) {
    let (status, body) = admin(r, reqwest::Method::POST, "/admin/keys", Some(spec)).await;
    assert_eq!(status, 201, "{body}");
    let key = body["key"].as_str().unwrap().to_owned();
    assert!(key.starts_with("sk-aigw-"), "{body}");
    (body["id"].as_str().unwrap().to_owned(), key)
}

/// Every file in `dir` (logs, audit trails, the key file) must be free of every
/// secret: the whole key and its secret part.
fn assert_no_key_in(dir: &Path, keys: &[String]) {
    let mut scanned = 0;
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        let text = std::fs::read_to_string(&path).unwrap_or_default();
        scanned += text.len();
        for key in keys {
            let secret = key.rsplit('-').next().unwrap();
            assert!(
                !text.contains(secret),
                "{} holds a key's secret",
                path.display()
            );
        }
    }
    assert!(
        scanned > 2_000,
        "the logs are suspiciously short: {scanned} bytes"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn keys_are_shared_enforced_and_revoked_across_two_replicas_on_redis() {
    let Some(redis) = redis_server() else {
        return;
    };
    let sim = simulator().await;
    let dir = tempfile::tempdir().unwrap();
    let logs = tempfile::tempdir().unwrap();
    let cfg = config(dir.path(), sim);
    let store = [("AIGW_REDIS_URL", redis.url.as_str())];
    let a = replica(logs.path(), "a", &cfg, &store);
    let b = replica(logs.path(), "b", &cfg, &store);

    // The admin API refuses without the token, and with a wrong one.
    let anon = http()
        .get(format!("{}/admin/keys", a.admin))
        .send()
        .await
        .unwrap();
    assert_eq!(anon.status(), 401);
    let wrong = http()
        .get(format!("{}/admin/keys", a.admin))
        .bearer_auth("not-the-token")
        .send()
        .await
        .unwrap();
    assert_eq!(wrong.status(), 401);

    // Created on A, listed by B (without any secret), accepted by both.
    let (id, key) = create(
        &a,
        json!({"name": "search-bot", "team": "search", "owner": "alice", "models": ["gpt-*"],
               "budget": {"limit_micros": 5_000_000, "period": "month"}}),
    )
    .await;
    let (status, listed) = admin(&b, reqwest::Method::GET, "/admin/keys", None).await;
    assert_eq!(status, 200);
    let listed_key = listed["keys"]
        .as_array()
        .unwrap()
        .iter()
        .find(|k| k["id"] == id.as_str())
        .unwrap_or_else(|| panic!("B does not list {id}: {listed}"));
    assert_eq!(listed_key["team"], "search");
    assert_eq!(listed_key["status"], "active");
    for secret_field in ["key", "salt", "digest"] {
        assert!(listed_key.get(secret_field).is_none(), "{listed_key}");
    }
    assert_eq!(chat(&a, &key, "gpt-sim", &[]).await, 200);
    assert_eq!(chat(&b, &key, "gpt-sim", &[]).await, 200);
    assert_eq!(messages(&b, &key).await, 200, "x-api-key carries it too");
    // Not one of its models: 403, in the client API's shape.
    assert_eq!(chat(&a, &key, "claude-sim", &[]).await, 403);
    // Without a key, or with a made-up one: 401.
    assert_eq!(chat(&a, "", "gpt-sim", &[]).await, 401);
    let forged = format!("sk-aigw-{id}-{}", "0".repeat(64));
    assert_eq!(chat(&a, &forged, "gpt-sim", &[]).await, 401);

    // Per key and per team: each `capped` key has its own two requests a minute, counted
    // in Redis across both replicas; headers a client sets cannot move it to another
    // bucket or team.
    well_inside_a_minute().await;
    let (_, capped1) = create(&a, json!({"team": "capped"})).await;
    let (_, capped2) = create(&b, json!({"team": "capped"})).await;
    assert_eq!(chat(&a, &capped1, "gpt-sim", &[]).await, 200);
    assert_eq!(chat(&b, &capped1, "gpt-sim", &[]).await, 200);
    assert_eq!(chat(&a, &capped1, "gpt-sim", &[]).await, 429);
    let spoof = [
        ("x-aigw-client-id", "someone-else"),
        ("x-aigw-team", "search"),
    ];
    assert_eq!(chat(&b, &capped1, "gpt-sim", &spoof).await, 429);
    assert_eq!(chat(&a, &capped2, "gpt-sim", &[]).await, 200);
    for _ in 0..3 {
        assert_eq!(
            chat(&b, &key, "gpt-sim", &[]).await,
            200,
            "team search is not capped"
        );
    }

    // A key's own requests-per-minute limit, shared by the replicas.
    well_inside_a_minute().await;
    let (_, rpm) = create(&b, json!({"rpm": 2})).await;
    assert_eq!(chat(&a, &rpm, "gpt-sim", &[]).await, 200);
    assert_eq!(chat(&b, &rpm, "gpt-sim", &[]).await, 200);
    assert_eq!(chat(&a, &rpm, "gpt-sim", &[]).await, 429);

    // The identity in the metrics (bounded labels) and the access log.
    let metrics = http()
        .get(format!("{}/metrics", b.admin))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let series = format!(
        "aigw_client_requests_total{{client=\"{id}\",kind=\"virtual_key\",team=\"search\",code=\"2xx\"}}"
    );
    assert!(
        metrics.contains(&series),
        "{series} missing from\n{metrics}"
    );

    // Rotated on B: the old secret is refused by both within a second, the new one works.
    let (status, rotated) = admin(
        &b,
        reqwest::Method::POST,
        &format!("/admin/keys/{id}/rotate"),
        None,
    )
    .await;
    assert_eq!(status, 200, "{rotated}");
    let new_key = rotated["key"].as_str().unwrap().to_owned();
    let took = refused_everywhere([&a, &b], &key).await;
    assert!(took < Duration::from_secs(1), "rotation took {took:?}");
    assert_eq!(chat(&a, &new_key, "gpt-sim", &[]).await, 200);

    // Revoked on A: refused by both replicas within a second.
    let (status, revoked) = admin(
        &a,
        reqwest::Method::DELETE,
        &format!("/admin/keys/{id}"),
        None,
    )
    .await;
    assert_eq!(status, 200, "{revoked}");
    assert_eq!(revoked["status"], "revoked");
    let took = refused_everywhere([&a, &b], &new_key).await;
    eprintln!("revocation reached both replicas in {took:?}");
    assert!(took < Duration::from_secs(1), "revocation took {took:?}");
    let (_, one) = admin(&b, reqwest::Method::GET, &format!("/admin/keys/{id}"), None).await;
    assert_eq!(one["status"], "revoked");

    // The routes with their backends.
    let (_, routes) = admin(&a, reqwest::Method::GET, "/admin/routes", None).await;
    assert_eq!(routes["routes"][0]["name"], "default/limited", "{routes}");
    assert_eq!(
        routes["routes"][0]["rules"][0]["backends"][0]["schema"], "OpenAI",
        "{routes}"
    );

    // Let the access logs flush, then stop the replicas and scan every log.
    tokio::time::sleep(Duration::from_millis(600)).await;
    drop((a, b));
    let access = std::fs::read_to_string(logs.path().join("a.log")).unwrap()
        + &std::fs::read_to_string(logs.path().join("b.log")).unwrap();
    assert!(access.contains(&id), "the access log names the key id");
    assert!(access.contains("client_kind") && access.contains("virtual_key"));
    let audit = std::fs::read_to_string(logs.path().join("a.audit")).unwrap()
        + &std::fs::read_to_string(logs.path().join("b.audit")).unwrap();
    for action in ["key.create", "key.rotate", "key.revoke"] {
        assert!(audit.contains(action), "{action} not audited:\n{audit}");
    }
    assert!(audit.contains("admin token missing or wrong"), "{audit}");
    assert_no_key_in(logs.path(), &[key, new_key, capped1, capped2, rpm]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_file_store_survives_a_restart_and_holds_no_key() {
    let sim = simulator().await;
    let dir = tempfile::tempdir().unwrap();
    let logs = tempfile::tempdir().unwrap();
    let cfg = config(dir.path(), sim);
    let file = logs.path().join("keys.json");
    let file_str = file.to_str().unwrap().to_owned();
    let store = [("AIGW_VIRTUAL_KEYS_FILE", file_str.as_str())];
    let a = replica(logs.path(), "first", &cfg, &store);
    let (id, key) = create(&a, json!({"name": "persisted", "expires_in": 3600})).await;
    let (_, revoked_key) = create(&a, json!({"name": "gone"})).await;
    let revoked_id = revoked_key.split('-').nth(2).unwrap().to_owned();
    let (status, _) = admin(
        &a,
        reqwest::Method::DELETE,
        &format!("/admin/keys/{revoked_id}"),
        None,
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(chat(&a, &key, "gpt-sim", &[]).await, 200);
    drop(a);

    let b = replica(logs.path(), "second", &cfg, &store);
    let (status, one) = admin(&b, reqwest::Method::GET, &format!("/admin/keys/{id}"), None).await;
    assert_eq!(status, 200);
    assert_eq!(one["name"], "persisted");
    assert_eq!(chat(&b, &key, "gpt-sim", &[]).await, 200);
    assert_eq!(chat(&b, &revoked_key, "gpt-sim", &[]).await, 401);
    tokio::time::sleep(Duration::from_millis(600)).await;
    drop(b);
    assert_no_key_in(logs.path(), &[key, revoked_key]);
}

/// The console in Debian's Chromium, headless, through chromedriver
/// (`tests/py/console_browser.py`): refused without the token, loaded with it, the
/// spend of requests just made (or the no-usage state when the gateway records none),
/// the team and route budgets with what they have spent and have left, a key created and then revoked from the page and refused by both replicas within a
/// second.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_console_works_in_a_headless_browser() {
    let Some(python) = peers::external("AIGW_PYTHON") else {
        return;
    };
    if !Path::new("/usr/bin/chromedriver").exists() {
        assert!(
            std::env::var("AIGW_REQUIRE_EXTERNAL").as_deref() != Ok("1"),
            "chromium-driver is not installed and AIGW_REQUIRE_EXTERNAL=1"
        );
        eprintln!("skipping: chromium-driver is not installed");
        return;
    }
    let Some(redis) = redis_server() else {
        return;
    };
    let sim = simulator().await;
    let dir = tempfile::tempdir().unwrap();
    let logs = tempfile::tempdir().unwrap();
    let cfg = config(dir.path(), sim);
    // Priced, so the console's spend view has the requests below to show.
    let prices = dir.path().join("prices.yaml");
    std::fs::write(
        &prices,
        "prices:\n  - {model: gpt-sim, input: \"1\", output: \"2\"}\n",
    )
    .unwrap();
    let prices = prices.display().to_string();
    // A team and a route budget, which the console lists beside the keys' own.
    let budgets = dir.path().join("budgets.yaml");
    std::fs::write(
        &budgets,
        "budgets:\n  - {name: search-monthly, team: search, limit_usd: \"5\", period: month}\n  - {name: limited-daily, route: default/limited, limit_usd: \"20\", period: day, cutoff: true}\n",
    )
    .unwrap();
    let budgets = budgets.display().to_string();
    let store = [
        ("AIGW_REDIS_URL", redis.url.as_str()),
        ("AIGW_PRICING_FILE", prices.as_str()),
        ("AIGW_BUDGETS_FILE", budgets.as_str()),
    ];
    let a = replica(logs.path(), "a", &cfg, &store);
    let b = replica(logs.path(), "b", &cfg, &store);
    let (id, key) = create(&a, json!({"name": "used-before", "team": "search"})).await;
    assert_eq!(chat(&a, &key, "gpt-sim", &[]).await, 200);
    assert_eq!(chat(&b, &key, "gpt-sim", &[]).await, 200);

    let plan = json!({
        "console": format!("{}/admin/console", a.admin),
        "token": ADMIN_TOKEN,
        "gateways": [a.url, b.url],
        "admins": [a.admin, b.admin],
        "known_key": id,
        "model": "gpt-sim",
    });
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/py/console_browser.py");
    let out = tokio::process::Command::new(python)
        .arg(script)
        .arg(plan.to_string())
        .output()
        .await
        .unwrap();
    assert!(
        out.status.success(),
        "{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let report: Value = serde_json::from_slice(&out.stdout).unwrap();
    eprintln!("console report: {report}");
    assert_eq!(report["usage_status"], 200, "{report}");
    assert!(
        report["usage_row"]
            .as_str()
            .is_some_and(|row| row.contains("gpt-sim")),
        "the spend of the requests just made is on the page: {report}"
    );
    // The team and route budgets, with the spend of the two requests above (each
    // replica's usage lands in the shared store).
    for (name, scope, limit) in [
        ("search-monthly", "team", "$5.00"),
        ("limited-daily", "route", "$20.00"),
    ] {
        let row = report["budget_rows"][name].as_str().unwrap_or_default();
        assert!(
            row.contains(scope) && row.contains(limit),
            "{name}: {report}"
        );
        let spent = &report["budget_spent"][name];
        assert!(
            spent.as_f64().is_some_and(|s| s > 0.0),
            "{name} shows the spend of the requests just made: {report}"
        );
    }
    let took = report["revoked_after_s"].as_f64().unwrap();
    assert!(
        took < 1.0,
        "revoked from the page, still accepted after {took} s"
    );
    tokio::time::sleep(Duration::from_millis(600)).await;
    drop((a, b));
    let tail = report["key_secret_tail"].as_str().unwrap().to_owned();
    assert_no_key_in(logs.path(), &[key, format!("sk-aigw-x-{tail}")]);
}
