//! The dashboard's state and its only mutation path: Event → [`action`] → [`App::update`].

use std::time::Duration;

use pressluft_proto::v1::{Job, Node, Site};
use ratatui::crossterm::event::{KeyCode, KeyEvent, KeyModifiers};

use crate::event::{Event, Update};

/// Jobs kept in memory; older ones drop off the end.
const MAX_JOBS: usize = 500;

/// The views, in tab order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Tab {
    /// Registered nodes.
    Nodes,
    /// Sites.
    Sites,
    /// Jobs, live.
    Jobs,
}

impl Tab {
    /// Every tab, in order.
    pub const ALL: [Tab; 3] = [Tab::Nodes, Tab::Sites, Tab::Jobs];

    /// Tab title.
    pub fn title(self) -> &'static str {
        match self {
            Tab::Nodes => "Nodes",
            Tab::Sites => "Sites",
            Tab::Jobs => "Jobs",
        }
    }

    /// Position in [`Tab::ALL`].
    pub fn index(self) -> usize {
        match self {
            Tab::Nodes => 0,
            Tab::Sites => 1,
            Tab::Jobs => 2,
        }
    }

    fn next(self) -> Tab {
        Tab::ALL[(self.index() + 1) % Tab::ALL.len()]
    }

    fn prev(self) -> Tab {
        Tab::ALL[(self.index() + Tab::ALL.len() - 1) % Tab::ALL.len()]
    }
}

/// What the user or the server asks the app to do.
#[derive(Debug, Clone, PartialEq)]
pub enum Action {
    /// Leave.
    Quit,
    /// Next tab.
    NextTab,
    /// Previous tab.
    PrevTab,
    /// Switch to a tab.
    Show(Tab),
    /// Move the selection in the visible list.
    Move(Move),
    /// Reload every list from the server.
    Refresh,
    /// Show or hide the help overlay.
    ToggleHelp,
    /// Hide the help overlay.
    CloseHelp,
    /// Nothing changes, but draw again (resize).
    Redraw,
    /// Apply news from the server.
    Server(Update),
}

/// Selection movements.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Move {
    /// The previous row.
    Up,
    /// The next row.
    Down,
    /// The first row.
    Top,
    /// The last row.
    Bottom,
}

/// Work `update` asks the loop to start (the app itself never touches the network).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Effect {
    /// List nodes, sites and jobs again.
    Reload,
}

/// Translates an event into an action; `None` for keys without a binding.
pub fn action(event: Event) -> Option<Action> {
    match event {
        Event::Key(key) => key_action(key),
        Event::Resize => Some(Action::Redraw),
        // The loop stops on its own when input fails; nothing to update.
        Event::InputFailed(_) => None,
        Event::Server(update) => Some(Action::Server(update)),
    }
}

/// The key map.
pub fn key_action(key: KeyEvent) -> Option<Action> {
    let action = match key.code {
        KeyCode::Char('c') if key.modifiers.contains(KeyModifiers::CONTROL) => Action::Quit,
        KeyCode::Char('q') => Action::Quit,
        KeyCode::Char('?') => Action::ToggleHelp,
        KeyCode::Esc => Action::CloseHelp,
        KeyCode::Tab | KeyCode::Right | KeyCode::Char('l') => Action::NextTab,
        KeyCode::BackTab | KeyCode::Left | KeyCode::Char('h') => Action::PrevTab,
        KeyCode::Char('1') => Action::Show(Tab::Nodes),
        KeyCode::Char('2') => Action::Show(Tab::Sites),
        KeyCode::Char('3') => Action::Show(Tab::Jobs),
        KeyCode::Down | KeyCode::Char('j') => Action::Move(Move::Down),
        KeyCode::Up | KeyCode::Char('k') => Action::Move(Move::Up),
        KeyCode::Home | KeyCode::Char('g') => Action::Move(Move::Top),
        KeyCode::End | KeyCode::Char('G') => Action::Move(Move::Bottom),
        KeyCode::Char('r') => Action::Refresh,
        _ => return None,
    };
    Some(action)
}

