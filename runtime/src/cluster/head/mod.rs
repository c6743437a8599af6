//! The head's state: the node table (membership, declared resources, liveness by heartbeat),
//! the job table with the jobs' executables, and the [`Scheduler`] of tasks and objects; the
//! loops that serve one registered node and one driver.
//!
//! The head decides who is alive and where each task runs; it never carries task arguments or
//! results between nodes (those go node to node). Values a driver puts are stored on the head's
//! own node, like any node's objects.
//!
//! Its parts, after Ray's managers:
//!
//! - `nodes`: membership, heartbeats and the history of dead nodes; `jobs`: the job table and
//!   what a job's end cancels; `exes`: the jobs' executables, uploaded and sent to nodes.
//! - `serve_node`, `serve_driver`: the loops of a node's and a driver's connection, written by
//!   `pump`; `relay`: worker output from the nodes to the drivers.
//! - The [`Scheduler`] (`scheduler`) and its parts: `resources` (the nodes' resources, CPU
//!   lending), `objects` and `freeing` (the object directory and freeing by ownership),
//!   `tasks`, `dependencies` (arguments, lineage), `placement` (queue, dispatch, held tasks),
//!   `actors` (the actor directory), `unknown` (ids nobody made) and `unreachable` (objects
//!   whose holder does not answer).

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use parking_lot::Mutex;

use crate::cluster::node::exe::ExeCache;
use crate::cluster::node::store::ObjectStore;
use crate::cluster::proto::{ClusterStatus, NodeStatus};
use crate::runtime::NodeId;

use jobs::JobTable;
use nodes::NodeEntry;
use scheduler::Scheduler;

mod actors;
mod dependencies;
mod exes;
mod freeing;
mod jobs;
mod nodes;
mod objects;
mod placement;
mod pump;
mod relay;
mod resources;
#[doc(hidden)]
pub mod scheduler;
mod serve_driver;
mod serve_node;
mod tasks;
mod unknown;
mod unreachable;

pub(crate) use exes::{private_dir, ExeWriter};
pub use nodes::{DEAD_HISTORY, DEAD_NODE_GRACE, NODE_TIMEOUT};
pub(crate) use pump::next_output;

/// The head of a cluster: shared by every connection its daemon serves.
pub struct Head {
    node_id: NodeId,
    tables: Mutex<Tables>,
    /// The head's node's object store (puts land here).
    store: Arc<ObjectStore>,
    /// The executables drivers uploaded, by hash; those of jobs still running are in use.
    exes: ExeCache,
    /// How long a dead node stays in the table.
    dead_grace: Duration,
    /// Where worker output goes (nodes to drivers): a lock of its own, off the tables'.
    relay: Mutex<relay::Relay>,
}

impl std::fmt::Debug for Head {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Head")
            .field("node_id", &self.node_id)
            .finish_non_exhaustive()
    }
}

struct Tables {
    /// Nodes in joining order; dead nodes stay listed with the reason for the grace period.
    nodes: Vec<NodeEntry>,
    /// The last [`DEAD_HISTORY`] dead nodes removed from `nodes`, oldest first.
    history: std::collections::VecDeque<NodeEntry>,
    jobs: JobTable,
    next_session: u64,
    sched: Scheduler,
}

impl Tables {
    /// How many nodes the scheduler keeps state for.
    #[cfg(test)]
    fn sched_nodes(&self) -> usize {
        self.sched.node_count()
    }
}

impl Head {
    /// A head whose own node is `node_id`, whose node stores objects in `store`, keeping
    /// uploaded executables under `dir` (at most `exe_cap` bytes of those whose jobs ended).
    pub fn new(node_id: NodeId, store: Arc<ObjectStore>, dir: PathBuf, exe_cap: u64) -> Head {
        Head {
            node_id,
            tables: Mutex::new(Tables {
                nodes: Vec::new(),
                history: std::collections::VecDeque::new(),
                jobs: JobTable::default(),
                next_session: 0,
                sched: Scheduler::new(node_id, store.clone()),
            }),
            store,
            exes: ExeCache::new(dir.join("exe"), exe_cap),
            dead_grace: nodes::dead_node_grace(),
            relay: Mutex::default(),
        }
    }

    /// The head's own node.
    pub fn node_id(&self) -> NodeId {
        self.node_id
    }

    /// The cluster as the head sees it now.
    pub fn status(&self) -> ClusterStatus {
        let now = Instant::now();
        let t = self.tables.lock();
        let tasks = t.sched.counts();
        let (objects, lineage) = t.sched.tables();
        // The head's directory knows every actor, also those no node hosts (pending, dead).
        let actors = t.sched.actor_counts();
        let nodes = t
            .nodes
            .iter()
            .map(|n| {
                let mut load = n.load.clone();
                if n.alive {
                    // The head's accounting is the one placement uses.
                    if let Some(available) = t.sched.available(n.info.node_id) {
                        load.available = available;
                    }
                }
                NodeStatus {
                    info: n.info.clone(),
                    head: n.info.node_id == self.node_id,
                    alive: n.alive,
                    death_reason: n.death_reason.clone(),
                    load,
                    since_heartbeat_ms: u64::try_from(
                        now.saturating_duration_since(n.last_heartbeat).as_millis(),
                    )
                    .unwrap_or(u64::MAX),
                }
            })
            .collect();
        ClusterStatus {
            head_node_id: self.node_id,
            nodes,
            tasks,
            actors,
            jobs: t.jobs.jobs.values().filter(|j| j.running).count() as u64,
            objects,
            lineage,
        }
    }
}

#[cfg(test)]
mod tests;
