//! The head's state: the node table (membership, declared resources, liveness by heartbeat),
//! the job table with the jobs' executables, and the [`Scheduler`] of tasks and objects; the
//! loops that serve one registered node and one driver.
//!
//! The head decides who is alive and where each task runs; it never carries task arguments or
//! results between nodes (those go node to node). Values a driver puts are stored on the head's
//! own node, like any node's objects.

use std::collections::BTreeMap;
use std::fmt;
use std::io::{Read, Write};
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use parking_lot::Mutex;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use crate::cluster::head::scheduler::{ConnId, Scheduler};
use crate::cluster::node::arena::{Block, Lent};
use crate::cluster::node::exe::{ExeCache, ExeHasher};
use crate::cluster::node::store::ObjectStore;
use crate::cluster::output::OutputQueue;
use crate::cluster::proto::ChunkAssembler;
use crate::cluster::proto::{
    ClusterStatus, Connection, FrameReader, FrameWriter, JobId, Message, NodeInfo, NodeLoad,
    NodeStatus, Role, EXE_CHUNK, INLINE_MAX,
};
use crate::error::{Error, ErrorKind, Result};
use crate::object::ObjectId;
use crate::runtime::NodeId;

mod relay;
#[doc(hidden)]
pub mod scheduler;

/// A node whose last heartbeat is older than this is declared dead.
pub const NODE_TIMEOUT: Duration = Duration::from_secs(3);

/// [`NODE_TIMEOUT`], or `RAYKIT_NODE_TIMEOUT_MS` when set (read once).
fn node_timeout() -> Duration {
    static TIMEOUT: std::sync::OnceLock<Duration> = std::sync::OnceLock::new();
    *TIMEOUT.get_or_init(|| {
        std::env::var("RAYKIT_NODE_TIMEOUT_MS")
            .ok()
            .and_then(|v| v.trim().parse().ok())
            .map_or(NODE_TIMEOUT, Duration::from_millis)
    })
}

/// The death reason of a node that left on purpose.
const LEFT: &str = "stopped";

/// How long a dead node stays in the head's table (for `raykit status`, and so that it hears
/// it must rejoin) before it moves to the history; `RAYKIT_DEAD_NODE_GRACE_MS` overrides it.
pub const DEAD_NODE_GRACE: Duration = Duration::from_secs(60);

/// How many removed dead nodes the head remembers.
pub const DEAD_HISTORY: usize = 32;

/// [`DEAD_NODE_GRACE`], or `RAYKIT_DEAD_NODE_GRACE_MS` when set to a number.
fn dead_node_grace() -> Duration {
    std::env::var("RAYKIT_DEAD_NODE_GRACE_MS")
        .ok()
        .and_then(|v| v.trim().parse().ok())
        .map_or(DEAD_NODE_GRACE, Duration::from_millis)
}

/// How often the head looks for nodes that stopped sending heartbeats.
const MONITOR_INTERVAL: Duration = Duration::from_millis(250);

/// The head of a cluster: shared by every connection its daemon serves.
pub struct Head {
    node_id: NodeId,
    tables: Mutex<Tables>,
    /// The head's node's object store (puts land here).
    store: Arc<ObjectStore>,
    /// The executables drivers uploaded, by hash; those of jobs still running are in use.
    exes: ExeCache,
    /// How long a dead node stays in the table.
    dead_grace: Duration,
    /// Where worker output goes (nodes to drivers): a lock of its own, off the tables'.
    relay: Mutex<relay::Relay>,
}

impl fmt::Debug for Head {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Head")
            .field("node_id", &self.node_id)
            .finish_non_exhaustive()
    }
}

struct Tables {
    /// Nodes in joining order; dead nodes stay listed with the reason for the grace period.
    nodes: Vec<NodeEntry>,
    /// The last [`DEAD_HISTORY`] dead nodes removed from `nodes`, oldest first.
    history: std::collections::VecDeque<NodeEntry>,
    jobs: JobTable,
    next_session: u64,
    sched: Scheduler,
}

impl Tables {
    /// How many nodes the scheduler keeps state for.
    #[cfg(test)]
    fn sched_nodes(&self) -> usize {
        self.sched.node_count()
    }
}

struct NodeEntry {
    info: NodeInfo,
    alive: bool,
    death_reason: Option<String>,
    load: NodeLoad,
    last_heartbeat: Instant,
    /// Which registration connection speaks for the node: a stale connection ending must not
    /// kill a node that has reconnected, and what it reports counts for nothing.
    session: u64,
    /// The node's incarnation: a node declared dead comes back only as a higher one.
    incarnation: u64,
    /// When the node was declared dead.
    died_at: Option<Instant>,
}

/// The jobs (drivers) of the cluster.
#[derive(Debug, Default)]
struct JobTable {
    jobs: BTreeMap<u64, JobEntry>,
    next: u64,
}

#[derive(Debug)]
struct JobEntry {
    /// The job's executable.
    exe_hash: String,
    /// For people.
    name: String,
    /// Whether its driver is still connected.
    running: bool,
}

