//! NodeService.

use std::time::Duration;

use pressluft_proto::v1 as pb;
use pressluft_proto::v1::node_service_server::NodeService;
use tonic::Request;

use super::convert::{self, node_status_from};
use super::{RpcResult, audit_change, caller, ok};
use crate::error::Error;
use crate::model::NodeId;
use crate::model::validate::{self, Invalid};
use crate::store::{NewNode, NodeUpdate, PageToken, Store};

/// Handlers of NodeService.
pub struct Nodes {
    pub store: Store,
    pub ssh_connect_timeout: Duration,
    /// The control plane's SSH public key as an authorized_keys line.
    pub control_plane_key: String,
}

#[tonic::async_trait]
impl NodeService for Nodes {
    async fn scan_node_host_key(
        &self,
        request: Request<pb::ScanNodeHostKeyRequest>,
    ) -> RpcResult<pb::ScanNodeHostKeyResponse> {
        let r = request.into_inner();
        let host = validate::host("hostname", &r.hostname)?;
        let port = validate::port("ssh_port", r.ssh_port, 22)?;
        let key = crate::ssh::scan_host_key(&host, port, self.ssh_connect_timeout).await?;
        ok(pb::ScanNodeHostKeyResponse {
            fingerprint: crate::ssh::fingerprint(&key).unwrap_or_default(),
            host_key: key,
        })
    }

    async fn create_node(
        &self,
        request: Request<pb::CreateNodeRequest>,
    ) -> RpcResult<pb::CreateNodeResponse> {
        let caller = caller(&request)?;
        let r = request.into_inner();
        let name = validate::label("name", &r.name, 63)?;
        let hostname = validate::host("hostname", &r.hostname)?;
        let ssh_port = validate::port("ssh_port", r.ssh_port, 22)?;
        let ssh_user = if r.ssh_user.is_empty() {
            "root".to_owned()
        } else {
            validate::unix_user("ssh_user", &r.ssh_user)?
        };
        let public_ip = if !r.public_ip.is_empty() {
            validate::ip("public_ip", &r.public_ip)?
        } else if hostname.parse::<std::net::IpAddr>().is_ok() {
            hostname.clone()
        } else {
            return Err(Invalid {
                field: "public_ip",
                message: "is required when hostname is not an IP address".into(),
            }
            .into());
        };
        let given_key = if r.host_key.is_empty() {
            None
        } else {
            Some(validate::ssh_public_key("host_key", &r.host_key)?)
        };
        // Pin the key the operator confirmed, or the one presented now (trust on first use).
        let host_key = match given_key {
            Some(key) => key,
            None => {
                crate::ssh::scan_host_key(&hostname, ssh_port, self.ssh_connect_timeout).await?
            }
        };
        let node = self
            .store
            .create_node(&NewNode {
                name,
                hostname,
                ssh_port,
                ssh_user,
                public_ip,
                is_local: r.is_local,
                host_key,
            })
            .await?;
        audit_change(
            &self.store,
            &caller,
            "node.create",
            "node",
            node.id.to_string(),
            format!("{} ({}:{})", node.name, node.hostname, node.ssh_port),
        )
        .await?;
        ok(pb::CreateNodeResponse {
            node: Some(convert::node(&node)),
        })
    }

    async fn get_node(
        &self,
        request: Request<pb::GetNodeRequest>,
    ) -> RpcResult<pb::GetNodeResponse> {
        let id: NodeId = validate::id("node_id", &request.get_ref().node_id)?;
        let node = self.store.node(id).await?;
        ok(pb::GetNodeResponse {
            node: Some(convert::node(&node)),
        })
    }

    async fn list_nodes(
        &self,
        request: Request<pb::ListNodesRequest>,
    ) -> RpcResult<pb::ListNodesResponse> {
        let r = request.into_inner();
        let limit = validate::page_size(r.page_size, 50, 500)?;
        let statuses =
            convert::enum_list::<pb::NodeStatus, _>("statuses", &r.statuses, node_status_from)?;
        let page = self
            .store
            .list_nodes(&statuses, limit, PageToken::decode(&r.page_token)?)
            .await?;
        ok(pb::ListNodesResponse {
            nodes: page.items.iter().map(convert::node).collect(),
            next_page_token: page.next_page_token,
        })
    }

    async fn update_node(
        &self,
        request: Request<pb::UpdateNodeRequest>,
    ) -> RpcResult<pb::UpdateNodeResponse> {
        let caller = caller(&request)?;
        let r = request.into_inner();
        let id: NodeId = validate::id("node_id", &r.node_id)?;
        let update = NodeUpdate {
            name: r
                .name
                .as_deref()
                .map(|n| validate::label("name", n, 63))
                .transpose()?,
            ssh_port: r
                .ssh_port
                .map(|p| validate::port("ssh_port", p, 22))
                .transpose()?,
            ssh_user: r
                .ssh_user
                .as_deref()
                .map(|u| validate::unix_user("ssh_user", u))
                .transpose()?,
            public_ip: r
                .public_ip
                .as_deref()
                .map(|ip| validate::ip("public_ip", ip))
                .transpose()?,
            host_key: r
                .host_key
                .as_deref()
                .map(|k| validate::ssh_public_key("host_key", k))
                .transpose()?,
        };
        let node = self
            .store
            .update_node(id, r.expected_version, &update)
            .await?;
        audit_change(
            &self.store,
            &caller,
            if update.host_key.is_some() {
                "node.repin_host_key"
            } else {
                "node.update"
            },
            "node",
            id.to_string(),
            String::new(),
        )
        .await?;
        ok(pb::UpdateNodeResponse {
            node: Some(convert::node(&node)),
        })
    }

    async fn provision_node(
        &self,
        request: Request<pb::ProvisionNodeRequest>,
    ) -> RpcResult<pb::ProvisionNodeResponse> {
        let caller = caller(&request)?;
        let r = request.into_inner();
        let id: NodeId = validate::id("node_id", &r.node_id)?;
        let job = self
            .store
            .enqueue_provision(id, r.expected_version, &caller.actor())
            .await?;
        ok(pb::ProvisionNodeResponse {
            job: Some(convert::job(&job)),
        })
    }

    async fn decommission_node(
        &self,
        request: Request<pb::DecommissionNodeRequest>,
    ) -> RpcResult<pb::DecommissionNodeResponse> {
        let caller = caller(&request)?;
        let r = request.into_inner();
        let id: NodeId = validate::id("node_id", &r.node_id)?;
        let node = self.store.decommission_node(id, r.expected_version).await?;
        audit_change(
            &self.store,
            &caller,
            "node.decommission",
            "node",
            id.to_string(),
            node.name.clone(),
        )
        .await?;
        ok(pb::DecommissionNodeResponse {
            node: Some(convert::node(&node)),
        })
    }

    async fn get_control_plane_key(
        &self,
        _request: Request<pb::GetControlPlaneKeyRequest>,
    ) -> RpcResult<pb::GetControlPlaneKeyResponse> {
        let key = &self.control_plane_key;
        let fingerprint = crate::ssh::fingerprint(key)
            .ok_or_else(|| Error::internal("the control plane's public key does not parse"))?;
        ok(pb::GetControlPlaneKeyResponse {
            public_key: key.clone(),
            fingerprint,
        })
    }
}
