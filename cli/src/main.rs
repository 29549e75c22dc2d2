//! `pressluft`: the command-line client of the Pressluft control plane.
//!
//! ```text
//! main     the command tree, the runtime and the exit code
//! global   flags every command shares (--server, --token, --context, -o) and the Ctx
//! error    CliError: one line on stderr, an exit code per error kind
//! output   aligned tables, key/value details, JSON helpers
//! auth     login, logout, whoami
//! context  the config file's contexts
//! node     node list/show/add/update/provision/decommission/key/php/db
//! site     site list/show/create/rename/delete
//! env      environments: clone, deploy, rollback, releases, update, drift, promote, queries
//! backup   backup create/list/show/restore/schedule
//! domain   domain add/list/remove; cache set/purge
//! admin    token, user, settings, audit
//! upload   streaming a local archive for env deploy --archive
//! job      job list/show/cancel/watch/logs
//! watch    following a job: progress bar, plain lines or NDJSON, outcome and exit code
//! ```

// Doc comments on clap types are help text, printed verbatim: no Markdown backticks.
#![allow(clippy::doc_markdown)]

mod admin;
mod auth;
mod backup;
mod context;
mod domain;
mod env;
mod error;
mod global;
mod job;
mod node;
mod output;
mod site;
mod upload;
mod watch;

use std::process::ExitCode;

use clap::{CommandFactory as _, Parser, Subcommand, ValueEnum};

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
    /// Environments: clone, deploy, rollback, update, drift, promote, login
    #[command(subcommand)]
    Env(env::EnvCommand),
    /// Back up, list, restore and schedule backups
    #[command(subcommand)]
    Backup(backup::BackupCommand),
    /// Custom domains and their certificates
    #[command(subcommand)]
    Domain(domain::DomainCommand),
    /// Page and object caches
    #[command(subcommand)]
    Cache(domain::CacheCommand),
    /// Inspect, follow and cancel jobs
    #[command(subcommand)]
    Job(job::JobCommand),
    /// API tokens for scripts
    #[command(subcommand)]
    Token(admin::TokenCommand),
    /// Users of the control plane
    #[command(subcommand)]
    User(admin::UserCommand),
    /// Control-plane settings and the backup target
    #[command(subcommand)]
    Settings(admin::SettingsCommand),
    /// The audit log, newest first
    Audit(admin::AuditArgs),
    /// Print a shell completion script
    ///
    /// Example: pressluft completions bash > /etc/bash_completion.d/pressluft
    Completions {
        /// The shell
        #[arg(value_enum)]
        shell: Shell,
    },
    /// Print the man page (roff), e.g. pressluft man | man -l -
    Man,
}

/// Shells with completion scripts.
#[derive(Debug, Clone, Copy, ValueEnum)]
enum Shell {
    Bash,
    Zsh,
    Fish,
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
    // Generated from the command definitions; no config or server needed.
    match cli.command {
        Command::Completions { shell } => return completions(shell),
        Command::Man => return man_page(),
        _ => {}
    }
    let mut ctx = Ctx::load(&cli.global)?;
    match cli.command {
        Command::Login(args) => auth::login(&mut ctx, args).await,
        Command::Logout => auth::logout(&mut ctx).await,
        Command::Whoami => auth::whoami(&ctx).await,
        Command::Context(command) => context::run(&mut ctx, command),
        Command::Node(command) => node::run(&ctx, command).await,
        Command::Site(command) => site::run(&ctx, command).await,
        Command::Env(command) => env::run(&ctx, command).await,
        Command::Backup(command) => backup::run(&ctx, command).await,
        Command::Domain(command) => domain::run(&ctx, command).await,
        Command::Cache(command) => domain::run_cache(&ctx, command).await,
        Command::Job(command) => job::run(&ctx, command).await,
        Command::Token(command) => admin::run_token(&ctx, command).await,
        Command::User(command) => admin::run_user(&ctx, command).await,
        Command::Settings(command) => admin::run_settings(&ctx, command).await,
        Command::Audit(args) => admin::run_audit(&ctx, args).await,
        Command::Completions { .. } | Command::Man => Ok(()),
    }
}

fn completions(shell: Shell) -> Result<(), CliError> {
    let mut command = Cli::command();
    let mut out = Vec::new();
    let shell = match shell {
        Shell::Bash => clap_complete::Shell::Bash,
        Shell::Zsh => clap_complete::Shell::Zsh,
        Shell::Fish => clap_complete::Shell::Fish,
    };
    clap_complete::generate(shell, &mut command, "pressluft", &mut out);
    global::print_stdout(&String::from_utf8_lossy(&out))
}

fn man_page() -> Result<(), CliError> {
    let mut out = Vec::new();
    clap_mangen::Man::new(Cli::command())
        .render(&mut out)
        .map_err(|err| CliError::other(format!("cannot render the man page: {err}")))?;
    global::print_stdout(&String::from_utf8_lossy(&out))
}

/// Asks for a yes on the terminal; without one (or without a terminal) nothing happens.
pub fn confirm(question: &str) -> Result<(), CliError> {
    if !std::io::IsTerminal::is_terminal(&std::io::stdin()) {
        return Err(CliError::usage(format!(
            "{question} Confirm with --yes (stdin is not a terminal)"
        )));
    }
    eprint!("{question} [y/N] ");
    let mut answer = String::new();
    std::io::stdin()
        .read_line(&mut answer)
        .map_err(|err| CliError::other(format!("cannot read the answer: {err}")))?;
    if matches!(answer.trim(), "y" | "Y" | "yes") {
        Ok(())
    } else {
        Err(CliError::usage("not confirmed; nothing was changed"))
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
