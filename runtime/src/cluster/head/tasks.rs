//! The task table: each task's state, attempts and retries; submissions accepted or refused,
//! and how a task ends (finished, retried, failed).

use std::collections::BTreeMap;
use std::sync::Arc;

use super::actors::ActorPart;
use super::objects::{ObjState, ObjectEntry};
use super::resources::demand;
use super::scheduler::{ConnId, Scheduler};
use crate::cluster::proto::{StoredObject, TaskId, TaskOutcome, TaskSubmission, WireArg};
use crate::error::{Error, ErrorKind};
use crate::object::ObjectId;
use crate::runtime::NodeId;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum TaskState {
    /// Waiting for arguments.
    Waiting,
    /// Arguments ready, waiting for a node with room.
    Queued,
    /// Running on a node; `blocked` counts the task's threads waiting in `get`/`wait`.
    Running {
        node: NodeId,
        blocked: u32,
    },
    /// Held by a node, to start when a task there ends or when the head says so. The node may
    /// have started it already (the head learns it with the ended task), so its threads may be
    /// `blocked` too.
    Held {
        node: NodeId,
        blocked: u32,
    },
    Finished,
    Failed,
}

pub(super) struct TaskEntry {
    pub(super) task: TaskSubmission,
    pub(super) exe_hash: String,
    pub(super) submitter: ConnId,
    pub(super) state: TaskState,
    /// Distinct argument objects not ready yet.
    pub(super) missing: usize,
    /// How many times the task was started.
    pub(super) attempts: u32,
    /// How many retries it used.
    pub(super) retries: u32,
    pub(super) demand: BTreeMap<String, i64>,
    /// Whether its argument objects count it in their `pins`.
    pub(super) pinned: bool,
    /// The actor it creates or calls, if it is not a plain task.
    pub(super) actor: Option<ActorPart>,
    /// For an actor call: when it was last sent to the actor's node (in the order of
    /// [`Scheduler::sends`]), so that the calls an actor's death finds unanswered can be told
    /// apart: the first ones may have run, the later ones had not started.
    pub(super) sent: u64,
}

impl TaskEntry {
    /// Whether the task may still run (and so needs its arguments).
    pub(super) fn live(&self) -> bool {
        matches!(
            self.state,
            TaskState::Waiting
                | TaskState::Queued
                | TaskState::Running { .. }
                | TaskState::Held { .. }
        )
    }

    /// Its distinct argument objects.
    pub(super) fn ref_args(&self) -> Vec<ObjectId> {
        let mut ids: Vec<ObjectId> = self
            .task
            .args
            .iter()
            .filter_map(|a| match a {
                WireArg::Ref(id) => Some(*id),
                WireArg::Value(_) => None,
            })
            .collect();
        ids.sort_unstable();
        ids.dedup();
        ids
    }
}

impl Scheduler {
    /// A driver submitted a task of a job running the executable `exe_hash`.
    pub fn submit(&mut self, conn: ConnId, task: TaskSubmission, exe_hash: String) {
        let task_id = task.task_id;
        self.arg_names.learn(&task);
        if let Some(old) = self.tasks.get(&task_id) {
            tracing::warn!(task = %task_id, function = %old.task.function, "task submitted twice; ignored");
            return;
        }
        if self.has_ended(task.job_id) {
            let error = self.job_ended_error(task.job_id);
            self.reject(conn, task, error);
            return;
        }
        let demand = match demand(&task) {
            Ok(d) => d,
            Err(error) => {
                self.reject(conn, task, error);
                return;
            }
        };
        // Fail at once when no alive node could ever hold it, before waiting for arguments.
        if let Some(error) = self.infeasible(&task.function, &demand) {
            self.reject(conn, task, error);
            return;
        }
        self.add_task(conn, task, exe_hash, demand, None);
        self.resolve(task_id);
        self.dispatch();
    }

    /// Records a task `conn` submitted, waiting: its outputs pending and owned by `conn`, its
    /// arguments pinned.
    pub(super) fn add_task(
        &mut self,
        conn: ConnId,
        task: TaskSubmission,
        exe_hash: String,
        demand: BTreeMap<String, i64>,
        actor: Option<ActorPart>,
    ) {
        let task_id = task.task_id;
        let job = self.conn_jobs.get(&conn).copied();
        for out in &task.outputs {
            let entry = self
                .objects
                .entry(*out)
                .or_insert_with(|| ObjectEntry::pending(Some(task_id)));
            entry.producer = Some(task_id);
            entry.state = ObjState::Pending;
            entry.owner = Some(conn);
            entry.job = job;
        }
        self.tasks.insert(
            task_id,
            TaskEntry {
                task,
                exe_hash,
                submitter: conn,
                state: TaskState::Waiting,
                missing: 0,
                attempts: 0,
                retries: 0,
                demand,
                pinned: false,
                sent: 0,
                actor,
            },
        );
        self.sync_pins(task_id);
    }

