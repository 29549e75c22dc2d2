//! Crash recovery with the real playbooks: the server binary killed with SIGKILL in the middle
//! of a real backup upload, started again on the same data.

use std::time::{Duration, Instant};

use pressluft_proto::v1 as pb;
use pressluft_testkit::{limit, scaled};

use crate::support::*;

/// The rclone uploads running for backup `id` (its job's work directory names it).
fn uploads_of(backup_id: &str) -> usize {
    let marker = format!("/var/lib/pressluft-node/backups/{backup_id}/rclone.conf");
    std::fs::read_dir("/proc")
        .unwrap()
        .flatten()
        .filter(|entry| {
            std::fs::read(entry.path().join("cmdline")).is_ok_and(|cmd| {
                let cmd = String::from_utf8_lossy(&cmd).replace('\0', " ");
                cmd.starts_with("rclone ") && cmd.contains(&marker) && cmd.contains("copyto")
            })
        })
        .count()
}

#[tokio::test]
#[ignore = "real node: needs the test bed (scripts/test.sh runs it)"]
async fn a_server_killed_during_a_real_backup_upload_recovers_it_without_a_second_upload() {
    let dir = tempfile::tempdir().unwrap();
    let tag = uuid::Uuid::new_v4().simple().to_string()[..6].to_owned();
    let uid_base = pressluft_testkit::uids::block();
    let ports: Vec<String> = machine_public_ports().iter().map(u16::to_string).collect();
    let config = format!(
        "linux_uid_base = {uid_base}\nfirewall_allow_tcp = [{}]\n\
         [jobs]\nlease_secs = {}\nheartbeat_secs = 1\npoll_secs = 1\nretry_backoff_secs = [1]\nkill_grace_secs = 3\n",
        ports.join(", "),
        test_lease().as_secs()
    );
    let playbooks = repo_root().join("playbooks");
    let mut server = ServerProcess::new(
        dir.path(),
        &config,
        &[
            ("PRESSLUFT_PLAYBOOKS_DIR", playbooks.to_str().unwrap()),
            ("PRESSLUFT_WORDPRESS_SOURCE_DIR", "/usr/share/wordpress"),
        ],
    );
    let mut c = server.start().await;
    let node = active_test_node(&mut c).await;
    let target = s3_target(&format!("crash-{tag}"), "");
    c.settings.set_backup_target(target.clone()).await.unwrap();
    let (created, env) = live_site(&mut c, &node, &format!("cr{tag}"), &format!("cr {tag}")).await;
    // 120 MB that does not compress: the upload lasts long enough to be cut.
    let big = format!("{}/shared/uploads/big.bin", env.root_path);
    let out = run_cmd("head", &["-c", "120000000", "/dev/urandom"]);
    std::fs::write(&big, out.stdout).unwrap();

    let backup = c
        .sites
        .create_backup(pb::CreateBackupRequest {
            environment_id: env.id.clone(),
            scope: pb::BackupScope::Full as i32,
        })
        .await
        .unwrap()
        .into_inner();
    let (backup_id, job_id) = (backup.backup.unwrap().id, backup.job.unwrap().id);
    // Polled quickly (not with the kit's pace): the upload is caught while it runs.
    let deadline = Instant::now() + scaled(limit::JOB);
    while uploads_of(&backup_id) == 0 {
        assert!(Instant::now() < deadline, "the upload never started");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }

    // kill -9 mid-upload; the upload goes on without the server.
    server.kill9();
    println!(
        "uploads running right after the crash: {}",
        uploads_of(&backup_id)
    );

    let mut c = server.start().await;
    let deadline = Instant::now() + scaled(limit::JOB);
    let mut most_uploads = 0;
    let job = loop {
        most_uploads = most_uploads.max(uploads_of(&backup_id));
        let job = c
            .jobs
            .get_job(pb::GetJobRequest {
                job_id: job_id.clone(),
            })
            .await
            .unwrap()
            .into_inner()
            .job
            .unwrap();
        if job.status == pb::JobStatus::Succeeded as i32
            || job.status == pb::JobStatus::Failed as i32
        {
            break job;
        }
        assert!(Instant::now() < deadline, "not recovered: {job:?}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert_eq!(job.status, pb::JobStatus::Succeeded as i32, "{job:?}");
    assert_eq!(job.attempt, 2, "recovered by a second attempt: {job:?}");
    assert!(most_uploads <= 1, "never two uploads at once");

    // The second attempt re-attached to the running step instead of starting another.
    let starts: Vec<i32> = watch_all(&mut c, &job_id)
        .await
        .iter()
        .filter_map(|e| match e.event.as_ref().and_then(|e| e.event.as_ref()) {
            Some(pb::job_event::Event::Step(s))
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
        starts,
        [
            pb::JobStepStatus::Changed as i32,
            pb::JobStepStatus::Ok as i32
        ],
        "started once, re-attached once"
    );
    let stored = c
        .sites
        .get_backup(pb::GetBackupRequest {
            backup_id: backup_id.clone(),
        })
        .await
        .unwrap()
        .into_inner()
        .backup
        .unwrap();
    assert_eq!(stored.status, pb::BackupStatus::Completed as i32);
    assert!(stored.size_bytes > 120_000_000, "{stored:?}");
    let object = s3_cat(&target, &stored.object_key);
    assert_eq!(object.len() as i64, stored.size_bytes);
    {
        use sha2::Digest as _;
        assert_eq!(hex::encode(sha2::Sha256::digest(&object)), stored.sha256);
    }

    delete_site_and_wait(&mut c, &created.site.as_ref().unwrap().id).await;
}

fn run_cmd(cmd: &str, args: &[&str]) -> std::process::Output {
    let out = std::process::Command::new(cmd).args(args).output().unwrap();
    assert!(out.status.success(), "{cmd}: {out:?}");
    out
}
