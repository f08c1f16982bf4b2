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
