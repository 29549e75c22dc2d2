//! Network work, always in Tokio tasks that report through the UI channel: the UI never
//! waits for the server.

use std::time::Duration;

use pressluft_client::{AuthChannel, Clients};
use pressluft_proto::v1::job_service_client::JobServiceClient;
use pressluft_proto::v1::{
    ArchiveSource, CancelJobRequest, CreateBackupRequest, CreateEnvironmentRequest,
    CreateMagicLoginRequest, DeployEnvironmentRequest, EnvironmentKind, EnvironmentStatus,
    GetDiskUsageRequest, GetDriftReportRequest, GitSource, ListAuditEventsRequest,
    ListBackupsRequest, ListDomainsRequest, ListJobsRequest, ListNodesRequest, ListReleasesRequest,
    ListSitesRequest, PromoteEnvironmentRequest, PromotionPreset, ProvisionNodeRequest,
    ReleaseSource, RestoreBackupRequest, RollbackEnvironmentRequest, Site, WatchJobRequest,
    WatchJobsRequest, WordPressSource, release_source,
};

use crate::app::{Command, Source};
use crate::event::{Event, EventSender, Outcome, Update};

/// Nodes and sites are listed completely, up to this many pages.
const MAX_PAGES: usize = 20;
const PAGE_SIZE: i32 = 500;
/// Jobs shown at start: the newest ones; the watch stream adds the rest as they change.
pub const JOBS_PAGE_SIZE: i32 = 200;

const BACKOFF_START: Duration = Duration::from_secs(1);
const BACKOFF_MAX: Duration = Duration::from_secs(30);

fn message(status: tonic::Status) -> String {
    pressluft_client::Error::from(status).to_string()
}

/// Every item of a paged list, following `next_page_token` for at most [`MAX_PAGES`] pages.
async fn all_pages<T, F, Fut>(mut fetch: F) -> Result<Vec<T>, String>
where
    F: FnMut(String) -> Fut,
    Fut: std::future::Future<Output = Result<(Vec<T>, String), tonic::Status>>,
{
    let mut items = Vec::new();
    let mut page_token = String::new();
    for _ in 0..MAX_PAGES {
        let (page, next) = fetch(page_token).await.map_err(message)?;
        items.extend(page);
        if next.is_empty() {
            break;
        }
        page_token = next;
    }
    Ok(items)
}

/// Starts loading nodes, sites and jobs; each result arrives as its own [`Update`].
pub fn reload(clients: &Clients, tx: &EventSender) {
    let (node, tx_nodes) = (clients.node.clone(), tx.clone());
    tokio::spawn(async move {
        let nodes = all_pages(|page_token| {
            let mut node = node.clone();
            async move {
                let request = ListNodesRequest {
                    page_size: PAGE_SIZE,
                    page_token,
                    statuses: Vec::new(),
                };
                let page = node.list_nodes(request).await?.into_inner();
                Ok((page.nodes, page.next_page_token))
            }
        })
        .await;
        let _ = tx_nodes.send(Event::Server(Update::Nodes(nodes)));
    });

    let (site, tx_sites) = (clients.site.clone(), tx.clone());
    let site_query = clients.node_query.clone();
    tokio::spawn(async move {
        let sites = all_pages(|page_token| {
            let mut site = site.clone();
            async move {
                let request = ListSitesRequest {
                    page_size: PAGE_SIZE,
                    page_token,
                    show_deleted: false,
                };
                let page = site.list_sites(request).await?.into_inner();
                Ok((page.sites, page.next_page_token))
            }
        })
        .await;
        if let Ok(sites) = &sites {
            node_free_space(&site_query, sites, &tx_sites);
        }
        let _ = tx_sites.send(Event::Server(Update::Sites(sites)));
    });

    let (mut job, tx_jobs) = (clients.job.clone(), tx.clone());
    tokio::spawn(async move {
        let request = ListJobsRequest {
            page_size: JOBS_PAGE_SIZE,
            ..ListJobsRequest::default()
        };
        let result = job
            .list_jobs(request)
            .await
            .map(|page| page.into_inner().jobs)
            .map_err(message);
        let _ = tx_jobs.send(Event::Server(Update::Jobs(result)));
    });
}

