//! Nodes: the registry of managed hosts.

use sqlx::{FromRow, SqliteExecutor};

use super::jobs::{JobRecord, NewJob};
use super::page::{PageToken, key, paginate};
use super::{Page, Store, Tx, check_version, now, unique_violation};
use crate::error::{Error, Reason, Result};
use crate::model::guard;
use crate::model::job::{JobParams, JobTarget, NodeProvision};
use crate::model::placement::NodeLoad;
use crate::model::{NodeEvent, NodeId, NodeStatus};

/// A row of `nodes`.
#[derive(Debug, Clone, FromRow)]
pub struct NodeRecord {
    pub id: NodeId,
    pub name: String,
    pub hostname: String,
    pub ssh_port: i64,
    pub ssh_user: String,
    pub public_ip: String,
    pub is_local: bool,
    pub host_key: String,
    pub status: NodeStatus,
    pub status_message: String,
    /// JSON array of PHP versions.
    pub php_versions: String,
    pub last_seen_at: Option<i64>,
    pub created_at: i64,
    pub updated_at: i64,
    pub state_version: i64,
}

impl NodeRecord {
    /// PHP versions installed on the node.
    pub fn php_versions(&self) -> Vec<String> {
        serde_json::from_str(&self.php_versions).unwrap_or_default()
    }
}

/// A node to register (validated by the caller).
#[derive(Debug, Clone)]
pub struct NewNode {
    pub name: String,
    pub hostname: String,
    pub ssh_port: u16,
    pub ssh_user: String,
    pub public_ip: String,
    pub is_local: bool,
    pub host_key: String,
}

/// Fields to change on a node; `None` leaves a field as it is.
#[derive(Debug, Clone, Default)]
pub struct NodeUpdate {
    pub name: Option<String>,
    pub ssh_port: Option<u16>,
    pub ssh_user: Option<String>,
    pub public_ip: Option<String>,
    pub host_key: Option<String>,
}

macro_rules! node_select {
    () => {
        "SELECT id, name, hostname, ssh_port, ssh_user, public_ip, is_local, host_key, status,
                status_message, php_versions, last_seen_at, created_at, updated_at, state_version
         FROM nodes"
    };
}

/// A node with the settings every job reads, in one row.
#[derive(Debug, Clone, FromRow)]
pub struct NodeWithSettings {
    #[sqlx(flatten)]
    pub node: NodeRecord,
    pub releases_to_keep: i64,
    pub preview_domain: String,
}

impl Store {
    /// Starts a node_provision job; the node enters `provisioning` in the same transaction.
    pub async fn enqueue_provision(
        &self,
        node_id: NodeId,
        expected_version: i64,
        actor: &str,
    ) -> Result<JobRecord> {
        let mut tx = self.write().await?;
        let node = Self::fetch_node(&mut *tx, node_id).await?;
        check_version("node", expected_version, node.state_version)?;
        guard::provision(node.status)?;
        Self::transition_node_tx(&mut tx, &node, NodeEvent::ProvisionRequested, "").await?;
        let params = JobParams::NodeProvision(NodeProvision {
            previous_node_status: node.status,
        });
        let job = NewJob::new(params, format!("provision node {}", node.name), actor);
        let job = self
            .insert_job_tx(&mut tx, JobTarget::Node(node_id), &job)
            .await?;
        tx.commit().await?;
        self.notify_work(job.id);
        Ok(job)
    }

    /// A node and the job-relevant settings, in one query.
    pub async fn node_with_settings(&self, id: NodeId) -> Result<NodeWithSettings> {
        sqlx::query_as::<_, NodeWithSettings>(
            "SELECT n.id, n.name, n.hostname, n.ssh_port, n.ssh_user, n.public_ip, n.is_local, n.host_key,
                    n.status, n.status_message, n.php_versions, n.last_seen_at, n.created_at, n.updated_at,
                    n.state_version, s.releases_to_keep, s.preview_domain
             FROM nodes n JOIN settings s ON s.id = 1 WHERE n.id = ?",
        )
        .bind(id)
        .fetch_optional(&self.pool)
        .await?
        .ok_or_else(|| Error::not_found("node", &id))
    }

