//! The scheduler of one node: resource accounting, the queue of work waiting for resources,
//! the elastic pool of worker threads for sync tasks and the async executor for async tasks.
//!
//! Resources are counted with atomics in fixed point (1/10,000 of a unit, as Ray does). A task
//! takes its resources before it is handed to a thread and gives them back when it ends; a task
//! blocked in `get`/`wait` gives its CPU back meanwhile, so nested tasks never deadlock. The pool
//! grows when every thread is busy or blocked and shrinks when threads idle.

use std::cell::Cell;
use std::collections::{BTreeMap, HashMap, VecDeque};
use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use crossbeam_channel::{Receiver, RecvTimeoutError, Sender};
use futures::future::BoxFuture;
use futures::task::AtomicWaker;
use parking_lot::Mutex;

use crate::backend::{self, Blocked};
use crate::error::{Error, ErrorKind, Result};
use crate::object::Latch;

/// Fixed-point scale of resource amounts.
const UNIT: f64 = 10_000.0;
/// How long a worker thread idles before it exits.
const IDLE_TIMEOUT: Duration = Duration::from_secs(10);

const CPU: usize = 0;
const GPU: usize = 1;

fn shutdown_error() -> Error {
    Error::new(
        ErrorKind::Shutdown,
        "the raykit runtime was shut down before this task ran",
    )
}

fn to_units(x: f64) -> u64 {
    (x * UNIT).round() as u64
}

/// What a piece of work needs while it runs.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash)]
pub(crate) struct Demand {
    cpu: u64,
    gpu: u64,
    custom: Box<[(usize, u64)]>,
}

impl Demand {
    fn cpu_only(cpu: u64) -> Self {
        Demand {
            cpu,
            ..Demand::default()
        }
    }

    /// Whether the demand asks for nothing (such work never waits for resources).
    pub(crate) fn is_empty(&self) -> bool {
        self.cpu == 0 && self.gpu == 0 && self.custom.is_empty()
    }

    fn parts(&self) -> impl Iterator<Item = (usize, u64)> + '_ {
        [(CPU, self.cpu), (GPU, self.gpu)]
            .into_iter()
            .chain(self.custom.iter().copied())
            .filter(|&(_, amount)| amount > 0)
    }
}

/// Names the work a resource request is for (`task `f``, `actor `A``); formatted only when
/// the request fails, so the hot path allocates nothing.
#[derive(Debug, Clone, Copy)]
pub(crate) struct What<'a>(pub(crate) &'static str, pub(crate) &'a str);

impl fmt::Display for What<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} `{}`", self.0, self.1)
    }
}

/// What options ask for: CPUs, GPUs and custom resources over the defaults written in code
/// (`#[remote(..)]`, `#[actor(..)]`). Shared by task and actor options.
#[derive(Debug, Clone, Default, PartialEq)]
pub(crate) struct ResourceRequest {
    pub(crate) num_cpus: Option<f64>,
    pub(crate) num_gpus: Option<f64>,
    /// Custom amounts; each replaces the default amount of that name.
    pub(crate) custom: Vec<(String, f64)>,
}

impl ResourceRequest {
    pub(crate) fn set_custom(&mut self, name: String, amount: f64) {
        self.custom.retain(|(n, _)| *n != name);
        self.custom.push((name, amount));
    }

    /// Every non-zero amount by name (`CPU`, `GPU`, custom names): these overrides over the
    /// defaults `cpus`, `gpus` and `custom`.
    pub(crate) fn resolve(
        request: Option<&ResourceRequest>,
        cpus: f64,
        gpus: f64,
        custom: &[(&str, f64)],
    ) -> BTreeMap<String, f64> {
        let mut out = BTreeMap::new();
        out.insert(
            "CPU".to_owned(),
            request.and_then(|r| r.num_cpus).unwrap_or(cpus),
        );
        out.insert(
            "GPU".to_owned(),
            request.and_then(|r| r.num_gpus).unwrap_or(gpus),
        );
        for (name, amount) in custom {
            out.insert((*name).to_owned(), *amount);
        }
        for (name, amount) in request.map_or(&[][..], |r| &r.custom[..]) {
            out.insert(name.clone(), *amount);
        }
        out.retain(|_, a| *a != 0.0);
        out
    }
}

