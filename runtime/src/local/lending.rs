//! What a running task knows about itself, and how it lends its CPU while it blocks or awaits.

use super::*;

/// What the thread running a task knows about it, so a blocking call can lend its CPU.
pub(crate) struct TaskCtx {
    pub(super) sched: Arc<Scheduler>,
    pub(super) cpu: u64,
    pub(super) released: Cell<bool>,
    pub(super) awaiting_object: Cell<bool>,
    /// Whether this is an async task (a [`TaskFuture`]) rather than a sync task owning a thread.
    pub(super) is_async: bool,
}

thread_local! {
    static CURRENT: Cell<*const TaskCtx> = const { Cell::new(std::ptr::null()) };
}

pub(super) struct Enter(*const TaskCtx);

impl Drop for Enter {
    fn drop(&mut self) {
        CURRENT.with(|c| c.set(self.0));
    }
}

impl TaskCtx {
    pub(super) fn new(sched: Arc<Scheduler>, cpu: u64, is_async: bool) -> Self {
        TaskCtx {
            sched,
            cpu,
            released: Cell::new(false),
            awaiting_object: Cell::new(false),
            is_async,
        }
    }

    pub(super) fn enter(&self) -> Enter {
        Enter(CURRENT.with(|c| c.replace(self as *const TaskCtx)))
    }

    pub(super) fn with_current<R>(f: impl FnOnce(Option<&TaskCtx>) -> R) -> R {
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
pub(super) static AWAITING_OUTSIDE_POOL: AtomicBool = AtomicBool::new(false);

/// Runs an async task's future outside the pool (in a worker process, which runs one task at a
/// time) so that, like an async task of the pool, it lends its CPU while it awaits objects: the
/// tasks it awaits may need that CPU.
pub(crate) struct LendWhileAwaiting<F> {
    pub(super) inner: F,
    pub(super) blocked: Blocked,
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
