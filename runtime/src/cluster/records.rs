//! Daemon bookkeeping on one host: where the daemons started here are, how to reach them, and
//! the processes behind them.
//!
//! Everything lives in one per-user directory, [`home`]: `$RAYKIT_HOME` when set (tests use it
//! to isolate themselves), else `/tmp/raykit-<user>`, created with mode 0700 because it holds
//! the cluster token:
//!
//! - `daemons/<pid>.json`: one [`DaemonRecord`] per running daemon, written by the daemon once
//!   it listens and removed when it exits; `raykit stop` walks these.
//! - `cluster.json`: the [`ClusterRecord`] of the cluster this host's daemons belong to (the
//!   head's address and the token), read by `raykit status` and by drivers on this host.
//! - `logs/`: the output of detached daemons, and each node's worker log files
//!   (`logs/node-<id>/`, see `cluster::output`).
//! - `node-<id>/` (the node's executable cache, `exe/`) and, for a head, `head-node-<id>/`
//!   (the executables drivers uploaded, `exe/`): one of each per daemon, with an `owner.json`
//!   ([`Owner`]) naming the process they belong to. The daemon removes them when it exits.
//!
//! A daemon killed with `kill -9` removes nothing. The next daemon started on the host, and
//! `raykit status` and `raykit stop`, [`sweep`] what such daemons left: the records of
//! daemons whose process is gone, their directories, and the cluster record once no running
//! daemon belongs to its cluster. Logs are kept. Daemons sharing one home must see each
//! other's processes (one pid namespace): a daemon this host cannot see counts as gone.
//!
//! Files are JSON, written to a temporary name and renamed, with mode 0600.

use std::collections::HashSet;
use std::fmt;
use std::fs;
use std::io::Write;
use std::os::unix::fs::{DirBuilderExt, MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

use crate::error::{Error, ErrorKind, Result};

/// One running daemon, as recorded on its host.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DaemonRecord {
    /// The daemon's process id.
    pub pid: u32,
    /// Whether the daemon is a head (it also runs a node).
    pub head: bool,
    /// The node the daemon runs.
    pub node_id: String,
    /// Where the daemon accepts connections, in a form this host can connect to.
    pub listen: String,
    /// Where other hosts reach the daemon, when known at start (a node on every interface
    /// learns it from its connection to the head).
    #[serde(default)]
    pub advertised: Option<String>,
    /// The head of the daemon's cluster (equal to `listen` for a head).
    pub cluster: String,
    /// The cluster token.
    pub token: String,
    /// The daemon's executable, to make sure a recorded pid still names this daemon.
    pub exe: Option<PathBuf>,
    /// Where a detached daemon writes its log.
    pub log: Option<PathBuf>,
    /// When the daemon's process started ([`process_start_time`]), to tell it from a later
    /// process that got the same pid. Absent in records of older versions.
    #[serde(default)]
    pub started: Option<u64>,
}

impl DaemonRecord {
    /// The process the record belongs to.
    pub fn owner(&self) -> Owner {
        Owner {
            pid: self.pid,
            exe: self.exe.clone(),
            started: self.started,
        }
    }

    /// Whether the recorded daemon still runs (see [`Owner::runs`]).
    pub fn runs(&self) -> bool {
        self.owner().runs()
    }
}

/// The process a record or a directory belongs to: its pid, and its executable and start
/// time so that a later process with the same pid is not taken for it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Owner {
    /// The process id.
    pub pid: u32,
    /// The process's executable, when known.
    pub exe: Option<PathBuf>,
    /// When the process started ([`process_start_time`]), when known.
    pub started: Option<u64>,
}

impl Owner {
    /// This process.
    pub fn this_process() -> Owner {
        let pid = std::process::id();
        Owner {
            pid,
            exe: std::env::current_exe().ok(),
            started: process_start_time(pid),
        }
    }

    /// Whether the owner still runs: `pid` is alive, runs `exe` (see [`process_runs`]) and,
    /// when both are known, started when the owner did.
    pub fn runs(&self) -> bool {
        if !process_runs(self.pid, self.exe.as_deref()) {
            return false;
        }
        match (self.started, process_start_time(self.pid)) {
            (Some(recorded), Some(actual)) => recorded == actual,
            _ => true,
        }
    }
}

