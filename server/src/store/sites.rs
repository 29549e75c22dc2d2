//! Sites: rows, lists, creation with the production environment and its site_create job,
//! and deletion (every live environment enters `deleting` with the site_delete job).

use sqlx::{FromRow, SqliteExecutor};

use super::audit::AuditEntry;
use super::environments::{EnvironmentRecord, NewEnvironment};
use super::jobs::{JobRecord, NewJob};
use super::page::{PageToken, key, paginate};
use super::{Page, Store, check_version, now, unique_violation};
use crate::error::{Error, Reason, Result};
use crate::model::guard;
use crate::model::job::{JobParams, JobTarget, SiteDelete};
use crate::model::{
    AuditResult, EnvEvent, EnvOperation, EnvironmentId, EnvironmentKind, EnvironmentStatus, SiteId,
    SiteStatus,
};

/// A row of `sites`.
#[derive(Debug, Clone, FromRow)]
pub struct SiteRecord {
    pub id: SiteId,
    pub name: String,
    pub slug: String,
    pub status: SiteStatus,
    pub production_environment_id: Option<EnvironmentId>,
    pub created_at: i64,
    pub updated_at: i64,
    pub state_version: i64,
}

macro_rules! site_select {
    () => {
        "SELECT id, name, slug, status, production_environment_id, created_at, updated_at,
                state_version
         FROM sites"
    };
}

/// A site to create.
#[derive(Debug, Clone)]
pub struct NewSite {
    pub name: String,
    pub slug: String,
}

impl Store {
    /// A site by id.
    pub async fn site(&self, id: SiteId) -> Result<SiteRecord> {
        Self::fetch_site(&self.pool, id).await
    }

    /// The site `id`, read through `db`: the pool, or a transaction (`&mut *tx`).
    pub(super) async fn fetch_site<'e>(
        db: impl SqliteExecutor<'e>,
        id: SiteId,
    ) -> Result<SiteRecord> {
        sqlx::query_as::<_, SiteRecord>(concat!(site_select!(), " WHERE id = ?"))
            .bind(id)
            .fetch_optional(db)
            .await?
            .ok_or_else(|| Error::not_found("site", &id))
    }

    /// Sites by slug.
    pub async fn list_sites(
        &self,
        show_deleted: bool,
        limit: u32,
        after: Option<PageToken>,
    ) -> Result<Page<SiteRecord>> {
        let (after_slug, after_id) = match &after {
            Some(t) => (t.part(0)?.to_owned(), t.part(1)?.to_owned()),
            None => (String::new(), String::new()),
        };
        let rows = sqlx::query_as::<_, SiteRecord>(concat!(
            site_select!(),
            " WHERE (slug > ? OR (slug = ? AND id > ?)) AND (? OR status <> 'deleted')
              ORDER BY slug, id LIMIT ?"
        ))
        .bind(&after_slug)
        .bind(&after_slug)
        .bind(&after_id)
        .bind(show_deleted)
        .bind(i64::from(limit) + 1)
        .fetch_all(&self.pool)
        .await?;
        Ok(paginate(rows, limit, |s| {
            key(&[&s.slug, &s.id.to_string()])
        }))
    }

    /// Changes a site's name.
    pub async fn update_site(
        &self,
        id: SiteId,
        expected_version: i64,
        name: Option<&str>,
    ) -> Result<SiteRecord> {
        let mut tx = self.write().await?;
        let site = Self::fetch_site(&mut *tx, id).await?;
        check_version("site", expected_version, site.state_version)?;
        if site.status == SiteStatus::Deleted {
            return Err(Error::precondition(
                Reason::SiteNotActive,
                "the site is deleted",
            ));
        }
        sqlx::query(
            "UPDATE sites SET name = ?, updated_at = ?, state_version = state_version + 1 WHERE id = ?",
        )
        .bind(name.unwrap_or(&site.name))
        .bind(now())
        .bind(id)
        .execute(&mut *tx)
        .await?;
        let site = Self::fetch_site(&mut *tx, id).await?;
        tx.commit().await?;
        Ok(site)
    }

    /// Creates a site, its production environment (status creating) and the site_create job,
    /// in one transaction.
    pub async fn create_site(
        &self,
        site: &NewSite,
        env: &NewEnvironment,
        preview_domain: &str,
        job: NewJob,
    ) -> Result<(SiteRecord, EnvironmentRecord, JobRecord)> {
        let mut tx = self.write().await?;
        let site_id = SiteId::new();
        let now = now();
        sqlx::query(
            "INSERT INTO sites (id, name, slug, status, created_at, updated_at)
             VALUES (?, ?, ?, 'creating', ?, ?)",
        )
        .bind(site_id)
        .bind(&site.name)
        .bind(&site.slug)
        .bind(now)
        .bind(now)
        .execute(&mut *tx)
        .await
        .map_err(|e| {
            unique_violation(e, || {
                format!("a site with slug {} already exists", site.slug)
            })
        })?;
        let env_record = self
            .insert_environment_tx(
                &mut tx,
                site_id,
                &site.slug,
                env,
                EnvironmentStatus::Creating,
                preview_domain,
            )
            .await?;
        sqlx::query("UPDATE sites SET production_environment_id = ? WHERE id = ?")
            .bind(env_record.id)
            .bind(site_id)
            .execute(&mut *tx)
            .await?;
        let target = JobTarget::Environment {
            site: site_id,
            environment: env_record.id,
            node: env_record.node_id,
        };
        let job = self.insert_job_tx(&mut tx, target, &job).await?;
        Self::record_audit_on(
            &mut tx,
            &AuditEntry {
                actor: job.requested_by.clone(),
                action: "site.create".to_owned(),
                resource_type: "site",
                resource_id: site_id.to_string(),
                result: AuditResult::Accepted,
                detail: format!("slug {}", site.slug),
                job_id: Some(job.id),
            },
        )
        .await?;
        let site = Self::fetch_site(&mut *tx, site_id).await?;
        tx.commit().await?;
        self.notify_work(job.id);
        Ok((site, env_record, job))
    }

    /// Starts a site_delete job: every live environment enters `deleting` in the same
    /// transaction.
    pub async fn enqueue_site_delete(
        &self,
        site_id: SiteId,
        expected_version: i64,
        actor: &str,
    ) -> Result<JobRecord> {
        let mut tx = self.write().await?;
        let site = Self::fetch_site(&mut *tx, site_id).await?;
        check_version("site", expected_version, site.state_version)?;
        guard::site_delete(site.status)?;
        Self::ensure_site_idle_tx(&mut tx, site_id).await?;
        let envs = Self::live_environments_tx(&mut tx, site_id).await?;
        let mut failed = Vec::new();
        for env in &envs {
            if env.status == EnvironmentStatus::Failed {
                failed.push(env.id);
            }
            Self::transition_environment_tx(
                &mut tx,
                env,
                EnvEvent::Begin(EnvOperation::Delete),
                "",
            )
            .await?;
        }
        let production = envs
            .iter()
            .find(|e| e.kind == EnvironmentKind::Production)
            .ok_or_else(|| {
                Error::internal(format!("site {site_id} has no production environment"))
            })?;
        let target = JobTarget::Site {
            site: site_id,
            node: production.node_id,
        };
        let params = JobParams::SiteDelete(SiteDelete {
            environments: envs.iter().map(|e| e.id).collect(),
            failed_environments: failed,
        });
        let job = NewJob::new(params, format!("delete site {}", site.slug), actor);
        let job = self.insert_job_tx(&mut tx, target, &job).await?;
        tx.commit().await?;
        self.notify_work(job.id);
        Ok(job)
    }
}
