//! Where a new site goes when its request names no node and no default node is set: a pure
//! rule over the nodes' states and loads, table-tested.

use pressluft_proto::v1::ErrorReason;

use super::guard::Refusal;
use super::{NodeId, NodeStatus};

/// A node as placement sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NodeLoad {
    pub id: NodeId,
    pub name: String,
    pub status: NodeStatus,
    /// Environments on the node that are not deleted.
    pub environments: i64,
    /// Creation time (ms): the older node wins a tie.
    pub created_at: i64,
}

/// The active node with the fewest environments (the older one on a tie). With no active node,
/// the only node there is while it is still being set up (a first site queued behind the first
/// provisioning); otherwise a refusal that says what to do.
pub fn place_site(nodes: &[NodeLoad]) -> Result<NodeId, Refusal> {
    let least_loaded = nodes
        .iter()
        .filter(|n| n.status == NodeStatus::Active)
        .min_by_key(|n| (n.environments, n.created_at));
    if let Some(node) = least_loaded {
        return Ok(node.id);
    }
    let usable: Vec<&NodeLoad> = nodes.iter().filter(|n| n.status.accepts_work()).collect();
    match usable.as_slice() {
        [only] if matches!(only.status, NodeStatus::Pending | NodeStatus::Provisioning) => {
            Ok(only.id)
        }
        [] if nodes.is_empty() => Err(Refusal {
            reason: ErrorReason::NoDefaultNode,
            message: "no node to host the site: register a node first".into(),
        }),
        _ => Err(Refusal {
            reason: ErrorReason::NoDefaultNode,
            message: format!(
                "no node is active to host the site ({}): provision one, or name one with node_id",
                nodes
                    .iter()
                    .map(|n| format!("{} is {}", n.name, n.status))
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn node(name: &str, status: NodeStatus, environments: i64, created_at: i64) -> NodeLoad {
        NodeLoad {
            id: NodeId::new(),
            name: name.into(),
            status,
            environments,
            created_at,
        }
    }

    #[test]
    fn the_least_loaded_active_node_takes_the_site() {
        use NodeStatus::{Active, Decommissioned, Failed, Pending, Provisioning, Unreachable};
        let a = node("a", Active, 3, 1);
        let b = node("b", Active, 1, 2);
        let c = node("c", Active, 1, 3);
        let idle_but_unreachable = node("u", Unreachable, 0, 0);
        let idle_but_failed = node("f", Failed, 0, 0);
        let provisioning = node("p", Provisioning, 0, 0);
        let pending = node("q", Pending, 0, 0);
        let decommissioned = node("d", Decommissioned, 0, 0);
        // (nodes, the chosen one's name or the refusal's text)
        let table: Vec<(Vec<&NodeLoad>, Result<&str, &str>)> = vec![
            (vec![&a, &b, &c], Ok("b")),
            (vec![&c, &b, &a], Ok("b")),
            (vec![&a, &idle_but_unreachable, &idle_but_failed], Ok("a")),
            (vec![&a, &provisioning], Ok("a")),
            (vec![&provisioning], Ok("p")),
            (vec![&pending], Ok("q")),
            (vec![], Err("register a node first")),
            (vec![&idle_but_unreachable], Err("u is unreachable")),
            (vec![&idle_but_failed], Err("f is failed")),
            (vec![&decommissioned], Err("d is decommissioned")),
            (vec![&provisioning, &pending], Err("provision one")),
        ];
        for (nodes, expected) in table {
            let owned: Vec<NodeLoad> = nodes.iter().map(|n| (*n).clone()).collect();
            let got = place_site(&owned);
            match (expected, got) {
                (Ok(name), Ok(id)) => {
                    let chosen = owned.iter().find(|n| n.id == id).expect("one of them");
                    assert_eq!(chosen.name, name, "{owned:?}");
                }
                (Err(text), Err(refusal)) => {
                    assert_eq!(refusal.reason, ErrorReason::NoDefaultNode);
                    assert!(refusal.message.contains(text), "{}", refusal.message);
                }
                (expected, got) => panic!("{owned:?}: expected {expected:?}, got {got:?}"),
            }
        }
    }
}
