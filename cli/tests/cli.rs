//! End-to-end tests: the real `pressluft` binary against the real `pressluft-server` binary,
//! each test with its own server, data dir and CLI home. Exit codes are the CLI's contract:
//! 0 ok, 1 other, 2 usage, 3 auth, 4 not found, 5 conflict or precondition, 6 unavailable,
//! 7 job failed or cancelled, 130 stopped watching with Ctrl-C.
//!
//! The job tests run real playbooks over SSH against the loopback test node of
//! `scripts/testbed.sh` (`#[ignore = "real node: ..."]`; `scripts/test.sh` runs them).

// Tests favour plain, linear assertions over pedantic style.
#![allow(clippy::unwrap_used, clippy::too_many_lines)]

use pressluft_testkit::cli as support;

use std::path::Path;

use support::{Cli, HOST_KEY, Normaliser, PASSWORD, Playbooks, Server, TestNode, free_port};

const ADA: &str = "ada@example.com";
const BOB: &str = "bob@example.com";

/// The value of the `Key:  value` line of a details output.
fn field<'a>(details: &'a str, key: &str) -> &'a str {
    let prefix = format!("{key}:");
    details
        .lines()
        .find_map(|line| line.strip_prefix(&prefix))
        .unwrap_or_else(|| panic!("no `{key}:` line in:\n{details}"))
        .trim()
}

/// Registers a node without SSH and returns its id.
fn add_node(cli: &Cli, name: &str) -> String {
    let output = cli.run(&[
        "node",
        "add",
        "--name",
        name,
        "--hostname",
        "127.0.0.1",
        "--host-key",
        HOST_KEY,
    ]);
    field(output.success(), "ID").to_owned()
}

#[test]
fn login_writes_a_private_config_and_logout_revokes_the_token() {
    let server = Server::start();
    server.create_user(ADA);
    let cli = Cli::new();
    let login = |password: &str| {
        cli.run_stdin(
            &[
                "login",
                "--server",
                &server.url,
                "--email",
                ADA,
                "--password-stdin",
            ],
            &format!("{password}\n"),
        )
    };

    let refused = login("not the right password");
    let stderr = refused.failure(3);
    // One line and no "run `pressluft login`" hint: that is what just failed.
    assert_eq!(
        stderr,
        "error: invalid email or password (UNAUTHENTICATED)\n"
    );
    assert!(
        !cli.config_path().exists(),
        "a refused login writes nothing"
    );

    let mut normaliser = Normaliser::for_server(&server.url);
    let logged_in = login(PASSWORD);
    assert_eq!(
        normaliser.apply(logged_in.success()),
        "Logged in as:  ada@example.com\n\
         Context:       default\n\
         Server:        <server>\n\
         Expires:       <time>\n"
    );

    let path = cli.config_path();
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        let mode =
            |path: &std::path::Path| std::fs::metadata(path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode(&path), 0o600, "config file mode");
        assert_eq!(mode(path.parent().unwrap()), 0o700, "config dir mode");
    }
    let config = std::fs::read_to_string(&path).unwrap();
    let token = config
        .lines()
        .find_map(|line| line.strip_prefix("token = \""))
        .and_then(|rest| rest.strip_suffix('"'))
        .unwrap_or_else(|| panic!("no token line in:\n{config}"))
        .to_owned();
    assert!(token.len() >= 20, "token {token:?} looks too short");
    assert_eq!(
        config,
        format!(
            "current_context = \"default\"\n\n\
             [contexts.default]\n\
             server = \"{}\"\n\
             token = \"{token}\"\n",
            server.url
        )
    );

    let whoami = cli.run(&["whoami"]);
    assert_eq!(
        normaliser.apply(whoami.success()),
        "Email:   ada@example.com\n\
         ID:      <id1>\n\
         Via:     login session\n\
         Server:  <server>\n"
    );

    let logout = cli.run(&["logout"]);
    assert_eq!(
        logout.success(),
        "Logged out; removed the token from context default.\n"
    );
    let config = std::fs::read_to_string(&path).unwrap();
    assert!(!config.contains("token"), "token forgotten:\n{config}");
    assert!(
        config.contains("[contexts.default]"),
        "context kept:\n{config}"
    );

    let after = cli.run(&["whoami"]);
    let stderr = after.failure(3);
    assert!(
        stderr.ends_with("\nhint: run `pressluft login`\n"),
        "{after}"
    );
    // The session was revoked on the server, not only forgotten locally.
    let stale = Cli::new()
        .env("PRESSLUFT_SERVER", &server.url)
        .env("PRESSLUFT_TOKEN", &token)
        .run(&["whoami"]);
    stale.failure(3);
}

