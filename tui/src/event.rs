//! Everything that reaches the UI loop arrives as an [`Event`] on one channel: key presses
//! from the input thread, and results and job changes from the network tasks.

use std::time::Duration;

use pressluft_proto::v1::{Job, Node, Site};
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
    /// Result of listing sites.
    Sites(Result<Vec<Site>, String>),
    /// Result of listing jobs.
    Jobs(Result<Vec<Job>, String>),
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
