//! Actors: typed handles, mailboxes and the per-actor pump that runs calls in order.
//!
//! An actor is a value of a user type living in an [`ActorCell`]. Calls are queued in its
//! mailbox in submission order; the pump starts the call at the head once its ref arguments are
//! ready and the actor is free: one call at a time, or with `max_concurrency > 1` several `&self`
//! calls at once while `&mut self` calls stay exclusive. Calls run as resource-free jobs on the
//! node's threads (sync methods) or its async executor (async methods). The actor holds its own
//! resources from construction to death, and dies when killed or when its last handle is gone.

use std::any::Any;
use std::collections::{HashMap, VecDeque};
use std::fmt;
use std::hash::{Hash, Hasher};
use std::ops::Deref;
use std::panic::AssertUnwindSafe;
use std::sync::{Arc, OnceLock, Weak};

use futures::future::BoxFuture;
use futures::FutureExt;
use parking_lot::Mutex;
use serde::{Deserialize, Serialize};

use crate::backend::{ActorLink, EncodedArg};
use crate::error::{Error, ErrorKind, Result};
use crate::local::{Body, Demand, Job, Scheduler, What};
use crate::object::{Dependent, Slot, Waiter};
use crate::resources::ResourceRequest;
use crate::runtime::{self, Runtime};
use crate::task::{schedule, CallOutputs, Returns};

mod host;

pub use host::{host_actor, Encoded};

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

/// Read access to an actor's state for an async `&self` method.
#[doc(hidden)]
pub type ReadGuard<A> = tokio::sync::OwnedRwLockReadGuard<A>;
/// Write access to an actor's state for an async `&mut self` method.
#[doc(hidden)]
pub type WriteGuard<A> = tokio::sync::OwnedRwLockWriteGuard<A>;

/// A sync `&self` method call.
#[doc(hidden)]
pub type RefBody<A, V> = Box<dyn FnOnce(&A) -> Result<V> + Send>;
/// A sync `&mut self` method call.
#[doc(hidden)]
pub type MutBody<A, V> = Box<dyn FnOnce(&mut A) -> Result<V> + Send>;
/// What a queued call does once started: run with the state, or fail with the error.
type CallRun<A> = Box<dyn FnOnce(Result<State<A>>) -> Option<BoxFuture<'static, ()>> + Send>;

/// The body of one method call, as the proxy builds it.
#[doc(hidden)]
pub enum MethodBody<A, V> {
    /// `fn m(&self, ..)`.
    Ref(RefBody<A, V>),
    /// `fn m(&mut self, ..)`.
    Mut(MutBody<A, V>),
    /// `async fn m(&self, ..)`.
    RefAsync(Box<dyn FnOnce(ReadGuard<A>) -> BoxFuture<'static, Result<V>> + Send>),
    /// `async fn m(&mut self, ..)`.
    MutAsync(Box<dyn FnOnce(WriteGuard<A>) -> BoxFuture<'static, Result<V>> + Send>),
}

impl<A, V> fmt::Debug for MethodBody<A, V> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            MethodBody::Ref(_) => "MethodBody::Ref",
            MethodBody::Mut(_) => "MethodBody::Mut",
            MethodBody::RefAsync(_) => "MethodBody::RefAsync",
            MethodBody::MutAsync(_) => "MethodBody::MutAsync",
        })
    }
}

type State<A> = Arc<tokio::sync::RwLock<A>>;

/// A queued call: started with the state, or with the error that kills it.
struct Call<A> {
    exclusive: bool,
    is_async: bool,
    deps: Vec<Arc<Slot>>,
    /// Who submitted it (see [`crate::local::current_caller`]): calls of one caller run in
    /// the order it submitted them, and never wait behind another caller's call.
    caller: u64,
    /// The argument whose readiness it is told of now (a waiter is registered on it).
    waiting_on: Option<crate::object::ObjectId>,
    /// Its output objects: failed at once when the actor is killed while the call runs.
    outputs: CallOutputs,
    run: CallRun<A>,
}

impl<A> Call<A> {
    fn unready_dep(&self) -> Option<&Arc<Slot>> {
        self.deps.iter().find(|s| !s.is_ready())
    }
}

enum Status {
    Creating,
    Alive,
    Dead(Error),
}

