//! The `raykit` command line: `start` (a head or a node daemon, detached or `--block`),
//! `status` (the cluster as the head sees it) and `stop` (the daemons recorded on this host).
//! `status` and `stop` first remove what daemons killed on this host left
//! ([`records::sweep`]), so neither shows a daemon or a cluster that is gone.
//!
//! This module parses, checks and prints; the daemons themselves are [`crate::cluster::daemon`]. Its
//! output to the terminal is the only printing the runtime library does.
//!
//! One file per command: `start` (detaching too), `status` and `stop`.

use std::process::ExitCode;

use clap::{Parser, Subcommand};

use crate::cluster::records;
use crate::error::{Error, ErrorKind, Result};

mod start;
mod status;
mod stop;

use start::StartArgs;
use status::StatusArgs;

#[derive(Debug, Parser)]
#[command(
    name = "raykit",
    version,
    about = "Start, inspect and stop raykit cluster daemons",
    after_help = "Daemons record their address and token in $RAYKIT_HOME (default /tmp/raykit-$USER); \
                  `status`, `stop` and drivers on the same host find them there."
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Start a node daemon: the head of a new cluster (--head) or a node joining one (--address).
    Start(StartArgs),
    /// Show the cluster: nodes, resources used/total, actors and tasks by state.
    /// Records that daemons killed on this host left are removed first.
    Status(StatusArgs),
    /// Stop the daemons started on this host (records of daemons that are gone are removed).
    Stop,
}

/// Runs the `raykit` command line with the process's arguments and returns its exit code.
pub fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            let _ = e.print();
            return if e.use_stderr() {
                ExitCode::from(2)
            } else {
                ExitCode::SUCCESS
            };
        }
    };
    let default_level = match cli.command {
        Command::Start(_) => tracing::Level::INFO,
        _ => tracing::Level::WARN,
    };
    init_logging(default_level);
    let result = match cli.command {
        Command::Start(args) => start::start(args),
        Command::Status(args) => status::status(args),
        Command::Stop => stop::stop(),
    };
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}

/// Logs go to stderr at `RAYKIT_LOG` (error, warn, info, debug, trace) or `default`.
fn init_logging(default: tracing::Level) {
    let level = std::env::var("RAYKIT_LOG")
        .ok()
        .and_then(|l| l.parse().ok())
        .unwrap_or(default);
    let _ = tracing_subscriber::fmt()
        .with_max_level(level)
        .with_writer(std::io::stderr)
        .with_target(false)
        .try_init();
}

fn config_error(message: impl Into<String>) -> Error {
    Error::new(ErrorKind::Config, message)
}

/// The token given by `--token`/`RAYKIT_TOKEN` or else by `--token-file`/`RAYKIT_TOKEN_FILE`.
fn given_token(token: Option<String>, file: Option<&std::path::Path>) -> Result<Option<String>> {
    if let Some(t) = token.filter(|t| !t.is_empty()) {
        return Ok(Some(t));
    }
    file.map(records::read_token_file).transpose()
}

/// A small runtime for the CLI's own requests.
fn client_runtime() -> Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| Error::new(ErrorKind::System, format!("cannot start a runtime: {e}")))
}
