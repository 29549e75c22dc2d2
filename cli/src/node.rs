//! `node list|show|add|update|provision|decommission|key|php|db`.

use clap::{Args, Subcommand};
use pressluft_client::labels::{label, short_time};
use pressluft_proto::v1::{
    CreateNodeRequest, DecommissionNodeRequest, GetControlPlaneKeyRequest,
    GetControlPlaneKeyResponse, GetDatabaseStatusRequest, GetNodeRequest, GetPhpVersionRequest,
    ListNodesRequest, Node, NodeStatus, ProvisionNodeRequest, ScanNodeHostKeyRequest,
    UpdateNodeRequest,
};
use serde_json::json;

use crate::error::CliError;
use crate::global::Ctx;
use crate::output::{Details, Table, message, opt_str, or_dash, yes_no};
use crate::watch::WaitArgs;

/// Page size for listing everything (the server's maximum).
const PAGE_SIZE: i32 = 500;

/// Subcommands of `pressluft node`.
#[derive(Debug, Subcommand)]
pub enum NodeCommand {
    /// List all nodes
    List,
    /// Show one node
    Show {
        /// Node id
        id: String,
    },
    /// Register a node and pin its SSH host key
    ///
    /// Without --host-key the key the node presents now is shown and must be confirmed (or
    /// --yes given): compare its fingerprint with `ssh-keygen -lf /etc/ssh/ssh_host_ed25519_key.pub`
    /// on the node.
    ///
    /// Example: pressluft node add --name web-1 --hostname 203.0.113.10 --yes
    Add(AddArgs),
    /// Change a node's name, SSH settings, public IP or pinned host key
    Update(UpdateArgs),
    /// Retire a node that has no environments left
    Decommission {
        /// Node id
        id: String,
    },
    /// The PHP version of the node's CLI and the versions installed
    Php {
        /// Node id
        id: String,
    },
    /// MariaDB on the node: up, version, uptime, connections
    Db {
        /// Node id
        id: String,
    },
    /// Start a node_provision job installing and hardening the web stack
    Provision {
        /// Node id
        id: String,
        #[command(flatten)]
        wait: WaitArgs,
    },
    /// Print the control plane's SSH public key, to add to a node's authorized_keys
    Key,
}

/// Arguments of `pressluft node add`.
#[derive(Debug, Args)]
pub struct AddArgs {
    /// Unique name (lowercase letters, digits, hyphens)
    #[arg(long)]
    pub name: String,
    /// Hostname or IP address to reach the node over SSH
    #[arg(long)]
    pub hostname: String,
    /// SSH port [default: 22]
    #[arg(long)]
    pub port: Option<u16>,
    /// SSH user, root or one with passwordless sudo [default: root]
    #[arg(long)]
    pub user: Option<String>,
    /// Public IP address domains must resolve to [default: the hostname, if an IP]
    #[arg(long, value_name = "IP")]
    pub public_ip: Option<String>,
    /// This is the control plane's own host (still managed over SSH)
    #[arg(long)]
    pub local: bool,
    /// Host key to pin ("ssh-ed25519 AAAA..."); without it the key presented now is shown
    #[arg(long, value_name = "KEY")]
    pub host_key: Option<String>,
    /// Pin the key the node presents without asking
    #[arg(long, short = 'y')]
    pub yes: bool,
}

/// Arguments of `pressluft node update`.
#[derive(Debug, Args)]
pub struct UpdateArgs {
    /// Node id
    pub id: String,
    /// New name
    #[arg(long)]
    pub name: Option<String>,
    /// SSH port
    #[arg(long)]
    pub port: Option<u16>,
    /// SSH user
    #[arg(long)]
    pub user: Option<String>,
    /// Public IP address
    #[arg(long, value_name = "IP")]
    pub public_ip: Option<String>,
    /// A new host key to pin (after the node was reinstalled)
    #[arg(long, value_name = "KEY")]
    pub host_key: Option<String>,
}

/// Runs a `node` subcommand.
pub async fn run(ctx: &Ctx, command: NodeCommand) -> Result<(), CliError> {
    let mut clients = ctx.clients().await?;
    match command {
        NodeCommand::List => {
            let nodes = crate::all_pages!(
                |token| clients.node.list_nodes(ListNodesRequest {
                    page_size: PAGE_SIZE,
                    page_token: token,
                    statuses: Vec::new(),
                }),
                nodes
            );
            ctx.emit(
                || nodes_table(&nodes),
                || json!({ "nodes": nodes.iter().map(message).collect::<Vec<_>>() }),
            )
        }
        NodeCommand::Show { id } => {
            let node = clients
                .node
                .get_node(GetNodeRequest { node_id: id })
                .await?
                .into_inner()
                .node
                .unwrap_or_default();
            ctx.emit(|| node_details(&node), || message(&node))
        }
        NodeCommand::Add(args) => add(ctx, &mut clients, args).await,
        NodeCommand::Update(args) => update(ctx, &mut clients, args).await,
        NodeCommand::Decommission { id } => {
            let node = clients
                .node
                .decommission_node(DecommissionNodeRequest {
                    node_id: id,
                    expected_version: 0,
                })
                .await?
                .into_inner()
                .node
                .unwrap_or_default();
            ctx.emit(|| node_details(&node), || message(&node))
        }
        NodeCommand::Php { id } => php(ctx, &mut clients, id).await,
        NodeCommand::Db { id } => database(ctx, &mut clients, id).await,
        NodeCommand::Provision { id, wait } => {
            let job = clients
                .node
                .provision_node(ProvisionNodeRequest {
                    node_id: id,
                    expected_version: 0,
                })
                .await?
                .into_inner()
                .job
                .unwrap_or_default();
            wait.finish(
                ctx,
                &mut clients,
                &job.id,
                || crate::job::job_details(&job),
                || message(&job),
            )
            .await
        }
        NodeCommand::Key => {
            let key = clients
                .node
                .get_control_plane_key(GetControlPlaneKeyRequest {})
                .await?
                .into_inner();
            ctx.emit(|| key_text(&key), || message(&key))
        }
    }
}

