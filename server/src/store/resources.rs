//! Releases, backups, domains and drift reports: read here; written by the jobs that create
//! them.

use sqlx::FromRow;

use super::page::invalid_page_token;
use super::page::{PageToken, key, paginate};
use super::{Page, Store};
use crate::error::{Error, Reason, Result};
use crate::model::{
    BackupId, BackupScope, BackupStatus, BackupTrigger, DomainId, DriftStatus, EnvironmentId,
    JobId, NodeId, ReleaseHealth, ReleaseId, ReleaseSourceKind, SiteId, TlsStatus,
};

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

/// A row of `domains`.
#[derive(Debug, Clone, FromRow)]
pub struct DomainRecord {
    pub id: DomainId,
    pub environment_id: EnvironmentId,
    pub hostname: String,
    /// JSON array of the www/apex names on the same certificate.
    pub aliases: String,
    pub is_primary: bool,
    pub tls_status: TlsStatus,
    pub tls_expires_at: Option<i64>,
    pub tls_message: String,
    pub tls_checked_at: Option<i64>,
    pub created_at: i64,
}

impl DomainRecord {
    /// The aliases (www/apex counterparts) covered by the domain's certificate.
    pub fn alias_list(&self) -> Vec<String> {
        serde_json::from_str(&self.aliases).unwrap_or_default()
    }

    /// The hostname, then its aliases.
    pub fn names(&self) -> Vec<String> {
        let mut names = vec![self.hostname.clone()];
        names.extend(self.alias_list());
        names
    }
}

/// A certificate state read from a node (the periodic check).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DomainTlsUpdate {
    pub id: DomainId,
    pub status: TlsStatus,
    pub expires_at: Option<i64>,
    pub message: String,
}

macro_rules! domain_columns {
    () => {
        "id, environment_id, hostname, aliases, is_primary, tls_status, tls_expires_at, tls_message, \
         tls_checked_at, created_at"
    };
}

/// A row of `drift_reports`.
#[derive(Debug, Clone, FromRow)]
pub struct DriftReportRecord {
    pub environment_id: EnvironmentId,
    pub status: DriftStatus,
    /// JSON array of {category, name, detail}.
    pub items: String,
    pub job_id: Option<JobId>,
    pub checked_at: i64,
}

