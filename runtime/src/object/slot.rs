//! The slot each object lives in: its state (pending, ready, failed, remote, fetching), the
//! waiters it fires once when filled, and the latch a blocked thread sleeps on.

use std::any::Any;
use std::fmt;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::task::Waker;
use std::thread::Thread;
use std::time::Instant;

use parking_lot::Mutex;

use crate::error::{Error, ErrorKind, Result};

use super::{directory, downcast, CloneFn, DecodeFn, ObjectId};

/// Something that waits for a slot and is fired once when it is filled.
pub(crate) enum Waiter {
    /// A task counting down its unready arguments.
    Dependent(Arc<dyn Dependent>),
    /// A thread parked in `get` or `wait`.
    Latch(Arc<Latch>),
    /// A future awaiting the ref.
    Waker(Waker),
}

impl Waiter {
    /// The object settled (`failed`: with an error).
    pub(super) fn fire(self, failed: bool) {
        match self {
            Waiter::Dependent(d) => d.dependency_ready(),
            Waiter::Latch(l) if failed && l.trips => l.open(),
            Waiter::Latch(l) => l.count_down(),
            Waiter::Waker(w) => w.wake(),
        }
    }
}

/// A task waiting for its arguments.
pub(crate) trait Dependent: Send + Sync {
    /// One of the awaited objects is ready (or failed).
    fn dependency_ready(self: Arc<Self>);
}

/// Parks a thread until `remaining` objects are ready.
pub(crate) struct Latch {
    pub(super) remaining: AtomicUsize,
    pub(super) thread: Thread,
    /// Opens at once when one of its objects fails.
    pub(super) trips: bool,
}

impl Latch {
    pub(crate) fn new(count: usize) -> Arc<Self> {
        Arc::new(Latch {
            remaining: AtomicUsize::new(count),
            thread: std::thread::current(),
            trips: false,
        })
    }

    /// A latch that also opens when one of its objects fails.
    pub(super) fn tripping(count: usize) -> Arc<Self> {
        Arc::new(Latch {
            remaining: AtomicUsize::new(count),
            thread: std::thread::current(),
            trips: true,
        })
    }

    pub(super) fn open(&self) {
        if self.remaining.swap(0, Ordering::AcqRel) > 0 {
            self.thread.unpark();
        }
    }

    pub(crate) fn count_down(&self) {
        let prev = self
            .remaining
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| n.checked_sub(1));
        if prev == Ok(1) {
            self.thread.unpark();
        }
    }

    pub(crate) fn is_open(&self) -> bool {
        self.remaining.load(Ordering::Acquire) == 0
    }

    /// Parks until the latch opens or `deadline` passes; says whether it opened.
    pub(crate) fn wait(&self, deadline: Option<Instant>) -> bool {
        while !self.is_open() {
            match deadline {
                None => std::thread::park(),
                Some(d) => {
                    let now = Instant::now();
                    if now >= d {
                        return self.is_open();
                    }
                    std::thread::park_timeout(d - now);
                }
            }
        }
        true
    }
}

pub(super) enum State {
    Pending(Vec<Waiter>),
    Ready(Box<dyn Any + Send>, CloneFn),
    Failed(Error),
    /// The value was moved out by the last holder of the slot.
    Taken,
    /// Produced on a cluster node (`HOST:PORT`) and not fetched yet.
    Remote(Arc<str>),
    /// Being fetched from its node; readers wait.
    Fetching(Vec<Waiter>),
    /// The encoded value, here; decoded for each reader.
    Bytes(Arc<Vec<u8>>),
}

/// Where one object lives: its id, then its value or error once produced.
pub struct Slot {
    pub(super) id: ObjectId,
    pub(super) state: Mutex<State>,
    /// Whether the id was handed out (serialized) and so is in the [`directory`].
    pub(super) exported: AtomicBool,
    /// How to decode the value when it arrives encoded (cluster objects).
    pub(super) decoder: Option<DecodeFn>,
    /// Whether this process owns the object in another process's store (it submitted the task
    /// that makes it, or put it there): dropping the slot tells the backend this owner's last
    /// ref is gone.
    pub(super) owned_elsewhere: AtomicBool,
}

impl fmt::Debug for Slot {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Slot").field("id", &self.id).finish()
    }
}

