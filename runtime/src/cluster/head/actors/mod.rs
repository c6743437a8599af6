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
//!
//! Here: the directory, creation and placement; the calls in `calls`, restarts in `restarts`,
//! the end of an actor in `death`.

use std::collections::{BTreeMap, VecDeque};

use super::resources::demand;
use super::scheduler::{ConnId, Scheduler};
use super::tasks::TaskState;
use crate::actor::ActorId;
use crate::cluster::proto::{ActorAssignment, ActorCounts, ActorCreation, Message, TaskId};
use crate::error::{Error, ErrorKind};
use crate::runtime::NodeId;

/// The most names [`Scheduler::named_actors`] lists, so the answer always fits a frame.
pub(super) const MAX_LISTED_NAMES: usize = 10_000;

mod calls;
mod death;
mod restarts;

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
    pub(in crate::cluster::head) fn died(&self, why: &str) -> Error {
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
            let name = (entry.creation.namespace.clone(), name);
            let taken = self
                .actor_names
                .get(&name)
                .and_then(|other| self.actors.get(other))
                .is_some_and(ActorEntry::live);
            if taken {
                let e = Error::new(
                    ErrorKind::ActorDied,
                    format!(
                        "cannot create actor named `{}` in namespace `{}`: another live actor \
                         has that name",
                        name.1, name.0
                    ),
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

    /// The live actor named `name` in `namespace`, with its class's stable name.
    pub fn named_actor(&self, namespace: &str, name: &str) -> Option<(ActorId, String)> {
        let id = self
            .actor_names
            .get(&(namespace.to_owned(), name.to_owned()))?;
        let a = self.actors.get(id).filter(|a| a.live())?;
        Some((*id, a.creation.class.clone()))
    }

    /// `(namespace, name)` of every live named actor, sorted; at most [`MAX_LISTED_NAMES`].
    pub fn named_actors(&self) -> Vec<(String, String)> {
        self.actor_names
            .iter()
            .filter(|(_, id)| self.actors.get(id).is_some_and(ActorEntry::live))
            .map(|(name, _)| name.clone())
            .take(MAX_LISTED_NAMES)
            .collect()
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
