//! Worker output: what tasks and actors print in the worker processes of a node.
//!
//! A node starts each worker with its own stdout and stderr pipes ([`NodeOutput::capture`]).
//! The node reads them as they fill, appends what it reads, as it is, to the worker's log
//! files (`$RAYKIT_HOME/logs/<node-id>/worker-<pid>-job-<n>.out` and `.err`, each cut over to
//! a `.1` file when it reaches [`LOG_BYTES_ENV`], default [`DEFAULT_LOG_BYTES`]), and cuts it
//! into lines ([`OUTPUT_LINE_MAX`] at most; longer ones go in pieces) labelled with the
//! worker's pid and what it was running, which the node knows: it names each task's function
//! (and an actor's class) before it sends the work ([`Capture::label`]). Before the label
//! changes, the node reads what the pipes already hold, so a line goes with the task that
//! printed it. The lines wait in a bounded queue ([`OutputQueue`]) for the connection to
//! the head, which relays them to the job's driver (`cluster::head::relay`); the driver prints
//! them as `(name pid=N node=ID) line` (`cluster::output::printer`).
//!
//! Nothing here blocks a worker or grows without bound: the node reads the pipes whether the
//! driver keeps up or not, a full queue drops lines and counts them (the driver prints how
//! many), and a line is bounded while it is being assembled.

use std::collections::{HashMap, HashSet};
use std::fs;
use std::io::Write;
use std::os::fd::OwnedFd;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use parking_lot::Mutex;
use tokio::net::unix::pipe;

use crate::cluster::proto::{JobId, OutputLine, OUTPUT_LINE_MAX};
use crate::runtime::NodeId;

pub(crate) mod printer;
mod queue;

pub use queue::{OutputQueue, QUEUE_BYTES};

/// The environment variable capping each worker log file, in bytes (`0`: no log files).
pub const LOG_BYTES_ENV: &str = "RAYKIT_WORKER_LOG_BYTES";

/// A worker log file's size when [`LOG_BYTES_ENV`] is not set: past it, the file becomes
/// `<name>.1` (replacing an older one) and a new one starts.
pub const DEFAULT_LOG_BYTES: u64 = 64 << 20;

/// The environment variable that turns forwarding worker output to a driver off (`0`).
pub const LOG_TO_DRIVER_ENV: &str = "RAYKIT_LOG_TO_DRIVER";

/// The most a reader takes from one pipe (in buffers of [`OUTPUT_LINE_MAX`]) before it lets
/// other tasks run.
const READ_ROUNDS: usize = 16;

/// The most a catch-up takes from one pipe: a worker between tasks prints little, unless
/// threads it left behind go on printing.
const CATCH_UP_ROUNDS: usize = 64;

/// Whether a driver asks for its workers' output (`RAYKIT_LOG_TO_DRIVER` is not `0`).
pub fn log_to_driver() -> bool {
    std::env::var(LOG_TO_DRIVER_ENV).map_or(true, |v| {
        !matches!(
            v.trim().to_ascii_lowercase().as_str(),
            "0" | "false" | "no" | "off"
        )
    })
}

/// The cap of each worker log file ([`LOG_BYTES_ENV`]).
fn log_cap() -> u64 {
    std::env::var(LOG_BYTES_ENV)
        .ok()
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(DEFAULT_LOG_BYTES)
}

/// How a stable name (`module::path::item`, or `Type::method`) shows in an output line: its
/// last segment, as Ray shows a function's or an actor class's name.
pub fn short_name(stable: &str) -> &str {
    stable.rsplit("::").next().unwrap_or(stable)
}

/// Where the node `node_id` keeps its workers' log files: `$RAYKIT_HOME/logs/<node-id>`.
/// Unlike the node's own directory, it stays after the daemon exits.
pub fn node_logs_dir(home: &Path, node_id: NodeId) -> PathBuf {
    home.join("logs").join(node_id.to_string())
}

