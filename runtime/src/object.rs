//! Objects: ids, the slot each object lives in, and the typed [`ObjectRef`] that points at it.
//!
//! A ref holds its slot by `Arc`, so reading, writing and waiting on a local object never looks
//! anything up in a global map. The slot keeps the tasks, threads and wakers waiting for it and
//! fires each once when the value (or error) arrives. The object is freed with its last ref.
//! Only ids that arrive from elsewhere (a deserialized ref) go through the [`directory`].

use std::any::Any;
use std::fmt;
use std::future::{Future, IntoFuture};
use std::hash::{Hash, Hasher};
use std::marker::PhantomData;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll, Waker};
use std::thread::Thread;
use std::time::{Duration, Instant};

use parking_lot::Mutex;
use serde::{Deserialize, Serialize};

use crate::error::{Error, ErrorKind, Result};

pub use crate::ids::ObjectId;

/// Copies a stored value for a reader when other refs still need the original.
pub type CloneFn = fn(&(dyn Any + Send)) -> Result<Box<dyn Any + Send>>;

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
    fn fire(self, failed: bool) {
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
    remaining: AtomicUsize,
    thread: Thread,
    /// Opens at once when one of its objects fails.
    trips: bool,
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
    fn tripping(count: usize) -> Arc<Self> {
        Arc::new(Latch {
            remaining: AtomicUsize::new(count),
            thread: std::thread::current(),
            trips: true,
        })
    }

    fn open(&self) {
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

enum State {
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

/// Decodes an object's encoded value into a value of the ref's type.
pub type DecodeFn = fn(&[u8]) -> Result<Box<dyn Any + Send>>;

/// Decodes an encoded `T` (see [`codec`](crate::codec)).
pub(crate) fn decode_value<T>(bytes: &[u8]) -> Result<Box<dyn Any + Send>>
where
    T: serde::de::DeserializeOwned + Send + 'static,
{
    crate::codec::decode::<T>(bytes).map(|v| Box::new(v) as Box<dyn Any + Send>)
}

/// Where one object lives: its id, then its value or error once produced.
pub struct Slot {
    id: ObjectId,
    state: Mutex<State>,
    /// Whether the id was handed out (serialized) and so is in the [`directory`].
    exported: AtomicBool,
    /// How to decode the value when it arrives encoded (cluster objects).
    decoder: Option<DecodeFn>,
    /// Whether this process owns the object in another process's store (it submitted the task
    /// that makes it, or put it there): dropping the slot tells the backend this owner's last
    /// ref is gone.
    owned_elsewhere: AtomicBool,
}

impl fmt::Debug for Slot {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Slot").field("id", &self.id).finish()
    }
}

impl Slot {
    fn new(id: ObjectId, state: State, decoder: Option<DecodeFn>) -> Arc<Self> {
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

    fn settle(&self, new: State) {
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
    fn failure(&self) -> Option<Error> {
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
    fn add_waker(self: &Arc<Self>, waker: &Waker) -> bool {
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

    fn remove_latch(&self, latch: &Arc<Latch>) {
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

    fn decode<T: 'static>(&self, bytes: &[u8]) -> Result<T> {
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

    fn holds_value(&self) -> bool {
        matches!(
            *self.state.lock(),
            State::Ready(..) | State::Failed(_) | State::Taken | State::Bytes(_)
        )
    }

    /// Moves the settled value out of a slot nobody else can see.
    fn take_unique<T: 'static>(&mut self) -> Result<T> {
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

    fn lost(&self) -> Error {
        Error::new(
            ErrorKind::ObjectLost,
            format!("object {} no longer exists", self.id),
        )
    }

    /// Blocks the calling thread until the value (or error) can be read here (giving back the
    /// CPU of the task it runs in, if any).
    pub(crate) fn block_until_ready(&self) {
        let latch = Latch::new(1);
        {
            let mut state = self.state.lock();
            match &mut *state {
                State::Pending(waiters) | State::Fetching(waiters) => {
                    waiters.push(Waiter::Latch(latch.clone()))
                }
                _ => return,
            }
        }
        crate::local::blocking(|| {
            latch.wait(None);
        });
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

fn downcast<T: 'static>(value: Box<dyn Any + Send>) -> Result<T> {
    value.downcast::<T>().map(|b| *b).map_err(|_| {
        Error::new(
            ErrorKind::Serialization,
            format!(
                "object does not hold a value of type `{}`",
                std::any::type_name::<T>()
            ),
        )
    })
}

/// Copies by `Clone`.
pub fn clone_by_clone<T: Clone + Send + 'static>(
    value: &(dyn Any + Send),
) -> Result<Box<dyn Any + Send>> {
    match value.downcast_ref::<T>() {
        Some(v) => Ok(Box::new(v.clone())),
        None => Err(Error::new(
            ErrorKind::Serialization,
            "stored value has an unexpected type",
        )),
    }
}

/// Copies through a serialization round trip, for types that are not `Clone`.
pub fn clone_by_serde<T>(value: &(dyn Any + Send)) -> Result<Box<dyn Any + Send>>
where
    T: Serialize + serde::de::DeserializeOwned + Send + 'static,
{
    let Some(v) = value.downcast_ref::<T>() else {
        return Err(Error::new(
            ErrorKind::Serialization,
            "stored value has an unexpected type",
        ));
    };
    Ok(Box::new(crate::codec::copy(v)?))
}

/// The ids of objects that were handed out by serialization, so a deserialized ref finds its
/// slot again. Holds weak pointers: it never keeps an object alive.
pub(crate) mod directory {
    use std::collections::HashMap;
    use std::sync::{Arc, OnceLock, Weak};

    use parking_lot::Mutex;

    use super::{ObjectId, Slot};

    fn table() -> &'static Mutex<HashMap<ObjectId, Weak<Slot>>> {
        static TABLE: OnceLock<Mutex<HashMap<ObjectId, Weak<Slot>>>> = OnceLock::new();
        TABLE.get_or_init(Default::default)
    }

    /// Makes the slot findable by id; true the first time.
    pub(crate) fn export(slot: &Arc<Slot>) -> bool {
        let first = !slot
            .exported
            .swap(true, std::sync::atomic::Ordering::Relaxed);
        if first {
            table().lock().insert(slot.id, Arc::downgrade(slot));
        }
        first
    }

    pub(crate) fn find(id: ObjectId) -> Option<Arc<Slot>> {
        table().lock().get(&id).and_then(Weak::upgrade)
    }

    pub(super) fn remove(id: ObjectId) {
        let mut t = table().lock();
        if t.get(&id).is_some_and(|w| w.strong_count() == 0) {
            t.remove(&id);
        }
    }
}

/// A typed reference to an object that a task will produce (or that [`put`] stored).
///
/// Refs return at once from `remote` calls, can be passed to other remote calls (the callee runs
/// when the object is ready and receives the value), cloned, stored in containers, returned from
/// tasks and serialized. The object is freed when its last ref is dropped. `.await` a ref under
/// any executor, or block on it with [`get`].
pub struct ObjectRef<T> {
    slot: Arc<Slot>,
    _type: PhantomData<fn() -> T>,
}

impl<T> ObjectRef<T> {
    pub(crate) fn from_slot(slot: Arc<Slot>) -> Self {
        ObjectRef {
            slot,
            _type: PhantomData,
        }
    }

    /// The id of the object.
    pub fn id(&self) -> ObjectId {
        self.slot.id
    }

    /// Whether the object is ready (holds a value or an error), without blocking.
    pub fn is_ready(&self) -> bool {
        self.slot.is_ready()
    }

    pub(crate) fn slot(&self) -> &Arc<Slot> {
        &self.slot
    }

    pub(crate) fn into_slot(self) -> Arc<Slot> {
        self.slot
    }
}

impl<T> Clone for ObjectRef<T> {
    fn clone(&self) -> Self {
        ObjectRef::from_slot(self.slot.clone())
    }
}

impl<T> fmt::Debug for ObjectRef<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "ObjectRef<{}>({})",
            std::any::type_name::<T>(),
            self.slot.id
        )
    }
}

impl<T> PartialEq for ObjectRef<T> {
    fn eq(&self, other: &Self) -> bool {
        self.slot.id == other.slot.id
    }
}

impl<T> Eq for ObjectRef<T> {}

impl<T> Hash for ObjectRef<T> {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.slot.id.hash(state)
    }
}

impl<T> Serialize for ObjectRef<T> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        // The id leaves this process inside a value: the object must outlive this process's refs.
        if directory::export(&self.slot) {
            crate::backend::escaped(self.slot.id);
        }
        crate::codec::Portable(self.slot.id).serialize(s)
    }
}

