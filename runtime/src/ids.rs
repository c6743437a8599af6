//! Every id of raykit, with its constructors: objects, tasks, actors, nodes and jobs.
//!
//! Ids made in a process start with that process's random prefix (the high 64 bits) and count
//! up from there, so they are unique cluster-wide without asking anyone; node ids are random;
//! job ids are numbered by the head that registers the jobs.

use std::fmt;
use std::hash::{BuildHasher, Hasher};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::OnceLock;

use serde::{Deserialize, Serialize};

/// A random number, different in every process and every call.
pub(crate) fn random_u64() -> u64 {
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u32(std::process::id());
    h.write_u128(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos()),
    );
    h.finish()
}

/// The high half of every object, task and actor id made in this process.
pub(crate) fn process_prefix() -> u64 {
    static PREFIX: OnceLock<u64> = OnceLock::new();
    *PREFIX.get_or_init(random_u64)
}

/// The next id of this process's counter `counter`, under its prefix.
fn next_in_process(counter: &AtomicU64) -> u128 {
    let n = counter.fetch_add(1, Ordering::Relaxed);
    ((process_prefix() as u128) << 64) | n as u128
}

/// The id of an object: unique cluster-wide (this process's prefix + a counter).
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct ObjectId(u128);

impl ObjectId {
    /// A new id, never handed out before.
    pub(crate) fn next() -> Self {
        static COUNTER: AtomicU64 = AtomicU64::new(1);
        ObjectId(next_in_process(&COUNTER))
    }
}

impl fmt::Display for ObjectId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:032x}", self.0)
    }
}

impl fmt::Debug for ObjectId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ObjectId({self})")
    }
}

/// The id of an actor: unique cluster-wide (its creator's prefix + a counter).
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct ActorId(u128);

impl ActorId {
    /// A new id, never handed out before.
    pub(crate) fn next() -> Self {
        static COUNTER: AtomicU64 = AtomicU64::new(1);
        ActorId(next_in_process(&COUNTER))
    }
}

impl fmt::Display for ActorId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:032x}", self.0)
    }
}

impl fmt::Debug for ActorId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ActorId({self})")
    }
}

/// The id of a task: unique cluster-wide (chosen by its submitter: prefix + counter).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct TaskId(pub u128);

impl TaskId {
    /// A new id, never handed out before.
    pub(crate) fn next() -> Self {
        static COUNTER: AtomicU64 = AtomicU64::new(1);
        TaskId(next_in_process(&COUNTER))
    }
}

impl fmt::Display for TaskId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:032x}", self.0)
    }
}

/// The id of a node (embedded: this process).
#[derive(
    Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize, serde::Deserialize,
)]
pub struct NodeId(u64);

impl NodeId {
    /// The node id `raw`.
    pub(crate) const fn from_raw(raw: u64) -> Self {
        NodeId(raw)
    }

    /// A fresh random node id.
    pub(crate) fn random() -> Self {
        NodeId(random_u64())
    }
}

impl fmt::Display for NodeId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "node-{:016x}", self.0)
    }
}

impl fmt::Debug for NodeId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "NodeId({self})")
    }
}

/// The id of a job (one driver's run): numbered by the head that registers it, unique within
/// that head's life.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct JobId(pub u64);

impl fmt::Display for JobId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "job-{}", self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_of_one_process_share_its_prefix_and_never_repeat() {
        let (a, b) = (ObjectId::next(), ObjectId::next());
        assert_ne!(a, b);
        assert_eq!(a.0 >> 64, b.0 >> 64);
        assert_eq!((a.0 >> 64) as u64, process_prefix());
        let (x, y) = (ActorId::next(), ActorId::next());
        assert_ne!(x, y);
        assert_eq!((x.0 >> 64) as u64, process_prefix());
        assert_ne!(NodeId::random(), NodeId::random());
        assert_ne!(TaskId::next(), TaskId::next());
        assert_eq!((TaskId::next().0 >> 64) as u64, process_prefix());
    }

    #[test]
    fn ids_print_as_hex_and_node_ids_read_back_from_their_number() {
        assert_eq!(ObjectId(0xab).to_string(), format!("{:032x}", 0xab));
        assert_eq!(NodeId::from_raw(0x1f).to_string(), "node-000000000000001f");
        assert_eq!(JobId(7).to_string(), "job-7");
        let back: NodeId = postcard::from_bytes(&postcard::to_allocvec(&5u64).unwrap()).unwrap();
        assert_eq!(back, NodeId::from_raw(5));
    }
}