/// The log files of worker `pid` of `job` in `dir`: (stdout, stderr).
pub fn worker_log_paths(dir: &Path, pid: u32, job: JobId) -> (PathBuf, PathBuf) {
    let base = format!("worker-{pid}-{job}");
    (
        dir.join(format!("{base}.out")),
        dir.join(format!("{base}.err")),
    )
}

/// A node's side of worker output: the workers' pipes and log files, and the queue of lines
/// for the head.
#[derive(Debug)]
pub struct NodeOutput {
    node_id: NodeId,
    /// Where the log files go.
    dir: PathBuf,
    /// Each log file's cap (0: none are written).
    cap: u64,
    queue: OutputQueue,
    /// Jobs nobody takes the output of ([`Message::MuteOutput`]).
    muted: Mutex<HashSet<JobId>>,
    /// The workers whose pipes are open, by pid.
    captures: Mutex<HashMap<u32, Arc<Capture>>>,
}

impl NodeOutput {
    /// The output of node `node_id`'s workers, logged under `dir`.
    pub fn new(node_id: NodeId, dir: PathBuf) -> NodeOutput {
        NodeOutput {
            node_id,
            dir,
            cap: log_cap(),
            queue: OutputQueue::default(),
            muted: Mutex::default(),
            captures: Mutex::default(),
        }
    }

    /// Where the workers' log files go.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The lines waiting for the head.
    pub fn queue(&self) -> &OutputQueue {
        &self.queue
    }

    /// Starts reading the pipes of worker `pid` of `job` (in the background, on the caller's
    /// runtime). Output read before the first [`Capture::label`] has no name.
    pub fn capture(
        self: &Arc<Self>,
        pid: u32,
        job: JobId,
        stdout: Option<OwnedFd>,
        stderr: Option<OwnedFd>,
    ) -> Arc<Capture> {
        let (out_path, err_path) = worker_log_paths(&self.dir, pid, job);
        let files = match self.cap {
            0 => [None, None],
            _ => match private_dir(&self.dir) {
                Ok(()) => [
                    LogFile::open(out_path, self.cap),
                    LogFile::open(err_path, self.cap),
                ],
                Err(e) => {
                    tracing::warn!(dir = %self.dir.display(), "worker output goes to no file: {e}");
                    [None, None]
                }
            },
        };
        let [out_file, err_file] = files;
        let stream = |fd: Option<OwnedFd>, file, stderr| {
            let pipe = fd.and_then(|fd| {
                pipe::Receiver::from_owned_fd(fd)
                    .inspect_err(|e| tracing::warn!(pid, "cannot read a worker's output: {e}"))
                    .ok()
            });
            Stream {
                pipe,
                stderr,
                state: Mutex::new(StreamState {
                    file,
                    partial: Vec::new(),
                }),
            }
        };
        let capture = Arc::new(Capture {
            pid,
            job,
            node: self.clone(),
            label: Mutex::new(Arc::from("")),
            streams: [
                stream(stdout, out_file, false),
                stream(stderr, err_file, true),
            ],
            open: AtomicUsize::new(0),
        });
        let open = capture.streams.iter().filter(|s| s.pipe.is_some()).count();
        if open > 0 {
            capture.open.store(open, Ordering::Release);
            self.captures.lock().insert(pid, capture.clone());
        }
        for index in 0..2 {
            if capture.streams[index].pipe.is_some() {
                tokio::spawn(capture.clone().read(index));
            }
        }
        capture
    }

    /// Nobody takes the output of `job`: its lines stay in the log files only.
    pub fn mute(&self, job: JobId) {
        if self.muted.lock().insert(job) {
            tracing::debug!(%job, "the job's output goes to its log files only");
        }
    }

    /// The job ended here: forget what was kept for it.
    pub fn job_ended(&self, job: JobId) {
        self.muted.lock().remove(&job);
    }

    /// Reads what the pipes of `job`'s workers hold now, then queues the answer to the drain
    /// `seq` after those lines.
    pub fn drain(&self, job: JobId, seq: u64) {
        let captures: Vec<Arc<Capture>> = self
            .captures
            .lock()
            .values()
            .filter(|c| c.job == job)
            .cloned()
            .collect();
        for capture in captures {
            capture.catch_up();
        }
        self.queue.push_drained(job, seq);
    }

