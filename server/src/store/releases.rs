//! Releases: read here; written by the jobs that build them.

use sqlx::FromRow;

use super::page::created_before;
use super::page::{PageToken, key, paginate};
use super::{Page, Store};
use crate::error::{Error, Reason, Result};
use crate::model::{EnvironmentId, JobId, ReleaseHealth, ReleaseId, ReleaseSourceKind};

/// A row of `releases`.
#[derive(Debug, Clone, FromRow)]
pub struct ReleaseRecord {
    pub id: ReleaseId,
    pub environment_id: EnvironmentId,
    pub name: String,
    pub source_kind: ReleaseSourceKind,
    pub source: String,
    pub resolved_ref: String,
    pub health: ReleaseHealth,
    pub job_id: Option<JobId>,
    pub created_at: i64,
    pub activated_at: Option<i64>,
    pub pruned_at: Option<i64>,
}

impl Store {
    /// An environment's releases (pruned ones excluded), newest first.
    pub async fn list_releases(
        &self,
        env: EnvironmentId,
        limit: u32,
        after: Option<PageToken>,
    ) -> Result<Page<ReleaseRecord>> {
        let (before, before_id) = created_before(after.as_ref())?;
        let rows = sqlx::query_as::<_, ReleaseRecord>(
            "SELECT id, environment_id, name, source_kind, source, resolved_ref, health, job_id,
                    created_at, activated_at, pruned_at
             FROM releases
             WHERE environment_id = ? AND pruned_at IS NULL
               AND (created_at < ? OR (created_at = ? AND id < ?) OR ? = '')
             ORDER BY created_at DESC, id DESC LIMIT ?",
        )
        .bind(env)
        .bind(before)
        .bind(before)
        .bind(&before_id)
        .bind(&before_id)
        .bind(i64::from(limit) + 1)
        .fetch_all(&self.pool)
        .await?;
        Ok(paginate(rows, limit, |r| {
            key(&[&r.created_at.to_string(), &r.id.to_string()])
        }))
    }

    /// A release by id (pruned ones included: its row outlives its files).
    pub async fn release(&self, id: ReleaseId) -> Result<ReleaseRecord> {
        sqlx::query_as::<_, ReleaseRecord>(
            "SELECT id, environment_id, name, source_kind, source, resolved_ref, health, job_id,
                    created_at, activated_at, pruned_at
             FROM releases WHERE id = ?",
        )
        .bind(id)
        .fetch_optional(&self.pool)
        .await?
        .ok_or_else(|| Error::not_found("release", &id))
    }

    /// The release a rollback switches to: the named one (healthy, not current), else the
    /// newest healthy release before the current one.
    pub async fn rollback_target(
        &self,
        env: EnvironmentId,
        named: Option<ReleaseId>,
    ) -> Result<ReleaseRecord> {
        let current: Option<ReleaseId> =
            sqlx::query_scalar("SELECT current_release_id FROM environments WHERE id = ?")
                .bind(env)
                .fetch_optional(&self.pool)
                .await?
                .ok_or_else(|| Error::not_found("environment", &env))?;
        let releases = self.list_releases(env, 500, None).await?.items;
        let target = match named {
            Some(id) => releases
                .into_iter()
                .find(|r| r.id == id)
                .ok_or_else(|| Error::not_found("release", &id))?,
            None => releases
                .into_iter()
                .find(|r| Some(r.id) != current && r.health == ReleaseHealth::Healthy)
                .ok_or_else(|| {
                    Error::precondition(
                        Reason::NoRollbackTarget,
                        "there is no earlier healthy release to roll back to",
                    )
                })?,
        };
        if Some(target.id) == current {
            return Err(Error::precondition(
                Reason::NoRollbackTarget,
                "that release is already live",
            ));
        }
        if target.health == ReleaseHealth::Unhealthy {
            return Err(Error::precondition(
                Reason::NoRollbackTarget,
                "that release failed its health checks; pick a healthy one",
            ));
        }
        Ok(target)
    }
}