#[test]
fn nodes_list_as_table_and_json_and_bad_ids_map_to_exit_codes() {
    let server = Server::start();
    let cli = Cli::with_token(&server, &server.create_token("ci"));
    let mut normaliser = Normaliser::for_server(&server.url);

    let empty = cli.run(&["node", "list"]);
    assert_eq!(
        empty.success(),
        "ID  NAME  HOSTNAME  STATUS  PHP  LAST SEEN\n"
    );

    let id = add_node(&cli, "web-1");

    // Golden table: the id column is 36 wide, so the header pads "ID" to match.
    let table = cli.run(&["node", "list"]);
    assert_eq!(
        normaliser.apply(table.success()),
        "ID                                    NAME   HOSTNAME   STATUS   PHP  LAST SEEN\n\
         <id1>  web-1  127.0.0.1  pending  -    -\n"
    );

    // Golden JSON.
    let json = cli.run(&["node", "list", "-o", "json"]);
    let value = json.json();
    assert_eq!(value["nodes"][0]["id"], id.as_str());
    assert_eq!(
        normaliser.apply(&json.stdout),
        r#"{
  "nodes": [
    {
      "create_time": "<time>",
      "host_key": "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIGWf6sZkF2kcJ9xKJ2fB0z3gMHfVY3ZCxpJHKZt1U9cB",
      "host_key_fingerprint": "SHA256:QNzri0Kx8K4zInPIWp3h+97Mtue5VmuITLCm316OPcQ",
      "hostname": "127.0.0.1",
      "id": "<id1>",
      "name": "web-1",
      "public_ip": "127.0.0.1",
      "ssh_port": 22,
      "ssh_user": "root",
      "status": "NODE_STATUS_PENDING",
      "update_time": "<time>",
      "version": 1
    }
  ]
}
"#
    );

    let show = cli.run(&["node", "show", &id]);
    let details = show.success();
    assert_eq!(field(details, "Name"), "web-1");
    assert_eq!(field(details, "Status"), "pending");
    assert_eq!(field(details, "SSH"), "root@127.0.0.1:22");
    assert_eq!(
        field(details, "Host key"),
        "SHA256:QNzri0Kx8K4zInPIWp3h+97Mtue5VmuITLCm316OPcQ"
    );

    let bad = cli.run(&["node", "show", "not-a-uuid"]);
    assert_eq!(
        bad.failure(2),
        "error: node_id: is not a valid id (expected a UUID) (INVALID_ARGUMENT)\n"
    );
    let unknown = cli.run(&["node", "show", "00000000-0000-4000-8000-000000000000"]);
    assert_eq!(
        unknown.failure(4),
        "error: node 00000000-0000-4000-8000-000000000000 not found (NOT_FOUND)\n"
    );

    let duplicate = cli.run(&[
        "node",
        "add",
        "--name",
        "web-1",
        "--hostname",
        "127.0.0.2",
        "--host-key",
        HOST_KEY,
    ]);
    assert!(
        duplicate.failure(5).contains("(ALREADY_EXISTS)"),
        "{duplicate}"
    );
}

