//! Shared fixtures: a real server bound on 127.0.0.1:0 with a temp data dir, authenticated
//! tonic clients, raw gRPC calls driven by the contract's descriptor, and an in-process SSH
//! server for host-key tests.

// Fixtures follow the tests' lint set: plain, linear code over pedantic style.
#![allow(
    clippy::unwrap_used,
    clippy::missing_panics_doc,
    clippy::too_many_lines,
    clippy::similar_names,
    clippy::items_after_statements,
    clippy::format_push_string,
    clippy::match_same_arms
)]

mod fleet;
mod flows;
pub use fleet::*;
pub use flows::*;
pub use pressluft_testkit::ports::machine_public_ports;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

use pressluft_proto::v1 as pb;
use pressluft_server::config::Config;
use pressluft_server::secrets::Secret;
use pressluft_server::store::Store;
use prost::Message as _;
use tokio_util::sync::CancellationToken;
use tonic::service::interceptor::InterceptedService;
use tonic::transport::Channel;

pub const ADMIN_EMAIL: &str = "admin@example.com";
pub const ADMIN_PASSWORD: &str = "correct horse battery staple";

/// Adds `authorization: Bearer <token>` when a token is set.
#[derive(Clone)]
pub struct Bearer(pub Option<String>);

impl tonic::service::Interceptor for Bearer {
    fn call(
        &mut self,
        mut request: tonic::Request<()>,
    ) -> Result<tonic::Request<()>, tonic::Status> {
        if let Some(token) = &self.0 {
            request
                .metadata_mut()
                .insert("authorization", format!("Bearer {token}").parse().unwrap());
        }
        Ok(request)
    }
}

pub type Authed = InterceptedService<Channel, Bearer>;

/// Typed clients sharing one channel.
#[derive(Clone)]
pub struct Clients {
    pub auth: pb::auth_service_client::AuthServiceClient<Authed>,
    pub nodes: pb::node_service_client::NodeServiceClient<Authed>,
    pub sites: pb::site_service_client::SiteServiceClient<Authed>,
    pub jobs: pb::job_service_client::JobServiceClient<Authed>,
    pub queries: pb::node_query_service_client::NodeQueryServiceClient<Authed>,
    pub audit: pb::audit_service_client::AuditServiceClient<Authed>,
    pub settings: pb::settings_service_client::SettingsServiceClient<Authed>,
}

impl Clients {
    /// Clients over `c` carrying `token` (or none).
    pub fn over(c: Channel, token: Option<String>) -> Self {
        let b = Bearer(token);
        Self {
            auth: pb::auth_service_client::AuthServiceClient::with_interceptor(
                c.clone(),
                b.clone(),
            ),
            nodes: pb::node_service_client::NodeServiceClient::with_interceptor(
                c.clone(),
                b.clone(),
            ),
            sites: pb::site_service_client::SiteServiceClient::with_interceptor(
                c.clone(),
                b.clone(),
            ),
            jobs: pb::job_service_client::JobServiceClient::with_interceptor(c.clone(), b.clone()),
            queries: pb::node_query_service_client::NodeQueryServiceClient::with_interceptor(
                c.clone(),
                b.clone(),
            ),
            audit: pb::audit_service_client::AuditServiceClient::with_interceptor(
                c.clone(),
                b.clone(),
            ),
            settings: pb::settings_service_client::SettingsServiceClient::with_interceptor(c, b),
        }
    }
}

/// A running server and what a test needs to talk to it.
pub struct TestServer {
    pub addr: SocketAddr,
    pub dir: tempfile::TempDir,
    pub token: String,
    pub shutdown: CancellationToken,
    pub handle: tokio::task::JoinHandle<pressluft_server::error::Result<()>>,
    pub channel: Channel,
    /// Runs the real playbooks (start_real).
    pub real: bool,
}

impl TestServer {
    /// Starts a server with an admin user (password login) and an API token for it; the job
    /// worker is off, so queued jobs stay queued.
    pub async fn start() -> Self {
        Self::start_with(|c| c.jobs.run_workers = false).await
    }

