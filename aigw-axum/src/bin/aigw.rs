//! The standalone `aigw` binary: `run`, `simulate`, `validate`, `version`.
#![allow(clippy::print_stdout, clippy::print_stderr)]

use aigw_axum::admin::{self, AdminState, Tee};
use aigw_axum::admin_api::{self, AdminApi, AdminToken};
use aigw_axum::client_auth::ClientAuthLayer;
use aigw_axum::client_auth_config::{self, ClientAuthFlags};
use aigw_axum::record::{AccessLog, AccessLogFormat};
use aigw_axum::server::{self, ServerLimits};
use aigw_axum::simulator::{AwsCredentials, Simulator, SimulatorConfig};
use aigw_axum::{Gateway, Settings, Snapshot, autoconfig, config, credentials};
use aigw_core::config::{Config, SecretSource};
use aigw_core::planner::{Loader, Reloader};
use clap::{Args, Parser, Subcommand};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpListener;

#[path = "aigw/spend.rs"]
mod spend;

/// jemalloc with background threads purging freed pages (after its 10 s decay), so RSS
/// returns to near its idle figure after a burst; glibc's malloc kept the peak resident.
#[cfg(feature = "jemalloc")]
#[global_allocator]
static ALLOCATOR: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

/// The command line of the standalone gateway.
#[derive(Parser, Debug)]
#[command(
    name = "aigw",
    version,
    about = "Standalone AI gateway: one OpenAI- and Anthropic-compatible endpoint in front of OpenAI, Azure, Bedrock, Vertex AI, Anthropic and compatible servers, configured with Envoy AI Gateway YAML",
    after_help = "Start with `aigw run` (no configuration: the bundled simulator answers); `aigw validate FILE…` checks a configuration."
)]
struct Cli {
    /// Log filter (`RUST_LOG` syntax); `RUST_LOG` wins when set.
    #[arg(long, global = true, default_value = "info")]
    log_level: String,
    /// Log as JSON lines.
    #[arg(long, global = true)]
    log_json: bool,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Runs the gateway. Without CONFIG: providers from the environment, or the bundled
    /// simulator when none is configured.
    Run(Box<RunArgs>),
    /// Runs the bundled provider simulator.
    Simulate(SimulateArgs),
    /// Validates configuration files or directories; prints one summary line per file.
    Validate {
        /// Files or directories of YAML.
        #[arg(required = true)]
        paths: Vec<PathBuf>,
    },
    /// Prints the version.
    Version,
}

