//! Node queries against the real loopback node: magic login followed by an HTTP client into
//! wp-admin (once only, expiring), the node and environment facts, a query that hangs on the
//! node (killed at the cap), a changed host key, an unreachable node, an environment that is
//! not active, and queries answered while a job runs on the same environment.

use std::time::{Duration, Instant};

use pressluft_proto::v1 as pb;

use pressluft_testkit::{limit, scaled, until};

use crate::support::*;

/// Status line, headers and body of a GET through nginx on loopback, with a cookie jar.
fn get(url: &str, host: &str, jar: &std::path::Path) -> (u16, String) {
    curl(&[
        "-s",
        "-D",
        "-",
        "-b",
        jar.to_str().unwrap(),
        "-c",
        jar.to_str().unwrap(),
        "--resolve",
        &format!("{host}:80:127.0.0.1"),
        url,
    ])
}

async fn magic_login(
    c: &mut Clients,
    env: &str,
) -> Result<pb::CreateMagicLoginResponse, tonic::Status> {
    c.queries
        .create_magic_login(pb::CreateMagicLoginRequest {
            environment_id: env.into(),
        })
        .await
        .map(tonic::Response::into_inner)
}

async fn wp_info(
    c: &mut Clients,
    env: &str,
) -> Result<pb::GetWordPressInfoResponse, tonic::Status> {
    c.queries
        .get_word_press_info(pb::GetWordPressInfoRequest {
            environment_id: env.into(),
        })
        .await
        .map(tonic::Response::into_inner)
}

/// The node-side query processes of a Linux user.
fn query_processes(user: &str) -> usize {
    let out = std::process::Command::new("pgrep")
        .args(["-u", user, "-f", "pressluft-query"])
        .output()
        .unwrap();
    String::from_utf8_lossy(&out.stdout).lines().count()
}

/// The magic-login TTL here: long enough for a busy machine to use a link, short enough to
/// wait out.
fn magic_ttl() -> Duration {
    scaled(Duration::from_secs(15))
}