struct Mailbox<A> {
    status: Status,
    state: Option<State<A>>,
    queue: VecDeque<Call<A>>,
    running_shared: usize,
    running_exclusive: bool,
    /// The outputs of the calls running now, by call number: a kill fails them at once.
    running: Vec<(u64, CallOutputs)>,
    /// The number of the next call to start.
    next_call: u64,
    handles_gone: bool,
    holds_resources: bool,
}

impl<A> Mailbox<A> {
    /// Counts `call` as running: its number, by which its end is known.
    fn started(&mut self, call: &mut Call<A>) -> u64 {
        let n = self.next_call;
        self.next_call += 1;
        self.running.push((n, std::mem::take(&mut call.outputs)));
        n
    }

    /// The call `n` ended.
    fn ended(&mut self, n: u64) {
        if let Some(at) = self.running.iter().position(|(m, _)| *m == n) {
            self.running.swap_remove(at);
        }
    }

    fn new(status: Status, state: Option<State<A>>) -> Self {
        Mailbox {
            status,
            state,
            queue: VecDeque::new(),
            running_shared: 0,
            running_exclusive: false,
            running: Vec::new(),
            next_call: 0,
            handles_gone: false,
            holds_resources: false,
        }
    }
}

/// One actor: its state, mailbox and the resources it holds.
pub(crate) struct ActorCell<A> {
    id: ActorId,
    class: &'static str,
    name: Option<String>,
    max_concurrency: usize,
    demand: Demand,
    /// The scheduler of the node the actor lives on (`None`: it never got one).
    sched: Option<Arc<Scheduler>>,
    runtime: Weak<Runtime>,
    mailbox: Mutex<Mailbox<A>>,
}

impl<A: Send + Sync + 'static> ActorCell<A> {
    fn died(&self, why: &str) -> Error {
        Error::new(
            ErrorKind::ActorDied,
            format!("actor `{}` ({}) {why}", self.class, self.id),
        )
    }

    /// Queues a call and starts what can start; a dead actor fails it at once.
    fn enqueue(self: &Arc<Self>, call: Call<A>) {
        let rejected = {
            let mut mb = self.mailbox.lock();
            match &mb.status {
                Status::Dead(e) => Some((call, e.clone())),
                _ => {
                    mb.queue.push_back(call);
                    None
                }
            }
        };
        match rejected {
            Some((call, e)) => {
                (call.run)(Err(e));
            }
            None => self.pump(),
        }
    }

    /// Starts every call that may start now; fails queued calls of a dead actor; stops an
    /// actor whose handles are all gone once it is idle.
    fn pump(self: &Arc<Self>) {
        let mut start = Vec::new();
        let mut fail = Vec::new();
        let mut failure = None;
        let mut stopped_state = None;
        let mut release = false;
        {
            let mut mb = self.mailbox.lock();
            match &mb.status {
                Status::Creating => return,
                Status::Dead(e) => {
                    failure = Some(e.clone());
                    fail.extend(mb.queue.drain(..));
                }
                Status::Alive => {
                    // Callers whose first queued call waits for an argument: their later calls
                    // wait behind it, other callers' calls do not.
                    let mut blocked: Vec<u64> = Vec::new();
                    let mut i = 0;
                    while i < mb.queue.len() {
                        let call = &mb.queue[i];
                        if blocked.contains(&call.caller) {
                            i += 1;
                            continue;
                        }
                        if let Some(slot) = call.unready_dep() {
                            let id = slot.id();
                            if call.waiting_on != Some(id) {
                                let slot = slot.clone();
                                let waiter = Arc::new(HeadReady(self.clone()));
                                if slot.add_waiter(Waiter::Dependent(waiter)).is_err() {
                                    continue; // became ready meanwhile: look again
                                }
                                mb.queue[i].waiting_on = Some(id);
                            }
                            blocked.push(mb.queue[i].caller);
                            i += 1;
                            continue;
                        }
                        // The first ready call starts when the actor has room; later ones wait
                        // for it (one at a time, `&mut self` calls alone).
                        if call.exclusive {
                            if mb.running_shared == 0 && !mb.running_exclusive {
                                mb.running_exclusive = true;
                                if let Some(mut call) = mb.queue.remove(i) {
                                    let n = mb.started(&mut call);
                                    start.push((call, n));
                                }
                            }
                            break;
                        }
                        if mb.running_exclusive || mb.running_shared >= self.max_concurrency {
                            break;
                        }
                        mb.running_shared += 1;
                        if let Some(mut call) = mb.queue.remove(i) {
                            let n = mb.started(&mut call);
                            start.push((call, n));
                        }
                    }
                    let idle =
                        mb.queue.is_empty() && mb.running_shared == 0 && !mb.running_exclusive;
                    if mb.handles_gone && idle {
                        mb.status =
                            Status::Dead(self.died("was stopped: every handle to it was dropped"));
                        stopped_state = mb.state.take();
                        release = std::mem::take(&mut mb.holds_resources);
                    }
                }
            }
        }
        for (call, n) in start {
            self.start(call, n);
        }
        if let Some(e) = failure {
            for call in fail {
                (call.run)(Err(e.clone()));
            }
        }
        drop(stopped_state);
        if release {
            self.release_resources();
        }
    }

    fn release_resources(&self) {
        if let Some(sched) = &self.sched {
            sched.release(&self.demand);
        }
    }

    fn start(self: &Arc<Self>, call: Call<A>, n: u64) {
        let state = self.mailbox.lock().state.clone();
        let done = Finished {
            cell: self.clone(),
            exclusive: call.exclusive,
            call: n,
        };
        let run = call.run;
        let body: Body = Box::new(move || {
            let state = state.ok_or_else(|| done.cell.died("is not running"));
            match run(state) {
                None => {
                    let mut done = done;
                    done.drain();
                    drop(done);
                    None
                }
                Some(fut) => Some(Box::pin(async move {
                    fut.await;
                    drop(done);
                })),
            }
        });
        match &self.sched {
            Some(sched) => sched.submit(Job {
                demand: Demand::default(),
                is_async: call.is_async,
                keep_resources: false,
                body,
            }),
            None => drop(body),
        }
    }

    /// Kills the actor: the calls it runs fail at once (what they return later goes nowhere),
    /// queued and later calls fail, the state is dropped once running calls end, its
    /// resources and name are given back.
    fn kill(self: &Arc<Self>, why: &str) {
        let error = self.died(why);
        let (state, release, running) = {
            let mut mb = self.mailbox.lock();
            if matches!(mb.status, Status::Dead(_)) {
                return;
            }
            mb.status = Status::Dead(error.clone());
            (
                mb.state.take(),
                std::mem::take(&mut mb.holds_resources),
                std::mem::take(&mut mb.running),
            )
        };
        for (_, outputs) in running {
            outputs.fail(&error);
        }
        drop(state);
        if release {
            self.release_resources();
        }
        if let (Some(name), Some(rt)) = (&self.name, self.runtime.upgrade()) {
            rt.actors.unname(name, self.id);
        }
        self.pump();
    }
}