#[derive(Args, Debug)]
struct RunArgs {
    /// Configuration files or directories (hot-reloaded).
    config: Vec<PathBuf>,
    /// Address of the gateway listener.
    #[arg(long, default_value = "127.0.0.1:1975", env = "AIGW_LISTEN")]
    listen: SocketAddr,
    /// Address of the admin listener (`/health`, `/ready`, `/metrics`).
    #[arg(long, default_value = "127.0.0.1:1064", env = "AIGW_ADMIN")]
    admin: SocketAddr,
    /// How often configuration files are checked for changes, in milliseconds.
    #[arg(long, default_value_t = 1000)]
    reload_interval_ms: u64,
    /// Largest request body accepted, in bytes.
    #[arg(long, default_value_t = 32 * 1024 * 1024)]
    max_body_bytes: usize,
    /// Largest total size of request headers, in bytes (431 beyond).
    #[arg(long, default_value_t = 64 * 1024)]
    max_header_bytes: usize,
    /// Attempts per request (first included) across priority groups.
    #[arg(long, default_value_t = 3)]
    max_attempts: u32,
    /// Write the audit trail (configuration loads and reloads, client-authentication
    /// failures) as JSON lines to FILE, or `-` for standard output.
    #[arg(long, env = "AIGW_AUDIT_LOG", value_name = "FILE")]
    audit_log: Option<String>,
    /// Directory of secrets laid out as `<namespace>/<name>/<key>` (mounted Secrets).
    #[arg(long, env = "AIGW_SECRETS_DIR")]
    secrets_dir: Option<PathBuf>,
    /// Require client API keys listed in FILE: lines `name:sha256:<hex digest>` or
    /// `name:<key>`.
    #[arg(long, env = "AIGW_CLIENT_API_KEYS")]
    client_api_keys: Option<PathBuf>,
    /// Accept JWT bearer tokens verified with this JWKS (a file path or an http(s) URL).
    #[arg(long, env = "AIGW_JWT_JWKS")]
    jwt_jwks: Option<String>,
    /// Required JWT issuer (`iss`).
    #[arg(long, env = "AIGW_JWT_ISSUER", requires = "jwt_jwks")]
    jwt_issuer: Option<String>,
    /// Accepted JWT audience (`aud`); repeatable.
    #[arg(long, requires = "jwt_jwks")]
    jwt_audience: Vec<String>,
    /// Start a W3C trace (`traceparent` upstream) for requests that arrive without one;
    /// an incoming `traceparent` is always continued.
    #[arg(long, env = "AIGW_TRACE_PROPAGATION")]
    trace_propagation: bool,
    /// How often JWKS URLs are fetched again, in seconds.
    #[arg(long, default_value_t = 300)]
    jwks_refresh_secs: u64,
    /// A path prefix before every endpoint (upstream's `rootPrefix`), e.g. `/ai`.
    #[arg(long, default_value = "/", env = "AIGW_ROOT_PREFIX")]
    root_prefix: String,
    /// Per-family endpoint prefixes after the root prefix (upstream's
    /// `endpointPrefixes`): `openai:/,cohere:/cohere,anthropic:/anthropic`.
    #[arg(long, default_value = "", env = "AIGW_ENDPOINT_PREFIXES")]
    endpoint_prefixes: String,
    /// Redis for `Global` rate limits and for the Responses API conversation store
    /// (`redis://[:password@]host:port[/db]`); without it both are per instance.
    #[arg(long, env = "AIGW_REDIS_URL", hide_env_values = true)]
    redis_url: Option<aigw_core::Secret>,
    /// Longest wait for one Redis call on the request path; beyond it the limit's
    /// failure mode applies (fail open unless configured closed).
    #[arg(long, env = "AIGW_REDIS_TIMEOUT", default_value = "50ms", value_parser = redis_timeout)]
    redis_timeout: std::time::Duration,
    #[command(flatten)]
    keys: KeyArgs,
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
    /// Runtime threads serving requests. 1 runs everything on one thread (the default
    /// on machines with up to two cores); default otherwise: one per core.
    #[arg(long, env = "AIGW_WORKER_THREADS", value_parser = clap::value_parser!(u16).range(1..))]
    worker_threads: Option<u16>,
    /// Seed of the key that seals MCP session ids (every replica needs the same); without
    /// one a random key is used and sessions end with the process.
    #[arg(long, env = "AIGW_MCP_SESSION_SEED", hide_env_values = true)]
    mcp_session_seed: Option<aigw_core::Secret>,
    /// Previous seed, still accepted for session ids sealed before a rotation.
    #[arg(long, env = "AIGW_MCP_FALLBACK_SESSION_SEED", hide_env_values = true)]
    mcp_fallback_session_seed: Option<aigw_core::Secret>,
    /// PBKDF2 iterations deriving the MCP session key from its seed (once, at start).
    #[arg(long, default_value_t = aigw_core::mcp::DEFAULT_ITERATIONS)]
    mcp_session_iterations: u32,
    /// Largest MCP request body accepted, in bytes (413 beyond).
    #[arg(long, default_value_t = 4 * 1024 * 1024)]
    mcp_max_body_bytes: usize,
    /// Seconds between heartbeat pings on an idle MCP notification stream (0: none).
    #[arg(long, default_value_t = 60)]
    mcp_heartbeat_secs: u64,
    /// Where the endpoint picker of an InferencePool listens, as
    /// `NAMESPACE/POOL=URL` (`http://` plain-text gRPC, `https://` TLS); repeatable.
    /// Default: `https://<endpointPickerRef.name>.<namespace>.svc:<port>`.
    #[arg(long, value_name = "NAMESPACE/POOL=URL")]
    endpoint_picker: Vec<String>,
    #[command(flatten)]
    limits: LimitArgs,
    #[command(flatten)]
    spend: spend::SpendArgs,
}

/// Listener and request limits (docs/limits.md). Durations are written like the
/// configuration's (`500ms`, `30s`, `2m`); `0` turns a timeout off.
#[derive(Args, Debug)]
struct LimitArgs {
    /// Time for a client to send a request's headers; in HTTP/1 it also bounds how long
    /// a kept-alive connection waits for its next request.
    #[arg(long, default_value = "30s", value_parser = duration, env = "AIGW_HEADER_READ_TIMEOUT")]
    header_read_timeout: Duration,
    /// A connection with no request in flight for this long is closed.
    #[arg(long, default_value = "60s", value_parser = duration, env = "AIGW_IDLE_TIMEOUT")]
    idle_timeout: Duration,
    /// Longest pause while a request body arrives (408 beyond).
    #[arg(long, default_value = "30s", value_parser = duration, env = "AIGW_REQUEST_BODY_IDLE_TIMEOUT")]
    request_body_idle_timeout: Duration,
    /// Longest time to receive a whole request body (408 beyond).
    #[arg(long, default_value = "120s", value_parser = duration, env = "AIGW_REQUEST_BODY_TIMEOUT")]
    request_body_timeout: Duration,
    /// Open client connections; beyond, new ones get 503 with `retry-after`.
    #[arg(long, default_value_t = 10_000, env = "AIGW_MAX_CONNECTIONS")]
    max_connections: usize,
    /// Requests in flight (streams until they end); beyond, 503 with `retry-after`.
    /// 0: no cap.
    #[arg(long, default_value_t = 4096, env = "AIGW_MAX_IN_FLIGHT")]
    max_in_flight: usize,
    /// Bytes of request bodies buffered across all requests; a request whose body does
    /// not fit gets 503 with `retry-after`. 0: no bound.
    #[arg(long, default_value_t = 512 * 1024 * 1024, env = "AIGW_MAX_BUFFERED_BODY_BYTES")]
    max_buffered_body_bytes: usize,
    /// Concurrent streams per HTTP/2 client connection.
    #[arg(long, default_value_t = 256)]
    http2_max_concurrent_streams: u32,
    /// Interval of HTTP/2 keep-alive pings to clients (0: none).
    #[arg(long, default_value = "30s", value_parser = duration)]
    http2_keepalive_interval: Duration,
    /// How long a keep-alive ping may go unanswered.
    #[arg(long, default_value = "20s", value_parser = duration)]
    http2_keepalive_timeout: Duration,
    /// On SIGTERM or Ctrl-C, how long in-flight requests (streams included) may take to
    /// finish before the process exits.
    #[arg(long, default_value = "30s", value_parser = duration, env = "AIGW_DRAIN_TIMEOUT")]
    drain_timeout: Duration,
    /// When a client hangs up mid-stream, how long the upstream is read on for the
    /// provider's final usage report (the stream is then charged what the provider
    /// bills; beyond, an estimate). 0: no reading on, settle with the estimate at once.
    #[arg(long, default_value = "30s", value_parser = duration, env = "AIGW_CANCEL_DRAIN_TIMEOUT")]
    cancel_drain_timeout: Duration,
    /// The most upstream bytes read on after a client hung up.
    #[arg(long, default_value_t = 8 * 1024 * 1024, env = "AIGW_CANCEL_DRAIN_MAX_BYTES")]
    cancel_drain_max_bytes: u64,
}

