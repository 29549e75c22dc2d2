//! What install scripts and operators use beside the API: the admin commands of the server
//! binary run against a live data directory, the HTTP health check, and the API's own TLS
//! listener (a real CA and certificates made with openssl, a real TLS client).

use std::path::Path;
use std::process::{Command, Stdio};

use pressluft_proto::v1 as pb;
use tonic::Code;
use tonic::transport::{Certificate, Channel, ClientTlsConfig};

use crate::support::*;

/// `pressluft-server ARGS...` on `data`, with `stdin` as input; (success, stdout, stderr).
fn admin(data: &Path, args: &[&str], stdin: &str) -> (bool, String, String) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_pressluft-server"))
        .arg("--data-dir")
        .arg(data)
        .args(args)
        .env("RUST_BACKTRACE", "0")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    std::io::Write::write_all(child.stdin.as_mut().unwrap(), stdin.as_bytes()).unwrap();
    let out = child.wait_with_output().unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

async fn login(c: &mut Clients, email: &str, password: &str) -> Result<String, tonic::Status> {
    c.auth
        .login(pb::LoginRequest {
            email: email.into(),
            password: password.into(),
        })
        .await
        .map(|r| r.into_inner().token)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn admin_commands_bootstrap_and_recover_a_running_install() {
    let server = TestServer::start().await;
    let data = server.data_dir();
    let base = format!("http://{}", server.addr);

    // The health check answers plain HTTP without a token.
    let (status, body) = curl(&["-s", "-D", "-", &format!("{base}/healthz")]);
    assert_eq!(status, 200, "{body}");
    assert!(body.ends_with("ok\n"), "{body}");

    // The first administrator: created once; a second run changes nothing (old password kept).
    let email = "owner@example.com";
    let first = "first password 123";
    let create_once = &[
        "admin",
        "create-user",
        "--email",
        email,
        "--password-stdin",
        "--exists-ok",
    ];
    let (ok, out, err) = admin(&data, create_once, &format!("{first}\n"));
    assert!(ok, "{err}");
    assert_eq!(out, "created\n");
    assert!(!err.contains(first), "the password is never printed: {err}");
    let (ok, out, err) = admin(&data, create_once, "another password 456\n");
    assert!(ok, "{err}");
    assert_eq!(out, "exists\n");
    let mut anon = server.clients_with(None);
    let session = login(&mut anon, email, first)
        .await
        .expect("first password");
    // Without --exists-ok a duplicate is an error.
    let (ok, _, err) = admin(
        &data,
        &["admin", "create-user", "--email", email, "--password-stdin"],
        "another password 456\n",
    );
    assert!(!ok && err.contains("already exists"), "{err}");

    // The control plane's key: made once, the same line on every call, private part 0600.
    let (ok, key, err) = admin(&data, &["admin", "ssh-key"], "");
    assert!(ok, "{err}");
    assert!(
        key.starts_with("ssh-ed25519 AAAA") && key.ends_with(" pressluft-control-plane\n"),
        "{key}"
    );
    assert_eq!(admin(&data, &["admin", "ssh-key"], "").1, key);
    let mode = std::os::unix::fs::PermissionsExt::mode(
        &std::fs::metadata(data.join("secrets/id_ed25519"))
            .unwrap()
            .permissions(),
    );
    assert_eq!(mode & 0o777, 0o600);

    // A lost password: a too-short one is refused and changes nothing...
    let (ok, _, err) = admin(
        &data,
        &["admin", "set-password", "--email", email],
        "short\n",
    );
    assert!(!ok && err.contains("at least 12 characters"), "{err}");
    let mut user = server.clients_with(Some(session.clone()));
    user.auth
        .get_current_user(pb::GetCurrentUserRequest {})
        .await
        .expect("the session still works");
    // ...a good one replaces it and ends the user's sessions.
    let (ok, _, err) = admin(
        &data,
        &["admin", "set-password", "--email", email],
        "second password 789\n",
    );
    assert!(ok, "{err}");
    assert!(err.contains("1 session(s) ended"), "{err}");
    let ended = user
        .auth
        .get_current_user(pb::GetCurrentUserRequest {})
        .await
        .unwrap_err();
    assert_eq!(ended.code(), Code::Unauthenticated);
    assert_eq!(
        login(&mut anon, email, first).await.unwrap_err().code(),
        Code::Unauthenticated
    );
    login(&mut anon, email, "second password 789")
        .await
        .expect("the new password");
    let (ok, _, err) = admin(
        &data,
        &["admin", "set-password", "--email", "ghost@example.com"],
        "a good long password\n",
    );
    assert!(
        !ok && err.contains("no user with email ghost@example.com"),
        "{err}"
    );
    server.stop().await;
}

/// An openssl CA and leaf certificates for `localhost` signed by it, in `dir`.
struct Pki {
    dir: std::path::PathBuf,
}

impl Pki {
    fn new(dir: &Path) -> Self {
        openssl(
            &[
                "req",
                "-x509",
                "-newkey",
                "ec",
                "-pkeyopt",
                "ec_paramgen_curve:prime256v1",
                "-nodes",
                "-keyout",
                "ca.key",
                "-out",
                "ca.pem",
                "-days",
                "2",
                "-subj",
                "/CN=pressluft test CA",
            ],
            dir,
        );
        Self {
            dir: dir.to_owned(),
        }
    }

    /// A leaf certificate and key named `name`.pem / `name`.key with `serial`.
    fn leaf(&self, name: &str, serial: &str) {
        let key = format!("{name}.key");
        let csr = format!("{name}.csr");
        let pem = format!("{name}.pem");
        openssl(
            &[
                "req",
                "-newkey",
                "ec",
                "-pkeyopt",
                "ec_paramgen_curve:prime256v1",
                "-nodes",
                "-keyout",
                &key,
                "-out",
                &csr,
                "-subj",
                "/CN=localhost",
            ],
            &self.dir,
        );
        std::fs::write(
            self.dir.join("ext.cnf"),
            "subjectAltName=DNS:localhost,IP:127.0.0.1\n",
        )
        .unwrap();
        openssl(
            &[
                "x509",
                "-req",
                "-in",
                &csr,
                "-CA",
                "ca.pem",
                "-CAkey",
                "ca.key",
                "-set_serial",
                serial,
                "-out",
                &pem,
                "-days",
                "2",
                "-extfile",
                "ext.cnf",
            ],
            &self.dir,
        );
    }
}

fn openssl(args: &[&str], dir: &Path) {
    let out = Command::new("openssl")
        .args(args)
        .current_dir(dir)
        .output()
        .expect("openssl runs");
    assert!(out.status.success(), "openssl {args:?}: {out:?}");
}

/// The serial number of the certificate `addr` presents.
fn presented_serial(addr: &str, ca: &Path) -> String {
    let script = format!(
        "openssl s_client -connect {addr} -servername localhost -CAfile {} -verify_return_error \
         </dev/null 2>/dev/null | openssl x509 -noout -serial",
        ca.display()
    );
    let out = Command::new("sh").args(["-c", &script]).output().unwrap();
    String::from_utf8_lossy(&out.stdout).trim().to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_api_serves_tls_and_picks_up_a_renewed_certificate() {
    let dir = tempfile::tempdir().unwrap();
    let pki = Pki::new(dir.path());
    pki.leaf("one", "0x1001");
    pki.leaf("two", "0x2002");
    let live_cert = dir.path().join("live.pem");
    let live_key = dir.path().join("live.key");
    std::fs::copy(dir.path().join("one.pem"), &live_cert).unwrap();
    std::fs::copy(dir.path().join("one.key"), &live_key).unwrap();
    let data = dir.path().join("data");
    std::fs::create_dir(&data).unwrap();
    let (ok, _, err) = admin(
        &data,
        &[
            "admin",
            "create-user",
            "--email",
            ADMIN_EMAIL,
            "--password-stdin",
        ],
        &format!("{ADMIN_PASSWORD}\n"),
    );
    assert!(ok, "{err}");

    // A key that does not belong to the certificate stops the start with a clear message.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let addr = format!("127.0.0.1:{port}");
    let serve = |cert: &Path, key: &Path| {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_pressluft-server"));
        cmd.arg("--data-dir")
            .arg(&data)
            .args(["--listen-addr", &addr, "--tls-cert-file"])
            .arg(cert)
            .arg("--tls-key-file")
            .arg(key)
            .env("RUST_BACKTRACE", "0")
            .stdout(Stdio::null());
        cmd
    };
    let refused = serve(&live_cert, &dir.path().join("two.key"))
        .stderr(Stdio::piped())
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&refused.stderr);
    assert!(!refused.status.success(), "{stderr}");
    assert!(
        stderr.contains("does not belong to the certificate"),
        "{stderr}"
    );

    let mut child = serve(&live_cert, &live_key)
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let ca = dir.path().join("ca.pem");
    let ca_arg = ca.to_str().unwrap();
    let healthz = format!("https://localhost:{port}/healthz");
    pressluft_testkit::until(
        "the TLS server to answer /healthz",
        pressluft_testkit::limit::START,
        || async {
            (curl(&["-s", "-D", "-", "--cacert", ca_arg, &healthz]).0 == 200).then_some(())
        },
    )
    .await;

    // HTTP/2 by ALPN for gRPC, HTTP/1.1 for browsers and curl; plain HTTP gets no answer.
    let http_version = |extra: &[&str]| {
        let mut args = vec![
            "-s",
            "-o",
            "/dev/null",
            "-w",
            "%{http_version}",
            "--cacert",
            ca_arg,
        ];
        args.extend_from_slice(extra);
        args.push(&healthz);
        curl(&args).1
    };
    assert_eq!(http_version(&[]), "2");
    assert_eq!(http_version(&["--http1.1"]), "1.1");
    let (status, _) = curl(&["-s", "-D", "-", &format!("http://localhost:{port}/healthz")]);
    assert_eq!(status, 0, "no plaintext answer on the TLS port");

    // A real gRPC client trusting the CA: health, login and an authenticated call.
    let tls = ClientTlsConfig::new()
        .ca_certificate(Certificate::from_pem(std::fs::read(&ca).unwrap()))
        .domain_name("localhost");
    let channel = Channel::from_shared(format!("https://localhost:{port}"))
        .unwrap()
        .tls_config(tls)
        .unwrap()
        .connect()
        .await
        .expect("a TLS gRPC connection");
    let mut anon = Clients::over(channel.clone(), None);
    let token = login(&mut anon, ADMIN_EMAIL, ADMIN_PASSWORD)
        .await
        .expect("login over TLS");
    let mut user = Clients::over(channel, Some(token));
    let me = user
        .auth
        .get_current_user(pb::GetCurrentUserRequest {})
        .await
        .unwrap()
        .into_inner();
    assert_eq!(me.user.unwrap().email, ADMIN_EMAIL);

    // A renewal replaces the files: the next handshake presents the new certificate, no restart.
    assert_eq!(presented_serial(&addr, &ca), "serial=1001");
    std::thread::sleep(std::time::Duration::from_millis(20));
    std::fs::copy(dir.path().join("two.pem"), &live_cert).unwrap();
    std::fs::copy(dir.path().join("two.key"), &live_key).unwrap();
    assert_eq!(presented_serial(&addr, &ca), "serial=2002");
    // A broken replacement keeps the last good certificate in service.
    std::fs::write(&live_cert, "not a certificate\n").unwrap();
    assert_eq!(presented_serial(&addr, &ca), "serial=2002");

    let _ = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status();
    let status = child.wait().unwrap();
    assert!(status.success(), "a clean stop on SIGTERM: {status}");
}
