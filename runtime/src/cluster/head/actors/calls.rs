//! An actor's calls: each queued in its actor's FIFO and sent to the actor's node once its
//! ref arguments are ready, a caller's calls in the order it submitted them.

use std::collections::BTreeMap;

use super::{ActorPart, ActorState};
use crate::actor::ActorId;
use crate::cluster::head::dependencies::dependency_error;
use crate::cluster::head::objects::ObjState;
use crate::cluster::head::scheduler::{ConnId, Scheduler};
use crate::cluster::head::tasks::TaskState;
use crate::cluster::proto::{ActorCallAssignment, Message, TaskId, TaskSubmission, WireArg};

impl Scheduler {
    /// Sends the actor's queued calls whose turn it is to its node, and fails those whose
    /// arguments failed. Each caller's calls go in the order it submitted them: a call still
    /// waiting for an argument holds back the later calls of its caller, not those of others.
    pub(in crate::cluster::head) fn pump_actor(&mut self, actor_id: ActorId) {
        // Callers whose first queued call waits for an argument.
        let mut blocked: Vec<ConnId> = Vec::new();
        let mut i = 0;
        loop {
            let Some(a) = self.actors.get_mut(&actor_id) else {
                return;
            };
            let node = match &a.state {
                ActorState::Placed { node, .. } => *node,
                ActorState::Dead(e) => {
                    let error = e.clone();
                    let queued: Vec<TaskId> = a.queue.drain(..).collect();
                    for call in queued {
                        self.fail_task(call, error.clone());
                    }
                    return;
                }
                ActorState::Pending => {
                    if a.stopping && a.queue.is_empty() {
                        let error = a.died("was stopped: every handle to it was dropped");
                        self.actor_dead(actor_id, error);
                    }
                    return;
                }
            };
            let incarnation = a.incarnation;
            let Some(&call) = a.queue.get(i) else {
                if a.stopping && a.queue.is_empty() {
                    self.stop_actor(actor_id);
                }
                return;
            };
            let Some(t) = self
                .tasks
                .get(&call)
                .filter(|t| t.state == TaskState::Waiting)
            else {
                // Failed already (an argument failed while it waited).
                a.queue.remove(i);
                continue;
            };
            if blocked.contains(&t.submitter) {
                i += 1;
                continue;
            }
            let mut arg_locations = Vec::with_capacity(t.task.args.len());
            let mut missing = Vec::new();
            let mut failed = None;
            for arg in &t.task.args {
                match arg {
                    WireArg::Value(_) => arg_locations.push(None),
                    WireArg::Ref(id) => match self.objects.get(id).map(|o| &o.state) {
                        Some(ObjState::Ready { address, .. }) => {
                            arg_locations.push(Some(address.clone()))
                        }
                        Some(ObjState::Failed(e)) => {
                            failed = Some(dependency_error(&self.arg_names, &t.task, *id, e));
                            break;
                        }
                        Some(ObjState::Lost) => missing.push((*id, true)),
                        Some(ObjState::Pending) | None => missing.push((*id, false)),
                    },
                }
            }
            if let Some(error) = failed {
                a.queue.remove(i);
                self.fail_task(call, error);
                continue;
            }
            if !missing.is_empty() {
                let submitter = t.submitter;
                missing.sort_unstable();
                missing.dedup();
                let mut waiting = 0;
                let mut gone = false;
                for (id, lost) in missing {
                    self.entry_or_unknown(id);
                    if lost {
                        if let Err(e) = self.rebuild(id) {
                            let error = self.tasks.get(&call).map_or_else(
                                || e.clone(),
                                |t| dependency_error(&self.arg_names, &t.task, id, &e),
                            );
                            self.fail_object(id, e);
                            // The call failed with its argument; go on with the next.
                            if let Some(a) = self.actors.get_mut(&actor_id) {
                                if a.queue.get(i) == Some(&call) {
                                    a.queue.remove(i);
                                }
                            }
                            self.fail_task(call, error);
                            gone = true;
                            break;
                        }
                    }
                    waiting += 1;
                    let waiters = self.waiting_on.entry(id).or_default();
                    if !waiters.contains(&call) {
                        waiters.push(call);
                    }
                }
                if gone {
                    continue;
                }
                if let Some(t) = self.tasks.get_mut(&call) {
                    t.missing = waiting;
                }
                blocked.push(submitter);
                i += 1;
                continue;
            }
            a.queue.remove(i);
            let Some(t) = self.tasks.get_mut(&call) else {
                continue;
            };
            t.state = TaskState::Running { node, blocked: 0 };
            t.attempts += 1;
            self.sends += 1;
            t.sent = self.sends;
            let assignment = ActorCallAssignment {
                actor_id,
                incarnation,
                task: t.task.clone(),
                arg_locations,
            };
            self.send_to(node, Message::ExecuteActorCall(Box::new(assignment)));
        }
    }

    /// A driver (or worker client) calls a method of an actor.
    pub fn submit_call(&mut self, conn: ConnId, actor_id: ActorId, task: TaskSubmission) {
        let task_id = task.task_id;
        if self.tasks.contains_key(&task_id) {
            tracing::warn!(task = %task_id, "actor call submitted twice; ignored");
            return;
        }
        if self.has_ended(task.job_id) {
            let error = self.job_ended_error(task.job_id);
            self.reject(conn, task, error);
            return;
        }
        let call = Some(ActorPart::Call(actor_id));
        self.add_task(conn, task, String::new(), BTreeMap::new(), call);
        match self.actors.get_mut(&actor_id) {
            // Its creation may still be on its way (sent by another process over another
            // connection): the call waits for it, for a while.
            None => self.await_unknown_actor(actor_id, task_id),
            Some(a) => {
                a.queue.push_back(task_id);
                self.pump_actor(actor_id);
            }
        }
    }
}
