//! A node's worker processes: the job's cached executable started in worker mode, one task at
//! a time each, reused by later tasks of the same job and killed when the daemon stops.
//!
//! A worker connects back to its node with [`Role::Worker`](crate::cluster::proto::Role) and announces
//! itself with `WorkerReady`; the daemon hands that connection to [`WorkerPool::worker_ready`],
//! which gives it to the task that started the process.
//!
//! Processes are started from one long-lived thread with `PR_SET_PDEATHSIG`: the kernel kills a
//! worker when the thread that forked it ends, so a daemon that is killed leaves no orphans.
//!
//! Each worker's stdout and stderr are pipes the node reads ([`NodeOutput`]): into the
//! worker's log files, and on to its job's driver.

use std::collections::HashMap;
use std::fmt;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use parking_lot::Mutex;
use tokio::sync::oneshot;

use crate::cluster::node::arena::{Arena, ArenaLocation, Block, Lent};
use crate::cluster::output::{Capture, NodeOutput};
use crate::cluster::proto::{Connection, JobId, Message};
use crate::error::{Error, ErrorKind, Result};
use crate::runtime::NodeId;

/// How long a new worker process may take to connect back.
pub const WORKER_START_TIMEOUT: Duration = Duration::from_secs(30);

/// A worker idle for this long is stopped (its job may have ended; a new task starts another).
pub const WORKER_IDLE_TIMEOUT: Duration = Duration::from_secs(60);

/// The environment variable giving a worker its node's id.
pub const NODE_ID_ENV: &str = "RAYKIT_NODE_ID";

/// What every worker process of this node is told.
#[derive(Debug, Clone)]
pub struct WorkerEnv {
    /// The node daemon's address (`RAYKIT_WORKER_NODE`).
    pub node_address: String,
    /// The node's id (`RAYKIT_NODE_ID`).
    pub node_id: NodeId,
    /// The head's address (`RAYKIT_ADDRESS`), for the worker's nested tasks.
    pub head_address: String,
    /// The cluster token (`RAYKIT_TOKEN`).
    pub token: String,
    /// The node's arena, for workers to map (`RAYKIT_NODE_ARENA`).
    pub arena: Option<ArenaLocation>,
}

/// A worker process connected to its node, ready for one task at a time.
pub struct Worker {
    pid: u32,
    job: JobId,
    conn: Connection,
    /// The process mapped the node's arena: large arguments can go there.
    shared_memory: bool,
    /// Its stdout and stderr, as the node reads them.
    output: Arc<Capture>,
}

impl fmt::Debug for Worker {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Worker")
            .field("pid", &self.pid)
            .field("job", &self.job)
            .finish()
    }
}

impl Worker {
    /// The worker's process id.
    pub fn pid(&self) -> u32 {
        self.pid
    }

    /// Whether the process mapped the node's arena.
    pub fn shares_memory(&self) -> bool {
        self.shared_memory
    }

    /// The worker runs `name` (a function's or an actor class's stable name) from now on:
    /// what it prints goes out under that name. Call it before sending the work.
    pub fn label(&self, name: &str) {
        self.output.label(name);
    }

    /// The process id and the connection, for a worker that serves one actor from now on
    /// (it never goes back to the pool: end it with [`WorkerPool::kill`]).
    pub fn into_parts(self) -> (u32, Connection) {
        (self.pid, self.conn)
    }

    /// Sends `msg` to the worker and waits (without limit: tasks may run long) for its answer.
    pub async fn request(&mut self, msg: &Message) -> Result<Message> {
        self.conn.send(msg).await?;
        self.conn.recv().await
    }

