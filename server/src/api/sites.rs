//! SiteService: sites, environments, releases, backups, domains, caches and promotion.

use std::sync::Arc;

use futures::StreamExt as _;
use pressluft_proto::v1 as pb;
use pressluft_proto::v1::site_service_server::SiteService;
use tonic::{Request, Status, Streaming};

use super::convert::{self, backup_scope_from, env_kind_from};
use super::{RpcResult, audit_change, caller, not_yet, ok};
use crate::error::Error;
use crate::model::drift::Preset;
use crate::model::job::{
    DomainAdd, DomainRemove, EnvCacheToggle, EnvDelete, EnvDeploy, EnvUpdate, HealthCheck,
    JobParams, PreBackup, ReleaseRollback, ReleaseSource,
};
use crate::model::validate::{self, Invalid};
use crate::model::{
    BackupId, BackupScope, BackupTrigger, DomainId, EnvironmentId, EnvironmentKind, NodeId,
    ReleaseId, SiteId,
};
use crate::secrets::SecretBox;
use crate::store::{JobRecord, NewJob, PageToken, Store};
use crate::{domains, ops, uploads};

/// Handlers of SiteService.
pub struct Sites {
    pub store: Store,
    pub secret_box: SecretBox,
    pub limits: SiteLimits,
    /// Upload bytes each user holds while uploads arrive.
    pub upload_quota: Arc<uploads::Quota>,
}

/// What the server's configuration sets for site operations.
#[derive(Debug, Clone)]
pub struct SiteLimits {
    /// Where uploads and local archive sources live.
    pub data_dir: std::path::PathBuf,
    /// Archive URLs on private addresses are refused unless set.
    pub allow_private_networks: bool,
    pub max_upload_bytes: u64,
    pub upload_quota_bytes: u64,
    pub min_backup_interval: std::time::Duration,
    pub min_backup_retention: std::time::Duration,
}

fn invalid(field: &'static str, message: &str) -> Status {
    Invalid {
        field,
        message: message.to_owned(),
    }
    .into()
}

impl Sites {
    /// Queues a job on one environment (the store completes its target: site and node).
    async fn enqueue(
        &self,
        env_id: EnvironmentId,
        expected_version: i64,
        params: JobParams,
        actor: String,
        what: &str,
    ) -> Result<JobRecord, Status> {
        let env = self.store.environment(env_id).await?;
        let site = self.store.site(env.site_id).await?;
        let summary = format!("{what} {}/{}", site.slug, env.name);
        Ok(self
            .store
            .enqueue_environment_job(
                env_id,
                expected_version,
                NewJob::new(params, summary, &actor),
            )
            .await?)
    }
}

async fn release_source(
    config: &SiteLimits,
    source: Option<pb::ReleaseSource>,
) -> Result<(String, ReleaseSource), Status> {
    use pb::release_source::Source;
    let data_dir = &config.data_dir;
    let allow_private = config.allow_private_networks;
    match source.and_then(|s| s.source) {
        None => Err(invalid(
            "source",
            "is required: wordpress, git, archive or upload",
        )),
        Some(Source::Wordpress(w)) => {
            let version = validate::wordpress_version("source.wordpress.version", &w.version)?;
            Ok((
                format!("wordpress {version}"),
                ReleaseSource::Wordpress { version },
            ))
        }
        Some(Source::Git(g)) => {
            let url = validate::git_url("source.git.url", &g.url)?;
            let r#ref = validate::git_ref("source.git.ref", &g.r#ref)?;
            crate::egress::check_url("source.git.url", &url, allow_private).await?;
            Ok((
                format!(
                    "git {url}@{}",
                    if r#ref.is_empty() { "HEAD" } else { &r#ref }
                ),
                ReleaseSource::Git {
                    url,
                    git_ref: r#ref,
                },
            ))
        }
        Some(Source::Archive(a)) => {
            let url = validate::http_url("source.archive.url", &a.url)?;
            let sha256 = validate::optional_sha256("source.archive.sha256", &a.sha256)?;
            crate::egress::check_url("source.archive.url", &url, allow_private).await?;
            Ok((
                format!("archive {url}"),
                ReleaseSource::Archive { url, sha256 },
            ))
        }
        Some(Source::Upload(u)) => {
            let id: uuid::Uuid = validate::id("source.upload.upload_id", &u.upload_id)?;
            let upload = uploads::find(data_dir, id).await?;
            Ok((
                format!("upload {}", upload.file_name),
                ReleaseSource::Upload {
                    upload_id: id,
                    sha256: upload.sha256,
                    file_name: upload.file_name,
                },
            ))
        }
    }
}