#[test]
fn site_create_queues_a_job_that_can_be_cancelled() {
    let server = Server::start();
    let cli = Cli::with_token(&server, &server.create_token("ci"));
    let node = add_node(&cli, "web-1");
    let create = |slug: &str| {
        cli.run(&[
            "site", "create", "--name", "My Blog", "--slug", slug, "--node", &node,
        ])
    };

    let created = create("blog");
    let details = created.success();
    let site = field(details, "ID").to_owned();
    assert_eq!(field(details, "Slug"), "blog");
    assert_eq!(field(details, "Status"), "creating");
    let job_line = field(details, "Job");
    let (job, rest) = job_line.split_once(' ').unwrap();
    assert_eq!(rest, "(site_create, queued)", "{created}");

    let jobs = cli.run(&["job", "list", "-o", "json"]).json();
    let listed = jobs["jobs"].as_array().unwrap();
    assert_eq!(listed.len(), 1, "{jobs:#}");
    assert_eq!(listed[0]["id"], job);
    assert_eq!(listed[0]["type"], "JOB_TYPE_SITE_CREATE");
    assert_eq!(listed[0]["status"], "JOB_STATUS_QUEUED");
    assert_eq!(listed[0]["site_id"], site.as_str());
    assert_eq!(listed[0]["node_id"], node.as_str());
    assert_eq!(listed[0]["summary"], "create site blog on web-1");
    assert_eq!(listed[0]["requested_by"], "admin@localhost (token ci)");

    let again = create("blog");
    assert!(
        again
            .failure(5)
            .contains("a site with slug blog already exists (ALREADY_EXISTS)"),
        "{again}"
    );

    let cancelled = cli.run(&["job", "cancel", job]);
    assert_eq!(field(cancelled.success(), "Status"), "cancelled");
    let shown = cli.run(&["job", "show", job]);
    let details = shown.success();
    assert_eq!(field(details, "Status"), "cancelled");
    assert_eq!(field(details, "Site"), site);
    assert_ne!(field(details, "Finished"), "-", "{shown}");

    let queued = cli.run(&["job", "list", "--status", "queued"]);
    assert_eq!(
        queued.success(),
        "ID  TYPE  STATUS  STEP  CREATED  SUMMARY\n"
    );
    let twice = cli.run(&["job", "cancel", job]);
    assert_eq!(
        twice.failure(5),
        "error: the job already ended (cancelled) (JOB_NOT_CANCELLABLE)\n"
    );
}

#[test]
fn environment_token_works_without_a_config_file() {
    let server = Server::start();
    let token = server.create_token("ci");
    let mut normaliser = Normaliser::for_server(&server.url);

    let cli = Cli::with_token(&server, &token);
    let whoami = cli.run(&["whoami"]);
    assert_eq!(
        normaliser.apply(whoami.success()),
        "Email:   admin@localhost\n\
         Name:    Administrator\n\
         ID:      <id1>\n\
         Via:     API token ci\n\
         Server:  <server>\n"
    );
    assert!(!cli.config_path().exists(), "nothing written");

    let no_token = Cli::new().env("PRESSLUFT_SERVER", &server.url);
    no_token.run(&["whoami"]).failure(3);
    let wrong_token = Cli::with_token(&server, "plt_not_a_real_token");
    wrong_token.run(&["whoami"]).failure(3);
}

#[test]
fn contexts_hold_separate_logins_and_use_switches() {
    let server = Server::start();
    server.create_user(ADA);
    server.create_user(BOB);
    let cli = Cli::new();
    for (context, email) in [("a", ADA), ("b", BOB)] {
        cli.run_stdin(
            &[
                "login",
                "--context",
                context,
                "--server",
                &server.url,
                "--email",
                email,
                "--password-stdin",
            ],
            &format!("{PASSWORD}\n"),
        )
        .success();
    }
    let email = |args: &[&str]| field(cli.run(args).success(), "Email").to_owned();

    // The first login made its context current; the second did not take over. (Built with
    // the URL rather than normalised: the SERVER column is as wide as the URL.)
    let list = cli.run(&["context", "list"]);
    let url = &server.url;
    let header = format!("{:<width$}", "SERVER", width = url.len());
    assert_eq!(
        list.success(),
        format!(
            "CURRENT  NAME  {header}  LOGGED IN\n\
             *        a     {url}  yes\n         \
             b     {url}  yes\n"
        )
    );
    assert_eq!(email(&["whoami"]), ADA);
    assert_eq!(email(&["whoami", "--context", "b"]), BOB);

    let switched = cli.run(&["context", "use", "b"]);
    assert_eq!(switched.success(), "Switched to context b.\n");
    assert_eq!(email(&["whoami"]), BOB);
    let list = cli.run(&["context", "list", "-o", "json"]).json();
    assert_eq!(list["current_context"], "b");
    assert_eq!(list["contexts"][0]["name"], "a");
    assert_eq!(list["contexts"][0]["logged_in"], true);
    assert_eq!(list["contexts"][1]["name"], "b");

    let unknown = cli.run(&["context", "use", "nope"]);
    assert!(
        unknown.failure(2).contains("context `nope` is not defined"),
        "{unknown}"
    );
    assert_eq!(email(&["whoami"]), BOB, "a failed switch changes nothing");
}