    /// A task that cannot be accepted: every output fails with `error`.
    pub(super) fn reject(&mut self, conn: ConnId, task: TaskSubmission, error: Error) {
        tracing::info!(task = %task.task_id, function = %task.function, "task rejected: {error}");
        self.failed += 1;
        for out in &task.outputs {
            let entry = self
                .objects
                .entry(*out)
                .or_insert_with(|| ObjectEntry::pending(None));
            if !entry.watchers.contains(&conn) {
                entry.watchers.push(conn);
            }
            entry.owner = Some(conn);
            entry.job = self.conn_jobs.get(&conn).copied();
        }
        for out in task.outputs {
            self.fail_object(out, error.clone());
        }
    }

    /// A task failed for good: its outputs fail with `error`.
    pub(super) fn fail_task(&mut self, task_id: TaskId, error: Error) {
        let Some(t) = self.tasks.get_mut(&task_id) else {
            return;
        };
        if matches!(t.state, TaskState::Failed) {
            return;
        }
        tracing::debug!(task = %task_id, function = %t.task.function, "task failed: {error}");
        t.state = TaskState::Failed;
        self.failed += 1;
        let outputs = t.task.outputs.clone();
        let actor = t.actor;
        self.sync_pins(task_id);
        for out in outputs {
            self.fail_object(out, error.clone());
        }
        if let Some(ActorPart::Create(actor_id)) = actor {
            let error = match self.actors.get(&actor_id) {
                Some(_) if error.kind() == ErrorKind::ActorDied => error,
                Some(_) => Error::with_source(
                    ErrorKind::ActorDied,
                    format!("actor {actor_id} could not be created: {error}"),
                    error,
                ),
                None => return,
            };
            self.actor_dead(actor_id, error);
        }
    }

    /// A node reports how a task it ran ended, and which held task it started in its place.
    pub fn task_finished(
        &mut self,
        node_id: NodeId,
        task_id: TaskId,
        outcome: TaskOutcome,
        next: Option<TaskId>,
    ) {
        if let Some(next) = next {
            // Counted before the ended task gives its resources back, so nothing else is
            // placed on them meanwhile.
            self.handed_off(node_id, next);
        }
        let running_on = self.tasks.get(&task_id).and_then(|t| match t.state {
            TaskState::Running { node, .. } => Some(node),
            _ => None,
        });
        if running_on != Some(node_id) {
            tracing::debug!(task = %task_id, "a task finished that does not run on that node; ignored");
            if next.is_some() {
                self.dispatch();
            }
            // Its outputs are on that node for nothing unless the head counts them there.
            if let TaskOutcome::Stored(objects) = &outcome {
                let stale: Vec<ObjectId> = objects
                    .iter()
                    .map(|o| o.id)
                    .filter(|id| {
                        !matches!(
                            self.objects.get(id).map(|o| &o.state),
                            Some(ObjState::Ready { node, .. }) if *node == node_id
                        )
                    })
                    .collect();
                self.delete_on(node_id, stale);
            }
            return;
        }
        let Some(t) = self.tasks.get_mut(&task_id) else {
            return;
        };
        let TaskState::Running { blocked, .. } = t.state else {
            return;
        };
        if let Some(n) = self.nodes.iter_mut().find(|n| n.node_id == node_id) {
            let mut back = t.demand.clone();
            if blocked > 0 {
                // Its CPU was lent while it was blocked.
                back.remove("CPU");
            }
            if n.alive {
                n.adjust(&back, 1);
            }
            n.running.remove(&task_id);
        }
        match outcome {
            TaskOutcome::Stored(objects) => {
                t.state = TaskState::Finished;
                self.finished += 1;
                self.sync_pins(task_id);
                let address = self
                    .nodes
                    .iter()
                    .find(|n| n.node_id == node_id)
                    .map(|n| n.address.clone())
                    .unwrap_or_default();
                for StoredObject { id, inline, .. } in objects {
                    self.object_ready(id, node_id, address.clone(), inline.map(Arc::new));
                }
            }
            TaskOutcome::Failed { error, retryable } => {
                if retryable && t.retries < t.task.max_retries {
                    t.retries += 1;
                    tracing::info!(task = %task_id, function = %t.task.function, retry = t.retries, "retrying: {error}");
                    t.state = TaskState::Waiting;
                    self.resolve(task_id);
                } else {
                    self.fail_task(task_id, error);
                }
            }
        }
        self.dispatch();
    }
}
