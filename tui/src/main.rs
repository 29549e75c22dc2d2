//! `pressluft-tui`: a live terminal dashboard of nodes, sites and jobs.
//!
//! ```text
//! main   flags, terminal setup and the loop: receive Event → action → update → draw
//! event  the one channel's Event type and the terminal input thread
//! net    Tokio tasks: list RPCs and the WatchJobs stream with reconnect and backoff
//! app    App state, Tab, Action, the key map and update() (pure, unit-tested)
//! ui     draw(frame, &App): read-only rendering (tested on TestBackend)
//! ```

// Doc comments on clap types are help text, printed verbatim: no Markdown backticks.
#![allow(clippy::doc_markdown)]

mod app;
mod event;
mod net;
mod ui;

use std::process::ExitCode;

use anyhow::Context as _;
use clap::Parser;
use pressluft_client::{Clients, Config, ConnectArgs, Env, Target};
use ratatui::DefaultTerminal;
use tokio::sync::mpsc;

use crate::app::{App, Effect};
use crate::event::{Event, EventSender};

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
        let result = ui_loop(&mut terminal, App::new(target.server.clone()), &clients).await;
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
    event::spawn_input(tx.clone());

    while app.running {
        terminal.draw(|frame| ui::draw(frame, &app))?;
        let Some(event) = rx.recv().await else { break };
        handle(&mut app, event, clients, &tx)?;
        // Apply whatever else is queued (a burst of job changes) before drawing again.
        while let Ok(event) = rx.try_recv() {
            handle(&mut app, event, clients, &tx)?;
        }
    }
    Ok(())
}

fn handle(app: &mut App, event: Event, clients: &Clients, tx: &EventSender) -> anyhow::Result<()> {
    if let Event::InputFailed(error) = &event {
        anyhow::bail!("cannot read terminal input: {error}");
    }
    if let Some(action) = app::action(event) {
        match app.update(action) {
            Some(Effect::Reload) => net::reload(clients, tx),
            None => {}
        }
    }
    Ok(())
}
