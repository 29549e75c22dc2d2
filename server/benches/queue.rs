//! `cargo bench --bench queue`: the real queue (store + worker) with a no-op executor against a
//! SQLite file, next to a baseline of the bare SQL a job needs on the same file and pragmas.
//! Prints `name=value` lines (see docs/benchmarks.md).

#![allow(
    clippy::unwrap_used,
    clippy::cast_precision_loss,
    clippy::too_many_lines
)]

use std::sync::Arc;
use std::time::{Duration, Instant};

use pressluft_server::AppState;
use pressluft_server::config::Config;
use pressluft_server::executor::NoopExecutor;
use pressluft_server::model::EnvironmentId;
use pressluft_server::model::job::JobParams;
use pressluft_server::queue::{Worker, WorkerConfig};
use pressluft_server::store::{NewJob, NewNode, Store};
use tokio_util::sync::CancellationToken;

const SITES: usize = 100;
const ROUNDS: usize = 10;
const RAW_JOBS: usize = 2000;
const PICKUPS: usize = 300;

#[tokio::main]
async fn main() {
    let raw = raw_sql_jobs_per_s().await;
    println!("sqlite_raw_jobs_per_s={raw:.0}");

    let dir = tempfile::tempdir().unwrap();
    let config = Config::for_data_dir(dir.path());
    let shutdown = CancellationToken::new();
    let state = AppState::open(config, shutdown.clone()).await.unwrap();
    let worker = Worker::new(
        state.job_sources(),
        state.metrics.clone(),
        Arc::new(NoopExecutor),
        WorkerConfig::default(),
    );
    let worker = tokio::spawn(worker.run(shutdown.clone()));

    let node = state
        .store
        .create_node(&NewNode {
            name: "bench".into(),
            hostname: "127.0.0.1".into(),
            ssh_port: 22,
            ssh_user: "root".into(),
            public_ip: "127.0.0.1".into(),
            is_local: true,
            host_key:
                "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIGWf6sZkF2kcJ9xKJ2fB0z3gMHfVY3ZCxpJHKZt1U9cB"
                    .into(),
        })
        .await
        .unwrap();
    let provision = state
        .store
        .enqueue_provision(node.id, 0, "bench")
        .await
        .unwrap();
    wait_all(&state.store, &[provision.id.to_string()]).await;

    // Sites are created through the same job path (site_create runs on the no-op executor).
    let mut envs = Vec::new();
    let mut jobs = Vec::new();
    for i in 0..SITES {
        let (_, env, job) = pressluft_server::ops::create_site(
            &state.store,
            &state.secret_box,
            "bench@example.com",
            "bench",
            pressluft_server::ops::CreateSite {
                name: format!("Bench {i}"),
                slug: format!("bench{i}"),
                node_id: Some(node.id),
                php_version: None,
                wordpress_version: "latest".into(),
                title: None,
                admin_email: None,
                admin_user: "admin".into(),
            },
        )
        .await
        .unwrap();
        envs.push(env.id);
        jobs.push(job.id.to_string());
    }
    wait_all(&state.store, &jobs).await;

    // Throughput: every round queues one job per site (one job per site at a time is the
    // rule) and waits for all of them.
    let started = Instant::now();
    for _ in 0..ROUNDS {
        let mut ids = Vec::with_capacity(SITES);
        for env in &envs {
            ids.push(enqueue(&state.store, *env).await);
        }
        wait_all(&state.store, &ids).await;
    }
    let total = SITES * ROUNDS;
    let per_s = total as f64 / started.elapsed().as_secs_f64();
    println!("queue_jobs_per_s={per_s:.0}");
    println!("queue_vs_raw_ratio={:.3}", per_s / raw);

    // Pickup latency: one job at a time on an idle worker, enqueue commit to claim.
    let mut latencies = Vec::with_capacity(PICKUPS);
    for i in 0..PICKUPS {
        let env = envs[i % SITES];
        let t0 = Instant::now();
        let id = enqueue(&state.store, env).await;
        let claimed = wait_claimed(&state.store, &id).await;
        latencies.push(claimed.duration_since(t0).as_secs_f64() * 1000.0);
        wait_all(&state.store, &[id]).await;
    }
    latencies.sort_by(f64::total_cmp);
    let pct = |p: f64| latencies[((latencies.len() as f64 - 1.0) * p).round() as usize];
    println!("pickup_latency_p50_ms={:.2}", pct(0.50));
    println!("pickup_latency_p99_ms={:.2}", pct(0.99));

    shutdown.cancel();
    worker.await.unwrap();

    phases().await;
}

async fn enqueue(store: &Store, env: EnvironmentId) -> String {
    let job = NewJob::new(JobParams::CachePurge {}, "bench", "bench");
    store
        .enqueue_environment_job(env, 0, job)
        .await
        .unwrap()
        .id
        .to_string()
}

