//! An actor whose process or node dies: what its constructor's report means, the calls it
//! was running fail or wait for its next start, and it starts again while restarts are left.

use super::{ActorEntry, ActorPart, ActorState};
use crate::actor::ActorId;
use crate::cluster::head::scheduler::Scheduler;
use crate::cluster::head::tasks::TaskState;
use crate::cluster::proto::TaskId;
use crate::error::{Error, ErrorKind};
use crate::runtime::NodeId;

impl Scheduler {
    /// The node reports how the actor's constructor ended.
    pub fn actor_started(
        &mut self,
        node: NodeId,
        actor_id: ActorId,
        incarnation: u32,
        result: Result<(), Error>,
    ) {
        let Some(a) = self.actors.get_mut(&actor_id) else {
            return;
        };
        if a.incarnation != incarnation {
            return;
        }
        let ActorState::Placed { node: on, started } = &mut a.state else {
            return;
        };
        if *on != node {
            return;
        }
        match result {
            Ok(()) => {
                *started = true;
                tracing::debug!(actor = %actor_id, class = %a.display, %node, "actor started");
            }
            // Its process died in `new` (or could not be started): a crash like any other,
            // restarted while restarts are left.
            Err(e) if e.kind() == ErrorKind::System => {
                self.actor_failed(actor_id, &format!("while running `new`: {e}"));
                self.dispatch();
            }
            // `new` panicked or could not take its arguments: running it again would fail the
            // same way.
            Err(e) => {
                let error = Error::with_source(
                    ErrorKind::ActorDied,
                    format!(
                        "actor `{}` ({actor_id}) could not be created: {e}",
                        a.display
                    ),
                    e,
                );
                self.actor_dead(actor_id, error);
                self.dispatch();
            }
        }
    }

    /// The node reports that a method of the actor called `exit_actor`: it is dead once its
    /// running calls answered (they were sent before this report), never restarted.
    pub fn actor_exiting(&mut self, node: NodeId, actor_id: ActorId, incarnation: u32) {
        if let Some(a) = self.placed_on(node, actor_id, incarnation) {
            // The same words as embedded (`ActorCell::kill`).
            let error = a.died("exited: a method called raykit::exit_actor");
            self.actor_dead(actor_id, error);
            self.dispatch();
        }
    }

    /// The actor, when its start `incarnation` is the one placed on `node` (a report of an
    /// older start, or from another node, no longer counts).
    fn placed_on(&self, node: NodeId, actor_id: ActorId, incarnation: u32) -> Option<&ActorEntry> {
        self.actors.get(&actor_id).filter(|a| {
            a.incarnation == incarnation
                && matches!(a.state, ActorState::Placed { node: on, .. } if on == node)
        })
    }

    /// The node reports that the actor's worker process ended without being asked to.
    pub fn actor_exited(
        &mut self,
        node: NodeId,
        actor_id: ActorId,
        incarnation: u32,
        reason: &str,
    ) {
        if self.placed_on(node, actor_id, incarnation).is_some() {
            self.actor_failed(
                actor_id,
                &format!("its worker process on node {node} exited ({reason})"),
            );
            self.dispatch();
        }
    }

    /// The actor's process or node died: the calls it was running fail, and it starts again
    /// when it has restarts left, or is dead.
    pub(in crate::cluster::head) fn actor_failed(&mut self, actor_id: ActorId, reason: &str) {
        let Some(a) = self.actors.get_mut(&actor_id) else {
            return;
        };
        let ActorState::Placed { started, .. } = a.state else {
            return;
        };
        if a.restarts >= a.creation.max_restarts || a.stopping {
            let why = if a.creation.max_restarts == 0 {
                format!("died: {reason}")
            } else {
                format!(
                    "died: {reason}; it was restarted {} times (max_restarts)",
                    a.restarts
                )
            };
            let error = a.died(&why);
            self.actor_dead(actor_id, error);
            return;
        }
        a.restarts += 1;
        a.incarnation += 1;
        a.state = ActorState::Pending;
        let error = a.died(&format!(
            "died while running this call: {reason}; it is being restarted ({} of {} restarts)",
            a.restarts, a.creation.max_restarts
        ));
        tracing::warn!(actor = %actor_id, class = %a.display, restart = a.restarts, "actor died ({reason}): restarting it");
        let create = a.creation.create.task_id;
        // Before `new` returned, no call can have started.
        let may_run = match started {
            true => a.creation.max_concurrency.max(1) as usize,
            false => 0,
        };
        self.requeue_unstarted_calls(actor_id, may_run, &error);
        self.give_back(create);
        if let Some(t) = self.tasks.get_mut(&create) {
            t.state = TaskState::Waiting;
        }
        self.resolve(create);
    }

    /// The actor's process or node died with calls sent to it unanswered. Its node hands calls
    /// to the actor's process in the order they were sent, and the process runs at most
    /// `may_run` at once, in that order: so only the first `may_run` of them can have started.
    /// Those fail with `error` (they are not run twice); the others go back to the front of
    /// the actor's queue, in order, for the actor's next start.
    fn requeue_unstarted_calls(&mut self, actor_id: ActorId, may_run: usize, error: &Error) {
        let mut sent: Vec<(u64, TaskId)> = self
            .tasks
            .iter()
            .filter(|(_, t)| {
                t.actor == Some(ActorPart::Call(actor_id))
                    && matches!(t.state, TaskState::Running { .. })
            })
            .map(|(id, t)| (t.sent, *id))
            .collect();
        sent.sort_unstable();
        let later = sent.split_off(may_run.min(sent.len()));
        for (_, call) in sent {
            self.fail_task(call, error.clone());
        }
        for (_, call) in &later {
            if let Some(t) = self.tasks.get_mut(call) {
                t.state = TaskState::Waiting;
                t.missing = 0;
            }
        }
        if !later.is_empty() {
            tracing::info!(actor = %actor_id, calls = later.len(), "calls not started go to the actor's next start");
        }
        if let Some(a) = self.actors.get_mut(&actor_id) {
            for (_, call) in later.into_iter().rev() {
                a.queue.push_front(call);
            }
        }
    }

    /// The calls the actor was running fail with `error`.
    pub(super) fn fail_running_calls(&mut self, actor_id: ActorId, error: &Error) {
        let running: Vec<TaskId> = self
            .tasks
            .iter()
            .filter(|(_, t)| {
                t.actor == Some(ActorPart::Call(actor_id))
                    && matches!(t.state, TaskState::Running { .. })
            })
            .map(|(id, _)| *id)
            .collect();
        for call in running {
            self.fail_task(call, error.clone());
        }
    }

    /// The constructor task `create` gives the actor's resources back to its node.
    pub(super) fn give_back(&mut self, create: TaskId) {
        let Some(t) = self.tasks.get_mut(&create) else {
            return;
        };
        if let TaskState::Running { node, .. } = t.state {
            if let Some(n) = self.nodes.iter_mut().find(|n| n.node_id == node) {
                if n.alive {
                    n.adjust(&t.demand, 1);
                }
                n.running.remove(&create);
            }
        }
    }
}