/// Follows `WatchJobs` forever, reconnecting with exponential backoff; ends when the UI
/// channel is closed.
pub async fn watch_jobs(mut client: JobServiceClient<AuthChannel>, tx: EventSender) {
    let mut backoff = BACKOFF_START;
    loop {
        let error = match client.watch_jobs(WatchJobsRequest::default()).await {
            Ok(response) => {
                backoff = BACKOFF_START;
                if tx.send(Event::Server(Update::WatchUp)).is_err() {
                    return;
                }
                let mut stream = response.into_inner();
                loop {
                    match stream.message().await {
                        Ok(Some(change)) => {
                            let Some(job) = change.job else { continue };
                            if tx
                                .send(Event::Server(Update::JobChanged(Box::new(job))))
                                .is_err()
                            {
                                return;
                            }
                        }
                        Ok(None) => break "the server closed the job stream".to_owned(),
                        Err(status) => break message(status),
                    }
                }
            }
            Err(status) => message(status),
        };
        let down = Update::WatchDown {
            error,
            retry_in: backoff,
        };
        if tx.send(Event::Server(down)).is_err() {
            return;
        }
        tokio::time::sleep(backoff).await;
        backoff = (backoff * 2).min(BACKOFF_MAX);
    }
}

/// Each node's free disk space, read through one of its active environments (the query is
/// per environment; every environment of a node reports the same free space).
fn node_free_space(
    query: &pressluft_proto::v1::node_query_service_client::NodeQueryServiceClient<AuthChannel>,
    sites: &[Site],
    tx: &EventSender,
) {
    let mut seen = std::collections::HashSet::new();
    for env in sites.iter().flat_map(|s| &s.environments) {
        if env.status != EnvironmentStatus::Active as i32 || !seen.insert(env.node_id.clone()) {
            continue;
        }
        let (mut query, tx, node_id, env_id) = (
            query.clone(),
            tx.clone(),
            env.node_id.clone(),
            env.id.clone(),
        );
        tokio::spawn(async move {
            let request = GetDiskUsageRequest {
                environment_id: env_id,
            };
            if let Ok(usage) = query.get_disk_usage(request).await {
                let bytes = usage.into_inner().node_free_bytes;
                let _ = tx.send(Event::Server(Update::NodeFree { node_id, bytes }));
            }
        });
    }
}

/// Loads the newest audit events.
pub fn load_audit(clients: &Clients, tx: &EventSender) {
    let (mut audit, tx) = (clients.audit.clone(), tx.clone());
    tokio::spawn(async move {
        let request = ListAuditEventsRequest {
            page_size: 200,
            ..ListAuditEventsRequest::default()
        };
        let result = audit
            .list_audit_events(request)
            .await
            .map(|r| r.into_inner().events)
            .map_err(message);
        let _ = tx.send(Event::Server(Update::Audit(result)));
    });
}

/// Loads an environment's domains and releases.
pub fn load_environment(clients: &Clients, tx: &EventSender, env_id: String) {
    let (mut site, tx1, id) = (clients.site.clone(), tx.clone(), env_id.clone());
    tokio::spawn(async move {
        let request = ListDomainsRequest {
            environment_id: id.clone(),
            page_size: PAGE_SIZE,
            page_token: String::new(),
        };
        let result = site
            .list_domains(request)
            .await
            .map(|r| r.into_inner().domains)
            .map_err(message);
        let _ = tx1.send(Event::Server(Update::Domains { env_id: id, result }));
    });
    let (mut site, tx2) = (clients.site.clone(), tx.clone());
    tokio::spawn(async move {
        let request = ListReleasesRequest {
            environment_id: env_id.clone(),
            page_size: 20,
            page_token: String::new(),
        };
        let result = site
            .list_releases(request)
            .await
            .map(|r| r.into_inner().releases)
            .map_err(message);
        let _ = tx2.send(Event::Server(Update::Releases { env_id, result }));
    });
}

/// Loads an environment's backups (to pick one to restore).
pub fn load_backups(clients: &Clients, tx: &EventSender, env_id: String) {
    let (mut site, tx) = (clients.site.clone(), tx.clone());
    tokio::spawn(async move {
        let request = ListBackupsRequest {
            environment_id: env_id.clone(),
            page_size: 50,
            ..ListBackupsRequest::default()
        };
        let result = site
            .list_backups(request)
            .await
            .map(|r| r.into_inner().backups)
            .map_err(message);
        let _ = tx.send(Event::Server(Update::Backups { env_id, result }));
    });
}

/// Loads production's drift report before a promotion of `staging_id`.
pub fn load_drift(clients: &Clients, tx: &EventSender, staging_id: String, production_id: String) {
    let (mut site, tx) = (clients.site.clone(), tx.clone());
    tokio::spawn(async move {
        let result = site
            .get_drift_report(GetDriftReportRequest {
                environment_id: production_id,
            })
            .await
            .map(|r| r.into_inner().report.unwrap_or_default())
            .map_err(message);
        let _ = tx.send(Event::Server(Update::Drift { staging_id, result }));
    });
}

