//! The `aigw-extproc` binary: the External Processor server, and `envoy-config`, which
//! prints an Envoy bootstrap for the same configuration.

use aigw_core::limits::{DEFAULT_TIMEOUT, LimitStore, RateLimits, RedisStore};
use aigw_extproc::config::load_runtime_with_limits;
use aigw_extproc::credentials::ProviderCache;
use aigw_extproc::envoy::{Options, Plan};
use aigw_extproc::metrics::Metrics;
use aigw_extproc::server::{self, Bound, ListenAddr};
use aigw_extproc::{ExtProcError, Processor, reload};
use arc_swap::ArcSwap;
use clap::{Parser, Subcommand};
use std::io::Write;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::AtomicBool;

#[derive(Debug, Parser)]
#[command(
    name = "aigw-extproc",
    version,
    about = "The aigw AI gateway as an Envoy External Processor: without a command, serves ext_proc (gRPC) for Envoy on --listen, configured with Envoy AI Gateway YAML (--config)",
    after_help = "Pair it with Envoy: `aigw-extproc envoy-config CONFIG --extproc ADDR` prints a bootstrap that sends every AI route through this processor.",
    args_conflicts_with_subcommands = true
)]
struct Cli {
    /// Configuration files or directories (the upstream Kubernetes YAML).
    #[arg(long, short = 'c', env = "AIGW_CONFIG", required = false)]
    config: Vec<PathBuf>,
    /// gRPC listen address: `unix:///path`, `host:port` or `:port`.
    #[arg(long, default_value = ":1063", env = "AIGW_EXTPROC_LISTEN")]
    listen: String,
    /// Admin HTTP address (`/health`, `/metrics`, `/stats`).
    #[arg(long, default_value = "127.0.0.1:1064", env = "AIGW_EXTPROC_ADMIN")]
    admin: String,
    /// Largest gRPC message accepted, in bytes (buffered bodies travel whole).
    #[arg(long, default_value_t = server::DEFAULT_MAX_MESSAGE_SIZE)]
    max_message_size: usize,
    /// Log filter (`info`, `aigw_extproc=debug`, …); `RUST_LOG` wins when set.
    #[arg(long, default_value = "info")]
    log_level: String,
    /// Log as JSON lines.
    #[arg(long)]
    log_json: bool,
    /// Runtime worker threads; 0 picks half the cores (at least one). Envoy multiplexes
    /// each of its workers' streams over one HTTP/2 connection, so more threads than
    /// Envoy workers mostly add cross-thread wake-ups, and Envoy needs cores too.
    #[arg(long, default_value_t = 0, env = "AIGW_EXTPROC_WORKER_THREADS")]
    worker_threads: usize,
    /// Redis for `Global` rate limits (`redis://[:password@]host:port[/db]`), shared
    /// with every aigw-extproc and `aigw run` pointed at it; without it they count per
    /// instance.
    #[arg(long, env = "AIGW_REDIS_URL", hide_env_values = true)]
    redis_url: Option<aigw_core::Secret>,
    /// Serve the configuration's MCPRoutes on this address (Envoy routes their paths
    /// here; `envoy-config --mcp-addr` says so).
    #[arg(long, env = "AIGW_EXTPROC_MCP_ADDR")]
    mcp_addr: Option<SocketAddr>,
    #[command(flatten)]
    mcp: aigw_extproc::mcp::McpArgs,
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Prints an Envoy bootstrap for CONFIG that sends every AI route through this
    /// processor.
    EnvoyConfig {
        /// Configuration files or directories.
        #[arg(required = true)]
        config: Vec<PathBuf>,
        /// Where aigw-extproc listens (`unix:///path` or `host:port`).
        #[arg(long)]
        extproc: String,
        /// Envoy's client listener.
        #[arg(long, default_value = "0.0.0.0:1975")]
        listen: SocketAddr,
        /// Envoy's admin listener.
        #[arg(long)]
        admin: Option<SocketAddr>,
        /// CA bundle for upstream TLS.
        #[arg(long, default_value = "/etc/ssl/certs/ca-certificates.crt")]
        ca_file: String,
        /// Where aigw-extproc serves MCP (its `--mcp-addr`): MCPRoute paths go there.
        #[arg(long)]
        mcp_addr: Option<SocketAddr>,
    },
}

fn init_logging(level: &str, json: bool) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(level));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    if json {
        builder.json().init();
    } else {
        builder.init();
    }
}

