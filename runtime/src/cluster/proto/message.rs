//! The one [`Message`] enum: every message an authenticated peer may send, grouped by the
//! protocol version that added it. Its payload structs live by topic ([`status`](super::status),
//! [`tasks`](super::tasks), [`actors`](super::actors), [`output`](super::output)); its encoding
//! and names in [`encoding`](super::encoding).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::byte_serde;
use super::{
    ActorAssignment, ActorCallAssignment, ActorCreation, ClusterStatus, JobId, NodeInfo, NodeLoad,
    NodeStatus, OutputBatch, TaskAssignment, TaskId, TaskOutcome, TaskSubmission,
};
use crate::actor::ActorId;
use crate::cluster::node::arena::ArenaLocation;
use crate::error::Error;
use crate::object::ObjectId;
use crate::runtime::NodeId;

/// Every message of the protocol.
///
/// Only an authenticated peer's frames are decoded as a `Message` (before that, only the small
/// [`Handshake`](super::Handshake) type). postcard encodes a variant as its index, so the order
/// is the protocol: new variants are appended at the end, and any change bumps
/// [`PROTOCOL_VERSION`](super::PROTOCOL_VERSION).
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
        /// The job's namespace for named actors (its config's, or an anonymous one of its
        /// own; protocol version 12).
        namespace: String,
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
        /// The job's namespace for named actors: what its driver registered, so the job's
        /// workers find the same names (protocol version 12).
        namespace: String,
        /// Every alive node's declared resources in fixed-point units, so the program fails a
        /// request no node could ever run before sending it (protocol version 12); kept up to
        /// date by [`Message::NodeTotals`].
        node_totals: Vec<BTreeMap<String, i64>>,
    },
    /// Driver → head: one chunk of the executable; the last one is answered by
    /// [`Message::ExeStored`] (or [`Message::Failed`] when the hash does not match).
    UploadExe {
        /// Where the chunk goes in the file.
        offset: u64,
        /// The bytes (at most [`EXE_CHUNK`](super::EXE_CHUNK)).
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
        /// The piece (at most [`OBJECT_CHUNK`](super::OBJECT_CHUNK) bytes).
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
    /// Driver (or worker client) → head: which live actor is named `name` in `namespace`?
    /// Answered by [`Message::ActorFound`].
    GetActor {
        /// The namespace (protocol version 12).
        namespace: String,
        /// The name.
        name: String,
    },
    /// Head → driver: the answer to [`Message::GetActor`].
    ActorFound {
        /// The namespace asked in.
        namespace: String,
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
        /// The piece (at most [`OBJECT_CHUNK`](super::OBJECT_CHUNK) bytes).
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
    /// Driver (or worker client) → head: every live named actor. Answered by
    /// [`Message::NamedActors`] (protocol version 12).
    ListNamedActors,
    /// Head → driver: the answer to [`Message::ListNamedActors`]: `(namespace, name)` of every
    /// live named actor, sorted.
    NamedActors {
        /// The names.
        names: Vec<(String, String)>,
    },
    /// Head → driver (and every worker client): the alive nodes changed; what each declares,
    /// in fixed-point units, as in [`Message::JobRegistered`].
    NodeTotals {
        /// Every alive node's declared resources.
        totals: Vec<BTreeMap<String, i64>>,
    },
    /// Worker → node, then node → head: a method of the actor called `exit_actor`; the actor
    /// ends once its running calls have answered, and is not restarted (protocol version 12).
    ActorExiting {
        /// The actor.
        actor_id: ActorId,
        /// Which start of the actor this is (the node fills it in).
        incarnation: u32,
    },
}
