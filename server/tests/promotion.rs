//! Drift checks and promotion of staging into production on real sites.

use pressluft_proto::v1 as pb;

use crate::support::*;

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
