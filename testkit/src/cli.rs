//! Shared fixtures: the real `pressluft-server` binary on a free loopback port with a temp
//! data dir, the real `pressluft` binary run with a scrubbed environment, and a normaliser
//! that turns ids and timestamps into placeholders for golden outputs.
//!
//! Jobs run for real against the loopback test node of `scripts/testbed.sh`: [`TestNode`]
//! finds it, [`Playbooks`] holds the test's own playbooks next to the repository's
//! `ansible.cfg` and callback plugin, and [`Server::start_with_jobs`] gives the server the
//! test key as its SSH key.
//!
//! Used by the CLI's and the TUI's tests (formerly included by path from the CLI's tests).

// Fixtures for tests: builders without Default, panics as failures.
#![allow(
    clippy::new_without_default,
    clippy::return_self_not_must_use,
    clippy::must_use_candidate,
    clippy::missing_panics_doc
)]

use std::collections::HashMap;
use std::fmt::{self, Write as _};
use std::fs::File;
use std::io::Write as _;
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdout, Command, Stdio};
use std::sync::OnceLock;
use std::sync::mpsc;
use std::time::{Duration, Instant};

use serde_json::Value;

/// A valid ed25519 host key to pin, so nodes register without any SSH connection.
/// Its fingerprint is `SHA256:QNzri0Kx8K4zInPIWp3h+97Mtue5VmuITLCm316OPcQ` (`ssh-keygen -l`).
pub const HOST_KEY: &str =
    "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIGWf6sZkF2kcJ9xKJ2fB0z3gMHfVY3ZCxpJHKZt1U9cB";

/// A password the server accepts (at least 12 characters).
pub const PASSWORD: &str = "correct horse battery staple";

/// How long the server may take to accept connections (scaled by the test patience).
fn start_timeout() -> Duration {
    crate::scaled(crate::limit::START)
}

/// What the server logs once its database is open and it serves requests.
const READY_LINE: &str = "pressluft-server listening";

/// Writes the server configuration every test server gets, then `extra` (which may open
/// tables: top-level keys come first): the suite's services on loopback are allowed as
/// backup endpoints, and the playbooks' HTTP checks get the suite's patience.
fn write_test_config(dir: &Path, extra: &str) -> PathBuf {
    let config = format!(
        "allow_private_networks = true\nhealth_check_timeout_secs = {}\n{extra}",
        crate::scaled(Duration::from_secs(30)).as_secs(),
    );
    let file = dir.join("server.toml");
    std::fs::write(&file, config).expect("write the server config");
    file
}

/// The `pressluft` binary: the one Cargo built for these tests, or (from another crate's
/// tests, which share this module) the one in the same target directory.
pub fn cli_binary() -> PathBuf {
    option_env!("CARGO_BIN_EXE_pressluft").map_or_else(|| target_binary("pressluft"), PathBuf::from)
}

/// A workspace binary in the target directory of the running test (`target/<profile>/`).
pub fn target_binary(name: &str) -> PathBuf {
    let exe = std::env::current_exe().expect("the test binary's path");
    // target/<profile>/deps/<test> -> target/<profile>/<name>
    let dir = exe
        .parent()
        .and_then(Path::parent)
        .expect("the target directory");
    let path = dir.join(format!("{name}{}", std::env::consts::EXE_SUFFIX));
    assert!(
        path.is_file(),
        "{} does not exist: run `cargo build --workspace --bins` first",
        path.display()
    );
    path
}

/// The `pressluft-server` binary next to it in the target directory. Cargo only builds it
/// for `cargo build --workspace` / `cargo test --workspace` (not for `--test cli` alone), so
/// it is checked once per run to exist and to be newer than its sources.
pub fn server_binary() -> &'static Path {
    static CHECKED: OnceLock<PathBuf> = OnceLock::new();
    CHECKED.get_or_init(|| {
        let path = cli_binary()
            .with_file_name(format!("pressluft-server{}", std::env::consts::EXE_SUFFIX));
        assert!(
            path.is_file(),
            "{} does not exist: run `cargo build --workspace` first (these tests run the real \
             server)",
            path.display()
        );
        if let Some(source) = stale_source(&path) {
            panic!(
                "{} changed after {} was built: run `cargo build --workspace` first",
                source.display(),
                path.display()
            );
        }
        path
    })
}

