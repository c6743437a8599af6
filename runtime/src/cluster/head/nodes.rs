//! Membership: the node table (each node's declared resources, load, session and
//! incarnation), liveness by heartbeat, and the history of the dead nodes that left it.

use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use super::{Head, Tables};
use crate::cluster::proto::{Message, NodeInfo, NodeLoad, NodeStatus};
use crate::runtime::NodeId;

/// A node whose last heartbeat is older than this is declared dead.
pub const NODE_TIMEOUT: Duration = Duration::from_secs(3);

/// [`NODE_TIMEOUT`], or `RAYKIT_NODE_TIMEOUT_MS` when set (read once).
fn node_timeout() -> Duration {
    static TIMEOUT: std::sync::OnceLock<Duration> = std::sync::OnceLock::new();
    *TIMEOUT.get_or_init(|| {
        std::env::var("RAYKIT_NODE_TIMEOUT_MS")
            .ok()
            .and_then(|v| v.trim().parse().ok())
            .map_or(NODE_TIMEOUT, Duration::from_millis)
    })
}

/// The death reason of a node that left on purpose.
pub(super) const LEFT: &str = "stopped";

/// How long a dead node stays in the head's table (for `raykit status`, and so that it hears
/// it must rejoin) before it moves to the history; `RAYKIT_DEAD_NODE_GRACE_MS` overrides it.
pub const DEAD_NODE_GRACE: Duration = Duration::from_secs(60);

/// How many removed dead nodes the head remembers.
pub const DEAD_HISTORY: usize = 32;

/// [`DEAD_NODE_GRACE`], or `RAYKIT_DEAD_NODE_GRACE_MS` when set to a number.
pub(super) fn dead_node_grace() -> Duration {
    std::env::var("RAYKIT_DEAD_NODE_GRACE_MS")
        .ok()
        .and_then(|v| v.trim().parse().ok())
        .map_or(DEAD_NODE_GRACE, Duration::from_millis)
}

/// How often the head looks for nodes that stopped sending heartbeats.
const MONITOR_INTERVAL: Duration = Duration::from_millis(250);

pub(super) struct NodeEntry {
    pub(super) info: NodeInfo,
    pub(super) alive: bool,
    pub(super) death_reason: Option<String>,
    pub(super) load: NodeLoad,
    pub(super) last_heartbeat: Instant,
    /// Which registration connection speaks for the node: a stale connection ending must not
    /// kill a node that has reconnected, and what it reports counts for nothing.
    pub(super) session: u64,
    /// The node's incarnation: a node declared dead comes back only as a higher one.
    pub(super) incarnation: u64,
    /// When the node was declared dead.
    pub(super) died_at: Option<Instant>,
}

impl Head {
    /// Adds (or re-adds) a node as `incarnation` and returns its session number.
    ///
    /// A reconnect of the incarnation the head counts alive keeps the node's tasks and
    /// objects. A `fresh` incarnation above the one the head knows replaces it: what the old
    /// one ran is retried or failed, and the node starts with all its resources free. Anything
    /// else (a dead or unknown incarnation reconnecting, a fresh one not above the last) is
    /// answered with the lowest incarnation the head accepts (`Err`): the node must reset.
    pub(super) fn register(
        &self,
        info: NodeInfo,
        incarnation: u64,
        fresh: bool,
        outbox: mpsc::UnboundedSender<Message>,
    ) -> std::result::Result<u64, u64> {
        let mut t = self.tables.lock();
        t.next_session += 1;
        let session = t.next_session;
        let load = NodeLoad {
            available: info.resources.clone(),
            ..NodeLoad::default()
        };
        let node_id = info.node_id;
        let known = t
            .nodes
            .iter()
            .find(|n| n.info.node_id == node_id)
            .map(|n| (n.alive, n.incarnation))
            .or_else(|| {
                // A node forgotten after its grace period comes back only as a higher one.
                t.history
                    .iter()
                    .rev()
                    .find(|n| n.info.node_id == node_id)
                    .map(|n| (false, n.incarnation))
                    .filter(|(_, known)| !fresh || incarnation <= *known)
            });
        match known {
            Some((true, known)) if !fresh && incarnation == known => {
                tracing::info!(node = %node_id, address = %info.address, "node reconnected");
            }
            Some((alive, known)) if fresh && incarnation > known => {
                if alive {
                    t.sched
                        .node_lost(node_id, "it came back as a new incarnation");
                }
                tracing::info!(node = %node_id, address = %info.address, incarnation, "node rejoined as a new incarnation");
            }
            Some((_, known)) => return Err(known.max(incarnation) + 1),
            None if fresh => {
                tracing::info!(
                    node = %node_id,
                    address = %info.address,
                    resources = ?info.resources,
                    incarnation,
                    "node joined"
                );
            }
            None => return Err(incarnation + 1),
        }
        t.sched
            .add_node(node_id, info.address.clone(), &info.resources, outbox);
        match t.nodes.iter_mut().find(|n| n.info.node_id == node_id) {
            Some(entry) => {
                entry.info = info;
                entry.alive = true;
                entry.death_reason = None;
                entry.load = load;
                entry.last_heartbeat = Instant::now();
                entry.session = session;
                entry.incarnation = incarnation;
                entry.died_at = None;
            }
            None => t.nodes.push(NodeEntry {
                info,
                alive: true,
                death_reason: None,
                load,
                last_heartbeat: Instant::now(),
                session,
                incarnation,
                died_at: None,
            }),
        }
        Ok(session)
    }

