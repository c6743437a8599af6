//! Tasks on a node: those the head sends ahead, held until a task of the same resources ends
//! here or the head says to start them, and the run of one task: its executable, its
//! arguments, a worker process, its outputs stored and its end reported (counted in the
//! node's load meanwhile).

use std::collections::BTreeMap;
use std::sync::Arc;

use super::{Executor, Stats};
use crate::cluster::proto::{Message, TaskAssignment, TaskId, TaskOutcome};
use crate::error::{Error, ErrorKind};

impl Executor {
    /// Keeps a task the head sent ahead, to start in place of the next task of the same
    /// resources that ends here, or when the head says [`Executor::start_held`].
    pub fn hold(&self, assignment: TaskAssignment) {
        tracing::debug!(task = %assignment.task.task_id, "task held");
        self.held.lock().push_back(assignment);
    }

    /// Starts the held task `task_id` now; one already started in place of another is not
    /// started again.
    pub fn start_held(self: &Arc<Self>, task_id: TaskId) {
        let assignment = {
            let mut held = self.held.lock();
            let at = held.iter().position(|a| a.task.task_id == task_id);
            at.and_then(|at| held.remove(at))
        };
        match assignment {
            Some(assignment) => self.execute(assignment),
            None => tracing::debug!(task = %task_id, "a held task already started"),
        }
    }

    /// The first held task that needs exactly `resources`: what a task that needed them
    /// leaves free.
    fn take_held(&self, resources: &BTreeMap<String, f64>) -> Option<TaskAssignment> {
        let mut held = self.held.lock();
        let at = held.iter().position(|a| a.task.resources == *resources)?;
        held.remove(at)
    }

    /// Runs an assigned task in the background and reports its end to the head; then, in the
    /// same background task, the held tasks that take its place.
    pub fn execute(self: &Arc<Self>, assignment: TaskAssignment) {
        let this = self.clone();
        let incarnation = self.incarnation();
        tokio::spawn(async move {
            let mut next = Some(assignment);
            while let Some(assignment) = next.take() {
                if this.incarnation() != incarnation {
                    tracing::debug!(task = %assignment.task.task_id, "a task of an old incarnation not started");
                    return;
                }
                let (task_id, resources, outcome) = this.execute_one(assignment).await;
                if this.forget_stale(incarnation, &outcome) {
                    return;
                }
                // The worker and the CPU go to the next task at once; the head learns it with
                // this report and sends another task to hold.
                next = this.take_held(&resources);
                this.report(
                    incarnation,
                    Message::TaskFinished {
                        task_id,
                        outcome,
                        next: next.as_ref().map(|a| a.task.task_id),
                    },
                );
            }
        });
    }

    /// Runs one task, counted in the node's load meanwhile: its id, resources and outcome.
    async fn execute_one(
        &self,
        mut assignment: TaskAssignment,
    ) -> (TaskId, BTreeMap<String, f64>, TaskOutcome) {
        let task_id = assignment.task.task_id;
        let function = assignment.task.function.clone();
        // Running the task needs only its name, arguments and outputs.
        let resources = std::mem::take(&mut assignment.task.resources);
        let count = |stats: &mut Stats, sign: f64| {
            for (r, a) in &resources {
                match stats.in_use.get_mut(r) {
                    Some(used) => *used += sign * a,
                    None => {
                        stats.in_use.insert(r.clone(), sign * a);
                    }
                }
            }
        };
        {
            let mut stats = self.stats.lock();
            stats.counts.running += 1;
            count(&mut stats, 1.0);
        }
        tracing::debug!(task = %task_id, %function, attempt = assignment.attempt, "task started");
        let outcome = self.run(assignment).await;
        {
            let mut stats = self.stats.lock();
            stats.counts.running = stats.counts.running.saturating_sub(1);
            count(&mut stats, -1.0);
            match &outcome {
                TaskOutcome::Stored(_) => stats.counts.finished += 1,
                TaskOutcome::Failed { .. } => stats.counts.failed += 1,
            }
        }
        if let TaskOutcome::Failed { error, retryable } = &outcome {
            tracing::info!(task = %task_id, %function, retryable, "task failed: {error}");
        }
        (task_id, resources, outcome)
    }

    async fn run(&self, a: TaskAssignment) -> TaskOutcome {
        let system = |error: Error| TaskOutcome::Failed {
            retryable: !matches!(error.kind(), ErrorKind::Config | ErrorKind::Protocol),
            error,
        };
        let exe = match self.ensure_exe(a.task.job_id, &a.exe_hash).await {
            Ok(p) => p,
            Err(e) => return system(e),
        };
        let TaskAssignment {
            mut task,
            arg_locations,
            ..
        } = a;
        let args = std::mem::take(&mut task.args);
        let args = match self.fetch_args(&task.function, args, &arg_locations).await {
            Ok(args) => args,
            Err(e) => return system(e),
        };
        let mut worker = match self.workers.checkout(task.job_id, &exe).await {
            Ok(w) => w,
            Err(e) => return system(e),
        };
        worker.label(&task.function);
        let run = Message::RunTask {
            task_id: task.task_id,
            function: task.function.clone(),
            signature_hash: task.signature_hash,
            args: Vec::new(),
        };
        let answer = self.request(&mut worker, task.task_id, &run, args).await;
        drop(run);
        let (answer, shared) = match answer {
            Ok((answer, shared)) => (Ok(answer), shared),
            Err(e) => (Err(e), Vec::new()),
        };
        let result = match answer {
            Ok(Message::TaskResult { task_id, result }) if task_id == task.task_id => {
                self.workers.checkin(worker);
                result
            }
            // The worker could not read what it was sent (see `worker::serve`).
            Ok(Message::Failed { error }) => {
                let pid = worker.pid();
                self.workers.discard(worker);
                return TaskOutcome::Failed {
                    error: Error::with_source(
                        error.kind(),
                        format!(
                            "worker process {pid} could not take `{}`: {error}",
                            task.function
                        ),
                        error,
                    ),
                    retryable: false,
                };
            }
            Ok(other) => {
                let pid = worker.pid();
                self.workers.discard(worker);
                return system(Error::new(
                    ErrorKind::Protocol,
                    format!(
                        "worker process {pid} answered RunTask of `{}` with a {} message",
                        task.function,
                        other.name()
                    ),
                ));
            }
            // A malformed answer or piece: the task's values cannot be trusted, and running it
            // again would likely break the same way.
            Err(e) if e.kind() != ErrorKind::Network => {
                let pid = worker.pid();
                self.workers.discard(worker);
                return TaskOutcome::Failed {
                    error: Error::with_source(
                        e.kind(),
                        format!(
                            "worker process {pid} broke the protocol while running `{}`: {e}",
                            task.function
                        ),
                        e,
                    ),
                    retryable: false,
                };
            }
            Err(e) => {
                let pid = worker.pid();
                self.workers.discard(worker);
                return TaskOutcome::Failed {
                    error: Error::with_source(
                        ErrorKind::System,
                        format!(
                            "worker process died while running `{}` (pid {pid}): {e}",
                            task.function
                        ),
                        e,
                    ),
                    retryable: true,
                };
            }
        };
        self.store_outputs(&task.function, &task.outputs, result, shared)
    }
}
