//! The queue's statements: atomic claim, lease heartbeat, event recording, completion with
//! resource transitions, expired-lease recovery, and the scheduler's enqueues.

use serde_json::json;

use super::jobs::{JobRecord, NewJob};
use super::{BackupRecord, Store, Tx, now};
use crate::error::{Error, Reason, Result};
use crate::model::job::{BackupCreate, JobParams, JobTarget};
use crate::model::report::{JobReport, StoredBackup};
use crate::model::{
    AuditResult, BackupEvent, BackupId, BackupScope, BackupStatus, BackupTrigger, EnvEvent,
    EnvironmentId, EnvironmentStatus, JobEventKind, JobId, JobKind, JobStatus, JobTransition,
    NodeEvent, NodeId, SiteId,
};

/// The condition on `backups b` (one bound parameter: now) for a backup that may be deleted.
macro_rules! expired_backup {
    () => {
        "b.status = 'completed' AND b.expires_at < ?
         AND b.id <> (SELECT n.id FROM backups n WHERE n.environment_id = b.environment_id
                      AND n.status = 'completed' ORDER BY n.created_at DESC, n.id DESC LIMIT 1)"
    };
}

/// How a finished attempt changes its job.
#[derive(Debug, Clone, PartialEq)]
pub enum JobEnd {
    /// The job succeeded.
    Succeeded,
    /// The attempt failed but the job runs again at `run_after` (unix ms).
    Retry {
        run_after: i64,
        code: String,
        message: String,
    },
    /// The job failed for good.
    Failed { code: String, message: String },
    /// The job was cancelled while running.
    Cancelled { message: String },
    /// The server stopped mid-run: back to the queue without using up the attempt.
    Requeue,
}

/// Resource changes applied in the transaction that ends a job.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ResourceEffects {
    /// Event for the job's environment.
    pub environment: Option<EnvEvent>,
    /// Event for every environment a site_delete job covers.
    pub site_environments: Option<EnvEvent>,
    /// Event for the job's node.
    pub node: Option<NodeEvent>,
    /// Event for the job's backup (backup_create).
    pub backup: Option<BackupEvent>,
    /// What the playbook reported (empty when it reported nothing).
    pub report: JobReport,
    /// A release the job created and switched to.
    pub release: Option<ReleaseReport>,
    /// An existing release (by name) the job switched to (rollbacks).
    pub current_release: Option<String>,
    /// Releases (by name) the job removed from the node.
    pub pruned_releases: Vec<String>,
    /// Production's fingerprint taken when this environment was cloned from it.
    pub drift_baseline: Option<serde_json::Value>,
    /// A drift check's verdict: drifted or not, and what changed.
    pub drift: Option<(bool, Vec<crate::model::drift::DriftItem>)>,
    /// The caches now on (page, object) after env_cache_toggle.
    pub caches: Option<(bool, bool)>,
    /// What a domain job did to its domain.
    pub domain: Option<DomainOutcome>,
}

/// How a domain job ended for its domain.
#[derive(Debug, Clone, PartialEq)]
pub enum DomainOutcome {
    /// Certificate obtained and served; `primary` makes it the environment's address.
    Issued {
        id: crate::model::DomainId,
        expires_at: Option<i64>,
        primary: bool,
    },
    /// No certificate: the domain is `failed` with the reason (served as before if it already
    /// had one).
    IssueFailed {
        id: crate::model::DomainId,
        message: String,
    },
    /// No longer served; if it was the primary, the preview URL is the address again.
    Removed { id: crate::model::DomainId },
}

pub use crate::model::report::ReleaseReport;