#[test]
fn an_unreachable_server_exits_with_6() {
    let url = format!("http://127.0.0.1:{}", free_port());
    let cli = Cli::new()
        .env("PRESSLUFT_SERVER", &url)
        .env("PRESSLUFT_TOKEN", "plt_whatever");
    let down = cli.run(&["node", "list"]);
    let stderr = down.failure(6);
    let mut lines = stderr.lines();
    assert!(
        lines
            .next()
            .unwrap()
            .starts_with(&format!("error: cannot connect to {url}: ")),
        "{down}"
    );
    assert_eq!(
        lines.next(),
        Some("hint: is the server running? point --server or PRESSLUFT_SERVER at it"),
        "{down}"
    );
    assert_eq!(lines.next(), None, "{down}");
}

/// Runs openssl with `args` in `dir`.
fn openssl(dir: &Path, args: &str) {
    let out = std::process::Command::new("openssl")
        .args(args.split(' '))
        .current_dir(dir)
        .output()
        .expect("openssl runs");
    assert!(out.status.success(), "openssl {args}: {out:?}");
}

#[test]
fn the_cli_talks_to_a_tls_server_it_trusts_and_says_why_it_refuses_one_it_does_not() {
    // A private CA and a certificate for localhost signed by it.
    let pki = tempfile::tempdir().unwrap();
    let dir = pki.path();
    let ec = "-newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes";
    openssl(
        dir,
        &format!("req -x509 {ec} -keyout ca.key -out ca.pem -days 2 -subj /CN=test-ca"),
    );
    openssl(
        dir,
        &format!("req {ec} -keyout cp.key -out cp.csr -subj /CN=localhost"),
    );
    std::fs::write(dir.join("ext.cnf"), "subjectAltName=DNS:localhost\n").unwrap();
    openssl(
        dir,
        "x509 -req -in cp.csr -CA ca.pem -CAkey ca.key -set_serial 7 -out cp.pem -days 2 -extfile ext.cnf",
    );
    let server = Server::start_tls(&dir.join("cp.pem"), &dir.join("cp.key"));
    assert!(
        server.url.starts_with("https://localhost:"),
        "{}",
        server.url
    );
    server.create_user(ADA);
    let login = |cli: &Cli| {
        cli.run_stdin(
            &[
                "login",
                "--server",
                &server.url,
                "--email",
                ADA,
                "--password-stdin",
            ],
            &format!("{PASSWORD}\n"),
        )
    };

    // Not trusted: exit 6, and the hint is about the certificate, not a server that is down.
    let untrusted = Cli::new();
    let refused = login(&untrusted);
    let stderr = refused.failure(6);
    assert!(stderr.contains("certificate"), "{refused}");
    assert!(
        stderr.contains("hint: the server's certificate is not trusted"),
        "{refused}"
    );
    assert!(!untrusted.config_path().exists(), "nothing written");

    // Trusted through SSL_CERT_FILE: login, then a call with the stored session.
    let trusting = Cli::new().env("SSL_CERT_FILE", dir.join("ca.pem").to_str().unwrap());
    login(&trusting).success();
    let me = trusting.run(&["whoami"]);
    assert!(me.success().contains(ADA), "{me}");
}

/// A node_provision playbook with two quick tasks, the second logging "hello".
const HELLO_PLAYBOOK: &str = "\
- name: Provision (test)
  hosts: node
  gather_facts: false
  tasks:
    - name: Ping the node
      ansible.builtin.ping:
    - name: Say hello
      ansible.builtin.debug:
        msg: hello
