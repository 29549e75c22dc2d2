//! The dashboard's state and its only mutation path: Event → [`crate::keys::action`] →
//! [`App::update`] → [`Effect`]s the loop carries out. Nothing here touches the network or
//! the terminal.

use pressluft_proto::v1::{
    AuditEvent, Backup, BackupScope, BackupTrigger, Domain, DriftStatus, EnvironmentKind, Job,
    JobEvent, JobStatus, JobStepStatus, Node, Release, Site, job_event,
};
use std::collections::HashMap;
use std::fmt::Write as _;
use std::time::Duration;

use pressluft_client::labels::label;

use crate::event::{Outcome, Update};
use crate::lists::{List, LoadState, Move, merge_jobs, upsert_job};

/// Log lines kept for the followed job.
const MAX_LOG: usize = 2_000;

/// The top-level views, in tab order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Tab {
    Nodes,
    Sites,
    Jobs,
    Activity,
}

impl Tab {
    /// Every tab, in order.
    pub const ALL: [Tab; 4] = [Tab::Nodes, Tab::Sites, Tab::Jobs, Tab::Activity];

    /// Tab title.
    pub fn title(self) -> &'static str {
        match self {
            Tab::Nodes => "Nodes",
            Tab::Sites => "Sites",
            Tab::Jobs => "Jobs",
            Tab::Activity => "Activity",
        }
    }

    /// Position in [`Tab::ALL`].
    pub fn index(self) -> usize {
        match self {
            Tab::Nodes => 0,
            Tab::Sites => 1,
            Tab::Jobs => 2,
            Tab::Activity => 3,
        }
    }

    fn next(self) -> Tab {
        Tab::ALL[(self.index() + 1) % Tab::ALL.len()]
    }

    fn prev(self) -> Tab {
        Tab::ALL[(self.index() + Tab::ALL.len() - 1) % Tab::ALL.len()]
    }
}

/// What fills the screen.
#[derive(Debug, Clone, PartialEq)]
pub enum View {
    /// One of the tabs' lists.
    List(Tab),
    /// A site with its environments (Enter on a site).
    Site {
        site_id: String,
        /// Selected environment (index into the site's environments).
        env: usize,
    },
    /// One job, its steps and log as they happen (Enter on a job).
    Job(Box<JobView>),
}

/// The followed job.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct JobView {
    pub job_id: String,
    /// The tab Esc goes back to.
    pub back: Option<Tab>,
    /// Steps as they started and ended.
    pub steps: Vec<StepRow>,
    /// Log lines and state changes, oldest first.
    pub log: Vec<String>,
    /// Whether the `WatchJob` stream still follows the job.
    pub stream: Stream,
}

/// The followed job's stream.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum Stream {
    /// Events arrive as they happen.
    #[default]
    Following,
    /// The job ended; the stream closed.
    Finished,
    /// The stream broke, with the error.
    Broke(String),
}

/// One step of the followed job.
#[derive(Debug, Clone, PartialEq)]
pub struct StepRow {
    pub index: i32,
    pub total: i32,
    pub name: String,
    /// "started", "ok", "changed", "failed", "skipped".
    pub status: String,
    pub started: Option<prost_types::Timestamp>,
    pub finished: Option<prost_types::Timestamp>,
}

/// A modal box over the view; keys go to it while it is open.
#[derive(Debug, Clone, PartialEq)]
pub enum Overlay {
    /// Every key.
    Help,
    /// "Do this?" with what it does; y/Enter sends the command.
    Confirm {
        title: String,
        lines: Vec<String>,
        command: Command,
    },
    /// Pick one of several.
    Choose {
        title: String,
        choices: Vec<Choice>,
        selected: usize,
    },
    /// Type a value.
    Input {
        title: String,
        label: String,
        value: String,
        then: InputThen,
    },
    /// Something to read (a result, an error, a login URL).
    Message { title: String, lines: Vec<String> },
    /// Waiting for the server (loading backups, the drift report).
    Busy(String),
}

/// One option of a [`Overlay::Choose`].
#[derive(Debug, Clone, PartialEq)]
pub struct Choice {
    pub label: String,
    pub then: Next,
}

/// What picking a choice leads to.
#[derive(Debug, Clone, PartialEq)]
pub enum Next {
    /// Confirm this command.
    Confirm(Command),
    /// Ask for a value first.
    Input {
        title: String,
        label: String,
        initial: String,
        then: InputThen,
    },
}

/// What a typed value is for.
#[derive(Debug, Clone, PartialEq)]
pub enum InputThen {
    /// A git URL for a deploy; the ref is asked next.
    GitUrl { env_id: String },
    /// The git ref for a deploy of `url`.
    GitRef { env_id: String, url: String },
    /// An archive URL for a deploy.
    ArchiveUrl { env_id: String },
    /// The name of a staging clone.
    CloneName { site_id: String, env_id: String },
}

/// A deploy source.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Source {
    WordPress(String),
    Git { url: String, reference: String },
    Archive(String),
}

/// Something the user asked the server to do, confirmed before it is sent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Command {
    Deploy {
        env_id: String,
        source: Source,
    },
    Rollback {
        env_id: String,
    },
    Backup {
        env_id: String,
    },
    Restore {
        env_id: String,
        backup_id: String,
    },
    Clone {
        site_id: String,
        env_id: String,
        name: String,
    },
    Promote {
        staging_id: String,
    },
    CancelJob {
        job_id: String,
    },
    MagicLogin {
        env_id: String,
    },
    Provision {
        node_id: String,
    },
}