#[tonic::async_trait]
impl SiteService for Sites {
    async fn create_site(
        &self,
        request: Request<pb::CreateSiteRequest>,
    ) -> RpcResult<pb::CreateSiteResponse> {
        let caller = caller(&request)?;
        let r = request.into_inner();
        let input = ops::CreateSite {
            name: validate::display_text("name", &r.name, 100)?,
            slug: validate::slug(&r.slug)?,
            node_id: validate::optional_id("node_id", &r.node_id)?,
            php_version: validate::php_version(&r.php_version)?,
            wordpress_version: validate::wordpress_version(
                "wordpress_version",
                &r.wordpress_version,
            )?,
            title: if r.title.is_empty() {
                None
            } else {
                Some(validate::display_text("title", &r.title, 200)?)
            },
            admin_email: if r.admin_email.is_empty() {
                None
            } else {
                Some(validate::email("admin_email", &r.admin_email)?)
            },
            admin_user: if r.admin_user.is_empty() {
                "admin".to_owned()
            } else {
                validate::unix_user("admin_user", &r.admin_user)?
            },
        };
        let (site, env, job) = ops::create_site(
            &self.store,
            &self.secret_box,
            &caller.email,
            &caller.actor(),
            input,
        )
        .await?;
        ok(pb::CreateSiteResponse {
            site: Some(convert::site(&site, std::slice::from_ref(&env))),
            environment: Some(convert::environment(&env)),
            job: Some(convert::job(&job)),
        })
    }

    async fn get_site(
        &self,
        request: Request<pb::GetSiteRequest>,
    ) -> RpcResult<pb::GetSiteResponse> {
        let id: SiteId = validate::id("site_id", &request.get_ref().site_id)?;
        let site = self.store.site(id).await?;
        let envs = self.store.environments_of_sites(&[id], false).await?;
        ok(pb::GetSiteResponse {
            site: Some(convert::site(&site, &envs)),
        })
    }

    async fn list_sites(
        &self,
        request: Request<pb::ListSitesRequest>,
    ) -> RpcResult<pb::ListSitesResponse> {
        let r = request.into_inner();
        let limit = validate::page_size(r.page_size, 50, 500)?;
        let page = self
            .store
            .list_sites(r.show_deleted, limit, PageToken::decode(&r.page_token)?)
            .await?;
        let ids: Vec<SiteId> = page.items.iter().map(|s| s.id).collect();
        let envs = self
            .store
            .environments_of_sites(&ids, r.show_deleted)
            .await?;
        ok(pb::ListSitesResponse {
            sites: page.items.iter().map(|s| convert::site(s, &envs)).collect(),
            next_page_token: page.next_page_token,
        })
    }

    async fn update_site(
        &self,
        request: Request<pb::UpdateSiteRequest>,
    ) -> RpcResult<pb::UpdateSiteResponse> {
        let r = request.into_inner();
        let id: SiteId = validate::id("site_id", &r.site_id)?;
        let name = r
            .name
            .as_deref()
            .map(|n| validate::display_text("name", n, 100))
            .transpose()?;
        let site = self
            .store
            .update_site(id, r.expected_version, name.as_deref())
            .await?;
        let envs = self.store.environments_of_sites(&[id], false).await?;
        ok(pb::UpdateSiteResponse {
            site: Some(convert::site(&site, &envs)),
        })
    }

    async fn delete_site(
        &self,
        request: Request<pb::DeleteSiteRequest>,
    ) -> RpcResult<pb::DeleteSiteResponse> {
        let caller = caller(&request)?;
        let r = request.into_inner();
        let id: SiteId = validate::id("site_id", &r.site_id)?;
        let job = self
            .store
            .enqueue_site_delete(id, r.expected_version, &caller.actor())
            .await?;
        ok(pb::DeleteSiteResponse {
            job: Some(convert::job(&job)),
        })
    }