    /// Registers a node in status pending; ALREADY_EXISTS when the name is taken.
    pub async fn create_node(&self, node: &NewNode) -> Result<NodeRecord> {
        let id = NodeId::new();
        let now = now();
        sqlx::query(
            "INSERT INTO nodes (id, name, hostname, ssh_port, ssh_user, public_ip, is_local, host_key,
                                status, created_at, updated_at)
             VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        )
        .bind(id)
        .bind(&node.name)
        .bind(&node.hostname)
        .bind(i64::from(node.ssh_port))
        .bind(&node.ssh_user)
        .bind(&node.public_ip)
        .bind(node.is_local)
        .bind(&node.host_key)
        .bind(NodeStatus::Pending)
        .bind(now)
        .bind(now)
        .execute(&self.pool)
        .await
        .map_err(|e| unique_violation(e, || format!("a node named {} already exists", node.name)))?;
        self.node(id).await
    }

    /// A node by id.
    pub async fn node(&self, id: NodeId) -> Result<NodeRecord> {
        Self::fetch_node(&self.pool, id).await
    }

    /// The node `id`, read through `db`: the pool, or a transaction (`&mut *tx`).
    pub(super) async fn fetch_node<'e>(
        db: impl SqliteExecutor<'e>,
        id: NodeId,
    ) -> Result<NodeRecord> {
        sqlx::query_as::<_, NodeRecord>(concat!(node_select!(), " WHERE id = ?"))
            .bind(id)
            .fetch_optional(db)
            .await?
            .ok_or_else(|| Error::not_found("node", &id))
    }

    /// Every node that is not decommissioned, with the number of its environments that are not
    /// deleted (what placement weighs).
    pub async fn node_loads(&self) -> Result<Vec<NodeLoad>> {
        let rows: Vec<(NodeId, String, NodeStatus, i64, i64)> = sqlx::query_as(
            "SELECT n.id, n.name, n.status, n.created_at,
                    (SELECT COUNT(*) FROM environments e
                      WHERE e.node_id = n.id AND e.status <> 'deleted')
               FROM nodes n
              WHERE n.status <> 'decommissioned'
              ORDER BY n.name",
        )
        .fetch_all(&self.pool)
        .await?;
        Ok(rows
            .into_iter()
            .map(|(id, name, status, created_at, environments)| NodeLoad {
                id,
                name,
                status,
                environments,
                created_at,
            })
            .collect())
    }

    /// Nodes by name, optionally only in some statuses.
    pub async fn list_nodes(
        &self,
        statuses: &[NodeStatus],
        limit: u32,
        after: Option<PageToken>,
    ) -> Result<Page<NodeRecord>> {
        let after_name = match &after {
            Some(t) => t.part(0)?.to_owned(),
            None => String::new(),
        };
        let mut q = sqlx::QueryBuilder::<sqlx::Sqlite>::new(node_select!());
        q.push(" WHERE name > ").push_bind(after_name);
        if !statuses.is_empty() {
            q.push(" AND status IN (");
            let mut sep = q.separated(", ");
            for s in statuses {
                sep.push_bind(*s);
            }
            q.push(")");
        }
        q.push(" ORDER BY name LIMIT ")
            .push_bind(i64::from(limit) + 1);
        let rows = q
            .build_query_as::<NodeRecord>()
            .fetch_all(&self.pool)
            .await?;
        Ok(paginate(rows, limit, |n| key(&[&n.name])))
    }

    /// Applies an update, checking and bumping the version.
    pub async fn update_node(
        &self,
        id: NodeId,
        expected_version: i64,
        update: &NodeUpdate,
    ) -> Result<NodeRecord> {
        let mut tx = self.write().await?;
        let node = Self::fetch_node(&mut *tx, id).await?;
        check_version("node", expected_version, node.state_version)?;
        if node.status == NodeStatus::Decommissioned {
            return Err(Error::precondition(
                Reason::NodeNotReady,
                "the node is decommissioned",
            ));
        }
        let name = update.name.as_deref().unwrap_or(&node.name);
        sqlx::query(
            "UPDATE nodes SET name = ?, ssh_port = ?, ssh_user = ?, public_ip = ?, host_key = ?,
                    updated_at = ?, state_version = state_version + 1
             WHERE id = ? AND state_version = ?",
        )
        .bind(name)
        .bind(update.ssh_port.map_or(node.ssh_port, i64::from))
        .bind(update.ssh_user.as_deref().unwrap_or(&node.ssh_user))
        .bind(update.public_ip.as_deref().unwrap_or(&node.public_ip))
        .bind(update.host_key.as_deref().unwrap_or(&node.host_key))
        .bind(now())
        .bind(id)
        .bind(node.state_version)
        .execute(&mut *tx)
        .await
        .map_err(|e| unique_violation(e, || format!("a node named {name} already exists")))?;
        let updated = Self::fetch_node(&mut *tx, id).await?;
        tx.commit().await?;
        Ok(updated)
    }

    /// Records a reachability check of `id`: when it answered, when it was last seen; and the
    /// move between active and unreachable its outcome implies (`message` says why it did
    /// not answer). The node's status after it.
    pub async fn record_node_contact(
        &self,
        id: NodeId,
        answered: bool,
        message: &str,
    ) -> Result<NodeStatus> {
        let mut tx = self.write().await?;
        let node = Self::fetch_node(&mut *tx, id).await?;
        if answered {
            sqlx::query("UPDATE nodes SET last_seen_at = ? WHERE id = ?")
                .bind(now())
                .bind(id)
                .execute(&mut *tx)
                .await?;
        }
        let status = match node.status.contact_event(answered) {
            Some(event) => {
                let message = if answered { "" } else { message };
                Self::transition_node_tx(&mut tx, &node, event, message).await?
            }
            None => node.status,
        };
        tx.commit().await?;
        Ok(status)
    }

    /// The nodes a reachability check looks at: active and unreachable ones.
    pub async fn nodes_to_check(&self) -> Result<Vec<NodeRecord>> {
        Ok(self
            .list_nodes(&[NodeStatus::Active, NodeStatus::Unreachable], 10_000, None)
            .await?
            .items)
    }

    /// Moves a node through its state machine inside `tx`, bumping its version.
    pub(super) async fn transition_node_tx(
        tx: &mut Tx,
        node: &NodeRecord,
        event: NodeEvent,
        message: &str,
    ) -> Result<NodeStatus> {
        let next = node.status.transition(event)?;
        let rows = sqlx::query(
            "UPDATE nodes SET status = ?, status_message = ?, updated_at = ?,
                    state_version = state_version + 1
             WHERE id = ? AND state_version = ?",
        )
        .bind(next)
        .bind(message)
        .bind(now())
        .bind(node.id)
        .bind(node.state_version)
        .execute(&mut **tx)
        .await?
        .rows_affected();
        if rows != 1 {
            return Err(Error::VersionConflict {
                resource: "node",
                expected: node.state_version,
                actual: node.state_version + 1,
            });
        }
        Ok(next)
    }

    /// Retires a node that hosts no live environment and has no pending job.
    pub async fn decommission_node(&self, id: NodeId, expected_version: i64) -> Result<NodeRecord> {
        let mut tx = self.write().await?;
        let node = Self::fetch_node(&mut *tx, id).await?;
        check_version("node", expected_version, node.state_version)?;
        let live: i64 = sqlx::query_scalar(
            "SELECT COUNT(*) FROM environments WHERE node_id = ? AND status <> 'deleted'",
        )
        .bind(id)
        .fetch_one(&mut *tx)
        .await?;
        if live > 0 {
            return Err(Error::precondition(
                Reason::NodeHasEnvironments,
                format!("the node still hosts {live} environment(s); delete or move them first"),
            ));
        }
        let pending: i64 = sqlx::query_scalar(
            "SELECT COUNT(*) FROM jobs WHERE node_id = ? AND status IN ('queued', 'running')",
        )
        .bind(id)
        .fetch_one(&mut *tx)
        .await?;
        if pending > 0 {
            return Err(Error::precondition(
                Reason::NodeBusy,
                "the node has queued or running jobs; wait for them or cancel them first",
            ));
        }
        Self::transition_node_tx(&mut tx, &node, NodeEvent::Decommission, "").await?;
        sqlx::query("UPDATE settings SET default_node_id = NULL WHERE default_node_id = ?")
            .bind(id)
            .execute(&mut *tx)
            .await?;
        let node = Self::fetch_node(&mut *tx, id).await?;
        tx.commit().await?;
        Ok(node)
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::store::test_support::store;

    pub fn new_node(name: &str) -> NewNode {
        NewNode {
            name: name.to_owned(),
            hostname: "127.0.0.1".to_owned(),
            ssh_port: 22,
            ssh_user: "root".to_owned(),
            public_ip: "127.0.0.1".to_owned(),
            is_local: true,
            host_key: "ssh-ed25519 AAAA".to_owned(),
        }
    }

    #[tokio::test]
    async fn create_update_and_version_conflicts() {
        let (store, _dir) = store().await;
        let node = store.create_node(&new_node("n1")).await.expect("create");
        assert_eq!(node.status, NodeStatus::Pending);
        assert!(matches!(
            store.create_node(&new_node("n1")).await,
            Err(Error::AlreadyExists(_))
        ));
        let update = NodeUpdate {
            ssh_port: Some(2222),
            ..NodeUpdate::default()
        };
        let updated = store
            .update_node(node.id, 1, &update)
            .await
            .expect("update");
        assert_eq!(updated.ssh_port, 2222);
        assert_eq!(updated.state_version, 2);
        assert!(matches!(
            store.update_node(node.id, 1, &update).await,
            Err(Error::VersionConflict { .. })
        ));
        let page = store.list_nodes(&[], 10, None).await.expect("list");
        assert_eq!(page.items.len(), 1);
        let gone = store
            .decommission_node(node.id, 0)
            .await
            .expect("decommission");
        assert_eq!(gone.status, NodeStatus::Decommissioned);
        assert!(store.update_node(node.id, 0, &update).await.is_err());
    }
}