/// The cluster this host belongs to: what `raykit status` and drivers on this host connect to.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClusterRecord {
    /// The head's address, `HOST:PORT`.
    pub address: String,
    /// The cluster token.
    pub token: String,
}

/// The per-user directory of daemon records: `$RAYKIT_HOME`, else `/tmp/raykit-<user>`.
pub fn home() -> PathBuf {
    if let Some(h) = std::env::var_os("RAYKIT_HOME").filter(|h| !h.is_empty()) {
        return PathBuf::from(h);
    }
    let user = std::env::var("USER")
        .ok()
        .filter(|u| !u.is_empty() && !u.contains('/'))
        .unwrap_or_else(|| current_uid().to_string());
    std::env::temp_dir().join(format!("raykit-{user}"))
}

fn current_uid() -> u32 {
    // SAFETY: geteuid has no preconditions and cannot fail.
    unsafe { libc::geteuid() }
}

fn io_err(what: String, e: std::io::Error) -> Error {
    Error::new(ErrorKind::System, format!("{what}: {e}"))
}

/// Creates `dir` (mode 0700) and checks that it belongs to this user: it may sit in a shared
/// `/tmp`, and another user's directory must not receive our token.
fn private_dir(dir: &Path) -> Result<()> {
    match fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
    {
        Ok(()) => {}
        Err(e) => return Err(io_err(format!("cannot create {}", dir.display()), e)),
    }
    let meta =
        fs::metadata(dir).map_err(|e| io_err(format!("cannot read {}", dir.display()), e))?;
    if meta.uid() != current_uid() {
        return Err(Error::new(
            ErrorKind::Config,
            format!(
                "{} belongs to another user; set RAYKIT_HOME to a directory of yours",
                dir.display()
            ),
        ));
    }
    Ok(())
}

fn daemons_dir() -> PathBuf {
    home().join("daemons")
}

fn daemon_path(pid: u32) -> PathBuf {
    daemons_dir().join(format!("{pid}.json"))
}

fn cluster_path() -> PathBuf {
    home().join("cluster.json")
}

/// The directory for detached daemons' logs, created if needed.
pub fn logs_dir() -> Result<PathBuf> {
    private_dir(&home())?;
    let dir = home().join("logs");
    private_dir(&dir)?;
    Ok(dir)
}

fn write_json<T: Serialize>(path: &Path, value: &T) -> Result<()> {
    private_dir(&home())?;
    write_json_in(path, value)
}

/// [`write_json`] for a file whose directory is created (private) if needed, wherever it is.
fn write_json_in<T: Serialize>(path: &Path, value: &T) -> Result<()> {
    let dir = path.parent().unwrap_or(Path::new("."));
    private_dir(dir)?;
    let text = serde_json::to_vec_pretty(value)
        .map_err(|e| Error::serialization(&format!("writing {}", path.display()), e))?;
    let tmp = path.with_extension(format!("tmp{}", std::process::id()));
    let written = fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(&tmp)
        .and_then(|mut f| f.write_all(&text))
        .and_then(|()| fs::rename(&tmp, path));
    written.map_err(|e| {
        let _ = fs::remove_file(&tmp);
        io_err(format!("cannot write {}", path.display()), e)
    })
}

