//! Actors on the wire: an actor as its creator describes it ([`ActorCreation`]), as the head
//! places it on a node ([`ActorAssignment`]), and a call the head sends to the node hosting it
//! ([`ActorCallAssignment`]).

use serde::{Deserialize, Serialize};

use super::{JobId, TaskSubmission};
use crate::actor::ActorId;

/// An actor as its creator describes it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ActorCreation {
    /// The actor's id, chosen by the creator.
    pub actor_id: ActorId,
    /// The job it belongs to: it dies when the job ends.
    pub job_id: JobId,
    /// The constructor as a task: `function` is `Class::new`, `signature_hash` the class's,
    /// `resources` what the actor holds for its life, no outputs.
    pub create: TaskSubmission,
    /// The class's stable name (`module::path::Type`).
    pub class: String,
    /// An optional name, unique within `namespace`.
    pub name: Option<String>,
    /// The namespace of the name (protocol version 12).
    pub namespace: String,
    /// How often it is started again after its process or node dies.
    pub max_restarts: u32,
    /// How many `&self` calls may run at once.
    pub max_concurrency: u32,
}

/// An actor the head places on a node.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ActorAssignment {
    /// The actor.
    pub actor: ActorCreation,
    /// Which start of the actor this is (0 first, then one more per restart).
    pub incarnation: u32,
    /// The job's executable (hex SHA-256).
    pub exe_hash: String,
    /// For each constructor argument that is a ref: the node holding it.
    pub arg_locations: Vec<Option<String>>,
}

/// An actor call the head sends to the node hosting the actor.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ActorCallAssignment {
    /// The actor.
    pub actor_id: ActorId,
    /// The start of the actor the call is for.
    pub incarnation: u32,
    /// The call.
    pub task: TaskSubmission,
    /// For each argument that is a ref: the node holding it.
    pub arg_locations: Vec<Option<String>>,
}