    async fn import_site(
        &self,
        request: Request<pb::ImportSiteRequest>,
    ) -> RpcResult<pb::ImportSiteResponse> {
        let r = request.into_inner();
        validate::slug(&r.slug)?;
        validate::http_url("files_url", &r.files_url)?;
        validate::http_url("database_url", &r.database_url)?;
        not_yet("ImportSite lands with the site_import playbook (issue: sites on a real node)")
    }

    async fn create_environment(
        &self,
        request: Request<pb::CreateEnvironmentRequest>,
    ) -> RpcResult<pb::CreateEnvironmentResponse> {
        let caller = caller(&request)?;
        let r = request.into_inner();
        let site_id: SiteId = validate::id("site_id", &r.site_id)?;
        let source: EnvironmentId =
            validate::id("source_environment_id", &r.source_environment_id)?;
        let name = validate::label("name", &r.name, 20)?;
        let kind = pb::EnvironmentKind::try_from(r.kind)
            .ok()
            .and_then(env_kind_from)
            .filter(|k| *k != EnvironmentKind::Production)
            .ok_or_else(|| invalid("kind", "must be staging or clone"))?;
        let node: Option<NodeId> = validate::optional_id("node_id", &r.node_id)?;
        let input = ops::CreateEnvironment {
            site_id,
            source_id: source,
            name,
            kind,
            node_id: node,
        };
        let (env, job) =
            ops::create_environment(&self.store, &self.secret_box, &caller.actor(), input).await?;
        ok(pb::CreateEnvironmentResponse {
            environment: Some(convert::environment(&env)),
            job: Some(convert::job(&job)),
        })
    }

    async fn get_environment(
        &self,
        request: Request<pb::GetEnvironmentRequest>,
    ) -> RpcResult<pb::GetEnvironmentResponse> {
        let id: EnvironmentId = validate::id("environment_id", &request.get_ref().environment_id)?;
        let env = self.store.environment(id).await?;
        ok(pb::GetEnvironmentResponse {
            environment: Some(convert::environment(&env)),
        })
    }

    async fn list_environments(
        &self,
        request: Request<pb::ListEnvironmentsRequest>,
    ) -> RpcResult<pb::ListEnvironmentsResponse> {
        let r = request.into_inner();
        let site: SiteId = validate::id("site_id", &r.site_id)?;
        let limit = validate::page_size(r.page_size, 50, 500)?;
        self.store.site(site).await?;
        let page = self
            .store
            .list_environments(site, false, limit, PageToken::decode(&r.page_token)?)
            .await?;
        ok(pb::ListEnvironmentsResponse {
            environments: page.items.iter().map(convert::environment).collect(),
            next_page_token: page.next_page_token,
        })
    }

    async fn delete_environment(
        &self,
        request: Request<pb::DeleteEnvironmentRequest>,
    ) -> RpcResult<pb::DeleteEnvironmentResponse> {
        let caller = caller(&request)?;
        let r = request.into_inner();
        let id: EnvironmentId = validate::id("environment_id", &r.environment_id)?;
        let job = self
            .enqueue(
                id,
                r.expected_version,
                JobParams::EnvDelete(EnvDelete::default()),
                caller.actor(),
                "delete",
            )
            .await?;
        ok(pb::DeleteEnvironmentResponse {
            job: Some(convert::job(&job)),
        })
    }

    async fn reset_environment(
        &self,
        request: Request<pb::ResetEnvironmentRequest>,
    ) -> RpcResult<pb::ResetEnvironmentResponse> {
        let caller = caller(&request)?;
        let r = request.into_inner();
        let id: EnvironmentId = validate::id("environment_id", &r.environment_id)?;
        let job = self
            .enqueue(
                id,
                r.expected_version,
                JobParams::HealthCheck(HealthCheck { reset: true }),
                caller.actor(),
                "re-validate",
            )
            .await?;
        ok(pb::ResetEnvironmentResponse {
            job: Some(convert::job(&job)),
        })
    }

