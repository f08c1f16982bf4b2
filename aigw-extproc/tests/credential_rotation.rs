//! In-process credential rotation at the process level: the `aigw-extproc` binary with
//! an `AWSCredentials` policy that names no credentials, so it takes AWS web identity
//! from a projected service-account token file (`AWS_WEB_IDENTITY_TOKEN_FILE`, as the
//! operator's sidecar patch mounts it) and assumes the role at STS (`moto_server`,
//! reached through `AWS_ENDPOINT_URL_STS`). Real Envoy 1.40 in front, the bundled
//! simulator as Bedrock verifying every SigV4 signature and session token.
//!
//! A proxy in front of moto injects the faults: it shortens the credentials' lifetime
//! to a few seconds (moto issues one hour) and replaces the keys with ones the
//! simulator knows, then plays an STS outage. While the cached credential is valid,
//! requests keep being served; past its expiry they get a 503 naming the policy; after
//! the outage the next refresh serves again.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::print_stderr,
    missing_docs
)]

mod common;

use aigw_axum::simulator::{AwsCredentials, Simulator, SimulatorConfig};
use common::envoy::{Envoy, Proc, envoy_binary, free_port, wait_http_ok};
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant, SystemTime};

const ROLE: &str = "arn:aws:iam::123456789012:role/bedrock-invoker";
const KEY_ID: &str = "ASIAROTATEDE2E";
const SECRET: &str = "rotated-secret-key";
const SESSION: &str = "rotated-session-token";
/// Lifetime of each credential the proxy hands out.
const LIFETIME: Duration = Duration::from_secs(6);
const POLICY: &str = "default/sim-bedrock-credentials";

fn moto_bin() -> Option<PathBuf> {
    let found = std::env::var_os("AIGW_VENV_BIN")
        .map(|d| PathBuf::from(d).join("moto_server"))
        .filter(|p| p.exists());
    if found.is_none() {
        assert!(
            std::env::var("AIGW_REQUIRE_EXTERNAL").as_deref() != Ok("1"),
            "AIGW_REQUIRE_EXTERNAL=1 but no moto_server in $AIGW_VENV_BIN"
        );
        eprintln!("skipping: set AIGW_VENV_BIN to the test venv (see scripts/test.sh)");
    }
    found
}

/// Replaces the text of `<tag>…</tag>`.
fn replace_tag(xml: &str, tag: &str, value: &str) -> String {
    let (open, close) = (format!("<{tag}>"), format!("</{tag}>"));
    match (xml.find(&open), xml.find(&close)) {
        (Some(a), Some(b)) if a < b => {
            format!("{}{open}{value}{}", &xml[..a], &xml[b..])
        }
        _ => panic!("no <{tag}> in STS answer:\n{xml}"),
    }
}

fn rfc3339(t: SystemTime) -> String {
    aigw_core::routing::unix_to_rfc3339(t.duration_since(SystemTime::UNIX_EPOCH).unwrap().as_secs())
}

struct StsProxy {
    port: u16,
    outage: Arc<AtomicBool>,
    calls: Arc<AtomicUsize>,
}

/// STS as seen by the ExtProc: moto's answer with short-lived, known credentials, or a
/// 503 during an outage.
async fn sts_proxy(moto: String) -> StsProxy {
    let outage = Arc::new(AtomicBool::new(false));
    let calls = Arc::new(AtomicUsize::new(0));
    let (o, c) = (outage.clone(), calls.clone());
    let client = reqwest::Client::new();
    let app = axum::Router::new().fallback(move |headers: http::HeaderMap, body: String| {
        let (o, c, client, moto) = (o.clone(), c.clone(), client.clone(), moto.clone());
        async move {
            c.fetch_add(1, Ordering::SeqCst);
            if o.load(Ordering::SeqCst) {
                return (http::StatusCode::SERVICE_UNAVAILABLE, "<ErrorResponse><Error><Code>ServiceUnavailable</Code><Message>outage</Message></Error></ErrorResponse>".to_owned());
            }
            let mut req = client.post(&moto).body(body);
            if let Some(ct) = headers.get(http::header::CONTENT_TYPE) {
                req = req.header(http::header::CONTENT_TYPE, ct);
            }
            let r = req.send().await.unwrap();
            let status = r.status();
            let mut xml = r.text().await.unwrap();
            assert!(status.is_success(), "moto: {status} {xml}");
            xml = replace_tag(&xml, "AccessKeyId", KEY_ID);
            xml = replace_tag(&xml, "SecretAccessKey", SECRET);
            xml = replace_tag(&xml, "SessionToken", SESSION);
            xml = replace_tag(&xml, "Expiration", &rfc3339(SystemTime::now() + LIFETIME));
            (http::StatusCode::OK, xml)
        }
    });
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = l.local_addr().unwrap().port();
    tokio::spawn(async move { axum::serve(l, app).await });
    StsProxy {
        port,
        outage,
        calls,
    }
}

