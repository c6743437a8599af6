//! An actor's cell: the state, the mailbox of queued calls (one queue per caller), and the pump
//! that starts calls in order once their arguments are ready and the actor is free.

use std::collections::VecDeque;
use std::fmt;
use std::sync::{Arc, Weak};

use futures::future::BoxFuture;
use parking_lot::Mutex;

use super::exit;
use super::{ActorId, ActorName};
use crate::error::{Error, ErrorKind, Result};
use crate::local::{Body, Demand, Scheduler, Work};
use crate::object::{Dependent, Slot, Waiter};
use crate::runtime::Runtime;
use crate::task::CallOutputs;

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
pub(super) type CallRun<A> =
    Box<dyn FnOnce(Result<State<A>>) -> Option<BoxFuture<'static, ()>> + Send>;

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

pub(super) type State<A> = Arc<tokio::sync::RwLock<A>>;

/// A queued call: started with the state, or with the error that kills it.
pub(super) struct Call<A> {
    pub(super) exclusive: bool,
    pub(super) is_async: bool,
    pub(super) deps: Vec<Arc<Slot>>,
    /// Who submitted it (see [`crate::local::current_caller`]): calls of one caller run in
    /// the order it submitted them, and never wait behind another caller's call.
    pub(super) caller: u64,
    /// The argument whose readiness it is told of now (a waiter is registered on it).
    pub(super) waiting_on: Option<crate::object::ObjectId>,
    /// Its output objects: failed at once when the actor is killed while the call runs.
    pub(super) outputs: CallOutputs,
    pub(super) run: CallRun<A>,
}

impl<A> Call<A> {
    pub(super) fn unready_dep(&self) -> Option<&Arc<Slot>> {
        self.deps.iter().find(|s| !s.is_ready())
    }
}

pub(super) enum Status {
    Creating,
    Alive,
    Dead(Error),
}

pub(super) struct Mailbox<A> {
    pub(super) status: Status,
    pub(super) state: Option<State<A>>,
    pub(super) queue: VecDeque<Call<A>>,
    pub(super) running_shared: usize,
    pub(super) running_exclusive: bool,
    /// The outputs of the calls running now, by call number: a kill fails them at once.
    pub(super) running: Vec<(u64, CallOutputs)>,
    /// The number of the next call to start.
    pub(super) next_call: u64,
    pub(super) handles_gone: bool,
    pub(super) holds_resources: bool,
    /// A running call asked the actor to end after it ([`exit_actor`](crate::exit_actor)): no
    /// call starts any more, and the actor dies when the running calls end.
    pub(super) exiting: bool,
}

impl<A> Mailbox<A> {
    /// Counts `call` as running: its number, by which its end is known.
    pub(super) fn started(&mut self, call: &mut Call<A>) -> u64 {
        let n = self.next_call;
        self.next_call += 1;
        self.running.push((n, std::mem::take(&mut call.outputs)));
        n
    }

    /// The call `n` ended.
    pub(super) fn ended(&mut self, n: u64) {
        if let Some(at) = self.running.iter().position(|(m, _)| *m == n) {
            self.running.swap_remove(at);
        }
    }

    pub(super) fn new(status: Status, state: Option<State<A>>) -> Self {
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
            exiting: false,
        }
    }
}

/// One actor: its state, mailbox and the resources it holds.
pub(crate) struct ActorCell<A> {
    pub(super) id: ActorId,
    pub(super) class: &'static str,
    pub(super) name: Option<ActorName>,
    pub(super) max_concurrency: usize,
    pub(super) demand: Demand,
    /// The scheduler of the node the actor lives on (`None`: it never got one).
    pub(super) sched: Option<Arc<Scheduler>>,
    pub(super) runtime: Weak<Runtime>,
    pub(super) mailbox: Mutex<Mailbox<A>>,
}

