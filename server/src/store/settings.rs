//! Control-plane settings: one typed row.

use sqlx::FromRow;

use super::{Store, check_version, now};
use crate::error::{Error, Reason, Result};
use crate::model::{NodeId, NodeStatus};

/// The `settings` row (the sealed S3 secret is not read here).
#[derive(Debug, Clone, FromRow)]
pub struct SettingsRecord {
    pub preview_domain: String,
    pub default_node_id: Option<NodeId>,
    pub default_php_version: String,
    pub releases_to_keep: i64,
    pub s3_endpoint: String,
    pub s3_bucket: String,
    pub s3_region: String,
    pub s3_prefix: String,
    pub s3_access_key_id: String,
    pub s3_verified_at: Option<i64>,
    pub updated_at: i64,
    pub state_version: i64,
}

/// Fields to change; `None` leaves a field as it is. `Some(None)` clears the default node.
#[derive(Debug, Clone, Default)]
pub struct SettingsUpdate {
    pub preview_domain: Option<String>,
    pub default_node_id: Option<Option<NodeId>>,
    pub default_php_version: Option<String>,
    pub releases_to_keep: Option<i64>,
}

/// A backup target as stored: the secret already sealed.
#[derive(Debug, Clone)]
pub struct BackupTargetUpdate {
    pub endpoint: String,
    pub bucket: String,
    pub region: String,
    pub prefix: String,
    pub access_key_id: String,
    pub secret_sealed: String,
}

impl Store {
    /// A write turn on the settings row, after checking `expected_version` against it.
    async fn settings_write(&self, expected_version: i64) -> Result<super::Tx> {
        let mut tx = self.write().await?;
        let current: i64 = sqlx::query_scalar("SELECT state_version FROM settings WHERE id = 1")
            .fetch_one(&mut *tx)
            .await?;
        check_version("settings", expected_version, current)?;
        Ok(tx)
    }

    /// The backup target's sealed secret ("" when none is set).
    pub async fn backup_target_secret(&self) -> Result<String> {
        Ok(
            sqlx::query_scalar("SELECT s3_secret_enc FROM settings WHERE id = 1")
                .fetch_one(&self.pool)
                .await?,
        )
    }

    /// Saves a backup target that passed its test upload (now), checking and bumping the
    /// version.
    pub async fn set_backup_target(
        &self,
        expected_version: i64,
        target: &BackupTargetUpdate,
    ) -> Result<SettingsRecord> {
        let mut tx = self.settings_write(expected_version).await?;
        let now = now();
        sqlx::query(
            "UPDATE settings SET s3_endpoint = ?, s3_bucket = ?, s3_region = ?, s3_prefix = ?,
                    s3_access_key_id = ?, s3_secret_enc = ?, s3_verified_at = ?, updated_at = ?,
                    state_version = state_version + 1
             WHERE id = 1",
        )
        .bind(&target.endpoint)
        .bind(&target.bucket)
        .bind(&target.region)
        .bind(&target.prefix)
        .bind(&target.access_key_id)
        .bind(&target.secret_sealed)
        .bind(now)
        .bind(now)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        self.settings().await
    }

    /// The settings.
    pub async fn settings(&self) -> Result<SettingsRecord> {
        Ok(sqlx::query_as::<_, SettingsRecord>(
            "SELECT preview_domain, default_node_id, default_php_version, releases_to_keep,
                    s3_endpoint, s3_bucket, s3_region, s3_prefix, s3_access_key_id, s3_verified_at,
                    updated_at, state_version
             FROM settings WHERE id = 1",
        )
        .fetch_one(&self.pool)
        .await?)
    }

    /// Applies an update, checking and bumping the version.
    pub async fn update_settings(
        &self,
        expected_version: i64,
        update: &SettingsUpdate,
    ) -> Result<SettingsRecord> {
        let mut tx = self.settings_write(expected_version).await?;
        if let Some(Some(node)) = update.default_node_id {
            let status: Option<NodeStatus> =
                sqlx::query_scalar("SELECT status FROM nodes WHERE id = ?")
                    .bind(node)
                    .fetch_optional(&mut *tx)
                    .await?;
            match status {
                None => return Err(Error::not_found("node", &node)),
                Some(NodeStatus::Decommissioned) => {
                    return Err(Error::precondition(
                        Reason::NodeNotReady,
                        "the node is decommissioned",
                    ));
                }
                Some(_) => {}
            }
        }
        let mut q = sqlx::QueryBuilder::<sqlx::Sqlite>::new("UPDATE settings SET updated_at = ");
        q.push_bind(now());
        if let Some(v) = &update.preview_domain {
            q.push(", preview_domain = ").push_bind(v.clone());
        }
        if let Some(v) = update.default_node_id {
            q.push(", default_node_id = ").push_bind(v);
        }
        if let Some(v) = &update.default_php_version {
            q.push(", default_php_version = ").push_bind(v.clone());
        }
        if let Some(v) = update.releases_to_keep {
            q.push(", releases_to_keep = ").push_bind(v);
        }
        q.push(", state_version = state_version + 1 WHERE id = 1");
        q.build().execute(&mut *tx).await?;
        tx.commit().await?;
        self.settings().await
    }
}