    async fn deploy_environment(
        &self,
        request: Request<pb::DeployEnvironmentRequest>,
    ) -> RpcResult<pb::DeployEnvironmentResponse> {
        let caller = caller(&request)?;
        let r = request.into_inner();
        let id: EnvironmentId = validate::id("environment_id", &r.environment_id)?;
        let (what, source) = release_source(&self.limits, r.source).await?;
        let job = self
            .enqueue(
                id,
                r.expected_version,
                JobParams::EnvDeploy(EnvDeploy { source }),
                caller.actor(),
                &format!("deploy {what} to"),
            )
            .await?;
        ok(pb::DeployEnvironmentResponse {
            job: Some(convert::job(&job)),
        })
    }

    async fn rollback_environment(
        &self,
        request: Request<pb::RollbackEnvironmentRequest>,
    ) -> RpcResult<pb::RollbackEnvironmentResponse> {
        let caller = caller(&request)?;
        let r = request.into_inner();
        let id: EnvironmentId = validate::id("environment_id", &r.environment_id)?;
        let release: Option<ReleaseId> = validate::optional_id("release_id", &r.release_id)?;
        let target = self.store.rollback_target(id, release).await?;
        let job = self
            .enqueue(
                id,
                r.expected_version,
                JobParams::ReleaseRollback(ReleaseRollback {
                    release_id: target.id,
                    release_name: target.name.clone(),
                }),
                caller.actor(),
                &format!("roll back to {} on", target.name),
            )
            .await?;
        ok(pb::RollbackEnvironmentResponse {
            job: Some(convert::job(&job)),
        })
    }

    async fn list_releases(
        &self,
        request: Request<pb::ListReleasesRequest>,
    ) -> RpcResult<pb::ListReleasesResponse> {
        let r = request.into_inner();
        let id: EnvironmentId = validate::id("environment_id", &r.environment_id)?;
        let limit = validate::page_size(r.page_size, 50, 500)?;
        let env = self.store.environment(id).await?;
        let page = self
            .store
            .list_releases(id, limit, PageToken::decode(&r.page_token)?)
            .await?;
        ok(pb::ListReleasesResponse {
            releases: page
                .items
                .iter()
                .map(|x| convert::release(x, env.current_release_id))
                .collect(),
            next_page_token: page.next_page_token,
        })
    }

    async fn upload_archive(
        &self,
        request: Request<Streaming<pb::UploadArchiveRequest>>,
    ) -> RpcResult<pb::UploadArchiveResponse> {
        use pb::upload_archive_request::Part;
        let caller = caller(&request)?;
        let mut stream = request.into_inner();
        let Some(Part::Metadata(meta)) = stream.message().await?.and_then(|m| m.part) else {
            return Err(invalid(
                "metadata",
                "the first message must carry the metadata",
            ));
        };
        let file_name = validate::display_text("metadata.file_name", &meta.file_name, 200)?;
        let declared = u64::try_from(meta.size_bytes).unwrap_or(0);
        let upload = uploads::receive(
            &self.limits.data_dir,
            &file_name,
            declared,
            uploads::Limits {
                max_bytes: self.limits.max_upload_bytes,
                quota_bytes: self.limits.upload_quota_bytes,
            },
            &self.upload_quota,
            &caller.actor(),
            stream.map(|message| match message {
                Ok(pb::UploadArchiveRequest {
                    part: Some(Part::Chunk(bytes)),
                }) => Ok(bytes),
                Ok(_) => Err(Error::Invalid(Invalid {
                    field: "chunk",
                    message: "only the first message carries metadata".into(),
                })),
                Err(status) => Err(Error::Invalid(Invalid {
                    field: "chunk",
                    message: format!("the upload stream broke: {}", status.message()),
                })),
            }),
        )
        .await?;
        audit_change(
            &self.store,
            &caller,
            "upload archive",
            "upload",
            &upload.id,
            format!("{file_name}, {} bytes", upload.size_bytes),
        )
        .await?;
        ok(pb::UploadArchiveResponse {
            upload_id: upload.id,
            sha256: upload.sha256,
            size_bytes: i64::try_from(upload.size_bytes).unwrap_or(i64::MAX),
        })
    }

