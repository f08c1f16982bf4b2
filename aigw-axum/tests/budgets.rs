//! Prices and money budgets through `aigw run`: a budget that runs out mid-stream ends
//! the stream with an error event the official OpenAI and Anthropic SDKs raise, the
//! spend recorded equals the price table times the usage, an effective-dated price
//! applies from its instant on, a reload swaps the table whole, and two replicas on
//! one Redis share a budget.
//!
//! The prices here are made up for the tests (large, so a few tokens cost cents).
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::print_stdout,
    missing_docs
)]

use serde_json::{Value, json};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

mod peers;
use peers::{Proc, external, free_addr, redis_server, wait_listening};

const ADMIN_TOKEN: &str = "admin-test-token";

/// Input at 0.15 and output at 2000 USD per million tokens: a token of output costs
/// $0.002, so budgets of cents run out within a stream of a few hundred chunks.
const PRICES: &str = r#"
prices:
  - model: gpt-4o-mini
    input: "0.15"
    output: "2000"
  - model: claude-sonnet-4
    provider: anthropic
    input: "0.3"
    output: "2000"
"#;

/// `(input, output)` prices in pico-dollars per token.
const GPT: (u128, u128) = (150_000, 2_000_000_000);
const CLAUDE: (u128, u128) = (300_000, 2_000_000_000);

/// The micro-dollars a request costs: exact pico-dollars, rounded up once.
fn micros(prices: (u128, u128), input: u64, output: u64) -> u64 {
    let pico = u128::from(input) * prices.0 + u128::from(output) * prices.1;
    u64::try_from(pico.div_ceil(1_000_000)).unwrap()
}

/// `"0.001234"` as micro-dollars.
fn parse_usd(s: &str) -> u64 {
    let (int, frac) = s.split_once('.').unwrap();
    assert_eq!(frac.len(), 6, "{s}");
    int.parse::<u64>().unwrap() * 1_000_000 + frac.parse::<u64>().unwrap()
}

struct Gateway {
    _proc: Proc,
    url: String,
    admin: String,
    log: PathBuf,
}

/// `aigw run` in simulator mode with the price table, budgets and client keys in
/// `dir`, checking them for changes every 100 ms.
fn start(dir: &Path, name: &str, redis: Option<&str>) -> Gateway {
    let log = dir.join(format!("{name}.log"));
    let (listen, admin) = (free_addr(), free_addr());
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_aigw"));
    cmd.args(["--log-json", "run"])
        .args(["--listen", &listen.to_string()])
        .args(["--admin", &admin.to_string()])
        .arg("--pricing-file")
        .arg(dir.join("prices.yaml"))
        .args(["--reload-interval-ms", "100"])
        .env("AIGW_ADMIN_TOKEN", ADMIN_TOKEN)
        .env("RUST_LOG", "info")
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&log).unwrap());
    if dir.join("budgets.yaml").exists() {
        cmd.arg("--budgets-file").arg(dir.join("budgets.yaml"));
    }
    if dir.join("keys.txt").exists() {
        cmd.arg("--client-api-keys").arg(dir.join("keys.txt"));
    }
    if let Some(url) = redis {
        // Two replicas and their clients share two cores with everything else running:
        // a reservation may wait for Redis longer than the default before failing open.
        cmd.env("AIGW_REDIS_URL", url)
            .env("AIGW_REDIS_TIMEOUT", "2s");
    }
    let proc = Proc(cmd.spawn().unwrap());
    wait_listening(listen);
    wait_listening(admin);
    Gateway {
        _proc: proc,
        url: format!("http://{listen}"),
        admin: format!("http://{admin}"),
        log,
    }
}

/// The access-log lines written so far.
fn access_lines(log: &Path) -> Vec<Value> {
    std::fs::read_to_string(log)
        .unwrap_or_default()
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .filter(|v| v["target"] == "aigw::access")
        .map(|v| v["fields"].clone())
        .collect()
}

