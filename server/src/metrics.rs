//! Prometheus metrics on their own listener (`metrics_listen_addr`, off unless set; loopback
//! recommended): job attempt durations and RPC latencies as histograms kept in memory, and
//! jobs by type and status, queue depth and nodes by status read from the store at each
//! scrape. Text exposition format 0.0.4, written by hand (no client library needed).

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::extract::{Request, State};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use tokio_util::sync::CancellationToken;

use crate::error::Result;
use crate::store::Store;

/// Upper bounds (seconds) of job duration buckets: a few seconds to an hour.
const JOB_BUCKETS: &[f64] = &[
    1.0, 5.0, 15.0, 30.0, 60.0, 120.0, 300.0, 600.0, 1800.0, 3600.0,
];
/// Upper bounds (seconds) of RPC latency buckets: a millisecond to ten seconds.
const RPC_BUCKETS: &[f64] = &[
    0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 10.0,
];

/// A cumulative histogram.
#[derive(Debug, Clone, Default)]
struct Histogram {
    /// Count per bucket (not cumulative; summed when written), plus +Inf last.
    counts: Vec<u64>,
    sum: f64,
}

impl Histogram {
    fn observe(&mut self, buckets: &[f64], value: f64) {
        if self.counts.is_empty() {
            self.counts = vec![0; buckets.len() + 1];
        }
        let i = buckets
            .iter()
            .position(|bound| value <= *bound)
            .unwrap_or(buckets.len());
        self.counts[i] += 1;
        self.sum += value;
    }

    fn write(&self, out: &mut String, name: &str, labels: &str, buckets: &[f64]) {
        let mut cumulative = 0;
        for (i, count) in self.counts.iter().enumerate() {
            cumulative += count;
            let le = buckets
                .get(i)
                .map_or_else(|| "+Inf".to_owned(), ToString::to_string);
            let _ = writeln!(out, "{name}_bucket{{{labels},le=\"{le}\"}} {cumulative}");
        }
        let _ = writeln!(out, "{name}_sum{{{labels}}} {}", self.sum);
        let _ = writeln!(out, "{name}_count{{{labels}}} {cumulative}");
    }
}

/// The in-memory part of the metrics.
#[derive(Debug, Default)]
pub struct Metrics {
    /// Job attempt durations by (job type, how the attempt ended).
    jobs: Mutex<BTreeMap<(String, String), Histogram>>,
    /// RPC latencies by (method path, gRPC status code).
    rpcs: Mutex<BTreeMap<(String, String), Histogram>>,
}

impl Metrics {
    /// Records a finished job attempt.
    pub fn job_attempt(&self, kind: &str, end: &str, took: Duration) {
        if let Ok(mut jobs) = self.jobs.lock() {
            jobs.entry((kind.to_owned(), end.to_owned()))
                .or_default()
                .observe(JOB_BUCKETS, took.as_secs_f64());
        }
    }

    /// Records an answered RPC.
    pub fn rpc(&self, method: &str, code: &str, took: Duration) {
        if let Ok(mut rpcs) = self.rpcs.lock() {
            rpcs.entry((method.to_owned(), code.to_owned()))
                .or_default()
                .observe(RPC_BUCKETS, took.as_secs_f64());
        }
    }
}

/// Tower middleware on the gRPC routes: the time to the response head (for server streams,
/// the time to the stream's start) and the gRPC status when it is in the headers.
pub async fn measure(
    State(metrics): State<Arc<Metrics>>,
    request: Request,
    next: Next,
) -> Response {
    let method = request.uri().path().to_owned();
    let started = Instant::now();
    let response = next.run(request).await;
    let code = response
        .headers()
        .get("grpc-status")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("0")
        .to_owned();
    metrics.rpc(&method, &code, started.elapsed());
    response
}

