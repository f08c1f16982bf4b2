//! `aigw-operator`: the Kubernetes control plane of aigw.
#![allow(clippy::print_stderr)]

use clap::{Parser, Subcommand};
use std::io::Write as _;
use std::process::ExitCode;

/// The Kubernetes control plane of aigw.
#[derive(Debug, Parser)]
#[command(version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Print the CustomResourceDefinitions of the aigateway.envoyproxy.io kinds.
    Crds,
    /// Print every object the controller would write for these manifests.
    Render {
        /// Files or directories (`*.yaml`, `*.yml`, recursively).
        #[arg(short = 'f', long = "filename", required = true)]
        files: Vec<std::path::PathBuf>,
        /// Path prefix of the generated route matches.
        #[arg(long, default_value = "/")]
        root_prefix: String,
        /// Namespace of the ExtProc configuration Secrets (where the Envoy pods run);
        /// empty for the Gateway's own namespace.
        #[arg(long, default_value = "envoy-gateway-system")]
        config_namespace: String,
    },
    /// Run the controller against the cluster of the current kubeconfig or service account.
    Run(Box<RunArgs>),
}

#[derive(Debug, clap::Args)]
struct RunArgs {
    /// Path prefix of the generated route matches.
    #[arg(long, default_value = "/")]
    root_prefix: String,
    /// Namespace of the ExtProc configuration Secrets (where the Envoy pods run).
    #[arg(
        long,
        env = "AIGW_CONFIG_NAMESPACE",
        default_value = "envoy-gateway-system"
    )]
    config_namespace: String,
    /// Address of `/metrics`, `/healthz` and `/readyz`.
    #[arg(long, default_value = "0.0.0.0:8080")]
    metrics_addr: std::net::SocketAddr,
    /// Elect a leader on a Lease so several replicas can run.
    #[arg(long)]
    leader_elect: bool,
    /// Namespace of the Lease.
    #[arg(long, env = "POD_NAMESPACE", default_value = "aigw-system")]
    lease_namespace: String,
    /// This replica's identity in the Lease.
    #[arg(long, env = "POD_NAME", default_value = "aigw-operator")]
    identity: String,
    /// Serve the sidecar-injection webhook (HTTPS) on this address.
    #[arg(long)]
    webhook_addr: Option<std::net::SocketAddr>,
    /// PEM certificate chain of the webhook.
    #[arg(long, default_value = "/etc/aigw-webhook/tls.crt")]
    webhook_cert: std::path::PathBuf,
    /// PEM private key of the webhook.
    #[arg(long, default_value = "/etc/aigw-webhook/tls.key")]
    webhook_key: std::path::PathBuf,
    /// Image of the injected aigw-extproc sidecar when no GatewayConfig names one.
    #[arg(long, default_value = "aigw-extproc:0.1.0")]
    extproc_image: String,
    /// Secret in the Envoy pods' namespace holding the MCP session-encryption seed (key
    /// `seed`) and, during a rotation, the previous one (key `fallbackSeed`): every
    /// sidecar reads them as environment variables, so MCP sessions continue across
    /// Envoy replicas and restarts (upstream's `--mcpSessionEncryptionSeed` /
    /// `--mcpFallbackSessionEncryptionSeed`, kept out of pod specs); empty for none.
    #[arg(long, default_value = aigw_operator::sidecar::DEFAULT_MCP_SESSION_SECRET)]
    mcp_session_secret: String,
    /// PBKDF2 iterations the sidecars derive the MCP session key with (upstream's
    /// `--mcpSessionEncryptionIterations`; the sidecar's default is 100000).
    #[arg(long, value_parser = clap::value_parser!(u32).range(1..))]
    mcp_session_iterations: Option<u32>,
    /// Serve the Envoy Gateway Extension Server (gRPC, PostTranslateModify) on this address.
    #[arg(long, default_value = "0.0.0.0:1063")]
    extension_server_addr: std::net::SocketAddr,
    /// Unix socket of the ExtProc sidecar, as the extension server's UDS cluster names it.
    #[arg(long, default_value = aigw_operator::extension::DEFAULT_UDS_PATH)]
    extproc_uds_path: String,
    /// Request headers named in access logs, metrics and spans: `header:attribute,…`
    /// (upstream's `--requestHeaderAttributes`).
    #[arg(long)]
    request_header_attributes: Option<String>,
    /// Request headers named in access logs, over `--request-header-attributes`:
    /// `header:attribute,…`; default `agent-session-id:session.id`, empty for none
    /// (upstream's `--logRequestHeaderAttributes`).
    #[arg(long)]
    log_request_header_attributes: Option<String>,
    /// Log filter (`info`, `aigw_operator=debug`, …).
    #[arg(long, default_value = "info")]
    log: String,
}

