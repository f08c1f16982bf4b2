//! Mounts the aigw gateway inside an existing axum application.
//!
//! The application has its own routes and its own authentication (a bearer token checked
//! by a middleware); the gateway is mounted under `/ai`, behind that middleware, and
//! routes to the bundled provider simulator running in-process, so the example needs no
//! provider keys and no network.
//!
//! ```text
//! cargo run -p embed-axum            # serves on 127.0.0.1:3000 until Ctrl-C
//! cargo run -p embed-axum -- --smoke # serves one request in-process and exits 0
//! cargo run -p embed-axum -- --mcp mcp.yaml --listen 127.0.0.1:3001
//!                                    # also serves the MCPRoutes of mcp.yaml
//! curl -H 'authorization: Bearer app-secret' localhost:3000/ai/v1/chat/completions \
//!      -d '{"model":"gpt-4o-mini","messages":[{"role":"user","content":"hi"}]}'
//! ```
#![allow(clippy::print_stdout, clippy::print_stderr)]

use aigw_axum::simulator::{AwsCredentials, Simulator, SimulatorConfig};
use aigw_axum::{Gateway, autoconfig, config, credentials};
use axum::Router;
use axum::body::Body;
use axum::extract::Request;
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use http::{StatusCode, header};
use http_body_util::BodyExt;
use std::process::ExitCode;
use std::sync::Arc;
use tower::ServiceExt;

/// The application's own token; a real application checks its sessions or JWTs here.
const APP_TOKEN: &str = "Bearer app-secret";

/// The application's authentication, in front of everything under `/ai`.
async fn app_auth(request: Request, next: Next) -> Response {
    let ok = request
        .headers()
        .get(header::AUTHORIZATION)
        .is_some_and(|v| v.as_bytes() == APP_TOKEN.as_bytes());
    if ok {
        next.run(request).await
    } else {
        (
            StatusCode::UNAUTHORIZED,
            "this application needs its token\n",
        )
            .into_response()
    }
}

/// Starts the simulator on a loopback port and builds a gateway routing to it, with
/// its spans going where `telemetry` sends them.
async fn gateway(telemetry: aigw_core::telemetry::Telemetry) -> Result<Gateway, String> {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .map_err(|e| e.to_string())?;
    let addr = listener.local_addr().map_err(|e| e.to_string())?;
    let sim = Simulator::new(
        SimulatorConfig::default()
            .with_openai_keys([autoconfig::SIM_OPENAI_KEY])
            .with_anthropic_keys([autoconfig::SIM_ANTHROPIC_KEY])
            .with_aws(AwsCredentials::new(
                autoconfig::SIM_AWS_ACCESS_KEY_ID,
                autoconfig::SIM_AWS_SECRET_KEY,
                autoconfig::SIM_AWS_REGION,
            )),
    );
    tokio::spawn(sim.serve(listener, std::future::pending()));

    // Any AIGatewayRoute YAML works here; the simulator's is generated.
    let yaml = autoconfig::simulator(addr).yaml;
    let cfg =
        aigw_core::config::Config::from_yaml_str(&yaml, "example").map_err(|e| e.to_string())?;
    let snapshot = config::snapshot(
        &cfg,
        Arc::new(aigw_providers::ProviderFactory),
        &credentials::default_resolver(),
    )
    .map_err(|e| e.to_string())?;
    Gateway::builder(snapshot)
        .telemetry(telemetry)
        .build()
        .map_err(|e| e.to_string())
}

/// The existing application, with the gateway mounted under `/ai`.
fn app(gateway: &Gateway) -> Router {
    Router::new()
        .route("/", get(|| async { "the existing application\n" }))
        .nest_service("/ai", gateway.router().layer(middleware::from_fn(app_auth)))
}

