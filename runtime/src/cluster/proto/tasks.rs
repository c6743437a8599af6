//! Tasks on the wire: a task as its submitter describes it ([`TaskSubmission`], with its
//! [`WireArg`]s), as the head hands it to a node ([`TaskAssignment`]), and how it ended there
//! ([`TaskOutcome`], [`StoredObject`]).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::byte_serde;
use super::{JobId, TaskId};
use crate::error::Error;
use crate::object::ObjectId;

/// An argument on the wire: a value, or a ref to fetch before the task runs.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum WireArg {
    /// The argument's postcard encoding.
    Value(#[serde(with = "byte_serde::bytes")] Vec<u8>),
    /// The object that holds the argument.
    Ref(ObjectId),
}

/// A task as the submitter describes it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TaskSubmission {
    /// The task's id.
    pub task_id: TaskId,
    /// The job it belongs to.
    pub job_id: JobId,
    /// The function's stable name (`module::path::name`).
    pub function: String,
    /// The signature hash of the submitter's build.
    pub signature_hash: u64,
    /// The arguments in order.
    pub args: Vec<WireArg>,
    /// The ids of its output objects (one per `num_returns`).
    pub outputs: Vec<ObjectId>,
    /// What it needs while it runs: `CPU`, `GPU` and custom names.
    pub resources: BTreeMap<String, f64>,
    /// How often it is retried when its worker or node dies.
    pub max_retries: u32,
    /// The function's parameter names, sent with its first submission on a connection and
    /// `None` after: the head names a failed argument with them. (Boxed: most submissions
    /// carry none, and every message is as large as the largest.)
    pub arg_names: Option<Box<Vec<String>>>,
}

/// A task the head hands to a node, with what the node needs to run it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TaskAssignment {
    /// The task.
    pub task: TaskSubmission,
    /// The job's executable (hex SHA-256), fetched from the head with
    /// [`Message::FetchExe`](super::Message::FetchExe).
    pub exe_hash: String,
    /// For each argument that is a ref: the node holding it (`HOST:PORT`); `None` for values.
    pub arg_locations: Vec<Option<String>>,
    /// How many times the task ran before (0 on the first attempt).
    pub attempt: u32,
}

/// How a task ended on its node.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub enum TaskOutcome {
    /// Its outputs are in the node's object store.
    Stored(Vec<StoredObject>),
    /// It failed. `retryable` when the failure was the system's (the worker process died), not
    /// the task's (a panic, a version skew).
    Failed {
        /// Why.
        error: Error,
        /// Whether the head may run it again.
        retryable: bool,
    },
}

/// An output a node stored.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StoredObject {
    /// The object.
    pub id: ObjectId,
    /// Its size in bytes.
    pub size: u64,

    /// The encoded value itself when it is small ([`INLINE_MAX`](super::INLINE_MAX)).
    #[serde(with = "byte_serde::opt_bytes")]
    pub inline: Option<Vec<u8>>,
}