async fn serve_metrics(
    addr: std::net::SocketAddr,
    metrics: aigw_operator::controller::metrics::Metrics,
) -> std::io::Result<()> {
    use axum::routing::get;
    let app = axum::Router::new()
        .route(
            "/metrics",
            get(move || {
                let m = metrics.clone();
                async move { m.render() }
            }),
        )
        .route("/healthz", get(|| async { "ok" }))
        .route("/readyz", get(|| async { "ok" }));
    let listener = tokio::net::TcpListener::bind(addr).await?;
    axum::serve(listener, app).await
}

async fn shutdown_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        if let Ok(mut term) =
            tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        {
            tokio::select! {
                _ = ctrl_c => {}
                _ = term.recv() => {}
            }
            return;
        }
    }
    let _ = ctrl_c.await;
}

async fn run(args: RunArgs) -> Result<(), String> {
    use aigw_operator::controller::{self, Context, lease::Elector, metrics::Metrics};
    use std::sync::Arc;
    let client = kube::Client::try_default()
        .await
        .map_err(|e| format!("Kubernetes client: {e}"))?;
    let metrics = Metrics::default();
    let server = tokio::spawn(serve_metrics(args.metrics_addr, metrics.clone()));
    let options = aigw_operator::render::Options {
        root_prefix: args.root_prefix.clone(),
        config_namespace: Some(args.config_namespace.clone()).filter(|n| !n.is_empty()),
        ..Default::default()
    };
    let ctx = Arc::new(Context::new(client.clone(), options, metrics));
    // The webhook answers on every replica (admission must not wait for an election).
    let webhook = match args.webhook_addr {
        Some(addr) => Some(
            start_webhook(
                addr,
                &args.webhook_cert,
                &args.webhook_key,
                sidecar_options(&args),
                client.clone(),
            )
            .await?,
        ),
        None => None,
    };
    // Envoy Gateway calls the extension server on every translation: every replica serves it.
    let log_header_attributes = aigw_operator::extension::header_attributes::resolve(
        args.request_header_attributes.as_deref(),
        args.log_request_header_attributes.as_deref(),
    )
    .map_err(|e| e.to_string())?;
    let extension = start_extension_server(
        args.extension_server_addr,
        aigw_operator::extension::modify::Options {
            uds_path: args.extproc_uds_path.clone(),
            log_header_attributes,
        },
        client.clone(),
    )
    .await?;
    if args.leader_elect {
        let api = kube::Api::namespaced(client, &args.lease_namespace);
        let elector = Elector::new(
            api,
            "aigw-operator",
            &args.identity,
            std::time::Duration::from_secs(15),
        );
        tracing::info!(identity = %args.identity, "waiting for leadership");
        tokio::select! {
            _ = elector.acquire() => {}
            _ = shutdown_signal() => return Ok(()),
        }
        tracing::info!(identity = %args.identity, "leading");
        tokio::select! {
            _ = controller::run(ctx, shutdown_signal()) => {}
            _ = elector.hold() => return Err("leadership lost; exiting so that only the leader reconciles".into()),
        }
    } else {
        controller::run(ctx, shutdown_signal()).await;
    }
    server.abort();
    extension.abort();
    if let Some(w) = webhook {
        w.abort();
    }
    Ok(())
}

