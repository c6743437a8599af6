//! The cluster client inside a user's program: a driver, or a worker running nested tasks.
//!
//! It joins (or attaches to) a job at the head, ships the program's executable when the head
//! lacks it, submits tasks with their arguments encoded, stores `put` values, learns from the
//! head where each object it waits for is ready, and fetches values directly from the node
//! that holds them (never through the head). Every wait has a way out: when the head
//! connection is lost, every object still awaited fails, so `get` returns an error.
//!
//! A driver also prints what its job's workers print (unless `RAYKIT_LOG_TO_DRIVER=0`), and
//! before it exits (or shuts the runtime down) it waits, briefly, for what is still on the
//! way ([`Client::drain_output`]).

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Weak};
use std::time::Duration;

use parking_lot::Mutex;
use tokio::sync::mpsc;

use crate::cluster::node::arena::ArenaLocation;
use crate::cluster::node::exe;
use crate::cluster::output::printer::Printer;
use crate::cluster::peers::PeerPool;
use crate::cluster::proto::{
    ClusterStatus, Connection, Fetched, FrameReader, FrameWriter, JobId, Message, Role, TaskId,
    TaskSubmission, WireArg, EXE_CHUNK, OBJECT_CHUNK,
};
use crate::error::{Error, ErrorKind, Result};
use crate::object::{directory, DecodeFn, ObjectId, Slot};
use crate::runtime::{self, NodeId};
use crate::task::{TaskOptions, TaskSpec};

mod actors;
mod shared;

pub(crate) use actors::{call_actor, create_actor, get_actor, kill_actor, ClusterActor};

/// How often a program that waits for objects asks the head whether it is still there.
const PING_INTERVAL: Duration = Duration::from_secs(2);

/// How long the head may stay silent while the program waits for objects before they fail.
/// `RAYKIT_HEAD_TIMEOUT_MS` overrides it (tests use a short one).
fn head_timeout() -> Duration {
    std::env::var("RAYKIT_HEAD_TIMEOUT_MS")
        .ok()
        .and_then(|v| v.parse().ok())
        .map_or(Duration::from_secs(20), Duration::from_millis)
}

/// A program's connection to its cluster.
pub(crate) struct Client {
    job_id: JobId,
    head_node: NodeId,
    io: Option<tokio::runtime::Runtime>,
    handle: tokio::runtime::Handle,
    outbox: mpsc::UnboundedSender<Outgoing>,
    /// Objects this program waits for, by id: filled when the head says where they are.
    awaited: Mutex<crate::cluster::IdMap<ObjectId, Weak<Slot>>>,
    /// Connections to the nodes objects are fetched from.
    peers: PeerPool,
    /// How many fetches of each object failed because its node did not answer.
    unreachable: Mutex<crate::cluster::IdMap<ObjectId, u32>>,
    lost: AtomicBool,
    /// Who waits for the head's answer about a named actor, by name.
    named: Mutex<HashMap<String, Vec<actors::NamedReply>>>,
    /// Bytes of large puts not written to the head yet.
    puts: Arc<PutBudget>,
    /// The head node's arena, when this process shares its host: large puts go there.
    arena: Option<crate::cluster::node::arena::ArenaView>,
    /// Large puts waiting for the head to allocate their block, by object.
    allocations: Mutex<HashMap<ObjectId, shared::AllocReply>>,
    /// When the head last said anything, in milliseconds since `started`.
    heard_ms: AtomicU64,
    started: std::time::Instant,
    /// The functions whose parameter names the head was sent (with their first task).
    named_functions: Mutex<std::collections::HashSet<&'static str>>,
    /// Callers waiting for the head's answer to a status request, in request order.
    status_waiters: Mutex<std::collections::VecDeque<std::sync::mpsc::Sender<ClusterStatus>>>,
    /// A driver that asked for its workers' output prints it with this.
    output: Option<Arc<Printer>>,
    /// The last drain of worker output asked for.
    drains: AtomicU64,
}

/// How long a driver that exits waits for the output its workers printed before.
const DRAIN_TIMEOUT: Duration = Duration::from_secs(2);