fn duration(s: &str) -> Result<Duration, String> {
    aigw_core::config::parse_duration(s).map_err(|e| e.to_string())
}

/// `0` turns a bound off.
fn nonzero(d: Duration) -> Option<Duration> {
    (!d.is_zero()).then_some(d)
}

impl LimitArgs {
    fn server(&self, max_header_bytes: usize) -> ServerLimits {
        ServerLimits {
            header_read_timeout: nonzero(self.header_read_timeout),
            idle_timeout: nonzero(self.idle_timeout),
            max_connections: self.max_connections,
            max_header_bytes,
            http2_max_concurrent_streams: self.http2_max_concurrent_streams,
            http2_keepalive_interval: nonzero(self.http2_keepalive_interval),
            http2_keepalive_timeout: self.http2_keepalive_timeout,
            drain_timeout: self.drain_timeout,
        }
    }

    /// The admin listener: the same timeouts, a small connection cap (probes and
    /// scrapers), and no drain (it stays up until the gateway has drained).
    fn admin(&self) -> ServerLimits {
        ServerLimits {
            max_connections: 64,
            drain_timeout: Duration::ZERO,
            ..self.server(16 * 1024)
        }
    }
}

impl RunArgs {
    fn mcp_crypto(&self) -> aigw_core::mcp::SessionCrypto {
        match &self.mcp_session_seed {
            Some(seed) => aigw_core::mcp::SessionCrypto::new(
                seed,
                self.mcp_fallback_session_seed.as_ref(),
                self.mcp_session_iterations,
            ),
            None => aigw_core::mcp::SessionCrypto::random(),
        }
    }

    fn mcp_settings(&self) -> aigw_core::mcp::McpSettings {
        aigw_core::mcp::McpSettings {
            max_request_body: self.mcp_max_body_bytes,
            body_timeout: nonzero(self.limits.request_body_timeout),
            heartbeat: (self.mcp_heartbeat_secs > 0)
                .then(|| Duration::from_secs(self.mcp_heartbeat_secs)),
            ..aigw_core::mcp::McpSettings::default()
        }
    }

    fn pickers(&self) -> Result<aigw_axum::inference_pool::grpc::ExtProcPickers, String> {
        self.endpoint_picker.iter().try_fold(
            aigw_axum::inference_pool::grpc::ExtProcPickers::default(),
            |p, flag| {
                p.with_flag(flag)
                    .map_err(|e| format!("--endpoint-picker: {e}"))
            },
        )
    }

    fn client_auth_flags(&self) -> ClientAuthFlags {
        ClientAuthFlags {
            api_keys_file: self.client_api_keys.clone(),
            jwks: self.jwt_jwks.clone(),
            issuer: self.jwt_issuer.clone(),
            audiences: self.jwt_audience.clone(),
        }
    }
}

#[derive(Args, Debug)]
struct SimulateArgs {
    /// Address to listen on.
    #[arg(long, default_value = "127.0.0.1:1976")]
    listen: SocketAddr,
    /// Answer every request with this status in the provider's error shape.
    #[arg(long)]
    fail_status: Option<u16>,
    /// Content chunks per streamed reply.
    #[arg(long, default_value_t = 4)]
    chunks: usize,
    /// Pause between streamed chunks, in milliseconds.
    #[arg(long, default_value_t = 0)]
    chunk_interval_ms: u64,
    /// Delay before every response, in milliseconds.
    #[arg(long, default_value_t = 0)]
    latency_ms: u64,
    /// Require these OpenAI bearer keys (repeatable); any key is accepted otherwise.
    #[arg(long)]
    openai_key: Vec<String>,
    /// Require these Anthropic keys (repeatable).
    #[arg(long)]
    anthropic_key: Vec<String>,
}

