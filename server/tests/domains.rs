//! Custom domains on a real site with real certificates: nginx, certbot and Debian's pebble
//! ACME server on loopback (names resolve through /etc/hosts, which pebble's validation reads
//! too). Add a domain: DNS checked, certificate issued by pebble, HTTPS with the site, HTTP and
//! the www alias redirect, URLs in the content rewritten; a second domain redirects to the
//! primary; a domain pointing elsewhere is refused with nothing changed; a failing ACME order
//! leaves the domain `failed` and the others serving; the periodic certificate check records
//! expiry and a failed renewal of one certificate without touching the other; removal falls back
//! to the preview URL and deletes the certificate.

use std::time::Duration;

use pressluft_proto::v1 as pb;

use crate::support::*;

/// Lines added to /etc/hosts for one test, taken out again when dropped.
struct Hosts {
    lines: Vec<String>,
}

impl Hosts {
    fn add(entries: &[(&str, &str)]) -> Self {
        let lines: Vec<String> = entries
            .iter()
            .map(|(ip, name)| format!("{ip} {name} # pressluft-test"))
            .collect();
        let mut text = std::fs::read_to_string("/etc/hosts").unwrap();
        for line in &lines {
            text.push_str(line);
            text.push('\n');
        }
        std::fs::write("/etc/hosts", text).unwrap();
        Self { lines }
    }

    fn remove(&mut self, name: &str) {
        let text = std::fs::read_to_string("/etc/hosts").unwrap();
        let kept: Vec<&str> = text
            .lines()
            .filter(|l| !(l.ends_with("# pressluft-test") && l.split(' ').nth(1) == Some(name)))
            .collect();
        std::fs::write("/etc/hosts", kept.join("\n") + "\n").unwrap();
        self.lines.retain(|l| l.split(' ').nth(1) != Some(name));
    }
}

impl Drop for Hosts {
    fn drop(&mut self) {
        for name in self
            .lines
            .clone()
            .iter()
            .filter_map(|l| l.split(' ').nth(1))
        {
            self.remove(name);
        }
    }
}

/// Status and headers of an HTTPS request to `host` on the loopback node (certificate not
/// verified; `issuer` is the certificate's issuer line).
fn https(host: &str, path: &str) -> (u16, String, String) {
    let resolve = format!("{host}:443:127.0.0.1");
    let url = format!("https://{host}{path}");
    let out = run(
        "curl",
        &[
            "-sk",
            "-v",
            "-o",
            "/dev/null",
            "-D",
            "-",
            "--max-time",
            "10",
            "--resolve",
            &resolve,
            &url,
        ],
    );
    let headers = String::from_utf8_lossy(&out.stdout).to_string();
    let verbose = String::from_utf8_lossy(&out.stderr).to_string();
    let status = status_of(&headers);
    let issuer = verbose
        .lines()
        .find(|l| l.contains("issuer:"))
        .unwrap_or_default()
        .to_owned();
    (status, headers, issuer)
}

/// The body of an HTTPS GET of `host`'s front page.
fn https_body(host: &str) -> String {
    let resolve = format!("{host}:443:127.0.0.1");
    let out = run(
        "curl",
        &[
            "-sk",
            "--max-time",
            "10",
            "--resolve",
            &resolve,
            &format!("https://{host}/"),
        ],
    );
    String::from_utf8_lossy(&out.stdout).to_string()
}

/// Status and headers of a plain HTTP request to `host` through nginx.
fn http(host: &str, path: &str) -> (u16, String) {
    curl(&[
        "-s",
        "-o",
        "/dev/null",
        "-D",
        "-",
        "--max-time",
        "10",
        "-H",
        &format!("Host: {host}"),
        &format!("http://127.0.0.1{path}"),
    ])
}

fn header<'a>(headers: &'a str, name: &str) -> &'a str {
    headers
        .lines()
        .find_map(|l| {
            l.split_once(':')
                .filter(|(n, _)| n.eq_ignore_ascii_case(name))
                .map(|(_, v)| v.trim())
        })
        .unwrap_or_default()
}

async fn domains(c: &mut Clients, env: &str) -> Vec<pb::Domain> {
    c.sites
        .list_domains(pb::ListDomainsRequest {
            environment_id: env.into(),
            page_size: 0,
            page_token: String::new(),
        })
        .await
        .unwrap()
        .into_inner()
        .domains
}