/// A source file the binary was built from (as listed in Cargo's dep-info file next to it)
/// that changed after the build, if any: the tests would silently run an old server.
fn stale_source(binary: &Path) -> Option<PathBuf> {
    let dep_info = std::fs::read_to_string(binary.with_extension("d")).ok()?;
    let built = std::fs::metadata(binary)
        .and_then(|meta| meta.modified())
        .ok()?;
    let (_, sources) = dep_info.lines().next()?.split_once(": ")?;
    // Paths are separated by spaces; a space inside a path is escaped as `\ `.
    let sources = sources.replace("\\ ", "\0");
    sources
        .split_whitespace()
        .map(|source| PathBuf::from(source.replace('\0', " ")))
        // A source that no longer exists makes Cargo rebuild too; it is not stale here.
        .find(|source| {
            std::fs::metadata(source)
                .and_then(|meta| meta.modified())
                .is_ok_and(|changed| changed > built)
        })
}

use crate::ports;
pub use ports::machine_public_ports;

/// Creates `bucket` on the test S3 server (rclone, as the server tests do).
pub fn create_bucket(endpoint: &str, key_id: &str, secret_file: &str, bucket: &str) {
    let secret = std::fs::read_to_string(secret_file)
        .unwrap_or_else(|err| panic!("{secret_file}: {err}"))
        .trim()
        .to_owned();
    let out = Command::new("rclone")
        .args(["mkdir", &format!("t:{bucket}")])
        .env_remove("AWS_CA_BUNDLE")
        .env("RCLONE_CONFIG_T_TYPE", "s3")
        .env("RCLONE_CONFIG_T_PROVIDER", "Other")
        .env("RCLONE_CONFIG_T_ENDPOINT", endpoint)
        .env("RCLONE_CONFIG_T_ACCESS_KEY_ID", key_id)
        .env("RCLONE_CONFIG_T_SECRET_ACCESS_KEY", secret)
        .env("RCLONE_CONFIG_T_FORCE_PATH_STYLE", "true")
        .output()
        .expect("run rclone");
    assert!(
        out.status.success(),
        "creating bucket {bucket}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A loopback port nothing listens on right now (bound, then released).
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|listener| listener.local_addr())
        .expect("bind 127.0.0.1:0")
        .port()
}

/// A running `pressluft-server` process; killed when dropped, so a failing test leaks no
/// process.
pub struct Server {
    child: Child,
    /// `http://127.0.0.1:<port>`.
    pub url: String,
    dir: tempfile::TempDir,
}

impl Server {
    /// Starts the server on a free port with an empty data dir and waits until it accepts
    /// connections (up to 10 s). Its job engine runs, but finds no playbooks.
    pub fn start() -> Server {
        Server::spawn(tempfile::tempdir().expect("temp dir"), Vec::new())
    }

    /// Starts a server that runs jobs on `node` with `playbooks`: the test key is its SSH
    /// key, and `config` (TOML, e.g. `[jobs]` settings) its config file when given.
    pub fn start_with_jobs(playbooks: &Playbooks, node: &TestNode, config: Option<&str>) -> Server {
        Server::start_with_playbooks_dir(playbooks.path(), node, config)
    }

    /// Like [`Server::start_with_jobs`] with the repository's own playbooks: jobs do the real
    /// work on the loopback node (WordPress from the machine's Debian package).
    pub fn start_real(node: &TestNode, config: &str) -> Server {
        let repo = Path::new(env!("CARGO_MANIFEST_DIR")).join("../playbooks");
        let playbooks = repo.canonicalize().expect("the repository's playbooks");
        Server::start_with_playbooks_dir(&playbooks, node, Some(config))
    }

    fn start_with_playbooks_dir(playbooks: &Path, node: &TestNode, config: Option<&str>) -> Server {
        let dir = tempfile::tempdir().expect("temp dir");
        let secrets = dir.path().join("data/secrets");
        private_dir(&secrets);
        copy_private(&node.key, &secrets.join("id_ed25519"));
        let mut public = node.key.clone().into_os_string();
        public.push(".pub");
        std::fs::copy(&public, secrets.join("id_ed25519.pub"))
            .unwrap_or_else(|err| panic!("copy {}: {err}", Path::new(&public).display()));
        let mut env = vec![
            ("PRESSLUFT_PLAYBOOKS_DIR", playbooks.as_os_str().to_owned()),
            // Ansible inherits it: no __pycache__ in the repository's callback_plugins.
            ("PYTHONDONTWRITEBYTECODE", "1".into()),
        ];
        let file = write_test_config(dir.path(), config.unwrap_or_default());
        env.push(("PRESSLUFT_SERVER_CONFIG", file.into_os_string()));
        Server::spawn(dir, env)
    }

