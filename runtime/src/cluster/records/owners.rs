//! Who a record or a per-daemon directory belongs to: an [`Owner`] (pid, executable, start
//! time), and the `owner.json` ([`OWNER_FILE`]) a daemon writes into the directories it
//! claims.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::files::write_json_in;
use super::processes::{process_runs, process_start_time};
use crate::error::Result;

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

/// The file in a per-daemon directory that names its [`Owner`].
pub const OWNER_FILE: &str = "owner.json";

/// Creates the per-daemon directory `dir` (mode 0700, its parents too) and records this
/// process as its owner, so that [`sweep`](super::sweep()) can tell when it is left over.
pub fn claim_dir(dir: &Path) -> Result<()> {
    write_json_in(&dir.join(OWNER_FILE), &Owner::this_process())
}
