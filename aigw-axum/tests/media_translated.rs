//! Images, rerank and tokenize translated to backends that have the capability in their
//! own shape, end to end: the official `openai` SDK's `images.generate` and the `cohere`
//! SDK's `v2.rerank` (plus vLLM-shaped `POST /tokenize`) through `aigw run` to
//! `aigw simulate`, which checks each provider's wire strictly.
//!
//! Bedrock requests (Titan Image and Stability on InvokeModel, the Agent Runtime
//! `Rerank`, `CountTokens`) go through a hop that recomputes every SigV4 signature with
//! botocore and validates every body against botocore's service models
//! (`bedrock-runtime`, `bedrock-agent-runtime`); Vertex AI (Imagen `:predict`, the
//! Ranking API, Gemini `countTokens`) gets a token from a service-account exchange and
//! the `/v1/projects/{p}/locations/{l}` path.
//!
//! Needs `AIGW_PYTHON` (the test venv), set by `scripts/test.sh`; skipped with a note
//! when missing, unless `AIGW_REQUIRE_EXTERNAL=1`.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::print_stderr,
    missing_docs
)]

mod peers;
use peers::{aigw_run, backend, botocore_checker, external, policy, secret, simulator_process};
use std::net::SocketAddr;
use std::path::Path;
use std::process::Command;

const AWS_KEY: &str = "AKIDMEDIATEST";
const AWS_SECRET: &str = "media-test-secret";
const REGION: &str = "us-west-2";
const RERANK_ARN: &str = "arn:aws:bedrock:us-west-2::foundation-model/cohere.rerank-v3-5:0";

/// (model the client sends, backend, modelNameOverride).
const RULES: [(&str, &str, Option<&str>); 9] = [
    ("amazon.titan-image-generator-v2:0", "bedrock", None),
    ("stability.sd3-5-large-v1:0", "bedrock", None),
    ("imagen-4.0-generate-001", "vertex", None),
    ("rerank-v3.5", "bedrock-agent", Some(RERANK_ARN)),
    ("cohere.rerank-v3-5:0", "bedrock-agent", None),
    ("semantic-ranker-default-004", "ranking", None),
    ("claude-sonnet-4-5", "anthropic", None),
    ("anthropic.claude-sonnet-4-5-20250929-v1:0", "bedrock", None),
    ("gemini-2.5-flash", "vertex", None),
];

fn gcp_key(checker: SocketAddr) -> String {
    let pem = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../aigw-auth/tests/fixtures/test-rsa-key.pem"),
    )
    .unwrap();
    serde_json::json!({
        "type": "service_account",
        "project_id": "media-project",
        "private_key_id": "test",
        "private_key": pem,
        "client_email": "gateway@media-project.iam.gserviceaccount.com",
        "token_uri": format!("http://{checker}/token"),
    })
    .to_string()
}

fn config(sim: SocketAddr, checker: SocketAddr) -> String {
    let mut y = String::new();
    for (name, schema, addr) in [
        ("bedrock", "AWSBedrock", checker),
        // The Agent Runtime host (bedrock-agent-runtime.{region}.amazonaws.com in AWS).
        ("bedrock-agent", "AWSBedrock", checker),
        ("vertex", "GCPVertexAI", sim),
        // The Ranking API host (discoveryengine.googleapis.com in GCP).
        ("ranking", "GCPVertexAI", sim),
        ("anthropic", "Anthropic", sim),
    ] {
        y.push_str(&backend(name, schema, addr));
    }
    y.push_str(&secret("sim-key", "apiKey", "sk-simulated"));
    y.push_str(&policy(
        "anthropic-key",
        &["anthropic"],
        "  type: AnthropicAPIKey\n  anthropicAPIKey:\n    secretRef:\n      name: sim-key\n",
    ));
    y.push_str(&secret(
        "aws",
        "credentials",
        &format!(
            "[default]\naws_access_key_id = {AWS_KEY}\naws_secret_access_key = {AWS_SECRET}\n"
        ),
    ));
    y.push_str(&policy(
        "aws",
        &["bedrock", "bedrock-agent"],
        &format!("  type: AWSCredentials\n  awsCredentials:\n    region: {REGION}\n    credentialsFile:\n      secretRef:\n        name: aws\n"),
    ));
    y.push_str(&secret("gcp", "service_account.json", &gcp_key(checker)));
    for (name, target, region) in [
        ("gcp", "vertex", "us-central1"),
        ("gcp-ranking", "ranking", "global"),
    ] {
        y.push_str(&policy(
            name,
            &[target],
            &format!("  type: GCPCredentials\n  gcpCredentials:\n    projectName: media-project\n    region: {region}\n    credentialsFile:\n      secretRef:\n        name: gcp\n"),
        ));
    }
    let rules: String = RULES
        .iter()
        .map(|(model, backend, ovr)| {
            let ovr = ovr
                .map(|m| format!("          modelNameOverride: \"{m}\"\n"))
                .unwrap_or_default();
            format!(
                "    - matches:\n        - headers:\n            - type: Exact\n              name: x-ai-eg-model\n              value: \"{model}\"\n      backendRefs:\n        - name: {backend}\n{ovr}"
            )
        })
        .collect();
    y.push_str(&format!(
        "---\napiVersion: aigateway.envoyproxy.io/v1beta1\nkind: AIGatewayRoute\nmetadata:\n  name: media\n  namespace: default\nspec:\n  rules:\n{rules}"
    ));
    y
}