fn config_yaml(sim: u16) -> String {
    format!(
        "apiVersion: gateway.envoyproxy.io/v1alpha1\nkind: Backend\nmetadata: {{name: sim-bedrock, namespace: default}}\nspec:\n  endpoints: [{{ip: {{address: 127.0.0.1, port: {sim}}}}}]\n\
         ---\napiVersion: aigateway.envoyproxy.io/v1beta1\nkind: AIServiceBackend\nmetadata: {{name: sim-bedrock, namespace: default}}\nspec:\n  schema: {{name: AWSBedrock}}\n  backendRef: {{name: sim-bedrock, kind: Backend, group: gateway.envoyproxy.io}}\n\
         ---\napiVersion: aigateway.envoyproxy.io/v1beta1\nkind: BackendSecurityPolicy\nmetadata: {{name: sim-bedrock-credentials, namespace: default}}\nspec:\n  targetRefs: [{{group: aigateway.envoyproxy.io, kind: AIServiceBackend, name: sim-bedrock}}]\n  type: AWSCredentials\n  awsCredentials: {{region: us-east-1}}\n\
         ---\napiVersion: aigateway.envoyproxy.io/v1beta1\nkind: AIGatewayRoute\nmetadata: {{name: rotation, namespace: default}}\nspec:\n  rules:\n    - matches: [{{headers: [{{type: Exact, name: x-ai-eg-model, value: claude-bedrock}}]}}]\n      backendRefs: [{{name: sim-bedrock}}]\n"
    )
}