/// Whether `hash` looks like a hex SHA-256 (it names a file, so nothing else may pass).
fn valid_hash(hash: &str) -> bool {
    hash.len() == 64
        && hash
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

fn io_error(what: String, e: std::io::Error) -> Error {
    Error::new(ErrorKind::System, format!("{what}: {e}"))
}

/// Creates `dir` and its parents, private to this user.
pub(crate) fn private_dir(dir: &Path) -> Result<()> {
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
        .map_err(|e| io_error(format!("cannot create {}", dir.display()), e))
}

use std::os::unix::fs::DirBuilderExt;

/// An executable being uploaded: written to a temporary file, hashed as it arrives.
struct Upload {
    file: std::fs::File,
    tmp: PathBuf,
    hasher: ExeHasher,
    written: u64,
}

/// Writes the executable `hash` from a stream of chunks into `dir`: a temporary file, checked
/// against the hash, made executable and renamed into place.
pub(crate) struct ExeWriter {
    dir: PathBuf,
    hash: String,
    upload: Option<Upload>,
}

impl ExeWriter {
    /// A writer of executable `hash` into `dir`.
    pub(crate) fn new(dir: &Path, hash: &str) -> ExeWriter {
        ExeWriter {
            dir: dir.to_owned(),
            hash: hash.to_owned(),
            upload: None,
        }
    }

    /// Adds one chunk at `offset`; after the `last` one returns the stored file's path.
    pub(crate) fn chunk(
        &mut self,
        offset: u64,
        bytes: &[u8],
        last: bool,
    ) -> Result<Option<PathBuf>> {
        if self.upload.is_none() {
            private_dir(&self.dir)?;
            static N: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
            let tmp = self.dir.join(format!(
                "{}.tmp{}-{}",
                self.hash,
                std::process::id(),
                N.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
            ));
            let file = std::fs::OpenOptions::new()
                .write(true)
                .create(true)
                .truncate(true)
                .mode(0o700)
                .open(&tmp)
                .map_err(|e| io_error(format!("cannot create {}", tmp.display()), e))?;
            self.upload = Some(Upload {
                file,
                tmp,
                hasher: ExeHasher::default(),
                written: 0,
            });
        }
        let Some(up) = self.upload.as_mut() else {
            return Err(Error::new(ErrorKind::System, "no upload in progress"));
        };
        if offset != up.written {
            let error = Error::new(
                ErrorKind::Protocol,
                format!(
                    "executable chunk at offset {offset}, expected {}",
                    up.written
                ),
            );
            self.abort();
            return Err(error);
        }
        if let Err(e) = up.file.write_all(bytes) {
            let error = io_error(format!("cannot write {}", up.tmp.display()), e);
            self.abort();
            return Err(error);
        }
        up.hasher.update(bytes);
        up.written += bytes.len() as u64;
        if !last {
            return Ok(None);
        }
        let Some(up) = self.upload.take() else {
            return Err(Error::new(ErrorKind::System, "no upload in progress"));
        };
        let Upload {
            file, tmp, hasher, ..
        } = up;
        let got = hasher.finish();
        if got != self.hash {
            let _ = std::fs::remove_file(&tmp);
            return Err(Error::new(
                ErrorKind::Protocol,
                format!(
                    "the executable's bytes hash to {got}, not {}: upload rejected",
                    self.hash
                ),
            ));
        }
        let done = file
            .sync_all()
            .and_then(|()| std::fs::set_permissions(&tmp, std::fs::Permissions::from_mode(0o755)))
            .and_then(|()| std::fs::rename(&tmp, self.dir.join(&self.hash)));
        drop(file);
        if let Err(e) = done {
            let _ = std::fs::remove_file(&tmp);
            return Err(io_error(
                format!("cannot store executable {}", self.hash),
                e,
            ));
        }
        Ok(Some(self.dir.join(&self.hash)))
    }

    fn abort(&mut self) {
        if let Some(up) = self.upload.take() {
            let _ = std::fs::remove_file(&up.tmp);
        }
    }
}

impl Drop for ExeWriter {
    fn drop(&mut self) {
        self.abort();
    }
}

/// How many object ids of one release (or escape) message the head handles before it lets
/// other connections in.
const ID_SLICE: usize = 4096;

/// Sends one writer's queued messages as they come, batching what is queued together; then,
/// when nothing else waits, the worker output in `output` (bounded: a peer slow to read it
/// makes lines drop there, not pile up here). Ends when every sender of `rx` is gone.
pub(crate) async fn pump(
    mut writer: FrameWriter,
    mut rx: mpsc::UnboundedReceiver<Message>,
    output: Option<Arc<OutputQueue>>,
) {
    // One wait for output across many writes: it is not set up anew for each message.
    let lines = next_output(output.as_deref());
    tokio::pin!(lines);
    loop {
        let result = tokio::select! {
            biased;
            msg = rx.recv() => {
                let Some(msg) = msg else { return };
                let mut result = writer.feed(&msg).await;
                while result.is_ok() {
                    match rx.try_recv() {
                        Ok(m) => result = writer.feed(&m).await,
                        Err(_) => break,
                    }
                }
                result
            }
            batch = &mut lines => {
                lines.set(next_output(output.as_deref()));
                let mut result = Ok(());
                for msg in &batch {
                    result = writer.feed(msg).await;
                    if result.is_err() {
                        break;
                    }
                }
                result
            }
        };
        if let Err(e) = result.and(writer.flush().await) {
            tracing::debug!("connection ended: {e}");
            return;
        }
    }
}

/// The next worker output in `queue`; never, without one.
pub(crate) async fn next_output(queue: Option<&OutputQueue>) -> Vec<Message> {
    match queue {
        Some(queue) => queue.next().await,
        None => std::future::pending().await,
    }
}

impl Head {
    /// A head whose own node is `node_id`, whose node stores objects in `store`, keeping
    /// uploaded executables under `dir` (at most `exe_cap` bytes of those whose jobs ended).
    pub fn new(node_id: NodeId, store: Arc<ObjectStore>, dir: PathBuf, exe_cap: u64) -> Head {
        Head {
            node_id,
            tables: Mutex::new(Tables {
                nodes: Vec::new(),
                history: std::collections::VecDeque::new(),
                jobs: JobTable::default(),
                next_session: 0,
                sched: Scheduler::new(node_id, store.clone()),
            }),
            store,
            exes: ExeCache::new(dir.join("exe"), exe_cap),
            dead_grace: dead_node_grace(),
            relay: Mutex::default(),
        }
    }

    /// Where the executable `hash` is (or would be) stored.
    fn exe_path(&self, hash: &str) -> PathBuf {
        self.exes.path(hash)
    }

    /// The head's own node.
    pub fn node_id(&self) -> NodeId {
        self.node_id
    }

    /// Adds (or re-adds) a node as `incarnation` and returns its session number.
    ///
    /// A reconnect of the incarnation the head counts alive keeps the node's tasks and
    /// objects. A `fresh` incarnation above the one the head knows replaces it: what the old
    /// one ran is retried or failed, and the node starts with all its resources free. Anything
    /// else (a dead or unknown incarnation reconnecting, a fresh one not above the last) is
    /// answered with the lowest incarnation the head accepts (`Err`): the node must reset.
    fn register(
        &self,
        info: NodeInfo,
        incarnation: u64,
        fresh: bool,
        outbox: mpsc::UnboundedSender<Message>,
    ) -> std::result::Result<u64, u64> {
        let mut t = self.tables.lock();
        t.next_session += 1;
        let session = t.next_session;
        let load = NodeLoad {
            available: info.resources.clone(),
            ..NodeLoad::default()
        };
        let node_id = info.node_id;
        let known = t
            .nodes
            .iter()
            .find(|n| n.info.node_id == node_id)
            .map(|n| (n.alive, n.incarnation))
            .or_else(|| {
                // A node forgotten after its grace period comes back only as a higher one.
                t.history
                    .iter()
                    .rev()
                    .find(|n| n.info.node_id == node_id)
                    .map(|n| (false, n.incarnation))
                    .filter(|(_, known)| !fresh || incarnation <= *known)
            });
        match known {
            Some((true, known)) if !fresh && incarnation == known => {
                tracing::info!(node = %node_id, address = %info.address, "node reconnected");
            }
            Some((alive, known)) if fresh && incarnation > known => {
                if alive {
                    t.sched
                        .node_lost(node_id, "it came back as a new incarnation");
                }
                tracing::info!(node = %node_id, address = %info.address, incarnation, "node rejoined as a new incarnation");
            }
            Some((_, known)) => return Err(known.max(incarnation) + 1),
            None if fresh => {
                tracing::info!(
                    node = %node_id,
                    address = %info.address,
                    resources = ?info.resources,
                    incarnation,
                    "node joined"
                );
            }
            None => return Err(incarnation + 1),
        }
        t.sched
            .add_node(node_id, info.address.clone(), &info.resources, outbox);
        match t.nodes.iter_mut().find(|n| n.info.node_id == node_id) {
            Some(entry) => {
                entry.info = info;
                entry.alive = true;
                entry.death_reason = None;
                entry.load = load;
                entry.last_heartbeat = Instant::now();
                entry.session = session;
                entry.incarnation = incarnation;
                entry.died_at = None;
            }
            None => t.nodes.push(NodeEntry {
                info,
                alive: true,
                death_reason: None,
                load,
                last_heartbeat: Instant::now(),
                session,
                incarnation,
                died_at: None,
            }),
        }
        Ok(session)
    }

    /// Whether `session` speaks for `node_id`, alive: only then does what it reports count.
    fn current(t: &Tables, node_id: NodeId, session: u64) -> bool {
        t.nodes
            .iter()
            .any(|n| n.info.node_id == node_id && n.session == session && n.alive)
    }

    /// Records a heartbeat of `session`, which joined as `incarnation`. `Err(None)` when
    /// another session speaks for the node (this one is stale); `Err(Some((at_least, why)))`
    /// when the head no longer counts that incarnation as a member.
    fn heartbeat(
        &self,
        node_id: NodeId,
        session: u64,
        incarnation: u64,
        load: NodeLoad,
    ) -> std::result::Result<(), Option<(u64, String)>> {
        let mut t = self.tables.lock();
        match t.nodes.iter_mut().find(|n| n.info.node_id == node_id) {
            Some(n) if n.alive && n.session == session => {
                n.load = load;
                n.last_heartbeat = Instant::now();
                Ok(())
            }
            Some(n) if n.alive => Err(None),
            Some(n) => Err(Some((
                n.incarnation.max(incarnation) + 1,
                format!(
                    "declared dead: {}",
                    n.death_reason.as_deref().unwrap_or("unknown reason")
                ),
            ))),
            None => Err(Some((
                incarnation + 1,
                "not a member of this cluster".to_owned(),
            ))),
        }
    }

    /// Declares a node dead if `session` still speaks for it.
    fn node_died(&self, node_id: NodeId, session: u64, reason: &str) {
        let mut t = self.tables.lock();
        if let Some(n) = t
            .nodes
            .iter_mut()
            .find(|n| n.info.node_id == node_id && n.session == session && n.alive)
        {
            mark_dead(n, reason.to_owned());
            t.sched.node_lost(node_id, reason);
        }
    }

    /// Declares dead every node whose last heartbeat is older than [`NODE_TIMEOUT`] (or
    /// `RAYKIT_NODE_TIMEOUT_MS`).
    fn check_heartbeats(&self) {
        let now = Instant::now();
        let mut t = self.tables.lock();
        let mut dead = Vec::new();
        for n in t.nodes.iter_mut().filter(|n| n.alive) {
            let silent = now.saturating_duration_since(n.last_heartbeat);
            if silent > node_timeout() {
                let reason = format!("no heartbeat for {:.1} s", silent.as_secs_f64());
                mark_dead(n, reason.clone());
                dead.push((n.info.node_id, reason));
            }
        }
        for (node_id, reason) in dead {
            t.sched.node_lost(node_id, &reason);
        }
        self.forget_dead(&mut t, now);
    }

    /// Moves the nodes dead for longer than the grace period from the table to the history,
    /// which keeps the last [`DEAD_HISTORY`].
    fn forget_dead(&self, t: &mut Tables, now: Instant) {
        let grace = self.dead_grace;
        let expired = |n: &NodeEntry| {
            !n.alive
                && n.died_at
                    .is_some_and(|d| now.saturating_duration_since(d) >= grace)
        };
        if !t.nodes.iter().any(expired) {
            return;
        }
        let (gone, kept): (Vec<NodeEntry>, Vec<NodeEntry>) =
            std::mem::take(&mut t.nodes).into_iter().partition(expired);
        t.nodes = kept;
        for n in gone {
            tracing::info!(node = %n.info.node_id, "a dead node leaves the table");
            t.sched.forget_node(n.info.node_id);
            t.history.retain(|h| h.info.node_id != n.info.node_id);
            t.history.push_back(n);
        }
        while t.history.len() > DEAD_HISTORY {
            t.history.pop_front();
        }
    }

    /// The dead nodes removed from the table, oldest first (at most [`DEAD_HISTORY`]).
    pub fn dead_nodes(&self) -> Vec<NodeStatus> {
        let now = Instant::now();
        let t = self.tables.lock();
        t.history
            .iter()
            .map(|n| NodeStatus {
                info: n.info.clone(),
                head: n.info.node_id == self.node_id,
                alive: false,
                death_reason: n.death_reason.clone(),
                load: n.load.clone(),
                since_heartbeat_ms: u64::try_from(
                    now.saturating_duration_since(n.last_heartbeat).as_millis(),
                )
                .unwrap_or(u64::MAX),
            })
            .collect()
    }

    /// The cluster as the head sees it now.
    pub fn status(&self) -> ClusterStatus {
        let now = Instant::now();
        let t = self.tables.lock();
        let tasks = t.sched.counts();
        let (objects, lineage) = t.sched.tables();
        // The head's directory knows every actor, also those no node hosts (pending, dead).
        let actors = t.sched.actor_counts();
        let nodes = t
            .nodes
            .iter()
            .map(|n| {
                let mut load = n.load.clone();
                if n.alive {
                    // The head's accounting is the one placement uses.
                    if let Some(available) = t.sched.available(n.info.node_id) {
                        load.available = available;
                    }
                }
                NodeStatus {
                    info: n.info.clone(),
                    head: n.info.node_id == self.node_id,
                    alive: n.alive,
                    death_reason: n.death_reason.clone(),
                    load,
                    since_heartbeat_ms: u64::try_from(
                        now.saturating_duration_since(n.last_heartbeat).as_millis(),
                    )
                    .unwrap_or(u64::MAX),
                }
            })
            .collect();
        ClusterStatus {
            head_node_id: self.node_id,
            nodes,
            tasks,
            actors,
            jobs: t.jobs.jobs.values().filter(|j| j.running).count() as u64,
            objects,
            lineage,
        }
    }

    /// Declares silent nodes dead until `shutdown`.
    pub async fn monitor(self: Arc<Self>, shutdown: CancellationToken) {
        let mut tick = tokio::time::interval(MONITOR_INTERVAL);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = tick.tick() => {
                    self.check_heartbeats();
                    self.tables.lock().sched.expire_unknown(Instant::now());
                }
                _ = shutdown.cancelled() => return,
            }
        }
    }

    /// Serves one node from its `RegisterNode` on: answers the registration, then takes its
    /// heartbeats until it leaves, its connection breaks or `shutdown`.
    pub async fn serve_node(
        &self,
        mut conn: Connection,
        (info, incarnation, fresh): (NodeInfo, u64, bool),
        shutdown: &CancellationToken,
    ) {
        let node_id = info.node_id;
        let (outbox, rx) = mpsc::unbounded_channel();
        // `Registered` goes first, before any task the scheduler sends the node.
        let registered = Message::Registered {
            head_node_id: self.node_id,
        };
        let _ = outbox.send(registered);
        let session = match self.register(info, incarnation, fresh, outbox.clone()) {
            Ok(s) => s,
            Err(at_least) => {
                tracing::info!(node = %node_id, incarnation, "registration refused: the node must rejoin as incarnation {at_least} or above");
                let rejoin = Message::Rejoin {
                    incarnation: at_least,
                    reason: "this incarnation is not a member of the cluster".to_owned(),
                };
                let _ = conn.send(&rejoin).await;
                return;
            }
        };
        let (mut reader, writer) = conn.split();
        let pump = tokio::spawn(pump(writer, rx, None));
        self.relay.lock().add_node(node_id, session, outbox.clone());
        self.node_loop(
            &mut reader,
            &outbox,
            (node_id, session, incarnation),
            shutdown,
        )
        .await;
        self.relay.lock().remove_node(node_id, session);
        drop(outbox);
        // Let the last answer (a refusal) go out; the pump ends once every sender is gone.
        let _ = tokio::time::timeout(Duration::from_secs(1), pump).await;
    }

    async fn node_loop(
        &self,
        conn: &mut FrameReader,
        outbox: &mpsc::UnboundedSender<Message>,
        (node_id, session, incarnation): (NodeId, u64, u64),
        shutdown: &CancellationToken,
    ) {
        loop {
            let msg = tokio::select! {
                m = conn.recv() => m,
                _ = shutdown.cancelled() => return,
            };
            match msg {
                Ok(Message::Heartbeat(load)) => {
                    match self.heartbeat(node_id, session, incarnation, load) {
                        Ok(()) => {}
                        Err(None) => return,
                        Err(Some((at_least, reason))) => {
                            tracing::info!(node = %node_id, incarnation, "a node the head does not count came back ({reason}); telling it to rejoin");
                            let _ = outbox.send(Message::Rejoin {
                                incarnation: at_least,
                                reason,
                            });
                            return;
                        }
                    }
                }
                Ok(Message::TaskFinished {
                    task_id,
                    outcome,
                    next,
                }) => {
                    let mut t = self.tables.lock();
                    if Head::current(&t, node_id, session) {
                        t.sched.task_finished(node_id, task_id, outcome, next);
                    } else {
                        tracing::debug!(node = %node_id, "a report of a session that no longer counts; ignored");
                    }
                }
                Ok(Message::ActorStarted {
                    actor_id,
                    incarnation,
                    result,
                }) => {
                    let mut t = self.tables.lock();
                    if Head::current(&t, node_id, session) {
                        t.sched
                            .actor_started(node_id, actor_id, incarnation, result);
                    } else {
                        tracing::debug!(node = %node_id, "a report of a session that no longer counts; ignored");
                    }
                }
                Ok(Message::ObjectUnreachable { id, location }) => {
                    let mut t = self.tables.lock();
                    if Head::current(&t, node_id, session) {
                        t.sched.object_unreachable(id, &location);
                    } else {
                        tracing::debug!(node = %node_id, "a report of a session that no longer counts; ignored");
                    }
                }
                Ok(Message::ActorExited {
                    actor_id,
                    incarnation,
                    reason,
                }) => {
                    let mut t = self.tables.lock();
                    if Head::current(&t, node_id, session) {
                        t.sched
                            .actor_exited(node_id, actor_id, incarnation, &reason);
                    } else {
                        tracing::debug!(node = %node_id, "a report of a session that no longer counts; ignored");
                    }
                }
                Ok(Message::WorkerOutput(batch)) => self.relay.lock().output(node_id, batch),
                Ok(Message::OutputDrained { job_id, seq }) => {
                    self.relay.lock().answered(job_id, Some(seq), node_id)
                }
                Ok(Message::UnregisterNode) => {
                    self.node_died(node_id, session, LEFT);
                    return;
                }
                Ok(other) => {
                    let error = Error::new(
                        ErrorKind::Protocol,
                        format!("unexpected {} message from a node", other.name()),
                    );
                    tracing::warn!(node = %node_id, "{error}");
                    let _ = outbox.send(Message::Failed { error });
                    self.node_died(node_id, session, "protocol error");
                    return;
                }
                Err(e) => {
                    self.node_died(node_id, session, &format!("connection lost: {e}"));
                    return;
                }
            }
        }
    }
}