    /// Sends `shell` with `values` in its value slots, large ones in pieces (see
    /// [`FrameWriter::feed_with_values`](crate::cluster::proto::FrameWriter::feed_with_values)), and
    /// waits (without limit) for the answer with the values that came in pieces before it.
    /// `values` are dropped once sent, so a long task does not keep them alive here. An error
    /// of kind [`ErrorKind::Network`] means the process is gone; any other leaves the
    /// connection unusable (discard the worker).
    ///
    /// Large outputs the worker writes into `arena` come back as blocks, by output slot (their
    /// slots in the answer are empty).
    pub async fn request_with_values<V: AsRef<[u8]>>(
        &mut self,
        shell: &Message,
        values: Vec<V>,
        arena: Option<&Arc<Arena>>,
    ) -> Result<(Message, Vec<(u32, Block)>)> {
        self.conn.send_with_values(shell, &values).await?;
        drop(values);
        self.answer(arena).await
    }

    /// [`request_with_values`](Self::request_with_values) for arguments already in the
    /// node's arena: `shared` (a [`Message::SharedValue`]) goes first and `shell` carries one
    /// empty argument slot. The caller keeps the arena bytes until this returns.
    pub async fn request_shared(
        &mut self,
        shared: &Message,
        shell: &Message,
        arena: Option<&Arc<Arena>>,
    ) -> Result<(Message, Vec<(u32, Block)>)> {
        self.conn.feed(shared).await?;
        self.conn.send_with_values(shell, &[&[][..]]).await?;
        self.answer(arena).await
    }

    /// Reads the worker's answer to a request. On the way, gives it blocks of `arena` for its
    /// large outputs ([`Message::AllocValue`]); returns the answer with the blocks its
    /// [`Message::SharedValue`]s filled, by output slot.
    async fn answer(&mut self, arena: Option<&Arc<Arena>>) -> Result<(Message, Vec<(u32, Block)>)> {
        // Kept a while if the answer breaks off: the worker may still be writing.
        let mut given: Lent<u32> = Lent::default();
        let mut filled = Vec::new();
        loop {
            match self.conn.recv_values().await? {
                Message::AllocValue {
                    task_id,
                    index,
                    len,
                } => {
                    // A second block for one output gets none: the first stays lent.
                    let block = if given.is_lent(&index) {
                        None
                    } else {
                        arena.and_then(|a| a.alloc(len))
                    };
                    let offset = block.as_ref().map(Block::offset);
                    if let Some(block) = block {
                        given.lend(index, block);
                    }
                    let answer = Message::ValueAllocated {
                        task_id,
                        index,
                        offset,
                    };
                    self.conn.send(&answer).await?;
                }
                Message::SharedValue {
                    index, offset, len, ..
                } => match given.take(&index) {
                    Some(block) if block.offset() == offset && block.len() == len => {
                        filled.push((index, block));
                    }
                    _ => {
                        return Err(Error::new(
                            ErrorKind::Protocol,
                            format!(
                                "worker process {} named output #{index} at {offset}+{len}, not the block it was given",
                                self.pid
                            ),
                        ))
                    }
                },
                answer => return Ok((answer, filled)),
            }
        }
    }
}

/// The `GLIBC_TUNABLES` a worker starts with (see [`tunables_for_workers`]), from the node's
/// own and its settings.
fn worker_tunables() -> Option<String> {
    let on = |var: &str| std::env::var(var).map_or(true, |v| v != "0");
    tunables_for_workers(
        std::env::var("GLIBC_TUNABLES").ok().as_deref(),
        on("RAYKIT_WORKER_HUGE_PAGES"),
        on("RAYKIT_WORKER_KEEP_MEMORY"),
    )
}

/// How much freed memory a worker's malloc keeps for reuse (`glibc.malloc.trim_threshold`).
const KEEP_MEMORY: u64 = 1 << 30;

