//! A node hosting actors: each actor in a worker process of its own, started from the job's
//! executable, which runs `new` once and then the calls the head sends, in the order they
//! arrive.
//!
//! One task per hosted actor owns the write half of the worker's connection and takes the
//! head's commands in order (fetching a call's ref arguments before sending it, so the order
//! holds); another reads the worker's answers, stores each call's result and reports it to
//! the head as `TaskFinished`. A worker that exits unasked is reported as `ActorExited`; the
//! head then fails the calls it was running and restarts or buries the actor.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use parking_lot::Mutex;
use tokio::sync::mpsc;

use super::{Executor, SharedArgs};
use crate::actor::ActorId;
use crate::cluster::proto::{
    ActorAssignment, ActorCallAssignment, FrameReader, Message, TaskId, TaskOutcome,
};
use crate::error::{Error, ErrorKind, Result};
use crate::object::ObjectId;

/// How long a killed actor's process may take to end its running call and drop the actor's
/// state before the node kills it.
pub(crate) const KILLED_ACTOR_GRACE: std::time::Duration = std::time::Duration::from_secs(10);

/// What the head asks of a hosted actor, in order.
pub(super) enum Command {
    Call(ActorCallAssignment),
    Stop { kill: bool },
}

/// Where the commands of one hosted actor go.
pub(super) type Host = mpsc::UnboundedSender<Command>;

/// The calls sent to the worker and not answered yet: their function and output objects.
/// The calls sent to an actor's worker and not answered yet: the method, the outputs, and the
/// arguments it reads from the arena (kept until it answers).
type InFlight = Arc<Mutex<HashMap<TaskId, (String, Vec<ObjectId>, Option<SharedArgs>)>>>;

impl Executor {
    /// Starts hosting an actor: a worker process of its own runs `new`; the head hears how
    /// that went (`ActorStarted`), then the actor serves calls until stopped.
    pub fn start_actor(self: &Arc<Self>, a: ActorAssignment) {
        let key = (a.actor.actor_id, a.incarnation);
        let (tx, rx) = mpsc::unbounded_channel();
        self.actors.lock().insert(key, tx);
        let this = self.clone();
        tokio::spawn(async move {
            this.host(a, rx).await;
            this.actors.lock().remove(&key);
        });
    }

    /// Queues a call for an actor this node hosts. For an actor not hosted here (any more) the
    /// head hears that it exited: when the head still counts that start of the actor alive
    /// here, it restarts it (or buries it) and sends the call again (or fails it); when it
    /// already knows, the call was counted with the others the actor had.
    pub fn actor_call(&self, call: ActorCallAssignment) {
        let key = (call.actor_id, call.incarnation);
        let host = self.actors.lock().get(&key).cloned();
        let call = match host {
            Some(host) => match host.send(Command::Call(call)) {
                Ok(()) => return,
                Err(mpsc::error::SendError(Command::Call(call))) => call,
                Err(_) => return,
            },
            None => call,
        };
        tracing::debug!(actor = %call.actor_id, task = %call.task.task_id, "a call for an actor not hosted here");
        self.report(
            self.incarnation(),
            Message::ActorExited {
                actor_id: call.actor_id,
                incarnation: call.incarnation,
                reason: "it is not running on this node any more".to_owned(),
            },
        );
    }

    /// Stops hosting an actor: after the calls already queued, or at once with `kill`.
    pub fn stop_actor(&self, actor_id: ActorId, incarnation: u32, kill: bool) {
        if let Some(host) = self.actors.lock().get(&(actor_id, incarnation)) {
            let _ = host.send(Command::Stop { kill });
        }
    }