/// The resources a node declares and how much of each is free.
pub(crate) struct Resources {
    names: Vec<String>,
    total: Vec<u64>,
    available: Vec<AtomicU64>,
}

impl Resources {
    pub(crate) fn new(cpus: f64, gpus: f64, custom: &BTreeMap<String, f64>) -> Result<Self> {
        let mut names = vec!["CPU".to_owned(), "GPU".to_owned()];
        let mut total = vec![to_units(cpus), to_units(gpus)];
        for (name, &amount) in custom {
            if name == "CPU" || name == "GPU" {
                return Err(Error::new(
                    ErrorKind::Config,
                    format!("`{name}` is not a custom resource: use num_cpus / num_gpus"),
                ));
            }
            names.push(name.clone());
            total.push(to_units(amount));
        }
        for (name, amount) in [("CPU", cpus), ("GPU", gpus)]
            .into_iter()
            .chain(custom.iter().map(|(n, a)| (n.as_str(), *a)))
        {
            if !amount.is_finite() || amount < 0.0 {
                return Err(Error::new(
                    ErrorKind::Config,
                    format!("resource `{name}` must be a finite amount >= 0, got {amount}"),
                ));
            }
        }
        let available = total.iter().map(|&t| AtomicU64::new(t)).collect();
        Ok(Resources {
            names,
            total,
            available,
        })
    }

    /// Turns amounts by name (see [`ResourceRequest::resolve`]) into a demand, failing when no
    /// node could ever satisfy it.
    pub(crate) fn demand_for(
        &self,
        what: &What<'_>,
        amounts: &BTreeMap<String, f64>,
    ) -> Result<Demand> {
        let get = |name: &str| amounts.get(name).copied().unwrap_or(0.0);
        let custom = amounts
            .iter()
            .filter(|(n, _)| *n != "CPU" && *n != "GPU")
            .map(|(n, a)| (n.as_str(), *a));
        self.demand(what, get("CPU"), get("GPU"), custom)
    }

    /// Turns a request into a demand, failing when no node could ever satisfy it.
    pub(crate) fn demand<'a>(
        &self,
        what: &What<'_>,
        cpus: f64,
        gpus: f64,
        custom: impl IntoIterator<Item = (&'a str, f64)>,
    ) -> Result<Demand> {
        let mut parts = Vec::new();
        let check = |name: &str, amount: f64| -> Result<Option<(usize, u64)>> {
            if !amount.is_finite() || amount < 0.0 {
                return Err(Error::new(
                    ErrorKind::ResourceUnavailable,
                    format!("{what} asks for {amount} {name}: amounts must be finite and >= 0"),
                ));
            }
            if amount == 0.0 {
                return Ok(None);
            }
            let Some(index) = self.names.iter().position(|n| n == name) else {
                return Err(Error::new(
                    ErrorKind::ResourceUnavailable,
                    format!(
                        "{what} needs {amount} of resource `{name}`, which no node declares \
                         (declared: {})",
                        self.names.join(", ")
                    ),
                ));
            };
            let units = to_units(amount);
            if units > self.total[index] {
                return Err(Error::new(
                    ErrorKind::ResourceUnavailable,
                    format!(
                        "{what} needs {amount} {name}, but no node has more than {} {name}",
                        self.total[index] as f64 / UNIT
                    ),
                ));
            }
            Ok(Some((index, units)))
        };
        let cpu = check("CPU", cpus)?.map_or(0, |p| p.1);
        let gpu = check("GPU", gpus)?.map_or(0, |p| p.1);
        for (name, amount) in custom {
            if let Some(part) = check(name, amount)? {
                parts.push(part);
            }
        }
        Ok(Demand {
            cpu,
            gpu,
            custom: parts.into_boxed_slice(),
        })
    }

    fn try_acquire(&self, demand: &Demand) -> bool {
        for (taken, (index, amount)) in demand.parts().enumerate() {
            let ok = self.available[index]
                .fetch_update(Ordering::AcqRel, Ordering::Acquire, |a| {
                    a.checked_sub(amount)
                })
                .is_ok();
            if !ok {
                for (i, a) in demand.parts().take(taken) {
                    self.available[i].fetch_add(a, Ordering::AcqRel);
                }
                return false;
            }
        }
        true
    }

    fn release(&self, demand: &Demand) {
        for (index, amount) in demand.parts() {
            self.available[index].fetch_add(amount, Ordering::AcqRel);
        }
    }