/// How many bytes of large puts may wait to be written to the head at once: a program that
/// puts faster than the connection carries them waits in `put` instead of queueing copies
/// without bound.
const PUTS_IN_FLIGHT: u64 = 256 << 20;

/// The bytes of large puts on their way to the head.
#[derive(Default)]
struct PutBudget {
    bytes: Mutex<u64>,
    written: parking_lot::Condvar,
}

impl PutBudget {
    /// Waits until `n` more bytes fit (a value larger than the budget goes alone), or the
    /// connection is lost, then counts them.
    fn take(&self, n: u64, lost: &AtomicBool) {
        let mut bytes = self.bytes.lock();
        while *bytes > 0 && *bytes + n > PUTS_IN_FLIGHT && !lost.load(Ordering::Acquire) {
            self.written
                .wait_for(&mut bytes, Duration::from_millis(100));
        }
        *bytes += n;
    }

    /// `n` bytes were written (or will never be).
    fn give(&self, n: u64) {
        let mut bytes = self.bytes.lock();
        *bytes = bytes.saturating_sub(n);
        self.written.notify_all();
    }
}

impl std::fmt::Debug for Client {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Client")
            .field("job_id", &self.job_id)
            .finish_non_exhaustive()
    }
}

impl Drop for Client {
    fn drop(&mut self) {
        // From a thread of an async runtime (maybe the client's own), waiting could hold up
        // what it waits for.
        if tokio::runtime::Handle::try_current().is_err() {
            self.drain_output();
        }
        if let Some(io) = self.io.take() {
            io.shutdown_background();
        }
    }
}

impl Client {
    /// Joins the cluster at `address`: registers a job (uploading this executable if the head
    /// lacks it), or attaches to the job of the worker this process is.
    pub(crate) fn connect(address: &str, token: Option<String>) -> Result<Arc<Client>> {
        let token = match token {
            Some(t) => t,
            None => return Err(no_token_error(address)),
        };
        let io = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .thread_name("raykit-client")
            .enable_all()
            .build()
            .map_err(|e| Error::new(ErrorKind::System, format!("cannot start the client: {e}")))?;
        let handle = io.handle().clone();
        // `init` may be called from inside the user's own async runtime, where blocking on
        // another runtime is not allowed: join from a plain thread.
        let joined = std::thread::scope(|s| {
            s.spawn(|| handle.block_on(join(address, &token)))
                .join()
                .unwrap_or_else(|_| {
                    Err(Error::new(
                        ErrorKind::System,
                        "joining the cluster panicked",
                    ))
                })
        })?;
        let (job_id, head_node, conn, arena) = joined;
        let arena = shared::attach(arena.as_ref());
        let (reader, mut writer) = conn.split();
        let (outbox, mut rx) = mpsc::unbounded_channel::<Outgoing>();
        // A driver (not a worker's nested client) prints its workers' output; the request to
        // send it goes first, before any task can run.
        let output = if attached_job().is_none() && crate::cluster::output::log_to_driver() {
            match Printer::start() {
                Ok(printer) => {
                    let _ = outbox.send(Outgoing::Message(Message::ForwardOutput));
                    Some(printer)
                }
                Err(e) => {
                    tracing::warn!(
                        "worker output is not printed here: cannot start its thread: {e}"
                    );
                    None
                }
            }
        } else {
            None
        };
        let client = Arc::new(Client {
            job_id,
            head_node,
            io: Some(io),
            handle: handle.clone(),
            outbox,
            awaited: Mutex::new(crate::cluster::IdMap::default()),
            peers: PeerPool::new(Role::Driver, token, None),
            unreachable: Mutex::new(crate::cluster::IdMap::default()),
            lost: AtomicBool::new(false),
            named: Mutex::new(HashMap::new()),
            puts: Arc::default(),
            arena,
            allocations: Mutex::new(HashMap::new()),
            heard_ms: AtomicU64::new(0),
            started: std::time::Instant::now(),
            named_functions: Mutex::new(Default::default()),
            status_waiters: Mutex::new(Default::default()),
            output: output.clone(),
            drains: AtomicU64::new(0),
        });
        let puts = client.puts.clone();
        // Many small messages share one write: feed everything queued, then flush once.
        handle.spawn(async move {
            while let Some(msg) = rx.recv().await {
                let mut batch = Batch::default();
                let mut result = batch.add(&mut writer, msg, &puts).await;
                while result.is_ok() {
                    match rx.try_recv() {
                        Ok(more) => result = batch.add(&mut writer, more, &puts).await,
                        Err(_) => break,
                    }
                }
                if let Err(e) = result
                    .and(batch.finish(&mut writer).await)
                    .and(writer.flush().await)
                {
                    tracing::warn!("lost the connection to the head: {e}");
                    // Puts still queued will never be stored: their readers must not wait.
                    rx.close();
                    while let Ok(item) = rx.try_recv() {
                        if let Outgoing::Put { slot, bytes } = item {
                            puts.give(bytes.len() as u64);
                            slot.fail(e.clone());
                        }
                    }
                    return;
                }
            }
        });
        *CLIENT.lock() = Arc::downgrade(&client);
        if output.is_some() {
            drain_at_exit();
        }
        handle.spawn(read_head(Arc::downgrade(&client), reader, output));
        handle.spawn(watch_head(Arc::downgrade(&client), head_timeout()));
        tracing::debug!(%address, job = %job_id, "joined the cluster");
        Ok(client)
    }

