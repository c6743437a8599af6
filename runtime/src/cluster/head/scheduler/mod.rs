//! The head's task scheduler: which objects are ready and where, which tasks wait for what,
//! and which node runs each task.
//!
//! - A task waits until every object it takes by ref is ready (produced by a task or put by a
//!   driver, somewhere in the cluster). An argument that failed fails the task without running
//!   it; an argument lost with its node is rebuilt by running its producer again (lineage).
//! - A ready task goes to the first alive node (the head's own node first, then in joining
//!   order) whose available resources fit it; it queues while none does. A task no alive node
//!   could ever hold fails at once with [`ErrorKind::ResourceUnavailable`].
//! - Resources are accounted here, at the head: declared minus assigned. A task blocked in
//!   `get`/`wait` lends its CPU back until it goes on, so nested tasks never deadlock.
//! - A task whose worker or node dies runs again, up to its `max_retries`.
//! - Objects are freed by ownership. The owner of an object is the connection that submitted
//!   the task making it (or put it). The head frees it (forgets it, its lineage once no output
//!   of the task is left, and has its node delete the bytes) once the owner released it (its
//!   last ref in the owner's process is gone, or the owner disconnected), no waiting, queued or
//!   running task takes it as an argument, and its id never escaped: an id serialized inside a
//!   value (a ref in a put value or in a task's arguments or result) may be held by processes
//!   the head cannot see, so it is kept until the head stops. A lost object whose producer's
//!   arguments were freed cannot be rebuilt: it fails with [`ErrorKind::ObjectLost`].
//!
//! Every method runs under the head's lock and only sends on unbounded channels, so it never
//! waits. The messages go to the node's registration connection or to a driver's connection.

use std::collections::{BTreeMap, HashMap, HashSet, VecDeque};

use crate::cluster::{IdMap, IdSet};
use std::sync::Arc;

use tokio::sync::mpsc;

mod actors;
mod jobs;
mod unknown;
mod unreachable;

use actors::{ActorEntry, ActorPart};
pub use unknown::UNKNOWN_GRACE;

use crate::cluster::node::store::ObjectStore;
use crate::cluster::proto::{
    JobId, Message, StoredObject, TaskAssignment, TaskCounts, TaskId, TaskOutcome, TaskSubmission,
    WireArg,
};
use crate::error::{Error, ErrorKind};
use crate::object::ObjectId;
use crate::resources::{check_fits, Amount, UNIT};
use crate::runtime::NodeId;

/// Where messages to one connection (a node's or a driver's) go.
pub type Outbox = mpsc::UnboundedSender<Message>;

/// The id of a driver (or worker client) connection at the head.
pub type ConnId = u64;

/// Resource amounts are kept in fixed point (see [`Amount`]), so sums do not drift.
fn to_units(amount: f64) -> i64 {
    Amount::from_f64(amount).units()
}

fn from_units(units: i64) -> f64 {
    Amount::from_units(units).as_f64()
}

struct NodeSlot {
    node_id: NodeId,
    address: String,
    alive: bool,
    total: BTreeMap<String, i64>,
    available: BTreeMap<String, i64>,
    outbox: Option<Outbox>,
    running: IdSet<TaskId>,
    /// Tasks sent to the node to start when a running one ends ([`Message::HoldTask`]), in
    /// the order sent.
    held: VecDeque<TaskId>,
}

impl NodeSlot {
    /// How many tasks the node may hold: two per CPU it declares (at least two). Enough for
    /// each of its workers to go from one task to the next without a round trip to the head,
    /// with the head's top-ups for several tasks sharing a write; more would keep work waiting
    /// behind busy CPUs while another node frees up.
    fn hold_limit(&self) -> usize {
        let cpus = self.total.get("CPU").copied().unwrap_or(0) / UNIT;
        2 * cpus.max(1) as usize
    }

    fn fits(&self, demand: &BTreeMap<String, i64>) -> bool {
        demand
            .iter()
            .all(|(r, amount)| self.available.get(r).copied().unwrap_or(0) >= *amount)
    }

    /// Whether a task of `demand` can go to this node now: to run, or to be held.
    fn takes(&self, demand: &BTreeMap<String, i64>) -> bool {
        self.alive
            && self.outbox.is_some()
            && (self.fits(demand)
                || (self.held.len() < self.hold_limit() && self.could_ever_fit(demand)))
    }

    fn could_ever_fit(&self, demand: &BTreeMap<String, i64>) -> bool {
        demand
            .iter()
            .all(|(r, amount)| self.total.get(r).copied().unwrap_or(0) >= *amount)
    }

    /// Gives `cpu` units of CPU to others (a negative amount takes them back).
    fn lend_cpu(&mut self, cpu: i64) {
        *self.available.entry("CPU".into()).or_insert(0) += cpu;
    }

    fn adjust(&mut self, demand: &BTreeMap<String, i64>, sign: i64) {
        for (r, amount) in demand {
            *self.available.entry(r.clone()).or_insert(0) += sign * amount;
        }
    }
}