impl Store {
    /// Claims the next runnable job for `owner`, atomically: oldest first by priority, never
    /// a second running job for a site, node-scoped jobs exclusive on their node, at most
    /// `per_node` running jobs per node, and site jobs only on usable nodes (a queued
    /// provisioning of the node goes first).
    pub async fn claim_next(
        &self,
        owner: &str,
        per_node: u32,
        lease_ms: i64,
    ) -> Result<Option<JobRecord>> {
        let now = now();
        // A read first: most wake-ups find nothing to start, and reads take no write turn.
        let due: bool = sqlx::query_scalar(
            "SELECT EXISTS (SELECT 1 FROM jobs WHERE status = 'queued' AND run_after <= ?)",
        )
        .bind(now)
        .fetch_one(&self.pool)
        .await?;
        if !due {
            return Ok(None);
        }
        let mut tx = self.write().await?;
        let claimed: Option<JobRecord> = sqlx::query_as(concat!(
            "UPDATE jobs SET status = 'running', attempts = attempts + 1, lease_owner = ?,
                    heartbeat_at = ?, lease_expires_at = ?, started_at = ?, updated_at = ?,
                    runner_pid = NULL, progress_current = 0, progress_total = 0, progress_step = '',
                    state_version = state_version + 1
             WHERE status = 'queued' AND id = (
                SELECT j.id FROM jobs j
                WHERE j.status = 'queued' AND j.run_after <= ?
                  AND NOT EXISTS (SELECT 1 FROM jobs r WHERE r.status = 'running' AND r.node_id = j.node_id
                                  AND (r.scope = 'node' OR j.scope = 'node'))
                  AND (j.site_id IS NULL OR NOT EXISTS
                        (SELECT 1 FROM jobs r WHERE r.status = 'running' AND r.site_id = j.site_id))
                  AND (SELECT COUNT(*) FROM jobs r WHERE r.status = 'running' AND r.node_id = j.node_id) < ?
                  AND (j.scope = 'node' OR (
                        EXISTS (SELECT 1 FROM nodes n WHERE n.id = j.node_id AND n.status IN ('active', 'unreachable'))
                        AND NOT EXISTS (SELECT 1 FROM jobs q WHERE q.node_id = j.node_id AND q.scope = 'node'
                                        AND q.status = 'queued' AND q.created_at < j.created_at)))
                ORDER BY j.priority, j.run_after, j.created_at, j.id
                LIMIT 1)
             RETURNING ",
            super::jobs::job_columns!()
        ))
        .bind(owner)
        .bind(now)
        .bind(now + lease_ms)
        .bind(now)
        .bind(now)
        .bind(now)
        .bind(i64::from(per_node))
        .fetch_optional(&mut *tx)
        .await?;
        let Some(job) = claimed else {
            tx.commit().await?;
            return Ok(None);
        };
        let id = job.id;
        Self::append_job_event_tx(
            &mut tx,
            id,
            JobEventKind::State,
            &json!({"status": "running", "attempt": job.attempts, "message": format!("attempt {} started", job.attempts)}),
        )
        .await?;
        if let Some(backup) = job.params().ok().and_then(|p| p.backup()) {
            Self::transition_backup_tx(&mut tx, backup, BackupEvent::Start, None).await?;
        }
        tx.commit().await?;
        self.notify_job(id);
        Ok(Some(job))
    }

    /// Renews a lease. `None` when the lease is no longer ours (the job ended or was
    /// recovered); otherwise whether a cancel was requested.
    pub async fn heartbeat(&self, job: JobId, owner: &str, lease_ms: i64) -> Result<Option<bool>> {
        let now = now();
        let _turn = self.write_turn().await;
        let cancel = sqlx::query_scalar(
            "UPDATE jobs SET heartbeat_at = ?, lease_expires_at = ?
             WHERE id = ? AND lease_owner = ? AND status = 'running'
             RETURNING cancel_requested",
        )
        .bind(now)
        .bind(now + lease_ms)
        .bind(job)
        .bind(owner)
        .fetch_optional(&self.pool)
        .await?;
        Ok(cancel)
    }

    /// Whether a cancel was requested for a job `owner` still holds (`None` when it does not).
    pub async fn cancel_requested(&self, job: JobId, owner: &str) -> Result<Option<bool>> {
        Ok(sqlx::query_scalar(
            "SELECT cancel_requested FROM jobs WHERE id = ? AND lease_owner = ? AND status = 'running'",
        )
        .bind(job)
        .bind(owner)
        .fetch_optional(&self.pool)
        .await?)
    }