fn read_json<T: for<'de> Deserialize<'de>>(path: &Path) -> Result<Option<T>> {
    match fs::read(path) {
        Ok(bytes) => serde_json::from_slice(&bytes)
            .map(Some)
            .map_err(|e| Error::serialization(&format!("reading {}", path.display()), e)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(io_err(format!("cannot read {}", path.display()), e)),
    }
}

/// Records a running daemon.
pub fn write_daemon(record: &DaemonRecord) -> Result<()> {
    write_json(&daemon_path(record.pid), record)
}

/// The record of the daemon with process id `pid`, if there is one.
pub fn read_daemon(pid: u32) -> Result<Option<DaemonRecord>> {
    read_json(&daemon_path(pid))
}

/// Forgets the daemon with process id `pid`.
pub fn remove_daemon(pid: u32) {
    let _ = fs::remove_file(daemon_path(pid));
}

/// Every recorded daemon. Unreadable records are logged and skipped.
pub fn daemons() -> Vec<DaemonRecord> {
    let Ok(entries) = fs::read_dir(daemons_dir()) else {
        return Vec::new();
    };
    let mut out = Vec::new();
    for entry in entries.flatten() {
        let path = entry.path();
        if path.extension().and_then(|e| e.to_str()) != Some("json") {
            continue;
        }
        match read_json::<DaemonRecord>(&path) {
            Ok(Some(r)) => out.push(r),
            Ok(None) => {}
            Err(e) => tracing::warn!("skipping a daemon record: {e}"),
        }
    }
    out.sort_by_key(|r| r.pid);
    out
}

/// Records the cluster this host belongs to.
pub fn write_cluster(record: &ClusterRecord) -> Result<()> {
    write_json(&cluster_path(), record)
}

/// The cluster this host belongs to, if one is recorded.
pub fn read_cluster() -> Result<Option<ClusterRecord>> {
    read_json(&cluster_path())
}

/// Forgets the cluster record if it names the head at `address`.
pub fn remove_cluster_if(address: &str) {
    if let Ok(Some(c)) = read_cluster() {
        if c.address == address {
            let _ = fs::remove_file(cluster_path());
        }
    }
}

/// The file in a per-daemon directory that names its [`Owner`].
pub const OWNER_FILE: &str = "owner.json";

/// Creates the per-daemon directory `dir` (mode 0700, its parents too) and records this
/// process as its owner, so that [`sweep`] can tell when it is left over.
pub fn claim_dir(dir: &Path) -> Result<()> {
    write_json_in(&dir.join(OWNER_FILE), &Owner::this_process())
}

/// What one [`sweep`] removed.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Swept {
    /// Records of daemons whose process is gone.
    pub records: usize,
    /// Per-daemon directories (executable caches and the like) of processes that are gone.
    pub dirs: usize,
    /// The bytes of the files in those directories.
    pub bytes: u64,
    /// The address of the cluster whose record was removed, if it was.
    pub cluster: Option<String>,
}

impl Swept {
    /// Whether nothing was removed.
    pub fn is_empty(&self) -> bool {
        self.records == 0 && self.dirs == 0 && self.cluster.is_none()
    }
}

impl fmt::Display for Swept {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "removed {} stale daemon record{}, {} director{} of daemons that are gone ({} bytes)",
            self.records,
            if self.records == 1 { "" } else { "s" },
            self.dirs,
            if self.dirs == 1 { "y" } else { "ies" },
            self.bytes
        )?;
        if let Some(address) = &self.cluster {
            write!(f, " and the record of the cluster at {address}")?;
        }
        Ok(())
    }
}

/// Removes what daemons that are gone (killed with `kill -9`, say) left in [`home`]; see
/// [`sweep_in`].
pub fn sweep() -> Swept {
    sweep_in(&home())
}

