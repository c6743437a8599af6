//! A task's dependencies: it waits until every object it takes by ref is ready; one that
//! failed fails it (naming the argument), and one lost with its node is rebuilt by running its
//! producer again (lineage).

use std::collections::{HashMap, HashSet};

use super::actors::ActorPart;
use super::objects::ObjState;
use super::scheduler::Scheduler;
use super::tasks::TaskState;
use crate::cluster::proto::{TaskId, TaskSubmission, WireArg};
use crate::error::{Error, ErrorKind};
use crate::object::ObjectId;

/// Functions' parameter names as submitters sent them, bounded: a peer cannot grow it past
/// [`ArgNames::MAX_FUNCTIONS`] functions of [`ArgNames::MAX_PARAMS`] short names each.
#[derive(Debug, Default)]
pub(super) struct ArgNames(pub(super) HashMap<(String, u64), Vec<String>>);

impl ArgNames {
    pub(super) const MAX_FUNCTIONS: usize = 4096;
    pub(super) const MAX_PARAMS: usize = 64;
    pub(super) const MAX_NAME: usize = 64;

    /// Remembers the names a submission carries, if any.
    pub(super) fn learn(&mut self, task: &TaskSubmission) {
        let Some(names) = task.arg_names.as_deref() else {
            return;
        };
        if names.len() > Self::MAX_PARAMS
            || names.iter().any(|n| n.len() > Self::MAX_NAME)
            || self.0.len() >= Self::MAX_FUNCTIONS
        {
            return;
        }
        self.0
            .entry((task.function.clone(), task.signature_hash))
            .or_insert_with(|| names.clone());
    }

    /// How a failed argument of `task` at `index` (from 0) is named: `` `b` `` when its
    /// function's names are known, else `#2`.
    pub(super) fn name(&self, task: &TaskSubmission, index: usize) -> String {
        match self
            .0
            .get(&(task.function.clone(), task.signature_hash))
            .and_then(|names| names.get(index))
        {
            Some(name) => format!("`{name}`"),
            None => format!("#{}", index + 1),
        }
    }
}

/// The error of a task that cannot run because its argument `id` failed with `cause`.
pub(super) fn dependency_error(
    names: &ArgNames,
    task: &TaskSubmission,
    id: ObjectId,
    cause: &Error,
) -> Error {
    let index = task
        .args
        .iter()
        .position(|a| matches!(a, WireArg::Ref(r) if *r == id))
        .unwrap_or(0);
    Error::dependency_failed(&task.function, &names.name(task, index), cause)
}

impl Scheduler {
    /// Looks at a waiting task's arguments: waits for those not ready, rebuilds lost ones,
    /// fails on failed ones, and queues the task when all are ready.
    pub(super) fn resolve(&mut self, task_id: TaskId) {
        let Some(t) = self.tasks.get(&task_id) else {
            return;
        };
        if let Some(ActorPart::Call(actor_id)) = t.actor {
            // Calls go in their actor's order, not as soon as their arguments are ready.
            self.pump_actor(actor_id);
            return;
        }
        if t.state != TaskState::Waiting {
            return;
        }
        let refs: Vec<ObjectId> = t
            .task
            .args
            .iter()
            .filter_map(|a| match a {
                WireArg::Ref(id) => Some(*id),
                WireArg::Value(_) => None,
            })
            .collect::<HashSet<_>>()
            .into_iter()
            .collect();
        let mut missing = 0;
        for id in refs {
            let state = self.entry_or_unknown(id).state.clone();
            match state {
                ObjState::Ready { .. } => {}
                ObjState::Failed(e) => {
                    let error = match self.tasks.get(&task_id) {
                        Some(t) => dependency_error(&self.arg_names, &t.task, id, &e),
                        None => e,
                    };
                    self.fail_task(task_id, error);
                    return;
                }
                ObjState::Pending | ObjState::Lost => {
                    if matches!(state, ObjState::Lost) {
                        if let Err(e) = self.rebuild(id) {
                            let error = match self.tasks.get(&task_id) {
                                Some(t) => dependency_error(&self.arg_names, &t.task, id, &e),
                                None => e.clone(),
                            };
                            self.fail_object(id, e);
                            self.fail_task(task_id, error);
                            return;
                        }
                    }
                    missing += 1;
                    let waiters = self.waiting_on.entry(id).or_default();
                    if !waiters.contains(&task_id) {
                        waiters.push(task_id);
                    }
                }
            }
        }
        let Some(t) = self.tasks.get_mut(&task_id) else {
            return;
        };
        t.missing = missing;
        if missing > 0 {
            return;
        }
        let infeasible = self
            .tasks
            .get(&task_id)
            .and_then(|t| self.infeasible(&t.task.function, &t.demand));
        if let Some(error) = infeasible {
            self.fail_task(task_id, error);
            return;
        }
        self.enqueue(task_id);
    }

    /// Runs again the finished task that produced the lost object `id`.
    pub(super) fn rebuild(&mut self, id: ObjectId) -> Result<(), Error> {
        let producer = self.objects.get(&id).and_then(|o| o.producer);
        let Some(p) = producer.filter(|p| self.tasks.contains_key(p)) else {
            return Err(Error::new(
                ErrorKind::ObjectLost,
                format!(
                    "object {id} was lost with its node and cannot be rebuilt: it was put, not \
                     computed by a task"
                ),
            ));
        };
        let Some(t) = self.tasks.get_mut(&p) else {
            return Ok(());
        };
        if t.actor.is_some() && t.state == TaskState::Finished {
            return Err(Error::new(
                ErrorKind::ObjectLost,
                format!(
                    "object {id} was lost with its node and cannot be rebuilt: it was returned \
                     by the actor call `{}`, which is not run twice",
                    t.task.function
                ),
            ));
        }
        if t.state == TaskState::Finished {
            if let Some(freed) = t
                .ref_args()
                .into_iter()
                .find(|a| !self.objects.contains_key(a))
            {
                return Err(Error::new(
                    ErrorKind::ObjectLost,
                    format!(
                        "object {id} was lost with its node and cannot be rebuilt: the argument \
                         {freed} of `{}`, which made it, was freed",
                        t.task.function
                    ),
                ));
            }
            tracing::info!(task = %p, function = %t.task.function, object = %id, "rebuilding a lost object from its lineage");
            t.state = TaskState::Waiting;
            self.finished = self.finished.saturating_sub(1);
            for out in t.task.outputs.clone() {
                if let Some(o) = self.objects.get_mut(&out) {
                    if matches!(o.state, ObjState::Lost) || out == id {
                        o.state = ObjState::Pending;
                    }
                }
            }
            self.sync_pins(p);
            self.resolve(p);
        } else if let Some(o) = self.objects.get_mut(&id) {
            o.state = ObjState::Pending;
        }
        Ok(())
    }
}
