//! Placement: the queue of tasks whose arguments are ready, grouped by demand; first fit on
//! the alive nodes in order; tasks sent ahead for a full node to hold, and started there in
//! place of ended ones.

use std::collections::VecDeque;

use super::actors::ActorPart;
use super::objects::ObjState;
use super::resources::{alive_node, NodeSlot};
use super::scheduler::Scheduler;
use super::tasks::{TaskEntry, TaskState};
use crate::cluster::proto::{Message, TaskAssignment, TaskId, WireArg};
use crate::runtime::NodeId;

/// What became of a queued task [`Scheduler::dispatch`] looked at.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Start {
    /// It runs on a node now, or a node holds it.
    Started,
    /// It left the queue: failed, or back to waiting for an argument.
    Gone,
    /// No node has room for it now.
    NoRoom,
}

impl Scheduler {
    /// Starts every queued task that fits somewhere, in queue order: first the tasks nodes
    /// hold (they left the head's queue earlier), then the head's queue, holding there what
    /// finds no room.
    pub(super) fn dispatch(&mut self) {
        for index in 0..self.nodes.len() {
            self.start_held(index);
        }
        // One group per distinct demand, each in arrival order: when the first task of a group
        // finds no room, none of the group would, so a long queue behind full nodes costs one
        // look per group, not one per task.
        let mut g = 0;
        while g < self.queue.len() {
            while let Some(&task_id) = self.queue[g].1.front() {
                if self.try_start(task_id) == Start::NoRoom {
                    break;
                }
                // Started, failed or back to waiting; `try_start` only ever appends to the
                // queue, so the front is still this task.
                self.queue[g].1.pop_front();
            }
            g += 1;
        }
        self.queue.retain(|(_, q)| !q.is_empty());
    }

    /// Queues a task whose arguments are ready.
    pub(super) fn enqueue(&mut self, task_id: TaskId) {
        let Some(t) = self.tasks.get_mut(&task_id) else {
            return;
        };
        t.state = TaskState::Queued;
        match self.queue.iter_mut().find(|(d, _)| *d == t.demand) {
            Some((_, q)) => q.push_back(task_id),
            None => self
                .queue
                .push((t.demand.clone(), VecDeque::from([task_id]))),
        }
    }

    /// Starts the queued task `task_id` on a node with room, if one has.
    fn try_start(&mut self, task_id: TaskId) -> Start {
        let Some(t) = self.tasks.get(&task_id) else {
            return Start::Gone;
        };
        if t.state != TaskState::Queued {
            return Start::Gone;
        }
        // A full cluster is the common answer under load: found before looking at arguments.
        if t.actor.is_none() && !self.nodes.iter().any(|n| n.takes(&t.demand)) {
            if let Some(error) = self.infeasible(&t.task.function, &t.demand) {
                self.fail_task(task_id, error);
                return Start::Gone;
            }
            return Start::NoRoom;
        }
        // Its arguments may have been lost since it was queued.
        let mut arg_locations = Vec::with_capacity(t.task.args.len());
        let mut unready = false;
        for arg in &t.task.args {
            match arg {
                WireArg::Value(_) => arg_locations.push(None),
                WireArg::Ref(id) => match self.objects.get(id).map(|o| &o.state) {
                    Some(ObjState::Ready { address, .. }) => {
                        arg_locations.push(Some(address.clone()))
                    }
                    _ => unready = true,
                },
            }
        }
        if unready {
            if let Some(t) = self.tasks.get_mut(&task_id) {
                t.state = TaskState::Waiting;
            }
            self.resolve(task_id);
            return Start::Gone;
        }
        if let Some(ActorPart::Create(actor_id)) = t.actor {
            return match self.actor_node_for(&t.demand) {
                Some(index) => {
                    self.place_actor(task_id, actor_id, index, arg_locations);
                    Start::Started
                }
                None => match self.infeasible(&t.task.function, &t.demand) {
                    Some(error) => {
                        self.fail_task(task_id, error);
                        Start::Gone
                    }
                    None => Start::NoRoom,
                },
            };
        }
        let Some(node) = self
            .nodes
            .iter_mut()
            .find(|n| n.alive && n.outbox.is_some() && n.fits(&t.demand))
        else {
            // Some node takes it (checked above), to hold since none has room.
            return match self.hold(task_id, arg_locations) {
                true => Start::Started,
                false => Start::NoRoom,
            };
        };
        let Some(t) = self.tasks.get_mut(&task_id) else {
            return Start::Gone;
        };
        node.adjust(&t.demand, -1);
        node.running.insert(task_id);
        t.state = TaskState::Running {
            node: node.node_id,
            blocked: 0,
        };
        Self::send_task(node, task_id, t, arg_locations, false);
        Start::Started
    }