/// Whether a list has arrived.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LoadState {
    /// A request is in flight.
    Loading,
    /// The last request succeeded.
    Loaded,
    /// The last request failed, with the error.
    Failed(String),
}

/// Items that have a stable id.
pub trait Keyed {
    /// The id.
    fn key(&self) -> &str;
}

impl Keyed for Node {
    fn key(&self) -> &str {
        &self.id
    }
}

impl Keyed for Site {
    fn key(&self) -> &str {
        &self.id
    }
}

impl Keyed for Job {
    fn key(&self) -> &str {
        &self.id
    }
}

/// One list with its selection and load state.
#[derive(Debug, Clone, PartialEq)]
pub struct List<T> {
    /// The items, in display order.
    pub items: Vec<T>,
    /// Index of the selected item (0 when empty).
    pub selected: usize,
    /// Whether the items are current.
    pub state: LoadState,
}

impl<T> Default for List<T> {
    fn default() -> Self {
        List {
            items: Vec::new(),
            selected: 0,
            state: LoadState::Loading,
        }
    }
}

impl<T: Keyed> List<T> {
    /// The selected item.
    pub fn selected_item(&self) -> Option<&T> {
        self.items.get(self.selected)
    }

    /// Replaces the items, keeping the same item selected when it is still there.
    fn replace(&mut self, items: Vec<T>) {
        let selected = self.selected_item().map(|item| item.key().to_owned());
        self.items = items;
        self.selected = selected
            .and_then(|key| self.items.iter().position(|item| item.key() == key))
            .unwrap_or(self.selected);
        self.clamp();
    }

    fn apply(&mut self, result: Result<Vec<T>, String>) {
        match result {
            Ok(items) => {
                self.replace(items);
                self.state = LoadState::Loaded;
            }
            // Keep showing what we had; the error is shown beside it.
            Err(error) => self.state = LoadState::Failed(error),
        }
    }

    fn clamp(&mut self) {
        self.selected = self.selected.min(self.items.len().saturating_sub(1));
    }
}

/// State of the `WatchJobs` stream.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Connection {
    /// The first attempt is under way.
    Connecting,
    /// Job changes arrive live.
    Live,
    /// The stream broke; another attempt follows.
    Disconnected {
        /// Why, one line.
        error: String,
        /// Delay before the next attempt.
        retry_in: Duration,
    },
}

/// The whole dashboard state. Only [`App::update`] changes it; drawing only reads it.
#[derive(Debug, Clone, PartialEq)]
pub struct App {
    /// Server URL, for the header.
    pub server: String,
    /// The visible tab.
    pub tab: Tab,
    /// Nodes by name.
    pub nodes: List<Node>,
    /// Sites by slug.
    pub sites: List<Site>,
    /// Jobs, newest first.
    pub jobs: List<Job>,
    /// The live stream's state.
    pub connection: Connection,
    /// Whether the help overlay is shown.
    pub show_help: bool,
    /// False once the user quit.
    pub running: bool,
}

impl App {
    /// A fresh app; the lists start loading.
    pub fn new(server: impl Into<String>) -> Self {
        App {
            server: server.into(),
            tab: Tab::Nodes,
            nodes: List::default(),
            sites: List::default(),
            jobs: List::default(),
            connection: Connection::Connecting,
            show_help: false,
            running: true,
        }
    }

    /// Applies an action; returns the network work it calls for, if any.
    pub fn update(&mut self, action: Action) -> Option<Effect> {
        match action {
            Action::Quit => self.running = false,
            Action::NextTab => self.tab = self.tab.next(),
            Action::PrevTab => self.tab = self.tab.prev(),
            Action::Show(tab) => self.tab = tab,
            Action::Move(movement) => self.move_selection(movement),
            Action::Refresh => return Some(self.start_reload()),
            Action::ToggleHelp => self.show_help = !self.show_help,
            Action::CloseHelp => self.show_help = false,
            Action::Redraw => {}
            Action::Server(update) => return self.apply(update),
        }
        None
    }

