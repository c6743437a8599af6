//! The process-wide runtime: `init`, `shutdown`, the node's identity and resources.
//!
//! One runtime per process. Any thread (and any task) reaches it through [`current`], which
//! starts the embedded default on first use. The pointer is swapped atomically, so submitting
//! never takes a lock.

use std::collections::BTreeMap;
use std::sync::Arc;

use arc_swap::ArcSwapOption;
use parking_lot::Mutex;

use crate::backend::Backend;
use crate::config::Config;
use crate::error::{Error, ErrorKind, Result};
use crate::local::{Resources, Scheduler};

pub use crate::ids::NodeId;

/// What [`init`] started: the node and its resources. Dropping it does not stop the runtime.
#[derive(Debug, Clone)]
pub struct RuntimeInfo {
    node_id: NodeId,
    resources: BTreeMap<String, f64>,
}

impl RuntimeInfo {
    /// The node this process runs.
    pub fn node_id(&self) -> NodeId {
        self.node_id
    }

    /// The resources the node declares.
    pub fn resources(&self) -> &BTreeMap<String, f64> {
        &self.resources
    }
}

/// One node of the cluster, as [`nodes`] lists it (Ray's `ray.nodes()`).
#[derive(Debug, Clone, PartialEq)]
pub struct NodeInfo {
    /// The node's id (what [`node_id`] says inside its tasks).
    pub node_id: NodeId,
    /// Whether the node is a member now (false: recently declared dead).
    pub alive: bool,
    /// Where the node is reached (`HOST:PORT`); empty for the embedded node.
    pub address: String,
    /// Whether this node is the cluster's head (the embedded node is its own head).
    pub is_head: bool,
    /// The resources the node declares.
    pub resources: BTreeMap<String, f64>,
    /// Those of them free now.
    pub available: BTreeMap<String, f64>,
}

pub(crate) struct Runtime {
    /// Where tasks, actors and objects go: this process's threads, or a cluster.
    pub(crate) backend: Backend,
    pub(crate) actors: crate::actor::NamedActors,
    /// The namespace of this job's named actors: the config's, the cluster job's, or an
    /// anonymous one of this job's own.
    pub(crate) namespace: String,
    pub(crate) config: Config,
    pub(crate) node_id: NodeId,
    pub(crate) sched: Arc<Scheduler>,
}

impl Runtime {
    fn start(config: Config) -> Result<Arc<Runtime>> {
        let backend = Backend::start(&config)?;
        // Actors and local work still run on this process's own scheduler.
        let resources = Resources::new(config.cpus(), config.num_gpus, &config.resources)?;
        let sched = Scheduler::new(resources)?;
        let node_id = backend.node_id().unwrap_or_else(NodeId::random);
        tracing::debug!(cpus = config.cpus(), "raykit runtime started");
        let namespace = backend
            .namespace()
            .or_else(|| config.namespace.clone())
            .unwrap_or_else(anonymous_namespace);
        Ok(Arc::new(Runtime {
            actors: Default::default(),
            namespace,
            config,
            node_id,
            sched,
            backend,
        }))
    }

    fn info(&self) -> RuntimeInfo {
        RuntimeInfo {
            node_id: self.node_id,
            resources: self.resource_view().0,
        }
    }

    /// The resources the runtime's nodes declare and those free now.
    fn resource_view(&self) -> (BTreeMap<String, f64>, BTreeMap<String, f64>) {
        if let Some(view) = self.backend.resource_view() {
            return view;
        }
        (
            self.sched.resources.total_view(),
            self.sched.resources.available_view(),
        )
    }
}

/// A namespace of this job's own (Ray's anonymous namespace): its named actors are not seen
/// by other jobs.
pub(crate) fn anonymous_namespace() -> String {
    format!("anonymous-{:016x}", crate::ids::random_u64())
}

static CURRENT: ArcSwapOption<Runtime> = ArcSwapOption::const_empty();
/// Serializes starting and stopping; never taken on the submit path.
static LIFECYCLE: Mutex<()> = Mutex::new(());

