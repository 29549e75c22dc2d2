//! The store: every SQL statement of the control plane lives in this module, one submodule per
//! aggregate. SQLite (WAL, foreign keys, `synchronous = NORMAL`) is the source of truth and the
//! job queue. State changes happen in one statement or one `BEGIN IMMEDIATE` transaction (a
//! deferred transaction that upgrades to a write fails with SQLITE_BUSY regardless of the busy
//! timeout). SQL stays portable so the store can move to PostgreSQL behind this module later.

// SQL shared by several submodules (defined before them: macros scope textually).
macro_rules! end_job_sql {
    () => {
        "UPDATE jobs SET status = ?, error_code = ?, error_message = ?, run_after = ?, attempts = ?,
                finished_at = ?, lease_owner = NULL, heartbeat_at = NULL, lease_expires_at = NULL,
                runner_pid = NULL, updated_at = ?, state_version = state_version + 1
         WHERE id = ? AND lease_owner = ? AND status = 'running'"
    };
}

macro_rules! state_event_sql {
    () => {
        "INSERT INTO job_events (job_id, seq, kind, payload, created_at)
         VALUES (?, (SELECT COALESCE(MAX(seq), 0) + 1 FROM job_events WHERE job_id = ?), 'state', ?, ?)"
    };
}

/// The same event, written only if the previous statement changed a row.
macro_rules! state_event_if_changed_sql {
    () => {
        "INSERT INTO job_events (job_id, seq, kind, payload, created_at)
         SELECT ?, (SELECT COALESCE(MAX(seq), 0) + 1 FROM job_events WHERE job_id = ?), 'state', ?, ?
         WHERE changes() = 1"
    };
}

/// An audit row, written only if the previous statement changed a row.
macro_rules! audit_if_changed_sql {
    () => {
        "INSERT INTO audit_log (at, actor, action, resource_type, resource_id, result, detail, job_id)
         SELECT ?, ?, ?, ?, ?, ?, ?, ? WHERE changes() = 1"
    };
}

macro_rules! audit_sql {
    () => {
        "INSERT INTO audit_log (at, actor, action, resource_type, resource_id, result, detail, job_id)
         VALUES (?, ?, ?, ?, ?, ?, ?, ?)"
    };
}

mod audit;
mod backups;
mod domains;
mod drift;
mod environments;
mod jobs;
mod nodes;
mod page;
mod queue;
mod releases;
mod settings;
mod sites;
mod users;

use std::path::Path;
use std::str::FromStr;
use std::time::Duration;

use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};
use sqlx::{Sqlite, SqlitePool, Transaction};

pub use audit::{AuditEntry, AuditRecord};
pub use backups::BackupRecord;
pub use domains::{DomainRecord, DomainTlsUpdate};
pub use drift::DriftReportRecord;
pub use environments::{EnvironmentRecord, EnvironmentWithSecrets, NewEnvironment};
pub use jobs::{JobEventRecord, JobFilter, JobRecord, MetricsSnapshot, NewJob};
pub use nodes::{NewNode, NodeRecord, NodeUpdate, NodeWithSettings};
pub use page::{Page, PageToken};
pub use queue::{DomainOutcome, JobEnd, ReleaseReport, ResourceEffects};
pub use releases::ReleaseRecord;
pub use settings::{BackupTargetUpdate, SettingsRecord, SettingsUpdate};
pub use sites::{NewSite, SiteRecord};
pub use users::{Caller, TokenRecord, UserRecord};

use crate::error::{Error, Result};
use crate::model::{
    self, AuditResult, BackupId, BackupScope, BackupStatus, BackupTrigger, DomainId, DriftStatus,
    EnvironmentId, EnvironmentKind, EnvironmentStatus, JobEventKind, JobId, JobKind, JobScope,
    JobStatus, NodeId, NodeStatus, ReleaseHealth, ReleaseId, ReleaseSourceKind, SiteId, SiteStatus,
    TlsStatus, TokenId, TokenKind, UserId,
};

/// Handle to the database; cheap to clone.
#[derive(Debug, Clone)]
pub struct Store {
    pool: SqlitePool,
    /// Ids of jobs that changed, published after each commit (for watch streams and workers).
    job_changes: tokio::sync::broadcast::Sender<JobId>,
    /// Wakes the worker when a job may have become claimable (queued, or a running one ended).
    work_available: std::sync::Arc<tokio::sync::Notify>,
    job_defaults: JobDefaults,
    /// One writer at a time within this process (see [`Tx`]).
    write_turn: std::sync::Arc<tokio::sync::Mutex<()>>,
}