    fn view(&self, amounts: impl Fn(usize) -> u64) -> BTreeMap<String, f64> {
        self.names
            .iter()
            .enumerate()
            .filter(|&(i, _)| self.total[i] > 0)
            .map(|(i, name)| (name.clone(), amounts(i) as f64 / UNIT))
            .collect()
    }

    pub(crate) fn total_view(&self) -> BTreeMap<String, f64> {
        self.view(|i| self.total[i])
    }

    pub(crate) fn available_view(&self) -> BTreeMap<String, f64> {
        self.view(|i| self.available[i].load(Ordering::Acquire))
    }
}

/// The body of a task: a sync task runs inside it and returns `None`; an async task returns its
/// future. Dropping a job without running it fails its outputs.
pub(crate) type Body = Box<dyn FnOnce() -> Option<BoxFuture<'static, ()>> + Send>;

/// A task whose arguments are ready, waiting for its resources.
pub(crate) struct Job {
    pub(crate) demand: Demand,
    pub(crate) is_async: bool,
    /// The resources stay taken when the body returns (an actor holds them for its life and
    /// gives them back with [`Scheduler::release`]).
    pub(crate) keep_resources: bool,
    pub(crate) body: Body,
}

/// Work parked until resources free up.
enum Grant {
    /// A task to run.
    Run(Job),
    /// A thread that gave its CPU back while blocked, asking for it again.
    Resume(Demand, Arc<Latch>),
    /// An async task that gave its CPU back while awaiting, asking for it again.
    Wake(Demand, Arc<AsyncGrant>),
}

impl Grant {
    fn demand(&self) -> &Demand {
        match self {
            Grant::Run(job) => &job.demand,
            Grant::Resume(d, _) | Grant::Wake(d, _) => d,
        }
    }
}

struct AsyncGrant {
    granted: AtomicBool,
    waker: AtomicWaker,
}

/// Work waiting for resources, in order, with how many entries of each distinct demand it
/// holds (so a grant pass knows when every kind of waiting demand has been tried).
#[derive(Default)]
struct WaitQueue {
    queue: VecDeque<Grant>,
    shapes: HashMap<Demand, usize>,
}

impl WaitQueue {
    /// Counts out one entry of `demand` that left the queue.
    fn forget(&mut self, demand: &Demand) {
        if let Some(n) = self.shapes.get_mut(demand) {
            *n -= 1;
            if *n == 0 {
                self.shapes.remove(demand);
            }
        }
    }
}

/// The scheduler of this node.
pub(crate) struct Scheduler {
    pub(crate) resources: Resources,
    waiting: Mutex<WaitQueue>,
    waiting_len: AtomicUsize,
    pool: Pool,
    async_handle: tokio::runtime::Handle,
    async_runtime: Mutex<Option<tokio::runtime::Runtime>>,
    shut_down: AtomicBool,
}

impl Scheduler {
    pub(crate) fn new(resources: Resources) -> Result<Arc<Self>> {
        let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(threads)
            .thread_name("raykit-async")
            .enable_all()
            .build()
            .map_err(|e| {
                Error::new(
                    ErrorKind::Config,
                    format!("cannot start the async executor: {e}"),
                )
            })?;
        let (tx, rx) = crossbeam_channel::unbounded();
        Ok(Arc::new(Scheduler {
            resources,
            waiting: Mutex::new(WaitQueue::default()),
            waiting_len: AtomicUsize::new(0),
            pool: Pool {
                tx,
                rx,
                idle: AtomicUsize::new(0),
                spawned: AtomicUsize::new(0),
            },
            async_handle: rt.handle().clone(),
            async_runtime: Mutex::new(Some(rt)),
            shut_down: AtomicBool::new(false),
        }))
    }

    /// Runs `job` as soon as its resources are free, in submission order among waiting work.
    pub(crate) fn submit(self: &Arc<Self>, job: Job) {
        if self.shut_down.load(Ordering::Acquire) {
            crate::task::discard_with(shutdown_error(), || drop(job));
            return;
        }
        if job.demand.is_empty()
            || (self.waiting_len.load(Ordering::SeqCst) == 0
                && self.resources.try_acquire(&job.demand))
        {
            self.dispatch(job);
        } else {
            self.park(Grant::Run(job), false);
        }
    }

