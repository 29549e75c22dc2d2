//! The job queue's runtime: a worker that claims jobs and runs them through the executor
//! (heartbeat beside each job, cancel and shutdown reaching the playbook), crash recovery of
//! expired leases, and the scheduler.
//!
//! The worker loop waits on: a notify when work may be available (a job was queued or one
//! ended), a polling tick as a fallback, finished jobs, and shutdown. A semaphore-like cap
//! (`max_concurrent`) bounds running jobs; the claim itself enforces one job per site, node
//! exclusivity and the per-node cap.

mod policy;
mod scheduler;
pub mod vars;

use std::sync::Arc;
use std::time::Duration;

use serde_json::json;
use tokio::sync::mpsc;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

pub use policy::{RetryPolicy, decide, effects};
pub use scheduler::{Scheduler, SchedulerConfig};
pub use vars::{JobSources, PlaybookSettings};

use crate::executor::{ExecEvent, Executor, Outcome, StopSignals};
use crate::metrics::Metrics;
use crate::model::{JobEventKind, JobId, now_ms};
use crate::store::{JobEnd, JobRecord, Store};

#[doc(hidden)]
pub async fn job_spec_for_bench(
    sources: &JobSources,
    job: &JobRecord,
) -> crate::error::Result<crate::executor::JobSpec> {
    vars::job_spec(sources, job, &job.params()?).await
}

/// Worker settings.
#[derive(Debug, Clone)]
pub struct WorkerConfig {
    /// Identifies this worker in leases.
    pub worker_id: String,
    /// Jobs running at once, overall.
    pub max_concurrent: usize,
    /// Jobs running at once per node.
    pub max_per_node: u32,
    /// Lease length; a job whose lease lapses is recovered.
    pub lease: Duration,
    /// Heartbeat period (well under the lease).
    pub heartbeat: Duration,
    /// Fallback polling period.
    pub poll: Duration,
    pub retry: RetryPolicy,
}

impl Default for WorkerConfig {
    fn default() -> Self {
        Self {
            worker_id: format!("worker-{}", uuid::Uuid::new_v4().simple()),
            max_concurrent: 4,
            max_per_node: 2,
            lease: Duration::from_secs(30),
            heartbeat: Duration::from_secs(10),
            poll: Duration::from_secs(5),
            retry: RetryPolicy::default(),
        }
    }
}

/// Claims and runs jobs until shutdown.
pub struct Worker {
    sources: JobSources,
    metrics: Arc<Metrics>,
    executor: Arc<dyn Executor>,
    config: WorkerConfig,
}

impl Worker {
    /// A worker building job variables from `sources`, running them with `executor` and
    /// recording attempt times in `metrics`.
    pub fn new(
        sources: JobSources,
        metrics: Arc<Metrics>,
        executor: Arc<dyn Executor>,
        config: WorkerConfig,
    ) -> Self {
        Self {
            sources,
            metrics,
            executor,
            config,
        }
    }

    /// Runs until `shutdown` fires; running jobs are then stopped and queued again.
    pub async fn run(self, shutdown: CancellationToken) {
        let store = &self.sources.store;
        let wake = store.work_available();
        let mut running: JoinSet<()> = JoinSet::new();
        let mut poll = tokio::time::interval(self.config.poll);
        poll.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut recovery = tokio::time::interval(self.config.lease / 2);
        recovery.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            while running.len() < self.config.max_concurrent && !shutdown.is_cancelled() {
                match store
                    .claim_next(
                        &self.config.worker_id,
                        self.config.max_per_node,
                        lease_ms(&self.config),
                    )
                    .await
                {
                    Ok(Some(job)) => {
                        let runner = JobRunner {
                            sources: self.sources.clone(),
                            metrics: self.metrics.clone(),
                            executor: self.executor.clone(),
                            config: self.config.clone(),
                        };
                        running.spawn(runner.run(job, shutdown.clone()));
                    }
                    Ok(None) => break,
                    Err(e) => {
                        tracing::error!(error = %e, "claiming a job failed");
                        break;
                    }
                }
            }
            tokio::select! {
                () = shutdown.cancelled() => break,
                () = wake.notified() => {}
                _ = poll.tick() => {}
                _ = recovery.tick() => recover_expired(store, &self.config).await,
                Some(_) = running.join_next(), if !running.is_empty() => {}
            }
        }
        // Running jobs see the shutdown, stop their playbooks and queue themselves again.
        while running.join_next().await.is_some() {}
        tracing::info!("worker stopped");
    }
}

