//! Ids nobody made. A task's argument, an actor call's argument or a watched ref may name an
//! object that this cluster never had (a forged or corrupted id) or has already freed. Such an
//! id is not failed at once: a ref can reach the head on one connection just before the
//! submission that makes it arrives on another (a worker's nested submission and its task's
//! result travel different ways). An id that still has no producer and no owner after
//! [`UNKNOWN_GRACE`] fails everything waiting for it with [`ErrorKind::ObjectLost`].

use std::time::{Duration, Instant};

use super::objects::{ObjState, ObjectEntry};
use super::scheduler::Scheduler;
use crate::actor::ActorId;
use crate::cluster::proto::TaskId;
use crate::error::{Error, ErrorKind};
use crate::object::ObjectId;

/// The error of a call of an actor the head never heard of.
pub(super) fn unknown_actor_error(actor_id: ActorId) -> Error {
    Error::new(
        ErrorKind::ActorDied,
        format!(
            "actor {actor_id} is unknown to this cluster: no program created it (a handle from \
             another cluster or run?)"
        ),
    )
}

/// How long an object id may stay unknown before what waits for it fails.
pub const UNKNOWN_GRACE: Duration = Duration::from_secs(10);

impl Scheduler {
    /// The entry of `id`, made pending (and timed as unknown) when the head has none.
    pub(super) fn entry_or_unknown(&mut self, id: ObjectId) -> &mut ObjectEntry {
        if !self.objects.contains_key(&id) {
            self.unknown.push_back((Instant::now(), id));
        }
        self.objects
            .entry(id)
            .or_insert_with(|| ObjectEntry::pending(None))
    }

    /// A call of `actor_id`, which the head has not heard of: it waits for the actor's
    /// creation, at most [`UNKNOWN_GRACE`] after the actor's first such call.
    pub(super) fn await_unknown_actor(&mut self, actor_id: ActorId, task_id: TaskId) {
        let calls = self.unknown_actors.entry(actor_id).or_default();
        if calls.is_empty() {
            self.unknown_actors_since
                .push_back((Instant::now(), actor_id));
        }
        calls.push(task_id);
    }

    /// Fails the objects named [`UNKNOWN_GRACE`] or longer before `now` that nobody has made
    /// or put since, and what waits for them; and the calls of actors still unknown that long
    /// after their first call.
    pub fn expire_unknown(&mut self, now: Instant) {
        while let Some(&(since, actor_id)) = self.unknown_actors_since.front() {
            if now.saturating_duration_since(since) < UNKNOWN_GRACE {
                break;
            }
            self.unknown_actors_since.pop_front();
            for task_id in self.unknown_actors.remove(&actor_id).unwrap_or_default() {
                self.fail_task(task_id, unknown_actor_error(actor_id));
            }
        }
        while let Some(&(since, id)) = self.unknown.front() {
            if now.saturating_duration_since(since) < UNKNOWN_GRACE {
                return;
            }
            self.unknown.pop_front();
            let Some(o) = self.objects.get_mut(&id) else {
                continue;
            };
            if o.owner.is_some() || o.producer.is_some() || !matches!(o.state, ObjState::Pending) {
                continue;
            }
            // Nobody owns it to release it: once failed and told, it is forgotten.
            o.released = true;
            let error = Error::new(
                ErrorKind::ObjectLost,
                format!(
                    "object {id} is unknown to this cluster: no task made it and no program \
                     put it (a ref from another cluster or run, or one whose object was freed)"
                ),
            );
            tracing::info!(object = %id, "{error}");
            self.fail_object(id, error);
        }
    }
}
