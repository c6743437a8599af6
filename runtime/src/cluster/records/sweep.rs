//! The sweep: what daemons that are gone (killed with `kill -9`, say) left in the home
//! directory, removed by the next daemon, `raykit status` and `raykit stop`.

use std::collections::HashSet;
use std::fmt;
use std::fs;
use std::path::Path;

use super::files::read_json;
use super::owners::{Owner, OWNER_FILE};
use super::processes::process_alive;
use super::{home, ClusterRecord, DaemonRecord};

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

/// The process that writes the temporary file `name` (`<name>.tmp<pid>`, see
/// [`write_json`](super::files::write_json)).
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