/// The `GLIBC_TUNABLES` for workers given the node's own (`inherited`), or `None` to leave
/// them as they are. A worker decodes each large argument into a fresh buffer, which on a small
/// VM costs more in page faults and zeroing than in the copy itself. So, for glibc's malloc
/// (glibc 2.35 and later; other C libraries ignore these):
/// - `huge`: transparent huge pages for the memory malloc takes from the system
///   (`glibc.malloc.hugetlb=1`): 256 MiB decoded at about 2 GB/s instead of 1;
/// - `keep`: large blocks from the heap instead of a mapping of their own, and up to
///   [`KEEP_MEMORY`] of freed memory kept (`glibc.malloc.mmap_max=0`,
///   `glibc.malloc.trim_threshold`): the next large argument reuses pages already faulted
///   in, and 256 MiB decodes in 27 ms instead of 95 here. The cost is memory a worker keeps
///   after its peak, until it exits (idle workers stop after [`WORKER_IDLE_TIMEOUT`]).
///
/// A tunable the node already sets is left as it is.
fn tunables_for_workers(inherited: Option<&str>, huge: bool, keep: bool) -> Option<String> {
    let inherited = inherited.unwrap_or("");
    let has = |name: &str| {
        inherited
            .split(':')
            .any(|t| t.split('=').next() == Some(name))
    };
    let mut added = Vec::new();
    if huge && !has("glibc.malloc.hugetlb") {
        added.push("glibc.malloc.hugetlb=1".to_owned());
    }
    if keep && !has("glibc.malloc.mmap_max") && !has("glibc.malloc.trim_threshold") {
        added.push("glibc.malloc.mmap_max=0".to_owned());
        added.push(format!("glibc.malloc.trim_threshold={KEEP_MEMORY}"));
    }
    if added.is_empty() {
        return None;
    }
    Some(
        std::iter::once(inherited)
            .filter(|t| !t.is_empty())
            .chain(added.iter().map(String::as_str))
            .collect::<Vec<_>>()
            .join(":"),
    )
}

#[derive(Default)]
struct PoolInner {
    idle: HashMap<JobId, Vec<(Worker, Instant)>>,
    starting: HashMap<u32, oneshot::Sender<(Connection, bool)>>,
    /// Workers that connected before `start` knew their pid (a fast start races the spawn),
    /// with whether they mapped the arena.
    early: HashMap<u32, (Connection, bool, Instant)>,
    children: HashMap<u32, Child>,
    /// The job of each process in `children`.
    jobs: HashMap<u32, JobId>,
    /// Jobs that ended: none of their workers may run any more.
    ended: std::collections::HashSet<JobId>,
    closed: bool,
}

type SpawnRequest = (Command, std::sync::mpsc::Sender<std::io::Result<Child>>);

/// The worker processes of one node.
pub struct WorkerPool {
    env: WorkerEnv,
    output: Arc<NodeOutput>,
    inner: Mutex<PoolInner>,
    spawner: Mutex<Option<std::sync::mpsc::Sender<SpawnRequest>>>,
}

impl fmt::Debug for WorkerPool {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let inner = self.inner.lock();
        f.debug_struct("WorkerPool")
            .field("processes", &inner.children.len())
            .field("idle", &inner.idle.values().map(Vec::len).sum::<usize>())
            .finish()
    }
}

impl WorkerPool {
    /// A pool of workers told `env`.
    pub fn new(env: WorkerEnv) -> WorkerPool {
        let logs =
            crate::cluster::output::node_logs_dir(&crate::cluster::records::home(), env.node_id);
        WorkerPool {
            output: Arc::new(NodeOutput::new(env.node_id, logs)),
            env,
            inner: Mutex::new(PoolInner::default()),
            spawner: Mutex::new(None),
        }
    }

    /// What the workers print.
    pub fn output(&self) -> &Arc<NodeOutput> {
        &self.output
    }

    /// The thread that starts every worker process (it never ends: see the module doc).
    fn spawner(&self) -> Result<std::sync::mpsc::Sender<SpawnRequest>> {
        let mut guard = self.spawner.lock();
        if let Some(tx) = guard.as_ref() {
            return Ok(tx.clone());
        }
        let (tx, rx) = std::sync::mpsc::channel::<SpawnRequest>();
        std::thread::Builder::new()
            .name("raykit-spawner".into())
            .spawn(move || {
                for (mut cmd, reply) in rx {
                    let _ = reply.send(cmd.spawn());
                }
                // The daemon is ending; keep the thread (and so the workers' death signal)
                // until the process exits.
                loop {
                    std::thread::park();
                }
            })
            .map_err(|e| {
                Error::new(
                    ErrorKind::System,
                    format!("cannot start the worker spawner thread: {e}"),
                )
            })?;
        *guard = Some(tx.clone());
        Ok(tx)
    }