/// Ends a started call (run or dropped), so the pump can start the next one.
struct Finished<A: Send + Sync + 'static> {
    cell: Arc<ActorCell<A>>,
    exclusive: bool,
    /// The call's number in the mailbox's running calls.
    call: u64,
}

impl<A: Send + Sync + 'static> Finished<A> {
    /// Runs the next queued sync calls of the same kind (shared or exclusive) on this thread,
    /// in the slot this call held, instead of a new job per call: no thread hop, no scheduling.
    /// After a budget the thread goes back, so one busy actor cannot keep it for good.
    fn drain(&mut self) {
        const BUDGET: usize = 64;
        for _ in 0..BUDGET {
            let next = {
                let mut mb = self.cell.mailbox.lock();
                let startable = matches!(mb.status, Status::Alive)
                    && mb.queue.front().is_some_and(|c| {
                        !c.is_async && c.exclusive == self.exclusive && c.unready_dep().is_none()
                    });
                if !startable {
                    return;
                }
                let state = mb.state.clone();
                mb.queue.pop_front().map(|mut c| {
                    // The call this slot held ended; the next one holds it now.
                    mb.ended(self.call);
                    self.call = mb.started(&mut c);
                    (c, state)
                })
            };
            let Some((call, state)) = next else { return };
            let state = state.ok_or_else(|| self.cell.died("is not running"));
            // A sync call returns no future: it ran to its end here.
            drop((call.run)(state));
        }
    }
}

impl<A: Send + Sync + 'static> Drop for Finished<A> {
    fn drop(&mut self) {
        {
            let mut mb = self.cell.mailbox.lock();
            mb.ended(self.call);
            if self.exclusive {
                mb.running_exclusive = false;
            } else {
                mb.running_shared -= 1;
            }
        }
        self.cell.pump();
    }
}

/// Pumps the mailbox when the argument a caller's first queued call waits for arrives.
struct HeadReady<A>(Arc<ActorCell<A>>);

