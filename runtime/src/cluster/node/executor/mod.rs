//! A node running the tasks the head assigns it: the job's executable cached on this node,
//! the arguments fetched (from this node's store or from the node holding them), one worker
//! process per running task, the outputs stored here and reported to the head.
//!
//! Failures are reported, never hidden: a task's own error (a panic, a version skew) fails it,
//! and so does a worker that breaks the protocol (a malformed answer or piece; the worker is
//! discarded); a dead worker process or an argument that could not be fetched is the system's
//! failure, and the head may run the task again.
//!
//! A stored value is never copied to reach a worker: arguments go out as slices of the store's
//! buffers (large ones in pieces), and outputs come back into the buffers the store then keeps.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::fmt;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use parking_lot::Mutex;
use tokio::sync::mpsc;

use crate::cluster::head::ExeWriter;
use crate::cluster::node::arena::{Block, ARENA_MIN_VALUE};
use crate::cluster::node::exe::ExeCache;
use crate::cluster::node::store::{ObjectStore, Value};
use crate::cluster::node::workers::{Worker, WorkerEnv, WorkerPool};
use crate::cluster::peers::PeerPool;
use crate::cluster::proto::{
    ActorCounts, Connection, Fetched, JobId, Message, NodeLoad, Role, StoredObject, TaskAssignment,
    TaskCounts, TaskId, TaskOutcome, WireArg, INLINE_MAX,
};

mod actors;
use crate::error::{Error, ErrorKind, Result};
use crate::object::ObjectId;

/// How long one answer from the head or a peer node may take (a chunk of an executable, an
/// object of up to a gigabyte).
pub const FETCH_TIMEOUT: Duration = Duration::from_secs(120);

/// A report to the head, tagged with the node's incarnation when the work it reports began:
/// the node sends only reports of its current incarnation.
pub type Report = (u64, Message);

/// The first incarnation of a node.
pub const FIRST_INCARNATION: u64 = 1;

/// A node's task runner.
pub struct Executor {
    address: String,
    head_address: String,
    token: String,
    store: Arc<ObjectStore>,
    /// The node's executable cache.
    exes: ExeCache,
    /// The executable of each job that has run here and not ended: in use in `exes`.
    job_exes: Mutex<JobExes>,
    /// On the head's node: the head's store of executables, linked instead of downloaded.
    head_exes: Option<PathBuf>,
    declared: BTreeMap<String, f64>,
    workers: WorkerPool,
    to_head: mpsc::UnboundedSender<Report>,
    /// The node's incarnation: work started under an older one reports nothing that counts.
    incarnation: std::sync::atomic::AtomicU64,
    /// One download of executables at a time, so two tasks never fetch the same one twice.
    exe_fetch: tokio::sync::Mutex<()>,
    /// Connections to the nodes arguments are fetched from.
    peers: PeerPool,
    stats: Mutex<Stats>,
    /// The actors this node hosts, by id and start: where their calls go.
    actors: Mutex<HashMap<(crate::actor::ActorId, u32), actors::Host>>,
    /// Tasks the head sent ahead ([`Message::HoldTask`]), in the order it sent them.
    held: Mutex<VecDeque<TaskAssignment>>,
}

/// An encoded argument on its way to a worker: as it came with the task, or shared with the
/// store (never copied out of it: large values go to the worker in slices).
enum ArgBytes {
    Inline(Vec<u8>),
    Stored(Arc<Value>),
}

/// Arguments a worker reads from the node's arena: the [`Message::SharedValue`] that names
/// them, and what keeps the bytes unchanged until the worker answers (the stored value itself,
/// or a block the arguments were copied into).
pub(crate) struct SharedArgs {
    message: Message,
    _bytes: Arc<Value>,
}

impl AsRef<[u8]> for ArgBytes {
    fn as_ref(&self) -> &[u8] {
        match self {
            ArgBytes::Inline(bytes) => bytes,
            ArgBytes::Stored(bytes) => bytes,
        }
    }
}