    /// An idle worker of `job`, or a new one started from `exe`.
    pub async fn checkout(&self, job: JobId, exe: &Path) -> Result<Worker> {
        loop {
            let candidate = {
                let mut inner = self.inner.lock();
                if inner.closed {
                    return Err(Error::new(ErrorKind::Shutdown, "the node is stopping"));
                }
                if inner.ended.contains(&job) {
                    return Err(job_ended(job));
                }
                inner.idle.get_mut(&job).and_then(Vec::pop).map(|(w, _)| w)
            };
            let Some(worker) = candidate else { break };
            if self.alive(worker.pid) {
                return Ok(worker);
            }
            self.discard(worker);
        }
        self.start(job, exe).await
    }

    /// Whether the worker process `pid` still runs (reaping it if it exited).
    fn alive(&self, pid: u32) -> bool {
        let mut inner = self.inner.lock();
        match inner.children.get_mut(&pid).map(Child::try_wait) {
            Some(Ok(None)) => true,
            Some(_) => {
                inner.children.remove(&pid);
                inner.jobs.remove(&pid);
                false
            }
            None => false,
        }
    }

    async fn start(&self, job: JobId, exe: &Path) -> Result<Worker> {
        let mut cmd = Command::new(exe);
        cmd.env(
            crate::cluster::worker::WORKER_NODE_ENV,
            &self.env.node_address,
        )
        .env(NODE_ID_ENV, self.env.node_id.to_string())
        .env("RAYKIT_TOKEN", &self.env.token)
        .env(crate::cluster::worker::JOB_ENV, job.0.to_string())
        .env("RAYKIT_ADDRESS", &self.env.head_address)
        .env_remove(crate::cluster::worker::NODE_ARENA_ENV)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
        if let Some(tunables) = worker_tunables() {
            cmd.env("GLIBC_TUNABLES", tunables);
        }
        if let Some(json) = self
            .env
            .arena
            .as_ref()
            .and_then(|a| serde_json::to_string(a).ok())
        {
            cmd.env(crate::cluster::worker::NODE_ARENA_ENV, json);
        }
        // SAFETY: the closure runs in the child between fork and exec and only calls prctl,
        // which is async-signal-safe.
        unsafe {
            cmd.pre_exec(|| {
                libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL, 0, 0, 0);
                Ok(())
            });
        }
        let (reply_tx, reply_rx) = std::sync::mpsc::channel();
        self.spawner()?
            .send((cmd, reply_tx))
            .map_err(|_| Error::new(ErrorKind::System, "the worker spawner thread is gone"))?;
        let spawned = tokio::task::spawn_blocking(move || reply_rx.recv())
            .await
            .map_err(|e| Error::new(ErrorKind::System, format!("spawning a worker: {e}")))?
            .map_err(|_| Error::new(ErrorKind::System, "the worker spawner thread is gone"))?;
        let mut child = spawned.map_err(|e| {
            Error::new(
                ErrorKind::System,
                format!("cannot start a worker from {}: {e}", exe.display()),
            )
        })?;
        let pid = child.id();
        let output = self.output.capture(
            pid,
            job,
            child.stdout.take().map(Into::into),
            child.stderr.take().map(Into::into),
        );
        let (tx, mut rx) = oneshot::channel();
        {
            let mut inner = self.inner.lock();
            inner.children.insert(pid, child);
            inner.jobs.insert(pid, job);
            match inner.early.remove(&pid) {
                Some((conn, shared, _)) => {
                    let _ = tx.send((conn, shared));
                }
                None => {
                    inner.starting.insert(pid, tx);
                }
            }
            if inner.closed || inner.ended.contains(&job) {
                let error = match inner.closed {
                    true => Error::new(ErrorKind::Shutdown, "the node is stopping"),
                    false => job_ended(job),
                };
                drop(inner);
                self.kill(pid);
                return Err(error);
            }
        }
        tracing::info!(pid, job = %job, exe = %exe.display(), logs = %self.output.dir().display(), "worker process started");
        let deadline = tokio::time::Instant::now() + WORKER_START_TIMEOUT;
        loop {
            tokio::select! {
                conn = &mut rx => match conn {
                    Ok((conn, shared_memory)) => {
                        return Ok(Worker { pid, job, conn, shared_memory, output })
                    }
                    Err(_) => {
                        return Err(Error::new(ErrorKind::System, "the worker pool closed"));
                    }
                },
                _ = tokio::time::sleep(Duration::from_millis(100)) => {}
            }
            let exited = {
                let mut inner = self.inner.lock();
                match inner.children.get_mut(&pid).map(Child::try_wait) {
                    Some(Ok(Some(status))) => Some(status.to_string()),
                    Some(Err(e)) => Some(e.to_string()),
                    Some(Ok(None)) => None,
                    None => Some("killed".to_owned()),
                }
            };
            if let Some(status) = exited {
                let mut inner = self.inner.lock();
                inner.starting.remove(&pid);
                inner.children.remove(&pid);
                inner.jobs.remove(&pid);
                drop(inner);
                return Err(Error::new(
                    ErrorKind::System,
                    format!(
                        "the worker process {pid} ({}) exited ({status}) before connecting to its node",
                        exe.display()
                    ),
                ));
            }
            if tokio::time::Instant::now() >= deadline {
                self.inner.lock().starting.remove(&pid);
                self.kill(pid);
                return Err(Error::new(
                    ErrorKind::System,
                    format!(
                        "the worker process {pid} did not connect within {WORKER_START_TIMEOUT:?}"
                    ),
                ));
            }
        }
    }

    /// A worker process connected and said `WorkerReady`.
    pub fn worker_ready(&self, pid: u32, job: JobId, conn: Connection, shared_memory: bool) {
        let mut inner = self.inner.lock();
        match inner.starting.remove(&pid) {
            Some(tx) => {
                tracing::debug!(pid, job = %job, shared_memory, "worker connected");
                let _ = tx.send((conn, shared_memory));
            }
            // Its `start` has not recorded the pid yet; it takes the connection from here.
            None => {
                tracing::debug!(pid, job = %job, "worker connected before its start was recorded");
                inner
                    .early
                    .insert(pid, (conn, shared_memory, Instant::now()));
            }
        }
    }

    /// A worker finished its task well: it waits for the next task of its job.
    pub fn checkin(&self, worker: Worker) {
        let mut inner = self.inner.lock();
        if inner.closed {
            drop(inner);
            self.discard(worker);
            return;
        }
        inner
            .idle
            .entry(worker.job)
            .or_default()
            .push((worker, Instant::now()));
    }

    /// Stops the workers idle for longer than [`WORKER_IDLE_TIMEOUT`].
    pub fn reap_idle(&self) {
        let expired: Vec<Worker> = {
            let mut inner = self.inner.lock();
            let mut out = Vec::new();
            for list in inner.idle.values_mut() {
                let (old, keep): (Vec<_>, Vec<_>) = std::mem::take(list)
                    .into_iter()
                    .partition(|(_, since)| since.elapsed() > WORKER_IDLE_TIMEOUT);
                *list = keep;
                out.extend(old.into_iter().map(|(w, _)| w));
            }
            inner.idle.retain(|_, list| !list.is_empty());
            // A connection nobody claimed: not a worker this node started.
            inner
                .early
                .retain(|_, (_, _, since)| since.elapsed() < WORKER_START_TIMEOUT);
            out
        };
        for worker in expired {
            tracing::info!(pid = worker.pid, job = %worker.job, "stopping an idle worker");
            self.discard(worker);
        }
    }

    /// A worker that failed: its process is killed.
    pub fn discard(&self, worker: Worker) {
        let pid = worker.pid;
        drop(worker);
        self.kill(pid);
    }

    /// Kills the worker process `pid` (one this pool started) and reaps it in the background.
    pub fn kill(&self, pid: u32) {
        let child = {
            let mut inner = self.inner.lock();
            inner.jobs.remove(&pid);
            inner.children.remove(&pid)
        };
        if let Some(mut child) = child {
            let _ = child.kill();
            // Reap it without blocking the caller.
            std::thread::spawn(move || {
                let _ = child.wait();
            });
        }
    }

    /// The job ended: kills every worker process of it (idle or running a task or an actor)
    /// and starts none for it from now on. Returns how many it killed.
    pub fn end_job(&self, job: JobId) -> usize {
        let pids: Vec<u32> = {
            let mut inner = self.inner.lock();
            inner.ended.insert(job);
            inner.idle.remove(&job);
            inner
                .jobs
                .iter()
                .filter(|(_, j)| **j == job)
                .map(|(pid, _)| *pid)
                .collect()
        };
        for pid in &pids {
            self.kill(*pid);
        }
        pids.len()
    }

    /// Kills every worker process (idle or running a task or an actor) and lets new ones
    /// start afterwards. Returns how many it killed.
    pub fn kill_running(&self) -> usize {
        let pids: Vec<u32> = {
            let mut inner = self.inner.lock();
            inner.idle.clear();
            inner.children.keys().copied().collect()
        };
        for pid in &pids {
            self.kill(*pid);
        }
        pids.len()
    }

    /// How many worker processes run.
    pub fn processes(&self) -> usize {
        self.inner.lock().children.len()
    }

    /// Kills every worker process and waits for them; no new ones start after this.
    pub fn kill_all(&self) {
        let children: Vec<Child> = {
            let mut inner = self.inner.lock();
            inner.closed = true;
            inner.idle.clear();
            inner.starting.clear();
            inner.early.clear();
            inner.jobs.clear();
            inner.children.drain().map(|(_, c)| c).collect()
        };
        if !children.is_empty() {
            tracing::info!(workers = children.len(), "killing worker processes");
        }
        for mut child in children {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

impl Drop for WorkerPool {
    fn drop(&mut self) {
        self.kill_all();
    }
}

/// Why no worker of `job` starts any more.
fn job_ended(job: JobId) -> Error {
    Error::new(ErrorKind::Cancelled, format!("cancelled: {job} ended"))
}

/// Where a node caches executables: `<home>/node-<id>/exe`.
pub fn exe_cache_dir(home: &Path, node_id: NodeId) -> PathBuf {
    home.join(format!("{node_id}")).join("exe")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn workers_get_the_malloc_tunables_the_node_does_not_set_itself() {
        let keep = format!("glibc.malloc.mmap_max=0:glibc.malloc.trim_threshold={KEEP_MEMORY}");
        assert_eq!(
            tunables_for_workers(None, true, true),
            Some(format!("glibc.malloc.hugetlb=1:{keep}"))
        );
        assert_eq!(
            tunables_for_workers(Some("glibc.rtld.x=1"), false, true),
            Some(format!("glibc.rtld.x=1:{keep}"))
        );
        assert_eq!(
            tunables_for_workers(Some(""), true, false),
            Some("glibc.malloc.hugetlb=1".to_owned())
        );
        // What the node sets wins; nothing asked, nothing changed.
        assert_eq!(
            tunables_for_workers(Some("glibc.malloc.trim_threshold=5"), true, true),
            Some("glibc.malloc.trim_threshold=5:glibc.malloc.hugetlb=1".to_owned())
        );
        assert_eq!(
            tunables_for_workers(Some("glibc.malloc.hugetlb=0"), true, false),
            None
        );
        assert_eq!(tunables_for_workers(Some("a=1"), false, false), None);
    }
}