/// Waits until no job is queued or running (the bench's jobs are the only ones).
async fn wait_all(store: &Store, _ids: &[String]) {
    loop {
        let open: i64 =
            sqlx::query_scalar("SELECT COUNT(*) FROM jobs WHERE status IN ('queued', 'running')")
                .fetch_one(store.pool())
                .await
                .unwrap();
        if open == 0 {
            return;
        }
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
}

/// The moment the job was seen claimed (notification-driven, polled as a fallback).
async fn wait_claimed(store: &Store, id: &str) -> Instant {
    let mut changes = store.subscribe_job_changes();
    loop {
        let status: String = sqlx::query_scalar("SELECT status FROM jobs WHERE id = ?")
            .bind(id)
            .fetch_one(store.pool())
            .await
            .unwrap();
        if status != "queued" {
            return Instant::now();
        }
        let _ = tokio::time::timeout(Duration::from_millis(5), changes.recv()).await;
    }
}

/// The floor: the statements a job needs (insert, claim update, completion update), one
/// transaction each, on a file with the store's schema and pragmas, and nothing else.
async fn raw_sql_jobs_per_s() -> f64 {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(&dir.path().join("raw.db")).await.unwrap();
    let pool = store.pool();
    let node = uuid::Uuid::now_v7().to_string();
    sqlx::query(
        "INSERT INTO nodes (id, name, hostname, ssh_port, ssh_user, host_key, status, created_at, updated_at)
         VALUES (?, 'raw', '127.0.0.1', 22, 'root', 'k', 'active', 0, 0)",
    )
    .bind(&node)
    .execute(pool)
    .await
    .unwrap();
    let started = Instant::now();
    for i in 0..RAW_JOBS {
        let id = uuid::Uuid::now_v7().to_string();
        let now = i as i64;
        let mut tx = pool.begin_with("BEGIN IMMEDIATE").await.unwrap();
        sqlx::query(
            "INSERT INTO jobs (id, kind, status, scope, node_id, run_after, requested_by, created_at, updated_at)
             VALUES (?, 'node_provision', 'queued', 'node', ?, ?, 'raw', ?, ?)",
        )
        .bind(&id)
        .bind(&node)
        .bind(now)
        .bind(now)
        .bind(now)
        .execute(&mut *tx)
        .await
        .unwrap();
        tx.commit().await.unwrap();
        let mut tx = pool.begin_with("BEGIN IMMEDIATE").await.unwrap();
        sqlx::query("UPDATE jobs SET status = 'running', lease_owner = 'raw', started_at = ? WHERE id = ? AND status = 'queued'")
            .bind(now)
            .bind(&id)
            .execute(&mut *tx)
            .await
            .unwrap();
        tx.commit().await.unwrap();
        let mut tx = pool.begin_with("BEGIN IMMEDIATE").await.unwrap();
        sqlx::query("UPDATE jobs SET status = 'succeeded', finished_at = ? WHERE id = ? AND status = 'running'")
            .bind(now)
            .bind(&id)
            .execute(&mut *tx)
            .await
            .unwrap();
        tx.commit().await.unwrap();
    }
    RAW_JOBS as f64 / started.elapsed().as_secs_f64()
}

/// Where a job's time goes: each phase alone, sequentially, without a worker.
async fn phases() {
    let dir = tempfile::tempdir().unwrap();
    let config = Config::for_data_dir(dir.path());
    let state = AppState::open(config, CancellationToken::new())
        .await
        .unwrap();
    let node = state
        .store
        .create_node(&NewNode {
            name: "bench".into(),
            hostname: "127.0.0.1".into(),
            ssh_port: 22,
            ssh_user: "root".into(),
            public_ip: "127.0.0.1".into(),
            is_local: true,
            host_key:
                "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIGWf6sZkF2kcJ9xKJ2fB0z3gMHfVY3ZCxpJHKZt1U9cB"
                    .into(),
        })
        .await
        .unwrap();
    sqlx::query("UPDATE nodes SET status='active'")
        .execute(state.store.pool())
        .await
        .unwrap();
    let mut envs = Vec::new();
    for i in 0..100 {
        let (_, env, job) = pressluft_server::ops::create_site(
            &state.store,
            &state.secret_box,
            "b@x.co",
            "b",
            pressluft_server::ops::CreateSite {
                name: format!("B{i}"),
                slug: format!("b{i}"),
                node_id: Some(node.id),
                php_version: None,
                wordpress_version: "latest".into(),
                title: None,
                admin_email: None,
                admin_user: "admin".into(),
            },
        )
        .await
        .unwrap();
        sqlx::query("UPDATE jobs SET status='succeeded' WHERE id=?")
            .bind(job.id)
            .execute(state.store.pool())
            .await
            .unwrap();
        sqlx::query("UPDATE environments SET status='active' WHERE id=?")
            .bind(env.id)
            .execute(state.store.pool())
            .await
            .unwrap();
        envs.push(env.id);
    }
    let t = Instant::now();
    for env in &envs {
        enqueue(&state.store, *env).await;
    }
    println!("phase_enqueue_ms={:.3}", t.elapsed().as_secs_f64() * 10.0);
    let t = Instant::now();
    let mut jobs = Vec::new();
    while let Some(j) = state.store.claim_next("w", 100, 30000).await.unwrap() {
        jobs.push(j);
    }
    println!(
        "phase_claim_ms={:.3}",
        t.elapsed().as_secs_f64() * 1000.0 / jobs.len() as f64
    );
    let sources = state.job_sources();
    let t = Instant::now();
    for j in &jobs {
        let _ = pressluft_server::queue::job_spec_for_bench(&sources, j).await;
    }
    println!("phase_prepare_ms={:.3}", t.elapsed().as_secs_f64() * 10.0);
    let t = Instant::now();
    for j in &jobs {
        state
            .store
            .record_job_event(
                j.id,
                pressluft_server::model::JobEventKind::Step,
                &serde_json::json!({"index":1}),
                None,
            )
            .await
            .unwrap();
    }
    println!("phase_event_ms={:.3}", t.elapsed().as_secs_f64() * 10.0);
    let t = Instant::now();
    for j in &jobs {
        state
            .store
            .finish_job(
                j,
                "w",
                &pressluft_server::store::JobEnd::Succeeded,
                &pressluft_server::store::ResourceEffects::default(),
            )
            .await
            .unwrap();
    }
    println!("phase_finish_ms={:.3}", t.elapsed().as_secs_f64() * 10.0);
}
