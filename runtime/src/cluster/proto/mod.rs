//! The wire protocol between daemons, drivers, workers and the CLI: the [`Message`] enum, the
//! versioned handshake that proves the cluster token, and [`Connection`], a TCP stream cut into
//! length-delimited frames (`tokio_util`'s [`LengthDelimitedCodec`]) holding postcard payloads.
//!
//! This module owns framing, encoding, limits and authentication. It must not know what a
//! message means: the head, the node and the CLI give messages their meaning.
//!
//! # The handshake
//!
//! Before a peer has proven the cluster token, its frames are decoded only as the small
//! [`Handshake`] type, at most [`HANDSHAKE_MAX_FRAME`] bytes each, within
//! [`HANDSHAKE_TIMEOUT`]. The connecting side says hello with its version, role and a nonce;
//! the accepting side checks the version and challenges with its own nonce; the connecting side
//! answers with an HMAC-SHA256 of both nonces keyed by the token, and the accepting side
//! welcomes it with its own proof, which the connecting side checks: the token itself never
//! crosses the wire (see [`handshake`]). Only after a welcome do both sides accept frames of
//! [`Message`]s up to [`MAX_FRAME`] bytes.
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
use tokio::net::TcpStream;
use tokio_util::codec::{FramedRead, FramedWrite, LengthDelimitedCodec, LengthDelimitedCodecError};

use crate::actor::ActorId;
use crate::cluster::node::arena::ArenaLocation;
use crate::error::{Error, ErrorKind, Result};
use crate::object::ObjectId;
use crate::runtime::NodeId;

/// The protocol version this build speaks. Bump it whenever the encoding of any message after
/// the three handshake variants changes; peers of different versions refuse each other.
pub const PROTOCOL_VERSION: u32 = 11;

/// The largest frame accepted before the peer has proven the token.
pub const HANDSHAKE_MAX_FRAME: usize = 4 * 1024;

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
    /// The first frame was a valid handshake frame but not a hello.
    UnexpectedMessage,
    /// The peer's address had too many handshakes refused lately; it may try again later.
    RateLimited,
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

