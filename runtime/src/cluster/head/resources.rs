//! The resource view: the nodes the scheduler places work on, what each declares and has
//! free (in fixed point), which tasks fit where, nodes joining and dying, and the CPU a task
//! blocked in `get`/`wait` lends to others.

use std::collections::{BTreeMap, VecDeque};

use super::objects::ObjState;
use super::scheduler::{Outbox, Scheduler};
use super::tasks::TaskState;
use crate::cluster::proto::{Message, TaskId, TaskSubmission};
use crate::cluster::IdSet;
use crate::error::{Error, ErrorKind};
use crate::resources::{Amount, UNIT};
use crate::runtime::NodeId;

/// Resource amounts are kept in fixed point (see [`Amount`]), so sums do not drift.
fn to_units(amount: f64) -> i64 {
    Amount::from_f64(amount).units()
}

fn from_units(units: i64) -> f64 {
    Amount::from_units(units).as_f64()
}

pub(super) struct NodeSlot {
    pub(super) node_id: NodeId,
    pub(super) address: String,
    pub(super) alive: bool,
    pub(super) total: BTreeMap<String, i64>,
    pub(super) available: BTreeMap<String, i64>,
    pub(super) outbox: Option<Outbox>,
    pub(super) running: IdSet<TaskId>,
    /// Tasks sent to the node to start when a running one ends ([`Message::HoldTask`]), in
    /// the order sent.
    pub(super) held: VecDeque<TaskId>,
}

impl NodeSlot {
    /// How many tasks the node may hold: two per CPU it declares (at least two). Enough for
    /// each of its workers to go from one task to the next without a round trip to the head,
    /// with the head's top-ups for several tasks sharing a write; more would keep work waiting
    /// behind busy CPUs while another node frees up.
    fn hold_limit(&self) -> usize {
        let cpus = self.total.get("CPU").copied().unwrap_or(0) / UNIT;
        2 * cpus.max(1) as usize
    }

    pub(super) fn fits(&self, demand: &BTreeMap<String, i64>) -> bool {
        demand
            .iter()
            .all(|(r, amount)| self.available.get(r).copied().unwrap_or(0) >= *amount)
    }

    /// Whether a task of `demand` can go to this node now: to run, or to be held.
    pub(super) fn takes(&self, demand: &BTreeMap<String, i64>) -> bool {
        self.alive
            && self.outbox.is_some()
            && (self.fits(demand)
                || (self.held.len() < self.hold_limit() && self.could_ever_fit(demand)))
    }

    fn could_ever_fit(&self, demand: &BTreeMap<String, i64>) -> bool {
        crate::resources::fits(demand, &self.total)
    }

    /// Gives `cpu` units of CPU to others (a negative amount takes them back).
    pub(super) fn lend_cpu(&mut self, cpu: i64) {
        *self.available.entry("CPU".into()).or_insert(0) += cpu;
    }

    pub(super) fn adjust(&mut self, demand: &BTreeMap<String, i64>, sign: i64) {
        for (r, amount) in demand {
            *self.available.entry(r.clone()).or_insert(0) += sign * amount;
        }
    }
}

/// The alive node `node_id` among `nodes`.
pub(super) fn alive_node(nodes: &mut [NodeSlot], node_id: NodeId) -> Option<&mut NodeSlot> {
    nodes.iter_mut().find(|n| n.node_id == node_id && n.alive)
}

/// A task's resource demand in units, zero amounts left out.
pub(super) fn demand(task: &TaskSubmission) -> Result<BTreeMap<String, i64>, Error> {
    crate::resources::units_of(&format!("`{}`", task.function), &task.resources)
}

impl Scheduler {
    /// A node joined (or reconnected): its tasks go to `outbox` from now on.
    pub fn add_node(
        &mut self,
        node_id: NodeId,
        address: String,
        resources: &BTreeMap<String, f64>,
        outbox: Outbox,
    ) {
        let total: BTreeMap<String, i64> = resources
            .iter()
            .map(|(r, a)| (r.clone(), to_units(*a)))
            .collect();
        if let Some(n) = self.nodes.iter_mut().find(|n| n.node_id == node_id) {
            if !n.alive {
                // A new incarnation of a node declared dead: nothing of the old one runs
                // there any more, so everything it declares is free.
                n.available = total.clone();
                n.total = total;
                n.running = IdSet::default();
                n.held.clear();
            }
            n.address = address;
            n.outbox = Some(outbox);
            n.alive = true;
        } else {
            let slot = NodeSlot {
                node_id,
                address,
                alive: true,
                available: total.clone(),
                total,
                outbox: Some(outbox),
                running: IdSet::default(),
                held: VecDeque::new(),
            };
            // The head's own node comes first: placement is first fit in this order.
            if node_id == self.head_node {
                self.nodes.insert(0, slot);
            } else {
                self.nodes.push(slot);
            }
        }
        self.share_node_totals();
        self.dispatch();
    }

    /// How many nodes the scheduler keeps state for, alive or dead.
    #[cfg(test)]
    pub fn node_count(&self) -> usize {
        self.nodes.len()
    }

    /// Forgets a dead node (its tasks and objects were handled when it was lost).
    pub fn forget_node(&mut self, node_id: NodeId) {
        self.nodes.retain(|n| n.alive || n.node_id != node_id);
    }

