//! Attacks through the API and from nodes, against a real server running the real playbooks
//! on the loopback node: job data is data, never a template, whoever wrote it.

use pressluft_proto::v1 as pb;

use crate::support::*;

/// A Jinja expression that, if Ansible ever renders it, creates `/tmp/pressluft-pwn-<name>`
/// on the control plane (no spaces: it must also pass the URL and e-mail checks).
fn payload(tag: &str, field: &str) -> String {
    format!("{{{{lookup('pipe','touch\\x20/tmp/pressluft-pwn-{tag}-{field}')}}}}")
}

/// The markers any rendered payload of this run left.
fn markers(tag: &str) -> Vec<String> {
    std::fs::read_dir("/tmp")
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|name| name.starts_with(&format!("pressluft-pwn-{tag}")))
        .collect()
}

/// A request with a payload is either refused as invalid, or accepted and its job runs to an
/// end (succeeded or failed, the payload being nonsense as data).
async fn accepted_or_invalid(
    c: &mut Clients,
    what: &str,
    job: Result<Option<pb::Job>, tonic::Status>,
) {
    accepted_or_refused(c, what, job, &[tonic::Code::InvalidArgument]).await;
}

/// [`accepted_or_invalid`], with the refusals `refusals` allowed.
async fn accepted_or_refused(
    c: &mut Clients,
    what: &str,
    job: Result<Option<pb::Job>, tonic::Status>,
    refusals: &[tonic::Code],
) {
    match job {
        Ok(Some(job)) => {
            let job = wait_job(c, &job.id).await;
            println!("{what}: job {} ended {}", job.id, job.status);
        }
        Ok(None) => println!("{what}: accepted, no job"),
        Err(status) => assert!(
            refusals.contains(&status.code()),
            "{what}: refused, but not with {refusals:?}: {status:?}"
        ),
    }
}

