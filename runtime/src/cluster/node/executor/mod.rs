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
//!
//! The parts: `tasks` (tasks held and started, one task's run), `values` (arguments fetched and
//! handed to workers, outputs stored), `exes` (each job's executable in the node's cache) and
//! `actors` (actor hosts).

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::fmt;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use parking_lot::Mutex;
use tokio::sync::mpsc;

use crate::cluster::node::exe::ExeCache;
use crate::cluster::node::store::ObjectStore;
use crate::cluster::node::workers::{WorkerEnv, WorkerPool};
use crate::cluster::peers::PeerPool;
use crate::cluster::proto::{
    ActorCounts, JobId, Message, NodeLoad, Role, TaskAssignment, TaskCounts, TaskOutcome,
};
use crate::object::ObjectId;

mod actors;
mod exes;
mod tasks;
mod values;

use exes::JobExes;
pub(crate) use values::SharedArgs;

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

    /// Kills the node's worker processes.
    pub fn shutdown(&self) {
        self.workers.kill_all();
    }

    /// This node's executable cache.
    pub fn exe_cache(&self) -> &ExeCache {
        &self.exes
    }
}
