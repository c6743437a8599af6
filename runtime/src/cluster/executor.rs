//! A node running the tasks the head assigns it: the job's executable cached on this node,
//! the arguments fetched (from this node's store or from the node holding them), one worker
//! process per running task, the outputs stored here and reported to the head.
//!
//! Failures are reported, never hidden: a task's own error (a panic, a version skew) fails it;
//! a dead worker process or an argument that could not be fetched is the system's failure, and
//! the head may run the task again.

use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use parking_lot::Mutex;
use tokio::sync::mpsc;

use super::head::ExeWriter;
use super::store::ObjectStore;
use super::wire::{
    Connection, Message, NodeLoad, Role, StoredObject, TaskAssignment, TaskCounts, TaskOutcome,
    WireArg, INLINE_MAX,
};
use super::workers::{WorkerEnv, WorkerPool};
use crate::error::{Error, ErrorKind, Result};
use crate::object::ObjectId;

/// How long one answer from the head or a peer node may take (a chunk of an executable, an
/// object of up to a gigabyte).
pub const FETCH_TIMEOUT: Duration = Duration::from_secs(120);

/// A node's task runner.
pub struct Executor {
    address: String,
    head_address: String,
    token: String,
    store: Arc<ObjectStore>,
    exe_dir: PathBuf,
    /// On the head's node: the head's store of executables, linked instead of downloaded.
    head_exes: Option<PathBuf>,
    declared: BTreeMap<String, f64>,
    workers: WorkerPool,
    to_head: mpsc::UnboundedSender<Message>,
    /// One download of executables at a time, so two tasks never fetch the same one twice.
    exe_fetch: tokio::sync::Mutex<()>,
    peers: Mutex<HashMap<String, Arc<tokio::sync::Mutex<Option<Connection>>>>>,
    stats: Mutex<Stats>,
}

#[derive(Default)]
struct Stats {
    counts: TaskCounts,
    in_use: BTreeMap<String, f64>,
}

impl fmt::Debug for Executor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Executor")
            .field("address", &self.address)
            .field("workers", &self.workers)
            .finish_non_exhaustive()
    }
}

impl Executor {
    /// A runner for the node at `env.node_address` declaring `declared`, storing in `store`,
    /// caching executables in `exe_dir` and reporting to the head through `to_head`.
    pub fn new(
        env: WorkerEnv,
        declared: BTreeMap<String, f64>,
        store: Arc<ObjectStore>,
        exe_dir: PathBuf,
        to_head: mpsc::UnboundedSender<Message>,
    ) -> Executor {
        Executor {
            address: env.node_address.clone(),
            head_address: env.head_address.clone(),
            token: env.token.clone(),
            store,
            exe_dir,
            head_exes: None,
            declared,
            workers: WorkerPool::new(env),
            to_head,
            exe_fetch: tokio::sync::Mutex::new(()),
            peers: Mutex::new(HashMap::new()),
            stats: Mutex::new(Stats::default()),
        }
    }

    /// On the head's node: take executables from the head's store in `dir` (same host, same
    /// files) instead of downloading them.
    pub fn with_head_exes(mut self, dir: PathBuf) -> Executor {
        self.head_exes = Some(dir);
        self
    }

    /// The node's worker processes.
    pub fn workers(&self) -> &WorkerPool {
        &self.workers
    }

    /// What the node reports in a heartbeat.
    pub fn load(&self) -> NodeLoad {
        let stats = self.stats.lock();
        let available = self
            .declared
            .iter()
            .map(|(r, total)| {
                let used = stats.in_use.get(r).copied().unwrap_or(0.0);
                (r.clone(), (total - used).max(0.0))
            })
            .collect();
        let (objects, object_bytes) = self.store.usage();
        NodeLoad {
            available,
            tasks: stats.counts,
            objects,
            object_bytes,
            ..NodeLoad::default()
        }
    }

    /// Forgets objects the head freed.
    pub fn delete_objects(&self, ids: &[ObjectId]) {
        let removed = ids.iter().filter(|id| self.store.remove(**id)).count();
        tracing::debug!(asked = ids.len(), removed, "objects deleted");
    }

