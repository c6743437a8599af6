//! Objects: ids, the slot each object lives in, and the typed [`ObjectRef`] that points at it.
//!
//! A ref holds its slot by `Arc`, so reading, writing and waiting on a local object never looks
//! anything up in a global map. The slot keeps the tasks, threads and wakers waiting for it and
//! fires each once when the value (or error) arrives. The object is freed with its last ref.
//! Only ids that arrive from elsewhere (a deserialized ref) go through the [`directory`].
use std::any::Any;

use serde::Serialize;

use crate::error::{Error, ErrorKind, Result};

mod api;
mod object_ref;
mod slot;

pub use api::{get, get_all, get_all_timeout, get_timeout, put, put_copy, wait};
pub use object_ref::ObjectRef;
pub use slot::Slot;
pub(crate) use slot::{Dependent, Latch, Waiter};

pub use crate::ids::ObjectId;

/// Copies a stored value for a reader when other refs still need the original.
pub type CloneFn = fn(&(dyn Any + Send)) -> Result<Box<dyn Any + Send>>;

/// Decodes an object's encoded value into a value of the ref's type.
pub type DecodeFn = fn(&[u8]) -> Result<Box<dyn Any + Send>>;

/// Decodes an encoded `T` (see [`codec`](crate::codec)).
pub(crate) fn decode_value<T>(bytes: &[u8]) -> Result<Box<dyn Any + Send>>
where
    T: serde::de::DeserializeOwned + Send + 'static,
{
    crate::codec::decode::<T>(bytes).map(|v| Box::new(v) as Box<dyn Any + Send>)
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
