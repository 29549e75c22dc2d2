//! The fleet: bare machines with systemd as PID 1 (scripts/fleet.sh), provisioned from nothing
//! through the API, rebooted, and probed from another machine of the fleet.

use pressluft_proto::v1 as pb;

use crate::support::*;

/// The services node_provision installs, by their systemd units on `php`'s node.
fn services(php: &str) -> Vec<String> {
    vec![
        format!("php{php}-fpm"),
        "nginx".into(),
        "mariadb".into(),
        "redis-server".into(),
        "fail2ban".into(),
    ]
}

/// Provisions the bare `machine` through the API and checks the stack runs under systemd
/// with its units enabled; the active node.
async fn provision_bare(
    fleet: &Fleet,
    c: &mut Clients,
    machine: &FleetNode,
    php: &str,
) -> pb::Node {
    let (node, job) = fleet.provision(c, machine).await;
    assert_eq!(
        job.status,
        pb::JobStatus::Succeeded as i32,
        "{}: {job:?}",
        machine.name
    );
    let node = c
        .nodes
        .get_node(pb::GetNodeRequest { node_id: node.id })
        .await
        .unwrap()
        .into_inner()
        .node
        .unwrap();
    assert_eq!(node.status, pb::NodeStatus::Active as i32);
    assert_eq!(node.php_versions, [php], "{}'s PHP", machine.distro);
    let services = services(php).join(" ");
    assert_eq!(fleet.ssh_ok(machine, "cat /proc/1/comm").trim(), "systemd");
    // nftables.service loads the rules at boot (provisioning loads its table itself).
    let enabled = fleet.ssh_ok(
        machine,
        &format!("systemctl is-enabled {services} nftables"),
    );
    assert!(
        enabled.lines().all(|l| l == "enabled"),
        "{}: {enabled}",
        machine.name
    );
    let active = fleet.ssh_ok(machine, &format!("systemctl is-active {services}"));
    assert!(
        active.lines().all(|l| l == "active"),
        "{}: {active}",
        machine.name
    );
    node
}

