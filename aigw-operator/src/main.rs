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
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let out = match cli.command {
        Command::Crds => aigw_operator::crd::all().and_then(|c| aigw_operator::crd::to_yaml(&c)),
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
