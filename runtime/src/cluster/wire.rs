//! The wire protocol between daemons, drivers, workers and the CLI: the [`Message`] enum, the
//! versioned handshake that proves the cluster token, and [`Connection`], a TCP stream cut into
//! length-delimited frames (`tokio_util`'s [`LengthDelimitedCodec`]) holding postcard payloads.
//!
//! This module owns framing, encoding, limits and authentication. It must not know what a
//! message means: the head, the node and the CLI give messages their meaning.
//!
//! # The handshake
//!
//! The connecting side sends [`Message::Hello`] with its protocol version, the cluster token and
//! its [`Role`]. The accepting side reads that one frame (at most [`HANDSHAKE_MAX_FRAME`] bytes,
//! within [`HANDSHAKE_TIMEOUT`]), compares the token in constant time before it looks at anything
//! else, then checks the version, and answers [`Message::Welcome`] or [`Message::Refused`]. Only
//! after a welcome do both sides accept frames up to [`MAX_FRAME`] bytes.
//!
//! # Large values
//!
//! No frame needs to hold a whole large value. An object larger than [`OBJECT_CHUNK`] moves as
//! [`Message::ObjectChunk`]s into one pre-sized buffer. Between a node and its workers, the
//! arguments and outputs of tasks and actor calls move the same way: the values that do not fit
//! the frame of their message go before it as [`Message::ValueChunk`]s, each encoded from a
//! slice of the sender's one copy ([`FrameWriter::feed_with_values`]), and
//! [`FrameReader::recv_values`] assembles them into one buffer per value and puts each in the
//! slot its message left empty. Small messages keep their single frame.

use std::collections::BTreeMap;
use std::fmt;
use std::io;
use std::net::SocketAddr;
use std::time::Duration;

use bytes::Bytes;
use futures::{SinkExt, StreamExt};
use serde::{Deserialize, Serialize};
use tokio::io::AsyncReadExt;
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::TcpStream;
use tokio_util::codec::{FramedRead, FramedWrite, LengthDelimitedCodec, LengthDelimitedCodecError};

use crate::actor::ActorId;
use crate::error::{Error, ErrorKind, Result};
use crate::object::ObjectId;
use crate::runtime::NodeId;

/// The protocol version this build speaks. Bump it whenever the encoding of any message after
/// the three handshake variants changes; peers of different versions refuse each other.
pub const PROTOCOL_VERSION: u32 = 5;

/// The largest frame accepted before the peer has proven the token.
pub const HANDSHAKE_MAX_FRAME: usize = 64 * 1024;

/// The largest frame accepted from an authenticated peer.
pub const MAX_FRAME: usize = 1 << 30;

/// How long either side waits for the other's half of the handshake.
pub const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(5);

/// How long opening a TCP connection may take.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// What the connecting side is; the accepting side decides what it may ask for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Role {
    /// A node daemon joining the head (or, later, a peer node fetching objects).
    Node,
    /// A user program connecting to the cluster.
    Driver,
    /// A worker process connecting to its node.
    Worker,
    /// A short-lived tool such as `raykit status` or `raykit stop`.
    Client,
}

/// Why a handshake was refused. New reasons are appended at the end, never inserted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Refusal {
    /// The token was wrong.
    Unauthorized,
    /// The peers speak different protocol versions.
    VersionMismatch,
    /// The first frame could not be decoded as a handshake.
    Malformed,
    /// The first frame was larger than [`HANDSHAKE_MAX_FRAME`].
    TooLarge,
    /// The handshake did not arrive within [`HANDSHAKE_TIMEOUT`].
    Timeout,
    /// The first frame was a valid message but not [`Message::Hello`].
    UnexpectedMessage,
}

impl Refusal {
    /// The error kind a refused peer reports.
    pub fn error_kind(self) -> ErrorKind {
        match self {
            Refusal::Unauthorized => ErrorKind::Unauthorized,
            _ => ErrorKind::Protocol,
        }
    }
}

/// The accepting side's answer to a valid [`Message::Hello`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Welcome {
    /// The protocol version of the accepting side (equal to the caller's).
    pub version: u32,
    /// The node the accepting daemon runs.
    pub node_id: NodeId,
    /// Whether the accepting daemon is the head.
    pub head: bool,
}

/// What a node declares when it joins.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NodeInfo {
    /// The node's id, chosen by the node.
    pub node_id: NodeId,
    /// Where the node's daemon listens (`HOST:PORT`), as other hosts reach it.
    pub address: String,
    /// The resources the node declares: `CPU`, `GPU` and custom names.
    pub resources: BTreeMap<String, f64>,
    /// The process id of the node's daemon, on its host.
    pub pid: u32,
}

/// What a node reports in each heartbeat.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct NodeLoad {
    /// The resources not in use right now.
    pub available: BTreeMap<String, f64>,
    /// The node's tasks, by state.
    pub tasks: TaskCounts,
    /// The node's actors, by state.
    pub actors: ActorCounts,
    /// How many objects the node's store holds (protocol version 3).
    pub objects: u64,
    /// Their encoded size in bytes (protocol version 3).
    pub object_bytes: u64,
}

/// Tasks by state.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct TaskCounts {
    /// Waiting for arguments or resources.
    pub waiting: u64,
    /// Running on a worker.
    pub running: u64,
    /// Finished with a value.
    pub finished: u64,
    /// Finished with an error.
    pub failed: u64,
}

impl std::ops::AddAssign for TaskCounts {
    fn add_assign(&mut self, o: Self) {
        self.waiting += o.waiting;
        self.running += o.running;
        self.finished += o.finished;
        self.failed += o.failed;
    }
}

/// Actors by state.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct ActorCounts {
    /// Waiting for a node or for `new` to finish.
    pub pending: u64,
    /// Alive and serving calls.
    pub alive: u64,
    /// Being restarted after a failure.
    pub restarting: u64,
    /// Dead for good.
    pub dead: u64,
}

impl std::ops::AddAssign for ActorCounts {
    fn add_assign(&mut self, o: Self) {
        self.pending += o.pending;
        self.alive += o.alive;
        self.restarting += o.restarting;
        self.dead += o.dead;
    }
}

/// One node as the head sees it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NodeStatus {
    /// What the node declared when it joined.
    pub info: NodeInfo,
    /// Whether this node runs in the head's process.
    pub head: bool,
    /// Whether the node is alive (heartbeats arriving).
    pub alive: bool,
    /// Why the node is dead, when it is.
    pub death_reason: Option<String>,
    /// The node's last report.
    pub load: NodeLoad,
    /// Milliseconds since the node's last heartbeat.
    pub since_heartbeat_ms: u64,
}

/// The cluster as the head sees it: the answer to [`Message::StatusRequest`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ClusterStatus {
    /// The head's node.
    pub head_node_id: NodeId,
    /// Every node that ever joined, alive or dead, in joining order.
    pub nodes: Vec<NodeStatus>,
    /// Tasks by state, summed over alive nodes.
    pub tasks: TaskCounts,
    /// Actors by state, summed over alive nodes.
    pub actors: ActorCounts,
    /// Jobs (drivers) registered with the head.
    pub jobs: u64,
    /// Objects in the head's object table (protocol version 3).
    pub objects: u64,
    /// Tasks the head keeps (running, waiting, or the lineage of objects still referenced;
    /// protocol version 3).
    pub lineage: u64,
}

/// Every message of the protocol.
///
/// postcard encodes a variant as its index, so the order is the protocol:
/// - the first three variants (the handshake) are frozen forever, fields included, so that peers
///   of any two versions can still tell each other why they do not match;
/// - new variants are appended at the end, and changing an existing variant after the handshake
///   bumps [`PROTOCOL_VERSION`].
#[derive(Debug, Clone, Serialize, Deserialize)]
pub enum Message {
    /// The first frame of every connection, from the connecting side.
    Hello {
        /// The protocol version the sender speaks.
        version: u32,
        /// The cluster token.
        token: String,
        /// What the sender is.
        role: Role,
    },
    /// The handshake succeeded.
    Welcome(Welcome),
    /// The handshake failed; the accepting side closes the connection after sending this.
    Refused {
        /// The reason, for programs.
        refusal: Refusal,
        /// The reason, for people.
        reason: String,
    },
    /// Node → head: join the cluster. Answered by [`Message::Registered`] or [`Message::Failed`].
    RegisterNode(NodeInfo),
    /// Head → node: the node has joined.
    Registered {
        /// The head's node.
        head_node_id: NodeId,
    },
    /// Node → head, every heartbeat interval on the registration connection.
    Heartbeat(NodeLoad),
    /// Node → head: the node is leaving on purpose.
    UnregisterNode,
    /// Client → head: describe the cluster. Answered by [`Message::Status`].
    StatusRequest,
    /// Head → client: the cluster.
    Status(ClusterStatus),
    /// Client → any daemon: exit. Answered by [`Message::Stopping`].
    Stop,
    /// Daemon → client: exiting now.
    Stopping,
    /// A request could not be served; the connection stays usable unless the error says so.
    /// From a worker to its node: the worker could not read what it was sent (a malformed
    /// message or [`Message::ValueChunk`]) and exits.
    Failed {
        /// What went wrong.
        error: Error,
    },

