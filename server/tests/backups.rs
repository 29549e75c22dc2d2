//! Backups on real sites into the suite's S3-compatible server: scheduled and manual backups,
//! the backup target check, restores, and a backup surviving a cut SSH connection.

use std::time::{Duration, Instant};

use pressluft_proto::v1 as pb;
use pressluft_testkit::{limit, scaled, until, within};

use crate::support::*;

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