impl<'de, T> Deserialize<'de> for ObjectRef<T>
where
    T: serde::de::DeserializeOwned + Send + 'static,
{
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        let crate::codec::Portable(id) = crate::codec::Portable::<ObjectId>::deserialize(d)?;
        if crate::codec::tracing() {
            // Finding the format of a type that holds refs: an inert ref, found nowhere.
            return Ok(ObjectRef::from_slot(Slot::new(id, State::Taken, None)));
        }
        if let Some(slot) = directory::find(id) {
            return Ok(ObjectRef::from_slot(slot));
        }
        // The object may live in another process: the backend finds it, fetched on read.
        crate::backend::watch(id, decode_value::<T>)
            .map(ObjectRef::from_slot)
            .ok_or_else(|| serde::de::Error::custom(format!("object {id} no longer exists here")))
    }
}

/// Stores `value` as an object and returns a ref to it, at once.
///
/// ```
/// let r = raykit::put(vec![1u8, 2, 3]);
/// assert_eq!(raykit::get(&r).unwrap(), vec![1, 2, 3]);
/// ```
pub fn put<T>(value: T) -> ObjectRef<T>
where
    T: Serialize + serde::de::DeserializeOwned + Send + 'static,
{
    let here = |value: T| Slot::ready(Box::new(value), clone_by_serde::<T>);
    ObjectRef::from_slot(crate::backend::put::<T, _>(value, decode_value::<T>, here))
}

