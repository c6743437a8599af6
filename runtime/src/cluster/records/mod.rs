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
//! `raykit status` and `raykit stop`, [`sweep`](fn@sweep) what such daemons left: the records of
//! daemons whose process is gone, their directories, and the cluster record once no running
//! daemon belongs to its cluster. Logs are kept. Daemons sharing one home must see each
//! other's processes (one pid namespace): a daemon this host cannot see counts as gone.
//!
//! Files are JSON, written to a temporary name and renamed, with mode 0600.

use std::path::PathBuf;

use files::current_uid;

mod cluster;
mod daemons;
mod files;
mod owners;
mod processes;
mod sweep;
#[cfg(test)]
mod tests;
mod token;

pub use cluster::{
    read_cluster, remove_cluster_if, resolve_cluster, same_address, write_cluster, ClusterRecord,
};
pub use daemons::{daemons, read_daemon, remove_daemon, write_daemon, DaemonRecord};
pub use files::logs_dir;
pub use owners::{claim_dir, Owner, OWNER_FILE};
pub use processes::{
    kill, process_alive, process_runs, process_start_time, signal, terminate, wait_exit,
};
pub use sweep::{sweep, sweep_in, Swept};
pub use token::{env_token, read_token_file};

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
