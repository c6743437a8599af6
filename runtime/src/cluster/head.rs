//! The head's state: the node table (membership, declared and available resources, liveness
//! by heartbeat) and the job table, and the loop that serves one registered node.
//!
//! The head decides who is alive; it never carries task arguments or objects (those go node to
//! node). The actor directory and the cluster resource view used for placement belong here too
//! when they arrive.

use std::collections::BTreeMap;
use std::fmt;
use std::sync::Arc;
use std::time::{Duration, Instant};

use parking_lot::Mutex;
use tokio_util::sync::CancellationToken;

use super::wire::{
    ActorCounts, ClusterStatus, Connection, Message, NodeInfo, NodeLoad, NodeStatus, TaskCounts,
};
use crate::error::{Error, ErrorKind, Result};
use crate::runtime::NodeId;

/// A node whose last heartbeat is older than this is declared dead.
pub const NODE_TIMEOUT: Duration = Duration::from_secs(3);

/// The death reason of a node that left on purpose.
const LEFT: &str = "stopped";

/// How often the head looks for nodes that stopped sending heartbeats.
const MONITOR_INTERVAL: Duration = Duration::from_millis(250);

/// The head of a cluster: shared by every connection its daemon serves.
pub struct Head {
    node_id: NodeId,
    tables: Mutex<Tables>,
}

impl fmt::Debug for Head {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Head")
            .field("node_id", &self.node_id)
            .finish_non_exhaustive()
    }
}

#[derive(Default)]
struct Tables {
    /// Nodes in joining order; dead nodes stay listed with the reason.
    nodes: Vec<NodeEntry>,
    jobs: JobTable,
    next_session: u64,
}

struct NodeEntry {
    info: NodeInfo,
    alive: bool,
    death_reason: Option<String>,
    load: NodeLoad,
    last_heartbeat: Instant,
    /// Which registration connection speaks for the node: a stale connection ending must not
    /// kill a node that has reconnected.
    session: u64,
}

/// The jobs (drivers) of the cluster. Empty until drivers register jobs; the job work fills it.
#[derive(Debug, Default)]
struct JobTable {
    jobs: BTreeMap<u64, JobEntry>,
}

#[derive(Debug)]
struct JobEntry {}

impl Head {
    /// A head whose own node is `node_id`.
    pub fn new(node_id: NodeId) -> Head {
        Head {
            node_id,
            tables: Mutex::new(Tables::default()),
        }
    }

    /// The head's own node.
    pub fn node_id(&self) -> NodeId {
        self.node_id
    }

    /// Adds (or re-adds, after a reconnect) a node and returns its session number. A node
    /// already declared dead cannot come back under the same id: its tasks and objects are
    /// gone, so it must restart with a new one.
    fn register(&self, info: NodeInfo) -> Result<u64> {
        let mut t = self.tables.lock();
        t.next_session += 1;
        let session = t.next_session;
        let load = NodeLoad {
            available: info.resources.clone(),
            ..NodeLoad::default()
        };
        if let Some(entry) = t.nodes.iter_mut().find(|n| n.info.node_id == info.node_id) {
            if !entry.alive {
                return Err(Error::new(
                    ErrorKind::Config,
                    format!(
                        "{} was declared dead ({}); restart its daemon to join again",
                        info.node_id,
                        entry.death_reason.as_deref().unwrap_or("unknown reason")
                    ),
                ));
            }
            tracing::info!(node = %info.node_id, address = %info.address, "node reconnected");
            entry.info = info;
            entry.load = load;
            entry.last_heartbeat = Instant::now();
            entry.session = session;
            return Ok(session);
        }
        tracing::info!(
            node = %info.node_id,
            address = %info.address,
            resources = ?info.resources,
            "node joined"
        );
        t.nodes.push(NodeEntry {
            info,
            alive: true,
            death_reason: None,
            load,
            last_heartbeat: Instant::now(),
            session,
        });
        Ok(session)
    }

    /// Records a heartbeat; false when the node is dead or another session speaks for it.
    fn heartbeat(&self, node_id: NodeId, session: u64, load: NodeLoad) -> bool {
        let mut t = self.tables.lock();
        match t.nodes.iter_mut().find(|n| n.info.node_id == node_id) {
            Some(n) if n.alive && n.session == session => {
                n.load = load;
                n.last_heartbeat = Instant::now();
                true
            }
            _ => false,
        }
    }

    /// Declares a node dead if `session` still speaks for it.
    fn node_died(&self, node_id: NodeId, session: u64, reason: &str) {
        let mut t = self.tables.lock();
        if let Some(n) = t
            .nodes
            .iter_mut()
            .find(|n| n.info.node_id == node_id && n.session == session && n.alive)
        {
            mark_dead(n, reason.to_owned());
        }
    }

