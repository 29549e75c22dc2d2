//! The browser UI: the real app served by the server (GET /) next to grpc-web on the same
//! port, a grpc-web call from a non-browser client (curl with grpc-web framing), and the
//! Playwright end-to-end run (web/e2e/ui.e2e.mjs, Debian's chromium) against a real node.

use std::path::Path;

use pressluft_proto::v1 as pb;
use prost::Message as _;

use crate::support::*;

/// One grpc-web frame: flag byte, big-endian length, payload.
fn frame(flag: u8, payload: &[u8]) -> Vec<u8> {
    let mut out = vec![flag];
    out.extend_from_slice(&u32::try_from(payload.len()).unwrap().to_be_bytes());
    out.extend_from_slice(payload);
    out
}

/// The frames of a grpc-web response body: (flag, payload).
fn frames(mut body: &[u8]) -> Vec<(u8, Vec<u8>)> {
    let mut out = Vec::new();
    while body.len() >= 5 {
        let len = u32::from_be_bytes(body[1..5].try_into().unwrap()) as usize;
        out.push((body[0], body[5..5 + len].to_vec()));
        body = &body[5 + len..];
    }
    out
}

#[tokio::test(flavor = "multi_thread")]
async fn the_ui_and_grpc_web_share_the_port() {
    let server = TestServer::start().await;
    let base = format!("http://{}", server.addr);

    // A plain GET of / is the app; its script and style come from the same origin.
    let (status, page) = curl(&["-s", "-D", "-", &format!("{base}/")]);
    assert_eq!(status, 200, "{page}");
    assert!(page.contains("content-type: text/html"), "{page}");
    assert!(
        page.contains("<div id=\"app\">") && page.contains("/assets/app.js"),
        "{page}"
    );
    assert!(
        page.contains("content-security-policy: default-src 'self'"),
        "{page}"
    );
    let (status, script) = curl(&[
        "-s",
        "-o",
        "/dev/null",
        "-D",
        "-",
        &format!("{base}/assets/app.js"),
    ]);
    assert_eq!(status, 200);
    assert!(script.contains("text/javascript"), "{script}");
    // App pages (the hash router's deep links) get the app too; unknown files do not.
    assert_eq!(
        curl(&["-s", "-o", "/dev/null", "-D", "-", &format!("{base}/sites")]).0,
        200
    );
    assert_eq!(
        curl(&[
            "-s",
            "-o",
            "/dev/null",
            "-D",
            "-",
            &format!("{base}/missing.js")
        ])
        .0,
        404
    );

    // grpc-web from curl: Login, framed by hand.
    let request = pb::LoginRequest {
        email: ADMIN_EMAIL.into(),
        password: ADMIN_PASSWORD.into(),
    };
    let dir = tempfile::tempdir().unwrap();
    let body = dir.path().join("login.bin");
    std::fs::write(&body, frame(0, &request.encode_to_vec())).unwrap();
    let out = std::process::Command::new("curl")
        .args([
            "-s",
            "-H",
            "content-type: application/grpc-web+proto",
            "-H",
            "x-grpc-web: 1",
            "--data-binary",
        ])
        .arg(format!("@{}", body.display()))
        .arg(format!("{base}/pressluft.v1.AuthService/Login"))
        .output()
        .unwrap();
    assert!(out.status.success());
    let frames = frames(&out.stdout);
    assert_eq!(frames.len(), 2, "a message and the trailers: {frames:?}");
    let response = pb::LoginResponse::decode(frames[0].1.as_slice()).unwrap();
    assert!(!response.token.is_empty());
    assert_eq!(frames[1].0, 0x80, "trailer frame");
    assert!(String::from_utf8_lossy(&frames[1].1).contains("grpc-status:0"));
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
#[ignore = "real node: needs the test bed (scripts/test.sh runs it)"]
async fn the_browser_ui_runs_a_site_from_login_to_logout() {
    // The server's build copies web/ there and installs its packages (web/ stays untouched).
    let web = Path::new(env!("PRESSLUFT_WEB_BUILD_DIR"));
    let playwright = web.join("node_modules/playwright-core");
    assert!(
        playwright.is_dir(),
        "{} is missing: the server build installs the UI's packages (npm ci)",
        playwright.display()
    );
    let chromium = std::env::var("CHROMIUM").unwrap_or_else(|_| "/usr/bin/chromium".into());
    assert!(
        Path::new(&chromium).is_file(),
        "{chromium} is missing: scripts/testbed.sh installs Debian's chromium"
    );
    let (server, tag) = TestServer::start_real(|_| {}).await;
    let mut c = server.clients();
    let node = server.node(&mut c).await;
    let target = s3_target(&format!("web{tag}"), "ui");
    c.settings.set_backup_target(target).await.unwrap();

    let shots = repo_root().join("target/web-screenshots");
    let bed = testbed();
    let out = tokio::process::Command::new("node")
        .arg(web.join("e2e/ui.e2e.mjs"))
        .current_dir(web)
        .env("PRESSLUFT_URL", format!("http://{}", server.addr))
        .env("PRESSLUFT_EMAIL", ADMIN_EMAIL)
        .env("PRESSLUFT_PASSWORD", ADMIN_PASSWORD)
        .env("NODE_NAME", &node.name)
        .env("NODE_SSH_PORT", bed.ssh_port.to_string())
        .env("SITE_SLUG", format!("ui{tag}"))
        .env("SCREENSHOTS", &shots)
        .env("CHROMIUM", &chromium)
        .kill_on_drop(true)
        .output();
    let out = pressluft_testkit::within(
        "the browser test to end",
        pressluft_testkit::limit::PROVISION,
        out,
    )
    .await
    .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "the browser test failed (screenshots in {}):\n{stdout}\n{stderr}",
        shots.display()
    );
    assert!(stdout.trim_end().ends_with("ok"), "{stdout}");
    for screen in [
        "01-login",
        "02-nodes",
        "03-site-creating",
        "04-site",
        "05-backup",
        "06-wp-admin",
        "07-job",
        "08-activity",
    ] {
        assert!(
            shots.join(format!("{screen}.png")).is_file(),
            "{screen}.png saved"
        );
    }
    // The site the browser made goes again.
    let sites = c
        .sites
        .list_sites(pb::ListSitesRequest::default())
        .await
        .unwrap()
        .into_inner()
        .sites;
    let site = sites
        .iter()
        .find(|s| s.slug == format!("ui{tag}"))
        .expect("the browser created the site");
    delete_site_and_wait(&mut c, &site.id).await;
    server.stop().await;
}