impl Slot {
    pub(super) fn new(id: ObjectId, state: State, decoder: Option<DecodeFn>) -> Arc<Self> {
        Arc::new(Slot {
            id,
            state: Mutex::new(state),
            exported: AtomicBool::new(false),
            decoder,
            owned_elsewhere: AtomicBool::new(false),
        })
    }

    /// A pending object whose value may arrive encoded, from a cluster.
    pub(crate) fn pending_decodable(id: ObjectId, decoder: Option<DecodeFn>) -> Arc<Self> {
        Slot::new(id, State::Pending(Vec::new()), decoder)
    }

    pub(crate) fn ready(value: Box<dyn Any + Send>, clone: CloneFn) -> Arc<Self> {
        Slot::new(ObjectId::next(), State::Ready(value, clone), None)
    }

    pub(crate) fn id(&self) -> ObjectId {
        self.id
    }

    /// Marks the slot as the owner's on a cluster: its drop releases the object there.
    pub(crate) fn set_owned_elsewhere(&self) {
        self.owned_elsewhere.store(true, Ordering::Relaxed);
    }

    pub(super) fn settle(&self, new: State) {
        let failed = matches!(new, State::Failed(_));
        let mut state = self.state.lock();
        match &*state {
            State::Pending(_) | State::Fetching(_) | State::Remote(_) => {}
            // Failed first on purpose (its actor was killed while it ran the call): the late
            // result goes nowhere.
            State::Failed(_) => return,
            _ => {
                drop(state);
                tracing::error!(object = %self.id, "object written twice; second write ignored");
                return;
            }
        }
        let old = std::mem::replace(&mut *state, new);
        drop(state);
        if let State::Pending(waiters) | State::Fetching(waiters) = old {
            waiters.into_iter().for_each(|w| w.fire(failed));
        }
    }

    /// Stores the value and fires every waiter.
    pub(crate) fn fulfil(&self, value: Box<dyn Any + Send>, clone: CloneFn) {
        self.settle(State::Ready(value, clone));
    }

    /// Stores the error and fires every waiter.
    pub(crate) fn fail(&self, error: Error) {
        self.settle(State::Failed(error));
    }

    /// The object was produced on the cluster node at `location`: it counts as ready, and a
    /// reader fetches it from there.
    pub(crate) fn locate(&self, location: &str) {
        let mut state = self.state.lock();
        if let State::Pending(waiters) = &mut *state {
            let waiters = std::mem::take(waiters);
            *state = State::Remote(location.into());
            drop(state);
            waiters.into_iter().for_each(|w| w.fire(false));
        }
    }

    /// A fetch of the object failed and its location is asked for again: readers wait for it
    /// as for a pending object (false when the slot is not being fetched).
    pub(crate) fn unlocate(&self) -> bool {
        let mut state = self.state.lock();
        match &mut *state {
            State::Fetching(waiters) => {
                let waiters = std::mem::take(waiters);
                *state = State::Pending(waiters);
                true
            }
            _ => false,
        }
    }

    /// The encoded value arrived: every reader decodes it.
    pub(crate) fn fill_bytes(&self, bytes: Vec<u8>) {
        let mut state = self.state.lock();
        match &mut *state {
            State::Pending(waiters) | State::Fetching(waiters) => {
                let waiters = std::mem::take(waiters);
                *state = State::Bytes(Arc::new(bytes));
                drop(state);
                waiters.into_iter().for_each(|w| w.fire(false));
            }
            State::Remote(_) => *state = State::Bytes(Arc::new(bytes)),
            _ => {}
        }
    }

    /// The error, when the object failed.
    pub(super) fn failure(&self) -> Option<Error> {
        match &*self.state.lock() {
            State::Failed(e) => Some(e.clone()),
            _ => None,
        }
    }

    /// Whether the value or error is there.
    pub(crate) fn is_ready(&self) -> bool {
        !matches!(*self.state.lock(), State::Pending(_))
    }

    /// Adds a waiter, or hands it back when the slot is already settled.
    pub(crate) fn add_waiter(&self, waiter: Waiter) -> std::result::Result<(), Waiter> {
        match &mut *self.state.lock() {
            State::Pending(waiters) => {
                waiters.push(waiter);
                Ok(())
            }
            _ => Err(waiter),
        }
    }