    fn dispatch(self: &Arc<Self>, job: Job) {
        if job.is_async {
            let demand = if job.keep_resources {
                Demand::default()
            } else {
                job.demand
            };
            let future = TaskFuture {
                state: AsyncState::Start(Some(job.body)),
                ctx: TaskCtx::new(self.clone(), demand.cpu, true),
                demand,
                regrant: None,
            };
            self.async_handle.spawn(future);
        } else {
            self.pool.execute(self, job);
        }
    }

    fn park(self: &Arc<Self>, grant: Grant, front: bool) {
        let granted = {
            let mut waiting = self.waiting.lock();
            *waiting.shapes.entry(grant.demand().clone()).or_insert(0) += 1;
            if front {
                waiting.queue.push_front(grant);
            } else {
                waiting.queue.push_back(grant);
            }
            self.waiting_len
                .store(waiting.queue.len(), Ordering::SeqCst);
            self.take_grantable(&mut waiting)
        };
        self.fire(granted);
    }

    /// Gives resources back and hands them to waiting work.
    pub(crate) fn release(self: &Arc<Self>, demand: &Demand) {
        self.resources.release(demand);
        if self.waiting_len.load(Ordering::SeqCst) > 0 {
            let granted = self.take_grantable(&mut self.waiting.lock());
            self.fire(granted);
        }
    }

    /// [`release`](Self::release) from a thread that can run one more sync task itself: the
    /// first sync task granted comes back instead of going to another thread.
    fn release_keeping_one(self: &Arc<Self>, demand: &Demand) -> Option<Job> {
        self.resources.release(demand);
        if self.waiting_len.load(Ordering::SeqCst) == 0 {
            return None;
        }
        let mut granted = self.take_grantable(&mut self.waiting.lock());
        let mine = granted
            .iter()
            .position(|g| matches!(g, Grant::Run(job) if !job.is_async))
            .map(|i| granted.remove(i));
        self.fire(granted);
        match mine {
            Some(Grant::Run(job)) => Some(job),
            _ => None,
        }
    }

    /// Takes the resources of every waiting entry they now suffice for, in queue order.
    ///
    /// The pass looks past entries that do not fit, however many there are (a task that can
    /// run must not wait behind a long line that cannot: the line may be waiting for it), but
    /// tries each distinct demand once: resources only shrink during the pass, so a demand
    /// that failed fails again, and the pass ends as soon as every demand still waiting has
    /// failed (usually at the first entry, when all of them want the same thing).
    fn take_grantable(&self, waiting: &mut WaitQueue) -> Vec<Grant> {
        let mut granted = Vec::new();
        let mut failed: Vec<Demand> = Vec::new();
        let mut i = 0;
        while i < waiting.queue.len() && failed.len() < waiting.shapes.len() {
            let demand = waiting.queue[i].demand();
            if failed.contains(demand) {
                i += 1;
            } else if self.resources.try_acquire(demand) {
                if let Some(g) = waiting.queue.remove(i) {
                    waiting.forget(g.demand());
                    granted.push(g);
                }
            } else {
                failed.push(demand.clone());
                i += 1;
            }
        }
        self.waiting_len
            .store(waiting.queue.len(), Ordering::SeqCst);
        granted
    }

    fn fire(self: &Arc<Self>, granted: Vec<Grant>) {
        for grant in granted {
            match grant {
                Grant::Run(job) => self.dispatch(job),
                Grant::Resume(_, latch) => latch.count_down(),
                Grant::Wake(_, g) => {
                    g.granted.store(true, Ordering::Release);
                    g.waker.wake();
                }
            }
        }
    }

    /// Takes `cpu` back for a thread that gave it up while blocked; waits ahead of new work.
    fn reacquire_blocking(self: &Arc<Self>, cpu: u64) {
        let demand = Demand::cpu_only(cpu);
        if self.waiting_len.load(Ordering::SeqCst) == 0 && self.resources.try_acquire(&demand) {
            return;
        }
        let latch = Latch::new(1);
        self.park(Grant::Resume(demand, latch.clone()), true);
        latch.wait(None);
    }