fn lease_ms(config: &WorkerConfig) -> i64 {
    i64::try_from(config.lease.as_millis()).unwrap_or(30_000)
}

/// Runs one claimed job.
struct JobRunner {
    sources: JobSources,
    metrics: Arc<Metrics>,
    executor: Arc<dyn Executor>,
    config: WorkerConfig,
}

impl JobRunner {
    async fn run(self, job: JobRecord, shutdown: CancellationToken) {
        let store = &self.sources.store;
        let owner = self.config.worker_id.clone();
        tracing::info!(job.id = %job.id, job.kind = %job.kind, attempt = job.attempts, "job started");
        let cancel = CancellationToken::new();
        let heartbeat = tokio::spawn(heartbeat(
            store.clone(),
            job.id,
            owner.clone(),
            self.config.clone(),
            cancel.clone(),
        ));

        let (events_tx, events_rx) = mpsc::channel(512);
        let recorder = tokio::spawn(record_events(
            store.clone(),
            job.id,
            owner.clone(),
            events_rx,
        ));
        // The one place a running job's parameters are read from the store.
        let params = job.params();
        let spec = match &params {
            Ok(params) => vars::job_spec(&self.sources, &job, params).await,
            Err(e) => Err(crate::error::Error::internal(e)),
        };
        let outcome = match spec {
            Ok(spec) => {
                let stop = StopSignals {
                    cancel: cancel.clone(),
                    shutdown,
                };
                self.executor.run(spec, events_tx, stop).await
            }
            Err(e) => {
                tracing::error!(job.id = %job.id, error = %e, "preparing the job failed");
                drop(events_tx);
                Outcome::Failed {
                    code: "JOB_SETUP_FAILED".into(),
                    message: "the job's parameters could not be prepared; see the server log"
                        .into(),
                    retryable: false,
                    result: None,
                }
            }
        };
        // Every event is stored before the job's end is.
        let _ = recorder.await;
        heartbeat.abort();

        let result = match &outcome {
            Outcome::Succeeded { result } | Outcome::Failed { result, .. } => result.clone(),
            _ => None,
        };
        let end = decide(
            &outcome,
            job.attempts,
            job.max_attempts,
            &self.config.retry,
            now_ms(),
        );
        let fx = effects(job.kind, params.as_ref().ok(), &end, result.as_ref());
        match store.finish_job(&job, &owner, &end, &fx).await {
            Ok(true) => {
                tracing::info!(job.id = %job.id, end = ?end_label(&end), "job attempt ended");
                let took = job.started_at.map_or(0, |started| now_ms() - started);
                self.metrics.job_attempt(
                    job.kind.as_str(),
                    end_label(&end),
                    Duration::from_millis(u64::try_from(took).unwrap_or(0)),
                );
            }
            Ok(false) => {
                tracing::warn!(job.id = %job.id, "lease lost before the job ended; result dropped");
            }
            Err(e) => {
                tracing::error!(job.id = %job.id, error = %e, "recording the job's end failed");
            }
        }
    }
}

fn end_label(end: &JobEnd) -> &'static str {
    match end {
        JobEnd::Succeeded => "succeeded",
        JobEnd::Retry { .. } => "retry",
        JobEnd::Failed { .. } => "failed",
        JobEnd::Cancelled { .. } => "cancelled",
        JobEnd::Requeue => "requeued",
    }
}

