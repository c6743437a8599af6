//! Integration tests of raykit live in `tests/`; this library holds the helpers they share.
//!
//! Every test binary is one process with one process-wide runtime, so the helpers here are
//! process-wide too: named gates, rendezvous points and gauges that tasks (plain functions that
//! cannot borrow from the test) reach by name, a timeout wrapper so no test hangs on a bug, and
//! probes of memory use and value lifetimes. On a cluster (see [`backend`]) the named ones
//! live in files that the driver and every worker share, so a task in a worker process opens
//! the gate the test waits on, or counts itself in the test's gauge.

pub mod backend;
pub mod cluster;
pub mod netns;

pub use backend::{known_difference, on_cluster, Shape};

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Condvar, Mutex, MutexGuard, OnceLock};
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

/// Runs `f` on its own thread and returns its result; panics if it has not finished after
/// `secs` seconds (a hang is a failure, not a stuck test run). A panic in `f` is re-raised here,
/// with its original message.
pub fn within<T, F>(secs: u64, f: F) -> T
where
    T: Send + 'static,
    F: FnOnce() -> T + Send + 'static,
{
    let (tx, rx) = std::sync::mpsc::channel();
    let handle = std::thread::Builder::new()
        .name("test-body".into())
        .spawn(move || {
            let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(f));
            let _ = tx.send(result);
        })
        .expect("cannot start the test thread");
    match rx.recv_timeout(Duration::from_secs(secs)) {
        Ok(Ok(value)) => {
            let _ = handle.join();
            value
        }
        Ok(Err(panic)) => {
            let _ = handle.join();
            std::panic::resume_unwind(panic)
        }
        Err(_) => panic!("the test did not finish within {secs} s (hang or deadlock)"),
    }
}

/// Polls `cond` until it holds, failing with `what` after `secs` seconds. For facts that become
/// true a little after the event the test waits for (a worker thread dropping its last handle,
/// resources given back after a task's result is visible): the poll interval never decides the
/// outcome, only the generous deadline does.
pub fn eventually(secs: u64, what: &str, mut cond: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(secs);
    while !cond() {
        assert!(
            Instant::now() < deadline,
            "timed out after {secs} s waiting until {what}"
        );
        std::thread::sleep(Duration::from_millis(1));
    }
}

/// A process-wide lock for tests that need the whole runtime to themselves (they count
/// concurrently running tasks, read free resources or measure memory), so tests of the same
/// file running in parallel do not disturb them. Survives a panicking holder.
pub fn serial() -> MutexGuard<'static, ()> {
    static LOCK: Mutex<()> = Mutex::new(());
    LOCK.lock().unwrap_or_else(|e| e.into_inner())
}

/// A fresh number, different on every call in this process (on a cluster: in any process of
/// the cluster run).
pub fn unique_id() -> u64 {
    static NEXT: AtomicU64 = AtomicU64::new(1);
    let n = NEXT.fetch_add(1, Ordering::Relaxed);
    // On a cluster ids made in different processes (the test, its workers) must differ too.
    if on_cluster() {
        (u64::from(std::process::id()) << 32) | n
    } else {
        n
    }
}

/// Finds (or creates) the process-wide value of kind `kind` registered under `name`.
fn named<T: Default + Send + Sync + 'static>(
    table: &'static OnceLock<Mutex<HashMap<String, &'static T>>>,
    kind: &str,
    name: &str,
    shared: impl FnOnce(&mut T, Option<shared::Cells>),
) -> &'static T {
    let mut map = table
        .get_or_init(Default::default)
        .lock()
        .unwrap_or_else(|e| e.into_inner());
    map.entry(name.to_owned()).or_insert_with(|| {
        let mut value = T::default();
        shared(&mut value, shared::Cells::named(kind, name));
        Box::leak(Box::new(value))
    })
}

/// State shared by the processes of a cluster run: a few counters in a file of the scratch
/// directory, changed under an exclusive file lock and replaced by a rename, so a reader
/// without the lock sees the old or the new contents, never a torn write.
mod shared {
    use std::fs;
    use std::hash::{Hash, Hasher};
    use std::os::fd::AsRawFd;
    use std::path::PathBuf;

    /// How many counters a file holds.
    pub(crate) const N: usize = 4;

    /// One named file of counters.
    #[derive(Debug)]
    pub(crate) struct Cells {
        path: PathBuf,
    }

    impl Cells {
        /// The counters of `kind` `name`, on a cluster; `None` embedded.
        pub(crate) fn named(kind: &str, name: &str) -> Option<Cells> {
            let dir = crate::backend::scratch()?;
            let mut h = std::collections::hash_map::DefaultHasher::new();
            name.hash(&mut h);
            let readable: String = name
                .chars()
                .map(|c| if c.is_ascii_alphanumeric() { c } else { '_' })
                .take(60)
                .collect();
            Some(Cells {
                path: dir.join(format!("{kind}-{readable}-{:016x}", h.finish())),
            })
        }