/// The jobs whose executable this node holds in use, and those that ended here.
#[derive(Default)]
struct JobExes {
    live: HashMap<JobId, String>,
    ended: std::collections::HashSet<JobId>,
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
    /// caching executables in `exe_dir` (at most `exe_cap` bytes of those not in use) and
    /// reporting to the head through `to_head`.
    pub fn new(
        env: WorkerEnv,
        declared: BTreeMap<String, f64>,
        store: Arc<ObjectStore>,
        (exe_dir, exe_cap): (PathBuf, u64),
        to_head: mpsc::UnboundedSender<Report>,
    ) -> Executor {
        Executor {
            address: env.node_address.clone(),
            head_address: env.head_address.clone(),
            token: env.token.clone(),
            store,
            exes: ExeCache::new(exe_dir, exe_cap),
            job_exes: Mutex::new(JobExes::default()),
            head_exes: None,
            declared,
            to_head,
            incarnation: std::sync::atomic::AtomicU64::new(FIRST_INCARNATION),
            exe_fetch: tokio::sync::Mutex::new(()),
            peers: PeerPool::new(Role::Node, env.token.clone(), Some(env.node_id)),
            workers: WorkerPool::new(env),
            stats: Mutex::new(Stats::default()),
            actors: Mutex::new(HashMap::new()),
            held: Mutex::new(VecDeque::new()),
        }
    }

    /// On the head's node: take executables from the head's store in `dir` (same host, same
    /// files) instead of downloading them.
    pub fn with_head_exes(mut self, dir: PathBuf) -> Executor {
        self.head_exes = Some(dir);
        self
    }

    /// The node's current incarnation.
    pub fn incarnation(&self) -> u64 {
        self.incarnation.load(std::sync::atomic::Ordering::Acquire)
    }

    /// Sends `msg` to the head as a report of `incarnation`.
    fn report(&self, incarnation: u64, msg: Message) {
        let _ = self.to_head.send((incarnation, msg));
    }

    /// Whether work begun under `incarnation` ended after the node reset; its outputs, stored
    /// after the reset emptied the store, are dropped (nobody will ever ask for them).
    pub(crate) fn forget_stale(&self, incarnation: u64, outcome: &TaskOutcome) -> bool {
        if self.incarnation() == incarnation {
            return false;
        }
        if let TaskOutcome::Stored(objects) = outcome {
            for o in objects {
                self.store.remove(o.id);
            }
        }
        tracing::debug!(
            incarnation,
            "work of an old incarnation ended; its outputs dropped"
        );
        true
    }