    /// Runs an assigned task in the background and reports its end to the head.
    pub fn execute(self: &Arc<Self>, assignment: TaskAssignment) {
        let this = self.clone();
        tokio::spawn(async move {
            let task_id = assignment.task.task_id;
            let function = assignment.task.function.clone();
            let resources = assignment.task.resources.clone();
            {
                let mut stats = this.stats.lock();
                stats.counts.running += 1;
                for (r, a) in &resources {
                    *stats.in_use.entry(r.clone()).or_insert(0.0) += a;
                }
            }
            tracing::debug!(task = %task_id, %function, attempt = assignment.attempt, "task started");
            let outcome = this.run(assignment).await;
            {
                let mut stats = this.stats.lock();
                stats.counts.running = stats.counts.running.saturating_sub(1);
                for (r, a) in &resources {
                    *stats.in_use.entry(r.clone()).or_insert(0.0) -= a;
                }
                match &outcome {
                    TaskOutcome::Stored(_) => stats.counts.finished += 1,
                    TaskOutcome::Failed { .. } => stats.counts.failed += 1,
                }
            }
            if let TaskOutcome::Failed { error, retryable } = &outcome {
                tracing::info!(task = %task_id, %function, retryable, "task failed: {error}");
            }
            let _ = this
                .to_head
                .send(Message::TaskFinished { task_id, outcome });
        });
    }

    async fn run(&self, a: TaskAssignment) -> TaskOutcome {
        let system = |error: Error| TaskOutcome::Failed {
            retryable: !matches!(error.kind(), ErrorKind::Config | ErrorKind::Protocol),
            error,
        };
        let exe = match self.ensure_exe(&a.exe_hash).await {
            Ok(p) => p,
            Err(e) => return system(e),
        };
        let TaskAssignment {
            task,
            arg_locations,
            ..
        } = a;
        let mut args = Vec::with_capacity(task.args.len());
        for (i, arg) in task.args.into_iter().enumerate() {
            match arg {
                WireArg::Value(bytes) => args.push(bytes),
                WireArg::Ref(id) => {
                    let at = arg_locations.get(i).cloned().flatten();
                    match self.fetch_object(id, at.as_deref()).await {
                        Ok(bytes) => args.push(Arc::unwrap_or_clone(bytes)),
                        Err(e) => {
                            return system(Error::with_source(
                                e.kind(),
                                format!(
                                    "`{}` could not fetch its argument #{}: {e}",
                                    task.function,
                                    i + 1
                                ),
                                e,
                            ))
                        }
                    }
                }
            }
        }
        let mut worker = match self.workers.checkout(task.job_id, &exe).await {
            Ok(w) => w,
            Err(e) => return system(e),
        };
        let run = Message::RunTask {
            task_id: task.task_id,
            function: task.function.clone(),
            signature_hash: task.signature_hash,
            args,
        };
        let answer = worker.request(&run).await;
        drop(run);
        let result = match answer {
            Ok(Message::TaskResult { task_id, result }) if task_id == task.task_id => {
                self.workers.checkin(worker);
                result
            }
            Ok(other) => {
                let pid = worker.pid();
                self.workers.discard(worker);
                return system(Error::new(
                    ErrorKind::System,
                    format!(
                        "worker process {pid} answered RunTask of `{}` with a {} message",
                        task.function,
                        other.name()
                    ),
                ));
            }
            Err(e) => {
                let pid = worker.pid();
                self.workers.discard(worker);
                return TaskOutcome::Failed {
                    error: Error::with_source(
                        ErrorKind::System,
                        format!(
                            "worker process died while running `{}` (pid {pid}): {e}",
                            task.function
                        ),
                        e,
                    ),
                    retryable: true,
                };
            }
        };
        match result {
            Ok(outputs) if outputs.len() == task.outputs.len() => {
                let stored = task
                    .outputs
                    .iter()
                    .zip(outputs)
                    .map(|(id, bytes)| {
                        let size = bytes.len() as u64;
                        let inline = (bytes.len() < INLINE_MAX).then(|| bytes.clone());
                        self.store.put(*id, bytes);
                        StoredObject {
                            id: *id,
                            size,
                            inline,
                        }
                    })
                    .collect();
                TaskOutcome::Stored(stored)
            }
            Ok(outputs) => TaskOutcome::Failed {
                error: Error::new(
                    ErrorKind::VersionSkew,
                    format!(
                        "`{}` returned {} values where the caller expects {}",
                        task.function,
                        outputs.len(),
                        task.outputs.len()
                    ),
                ),
                retryable: false,
            },
            Err(error) => TaskOutcome::Failed {
                error,
                retryable: false,
            },
        }
    }