async fn add(
    ctx: &Ctx,
    clients: &mut pressluft_client::Clients,
    args: AddArgs,
) -> Result<(), CliError> {
    let host_key = match args.host_key {
        Some(key) => key,
        None => confirmed_host_key(clients, &args).await?,
    };
    let node = clients
        .node
        .create_node(CreateNodeRequest {
            name: args.name,
            hostname: args.hostname,
            ssh_port: args.port.map(u32::from).unwrap_or_default(),
            ssh_user: args.user.unwrap_or_default(),
            public_ip: args.public_ip.unwrap_or_default(),
            is_local: args.local,
            host_key,
        })
        .await?
        .into_inner()
        .node
        .unwrap_or_default();
    ctx.emit(|| node_details(&node), || message(&node))
}

async fn update(
    ctx: &Ctx,
    clients: &mut pressluft_client::Clients,
    args: UpdateArgs,
) -> Result<(), CliError> {
    let node = clients
        .node
        .update_node(UpdateNodeRequest {
            node_id: args.id,
            expected_version: 0,
            name: args.name,
            ssh_port: args.port.map(u32::from),
            ssh_user: args.user,
            public_ip: args.public_ip,
            host_key: args.host_key,
        })
        .await?
        .into_inner()
        .node
        .unwrap_or_default();
    ctx.emit(|| node_details(&node), || message(&node))
}

async fn php(
    ctx: &Ctx,
    clients: &mut pressluft_client::Clients,
    id: String,
) -> Result<(), CliError> {
    let php = clients
        .node_query
        .get_php_version(GetPhpVersionRequest {
            node_id: id,
            environment_id: String::new(),
        })
        .await?
        .into_inner();
    ctx.emit(
        || {
            Details::new()
                .field("CLI", &php.version)
                .field("Installed", php.installed_versions.join(", "))
                .render()
        },
        || json!({"version": php.version, "installed_versions": php.installed_versions}),
    )
}

async fn database(
    ctx: &Ctx,
    clients: &mut pressluft_client::Clients,
    id: String,
) -> Result<(), CliError> {
    let db = clients
        .node_query
        .get_database_status(GetDatabaseStatusRequest { node_id: id })
        .await?
        .into_inner();
    let uptime = db.uptime.map_or(0, |d| d.seconds);
    ctx.emit(
        || {
            Details::new()
                .field("Up", yes_no(db.up))
                .field("Version", or_dash(&db.version))
                .field("Uptime", crate::backup::duration_text(db.uptime.as_ref()))
                .field("Connections", db.connections.to_string())
                .render()
        },
        || {
            json!({
                "up": db.up,
                "version": opt_str(&db.version),
                "uptime_secs": uptime,
                "connections": db.connections,
            })
        },
    )
}

/// The host key the node presents, once the user confirmed its fingerprint (or gave --yes).
async fn confirmed_host_key(
    clients: &mut pressluft_client::Clients,
    args: &AddArgs,
) -> Result<String, CliError> {
    let scan = clients
        .node
        .scan_node_host_key(ScanNodeHostKeyRequest {
            hostname: args.hostname.clone(),
            ssh_port: args.port.map(u32::from).unwrap_or_default(),
        })
        .await?
        .into_inner();
    if args.yes {
        return Ok(scan.host_key);
    }
    if !std::io::IsTerminal::is_terminal(&std::io::stdin()) {
        return Err(CliError::usage(format!(
            "{} presents host key {}: confirm it with --yes, or pin a key with --host-key",
            args.hostname, scan.fingerprint
        )));
    }
    eprint!(
        "{} presents host key {}\nPin it (compare with ssh-keygen -lf on the node)? [y/N] ",
        args.hostname, scan.fingerprint
    );
    let mut answer = String::new();
    std::io::stdin()
        .read_line(&mut answer)
        .map_err(|err| CliError::other(format!("cannot read the answer: {err}")))?;
    if matches!(answer.trim(), "y" | "Y" | "yes") {
        Ok(scan.host_key)
    } else {
        Err(CliError::usage(
            "host key not confirmed; nothing was registered",
        ))
    }
}