    /// Stops taking work: waiting tasks fail, idle threads exit, async tasks are dropped.
    pub(crate) fn shutdown(&self) {
        if self.shut_down.swap(true, Ordering::AcqRel) {
            return;
        }
        let waiting: Vec<Grant> = {
            let mut waiting = self.waiting.lock();
            waiting.shapes.clear();
            waiting.queue.drain(..).collect()
        };
        self.waiting_len.store(0, Ordering::SeqCst);
        for grant in waiting {
            match grant {
                Grant::Run(job) => crate::task::discard_with(shutdown_error(), || drop(job)),
                Grant::Resume(_, latch) => latch.count_down(),
                Grant::Wake(_, g) => g.waker.wake(),
            }
        }
        let idle = self.pool.idle.swap(0, Ordering::AcqRel);
        for _ in 0..idle {
            let _ = self.pool.tx.send(None);
        }
        if let Some(rt) = self.async_runtime.lock().take() {
            rt.shutdown_background();
        }
    }

    pub(crate) fn threads_spawned(&self) -> usize {
        self.pool.spawned.load(Ordering::Relaxed)
    }
}

impl Drop for Scheduler {
    fn drop(&mut self) {
        if let Some(rt) = self.async_runtime.get_mut().take() {
            rt.shutdown_background();
        }
    }
}

/// Threads for sync tasks. A task is handed to an idle thread when one is free, else a new
/// thread starts for it; the number of threads follows the number of running and blocked tasks.
struct Pool {
    tx: Sender<Option<Job>>,
    rx: Receiver<Option<Job>>,
    idle: AtomicUsize,
    spawned: AtomicUsize,
}

impl Pool {
    fn execute(&self, sched: &Arc<Scheduler>, job: Job) {
        let claimed = self
            .idle
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| n.checked_sub(1))
            .is_ok();
        if claimed {
            if let Err(e) = self.tx.send(Some(job)) {
                drop(e); // cannot happen: the pool holds the receiver
            }
            return;
        }
        let n = self.spawned.fetch_add(1, Ordering::Relaxed);
        let sched2 = sched.clone();
        let demand = job.demand.clone();
        let keep = job.keep_resources;
        // When the thread cannot start, `spawn` drops the job here: its outputs fail with this
        // error, and the resources it took go back, so nothing waits for it forever.
        let reason = Error::new(
            ErrorKind::System,
            "no thread could be started to run the task (too many tasks blocked at once?)",
        );
        let spawn = crate::task::discard_with(reason, || {
            std::thread::Builder::new()
                .name(format!("raykit-worker-{n}"))
                .spawn(move || worker_loop(sched2, job))
        });
        if let Err(e) = spawn {
            tracing::error!("cannot start a worker thread: {e}");
            if !keep {
                sched.release(&demand);
            }
        }
    }
}

fn worker_loop(sched: Arc<Scheduler>, first: Job) {
    let mut counted = run_job(&sched, first);
    let pool = &sched.pool;
    'outer: loop {
        if sched.shut_down.load(Ordering::Acquire) {
            break;
        }
        if !counted {
            pool.idle.fetch_add(1, Ordering::AcqRel);
        }
        loop {
            match pool.rx.recv_timeout(IDLE_TIMEOUT) {
                Ok(Some(job)) => {
                    counted = run_job(&sched, job);
                    continue 'outer;
                }
                Ok(None) | Err(RecvTimeoutError::Disconnected) => break 'outer,
                Err(RecvTimeoutError::Timeout) => {
                    let left = pool
                        .idle
                        .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| n.checked_sub(1))
                        .is_ok();
                    if left {
                        break 'outer;
                    }
                    // A submitter claimed this thread: its job is on the way.
                }
            }
        }
    }
}

/// Runs `job` on this thread, then, while what its end frees goes to a waiting sync task, that
/// task too: the CPU stays on the thread that freed it, instead of the next task being handed
/// to another thread (a channel send and a wake-up, or a new thread) while this one goes idle.
///
/// Returns whether the thread already counts among the idle ones (or a job was handed to it
/// meanwhile): it then waits for work without counting itself again.
fn run_job(sched: &Arc<Scheduler>, job: Job) -> bool {
    let mut job = job;
    loop {
        match run_one(sched, job) {
            After::Run(next) => job = next,
            After::Idle => return true,
            After::Done => return false,
        }
    }
}

/// What a pool thread does after a job.
enum After {
    /// Runs the waiting task its release granted.
    Run(Job),
    /// Waits for work, already counted idle (or claimed by a submitter, whose job is on its
    /// way).
    Idle,
    /// Waits for work, not counted idle yet.
    Done,
}