    /// Queues one line unless its job is muted.
    fn forward(&self, job: JobId, line: OutputLine) {
        if self.muted.lock().contains(&job) {
            return;
        }
        self.queue.push_line(job, self.node_id, line);
    }
}

/// The output of one worker process: its two pipes, its log files and its label.
#[derive(Debug)]
pub struct Capture {
    pid: u32,
    job: JobId,
    node: Arc<NodeOutput>,
    /// What the worker runs now, as lines show it.
    label: Mutex<Arc<str>>,
    streams: [Stream; 2],
    /// How many of its pipes are still read.
    open: AtomicUsize,
}

#[derive(Debug)]
struct Stream {
    pipe: Option<pipe::Receiver>,
    stderr: bool,
    state: Mutex<StreamState>,
}

#[derive(Debug)]
struct StreamState {
    file: Option<LogFile>,
    /// The start of a line whose end has not come yet (shorter than [`OUTPUT_LINE_MAX`]).
    partial: Vec<u8>,
}

impl Capture {
    /// The worker runs `name` (a function's or an actor class's stable name) from now on.
    /// What it printed before is read first and keeps the old name.
    pub fn label(&self, name: &str) {
        let name = short_name(name);
        if *self.label.lock().as_ref() == *name {
            return;
        }
        self.catch_up();
        *self.label.lock() = Arc::from(name);
    }

    /// Reads what both pipes hold now, a line without its end included.
    fn catch_up(&self) {
        for index in 0..2 {
            self.pump(index, CATCH_UP_ROUNDS, true);
            let stream = &self.streams[index];
            let mut state = stream.state.lock();
            let rest = std::mem::take(&mut state.partial);
            drop(state);
            if !rest.is_empty() {
                self.emit(stream.stderr, &rest);
            }
        }
    }

    /// Reads pipe `index` until it ends; what is left of its last line goes too.
    async fn read(self: Arc<Self>, index: usize) {
        let Some(pipe) = &self.streams[index].pipe else {
            return;
        };
        loop {
            if pipe.readable().await.is_err() {
                break;
            }
            match self.pump(index, READ_ROUNDS, false) {
                Pumped::Open => {}
                Pumped::More => tokio::task::yield_now().await,
                Pumped::Ended => break,
            }
        }
        let stream = &self.streams[index];
        let rest = std::mem::take(&mut stream.state.lock().partial);
        if !rest.is_empty() {
            self.emit(stream.stderr, &rest);
        }
        // The last reader to end forgets the worker.
        if self.open.fetch_sub(1, Ordering::AcqRel) == 1 {
            let mut captures = self.node.captures.lock();
            // A later worker may have the same pid by now.
            if captures
                .get(&self.pid)
                .is_some_and(|c| Arc::ptr_eq(c, &self))
            {
                captures.remove(&self.pid);
            }
        }
    }

    /// Reads pipe `index` without waiting, at most `rounds` buffers. `now`: ask the pipe
    /// itself, not the runtime's idea of whether it is readable (which may lag behind what
    /// the worker wrote before it answered).
    fn pump(&self, index: usize, rounds: usize, now: bool) -> Pumped {
        let stream = &self.streams[index];
        let Some(pipe) = &stream.pipe else {
            return Pumped::Ended;
        };
        let mut buf = [0u8; OUTPUT_LINE_MAX];
        let mut state = stream.state.lock();
        for _ in 0..rounds {
            let read = match now {
                true => read_now(pipe, &mut buf),
                false => pipe.try_read(&mut buf),
            };
            match read {
                Ok(0) => return Pumped::Ended,
                Ok(n) => self.take(&mut state, stream.stderr, &buf[..n]),
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => return Pumped::Open,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(e) => {
                    tracing::debug!(pid = self.pid, "reading a worker's output: {e}");
                    return Pumped::Ended;
                }
            }
        }
        Pumped::More
    }

