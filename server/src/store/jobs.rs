//! Jobs and their event history. This part of the store enqueues, lists and cancels; the
//! worker's claim/complete/recover statements live beside them as the engine grows.

use serde_json::json;
use sqlx::{FromRow, SqliteExecutor};

use super::audit::AuditEntry;
use super::page::invalid_page_token;
use super::page::{PageToken, key, paginate};
use super::{Page, Store, Tx, check_version, now};
use crate::error::{Error, Reason, Result};
use crate::model::job::{EnvDelete, JobParams, JobTarget};
use crate::model::{
    AuditResult, EnvEvent, EnvironmentId, EnvironmentStatus, JobEventKind, JobId, JobKind,
    JobStatus, JobTransition, NodeEvent, NodeId, NodeStatus, SiteId,
};

/// Counts for the metrics listener.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MetricsSnapshot {
    /// (job type, status, count).
    pub jobs: Vec<(String, String, i64)>,
    /// Queued jobs whose run_after has come.
    pub runnable: i64,
    /// (node status, count).
    pub nodes: Vec<(String, i64)>,
}

/// A row of `jobs`.
#[derive(Debug, Clone, FromRow)]
pub struct JobRecord {
    pub id: JobId,
    pub kind: JobKind,
    pub status: JobStatus,
    pub site_id: Option<SiteId>,
    pub environment_id: Option<EnvironmentId>,
    pub node_id: NodeId,
    pub summary: String,
    /// JSON parameters (never secrets).
    pub params: String,
    pub attempts: i64,
    pub max_attempts: i64,
    pub run_after: i64,
    pub timeout_secs: i64,
    pub cancel_requested: bool,
    pub progress_current: i64,
    pub progress_total: i64,
    pub progress_step: String,
    pub error_code: String,
    pub error_message: String,
    pub requested_by: String,
    pub created_at: i64,
    pub started_at: Option<i64>,
    pub finished_at: Option<i64>,
    pub updated_at: i64,
    pub state_version: i64,
    /// Worker holding the lease while running.
    pub lease_owner: Option<String>,
}

impl JobRecord {
    /// The job's typed parameters (decoded from the `params` column, by its `kind`).
    pub fn params(&self) -> Result<JobParams> {
        JobParams::from_json(self.kind, &self.params).map_err(|e| Error::internal(e.to_string()))
    }

    /// What the job acts on.
    pub const fn target(&self) -> JobTarget {
        JobTarget::from_columns(self.node_id, self.site_id, self.environment_id)
    }
}

macro_rules! job_columns {
    () => {
        "id, kind, status, site_id, environment_id, node_id, summary, params, attempts,
         max_attempts, run_after, timeout_secs, cancel_requested, progress_current,
         progress_total, progress_step, error_code, error_message, requested_by, created_at,
         started_at, finished_at, updated_at, state_version, lease_owner"
    };
}
pub(super) use job_columns;

macro_rules! job_select {
    () => {
        "SELECT id, kind, status, site_id, environment_id, node_id, summary, params, attempts,
                max_attempts, run_after, timeout_secs, cancel_requested, progress_current,
                progress_total, progress_step, error_code, error_message, requested_by, created_at,
                started_at, finished_at, updated_at, state_version, lease_owner
         FROM jobs"
    };
}

/// A job to enqueue. What it acts on ([`JobTarget`]) is decided by the store function that
/// queues it, in the queuing transaction.
#[derive(Debug, Clone)]
pub struct NewJob {
    pub params: JobParams,
    pub summary: String,
    pub requested_by: String,
}

impl NewJob {
    pub fn new(params: JobParams, summary: impl Into<String>, requested_by: &str) -> Self {
        Self {
            params,
            summary: summary.into(),
            requested_by: requested_by.to_owned(),
        }
    }

    pub const fn kind(&self) -> JobKind {
        self.params.kind()
    }
}

