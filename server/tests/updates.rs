//! WordPress updates (env_update) on a real site: a pre-update backup in the real S3-compatible
//! bucket, core, a plugin and a theme updated as a new release from a local update source (the
//! test machine has no route to wordpress.org), the database upgraded, and an update that
//! breaks the site after the database upgrade undone completely.

use std::path::Path;

use pressluft_proto::v1 as pb;

use crate::support::*;

const FIXTURE: &str = "pressluft-fixture";

/// A plugin that says its version in a response header; `extra` is PHP run on every request.
fn fixture_plugin(dir: &Path, version: &str, extra: &str) {
    std::fs::create_dir_all(dir).unwrap();
    std::fs::write(
        dir.join(format!("{FIXTURE}.php")),
        format!(
            "<?php\n/*\n * Plugin Name: Pressluft fixture\n * Version: {version}\n */\n\
             add_action('send_headers', function () {{ header('X-Fixture: {version}'); }});\n{extra}\n"
        ),
    )
    .unwrap();
}

/// A WordPress tree claiming core `version` and database version `db_version` (the Debian
/// tree with its version file edited: the same code, a new version number).
fn fixture_core(dir: &Path, version: &str, db_version: u32) {
    let _ = std::fs::remove_dir_all(dir);
    let out = run(
        "cp",
        &["-rL", "/usr/share/wordpress", dir.to_str().unwrap()],
    );
    assert!(out.status.success(), "{out:?}");
    let file = dir.join("wp-includes/version.php");
    let text = std::fs::read_to_string(&file).unwrap();
    let text = text
        .replace(
            "$wp_version = '6.1.9';",
            &format!("$wp_version = '{version}';"),
        )
        .replace(
            "$wp_db_version = 53496;",
            &format!("$wp_db_version = {db_version};"),
        );
    std::fs::write(&file, text).unwrap();
}

/// The fixture's version header and the release header of the live site.
fn live_versions(host: &str) -> (u16, String, String) {
    let (status, text) = curl(&[
        "-s",
        "-o",
        "/dev/null",
        "-D",
        "-",
        "-H",
        &format!("Host: {host}"),
        "http://127.0.0.1/",
    ]);
    let header = |name: &str| {
        text.lines()
            .find_map(|l| l.strip_prefix(name))
            .unwrap_or_default()
            .trim()
            .to_owned()
    };
    (
        status,
        header("X-Fixture: "),
        header("X-Pressluft-Release: "),
    )
}

async fn update(c: &mut Clients, env: &str, request: pb::UpdateWordPressRequest) -> pb::Job {
    let job = c
        .sites
        .update_word_press(pb::UpdateWordPressRequest {
            environment_id: env.into(),
            ..request
        })
        .await
        .unwrap()
        .into_inner()
        .job
        .unwrap();
    wait_job(c, &job.id).await
}