fn domain<'a>(list: &'a [pb::Domain], host: &str) -> &'a pb::Domain {
    list.iter()
        .find(|d| d.hostname == host)
        .unwrap_or_else(|| panic!("{host} in {list:?}"))
}

async fn add(
    c: &mut Clients,
    env: &str,
    host: &str,
    skip_dns: bool,
) -> Result<pb::AddDomainResponse, tonic::Status> {
    c.sites
        .add_domain(pb::AddDomainRequest {
            environment_id: env.into(),
            expected_version: 0,
            hostname: host.into(),
            make_primary: false,
            skip_dns_check: skip_dns,
        })
        .await
        .map(tonic::Response::into_inner)
}

async fn job_count(c: &mut Clients) -> usize {
    c.jobs
        .list_jobs(pb::ListJobsRequest::default())
        .await
        .unwrap()
        .into_inner()
        .jobs
        .len()
}

async fn remove(c: &mut Clients, domain_id: &str) -> pb::Job {
    let job = c
        .sites
        .remove_domain(pb::RemoveDomainRequest {
            domain_id: domain_id.into(),
            expected_version: 0,
        })
        .await
        .unwrap()
        .into_inner()
        .job
        .unwrap();
    wait_job(c, &job.id).await
}

fn succeeded(job: &pb::Job) {
    assert_eq!(job.status, pb::JobStatus::Succeeded as i32, "{job:?}");
    eprintln!("measured: {} took {:.1} s", job.summary, seconds(job));
}

/// How long a finished job ran.
fn seconds(job: &pb::Job) -> f64 {
    let at = |t: Option<&prost_types::Timestamp>| {
        std::time::SystemTime::try_from(t.copied().unwrap_or_default()).unwrap()
    };
    at(job.finish_time.as_ref())
        .duration_since(at(job.start_time.as_ref()))
        .unwrap_or_default()
        .as_secs_f64()
}

fn certificate_on_node(host: &str) -> bool {
    std::path::Path::new(&format!("/etc/letsencrypt/live/{host}")).exists()
}