    /// Waits (at most [`DRAIN_TIMEOUT`]) until the output the job's workers printed so far is
    /// printed here: the head asks every node for what it has not sent yet. Only a driver
    /// that prints its workers' output waits, and only once.
    pub(crate) fn drain_output(&self) {
        let Some(printer) = &self.output else {
            return;
        };
        if self.drains.load(Ordering::Acquire) > 0 || self.lost.load(Ordering::Acquire) {
            return;
        }
        let seq = self.drains.fetch_add(1, Ordering::AcqRel) + 1;
        let ask = Message::DrainOutput {
            job_id: self.job_id,
            seq,
        };
        if self.send(ask).is_ok() && !printer.wait_drained(seq, DRAIN_TIMEOUT) {
            tracing::debug!("worker output still on the way after {DRAIN_TIMEOUT:?}");
        }
    }

    /// The head's node (a driver counts as running there).
    pub(crate) fn head_node(&self) -> NodeId {
        self.head_node
    }

    /// The cluster as the head sees it now (what `raykit status` shows).
    pub(crate) fn status(&self) -> Result<ClusterStatus> {
        let (tx, rx) = std::sync::mpsc::channel();
        self.status_waiters.lock().push_back(tx);
        self.send(Message::StatusRequest)?;
        rx.recv_timeout(STATUS_TIMEOUT).map_err(|_| {
            Error::new(
                ErrorKind::Network,
                format!("the head did not describe the cluster within {STATUS_TIMEOUT:?}"),
            )
        })
    }

    fn send(&self, msg: Message) -> Result<()> {
        if self.lost.load(Ordering::Acquire) {
            return Err(self.lost_error());
        }
        self.outbox
            .send(Outgoing::Message(msg))
            .map_err(|_| self.lost_error())
    }

    fn lost_error(&self) -> Error {
        Error::new(
            ErrorKind::Network,
            "the connection to the cluster's head was lost",
        )
    }

    fn await_object(&self, slot: &Arc<Slot>) {
        self.awaited.lock().insert(slot.id(), Arc::downgrade(slot));
    }

    fn settle(&self, id: ObjectId, fill: impl FnOnce(&Slot)) {
        let slot = self.awaited.lock().remove(&id).and_then(|w| w.upgrade());
        if let Some(slot) = slot {
            fill(&slot);
        }
    }

    /// Fails every awaited object: the head is gone, nothing will fill them.
    fn fail_all(&self, error: &Error) {
        self.lost.store(true, Ordering::Release);
        // Puts waiting for a block get none: their senders' drop ends the wait.
        self.allocations.lock().clear();
        let awaited: Vec<_> = self.awaited.lock().drain().collect();
        for (_, slot) in awaited {
            if let Some(slot) = slot.upgrade() {
                slot.fail(error.clone());
            }
        }
    }