/// What the user or the server asks the app to do.
#[derive(Debug, Clone, PartialEq)]
pub enum Action {
    Quit,
    NextTab,
    PrevTab,
    Show(Tab),
    Move(Move),
    /// Enter: open the selected item.
    Open,
    /// Esc: close the overlay, leave the filter, or go back.
    Back,
    Refresh,
    ToggleHelp,
    /// `/`: edit the current list's filter.
    StartFilter,
    /// A key typed into the filter or an input box.
    Type(char),
    /// Backspace in the filter or an input box.
    Erase,
    /// Enter in the filter, an input box, a choice or a confirmation.
    Submit,
    /// `s`: next sort order.
    Sort,
    /// `d`: deploy the selected environment.
    Deploy,
    /// `u`: roll the selected environment back.
    Rollback,
    /// `b`: back up the selected environment now.
    BackupNow,
    /// `R`: restore a backup into the selected environment.
    Restore,
    /// `c`: clone the selected environment to a staging one.
    Clone,
    /// `p`: promote the selected staging environment.
    Promote,
    /// `x`: cancel the selected job.
    Cancel,
    /// `m`: magic login to the selected environment.
    Login,
    /// `P`: provision the selected node.
    Provision,
    /// A second passed (durations of running jobs).
    Tick(prost_types::Timestamp),
    /// Nothing changes, but draw again (resize).
    Redraw,
    /// News from the server.
    Server(Update),
}

/// Work `update` asks the loop to start.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Effect {
    /// List nodes, sites and jobs again.
    Reload,
    /// List the audit log.
    LoadAudit,
    /// Load an environment's domains and releases.
    LoadEnvironment(String),
    /// Load an environment's backups (to restore one).
    LoadBackups(String),
    /// Load production's drift report before promoting `staging_id`.
    LoadDrift {
        staging_id: String,
        production_id: String,
    },
    /// Follow a job with `WatchJob` (and stop following any other).
    WatchJob(String),
    /// Stop following the detail view's job.
    StopWatchJob,
    /// Send a confirmed command.
    Run(Command),
    /// Put text on the clipboard (OSC 52).
    Copy(String),
}

/// The whole dashboard state. Only [`App::update`] changes it; drawing only reads it.
#[derive(Debug, Clone, PartialEq)]
pub struct App {
    /// Server URL, for the header.
    pub server: String,
    /// What fills the screen.
    pub view: View,
    /// The tab highlighted in the tab bar (the list view, or the detail view's parent).
    pub tab: Tab,
    pub nodes: List<Node>,
    pub sites: List<Site>,
    pub jobs: List<Job>,
    pub audit: List<AuditEvent>,
    /// Free bytes per node id.
    pub node_free: HashMap<String, i64>,
    /// Domains per environment id.
    pub domains: HashMap<String, Result<Vec<Domain>, String>>,
    /// Releases per environment id (newest first).
    pub releases: HashMap<String, Result<Vec<Release>, String>>,
    /// The live stream's state.
    pub connection: Connection,
    /// The open overlay.
    pub overlay: Option<Overlay>,
    /// Keys edit the current list's filter.
    pub filtering: bool,
    /// The last action's result, shown in the footer.
    pub notice: Option<String>,
    /// Colours allowed (not NO_COLOR).
    pub color: bool,
    /// The time, for durations of running jobs.
    pub now: prost_types::Timestamp,
    /// False once the user quit.
    pub running: bool,
}

/// State of the `WatchJobs` stream.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Connection {
    Connecting,
    Live,
    Disconnected { error: String, retry_in: Duration },
}

impl App {
    /// A fresh app; the lists start loading.
    pub fn new(server: impl Into<String>) -> Self {
        App {
            server: server.into(),
            view: View::List(Tab::Nodes),
            tab: Tab::Nodes,
            nodes: List::default(),
            sites: List::default(),
            jobs: List::default(),
            audit: List::default(),
            node_free: HashMap::new(),
            domains: HashMap::new(),
            releases: HashMap::new(),
            connection: Connection::Connecting,
            overlay: None,
            filtering: false,
            notice: None,
            color: true,
            now: prost_types::Timestamp::default(),
            running: true,
        }
    }

    /// The site the site view shows.
    pub fn current_site(&self) -> Option<&Site> {
        match &self.view {
            View::Site { site_id, .. } => self.sites.items.iter().find(|s| &s.id == site_id),
            _ => None,
        }
    }

    /// The environment selected in the site view.
    pub fn current_env(&self) -> Option<&pressluft_proto::v1::Environment> {
        match &self.view {
            View::Site { env, .. } => self.current_site()?.environments.get(*env),
            _ => None,
        }
    }

    /// Applies an action; returns the work it calls for.
    pub fn update(&mut self, action: Action) -> Vec<Effect> {
        match action {
            Action::Server(update) => return self.apply(update),
            Action::Tick(now) => self.now = now,
            Action::Redraw => {}
            _ if self.overlay.is_some() => return self.overlay_action(action),
            _ if self.filtering => self.filter_action(&action),
            action => return self.view_action(&action),
        }
        Vec::new()
    }

