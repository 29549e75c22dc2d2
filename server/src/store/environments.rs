//! Environments and the transactions that start work on them: every job that changes an
//! environment moves it into its in-progress state in the transaction that creates the job
//! (and the engine moves it out in the transaction that ends the job).

use sqlx::{FromRow, SqliteExecutor};

use super::jobs::{JobRecord, NewJob};
use super::page::{PageToken, key, paginate};
use super::{Page, Store, Tx, check_version, now, unique_violation};
use crate::error::{Error, Reason, Result};
use crate::model::guard;
use crate::model::job::{HealthCheck, JobParams, JobTarget};
use crate::model::{
    BackupId, DriftStatus, EnvEvent, EnvironmentId, EnvironmentKind, EnvironmentStatus, NodeId,
    NodeStatus, ReleaseId, SiteId, SiteStatus,
};

/// A row of `environments`, without its sealed secrets.
#[derive(Debug, Clone, FromRow)]
pub struct EnvironmentRecord {
    pub id: EnvironmentId,
    pub site_id: SiteId,
    pub node_id: NodeId,
    pub name: String,
    pub kind: EnvironmentKind,
    pub status: EnvironmentStatus,
    pub status_message: String,
    pub linux_user: String,
    pub linux_uid: i64,
    pub db_name: String,
    pub db_user: String,
    pub php_version: String,
    pub preview_url: String,
    pub primary_domain: String,
    pub current_release_id: Option<ReleaseId>,
    pub source_environment_id: Option<EnvironmentId>,
    pub drift_status: DriftStatus,
    pub drift_checked_at: Option<i64>,
    pub page_cache: bool,
    pub object_cache: bool,
    pub backup_enabled: bool,
    pub backup_interval_secs: i64,
    pub backup_scope: crate::model::BackupScope,
    pub backup_retention_secs: i64,
    pub last_backup_at: Option<i64>,
    pub created_at: i64,
    pub updated_at: i64,
    pub state_version: i64,
}

/// Root of an environment's tree on its node. The key is the environment's Linux user, unique
/// per node, readable (`<slug>-<env>`) and safe in paths, user names and host names.
pub const SITES_ROOT: &str = "/var/www/sites";

impl EnvironmentRecord {
    /// `/var/www/sites/<linux_user>`.
    pub fn root_path(&self) -> String {
        format!("{SITES_ROOT}/{}", self.linux_user)
    }

    /// The URL the environment is served at.
    pub fn url(&self) -> String {
        if self.primary_domain.is_empty() {
            self.preview_url.clone()
        } else {
            format!("https://{}", self.primary_domain)
        }
    }
}

/// An environment with what the enqueue guard checks.
#[derive(Debug, Clone, FromRow)]
pub(super) struct EnvironmentGuard {
    #[sqlx(flatten)]
    env: EnvironmentRecord,
    node_status: NodeStatus,
    node_name: String,
    busy_with: Option<String>,
}

/// An environment with its sealed secrets (for the executor only; never converted to API).
#[derive(Debug, Clone, FromRow)]
pub struct EnvironmentWithSecrets {
    #[sqlx(flatten)]
    pub env: EnvironmentRecord,
    pub db_password_enc: String,
    pub wp_salts_enc: String,
    pub site_name: String,
    pub site_slug: String,
}

macro_rules! env_select {
    () => {
        "SELECT id, site_id, node_id, name, kind, status, status_message, linux_user, linux_uid,
                db_name, db_user, php_version, preview_url, primary_domain, current_release_id,
                source_environment_id, drift_status, drift_checked_at, page_cache, object_cache,
                backup_enabled, backup_interval_secs, backup_scope, backup_retention_secs,
                last_backup_at, created_at, updated_at, state_version
         FROM environments"
    };
}