/// Renews the lease; turns a requested cancel (or a lost lease) into the cancel signal.
async fn heartbeat(
    store: Store,
    job: JobId,
    owner: String,
    config: WorkerConfig,
    cancel: CancellationToken,
) {
    let period = config.heartbeat.min(Duration::from_secs(1));
    // The first check is one period in: the claim itself just set a fresh lease.
    let mut tick = tokio::time::interval_at(tokio::time::Instant::now() + period, period);
    let mut last_renewal = tokio::time::Instant::now();
    loop {
        tick.tick().await;
        // Cancel requests are checked every second; the lease is renewed every `heartbeat`.
        let renew = last_renewal.elapsed() >= config.heartbeat;
        let lease = if renew { lease_ms(&config) } else { 0 };
        let result = if renew {
            store.heartbeat(job, &owner, lease).await
        } else {
            store.cancel_requested(job, &owner).await
        };
        match result {
            Ok(Some(cancel_requested)) => {
                if renew {
                    last_renewal = tokio::time::Instant::now();
                }
                if cancel_requested {
                    cancel.cancel();
                }
            }
            Ok(None) => {
                tracing::warn!(job.id = %job, "lease lost; stopping the playbook");
                cancel.cancel();
                return;
            }
            Err(e) => tracing::warn!(job.id = %job, error = %e, "heartbeat failed"),
        }
    }
}

/// Stores executor events in order as they arrive.
async fn record_events(
    store: Store,
    job: JobId,
    owner: String,
    mut events: mpsc::Receiver<ExecEvent>,
) {
    while let Some(event) = events.recv().await {
        let stored = match event {
            ExecEvent::Spawned { pid } => store.set_runner_pid(job, &owner, pid).await,
            ExecEvent::Step {
                index,
                total,
                name,
                status,
            } => {
                let payload =
                    json!({"index": index, "total": total, "name": name, "status": status});
                let progress = (status == "started").then_some((index, total, name.as_str()));
                store
                    .record_job_event(job, JobEventKind::Step, &payload, progress)
                    .await
            }
            ExecEvent::Log(text) => {
                store
                    .record_job_event(job, JobEventKind::Log, &json!({"text": text}), None)
                    .await
            }
            ExecEvent::Result(_) => Ok(()),
        };
        if let Err(e) = stored {
            tracing::warn!(job.id = %job, error = %e, "recording a job event failed");
        }
    }
}

/// Recovers running jobs whose lease expired (the server died or hung): stops an orphaned
/// playbook left by a previous server process, then retries the job if attempts remain or
/// fails it, moving its resources out of their in-progress states either way.
pub async fn recover_expired(store: &Store, config: &WorkerConfig) {
    let expired = match store.expired_jobs().await {
        Ok(jobs) => jobs,
        Err(e) => {
            tracing::error!(error = %e, "listing expired jobs failed");
            return;
        }
    };
    for (job, owner, pid) in expired {
        if let Some(pid) = pid {
            stop_orphan(job.id, pid).await;
        }
        let outcome = Outcome::Failed {
            code: "LEASE_EXPIRED".into(),
            message: "the server running this job stopped responding (crash or restart)".into(),
            retryable: true,
            result: None,
        };
        let end = decide(
            &outcome,
            job.attempts,
            job.max_attempts,
            &config.retry,
            now_ms(),
        );
        let fx = effects(job.kind, job.params().ok().as_ref(), &end, None);
        match store.finish_job(&job, &owner, &end, &fx).await {
            Ok(true) => {
                tracing::warn!(job.id = %job.id, end = end_label(&end), "recovered a job with an expired lease");
            }
            Ok(false) => {}
            Err(e) => tracing::error!(job.id = %job.id, error = %e, "recovering a job failed"),
        }
    }
}

/// Kills the process group of a playbook a dead server left behind, if it still runs and
/// really belongs to this job (its environment carries the job id).
async fn stop_orphan(job: JobId, pid: i64) {
    let Ok(pid) = u32::try_from(pid) else { return };
    let marker = format!("PRESSLUFT_JOB_ID={job}");
    let belongs = std::fs::read(format!("/proc/{pid}/environ"))
        .is_ok_and(|env| env.split(|b| *b == 0).any(|kv| kv == marker.as_bytes()));
    if !belongs {
        return;
    }
    tracing::warn!(job.id = %job, pid, "stopping an orphaned playbook");
    crate::executor::kill_group(pid, nix::sys::signal::Signal::SIGTERM);
    for _ in 0..50 {
        if !std::path::Path::new(&format!("/proc/{pid}")).exists() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    crate::executor::kill_group(pid, nix::sys::signal::Signal::SIGKILL);
}
