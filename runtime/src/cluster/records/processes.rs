//! The processes behind the records, through `/proc` and signals: whether one is alive,
//! when it started, what it runs, and how to end it.

use std::fs;
use std::path::Path;
use std::time::{Duration, Instant};

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