    async fn fetch(&self, id: ObjectId, location: &str) -> Result<Vec<u8>> {
        match self
            .peers
            .fetch_into(id, location, |_| None::<Vec<u8>>)
            .await?
        {
            Fetched::Bytes(bytes) | Fetched::Placed(bytes) => Ok(bytes),
        }
    }

    /// The node at `location` did not answer a fetch of `slot`'s object. Unless that happened
    /// [`UNREACHABLE_TRIES`] times already, tells the head (which rebuilds the object elsewhere
    /// when it can) and waits for where the object is now; returns whether it does.
    fn refetch(&self, slot: &Arc<Slot>, location: &str) -> bool {
        let id = slot.id();
        {
            let mut failures = self.unreachable.lock();
            let n = failures.entry(id).or_insert(0);
            *n += 1;
            if *n > UNREACHABLE_TRIES {
                failures.remove(&id);
                return false;
            }
        }
        if !slot.unlocate() {
            return false;
        }
        self.await_object(slot);
        let report = Message::ObjectUnreachable {
            id,
            location: location.to_owned(),
        };
        if self
            .send(report)
            .and(self.send(Message::WatchObject { id }))
            .is_err()
        {
            self.awaited.lock().remove(&id);
            return false;
        }
        true
    }
}

/// How many times a program asks the head again for an object whose node did not answer,
/// before the read fails.
const UNREACHABLE_TRIES: u32 = 3;

/// The client of this process, for the hooks that must not start a runtime (a slot's drop, a
/// ref's serialization).
static CLIENT: Mutex<Weak<Client>> = Mutex::new(Weak::new());

/// What goes to the head.
enum Outgoing {
    /// A message.
    Message(Message),
    /// A large put: its value is sent in pieces sliced from `bytes`, which then become the
    /// slot's value (one encoded copy in this process, not one per step).
    Put { slot: Arc<Slot>, bytes: Vec<u8> },
}

/// One write's worth of messages to the head. Releases are gathered into one message sent
/// after everything else of the write: sending a release later than it was made is always
/// safe (the head frees nothing sooner), while the submissions and escape reports before it
/// must reach the head first. Consecutive escape reports are merged, in place.
#[derive(Default)]
struct Batch {
    released: Vec<ObjectId>,
    escaped: Vec<ObjectId>,
}

impl Batch {
    async fn add(
        &mut self,
        writer: &mut FrameWriter,
        item: Outgoing,
        puts: &PutBudget,
    ) -> Result<()> {
        match item {
            Outgoing::Message(Message::ReleaseObjects { ids }) => self.released.extend(ids),
            // A large put asks for arena room: the releases gathered so far go first, so the
            // blocks they free can take it (everything before them is already fed).
            Outgoing::Message(alloc @ Message::AllocObject { .. }) => {
                self.finish(writer).await?;
                writer.feed(&alloc).await?;
            }
            Outgoing::Message(Message::EscapedObjects { ids }) => self.escaped.extend(ids),
            Outgoing::Message(other) => {
                self.flush_escaped(writer).await?;
                writer.feed(&other).await?;
            }
            Outgoing::Put { slot, bytes } => {
                let written = self.flush_escaped(writer).await;
                let written = match written {
                    Ok(()) => writer.feed_object_chunks(slot.id(), &bytes).await,
                    Err(e) => Err(e),
                };
                puts.give(bytes.len() as u64);
                match written {
                    Ok(()) => slot.fill_bytes(bytes),
                    Err(e) => {
                        slot.fail(e.clone());
                        return Err(e);
                    }
                }
            }
        }
        Ok(())
    }

    async fn flush_escaped(&mut self, writer: &mut FrameWriter) -> Result<()> {
        if !self.escaped.is_empty() {
            let ids = std::mem::take(&mut self.escaped);
            writer.feed(&Message::EscapedObjects { ids }).await?;
        }
        Ok(())
    }

