//! Job-engine tests: real `ansible-playbook` runs against the real loopback OpenSSH node of
//! scripts/testbed.sh, with test playbooks selected through configuration.

use std::time::{Duration, Instant};

use pressluft_proto::v1 as pb;
use pressluft_server::model::JobKind;
use pressluft_testkit::{limit, scaled, until, within};

use crate::support::*;

/// Every event of a job, replayed and followed through WatchJob until the stream ends.
pub(crate) async fn watch_all(c: &mut Clients, job: &str) -> Vec<pb::WatchJobResponse> {
    let mut stream = c
        .jobs
        .watch_job(pb::WatchJobRequest {
            job_id: job.into(),
            after_sequence: 0,
        })
        .await
        .unwrap()
        .into_inner();
    let mut all = Vec::new();
    while let Some(message) = within("the job's next event", limit::STEP, stream.message())
        .await
        .unwrap()
    {
        all.push(message);
    }
    all
}

fn states(events: &[pb::WatchJobResponse]) -> Vec<(i32, String)> {
    events
        .iter()
        .filter_map(|e| match &e.event.as_ref()?.event {
            Some(pb::job_event::Event::StateChange(s)) => Some((s.status, s.error_code.clone())),
            _ => None,
        })
        .collect()
}

fn log_text(events: &[pb::WatchJobResponse]) -> String {
    events
        .iter()
        .filter_map(|e| match &e.event.as_ref()?.event {
            Some(pb::job_event::Event::LogLine(l)) => Some(l.text.clone()),
            _ => None,
        })
        .collect::<Vec<_>>()
        .join("\n")
}