fn init_logging(cli: &Cli) {
    // Colours only on a terminal: escape codes make a log file or collector harder to
    // read, and styling every span field costs a formatting pass per request span.
    let ansi = std::io::IsTerminal::is_terminal(&std::io::stderr());
    let builder = tracing_subscriber::fmt()
        .with_ansi(ansi)
        .with_writer(std::io::stderr);
    macro_rules! init {
        ($builder:expr) => {{
            let builder = $builder;
            if cli.log_json {
                builder.json().init();
            } else if ansi {
                builder.init();
            } else {
                // The same text, with each request span's fields written without `{:?}`.
                builder
                    .fmt_fields(aigw_axum::log_fields::PlainFields)
                    .init();
            }
        }};
    }
    // A bare level (the default, `info`) filters as `EnvFilter` would, without its
    // per-span work: a read lock and a lookup each time a span is entered, exited or
    // closed, kept for directives on span names and fields (≈ 0.4 k instructions a
    // request).
    match std::env::var_os("RUST_LOG").map_or_else(|| bare_level(&cli.log_level), |_| None) {
        Some(level) => init!(builder.with_max_level(level)),
        None => {
            let filter = tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(&cli.log_level));
            init!(builder.with_env_filter(filter));
        }
    }
}

/// The level a filter of one bare level name enables (`info`; not `INFO` or a
/// directive with a target), which `EnvFilter` would parse to the same filter.
fn bare_level(filter: &str) -> Option<tracing_subscriber::filter::LevelFilter> {
    use tracing_subscriber::filter::LevelFilter;
    Some(match filter {
        "off" => LevelFilter::OFF,
        "error" => LevelFilter::ERROR,
        "warn" => LevelFilter::WARN,
        "info" => LevelFilter::INFO,
        "debug" => LevelFilter::DEBUG,
        "trace" => LevelFilter::TRACE,
        _ => return None,
    })
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match &cli.command {
        Command::Version => {
            println!("aigw {}", env!("CARGO_PKG_VERSION"));
            ExitCode::SUCCESS
        }
        Command::Validate { paths } => validate(paths),
        Command::Run(_) | Command::Simulate(_) => {
            init_logging(&cli);
            let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
            let threads = match &cli.command {
                Command::Run(args) => worker_threads(args.worker_threads),
                _ => None,
            };
            let built = match threads {
                // One thread: the client's connection task and the pooled upstream
                // connection's task hand requests and responses to each other without
                // waking another thread (a futex call each way) or stealing work.
                Some(1) => tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build(),
                Some(n) => tokio::runtime::Builder::new_multi_thread()
                    .worker_threads(n)
                    .enable_all()
                    .build(),
                None => tokio::runtime::Builder::new_multi_thread()
                    .enable_all()
                    .build(),
            };
            let rt = match built {
                Ok(rt) => rt,
                Err(e) => {
                    eprintln!("aigw: cannot start the runtime: {e}");
                    return ExitCode::FAILURE;
                }
            };
            let result = rt.block_on(async {
                match cli.command {
                    Command::Run(args) => {
                        let format = if cli.log_json {
                            AccessLogFormat::Json
                        } else {
                            AccessLogFormat::Text
                        };
                        run(*args, AccessLog::stderr(format)).await
                    }
                    Command::Simulate(args) => simulate(args).await,
                    _ => Ok(()),
                }
            });
            match result {
                Ok(()) => ExitCode::SUCCESS,
                Err(e) => {
                    tracing::error!("{e}");
                    eprintln!("aigw: {e}");
                    ExitCode::FAILURE
                }
            }
        }
    }
}

/// Issues found after loading get the `file:line` of their field, like load errors.
fn located(config: &Config, e: aigw_core::Error) -> aigw_core::Error {
    match e {
        aigw_core::Error::InvalidConfig { mut issues } => {
            config.locate(&mut issues);
            aigw_core::Error::InvalidConfig { issues }
        }
        other => other,
    }
}

/// Runtime threads for `aigw run`: the flag, else one thread on machines with up to
/// two cores (where a second worker mostly adds cross-thread wake-ups: the load
/// generator, the upstream and the gateway share the cores), else one per core.
fn worker_threads(flag: Option<u16>) -> Option<usize> {
    if let Some(n) = flag {
        return Some(usize::from(n));
    }
    let cores = std::thread::available_parallelism().map_or(1, std::num::NonZero::get);
    (cores <= 2).then_some(1)
}

fn validate(paths: &[PathBuf]) -> ExitCode {
    match Config::load_paths(paths) {
        Ok(config) => {
            for s in config.summaries() {
                println!(
                    "{}: ok: {} route(s), {} AI service backend(s), {} backend(s), {} security policy(ies){}",
                    s.file,
                    s.routes,
                    s.ai_service_backends,
                    s.backends,
                    s.security_policies,
                    if s.ignored.is_empty() {
                        String::new()
                    } else {
                        format!(", {} ignored document(s)", s.ignored.len())
                    }
                );
            }
            for w in config.warnings() {
                eprintln!("warning: {w}");
            }
            for w in aigw_axum::config::unserved_pools(&config) {
                eprintln!("warning: {w}");
            }
            let secrets = SecretSource::from_config(&config).with_env_fallback();
            if let Err(e) = aigw_core::routing::Snapshot::compile_with_secrets(&config, &secrets) {
                eprintln!("{}", located(&config, e));
                return ExitCode::FAILURE;
            }
            if let Err(e) = aigw_core::limits::RateLimits::default().meter(&config) {
                eprintln!("{}", located(&config, e));
                return ExitCode::FAILURE;
            }
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("{e}");
            ExitCode::FAILURE
        }
    }
}

