//! The cluster backend: the program's side of a cluster, the daemons behind `raykit start`,
//! their protocol and the `raykit` command line. It depends on the core; the core reaches it
//! only through `backend.rs`.
//!
//! - `owner`: in the user's process (a driver, or a worker submitting nested work): joining
//!   the cluster as a job, submitting tasks and actor calls, the objects it owns and reads.
//! - [`proto`]: the messages, framing, chunked values, the authenticated handshake, TLS and
//!   connection limits.
//! - [`head`]: membership and heartbeats, jobs and their executables, the resource view, the
//!   scheduler of tasks and objects (its managers: resources, objects, tasks, dependencies,
//!   placement), the actor directory with named actors.
//! - [`node`]: membership from the node's side, the executor of tasks and actors on worker
//!   processes, the worker pool, the object store and its shared-memory arena, the cache of
//!   executables.
//! - [`worker`]: a worker process: runs a node's tasks and hosts its actors.
//! - [`daemon`]: one daemon process: listener, connection dispatch, lifetime.
//! - [`output`]: what workers print: their pipes and log files on a node, printed by the
//!   driver.
//! - [`records`]: where this host's daemons, their addresses and the token are written down.
//! - [`cli`]: `raykit start | status | stop`.
//!
//! Only [`cli::main`] is meant for users (a program can offer the `raykit` commands itself);
//! the rest is the runtime's plumbing and may change.

pub(crate) mod addresses;
pub mod cli;
#[doc(hidden)]
pub mod daemon;
#[doc(hidden)]
pub mod head;
#[doc(hidden)]
pub mod node;
#[doc(hidden)]
pub mod output;
pub(crate) mod owner;
pub(crate) mod peers;
#[doc(hidden)]
pub mod proto;
#[doc(hidden)]
pub mod records;
#[doc(hidden)]
pub mod worker;

use std::io::Read;

use crate::error::{Error, ErrorKind, Result};
use crate::runtime::NodeId;

/// `N` bytes from the kernel's random source, good enough for secrets.
fn random_bytes<const N: usize>() -> Result<[u8; N]> {
    let mut buf = [0u8; N];
    std::fs::File::open("/dev/urandom")
        .and_then(|mut f| f.read_exact(&mut buf))
        .map_err(|e| Error::new(ErrorKind::System, format!("cannot read /dev/urandom: {e}")))?;
    Ok(buf)
}

/// A fresh random cluster token: 128 bits, as 32 hex digits.
#[doc(hidden)]
pub fn new_token() -> Result<String> {
    Ok(random_bytes::<16>()?
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect())
}

/// A fresh random node id.
pub(crate) fn new_node_id() -> Result<NodeId> {
    Ok(NodeId::from_raw(u64::from_le_bytes(random_bytes::<8>()?)))
}

/// A map keyed by ids (objects, tasks, connections, actors), hashed with [`IdHasher`].
pub(crate) type IdMap<K, V> = std::collections::HashMap<K, V, IdHashing>;
/// A set of ids, hashed with [`IdHasher`].
pub(crate) type IdSet<K> = std::collections::HashSet<K, IdHashing>;
/// Builds [`IdHasher`]s.
pub(crate) type IdHashing = std::hash::BuildHasherDefault<IdHasher>;

/// The hasher of the head's and nodes' tables, which look ids up several times per task: a
/// multiply-rotate step per word (as rustc's FxHasher), several times cheaper than SipHash on
/// a 128-bit id. Ids are made by the cluster's own processes, which hold the token; flooding
/// a table with colliding ids is not a threat this needs to resist.
#[derive(Debug, Default, Clone, Copy)]
pub(crate) struct IdHasher(u64);

impl IdHasher {
    const K: u64 = 0xf135_7aea_2e62_a9c5;

    fn add(&mut self, word: u64) {
        self.0 = (self.0 ^ word).wrapping_mul(Self::K).rotate_left(26);
    }
}

impl std::hash::Hasher for IdHasher {
    fn write(&mut self, bytes: &[u8]) {
        for chunk in bytes.chunks(8) {
            let mut word = [0u8; 8];
            word[..chunk.len()].copy_from_slice(chunk);
            self.add(u64::from_le_bytes(word));
        }
    }

    fn write_u64(&mut self, n: u64) {
        self.add(n);
    }

    fn write_u128(&mut self, n: u128) {
        self.add(n as u64);
        self.add((n >> 64) as u64);
    }

    fn finish(&self) -> u64 {
        self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::hash::BuildHasher;

    #[test]
    fn ids_that_differ_in_either_half_hash_apart() {
        let hashing = IdHashing::default();
        let base: u128 = 0x3d90_8894_3da8_9238 << 64;
        let hashes: IdSet<u64> = (0..10_000u128)
            .flat_map(|i| [base + i, (i << 64) | 7])
            .map(|id| hashing.hash_one(id))
            .collect();
        assert_eq!(hashes.len(), 20_000);
        let mut map: IdMap<u128, u128> = IdMap::default();
        map.extend((0..1000u128).map(|i| (base + i, i)));
        assert!((0..1000u128).all(|i| map.get(&(base + i)) == Some(&i)));
    }
}
