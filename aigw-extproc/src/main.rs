//! The `aigw-extproc` binary: the External Processor server, and `envoy-config`, which
//! prints an Envoy bootstrap for the same configuration.

use aigw_core::filterapi;
use aigw_core::limits::{LimitStore, RateLimits, RedisStore};
use aigw_extproc::config::{load_filter_runtime, load_runtime_with_limits};
use aigw_extproc::credentials::ProviderCache;
use aigw_extproc::envoy::{Options, Plan};
use aigw_extproc::metrics::Metrics;
use aigw_extproc::server::{self, Bound, ListenAddr};
use aigw_extproc::upstream_flags::{self, UpstreamFlags};
use aigw_extproc::{ExtProcError, Processor, reload};
use arc_swap::ArcSwap;
use clap::{Parser, Subcommand};
use std::io::Write;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::AtomicBool;

/// jemalloc with background threads purging freed pages (after its 10 s decay), so RSS
/// returns towards its idle figure after a burst of streams.
#[cfg(feature = "jemalloc")]
#[global_allocator]
static ALLOCATOR: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

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
    /// Write the audit trail (configuration loads and reloads) as JSON lines to FILE,
    /// or `-` for standard output.
    #[arg(long, env = "AIGW_AUDIT_LOG", value_name = "FILE")]
    audit_log: Option<String>,
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
    /// A path prefix before every endpoint (upstream's `-rootPrefix`), e.g. `/ai`.
    #[arg(long, default_value = "/", env = "AIGW_ROOT_PREFIX")]
    root_prefix: String,
    /// Per-family endpoint prefixes after the root prefix (upstream's
    /// `-endpointPrefixes`): `openai:/,cohere:/cohere,anthropic:/anthropic`.
    #[arg(long, default_value = "", env = "AIGW_ENDPOINT_PREFIXES")]
    endpoint_prefixes: String,
    /// Redis for `Global` rate limits and the Responses API conversation store
    /// (`redis://[:password@]host:port[/db]`), shared with every aigw-extproc and
    /// `aigw run` pointed at it; without it both are per instance.
    #[arg(long, env = "AIGW_REDIS_URL", hide_env_values = true)]
    redis_url: Option<aigw_core::Secret>,
    /// Longest wait for one Redis call on the request path; beyond it the limit's
    /// failure mode applies (fail open unless configured closed).
    #[arg(long, env = "AIGW_REDIS_TIMEOUT", default_value = "50ms", value_parser = redis_timeout)]
    redis_timeout: std::time::Duration,
    /// Require a gateway-issued virtual key (`sk-aigw-…`) on every request, checked here
    /// (401 as an immediate response); keys live in Redis with `--redis-url`, else in
    /// `--virtual-keys-file`, and are administered through `aigw run`'s admin API on
    /// the same store.
    #[arg(long, env = "AIGW_VIRTUAL_KEYS")]
    virtual_keys: bool,
    /// The JSON file of virtual keys without Redis.
    #[arg(long, env = "AIGW_VIRTUAL_KEYS_FILE", default_value = "aigw-keys.json")]
    virtual_keys_file: PathBuf,
    /// The token the admin API on the admin listener requires (`Authorization:
    /// Bearer`): virtual keys (`/admin/keys`), usage and budgets (`/admin/usage`,
    /// `/admin/budgets`), as `aigw run` serves them. Without it (or
    /// `--admin-token-file`) those calls are refused.
    #[arg(
        long,
        env = "AIGW_ADMIN_TOKEN",
        hide_env_values = true,
        conflicts_with = "admin_token_file"
    )]
    admin_token: Option<aigw_core::Secret>,
    /// A file holding the admin token (a mounted Secret).
    #[arg(long, env = "AIGW_ADMIN_TOKEN_FILE")]
    admin_token_file: Option<PathBuf>,
    /// While the rate-limit store (Redis) is unreachable, refuse requests that a
    /// BackendTrafficPolicy rate limit applies to (503) instead of letting them through.
    #[arg(long, env = "AIGW_RATE_LIMIT_FAIL_CLOSED")]
    rate_limit_fail_closed: bool,
    /// While the store is unreachable, refuse requests under a QuotaPolicy (503)
    /// instead of letting them through (upstream's `-quotaRateLimitServiceFailureModeDeny`).
    #[arg(long, env = "AIGW_QUOTA_FAIL_CLOSED")]
    quota_fail_closed: bool,
    /// When token limits and quotas charge: `upstream` (Envoy AI Gateway's semantics:
    /// admitted on the budget already spent, charged when the exchange ends) or
    /// `reserve` (an estimate is held before the upstream call, the request refused
    /// with 429 when it does not fit, and corrected once with the actual usage).
    #[arg(long, env = "AIGW_LIMIT_MODE", default_value = "upstream")]
    limit_mode: aigw_core::limits::LimitMode,
    /// Output tokens held for a request that names no `max_tokens` /
    /// `max_completion_tokens` / `max_output_tokens`: by money budgets, and by token
    /// limits in `--limit-mode reserve`.
    #[arg(long, env = "AIGW_RESERVE_OUTPUT_TOKENS", default_value_t = 4096)]
    reserve_output_tokens: u64,
    /// Serve the configuration's MCPRoutes on this address (Envoy routes their paths
    /// here; `envoy-config --mcp-addr` says so).
    #[arg(long, env = "AIGW_EXTPROC_MCP_ADDR")]
    mcp_addr: Option<SocketAddr>,
    /// Price table (YAML or JSON, docs/budgets.md): prices every request, records the
    /// spend (in Redis with --redis-url) and enforces --budgets-file; reloaded when it
    /// changes.
    #[arg(long, env = "AIGW_PRICING_FILE", value_name = "FILE")]
    pricing_file: Option<PathBuf>,
    /// Money budgets per key, team or route (YAML or JSON); needs --pricing-file.
    #[arg(
        long,
        env = "AIGW_BUDGETS_FILE",
        value_name = "FILE",
        requires = "pricing_file"
    )]
    budgets_file: Option<PathBuf>,
    #[command(flatten)]
    mcp: aigw_extproc::mcp::McpArgs,
    #[command(flatten)]
    listeners: aigw_extproc::listener_flags::ListenerArgs,
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
        /// An InferencePool's endpoint picker, `NAMESPACE/POOL=URL` (`http://HOST:PORT`
        /// for plain-text gRPC, `https://HOST:PORT` for TLS); repeatable. Pools not named
        /// are dialled at their picker's Service, `https://<picker>.<ns>.svc:<port>`.
        #[arg(long = "endpoint-picker", value_name = "NAMESPACE/POOL=URL")]
        endpoint_pickers: Vec<String>,
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