/// Attempts and timeout given to new jobs.
#[derive(Debug, Clone)]
pub struct JobDefaults {
    pub max_attempts: i64,
    pub timeout_secs: i64,
    /// Timeouts of job types that do not take `timeout_secs`.
    pub timeout_secs_by_kind: std::collections::HashMap<crate::model::JobKind, i64>,
    /// First UID for environment users on a node.
    pub linux_uid_base: i64,
}

impl JobDefaults {
    /// The timeout a new job of `kind` gets.
    pub fn timeout_secs_of(&self, kind: crate::model::JobKind) -> i64 {
        self.timeout_secs_by_kind
            .get(&kind)
            .copied()
            .unwrap_or(self.timeout_secs)
    }
}

impl Default for JobDefaults {
    fn default() -> Self {
        Self {
            max_attempts: jobs::DEFAULT_MAX_ATTEMPTS,
            timeout_secs: jobs::DEFAULT_TIMEOUT_SECS,
            timeout_secs_by_kind: std::collections::HashMap::new(),
            linux_uid_base: 20_000,
        }
    }
}

/// An open write transaction. Writers of this process take turns on an async mutex before
/// `BEGIN IMMEDIATE`: SQLite allows one writer anyway, and waiting here costs nothing, while
/// waiting in SQLite's busy handler sleeps in growing steps and wastes most of the time.
pub struct Tx {
    tx: Transaction<'static, Sqlite>,
    _turn: tokio::sync::OwnedMutexGuard<()>,
}

impl Tx {
    /// Commits the transaction.
    pub async fn commit(self) -> Result<()> {
        Ok(self.tx.commit().await?)
    }
}

impl std::ops::Deref for Tx {
    type Target = sqlx::SqliteConnection;
    fn deref(&self) -> &Self::Target {
        &self.tx
    }
}

impl std::ops::DerefMut for Tx {
    fn deref_mut(&mut self) -> &mut Self::Target {
        &mut self.tx
    }
}

impl Store {
    /// Opens (creating if needed) the database at `path` and applies pending migrations.
    pub async fn open(path: &Path) -> Result<Self> {
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir)
                .map_err(|e| Error::internal(format!("creating {}: {e}", dir.display())))?;
        }
        let options = SqliteConnectOptions::new()
            .filename(path)
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Normal)
            .foreign_keys(true)
            .busy_timeout(Duration::from_secs(10));
        let pool = SqlitePoolOptions::new()
            .max_connections(8)
            .connect_with(options)
            .await?;
        // Two processes (the server and an admin command) may start at once: migrations run
        // under an exclusive file lock, so the second waits and then finds nothing to do.
        let lock_path = path.with_extension("migrate.lock");
        let lock = std::fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&lock_path)
            .map_err(|e| Error::internal(format!("opening {}: {e}", lock_path.display())))?;
        let lock = tokio::task::spawn_blocking(move || lock.lock().map(|()| lock))
            .await
            .map_err(|e| Error::internal(format!("waiting for the migration lock: {e}")))?
            .map_err(|e| Error::internal(format!("locking {}: {e}", lock_path.display())))?;
        let migrated = sqlx::migrate!("../migrations").run(&pool).await;
        drop(lock);
        migrated.map_err(|e| Error::internal(format!("applying migrations: {e}")))?;
        let (job_changes, _) = tokio::sync::broadcast::channel(1024);
        Ok(Self {
            pool,
            job_changes,
            work_available: std::sync::Arc::new(tokio::sync::Notify::new()),
            job_defaults: JobDefaults::default(),
            write_turn: std::sync::Arc::new(tokio::sync::Mutex::new(())),
        })
    }

    /// The same store, giving new jobs these attempts and timeout.
    #[must_use]
    pub fn with_job_defaults(mut self, defaults: JobDefaults) -> Self {
        self.job_defaults = defaults;
        self
    }

    /// Subscribes to the ids of jobs that change from now on. A lagging receiver misses ids
    /// (and learns so from `RecvError::Lagged`): watchers re-read state from the database.
    pub fn subscribe_job_changes(&self) -> tokio::sync::broadcast::Receiver<JobId> {
        self.job_changes.subscribe()
    }

    /// The worker's wake-up signal.
    pub fn work_available(&self) -> std::sync::Arc<tokio::sync::Notify> {
        self.work_available.clone()
    }

    /// Publishes a change that may let a queued job start (a job was queued or ended).
    pub fn notify_work(&self, id: JobId) {
        self.notify_job(id);
        self.work_available.notify_one();
    }

    /// Publishes that a job changed; call after the transaction committed.
    pub fn notify_job(&self, id: JobId) {
        // No receivers is fine: nobody is watching.
        let _ = self.job_changes.send(id);
    }

    /// Whether the database answers a query (the HTTP health check).
    pub async fn ping(&self) -> Result<()> {
        sqlx::query("SELECT 1").execute(&self.pool).await?;
        Ok(())
    }

    /// The connection pool (for the queue's hot paths and tests).
    pub fn pool(&self) -> &SqlitePool {
        &self.pool
    }

    /// Takes this process's write turn for a single statement outside a transaction (one
    /// statement is atomic on its own and needs no BEGIN/COMMIT round trips).
    pub(crate) async fn write_turn(&self) -> tokio::sync::OwnedMutexGuard<()> {
        self.write_turn.clone().lock_owned().await
    }

    /// Starts a write transaction that takes the write lock at once.
    pub async fn write(&self) -> Result<Tx> {
        let turn = self.write_turn.clone().lock_owned().await;
        let tx = self.pool.begin_with("BEGIN IMMEDIATE").await?;
        Ok(Tx { tx, _turn: turn })
    }
}

