//! JobService, including the WatchJob / WatchJobs server streams.
//!
//! Streams run in their own task and feed a bounded channel: a slow or gone client only stalls
//! its own task, never a worker (job changes arrive over a broadcast channel that drops old ids
//! for a lagging receiver, after which the task simply re-reads the database).

use std::pin::Pin;
use std::time::Duration;

use futures::Stream;
use pressluft_proto::v1 as pb;
use pressluft_proto::v1::job_service_server::JobService;
use tokio::sync::{broadcast, mpsc};
use tokio_stream::wrappers::ReceiverStream;
use tokio_util::sync::CancellationToken;
use tonic::{Request, Status};

use super::convert::{self, job_kind_from, job_status_from};
use super::{RpcResult, caller, ok};
use crate::model::validate;
use crate::model::{JobId, JobStatus, NodeId, SiteId, TokenId};
use crate::store::{JobFilter, JobRecord, PageToken, Store};

/// Handlers of JobService.
pub struct Jobs {
    pub store: Store,
    /// Long-lived streams end with it.
    pub shutdown: CancellationToken,
}

type ResponseStream<T> = Pin<Box<dyn Stream<Item = Result<T, Status>> + Send>>;

/// How often a watcher re-reads the database even without a notification (a safety net).
const WATCH_POLL: Duration = Duration::from_secs(2);

#[tonic::async_trait]
impl JobService for Jobs {
    async fn get_job(&self, request: Request<pb::GetJobRequest>) -> RpcResult<pb::GetJobResponse> {
        let id: JobId = validate::id("job_id", &request.get_ref().job_id)?;
        let job = self.store.job(id).await?;
        ok(pb::GetJobResponse {
            job: Some(convert::job(&job)),
        })
    }

    async fn list_jobs(
        &self,
        request: Request<pb::ListJobsRequest>,
    ) -> RpcResult<pb::ListJobsResponse> {
        let r = request.into_inner();
        let limit = validate::page_size(r.page_size, 50, 500)?;
        let filter = JobFilter {
            statuses: convert::enum_list::<pb::JobStatus, _>(
                "statuses",
                &r.statuses,
                job_status_from,
            )?,
            kinds: convert::enum_list::<pb::JobType, _>("types", &r.types, job_kind_from)?,
            site_id: validate::optional_id("site_id", &r.site_id)?,
            environment_id: validate::optional_id("environment_id", &r.environment_id)?,
            node_id: validate::optional_id("node_id", &r.node_id)?,
        };
        let page = self
            .store
            .list_jobs(&filter, limit, PageToken::decode(&r.page_token)?)
            .await?;
        ok(pb::ListJobsResponse {
            jobs: page.items.iter().map(convert::job).collect(),
            next_page_token: page.next_page_token,
        })
    }

    async fn cancel_job(
        &self,
        request: Request<pb::CancelJobRequest>,
    ) -> RpcResult<pb::CancelJobResponse> {
        let caller = caller(&request)?;
        let r = request.into_inner();
        let id: JobId = validate::id("job_id", &r.job_id)?;
        let job = self
            .store
            .cancel_job(id, r.expected_version, &caller.actor())
            .await?;
        ok(pb::CancelJobResponse {
            job: Some(convert::job(&job)),
        })
    }

    async fn list_job_events(
        &self,
        request: Request<pb::ListJobEventsRequest>,
    ) -> RpcResult<pb::ListJobEventsResponse> {
        let r = request.into_inner();
        let id: JobId = validate::id("job_id", &r.job_id)?;
        let limit = validate::page_size(r.page_size, 200, 1000)?;
        self.store.job(id).await?;
        let after = match PageToken::decode(&r.page_token)? {
            Some(t) => t.part(0)?.parse::<i64>().map_err(|_| validate::Invalid {
                field: "page_token",
                message: "is not a token returned by this server".into(),
            })?,
            None => 0,
        };
        let events = self.store.job_events(id, after, limit + 1).await?;
        let more = events.len() > limit as usize;
        let events = &events[..events.len().min(limit as usize)];
        let next_page_token = match (more, events.last()) {
            (true, Some(last)) => PageToken::encode(&[&last.seq.to_string()]),
            _ => String::new(),
        };
        ok(pb::ListJobEventsResponse {
            events: events.iter().map(convert::job_event).collect(),
            next_page_token,
        })
    }