/// Removes what daemons that are gone left in the home directory `home`, and nothing a
/// running process may use:
///
/// - a daemon record whose process no longer runs that daemon ([`DaemonRecord::runs`]; a
///   record of this very process is stale too, as only a daemon that has not recorded itself
///   yet sweeps), and the temporary files of writers that are gone;
/// - a per-daemon directory (`node-<id>`, `head-node-<id>`) whose [`OWNER_FILE`] names a
///   process that is gone, or, without an owner file, whose node a stale record names;
///   never one whose node a running daemon's record names;
/// - `cluster.json`, when no running daemon's record belongs to its cluster (a daemon
///   records itself before the cluster, and the cluster record is read first).
pub fn sweep_in(home: &Path) -> Swept {
    let mut swept = Swept::default();
    let me = std::process::id();
    let cluster_path = home.join("cluster.json");
    let cluster = read_json::<ClusterRecord>(&cluster_path).ok().flatten();

    let mut live_nodes = HashSet::new();
    let mut live_clusters = HashSet::new();
    let mut stale_nodes = HashSet::new();
    let daemons = home.join("daemons");
    for entry in fs::read_dir(&daemons).into_iter().flatten().flatten() {
        let path = entry.path();
        let name = entry.file_name().to_string_lossy().into_owned();
        if sweep_temporary(&name, &path) {
            continue;
        }
        if path.extension().and_then(|e| e.to_str()) != Some("json") {
            continue;
        }
        let record = match read_json::<DaemonRecord>(&path) {
            Ok(Some(r)) => r,
            Ok(None) => continue,
            Err(e) => {
                tracing::warn!("leaving a daemon record alone: {e}");
                continue;
            }
        };
        if record.pid != me && record.runs() {
            live_nodes.insert(record.node_id);
            live_clusters.insert(record.cluster);
        } else if fs::remove_file(&path).is_ok() {
            swept.records += 1;
            stale_nodes.insert(record.node_id);
        }
    }

    for entry in fs::read_dir(home).into_iter().flatten().flatten() {
        let path = entry.path();
        let name = entry.file_name().to_string_lossy().into_owned();
        if sweep_temporary(&name, &path) {
            continue;
        }
        let Some(node) = daemon_dir_node(&name) else {
            continue;
        };
        if live_nodes.contains(node) || !entry.file_type().is_ok_and(|t| t.is_dir()) {
            continue;
        }
        let gone = match read_json::<Owner>(&path.join(OWNER_FILE)) {
            Ok(Some(owner)) => !owner.runs(),
            // Without an owner (a daemon of an older version, or one that is just creating
            // it), only a stale record says the directory is left over.
            Ok(None) | Err(_) => stale_nodes.contains(node),
        };
        if gone {
            let bytes = tree_bytes(&path);
            if fs::remove_dir_all(&path).is_ok() {
                swept.dirs += 1;
                swept.bytes += bytes;
            }
        }
    }

    if let Some(c) = cluster {
        if !live_clusters.contains(&c.address)
            // Unless a daemon starting meanwhile wrote another.
            && read_json::<ClusterRecord>(&cluster_path).ok().flatten().as_ref() == Some(&c)
            && fs::remove_file(&cluster_path).is_ok()
        {
            swept.cluster = Some(c.address);
        }
    }
    swept
}

/// Whether `name` is a temporary file of a writer (removed when that writer is dead).
fn sweep_temporary(name: &str, path: &Path) -> bool {
    let Some(writer) = temporary_writer(name) else {
        return false;
    };
    if !process_alive(writer) {
        let _ = fs::remove_file(path);
    }
    true
}

/// The process that writes the temporary file `name` (`<name>.tmp<pid>`, see [`write_json`]).
fn temporary_writer(name: &str) -> Option<u32> {
    let (_, pid) = name.rsplit_once(".tmp")?;
    pid.parse().ok()
}

/// The node of a per-daemon directory named `name`: `node-<16 hex digits>`, optionally with
/// `head-` before it.
fn daemon_dir_node(name: &str) -> Option<&str> {
    let node = name.strip_prefix("head-").unwrap_or(name);
    let digits = node.strip_prefix("node-")?;
    (digits.len() == 16 && digits.bytes().all(|b| b.is_ascii_hexdigit())).then_some(node)
}

/// The bytes of the files under `path` (symbolic links are not followed).
fn tree_bytes(path: &Path) -> u64 {
    let Ok(meta) = fs::symlink_metadata(path) else {
        return 0;
    };
    if !meta.is_dir() {
        return meta.len();
    }
    fs::read_dir(path)
        .into_iter()
        .flatten()
        .flatten()
        .map(|e| tree_bytes(&e.path()))
        .sum()
}

/// The token of a token file: its first line, without surrounding whitespace.
pub fn read_token_file(path: &Path) -> Result<String> {
    let text = fs::read_to_string(path).map_err(|e| {
        Error::new(
            ErrorKind::Config,
            format!("cannot read the token file {}: {e}", path.display()),
        )
    })?;
    match text.lines().next().map(str::trim).filter(|t| !t.is_empty()) {
        Some(t) => Ok(t.to_owned()),
        None => Err(Error::new(
            ErrorKind::Config,
            format!("the token file {} is empty", path.display()),
        )),
    }
}

/// The token this process was given: `RAYKIT_TOKEN`, else the file `RAYKIT_TOKEN_FILE` names.
pub fn env_token() -> Result<Option<String>> {
    if let Some(t) = std::env::var("RAYKIT_TOKEN").ok().filter(|t| !t.is_empty()) {
        return Ok(Some(t));
    }
    match std::env::var_os("RAYKIT_TOKEN_FILE").filter(|p| !p.is_empty()) {
        Some(path) => read_token_file(Path::new(&path)).map(Some),
        None => Ok(None),
    }
}