/// Runs one job, then gives its resources back. A thread that gives a CPU back counts itself
/// idle first: a submitter that takes that CPU then finds this thread instead of starting a
/// new one (which on a small machine grew the pool to dozens of threads spinning for work).
fn run_one(sched: &Arc<Scheduler>, job: Job) -> After {
    let Job {
        demand,
        body,
        keep_resources,
        ..
    } = job;
    if sched.shut_down.load(Ordering::Acquire) {
        crate::task::discard_with(shutdown_error(), || drop(body));
        sched.release(&demand);
        return After::Done;
    }
    let mut demand = demand;
    {
        let ctx = TaskCtx::new(sched.clone(), demand.cpu, false);
        let _enter = ctx.enter();
        let _ = body();
        // A sync task that awaited a ref (`block_on(r)`, see `release_for_await`) can end with
        // its CPU still lent out, when its future finished without polling the ref again: that
        // CPU is not the task's to give back (or to keep, for an actor: take it back first).
        if ctx.released.get() {
            if keep_resources {
                sched.reacquire_blocking(ctx.cpu);
            } else {
                demand.cpu = 0;
            }
        }
    }
    if keep_resources {
        return After::Done;
    }
    let pool = &sched.pool;
    pool.idle.fetch_add(1, Ordering::AcqRel);
    match sched.release_keeping_one(&demand) {
        None => After::Idle,
        Some(next) => {
            let unclaimed = pool
                .idle
                .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| n.checked_sub(1))
                .is_ok();
            if unclaimed {
                return After::Run(next);
            }
            // A submitter claimed this thread meanwhile: its job, which holds its resources
            // already, is on its way here and must not wait behind `next` (which may wait
            // for it). `next` goes to another thread.
            pool.execute(sched, next);
            After::Idle
        }
    }
}

/// What the thread running a task knows about it, so a blocking call can lend its CPU.
pub(crate) struct TaskCtx {
    sched: Arc<Scheduler>,
    cpu: u64,
    released: Cell<bool>,
    awaiting_object: Cell<bool>,
    /// Whether this is an async task (a [`TaskFuture`]) rather than a sync task owning a thread.
    is_async: bool,
}

thread_local! {
    static CURRENT: Cell<*const TaskCtx> = const { Cell::new(std::ptr::null()) };
}

struct Enter(*const TaskCtx);

impl Drop for Enter {
    fn drop(&mut self) {
        CURRENT.with(|c| c.set(self.0));
    }
}

impl TaskCtx {
    fn new(sched: Arc<Scheduler>, cpu: u64, is_async: bool) -> Self {
        TaskCtx {
            sched,
            cpu,
            released: Cell::new(false),
            awaiting_object: Cell::new(false),
            is_async,
        }
    }

    fn enter(&self) -> Enter {
        Enter(CURRENT.with(|c| c.replace(self as *const TaskCtx)))
    }

    fn with_current<R>(f: impl FnOnce(Option<&TaskCtx>) -> R) -> R {
        let ptr = CURRENT.with(|c| c.get());
        // SAFETY: the pointer is set only by `enter`, whose guard resets it before the context
        // it points at goes away, and only this thread reads it.
        let ctx = unsafe { ptr.as_ref() };
        f(ctx)
    }
}

/// Who is submitting work from this thread now: the running task (sync, or async while it is
/// polled) or, outside tasks, the thread. An actor runs each caller's calls in the order it
/// submitted them. A finished task's number may come back for a later task; that one's calls
/// are submitted later anyway, so nothing is reordered.
pub(crate) fn current_caller() -> u64 {
    thread_local! {
        static THREAD: u64 = {
            static NEXT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
            // Above every address, so never the number of a task.
            (1 << 63) | NEXT.fetch_add(1, Ordering::Relaxed)
        };
    }
    TaskCtx::with_current(|ctx| ctx.map(|c| c as *const TaskCtx as u64))
        .unwrap_or_else(|| THREAD.with(|t| *t))
}

