//! Objects in pieces: the encodings of [`Message::ObjectData`] and [`Message::ObjectChunk`]
//! built from a borrowed value (no copy into a message first), the chunk's header read from the
//! start of its frame, the assembly of pieces into one buffer ([`ChunkAssembler`]), and the
//! writer's side that sends a stored value in one frame or in pieces.

use std::fmt;
use std::io;

use bytes::Bytes;
use futures::SinkExt;
use serde::Deserialize;

use super::frames::network;
use super::{FrameWriter, Message, OBJECT_CHUNK};
use crate::error::{Error, ErrorKind, Result};
use crate::object::ObjectId;

/// The encoding of [`Message::ObjectData`] built from a borrowed value, so that sending a large
/// object does not first copy it into a message. Decodes as the message would.
pub fn encode_object_data(id: ObjectId, bytes: &[u8]) -> Result<Vec<u8>> {
    // The message with an empty value ends in the value's length, a one-byte varint 0: keep
    // what precedes it, then write the real length and the bytes.
    let mut out = Message::ObjectData {
        id,
        bytes: Vec::new(),
    }
    .encode()?;
    out.pop();
    out.reserve(bytes.len() + 10);
    let mut len = bytes.len() as u64;
    loop {
        let byte = (len & 0x7f) as u8;
        len >>= 7;
        if len == 0 {
            out.push(byte);
            break;
        }
        out.push(byte | 0x80);
    }
    out.extend_from_slice(bytes);
    Ok(out)
}

/// The encoding of [`Message::ObjectChunk`] built from a borrowed piece of a stored value, so
/// that sending a large object copies each piece once, never the whole value.
pub fn encode_object_chunk(id: ObjectId, offset: u64, total: u64, piece: &[u8]) -> Result<Vec<u8>> {
    let mut out = object_chunk_header(id, offset, total, piece.len())?;
    out.extend_from_slice(piece);
    Ok(out)
}

/// What comes before the piece in the encoding of [`Message::ObjectChunk`]: the variant, the
/// fields, and the piece's length.
pub(super) fn object_chunk_header(
    id: ObjectId,
    offset: u64,
    total: u64,
    piece: usize,
) -> Result<Vec<u8>> {
    // As in `encode_object_data`: the message with an empty piece ends in its length, a
    // one-byte varint 0.
    let mut out = Message::ObjectChunk {
        id,
        offset,
        total,
        bytes: Vec::new(),
    }
    .encode()?;
    out.pop();
    push_varint(&mut out, piece as u64);
    Ok(out)
}

/// A [`Message::ObjectChunk`] read in place from its frame: the piece borrows the frame
/// instead of being copied out of it.
#[derive(Debug, Deserialize)]
pub(super) struct ChunkView<'a> {
    pub(super) id: ObjectId,
    pub(super) offset: u64,
    pub(super) total: u64,
    #[serde(borrow)]
    pub(super) bytes: &'a [u8],
}

/// The variant tag that starts an encoded [`Message::ObjectChunk`].
fn object_chunk_tag() -> Option<u32> {
    static TAG: std::sync::OnceLock<Option<u32>> = std::sync::OnceLock::new();
    *TAG.get_or_init(|| {
        let probe = object_chunk_header(ObjectId::next(), 0, 0, 0).ok()?;
        postcard::take_from_bytes::<u32>(&probe)
            .ok()
            .map(|(t, _)| t)
    })
}

impl<'a> ChunkView<'a> {
    /// The chunk in `frame`, `None` when the frame holds another message (or a malformed
    /// one: decoding it as a message then says what is wrong).
    pub(super) fn parse(frame: &'a [u8]) -> Option<ChunkView<'a>> {
        let (got, rest) = postcard::take_from_bytes::<u32>(frame).ok()?;
        if got != object_chunk_tag()? {
            return None;
        }
        postcard::from_bytes(rest).ok()
    }
}

/// The most bytes the fields of a [`Message::ObjectChunk`] take before its piece: the tag, the
/// id, the offset, the total and the piece's length, each a varint.
pub(super) const CHUNK_HEADER_MAX: usize = 5 + 19 + 3 * 10;

/// The fields of a [`Message::ObjectChunk`] read from the start of its frame, before its piece
/// arrives, so that the piece can be read from the stream straight to where it goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct PieceHeader {
    pub(super) id: ObjectId,
    pub(super) offset: u64,
    pub(super) total: u64,
    /// The piece's length.
    pub(super) len: u64,
    /// How many bytes of the frame come before the piece.
    pub(super) header_len: usize,
}

/// What the first bytes of a frame say.
#[derive(Debug, PartialEq, Eq)]
pub(super) enum FrameStart {
    /// An object chunk's header.
    Piece(PieceHeader),
    /// Not enough bytes yet to tell.
    NeedMore,
    /// Another message (or a malformed one).
    Other,
}

impl PieceHeader {
    /// Reads the header of an object chunk from `start`, the first bytes of a frame.
    pub(super) fn parse(start: &[u8]) -> FrameStart {
        let unexpected_end = |e: &postcard::Error| *e == postcard::Error::DeserializeUnexpectedEnd;
        let rest = match postcard::take_from_bytes::<u32>(start) {
            Ok((tag, rest)) if Some(tag) == object_chunk_tag() => rest,
            Ok(_) => return FrameStart::Other,
            Err(e) if unexpected_end(&e) => return FrameStart::NeedMore,
            Err(_) => return FrameStart::Other,
        };
        // A byte slice is encoded as its length (a varint, as a u64 is) and the bytes.
        match postcard::take_from_bytes::<(ObjectId, u64, u64, u64)>(rest) {
            Ok(((id, offset, total, len), piece)) => FrameStart::Piece(PieceHeader {
                id,
                offset,
                total,
                len,
                header_len: start.len() - piece.len(),
            }),
            Err(e) if unexpected_end(&e) => FrameStart::NeedMore,
            Err(_) => FrameStart::Other,
        }
    }
}