/// The process's planner loader: credentials, secrets and rate-limit counters that
/// every configuration generation shares.
fn loader(
    secrets_dir: Option<&PathBuf>,
    resolver: config::CredentialResolver,
    limits: Arc<aigw_core::limits::RateLimits>,
) -> Loader {
    let loader = Loader::new(resolver)
        .with_limits(limits)
        .with_env_fallback();
    match secrets_dir {
        Some(dir) => loader.with_secrets_dir(dir.clone()),
        None => loader,
    }
}

fn snapshot_for(
    planner: aigw_core::planner::Planner,
    pickers: &aigw_axum::inference_pool::grpc::ExtProcPickers,
) -> Snapshot {
    config::snapshot_with_pickers(
        Arc::new(planner),
        Arc::new(aigw_providers::ProviderFactory),
        Some(pickers),
    )
}

async fn bind(addr: SocketAddr) -> Result<TcpListener, String> {
    TcpListener::bind(addr)
        .await
        .map_err(|e| format!("cannot listen on {addr}: {e}"))
}

async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {},
        () = term => {},
    }
    tracing::info!("shutting down: draining in-flight requests");
}

async fn run(args: RunArgs, access_log: AccessLog) -> Result<(), String> {
    let admin_state = Arc::new(AdminState::default());
    #[cfg(feature = "jemalloc")]
    admin_state.set_memory_probe(aigw_core::memory::jemalloc);
    if let Some(path) = &args.audit_log {
        aigw_core::audit::install_path(path).map_err(|e| format!("--audit-log {path}: {e}"))?;
    }
    // Before the configuration: an invalid OTEL_* setting fails start-up, named.
    let exporters = aigw_core::telemetry::Exporters::from_env()?;
    access_log.set_request_attributes(exporters.telemetry().log_attributes());
    admin_state.genai().attach_telemetry(&exporters);
    let mut resolver = credentials::default_resolver();
    // What the files were before the first read: the reloader compares with this.
    let initial_files = aigw_core::planner::Baseline::take(&args.config);
    let (config, mode) = if !args.config.is_empty() {
        let config = Config::load_paths(&args.config).map_err(|e| e.to_string())?;
        let files: Vec<String> = args
            .config
            .iter()
            .map(|p| p.display().to_string())
            .collect();
        (config, format!("configuration mode: {}", files.join(", ")))
    } else if let Some(auto) = autoconfig::from_env(|k| std::env::var(k).ok()) {
        let config = Config::from_yaml_str(&auto.yaml, "environment").map_err(|e| e.to_string())?;
        (
            config,
            format!("environment mode: routing to {}", auto.providers.join("; ")),
        )
    } else {
        let sim_listener = bind("127.0.0.1:0".parse().map_err(|_| "bad address")?).await?;
        let sim_addr = sim_listener
            .local_addr()
            .map_err(|e| format!("simulator address: {e}"))?;
        let sim = Simulator::new(
            SimulatorConfig::default()
                .with_openai_keys([autoconfig::SIM_OPENAI_KEY])
                .with_anthropic_keys([autoconfig::SIM_ANTHROPIC_KEY])
                .with_aws(AwsCredentials::new(
                    autoconfig::SIM_AWS_ACCESS_KEY_ID,
                    autoconfig::SIM_AWS_SECRET_KEY,
                    autoconfig::SIM_AWS_REGION,
                ))
                .with_gcp_tokens([aigw_axum::simulator::SIM_GCP_TOKEN]),
        );
        resolver = credentials::resolver_with_gcp_metadata(
            aigw_auth::AuthOptions::default(),
            format!("http://{sim_addr}"),
        );
        tokio::spawn(async move {
            if let Err(e) = sim.serve(sim_listener, std::future::pending()).await {
                tracing::error!("simulator stopped: {e}");
            }
        });
        let auto = autoconfig::simulator(sim_addr);
        let config = Config::from_yaml_str(&auto.yaml, "simulator").map_err(|e| e.to_string())?;
        (
            config,
            format!(
                "SIMULATOR mode: no provider configured (no CONFIG, no OPENAI_API_KEY, AZURE_OPENAI_API_KEY, ANTHROPIC_API_KEY or AWS credentials); answering from the bundled simulator at {sim_addr}: models bedrock/* -> Bedrock, gemini-* -> Vertex AI, anthropic/* and claude-* -> Anthropic, cohere/* and rerank-* -> Cohere, anything else -> OpenAI"
            ),
        )
    };
    let global: Option<Arc<dyn aigw_core::limits::LimitStore>> = match &args.redis_url {
        Some(url) => {
            let store = aigw_core::limits::RedisStore::new(url, args.redis_timeout)
                .map_err(|e| e.to_string())?;
            tracing::info!(
                redis = store.display_url(),
                "global rate limits counted in Redis"
            );
            mirror_conversations(url)?;
            Some(Arc::new(store))
        }
        None => None,
    };
    let key_registry = args
        .keys
        .open(args.redis_url.as_ref(), global.clone())
        .await?;
    let admin_api = args.keys.admin_api(key_registry.clone())?;
    if let Some(api) = &admin_api {
        api.set_routes(admin_api::routes_of(&config));
    }
    let limits = Arc::new(
        aigw_core::limits::RateLimits::new(global)
            .with_failure_modes(aigw_core::limits::FailureModes {
                rate_limits_deny: args.rate_limit_fail_closed,
                quotas_deny: args.quota_fail_closed,
            })
            .with_mode(
                args.limit_mode
                    .with_default_output(args.reserve_output_tokens),
            ),
    );
    // Usage estimates for cut streams need the tokenizer tables; build them off the
    // request path.
    std::thread::spawn(aigw_core::estimate::warm_up);
    admin_state.set_rate_limit_stats(limits.stats().clone());
    let loader = Arc::new(loader(args.secrets_dir.as_ref(), resolver, limits));
    config::log_warnings(&config);
    let pickers = Arc::new(args.pickers()?);
    let snapshot = snapshot_for(
        loader.compile(&config).map_err(|e| e.to_string())?,
        &pickers,
    );
    let settings = Settings {
        max_body_bytes: args.max_body_bytes,
        max_header_bytes: args.max_header_bytes,
        retry: aigw_axum::RetryPolicy {
            max_attempts: args.max_attempts,
            ..aigw_axum::RetryPolicy::default()
        },
        trace_propagation: args.trace_propagation,
        body_idle_timeout: nonzero(args.limits.request_body_idle_timeout),
        body_timeout: nonzero(args.limits.request_body_timeout),
        max_in_flight: (args.limits.max_in_flight > 0).then_some(args.limits.max_in_flight),
        max_buffered_body_bytes: (args.limits.max_buffered_body_bytes > 0)
            .then_some(args.limits.max_buffered_body_bytes),
        prefixes: aigw_core::api::EndpointPrefixes::parse(
            &args.root_prefix,
            &args.endpoint_prefixes,
        )
        .map_err(|e| format!("--root-prefix / --endpoint-prefixes: {e}"))?,
        cancel_drain: aigw_core::estimate::CancelDrain {
            timeout: args.limits.cancel_drain_timeout,
            max_bytes: args.limits.cancel_drain_max_bytes,
        },
        ..Settings::default()
    };
    let spending = args.spend.build(
        args.redis_url.as_ref(),
        args.redis_timeout,
        Duration::from_millis(args.reload_interval_ms.max(100)),
        args.reserve_output_tokens,
    )?;
    let mut builder = Gateway::builder(snapshot);
    if let Some(s) = &spending {
        admin_state.set_spending(s.clone());
        builder = builder.spending(s.clone());
    }
    let gateway = builder
        .settings(settings)
        .telemetry(exporters.telemetry())
        .record_sink(Arc::new(Tee({
            let mut sinks: Vec<Arc<dyn aigw_axum::RecordSink>> =
                vec![Arc::new(access_log.clone()), Arc::new(admin_state.clone())];
            if let Some(keys) = &key_registry {
                sinks.push(Arc::new(aigw_axum::virtual_keys::KeyUsageSink(
                    keys.clone(),
                )));
            }
            sinks
        })))
        .build()
        .map_err(|e| e.to_string())?;

    let mcp_crypto = args.mcp_crypto();
    let mcp_settings = aigw_core::mcp::McpSettings {
        telemetry: exporters.telemetry(),
        ..args.mcp_settings()
    };
    admin_state.set_mcp_metrics(mcp_settings.metrics.clone());
    let mcp_upstream: Arc<dyn aigw_core::mcp::McpUpstream> = Arc::new(
        aigw_axum::mcp::HyperUpstream::new(aigw_axum::client::ClientSettings::default())
            .map_err(|e| e.to_string())?,
    );
    let mcp_gateway = aigw_core::mcp::McpGateway::new(
        &config,
        &loader.secrets(&config),
        mcp_crypto.clone(),
        mcp_settings.clone(),
        mcp_upstream.clone(),
    )
    .map_err(|e| e.to_string())?;
    if !mcp_gateway.routes().is_empty() {
        if args.mcp_session_seed.is_none() {
            tracing::warn!(
                "no --mcp-session-seed: MCP session ids are sealed with a random key and end with this process"
            );
        }
        for r in mcp_gateway.routes() {
            tracing::info!(
                route = r.key(),
                path = r.path(),
                backends = r.backends().count(),
                "serving MCPRoute"
            );
        }
    }
    let mcp = aigw_core::mcp::McpService::new(mcp_gateway);

    let auth_flags = args.client_auth_flags();
    let jwks_refresh = Duration::from_secs(args.jwks_refresh_secs.max(1));
    let auth_plan =
        client_auth_config::build(Some(&config), args.secrets_dir.as_deref(), &auth_flags)
            .map_err(|e| e.to_string())?;
    let auth_layer = ClientAuthLayer::disabled();
    client_auth_config::prime(&gateway.http_client(), &auth_plan.remote).await;
    if auth_plan.auth.is_some() {
        tracing::info!("client authentication required");
    }
    auth_layer.set(auth_plan.auth);
    auth_layer.set_virtual_keys(key_registry.clone());
    client_auth_config::spawn_refresh(gateway.http_client(), auth_plan.remote, jwks_refresh);

    let listener = bind(args.listen).await?;
    let admin_listener = bind(args.admin).await?;
    tracing::info!("{mode}");
    tracing::info!(listen = %args.listen, admin = %args.admin, "aigw gateway listening");

    let mut admin_router = match &admin_api {
        Some(api) => admin::router(admin_state.clone()).merge(api.router()),
        None => admin::router(admin_state.clone()),
    };
    if let Some(s) = &spending {
        // The spend API shares the admin API's token; without one it answers 403.
        admin_router = admin_router.merge(aigw_axum::admin_usage::router(
            s.clone(),
            admin_api.as_ref().map(|api| api.token().clone()),
        ));
    }
    let admin_limits = args.limits.admin();
    let (admin_stop, admin_stopped) = tokio::sync::oneshot::channel::<()>();
    let admin_task = tokio::spawn(async move {
        server::serve(admin_listener, admin_router, admin_limits, async {
            let _ = admin_stopped.await;
        })
        .await
    });

    if !args.config.is_empty() {
        let paths = args.config.clone();
        let secrets_dir = args.secrets_dir.clone();
        let gw = gateway.clone();
        let state = admin_state.clone();
        let loader = loader.clone();
        let auth_layer = auth_layer.clone();
        let auth_flags = auth_flags.clone();
        let mcp = mcp.clone();
        let admin_api = admin_api.clone();
        let interval = Duration::from_millis(args.reload_interval_ms.max(100));
        let mut reloader = Reloader::starting_at(
            initial_files,
            paths,
            move |paths: &[PathBuf]| {
                let (c, planner) = loader.load(paths)?;
                config::log_warnings(&c);
                let auth =
                    client_auth_config::build(Some(&c), secrets_dir.as_deref(), &auth_flags)?;
                let mcp_gateway = aigw_core::mcp::McpGateway::new(
                    &c,
                    &loader.secrets(&c),
                    mcp_crypto.clone(),
                    mcp_settings.clone(),
                    mcp_upstream.clone(),
                )?;
                Ok((planner, auth, mcp_gateway, admin_api::routes_of(&c)))
            },
            move |(planner, auth, mcp_gateway, routes): (aigw_core::planner::Planner, _, _, _)| {
                if let Some(api) = &admin_api {
                    api.set_routes(routes);
                }
                gw.swap(snapshot_for(planner, &pickers));
                mcp.swap(mcp_gateway);
                let client = gw.http_client();
                let layer = auth_layer.clone();
                // Remote keys are fetched before the new settings take over.
                tokio::spawn(async move {
                    client_auth_config::prime(&client, &auth.remote).await;
                    layer.set(auth.auth);
                    client_auth_config::spawn_refresh(client, auth.remote, jwks_refresh);
                });
            },
        );
        tokio::spawn(async move {
            let mut ticker = tokio::time::interval(interval);
            ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                ticker.tick().await;
                if let Some(applied) = reloader.poll() {
                    state.reloaded(applied);
                }
            }
        });
    }

    access_log.spawn_flusher();
    admin_state.set_ready(true);
    let draining = admin_state.clone();
    // MCPRoutes are dispatched before the LLM routes' client authentication: one with
    // its own OAuth verifies the bearer token itself; the others get the gateway-level
    // client authentication too. The dispatcher is served without an axum `Router` in
    // front: with one fallback it would only add a route lookup, a service clone and a
    // boxed future to every request (the dispatcher finishes responses as it would).
    let app =
        aigw_axum::mcp::McpDispatch::new(mcp, tower::Layer::layer(&auth_layer, gateway.clone()))
            .with_client_auth(auth_layer.clone());
    let limits = args.limits.server(args.max_header_bytes);
    let drained = server::serve(listener, app, limits, async move {
        shutdown_signal().await;
        draining.set_ready(false);
    })
    .await;
    admin_state.set_ready(false);
    // Every request has finished and recorded itself (its usage in the access log,
    // the metrics and the meters): write the log out, then stop the admin listener
    // (a last scrape could still run while the gateway drained).
    access_log.flush();
    let _ = admin_stop.send(());
    let _ = admin_task.await;
    if drained.cut > 0 {
        tracing::warn!(
            connections = drained.cut,
            "exited with connections cut at the drain deadline"
        );
    } else {
        tracing::info!("drained: every in-flight request finished");
    }
    access_log.flush();
    exporters.shutdown().await;
    Ok(())
}

