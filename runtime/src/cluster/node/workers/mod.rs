//! A node's worker processes: the job's cached executable started in worker mode, one task at
//! a time each, reused by later tasks of the same job and killed when the daemon stops.
//!
//! A worker connects back to its node with [`Role::Worker`](crate::cluster::proto::Role) and announces
//! itself with `WorkerReady`; the daemon hands that connection to [`WorkerPool::worker_ready`],
//! which gives it to the task that started the process.
//!
//! Each worker's stdout and stderr are pipes the node reads ([`NodeOutput`]): into the
//! worker's log files, and on to its job's driver.
//!
//! The pool (Ray's worker pool) is here; `spawn` starts the processes, and `process` is one
//! worker as its node talks to it ([`Worker`]).

use std::collections::HashMap;
use std::fmt;
use std::path::{Path, PathBuf};
use std::process::Child;
use std::sync::Arc;
use std::time::{Duration, Instant};

use parking_lot::Mutex;
use tokio::sync::oneshot;

use crate::cluster::node::arena::ArenaLocation;
use crate::cluster::output::NodeOutput;
use crate::cluster::proto::{Connection, JobId};
use crate::error::{Error, ErrorKind, Result};
use crate::runtime::NodeId;

mod process;
mod spawn;

pub use process::Worker;
use spawn::SpawnRequest;

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
