//! An actor's end: killed, released by its creator, stopped with its job, or dead after its
//! last restart; its name and resources go back, and its node stops hosting it.

use super::ActorState;
use crate::actor::ActorId;
use crate::cluster::head::scheduler::{ConnId, Scheduler};
use crate::cluster::head::tasks::TaskState;
use crate::cluster::proto::{JobId, Message};
use crate::error::Error;
use crate::runtime::NodeId;

impl Scheduler {
    /// The actor is dead for good: its resources go back, its name is free, its queued and
    /// running calls fail with `error`, and its process (if any) is killed.
    pub(in crate::cluster::head) fn actor_dead(&mut self, actor_id: ActorId, error: Error) {
        let Some(a) = self.actors.get_mut(&actor_id) else {
            return;
        };
        let placed = match a.state {
            ActorState::Dead(_) => return,
            ActorState::Placed { node, .. } => Some(node),
            ActorState::Pending => None,
        };
        tracing::debug!(actor = %actor_id, class = %a.display, "actor dead: {error}");
        a.state = ActorState::Dead(error.clone());
        let incarnation = a.incarnation;
        self.end_actor(actor_id);
        self.fail_running_calls(actor_id, &error);
        self.pump_actor(actor_id);
        if let Some(node) = placed {
            self.stop_on(node, actor_id, incarnation, true);
        }
    }

    /// Stops a released actor whose queued calls were all sent: it finishes them, then its
    /// process ends.
    pub(super) fn stop_actor(&mut self, actor_id: ActorId) {
        let Some(a) = self.actors.get_mut(&actor_id) else {
            return;
        };
        let ActorState::Placed { node, .. } = a.state else {
            return;
        };
        a.state = ActorState::Dead(a.died("was stopped: every handle to it was dropped"));
        let incarnation = a.incarnation;
        tracing::debug!(actor = %actor_id, class = %a.display, "actor stopped: released");
        self.end_actor(actor_id);
        self.stop_on(node, actor_id, incarnation, false);
    }

    /// Frees the name and the resources of an actor that just died.
    fn end_actor(&mut self, actor_id: ActorId) {
        let Some(a) = self.actors.get(&actor_id) else {
            return;
        };
        let create = a.creation.create.task_id;
        if let Some(name) = &a.creation.name {
            let name = (a.creation.namespace.clone(), name.clone());
            if self.actor_names.get(&name) == Some(&actor_id) {
                self.actor_names.remove(&name);
            }
        }
        self.give_back(create);
        if let Some(t) = self.tasks.get_mut(&create) {
            t.state = TaskState::Finished;
        }
        self.sync_pins(create);
        // A dead actor is never built again: nothing needs its constructor any more.
        self.tasks.remove(&create);
    }

    /// Tells `node` to stop hosting the actor: after the calls sent before, or at once (`kill`).
    fn stop_on(&self, node: NodeId, actor_id: ActorId, incarnation: u32, kill: bool) {
        let stop = Message::StopActor {
            actor_id,
            incarnation,
            kill,
        };
        self.send_to(node, stop);
    }

    /// Kills the actor: its queued and running calls fail, later calls too.
    pub fn kill_actor(&mut self, actor_id: ActorId) {
        let error = match self.actors.get(&actor_id) {
            Some(a) => a.died("was killed"),
            None => return,
        };
        self.actor_dead(actor_id, error);
        self.dispatch();
    }

    /// `conn`'s last handle to the actor is gone: an unnamed actor whose handle never escaped
    /// stops after its queued calls.
    pub fn release_actor(&mut self, conn: ConnId, actor_id: ActorId) {
        let Some(a) = self.actors.get_mut(&actor_id) else {
            return;
        };
        if a.owner != conn {
            return;
        }
        a.released = true;
        if !a.escaped && a.creation.name.is_none() && a.live() {
            a.stopping = true;
            self.pump_actor(actor_id);
            self.dispatch();
        }
    }

    /// A handle to the actor was serialized: it lives until killed or until its job ends.
    pub fn escape_actor(&mut self, actor_id: ActorId) {
        if let Some(a) = self.actors.get_mut(&actor_id) {
            a.escaped = true;
        }
    }

    /// The actors `conn` created and still held count as released.
    pub(in crate::cluster::head) fn release_actors_of(&mut self, conn: ConnId) {
        let owned: Vec<ActorId> = self
            .actors
            .iter()
            .filter(|(_, a)| a.owner == conn && !a.released)
            .map(|(id, _)| *id)
            .collect();
        for id in owned {
            self.release_actor(conn, id);
        }
    }

    /// The job ended: its live actors die.
    pub(in crate::cluster::head) fn end_actors_of(&mut self, job: JobId) {
        let ids: Vec<ActorId> = self
            .actors
            .iter()
            .filter(|(_, a)| a.creation.job_id == job && a.live())
            .map(|(id, _)| *id)
            .collect();
        for id in ids {
            if let Some(error) = self
                .actors
                .get(&id)
                .map(|a| a.died("was stopped: its job ended"))
            {
                self.actor_dead(id, error);
            }
        }
    }
}
