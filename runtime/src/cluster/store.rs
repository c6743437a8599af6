//! A node's object store: the encoded values of the objects this node produced or was given,
//! by id. The head's node and every other node use the same store; peers, drivers and the
//! node's own tasks read from it with [`Message::FetchObject`](super::wire::Message).
//!
//! Values are immutable once stored and shared behind an `Arc`, so readers never copy them
//! under the lock.

use std::collections::HashMap;
use std::fmt;
use std::sync::Arc;

use parking_lot::Mutex;

use crate::error::{Error, ErrorKind};
use crate::object::ObjectId;

/// The encoded values held by one node.
#[derive(Default)]
pub struct ObjectStore {
    objects: Mutex<HashMap<ObjectId, Arc<Vec<u8>>>>,
}

impl fmt::Debug for ObjectStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let objects = self.objects.lock();
        f.debug_struct("ObjectStore")
            .field("objects", &objects.len())
            .field("bytes", &objects.values().map(|v| v.len()).sum::<usize>())
            .finish()
    }
}

impl ObjectStore {
    /// An empty store.
    pub fn new() -> ObjectStore {
        ObjectStore::default()
    }

    /// Stores `bytes` under `id` (a second put of the same id replaces the value: a task that
    /// ran again produces the same object) and returns the shared value.
    pub fn put(&self, id: ObjectId, bytes: Vec<u8>) -> Arc<Vec<u8>> {
        let value = Arc::new(bytes);
        self.objects.lock().insert(id, value.clone());
        value
    }

    /// The value of `id`, if this node holds it.
    pub fn get(&self, id: ObjectId) -> Option<Arc<Vec<u8>>> {
        self.objects.lock().get(&id).cloned()
    }

    /// The value of `id`, or an [`ErrorKind::ObjectLost`] error naming `here`.
    pub fn fetch(&self, id: ObjectId, here: &str) -> crate::error::Result<Arc<Vec<u8>>> {
        self.get(id).ok_or_else(|| {
            Error::new(
                ErrorKind::ObjectLost,
                format!("object {id} is not stored on the node at {here}"),
            )
        })
    }

    /// Whether this node holds `id`.
    pub fn contains(&self, id: ObjectId) -> bool {
        self.objects.lock().contains_key(&id)
    }

    /// Forgets `id`; returns whether it was there.
    pub fn remove(&self, id: ObjectId) -> bool {
        self.objects.lock().remove(&id).is_some()
    }

    /// How many objects the store holds and their size in bytes.
    pub fn usage(&self) -> (u64, u64) {
        let objects = self.objects.lock();
        let bytes = objects.values().map(|v| v.len() as u64).sum();
        (objects.len() as u64, bytes)
    }

    /// How many objects the store holds.
    pub fn len(&self) -> usize {
        self.objects.lock().len()
    }

    /// Whether the store is empty.
    pub fn is_empty(&self) -> bool {
        self.objects.lock().is_empty()
    }
}