    /// The path of the executable `hash` in this node's cache, fetched from the head first
    /// when missing.
    pub async fn ensure_exe(&self, hash: &str) -> Result<PathBuf> {
        let path = self.exe_dir.join(hash);
        if path.is_file() {
            return Ok(path);
        }
        let _one_at_a_time = self.exe_fetch.lock().await;
        if path.is_file() {
            return Ok(path);
        }
        if hash.len() != 64 || !hash.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(Error::new(
                ErrorKind::Protocol,
                format!("`{hash}` is not an executable's hash"),
            ));
        }
        if let Some(source) = self.head_exes.as_ref().map(|d| d.join(hash)) {
            if source.is_file() {
                super::head::private_dir(&self.exe_dir)?;
                let linked = std::fs::hard_link(&source, &path)
                    .or_else(|_| std::fs::copy(&source, &path).map(|_| ()));
                if linked.is_ok() && path.is_file() {
                    return Ok(path);
                }
            }
        }
        tracing::info!(exe = %hash, head = %self.head_address, "fetching an executable");
        let (mut conn, _) =
            Connection::connect(&self.head_address, &self.token, Role::Node).await?;
        conn.send(&Message::FetchExe {
            exe_hash: hash.to_owned(),
        })
        .await?;
        let mut writer = ExeWriter::new(&self.exe_dir, hash);
        let mut offset = 0u64;
        loop {
            match conn.recv_timeout(FETCH_TIMEOUT).await? {
                Message::ExeChunk { bytes, last } => {
                    // Hashing and writing stay off the runtime's threads: heartbeats go on.
                    let done = tokio::task::block_in_place(|| writer.chunk(offset, &bytes, last))?;
                    offset += bytes.len() as u64;
                    if let Some(p) = done {
                        tracing::info!(exe = %p.display(), bytes = offset, "executable cached");
                        return Ok(p);
                    }
                }
                Message::Failed { error } => return Err(error),
                other => {
                    return Err(Error::new(
                        ErrorKind::Protocol,
                        format!("the head answered FetchExe with a {} message", other.name()),
                    ))
                }
            }
        }
    }

    /// The encoded value of `id`: from this node's store, else from the node at `location`.
    pub async fn fetch_object(&self, id: ObjectId, location: Option<&str>) -> Result<Arc<Vec<u8>>> {
        if let Some(bytes) = self.store.get(id) {
            return Ok(bytes);
        }
        let Some(location) = location else {
            return Err(Error::new(
                ErrorKind::ObjectLost,
                format!("object {id} is not on this node and its location is unknown"),
            ));
        };
        let peer = {
            let mut peers = self.peers.lock();
            peers.entry(location.to_owned()).or_default().clone()
        };
        let mut conn = peer.lock().await;
        // A cached connection may have broken since: one more try on a fresh one.
        for attempt in 0..2 {
            if conn.is_none() {
                let (c, _) = Connection::connect(location, &self.token, Role::Node).await?;
                *conn = Some(c);
            }
            let Some(c) = conn.as_mut() else { continue };
            match c.fetch_object(id, FETCH_TIMEOUT).await {
                Ok(bytes) => return Ok(Arc::new(bytes)),
                Err(e) if e.kind() == ErrorKind::ObjectLost => return Err(e),
                Err(e) => {
                    *conn = None;
                    if attempt == 1 || e.kind() != ErrorKind::Network {
                        return Err(e);
                    }
                }
            }
        }
        Err(Error::new(
            ErrorKind::Network,
            format!("cannot fetch object {id} from {location}"),
        ))
    }

    /// Kills the node's worker processes.
    pub fn shutdown(&self) {
        self.workers.kill_all();
    }

    /// This node's executable cache.
    pub fn exe_dir(&self) -> &Path {
        &self.exe_dir
    }
}
