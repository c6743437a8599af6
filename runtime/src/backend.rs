//! The seam between raykit's core and its two backends: the one place that knows which runs.
//!
//! The core (objects, tasks, actors, the local scheduler) describes every operation in a form
//! both backends accept -- a call with its arguments and the way to encode them, an actor's
//! constructor, a value to store -- and hands it here. [`Backend`] decides: embedded, the core's
//! own path runs (the closure the caller passed, on this process's threads); on a cluster, the
//! operation goes to [`crate::cluster`]. No other file outside `cluster/` names the cluster, and
//! generated code never asks which backend runs (`.ci/seam` checks both).

use std::collections::BTreeMap;
use std::sync::Arc;

use crate::actor::{ActorId, ActorMethods, ActorName, ActorOptions, HandleGuard};
use crate::cluster::owner::{self, Client, ClusterActor};
use crate::cluster::proto::TaskId;
use crate::config::Config;
use crate::error::{Error, ErrorKind, Result};
use crate::object::{DecodeFn, ObjectId, Slot};
use crate::runtime::{NodeId, Runtime};
use crate::task::{Returns, TaskOptions, TaskSpec};

/// An argument as it travels to another process: its encoded value, or the id of the object
/// that holds it.
pub use crate::cluster::proto::WireArg as EncodedArg;

/// Serves tasks when this process was started by a node as its worker (generated code calls
/// it before `main`).
pub use crate::cluster::worker::worker_entry;

/// The decoders of a peer's bytes, for the fuzz targets.
#[cfg(feature = "fuzzing")]
pub use crate::cluster::proto::fuzzing;

/// Where this process's tasks, actors and objects go.
pub(crate) enum Backend {
    /// The threads of this process (no address given).
    Embedded,
    /// A cluster, joined through its head.
    Cluster(Arc<Client>),
}

impl Backend {
    /// The backend `config` asks for: a cluster when it (or `RAYKIT_ADDRESS`) names an address,
    /// embedded otherwise. Joining a cluster with an embedded node's resource settings is an
    /// error: the cluster's nodes declare its resources.
    pub(crate) fn start(config: &Config) -> Result<Backend> {
        let address = config.address.clone().or_else(|| {
            std::env::var("RAYKIT_ADDRESS")
                .ok()
                .filter(|a| !a.is_empty())
        });
        let Some(address) = address else {
            return Ok(Backend::Embedded);
        };
        if config.declares_resources() {
            return Err(Error::new(
                ErrorKind::Config,
                format!(
                    "Config's resource settings describe an embedded node, but this program \
                     joins the cluster at {address}, whose nodes declare its resources \
                     (raykit start --num-cpus/--num-gpus/--resources): drop num_cpus, \
                     num_gpus and resource from the Config"
                ),
            ));
        }
        let (address, token) = crate::cluster::records::resolve_cluster(&address)?;
        tracing::debug!(%address, "joining a cluster");
        let namespace = config
            .namespace
            .clone()
            .unwrap_or_else(crate::runtime::anonymous_namespace);
        Ok(Backend::Cluster(Client::connect(
            &address, token, &namespace,
        )?))
    }

    /// The node this program runs on, when the backend names it (a cluster driver: the head's
    /// node); `None` embedded, where the runtime names its own node.
    pub(crate) fn node_id(&self) -> Option<NodeId> {
        match self {
            Backend::Embedded => None,
            Backend::Cluster(client) => Some(client.head_node()),
        }
    }

    /// The namespace of the cluster job this process works for (a worker's: its driver's);
    /// `None` embedded and for a driver, whose config (or an anonymous one) decides.
    pub(crate) fn namespace(&self) -> Option<String> {
        match self {
            Backend::Embedded => None,
            Backend::Cluster(client) => Some(client.job_namespace().to_owned()),
        }
    }

    /// The cluster this program joined, for the cluster backend's own code.
    pub(crate) fn cluster(&self) -> Option<&Arc<Client>> {
        match self {
            Backend::Embedded => None,
            Backend::Cluster(client) => Some(client),
        }
    }

    /// The resources every node declares and those free now; `None` embedded (the local
    /// scheduler's are the answer) or when the cluster's head does not answer.
    pub(crate) fn resource_view(&self) -> Option<(BTreeMap<String, f64>, BTreeMap<String, f64>)> {
        match self {
            Backend::Embedded => None,
            Backend::Cluster(client) => owner::resource_view(client),
        }
    }
}

/// In a worker process of a cluster node: the node it works for.
pub(crate) fn worker_node_id() -> Option<NodeId> {
    crate::cluster::worker::worker_node()
}