/// Waits until the log holds `n` access lines.
async fn wait_lines(log: &Path, n: usize) -> Vec<Value> {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let lines = access_lines(log);
        if lines.len() >= n || Instant::now() > deadline {
            return lines;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

async fn admin_get(g: &Gateway, path: &str) -> Value {
    let r = reqwest::Client::new()
        .get(format!("{}{path}", g.admin))
        .bearer_auth(ADMIN_TOKEN)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200, "{path}");
    r.json().await.unwrap()
}

/// The state of the budget `name`.
async fn budget(g: &Gateway, name: &str) -> Value {
    let all = admin_get(g, "/admin/budgets").await;
    all["budgets"]
        .as_array()
        .unwrap()
        .iter()
        .find(|b| b["name"] == name)
        .cloned()
        .unwrap_or_else(|| panic!("no budget {name}: {all}"))
}

/// A priced line's cost is the price table times its usage, to the micro-dollar.
fn assert_priced(line: &Value, prices: (u128, u128)) -> u64 {
    let (i, o) = (
        line["input_tokens"].as_u64().unwrap(),
        line["output_tokens"].as_u64().unwrap(),
    );
    let cost = parse_usd(line["cost_usd"].as_str().expect("cost_usd"));
    assert_eq!(cost, micros(prices, i, o), "{line}");
    cost
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn budget_running_out_mid_stream_ends_it_with_an_error_the_sdks_raise() {
    let Some(py) = external("AIGW_PYTHON") else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("prices.yaml"), PRICES).unwrap();
    std::fs::write(
        dir.path().join("keys.txt"),
        "oa-client:sk-oa-client-key\nan-client:sk-an-client-key\n",
    )
    .unwrap();
    // 20 cents each: about a hundred output tokens of the several hundred streamed.
    std::fs::write(
        dir.path().join("budgets.yaml"),
        "budgets:\n  - {name: oa, key: oa-client, limit_usd: \"0.20\", period: day, cutoff: true}\n  - {name: an, key: an-client, limit_usd: \"0.20\", period: month, cutoff: true}\n",
    )
    .unwrap();
    let g = start(dir.path(), "gw", None);
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/py/budget_sdk.py");
    let plan = json!({"url": g.url, "openai_key": "sk-oa-client-key",
                      "anthropic_key": "sk-an-client-key", "chunks": 600});
    let out = Command::new(&py)
        .arg(script)
        .arg(plan.to_string())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let r: Value = serde_json::from_slice(&out.stdout).unwrap();
    println!("{r:#}");

    for sdk in ["openai", "anthropic"] {
        let case = &r[sdk];
        let raised = &case["raised"];
        assert!(
            raised["message"]
                .as_str()
                .unwrap()
                .contains("ran out during the response"),
            "{sdk}: the stream must end with the budget's error event: {case}"
        );
        let text = case["text"].as_str().unwrap();
        assert!(!text.is_empty(), "{sdk}: text before the cut: {case}");
        // Refused up front, once: the SDK does not retry a spent budget.
        assert_eq!(case["refused"]["status"], 429, "{sdk}: {case}");
        assert_eq!(case["refused"]["should_retry"], "false", "{sdk}: {case}");
    }
    assert_eq!(r["openai"]["raised"]["class"], "APIError", "{r}");
    assert_eq!(r["openai"]["refused"]["class"], "RateLimitError", "{r}");
    assert_eq!(r["openai"]["refused"]["code"], "insufficient_quota", "{r}");
    assert_eq!(r["anthropic"]["refused"]["class"], "RateLimitError", "{r}");
    assert_eq!(r["anthropic"]["refused"]["type"], "rate_limit_error", "{r}");

    // Two requests per SDK reached the gateway (no retries): the cut stream and the
    // refusal, both 429; only the stream cost anything.
    let lines = wait_lines(&g.log, 4).await;
    assert_eq!(lines.len(), 4, "{lines:#?}");
    for (client, prices, name) in [("oa-client", GPT, "oa"), ("an-client", CLAUDE, "an")] {
        let mine: Vec<&Value> = lines.iter().filter(|l| l["client"] == client).collect();
        assert_eq!(mine.len(), 2, "{client}: {lines:#?}");
        assert!(mine.iter().all(|l| l["status"] == 429), "{mine:#?}");
        let cut = mine.iter().find(|l| l["stream"] == true).unwrap();
        let refused = mine.iter().find(|l| l["stream"] == false).unwrap();
        assert!(refused.get("cost_usd").is_none(), "{refused}");
        let cost = assert_priced(cut, prices);
        // The spend the budget counts is the request's cost, to the micro-dollar, and
        // the cut happened as the budget ran out: past it by less than a few tokens.
        let state = budget(&g, name).await;
        assert_eq!(
            parse_usd(state["spent_usd"].as_str().unwrap()),
            cost,
            "{state}"
        );
        assert!(
            (200_000..210_000).contains(&cost),
            "{client} spent {cost} µ$"
        );
        assert_eq!(state["remaining_usd"], "0.000000", "{state}");
        // The usage API reports the same figure.
        let usage = admin_get(&g, &format!("/admin/usage?key={client}&group_by=key")).await;
        assert_eq!(usage["rows"][0]["requests"], 1, "{usage}");
        assert_eq!(
            parse_usd(usage["rows"][0]["cost_usd"].as_str().unwrap()),
            cost,
            "{usage}"
        );
    }
    let metrics = reqwest::get(format!("{}/metrics", g.admin))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        metrics.contains("aigw_budget_cutoffs_total{budget=\"oa\"} 1"),
        "{metrics}"
    );
    assert!(
        metrics.contains("aigw_budget_refusals_total{budget=\"an\"} 1"),
        "{metrics}"
    );
    assert!(
        metrics.contains("aigw_spend_usd_total{key=\"oa-client\",team=\"\",model=\"gpt-4o-mini\""),
        "{metrics}"
    );
    // The admin API wants its token.
    let r = reqwest::get(format!("{}/admin/usage", g.admin))
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
}