";

/// A node_provision playbook whose second task fails.
const FAILING_PLAYBOOK: &str = "\
- name: Provision (test)
  hosts: node
  gather_facts: false
  tasks:
    - name: Ping the node
      ansible.builtin.ping:
    - name: Give up
      ansible.builtin.fail:
        msg: the test playbook fails on purpose
";

/// Splits a `--wait` output into the job details and the lines that follow the blank line.
fn after_details(stdout: &str) -> (&str, Vec<&str>) {
    let (details, rest) = stdout
        .split_once("\n\n")
        .unwrap_or_else(|| panic!("no blank line after the details in:\n{stdout}"));
    (details, rest.lines().collect())
}

#[test]
#[ignore = "real node: needs the test bed (scripts/test.sh runs it)"]
fn provision_wait_follows_the_job_to_success_and_logs_show_its_output() {
    let node = TestNode::from_env();
    let playbooks = Playbooks::new(&[("node_provision.yml", HELLO_PLAYBOOK)]);
    let server = Server::start_with_jobs(&playbooks, &node, None);
    let cli = Cli::with_token(&server, &server.create_token("ci"));
    let id = support::add_test_node(&cli, &node, "n");

    let provision = cli.run(&["node", "provision", &id, "--wait"]);
    // Captured: shown only when the test fails.
    println!("{provision}\n--- server log\n{}", server.log());
    let (details, lines) = after_details(provision.success());
    let job = field(details, "ID").to_owned();
    assert_eq!(field(details, "Type"), "node_provision", "{provision}");
    assert_eq!(
        lines[..lines.len() - 1],
        [
            "queued",
            "attempt 1 started",
            "[1/2] Ping the node",
            "[2/2] Say hello"
        ],
        "{provision}"
    );
    let outcome = lines[lines.len() - 1];
    assert!(
        outcome.starts_with(&format!("job {job} succeeded in ")) && outcome.ends_with('s'),
        "{provision}"
    );
    assert_eq!(provision.stderr, "", "{provision}");

    let shown = cli.run(&["node", "show", &id]);
    assert_eq!(field(shown.success(), "Status"), "active", "{shown}");

    let logs = cli.run(&["job", "logs", &job]);
    assert_eq!(
        logs.success(),
        "== [1/2] Ping the node\n\
         == [2/2] Say hello\n\
         hello\n",
    );

    // Watching an ended job replays it and reports the same outcome; --logs adds the lines.
    let watched = cli.run(&["job", "watch", &job, "--logs"]);
    let text = watched.success();
    assert!(text.contains("[2/2] Say hello\nhello\njob "), "{watched}");

    let json = cli.run(&["job", "watch", &job, "-o", "json"]);
    let events: Vec<serde_json::Value> = json
        .success()
        .lines()
        .map(|line| serde_json::from_str(line).unwrap_or_else(|err| panic!("{err}: {line}")))
        .collect();
    // Each event holds one of state_change, step or log_line (the JobEvent oneof).
    assert!(events.iter().any(|e| e.get("log_line").is_some()), "{json}");
    assert!(events.iter().any(|e| e.get("step").is_some()), "{json}");
    assert_eq!(
        events[0]["state_change"]["status"], "JOB_STATUS_QUEUED",
        "{json}"
    );
    let last = events.last().unwrap();
    assert_eq!(
        last["state_change"]["status"], "JOB_STATUS_SUCCEEDED",
        "{json}"
    );
    let sequences: Vec<i64> = events
        .iter()
        .map(|e| e["sequence"].as_i64().unwrap())
        .collect();
    assert!(sequences.windows(2).all(|w| w[0] < w[1]), "{json}");
    assert!(
        events.iter().any(|e| e["log_line"]["text"] == "hello"),
        "{json}"
    );
}