impl Head {
    /// Serves a driver (or a worker's nested client) from its `RegisterJob` / `AttachJob` on:
    /// the executable upload, then tasks, puts and watches until it leaves or `shutdown`.
    pub async fn serve_driver(
        &self,
        mut conn: Connection,
        first: Message,
        role: Role,
        shutdown: &CancellationToken,
    ) {
        let peer = conn.peer_addr();
        let (job_id, need_exe, owner) = match self.open_job(first) {
            Ok(j) => j,
            Err(error) => {
                tracing::warn!(%peer, "job refused: {error}");
                let _ = conn.send(&Message::Failed { error }).await;
                return;
            }
        };
        let exe_hash = match self.tables.lock().jobs.jobs.get(&job_id.0) {
            Some(j) => j.exe_hash.clone(),
            None => return,
        };
        if let Err(e) = conn
            .send(&Message::JobRegistered {
                job_id,
                need_exe,
                arena: self.store.arena().map(|a| a.location().clone()),
            })
            .await
        {
            tracing::debug!(%peer, "connection ended: {e}");
            self.close_job(job_id, owner);
            return;
        }
        let (mut reader, writer) = conn.split();
        let (outbox, rx) = mpsc::unbounded_channel();
        // The job's worker output, if its driver asks for it.
        let output = owner.then(|| Arc::new(OutputQueue::default()));
        let pump = tokio::spawn(pump(writer, rx, output.clone()));
        let conn_id = self.tables.lock().sched.add_conn(outbox.clone(), job_id);
        tracing::info!(%peer, job = %job_id, ?role, "driver connected");
        let output = output.map(|queue| (job_id, queue));
        self.driver_loop(&mut reader, &outbox, conn_id, &exe_hash, output, shutdown)
            .await;
        if owner {
            self.relay.lock().unsubscribe(job_id);
        }
        self.tables.lock().sched.remove_conn(conn_id);
        self.close_job(job_id, owner);
        drop(outbox);
        let _ = tokio::time::timeout(Duration::from_secs(1), pump).await;
        tracing::info!(%peer, job = %job_id, "driver disconnected");
    }

