//! Steps the real-node tests share: following a job to its end, reading an environment,
//! creating a live site, running commands on the node, and the backup, drift and promotion
//! calls several features use.

use std::time::Duration;

use pressluft_proto::v1 as pb;
use pressluft_testkit::{limit, scaled, within};

use super::{Clients, create_site_mode, s3_rclone, status_of, wait_job};

/// Every event of a job, replayed and followed through WatchJob until the stream ends.
pub async fn watch_all(c: &mut Clients, job: &str) -> Vec<pb::WatchJobResponse> {
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

pub fn log_text(events: &[pb::WatchJobResponse]) -> String {
    events
        .iter()
        .filter_map(|e| match &e.event.as_ref()?.event {
            Some(pb::job_event::Event::LogLine(l)) => Some(l.text.clone()),
            _ => None,
        })
        .collect::<Vec<_>>()
        .join("\n")
}

pub async fn environment(c: &mut Clients, id: &str) -> pb::Environment {
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

pub fn run(cmd: &str, args: &[&str]) -> std::process::Output {
    std::process::Command::new(cmd).args(args).output().unwrap()
}

/// One plain HTTP/1.1 GET to the loopback nginx: (status, X-Pressluft-Release).
pub fn get_release(host: &str) -> (u16, String) {
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

/// Creates a site through the real site_create playbook and waits until it is live.
pub async fn live_site(
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
pub async fn releases_of(c: &mut Clients, env_id: &str) -> Vec<pb::Release> {
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
pub fn assert_steps_in_order(events: &[pb::WatchJobResponse], expected: &[&str]) -> Vec<String> {
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
pub fn mysql_root(sql: &str) -> String {
    let out = run("mysql", &["-N", "--batch", "--raw", "-e", sql]);
    assert!(
        out.status.success(),
        "{sql}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_owned()
}

/// The test S3 server's rclone arguments for `good` (see support::s3_rclone).
pub fn s3_cat(target: &pb::SetBackupTargetRequest, key: &str) -> Vec<u8> {
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
pub async fn backup_now(c: &mut Clients, env: &str, scope: pb::BackupScope) -> pb::Backup {
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

pub fn post_titles(env: &pb::Environment) -> String {
    mysql_root(&format!(
        "SELECT GROUP_CONCAT(post_title ORDER BY post_title) FROM `{}`.wp_posts WHERE post_type = 'post'",
        env.db_name
    ))
}

pub fn add_post(env: &pb::Environment, title: &str) {
    mysql_root(&format!(
        "INSERT INTO `{}`.wp_posts (post_author, post_date, post_date_gmt, post_content, post_title, post_excerpt,
           post_status, post_name, to_ping, pinged, post_modified, post_modified_gmt, post_content_filtered, post_type)
         VALUES (1, NOW(), NOW(), 'body', '{title}', '', 'publish', '{title}', '', '', NOW(), NOW(), '', 'post')",
        env.db_name
    ));
}

/// Runs a drift check on `env` and returns its report.
pub async fn check_drift(
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

/// Clones `prod` into a new "staging" environment of `site` and waits for it.
pub async fn clone_to_staging(c: &mut Clients, site: &str, prod: &str) -> pb::Environment {
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

pub fn option_of(env: &pb::Environment, name: &str) -> String {
    mysql_root(&format!(
        "SELECT option_value FROM `{}`.wp_options WHERE option_name = '{name}'",
        env.db_name
    ))
}

pub async fn promote(c: &mut Clients, staging: &str) -> pb::Job {
    promote_with(c, staging, pb::PromotionPreset::ContentProtect).await
}

pub async fn promote_with(c: &mut Clients, staging: &str, preset: pb::PromotionPreset) -> pb::Job {
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