/// Runs a blocking wait. Inside a task, the task's CPU is lent out for the wait (so tasks it
/// waits for can run) and taken back after; on an async executor thread the wait runs in
/// `block_in_place` so other futures keep going.
pub(crate) fn blocking<R>(wait: impl FnOnce() -> R) -> R {
    let lent = TaskCtx::with_current(|ctx| match ctx {
        Some(ctx) if ctx.cpu > 0 && !ctx.released.get() => {
            ctx.released.set(true);
            ctx.sched.release(&Demand::cpu_only(ctx.cpu));
            Some((ctx.sched.clone(), ctx.cpu))
        }
        _ => None,
    });
    // In a worker process of another node, that node lends the task's CPU meanwhile.
    let reported = backend::task_blocked();
    let on_async_worker = tokio::runtime::Handle::try_current()
        .is_ok_and(|h| h.runtime_flavor() == tokio::runtime::RuntimeFlavor::MultiThread);
    // Taking the CPU back may wait as well (until another task gives one up), so it belongs in
    // `block_in_place` too: an async executor thread stuck there outside it could be the very
    // thread the task now holding the CPU needs to run on (a deadlock with few executor threads).
    let wait_then_reclaim = || {
        let result = wait();
        backend::task_unblocked(reported);
        if let Some((sched, cpu)) = &lent {
            sched.reacquire_blocking(*cpu);
        }
        result
    };
    let result = if on_async_worker {
        tokio::task::block_in_place(wait_then_reclaim)
    } else {
        wait_then_reclaim()
    };
    if lent.is_some() {
        TaskCtx::with_current(|ctx| {
            if let Some(ctx) = ctx {
                ctx.released.set(false);
            }
        });
    }
    result
}

/// Called by an object future that is about to return `Pending`: the async task around it
/// lends its CPU while it is suspended.
///
/// A sync task that awaits a ref (`futures::executor::block_on(r)` inside the task) parks its
/// thread just as `get` does, so it lends its CPU here, at once: keeping it would deadlock
/// nested tasks on a node with few CPUs. [`reclaim_after_await`] takes it back when a ref it
/// awaits is ready.
pub(crate) fn release_for_await() {
    TaskCtx::with_current(|ctx| match ctx {
        Some(ctx) if ctx.is_async => ctx.awaiting_object.set(true),
        Some(ctx) if ctx.cpu > 0 && !ctx.released.get() => {
            ctx.released.set(true);
            ctx.awaiting_object.set(true);
            ctx.sched.release(&Demand::cpu_only(ctx.cpu));
        }
        Some(_) => {}
        // A worker process's own task, outside the pool: an async one lends its CPU from its
        // `LendWhileAwaiting`; a sync one parks its thread here, so it lends it at once.
        None if POLLING_ASYNC_TASK.with(Cell::get) => {
            AWAITING_OUTSIDE_POOL.store(true, Ordering::Relaxed)
        }
        None => LENT_FOR_AWAIT.with(|lent| {
            let mut lent = lent.borrow_mut();
            if !lent.is_reported() {
                *lent = backend::task_blocked();
            }
        }),
    });
}

/// Forgets that this thread's task lent its CPU for an await (the task ended: the node frees
/// all it held).
pub(crate) fn forget_lent_for_await() {
    LENT_FOR_AWAIT.with(|lent| *lent.borrow_mut() = Blocked::NONE);
}

thread_local! {
    /// This thread polls the future of an async task outside the pool ([`LendWhileAwaiting`]).
    static POLLING_ASYNC_TASK: Cell<bool> = const { Cell::new(false) };
    /// The worker's sync task that lent its CPU in [`release_for_await`] while it awaits.
    static LENT_FOR_AWAIT: std::cell::RefCell<Blocked> = const { std::cell::RefCell::new(Blocked::NONE) };
}

/// An object future outside this process's pool (an async task a worker process runs by name)
/// returned `Pending` since [`LendWhileAwaiting`] last looked.
static AWAITING_OUTSIDE_POOL: AtomicBool = AtomicBool::new(false);

/// Runs an async task's future outside the pool (in a worker process, which runs one task at a
/// time) so that, like an async task of the pool, it lends its CPU while it awaits objects: the
/// tasks it awaits may need that CPU.
pub(crate) struct LendWhileAwaiting<F> {
    inner: F,
    blocked: Blocked,
}

impl<F> LendWhileAwaiting<F> {
    pub(crate) fn new(inner: F) -> Self {
        LendWhileAwaiting {
            inner,
            blocked: Blocked::NONE,
        }
    }
}