    /// Registers or finds the job a driver's first message names: its id, whether the head
    /// needs its executable, and whether this connection owns (started) the job.
    fn open_job(&self, first: Message) -> Result<(JobId, bool, bool)> {
        let mut t = self.tables.lock();
        match first {
            Message::RegisterJob {
                exe_hash,
                exe_size,
                name,
            } => {
                if !valid_hash(&exe_hash) {
                    return Err(Error::new(
                        ErrorKind::Protocol,
                        "RegisterJob needs the executable's hex SHA-256",
                    ));
                }
                t.jobs.next += 1;
                let id = t.jobs.next;
                // In use until the job ends (`close_job`): never evicted meanwhile.
                self.exes.acquire(&exe_hash);
                let need_exe = !self.exes.has(&exe_hash);
                tracing::info!(job = %JobId(id), %name, exe = %exe_hash, size = exe_size, need_exe, "job registered");
                t.jobs.jobs.insert(
                    id,
                    JobEntry {
                        exe_hash,
                        name,
                        running: true,
                    },
                );
                Ok((JobId(id), need_exe, true))
            }
            Message::AttachJob { job_id } => match t.jobs.jobs.get(&job_id.0) {
                Some(_) => Ok((job_id, false, false)),
                None => Err(Error::new(
                    ErrorKind::Config,
                    format!("{job_id} is not a job of this cluster"),
                )),
            },
            other => Err(Error::new(
                ErrorKind::Protocol,
                format!("expected RegisterJob or AttachJob, got {}", other.name()),
            )),
        }
    }

