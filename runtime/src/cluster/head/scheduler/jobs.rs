//! Jobs that end. A job ends when its driver's connection to the head ends: the driver
//! exited, was killed (`kill -9`, Ctrl-C) or its host vanished (keepalive). Its work stops
//! within moments:
//!
//! - every task of the job that may still run (waiting, queued, held by a node or running)
//!   fails with [`ErrorKind::Cancelled`] and is never retried; what it held on its node is
//!   given back at once;
//! - every alive node hears [`Message::CancelJob`]: it kills the job's worker processes (the
//!   tasks they run, its actors' processes), drops the job's held tasks and starts no more;
//! - the job's actors die, and its objects are freed (escaped ids too: nothing outside the
//!   job can name them);
//! - whatever a process of the job still submits is refused with the same error.

use super::*;

impl Scheduler {
    /// The job ended: its work is cancelled, its workers killed, its actors and objects go.
    pub fn job_ended(&mut self, job: JobId) {
        if !self.ended_jobs.insert(job) {
            return;
        }
        let error = self.job_ended_error(job);
        let live: Vec<TaskId> = self
            .tasks
            .iter()
            .filter(|(_, t)| {
                t.task.job_id == job && t.live() && !matches!(t.actor, Some(ActorPart::Create(_)))
            })
            .map(|(id, _)| *id)
            .collect();
        let cancelled = live.len();
        for task_id in live {
            self.cancel_task(task_id, &error);
        }
        for n in self.nodes.iter().filter(|n| n.alive) {
            if let Some(outbox) = &n.outbox {
                let _ = outbox.send(Message::CancelJob { job_id: job });
            }
        }
        tracing::info!(%job, cancelled, "job ended: its tasks are cancelled");
        let objects: Vec<ObjectId> = self
            .objects
            .iter()
            .filter(|(_, o)| o.job == Some(job))
            .map(|(id, _)| *id)
            .collect();
        for id in objects {
            if let Some(o) = self.objects.get_mut(&id) {
                o.released = true;
                o.escaped = false;
            }
            self.try_free(id);
        }
        self.end_actors_of(job);
        self.dispatch();
    }

    /// Whether `job` ended; work submitted for it then fails with [`Scheduler::job_ended_error`].
    pub(super) fn has_ended(&self, job: JobId) -> bool {
        self.ended_jobs.contains(&job)
    }

    /// What the work of a job that ended fails with.
    pub(super) fn job_ended_error(&self, job: JobId) -> Error {
        Error::new(
            ErrorKind::Cancelled,
            format!("cancelled: {job} ended (its driver exited or its connection was lost)"),
        )
    }

    /// Fails a task that may still run, giving back what it holds on its node first.
    fn cancel_task(&mut self, task_id: TaskId, error: &Error) {
        let Some(t) = self.tasks.get(&task_id) else {
            return;
        };
        match t.state {
            TaskState::Running { node, blocked } => {
                let mut back = t.demand.clone();
                if blocked > 0 {
                    // Lent while it was blocked.
                    back.remove("CPU");
                }
                if let Some(n) = alive_node(&mut self.nodes, node) {
                    n.adjust(&back, 1);
                    n.running.remove(&task_id);
                }
            }
            TaskState::Held { node, .. } => {
                if let Some(n) = alive_node(&mut self.nodes, node) {
                    n.held.retain(|id| *id != task_id);
                }
            }
            _ => {}
        }
        self.fail_task(task_id, error.clone());
    }
}