/// Every free-text or URL field of the mutating RPCs carries a template payload; each job
/// runs (or the request is refused as invalid); no payload ever runs on the control plane.
#[tokio::test]
#[ignore = "real node: needs the test bed (scripts/test.sh runs it)"]
async fn template_payloads_in_job_data_never_run() {
    let (server, tag) = TestServer::start_real(|_| {}).await;
    let mut c = server.clients();
    let node = server.node(&mut c).await;
    let p = |field: &str| payload(&tag, field);

    // A site whose name and title are payloads: created through the real playbook.
    let created = c
        .sites
        .create_site(pb::CreateSiteRequest {
            name: p("site-name"),
            slug: format!("pw{tag}"),
            node_id: node.id.clone(),
            title: p("title"),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    let job = wait_job(&mut c, &created.job.unwrap().id).await;
    assert_eq!(job.status, pb::JobStatus::Succeeded as i32, "{job:?}");
    let site = created.site.unwrap();
    let env = environment(&mut c, &created.environment.unwrap().id).await;
    assert_eq!(site.name, p("site-name"), "stored as given");

    // The admin e-mail's local part, the admin user.
    let result = c
        .sites
        .create_site(pb::CreateSiteRequest {
            name: "Mail".into(),
            slug: format!("pm{tag}"),
            node_id: node.id.clone(),
            title: "mail".into(),
            admin_email: format!("{}@example.com", p("email")),
            admin_user: p("admin-user"),
            ..Default::default()
        })
        .await
        .map(|r| r.into_inner().job);
    accepted_or_invalid(&mut c, "CreateSite admin", result).await;
    let result = c
        .sites
        .create_site(pb::CreateSiteRequest {
            name: "Mail2".into(),
            slug: format!("pn{tag}"),
            node_id: node.id.clone(),
            title: "mail".into(),
            admin_email: format!("{}@example.com", p("email2")),
            ..Default::default()
        })
        .await
        .map(|r| r.into_inner().job);
    accepted_or_invalid(&mut c, "CreateSite e-mail", result).await;

    let result = c
        .sites
        .update_site(pb::UpdateSiteRequest {
            site_id: site.id.clone(),
            name: Some(p("renamed")),
            ..Default::default()
        })
        .await
        .map(|_| None);
    accepted_or_invalid(&mut c, "UpdateSite", result).await;

    // Deploys from URLs and refs that are payloads (they fail: there is nothing there).
    for (field, source) in [
        (
            "archive-url",
            pb::release_source::Source::Archive(pb::ArchiveSource {
                url: format!("https://127.0.0.1:9/{}.tar.gz", p("archive-url")),
                sha256: String::new(),
            }),
        ),
        (
            "git-url",
            pb::release_source::Source::Git(pb::GitSource {
                url: format!("https://127.0.0.1:9/{}.git", p("git-url")),
                r#ref: String::new(),
            }),
        ),
        (
            "git-ref",
            pb::release_source::Source::Git(pb::GitSource {
                url: "https://127.0.0.1:9/repo.git".into(),
                r#ref: p("git-ref"),
            }),
        ),
        (
            "wordpress-version",
            pb::release_source::Source::Wordpress(pb::WordPressSource {
                version: p("wordpress-version"),
            }),
        ),
    ] {
        let result = c
            .sites
            .deploy_environment(pb::DeployEnvironmentRequest {
                environment_id: env.id.clone(),
                expected_version: 0,
                source: Some(pb::ReleaseSource {
                    source: Some(source),
                }),
            })
            .await
            .map(|r| r.into_inner().job);
        accepted_or_invalid(&mut c, field, result).await;
    }

    // Updates of components named by payloads.
    let result = c
        .sites
        .update_word_press(pb::UpdateWordPressRequest {
            environment_id: env.id.clone(),
            core_version: p("core"),
            plugins: vec![p("plugin")],
            themes: vec![p("theme")],
            ..Default::default()
        })
        .await
        .map(|r| r.into_inner().job);
    accepted_or_invalid(&mut c, "UpdateWordPress", result).await;

    // A staging environment named by a payload: cloned through the real playbook.
    let result = c
        .sites
        .create_environment(pb::CreateEnvironmentRequest {
            site_id: site.id.clone(),
            source_environment_id: env.id.clone(),
            name: p("env-name"),
            ..Default::default()
        })
        .await
        .map(|r| r.into_inner().job);
    accepted_or_invalid(&mut c, "CreateEnvironment", result).await;

    // A backup target whose endpoint path is a payload: the control plane's test upload (rclone,
    // with the payload in its configuration) fails, so it is refused as unreachable. Then a
    // backup of the site (its name a payload) through a working target.
    let target = s3_target(&format!("pwn-{tag}"), "");
    c.settings.set_backup_target(target.clone()).await.unwrap();
    let mut poisoned = target;
    poisoned.endpoint = format!("{}/{}", poisoned.endpoint, p("endpoint"));
    let result = c.settings.set_backup_target(poisoned).await.map(|_| None);
    accepted_or_refused(
        &mut c,
        "SetBackupTarget",
        result,
        &[
            tonic::Code::InvalidArgument,
            tonic::Code::FailedPrecondition,
        ],
    )
    .await;
    let result = c
        .sites
        .create_backup(pb::CreateBackupRequest {
            environment_id: env.id.clone(),
            scope: pb::BackupScope::Db as i32,
        })
        .await
        .map(|r| r.into_inner().job);
    accepted_or_invalid(&mut c, "CreateBackup", result).await;

    assert_eq!(markers(&tag), Vec::<String>::new(), "a payload ran");
    // The proof is worth something only if the payload would have run: the same expression,
    // rendered as a template by the same Ansible, does create its marker.
    let probe = std::process::Command::new("ansible")
        .args([
            "localhost",
            "-c",
            "local",
            "-m",
            "ansible.builtin.debug",
            "-a",
        ])
        .arg(format!("msg={}", p("probe")))
        .env("ANSIBLE_LOCALHOST_WARNING", "false")
        .output()
        .unwrap();
    assert!(probe.status.success(), "{probe:?}");
    assert_eq!(
        markers(&tag),
        vec![format!("pressluft-pwn-{tag}-probe")],
        "the payload runs when rendered"
    );
    std::fs::remove_file(format!("/tmp/pressluft-pwn-{tag}-probe")).unwrap();

    let sites = c
        .sites
        .list_sites(pb::ListSitesRequest::default())
        .await
        .unwrap()
        .into_inner()
        .sites;
    for site in sites.iter().filter(|s| s.slug.ends_with(tag.as_str())) {
        delete_site_and_wait(&mut c, &site.id).await;
    }
    server.stop().await;
}

/// A login from `address` (through the trusted proxy header).
async fn login_from(
    c: &mut Clients,
    address: &str,
    email: &str,
    password: &str,
) -> Result<pb::LoginResponse, tonic::Status> {
    let mut request = tonic::Request::new(pb::LoginRequest {
        email: email.into(),
        password: password.into(),
    });
    request
        .metadata_mut()
        .insert("x-forwarded-for", address.parse().unwrap());
    c.auth.login(request).await.map(tonic::Response::into_inner)
}

/// Latencies of `n` GetCurrentUser calls, sorted.
async fn current_user_latencies(c: &mut Clients, n: usize) -> Vec<std::time::Duration> {
    let mut took = Vec::with_capacity(n);
    for _ in 0..n {
        let started = std::time::Instant::now();
        c.auth
            .get_current_user(pb::GetCurrentUserRequest {})
            .await
            .unwrap();
        took.push(started.elapsed());
    }
    took.sort();
    took
}

fn p99(sorted: &[std::time::Duration]) -> std::time::Duration {
    sorted[(sorted.len() * 99 / 100).min(sorted.len() - 1)]
}

/// 200 wrong logins from one address: refused cheaply once over the budget (no password
/// hashing for them), another session's calls stay fast, and the real administrator logs in
/// from another address during the flood.
#[tokio::test]
async fn a_login_flood_neither_slows_the_api_nor_locks_the_admin_out() {
    let server = TestServer::start_with(|c| {
        c.trusted_proxies = vec!["127.0.0.1".parse().unwrap()];
    })
    .await;
    let mut c = server.clients();
    let baseline = current_user_latencies(&mut c, 200).await;

    let attacker = "203.0.113.9";
    let flood = {
        // The attacker's own connection, as it would be.
        let channel = tonic::transport::Channel::from_shared(format!("http://{}", server.addr))
            .unwrap()
            .connect()
            .await
            .unwrap();
        let c = Clients::over(channel, None);
        tokio::spawn(async move {
            let mut tasks = tokio::task::JoinSet::new();
            for n in 0..200 {
                let mut c = c.clone();
                tasks.spawn(async move {
                    login_from(
                        &mut c,
                        attacker,
                        ADMIN_EMAIL,
                        &format!("wrong password {n}"),
                    )
                    .await
                    .unwrap_err()
                    .code()
                });
            }
            tasks.join_all().await
        })
    };
    let during = current_user_latencies(&mut c, 200).await;
    let admin = login_from(&mut c, "198.51.100.7", ADMIN_EMAIL, ADMIN_PASSWORD).await;
    let codes = flood.await.unwrap();

    let refused = codes
        .iter()
        .filter(|c| **c == tonic::Code::ResourceExhausted)
        .count();
    let wrong = codes
        .iter()
        .filter(|c| **c == tonic::Code::Unauthenticated)
        .count();
    assert_eq!(refused + wrong, 200, "{codes:?}");
    assert!(
        wrong <= 5,
        "only the budget's attempts are checked: {wrong}"
    );
    assert!(admin.is_ok(), "the admin logs in from elsewhere: {admin:?}");
    // The attacker's address stays refused, even with the right password.
    let blocked = login_from(&mut c, attacker, ADMIN_EMAIL, ADMIN_PASSWORD)
        .await
        .unwrap_err();
    assert_eq!(blocked.code(), tonic::Code::ResourceExhausted);
    assert_eq!(reason(&blocked), "LOGIN_RATE_LIMITED");
    // Measured against a baseline of the same run: a busy machine slows both.
    let (before, flooded) = (p99(&baseline), p99(&during));
    println!("GetCurrentUser p99: {before:?} before, {flooded:?} during the flood");
    assert!(
        flooded <= std::time::Duration::from_millis(100).max(before * 3),
        "the flood slowed other calls: p99 {flooded:?} (before {before:?})"
    );
    server.stop().await;
}

/// WatchJobs and WatchJob end with UNAUTHENTICATED once their token is revoked.
#[tokio::test]
async fn streams_end_when_their_token_is_revoked() {
    let server = TestServer::start_with(|c| c.jobs.run_workers = false).await;
    let mut c = server.clients();
    let token = c
        .auth
        .create_api_token(pb::CreateApiTokenRequest {
            name: "watcher".into(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    let mut watcher = server.clients_with(Some(token.secret.clone()));
    let mut stream = watcher
        .jobs
        .watch_jobs(pb::WatchJobsRequest::default())
        .await
        .unwrap()
        .into_inner();
    c.auth
        .revoke_api_token(pb::RevokeApiTokenRequest {
            token_id: token.token.unwrap().id,
        })
        .await
        .unwrap();
    let ended =
        pressluft_testkit::within("the stream to end", pressluft_testkit::limit::STEP, async {
            loop {
                match stream.message().await {
                    Ok(Some(_)) => {}
                    other => return other,
                }
            }
        })
        .await;
    assert_eq!(
        ended.unwrap_err().code(),
        tonic::Code::Unauthenticated,
        "the stream ends with UNAUTHENTICATED"
    );
    server.stop().await;
}

/// Streams an archive of `size` bytes (a gzip header, then filler).
async fn upload(c: &mut Clients, size: usize) -> Result<pb::UploadArchiveResponse, tonic::Status> {
    use pb::upload_archive_request::Part;
    let mut bytes = vec![0x1f, 0x8b];
    bytes.resize(size, 0);
    let messages = vec![
        pb::UploadArchiveRequest {
            part: Some(Part::Metadata(pb::UploadArchiveMetadata {
                file_name: "site.tar.gz".into(),
                size_bytes: size as i64,
            })),
        },
        pb::UploadArchiveRequest {
            part: Some(Part::Chunk(bytes)),
        },
    ];
    c.sites
        .upload_archive(futures::stream::iter(messages))
        .await
        .map(tonic::Response::into_inner)
}

/// A user's uploads stop at their quota, with a reason saying so.
#[tokio::test]
async fn uploads_stop_at_the_users_quota() {
    let server = TestServer::start_with(|c| {
        c.max_upload_bytes = 10_000;
        c.upload_quota_bytes = 25_000;
    })
    .await;
    let mut c = server.clients();
    upload(&mut c, 10_000).await.unwrap();
    upload(&mut c, 10_000).await.unwrap();
    let over = upload(&mut c, 10_000).await.unwrap_err();
    assert_eq!(over.code(), tonic::Code::ResourceExhausted, "{over:?}");
    assert_eq!(reason(&over), "UPLOAD_QUOTA_EXCEEDED");
    upload(&mut c, 5_000).await.expect("what still fits");
    server.stop().await;
}

/// Backup endpoints and archive or git URLs that point at loopback, link-local (metadata) or
/// private addresses are refused unless the configuration allows them.
#[tokio::test]
async fn urls_to_internal_addresses_are_refused() {
    let server = TestServer::start_with(|c| {
        c.allow_private_networks = false;
        c.jobs.run_workers = false;
    })
    .await;
    let mut c = server.clients();
    for endpoint in [
        std::env::var("PRESSLUFT_TEST_S3_ENDPOINT").unwrap_or("http://127.0.0.1:8333".into()),
        "http://169.254.169.254/latest/meta-data".into(),
        "http://[::1]:8333".into(),
        "http://localhost:8333".into(),
    ] {
        let mut target = s3_target_fields();
        target.endpoint.clone_from(&endpoint);
        let refused = c.settings.set_backup_target(target).await.unwrap_err();
        assert_eq!(
            refused.code(),
            tonic::Code::InvalidArgument,
            "{endpoint}: {refused:?}"
        );
        assert!(
            refused.message().contains("allow_private_networks"),
            "{refused:?}"
        );
    }
    let env_id = uuid::Uuid::new_v4().to_string();
    for source in [
        pb::release_source::Source::Archive(pb::ArchiveSource {
            url: "http://10.0.0.1/site.tar.gz".into(),
            sha256: String::new(),
        }),
        pb::release_source::Source::Git(pb::GitSource {
            url: "git@192.168.1.10:site.git".into(),
            r#ref: String::new(),
        }),
    ] {
        let refused = c
            .sites
            .deploy_environment(pb::DeployEnvironmentRequest {
                environment_id: env_id.clone(),
                expected_version: 0,
                source: Some(pb::ReleaseSource {
                    source: Some(source),
                }),
            })
            .await
            .unwrap_err();
        assert_eq!(refused.code(), tonic::Code::InvalidArgument, "{refused:?}");
    }
    server.stop().await;
}

/// Fields of a backup target that pass validation (the endpoint is the test's to set).
fn s3_target_fields() -> pb::SetBackupTargetRequest {
    pb::SetBackupTargetRequest {
        endpoint: String::new(),
        bucket: "backups".into(),
        region: String::new(),
        path_prefix: String::new(),
        access_key_id: "key-id".into(),
        secret_access_key: "secret-key".into(),
        ..Default::default()
    }
}

/// The server refuses a plaintext listener on an address other than loopback unless told
/// `--insecure-plaintext`.
#[tokio::test]
async fn a_plaintext_listener_off_loopback_needs_consent() {
    let dir = tempfile::tempdir().unwrap();
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let server = || {
        let mut command = std::process::Command::new(env!("CARGO_BIN_EXE_pressluft-server"));
        command
            .env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .arg("--data-dir")
            .arg(dir.path())
            .arg("--listen-addr")
            .arg(format!("0.0.0.0:{port}"));
        command
    };
    let refused = server().output().unwrap();
    assert!(!refused.status.success());
    let stderr = String::from_utf8_lossy(&refused.stderr);
    assert!(stderr.contains("--insecure-plaintext"), "{stderr}");

    let mut accepted = server()
        .arg("--insecure-plaintext")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    pressluft_testkit::until(
        "the consenting server to listen",
        pressluft_testkit::limit::START,
        || async { std::net::TcpStream::connect(("127.0.0.1", port)).ok() },
    )
    .await;
    accepted.kill().unwrap();
    accepted.wait().unwrap();
}

/// Every regular file under `dir` (links are not followed) that holds one of `secrets`.
fn files_holding(dir: &std::path::Path, secrets: &[&str]) -> Vec<String> {
    let mut found = Vec::new();
    let mut pending = vec![dir.to_owned()];
    while let Some(path) = pending.pop() {
        let Ok(meta) = std::fs::symlink_metadata(&path) else {
            continue;
        };
        if meta.is_dir() {
            pending.extend(
                std::fs::read_dir(&path)
                    .unwrap()
                    .flatten()
                    .map(|e| e.path()),
            );
        } else if meta.is_file() {
            let bytes = std::fs::read(&path).unwrap_or_default();
            let text = String::from_utf8_lossy(&bytes);
            if secrets.iter().any(|s| text.contains(s)) {
                found.push(path.display().to_string());
            }
        }
    }
    found
}

/// Runs `script` as `user` on the node; its success.
fn as_tenant(user: &str, script: &str) -> bool {
    run("sudo", &["-n", "-u", user, "bash", "-c", script])
        .status
        .success()
}

/// A tenant (code running as the environment's user) plants templates where the platform
/// reads values back (database options, upload file names, and tries release names and
/// `current`), links in its uploads to a root-only file, the node's /etc and a neighbour's
/// wp-config.php, and links in its tmp/ where root once downloaded archives. Then clone,
/// drift check, backup, restore, update, promotion and deploy run as root over that tree:
/// no template runs, no root-only or neighbour's content reaches any copy or backup, no file
/// outside the tree changes, and every job ends (succeeded, or failed with its reason).
#[tokio::test]
#[ignore = "real node: needs the test bed (scripts/test.sh runs it)"]
async fn a_hostile_tenant_gains_nothing_from_the_platforms_root_steps() {
    // Updates look for new versions here (empty: nothing to update), not on wordpress.org.
    let updates = tempfile::tempdir().unwrap();
    let updates_dir = updates.path().to_owned();
    let (server, tag) = TestServer::start_real(|c| c.update_source_dir = Some(updates_dir)).await;
    let mut c = server.clients();
    let node = server.node(&mut c).await;
    // A payload usable as a file name too (no '/').
    let p = |field: &str| payload(&tag, field).replace('/', "\\x2f");
    let (created, prod) = live_site(&mut c, &node, &format!("ht{tag}"), "hostile").await;
    let (neighbour_site, neighbour) =
        live_site(&mut c, &node, &format!("nb{tag}"), "neighbour").await;
    let target = s3_target(&format!("hostile-{tag}"), "");
    c.settings.set_backup_target(target.clone()).await.unwrap();

    // What must never leak: a root-only file's content and the neighbour's database password.
    let shadow_line = std::fs::read_to_string("/etc/shadow")
        .unwrap()
        .lines()
        .next()
        .unwrap()
        .to_owned();
    let neighbour_config =
        std::fs::read_to_string(format!("{}/shared/wp-config.php", neighbour.root_path)).unwrap();
    let neighbour_password = neighbour_config
        .lines()
        .find_map(|l| l.strip_prefix("define('DB_PASSWORD', '"))
        .and_then(|rest| rest.strip_suffix("');"))
        .unwrap()
        .to_owned();
    let secrets = [shadow_line.as_str(), neighbour_password.as_str()];
    // A root-owned file the planted links in tmp/ point at: it must not change.
    let bait = format!("/root/pressluft-bait-{tag}");
    std::fs::write(&bait, "untouched\n").unwrap();

    let (user, root) = (prod.linux_user.as_str(), prod.root_path.as_str());
    let uploads = format!("{root}/shared/uploads");
    for (what, script) in [
        (
            "a link to a root-only file",
            format!("ln -s /etc/shadow {uploads}/shadow.txt"),
        ),
        (
            "a link to the node's /etc",
            format!("ln -s /etc {uploads}/etc"),
        ),
        (
            "a link to the neighbour's configuration",
            format!(
                "ln -s {}/shared/wp-config.php {uploads}/neighbour.txt",
                neighbour.root_path
            ),
        ),
        (
            "an upload named by a template",
            format!("touch {uploads}/\"{}\".txt", p("upload-name")),
        ),
        (
            "a link where WordPress was downloaded",
            format!("ln -s {bait} {root}/tmp/wordpress.tar.gz"),
        ),
        (
            "a link where archives were downloaded",
            format!("ln -s {bait} {root}/tmp/release.tar.gz"),
        ),
        (
            "a tarball with a set-uid file",
            format!(
                "cd {root}/tmp && cp /bin/true suid && chmod 4755 suid && tar -czf planted.tar.gz suid"
            ),
        ),
    ] {
        assert!(
            as_tenant(user, &script),
            "the tenant could not plant {what}"
        );
    }
    for (what, script) in [
        (
            "rename its release to a template",
            format!(
                "mv {root}/current/ \"{root}/releases/{}\"",
                p("release-name")
            ),
        ),
        (
            "point current at a template",
            format!("ln -sfn \"releases/{}\" {root}/current", p("current")),
        ),
        (
            "write a plugin header",
            format!(
                "printf '<?php /* Plugin Name: x\\n * Version: %s */' \"{}\" > {root}/current/wp-content/plugins/x.php",
                p("header")
            ),
        ),
        (
            "edit version.php",
            format!(
                "echo \"{}\" >> {root}/current/wp-includes/version.php",
                p("version")
            ),
        ),
    ] {
        assert!(!as_tenant(user, &script), "the tenant could {what}");
    }
    // What WordPress stores for the tenant: options, a post title.
    mysql_root(&format!(
        "UPDATE `{db}`.wp_options SET option_value = '{v}' WHERE option_name = 'blogname';\
         INSERT INTO `{db}`.wp_options (option_name, option_value) VALUES ('{n}', '{v2}');",
        db = prod.db_name,
        v = p("blogname").replace('\'', "''"),
        n = p("option-name").replace('\'', "''"),
        v2 = p("option-value").replace('\'', "''"),
    ));

    let mut ended = Vec::new();
    let mut record = |what: &str, job: &pb::Job| {
        assert!(
            job.status == pb::JobStatus::Succeeded as i32
                || (job.status == pb::JobStatus::Failed as i32 && !job.error_message.is_empty()),
            "{what}: {job:?}"
        );
        ended.push(format!("{what}: {}", job.status));
    };
    let site_id = created.site.as_ref().unwrap().id.clone();
    let staging = clone_to_staging(&mut c, &site_id, &prod.id).await;
    check_drift(&mut c, &prod.id, pb::PromotionPreset::ContentProtect).await;
    let backup = backup_now(&mut c, &prod.id, pb::BackupScope::Full).await;
    let restore = c
        .sites
        .restore_backup(pb::RestoreBackupRequest {
            environment_id: prod.id.clone(),
            expected_version: 0,
            backup_id: backup.id.clone(),
            allow_from_production: false,
        })
        .await
        .unwrap()
        .into_inner()
        .job
        .unwrap();
    record("restore", &wait_job(&mut c, &restore.id).await);
    let update = c
        .sites
        .update_word_press(pb::UpdateWordPressRequest {
            environment_id: prod.id.clone(),
            all_plugins: true,
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner()
        .job
        .unwrap();
    record("update", &wait_job(&mut c, &update.id).await);
    record("promotion", &promote(&mut c, &staging.id).await);
    let deploy = c
        .sites
        .deploy_environment(pb::DeployEnvironmentRequest {
            environment_id: prod.id.clone(),
            expected_version: 0,
            source: Some(pb::ReleaseSource {
                source: Some(pb::release_source::Source::Wordpress(pb::WordPressSource {
                    version: String::new(),
                })),
            }),
        })
        .await
        .unwrap()
        .into_inner()
        .job
        .unwrap();
    record("deploy", &wait_job(&mut c, &deploy.id).await);
    println!("jobs: {ended:?}");

    assert_eq!(
        markers(&tag),
        Vec::<String>::new(),
        "a planted template ran"
    );
    assert_eq!(
        std::fs::read_to_string(&bait).unwrap(),
        "untouched\n",
        "root wrote through a link"
    );
    std::fs::remove_file(&bait).unwrap();
    for env in [&prod, &staging] {
        assert_eq!(
            files_holding(std::path::Path::new(&env.root_path), &secrets),
            Vec::<String>::new(),
            "a secret was copied into {}",
            env.name
        );
        let link = std::path::Path::new(&env.root_path).join("shared/uploads/shadow.txt");
        assert!(
            std::fs::symlink_metadata(&link).is_ok_and(|m| m.file_type().is_symlink()),
            "{} keeps the tenant's link as a link",
            link.display()
        );
    }
    // The backup: its files archive unpacked (as the restore would), nothing secret inside.
    let unpacked = tempfile::tempdir().unwrap();
    let object = unpacked.path().join("backup.tar");
    std::fs::write(&object, s3_cat(&target, &backup.object_key)).unwrap();
    let dir = unpacked.path().to_str().unwrap();
    for args in [
        vec!["-xf", object.to_str().unwrap(), "-C", dir],
        vec![
            "--no-same-owner",
            "-xzf",
            &format!("{dir}/files.tar.gz"),
            "-C",
            dir,
        ],
    ] {
        let out = run("tar", &args);
        assert!(out.status.success(), "{out:?}");
    }
    assert_eq!(
        files_holding(unpacked.path(), &secrets),
        Vec::<String>::new(),
        "a secret in the backup"
    );
    // Nothing set-uid anywhere in the environment's tree.
    let suid = run(
        "find",
        &[
            root, "-perm", "/6000", "-type", "f", "!", "-path", "*/tmp/*",
        ],
    );
    assert_eq!(
        String::from_utf8_lossy(&suid.stdout),
        "",
        "set-id files in the tree"
    );

    for site in [&created.site.unwrap().id, &neighbour_site.site.unwrap().id] {
        delete_site_and_wait(&mut c, site).await;
    }
    server.stop().await;
}

/// A tiny HTTP server for the fetch helper: `/ok` answers 200 "archive", `/hop` redirects to
/// `/ok`, `/loop` to itself, `/to-file` to a file URL.
async fn redirecting_server() -> u16 {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    tokio::spawn(async move {
        while let Ok((mut socket, _)) = listener.accept().await {
            tokio::spawn(async move {
                let mut request = vec![0u8; 4096];
                let n = socket.read(&mut request).await.unwrap_or(0);
                let request = String::from_utf8_lossy(&request[..n]).into_owned();
                let path = request.split_whitespace().nth(1).unwrap_or("/").to_owned();
                let answer = match path.as_str() {
                    "/ok" => "HTTP/1.1 200 OK\r\nContent-Length: 7\r\nConnection: close\r\n\r\narchive".to_owned(),
                    "/hop" => "HTTP/1.1 302 Found\r\nLocation: /ok\r\nContent-Length: 0\r\nConnection: close\r\n\r\n".to_owned(),
                    "/loop" => "HTTP/1.1 302 Found\r\nLocation: /loop\r\nContent-Length: 0\r\nConnection: close\r\n\r\n".to_owned(),
                    "/to-file" => "HTTP/1.1 302 Found\r\nLocation: file:///etc/passwd\r\nContent-Length: 0\r\nConnection: close\r\n\r\n".to_owned(),
                    _ => "HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\nConnection: close\r\n\r\n".to_owned(),
                };
                let _ = socket.write_all(answer.as_bytes()).await;
            });
        }
    });
    port
}

/// The node's own check of archive and git URLs (`pressluft-fetch`, run by the release role):
/// internal addresses are refused unless allowed, at every redirect hop; only http(s); a
/// bounded number of redirects; the digest checked; nothing left behind when refused.
#[tokio::test]
async fn nodes_check_fetched_urls_themselves_at_every_hop() {
    let port = redirecting_server().await;
    let helper = repo_root().join("playbooks/files/pressluft-fetch");
    let dir = tempfile::tempdir().unwrap();
    let dest = dir.path().join("release.tar.gz");
    let fetch = |path: &str, allow: bool, sha: &str| {
        let helper = helper.clone();
        let dest = dest.clone();
        let url = format!("http://127.0.0.1:{port}{path}");
        let sha = sha.to_owned();
        async move {
            let out = tokio::process::Command::new(helper)
                .args([url.as_str(), dest.to_str().unwrap(), sha.as_str()])
                .env(
                    "PRESSLUFT_ALLOW_PRIVATE_NETWORKS",
                    if allow { "1" } else { "0" },
                )
                .output()
                .await
                .unwrap();
            let fetched = std::fs::read_to_string(&dest).ok();
            let _ = std::fs::remove_file(&dest);
            (
                out.status.code(),
                String::from_utf8_lossy(&out.stderr).into_owned(),
                fetched,
            )
        }
    };
    let (code, why, fetched) = fetch("/ok", false, "").await;
    assert_eq!((code, fetched), (Some(1), None), "{why}");
    assert!(why.contains("private address"), "{why}");
    assert_eq!(fetch("/ok", true, "").await.2.as_deref(), Some("archive"));
    assert_eq!(
        fetch("/hop", true, "").await.2.as_deref(),
        Some("archive"),
        "a redirect is followed"
    );
    let (code, why, fetched) = fetch("/loop", true, "").await;
    assert_eq!((code, fetched), (Some(1), None), "{why}");
    assert!(why.contains("redirects"), "{why}");
    let (code, why, _) = fetch("/to-file", true, "").await;
    assert_eq!(code, Some(1), "{why}");
    assert!(why.contains("only http and https"), "{why}");
    let (code, why, fetched) = fetch("/ok", true, &"0".repeat(64)).await;
    assert_eq!((code, fetched), (Some(1), None), "{why}");
    assert!(why.contains("SHA-256"), "{why}");
    // A git URL's host, checked the same way, pinned for the clone.
    let pin = std::process::Command::new(&helper)
        .args(["--pin", "https://localhost/repo.git"])
        .env("PRESSLUFT_ALLOW_PRIVATE_NETWORKS", "0")
        .output()
        .unwrap();
    assert!(!pin.status.success(), "{pin:?}");
    let pin = std::process::Command::new(&helper)
        .args(["--pin", &format!("http://127.0.0.1:{port}/repo.git")])
        .env("PRESSLUFT_ALLOW_PRIVATE_NETWORKS", "1")
        .output()
        .unwrap();
    assert_eq!(
        String::from_utf8_lossy(&pin.stdout).trim(),
        format!("127.0.0.1:{port}:127.0.0.1")
    );
}