/// The cluster a program joins when told `address` (`RAYKIT_ADDRESS` or `Config::address`),
/// and its token: `RAYKIT_TOKEN`/`RAYKIT_TOKEN_FILE` when set, else the token this host
/// recorded for that cluster, `None` when neither. `auto` names the cluster recorded on this
/// host; an address matches the record when both name the same socket address
/// (`localhost:6380` is the record's `127.0.0.1:6380`).
pub fn resolve_cluster(address: &str) -> Result<(String, Option<String>)> {
    let env_token = env_token()?;
    let recorded = read_cluster()?;
    if address.trim() == "auto" {
        return match recorded {
            Some(r) => Ok((r.address, Some(env_token.unwrap_or(r.token)))),
            None => Err(Error::new(
                ErrorKind::Config,
                format!(
                    "RAYKIT_ADDRESS=auto joins the cluster recorded on this host, but {} records \
                     none: start one with `raykit start --head`, or give the head's HOST:PORT",
                    home().display()
                ),
            )),
        };
    }
    let token = env_token.or_else(|| {
        recorded
            .filter(|r| same_address(&r.address, address))
            .map(|r| r.token)
    });
    Ok((address.to_owned(), token))
}

/// Whether two `HOST:PORT` texts name the same socket address (by text, or resolved).
pub fn same_address(a: &str, b: &str) -> bool {
    use std::net::ToSocketAddrs;
    if a.trim() == b.trim() {
        return true;
    }
    let resolve = |s: &str| -> Vec<std::net::SocketAddr> {
        s.trim()
            .to_socket_addrs()
            .map(|it| it.collect())
            .unwrap_or_default()
    };
    let b = resolve(b);
    resolve(a).iter().any(|x| b.contains(x))
}

/// Whether process `pid` exists and is not a zombie.
pub fn process_alive(pid: u32) -> bool {
    match fs::read_to_string(format!("/proc/{pid}/stat")) {
        // The state follows the command name, which is in parentheses and may contain spaces.
        Ok(stat) => stat
            .rsplit_once(')')
            .and_then(|(_, rest)| rest.split_whitespace().next())
            .is_some_and(|state| state != "Z" && state != "X"),
        Err(_) => false,
    }
}

/// When process `pid` started, in clock ticks since the host booted (field 22 of
/// `/proc/<pid>/stat`): with the pid, it names one process for as long as the host runs.
pub fn process_start_time(pid: u32) -> Option<u64> {
    let stat = fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // Fields after the command name (in parentheses, may contain spaces) start at field 3.
    let (_, rest) = stat.rsplit_once(')')?;
    rest.split_whitespace().nth(22 - 3)?.parse().ok()
}

/// Whether `pid` still runs the executable `exe` (when the record knows it), so that a pid
/// reused by another program is never signalled.
pub fn process_runs(pid: u32, exe: Option<&Path>) -> bool {
    if !process_alive(pid) {
        return false;
    }
    let Some(exe) = exe else { return true };
    match fs::read_link(format!("/proc/{pid}/exe")) {
        Ok(actual) => {
            let actual = actual.to_string_lossy();
            // A rebuilt executable shows as "<path> (deleted)".
            actual.trim_end_matches(" (deleted)") == exe.to_string_lossy()
        }
        // Not ours to inspect: then not ours to kill either.
        Err(_) => false,
    }
}

/// Sends `signal` to process `pid`. Returns whether it was delivered.
pub fn signal(pid: u32, signal: i32) -> bool {
    let Ok(pid) = libc::pid_t::try_from(pid) else {
        return false;
    };
    if pid <= 0 {
        return false;
    }
    // SAFETY: kill has no memory-safety preconditions; a positive pid names one process.
    unsafe { libc::kill(pid, signal) == 0 }
}

/// Kills process `pid` at once (SIGKILL). Returns whether the signal was delivered.
pub fn kill(pid: u32) -> bool {
    signal(pid, libc::SIGKILL)
}

