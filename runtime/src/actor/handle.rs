//! Handles: the guard that keeps an actor alive, the untyped [`RawHandle`] the generated proxies
//! call through, and the typed [`ActorHandle`] with its serde form.

use std::fmt;
use std::hash::{Hash, Hasher};
use std::ops::Deref;
use std::panic::AssertUnwindSafe;
use std::sync::{Arc, Weak};

use futures::future::BoxFuture;
use futures::FutureExt;
use parking_lot::Mutex;
use serde::{Deserialize, Serialize};

use crate::backend::{ActorLink, EncodedArg};
use crate::error::{Error, ErrorKind, Result};
use crate::local::{Body, Demand, What, Work};
use crate::object::Slot;
use crate::resources::ResourceRequest;
use crate::runtime::{self, Runtime};
use crate::task::{schedule, Returns};

use super::cell::{Call, Mailbox, State, Status};
use super::names::directory;
use super::{ActorCell, ActorId, ActorMethods, ActorName, ActorOptions, ActorSpec, MethodBody};

/// Keeps an actor alive: the actor stops when the last guard (the last handle) is gone.
pub(crate) struct HandleGuard<A: Send + Sync + 'static> {
    pub(super) cell: Arc<ActorCell<A>>,
}

impl<A: Send + Sync + 'static> HandleGuard<A> {
    /// The actor's id.
    pub(crate) fn id(&self) -> ActorId {
        self.cell.id
    }

    /// The actor's type name.
    pub(crate) fn class(&self) -> &'static str {
        self.cell.class
    }
}

impl<A: Send + Sync + 'static> Drop for HandleGuard<A> {
    fn drop(&mut self) {
        self.cell.mailbox.lock().handles_gone = true;
        self.cell.pump();
        directory::remove(self.cell.id);
    }
}

/// The untyped core of a handle. Not public API: use [`ActorHandle`].
#[doc(hidden)]
pub struct RawHandle<A: Send + Sync + 'static> {
    pub(super) link: ActorLink<A>,
}

impl<A: Send + Sync + 'static> Clone for RawHandle<A> {
    fn clone(&self) -> Self {
        RawHandle {
            link: self.link.clone(),
        }
    }
}

impl<A: Send + Sync + 'static> fmt::Debug for RawHandle<A> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}({})", self.class(), self.id())
    }
}

impl<A: Send + Sync + 'static> RawHandle<A> {
    pub(super) fn local(guard: Arc<HandleGuard<A>>) -> Self {
        RawHandle {
            link: ActorLink::Here(guard),
        }
    }

    fn id(&self) -> ActorId {
        self.link.id()
    }

    fn class(&self) -> &'static str {
        self.link.class()
    }
}

// Bounded by `ActorMethods` (which `#[raykit::actor]` implements) rather than `Actor`: without
// `#[derive(raykit::Actor)]` the one error is then on the generated `ActorMethods` impl, none
// on the code that creates and calls the actor.
impl<A: ActorMethods> RawHandle<A> {
    /// Creates an actor from its constructor's arguments `args`: `construct` runs with them
    /// (once their refs are ready) with the actor's resources taken; where the actor is built
    /// in another process, `encode` encodes them for it.
    #[doc(hidden)]
    pub fn create<Args, F>(
        options: ActorOptions,
        deps: &[Option<Arc<Slot>>],
        args: Args,
        encode: impl FnOnce(&Args) -> Vec<Result<EncodedArg>>,
        construct: F,
    ) -> Self
    where
        Args: Send + 'static,
        F: FnOnce(Args) -> Result<A> + Send + 'static,
    {
        let spec = &A::__SPEC;
        let rt = match runtime::current() {
            Ok(rt) => rt,
            Err(e) => return Self::dead_on_arrival(spec, None, e),
        };
        let here =
            |options, args| Self::create_here(&rt, options, deps, move || construct(args)).link;
        match ActorLink::create(&rt, options, args, encode, here) {
            Ok(link) => RawHandle { link },
            Err(e) => Self::dead_on_arrival(spec, Some(&rt), e),
        }
    }