    fn view_action(&mut self, action: &Action) -> Vec<Effect> {
        match *action {
            Action::Quit => self.running = false,
            Action::NextTab => return self.show(self.tab.next()),
            Action::PrevTab => return self.show(self.tab.prev()),
            Action::Show(tab) => return self.show(tab),
            Action::Move(movement) => return self.move_selection(movement),
            Action::Open => return self.open(),
            Action::Back => return self.back(),
            Action::Refresh => return self.reload(),
            Action::ToggleHelp => self.overlay = Some(Overlay::Help),
            Action::StartFilter => {
                if matches!(self.view, View::List(_)) {
                    self.filtering = true;
                }
            }
            Action::Sort => match self.view {
                View::List(Tab::Nodes) => self.nodes.next_sort(),
                View::List(Tab::Sites) => self.sites.next_sort(),
                View::List(Tab::Jobs) => self.jobs.next_sort(),
                _ => {}
            },
            Action::Deploy => self.ask_deploy(),
            Action::Rollback => self.env_command(|env| Command::Rollback { env_id: env }),
            Action::BackupNow => self.env_command(|env| Command::Backup { env_id: env }),
            Action::Restore => {
                if let Some(env) = self.current_env() {
                    let id = env.id.clone();
                    self.overlay = Some(Overlay::Busy("Loading backups…".into()));
                    return vec![Effect::LoadBackups(id)];
                }
            }
            Action::Clone => self.ask_clone(),
            Action::Promote => return self.ask_promote(),
            Action::Cancel => self.ask_cancel(),
            Action::Login => {
                if let Some(env) = self.current_env() {
                    let env_id = env.id.clone();
                    self.notice = Some("creating a login link…".into());
                    return vec![Effect::Run(Command::MagicLogin { env_id })];
                }
            }
            Action::Provision => {
                if let (View::List(Tab::Nodes), Some(node)) =
                    (&self.view, self.nodes.selected_item())
                {
                    let command = Command::Provision {
                        node_id: node.id.clone(),
                    };
                    self.confirm(command);
                }
            }
            Action::Type(_)
            | Action::Erase
            | Action::Submit
            | Action::Server(_)
            | Action::Tick(_)
            | Action::Redraw => {}
        }
        Vec::new()
    }

    fn filter_action(&mut self, action: &Action) {
        let Some(filter) = self.current_filter() else {
            self.filtering = false;
            return;
        };
        let mut text = filter.to_owned();
        match *action {
            Action::Type(c) => text.push(c),
            Action::Erase => {
                text.pop();
            }
            Action::Submit => self.filtering = false,
            Action::Back => {
                text.clear();
                self.filtering = false;
            }
            _ => return,
        }
        match self.view {
            View::List(Tab::Nodes) => self.nodes.set_filter(text),
            View::List(Tab::Sites) => self.sites.set_filter(text),
            View::List(Tab::Jobs) => self.jobs.set_filter(text),
            View::List(Tab::Activity) => self.audit.set_filter(text),
            _ => {}
        }
    }

    /// The filter of the list on screen.
    pub fn current_filter(&self) -> Option<&str> {
        match self.view {
            View::List(Tab::Nodes) => Some(&self.nodes.filter),
            View::List(Tab::Sites) => Some(&self.sites.filter),
            View::List(Tab::Jobs) => Some(&self.jobs.filter),
            View::List(Tab::Activity) => Some(&self.audit.filter),
            _ => None,
        }
    }

    fn overlay_action(&mut self, action: Action) -> Vec<Effect> {
        let Some(overlay) = self.overlay.take() else {
            return Vec::new();
        };
        match (overlay, action) {
            (_, Action::Quit) => self.running = false,
            (Overlay::Confirm { command, .. }, Action::Submit) => {
                self.notice = Some(format!("sending: {}…", command.title()));
                return vec![Effect::Run(command)];
            }
            (
                Overlay::Choose {
                    choices, selected, ..
                },
                Action::Submit,
            ) => {
                if let Some(choice) = choices.into_iter().nth(selected) {
                    match choice.then {
                        Next::Confirm(command) => self.confirm(command),
                        Next::Input {
                            title,
                            label,
                            initial,
                            then,
                        } => {
                            self.overlay = Some(Overlay::Input {
                                title,
                                label,
                                value: initial,
                                then,
                            });
                        }
                    }
                }
            }
            (
                Overlay::Choose {
                    title,
                    choices,
                    selected,
                },
                Action::Move(movement),
            ) => {
                let last = choices.len().saturating_sub(1);
                let selected = match movement {
                    Move::Up | Move::PageUp => selected.saturating_sub(1),
                    Move::Down | Move::PageDown => (selected + 1).min(last),
                    Move::Top => 0,
                    Move::Bottom => last,
                };
                self.overlay = Some(Overlay::Choose {
                    title,
                    choices,
                    selected,
                });
            }
            (
                Overlay::Input {
                    title,
                    label,
                    mut value,
                    then,
                },
                action @ (Action::Type(_) | Action::Erase),
            ) => {
                match action {
                    Action::Type(c) => value.push(c),
                    _ => {
                        value.pop();
                    }
                }
                self.overlay = Some(Overlay::Input {
                    title,
                    label,
                    value,
                    then,
                });
            }
            (Overlay::Input { value, then, .. }, Action::Submit) => {
                self.submit_input(value.trim().to_owned(), then);
            }
            (Overlay::Busy(text), Action::Back) => {
                // Stop waiting; the answer is ignored when it comes.
                self.notice = Some(format!("{text} cancelled"));
            }
            (overlay @ Overlay::Busy(_), _) => self.overlay = Some(overlay),
            (_, Action::Back | Action::ToggleHelp)
            | (Overlay::Help | Overlay::Message { .. }, Action::Submit) => {}
            (overlay, _) => self.overlay = Some(overlay),
        }
        Vec::new()
    }

