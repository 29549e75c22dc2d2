//! `pressluft-tui`: a live terminal dashboard of nodes, sites and jobs.
//!
//! ```text
//! main   flags, terminal setup and the loop: receive Event → action → update → effects → draw
//! event  the one channel's Event type and the terminal input thread
//! keys   the key map (per mode: view, filter, overlay) and the help text
//! net    Tokio tasks: list RPCs, WatchJobs/WatchJob streams with reconnect, commands
//! app    App state, View, Overlay, Action, Effect and update() (pure, unit-tested)
//! lists  lists with filter, sort and a selection that follows its item
//! ui     draw(frame, &App): read-only rendering (tested on TestBackend)
//! ```

// Doc comments on clap types are help text, printed verbatim: no Markdown backticks.
#![allow(clippy::doc_markdown)]

mod app;
mod event;
mod keys;
mod lists;
mod net;
mod ui;

use std::process::ExitCode;

use anyhow::Context as _;
use clap::Parser;
use pressluft_client::{Clients, Config, ConnectArgs, Env, Target};
use ratatui::DefaultTerminal;
use tokio::sync::mpsc;

use crate::app::{App, Effect};
use crate::event::Event;
use crate::event::EventSender;

/// Live terminal dashboard for Pressluft: nodes, sites and jobs as they change.
///
/// Connects like the pressluft CLI: --server/--token/--context, else PRESSLUFT_SERVER and
/// PRESSLUFT_TOKEN, else the config file's current context (see `pressluft login`).
#[derive(Debug, Parser)]
#[command(name = "pressluft-tui", version)]
struct Args {
    #[command(flatten)]
    connect: ConnectArgs,
}

fn main() -> ExitCode {
    let args = Args::parse();
    match run(&args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("error: {err:#}");
            ExitCode::FAILURE
        }
    }
}

fn run(args: &Args) -> anyhow::Result<()> {
    // Resolve before taking over the terminal, so configuration errors print normally.
    let path = Config::default_path();
    let config = match &path {
        Some(path) => Config::load(path)?,
        None => Config::default(),
    };
    let target = Target::resolve(
        &args.connect.overrides(),
        &Env::from_process(),
        &config,
        path.as_deref()
            .unwrap_or_else(|| std::path::Path::new("(no config file)")),
    )?;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    runtime.block_on(async {
        // Lazy: the dashboard starts even when the server is down, and shows it.
        let clients = pressluft_client::connect_lazy(&target)?;
        let mut terminal = ratatui::init();
        let mut app = App::new(target.server.clone());
        // NO_COLOR (any value) or TERM=dumb: words and bold/dim only, no colours.
        app.color = std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty())
            && std::env::var("TERM").map_or(true, |t| t != "dumb");
        let result = ui_loop(&mut terminal, app, &clients).await;
        ratatui::restore();
        result
    })
}

async fn ui_loop(
    terminal: &mut DefaultTerminal,
    mut app: App,
    clients: &Clients,
) -> anyhow::Result<()> {
    let (tx, mut rx) = mpsc::unbounded_channel();
    net::reload(clients, &tx);
    tokio::spawn(net::watch_jobs(clients.job.clone(), tx.clone()));
    tokio::spawn(tick(tx.clone()));
    event::spawn_input(tx.clone());
    let mut loop_state = Loop {
        clients,
        tx,
        followed: None,
    };

    while app.running {
        terminal.draw(|frame| ui::draw(frame, &app))?;
        let Some(event) = rx.recv().await else { break };
        loop_state.handle(&mut app, event, terminal)?;
        // Apply whatever else is queued (a burst of job changes) before drawing again.
        while let Ok(event) = rx.try_recv() {
            loop_state.handle(&mut app, event, terminal)?;
        }
    }
    if let Some(task) = loop_state.followed.take() {
        task.abort();
    }
    Ok(())
}

/// A tick a second: durations of running jobs move on screen.
async fn tick(tx: EventSender) {
    let mut interval = tokio::time::interval(std::time::Duration::from_secs(1));
    loop {
        interval.tick().await;
        let now = prost_types::Timestamp::from(std::time::SystemTime::now());
        if tx.send(Event::Tick(now)).is_err() {
            return;
        }
    }
}

/// What the loop holds besides the app: the clients, the channel, the followed job's task.
struct Loop<'a> {
    clients: &'a Clients,
    tx: EventSender,
    followed: Option<tokio::task::JoinHandle<()>>,
}

impl Loop<'_> {
    fn handle(
        &mut self,
        app: &mut App,
        event: Event,
        terminal: &mut DefaultTerminal,
    ) -> anyhow::Result<()> {
        if let Event::InputFailed(error) = &event {
            anyhow::bail!("cannot read terminal input: {error}");
        }
        let Some(action) = keys::action(app, event) else {
            return Ok(());
        };
        for effect in app.update(action) {
            self.carry_out(effect, terminal);
        }
        Ok(())
    }

    fn carry_out(&mut self, effect: Effect, terminal: &mut DefaultTerminal) {
        let (clients, tx) = (self.clients, &self.tx);
        match effect {
            Effect::Reload => net::reload(clients, tx),
            Effect::LoadAudit => net::load_audit(clients, tx),
            Effect::LoadEnvironment(env) => net::load_environment(clients, tx, env),
            Effect::LoadBackups(env) => net::load_backups(clients, tx, env),
            Effect::LoadDrift {
                staging_id,
                production_id,
            } => net::load_drift(clients, tx, staging_id, production_id),
            Effect::WatchJob(job) => {
                if let Some(task) = self.followed.take() {
                    task.abort();
                }
                self.followed = Some(net::watch_job(&clients.job, tx, job));
            }
            Effect::StopWatchJob => {
                if let Some(task) = self.followed.take() {
                    task.abort();
                }
            }
            Effect::Run(command) => net::run(clients, tx, command),
            Effect::Copy(text) => copy_to_clipboard(terminal, &text),
        }
    }
}

/// Puts `text` on the clipboard with OSC 52 (terminals that do not support it ignore it).
fn copy_to_clipboard(terminal: &mut DefaultTerminal, text: &str) {
    use base64::Engine as _;
    use std::io::Write as _;
    let encoded = base64::engine::general_purpose::STANDARD.encode(text);
    let backend = terminal.backend_mut();
    let _ = write!(backend, "\x1b]52;c;{encoded}\x07");
    let _ = backend.flush();
}