    /// Starts a server whose worker runs real `ansible-playbook` with the test playbooks
    /// against the loopback test node, with short leases and retries.
    pub async fn start_engine(tweak: impl FnOnce(&mut Config)) -> Self {
        let bed = testbed();
        Self::start_with(|c| {
            engine_config(c, &bed);
            tweak(c);
        })
        .await
    }

    /// Starts an engine server with the real playbooks and the local WordPress tree, and a
    /// random tag for names: sites from earlier runs on this machine never collide, and its
    /// UIDs come from a block no other test server holds (`pressluft_testkit::uids`).
    pub async fn start_real(tweak: impl FnOnce(&mut Config)) -> (Self, String) {
        let tag = uuid::Uuid::new_v4().simple().to_string()[..6].to_owned();
        let uid_base = i64::from(pressluft_testkit::uids::block());
        let mut server = Self::start_engine(|c| {
            c.playbooks_dir = repo_root().join("playbooks");
            c.wordpress_source_dir = Some("/usr/share/wordpress".into());
            c.linux_uid_base = uid_base;
            c.firewall_allow_tcp = machine_public_ports().to_vec();
            tweak(c);
        })
        .await;
        server.real = true;
        (server, tag)
    }

    /// Starts a server with `tweak` applied to its configuration.
    pub async fn start_with(tweak: impl FnOnce(&mut Config)) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let mut config = Config::for_data_dir(dir.path());
        // The suite's S3 server and file servers listen on loopback.
        config.allow_private_networks = true;
        // Most tests arrange nodes that answer no SSH (an address and a made-up host key): the
        // reachability check would mark them unreachable under a slow test. The tests of the
        // check itself set a short interval.
        config.node_check_interval = std::time::Duration::from_hours(24);
        tweak(&mut config);
        let store = Store::open(&config.database_path()).await.unwrap();
        let user = pressluft_server::auth::create_user(
            &store,
            ADMIN_EMAIL,
            "Admin",
            Some(&Secret::new(ADMIN_PASSWORD)),
        )
        .await
        .unwrap();
        let (secret, _) = pressluft_server::auth::create_api_token(&store, user.id, "tests", None)
            .await
            .unwrap();
        store.pool().close().await;

        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let shutdown = CancellationToken::new();
        let handle = tokio::spawn(pressluft_server::App::run(
            config,
            listener,
            shutdown.clone(),
        ));
        let channel = Channel::from_shared(format!("http://{addr}"))
            .unwrap()
            .connect()
            .await
            .unwrap();
        Self {
            addr,
            dir,
            token: secret.expose().to_owned(),
            shutdown,
            handle,
            channel,
            real: false,
        }
    }

    /// The loopback node, registered through the API (host key pinned) and active. With the
    /// real playbooks, the first server of the test process provisions the machine with the
    /// real node_provision; later servers adopt it as provisioned (the same machine, provisioned
    /// by the same playbooks minutes earlier; node_provision is proven by its own test), which
    /// saves a 20 s serialized playbook run per test. Test-playbook servers always provision.
    pub async fn node(&self, c: &mut Clients) -> pb::Node {
        static REAL_PROVISIONED: std::sync::atomic::AtomicBool =
            std::sync::atomic::AtomicBool::new(false);
        use std::sync::atomic::Ordering::SeqCst;
        if !self.real {
            return active_test_node(c).await;
        }
        let _one_at_a_time = PROVISIONING.lock().await;
        if !REAL_PROVISIONED.load(SeqCst) {
            let node = provision_test_node(c).await;
            REAL_PROVISIONED.store(true, SeqCst);
            return node;
        }
        let node = register_test_node(c).await;
        sqlx::query(
            "UPDATE nodes SET status = 'active', php_versions = '[\"8.2\"]', last_seen_at = ?
             WHERE id = ?",
        )
        .bind(
            i64::try_from(
                std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .unwrap()
                    .as_millis(),
            )
            .unwrap(),
        )
        .bind(&node.id)
        .execute(self.store().await.pool())
        .await
        .unwrap();
        active(c, node.id).await
    }

    /// Clients carrying the admin token.
    pub fn clients(&self) -> Clients {
        self.clients_with(Some(self.token.clone()))
    }

    /// Clients carrying `token` (or none).
    pub fn clients_with(&self, token: Option<String>) -> Clients {
        Clients::over(self.channel.clone(), token)
    }

    /// A second handle on the database (for arranging states the API cannot reach yet and
    /// for asserting on rows).
    pub async fn store(&self) -> Store {
        Store::open(&self.dir.path().join("pressluft.db"))
            .await
            .unwrap()
    }

    pub fn data_dir(&self) -> PathBuf {
        self.dir.path().to_owned()
    }

    /// Stops the server and waits for it.
    pub async fn stop(self) {
        self.shutdown.cancel();
        pressluft_testkit::within(
            "the server to stop",
            pressluft_testkit::limit::START,
            self.handle,
        )
        .await
        .unwrap()
        .unwrap();
    }
}

