//! Enqueues recurring work: per-environment scheduled backups and the periodic cleanup of
//! expired backups. Never more than one queued job of a kind per scope: environments with a
//! backup already queued or running are skipped, and a busy site is simply tried next tick.

use std::path::PathBuf;
use std::time::Duration;

use tokio_util::sync::CancellationToken;

use crate::error::Error;
use crate::model::BackupTrigger;
use crate::model::job::{BackupCleanup, ExpiredBackup, JobParams};
use crate::store::{NewJob, Store};

/// Scheduler settings.
#[derive(Debug, Clone)]
pub struct SchedulerConfig {
    /// How often due schedules are checked.
    pub tick: Duration,
    /// How often expired backups are cleaned up (and old uploads removed).
    pub cleanup_every: Duration,
    /// The data directory whose uploads are removed after `upload_retention`.
    pub data_dir: PathBuf,
    pub upload_retention: Duration,
}

/// The actor recorded on scheduled jobs.
pub const SCHEDULER: &str = "scheduler";

/// Periodic job creation.
pub struct Scheduler {
    store: Store,
    config: SchedulerConfig,
}

impl Scheduler {
    pub fn new(store: Store, config: SchedulerConfig) -> Self {
        Self { store, config }
    }

    pub async fn run(self, shutdown: CancellationToken) {
        let mut tick = tokio::time::interval(self.config.tick);
        let mut cleanup = tokio::time::interval(self.config.cleanup_every);
        loop {
            tokio::select! {
                () = shutdown.cancelled() => return,
                _ = tick.tick() => self.enqueue_due_backups().await,
                _ = cleanup.tick() => {
                    self.enqueue_cleanups().await;
                    self.remove_old_uploads();
                }
            }
        }
    }

    /// One pass over due backup schedules.
    pub async fn enqueue_due_backups(&self) {
        let due = match self.store.due_backup_environments().await {
            Ok(due) => due,
            Err(e) => return tracing::error!(error = %e, "reading backup schedules failed"),
        };
        for env_id in due {
            let env = match self.store.environment(env_id).await {
                Ok(env) => env,
                Err(e) => {
                    tracing::warn!(error = %e, "schedule of a vanished environment");
                    continue;
                }
            };
            match self
                .store
                .enqueue_backup(
                    env.id,
                    env.backup_scope,
                    BackupTrigger::Scheduled,
                    SCHEDULER,
                )
                .await
            {
                Ok((backup, job)) => {
                    tracing::info!(backup.id = %backup.id, job.id = %job.id, "scheduled backup queued");
                }
                Err(Error::Precondition { message, .. }) => {
                    tracing::debug!(environment = %env.id, %message, "scheduled backup deferred");
                }
                Err(e) => {
                    tracing::error!(environment = %env.id, error = %e, "queueing a scheduled backup failed");
                }
            }
        }
    }

    /// Uploaded archives older than the retention go (deploys copy them when they run).
    fn remove_old_uploads(&self) {
        let config = &self.config;
        match crate::uploads::remove_older_than(&config.data_dir, config.upload_retention) {
            Ok(0) => {}
            Ok(n) => tracing::info!(files = n, "old uploads removed"),
            Err(e) => tracing::error!(error = %e, "removing old uploads failed"),
        }
    }

    /// One pass of expired-backup cleanup, one job per site.
    pub async fn enqueue_cleanups(&self) {
        let sites = match self.store.sites_needing_backup_cleanup().await {
            Ok(sites) => sites,
            Err(e) => return tracing::error!(error = %e, "finding expired backups failed"),
        };
        for (site, node) in sites {
            let backups = match self.store.expired_backups_of_site(site).await {
                Ok(b) if !b.is_empty() => b,
                Ok(_) => continue,
                Err(e) => {
                    tracing::error!(error = %e, "listing expired backups failed");
                    continue;
                }
            };
            let summary = format!("delete {} expired backup(s)", backups.len());
            let params = JobParams::BackupCleanup(BackupCleanup {
                backups: backups
                    .into_iter()
                    .map(|(id, object_key)| ExpiredBackup { id, object_key })
                    .collect(),
            });
            let job = NewJob::new(params, summary, SCHEDULER);
            match self.store.enqueue_site_job(site, node, &job).await {
                Ok(job) => tracing::info!(job.id = %job.id, "backup cleanup queued"),
                Err(Error::Precondition { message, .. }) => {
                    tracing::debug!(%message, "backup cleanup deferred");
                }
                Err(e) => tracing::error!(error = %e, "queueing a backup cleanup failed"),
            }
        }
    }
}