    async fn finish(&mut self, writer: &mut FrameWriter) -> Result<()> {
        self.flush_escaped(writer).await?;
        if !self.released.is_empty() {
            let ids = std::mem::take(&mut self.released);
            writer.feed(&Message::ReleaseObjects { ids }).await?;
        }
        Ok(())
    }
}

/// The job this process attaches to: a worker's, whose nested tasks belong to its job.
fn attached_job() -> Option<JobId> {
    std::env::var(crate::cluster::worker::JOB_ENV)
        .ok()
        .and_then(|j| j.parse::<u64>().ok())
        .map(JobId)
}

/// Registers, once, a hook that runs when the process exits (`main` returns or
/// `std::process::exit`): the driver prints what its last tasks printed before it goes.
fn drain_at_exit() {
    extern "C" fn at_exit() {
        // Nothing may unwind out of an exit hook.
        let _ = std::panic::catch_unwind(|| {
            let client = CLIENT.lock().upgrade();
            if let Some(client) = client {
                client.drain_output();
            }
        });
    }
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        // SAFETY: `at_exit` is an `extern "C" fn()` that lives as long as the program.
        if unsafe { libc::atexit(at_exit) } != 0 {
            tracing::debug!("cannot register the exit hook that waits for worker output");
        }
    });
}

/// Handshakes with the head and registers (or attaches to) the job.
async fn join(
    address: &str,
    token: &str,
) -> Result<(JobId, NodeId, Connection, Option<ArenaLocation>)> {
    let (mut conn, welcome) = Connection::connect(address, token, Role::Driver).await?;
    let timeout = Duration::from_secs(30);
    let registered = match attached_job() {
        Some(job_id) => {
            conn.request(&Message::AttachJob { job_id }, timeout)
                .await?
        }
        None => {
            let exe_path = std::env::current_exe().map_err(|e| {
                Error::new(
                    ErrorKind::System,
                    format!("cannot find this program's executable: {e}"),
                )
            })?;
            let exe_hash = exe::hash_file(&exe_path)?;
            let bytes = std::fs::read(&exe_path).map_err(|e| {
                Error::new(
                    ErrorKind::System,
                    format!("cannot read {}: {e}", exe_path.display()),
                )
            })?;
            let name = exe_path
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default();
            let answer = conn
                .request(
                    &Message::RegisterJob {
                        exe_hash,
                        exe_size: bytes.len() as u64,
                        name,
                    },
                    timeout,
                )
                .await?;
            if let Message::JobRegistered { need_exe: true, .. } = &answer {
                upload(&mut conn, &bytes).await?;
            }
            answer
        }
    };
    match registered {
        Message::JobRegistered { job_id, arena, .. } => Ok((job_id, welcome.node_id, conn, arena)),
        Message::Failed { error } => Err(error),
        other => Err(Error::new(
            ErrorKind::Protocol,
            format!("the head answered a job registration with {}", other.name()),
        )),
    }
}

/// Sends the executable in chunks and waits for the head to confirm it.
async fn upload(conn: &mut Connection, bytes: &[u8]) -> Result<()> {
    let chunks: Vec<&[u8]> = if bytes.is_empty() {
        vec![&[][..]]
    } else {
        bytes.chunks(EXE_CHUNK).collect()
    };
    let last = chunks.len() - 1;
    let mut offset = 0u64;
    for (i, chunk) in chunks.into_iter().enumerate() {
        conn.send(&Message::UploadExe {
            offset,
            bytes: chunk.to_vec(),
            last: i == last,
        })
        .await?;
        offset += chunk.len() as u64;
    }
    match conn.recv_timeout(Duration::from_secs(60)).await? {
        Message::ExeStored => Ok(()),
        Message::Failed { error } => Err(error),
        other => Err(Error::new(
            ErrorKind::Protocol,
            format!("the head answered an upload with {}", other.name()),
        )),
    }
}

