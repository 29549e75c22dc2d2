//! Caching and vhost hardening on real sites: nginx's FastCGI page cache (HIT on a second
//! anonymous GET, bypassed for logged-in cookies, POST and query strings, emptied by a purge and
//! by a deploy), the Redis object cache per environment (keys under each environment's own
//! prefix, a purge of one leaves the other's), security headers, PHP under uploads denied and
//! the login rate limit.

use pressluft_proto::v1 as pb;

use crate::support::*;

/// Status and headers of a request to the environment's preview host through nginx.
fn request(host: &str, args: &[&str], path: &str) -> (u16, String) {
    let url = format!("http://127.0.0.1{path}");
    let mut all = vec!["-s", "-o", "/dev/null", "-D", "-", "-H"];
    let host_header = format!("Host: {host}");
    all.push(&host_header);
    all.extend_from_slice(args);
    all.push(&url);
    curl(&all)
}

/// The body of an anonymous GET of the front page.
fn body(host: &str) -> String {
    let out = run(
        "curl",
        &["-s", "-H", &format!("Host: {host}"), "http://127.0.0.1/"],
    );
    String::from_utf8_lossy(&out.stdout).to_string()
}

/// The X-FastCGI-Cache header of a response ("" when absent).
fn cache_status(headers: &str) -> String {
    headers
        .lines()
        .find_map(|l| l.strip_prefix("X-FastCGI-Cache: "))
        .unwrap_or_default()
        .trim()
        .to_owned()
}

fn redis_keys(prefix: &str) -> usize {
    // As the node's root tools read Redis (anonymous access is off).
    let out = run(
        "/usr/local/lib/pressluft/pressluft-redis",
        &["--scan", "--pattern", &format!("{prefix}*")],
    );
    assert!(out.status.success(), "{out:?}");
    String::from_utf8_lossy(&out.stdout).lines().count()
}

async fn toggle(c: &mut Clients, env: &str, page: Option<bool>, object: Option<bool>) {
    let job = c
        .sites
        .update_cache_settings(pb::UpdateCacheSettingsRequest {
            environment_id: env.into(),
            expected_version: 0,
            page_cache: page,
            object_cache: object,
        })
        .await
        .unwrap()
        .into_inner()
        .job
        .unwrap();
    let job = wait_job(c, &job.id).await;
    assert_eq!(job.status, pb::JobStatus::Succeeded as i32, "{job:?}");
}

async fn purge(c: &mut Clients, env: &str) {
    let job = c
        .sites
        .purge_cache(pb::PurgeCacheRequest {
            environment_id: env.into(),
        })
        .await
        .unwrap()
        .into_inner()
        .job
        .unwrap();
    let job = wait_job(c, &job.id).await;
    assert_eq!(job.status, pb::JobStatus::Succeeded as i32, "{job:?}");
}