/// What `envoy-config` was asked for.
struct EnvoyConfigArgs {
    listen: SocketAddr,
    admin: Option<SocketAddr>,
    ca_file: String,
    mcp_addr: Option<SocketAddr>,
    endpoint_pickers: Vec<String>,
}

fn envoy_config(
    config: &[PathBuf],
    extproc: &str,
    args: EnvoyConfigArgs,
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
    for c in &plan.clusters {
        if let Some(p) = c.pool.as_ref().filter(|p| p.fail_open) {
            tracing::warn!(
                "InferencePool {}: failureMode FailOpen is not honoured by this Envoy configuration \
                 (without the picker's answer the request has no destination); requests fail when \
                 its endpoint picker does",
                p.key()
            );
        }
    }
    let mut opts = Options::new(ListenAddr::parse(extproc)?);
    opts.listen = args.listen;
    opts.admin = args.admin;
    opts.ca_file = args.ca_file;
    opts.mcp = args.mcp_addr;
    for flag in &args.endpoint_pickers {
        let (pool, url) = flag
            .split_once('=')
            .filter(|(p, u)| p.contains('/') && !u.is_empty())
            .ok_or_else(|| {
                ExtProcError::EnvoyConfig(format!(
                    "--endpoint-picker: expected NAMESPACE/POOL=URL, found {flag:?}"
                ))
            })?;
        opts.pickers.insert(pool.to_owned(), url.to_owned());
    }
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
    timeout: std::time::Duration,
) -> Result<Option<Arc<dyn LimitStore>>, ExtProcError> {
    let Some(url) = url else {
        return Ok(None);
    };
    let store = RedisStore::new(url, timeout).map_err(|e| ExtProcError::Redis(e.to_string()))?;
    tracing::info!(
        redis = store.display_url(),
        "global rate limits counted in Redis"
    );
    // Stored Responses API conversations too, so `previous_response_id` works on any
    // instance (a conversation runs to megabytes: a longer read bound than counters').
    let mirror = aigw_core::conversations::RedisConversations::new(
        url,
        std::time::Duration::from_millis(500),
    )
    .map_err(|e| ExtProcError::Redis(e.to_string()))?;
    aigw_providers::responses::store::set_mirror(Arc::new(mirror));
    Ok(Some(Arc::new(store)))
}

