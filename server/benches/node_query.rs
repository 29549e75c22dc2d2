//! `cargo bench --bench node_query`: node-query latency through the gRPC API with pooled SSH
//! connections against the loopback test node, and in the same run the baseline of a fresh
//! OpenSSH command (`ssh -p PORT USER@127.0.0.1 true` as a new process). Needs the test node of
//! scripts/testbed.sh (its exports on the environment). Prints `name=value` lines (see
//! docs/benchmarks.md).
//!
//! Measured twice: as root (the test node's SSH user, whose login shell on this machine
//! sources pyenv's init, ~100 ms, on every SSH command, pooled or fresh) and as a clean SSH user
//! with sudo (created here once, `pressluft-bench`), which shows what pooling itself saves.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::too_many_lines,
    clippy::missing_panics_doc
)]

use pressluft_server_testkit as support;

use std::time::{Duration, Instant};

use pressluft_proto::v1 as pb;
use support::{TestServer, testbed, wait_job};

const QUERIES: usize = 200;
const LOGINS: usize = 30;
const FRESH_SSH: usize = 30;

/// The `pct`th percentile in milliseconds.
fn percentile(samples: &mut [Duration], pct: usize) -> f64 {
    samples.sort();
    samples[(samples.len() - 1) * pct / 100].as_secs_f64() * 1000.0
}

#[tokio::main]
async fn main() {
    let bed = testbed();
    let (server, tag) = TestServer::start_real(|_| {}).await;
    let mut c = server.clients();
    let node = server.node(&mut c).await;
    let created = c
        .sites
        .create_site(pb::CreateSiteRequest {
            name: format!("Query bench {tag}"),
            slug: format!("nqb{tag}"),
            node_id: node.id.clone(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    let job = wait_job(&mut c, &created.job.unwrap().id).await;
    assert_eq!(job.status, pb::JobStatus::Succeeded as i32, "{job:?}");
    let env = created.environment.unwrap().id;

    let clean = clean_node(&mut c, &bed).await;
    let (root_fresh, root_queries) = measure(&mut c, &bed, &node.id, "root").await;
    let (fresh, queries) = measure(&mut c, &bed, &clean, CLEAN_USER).await;

    let mut logins = Vec::new();
    for _ in 0..LOGINS {
        let started = Instant::now();
        c.queries
            .create_magic_login(pb::CreateMagicLoginRequest {
                environment_id: env.clone(),
            })
            .await
            .unwrap();
        logins.push(started.elapsed());
    }

    let report = |name: &str, mut fresh: Vec<Duration>, mut queries: Vec<Duration>| {
        let fresh_p50 = percentile(&mut fresh, 50);
        let query_p50 = percentile(&mut queries, 50);
        println!("{name}openssh_fresh_p50_ms={fresh_p50:.1}");
        println!("{name}node_query_p50_ms={query_p50:.1}");
        println!(
            "{name}node_query_p99_ms={:.1}",
            percentile(&mut queries, 99)
        );
        println!("{name}fresh_vs_pooled_ratio={:.1}", fresh_p50 / query_p50);
    };
    report("", fresh, queries);
    report("root_", root_fresh, root_queries);
    println!("magic_login_p50_ms={:.1}", percentile(&mut logins, 50));

    support::delete_site_and_wait(&mut c, &created.site.unwrap().id).await;
    server.stop().await;
}

const CLEAN_USER: &str = "pressluft-bench";

/// Registers the loopback node a second time, reached as a clean SSH user with sudo (made once).
async fn clean_node(c: &mut support::Clients, bed: &support::Testbed) -> String {
    let run = |cmd: &str, args: &[&str]| {
        let out = std::process::Command::new(cmd).args(args).output().unwrap();
        assert!(out.status.success(), "{cmd} {args:?}: {out:?}");
    };
    let home = format!("/home/{CLEAN_USER}");
    if !std::path::Path::new(&home).exists() {
        run("useradd", &["-m", "-s", "/bin/bash", CLEAN_USER]);
    }
    // No password, but not locked ("!"): sshd without PAM refuses locked accounts.
    run("usermod", &["-p", "*", CLEAN_USER]);
    std::fs::create_dir_all(format!("{home}/.ssh")).unwrap();
    std::fs::copy(
        bed.key.with_extension("pub"),
        format!("{home}/.ssh/authorized_keys"),
    )
    .unwrap();
    run(
        "chown",
        &[
            "-R",
            &format!("{CLEAN_USER}:{CLEAN_USER}"),
            &format!("{home}/.ssh"),
        ],
    );
    run("chmod", &["-R", "go-rwx", &format!("{home}/.ssh")]);
    std::fs::write(
        format!("/etc/sudoers.d/{CLEAN_USER}"),
        format!("{CLEAN_USER} ALL=(ALL) NOPASSWD: ALL\n"),
    )
    .unwrap();
    run("chmod", &["0440", &format!("/etc/sudoers.d/{CLEAN_USER}")]);
    c.nodes
        .create_node(pb::CreateNodeRequest {
            name: "bench-clean-user".into(),
            hostname: "127.0.0.1".into(),
            ssh_port: u32::from(bed.ssh_port),
            ssh_user: CLEAN_USER.into(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner()
        .node
        .unwrap()
        .id
}

/// Fresh OpenSSH commands and pooled node queries as `user`, interleaved so both see the same
/// load. Node queries alternate PHP version (runs php) and MariaDB status (sudo + mysql).
async fn measure(
    c: &mut support::Clients,
    bed: &support::Testbed,
    node: &str,
    user: &str,
) -> (Vec<Duration>, Vec<Duration>) {
    let ssh = || {
        let started = Instant::now();
        let out = std::process::Command::new("ssh")
            .args([
                "-p",
                &bed.ssh_port.to_string(),
                "-i",
                bed.key.to_str().unwrap(),
                "-o",
                "BatchMode=yes",
                "-o",
                "StrictHostKeyChecking=no",
                "-o",
                "UserKnownHostsFile=/dev/null",
                "-o",
                "LogLevel=ERROR",
                &format!("{user}@127.0.0.1"),
                "true",
            ])
            .output()
            .unwrap();
        assert!(out.status.success(), "ssh: {out:?}");
        started.elapsed()
    };

    let php = pb::GetPhpVersionRequest {
        node_id: node.into(),
        ..Default::default()
    };
    let db = pb::GetDatabaseStatusRequest {
        node_id: node.into(),
    };
    // Warm the pool (the first query opens the connection).
    c.queries.get_php_version(php.clone()).await.unwrap();
    let (mut fresh, mut queries) = (Vec::new(), Vec::new());
    for i in 0..QUERIES {
        if i % (QUERIES / FRESH_SSH) == 0 && fresh.len() < FRESH_SSH {
            fresh.push(ssh());
        }
        let started = Instant::now();
        if i % 2 == 0 {
            c.queries.get_php_version(php.clone()).await.unwrap();
        } else {
            c.queries.get_database_status(db.clone()).await.unwrap();
        }
        queries.push(started.elapsed());
    }
    (fresh, queries)
}
