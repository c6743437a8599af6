//! What goes to the head, and the task that writes it: messages and large puts queue in the
//! client's outbox, and every write carries as many of them as are queued, releases gathered
//! last. Large puts wait for room in a budget of bytes in flight.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use parking_lot::Mutex;
use tokio::sync::mpsc;

use crate::cluster::proto::{FrameWriter, Message};
use crate::error::Result;
use crate::object::{ObjectId, Slot};

/// How many bytes of large puts may wait to be written to the head at once: a program that
/// puts faster than the connection carries them waits in `put` instead of queueing copies
/// without bound.
const PUTS_IN_FLIGHT: u64 = 256 << 20;

/// The bytes of large puts on their way to the head.
#[derive(Default)]
pub(super) struct PutBudget {
    bytes: Mutex<u64>,
    written: parking_lot::Condvar,
}

impl PutBudget {
    /// Waits until `n` more bytes fit (a value larger than the budget goes alone), or the
    /// connection is lost, then counts them.
    pub(super) fn take(&self, n: u64, lost: &AtomicBool) {
        let mut bytes = self.bytes.lock();
        while *bytes > 0 && *bytes + n > PUTS_IN_FLIGHT && !lost.load(Ordering::Acquire) {
            self.written
                .wait_for(&mut bytes, Duration::from_millis(100));
        }
        *bytes += n;
    }

    /// `n` bytes were written (or will never be).
    pub(super) fn give(&self, n: u64) {
        let mut bytes = self.bytes.lock();
        *bytes = bytes.saturating_sub(n);
        self.written.notify_all();
    }
}

/// What goes to the head.
pub(super) enum Outgoing {
    /// A message.
    Message(Message),
    /// A large put: its value is sent in pieces sliced from `bytes`, which then become the
    /// slot's value (one encoded copy in this process, not one per step).
    Put { slot: Arc<Slot>, bytes: Vec<u8> },
}

/// One write's worth of messages to the head. Releases are gathered into one message sent
/// after everything else of the write: sending a release later than it was made is always
/// safe (the head frees nothing sooner), while the submissions and escape reports before it
/// must reach the head first. Consecutive escape reports are merged, in place.
#[derive(Default)]
struct Batch {
    released: Vec<ObjectId>,
    escaped: Vec<ObjectId>,
}

impl Batch {
    async fn add(
        &mut self,
        writer: &mut FrameWriter,
        item: Outgoing,
        puts: &PutBudget,
    ) -> Result<()> {
        match item {
            Outgoing::Message(Message::ReleaseObjects { ids }) => self.released.extend(ids),
            // A large put asks for arena room: the releases gathered so far go first, so the
            // blocks they free can take it (everything before them is already fed).
            Outgoing::Message(alloc @ Message::AllocObject { .. }) => {
                self.finish(writer).await?;
                writer.feed(&alloc).await?;
            }
            Outgoing::Message(Message::EscapedObjects { ids }) => self.escaped.extend(ids),
            Outgoing::Message(other) => {
                self.flush_escaped(writer).await?;
                writer.feed(&other).await?;
            }
            Outgoing::Put { slot, bytes } => {
                let written = self.flush_escaped(writer).await;
                let written = match written {
                    Ok(()) => writer.feed_object_chunks(slot.id(), &bytes).await,
                    Err(e) => Err(e),
                };
                puts.give(bytes.len() as u64);
                match written {
                    Ok(()) => slot.fill_bytes(bytes),
                    Err(e) => {
                        slot.fail(e.clone());
                        return Err(e);
                    }
                }
            }
        }
        Ok(())
    }

    async fn flush_escaped(&mut self, writer: &mut FrameWriter) -> Result<()> {
        if !self.escaped.is_empty() {
            let ids = std::mem::take(&mut self.escaped);
            writer.feed(&Message::EscapedObjects { ids }).await?;
        }
        Ok(())
    }

    async fn finish(&mut self, writer: &mut FrameWriter) -> Result<()> {
        self.flush_escaped(writer).await?;
        if !self.released.is_empty() {
            let ids = std::mem::take(&mut self.released);
            writer.feed(&Message::ReleaseObjects { ids }).await?;
        }
        Ok(())
    }
}

/// Writes what is queued for the head until the outbox closes or a write fails (then fails the
/// puts still queued). Many small messages share one write: feed everything queued, then flush
/// once.
pub(super) async fn write_head(
    mut rx: mpsc::UnboundedReceiver<Outgoing>,
    mut writer: FrameWriter,
    puts: Arc<PutBudget>,
) {
    while let Some(msg) = rx.recv().await {
        let mut batch = Batch::default();
        let mut result = batch.add(&mut writer, msg, &puts).await;
        while result.is_ok() {
            match rx.try_recv() {
                Ok(more) => result = batch.add(&mut writer, more, &puts).await,
                Err(_) => break,
            }
        }
        if let Err(e) = result
            .and(batch.finish(&mut writer).await)
            .and(writer.flush().await)
        {
            tracing::warn!("lost the connection to the head: {e}");
            // Puts still queued will never be stored: their readers must not wait.
            rx.close();
            while let Ok(item) = rx.try_recv() {
                if let Outgoing::Put { slot, bytes } = item {
                    puts.give(bytes.len() as u64);
                    slot.fail(e.clone());
                }
            }
            return;
        }
    }
}
