//! The values a node's tasks and actor calls take and make: arguments fetched from this
//! node's store or from the node holding them, handed to a worker over its connection or in
//! the node's arena (never copied out of the store), and outputs moved into the store as they
//! came.

use std::sync::Arc;

use super::Executor;
use crate::cluster::node::arena::{Block, ARENA_MIN_VALUE};
use crate::cluster::node::store::Value;
use crate::cluster::node::workers::Worker;
use crate::cluster::proto::{
    Fetched, Message, StoredObject, TaskId, TaskOutcome, WireArg, INLINE_MAX,
};
use crate::error::{Error, ErrorKind, Result};
use crate::object::ObjectId;

/// An encoded argument on its way to a worker: as it came with the task, or shared with the
/// store (never copied out of it: large values go to the worker in slices).
pub(super) enum ArgBytes {
    Inline(Vec<u8>),
    Stored(Arc<Value>),
}

/// Arguments a worker reads from the node's arena: the [`Message::SharedValue`] that names
/// them, and what keeps the bytes unchanged until the worker answers (the stored value itself,
/// or a block the arguments were copied into).
pub(crate) struct SharedArgs {
    pub(super) message: Message,
    _bytes: Arc<Value>,
}

impl AsRef<[u8]> for ArgBytes {
    fn as_ref(&self) -> &[u8] {
        match self {
            ArgBytes::Inline(bytes) => bytes,
            ArgBytes::Stored(bytes) => bytes,
        }
    }
}

impl Executor {
    /// The arguments `args` of `task_id` as a worker that `shares` this node's arena reads
    /// them: from the arena when they are large. A single argument already there is not copied
    /// (a value fetched from another node, or made on this one, in the arena); others are
    /// copied once into a fresh block. `None`: they go over the connection.
    pub(super) fn share_args(
        &self,
        shares: bool,
        task_id: TaskId,
        args: &[ArgBytes],
    ) -> Option<SharedArgs> {
        if !shares {
            return None;
        }
        let arena = self.store.arena()?;
        let len: usize = args.iter().map(|a| a.as_ref().len()).sum();
        if len < ARENA_MIN_VALUE {
            return None;
        }
        let bytes = match args {
            [ArgBytes::Stored(value)] if matches!(**value, Value::Shared(_)) => value.clone(),
            _ => {
                let mut block = arena.alloc(len as u64)?;
                let mut rest = block.bytes_mut();
                for arg in args {
                    let (head, tail) = rest.split_at_mut(arg.as_ref().len());
                    head.copy_from_slice(arg.as_ref());
                    rest = tail;
                }
                Arc::new(Value::Shared(block))
            }
        };
        let Value::Shared(block) = &*bytes else {
            return None;
        };
        Some(SharedArgs {
            message: Message::SharedValue {
                task_id,
                index: 0,
                offset: block.offset(),
                len: len as u64,
            },
            _bytes: bytes,
        })
    }

    /// Sends `shell` with `args` to `worker` (from the arena when it can read them there) and
    /// waits for the answer, with the arena blocks the worker wrote large outputs into.
    pub(super) async fn request(
        &self,
        worker: &mut Worker,
        task_id: TaskId,
        shell: &Message,
        args: Vec<ArgBytes>,
    ) -> Result<(Message, Vec<(u32, Block)>)> {
        let arena = self.store.arena();
        match self.share_args(worker.shares_memory(), task_id, &args) {
            Some(shared) => {
                drop(args);
                let answer = worker.request_shared(&shared.message, shell, arena).await;
                drop(shared);
                answer
            }
            None => worker.request_with_values(shell, args, arena).await,
        }
    }

