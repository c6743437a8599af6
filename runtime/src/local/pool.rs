//! The elastic pool of threads that run sync tasks.

use super::*;

/// How long a worker thread idles before it exits.
pub(super) const IDLE_TIMEOUT: Duration = Duration::from_secs(10);

/// Threads for sync tasks. A task is handed to an idle thread when one is free, else a new
/// thread starts for it; the number of threads follows the number of running and blocked tasks.
pub(super) struct Pool {
    pub(super) tx: Sender<Option<Work>>,
    pub(super) rx: Receiver<Option<Work>>,
    pub(super) idle: AtomicUsize,
    pub(super) spawned: AtomicUsize,
}

impl Pool {
    pub(super) fn execute(&self, sched: &Arc<Scheduler>, work: Work) {
        let claimed = self
            .idle
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| n.checked_sub(1))
            .is_ok();
        if claimed {
            if let Err(e) = self.tx.send(Some(work)) {
                drop(e); // cannot happen: the pool holds the receiver
            }
            return;
        }
        let n = self.spawned.fetch_add(1, Ordering::Relaxed);
        let sched2 = sched.clone();
        let demand = work.demand.clone();
        let keep = work.keep_resources;
        // When the thread cannot start, `spawn` drops the work here: its outputs fail with this
        // error, and the resources it took go back, so nothing waits for it forever.
        let reason = Error::new(
            ErrorKind::System,
            "no thread could be started to run the task (too many tasks blocked at once?)",
        );
        let spawn = crate::task::discard_with(reason, || {
            std::thread::Builder::new()
                .name(format!("raykit-worker-{n}"))
                .spawn(move || worker_loop(sched2, work))
        });
        if let Err(e) = spawn {
            tracing::error!("cannot start a worker thread: {e}");
            if !keep {
                sched.release(&demand);
            }
        }
    }
}

pub(super) fn worker_loop(sched: Arc<Scheduler>, first: Work) {
    let mut counted = run_work(&sched, first);
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
                Ok(Some(work)) => {
                    counted = run_work(&sched, work);
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
                    // A submitter claimed this thread: its work is on the way.
                }
            }
        }
    }
}

/// Runs `work` on this thread, then, while what its end frees goes to a waiting sync task, that
/// task too: the CPU stays on the thread that freed it, instead of the next task being handed
/// to another thread (a channel send and a wake-up, or a new thread) while this one goes idle.
///
/// Returns whether the thread already counts among the idle ones (or a work was handed to it
/// meanwhile): it then waits for work without counting itself again.
pub(super) fn run_work(sched: &Arc<Scheduler>, work: Work) -> bool {
    let mut work = work;
    loop {
        match run_one(sched, work) {
            After::Run(next) => work = next,
            After::Idle => return true,
            After::Done => return false,
        }
    }
}

/// What a pool thread does after a work.
pub(super) enum After {
    /// Runs the waiting task its release granted.
    Run(Work),
    /// Waits for work, already counted idle (or claimed by a submitter, whose work is on its
    /// way).
    Idle,
    /// Waits for work, not counted idle yet.
    Done,
}

/// Runs one work, then gives its resources back. A thread that gives a CPU back counts itself
/// idle first: a submitter that takes that CPU then finds this thread instead of starting a
/// new one (which on a small machine grew the pool to dozens of threads spinning for work).
pub(super) fn run_one(sched: &Arc<Scheduler>, work: Work) -> After {
    let Work {
        demand,
        body,
        keep_resources,
        ..
    } = work;
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
            // A submitter claimed this thread meanwhile: its work, which holds its resources
            // already, is on its way here and must not wait behind `next` (which may wait
            // for it). `next` goes to another thread.
            pool.execute(sched, next);
            After::Idle
        }
    }
}