/// Submits a call of `spec` with `args`. Embedded, `here` runs it on this process's scheduler;
/// on a cluster the arguments are encoded with `encode` and the call goes to the cluster, which
/// fills `returns` when it is done.
pub(crate) fn submit_task<A, R: Returns>(
    rt: &Runtime,
    spec: &'static TaskSpec,
    options: Option<TaskOptions>,
    args: A,
    encode: impl FnOnce(&A) -> Vec<Result<EncodedArg>>,
    returns: R,
    here: impl FnOnce(A, Option<TaskOptions>, R),
) {
    match &rt.backend {
        Backend::Embedded => here(args, options, returns),
        Backend::Cluster(client) => {
            let encoded = encode(&args);
            drop(args);
            owner::submit(client, spec, options, encoded, returns.into_slots());
        }
    }
}

/// Where an actor lives, as its handles see it.
pub(crate) enum ActorLink<A: Send + Sync + 'static> {
    /// In this process.
    Here(Arc<HandleGuard<A>>),
    /// On a cluster node: calls go through the cluster.
    Cluster(Arc<ClusterActor>),
}

impl<A: Send + Sync + 'static> Clone for ActorLink<A> {
    fn clone(&self) -> Self {
        match self {
            ActorLink::Here(guard) => ActorLink::Here(guard.clone()),
            ActorLink::Cluster(actor) => ActorLink::Cluster(actor.clone()),
        }
    }
}

impl<A: Send + Sync + 'static> ActorLink<A> {
    /// The actor's id.
    pub(crate) fn id(&self) -> ActorId {
        match self {
            ActorLink::Here(g) => g.id(),
            ActorLink::Cluster(c) => c.id(),
        }
    }

    /// The actor's type name.
    pub(crate) fn class(&self) -> &'static str {
        match self {
            ActorLink::Here(g) => g.class(),
            ActorLink::Cluster(c) => c.class(),
        }
    }

    /// Queues a call of `method`. For an actor here, `here` queues it in the actor's mailbox;
    /// for one on a cluster node, the arguments are encoded and the call goes there.
    pub(crate) fn call<Args, R: Returns>(
        &self,
        method: &'static str,
        args: Args,
        encode: impl FnOnce(&Args) -> Vec<Result<EncodedArg>>,
        returns: R,
        here: impl FnOnce(&Arc<HandleGuard<A>>, Args, R),
    ) {
        match self {
            ActorLink::Here(guard) => here(guard, args, returns),
            ActorLink::Cluster(actor) => {
                let encoded = encode(&args);
                drop(args);
                owner::call_actor(actor, method, encoded, returns.into_slots());
            }
        }
    }

    /// Kills the actor: `here` stops an actor of this process.
    pub(crate) fn kill(&self, here: impl FnOnce(&Arc<HandleGuard<A>>)) {
        match self {
            ActorLink::Here(guard) => here(guard),
            ActorLink::Cluster(actor) => owner::kill_actor(actor.id()),
        }
    }

    /// The handle is being serialized into a value: the actor must outlive this process's
    /// handles. `here` registers an actor of this process so the value can find it again.
    pub(crate) fn escape(&self, here: impl FnOnce(&Arc<HandleGuard<A>>)) {
        match self {
            ActorLink::Here(guard) => here(guard),
            ActorLink::Cluster(actor) => actor.escape(),
        }
    }
}

impl<A: ActorMethods> ActorLink<A> {
    /// A link to no actor, for a handle read while the value codec traces a type: dropping
    /// it tells no one.
    pub(crate) fn inert(id: ActorId) -> Self {
        ActorLink::Cluster(ClusterActor::held::<A>(id))
    }

    /// Creates an actor of class `A`. Embedded, `here` builds it in this process; on a cluster
    /// the constructor's arguments are encoded and a node builds it.
    pub(crate) fn create<Args>(
        rt: &Arc<Runtime>,
        options: ActorOptions,
        args: Args,
        encode: impl FnOnce(&Args) -> Vec<Result<EncodedArg>>,
        here: impl FnOnce(ActorOptions, Args) -> ActorLink<A>,
    ) -> Result<ActorLink<A>> {
        match &rt.backend {
            Backend::Embedded => Ok(here(options, args)),
            Backend::Cluster(client) => {
                let encoded = encode(&args);
                drop(args);
                owner::create_actor::<A>(client, &options, encoded).map(ActorLink::Cluster)
            }
        }
    }

    /// The actor `id` of a handle read back from a value. Embedded, `here` finds it among this
    /// process's actors; on a cluster every actor is reachable by id.
    pub(crate) fn find(
        id: ActorId,
        here: impl FnOnce() -> std::result::Result<ActorLink<A>, String>,
    ) -> std::result::Result<ActorLink<A>, String> {
        match crate::runtime::current().as_deref().map(|rt| &rt.backend) {
            Ok(Backend::Cluster(_)) => Ok(ActorLink::Cluster(ClusterActor::held::<A>(id))),
            Ok(Backend::Embedded) | Err(_) => here(),
        }
    }

