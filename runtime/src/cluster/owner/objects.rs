//! Objects on the cluster: `put` values stored on the head's node, slots for objects known by
//! id, their values fetched straight from the nodes that hold them (asking the head again when
//! a node does not answer), and the head told when a ref is released or escapes.

use std::sync::Arc;

use tokio::sync::mpsc;

use super::writer::Outgoing;
use super::{current, shared, Client, CLIENT};
use crate::cluster::proto::{Fetched, Message, OBJECT_CHUNK};
use crate::error::{Error, ErrorKind, Result};
use crate::object::{directory, DecodeFn, ObjectId, Slot};

impl Client {
    pub(super) fn await_object(&self, slot: &Arc<Slot>) {
        self.awaited.lock().insert(slot.id(), Arc::downgrade(slot));
    }

    pub(super) fn settle(&self, id: ObjectId, fill: impl FnOnce(&Slot)) {
        let slot = self.awaited.lock().remove(&id).and_then(|w| w.upgrade());
        if let Some(slot) = slot {
            fill(&slot);
        }
    }

    async fn fetch(&self, id: ObjectId, location: &str) -> Result<Vec<u8>> {
        match self
            .peers
            .fetch_into(id, location, |_| None::<Vec<u8>>)
            .await?
        {
            Fetched::Bytes(bytes) | Fetched::Placed(bytes) => Ok(bytes),
        }
    }

    /// The node at `location` did not answer a fetch of `slot`'s object. Unless that happened
    /// [`UNREACHABLE_TRIES`] times already, tells the head (which rebuilds the object elsewhere
    /// when it can) and waits for where the object is now; returns whether it does.
    fn refetch(&self, slot: &Arc<Slot>, location: &str) -> bool {
        let id = slot.id();
        {
            let mut failures = self.unreachable.lock();
            let n = failures.entry(id).or_insert(0);
            *n += 1;
            if *n > UNREACHABLE_TRIES {
                failures.remove(&id);
                return false;
            }
        }
        if !slot.unlocate() {
            return false;
        }
        self.await_object(slot);
        let report = Message::ObjectUnreachable {
            id,
            location: location.to_owned(),
        };
        if self
            .send(report)
            .and(self.send(Message::WatchObject { id }))
            .is_err()
        {
            self.awaited.lock().remove(&id);
            return false;
        }
        true
    }
}

/// How many times a program asks the head again for an object whose node did not answer,
/// before the read fails.
const UNREACHABLE_TRIES: u32 = 3;

/// Stores `value` on the head's node and returns its slot, already holding the encoded value
/// for local readers.
pub(crate) fn put<T>(client: &Client, value: &T, decoder: DecodeFn) -> Arc<Slot>
where
    T: serde::Serialize + serde::de::DeserializeOwned + 'static,
{
    let slot = Slot::pending_decodable(ObjectId::next(), Some(decoder));
    slot.set_owned_elsewhere();
    if shared::try_put(client, value, &slot) {
        return slot;
    }
    match crate::codec::encode(value) {
        Ok(bytes) if bytes.len() > OBJECT_CHUNK => {
            client.puts.take(bytes.len() as u64, &client.lost);
            let put = Outgoing::Put {
                slot: slot.clone(),
                bytes,
            };
            if let Err(mpsc::error::SendError(Outgoing::Put { slot, bytes })) =
                client.outbox.send(put)
            {
                client.puts.give(bytes.len() as u64);
                slot.fail(client.lost_error());
            }
        }
        Ok(bytes) => {
            let sent = client.send(Message::PutObject {
                id: slot.id(),
                bytes: bytes.clone(),
            });
            match sent {
                Ok(()) => slot.fill_bytes(bytes),
                Err(e) => slot.fail(e),
            }
        }
        Err(e) => slot.fail(e),
    }
    slot
}

/// A slot for an object known by id only (a ref that arrived inside a value), filled when the
/// head says where it is.
pub(crate) fn watch(client: &Client, id: ObjectId, decoder: DecodeFn) -> Arc<Slot> {
    let slot = Slot::pending_decodable(id, Some(decoder));
    directory::export(&slot);
    client.await_object(&slot);
    if let Err(e) = client.send(Message::WatchObject { id }) {
        slot.fail(e);
    }
    slot
}

/// The owner's last ref to `id` is gone (its slot dropped): tell the head. Never starts a
/// runtime or blocks; does nothing when this process is not on a cluster.
pub(crate) fn release(id: ObjectId) {
    let Some(client) = CLIENT.lock().upgrade() else {
        return;
    };
    client.awaited.lock().remove(&id);
    let _ = client.send(Message::ReleaseObjects { ids: vec![id] });
}

/// A ref to `id` was serialized inside a value: tell the head never to free it. Does nothing
/// when this process is not on a cluster.
pub(crate) fn escaped(id: ObjectId) {
    let Some(client) = CLIENT.lock().upgrade() else {
        return;
    };
    let _ = client.send(Message::EscapedObjects { ids: vec![id] });
}

/// Fetches a remote object's value from the node at `location` into `slot`.
pub(crate) fn fetch_into(slot: Arc<Slot>, location: Arc<str>) {
    let Some(client) = current() else {
        slot.fail(Error::new(
            ErrorKind::ObjectLost,
            format!(
                "object {} lives on a cluster node this runtime is not connected to",
                slot.id()
            ),
        ));
        return;
    };
    let handle = client.handle.clone();
    handle.spawn(async move {
        match client.fetch(slot.id(), &location).await {
            Ok(bytes) => {
                client.unreachable.lock().remove(&slot.id());
                slot.fill_bytes(bytes)
            }
            Err(e) if e.kind() == ErrorKind::Network && client.refetch(&slot, &location) => {
                tracing::info!(object = %slot.id(), %location, "its node did not answer: asking the head again: {e}");
            }
            Err(e) => slot.fail(Error::with_source(
                ErrorKind::ObjectLost,
                format!(
                    "cannot fetch object {} from node {location}: {e}",
                    slot.id()
                ),
                e,
            )),
        }
    });
}
