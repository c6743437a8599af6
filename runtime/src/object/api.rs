//! The object calls of the public API: [`put`], [`get`], [`get_all`], their `_timeout`
//! forms, and [`wait`].

use std::time::{Duration, Instant};

use serde::Serialize;

use crate::error::{Error, ErrorKind, Result};

use super::slot::State;
use super::*;

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
    get_by(r, None)
}

/// [`get`] that gives up after `timeout`: an error of kind [`ErrorKind::Timeout`] when the
/// object is not ready by then (the object itself is not affected; a later `get` may succeed).
///
/// ```
/// use std::time::Duration;
/// let r = raykit::put(7u8);
/// assert_eq!(raykit::get_timeout(&r, Duration::from_secs(5)).unwrap(), 7);
/// ```
pub fn get_timeout<T: 'static>(r: &ObjectRef<T>, timeout: Duration) -> Result<T> {
    get_by(r, Some(Instant::now() + timeout))
}

/// [`get_all`] that gives up after `timeout`, with an error of kind [`ErrorKind::Timeout`]
/// when some of the objects are not ready by then. An object that failed before the deadline
/// is the answer at once, as for [`get_all`].
pub fn get_all_timeout<T: 'static>(refs: &[ObjectRef<T>], timeout: Duration) -> Result<Vec<T>> {
    get_all_by(refs, Some(Instant::now() + timeout))
}

/// [`get_all`] for many refs: the values in the order of `refs`, or the first error.
pub fn get_all<T: 'static>(refs: &[ObjectRef<T>]) -> Result<Vec<T>> {
    get_all_by(refs, None)
}

fn get_by<T: 'static>(r: &ObjectRef<T>, deadline: Option<Instant>) -> Result<T> {
    loop {
        if let Some(v) = r.slot.read() {
            return v;
        }
        if !r.slot.block_until_ready_by(deadline) {
            return Err(timed_out(1, deadline));
        }
    }
}

fn get_all_by<T: 'static>(refs: &[ObjectRef<T>], deadline: Option<Instant>) -> Result<Vec<T>> {
    // One park for the whole list (until every ref is ready, or one fails) instead of one per
    // pending ref: the results come in order either way, and the thread that readies the
    // objects wakes this one once instead of for each.
    if refs.len() > 1 {
        wait_for_all(refs, deadline);
        // One failed: that is the answer, whether or not the others are ready.
        if let Some(error) = refs.iter().find_map(|r| r.slot.failure()) {
            return Err(error);
        }
        let pending = refs.iter().filter(|r| !r.is_ready()).count();
        if pending > 0 {
            return Err(timed_out(pending, deadline));
        }
    }
    refs.iter().map(|r| get_by(r, deadline)).collect()
}

/// The error of a `get` whose deadline passed with `pending` objects not ready.
fn timed_out(pending: usize, deadline: Option<Instant>) -> Error {
    let late = deadline.map_or(Duration::ZERO, |d| {
        Instant::now().saturating_duration_since(d)
    });
    let what = if pending == 1 {
        "an object was".to_string()
    } else {
        format!("{pending} objects were")
    };
    Error::new(
        ErrorKind::Timeout,
        format!("get timed out: {what} not ready in time (deadline passed {late:?} ago)"),
    )
}

/// Parks until every ref of `refs` is ready, one of them failed, or `deadline` passed.
fn wait_for_all<T>(refs: &[ObjectRef<T>], deadline: Option<Instant>) {
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
            latch.wait(deadline);
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