    /// Builds the actor in this process.
    fn create_here(
        rt: &Arc<Runtime>,
        options: ActorOptions,
        deps: &[Option<Arc<Slot>>],
        construct: impl FnOnce() -> Result<A> + Send + 'static,
    ) -> Self {
        let spec = &A::__SPEC;
        let amounts = ResourceRequest::resolve(
            Some(&options.request),
            spec.num_cpus,
            spec.num_gpus,
            spec.resources,
        );
        let what = What("actor", spec.class);
        let demand = match rt.sched.resources.demand_for(&what, &amounts) {
            Ok(d) => d,
            Err(e) => return Self::dead_on_arrival(spec, Some(rt), e),
        };
        let cell = Arc::new(ActorCell {
            id: ActorId::next(),
            class: spec.class,
            name: options.name.clone().map(|name| ActorName {
                namespace: options
                    .namespace
                    .clone()
                    .unwrap_or_else(|| rt.namespace.clone()),
                name,
            }),
            max_concurrency: options
                .max_concurrency
                .unwrap_or(spec.max_concurrency)
                .max(1) as usize,
            demand: demand.clone(),
            sched: Some(rt.sched.clone()),
            runtime: Arc::downgrade(rt),
            mailbox: Mutex::new(Mailbox::new(Status::Creating, None)),
        });
        let guard = Arc::new(HandleGuard { cell: cell.clone() });
        let handle = RawHandle::local(guard.clone());
        if let Some(name) = &cell.name {
            if let Err(e) = rt.actors.register(name, guard, cell.id) {
                cell.mailbox.lock().status = Status::Dead(e);
                return handle;
            }
        }
        let body: Body = Box::new(move || {
            // An actor killed, or left with no handle and no queued call, before its constructor
            // got its turn (e.g. while it waited for resources) is never built: no user code
            // runs for a stopped actor, and the resources just granted go straight back.
            let stopped = {
                let mut mb = cell.mailbox.lock();
                match &mb.status {
                    Status::Dead(_) => true,
                    Status::Creating if mb.handles_gone && mb.queue.is_empty() => {
                        mb.status =
                            Status::Dead(cell.died("was stopped: every handle to it was dropped"));
                        true
                    }
                    _ => false,
                }
            };
            if stopped {
                drop(construct);
                cell.release_resources();
                if let (Some(name), Some(rt)) = (&cell.name, cell.runtime.upgrade()) {
                    rt.actors.unname(name, cell.id);
                }
                cell.pump();
                return None;
            }
            let built = std::panic::catch_unwind(AssertUnwindSafe(construct));
            let outcome = match built {
                Ok(Ok(actor)) => Ok(actor),
                Ok(Err(e)) => Err(Error::with_source(
                    ErrorKind::ActorDied,
                    format!(
                        "actor `{}` ({}) could not be created: {e}",
                        cell.class, cell.id
                    ),
                    e,
                )),
                Err(panic) => Err(Error::new(
                    ErrorKind::ActorDied,
                    format!(
                        "actor `{}` ({}) died: its constructor `{}::new` panicked: {}",
                        cell.class,
                        cell.id,
                        cell.class,
                        crate::error::panic_message(&*panic)
                    ),
                )),
            };
            let release = {
                let mut mb = cell.mailbox.lock();
                match (&mb.status, outcome) {
                    (Status::Creating, Ok(actor)) => {
                        mb.status = Status::Alive;
                        mb.state = Some(Arc::new(tokio::sync::RwLock::new(actor)));
                        mb.holds_resources = true;
                        false
                    }
                    (Status::Creating, Err(e)) => {
                        mb.status = Status::Dead(e);
                        true
                    }
                    // Killed while being built: drop what was built.
                    _ => true,
                }
            };
            if release {
                cell.release_resources();
                if let (Some(name), Some(rt)) = (&cell.name, cell.runtime.upgrade()) {
                    rt.actors.unname(name, cell.id);
                }
            }
            cell.pump();
            None
        });
        let work = Work {
            demand,
            is_async: false,
            keep_resources: true,
            body,
        };
        schedule(rt, work, deps);
        handle
    }

