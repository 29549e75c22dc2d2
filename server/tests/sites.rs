//! Real WordPress sites on the loopback node: creation, isolation between sites and from a
//! hostile tenant, reset of a failed environment, and clones to staging.

use pressluft_proto::v1 as pb;

use crate::support::*;

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
