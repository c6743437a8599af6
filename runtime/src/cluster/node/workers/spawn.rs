//! Starting a node's worker processes: the command a worker starts with (its environment,
//! the malloc tunables it gets), and the thread that spawns it.
//!
//! Processes are started from one long-lived thread with `PR_SET_PDEATHSIG`: the kernel kills a
//! worker when the thread that forked it ends, so a daemon that is killed leaves no orphans.

use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use tokio::sync::oneshot;

use super::{job_ended, Worker, WorkerPool, NODE_ID_ENV, WORKER_START_TIMEOUT};
use crate::cluster::proto::JobId;
use crate::error::{Error, ErrorKind, Result};

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
///   after its peak, until it exits (idle workers stop after
///   [`WORKER_IDLE_TIMEOUT`](super::WORKER_IDLE_TIMEOUT)).
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

/// How often a spawn that met a busy executable is tried again, and the first pause.
const BUSY_RETRIES: u32 = 12;
const BUSY_PAUSE: std::time::Duration = std::time::Duration::from_millis(5);

/// Spawns `cmd`, trying again (with growing pauses, about 15 s in all) while the executable is
/// busy (`ETXTBSY`). An executable cached just now can be: a child this process forked
/// meanwhile (to start any worker) holds the descriptor that wrote it until its own exec,
/// and exec of a file open for writing fails. Two jobs of one binary starting at once meet it.
fn spawn_retrying_busy(cmd: &mut Command) -> std::io::Result<Child> {
    let mut pause = BUSY_PAUSE;
    for _ in 0..BUSY_RETRIES {
        match cmd.spawn() {
            Err(e) if e.raw_os_error() == Some(libc::ETXTBSY) => {
                tracing::debug!("executable busy, starting the worker again in {pause:?}");
                std::thread::sleep(pause);
                pause = (pause * 2).min(std::time::Duration::from_secs(5));
            }
            done => return done,
        }
    }
    cmd.spawn()
}

/// A worker's command for the spawner thread, and where the child it spawned goes.
pub(super) type SpawnRequest = (Command, std::sync::mpsc::Sender<std::io::Result<Child>>);

impl WorkerPool {
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
                    let _ = reply.send(spawn_retrying_busy(&mut cmd));
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

    /// Starts a worker process of `job` from `exe` and waits for it to connect back.
    pub(super) async fn start(&self, job: JobId, exe: &Path) -> Result<Worker> {
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