    // ---- Jobs, tasks and objects (protocol version 2) ----
    /// Driver → head: start a job running the executable with this content hash. Answered by
    /// [`Message::JobRegistered`].
    RegisterJob {
        /// Hex SHA-256 of the driver's executable (content address of the code).
        exe_hash: String,
        /// Its size in bytes.
        exe_size: u64,
        /// A name for people (the executable's file name).
        name: String,
    },
    /// Worker → head: a process of job `job_id` (a worker running nested tasks) attaches to it.
    /// Answered by [`Message::JobRegistered`] with `need_exe: false`.
    AttachJob {
        /// The job.
        job_id: JobId,
    },
    /// Head → driver: the job exists. With `need_exe`, the driver uploads its executable with
    /// [`Message::UploadExe`] before submitting anything.
    JobRegistered {
        /// The job's id.
        job_id: JobId,
        /// Whether the head lacks the executable.
        need_exe: bool,
    },
    /// Driver → head: one chunk of the executable; the last one is answered by
    /// [`Message::ExeStored`] (or [`Message::Failed`] when the hash does not match).
    UploadExe {
        /// Where the chunk goes in the file.
        offset: u64,
        /// The bytes (at most [`EXE_CHUNK`]).
        #[serde(with = "byte_serde::bytes")]
        bytes: Vec<u8>,
        /// Whether this is the last chunk.
        last: bool,
    },
    /// Head → driver: the executable is stored and verified.
    ExeStored,
    /// Node → head (its own connection): send me the executable with this hash. Answered by
    /// [`Message::ExeChunk`]s, the last one with `last: true`, or [`Message::Failed`].
    FetchExe {
        /// Hex SHA-256.
        exe_hash: String,
    },
    /// Head → node: one chunk of an executable.
    ExeChunk {
        /// The bytes.
        #[serde(with = "byte_serde::bytes")]
        bytes: Vec<u8>,
        /// Whether this is the last chunk.
        last: bool,
    },
    /// Driver (or worker) → head: run a task. Never answered directly: its outputs become
    /// [`Message::ObjectReady`] / [`Message::ObjectFailed`] to the submitter.
    SubmitTask(TaskSubmission),
    /// Driver → head: store a value (`raykit::put`) on the head's node. Answered by
    /// [`Message::ObjectReady`] once stored.
    PutObject {
        /// The object's id, chosen by the driver.
        id: ObjectId,
        /// The encoded value.
        #[serde(with = "byte_serde::bytes")]
        bytes: Vec<u8>,
    },
    /// Driver → head: tell me when this object is ready (for refs that arrived inside values).
    /// Answered by [`Message::ObjectReady`] or [`Message::ObjectFailed`], now or later.
    WatchObject {
        /// The object.
        id: ObjectId,
    },
    /// Head → driver: an object the driver submitted or watches is ready.
    ObjectReady {
        /// The object.
        id: ObjectId,
        /// The node holding it (`HOST:PORT`), to fetch it from with [`Message::FetchObject`].
        location: String,
        /// The encoded value itself, for small objects.
        #[serde(with = "byte_serde::opt_bytes")]
        inline: Option<Vec<u8>>,
    },
    /// Head → driver: an object will never be produced.
    ObjectFailed {
        /// The object.
        id: ObjectId,
        /// Why: the task's error (a panic, a failed argument, impossible resources, ...).
        error: Error,
    },
    /// Anyone → node: send me this object. Answered by [`Message::ObjectData`] or
    /// [`Message::Failed`] (kind `ObjectLost`).
    FetchObject {
        /// The object.
        id: ObjectId,
    },
    /// Node → requester: an object's encoded value.
    ObjectData {
        /// The object.
        id: ObjectId,
        /// The encoded value.
        #[serde(with = "byte_serde::bytes")]
        bytes: Vec<u8>,
    },
    /// Head → node (on the registration connection): run this task.
    ExecuteTask(TaskAssignment),
    /// Node → head (on the registration connection): a task ended.
    TaskFinished {
        /// The task.
        task_id: TaskId,
        /// Its outputs or its error.
        outcome: TaskOutcome,
    },
    /// Worker → node: the first message of a worker process after the handshake.
    WorkerReady {
        /// The job whose executable the worker runs.
        job_id: JobId,
        /// The worker's process id.
        pid: u32,
    },
    /// Node → worker: run a registered function.
    RunTask {
        /// The task.
        task_id: TaskId,
        /// The function's stable name.
        function: String,
        /// The caller's signature hash (a mismatch is a version-skew error).
        signature_hash: u64,
        /// The arguments: each one's postcard encoding, in order (refs already fetched). The
        /// worker decodes only their concatenation, the argument tuple, so arguments too large
        /// for this frame come before it as one [`Message::ValueChunk`] value (the tuple) and
        /// the list is one empty slot.
        #[serde(with = "byte_serde::bytes_list")]
        args: Vec<Vec<u8>>,
    },
    /// Worker → node: the task's outputs (one encoded value per output object) or its error.
    TaskResult {
        /// The task.
        task_id: TaskId,
        /// The outputs or the error. An output that does not fit this frame comes before it in
        /// [`Message::ValueChunk`]s, and its slot here is empty.
        #[serde(with = "byte_serde::bytes_list_result")]
        result: std::result::Result<Vec<Vec<u8>>, Error>,
    },
    /// Worker → head: the task running in this worker blocks in `get`/`wait`: lend its CPU.
    TaskBlocked {
        /// The task.
        task_id: TaskId,
    },
    /// Worker → head: the blocked task goes on: take its CPU back.
    TaskUnblocked {
        /// The task.
        task_id: TaskId,
    },

    // ---- Freeing and chunked transfer (protocol version 3) ----
    /// Driver (or worker client) → head: the sender owns these objects (it submitted the task
    /// that makes them, or put them) and its last ref to each is gone. The head frees an object
    /// once no task still needs it as an argument, unless its id escaped.
    ReleaseObjects {
        /// The objects.
        ids: Vec<ObjectId>,
    },
    /// Driver (or worker client) → head: these ids were serialized inside a value (a ref in a
    /// put value, in a task's argument or result), so other processes may hold them where the
    /// head cannot see: they are never freed.
    EscapedObjects {
        /// The objects.
        ids: Vec<ObjectId>,
    },
    /// Head → node (on the registration connection): forget these objects.
    DeleteObjects {
        /// The objects.
        ids: Vec<ObjectId>,
    },
    /// One piece of a large object's encoded value: a node's answer to
    /// [`Message::FetchObject`] (instead of [`Message::ObjectData`]), or a driver's
    /// [`Message::PutObject`] in pieces. The pieces come in order; `offset + bytes.len() ==
    /// total` marks the last one. A put's last piece is answered like a put.
    ObjectChunk {
        /// The object.
        id: ObjectId,
        /// Where the piece goes in the value.
        offset: u64,
        /// The size of the whole encoded value.
        total: u64,
        /// The piece (at most [`OBJECT_CHUNK`] bytes).
        #[serde(with = "byte_serde::bytes")]
        bytes: Vec<u8>,
    },

    // ---- Actors (protocol version 4) ----
    /// Driver (or worker client) → head: create an actor. Never answered: an actor that cannot
    /// be created fails its calls with an actor-died error.
    CreateActor(Box<ActorCreation>),
    /// Driver (or worker client) → head: call a method of an actor. Its outputs become
    /// [`Message::ObjectReady`] / [`Message::ObjectFailed`], as a task's do.
    SubmitActorCall {
        /// The actor.
        actor_id: ActorId,
        /// The call: `function` is `Class::method`, `signature_hash` the class's.
        task: TaskSubmission,
    },
    /// Driver (or worker client) → head: kill an actor now.
    KillActor {
        /// The actor.
        actor_id: ActorId,
    },
    /// Driver (or worker client) → head: the creator's last handle to the actor is gone.
    ReleaseActor {
        /// The actor.
        actor_id: ActorId,
    },
    /// Driver (or worker client) → head: a handle to the actor was serialized inside a value,
    /// so processes the head cannot see may call it: it lives until its job ends.
    EscapedActor {
        /// The actor.
        actor_id: ActorId,
    },
    /// Driver (or worker client) → head: which live actor is named `name`? Answered by
    /// [`Message::ActorFound`].
    GetActor {
        /// The name.
        name: String,
    },
    /// Head → driver: the answer to [`Message::GetActor`].
    ActorFound {
        /// The name asked for.
        name: String,
        /// The actor and its class's stable name, when a live actor has that name.
        actor: Option<(ActorId, String)>,
    },
    /// Head → node (on the registration connection): host an actor in a worker process of
    /// its own.
    StartActor(Box<ActorAssignment>),
    /// Head → node (on the registration connection): run a call on an actor the node hosts.
    /// Calls of one actor arrive in the order the actor runs them.
    ExecuteActorCall(Box<ActorCallAssignment>),
    /// Head → node, and node → the actor's worker: stop hosting the actor. Without `kill`, after
    /// the calls sent before; with it, at once (the worker process is killed).
    StopActor {
        /// The actor.
        actor_id: ActorId,
        /// Which start of the actor this is for.
        incarnation: u32,
        /// Kill the process instead of letting the calls already sent finish.
        kill: bool,
    },
    /// Node → head: the actor's constructor ran (or failed).
    ActorStarted {
        /// The actor.
        actor_id: ActorId,
        /// Which start of the actor this is.
        incarnation: u32,
        /// Whether `new` succeeded.
        result: std::result::Result<(), Error>,
    },
    /// Node → head: the actor's worker process ended without being asked to.
    ActorExited {
        /// The actor.
        actor_id: ActorId,
        /// Which start of the actor this is.
        incarnation: u32,
        /// What happened to the process.
        reason: String,
    },
    /// Node → worker: become the host of an actor (the worker serves only it from now on).
    /// Answered by [`Message::ActorHosted`].
    HostActor {
        /// The actor.
        actor_id: ActorId,
        /// The class's stable name (`module::path::Type`).
        class: String,
        /// The class's signature hash at the creator (a mismatch is a version-skew error).
        signature_hash: u64,
        /// The constructor's arguments: each one's postcard encoding, in order (when large,
        /// in pieces as for [`Message::RunTask`]).
        #[serde(with = "byte_serde::bytes_list")]
        args: Vec<Vec<u8>>,
        /// How many `&self` calls may run at once.
        max_concurrency: u32,
    },
    /// Worker → node: the answer to [`Message::HostActor`].
    ActorHosted {
        /// The actor.
        actor_id: ActorId,
        /// Whether `new` succeeded.
        result: std::result::Result<(), Error>,
    },
    /// Node → the actor's worker: run one method call. Answered by [`Message::TaskResult`]
    /// (calls may finish out of order when they may overlap).
    RunActorCall {
        /// The call.
        task_id: TaskId,
        /// The method's name.
        method: String,
        /// The arguments: each one's postcard encoding, in order (refs already fetched; when
        /// large, in pieces as for [`Message::RunTask`]).
        #[serde(with = "byte_serde::bytes_list")]
        args: Vec<Vec<u8>>,
    },

