//! `cargo bench --bench overhead`: what Pressluft adds to a playbook run. Site create, deploy
//! and rollback run through the gRPC API (queue, spec, executor, events, bookkeeping) against
//! the loopback test node, and each time the same playbook with the same variables runs
//! directly with `ansible-playbook` against a twin site, interleaved so both see the same
//! machine load. Needs the test node of scripts/testbed.sh (its exports on the environment).
//! Prints `name=value` lines (see docs/benchmarks.md).

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::too_many_lines,
    clippy::missing_panics_doc
)]

use pressluft_server_testkit as support;

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use pressluft_proto::v1 as pb;
use pressluft_server::AppState;
use pressluft_server::config::Config;
use serde_json::{Value, json};
use support::{Clients, TestServer, repo_root, testbed};
use tokio_util::sync::CancellationToken;

const ROUNDS: usize = 2;

#[tokio::main]
async fn main() {
    let bed = testbed();
    let (server, tag) = TestServer::start_real(|_| {}).await;
    let tag = &tag[..5];
    let mut c = server.clients();
    let node = server.node(&mut c).await;
    // The server's own view, to read the variables it gives each job.
    let mut config = Config::for_data_dir(&server.data_dir());
    config.wordpress_source_dir = Some("/usr/share/wordpress".into());
    config.firewall_allow_tcp = support::machine_public_ports().to_vec();
    let state = AppState::open(config, CancellationToken::new())
        .await
        .unwrap();
    let playbooks = repo_root().join("playbooks");

    let direct = Direct {
        playbooks: playbooks.clone(),
        key: bed.key.clone(),
        port: bed.ssh_port,
        host_key: node_host_key(&state, &node.id).await,
    };
    let (slug_a, slug_b) = (format!("ovha{tag}"), format!("ovhb{tag}"));
    let mut times: Vec<(&str, Duration, Duration)> = Vec::new();

    // Site create: through Pressluft, then the same playbook and variables for the twin.
    let started = Instant::now();
    let created = c
        .sites
        .create_site(pb::CreateSiteRequest {
            name: format!("Overhead {tag}"),
            slug: slug_a.clone(),
            node_id: node.id.clone(),
            wordpress_version: "latest".into(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    let create_job = created.job.unwrap().id;
    wait(&mut c, &create_job).await;
    let through = started.elapsed();
    let env_a = created.environment.unwrap().id;
    let create_vars = twin(&spec_vars(&state, &create_job).await, &slug_a, &slug_b);
    let first_release_b = create_vars["release_name"].as_str().unwrap().to_owned();
    let direct_time = direct.run("site_create.yml", &create_vars);
    times.push(("create", through, direct_time));

    for round in 0..ROUNDS {
        let started = Instant::now();
        let job = deploy(&mut c, &env_a).await;
        wait(&mut c, &job).await;
        let through = started.elapsed();
        let mut vars = twin(&spec_vars(&state, &job).await, &slug_a, &slug_b);
        vars["release_name"] = json!(format!("direct-{tag}-{round}"));
        vars["prune_releases"] = json!([]);
        times.push(("deploy", through, direct.run("env_deploy.yml", &vars)));

        let started = Instant::now();
        let job = c
            .sites
            .rollback_environment(pb::RollbackEnvironmentRequest {
                environment_id: env_a.clone(),
                ..Default::default()
            })
            .await
            .unwrap()
            .into_inner()
            .job
            .unwrap()
            .id;
        wait(&mut c, &job).await;
        let through = started.elapsed();
        let mut vars = twin(&spec_vars(&state, &job).await, &slug_a, &slug_b);
        vars["job"]["params"]["release_name"] = json!(first_release_b);
        times.push((
            "rollback",
            through,
            direct.run("release_rollback.yml", &vars),
        ));
    }

    // Clean up both sites: A through the API, the twin with the same site_delete playbook.
    let mut delete_vars = twin(&spec_vars(&state, &create_job).await, &slug_a, &slug_b);
    delete_vars["envs"] = json!([delete_vars["env"].clone()]);
    direct.run("site_delete.yml", &delete_vars);
    let site_a = created.site.unwrap().id;
    let job = c
        .sites
        .delete_site(pb::DeleteSiteRequest {
            site_id: site_a,
            expected_version: 0,
        })
        .await
        .unwrap()
        .into_inner()
        .job
        .unwrap()
        .id;
    wait(&mut c, &job).await;

    let mut total = (Duration::ZERO, Duration::ZERO);
    for kind in ["create", "deploy", "rollback"] {
        let (through, direct): (Duration, Duration) = times
            .iter()
            .filter(|t| t.0 == kind)
            .fold((Duration::ZERO, Duration::ZERO), |acc, t| {
                (acc.0 + t.1, acc.1 + t.2)
            });
        let n = u32::try_from(times.iter().filter(|t| t.0 == kind).count()).unwrap();
        println!("{kind}_pressluft_s={:.2}", (through / n).as_secs_f64());
        println!("{kind}_direct_s={:.2}", (direct / n).as_secs_f64());
        println!(
            "{kind}_ratio={:.3}",
            through.as_secs_f64() / direct.as_secs_f64()
        );
        total = (total.0 + through, total.1 + direct);
    }
    println!(
        "overhead_ratio={:.3}",
        total.0.as_secs_f64() / total.1.as_secs_f64()
    );
    server.stop().await;
}

async fn deploy(c: &mut Clients, env: &str) -> String {
    c.sites
        .deploy_environment(pb::DeployEnvironmentRequest {
            environment_id: env.into(),
            expected_version: 0,
            source: Some(pb::ReleaseSource {
                source: Some(pb::release_source::Source::Wordpress(pb::WordPressSource {
                    version: "latest".into(),
                })),
            }),
        })
        .await
        .unwrap()
        .into_inner()
        .job
        .unwrap()
        .id
}

/// Waits for a job to succeed, polling every 50 ms (the resolution of the Pressluft times).
async fn wait(c: &mut Clients, id: &str) {
    let job = support::wait_job_polling(c, id, Duration::from_millis(50)).await;
    assert_eq!(
        job.status,
        pb::JobStatus::Succeeded as i32,
        "job failed: {job:?}"
    );
}

/// The variables Pressluft gave a job's playbook.
async fn spec_vars(state: &AppState, job: &str) -> Value {
    let record = state.store.job(job.parse().unwrap()).await.unwrap();
    pressluft_server::queue::vars::job_spec(
        &state.job_sources(),
        &record,
        &record.params().unwrap(),
    )
    .await
    .unwrap()
    .vars
}

/// The same variables for the twin site: another slug (same length), UID, job id.
fn twin(vars: &Value, from: &str, to: &str) -> Value {
    let mut vars: Value = serde_json::from_str(&vars.to_string().replace(from, to)).unwrap();
    if let Some(uid) = vars["env"]["linux_uid"].as_i64() {
        vars["env"]["linux_uid"] = json!(uid + 5_000);
    }
    vars["pressluft_job_id"] = json!(uuid::Uuid::new_v4().to_string());
    vars
}

async fn node_host_key(state: &AppState, id: &str) -> String {
    state
        .store
        .node(id.parse().unwrap())
        .await
        .unwrap()
        .host_key
}

/// Runs playbooks directly, as an operator would: inventory, extra vars, ansible-playbook.
struct Direct {
    playbooks: PathBuf,
    key: PathBuf,
    port: u16,
    host_key: String,
}

impl Direct {
    fn run(&self, playbook: &str, vars: &Value) -> Duration {
        let dir = tempfile::tempdir().unwrap();
        let known_hosts = dir.path().join("known_hosts");
        std::fs::write(
            &known_hosts,
            format!("[127.0.0.1]:{} {}\n", self.port, self.host_key),
        )
        .unwrap();
        let inventory = json!({"all": {"hosts": {"node": {
            "ansible_host": "127.0.0.1",
            "ansible_port": self.port,
            "ansible_user": "root",
            "ansible_ssh_private_key_file": self.key,
            "ansible_ssh_common_args": format!(
                "-o UserKnownHostsFile={} -o StrictHostKeyChecking=yes -o IdentitiesOnly=yes",
                known_hosts.display()
            ),
        }}}});
        write(&dir.path().join("inventory.yml"), &inventory);
        write(&dir.path().join("vars.json"), vars);
        let started = Instant::now();
        let out = std::process::Command::new("ansible-playbook")
            .args(["-i"])
            .arg(dir.path().join("inventory.yml"))
            .arg("-e")
            .arg(format!("@{}", dir.path().join("vars.json").display()))
            .arg(self.playbooks.join(playbook))
            .current_dir(&self.playbooks)
            .env("ANSIBLE_CONFIG", self.playbooks.join("ansible.cfg"))
            .output()
            .unwrap();
        let took = started.elapsed();
        assert!(
            out.status.success(),
            "{playbook} failed:\n{}",
            String::from_utf8_lossy(&out.stdout)
        );
        took
    }
}

fn write(path: &Path, value: &Value) {
    use std::io::Write as _;
    use std::os::unix::fs::OpenOptionsExt as _;
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
        .unwrap();
    file.write_all(value.to_string().as_bytes()).unwrap();
}