    fn submit_input(&mut self, value: String, then: InputThen) {
        if value.is_empty() && !matches!(then, InputThen::GitRef { .. }) {
            self.notice = Some("nothing entered; nothing was done".into());
            return;
        }
        match then {
            InputThen::GitUrl { env_id } => {
                self.overlay = Some(Overlay::Input {
                    title: "Deploy from git".into(),
                    label: "Ref (tag, branch or commit; empty: default branch)".into(),
                    value: String::new(),
                    then: InputThen::GitRef { env_id, url: value },
                });
            }
            InputThen::GitRef { env_id, url } => self.confirm(Command::Deploy {
                env_id,
                source: Source::Git {
                    url,
                    reference: value,
                },
            }),
            InputThen::ArchiveUrl { env_id } => self.confirm(Command::Deploy {
                env_id,
                source: Source::Archive(value),
            }),
            InputThen::CloneName { site_id, env_id } => self.confirm(Command::Clone {
                site_id,
                env_id,
                name: value,
            }),
        }
    }

    fn confirm(&mut self, command: Command) {
        let lines = self.describe(&command);
        self.overlay = Some(Overlay::Confirm {
            title: command.title(),
            lines,
            command,
        });
    }

    /// What a command will do, in words, for its confirmation.
    fn describe(&self, command: &Command) -> Vec<String> {
        let env_name = |id: &str| {
            self.sites
                .items
                .iter()
                .flat_map(|s| s.environments.iter().map(move |e| (s, e)))
                .find(|(_, e)| e.id == id)
                .map_or_else(|| id.to_owned(), |(s, e)| format!("{}/{}", s.slug, e.name))
        };
        match command {
            Command::Deploy { env_id, source } => vec![
                format!("Deploy a new release to {}", env_name(env_id)),
                match source {
                    Source::WordPress(v) => format!("from WordPress {v}"),
                    Source::Git { url, reference } if reference.is_empty() => {
                        format!("from {url} (default branch)")
                    }
                    Source::Git { url, reference } => format!("from {url} at {reference}"),
                    Source::Archive(url) => format!("from the archive {url}"),
                },
                "Checked before and after the switch; switched back if it fails.".into(),
            ],
            Command::Rollback { env_id } => vec![format!(
                "Switch {} back to its previous healthy release.",
                env_name(env_id)
            )],
            Command::Backup { env_id } => {
                vec![format!(
                    "Back up {} now (database and files).",
                    env_name(env_id)
                )]
            }
            Command::Restore { env_id, backup_id } => vec![
                format!("Restore backup {backup_id} into {}.", env_name(env_id)),
                "A pre-restore backup is taken first; the checksum is verified.".into(),
            ],
            Command::Clone { env_id, name, .. } => vec![format!(
                "Clone {} into a new staging environment \"{name}\".",
                env_name(env_id)
            )],
            Command::Promote { staging_id } => {
                vec![format!("Promote {} into production.", env_name(staging_id))]
            }
            Command::CancelJob { job_id } => vec![format!("Cancel job {job_id}.")],
            Command::MagicLogin { env_id } => {
                vec![format!("A one-time login link for {}.", env_name(env_id))]
            }
            Command::Provision { node_id } => {
                let name = self
                    .nodes
                    .items
                    .iter()
                    .find(|n| &n.id == node_id)
                    .map_or(node_id.as_str(), |n| n.name.as_str());
                vec![format!(
                    "Provision node {name}: install and harden the web stack (safe to re-run)."
                )]
            }
        }
    }

    fn env_command(&mut self, make: impl FnOnce(String) -> Command) {
        if let Some(env) = self.current_env() {
            let command = make(env.id.clone());
            self.confirm(command);
        }
    }

    fn ask_deploy(&mut self) {
        let Some(env) = self.current_env() else {
            return;
        };
        let env_id = env.id.clone();
        self.overlay = Some(Overlay::Choose {
            title: "Deploy from".into(),
            selected: 0,
            choices: vec![
                Choice {
                    label: "WordPress, latest version".into(),
                    then: Next::Confirm(Command::Deploy {
                        env_id: env_id.clone(),
                        source: Source::WordPress("latest".into()),
                    }),
                },
                Choice {
                    label: "A git repository…".into(),
                    then: Next::Input {
                        title: "Deploy from git".into(),
                        label: "Repository URL (https)".into(),
                        initial: String::new(),
                        then: InputThen::GitUrl {
                            env_id: env_id.clone(),
                        },
                    },
                },
                Choice {
                    label: "A .tar.gz archive by URL…".into(),
                    then: Next::Input {
                        title: "Deploy an archive".into(),
                        label: "Archive URL".into(),
                        initial: String::new(),
                        then: InputThen::ArchiveUrl { env_id },
                    },
                },
            ],
        });
    }

    fn ask_clone(&mut self) {
        let (Some(site), Some(env)) = (self.current_site(), self.current_env()) else {
            return;
        };
        let (site_id, env_id) = (site.id.clone(), env.id.clone());
        let taken = site.environments.iter().any(|e| e.name == "staging");
        self.overlay = Some(Overlay::Input {
            title: "Clone to staging".into(),
            label: "Name of the new environment".into(),
            value: if taken {
                String::new()
            } else {
                "staging".into()
            },
            then: InputThen::CloneName { site_id, env_id },
        });
    }

    fn ask_promote(&mut self) -> Vec<Effect> {
        let (Some(site), Some(env)) = (self.current_site(), self.current_env()) else {
            return Vec::new();
        };
        if env.kind != EnvironmentKind::Staging as i32 {
            self.notice = Some("only a staging environment can be promoted".into());
            return Vec::new();
        }
        let effect = Effect::LoadDrift {
            staging_id: env.id.clone(),
            production_id: site.production_environment_id.clone(),
        };
        self.overlay = Some(Overlay::Busy("Checking production's drift report…".into()));
        vec![effect]
    }