    fn close_job(&self, job_id: JobId, owner: bool) {
        if owner {
            let mut t = self.tables.lock();
            let mut exe = None;
            if let Some(j) = t.jobs.jobs.get_mut(&job_id.0) {
                if j.running {
                    exe = Some(j.exe_hash.clone());
                }
                j.running = false;
                tracing::debug!(job = %job_id, name = %j.name, "job ended");
            }
            t.sched.job_ended(job_id);
            drop(t);
            if let Some(hash) = exe {
                self.exes.release(&hash);
            }
        }
    }

    async fn driver_loop(
        &self,
        reader: &mut FrameReader,
        outbox: &mpsc::UnboundedSender<Message>,
        conn_id: ConnId,
        exe_hash: &str,
        output: Option<(JobId, Arc<OutputQueue>)>,
        shutdown: &CancellationToken,
    ) {
        let peer = reader.peer_addr();
        let mut upload = ExeWriter::new(self.exes.dir(), exe_hash);
        // A large put arriving in pieces.
        let mut put: Option<ChunkAssembler> = None;
        // Arena blocks the driver is writing puts into, by object (kept a while if it leaves
        // first: it may still be writing).
        let mut writing: Lent<ObjectId> = Lent::default();
        loop {
            let msg = tokio::select! {
                m = reader.recv() => m,
                _ = shutdown.cancelled() => return,
            };
            let msg = match msg {
                Ok(m) => m,
                Err(e) if e.kind() == ErrorKind::Network => {
                    tracing::debug!(%peer, "connection ended: {e}");
                    return;
                }
                Err(error) => {
                    tracing::warn!(%peer, "closing the connection: {error}");
                    let _ = outbox.send(Message::Failed { error });
                    return;
                }
            };
            match msg {
                Message::UploadExe {
                    offset,
                    bytes,
                    last,
                } => {
                    let result = tokio::task::block_in_place(|| upload.chunk(offset, &bytes, last));
                    match result {
                        Ok(Some(path)) => {
                            tracing::info!(exe = %path.display(), "executable stored");
                            if let Err(e) = self.exes.insert(exe_hash) {
                                tracing::warn!("counting a stored executable: {e}");
                            }
                            let _ = outbox.send(Message::ExeStored);
                        }
                        Ok(None) => {}
                        Err(error) => {
                            tracing::warn!(%peer, "executable upload failed: {error}");
                            upload = ExeWriter::new(self.exes.dir(), exe_hash);
                            let _ = outbox.send(Message::Failed { error });
                        }
                    }
                }
                Message::SubmitTask(task) => {
                    let mut t = self.tables.lock();
                    let job_exe = t.jobs.jobs.get(&task.job_id.0).map(|j| j.exe_hash.clone());
                    match job_exe {
                        Some(hash) => t.sched.submit(conn_id, task, hash),
                        None => {
                            let error = Error::new(
                                ErrorKind::Config,
                                format!("{} is not a job of this cluster", task.job_id),
                            );
                            for id in task.outputs {
                                let _ = outbox.send(Message::ObjectFailed {
                                    id,
                                    error: error.clone(),
                                });
                            }
                        }
                    }
                }
                Message::CreateActor(creation) => {
                    let mut t = self.tables.lock();
                    let job_exe = t
                        .jobs
                        .jobs
                        .get(&creation.job_id.0)
                        .map(|j| j.exe_hash.clone());
                    match job_exe {
                        Some(hash) => t.sched.create_actor(conn_id, *creation, hash),
                        None => {
                            tracing::warn!(%peer, job = %creation.job_id, "an actor of an unknown job; ignored")
                        }
                    }
                }
                Message::SubmitActorCall { actor_id, task } => self
                    .tables
                    .lock()
                    .sched
                    .submit_call(conn_id, actor_id, task),
                Message::KillActor { actor_id } => self.tables.lock().sched.kill_actor(actor_id),
                Message::ReleaseActor { actor_id } => {
                    self.tables.lock().sched.release_actor(conn_id, actor_id)
                }
                Message::EscapedActor { actor_id } => {
                    self.tables.lock().sched.escape_actor(actor_id)
                }
                Message::GetActor { name } => {
                    let actor = self.tables.lock().sched.named_actor(&name);
                    let _ = outbox.send(Message::ActorFound { name, actor });
                }
                Message::PutObject { id, bytes } => {
                    let inline = (bytes.len() < INLINE_MAX).then(|| bytes.clone());
                    self.store.put(id, bytes);
                    self.tables.lock().sched.put(conn_id, id, inline);
                }
                Message::ObjectChunk {
                    id,
                    offset,
                    total,
                    bytes,
                } => {
                    let added = match put.as_mut() {
                        Some(a) => a.add(id, offset, total, &bytes),
                        None => ChunkAssembler::new(id, total)
                            .and_then(|a| put.insert(a).add(id, offset, total, &bytes)),
                    };
                    drop(bytes);
                    match added {
                        Ok(false) => {}
                        Ok(true) => {
                            if let Some(a) = put.take() {
                                self.store.put(id, a.finish());
                                self.tables.lock().sched.put(conn_id, id, None);
                            }
                        }
                        Err(error) => {
                            tracing::warn!(%peer, "closing the connection: {error}");
                            let _ = outbox.send(Message::ObjectFailed {
                                id,
                                error: error.clone(),
                            });
                            let _ = outbox.send(Message::Failed { error });
                            return;
                        }
                    }
                }
                Message::AllocObject { id, len } => {
                    // A second block for an object still being written gets none: the first
                    // stays lent to its writer.
                    let block = if writing.is_lent(&id) {
                        None
                    } else {
                        self.store.arena().and_then(|a| a.alloc(len))
                    };
                    let offset = block.as_ref().map(Block::offset);
                    if let Some(block) = block {
                        writing.lend(id, block);
                    }
                    let _ = outbox.send(Message::ObjectAllocated { id, offset });
                }
                Message::SealObject { id } => match writing.take(&id) {
                    Some(block) => {
                        self.store.put_block(id, block);
                        self.tables.lock().sched.put(conn_id, id, None);
                    }
                    None => {
                        let error = Error::new(
                            ErrorKind::Protocol,
                            format!("SealObject for object {id}, which has no block"),
                        );
                        tracing::warn!(%peer, "{error}");
                        let _ = outbox.send(Message::ObjectFailed { id, error });
                    }
                },
                Message::WatchObject { id } => self.tables.lock().sched.watch(conn_id, id),
                // A program that drops refs fast sends them merged: take the lock a slice at a
                // time and let the other connections (heartbeats) in between.
                Message::ReleaseObjects { ids } => {
                    for slice in ids.chunks(ID_SLICE) {
                        self.tables.lock().sched.release(conn_id, slice);
                        tokio::task::yield_now().await;
                    }
                }
                Message::EscapedObjects { ids } => {
                    for slice in ids.chunks(ID_SLICE) {
                        self.tables.lock().sched.escape(slice);
                        tokio::task::yield_now().await;
                    }
                }
                Message::ObjectUnreachable { id, location } => {
                    self.tables.lock().sched.object_unreachable(id, &location)
                }
                Message::TaskBlocked { task_id } => self.tables.lock().sched.task_blocked(task_id),
                Message::TaskUnblocked { task_id } => {
                    self.tables.lock().sched.task_unblocked(task_id)
                }
                Message::FetchObject { id } => {
                    let answer = match self.store.get(id) {
                        Some(bytes) => Message::ObjectData {
                            id,
                            bytes: bytes.to_vec(),
                        },
                        None => Message::Failed {
                            error: Error::new(
                                ErrorKind::ObjectLost,
                                format!("object {id} is not stored on the head's node"),
                            ),
                        },
                    };
                    let _ = outbox.send(answer);
                }
                Message::StatusRequest => {
                    let _ = outbox.send(Message::Status(self.status()));
                }
                Message::Ping => {
                    let _ = outbox.send(Message::Pong);
                }
                // Only the driver that started the job takes its output.
                Message::ForwardOutput => match &output {
                    Some((job, queue)) => self.relay.lock().subscribe(*job, queue.clone()),
                    None => {
                        tracing::debug!(%peer, "ForwardOutput from a job's other process; ignored")
                    }
                },
                Message::DrainOutput { seq, .. } => {
                    if let Some((job, _)) = &output {
                        self.relay.lock().drain(*job, seq);
                    }
                }
                other => {
                    let error = Error::new(
                        ErrorKind::Protocol,
                        format!("unexpected {} message from a driver", other.name()),
                    );
                    tracing::warn!(%peer, "closing the connection: {error}");
                    let _ = outbox.send(Message::Failed { error });
                    return;
                }
            }
        }
    }