        /// The counters now (zeros before the first update).
        pub(crate) fn read(&self) -> [u64; N] {
            let mut out = [0; N];
            if let Ok(bytes) = fs::read(&self.path) {
                for (slot, chunk) in out.iter_mut().zip(bytes.chunks_exact(8)) {
                    *slot = u64::from_le_bytes(chunk.try_into().expect("8 bytes"));
                }
            }
            out
        }

        /// Changes the counters with `f`, no other process changing them meanwhile.
        pub(crate) fn update<R>(&self, f: impl FnOnce(&mut [u64; N]) -> R) -> R {
            let lock_path = self.path.with_extension("lock");
            let lock = fs::OpenOptions::new()
                .create(true)
                .truncate(false)
                .write(true)
                .open(&lock_path)
                .expect("open a scratch lock file");
            // SAFETY: flock on a descriptor this function owns; the lock goes with the file
            // (dropped below, or with the process if it dies holding it).
            let locked = unsafe { libc::flock(lock.as_raw_fd(), libc::LOCK_EX) };
            assert_eq!(locked, 0, "lock a scratch file");
            let mut cells = self.read();
            let out = f(&mut cells);
            let bytes: Vec<u8> = cells.iter().flat_map(|c| c.to_le_bytes()).collect();
            let tmp = self
                .path
                .with_extension(format!("tmp{}", std::process::id()));
            fs::write(&tmp, bytes).expect("write a scratch file");
            fs::rename(&tmp, &self.path).expect("rename a scratch file");
            drop(lock);
            out
        }
    }
}

/// Polls `cond` every millisecond until it holds or `timeout` passes; returns whether it held.
fn poll_until(timeout: Duration, mut cond: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + timeout;
    loop {
        if cond() {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        std::thread::sleep(Duration::from_millis(1));
    }
}

/// How long a task waits at a [`Gate`] or [`Rendezvous`] before it gives up, so a bug shows as a
/// failed test instead of a task stuck forever.
pub const TASK_WAIT: Duration = Duration::from_secs(60);

/// A one-shot gate the test opens to let tasks waiting at it continue.
#[derive(Debug, Default)]
pub struct Gate {
    open: Mutex<bool>,
    cv: Condvar,
    shared: Option<shared::Cells>,
}

impl Gate {
    /// Opens the gate: every waiter (present and future) continues.
    pub fn open(&self) {
        if let Some(cells) = &self.shared {
            return cells.update(|c| c[0] = 1);
        }
        *self.open.lock().unwrap_or_else(|e| e.into_inner()) = true;
        self.cv.notify_all();
    }

    /// Whether the gate is open.
    pub fn is_open(&self) -> bool {
        if let Some(cells) = &self.shared {
            return cells.read()[0] == 1;
        }
        *self.open.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Blocks until the gate opens; panics after [`TASK_WAIT`].
    pub fn wait(&self) {
        if self.shared.is_some() {
            let open = poll_until(TASK_WAIT, || self.is_open());
            assert!(open, "gate not opened within {TASK_WAIT:?}");
            return;
        }
        let guard = self.open.lock().unwrap_or_else(|e| e.into_inner());
        let (guard, _) = self
            .cv
            .wait_timeout_while(guard, TASK_WAIT, |open| !*open)
            .unwrap_or_else(|e| e.into_inner());
        assert!(*guard, "gate not opened within {TASK_WAIT:?}");
    }
}

/// The process-wide [`Gate`] called `name` (created closed on first use).
pub fn gate(name: &str) -> &'static Gate {
    static TABLE: OnceLock<Mutex<HashMap<String, &'static Gate>>> = OnceLock::new();
    named(&TABLE, "gate", name, |g, cells| g.shared = cells)
}

/// A meeting point: `meet(n)` returns once `n` parties are there (or gives up).
#[derive(Debug, Default)]
pub struct Rendezvous {
    arrived: Mutex<usize>,
    cv: Condvar,
    shared: Option<shared::Cells>,
}

impl Rendezvous {
    /// Arrives and waits until `n` parties in total have arrived. Returns whether they did
    /// within `timeout`: tasks that should run at the same time prove it by all returning true.
    pub fn meet(&self, n: usize, timeout: Duration) -> bool {
        if let Some(cells) = &self.shared {
            cells.update(|c| c[0] += 1);
            return poll_until(timeout, || self.arrived() >= n);
        }
        let mut arrived = self.arrived.lock().unwrap_or_else(|e| e.into_inner());
        *arrived += 1;
        self.cv.notify_all();
        let (arrived, _) = self
            .cv
            .wait_timeout_while(arrived, timeout, |a| *a < n)
            .unwrap_or_else(|e| e.into_inner());
        *arrived >= n
    }

    /// How many parties have arrived so far.
    pub fn arrived(&self) -> usize {
        if let Some(cells) = &self.shared {
            return cells.read()[0] as usize;
        }
        *self.arrived.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// The process-wide [`Rendezvous`] called `name`.
pub fn rendezvous(name: &str) -> &'static Rendezvous {
    static TABLE: OnceLock<Mutex<HashMap<String, &'static Rendezvous>>> = OnceLock::new();
    named(&TABLE, "rendezvous", name, |r, cells| r.shared = cells)
}

/// Counts how many tasks run at once and remembers the most ever seen.
#[derive(Debug, Default)]
pub struct Gauge {
    running: AtomicUsize,
    max: AtomicUsize,
    done: AtomicUsize,
    shared: Option<shared::Cells>,
}

/// Where a shared gauge keeps its counts.
const RUNNING: usize = 0;
const MAX: usize = 1;
const DONE: usize = 2;

impl Gauge {
    /// Marks one task running for as long as the guard lives.
    pub fn enter(&self) -> GaugeGuard<'_> {
        if let Some(cells) = &self.shared {
            cells.update(|c| {
                c[RUNNING] += 1;
                c[MAX] = c[MAX].max(c[RUNNING]);
            });
            return GaugeGuard(self);
        }
        let now = self.running.fetch_add(1, Ordering::SeqCst) + 1;
        self.max.fetch_max(now, Ordering::SeqCst);
        GaugeGuard(self)
    }

    /// Holds the caller inside the gauge until more than `limit` tasks run at once (a
    /// violation, seen at once) or `hold` passes, so that tasks which could overlap do overlap.
    /// The pass/fail decision rests on [`Gauge::max`], never on the time this takes.
    pub fn linger(&self, limit: usize, hold: Duration) {
        let deadline = Instant::now() + hold;
        while Instant::now() < deadline && self.max() <= limit {
            std::thread::sleep(Duration::from_micros(200));
        }
    }

    /// The most tasks ever seen running at once.
    pub fn max(&self) -> usize {
        if let Some(cells) = &self.shared {
            return cells.read()[MAX] as usize;
        }
        self.max.load(Ordering::SeqCst)
    }

    /// How many tasks are in the gauge now.
    pub fn running(&self) -> usize {
        if let Some(cells) = &self.shared {
            return cells.read()[RUNNING] as usize;
        }
        self.running.load(Ordering::SeqCst)
    }

    /// How many tasks have left the gauge.
    pub fn done(&self) -> usize {
        if let Some(cells) = &self.shared {
            return cells.read()[DONE] as usize;
        }
        self.done.load(Ordering::SeqCst)
    }
}

/// Leaves the [`Gauge`] on drop.
#[derive(Debug)]
pub struct GaugeGuard<'a>(&'a Gauge);

