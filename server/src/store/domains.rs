//! Domains: read here; a domain job claims its domain in its queuing transaction; the
//! certificate check records what the nodes report.

use sqlx::FromRow;

use super::environments::EnvironmentRecord;
use super::page::{PageToken, key, paginate};
use super::{Page, Store, Tx, now};
use crate::error::{Error, Result};
use crate::model::job::{DomainAdd, DomainRemove, JobParams};
use crate::model::{DomainId, EnvironmentId, NodeId, TlsStatus};

/// A live domain as the domain jobs' queuing checks see it.
#[derive(FromRow)]
pub(super) struct LiveDomain {
    id: DomainId,
    environment_id: EnvironmentId,
    hostname: String,
    is_primary: bool,
    tls_expires_at: Option<i64>,
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

impl Store {
    /// Domain jobs take their domain in the queuing transaction; the job's params get the
    /// domain's id and what the playbook needs to know.
    pub(super) async fn claim_domain_tx(
        tx: &mut Tx,
        env: &EnvironmentRecord,
        params: &mut JobParams,
    ) -> Result<()> {
        match params {
            JobParams::DomainAdd(add) => Self::claim_added_domain_tx(tx, env, add).await,
            JobParams::DomainRemove(remove) => Self::claim_removed_domain_tx(tx, env, remove).await,
            _ => Ok(()),
        }
    }

    /// domain_add inserts its domain (`pending`) or takes it again (a retry after a failed
    /// certificate, or making an existing domain the primary), and decides whether it becomes
    /// the primary (the first one always does). A hostname is live on one environment at most.
    pub(super) async fn claim_added_domain_tx(
        tx: &mut Tx,
        env: &EnvironmentRecord,
        add: &mut DomainAdd,
    ) -> Result<()> {
        let hostname = add.hostname.clone();
        let aliases = serde_json::to_string(&add.aliases).map_err(Error::internal)?;
        let make_primary = add.make_primary;
        let existing = sqlx::query_as::<_, LiveDomain>(
            "SELECT id, environment_id, hostname, is_primary, tls_expires_at FROM domains
             WHERE hostname = ? AND removed_at IS NULL",
        )
        .bind(&hostname)
        .fetch_optional(&mut **tx)
        .await?;
        let id = match existing {
            Some(d) if d.environment_id != env.id => {
                return Err(Error::AlreadyExists(format!(
                    "{hostname} is already a domain of another environment; remove it there first"
                )));
            }
            Some(d) if d.is_primary => {
                return Err(Error::AlreadyExists(format!(
                    "{hostname} is already this environment's primary domain"
                )));
            }
            Some(d) if d.tls_expires_at.is_some() && !make_primary => {
                return Err(Error::AlreadyExists(format!(
                    "{hostname} is already served by this environment; set make_primary to make it \
                     the primary domain"
                )));
            }
            Some(d) => {
                sqlx::query(
                    "UPDATE domains SET aliases = ?, tls_message = '',
                            tls_status = CASE WHEN tls_expires_at IS NULL THEN 'pending' ELSE tls_status END,
                            state_version = state_version + 1
                     WHERE id = ?",
                )
                .bind(&aliases)
                .bind(d.id)
                .execute(&mut **tx)
                .await?;
                d.id
            }
            None => {
                let id = DomainId::new();
                sqlx::query(
                    "INSERT INTO domains (id, environment_id, hostname, aliases, created_at)
                     VALUES (?, ?, ?, ?, ?)",
                )
                .bind(id)
                .bind(env.id)
                .bind(&hostname)
                .bind(&aliases)
                .bind(now())
                .execute(&mut **tx)
                .await?;
                id
            }
        };
        let has_primary: bool = sqlx::query_scalar(
            "SELECT EXISTS (SELECT 1 FROM domains
                            WHERE environment_id = ? AND removed_at IS NULL AND is_primary = 1)",
        )
        .bind(env.id)
        .fetch_one(&mut **tx)
        .await?;
        add.domain_id = Some(id);
        add.make_primary = make_primary || !has_primary;
        Ok(())
    }

    /// domain_remove: the domain must be live on this environment.
    pub(super) async fn claim_removed_domain_tx(
        tx: &mut Tx,
        env: &EnvironmentRecord,
        remove: &mut DomainRemove,
    ) -> Result<()> {
        let id = remove.domain_id;
        let d = sqlx::query_as::<_, LiveDomain>(
            "SELECT id, environment_id, hostname, is_primary, tls_expires_at FROM domains
             WHERE id = ? AND removed_at IS NULL",
        )
        .bind(id)
        .fetch_optional(&mut **tx)
        .await?
        .filter(|d| d.environment_id == env.id)
        .ok_or_else(|| Error::not_found("domain", &id))?;
        remove.hostname = d.hostname;
        remove.was_primary = d.is_primary;
        remove.has_certificate = d.tls_expires_at.is_some();
        Ok(())
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
}