    // ---- Large values between a node and its workers (protocol version 5) ----
    /// Node → worker or worker → node: one piece of a value too large for the frame of the
    /// message that carries it: the arguments of a [`Message::RunTask`],
    /// [`Message::RunActorCall`] or [`Message::HostActor`] (sent as one value, the argument
    /// tuple), or an output of a [`Message::TaskResult`]. The pieces of one message come right
    /// before it on the same connection, value after value by increasing `index`, each value's
    /// pieces in order; `offset + bytes.len() == total` ends a value. The message then carries
    /// an empty slot at each `index`, which the receiver fills with the assembled value. Any
    /// other order, or pieces before a message that carries no values, is a protocol error.
    ValueChunk {
        /// The task or call of the message that follows (0 before a [`Message::HostActor`],
        /// which names none).
        task_id: TaskId,
        /// The slot of the message's list that the value fills.
        index: u32,
        /// Where the piece goes in the value.
        offset: u64,
        /// The size of the whole value.
        total: u64,
        /// The piece (at most [`OBJECT_CHUNK`] bytes).
        #[serde(with = "byte_serde::bytes")]
        bytes: Vec<u8>,
    },
    /// Driver (or worker client) → head, while it waits for objects: are you still there?
    /// Answered by [`Message::Pong`]. A head that stops answering (frozen, or its host gone
    /// without closing the connection) fails what the driver waits for instead of leaving it
    /// waiting forever.
    Ping,
    /// Head → driver: the answer to [`Message::Ping`].
    Pong,
}

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
    /// An optional cluster-wide name.
    pub name: Option<String>,
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

/// The largest chunk of an executable upload or download.
pub const EXE_CHUNK: usize = 4 << 20;

/// The largest piece of an object in one [`Message::ObjectChunk`]; larger values move in
/// pieces so that no frame (and no buffer of a frame) holds a whole large value.
pub const OBJECT_CHUNK: usize = 4 << 20;

/// Values smaller than this travel inline in [`Message::ObjectReady`] instead of being fetched.
pub const INLINE_MAX: usize = 64 << 10;

/// The id of a job (one driver run). Unique within a head's life.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct JobId(pub u64);

impl fmt::Display for JobId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "job-{}", self.0)
    }
}

/// The id of a task: unique cluster-wide (chosen by the submitter from its random prefix).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct TaskId(pub u128);

impl fmt::Display for TaskId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:032x}", self.0)
    }
}

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
}

/// A task the head hands to a node, with what the node needs to run it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TaskAssignment {
    /// The task.
    pub task: TaskSubmission,
    /// The job's executable (hex SHA-256), fetched from the head with [`Message::FetchExe`].
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
    /// The encoded value itself when it is small ([`INLINE_MAX`]).
    #[serde(with = "byte_serde::opt_bytes")]
    pub inline: Option<Vec<u8>>,
}

impl Message {
    /// The variant's name, for logs and errors (never the payload, which may hold the token).
    pub fn name(&self) -> &'static str {
        match self {
            Message::Hello { .. } => "Hello",
            Message::Welcome(_) => "Welcome",
            Message::Refused { .. } => "Refused",
            Message::RegisterNode(_) => "RegisterNode",
            Message::Registered { .. } => "Registered",
            Message::Heartbeat(_) => "Heartbeat",
            Message::UnregisterNode => "UnregisterNode",
            Message::StatusRequest => "StatusRequest",
            Message::Status(_) => "Status",
            Message::Stop => "Stop",
            Message::Stopping => "Stopping",
            Message::Failed { .. } => "Failed",
            Message::RegisterJob { .. } => "RegisterJob",
            Message::AttachJob { .. } => "AttachJob",
            Message::JobRegistered { .. } => "JobRegistered",
            Message::UploadExe { .. } => "UploadExe",
            Message::ExeStored => "ExeStored",
            Message::FetchExe { .. } => "FetchExe",
            Message::ExeChunk { .. } => "ExeChunk",
            Message::SubmitTask(_) => "SubmitTask",
            Message::PutObject { .. } => "PutObject",
            Message::WatchObject { .. } => "WatchObject",
            Message::ObjectReady { .. } => "ObjectReady",
            Message::ObjectFailed { .. } => "ObjectFailed",
            Message::FetchObject { .. } => "FetchObject",
            Message::ObjectData { .. } => "ObjectData",
            Message::ExecuteTask(_) => "ExecuteTask",
            Message::TaskFinished { .. } => "TaskFinished",
            Message::WorkerReady { .. } => "WorkerReady",
            Message::RunTask { .. } => "RunTask",
            Message::TaskResult { .. } => "TaskResult",
            Message::TaskBlocked { .. } => "TaskBlocked",
            Message::TaskUnblocked { .. } => "TaskUnblocked",
            Message::ReleaseObjects { .. } => "ReleaseObjects",
            Message::EscapedObjects { .. } => "EscapedObjects",
            Message::DeleteObjects { .. } => "DeleteObjects",
            Message::ObjectChunk { .. } => "ObjectChunk",
            Message::CreateActor(_) => "CreateActor",
            Message::SubmitActorCall { .. } => "SubmitActorCall",
            Message::KillActor { .. } => "KillActor",
            Message::ReleaseActor { .. } => "ReleaseActor",
            Message::EscapedActor { .. } => "EscapedActor",
            Message::GetActor { .. } => "GetActor",
            Message::ActorFound { .. } => "ActorFound",
            Message::StartActor(_) => "StartActor",
            Message::ExecuteActorCall(_) => "ExecuteActorCall",
            Message::StopActor { .. } => "StopActor",
            Message::ActorStarted { .. } => "ActorStarted",
            Message::ActorExited { .. } => "ActorExited",
            Message::HostActor { .. } => "HostActor",
            Message::ActorHosted { .. } => "ActorHosted",
            Message::RunActorCall { .. } => "RunActorCall",
            Message::ValueChunk { .. } => "ValueChunk",
            Message::Ping => "Ping",
            Message::Pong => "Pong",
        }
    }

    /// The postcard encoding of this message.
    pub fn encode(&self) -> Result<Vec<u8>> {
        postcard::to_allocvec(self)
            .map_err(|e| Error::serialization(&format!("encoding a {} message", self.name()), e))
    }

    /// Decodes a message from one frame's payload.
    pub fn decode(payload: &[u8]) -> Result<Message> {
        postcard::from_bytes(payload).map_err(|e| {
            Error::new(
                ErrorKind::Protocol,
                format!("malformed message ({} bytes): {e}", payload.len()),
            )
        })
    }
}

/// Byte vectors on the wire as postcard "bytes" (a length, then the bytes, copied at once)
/// instead of a sequence of `u8` (one call per byte). postcard writes both the same way, so
/// this changes speed, not the encoding.
mod byte_serde {
    use std::fmt;

    use serde::de::{SeqAccess, Visitor};
    use serde::{Deserialize, Deserializer, Serialize, Serializer};

    use crate::error::Error;