pub(crate) async fn environment(c: &mut Clients, id: &str) -> pb::Environment {
    c.sites
        .get_environment(pb::GetEnvironmentRequest {
            environment_id: id.into(),
        })
        .await
        .unwrap()
        .into_inner()
        .environment
        .unwrap()
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

/// Scheduled backups (real backup_create into the S3-compatible bucket) fire at their interval
/// and not before; expired ones are deleted from storage by the scheduler's backup_cleanup,
/// which never deletes an environment's newest completed backup.
#[tokio::test]
#[ignore = "real node: needs the test bed (scripts/test.sh runs it)"]
async fn scheduled_backups_fire_on_time_and_cleanup_deletes_only_expired_objects() {
    // Longer than a backup takes on a quiet machine, so firing early is seen (a backup that
    // runs longer delays the next one, which the upper bound allows).
    const INTERVAL: i64 = 20;
    let (server, tag) = TestServer::start_real(|c| {
        c.jobs.backup_cleanup_every = Duration::from_secs(2);
        c.min_backup_interval = Duration::from_secs(5);
        c.min_backup_retention = Duration::from_secs(5);
    })
    .await;
    let mut c = server.clients();
    let node = server.node(&mut c).await;
    let target = s3_target(&format!("scheduled-{tag}"), "scheduled");
    c.settings.set_backup_target(target.clone()).await.unwrap();
    let (created, env) = live_site(&mut c, &node, &format!("sc{tag}"), &format!("sc {tag}")).await;
    let schedule = |enabled: bool, retention: i64| pb::UpdateBackupScheduleRequest {
        environment_id: env.id.clone(),
        expected_version: 0,
        schedule: Some(pb::BackupSchedule {
            enabled,
            interval: Some(prost_types::Duration {
                seconds: INTERVAL,
                nanos: 0,
            }),
            scope: pb::BackupScope::Db as i32,
            retention: Some(prost_types::Duration {
                seconds: retention,
                nanos: 0,
            }),
        }),
    };
    let too_short = c
        .sites
        .update_backup_schedule(pb::UpdateBackupScheduleRequest {
            schedule: Some(pb::BackupSchedule {
                interval: Some(prost_types::Duration {
                    seconds: 4,
                    nanos: 0,
                }),
                ..schedule(true, 3600).schedule.unwrap()
            }),
            ..schedule(true, 3600)
        })
        .await
        .unwrap_err();
    assert_eq!(too_short.code(), tonic::Code::InvalidArgument);
    let sites = c.sites.clone();
    let env_id = env.id.clone();
    let list = move || {
        let mut sites = sites.clone();
        let env_id = env_id.clone();
        async move {
            let mut list = sites
                .list_backups(pb::ListBackupsRequest {
                    environment_id: env_id,
                    ..Default::default()
                })
                .await
                .unwrap()
                .into_inner()
                .backups;
            list.sort_by_key(|b| b.create_time.map(|t| (t.seconds, t.nanos)));
            list
        }
    };
    // Ended scheduled backups not in `old`: completed, or already expired by the cleanup.
    let ended_since = |backups: &[pb::Backup], old: &[pb::Backup]| -> Vec<pb::Backup> {
        backups
            .iter()
            .filter(|b| !old.iter().any(|o| o.id == b.id))
            .filter(|b| {
                b.status == pb::BackupStatus::Completed as i32
                    || b.status == pb::BackupStatus::Expired as i32
            })
            .cloned()
            .collect()
    };

    // Phase 1, retention of an hour (so a slow machine's cleanup cannot take any): three
    // scheduled backups, each one interval after the previous one ended, then the schedule off.
    c.sites
        .update_backup_schedule(schedule(true, 3600))
        .await
        .unwrap();
    let kept = until("three scheduled backups", limit::JOB, || async {
        let done = ended_since(&list().await, &[]);
        (done.len() >= 3).then_some(done)
    })
    .await;
    c.sites
        .update_backup_schedule(schedule(false, 3600))
        .await
        .unwrap();
    for b in &kept {
        assert_eq!(b.status, pb::BackupStatus::Completed as i32, "{b:?}");
        assert_eq!(b.trigger, pb::BackupTrigger::Scheduled as i32);
        assert_eq!(b.scope, pb::BackupScope::Db as i32);
        assert!(b.expire_time.is_some());
        assert_eq!(s3_cat(&target, &b.object_key).len() as i64, b.size_bytes);
        let job = c
            .jobs
            .get_job(pb::GetJobRequest {
                job_id: b.job_id.clone(),
            })
            .await
            .unwrap()
            .into_inner()
            .job
            .unwrap();
        assert_eq!(job.requested_by, "scheduler");
    }
    for pair in kept.windows(2) {
        let gap = pair[1].create_time.unwrap().seconds - pair[0].create_time.unwrap().seconds;
        let ran = pair[0].complete_time.unwrap().seconds - pair[0].create_time.unwrap().seconds;
        // Never before the interval; later only by how long the previous backup ran, plus
        // the scheduler's tick and the queue's pickup.
        let slack = i64::try_from(scaled(Duration::from_secs(30)).as_secs()).unwrap();
        assert!(
            gap >= INTERVAL - 1 && gap <= ran + INTERVAL + slack,
            "one interval ({INTERVAL} s) after the previous one, late only by how long it ran \
             ({ran} s): {gap} s apart"
        );
    }
    assert!(
        environment(&mut c, &env.id)
            .await
            .last_backup_time
            .is_some()
    );

    // Phase 2, retention of 10 s: two more scheduled backups; cleanup deletes the objects of
    // every expired one but the environment's newest, and none of phase 1's (not expired).
    c.sites
        .update_backup_schedule(schedule(true, 10))
        .await
        .unwrap();
    until(
        "two scheduled backups with a short retention",
        limit::JOB,
        || async { (ended_since(&list().await, &kept).len() >= 2).then_some(()) },
    )
    .await;
    c.sites
        .update_backup_schedule(schedule(false, 10))
        .await
        .unwrap();
    // Once the schedule is off, one more backup may still be running: wait for all to end.
    let short = until("the short-retention backups to end", limit::JOB, || async {
        let backups = list().await;
        let ended = ended_since(&backups, &kept);
        (ended.len() + kept.len() == backups.len()).then_some(ended)
    })
    .await;
    let newest_id = short.last().unwrap().id.clone();
    let expires = short.last().unwrap().expire_time.unwrap().seconds;
    let expired = until(
        "cleanup to expire all short ones but the newest",
        limit::JOB,
        || async {
            let backups = list().await;
            let expired: Vec<_> = backups
                .iter()
                .filter(|b| b.status == pb::BackupStatus::Expired as i32)
                .cloned()
                .collect();
            (expired.len() + 1 == short.len()).then_some(expired)
        },
    )
    .await;
    // Past its retention too, the newest stays through later cleanup passes (every 2 s here;
    // the scheduler never queues a cleanup for an environment's newest backup).
    let past = u64::try_from(expires).unwrap() + scaled(Duration::from_secs(15)).as_secs();
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    tokio::time::sleep(Duration::from_secs(past.saturating_sub(now))).await;
    let after = list().await;
    let newest = after.iter().find(|b| b.id == newest_id).unwrap().clone();
    assert_eq!(
        newest.status,
        pb::BackupStatus::Completed as i32,
        "the newest backup stays: {after:?}"
    );
    for b in &kept {
        let now = after.iter().find(|a| a.id == b.id).unwrap();
        assert_eq!(
            now.status,
            pb::BackupStatus::Completed as i32,
            "not expired: {now:?}"
        );
    }
    let listed = bucket_listing(&target);
    let name = |b: &pb::Backup| b.object_key.rsplit('/').next().unwrap().to_owned();
    assert!(listed.contains(&name(&newest)), "{listed}");
    for b in &kept {
        assert!(listed.contains(&name(b)), "{} deleted: {listed}", b.id);
    }
    for b in &expired {
        assert!(
            !listed.contains(&name(b)),
            "{} still stored: {listed}",
            b.id
        );
    }
    let cleanups = c
        .jobs
        .list_jobs(pb::ListJobsRequest {
            types: vec![pb::JobType::BackupCleanup as i32],
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner()
        .jobs;
    assert!(
        cleanups
            .iter()
            .all(|j| j.status != pb::JobStatus::Failed as i32),
        "{cleanups:?}"
    );
    delete_site_and_wait(&mut c, &created.site.as_ref().unwrap().id).await;
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

/// The real node_provision playbook configures the loopback node (nginx, PHP-FPM, MariaDB,
/// Redis, fail2ban, helpers) through the API, and provisioning again changes nothing.
#[tokio::test]
#[ignore = "real node: needs the test bed (scripts/test.sh runs it)"]
async fn node_provision_configures_the_stack_and_a_rerun_changes_nothing() {
    let server = TestServer::start_engine(|c| {
        c.playbooks_dir = repo_root().join("playbooks");
        c.firewall_allow_tcp = machine_public_ports().to_vec();
    })
    .await;
    let mut c = server.clients();
    let node = server.node(&mut c).await;
    let php = node.php_versions[0].clone();

    // The firewall: its own table, dropping what it does not accept; SSH (the node's port
    // too), HTTP, HTTPS and the configured ports accepted.
    let table =
        String::from_utf8(run("nft", &["list", "table", "inet", "pressluft"]).stdout).unwrap();
    assert!(table.contains("policy drop;"), "{table}");
    let accepted = table
        .lines()
        .find(|l| l.contains("tcp dport"))
        .unwrap_or_else(|| panic!("{table}"));
    let mut expected = vec![22, 80, 443, testbed().ssh_port];
    expected.extend(machine_public_ports());
    for port in expected {
        assert!(accepted.contains(&port.to_string()), "{port} in {accepted}");
    }
    assert!(php.starts_with('8'), "{php}");

    // Unknown hosts get no answer (nginx 444 closes the connection).
    let reply = std::process::Command::new("curl")
        .args([
            "-s",
            "-o",
            "/dev/null",
            "-w",
            "%{http_code}",
            "-H",
            "Host: nobody.example",
            "http://127.0.0.1/",
        ])
        .output()
        .unwrap();
    assert_eq!(
        String::from_utf8_lossy(&reply.stdout),
        "000",
        "the catch-all vhost answers nothing"
    );
    for service in [
        format!("php{php}-fpm"),
        "nginx".into(),
        "mariadb".into(),
        "redis-server".into(),
        "fail2ban".into(),
    ] {
        let status = std::process::Command::new("service")
            .args([service.as_str(), "status"])
            .output()
            .unwrap();
        assert!(status.status.success(), "{service} runs");
    }
    let ini =
        std::fs::read_to_string(format!("/etc/php/{php}/fpm/conf.d/90-pressluft.ini")).unwrap();
    assert!(ini.contains("disable_functions = exec") && ini.contains("expose_php = Off"));
    let fpm = std::fs::read_to_string(format!("/etc/php/{php}/fpm/php-fpm.conf")).unwrap();
    assert!(fpm.lines().any(|l| l == "process_control_timeout = 20s"));
    // The control plane's key: trusted only from here, restricted (security.md).
    let public = std::fs::read_to_string(testbed().key.with_extension("pub")).unwrap();
    let blob = public.split_whitespace().nth(1).unwrap();
    let keys = std::fs::read_to_string("/root/.ssh/authorized_keys").unwrap();
    let lines: Vec<&str> = keys.lines().filter(|l| l.contains(blob)).collect();
    assert_eq!(
        lines,
        [format!(
            "from=\"127.0.0.1,::1\",restrict ssh-ed25519 {blob} pressluft-control-plane"
        )],
        "{keys}"
    );

    let again = c
        .nodes
        .provision_node(pb::ProvisionNodeRequest {
            node_id: node.id.clone(),
            expected_version: 0,
        })
        .await
        .unwrap()
        .into_inner()
        .job
        .unwrap();
    let events = watch_all(&mut c, &again.id).await;
    assert_eq!(
        events.last().unwrap().job.as_ref().unwrap().status,
        pb::JobStatus::Succeeded as i32
    );
    assert_steps_in_order(
        &events,
        &[
            "Supported operating system",
            "PHP hardening",
            "Firewall rules",
            "Fail2ban jails",
            "Services running",
            "Report",
        ],
    );
    let changed: Vec<String> = events
        .iter()
        .filter_map(|e| match &e.event.as_ref()?.event {
            Some(pb::job_event::Event::Step(s))
                if s.status == pb::JobStepStatus::Changed as i32 =>
            {
                Some(s.name.clone())
            }
            _ => None,
        })
        .collect();
    assert!(changed.is_empty(), "re-provisioning changed {changed:?}");
    server.stop().await;
}

pub(crate) fn run(cmd: &str, args: &[&str]) -> std::process::Output {
    std::process::Command::new(cmd).args(args).output().unwrap()
}

/// Two real WordPress sites through the API on the loopback node: each serves its title via
/// nginx from its own release, users/pools/databases are isolated, and deleting the sites
/// leaves nothing on the node.
#[tokio::test]
#[ignore = "real node: needs the test bed (scripts/test.sh runs it)"]
async fn sites_are_created_isolated_and_deleted_for_real() {
    let (server, tag) = TestServer::start_real(|_| {}).await;
    let tag = tag.as_str();
    let mut c = server.clients();
    let node = server.node(&mut c).await;
    let store = server.store().await;
    let sb = pressluft_server::secrets::SecretsDir::open(&server.data_dir().join("secrets"))
        .unwrap()
        .secret_box()
        .unwrap();

    let mut sites = Vec::new();
    for name in ["alpha", "beta"] {
        let slug = format!("{name}{tag}");
        let created = create_site_mode(&mut c, &node, &slug, &format!("{name} title {tag}")).await;
        sites.push(created);
    }
    let mut envs = Vec::new();
    for created in &sites {
        let job = wait_job(&mut c, &created.job.as_ref().unwrap().id).await;
        assert_eq!(job.status, pb::JobStatus::Succeeded as i32, "{job:?}");
        assert_steps_in_order(
            &watch_all(&mut c, &job.id).await,
            &[
                "Site user",
                "Database and its user",
                "Shared configuration",
                "PHP-FPM pool",
                "Nginx server block",
                "Seal the release",
                "Switch current",
                "Reload nginx",
                "WordPress installed",
                "Site answers through its vhost",
                "Report",
            ],
        );
        let env = environment(&mut c, &created.environment.as_ref().unwrap().id).await;
        assert_eq!(env.status, pb::EnvironmentStatus::Active as i32);
        let releases = c
            .sites
            .list_releases(pb::ListReleasesRequest {
                environment_id: env.id.clone(),
                ..Default::default()
            })
            .await
            .unwrap()
            .into_inner()
            .releases;
        assert_eq!(releases.len(), 1);
        assert!(releases[0].is_current && releases[0].health == pb::ReleaseHealth::Healthy as i32);
        assert_eq!(env.current_release_id, releases[0].id);
        assert!(
            releases[0].resolved_ref.starts_with("6."),
            "{:?}",
            releases[0]
        );

        let host = env.preview_url.trim_start_matches("http://").to_owned();
        let out = run(
            "curl",
            &[
                "-s",
                "-D",
                "-",
                "-H",
                &format!("Host: {host}"),
                "http://127.0.0.1/",
            ],
        );
        let page = String::from_utf8_lossy(&out.stdout).to_string();
        assert!(
            page.starts_with("HTTP/1.1 200"),
            "{}",
            &page[..page.len().min(300)]
        );
        let title = format!(
            "{} title {tag}",
            if envs.is_empty() { "alpha" } else { "beta" }
        );
        assert!(
            page.contains(&format!("<title>{title}")),
            "the site shows its own title"
        );
        assert!(
            page.contains(&format!("X-Pressluft-Release: {}", releases[0].path)),
            "the serving release is exposed"
        );
        let denied = run(
            "curl",
            &[
                "-s",
                "-o",
                "/dev/null",
                "-w",
                "%{http_code}",
                "-H",
                &format!("Host: {host}"),
                "http://127.0.0.1/wp-config.php",
            ],
        );
        assert_eq!(String::from_utf8_lossy(&denied.stdout), "403");
        envs.push(env);
    }

    // Isolation: users, nginx and databases.
    let (a, b) = (&envs[0], &envs[1]);
    assert_ne!(a.linux_uid, b.linux_uid);
    let b_config = format!("{}/shared/wp-config.php", b.root_path);
    assert!(
        !run("sudo", &["-n", "-u", &a.linux_user, "cat", &b_config])
            .status
            .success(),
        "site A cannot read B's config"
    );
    assert!(
        !run("sudo", &["-n", "-u", &a.linux_user, "ls", &b.root_path])
            .status
            .success(),
        "site A cannot list B's tree"
    );
    assert!(
        !run("sudo", &["-n", "-u", "www-data", "cat", &b_config])
            .status
            .success(),
        "nginx cannot read wp-config"
    );
    assert!(
        run("sudo", &["-n", "-u", &b.linux_user, "cat", &b_config])
            .status
            .success(),
        "the site itself can"
    );
    let sealed: String =
        sqlx::query_scalar("SELECT db_password_enc FROM environments WHERE id = ?")
            .bind(&a.id)
            .fetch_one(store.pool())
            .await
            .unwrap();
    let a_password = sb.open(&sealed).unwrap().expose().to_owned();
    let own = std::process::Command::new("mysql")
        .args([
            "-u",
            &a.db_name,
            "-N",
            "-e",
            &format!("SELECT COUNT(*) FROM `{}`.wp_options", a.db_name),
        ])
        .env("MYSQL_PWD", &a_password)
        .output()
        .unwrap();
    assert!(
        own.status.success(),
        "A reads its own database: {}",
        String::from_utf8_lossy(&own.stderr)
    );
    let other = std::process::Command::new("mysql")
        .args([
            "-u",
            &a.db_name,
            "-N",
            "-e",
            &format!("SELECT COUNT(*) FROM `{}`.wp_options", b.db_name),
        ])
        .env("MYSQL_PWD", &a_password)
        .output()
        .unwrap();
    assert!(!other.status.success(), "A cannot read B's database");
    a_tenant_changes_only_what_it_must_write(a, b);

    // Deleting the sites removes everything from the node.
    for created in &sites {
        let site = created.site.as_ref().unwrap();
        let job = c
            .sites
            .delete_site(pb::DeleteSiteRequest {
                site_id: site.id.clone(),
                expected_version: 0,
            })
            .await
            .unwrap()
            .into_inner()
            .job
            .unwrap();
        let job = wait_job(&mut c, &job.id).await;
        assert_eq!(job.status, pb::JobStatus::Succeeded as i32, "{job:?}");
        assert_steps_in_order(
            &watch_all(&mut c, &job.id).await,
            &[
                "Nginx server blocks removed",
                "PHP-FPM pools removed",
                "Databases and database users dropped",
                "Files removed",
                "Linux users removed",
            ],
        );
        let site = c
            .sites
            .get_site(pb::GetSiteRequest {
                site_id: site.id.clone(),
            })
            .await
            .unwrap()
            .into_inner()
            .site
            .unwrap();
        assert_eq!(site.status, pb::SiteStatus::Deleted as i32);
    }
    for env in &envs {
        assert_nothing_left(env);
    }
    server.stop().await;
}

/// What code running as A's site user (a tenant, e.g. through a vulnerable plugin) can and
/// cannot do: write uploads, but not its code or which release is live; not reach B's
/// files through nginx with a link; not escape its tree or start processes from PHP on the
/// command line.
fn a_tenant_changes_only_what_it_must_write(a: &pb::Environment, b: &pb::Environment) {
    let as_user = |user: &str, script: &str| run("sudo", &["-n", "-u", user, "sh", "-c", script]);
    let (a_root, b_root) = (a.root_path.as_str(), b.root_path.as_str());
    let a_host = a.preview_url.trim_start_matches("http://");
    let fetch = |path: &str| {
        let out = run(
            "curl",
            &[
                "-s",
                "-w",
                "\n%{http_code}",
                "-H",
                &format!("Host: {a_host}"),
                &format!("http://127.0.0.1{path}"),
            ],
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    };

    assert!(
        as_user(
            &a.linux_user,
            &format!("echo own-upload > {a_root}/shared/uploads/own.txt")
        )
        .status
        .success(),
        "A writes its uploads"
    );
    assert_eq!(
        fetch("/wp-content/uploads/own.txt"),
        "own-upload\n\n200",
        "nginx serves A's upload"
    );

    for (attack, script) in [
        (
            "point current elsewhere",
            format!("ln -sfn /tmp {a_root}/current"),
        ),
        (
            "replace current",
            format!("mv {a_root}/current {a_root}/current.old"),
        ),
        (
            "change its code",
            format!("echo '<?php // x' >> {a_root}/current/index.php"),
        ),
        (
            "add code",
            format!("touch {a_root}/current/wp-content/plugins/planted.php"),
        ),
        (
            "rename a release",
            format!("mv {a_root}/current/ {a_root}/releases/renamed"),
        ),
        (
            "write releases/",
            format!("mkdir {a_root}/releases/planted"),
        ),
        (
            "replace shared/uploads",
            format!("mv {a_root}/shared/uploads {a_root}/shared/gone"),
        ),
        ("chmod its code", format!("chmod -R o+w {a_root}/current/")),
    ] {
        let out = as_user(&a.linux_user, &script);
        assert!(!out.status.success(), "A could {attack}: {script}");
    }
    assert!(fetch("/").ends_with("\n200"), "A's site still answers");

    // A link in A's uploads to a file of B's: nginx reads B's files, but serves no link
    // whose owner differs from its target's.
    assert!(
        as_user(
            &b.linux_user,
            &format!("echo b-private > {b_root}/shared/uploads/private.txt")
        )
        .status
        .success()
    );
    assert!(
        as_user(
            &a.linux_user,
            &format!("ln -s {b_root}/shared/uploads/private.txt {a_root}/shared/uploads/leak.txt")
        )
        .status
        .success()
    );
    let leaked = fetch("/wp-content/uploads/leak.txt");
    assert!(
        !leaked.contains("b-private") && !leaked.ends_with("\n200"),
        "served through a link: {leaked}"
    );

    // PHP on the command line, as the platform runs it for A: A's tree only, no processes.
    let php = |code: &str| {
        let out = run(
            "sudo",
            &[
                "-n",
                "-u",
                &a.linux_user,
                "/usr/local/lib/pressluft/pressluft-php",
                a_root,
                "-r",
                code,
            ],
        );
        (
            out.status.success(),
            String::from_utf8_lossy(&out.stdout).into_owned(),
        )
    };
    let (_, own) = php(&format!(
        "echo file_get_contents('{a_root}/shared/uploads/own.txt');"
    ));
    assert_eq!(own, "own-upload\n", "PHP reads A's own files");
    for code in [
        format!("echo file_get_contents('{b_root}/shared/uploads/private.txt');"),
        "echo file_get_contents('/etc/passwd');".to_owned(),
        "echo shell_exec('id');".to_owned(),
        "echo exec('id');".to_owned(),
        "$p = proc_open('id', [], $pipes); echo 'started';".to_owned(),
    ] {
        let (_, out) = php(&code);
        assert!(
            !out.contains("b-private")
                && !out.contains("root:")
                && !out.contains("uid=")
                && !out.contains("started"),
            "PHP as A ran {code}: {out}"
        );
    }
    let as_root = run(
        "/usr/local/lib/pressluft/pressluft-php",
        &[a_root, "-r", "echo 1;"],
    );
    assert!(
        !as_root.status.success(),
        "the confined PHP never runs as root"
    );

    // Redis: nobody gets in anonymously; A's user (password in A's wp-config.php) reaches
    // A's keys and nothing else.
    let anonymous = run("sudo", &["-n", "-u", "nobody", "redis-cli", "ping"]);
    let anonymous = String::from_utf8_lossy(&anonymous.stdout).into_owned();
    assert!(anonymous.contains("NOAUTH"), "anonymous Redis: {anonymous}");
    let config = std::fs::read_to_string(format!("{a_root}/shared/wp-config.php")).unwrap();
    let password = config
        .lines()
        .find_map(|l| l.strip_prefix("define('PRESSLUFT_REDIS_PASSWORD', '"))
        .and_then(|rest| rest.strip_suffix("');"))
        .expect("A's wp-config.php holds its Redis password")
        .to_owned();
    let redis_as_a = |args: &[&str]| {
        let out = std::process::Command::new("redis-cli")
            .args(["--user", &a.linux_user])
            .args(args)
            .env("REDISCLI_AUTH", &password)
            .output()
            .unwrap();
        String::from_utf8_lossy(&out.stdout).trim().to_owned()
    };
    assert_eq!(
        redis_as_a(&["set", &format!("{}:probe", a.linux_user), "1"]),
        "OK"
    );
    assert_eq!(
        redis_as_a(&["get", &format!("{}:probe", a.linux_user)]),
        "1"
    );
    assert!(
        run(
            "/usr/local/lib/pressluft/pressluft-redis",
            &["set", &format!("{}:secret", b.linux_user), "b"]
        )
        .status
        .success()
    );
    for args in [
        vec!["get".to_owned(), format!("{}:secret", b.linux_user)],
        vec![
            "set".to_owned(),
            format!("{}:secret", b.linux_user),
            "a".to_owned(),
        ],
        vec!["del".to_owned(), format!("{}:secret", b.linux_user)],
        vec!["flushall".to_owned()],
        vec!["keys".to_owned(), "*".to_owned()],
        vec!["scan".to_owned(), "0".to_owned()],
        vec!["randomkey".to_owned()],
        vec!["config".to_owned(), "get".to_owned(), "*".to_owned()],
        vec![
            "eval".to_owned(),
            format!("return redis.call('get', '{}:secret')", b.linux_user),
            "0".to_owned(),
        ],
    ] {
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let reply = redis_as_a(&args);
        assert!(reply.contains("NOPERM"), "A ran {args:?}: {reply}");
    }
    let b_secret = run(
        "/usr/local/lib/pressluft/pressluft-redis",
        &["get", &format!("{}:secret", b.linux_user)],
    );
    assert_eq!(
        String::from_utf8_lossy(&b_secret.stdout).trim(),
        "b",
        "B's key untouched"
    );
}

/// A failed environment becomes active only through ResetEnvironment, whose health_check job
/// (HTTP through the vhost, WordPress installed, a query as the site's database user) passes.
#[tokio::test]
#[ignore = "real node: needs the test bed (scripts/test.sh runs it)"]
async fn reset_revalidates_a_failed_environment_with_real_health_checks() {
    let (server, tag) = TestServer::start_real(|_| {}).await;
    let tag = tag.as_str();
    let mut c = server.clients();
    let node = server.node(&mut c).await;
    let created = create_site_mode(&mut c, &node, &format!("reset{tag}"), "Reset me").await;
    assert_eq!(
        wait_job(&mut c, &created.job.as_ref().unwrap().id)
            .await
            .status,
        pb::JobStatus::Succeeded as i32
    );
    let env_id = created.environment.as_ref().unwrap().id.clone();

    // As a job that lost track of the environment would leave it.
    let store = server.store().await;
    sqlx::query("UPDATE environments SET status = 'failed', status_message = 'lost' WHERE id = ?")
        .bind(&env_id)
        .execute(store.pool())
        .await
        .unwrap();
    let job = c
        .sites
        .reset_environment(pb::ResetEnvironmentRequest {
            environment_id: env_id.clone(),
            expected_version: 0,
        })
        .await
        .unwrap()
        .into_inner()
        .job
        .unwrap();
    let job = wait_job(&mut c, &job.id).await;
    assert_eq!(job.status, pb::JobStatus::Succeeded as i32, "{job:?}");
    assert_eq!(
        environment(&mut c, &env_id).await.status,
        pb::EnvironmentStatus::Active as i32
    );

    // Break the database password on the node: the re-validation fails and nothing changes.
    let env = environment(&mut c, &env_id).await;
    assert!(
        run(
            "mysql",
            &[
                "-e",
                &format!(
                    "ALTER USER '{}'@'localhost' IDENTIFIED BY 'wrong-on-purpose'",
                    env.db_name
                )
            ]
        )
        .status
        .success()
    );
    sqlx::query("UPDATE environments SET status = 'failed' WHERE id = ?")
        .bind(&env_id)
        .execute(store.pool())
        .await
        .unwrap();
    let job = c
        .sites
        .reset_environment(pb::ResetEnvironmentRequest {
            environment_id: env_id.clone(),
            expected_version: 0,
        })
        .await
        .unwrap()
        .into_inner()
        .job
        .unwrap();
    let job = wait_job(&mut c, &job.id).await;
    assert_eq!(job.status, pb::JobStatus::Failed as i32);
    assert_eq!(
        environment(&mut c, &env_id).await.status,
        pb::EnvironmentStatus::Failed as i32,
        "still failed"
    );

    let site = created.site.as_ref().unwrap();
    delete_site_and_wait(&mut c, &site.id).await;
    assert!(!std::path::Path::new(&env.root_path).exists());
    server.stop().await;
}

/// One plain HTTP/1.1 GET to the loopback nginx: (status, X-Pressluft-Release).
pub(crate) fn get_release(host: &str) -> (u16, String) {
    use std::io::{Read as _, Write as _};
    let Ok(mut stream) = std::net::TcpStream::connect("127.0.0.1:80") else {
        return (0, String::new());
    };
    let _ = stream.set_read_timeout(Some(scaled(Duration::from_mins(1))));
    let _ = write!(
        stream,
        "GET / HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n"
    );
    let mut response = Vec::new();
    let _ = stream.read_to_end(&mut response);
    let text = String::from_utf8_lossy(&response);
    let status = status_of(&text);
    let release = text
        .lines()
        .find_map(|l| l.strip_prefix("X-Pressluft-Release: "))
        .unwrap_or_default()
        .trim()
        .to_owned();
    (status, release)
}

/// A deploy builds a new release, checks it before it goes live and switches atomically:
/// a request loop running throughout sees only 200s, first from the old release, then from
/// the new one.
#[tokio::test]
#[ignore = "real node: needs the test bed (scripts/test.sh runs it)"]
async fn a_deploy_switches_releases_with_zero_downtime() {
    let (server, tag) = TestServer::start_real(|_| {}).await;
    let tag = tag.as_str();
    let mut c = server.clients();
    let node = server.node(&mut c).await;
    let (created, env) = live_site(&mut c, &node, &format!("deploy{tag}"), "Deploy me").await;
    let host = env.preview_url.trim_start_matches("http://").to_owned();
    let first = releases_of(&mut c, &env.id).await;
    let old = first[0].path.clone();
    assert_eq!(get_release(&host), (200, old.clone()));

    // A request loop for the whole deploy, however long it takes (bounded for safety).
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let answered = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let looper = {
        let stop = stop.clone();
        let answered = answered.clone();
        let host = host.clone();
        std::thread::spawn(move || {
            let mut seen = Vec::new();
            while !stop.load(std::sync::atomic::Ordering::Relaxed) && seen.len() < 100_000 {
                seen.push(get_release(&host));
                answered.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                std::thread::sleep(Duration::from_millis(20));
            }
            seen
        })
    };
    let source = pb::ReleaseSource {
        source: Some(pb::release_source::Source::Wordpress(pb::WordPressSource {
            version: "latest".into(),
        })),
    };
    let job = c
        .sites
        .deploy_environment(pb::DeployEnvironmentRequest {
            environment_id: env.id.clone(),
            expected_version: 0,
            source: Some(source),
        })
        .await
        .unwrap()
        .into_inner()
        .job
        .unwrap();
    let job = wait_job(&mut c, &job.id).await;
    // Two more answers, both begun after the job ended, before the loop stops.
    let at_end = answered.load(std::sync::atomic::Ordering::Relaxed);
    until("two requests after the deploy", limit::STEP, || async {
        (answered.load(std::sync::atomic::Ordering::Relaxed) >= at_end + 2).then_some(())
    })
    .await;
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let seen = looper.join().unwrap();
    assert_eq!(job.status, pb::JobStatus::Succeeded as i32, "{job:?}");
    assert_steps_in_order(
        &watch_all(&mut c, &job.id).await,
        &[
            "Release now live",
            "Seal the release",
            "Candidate server block",
            "Candidate answers 200",
            "Switch current",
            "PHP-FPM reloaded",
            "Live site answers 200",
            "Candidate server block removed",
            "Releases beyond the ones kept removed",
            "Report",
        ],
    );

    let releases = releases_of(&mut c, &env.id).await;
    assert_eq!(releases.len(), 2);
    let new = releases.iter().find(|r| r.is_current).unwrap().path.clone();
    assert_ne!(new, old);
    let bad: Vec<&(u16, String)> = seen.iter().filter(|(s, _)| *s != 200).collect();
    assert!(
        bad.is_empty(),
        "{} of {} requests failed: {:?}",
        bad.len(),
        seen.len(),
        &bad[..bad.len().min(5)]
    );
    let order: Vec<&str> = seen.iter().map(|(_, r)| r.as_str()).collect();
    let switch = order
        .iter()
        .position(|r| *r == new)
        .expect("the new release served");
    assert!(
        switch > 0 && order[..switch].iter().all(|r| *r == old),
        "old release until the switch"
    );
    assert!(
        order[switch..].iter().all(|r| *r == new),
        "new release from the switch on"
    );
    assert!(
        seen.len() > 20,
        "the loop ran throughout ({} requests)",
        seen.len()
    );
    assert_eq!(
        environment(&mut c, &env.id).await.status,
        pb::EnvironmentStatus::Active as i32
    );

    // Roll back to the previous good release, then forward to a named one.
    let rollback = |release_id: String| pb::RollbackEnvironmentRequest {
        environment_id: env.id.clone(),
        expected_version: 0,
        release_id,
    };
    let job = c
        .sites
        .rollback_environment(rollback(String::new()))
        .await
        .unwrap()
        .into_inner()
        .job
        .unwrap();
    assert_eq!(
        wait_job(&mut c, &job.id).await.status,
        pb::JobStatus::Succeeded as i32
    );
    assert_steps_in_order(
        &watch_all(&mut c, &job.id).await,
        &[
            "Release now live",
            "Target release exists",
            "Switch current",
            "PHP-FPM reloaded",
            "Live site answers 200",
        ],
    );
    assert_eq!(
        get_release(&host),
        (200, old.clone()),
        "the previous release serves again"
    );
    let current = |c: &mut Clients| {
        let mut sites = c.sites.clone();
        let env_id = env.id.clone();
        async move {
            sites
                .list_releases(pb::ListReleasesRequest {
                    environment_id: env_id,
                    ..Default::default()
                })
                .await
                .unwrap()
                .into_inner()
                .releases
                .into_iter()
                .find(|r| r.is_current)
                .unwrap()
                .path
        }
    };
    assert_eq!(current(&mut c).await, old);
    let new_id = releases.iter().find(|r| r.path == new).unwrap().id.clone();
    let job = c
        .sites
        .rollback_environment(rollback(new_id.clone()))
        .await
        .unwrap()
        .into_inner()
        .job
        .unwrap();
    assert_eq!(
        wait_job(&mut c, &job.id).await.status,
        pb::JobStatus::Succeeded as i32
    );
    assert_eq!(
        get_release(&host),
        (200, new.clone()),
        "a named release serves"
    );
    assert_eq!(current(&mut c).await, new);
    let live = c
        .sites
        .rollback_environment(rollback(new_id))
        .await
        .unwrap_err();
    assert_eq!(
        reason(&live),
        "NO_ROLLBACK_TARGET",
        "the live release is no target"
    );

    let site = created.site.as_ref().unwrap();
    delete_site_and_wait(&mut c, &site.id).await;
    server.stop().await;
}

/// Serves a directory over HTTP on loopback (python3's http.server) until dropped.
struct FileServer {
    child: std::process::Child,
    port: u16,
}

impl Drop for FileServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn file_server(dir: &std::path::Path) -> FileServer {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let child = std::process::Command::new("python3")
        .args([
            "-m",
            "http.server",
            &port.to_string(),
            "--bind",
            "127.0.0.1",
            "--directory",
        ])
        .arg(dir)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    // The guard owns the child from here on: it is killed and reaped on every path.
    let server = FileServer { child, port };
    pressluft_testkit::until_sync("the file server to listen", limit::START, || {
        std::net::TcpStream::connect(("127.0.0.1", port)).ok()
    });
    server
}

/// A .tar.gz of the WordPress tree (inside a top-level directory) with its index.php replaced.
fn wordpress_archive(dir: &std::path::Path, name: &str, index_php: Option<&str>) {
    let tree = dir.join(format!("{name}-tree"));
    assert!(
        run(
            "cp",
            &["-rL", "/usr/share/wordpress", tree.to_str().unwrap()]
        )
        .status
        .success()
    );
    if let Some(php) = index_php {
        std::fs::write(tree.join("index.php"), php).unwrap();
    }
    let archive = dir.join(format!("{name}.tar.gz"));
    let tar = std::process::Command::new("tar")
        .args([
            "czf",
            archive.to_str().unwrap(),
            "-C",
            dir.to_str().unwrap(),
            &format!("{name}-tree"),
        ])
        .status()
        .unwrap();
    assert!(tar.success());
}

/// A release whose candidate fails its check never goes live; one that fails only after the
/// switch is switched back automatically. Either way the job fails with a clear error, the
/// environment ends active, the previous release still serves, and the new one is recorded
/// unhealthy. A good archive then deploys.
#[tokio::test]
#[ignore = "real node: needs the test bed (scripts/test.sh runs it)"]
async fn failing_deploys_never_stay_live() {
    let (server, tag) = TestServer::start_real(|c| c.jobs.max_attempts = 1).await;
    let tag = tag.as_str();
    let mut c = server.clients();
    let node = server.node(&mut c).await;
    let (created, env) = live_site(&mut c, &node, &format!("fail{tag}"), "Failing deploys").await;
    let host = env.preview_url.trim_start_matches("http://").to_owned();
    let old = releases_of(&mut c, &env.id).await[0].path.clone();

    let archives = tempfile::tempdir().unwrap();
    wordpress_archive(
        archives.path(),
        "broken",
        Some("<?php http_response_code(500); echo 'broken';"),
    );
    wordpress_archive(
        archives.path(),
        "late",
        Some(
            "<?php if ($_SERVER['SERVER_PORT'] != '8081') { http_response_code(500); exit; } require __DIR__ . '/wp-blog-header.php';",
        ),
    );
    wordpress_archive(archives.path(), "good", None);
    let files = file_server(archives.path());
    let deploy = |name: &str| pb::DeployEnvironmentRequest {
        environment_id: env.id.clone(),
        expected_version: 0,
        source: Some(pb::ReleaseSource {
            source: Some(pb::release_source::Source::Archive(pb::ArchiveSource {
                url: format!("http://127.0.0.1:{}/{name}.tar.gz", files.port),
                sha256: String::new(),
            })),
        }),
    };

    for (name, went_live) in [("broken", false), ("late", true)] {
        let job = c
            .sites
            .deploy_environment(deploy(name))
            .await
            .unwrap()
            .into_inner()
            .job
            .unwrap();
        let job = wait_job(&mut c, &job.id).await;
        assert_eq!(job.status, pb::JobStatus::Failed as i32, "{name}: {job:?}");
        let expected = if went_live {
            "switched back to"
        } else {
            "never went live"
        };
        assert!(
            job.error_message.contains(expected),
            "{name}: {}",
            job.error_message
        );
        assert_eq!(
            environment(&mut c, &env.id).await.status,
            pb::EnvironmentStatus::Active as i32,
            "{name}"
        );
        assert_eq!(
            get_release(&host),
            (200, old.clone()),
            "{name}: the previous release still serves"
        );
    }
    let releases = releases_of(&mut c, &env.id).await;
    assert_eq!(releases.len(), 3);
    assert_eq!(
        releases
            .iter()
            .filter(|r| r.health == pb::ReleaseHealth::Unhealthy as i32)
            .count(),
        2
    );
    assert!(releases.iter().all(|r| r.is_current == (r.path == old)));
    // A rollback never picks an unhealthy release.
    let unhealthy = releases
        .iter()
        .find(|r| r.health == pb::ReleaseHealth::Unhealthy as i32)
        .unwrap()
        .id
        .clone();
    let refused = c
        .sites
        .rollback_environment(pb::RollbackEnvironmentRequest {
            environment_id: env.id.clone(),
            expected_version: 0,
            release_id: unhealthy,
        })
        .await
        .unwrap_err();
    assert_eq!(reason(&refused), "NO_ROLLBACK_TARGET");

    let job = c
        .sites
        .deploy_environment(deploy("good"))
        .await
        .unwrap()
        .into_inner()
        .job
        .unwrap();
    assert_eq!(
        wait_job(&mut c, &job.id).await.status,
        pb::JobStatus::Succeeded as i32
    );
    let (status, serving) = get_release(&host);
    assert_eq!(status, 200);
    assert_ne!(serving, old, "the archive release is live");
    // Unhealthy releases never count and go with the next good deploy.
    let releases = releases_of(&mut c, &env.id).await;
    let paths: Vec<&str> = releases.iter().map(|r| r.path.as_str()).collect();
    assert_eq!(paths, [serving.as_str(), old.as_str()], "{releases:?}");
    assert_eq!(
        release_dirs(&env),
        [&old, &serving].map(|p| release_dir_name(p))
    );

    // With two to keep, the next deploy keeps itself and the last good release only.
    c.settings
        .update_settings(pb::UpdateSettingsRequest {
            releases_to_keep: Some(2),
            ..Default::default()
        })
        .await
        .unwrap();
    let job = c
        .sites
        .deploy_environment(deploy("good"))
        .await
        .unwrap()
        .into_inner()
        .job
        .unwrap();
    let job = wait_job(&mut c, &job.id).await;
    assert_eq!(job.status, pb::JobStatus::Succeeded as i32, "{job:?}");
    let (_, newest) = get_release(&host);
    let releases = releases_of(&mut c, &env.id).await;
    let paths: Vec<&str> = releases.iter().map(|r| r.path.as_str()).collect();
    assert_eq!(paths, [newest.as_str(), serving.as_str()], "{releases:?}");
    assert_eq!(
        release_dirs(&env),
        [&serving, &newest].map(|p| release_dir_name(p))
    );

    let site = created.site.as_ref().unwrap();
    delete_site_and_wait(&mut c, &site.id).await;
    server.stop().await;
}

/// Creates a site through the real site_create playbook and waits until it is live.
pub(crate) async fn live_site(
    c: &mut Clients,
    node: &pb::Node,
    slug: &str,
    title: &str,
) -> (pb::CreateSiteResponse, pb::Environment) {
    let created = create_site_mode(c, node, slug, title).await;
    let job = wait_job(c, &created.job.as_ref().unwrap().id).await;
    assert_eq!(
        job.status,
        pb::JobStatus::Succeeded as i32,
        "creating {slug}: {job:?}"
    );
    let env = environment(c, &created.environment.as_ref().unwrap().id).await;
    (created, env)
}

/// An environment's releases, newest first.
pub(crate) async fn releases_of(c: &mut Clients, env_id: &str) -> Vec<pb::Release> {
    c.sites
        .list_releases(pb::ListReleasesRequest {
            environment_id: env_id.into(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner()
        .releases
}

/// The started steps of a job's events, checked to be in order: strictly increasing indexes,
/// each one ended before the next started, and the named ones present in this order.
pub(crate) fn assert_steps_in_order(
    events: &[pb::WatchJobResponse],
    expected: &[&str],
) -> Vec<String> {
    let mut started = Vec::new();
    let mut open: Option<i32> = None;
    let mut last_index = 0;
    for e in events {
        let Some(pb::job_event::Event::Step(s)) = e.event.as_ref().and_then(|e| e.event.as_ref())
        else {
            continue;
        };
        if s.status == pb::JobStepStatus::Started as i32 {
            assert!(
                open.is_none(),
                "step {} started before {open:?} ended",
                s.name
            );
            assert!(
                s.index > last_index,
                "step indexes go up: {} after {last_index}",
                s.index
            );
            last_index = s.index;
            open = Some(s.index);
            started.push(s.name.clone());
        } else {
            assert_eq!(open, Some(s.index), "{} ended without starting", s.name);
            open = None;
        }
    }
    let mut rest = started.iter();
    for name in expected {
        assert!(
            rest.any(|s| s.contains(name)),
            "step {name:?} missing or out of order in {started:?}"
        );
    }
    started
}

/// Runs `sql` as MariaDB root on the node and returns its tab-separated output.
pub(crate) fn mysql_root(sql: &str) -> String {
    let out = run("mysql", &["-N", "--batch", "--raw", "-e", sql]);
    assert!(
        out.status.success(),
        "{sql}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_owned()
}

/// The PHP value a serialized string holds, as var_export prints it ("false" if it is broken).
fn php_unserialize(serialized: &str) -> String {
    use std::io::Write as _;
    let mut child = std::process::Command::new("php")
        .args([
            "-r",
            "$v = @unserialize(stream_get_contents(STDIN)); var_export($v);",
        ])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(serialized.as_bytes())
        .unwrap();
    String::from_utf8(child.wait_with_output().unwrap().stdout).unwrap()
}

/// Clone production to staging through the API: both serve, with their own users and
/// databases; the clone's URLs are rewritten without breaking serialized data; staging says
/// noindex; deleting it leaves nothing behind and production keeps serving.
#[tokio::test]
#[ignore = "real node: needs the test bed (scripts/test.sh runs it)"]
async fn a_clone_to_staging_is_isolated_rewritten_and_deleted_cleanly() {
    let (server, tag) = TestServer::start_real(|_| {}).await;
    let mut c = server.clients();
    let node = server.node(&mut c).await;
    let title = format!("clone source {tag}");
    let (created, prod) = live_site(&mut c, &node, &format!("clone{tag}"), &title).await;
    let site = created.site.as_ref().unwrap();

    // Serialized data holding the URL, at two depths, with a string length that changes.
    let old = prod.preview_url.clone();
    let php = format!(
        "echo serialize(['home' => '{old}/about', 'inner' => serialize(['{old}/x', 7]), 'n' => 1]);"
    );
    let serialized = String::from_utf8(run("php", &["-r", &php]).stdout).unwrap();
    mysql_root(&format!(
        "INSERT INTO `{db}`.wp_options (option_name, option_value, autoload)
         VALUES ('pressluft_probe', '{serialized}', 'no');
         UPDATE `{db}`.wp_posts SET post_content = CONCAT(post_content, ' {json}') WHERE ID = 1;",
        db = prod.db_name,
        serialized = serialized.replace('\'', "''"),
        json = old.replace('/', "\\\\/"),
    ));

    let response = c
        .sites
        .create_environment(pb::CreateEnvironmentRequest {
            site_id: site.id.clone(),
            source_environment_id: prod.id.clone(),
            name: "staging".into(),
            kind: pb::EnvironmentKind::Staging as i32,
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    let job = response.job.unwrap();
    let events = watch_all(&mut c, &job.id).await;
    let job = wait_job(&mut c, &job.id).await;
    assert_eq!(
        job.status,
        pb::JobStatus::Succeeded as i32,
        "{job:?}\n{}",
        log_text(&events)
    );
    assert_steps_in_order(
        &events,
        &[
            "Site user",
            "Database and its user",
            "PHP-FPM pool",
            "Nginx server block",
            "Start or re-attach copy release",
            "Wait for copy release",
            "URLs rewritten",
            "Switch current",
            "Clone answers",
        ],
    );
    let staging = environment(&mut c, &response.environment.unwrap().id).await;
    assert_eq!(staging.status, pb::EnvironmentStatus::Active as i32);
    assert_ne!(staging.linux_user, prod.linux_user);
    assert_ne!(staging.linux_uid, prod.linux_uid);
    assert_ne!(staging.db_name, prod.db_name);
    assert_ne!(staging.preview_url, prod.preview_url);
    let releases = releases_of(&mut c, &staging.id).await;
    assert_eq!(releases.len(), 1, "{releases:?}");
    assert!(releases[0].is_current);
    assert_eq!(
        releases[0].source,
        releases_of(&mut c, &prod.id).await[0].source
    );

    // Both serve their own pages; only staging asks not to be indexed.
    for (env, noindex) in [(&prod, false), (&staging, true)] {
        let host = env.preview_url.trim_start_matches("http://");
        let out = run(
            "curl",
            &[
                "-s",
                "-D",
                "-",
                "-H",
                &format!("Host: {host}"),
                "http://127.0.0.1/",
            ],
        );
        let page = String::from_utf8_lossy(&out.stdout);
        assert!(
            page.starts_with("HTTP/1.1 200"),
            "{host}: {}",
            &page[..page.len().min(300)]
        );
        assert!(
            page.contains(&format!("<title>{title}")),
            "{host} serves the cloned site"
        );
        assert_eq!(
            page.to_ascii_lowercase().contains("x-robots-tag: noindex"),
            noindex,
            "{host}"
        );
        assert!(page.contains(&env.preview_url), "{host} links to itself");
    }

    // The clone's URLs point at staging, serialized values still unserialize.
    let new = staging.preview_url.clone();
    let value = |db: &str| {
        mysql_root(&format!(
            "SELECT option_value FROM `{db}`.wp_options WHERE option_name = 'pressluft_probe'"
        ))
    };
    let cloned = php_unserialize(&value(&staging.db_name));
    assert!(cloned.contains(&format!("'{new}/about'")), "{cloned}");
    let inner = cloned
        .split("'inner' => '")
        .nth(1)
        .unwrap()
        .split("',")
        .next()
        .unwrap();
    let inner = php_unserialize(&inner.replace("\\'", "'").replace("\\\\", "\\"));
    assert!(inner.contains(&format!("'{new}/x'")), "nested: {inner}");
    assert!(!cloned.contains(&old), "{cloned}");
    assert_eq!(
        mysql_root(&format!(
            "SELECT option_value FROM `{}`.wp_options WHERE option_name = 'siteurl'",
            staging.db_name
        )),
        new
    );
    let post = mysql_root(&format!(
        "SELECT post_content FROM `{}`.wp_posts WHERE ID = 1",
        staging.db_name
    ));
    assert!(
        post.contains(&new.replace('/', "\\/")),
        "JSON-escaped URL rewritten: {post}"
    );
    assert_eq!(
        mysql_root(&format!(
            "SELECT option_value FROM `{}`.wp_options WHERE option_name = 'blog_public'",
            staging.db_name
        )),
        "0"
    );
    // Production's data is untouched.
    assert!(php_unserialize(&value(&prod.db_name)).contains(&format!("'{old}/about'")));

    // Separate Linux users and database users.
    let prod_config = format!("{}/shared/wp-config.php", prod.root_path);
    for (env, kind) in [(&prod, "production"), (&staging, "staging")] {
        let config =
            std::fs::read_to_string(format!("{}/shared/wp-config.php", env.root_path)).unwrap();
        assert!(
            config.contains(&format!("define('WP_ENVIRONMENT_TYPE', '{kind}');")),
            "{kind}"
        );
    }
    assert!(
        !run(
            "sudo",
            &["-n", "-u", &staging.linux_user, "cat", &prod_config]
        )
        .status
        .success(),
        "staging cannot read production's config"
    );
    let grants = mysql_root(&format!(
        "SHOW GRANTS FOR '{}'@'localhost'",
        staging.db_name
    ));
    assert!(
        grants.contains(&staging.db_name) && !grants.contains(&format!("`{}`", prod.db_name)),
        "{grants}"
    );

    // Deleting staging removes it from the node; production keeps serving.
    let job = c
        .sites
        .delete_environment(pb::DeleteEnvironmentRequest {
            environment_id: staging.id.clone(),
            expected_version: 0,
        })
        .await
        .unwrap()
        .into_inner()
        .job
        .unwrap();
    let job = wait_job(&mut c, &job.id).await;
    assert_eq!(job.status, pb::JobStatus::Succeeded as i32, "{job:?}");
    let gone = environment(&mut c, &staging.id).await;
    assert_eq!(gone.status, pb::EnvironmentStatus::Deleted as i32);
    assert_nothing_left(&staging);
    let (status, _) = get_release(prod.preview_url.trim_start_matches("http://"));
    assert_eq!(status, 200, "production still serves");

    delete_site_and_wait(&mut c, &site.id).await;
    assert_nothing_left(&prod);
    server.stop().await;
}

/// Nothing of `env` is left on the node: Linux user, tree, server block, pool, database, DB user.
fn assert_nothing_left(env: &pb::Environment) {
    assert!(
        !run("id", &[&env.linux_user]).status.success(),
        "user {} removed",
        env.linux_user
    );
    assert!(
        !std::path::Path::new(&env.root_path).exists(),
        "{} removed",
        env.root_path
    );
    let downloads = format!("/var/lib/pressluft-node/downloads/{}", env.linux_user);
    assert!(
        !std::path::Path::new(&downloads).exists(),
        "{downloads} removed"
    );
    let vhost = format!("/etc/nginx/sites-enabled/pressluft-{}.conf", env.linux_user);
    assert!(!std::path::Path::new(&vhost).exists(), "{vhost} removed");
    let pool = format!(
        "/etc/php/{}/fpm/pool.d/pressluft-{}.conf",
        env.php_version, env.linux_user
    );
    assert!(!std::path::Path::new(&pool).exists(), "{pool} removed");
    assert_eq!(
        mysql_root(&format!("SHOW DATABASES LIKE '{}'", env.db_name)),
        "",
        "database dropped"
    );
    assert_eq!(
        mysql_root(&format!(
            "SELECT User FROM mysql.user WHERE User = '{}'",
            env.db_name
        )),
        "",
        "database user dropped"
    );
}

/// The release directories on the node, sorted (names sort by creation time).
fn release_dirs(env: &pb::Environment) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(format!("{}/releases", env.root_path))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

/// The directory name of a release path.
fn release_dir_name(path: &str) -> String {
    path.rsplit('/').next().unwrap_or_default().to_owned()
}

/// Runs git in `dir` and returns its trimmed stdout.
fn git(dir: &std::path::Path, args: &[&str]) -> String {
    let out = std::process::Command::new("git")
        .args([
            "-c",
            "user.name=Pressluft Test",
            "-c",
            "user.email=test@example.com",
        ])
        .args(args)
        .current_dir(dir)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "git {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_owned()
}

/// A deploy from a git repository checks out the named ref (tag, branch or commit; the
/// default branch without one), runs composer install when the tree has a composer.json,
/// leaves the repository metadata out, and records the commit. A ref that does not exist
/// fails the job and leaves the live release serving.
#[tokio::test]
#[ignore = "real node: needs the test bed (scripts/test.sh runs it)"]
async fn deploys_from_git_check_out_the_ref_and_run_composer() {
    let (server, tag) = TestServer::start_real(|_| {}).await;
    let mut c = server.clients();
    let node = server.node(&mut c).await;
    let (created, env) =
        live_site(&mut c, &node, &format!("git{tag}"), &format!("git {tag}")).await;
    let host = env.preview_url.trim_start_matches("http://").to_owned();

    // A repository with a WordPress tree and a composer.json, served over dumb HTTP.
    let dir = tempfile::tempdir().unwrap();
    let work = dir.path().join("work");
    assert!(
        run(
            "cp",
            &["-rL", "/usr/share/wordpress", work.to_str().unwrap()]
        )
        .status
        .success()
    );
    std::fs::write(
        work.join("composer.json"),
        r#"{"name": "pressluft/probe", "require": {}, "autoload": {"classmap": ["lib/"]}}"#,
    )
    .unwrap();
    std::fs::create_dir(work.join("lib")).unwrap();
    std::fs::write(
        work.join("lib/probe.php"),
        "<?php class PressluftProbe {}\n",
    )
    .unwrap();
    git(&work, &["init", "--quiet", "--initial-branch=main"]);
    git(&work, &["add", "."]);
    git(&work, &["commit", "--quiet", "-m", "v1"]);
    git(&work, &["tag", "v1"]);
    let v1 = git(&work, &["rev-parse", "HEAD"]);
    std::fs::write(work.join("readme.html"), "second commit").unwrap();
    git(&work, &["commit", "--quiet", "-am", "v2"]);
    let v2 = git(&work, &["rev-parse", "HEAD"]);
    git(
        dir.path(),
        &["clone", "--quiet", "--bare", "work", "repo.git"],
    );
    let bare = dir.path().join("repo.git");
    git(&bare, &["repack", "-a", "-d", "--quiet"]);
    git(&bare, &["update-server-info"]);
    let files = file_server(dir.path());
    let url = format!("http://127.0.0.1:{}/repo.git", files.port);
    let deploy = |r#ref: &str| pb::DeployEnvironmentRequest {
        environment_id: env.id.clone(),
        expected_version: 0,
        source: Some(pb::ReleaseSource {
            source: Some(pb::release_source::Source::Git(pb::GitSource {
                url: url.clone(),
                r#ref: r#ref.into(),
            })),
        }),
    };

    for (r#ref, commit) in [("v1", &v1), ("", &v2)] {
        let job = c
            .sites
            .deploy_environment(deploy(r#ref))
            .await
            .unwrap()
            .into_inner()
            .job
            .unwrap();
        let events = watch_all(&mut c, &job.id).await;
        let job = wait_job(&mut c, &job.id).await;
        assert_eq!(
            job.status,
            pb::JobStatus::Succeeded as i32,
            "{ref}: {job:?}\n{}",
            log_text(&events)
        );
        assert_steps_in_order(
            &events,
            &[
                "Release now live",
                "Clone the repository",
                "Commit of the release",
                "Start or re-attach composer install",
                "Seal the release",
                "Candidate answers 200",
                "Switch current",
                "Live site answers 200",
                "Report",
            ],
        );
        let current = releases_of(&mut c, &env.id)
            .await
            .into_iter()
            .find(|r| r.is_current)
            .unwrap();
        assert_eq!(
            &current.resolved_ref, commit,
            "the release records the commit"
        );
        assert_eq!(get_release(&host), (200, current.path.clone()));
        let release = format!("{}/releases/{}", env.root_path, current.path);
        assert!(
            std::path::Path::new(&format!("{release}/vendor/autoload.php")).exists(),
            "composer ran"
        );
        assert!(
            !std::path::Path::new(&format!("{release}/.git")).exists(),
            "no repository metadata"
        );
        let readme = std::fs::read_to_string(format!("{release}/readme.html")).unwrap();
        assert_eq!(
            readme == "second commit",
            r#ref.is_empty(),
            "the ref's tree is deployed"
        );
    }

    let (_, live) = get_release(&host);
    let job = c
        .sites
        .deploy_environment(deploy("no-such-ref"))
        .await
        .unwrap()
        .into_inner()
        .job
        .unwrap();
    let job = wait_job(&mut c, &job.id).await;
    assert_eq!(job.status, pb::JobStatus::Failed as i32, "{job:?}");
    assert!(
        job.error_message.contains("no-such-ref"),
        "{}",
        job.error_message
    );
    assert_eq!(
        environment(&mut c, &env.id).await.status,
        pb::EnvironmentStatus::Active as i32
    );
    assert_eq!(
        get_release(&host),
        (200, live),
        "the live release still serves"
    );

    delete_site_and_wait(&mut c, &created.site.as_ref().unwrap().id).await;
    server.stop().await;
}

/// UploadArchive messages for `bytes`: metadata announcing `declared` bytes, then 1 MiB chunks.
fn upload_messages(bytes: &[u8], declared: i64) -> Vec<pb::UploadArchiveRequest> {
    use pb::upload_archive_request::Part;
    let mut messages = vec![pb::UploadArchiveRequest {
        part: Some(Part::Metadata(pb::UploadArchiveMetadata {
            file_name: "site.tar.gz".into(),
            size_bytes: declared,
        })),
    }];
    messages.extend(bytes.chunks(1 << 20).map(|c| pb::UploadArchiveRequest {
        part: Some(Part::Chunk(c.to_vec())),
    }));
    messages
}

/// An archive uploaded through the API (streamed in chunks, size and format checked, SHA-256
/// returned) deploys like one fetched by URL; bad uploads and unknown ids are refused.
#[tokio::test]
#[ignore = "real node: needs the test bed (scripts/test.sh runs it)"]
async fn an_uploaded_archive_deploys() {
    use sha2::Digest as _;
    let (server, tag) = TestServer::start_real(|_| {}).await;
    let mut c = server.clients();
    let dir = tempfile::tempdir().unwrap();
    wordpress_archive(dir.path(), "upload", Some("<?php echo 'uploaded release';"));
    let bytes = std::fs::read(dir.path().join("upload.tar.gz")).unwrap();
    assert!(bytes.len() > 1 << 20, "more than one chunk");

    // Refused: a size that does not match, something that is not gzip, no metadata first.
    let len = i64::try_from(bytes.len()).unwrap();
    for (messages, why) in [
        (upload_messages(&bytes, len + 1), "received"),
        (upload_messages(b"plain text", 10), "gzip"),
        (upload_messages(&bytes, len)[1..].to_vec(), "metadata"),
    ] {
        let err = c
            .sites
            .upload_archive(tokio_stream::iter(messages))
            .await
            .unwrap_err();
        assert_eq!(err.code(), tonic::Code::InvalidArgument, "{err:?}");
        assert!(err.message().contains(why), "{why}: {}", err.message());
    }
    let uploaded = c
        .sites
        .upload_archive(tokio_stream::iter(upload_messages(&bytes, len)))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(uploaded.size_bytes, len);
    assert_eq!(uploaded.sha256, hex::encode(sha2::Sha256::digest(&bytes)));

    let node = server.node(&mut c).await;
    let (created, env) = live_site(&mut c, &node, &format!("up{tag}"), &format!("up {tag}")).await;
    let deploy = |id: &str| pb::DeployEnvironmentRequest {
        environment_id: env.id.clone(),
        expected_version: 0,
        source: Some(pb::ReleaseSource {
            source: Some(pb::release_source::Source::Upload(pb::UploadSource {
                upload_id: id.into(),
            })),
        }),
    };
    let unknown = c
        .sites
        .deploy_environment(deploy(&uuid::Uuid::now_v7().to_string()))
        .await
        .unwrap_err();
    assert_eq!(unknown.code(), tonic::Code::NotFound, "{unknown:?}");
    let job = c
        .sites
        .deploy_environment(deploy(&uploaded.upload_id))
        .await
        .unwrap()
        .into_inner()
        .job
        .unwrap();
    let job = wait_job(&mut c, &job.id).await;
    assert_eq!(job.status, pb::JobStatus::Succeeded as i32, "{job:?}");
    let host = env.preview_url.trim_start_matches("http://");
    let out = run(
        "curl",
        &["-s", "-H", &format!("Host: {host}"), "http://127.0.0.1/"],
    );
    assert_eq!(String::from_utf8_lossy(&out.stdout), "uploaded release");
    let current = releases_of(&mut c, &env.id)
        .await
        .into_iter()
        .find(|r| r.is_current)
        .unwrap();
    assert!(
        matches!(
            current.source.as_ref().and_then(|s| s.source.as_ref()),
            Some(pb::release_source::Source::Upload(u)) if u.upload_id == uploaded.upload_id
        ),
        "{current:?}"
    );

    delete_site_and_wait(&mut c, &created.site.as_ref().unwrap().id).await;
    server.stop().await;
}

/// SetBackupTarget saves a target only after a test upload through it worked; the secret is
/// sealed, never returned, and a target that fails its upload changes nothing.
#[tokio::test]
#[ignore = "real node: needs the test bed (scripts/test.sh runs it)"]
async fn a_backup_target_is_saved_only_after_a_test_upload() {
    let server = TestServer::start().await;
    let mut c = server.clients();
    let good = s3_target("target-tests", "agency/backups");

    for (request, code, needle) in [
        (
            pb::SetBackupTargetRequest {
                secret_access_key: "wrong-secret".into(),
                ..good.clone()
            },
            tonic::Code::FailedPrecondition,
            "test upload failed",
        ),
        (
            pb::SetBackupTargetRequest {
                endpoint: "http://127.0.0.1:9".into(),
                ..good.clone()
            },
            tonic::Code::FailedPrecondition,
            "test upload failed",
        ),
        (
            pb::SetBackupTargetRequest {
                bucket: "Bad_Bucket".into(),
                ..good.clone()
            },
            tonic::Code::InvalidArgument,
            "bucket",
        ),
        (
            pb::SetBackupTargetRequest {
                secret_access_key: "two\nlines".into(),
                ..good.clone()
            },
            tonic::Code::InvalidArgument,
            "secret_access_key",
        ),
        (
            pb::SetBackupTargetRequest {
                path_prefix: "../up".into(),
                ..good.clone()
            },
            tonic::Code::InvalidArgument,
            "path_prefix",
        ),
    ] {
        let err = c.settings.set_backup_target(request).await.unwrap_err();
        assert_eq!(err.code(), code, "{err:?}");
        assert!(
            err.message().contains(needle),
            "{needle}: {}",
            err.message()
        );
        assert!(!err.message().contains(&good.secret_access_key));
        let settings = c
            .settings
            .get_settings(pb::GetSettingsRequest {})
            .await
            .unwrap()
            .into_inner()
            .settings
            .unwrap();
        assert!(settings.backup_target.is_none(), "nothing saved");
    }

    let saved = c
        .settings
        .set_backup_target(good.clone())
        .await
        .unwrap()
        .into_inner()
        .settings
        .unwrap();
    let target = saved.backup_target.clone().unwrap();
    assert_eq!(target.bucket, "target-tests");
    assert_eq!(target.path_prefix, "agency/backups");
    assert_eq!(target.region, "us-east-1");
    assert!(target.verify_time.is_some());
    assert!(
        !format!("{saved:?}").contains(&good.secret_access_key),
        "the secret is never returned"
    );
    // The probe object is gone again.
    let listed = s3_rclone(
        &good.endpoint,
        &good.access_key_id,
        &good.secret_access_key,
        &["lsf", "-R", "t:target-tests"],
    );
    assert!(
        String::from_utf8_lossy(&listed.stdout).trim().is_empty(),
        "{listed:?}"
    );
    // Sealed at rest.
    let sealed: String = sqlx::query_scalar("SELECT s3_secret_enc FROM settings WHERE id = 1")
        .fetch_one(server.store().await.pool())
        .await
        .unwrap();
    assert!(sealed.starts_with("v1:") && !sealed.contains(&good.secret_access_key));
    server.stop().await;
}

/// The test S3 server's rclone arguments for `good` (see support::s3_rclone).
pub(crate) fn s3_cat(target: &pb::SetBackupTargetRequest, key: &str) -> Vec<u8> {
    let out = s3_rclone(
        &target.endpoint,
        &target.access_key_id,
        &target.secret_access_key,
        &["cat", &format!("t:{}/{key}", target.bucket)],
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    out.stdout
}

/// Takes a backup of `env` through the API and waits for it; returns the completed backup.
pub(crate) async fn backup_now(c: &mut Clients, env: &str, scope: pb::BackupScope) -> pb::Backup {
    let created = c
        .sites
        .create_backup(pb::CreateBackupRequest {
            environment_id: env.into(),
            scope: scope as i32,
        })
        .await
        .unwrap()
        .into_inner();
    let job = wait_job(c, &created.job.unwrap().id).await;
    assert_eq!(job.status, pb::JobStatus::Succeeded as i32, "{job:?}");
    c.sites
        .get_backup(pb::GetBackupRequest {
            backup_id: created.backup.unwrap().id,
        })
        .await
        .unwrap()
        .into_inner()
        .backup
        .unwrap()
}

/// A full backup lands in the bucket as one tar (database dump, files, sums, manifest) whose
/// size and SHA-256 the server records.
#[tokio::test]
#[ignore = "real node: needs the test bed (scripts/test.sh runs it)"]
async fn a_full_backup_is_stored_with_its_checksum() {
    use sha2::Digest as _;
    let (server, tag) =
        TestServer::start_real(|c| c.jobs.backup_cleanup_every = Duration::from_secs(1)).await;
    let mut c = server.clients();
    let node = server.node(&mut c).await;
    let target = s3_target(&format!("backups-{tag}"), "pressluft");
    c.settings.set_backup_target(target.clone()).await.unwrap();
    let (created, env) = live_site(&mut c, &node, &format!("bk{tag}"), &format!("bk {tag}")).await;

    let backup = backup_now(&mut c, &env.id, pb::BackupScope::Full).await;
    assert_eq!(
        backup.status,
        pb::BackupStatus::Completed as i32,
        "{backup:?}"
    );
    assert!(
        backup
            .object_key
            .starts_with(&format!("pressluft/bk{tag}/production/")),
        "{backup:?}"
    );
    let object = s3_cat(&target, &backup.object_key);
    assert_eq!(object.len() as i64, backup.size_bytes);
    assert_eq!(hex::encode(sha2::Sha256::digest(&object)), backup.sha256);
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("b.tar"), &object).unwrap();
    let listing = run("tar", &["-tf", dir.path().join("b.tar").to_str().unwrap()]);
    let listing = String::from_utf8_lossy(&listing.stdout);
    for part in ["manifest.json", "SHA256SUMS", "db.sql.gz", "files.tar.gz"] {
        assert!(listing.contains(part), "{part} in {listing}");
    }

    // Retention: once both are past their expiry (fast-forwarded here), the scheduler's
    // backup_cleanup deletes the older object only; the newest completed backup stays.
    let newest = backup_now(&mut c, &env.id, pb::BackupScope::Db).await;
    assert_eq!(newest.status, pb::BackupStatus::Completed as i32);
    sqlx::query("UPDATE backups SET expires_at = 1000 WHERE environment_id = ?")
        .bind(&env.id)
        .execute(server.store().await.pool())
        .await
        .unwrap();
    let expired = until("the expired backup to be cleaned up", limit::JOB, || {
        let mut sites = c.sites.clone();
        let backup_id = backup.id.clone();
        async move {
            let b = sites
                .get_backup(pb::GetBackupRequest { backup_id })
                .await
                .unwrap()
                .into_inner()
                .backup
                .unwrap();
            (b.status == pb::BackupStatus::Expired as i32).then_some(b)
        }
    })
    .await;
    let listed = bucket_listing(&target);
    assert!(
        !listed.contains(expired.object_key.rsplit('/').next().unwrap()),
        "{listed}"
    );
    assert!(
        listed.contains(newest.object_key.rsplit('/').next().unwrap()),
        "{listed}"
    );
    let kept = c
        .sites
        .get_backup(pb::GetBackupRequest {
            backup_id: newest.id.clone(),
        })
        .await
        .unwrap()
        .into_inner()
        .backup
        .unwrap();
    assert_eq!(
        kept.status,
        pb::BackupStatus::Completed as i32,
        "the newest backup stays"
    );

    delete_site_and_wait(&mut c, &created.site.as_ref().unwrap().id).await;
    server.stop().await;
}

/// Writes `contents` into the environment's uploads as the site user would have.
fn upload_file(env: &pb::Environment, name: &str, contents: &str) {
    let path = format!("{}/shared/uploads/{name}", env.root_path);
    std::fs::write(&path, contents).unwrap();
    assert!(
        run("chown", &[&format!("{}:www-data", env.linux_user), &path])
            .status
            .success()
    );
}

fn post_titles(env: &pb::Environment) -> String {
    mysql_root(&format!(
        "SELECT GROUP_CONCAT(post_title ORDER BY post_title) FROM `{}`.wp_posts WHERE post_type = 'post'",
        env.db_name
    ))
}

fn add_post(env: &pb::Environment, title: &str) {
    mysql_root(&format!(
        "INSERT INTO `{}`.wp_posts (post_author, post_date, post_date_gmt, post_content, post_title, post_excerpt,
           post_status, post_name, to_ping, pinged, post_modified, post_modified_gmt, post_content_filtered, post_type)
         VALUES (1, NOW(), NOW(), 'body', '{title}', '', 'publish', '{title}', '', '', NOW(), NOW(), '', 'post')",
        env.db_name
    ));
}

/// A full backup restores exactly (posts, uploads and tables as they were; what came later is
/// gone) after a pre-restore backup; a corrupted object is refused before anything changes.
#[tokio::test]
#[ignore = "real node: needs the test bed (scripts/test.sh runs it)"]
async fn a_restore_puts_back_exactly_the_backup_and_refuses_a_corrupt_one() {
    let (server, tag) = TestServer::start_real(|_| {}).await;
    let mut c = server.clients();
    let node = server.node(&mut c).await;
    let target = s3_target(&format!("restore-{tag}"), "");
    c.settings.set_backup_target(target.clone()).await.unwrap();
    let (created, env) = live_site(&mut c, &node, &format!("rs{tag}"), &format!("rs {tag}")).await;
    let host = env.preview_url.trim_start_matches("http://").to_owned();

    add_post(&env, "kept-post");
    upload_file(&env, "kept.txt", "kept upload");
    let before_posts = post_titles(&env);
    let started = Instant::now();
    let backup = backup_now(&mut c, &env.id, pb::BackupScope::Full).await;
    let backup_secs = started.elapsed().as_secs_f64();

    // Everything changes after the backup.
    add_post(&env, "later-post");
    mysql_root(&format!(
        "DELETE FROM `{}`.wp_posts WHERE post_title = 'kept-post'",
        env.db_name
    ));
    std::fs::remove_file(format!("{}/shared/uploads/kept.txt", env.root_path)).unwrap();
    upload_file(&env, "later.txt", "later upload");
    mysql_root(&format!(
        "CREATE TABLE `{}`.wp_later (id INT PRIMARY KEY)",
        env.db_name
    ));

    let restore = |backup_id: String| pb::RestoreBackupRequest {
        environment_id: env.id.clone(),
        expected_version: 0,
        backup_id,
        allow_from_production: false,
    };
    let started = Instant::now();
    let job = c
        .sites
        .restore_backup(restore(backup.id.clone()))
        .await
        .unwrap()
        .into_inner()
        .job
        .unwrap();
    let events = watch_all(&mut c, &job.id).await;
    let job = wait_job(&mut c, &job.id).await;
    let restore_secs = started.elapsed().as_secs_f64();
    assert_eq!(
        job.status,
        pb::JobStatus::Succeeded as i32,
        "{job:?}\n{}",
        log_text(&events)
    );
    assert_steps_in_order(
        &events,
        &[
            "Wait for fetch and verify",
            "Wait for pre-restore backup",
            "Wait for restore database",
            "Restored site answers 200",
        ],
    );
    println!(
        "backup {backup_secs:.1} s ({} bytes), restore {restore_secs:.1} s",
        backup.size_bytes
    );
    assert_eq!(post_titles(&env), before_posts, "posts as at backup time");
    let uploads = format!("{}/shared/uploads", env.root_path);
    assert_eq!(
        std::fs::read_to_string(format!("{uploads}/kept.txt")).unwrap(),
        "kept upload"
    );
    assert!(
        !std::path::Path::new(&format!("{uploads}/later.txt")).exists(),
        "later upload gone"
    );
    assert_eq!(
        mysql_root(&format!(
            "SELECT COUNT(*) FROM information_schema.tables WHERE table_schema = '{}' AND table_name = 'wp_later'",
            env.db_name
        )),
        "0",
        "a table made after the backup is gone"
    );
    assert_eq!(get_release(&host).0, 200);
    assert_eq!(
        environment(&mut c, &env.id).await.status,
        pb::EnvironmentStatus::Active as i32
    );
    let backups = c
        .sites
        .list_backups(pb::ListBackupsRequest {
            environment_id: env.id.clone(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner()
        .backups;
    let pre = backups
        .iter()
        .find(|b| b.trigger == pb::BackupTrigger::PreRestore as i32)
        .expect("a pre-restore backup");
    assert_eq!(pre.status, pb::BackupStatus::Completed as i32, "{pre:?}");
    assert!(pre.size_bytes > 0);

    // A corrupted object: refused, nothing changes.
    add_post(&env, "after-restore");
    let corrupt = s3_rclone(
        &target.endpoint,
        &target.access_key_id,
        &target.secret_access_key,
        &[
            "copyto",
            "/etc/hostname",
            &format!("t:{}/{}", target.bucket, backup.object_key),
        ],
    );
    assert!(corrupt.status.success());
    let posts = post_titles(&env);
    let job = c
        .sites
        .restore_backup(restore(backup.id.clone()))
        .await
        .unwrap()
        .into_inner()
        .job
        .unwrap();
    let job = wait_job(&mut c, &job.id).await;
    assert_eq!(job.status, pb::JobStatus::Failed as i32, "{job:?}");
    assert!(
        job.error_message.contains("corrupt") && job.error_message.contains("nothing changed"),
        "{}",
        job.error_message
    );
    assert_eq!(post_titles(&env), posts, "nothing changed");
    assert_eq!(
        environment(&mut c, &env.id).await.status,
        pb::EnvironmentStatus::Active as i32
    );

    // A backup whose code fails once restored: everything is put back as it was.
    let mu = format!("{}/current/wp-content/mu-plugins", env.root_path);
    std::fs::create_dir_all(&mu).unwrap();
    std::fs::write(
        format!("{mu}/broken.php"),
        "<?php http_response_code(500); exit;",
    )
    .unwrap();
    let broken = backup_now(&mut c, &env.id, pb::BackupScope::Full).await;
    std::fs::remove_file(format!("{mu}/broken.php")).unwrap();
    add_post(&env, "before-failed-restore");
    let posts = post_titles(&env);
    let serving = get_release(&host);
    assert_eq!(serving.0, 200);
    let job = c
        .sites
        .restore_backup(restore(broken.id.clone()))
        .await
        .unwrap()
        .into_inner()
        .job
        .unwrap();
    let job = wait_job(&mut c, &job.id).await;
    assert_eq!(job.status, pb::JobStatus::Failed as i32, "{job:?}");
    assert!(
        job.error_message.contains("put back"),
        "{}",
        job.error_message
    );
    assert_eq!(
        get_release(&host),
        serving,
        "the release live before serves again"
    );
    assert_eq!(
        post_titles(&env),
        posts,
        "the database is as before the restore"
    );
    assert_eq!(
        environment(&mut c, &env.id).await.status,
        pb::EnvironmentStatus::Active as i32
    );

    delete_site_and_wait(&mut c, &created.site.as_ref().unwrap().id).await;
    server.stop().await;
}

/// A backup whose SSH connection is cut during the upload still completes: the detached
/// step keeps running on the node, the job's retry re-attaches to it instead of starting a
/// second upload, and the stored object is whole.
#[tokio::test]
#[ignore = "real node: needs the test bed (scripts/test.sh runs it)"]
async fn a_backup_survives_a_cut_ssh_connection() {
    use sha2::Digest as _;
    let (server, tag) = TestServer::start_real(|_| {}).await;
    let mut c = server.clients();
    let node = server.node(&mut c).await;
    let target = s3_target(&format!("cut-{tag}"), "");
    c.settings.set_backup_target(target.clone()).await.unwrap();
    let (created, env) =
        live_site(&mut c, &node, &format!("cut{tag}"), &format!("cut {tag}")).await;
    // Enough incompressible data that archiving and uploading take several seconds.
    let big = format!("{}/shared/uploads/big.bin", env.root_path);
    assert!(
        run(
            "dd",
            &[
                "if=/dev/urandom",
                &format!("of={big}"),
                "bs=1M",
                "count=150",
                "status=none"
            ]
        )
        .status
        .success()
    );

    let backup = c
        .sites
        .create_backup(pb::CreateBackupRequest {
            environment_id: env.id.clone(),
            scope: pb::BackupScope::Full as i32,
        })
        .await
        .unwrap()
        .into_inner();
    let job_id = backup.job.unwrap().id;
    let mut stream = c
        .jobs
        .watch_job(pb::WatchJobRequest {
            job_id: job_id.clone(),
            after_sequence: 0,
        })
        .await
        .unwrap()
        .into_inner();
    loop {
        let message = within("the backup's next event", limit::STEP, stream.message())
            .await
            .unwrap()
            .unwrap();
        if let Some(pb::job_event::Event::Step(s)) = message.event.and_then(|e| e.event)
            && s.name.contains("Wait for dump archive and upload")
        {
            break;
        }
    }
    drop(stream);
    // Cut the connection: kill the job's SSH master on the control plane. OpenSSH rewrites
    // its title (and environment) to "ssh: <control path> [mux]"; the control path lies in
    // the job's private directory, named in ansible-playbook's command line.
    let cmdline = |pid: u32| {
        std::fs::read_to_string(format!("/proc/{pid}/cmdline"))
            .unwrap_or_default()
            .replace('\0', " ")
    };
    let job_dir = processes_of_job(&job_id)
        .into_iter()
        .map(cmdline)
        .find_map(|c| {
            c.split_whitespace()
                .find(|w| w.ends_with("/inventory.json"))
                .map(|w| w.trim_end_matches("/inventory.json").to_owned())
        })
        .expect("the job's ansible-playbook runs");
    let mut cut = 0;
    for entry in std::fs::read_dir("/proc").unwrap().flatten() {
        let Ok(pid) = entry.file_name().to_string_lossy().parse::<u32>() else {
            continue;
        };
        let line = cmdline(pid);
        if line.starts_with("ssh") && line.contains(&job_dir) {
            let _ = nix::sys::signal::kill(
                nix::unistd::Pid::from_raw(i32::try_from(pid).unwrap()),
                nix::sys::signal::Signal::SIGKILL,
            );
            cut += 1;
        }
    }
    assert!(cut > 0, "no SSH connection of the job to cut in {job_dir}");

    let job = wait_job(&mut c, &job_id).await;
    let events = watch_all(&mut c, &job_id).await;
    assert_eq!(
        job.status,
        pb::JobStatus::Succeeded as i32,
        "{job:?}\n{}",
        log_text(&events)
    );
    // Ansible reconnects for its next poll (or the job retries when a poll fails): either
    // way the detached step was started once and only re-attached to.
    let starts: Vec<i32> = events
        .iter()
        .filter_map(|e| match e.event.as_ref()?.event.as_ref()? {
            pb::job_event::Event::Step(s)
                if s.name
                    .contains("Start or re-attach dump archive and upload")
                    && s.status != pb::JobStepStatus::Started as i32 =>
            {
                Some(s.status)
            }
            _ => None,
        })
        .collect();
    assert_eq!(
        starts
            .iter()
            .filter(|s| **s == pb::JobStepStatus::Changed as i32)
            .count(),
        1,
        "started once, re-attached after: {starts:?}"
    );
    let stored = c
        .sites
        .get_backup(pb::GetBackupRequest {
            backup_id: backup.backup.unwrap().id,
        })
        .await
        .unwrap()
        .into_inner()
        .backup
        .unwrap();
    assert_eq!(stored.status, pb::BackupStatus::Completed as i32);
    let object = s3_cat(&target, &stored.object_key);
    assert!(object.len() > 150 << 20, "the object holds the big upload");
    assert_eq!(object.len() as i64, stored.size_bytes);
    assert_eq!(
        hex::encode(sha2::Sha256::digest(&object)),
        stored.sha256,
        "the object is whole"
    );

    delete_site_and_wait(&mut c, &created.site.as_ref().unwrap().id).await;
    server.stop().await;
}

/// Runs a drift check on `env` and returns its report.
pub(crate) async fn check_drift(
    c: &mut Clients,
    env: &str,
    preset: pb::PromotionPreset,
) -> pb::DriftReport {
    let job = c
        .sites
        .check_drift(pb::CheckDriftRequest {
            environment_id: env.into(),
            preset: preset as i32,
        })
        .await
        .unwrap()
        .into_inner()
        .job
        .unwrap();
    let job = wait_job(c, &job.id).await;
    assert_eq!(job.status, pb::JobStatus::Succeeded as i32, "{job:?}");
    let report = c
        .sites
        .get_drift_report(pb::GetDriftReportRequest {
            environment_id: env.into(),
        })
        .await
        .unwrap()
        .into_inner()
        .report
        .unwrap();
    assert_eq!(report.job_id, job.id);
    report
}

/// Drift checks compare production with the baseline taken when staging was cloned: protected
/// content (posts) and WordPress's own bookkeeping (transients) are not drift; an option or
/// the live code changing is, and the report says what.
#[tokio::test]
#[ignore = "real node: needs the test bed (scripts/test.sh runs it)"]
async fn drift_checks_report_what_a_promotion_would_overwrite() {
    let (server, tag) = TestServer::start_real(|_| {}).await;
    let mut c = server.clients();
    let node = server.node(&mut c).await;
    let (created, prod) = live_site(&mut c, &node, &format!("dr{tag}"), &format!("dr {tag}")).await;
    let site = created.site.as_ref().unwrap();

    let refused = c
        .sites
        .check_drift(pb::CheckDriftRequest {
            environment_id: prod.id.clone(),
            preset: pb::PromotionPreset::ContentProtect as i32,
        })
        .await
        .unwrap_err();
    assert_eq!(reason(&refused), "NO_DRIFT_BASELINE", "{refused:?}");

    let staging = clone_to_staging(&mut c, &site.id, &prod.id).await;
    let on_staging = c
        .sites
        .check_drift(pb::CheckDriftRequest {
            environment_id: staging.id.clone(),
            preset: pb::PromotionPreset::ContentProtect as i32,
        })
        .await
        .unwrap_err();
    assert_eq!(on_staging.code(), tonic::Code::InvalidArgument);

    let clean = check_drift(&mut c, &prod.id, pb::PromotionPreset::ContentProtect).await;
    assert_eq!(clean.status, pb::DriftStatus::Clean as i32, "{clean:?}");

    // Protected content and volatile bookkeeping change: still clean.
    add_post(&prod, "new-on-production");
    mysql_root(&format!(
        "INSERT INTO `{}`.wp_options (option_name, option_value, autoload) VALUES ('_transient_pressluft', 'x', 'no')",
        prod.db_name
    ));
    let clean = check_drift(&mut c, &prod.id, pb::PromotionPreset::ContentProtect).await;
    assert_eq!(clean.status, pb::DriftStatus::Clean as i32, "{clean:?}");

    // An option and the live code change: drifted, and the report names them.
    mysql_root(&format!(
        "UPDATE `{}`.wp_options SET option_value = 'changed on production' WHERE option_name = 'blogdescription'",
        prod.db_name
    ));
    std::fs::write(
        format!("{}/current/hotfix.php", prod.root_path),
        "<?php // edited live",
    )
    .unwrap();
    let drifted = check_drift(&mut c, &prod.id, pb::PromotionPreset::ContentProtect).await;
    assert_eq!(
        drifted.status,
        pb::DriftStatus::Drifted as i32,
        "{drifted:?}"
    );
    let items: Vec<(&str, &str)> = drifted
        .items
        .iter()
        .map(|i| (i.category.as_str(), i.name.as_str()))
        .collect();
    assert!(items.contains(&("option", "blogdescription")), "{items:?}");
    assert!(items.iter().any(|i| i.0 == "code"), "{items:?}");
    assert!(
        !items
            .iter()
            .any(|i| i.1.contains("posts") || i.1.contains("transient")),
        "{items:?}"
    );
    assert_eq!(
        environment(&mut c, &prod.id).await.drift_status,
        pb::DriftStatus::Drifted as i32
    );

    // Production's backup restores into staging only when asked, with URLs rewritten.
    let target = s3_target(&format!("drift-{tag}"), "");
    c.settings.set_backup_target(target).await.unwrap();
    let backup = backup_now(&mut c, &prod.id, pb::BackupScope::Db).await;
    let restore = |allow: bool| pb::RestoreBackupRequest {
        environment_id: staging.id.clone(),
        expected_version: 0,
        backup_id: backup.id.clone(),
        allow_from_production: allow,
    };
    let refused = c.sites.restore_backup(restore(false)).await.unwrap_err();
    assert_eq!(reason(&refused), "BACKUP_NOT_RESTORABLE", "{refused:?}");
    let job = c
        .sites
        .restore_backup(restore(true))
        .await
        .unwrap()
        .into_inner()
        .job
        .unwrap();
    let job = wait_job(&mut c, &job.id).await;
    assert_eq!(job.status, pb::JobStatus::Succeeded as i32, "{job:?}");
    let staging = environment(&mut c, &staging.id).await;
    assert!(
        post_titles(&staging).contains("new-on-production"),
        "production's posts"
    );
    assert_eq!(
        mysql_root(&format!(
            "SELECT option_value FROM `{}`.wp_options WHERE option_name = 'siteurl'",
            staging.db_name
        )),
        staging.preview_url,
        "URLs rewritten to staging's"
    );
    assert_eq!(
        mysql_root(&format!(
            "SELECT option_value FROM `{}`.wp_options WHERE option_name = 'blog_public'",
            staging.db_name
        )),
        "0"
    );
    assert_eq!(
        get_release(staging.preview_url.trim_start_matches("http://")).0,
        200
    );

    delete_site_and_wait(&mut c, &site.id).await;
    server.stop().await;
}

/// Clones `prod` into a new "staging" environment of `site` and waits for it.
pub(crate) async fn clone_to_staging(c: &mut Clients, site: &str, prod: &str) -> pb::Environment {
    let cloned = c
        .sites
        .create_environment(pb::CreateEnvironmentRequest {
            site_id: site.into(),
            source_environment_id: prod.into(),
            name: "staging".into(),
            kind: pb::EnvironmentKind::Staging as i32,
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    let job = wait_job(c, &cloned.job.unwrap().id).await;
    assert_eq!(job.status, pb::JobStatus::Succeeded as i32, "{job:?}");
    environment(c, &cloned.environment.unwrap().id).await
}

pub(crate) fn option_of(env: &pb::Environment, name: &str) -> String {
    mysql_root(&format!(
        "SELECT option_value FROM `{}`.wp_options WHERE option_name = '{name}'",
        env.db_name
    ))
}

pub(crate) async fn promote(c: &mut Clients, staging: &str) -> pb::Job {
    promote_with(c, staging, pb::PromotionPreset::ContentProtect).await
}

async fn promote_with(c: &mut Clients, staging: &str, preset: pb::PromotionPreset) -> pb::Job {
    let job = c
        .sites
        .promote_environment(pb::PromoteEnvironmentRequest {
            source_environment_id: staging.into(),
            expected_version: 0,
            preset: preset as i32,
        })
        .await
        .unwrap()
        .into_inner()
        .job
        .unwrap();
    wait_job(c, &job.id).await
}

/// Promotion: staging's theme and options reach production while production keeps its new
/// posts and orders (content-protect), after a pre-promotion backup; a drifted production is
/// refused with nothing changed; a promotion that breaks production is undone completely.
#[tokio::test]
#[ignore = "real node: needs the test bed (scripts/test.sh runs it)"]
async fn promotion_keeps_protected_content_and_refuses_drift() {
    let (server, tag) = TestServer::start_real(|_| {}).await;
    let mut c = server.clients();
    let node = server.node(&mut c).await;
    c.settings
        .set_backup_target(s3_target(&format!("promote-{tag}"), ""))
        .await
        .unwrap();
    let (created, prod) = live_site(&mut c, &node, &format!("pr{tag}"), &format!("pr {tag}")).await;
    let site = created.site.as_ref().unwrap();
    let staging = clone_to_staging(&mut c, &site.id, &prod.id).await;

    // Staging: a new theme (code) switched on, and an option.
    let theme = format!(
        "{}/current/wp-content/themes/pressluft-probe",
        staging.root_path
    );
    std::fs::create_dir_all(&theme).unwrap();
    std::fs::write(
        format!("{theme}/style.css"),
        "/*\nTheme Name: Pressluft Probe\n*/\n",
    )
    .unwrap();
    std::fs::write(format!("{theme}/index.php"), "<?php echo 'probe theme';").unwrap();
    assert!(
        run(
            "chown",
            &["-R", &format!("{}:www-data", staging.linux_user), &theme]
        )
        .status
        .success()
    );
    mysql_root(&format!(
        "UPDATE `{}`.wp_options SET option_value = 'pressluft-probe' WHERE option_name IN ('stylesheet', 'template');
         UPDATE `{}`.wp_options SET option_value = 'from staging' WHERE option_name = 'blogdescription';",
        staging.db_name, staging.db_name
    ));
    // Production: a post and an order (WooCommerce keeps orders as posts of type shop_order).
    add_post(&prod, "prod-post");
    mysql_root(&format!(
        "INSERT INTO `{}`.wp_posts (post_author, post_date, post_date_gmt, post_content, post_title, post_excerpt,
           post_status, post_name, to_ping, pinged, post_modified, post_modified_gmt, post_content_filtered, post_type)
         VALUES (1, NOW(), NOW(), '', 'order-1', '', 'wc-processing', 'order-1', '', '', NOW(), NOW(), '', 'shop_order')",
        prod.db_name
    ));
    let host = prod.preview_url.trim_start_matches("http://").to_owned();

    let job = promote(&mut c, &staging.id).await;
    assert_eq!(job.status, pb::JobStatus::Succeeded as i32, "{job:?}");
    let out = run(
        "curl",
        &["-s", "-H", &format!("Host: {host}"), "http://127.0.0.1/"],
    );
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        "probe theme",
        "staging's theme is live"
    );
    assert_eq!(option_of(&prod, "blogdescription"), "from staging");
    assert_eq!(
        option_of(&prod, "siteurl"),
        prod.preview_url,
        "URLs are production's"
    );
    assert_eq!(
        option_of(&prod, "blog_public"),
        "1",
        "production stays indexable"
    );
    let titles = post_titles(&prod);
    assert!(
        titles.contains("prod-post"),
        "production keeps its posts: {titles}"
    );
    assert_eq!(
        mysql_root(&format!(
            "SELECT COUNT(*) FROM `{}`.wp_posts WHERE post_type = 'shop_order'",
            prod.db_name
        )),
        "1",
        "and its orders"
    );
    let backups = c
        .sites
        .list_backups(pb::ListBackupsRequest {
            environment_id: prod.id.clone(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner()
        .backups;
    assert!(
        backups
            .iter()
            .any(|b| b.trigger == pb::BackupTrigger::PrePromote as i32
                && b.status == pb::BackupStatus::Completed as i32),
        "{backups:?}"
    );

    // Production changed an option directly: refused, nothing changed.
    let original_name = option_of(&prod, "blogname");
    mysql_root(&format!(
        "UPDATE `{}`.wp_options SET option_value = 'edited live' WHERE option_name = 'blogname'",
        prod.db_name
    ));
    let (_, serving) = get_release(&host);
    let job = promote(&mut c, &staging.id).await;
    assert_eq!(job.status, pb::JobStatus::Failed as i32, "{job:?}");
    assert!(
        job.error_message.contains("refused") && job.error_message.contains("blogname"),
        "{}",
        job.error_message
    );
    assert_eq!(
        get_release(&host),
        (200, serving.clone()),
        "nothing changed"
    );
    assert_eq!(option_of(&prod, "blogname"), "edited live");
    let report = c
        .sites
        .get_drift_report(pb::GetDriftReportRequest {
            environment_id: prod.id.clone(),
        })
        .await
        .unwrap()
        .into_inner()
        .report
        .unwrap();
    assert_eq!(report.status, pb::DriftStatus::Drifted as i32);
    assert!(
        report.items.iter().any(|i| i.name == "blogname"),
        "{report:?}"
    );

    // Back to the baseline, then a promotion that breaks production: undone completely.
    mysql_root(&format!(
        "UPDATE `{}`.wp_options SET option_value = '{original_name}' WHERE option_name = 'blogname'",
        prod.db_name
    ));
    let mu = format!("{}/current/wp-content/mu-plugins", staging.root_path);
    std::fs::create_dir_all(&mu).unwrap();
    std::fs::write(
        format!("{mu}/broken.php"),
        "<?php http_response_code(500); exit;",
    )
    .unwrap();
    mysql_root(&format!(
        "UPDATE `{}`.wp_options SET option_value = 'broken staging' WHERE option_name = 'blogdescription'",
        staging.db_name
    ));
    add_post(&prod, "prod-post-2");
    let posts = post_titles(&prod);
    let job = promote(&mut c, &staging.id).await;
    assert_eq!(job.status, pb::JobStatus::Failed as i32, "{job:?}");
    assert!(
        job.error_message.contains("put back"),
        "{}",
        job.error_message
    );
    assert_eq!(
        get_release(&host),
        (200, serving),
        "the previous release serves"
    );
    assert_eq!(
        option_of(&prod, "blogdescription"),
        "from staging",
        "options as before"
    );
    assert_eq!(post_titles(&prod), posts, "posts as before");
    assert_eq!(
        environment(&mut c, &prod.id).await.status,
        pb::EnvironmentStatus::Active as i32
    );

    // WooCommerce's own order table (HPOS) on both sides: content-protect would overwrite
    // production's orders, so it refuses; commerce-protect promotes and keeps them.
    std::fs::remove_file(format!("{mu}/broken.php")).unwrap();
    for (env, order) in [(&prod, "live order"), (&staging, "test order")] {
        mysql_root(&format!(
            "CREATE TABLE `{db}`.wp_wc_orders (id BIGINT PRIMARY KEY, status VARCHAR(20), note TEXT);
             INSERT INTO `{db}`.wp_wc_orders VALUES (1, 'wc-processing', '{order}');",
            db = env.db_name
        ));
    }
    let job = promote(&mut c, &staging.id).await;
    assert_eq!(job.status, pb::JobStatus::Failed as i32, "{job:?}");
    assert!(
        job.error_message.contains("wp_wc_orders"),
        "{}",
        job.error_message
    );
    let job = promote_with(&mut c, &staging.id, pb::PromotionPreset::CommerceProtect).await;
    assert_eq!(job.status, pb::JobStatus::Succeeded as i32, "{job:?}");
    assert_eq!(
        mysql_root(&format!("SELECT note FROM `{}`.wp_wc_orders", prod.db_name)),
        "live order",
        "production keeps its orders"
    );
    assert_eq!(option_of(&prod, "blogdescription"), "broken staging");

    delete_site_and_wait(&mut c, &site.id).await;
    server.stop().await;
}
