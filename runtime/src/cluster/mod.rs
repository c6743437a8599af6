//! The cluster runtime: the daemons behind `raykit start`, their wire protocol, membership and
//! the `raykit` command line.
//!
//! - [`wire`]: messages, framing, the authenticated handshake.
//! - [`head`]: the head's tables (nodes, jobs) and liveness by heartbeat.
//! - [`node`]: a node's membership: join, heartbeat, leave.
//! - [`daemon`]: one daemon process: listener, connection dispatch, lifetime.
//! - [`records`]: where this host's daemons, their addresses and the token are written down.
//! - [`cli`]: `raykit start | status | stop`.
//!
//! Only [`cli::main`] is meant for users (a program can offer the `raykit` commands itself);
//! the rest is the runtime's plumbing and may change.

#[doc(hidden)]
pub mod arena;
pub mod cli;
pub(crate) mod client;
#[doc(hidden)]
pub mod daemon;
#[doc(hidden)]
pub mod exe;
#[doc(hidden)]
pub mod executor;
#[doc(hidden)]
pub mod head;
#[doc(hidden)]
pub mod node;
#[doc(hidden)]
pub mod records;
#[doc(hidden)]
pub mod scheduler;
#[doc(hidden)]
pub mod store;
#[doc(hidden)]
pub mod wire;
#[doc(hidden)]
pub mod worker;
#[doc(hidden)]
pub mod workers;

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
    let raw = u64::from_le_bytes(random_bytes::<8>()?);
    // `NodeId`'s constructor is private to `runtime`; its serde form is its number, so build it
    // through that until the runtime offers a constructor.
    let bytes = postcard::to_allocvec(&raw).map_err(|e| Error::serialization("node id", e))?;
    postcard::from_bytes(&bytes).map_err(|e| Error::serialization("node id", e))
}
