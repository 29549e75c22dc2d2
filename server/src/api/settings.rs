//! SettingsService.

use std::path::PathBuf;

use pressluft_proto::v1 as pb;
use pressluft_proto::v1::settings_service_server::SettingsService;
use tonic::Request;

use super::{RpcResult, audit_change, caller, convert, ok};
use crate::model::NodeId;
use crate::model::validate::{self, Invalid};
use crate::ops;
use crate::s3::S3Target;
use crate::secrets::{Secret, SecretBox};
use crate::store::{SettingsUpdate, Store};

/// Handlers of SettingsService.
pub struct SettingsApi {
    pub store: Store,
    pub secret_box: SecretBox,
    /// Backup targets on private addresses are refused unless set.
    pub allow_private_networks: bool,
    /// The rclone binary that probes a new backup target.
    pub rclone: PathBuf,
}

#[tonic::async_trait]
impl SettingsService for SettingsApi {
    async fn get_settings(
        &self,
        _request: Request<pb::GetSettingsRequest>,
    ) -> RpcResult<pb::GetSettingsResponse> {
        let settings = self.store.settings().await?;
        ok(pb::GetSettingsResponse {
            settings: Some(convert::settings(&settings)),
        })
    }

    async fn update_settings(
        &self,
        request: Request<pb::UpdateSettingsRequest>,
    ) -> RpcResult<pb::UpdateSettingsResponse> {
        let caller = caller(&request)?;
        let r = request.into_inner();
        let update = SettingsUpdate {
            preview_domain: r
                .preview_domain
                .as_deref()
                .map(|d| {
                    if d.is_empty() {
                        Ok(String::new())
                    } else {
                        validate::hostname("preview_domain", d)
                    }
                })
                .transpose()?,
            default_node_id: r
                .default_node_id
                .as_deref()
                .map(|id| validate::optional_id::<NodeId>("default_node_id", id))
                .transpose()?,
            default_php_version: match r.default_php_version.as_deref() {
                None => None,
                Some(v) => Some(validate::php_version(v)?.ok_or(Invalid {
                    field: "default_php_version",
                    message: "must not be empty".into(),
                })?),
            },
            releases_to_keep: r
                .releases_to_keep
                .map(|n| {
                    if (1..=50).contains(&n) {
                        Ok(i64::from(n))
                    } else {
                        Err(Invalid {
                            field: "releases_to_keep",
                            message: "must be between 1 and 50".into(),
                        })
                    }
                })
                .transpose()?,
        };
        let settings = self
            .store
            .update_settings(r.expected_version, &update)
            .await?;
        audit_change(
            &self.store,
            &caller,
            "settings.update",
            "settings",
            String::new(),
            String::new(),
        )
        .await?;
        ok(pb::UpdateSettingsResponse {
            settings: Some(convert::settings(&settings)),
        })
    }

    async fn set_backup_target(
        &self,
        request: Request<pb::SetBackupTargetRequest>,
    ) -> RpcResult<pb::SetBackupTargetResponse> {
        let caller = caller(&request)?;
        let r = request.into_inner();
        let target = S3Target {
            endpoint: validate::http_url("endpoint", &r.endpoint)?,
            bucket: validate::bucket("bucket", &r.bucket)?,
            region: validate::region("region", &r.region)?,
            prefix: validate::key_prefix("path_prefix", &r.path_prefix)?,
            access_key_id: validate::credential("access_key_id", &r.access_key_id)?,
            secret_access_key: Secret::new(validate::credential(
                "secret_access_key",
                &r.secret_access_key,
            )?),
        };
        crate::egress::check_url("endpoint", &target.endpoint, self.allow_private_networks).await?;
        let settings = ops::set_backup_target(
            &self.store,
            &self.secret_box,
            &self.rclone,
            r.expected_version,
            &target,
        )
        .await?;
        audit_change(
            &self.store,
            &caller,
            "set backup target",
            "settings",
            "settings",
            format!("{} bucket {}", target.endpoint, target.bucket),
        )
        .await?;
        ok(pb::SetBackupTargetResponse {
            settings: Some(convert::settings(&settings)),
        })
    }
}
