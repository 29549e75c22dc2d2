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

/// Starts loading nodes, sites and jobs; each result arrives as its own [`Update`].
pub fn reload(clients: &Clients, tx: &EventSender) {
    let (mut node, tx_nodes) = (clients.node.clone(), tx.clone());
    tokio::spawn(async move {
        let mut nodes = Vec::new();
        let mut page_token = String::new();
        let mut result = Ok(());
        for _ in 0..MAX_PAGES {
            let request = ListNodesRequest {
                page_size: PAGE_SIZE,
                page_token,
                statuses: Vec::new(),
            };
            match node.list_nodes(request).await {
                Ok(page) => {
                    let page = page.into_inner();
                    nodes.extend(page.nodes);
                    page_token = page.next_page_token;
                    if page_token.is_empty() {
                        break;
                    }
                }
                Err(status) => {
                    result = Err(message(status));
                    break;
                }
            }
        }
        let _ = tx_nodes.send(Event::Server(Update::Nodes(result.map(|()| nodes))));
    });

    let (mut site, tx_sites) = (clients.site.clone(), tx.clone());
    tokio::spawn(async move {
        let mut sites = Vec::new();
        let mut page_token = String::new();
        let mut result = Ok(());
        for _ in 0..MAX_PAGES {
            let request = ListSitesRequest {
                page_size: PAGE_SIZE,
                page_token,
                show_deleted: false,
            };
            match site.list_sites(request).await {
                Ok(page) => {
                    let page = page.into_inner();
                    sites.extend(page.sites);
                    page_token = page.next_page_token;
                    if page_token.is_empty() {
                        break;
                    }
                }
                Err(status) => {
                    result = Err(message(status));
                    break;
                }
            }
        }
        let _ = tx_sites.send(Event::Server(Update::Sites(result.map(|()| sites))));
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