    /// Starts a server on a free port that serves TLS with `cert` and `key` (PEM); its URL
    /// is `https://localhost:<port>`.
    pub fn start_tls(cert: &Path, key: &Path) -> Server {
        let mut server = Server::spawn(
            tempfile::tempdir().expect("temp dir"),
            vec![
                ("PRESSLUFT_TLS_CERT_FILE", cert.as_os_str().to_owned()),
                ("PRESSLUFT_TLS_KEY_FILE", key.as_os_str().to_owned()),
            ],
        );
        server.url = server.url.replace("http://127.0.0.1", "https://localhost");
        server
    }

    fn spawn(dir: tempfile::TempDir, mut env: Vec<(&'static str, std::ffi::OsString)>) -> Server {
        if !env.iter().any(|(k, _)| *k == "PRESSLUFT_SERVER_CONFIG") {
            let file = write_test_config(dir.path(), "");
            env.push(("PRESSLUFT_SERVER_CONFIG", file.into_os_string()));
        }
        let addr = SocketAddr::from(([127, 0, 0, 1], free_port()));
        let log = File::create(dir.path().join("server.log")).expect("log file");
        let child = Command::new(server_binary())
            .env_clear()
            .envs(base_env(dir.path()))
            .env("PRESSLUFT_DATA_DIR", dir.path().join("data"))
            .env("PRESSLUFT_LISTEN_ADDR", addr.to_string())
            .envs(env)
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("log file"))
            .stderr(log)
            .spawn()
            .expect("spawn pressluft-server");
        let mut server = Server {
            child,
            url: format!("http://{addr}"),
            dir,
        };
        server.wait_until_listening(addr);
        server
    }