async fn serve(cli: Cli) -> Result<(), ExtProcError> {
    if cli.config.is_empty() {
        return Err(ExtProcError::InvalidAddress {
            addr: "--config is required".into(),
        });
    }
    if let Some(path) = &cli.audit_log {
        aigw_core::audit::install_path(path).map_err(|e| ExtProcError::Telemetry {
            message: format!("--audit-log {path}: {e}"),
        })?;
    }
    let providers = Arc::new(ProviderCache::default());
    let limits = Arc::new(
        RateLimits::new(global_store(cli.redis_url.as_ref(), cli.redis_timeout)?)
            .with_failure_modes(aigw_core::limits::FailureModes {
                rate_limits_deny: cli.rate_limit_fail_closed,
                quotas_deny: cli.quota_fail_closed,
            })
            .with_mode(
                cli.limit_mode
                    .with_default_output(cli.reserve_output_tokens),
            ),
    );
    // Usage estimates for cut streams need the tokenizer tables; build them off the
    // request path.
    std::thread::spawn(aigw_core::estimate::warm_up);
    let runtime =
        load_runtime_with_limits(&cli.config, Some(&providers), &limits).map_err(|source| {
            ExtProcError::Config {
                path: cli.config[0].clone(),
                source,
            }
        })?;
    let metrics = Arc::new(Metrics::default());
    metrics.set_rate_limit_stats(limits.stats().clone());
    let spending = spending(&cli)?;
    if let Some(s) = &spending {
        metrics.set_spending(s.clone());
    }
    let prefixes =
        aigw_core::api::EndpointPrefixes::parse(&cli.root_prefix, &cli.endpoint_prefixes).map_err(
            |e| ExtProcError::InvalidPrefixes {
                message: e.to_string(),
            },
        )?;
    // Before the MCP listener, whose request spans go to the same exporters.
    let exporters = start_telemetry(&metrics, &[])?;
    let listener_limits = cli.listeners.limits();
    let mcp = if let Some(addr) = cli.mcp_addr {
        let listener = aigw_extproc::mcp::McpListener {
            addr,
            limits: listener_limits.mcp.clone(),
        };
        let task = aigw_extproc::mcp::spawn_with(
            listener,
            &cli.config,
            &cli.mcp,
            &metrics,
            exporters.telemetry(),
            shutdown_signal(),
        )
        .await?;
        Some(task)
    } else {
        if !load_config(&cli.config)?.mcp_routes.is_empty() {
            tracing::warn!(
                "the configuration has MCPRoutes but no --mcp-addr: they are not served"
            );
        }
        None
    };
    let keys = virtual_keys(&cli).await?;
    let admin_api = admin_api(&cli, keys.clone(), spending.clone())?;
    run(
        Served {
            runtime,
            metrics,
            listen: ListenAddr::parse(&cli.listen)?,
            admin: cli.admin,
            max_message_size: cli.max_message_size,
            watch: cli.config.clone(),
            prefixes,
            spending,
            exporters,
            keys,
            admin_api,
            limits: listener_limits,
            mcp,
        },
        move |paths: &[PathBuf]| load_runtime_with_limits(paths, Some(&providers), &limits),
    )
    .await
}