/// Reads what the head says about objects until the connection ends, then fails the rest.
/// Worker output goes to `output` (a driver's printer), even while the client is being
/// dropped (it waits for the output then).
async fn read_head(client: Weak<Client>, mut reader: FrameReader, output: Option<Arc<Printer>>) {
    let end = loop {
        let msg = reader.recv().await;
        let msg = match (msg, &output) {
            (Ok(Message::WorkerOutput(batch)), Some(printer)) => {
                printer.batch(batch);
                continue;
            }
            (Ok(Message::OutputDrained { seq, .. }), Some(printer)) => {
                printer.drained(seq);
                continue;
            }
            (msg, _) => msg,
        };
        let Some(client) = client.upgrade() else {
            return;
        };
        client.heard();
        match msg {
            Ok(Message::Pong) => {}
            Ok(Message::ObjectReady {
                id,
                location,
                inline,
            }) => client.settle(id, |slot| match inline {
                Some(bytes) => slot.fill_bytes(bytes),
                None => slot.locate(&location),
            }),
            Ok(Message::ObjectFailed { id, error }) => client.settle(id, |slot| slot.fail(error)),
            Ok(Message::ActorFound { name, actor }) => client.named_actor_found(&name, actor),
            Ok(Message::Status(status)) => {
                if let Some(waiter) = client.status_waiters.lock().pop_front() {
                    let _ = waiter.send(status);
                }
            }
            Ok(Message::ObjectAllocated { id, offset }) => client.allocated(id, offset),
            Ok(Message::Failed { error }) => {
                tracing::warn!("the head refused a request: {error}");
            }
            Ok(other) => tracing::warn!("unexpected {} message from the head", other.name()),
            Err(e) => break e,
        }
    };
    if let Some(client) = client.upgrade() {
        tracing::warn!("lost the connection to the head: {end}");
        client.fail_all(&Error::with_source(
            ErrorKind::Network,
            "the connection to the cluster's head was lost",
            end,
        ));
    }
}

/// While the program waits for objects, asks the head every [`PING_INTERVAL`] whether it is
/// still there; when it has said nothing for `timeout`, fails everything awaited (the
/// connection may stay open when the head froze or its host vanished).
async fn watch_head(client: Weak<Client>, timeout: Duration) {
    let mut tick = tokio::time::interval(PING_INTERVAL.min(timeout / 2));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        let Some(client) = client.upgrade() else {
            return;
        };
        if client.lost.load(Ordering::Acquire) {
            return;
        }
        if client.awaited.lock().is_empty() {
            // Nothing to wait for: silence is fine, and the next wait starts the clock anew.
            client.heard();
            continue;
        }
        let silent = client.silent_for();
        if silent > timeout {
            tracing::warn!("the head has not answered for {silent:?}");
            client.fail_all(&Error::new(
                ErrorKind::Network,
                format!(
                    "the cluster's head has not answered for {:.1} s (frozen, or its host is \
                     gone without closing the connection)",
                    silent.as_secs_f64()
                ),
            ));
            return;
        }
        let _ = client.send(Message::Ping);
    }
}

impl Client {
    /// The head just said something.
    fn heard(&self) {
        let now = self.started.elapsed().as_millis() as u64;
        self.heard_ms.store(now, Ordering::Relaxed);
    }

    /// How long the head has said nothing.
    fn silent_for(&self) -> Duration {
        let now = self.started.elapsed().as_millis() as u64;
        Duration::from_millis(now.saturating_sub(self.heard_ms.load(Ordering::Relaxed)))
    }
}

/// The client of the running runtime, when it runs on a cluster.
fn current() -> Option<Arc<Client>> {
    runtime::current()
        .ok()
        .and_then(|rt| rt.backend.cluster().cloned())
}