/// Fails with ABORTED when the client's expected version (0 = unchecked) is stale.
pub fn check_version(resource: &'static str, expected: i64, actual: i64) -> Result<()> {
    if expected != 0 && expected != actual {
        return Err(Error::VersionConflict {
            resource,
            expected,
            actual,
        });
    }
    Ok(())
}

/// Maps a unique-constraint violation to ALREADY_EXISTS with `message`.
fn unique_violation(error: sqlx::Error, message: impl FnOnce() -> String) -> Error {
    match &error {
        sqlx::Error::Database(db) if db.is_unique_violation() => Error::AlreadyExists(message()),
        _ => Error::Database(error),
    }
}

/// Text columns for typed ids and state enums: each is stored as its string form.
macro_rules! sqlite_text {
    ($($t:ty),* $(,)?) => {$(
        impl sqlx::Type<Sqlite> for $t {
            fn type_info() -> sqlx::sqlite::SqliteTypeInfo {
                <str as sqlx::Type<Sqlite>>::type_info()
            }
            fn compatible(ty: &sqlx::sqlite::SqliteTypeInfo) -> bool {
                <str as sqlx::Type<Sqlite>>::compatible(ty)
            }
        }

        impl sqlx::Encode<'_, Sqlite> for $t {
            fn encode_by_ref(
                &self,
                buf: &mut sqlx::sqlite::SqliteArgumentsBuffer,
            ) -> Result<sqlx::encode::IsNull, sqlx::error::BoxDynError> {
                <String as sqlx::Encode<Sqlite>>::encode(self.to_string(), buf)
            }
        }

        impl<'r> sqlx::Decode<'r, Sqlite> for $t {
            fn decode(value: sqlx::sqlite::SqliteValueRef<'r>) -> Result<Self, sqlx::error::BoxDynError> {
                let text = <&str as sqlx::Decode<Sqlite>>::decode(value)?;
                Ok(<$t>::from_str(text)?)
            }
        }
    )*};
}

sqlite_text!(
    UserId,
    TokenId,
    NodeId,
    SiteId,
    EnvironmentId,
    ReleaseId,
    BackupId,
    DomainId,
    JobId,
    NodeStatus,
    SiteStatus,
    EnvironmentKind,
    EnvironmentStatus,
    DriftStatus,
    ReleaseHealth,
    ReleaseSourceKind,
    BackupScope,
    BackupStatus,
    BackupTrigger,
    TlsStatus,
    JobStatus,
    JobScope,
    TokenKind,
    AuditResult,
    JobEventKind,
    JobKind,
);

/// Current time in the store's representation.
pub(crate) fn now() -> i64 {
    model::now_ms()
}

#[cfg(test)]
pub(crate) mod test_support {
    use super::Store;

