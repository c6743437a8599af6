//! The cluster client inside a user's program: a driver, or a worker running nested tasks.
//!
//! It joins (or attaches to) a job at the head, ships the program's executable when the head
//! lacks it, submits tasks with their arguments encoded, stores `put` values, learns from the
//! head where each object it waits for is ready, and fetches values directly from the node
//! that holds them (never through the head). Every wait has a way out: when the head
//! connection is lost, every object still awaited fails, so `get` returns an error.
//!
//! A driver also prints what its job's workers print (unless `RAYKIT_LOG_TO_DRIVER=0`), and
//! before it exits (or shuts the runtime down) it waits, briefly, for what is still on the
//! way ([`Client::drain_output`]).
//!
//! The client's parts: joining ([`connect`]), the writer that batches what goes to the head
//! ([`writer`]) and the reader of what it says ([`reader`]), task submission ([`submit`](mod@submit)),
//! objects ([`objects`], with large puts through shared memory in [`shared`]), actors
//! ([`actors`]), the cluster's resources ([`resources`]) and worker output ([`drain`]).

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Weak};

use parking_lot::Mutex;
use tokio::sync::mpsc;

use crate::cluster::output::printer::Printer;
use crate::cluster::peers::PeerPool;
use crate::cluster::proto::{ClusterStatus, JobId, Message};
use crate::error::{Error, ErrorKind, Result};
use crate::object::{ObjectId, Slot};
use crate::runtime::{self, NodeId};

mod actors;
mod connect;
mod drain;
mod objects;
mod reader;
mod resources;
mod shared;
mod submit;
mod writer;

pub(crate) use actors::{
    call_actor, create_actor, get_actor, kill_actor, list_named_actors, ClusterActor,
};
pub(crate) use objects::{escaped, fetch_into, put, release, watch};
pub(crate) use resources::{nodes, resource_view};
pub(crate) use submit::{submit, task_blocked, task_unblocked};

use writer::{Outgoing, PutBudget};

/// `(namespace, name)` of named actors, as the head lists them.
type NameList = Vec<(String, String)>;

/// A program's connection to its cluster.
pub(crate) struct Client {
    job_id: JobId,
    head_node: NodeId,
    io: Option<tokio::runtime::Runtime>,
    handle: tokio::runtime::Handle,
    outbox: mpsc::UnboundedSender<Outgoing>,
    /// Objects this program waits for, by id: filled when the head says where they are.
    awaited: Mutex<crate::cluster::IdMap<ObjectId, Weak<Slot>>>,
    /// Connections to the nodes objects are fetched from.
    peers: PeerPool,
    /// How many fetches of each object failed because its node did not answer.
    unreachable: Mutex<crate::cluster::IdMap<ObjectId, u32>>,
    lost: AtomicBool,
    /// Who waits for the head's answer about a named actor, by namespace and name.
    named: Mutex<HashMap<(String, String), Vec<actors::NamedReply>>>,
    /// Callers waiting for the head's list of named actors, in request order.
    name_lists: Mutex<std::collections::VecDeque<std::sync::mpsc::Sender<NameList>>>,
    /// The job's namespace for named actors.
    namespace: String,
    /// What each alive node declares (fixed-point units), as the head last said: a task no
    /// node could ever run fails before it is sent.
    node_totals: parking_lot::RwLock<Vec<std::collections::BTreeMap<String, i64>>>,
    /// Bytes of large puts not written to the head yet.
    puts: Arc<PutBudget>,
    /// The head node's arena, when this process shares its host: large puts go there.
    arena: Option<crate::cluster::node::arena::ArenaView>,
    /// Large puts waiting for the head to allocate their block, by object.
    allocations: Mutex<HashMap<ObjectId, shared::AllocReply>>,
    /// When the head last said anything, in milliseconds since `started`.
    heard_ms: AtomicU64,
    started: std::time::Instant,
    /// The functions whose parameter names the head was sent (with their first task).
    named_functions: Mutex<std::collections::HashSet<&'static str>>,
    /// Callers waiting for the head's answer to a status request, in request order.
    status_waiters: Mutex<std::collections::VecDeque<std::sync::mpsc::Sender<ClusterStatus>>>,
    /// A driver that asked for its workers' output prints it with this.
    output: Option<Arc<Printer>>,
    /// The last drain of worker output asked for.
    drains: AtomicU64,
}

impl std::fmt::Debug for Client {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Client")
            .field("job_id", &self.job_id)
            .finish_non_exhaustive()
    }
}

impl Drop for Client {
    fn drop(&mut self) {
        // From a thread of an async runtime (maybe the client's own), waiting could hold up
        // what it waits for.
        if tokio::runtime::Handle::try_current().is_err() {
            self.drain_output();
        }
        if let Some(io) = self.io.take() {
            io.shutdown_background();
        }
    }
}

impl Client {
    /// The namespace of this job's named actors (a worker's: its driver's).
    pub(crate) fn job_namespace(&self) -> &str {
        &self.namespace
    }

    /// The head's node (a driver counts as running there).
    pub(crate) fn head_node(&self) -> NodeId {
        self.head_node
    }

    fn send(&self, msg: Message) -> Result<()> {
        if self.lost.load(Ordering::Acquire) {
            return Err(self.lost_error());
        }
        self.outbox
            .send(Outgoing::Message(msg))
            .map_err(|_| self.lost_error())
    }

    fn lost_error(&self) -> Error {
        Error::new(
            ErrorKind::Network,
            "the connection to the cluster's head was lost",
        )
    }
}

/// The client of this process, for the hooks that must not start a runtime (a slot's drop, a
/// ref's serialization).
static CLIENT: Mutex<Weak<Client>> = Mutex::new(Weak::new());

/// The client of the running runtime, when it runs on a cluster.
fn current() -> Option<Arc<Client>> {
    runtime::current()
        .ok()
        .and_then(|rt| rt.backend.cluster().cloned())
}
