//! Large puts through the head node's shared-memory arena.
//!
//! A program on the head's host maps the arena once (the head names it when the job
//! registers). A large `put` then asks the head for a block, encodes the value straight into
//! it and seals it: the value is copied once, by the encoder, and never crosses a socket. A
//! program that cannot map the arena (another host, another pid namespace), or whose put finds
//! no room, sends the value over the connection instead.

use std::sync::Arc;

use super::reader::head_timeout;
use super::Client;
use crate::cluster::node::arena::{ArenaLocation, ArenaView, ARENA_MIN_VALUE};
use crate::cluster::proto::Message;
use crate::codec;
use crate::error::Result;
use crate::object::{ObjectId, Slot};

/// Where the head's answer to an [`Message::AllocObject`] goes.
pub(super) type AllocReply = std::sync::mpsc::SyncSender<Option<u64>>;

/// Maps the head's arena when this process is on its host; logs why not otherwise.
/// `RAYKIT_SHARED_MEMORY=0` keeps this process off it (large puts then go over the
/// connection).
pub(super) fn attach(location: Option<&ArenaLocation>) -> Option<ArenaView> {
    let location = location?;
    if std::env::var("RAYKIT_SHARED_MEMORY").is_ok_and(|v| v == "0") {
        return None;
    }
    ArenaView::attach(location)
        .inspect_err(|e| tracing::debug!("large puts go over the connection: {e}"))
        .ok()
}

impl Client {
    /// The head's answer about the block for `id`.
    pub(super) fn allocated(&self, id: ObjectId, offset: Option<u64>) {
        if let Some(reply) = self.allocations.lock().remove(&id) {
            let _ = reply.try_send(offset);
        }
    }

    /// Puts `value` (whose encoding takes `len` bytes) into the arena as `slot`'s object.
    /// `Ok(false)`: this process has no arena, or the head found no room; the caller sends the
    /// value instead.
    fn put_shared<T: serde::Serialize>(
        &self,
        value: &T,
        measured: codec::Measured,
        slot: &Arc<Slot>,
    ) -> Result<bool> {
        let len = measured.len();
        let Some(view) = &self.arena else {
            return Ok(false);
        };
        let id = slot.id();
        let (reply, answer) = std::sync::mpsc::sync_channel(1);
        self.allocations.lock().insert(id, reply);
        let offset = match self.send(Message::AllocObject {
            id,
            len: len as u64,
        }) {
            // A lost connection drops the reply's sender: the wait ends at once.
            Ok(()) => answer.recv_timeout(head_timeout()),
            Err(e) => {
                self.allocations.lock().remove(&id);
                return Err(e);
            }
        };
        let offset = match offset {
            Ok(Some(offset)) => offset,
            Ok(None) => return Ok(false),
            Err(_) => {
                self.allocations.lock().remove(&id);
                return Err(self.lost_error());
            }
        };
        // SAFETY: the head allocated these `len` bytes to this put alone, and nothing reads
        // them before the seal below.
        let encoded = unsafe { view.block_mut(offset, len) }
            .and_then(|block| codec::encode_into(value, measured, block));
        // Sealed even when encoding failed, so the head does not keep the block: the slot then
        // fails, and its drop releases the object.
        self.await_object(slot);
        self.send(Message::SealObject { id })?;
        encoded.map(|()| true)
    }
}

/// On a cluster whose head shares this host: puts a large `value` through the arena into
/// `slot`. Returns whether it did (`false`: small value, no arena, or no room).
pub(super) fn try_put<T>(client: &Client, value: &T, slot: &Arc<Slot>) -> bool
where
    T: serde::Serialize + serde::de::DeserializeOwned + 'static,
{
    if client.arena.is_none() {
        return false;
    }
    let Ok(measured) = codec::measure(value) else {
        return false;
    };
    if measured.len() < ARENA_MIN_VALUE {
        return false;
    }
    match client.put_shared(value, measured, slot) {
        Ok(done) => done,
        Err(e) => {
            client.awaited.lock().remove(&slot.id());
            slot.fail(e);
            true
        }
    }
}
