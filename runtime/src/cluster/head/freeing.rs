//! Freeing objects by ownership: an object goes once its owner released it, no task that may
//! still run takes it, and its id never escaped into a value; its producer's lineage goes with
//! the last of its outputs.

use super::objects::{ObjState, ObjectEntry};
use super::scheduler::{ConnId, Scheduler};
use crate::cluster::proto::{Message, TaskId};
use crate::object::ObjectId;
use crate::runtime::NodeId;

impl Scheduler {
    /// `conn` released the objects it owns among `ids`: free each as soon as nothing needs it.
    pub fn release(&mut self, conn: ConnId, ids: &[ObjectId]) {
        for id in ids {
            match self.objects.get_mut(id) {
                Some(o) if o.owner == Some(conn) => {
                    o.released = true;
                    self.try_free(*id);
                }
                Some(_) => {
                    tracing::debug!(object = %id, "a release from a connection that does not own the object; ignored")
                }
                None => {}
            }
        }
    }

    /// The ids escaped inside values: never free them.
    pub fn escape(&mut self, ids: &[ObjectId]) {
        for id in ids {
            self.objects
                .entry(*id)
                .or_insert_with(|| ObjectEntry::pending(None))
                .escaped = true;
        }
    }

    /// Makes the task's arguments count it (while it may run) or not (once it ended), and
    /// frees the arguments nothing needs any more.
    pub(super) fn sync_pins(&mut self, task_id: TaskId) {
        let Some(t) = self.tasks.get_mut(&task_id) else {
            return;
        };
        let want = t.live();
        if t.pinned == want {
            return;
        }
        t.pinned = want;
        let args = t.ref_args();
        for id in &args {
            if let Some(o) = self.objects.get_mut(id) {
                o.pins = if want {
                    o.pins + 1
                } else {
                    o.pins.saturating_sub(1)
                };
            }
        }
        if !want {
            for id in args {
                self.try_free(id);
            }
        }
    }

    /// Frees `id` if its owner released it, no task needs it, its id never escaped and it is
    /// not being made: forgets it, deletes its bytes and drops its producer's lineage once no
    /// output of that task is left.
    pub(super) fn try_free(&mut self, id: ObjectId) {
        let Some(o) = self.objects.get(&id) else {
            return;
        };
        if !o.released || o.escaped || o.pins > 0 || self.waiting_on.contains_key(&id) {
            return;
        }
        let producer = o.producer;
        if matches!(o.state, ObjState::Pending)
            && producer
                .and_then(|p| self.tasks.get(&p))
                .is_some_and(|t| t.live())
        {
            return;
        }
        let Some(o) = self.objects.remove(&id) else {
            return;
        };
        tracing::trace!(object = %id, "object freed");
        if let ObjState::Ready { node, .. } = o.state {
            self.delete_on(node, vec![id]);
        }
        let Some(p) = producer else { return };
        let done = self.tasks.get(&p).is_some_and(|t| {
            !t.live()
                && t.task
                    .outputs
                    .iter()
                    .all(|out| !self.objects.contains_key(out))
        });
        if done {
            self.tasks.remove(&p);
        }
    }

    /// Deletes the bytes of `ids` on `node` (the head's own store directly).
    pub(super) fn delete_on(&mut self, node: NodeId, ids: Vec<ObjectId>) {
        if ids.is_empty() {
            return;
        }
        if node == self.head_node {
            for id in ids {
                self.store.remove(id);
            }
            return;
        }
        self.send_to(node, Message::DeleteObjects { ids });
    }
}