    fn move_selection(&mut self, movement: Move) {
        let (selected, len) = match self.tab {
            Tab::Nodes => (&mut self.nodes.selected, self.nodes.items.len()),
            Tab::Sites => (&mut self.sites.selected, self.sites.items.len()),
            Tab::Jobs => (&mut self.jobs.selected, self.jobs.items.len()),
        };
        let last = len.saturating_sub(1);
        *selected = match movement {
            Move::Up => selected.saturating_sub(1),
            Move::Down => (*selected + 1).min(last),
            Move::Top => 0,
            Move::Bottom => last,
        };
    }

    fn start_reload(&mut self) -> Effect {
        self.nodes.state = LoadState::Loading;
        self.sites.state = LoadState::Loading;
        self.jobs.state = LoadState::Loading;
        Effect::Reload
    }

    fn apply(&mut self, update: Update) -> Option<Effect> {
        match update {
            Update::Nodes(result) => self.nodes.apply(result),
            Update::Sites(result) => self.sites.apply(result),
            Update::Jobs(result) => {
                let result = result.map(|loaded| merge_jobs(&self.jobs.items, loaded));
                self.jobs.apply(result);
            }
            Update::JobChanged(job) => upsert_job(&mut self.jobs, *job),
            Update::WatchUp => {
                let was_down = matches!(self.connection, Connection::Disconnected { .. });
                self.connection = Connection::Live;
                // Changes made while the stream was down were missed: list everything again.
                if was_down {
                    return Some(self.start_reload());
                }
            }
            Update::WatchDown { error, retry_in } => {
                self.connection = Connection::Disconnected { error, retry_in };
            }
        }
        None
    }
}

/// Sort key for "newest first".
fn created(job: &Job) -> (i64, i32) {
    job.create_time
        .map_or((0, 0), |time| (time.seconds, time.nanos))
}

/// Inserts or updates a job from the stream, never replacing a newer version with an older
/// one, and keeps the selected job selected.
fn upsert_job(jobs: &mut List<Job>, job: Job) {
    if let Some(existing) = jobs.items.iter_mut().find(|j| j.id == job.id) {
        if job.version >= existing.version {
            *existing = job;
        }
        return;
    }
    let position = jobs
        .items
        .iter()
        .position(|j| created(j) <= created(&job))
        .unwrap_or(jobs.items.len());
    if !jobs.items.is_empty() && position <= jobs.selected {
        jobs.selected += 1;
    }
    jobs.items.insert(position, job);
    jobs.items.truncate(MAX_JOBS);
    jobs.clamp();
}

/// A fresh job list merged with what the stream already delivered: the newer version of each
/// job wins, and jobs created after the listing was taken are kept.
fn merge_jobs(current: &[Job], loaded: Vec<Job>) -> Vec<Job> {
    let newest_loaded = loaded.iter().map(created).max();
    let mut merged = loaded;
    for job in current {
        match merged.iter_mut().find(|j| j.id == job.id) {
            Some(loaded) => {
                if loaded.version < job.version {
                    *loaded = job.clone();
                }
            }
            None => {
                if newest_loaded.is_none_or(|newest| created(job) > newest) {
                    merged.push(job.clone());
                }
            }
        }
    }
    merged.sort_by(|a, b| created(b).cmp(&created(a)).then_with(|| a.id.cmp(&b.id)));
    merged.truncate(MAX_JOBS);
    merged
}

#[cfg(test)]
pub(crate) mod tests {
    use pressluft_proto::v1::JobStatus;
    use prost_types::Timestamp;
    use ratatui::crossterm::event::KeyEventKind;

    use super::*;

