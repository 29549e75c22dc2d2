//! The periodic reachability check: every active or unreachable node gets one command through
//! its pooled connection per round; one that does not answer becomes unreachable (placement
//! passes it over, `ListNodes` shows why), and it is active again by itself once it answers.

use std::time::Duration;

use tokio_util::sync::CancellationToken;

use crate::error::Result;
use crate::model::NodeStatus;
use crate::queries::{self, NodeQueries};

/// One round over the nodes, all at once (each within the query cap); the nodes whose status
/// changed.
pub async fn check_nodes(queries: &NodeQueries) -> Result<usize> {
    let nodes = queries.store.nodes_to_check().await?;
    let checks = nodes.iter().map(|node| async move {
        let contact = queries::contact(queries, node).await;
        let message = match &contact {
            Ok(()) => String::new(),
            Err(e) => format!("does not answer: {e}"),
        };
        let status = queries
            .store
            .record_node_contact(node.id, contact.is_ok(), &message)
            .await?;
        if status != node.status && status == NodeStatus::Unreachable {
            tracing::warn!(node.id = %node.id, node.name = %node.name, %message, "node unreachable");
        } else if status != node.status {
            tracing::info!(node.id = %node.id, node.name = %node.name, "node answers again");
        }
        Ok::<bool, crate::error::Error>(status != node.status)
    });
    let mut changed = 0;
    for outcome in futures::future::join_all(checks).await {
        changed += usize::from(outcome?);
    }
    Ok(changed)
}

/// The check every `interval`, the first one `interval` after start (provisioning marks nodes
/// active itself).
pub async fn reachability_checks(
    queries: NodeQueries,
    interval: Duration,
    shutdown: CancellationToken,
) {
    let mut tick = tokio::time::interval_at(tokio::time::Instant::now() + interval, interval);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            () = shutdown.cancelled() => return,
            _ = tick.tick() => {
                if let Err(e) = check_nodes(&queries).await {
                    tracing::warn!(error = %e, "node reachability check failed");
                }
            }
        }
    }
}