#[tokio::test(flavor = "multi_thread")]
#[ignore = "real node: needs the test bed (scripts/test.sh runs it)"]
async fn domains_get_certificates_redirect_rewrite_urls_and_fall_back_to_the_preview() {
    let acme = std::env::var("PRESSLUFT_TEST_ACME_DIRECTORY").unwrap_or_else(|_| {
        panic!("PRESSLUFT_TEST_ACME_DIRECTORY is not set: run the suite with scripts/test.sh (it starts pebble)")
    });
    let acme_ca = std::env::var("PRESSLUFT_TEST_ACME_CA").expect("PRESSLUFT_TEST_ACME_CA");
    let (server, tag) = TestServer::start_real(|c| {
        c.acme_directory_url = acme;
        c.acme_ca_bundle = Some(acme_ca.into());
        c.cert_check_interval = Duration::from_secs(2);
    })
    .await;
    let mut c = server.clients();
    let node = server.node(&mut c).await;
    let (created, env) = live_site(&mut c, &node, &format!("dom{tag}"), "Domain shop").await;
    let preview_host = env.preview_url.trim_start_matches("http://").to_owned();
    let shop = format!("shop-{tag}.test");
    let www = format!("www.{shop}");
    let alt = format!("alt-{tag}.test");
    let elsewhere = format!("elsewhere-{tag}.test");
    let broken = format!("broken-{tag}.test");
    let mut hosts = Hosts::add(&[
        ("127.0.0.1", &shop),
        ("127.0.0.1", &www),
        ("127.0.0.1", &alt),
        ("10.255.255.1", &elsewhere),
    ]);

    // DNS pointing elsewhere (or nowhere): a clear error, nothing changed.
    let jobs_before = job_count(&mut c).await;
    let refused = add(&mut c, &env.id, &elsewhere, false).await.unwrap_err();
    assert_eq!(refused.code(), tonic::Code::FailedPrecondition);
    assert_eq!(reason(&refused), "DNS_MISMATCH");
    assert!(
        refused.message().contains("10.255.255.1") && refused.message().contains("127.0.0.1"),
        "{refused:?}"
    );
    let nowhere = add(&mut c, &env.id, &broken, false).await.unwrap_err();
    assert!(
        nowhere.message().contains("does not resolve"),
        "{nowhere:?}"
    );
    for bad in [
        "localhost",
        "127.0.0.1",
        "Shop.test",
        "shop..test",
        &preview_host,
    ] {
        assert_eq!(
            add(&mut c, &env.id, bad, true).await.unwrap_err().code(),
            tonic::Code::InvalidArgument,
            "{bad}"
        );
    }
    assert!(domains(&mut c, &env.id).await.is_empty());
    let jobs_after = job_count(&mut c).await;
    assert_eq!(jobs_before, jobs_after, "no job for a refused domain");

    // The first domain: certificate from pebble (with the www alias), primary, HTTPS.
    let added = add(&mut c, &env.id, &shop, false).await.unwrap();
    let pending = added.domain.unwrap();
    assert_eq!(pending.tls_status, pb::TlsStatus::Pending as i32);
    assert_eq!(pending.aliases, vec![www.clone()]);
    let job = wait_job(&mut c, &added.job.unwrap().id).await;
    succeeded(&job);
    let list = domains(&mut c, &env.id).await;
    let first = domain(&list, &shop);
    assert!(first.is_primary);
    assert_eq!(first.tls_status, pb::TlsStatus::Active as i32, "{first:?}");
    let expiry = first.tls_expire_time.unwrap().seconds;
    let now = i64::try_from(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs(),
    )
    .unwrap();
    assert!(
        expiry > now + 20 * 86_400,
        "expiry {expiry} is read from the certificate"
    );
    assert!(!first.tls_expires_soon);
    let now_env = environment(&mut c, &env.id).await;
    assert_eq!(now_env.primary_domain, shop);
    assert_eq!(now_env.url, format!("https://{shop}"));
    assert_eq!(now_env.status, pb::EnvironmentStatus::Active as i32);

    let (status, headers, issuer) = https(&shop, "/");
    assert_eq!(status, 200, "{headers}");
    assert!(issuer.contains("Pebble"), "issued by pebble: {issuer}");
    assert!(header(&headers, "strict-transport-security").contains("max-age"));
    let body = https_body(&shop);
    assert!(body.contains("Domain shop"), "the site over HTTPS");
    assert!(
        body.contains(&format!("https://{shop}")),
        "links on the domain"
    );
    assert!(
        !body.contains(&preview_host),
        "no link left on the preview host"
    );
    assert_eq!(option_of(&now_env, "home"), format!("https://{shop}"));
    assert_eq!(option_of(&now_env, "siteurl"), format!("https://{shop}"));
    let (status, headers) = http(&shop, "/some/page?x=1");
    assert_eq!(status, 301);
    assert_eq!(
        header(&headers, "location"),
        format!("https://{shop}/some/page?x=1")
    );
    let (status, headers, _) = https(&www, "/");
    assert_eq!(status, 301, "www on the same certificate: {headers}");
    assert_eq!(header(&headers, "location"), format!("https://{shop}/"));
    // The preview host still answers (health checks), kept out of search engines.
    let (status, headers) = http(&preview_host, "/");
    assert_eq!(status, 200, "{headers}");
    assert!(header(&headers, "x-robots-tag").contains("noindex"));
    // A name no site claims: no TLS handshake.
    let (status, _, _) = https(&format!("unknown-{tag}.test"), "/");
    assert_eq!(status, 0);

    // A second domain redirects to the primary.
    let second = add(&mut c, &env.id, &alt, false).await.unwrap();
    succeeded(&wait_job(&mut c, &second.job.unwrap().id).await);
    let (status, headers, _) = https(&alt, "/shop/");
    assert_eq!(status, 301, "{headers}");
    assert_eq!(
        header(&headers, "location"),
        format!("https://{shop}/shop/")
    );
    let (status, headers) = http(&alt, "/");
    assert_eq!(status, 301);
    assert_eq!(header(&headers, "location"), format!("https://{shop}/"));
    assert!(!domain(&domains(&mut c, &env.id).await, &alt).is_primary);

    // A failing ACME order (the name resolves nowhere, the DNS check skipped): the domain is
    // failed with the CA's reason, the environment stays active, the others keep serving.
    let failing = add(&mut c, &env.id, &broken, true).await.unwrap();
    let job = wait_job(&mut c, &failing.job.unwrap().id).await;
    assert_eq!(job.status, pb::JobStatus::Failed as i32);
    assert_eq!(job.error_code, "ACME_FAILED", "{job:?}");
    let list = domains(&mut c, &env.id).await;
    let failed = domain(&list, &broken);
    assert_eq!(failed.tls_status, pb::TlsStatus::Failed as i32);
    assert!(!failed.tls_message.is_empty(), "{failed:?}");
    assert_eq!(
        domain(&list, &shop).tls_status,
        pb::TlsStatus::Active as i32
    );
    assert_eq!(
        environment(&mut c, &env.id).await.status,
        pb::EnvironmentStatus::Active as i32
    );
    assert_eq!(https(&shop, "/").0, 200);
    assert_eq!(https(&alt, "/").0, 301);
    assert_eq!(http(&broken, "/").0, 0, "a failed domain is not served");

    // The node's renewals (what its cron runs), forced: alt's fails (its name no longer
    // resolves), shop's succeeds; the periodic check records both, each on its own.
    hosts.remove(&alt);
    // Pebble (Go) re-reads /etc/hosts at most every 5 s.
    tokio::time::sleep(Duration::from_secs(6)).await;
    let checked_before = domain(&domains(&mut c, &env.id).await, &shop)
        .tls_check_time
        .unwrap();
    let renew = run(
        "/usr/local/lib/pressluft/pressluft-certs",
        &["renew", "--force"],
    );
    assert!(!renew.status.success(), "one renewal failed: {renew:?}");
    let report: serde_json::Value = serde_json::from_slice(&renew.stdout).unwrap();
    let ok_of = |name: &str| {
        report["certificates"]
            .as_array()
            .unwrap()
            .iter()
            .find(|c| c["name"] == name)
            .map(|c| c["ok"].as_bool().unwrap())
    };
    assert_eq!(ok_of(&shop), Some(true), "{report}");
    assert_eq!(ok_of(&alt), Some(false), "{report}");
    let list = pressluft_testkit::until(
        "the periodic check to record the renewals",
        pressluft_testkit::limit::JOB,
        || {
            let mut c = c.clone();
            let (env_id, alt, shop) = (env.id.clone(), alt.clone(), shop.clone());
            let before = checked_before.seconds;
            async move {
                let list = domains(&mut c, &env_id).await;
                (domain(&list, &alt).tls_status == pb::TlsStatus::Failed as i32
                    && domain(&list, &shop)
                        .tls_check_time
                        .as_ref()
                        .unwrap()
                        .seconds
                        > before)
                    .then_some(list)
            }
        },
    )
    .await;
    let renewal_failed = domain(&list, &alt);
    assert!(
        renewal_failed.tls_message.starts_with("renewal failed"),
        "{renewal_failed:?}"
    );
    assert!(
        renewal_failed.tls_expire_time.is_some(),
        "its old certificate still counts"
    );
    assert_eq!(
        domain(&list, &shop).tls_status,
        pb::TlsStatus::Active as i32
    );
    assert_eq!(
        https(&alt, "/").0,
        301,
        "still served with its current certificate"
    );

    // Removing the primary: back to the preview URL, certificate deleted, URLs rewritten back.
    let shop_id = domain(&list, &shop).id.clone();
    succeeded(&remove(&mut c, &shop_id).await);
    let now_env = environment(&mut c, &env.id).await;
    assert_eq!(now_env.primary_domain, "");
    assert_eq!(now_env.url, env.preview_url);
    assert_eq!(option_of(&now_env, "home"), env.preview_url);
    assert!(!certificate_on_node(&shop), "certificate deleted");
    assert_eq!(https(&shop, "/").0, 0, "no longer served over HTTPS");
    assert_eq!(http(&shop, "/").0, 0, "nor over HTTP (444)");
    let (status, headers) = http(&preview_host, "/");
    assert_eq!(status, 200);
    assert!(
        header(&headers, "x-robots-tag").is_empty(),
        "production again"
    );
    let list = domains(&mut c, &env.id).await;
    assert!(list.iter().all(|d| d.hostname != shop));
    // The remaining domain redirects to the site's address, now the preview URL.
    assert_eq!(
        header(&https(&alt, "/").1, "location"),
        format!("{}/", env.preview_url)
    );

    // A failed domain goes without a certificate to delete; deleting the site takes the rest.
    succeeded(&remove(&mut c, &domain(&list, &broken).id).await);
    assert!(certificate_on_node(&alt));
    delete_site_and_wait(&mut c, &created.site.unwrap().id).await;
    assert!(
        !certificate_on_node(&alt),
        "the site's certificates went with it"
    );
    assert!(domains(&mut c, &env.id).await.is_empty());
    drop(hosts);
    server.stop().await;
}