    /// A borrowed byte slice that serializes as bytes.
    pub(super) struct Ref<'a>(pub(super) &'a [u8]);

    impl Serialize for Ref<'_> {
        fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
            s.serialize_bytes(self.0)
        }
    }

    /// An owned byte vector that deserializes from bytes (or a sequence of `u8`).
    pub(super) struct Buf(pub(super) Vec<u8>);

    impl<'de> Deserialize<'de> for Buf {
        fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
            struct V;
            impl<'de> Visitor<'de> for V {
                type Value = Buf;
                fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                    f.write_str("bytes")
                }
                fn visit_bytes<E: serde::de::Error>(self, v: &[u8]) -> Result<Buf, E> {
                    Ok(Buf(v.to_vec()))
                }
                fn visit_byte_buf<E: serde::de::Error>(self, v: Vec<u8>) -> Result<Buf, E> {
                    Ok(Buf(v))
                }
                fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Buf, A::Error> {
                    let mut out = Vec::with_capacity(seq.size_hint().unwrap_or(0).min(1 << 20));
                    while let Some(b) = seq.next_element::<u8>()? {
                        out.push(b);
                    }
                    Ok(Buf(out))
                }
            }
            d.deserialize_byte_buf(V)
        }
    }

    pub(super) mod bytes {
        use super::*;

        pub(crate) fn serialize<S: Serializer>(v: &[u8], s: S) -> Result<S::Ok, S::Error> {
            s.serialize_bytes(v)
        }

        pub(crate) fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<u8>, D::Error> {
            Buf::deserialize(d).map(|b| b.0)
        }
    }

    pub(super) mod opt_bytes {
        use super::*;

        pub(crate) fn serialize<S: Serializer>(
            v: &Option<Vec<u8>>,
            s: S,
        ) -> Result<S::Ok, S::Error> {
            v.as_deref().map(Ref).serialize(s)
        }

        pub(crate) fn deserialize<'de, D: Deserializer<'de>>(
            d: D,
        ) -> Result<Option<Vec<u8>>, D::Error> {
            Option::<Buf>::deserialize(d).map(|b| b.map(|b| b.0))
        }
    }

    pub(super) mod bytes_list {
        use super::*;

        pub(crate) fn serialize<S: Serializer>(v: &[Vec<u8>], s: S) -> Result<S::Ok, S::Error> {
            s.collect_seq(v.iter().map(|b| Ref(b)))
        }

        pub(crate) fn deserialize<'de, D: Deserializer<'de>>(
            d: D,
        ) -> Result<Vec<Vec<u8>>, D::Error> {
            Vec::<Buf>::deserialize(d).map(|v| v.into_iter().map(|b| b.0).collect())
        }
    }

    pub(super) mod bytes_list_result {
        use super::*;

        /// `Result`'s own shape: variant `Ok` then `Err`.
        #[derive(Serialize)]
        enum AsRef<'a> {
            Ok(#[serde(with = "super::bytes_list")] &'a [Vec<u8>]),
            Err(&'a Error),
        }

        #[derive(Deserialize)]
        enum Owned {
            Ok(#[serde(with = "super::bytes_list")] Vec<Vec<u8>>),
            Err(Error),
        }

        pub(crate) fn serialize<S: Serializer>(
            v: &Result<Vec<Vec<u8>>, Error>,
            s: S,
        ) -> Result<S::Ok, S::Error> {
            match v {
                Ok(list) => AsRef::Ok(list),
                Err(e) => AsRef::Err(e),
            }
            .serialize(s)
        }

        pub(crate) fn deserialize<'de, D: Deserializer<'de>>(
            d: D,
        ) -> Result<Result<Vec<Vec<u8>>, Error>, D::Error> {
            Ok(match Owned::deserialize(d)? {
                Owned::Ok(list) => Ok(list),
                Owned::Err(e) => Err(e),
            })
        }
    }
}

/// The encoding of [`Message::ObjectData`] built from a borrowed value, so that sending a large
/// object does not first copy it into a message. Decodes as the message would.
pub fn encode_object_data(id: ObjectId, bytes: &[u8]) -> Result<Vec<u8>> {
    // The message with an empty value ends in the value's length, a one-byte varint 0: keep
    // what precedes it, then write the real length and the bytes.
    let mut out = Message::ObjectData {
        id,
        bytes: Vec::new(),
    }
    .encode()?;
    out.pop();
    out.reserve(bytes.len() + 10);
    let mut len = bytes.len() as u64;
    loop {
        let byte = (len & 0x7f) as u8;
        len >>= 7;
        if len == 0 {
            out.push(byte);
            break;
        }
        out.push(byte | 0x80);
    }
    out.extend_from_slice(bytes);
    Ok(out)
}

/// The encoding of [`Message::ObjectChunk`] built from a borrowed piece of a stored value, so
/// that sending a large object copies each piece once, never the whole value.
pub fn encode_object_chunk(id: ObjectId, offset: u64, total: u64, piece: &[u8]) -> Result<Vec<u8>> {
    // As in `encode_object_data`: the message with an empty piece ends in its length, a
    // one-byte varint 0.
    let mut out = Message::ObjectChunk {
        id,
        offset,
        total,
        bytes: Vec::new(),
    }
    .encode()?;
    out.pop();
    out.reserve(piece.len() + 10);
    push_varint(&mut out, piece.len() as u64);
    out.extend_from_slice(piece);
    Ok(out)
}

fn push_varint(out: &mut Vec<u8>, mut v: u64) {
    loop {
        let byte = (v & 0x7f) as u8;
        v >>= 7;
        if v == 0 {
            out.push(byte);
            return;
        }
        out.push(byte | 0x80);
    }
}

/// Assembles a value that arrives in [`Message::ObjectChunk`]s into one buffer, sized once
/// from the first piece's `total`.
#[derive(Debug)]
pub struct ChunkAssembler {
    id: ObjectId,
    total: u64,
    buf: Vec<u8>,
}

impl ChunkAssembler {
    /// Starts assembling object `id` of `total` bytes (the first piece's header).
    pub fn new(id: ObjectId, total: u64) -> Result<ChunkAssembler> {
        let buf = presized(total, &format_args!("object {id}"))?;
        Ok(ChunkAssembler { id, total, buf })
    }

    /// Adds the next piece; returns the whole value after the last one.
    pub fn add(&mut self, id: ObjectId, offset: u64, total: u64, piece: &[u8]) -> Result<bool> {
        if id != self.id || total != self.total || offset != self.buf.len() as u64 {
            return Err(Error::new(
                ErrorKind::Protocol,
                format!(
                    "piece of object {id} at offset {offset} (of {total}) out of order: expected                      object {} at {} (of {})",
                    self.id,
                    self.buf.len(),
                    self.total
                ),
            ));
        }
        if (self.buf.len() + piece.len()) as u64 > self.total {
            return Err(Error::new(
                ErrorKind::Protocol,
                format!("object {id} overflows its {total} bytes"),
            ));
        }
        self.buf.extend_from_slice(piece);
        Ok(self.buf.len() as u64 == self.total)
    }

    /// The object being assembled.
    pub fn id(&self) -> ObjectId {
        self.id
    }

    /// The assembled value.
    pub fn finish(self) -> Vec<u8> {
        self.buf
    }
}

/// The largest object accepted in pieces.
pub const MAX_OBJECT: usize = 1 << 40;

/// An empty buffer with room for a value of `total` bytes that arrives in pieces; `what` names
/// the value in errors.
fn presized(total: u64, what: &dyn fmt::Display) -> Result<Vec<u8>> {
    let size = usize::try_from(total)
        .ok()
        .filter(|t| *t <= MAX_OBJECT)
        .ok_or_else(|| {
            Error::new(
                ErrorKind::Protocol,
                format!("{what} of {total} bytes is larger than the {MAX_OBJECT}-byte limit"),
            )
        })?;
    let mut buf = Vec::new();
    buf.try_reserve_exact(size).map_err(|e| {
        Error::new(
            ErrorKind::System,
            format!("cannot allocate {total} bytes for {what}: {e}"),
        )
    })?;
    Ok(buf)
}

/// Where the value list of a message that carries task values sits, for
/// [`FrameWriter::feed_with_values`] and [`FrameReader::recv_values`].
struct ValueSlots {
    /// The task id its [`Message::ValueChunk`]s carry.
    task_id: TaskId,
    /// Whether the values are arguments, which the worker only concatenates: large ones then
    /// travel as one value.
    arguments: bool,
    /// How many encoded bytes follow the list in the message.
    tail: usize,
}

impl ValueSlots {
    /// The slots of `msg`, if it is a message that carries task values.
    fn of(msg: &Message) -> Option<(ValueSlots, &Vec<Vec<u8>>)> {
        let (task_id, arguments, tail, list) = match msg {
            Message::RunTask { task_id, args, .. }
            | Message::RunActorCall { task_id, args, .. } => (*task_id, true, 0, args),
            Message::HostActor {
                args,
                max_concurrency,
                ..
            } => (
                TaskId(0),
                true,
                varint_len(u64::from(*max_concurrency)),
                args,
            ),
            Message::TaskResult {
                task_id,
                result: Ok(outputs),
            } => (*task_id, false, 0, outputs),
            _ => return None,
        };
        Some((
            ValueSlots {
                task_id,
                arguments,
                tail,
            },
            list,
        ))
    }

    /// The value list of `msg`, to fill (the message [`ValueSlots::of`] described).
    fn list_mut(msg: &mut Message) -> Option<&mut Vec<Vec<u8>>> {
        match msg {
            Message::RunTask { args, .. }
            | Message::RunActorCall { args, .. }
            | Message::HostActor { args, .. } => Some(args),
            Message::TaskResult {
                result: Ok(outputs),
                ..
            } => Some(outputs),
            _ => None,
        }
    }
}

fn varint_len(mut v: u64) -> usize {
    let mut n = 1;
    while v >= 0x80 {
        v >>= 7;
        n += 1;
    }
    n
}

/// The encoding of `shell` (a message of [`ValueSlots`] with an empty list) with the list
/// `values`, built from borrowed slices so that no value is copied into a message first.
/// `bytes` is their total size. Decodes as the message holding the values would.
fn encode_with_values<'a>(
    shell: &Message,
    slots: &ValueSlots,
    values: impl ExactSizeIterator<Item = &'a [u8]>,
    bytes: usize,
) -> Result<Vec<u8>> {
    // The empty list is a one-byte varint 0 right before the fields that follow it: keep
    // what precedes it, write the real list, then those fields.
    let mut out = shell.encode()?;
    let at = out
        .len()
        .checked_sub(slots.tail + 1)
        .filter(|at| out.get(*at) == Some(&0))
        .ok_or_else(|| {
            Error::new(
                ErrorKind::System,
                format!(
                    "a {} message to fill with values is not empty",
                    shell.name()
                ),
            )
        })?;
    let tail = out.split_off(at + 1);
    out.pop();
    out.reserve(bytes + 10 * (values.len() + 1) + tail.len());
    push_varint(&mut out, values.len() as u64);
    for v in values {
        push_varint(&mut out, v.len() as u64);
        out.extend_from_slice(v);
    }
    out.extend_from_slice(&tail);
    Ok(out)
}

/// The pieces of the values of the next message on a connection, as they arrive.
#[derive(Debug)]
struct ValuePieces {
    task_id: TaskId,
    /// The values complete so far, by increasing slot.
    done: Vec<(u32, Vec<u8>)>,
    /// The value being assembled: its slot, its size and its bytes so far.
    current: Option<(u32, u64, Vec<u8>)>,
}