async fn pre_update_backups(c: &mut Clients, env: &str) -> Vec<pb::Backup> {
    c.sites
        .list_backups(pb::ListBackupsRequest {
            environment_id: env.into(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner()
        .backups
        .into_iter()
        .filter(|b| b.trigger == pb::BackupTrigger::PreUpdate as i32)
        .collect()
}

#[tokio::test]
#[ignore = "real node: needs the test bed (scripts/test.sh runs it)"]
async fn an_update_backs_up_first_goes_live_as_a_release_or_is_undone() {
    let source = tempfile::tempdir().unwrap();
    let source_dir = source.path().to_owned();
    let (server, tag) =
        TestServer::start_real(|c| c.update_source_dir = Some(source_dir.clone())).await;
    let mut c = server.clients();
    let node = server.node(&mut c).await;
    let (created, env) = live_site(&mut c, &node, &format!("up{tag}"), &format!("up {tag}")).await;
    let host = env.preview_url.trim_start_matches("http://").to_owned();

    // Bad input changes nothing: nothing named, a slug that is not one, no backup target.
    let refused = |r: pb::UpdateWordPressRequest| pb::UpdateWordPressRequest {
        environment_id: env.id.clone(),
        ..r
    };
    let nothing = c
        .sites
        .update_word_press(refused(pb::UpdateWordPressRequest::default()))
        .await
        .unwrap_err();
    assert_eq!(nothing.code(), tonic::Code::InvalidArgument, "{nothing:?}");
    let bad_slug = c
        .sites
        .update_word_press(refused(pb::UpdateWordPressRequest {
            plugins: vec!["../etc".into()],
            ..Default::default()
        }))
        .await
        .unwrap_err();
    assert_eq!(
        bad_slug.code(),
        tonic::Code::InvalidArgument,
        "{bad_slug:?}"
    );
    let no_target = c
        .sites
        .update_word_press(refused(pb::UpdateWordPressRequest {
            all_plugins: true,
            ..Default::default()
        }))
        .await
        .unwrap_err();
    assert_eq!(
        no_target.code(),
        tonic::Code::FailedPrecondition,
        "{no_target:?}"
    );
    assert!(
        no_target.message().contains("backup target"),
        "{no_target:?}"
    );
    assert!(pre_update_backups(&mut c, &env.id).await.is_empty());
    assert_eq!(
        environment(&mut c, &env.id).await.status,
        pb::EnvironmentStatus::Active as i32
    );

    let target = s3_target(&format!("update-{tag}"), "");
    c.settings.set_backup_target(target.clone()).await.unwrap();

    // Installed on the live site: fixture plugin 1.0, active (as if added through wp-admin).
    let live = std::fs::read_link(format!("{}/current", env.root_path)).unwrap();
    let live = Path::new(&env.root_path).join(live);
    fixture_plugin(&live.join("wp-content/plugins").join(FIXTURE), "1.0", "");
    assert!(
        run(
            "chown",
            &[
                "-R",
                &format!("{}:www-data", env.linux_user),
                live.join("wp-content/plugins").to_str().unwrap()
            ]
        )
        .status
        .success()
    );
    mysql_root(&format!(
        "UPDATE `{}`.wp_options SET option_value = 'a:1:{{i:0;s:{}:\"{FIXTURE}/{FIXTURE}.php\";}}' WHERE option_name = 'active_plugins'",
        env.db_name,
        2 * FIXTURE.len() + 5,
    ));
    let (status, fixture, first_release) = live_versions(&host);
    assert_eq!((status, fixture.as_str()), (200, "1.0"));

    // The update source: core "6.1.90" (a new database version), the plugin's 2.0 as a
    // directory, the theme's 9.9 as a wordpress.org-style zip.
    fixture_core(&source_dir.join("core"), "6.1.90", 53_497);
    fixture_plugin(&source_dir.join("plugins").join(FIXTURE), "2.0", "");
    let themes = source_dir.join("themes");
    std::fs::create_dir_all(&themes).unwrap();
    let theme = tempfile::tempdir().unwrap();
    let out = run(
        "cp",
        &[
            "-rL",
            "/usr/share/wordpress/wp-content/themes/twentytwentythree",
            theme.path().to_str().unwrap(),
        ],
    );
    assert!(out.status.success());
    let style = theme.path().join("twentytwentythree/style.css");
    let css = std::fs::read_to_string(&style)
        .unwrap()
        .replacen("Version: 1.0", "Version: 9.9", 1);
    std::fs::write(&style, css).unwrap();
    let out = std::process::Command::new("python3")
        .args([
            "-m",
            "zipfile",
            "-c",
            themes.join("twentytwentythree.zip").to_str().unwrap(),
            "twentytwentythree",
        ])
        .current_dir(theme.path())
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");

    // A plugin that is not installed: refused by the build, after the backup; nothing changes.
    let job = update(
        &mut c,
        &env.id,
        pb::UpdateWordPressRequest {
            plugins: vec!["not-installed".into()],
            ..Default::default()
        },
    )
    .await;
    assert_eq!(job.status, pb::JobStatus::Failed as i32, "{job:?}");
    assert!(
        job.error_message
            .contains("plugin not-installed is not installed"),
        "{job:?}"
    );
    assert_eq!(job.attempt, 1, "a refused update is not retried: {job:?}");
    assert_eq!(live_versions(&host).2, first_release);
    assert_eq!(
        environment(&mut c, &env.id).await.status,
        pb::EnvironmentStatus::Active as i32
    );

    // The update: backup first, then the new release live, the database upgraded.
    let started = std::time::Instant::now();
    let job = update(
        &mut c,
        &env.id,
        pb::UpdateWordPressRequest {
            core_version: "latest".into(),
            plugins: vec![FIXTURE.into()],
            themes: vec!["twentytwentythree".into()],
            ..Default::default()
        },
    )
    .await;
    let took = started.elapsed();
    assert_eq!(job.status, pb::JobStatus::Succeeded as i32, "{job:?}");
    assert_steps_in_order(
        &watch_all(&mut c, &job.id).await,
        &[
            "Pre-update backup",
            "Live release copied with the updates applied",
            "Candidate answers 200",
            "Switch current",
            "Live site answers 200",
            "Database upgraded for the new core",
            "Site answers 200 on the upgraded database",
            "Report",
        ],
    );
    let (status, fixture, updated_release) = live_versions(&host);
    assert_eq!((status, fixture.as_str()), (200, "2.0"));
    assert_ne!(updated_release, first_release);
    let current = std::fs::read_link(format!("{}/current", env.root_path)).unwrap();
    let version = std::fs::read_to_string(
        Path::new(&env.root_path)
            .join(&current)
            .join("wp-includes/version.php"),
    )
    .unwrap();
    assert!(version.contains("$wp_version = '6.1.90';"));
    let style = std::fs::read_to_string(
        Path::new(&env.root_path)
            .join(&current)
            .join("wp-content/themes/twentytwentythree/style.css"),
    )
    .unwrap();
    assert!(style.contains("Version: 9.9"));
    assert_eq!(option_of(&env, "db_version"), "53497");
    assert!(
        Path::new(&env.root_path)
            .join(format!("releases/{first_release}/wp-load.php"))
            .exists(),
        "the previous release stays for a rollback"
    );
    let releases = releases_of(&mut c, &env.id).await;
    let new = releases.iter().find(|r| r.path == updated_release).unwrap();
    assert!(new.is_current);
    assert_eq!(new.health, pb::ReleaseHealth::Healthy as i32);
    assert_eq!(new.resolved_ref, "6.1.90");
    let mut updates: Vec<_> = new
        .updates
        .iter()
        .map(|u| format!("{} {} {}->{}", u.kind, u.slug, u.from_version, u.to_version))
        .collect();
    updates.sort();
    assert_eq!(
        updates,
        [
            "core wordpress 6.1.9->6.1.90",
            &format!("plugin {FIXTURE} 1.0->2.0"),
            "theme twentytwentythree 1.0->9.9",
        ]
    );
    let backups = pre_update_backups(&mut c, &env.id).await;
    assert_eq!(backups.len(), 2, "one per update job: {backups:?}");
    let done: Vec<_> = backups
        .iter()
        .filter(|b| b.status == pb::BackupStatus::Completed as i32)
        .collect();
    assert_eq!(done.len(), 2, "{backups:?}");
    for b in &done {
        assert_eq!(s3_cat(&target, &b.object_key).len() as i64, b.size_bytes);
    }
    println!(
        "update: core + plugin + theme with a {} byte pre-update backup took {:.1} s",
        done[0].size_bytes,
        took.as_secs_f64()
    );

    // An update that breaks the site once the database is upgraded (the plugin's 3.0 fails
    // on the new database version): the previous release and database come back.
    fixture_core(&source_dir.join("core"), "6.1.91", 53_498);
    fixture_plugin(
        &source_dir.join("plugins").join(FIXTURE),
        "3.0",
        "if ((int) get_option('db_version') === 53498) { http_response_code(500); exit; }",
    );
    let job = update(
        &mut c,
        &env.id,
        pb::UpdateWordPressRequest {
            core_version: "6.1.91".into(),
            all_plugins: true,
            ..Default::default()
        },
    )
    .await;
    assert_eq!(job.status, pb::JobStatus::Failed as i32, "{job:?}");
    assert!(
        job.error_message
            .contains("put back as it was before the update"),
        "{job:?}"
    );
    assert_eq!(job.attempt, 1, "{job:?}");
    assert_steps_in_order(
        &watch_all(&mut c, &job.id).await,
        &[
            "Switch current",
            "Database upgraded for the new core",
            "Site answers 200 on the upgraded database",
            "Previous release and pre-update database put back",
        ],
    );
    assert_eq!(
        live_versions(&host),
        (200, "2.0".to_owned(), updated_release.clone())
    );
    assert_eq!(option_of(&env, "db_version"), "53497");
    let after = environment(&mut c, &env.id).await;
    assert_eq!(after.status, pb::EnvironmentStatus::Active as i32);
    let releases = releases_of(&mut c, &env.id).await;
    assert!(
        releases
            .iter()
            .any(|r| r.path == updated_release && r.is_current)
    );
    assert!(
        releases
            .iter()
            .any(|r| r.health == pb::ReleaseHealth::Unhealthy as i32 && !r.is_current),
        "the failed release is on record, never current: {releases:?}"
    );
    let backups = pre_update_backups(&mut c, &env.id).await;
    assert_eq!(backups.len(), 3);
    assert!(
        backups
            .iter()
            .all(|b| b.status == pb::BackupStatus::Completed as i32),
        "{backups:?}"
    );

    delete_site_and_wait(&mut c, &created.site.as_ref().unwrap().id).await;
    server.stop().await;
}
