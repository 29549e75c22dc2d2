//! `pressluft`: the command-line client of the Pressluft control plane.
//!
//! ```text
//! main     the command tree, the runtime and the exit code
//! global   flags every command shares (--server, --token, --context, -o) and the Ctx
//! error    CliError: one line on stderr, an exit code per error kind
//! output   aligned tables, key/value details, JSON helpers
//! auth     login, logout, whoami
//! context  the config file's contexts
//! node     node list/show/add/provision/key
//! site     site list/show/create
//! job      job list/show/cancel/watch/logs
//! watch    following a job: progress bar, plain lines or NDJSON, outcome and exit code
//! ```

// Doc comments on clap types are help text, printed verbatim: no Markdown backticks.
#![allow(clippy::doc_markdown)]

mod auth;
mod context;
mod error;
mod global;
mod job;
mod node;
mod output;
mod site;
mod watch;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

use crate::error::CliError;
use crate::global::{Ctx, GlobalArgs};

/// Command-line client for Pressluft, the WordPress control plane.
///
/// The server and token come from --server/--token/--context, else PRESSLUFT_SERVER and
/// PRESSLUFT_TOKEN, else the current context of the config file
/// (~/.config/pressluft/config.toml, or PRESSLUFT_CONFIG), which `pressluft login` writes.
#[derive(Debug, Parser)]
#[command(
    name = "pressluft",
    version,
    after_help = "Exit codes: 0 ok, 1 other error, 2 usage, 3 authentication, 4 not found, \
                  5 conflict or failed precondition, 6 server or node unavailable, 7 job \
                  failed or cancelled (--wait, job watch, job logs --follow), 130 stopped \
                  watching with Ctrl-C (the job keeps running)."
)]
struct Cli {
    #[command(flatten)]
    global: GlobalArgs,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Log in and store the session token in the context
    Login(auth::LoginArgs),
    /// Revoke the session token and forget it
    Logout,
    /// Show who the token belongs to
    Whoami,
    /// List and switch the config file's contexts
    #[command(subcommand)]
    Context(context::ContextCommand),
    /// Register, inspect and provision nodes
    #[command(subcommand)]
    Node(node::NodeCommand),
    /// Create and inspect sites
    #[command(subcommand)]
    Site(site::SiteCommand),
    /// Inspect, follow and cancel jobs
    #[command(subcommand)]
    Job(job::JobCommand),
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    match run(cli).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprint!("{}", err.report());
            ExitCode::from(err.exit_code())
        }
    }
}

async fn run(cli: Cli) -> Result<(), CliError> {
    let mut ctx = Ctx::load(&cli.global)?;
    match cli.command {
        Command::Login(args) => auth::login(&mut ctx, args).await,
        Command::Logout => auth::logout(&mut ctx).await,
        Command::Whoami => auth::whoami(&ctx).await,
        Command::Context(command) => context::run(&mut ctx, command),
        Command::Node(command) => node::run(&ctx, command).await,
        Command::Site(command) => site::run(&ctx, command).await,
        Command::Job(command) => job::run(&ctx, command).await,
    }
}

#[cfg(test)]
mod tests {
    use clap::CommandFactory as _;

    use super::*;

    #[test]
    fn the_command_tree_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn global_flags_work_after_the_subcommand() {
        let cli = Cli::try_parse_from([
            "pressluft",
            "node",
            "list",
            "-o",
            "json",
            "--server",
            "http://h:1",
        ])
        .expect("parses");
        assert_eq!(cli.global.output, global::OutputFormat::Json);
        assert_eq!(cli.global.connect.server.as_deref(), Some("http://h:1"));
    }

    #[test]
    fn logs_needs_wait_on_commands_that_start_a_job() {
        let cli = Cli::try_parse_from(["pressluft", "node", "provision", "n1", "--wait", "--logs"])
            .expect("parses");
        assert!(matches!(
            cli.command,
            Command::Node(node::NodeCommand::Provision { wait, .. }) if wait.wait && wait.logs
        ));
        let err = Cli::try_parse_from(["pressluft", "node", "provision", "n1", "--logs"])
            .expect_err("--logs without --wait");
        assert_eq!(err.exit_code(), 2);
    }

    #[test]
    fn usage_errors_exit_with_2() {
        let err = Cli::try_parse_from(["pressluft", "node", "show"]).expect_err("missing id");
        assert_eq!(err.exit_code(), 2);
    }
}