fn nodes_table(nodes: &[Node]) -> String {
    let mut table = Table::new(["ID", "NAME", "HOSTNAME", "STATUS", "PHP", "LAST SEEN"]);
    for node in nodes {
        table.row([
            node.id.clone(),
            node.name.clone(),
            node.hostname.clone(),
            label::<NodeStatus>(node.status),
            or_dash(&node.php_versions.join(",")),
            short_time(node.last_seen_time.as_ref()),
        ]);
    }
    table.render()
}

fn node_details(node: &Node) -> String {
    Details::new()
        .field("ID", &node.id)
        .field("Name", &node.name)
        .field("Status", label::<NodeStatus>(node.status))
        .field_if("Message", &node.status_message)
        .field(
            "SSH",
            format!("{}@{}:{}", node.ssh_user, node.hostname, node.ssh_port),
        )
        .field("Public IP", or_dash(&node.public_ip))
        .field("Local", yes_no(node.is_local))
        .field("Host key", or_dash(&node.host_key_fingerprint))
        .field("PHP", or_dash(&node.php_versions.join(", ")))
        .field("Last seen", short_time(node.last_seen_time.as_ref()))
        .field("Created", short_time(node.create_time.as_ref()))
        .field("Updated", short_time(node.update_time.as_ref()))
        .field("Version", node.version.to_string())
        .render()
}

/// The key line first, so `pressluft node key | head -1 >> authorized_keys` works.
fn key_text(key: &GetControlPlaneKeyResponse) -> String {
    format!(
        "{}\nFingerprint: {}\n",
        crate::output::clean(&key.public_key),
        crate::output::clean(&key.fingerprint)
    )
}

#[cfg(test)]
mod tests {
    use pressluft_proto::v1::NodeStatus;
    use prost_types::Timestamp;

    use super::*;

    fn node() -> Node {
        Node {
            id: "6f1c".into(),
            name: "web-1".into(),
            hostname: "10.0.0.5".into(),
            ssh_port: 22,
            ssh_user: "root".into(),
            public_ip: "203.0.113.5".into(),
            is_local: false,
            host_key: "ssh-ed25519 AAAA".into(),
            host_key_fingerprint: "SHA256:abc".into(),
            status: NodeStatus::Active as i32,
            status_message: String::new(),
            php_versions: vec!["8.2".into(), "8.3".into()],
            last_seen_time: Some(Timestamp {
                seconds: 1_764_091_743,
                nanos: 250_000_000,
            }),
            create_time: Some(Timestamp {
                seconds: 1_764_000_000,
                nanos: 0,
            }),
            update_time: None,
            version: 3,
        }
    }

    #[test]
    fn table_lists_one_row_per_node() {
        let pending = Node {
            id: "7a2d".into(),
            name: "db".into(),
            hostname: "db.example.com".into(),
            status: NodeStatus::Pending as i32,
            ..Node::default()
        };
        assert_eq!(
            nodes_table(&[node(), pending]),
            "ID    NAME   HOSTNAME        STATUS   PHP      LAST SEEN\n\
             6f1c  web-1  10.0.0.5        active   8.2,8.3  2025-11-25T17:29:03Z\n\
             7a2d  db     db.example.com  pending  -        -\n"
        );
        assert_eq!(
            nodes_table(&[]),
            "ID  NAME  HOSTNAME  STATUS  PHP  LAST SEEN\n"
        );
    }

    #[test]
    fn details_show_connection_and_status() {
        let text = node_details(&node());
        assert!(
            text.starts_with("ID:         6f1c\nName:       web-1\n"),
            "{text}"
        );
        assert!(text.contains("Status:     active\n"), "{text}");
        assert!(text.contains("SSH:        root@10.0.0.5:22\n"), "{text}");
        assert!(text.contains("Updated:    -\n"), "{text}");
        assert!(!text.contains("Message"), "{text}");
    }

    #[test]
    fn json_is_the_canonical_mapping_with_proto_field_names() {
        let value = message(&node());
        assert_eq!(value["status"], "NODE_STATUS_ACTIVE");
        assert_eq!(value["last_seen_time"], "2025-11-25T17:29:03.250Z");
        assert!(value.get("update_time").is_none());
        assert!(value.get("status_message").is_none());
        assert_eq!(value["php_versions"], json!(["8.2", "8.3"]));
        assert_eq!(value["ssh_port"], 22);
        assert_eq!(value["version"], 3);
    }

    #[test]
    fn key_prints_the_authorized_keys_line_first() {
        let key = GetControlPlaneKeyResponse {
            public_key: "ssh-ed25519 AAAAC3 pressluft".into(),
            fingerprint: "SHA256:xyz".into(),
        };
        assert_eq!(
            key_text(&key),
            "ssh-ed25519 AAAAC3 pressluft\nFingerprint: SHA256:xyz\n"
        );
        assert_eq!(message(&key)["fingerprint"], "SHA256:xyz");
    }
}