impl ValuePieces {
    /// Adds one [`Message::ValueChunk`] to the pieces in `pending` (starting them on the first).
    fn add(
        pending: &mut Option<ValuePieces>,
        task_id: TaskId,
        index: u32,
        offset: u64,
        total: u64,
        bytes: Vec<u8>,
    ) -> Result<()> {
        let p = pending.get_or_insert_with(|| ValuePieces {
            task_id,
            done: Vec::new(),
            current: None,
        });
        let protocol = |m: String| Err(Error::new(ErrorKind::Protocol, m));
        if task_id != p.task_id {
            return protocol(format!(
                "a piece of task {task_id}'s values came among those of task {}",
                p.task_id
            ));
        }
        let (slot, buf) = match p.current.take() {
            None => {
                if offset != 0 {
                    return protocol(format!(
                        "value #{index} of task {task_id} began at offset {offset}, not 0"
                    ));
                }
                if let Some((last, _)) = p.done.last().filter(|(last, _)| *last >= index) {
                    return protocol(format!(
                        "value #{index} of task {task_id} came after value #{last}"
                    ));
                }
                if bytes.len() as u64 > total {
                    return protocol(format!(
                        "value #{index} of task {task_id} overflows its {total} bytes"
                    ));
                }
                if bytes.len() as u64 == total {
                    // A value in one piece: the piece is the value, no copy.
                    (index, bytes)
                } else {
                    let mut buf =
                        presized(total, &format_args!("value #{index} of task {task_id}"))?;
                    buf.extend_from_slice(&bytes);
                    (index, buf)
                }
            }
            Some((slot, size, mut buf)) => {
                if slot != index || size != total || offset != buf.len() as u64 {
                    return protocol(format!(
                        "piece of value #{index} of task {task_id} at offset {offset} (of {total}) out of order: expected value #{slot} at {} (of {size})",
                        buf.len()
                    ));
                }
                if buf.len() as u64 + bytes.len() as u64 > total {
                    return protocol(format!(
                        "value #{index} of task {task_id} overflows its {total} bytes"
                    ));
                }
                buf.extend_from_slice(&bytes);
                (slot, buf)
            }
        };
        if buf.len() as u64 == total {
            p.done.push((slot, buf));
        } else {
            p.current = Some((slot, total, buf));
        }
        Ok(())
    }

    /// Puts the assembled values into the empty slots of `msg`, the message they came before.
    fn fill(self, mut msg: Message) -> Result<Message> {
        let protocol = |m: String| Err(Error::new(ErrorKind::Protocol, m));
        let name = msg.name();
        let task_id = self.task_id;
        if let Some((slot, total, buf)) = &self.current {
            return protocol(format!(
                "a {name} message came before the last piece of value #{slot} of task {task_id} ({} of {total} bytes)",
                buf.len()
            ));
        }
        match ValueSlots::of(&msg) {
            Some((slots, _)) if slots.task_id == task_id => {}
            Some((slots, _)) => {
                return protocol(format!(
                    "the values of task {task_id} came before a {name} message of task {}",
                    slots.task_id
                ))
            }
            None => {
                return protocol(format!(
                    "the values of task {task_id} came before a {name} message, which carries none"
                ))
            }
        }
        let Some(list) = ValueSlots::list_mut(&mut msg) else {
            return protocol(format!("a {name} message carries no values"));
        };
        let len = list.len();
        for (slot, value) in self.done {
            match list.get_mut(slot as usize) {
                Some(empty) if empty.is_empty() => *empty = value,
                Some(_) => {
                    return protocol(format!(
                        "value #{slot} of task {task_id} came both in pieces and in its {name} message"
                    ))
                }
                None => {
                    return protocol(format!(
                        "value #{slot} of task {task_id} came in pieces, but its {name} message has {len} values"
                    ))
                }
            }
        }
        Ok(msg)
    }
}

/// Compares two tokens in time that depends only on their lengths, not on where they differ.
pub fn tokens_match(expected: &str, given: &str) -> bool {
    let (expected, given) = (expected.as_bytes(), given.as_bytes());
    let mut diff = u8::from(expected.len() != given.len());
    for (i, e) in expected.iter().enumerate() {
        diff |= e ^ given.get(i).copied().unwrap_or(0);
    }
    std::hint::black_box(diff) == 0
}

fn codec(max_frame: usize) -> LengthDelimitedCodec {
    LengthDelimitedCodec::builder()
        .max_frame_length(max_frame)
        .new_codec()
}

/// One authenticated (or authenticating) TCP connection carrying [`Message`]s.
pub struct Connection {
    reader: FrameReader,
    writer: FrameWriter,
}

impl fmt::Debug for Connection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Connection")
            .field("peer", &self.reader.peer)
            .field("local", &self.reader.local)
            .finish()
    }
}

/// The receiving half of a [`Connection`].
pub struct FrameReader {
    frames: FramedRead<OwnedReadHalf, LengthDelimitedCodec>,
    peer: SocketAddr,
    local: SocketAddr,
    /// The pieces of values received so far for the next message (see
    /// [`FrameReader::recv_values`]); kept here so that a cancelled read loses nothing.
    pieces: Option<ValuePieces>,
}

impl fmt::Debug for FrameReader {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FrameReader")
            .field("peer", &self.peer)
            .finish()
    }
}

/// The sending half of a [`Connection`].
pub struct FrameWriter {
    frames: FramedWrite<OwnedWriteHalf, LengthDelimitedCodec>,
    peer: SocketAddr,
}

impl fmt::Debug for FrameWriter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FrameWriter")
            .field("peer", &self.peer)
            .finish()
    }
}

fn network(what: String, e: io::Error) -> Error {
    Error::new(ErrorKind::Network, format!("{what}: {e}"))
}

impl FrameReader {
    /// The next message. Cancel-safe: a message is never half-read when the future is dropped.
    /// The peer closing the connection is an error of kind [`ErrorKind::Network`].
    pub async fn recv(&mut self) -> Result<Message> {
        // Frames already buffered come back without touching the socket, so without this a
        // connection that floods its daemon would keep the daemon's thread to itself and starve
        // the others (heartbeats included). Nothing is read before it: cancel-safe.
        tokio::task::consume_budget().await;
        match self.frames.next().await {
            Some(Ok(frame)) => Message::decode(&frame).map_err(|e| {
                Error::new(
                    ErrorKind::Protocol,
                    format!("from {}: {}", self.peer, e.message()),
                )
            }),
            Some(Err(e)) if is_too_large(&e) => Err(Error::new(
                ErrorKind::Protocol,
                format!(
                    "{} sent a frame larger than {} bytes",
                    self.peer,
                    self.frames.decoder().max_frame_length()
                ),
            )),
            Some(Err(e)) => Err(network(format!("reading from {}", self.peer), e)),
            None => Err(Error::new(
                ErrorKind::Network,
                format!("{} closed the connection", self.peer),
            )),
        }
    }

    /// [`recv`](Self::recv), giving up after `timeout`.
    pub async fn recv_timeout(&mut self, timeout: Duration) -> Result<Message> {
        match tokio::time::timeout(timeout, self.recv()).await {
            Ok(r) => r,
            Err(_) => Err(Error::new(
                ErrorKind::Network,
                format!("{} did not answer within {timeout:?}", self.peer),
            )),
        }
    }

    /// The next message other than a [`Message::ValueChunk`], with the values that came in
    /// pieces before it in their slots (see [`FrameWriter::feed_with_values`]). Cancel-safe:
    /// the pieces read so far stay with the reader. A piece out of order, or pieces before a
    /// message that has no slot for them, is an error of kind [`ErrorKind::Protocol`] (the
    /// pieces are dropped; the connection is best closed).
    pub async fn recv_values(&mut self) -> Result<Message> {
        loop {
            let msg = match self.recv().await? {
                Message::ValueChunk {
                    task_id,
                    index,
                    offset,
                    total,
                    bytes,
                } => ValuePieces::add(&mut self.pieces, task_id, index, offset, total, bytes)
                    .map(|()| None),
                other => match self.pieces.take() {
                    None => return Ok(other),
                    Some(pieces) => pieces.fill(other).map(Some),
                },
            };
            match msg {
                Ok(Some(msg)) => return Ok(msg),
                Ok(None) => {}
                Err(e) => {
                    self.pieces = None;
                    return Err(Error::new(
                        e.kind(),
                        format!("from {}: {}", self.peer, e.message()),
                    ));
                }
            }
        }
    }

    /// The peer's address.
    pub fn peer_addr(&self) -> SocketAddr {
        self.peer
    }
}

fn is_too_large(e: &io::Error) -> bool {
    e.get_ref()
        .is_some_and(|inner| inner.is::<LengthDelimitedCodecError>())
}

impl FrameWriter {
    /// Sends one message and flushes.
    pub async fn send(&mut self, msg: &Message) -> Result<()> {
        self.feed(msg).await?;
        self.flush().await
    }

    /// Queues one message without flushing, so that many small messages share one write.
    pub async fn feed(&mut self, msg: &Message) -> Result<()> {
        let payload = msg.encode()?;
        let peer = self.peer;
        self.frames
            .feed(Bytes::from(payload))
            .await
            .map_err(|e| network(format!("sending a {} message to {peer}", msg.name()), e))
    }

    /// Sends one already encoded message (see [`encode_object_data`]) and flushes; `name`
    /// names it in errors.
    pub async fn send_encoded(&mut self, name: &str, payload: Vec<u8>) -> Result<()> {
        let peer = self.peer;
        self.frames
            .send(Bytes::from(payload))
            .await
            .map_err(|e| network(format!("sending a {name} message to {peer}"), e))
    }

    /// Queues one already encoded message without flushing; `name` names it in errors.
    pub async fn feed_encoded(&mut self, name: &str, payload: Vec<u8>) -> Result<()> {
        let peer = self.peer;
        self.frames
            .feed(Bytes::from(payload))
            .await
            .map_err(|e| network(format!("sending a {name} message to {peer}"), e))
    }

    /// Sends a stored value: one [`Message::ObjectData`] when it fits in [`OBJECT_CHUNK`],
    /// else [`Message::ObjectChunk`]s, each encoded from a slice of `bytes` (one piece in
    /// memory at a time). Flushes at the end.
    pub async fn send_object(&mut self, id: ObjectId, bytes: &[u8]) -> Result<()> {
        if bytes.len() <= OBJECT_CHUNK {
            return self
                .send_encoded("ObjectData", encode_object_data(id, bytes)?)
                .await;
        }
        self.feed_object_chunks(id, bytes).await?;
        self.flush().await
    }

