//! A node of the cluster (Ray's raylet): what one node daemon runs besides the head.
//!
//! - [`membership`]: the node's side of membership: join the head, heartbeat, rejoin as a new
//!   incarnation, leave; the registration connection that carries the head's work to the
//!   executor and its reports back ([`Node`]).
//! - [`executor`]: runs the head's tasks and hosts its actors on this node: tasks held and
//!   started, argument and output values, the jobs' executables, actor hosts.
//! - [`workers`]: the node's worker processes: spawning them, and talking to one.
//! - [`store`]: the node's object store.
//! - [`arena`]: the node's shared-memory arena for large objects (Ray's plasma).
//! - [`exe`]: the cache of the jobs' executables, on the head and on each node.

#[doc(hidden)]
pub mod arena;
#[doc(hidden)]
pub mod exe;
#[doc(hidden)]
pub mod executor;
pub mod membership;
#[doc(hidden)]
pub mod store;
#[doc(hidden)]
pub mod workers;

pub use membership::{HeadLink, Node, HEAD_LOST_TIMEOUT, HEARTBEAT_INTERVAL, JOIN_TIMEOUT};