    /// The whole life of one hosted actor.
    async fn host(
        self: &Arc<Self>,
        a: ActorAssignment,
        mut commands: mpsc::UnboundedReceiver<Command>,
    ) {
        let actor_id = a.actor.actor_id;
        let incarnation = a.incarnation;
        let node_incarnation = self.incarnation();
        let worker = self.start_host(a).await;
        let result = worker.as_ref().map(|_| ()).map_err(Clone::clone);
        if let Err(e) = &result {
            tracing::info!(actor = %actor_id, "actor could not start: {e}");
        }
        self.report(
            node_incarnation,
            Message::ActorStarted {
                actor_id,
                incarnation,
                result,
            },
        );
        let Ok(worker) = worker else { return };
        let shares = worker.shares_memory();
        let (pid, conn) = worker.into_parts();
        let (reader, mut writer) = conn.split();
        let in_flight = InFlight::default();
        let stopping = Arc::new(AtomicBool::new(false));
        let answers = tokio::spawn(self.clone().read_answers(
            reader,
            in_flight.clone(),
            stopping.clone(),
            (actor_id, incarnation, pid),
            node_incarnation,
        ));
        while let Some(command) = commands.recv().await {
            match command {
                Command::Call(call) => {
                    let task = call.task;
                    let outcome = match self
                        .fetch_args(&task.function, task.args, &call.arg_locations)
                        .await
                    {
                        Ok(args) => {
                            let shared = self.share_args(shares, task.task_id, &args);
                            let named = shared.as_ref().map(|s| s.message.clone());
                            // Recorded before sending (the answer may come at once), with
                            // what keeps shared arguments unchanged until it does.
                            in_flight.lock().insert(
                                task.task_id,
                                (task.function.clone(), task.outputs, shared),
                            );
                            let method = task
                                .function
                                .rsplit("::")
                                .next()
                                .unwrap_or_default()
                                .to_owned();
                            let run = Message::RunActorCall {
                                task_id: task.task_id,
                                method,
                                args: Vec::new(),
                            };
                            let sent = match named {
                                Some(named) => {
                                    drop(args);
                                    match writer.feed(&named).await {
                                        Ok(()) => writer.send_with_values(&run, &[&[][..]]).await,
                                        Err(e) => Err(e),
                                    }
                                }
                                None => writer.send_with_values(&run, &args).await,
                            };
                            match sent {
                                Ok(()) => continue,
                                // The reader sees the process end and reports it.
                                Err(_) => break,
                            }
                        }
                        Err(error) => TaskOutcome::Failed {
                            error,
                            retryable: false,
                        },
                    };
                    self.report(
                        node_incarnation,
                        Message::TaskFinished {
                            task_id: task.task_id,
                            outcome,
                            next: None,
                        },
                    );
                }
                Command::Stop { kill } => {
                    stopping.store(true, Ordering::Release);
                    // Killed: the head failed the calls sent and not answered, so their
                    // answers go nowhere. The process fails its calls, drops the actor's state
                    // once no call runs and exits; a call that does not end in time goes with
                    // the process.
                    if kill {
                        in_flight.lock().clear();
                    }
                    let stop = Message::StopActor {
                        actor_id,
                        incarnation,
                        kill,
                    };
                    if writer.send(&stop).await.is_err() {
                        self.workers.kill(pid);
                    } else if kill {
                        let this = self.clone();
                        tokio::spawn(async move {
                            tokio::time::sleep(KILLED_ACTOR_GRACE).await;
                            this.workers.kill(pid);
                        });
                    }
                    break;
                }
            }
        }
        // A stopped worker exits after answering the calls it has.
        let _ = answers.await;
        self.workers.kill(pid);
    }