    /// Queues `bytes` as [`Message::ObjectChunk`]s (flushing as the codec's buffer fills).
    pub async fn feed_object_chunks(&mut self, id: ObjectId, bytes: &[u8]) -> Result<()> {
        let total = bytes.len() as u64;
        let mut offset = 0usize;
        for piece in bytes.chunks(OBJECT_CHUNK) {
            let payload = encode_object_chunk(id, offset as u64, total, piece)?;
            self.feed_encoded("ObjectChunk", payload).await?;
            offset += piece.len();
        }
        Ok(())
    }

    /// Queues `shell` with the list `values` in its value slots: the arguments of a
    /// [`Message::RunTask`], [`Message::RunActorCall`] or [`Message::HostActor`], or the outputs
    /// of an `Ok` [`Message::TaskResult`], whose list in `shell` is empty. Values that fit one
    /// frame ([`OBJECT_CHUNK`] bytes in all) go in it as they would in the message; the others
    /// go first as [`Message::ValueChunk`]s (arguments as one value, their concatenation), each
    /// piece encoded from slices of `values`, so no value is copied whole. With no `values`,
    /// `shell` goes as it is. The receiver reads it with [`FrameReader::recv_values`].
    pub async fn feed_with_values<V: AsRef<[u8]>>(
        &mut self,
        shell: &Message,
        values: &[V],
    ) -> Result<()> {
        if values.is_empty() {
            return self.feed(shell).await;
        }
        let slots = match ValueSlots::of(shell) {
            Some((slots, list)) if list.is_empty() => slots,
            _ => {
                return Err(Error::new(
                    ErrorKind::System,
                    format!(
                        "a {} message cannot be sent with values (it needs an empty value list)",
                        shell.name()
                    ),
                ))
            }
        };
        let size: usize = values.iter().map(|v| v.as_ref().len()).sum();
        let payload = if size <= OBJECT_CHUNK {
            encode_with_values(shell, &slots, values.iter().map(AsRef::as_ref), size)?
        } else if slots.arguments {
            let parts: Vec<&[u8]> = values.iter().map(AsRef::as_ref).collect();
            self.feed_value_chunks(slots.task_id, 0, &parts, size)
                .await?;
            encode_with_values(shell, &slots, std::iter::once(&[][..]), 0)?
        } else {
            // Outputs are objects of their own: each in the frame while room is left, else in
            // pieces.
            let mut inline = 0usize;
            let mut placed: Vec<&[u8]> = Vec::with_capacity(values.len());
            for (index, v) in values.iter().enumerate() {
                let v = v.as_ref();
                if inline + v.len() <= OBJECT_CHUNK {
                    inline += v.len();
                    placed.push(v);
                    continue;
                }
                let index = u32::try_from(index).map_err(|_| {
                    Error::new(
                        ErrorKind::System,
                        format!("a {} message has too many values", shell.name()),
                    )
                })?;
                self.feed_value_chunks(slots.task_id, index, &[v], v.len())
                    .await?;
                placed.push(&[]);
            }
            encode_with_values(shell, &slots, placed.into_iter(), inline)?
        };
        self.feed_encoded(shell.name(), payload).await
    }

    /// [`feed_with_values`](Self::feed_with_values), then flush.
    pub async fn send_with_values<V: AsRef<[u8]>>(
        &mut self,
        shell: &Message,
        values: &[V],
    ) -> Result<()> {
        self.feed_with_values(shell, values).await?;
        self.flush().await
    }

    /// Queues the value made of `parts` (in order, `total` bytes in all) as the
    /// [`Message::ValueChunk`]s of slot `index`, each piece copied once from the parts.
    async fn feed_value_chunks(
        &mut self,
        task_id: TaskId,
        index: u32,
        parts: &[&[u8]],
        total: usize,
    ) -> Result<()> {
        let mut parts = parts.iter().copied();
        let mut rest: &[u8] = &[];
        let mut offset = 0usize;
        while offset < total {
            let len = (total - offset).min(OBJECT_CHUNK);
            // As in `encode_object_chunk`: the message with an empty piece ends in its
            // length, a one-byte varint 0.
            let mut out = Message::ValueChunk {
                task_id,
                index,
                offset: offset as u64,
                total: total as u64,
                bytes: Vec::new(),
            }
            .encode()?;
            out.pop();
            out.reserve(len + 10);
            push_varint(&mut out, len as u64);
            let mut need = len;
            while need > 0 {
                if rest.is_empty() {
                    match parts.next() {
                        Some(p) => rest = p,
                        None => break,
                    }
                    continue;
                }
                let take = rest.len().min(need);
                out.extend_from_slice(&rest[..take]);
                rest = &rest[take..];
                need -= take;
            }
            if need > 0 {
                return Err(Error::new(
                    ErrorKind::System,
                    format!("a value of task {task_id} is shorter than its {total} bytes"),
                ));
            }
            self.feed_encoded("ValueChunk", out).await?;
            offset += len;
        }
        Ok(())
    }

    /// Writes every queued message.
    pub async fn flush(&mut self) -> Result<()> {
        let peer = self.peer;
        SinkExt::<Bytes>::flush(&mut self.frames)
            .await
            .map_err(|e| network(format!("writing to {peer}"), e))
    }
}

impl Connection {
    fn new(stream: TcpStream) -> Result<Connection> {
        // Small request/answer messages: do not wait to fill a segment.
        let _ = stream.set_nodelay(true);
        let peer = stream
            .peer_addr()
            .map_err(|e| network("reading the peer address".into(), e))?;
        let local = stream
            .local_addr()
            .map_err(|e| network("reading the local address".into(), e))?;
        let (r, w) = stream.into_split();
        Ok(Connection {
            reader: FrameReader {
                frames: FramedRead::new(r, codec(HANDSHAKE_MAX_FRAME)),
                peer,
                local,
                pieces: None,
            },
            writer: FrameWriter {
                frames: FramedWrite::new(w, codec(HANDSHAKE_MAX_FRAME)),
                peer,
            },
        })
    }

    /// Connects to `address` (`HOST:PORT`), proves `token` and returns the connection with the
    /// peer's [`Welcome`]. A refusal is an error of kind [`ErrorKind::Unauthorized`] or
    /// [`ErrorKind::Protocol`] that carries the peer's reason.
    pub async fn connect(address: &str, token: &str, role: Role) -> Result<(Connection, Welcome)> {
        let stream = match tokio::time::timeout(CONNECT_TIMEOUT, TcpStream::connect(address)).await
        {
            Ok(Ok(s)) => s,
            Ok(Err(e)) => return Err(network(format!("cannot connect to {address}"), e)),
            Err(_) => {
                return Err(Error::new(
                    ErrorKind::Network,
                    format!("cannot connect to {address}: no answer within {CONNECT_TIMEOUT:?}"),
                ))
            }
        };
        let mut conn = Connection::new(stream)?;
        conn.send(&Message::Hello {
            version: PROTOCOL_VERSION,
            token: token.to_owned(),
            role,
        })
        .await?;
        match conn.reader.recv_timeout(HANDSHAKE_TIMEOUT).await {
            Ok(Message::Welcome(w)) if w.version == PROTOCOL_VERSION => {
                conn.authenticated();
                Ok((conn, w))
            }
            Ok(Message::Welcome(w)) => Err(Error::new(
                ErrorKind::Protocol,
                format!(
                    "{address} speaks raykit protocol version {}, this program speaks {PROTOCOL_VERSION}",
                    w.version
                ),
            )),
            Ok(Message::Refused { refusal, reason }) => Err(Error::new(
                refusal.error_kind(),
                format!("{address} refused the connection: {reason}"),
            )),
            Ok(other) => Err(Error::new(
                ErrorKind::Protocol,
                format!(
                    "{address} answered the handshake with a {} message",
                    other.name()
                ),
            )),
            Err(e) => Err(Error::with_source(
                e.kind(),
                format!("handshake with {address} failed: {e}"),
                e,
            )),
        }
    }

    /// Runs the accepting side of the handshake on a fresh `stream`: reads the peer's hello,
    /// checks the token first, then the version, and answers `welcome` or a refusal. On refusal
    /// the peer has been told why, the connection is closed and the error says what happened.
    pub async fn accept(
        stream: TcpStream,
        token: &str,
        welcome: Welcome,
    ) -> Result<(Connection, Role)> {
        let mut conn = Connection::new(stream)?;
        let peer = conn.peer_addr();
        let first = tokio::time::timeout(HANDSHAKE_TIMEOUT, conn.reader.frames.next()).await;
        let payload = match first {
            Ok(Some(Ok(frame))) => frame,
            Ok(Some(Err(e))) if is_too_large(&e) => {
                let reason = format!(
                    "the handshake frame is larger than the {HANDSHAKE_MAX_FRAME}-byte limit"
                );
                return Err(conn.refuse(Refusal::TooLarge, reason).await);
            }
            Ok(Some(Err(e))) => return Err(network(format!("handshake with {peer}"), e)),
            Ok(None) => {
                return Err(Error::new(
                    ErrorKind::Network,
                    format!("{peer} closed the connection before the handshake"),
                ))
            }
            Err(_) => {
                let reason = format!("no handshake within {HANDSHAKE_TIMEOUT:?}");
                return Err(conn.refuse(Refusal::Timeout, reason).await);
            }
        };
        let (version, given, role) = match Message::decode(&payload) {
            Ok(Message::Hello {
                version,
                token,
                role,
            }) => (version, token, role),
            Ok(other) => {
                let reason = format!("expected a Hello handshake, got a {} message", other.name());
                return Err(conn.refuse(Refusal::UnexpectedMessage, reason).await);
            }
            Err(e) => {
                let reason = format!("malformed handshake frame: {}", e.message());
                return Err(conn.refuse(Refusal::Malformed, reason).await);
            }
        };
        if !tokens_match(token, &given) {
            let reason = "wrong cluster token (pass --token or set RAYKIT_TOKEN)".to_owned();
            return Err(conn.refuse(Refusal::Unauthorized, reason).await);
        }
        if version != PROTOCOL_VERSION {
            let reason = format!(
                "protocol version mismatch: the peer speaks version {version}, this daemon speaks {PROTOCOL_VERSION}"
            );
            return Err(conn.refuse(Refusal::VersionMismatch, reason).await);
        }
        conn.send(&Message::Welcome(welcome)).await?;
        conn.authenticated();
        Ok((conn, role))
    }