/// The whole exposition.
pub async fn render(metrics: &Metrics, store: &Store) -> Result<String> {
    let snapshot = store.metrics_snapshot(crate::model::now_ms()).await?;
    let mut out = String::new();
    out.push_str("# HELP pressluft_jobs Jobs in the store by type and status.\n# TYPE pressluft_jobs gauge\n");
    for (kind, status, count) in &snapshot.jobs {
        let _ = writeln!(
            out,
            "pressluft_jobs{{type=\"{kind}\",status=\"{status}\"}} {count}"
        );
    }
    out.push_str("# HELP pressluft_job_queue_depth Queued jobs that may run now.\n# TYPE pressluft_job_queue_depth gauge\n");
    let _ = writeln!(out, "pressluft_job_queue_depth {}", snapshot.runnable);
    out.push_str("# HELP pressluft_nodes Nodes by status.\n# TYPE pressluft_nodes gauge\n");
    for (status, count) in &snapshot.nodes {
        let _ = writeln!(out, "pressluft_nodes{{status=\"{status}\"}} {count}");
    }
    out.push_str("# HELP pressluft_job_attempt_duration_seconds Job attempts by type and end, since the server started.\n# TYPE pressluft_job_attempt_duration_seconds histogram\n");
    if let Ok(jobs) = metrics.jobs.lock() {
        for ((kind, end), histogram) in jobs.iter() {
            let labels = format!("type=\"{kind}\",end=\"{end}\"");
            histogram.write(
                &mut out,
                "pressluft_job_attempt_duration_seconds",
                &labels,
                JOB_BUCKETS,
            );
        }
    }
    out.push_str("# HELP pressluft_rpc_duration_seconds RPC latency by method and gRPC status, since the server started.\n# TYPE pressluft_rpc_duration_seconds histogram\n");
    if let Ok(rpcs) = metrics.rpcs.lock() {
        for ((method, code), histogram) in rpcs.iter() {
            let labels = format!("method=\"{method}\",code=\"{code}\"");
            histogram.write(
                &mut out,
                "pressluft_rpc_duration_seconds",
                &labels,
                RPC_BUCKETS,
            );
        }
    }
    Ok(out)
}

/// Serves `GET /metrics` on `listener` until shutdown.
pub async fn serve(
    metrics: Arc<Metrics>,
    store: Store,
    listener: tokio::net::TcpListener,
    shutdown: CancellationToken,
) {
    let app = axum::Router::new()
        .route(
            "/metrics",
            axum::routing::get(
                |State((metrics, store)): State<(Arc<Metrics>, Store)>| async move {
                    match render(&metrics, &store).await {
                        Ok(text) => (
                            [(
                                axum::http::header::CONTENT_TYPE,
                                "text/plain; version=0.0.4",
                            )],
                            text,
                        )
                            .into_response(),
                        Err(e) => {
                            tracing::warn!(error = %e, "metrics unavailable");
                            (
                                axum::http::StatusCode::SERVICE_UNAVAILABLE,
                                "metrics unavailable\n",
                            )
                                .into_response()
                        }
                    }
                },
            ),
        )
        .with_state((metrics, store));
    let result = axum::serve(listener, app)
        .with_graceful_shutdown(async move { shutdown.cancelled().await })
        .await;
    if let Err(e) = result {
        tracing::error!(error = %e, "the metrics listener stopped");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn histograms_are_cumulative_with_an_inf_bucket() {
        let mut h = Histogram::default();
        for v in [0.5, 3.0, 3.0, 7200.0] {
            h.observe(JOB_BUCKETS, v);
        }
        let mut out = String::new();
        h.write(&mut out, "x", "type=\"a\"", JOB_BUCKETS);
        assert!(out.contains("x_bucket{type=\"a\",le=\"1\"} 1\n"), "{out}");
        assert!(out.contains("x_bucket{type=\"a\",le=\"5\"} 3\n"), "{out}");
        assert!(
            out.contains("x_bucket{type=\"a\",le=\"3600\"} 3\n"),
            "{out}"
        );
        assert!(
            out.contains("x_bucket{type=\"a\",le=\"+Inf\"} 4\n"),
            "{out}"
        );
        assert!(out.contains("x_count{type=\"a\"} 4\n"), "{out}");
        assert!(out.contains("x_sum{type=\"a\"} 7206.5\n"), "{out}");
    }
}