    /// Records the process group of a running playbook.
    pub async fn set_runner_pid(&self, job: JobId, owner: &str, pid: u32) -> Result<()> {
        let _turn = self.write_turn().await;
        sqlx::query("UPDATE jobs SET runner_pid = ? WHERE id = ? AND lease_owner = ? AND status = 'running'")
            .bind(i64::from(pid))
            .bind(job)
            .bind(owner)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    /// Appends a step or log event of a running job (and its progress, for steps).
    pub async fn record_job_event(
        &self,
        job: JobId,
        kind: JobEventKind,
        payload: &serde_json::Value,
        progress: Option<(i64, i64, &str)>,
    ) -> Result<()> {
        let _turn = self.write_turn().await;
        let mut conn = self.pool.acquire().await?;
        Self::append_job_event_on(&mut conn, job, kind, payload).await?;
        // Progress is a convenience copy of the latest step, not a state: no transaction.
        if let Some((current, total, step)) = progress {
            sqlx::query(
                "UPDATE jobs SET progress_current = ?, progress_total = ?, progress_step = ?, updated_at = ?
                 WHERE id = ?",
            )
            .bind(current)
            .bind(total)
            .bind(step)
            .bind(now())
            .bind(job)
            .execute(&mut *conn)
            .await?;
        }
        self.notify_job(job);
        Ok(())
    }

    /// Ends an attempt: updates the job and, when it ended for good, moves its resources out
    /// of their in-progress states, all in one transaction. Returns `false` (changing nothing)
    /// when `owner` no longer holds the job.
    pub async fn finish_job(
        &self,
        job: &JobRecord,
        owner: &str,
        end: &JobEnd,
        effects: &ResourceEffects,
    ) -> Result<bool> {
        let now = now();
        let id = job.id;
        // `job` is the running job as claimed; the UPDATE below only applies while `owner`
        // still holds it, and everything else is written only if it did.
        let job = JobRecord {
            status: JobStatus::Running,
            ..job.clone()
        };
        let mut tx = self.write().await?;
        let (status, code, message, run_after) = job_after(&job, end, now)?;
        let attempts = if *end == JobEnd::Requeue {
            job.attempts - 1
        } else {
            job.attempts
        };
        let state_message = match end {
            JobEnd::Succeeded => "succeeded".to_owned(),
            JobEnd::Retry {
                run_after, message, ..
            } => format!(
                "attempt {} failed, retrying in {} s: {}",
                job.attempts,
                (run_after - now).max(0) / 1000,
                message.lines().next().unwrap_or_default()
            ),
            JobEnd::Requeue => "interrupted by a server shutdown; queued again".to_owned(),
            JobEnd::Failed { .. } | JobEnd::Cancelled { .. } => message.clone(),
        };
        let event = json!({"status": status.as_str(), "attempt": job.attempts, "error_code": code, "message": state_message});
        // The job's new state, its history event and (when it ended) its audit row, in one
        // round trip: SQLite runs the statements in order, binding parameters in order.
        let sql = if status.is_terminal() {
            concat!(
                end_job_sql!(),
                ";",
                state_event_if_changed_sql!(),
                ";",
                audit_if_changed_sql!()
            )
        } else {
            concat!(end_job_sql!(), ";", state_event_if_changed_sql!())
        };
        let mut query = sqlx::query(sql)
            .bind(status)
            .bind(&code)
            .bind(&message)
            .bind(run_after)
            .bind(attempts)
            .bind(status.is_terminal().then_some(now))
            .bind(now)
            .bind(id)
            .bind(owner)
            .bind(id)
            .bind(id)
            .bind(event.to_string())
            .bind(now);
        if status.is_terminal() {
            let result = if status == JobStatus::Succeeded {
                AuditResult::Succeeded
            } else {
                AuditResult::Failed
            };
            query = query
                .bind(now)
                .bind(job.requested_by.clone())
                .bind(format!("job.{}", job.kind))
                .bind("job")
                .bind(id.to_string())
                .bind(result)
                .bind(if code.is_empty() {
                    status.to_string()
                } else {
                    format!("{status}: {code}")
                })
                .bind(id);
        }
        if query.execute(&mut *tx).await?.rows_affected() == 0 {
            return Ok(false); // the lease is gone: the transaction rolls back on drop
        }
        if status.is_terminal() {
            Self::apply_effects_tx(&mut tx, &job, effects, &message).await?;
        }
        tx.commit().await?;
        self.notify_work(id);
        Ok(true)
    }

    async fn apply_effects_tx(
        tx: &mut Tx,
        job: &JobRecord,
        effects: &ResourceEffects,
        message: &str,
    ) -> Result<()> {
        if let (Some(event), Some(env_id)) = (effects.environment, job.environment_id) {
            let env = Self::fetch_environment(&mut **tx, env_id).await?;
            match env.status.transition(event) {
                Ok(_) => {
                    Self::transition_environment_tx(tx, &env, event, message).await?;
                }
                Err(e) => {
                    tracing::error!(job.id = %job.id, error = %e, "environment left as it is");
                }
            }
        }
        if let (Some(event), Some(site)) = (effects.site_environments, job.site_id) {
            for env in Self::live_environments_tx(tx, site).await? {
                if env.status == EnvironmentStatus::Deleting {
                    Self::transition_environment_tx(tx, &env, event, message).await?;
                }
            }
        }
        if matches!(job.kind, JobKind::EnvDelete | JobKind::SiteDelete) {
            // A deleted environment's domains are free for another one (their certificates
            // went with it on the node).
            sqlx::query(
                "UPDATE domains SET removed_at = ?, is_primary = 0
                 WHERE removed_at IS NULL
                   AND environment_id IN (SELECT id FROM environments WHERE status = 'deleted')",
            )
            .bind(now())
            .execute(&mut **tx)
            .await?;
        }
        if let Some(event) = effects.node {
            let node = Self::fetch_node(&mut **tx, job.node_id).await?;
            match node.status.transition(event) {
                Ok(_) => {
                    Self::transition_node_tx(tx, &node, event, message).await?;
                    if event == NodeEvent::ProvisionSucceeded {
                        let php = serde_json::to_string(
                            effects.report.php_versions.as_deref().unwrap_or_default(),
                        )
                        .map_err(Error::internal)?;
                        sqlx::query(
                            "UPDATE nodes SET last_seen_at = ?, php_versions = ? WHERE id = ?",
                        )
                        .bind(now())
                        .bind(php)
                        .bind(job.node_id)
                        .execute(&mut **tx)
                        .await?;
                    }
                }
                Err(e) => tracing::error!(job.id = %job.id, error = %e, "node left as it is"),
            }
        }
        if let Some(env) = job.environment_id {
            Self::record_environment_results_tx(tx, job, env, effects).await?;
        }
        Self::record_backup_results_tx(tx, job, effects).await
    }

    /// The backups a job took (its own, a pre-change backup) and the ones it deleted.
    async fn record_backup_results_tx(
        tx: &mut Tx,
        job: &JobRecord,
        effects: &ResourceEffects,
    ) -> Result<()> {
        let params = job.params();
        if let Err(e) = &params {
            tracing::error!(job.id = %job.id, error = %e, "the job's backups are left as they are");
        }
        let params = params.ok();
        if let (Some(event), Some(backup)) =
            (effects.backup, params.as_ref().and_then(JobParams::backup))
        {
            Self::transition_backup_tx(tx, backup, event, effects.report.backup.as_ref()).await?;
        }
        // A job that backs up first reports that backup as `pre_backup` (a terminal end only:
        // the environment event says the job is over).
        if let Some(pre) = params
            .as_ref()
            .and_then(JobParams::pre_backup)
            .and_then(|p| p.pre_backup_id)
            && effects.environment.is_some()
        {
            let report = effects.report.pre_backup.as_ref();
            if report.is_some() {
                Self::transition_backup_tx(tx, pre, BackupEvent::Start, None).await?;
                Self::transition_backup_tx(tx, pre, BackupEvent::Complete, report).await?;
            } else {
                Self::transition_backup_tx(tx, pre, BackupEvent::Fail, None).await?;
            }
        }
        // backup_cleanup reports the backups it deleted from storage.
        if job.kind == JobKind::BackupCleanup {
            for &id in &effects.report.deleted_backups {
                let site: Option<Option<crate::model::SiteId>> =
                    sqlx::query_scalar("SELECT site_id FROM backups WHERE id = ?")
                        .bind(id)
                        .fetch_optional(&mut **tx)
                        .await?;
                if site.flatten() == job.site_id {
                    Self::transition_backup_tx(tx, id, BackupEvent::Expire, None).await?;
                }
            }
        }
        Ok(())
    }

    /// Records a release the job built (current when healthy) and a release it switched to.
    async fn record_releases_tx(
        tx: &mut Tx,
        job: JobId,
        env: crate::model::EnvironmentId,
        effects: &ResourceEffects,
    ) -> Result<()> {
        if let Some(release) = &effects.release {
            let id = crate::model::ReleaseId::new();
            let health = if release.healthy {
                "healthy"
            } else {
                "unhealthy"
            };
            // An unhealthy release is recorded but never becomes current.
            sqlx::query(
                "INSERT INTO releases (id, environment_id, name, source_kind, source, resolved_ref, health, job_id,
                                       created_at, activated_at)
                 VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, CASE WHEN ? THEN ? END);
                 UPDATE environments SET current_release_id = ? WHERE id = ? AND ?",
            )
            .bind(id)
            .bind(env)
            .bind(&release.name)
            .bind(release.source_kind)
            .bind(release.source.to_string())
            .bind(&release.resolved_ref)
            .bind(health)
            .bind(job)
            .bind(now())
            .bind(release.healthy)
            .bind(now())
            .bind(id)
            .bind(env)
            .bind(release.healthy)
            .execute(&mut **tx)
            .await?;
        }
        for name in &effects.pruned_releases {
            // The live release is never marked, whatever a playbook says.
            sqlx::query(
                "UPDATE releases SET pruned_at = ?
                 WHERE environment_id = ? AND name = ? AND pruned_at IS NULL
                   AND id IS NOT (SELECT current_release_id FROM environments WHERE id = ?)",
            )
            .bind(now())
            .bind(env)
            .bind(name)
            .bind(env)
            .execute(&mut **tx)
            .await?;
        }
        if let Some(name) = &effects.current_release {
            sqlx::query(
                "UPDATE releases SET activated_at = ? WHERE environment_id = ? AND name = ?;
                 UPDATE environments SET current_release_id =
                     (SELECT id FROM releases WHERE environment_id = ? AND name = ?)
                 WHERE id = ? AND EXISTS (SELECT 1 FROM releases WHERE environment_id = ? AND name = ?)",
            )
            .bind(now())
            .bind(env)
            .bind(name)
            .bind(env)
            .bind(name)
            .bind(env)
            .bind(env)
            .bind(name)
            .execute(&mut **tx)
            .await?;
        }
        Ok(())
    }

    /// Records a clone's drift baseline, or a drift check's report and the environment's drift
    /// status.
    /// What the job's playbook reported about its environment: releases, drift, domain, caches.
    async fn record_environment_results_tx(
        tx: &mut Tx,
        job: &JobRecord,
        env: EnvironmentId,
        effects: &ResourceEffects,
    ) -> Result<()> {
        Self::record_releases_tx(tx, job.id, env, effects).await?;
        Self::record_drift_tx(tx, job, env, effects).await?;
        if let Some(outcome) = &effects.domain {
            Self::record_domain_tx(tx, env, outcome).await?;
        }
        if let Some((page, object)) = effects.caches {
            sqlx::query("UPDATE environments SET page_cache = ?, object_cache = ? WHERE id = ?")
                .bind(page)
                .bind(object)
                .bind(env)
                .execute(&mut **tx)
                .await?;
        }
        Ok(())
    }

    /// A domain job's outcome: certificate state, primary flag and the environment's address.
    async fn record_domain_tx(
        tx: &mut Tx,
        env: EnvironmentId,
        outcome: &DomainOutcome,
    ) -> Result<()> {
        match outcome {
            DomainOutcome::Issued {
                id,
                expires_at,
                primary,
            } => {
                sqlx::query(
                    "UPDATE domains SET tls_status = 'active', tls_expires_at = ?, tls_message = '',
                            tls_checked_at = ?, state_version = state_version + 1
                     WHERE id = ?",
                )
                .bind(expires_at)
                .bind(now())
                .bind(id)
                .execute(&mut **tx)
                .await?;
                if *primary {
                    sqlx::query(
                        "UPDATE domains SET is_primary = (id = ?)
                         WHERE environment_id = ? AND removed_at IS NULL",
                    )
                    .bind(id)
                    .bind(env)
                    .execute(&mut **tx)
                    .await?;
                    sqlx::query(
                        "UPDATE environments SET primary_domain = (SELECT hostname FROM domains WHERE id = ?)
                         WHERE id = ?",
                    )
                    .bind(id)
                    .bind(env)
                    .execute(&mut **tx)
                    .await?;
                }
            }
            DomainOutcome::IssueFailed { id, message } => {
                // A domain that already had a certificate keeps serving it.
                sqlx::query(
                    "UPDATE domains SET tls_status = CASE WHEN tls_expires_at IS NULL THEN 'failed' ELSE 'active' END,
                            tls_message = ?, state_version = state_version + 1
                     WHERE id = ?",
                )
                .bind(message)
                .bind(id)
                .execute(&mut **tx)
                .await?;
            }
            DomainOutcome::Removed { id } => {
                sqlx::query(
                    "UPDATE environments SET primary_domain = ''
                     WHERE id = ? AND primary_domain = (SELECT hostname FROM domains WHERE id = ? AND is_primary = 1)",
                )
                .bind(env)
                .bind(id)
                .execute(&mut **tx)
                .await?;
                sqlx::query(
                    "UPDATE domains SET removed_at = ?, is_primary = 0, state_version = state_version + 1
                     WHERE id = ?",
                )
                .bind(now())
                .bind(id)
                .execute(&mut **tx)
                .await?;
            }
        }
        Ok(())
    }

    async fn record_drift_tx(
        tx: &mut Tx,
        job: &JobRecord,
        env: EnvironmentId,
        effects: &ResourceEffects,
    ) -> Result<()> {
        let other = job.params().ok().and_then(|p| p.source_environment());
        if let (Some(fingerprint), Some(other)) = (&effects.drift_baseline, other) {
            // A clone (job on staging) or a promotion (job on production) renews the baseline
            // of the staging environment against production.
            let (staging, production) = if job.kind == JobKind::EnvPromote {
                (other, env)
            } else {
                (env, other)
            };
            sqlx::query(
                "INSERT INTO drift_baselines (id, environment_id, source_environment_id, fingerprint, job_id, recorded_at)
                 VALUES (?, ?, ?, ?, ?, ?)",
            )
            .bind(uuid::Uuid::now_v7().to_string())
            .bind(staging)
            .bind(production)
            .bind(fingerprint.to_string())
            .bind(job.id)
            .bind(now())
            .execute(&mut **tx)
            .await?;
        }
        if let Some((drifted, items)) = &effects.drift {
            let status = if *drifted { "drifted" } else { "clean" };
            let now = now();
            sqlx::query(
                "INSERT INTO drift_reports (id, environment_id, status, items, job_id, checked_at)
                 VALUES (?, ?, ?, ?, ?, ?);
                 UPDATE environments SET drift_status = ?, drift_checked_at = ? WHERE id = ?",
            )
            .bind(uuid::Uuid::now_v7().to_string())
            .bind(env)
            .bind(status)
            .bind(serde_json::to_string(items).map_err(Error::internal)?)
            .bind(job.id)
            .bind(now)
            .bind(status)
            .bind(now)
            .bind(env)
            .execute(&mut **tx)
            .await?;
        }
        Ok(())
    }

    async fn transition_backup_tx(
        tx: &mut Tx,
        id: BackupId,
        event: BackupEvent,
        stored: Option<&StoredBackup>,
    ) -> Result<()> {
        let (status, env, retention): (BackupStatus, EnvironmentId, i64) = sqlx::query_as(
            "SELECT b.status, b.environment_id, e.backup_retention_secs
             FROM backups b JOIN environments e ON e.id = b.environment_id WHERE b.id = ?",
        )
        .bind(id)
        .fetch_optional(&mut **tx)
        .await?
        .ok_or_else(|| Error::not_found("backup", &id))?;
        let next = match status.transition(event) {
            Ok(next) => next,
            Err(e) => {
                tracing::error!(backup.id = %id, error = %e, "backup left as it is");
                return Ok(());
            }
        };
        let now = now();
        let stored = stored.cloned().unwrap_or_default();
        if next == BackupStatus::Completed {
            sqlx::query(
                "UPDATE backups SET status = ?, object_key = ?, size_bytes = ?, sha256 = ?, completed_at = ?,
                        expires_at = ?, state_version = state_version + 1 WHERE id = ?",
            )
            .bind(next)
            .bind(&stored.object_key)
            .bind(stored.size_bytes)
            .bind(&stored.sha256)
            .bind(now)
            .bind(now + retention * 1000)
            .bind(id)
            .execute(&mut **tx)
            .await?;
            sqlx::query("UPDATE environments SET last_backup_at = ? WHERE id = ?")
                .bind(now)
                .bind(env)
                .execute(&mut **tx)
                .await?;
        } else {
            sqlx::query(
                "UPDATE backups SET status = ?, state_version = state_version + 1 WHERE id = ?",
            )
            .bind(next)
            .bind(id)
            .execute(&mut **tx)
            .await?;
        }
        Ok(())
    }

    /// Running jobs whose lease expired (their worker died or hung).
    pub async fn expired_jobs(&self) -> Result<Vec<(JobRecord, String, Option<i64>)>> {
        let rows: Vec<(JobId, Option<String>, Option<i64>)> = sqlx::query_as(
            "SELECT id, lease_owner, runner_pid FROM jobs WHERE status = 'running' AND lease_expires_at < ?",
        )
        .bind(now())
        .fetch_all(&self.pool)
        .await?;
        let mut out = Vec::with_capacity(rows.len());
        for (id, owner, pid) in rows {
            out.push((self.job(id).await?, owner.unwrap_or_default(), pid));
        }
        Ok(out)
    }

    /// Creates a pending backup and its backup_create job in one transaction.
    pub async fn enqueue_backup(
        &self,
        env_id: EnvironmentId,
        scope: BackupScope,
        trigger: BackupTrigger,
        actor: &str,
    ) -> Result<(BackupRecord, JobRecord)> {
        let mut tx = self.write().await?;
        let env = Self::fetch_environment(&mut *tx, env_id).await?;
        crate::model::guard::environment_job(env.kind, env.status, JobKind::BackupCreate, false)?;
        let target: String = sqlx::query_scalar("SELECT s3_endpoint FROM settings WHERE id = 1")
            .fetch_one(&mut *tx)
            .await?;
        if target.is_empty() {
            return Err(Error::precondition(
                Reason::BackupTargetMissing,
                "no backup target is configured: set one with SetBackupTarget",
            ));
        }
        Self::ensure_site_idle_tx(&mut tx, env.site_id).await?;
        let backup = BackupId::new();
        let now = now();
        sqlx::query(
            "INSERT INTO backups (id, environment_id, site_id, scope, status, trigger_kind, created_at)
             VALUES (?, ?, ?, ?, 'pending', ?, ?)",
        )
        .bind(backup)
        .bind(env.id)
        .bind(env.site_id)
        .bind(scope)
        .bind(trigger)
        .bind(now)
        .execute(&mut *tx)
        .await?;
        let params = JobParams::BackupCreate(BackupCreate {
            backup_id: backup,
            scope,
            trigger,
        });
        let target = JobTarget::Environment {
            site: env.site_id,
            environment: env.id,
            node: env.node_id,
        };
        let summary = format!("{trigger} {scope} backup of {}", env.linux_user);
        let job = self
            .insert_job_tx(&mut tx, target, &NewJob::new(params, summary, actor))
            .await?;
        sqlx::query("UPDATE backups SET job_id = ? WHERE id = ?")
            .bind(job.id)
            .bind(backup)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        self.notify_work(job.id);
        Ok((self.backup(backup).await?, job))
    }

    /// Active environments whose backup schedule is due.
    pub async fn due_backup_environments(&self) -> Result<Vec<EnvironmentId>> {
        Ok(sqlx::query_scalar(
            "SELECT e.id FROM environments e
             WHERE e.backup_enabled = 1 AND e.status = 'active'
               AND COALESCE(
                     (SELECT MAX(b.created_at) FROM backups b
                      WHERE b.environment_id = e.id AND b.trigger_kind = 'scheduled' AND b.status <> 'failed'),
                     0) + e.backup_interval_secs * 1000 <= ?
               AND NOT EXISTS (SELECT 1 FROM jobs j WHERE j.environment_id = e.id AND j.kind = 'backup_create'
                               AND j.status IN ('queued', 'running'))
             ORDER BY e.id",
        )
        .bind(now())
        .fetch_all(&self.pool)
        .await?)
    }

    /// Sites with backups to clean up and no cleanup queued, with the node of their
    /// production environment.
    pub async fn sites_needing_backup_cleanup(
        &self,
    ) -> Result<Vec<(crate::model::SiteId, crate::model::NodeId)>> {
        Ok(sqlx::query_as(concat!(
            "SELECT s.id, e.node_id FROM sites s JOIN environments e ON e.id = s.production_environment_id
             WHERE s.status = 'active'
               AND NOT EXISTS (SELECT 1 FROM jobs j WHERE j.site_id = s.id AND j.kind = 'backup_cleanup'
                               AND j.status IN ('queued', 'running'))
               AND EXISTS (SELECT 1 FROM backups b WHERE b.site_id = s.id AND ",
            expired_backup!(),
            ")"
        ))
        .bind(now())
        .fetch_all(&self.pool)
        .await?)
    }

    /// A site's backups to delete: completed, past their expiry, and never the newest
    /// completed backup of its environment.
    pub async fn expired_backups_of_site(
        &self,
        site: crate::model::SiteId,
    ) -> Result<Vec<(BackupId, String)>> {
        Ok(sqlx::query_as(concat!(
            "SELECT b.id, b.object_key FROM backups b WHERE b.site_id = ? AND ",
            expired_backup!(),
            " ORDER BY b.created_at"
        ))
        .bind(site)
        .bind(now())
        .fetch_all(&self.pool)
        .await?)
    }

    /// Queues a job on a whole site, run on `node` (backup cleanup; the site must be idle).
    pub async fn enqueue_site_job(
        &self,
        site: SiteId,
        node: NodeId,
        job: &NewJob,
    ) -> Result<JobRecord> {
        let mut tx = self.write().await?;
        Self::ensure_site_idle_tx(&mut tx, site).await?;
        let job = self
            .insert_job_tx(&mut tx, JobTarget::Site { site, node }, job)
            .await?;
        tx.commit().await?;
        self.notify_work(job.id);
        Ok(job)
    }
}