impl<A: Send + Sync + 'static> Dependent for HeadReady<A> {
    fn dependency_ready(self: Arc<Self>) {
        self.0.pump();
    }
}

/// Keeps an actor alive: the actor stops when the last guard (the last handle) is gone.
pub(crate) struct HandleGuard<A: Send + Sync + 'static> {
    cell: Arc<ActorCell<A>>,
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
    link: ActorLink<A>,
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
    fn local(guard: Arc<HandleGuard<A>>) -> Self {
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
            name: options.name.clone(),
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
        if let Some(name) = &options.name {
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
        let job = Job {
            demand,
            is_async: false,
            keep_resources: true,
            body,
        };
        schedule(rt, job, deps);
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

/// Actors whose handles were serialized, by id, so a deserialized handle finds its actor.
/// Weak: it never keeps an actor alive.
mod directory {
    use super::*;

    type Table = Mutex<HashMap<ActorId, Weak<dyn Any + Send + Sync>>>;

    fn table() -> &'static Table {
        static TABLE: OnceLock<Table> = OnceLock::new();
        TABLE.get_or_init(Default::default)
    }

    pub(super) fn export<A: Send + Sync + 'static>(id: ActorId, guard: Arc<HandleGuard<A>>) {
        let any: Arc<dyn Any + Send + Sync> = guard;
        table()
            .lock()
            .entry(id)
            .or_insert_with(|| Arc::downgrade(&any));
    }

    pub(super) fn find(id: ActorId) -> Option<Arc<dyn Any + Send + Sync>> {
        table().lock().get(&id).and_then(Weak::upgrade)
    }

    pub(super) fn remove(id: ActorId) {
        let mut t = table().lock();
        if t.get(&id).is_some_and(|w| w.strong_count() == 0) {
            t.remove(&id);
        }
    }
}

/// A handle guard of some actor type, kept without knowing the type.
type AnyHandle = Arc<dyn Any + Send + Sync>;

/// Named actors of one runtime. Holds a handle to each, so a named actor outlives its other
/// handles until it is killed.
#[derive(Default)]
pub(crate) struct NamedActors {
    by_name: Mutex<HashMap<String, (ActorId, AnyHandle)>>,
}

impl NamedActors {
    fn register<A: Send + Sync + 'static>(
        &self,
        name: &str,
        guard: Arc<HandleGuard<A>>,
        id: ActorId,
    ) -> Result<()> {
        let mut names = self.by_name.lock();
        if names.contains_key(name) {
            return Err(Error::new(
                ErrorKind::ActorDied,
                format!("cannot create actor named `{name}`: another live actor has that name"),
            ));
        }
        names.insert(name.to_owned(), (id, guard));
        Ok(())
    }

    fn unname(&self, name: &str, id: ActorId) {
        let removed = {
            let mut names = self.by_name.lock();
            match names.get(name) {
                Some((i, _)) if *i == id => names.remove(name),
                _ => None,
            }
        };
        // Dropped outside the lock: the handle's drop may stop the actor.
        drop(removed);
    }

    pub(crate) fn clear(&self) {
        let all: Vec<_> = self.by_name.lock().drain().collect();
        drop(all);
    }

    fn find(&self, name: &str) -> Option<Arc<dyn Any + Send + Sync>> {
        self.by_name.lock().get(name).map(|(_, g)| g.clone())
    }
}

/// The handle of the live actor registered under `name` (see [`ActorOptions::name`]).
///
/// Fails with [`ActorNotFound`](ErrorKind::ActorNotFound) when no live actor has that name or
/// the actor under it is not an `A`.
pub fn get_actor<A: ActorMethods>(name: &str) -> Result<ActorHandle<A>> {
    let rt = runtime::current()?;
    let here = || {
        let any = rt.actors.find(name).ok_or_else(|| {
            Error::new(
                ErrorKind::ActorNotFound,
                format!("no live actor is named `{name}`"),
            )
        })?;
        let guard = any.downcast::<HandleGuard<A>>().map_err(|_| {
            Error::new(
                ErrorKind::ActorNotFound,
                format!(
                    "the actor named `{name}` is not a `{}`",
                    std::any::type_name::<A>()
                ),
            )
        })?;
        Ok(ActorLink::Here(guard))
    };
    let link = ActorLink::named(&rt, name, here)?;
    Ok(ActorHandle::from_raw(RawHandle { link }))
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