    fn ask_cancel(&mut self) {
        let job = match &self.view {
            View::List(Tab::Jobs) => self.jobs.selected_item().cloned(),
            View::Job(view) => self
                .jobs
                .items
                .iter()
                .find(|j| j.id == view.job_id)
                .cloned(),
            _ => None,
        };
        if let Some(job) = job {
            if matches!(
                JobStatus::try_from(job.status),
                Ok(JobStatus::Queued | JobStatus::Running)
            ) {
                self.confirm(Command::CancelJob { job_id: job.id });
            } else {
                self.notice = Some(format!(
                    "job is {}; nothing to cancel",
                    label::<JobStatus>(job.status)
                ));
            }
        }
    }

    fn show(&mut self, tab: Tab) -> Vec<Effect> {
        let mut effects = self.leave_job_view();
        self.notice = None;
        self.tab = tab;
        self.view = View::List(tab);
        if tab == Tab::Activity {
            self.audit.state = LoadState::Loading;
            effects.push(Effect::LoadAudit);
        }
        effects
    }

    fn leave_job_view(&mut self) -> Vec<Effect> {
        if matches!(self.view, View::Job(_)) {
            vec![Effect::StopWatchJob]
        } else {
            Vec::new()
        }
    }

    fn move_selection(&mut self, movement: Move) -> Vec<Effect> {
        match &mut self.view {
            View::List(Tab::Nodes) => self.nodes.move_selection(movement),
            View::List(Tab::Sites) => self.sites.move_selection(movement),
            View::List(Tab::Jobs) => self.jobs.move_selection(movement),
            View::List(Tab::Activity) => self.audit.move_selection(movement),
            View::Site { .. } => {
                let count = self.current_site().map_or(0, |s| s.environments.len());
                let View::Site { env, .. } = &mut self.view else {
                    return Vec::new();
                };
                let last = count.saturating_sub(1);
                *env = match movement {
                    Move::Up | Move::PageUp => env.saturating_sub(1),
                    Move::Down | Move::PageDown => (*env + 1).min(last),
                    Move::Top => 0,
                    Move::Bottom => last,
                };
                return self.load_env_details();
            }
            View::Job(_) => {}
        }
        Vec::new()
    }

    fn load_env_details(&self) -> Vec<Effect> {
        self.current_env()
            .map(|env| vec![Effect::LoadEnvironment(env.id.clone())])
            .unwrap_or_default()
    }

    fn open(&mut self) -> Vec<Effect> {
        match self.view {
            View::List(Tab::Sites) => {
                if let Some(site) = self.sites.selected_item() {
                    self.view = View::Site {
                        site_id: site.id.clone(),
                        env: 0,
                    };
                    return self.load_env_details();
                }
            }
            View::List(Tab::Jobs) => {
                if let Some(job) = self.jobs.selected_item() {
                    let job_id = job.id.clone();
                    self.view = View::Job(Box::new(JobView {
                        job_id: job_id.clone(),
                        back: Some(Tab::Jobs),
                        ..JobView::default()
                    }));
                    return vec![Effect::WatchJob(job_id)];
                }
            }
            _ => {}
        }
        Vec::new()
    }

    fn back(&mut self) -> Vec<Effect> {
        match &self.view {
            View::Site { .. } => self.view = View::List(Tab::Sites),
            View::Job(view) => {
                let tab = view.back.unwrap_or(Tab::Jobs);
                self.view = View::List(tab);
                return vec![Effect::StopWatchJob];
            }
            View::List(_) => self.notice = None,
        }
        Vec::new()
    }

    fn reload(&mut self) -> Vec<Effect> {
        self.nodes.state = LoadState::Loading;
        self.sites.state = LoadState::Loading;
        self.jobs.state = LoadState::Loading;
        let mut effects = vec![Effect::Reload];
        if self.view == View::List(Tab::Activity) {
            effects.push(Effect::LoadAudit);
        }
        effects.extend(self.load_env_details());
        effects
    }

    fn apply(&mut self, update: Update) -> Vec<Effect> {
        match update {
            Update::Nodes(result) => self.nodes.apply(result),
            Update::Sites(result) => self.sites.apply(result),
            Update::Jobs(result) => {
                let result = result.map(|loaded| merge_jobs(&self.jobs.items, loaded));
                self.jobs.apply(result);
            }
            Update::Audit(result) => self.audit.apply(result),
            Update::NodeFree { node_id, bytes } => {
                self.node_free.insert(node_id, bytes);
            }
            Update::Domains { env_id, result } => {
                self.domains.insert(env_id, result);
            }
            Update::Releases { env_id, result } => {
                self.releases.insert(env_id, result);
            }
            Update::Backups { env_id, result } => self.offer_backups(&env_id, result),
            Update::Drift { staging_id, result } => self.offer_promotion(staging_id, &result),
            Update::JobChanged(job) => {
                let was_open = self
                    .jobs
                    .items
                    .iter()
                    .find(|j| j.id == job.id)
                    .is_none_or(|j| !is_final(j.status));
                let ends = is_final(job.status);
                upsert_job(&mut self.jobs, *job);
                // A job that just ended changed its node, site or environment: list them again.
                if ends && was_open {
                    let mut effects = vec![Effect::Reload];
                    effects.extend(self.load_env_details());
                    return effects;
                }
            }
            Update::WatchUp => {
                let was_down = matches!(self.connection, Connection::Disconnected { .. });
                self.connection = Connection::Live;
                // Changes made while the stream was down were missed: list everything again.
                if was_down {
                    return self.reload();
                }
            }
            Update::WatchDown { error, retry_in } => {
                self.connection = Connection::Disconnected { error, retry_in };
            }
            Update::JobEvent { job_id, event, job } => self.job_event(&job_id, *event, job),
            Update::JobStreamEnded { job_id, error } => {
                if let View::Job(view) = &mut self.view
                    && view.job_id == job_id
                {
                    view.stream = error.map_or(Stream::Finished, Stream::Broke);
                }
            }
            Update::Done(result) => return self.done(result),
        }
        Vec::new()
    }

