//! Wiring: opens the shared state (`state`) and serves every service on one listener, with the
//! worker, scheduler and periodic checks beside it, until the shutdown token fires.

use std::sync::Arc;
use std::time::Duration;

use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

use crate::config::Config;
use crate::error::{Error, Result};
use crate::executor::{AnsibleConfig, AnsibleExecutor, Executor};
use crate::queue::{RetryPolicy, Scheduler, SchedulerConfig, Worker, WorkerConfig};
use crate::ssh::NodeSessions;
use crate::state::AppState;

/// The running server.
pub struct App;

impl App {
    /// Serves gRPC, grpc-web, health and reflection on `listener`, and runs the job worker and
    /// scheduler, until `shutdown` fires.
    pub async fn run(
        config: Config,
        listener: TcpListener,
        shutdown: CancellationToken,
    ) -> Result<()> {
        let state = AppState::open(config, shutdown.clone()).await?;
        Self::serve(state, listener, shutdown).await
    }

    /// Like [`App::run`] with an already opened state (the binary opens it before binding, so
    /// an open port means a migrated database).
    pub async fn serve(
        state: Arc<AppState>,
        listener: TcpListener,
        shutdown: CancellationToken,
    ) -> Result<()> {
        let executor = AnsibleExecutor::new(AnsibleConfig {
            playbooks_dir: state.config.playbooks_dir.clone(),
            program: state.config.ansible_playbook.clone(),
            ssh_key: state.secrets_dir.ssh_key_path(),
            kill_grace: state.config.jobs.kill_grace,
            max_log_lines: state.config.jobs.max_log_lines,
        });
        Self::run_with_executor(state, Arc::new(executor), listener, shutdown).await
    }

    /// Like [`App::run`] with a given executor (benchmarks and queue tests use a no-op one).
    pub async fn run_with_executor(
        state: Arc<AppState>,
        executor: Arc<dyn Executor>,
        listener: TcpListener,
        shutdown: CancellationToken,
    ) -> Result<()> {
        // One server per data directory, held while it serves (`admin restore-db` needs none).
        let _serve_lock = crate::dbcopy::ServeLock::acquire(&state.config.data_dir)?;
        // A certificate that does not load stops the start, before any work is taken.
        let tls = state
            .config
            .tls()
            .as_ref()
            .map(crate::tls::acceptor)
            .transpose()?;
        let tasks = Self::spawn_background(&state, executor, &shutdown).await?;
        let router = crate::api::router(state.clone()).await;
        let addr = listener
            .local_addr()
            .map_err(|e| Error::internal(format!("listener address: {e}")))?;
        tracing::info!(%addr, "pressluft-server listening");
        if !crate::ui::BUILT {
            tracing::warn!("this binary was compiled without npm: the browser UI is not included");
        }
        let signal = shutdown.clone();
        let serve: std::pin::Pin<Box<dyn Future<Output = Result<()>> + Send>> = match tls {
            Some(acceptor) => {
                tracing::info!("serving TLS");
                Box::pin(async move {
                    crate::tls::serve(listener, acceptor, router, signal).await;
                    Ok(())
                })
            }
            None => Box::pin(async move {
                // Handlers see the peer's address (login limits count per client address).
                axum::serve(
                    listener,
                    router.into_make_service_with_connect_info::<std::net::SocketAddr>(),
                )
                .with_graceful_shutdown(async move { signal.cancelled().await })
                .await
                .map_err(|e| Error::internal(format!("serving: {e}")))
            }),
        };
        // Streams end on shutdown; give in-flight unary calls a bounded grace period.
        tokio::select! {
            result = serve => result?,
            () = async {
                shutdown.cancelled().await;
                tokio::time::sleep(Duration::from_secs(10)).await;
            } => tracing::warn!("shutdown grace period over; closing remaining connections"),
        }
        // Running jobs stop their playbooks and queue themselves again before the store closes.
        let grace = state.config.jobs.kill_grace + Duration::from_secs(5);
        if tokio::time::timeout(grace, tasks.wait()).await.is_err() {
            tracing::warn!("background tasks did not stop in time");
        }
        state.store.pool().close().await;
        tracing::info!("pressluft-server stopped");
        Ok(())
    }
    /// Starts the worker, the scheduler and the periodic checks (and the metrics listener when
    /// one is configured); they stop when `shutdown` fires.
    async fn spawn_background(
        state: &Arc<AppState>,
        executor: Arc<dyn Executor>,
        shutdown: &CancellationToken,
    ) -> Result<tokio_util::task::TaskTracker> {
        let tasks = tokio_util::task::TaskTracker::new();
        let jobs = &state.config.jobs;
        let worker = Worker::new(
            state.job_sources(),
            state.metrics.clone(),
            executor,
            WorkerConfig {
                max_concurrent: jobs.max_concurrent,
                max_per_node: jobs.max_per_node,
                lease: jobs.lease,
                heartbeat: jobs.heartbeat,
                poll: jobs.poll,
                retry: RetryPolicy {
                    backoff: jobs.retry_backoff.clone(),
                },
                ..WorkerConfig::default()
            },
        );
        if jobs.run_workers {
            tasks.spawn(worker.run(shutdown.clone()));
        }
        let scheduler = Scheduler::new(
            state.store.clone(),
            SchedulerConfig {
                tick: jobs.scheduler_tick,
                cleanup_every: jobs.backup_cleanup_every,
                data_dir: state.config.data_dir.clone(),
                upload_retention: state.config.upload_retention,
            },
        );
        if jobs.run_workers {
            tasks.spawn(scheduler.run(shutdown.clone()));
        }
        tasks.spawn(close_idle_node_sessions(
            state.node_sessions.clone(),
            shutdown.clone(),
        ));
        tasks.spawn(crate::reachability::reachability_checks(
            state.node_queries(),
            state.config.node_check_interval,
            shutdown.clone(),
        ));
        tasks.spawn(crate::domains::certificate_checks(
            state.node_queries(),
            state.config.cert_check_interval,
            shutdown.clone(),
        ));
        if let Some(addr) = state.config.metrics_listen_addr {
            let listener = TcpListener::bind(addr).await.map_err(|e| {
                Error::internal(format!("binding the metrics listener {addr}: {e}"))
            })?;
            tracing::info!(%addr, "metrics listening");
            tasks.spawn(crate::metrics::serve(
                state.metrics.clone(),
                state.store.clone(),
                listener,
                shutdown.clone(),
            ));
        }
        tasks.close();
        Ok(tasks)
    }
}

/// Closes node-query connections nobody used for a while.
async fn close_idle_node_sessions(sessions: Arc<NodeSessions>, shutdown: CancellationToken) {
    let mut tick = tokio::time::interval(Duration::from_mins(1));
    loop {
        tokio::select! {
            () = shutdown.cancelled() => return,
            _ = tick.tick() => sessions.close_idle().await,
        }
    }
}