const SCRIPT: &str = r#"
import base64, json, sys
import cohere, openai, requests
b = sys.argv[1]
o = openai.OpenAI(base_url=b + "/v1", api_key="k", max_retries=0)
c = cohere.ClientV2(api_key="k", base_url=b + "/cohere")
out = {}
def png(img):
    return base64.b64decode(img.b64_json).startswith(b"\x89PNG")
r = o.images.generate(model="amazon.titan-image-generator-v2:0", prompt="a lighthouse", n=2,
                      size="1024x1024", quality="hd")
out["titan"] = {"count": len(r.data), "png": all(png(d) for d in r.data), "format": r.output_format}
r = o.images.generate(model="stability.sd3-5-large-v1:0", prompt="a lighthouse", size="1536x1024")
out["stability"] = {"count": len(r.data), "png": all(png(d) for d in r.data)}
r = o.images.generate(model="imagen-4.0-generate-001", prompt="a lighthouse", n=2, size="1408x768")
out["imagen"] = {"count": len(r.data), "png": all(png(d) for d in r.data),
                 "revised": r.data[0].revised_prompt}
docs = ["Carson City is the capital city of Nevada.",
        "Washington, D.C. is the capital of the United States.",
        "Capital punishment has existed in the United States since colonial times."]
q = "capital of the United States"
rr = c.v2.rerank(model="rerank-v3.5", query=q, documents=docs, top_n=2)
out["bedrock_rerank"] = {"order": [x.index for x in rr.results], "id": rr.id,
                         "units": rr.meta.billed_units.search_units}
rr = c.v2.rerank(model="semantic-ranker-default-004", query=q, documents=docs, top_n=2)
out["vertex_rerank"] = {"order": [x.index for x in rr.results]}
try:
    c.v2.rerank(model="cohere.rerank-v3-5:0", query=q, documents=docs)
    out["not_an_arn"] = {"status": 200}
except Exception as e:
    out["not_an_arn"] = {"status": e.status_code, "body": json.dumps(e.body)}
for m in ["claude-sonnet-4-5", "anthropic.claude-sonnet-4-5-20250929-v1:0", "gemini-2.5-flash"]:
    t = requests.post(b + "/tokenize", json={"model": m, "prompt": "the quick brown fox jumps"})
    out["tokenize " + m] = {"status": t.status_code, "body": t.json()}
print(json.dumps(out))
"#;