/// What the accepting side tells a peer that proved the token.
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
/// Only an authenticated peer's frames are decoded as a `Message` (before that, only the small
/// [`Handshake`] type). postcard encodes a variant as its index, so the order is the protocol:
/// new variants are appended at the end, and any change bumps [`PROTOCOL_VERSION`].
#[derive(Debug, Clone, Serialize, Deserialize)]
pub enum Message {
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
        /// The head node's shared-memory arena: a process on the head's host that can map it
        /// writes large puts there ([`Message::AllocObject`]) instead of sending them (protocol
        /// version 6).
        arena: Option<ArenaLocation>,
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
        /// The held task ([`Message::HoldTask`]) the node started in its place, with the
        /// resources it gave back (protocol version 7).
        next: Option<TaskId>,
    },
    /// Worker → node: the first message of a worker process after the handshake.
    WorkerReady {
        /// The job whose executable the worker runs.
        job_id: JobId,
        /// The worker's process id.
        pid: u32,
        /// Whether the worker mapped its node's arena (`RAYKIT_NODE_ARENA`), so large
        /// arguments can reach it as [`Message::SharedValue`]s (protocol version 6).
        shared_memory: bool,
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

    // ---- Large values through shared memory (protocol version 6) ----
    /// Driver (or worker client) → head, from a process that mapped the head node's arena
    /// (named by [`Message::JobRegistered`]): reserve `len` bytes of it for the value the
    /// sender puts as `id`. Answered by [`Message::ObjectAllocated`].
    AllocObject {
        /// The object's id, chosen by the sender.
        id: ObjectId,
        /// The encoded value's size in bytes.
        len: u64,
    },
    /// Head → driver: where in the arena to write `id`, or `None` when the arena has no room
    /// (then the value goes over the connection as a [`Message::PutObject`]).
    ObjectAllocated {
        /// The object.
        id: ObjectId,
        /// The block's offset in the arena file.
        offset: Option<u64>,
    },
    /// Driver → head: the value of `id` is written in the block allocated for it: store it.
    /// Answered like [`Message::PutObject`].
    SealObject {
        /// The object.
        id: ObjectId,
    },
    /// A value in the node's arena, instead of [`Message::ValueChunk`]s, for the slot `index`
    /// of the message that follows, which leaves that slot empty:
    /// - node → worker (one that mapped the arena): the arguments of a [`Message::RunTask`],
    ///   [`Message::RunActorCall`] or [`Message::HostActor`], as one value (the tuple, slot 0);
    ///   the node keeps the bytes unchanged until the worker answers that message;
    /// - worker → node: an output of a [`Message::TaskResult`], written into the block the node
    ///   allocated for it ([`Message::ValueAllocated`]).
    SharedValue {
        /// The task or call of the message that follows (0 before a [`Message::HostActor`]).
        task_id: TaskId,
        /// The slot it fills.
        index: u32,
        /// Where the value starts in the arena.
        offset: u64,
        /// Its size in bytes.
        len: u64,
    },
    /// Worker → node, while it runs a task: reserve `len` bytes of the node's arena for output
    /// `index` of `task_id`. Answered by [`Message::ValueAllocated`].
    AllocValue {
        /// The task.
        task_id: TaskId,
        /// The output.
        index: u32,
        /// Its encoded size.
        len: u64,
    },
    /// Node → worker: where to write output `index` of `task_id`, or `None` (no room: send it
    /// in pieces).
    ValueAllocated {
        /// The task.
        task_id: TaskId,
        /// The output.
        index: u32,
        /// The block's offset in the arena.
        offset: Option<u64>,
    },

    // ---- Tasks held by nodes (protocol version 7) ----
    /// Head → node: a task to start in place of the next task of the same resources that ends
    /// on this node, reported in that task's [`Message::TaskFinished`] as `next`; or when the
    /// head says [`Message::StartTask`]. The head sends one only when no node has room, so a
    /// node goes from one task to the next without waiting for the head.
    HoldTask(TaskAssignment),
    /// Head → node: start the held task `task_id` now (the head counted its resources); a task
    /// already started in place of another is not started again.
    StartTask {
        /// The held task.
        task_id: TaskId,
    },

    // ---- Jobs that end, objects that cannot be reached (protocol version 8) ----
    /// Head → node: the job ended (its driver left or died): kill its worker processes (the
    /// tasks and actors they run), drop its held tasks, and start no more of its workers.
    CancelJob {
        /// The job.
        job_id: JobId,
    },
    /// Node or driver → head: the object could not be fetched from `location` in bounded time
    /// (the node there did not answer). The head counts it lost there and rebuilds it from its
    /// lineage when it can.
    ObjectUnreachable {
        /// The object.
        id: ObjectId,
        /// Where it was said to be.
        location: String,
    },

    // ---- Incarnations: a node declared dead comes back as a fresh member ----
    /// Node → head: join the cluster as `incarnation` of the node. `fresh` says the node has
    /// not joined as this incarnation before (it holds no task, actor or object of the
    /// cluster); a reconnect of an incarnation already joined is not fresh. Answered by
    /// [`Message::Registered`], [`Message::Rejoin`] or [`Message::Failed`]. Every report on
    /// the connection that follows belongs to this incarnation.
    JoinNode {
        /// What the node declares.
        info: NodeInfo,
        /// The node's incarnation: it grows by at least one each time the node resets itself.
        incarnation: u64,
        /// Whether this incarnation joins for the first time.
        fresh: bool,
    },
    /// Head → node: the head does not count this node (or this incarnation of it) as a member
    /// any more (declared dead, left, or forgotten): the node's tasks, actors and objects are
    /// gone from the cluster. The node drops them and joins again as a fresh incarnation of
    /// at least `incarnation`.
    Rejoin {
        /// The lowest incarnation the head accepts.
        incarnation: u64,
        /// Why, for people.
        reason: String,
    },
    /// Client → head: which nodes left the head's table after their grace period. Answered by
    /// [`Message::DeadNodes`].
    DeadNodesRequest,
    /// Head → client: the most recently removed dead nodes (a bounded history), oldest first.
    DeadNodes(Vec<NodeStatus>),

    // ---- Worker output (protocol version 11) ----
    /// Driver → head, first on its connection: send what the job's workers print here (the
    /// driver prints it). A driver that does not send it (`RAYKIT_LOG_TO_DRIVER=0`) gets none.
    ForwardOutput,
    /// Node → head, then head → driver: lines the job's worker processes printed, in order per
    /// stream. The head sets `node_id` to the node whose connection it came on.
    WorkerOutput(OutputBatch),
    /// Driver → head, then head → every node: send every line the job's workers printed so
    /// far, then [`Message::OutputDrained`]. A driver asks before it exits, so that what its
    /// last tasks printed is printed too.
    DrainOutput {
        /// The job (set by the head; a driver's own is taken from its connection).
        job_id: JobId,
        /// Echoed in the answer.
        seq: u64,
    },
    /// Node → head, then head → driver (once every node answered): every line asked for by
    /// the [`Message::DrainOutput`] `seq` came before this.
    OutputDrained {
        /// The job.
        job_id: JobId,
        /// The request answered.
        seq: u64,
    },
    /// Head → node: nobody takes the output of `job_id` (its driver did not ask for it, or is
    /// gone): stop sending it; it still goes to the workers' log files.
    MuteOutput {
        /// The job.
        job_id: JobId,
    },
}