impl Drop for GaugeGuard<'_> {
    fn drop(&mut self) {
        if let Some(cells) = &self.0.shared {
            return cells.update(|c| {
                c[RUNNING] -= 1;
                c[DONE] += 1;
            });
        }
        self.0.running.fetch_sub(1, Ordering::SeqCst);
        self.0.done.fetch_add(1, Ordering::SeqCst);
    }
}

/// The process-wide [`Gauge`] called `name`.
pub fn gauge(name: &str) -> &'static Gauge {
    static TABLE: OnceLock<Mutex<HashMap<String, &'static Gauge>>> = OnceLock::new();
    named(&TABLE, "gauge", name, |g, cells| g.shared = cells)
}

/// A count that tasks and the test add to, by name: in place of a `static` atomic, which on a
/// cluster each worker process would have its own of.
#[derive(Debug, Default)]
pub struct Counter {
    value: AtomicU64,
    shared: Option<shared::Cells>,
}

impl Counter {
    /// Adds `n`; returns the count after.
    pub fn add(&self, n: u64) -> u64 {
        if let Some(cells) = &self.shared {
            return cells.update(|c| {
                c[0] += n;
                c[0]
            });
        }
        self.value.fetch_add(n, Ordering::SeqCst) + n
    }

    /// The count now.
    pub fn get(&self) -> u64 {
        if let Some(cells) = &self.shared {
            return cells.read()[0];
        }
        self.value.load(Ordering::SeqCst)
    }
}

/// The process-wide (on a cluster: cluster-wide) [`Counter`] called `name`, from 0.
pub fn counter(name: &str) -> &'static Counter {
    static TABLE: OnceLock<Mutex<HashMap<String, &'static Counter>>> = OnceLock::new();
    named(&TABLE, "counter", name, |c, cells| c.shared = cells)
}

