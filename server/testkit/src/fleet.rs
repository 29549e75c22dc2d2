//! The test fleet: bare machines with systemd that scripts/test.sh starts with scripts/fleet.sh
//! (`PRESSLUFT_FLEET_NODES`: `NAME:DISTRO:IP` words; `PRESSLUFT_FLEET_KEY`: root's key on all).

use std::path::PathBuf;
use std::process::Output;

use pressluft_proto::v1 as pb;

use crate::{Clients, repo_root, wait_job};

/// One machine of the fleet.
#[derive(Debug, Clone)]
pub struct FleetNode {
    pub name: String,
    pub distro: String,
    pub ip: String,
}

/// The fleet scripts/test.sh started.
#[derive(Debug, Clone)]
pub struct Fleet {
    pub key: PathBuf,
    pub nodes: Vec<FleetNode>,
}

/// The running fleet; a clear failure when the suite was not started by scripts/test.sh.
pub fn fleet() -> Fleet {
    let how =
        "run the suite with scripts/test.sh (the README test command), which starts the fleet";
    let nodes = std::env::var("PRESSLUFT_FLEET_NODES")
        .unwrap_or_else(|_| panic!("PRESSLUFT_FLEET_NODES is not set: {how}"));
    let key = std::env::var("PRESSLUFT_FLEET_KEY")
        .unwrap_or_else(|_| panic!("PRESSLUFT_FLEET_KEY is not set: {how}"));
    let nodes = nodes
        .split_whitespace()
        .map(|word| {
            let mut parts = word.split(':');
            let (Some(name), Some(distro), Some(ip)) = (parts.next(), parts.next(), parts.next())
            else {
                panic!("PRESSLUFT_FLEET_NODES holds {word:?}, not NAME:DISTRO:IP");
            };
            FleetNode {
                name: name.into(),
                distro: distro.into(),
                ip: ip.into(),
            }
        })
        .collect();
    Fleet {
        key: PathBuf::from(key),
        nodes,
    }
}

impl Fleet {
    /// The node named `name`.
    pub fn node(&self, name: &str) -> FleetNode {
        self.nodes
            .iter()
            .find(|n| n.name == name)
            .cloned()
            .unwrap_or_else(|| panic!("the fleet has no node {name}: {:?}", self.nodes))
    }

    /// `command` run by root's shell on `node` (the fleet key; the node is not the control
    /// plane's to log into).
    pub fn ssh(&self, node: &FleetNode, command: &str) -> Output {
        std::process::Command::new("ssh")
            .arg("-i")
            .arg(&self.key)
            .args([
                "-o",
                "BatchMode=yes",
                "-o",
                "StrictHostKeyChecking=no",
                "-o",
                "UserKnownHostsFile=/dev/null",
                "-o",
                "LogLevel=ERROR",
                "-o",
                "ConnectTimeout=10",
            ])
            .arg(format!("root@{}", node.ip))
            .arg(command)
            .output()
            .unwrap()
    }

    /// Like [`Fleet::ssh`], asserting success; its stdout.
    pub fn ssh_ok(&self, node: &FleetNode, command: &str) -> String {
        let out = self.ssh(node, command);
        assert!(
            out.status.success(),
            "`{command}` on {}: {}{}",
            node.name,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap()
    }

    /// `argv` (a host program) run in `from`'s network namespace: traffic from another
    /// machine of the fleet.
    pub fn exec_from(&self, from: &FleetNode, argv: &[&str]) -> Output {
        fleet_script(&[&["exec", from.name.as_str()], argv].concat())
    }

    /// Copies this machine's WordPress tree (`/usr/share/wordpress`, links resolved) to the
    /// same place on `node`: fleet machines cannot reach wordpress.org.
    pub fn copy_wordpress(&self, node: &FleetNode) {
        let out = std::process::Command::new("bash")
            .args([
                "-c",
                "set -o pipefail; tar -C /usr/share -chf - wordpress | ssh -i \"$1\" -o BatchMode=yes \
                 -o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null -o LogLevel=ERROR \
                 \"root@$2\" 'rm -rf /usr/share/wordpress && tar -C /usr/share -xf -'",
                "copy",
            ])
            .arg(&self.key)
            .arg(&node.ip)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "copying WordPress to {}: {out:?}",
            node.name
        );
    }

    /// The HTTP status of `GET http://<to>/` with `Host: host`, sent from `from`'s namespace
    /// (0: no answer).
    pub fn http_status(&self, from: &FleetNode, to: &FleetNode, host: &str) -> u16 {
        let out = self.exec_from(
            from,
            &[
                "curl",
                "-s",
                "-o",
                "/dev/null",
                "-w",
                "%{http_code}",
                "--max-time",
                "60",
                "-H",
                &format!("Host: {host}"),
                &format!("http://{}/", to.ip),
            ],
        );
        String::from_utf8_lossy(&out.stdout)
            .trim()
            .parse()
            .unwrap_or(0)
    }

    /// Stops `node` (its container halts; its disk stays).
    pub fn stop(&self, node: &FleetNode) {
        let out = fleet_script(&["stop", &node.name]);
        assert!(out.status.success(), "stopping {}: {out:?}", node.name);
    }

    /// Boots a stopped `node` again (with its disk as it was).
    pub fn start(&self, node: &FleetNode) {
        let out = fleet_script(&["up", &format!("{}:{}", node.name, node.distro)]);
        assert!(out.status.success(), "starting {}: {out:?}", node.name);
    }

    /// Reboots `node` (its container stops and boots again with its disk).
    pub fn reboot(&self, node: &FleetNode) {
        let out = fleet_script(&["restart", &node.name]);
        assert!(out.status.success(), "rebooting {}: {out:?}", node.name);
    }

    /// Registers `node` through the API as an operator would: the control plane's key is
    /// authorized for root on it first, its host key pinned at registration.
    pub async fn register(&self, c: &mut Clients, node: &FleetNode) -> pb::Node {
        let key = c
            .nodes
            .get_control_plane_key(pb::GetControlPlaneKeyRequest {})
            .await
            .unwrap()
            .into_inner()
            .public_key;
        self.ssh_ok(
            node,
            &format!(
                "install -d -m 0700 /root/.ssh && grep -qxF '{key}' /root/.ssh/authorized_keys || echo '{key}' >> /root/.ssh/authorized_keys"
            ),
        );
        c.nodes
            .create_node(pb::CreateNodeRequest {
                name: node.name.clone(),
                hostname: node.ip.clone(),
                ssh_port: 22,
                ssh_user: "root".into(),
                ..Default::default()
            })
            .await
            .unwrap()
            .into_inner()
            .node
            .unwrap()
    }

    /// Registers and provisions `node`; the finished node_provision job.
    pub async fn provision(&self, c: &mut Clients, node: &FleetNode) -> (pb::Node, pb::Job) {
        let registered = self.register(c, node).await;
        let job = c
            .nodes
            .provision_node(pb::ProvisionNodeRequest {
                node_id: registered.id.clone(),
                expected_version: 0,
            })
            .await
            .unwrap()
            .into_inner()
            .job
            .unwrap();
        let job = wait_job(c, &job.id).await;
        (registered, job)
    }
}

fn fleet_script(args: &[&str]) -> Output {
    std::process::Command::new(repo_root().join("scripts/fleet.sh"))
        .args(args)
        .output()
        .unwrap()
}