/// Reads the telemetry settings (the environment, with upstream's header-attribute
/// flags taking the place of their `OTEL_AIGW_*` variables) and starts the exporters;
/// the GenAI metrics are mirrored over OTLP when asked.
fn start_telemetry(
    metrics: &Metrics,
    flags: &[(String, String)],
) -> Result<aigw_core::telemetry::Exporters, ExtProcError> {
    let from_flags = |var: &str| {
        flags
            .iter()
            .find(|(n, _)| upstream_flags::header_attribute_env(n) == Some(var))
            .map(|(_, v)| v.clone())
    };
    let config = aigw_core::telemetry::config::TelemetryConfig::from_source(&|n: &str| {
        from_flags(n).or_else(|| std::env::var(n).ok())
    })
    .map_err(|e| ExtProcError::Telemetry {
        message: e.to_string(),
    })?;
    let exporters = aigw_core::telemetry::Exporters::start(&config)
        .map_err(|message| ExtProcError::Telemetry { message })?;
    metrics.genai().attach_telemetry(&exporters);
    Ok(exporters)
}

/// What [`run`] serves.
struct Served {
    runtime: aigw_extproc::Runtime,
    metrics: Arc<Metrics>,
    listen: ListenAddr,
    admin: String,
    max_message_size: usize,
    watch: Vec<PathBuf>,
    /// Where the endpoints are mounted (`--root-prefix`, `--endpoint-prefixes`).
    prefixes: aigw_core::api::EndpointPrefixes,
    /// Prices and money budgets (`--pricing-file`, `--budgets-file`).
    spending: Option<Arc<aigw_core::budget::Spending>>,
    /// The telemetry exporters (started before the MCP listener, which shares them).
    exporters: aigw_core::telemetry::Exporters,
    /// Virtual keys, when required.
    keys: Option<Arc<aigw_core::keys::KeyRegistry>>,
    /// The keys and spend admin API on the admin listener.
    admin_api: aigw_core::admin::AdminApi,
    /// Each listener's limits.
    limits: aigw_extproc::listener_flags::ListenerLimits,
    /// The MCP listener's task, when it serves: it ends once drained.
    mcp: Option<tokio::task::JoinHandle<aigw_core::server::Drained>>,
}

/// The spend engine of `--pricing-file` and `--budgets-file`, counting in Redis with
/// `--redis-url`; its files are checked for changes every second.
fn spending(cli: &Cli) -> Result<Option<Arc<aigw_core::budget::Spending>>, ExtProcError> {
    let Some(pricing) = &cli.pricing_file else {
        return Ok(None);
    };
    let config_error = |source| ExtProcError::Config {
        path: pricing.clone(),
        source,
    };
    let store: Arc<dyn aigw_core::budget::SpendStore> = match &cli.redis_url {
        Some(url) => Arc::new(
            aigw_core::budget::RedisSpendStore::new(
                url,
                cli.redis_timeout.max(std::time::Duration::from_millis(100)),
            )
            .map_err(config_error)?,
        ),
        None => Arc::new(aigw_core::budget::MemorySpendStore::default()),
    };
    let s = aigw_core::budget::Spending::from_files(pricing, cli.budgets_file.as_deref(), store)
        .map_err(config_error)?
        .with_default_output_tokens(cli.reserve_output_tokens);
    let s = Arc::new(s);
    let reloaded = s.clone();
    tokio::spawn(async move {
        let mut ticker = tokio::time::interval(std::time::Duration::from_secs(1));
        loop {
            ticker.tick().await;
            reloaded.reload_changed_files();
        }
    });
    Ok(Some(s))
}