    async fn update_word_press(
        &self,
        request: Request<pb::UpdateWordPressRequest>,
    ) -> RpcResult<pb::UpdateWordPressResponse> {
        let caller = caller(&request)?;
        let r = request.into_inner();
        let id: EnvironmentId = validate::id("environment_id", &r.environment_id)?;
        let core = if r.core_version.is_empty() {
            None
        } else {
            Some(validate::wordpress_version(
                "core_version",
                &r.core_version,
            )?)
        };
        let plugins = r
            .plugins
            .iter()
            .map(|p| validate::wp_component("plugins", p))
            .collect::<Result<Vec<_>, _>>()?;
        let themes = r
            .themes
            .iter()
            .map(|t| validate::wp_component("themes", t))
            .collect::<Result<Vec<_>, _>>()?;
        if core.is_none()
            && plugins.is_empty()
            && themes.is_empty()
            && !r.all_plugins
            && !r.all_themes
        {
            return Err(invalid(
                "core_version",
                "nothing to update: name a core version, plugins or themes",
            ));
        }
        let params = JobParams::EnvUpdate(EnvUpdate {
            core_version: core.unwrap_or_default(),
            plugins,
            all_plugins: r.all_plugins,
            themes,
            all_themes: r.all_themes,
            pre_backup: PreBackup::new(BackupTrigger::PreUpdate),
        });
        let job = self
            .enqueue(
                id,
                r.expected_version,
                params,
                caller.actor(),
                "update WordPress of",
            )
            .await?;
        ok(pb::UpdateWordPressResponse {
            job: Some(convert::job(&job)),
        })
    }

    async fn create_backup(
        &self,
        request: Request<pb::CreateBackupRequest>,
    ) -> RpcResult<pb::CreateBackupResponse> {
        let caller = caller(&request)?;
        let r = request.into_inner();
        let id: EnvironmentId = validate::id("environment_id", &r.environment_id)?;
        let scope = scope(r.scope)?;
        let (backup, job) = self
            .store
            .enqueue_backup(id, scope, BackupTrigger::Manual, &caller.actor())
            .await?;
        ok(pb::CreateBackupResponse {
            backup: Some(convert::backup(&backup)),
            job: Some(convert::job(&job)),
        })
    }

    async fn get_backup(
        &self,
        request: Request<pb::GetBackupRequest>,
    ) -> RpcResult<pb::GetBackupResponse> {
        let id: BackupId = validate::id("backup_id", &request.get_ref().backup_id)?;
        let backup = self.store.backup(id).await?;
        ok(pb::GetBackupResponse {
            backup: Some(convert::backup(&backup)),
        })
    }

    async fn list_backups(
        &self,
        request: Request<pb::ListBackupsRequest>,
    ) -> RpcResult<pb::ListBackupsResponse> {
        let r = request.into_inner();
        let env: Option<EnvironmentId> =
            validate::optional_id("environment_id", &r.environment_id)?;
        let site: Option<SiteId> = validate::optional_id("site_id", &r.site_id)?;
        if env.is_none() && site.is_none() {
            return Err(invalid("environment_id", "set environment_id or site_id"));
        }
        let limit = validate::page_size(r.page_size, 50, 500)?;
        let page = self
            .store
            .list_backups(env, site, limit, PageToken::decode(&r.page_token)?)
            .await?;
        ok(pb::ListBackupsResponse {
            backups: page.items.iter().map(convert::backup).collect(),
            next_page_token: page.next_page_token,
        })
    }

    async fn restore_backup(
        &self,
        request: Request<pb::RestoreBackupRequest>,
    ) -> RpcResult<pb::RestoreBackupResponse> {
        let caller = caller(&request)?;
        let r = request.into_inner();
        let env: EnvironmentId = validate::id("environment_id", &r.environment_id)?;
        let backup: BackupId = validate::id("backup_id", &r.backup_id)?;
        let job = ops::restore_backup(
            &self.store,
            &caller.actor(),
            env,
            r.expected_version,
            backup,
            r.allow_from_production,
        )
        .await?;
        ok(pb::RestoreBackupResponse {
            job: Some(convert::job(&job)),
        })
    }