    fn wait_until_listening(&mut self, addr: SocketAddr) {
        let start_timeout = start_timeout();
        let deadline = Instant::now() + start_timeout;
        loop {
            if let Some(status) = self.child.try_wait().expect("poll pressluft-server") {
                panic!(
                    "pressluft-server exited with {status} before listening; its log:\n{}",
                    self.log()
                );
            }
            // The port accepts connections as soon as it is bound, before the database is
            // migrated; the log line comes after, when the server really serves. (An admin
            // command racing the start-up migrations fails with "table users already exists".)
            if self.log().contains(READY_LINE)
                && TcpStream::connect_timeout(&addr, Duration::from_millis(200)).is_ok()
            {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "pressluft-server did not listen on {addr} within {start_timeout:?}; its log:\n{}",
                self.log()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// What the server wrote to stdout and stderr so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("server.log")).unwrap_or_default()
    }

    /// Runs `pressluft-server admin <args>` on this server's data dir (safe while it runs).
    pub fn admin(&self, args: &[&str], stdin: &str) -> Output {
        let mut command = Command::new(server_binary());
        command
            .env_clear()
            .envs(base_env(self.dir.path()))
            .env("PRESSLUFT_DATA_DIR", self.dir.path().join("data"))
            .arg("admin")
            .args(args);
        let output = Output::of(command, stdin, format!("pressluft-server admin {args:?}"));
        output.success();
        output
    }

    /// Creates a user who can log in with [`PASSWORD`].
    pub fn create_user(&self, email: &str) {
        self.admin(
            &["create-user", "--email", email, "--password-stdin"],
            &format!("{PASSWORD}\n"),
        );
    }

    /// Creates an API token (for the first user, or a new `admin@localhost`) and returns it.
    pub fn create_token(&self, name: &str) -> String {
        let output = self.admin(&["create-token", "--name", name], "");
        let token = output.stdout.lines().last().unwrap_or_default().trim();
        assert!(!token.is_empty(), "no token printed: {output}");
        token.to_owned()
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Creates `path` (and its parents) with mode 0700.
fn private_dir(path: &Path) {
    use std::os::unix::fs::{DirBuilderExt as _, PermissionsExt as _};
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(path)
        .unwrap_or_else(|err| panic!("create {}: {err}", path.display()));
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o700))
        .unwrap_or_else(|err| panic!("chmod {}: {err}", path.display()));
}

/// Copies `from` to `to` with mode 0600.
fn copy_private(from: &Path, to: &Path) {
    use std::os::unix::fs::OpenOptionsExt as _;
    let bytes = std::fs::read(from).unwrap_or_else(|err| panic!("read {}: {err}", from.display()));
    std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(to)
        .and_then(|mut file| file.write_all(&bytes))
        .unwrap_or_else(|err| panic!("write {}: {err}", to.display()));
}

/// The loopback test node of `scripts/testbed.sh`: an sshd on 127.0.0.1 that lets the test
/// key in as root, and `ansible-playbook` on PATH.
pub struct TestNode {
    /// The sshd's port.
    pub port: u16,
    /// The private key it accepts (the public key is next to it, `.pub`).
    pub key: PathBuf,
}

impl TestNode {
    /// Reads PRESSLUFT_TEST_SSH_PORT and PRESSLUFT_TEST_KEY and checks `ansible-playbook` is
    /// on PATH. Panics (never skips) when the test bed is missing.
    pub fn from_env() -> TestNode {
        const HOW: &str = "run the suite with scripts/test.sh, or first \
                           `source <(scripts/testbed.sh)` (as root) to set up the loopback \
                           test node and Ansible";
        let var = |name: &str| {
            std::env::var(name)
                .ok()
                .filter(|value| !value.is_empty())
                .unwrap_or_else(|| panic!("{name} is not set: {HOW}"))
        };
        let port = var("PRESSLUFT_TEST_SSH_PORT")
            .parse()
            .unwrap_or_else(|err| panic!("PRESSLUFT_TEST_SSH_PORT is not a port ({err}): {HOW}"));
        let key = PathBuf::from(var("PRESSLUFT_TEST_KEY"));
        assert!(key.is_file(), "{} does not exist: {HOW}", key.display());
        let on_path = std::env::var_os("PATH").is_some_and(|path| {
            std::env::split_paths(&path).any(|dir| dir.join("ansible-playbook").is_file())
        });
        assert!(on_path, "ansible-playbook is not on PATH: {HOW}");
        TestNode { port, key }
    }
}

/// A playbooks directory for one test: symlinks to the repository's `ansible.cfg` and
/// `callback_plugins`, plus the playbooks the test writes.
pub struct Playbooks {
    dir: tempfile::TempDir,
}

impl Playbooks {
    /// A directory holding `files` (name, contents), e.g. `("node_provision.yml", "...")`.
    pub fn new(files: &[(&str, &str)]) -> Playbooks {
        let repo = Path::new(env!("CARGO_MANIFEST_DIR")).join("../playbooks");
        let dir = tempfile::tempdir().expect("temp dir");
        for name in ["ansible.cfg", "callback_plugins"] {
            let target = repo
                .join(name)
                .canonicalize()
                .unwrap_or_else(|err| panic!("{}: {err}", repo.join(name).display()));
            std::os::unix::fs::symlink(&target, dir.path().join(name))
                .unwrap_or_else(|err| panic!("symlink {}: {err}", target.display()));
        }
        for (name, contents) in files {
            std::fs::write(dir.path().join(name), contents)
                .unwrap_or_else(|err| panic!("write {name}: {err}"));
        }
        Playbooks { dir }
    }

    /// The directory.
    pub fn path(&self) -> &Path {
        self.dir.path()
    }
}

/// The only variables a child process inherits: PATH, and HOME in a temp dir, so the
/// developer's real config is never read or written.
fn base_env(home: &Path) -> Vec<(&'static str, std::ffi::OsString)> {
    let mut env = vec![("HOME", home.as_os_str().to_owned())];
    if let Some(path) = std::env::var_os("PATH") {
        env.push(("PATH", path));
    }
    env
}

/// Runs the `pressluft` binary with a cleared environment: PATH, HOME and PRESSLUFT_CONFIG
/// in its own temp dir, plus the variables a test sets.
pub struct Cli {
    home: tempfile::TempDir,
    env: Vec<(String, String)>,
}

impl Cli {
    /// A CLI with its own empty home; no server or token set.
    pub fn new() -> Cli {
        Cli {
            home: tempfile::tempdir().expect("temp dir"),
            env: Vec::new(),
        }
    }

    /// A CLI that reaches `server` with `token` through PRESSLUFT_SERVER / PRESSLUFT_TOKEN.
    pub fn with_token(server: &Server, token: &str) -> Cli {
        Cli::new()
            .env("PRESSLUFT_SERVER", &server.url)
            .env("PRESSLUFT_TOKEN", token)
    }

    /// Sets an environment variable for every run.
    pub fn env(mut self, name: &str, value: &str) -> Cli {
        self.env.push((name.to_owned(), value.to_owned()));
        self
    }

    /// Its home directory.
    pub fn home(&self) -> &Path {
        self.home.path()
    }

    /// The config file (PRESSLUFT_CONFIG), in a directory that does not exist until the CLI
    /// writes it.
    pub fn config_path(&self) -> PathBuf {
        self.home.path().join(".config/pressluft/config.toml")
    }

    /// Runs `pressluft <args>` with empty stdin.
    pub fn run(&self, args: &[&str]) -> Output {
        self.run_stdin(args, "")
    }

    /// Runs `pressluft <args>` with `stdin` as its standard input.
    pub fn run_stdin(&self, args: &[&str], stdin: &str) -> Output {
        Output::of(
            self.command(args),
            stdin,
            format!("pressluft {}", args.join(" ")),
        )
    }

    /// Starts `pressluft <args>` (stdin empty) and returns at once, to read its output as it
    /// comes and to interrupt it.
    pub fn start(&self, args: &[&str]) -> Running {
        let description = format!("pressluft {}", args.join(" "));
        let mut child = self
            .command(args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|err| panic!("cannot run {description}: {err}"));
        let stdout = child.stdout.take().expect("piped stdout");
        let (tx, lines) = mpsc::channel();
        let reader = std::thread::spawn(move || read_lines(stdout, &tx));
        Running {
            child,
            lines,
            reader: Some(reader),
            seen: String::new(),
            description,
        }
    }

    fn command(&self, args: &[&str]) -> Command {
        let mut command = Command::new(cli_binary());
        command
            .env_clear()
            .envs(base_env(self.home.path()))
            .env("PRESSLUFT_CONFIG", self.config_path())
            .envs(self.env.iter().map(|(name, value)| (name, value)))
            .args(args);
        command
    }
}

/// Sends each line of `stdout` (with its newline) until it closes; returns nothing.
fn read_lines(stdout: ChildStdout, tx: &mpsc::Sender<String>) {
    use std::io::BufRead as _;
    let mut reader = std::io::BufReader::new(stdout);
    loop {
        let mut line = String::new();
        match reader.read_line(&mut line) {
            Ok(0) | Err(_) => return,
            Ok(_) => {
                if tx.send(line).is_err() {
                    return;
                }
            }
        }
    }
}

/// How long a running CLI may take to print an expected line (scaled by the test patience).
fn line_timeout() -> Duration {
    crate::scaled(crate::limit::STEP)
}

/// A `pressluft` process still running; killed if dropped before [`Running::wait`].
pub struct Running {
    child: Child,
    lines: mpsc::Receiver<String>,
    reader: Option<std::thread::JoinHandle<()>>,
    /// Everything read from stdout so far.
    seen: String,
    description: String,
}

impl Running {
    /// Reads stdout until a line equal to `line` (without its newline) arrived.
    pub fn wait_for_line(&mut self, line: &str) {
        let line_timeout = line_timeout();
        let deadline = Instant::now() + line_timeout;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.lines.recv_timeout(left) {
                Ok(next) => {
                    self.seen.push_str(&next);
                    if next.trim_end_matches('\n') == line {
                        return;
                    }
                }
                Err(err) => panic!(
                    "`{}` did not print {line:?} within {line_timeout:?} ({err}); stdout so \
                     far:\n{}",
                    self.description, self.seen
                ),
            }
        }
    }

    /// Sends SIGINT, as Ctrl-C in a terminal does.
    pub fn interrupt(&self) {
        let status = Command::new("kill")
            .args(["-INT", &self.child.id().to_string()])
            .status()
            .expect("run kill");
        assert!(status.success(), "kill -INT failed: {status}");
    }

    /// Waits for the exit and returns the whole output.
    pub fn wait(mut self) -> Output {
        let status = self.child.wait().expect("wait for the process");
        let mut stderr = String::new();
        std::io::Read::read_to_string(
            self.child.stderr.as_mut().expect("piped stderr"),
            &mut stderr,
        )
        .expect("UTF-8 stderr");
        if let Some(reader) = self.reader.take() {
            reader.join().expect("stdout reader");
        }
        let mut stdout = std::mem::take(&mut self.seen);
        stdout.extend(self.lines.try_iter());
        Output {
            code: status
                .code()
                .unwrap_or_else(|| panic!("{} was killed: {status}", self.description)),
            stdout,
            stderr,
            command: std::mem::take(&mut self.description),
        }
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A finished process: exit code and output.
pub struct Output {
    /// What was run, for failure messages.
    pub command: String,
    /// The exit code.
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

impl Output {
    fn of(mut command: Command, stdin: &str, description: String) -> Output {
        let mut child = command
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|err| panic!("cannot run {description}: {err}"));
        child
            .stdin
            .take()
            .expect("piped stdin")
            .write_all(stdin.as_bytes())
            .expect("write stdin");
        let output = child.wait_with_output().expect("wait for the process");
        Output {
            code: output
                .status
                .code()
                .unwrap_or_else(|| panic!("{description} was killed: {}", output.status)),
            stdout: String::from_utf8(output.stdout).expect("UTF-8 stdout"),
            stderr: String::from_utf8(output.stderr).expect("UTF-8 stderr"),
            command: description,
        }
    }

    /// Asserts exit code 0 and returns stdout.
    pub fn success(&self) -> &str {
        assert_eq!(self.code, 0, "{self}");
        &self.stdout
    }

    /// Asserts `code`, an empty stdout and a stderr whose first line is `error: ...`;
    /// returns stderr.
    pub fn failure(&self, code: i32) -> &str {
        assert_eq!(self.code, code, "{self}");
        assert_eq!(self.stdout, "", "{self}");
        assert!(self.stderr.starts_with("error: "), "{self}");
        &self.stderr
    }

    /// Asserts success and parses stdout as JSON.
    pub fn json(&self) -> Value {
        serde_json::from_str(self.success())
            .unwrap_or_else(|err| panic!("stdout is not JSON ({err}): {self}"))
    }
}

impl fmt::Display for Output {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "`{}` exited with {}\n--- stdout\n{}--- stderr\n{}---",
            self.command, self.code, self.stdout, self.stderr
        )
    }
}

/// Makes outputs comparable with golden text: each distinct UUID becomes `<id1>`, `<id2>`,
/// ... in order of first appearance (so equal ids stay visibly equal), RFC 3339 UTC
/// timestamps become `<time>`, and given literals (the server URL) their placeholder.
#[derive(Default)]
pub struct Normaliser {
    literals: Vec<(String, &'static str)>,
    ids: HashMap<String, usize>,
}

impl Normaliser {
    /// A normaliser replacing the server URL with `<server>`.
    pub fn for_server(url: &str) -> Normaliser {
        Normaliser {
            literals: vec![(url.to_owned(), "<server>")],
            ids: HashMap::new(),
        }
    }