/// Provisioning `node` again succeeds without changing anything.
async fn reprovision_changes_nothing(c: &mut Clients, node: &pb::Node) {
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
    let events = watch_all(c, &again.id).await;
    assert_eq!(
        events.last().unwrap().job.as_ref().unwrap().status,
        pb::JobStatus::Succeeded as i32
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
}

/// Whether a TCP connection from `from` to `to:port` is answered (connected, even if closed
/// right away) within a few seconds; a dropped packet times out.
fn reaches(fleet: &Fleet, from: &FleetNode, to: &FleetNode, port: u16) -> bool {
    let target = format!("/dev/tcp/{}/{port}", to.ip);
    let out = fleet.exec_from(
        from,
        &["timeout", "5", "bash", "-c", &format!("exec 3<>{target}")],
    );
    out.status.success()
}

/// A bare Debian 12 machine becomes an active node: the stack runs under systemd with its
/// units enabled, the firewall (loaded by systemd at boot) answers SSH and HTTP from another
/// machine and drops other ports, a second run changes nothing, a site created on it is served
/// to another machine, and after a reboot every service, the firewall and the site are back.
#[tokio::test]
#[ignore = "real node: needs the test bed (scripts/test.sh runs it)"]
async fn a_bare_node_is_provisioned_under_systemd_and_comes_back_after_a_reboot() {
    let fleet = fleet();
    let bare = fleet.node("bookworm1");
    let probe = fleet.node("probe");
    let server = TestServer::start_engine(|c| {
        c.playbooks_dir = repo_root().join("playbooks");
        c.wordpress_source_dir = Some("/usr/share/wordpress".into());
    })
    .await;
    let mut c = server.clients();

    let node = provision_bare(&fleet, &mut c, &bare, "8.2").await;
    fleet.copy_wordpress(&bare);
    let (_, site) = live_site(&mut c, &node, "fleetsite", "Fleet").await;
    let host = site
        .preview_url
        .trim_start_matches("http://")
        .trim_end_matches('/')
        .to_owned();
    assert_eq!(
        fleet.http_status(&probe, &bare, &host),
        200,
        "the site answers another machine"
    );
    let services = services("8.2").join(" ");

    // The firewall, from another machine: SSH and HTTP answer; a port something listens on
    // but nobody allowed does not (the same port answers on the node itself).
    let listen = "nohup python3 -m http.server 8099 >/dev/null 2>&1 & sleep 1; \
                  timeout 5 bash -c 'exec 3<>/dev/tcp/127.0.0.1/8099'";
    fleet.ssh_ok(&bare, listen);
    assert!(reaches(&fleet, &probe, &bare, 22), "SSH answers");
    assert!(reaches(&fleet, &probe, &bare, 80), "HTTP answers");
    assert!(!reaches(&fleet, &probe, &bare, 8099), "8099 is dropped");
    assert!(
        !reaches(&fleet, &probe, &bare, 3306),
        "MariaDB is not reachable"
    );

    reprovision_changes_nothing(&mut c, &node).await;

    // A reboot brings every service and the firewall (loaded by systemd) back.
    fleet.reboot(&bare);
    let active = fleet.ssh_ok(&bare, &format!("systemctl is-active {services} nftables"));
    assert!(
        active.lines().all(|l| l == "active"),
        "after a reboot: {active}"
    );
    fleet.ssh_ok(&bare, listen);
    assert!(
        reaches(&fleet, &probe, &bare, 80),
        "HTTP answers after a reboot"
    );
    assert!(
        !reaches(&fleet, &probe, &bare, 8099),
        "the firewall drops 8099 after a reboot"
    );
    assert_eq!(
        fleet.http_status(&probe, &bare, &host),
        200,
        "the site is back after a reboot"
    );
    server.stop().await;
}

/// Ubuntu 24.04 (the production target: PHP 8.3) and Debian 13 (PHP 8.4), both bare, are
/// provisioned at the same time by one server (one job per node, both running at once).
#[tokio::test]
#[ignore = "real node: needs the test bed (scripts/test.sh runs it)"]
async fn bare_ubuntu_24_04_and_debian_13_nodes_are_provisioned_side_by_side() {
    let fleet = fleet();
    let server = TestServer::start_engine(|c| {
        c.playbooks_dir = repo_root().join("playbooks");
    })
    .await;
    let mut noble_client = server.clients();
    let mut trixie_client = server.clients();
    let (noble, trixie) = (fleet.node("noble1"), fleet.node("trixie1"));
    let (noble_node, trixie_node) = tokio::join!(
        provision_bare(&fleet, &mut noble_client, &noble, "8.3"),
        provision_bare(&fleet, &mut trixie_client, &trixie, "8.4"),
    );
    reprovision_changes_nothing(&mut noble_client, &noble_node).await;
    reprovision_changes_nothing(&mut trixie_client, &trixie_node).await;
    server.stop().await;
}

/// The node's state as `GetNode` shows it, once `done` holds (within the scaled job limit).
async fn node_until(
    c: &mut Clients,
    id: &str,
    what: &str,
    done: impl Fn(&pb::Node) -> bool,
) -> pb::Node {
    let limit = pressluft_testkit::scaled(pressluft_testkit::limit::JOB);
    let deadline = std::time::Instant::now() + limit;
    loop {
        let node = c
            .nodes
            .get_node(pb::GetNodeRequest { node_id: id.into() })
            .await
            .unwrap()
            .into_inner()
            .node
            .unwrap();
        if done(&node) {
            return node;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "{what} within {limit:?}: {node:?}"
        );
        tokio::time::sleep(pressluft_testkit::POLL).await;
    }
}

/// A node that stops answering (its machine halted) is marked unreachable by the periodic
/// check, with why; placement passes it over; once the machine is back it is active again by
/// itself, without anyone touching it.
#[tokio::test]
#[ignore = "real node: needs the test bed (scripts/test.sh runs it)"]
async fn a_node_that_stops_answering_is_unreachable_until_it_answers_again() {
    let fleet = fleet();
    let machine = fleet.node("lossy");
    let server = TestServer::start_engine(|c| {
        c.node_check_interval = std::time::Duration::from_secs(1);
    })
    .await;
    let mut c = server.clients();
    let node = fleet.register(&mut c, &machine).await;
    // Arranged: active without provisioning (the check needs an answering node, not a stack).
    sqlx::query("UPDATE nodes SET status = 'active' WHERE id = ?")
        .bind(&node.id)
        .execute(server.store().await.pool())
        .await
        .unwrap();
    let seen = node_until(&mut c, &node.id, "the node answers the check", |n| {
        n.last_seen_time.is_some()
    })
    .await;
    assert_eq!(seen.status, pb::NodeStatus::Active as i32);

    fleet.stop(&machine);
    let lost = node_until(&mut c, &node.id, "the node is unreachable", |n| {
        n.status == pb::NodeStatus::Unreachable as i32
    })
    .await;
    assert!(lost.status_message.contains("does not answer"), "{lost:?}");
    let refused = c
        .sites
        .create_site(pb::CreateSiteRequest {
            name: "Nowhere".into(),
            slug: "nowhere".into(),
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert!(
        refused.message().contains("lossy is unreachable"),
        "{refused:?}"
    );

    fleet.start(&machine);
    let back = node_until(&mut c, &node.id, "the node is active again", |n| {
        n.status == pb::NodeStatus::Active as i32
    })
    .await;
    assert!(back.status_message.is_empty(), "{back:?}");
    let seen_at = |n: &pb::Node| n.last_seen_time.map(|t| (t.seconds, t.nanos));
    assert!(seen_at(&back) > seen_at(&lost), "seen again: {back:?}");
    server.stop().await;
}

/// Two machines work side by side while each keeps its own cap: with `max_per_node` 1, the
/// jobs on one node never overlap, and jobs on the two nodes do (the recorded history of
/// every attempt says so).
#[tokio::test]
#[ignore = "real node: needs the test bed (scripts/test.sh runs it)"]
async fn per_node_limits_hold_on_each_node_while_nodes_work_side_by_side() {
    let fleet = fleet();
    let server = TestServer::start_engine(|c| {
        c.jobs.max_per_node = 1;
        c.jobs.max_concurrent = 4;
    })
    .await;
    let mut c = server.clients();
    let store = server.store().await;
    let mut nodes = Vec::new();
    for name in ["worker1", "worker2"] {
        let node = fleet.register(&mut c, &fleet.node(name)).await;
        // Arranged: active without provisioning (the test playbooks need only SSH and Python).
        sqlx::query("UPDATE nodes SET status = 'active' WHERE id = ?")
            .bind(&node.id)
            .execute(store.pool())
            .await
            .unwrap();
        nodes.push(node);
    }
    let mut jobs = Vec::new();
    for (n, node) in nodes.iter().enumerate() {
        for i in 0..3 {
            let created = create_site_mode(&mut c, node, &format!("side{n}{i}"), "steps").await;
            jobs.push(created.job.unwrap().id);
        }
    }
    for job in &jobs {
        let job = wait_job(&mut c, job).await;
        assert_eq!(job.status, pb::JobStatus::Succeeded as i32, "{job:?}");
    }

    let rows: Vec<(String, String, String, i64)> = sqlx::query_as(
        "SELECT e.job_id, j.node_id, json_extract(e.payload, '$.status'), e.created_at
         FROM job_events e JOIN jobs j ON j.id = e.job_id WHERE e.kind = 'state'
         ORDER BY e.created_at, e.seq",
    )
    .fetch_all(store.pool())
    .await
    .unwrap();
    let mut open = std::collections::HashMap::<String, (String, i64)>::new();
    let mut intervals = Vec::new();
    for (job, node, status, at) in rows {
        if status == "running" {
            open.insert(job, (node, at));
        } else if let Some((node, start)) = open.remove(&job) {
            intervals.push((node, start, at));
        }
    }
    assert_eq!(intervals.len(), 6, "{intervals:?}");
    let mut across = false;
    for (i, a) in intervals.iter().enumerate() {
        for b in &intervals[i + 1..] {
            if a.1 < b.2 && b.1 < a.2 {
                assert_ne!(a.0, b.0, "two jobs on one node overlapped: {a:?} {b:?}");
                across = true;
            }
        }
    }
    assert!(across, "the two nodes never worked at once: {intervals:?}");
    server.stop().await;
}
