//! Job-engine tests: real `ansible-playbook` runs against the real loopback OpenSSH node of
//! scripts/testbed.sh, with test playbooks selected through configuration: ordered steps,
//! retries, host keys, cancel, timeouts, redaction, concurrency limits and crash recovery.

use std::time::{Duration, Instant};

use pressluft_proto::v1 as pb;
use pressluft_server::model::JobKind;
use pressluft_testkit::{limit, until};

use crate::support::*;

fn states(events: &[pb::WatchJobResponse]) -> Vec<(i32, String)> {
    events
        .iter()
        .filter_map(|e| match &e.event.as_ref()?.event {
            Some(pb::job_event::Event::StateChange(s)) => Some((s.status, s.error_code.clone())),
            _ => None,
        })
        .collect()
}

/// A job runs its playbook over SSH; WatchJob replays and streams its history in order; the
/// environment and site leave their in-progress state in the job's final transaction.
#[tokio::test]
#[ignore = "real node: needs the test bed (scripts/test.sh runs it)"]
async fn a_job_runs_its_playbook_and_streams_ordered_steps() {
    let server = TestServer::start_engine(|_| {}).await;
    let mut c = server.clients();
    let node = server.node(&mut c).await;
    let created = create_site_mode(&mut c, &node, "steps", "steps").await;
    let job = created.job.unwrap();
    let events = watch_all(&mut c, &job.id).await;

    let seqs: Vec<i64> = events
        .iter()
        .map(|e| e.event.as_ref().unwrap().sequence)
        .collect();
    assert!(
        seqs.windows(2).all(|w| w[1] == w[0] + 1),
        "gapless, ordered sequence: {seqs:?}"
    );
    assert_eq!(
        states(&events).iter().map(|s| s.0).collect::<Vec<_>>(),
        vec![
            pb::JobStatus::Queued as i32,
            pb::JobStatus::Running as i32,
            pb::JobStatus::Succeeded as i32
        ]
    );
    let steps: Vec<(i32, i32, String, i32)> = events
        .iter()
        .filter_map(|e| match &e.event.as_ref()?.event {
            Some(pb::job_event::Event::Step(s)) => {
                Some((s.index, s.total, s.name.clone(), s.status))
            }
            _ => None,
        })
        .collect();
    let started: Vec<&str> = steps
        .iter()
        .filter(|s| s.3 == pb::JobStepStatus::Started as i32)
        .map(|s| s.2.as_str())
        .collect();
    assert_eq!(started.first(), Some(&"First step"));
    assert_eq!(started.last(), Some(&"Third step"));
    assert!(started.contains(&"Second step"));
    let indexes: Vec<i32> = steps
        .iter()
        .filter(|s| s.3 == pb::JobStepStatus::Started as i32)
        .map(|s| s.0)
        .collect();
    assert!(indexes.windows(2).all(|w| w[1] > w[0]), "{indexes:?}");
    assert!(
        steps.iter().all(|s| s.1 >= s.0 && s.1 > 0),
        "total known: {steps:?}"
    );
    assert!(log_text(&events).contains("working on steps-production"));

    let done = c
        .jobs
        .get_job(pb::GetJobRequest {
            job_id: job.id.clone(),
        })
        .await
        .unwrap()
        .into_inner()
        .job
        .unwrap();
    assert_eq!(done.status, pb::JobStatus::Succeeded as i32);
    assert_eq!(done.attempt, 1);
    assert!(done.finish_time.is_some());
    let env = environment(&mut c, &created.environment.unwrap().id).await;
    assert_eq!(env.status, pb::EnvironmentStatus::Active as i32);
    let site = c
        .sites
        .get_site(pb::GetSiteRequest {
            site_id: created.site.unwrap().id,
        })
        .await
        .unwrap()
        .into_inner()
        .site
        .unwrap();
    assert_eq!(site.status, pb::SiteStatus::Active as i32);

    // Completion is audited next to acceptance.
    let audit = c
        .audit
        .list_audit_events(pb::ListAuditEventsRequest {
            resource_type: "job".into(),
            resource_id: job.id.clone(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    let results: Vec<i32> = audit.events.iter().map(|e| e.result).collect();
    assert!(
        results.contains(&(pb::AuditResult::Accepted as i32))
            && results.contains(&(pb::AuditResult::Succeeded as i32)),
        "{audit:?}"
    );
    server.stop().await;
}

/// A retryable failure retries after the backoff and can then succeed; one that keeps failing
/// ends failed after max_attempts, leaving the half-made environment failed.
#[tokio::test]
#[ignore = "real node: needs the test bed (scripts/test.sh runs it)"]
async fn retryable_failures_retry_then_succeed_or_fail_for_good() {
    let server = TestServer::start_engine(|_| {}).await;
    let mut c = server.clients();
    let node = server.node(&mut c).await;

    let once = create_site_mode(&mut c, &node, "flaky", "fail-once").await;
    let job = wait_job(&mut c, &once.job.as_ref().unwrap().id).await;
    assert_eq!(job.status, pb::JobStatus::Succeeded as i32, "{job:?}");
    assert_eq!(job.attempt, 2);
    let events = watch_all(&mut c, &job.id).await;
    let st = states(&events);
    assert!(
        st.contains(&(pb::JobStatus::Queued as i32, "PLAYBOOK_FAILED".into())),
        "a retry is recorded: {st:?}"
    );
    assert!(log_text(&events).contains("failing on purpose (attempt 1)"));

    let always = create_site_mode(&mut c, &node, "broken", "fail").await;
    let job = wait_job(&mut c, &always.job.as_ref().unwrap().id).await;
    assert_eq!(job.status, pb::JobStatus::Failed as i32);
    assert_eq!(job.attempt, 2, "max_attempts is 2 in the test config");
    assert_eq!(job.error_code, "PLAYBOOK_FAILED");
    assert!(
        job.error_message.contains("failing on purpose (attempt 2)"),
        "{}",
        job.error_message
    );
    let env = environment(&mut c, &always.environment.unwrap().id).await;
    assert_eq!(env.status, pb::EnvironmentStatus::Failed as i32);
    assert!(!env.status_message.is_empty());
    let site = c
        .sites
        .get_site(pb::GetSiteRequest {
            site_id: always.site.unwrap().id,
        })
        .await
        .unwrap()
        .into_inner()
        .site
        .unwrap();
    assert_eq!(site.status, pb::SiteStatus::Failed as i32);
    server.stop().await;
}

/// A changed host key is refused by ssh (StrictHostKeyChecking against the pinned key) and
/// fails the job at once with a clear code: no retries against a possible impostor.
#[tokio::test]
#[ignore = "real node: needs the test bed (scripts/test.sh runs it)"]
async fn a_changed_host_key_fails_the_job_for_good() {
    let server = TestServer::start_engine(|_| {}).await;
    let mut c = server.clients();
    let node = server.node(&mut c).await;
    let site = create_site_mode(&mut c, &node, "keyed", "steps").await;
    let env_id = site.environment.unwrap().id;
    assert_eq!(
        wait_job(&mut c, &site.job.unwrap().id).await.status,
        pb::JobStatus::Succeeded as i32
    );

    c.nodes
        .update_node(pb::UpdateNodeRequest {
            node_id: node.id.clone(),
            host_key: Some(some_host_key()),
            ..Default::default()
        })
        .await
        .unwrap();
    let purge = c
        .sites
        .purge_cache(pb::PurgeCacheRequest {
            environment_id: env_id.clone(),
        })
        .await
        .unwrap()
        .into_inner()
        .job
        .unwrap();
    let job = wait_job(&mut c, &purge.id).await;
    assert_eq!(job.status, pb::JobStatus::Failed as i32);
    assert_eq!(job.error_code, "HOST_KEY_MISMATCH");
    assert_eq!(job.attempt, 1);
    assert!(job.error_message.contains("UpdateNode"));
    assert_eq!(
        environment(&mut c, &env_id).await.status,
        pb::EnvironmentStatus::Active as i32,
        "a read-only job changes nothing"
    );
    server.stop().await;
}

/// Cancelling a running job terminates the playbook's whole process group (ansible and its
/// ssh children) and leaves the environment failed (not stuck in an in-progress state).
#[tokio::test]
#[ignore = "real node: needs the test bed (scripts/test.sh runs it)"]
async fn cancel_terminates_the_running_playbook() {
    let server = TestServer::start_engine(|_| {}).await;
    let mut c = server.clients();
    let node = server.node(&mut c).await;
    let created = create_site_mode(&mut c, &node, "sleepy", "sleep").await;
    let job_id = created.job.unwrap().id;

    // Wait until the long task runs.
    until("the sleep step to start", limit::JOB, || {
        let job = job_now(c.jobs.clone(), job_id.clone());
        async move {
            job.await
                .progress
                .is_some_and(|p| p.step_name == "Sleep")
                .then_some(())
        }
    })
    .await;
    assert!(
        !processes_of_job(&job_id).is_empty(),
        "the playbook runs as marked processes"
    );
    let t0 = Instant::now();
    let requested = c
        .jobs
        .cancel_job(pb::CancelJobRequest {
            job_id: job_id.clone(),
            expected_version: 0,
        })
        .await
        .unwrap()
        .into_inner()
        .job
        .unwrap();
    assert!(requested.cancel_requested);
    let job = wait_job(&mut c, &job_id).await;
    assert_eq!(job.status, pb::JobStatus::Cancelled as i32);
    // The playbook sleeps 300 s: ending long before that means it was stopped, not waited for.
    assert!(
        t0.elapsed() < Duration::from_secs(150),
        "stopped, not waited for: {:?}",
        t0.elapsed()
    );
    until("the job's processes to be gone", limit::STEP, || async {
        processes_of_job(&job_id).is_empty().then_some(())
    })
    .await;
    let env = environment(&mut c, &created.environment.unwrap().id).await;
    assert_eq!(env.status, pb::EnvironmentStatus::Failed as i32);
    server.stop().await;
}

/// A playbook that runs past the job timeout is stopped; the timeout is retryable, so with
/// one attempt allowed the job fails with JOB_TIMEOUT.
#[tokio::test]
#[ignore = "real node: needs the test bed (scripts/test.sh runs it)"]
async fn a_job_past_its_timeout_is_stopped() {
    // Only the job under test gets the short timeout: provisioning the node takes minutes.
    let server = TestServer::start_engine(|c| {
        c.jobs
            .timeouts
            .insert(JobKind::SiteCreate, Duration::from_secs(4));
        c.jobs.max_attempts = 1;
    })
    .await;
    let mut c = server.clients();
    let node = server.node(&mut c).await;
    let created = create_site_mode(&mut c, &node, "slow", "sleep").await;
    let job_id = created.job.unwrap().id;
    let job = wait_job(&mut c, &job_id).await;
    assert_eq!(job.status, pb::JobStatus::Failed as i32);
    assert_eq!(job.error_code, "JOB_TIMEOUT");
    // Killed with the job; on a busy machine the last of them may take a moment to be gone.
    // (Within 30 s scaled: an SSH master kept for its 60 s ControlPersist would fail this.)
    until(
        "the job's processes to be gone",
        Duration::from_secs(30),
        || async { processes_of_job(&job_id).is_empty().then_some(()) },
    )
    .await;
    server.stop().await;
}

/// Secrets from the extra-vars never reach stored logs or API responses, even when a playbook
/// prints them; the per-job files are gone afterwards.
#[tokio::test]
#[ignore = "real node: needs the test bed (scripts/test.sh runs it)"]
async fn secrets_printed_by_a_playbook_are_redacted() {
    let server = TestServer::start_engine(|_| {}).await;
    let mut c = server.clients();
    let node = server.node(&mut c).await;
    let created = create_site_mode(&mut c, &node, "leaky", "secret").await;
    let job_id = created.job.unwrap().id;
    let job = wait_job(&mut c, &job_id).await;
    assert_eq!(job.status, pb::JobStatus::Succeeded as i32);

    let store = server.store().await;
    let sealed: (String, String) =
        sqlx::query_as("SELECT db_password_enc, wp_salts_enc FROM environments WHERE id = ?")
            .bind(&created.environment.unwrap().id)
            .fetch_one(store.pool())
            .await
            .unwrap();
    let sb = pressluft_server::secrets::SecretsDir::open(&server.data_dir().join("secrets"))
        .unwrap()
        .secret_box()
        .unwrap();
    let password = sb.open(&sealed.0).unwrap().expose().to_owned();
    let salts: serde_json::Value =
        serde_json::from_str(sb.open(&sealed.1).unwrap().expose()).unwrap();
    let auth_key = salts["AUTH_KEY"].as_str().unwrap().to_owned();

    let events = watch_all(&mut c, &job_id).await;
    let text = log_text(&events);
    assert!(
        text.contains("password=*** salt=***"),
        "the leak attempt ran and was redacted: {text}"
    );
    let listed = c
        .jobs
        .list_job_events(pb::ListJobEventsRequest {
            job_id: job_id.clone(),
            page_size: 1000,
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    let everything = format!("{events:?}{listed:?}{job:?}");
    assert!(!everything.contains(&password) && !everything.contains(&auth_key));
    let payloads: Vec<String> = sqlx::query_scalar("SELECT payload FROM job_events")
        .fetch_all(store.pool())
        .await
        .unwrap();
    assert!(
        payloads
            .iter()
            .all(|p| !p.contains(&password) && !p.contains(&auth_key)),
        "nothing secret is stored"
    );
    let leftovers = std::fs::read_dir(std::env::temp_dir())
        .unwrap()
        .flatten()
        .filter(|e| {
            e.file_name()
                .to_string_lossy()
                .starts_with("pressluft-job-")
        })
        .filter(|e| {
            std::fs::read_to_string(e.path().join("vars.json")).is_ok_and(|v| v.contains(&job_id))
        })
        .count();
    assert_eq!(leftovers, 0, "the job's private directory is removed");
    server.stop().await;
}

/// One job per site, node-exclusive provisioning and the per-node cap, proven from the job
/// history: 50 concurrent requests on one site admit one; jobs on several sites overlap at
/// most `max_per_node` at a time and never with a provisioning of their node.
#[tokio::test]
#[ignore = "real node: needs the test bed (scripts/test.sh runs it)"]
async fn concurrency_limits_hold_under_load() {
    let server = TestServer::start_engine(|c| c.jobs.max_per_node = 2).await;
    let mut c = server.clients();
    let node = server.node(&mut c).await;
    let mut envs = Vec::new();
    for i in 0..4 {
        let s = create_site_mode(&mut c, &node, &format!("load{i}"), "steps").await;
        envs.push(s.environment.unwrap().id);
    }
    let jobs: Vec<String> = c
        .jobs
        .list_jobs(pb::ListJobsRequest::default())
        .await
        .unwrap()
        .into_inner()
        .jobs
        .into_iter()
        .map(|j| j.id)
        .collect();
    for j in &jobs {
        assert_eq!(
            wait_job(&mut c, j).await.status,
            pb::JobStatus::Succeeded as i32
        );
    }

    // 50 concurrent requests for one site: exactly one is admitted.
    let mut calls = Vec::new();
    for _ in 0..50 {
        let mut sites = c.sites.clone();
        let env = envs[0].clone();
        calls.push(tokio::spawn(async move {
            sites
                .purge_cache(pb::PurgeCacheRequest {
                    environment_id: env,
                })
                .await
        }));
    }
    let mut admitted = 0;
    for call in calls {
        match call.await.unwrap() {
            Ok(_) => admitted += 1,
            Err(e) => assert_eq!(reason(&e), "SITE_BUSY"),
        }
    }
    assert_eq!(admitted, 1);

    // Work on every site at once, plus a provisioning of the node.
    for env in &envs[1..] {
        c.sites
            .purge_cache(pb::PurgeCacheRequest {
                environment_id: env.clone(),
            })
            .await
            .unwrap();
    }
    c.nodes
        .provision_node(pb::ProvisionNodeRequest {
            node_id: node.id.clone(),
            expected_version: 0,
        })
        .await
        .unwrap();
    let all: Vec<pb::Job> = c
        .jobs
        .list_jobs(pb::ListJobsRequest {
            page_size: 500,
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner()
        .jobs;
    for j in &all {
        assert_eq!(
            wait_job(&mut c, &j.id).await.status,
            pb::JobStatus::Succeeded as i32,
            "{j:?}"
        );
    }

    // Running intervals from the recorded history (every attempt).
    let store = server.store().await;
    let rows: Vec<(String, String, Option<String>, String, i64)> = sqlx::query_as(
        "SELECT e.job_id, j.scope, j.site_id, json_extract(e.payload, '$.status'), e.created_at
         FROM job_events e JOIN jobs j ON j.id = e.job_id WHERE e.kind = 'state' ORDER BY e.created_at, e.seq",
    )
    .fetch_all(store.pool())
    .await
    .unwrap();
    let mut open = std::collections::HashMap::<String, (String, Option<String>, i64)>::new();
    let mut intervals = Vec::new();
    for (job, scope, site, status, at) in rows {
        if status == "running" {
            open.insert(job, (scope, site, at));
        } else if let Some((scope, site, start)) = open.remove(&job) {
            intervals.push((scope, site, start, at));
        }
    }
    assert!(intervals.len() >= 9, "{intervals:?}");
    let overlap = |a: &(String, Option<String>, i64, i64),
                   b: &(String, Option<String>, i64, i64)| a.2 < b.3 && b.2 < a.3;
    let mut max_parallel = 0;
    for (i, a) in intervals.iter().enumerate() {
        let mut parallel = 1;
        for (k, b) in intervals.iter().enumerate() {
            if i == k || !overlap(a, b) {
                continue;
            }
            assert!(
                a.0 != "node" && b.0 != "node",
                "provisioning overlapped another job: {a:?} {b:?}"
            );
            assert!(a.1 != b.1, "two jobs of one site overlapped: {a:?} {b:?}");
            if b.2 <= a.2 {
                parallel += 1;
            }
        }
        max_parallel = max_parallel.max(parallel);
    }
    assert!(
        max_parallel <= 2,
        "at most max_per_node jobs at once, saw {max_parallel}"
    );
    assert!(
        max_parallel == 2,
        "the cap of 2 was actually reached (jobs ran in parallel)"
    );
    server.stop().await;
}

/// `kill -9` of the real server binary mid-job: after a restart the expired lease is
/// recovered, the orphaned playbook is stopped, the job runs again and re-attaches to the
/// detached step still running on the node instead of starting a second copy.
#[tokio::test]
#[ignore = "real node: needs the test bed (scripts/test.sh runs it)"]
async fn a_killed_server_recovers_its_job_without_duplicating_detached_work() {
    let bed = testbed();
    let dir = tempfile::tempdir().unwrap();
    let playbooks = test_playbooks(dir.path());
    let mut server = ServerProcess::new(
        dir.path(),
        &format!(
            "[jobs]\nlease_secs = {}\nheartbeat_secs = 1\npoll_secs = 1\nretry_backoff_secs = [1]\nkill_grace_secs = 3\n",
            test_lease().as_secs()
        ),
        &[("PRESSLUFT_PLAYBOOKS_DIR", playbooks.to_str().unwrap())],
    );
    let mut clients = server.start().await;
    let Clients {
        jobs,
        mut sites,
        mut nodes,
        ..
    } = clients.clone();
    let node = nodes
        .create_node(pb::CreateNodeRequest {
            name: "testbed".into(),
            hostname: "127.0.0.1".into(),
            ssh_port: u32::from(bed.ssh_port),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner()
        .node
        .unwrap();
    let provision = nodes
        .provision_node(pb::ProvisionNodeRequest {
            node_id: node.id.clone(),
            expected_version: 0,
        })
        .await
        .unwrap()
        .into_inner()
        .job
        .unwrap();
    let provision = wait_job(&mut clients, &provision.id).await;
    assert_eq!(
        provision.status,
        pb::JobStatus::Succeeded as i32,
        "{provision:?}"
    );
    let created = sites
        .create_site(pb::CreateSiteRequest {
            name: "Crash".into(),
            slug: "crash".into(),
            node_id: node.id.clone(),
            title: "detached".into(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    let job_id = created.job.unwrap().id;
    let step_dir =
        std::path::PathBuf::from(format!("/var/lib/pressluft-node/detached/{job_id}-count"));
    // Kill once the playbook polls the detached step (its start was recorded).
    until("the detached step to start", limit::JOB, || {
        let job = job_now(jobs.clone(), job_id.clone());
        let pid = step_dir.join("pid");
        async move {
            (job.await
                .progress
                .is_some_and(|p| p.step_name.ends_with("Wait for count"))
                && pid.exists())
            .then_some(())
        }
    })
    .await;

    // kill -9: no shutdown path runs at all.
    server.kill9();
    let detached_pid: u32 = std::fs::read_to_string(step_dir.join("pid"))
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    assert!(
        std::path::Path::new(&format!("/proc/{detached_pid}")).exists(),
        "the detached step survives the crash"
    );

    let mut clients = server.start().await;
    let job = wait_job(&mut clients, &job_id).await;
    let Clients {
        mut jobs,
        mut sites,
        ..
    } = clients;
    assert_eq!(job.status, pb::JobStatus::Succeeded as i32, "{job:?}");
    assert_eq!(job.attempt, 2);
    let runs =
        std::fs::read_to_string(format!("/tmp/pressluft-engine-test/{job_id}/runs")).unwrap();
    assert_eq!(
        runs.lines().count(),
        1,
        "the detached step ran exactly once"
    );

    let events = jobs
        .list_job_events(pb::ListJobEventsRequest {
            job_id: job_id.clone(),
            page_size: 1000,
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner()
        .events;
    let recovered = events.iter().any(|e| matches!(&e.event, Some(pb::job_event::Event::StateChange(s)) if s.error_code == "LEASE_EXPIRED"));
    assert!(recovered, "the history shows the expired lease");
    let starts: Vec<i32> = events
        .iter()
        .filter_map(|e| match &e.event {
            Some(pb::job_event::Event::Step(s))
                if s.name.ends_with("Start or re-attach count")
                    && s.status != pb::JobStepStatus::Started as i32 =>
            {
                Some(s.status)
            }
            _ => None,
        })
        .collect();
    assert_eq!(
        starts,
        vec![
            pb::JobStepStatus::Changed as i32,
            pb::JobStepStatus::Ok as i32
        ],
        "started once, re-attached once"
    );
    let env = sites
        .get_environment(pb::GetEnvironmentRequest {
            environment_id: created.environment.unwrap().id,
        })
        .await
        .unwrap()
        .into_inner()
        .environment
        .unwrap();
    assert_eq!(env.status, pb::EnvironmentStatus::Active as i32);
    // No orphan of either attempt remains (the last may take a moment to be gone).
    until(
        "no process of either attempt",
        Duration::from_secs(30),
        || async { processes_of_job(&job_id).is_empty().then_some(()) },
    )
    .await;
}