    async fn update_backup_schedule(
        &self,
        request: Request<pb::UpdateBackupScheduleRequest>,
    ) -> RpcResult<pb::UpdateBackupScheduleResponse> {
        let r = request.into_inner();
        let id: EnvironmentId = validate::id("environment_id", &r.environment_id)?;
        let schedule = r
            .schedule
            .ok_or_else(|| invalid("schedule", "is required"))?;
        let interval = schedule.interval.map_or(0, |d| d.seconds);
        let retention = schedule.retention.map_or(0, |d| d.seconds);
        let floor = |d: std::time::Duration| i64::try_from(d.as_secs()).unwrap_or(i64::MAX);
        let (min_interval, min_retention) = (
            floor(self.limits.min_backup_interval),
            floor(self.limits.min_backup_retention),
        );
        crate::model::guard::backup_schedule_bounds(
            interval,
            retention,
            min_interval,
            min_retention,
        )?;
        let scope = scope(schedule.scope)?;
        let env = self
            .store
            .update_backup_schedule(
                id,
                r.expected_version,
                schedule.enabled,
                interval,
                scope,
                retention,
            )
            .await?;
        ok(pb::UpdateBackupScheduleResponse {
            environment: Some(convert::environment(&env)),
        })
    }

    async fn check_drift(
        &self,
        request: Request<pb::CheckDriftRequest>,
    ) -> RpcResult<pb::CheckDriftResponse> {
        let caller = caller(&request)?;
        let r = request.into_inner();
        let id: EnvironmentId = validate::id("environment_id", &r.environment_id)?;
        let preset = preset(r.preset)?;
        let job = ops::check_drift(&self.store, &caller.actor(), id, preset).await?;
        ok(pb::CheckDriftResponse {
            job: Some(convert::job(&job)),
        })
    }

    async fn get_drift_report(
        &self,
        request: Request<pb::GetDriftReportRequest>,
    ) -> RpcResult<pb::GetDriftReportResponse> {
        let id: EnvironmentId = validate::id("environment_id", &request.get_ref().environment_id)?;
        self.store.environment(id).await?;
        let report = self.store.latest_drift_report(id).await?;
        ok(pb::GetDriftReportResponse {
            report: Some(convert::drift_report(id, report.as_ref())),
        })
    }

    async fn promote_environment(
        &self,
        request: Request<pb::PromoteEnvironmentRequest>,
    ) -> RpcResult<pb::PromoteEnvironmentResponse> {
        let caller = caller(&request)?;
        let r = request.into_inner();
        let source: EnvironmentId =
            validate::id("source_environment_id", &r.source_environment_id)?;
        let preset = preset(r.preset)?;
        let job = ops::promote(
            &self.store,
            &caller.actor(),
            source,
            r.expected_version,
            preset,
        )
        .await?;
        ok(pb::PromoteEnvironmentResponse {
            job: Some(convert::job(&job)),
        })
    }

    async fn add_domain(
        &self,
        request: Request<pb::AddDomainRequest>,
    ) -> RpcResult<pb::AddDomainResponse> {
        let caller = caller(&request)?;
        let r = request.into_inner();
        let id: EnvironmentId = validate::id("environment_id", &r.environment_id)?;
        let hostname = validate::domain("hostname", &r.hostname)?;
        let env = self.store.environment(id).await?;
        if env.preview_url.ends_with(&format!("//{hostname}")) {
            return Err(invalid("hostname", "is the environment's preview host"));
        }
        let node = self.store.node(env.node_id).await?;
        let aliases = if r.skip_dns_check {
            Vec::new()
        } else {
            domains::check_dns(&hostname, &node.public_ip).await?;
            // The www/apex counterpart joins the certificate (and redirects) when it points
            // here too.
            match domains::alias_candidate(&hostname) {
                Some(alias) if domains::resolves_to(&alias, &node.public_ip).await => vec![alias],
                _ => Vec::new(),
            }
        };
        let what = format!("add domain {hostname} to");
        let params = JobParams::DomainAdd(DomainAdd {
            hostname,
            aliases,
            make_primary: r.make_primary,
            skip_dns_check: r.skip_dns_check,
            domain_id: None,
        });
        let job = self
            .enqueue(id, r.expected_version, params, caller.actor(), &what)
            .await?;
        // The store decided the domain row when it queued the job.
        let domain_id = job
            .params()?
            .domain()
            .ok_or_else(|| Error::internal("a domain_add job without its domain"))?;
        let domain = self.store.domain(domain_id).await?;
        ok(pb::AddDomainResponse {
            domain: Some(convert::domain(&domain)),
            job: Some(convert::job(&job)),
        })
    }