    /// A node died: its running tasks run again elsewhere (or fail when out of retries), and
    /// the objects only it held are lost (small ones survive: the head knows their bytes).
    pub fn node_lost(&mut self, node_id: NodeId, reason: &str) {
        let Some(n) = alive_node(&mut self.nodes, node_id) else {
            return;
        };
        n.alive = false;
        n.outbox = None;
        n.available = n.total.keys().map(|r| (r.clone(), 0)).collect();
        let address = n.address.clone();
        // A held task may have started there already: it counts as running.
        let running: Vec<TaskId> = n.running.drain().chain(n.held.drain(..)).collect();
        self.share_node_totals();
        let head_address = self.head_address();

        // Objects held there.
        let mut lost = 0usize;
        let mut rescued = 0usize;
        for (id, entry) in self.objects.iter_mut() {
            if let ObjState::Ready {
                node,
                inline: Some(bytes),
                ..
            } = &entry.state
            {
                if *node == node_id {
                    if let Some(head_address) = &head_address {
                        if node_id != self.head_node {
                            self.store.put(*id, bytes.to_vec());
                            entry.state = ObjState::Ready {
                                node: self.head_node,
                                address: head_address.clone(),
                                inline: Some(bytes.clone()),
                            };
                            rescued += 1;
                            continue;
                        }
                    }
                }
            }
            if matches!(&entry.state, ObjState::Ready { node, .. } if *node == node_id) {
                entry.state = ObjState::Lost;
                lost += 1;
            }
        }
        tracing::warn!(
            node = %node_id,
            %address,
            tasks = running.len(),
            lost,
            rescued,
            "node lost ({reason}): running its tasks again elsewhere"
        );

        for task_id in running {
            let Some(t) = self.tasks.get_mut(&task_id) else {
                continue;
            };
            if t.actor.is_some() {
                continue; // an actor's constructor: the actor is restarted below
            }
            if t.retries < t.task.max_retries {
                t.retries += 1;
                t.state = TaskState::Waiting;
                tracing::info!(task = %task_id, function = %t.task.function, retry = t.retries, "retrying a task of a dead node");
                self.resolve(task_id);
            } else {
                let error = Error::new(
                    ErrorKind::System,
                    format!(
                        "`{}` failed: its node {node_id} at {address} died ({reason}) and it \
                         was retried {} times (max_retries)",
                        t.task.function, t.retries
                    ),
                );
                self.fail_task(task_id, error);
            }
        }
        for actor_id in self.actors_on(node_id) {
            self.actor_failed(
                actor_id,
                &format!("its node {node_id} at {address} died ({reason})"),
            );
        }
        self.dispatch();
    }

    pub(super) fn head_address(&self) -> Option<String> {
        self.nodes
            .iter()
            .find(|n| n.node_id == self.head_node && n.alive)
            .map(|n| n.address.clone())
    }

    /// The resources of `node_id` not assigned to tasks right now (never below zero).
    pub fn available(&self, node_id: NodeId) -> Option<BTreeMap<String, f64>> {
        self.nodes.iter().find(|n| n.node_id == node_id).map(|n| {
            n.available
                .iter()
                .map(|(r, a)| (r.clone(), from_units((*a).max(0))))
                .collect()
        })
    }

    /// Why no alive node could ever run a task needing `demand`, if none could.
    pub(super) fn infeasible(
        &self,
        function: &str,
        demand: &BTreeMap<String, i64>,
    ) -> Option<Error> {
        let alive = self.nodes.iter().filter(|n| n.alive).map(|n| &n.total);
        crate::resources::infeasible_on(function, demand, alive)
    }

    /// Tells every connected program what the alive nodes declare now.
    fn share_node_totals(&self) {
        if self.conns.is_empty() {
            return;
        }
        let totals = self.node_totals();
        for outbox in self.conns.values() {
            let _ = outbox.send(Message::NodeTotals {
                totals: totals.clone(),
            });
        }
    }

    /// Every alive node's declared resources in units, as drivers check requests against.
    pub fn node_totals(&self) -> Vec<BTreeMap<String, i64>> {
        self.nodes
            .iter()
            .filter(|n| n.alive)
            .map(|n| n.total.clone())
            .collect()
    }

    /// The task blocks in `get`/`wait`: lend its CPU to others.
    pub fn task_blocked(&mut self, task_id: TaskId) {
        if self.count_blocked(task_id, true) {
            self.dispatch();
        }
    }

    /// The blocked task goes on: take its CPU back (the node may be over-committed briefly).
    pub fn task_unblocked(&mut self, task_id: TaskId) {
        self.count_blocked(task_id, false);
    }

    /// Counts one more (or one less) of the task's threads blocked; the first to block lends
    /// the task's CPU, the last to go on takes it back. Returns whether CPU was lent.
    fn count_blocked(&mut self, task_id: TaskId, block: bool) -> bool {
        let Some(t) = self.tasks.get_mut(&task_id) else {
            return false;
        };
        let (node, blocked) = match &mut t.state {
            TaskState::Running { node, blocked } => (node, blocked),
            // Not counted on its node yet: it lends from the start when it is.
            TaskState::Held { blocked, .. } => {
                *blocked = if block {
                    *blocked + 1
                } else {
                    blocked.saturating_sub(1)
                };
                return false;
            }
            _ => return false,
        };
        let cpu = t.demand.get("CPU").copied().unwrap_or(0);
        let node = *node;
        match (block, *blocked) {
            (true, n) => {
                *blocked = n + 1;
                if n == 0 {
                    self.lend_cpu(node, cpu);
                    return true;
                }
            }
            (false, 0) => {}
            (false, n) => {
                *blocked = n - 1;
                if n == 1 {
                    self.lend_cpu(node, -cpu);
                }
            }
        }
        false
    }

    /// Gives `cpu` units of `node`'s CPU to others (a negative amount takes them back).
    fn lend_cpu(&mut self, node: NodeId, cpu: i64) {
        if let Some(n) = alive_node(&mut self.nodes, node) {
            n.lend_cpu(cpu);
        }
    }
}