    /// A handle to an actor that could not be created: every call fails with `error`.
    fn dead_on_arrival(spec: &ActorSpec, rt: Option<&Arc<Runtime>>, error: Error) -> Self {
        let id = ActorId::next();
        let e = Error::with_source(
            ErrorKind::ActorDied,
            format!(
                "actor `{}` ({id}) could not be created: {error}",
                spec.class
            ),
            error,
        );
        let cell = Arc::new(ActorCell {
            id,
            class: spec.class,
            name: None,
            max_concurrency: 1,
            demand: Demand::default(),
            sched: rt.map(|rt| rt.sched.clone()),
            runtime: rt.map_or_else(Weak::new, Arc::downgrade),
            mailbox: Mutex::new(Mailbox::new(Status::Dead(e), None)),
        });
        RawHandle::local(Arc::new(HandleGuard { cell }))
    }
}

impl<A: Send + Sync + 'static> RawHandle<A> {
    /// Queues a call of `method` with arguments `args`: `body` makes the call from them; where
    /// the actor lives in another process, `encode` encodes them for it.
    #[doc(hidden)]
    pub fn call<Args, R: Returns>(
        &self,
        method: &'static str,
        deps: &[Option<Arc<Slot>>],
        args: Args,
        encode: impl FnOnce(&Args) -> Vec<Result<EncodedArg>>,
        returns: R,
        body: impl FnOnce(Args) -> MethodBody<A, R::Value>,
    ) {
        self.link
            .call(method, args, encode, returns, |guard, args, returns| {
                Self::call_here(&guard.cell, method, deps, returns, body(args))
            });
    }

    /// Queues a call in the mailbox of an actor of this process.
    fn call_here<R: Returns>(
        cell: &Arc<ActorCell<A>>,
        method: &'static str,
        deps: &[Option<Arc<Slot>>],
        returns: R,
        body: MethodBody<A, R::Value>,
    ) {
        let (exclusive, is_async) = match &body {
            MethodBody::Ref(_) => (false, false),
            MethodBody::Mut(_) => (true, false),
            MethodBody::RefAsync(_) => (false, true),
            MethodBody::MutAsync(_) => (true, true),
        };
        let class = cell.class;
        let outputs = returns.outputs();
        let run = move |state: Result<State<A>>| -> Option<BoxFuture<'static, ()>> {
            let state = match state {
                Ok(s) => s,
                Err(e) => {
                    returns.fail(e);
                    return None;
                }
            };
            match body {
                MethodBody::Ref(f) => {
                    let guard = state.try_read().ok();
                    let out = match guard {
                        Some(g) => std::panic::catch_unwind(AssertUnwindSafe(|| f(&g))),
                        None => Ok(Err(Error::new(ErrorKind::ActorDied, "actor state is busy"))),
                    };
                    settle(returns, out, class, method);
                    None
                }
                MethodBody::Mut(f) => {
                    let guard = state.try_write().ok();
                    let out = match guard {
                        Some(mut g) => std::panic::catch_unwind(AssertUnwindSafe(|| f(&mut g))),
                        None => Ok(Err(Error::new(ErrorKind::ActorDied, "actor state is busy"))),
                    };
                    settle(returns, out, class, method);
                    None
                }
                MethodBody::RefAsync(f) => Some(Box::pin(async move {
                    let guard = state.read_owned().await;
                    let out = AssertUnwindSafe(async move { f(guard).await })
                        .catch_unwind()
                        .await;
                    settle(returns, out, class, method);
                })),
                MethodBody::MutAsync(f) => Some(Box::pin(async move {
                    let guard = state.write_owned().await;
                    let out = AssertUnwindSafe(async move { f(guard).await })
                        .catch_unwind()
                        .await;
                    settle(returns, out, class, method);
                })),
            }
        };
        let call = Call {
            exclusive,
            is_async,
            deps: deps
                .iter()
                .flatten()
                .filter(|s| !s.is_ready())
                .cloned()
                .collect(),
            caller: crate::local::current_caller(),
            waiting_on: None,
            outputs,
            run: Box::new(run),
        };
        cell.enqueue(call);
    }
}

