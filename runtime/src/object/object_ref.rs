//! [`ObjectRef`]: the typed ref that points at its object's slot, its serde form (an id that
//! finds the slot again through the directory) and its `Future` impls.

use std::fmt;
use std::future::{Future, IntoFuture};
use std::hash::{Hash, Hasher};
use std::marker::PhantomData;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use serde::{Deserialize, Serialize};

use crate::error::Result;

use super::slot::State;
use super::*;

/// A typed reference to an object that a task will produce (or that [`put`] stored).
///
/// Refs return at once from `remote` calls, can be passed to other remote calls (the callee runs
/// when the object is ready and receives the value), cloned, stored in containers, returned from
/// tasks and serialized. The object is freed when its last ref is dropped. `.await` a ref under
/// any executor, or block on it with [`get`].
pub struct ObjectRef<T> {
    pub(super) slot: Arc<Slot>,
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