/// Why a program told `address` but no token cannot join: nothing listens there (a wrong port,
/// a head that is down), or the cluster there is not the one this host recorded.
fn no_token_error(address: &str) -> Error {
    use std::net::ToSocketAddrs;
    let addrs: Vec<_> = address
        .to_socket_addrs()
        .map(Iterator::collect)
        .unwrap_or_default();
    if addrs.is_empty() {
        return Error::new(
            ErrorKind::Config,
            format!("`{address}` is no HOST:PORT this host can resolve"),
        );
    }
    let mut refused = None;
    for a in &addrs {
        match std::net::TcpStream::connect_timeout(a, Duration::from_secs(2)) {
            Ok(_) => {
                refused = None;
                break;
            }
            Err(e) => refused = Some(e),
        }
    }
    if let Some(e) = refused {
        return Error::new(
            ErrorKind::Network,
            format!(
                "nothing answers at {address} ({e}): is the head running there? \
                 (`raykit status` shows this host's cluster)"
            ),
        );
    }
    let recorded = crate::cluster::records::read_cluster()
        .ok()
        .flatten()
        .map(|r| format!("; this host recorded the cluster at {}", r.address))
        .unwrap_or_default();
    Error::new(
        ErrorKind::Config,
        format!(
            "no token for the cluster at {address}: set RAYKIT_TOKEN or RAYKIT_TOKEN_FILE \
             (printed by `raykit start --head`){recorded}"
        ),
    )
}

/// How long a program waits for the head to describe the cluster.
const STATUS_TIMEOUT: Duration = Duration::from_secs(10);

/// The resources of the cluster's alive nodes, declared and free now (free as of each node's
/// last report); `None` when the head does not answer.
pub(crate) fn resource_view(
    client: &Client,
) -> Option<(BTreeMap<String, f64>, BTreeMap<String, f64>)> {
    let status = client
        .status()
        .map_err(|e| tracing::warn!("cannot read the cluster's resources: {e}"))
        .ok()?;
    let mut total = BTreeMap::new();
    let mut available = BTreeMap::new();
    for node in status.nodes.iter().filter(|n| n.alive) {
        for (name, amount) in &node.info.resources {
            *total.entry(name.clone()).or_insert(0.0) += amount;
            let free = node.load.available.get(name).copied().unwrap_or(*amount);
            *available.entry(name.clone()).or_insert(0.0) += free;
        }
    }
    Some((total, available))
}

/// Submits a task to the cluster: its outputs are filled when the head reports them.
pub(crate) fn submit(
    client: &Client,
    spec: &'static TaskSpec,
    options: Option<TaskOptions>,
    wire: Vec<Result<WireArg>>,
    outputs: Vec<Arc<Slot>>,
) {
    let fail = |e: Error| outputs.iter().for_each(|s| s.fail(e.clone()));
    let args = match wire.into_iter().collect::<Result<Vec<_>>>() {
        Ok(a) => a,
        Err(e) => return fail(e),
    };
    let mut task = client.task(
        spec.name,
        spec.signature_hash,
        args,
        &outputs,
        TaskOptions::resources_for(options.as_ref(), spec),
        TaskOptions::retries_for(options.as_ref(), spec),
    );
    if client.named_functions.lock().insert(spec.name) {
        task.arg_names = Some(Box::new(
            spec.params.iter().map(|p| (*p).to_owned()).collect(),
        ));
    }
    client.submit(Message::SubmitTask(task), &outputs);
}

impl Client {
    /// A task submission of `function` whose outputs are `outputs`.
    fn task(
        &self,
        function: &str,
        signature_hash: u64,
        args: Vec<WireArg>,
        outputs: &[Arc<Slot>],
        resources: std::collections::BTreeMap<String, f64>,
        max_retries: u32,
    ) -> TaskSubmission {
        TaskSubmission {
            task_id: TaskId::next(),
            job_id: self.job_id,
            function: function.to_owned(),
            signature_hash,
            args,
            outputs: outputs.iter().map(|s| s.id()).collect(),
            resources,
            max_retries,
            arg_names: None,
        }
    }

    /// Sends a submission whose outputs the head reports: this program owns them and waits
    /// for them; they fail when the head cannot be told.
    fn submit(&self, msg: Message, outputs: &[Arc<Slot>]) {
        for slot in outputs {
            slot.set_owned_elsewhere();
            self.await_object(slot);
        }
        if let Err(e) = self.send(msg) {
            self.awaited
                .lock()
                .retain(|id, _| !outputs.iter().any(|s| s.id() == *id));
            outputs.iter().for_each(|s| s.fail(e.clone()));
        }
    }
}