/// Follows one job with `WatchJob` (history first, then live) until it ends; the caller
/// aborts the task to stop following.
pub fn watch_job(
    client: &JobServiceClient<AuthChannel>,
    tx: &EventSender,
    job_id: String,
) -> tokio::task::JoinHandle<()> {
    let (mut client, tx) = (client.clone(), tx.clone());
    tokio::spawn(async move {
        let request = WatchJobRequest {
            job_id: job_id.clone(),
            after_sequence: 0,
        };
        let error = match client.watch_job(request).await {
            Err(status) => Some(message(status)),
            Ok(response) => {
                let mut stream = response.into_inner();
                loop {
                    match stream.message().await {
                        Ok(Some(item)) => {
                            let Some(event) = item.event else { continue };
                            let update = Update::JobEvent {
                                job_id: job_id.clone(),
                                event: Box::new(event),
                                job: item.job.map(Box::new),
                            };
                            if tx.send(Event::Server(update)).is_err() {
                                return;
                            }
                        }
                        Ok(None) => break None,
                        Err(status) => break Some(message(status)),
                    }
                }
            }
        };
        let _ = tx.send(Event::Server(Update::JobStreamEnded { job_id, error }));
    })
}

/// Sends a confirmed command; the answer arrives as [`Update::Done`].
pub fn run(clients: &Clients, tx: &EventSender, command: Command) {
    let (clients, tx) = (clients.clone(), tx.clone());
    tokio::spawn(async move {
        let result = send(clients, command).await.map_err(message);
        let _ = tx.send(Event::Server(Update::Done(result)));
    });
}

async fn send(mut c: Clients, command: Command) -> Result<Outcome, tonic::Status> {
    let job =
        |job: Option<pressluft_proto::v1::Job>| Outcome::Job(Box::new(job.unwrap_or_default()));
    Ok(match command {
        Command::Deploy { env_id, source } => {
            let source = match source {
                Source::WordPress(version) => {
                    release_source::Source::Wordpress(WordPressSource { version })
                }
                Source::Git { url, reference } => release_source::Source::Git(GitSource {
                    url,
                    r#ref: reference,
                }),
                Source::Archive(url) => release_source::Source::Archive(ArchiveSource {
                    url,
                    sha256: String::new(),
                }),
            };
            let request = DeployEnvironmentRequest {
                environment_id: env_id,
                expected_version: 0,
                source: Some(ReleaseSource {
                    source: Some(source),
                }),
            };
            job(c.site.deploy_environment(request).await?.into_inner().job)
        }
        Command::Rollback { env_id } => {
            let request = RollbackEnvironmentRequest {
                environment_id: env_id,
                expected_version: 0,
                release_id: String::new(),
            };
            job(c.site.rollback_environment(request).await?.into_inner().job)
        }
        Command::Backup { env_id } => {
            let request = CreateBackupRequest {
                environment_id: env_id,
                scope: pressluft_proto::v1::BackupScope::Full as i32,
            };
            job(c.site.create_backup(request).await?.into_inner().job)
        }
        Command::Restore { env_id, backup_id } => {
            let request = RestoreBackupRequest {
                environment_id: env_id,
                expected_version: 0,
                backup_id,
                allow_from_production: false,
            };
            job(c.site.restore_backup(request).await?.into_inner().job)
        }
        Command::Clone {
            site_id,
            env_id,
            name,
        } => {
            let request = CreateEnvironmentRequest {
                site_id,
                source_environment_id: env_id,
                name,
                kind: EnvironmentKind::Staging as i32,
                node_id: String::new(),
            };
            job(c.site.create_environment(request).await?.into_inner().job)
        }
        Command::Promote { staging_id } => {
            let request = PromoteEnvironmentRequest {
                source_environment_id: staging_id,
                expected_version: 0,
                preset: PromotionPreset::ContentProtect as i32,
            };
            job(c.site.promote_environment(request).await?.into_inner().job)
        }
        Command::CancelJob { job_id } => {
            let request = CancelJobRequest {
                job_id,
                expected_version: 0,
            };
            job(c.job.cancel_job(request).await?.into_inner().job)
        }
        Command::MagicLogin { env_id } => {
            let request = CreateMagicLoginRequest {
                environment_id: env_id,
            };
            let login = c.node_query.create_magic_login(request).await?.into_inner();
            Outcome::Login {
                url: login.url,
                user: login.user_login,
            }
        }
        Command::Provision { node_id } => {
            let request = ProvisionNodeRequest {
                node_id,
                expected_version: 0,
            };
            job(c.node.provision_node(request).await?.into_inner().job)
        }
    })
}