/// The loopback test node built by scripts/testbed.sh.
pub struct Testbed {
    pub ssh_port: u16,
    pub key: PathBuf,
}

/// The test bed, or a loud failure saying how to build it: engine tests never skip.
pub fn testbed() -> Testbed {
    let how =
        "run the suite with scripts/test.sh (the README test command), which builds the test node";
    let port = std::env::var("PRESSLUFT_TEST_SSH_PORT")
        .unwrap_or_else(|_| panic!("PRESSLUFT_TEST_SSH_PORT is not set: {how}"));
    let key = std::env::var("PRESSLUFT_TEST_KEY")
        .unwrap_or_else(|_| panic!("PRESSLUFT_TEST_KEY is not set: {how}"));
    let found = std::process::Command::new("ansible-playbook")
        .arg("--version")
        .output();
    assert!(
        found.is_ok_and(|o| o.status.success()),
        "ansible-playbook is not on PATH: {how}"
    );
    Testbed {
        ssh_port: port.parse().unwrap(),
        key: PathBuf::from(key),
    }
}

/// The `pressluft-server` binary Cargo built beside the running test or benchmark (it builds
/// a package's binaries before its integration tests and benchmarks).
pub fn server_binary() -> PathBuf {
    let exe = std::env::current_exe().unwrap();
    // <target>/<profile>/deps/<test>-<hash>
    let binary = exe
        .ancestors()
        .nth(2)
        .unwrap()
        .join(format!("pressluft-server{}", std::env::consts::EXE_SUFFIX));
    assert!(
        binary.is_file(),
        "{} is missing: run the server's tests through cargo (it builds the binary first)",
        binary.display()
    );
    binary
}

/// The repository root.
pub fn repo_root() -> PathBuf {
    // This crate is server/testkit.
    std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .ancestors()
        .nth(2)
        .unwrap()
        .to_owned()
}

/// A playbooks directory holding the real ansible.cfg, callback plugin and roles plus the
/// test playbooks (selected through configuration, as a deployment would).
pub fn test_playbooks(into: &std::path::Path) -> PathBuf {
    let dir = into.join("playbooks");
    std::fs::create_dir_all(&dir).unwrap();
    let real = repo_root().join("playbooks");
    for name in ["ansible.cfg", "callback_plugins", "roles"] {
        std::os::unix::fs::symlink(real.join(name), dir.join(name)).unwrap();
    }
    for entry in std::fs::read_dir(repo_root().join("server/tests/playbooks")).unwrap() {
        let path = entry.unwrap().path();
        std::fs::copy(&path, dir.join(path.file_name().unwrap())).unwrap();
    }
    dir
}

