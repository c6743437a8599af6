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
//! - `logs/`: the output of detached daemons.
//!
//! Files are JSON, written to a temporary name and renamed, with mode 0600.

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
    let dir = path.parent().unwrap_or(Path::new("."));
    private_dir(&home())?;
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

/// The cluster a driver or tool on this host should use: `RAYKIT_ADDRESS` / `RAYKIT_TOKEN`
/// when set, else the cluster record. The token is `None` when none is known.
pub fn discover() -> Result<Option<(String, Option<String>)>> {
    let env_token = env_token()?;
    let recorded = read_cluster()?;
    if let Some(address) = std::env::var("RAYKIT_ADDRESS")
        .ok()
        .filter(|a| !a.is_empty())
    {
        let token =
            env_token.or_else(|| recorded.filter(|r| r.address == address).map(|r| r.token));
        return Ok(Some((address, token)));
    }
    Ok(recorded.map(|r| (r.address, Some(env_token.unwrap_or(r.token)))))
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
