//! NodeQueryService. The russh query path (pooled connections, 10 s cap, pinned host keys)
//! lands with the node-queries issue; until then every method validates its input and answers
//! UNIMPLEMENTED naming what is missing.

use std::sync::Arc;

use pressluft_proto::v1 as pb;
use pressluft_proto::v1::node_query_service_server::NodeQueryService;
use tonic::Request;

use super::{RpcResult, not_yet};
use crate::app::AppState;
use crate::model::validate::{self, Invalid};
use crate::model::{EnvironmentId, NodeId};

/// Handlers of NodeQueryService.
pub struct NodeQueries(pub Arc<AppState>);

const MISSING: &str =
    "node queries over SSH land with the node-queries issue (russh client with pooled connections)";

#[tonic::async_trait]
impl NodeQueryService for NodeQueries {
    async fn create_magic_login(
        &self,
        request: Request<pb::CreateMagicLoginRequest>,
    ) -> RpcResult<pb::CreateMagicLoginResponse> {
        let id: EnvironmentId = validate::id("environment_id", &request.get_ref().environment_id)?;
        self.0.store.environment(id).await?;
        not_yet(MISSING)
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
        not_yet(MISSING)
    }

    async fn get_disk_usage(
        &self,
        request: Request<pb::GetDiskUsageRequest>,
    ) -> RpcResult<pb::GetDiskUsageResponse> {
        let id: EnvironmentId = validate::id("environment_id", &request.get_ref().environment_id)?;
        self.0.store.environment(id).await?;
        not_yet(MISSING)
    }

    async fn get_word_press_info(
        &self,
        request: Request<pb::GetWordPressInfoRequest>,
    ) -> RpcResult<pb::GetWordPressInfoResponse> {
        let id: EnvironmentId = validate::id("environment_id", &request.get_ref().environment_id)?;
        self.0.store.environment(id).await?;
        not_yet(MISSING)
    }

    async fn get_database_status(
        &self,
        request: Request<pb::GetDatabaseStatusRequest>,
    ) -> RpcResult<pb::GetDatabaseStatusResponse> {
        let id: NodeId = validate::id("node_id", &request.get_ref().node_id)?;
        self.0.store.node(id).await?;
        not_yet(MISSING)
    }
}