/// The longest line of worker output that travels as one line (longer ones are cut into
/// pieces of this size).
pub const OUTPUT_LINE_MAX: usize = 16 << 10;

/// The most lines one [`OutputBatch`] may carry.
pub const OUTPUT_BATCH_LINES: usize = 1024;

/// The most bytes of text and names one [`OutputBatch`] may carry.
pub const OUTPUT_BATCH_BYTES: usize = 1 << 20;

/// The longest name of what a worker runs (a function or an actor class) in an output line.
pub const OUTPUT_NAME_MAX: usize = 1024;

/// Lines the worker processes of one job printed on one node.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct OutputBatch {
    /// The job.
    pub job_id: JobId,
    /// The node the workers run on.
    pub node_id: NodeId,
    /// The lines, in the order they were read.
    pub lines: Vec<OutputLine>,
    /// How many lines of the job were dropped on the way before these (a queue was full).
    pub dropped: u64,
}

/// One line a worker process printed, without its newline.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct OutputLine {
    /// The worker's process id.
    pub pid: u32,
    /// What the worker was running: a function's or an actor class's name (empty before its
    /// first task).
    pub name: String,
    /// Whether it came on stderr (else stdout).
    pub stderr: bool,
    /// The line (invalid UTF-8 replaced).
    pub text: String,
}

impl OutputLine {
    /// The bytes this line counts for in bounded queues.
    pub fn cost(&self) -> usize {
        self.text.len() + self.name.len() + 16
    }
}

impl OutputBatch {
    /// Checks a peer's batch against the limits ([`OUTPUT_BATCH_LINES`],
    /// [`OUTPUT_BATCH_BYTES`], [`OUTPUT_LINE_MAX`], [`OUTPUT_NAME_MAX`]).
    pub fn check(&self) -> Result<()> {
        let fail = |what: String| {
            Err(Error::new(
                ErrorKind::Protocol,
                format!("worker output of {}: {what}", self.job_id),
            ))
        };
        if self.lines.len() > OUTPUT_BATCH_LINES {
            return fail(format!(
                "{} lines in one batch (at most {OUTPUT_BATCH_LINES})",
                self.lines.len()
            ));
        }
        let mut bytes = 0usize;
        for line in &self.lines {
            if line.text.len() > OUTPUT_LINE_MAX {
                return fail(format!(
                    "a line of {} bytes (at most {OUTPUT_LINE_MAX})",
                    line.text.len()
                ));
            }
            if line.name.len() > OUTPUT_NAME_MAX {
                return fail(format!(
                    "a name of {} bytes (at most {OUTPUT_NAME_MAX})",
                    line.name.len()
                ));
            }
            bytes += line.cost();
        }
        if bytes > OUTPUT_BATCH_BYTES {
            return fail(format!(
                "{bytes} bytes in one batch (at most {OUTPUT_BATCH_BYTES})"
            ));
        }
        Ok(())
    }
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

pub use crate::ids::{JobId, TaskId};

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
            Message::AllocObject { .. } => "AllocObject",
            Message::ObjectAllocated { .. } => "ObjectAllocated",
            Message::SealObject { .. } => "SealObject",
            Message::SharedValue { .. } => "SharedValue",
            Message::AllocValue { .. } => "AllocValue",
            Message::ValueAllocated { .. } => "ValueAllocated",
            Message::HoldTask(_) => "HoldTask",
            Message::StartTask { .. } => "StartTask",
            Message::CancelJob { .. } => "CancelJob",
            Message::ObjectUnreachable { .. } => "ObjectUnreachable",
            Message::JoinNode { .. } => "JoinNode",
            Message::Rejoin { .. } => "Rejoin",
            Message::DeadNodesRequest => "DeadNodesRequest",
            Message::DeadNodes(_) => "DeadNodes",
            Message::ForwardOutput => "ForwardOutput",
            Message::WorkerOutput(_) => "WorkerOutput",
            Message::DrainOutput { .. } => "DrainOutput",
            Message::OutputDrained { .. } => "OutputDrained",
            Message::MuteOutput { .. } => "MuteOutput",
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

mod connection;
#[cfg(feature = "fuzzing")]
pub mod fuzzing;
pub mod handshake;
pub mod limits;
pub mod tls;
mod values;

pub use connection::{Connection, Fetched, FrameReader, FrameWriter};
pub use handshake::Handshake;
use values::byte_serde;
pub use values::{encode_object_chunk, encode_object_data, ChunkAssembler, MAX_OBJECT};

#[cfg(test)]
mod tests {
    use super::values::{
        encode_with_values, object_chunk_header, FrameStart, PieceHeader, ValueSlots,
    };
    use super::*;

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