    async fn remove_domain(
        &self,
        request: Request<pb::RemoveDomainRequest>,
    ) -> RpcResult<pb::RemoveDomainResponse> {
        let caller = caller(&request)?;
        let r = request.into_inner();
        let id: DomainId = validate::id("domain_id", &r.domain_id)?;
        let domain = self.store.domain(id).await?;
        let job = self
            .enqueue(
                domain.environment_id,
                r.expected_version,
                JobParams::DomainRemove(DomainRemove::new(id)),
                caller.actor(),
                &format!("remove domain {} from", domain.hostname),
            )
            .await?;
        ok(pb::RemoveDomainResponse {
            job: Some(convert::job(&job)),
        })
    }

    async fn list_domains(
        &self,
        request: Request<pb::ListDomainsRequest>,
    ) -> RpcResult<pb::ListDomainsResponse> {
        let r = request.into_inner();
        let id: EnvironmentId = validate::id("environment_id", &r.environment_id)?;
        let limit = validate::page_size(r.page_size, 50, 500)?;
        self.store.environment(id).await?;
        let page = self
            .store
            .list_domains(id, limit, PageToken::decode(&r.page_token)?)
            .await?;
        ok(pb::ListDomainsResponse {
            domains: page.items.iter().map(convert::domain).collect(),
            next_page_token: page.next_page_token,
        })
    }

    async fn update_cache_settings(
        &self,
        request: Request<pb::UpdateCacheSettingsRequest>,
    ) -> RpcResult<pb::UpdateCacheSettingsResponse> {
        let caller = caller(&request)?;
        let r = request.into_inner();
        let id: EnvironmentId = validate::id("environment_id", &r.environment_id)?;
        if r.page_cache.is_none() && r.object_cache.is_none() {
            return Err(invalid("page_cache", "set page_cache or object_cache"));
        }
        let params = JobParams::EnvCacheToggle(EnvCacheToggle {
            page_cache: r.page_cache,
            object_cache: r.object_cache,
        });
        let job = self
            .enqueue(
                id,
                r.expected_version,
                params,
                caller.actor(),
                "change caches of",
            )
            .await?;
        ok(pb::UpdateCacheSettingsResponse {
            job: Some(convert::job(&job)),
        })
    }

    async fn purge_cache(
        &self,
        request: Request<pb::PurgeCacheRequest>,
    ) -> RpcResult<pb::PurgeCacheResponse> {
        let caller = caller(&request)?;
        let id: EnvironmentId = validate::id("environment_id", &request.get_ref().environment_id)?;
        let job = self
            .enqueue(
                id,
                0,
                JobParams::CachePurge {},
                caller.actor(),
                "purge caches of",
            )
            .await?;
        ok(pb::PurgeCacheResponse {
            job: Some(convert::job(&job)),
        })
    }
}

fn preset(value: i32) -> Result<Preset, Status> {
    match pb::PromotionPreset::try_from(value) {
        Ok(pb::PromotionPreset::ContentProtect) => Ok(Preset::ContentProtect),
        Ok(pb::PromotionPreset::CommerceProtect) => Ok(Preset::CommerceProtect),
        _ => Err(invalid(
            "preset",
            "must be content-protect or commerce-protect",
        )),
    }
}

fn scope(value: i32) -> Result<BackupScope, Status> {
    pb::BackupScope::try_from(value)
        .ok()
        .and_then(backup_scope_from)
        .ok_or_else(|| invalid("scope", "must be db, files or full"))
}