    type WatchJobStream = ResponseStream<pb::WatchJobResponse>;

    async fn watch_job(
        &self,
        request: Request<pb::WatchJobRequest>,
    ) -> RpcResult<Self::WatchJobStream> {
        let caller = super::caller(&request)?;
        let r = request.into_inner();
        let id: JobId = validate::id("job_id", &r.job_id)?;
        if r.after_sequence < 0 {
            return Err(validate::Invalid {
                field: "after_sequence",
                message: "must not be negative".into(),
            }
            .into());
        }
        // Subscribe before the first read so no change between the two is missed.
        let changes = self.store.subscribe_job_changes();
        self.store.job(id).await?;
        let (tx, rx) = mpsc::channel(64);
        let store = self.store.clone();
        let shutdown = self.shutdown.clone();
        let lapsed = token_lapsed(store.clone(), caller.token_id);
        tokio::spawn(async move {
            tokio::select! {
                () = follow_job(store, id, r.after_sequence, changes, tx.clone()) => {}
                () = shutdown.cancelled() => {}
                () = lapsed => { let _ = tx.send(Err(lapsed_status())).await; }
            }
        });
        ok(Box::pin(ReceiverStream::new(rx)) as Self::WatchJobStream)
    }

    type WatchJobsStream = ResponseStream<pb::WatchJobsResponse>;

    async fn watch_jobs(
        &self,
        request: Request<pb::WatchJobsRequest>,
    ) -> RpcResult<Self::WatchJobsStream> {
        let caller = super::caller(&request)?;
        let r = request.into_inner();
        let site: Option<SiteId> = validate::optional_id("site_id", &r.site_id)?;
        let node: Option<NodeId> = validate::optional_id("node_id", &r.node_id)?;
        let changes = self.store.subscribe_job_changes();
        let filter = JobFilter {
            statuses: vec![JobStatus::Queued, JobStatus::Running],
            site_id: site,
            node_id: node,
            ..JobFilter::default()
        };
        let snapshot = self.store.list_jobs(&filter, 500, None).await?;
        let (tx, rx) = mpsc::channel(256);
        let store = self.store.clone();
        let shutdown = self.shutdown.clone();
        let lapsed = token_lapsed(store.clone(), caller.token_id);
        tokio::spawn(async move {
            tokio::select! {
                () = follow_all_jobs(store, snapshot.items, site, node, changes, tx.clone()) => {}
                () = shutdown.cancelled() => {}
                () = lapsed => { let _ = tx.send(Err(lapsed_status())).await; }
            }
        });
        ok(Box::pin(ReceiverStream::new(rx)) as Self::WatchJobsStream)
    }
}

/// How often a long-lived stream checks that its token still authenticates.
const TOKEN_RECHECK: std::time::Duration = std::time::Duration::from_secs(2);

/// Resolves once the stream's token is revoked or expired (checked every [`TOKEN_RECHECK`]):
/// a stream must not outlive the credentials that opened it.
async fn token_lapsed(store: Store, token: TokenId) {
    loop {
        tokio::time::sleep(TOKEN_RECHECK).await;
        // A store error is not a revocation: look again next time.
        if matches!(store.token_is_active(token).await, Ok(false)) {
            return;
        }
    }
}

fn lapsed_status() -> Status {
    Status::unauthenticated("the token was revoked or expired; log in again")
}

