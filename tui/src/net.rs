//! Network work, always in Tokio tasks that report through the UI channel: the UI never
//! waits for the server.

use std::time::Duration;

use pressluft_client::{AuthChannel, Clients};
use pressluft_proto::v1::job_service_client::JobServiceClient;
use pressluft_proto::v1::{ListJobsRequest, ListNodesRequest, ListSitesRequest, WatchJobsRequest};

use crate::event::{Event, EventSender, Update};

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