/// Stores `value` on the head's node and returns its slot, already holding the encoded value
/// for local readers.
pub(crate) fn put<T>(client: &Client, value: &T, decoder: DecodeFn) -> Arc<Slot>
where
    T: serde::Serialize + serde::de::DeserializeOwned + 'static,
{
    let slot = Slot::pending_decodable(ObjectId::next(), Some(decoder));
    slot.set_owned_elsewhere();
    if shared::try_put(client, value, &slot) {
        return slot;
    }
    match crate::codec::encode(value) {
        Ok(bytes) if bytes.len() > OBJECT_CHUNK => {
            client.puts.take(bytes.len() as u64, &client.lost);
            let put = Outgoing::Put {
                slot: slot.clone(),
                bytes,
            };
            if let Err(mpsc::error::SendError(Outgoing::Put { slot, bytes })) =
                client.outbox.send(put)
            {
                client.puts.give(bytes.len() as u64);
                slot.fail(client.lost_error());
            }
        }
        Ok(bytes) => {
            let sent = client.send(Message::PutObject {
                id: slot.id(),
                bytes: bytes.clone(),
            });
            match sent {
                Ok(()) => slot.fill_bytes(bytes),
                Err(e) => slot.fail(e),
            }
        }
        Err(e) => slot.fail(e),
    }
    slot
}

/// A slot for an object known by id only (a ref that arrived inside a value), filled when the
/// head says where it is.
pub(crate) fn watch(client: &Client, id: ObjectId, decoder: DecodeFn) -> Arc<Slot> {
    let slot = Slot::pending_decodable(id, Some(decoder));
    directory::export(&slot);
    client.await_object(&slot);
    if let Err(e) = client.send(Message::WatchObject { id }) {
        slot.fail(e);
    }
    slot
}

/// The owner's last ref to `id` is gone (its slot dropped): tell the head. Never starts a
/// runtime or blocks; does nothing when this process is not on a cluster.
pub(crate) fn release(id: ObjectId) {
    let Some(client) = CLIENT.lock().upgrade() else {
        return;
    };
    client.awaited.lock().remove(&id);
    let _ = client.send(Message::ReleaseObjects { ids: vec![id] });
}

/// A ref to `id` was serialized inside a value: tell the head never to free it. Does nothing
/// when this process is not on a cluster.
pub(crate) fn escaped(id: ObjectId) {
    let Some(client) = CLIENT.lock().upgrade() else {
        return;
    };
    let _ = client.send(Message::EscapedObjects { ids: vec![id] });
}

/// Fetches a remote object's value from the node at `location` into `slot`.
pub(crate) fn fetch_into(slot: Arc<Slot>, location: Arc<str>) {
    let Some(client) = current() else {
        slot.fail(Error::new(
            ErrorKind::ObjectLost,
            format!(
                "object {} lives on a cluster node this runtime is not connected to",
                slot.id()
            ),
        ));
        return;
    };
    let handle = client.handle.clone();
    handle.spawn(async move {
        match client.fetch(slot.id(), &location).await {
            Ok(bytes) => {
                client.unreachable.lock().remove(&slot.id());
                slot.fill_bytes(bytes)
            }
            Err(e) if e.kind() == ErrorKind::Network && client.refetch(&slot, &location) => {
                tracing::info!(object = %slot.id(), %location, "its node did not answer: asking the head again: {e}");
            }
            Err(e) => slot.fail(Error::with_source(
                ErrorKind::ObjectLost,
                format!(
                    "cannot fetch object {} from node {location}: {e}",
                    slot.id()
                ),
                e,
            )),
        }
    });
}

/// In a worker, tells the head the running task blocks (so its CPU can be lent). Returns the
/// task to report as unblocked afterwards.
pub(crate) fn task_blocked() -> Option<(Arc<Client>, TaskId)> {
    let task_id = crate::cluster::worker::current_task()?;
    let client = current()?;
    client.send(Message::TaskBlocked { task_id }).ok()?;
    Some((client, task_id))
}

/// In a worker, tells the head the blocked task goes on.
pub(crate) fn task_unblocked(blocked: Option<(Arc<Client>, TaskId)>) {
    if let Some((client, task_id)) = blocked {
        let _ = client.send(Message::TaskUnblocked { task_id });
    }
}