/// `/memory` with jemalloc's figures when the binary allocates with it; nothing
/// otherwise (the route then answers 404 like any unknown path).
fn memory_router() -> axum::Router {
    #[cfg(feature = "jemalloc")]
    {
        server::memory_router(aigw_core::memory::jemalloc)
    }
    #[cfg(not(feature = "jemalloc"))]
    {
        axum::Router::new()
    }
}

/// The admin API of `--admin-token` over the virtual keys and the spend engine.
fn admin_api(
    cli: &Cli,
    keys: Option<Arc<aigw_core::keys::KeyRegistry>>,
    spending: Option<Arc<aigw_core::budget::Spending>>,
) -> Result<aigw_core::admin::AdminApi, ExtProcError> {
    let token = match (&cli.admin_token, &cli.admin_token_file) {
        (Some(t), _) => Some(t.clone()),
        (None, Some(path)) => Some(aigw_core::Secret::new(
            std::fs::read_to_string(path)
                .map_err(|source| ExtProcError::Io {
                    what: "reading the admin token from",
                    addr: path.display().to_string(),
                    source,
                })?
                .trim(),
        )),
        (None, None) => None,
    };
    let token = token.as_ref().and_then(aigw_core::admin::AdminToken::new);
    if token.is_some() {
        tracing::info!("admin API served on the admin listener (/admin/…)");
    } else if keys.is_some() || spending.is_some() {
        tracing::info!("admin API disabled: no --admin-token");
    }
    let mut api = aigw_core::admin::AdminApi::new(token);
    if let Some(k) = keys {
        api = api.keys(k);
    }
    if let Some(s) = spending {
        api = api.spending(s);
    }
    Ok(api)
}

/// Serves ext_proc and the admin endpoints, reloading with `load` when the watched
/// files change.
async fn run(
    s: Served,
    load: impl Fn(&[PathBuf]) -> aigw_core::Result<aigw_extproc::Runtime> + Send + 'static,
) -> Result<(), ExtProcError> {
    let exporters = s.exporters;
    let runtime = Arc::new(ArcSwap::from_pointee(s.runtime));
    let mut processor = Processor::new(runtime.clone(), s.metrics.clone())
        .with_prefixes(s.prefixes)
        .with_telemetry(exporters.telemetry());
    if let Some(spending) = s.spending {
        processor = processor.with_spending(spending);
    }
    if let Some(keys) = s.keys {
        processor = processor.with_virtual_keys(keys);
    }
    let ready = Arc::new(AtomicBool::new(false));
    let bound = Bound::bind(&s.listen).await?;
    let ListenAddr::Tcp(admin_addr) = ListenAddr::parse(&s.admin)? else {
        return Err(ExtProcError::InvalidAddress { addr: s.admin });
    };
    let admin = tokio::net::TcpListener::bind(admin_addr)
        .await
        .map_err(|source| ExtProcError::Io {
            what: "binding",
            addr: admin_addr.to_string(),
            source,
        })?;
    tokio::spawn(reload::watch(
        s.watch,
        runtime,
        reload::DEFAULT_INTERVAL,
        load,
    ));
    // The admin listener stays up while the others drain (health answers 503 then,
    // metrics still scrape), and stops once they have.
    let (admin_stop, admin_stopped) = tokio::sync::oneshot::channel::<()>();
    let admin_task = tokio::spawn(server::serve_admin(
        admin,
        server::admin_router(s.metrics, ready.clone())
            .merge(server::admin_api(s.admin_api))
            .merge(memory_router()),
        s.limits.admin.clone(),
        async {
            let _ = admin_stopped.await;
        },
    ));
    tracing::info!(listen = %s.listen, admin = %admin_addr, "aigw-extproc is ready");
    let served = server::serve_grpc_with(
        bound,
        processor,
        s.max_message_size,
        &s.limits.grpc,
        ready,
        shutdown_signal(),
    )
    .await;
    if let Some(mcp) = s.mcp {
        let _ = mcp.await;
    }
    let _ = admin_stop.send(());
    let _ = admin_task.await;
    exporters.shutdown().await;
    served
}

