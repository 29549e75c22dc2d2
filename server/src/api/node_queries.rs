//! NodeQueryService: validates, calls `queries` (one SSH round-trip over a pooled connection,
//! capped), converts. Magic logins are audit-logged, refused ones too.

use pressluft_proto::v1 as pb;
use pressluft_proto::v1::node_query_service_server::NodeQueryService;
use tonic::Request;

use super::{RpcResult, caller, convert, ok};
use crate::model::validate::{self, Invalid};
use crate::model::{AuditResult, EnvironmentId, NodeId};
use crate::queries::{self, NodeQueries};

/// Handlers of NodeQueryService.
pub struct NodeQueryApi {
    pub queries: NodeQueries,
}

#[tonic::async_trait]
impl NodeQueryService for NodeQueryApi {
    async fn create_magic_login(
        &self,
        request: Request<pb::CreateMagicLoginRequest>,
    ) -> RpcResult<pb::CreateMagicLoginResponse> {
        let caller = caller(&request)?;
        let id: EnvironmentId = validate::id("environment_id", &request.get_ref().environment_id)?;
        let login = queries::magic_login(&self.queries, id).await;
        // The URL holds the token: the audit names the user, never the link.
        let (result, detail) = match &login {
            Ok(l) => (AuditResult::Succeeded, format!("as {}", l.user_login)),
            Err(e) => (AuditResult::Failed, e.to_string()),
        };
        self.queries
            .store
            .record_audit(&crate::store::AuditEntry {
                actor: caller.actor(),
                action: "magic login".into(),
                resource_type: "environment",
                resource_id: id.to_string(),
                result,
                detail,
                job_id: None,
            })
            .await?;
        let login = login?;
        ok(pb::CreateMagicLoginResponse {
            url: login.url,
            expire_time: Some(convert::ts(login.expires.saturating_mul(1000))),
            user_login: login.user_login,
        })
    }

    async fn get_php_version(
        &self,
        request: Request<pb::GetPhpVersionRequest>,
    ) -> RpcResult<pb::GetPhpVersionResponse> {
        let r = request.get_ref();
        let node: Option<NodeId> = validate::optional_id("node_id", &r.node_id)?;
        let env: Option<EnvironmentId> =
            validate::optional_id("environment_id", &r.environment_id)?;
        if node.is_some() == env.is_some() {
            return Err(Invalid {
                field: "node_id",
                message: "set exactly one of node_id and environment_id".into(),
            }
            .into());
        }
        let php = queries::php_version(&self.queries, node, env).await?;
        ok(pb::GetPhpVersionResponse {
            version: php.version,
            installed_versions: php.installed,
        })
    }

    async fn get_disk_usage(
        &self,
        request: Request<pb::GetDiskUsageRequest>,
    ) -> RpcResult<pb::GetDiskUsageResponse> {
        let id: EnvironmentId = validate::id("environment_id", &request.get_ref().environment_id)?;
        let usage = queries::disk_usage(&self.queries, id).await?;
        ok(pb::GetDiskUsageResponse {
            releases_bytes: usage.releases_bytes,
            uploads_bytes: usage.uploads_bytes,
            database_bytes: usage.database_bytes,
            total_bytes: usage.total_bytes,
            node_free_bytes: usage.node_free_bytes,
        })
    }

    async fn get_word_press_info(
        &self,
        request: Request<pb::GetWordPressInfoRequest>,
    ) -> RpcResult<pb::GetWordPressInfoResponse> {
        let id: EnvironmentId = validate::id("environment_id", &request.get_ref().environment_id)?;
        let info = queries::wordpress_info(&self.queries, id).await?;
        let component = |c: queries::Component| pb::WordPressComponent {
            name: c.slug,
            title: c.name,
            version: c.version,
            active: c.active,
        };
        ok(pb::GetWordPressInfoResponse {
            core_version: info.core,
            plugins: info.plugins.into_iter().map(component).collect(),
            themes: info.themes.into_iter().map(component).collect(),
            method: info.method,
        })
    }

    async fn get_database_status(
        &self,
        request: Request<pb::GetDatabaseStatusRequest>,
    ) -> RpcResult<pb::GetDatabaseStatusResponse> {
        let id: NodeId = validate::id("node_id", &request.get_ref().node_id)?;
        let status = queries::database_status(&self.queries, id).await?;
        ok(pb::GetDatabaseStatusResponse {
            up: status.up,
            version: status.version,
            uptime: Some(prost_types::Duration {
                seconds: status.uptime_secs,
                nanos: 0,
            }),
            connections: status.connections,
        })
    }
}