async fn simulate(args: SimulateArgs) -> Result<(), String> {
    let mut cfg = SimulatorConfig {
        fail_status: args.fail_status,
        chunks: args.chunks,
        chunk_interval: Duration::from_millis(args.chunk_interval_ms),
        latency: Duration::from_millis(args.latency_ms),
        ..SimulatorConfig::default()
    };
    if !args.openai_key.is_empty() {
        cfg = cfg.with_openai_keys(args.openai_key);
    }
    if !args.anthropic_key.is_empty() {
        cfg = cfg.with_anthropic_keys(args.anthropic_key);
    }
    let listener = bind(args.listen).await?;
    tracing::info!(listen = %args.listen, fail_status = ?args.fail_status, "aigw simulator listening");
    Simulator::new(cfg)
        .serve(listener, shutdown_signal())
        .await
        .map_err(|e| format!("simulator: {e}"))
}

/// Stored Responses API conversations shared through Redis, so `previous_response_id`
/// and stored-response reads work on any instance.
fn mirror_conversations(url: &aigw_core::Secret) -> Result<(), String> {
    let mirror = aigw_core::conversations::RedisConversations::new(url, CONVERSATION_TIMEOUT)
        .map_err(|e| e.to_string())?;
    aigw_providers::responses::store::set_mirror(Arc::new(mirror));
    Ok(())
}

