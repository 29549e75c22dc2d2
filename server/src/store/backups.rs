//! Backups: read here; written by the jobs that take them.

use sqlx::FromRow;

use super::page::created_before;
use super::page::{PageToken, key, paginate};
use super::{Page, Store};
use crate::error::{Error, Result};
use crate::model::{
    BackupId, BackupScope, BackupStatus, BackupTrigger, EnvironmentId, JobId, SiteId,
};

/// A row of `backups`.
#[derive(Debug, Clone, FromRow)]
pub struct BackupRecord {
    pub id: BackupId,
    pub environment_id: EnvironmentId,
    pub site_id: SiteId,
    pub scope: BackupScope,
    pub status: BackupStatus,
    pub trigger_kind: BackupTrigger,
    pub object_key: String,
    pub size_bytes: i64,
    pub sha256: String,
    pub job_id: Option<JobId>,
    pub created_at: i64,
    pub completed_at: Option<i64>,
    pub expires_at: Option<i64>,
}

impl Store {
    /// A backup by id.
    pub async fn backup(&self, id: BackupId) -> Result<BackupRecord> {
        sqlx::query_as::<_, BackupRecord>(
            "SELECT id, environment_id, site_id, scope, status, trigger_kind, object_key, size_bytes,
                    sha256, job_id, created_at, completed_at, expires_at
             FROM backups WHERE id = ?",
        )
        .bind(id)
        .fetch_optional(&self.pool)
        .await?
        .ok_or_else(|| Error::not_found("backup", &id))
    }

    /// Backups of an environment or a site, newest first.
    pub async fn list_backups(
        &self,
        env: Option<EnvironmentId>,
        site: Option<SiteId>,
        limit: u32,
        after: Option<PageToken>,
    ) -> Result<Page<BackupRecord>> {
        let (before, before_id) = created_before(after.as_ref())?;
        let mut q = sqlx::QueryBuilder::<sqlx::Sqlite>::new(
            "SELECT id, environment_id, site_id, scope, status, trigger_kind, object_key, size_bytes,
                    sha256, job_id, created_at, completed_at, expires_at
             FROM backups WHERE 1 = 1",
        );
        if let Some(env) = env {
            q.push(" AND environment_id = ").push_bind(env);
        }
        if let Some(site) = site {
            q.push(" AND site_id = ").push_bind(site);
        }
        if !before_id.is_empty() {
            q.push(" AND (created_at < ")
                .push_bind(before)
                .push(" OR (created_at = ")
                .push_bind(before)
                .push(" AND id < ")
                .push_bind(before_id)
                .push("))");
        }
        q.push(" ORDER BY created_at DESC, id DESC LIMIT ")
            .push_bind(i64::from(limit) + 1);
        let rows = q
            .build_query_as::<BackupRecord>()
            .fetch_all(&self.pool)
            .await?;
        Ok(paginate(rows, limit, |b| {
            key(&[&b.created_at.to_string(), &b.id.to_string()])
        }))
    }
}