    /// Sends `t` to `node` to run now, or to hold (`hold`), as its next attempt.
    fn send_task(
        node: &NodeSlot,
        task_id: TaskId,
        t: &mut TaskEntry,
        arg_locations: Vec<Option<String>>,
        hold: bool,
    ) {
        let attempt = t.attempts;
        t.attempts += 1;
        tracing::debug!(task = %task_id, function = %t.task.function, node = %node.node_id, attempt, hold, "task sent");
        let assignment = TaskAssignment {
            task: t.task.clone(),
            exe_hash: t.exe_hash.clone(),
            arg_locations,
            attempt,
        };
        let message = match hold {
            true => Message::HoldTask(assignment),
            false => Message::ExecuteTask(assignment),
        };
        if let Some(outbox) = &node.outbox {
            // A closed outbox means the node's connection ended: its death re-runs the task.
            let _ = outbox.send(message);
        }
    }

    /// Sends the queued task `task_id`, for which no node has room, to the alive node that
    /// could run it and holds the fewest tasks, unless every such node holds its limit.
    fn hold(&mut self, task_id: TaskId, arg_locations: Vec<Option<String>>) -> bool {
        let Some(t) = self.tasks.get_mut(&task_id) else {
            return false;
        };
        let Some(node) = self
            .nodes
            .iter_mut()
            .filter(|n| n.takes(&t.demand))
            .min_by_key(|n| n.held.len())
        else {
            return false;
        };
        node.held.push_back(task_id);
        t.state = TaskState::Held {
            node: node.node_id,
            blocked: 0,
        };
        Self::send_task(node, task_id, t, arg_locations, true);
        true
    }

    /// Starts the tasks node `index` holds while they fit there, in the order it got them.
    fn start_held(&mut self, index: usize) {
        let n = &mut self.nodes[index];
        while let Some(&task_id) = n.held.front() {
            let Some(t) = self.tasks.get_mut(&task_id) else {
                n.held.pop_front();
                continue;
            };
            if !n.fits(&t.demand) {
                return;
            }
            n.held.pop_front();
            if let TaskState::Held { blocked, .. } = t.state {
                Self::run_held(n, task_id, t, blocked);
                if let Some(outbox) = &n.outbox {
                    let _ = outbox.send(Message::StartTask { task_id });
                }
            }
        }
    }

    /// The held task `task_id` runs on `n` now: its resources count there (less the CPU it
    /// lends while `blocked`).
    fn run_held(n: &mut NodeSlot, task_id: TaskId, t: &mut TaskEntry, blocked: u32) {
        n.adjust(&t.demand, -1);
        if blocked > 0 {
            n.lend_cpu(t.demand.get("CPU").copied().unwrap_or(0));
        }
        n.running.insert(task_id);
        t.state = TaskState::Running {
            node: n.node_id,
            blocked,
        };
    }

    /// The node started its held task `task_id` in place of one that ended there: it runs
    /// now, with the resources the ended task gives back. A task the head already told the
    /// node to start (or no longer knows) is not counted twice.
    pub(super) fn handed_off(&mut self, node_id: NodeId, task_id: TaskId) {
        let Some(n) = alive_node(&mut self.nodes, node_id) else {
            return;
        };
        let Some(t) = self.tasks.get_mut(&task_id) else {
            return;
        };
        let TaskState::Held { node, blocked } = t.state else {
            return;
        };
        if node != node_id {
            return;
        }
        if let Some(at) = n.held.iter().position(|id| *id == task_id) {
            n.held.remove(at);
        }
        Self::run_held(n, task_id, t, blocked);
    }
}
