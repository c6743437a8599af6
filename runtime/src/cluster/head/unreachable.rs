//! Objects whose holder does not answer. A node fetching a task's argument, or a program
//! reading a value, reports [`Message::ObjectUnreachable`] when the node said to hold it did
//! not answer in bounded time (frozen, overloaded, or cut off but not yet declared dead). An
//! object a task made is then counted lost there, so the next reader (the retried task, or
//! the program watching it again) has it rebuilt from its lineage elsewhere instead of
//! waiting for that node; an object a program put cannot be rebuilt and stays where it is, so
//! its readers retry a bounded number of times and then fail with the reason.
//!
//! [`Message::ObjectUnreachable`]: crate::cluster::proto::Message::ObjectUnreachable

use super::objects::ObjState;
use super::scheduler::Scheduler;
use crate::object::ObjectId;

impl Scheduler {
    /// `id` could not be fetched from `location`: lose it there if its task can make it again.
    pub fn object_unreachable(&mut self, id: ObjectId, location: &str) {
        let Some(o) = self.objects.get(&id) else {
            return;
        };
        let ObjState::Ready { node, address, .. } = &o.state else {
            return;
        };
        if address != location {
            return; // it moved (was rebuilt) since
        }
        let node = *node;
        let rebuildable = o
            .producer
            .and_then(|p| self.tasks.get(&p))
            .is_some_and(|t| t.actor.is_none());
        if !rebuildable {
            tracing::info!(object = %id, %location, "its node did not answer, and it cannot be rebuilt");
            return;
        }
        tracing::warn!(object = %id, %location, "its node did not answer: rebuilding it elsewhere");
        if let Some(o) = self.objects.get_mut(&id) {
            o.state = ObjState::Lost;
        }
        // Its copy there is of no use any more (if that node comes back to its senses).
        self.delete_on(node, vec![id]);
    }
}