    /// Normalises `text`; ids keep their numbers across calls on the same normaliser.
    pub fn apply(&mut self, text: &str) -> String {
        let mut text = text.to_owned();
        for (literal, placeholder) in &self.literals {
            text = text.replace(literal.as_str(), placeholder);
        }
        let bytes = text.as_bytes();
        let mut out = String::with_capacity(text.len());
        let mut copied = 0;
        let mut i = 0;
        while i < bytes.len() {
            let boundary = i == 0 || !bytes[i - 1].is_ascii_alphanumeric();
            let matched = if boundary {
                uuid_len(&bytes[i..])
                    .map(|len| (len, true))
                    .or_else(|| timestamp_len(&bytes[i..]).map(|len| (len, false)))
            } else {
                None
            };
            match matched {
                Some((len, is_id)) => {
                    out.push_str(&text[copied..i]);
                    if is_id {
                        let next = self.ids.len() + 1;
                        let n = *self.ids.entry(text[i..i + len].to_owned()).or_insert(next);
                        write!(out, "<id{n}>").expect("writing to a String");
                    } else {
                        out.push_str("<time>");
                    }
                    i += len;
                    copied = i;
                }
                None => i += 1,
            }
        }
        out.push_str(&text[copied..]);
        out
    }
}

/// Length of a lowercase hyphenated UUID at the start of `bytes`, not followed by more
/// alphanumerics.
fn uuid_len(bytes: &[u8]) -> Option<usize> {
    const SHAPE: &[u8] = b"xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx";
    let candidate = bytes.get(..SHAPE.len())?;
    let fits = candidate.iter().zip(SHAPE).all(|(&b, &s)| {
        if s == b'-' {
            b == b'-'
        } else {
            b.is_ascii_digit() || (b'a'..=b'f').contains(&b)
        }
    });
    let ends = bytes
        .get(SHAPE.len())
        .is_none_or(|b| !b.is_ascii_alphanumeric());
    (fits && ends).then_some(SHAPE.len())
}

/// Length of `YYYY-MM-DDTHH:MM:SS[.fraction]Z` at the start of `bytes`.
fn timestamp_len(bytes: &[u8]) -> Option<usize> {
    const SHAPE: &[u8] = b"dddd-dd-ddTdd:dd:dd";
    let candidate = bytes.get(..SHAPE.len())?;
    let fits = candidate.iter().zip(SHAPE).all(|(&b, &s)| {
        if s == b'd' {
            b.is_ascii_digit()
        } else {
            b == s
        }
    });
    if !fits {
        return None;
    }
    let mut len = SHAPE.len();
    if bytes.get(len) == Some(&b'.') {
        let digits = bytes[len + 1..]
            .iter()
            .take_while(|b| b.is_ascii_digit())
            .count();
        if digits == 0 {
            return None;
        }
        len += 1 + digits;
    }
    (bytes.get(len) == Some(&b'Z')).then_some(len + 1)
}

#[test]
fn normaliser_numbers_ids_and_hides_times() {
    let mut n = Normaliser::for_server("http://127.0.0.1:9");
    let text = "0192f1c4-7d2e-7c3b-9a55-3a1f2b4c5d6e at 2026-11-25T17:29:03.250Z on \
                http://127.0.0.1:9, 0192f1c4-7d2e-7c3b-9a55-3a1f2b4c5d6f \
                0192f1c4-7d2e-7c3b-9a55-3a1f2b4c5d6e 2026-11-25T17:29:03Z \
                x0192f1c4-7d2e-7c3b-9a55-3a1f2b4c5d6e 2026-11-25T17:29:03";
    assert_eq!(
        n.apply(text),
        "<id1> at <time> on <server>, <id2> <id1> <time> \
         x0192f1c4-7d2e-7c3b-9a55-3a1f2b4c5d6e 2026-11-25T17:29:03"
    );
    assert_eq!(
        n.apply("0192f1c4-7d2e-7c3b-9a55-3a1f2b4c5d6f"),
        "<id2>",
        "numbers persist across calls"
    );
}

#[test]
fn a_source_newer_than_the_binary_is_stale() {
    let dir = tempfile::tempdir().expect("temp dir");
    let binary = dir.path().join("server");
    let (old, new) = (dir.path().join("old file.rs"), dir.path().join("new.rs"));
    let at = |path: &Path, secs| {
        File::create(path)
            .and_then(|file| file.set_modified(std::time::UNIX_EPOCH + Duration::from_secs(secs)))
            .expect("create file");
    };
    at(&old, 1_000);
    at(&binary, 2_000);
    std::fs::write(
        binary.with_extension("d"),
        format!(
            "{}: {} {}\n",
            binary.display(),
            old.display().to_string().replace(' ', "\\ "),
            new.display()
        ),
    )
    .expect("write dep-info");
    assert_eq!(stale_source(&binary), None, "new.rs does not exist yet");
    at(&new, 3_000);
    assert_eq!(stale_source(&binary), Some(new));
    at(&old, 4_000);
    assert_eq!(stale_source(&binary), Some(old), "found despite the space");
}

/// Registers the loopback test node as `name` (its host key scanned and pinned with --yes)
/// through the CLI and returns its id.
pub fn add_test_node(cli: &Cli, node: &TestNode, name: &str) -> String {
    let port = node.port.to_string();
    let output = cli.run(&[
        "node",
        "add",
        "--name",
        name,
        "--hostname",
        "127.0.0.1",
        "--port",
        &port,
        "--local",
        "--yes",
        "-o",
        "json",
    ]);
    output.json()["id"]
        .as_str()
        .unwrap_or_else(|| panic!("no node id: {output}"))
        .to_owned()
}
