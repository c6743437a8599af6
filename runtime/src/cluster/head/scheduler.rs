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
//!
//! The scheduler's parts live beside it in `head/`: `resources`, `objects`, `freeing`,
//! `tasks`, `dependencies`, `placement`, `actors`, `unknown`, `unreachable`, and the end of a
//! job in `jobs`.
//!
//! [`ErrorKind::ResourceUnavailable`]: crate::error::ErrorKind::ResourceUnavailable
//! [`ErrorKind::ObjectLost`]: crate::error::ErrorKind::ObjectLost

use std::collections::{BTreeMap, HashSet, VecDeque};
use std::sync::Arc;

use tokio::sync::mpsc;

use super::actors::{ActorEntry, ActorPart};
use super::dependencies::ArgNames;
use super::objects::ObjectEntry;
use super::resources::NodeSlot;
use super::tasks::{TaskEntry, TaskState};
use crate::actor::ActorId;
use crate::cluster::node::store::ObjectStore;
use crate::cluster::proto::{JobId, Message, TaskCounts, TaskId};
use crate::cluster::IdMap;
use crate::object::ObjectId;
use crate::runtime::NodeId;

pub use super::unknown::UNKNOWN_GRACE;

/// Where messages to one connection (a node's or a driver's) go.
pub type Outbox = mpsc::UnboundedSender<Message>;

/// The id of a driver (or worker client) connection at the head.
pub type ConnId = u64;

/// The head's view of tasks, objects and node resources.
pub struct Scheduler {
    pub(super) head_node: NodeId,
    pub(super) store: Arc<ObjectStore>,
    pub(super) nodes: Vec<NodeSlot>,
    pub(super) objects: IdMap<ObjectId, ObjectEntry>,
    pub(super) tasks: IdMap<TaskId, TaskEntry>,
    pub(super) waiting_on: IdMap<ObjectId, Vec<TaskId>>,
    /// Tasks whose arguments are ready, by demand, each group in arrival order.
    pub(super) queue: Vec<(BTreeMap<String, i64>, VecDeque<TaskId>)>,
    pub(super) conns: IdMap<ConnId, Outbox>,
    /// The job each connection works for.
    pub(super) conn_jobs: IdMap<ConnId, JobId>,
    pub(super) next_conn: ConnId,
    /// How many actor calls were sent to nodes so far.
    pub(super) sends: u64,
    pub(super) finished: u64,
    pub(super) failed: u64,
    pub(super) actors: IdMap<ActorId, ActorEntry>,
    pub(super) actor_names: BTreeMap<(String, String), ActorId>,
    /// Jobs whose driver left: their work is cancelled and nothing new of theirs runs.
    pub(super) ended_jobs: HashSet<JobId>,
    /// Ids that tasks or watchers named before anyone made or put them, with when: those
    /// still unknown after [`UNKNOWN_GRACE`] fail (see [`Scheduler::expire_unknown`]).
    pub(super) unknown: VecDeque<(std::time::Instant, ObjectId)>,
    /// Calls of actors the head has not heard of yet, by actor, and when each actor was first
    /// called: a handle can reach a caller before its creation reaches the head (see
    /// [`Scheduler::expire_unknown`]).
    pub(super) unknown_actors: IdMap<ActorId, Vec<TaskId>>,
    pub(super) unknown_actors_since: VecDeque<(std::time::Instant, ActorId)>,
    /// Functions' parameter names, by name and signature hash, from their first submissions.
    pub(super) arg_names: ArgNames,
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
            actor_names: BTreeMap::new(),
            ended_jobs: HashSet::new(),
            unknown: VecDeque::new(),
            unknown_actors: IdMap::default(),
            unknown_actors_since: VecDeque::new(),
            arg_names: ArgNames::default(),
        }
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

    /// How many objects and tasks the head keeps.
    pub fn tables(&self) -> (u64, u64) {
        (self.objects.len() as u64, self.tasks.len() as u64)
    }

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

    pub(super) fn notify(&self, conn: ConnId, msg: Message) {
        if let Some(outbox) = self.conns.get(&conn) {
            let _ = outbox.send(msg);
        }
    }

    /// Sends `msg` to `node` if it is alive (a node whose connection just closed is dying: its
    /// death takes care of what it was sent).
    pub(super) fn send_to(&self, node: NodeId, msg: Message) {
        if let Some(outbox) = self
            .nodes
            .iter()
            .find(|n| n.node_id == node && n.alive)
            .and_then(|n| n.outbox.as_ref())
        {
            let _ = outbox.send(msg);
        }
    }
}
