//! The object directory: each object's state (pending, ready on a node, failed, lost), the
//! task that makes it, its owner and who waits to hear how it ended.

use std::sync::Arc;

use super::actors::ActorPart;
use super::dependencies::dependency_error;
use super::scheduler::{ConnId, Scheduler};
use super::tasks::TaskState;
use crate::cluster::proto::{JobId, Message, TaskId};
use crate::error::{Error, ErrorKind};
use crate::object::ObjectId;
use crate::runtime::NodeId;

#[derive(Clone)]
pub(super) enum ObjState {
    /// Not produced yet (or being produced again).
    Pending,
    /// Stored on a node.
    Ready {
        node: NodeId,
        address: String,
        inline: Option<Arc<Vec<u8>>>,
    },
    /// Will never be produced.
    Failed(Error),
    /// Its node died; its producer may make it again.
    Lost,
}

pub(super) struct ObjectEntry {
    pub(super) state: ObjState,
    /// The task that produces it (its lineage); `None` for objects put by a driver.
    pub(super) producer: Option<TaskId>,
    /// Connections waiting to hear when it is ready.
    pub(super) watchers: Vec<ConnId>,
    /// The connection that owns it (submitted its task or put it), when known.
    pub(super) owner: Option<ConnId>,
    /// The job of its owner: when the job ends, the object is freed, escaped or not.
    pub(super) job: Option<JobId>,
    /// The owner holds no ref to it any more.
    pub(super) released: bool,
    /// Its id was serialized inside a value: it is never freed.
    pub(super) escaped: bool,
    /// How many waiting, queued or running tasks take it as an argument.
    pub(super) pins: u32,
}

impl ObjectEntry {
    pub(super) fn pending(producer: Option<TaskId>) -> ObjectEntry {
        ObjectEntry {
            state: ObjState::Pending,
            producer,
            watchers: Vec::new(),
            owner: None,
            job: None,
            released: false,
            escaped: false,
            pins: 0,
        }
    }
}

impl Scheduler {
    /// A driver put an object, now stored on the head's node.
    pub fn put(&mut self, conn: ConnId, id: ObjectId, inline: Option<Vec<u8>>) {
        let Some(address) = self.head_address() else {
            let error = Error::new(ErrorKind::System, "the head's node is not running");
            self.notify(conn, Message::ObjectFailed { id, error });
            return;
        };
        let entry = self
            .objects
            .entry(id)
            .or_insert_with(|| ObjectEntry::pending(None));
        entry.watchers.push(conn);
        entry.owner = Some(conn);
        entry.job = self.conn_jobs.get(&conn).copied();
        let node = self.head_node;
        self.object_ready(id, node, address, inline.map(Arc::new));
        self.dispatch();
    }

    /// `conn` wants to hear when `id` is ready or failed: now if known, else later.
    pub fn watch(&mut self, conn: ConnId, id: ObjectId) {
        let job = self.conn_jobs.get(&conn).copied();
        let entry = self.entry_or_unknown(id);
        if entry.job.is_none() {
            entry.job = job;
        }
        match &entry.state {
            ObjState::Ready {
                address, inline, ..
            } => {
                let msg = Message::ObjectReady {
                    id,
                    location: address.clone(),
                    inline: inline.as_ref().map(|b| b.to_vec()),
                };
                self.notify(conn, msg);
            }
            ObjState::Failed(error) => {
                let msg = Message::ObjectFailed {
                    id,
                    error: error.clone(),
                };
                self.notify(conn, msg);
            }
            ObjState::Pending => entry.watchers.push(conn),
            ObjState::Lost => {
                entry.watchers.push(conn);
                if let Err(error) = self.rebuild(id) {
                    self.fail_object(id, error);
                }
                self.dispatch();
            }
        }
    }

    /// Marks `id` ready on `node` and tells whoever waits; tasks waiting for it may start.
    pub(super) fn object_ready(
        &mut self,
        id: ObjectId,
        node: NodeId,
        address: String,
        inline: Option<Arc<Vec<u8>>>,
    ) {
        let entry = self
            .objects
            .entry(id)
            .or_insert_with(|| ObjectEntry::pending(None));
        entry.state = ObjState::Ready {
            node,
            address: address.clone(),
            inline: inline.clone(),
        };
        let to = self.listeners(id);
        for conn in to {
            self.notify(
                conn,
                Message::ObjectReady {
                    id,
                    location: address.clone(),
                    inline: inline.as_ref().map(|b| b.to_vec()),
                },
            );
        }
        for task_id in self.waiting_on.remove(&id).unwrap_or_default() {
            let Some(t) = self.tasks.get_mut(&task_id) else {
                continue;
            };
            if t.state != TaskState::Waiting {
                continue;
            }
            t.missing = t.missing.saturating_sub(1);
            if t.missing == 0 {
                self.resolve(task_id);
            }
        }
        // Released while it was being made.
        self.try_free(id);
    }

    /// Who must hear how `id` ended: its watchers (taken, they hear once) and the submitter of
    /// the task that makes it.
    fn listeners(&mut self, id: ObjectId) -> Vec<ConnId> {
        let Some(entry) = self.objects.get_mut(&id) else {
            return Vec::new();
        };
        let mut to = std::mem::take(&mut entry.watchers);
        let producer = entry.producer;
        if let Some(submitter) = producer
            .and_then(|p| self.tasks.get(&p))
            .map(|t| t.submitter)
        {
            if !to.contains(&submitter) {
                to.push(submitter);
            }
        }
        to
    }

    /// Marks `id` failed for good, tells whoever waits, and fails the tasks that needed it.
    pub(super) fn fail_object(&mut self, id: ObjectId, error: Error) {
        let mut work = vec![(id, error)];
        let mut done_tasks = Vec::new();
        let mut done_actor_tasks = Vec::new();
        let mut failed_objects = Vec::new();
        while let Some((id, error)) = work.pop() {
            failed_objects.push(id);
            let entry = self
                .objects
                .entry(id)
                .or_insert_with(|| ObjectEntry::pending(None));
            entry.state = ObjState::Failed(error.clone());
            let to = self.listeners(id);
            for conn in to {
                self.notify(
                    conn,
                    Message::ObjectFailed {
                        id,
                        error: error.clone(),
                    },
                );
            }
            for task_id in self.waiting_on.remove(&id).unwrap_or_default() {
                let Some(t) = self.tasks.get_mut(&task_id) else {
                    continue;
                };
                if t.state != TaskState::Waiting {
                    continue;
                }
                let error = dependency_error(&self.arg_names, &t.task, id, &error);
                t.state = TaskState::Failed;
                self.failed += 1;
                done_tasks.push(task_id);
                if t.actor.is_some() {
                    done_actor_tasks.push((task_id, error.clone()));
                }
                for out in &t.task.outputs {
                    work.push((*out, error.clone()));
                }
            }
        }
        for task_id in done_tasks {
            self.sync_pins(task_id);
        }
        for id in failed_objects {
            self.try_free(id);
        }
        // A failed constructor argument kills its actor; a failed call lets the next one go.
        for (task_id, error) in done_actor_tasks {
            match self.tasks.get(&task_id).and_then(|t| t.actor) {
                Some(ActorPart::Create(actor_id)) => {
                    let error = Error::with_source(
                        ErrorKind::ActorDied,
                        format!("actor {actor_id} could not be created: {error}"),
                        error,
                    );
                    self.actor_dead(actor_id, error);
                }
                Some(ActorPart::Call(actor_id)) => self.pump_actor(actor_id),
                None => {}
            }
        }
    }
}
