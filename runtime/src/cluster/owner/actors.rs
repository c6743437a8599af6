//! The client side of actors on a cluster: creating them at the head, calling them (each call
//! is a submission whose output the head reports like a task's), killing them, finding named
//! ones, and telling the head when the creator's last handle is gone or a handle escaped into
//! a value.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use super::{current, Client, CLIENT};
use crate::actor::{ActorId, ActorMethods, ActorName, ActorOptions};
use crate::cluster::proto::{ActorCreation, Message, WireArg};
use crate::error::{Error, ErrorKind, Result};
use crate::object::Slot;
use crate::resources::ResourceRequest;

/// How long `get_actor` waits for the head's answer.
const NAMED_TIMEOUT: Duration = Duration::from_secs(30);

/// Where the head's answer about a named actor goes.
pub(super) type NamedReply = std::sync::mpsc::Sender<Option<(ActorId, String)>>;

/// A handle's view of an actor on a cluster node.
pub(crate) struct ClusterActor {
    id: ActorId,
    /// The type's name, for messages.
    class: &'static str,
    /// The class's stable name and signature hash, which calls carry.
    stable: &'static str,
    signature_hash: u64,
    /// Created by this process: its drop tells the head the creator's handles are gone.
    owned: bool,
    escaped: AtomicBool,
}

impl std::fmt::Debug for ClusterActor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}({})", self.class, self.id)
    }
}

impl ClusterActor {
    /// A handle to an actor this process did not create (deserialized, or found by name).
    pub(crate) fn held<A: ActorMethods>(id: ActorId) -> Arc<ClusterActor> {
        Arc::new(ClusterActor::new::<A>(id, false))
    }

    fn new<A: ActorMethods>(id: ActorId, owned: bool) -> ClusterActor {
        ClusterActor {
            id,
            class: A::__SPEC.class,
            stable: A::__CLASS,
            signature_hash: A::__HASH,
            owned,
            escaped: AtomicBool::new(false),
        }
    }

    /// The actor's id.
    pub(crate) fn id(&self) -> ActorId {
        self.id
    }

    /// The actor's type name.
    pub(crate) fn class(&self) -> &'static str {
        self.class
    }

    /// A handle to the actor was serialized: tell the head once.
    pub(crate) fn escape(&self) {
        if !self.escaped.swap(true, Ordering::AcqRel) {
            if let Some(client) = CLIENT.lock().upgrade() {
                let _ = client.send(Message::EscapedActor { actor_id: self.id });
            }
        }
    }
}

impl Drop for ClusterActor {
    fn drop(&mut self) {
        if !self.owned {
            return;
        }
        if let Some(client) = CLIENT.lock().upgrade() {
            let _ = client.send(Message::ReleaseActor { actor_id: self.id });
        }
    }
}

impl Client {
    /// The head answered about the actor named `name`.
    pub(super) fn named_actor_found(
        &self,
        namespace: String,
        name: String,
        actor: Option<(ActorId, String)>,
    ) {
        for reply in self
            .named
            .lock()
            .remove(&(namespace, name))
            .unwrap_or_default()
        {
            let _ = reply.send(actor.clone());
        }
    }
}

fn cluster() -> Result<Arc<Client>> {
    current().ok_or_else(|| {
        Error::new(
            ErrorKind::Config,
            "an actor on a cluster, but this runtime is not connected to one",
        )
    })
}

/// Creates an actor of class `A` on the cluster with its constructor's arguments encoded.
pub(crate) fn create_actor<A: ActorMethods>(
    client: &Client,
    options: &ActorOptions,
    wire: Vec<Result<WireArg>>,
) -> Result<Arc<ClusterActor>> {
    let args = wire.into_iter().collect::<Result<Vec<_>>>()?;
    let spec = &A::__SPEC;
    let resources = ResourceRequest::resolve(
        Some(&options.request),
        spec.num_cpus,
        spec.num_gpus,
        spec.resources,
    );
    let create = client.task(
        &format!("{}::new", A::__CLASS),
        A::__HASH,
        args,
        &[],
        resources,
        0,
    );
    let actor_id = ActorId::next();
    let creation = ActorCreation {
        actor_id,
        job_id: client.job_id,
        create,
        class: A::__CLASS.to_owned(),
        name: options.name.clone(),
        namespace: options
            .namespace
            .clone()
            .unwrap_or_else(|| client.namespace.clone()),
        max_restarts: options.max_restarts.unwrap_or(spec.max_restarts),
        max_concurrency: options
            .max_concurrency
            .unwrap_or(spec.max_concurrency)
            .max(1),
    };
    client.send(Message::CreateActor(Box::new(creation)))?;
    Ok(Arc::new(ClusterActor::new::<A>(actor_id, true)))
}

/// Calls `method` of a cluster actor: its output is filled when the head reports it.
pub(crate) fn call_actor(
    actor: &ClusterActor,
    method: &str,
    wire: Vec<Result<WireArg>>,
    outputs: Vec<Arc<Slot>>,
) {
    let fail = |e: Error| outputs.iter().for_each(|s| s.fail(e.clone()));
    let client = match cluster() {
        Ok(c) => c,
        Err(e) => return fail(e),
    };
    let args = match wire.into_iter().collect::<Result<Vec<_>>>() {
        Ok(a) => a,
        Err(e) => return fail(e),
    };
    let task = client.task(
        &format!("{}::{method}", actor.stable),
        actor.signature_hash,
        args,
        &outputs,
        std::collections::BTreeMap::new(),
        0,
    );
    let msg = Message::SubmitActorCall {
        actor_id: actor.id,
        task,
    };
    client.submit(msg, &outputs);
}

/// Kills a cluster actor.
pub(crate) fn kill_actor(actor_id: ActorId) {
    if let Ok(client) = cluster() {
        let _ = client.send(Message::KillActor { actor_id });
    }
}

/// The live actor named `name` on the cluster, with its class's stable name.
pub(crate) fn get_actor(client: &Client, name: &ActorName) -> Result<Option<(ActorId, String)>> {
    let (tx, rx) = std::sync::mpsc::channel();
    client
        .named
        .lock()
        .entry((name.namespace.clone(), name.name.clone()))
        .or_default()
        .push(tx);
    client.send(Message::GetActor {
        namespace: name.namespace.clone(),
        name: name.name.clone(),
    })?;
    rx.recv_timeout(NAMED_TIMEOUT).map_err(|_| {
        Error::new(
            ErrorKind::Network,
            format!("the head did not say within {NAMED_TIMEOUT:?} which actor is named {name}"),
        )
    })
}

/// `(namespace, name)` of every live named actor on the cluster, sorted; empty (with a
/// warning) when the head does not answer.
pub(crate) fn list_named_actors(client: &Client) -> Vec<(String, String)> {
    let (tx, rx) = std::sync::mpsc::channel();
    client.name_lists.lock().push_back(tx);
    if let Err(e) = client.send(Message::ListNamedActors) {
        tracing::warn!("cannot list the named actors: {e}");
        return Vec::new();
    }
    rx.recv_timeout(NAMED_TIMEOUT).unwrap_or_else(|_| {
        tracing::warn!("the head did not list the named actors within {NAMED_TIMEOUT:?}");
        Vec::new()
    })
}
