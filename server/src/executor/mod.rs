//! The executor runs one job's playbook and classifies how it ended. The real one is
//! [`AnsibleExecutor`]; [`NoopExecutor`] serves benchmarks and unit tests of the queue.

mod ansible;
mod events;
mod redact;
mod untrusted;

use std::future::Future;
use std::pin::Pin;
use std::time::Duration;

pub use ansible::{AnsibleConfig, AnsibleExecutor, kill_group};
pub use events::{ExecEvent, parse_line};
pub use redact::Redactor;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use crate::model::report::JobReport;
use crate::model::{JobId, JobKind};
use crate::secrets::Secret;

/// The node a job runs against.
#[derive(Debug, Clone)]
pub struct NodeTarget {
    pub hostname: String,
    pub port: u16,
    pub user: String,
    /// Pinned host key, "type base64".
    pub host_key: String,
}

/// Everything one attempt of a job needs.
#[derive(Debug, Clone)]
pub struct JobSpec {
    pub job_id: JobId,
    pub kind: JobKind,
    pub attempt: i64,
    pub node: NodeTarget,
    /// Playbook variables, written to a 0600 extra-vars file (may contain secrets).
    pub vars: serde_json::Value,
    /// Values that must never appear in stored output.
    pub secrets: Vec<Secret>,
    pub timeout: Duration,
}

/// How an attempt ended.
#[derive(Debug, Clone, PartialEq)]
pub enum Outcome {
    /// The playbook succeeded; `result` is the last `pressluft_result` fact it set, parsed.
    Succeeded { result: Option<JobReport> },
    /// The playbook failed. `retryable` follows SPEC section 5 (exit 1, 2, 4 are retryable).
    Failed {
        code: String,
        message: String,
        retryable: bool,
        result: Option<JobReport>,
    },
    /// The job ran past its timeout and was terminated (retryable).
    TimedOut,
    /// A user cancelled the job; its playbook was terminated.
    Cancelled,
    /// The server is shutting down; the playbook was terminated and the job goes back to the
    /// queue without using up an attempt.
    Interrupted,
}

/// Why an executor stops a running playbook early.
#[derive(Debug, Clone)]
pub struct StopSignals {
    /// A user cancelled the job.
    pub cancel: CancellationToken,
    /// The server is shutting down.
    pub shutdown: CancellationToken,
}

/// Runs playbooks.
pub trait Executor: Send + Sync + 'static {
    /// Runs one attempt, streaming events, until it ends or is stopped.
    fn run<'a>(
        &'a self,
        spec: JobSpec,
        events: mpsc::Sender<ExecEvent>,
        stop: StopSignals,
    ) -> Pin<Box<dyn Future<Output = Outcome> + Send + 'a>>;
}

/// Succeeds at once without output: the queue's own cost, for benchmarks.
#[derive(Debug, Default, Clone)]
pub struct NoopExecutor;

impl Executor for NoopExecutor {
    fn run<'a>(
        &'a self,
        _spec: JobSpec,
        _events: mpsc::Sender<ExecEvent>,
        _stop: StopSignals,
    ) -> Pin<Box<dyn Future<Output = Outcome> + Send + 'a>> {
        Box::pin(async { Outcome::Succeeded { result: None } })
    }
}