    /// Sends the executable `hash` to a node in [`EXE_CHUNK`]-sized chunks.
    pub async fn send_exe(&self, conn: &mut Connection, hash: &str) -> Result<()> {
        let path = self.exe_path(hash);
        let file = if valid_hash(hash) {
            std::fs::File::open(&path).ok()
        } else {
            None
        };
        let Some(mut file) = file else {
            let error = Error::new(
                ErrorKind::Config,
                format!("the head has no executable {hash}"),
            );
            return conn.send(&Message::Failed { error }).await;
        };
        let size = file.metadata().map(|m| m.len()).unwrap_or(0);
        let mut sent = 0u64;
        loop {
            let mut buf = vec![0u8; EXE_CHUNK];
            let n = tokio::task::block_in_place(|| read_full(&mut file, &mut buf))
                .map_err(|e| io_error(format!("cannot read {}", path.display()), e))?;
            buf.truncate(n);
            sent += n as u64;
            let last = n < EXE_CHUNK || sent >= size;
            conn.send(&Message::ExeChunk { bytes: buf, last }).await?;
            if last {
                return Ok(());
            }
        }
    }
}

/// Reads until `buf` is full or the file ends; returns how much was read.
fn read_full(file: &mut std::fs::File, buf: &mut [u8]) -> std::io::Result<usize> {
    let mut n = 0;
    while n < buf.len() {
        match file.read(&mut buf[n..])? {
            0 => break,
            k => n += k,
        }
    }
    Ok(n)
}

