//! The audit log: who did what to which resource, and how it ended.

use sqlx::FromRow;

use super::page::invalid_page_token;
use super::page::{PageToken, key, paginate};
use super::{Page, Store, now};
use crate::error::Result;
use crate::model::{AuditResult, JobId};

/// An audit row to write.
#[derive(Debug, Clone)]
pub struct AuditEntry {
    pub actor: String,
    /// Dotted verb, e.g. "site.create".
    pub action: String,
    pub resource_type: &'static str,
    pub resource_id: String,
    pub result: AuditResult,
    /// Redacted detail; never a secret.
    pub detail: String,
    pub job_id: Option<JobId>,
}

/// A row of `audit_log`.
#[derive(Debug, Clone, FromRow)]
pub struct AuditRecord {
    pub id: i64,
    pub at: i64,
    pub actor: String,
    pub action: String,
    pub resource_type: String,
    pub resource_id: String,
    pub result: AuditResult,
    pub detail: String,
    pub job_id: Option<JobId>,
}

const INSERT: &str =
    "INSERT INTO audit_log (at, actor, action, resource_type, resource_id, result, detail, job_id)
     VALUES (?, ?, ?, ?, ?, ?, ?, ?)";

impl Store {
    /// Records an audit event on its own.
    pub async fn record_audit(&self, entry: &AuditEntry) -> Result<()> {
        let _turn = self.write_turn().await;
        let mut conn = self.pool.acquire().await?;
        Self::record_audit_on(&mut conn, entry).await
    }

    /// Records an audit event on `conn`: inside the transaction of the change it describes.
    pub(super) async fn record_audit_on(
        conn: &mut sqlx::SqliteConnection,
        entry: &AuditEntry,
    ) -> Result<()> {
        sqlx::query(INSERT)
            .bind(now())
            .bind(&entry.actor)
            .bind(&entry.action)
            .bind(entry.resource_type)
            .bind(&entry.resource_id)
            .bind(entry.result)
            .bind(&entry.detail)
            .bind(entry.job_id)
            .execute(conn)
            .await?;
        Ok(())
    }

    /// Audit events newest first, optionally about one resource type / id.
    pub async fn list_audit(
        &self,
        resource_type: Option<&str>,
        resource_id: Option<&str>,
        limit: u32,
        after: Option<PageToken>,
    ) -> Result<Page<AuditRecord>> {
        let before = match &after {
            Some(t) => t
                .part(0)?
                .parse::<i64>()
                .map_err(|_| invalid_page_token())?,
            None => i64::MAX,
        };
        let mut q = sqlx::QueryBuilder::<sqlx::Sqlite>::new(
            "SELECT id, at, actor, action, resource_type, resource_id, result, detail, job_id
             FROM audit_log WHERE id < ",
        );
        q.push_bind(before);
        if let Some(t) = resource_type {
            q.push(" AND resource_type = ").push_bind(t.to_owned());
        }
        if let Some(r) = resource_id {
            q.push(" AND resource_id = ").push_bind(r.to_owned());
        }
        q.push(" ORDER BY id DESC LIMIT ")
            .push_bind(i64::from(limit) + 1);
        let rows = q
            .build_query_as::<AuditRecord>()
            .fetch_all(&self.pool)
            .await?;
        Ok(paginate(rows, limit, |a| key(&[&a.id.to_string()])))
    }
}