    pub(crate) fn job(id: &str, created: i64, status: JobStatus, version: i64) -> Job {
        Job {
            id: id.into(),
            status: status as i32,
            create_time: Some(Timestamp {
                seconds: created,
                nanos: 0,
            }),
            version,
            ..Job::default()
        }
    }

    fn key(code: KeyCode) -> KeyEvent {
        KeyEvent::new(code, KeyModifiers::NONE)
    }

    fn ids(list: &List<Job>) -> Vec<&str> {
        list.items.iter().map(|j| j.id.as_str()).collect()
    }

    fn loaded_jobs(app: &mut App, jobs: Vec<Job>) {
        app.update(Action::Server(Update::Jobs(Ok(jobs))));
    }

    #[test]
    fn keys_map_to_actions() {
        assert_eq!(key_action(key(KeyCode::Char('q'))), Some(Action::Quit));
        assert_eq!(
            key_action(KeyEvent::new(KeyCode::Char('c'), KeyModifiers::CONTROL)),
            Some(Action::Quit)
        );
        assert_eq!(key_action(key(KeyCode::Tab)), Some(Action::NextTab));
        assert_eq!(key_action(key(KeyCode::BackTab)), Some(Action::PrevTab));
        assert_eq!(
            key_action(key(KeyCode::Char('3'))),
            Some(Action::Show(Tab::Jobs))
        );
        assert_eq!(
            key_action(key(KeyCode::Char('j'))),
            Some(Action::Move(Move::Down))
        );
        assert_eq!(key_action(key(KeyCode::Up)), Some(Action::Move(Move::Up)));
        assert_eq!(key_action(key(KeyCode::Char('r'))), Some(Action::Refresh));
        assert_eq!(
            key_action(key(KeyCode::Char('?'))),
            Some(Action::ToggleHelp)
        );
        assert_eq!(key_action(key(KeyCode::Char('x'))), None);
        let mut press = key(KeyCode::Char('q'));
        press.kind = KeyEventKind::Press;
        assert_eq!(action(Event::Key(press)), Some(Action::Quit));
        assert_eq!(action(Event::Resize), Some(Action::Redraw));
    }

    #[test]
    fn tabs_cycle_both_ways_and_jump() {
        let mut app = App::new("http://x");
        assert_eq!(app.tab, Tab::Nodes);
        app.update(Action::NextTab);
        assert_eq!(app.tab, Tab::Sites);
        app.update(Action::PrevTab);
        app.update(Action::PrevTab);
        assert_eq!(app.tab, Tab::Jobs);
        app.update(Action::NextTab);
        assert_eq!(app.tab, Tab::Nodes);
        app.update(Action::Show(Tab::Sites));
        assert_eq!(app.tab, Tab::Sites);
    }

    #[test]
    fn quit_help_and_refresh() {
        let mut app = App::new("http://x");
        app.update(Action::ToggleHelp);
        assert!(app.show_help);
        app.update(Action::CloseHelp);
        assert!(!app.show_help);

        app.update(Action::Server(Update::Nodes(Ok(Vec::new()))));
        assert_eq!(app.nodes.state, LoadState::Loaded);
        assert_eq!(app.update(Action::Refresh), Some(Effect::Reload));
        assert_eq!(app.nodes.state, LoadState::Loading);

        assert!(app.running);
        assert_eq!(app.update(Action::Quit), None);
        assert!(!app.running);
    }

    #[test]
    fn selection_moves_within_the_current_list() {
        let mut app = App::new("http://x");
        app.update(Action::Show(Tab::Jobs));
        loaded_jobs(
            &mut app,
            vec![
                job("c", 3, JobStatus::Queued, 1),
                job("b", 2, JobStatus::Queued, 1),
                job("a", 1, JobStatus::Queued, 1),
            ],
        );
        app.update(Action::Move(Move::Up));
        assert_eq!(app.jobs.selected, 0);
        for _ in 0..5 {
            app.update(Action::Move(Move::Down));
        }
        assert_eq!(app.jobs.selected, 2);
        app.update(Action::Move(Move::Top));
        assert_eq!(app.jobs.selected, 0);
        app.update(Action::Move(Move::Bottom));
        assert_eq!(app.jobs.selected, 2);
        // Other lists are untouched.
        assert_eq!(app.nodes.selected, 0);
    }

