//! AuditService.

use pressluft_proto::v1 as pb;
use pressluft_proto::v1::audit_service_server::AuditService;
use tonic::Request;

use super::{RpcResult, convert, ok};
use crate::model::validate;
use crate::store::{PageToken, Store};

/// Handlers of AuditService.
pub struct Audit {
    pub store: Store,
}

#[tonic::async_trait]
impl AuditService for Audit {
    async fn list_audit_events(
        &self,
        request: Request<pb::ListAuditEventsRequest>,
    ) -> RpcResult<pb::ListAuditEventsResponse> {
        let r = request.into_inner();
        let limit = validate::page_size(r.page_size, 50, 500)?;
        let resource_type = (!r.resource_type.is_empty())
            .then(|| {
                validate::label("resource_type", &r.resource_type.replace('_', "-"), 40)
                    .map(|_| r.resource_type.clone())
            })
            .transpose()?;
        let resource_id = (!r.resource_id.is_empty())
            .then(|| validate::display_text("resource_id", &r.resource_id, 100))
            .transpose()?;
        let page = self
            .store
            .list_audit(
                resource_type.as_deref(),
                resource_id.as_deref(),
                limit,
                PageToken::decode(&r.page_token)?,
            )
            .await?;
        ok(pb::ListAuditEventsResponse {
            events: page.items.iter().map(convert::audit_event).collect(),
            next_page_token: page.next_page_token,
        })
    }
}