    fn offer_backups(&mut self, env_id: &str, result: Result<Vec<Backup>, String>) {
        if !matches!(self.overlay, Some(Overlay::Busy(_))) {
            return;
        }
        self.overlay = Some(match result {
            Err(error) => Overlay::Message {
                title: "Restore".into(),
                lines: vec![format!("Could not list backups: {error}")],
            },
            Ok(backups) => {
                let choices: Vec<Choice> = backups
                    .into_iter()
                    .filter(|b| b.status == pressluft_proto::v1::BackupStatus::Completed as i32)
                    .map(|b| Choice {
                        label: format!(
                            "{}  {}  {}",
                            pressluft_client::labels::short_time(b.create_time.as_ref()),
                            label::<BackupScope>(b.scope),
                            label::<BackupTrigger>(b.trigger)
                        ),
                        then: Next::Confirm(Command::Restore {
                            env_id: env_id.to_owned(),
                            backup_id: b.id,
                        }),
                    })
                    .collect();
                if choices.is_empty() {
                    Overlay::Message {
                        title: "Restore".into(),
                        lines: vec!["No completed backup to restore yet (b backs up now).".into()],
                    }
                } else {
                    Overlay::Choose {
                        title: "Restore which backup?".into(),
                        choices,
                        selected: 0,
                    }
                }
            }
        });
    }

    fn offer_promotion(
        &mut self,
        staging_id: String,
        result: &Result<pressluft_proto::v1::DriftReport, String>,
    ) {
        if !matches!(self.overlay, Some(Overlay::Busy(_))) {
            return;
        }
        let mut lines = match result {
            Err(error) => vec![format!("No drift report: {error}")],
            Ok(report) => {
                let mut lines = vec![format!(
                    "Production drift: {} (checked {})",
                    label::<DriftStatus>(report.status),
                    pressluft_client::labels::short_time(report.check_time.as_ref())
                )];
                lines.extend(
                    report
                        .items
                        .iter()
                        .take(8)
                        .map(|i| format!("  {} {}: {}", i.category, i.name, i.detail)),
                );
                lines
            }
        };
        let clean = result
            .as_ref()
            .is_ok_and(|r| r.status == DriftStatus::Clean as i32);
        if !clean {
            lines.push(
                "The promotion runs a fresh drift check and refuses if production drifted.".into(),
            );
        }
        let command = Command::Promote { staging_id };
        lines.extend(self.describe(&command));
        lines.push("A full backup of production is taken first.".into());
        self.overlay = Some(Overlay::Confirm {
            title: command.title(),
            lines,
            command,
        });
    }

    fn done(&mut self, result: Result<Outcome, String>) -> Vec<Effect> {
        match result {
            Err(error) => {
                self.notice = Some(format!("refused: {error}"));
                self.overlay = Some(Overlay::Message {
                    title: "Not done".into(),
                    lines: vec![error],
                });
            }
            Ok(Outcome::Job(job)) => {
                self.notice = Some(format!("job {} queued: {}", short_id(&job.id), job.summary));
                upsert_job(&mut self.jobs, *job);
            }
            Ok(Outcome::Login { url, user }) => {
                self.notice = Some("login link copied to the clipboard (where supported)".into());
                self.overlay = Some(Overlay::Message {
                    title: "WordPress login".into(),
                    lines: vec![
                        format!("One-time login as {user}, valid for a minute:"),
                        url.clone(),
                        "Copied with OSC 52 where the terminal supports it.".into(),
                    ],
                });
                return vec![Effect::Copy(url)];
            }
        }
        Vec::new()
    }

    fn job_event(&mut self, job_id: &str, event: JobEvent, job: Option<Box<Job>>) {
        if let Some(job) = job {
            upsert_job(&mut self.jobs, *job);
        }
        let View::Job(view) = &mut self.view else {
            return;
        };
        if view.job_id != job_id {
            return;
        }
        match event.event {
            Some(job_event::Event::Step(step)) => {
                let status = label::<JobStepStatus>(step.status);
                match view.steps.iter_mut().find(|s| s.index == step.index) {
                    Some(row) => {
                        if status != "started" {
                            row.finished = event.time;
                        }
                        row.status = status;
                    }
                    None => view.steps.push(StepRow {
                        index: step.index,
                        total: step.total,
                        name: step.name,
                        status,
                        started: event.time,
                        finished: None,
                    }),
                }
            }
            Some(job_event::Event::LogLine(line)) => view.log.push(line.text),
            Some(job_event::Event::StateChange(change)) => {
                let mut line = format!("── {}", label::<JobStatus>(change.status));
                if !change.error_code.is_empty() {
                    let _ = write!(line, " ({})", change.error_code);
                }
                if !change.message.is_empty() {
                    let _ = write!(line, ": {}", change.message);
                }
                view.log.push(line);
            }
            None => {}
        }
        if view.log.len() > MAX_LOG {
            let extra = view.log.len() - MAX_LOG;
            view.log.drain(..extra);
        }
    }