#[test]
#[ignore = "real node: needs the test bed (scripts/test.sh runs it)"]
fn a_failing_job_makes_wait_exit_with_7() {
    let node = TestNode::from_env();
    let playbooks = Playbooks::new(&[("node_provision.yml", FAILING_PLAYBOOK)]);
    let server = Server::start_with_jobs(&playbooks, &node, Some("[jobs]\nmax_attempts = 1\n"));
    let cli = Cli::with_token(&server, &server.create_token("ci"));
    let id = support::add_test_node(&cli, &node, "n");

    let provision = cli.run(&["node", "provision", &id, "--wait"]);
    // Captured: shown only when the test fails.
    println!("{provision}\n--- server log\n{}", server.log());
    assert_eq!(provision.code, 7, "{provision}");
    let (details, lines) = after_details(&provision.stdout);
    let job = field(details, "ID").to_owned();
    assert_eq!(
        lines,
        [
            "queued",
            "attempt 1 started",
            "[1/2] Ping the node",
            "[2/2] Give up"
        ],
        "{provision}"
    );
    let mut stderr = provision.stderr.lines();
    let error = stderr.next().unwrap();
    assert!(
        error.starts_with(&format!("error: job {job} failed: PLAYBOOK_FAILED")),
        "{provision}"
    );
    assert_eq!(
        stderr.next(),
        Some(format!("hint: see its output with `pressluft job logs {job}`").as_str()),
        "{provision}"
    );

    let watched = cli.run(&["job", "watch", &job]);
    assert_eq!(watched.code, 7, "{watched}");
    assert_eq!(watched.stderr.lines().next(), Some(error), "{watched}");

    let logs = cli.run(&["job", "logs", &job]);
    assert!(
        logs.success().contains(
            "== [2/2] Give up\ntask failed: Give up\nthe test playbook fails on purpose\n"
        ),
        "{logs}"
    );
}

#[test]
fn ctrl_c_stops_watching_but_not_the_job() {
    let server = Server::start();
    let cli = Cli::with_token(&server, &server.create_token("ci"));
    // The node is never reachable, so the site's job stays queued.
    let node = add_node(&cli, "web-1");
    let mut waiting = cli.start(&[
        "site", "create", "--name", "Blog", "--slug", "blog", "--node", &node, "--wait",
    ]);
    waiting.wait_for_line("queued");
    waiting.interrupt();
    let stopped = waiting.wait();
    assert_eq!(stopped.code, 130, "{stopped}");
    let (details, lines) = after_details(&stopped.stdout);
    let job = field(details, "Job").split_once(' ').unwrap().0.to_owned();
    assert_eq!(lines, ["queued"], "{stopped}");
    assert_eq!(
        stopped.stderr,
        format!(
            "stopped watching; the job keeps running (pressluft job watch {job} to resume, \
             pressluft job cancel {job} to stop it)\n"
        ),
        "{stopped}"
    );
    let shown = cli.run(&["job", "show", &job]);
    assert_eq!(field(shown.success(), "Status"), "queued");

    let mut watching = cli.start(&["job", "watch", &job]);
    watching.wait_for_line("queued");
    cli.run(&["job", "cancel", &job]).success();
    let cancelled = watching.wait();
    assert_eq!(cancelled.code, 7, "{cancelled}");
    assert_eq!(cancelled.stdout, "queued\n", "{cancelled}");
    assert!(
        cancelled
            .stderr
            .starts_with(&format!("error: job {job} was cancelled: cancelled by ")),
        "{cancelled}"
    );
}

/// The fenced block after the walk-through marker in docs/cli.md.
fn documented_walkthrough() -> String {
    let doc = std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("../docs/cli.md"))
        .expect("docs/cli.md");
    let after = doc
        .split_once("<!-- walkthrough:")
        .expect("docs/cli.md has the walk-through marker")
        .1;
    let block = after
        .split_once("```sh\n")
        .expect("a ```sh block after the marker")
        .1;
    block
        .split_once("```")
        .expect("the block ends")
        .0
        .to_owned()
}