    /// A store on a fresh file in a temp dir (kept alive by the returned guard).
    pub async fn store() -> (Store, tempfile::TempDir) {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = Store::open(&dir.path().join("test.db"))
            .await
            .expect("open");
        (store, dir)
    }
}

#[cfg(test)]
mod schema_tests {
    use super::test_support::store;
    use crate::model::*;
    use crate::store::NewSite;
    use crate::store::environments::tests::{job, new_env};
    use crate::store::nodes::tests::new_node;

    /// Every value of every enum goes into its column (the migrations' CHECK constraints, as
    /// they stand after all migrations), and a value of none is refused.
    #[tokio::test]
    async fn every_enum_value_fits_its_column() {
        let (store, _dir) = store().await;
        let node = store.create_node(&new_node("n")).await.expect("node");
        let site = NewSite {
            name: "Shop".into(),
            slug: "shop".into(),
        };
        let (_site, env, _job) = store
            .create_site(&site, &new_env(node.id), "", job(JobKind::SiteCreate))
            .await
            .expect("site");
        let user = store
            .create_user("a@example.com", "A", None)
            .await
            .expect("user");
        store
            .insert_token(user.id, "t", TokenKind::Api, "hash", None)
            .await
            .expect("token");
        let (id, env_id, now) = (uuid::Uuid::now_v7().to_string(), env.id, now_ms());
        for insert in [
            "INSERT INTO releases (id, environment_id, name, source_kind, source, resolved_ref, created_at)
             VALUES (?1, ?2, 'r1', 'wordpress', '{}', '', ?3)",
            "INSERT INTO backups (id, environment_id, site_id, scope, status, trigger_kind, created_at)
             VALUES (?1, ?2, (SELECT site_id FROM environments WHERE id = ?2), 'full', 'pending', 'manual', ?3)",
            "INSERT INTO domains (id, environment_id, hostname, aliases, created_at)
             VALUES (?1, ?2, 'shop.example.com', '[]', ?3)",
            "INSERT INTO drift_reports (id, environment_id, status, checked_at) VALUES (?1, ?2, 'clean', ?3)",
        ] {
            sqlx::query(insert)
                .bind(&id)
                .bind(env_id)
                .bind(now)
                .execute(&store.pool)
                .await
                .expect(insert);
        }
        macro_rules! columns {
            ($(($table:literal, $column:literal, $t:ty)),* $(,)?) => {{
                let mut checked = Vec::new();
                $(
                    let values: Vec<&str> = <$t>::ALL.iter().map(|v| v.as_str()).collect();
                    checked.push(($table, $column, values));
                )*
                checked
            }};
        }
        let checked = columns!(
            ("nodes", "status", NodeStatus),
            ("sites", "status", SiteStatus),
            ("environments", "kind", EnvironmentKind),
            ("environments", "status", EnvironmentStatus),
            ("environments", "drift_status", DriftStatus),
            ("environments", "backup_scope", BackupScope),
            ("releases", "source_kind", ReleaseSourceKind),
            ("releases", "health", ReleaseHealth),
            ("backups", "scope", BackupScope),
            ("backups", "status", BackupStatus),
            ("backups", "trigger_kind", BackupTrigger),
            ("domains", "tls_status", TlsStatus),
            ("drift_reports", "status", DriftStatus),
            ("jobs", "kind", JobKind),
            ("jobs", "status", JobStatus),
            ("jobs", "scope", JobScope),
            ("job_events", "kind", JobEventKind),
            ("api_tokens", "kind", TokenKind),
            ("audit_log", "result", AuditResult),
        );
        for (table, column, values) in checked {
            for value in values.iter().copied().chain(["bogus"]) {
                let mut tx = store.pool.begin().await.expect("tx");
                // Table and column names are the literals above.
                let sql = sqlx::AssertSqlSafe(format!("UPDATE {table} SET {column} = ?"));
                let updated = sqlx::query(sql).bind(value).execute(&mut *tx).await;
                if value == "bogus" {
                    assert!(updated.is_err(), "{table}.{column} took a value of no enum");
                } else {
                    let rows = updated
                        .unwrap_or_else(|e| panic!("{table}.{column} refused {value}: {e}"))
                        .rows_affected();
                    assert!(rows > 0, "{table} has no row to check");
                }
                tx.rollback().await.expect("rollback");
            }
        }
    }
}
