//! Tasks: the static spec the macro writes for each remote function, per-call options,
//! arguments that are values or refs, the refs a call returns, and submission.
//!
//! Submission never takes a global lock: it reads the runtime, checks the demand, and either
//! hands the task to the scheduler (every argument ready) or leaves one countdown on the slots of
//! the arguments still pending. The last argument to arrive submits the task.

use std::any::Any;
use std::future::Future;
use std::marker::PhantomData;
use std::panic::AssertUnwindSafe;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use futures::FutureExt;
use parking_lot::Mutex;

use crate::backend::{self, EncodedArg};
use crate::error::{Error, ErrorKind, Result};
use crate::local::{Body, Demand, What, Work};
use crate::object::{CloneFn, DecodeFn, Dependent, ObjectId, ObjectRef, Slot, Waiter};
use crate::resources::ResourceRequest;
use crate::runtime::{self, Runtime};

/// What the `#[remote]` macro knows about a remote function at compile time.
#[doc(hidden)]
#[derive(Debug)]
pub struct TaskSpec {
    /// Stable name: module path and function name.
    pub name: &'static str,
    /// Hash of the signature, to detect version skew between binaries.
    pub signature_hash: u64,
    /// CPUs per call (default 1).
    pub num_cpus: f64,
    /// GPUs per call (default 0).
    pub num_gpus: f64,
    /// Custom resources per call.
    pub resources: &'static [(&'static str, f64)],
    /// Retries after a worker or node failure (default 3).
    pub max_retries: u32,
    /// Whether the function is `async`.
    pub is_async: bool,
    /// The parameters' names, in order, for the errors of failed arguments.
    pub params: &'static [&'static str],
}

/// Per-call overrides of a remote function's options, for `f::options(..).remote(..)`.
///
/// ```
/// let opts = raykit::TaskOptions::new().num_cpus(2).num_gpus(0.5).resource("custom", 1).max_retries(0);
/// # let _ = opts;
/// ```
#[derive(Debug, Clone, Default, PartialEq)]
pub struct TaskOptions {
    request: ResourceRequest,
    max_retries: Option<u32>,
}

impl TaskOptions {
    /// No overrides: the options written on the function apply.
    pub fn new() -> Self {
        Self::default()
    }

    /// CPUs the call needs while it runs (fractions allowed).
    pub fn num_cpus(mut self, n: impl Into<f64>) -> Self {
        self.request.num_cpus = Some(n.into());
        self
    }

    /// GPUs the call needs while it runs.
    pub fn num_gpus(mut self, n: impl Into<f64>) -> Self {
        self.request.num_gpus = Some(n.into());
        self
    }

    /// An amount of the custom resource `name` the call needs (replaces the function's own
    /// amount of that resource).
    pub fn resource(mut self, name: impl Into<String>, amount: impl Into<f64>) -> Self {
        self.request.set_custom(name.into(), amount.into());
        self
    }

    /// How often the call is retried when its worker or node dies.
    pub fn max_retries(mut self, n: u32) -> Self {
        self.max_retries = Some(n);
        self
    }
}

impl TaskOptions {
    /// The resources one call needs: the function's options with these overrides, by name.
    pub(crate) fn resources_for(
        options: Option<&TaskOptions>,
        spec: &TaskSpec,
    ) -> std::collections::BTreeMap<String, f64> {
        ResourceRequest::resolve(
            options.map(|o| &o.request),
            spec.num_cpus,
            spec.num_gpus,
            spec.resources,
        )
    }

    /// The retries of one call.
    pub(crate) fn retries_for(options: Option<&TaskOptions>, spec: &TaskSpec) -> u32 {
        options
            .and_then(|o| o.max_retries)
            .unwrap_or(spec.max_retries)
    }
}

impl Runtime {
    pub(crate) fn task_demand(
        &self,
        spec: &TaskSpec,
        options: Option<&TaskOptions>,
    ) -> Result<Demand> {
        let what = What("task", spec.name);
        let resources = &self.sched.resources;
        if options.is_none() && spec.resources.is_empty() {
            // The common call: no overrides, no custom resources, nothing to look up.
            return resources.demand(&what, spec.num_cpus, spec.num_gpus, []);
        }
        resources.demand_for(&what, &TaskOptions::resources_for(options, spec))
    }
}

/// An argument of a remote call: a value, or a ref to the object that will hold it.
pub struct Arg<T>(ArgInner<T>);

enum ArgInner<T> {
    Value(T),
    Ref(ObjectRef<T>),
}

impl<T> std::fmt::Debug for Arg<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.0 {
            ArgInner::Value(_) => f.write_str("Arg::Value(..)"),
            ArgInner::Ref(r) => write!(f, "Arg::Ref({r:?})"),
        }
    }
}