/// The job's status, error code, message and next run time after `end`.
fn job_after(job: &JobRecord, end: &JobEnd, now: i64) -> Result<(JobStatus, String, String, i64)> {
    let next = match end {
        JobEnd::Succeeded => (
            job.status.transition(JobTransition::Succeed)?,
            String::new(),
            String::new(),
            job.run_after,
        ),
        JobEnd::Retry {
            run_after,
            code,
            message,
        } => (
            job.status.transition(JobTransition::Fail { retry: true })?,
            code.clone(),
            message.clone(),
            *run_after,
        ),
        JobEnd::Failed { code, message } => (
            job.status
                .transition(JobTransition::Fail { retry: false })?,
            code.clone(),
            message.clone(),
            job.run_after,
        ),
        JobEnd::Cancelled { message } => (
            job.status.transition(JobTransition::Cancel)?,
            "CANCELLED".to_owned(),
            message.clone(),
            job.run_after,
        ),
        JobEnd::Requeue => (JobStatus::Queued, String::new(), String::new(), now),
    };
    Ok(next)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::NodeStatus;
    use crate::store::nodes::tests::new_node;
    use crate::store::test_support::store;

    /// Only the lease holder ends a job, exactly once, and its history and audit follow.
    #[tokio::test]
    async fn only_the_lease_holder_finishes_a_job_once() {
        let (store, _dir) = store().await;
        let node = store.create_node(&new_node("n1")).await.expect("node");
        store.enqueue_provision(node.id, 0, "t").await.expect("job");
        let job = store
            .claim_next("w1", 2, 30_000)
            .await
            .expect("claim")
            .expect("a job");
        assert_eq!(job.status, JobStatus::Running);
        assert!(
            store
                .claim_next("w2", 2, 30_000)
                .await
                .expect("claim")
                .is_none(),
            "node-exclusive"
        );

        let fx = ResourceEffects {
            node: Some(NodeEvent::ProvisionSucceeded),
            ..ResourceEffects::default()
        };
        assert!(
            !store
                .finish_job(&job, "w2", &JobEnd::Succeeded, &fx)
                .await
                .expect("finish")
        );
        assert_eq!(
            store.job(job.id).await.expect("job").status,
            JobStatus::Running,
            "a stranger changes nothing"
        );
        assert!(
            store
                .finish_job(&job, "w1", &JobEnd::Succeeded, &fx)
                .await
                .expect("finish")
        );
        assert!(
            !store
                .finish_job(&job, "w1", &JobEnd::Succeeded, &fx)
                .await
                .expect("finish"),
            "only once"
        );
        assert_eq!(
            store.job(job.id).await.expect("job").status,
            JobStatus::Succeeded
        );
        assert_eq!(
            store.node(node.id).await.expect("node").status,
            NodeStatus::Active
        );
        let states: Vec<String> = store
            .job_events(job.id, 0, 10)
            .await
            .expect("events")
            .iter()
            .map(|e| {
                serde_json::from_str::<serde_json::Value>(&e.payload).expect("json")["status"]
                    .to_string()
            })
            .collect();
        assert_eq!(states, vec!["\"queued\"", "\"running\"", "\"succeeded\""]);
        let audit = store
            .list_audit(Some("job"), Some(&job.id.to_string()), 10, None)
            .await
            .expect("audit");
        assert_eq!(audit.items.len(), 2, "accepted and succeeded");
    }
}