/// Engine settings for tests: real playbooks, the test key, short leases and backoff.
pub fn engine_config(c: &mut Config, bed: &Testbed) {
    c.playbooks_dir = test_playbooks(&c.data_dir);
    install_key(&c.secrets_dir, &bed.key);
    // A lease a busy machine cannot miss by a late heartbeat (a missed lease hands the job
    // to another worker), still short enough for the recovery tests' waits.
    c.jobs.lease = test_lease();
    c.jobs.heartbeat = std::time::Duration::from_secs(1);
    c.health_check_timeout = health_check_timeout();
    c.jobs.poll = std::time::Duration::from_secs(1);
    c.jobs.retry_backoff = vec![std::time::Duration::from_secs(1)];
    c.jobs.kill_grace = std::time::Duration::from_secs(3);
    c.jobs.max_attempts = 2;
    c.jobs.scheduler_tick = std::time::Duration::from_secs(1);
}

/// How long the playbooks' HTTP checks wait for one answer in tests (a first PHP request on a
/// busy machine is slow).
pub fn health_check_timeout() -> std::time::Duration {
    pressluft_testkit::scaled(std::time::Duration::from_secs(30))
}

/// The job lease the tests use: twelve heartbeats, scaled.
pub fn test_lease() -> std::time::Duration {
    pressluft_testkit::scaled(std::time::Duration::from_secs(12))
}

/// Installs the test bed's key as the control plane's SSH key (authorised on the test node).
pub fn install_key(secrets_dir: &std::path::Path, key: &std::path::Path) {
    use std::os::unix::fs::PermissionsExt as _;
    std::fs::create_dir_all(secrets_dir).unwrap();
    std::fs::set_permissions(secrets_dir, std::fs::Permissions::from_mode(0o700)).unwrap();
    std::fs::copy(key, secrets_dir.join("id_ed25519")).unwrap();
    std::fs::set_permissions(
        secrets_dir.join("id_ed25519"),
        std::fs::Permissions::from_mode(0o600),
    )
    .unwrap();
    std::fs::copy(
        key.with_extension("pub"),
        secrets_dir.join("id_ed25519.pub"),
    )
    .unwrap();
}

/// The job as it is now (a client handle of its own, so closures that poll can own it).
pub async fn job_now(
    mut jobs: pb::job_service_client::JobServiceClient<Authed>,
    job_id: String,
) -> pb::Job {
    jobs.get_job(pb::GetJobRequest { job_id })
        .await
        .unwrap()
        .into_inner()
        .job
        .unwrap()
}

/// Polls a job until it ends; panics (with the job as last seen) after the scaled
/// provisioning limit, the longest any job of the suite may take.
pub async fn wait_job(c: &mut Clients, id: &str) -> pb::Job {
    wait_job_polling(c, id, pressluft_testkit::POLL).await
}

/// [`wait_job`], looking every `poll` (benchmarks measure with a finer step).
pub async fn wait_job_polling(c: &mut Clients, id: &str, poll: std::time::Duration) -> pb::Job {
    let ended = [
        pb::JobStatus::Succeeded as i32,
        pb::JobStatus::Failed as i32,
        pb::JobStatus::Cancelled as i32,
    ];
    let limit = pressluft_testkit::scaled(pressluft_testkit::limit::PROVISION);
    let deadline = std::time::Instant::now() + limit;
    loop {
        let job = job_now(c.jobs.clone(), id.into()).await;
        if ended.contains(&job.status) {
            return job;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "job {id} did not end within {limit:?}: {job:?}"
        );
        tokio::time::sleep(poll).await;
    }
}

/// Every test server provisions the same machine: one at a time, so a first provisioning's
/// service restarts (MariaDB, PHP-FPM) never hit another test's running job.
static PROVISIONING: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// Registers the loopback test node (its host key pinned on first contact) and provisions
/// it with the server's node_provision playbook.
pub async fn active_test_node(c: &mut Clients) -> pb::Node {
    let _one_at_a_time = PROVISIONING.lock().await;
    provision_test_node(c).await
}