/// The MCP gateway for the MCPRoutes of a YAML file, mounted at each route's path beside
/// the application's routes. MCPRoutes carry their own client authentication (OAuth),
/// so they are not behind the application's middleware.
fn mount_mcp(
    app: Router,
    path: &str,
    telemetry: aigw_core::telemetry::Telemetry,
) -> Result<Router, String> {
    use aigw_core::mcp::{McpGateway, McpService, McpSettings, SessionCrypto};
    let cfg = aigw_core::config::Config::load_paths(&[path]).map_err(|e| e.to_string())?;
    let upstream =
        aigw_axum::mcp::HyperUpstream::new(Default::default()).map_err(|e| e.to_string())?;
    // A real deployment takes the seed from its secret store, the same on every replica.
    let crypto = SessionCrypto::random();
    let secrets = aigw_core::config::SecretSource::from_config(&cfg);
    let gateway = McpGateway::new(
        &cfg,
        &secrets,
        crypto,
        McpSettings {
            telemetry,
            ..McpSettings::default()
        },
        Arc::new(upstream),
    )
    .map_err(|e| e.to_string())?;
    let paths: Vec<String> = gateway
        .routes()
        .iter()
        .map(|r| r.path().to_string())
        .collect();
    let mcp = McpService::new(gateway);
    Ok(paths
        .iter()
        .fold(app, |app, p| app.route_service(p, mcp.clone())))
}

fn arg(name: &str) -> Option<String> {
    let args: Vec<String> = std::env::args().collect();
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1).cloned())
}

async fn smoke(app: Router) -> Result<(), String> {
    let chat = serde_json::json!({
        "model": "gpt-4o-mini",
        "messages": [{"role": "user", "content": "hello from the example"}],
    })
    .to_string();
    let request = |auth: Option<&str>| {
        let mut b = http::Request::post("/ai/v1/chat/completions")
            .header(header::CONTENT_TYPE, "application/json");
        if let Some(a) = auth {
            b = b.header(header::AUTHORIZATION, a);
        }
        b.body(Body::from(chat.clone())).map_err(|e| e.to_string())
    };

    let denied = app
        .clone()
        .oneshot(request(None)?)
        .await
        .map_err(|e| e.to_string())?;
    if denied.status() != StatusCode::UNAUTHORIZED {
        return Err(format!(
            "expected 401 without the app token, got {}",
            denied.status()
        ));
    }

    let response = app
        .oneshot(request(Some(APP_TOKEN))?)
        .await
        .map_err(|e| e.to_string())?;
    let status = response.status();
    let body = response
        .into_body()
        .collect()
        .await
        .map_err(|e| e.to_string())?
        .to_bytes();
    let v: serde_json::Value = serde_json::from_slice(&body).map_err(|e| e.to_string())?;
    let text = v["choices"][0]["message"]["content"].as_str().unwrap_or("");
    if status != StatusCode::OK || !text.contains("simulator") {
        return Err(format!("unexpected reply {status}: {v}"));
    }
    println!("smoke ok: {text}");
    Ok(())
}

#[tokio::main]
async fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .init();
    let result = async {
        // Spans (LLM and MCP requests) over OTLP when the standard `OTEL_*` settings ask
        // for them; nothing otherwise.
        let exporters = aigw_core::telemetry::Exporters::from_env()?;
        let gateway = gateway(exporters.telemetry()).await?;
        let mut app = app(&gateway);
        if std::env::args().any(|a| a == "--smoke") {
            return smoke(app).await;
        }
        if let Some(mcp) = arg("--mcp") {
            app = mount_mcp(app, &mcp, exporters.telemetry())?;
        }
        let listen = arg("--listen").unwrap_or_else(|| "127.0.0.1:3000".into());
        let listener = tokio::net::TcpListener::bind(&listen)
            .await
            .map_err(|e| e.to_string())?;
        println!("listening on http://{listen} (gateway under /ai)");
        axum::serve(aigw_axum::net::nodelay(listener), app)
            .await
            .map_err(|e| e.to_string())
    }
    .await;
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("embed-axum: {e}");
            ExitCode::FAILURE
        }
    }
}
