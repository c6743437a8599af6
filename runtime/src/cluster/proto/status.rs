//! What the head knows of the cluster's members: what a node declares when it joins
//! ([`NodeInfo`]), what it reports in each heartbeat ([`NodeLoad`]), and the cluster as the head
//! sees it ([`ClusterStatus`]), the answer to `raykit status`.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::runtime::NodeId;

/// What a node declares when it joins.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NodeInfo {
    /// The node's id, chosen by the node.
    pub node_id: NodeId,
    /// Where the node's daemon listens (`HOST:PORT`), as other hosts reach it.
    pub address: String,
    /// The resources the node declares: `CPU`, `GPU` and custom names.
    pub resources: BTreeMap<String, f64>,
    /// The process id of the node's daemon, on its host.
    pub pid: u32,
}

/// What a node reports in each heartbeat.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct NodeLoad {
    /// The resources not in use right now.
    pub available: BTreeMap<String, f64>,
    /// The node's tasks, by state.
    pub tasks: TaskCounts,
    /// The node's actors, by state.
    pub actors: ActorCounts,
    /// How many objects the node's store holds (protocol version 3).
    pub objects: u64,
    /// Their encoded size in bytes (protocol version 3).
    pub object_bytes: u64,
}

/// Tasks by state.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct TaskCounts {
    /// Waiting for arguments or resources.
    pub waiting: u64,
    /// Running on a worker.
    pub running: u64,
    /// Finished with a value.
    pub finished: u64,
    /// Finished with an error.
    pub failed: u64,
}

impl std::ops::AddAssign for TaskCounts {
    fn add_assign(&mut self, o: Self) {
        self.waiting += o.waiting;
        self.running += o.running;
        self.finished += o.finished;
        self.failed += o.failed;
    }
}

/// Actors by state.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct ActorCounts {
    /// Waiting for a node or for `new` to finish.
    pub pending: u64,
    /// Alive and serving calls.
    pub alive: u64,
    /// Being restarted after a failure.
    pub restarting: u64,
    /// Dead for good.
    pub dead: u64,
}

impl std::ops::AddAssign for ActorCounts {
    fn add_assign(&mut self, o: Self) {
        self.pending += o.pending;
        self.alive += o.alive;
        self.restarting += o.restarting;
        self.dead += o.dead;
    }
}

/// One node as the head sees it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NodeStatus {
    /// What the node declared when it joined.
    pub info: NodeInfo,
    /// Whether this node runs in the head's process.
    pub head: bool,
    /// Whether the node is alive (heartbeats arriving).
    pub alive: bool,
    /// Why the node is dead, when it is.
    pub death_reason: Option<String>,
    /// The node's last report.
    pub load: NodeLoad,
    /// Milliseconds since the node's last heartbeat.
    pub since_heartbeat_ms: u64,
}

/// The cluster as the head sees it: the answer to
/// [`Message::StatusRequest`](super::Message::StatusRequest).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ClusterStatus {
    /// The head's node.
    pub head_node_id: NodeId,
    /// Every node that ever joined, alive or dead, in joining order.
    pub nodes: Vec<NodeStatus>,
    /// Tasks by state, summed over alive nodes.
    pub tasks: TaskCounts,
    /// Actors by state, summed over alive nodes.
    pub actors: ActorCounts,
    /// Jobs (drivers) registered with the head.
    pub jobs: u64,
    /// Objects in the head's object table (protocol version 3).
    pub objects: u64,
    /// Tasks the head keeps (running, waiting, or the lineage of objects still referenced;
    /// protocol version 3).
    pub lineage: u64,
}