async fn chat(base: &str) -> (u16, String) {
    let r = reqwest::Client::new()
        .post(format!("{base}/v1/chat/completions"))
        .json(&serde_json::json!({
            "model": "claude-bedrock",
            "messages": [{"role": "user", "content": "hi"}],
        }))
        .send()
        .await
        .unwrap();
    (r.status().as_u16(), r.text().await.unwrap())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn web_identity_rotates_in_process_and_survives_an_sts_outage_until_expiry() {
    let (Some(envoy_bin), Some(moto_bin)) = (envoy_binary(), moto_bin()) else {
        return;
    };
    let moto_port = free_port();
    let _moto = Proc(
        Command::new(moto_bin)
            .args(["-H", "127.0.0.1", "-p", &moto_port.to_string()])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    let start = Instant::now();
    while tokio::net::TcpStream::connect(("127.0.0.1", moto_port))
        .await
        .is_err()
    {
        assert!(
            start.elapsed() < Duration::from_secs(30),
            "moto_server did not start"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let sts = sts_proxy(format!("http://127.0.0.1:{moto_port}/")).await;
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let sim = l.local_addr().unwrap().port();
    let sim_config = SimulatorConfig::default()
        .with_aws(AwsCredentials::new(KEY_ID, SECRET, "us-east-1").with_session_token(SESSION));
    tokio::spawn(Simulator::new(sim_config).serve(l, std::future::pending()));

    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("aigw.yaml");
    std::fs::write(&cfg, config_yaml(sim)).unwrap();
    // The projected service-account token, as the kubelet writes it.
    let token = dir.path().join("token");
    std::fs::write(&token, "eyJhbGciOiJSUzI1NiJ9.projected-sa-token.sig\n").unwrap();
    let sock = dir.path().join("extproc.sock");
    let extproc_addr = format!("unix://{}", sock.display());
    let (listen, envoy_admin, admin) = (free_port(), free_port(), free_port());
    let bin = env!("CARGO_BIN_EXE_aigw-extproc");
    let out = Command::new(bin)
        .arg("envoy-config")
        .arg(&cfg)
        .args(["--extproc", &extproc_addr])
        .args(["--listen", &format!("127.0.0.1:{listen}")])
        .args(["--admin", &format!("127.0.0.1:{envoy_admin}")])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let bootstrap = dir.path().join("envoy.yaml");
    std::fs::write(&bootstrap, &out.stdout).unwrap();

    let log = dir.path().join("extproc.log");
    let mut cmd = Command::new(bin);
    cmd.arg("--config")
        .arg(&cfg)
        .args(["--listen", &extproc_addr])
        .args(["--admin", &format!("127.0.0.1:{admin}")])
        .env("RUST_LOG", "warn")
        .env("HOME", dir.path())
        .env("AWS_WEB_IDENTITY_TOKEN_FILE", &token)
        .env("AWS_ROLE_ARN", ROLE)
        .env(
            "AWS_ENDPOINT_URL_STS",
            format!("http://127.0.0.1:{}/", sts.port),
        )
        .env("AWS_EC2_METADATA_DISABLED", "true")
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&log).unwrap());
    for k in [
        "AWS_ACCESS_KEY_ID",
        "AWS_SECRET_ACCESS_KEY",
        "AWS_SESSION_TOKEN",
        "AWS_PROFILE",
        "AWS_SHARED_CREDENTIALS_FILE",
        "AWS_CONTAINER_CREDENTIALS_FULL_URI",
        "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI",
        "AWS_ENDPOINT_URL",
    ] {
        cmd.env_remove(k);
    }
    let _extproc = Proc(cmd.spawn().unwrap());
    wait_http_ok(&format!("http://127.0.0.1:{admin}/health")).await;
    let envoy = Envoy::start(&envoy_bin, &bootstrap, dir.path(), envoy_admin).await;
    let base = format!("http://127.0.0.1:{listen}");
    let diag = || {
        format!(
            "{}\n--- extproc ---\n{}",
            envoy.output(),
            std::fs::read_to_string(&log).unwrap_or_default()
        )
    };

    // 1. The first request assumes the role with the projected token; the simulator
    //    accepts the signature only with the rotated keys and session token.
    let (status, body) = chat(&base).await;
    assert_eq!(status, 200, "{body}\n{}", diag());
    assert!(body.contains("\"choices\""), "{body}");
    assert!(sts.calls.load(Ordering::SeqCst) >= 1);
    let issued = Instant::now();

    // 2. STS goes down while the credential is still valid: requests keep being served.
    sts.outage.store(true, Ordering::SeqCst);
    let before = sts.calls.load(Ordering::SeqCst);
    for _ in 0..3 {
        let (status, body) = chat(&base).await;
        assert_eq!(
            status,
            200,
            "during the outage, before expiry: {body}\n{}",
            diag()
        );
    }
    assert!(
        issued.elapsed() < LIFETIME,
        "the machine is too slow for this test's timing"
    );
    // Refresh ahead of expiry was attempted (and failed) without failing requests.
    assert!(
        sts.calls.load(Ordering::SeqCst) > before,
        "no refresh attempt"
    );

    // 3. Past expiry, still no STS: a 503 naming the policy, and no stale credential.
    tokio::time::sleep((LIFETIME + Duration::from_secs(1)).saturating_sub(issued.elapsed())).await;
    let (status, body) = chat(&base).await;
    assert_eq!(status, 503, "{body}\n{}", diag());
    assert!(body.contains(POLICY), "{body}");
    assert!(!body.contains(SECRET) && !body.contains(SESSION), "{body}");

    // 4. STS is back: after the backoff the next refresh serves again.
    sts.outage.store(false, Ordering::SeqCst);
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let (status, body) = chat(&base).await;
        if status == 200 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "never recovered: {status} {body}\n{}",
            diag()
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}