#[test]
fn images_rerank_and_tokenize_translated_with_the_official_sdks() {
    let Some(python) = external("AIGW_PYTHON") else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let aigw = Path::new(env!("CARGO_BIN_EXE_aigw"));
    let (_sim, sim) = simulator_process(aigw);
    let checks = dir.path().join("bedrock-checks.jsonl");
    let (_checker, checker) =
        botocore_checker(&python, sim, (AWS_KEY, AWS_SECRET, REGION), &checks);
    let cfg = dir.path().join("aigw.yaml");
    std::fs::write(&cfg, config(sim, checker)).unwrap();
    let log = dir.path().join("gateway.log");
    let (gw, listen, admin) = aigw_run(aigw, &cfg, &log);
    let out = Command::new(&python)
        .args(["-c", SCRIPT, &format!("http://{listen}")])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}\n{}\ngateway log:\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr),
        std::fs::read_to_string(&log).unwrap_or_default()
    );
    let r: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let metrics = http_get(admin, "/metrics");
    drop(gw);
    images_are_metered(&std::fs::read_to_string(&log).unwrap(), &metrics);

    assert_eq!(r["titan"]["count"], 2, "{r}");
    assert_eq!(r["titan"]["png"], true, "{r}");
    assert_eq!(r["titan"]["format"], "png", "{r}");
    assert_eq!(r["stability"]["count"], 1, "{r}");
    assert_eq!(r["imagen"]["count"], 2, "{r}");
    assert_eq!(r["imagen"]["png"], true, "{r}");
    assert_eq!(r["imagen"]["revised"], "a lighthouse, simulated", "{r}");
    assert_eq!(
        r["bedrock_rerank"]["order"],
        serde_json::json!([1, 2]),
        "{r}"
    );
    assert_eq!(r["bedrock_rerank"]["units"], 1.0, "{r}");
    // The id is the Agent Runtime's request id.
    assert_eq!(r["bedrock_rerank"]["id"].as_str().unwrap().len(), 16, "{r}");
    assert_eq!(
        r["vertex_rerank"]["order"],
        serde_json::json!([1, 2]),
        "{r}"
    );
    assert_eq!(r["not_an_arn"]["status"], 422, "{r}");
    assert!(
        r["not_an_arn"]["body"].as_str().unwrap().contains("ARN"),
        "{r}"
    );
    for m in [
        "claude-sonnet-4-5",
        "anthropic.claude-sonnet-4-5-20250929-v1:0",
        "gemini-2.5-flash",
    ] {
        let t = &r[format!("tokenize {m}")];
        assert_eq!(t["status"], 200, "{r}");
        assert!(t["body"]["count"].as_u64().unwrap() > 0, "{r}");
        assert_eq!(t["body"]["tokens"], serde_json::json!([]), "{r}");
    }

    // Every Bedrock request was signed as AWS verifies it, and its body is one the
    // service models accept.
    let lines: Vec<serde_json::Value> = std::fs::read_to_string(&checks)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    for (op, n) in [("InvokeModel", 2), ("Rerank", 1), ("CountTokens", 1)] {
        assert_eq!(
            lines.iter().filter(|l| l["op"] == op).count(),
            n,
            "{op}: {lines:?}"
        );
    }
    for l in &lines {
        assert_eq!(l["sigv4"], true, "{l}");
        assert_eq!(l["errors"], "", "{l}");
    }
}

fn http_get(addr: SocketAddr, path: &str) -> String {
    use std::io::{Read as _, Write as _};
    let mut s = std::net::TcpStream::connect(addr).unwrap();
    write!(
        s,
        "GET {path} HTTP/1.1\r\nhost: a\r\nconnection: close\r\n\r\n"
    )
    .unwrap();
    let mut out = String::new();
    s.read_to_string(&mut out).unwrap();
    out
}

/// Image models bill per image: each translated generation's access-log line carries the
/// number of images returned (Titan 2, Stability 1, Imagen 2), and
/// `aigw_generated_images_total` adds them up per provider.
fn images_are_metered(log: &str, metrics: &str) {
    for (model, n) in [
        ("amazon.titan-image-generator-v2:0", 2),
        ("stability.sd3-5-large-v1:0", 1),
        ("imagen-4.0-generate-001", 2),
    ] {
        let line = log
            .lines()
            .find(|l| l.contains("aigw::access") && l.contains(&format!("request_model={model}")))
            .unwrap_or_else(|| panic!("no access log line for {model}:\n{log}"));
        assert!(line.contains(&format!(" images={n}")), "{line}");
    }
    let count = |provider: &str| -> f64 {
        metrics
            .lines()
            .filter(|l| {
                l.starts_with("aigw_generated_images_total{")
                    && l.contains(&format!("gen_ai_provider_name=\"{provider}\""))
            })
            .map(|l| l.rsplit(' ').next().unwrap().parse::<f64>().unwrap())
            .sum()
    };
    assert_eq!(count("aws.bedrock"), 3.0, "{metrics}");
    assert_eq!(count("gcp.vertex_ai"), 2.0, "{metrics}");
}