impl<T: 'static> Arg<T> {
    /// The slot this argument waits for, if it is a ref.
    #[doc(hidden)]
    pub fn dependency(&self) -> Option<Arc<Slot>> {
        match &self.0 {
            ArgInner::Value(_) => None,
            ArgInner::Ref(r) => Some(r.slot().clone()),
        }
    }

    /// The argument as it travels to a cluster node: the encoded value, or the ref's id.
    #[doc(hidden)]
    pub fn to_wire(&self) -> Result<EncodedArg>
    where
        T: serde::Serialize + serde::de::DeserializeOwned,
    {
        match &self.0 {
            ArgInner::Value(v) => crate::codec::encode(v).map(EncodedArg::Value),
            ArgInner::Ref(r) => Ok(EncodedArg::Ref(r.id())),
        }
    }

    /// The value, moved out of its object when this call holds the last ref to it. An
    /// argument whose object failed gives an error naming `function` and `param`, caused by the
    /// object's error.
    #[doc(hidden)]
    pub fn resolve(self, function: &str, param: &str) -> Result<T> {
        match self.0 {
            ArgInner::Value(v) => Ok(v),
            ArgInner::Ref(r) => {
                let slot = r.into_slot();
                slot.block_until_ready();
                match slot.take::<T>() {
                    Some(Ok(v)) => Ok(v),
                    Some(Err(e)) => Err(Error::dependency_failed(
                        function,
                        &format!("`{param}`"),
                        &e,
                    )),
                    None => unreachable!("argument read before it was ready"),
                }
            }
        }
    }
}

/// Converts what a caller passes (a value `T`, an `ObjectRef<T>` or a `&ObjectRef<T>`) into
/// an argument of type `T` of a remote call.
#[diagnostic::on_unimplemented(
    message = "`{Self}` cannot be passed where a remote call expects `{T}`",
    label = "expected `{T}`, `ObjectRef<{T}>` or `&ObjectRef<{T}>`",
    note = "a remote argument is a value of the parameter's type, or a ref (owned or borrowed) to an object of exactly that type"
)]
pub trait IntoArg<T> {
    /// The argument.
    fn into_arg(self) -> Arg<T>;
}

impl<T> IntoArg<T> for T {
    fn into_arg(self) -> Arg<T> {
        Arg(ArgInner::Value(self))
    }
}

impl<T> IntoArg<T> for ObjectRef<T> {
    fn into_arg(self) -> Arg<T> {
        Arg(ArgInner::Ref(self))
    }
}

impl<T> IntoArg<T> for &ObjectRef<T> {
    fn into_arg(self) -> Arg<T> {
        Arg(ArgInner::Ref(self.clone()))
    }
}

/// Where a call's results go: one object, or one per element of a tuple (`num_returns`).
#[doc(hidden)]
pub trait Returns: Send + 'static {
    /// What the function returns.
    type Value: Send + 'static;
    /// Stores the result.
    fn fulfil(self, value: Self::Value);
    /// Stores the error in every output.
    fn fail(self, error: Error);
    /// The output slots, in order, for someone else to fill (a cluster).
    fn into_slots(self) -> Vec<Arc<Slot>>;
    /// The output slots while this still fills them: for whoever may have to fail them first
    /// (an actor killed while it runs the call).
    fn outputs(&self) -> CallOutputs;
}

/// The output slots of a call, kept aside to fail them early (one needs no allocation).
#[doc(hidden)]
#[derive(Debug, Default)]
pub enum CallOutputs {
    /// None (a call whose result goes elsewhere).
    #[default]
    None,
    /// One object.
    One(Arc<Slot>),
    /// Several (`num_returns`).
    Many(Vec<Arc<Slot>>),
}

impl CallOutputs {
    /// Fails every object that is not settled yet with `error`.
    pub(crate) fn fail(self, error: &Error) {
        match self {
            CallOutputs::None => {}
            CallOutputs::One(slot) => slot.fail(error.clone()),
            CallOutputs::Many(slots) => slots.into_iter().for_each(|s| s.fail(error.clone())),
        }
    }

    fn push(&mut self, more: CallOutputs) {
        let mut all = match std::mem::take(self) {
            CallOutputs::None => Vec::new(),
            CallOutputs::One(slot) => vec![slot],
            CallOutputs::Many(slots) => slots,
        };
        match more {
            CallOutputs::None => {}
            CallOutputs::One(slot) => all.push(slot),
            CallOutputs::Many(slots) => all.extend(slots),
        }
        *self = CallOutputs::Many(all);
    }
}