#[tokio::test]
#[ignore = "real node: needs the test bed (scripts/test.sh runs it)"]
async fn node_queries_answer_fast_log_in_once_and_stop_at_the_cap() {
    let (server, tag) = TestServer::start_real(|c| {
        c.node_query_timeout = Duration::from_secs(3);
        c.magic_login_ttl = magic_ttl();
    })
    .await;
    let mut c = server.clients();
    let node = server.node(&mut c).await;
    let (created, env) = live_site(&mut c, &node, &format!("nq{tag}"), &format!("nq {tag}")).await;
    let host = env.preview_url.trim_start_matches("http://").to_owned();
    let jar = tempfile::tempdir().unwrap();

    // Magic login: the link logs in once, into wp-admin; a second visit is refused.
    let login = magic_login(&mut c, &env.id).await.unwrap();
    assert!(
        login
            .url
            .starts_with(&format!("{}/?pressluft_login=", env.preview_url)),
        "{login:?}"
    );
    assert_eq!(login.user_login, "admin", "{login:?}");
    let (status, head) = get(&login.url, &host, &jar.path().join("a"));
    assert_eq!(status, 302, "{head}");
    assert!(head.contains("/wp-admin/"), "{head}");
    assert!(head.contains("wordpress_logged_in_"), "{head}");
    let (status, page) = get(
        &format!("{}/wp-admin/", env.preview_url),
        &host,
        &jar.path().join("a"),
    );
    assert_eq!(status, 200, "{page}");
    assert!(page.contains("Dashboard"), "a logged-in wp-admin page");
    let (status, again) = get(&login.url, &host, &jar.path().join("b"));
    assert_eq!(status, 403, "{again}");
    assert!(again.contains("expired or was already used"), "{again}");
    // An unused link expires (the TTL is the point of this wait).
    let late = magic_login(&mut c, &env.id).await.unwrap();
    tokio::time::sleep(magic_ttl() + Duration::from_secs(1)).await;
    let (status, _) = get(&late.url, &host, &jar.path().join("c"));
    assert_eq!(status, 403, "an expired link is refused");
    let audit = c
        .audit
        .list_audit_events(pb::ListAuditEventsRequest {
            resource_type: "environment".into(),
            resource_id: env.id.clone(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner()
        .events;
    let logins: Vec<_> = audit.iter().filter(|e| e.action == "magic login").collect();
    assert_eq!(logins.len(), 2, "{audit:?}");
    let token = login.url.rsplit('=').next().unwrap();
    assert!(
        !format!("{audit:?}").contains(token),
        "the audit never holds the token"
    );

    // Facts.
    let info = wp_info(&mut c, &env.id).await.unwrap();
    assert_eq!(info.core_version, "6.1.9");
    assert_eq!(
        info.method, "php",
        "no WP-CLI on this machine: the plain-PHP path ran"
    );
    let theme = info
        .themes
        .iter()
        .find(|t| t.name == "twentytwentythree")
        .unwrap();
    assert!(theme.active && !theme.version.is_empty(), "{info:?}");
    let akismet = info.plugins.iter().find(|p| p.name == "akismet").unwrap();
    assert!(!akismet.active, "{info:?}");
    let disk = c
        .queries
        .get_disk_usage(pb::GetDiskUsageRequest {
            environment_id: env.id.clone(),
        })
        .await
        .unwrap()
        .into_inner();
    assert!(disk.releases_bytes > 1_000_000, "{disk:?}");
    assert!(
        disk.database_bytes > 0 && disk.node_free_bytes > 0,
        "{disk:?}"
    );
    assert_eq!(
        disk.total_bytes,
        disk.releases_bytes + disk.uploads_bytes + disk.database_bytes
    );
    for request in [
        pb::GetPhpVersionRequest {
            node_id: node.id.clone(),
            ..Default::default()
        },
        pb::GetPhpVersionRequest {
            environment_id: env.id.clone(),
            ..Default::default()
        },
    ] {
        let php = c
            .queries
            .get_php_version(request)
            .await
            .unwrap()
            .into_inner();
        assert!(php.version.starts_with("8.2."), "{php:?}");
        assert_eq!(php.installed_versions, ["8.2"]);
    }
    let db = c
        .queries
        .get_database_status(pb::GetDatabaseStatusRequest {
            node_id: node.id.clone(),
        })
        .await
        .unwrap()
        .into_inner();
    assert!(db.up && db.version.contains("MariaDB"), "{db:?}");
    assert!(
        db.uptime.unwrap().seconds > 0 && db.connections >= 1,
        "{db:?}"
    );

    // A query that hangs on the node (its table is locked): DEADLINE_EXCEEDED at the cap, and
    // the command is gone from the node afterwards.
    let mut lock = std::process::Command::new("mysql")
        .args([
            "-e",
            &format!(
                "LOCK TABLES `{}`.wp_options WRITE; SELECT SLEEP(120);",
                env.db_name
            ),
        ])
        .stdout(std::process::Stdio::null())
        .spawn()
        .unwrap();
    until("the table lock", limit::STEP, || async {
        let running = mysql_root(
            "SELECT COUNT(*) FROM information_schema.PROCESSLIST WHERE INFO LIKE 'SELECT SLEEP(120)%'",
        );
        (running.trim() != "0").then_some(())
    })
    .await;
    let started = Instant::now();
    let hung = {
        let mut c2 = server.clients();
        let id = env.id.clone();
        tokio::spawn(async move { wp_info(&mut c2, &id).await })
    };
    // Polled quickly: the hung command lives for the 3 s cap only.
    let mut seen_hanging = false;
    while !hung.is_finished() && !seen_hanging {
        seen_hanging = query_processes(&env.linux_user) > 0;
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(seen_hanging, "the query hangs on the node");
    let hung = hung.await.unwrap().unwrap_err();
    let took = started.elapsed();
    assert_eq!(hung.code(), tonic::Code::DeadlineExceeded, "{hung:?}");
    // At the cap, not when the lock ends (120 s).
    assert!(
        took >= Duration::from_millis(2900) && took < Duration::from_mins(1),
        "stopped at the cap: {took:?}"
    );
    until("the hung command to be killed", limit::STEP, || async {
        (query_processes(&env.linux_user) == 0).then_some(())
    })
    .await;
    let _ = lock.kill();
    let _ = lock.wait();
    // The pool recovers: the next query opens a fresh connection.
    assert_eq!(
        wp_info(&mut c, &env.id).await.unwrap().core_version,
        "6.1.9"
    );

    // Queries take no lock: they answer while a job runs on the environment.
    c.settings
        .set_backup_target(s3_target(&format!("queries-{tag}"), ""))
        .await
        .unwrap();
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
    let job_status = |c: &mut Clients| {
        let mut jobs = c.jobs.clone();
        let id = job_id.clone();
        async move {
            jobs.get_job(pb::GetJobRequest { job_id: id })
                .await
                .unwrap()
                .into_inner()
                .job
                .unwrap()
                .status
        }
    };
    let mut watcher = c.clone();
    until("the backup job to run", limit::JOB, || {
        let status = job_status(&mut watcher);
        async move { (status.await == pb::JobStatus::Running as i32).then_some(()) }
    })
    .await;
    magic_login(&mut c, &env.id).await.unwrap();
    wp_info(&mut c, &env.id).await.unwrap();
    let answered = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap();
    let job = wait_job(&mut c, &job_id).await;
    assert_eq!(job.status, pb::JobStatus::Succeeded as i32, "{job:?}");
    let finished = job.finish_time.unwrap();
    assert!(
        (finished.seconds, finished.nanos)
            > (answered.as_secs() as i64, answered.subsec_nanos() as i32),
        "answered while the backup ran (before it finished)"
    );

    // Refusals: an environment that is not active, a changed host key, a node that is down.
    let pool = server.store().await.pool().clone();
    sqlx::query("UPDATE environments SET status = 'failed' WHERE id = ?")
        .bind(&env.id)
        .execute(&pool)
        .await
        .unwrap();
    let refused = magic_login(&mut c, &env.id).await.unwrap_err();
    assert_eq!(
        refused.code(),
        tonic::Code::FailedPrecondition,
        "{refused:?}"
    );
    assert_eq!(reason(&refused), "ENVIRONMENT_NOT_ACTIVE");
    assert_eq!(
        wp_info(&mut c, &env.id).await.unwrap_err().code(),
        tonic::Code::FailedPrecondition
    );
    sqlx::query("UPDATE environments SET status = 'active' WHERE id = ?")
        .bind(&env.id)
        .execute(&pool)
        .await
        .unwrap();

    let php_of_node = |c: &mut Clients| {
        let mut queries = c.queries.clone();
        let id = node.id.clone();
        async move {
            queries
                .get_php_version(pb::GetPhpVersionRequest {
                    node_id: id,
                    ..Default::default()
                })
                .await
        }
    };
    let other_key = std::fs::read_to_string(testbed().key.with_extension("pub")).unwrap();
    let other_key = other_key
        .split_whitespace()
        .take(2)
        .collect::<Vec<_>>()
        .join(" ");
    sqlx::query("UPDATE nodes SET host_key = ? WHERE id = ?")
        .bind(&other_key)
        .bind(&node.id)
        .execute(&pool)
        .await
        .unwrap();
    let mismatch = php_of_node(&mut c).await.unwrap_err();
    assert_eq!(
        mismatch.code(),
        tonic::Code::FailedPrecondition,
        "{mismatch:?}"
    );
    assert_eq!(reason(&mismatch), "HOST_KEY_MISMATCH");
    sqlx::query("UPDATE nodes SET host_key = ?, ssh_port = 1 WHERE id = ?")
        .bind(&node.host_key)
        .bind(&node.id)
        .execute(&pool)
        .await
        .unwrap();
    let down = php_of_node(&mut c).await.unwrap_err();
    assert_eq!(down.code(), tonic::Code::Unavailable, "{down:?}");
    assert_eq!(reason(&down), "NODE_UNREACHABLE");
    sqlx::query("UPDATE nodes SET ssh_port = ? WHERE id = ?")
        .bind(i64::from(node.ssh_port))
        .bind(&node.id)
        .execute(&pool)
        .await
        .unwrap();
    php_of_node(&mut c).await.unwrap();

    delete_site_and_wait(&mut c, &created.site.as_ref().unwrap().id).await;
    server.stop().await;
}