    /// Registers `waker` unless an equivalent one is already there; false when the value can
    /// be read now. A remote value starts being fetched.
    pub(super) fn add_waker(self: &Arc<Self>, waker: &Waker) -> bool {
        let mut state = self.state.lock();
        if let State::Remote(location) = &*state {
            let location = location.clone();
            *state = State::Fetching(Vec::new());
            crate::backend::fetch(self.clone(), location);
        }
        match &mut *state {
            State::Pending(waiters) | State::Fetching(waiters) => {
                let known = waiters
                    .iter()
                    .any(|w| matches!(w, Waiter::Waker(k) if k.will_wake(waker)));
                if !known {
                    waiters.push(Waiter::Waker(waker.clone()));
                }
                true
            }
            _ => false,
        }
    }

    pub(super) fn remove_latch(&self, latch: &Arc<Latch>) {
        if let State::Pending(waiters) | State::Fetching(waiters) = &mut *self.state.lock() {
            waiters.retain(|w| !matches!(w, Waiter::Latch(l) if Arc::ptr_eq(l, latch)));
        }
    }

    /// A copy of the value, or the error; `None` while pending or being fetched (a remote
    /// value starts being fetched).
    pub(crate) fn read<T: 'static>(self: &Arc<Self>) -> Option<Result<T>> {
        let mut state = self.state.lock();
        match &*state {
            State::Pending(_) | State::Fetching(_) => None,
            State::Remote(location) => {
                let location = location.clone();
                *state = State::Fetching(Vec::new());
                drop(state);
                crate::backend::fetch(self.clone(), location);
                None
            }
            State::Ready(value, clone) => Some(clone(value.as_ref()).and_then(downcast::<T>)),
            State::Bytes(bytes) => Some(self.decode(bytes)),
            State::Failed(e) => Some(Err(e.clone())),
            State::Taken => Some(Err(self.lost())),
        }
    }

    pub(super) fn decode<T: 'static>(&self, bytes: &[u8]) -> Result<T> {
        match self.decoder {
            Some(decode) => decode(bytes).and_then(downcast::<T>),
            None => Err(Error::new(
                ErrorKind::Serialization,
                format!(
                    "object {} arrived encoded but its type is unknown here",
                    self.id
                ),
            )),
        }
    }

    /// The value, moved out when this is the last holder of the slot and copied otherwise.
    pub(crate) fn take<T: 'static>(mut self: Arc<Self>) -> Option<Result<T>> {
        match Arc::get_mut(&mut self) {
            Some(slot) if slot.holds_value() => Some(slot.take_unique()),
            _ => self.read(),
        }
    }

    pub(super) fn holds_value(&self) -> bool {
        matches!(
            *self.state.lock(),
            State::Ready(..) | State::Failed(_) | State::Taken | State::Bytes(_)
        )
    }

    /// Moves the settled value out of a slot nobody else can see.
    pub(super) fn take_unique<T: 'static>(&mut self) -> Result<T> {
        match std::mem::replace(self.state.get_mut(), State::Taken) {
            State::Ready(value, _) => downcast::<T>(value),
            State::Bytes(bytes) => self.decode(&bytes),
            State::Failed(e) => Err(e),
            State::Taken => Err(self.lost()),
            other => {
                *self.state.get_mut() = other;
                Err(Error::new(
                    ErrorKind::ObjectLost,
                    "object read before it was ready",
                ))
            }
        }
    }

    pub(super) fn lost(&self) -> Error {
        Error::new(
            ErrorKind::ObjectLost,
            format!("object {} no longer exists", self.id),
        )
    }

    /// Blocks the calling thread until the value (or error) can be read here (giving back the
    /// CPU of the task it runs in, if any).
    pub(crate) fn block_until_ready(&self) {
        self.block_until_ready_by(None);
    }

    /// [`block_until_ready`](Self::block_until_ready) until `deadline` at the latest; says
    /// whether the value (or error) can be read now.
    pub(crate) fn block_until_ready_by(&self, deadline: Option<Instant>) -> bool {
        let latch = Latch::new(1);
        {
            let mut state = self.state.lock();
            match &mut *state {
                State::Pending(waiters) | State::Fetching(waiters) => {
                    waiters.push(Waiter::Latch(latch.clone()))
                }
                _ => return true,
            }
        }
        let opened = crate::local::blocking(|| latch.wait(deadline));
        if !opened {
            self.remove_latch(&latch);
        }
        opened
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        if self.exported.load(Ordering::Relaxed) {
            directory::remove(self.id);
        }
        if self.owned_elsewhere.load(Ordering::Relaxed) {
            crate::backend::release(self.id);
        }
    }
}