/// Replays a job's history after `after_seq`, then streams new events until the job ended and
/// every event was sent, or the client went away. Each message carries the job as read after
/// its batch of events, so the last message shows the final state.
async fn follow_job(
    store: Store,
    id: JobId,
    mut after_seq: i64,
    mut changes: broadcast::Receiver<JobId>,
    tx: mpsc::Sender<Result<pb::WatchJobResponse, Status>>,
) {
    loop {
        let events = match store.job_events(id, after_seq, 500).await {
            Ok(events) => events,
            Err(e) => {
                let _ = tx.send(Err(e.into())).await;
                return;
            }
        };
        let job = match store.job(id).await {
            Ok(job) => job,
            Err(e) => {
                let _ = tx.send(Err(e.into())).await;
                return;
            }
        };
        let snapshot = convert::job(&job);
        for event in &events {
            after_seq = event.seq;
            let message = pb::WatchJobResponse {
                event: Some(convert::job_event(event)),
                job: Some(snapshot.clone()),
            };
            if tx.send(Ok(message)).await.is_err() {
                return;
            }
        }
        if !events.is_empty() {
            continue; // more may have arrived meanwhile
        }
        // The final state event commits with the final status: once the job reads as ended and
        // no event is left, the history is complete.
        if job.status.is_terminal() {
            match store.job_events(id, after_seq, 1).await {
                Ok(rest) if rest.is_empty() => return,
                Ok(_) => continue,
                Err(e) => {
                    let _ = tx.send(Err(e.into())).await;
                    return;
                }
            }
        }
        wait_for_change(&mut changes, Some(id)).await;
    }
}

/// Sends the snapshot, then every change of a matching job.
async fn follow_all_jobs(
    store: Store,
    snapshot: Vec<JobRecord>,
    site: Option<SiteId>,
    node: Option<NodeId>,
    mut changes: broadcast::Receiver<JobId>,
    tx: mpsc::Sender<Result<pb::WatchJobsResponse, Status>>,
) {
    let matches = |j: &JobRecord| {
        site.is_none_or(|s| j.site_id == Some(s)) && node.is_none_or(|n| j.node_id == n)
    };
    for job in snapshot.iter().rev() {
        if tx
            .send(Ok(pb::WatchJobsResponse {
                job: Some(convert::job(job)),
            }))
            .await
            .is_err()
        {
            return;
        }
    }
    loop {
        let ids: Vec<JobId> = match changes.recv().await {
            Ok(id) => vec![id],
            // Missed some ids: resend everything that is still in flight.
            Err(broadcast::error::RecvError::Lagged(_)) => {
                let filter = JobFilter {
                    statuses: vec![JobStatus::Queued, JobStatus::Running],
                    site_id: site,
                    node_id: node,
                    ..JobFilter::default()
                };
                match store.list_jobs(&filter, 500, None).await {
                    Ok(page) => page.items.iter().map(|j| j.id).collect(),
                    Err(_) => continue,
                }
            }
            Err(broadcast::error::RecvError::Closed) => return,
        };
        for id in ids {
            let Ok(job) = store.job(id).await else {
                continue;
            };
            if matches(&job)
                && tx
                    .send(Ok(pb::WatchJobsResponse {
                        job: Some(convert::job(&job)),
                    }))
                    .await
                    .is_err()
            {
                return;
            }
        }
    }
}

/// Waits until `id` (or any job, when `None`) changes, the channel lags, or the poll interval
/// passes.
async fn wait_for_change(changes: &mut broadcast::Receiver<JobId>, only: Option<JobId>) {
    let deadline = tokio::time::sleep(WATCH_POLL);
    tokio::pin!(deadline);
    loop {
        tokio::select! {
            () = &mut deadline => return,
            received = changes.recv() => match received {
                Ok(job) if only.is_none_or(|wanted| wanted == job) => return,
                Ok(_) => {}
                Err(broadcast::error::RecvError::Lagged(_) | broadcast::error::RecvError::Closed) => return,
            },
        }
    }
}