    /// Tells the peer why it is refused, closes the connection and returns the error to log.
    async fn refuse(self, refusal: Refusal, reason: String) -> Error {
        let peer = self.peer_addr();
        let Connection { reader, mut writer } = self;
        let _ = tokio::time::timeout(
            HANDSHAKE_TIMEOUT,
            writer.send(&Message::Refused {
                refusal,
                reason: reason.clone(),
            }),
        )
        .await;
        // Close our side, then drain what the peer still sends for a moment: closing a socket
        // with unread input resets it, and the peer could lose the refusal before reading it.
        drop(writer);
        let mut rest = reader.frames.into_inner();
        let _ = tokio::time::timeout(Duration::from_millis(500), async {
            let mut buf = vec![0u8; 16 * 1024];
            let mut drained = 0usize;
            while drained < 4 * HANDSHAKE_MAX_FRAME {
                match rest.read(&mut buf).await {
                    Ok(0) | Err(_) => break,
                    Ok(n) => drained += n,
                }
            }
        })
        .await;
        Error::new(
            refusal.error_kind(),
            format!("refused the connection from {peer}: {reason}"),
        )
    }

    fn authenticated(&mut self) {
        self.reader
            .frames
            .decoder_mut()
            .set_max_frame_length(MAX_FRAME);
        self.writer
            .frames
            .encoder_mut()
            .set_max_frame_length(MAX_FRAME);
    }

    /// Sends one message and flushes.
    pub async fn send(&mut self, msg: &Message) -> Result<()> {
        self.writer.send(msg).await
    }

    /// Sends one already encoded message (see [`FrameWriter::send_encoded`]).
    pub async fn send_encoded(&mut self, name: &str, payload: Vec<u8>) -> Result<()> {
        self.writer.send_encoded(name, payload).await
    }

    /// Queues one message without flushing (see [`FrameWriter::feed`]).
    pub async fn feed(&mut self, msg: &Message) -> Result<()> {
        self.writer.feed(msg).await
    }

    /// Writes every queued message.
    pub async fn flush(&mut self) -> Result<()> {
        self.writer.flush().await
    }

    /// The next message (see [`FrameReader::recv`]).
    pub async fn recv(&mut self) -> Result<Message> {
        self.reader.recv().await
    }

    /// The next message, giving up after `timeout`.
    pub async fn recv_timeout(&mut self, timeout: Duration) -> Result<Message> {
        self.reader.recv_timeout(timeout).await
    }

    /// Sends `shell` with `values` in its value slots, large ones in pieces, and flushes (see
    /// [`FrameWriter::feed_with_values`]).
    pub async fn send_with_values<V: AsRef<[u8]>>(
        &mut self,
        shell: &Message,
        values: &[V],
    ) -> Result<()> {
        self.writer.send_with_values(shell, values).await
    }

    /// The next message with the values that came before it in pieces (see
    /// [`FrameReader::recv_values`]).
    pub async fn recv_values(&mut self) -> Result<Message> {
        self.reader.recv_values().await
    }

    /// Sends a stored value in one frame or in pieces (see [`FrameWriter::send_object`]).
    pub async fn send_object(&mut self, id: ObjectId, bytes: &[u8]) -> Result<()> {
        self.writer.send_object(id, bytes).await
    }

    /// Asks for object `id` with [`Message::FetchObject`] and reads the answer: the value (from
    /// one [`Message::ObjectData`] or assembled from [`Message::ObjectChunk`]s into one buffer),
    /// or the peer's error. Each frame must arrive within `timeout`. An error of kind
    /// [`ErrorKind::Network`] or [`ErrorKind::Protocol`] leaves the connection unusable.
    pub async fn fetch_object(&mut self, id: ObjectId, timeout: Duration) -> Result<Vec<u8>> {
        self.send(&Message::FetchObject { id }).await?;
        let mut assembler: Option<ChunkAssembler> = None;
        loop {
            match self.recv_timeout(timeout).await? {
                Message::ObjectData { id: got, bytes } if got == id && assembler.is_none() => {
                    return Ok(bytes)
                }
                Message::ObjectChunk {
                    id: got,
                    offset,
                    total,
                    bytes,
                } => {
                    let a = match assembler.as_mut() {
                        Some(a) => a,
                        None => assembler.insert(ChunkAssembler::new(got, total)?),
                    };
                    if a.id() != id {
                        return Err(Error::new(
                            ErrorKind::Protocol,
                            format!("{} sent object {got} for a fetch of {id}", self.peer_addr()),
                        ));
                    }
                    if a.add(got, offset, total, &bytes)? {
                        drop(bytes);
                        return Ok(assembler
                            .take()
                            .map(ChunkAssembler::finish)
                            .unwrap_or_default());
                    }
                }
                Message::Failed { error } if assembler.is_none() => return Err(error),
                other => {
                    return Err(Error::new(
                        ErrorKind::Protocol,
                        format!(
                            "{} answered FetchObject with a {} message",
                            self.peer_addr(),
                            other.name()
                        ),
                    ))
                }
            }
        }
    }

    /// Sends `msg` and waits at most `timeout` for the answer.
    pub async fn request(&mut self, msg: &Message, timeout: Duration) -> Result<Message> {
        self.send(msg).await?;
        self.recv_timeout(timeout).await
    }

    /// The peer's address.
    pub fn peer_addr(&self) -> SocketAddr {
        self.reader.peer
    }

    /// This side's address: the interface the peer reaches us on.
    pub fn local_addr(&self) -> SocketAddr {
        self.reader.local
    }

