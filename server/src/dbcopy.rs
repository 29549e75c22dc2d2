//! Backing up and restoring the control plane's own database (`pressluft-server admin
//! backup-db` / `restore-db`). A backup is taken online with SQLite's `VACUUM INTO` (a
//! consistent snapshot while the server keeps running); a restore is refused while a server
//! runs on the data directory (it holds the serve lock), checks the file first, and replaces
//! the database atomically.

use std::fs::File;
use std::path::{Path, PathBuf};

use crate::error::{Error, Reason, Result};
use crate::store::Store;

/// Held by a running server for as long as it serves its data directory.
#[derive(Debug)]
pub struct ServeLock {
    _file: File,
}

impl ServeLock {
    /// The lock of `data_dir`, or an error naming the running server.
    pub fn acquire(data_dir: &Path) -> Result<Self> {
        let path = data_dir.join("pressluft.serve.lock");
        let file = File::create(&path)
            .map_err(|e| Error::internal(format!("opening {}: {e}", path.display())))?;
        match file.try_lock() {
            Ok(()) => Ok(Self { _file: file }),
            Err(_) => Err(Error::precondition(
                Reason::IllegalStateTransition,
                format!(
                    "a pressluft-server is running on {}; stop it first",
                    data_dir.display()
                ),
            )),
        }
    }
}

/// Writes a consistent copy of the database to `to` (which must not exist), mode 0600.
pub async fn backup(store: &Store, to: &Path) -> Result<u64> {
    if to.exists() {
        return Err(Error::precondition(
            Reason::AlreadyExists,
            format!("{} exists; choose a new file", to.display()),
        ));
    }
    let target = to
        .to_str()
        .ok_or_else(|| Error::internal("the backup path is not UTF-8"))?;
    sqlx::query("VACUUM INTO ?")
        .bind(target)
        .execute(store.pool())
        .await?;
    set_private(to)?;
    verify(to).await?;
    Ok(std::fs::metadata(to).map_or(0, |m| m.len()))
}

/// Replaces the database at `database` with the backup `from`, after checking it; refused while
/// a server holds the data directory.
pub async fn restore(database: &Path, from: &Path) -> Result<()> {
    let data_dir = database
        .parent()
        .ok_or_else(|| Error::internal("the database has no directory"))?;
    let _lock = ServeLock::acquire(data_dir)?;
    verify(from).await?;
    let staged: PathBuf = database.with_extension("db.restoring");
    std::fs::copy(from, &staged)
        .map_err(|e| Error::internal(format!("copying {}: {e}", from.display())))?;
    set_private(&staged)?;
    File::open(&staged)
        .and_then(|f| f.sync_all())
        .map_err(|e| Error::internal(format!("syncing the copy: {e}")))?;
    // The old database's write-ahead log belongs to the old file.
    for suffix in ["-wal", "-shm"] {
        let mut side = database.as_os_str().to_owned();
        side.push(suffix);
        let _ = std::fs::remove_file(PathBuf::from(side));
    }
    std::fs::rename(&staged, database)
        .map_err(|e| Error::internal(format!("replacing the database: {e}")))?;
    // Migrations newer than the backup are applied now, not at the next start.
    Store::open(database).await?.pool().close().await;
    Ok(())
}

/// Checks that `path` is a sound Pressluft database.
async fn verify(path: &Path) -> Result<()> {
    let options = sqlx::sqlite::SqliteConnectOptions::new()
        .filename(path)
        .read_only(true);
    let pool = sqlx::SqlitePool::connect_with(options)
        .await
        .map_err(|e| not_a_backup(path, &e))?;
    let integrity: String = sqlx::query_scalar("PRAGMA integrity_check")
        .fetch_one(&pool)
        .await
        .map_err(|e| not_a_backup(path, &e))?;
    let tables: i64 = sqlx::query_scalar(
        "SELECT COUNT(*) FROM sqlite_master WHERE type = 'table'
         AND name IN ('_sqlx_migrations', 'jobs', 'nodes', 'sites', 'users')",
    )
    .fetch_one(&pool)
    .await
    .map_err(|e| not_a_backup(path, &e))?;
    pool.close().await;
    if integrity != "ok" || tables != 5 {
        return Err(Error::precondition(
            Reason::InvalidArgument,
            format!(
                "{} is not a sound Pressluft database (integrity: {integrity})",
                path.display()
            ),
        ));
    }
    Ok(())
}

fn not_a_backup(path: &Path, error: &dyn std::fmt::Display) -> Error {
    Error::precondition(
        Reason::InvalidArgument,
        format!("{} is not a Pressluft database: {error}", path.display()),
    )
}

fn set_private(path: &Path) -> Result<()> {
    use std::os::unix::fs::PermissionsExt as _;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600))
        .map_err(|e| Error::internal(format!("chmod {}: {e}", path.display())))
}

#[cfg(test)]
mod tests {
    use super::*;

    use std::os::unix::fs::PermissionsExt as _;

    #[tokio::test]
    async fn a_backup_restores_what_it_holds_and_never_under_a_running_server() {
        let dir = tempfile::tempdir().expect("temp dir");
        let data = dir.path().join("data");
        std::fs::create_dir_all(&data).expect("data dir");
        let db = data.join("pressluft.db");
        let store = Store::open(&db).await.expect("store");
        crate::auth::create_user(&store, "first@example.com", "First", None)
            .await
            .expect("user");
        let copy = dir.path().join("backup.db");
        let size = backup(&store, &copy).await.expect("online backup");
        assert!(size > 0);
        assert_eq!(
            std::fs::metadata(&copy).expect("copy").permissions().mode() & 0o777,
            0o600
        );
        assert!(backup(&store, &copy).await.is_err(), "never overwrites");
        crate::auth::create_user(&store, "second@example.com", "Second", None)
            .await
            .expect("user");

        // A running server (its lock) refuses the restore; nothing changes.
        let lock = ServeLock::acquire(&data).expect("lock");
        let refused = restore(&db, &copy).await.expect_err("server running");
        assert!(refused.to_string().contains("stop it first"), "{refused}");
        drop(lock);
        store.pool().close().await;

        // Not a database: refused.
        let junk = dir.path().join("junk.db");
        std::fs::write(&junk, b"not sqlite").expect("junk");
        assert!(restore(&db, &junk).await.is_err());

        restore(&db, &copy).await.expect("restore");
        let store = Store::open(&db).await.expect("reopen");
        assert!(
            store
                .user_by_email("first@example.com")
                .await
                .expect("query")
                .is_some()
        );
        assert!(
            store
                .user_by_email("second@example.com")
                .await
                .expect("query")
                .is_none(),
            "the database is back as the backup holds it"
        );
    }
}