/// The bound on reading one stored conversation from Redis (they run to megabytes).
const CONVERSATION_TIMEOUT: std::time::Duration = std::time::Duration::from_millis(500);

fn redis_timeout(s: &str) -> Result<std::time::Duration, String> {
    aigw_core::config::parse_duration(s).map_err(|e| e.to_string())
}

/// Virtual keys and the admin API.
#[derive(Args, Debug)]
struct KeyArgs {
    /// Accept gateway-issued virtual keys (`sk-aigw-…`), administered through the admin
    /// API; every request must then authenticate. Keys live in Redis with
    /// `--redis-url`, else in `--virtual-keys-file`.
    #[arg(long, env = "AIGW_VIRTUAL_KEYS")]
    virtual_keys: bool,
    /// The JSON file virtual keys are kept in without Redis (written atomically;
    /// salted hashes only).
    #[arg(long, env = "AIGW_VIRTUAL_KEYS_FILE", default_value = "aigw-keys.json")]
    virtual_keys_file: PathBuf,
    /// The token the admin API and console require (`Authorization: Bearer`); without
    /// it (or `--admin-token-file`) the admin API is not served.
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
}

impl KeyArgs {
    /// The virtual-key registry, when virtual keys are on.
    async fn open(
        &self,
        redis: Option<&aigw_core::Secret>,
        counters: Option<Arc<dyn aigw_core::limits::LimitStore>>,
    ) -> Result<Option<Arc<aigw_core::keys::KeyRegistry>>, String> {
        use aigw_axum::virtual_keys::{StoreChoice, open};
        if !self.virtual_keys {
            return Ok(None);
        }
        let choice = match redis {
            Some(url) => StoreChoice::Redis(url.clone()),
            None => StoreChoice::File(self.virtual_keys_file.clone()),
        };
        let registry = open(choice, counters)
            .await
            .map_err(|e| format!("--virtual-keys: {e}"))?;
        tracing::info!(
            store = %registry.describe(),
            keys = registry.list().len(),
            "virtual keys enabled: every request must authenticate"
        );
        Ok(Some(registry))
    }