/// docs/cli.md's walk-through, run as written by bash against a real server with the real
/// playbooks on the loopback node: login, node add + provision, site create, queries, caches,
/// an S3 backup, a staging clone, jobs and audit, site delete, logout.
#[test]
#[ignore = "real node: needs the test bed (scripts/test.sh runs it)"]
fn the_documented_walkthrough_runs_against_a_real_node() {
    let node = TestNode::from_env();
    let s3 = |name: &str| {
        std::env::var(name).unwrap_or_else(|_| {
            panic!("{name} is not set: run the suite with scripts/test.sh (it starts the test S3 server)")
        })
    };
    let (endpoint, key_id, secret_file) = (
        s3("PRESSLUFT_TEST_S3_ENDPOINT"),
        s3("PRESSLUFT_TEST_S3_ACCESS_KEY"),
        s3("PRESSLUFT_TEST_S3_SECRET_FILE"),
    );
    let tag = format!("{:04x}", std::process::id() % 0xffff);
    let bucket = format!("walkthrough-{tag}");
    support::create_bucket(&endpoint, &key_id, &secret_file, &bucket);
    let ports: Vec<String> = support::machine_public_ports()
        .iter()
        .map(ToString::to_string)
        .collect();
    let config = format!(
        "wordpress_source_dir = \"/usr/share/wordpress\"\n\
         linux_uid_base = {}\n\
         firewall_allow_tcp = [{}]\n\
         [jobs]\nmax_attempts = 1\n",
        pressluft_testkit::uids::block(),
        ports.join(", ")
    );
    let server = Server::start_real(&node, &config);
    server.create_user(ADA);
    let cli = Cli::new();
    let bin_dir = support::cli_binary()
        .parent()
        .expect("the binary's directory")
        .to_owned();
    let path = format!(
        "{}:{}",
        bin_dir.display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let whole_script = pressluft_testkit::scaled(pressluft_testkit::limit::PROVISION)
        .as_secs()
        .to_string();
    let output = std::process::Command::new("timeout")
        .args([
            whole_script.as_str(),
            "bash",
            "-euo",
            "pipefail",
            "-c",
            &documented_walkthrough(),
        ])
        .env_clear()
        .env("PATH", path)
        .env("HOME", cli.home())
        .env("PRESSLUFT_CONFIG", cli.config_path())
        .env("SERVER", &server.url)
        .env("EMAIL", ADA)
        .env("PASSWORD", PASSWORD)
        .env("NODE_SSH_PORT", node.port.to_string())
        .env("SLUG", format!("walk{tag}"))
        .env("S3_ENDPOINT", &endpoint)
        .env("S3_BUCKET", &bucket)
        .env("S3_KEY_ID", &key_id)
        .env("S3_SECRET_FILE", &secret_file)
        .output()
        .expect("run bash");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success(),
        "the walk-through failed ({}):\n--- stdout\n{stdout}\n--- stderr\n{stderr}\n--- server log\n{}",
        output.status,
        server.log()
    );
    // What a reader of the doc sees along the way.
    assert!(stdout.contains("Logged in as"), "{stdout}");
    assert!(
        stdout.contains("pressluft_login="),
        "a one-time login URL: {stdout}"
    );
    assert!(stdout.contains("site_delete"), "{stdout}");
    let wide = stdout
        .lines()
        .find(|l| l.starts_with("ID ") && l.contains("DRIFT"))
        .unwrap_or_else(|| panic!("env list -o wide shows its wide columns: {stdout}"));
    assert!(
        wide.contains("RELEASE") && wide.contains("BACKUP"),
        "{wide}"
    );
    assert!(
        stdout.matches("succeeded").count() >= 5,
        "every --wait ended in success: {stdout}"
    );
}