impl<A: Send + Sync + 'static> ActorCell<A> {
    pub(super) fn died(&self, why: &str) -> Error {
        Error::new(
            ErrorKind::ActorDied,
            format!("actor `{}` ({}) {why}", self.class, self.id),
        )
    }

    /// Queues a call and starts what can start; a dead actor fails it at once.
    pub(super) fn enqueue(self: &Arc<Self>, call: Call<A>) {
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
    pub(super) fn pump(self: &Arc<Self>) {
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
                    // wait behind it, other callers' calls do not. An exiting actor starts none.
                    let mut blocked: Vec<u64> = Vec::new();
                    let mut i = 0;
                    while i < mb.queue.len() && !mb.exiting {
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

    pub(super) fn release_resources(&self) {
        if let Some(sched) = &self.sched {
            sched.release(&self.demand);
        }
    }

    pub(super) fn start(self: &Arc<Self>, call: Call<A>, n: u64) {
        let state = self.mailbox.lock().state.clone();
        let done = Finished {
            cell: self.clone(),
            exclusive: call.exclusive,
            call: n,
        };
        let run = call.run;
        let body: Body = Box::new(move || {
            let state = state.ok_or_else(|| done.cell.died("is not running"));
            let ran = {
                let _in_actor = exit::enter(&*done.cell);
                run(state)
            };
            match ran {
                None => {
                    let mut done = done;
                    done.drain();
                    drop(done);
                    None
                }
                Some(mut fut) => Some(Box::pin(async move {
                    // The method's body runs in these polls: each knows its actor.
                    std::future::poll_fn(|cx| {
                        let _in_actor = exit::enter(&*done.cell);
                        fut.as_mut().poll(cx)
                    })
                    .await;
                    drop(done);
                })),
            }
        });
        match &self.sched {
            Some(sched) => sched.submit(Work {
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
    pub(super) fn kill(self: &Arc<Self>, why: &str) {
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
pub(super) struct Finished<A: Send + Sync + 'static> {
    pub(super) cell: Arc<ActorCell<A>>,
    pub(super) exclusive: bool,
    /// The call's number in the mailbox's running calls.
    pub(super) call: u64,
}

impl<A: Send + Sync + 'static> Finished<A> {
    /// Runs the next queued sync calls of the same kind (shared or exclusive) on this thread,
    /// in the slot this call held, instead of a new work per call: no thread hop, no scheduling.
    /// After a budget the thread goes back, so one busy actor cannot keep it for good.
    pub(super) fn drain(&mut self) {
        const BUDGET: usize = 64;
        for _ in 0..BUDGET {
            let next = {
                let mut mb = self.cell.mailbox.lock();
                let startable = matches!(mb.status, Status::Alive)
                    && !mb.exiting
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
            let _in_actor = exit::enter(&*self.cell);
            drop((call.run)(state));
        }
    }
}

impl<A: Send + Sync + 'static> Drop for Finished<A> {
    fn drop(&mut self) {
        let exiting = {
            let mut mb = self.cell.mailbox.lock();
            mb.ended(self.call);
            if self.exclusive {
                mb.running_exclusive = false;
            } else {
                mb.running_shared -= 1;
            }
            mb.exiting && mb.running_shared == 0 && !mb.running_exclusive
        };
        if exiting {
            // The calls that ran have their answers; the queued and later ones fail.
            self.cell.kill("exited: a method called raykit::exit_actor");
        } else {
            self.cell.pump();
        }
    }
}

impl<A: Send + Sync + 'static> exit::ExitRequest for ActorCell<A> {
    fn request_exit(&self) {
        self.mailbox.lock().exiting = true;
    }
}

/// Pumps the mailbox when the argument a caller's first queued call waits for arrives.
pub(super) struct HeadReady<A>(Arc<ActorCell<A>>);

impl<A: Send + Sync + 'static> Dependent for HeadReady<A> {
    fn dependency_ready(self: Arc<Self>) {
        self.0.pump();
    }
}