/// One output object of a call. Dropped unfilled (its task was discarded), it fails the object
/// so no reader waits forever.
#[doc(hidden)]
pub struct One<T> {
    slot: Option<Arc<Slot>>,
    clone: CloneFn,
    _type: PhantomData<fn() -> T>,
}

impl<T> std::fmt::Debug for One<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("One").field("slot", &self.slot).finish()
    }
}

impl<T: Send + 'static> One<T> {
    /// A pending object and the ref to it; `clone` copies the value for readers, `decode`
    /// decodes it when it arrives encoded from a cluster.
    pub fn new(clone: CloneFn, decode: Option<DecodeFn>) -> (Self, ObjectRef<T>) {
        let slot = Slot::pending_decodable(ObjectId::next(), decode);
        let r = ObjectRef::from_slot(slot.clone());
        (
            One {
                slot: Some(slot),
                clone,
                _type: PhantomData,
            },
            r,
        )
    }
}

impl<T: Send + 'static> Returns for One<T> {
    type Value = T;

    fn into_slots(mut self) -> Vec<Arc<Slot>> {
        self.slot.take().into_iter().collect()
    }

    fn outputs(&self) -> CallOutputs {
        match &self.slot {
            Some(slot) => CallOutputs::One(slot.clone()),
            None => CallOutputs::None,
        }
    }

    fn fulfil(mut self, value: T) {
        if let Some(slot) = self.slot.take() {
            slot.fulfil(Box::new(value) as Box<dyn Any + Send>, self.clone);
        }
    }

    fn fail(mut self, error: Error) {
        if let Some(slot) = self.slot.take() {
            slot.fail(error);
        }
    }
}

impl<T> Drop for One<T> {
    fn drop(&mut self) {
        if let Some(slot) = self.slot.take() {
            let error = DISCARD_REASON
                .with(|r| r.borrow().clone())
                .unwrap_or_else(|| {
                    Error::new(
                        ErrorKind::Shutdown,
                        format!(
                        "the task that was to produce object {} was dropped before it finished \
                         (the runtime shut down)",
                        slot.id()
                    ),
                    )
                });
            slot.fail(error);
        }
    }
}

thread_local! {
    /// Why work is being discarded on this thread: the error its unfilled outputs get.
    static DISCARD_REASON: std::cell::RefCell<Option<Error>> = const { std::cell::RefCell::new(None) };
}

/// Runs `discard` (which drops work that will never run) so that every output it drops fails
/// with `reason` instead of a generic error.
pub(crate) fn discard_with<R>(reason: Error, discard: impl FnOnce() -> R) -> R {
    let previous = DISCARD_REASON.with(|r| r.replace(Some(reason)));
    let result = discard();
    DISCARD_REASON.with(|r| *r.borrow_mut() = previous);
    result
}

macro_rules! tuple_returns {
    ($($name:ident $idx:tt),+) => {
        impl<$($name: Send + 'static),+> Returns for ($(One<$name>,)+) {
            type Value = ($($name,)+);

            fn fulfil(self, value: Self::Value) {
                $(self.$idx.fulfil(value.$idx);)+
            }

            fn fail(self, error: Error) {
                $(self.$idx.fail(error.clone());)+
            }

            fn into_slots(self) -> Vec<Arc<Slot>> {
                let mut slots = Vec::new();
                $(slots.extend(self.$idx.into_slots());)+
                slots
            }

            fn outputs(&self) -> CallOutputs {
                let mut all = CallOutputs::Many(Vec::new());
                $(all.push(self.$idx.outputs());)+
                all
            }
        }
    };
}

tuple_returns!(A 0, B 1);
tuple_returns!(A 0, B 1, C 2);
tuple_returns!(A 0, B 1, C 2, D 3);
tuple_returns!(A 0, B 1, C 2, D 3, E 4);
tuple_returns!(A 0, B 1, C 2, D 3, E 4, F 5);
tuple_returns!(A 0, B 1, C 2, D 3, E 4, F 5, G 6);
tuple_returns!(A 0, B 1, C 2, D 3, E 4, F 5, G 6, H 7);

/// Submits a call of a sync remote function with arguments `args`: `call` runs it on them;
/// where it runs in another process, `encode` encodes them for it.
#[doc(hidden)]
pub fn submit_sync<A, R, F>(
    spec: &'static TaskSpec,
    options: Option<TaskOptions>,
    deps: &[Option<Arc<Slot>>],
    args: A,
    encode: impl FnOnce(&A) -> Vec<Result<EncodedArg>>,
    returns: R,
    call: F,
) where
    A: Send + 'static,
    R: Returns,
    F: FnOnce(A) -> Result<R::Value> + Send + 'static,
{
    let rt = match runtime::current() {
        Ok(rt) => rt,
        Err(e) => return returns.fail(e),
    };
    let here = |args, options: Option<TaskOptions>, returns| {
        submit_sync_here(&rt, spec, options, deps, returns, move || call(args))
    };
    backend::submit_task(&rt, spec, options, args, encode, returns, here);
}