/// An environment to create. The Linux user, UID and database names are derived in the
/// creating transaction so they are unique on the node.
#[derive(Debug, Clone)]
pub struct NewEnvironment {
    pub name: String,
    pub kind: EnvironmentKind,
    pub node_id: NodeId,
    pub php_version: String,
    /// Sealed database password.
    pub db_password_sealed: String,
    /// Sealed JSON of the WordPress keys and salts.
    pub wp_salts_sealed: String,
    pub source_environment_id: Option<EnvironmentId>,
}

/// `<slug>-<env>`, shortened so it stays a valid Linux user name (at most 32 characters).
pub fn environment_key(slug: &str, env_name: &str) -> String {
    let slug: String = slug.chars().take(20).collect();
    let env: String = env_name.chars().take(10).collect();
    format!(
        "{}-{}",
        slug.trim_end_matches('-'),
        env.trim_end_matches('-')
    )
}

/// The preview URL of an environment: a wildcard preview domain when configured, else an
/// sslip.io name that resolves to the node's IP without any DNS set-up.
pub fn preview_url(key: &str, preview_domain: &str, node_ip: &str) -> String {
    if preview_domain.is_empty() {
        format!("http://{key}.{}.sslip.io", node_ip.replace(['.', ':'], "-"))
    } else {
        format!("https://{key}.{preview_domain}")
    }
}

impl Store {
    /// An environment by id.
    pub async fn environment(&self, id: EnvironmentId) -> Result<EnvironmentRecord> {
        Self::fetch_environment(&self.pool, id).await
    }