/// The running runtime, starting the embedded default if there is none.
pub(crate) fn current() -> Result<Arc<Runtime>> {
    if let Some(rt) = CURRENT.load_full() {
        return Ok(rt);
    }
    let _guard = LIFECYCLE.lock();
    if let Some(rt) = CURRENT.load_full() {
        return Ok(rt);
    }
    let rt = Runtime::start(Config::default())?;
    CURRENT.store(Some(rt.clone()));
    Ok(rt)
}

/// Starts the embedded runtime with the default [`Config`]: every core of this machine.
///
/// Calling it again while a runtime runs returns that runtime's info. With `RAYKIT_ADDRESS` set,
/// the program is meant to join a cluster instead.
pub fn init() -> Result<RuntimeInfo> {
    let _guard = LIFECYCLE.lock();
    if let Some(rt) = CURRENT.load_full() {
        return Ok(rt.info());
    }
    let rt = Runtime::start(Config::default())?;
    CURRENT.store(Some(rt.clone()));
    Ok(rt.info())
}

/// Starts the runtime with `config`.
///
/// While a runtime runs, calling it with the same configuration returns that runtime's info and
/// with another one fails with [`ErrorKind::AlreadyInitialized`]: call [`shutdown`] first.
///
/// The resource settings (`num_cpus`, `num_gpus`, `resource`) describe an embedded node: a
/// program that joins a cluster (an address in the config or in `RAYKIT_ADDRESS`) with any of
/// them set fails with [`ErrorKind::Config`], since the cluster's nodes declare its resources.
pub fn init_with(config: Config) -> Result<RuntimeInfo> {
    let _guard = LIFECYCLE.lock();
    if let Some(rt) = CURRENT.load_full() {
        if rt.config == config {
            return Ok(rt.info());
        }
        return Err(Error::new(
            ErrorKind::AlreadyInitialized,
            format!(
                "raykit is already running with {:?}; call raykit::shutdown() before init_with({:?})",
                rt.config, config
            ),
        ));
    }
    let rt = Runtime::start(config)?;
    CURRENT.store(Some(rt.clone()));
    Ok(rt.info())
}

/// Stops the runtime: work not yet started fails with [`ErrorKind::Shutdown`], running tasks
/// finish, idle threads exit. A later remote call or `init` starts a new runtime.
pub fn shutdown() {
    let _guard = LIFECYCLE.lock();
    if let Some(rt) = CURRENT.swap(None) {
        rt.actors.clear();
        rt.sched.shutdown();
    }
}

/// Whether a runtime is running in this process.
pub fn is_initialized() -> bool {
    CURRENT.load().is_some()
}

/// The node that runs the caller (inside a task: the node running the task).
pub fn node_id() -> NodeId {
    if let Some(node) = crate::backend::worker_node_id() {
        return node;
    }
    match current() {
        Ok(rt) => rt.node_id,
        Err(_) => NodeId::from_raw(crate::ids::process_prefix()),
    }
}

/// Every resource the cluster declares, by name (`"CPU"`, `"GPU"`, custom names).
pub fn cluster_resources() -> BTreeMap<String, f64> {
    current().map_or_else(|_| BTreeMap::new(), |rt| rt.resource_view().0)
}

/// The resources free right now, by name.
pub fn available_resources() -> BTreeMap<String, f64> {
    current().map_or_else(|_| BTreeMap::new(), |rt| rt.resource_view().1)
}

/// The cluster's nodes, alive and recently dead, the head first (embedded: this process's one
/// node).
pub fn nodes() -> Vec<NodeInfo> {
    let Ok(rt) = current() else {
        return Vec::new();
    };
    crate::backend::nodes(&rt.backend).unwrap_or_else(|| {
        let (resources, available) = rt.resource_view();
        vec![NodeInfo {
            node_id: rt.node_id,
            alive: true,
            address: String::new(),
            is_head: true,
            resources,
            available,
        }]
    })
}

/// How many worker threads the runtime has started so far (for tests and diagnostics).
#[doc(hidden)]
pub fn worker_threads_started() -> usize {
    current().map_or(0, |rt| rt.sched.threads_spawned())
}
