//! One real Envoy in front of its own `aigw-extproc` (the sidecar deployment: Envoy
//! opens a router and an upstream ext_proc stream per request, and both must reach the
//! same processor), started from the bootstrap `aigw-extproc envoy-config` prints.
#![allow(unreachable_pub, dead_code, clippy::print_stderr)]

use super::envoy::{Envoy, Proc, envoy_config, free_port, wait_http_ok};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

/// Envoy in front of an `aigw-extproc` over one configuration, both killed on drop.
/// Everything the pair writes (bootstrap, socket, logs) goes into its own directory,
/// so several pairs run side by side.
pub struct Stack {
    pub envoy: Envoy,
    _extproc: Proc,
    /// Envoy's listener, `http://127.0.0.1:PORT`.
    pub base: String,
    /// The processor's admin listener, `http://127.0.0.1:PORT`.
    pub admin: String,
    extproc_log: PathBuf,
}

impl Stack {
    /// Starts the pair over `config` in `dir`; `redis` goes in through
    /// `AIGW_REDIS_URL`, `args` are more `aigw-extproc` flags.
    pub async fn start(
        envoy_bin: &Path,
        dir: &Path,
        config: &Path,
        redis: Option<&str>,
        args: &[&str],
    ) -> Self {
        let sock = dir.join("extproc.sock");
        let extproc_addr = format!("unix://{}", sock.display());
        let (listen, envoy_admin, admin) = (free_port(), free_port(), free_port());
        let bootstrap = envoy_config(config, &extproc_addr, (listen, envoy_admin), &[], dir);
        let extproc_log = dir.join("extproc.log");
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_aigw-extproc"));
        cmd.arg("--config")
            .arg(config)
            .args(["--listen", &extproc_addr])
            .args(["--admin", &format!("127.0.0.1:{admin}")])
            .args(args)
            .env("RUST_LOG", "info")
            .env_remove("AIGW_REDIS_URL")
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&extproc_log).unwrap());
        if let Some(url) = redis {
            cmd.env("AIGW_REDIS_URL", url);
        }
        let extproc = Proc(cmd.spawn().unwrap());
        let admin = format!("http://127.0.0.1:{admin}");
        wait_http_ok(&format!("{admin}/health")).await;
        let envoy = Envoy::start(envoy_bin, &bootstrap, dir, envoy_admin).await;
        Self {
            envoy,
            _extproc: extproc,
            base: format!("http://127.0.0.1:{listen}"),
            admin,
            extproc_log,
        }
    }

    /// The processor's Prometheus metrics.
    pub async fn metrics(&self) -> String {
        reqwest::get(format!("{}/metrics", self.admin))
            .await
            .unwrap()
            .text()
            .await
            .unwrap()
    }

    /// What the processor logged so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.extproc_log).unwrap_or_default()
    }
}

/// The count of `aigw_ratelimit_decisions_total{decision}` in `metrics`.
pub fn decisions(metrics: &str, decision: &str) -> u64 {
    let prefix = format!("aigw_ratelimit_decisions_total{{decision=\"{decision}\"}} ");
    metrics
        .lines()
        .find_map(|l| l.strip_prefix(&prefix))
        .unwrap_or_else(|| panic!("no {decision} decisions in\n{metrics}"))
        .parse()
        .unwrap()
}