/// A value that records its drops and copies, by id, so a test can tell when the runtime freed
/// it. Copies (from `get`, or a serde round trip when the runtime copies an object for a reader)
/// share the id and are counted too: [`Tracked::live`] says how many are alive.
#[derive(Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(from = "TrackedRepr")]
pub struct Tracked {
    /// Which tracked value this is (see [`Tracked::drops`]).
    pub id: u64,
    /// Payload, so the value has some size.
    pub payload: Vec<u8>,
}

/// The serialized form of a [`Tracked`]; turning it back into one counts a copy.
#[derive(Deserialize)]
struct TrackedRepr {
    id: u64,
    payload: Vec<u8>,
}

impl From<TrackedRepr> for Tracked {
    fn from(r: TrackedRepr) -> Self {
        count(&COPIES, r.id);
        Tracked {
            id: r.id,
            payload: r.payload,
        }
    }
}

type Counts = OnceLock<Mutex<HashMap<u64, usize>>>;

static DROPS: Counts = OnceLock::new();
static COPIES: Counts = OnceLock::new();

fn table(counts: &'static Counts) -> MutexGuard<'static, HashMap<u64, usize>> {
    counts
        .get_or_init(Default::default)
        .lock()
        .unwrap_or_else(|e| e.into_inner())
}

/// Where a shared tracked id keeps its drops and copies.
fn tracked_cells(id: u64) -> Option<shared::Cells> {
    shared::Cells::named("tracked", &id.to_string())
}

fn count(counts: &'static Counts, id: u64) {
    if let Some(cells) = tracked_cells(id) {
        let slot = usize::from(std::ptr::eq(counts, &COPIES));
        return cells.update(|c| c[slot] += 1);
    }
    *table(counts).entry(id).or_insert(0) += 1;
}

fn counted(counts: &'static Counts, id: u64) -> usize {
    if let Some(cells) = tracked_cells(id) {
        return cells.read()[usize::from(std::ptr::eq(counts, &COPIES))] as usize;
    }
    table(counts).get(&id).copied().unwrap_or(0)
}

impl Tracked {
    /// A new tracked value with a fresh id.
    pub fn new() -> Self {
        Self::with_id(unique_id())
    }

    /// A new tracked value with the given id (take one from [`unique_id`]).
    pub fn with_id(id: u64) -> Self {
        Tracked {
            id,
            payload: vec![7; 1024],
        }
    }

    /// How many values with this id have been dropped so far.
    pub fn drops(id: u64) -> usize {
        counted(&DROPS, id)
    }

    /// How many copies of values with this id were made by deserialization so far.
    pub fn copies(id: u64) -> usize {
        counted(&COPIES, id)
    }

    /// How many values with this id are alive, for an id built once (by [`Tracked::new`],
    /// [`Tracked::with_id`] or a literal) and otherwise only copied by deserialization.
    pub fn live(id: u64) -> i64 {
        1 + Self::copies(id) as i64 - Self::drops(id) as i64
    }
}

impl Default for Tracked {
    fn default() -> Self {
        Self::new()
    }
}

impl Drop for Tracked {
    fn drop(&mut self) {
        count(&DROPS, self.id);
    }
}

/// A byte buffer that serializes as one byte string (serde's `Vec<u8>` goes byte by byte), so
/// copying a large one through serde costs a `memcpy`, not minutes of debug-build code.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Blob(pub Vec<u8>);

impl Serialize for Blob {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_bytes(&self.0)
    }
}

impl<'de> Deserialize<'de> for Blob {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> serde::de::Visitor<'de> for V {
            type Value = Blob;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("a byte string")
            }
            fn visit_bytes<E: serde::de::Error>(self, v: &[u8]) -> Result<Blob, E> {
                Ok(Blob(v.to_vec()))
            }
            fn visit_byte_buf<E: serde::de::Error>(self, v: Vec<u8>) -> Result<Blob, E> {
                Ok(Blob(v))
            }
        }
        d.deserialize_byte_buf(V)
    }
}

/// Resident memory of this process in bytes (`VmRSS` of `/proc/self/status`).
pub fn resident_bytes() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").expect("read /proc/self/status");
    let line = status
        .lines()
        .find(|l| l.starts_with("VmRSS:"))
        .expect("VmRSS in /proc/self/status");
    let kib: u64 = line
        .split_whitespace()
        .nth(1)
        .and_then(|n| n.parse().ok())
        .expect("VmRSS value");
    kib * 1024
}

/// The amount of `name` in a resource map, 0 when absent.
pub fn amount(resources: &std::collections::BTreeMap<String, f64>, name: &str) -> f64 {
    resources.get(name).copied().unwrap_or(0.0)
}

/// Waits until every resource the runtime declares is free again (tasks give theirs back just
/// after their result becomes visible).
pub fn await_all_resources_free() {
    let total = raykit::cluster_resources();
    eventually(30, "all resources are free again", || {
        raykit::available_resources() == total
    });
}