/// Commands beyond nodes and jobs, against a real server without a node: YAML and wide
/// output, tokens (shown once, revoked tokens refused), settings, confirmations that refuse
/// to act without a terminal or --yes, errors per class, completions and the man page.
#[test]
#[ignore = "real node: needs the test bed (scripts/test.sh runs it)"]
fn tokens_settings_yaml_confirmations_and_generated_docs() {
    let server = Server::start();
    let cli = Cli::with_token(&server, &server.create_token("ci"));

    // Golden YAML: the same fields as JSON.
    let yaml = cli.run(&["settings", "show", "-o", "yaml"]);
    assert_eq!(
        yaml.success(),
        "default_php_version: \"8.3\"\n\
         releases_to_keep: 5\n\
         version: 1\n"
    );
    let set = cli.run(&["settings", "set", "--preview-domain", "preview.example.com"]);
    assert_eq!(
        field(set.success(), "Preview domain"),
        "preview.example.com"
    );
    cli.run(&["settings", "set"]).failure(2);
    // A secret never comes from a flag.
    cli.run(&[
        "settings",
        "backup-target",
        "--endpoint",
        "http://127.0.0.1:1",
        "--bucket",
        "b",
        "--access-key-id",
        "k",
    ])
    .failure(2);

    // Tokens: the secret once, then listed without it; a revoked one is refused.
    let created = cli.run(&[
        "token",
        "create",
        "deploy-bot",
        "--ttl",
        "30d",
        "-o",
        "json",
    ]);
    let value = created.json();
    let secret = value["secret"].as_str().expect("the secret").to_owned();
    let token_id = value["token"]["id"].as_str().expect("its id").to_owned();
    let listed = cli.run(&["token", "list"]);
    assert!(listed.success().contains("deploy-bot"), "{listed}");
    assert!(
        !listed.stdout.contains(&secret),
        "the secret is never listed"
    );
    let bot = Cli::with_token(&server, &secret);
    bot.run(&["whoami"]).success();
    cli.run(&["token", "revoke", &token_id]).success();
    bot.run(&["whoami"]).failure(3);

    // Wide tables have more columns; empty lists print their header.
    let jobs = cli.run(&[
        "job",
        "list",
        "--type",
        "site_create,env_deploy",
        "-o",
        "wide",
    ]);
    assert!(jobs.success().starts_with("ID"), "{jobs}");
    cli.run(&["job", "list", "--type", "nonsense"]).failure(2);

    // Errors per class on the new commands.
    let missing = "00000000-0000-4000-8000-000000000000";
    cli.run(&["env", "show", missing]).failure(4);
    cli.run(&["backup", "show", missing]).failure(4);
    cli.run(&["domain", "list", missing]).failure(4);
    cli.run(&["env", "deploy", missing]).failure(2);
    cli.run(&["env", "update", missing]).failure(2);
    cli.run(&[
        "backup", "schedule", missing, "--every", "5y", "--keep", "1d",
    ])
    .failure(2);
    let add = cli.run(&["domain", "add", missing, "Not A Domain"]);
    assert!(add.failure(2).contains("hostname"), "{add}");

    // Destructive commands ask first; without a terminal they need --yes and change nothing.
    let site = cli.run(&["site", "delete", missing]);
    site.failure(4);
    let node_id = add_node(&cli, "web-1");
    let test_node = TestNode::from_env();
    let port = test_node.port.to_string();
    let unconfirmed = cli.run(&[
        "node",
        "add",
        "--name",
        "web-2",
        "--hostname",
        "127.0.0.1",
        "--port",
        &port,
    ]);
    let message = unconfirmed.failure(2);
    assert!(
        message.contains("presents host key SHA256:") && message.contains("--yes"),
        "{message}"
    );
    let nodes = cli.run(&["node", "list", "-o", "json"]).json();
    assert_eq!(
        nodes["nodes"].as_array().map(Vec::len),
        Some(1),
        "nothing registered"
    );
    let renamed = cli.run(&["node", "update", &node_id, "--name", "web-one"]);
    assert_eq!(field(renamed.success(), "Name"), "web-one");
    let gone = cli.run(&["node", "decommission", &node_id]);
    assert_eq!(field(gone.success(), "Status"), "decommissioned");
    let audit = cli.run(&["audit", "--limit", "3", "-o", "json"]).json();
    assert!(
        audit["events"].as_array().is_some_and(|e| !e.is_empty()),
        "{audit}"
    );

    // Completions and the man page come from the same definitions.
    let no_server = Cli::new();
    for shell in ["bash", "zsh", "fish"] {
        let script = no_server.run(&["completions", shell]);
        assert!(
            script.success().contains("backup") && script.stdout.contains("domain"),
            "{shell}"
        );
    }
    let man = no_server.run(&["man"]);
    assert!(man.success().starts_with(".ie"), "roff");
    assert!(man.stdout.contains("pressluft"));
}