#[tokio::test]
#[ignore = "real node: needs the test bed (scripts/test.sh runs it)"]
async fn page_and_object_caches_hit_bypass_purge_and_stay_per_environment() {
    let (server, tag) = TestServer::start_real(|_| {}).await;
    let mut c = server.clients();
    let node = server.node(&mut c).await;
    let (site_a, a) = live_site(&mut c, &node, &format!("ca{tag}"), &format!("ca {tag}")).await;
    let (site_b, b) = live_site(&mut c, &node, &format!("cb{tag}"), &format!("cb {tag}")).await;
    let host = a.preview_url.trim_start_matches("http://").to_owned();

    // Hardening, caches off.
    let (status, head) = request(&host, &[], "/");
    assert_eq!(status, 200, "{head}");
    for header in [
        "X-Content-Type-Options: nosniff",
        "X-Frame-Options: SAMEORIGIN",
        "Referrer-Policy: strict-origin-when-cross-origin",
    ] {
        assert!(head.contains(header), "{header} in {head}");
    }
    assert!(
        !head.contains("Strict-Transport-Security"),
        "no HSTS on plain HTTP"
    );
    assert_eq!(cache_status(&head), "", "no page cache yet");
    let php = format!("{}/shared/uploads/x.php", a.root_path);
    std::fs::write(&php, "<?php echo 'ran';").unwrap();
    assert_eq!(request(&host, &[], "/wp-content/uploads/x.php").0, 403);
    std::fs::remove_file(&php).unwrap();
    let limited = (0..25)
        .map(|_| request(&host, &[], "/wp-login.php").0)
        .filter(|s| *s == 429)
        .count();
    assert!(
        limited > 0,
        "the login rate limit answers 429 past its burst"
    );

    // Page cache on: the second anonymous GET is a HIT; cookies, POST, query strings bypass.
    toggle(&mut c, &a.id, Some(true), None).await;
    assert!(environment(&mut c, &a.id).await.cache.unwrap().page_cache);
    assert_eq!(cache_status(&request(&host, &[], "/").1), "MISS");
    assert_eq!(cache_status(&request(&host, &[], "/").1), "HIT");
    let logged_in = ["-H", "Cookie: wordpress_logged_in_abc=admin"];
    assert_eq!(cache_status(&request(&host, &logged_in, "/").1), "BYPASS");
    let cart = ["-H", "Cookie: woocommerce_items_in_cart=1"];
    assert_eq!(cache_status(&request(&host, &cart, "/").1), "BYPASS");
    // nginx never consults the cache for POST (only GET and HEAD are cacheable methods).
    let post = cache_status(&request(&host, &["-X", "POST"], "/").1);
    assert!(post.is_empty() || post == "BYPASS", "POST: {post}");
    assert_eq!(cache_status(&request(&host, &[], "/?s=hello").1), "BYPASS");
    // Logins have a location of their own (rate-limited), outside the cache.
    assert_eq!(cache_status(&request(&host, &[], "/wp-login.php").1), "");
    assert_eq!(cache_status(&request(&host, &[], "/wp-json/").1), "BYPASS");
    purge(&mut c, &a.id).await;
    assert_eq!(cache_status(&request(&host, &[], "/").1), "MISS", "purged");
    assert_eq!(cache_status(&request(&host, &[], "/").1), "HIT");

    // A deploy empties the page cache: a title changed in the database stays hidden behind the
    // cached page until the deploy, then shows.
    mysql_root(&format!(
        "UPDATE `{}`.wp_options SET option_value = 'Renamed {tag}' WHERE option_name = 'blogname'",
        a.db_name
    ));
    assert!(
        !body(&host).contains(&format!("Renamed {tag}")),
        "served from the cache"
    );
    let job = c
        .sites
        .deploy_environment(pb::DeployEnvironmentRequest {
            environment_id: a.id.clone(),
            source: Some(pb::ReleaseSource {
                source: Some(pb::release_source::Source::Wordpress(pb::WordPressSource {
                    version: "latest".into(),
                })),
            }),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner()
        .job
        .unwrap();
    let job = wait_job(&mut c, &job.id).await;
    assert_eq!(job.status, pb::JobStatus::Succeeded as i32, "{job:?}");
    assert!(
        body(&host).contains(&format!("Renamed {tag}")),
        "after the deploy no page from before it is served"
    );

    // Object cache: keys under each environment's own prefix; a purge of one leaves the other.
    let (prefix_a, prefix_b) = (format!("{}:", a.linux_user), format!("{}:", b.linux_user));
    toggle(&mut c, &a.id, None, Some(true)).await;
    let env_a = environment(&mut c, &a.id).await;
    let cache = env_a.cache.unwrap();
    assert!(cache.object_cache && cache.page_cache, "{cache:?}");
    request(&host, &["-H", "Cookie: wordpress_logged_in_x=1"], "/");
    assert!(
        redis_keys(&prefix_a) > 0,
        "WordPress caches its objects in Redis"
    );
    assert_eq!(redis_keys(&prefix_b), 0, "B's object cache is off");
    toggle(&mut c, &b.id, None, Some(true)).await;
    let host_b = b.preview_url.trim_start_matches("http://").to_owned();
    assert_eq!(request(&host_b, &[], "/").0, 200);
    let keys_b = redis_keys(&prefix_b);
    assert!(keys_b > 0);
    // WordPress's own flush (as A's site user, through the drop-in and A's Redis user, which
    // may not SCAN): A's keys go, B's stay.
    let flushed = run(
        "sudo",
        &[
            "-n",
            "-u",
            &a.linux_user,
            "/usr/local/lib/pressluft/pressluft-php",
            &a.root_path,
            "-r",
            &format!(
                "require '{}/current/wp-load.php'; wp_cache_set('probe', 'v'); \
                 echo wp_cache_flush() ? 'flushed' : 'failed';",
                a.root_path
            ),
        ],
    );
    assert!(
        String::from_utf8_lossy(&flushed.stdout).ends_with("flushed"),
        "{flushed:?}"
    );
    assert_eq!(
        redis_keys(&prefix_a),
        0,
        "wp_cache_flush leaves none of A's keys"
    );
    assert_eq!(redis_keys(&prefix_b), keys_b, "B's keys stay");
    request(&host, &["-H", "Cookie: wordpress_logged_in_x=1"], "/");
    assert!(redis_keys(&prefix_a) > 0, "A caches again after its flush");
    purge(&mut c, &a.id).await;
    assert_eq!(redis_keys(&prefix_a), 0, "A's keys are gone");
    assert_eq!(redis_keys(&prefix_b), keys_b, "B's keys stay");

    // Off again: no page cache header, the drop-in inert (no new keys).
    toggle(&mut c, &a.id, Some(false), Some(false)).await;
    let (status, head) = request(&host, &[], "/");
    assert_eq!((status, cache_status(&head).as_str()), (200, ""), "{head}");
    assert_eq!(redis_keys(&prefix_a), 0);

    delete_site_and_wait(&mut c, &site_a.site.as_ref().unwrap().id).await;
    delete_site_and_wait(&mut c, &site_b.site.as_ref().unwrap().id).await;
    assert_eq!(
        redis_keys(&prefix_b),
        0,
        "a deleted environment leaves no keys"
    );
    server.stop().await;
}