fn settle<R: Returns>(
    returns: R,
    out: std::thread::Result<Result<R::Value>>,
    class: &str,
    method: &str,
) {
    match out {
        Ok(Ok(v)) => returns.fulfil(v),
        Ok(Err(e)) => returns.fail(e),
        Err(panic) => returns.fail(Error::new(
            ErrorKind::TaskPanicked,
            format!(
                "actor method `{class}::{method}` panicked: {}",
                crate::error::panic_message(&*panic)
            ),
        )),
    }
}

/// A typed handle to an actor. Its methods are the actor's public methods; each call returns
/// an [`ObjectRef`](crate::ObjectRef) at once and runs on the actor in order.
///
/// Handles are cheap to clone, can be sent to tasks and other actors, stored, returned and
/// serialized; every copy calls the same actor. An unnamed actor stops when its last handle is
/// dropped (after the calls already queued).
pub struct ActorHandle<A: ActorMethods> {
    proxy: A::Proxy,
}

impl<A: ActorMethods> ActorHandle<A> {
    #[doc(hidden)]
    pub fn from_raw(raw: RawHandle<A>) -> Self {
        ActorHandle {
            proxy: A::__proxy(raw),
        }
    }

    fn raw(&self) -> &RawHandle<A> {
        A::__raw(&self.proxy)
    }

    /// The id of the actor.
    pub fn id(&self) -> ActorId {
        self.raw().id()
    }

    /// Kills the actor: the calls it runs, the calls not yet started and every later call
    /// fail at once with an [`ActorDied`](ErrorKind::ActorDied) error. On a cluster the actor's
    /// process is killed; in this process a running call's thread cannot be stopped, so it
    /// runs to its end, but what it returns goes nowhere.
    pub fn kill(&self) {
        self.raw().link.kill(|g| g.cell.kill("was killed"));
    }
}

impl<A: ActorMethods> Deref for ActorHandle<A> {
    type Target = A::Proxy;

    fn deref(&self) -> &A::Proxy {
        &self.proxy
    }
}

impl<A: ActorMethods> Clone for ActorHandle<A> {
    fn clone(&self) -> Self {
        ActorHandle {
            proxy: self.proxy.clone(),
        }
    }
}

impl<A: ActorMethods> fmt::Debug for ActorHandle<A> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ActorHandle<{}>({})", self.raw().class(), self.id())
    }
}

impl<A: ActorMethods> PartialEq for ActorHandle<A> {
    fn eq(&self, other: &Self) -> bool {
        self.id() == other.id()
    }
}

impl<A: ActorMethods> Eq for ActorHandle<A> {}

impl<A: ActorMethods> Hash for ActorHandle<A> {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.id().hash(state)
    }
}

/// A handle travels as its actor's id and class, so it cannot be read back as another class's.
impl<A: ActorMethods> Serialize for ActorHandle<A> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        let link = &self.raw().link;
        link.escape(|guard| directory::export(guard.cell.id, guard.clone()));
        (crate::codec::Portable(link.id()), A::__CLASS).serialize(s)
    }
}

impl<'de, A: ActorMethods> Deserialize<'de> for ActorHandle<A> {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        let (crate::codec::Portable(id), class) =
            <(crate::codec::Portable<ActorId>, std::borrow::Cow<'de, str>)>::deserialize(d)?;
        if crate::codec::tracing() {
            // Finding the format of a type that holds handles: an inert one (dropping it
            // tells no one).
            let link = ActorLink::inert(id);
            return Ok(ActorHandle::from_raw(RawHandle { link }));
        }
        if class != A::__CLASS {
            return Err(serde::de::Error::custom(format!(
                "actor {id} is a `{class}`, not a `{}`",
                A::__CLASS
            )));
        }
        let here = || {
            let any =
                directory::find(id).ok_or_else(|| format!("actor {id} no longer exists here"))?;
            let guard = any
                .downcast::<HandleGuard<A>>()
                .map_err(|_| format!("actor {id} is not a `{}`", std::any::type_name::<A>()))?;
            Ok(ActorLink::Here(guard))
        };
        let link = ActorLink::find(id, here).map_err(serde::de::Error::custom)?;
        Ok(ActorHandle::from_raw(RawHandle { link }))
    }
}
