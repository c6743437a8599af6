//! The head's actor directory: where each actor lives, the calls waiting for it, named actors,
//! restarts and death.
//!
//! - An actor's constructor is a task of its own ([`ActorPart::Create`], `Class::new`): it
//!   waits for its ref arguments like any task, is placed once (on the alive node with room
//!   for the actor's resources that hosts the fewest actors) and stays `Running` for the
//!   actor's life, holding those resources.
//! - A call is a task too ([`ActorPart::Call`]), queued in the actor's own FIFO. The head sends
//!   the call at the front to the actor's node once its ref arguments are ready; the node
//!   forwards calls to the actor's worker process in that order, so calls run in the order they
//!   were submitted. Results come back as `TaskFinished`, so results, watchers and freeing are
//!   the tasks' own machinery.
//! - An actor whose process or node dies fails the calls it was running with
//!   [`ErrorKind::ActorDied`] and starts again (running `new` with the same arguments) up to
//!   `max_restarts`. After that, or when it is killed, its job ends or its constructor fails, it
//!   is dead: every queued and later call fails with the reason.
//! - An unnamed actor whose creator released it (its last handle there is gone) and whose
//!   handle never escaped into a value stops after the calls already submitted.

use super::*;
use crate::actor::ActorId;
use crate::cluster::proto::{
    ActorAssignment, ActorCallAssignment, ActorCounts, ActorCreation, JobId,
};

/// What part of an actor's life a task is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum ActorPart {
    /// Its constructor.
    Create(ActorId),
    /// A method call.
    Call(ActorId),
}

enum ActorState {
    /// Waiting for its constructor's arguments or for a node with room.
    Pending,
    /// Placed on `node`; `started` once `new` returned there.
    Placed { node: NodeId, started: bool },
    /// Dead for good, with the error its calls get.
    Dead(Error),
}

pub(super) struct ActorEntry {
    creation: ActorCreation,
    exe_hash: String,
    owner: ConnId,
    /// The class's type name, for messages.
    display: String,
    restarts: u32,
    incarnation: u32,
    state: ActorState,
    /// Calls not sent to the actor's node yet, in submission order.
    queue: VecDeque<TaskId>,
    released: bool,
    escaped: bool,
    /// Stop once the queued calls are sent.
    stopping: bool,
}

impl ActorEntry {
    fn died(&self, why: &str) -> Error {
        Error::new(
            ErrorKind::ActorDied,
            format!(
                "actor `{}` ({}) {why}",
                self.display, self.creation.actor_id
            ),
        )
    }

    fn live(&self) -> bool {
        !matches!(self.state, ActorState::Dead(_))
    }
}

impl Scheduler {
    /// A driver (or worker client) creates an actor of a job running `exe_hash`.
    pub fn create_actor(&mut self, conn: ConnId, creation: ActorCreation, exe_hash: String) {
        let actor_id = creation.actor_id;
        if self.actors.contains_key(&actor_id) {
            tracing::warn!(actor = %actor_id, "actor created twice; ignored");
            return;
        }
        self.register_actor(conn, creation, exe_hash);
        self.adopt_unknown_calls(actor_id);
    }

    /// The actor `actor_id` was just created: the calls that came before its creation join
    /// its queue in the order they came (or fail, if it could not be created).
    pub(super) fn adopt_unknown_calls(&mut self, actor_id: ActorId) {
        let Some(calls) = self.unknown_actors.remove(&actor_id) else {
            return;
        };
        let dead = match self.actors.get_mut(&actor_id) {
            Some(a) => match &a.state {
                ActorState::Dead(e) => Some(e.clone()),
                _ => {
                    a.queue.extend(calls.iter().copied());
                    None
                }
            },
            None => Some(super::unknown::unknown_actor_error(actor_id)),
        };
        match dead {
            Some(error) => calls
                .into_iter()
                .for_each(|t| self.fail_task(t, error.clone())),
            None => self.pump_actor(actor_id),
        }
    }