    /// Starts the actor's worker process and runs `new` there.
    async fn start_host(
        &self,
        a: ActorAssignment,
    ) -> Result<crate::cluster::node::workers::Worker> {
        let create = a.actor.create;
        let exe = self.ensure_exe(create.job_id, &a.exe_hash).await?;
        let args = self
            .fetch_args(&create.function, create.args, &a.arg_locations)
            .await?;
        let mut worker = self.workers.checkout(create.job_id, &exe).await?;
        worker.label(&a.actor.class);
        let host = Message::HostActor {
            actor_id: a.actor.actor_id,
            class: a.actor.class.clone(),
            signature_hash: create.signature_hash,
            args: Vec::new(),
            max_concurrency: a.actor.max_concurrency,
        };
        // `new` has no outputs: no blocks come back.
        let answer = self
            .request(&mut worker, TaskId(0), &host, args)
            .await
            .map(|(answer, _)| answer);
        let failed = match answer {
            Ok(Message::ActorHosted { result: Ok(()), .. }) => return Ok(worker),
            Ok(Message::ActorHosted { result: Err(e), .. }) => e,
            Ok(Message::Failed { error }) => Error::with_source(
                error.kind(),
                format!(
                    "the worker process {} of actor `{}` could not take `new`: {error}",
                    worker.pid(),
                    a.actor.class
                ),
                error,
            ),
            Ok(other) => Error::new(
                ErrorKind::System,
                format!(
                    "worker process {} answered HostActor with a {} message",
                    worker.pid(),
                    other.name()
                ),
            ),
            Err(e) if e.kind() != ErrorKind::Network => Error::with_source(
                e.kind(),
                format!(
                    "the worker process {} of actor `{}` broke the protocol while running `new`: {e}",
                    worker.pid(),
                    a.actor.class
                ),
                e,
            ),
            Err(e) => Error::with_source(
                ErrorKind::System,
                format!(
                    "the worker process {} of actor `{}` died while running `new`: {e}",
                    worker.pid(),
                    a.actor.class
                ),
                e,
            ),
        };
        self.workers.discard(worker);
        Err(failed)
    }

    /// Reads the actor worker's answers until it ends; reports each call's outcome, and the
    /// process's end when nobody asked for it.
    async fn read_answers(
        self: Arc<Self>,
        mut reader: FrameReader,
        in_flight: InFlight,
        stopping: Arc<AtomicBool>,
        (actor_id, incarnation, pid): (ActorId, u32, u32),
        node_incarnation: u64,
    ) {
        let end = loop {
            match reader.recv_values().await {
                Ok(Message::TaskResult { task_id, result }) => {
                    let Some((function, outputs, _shared)) = in_flight.lock().remove(&task_id)
                    else {
                        if !stopping.load(Ordering::Acquire) {
                            tracing::warn!(actor = %actor_id, task = %task_id, "an answer to a call never sent; ignored");
                        }
                        continue;
                    };
                    let outcome = self.store_outputs(&function, &outputs, result, Vec::new());
                    if self.forget_stale(node_incarnation, &outcome) {
                        continue;
                    }
                    {
                        let mut stats = self.stats.lock();
                        match &outcome {
                            TaskOutcome::Stored(_) => stats.counts.finished += 1,
                            TaskOutcome::Failed { .. } => stats.counts.failed += 1,
                        }
                    }
                    self.report(
                        node_incarnation,
                        Message::TaskFinished {
                            task_id,
                            outcome,
                            next: None,
                        },
                    );
                }
                // A method called exit_actor: the actor ends after its running calls, whose
                // answers came first; the head marks it dead and stops it here.
                Ok(Message::ActorExiting { .. }) => {
                    stopping.store(true, Ordering::Release);
                    self.report(
                        node_incarnation,
                        Message::ActorExiting {
                            actor_id,
                            incarnation,
                        },
                    );
                }
                // It could not read a call it was sent (see `worker::serve_actor`).
                Ok(Message::Failed { error }) => {
                    self.workers.kill(pid);
                    break format!("it could not take a call: {error}");
                }
                Ok(other) => {
                    self.workers.kill(pid);
                    break format!("it sent an unexpected {} message", other.name());
                }
                // A malformed answer or piece: nothing it sends can be trusted any more.
                Err(e) if e.kind() != ErrorKind::Network => {
                    self.workers.kill(pid);
                    break format!("it broke the protocol: {e}");
                }
                Err(e) => break e.to_string(),
            }
        };
        if !stopping.load(Ordering::Acquire) {
            tracing::warn!(actor = %actor_id, pid, "actor worker process ended: {end}");
            self.report(
                node_incarnation,
                Message::ActorExited {
                    actor_id,
                    incarnation,
                    reason: format!("pid {pid}: {end}"),
                },
            );
        }
    }
}