/// Output tokens a test request allows, so it reserves 16 × $0.002 of output (the
/// simulator's answers are shorter).
const MAX_TOKENS: u64 = 16;

/// Sends a chat completion (non-streamed) and returns its status.
async fn chat(url: &str, key: Option<&str>) -> u16 {
    let mut r = reqwest::Client::new()
        .post(format!("{url}/v1/chat/completions"))
        .json(&json!({"model": "gpt-4o-mini", "max_tokens": MAX_TOKENS,
                      "messages": [{"role": "user", "content": "price me"}]}));
    if let Some(k) = key {
        r = r.bearer_auth(k);
    }
    r.send().await.unwrap().status().as_u16()
}

fn write_atomically(path: &Path, text: &str) {
    let tmp = path.with_extension("tmp");
    std::fs::write(&tmp, text).unwrap();
    std::fs::rename(&tmp, path).unwrap();
}

fn table(input: &str, output: &str) -> String {
    format!("prices: [{{model: gpt-4o-mini, input: \"{input}\", output: \"{output}\"}}]\n")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn effective_dated_prices_apply_from_their_instant_and_reloads_swap_whole_tables() {
    let dir = tempfile::tempdir().unwrap();
    let prices = dir.path().join("prices.yaml");
    std::fs::write(&prices, table("1", "2")).unwrap();
    let g = start(dir.path(), "gw", None);
    // A change dated two seconds ahead.
    let switch = aigw_core::pricing::unix_now() + 2;
    let dated = format!(
        "prices:\n  - {{model: gpt-4o-mini, input: \"1\", output: \"2\"}}\n  - {{model: gpt-4o-mini, effective_from: \"{}\", input: \"10\", output: \"20\"}}\n",
        aigw_core::pricing::format_instant(switch)
    );
    write_atomically(&prices, &dated);
    // Reloaded within the interval; requests before the instant pay the old price.
    tokio::time::sleep(Duration::from_millis(400)).await;
    assert_eq!(chat(&g.url, None).await, 200);
    while aigw_core::pricing::unix_now() < switch {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(chat(&g.url, None).await, 200);
    let lines = wait_lines(&g.log, 2).await;
    assert_priced(&lines[0], (1_000_000, 2_000_000));
    assert_priced(&lines[1], (10_000_000, 20_000_000));

    // Reloads under load: every request is priced by one whole table, never a mix of
    // the input price of one and the output price of the other.
    let (a, b) = ((3_000_000, 5_000_000), (7_000_000, 11_000_000));
    write_atomically(&prices, &table("3", "5"));
    tokio::time::sleep(Duration::from_millis(400)).await;
    let (url, p) = (g.url.clone(), prices.clone());
    // Requests keep coming until the last flip has been in force for a while, however
    // fast or slow the machine runs them.
    let flipping = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(true));
    let flipping_done = flipping.clone();
    let flipper = tokio::spawn(async move {
        for i in 0..10 {
            let t = if i % 2 == 0 {
                table("3", "5")
            } else {
                table("7", "11")
            };
            write_atomically(&p, &t);
            tokio::time::sleep(Duration::from_millis(120)).await;
        }
        tokio::time::sleep(Duration::from_millis(400)).await;
        flipping_done.store(false, std::sync::atomic::Ordering::SeqCst);
    });
    let mut sent = Vec::new();
    for _ in 0..12 {
        let (url, flipping) = (url.clone(), flipping.clone());
        sent.push(tokio::spawn(async move {
            let mut n = 0;
            while n < 4 || flipping.load(std::sync::atomic::Ordering::SeqCst) {
                assert_eq!(chat(&url, None).await, 200);
                n += 1;
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            n
        }));
    }
    flipper.await.unwrap();
    let mut total = 2;
    for s in sent {
        total += s.await.unwrap();
    }
    let lines = wait_lines(&g.log, total).await;
    let (mut seen_a, mut seen_b) = (false, false);
    for l in &lines[2..] {
        let (i, o) = (
            l["input_tokens"].as_u64().unwrap(),
            l["output_tokens"].as_u64().unwrap(),
        );
        let cost = parse_usd(l["cost_usd"].as_str().unwrap());
        seen_a |= cost == micros(a, i, o);
        seen_b |= cost == micros(b, i, o);
        assert!(
            cost == micros(a, i, o) || cost == micros(b, i, o),
            "priced by neither table: {l}"
        );
    }
    assert!(seen_a && seen_b, "both tables were in force at some point");

    // An invalid file is refused and the table in force stays.
    write_atomically(&prices, &table("7", "11"));
    tokio::time::sleep(Duration::from_millis(400)).await;
    write_atomically(
        &prices,
        "prices: [{model: gpt-4o-mini, input: 0.5, output: \"1\"}]\n",
    );
    tokio::time::sleep(Duration::from_millis(400)).await;
    assert_eq!(chat(&g.url, None).await, 200);
    let lines = wait_lines(&g.log, total + 1).await;
    assert_priced(lines.last().unwrap(), b);
    let log = std::fs::read_to_string(&g.log).unwrap();
    assert!(
        log.contains("quote prices"),
        "the refusal names the problem"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_replicas_share_a_budget_and_usage_in_redis() {
    let Some(redis) = redis_server() else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("prices.yaml"), PRICES).unwrap();
    std::fs::write(dir.path().join("keys.txt"), "shared:sk-shared-key\n").unwrap();
    std::fs::write(
        dir.path().join("budgets.yaml"),
        "budgets:\n  - {name: shared, key: shared, limit_usd: \"0.25\", period: total}\n",
    )
    .unwrap();
    let one = start(dir.path(), "one", Some(&redis.url));
    let two = start(dir.path(), "two", Some(&redis.url));
    let mut admitted = 0;
    let mut refused_at = None;
    for i in 0..40 {
        let g = if i % 2 == 0 { &one } else { &two };
        match chat(&g.url, Some("sk-shared-key")).await {
            200 => admitted += 1,
            429 => {
                refused_at = Some(i);
                break;
            }
            s => panic!("status {s}"),
        }
        // The charge reaches Redis just after the answer.
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(refused_at.is_some(), "the budget never ran out");
    let line = access_lines(&one.log)[0].clone();
    let per = assert_priced(&line, GPT);
    // One budget for both: admitted while the shared spend left room for a request's
    // reservation, never past the limit.
    assert!(admitted * per <= 250_000, "{admitted} × {per}");
    assert!(
        admitted * per + RESERVED > 250_000,
        "{admitted} × {per}: refused with room left"
    );
    for g in [&one, &two] {
        let b = budget(g, "shared").await;
        assert_eq!(
            parse_usd(b["spent_usd"].as_str().unwrap()),
            admitted * per,
            "{b}"
        );
        let u = admin_get(g, "/admin/usage?group_by=key,model").await;
        assert_eq!(u["rows"][0]["requests"], admitted, "{u}");
        assert_eq!(u["rows"][0]["key"], "shared", "{u}");
    }
    let by_hour = admin_get(&two, "/admin/usage?group_by=hour").await;
    assert!(
        by_hour["rows"][0]["hour"]
            .as_str()
            .unwrap()
            .ends_with(":00:00Z"),
        "{by_hour}"
    );
}

/// What a [`chat`] request reserves, in micro-dollars: its output allowance at
/// $0.002 a token, plus its few prompt tokens at $0.15 per million, rounded up.
const RESERVED: u64 = MAX_TOKENS * 2_000 + 1;

/// The spend of budget `name`, once the replicas' settlements have reached Redis.
async fn settled_spend(g: &Gateway, name: &str) -> u64 {
    tokio::time::sleep(Duration::from_millis(300)).await;
    parse_usd(budget(g, name).await["spent_usd"].as_str().unwrap())
}

/// Every priced request in the access logs of `gateways`, summed.
async fn logged_spend(gateways: &[&Gateway], requests: usize) -> u64 {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let lines: Vec<Value> = gateways.iter().flat_map(|g| access_lines(&g.log)).collect();
        if lines.len() >= requests || Instant::now() > deadline {
            return lines
                .iter()
                .filter(|l| l.get("cost_usd").is_some())
                .map(|l| assert_priced(l, GPT))
                .sum();
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Reserve, then settle, across replicas: eight clients at once on two replicas
/// sharing one Redis, streamed and not, each request reserving its estimate in the key
/// budget and the route budget atomically. Requests are admitted while their
/// reservation fits, so the budget ends within one reservation of its limit — never
/// past it, where check-then-settle let every request in flight through.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_clients_on_two_replicas_never_overshoot_a_budget() {
    let Some(redis) = redis_server() else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("prices.yaml"), PRICES).unwrap();
    std::fs::write(
        dir.path().join("keys.txt"),
        "many:sk-many-clients
",
    )
    .unwrap();
    std::fs::write(
        dir.path().join("budgets.yaml"),
        "budgets:\n  - {name: many, key: many, limit_usd: \"0.30\", period: day, cutoff: true}\n  - {name: route, route: default/aigw-run, limit_usd: \"100\", period: month}\n",
    )
    .unwrap();
    let one = start(dir.path(), "one", Some(&redis.url));
    let two = start(dir.path(), "two", Some(&redis.url));
    // 32 output tokens reserved: more than the simulator's answers use, streamed or not.
    let reserved = 32 * 2_000 + 1;
    let mut clients = Vec::new();
    for c in 0..8 {
        let url = if c % 2 == 0 { &one.url } else { &two.url }.clone();
        clients.push(tokio::spawn(async move {
            let (mut admitted, mut refused, mut in_a_row) = (0usize, 0usize, 0);
            // Refused while other clients' reservations were in flight, a client tries
            // again; it stops once refused ten times in a row.
            while in_a_row < 10 {
                let stream = c % 4 == 1;
                let r = reqwest::Client::new()
                    .post(format!("{url}/v1/chat/completions"))
                    .bearer_auth("sk-many-clients")
                    .json(
                        &json!({"model": "gpt-4o-mini", "max_tokens": 32, "stream": stream,
                                  "messages": [{"role": "user", "content": "price me"}]}),
                    )
                    .send()
                    .await
                    .unwrap();
                match r.status().as_u16() {
                    200 => {
                        let body = r.text().await.unwrap();
                        assert!(!body.contains("insufficient_quota"), "{body}");
                        admitted += 1;
                        in_a_row = 0;
                    }
                    429 => {
                        refused += 1;
                        in_a_row += 1;
                        tokio::time::sleep(Duration::from_millis(30)).await;
                    }
                    s => panic!("status {s}"),
                }
            }
            (admitted, refused)
        }));
    }
    let (mut admitted, mut requests) = (0, 0);
    for c in clients {
        let (a, r) = c.await.unwrap();
        admitted += a;
        requests += a + r;
    }
    let spent = settled_spend(&one, "many").await;
    println!("{admitted} of {requests} requests admitted; {spent} µ$ spent of 300000");
    for g in [&one, &two] {
        let log = std::fs::read_to_string(&g.log).unwrap_or_default();
        assert!(
            !log.contains("budgets not checked"),
            "the store failed, so requests were let through unreserved"
        );
    }
    assert!(spent <= 300_000 + reserved, "overshot: {spent}");
    assert!(
        spent + reserved > 300_000,
        "refused with room left: {spent}"
    );
    assert_eq!(settled_spend(&two, "many").await, spent);
    assert_eq!(settled_spend(&two, "route").await, spent);
    // Every reservation was settled with the exact cost: the budget holds nothing more
    // than what the requests cost.
    assert_eq!(logged_spend(&[&one, &two], requests).await, spent);
}

/// A stream that outgrows its reservation (the simulator streams far more than the
/// `max_tokens` reserved) is cut once the shared budget has nothing left for it, on
/// either replica; each is cut within what the budget had left for it, and both
/// replicas refuse the next request.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn streams_on_two_replicas_are_cut_off_by_one_redis_budget() {
    let Some(redis) = redis_server() else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("prices.yaml"), PRICES).unwrap();
    std::fs::write(
        dir.path().join("budgets.yaml"),
        "budgets:\n  - {name: all, route: default/aigw-run, limit_usd: \"0.10\", period: day, cutoff: true}\n",
    )
    .unwrap();
    let one = start(dir.path(), "one", Some(&redis.url));
    let two = start(dir.path(), "two", Some(&redis.url));
    let mut tasks = Vec::new();
    for url in [one.url.clone(), two.url.clone()] {
        tasks.push(tokio::spawn(async move {
            let r = reqwest::Client::new()
                .post(format!("{url}/v1/chat/completions"))
                .header("x-sim-chunks", "600")
                .header("x-sim-chunk-interval-ms", "5")
                .json(
                    &json!({"model": "gpt-4o-mini", "stream": true, "max_tokens": MAX_TOKENS,
                              "messages": [{"role": "user", "content": "a long one"}]}),
                )
                .send()
                .await
                .unwrap();
            assert_eq!(r.status(), 200);
            r.text().await.unwrap()
        }));
    }
    for t in tasks {
        let body = t.await.unwrap();
        assert!(body.contains("insufficient_quota"), "every stream was cut");
        assert!(!body.contains("[DONE]"), "no stream completed");
    }
    assert_eq!(chat(&one.url, None).await, 429);
    assert_eq!(chat(&two.url, None).await, 429);
    let spent = settled_spend(&one, "all").await;
    // The first stream found the whole budget left, the second at most that: each is
    // cut within it plus the chunk that ran it out.
    assert!(spent > 100_000, "{spent}");
    assert!(spent <= 2 * (100_000 + 10_000), "{spent}");
    assert_eq!(logged_spend(&[&one, &two], 4).await, spent);
}