    #[test]
    fn a_failed_load_keeps_the_old_items() {
        let mut app = App::new("http://x");
        app.update(Action::Server(Update::Nodes(Ok(vec![Node {
            id: "n1".into(),
            ..Node::default()
        }]))));
        app.update(Action::Server(Update::Nodes(Err("boom".into()))));
        assert_eq!(app.nodes.items.len(), 1);
        assert_eq!(app.nodes.state, LoadState::Failed("boom".into()));
    }

    #[test]
    fn job_changes_update_in_place_and_insert_new_jobs_first() {
        let mut app = App::new("http://x");
        loaded_jobs(
            &mut app,
            vec![
                job("b", 2, JobStatus::Queued, 1),
                job("a", 1, JobStatus::Queued, 1),
            ],
        );
        app.jobs.selected = 1; // "a"

        app.update(Action::Server(Update::JobChanged(Box::new(job(
            "b",
            2,
            JobStatus::Running,
            2,
        )))));
        assert_eq!(app.jobs.items[0].status, JobStatus::Running as i32);
        // An older version arriving late does not win.
        app.update(Action::Server(Update::JobChanged(Box::new(job(
            "b",
            2,
            JobStatus::Queued,
            1,
        )))));
        assert_eq!(app.jobs.items[0].status, JobStatus::Running as i32);

        app.update(Action::Server(Update::JobChanged(Box::new(job(
            "c",
            3,
            JobStatus::Queued,
            1,
        )))));
        assert_eq!(ids(&app.jobs), ["c", "b", "a"]);
        // The same job stays selected.
        assert_eq!(app.jobs.selected_item().map(|j| j.id.as_str()), Some("a"));
    }

    #[test]
    fn the_first_streamed_job_is_selected_in_an_empty_list() {
        let mut app = App::new("http://x");
        app.update(Action::Server(Update::JobChanged(Box::new(job(
            "a",
            1,
            JobStatus::Queued,
            1,
        )))));
        assert_eq!(app.jobs.selected, 0);
        assert_eq!(ids(&app.jobs), ["a"]);
    }

    #[test]
    fn a_reload_keeps_newer_streamed_state() {
        let mut app = App::new("http://x");
        app.update(Action::Server(Update::JobChanged(Box::new(job(
            "b",
            2,
            JobStatus::Succeeded,
            3,
        )))));
        app.update(Action::Server(Update::JobChanged(Box::new(job(
            "c",
            9,
            JobStatus::Queued,
            1,
        )))));
        // A listing taken before those changes arrives afterwards.
        loaded_jobs(
            &mut app,
            vec![
                job("b", 2, JobStatus::Running, 2),
                job("a", 1, JobStatus::Failed, 4),
            ],
        );
        assert_eq!(ids(&app.jobs), ["c", "b", "a"]);
        assert_eq!(app.jobs.items[1].status, JobStatus::Succeeded as i32);
    }

    #[test]
    fn reconnecting_after_a_drop_reloads() {
        let mut app = App::new("http://x");
        assert_eq!(app.update(Action::Server(Update::WatchUp)), None);
        assert_eq!(app.connection, Connection::Live);
        let down = Update::WatchDown {
            error: "connection reset".into(),
            retry_in: Duration::from_secs(2),
        };
        assert_eq!(app.update(Action::Server(down)), None);
        assert!(matches!(app.connection, Connection::Disconnected { .. }));
        assert_eq!(
            app.update(Action::Server(Update::WatchUp)),
            Some(Effect::Reload)
        );
        assert_eq!(app.connection, Connection::Live);
    }
}