    /// The admin API, when an admin token is configured.
    fn admin_api(
        &self,
        keys: Option<Arc<aigw_core::keys::KeyRegistry>>,
    ) -> Result<Option<AdminApi>, String> {
        let token = match (&self.admin_token, &self.admin_token_file) {
            (Some(t), _) => Some(t.clone()),
            (None, Some(path)) => Some(aigw_core::Secret::new(
                std::fs::read_to_string(path)
                    .map_err(|e| format!("--admin-token-file {}: {e}", path.display()))?
                    .trim(),
            )),
            (None, None) => None,
        };
        let Some(token) = token.as_ref().and_then(AdminToken::new) else {
            if keys.is_some() {
                tracing::warn!(
                    "admin API disabled (no --admin-token): virtual keys are accepted but cannot be administered from this instance"
                );
            } else {
                tracing::info!("admin API disabled: no --admin-token");
            }
            return Ok(None);
        };
        tracing::info!("admin API and console served on the admin listener (/admin/…)");
        let api = AdminApi::new(token);
        Ok(Some(match keys {
            Some(k) => api.keys(k),
            None => api,
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tracing_subscriber::layer::Layer;

    /// A bare level enables what `EnvFilter` parsing the same text enables; anything
    /// else stays with `EnvFilter`.
    #[test]
    fn a_bare_level_filters_as_env_filter_does() {
        for name in ["off", "error", "warn", "info", "debug", "trace"] {
            let env = tracing_subscriber::EnvFilter::new(name);
            let hint = Layer::<tracing_subscriber::Registry>::max_level_hint(&env);
            assert_eq!(bare_level(name), hint, "{name}");
        }
        for other in ["INFO", " info", "info,aigw=debug", "aigw=info", "", "3"] {
            assert_eq!(bare_level(other), None, "{other:?}");
        }
    }
}