fn envoy_config(
    config: &[PathBuf],
    extproc: &str,
    listen: SocketAddr,
    admin: Option<SocketAddr>,
    ca_file: String,
    mcp_addr: Option<SocketAddr>,
) -> Result<(), ExtProcError> {
    let cfg =
        aigw_core::config::Config::load_paths(config).map_err(|source| ExtProcError::Config {
            path: config.first().cloned().unwrap_or_default(),
            source,
        })?;
    let plan = Plan::from_config(&cfg).map_err(|source| ExtProcError::Config {
        path: config.first().cloned().unwrap_or_default(),
        source,
    })?;
    let mut opts = Options::new(ListenAddr::parse(extproc)?);
    opts.listen = listen;
    opts.admin = admin;
    opts.ca_file = ca_file;
    opts.mcp = mcp_addr;
    let out = serde_json::to_string_pretty(&plan.bootstrap(&opts)?)
        .map_err(|e| ExtProcError::EnvoyConfig(e.to_string()))?;
    let mut stdout = std::io::stdout().lock();
    writeln!(stdout, "{out}").map_err(|source| ExtProcError::Io {
        what: "writing",
        addr: "stdout".into(),
        source,
    })
}

fn load_config(paths: &[PathBuf]) -> Result<aigw_core::config::Config, ExtProcError> {
    aigw_core::config::Config::load_paths(paths).map_err(|source| ExtProcError::Config {
        path: paths.first().cloned().unwrap_or_default(),
        source,
    })
}

async fn shutdown_signal() {
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        () = term => {}
    }
}

/// The store of `Global` rate-limit counters: Redis when a URL is given (the password
/// never reaches a log line), else none (they count in process).
fn global_store(
    url: Option<&aigw_core::Secret>,
) -> Result<Option<Arc<dyn LimitStore>>, ExtProcError> {
    let Some(url) = url else {
        return Ok(None);
    };
    let store =
        RedisStore::new(url, DEFAULT_TIMEOUT).map_err(|e| ExtProcError::Redis(e.to_string()))?;
    tracing::info!(
        redis = store.display_url(),
        "global rate limits counted in Redis"
    );
    Ok(Some(Arc::new(store)))
}

async fn serve(cli: Cli) -> Result<(), ExtProcError> {
    if cli.config.is_empty() {
        return Err(ExtProcError::InvalidAddress {
            addr: "--config is required".into(),
        });
    }
    let providers = Arc::new(ProviderCache::default());
    let limits = Arc::new(RateLimits::new(global_store(cli.redis_url.as_ref())?));
    let runtime =
        load_runtime_with_limits(&cli.config, Some(&providers), &limits).map_err(|source| {
            ExtProcError::Config {
                path: cli.config[0].clone(),
                source,
            }
        })?;
    let runtime = Arc::new(ArcSwap::from_pointee(runtime));
    let metrics = Arc::new(Metrics::default());
    metrics.set_rate_limit_stats(limits.stats().clone());
    let processor = Processor::new(runtime.clone(), metrics.clone());
    let ready = Arc::new(AtomicBool::new(false));

    let listen = ListenAddr::parse(&cli.listen)?;
    let bound = Bound::bind(&listen).await?;
    let admin_addr = ListenAddr::parse(&cli.admin)?;
    let ListenAddr::Tcp(admin_addr) = admin_addr else {
        return Err(ExtProcError::InvalidAddress { addr: cli.admin });
    };
    let admin = tokio::net::TcpListener::bind(admin_addr)
        .await
        .map_err(|source| ExtProcError::Io {
            what: "binding",
            addr: admin_addr.to_string(),
            source,
        })?;
    tokio::spawn(reload::watch(
        cli.config.clone(),
        runtime,
        reload::DEFAULT_INTERVAL,
        move |paths: &[PathBuf]| load_runtime_with_limits(paths, Some(&providers), &limits),
    ));
    tokio::spawn(server::serve_admin(
        admin,
        server::admin_router(metrics.clone(), ready.clone()),
        shutdown_signal(),
    ));
    if let Some(addr) = cli.mcp_addr {
        aigw_extproc::mcp::spawn(addr, &cli.config, &cli.mcp, &metrics, shutdown_signal()).await?;
    } else if !load_config(&cli.config)?.mcp_routes.is_empty() {
        tracing::warn!("the configuration has MCPRoutes but no --mcp-addr: they are not served");
    }
    tracing::info!(listen = %listen, admin = %admin_addr, "aigw-extproc is ready");
    server::serve_grpc(
        bound,
        processor,
        cli.max_message_size,
        ready,
        shutdown_signal(),
    )
    .await
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    init_logging(&cli.log_level, cli.log_json);
    let result = match cli.command {
        Some(Command::EnvoyConfig {
            config,
            extproc,
            listen,
            admin,
            ca_file,
            mcp_addr,
        }) => envoy_config(&config, &extproc, listen, admin, ca_file, mcp_addr),
        None => {
            let mut rt = tokio::runtime::Builder::new_multi_thread();
            let threads = match cli.worker_threads {
                0 => std::thread::available_parallelism().map_or(1, |n| (n.get() / 2).max(1)),
                n => n,
            };
            rt.worker_threads(threads);
            rt.enable_all()
                .build()
                .map_err(|source| ExtProcError::Io {
                    what: "starting the runtime",
                    addr: String::new(),
                    source,
                })
                .and_then(|rt| rt.block_on(serve(cli)))
        }
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!(error = %e, "aigw-extproc failed");
            ExitCode::FAILURE
        }
    }
}