async fn register_test_node(c: &mut Clients) -> pb::Node {
    let bed = testbed();
    c.nodes
        .create_node(pb::CreateNodeRequest {
            name: "testbed".into(),
            hostname: "127.0.0.1".into(),
            ssh_port: u32::from(bed.ssh_port),
            is_local: true,
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner()
        .node
        .unwrap()
}

async fn provision_test_node(c: &mut Clients) -> pb::Node {
    let node = register_test_node(c).await;
    let job = c
        .nodes
        .provision_node(pb::ProvisionNodeRequest {
            node_id: node.id.clone(),
            expected_version: 0,
        })
        .await
        .unwrap()
        .into_inner()
        .job
        .unwrap();
    let job = wait_job(c, &job.id).await;
    assert_eq!(
        job.status,
        pb::JobStatus::Succeeded as i32,
        "provisioning the test node: {job:?}"
    );
    active(c, node.id).await
}

async fn active(c: &mut Clients, node_id: String) -> pb::Node {
    let node = c
        .nodes
        .get_node(pb::GetNodeRequest { node_id })
        .await
        .unwrap()
        .into_inner()
        .node
        .unwrap();
    assert_eq!(node.status, pb::NodeStatus::Active as i32);
    assert_eq!(node.php_versions, vec!["8.2".to_owned()]);
    node
}

/// Deletes a site through the API and waits for its site_delete job to succeed.
pub async fn delete_site_and_wait(c: &mut Clients, site_id: &str) {
    let job = c
        .sites
        .delete_site(pb::DeleteSiteRequest {
            site_id: site_id.into(),
            expected_version: 0,
        })
        .await
        .unwrap()
        .into_inner()
        .job
        .unwrap();
    let job = wait_job(c, &job.id).await;
    assert_eq!(
        job.status,
        pb::JobStatus::Succeeded as i32,
        "deleting site {site_id}: {job:?}"
    );
}

/// Creates a site whose test playbook behaves as `mode` (see tests/playbooks/site_create.yml).
pub async fn create_site_mode(
    c: &mut Clients,
    node: &pb::Node,
    slug: &str,
    mode: &str,
) -> pb::CreateSiteResponse {
    c.sites
        .create_site(pb::CreateSiteRequest {
            name: format!("Site {slug}"),
            slug: slug.into(),
            node_id: node.id.clone(),
            title: mode.into(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner()
}

/// Process ids whose environment marks them as part of `job`'s playbook run.
pub fn processes_of_job(job: &str) -> Vec<u32> {
    let marker = format!("PRESSLUFT_JOB_ID={job}");
    let mut pids = Vec::new();
    for entry in std::fs::read_dir("/proc").unwrap().flatten() {
        let Ok(pid) = entry.file_name().to_string_lossy().parse::<u32>() else {
            continue;
        };
        if let Ok(env) = std::fs::read(entry.path().join("environ"))
            && env.split(|b| *b == 0).any(|kv| kv == marker.as_bytes())
        {
            pids.push(pid);
        }
    }
    pids
}

/// A test host key in OpenSSH format (valid; never contacted).
pub fn some_host_key() -> String {
    let key = russh::keys::PrivateKey::from(
        russh::keys::ssh_key::private::Ed25519Keypair::from_seed(&[7; 32]),
    );
    key.public_key().to_openssh().unwrap()
}

/// Registers a node without contacting it (host key given).
pub async fn create_node(c: &mut Clients, name: &str) -> pb::Node {
    c.nodes
        .create_node(pb::CreateNodeRequest {
            name: name.into(),
            hostname: "127.0.0.1".into(),
            ssh_port: 22,
            host_key: some_host_key(),
            is_local: true,
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner()
        .node
        .unwrap()
}

/// Creates a site on `node`.
pub async fn create_site(c: &mut Clients, node: &pb::Node, slug: &str) -> pb::CreateSiteResponse {
    c.sites
        .create_site(pb::CreateSiteRequest {
            name: format!("Site {slug}"),
            slug: slug.into(),
            node_id: node.id.clone(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner()
}

/// The ErrorInfo reason of a status.
pub fn reason(status: &tonic::Status) -> String {
    use tonic_types::StatusExt as _;
    status
        .get_details_error_info()
        .map(|i| i.reason)
        .unwrap_or_default()
}

/// Every method of the contract as `/package.Service/Method`, with its input type name and
/// whether it streams from the client.
pub struct Method {
    pub path: String,
    pub input: String,
    pub client_streaming: bool,
}

pub fn contract_methods() -> (Vec<Method>, prost_types::FileDescriptorSet) {
    let fds = prost_types::FileDescriptorSet::decode(pressluft_proto::FILE_DESCRIPTOR_SET).unwrap();
    let mut methods = Vec::new();
    for file in &fds.file {
        for service in &file.service {
            for m in &service.method {
                methods.push(Method {
                    path: format!("/{}.{}/{}", file.package(), service.name(), m.name()),
                    input: m.input_type().trim_start_matches('.').to_owned(),
                    client_streaming: m.client_streaming(),
                });
            }
        }
    }
    (methods, fds)
}

/// Encodes a message of type `name` with every scalar field set to a hostile value: strings
/// full of shell and path tricks, numbers negative or huge, enums out of range. Nested
/// messages are left unset.
pub fn hostile_message(
    fds: &prost_types::FileDescriptorSet,
    name: &str,
    variant: usize,
) -> Vec<u8> {
    use prost_types::field_descriptor_proto::Type;
    let (package, short) = name.rsplit_once('.').unwrap();
    let message = fds
        .file
        .iter()
        .filter(|f| f.package() == package)
        .flat_map(|f| &f.message_type)
        .find(|m| m.name() == short)
        .unwrap_or_else(|| panic!("message {name} not in the contract"));
    const STRINGS: [&str; 4] = [
        "../../etc/passwd",
        "$(reboot); rm -rf / `id` 'quote\" \n\0",
        "\u{202e}ünïcødé-ÿ-\u{1F600}",
        "0192f0c4-7d55-7c3e-9d59-111111111111",
    ];
    let mut out = Vec::new();
    for field in &message.field {
        let number = field.number() as u64;
        match field.r#type() {
            Type::String | Type::Bytes => {
                let value = if variant == 4 {
                    "x".repeat(70_000)
                } else {
                    STRINGS[variant % 4].to_owned()
                };
                prost::encoding::encode_key(
                    number as u32,
                    prost::encoding::WireType::LengthDelimited,
                    &mut out,
                );
                prost::encoding::encode_varint(value.len() as u64, &mut out);
                out.extend_from_slice(value.as_bytes());
            }
            Type::Int32 | Type::Int64 | Type::Uint32 | Type::Uint64 | Type::Bool | Type::Enum => {
                let value: u64 = match variant % 3 {
                    0 => u64::MAX,    // -1 as int64
                    1 => 0x7fff_ffff, // a huge positive value
                    _ => 1,
                };
                prost::encoding::encode_key(
                    number as u32,
                    prost::encoding::WireType::Varint,
                    &mut out,
                );
                prost::encoding::encode_varint(value, &mut out);
            }
            _ => {}
        }
    }
    out
}

/// Sends one raw gRPC request (`message` already encoded) and returns the grpc-status code.
pub async fn raw_call(
    channel: &Channel,
    path: &str,
    token: Option<&str>,
    message: &[u8],
) -> tonic::Code {
    use tower::ServiceExt as _;
    let mut body = vec![0u8];
    body.extend_from_slice(&(message.len() as u32).to_be_bytes());
    body.extend_from_slice(message);
    let mut request = http::Request::builder()
        .method("POST")
        .uri(format!("http://localhost{path}"))
        .header("content-type", "application/grpc")
        .header("te", "trailers");
    if let Some(t) = token {
        request = request.header("authorization", format!("Bearer {t}"));
    }
    let request = request
        .body(tonic::body::Body::new(http_body_util::Full::new(
            bytes::Bytes::from(body),
        )))
        .unwrap();
    let response = channel.clone().oneshot(request).await.unwrap();
    if let Some(code) = response.headers().get("grpc-status") {
        return tonic::Code::from_bytes(code.as_bytes());
    }
    // A trailers-after-data response: read the body to its trailers (streams end on their own
    // for errors; for successful streams the first message is enough to say OK).
    use http_body_util::BodyExt as _;
    let mut body = response.into_body();
    loop {
        match tokio::time::timeout(std::time::Duration::from_secs(1), body.frame()).await {
            Err(_) => return tonic::Code::Ok, // a live stream that is still open: it answered
            Ok(None) => return tonic::Code::Ok,
            Ok(Some(frame)) => {
                let frame = frame.unwrap();
                if let Some(trailers) = frame.trailers_ref() {
                    return trailers
                        .get("grpc-status")
                        .map_or(tonic::Code::Unknown, |c| {
                            tonic::Code::from_bytes(c.as_bytes())
                        });
                }
            }
        }
    }
}

/// An SSH server on 127.0.0.1 that presents `key` and authenticates nobody.
pub struct SshServer {
    pub port: u16,
    pub host_key: String,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for SshServer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

#[derive(Clone)]
struct NoAuth;

impl russh::server::Handler for NoAuth {
    type Error = russh::Error;
}

impl russh::server::Server for NoAuth {
    type Handler = Self;
    fn new_client(&mut self, _: Option<SocketAddr>) -> Self {
        self.clone()
    }
}

pub async fn ssh_server(seed: u8) -> SshServer {
    use russh::server::Server as _;
    let key = russh::keys::PrivateKey::from(
        russh::keys::ssh_key::private::Ed25519Keypair::from_seed(&[seed; 32]),
    );
    let host_key = key.public_key().to_openssh().unwrap();
    let config = Arc::new(russh::server::Config {
        keys: vec![key],
        ..Default::default()
    });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let task = tokio::spawn(async move {
        let _ = NoAuth.run_on_socket(config, &listener).await;
    });
    SshServer {
        port,
        host_key,
        task,
    }
}

/// The test S3 server (SeaweedFS from scripts/testbed.sh): a SetBackupTarget request for
/// `bucket`, which is created first. Fails loudly when the server is not configured.
pub fn s3_target(bucket: &str, prefix: &str) -> pb::SetBackupTargetRequest {
    let how = "run the suite with scripts/test.sh, which starts the test S3 server";
    let endpoint = std::env::var("PRESSLUFT_TEST_S3_ENDPOINT")
        .unwrap_or_else(|_| panic!("PRESSLUFT_TEST_S3_ENDPOINT is not set: {how}"));
    let access = std::env::var("PRESSLUFT_TEST_S3_ACCESS_KEY")
        .unwrap_or_else(|_| panic!("PRESSLUFT_TEST_S3_ACCESS_KEY is not set: {how}"));
    let secret_file = std::env::var("PRESSLUFT_TEST_S3_SECRET_FILE")
        .unwrap_or_else(|_| panic!("PRESSLUFT_TEST_S3_SECRET_FILE is not set: {how}"));
    let secret = std::fs::read_to_string(secret_file)
        .unwrap()
        .trim()
        .to_owned();
    let out = s3_rclone(
        &endpoint,
        &access,
        &secret,
        &["mkdir", &format!("t:{bucket}")],
    );
    assert!(
        out.status.success(),
        "creating bucket {bucket}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    pb::SetBackupTargetRequest {
        expected_version: 0,
        endpoint,
        bucket: bucket.into(),
        region: String::new(),
        path_prefix: prefix.into(),
        access_key_id: access,
        secret_access_key: secret,
    }
}

/// Runs rclone against the test S3 server with the remote `t:`.
pub fn s3_rclone(
    endpoint: &str,
    access: &str,
    secret: &str,
    args: &[&str],
) -> std::process::Output {
    std::process::Command::new("rclone")
        .args(args)
        .env_remove("AWS_CA_BUNDLE")
        .env("RCLONE_CONFIG_T_TYPE", "s3")
        .env("RCLONE_CONFIG_T_PROVIDER", "Other")
        .env("RCLONE_CONFIG_T_ENDPOINT", endpoint)
        .env("RCLONE_CONFIG_T_ACCESS_KEY_ID", access)
        .env("RCLONE_CONFIG_T_SECRET_ACCESS_KEY", secret)
        .env("RCLONE_CONFIG_T_FORCE_PATH_STYLE", "true")
        .output()
        .unwrap()
}

/// Runs curl with `args` (which should dump the response headers to stdout with `-D -`) and
/// returns the status of the first response line and everything curl printed.
pub fn curl(args: &[&str]) -> (u16, String) {
    let out = std::process::Command::new("curl")
        .args(args)
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout).to_string();
    (status_of(&text), text)
}

/// The status code of an HTTP response's first line (0 when there was no response).
pub fn status_of(response: &str) -> u16 {
    response
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0)
}

/// Every object key in the target's bucket, one a line.
pub fn bucket_listing(target: &pb::SetBackupTargetRequest) -> String {
    let out = s3_rclone(
        &target.endpoint,
        &target.access_key_id,
        &target.secret_access_key,
        &["lsf", "-R", &format!("t:{}", target.bucket)],
    );
    assert!(out.status.success(), "{out:?}");
    String::from_utf8(out.stdout).unwrap()
}

/// The server binary as a child process on a data directory of its own, for crash tests: it can
/// be killed with SIGKILL (no shutdown path runs) and started again on the same data.
pub struct ServerProcess {
    data: PathBuf,
    port: u16,
    envs: Vec<(String, String)>,
    child: Option<std::process::Child>,
    pub token: String,
}

impl ServerProcess {
    /// Prepares `data` (the test node's SSH key installed, `config_toml` as the configuration
    /// file, `envs` for every start) and creates an API token with the admin CLI.
    pub fn new(data: &std::path::Path, config_toml: &str, envs: &[(&str, &str)]) -> Self {
        install_key(&data.join("secrets"), &testbed().key);
        // Top-level keys first: the given text may open tables.
        let config = format!(
            "allow_private_networks = true\nhealth_check_timeout_secs = {}\n{config_toml}",
            health_check_timeout().as_secs()
        );
        std::fs::write(data.join("server.toml"), config).unwrap();
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let mut process = Self {
            data: data.to_owned(),
            port,
            envs: envs
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                .collect(),
            child: None,
            token: String::new(),
        };
        let out = process
            .command()
            .args(["admin", "create-token", "--name", "t"])
            .stdout(std::process::Stdio::piped())
            .output()
            .unwrap();
        assert!(out.status.success(), "{out:?}");
        String::from_utf8(out.stdout)
            .unwrap()
            .lines()
            .last()
            .unwrap()
            .clone_into(&mut process.token);
        process
    }

    fn command(&self) -> std::process::Command {
        let mut cmd = std::process::Command::new(server_binary());
        cmd.env("PRESSLUFT_DATA_DIR", &self.data)
            .env("PRESSLUFT_LISTEN_ADDR", format!("127.0.0.1:{}", self.port))
            .env("PRESSLUFT_SERVER_CONFIG", self.data.join("server.toml"))
            .envs(self.envs.iter().map(|(k, v)| (k, v)))
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null());
        cmd
    }

    /// Starts the server and returns clients once it answers.
    pub async fn start(&mut self) -> Clients {
        assert!(self.child.is_none(), "the server is running already");
        self.child = Some(self.command().spawn().unwrap());
        let url = format!("http://127.0.0.1:{}", self.port);
        let channel = pressluft_testkit::until(
            "the server process to accept connections",
            pressluft_testkit::limit::START,
            || async {
                Channel::from_shared(url.clone())
                    .unwrap()
                    .connect()
                    .await
                    .ok()
            },
        )
        .await;
        Clients::over(channel, Some(self.token.clone()))
    }

    /// SIGKILL: the process ends without running any shutdown path.
    pub fn kill9(&mut self) {
        let mut child = self.child.take().expect("the server is running");
        child.kill().unwrap();
        child.wait().unwrap();
    }
}

impl Drop for ServerProcess {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = std::process::Command::new("kill")
                .args(["-TERM", &child.id().to_string()])
                .status();
            let _ = child.wait();
        }
    }
}