/// Serves as upstream's ExtProc image: its flags, its filter configuration.
async fn serve_upstream(flags: UpstreamFlags) -> Result<(), ExtProcError> {
    if flags.enable_redaction {
        tracing::info!(
            "-enableRedaction: request and response bodies are never logged by this build"
        );
    }
    let source = match (&flags.config_bundle_path, &flags.config_path) {
        (Some(dir), _) => filterapi::Source::Bundle(dir.clone()),
        (None, Some(p)) => filterapi::Source::File(p.clone()),
        (None, None) => {
            return Err(ExtProcError::InvalidAddress {
                addr: "either -configPath or -configBundlePath must be provided".into(),
            });
        }
    };
    let versions = std::env::var("AIGW_FILTER_CONFIG_VERSION")
        .map(|v| filterapi::VersionPolicy::parse(&v))
        .unwrap_or_default();
    let providers = Arc::new(ProviderCache::default());
    let metrics = Arc::new(Metrics::default());
    let path = match &source {
        filterapi::Source::File(p) | filterapi::Source::Bundle(p) => p.clone(),
    };
    let runtime = match load_filter_runtime(&source, &versions, Some(&providers)) {
        Ok(r) => r,
        // As upstream: a bundle whose parts are still being written (checksum
        // mismatch, part missing) is retried on the next poll, serving nothing
        // meanwhile; anything else stops the start.
        Err(e) if matches!(source, filterapi::Source::Bundle(_)) && bundle_in_flux(&e) => {
            tracing::warn!(error = %e, "config bundle not complete yet; retrying on the next poll");
            aigw_extproc::config::filter_runtime(&filterapi::FilterConfig::default(), None)
                .map_err(|source| ExtProcError::Config {
                    path: path.clone(),
                    source,
                })?
        }
        Err(source) => return Err(ExtProcError::Config { path, source }),
    };
    let watch = source.files();
    // Upstream's header-attribute flags take the place of their OTEL_AIGW_* variables.
    let exporters = start_telemetry(&metrics, &flags.header_attributes)?;
    let limits = aigw_extproc::listener_flags::ListenerArgs::from_env()
        .map_err(|message| ExtProcError::InvalidLimits { message })?
        .limits();
    let mut mcp_task = None;
    match aigw_extproc::mcp::UpstreamMcp::from_flags(&flags.mcp)? {
        Some(mcp) => {
            let task = aigw_extproc::mcp::spawn_filter_config(
                mcp,
                source.clone(),
                versions.clone(),
                &metrics,
                exporters.telemetry(),
                limits.mcp.clone(),
                shutdown_signal(),
            )
            .await?;
            mcp_task = Some(task);
        }
        None => {
            if let Ok(l) = filterapi::load(&source, &versions)
                && l.config
                    .mcp_config
                    .as_ref()
                    .is_some_and(|m| !m.routes.is_empty())
            {
                tracing::warn!(
                    routes = ?l.config.mcp_route_names(),
                    "the filter configuration has MCPRoutes but no -mcpAddr: they are not served"
                );
            }
        }
    }
    let prefixes =
        aigw_core::api::EndpointPrefixes::parse(&flags.root_prefix, &flags.endpoint_prefixes)
            .map_err(|e| ExtProcError::InvalidPrefixes {
                message: e.to_string(),
            })?;
    run(
        Served {
            runtime,
            metrics,
            listen: ListenAddr::parse(&flags.ext_proc_addr)?,
            admin: format!("0.0.0.0:{}", flags.admin_port),
            max_message_size: flags.max_recv_msg_size,
            watch,
            prefixes,
            spending: None,
            exporters,
            keys: None,
            admin_api: aigw_core::admin::AdminApi::default(),
            limits,
            mcp: mcp_task,
        },
        move |_: &[PathBuf]| load_filter_runtime(&source, &versions, Some(&providers)),
    )
    .await
}

