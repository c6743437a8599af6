//! The decoders of a peer's bytes that are private to this module, opened to the fuzz targets
//! in the repository's `fuzz/` directory (feature `fuzzing`, off by default; re-exported as
//! `raykit::__fuzz`). Nothing here decodes differently from the daemons: each function calls
//! the production code as it is.
//!
//! The public decoders need no wrapper: [`Message::decode`], [`Handshake::decode`],
//! [`hello_prefix`](super::handshake::hello_prefix), the [`Error`](crate::Error) type's serde
//! form, [`Connection::recv_values`], [`Connection::fetch_object_into`],
//! [`Connection::accept_handshake`] and [`Connection::handshake`]. What is added is a
//! [`Connection`] that reads given bytes ([`stream`]) and the two frame-start parsers.

use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};

use super::transfer::{ChunkView, FrameStart, PieceHeader};
use super::*;
use crate::object::ObjectId;

/// What the first bytes of a frame say (the private `PieceHeader::parse`'s answer).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PieceStart {
    /// An [`Message::ObjectChunk`]'s fields, read before its piece.
    Piece {
        /// The object.
        id: ObjectId,
        /// Where the piece goes.
        offset: u64,
        /// The size of the whole value.
        total: u64,
        /// The piece's length.
        len: u64,
        /// How many bytes of the frame come before the piece.
        header_len: usize,
    },
    /// Too few bytes to tell.
    NeedMore,
    /// Another message, or a malformed one.
    Other,
}

/// Reads the header of an object chunk from `start`, the first bytes of a frame's payload, as a
/// fetch does before the piece arrives.
pub fn piece_header(start: &[u8]) -> PieceStart {
    match PieceHeader::parse(start) {
        FrameStart::Piece(h) => PieceStart::Piece {
            id: h.id,
            offset: h.offset,
            total: h.total,
            len: h.len,
            header_len: h.header_len,
        },
        FrameStart::NeedMore => PieceStart::NeedMore,
        FrameStart::Other => PieceStart::Other,
    }
}

/// Reads a whole frame's payload as an [`Message::ObjectChunk`] in place, as a fetch does:
/// its id, offset, total and the piece borrowed from `frame`; `None` for any other frame.
pub fn chunk_view(frame: &[u8]) -> Option<(ObjectId, u64, u64, &[u8])> {
    ChunkView::parse(frame).map(|c| (c.id, c.offset, c.total, c.bytes))
}

/// The bytes a [`stream`] connection wrote.
#[derive(Debug, Clone, Default)]
pub struct Written(Arc<Mutex<Vec<u8>>>);

impl Written {
    /// Everything written so far, framed as on the wire.
    pub fn bytes(&self) -> Vec<u8> {
        self.0.lock().map(|b| b.clone()).unwrap_or_default()
    }
}

impl tokio::io::AsyncWrite for Written {
    fn poll_write(
        self: Pin<&mut Self>,
        _: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        if let Ok(mut b) = self.0.lock() {
            b.extend_from_slice(buf);
        }
        Poll::Ready(Ok(buf.len()))
    }

    fn poll_flush(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }

    fn poll_shutdown(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }
}

/// Hands out `input` at most `max_read` bytes per read (at least one), as a socket may split
/// what a peer sent; then the end of the stream.
struct Chunked {
    input: Vec<u8>,
    at: usize,
    max_read: usize,
}

impl tokio::io::AsyncRead for Chunked {
    fn poll_read(
        mut self: Pin<&mut Self>,
        _: &mut Context<'_>,
        buf: &mut tokio::io::ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let rest = &self.input[self.at..];
        let n = rest.len().min(buf.remaining()).min(self.max_read.max(1));
        buf.put_slice(&rest[..n]);
        self.at += n;
        Poll::Ready(Ok(()))
    }
}

/// A connection that reads `input` as a peer's bytes (at most `max_read` bytes per read, then
/// the peer closes) and records what it writes. `authenticated` gives it the frame limit of a
/// peer that proved the token ([`MAX_FRAME`]); without it, the handshake's
/// ([`HANDSHAKE_MAX_FRAME`]).
pub fn stream(input: Vec<u8>, max_read: usize, authenticated: bool) -> (Connection, Written) {
    let written = Written::default();
    let address = SocketAddr::from(([127, 0, 0, 1], 7));
    let reader = Chunked {
        input,
        at: 0,
        max_read,
    };
    let mut conn = Connection::from_halves(
        Box::new(reader),
        Box::new(written.clone()),
        address,
        address,
    );
    if authenticated {
        conn.authenticated();
    }
    (conn, written)
}

/// Runs `future` to its end on this thread's runtime (current-thread, with timers), built on
/// first use.
pub fn block_on<F: std::future::Future>(future: F) -> F::Output {
    thread_local! {
        static RUNTIME: tokio::runtime::Runtime = tokio::runtime::Builder::new_current_thread()
            .enable_time()
            .build()
            .expect("a current-thread runtime");
    }
    RUNTIME.with(|rt| rt.block_on(future))
}

/// Decodes a user value (an object, an argument, a result) as every process does: the
/// production decoder of the value codec (`runtime/src/codec.rs`).
pub fn decode_value<T: serde::de::DeserializeOwned + 'static>(bytes: &[u8]) -> crate::Result<T> {
    crate::codec::decode(bytes)
}

/// Encodes a user value as every process does.
pub fn encode_value<T>(value: &T) -> crate::Result<Vec<u8>>
where
    T: serde::Serialize + serde::de::DeserializeOwned + 'static,
{
    crate::codec::encode(value)
}
