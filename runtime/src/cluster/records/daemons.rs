//! The records of the daemons running on this host: `daemons/<pid>.json`, one
//! [`DaemonRecord`] per daemon, written once it listens and removed when it exits.

use std::fs;
use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use super::files::{read_json, write_json};
use super::home;
use super::owners::Owner;
use crate::error::Result;

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
    /// When the daemon's process started
    /// ([`process_start_time`](super::process_start_time)), to tell it from a later process
    /// that got the same pid. Absent in records of older versions.
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

pub(super) fn daemons_dir() -> PathBuf {
    home().join("daemons")
}

pub(super) fn daemon_path(pid: u32) -> PathBuf {
    daemons_dir().join(format!("{pid}.json"))
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