    /// Splits the connection so that one task reads while another writes.
    pub fn split(self) -> (FrameReader, FrameWriter) {
        (self.reader, self.writer)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_compare_by_value() {
        assert!(tokens_match("abc", "abc"));
        assert!(!tokens_match("abc", "abd"));
        assert!(!tokens_match("abc", "ab"));
        assert!(!tokens_match("abc", "abcd"));
        assert!(!tokens_match("abc", ""));
    }

    #[test]
    fn byte_fields_encode_as_sequences_of_u8_would() {
        #[derive(Serialize)]
        struct Plain {
            list: Vec<Vec<u8>>,
            opt: Option<Vec<u8>>,
            result: std::result::Result<Vec<Vec<u8>>, Error>,
        }
        let list = vec![vec![1u8, 2, 3], vec![], (0..200).map(|i| i as u8).collect()];
        let msg = Message::RunTask {
            task_id: TaskId(5),
            function: "f".into(),
            signature_hash: 9,
            args: list.clone(),
        };
        let plain =
            postcard::to_allocvec(&(msg.encode().unwrap()[0], 5u128, "f", 9u64, list.clone()))
                .unwrap();
        assert_eq!(msg.encode().unwrap(), plain);
        let with = Message::TaskResult {
            task_id: TaskId(1),
            result: Ok(list.clone()),
        };
        let Message::TaskResult { result, .. } = Message::decode(&with.encode().unwrap()).unwrap()
        else {
            panic!()
        };
        assert_eq!(result.unwrap(), list);
        let stored = StoredObject {
            id: postcard::from_bytes(&[1]).unwrap(),
            size: 3,
            inline: Some(vec![4, 5, 6]),
        };
        let bytes = postcard::to_allocvec(&stored).unwrap();
        assert_eq!(
            bytes,
            postcard::to_allocvec(&(1u8, 3u8, Some(vec![4u8, 5, 6]))).unwrap()
        );
        let _ = Plain {
            list,
            opt: None,
            result: Err(Error::new(ErrorKind::System, "x")),
        };
    }

    #[test]
    fn object_data_encodes_like_the_message() {
        let id: ObjectId =
            postcard::from_bytes(&postcard::to_allocvec(&(7u128 << 64 | 3)).unwrap()).unwrap();
        for len in [0usize, 1, 127, 128, 300, 70_000] {
            let bytes: Vec<u8> = (0..len).map(|i| i as u8).collect();
            let raw = encode_object_data(id, &bytes).unwrap();
            let msg = Message::ObjectData {
                id,
                bytes: bytes.clone(),
            };
            assert_eq!(raw, msg.encode().unwrap(), "length {len}");
        }
    }

    #[test]
    fn object_chunks_encode_like_the_message_and_assemble_in_order() {
        let id: ObjectId = postcard::from_bytes(&postcard::to_allocvec(&9u128).unwrap()).unwrap();
        let value: Vec<u8> = (0..300u32).map(|i| i as u8).collect();
        let mut a = ChunkAssembler::new(id, 300).unwrap();
        for (i, piece) in value.chunks(128).enumerate() {
            let offset = (i * 128) as u64;
            let raw = encode_object_chunk(id, offset, 300, piece).unwrap();
            let msg = Message::ObjectChunk {
                id,
                offset,
                total: 300,
                bytes: piece.to_vec(),
            };
            assert_eq!(raw, msg.encode().unwrap());
            assert_eq!(a.add(id, offset, 300, piece).unwrap(), i == 2);
        }
        assert_eq!(a.finish(), value);
        let mut b = ChunkAssembler::new(id, 300).unwrap();
        assert!(b.add(id, 128, 300, &value[..128]).is_err());
        assert!(ChunkAssembler::new(id, u64::MAX).is_err());
    }

    /// Two authenticated ends of a loopback TCP connection.
    async fn connected_pair() -> (Connection, Connection) {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let address = listener.local_addr().unwrap();
        let (a, b) = tokio::join!(TcpStream::connect(address), listener.accept());
        let mut a = Connection::new(a.unwrap()).unwrap();
        let mut b = Connection::new(b.unwrap().0).unwrap();
        a.authenticated();
        b.authenticated();
        (a, b)
    }

    /// `len` bytes that differ from those of another `seed`.
    fn bytes(len: usize, seed: u8) -> Vec<u8> {
        (0..len)
            .map(|i| (i as u8).wrapping_mul(31).wrapping_add(seed))
            .collect()
    }

    #[test]
    fn values_encode_like_the_message_holding_them() {
        let list = vec![bytes(3, 1), Vec::new(), bytes(200, 2)];
        let size = list.iter().map(Vec::len).sum();
        let full_and_shell = |values: Vec<Vec<u8>>| -> Vec<(Message, Message)> {
            let run = |args| Message::RunTask {
                task_id: TaskId(7 << 70),
                function: "m::f".into(),
                signature_hash: 99,
                args,
            };
            let call = |args| Message::RunActorCall {
                task_id: TaskId(3),
                method: "go".into(),
                args,
            };
            let host = |args, max_concurrency| Message::HostActor {
                actor_id: postcard::from_bytes(&[5]).unwrap(),
                class: "m::A".into(),
                signature_hash: 1 << 40,
                args,
                max_concurrency,
            };
            let result = |outputs| Message::TaskResult {
                task_id: TaskId(u128::MAX),
                result: Ok(outputs),
            };
            vec![
                (run(values.clone()), run(Vec::new())),
                (call(values.clone()), call(Vec::new())),
                (host(values.clone(), 1), host(Vec::new(), 1)),
                (host(values.clone(), 300_000), host(Vec::new(), 300_000)),
                (result(values.clone()), result(Vec::new())),
            ]
        };
        for (full, shell) in full_and_shell(list.clone()) {
            let (slots, _) = ValueSlots::of(&shell).unwrap();
            let raw =
                encode_with_values(&shell, &slots, list.iter().map(Vec::as_slice), size).unwrap();
            assert_eq!(raw, full.encode().unwrap(), "{}", full.name());
        }
        // A shell that already holds values cannot take more.
        for (full, _) in full_and_shell(list.clone()) {
            let (slots, _) = ValueSlots::of(&full).unwrap();
            assert!(encode_with_values(&full, &slots, std::iter::empty(), 0).is_err());
        }
    }

    #[tokio::test]
    async fn large_arguments_and_outputs_cross_in_pieces_and_assemble() {
        let (mut node, mut worker) = connected_pair().await;
        let big = bytes(2 * OBJECT_CHUNK + 12_345, 3);
        let args = vec![bytes(10, 4), big.clone(), Vec::new(), bytes(77, 5)];
        let tuple = args.concat();
        let shell = Message::RunTask {
            task_id: TaskId(42),
            function: "m::f".into(),
            signature_hash: 9,
            args: Vec::new(),
        };
        // As the node sends a task: on the wire, pieces of the argument tuple, each at most
        // OBJECT_CHUNK, then the message with one empty slot.
        let sending = tokio::spawn(async move {
            node.send_with_values(&shell, &args).await.unwrap();
            node.send_with_values(&shell, &args).await.unwrap();
            node
        });
        let mut offset = 0;
        loop {
            match worker.recv().await.unwrap() {
                Message::ValueChunk {
                    task_id,
                    index,
                    offset: at,
                    total,
                    bytes,
                } => {
                    assert_eq!(
                        (task_id, index, at, total),
                        (TaskId(42), 0, offset, tuple.len() as u64)
                    );
                    assert!(bytes.len() <= OBJECT_CHUNK);
                    assert_eq!(bytes, tuple[offset as usize..][..bytes.len()]);
                    offset += bytes.len() as u64;
                }
                Message::RunTask { args, .. } => {
                    assert_eq!(args, vec![Vec::<u8>::new()]);
                    break;
                }
                other => panic!("unexpected {}", other.name()),
            }
        }
        assert_eq!(offset, tuple.len() as u64);
        // As the worker reads it: the tuple assembled in its slot.
        let Message::RunTask { task_id, args, .. } = worker.recv_values().await.unwrap() else {
            panic!("not a RunTask")
        };
        assert_eq!(task_id, TaskId(42));
        assert_eq!(args.len(), 1);
        assert!(args[0] == tuple);
        let mut node = sending.await.unwrap();

        // Outputs are objects of their own: each large one in pieces, small ones in the frame.
        let outputs = vec![
            bytes(OBJECT_CHUNK + 1, 6),
            bytes(100, 7),
            Vec::new(),
            bytes(OBJECT_CHUNK, 8),
            bytes(5, 9),
        ];
        let expected = outputs.clone();
        let answer = Message::TaskResult {
            task_id: TaskId(42),
            result: Ok(Vec::new()),
        };
        let sending = tokio::spawn(async move {
            worker.send_with_values(&answer, &outputs).await.unwrap();
            // A small answer stays one frame.
            worker
                .send_with_values(&answer, &[vec![1u8, 2, 3]])
                .await
                .unwrap();
            worker
        });
        let Message::TaskResult { result, .. } = node.recv_values().await.unwrap() else {
            panic!("not a TaskResult")
        };
        assert!(result.unwrap() == expected);
        let Message::TaskResult { result, .. } = node.recv().await.unwrap() else {
            panic!("a small answer came in pieces")
        };
        assert_eq!(result.unwrap(), vec![vec![1u8, 2, 3]]);
        let mut worker = sending.await.unwrap();

        // An actor's constructor arguments, with a field after the list.
        let host = Message::HostActor {
            actor_id: postcard::from_bytes(&[1]).unwrap(),
            class: "m::A".into(),
            signature_hash: 3,
            args: Vec::new(),
            max_concurrency: 1000,
        };
        let args = vec![big.clone()];
        let sending = tokio::spawn(async move {
            node.send_with_values(&host, &args).await.unwrap();
        });
        let Message::HostActor {
            args,
            max_concurrency,
            ..
        } = worker.recv_values().await.unwrap()
        else {
            panic!("not a HostActor")
        };
        assert_eq!(max_concurrency, 1000);
        assert!(args == vec![big]);
        sending.await.unwrap();
    }

    #[tokio::test]
    async fn malformed_pieces_are_protocol_errors() {
        let chunk =
            |task: u128, index: u32, offset: u64, total: u64, len: usize| Message::ValueChunk {
                task_id: TaskId(task),
                index,
                offset,
                total,
                bytes: vec![1; len],
            };
        let run = |task: u128, args: Vec<Vec<u8>>| Message::RunTask {
            task_id: TaskId(task),
            function: "f".into(),
            signature_hash: 0,
            args,
        };
        let cases: Vec<(&str, Vec<Message>)> = vec![
            ("a gap", vec![chunk(1, 0, 0, 10, 4), chunk(1, 0, 5, 10, 5)]),
            ("no first piece", vec![chunk(1, 0, 4, 10, 6)]),
            (
                "another task",
                vec![chunk(1, 0, 0, 10, 4), chunk(2, 0, 4, 10, 6)],
            ),
            (
                "another value",
                vec![chunk(1, 0, 0, 10, 4), chunk(1, 1, 4, 10, 6)],
            ),
            (
                "overflow",
                vec![chunk(1, 0, 0, 10, 4), chunk(1, 0, 4, 10, 7)],
            ),
            ("too big at once", vec![chunk(1, 0, 0, 3, 4)]),
            (
                "slots going back",
                vec![chunk(1, 1, 0, 2, 2), chunk(1, 0, 0, 2, 2)],
            ),
            (
                "unfinished",
                vec![chunk(1, 0, 0, 10, 4), run(1, vec![Vec::new()])],
            ),
            ("for no message", vec![chunk(1, 0, 0, 2, 2), Message::Stop]),
            (
                "for another task",
                vec![chunk(1, 0, 0, 2, 2), run(2, vec![Vec::new()])],
            ),
            (
                "a full slot",
                vec![chunk(1, 0, 0, 2, 2), run(1, vec![vec![9]])],
            ),
            (
                "a missing slot",
                vec![chunk(1, 1, 0, 2, 2), run(1, vec![Vec::new()])],
            ),
            ("too large", vec![chunk(1, 0, 0, u64::MAX, 2)]),
        ];
        for (case, messages) in cases {
            let (mut a, mut b) = connected_pair().await;
            for m in &messages {
                a.feed(m).await.unwrap();
            }
            // Something that would be fine after the bad part.
            a.send(&Message::Stop).await.unwrap();
            let e = b.recv_values().await.unwrap_err();
            assert_eq!(e.kind(), ErrorKind::Protocol, "{case}: {e}");
            assert!(e.message().contains("task"), "{case}: {e}");
        }
        // The right pieces, then a well-formed message, pass.
        let (mut a, mut b) = connected_pair().await;
        for m in [
            chunk(1, 1, 0, 3, 2),
            chunk(1, 1, 2, 3, 1),
            run(1, vec![vec![7], Vec::new()]),
        ] {
            a.feed(&m).await.unwrap();
        }
        a.flush().await.unwrap();
        let Message::RunTask { args, .. } = b.recv_values().await.unwrap() else {
            panic!("not a RunTask")
        };
        assert_eq!(args, vec![vec![7], vec![1, 1, 1]]);
    }

    #[test]
    fn handshake_variants_keep_their_indices() {
        // The first byte of a postcard enum is the variant index: the handshake is frozen.
        let hello = Message::Hello {
            version: 7,
            token: "t".into(),
            role: Role::Client,
        };
        assert_eq!(hello.encode().unwrap()[0], 0);
        let refused = Message::Refused {
            refusal: Refusal::Unauthorized,
            reason: String::new(),
        };
        assert_eq!(refused.encode().unwrap()[0], 2);
    }
}