/// Stores a copy of `value` as an object, as Ray's `ray.put` does: the caller keeps its value.
///
/// [`put`] moves its value into the object, so keeping one means `put(value.clone())`. On a
/// cluster that copies the value twice, once to clone and once to encode; `put_copy` encodes
/// straight from the borrow (for a large value on the head's host, into its shared memory).
/// Embedded, it clones.
///
/// ```
/// let weights = vec![0.5f64; 1000];
/// let r = raykit::put_copy(&weights);
/// assert_eq!(raykit::get(&r).unwrap(), weights);
/// ```
pub fn put_copy<T>(value: &T) -> ObjectRef<T>
where
    T: Serialize + serde::de::DeserializeOwned + Clone + Send + 'static,
{
    let here = |value: &T| Slot::ready(Box::new(value.clone()), clone_by_serde::<T>);
    ObjectRef::from_slot(crate::backend::put::<T, _>(value, decode_value::<T>, here))
}

/// Blocks until the object is ready and returns a copy of its value, or the error of the task
/// that was to produce it. Inside a task, the task's CPU is given back while it waits.
pub fn get<T: 'static>(r: &ObjectRef<T>) -> Result<T> {
    loop {
        if let Some(v) = r.slot.read() {
            return v;
        }
        r.slot.block_until_ready();
    }
}

/// [`get`] for many refs: the values in the order of `refs`, or the first error.
pub fn get_all<T: 'static>(refs: &[ObjectRef<T>]) -> Result<Vec<T>> {
    // One park for the whole list (until every ref is ready, or one fails) instead of one per
    // pending ref: the results come in order either way, and the thread that readies the
    // objects wakes this one once instead of for each.
    if refs.len() > 1 {
        wait_for_all(refs);
        // One failed: that is the answer, whether or not the others are ready.
        if let Some(error) = refs.iter().find_map(|r| r.slot.failure()) {
            return Err(error);
        }
    }
    refs.iter().map(get).collect()
}

/// Parks until every ref of `refs` is ready or one of them failed.
fn wait_for_all<T>(refs: &[ObjectRef<T>]) {
    let latch = Latch::tripping(refs.len());
    let mut registered = Vec::with_capacity(refs.len());
    for r in refs {
        match r.slot.add_waiter(Waiter::Latch(latch.clone())) {
            Ok(()) => registered.push(&r.slot),
            Err(_) if matches!(*r.slot.state.lock(), State::Failed(_)) => latch.open(),
            Err(_) => latch.count_down(),
        }
    }
    if !latch.is_open() {
        crate::local::blocking(|| {
            latch.wait(None);
        });
    }
    for slot in registered {
        slot.remove_latch(&latch);
    }
}

/// Waits until `num_returns` of `refs` are ready or `timeout` passes (`None`: no limit).
///
/// Returns the ready refs (at most `num_returns`, in the order of `refs`) and the others.
/// `num_returns` larger than `refs.len()` means all of them.
pub fn wait<T>(
    refs: &[ObjectRef<T>],
    num_returns: usize,
    timeout: Option<Duration>,
) -> (Vec<ObjectRef<T>>, Vec<ObjectRef<T>>) {
    let want = num_returns.min(refs.len());
    let deadline = timeout.map(|t| Instant::now() + t);
    let ready_now = refs.iter().filter(|r| r.is_ready()).count();
    if ready_now < want {
        let latch = Latch::new(want - ready_now);
        let mut registered = Vec::new();
        for r in refs {
            if r.slot.add_waiter(Waiter::Latch(latch.clone())).is_ok() {
                registered.push(&r.slot);
            }
        }
        // Objects that became ready between the count and the registration will not fire the
        // latch: count them down here.
        let settled = refs.len() - registered.len();
        for _ in ready_now..settled {
            latch.count_down();
        }
        crate::local::blocking(|| {
            latch.wait(deadline);
        });
        for slot in registered {
            slot.remove_latch(&latch);
        }
    }
    let mut ready = Vec::with_capacity(want);
    let mut pending = Vec::new();
    for r in refs {
        if ready.len() < want && r.is_ready() {
            ready.push(r.clone());
        } else {
            pending.push(r.clone());
        }
    }
    (ready, pending)
}

/// A ref is a future of its value: `.await` it (or `futures::executor::block_on` it) under any
/// executor. Inside an async task, the task's CPU is lent out while it waits.
impl<T: 'static> Future for ObjectRef<T> {
    type Output = Result<T>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<T>> {
        if self.slot.add_waker(cx.waker()) {
            crate::local::release_for_await();
            return Poll::Pending;
        }
        // A sync task that lent its CPU while this was pending takes it back first.
        crate::local::reclaim_after_await();
        // The sole holder moves the value out instead of copying it.
        if let Some(slot) = Arc::get_mut(&mut self.slot) {
            return Poll::Ready(slot.take_unique());
        }
        match self.slot.read() {
            Some(v) => Poll::Ready(v),
            None => unreachable!("settled slot read as pending"),
        }
    }
}

impl<T: 'static> IntoFuture for &ObjectRef<T> {
    type Output = Result<T>;
    type IntoFuture = ObjectRef<T>;

    fn into_future(self) -> ObjectRef<T> {
        self.clone()
    }
}
