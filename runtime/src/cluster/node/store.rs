//! A node's object store: the encoded values of the objects this node produced or was given,
//! by id. The head's node and every other node use the same store; peers, drivers and the
//! node's own tasks read from it with [`Message::FetchObject`](crate::cluster::proto::Message).
//!
//! Values are immutable once stored and shared behind an `Arc`, so readers never copy them
//! under the lock. Large values may live in the node's shared-memory [`Arena`], written there
//! by the process that made them.

use std::fmt;
use std::ops::Deref;
use std::sync::Arc;

use parking_lot::Mutex;

use crate::cluster::node::arena::{Arena, Block};
use crate::error::{Error, ErrorKind};
use crate::object::ObjectId;

/// One stored value's encoded bytes.
#[derive(Debug)]
pub enum Value {
    /// On this process's heap.
    Heap(Vec<u8>),
    /// In a block of the node's arena (freed with the value).
    Shared(Block),
}

impl Deref for Value {
    type Target = [u8];

    fn deref(&self) -> &[u8] {
        match self {
            Value::Heap(bytes) => bytes,
            Value::Shared(block) => block.bytes(),
        }
    }
}

/// The encoded values held by one node.
#[derive(Default)]
pub struct ObjectStore {
    objects: Mutex<crate::cluster::IdMap<ObjectId, Arc<Value>>>,
    arena: Option<Arc<Arena>>,
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
    /// An empty store with no arena: every value on the heap.
    pub fn new() -> ObjectStore {
        ObjectStore::default()
    }

    /// An empty store with a shared-memory arena of `capacity` bytes for large values, or
    /// without one (logged) where the system offers none.
    pub fn with_arena(capacity: u64) -> ObjectStore {
        let arena = Arena::create(capacity)
            .inspect_err(|e| tracing::warn!("large objects go over sockets: {e}"))
            .ok();
        ObjectStore {
            objects: Mutex::default(),
            arena,
        }
    }

    /// The node's arena, if it has one.
    pub fn arena(&self) -> Option<&Arc<Arena>> {
        self.arena.as_ref()
    }

    /// Stores `bytes` under `id` (a second put of the same id replaces the value: a task that
    /// ran again produces the same object) and returns the shared value.
    pub fn put(&self, id: ObjectId, bytes: Vec<u8>) -> Arc<Value> {
        self.insert(id, Value::Heap(bytes))
    }

    /// Stores a sealed arena block under `id`.
    pub fn put_block(&self, id: ObjectId, block: Block) -> Arc<Value> {
        self.insert(id, Value::Shared(block))
    }

    fn insert(&self, id: ObjectId, value: Value) -> Arc<Value> {
        let value = Arc::new(value);
        // The replaced value (if any) is dropped after the lock: freeing a block takes the
        // arena's lock.
        let old = self.objects.lock().insert(id, value.clone());
        drop(old);
        value
    }

    /// The value of `id`, if this node holds it.
    pub fn get(&self, id: ObjectId) -> Option<Arc<Value>> {
        self.objects.lock().get(&id).cloned()
    }

    /// The value of `id`, or an [`ErrorKind::ObjectLost`] error naming `here`.
    pub fn fetch(&self, id: ObjectId, here: &str) -> crate::error::Result<Arc<Value>> {
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
        let old = self.objects.lock().remove(&id);
        old.is_some()
    }

    /// Forgets every object; returns how many there were.
    pub fn clear(&self) -> usize {
        let old = std::mem::take(&mut *self.objects.lock());
        // Dropped after the lock: freeing a block takes the arena's lock.
        old.len()
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
