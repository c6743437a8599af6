//! One worker process as its node talks to it: a request and its answer, with the values
//! that go in pieces or through the node's arena.

use std::fmt;
use std::sync::Arc;

use crate::cluster::node::arena::{Arena, Block, Lent};
use crate::cluster::output::Capture;
use crate::cluster::proto::{Connection, JobId, Message};
use crate::error::{Error, ErrorKind, Result};

/// A worker process connected to its node, ready for one task at a time.
pub struct Worker {
    pub(super) pid: u32,
    pub(super) job: JobId,
    pub(super) conn: Connection,
    /// The process mapped the node's arena: large arguments can go there.
    pub(super) shared_memory: bool,
    /// Its stdout and stderr, as the node reads them.
    pub(super) output: Arc<Capture>,
}

impl fmt::Debug for Worker {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Worker")
            .field("pid", &self.pid)
            .field("job", &self.job)
            .finish()
    }
}

impl Worker {
    /// The worker's process id.
    pub fn pid(&self) -> u32 {
        self.pid
    }

    /// Whether the process mapped the node's arena.
    pub fn shares_memory(&self) -> bool {
        self.shared_memory
    }

    /// The worker runs `name` (a function's or an actor class's stable name) from now on:
    /// what it prints goes out under that name. Call it before sending the work.
    pub fn label(&self, name: &str) {
        self.output.label(name);
    }

    /// The process id and the connection, for a worker that serves one actor from now on
    /// (it never goes back to the pool: end it with [`WorkerPool::kill`](super::WorkerPool::kill)).
    pub fn into_parts(self) -> (u32, Connection) {
        (self.pid, self.conn)
    }

    /// Sends `msg` to the worker and waits (without limit: tasks may run long) for its answer.
    pub async fn request(&mut self, msg: &Message) -> Result<Message> {
        self.conn.send(msg).await?;
        self.conn.recv().await
    }

    /// Sends `shell` with `values` in its value slots, large ones in pieces (see
    /// [`FrameWriter::feed_with_values`](crate::cluster::proto::FrameWriter::feed_with_values)), and
    /// waits (without limit) for the answer with the values that came in pieces before it.
    /// `values` are dropped once sent, so a long task does not keep them alive here. An error
    /// of kind [`ErrorKind::Network`] means the process is gone; any other leaves the
    /// connection unusable (discard the worker).
    ///
    /// Large outputs the worker writes into `arena` come back as blocks, by output slot (their
    /// slots in the answer are empty).
    pub async fn request_with_values<V: AsRef<[u8]>>(
        &mut self,
        shell: &Message,
        values: Vec<V>,
        arena: Option<&Arc<Arena>>,
    ) -> Result<(Message, Vec<(u32, Block)>)> {
        self.conn.send_with_values(shell, &values).await?;
        drop(values);
        self.answer(arena).await
    }

    /// [`request_with_values`](Self::request_with_values) for arguments already in the
    /// node's arena: `shared` (a [`Message::SharedValue`]) goes first and `shell` carries one
    /// empty argument slot. The caller keeps the arena bytes until this returns.
    pub async fn request_shared(
        &mut self,
        shared: &Message,
        shell: &Message,
        arena: Option<&Arc<Arena>>,
    ) -> Result<(Message, Vec<(u32, Block)>)> {
        self.conn.feed(shared).await?;
        self.conn.send_with_values(shell, &[&[][..]]).await?;
        self.answer(arena).await
    }

    /// Reads the worker's answer to a request. On the way, gives it blocks of `arena` for its
    /// large outputs ([`Message::AllocValue`]); returns the answer with the blocks its
    /// [`Message::SharedValue`]s filled, by output slot.
    async fn answer(&mut self, arena: Option<&Arc<Arena>>) -> Result<(Message, Vec<(u32, Block)>)> {
        // Kept a while if the answer breaks off: the worker may still be writing.
        let mut given: Lent<u32> = Lent::default();
        let mut filled = Vec::new();
        loop {
            match self.conn.recv_values().await? {
                Message::AllocValue {
                    task_id,
                    index,
                    len,
                } => {
                    // A second block for one output gets none: the first stays lent.
                    let block = if given.is_lent(&index) {
                        None
                    } else {
                        arena.and_then(|a| a.alloc(len))
                    };
                    let offset = block.as_ref().map(Block::offset);
                    if let Some(block) = block {
                        given.lend(index, block);
                    }
                    let answer = Message::ValueAllocated {
                        task_id,
                        index,
                        offset,
                    };
                    self.conn.send(&answer).await?;
                }
                Message::SharedValue {
                    index, offset, len, ..
                } => match given.take(&index) {
                    Some(block) if block.offset() == offset && block.len() == len => {
                        filled.push((index, block));
                    }
                    _ => {
                        return Err(Error::new(
                            ErrorKind::Protocol,
                            format!(
                                "worker process {} named output #{index} at {offset}+{len}, not the block it was given",
                                self.pid
                            ),
                        ))
                    }
                },
                answer => return Ok((answer, filled)),
            }
        }
    }
}