/// Whether a bundle failed to load only because its parts are not all written yet.
fn bundle_in_flux(e: &aigw_core::Error) -> bool {
    matches!(e, aigw_core::Error::InvalidConfig { issues }
        if issues.iter().all(|i| i.field == "checksum" || i.field == "parts"))
}

fn runtime_threads(requested: usize) -> usize {
    match requested {
        0 => std::thread::available_parallelism().map_or(1, |n| (n.get() / 2).max(1)),
        n => n,
    }
}

fn block_on(
    threads: usize,
    fut: impl std::future::Future<Output = Result<(), ExtProcError>>,
) -> Result<(), ExtProcError> {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(runtime_threads(threads))
        .enable_all()
        .build()
        .map_err(|source| ExtProcError::Io {
            what: "starting the runtime",
            addr: String::new(),
            source,
        })
        .and_then(|rt| rt.block_on(fut))
}

fn exit(result: Result<(), ExtProcError>) -> ExitCode {
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!(error = %e, "aigw-extproc failed");
            ExitCode::FAILURE
        }
    }
}

/// Upstream's command line: `aigw-extproc -configPath … -extProcAddr …`.
fn main_upstream(args: &[String]) -> ExitCode {
    let flags = match UpstreamFlags::parse(args) {
        Ok(f) => f,
        Err(e) => {
            // Go's flag package reports to stderr and exits 2; so does this.
            let _ = writeln!(std::io::stderr().lock(), "aigw-extproc: {e}");
            return ExitCode::from(2);
        }
    };
    init_logging(flags.tracing_level(), flags.log_format == "json");
    let threads = std::env::var("AIGW_EXTPROC_WORKER_THREADS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    exit(block_on(threads, serve_upstream(flags)))
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if upstream_flags::is_upstream_style(&args) {
        return main_upstream(&args);
    }
    let cli = Cli::parse();
    init_logging(&cli.log_level, cli.log_json);
    exit(match cli.command {
        Some(Command::EnvoyConfig {
            config,
            extproc,
            listen,
            admin,
            ca_file,
            mcp_addr,
            endpoint_pickers,
        }) => envoy_config(
            &config,
            &extproc,
            EnvoyConfigArgs {
                listen,
                admin,
                ca_file,
                mcp_addr,
                endpoint_pickers,
            },
        ),
        None => block_on(cli.worker_threads, serve(cli)),
    })
}

fn redis_timeout(s: &str) -> Result<std::time::Duration, String> {
    aigw_core::config::parse_duration(s).map_err(|e| e.to_string())
}

/// The virtual-key registry `--virtual-keys` asks for, watched for changes (a key
/// revoked anywhere is refused here within a second).
async fn virtual_keys(
    cli: &Cli,
) -> Result<Option<Arc<aigw_core::keys::KeyRegistry>>, ExtProcError> {
    if !cli.virtual_keys {
        return Ok(None);
    }
    let store: Arc<dyn aigw_core::keys::KeyStore> = match &cli.redis_url {
        Some(url) => Arc::new(
            aigw_core::keys::RedisKeyStore::new(url, std::time::Duration::from_millis(500))
                .map_err(|e| ExtProcError::VirtualKeys(e.to_string()))?,
        ),
        None => Arc::new(aigw_core::keys::FileKeyStore::new(&cli.virtual_keys_file)),
    };
    let registry = aigw_core::keys::KeyRegistry::open(store)
        .await
        .map_err(|e| ExtProcError::VirtualKeys(e.to_string()))?;
    let registry = Arc::new(
        match global_store(cli.redis_url.as_ref(), cli.redis_timeout)? {
            Some(counters) => registry.with_counters(counters),
            None => registry,
        },
    );
    registry.spawn_watch(aigw_core::keys::registry::DEFAULT_POLL);
    tracing::info!(store = %registry.describe(), "virtual keys required on every request");
    Ok(Some(registry))
}
