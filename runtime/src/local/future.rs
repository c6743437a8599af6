//! Async tasks on the executor: each holds its resources while it runs.

use super::*;

pub(super) enum AsyncState {
    Start(Option<Body>),
    Running(BoxFuture<'static, ()>),
}

/// An async task on the executor: holds its resources while it runs and lends its CPU while it
/// awaits objects.
pub(super) struct TaskFuture {
    pub(super) state: AsyncState,
    pub(super) ctx: TaskCtx,
    pub(super) demand: Demand,
    pub(super) regrant: Option<Arc<AsyncGrant>>,
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
    pub(super) fn finish(&mut self) -> Poll<()> {
        let mut demand = std::mem::take(&mut self.demand);
        if self.ctx.released.get() {
            demand.cpu = 0;
        }
        self.ctx.sched.release(&demand);
        Poll::Ready(())
    }
}