    /// Enters a new actor in the directory and starts placing it.
    fn register_actor(&mut self, conn: ConnId, creation: ActorCreation, exe_hash: String) {
        let actor_id = creation.actor_id;
        let create_id = creation.create.task_id;
        let display = creation
            .class
            .rsplit("::")
            .next()
            .unwrap_or(&creation.class)
            .to_owned();
        let mut entry = ActorEntry {
            creation,
            exe_hash,
            owner: conn,
            display,
            restarts: 0,
            incarnation: 0,
            state: ActorState::Pending,
            queue: VecDeque::new(),
            released: false,
            escaped: false,
            stopping: false,
        };
        let cannot = |entry: &ActorEntry, e: Error| {
            Error::with_source(
                ErrorKind::ActorDied,
                format!(
                    "actor `{}` ({actor_id}) could not be created: {e}",
                    entry.display
                ),
                e,
            )
        };
        if self.has_ended(entry.creation.job_id) {
            let error = self.job_ended_error(entry.creation.job_id);
            entry.state = ActorState::Dead(cannot(&entry, error));
            self.actors.insert(actor_id, entry);
            return;
        }
        if let Some(name) = entry.creation.name.clone() {
            let taken = self
                .actor_names
                .get(&name)
                .and_then(|other| self.actors.get(other))
                .is_some_and(ActorEntry::live);
            if taken {
                let e = Error::new(
                    ErrorKind::ActorDied,
                    format!("cannot create actor named `{name}`: another live actor has that name"),
                );
                entry.state = ActorState::Dead(e);
                self.actors.insert(actor_id, entry);
                return;
            }
            self.actor_names.insert(name, actor_id);
        }
        let task = entry.creation.create.clone();
        let demand = demand(&task).and_then(|d| match self.infeasible(&task.function, &d) {
            Some(e) => Err(e),
            None => Ok(d),
        });
        let demand = match demand {
            Ok(d) => d,
            Err(e) => {
                let error = cannot(&entry, e);
                tracing::info!(actor = %actor_id, "{error}");
                self.actors.insert(actor_id, entry);
                self.actor_dead(actor_id, error);
                return;
            }
        };
        self.actors.insert(actor_id, entry);
        let create = Some(ActorPart::Create(actor_id));
        self.add_task(conn, task, String::new(), demand, create);
        self.resolve(create_id);
        self.dispatch();
    }

    /// The alive node with room for `demand` hosting the fewest actors (the head's own node
    /// and earlier joiners win ties), as an index into `nodes`.
    pub(super) fn actor_node_for(&self, demand: &BTreeMap<String, i64>) -> Option<usize> {
        let hosted = |node: NodeId| {
            self.actors
                .values()
                .filter(|a| matches!(a.state, ActorState::Placed { node: n, .. } if n == node))
                .count()
        };
        self.nodes
            .iter()
            .enumerate()
            .filter(|(_, n)| n.alive && n.outbox.is_some() && n.fits(demand))
            .min_by_key(|(i, n)| (hosted(n.node_id), *i))
            .map(|(i, _)| i)
    }

    /// Starts the actor whose constructor task `create` is ready on the node at `index`.
    pub(super) fn place_actor(
        &mut self,
        create: TaskId,
        actor_id: ActorId,
        index: usize,
        arg_locations: Vec<Option<String>>,
    ) {
        let (Some(t), Some(a)) = (self.tasks.get_mut(&create), self.actors.get_mut(&actor_id))
        else {
            return;
        };
        let node = &mut self.nodes[index];
        node.adjust(&t.demand, -1);
        node.running.insert(create);
        t.state = TaskState::Running {
            node: node.node_id,
            blocked: 0,
        };
        t.attempts += 1;
        a.state = ActorState::Placed {
            node: node.node_id,
            started: false,
        };
        tracing::debug!(actor = %actor_id, class = %a.display, node = %node.node_id, incarnation = a.incarnation, "actor placed");
        let assignment = ActorAssignment {
            actor: a.creation.clone(),
            incarnation: a.incarnation,
            exe_hash: a.exe_hash.clone(),
            arg_locations,
        };
        if let Some(outbox) = &node.outbox {
            // A closed outbox means the node's connection ended: its death restarts the actor.
            let _ = outbox.send(Message::StartActor(Box::new(assignment)));
        }
        self.pump_actor(actor_id);
    }

