//! node_provision, for real, on the loopback node: the stack it configures and a rerun that
//! changes nothing.

use pressluft_proto::v1 as pb;

use crate::support::*;

/// The real node_provision playbook configures the loopback node (nginx, PHP-FPM, MariaDB,
/// Redis, fail2ban, helpers) through the API, and provisioning again changes nothing.
#[tokio::test]
#[ignore = "real node: needs the test bed (scripts/test.sh runs it)"]
async fn node_provision_configures_the_stack_and_a_rerun_changes_nothing() {
    let server = TestServer::start_engine(|c| {
        c.playbooks_dir = repo_root().join("playbooks");
        c.firewall_allow_tcp = machine_public_ports().to_vec();
    })
    .await;
    let mut c = server.clients();
    let node = server.node(&mut c).await;
    let php = node.php_versions[0].clone();

    // The firewall: its own table, dropping what it does not accept; SSH (the node's port
    // too), HTTP, HTTPS and the configured ports accepted.
    let table =
        String::from_utf8(run("nft", &["list", "table", "inet", "pressluft"]).stdout).unwrap();
    assert!(table.contains("policy drop;"), "{table}");
    let accepted = table
        .lines()
        .find(|l| l.contains("tcp dport"))
        .unwrap_or_else(|| panic!("{table}"));
    let mut expected = vec![22, 80, 443, testbed().ssh_port];
    expected.extend(machine_public_ports());
    for port in expected {
        assert!(accepted.contains(&port.to_string()), "{port} in {accepted}");
    }
    assert!(php.starts_with('8'), "{php}");

    // Unknown hosts get no answer (nginx 444 closes the connection).
    let reply = std::process::Command::new("curl")
        .args([
            "-s",
            "-o",
            "/dev/null",
            "-w",
            "%{http_code}",
            "-H",
            "Host: nobody.example",
            "http://127.0.0.1/",
        ])
        .output()
        .unwrap();
    assert_eq!(
        String::from_utf8_lossy(&reply.stdout),
        "000",
        "the catch-all vhost answers nothing"
    );
    for service in [
        format!("php{php}-fpm"),
        "nginx".into(),
        "mariadb".into(),
        "redis-server".into(),
        "fail2ban".into(),
    ] {
        let status = std::process::Command::new("service")
            .args([service.as_str(), "status"])
            .output()
            .unwrap();
        assert!(status.status.success(), "{service} runs");
    }
    let ini =
        std::fs::read_to_string(format!("/etc/php/{php}/fpm/conf.d/90-pressluft.ini")).unwrap();
    assert!(ini.contains("disable_functions = exec") && ini.contains("expose_php = Off"));
    let fpm = std::fs::read_to_string(format!("/etc/php/{php}/fpm/php-fpm.conf")).unwrap();
    assert!(fpm.lines().any(|l| l == "process_control_timeout = 20s"));
    // The control plane's key: trusted only from here, restricted (security.md).
    let public = std::fs::read_to_string(testbed().key.with_extension("pub")).unwrap();
    let blob = public.split_whitespace().nth(1).unwrap();
    let keys = std::fs::read_to_string("/root/.ssh/authorized_keys").unwrap();
    let lines: Vec<&str> = keys.lines().filter(|l| l.contains(blob)).collect();
    assert_eq!(
        lines,
        [format!(
            "from=\"127.0.0.1,::1\",restrict ssh-ed25519 {blob} pressluft-control-plane"
        )],
        "{keys}"
    );

    let again = c
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
    let events = watch_all(&mut c, &again.id).await;
    assert_eq!(
        events.last().unwrap().job.as_ref().unwrap().status,
        pb::JobStatus::Succeeded as i32
    );
    assert_steps_in_order(
        &events,
        &[
            "Supported operating system",
            "PHP hardening",
            "Firewall rules",
            "Fail2ban jails",
            "Services running",
            "Report",
        ],
    );
    let changed: Vec<String> = events
        .iter()
        .filter_map(|e| match &e.event.as_ref()?.event {
            Some(pb::job_event::Event::Step(s))
                if s.status == pb::JobStepStatus::Changed as i32 =>
            {
                Some(s.name.clone())
            }
            _ => None,
        })
        .collect();
    assert!(changed.is_empty(), "re-provisioning changed {changed:?}");
    server.stop().await;
}