#[derive(Clone)]
enum ObjState {
    /// Not produced yet (or being produced again).
    Pending,
    /// Stored on a node.
    Ready {
        node: NodeId,
        address: String,
        inline: Option<Arc<Vec<u8>>>,
    },
    /// Will never be produced.
    Failed(Error),
    /// Its node died; its producer may make it again.
    Lost,
}

struct ObjectEntry {
    state: ObjState,
    /// The task that produces it (its lineage); `None` for objects put by a driver.
    producer: Option<TaskId>,
    /// Connections waiting to hear when it is ready.
    watchers: Vec<ConnId>,
    /// The connection that owns it (submitted its task or put it), when known.
    owner: Option<ConnId>,
    /// The job of its owner: when the job ends, the object is freed, escaped or not.
    job: Option<JobId>,
    /// The owner holds no ref to it any more.
    released: bool,
    /// Its id was serialized inside a value: it is never freed.
    escaped: bool,
    /// How many waiting, queued or running tasks take it as an argument.
    pins: u32,
}

impl ObjectEntry {
    fn pending(producer: Option<TaskId>) -> ObjectEntry {
        ObjectEntry {
            state: ObjState::Pending,
            producer,
            watchers: Vec::new(),
            owner: None,
            job: None,
            released: false,
            escaped: false,
            pins: 0,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum TaskState {
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

struct TaskEntry {
    task: TaskSubmission,
    exe_hash: String,
    submitter: ConnId,
    state: TaskState,
    /// Distinct argument objects not ready yet.
    missing: usize,
    /// How many times the task was started.
    attempts: u32,
    /// How many retries it used.
    retries: u32,
    demand: BTreeMap<String, i64>,
    /// Whether its argument objects count it in their `pins`.
    pinned: bool,
    /// The actor it creates or calls, if it is not a plain task.
    actor: Option<ActorPart>,
    /// For an actor call: when it was last sent to the actor's node (in the order of
    /// [`Scheduler::sends`]), so that the calls an actor's death finds unanswered can be told
    /// apart: the first ones may have run, the later ones had not started.
    sent: u64,
}

impl TaskEntry {
    /// Whether the task may still run (and so needs its arguments).
    fn live(&self) -> bool {
        matches!(
            self.state,
            TaskState::Waiting
                | TaskState::Queued
                | TaskState::Running { .. }
                | TaskState::Held { .. }
        )
    }

    /// Its distinct argument objects.
    fn ref_args(&self) -> Vec<ObjectId> {
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

/// What became of a queued task [`Scheduler::dispatch`] looked at.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Start {
    /// It runs on a node now, or a node holds it.
    Started,
    /// It left the queue: failed, or back to waiting for an argument.
    Gone,
    /// No node has room for it now.
    NoRoom,
}

/// The head's view of tasks, objects and node resources.
pub struct Scheduler {
    head_node: NodeId,
    store: Arc<ObjectStore>,
    nodes: Vec<NodeSlot>,
    objects: IdMap<ObjectId, ObjectEntry>,
    tasks: IdMap<TaskId, TaskEntry>,
    waiting_on: IdMap<ObjectId, Vec<TaskId>>,
    /// Tasks whose arguments are ready, by demand, each group in arrival order.
    queue: Vec<(BTreeMap<String, i64>, VecDeque<TaskId>)>,
    conns: IdMap<ConnId, Outbox>,
    /// The job each connection works for.
    conn_jobs: IdMap<ConnId, JobId>,
    next_conn: ConnId,
    /// How many actor calls were sent to nodes so far.
    sends: u64,
    finished: u64,
    failed: u64,
    actors: IdMap<crate::actor::ActorId, ActorEntry>,
    actor_names: HashMap<String, crate::actor::ActorId>,
    /// Jobs whose driver left: their work is cancelled and nothing new of theirs runs.
    ended_jobs: HashSet<JobId>,
    /// Ids that tasks or watchers named before anyone made or put them, with when: those
    /// still unknown after [`UNKNOWN_GRACE`] fail (see [`Scheduler::expire_unknown`]).
    unknown: VecDeque<(std::time::Instant, ObjectId)>,
    /// Calls of actors the head has not heard of yet, by actor, and when each actor was first
    /// called: a handle can reach a caller before its creation reaches the head (see
    /// [`Scheduler::expire_unknown`]).
    unknown_actors: IdMap<crate::actor::ActorId, Vec<TaskId>>,
    unknown_actors_since: VecDeque<(std::time::Instant, crate::actor::ActorId)>,
    /// Functions' parameter names, by name and signature hash, from their first submissions.
    arg_names: ArgNames,
}

/// Functions' parameter names as submitters sent them, bounded: a peer cannot grow it past
/// [`ArgNames::MAX_FUNCTIONS`] functions of [`ArgNames::MAX_PARAMS`] short names each.
#[derive(Debug, Default)]
struct ArgNames(HashMap<(String, u64), Vec<String>>);

impl ArgNames {
    const MAX_FUNCTIONS: usize = 4096;
    const MAX_PARAMS: usize = 64;
    const MAX_NAME: usize = 64;

    /// Remembers the names a submission carries, if any.
    fn learn(&mut self, task: &TaskSubmission) {
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
    fn name(&self, task: &TaskSubmission, index: usize) -> String {
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

impl std::fmt::Debug for Scheduler {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Scheduler")
            .field("nodes", &self.nodes.len())
            .field("objects", &self.objects.len())
            .field("tasks", &self.tasks.len())
            .field(
                "queued",
                &self.queue.iter().map(|(_, q)| q.len()).sum::<usize>(),
            )
            .finish_non_exhaustive()
    }
}

impl Scheduler {
    /// A scheduler for the head whose own node is `head_node`, storing on the head's node in
    /// `store`.
    pub fn new(head_node: NodeId, store: Arc<ObjectStore>) -> Scheduler {
        Scheduler {
            head_node,
            store,
            nodes: Vec::new(),
            objects: IdMap::default(),
            tasks: IdMap::default(),
            waiting_on: IdMap::default(),
            queue: Vec::new(),
            conns: IdMap::default(),
            conn_jobs: IdMap::default(),
            next_conn: 1,
            sends: 0,
            finished: 0,
            failed: 0,
            actors: IdMap::default(),
            actor_names: HashMap::new(),
            ended_jobs: HashSet::new(),
            unknown: VecDeque::new(),
            unknown_actors: IdMap::default(),
            unknown_actors_since: VecDeque::new(),
            arg_names: ArgNames::default(),
        }
    }

    // ---- Nodes ----

    /// A node joined (or reconnected): its tasks go to `outbox` from now on.
    pub fn add_node(
        &mut self,
        node_id: NodeId,
        address: String,
        resources: &BTreeMap<String, f64>,
        outbox: Outbox,
    ) {
        let total: BTreeMap<String, i64> = resources
            .iter()
            .map(|(r, a)| (r.clone(), to_units(*a)))
            .collect();
        if let Some(n) = self.nodes.iter_mut().find(|n| n.node_id == node_id) {
            if !n.alive {
                // A new incarnation of a node declared dead: nothing of the old one runs
                // there any more, so everything it declares is free.
                n.available = total.clone();
                n.total = total;
                n.running = IdSet::default();
                n.held.clear();
            }
            n.address = address;
            n.outbox = Some(outbox);
            n.alive = true;
        } else {
            let slot = NodeSlot {
                node_id,
                address,
                alive: true,
                available: total.clone(),
                total,
                outbox: Some(outbox),
                running: IdSet::default(),
                held: VecDeque::new(),
            };
            // The head's own node comes first: placement is first fit in this order.
            if node_id == self.head_node {
                self.nodes.insert(0, slot);
            } else {
                self.nodes.push(slot);
            }
        }
        self.dispatch();
    }

    /// How many nodes the scheduler keeps state for, alive or dead.
    #[cfg(test)]
    pub fn node_count(&self) -> usize {
        self.nodes.len()
    }

    /// Forgets a dead node (its tasks and objects were handled when it was lost).
    pub fn forget_node(&mut self, node_id: NodeId) {
        self.nodes.retain(|n| n.alive || n.node_id != node_id);
    }

    /// A node died: its running tasks run again elsewhere (or fail when out of retries), and
    /// the objects only it held are lost (small ones survive: the head knows their bytes).
    pub fn node_lost(&mut self, node_id: NodeId, reason: &str) {
        let Some(n) = alive_node(&mut self.nodes, node_id) else {
            return;
        };
        n.alive = false;
        n.outbox = None;
        n.available = n.total.keys().map(|r| (r.clone(), 0)).collect();
        let address = n.address.clone();
        // A held task may have started there already: it counts as running.
        let running: Vec<TaskId> = n.running.drain().chain(n.held.drain(..)).collect();
        let head_address = self.head_address();

        // Objects held there.
        let mut lost = 0usize;
        let mut rescued = 0usize;
        for (id, entry) in self.objects.iter_mut() {
            if let ObjState::Ready {
                node,
                inline: Some(bytes),
                ..
            } = &entry.state
            {
                if *node == node_id {
                    if let Some(head_address) = &head_address {
                        if node_id != self.head_node {
                            self.store.put(*id, bytes.to_vec());
                            entry.state = ObjState::Ready {
                                node: self.head_node,
                                address: head_address.clone(),
                                inline: Some(bytes.clone()),
                            };
                            rescued += 1;
                            continue;
                        }
                    }
                }
            }
            if matches!(&entry.state, ObjState::Ready { node, .. } if *node == node_id) {
                entry.state = ObjState::Lost;
                lost += 1;
            }
        }
        tracing::warn!(
            node = %node_id,
            %address,
            tasks = running.len(),
            lost,
            rescued,
            "node lost ({reason}): running its tasks again elsewhere"
        );

        for task_id in running {
            let Some(t) = self.tasks.get_mut(&task_id) else {
                continue;
            };
            if t.actor.is_some() {
                continue; // an actor's constructor: the actor is restarted below
            }
            if t.retries < t.task.max_retries {
                t.retries += 1;
                t.state = TaskState::Waiting;
                tracing::info!(task = %task_id, function = %t.task.function, retry = t.retries, "retrying a task of a dead node");
                self.resolve(task_id);
            } else {
                let error = Error::new(
                    ErrorKind::System,
                    format!(
                        "`{}` failed: its node {node_id} at {address} died ({reason}) and it \
                         was retried {} times (max_retries)",
                        t.task.function, t.retries
                    ),
                );
                self.fail_task(task_id, error);
            }
        }
        for actor_id in self.actors_on(node_id) {
            self.actor_failed(
                actor_id,
                &format!("its node {node_id} at {address} died ({reason})"),
            );
        }
        self.dispatch();
    }

    fn head_address(&self) -> Option<String> {
        self.nodes
            .iter()
            .find(|n| n.node_id == self.head_node && n.alive)
            .map(|n| n.address.clone())
    }

    /// The resources of `node_id` not assigned to tasks right now (never below zero).
    pub fn available(&self, node_id: NodeId) -> Option<BTreeMap<String, f64>> {
        self.nodes.iter().find(|n| n.node_id == node_id).map(|n| {
            n.available
                .iter()
                .map(|(r, a)| (r.clone(), from_units((*a).max(0))))
                .collect()
        })
    }

    /// Tasks by state, cluster-wide.
    pub fn counts(&self) -> TaskCounts {
        let mut c = TaskCounts {
            finished: self.finished,
            failed: self.failed,
            ..TaskCounts::default()
        };
        for t in self.tasks.values() {
            if matches!(t.actor, Some(ActorPart::Create(_))) {
                continue; // counted as actors
            }
            match t.state {
                TaskState::Waiting | TaskState::Queued | TaskState::Held { .. } => c.waiting += 1,
                TaskState::Running { .. } => c.running += 1,
                TaskState::Finished | TaskState::Failed => {}
            }
        }
        c
    }

    // ---- Driver connections ----

    /// A driver (or worker client) connection: messages for it go to `outbox`.
    pub fn add_conn(&mut self, outbox: Outbox, job: JobId) -> ConnId {
        let id = self.next_conn;
        self.next_conn += 1;
        self.conns.insert(id, outbox);
        self.conn_jobs.insert(id, job);
        id
    }

    /// The connection ended; its tasks go on, nobody hears about them, and every object it
    /// owned counts as released.
    pub fn remove_conn(&mut self, conn: ConnId) {
        self.conns.remove(&conn);
        self.conn_jobs.remove(&conn);
        let owned: Vec<ObjectId> = self
            .objects
            .iter()
            .filter(|(_, o)| o.owner == Some(conn) && !o.released)
            .map(|(id, _)| *id)
            .collect();
        self.release(conn, &owned);
        self.release_actors_of(conn);
    }

    fn notify(&self, conn: ConnId, msg: Message) {
        if let Some(outbox) = self.conns.get(&conn) {
            let _ = outbox.send(msg);
        }
    }

    // ---- Objects ----

    /// A driver put an object, now stored on the head's node.
    pub fn put(&mut self, conn: ConnId, id: ObjectId, inline: Option<Vec<u8>>) {
        let Some(address) = self.head_address() else {
            let error = Error::new(ErrorKind::System, "the head's node is not running");
            self.notify(conn, Message::ObjectFailed { id, error });
            return;
        };
        let entry = self
            .objects
            .entry(id)
            .or_insert_with(|| ObjectEntry::pending(None));
        entry.watchers.push(conn);
        entry.owner = Some(conn);
        entry.job = self.conn_jobs.get(&conn).copied();
        let node = self.head_node;
        self.object_ready(id, node, address, inline.map(Arc::new));
        self.dispatch();
    }

    /// `conn` wants to hear when `id` is ready or failed: now if known, else later.
    pub fn watch(&mut self, conn: ConnId, id: ObjectId) {
        let job = self.conn_jobs.get(&conn).copied();
        let entry = self.entry_or_unknown(id);
        if entry.job.is_none() {
            entry.job = job;
        }
        match &entry.state {
            ObjState::Ready {
                address, inline, ..
            } => {
                let msg = Message::ObjectReady {
                    id,
                    location: address.clone(),
                    inline: inline.as_ref().map(|b| b.to_vec()),
                };
                self.notify(conn, msg);
            }
            ObjState::Failed(error) => {
                let msg = Message::ObjectFailed {
                    id,
                    error: error.clone(),
                };
                self.notify(conn, msg);
            }
            ObjState::Pending => entry.watchers.push(conn),
            ObjState::Lost => {
                entry.watchers.push(conn);
                if let Err(error) = self.rebuild(id) {
                    self.fail_object(id, error);
                }
                self.dispatch();
            }
        }
    }

    /// Marks `id` ready on `node` and tells whoever waits; tasks waiting for it may start.
    fn object_ready(
        &mut self,
        id: ObjectId,
        node: NodeId,
        address: String,
        inline: Option<Arc<Vec<u8>>>,
    ) {
        let entry = self
            .objects
            .entry(id)
            .or_insert_with(|| ObjectEntry::pending(None));
        entry.state = ObjState::Ready {
            node,
            address: address.clone(),
            inline: inline.clone(),
        };
        let to = self.listeners(id);
        for conn in to {
            self.notify(
                conn,
                Message::ObjectReady {
                    id,
                    location: address.clone(),
                    inline: inline.as_ref().map(|b| b.to_vec()),
                },
            );
        }
        for task_id in self.waiting_on.remove(&id).unwrap_or_default() {
            let Some(t) = self.tasks.get_mut(&task_id) else {
                continue;
            };
            if t.state != TaskState::Waiting {
                continue;
            }
            t.missing = t.missing.saturating_sub(1);
            if t.missing == 0 {
                self.resolve(task_id);
            }
        }
        // Released while it was being made.
        self.try_free(id);
    }

    /// Who must hear how `id` ended: its watchers (taken, they hear once) and the submitter of
    /// the task that makes it.
    fn listeners(&mut self, id: ObjectId) -> Vec<ConnId> {
        let Some(entry) = self.objects.get_mut(&id) else {
            return Vec::new();
        };
        let mut to = std::mem::take(&mut entry.watchers);
        let producer = entry.producer;
        if let Some(submitter) = producer
            .and_then(|p| self.tasks.get(&p))
            .map(|t| t.submitter)
        {
            if !to.contains(&submitter) {
                to.push(submitter);
            }
        }
        to
    }

    /// Marks `id` failed for good, tells whoever waits, and fails the tasks that needed it.
    fn fail_object(&mut self, id: ObjectId, error: Error) {
        let mut work = vec![(id, error)];
        let mut done_tasks = Vec::new();
        let mut done_actor_tasks = Vec::new();
        let mut failed_objects = Vec::new();
        while let Some((id, error)) = work.pop() {
            failed_objects.push(id);
            let entry = self
                .objects
                .entry(id)
                .or_insert_with(|| ObjectEntry::pending(None));
            entry.state = ObjState::Failed(error.clone());
            let to = self.listeners(id);
            for conn in to {
                self.notify(
                    conn,
                    Message::ObjectFailed {
                        id,
                        error: error.clone(),
                    },
                );
            }
            for task_id in self.waiting_on.remove(&id).unwrap_or_default() {
                let Some(t) = self.tasks.get_mut(&task_id) else {
                    continue;
                };
                if t.state != TaskState::Waiting {
                    continue;
                }
                let error = dependency_error(&self.arg_names, &t.task, id, &error);
                t.state = TaskState::Failed;
                self.failed += 1;
                done_tasks.push(task_id);
                if t.actor.is_some() {
                    done_actor_tasks.push((task_id, error.clone()));
                }
                for out in &t.task.outputs {
                    work.push((*out, error.clone()));
                }
            }
        }
        for task_id in done_tasks {
            self.sync_pins(task_id);
        }
        for id in failed_objects {
            self.try_free(id);
        }
        // A failed constructor argument kills its actor; a failed call lets the next one go.
        for (task_id, error) in done_actor_tasks {
            match self.tasks.get(&task_id).and_then(|t| t.actor) {
                Some(ActorPart::Create(actor_id)) => {
                    let error = Error::with_source(
                        ErrorKind::ActorDied,
                        format!("actor {actor_id} could not be created: {error}"),
                        error,
                    );
                    self.actor_dead(actor_id, error);
                }
                Some(ActorPart::Call(actor_id)) => self.pump_actor(actor_id),
                None => {}
            }
        }
    }

    // ---- Tasks ----

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
    fn add_task(
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
    fn reject(&mut self, conn: ConnId, task: TaskSubmission, error: Error) {
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

    /// Looks at a waiting task's arguments: waits for those not ready, rebuilds lost ones,
    /// fails on failed ones, and queues the task when all are ready.
    fn resolve(&mut self, task_id: TaskId) {
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
    fn rebuild(&mut self, id: ObjectId) -> Result<(), Error> {
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

    /// A task failed for good: its outputs fail with `error`.
    fn fail_task(&mut self, task_id: TaskId, error: Error) {
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

    /// Why no alive node could ever run a task needing `demand`, if none could.
    fn infeasible(&self, function: &str, demand: &BTreeMap<String, i64>) -> Option<Error> {
        if self
            .nodes
            .iter()
            .any(|n| n.alive && n.could_ever_fit(demand))
        {
            return None;
        }
        let alive: Vec<&NodeSlot> = self.nodes.iter().filter(|n| n.alive).collect();
        let what = format!("`{function}`");
        let mut short = Vec::new();
        for (r, amount) in demand {
            let most = alive
                .iter()
                .map(|n| n.total.get(r).copied().unwrap_or(0))
                .max()
                .unwrap_or(0);
            let (want, most) = (Amount::from_units(*amount), Amount::from_units(most));
            if let Err(e) = check_fits(&what, r, want, most) {
                short.push(e.message().to_owned());
            }
        }
        let message = if short.is_empty() {
            let wants: Vec<String> = demand
                .iter()
                .map(|(r, a)| format!("{} `{r}`", from_units(*a)))
                .collect();
            format!(
                "`{function}` cannot run: no single alive node declares all of {}",
                wants.join(", ")
            )
        } else {
            short.join("; ")
        };
        Some(Error::new(ErrorKind::ResourceUnavailable, message))
    }

    /// Starts every queued task that fits somewhere, in queue order: first the tasks nodes
    /// hold (they left the head's queue earlier), then the head's queue, holding there what
    /// finds no room.
    fn dispatch(&mut self) {
        for index in 0..self.nodes.len() {
            self.start_held(index);
        }
        // One group per distinct demand, each in arrival order: when the first task of a group
        // finds no room, none of the group would, so a long queue behind full nodes costs one
        // look per group, not one per task.
        let mut g = 0;
        while g < self.queue.len() {
            while let Some(&task_id) = self.queue[g].1.front() {
                if self.try_start(task_id) == Start::NoRoom {
                    break;
                }
                // Started, failed or back to waiting; `try_start` only ever appends to the
                // queue, so the front is still this task.
                self.queue[g].1.pop_front();
            }
            g += 1;
        }
        self.queue.retain(|(_, q)| !q.is_empty());
    }

    /// Queues a task whose arguments are ready.
    fn enqueue(&mut self, task_id: TaskId) {
        let Some(t) = self.tasks.get_mut(&task_id) else {
            return;
        };
        t.state = TaskState::Queued;
        match self.queue.iter_mut().find(|(d, _)| *d == t.demand) {
            Some((_, q)) => q.push_back(task_id),
            None => self
                .queue
                .push((t.demand.clone(), VecDeque::from([task_id]))),
        }
    }

    /// Starts the queued task `task_id` on a node with room, if one has.
    fn try_start(&mut self, task_id: TaskId) -> Start {
        let Some(t) = self.tasks.get(&task_id) else {
            return Start::Gone;
        };
        if t.state != TaskState::Queued {
            return Start::Gone;
        }
        // A full cluster is the common answer under load: found before looking at arguments.
        if t.actor.is_none() && !self.nodes.iter().any(|n| n.takes(&t.demand)) {
            if let Some(error) = self.infeasible(&t.task.function, &t.demand) {
                self.fail_task(task_id, error);
                return Start::Gone;
            }
            return Start::NoRoom;
        }
        // Its arguments may have been lost since it was queued.
        let mut arg_locations = Vec::with_capacity(t.task.args.len());
        let mut unready = false;
        for arg in &t.task.args {
            match arg {
                WireArg::Value(_) => arg_locations.push(None),
                WireArg::Ref(id) => match self.objects.get(id).map(|o| &o.state) {
                    Some(ObjState::Ready { address, .. }) => {
                        arg_locations.push(Some(address.clone()))
                    }
                    _ => unready = true,
                },
            }
        }
        if unready {
            if let Some(t) = self.tasks.get_mut(&task_id) {
                t.state = TaskState::Waiting;
            }
            self.resolve(task_id);
            return Start::Gone;
        }
        if let Some(ActorPart::Create(actor_id)) = t.actor {
            return match self.actor_node_for(&t.demand) {
                Some(index) => {
                    self.place_actor(task_id, actor_id, index, arg_locations);
                    Start::Started
                }
                None => match self.infeasible(&t.task.function, &t.demand) {
                    Some(error) => {
                        self.fail_task(task_id, error);
                        Start::Gone
                    }
                    None => Start::NoRoom,
                },
            };
        }
        let Some(node) = self
            .nodes
            .iter_mut()
            .find(|n| n.alive && n.outbox.is_some() && n.fits(&t.demand))
        else {
            // Some node takes it (checked above), to hold since none has room.
            return match self.hold(task_id, arg_locations) {
                true => Start::Started,
                false => Start::NoRoom,
            };
        };
        let Some(t) = self.tasks.get_mut(&task_id) else {
            return Start::Gone;
        };
        node.adjust(&t.demand, -1);
        node.running.insert(task_id);
        t.state = TaskState::Running {
            node: node.node_id,
            blocked: 0,
        };
        Self::send_task(node, task_id, t, arg_locations, false);
        Start::Started
    }

    /// Sends `t` to `node` to run now, or to hold (`hold`), as its next attempt.
    fn send_task(
        node: &NodeSlot,
        task_id: TaskId,
        t: &mut TaskEntry,
        arg_locations: Vec<Option<String>>,
        hold: bool,
    ) {
        let attempt = t.attempts;
        t.attempts += 1;
        tracing::debug!(task = %task_id, function = %t.task.function, node = %node.node_id, attempt, hold, "task sent");
        let assignment = TaskAssignment {
            task: t.task.clone(),
            exe_hash: t.exe_hash.clone(),
            arg_locations,
            attempt,
        };
        let message = match hold {
            true => Message::HoldTask(assignment),
            false => Message::ExecuteTask(assignment),
        };
        if let Some(outbox) = &node.outbox {
            // A closed outbox means the node's connection ended: its death re-runs the task.
            let _ = outbox.send(message);
        }
    }

    /// Sends the queued task `task_id`, for which no node has room, to the alive node that
    /// could run it and holds the fewest tasks, unless every such node holds its limit.
    fn hold(&mut self, task_id: TaskId, arg_locations: Vec<Option<String>>) -> bool {
        let Some(t) = self.tasks.get_mut(&task_id) else {
            return false;
        };
        let Some(node) = self
            .nodes
            .iter_mut()
            .filter(|n| n.takes(&t.demand))
            .min_by_key(|n| n.held.len())
        else {
            return false;
        };
        node.held.push_back(task_id);
        t.state = TaskState::Held {
            node: node.node_id,
            blocked: 0,
        };
        Self::send_task(node, task_id, t, arg_locations, true);
        true
    }

    /// Starts the tasks node `index` holds while they fit there, in the order it got them.
    fn start_held(&mut self, index: usize) {
        let n = &mut self.nodes[index];
        while let Some(&task_id) = n.held.front() {
            let Some(t) = self.tasks.get_mut(&task_id) else {
                n.held.pop_front();
                continue;
            };
            if !n.fits(&t.demand) {
                return;
            }
            n.held.pop_front();
            if let TaskState::Held { blocked, .. } = t.state {
                Self::run_held(n, task_id, t, blocked);
                if let Some(outbox) = &n.outbox {
                    let _ = outbox.send(Message::StartTask { task_id });
                }
            }
        }
    }

    /// The held task `task_id` runs on `n` now: its resources count there (less the CPU it
    /// lends while `blocked`).
    fn run_held(n: &mut NodeSlot, task_id: TaskId, t: &mut TaskEntry, blocked: u32) {
        n.adjust(&t.demand, -1);
        if blocked > 0 {
            n.lend_cpu(t.demand.get("CPU").copied().unwrap_or(0));
        }
        n.running.insert(task_id);
        t.state = TaskState::Running {
            node: n.node_id,
            blocked,
        };
    }

    /// The node started its held task `task_id` in place of one that ended there: it runs
    /// now, with the resources the ended task gives back. A task the head already told the
    /// node to start (or no longer knows) is not counted twice.
    fn handed_off(&mut self, node_id: NodeId, task_id: TaskId) {
        let Some(n) = alive_node(&mut self.nodes, node_id) else {
            return;
        };
        let Some(t) = self.tasks.get_mut(&task_id) else {
            return;
        };
        let TaskState::Held { node, blocked } = t.state else {
            return;
        };
        if node != node_id {
            return;
        }
        if let Some(at) = n.held.iter().position(|id| *id == task_id) {
            n.held.remove(at);
        }
        Self::run_held(n, task_id, t, blocked);
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

    /// The task blocks in `get`/`wait`: lend its CPU to others.
    pub fn task_blocked(&mut self, task_id: TaskId) {
        if self.count_blocked(task_id, true) {
            self.dispatch();
        }
    }

    /// The blocked task goes on: take its CPU back (the node may be over-committed briefly).
    pub fn task_unblocked(&mut self, task_id: TaskId) {
        self.count_blocked(task_id, false);
    }

    /// Counts one more (or one less) of the task's threads blocked; the first to block lends
    /// the task's CPU, the last to go on takes it back. Returns whether CPU was lent.
    fn count_blocked(&mut self, task_id: TaskId, block: bool) -> bool {
        let Some(t) = self.tasks.get_mut(&task_id) else {
            return false;
        };
        let (node, blocked) = match &mut t.state {
            TaskState::Running { node, blocked } => (node, blocked),
            // Not counted on its node yet: it lends from the start when it is.
            TaskState::Held { blocked, .. } => {
                *blocked = if block {
                    *blocked + 1
                } else {
                    blocked.saturating_sub(1)
                };
                return false;
            }
            _ => return false,
        };
        let cpu = t.demand.get("CPU").copied().unwrap_or(0);
        let node = *node;
        match (block, *blocked) {
            (true, n) => {
                *blocked = n + 1;
                if n == 0 {
                    self.lend_cpu(node, cpu);
                    return true;
                }
            }
            (false, 0) => {}
            (false, n) => {
                *blocked = n - 1;
                if n == 1 {
                    self.lend_cpu(node, -cpu);
                }
            }
        }
        false
    }

    /// Gives `cpu` units of `node`'s CPU to others (a negative amount takes them back).
    fn lend_cpu(&mut self, node: NodeId, cpu: i64) {
        if let Some(n) = alive_node(&mut self.nodes, node) {
            n.lend_cpu(cpu);
        }
    }
}

impl Scheduler {
    // ---- Freeing ----

    /// `conn` released the objects it owns among `ids`: free each as soon as nothing needs it.
    pub fn release(&mut self, conn: ConnId, ids: &[ObjectId]) {
        for id in ids {
            match self.objects.get_mut(id) {
                Some(o) if o.owner == Some(conn) => {
                    o.released = true;
                    self.try_free(*id);
                }
                Some(_) => {
                    tracing::debug!(object = %id, "a release from a connection that does not own the object; ignored")
                }
                None => {}
            }
        }
    }

    /// The ids escaped inside values: never free them.
    pub fn escape(&mut self, ids: &[ObjectId]) {
        for id in ids {
            self.objects
                .entry(*id)
                .or_insert_with(|| ObjectEntry::pending(None))
                .escaped = true;
        }
    }

    /// How many objects and tasks the head keeps.
    pub fn tables(&self) -> (u64, u64) {
        (self.objects.len() as u64, self.tasks.len() as u64)
    }

    /// Makes the task's arguments count it (while it may run) or not (once it ended), and
    /// frees the arguments nothing needs any more.
    fn sync_pins(&mut self, task_id: TaskId) {
        let Some(t) = self.tasks.get_mut(&task_id) else {
            return;
        };
        let want = t.live();
        if t.pinned == want {
            return;
        }
        t.pinned = want;
        let args = t.ref_args();
        for id in &args {
            if let Some(o) = self.objects.get_mut(id) {
                o.pins = if want {
                    o.pins + 1
                } else {
                    o.pins.saturating_sub(1)
                };
            }
        }
        if !want {
            for id in args {
                self.try_free(id);
            }
        }
    }

    /// Frees `id` if its owner released it, no task needs it, its id never escaped and it is
    /// not being made: forgets it, deletes its bytes and drops its producer's lineage once no
    /// output of that task is left.
    fn try_free(&mut self, id: ObjectId) {
        let Some(o) = self.objects.get(&id) else {
            return;
        };
        if !o.released || o.escaped || o.pins > 0 || self.waiting_on.contains_key(&id) {
            return;
        }
        let producer = o.producer;
        if matches!(o.state, ObjState::Pending)
            && producer
                .and_then(|p| self.tasks.get(&p))
                .is_some_and(|t| t.live())
        {
            return;
        }
        let Some(o) = self.objects.remove(&id) else {
            return;
        };
        tracing::trace!(object = %id, "object freed");
        if let ObjState::Ready { node, .. } = o.state {
            self.delete_on(node, vec![id]);
        }
        let Some(p) = producer else { return };
        let done = self.tasks.get(&p).is_some_and(|t| {
            !t.live()
                && t.task
                    .outputs
                    .iter()
                    .all(|out| !self.objects.contains_key(out))
        });
        if done {
            self.tasks.remove(&p);
        }
    }

    /// Sends `msg` to `node` if it is alive (a node whose connection just closed is dying: its
    /// death takes care of what it was sent).
    fn send_to(&self, node: NodeId, msg: Message) {
        if let Some(outbox) = self
            .nodes
            .iter()
            .find(|n| n.node_id == node && n.alive)
            .and_then(|n| n.outbox.as_ref())
        {
            let _ = outbox.send(msg);
        }
    }

    /// Deletes the bytes of `ids` on `node` (the head's own store directly).
    fn delete_on(&mut self, node: NodeId, ids: Vec<ObjectId>) {
        if ids.is_empty() {
            return;
        }
        if node == self.head_node {
            for id in ids {
                self.store.remove(id);
            }
            return;
        }
        self.send_to(node, Message::DeleteObjects { ids });
    }
}

/// The alive node `node_id` among `nodes`.
fn alive_node(nodes: &mut [NodeSlot], node_id: NodeId) -> Option<&mut NodeSlot> {
    nodes.iter_mut().find(|n| n.node_id == node_id && n.alive)
}

/// A task's resource demand in units, zero amounts left out.
fn demand(task: &TaskSubmission) -> Result<BTreeMap<String, i64>, Error> {
    let mut out = BTreeMap::new();
    let what = format!("`{}`", task.function);
    for (r, amount) in &task.resources {
        let units = Amount::parse(&what, r, *amount)?.units();
        if units > 0 {
            out.insert(r.clone(), units);
        }
    }
    Ok(out)
}

/// The error of a task that cannot run because its argument `id` failed with `cause`.
fn dependency_error(names: &ArgNames, task: &TaskSubmission, id: ObjectId, cause: &Error) -> Error {
    let index = task
        .args
        .iter()
        .position(|a| matches!(a, WireArg::Ref(r) if *r == id))
        .unwrap_or(0);
    Error::dependency_failed(&task.function, &names.name(task, index), cause)
}

#[cfg(test)]
mod tests;