async fn start_extension_server(
    addr: std::net::SocketAddr,
    options: aigw_operator::extension::modify::Options,
    client: kube::Client,
) -> Result<tokio::task::JoinHandle<()>, String> {
    use aigw_operator::extension::server::ExtensionServer;
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .map_err(|e| format!("extension server {addr}: {e}"))?;
    let service = ExtensionServer::new(client, options).into_service();
    tracing::info!(%addr, "extension server listening");
    Ok(tokio::spawn(async move {
        let incoming = tokio_stream::wrappers::TcpListenerStream::new(listener);
        if let Err(e) = tonic::transport::Server::builder()
            .add_service(service)
            .serve_with_incoming(incoming)
            .await
        {
            tracing::error!(error = %e, "extension server stopped");
        }
    }))
}

fn sidecar_options(args: &RunArgs) -> aigw_operator::sidecar::SidecarOptions {
    use aigw_operator::sidecar::{McpSession, SidecarOptions};
    SidecarOptions {
        image: args.extproc_image.clone(),
        mcp_session: McpSession {
            secret: Some(args.mcp_session_secret.clone()).filter(|s| !s.is_empty()),
            iterations: args.mcp_session_iterations,
        },
        ..SidecarOptions::default()
    }
}

async fn start_webhook(
    addr: std::net::SocketAddr,
    cert: &std::path::Path,
    key: &std::path::Path,
    options: aigw_operator::sidecar::SidecarOptions,
    client: kube::Client,
) -> Result<tokio::task::JoinHandle<()>, String> {
    use aigw_operator::{controller, webhook};
    use std::sync::Arc;
    let read = |p: &std::path::Path| std::fs::read(p).map_err(|e| format!("{}: {e}", p.display()));
    let tls = webhook::tls_config(&read(cert)?, &read(key)?)?;
    let source: webhook::Source = Arc::new(move || {
        let client = client.clone();
        Box::pin(async move {
            let docs = controller::snapshot(&client).await.ok()?;
            controller::accept::load_accepting(docs).0
        })
    });
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .map_err(|e| format!("webhook {addr}: {e}"))?;
    Ok(tokio::spawn(webhook::serve(
        listener,
        tls,
        webhook::router(source, options),
    )))
}

fn render(
    files: &[std::path::PathBuf],
    root_prefix: String,
    config_namespace: String,
) -> aigw_operator::Result<String> {
    use aigw_operator::render;
    let manifests = render::Manifests::load(files)?;
    for w in manifests.config.warnings() {
        eprintln!("warning: {w}");
    }
    let opts = render::Options {
        root_prefix,
        config_namespace: Some(config_namespace).filter(|n| !n.is_empty()),
        ..render::Options::default()
    };
    let out = render::render(&manifests, &opts)?;
    for w in &out.warnings {
        eprintln!("warning: {w}");
    }
    render::to_yaml(&out.objects)
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let out = match cli.command {
        Command::Crds => aigw_operator::crd::all().and_then(|c| aigw_operator::crd::to_yaml(&c)),
        Command::Render {
            files,
            root_prefix,
            config_namespace,
        } => render(&files, root_prefix, config_namespace),
        Command::Run(args) => {
            let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
            let filter = tracing_subscriber::EnvFilter::try_new(&args.log)
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
            tracing_subscriber::fmt()
                .with_env_filter(filter)
                .json()
                .init();
            let runtime = match tokio::runtime::Builder::new_multi_thread()
                .enable_all()
                .build()
            {
                Ok(r) => r,
                Err(e) => {
                    eprintln!("aigw-operator: cannot start the runtime: {e}");
                    return ExitCode::FAILURE;
                }
            };
            return match runtime.block_on(run(*args)) {
                Ok(()) => ExitCode::SUCCESS,
                Err(e) => {
                    eprintln!("aigw-operator: {e}");
                    ExitCode::FAILURE
                }
            };
        }
    };
    match out {
        Ok(text) => {
            let mut stdout = std::io::stdout().lock();
            if stdout.write_all(text.as_bytes()).is_err() {
                return ExitCode::FAILURE;
            }
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("aigw-operator: {e}");
            ExitCode::FAILURE
        }
    }
}