    /// `bytes` read from a pipe: into the log file, and line by line to the head.
    fn take(&self, state: &mut StreamState, stderr: bool, mut bytes: &[u8]) {
        if let Some(file) = &mut state.file {
            if let Err(e) = file.write(bytes) {
                tracing::warn!(path = %file.path.display(), "worker output no longer goes to its log file: {e}");
                state.file = None;
            }
        }
        while let Some(end) = bytes.iter().position(|b| *b == b'\n') {
            let (line, rest) = bytes.split_at(end);
            bytes = &rest[1..];
            if state.partial.is_empty() {
                self.emit(stderr, line);
            } else {
                let mut whole = std::mem::take(&mut state.partial);
                whole.extend_from_slice(line);
                self.emit(stderr, &whole);
            }
        }
        state.partial.extend_from_slice(bytes);
        // A line that long goes in pieces: the buffer never holds more than one piece.
        while state.partial.len() >= OUTPUT_LINE_MAX {
            let cut = char_boundary(&state.partial, OUTPUT_LINE_MAX);
            let piece: Vec<u8> = state.partial.drain(..cut).collect();
            self.emit(stderr, &piece);
        }
    }

    /// One line (at most [`OUTPUT_LINE_MAX`] bytes) to the head.
    fn emit(&self, stderr: bool, line: &[u8]) {
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        let name = self.label.lock().to_string();
        self.node.forward(
            self.job,
            OutputLine {
                pid: self.pid,
                name,
                stderr,
                text: String::from_utf8_lossy(line).into_owned(),
            },
        );
    }
}

/// Reads what `pipe` holds now, straight from its file descriptor (non-blocking).
fn read_now(pipe: &pipe::Receiver, buf: &mut [u8]) -> std::io::Result<usize> {
    use std::os::fd::AsRawFd;
    // SAFETY: `buf` is valid for `buf.len()` bytes, and the descriptor stays open while
    // `pipe` lives.
    let n = unsafe { libc::read(pipe.as_raw_fd(), buf.as_mut_ptr().cast(), buf.len()) };
    usize::try_from(n).map_err(|_| std::io::Error::last_os_error())
}

/// How far a pipe was read.
enum Pumped {
    /// All it held; more may come.
    Open,
    /// It may hold more.
    More,
    /// It ended.
    Ended,
}

/// The largest cut at most `at` bytes into `bytes` that does not split a UTF-8 character
/// (`at` itself when none is near).
fn char_boundary(bytes: &[u8], at: usize) -> usize {
    (at.saturating_sub(3)..=at)
        .rev()
        .find(|&i| i == bytes.len() || (bytes[i] & 0xc0) != 0x80)
        .filter(|&i| i > 0)
        .unwrap_or(at)
}

/// A worker's log file, cut over to `<path>.1` when it reaches its cap.
#[derive(Debug)]
struct LogFile {
    path: PathBuf,
    file: fs::File,
    written: u64,
    cap: u64,
}

impl LogFile {
    /// Opens (appends to) `path`; `None`, with a warning, when it cannot.
    fn open(path: PathBuf, cap: u64) -> Option<LogFile> {
        let file = fs::OpenOptions::new()
            .create(true)
            .append(true)
            .mode(0o600)
            .open(&path)
            .inspect_err(
                |e| tracing::warn!(path = %path.display(), "cannot open a worker log file: {e}"),
            )
            .ok()?;
        let written = file.metadata().map_or(0, |m| m.len());
        Some(LogFile {
            path,
            file,
            written,
            cap,
        })
    }

    fn write(&mut self, mut bytes: &[u8]) -> std::io::Result<()> {
        while !bytes.is_empty() {
            if self.written >= self.cap {
                self.rotate()?;
            }
            let room = usize::try_from(self.cap - self.written).unwrap_or(usize::MAX);
            let (now, later) = bytes.split_at(room.min(bytes.len()));
            self.file.write_all(now)?;
            self.written += now.len() as u64;
            bytes = later;
        }
        Ok(())
    }