    /// The live actor named `name`. Embedded, `here` looks among this process's named actors.
    pub(crate) fn named(
        rt: &Runtime,
        name: &ActorName,
        here: impl FnOnce() -> Result<ActorLink<A>>,
    ) -> Result<ActorLink<A>> {
        let client = match &rt.backend {
            Backend::Embedded => return here(),
            Backend::Cluster(client) => client,
        };
        let (id, class) = owner::get_actor(client, name)?.ok_or_else(|| {
            Error::new(
                ErrorKind::ActorNotFound,
                format!("no live actor is named {name} on the cluster"),
            )
        })?;
        if class != A::__CLASS {
            return Err(Error::new(
                ErrorKind::ActorNotFound,
                format!(
                    "the actor named {name} is a `{class}`, not a `{}`",
                    std::any::type_name::<A>()
                ),
            ));
        }
        Ok(ActorLink::Cluster(ClusterActor::held::<A>(id)))
    }
}

/// The cluster's nodes as the head lists them; `None` embedded (the runtime describes its one
/// node) or when the head does not answer.
pub(crate) fn nodes(backend: &Backend) -> Option<Vec<crate::runtime::NodeInfo>> {
    match backend {
        Backend::Embedded => None,
        Backend::Cluster(client) => owner::nodes(client),
    }
}

/// Every live named actor as `(namespace, name)`, sorted. Embedded, `here` lists this
/// process's; on a cluster the head's directory answers (empty when it cannot be reached).
pub(crate) fn list_named_actors(
    rt: &Runtime,
    here: impl FnOnce() -> Vec<(String, String)>,
) -> Vec<(String, String)> {
    match &rt.backend {
        Backend::Embedded => here(),
        Backend::Cluster(client) => owner::list_named_actors(client),
    }
}

/// Stores `value` as an object. Embedded, `here` keeps it in this process; on a cluster it is
/// encoded and stored on a node (the slot keeps the encoding for readers here, decoded with
/// `decoder`). `value` is a `T` or a borrow of one.
pub(crate) fn put<T, V>(value: V, decoder: DecodeFn, here: impl FnOnce(V) -> Arc<Slot>) -> Arc<Slot>
where
    T: serde::Serialize + serde::de::DeserializeOwned + 'static,
    V: std::borrow::Borrow<T>,
{
    match crate::runtime::current().as_deref().map(|rt| &rt.backend) {
        Ok(Backend::Cluster(client)) => owner::put::<T>(client, value.borrow(), decoder),
        Ok(Backend::Embedded) | Err(_) => here(value),
    }
}

/// A slot for the object `id`, known here by id only (a ref read back from a value whose slot
/// this process does not hold): on a cluster, filled once its owner says where it is. `None`
/// embedded, where such an object no longer exists.
pub(crate) fn watch(id: ObjectId, decoder: DecodeFn) -> Option<Arc<Slot>> {
    match crate::runtime::current().as_deref().map(|rt| &rt.backend) {
        Ok(Backend::Cluster(client)) => Some(owner::watch(client, id, decoder)),
        Ok(Backend::Embedded) | Err(_) => None,
    }
}

/// Fetches an object that lives on the node at `location` into `slot`.
pub(crate) fn fetch(slot: Arc<Slot>, location: Arc<str>) {
    owner::fetch_into(slot, location);
}

/// This process's last ref to `id`, an object it owns elsewhere, is gone. Never starts a
/// runtime or blocks.
pub(crate) fn release(id: ObjectId) {
    owner::release(id);
}

/// A ref to `id` was serialized into a value: the object must outlive this process's refs.
pub(crate) fn escaped(id: ObjectId) {
    owner::escaped(id);
}

/// A task of a cluster worker that blocks, as reported to its node (so its CPU can be lent);
/// nothing embedded, where the local scheduler lends the CPU itself.
pub(crate) struct Blocked(Option<(Arc<Client>, TaskId)>);

impl Blocked {
    /// Nothing reported.
    pub(crate) const NONE: Blocked = Blocked(None);

    /// Whether a block was reported.
    pub(crate) fn is_reported(&self) -> bool {
        self.0.is_some()
    }
}

/// The running task blocks: a cluster worker reports it so its node lends the task's CPU.
pub(crate) fn task_blocked() -> Blocked {
    Blocked(owner::task_blocked())
}

/// The task that reported `blocked` goes on.
pub(crate) fn task_unblocked(blocked: Blocked) {
    owner::task_unblocked(blocked.0);
}