fn mark_dead(n: &mut NodeEntry, reason: String) {
    if reason == LEFT {
        tracing::info!(node = %n.info.node_id, address = %n.info.address, "node left");
    } else {
        tracing::warn!(node = %n.info.node_id, address = %n.info.address, "node dead: {reason}");
    }
    n.alive = false;
    n.load.available.clear();
    n.death_reason = Some(reason);
    n.died_at = Some(Instant::now());
}

#[cfg(test)]
mod tests {
    use super::*;

    fn info(id: NodeId) -> NodeInfo {
        NodeInfo {
            node_id: id,
            address: "127.0.0.1:1".into(),
            resources: [("CPU".to_owned(), 2.0)].into_iter().collect(),
            pid: 1,
        }
    }

    #[test]
    fn a_dead_node_comes_back_only_as_a_fresh_higher_incarnation_and_a_stale_session_kills_nothing()
    {
        let id = crate::cluster::new_node_id().unwrap();
        let head = Head::new(
            id,
            Arc::new(ObjectStore::new()),
            std::env::temp_dir(),
            u64::MAX,
        );
        let (tx, _rx) = mpsc::unbounded_channel();
        let s1 = head.register(info(id), 1, true, tx.clone()).unwrap();
        let s2 = head.register(info(id), 1, false, tx.clone()).unwrap();
        head.node_died(id, s1, "old connection");
        assert!(head.status().nodes[0].alive);
        assert_eq!(head.heartbeat(id, s2, 1, NodeLoad::default()), Ok(()));
        assert_eq!(head.heartbeat(id, s1, 1, NodeLoad::default()), Err(None));
        head.node_died(id, s2, "gone");
        let st = head.status();
        assert!(!st.nodes[0].alive);
        assert_eq!(st.nodes[0].death_reason.as_deref(), Some("gone"));
        // The dead incarnation hears it must rejoin as a higher one.
        let Err(Some((at_least, why))) = head.heartbeat(id, s2, 1, NodeLoad::default()) else {
            panic!("a dead node's heartbeat counted");
        };
        assert_eq!(at_least, 2);
        assert!(why.contains("gone"), "{why}");
        // Neither a reconnect nor a fresh join of the dead incarnation brings it back.
        assert_eq!(head.register(info(id), 1, false, tx.clone()), Err(2));
        assert_eq!(head.register(info(id), 1, true, tx.clone()), Err(2));
        assert!(!head.status().nodes[0].alive);
        // A fresh higher incarnation does, with every resource free and one entry.
        let s3 = head.register(info(id), 2, true, tx.clone()).unwrap();
        let st = head.status();
        assert_eq!(st.nodes.len(), 1);
        assert!(st.nodes[0].alive);
        assert_eq!(st.nodes[0].death_reason, None);
        assert_eq!(st.nodes[0].load.available.get("CPU"), Some(&2.0));
        assert_eq!(head.heartbeat(id, s3, 2, NodeLoad::default()), Ok(()));
        // What the old sessions say counts for nothing.
        let t = head.tables.lock();
        assert!(Head::current(&t, id, s3));
        assert!(!Head::current(&t, id, s2));
        drop(t);
        // An unknown node reconnecting (not fresh) must rejoin; a fresh one joins.
        let other = crate::cluster::new_node_id().unwrap();
        assert_eq!(head.register(info(other), 4, false, tx.clone()), Err(5));
        assert!(head.register(info(other), 4, true, tx).is_ok());
    }