    /// The encoded arguments of `function`: values as they came, refs fetched from this
    /// node's store or from the node at their location, shared with the store (not copied).
    pub(super) async fn fetch_args(
        &self,
        function: &str,
        args: Vec<WireArg>,
        locations: &[Option<String>],
    ) -> Result<Vec<ArgBytes>> {
        let mut out = Vec::with_capacity(args.len());
        for (i, arg) in args.into_iter().enumerate() {
            match arg {
                WireArg::Value(bytes) => out.push(ArgBytes::Inline(bytes)),
                WireArg::Ref(id) => {
                    let at = locations.get(i).cloned().flatten();
                    match self.fetch_object(id, at.as_deref()).await {
                        Ok(bytes) => out.push(ArgBytes::Stored(bytes)),
                        Err(e) => {
                            return Err(Error::with_source(
                                e.kind(),
                                format!(
                                    "`{function}` could not fetch its argument #{}: {e}",
                                    i + 1
                                ),
                                e,
                            ))
                        }
                    }
                }
            }
        }
        Ok(out)
    }

    /// Stores a call's encoded outputs as the objects `ids` (each buffer moves into the store as
    /// it is, and the outputs the worker wrote into the arena, `shared` by slot, stay there),
    /// or reports its error.
    pub(super) fn store_outputs(
        &self,
        function: &str,
        ids: &[ObjectId],
        result: Result<Vec<Vec<u8>>>,
        mut shared: Vec<(u32, Block)>,
    ) -> TaskOutcome {
        match result {
            Ok(outputs) if outputs.len() == ids.len() => {
                let stored = ids
                    .iter()
                    .zip(outputs)
                    .enumerate()
                    .map(|(index, (id, bytes))| {
                        let block = shared
                            .iter()
                            .position(|(i, _)| *i as usize == index)
                            .map(|at| shared.swap_remove(at).1);
                        if let Some(block) = block {
                            let size = block.len();
                            self.store.put_block(*id, block);
                            return StoredObject {
                                id: *id,
                                size,
                                inline: None,
                            };
                        }
                        let size = bytes.len() as u64;
                        let inline = (bytes.len() < INLINE_MAX).then(|| bytes.clone());
                        self.store.put(*id, bytes);
                        StoredObject {
                            id: *id,
                            size,
                            inline,
                        }
                    })
                    .collect();
                TaskOutcome::Stored(stored)
            }
            Ok(outputs) => TaskOutcome::Failed {
                error: Error::new(
                    ErrorKind::VersionSkew,
                    format!(
                        "`{function}` returned {} values where the caller expects {}",
                        outputs.len(),
                        ids.len()
                    ),
                ),
                retryable: false,
            },
            Err(error) => TaskOutcome::Failed {
                error,
                retryable: false,
            },
        }
    }

    /// The encoded value of `id`: from this node's store, else from the node at `location`.
    pub async fn fetch_object(&self, id: ObjectId, location: Option<&str>) -> Result<Arc<Value>> {
        if let Some(bytes) = self.store.get(id) {
            return Ok(bytes);
        }
        let Some(location) = location else {
            return Err(Error::new(
                ErrorKind::ObjectLost,
                format!("object {id} is not on this node and its location is unknown"),
            ));
        };
        // A large value goes straight into a block of this node's arena: memory already
        // mapped once freed blocks are reused, and a worker can read it there.
        let arena = self.store.arena();
        let place = |total: u64| {
            if total < ARENA_MIN_VALUE as u64 {
                return None;
            }
            arena.and_then(|a| a.alloc(total))
        };
        match self.peers.fetch_into(id, location, place).await {
            Ok(Fetched::Bytes(bytes)) => Ok(Arc::new(Value::Heap(bytes))),
            Ok(Fetched::Placed(block)) => Ok(Arc::new(Value::Shared(block))),
            Err(e) => {
                if e.kind() == ErrorKind::Network {
                    // The head hears it before this task's end: it rebuilds the object
                    // elsewhere when it can, and the retried task reads it from there.
                    self.report(
                        self.incarnation(),
                        Message::ObjectUnreachable {
                            id,
                            location: location.to_owned(),
                        },
                    );
                }
                Err(e)
            }
        }
    }
}
