//! Everything that reaches the UI loop arrives as an [`Event`] on one channel: key presses
//! from the input thread, and results, job changes and job events from the network tasks.

use std::time::Duration;

use pressluft_proto::v1::{
    AuditEvent, Backup, Domain, DriftReport, Job, JobEvent, Node, Release, Site,
};
use ratatui::crossterm::event::{self as term, KeyEvent, KeyEventKind};
use tokio::sync::mpsc::UnboundedSender;

/// Sending half of the UI channel.
pub type EventSender = UnboundedSender<Event>;

/// Something that happened.
#[derive(Debug)]
pub enum Event {
    /// A key was pressed.
    Key(KeyEvent),
    /// The terminal was resized.
    Resize,
    /// A second passed.
    Tick(prost_types::Timestamp),
    /// Reading terminal input failed; the UI cannot go on.
    InputFailed(String),
    /// News from the server.
    Server(Update),
}

/// Data or connection news from the network tasks.
#[derive(Debug, Clone, PartialEq)]
pub enum Update {
    /// Result of listing nodes.
    Nodes(Result<Vec<Node>, String>),
    /// Result of listing sites (with their environments).
    Sites(Result<Vec<Site>, String>),
    /// Result of listing jobs.
    Jobs(Result<Vec<Job>, String>),
    /// Result of listing the audit log.
    Audit(Result<Vec<AuditEvent>, String>),
    /// Free disk space on a node (read through one of its environments).
    NodeFree { node_id: String, bytes: i64 },
    /// An environment's domains.
    Domains {
        env_id: String,
        result: Result<Vec<Domain>, String>,
    },
    /// An environment's releases.
    Releases {
        env_id: String,
        result: Result<Vec<Release>, String>,
    },
    /// An environment's backups, to pick one to restore.
    Backups {
        env_id: String,
        result: Result<Vec<Backup>, String>,
    },
    /// Production's drift report, shown before a promotion.
    Drift {
        staging_id: String,
        result: Result<DriftReport, String>,
    },
    /// A job changed (from the `WatchJobs` stream); boxed, a job is large.
    JobChanged(Box<Job>),
    /// The `WatchJobs` stream is connected.
    WatchUp,
    /// The `WatchJobs` stream broke; it is retried after `retry_in`.
    WatchDown {
        /// Why, one line.
        error: String,
        /// Delay before the next attempt.
        retry_in: Duration,
    },
    /// An event of the job the detail view follows (`WatchJob`), with the job as it is now.
    JobEvent {
        job_id: String,
        event: Box<JobEvent>,
        job: Option<Box<Job>>,
    },
    /// The detail view's `WatchJob` stream ended (the job ended) or broke.
    JobStreamEnded {
        job_id: String,
        error: Option<String>,
    },
    /// An action the user confirmed was sent; what the server answered.
    Done(Result<Outcome, String>),
}

/// What a confirmed action returned.
#[derive(Debug, Clone, PartialEq)]
pub enum Outcome {
    /// A job was started.
    Job(Box<Job>),
    /// A magic login URL.
    Login { url: String, user: String },
}

/// Reads terminal input on its own thread (crossterm's read blocks) and forwards key presses
/// and resizes. The thread ends when the UI loop drops the receiver or input fails.
pub fn spawn_input(tx: EventSender) {
    std::thread::spawn(move || {
        loop {
            let event = match term::read() {
                Ok(term::Event::Key(key)) if key.kind == KeyEventKind::Press => Event::Key(key),
                Ok(term::Event::Resize(..)) => Event::Resize,
                Ok(_) => continue,
                Err(err) => {
                    let _ = tx.send(Event::InputFailed(err.to_string()));
                    return;
                }
            };
            if tx.send(event).is_err() {
                return;
            }
        }
    });
}
