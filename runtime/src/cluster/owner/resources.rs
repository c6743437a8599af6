//! The cluster as the head sees it: its status (what `raykit status` shows), and from it the
//! resources of the alive nodes, declared and free.

use std::collections::BTreeMap;
use std::time::Duration;

use super::Client;
use crate::cluster::proto::{ClusterStatus, Message};
use crate::error::{Error, ErrorKind, Result};

impl Client {
    /// The cluster as the head sees it now (what `raykit status` shows).
    pub(crate) fn status(&self) -> Result<ClusterStatus> {
        let (tx, rx) = std::sync::mpsc::channel();
        self.status_waiters.lock().push_back(tx);
        self.send(Message::StatusRequest)?;
        rx.recv_timeout(STATUS_TIMEOUT).map_err(|_| {
            Error::new(
                ErrorKind::Network,
                format!("the head did not describe the cluster within {STATUS_TIMEOUT:?}"),
            )
        })
    }
}

/// How long a program waits for the head to describe the cluster.
const STATUS_TIMEOUT: Duration = Duration::from_secs(10);

/// The resources of the cluster's alive nodes, declared and free now (free as of each node's
/// last report); `None` when the head does not answer.
pub(crate) fn resource_view(
    client: &Client,
) -> Option<(BTreeMap<String, f64>, BTreeMap<String, f64>)> {
    let mut total = BTreeMap::new();
    let mut available = BTreeMap::new();
    for node in nodes(client)?.into_iter().filter(|n| n.alive) {
        for (name, amount) in node.resources {
            *total.entry(name).or_insert(0.0) += amount;
        }
        for (name, free) in node.available {
            *available.entry(name).or_insert(0.0) += free;
        }
    }
    Some((total, available))
}

/// The cluster's nodes as the head lists them (alive and recently dead, the head's first);
/// `None` when the head does not answer.
pub(crate) fn nodes(client: &Client) -> Option<Vec<crate::runtime::NodeInfo>> {
    let status = client
        .status()
        .map_err(|e| tracing::warn!("cannot read the cluster's nodes: {e}"))
        .ok()?;
    let mut nodes: Vec<crate::runtime::NodeInfo> = status
        .nodes
        .into_iter()
        .map(|node| {
            let available = node
                .info
                .resources
                .iter()
                .map(|(name, amount)| {
                    let free = node.load.available.get(name).copied().unwrap_or(*amount);
                    (name.clone(), if node.alive { free } else { 0.0 })
                })
                .collect();
            crate::runtime::NodeInfo {
                node_id: node.info.node_id,
                alive: node.alive,
                address: node.info.address,
                is_head: node.head,
                resources: node.info.resources,
                available,
            }
        })
        .collect();
    // The head first, then in joining order (the sort is stable).
    nodes.sort_by_key(|n| !n.is_head);
    Some(nodes)
}