    /// The file becomes `<path>.1` (replacing an older one); a new one starts.
    fn rotate(&mut self) -> std::io::Result<()> {
        let mut old = self.path.clone().into_os_string();
        old.push(".1");
        fs::rename(&self.path, &old)?;
        self.file = fs::OpenOptions::new()
            .create(true)
            .write(true)
            .truncate(true)
            .mode(0o600)
            .open(&self.path)?;
        self.written = 0;
        Ok(())
    }
}

/// Creates `dir` and its parents, mode 0700 (logs may hold what users print).
fn private_dir(dir: &Path) -> std::io::Result<()> {
    fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cluster::proto::{Message, OutputBatch};
    use std::os::fd::FromRawFd;

    fn temp_dir(name: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("raykit-output-{name}-{}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        dir
    }

    /// A pipe: (read end, write end).
    fn pipe() -> (OwnedFd, fs::File) {
        let mut fds = [0; 2];
        // SAFETY: `fds` has room for the two descriptors pipe2 writes.
        assert_eq!(unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) }, 0);
        // SAFETY: both descriptors were just made and belong to nobody else.
        unsafe { (OwnedFd::from_raw_fd(fds[0]), fs::File::from_raw_fd(fds[1])) }
    }

    /// The lines in `messages` as (name, stderr, text), and the drains answered.
    fn lines(messages: &[Message]) -> (Vec<(String, bool, String)>, Vec<u64>) {
        let mut lines = Vec::new();
        let mut drains = Vec::new();
        for msg in messages {
            match msg {
                Message::WorkerOutput(batch) => lines.extend(
                    batch
                        .lines
                        .iter()
                        .map(|l| (l.name.clone(), l.stderr, l.text.clone())),
                ),
                Message::OutputDrained { seq, .. } => drains.push(*seq),
                other => panic!("unexpected {}", other.name()),
            }
        }
        (lines, drains)
    }

    #[test]
    fn names_are_the_last_segment_and_cuts_keep_characters_whole() {
        assert_eq!(short_name("my_crate::tasks::add"), "add");
        assert_eq!(short_name("Counter"), "Counter");
        let text = "aé".repeat(10);
        let bytes = text.as_bytes();
        // 'é' is two bytes: a cut inside it moves back to its start.
        assert_eq!(char_boundary(bytes, 2), 1);
        assert_eq!(char_boundary(bytes, 3), 3);
        assert_eq!(char_boundary(bytes, bytes.len()), bytes.len());
        assert!(std::str::from_utf8(&bytes[..char_boundary(bytes, 5)]).is_ok());
    }

    #[test]
    fn a_log_file_goes_over_to_its_backup_at_its_cap() {
        let dir = temp_dir("rotate");
        private_dir(&dir).unwrap();
        let path = dir.join("worker-1-job-1.out");
        let mut file = LogFile::open(path.clone(), 8).unwrap();
        file.write(b"0123456789").unwrap();
        file.write(b"abcdefghij").unwrap();
        assert_eq!(fs::read(&path).unwrap(), b"ghij");
        assert_eq!(
            fs::read(dir.join("worker-1-job-1.out.1")).unwrap(),
            b"89abcdef"
        );
        // Opened again (a reused pid), it counts what the file holds.
        let mut file = LogFile::open(path.clone(), 8).unwrap();
        file.write(b"klmnopq").unwrap();
        assert_eq!(fs::read(&path).unwrap(), b"opq");
        assert_eq!(
            fs::read(dir.join("worker-1-job-1.out.1")).unwrap(),
            b"ghijklmn"
        );
        let _ = fs::remove_dir_all(&dir);
    }

    #[test]
    fn a_full_queue_drops_lines_counts_them_and_keeps_drain_answers_in_order() {
        let queue = OutputQueue::default();
        let job = JobId(3);
        let node = crate::cluster::new_node_id().unwrap();
        let line = |i: usize| OutputLine {
            pid: 7,
            name: "f".into(),
            stderr: false,
            text: format!("{i:08}{}", "x".repeat(992)),
        };
        let fits = QUEUE_BYTES / line(0).cost();
        for i in 0..fits + 10 {
            queue.push_line(job, node, line(i));
        }
        queue.push_drained(job, 1);
        let mut all = Vec::new();
        loop {
            let out = queue.take();
            if out.is_empty() {
                break;
            }
            all.extend(out);
        }
        let (got, drains) = lines(&all);
        assert_eq!(got.len(), fits);
        assert!(got
            .iter()
            .enumerate()
            .all(|(i, l)| l.2.starts_with(&format!("{i:08}"))));
        assert_eq!(drains, vec![1]);
        assert!(matches!(
            all.last(),
            Some(Message::OutputDrained { seq: 1, .. })
        ));
        let dropped: u64 = all
            .iter()
            .map(|m| match m {
                Message::WorkerOutput(b) => b.dropped,
                _ => 0,
            })
            .sum();
        assert_eq!(dropped, 10);
        // Every batch is within what a peer accepts.
        for msg in &all {
            if let Message::WorkerOutput(b) = msg {
                b.check().unwrap();
            }
        }
        // Counts that come from a peer travel on.
        queue.push_batch(OutputBatch {
            job_id: job,
            node_id: node,
            lines: Vec::new(),
            dropped: 5,
        });
        let (got, _) = lines(&queue.take());
        assert!(got.is_empty());
    }

    #[test]
    fn pipes_are_cut_into_labelled_lines_logged_and_drained_in_order() {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let dir = temp_dir("capture");
        let node = Arc::new(NodeOutput::new(
            crate::cluster::new_node_id().unwrap(),
            dir.clone(),
        ));
        let job = JobId(4);
        let (out_read, mut out_write) = pipe();
        let (err_read, mut err_write) = pipe();
        rt.block_on(async {
            let capture = node.capture(42, job, Some(out_read), Some(err_read));
            // Printed before any task: no name; a line without its end goes when the label
            // changes.
            out_write.write_all(b"early\nhalf").unwrap();
            capture.label("crate::module::first");
            err_write.write_all(b"oops\r\n").unwrap();
            let long = "y".repeat(OUTPUT_LINE_MAX + 10);
            out_write
                .write_all(format!("{long}\nlast").as_bytes())
                .unwrap();
            node.drain(job, 9);
            let mut all = Vec::new();
            while !matches!(all.last(), Some(Message::OutputDrained { .. })) {
                all.extend(node.queue().next().await);
            }
            let (got, drains) = lines(&all);
            let first = "first".to_owned();
            assert_eq!(
                got,
                vec![
                    (String::new(), false, "early".to_owned()),
                    (String::new(), false, "half".to_owned()),
                    (first.clone(), false, "y".repeat(OUTPUT_LINE_MAX)),
                    (first.clone(), false, "y".repeat(10)),
                    (first.clone(), false, "last".to_owned()),
                    (first.clone(), true, "oops".to_owned()),
                ]
            );
            assert_eq!(drains, vec![9]);
            // A muted job's lines go to its files only.
            node.mute(job);
            out_write.write_all(b"quiet\n").unwrap();
            node.drain(job, 10);
            let (got, drains) = lines(&node.queue().next().await);
            assert!(got.is_empty());
            assert_eq!(drains, vec![10]);
            // The worker exits: its pipes end and it is forgotten.
            drop(out_write);
            drop(err_write);
            drop(capture);
            for _ in 0..100 {
                if node.captures.lock().is_empty() {
                    break;
                }
                tokio::time::sleep(std::time::Duration::from_millis(10)).await;
            }
            assert!(node.captures.lock().is_empty());
        });
        let (out_path, err_path) = worker_log_paths(&dir, 42, job);
        let logged = fs::read_to_string(out_path).unwrap();
        assert!(logged.starts_with("early\nhalfyyy"), "{logged}");
        assert!(logged.ends_with("\nlastquiet\n"), "{logged}");
        assert_eq!(fs::read_to_string(err_path).unwrap(), "oops\r\n");
        let _ = fs::remove_dir_all(&dir);
    }
}