    /// Sends the actor's queued calls whose turn it is to its node, and fails those whose
    /// arguments failed. Each caller's calls go in the order it submitted them: a call still
    /// waiting for an argument holds back the later calls of its caller, not those of others.
    pub(super) fn pump_actor(&mut self, actor_id: ActorId) {
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

    /// The node reports that the actor's worker process ended without being asked to.
    pub fn actor_exited(
        &mut self,
        node: NodeId,
        actor_id: ActorId,
        incarnation: u32,
        reason: &str,
    ) {
        let placed_here = self.actors.get(&actor_id).is_some_and(|a| {
            a.incarnation == incarnation
                && matches!(a.state, ActorState::Placed { node: on, .. } if on == node)
        });
        if placed_here {
            self.actor_failed(
                actor_id,
                &format!("its worker process on node {node} exited ({reason})"),
            );
            self.dispatch();
        }
    }

    /// The actor's process or node died: the calls it was running fail, and it starts again
    /// when it has restarts left, or is dead.
    pub(super) fn actor_failed(&mut self, actor_id: ActorId, reason: &str) {
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
    fn fail_running_calls(&mut self, actor_id: ActorId, error: &Error) {
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
    fn give_back(&mut self, create: TaskId) {
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

    /// The actor is dead for good: its resources go back, its name is free, its queued and
    /// running calls fail with `error`, and its process (if any) is killed.
    pub(super) fn actor_dead(&mut self, actor_id: ActorId, error: Error) {
        let Some(a) = self.actors.get_mut(&actor_id) else {
            return;
        };
        let placed = match a.state {
            ActorState::Dead(_) => return,
            ActorState::Placed { node, .. } => Some(node),
            ActorState::Pending => None,
        };
        tracing::debug!(actor = %actor_id, class = %a.display, "actor dead: {error}");
        a.state = ActorState::Dead(error.clone());
        let incarnation = a.incarnation;
        self.end_actor(actor_id);
        self.fail_running_calls(actor_id, &error);
        self.pump_actor(actor_id);
        if let Some(node) = placed {
            self.stop_on(node, actor_id, incarnation, true);
        }
    }

    /// Stops a released actor whose queued calls were all sent: it finishes them, then its
    /// process ends.
    fn stop_actor(&mut self, actor_id: ActorId) {
        let Some(a) = self.actors.get_mut(&actor_id) else {
            return;
        };
        let ActorState::Placed { node, .. } = a.state else {
            return;
        };
        a.state = ActorState::Dead(a.died("was stopped: every handle to it was dropped"));
        let incarnation = a.incarnation;
        tracing::debug!(actor = %actor_id, class = %a.display, "actor stopped: released");
        self.end_actor(actor_id);
        self.stop_on(node, actor_id, incarnation, false);
    }

    /// Frees the name and the resources of an actor that just died.
    fn end_actor(&mut self, actor_id: ActorId) {
        let Some(a) = self.actors.get(&actor_id) else {
            return;
        };
        let create = a.creation.create.task_id;
        if let Some(name) = &a.creation.name {
            if self.actor_names.get(name) == Some(&actor_id) {
                self.actor_names.remove(name);
            }
        }
        self.give_back(create);
        if let Some(t) = self.tasks.get_mut(&create) {
            t.state = TaskState::Finished;
        }
        self.sync_pins(create);
        // A dead actor is never built again: nothing needs its constructor any more.
        self.tasks.remove(&create);
    }

    /// Tells `node` to stop hosting the actor: after the calls sent before, or at once (`kill`).
    fn stop_on(&self, node: NodeId, actor_id: ActorId, incarnation: u32, kill: bool) {
        let stop = Message::StopActor {
            actor_id,
            incarnation,
            kill,
        };
        self.send_to(node, stop);
    }

    /// Kills the actor: its queued and running calls fail, later calls too.
    pub fn kill_actor(&mut self, actor_id: ActorId) {
        let error = match self.actors.get(&actor_id) {
            Some(a) => a.died("was killed"),
            None => return,
        };
        self.actor_dead(actor_id, error);
        self.dispatch();
    }

    /// `conn`'s last handle to the actor is gone: an unnamed actor whose handle never escaped
    /// stops after its queued calls.
    pub fn release_actor(&mut self, conn: ConnId, actor_id: ActorId) {
        let Some(a) = self.actors.get_mut(&actor_id) else {
            return;
        };
        if a.owner != conn {
            return;
        }
        a.released = true;
        if !a.escaped && a.creation.name.is_none() && a.live() {
            a.stopping = true;
            self.pump_actor(actor_id);
            self.dispatch();
        }
    }

    /// A handle to the actor was serialized: it lives until killed or until its job ends.
    pub fn escape_actor(&mut self, actor_id: ActorId) {
        if let Some(a) = self.actors.get_mut(&actor_id) {
            a.escaped = true;
        }
    }

    /// The actors `conn` created and still held count as released.
    pub(super) fn release_actors_of(&mut self, conn: ConnId) {
        let owned: Vec<ActorId> = self
            .actors
            .iter()
            .filter(|(_, a)| a.owner == conn && !a.released)
            .map(|(id, _)| *id)
            .collect();
        for id in owned {
            self.release_actor(conn, id);
        }
    }

    /// The job ended: its live actors die.
    pub(super) fn end_actors_of(&mut self, job: JobId) {
        let ids: Vec<ActorId> = self
            .actors
            .iter()
            .filter(|(_, a)| a.creation.job_id == job && a.live())
            .map(|(id, _)| *id)
            .collect();
        for id in ids {
            if let Some(error) = self
                .actors
                .get(&id)
                .map(|a| a.died("was stopped: its job ended"))
            {
                self.actor_dead(id, error);
            }
        }
    }

    /// The live actor named `name`, with its class's stable name.
    pub fn named_actor(&self, name: &str) -> Option<(ActorId, String)> {
        let id = self.actor_names.get(name)?;
        let a = self.actors.get(id).filter(|a| a.live())?;
        Some((*id, a.creation.class.clone()))
    }

    /// Actors by state, cluster-wide.
    pub fn actor_counts(&self) -> ActorCounts {
        let mut c = ActorCounts::default();
        for a in self.actors.values() {
            match &a.state {
                ActorState::Dead(_) => c.dead += 1,
                ActorState::Placed { started: true, .. } => c.alive += 1,
                _ if a.restarts > 0 => c.restarting += 1,
                _ => c.pending += 1,
            }
        }
        c
    }

    /// The actors placed on `node` (for a node that died).
    pub(super) fn actors_on(&self, node: NodeId) -> Vec<ActorId> {
        self.actors
            .iter()
            .filter(|(_, a)| matches!(a.state, ActorState::Placed { node: n, .. } if n == node))
            .map(|(id, _)| *id)
            .collect()
    }
}