    /// The kind label of an environment, for views.
    pub fn env_kind(kind: i32) -> String {
        label::<EnvironmentKind>(kind)
    }
}

impl Command {
    /// A short title.
    pub fn title(&self) -> String {
        match self {
            Command::Deploy { .. } => "Deploy",
            Command::Rollback { .. } => "Roll back",
            Command::Backup { .. } => "Back up now",
            Command::Restore { .. } => "Restore",
            Command::Clone { .. } => "Clone to staging",
            Command::Promote { .. } => "Promote to production",
            Command::CancelJob { .. } => "Cancel job",
            Command::MagicLogin { .. } => "Log in to WordPress",
            Command::Provision { .. } => "Provision node",
        }
        .to_owned()
    }
}

/// Whether a job status is an end.
pub fn is_final(status: i32) -> bool {
    matches!(
        JobStatus::try_from(status),
        Ok(JobStatus::Succeeded | JobStatus::Failed | JobStatus::Cancelled)
    )
}

/// The first 8 characters of an id.
pub fn short_id(id: &str) -> String {
    id.chars().take(8).collect()
}

#[cfg(test)]
pub(crate) mod tests {
    use pressluft_proto::v1::{Environment, JobStep, JobStepStatus};
    use prost_types::Timestamp;

    use super::*;

    pub(crate) fn job(id: &str, created: i64, status: JobStatus, version: i64) -> Job {
        Job {
            id: id.into(),
            status: status as i32,
            version,
            create_time: Some(Timestamp {
                seconds: created,
                nanos: 0,
            }),
            ..Job::default()
        }
    }

    pub(crate) fn site() -> Site {
        Site {
            id: "s1".into(),
            slug: "shop".into(),
            name: "Shop".into(),
            production_environment_id: "e1".into(),
            environments: vec![
                Environment {
                    id: "e1".into(),
                    name: "production".into(),
                    kind: EnvironmentKind::Production as i32,
                    ..Environment::default()
                },
                Environment {
                    id: "e2".into(),
                    name: "staging".into(),
                    kind: EnvironmentKind::Staging as i32,
                    ..Environment::default()
                },
            ],
            ..Site::default()
        }
    }

    pub(crate) fn app() -> App {
        let mut app = App::new("http://127.0.0.1:8443");
        app.update(Action::Server(Update::WatchUp));
        app
    }

    fn in_site_view() -> App {
        let mut app = app();
        app.update(Action::Server(Update::Sites(Ok(vec![site()]))));
        app.update(Action::Show(Tab::Sites));
        assert_eq!(
            app.update(Action::Open),
            vec![Effect::LoadEnvironment("e1".into())]
        );
        app
    }

    #[test]
    fn tabs_cycle_and_activity_loads_the_audit_log() {
        let mut app = app();
        app.update(Action::NextTab);
        assert_eq!(app.view, View::List(Tab::Sites));
        app.update(Action::PrevTab);
        app.update(Action::PrevTab);
        assert_eq!(app.view, View::List(Tab::Activity));
        assert_eq!(
            app.update(Action::Show(Tab::Activity)),
            vec![Effect::LoadAudit]
        );
    }

    #[test]
    fn deploy_from_git_asks_url_then_ref_then_confirms() {
        let mut app = in_site_view();
        app.update(Action::Deploy);
        app.update(Action::Move(Move::Down));
        app.update(Action::Submit);
        for c in "https://example.com/site.git".chars() {
            app.update(Action::Type(c));
        }
        app.update(Action::Submit);
        for c in "v1".chars() {
            app.update(Action::Type(c));
        }
        app.update(Action::Submit);
        let Some(Overlay::Confirm { lines, .. }) = &app.overlay else {
            panic!("{:?}", app.overlay);
        };
        assert!(lines[0].contains("shop/production"), "{lines:?}");
        assert!(lines[1].contains("https://example.com/site.git at v1"));
        assert_eq!(
            app.update(Action::Submit),
            vec![Effect::Run(Command::Deploy {
                env_id: "e1".into(),
                source: Source::Git {
                    url: "https://example.com/site.git".into(),
                    reference: "v1".into()
                }
            })]
        );
        assert!(app.overlay.is_none());
    }

    #[test]
    fn esc_cancels_a_confirmation_and_nothing_is_sent() {
        let mut app = in_site_view();
        app.update(Action::BackupNow);
        assert!(matches!(app.overlay, Some(Overlay::Confirm { .. })));
        assert!(app.update(Action::Back).is_empty());
        assert!(app.overlay.is_none());
    }

    #[test]
    fn promotion_shows_the_drift_report_first() {
        let mut app = in_site_view();
        app.update(Action::Promote);
        assert!(
            app.notice
                .as_deref()
                .unwrap_or("")
                .contains("only a staging")
        );
        app.update(Action::Move(Move::Down));
        assert_eq!(
            app.update(Action::Promote),
            vec![Effect::LoadDrift {
                staging_id: "e2".into(),
                production_id: "e1".into()
            }]
        );
        app.update(Action::Server(Update::Drift {
            staging_id: "e2".into(),
            result: Ok(pressluft_proto::v1::DriftReport {
                status: DriftStatus::Drifted as i32,
                items: vec![pressluft_proto::v1::DriftItem {
                    category: "plugin".into(),
                    name: "akismet".into(),
                    detail: "version changed".into(),
                }],
                ..Default::default()
            }),
        }));
        let Some(Overlay::Confirm { lines, command, .. }) = &app.overlay else {
            panic!("{:?}", app.overlay);
        };
        assert!(lines[0].contains("drifted"), "{lines:?}");
        assert!(lines.iter().any(|l| l.contains("akismet")));
        assert_eq!(
            *command,
            Command::Promote {
                staging_id: "e2".into()
            }
        );
    }