    /// Declares dead every node whose last heartbeat is older than [`NODE_TIMEOUT`].
    fn check_heartbeats(&self) {
        let now = Instant::now();
        let mut t = self.tables.lock();
        for n in t.nodes.iter_mut().filter(|n| n.alive) {
            let silent = now.saturating_duration_since(n.last_heartbeat);
            if silent > NODE_TIMEOUT {
                mark_dead(n, format!("no heartbeat for {:.1} s", silent.as_secs_f64()));
            }
        }
    }

    /// The cluster as the head sees it now.
    pub fn status(&self) -> ClusterStatus {
        let now = Instant::now();
        let t = self.tables.lock();
        let mut tasks = TaskCounts::default();
        let mut actors = ActorCounts::default();
        let nodes = t
            .nodes
            .iter()
            .map(|n| {
                if n.alive {
                    tasks += n.load.tasks;
                    actors += n.load.actors;
                }
                NodeStatus {
                    info: n.info.clone(),
                    head: n.info.node_id == self.node_id,
                    alive: n.alive,
                    death_reason: n.death_reason.clone(),
                    load: n.load.clone(),
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
            jobs: t.jobs.jobs.len() as u64,
        }
    }

    /// Declares silent nodes dead until `shutdown`.
    pub async fn monitor(self: Arc<Self>, shutdown: CancellationToken) {
        let mut tick = tokio::time::interval(MONITOR_INTERVAL);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = tick.tick() => self.check_heartbeats(),
                _ = shutdown.cancelled() => return,
            }
        }
    }

    /// Serves one node from its `RegisterNode` on: answers the registration, then takes its
    /// heartbeats until it leaves, its connection breaks or `shutdown`.
    pub async fn serve_node(
        &self,
        mut conn: Connection,
        info: NodeInfo,
        shutdown: &CancellationToken,
    ) {
        let node_id = info.node_id;
        let session = match self.register(info) {
            Ok(s) => s,
            Err(error) => {
                tracing::warn!(node = %node_id, "registration refused: {error}");
                let _ = conn.send(&Message::Failed { error }).await;
                return;
            }
        };
        let registered = Message::Registered {
            head_node_id: self.node_id,
        };
        if let Err(e) = conn.send(&registered).await {
            self.node_died(node_id, session, &format!("connection lost: {e}"));
            return;
        }
        loop {
            let msg = tokio::select! {
                m = conn.recv() => m,
                _ = shutdown.cancelled() => return,
            };
            match msg {
                Ok(Message::Heartbeat(load)) => {
                    if !self.heartbeat(node_id, session, load) {
                        let error = Error::new(
                            ErrorKind::Config,
                            format!("{node_id} is no longer a member of this cluster"),
                        );
                        let _ = conn.send(&Message::Failed { error }).await;
                        return;
                    }
                }
                Ok(Message::UnregisterNode) => {
                    self.node_died(node_id, session, LEFT);
                    return;
                }
                Ok(other) => {
                    let error = Error::new(
                        ErrorKind::Protocol,
                        format!("unexpected {} message from a node", other.name()),
                    );
                    tracing::warn!(node = %node_id, "{error}");
                    let _ = conn.send(&Message::Failed { error }).await;
                    self.node_died(node_id, session, "protocol error");
                    return;
                }
                Err(e) => {
                    self.node_died(node_id, session, &format!("connection lost: {e}"));
                    return;
                }
            }
        }
    }
}

fn mark_dead(n: &mut NodeEntry, reason: String) {
    if reason == LEFT {
        tracing::info!(node = %n.info.node_id, address = %n.info.address, "node left");
    } else {
        tracing::warn!(node = %n.info.node_id, address = %n.info.address, "node dead: {reason}");
    }
    n.alive = false;
    n.load.available.clear();
    n.death_reason = Some(reason);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn info(id: NodeId) -> NodeInfo {
        NodeInfo {
            node_id: id,
            address: "127.0.0.1:1".into(),
            resources: [("CPU".to_owned(), 2.0)].into_iter().collect(),
            pid: 1,
        }
    }

    #[test]
    fn a_dead_node_stays_dead_and_a_stale_session_kills_nothing() {
        let id = super::super::new_node_id().unwrap();
        let head = Head::new(id);
        let s1 = head.register(info(id)).unwrap();
        let s2 = head.register(info(id)).unwrap();
        head.node_died(id, s1, "old connection");
        assert!(head.status().nodes[0].alive);
        assert!(head.heartbeat(id, s2, NodeLoad::default()));
        head.node_died(id, s2, "gone");
        let st = head.status();
        assert!(!st.nodes[0].alive);
        assert_eq!(st.nodes[0].death_reason.as_deref(), Some("gone"));
        assert!(!head.heartbeat(id, s2, NodeLoad::default()));
        assert!(head.register(info(id)).is_err());
    }
}