pub(super) fn push_varint(out: &mut Vec<u8>, mut v: u64) {
    loop {
        let byte = (v & 0x7f) as u8;
        v >>= 7;
        if v == 0 {
            out.push(byte);
            return;
        }
        out.push(byte | 0x80);
    }
}

/// Assembles a value that arrives in [`Message::ObjectChunk`]s into one buffer, sized once
/// from the first piece's `total`.
#[derive(Debug)]
pub struct ChunkAssembler {
    id: ObjectId,
    total: u64,
    buf: Vec<u8>,
}

impl ChunkAssembler {
    /// Starts assembling object `id` of `total` bytes (the first piece's header).
    pub fn new(id: ObjectId, total: u64) -> Result<ChunkAssembler> {
        let buf = presized(total, &format_args!("object {id}"))?;
        Ok(ChunkAssembler { id, total, buf })
    }

    /// Adds the next piece; returns the whole value after the last one.
    pub fn add(&mut self, id: ObjectId, offset: u64, total: u64, piece: &[u8]) -> Result<bool> {
        if id != self.id || total != self.total || offset != self.buf.len() as u64 {
            return Err(Error::new(
                ErrorKind::Protocol,
                format!(
                    "piece of object {id} at offset {offset} (of {total}) out of order: expected \
                     object {} at {} (of {})",
                    self.id,
                    self.buf.len(),
                    self.total
                ),
            ));
        }
        if (self.buf.len() + piece.len()) as u64 > self.total {
            return Err(Error::new(
                ErrorKind::Protocol,
                format!("object {id} overflows its {total} bytes"),
            ));
        }
        self.buf.extend_from_slice(piece);
        Ok(self.buf.len() as u64 == self.total)
    }

    /// The object being assembled.
    pub fn id(&self) -> ObjectId {
        self.id
    }

    /// The assembled value.
    pub fn finish(self) -> Vec<u8> {
        self.buf
    }
}

/// The largest object accepted in pieces.
pub const MAX_OBJECT: usize = 1 << 40;

/// An empty buffer with room for a value of `total` bytes that arrives in pieces; `what` names
/// the value in errors.
pub(super) fn presized(total: u64, what: &dyn fmt::Display) -> Result<Vec<u8>> {
    let size = usize::try_from(total)
        .ok()
        .filter(|t| *t <= MAX_OBJECT)
        .ok_or_else(|| {
            Error::new(
                ErrorKind::Protocol,
                format!("{what} of {total} bytes is larger than the {MAX_OBJECT}-byte limit"),
            )
        })?;
    let mut buf = Vec::new();
    buf.try_reserve_exact(size).map_err(|e| {
        Error::new(
            ErrorKind::System,
            format!("cannot allocate {total} bytes for {what}: {e}"),
        )
    })?;
    Ok(buf)
}

impl FrameWriter {
    /// Sends a stored value: one [`Message::ObjectData`] when it fits in [`OBJECT_CHUNK`],
    /// else [`Message::ObjectChunk`]s, each encoded from a slice of `bytes` (one piece in
    /// memory at a time). Flushes at the end.
    pub async fn send_object(&mut self, id: ObjectId, bytes: &[u8]) -> Result<()> {
        if bytes.len() <= OBJECT_CHUNK {
            return self
                .send_encoded("ObjectData", encode_object_data(id, bytes)?)
                .await;
        }
        self.feed_object_chunks(id, bytes).await?;
        self.flush().await
    }

    /// Writes `bytes` as [`Message::ObjectChunk`]s, after what is queued. Each piece goes from
    /// `bytes` to the connection as it is (see [`write_frame`](Self::write_frame)).
    pub async fn feed_object_chunks(&mut self, id: ObjectId, bytes: &[u8]) -> Result<()> {
        let total = bytes.len() as u64;
        let mut offset = 0u64;
        for piece in bytes.chunks(OBJECT_CHUNK) {
            let header = object_chunk_header(id, offset, total, piece.len())?;
            self.write_frame("ObjectChunk", &header, piece).await?;
            offset += piece.len() as u64;
        }
        Ok(())
    }

    /// Writes one frame, `header` then `body`, straight to the connection after what the
    /// codec holds: a large piece is not copied into the codec's buffer first (on the way out
    /// of a node, a value is then copied once, by the kernel).
    async fn write_frame(&mut self, name: &str, header: &[u8], body: &[u8]) -> Result<()> {
        use tokio::io::AsyncWriteExt;
        let peer = self.peer;
        let failed = |e: io::Error| network(format!("sending a {name} message to {peer}"), e);
        let len = u32::try_from(header.len() + body.len()).map_err(|_| {
            Error::new(
                ErrorKind::System,
                format!("a {name} message too large for one frame"),
            )
        })?;
        SinkExt::<Bytes>::flush(&mut self.frames)
            .await
            .map_err(failed)?;
        // The codec's framing: a 4-byte big-endian length, then the payload.
        let mut prefix = Vec::with_capacity(4 + header.len());
        prefix.extend_from_slice(&len.to_be_bytes());
        prefix.extend_from_slice(header);
        let stream = self.frames.get_mut();
        stream.write_all(&prefix).await.map_err(failed)?;
        stream.write_all(body).await.map_err(failed)
    }
}