/// Runs a sync call on this process's scheduler.
fn submit_sync_here<R: Returns>(
    rt: &Runtime,
    spec: &'static TaskSpec,
    options: Option<TaskOptions>,
    deps: &[Option<Arc<Slot>>],
    returns: R,
    call: impl FnOnce() -> Result<R::Value> + Send + 'static,
) {
    let demand = match rt.task_demand(spec, options.as_ref()) {
        Ok(demand) => demand,
        Err(e) => return returns.fail(e),
    };
    let body: Body = Box::new(move || {
        match std::panic::catch_unwind(AssertUnwindSafe(call)) {
            Ok(Ok(value)) => returns.fulfil(value),
            Ok(Err(e)) => returns.fail(e),
            Err(panic) => returns.fail(Error::task_panicked(spec.name, &*panic)),
        }
        None
    });
    let work = Work {
        demand,
        is_async: false,
        keep_resources: false,
        body,
    };
    schedule(rt, work, deps);
}

/// Submits a call of an async remote function with arguments `args`: `call` runs it on them;
/// where it runs in another process, `encode` encodes them for it.
#[doc(hidden)]
pub fn submit_async<A, R, F, Fut>(
    spec: &'static TaskSpec,
    options: Option<TaskOptions>,
    deps: &[Option<Arc<Slot>>],
    args: A,
    encode: impl FnOnce(&A) -> Vec<Result<EncodedArg>>,
    returns: R,
    call: F,
) where
    A: Send + 'static,
    R: Returns,
    F: FnOnce(A) -> Fut + Send + 'static,
    Fut: Future<Output = Result<R::Value>> + Send + 'static,
{
    let rt = match runtime::current() {
        Ok(rt) => rt,
        Err(e) => return returns.fail(e),
    };
    let here = |args, options: Option<TaskOptions>, returns| {
        submit_async_here(&rt, spec, options, deps, returns, move || call(args))
    };
    backend::submit_task(&rt, spec, options, args, encode, returns, here);
}

/// Runs an async call on this process's executor.
fn submit_async_here<R: Returns, Fut>(
    rt: &Runtime,
    spec: &'static TaskSpec,
    options: Option<TaskOptions>,
    deps: &[Option<Arc<Slot>>],
    returns: R,
    call: impl FnOnce() -> Fut + Send + 'static,
) where
    Fut: Future<Output = Result<R::Value>> + Send + 'static,
{
    let demand = match rt.task_demand(spec, options.as_ref()) {
        Ok(demand) => demand,
        Err(e) => return returns.fail(e),
    };
    let body: Body = Box::new(move || {
        Some(Box::pin(async move {
            match AssertUnwindSafe(async move { call().await })
                .catch_unwind()
                .await
            {
                Ok(Ok(value)) => returns.fulfil(value),
                Ok(Err(e)) => returns.fail(e),
                Err(panic) => returns.fail(Error::task_panicked(spec.name, &*panic)),
            }
        }))
    });
    let work = Work {
        demand,
        is_async: true,
        keep_resources: false,
        body,
    };
    schedule(rt, work, deps);
}

/// Hands `work` to the scheduler once every dependency is ready.
pub(crate) fn schedule(rt: &Runtime, work: Work, deps: &[Option<Arc<Slot>>]) {
    if deps.iter().flatten().all(|s| s.is_ready()) {
        rt.sched.submit(work);
        return;
    }
    let count = deps.iter().flatten().count();
    let waiting = Arc::new(WaitingTask {
        // One extra count, dropped last, so the task cannot start while we still register.
        remaining: AtomicUsize::new(count + 1),
        work: Mutex::new(Some(work)),
        sched: rt.sched.clone(),
    });
    for slot in deps.iter().flatten() {
        if slot.add_waiter(Waiter::Dependent(waiting.clone())).is_err() {
            waiting.clone().dependency_ready();
        }
    }
    waiting.dependency_ready();
}

/// A task counting down its pending arguments.
struct WaitingTask {
    remaining: AtomicUsize,
    work: Mutex<Option<Work>>,
    sched: Arc<crate::local::Scheduler>,
}

impl Dependent for WaitingTask {
    fn dependency_ready(self: Arc<Self>) {
        if self.remaining.fetch_sub(1, Ordering::AcqRel) == 1 {
            if let Some(work) = self.work.lock().take() {
                self.sched.submit(work);
            }
        }
    }
}