/// Waits at most `timeout` for process `pid` to exit; returns whether it did.
pub fn wait_exit(pid: u32, timeout: Duration) -> bool {
    let deadline = Instant::now() + timeout;
    while process_alive(pid) {
        if Instant::now() >= deadline {
            return false;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    true
}

/// Ends process `pid`: SIGTERM, then SIGKILL if it is still there after `grace`.
pub fn terminate(pid: u32, grace: Duration) -> bool {
    if !process_alive(pid) {
        return true;
    }
    signal(pid, libc::SIGTERM);
    if wait_exit(pid, grace) {
        return true;
    }
    signal(pid, libc::SIGKILL);
    wait_exit(pid, Duration::from_secs(2))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Above the kernel's largest pid (2^22): never a running process.
    const DEAD: u32 = 4_194_305;

    /// A process that runs until dropped.
    struct Sleeper(std::process::Child);

    impl Sleeper {
        fn start() -> Sleeper {
            Sleeper(
                std::process::Command::new("sleep")
                    .arg("60")
                    .spawn()
                    .expect("start sleep"),
            )
        }

        fn owner(&self) -> Owner {
            let pid = self.0.id();
            Owner {
                pid,
                exe: fs::read_link(format!("/proc/{pid}/exe")).ok(),
                started: process_start_time(pid),
            }
        }
    }

    impl Drop for Sleeper {
        fn drop(&mut self) {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }

    fn scratch(name: &str) -> PathBuf {
        let dir =
            std::env::temp_dir().join(format!("raykit-records-{name}-{}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(&dir).unwrap();
        dir
    }

    fn node(n: u64) -> String {
        format!("node-{n:016x}")
    }

    fn record(home: &Path, file: &str, owner: &Owner, node_id: &str, cluster: &str) {
        let r = DaemonRecord {
            pid: owner.pid,
            head: false,
            node_id: node_id.to_owned(),
            listen: "127.0.0.1:9".into(),
            advertised: None,
            cluster: cluster.into(),
            token: "t".into(),
            exe: owner.exe.clone(),
            log: None,
            started: owner.started,
        };
        write_json_in(&home.join("daemons").join(file), &r).unwrap();
    }

    /// A per-daemon directory with an executable of `bytes` bytes and, if given, an owner.
    /// Returns the bytes of its files.
    fn daemon_dir(home: &Path, name: &str, owner: Option<&Owner>, bytes: usize) -> u64 {
        let dir = home.join(name);
        fs::create_dir_all(dir.join("exe")).unwrap();
        fs::write(dir.join("exe").join("f".repeat(64)), vec![1u8; bytes]).unwrap();
        let mut total = bytes as u64;
        if let Some(owner) = owner {
            write_json_in(&dir.join(OWNER_FILE), owner).unwrap();
            total += fs::metadata(dir.join(OWNER_FILE)).unwrap().len();
        }
        total
    }

    fn cluster(home: &Path, address: &str) {
        let c = ClusterRecord {
            address: address.into(),
            token: "t".into(),
        };
        write_json_in(&home.join("cluster.json"), &c).unwrap();
    }

    #[test]
    fn a_process_is_told_from_a_later_one_with_the_same_pid() {
        let sleeper = Sleeper::start();
        let owner = sleeper.owner();
        assert!(owner.started.is_some());
        assert!(owner.runs());
        let later = Owner {
            started: owner.started.map(|s| s + 1),
            ..owner.clone()
        };
        assert!(!later.runs(), "another start time: another process");
        let other_exe = Owner {
            exe: Some(PathBuf::from("/not/this/program")),
            ..owner.clone()
        };
        assert!(!other_exe.runs());
        let old_record = Owner {
            started: None,
            ..owner.clone()
        };
        assert!(
            old_record.runs(),
            "records without a start time go by pid and exe"
        );
        assert!(!Owner {
            pid: DEAD,
            exe: None,
            started: None
        }
        .runs());
        drop(sleeper);
        assert!(!owner.runs());
    }

    #[test]
    fn the_sweep_removes_what_daemons_that_are_gone_left_and_nothing_of_running_ones() {
        let home = scratch("sweep");
        let live = Sleeper::start();
        let live_owner = live.owner();
        let dead = Owner {
            pid: DEAD,
            exe: Some(PathBuf::from("/usr/bin/raykit")),
            started: Some(1),
        };
        let reused = Owner {
            started: live_owner.started.map(|s| s + 1),
            ..live_owner.clone()
        };
        let me = Owner::this_process();

        // Records: one dead, one of a process that reuses a live pid, one naming this very
        // process (which has not recorded itself: stale), one live.
        record(
            &home,
            &format!("{DEAD}.json"),
            &dead,
            &node(1),
            "127.0.0.1:1",
        );
        record(&home, "77.json", &reused, &node(3), "127.0.0.1:1");
        record(
            &home,
            &format!("{}.json", me.pid),
            &me,
            &node(7),
            "127.0.0.1:1",
        );
        let live_file = format!("{}.json", live_owner.pid);
        record(&home, &live_file, &live_owner, &node(2), "127.0.0.1:2");
        // Temporary files of a writer that is gone, and of one that runs.
        fs::write(home.join("daemons").join(format!("5.tmp{DEAD}")), b"{").unwrap();
        let running_tmp = format!("6.tmp{}", me.pid);
        fs::write(home.join("daemons").join(&running_tmp), b"{").unwrap();

        let mut removed = 0;
        // Named by a stale record, no owner file (an older version's).
        removed += daemon_dir(&home, &node(1), None, 1000);
        // Owned by processes that are gone.
        removed += daemon_dir(&home, &format!("head-{}", node(1)), Some(&dead), 24);
        removed += daemon_dir(&home, &node(5), Some(&dead), 10);
        removed += daemon_dir(&home, &node(3), Some(&reused), 10);
        // Kept: owned by a live process; the node of a live record (whatever its owner file
        // says); no owner and no record (a daemon creating it right now).
        daemon_dir(&home, &node(2), Some(&live_owner), 10);
        daemon_dir(&home, &format!("head-{}", node(2)), Some(&dead), 10);
        daemon_dir(&home, &node(4), None, 10);
        // Not a daemon's.
        fs::create_dir_all(home.join("logs")).unwrap();
        fs::create_dir_all(home.join("node-x")).unwrap();
        cluster(&home, "127.0.0.1:1");

        let swept = sweep_in(&home);
        assert_eq!(swept.records, 3, "{swept:?}");
        assert_eq!(swept.dirs, 4, "{swept:?}");
        assert_eq!(swept.bytes, removed);
        assert_eq!(swept.cluster.as_deref(), Some("127.0.0.1:1"));
        let mut left: Vec<String> = fs::read_dir(&home)
            .unwrap()
            .flatten()
            .map(|e| e.file_name().into_string().unwrap())
            .collect();
        left.sort();
        let mut want = vec![
            "daemons".to_owned(),
            format!("head-{}", node(2)),
            "logs".to_owned(),
            node(2),
            node(4),
            "node-x".to_owned(),
        ];
        want.sort();
        assert_eq!(left, want);
        let mut records: Vec<String> = fs::read_dir(home.join("daemons"))
            .unwrap()
            .flatten()
            .map(|e| e.file_name().into_string().unwrap())
            .collect();
        records.sort();
        let mut want = vec![live_file, running_tmp];
        want.sort();
        assert_eq!(records, want);
        let text = swept.to_string();
        assert!(
            text.starts_with("removed 3 stale daemon records, 4 directories"),
            "{text}"
        );

        // Once clean, a second sweep finds nothing; the live cluster's record stays.
        cluster(&home, "127.0.0.1:2");
        let again = sweep_in(&home);
        assert!(again.is_empty(), "{again:?}");
        assert!(home.join("cluster.json").exists());

        // When the last daemon is gone, its directories and the cluster record go too.
        drop(live);
        let last = sweep_in(&home);
        assert_eq!((last.records, last.dirs), (1, 2), "{last:?}");
        assert_eq!(last.cluster.as_deref(), Some("127.0.0.1:2"));
        assert!(!home.join("cluster.json").exists());
        assert!(!home.join(node(2)).exists());
        let _ = fs::remove_dir_all(&home);
    }

    #[test]
    fn addresses_match_by_text_or_by_what_they_resolve_to() {
        assert!(same_address("127.0.0.1:6380", "127.0.0.1:6380"));
        assert!(same_address("127.0.0.1:6380", "localhost:6380"));
        assert!(!same_address("127.0.0.1:6380", "127.0.0.1:6381"));
        assert!(!same_address("127.0.0.1:6380", "no such host"));
    }
}