    #[test]
    fn dead_nodes_leave_the_table_after_the_grace_into_a_history_of_at_most_32() {
        let id = crate::cluster::new_node_id().unwrap();
        let mut head = Head::new(
            id,
            Arc::new(ObjectStore::new()),
            std::env::temp_dir(),
            u64::MAX,
        );
        head.dead_grace = Duration::ZERO;
        let (tx, _rx) = mpsc::unbounded_channel();
        let mut ids = Vec::new();
        for _ in 0..40 {
            let n = crate::cluster::new_node_id().unwrap();
            let s = head.register(info(n), 1, true, tx.clone()).unwrap();
            head.node_died(n, s, "gone");
            ids.push(n);
        }
        let alive = crate::cluster::new_node_id().unwrap();
        head.register(info(alive), 1, true, tx.clone()).unwrap();
        assert_eq!(head.status().nodes.len(), 41);
        head.check_heartbeats();
        let st = head.status();
        assert_eq!(st.nodes.len(), 1, "only the alive node stays");
        assert_eq!(st.nodes[0].info.node_id, alive);
        let dead = head.dead_nodes();
        assert_eq!(dead.len(), DEAD_HISTORY);
        // The most recent ones, oldest first.
        let kept: Vec<NodeId> = dead.iter().map(|n| n.info.node_id).collect();
        assert_eq!(kept, ids[40 - DEAD_HISTORY..]);
        assert!(dead
            .iter()
            .all(|n| !n.alive && n.death_reason.as_deref() == Some("gone")));
        assert_eq!(head.tables.lock().sched_nodes(), 1);
        // A forgotten node comes back only as a fresh higher incarnation.
        let last = ids[39];
        assert_eq!(head.register(info(last), 1, true, tx.clone()), Err(2));
        assert_eq!(head.register(info(last), 1, false, tx.clone()), Err(2));
        assert!(head.register(info(last), 2, true, tx).is_ok());
        assert_eq!(head.status().nodes.len(), 2);
    }

    /// A driver talking to the head in process, as over TCP after the handshake.
    async fn driver(head: &Arc<Head>, shutdown: &CancellationToken) -> Connection {
        let (mut ours, theirs) = Connection::in_process("127.0.0.1:1".parse().unwrap());
        let first = Message::RegisterJob {
            exe_hash: "0".repeat(64),
            exe_size: 1,
            name: "test".into(),
        };
        let (head, shutdown) = (head.clone(), shutdown.clone());
        tokio::spawn(async move {
            head.serve_driver(theirs, first, Role::Driver, &shutdown)
                .await
        });
        match ours.recv().await.unwrap() {
            Message::JobRegistered { arena: Some(_), .. } => {}
            other => panic!("expected JobRegistered with an arena, got {other:?}"),
        }
        ours
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 1)]
    async fn shared_memory_puts_are_stored_and_misuse_is_refused_without_harm() {
        use crate::cluster::node::arena::ArenaView;
        let id = crate::cluster::new_node_id().unwrap();
        let dir = std::env::temp_dir().join(format!("raykit-head-test-{}", std::process::id()));
        let store = Arc::new(ObjectStore::with_arena(16 << 20));
        let head = Arc::new(Head::new(id, store.clone(), dir.clone(), u64::MAX));
        let (tx, _rx) = mpsc::unbounded_channel();
        head.register(info(id), 1, true, tx).unwrap();
        let shutdown = CancellationToken::new();
        let mut conn = driver(&head, &shutdown).await;
        let location = store.arena().unwrap().location().clone();
        let view = ArenaView::attach(&location).unwrap();
        let timeout = Duration::from_secs(10);

        // A seal with no block fails that object only.
        let stray = ObjectId::next();
        conn.send(&Message::SealObject { id: stray }).await.unwrap();
        match conn.recv_timeout(timeout).await.unwrap() {
            Message::ObjectFailed { id, error } => {
                assert_eq!(id, stray);
                assert!(error.message().contains("no block"), "{error}");
            }
            other => panic!("expected ObjectFailed, got {other:?}"),
        }
        // More than the arena holds: no block, so the value would go over the connection.
        let huge = ObjectId::next();
        conn.send(&Message::AllocObject {
            id: huge,
            len: 1 << 40,
        })
        .await
        .unwrap();
        match conn.recv_timeout(timeout).await.unwrap() {
            Message::ObjectAllocated { id, offset: None } => assert_eq!(id, huge),
            other => panic!("expected no room, got {other:?}"),
        }
        // A put through the arena: allocated, written through this process's view, sealed,
        // reported ready and served from the store.
        let obj = ObjectId::next();
        let value: Vec<u8> = (0..3 << 20).map(|i| (i % 253) as u8).collect();
        conn.send(&Message::AllocObject {
            id: obj,
            len: value.len() as u64,
        })
        .await
        .unwrap();
        let offset = match conn.recv_timeout(timeout).await.unwrap() {
            Message::ObjectAllocated {
                id,
                offset: Some(offset),
            } if id == obj => offset,
            other => panic!("expected a block, got {other:?}"),
        };
        // SAFETY: the head allocated this block for this put; nothing reads it before the seal.
        unsafe { view.block_mut(offset, value.len()) }
            .unwrap()
            .copy_from_slice(&value);
        conn.send(&Message::SealObject { id: obj }).await.unwrap();
        match conn.recv_timeout(timeout).await.unwrap() {
            Message::ObjectReady { id, inline, .. } => {
                assert_eq!(id, obj);
                assert!(inline.is_none());
            }
            other => panic!("expected ObjectReady, got {other:?}"),
        }
        assert_eq!(&**store.get(obj).unwrap(), &value[..]);
        // The connection still serves, and freeing the object gives the block back.
        conn.send(&Message::ReleaseObjects { ids: vec![obj] })
            .await
            .unwrap();
        conn.send(&Message::Ping).await.unwrap();
        assert!(matches!(
            conn.recv_timeout(timeout).await.unwrap(),
            Message::Pong
        ));
        assert!(store.get(obj).is_none());
        assert_eq!(store.arena().unwrap().free_bytes(), location.capacity);
        shutdown.cancel();
        let _ = std::fs::remove_dir_all(dir);
    }
}
