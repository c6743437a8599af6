//! Actors: typed handles, mailboxes and the per-actor pump that runs calls in order.
//!
//! An actor is a value of a user type living in an [`ActorCell`]. Calls are queued in its
//! mailbox in submission order; the pump starts the call at the head once its ref arguments are
//! ready and the actor is free: one call at a time, or with `max_concurrency > 1` several `&self`
//! calls at once while `&mut self` calls stay exclusive. Calls run as resource-free work on the
//! node's threads (sync methods) or its async executor (async methods). The actor holds its own
//! resources from construction to death, and dies when killed or when its last handle is gone.

use std::fmt;
use std::panic::AssertUnwindSafe;
use std::sync::Arc;

use parking_lot::Mutex;

use crate::error::{Error, ErrorKind, Result};
use crate::local::Demand;
use crate::object::Slot;
use crate::resources::ResourceRequest;
use crate::runtime::{self};
use crate::task::Returns;

mod cell;
mod exit;
mod handle;
mod host;
mod names;

pub(crate) use cell::ActorCell;
pub use cell::{MethodBody, MutBody, ReadGuard, RefBody, WriteGuard};
pub use exit::exit_actor;
pub(crate) use handle::HandleGuard;
pub use handle::{ActorHandle, RawHandle};
pub use host::{host_actor, Encoded};
pub use names::{get_actor, get_actor_in, list_named_actors};
pub(crate) use names::{ActorName, NamedActors};

pub use crate::ids::ActorId;

/// What `#[derive(raykit::Actor)]` knows about an actor type: its `#[actor(..)]` options.
#[doc(hidden)]
#[derive(Debug)]
pub struct ActorSpec {
    /// The type's name, for messages.
    pub class: &'static str,
    /// CPUs the actor holds for its life (default 0).
    pub num_cpus: f64,
    /// GPUs the actor holds for its life.
    pub num_gpus: f64,
    /// Custom resources the actor holds for its life.
    pub resources: &'static [(&'static str, f64)],
    /// Restarts after the actor's process or node dies.
    pub max_restarts: u32,
    /// How many `&self` calls may run at once (default 1).
    pub max_concurrency: u32,
}

/// Compile-time check that a type can be an argument or return value of an actor call (the
/// same rule as for remote functions, with its own message).
#[doc(hidden)]
#[diagnostic::on_unimplemented(
    message = "`{Self}` cannot be an argument or return value of an actor call",
    note = "the arguments of an actor's constructor and methods, and what its methods return, must be `serde::Serialize + serde::de::DeserializeOwned + Send + 'static`, so the program also runs on a cluster"
)]
pub trait ActorValue: crate::__private::RemoteValue {}

impl<T: crate::__private::RemoteValue> ActorValue for T {}

impl ActorSpec {
    /// Fails to compile unless `T` can cross to or from an actor.
    #[doc(hidden)]
    pub const fn assert_value<T: ActorValue>() {}
}

/// A type that can be an actor. Derive it with `#[derive(raykit::Actor)]` and give the type a
/// `#[raykit::actor]` impl block with a `pub fn new(..) -> Self` constructor.
#[diagnostic::on_unimplemented(
    message = "`{Self}` is not an actor",
    label = "add `#[derive(raykit::Actor)]` to `{Self}`"
)]
pub trait Actor: Send + Sync + Sized + 'static {
    #[doc(hidden)]
    const __SPEC: ActorSpec;
}

/// The methods of an actor, as `#[raykit::actor]` generates them: the proxy type whose methods
/// a handle offers.
#[doc(hidden)]
#[diagnostic::on_unimplemented(
    message = "`{Self}` is not an actor with methods",
    label = "not an actor: `{Self}` has no `#[raykit::actor]` impl block",
    note = "an actor type has `#[derive(raykit::Actor)]` and a `#[raykit::actor]` impl block with its constructor `pub fn new(..) -> Self` and its methods"
)]
pub trait ActorMethods: Actor {
    /// The class's stable name (`module::path::Type`), by which cluster nodes find it.
    const __CLASS: &'static str;
    /// The hash of the constructor's and every method's signature.
    const __HASH: u64;
    /// The proxy: one method per public method of the actor, each returning a ref.
    type Proxy: Clone + Send + Sync + 'static;
    /// Wraps a raw handle.
    fn __proxy(raw: RawHandle<Self>) -> Self::Proxy;
    /// The raw handle inside a proxy.
    fn __raw(proxy: &Self::Proxy) -> &RawHandle<Self>;
}

/// Options for creating one actor: `Counter::options(ActorOptions::new().name("hits")).remote(..)`.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ActorOptions {
    pub(crate) name: Option<String>,
    pub(crate) namespace: Option<String>,
    pub(crate) request: ResourceRequest,
    pub(crate) max_restarts: Option<u32>,
    pub(crate) max_concurrency: Option<u32>,
}

impl ActorOptions {
    /// No overrides: the options of `#[actor(..)]` apply.
    pub fn new() -> Self {
        Self::default()
    }

    /// Registers the actor under `name`, so [`get_actor`] finds it from anywhere. A named actor
    /// lives until it is killed, even when no handle is left.
    pub fn name(mut self, name: impl Into<String>) -> Self {
        self.name = Some(name.into());
        self
    }

    /// The namespace the actor's name is registered in (default: the job's, see
    /// [`Config::namespace`](crate::Config::namespace)); find it there with
    /// [`get_actor_in`](crate::get_actor_in).
    pub fn namespace(mut self, namespace: impl Into<String>) -> Self {
        self.namespace = Some(namespace.into());
        self
    }

    /// CPUs the actor holds for its life.
    pub fn num_cpus(mut self, n: impl Into<f64>) -> Self {
        self.request.num_cpus = Some(n.into());
        self
    }

    /// GPUs the actor holds for its life.
    pub fn num_gpus(mut self, n: impl Into<f64>) -> Self {
        self.request.num_gpus = Some(n.into());
        self
    }

    /// An amount of the custom resource `name` the actor holds.
    pub fn resource(mut self, name: impl Into<String>, amount: impl Into<f64>) -> Self {
        self.request.set_custom(name.into(), amount.into());
        self
    }

    /// Restarts after the actor's process or node dies.
    pub fn max_restarts(mut self, n: u32) -> Self {
        self.max_restarts = Some(n);
        self
    }

    /// How many `&self` calls may run at once (`&mut self` calls always run alone).
    pub fn max_concurrency(mut self, n: u32) -> Self {
        self.max_concurrency = Some(n.max(1));
        self
    }
}

/// What `#[derive(raykit::Actor)]` checks: the type has its `#[raykit::actor]` impl block too.
#[doc(hidden)]
#[diagnostic::on_unimplemented(
    message = "`{Self}` derives `raykit::Actor` but has no `#[raykit::actor]` impl block",
    label = "add `#[raykit::actor]` to an `impl {Self}` block with a `pub fn new(..) -> Self`"
)]
pub trait HasActorBlock {}

impl<A: ActorMethods> HasActorBlock for A {}

/// Fails to compile unless `A` has a `#[raykit::actor]` impl block.
#[doc(hidden)]
pub const fn assert_actor_methods<A: HasActorBlock>() {}