/// Defaults applied to every new job (see SPEC section 5).
pub const DEFAULT_MAX_ATTEMPTS: i64 = 3;
/// Default per-job timeout: 30 minutes.
pub const DEFAULT_TIMEOUT_SECS: i64 = 30 * 60;

/// A row of `job_events`.
#[derive(Debug, Clone, FromRow)]
pub struct JobEventRecord {
    pub job_id: JobId,
    pub seq: i64,
    pub kind: JobEventKind,
    /// JSON payload, already redacted.
    pub payload: String,
    pub created_at: i64,
}

/// Filters of `list_jobs`.
#[derive(Debug, Clone, Default)]
pub struct JobFilter {
    pub statuses: Vec<JobStatus>,
    pub kinds: Vec<JobKind>,
    pub site_id: Option<SiteId>,
    pub environment_id: Option<EnvironmentId>,
    pub node_id: Option<NodeId>,
}

impl Store {
    /// A job by id.
    pub async fn job(&self, id: JobId) -> Result<JobRecord> {
        Self::fetch_job(&self.pool, id).await
    }

    /// The job `id`, read through `db`: the pool, or a transaction (`&mut *tx`).
    pub(super) async fn fetch_job<'e>(db: impl SqliteExecutor<'e>, id: JobId) -> Result<JobRecord> {
        sqlx::query_as::<_, JobRecord>(concat!(job_select!(), " WHERE id = ?"))
            .bind(id)
            .fetch_optional(db)
            .await?
            .ok_or_else(|| Error::not_found("job", &id))
    }

    /// Jobs newest first.
    pub async fn list_jobs(
        &self,
        filter: &JobFilter,
        limit: u32,
        after: Option<PageToken>,
    ) -> Result<Page<JobRecord>> {
        let mut q = sqlx::QueryBuilder::<sqlx::Sqlite>::new(job_select!());
        q.push(" WHERE 1 = 1");
        if let Some(t) = &after {
            let created: i64 = t.part(0)?.parse().map_err(|_| invalid_page_token())?;
            let id = t.part(1)?.to_owned();
            q.push(" AND (created_at < ")
                .push_bind(created)
                .push(" OR (created_at = ")
                .push_bind(created)
                .push(" AND id < ")
                .push_bind(id)
                .push("))");
        }
        if !filter.statuses.is_empty() {
            q.push(" AND status IN (");
            let mut sep = q.separated(", ");
            for s in &filter.statuses {
                sep.push_bind(*s);
            }
            q.push(")");
        }
        if !filter.kinds.is_empty() {
            q.push(" AND kind IN (");
            let mut sep = q.separated(", ");
            for k in &filter.kinds {
                sep.push_bind(*k);
            }
            q.push(")");
        }
        if let Some(site) = filter.site_id {
            q.push(" AND site_id = ").push_bind(site);
        }
        if let Some(env) = filter.environment_id {
            q.push(" AND environment_id = ").push_bind(env);
        }
        if let Some(node) = filter.node_id {
            q.push(" AND node_id = ").push_bind(node);
        }
        q.push(" ORDER BY created_at DESC, id DESC LIMIT ")
            .push_bind(i64::from(limit) + 1);
        let rows = q
            .build_query_as::<JobRecord>()
            .fetch_all(&self.pool)
            .await?;
        Ok(paginate(rows, limit, |j| {
            key(&[&j.created_at.to_string(), &j.id.to_string()])
        }))
    }

    /// The job that keeps a site busy (queued or running), if any. One job per site at a time
    /// is the rule: a second request is refused with SITE_BUSY rather than queued behind.
    pub(super) async fn busy_job_for_site_tx(
        tx: &mut Tx,
        site: SiteId,
    ) -> Result<Option<JobRecord>> {
        Ok(sqlx::query_as::<_, JobRecord>(concat!(
            job_select!(),
            " WHERE site_id = ? AND status IN ('queued', 'running') ORDER BY created_at LIMIT 1"
        ))
        .bind(site)
        .fetch_optional(&mut **tx)
        .await?)
    }

    /// Refuses with SITE_BUSY when a job is queued or running for the site.
    pub(super) async fn ensure_site_idle_tx(tx: &mut Tx, site: SiteId) -> Result<()> {
        if let Some(job) = Self::busy_job_for_site_tx(tx, site).await? {
            return Err(Error::precondition(
                Reason::SiteBusy,
                format!(
                    "the site is busy: job {} ({}) is {}; wait for it to finish or cancel it",
                    job.id, job.kind, job.status
                ),
            ));
        }
        Ok(())
    }

    /// Inserts a queued job on `target` and its first history event inside `tx`.
    pub(super) async fn insert_job_tx(
        &self,
        tx: &mut Tx,
        target: JobTarget,
        job: &NewJob,
    ) -> Result<JobRecord> {
        let kind = job.kind();
        let id = JobId::new();
        let now = now();
        let record = sqlx::query_as::<_, JobRecord>(concat!(
            "INSERT INTO jobs (id, kind, status, scope, site_id, environment_id, node_id, summary,
                               params, max_attempts, run_after, timeout_secs, requested_by,
                               created_at, updated_at)
             VALUES (?, ?, 'queued', ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
             RETURNING ",
            job_columns!()
        ))
        .bind(id)
        .bind(kind)
        .bind(kind.scope())
        .bind(target.site())
        .bind(target.environment())
        .bind(target.node())
        .bind(&job.summary)
        .bind(job.params.to_json().to_string())
        .bind(self.job_defaults.max_attempts)
        .bind(now)
        .bind(self.job_defaults.timeout_secs_of(kind))
        .bind(&job.requested_by)
        .bind(now)
        .bind(now)
        .fetch_one(&mut **tx)
        .await?;
        Self::append_state_and_audit_tx(
            tx,
            id,
            &json!({"status": "queued", "attempt": 0, "message": "queued"}),
            &AuditEntry {
                actor: job.requested_by.clone(),
                action: format!("job.{kind}"),
                resource_type: "job",
                resource_id: id.to_string(),
                result: AuditResult::Accepted,
                detail: job.summary.clone(),
                job_id: Some(id),
            },
        )
        .await?;
        Ok(record)
    }

    /// Appends a state event to a job's history and an audit row, in one round trip (SQLite
    /// runs the two statements in order, binding the parameters in order).
    pub(super) async fn append_state_and_audit_tx(
        tx: &mut Tx,
        job: JobId,
        payload: &serde_json::Value,
        audit: &AuditEntry,
    ) -> Result<()> {
        let now = now();
        sqlx::query(concat!(state_event_sql!(), ";", audit_sql!()))
            .bind(job)
            .bind(job)
            .bind(payload.to_string())
            .bind(now)
            .bind(now)
            .bind(&audit.actor)
            .bind(&audit.action)
            .bind(audit.resource_type)
            .bind(&audit.resource_id)
            .bind(audit.result)
            .bind(&audit.detail)
            .bind(audit.job_id)
            .execute(&mut **tx)
            .await?;
        Ok(())
    }

    /// Appends an event to a job's history with the next sequence number.
    pub(super) async fn append_job_event_tx(
        tx: &mut Tx,
        job: JobId,
        kind: JobEventKind,
        payload: &serde_json::Value,
    ) -> Result<i64> {
        Self::append_job_event_on(tx, job, kind, payload).await
    }

    /// Appends an event on any connection (inside a transaction or, holding the write turn,
    /// as a single statement).
    pub(super) async fn append_job_event_on(
        conn: &mut sqlx::SqliteConnection,
        job: JobId,
        kind: JobEventKind,
        payload: &serde_json::Value,
    ) -> Result<i64> {
        let seq: i64 = sqlx::query_scalar(
            "INSERT INTO job_events (job_id, seq, kind, payload, created_at)
             VALUES (?, (SELECT COALESCE(MAX(seq), 0) + 1 FROM job_events WHERE job_id = ?), ?, ?, ?)
             RETURNING seq",
        )
        .bind(job)
        .bind(job)
        .bind(kind)
        .bind(payload.to_string())
        .bind(now())
        .fetch_one(conn)
        .await?;
        Ok(seq)
    }

    /// What the metrics listener reports from the database: jobs by type and status, queued
    /// jobs that may run at `now`, nodes by status.
    pub async fn metrics_snapshot(&self, now: i64) -> Result<MetricsSnapshot> {
        let jobs = sqlx::query_as::<_, (String, String, i64)>(
            "SELECT kind, status, COUNT(*) FROM jobs GROUP BY kind, status ORDER BY kind, status",
        )
        .fetch_all(&self.pool)
        .await?;
        let runnable: i64 = sqlx::query_scalar(
            "SELECT COUNT(*) FROM jobs WHERE status = 'queued' AND run_after <= ?",
        )
        .bind(now)
        .fetch_one(&self.pool)
        .await?;
        let nodes = sqlx::query_as::<_, (String, i64)>(
            "SELECT status, COUNT(*) FROM nodes GROUP BY status ORDER BY status",
        )
        .fetch_all(&self.pool)
        .await?;
        Ok(MetricsSnapshot {
            jobs,
            runnable,
            nodes,
        })
    }

    /// A job's events with a sequence above `after_seq`, oldest first.
    pub async fn job_events(
        &self,
        job: JobId,
        after_seq: i64,
        limit: u32,
    ) -> Result<Vec<JobEventRecord>> {
        Ok(sqlx::query_as::<_, JobEventRecord>(
            "SELECT job_id, seq, kind, payload, created_at FROM job_events
             WHERE job_id = ? AND seq > ? ORDER BY seq LIMIT ?",
        )
        .bind(job)
        .bind(after_seq)
        .bind(i64::from(limit))
        .fetch_all(&self.pool)
        .await?)
    }

    /// Cancels a job. A queued job is cancelled at once and its resource returns to where it
    /// was (nothing ran); a running job is flagged, and the executor terminates its playbook.
    pub async fn cancel_job(
        &self,
        id: JobId,
        expected_version: i64,
        actor: &str,
    ) -> Result<JobRecord> {
        let mut tx = self.write().await?;
        let job = Self::fetch_job(&mut *tx, id).await?;
        check_version("job", expected_version, job.state_version)?;
        match job.status {
            JobStatus::Queued => {
                job.status.transition(JobTransition::Cancel)?;
                sqlx::query(
                    "UPDATE jobs SET status = 'cancelled', finished_at = ?, updated_at = ?,
                            error_code = 'CANCELLED', error_message = ?,
                            state_version = state_version + 1
                     WHERE id = ?",
                )
                .bind(now())
                .bind(now())
                .bind(format!("cancelled by {actor} before it started"))
                .bind(id)
                .execute(&mut *tx)
                .await?;
                Self::revert_resources_of_unstarted_job_tx(&mut tx, &job).await?;
                Self::append_job_event_tx(
                    &mut tx,
                    id,
                    JobEventKind::State,
                    &json!({"status": "cancelled", "attempt": job.attempts, "error_code": "CANCELLED",
                            "message": format!("cancelled by {actor}")}),
                )
                .await?;
            }
            JobStatus::Running => {
                sqlx::query(
                    "UPDATE jobs SET cancel_requested = 1, updated_at = ?, state_version = state_version + 1
                     WHERE id = ?",
                )
                .bind(now())
                .bind(id)
                .execute(&mut *tx)
                .await?;
            }
            JobStatus::Succeeded | JobStatus::Failed | JobStatus::Cancelled => {
                return Err(Error::precondition(
                    Reason::JobNotCancellable,
                    format!("the job already ended ({})", job.status),
                ));
            }
        }
        Self::record_audit_on(
            &mut tx,
            &AuditEntry {
                actor: actor.to_owned(),
                action: "job.cancel".to_owned(),
                resource_type: "job",
                resource_id: id.to_string(),
                result: AuditResult::Accepted,
                detail: String::new(),
                job_id: Some(id),
            },
        )
        .await?;
        let job = Self::fetch_job(&mut *tx, id).await?;
        tx.commit().await?;
        self.notify_work(id);
        Ok(job)
    }

    /// Puts the resources of a job that never ran back where they were.
    async fn revert_resources_of_unstarted_job_tx(tx: &mut Tx, job: &JobRecord) -> Result<()> {
        match job.kind {
            JobKind::NodeProvision => {
                let node = Self::fetch_node(&mut **tx, job.node_id).await?;
                let previous = match job.params() {
                    Ok(JobParams::NodeProvision(p)) => p.previous_node_status,
                    _ => NodeStatus::Pending,
                };
                Self::transition_node_tx(tx, &node, NodeEvent::ProvisionDiscarded { previous }, "")
                    .await?;
            }
            JobKind::SiteDelete => {
                if let Some(site) = job.site_id {
                    let failed = match job.params() {
                        Ok(JobParams::SiteDelete(p)) => p.failed_environments,
                        _ => Vec::new(),
                    };
                    for env in Self::live_environments_tx(tx, site).await? {
                        if env.status == EnvironmentStatus::Deleting {
                            // A failed environment queued for deletion goes back to failed.
                            let event = if failed.contains(&env.id) {
                                EnvEvent::Failed
                            } else {
                                EnvEvent::Reverted
                            };
                            Self::transition_environment_tx(tx, &env, event, "").await?;
                        }
                    }
                }
            }
            _ => {
                if let Some(env_id) = job.environment_id {
                    let env = Self::fetch_environment(&mut **tx, env_id).await?;
                    let event = match env.status {
                        EnvironmentStatus::Creating | EnvironmentStatus::Cloning => {
                            Some(EnvEvent::Discarded)
                        }
                        EnvironmentStatus::Deleting
                            if matches!(
                                job.params(),
                                Ok(JobParams::EnvDelete(EnvDelete { was_failed: true }))
                            ) =>
                        {
                            Some(EnvEvent::Failed)
                        }
                        s if s.is_in_progress() => Some(EnvEvent::Reverted),
                        _ => None,
                    };
                    if let Some(event) = event {
                        Self::transition_environment_tx(tx, &env, event, "").await?;
                    }
                }
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::nodes::tests::new_node;
    use crate::store::test_support::store;

    #[tokio::test]
    async fn provision_cancel_restores_the_node() {
        let (store, _dir) = store().await;
        let node = store.create_node(&new_node("n1")).await.expect("node");
        let job = store
            .enqueue_provision(node.id, 0, "tester")
            .await
            .expect("job");
        assert_eq!(
            store.node(node.id).await.expect("node").status,
            NodeStatus::Provisioning
        );
        assert!(matches!(
            store.enqueue_provision(node.id, 0, "tester").await,
            Err(Error::Precondition {
                reason: Reason::NodeBusy,
                ..
            })
        ));
        let cancelled = store.cancel_job(job.id, 0, "tester").await.expect("cancel");
        assert_eq!(cancelled.status, JobStatus::Cancelled);
        assert_eq!(
            store.node(node.id).await.expect("node").status,
            NodeStatus::Pending
        );
        assert!(matches!(
            store.cancel_job(job.id, 0, "tester").await,
            Err(Error::Precondition {
                reason: Reason::JobNotCancellable,
                ..
            })
        ));
        let events = store.job_events(job.id, 0, 100).await.expect("events");
        assert_eq!(events.iter().map(|e| e.seq).collect::<Vec<_>>(), vec![1, 2]);
    }
}