    /// The environment `id`, read through `db`: the pool, or a transaction (`&mut *tx`).
    pub(super) async fn fetch_environment<'e>(
        db: impl SqliteExecutor<'e>,
        id: EnvironmentId,
    ) -> Result<EnvironmentRecord> {
        sqlx::query_as::<_, EnvironmentRecord>(concat!(env_select!(), " WHERE id = ?"))
            .bind(id)
            .fetch_optional(db)
            .await?
            .ok_or_else(|| Error::not_found("environment", &id))
    }

    /// A site's environments by name (deleted ones included only when asked).
    pub async fn list_environments(
        &self,
        site: SiteId,
        include_deleted: bool,
        limit: u32,
        after: Option<PageToken>,
    ) -> Result<Page<EnvironmentRecord>> {
        let (after_name, after_id) = match &after {
            Some(t) => (t.part(0)?.to_owned(), t.part(1)?.to_owned()),
            None => (String::new(), String::new()),
        };
        let rows = sqlx::query_as::<_, EnvironmentRecord>(concat!(
            env_select!(),
            " WHERE site_id = ? AND (name > ? OR (name = ? AND id > ?))
                AND (? OR status <> 'deleted')
              ORDER BY name, id LIMIT ?"
        ))
        .bind(site)
        .bind(&after_name)
        .bind(&after_name)
        .bind(&after_id)
        .bind(include_deleted)
        .bind(i64::from(limit) + 1)
        .fetch_all(&self.pool)
        .await?;
        Ok(paginate(rows, limit, |e| {
            key(&[&e.name, &e.id.to_string()])
        }))
    }

    /// All environments of the given sites (for embedding in site lists).
    pub async fn environments_of_sites(
        &self,
        sites: &[SiteId],
        include_deleted: bool,
    ) -> Result<Vec<EnvironmentRecord>> {
        if sites.is_empty() {
            return Ok(Vec::new());
        }
        let mut q = sqlx::QueryBuilder::<sqlx::Sqlite>::new(env_select!());
        q.push(" WHERE site_id IN (");
        let mut sep = q.separated(", ");
        for s in sites {
            sep.push_bind(*s);
        }
        q.push(")");
        if !include_deleted {
            q.push(" AND status <> 'deleted'");
        }
        q.push(" ORDER BY site_id, kind, name");
        Ok(q.build_query_as::<EnvironmentRecord>()
            .fetch_all(&self.pool)
            .await?)
    }

    /// An environment with its sealed secrets, in one query.
    pub async fn environment_with_secrets(
        &self,
        id: EnvironmentId,
    ) -> Result<EnvironmentWithSecrets> {
        sqlx::query_as::<_, EnvironmentWithSecrets>(
            "SELECT e.id, e.site_id, e.node_id, e.name, e.kind, e.status, e.status_message, e.linux_user,
                    e.linux_uid, e.db_name, e.db_user, e.php_version, e.preview_url, e.primary_domain,
                    e.current_release_id, e.source_environment_id, e.drift_status, e.drift_checked_at,
                    e.page_cache, e.object_cache, e.backup_enabled, e.backup_interval_secs, e.backup_scope,
                    e.backup_retention_secs, e.last_backup_at, e.created_at, e.updated_at, e.state_version,
                    e.db_password_enc, e.wp_salts_enc, s.name AS site_name, s.slug AS site_slug
             FROM environments e JOIN sites s ON s.id = e.site_id WHERE e.id = ?",
        )
        .bind(id)
        .fetch_optional(&self.pool)
        .await?
        .ok_or_else(|| Error::not_found("environment", &id))
    }

    pub(super) async fn live_environments_tx(
        tx: &mut Tx,
        site: SiteId,
    ) -> Result<Vec<EnvironmentRecord>> {
        Ok(sqlx::query_as::<_, EnvironmentRecord>(concat!(
            env_select!(),
            " WHERE site_id = ? AND status <> 'deleted' ORDER BY name"
        ))
        .bind(site)
        .fetch_all(&mut **tx)
        .await?)
    }

    /// Creates a non-production environment cloned from another one (status cloning) and its
    /// env_create job, in one transaction; the site must be idle.
    pub async fn create_environment(
        &self,
        site_id: SiteId,
        env: &NewEnvironment,
        preview_domain: &str,
        job: NewJob,
    ) -> Result<(EnvironmentRecord, JobRecord)> {
        let mut tx = self.write().await?;
        let site = Self::fetch_site(&mut *tx, site_id).await?;
        let source = match env.source_environment_id {
            Some(source) => Some(Self::fetch_environment(&mut *tx, source).await?),
            None => None,
        };
        if let Some(source) = source.as_ref().filter(|s| s.site_id != site_id) {
            return Err(Error::not_found("environment", &source.id));
        }
        guard::new_environment(site.status, source.map(|s| s.status))?;
        Self::ensure_site_idle_tx(&mut tx, site_id).await?;
        let env_record = self
            .insert_environment_tx(
                &mut tx,
                site_id,
                &site.slug,
                env,
                EnvironmentStatus::Cloning,
                preview_domain,
            )
            .await?;
        let target = JobTarget::Environment {
            site: site_id,
            environment: env_record.id,
            node: env_record.node_id,
        };
        let job = self.insert_job_tx(&mut tx, target, &job).await?;
        tx.commit().await?;
        self.notify_work(job.id);
        Ok((env_record, job))
    }

    pub(super) async fn insert_environment_tx(
        &self,
        tx: &mut Tx,
        site_id: SiteId,
        slug: &str,
        env: &NewEnvironment,
        status: EnvironmentStatus,
        preview_domain: &str,
    ) -> Result<EnvironmentRecord> {
        let node = Self::fetch_node(&mut **tx, env.node_id).await?;
        guard::node_takes_environments(&node.name, node.status)?;
        let linux_user =
            Self::free_linux_user_tx(tx, env.node_id, &environment_key(slug, &env.name)).await?;
        // Never reuse a UID on a node, not even a deleted environment's: files it left behind
        // must not become readable by a new site.
        let uid: i64 = sqlx::query_scalar(
            "SELECT COALESCE(MAX(linux_uid) + 1, ?) FROM environments WHERE node_id = ?",
        )
        .bind(self.job_defaults.linux_uid_base)
        .bind(env.node_id)
        .fetch_one(&mut **tx)
        .await?;
        let db_name = linux_user.replace('-', "_");
        let id = EnvironmentId::new();
        let now = now();
        sqlx::query(
            "INSERT INTO environments (id, site_id, node_id, name, kind, status, linux_user, linux_uid,
                    db_name, db_user, db_password_enc, wp_salts_enc, php_version, preview_url,
                    source_environment_id, created_at, updated_at)
             VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        )
        .bind(id)
        .bind(site_id)
        .bind(env.node_id)
        .bind(&env.name)
        .bind(env.kind)
        .bind(status)
        .bind(&linux_user)
        .bind(uid)
        .bind(&db_name)
        .bind(&db_name)
        .bind(&env.db_password_sealed)
        .bind(&env.wp_salts_sealed)
        .bind(&env.php_version)
        .bind(preview_url(&linux_user, preview_domain, &node.public_ip))
        .bind(env.source_environment_id)
        .bind(now)
        .bind(now)
        .execute(&mut **tx)
        .await
        .map_err(|e| {
            unique_violation(e, || format!("the site already has an environment named {}", env.name))
        })?;
        Self::fetch_environment(&mut **tx, id).await
    }

    /// `base`, or `base` with a numeric suffix when another environment on the node has it.
    pub(super) async fn free_linux_user_tx(
        tx: &mut Tx,
        node: NodeId,
        base: &str,
    ) -> Result<String> {
        for n in 1..100 {
            let candidate = if n == 1 {
                base.to_owned()
            } else {
                let suffix = format!("-{n}");
                let stem: String = base.chars().take(32 - suffix.len()).collect();
                format!("{}{suffix}", stem.trim_end_matches('-'))
            };
            let taken: i64 = sqlx::query_scalar(
                "SELECT COUNT(*) FROM environments WHERE node_id = ? AND linux_user = ? AND status <> 'deleted'",
            )
            .bind(node)
            .bind(&candidate)
            .fetch_one(&mut **tx)
            .await?;
            if taken == 0 {
                return Ok(candidate);
            }
        }
        Err(Error::AlreadyExists(format!(
            "no free Linux user name for {base}"
        )))
    }

    /// Moves an environment through its state machine inside `tx` (checking and bumping its
    /// version) and keeps the site's status mirroring its production environment.
    pub(super) async fn transition_environment_tx(
        tx: &mut Tx,
        env: &EnvironmentRecord,
        event: EnvEvent,
        message: &str,
    ) -> Result<EnvironmentStatus> {
        let next = env.status.transition(event)?;
        let rows = sqlx::query(
            "UPDATE environments SET status = ?, status_message = ?, updated_at = ?,
                    state_version = state_version + 1
             WHERE id = ? AND state_version = ?",
        )
        .bind(next)
        .bind(message)
        .bind(now())
        .bind(env.id)
        .bind(env.state_version)
        .execute(&mut **tx)
        .await?
        .rows_affected();
        if rows != 1 {
            return Err(Error::VersionConflict {
                resource: "environment",
                expected: env.state_version,
                actual: env.state_version + 1,
            });
        }
        if env.kind == EnvironmentKind::Production {
            sqlx::query(
                "UPDATE sites SET status = ?, updated_at = ?, state_version = state_version + 1
                 WHERE id = ? AND status <> ?",
            )
            .bind(SiteStatus::mirror(next))
            .bind(now())
            .bind(env.site_id)
            .bind(SiteStatus::mirror(next))
            .execute(&mut **tx)
            .await?;
        }
        Ok(next)
    }

    /// Starts a job on one environment: checks the expected version, that the site is idle and
    /// the node accepts work, moves the environment into the job's in-progress state, and
    /// inserts the job, all in one transaction.
    pub async fn enqueue_environment_job(
        &self,
        env_id: EnvironmentId,
        expected_version: i64,
        mut job: NewJob,
    ) -> Result<JobRecord> {
        let mut tx = self.write().await?;
        // The environment, its node's state and any job keeping the site busy, in one read.
        let guard = sqlx::query_as::<_, EnvironmentGuard>(
            "SELECT e.id, e.site_id, e.node_id, e.name, e.kind, e.status, e.status_message, e.linux_user,
                    e.linux_uid, e.db_name, e.db_user, e.php_version, e.preview_url, e.primary_domain,
                    e.current_release_id, e.source_environment_id, e.drift_status, e.drift_checked_at,
                    e.page_cache, e.object_cache, e.backup_enabled, e.backup_interval_secs, e.backup_scope,
                    e.backup_retention_secs, e.last_backup_at, e.created_at, e.updated_at, e.state_version,
                    n.status AS node_status, n.name AS node_name,
                    (SELECT j.id || ' (' || j.kind || ') is ' || j.status FROM jobs j
                     WHERE j.site_id = e.site_id AND j.status IN ('queued', 'running')
                     ORDER BY j.created_at LIMIT 1) AS busy_with
             FROM environments e JOIN nodes n ON n.id = e.node_id WHERE e.id = ?",
        )
        .bind(env_id)
        .fetch_optional(&mut *tx)
        .await?
        .ok_or_else(|| Error::not_found("environment", &env_id))?;
        let env = guard.env;
        check_version("environment", expected_version, env.state_version)?;
        if let Some(busy) = guard.busy_with {
            return Err(Error::precondition(
                Reason::SiteBusy,
                format!("the site is busy: job {busy}; wait for it to finish or cancel it"),
            ));
        }
        if !guard.node_status.accepts_work() {
            return Err(Error::precondition(
                Reason::NodeNotReady,
                format!("node {} is {}", guard.node_name, guard.node_status),
            ));
        }
        Self::begin_operation_tx(&mut tx, &env, &mut job.params).await?;
        Self::claim_domain_tx(&mut tx, &env, &mut job.params).await?;
        let pre_backup = Self::insert_pre_backup_tx(&mut tx, &env, &mut job.params).await?;
        let target = JobTarget::Environment {
            site: env.site_id,
            environment: env.id,
            node: env.node_id,
        };
        let job = self.insert_job_tx(&mut tx, target, &job).await?;
        if let Some(id) = pre_backup {
            sqlx::query("UPDATE backups SET job_id = ? WHERE id = ?")
                .bind(job.id)
                .bind(id)
                .execute(&mut *tx)
                .await?;
        }
        tx.commit().await?;
        self.notify_work(job.id);
        Ok(job)
    }

    /// Checks that `env` can take the job (`guard::environment_job`) and moves it into the
    /// job's in-progress state.
    pub(super) async fn begin_operation_tx(
        tx: &mut Tx,
        env: &EnvironmentRecord,
        params: &mut JobParams,
    ) -> Result<()> {
        let reset = matches!(params, JobParams::HealthCheck(HealthCheck { reset: true }));
        let operation = guard::environment_job(env.kind, env.status, params.kind(), reset)?;
        if let JobParams::EnvDelete(delete) = params {
            delete.was_failed = env.status == EnvironmentStatus::Failed;
        }
        if let Some(op) = operation {
            Self::transition_environment_tx(tx, env, EnvEvent::Begin(op), "").await?;
        }
        Ok(())
    }

    /// Jobs that must back up first (restore, promote, update) get their backup row now, in
    /// the transaction that queues them, so the backup is on record however the job ends.
    pub(super) async fn insert_pre_backup_tx(
        tx: &mut Tx,
        env: &EnvironmentRecord,
        params: &mut JobParams,
    ) -> Result<Option<BackupId>> {
        let Some(pre_backup) = params.pre_backup_mut() else {
            return Ok(None);
        };
        let trigger = pre_backup.trigger;
        let target: String = sqlx::query_scalar("SELECT s3_endpoint FROM settings WHERE id = 1")
            .fetch_one(&mut **tx)
            .await?;
        if target.is_empty() {
            return Err(Error::precondition(
                Reason::BackupTargetMissing,
                "this job backs up first and no backup target is configured: set one with SetBackupTarget",
            ));
        }
        let id = BackupId::new();
        sqlx::query(
            "INSERT INTO backups (id, environment_id, site_id, scope, status, trigger_kind, created_at)
             VALUES (?, ?, ?, 'full', 'pending', ?, ?)",
        )
        .bind(id)
        .bind(env.id)
        .bind(env.site_id)
        .bind(trigger)
        .bind(now())
        .execute(&mut **tx)
        .await?;
        pre_backup.pre_backup_id = Some(id);
        Ok(Some(id))
    }

    /// Changes an environment's backup policy (no node change, so no job).
    pub async fn update_backup_schedule(
        &self,
        env_id: EnvironmentId,
        expected_version: i64,
        enabled: bool,
        interval_secs: i64,
        scope: crate::model::BackupScope,
        retention_secs: i64,
    ) -> Result<EnvironmentRecord> {
        let mut tx = self.write().await?;
        let env = Self::fetch_environment(&mut *tx, env_id).await?;
        check_version("environment", expected_version, env.state_version)?;
        guard::backup_schedule_change(env.status)?;
        sqlx::query(
            "UPDATE environments SET backup_enabled = ?, backup_interval_secs = ?, backup_scope = ?,
                    backup_retention_secs = ?, updated_at = ?, state_version = state_version + 1
             WHERE id = ?",
        )
        .bind(enabled)
        .bind(interval_secs)
        .bind(scope)
        .bind(retention_secs)
        .bind(now())
        .bind(env_id)
        .execute(&mut *tx)
        .await?;
        let env = Self::fetch_environment(&mut *tx, env_id).await?;
        tx.commit().await?;
        Ok(env)
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::model::JobKind;
    use crate::store::NewSite;
    use crate::store::nodes::tests::new_node;
    use crate::store::test_support::store;

    pub fn new_env(node: NodeId) -> NewEnvironment {
        NewEnvironment {
            name: "production".to_owned(),
            kind: EnvironmentKind::Production,
            node_id: node,
            php_version: "8.2".to_owned(),
            db_password_sealed: "v1:x".to_owned(),
            wp_salts_sealed: "v1:y".to_owned(),
            source_environment_id: None,
        }
    }

    /// A job of `kind` with example parameters (the store decides its target).
    pub fn job(kind: JobKind) -> NewJob {
        let params = crate::model::job::tests::every_job()
            .into_iter()
            .find(|p| p.kind() == kind)
            .expect("every job type has an example");
        NewJob::new(params, kind.to_string(), "tester")
    }

    #[test]
    fn keys_and_preview_urls() {
        assert_eq!(environment_key("blog", "production"), "blog-production");
        let long = environment_key(&"a".repeat(40), "staging-environment");
        assert!(long.len() <= 32, "{long}");
        assert_eq!(
            preview_url("blog-production", "", "203.0.113.9"),
            "http://blog-production.203-0-113-9.sslip.io"
        );
        assert_eq!(
            preview_url("k", "preview.example.com", "x"),
            "https://k.preview.example.com"
        );
    }

    #[tokio::test]
    async fn site_creation_is_atomic_and_guards_busy_sites() {
        let (store, _dir) = store().await;
        let node = store.create_node(&new_node("n1")).await.expect("node");
        let (site, env, create_job) = store
            .create_site(
                &NewSite {
                    name: "Blog".into(),
                    slug: "blog".into(),
                },
                &new_env(node.id),
                "",
                job(JobKind::SiteCreate),
            )
            .await
            .expect("create");
        assert_eq!(site.status, SiteStatus::Creating);
        assert_eq!(env.status, EnvironmentStatus::Creating);
        assert_eq!(env.linux_user, "blog-production");
        assert_eq!(env.linux_uid, 20_000);
        assert_eq!(env.db_name, "blog_production");
        assert_eq!(create_job.site_id, Some(site.id));

        // Same slug: refused, and nothing half-created remains.
        let again = store
            .create_site(
                &NewSite {
                    name: "Blog".into(),
                    slug: "blog".into(),
                },
                &new_env(node.id),
                "",
                job(JobKind::SiteCreate),
            )
            .await;
        assert!(matches!(again, Err(Error::AlreadyExists(_))));
        assert_eq!(
            store
                .list_jobs(&crate::store::JobFilter::default(), 10, None)
                .await
                .expect("jobs")
                .items
                .len(),
            1
        );

        // The site is busy while its create job is queued.
        let busy = store
            .enqueue_environment_job(env.id, 0, job(JobKind::BackupCreate))
            .await;
        assert!(matches!(
            busy,
            Err(Error::Precondition {
                reason: Reason::SiteBusy,
                ..
            })
        ));

        // Cancelling the unstarted create discards the environment and frees the slug.
        store
            .cancel_job(create_job.id, 0, "tester")
            .await
            .expect("cancel");
        assert_eq!(
            store.environment(env.id).await.expect("env").status,
            EnvironmentStatus::Deleted
        );
        assert_eq!(
            store.site(site.id).await.expect("site").status,
            SiteStatus::Deleted
        );
        let (_, env2, _) = store
            .create_site(
                &NewSite {
                    name: "Blog".into(),
                    slug: "blog".into(),
                },
                &new_env(node.id),
                "",
                job(JobKind::SiteCreate),
            )
            .await
            .expect("slug is free again");
        assert_eq!(env2.linux_uid, 20_001, "UIDs are never reused");
    }

    #[tokio::test]
    async fn environment_jobs_enter_and_revert_in_progress_states() {
        let (store, _dir) = store().await;
        let node = store.create_node(&new_node("n1")).await.expect("node");
        let (_, env, create) = store
            .create_site(
                &NewSite {
                    name: "S".into(),
                    slug: "s".into(),
                },
                &new_env(node.id),
                "",
                job(JobKind::SiteCreate),
            )
            .await
            .expect("create");
        // Pretend the create job succeeded.
        sqlx::query("UPDATE jobs SET status = 'succeeded' WHERE id = ?")
            .bind(create.id)
            .execute(store.pool())
            .await
            .expect("finish");
        sqlx::query("UPDATE environments SET status = 'active' WHERE id = ?")
            .bind(env.id)
            .execute(store.pool())
            .await
            .expect("activate");
        let env = store.environment(env.id).await.expect("env");

        // Stale version: ABORTED, nothing changes.
        let stale = store
            .enqueue_environment_job(env.id, env.state_version + 7, job(JobKind::EnvDeploy))
            .await;
        assert!(matches!(stale, Err(Error::VersionConflict { .. })));

        let deploy = store
            .enqueue_environment_job(env.id, env.state_version, job(JobKind::EnvDeploy))
            .await
            .expect("deploy");
        assert_eq!(
            store.environment(env.id).await.expect("env").status,
            EnvironmentStatus::Deploying
        );
        store
            .cancel_job(deploy.id, 0, "tester")
            .await
            .expect("cancel");
        assert_eq!(
            store.environment(env.id).await.expect("env").status,
            EnvironmentStatus::Active
        );

        // Reset needs a failed environment.
        let reset = job(JobKind::HealthCheck);
        assert!(matches!(
            store.enqueue_environment_job(env.id, 0, reset).await,
            Err(Error::Precondition {
                reason: Reason::EnvironmentNotFailed,
                ..
            })
        ));
        // Production cannot be deleted on its own.
        assert!(matches!(
            store
                .enqueue_environment_job(env.id, 0, job(JobKind::EnvDelete))
                .await,
            Err(Error::Precondition {
                reason: Reason::ProductionEnvironment,
                ..
            })
        ));
    }
}