    #[test]
    fn a_chunk_header_reads_from_the_start_of_its_frame() {
        let id = ObjectId::next();
        let piece = bytes(1000, 9);
        let header = object_chunk_header(id, 4096, 1 << 30, piece.len()).unwrap();
        let mut frame = header.clone();
        frame.extend_from_slice(&piece);
        assert_eq!(
            frame,
            encode_object_chunk(id, 4096, 1 << 30, &piece).unwrap()
        );
        let expected = PieceHeader {
            id,
            offset: 4096,
            total: 1 << 30,
            len: 1000,
            header_len: header.len(),
        };
        for end in [header.len(), header.len() + 1, frame.len()] {
            assert_eq!(
                PieceHeader::parse(&frame[..end]),
                FrameStart::Piece(expected)
            );
        }
        for end in 0..header.len() {
            assert_eq!(
                PieceHeader::parse(&frame[..end]),
                FrameStart::NeedMore,
                "{end}"
            );
        }
        let other = Message::FetchObject { id }.encode().unwrap();
        assert_eq!(PieceHeader::parse(&other), FrameStart::Other);
    }

    #[tokio::test]
    async fn a_value_fetched_in_pieces_fills_the_placed_buffer_and_disorder_is_refused() {
        let (mut fetcher, mut holder) = connected_pair().await;
        let id = ObjectId::next();
        let value = bytes(2 * OBJECT_CHUNK + 999, 7);
        let small = bytes(1000, 2);
        let (sent, sent_small) = (value.clone(), small.clone());
        let serving = tokio::spawn(async move {
            // A value in one frame longer than what is read to tell a piece from a message,
            // then one in pieces on the same connection.
            for v in [&sent_small, &sent] {
                assert!(matches!(
                    holder.recv().await.unwrap(),
                    Message::FetchObject { .. }
                ));
                holder.send_object(id, v).await.unwrap();
            }
            // The second time, a piece that does not start where the last one ended.
            assert!(matches!(
                holder.recv().await.unwrap(),
                Message::FetchObject { .. }
            ));
            let piece = Message::ObjectChunk {
                id,
                offset: 5,
                total: sent.len() as u64,
                bytes: sent[5..10].to_vec(),
            };
            holder.send(&piece).await.unwrap();
        });
        let place = |total: u64| Some(vec![0u8; total as usize]);
        let timeout = Duration::from_secs(10);
        match fetcher.fetch_object_into(id, timeout, place).await.unwrap() {
            Fetched::Bytes(buf) => assert!(buf == small),
            Fetched::Placed(_) => panic!("a value in one frame needs no placed buffer"),
        }
        match fetcher.fetch_object_into(id, timeout, place).await.unwrap() {
            Fetched::Placed(buf) => assert!(buf == value),
            Fetched::Bytes(_) => panic!("the value did not go into the placed buffer"),
        }
        let err = fetcher
            .fetch_object_into(id, timeout, place)
            .await
            .unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Protocol);
        assert!(err.message().contains("out of order"), "{err}");
        serving.await.unwrap();
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
}
