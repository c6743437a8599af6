//! The wire protocol between daemons, drivers, workers and the CLI: the [`Message`] enum, the
//! versioned handshake that proves the cluster token, and [`Connection`], a TCP stream cut into
//! length-delimited frames (`tokio_util`'s
//! [`LengthDelimitedCodec`](tokio_util::codec::LengthDelimitedCodec)) holding postcard payloads.
//!
//! This module owns framing, encoding, limits and authentication. It must not know what a
//! message means: the head, the node and the CLI give messages their meaning.
//!
//! # The handshake
//!
//! Before a peer has proven the cluster token, its frames are decoded only as the small
//! [`Handshake`] type, at most [`HANDSHAKE_MAX_FRAME`] bytes each, within
//! [`HANDSHAKE_TIMEOUT`]. The connecting side says hello with its version, role and a nonce;
//! the accepting side checks the version and challenges with its own nonce; the connecting side
//! answers with an HMAC-SHA256 of both nonces keyed by the token, and the accepting side
//! welcomes it with its own proof, which the connecting side checks: the token itself never
//! crosses the wire (see [`handshake`]). Only after a welcome do both sides accept frames of
//! [`Message`]s up to [`MAX_FRAME`] bytes.
//!
//! # Large values
//!
//! No frame needs to hold a whole large value. An object larger than [`OBJECT_CHUNK`] moves as
//! [`Message::ObjectChunk`]s into one pre-sized buffer. Between a node and its workers, the
//! arguments and outputs of tasks and actor calls move the same way: the values that do not fit
//! the frame of their message go before it as [`Message::ValueChunk`]s, each encoded from a
//! slice of the sender's one copy ([`FrameWriter::feed_with_values`]), and
//! [`FrameReader::recv_values`] assembles them into one buffer per value and puts each in the
//! slot its message left empty. Small messages keep their single frame.

use std::time::Duration;

/// The protocol version this build speaks. Bump it whenever the encoding of any message after
/// the three handshake variants changes; peers of different versions refuse each other.
pub const PROTOCOL_VERSION: u32 = 12;

/// The largest frame accepted before the peer has proven the token.
pub const HANDSHAKE_MAX_FRAME: usize = 4 * 1024;

/// The largest frame accepted from an authenticated peer.
pub const MAX_FRAME: usize = 1 << 30;

/// How long either side waits for the other's half of the handshake.
pub const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(5);

/// How long opening a TCP connection may take.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// The largest chunk of an executable upload or download.
pub const EXE_CHUNK: usize = 4 << 20;

/// The largest piece of an object in one [`Message::ObjectChunk`]; larger values move in
/// pieces so that no frame (and no buffer of a frame) holds a whole large value.
pub const OBJECT_CHUNK: usize = 4 << 20;

/// Values smaller than this travel inline in [`Message::ObjectReady`] instead of being fetched.
pub const INLINE_MAX: usize = 64 << 10;

pub use crate::ids::{JobId, TaskId};

mod actors;
mod byte_serde;
mod connection;
mod encoding;
mod fetch;
mod frames;
#[cfg(feature = "fuzzing")]
pub mod fuzzing;
pub mod handshake;
pub mod limits;
mod message;
mod output;
mod status;
mod tasks;
#[cfg(test)]
mod tests;
pub mod tls;
mod transfer;
mod values;

pub use actors::{ActorAssignment, ActorCallAssignment, ActorCreation};
pub use connection::Connection;
pub use fetch::Fetched;
pub use frames::{FrameReader, FrameWriter};
pub use handshake::{Handshake, Refusal, Role, Welcome};
pub use message::Message;
pub use output::{
    OutputBatch, OutputLine, OUTPUT_BATCH_BYTES, OUTPUT_BATCH_LINES, OUTPUT_LINE_MAX,
    OUTPUT_NAME_MAX,
};
pub use status::{ActorCounts, ClusterStatus, NodeInfo, NodeLoad, NodeStatus, TaskCounts};
pub use tasks::{StoredObject, TaskAssignment, TaskOutcome, TaskSubmission, WireArg};
pub use transfer::{encode_object_chunk, encode_object_data, ChunkAssembler, MAX_OBJECT};