    /// Whether `session` speaks for `node_id`, alive: only then does what it reports count.
    pub(super) fn current(t: &Tables, node_id: NodeId, session: u64) -> bool {
        t.nodes
            .iter()
            .any(|n| n.info.node_id == node_id && n.session == session && n.alive)
    }

    /// Records a heartbeat of `session`, which joined as `incarnation`. `Err(None)` when
    /// another session speaks for the node (this one is stale); `Err(Some((at_least, why)))`
    /// when the head no longer counts that incarnation as a member.
    pub(super) fn heartbeat(
        &self,
        node_id: NodeId,
        session: u64,
        incarnation: u64,
        load: NodeLoad,
    ) -> std::result::Result<(), Option<(u64, String)>> {
        let mut t = self.tables.lock();
        match t.nodes.iter_mut().find(|n| n.info.node_id == node_id) {
            Some(n) if n.alive && n.session == session => {
                n.load = load;
                n.last_heartbeat = Instant::now();
                Ok(())
            }
            Some(n) if n.alive => Err(None),
            Some(n) => Err(Some((
                n.incarnation.max(incarnation) + 1,
                format!(
                    "declared dead: {}",
                    n.death_reason.as_deref().unwrap_or("unknown reason")
                ),
            ))),
            None => Err(Some((
                incarnation + 1,
                "not a member of this cluster".to_owned(),
            ))),
        }
    }

    /// Declares a node dead if `session` still speaks for it.
    pub(super) fn node_died(&self, node_id: NodeId, session: u64, reason: &str) {
        let mut t = self.tables.lock();
        if let Some(n) = t
            .nodes
            .iter_mut()
            .find(|n| n.info.node_id == node_id && n.session == session && n.alive)
        {
            mark_dead(n, reason.to_owned());
            t.sched.node_lost(node_id, reason);
        }
    }

    /// Declares dead every node whose last heartbeat is older than [`NODE_TIMEOUT`] (or
    /// `RAYKIT_NODE_TIMEOUT_MS`).
    pub(super) fn check_heartbeats(&self) {
        let now = Instant::now();
        let mut t = self.tables.lock();
        let mut dead = Vec::new();
        for n in t.nodes.iter_mut().filter(|n| n.alive) {
            let silent = now.saturating_duration_since(n.last_heartbeat);
            if silent > node_timeout() {
                let reason = format!("no heartbeat for {:.1} s", silent.as_secs_f64());
                mark_dead(n, reason.clone());
                dead.push((n.info.node_id, reason));
            }
        }
        for (node_id, reason) in dead {
            t.sched.node_lost(node_id, &reason);
        }
        self.forget_dead(&mut t, now);
    }

    /// Moves the nodes dead for longer than the grace period from the table to the history,
    /// which keeps the last [`DEAD_HISTORY`].
    fn forget_dead(&self, t: &mut Tables, now: Instant) {
        let grace = self.dead_grace;
        let expired = |n: &NodeEntry| {
            !n.alive
                && n.died_at
                    .is_some_and(|d| now.saturating_duration_since(d) >= grace)
        };
        if !t.nodes.iter().any(expired) {
            return;
        }
        let (gone, kept): (Vec<NodeEntry>, Vec<NodeEntry>) =
            std::mem::take(&mut t.nodes).into_iter().partition(expired);
        t.nodes = kept;
        for n in gone {
            tracing::info!(node = %n.info.node_id, "a dead node leaves the table");
            t.sched.forget_node(n.info.node_id);
            t.history.retain(|h| h.info.node_id != n.info.node_id);
            t.history.push_back(n);
        }
        while t.history.len() > DEAD_HISTORY {
            t.history.pop_front();
        }
    }

    /// The dead nodes removed from the table, oldest first (at most [`DEAD_HISTORY`]).
    pub fn dead_nodes(&self) -> Vec<NodeStatus> {
        let now = Instant::now();
        let t = self.tables.lock();
        t.history
            .iter()
            .map(|n| NodeStatus {
                info: n.info.clone(),
                head: n.info.node_id == self.node_id,
                alive: false,
                death_reason: n.death_reason.clone(),
                load: n.load.clone(),
                since_heartbeat_ms: u64::try_from(
                    now.saturating_duration_since(n.last_heartbeat).as_millis(),
                )
                .unwrap_or(u64::MAX),
            })
            .collect()
    }

    /// Declares silent nodes dead until `shutdown`.
    pub async fn monitor(self: Arc<Self>, shutdown: CancellationToken) {
        let mut tick = tokio::time::interval(MONITOR_INTERVAL);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = tick.tick() => {
                    self.check_heartbeats();
                    self.tables.lock().sched.expire_unknown(Instant::now());
                }
                _ = shutdown.cancelled() => return,
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
    n.died_at = Some(Instant::now());
}
