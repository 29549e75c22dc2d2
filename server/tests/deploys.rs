//! Deploys on real sites: zero-downtime switches, failing releases never staying live, git
//! (with composer) and uploaded archives.

use std::time::Duration;

use pressluft_proto::v1 as pb;
use pressluft_testkit::{limit, until};

use crate::support::*;

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
