//! The jobs of the cluster: the job table (each job's executable, and whether its driver is
//! still connected), and what the end of a job cancels.
//!
//! A job ends when its driver's connection to the head ends: the driver exited, was killed
//! (`kill -9`, Ctrl-C) or its host vanished (keepalive). Its work stops within moments:
//!
//! - every task of the job that may still run (waiting, queued, held by a node or running)
//!   fails with [`ErrorKind::Cancelled`] and is never retried; what it held on its node is
//!   given back at once;
//! - every alive node hears [`Message::CancelJob`]: it kills the job's worker processes (the
//!   tasks they run, its actors' processes), drops the job's held tasks and starts no more;
//! - the job's actors die, and its objects are freed (escaped ids too: nothing outside the
//!   job can name them);
//! - whatever a process of the job still submits is refused with the same error.

use std::collections::BTreeMap;

use super::actors::ActorPart;
use super::exes::valid_hash;
use super::resources::alive_node;
use super::scheduler::Scheduler;
use super::tasks::TaskState;
use super::Head;
use crate::cluster::proto::{JobId, Message, TaskId};
use crate::error::{Error, ErrorKind, Result};
use crate::object::ObjectId;

/// The jobs (drivers) of the cluster.
#[derive(Debug, Default)]
pub(super) struct JobTable {
    pub(super) jobs: BTreeMap<u64, JobEntry>,
    pub(super) next: u64,
}

#[derive(Debug)]
pub(super) struct JobEntry {
    /// The job's executable.
    pub(super) exe_hash: String,
    /// For people.
    pub(super) name: String,
    /// The namespace of its named actors, as its driver registered it.
    pub(super) namespace: String,
    /// Whether its driver is still connected.
    pub(super) running: bool,
}

impl Head {
    /// Registers or finds the job a driver's first message names: its id, whether the head
    /// needs its executable, and whether this connection owns (started) the job.
    pub(super) fn open_job(&self, first: Message) -> Result<(JobId, bool, bool)> {
        let mut t = self.tables.lock();
        match first {
            Message::RegisterJob {
                exe_hash,
                exe_size,
                name,
                namespace,
            } => {
                if !valid_hash(&exe_hash) {
                    return Err(Error::new(
                        ErrorKind::Protocol,
                        "RegisterJob needs the executable's hex SHA-256",
                    ));
                }
                t.jobs.next += 1;
                let id = t.jobs.next;
                // In use until the job ends (`close_job`): never evicted meanwhile.
                self.exes.acquire(&exe_hash);
                let need_exe = !self.exes.has(&exe_hash);
                tracing::info!(job = %JobId(id), %name, exe = %exe_hash, size = exe_size, need_exe, "job registered");
                t.jobs.jobs.insert(
                    id,
                    JobEntry {
                        exe_hash,
                        name,
                        namespace,
                        running: true,
                    },
                );
                Ok((JobId(id), need_exe, true))
            }
            Message::AttachJob { job_id } => match t.jobs.jobs.get(&job_id.0) {
                Some(_) => Ok((job_id, false, false)),
                None => Err(Error::new(
                    ErrorKind::Config,
                    format!("{job_id} is not a job of this cluster"),
                )),
            },
            other => Err(Error::new(
                ErrorKind::Protocol,
                format!("expected RegisterJob or AttachJob, got {}", other.name()),
            )),
        }
    }

    pub(super) fn close_job(&self, job_id: JobId, owner: bool) {
        if owner {
            let mut t = self.tables.lock();
            let mut exe = None;
            if let Some(j) = t.jobs.jobs.get_mut(&job_id.0) {
                if j.running {
                    exe = Some(j.exe_hash.clone());
                }
                j.running = false;
                tracing::debug!(job = %job_id, name = %j.name, "job ended");
            }
            t.sched.job_ended(job_id);
            drop(t);
            if let Some(hash) = exe {
                self.exes.release(&hash);
            }
        }
    }
}

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