    #[test]
    fn restore_offers_completed_backups() {
        let mut app = in_site_view();
        assert_eq!(
            app.update(Action::Restore),
            vec![Effect::LoadBackups("e1".into())]
        );
        app.update(Action::Server(Update::Backups {
            env_id: "e1".into(),
            result: Ok(vec![
                Backup {
                    id: "b1".into(),
                    status: pressluft_proto::v1::BackupStatus::Completed as i32,
                    ..Backup::default()
                },
                Backup {
                    id: "b2".into(),
                    status: pressluft_proto::v1::BackupStatus::Failed as i32,
                    ..Backup::default()
                },
            ]),
        }));
        let Some(Overlay::Choose { choices, .. }) = &app.overlay else {
            panic!("{:?}", app.overlay);
        };
        assert_eq!(choices.len(), 1, "failed backups are not offered");
        app.update(Action::Submit);
        assert_eq!(
            app.update(Action::Submit),
            vec![Effect::Run(Command::Restore {
                env_id: "e1".into(),
                backup_id: "b1".into()
            })]
        );
    }

    #[test]
    fn filter_keys_edit_the_filter_until_enter() {
        let mut app = app();
        app.update(Action::Server(Update::Nodes(Ok(vec![
            Node {
                id: "1".into(),
                name: "web-1".into(),
                ..Node::default()
            },
            Node {
                id: "2".into(),
                name: "db-1".into(),
                ..Node::default()
            },
        ]))));
        app.update(Action::StartFilter);
        app.update(Action::Type('w'));
        assert_eq!(app.nodes.shown().count(), 1);
        app.update(Action::Submit);
        assert!(!app.filtering);
        app.update(Action::Quit);
        assert!(!app.running, "q quits again once the filter is done");
    }

    #[test]
    fn the_job_view_follows_steps_and_log_lines() {
        let mut app = app();
        app.update(Action::Server(Update::Jobs(Ok(vec![job(
            "j1",
            10,
            JobStatus::Running,
            1,
        )]))));
        app.update(Action::Show(Tab::Jobs));
        assert_eq!(
            app.update(Action::Open),
            vec![Effect::WatchJob("j1".into())]
        );
        let step = |status: JobStepStatus| JobEvent {
            event: Some(job_event::Event::Step(JobStep {
                index: 1,
                total: 3,
                name: "Install nginx".into(),
                status: status as i32,
            })),
            ..JobEvent::default()
        };
        for event in [
            step(JobStepStatus::Started),
            JobEvent {
                event: Some(job_event::Event::LogLine(pressluft_proto::v1::JobLogLine {
                    text: "ok: [node]".into(),
                })),
                ..JobEvent::default()
            },
            step(JobStepStatus::Changed),
        ] {
            app.update(Action::Server(Update::JobEvent {
                job_id: "j1".into(),
                event: Box::new(event),
                job: None,
            }));
        }
        let View::Job(view) = &app.view else {
            panic!("{:?}", app.view)
        };
        assert_eq!(view.steps.len(), 1);
        assert_eq!(view.steps[0].status, "changed");
        assert_eq!(view.log, ["ok: [node]"]);
        assert_eq!(app.update(Action::Back), vec![Effect::StopWatchJob]);
        assert_eq!(app.view, View::List(Tab::Jobs));
    }

    #[test]
    fn a_magic_login_is_shown_and_copied() {
        let mut app = in_site_view();
        assert_eq!(
            app.update(Action::Login),
            vec![Effect::Run(Command::MagicLogin {
                env_id: "e1".into()
            })]
        );
        let effects = app.update(Action::Server(Update::Done(Ok(Outcome::Login {
            url: "https://shop.example/?pressluft_login=x".into(),
            user: "admin".into(),
        }))));
        assert_eq!(
            effects,
            vec![Effect::Copy(
                "https://shop.example/?pressluft_login=x".into()
            )]
        );
        assert!(matches!(app.overlay, Some(Overlay::Message { .. })));
    }

    #[test]
    fn reconnecting_after_a_drop_reloads() {
        let mut app = app();
        app.update(Action::Server(Update::WatchDown {
            error: "gone".into(),
            retry_in: Duration::from_secs(1),
        }));
        assert_eq!(
            app.update(Action::Server(Update::WatchUp)),
            vec![Effect::Reload]
        );
    }

    #[test]
    fn only_running_or_queued_jobs_can_be_cancelled() {
        let mut app = app();
        app.update(Action::Server(Update::Jobs(Ok(vec![job(
            "j1",
            10,
            JobStatus::Succeeded,
            1,
        )]))));
        app.update(Action::Show(Tab::Jobs));
        app.update(Action::Cancel);
        assert!(app.overlay.is_none());
        app.update(Action::Server(Update::JobChanged(Box::new(job(
            "j2",
            20,
            JobStatus::Running,
            1,
        )))));
        app.update(Action::Move(Move::Top));
        app.update(Action::Cancel);
        assert!(matches!(
            app.overlay,
            Some(Overlay::Confirm {
                command: Command::CancelJob { .. },
                ..
            })
        ));
    }
}