impl<F: Future + Unpin> Future for LendWhileAwaiting<F> {
    type Output = F::Output;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<F::Output> {
        // Woken: take the CPU back to run, as a task of the pool does.
        backend::task_unblocked(std::mem::replace(&mut self.blocked, Blocked::NONE));
        AWAITING_OUTSIDE_POOL.store(false, Ordering::Relaxed);
        POLLING_ASYNC_TASK.with(|p| p.set(true));
        let out = Pin::new(&mut self.inner).poll(cx);
        POLLING_ASYNC_TASK.with(|p| p.set(false));
        if out.is_pending() && AWAITING_OUTSIDE_POOL.swap(false, Ordering::Relaxed) {
            self.blocked = backend::task_blocked();
        }
        out
    }
}

/// Called by an object future that is about to return `Ready`: a sync task that lent its CPU
/// in [`release_for_await`] takes it back (waiting for it, ahead of new work) before it goes on.
pub(crate) fn reclaim_after_await() {
    let reported =
        LENT_FOR_AWAIT.with(|lent| std::mem::replace(&mut *lent.borrow_mut(), Blocked::NONE));
    backend::task_unblocked(reported);
    let lent = TaskCtx::with_current(|ctx| match ctx {
        Some(ctx) if !ctx.is_async && ctx.awaiting_object.get() => {
            ctx.awaiting_object.set(false);
            ctx.released.get().then(|| (ctx.sched.clone(), ctx.cpu))
        }
        _ => None,
    });
    if let Some((sched, cpu)) = lent {
        sched.reacquire_blocking(cpu);
        TaskCtx::with_current(|ctx| {
            if let Some(ctx) = ctx {
                ctx.released.set(false);
            }
        });
    }
}

enum AsyncState {
    Start(Option<Body>),
    Running(BoxFuture<'static, ()>),
}

/// An async task on the executor: holds its resources while it runs and lends its CPU while it
/// awaits objects.
struct TaskFuture {
    state: AsyncState,
    ctx: TaskCtx,
    demand: Demand,
    regrant: Option<Arc<AsyncGrant>>,
}

impl Future for TaskFuture {
    type Output = ();

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        let this = self.get_mut();
        if this.ctx.released.get() {
            match &this.regrant {
                None => {
                    let demand = Demand::cpu_only(this.ctx.cpu);
                    if this.ctx.sched.waiting_len.load(Ordering::SeqCst) == 0
                        && this.ctx.sched.resources.try_acquire(&demand)
                    {
                        this.ctx.released.set(false);
                    } else {
                        let g = Arc::new(AsyncGrant {
                            granted: AtomicBool::new(false),
                            waker: AtomicWaker::new(),
                        });
                        g.waker.register(cx.waker());
                        this.regrant = Some(g.clone());
                        this.ctx.sched.park(Grant::Wake(demand, g), true);
                        return Poll::Pending;
                    }
                }
                Some(g) => {
                    g.waker.register(cx.waker());
                    if !g.granted.load(Ordering::Acquire) {
                        return Poll::Pending;
                    }
                    this.regrant = None;
                    this.ctx.released.set(false);
                }
            }
        }
        let poll = {
            let _enter = this.ctx.enter();
            this.ctx.awaiting_object.set(false);
            if let AsyncState::Start(body) = &mut this.state {
                match body.take().and_then(|b| b()) {
                    Some(fut) => this.state = AsyncState::Running(fut),
                    None => return this.finish(),
                }
            }
            match &mut this.state {
                AsyncState::Running(fut) => fut.as_mut().poll(cx),
                AsyncState::Start(_) => Poll::Ready(()),
            }
        };
        match poll {
            Poll::Ready(()) => this.finish(),
            Poll::Pending => {
                if this.ctx.awaiting_object.get() && this.ctx.cpu > 0 {
                    this.ctx.released.set(true);
                    this.ctx.sched.release(&Demand::cpu_only(this.ctx.cpu));
                }
                Poll::Pending
            }
        }
    }
}

impl TaskFuture {
    fn finish(&mut self) -> Poll<()> {
        let mut demand = std::mem::take(&mut self.demand);
        if self.ctx.released.get() {
            demand.cpu = 0;
        }
        self.ctx.sched.release(&demand);
        Poll::Ready(())
    }
}
