//! The embedded backend's scheduler, for one node: the queue of work waiting for resources,
//! the elastic pool of worker threads for sync tasks ([`pool`]), the async executor for async
//! tasks ([`future`]), resource accounting ([`resources`]) and CPU lending while a task blocks
//! ([`lending`]).
//!
//! A task takes its resources before it is handed to a thread and gives them back when it
//! ends; a task blocked in `get`/`wait` gives its CPU back meanwhile, so nested tasks never
//! deadlock. The pool grows when every thread is busy or blocked and shrinks when threads idle.

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

mod future;
mod lending;
mod pool;
mod resources;

use future::{AsyncState, TaskFuture};
pub(crate) use lending::{
    blocking, current_caller, forget_lent_for_await, reclaim_after_await, release_for_await,
    LendWhileAwaiting, TaskCtx,
};
use pool::Pool;
use resources::shutdown_error;
pub(crate) use resources::{Demand, Resources, What};

/// The body of a task: a sync task runs inside it and returns `None`; an async task returns its
/// future. Dropping work without running it fails its outputs.
pub(crate) type Body = Box<dyn FnOnce() -> Option<BoxFuture<'static, ()>> + Send>;

/// Work (Ray's word in its raylet: a task or actor call whose arguments are ready), waiting
/// for its resources.
pub(crate) struct Work {
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
    Run(Work),
    /// A thread that gave its CPU back while blocked, asking for it again.
    Resume(Demand, Arc<Latch>),
    /// An async task that gave its CPU back while awaiting, asking for it again.
    Wake(Demand, Arc<AsyncGrant>),
}

impl Grant {
    fn demand(&self) -> &Demand {
        match self {
            Grant::Run(work) => &work.demand,
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

    /// Runs `work` as soon as its resources are free, in submission order among waiting work.
    pub(crate) fn submit(self: &Arc<Self>, work: Work) {
        if self.shut_down.load(Ordering::Acquire) {
            crate::task::discard_with(shutdown_error(), || drop(work));
            return;
        }
        if work.demand.is_empty()
            || (self.waiting_len.load(Ordering::SeqCst) == 0
                && self.resources.try_acquire(&work.demand))
        {
            self.dispatch(work);
        } else {
            self.park(Grant::Run(work), false);
        }
    }

    fn dispatch(self: &Arc<Self>, work: Work) {
        if work.is_async {
            let demand = if work.keep_resources {
                Demand::default()
            } else {
                work.demand
            };
            let future = TaskFuture {
                state: AsyncState::Start(Some(work.body)),
                ctx: TaskCtx::new(self.clone(), demand.cpu, true),
                demand,
                regrant: None,
            };
            self.async_handle.spawn(future);
        } else {
            self.pool.execute(self, work);
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
    fn release_keeping_one(self: &Arc<Self>, demand: &Demand) -> Option<Work> {
        self.resources.release(demand);
        if self.waiting_len.load(Ordering::SeqCst) == 0 {
            return None;
        }
        let mut granted = self.take_grantable(&mut self.waiting.lock());
        let mine = granted
            .iter()
            .position(|g| matches!(g, Grant::Run(work) if !work.is_async))
            .map(|i| granted.remove(i));
        self.fire(granted);
        match mine {
            Some(Grant::Run(work)) => Some(work),
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
                Grant::Run(work) => self.dispatch(work),
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
                Grant::Run(work) => crate::task::discard_with(shutdown_error(), || drop(work)),
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