fn created_before(after: Option<&PageToken>) -> Result<(i64, String)> {
    match after {
        Some(t) => Ok((
            t.part(0)?.parse().map_err(|_| invalid_page_token())?,
            t.part(1)?.to_owned(),
        )),
        None => Ok((i64::MAX, String::new())),
    }
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

    /// The newest drift baseline of production environment `source` (taken when a staging
    /// environment was cloned from it), as the fingerprint JSON.
    pub async fn latest_drift_baseline(
        &self,
        source: EnvironmentId,
    ) -> Result<Option<serde_json::Value>> {
        let row: Option<String> = sqlx::query_scalar(
            "SELECT fingerprint FROM drift_baselines WHERE source_environment_id = ?
             ORDER BY recorded_at DESC LIMIT 1",
        )
        .bind(source)
        .fetch_optional(&self.pool)
        .await?;
        row.map(|f| serde_json::from_str(&f).map_err(Error::internal))
            .transpose()
    }

    /// The newest drift baseline of `staging` against `production`.
    pub async fn drift_baseline_of(
        &self,
        staging: EnvironmentId,
        production: EnvironmentId,
    ) -> Result<Option<serde_json::Value>> {
        let row: Option<String> = sqlx::query_scalar(
            "SELECT fingerprint FROM drift_baselines WHERE environment_id = ? AND source_environment_id = ?
             ORDER BY recorded_at DESC LIMIT 1",
        )
        .bind(staging)
        .bind(production)
        .fetch_optional(&self.pool)
        .await?;
        row.map(|f| serde_json::from_str(&f).map_err(Error::internal))
            .transpose()
    }

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

    /// An environment's live domains by hostname.
    pub async fn list_domains(
        &self,
        env: EnvironmentId,
        limit: u32,
        after: Option<PageToken>,
    ) -> Result<Page<DomainRecord>> {
        let after_host = match &after {
            Some(t) => t.part(0)?.to_owned(),
            None => String::new(),
        };
        let rows = sqlx::query_as::<_, DomainRecord>(concat!(
            "SELECT ",
            domain_columns!(),
            " FROM domains WHERE environment_id = ? AND removed_at IS NULL AND hostname > ?
             ORDER BY hostname LIMIT ?"
        ))
        .bind(env)
        .bind(after_host)
        .bind(i64::from(limit) + 1)
        .fetch_all(&self.pool)
        .await?;
        Ok(paginate(rows, limit, |d| key(&[&d.hostname])))
    }

    /// Every live domain of an environment.
    pub async fn live_domains(&self, env: EnvironmentId) -> Result<Vec<DomainRecord>> {
        Ok(sqlx::query_as::<_, DomainRecord>(concat!(
            "SELECT ",
            domain_columns!(),
            " FROM domains WHERE environment_id = ? AND removed_at IS NULL ORDER BY created_at, hostname"
        ))
        .bind(env)
        .fetch_all(&self.pool)
        .await?)
    }

    /// One domain (also a removed one).
    pub async fn domain(&self, id: DomainId) -> Result<DomainRecord> {
        sqlx::query_as::<_, DomainRecord>(concat!(
            "SELECT ",
            domain_columns!(),
            " FROM domains WHERE id = ?"
        ))
        .bind(id)
        .fetch_optional(&self.pool)
        .await?
        .ok_or_else(|| Error::not_found("domain", &id))
    }

    /// The live domains that have a certificate, by node (what the certificate check reads).
    pub async fn served_domains_by_node(&self) -> Result<Vec<(NodeId, Vec<DomainRecord>)>> {
        #[derive(FromRow)]
        struct Row {
            node_id: NodeId,
            #[sqlx(flatten)]
            domain: DomainRecord,
        }
        let rows = sqlx::query_as::<_, Row>(
            "SELECT e.node_id, d.id, d.environment_id, d.hostname, d.aliases, d.is_primary, d.tls_status,
                    d.tls_expires_at, d.tls_message, d.tls_checked_at, d.created_at
             FROM domains d JOIN environments e ON e.id = d.environment_id
             WHERE d.removed_at IS NULL AND d.tls_expires_at IS NOT NULL
             ORDER BY e.node_id, d.hostname",
        )
        .fetch_all(&self.pool)
        .await?;
        let mut by_node: Vec<(NodeId, Vec<DomainRecord>)> = Vec::new();
        for row in rows {
            match by_node.last_mut() {
                Some((node, list)) if *node == row.node_id => list.push(row.domain),
                _ => by_node.push((row.node_id, vec![row.domain])),
            }
        }
        Ok(by_node)
    }

    /// Records what the certificate check read (domains removed or taken by a job meanwhile
    /// are left alone).
    pub async fn record_certificate_check(&self, updates: &[DomainTlsUpdate]) -> Result<()> {
        if updates.is_empty() {
            return Ok(());
        }
        let mut tx = self.write().await?;
        for u in updates {
            sqlx::query(
                "UPDATE domains SET tls_status = ?, tls_expires_at = ?, tls_message = ?, tls_checked_at = ?,
                        state_version = state_version + 1
                 WHERE id = ? AND removed_at IS NULL AND tls_status <> 'pending'",
            )
            .bind(u.status)
            .bind(u.expires_at)
            .bind(&u.message)
            .bind(super::now())
            .bind(u.id)
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await
    }

    /// The latest drift report of an environment.
    pub async fn latest_drift_report(
        &self,
        env: EnvironmentId,
    ) -> Result<Option<DriftReportRecord>> {
        Ok(sqlx::query_as::<_, DriftReportRecord>(
            "SELECT environment_id, status, items, job_id, checked_at FROM drift_reports
             WHERE environment_id = ? ORDER BY checked_at DESC LIMIT 1",
        )
        .bind(env)
        .fetch_optional(&self.pool)
        .await?)
    }
}