    /// The head no longer counts this node as a member: everything it runs and holds belongs
    /// to a dead incarnation (the head has retried or failed those tasks, restarted or buried
    /// those actors and counted those objects lost). Kills the worker processes (tasks and
    /// actors with them), drops held tasks and stored objects, and makes `incarnation` the
    /// current one: what the old work still reports is never sent.
    pub fn reset(&self, incarnation: u64) {
        self.incarnation
            .store(incarnation, std::sync::atomic::Ordering::Release);
        let held = std::mem::take(&mut *self.held.lock()).len();
        let hosts: Vec<actors::Host> = self.actors.lock().drain().map(|(_, h)| h).collect();
        for host in &hosts {
            let _ = host.send(actors::Command::Stop { kill: true });
        }
        let killed = self.workers.kill_running();
        let objects = self.store.clear();
        tracing::warn!(
            incarnation,
            killed,
            held,
            actors = hosts.len(),
            objects,
            "node reset: its work belonged to a dead incarnation"
        );
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
            actors: ActorCounts {
                alive: self.actors.lock().len() as u64,
                ..ActorCounts::default()
            },
            objects,
            object_bytes,
        }
    }

    /// Forgets objects the head freed.
    pub fn delete_objects(&self, ids: &[ObjectId]) {
        let removed = ids.iter().filter(|id| self.store.remove(**id)).count();
        tracing::debug!(asked = ids.len(), removed, "objects deleted");
    }

    /// The job ended: its held tasks are dropped and its worker processes killed (what they
    /// run ends with them; the head has failed those tasks already), and none of its workers
    /// start any more.
    pub fn cancel_job(&self, job: JobId) {
        let dropped = {
            let mut held = self.held.lock();
            let before = held.len();
            held.retain(|a| a.task.job_id != job);
            before - held.len()
        };
        let killed = self.workers.end_job(job);
        self.workers.output().job_ended(job);
        tracing::info!(%job, killed, dropped, "job cancelled on this node");
        // Its workers are gone: its executable is no longer in use here.
        let exe = {
            let mut jobs = self.job_exes.lock();
            jobs.ended.insert(job);
            jobs.live.remove(&job)
        };
        if let Some(hash) = exe {
            self.exes.release(&hash);
        }
    }

    /// Keeps a task the head sent ahead, to start in place of the next task of the same
    /// resources that ends here, or when the head says [`Executor::start_held`].
    pub fn hold(&self, assignment: TaskAssignment) {
        tracing::debug!(task = %assignment.task.task_id, "task held");
        self.held.lock().push_back(assignment);
    }

    /// Starts the held task `task_id` now; one already started in place of another is not
    /// started again.
    pub fn start_held(self: &Arc<Self>, task_id: TaskId) {
        let assignment = {
            let mut held = self.held.lock();
            let at = held.iter().position(|a| a.task.task_id == task_id);
            at.and_then(|at| held.remove(at))
        };
        match assignment {
            Some(assignment) => self.execute(assignment),
            None => tracing::debug!(task = %task_id, "a held task already started"),
        }
    }

    /// The first held task that needs exactly `resources`: what a task that needed them
    /// leaves free.
    fn take_held(&self, resources: &BTreeMap<String, f64>) -> Option<TaskAssignment> {
        let mut held = self.held.lock();
        let at = held.iter().position(|a| a.task.resources == *resources)?;
        held.remove(at)
    }

    /// Runs an assigned task in the background and reports its end to the head; then, in the
    /// same background task, the held tasks that take its place.
    pub fn execute(self: &Arc<Self>, assignment: TaskAssignment) {
        let this = self.clone();
        let incarnation = self.incarnation();
        tokio::spawn(async move {
            let mut next = Some(assignment);
            while let Some(assignment) = next.take() {
                if this.incarnation() != incarnation {
                    tracing::debug!(task = %assignment.task.task_id, "a task of an old incarnation not started");
                    return;
                }
                let (task_id, resources, outcome) = this.execute_one(assignment).await;
                if this.forget_stale(incarnation, &outcome) {
                    return;
                }
                // The worker and the CPU go to the next task at once; the head learns it with
                // this report and sends another task to hold.
                next = this.take_held(&resources);
                this.report(
                    incarnation,
                    Message::TaskFinished {
                        task_id,
                        outcome,
                        next: next.as_ref().map(|a| a.task.task_id),
                    },
                );
            }
        });
    }

    /// Runs one task, counted in the node's load meanwhile: its id, resources and outcome.
    async fn execute_one(
        &self,
        mut assignment: TaskAssignment,
    ) -> (TaskId, BTreeMap<String, f64>, TaskOutcome) {
        let task_id = assignment.task.task_id;
        let function = assignment.task.function.clone();
        // Running the task needs only its name, arguments and outputs.
        let resources = std::mem::take(&mut assignment.task.resources);
        let count = |stats: &mut Stats, sign: f64| {
            for (r, a) in &resources {
                match stats.in_use.get_mut(r) {
                    Some(used) => *used += sign * a,
                    None => {
                        stats.in_use.insert(r.clone(), sign * a);
                    }
                }
            }
        };
        {
            let mut stats = self.stats.lock();
            stats.counts.running += 1;
            count(&mut stats, 1.0);
        }
        tracing::debug!(task = %task_id, %function, attempt = assignment.attempt, "task started");
        let outcome = self.run(assignment).await;
        {
            let mut stats = self.stats.lock();
            stats.counts.running = stats.counts.running.saturating_sub(1);
            count(&mut stats, -1.0);
            match &outcome {
                TaskOutcome::Stored(_) => stats.counts.finished += 1,
                TaskOutcome::Failed { .. } => stats.counts.failed += 1,
            }
        }
        if let TaskOutcome::Failed { error, retryable } = &outcome {
            tracing::info!(task = %task_id, %function, retryable, "task failed: {error}");
        }
        (task_id, resources, outcome)
    }

    async fn run(&self, a: TaskAssignment) -> TaskOutcome {
        let system = |error: Error| TaskOutcome::Failed {
            retryable: !matches!(error.kind(), ErrorKind::Config | ErrorKind::Protocol),
            error,
        };
        let exe = match self.ensure_exe(a.task.job_id, &a.exe_hash).await {
            Ok(p) => p,
            Err(e) => return system(e),
        };
        let TaskAssignment {
            mut task,
            arg_locations,
            ..
        } = a;
        let args = std::mem::take(&mut task.args);
        let args = match self.fetch_args(&task.function, args, &arg_locations).await {
            Ok(args) => args,
            Err(e) => return system(e),
        };
        let mut worker = match self.workers.checkout(task.job_id, &exe).await {
            Ok(w) => w,
            Err(e) => return system(e),
        };
        worker.label(&task.function);
        let run = Message::RunTask {
            task_id: task.task_id,
            function: task.function.clone(),
            signature_hash: task.signature_hash,
            args: Vec::new(),
        };
        let answer = self.request(&mut worker, task.task_id, &run, args).await;
        drop(run);
        let (answer, shared) = match answer {
            Ok((answer, shared)) => (Ok(answer), shared),
            Err(e) => (Err(e), Vec::new()),
        };
        let result = match answer {
            Ok(Message::TaskResult { task_id, result }) if task_id == task.task_id => {
                self.workers.checkin(worker);
                result
            }
            // The worker could not read what it was sent (see `worker::serve`).
            Ok(Message::Failed { error }) => {
                let pid = worker.pid();
                self.workers.discard(worker);
                return TaskOutcome::Failed {
                    error: Error::with_source(
                        error.kind(),
                        format!(
                            "worker process {pid} could not take `{}`: {error}",
                            task.function
                        ),
                        error,
                    ),
                    retryable: false,
                };
            }
            Ok(other) => {
                let pid = worker.pid();
                self.workers.discard(worker);
                return system(Error::new(
                    ErrorKind::Protocol,
                    format!(
                        "worker process {pid} answered RunTask of `{}` with a {} message",
                        task.function,
                        other.name()
                    ),
                ));
            }
            // A malformed answer or piece: the task's values cannot be trusted, and running it
            // again would likely break the same way.
            Err(e) if e.kind() != ErrorKind::Network => {
                let pid = worker.pid();
                self.workers.discard(worker);
                return TaskOutcome::Failed {
                    error: Error::with_source(
                        e.kind(),
                        format!(
                            "worker process {pid} broke the protocol while running `{}`: {e}",
                            task.function
                        ),
                        e,
                    ),
                    retryable: false,
                };
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
        self.store_outputs(&task.function, &task.outputs, result, shared)
    }

    /// The arguments `args` of `task_id` as a worker that `shares` this node's arena reads
    /// them: from the arena when they are large. A single argument already there is not copied
    /// (a value fetched from another node, or made on this one, in the arena); others are
    /// copied once into a fresh block. `None`: they go over the connection.
    fn share_args(&self, shares: bool, task_id: TaskId, args: &[ArgBytes]) -> Option<SharedArgs> {
        if !shares {
            return None;
        }
        let arena = self.store.arena()?;
        let len: usize = args.iter().map(|a| a.as_ref().len()).sum();
        if len < ARENA_MIN_VALUE {
            return None;
        }
        let bytes = match args {
            [ArgBytes::Stored(value)] if matches!(**value, Value::Shared(_)) => value.clone(),
            _ => {
                let mut block = arena.alloc(len as u64)?;
                let mut rest = block.bytes_mut();
                for arg in args {
                    let (head, tail) = rest.split_at_mut(arg.as_ref().len());
                    head.copy_from_slice(arg.as_ref());
                    rest = tail;
                }
                Arc::new(Value::Shared(block))
            }
        };
        let Value::Shared(block) = &*bytes else {
            return None;
        };
        Some(SharedArgs {
            message: Message::SharedValue {
                task_id,
                index: 0,
                offset: block.offset(),
                len: len as u64,
            },
            _bytes: bytes,
        })
    }

    /// Sends `shell` with `args` to `worker` (from the arena when it can read them there) and
    /// waits for the answer, with the arena blocks the worker wrote large outputs into.
    async fn request(
        &self,
        worker: &mut Worker,
        task_id: TaskId,
        shell: &Message,
        args: Vec<ArgBytes>,
    ) -> Result<(Message, Vec<(u32, Block)>)> {
        let arena = self.store.arena();
        match self.share_args(worker.shares_memory(), task_id, &args) {
            Some(shared) => {
                drop(args);
                let answer = worker.request_shared(&shared.message, shell, arena).await;
                drop(shared);
                answer
            }
            None => worker.request_with_values(shell, args, arena).await,
        }
    }

    /// The encoded arguments of `function`: values as they came, refs fetched from this
    /// node's store or from the node at their location, shared with the store (not copied).
    async fn fetch_args(
        &self,
        function: &str,
        args: Vec<WireArg>,
        locations: &[Option<String>],
    ) -> Result<Vec<ArgBytes>> {
        let mut out = Vec::with_capacity(args.len());
        for (i, arg) in args.into_iter().enumerate() {
            match arg {
                WireArg::Value(bytes) => out.push(ArgBytes::Inline(bytes)),
                WireArg::Ref(id) => {
                    let at = locations.get(i).cloned().flatten();
                    match self.fetch_object(id, at.as_deref()).await {
                        Ok(bytes) => out.push(ArgBytes::Stored(bytes)),
                        Err(e) => {
                            return Err(Error::with_source(
                                e.kind(),
                                format!(
                                    "`{function}` could not fetch its argument #{}: {e}",
                                    i + 1
                                ),
                                e,
                            ))
                        }
                    }
                }
            }
        }
        Ok(out)
    }

    /// Stores a call's encoded outputs as the objects `ids` (each buffer moves into the store as
    /// it is, and the outputs the worker wrote into the arena, `shared` by slot, stay there),
    /// or reports its error.
    fn store_outputs(
        &self,
        function: &str,
        ids: &[ObjectId],
        result: Result<Vec<Vec<u8>>>,
        mut shared: Vec<(u32, Block)>,
    ) -> TaskOutcome {
        match result {
            Ok(outputs) if outputs.len() == ids.len() => {
                let stored = ids
                    .iter()
                    .zip(outputs)
                    .enumerate()
                    .map(|(index, (id, bytes))| {
                        let block = shared
                            .iter()
                            .position(|(i, _)| *i as usize == index)
                            .map(|at| shared.swap_remove(at).1);
                        if let Some(block) = block {
                            let size = block.len();
                            self.store.put_block(*id, block);
                            return StoredObject {
                                id: *id,
                                size,
                                inline: None,
                            };
                        }
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
                        "`{function}` returned {} values where the caller expects {}",
                        outputs.len(),
                        ids.len()
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

    /// Marks `hash` in use by `job` until the job ends here ([`Executor::cancel_job`]):
    /// the cache never evicts it meanwhile. Fails for a job that ended.
    fn use_exe(&self, job: JobId, hash: &str) -> Result<()> {
        let mut jobs = self.job_exes.lock();
        if jobs.ended.contains(&job) {
            return Err(Error::new(
                ErrorKind::Cancelled,
                format!("cancelled: {job} ended"),
            ));
        }
        match jobs.live.get(&job) {
            Some(h) if h == hash => {}
            Some(h) => {
                return Err(Error::new(
                    ErrorKind::Protocol,
                    format!("{job} runs the executable {h}, not {hash}"),
                ))
            }
            None => {
                jobs.live.insert(job, hash.to_owned());
                self.exes.acquire(hash);
            }
        }
        Ok(())
    }

    /// The path of the executable `hash` of `job` in this node's cache, fetched from the head
    /// first when missing. It stays cached (in use) until the job ends here.
    pub async fn ensure_exe(&self, job: JobId, hash: &str) -> Result<PathBuf> {
        if hash.len() != 64 || !hash.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(Error::new(
                ErrorKind::Protocol,
                format!("`{hash}` is not an executable's hash"),
            ));
        }
        self.use_exe(job, hash)?;
        let path = self.exes.path(hash);
        // Every task asks: answer from memory once the file is counted.
        self.exes.touch(hash);
        if self.exes.has(hash) {
            return Ok(path);
        }
        let _one_at_a_time = self.exe_fetch.lock().await;
        if self.exes.has(hash) {
            return Ok(path);
        }
        if let Some(source) = self.head_exes.as_ref().map(|d| d.join(hash)) {
            if source.is_file() {
                crate::cluster::head::private_dir(self.exes.dir())?;
                let linked = std::fs::hard_link(&source, &path)
                    .or_else(|_| std::fs::copy(&source, &path).map(|_| ()));
                if linked.is_ok() && path.is_file() {
                    self.exes.insert(hash)?;
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
        let mut writer = ExeWriter::new(self.exes.dir(), hash);
        let mut offset = 0u64;
        loop {
            match conn.recv_timeout(FETCH_TIMEOUT).await? {
                Message::ExeChunk { bytes, last } => {
                    // Hashing and writing stay off the runtime's threads: heartbeats go on.
                    let done = tokio::task::block_in_place(|| writer.chunk(offset, &bytes, last))?;
                    offset += bytes.len() as u64;
                    if let Some(p) = done {
                        tracing::info!(exe = %p.display(), bytes = offset, "executable cached");
                        self.exes.insert(hash)?;
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
    pub async fn fetch_object(&self, id: ObjectId, location: Option<&str>) -> Result<Arc<Value>> {
        if let Some(bytes) = self.store.get(id) {
            return Ok(bytes);
        }
        let Some(location) = location else {
            return Err(Error::new(
                ErrorKind::ObjectLost,
                format!("object {id} is not on this node and its location is unknown"),
            ));
        };
        // A large value goes straight into a block of this node's arena: memory already
        // mapped once freed blocks are reused, and a worker can read it there.
        let arena = self.store.arena();
        let place = |total: u64| {
            if total < ARENA_MIN_VALUE as u64 {
                return None;
            }
            arena.and_then(|a| a.alloc(total))
        };
        match self.peers.fetch_into(id, location, place).await {
            Ok(Fetched::Bytes(bytes)) => Ok(Arc::new(Value::Heap(bytes))),
            Ok(Fetched::Placed(block)) => Ok(Arc::new(Value::Shared(block))),
            Err(e) => {
                if e.kind() == ErrorKind::Network {
                    // The head hears it before this task's end: it rebuilds the object
                    // elsewhere when it can, and the retried task reads it from there.
                    self.report(
                        self.incarnation(),
                        Message::ObjectUnreachable {
                            id,
                            location: location.to_owned(),
                        },
                    );
                }
                Err(e)
            }
        }
    }

    /// Kills the node's worker processes.
    pub fn shutdown(&self) {
        self.workers.kill_all();
    }

    /// This node's executable cache.
    pub fn exe_cache(&self) -> &ExeCache {
        &self.exes
    }
}
