//! Fetching an object from the node that holds it: [`Connection::fetch_object`] asks with
//! [`Message::FetchObject`] and reads the answer, one [`Message::ObjectData`] or
//! [`Message::ObjectChunk`]s; a piece bound for a buffer the caller placed ([`Fetched::Placed`])
//! is read from the stream straight into it, the others in place from their frames.

use std::time::Duration;

use tokio::io::AsyncReadExt;

use super::frames::{codec, frame_len, is_too_large, network};
use super::transfer::{ChunkView, FrameStart, PieceHeader, CHUNK_HEADER_MAX};
use super::{ChunkAssembler, Connection, FrameReader, Message};
use crate::error::{Error, ErrorKind, Result};
use crate::object::ObjectId;

/// A fetched value: in a buffer of its own, or in the one the caller placed it in.
#[derive(Debug)]
pub enum Fetched<B> {
    /// A new buffer.
    Bytes(Vec<u8>),
    /// The caller's buffer, filled.
    Placed(B),
}

impl FrameReader {
    /// Reads until the start of the next frame says whether it is a [`Message::ObjectChunk`]:
    /// then its header, with the piece still unread (see [`read_piece`](Self::read_piece)).
    /// `None`: another message, to read with [`next_frame`](Self::next_frame). Each read must
    /// end by `deadline`. Not cancel-safe (a fetch that gives up drops the connection).
    async fn peek_piece(&mut self, deadline: tokio::time::Instant) -> Result<Option<PieceHeader>> {
        loop {
            let buffered = self.frames.read_buffer();
            let mut want = 4 + CHUNK_HEADER_MAX;
            if let Some(frame) = frame_len(buffered) {
                let start = &buffered[4..buffered.len().min(4 + frame)];
                match PieceHeader::parse(start) {
                    FrameStart::Piece(h) if h.header_len as u64 + h.len == frame as u64 => {
                        return Ok(Some(h))
                    }
                    FrameStart::NeedMore if start.len() < frame.min(CHUNK_HEADER_MAX) => {
                        want = 4 + frame.min(CHUNK_HEADER_MAX);
                    }
                    _ => return Ok(None),
                }
            }
            // Only as much as the header can take: the piece should go where it belongs.
            let mut more = [0u8; 4 + CHUNK_HEADER_MAX];
            let room = want.saturating_sub(buffered.len()).clamp(1, more.len());
            let n =
                tokio::time::timeout_at(deadline, self.frames.get_mut().read(&mut more[..room]))
                    .await
                    .map_err(|_| self.silent())?
                    .map_err(|e| network(format!("reading from {}", self.peer), e))?;
            if n == 0 {
                return Err(self.closed());
            }
            self.frames.read_buffer_mut().extend_from_slice(&more[..n]);
        }
    }

    /// Reads the piece of the chunk `header` (just returned by [`peek_piece`](Self::peek_piece))
    /// into `dest`, which has exactly its length: what is buffered is copied, the rest read
    /// from the stream straight into `dest`.
    async fn read_piece(
        &mut self,
        header: &PieceHeader,
        dest: &mut [u8],
        deadline: tokio::time::Instant,
    ) -> Result<()> {
        use bytes::Buf;
        let buffered = self.frames.read_buffer_mut();
        buffered.advance(4 + header.header_len);
        let early = buffered.len().min(dest.len());
        dest[..early].copy_from_slice(&buffered[..early]);
        buffered.advance(early);
        tokio::time::timeout_at(
            deadline,
            self.frames.get_mut().read_exact(&mut dest[early..]),
        )
        .await
        .map_err(|_| self.silent())?
        .map_err(|e| network(format!("reading from {}", self.peer), e))?;
        Ok(())
    }

    /// The next frame, after [`peek_piece`](Self::peek_piece) said it is no chunk: decoded from
    /// what is buffered when it is all there, read as usual otherwise.
    async fn next_frame(&mut self, deadline: tokio::time::Instant) -> Result<bytes::BytesMut> {
        let max = self.frames.decoder().max_frame_length();
        let buffered = self.frames.read_buffer();
        if frame_len(buffered).is_none_or(|frame| buffered.len() - 4 < frame) {
            let left = deadline.saturating_duration_since(tokio::time::Instant::now());
            return self.recv_frame_timeout(left).await;
        }
        // A codec of its own, for a whole frame only: decoding consumes the length prefix,
        // and the stream's codec, which keeps no state between whole frames, must see a
        // partial frame from its start.
        match tokio_util::codec::Decoder::decode(&mut codec(max), self.frames.read_buffer_mut()) {
            Ok(Some(frame)) => Ok(frame),
            Ok(None) => {
                let left = deadline.saturating_duration_since(tokio::time::Instant::now());
                self.recv_frame_timeout(left).await
            }
            Err(e) if is_too_large(&e) => Err(Error::new(
                ErrorKind::Protocol,
                format!("{} sent a frame larger than {max} bytes", self.peer),
            )),
            Err(e) => Err(network(format!("reading from {}", self.peer), e)),
        }
    }

    fn silent(&self) -> Error {
        Error::new(
            ErrorKind::Network,
            format!("{} did not answer in time", self.peer),
        )
    }

    fn closed(&self) -> Error {
        Error::new(
            ErrorKind::Network,
            format!("{} closed the connection", self.peer),
        )
    }
}

impl Connection {
    /// Asks for object `id` with [`Message::FetchObject`] and reads the answer: the value (from
    /// one [`Message::ObjectData`] or assembled from [`Message::ObjectChunk`]s into one buffer),
    /// or the peer's error. Each frame must arrive within `timeout`. An error of kind
    /// [`ErrorKind::Network`] or [`ErrorKind::Protocol`] leaves the connection unusable.
    pub async fn fetch_object(&mut self, id: ObjectId, timeout: Duration) -> Result<Vec<u8>> {
        match self
            .fetch_object_into(id, timeout, |_| None::<Vec<u8>>)
            .await?
        {
            Fetched::Bytes(bytes) | Fetched::Placed(bytes) => Ok(bytes),
        }
    }

    /// [`fetch_object`](Self::fetch_object), writing a value that comes in pieces into the
    /// buffer `place(total)` returns (a block of the node's arena, say) instead of a new one,
    /// when it returns one of exactly `total` bytes.
    pub async fn fetch_object_into<B: AsMut<[u8]>>(
        &mut self,
        id: ObjectId,
        timeout: Duration,
        place: impl FnOnce(u64) -> Option<B>,
    ) -> Result<Fetched<B>> {
        self.send(&Message::FetchObject { id }).await?;
        let mut place = Some(place);
        let mut assembler: Option<ChunkAssembler> = None;
        // The placed buffer and how much of it is filled.
        let mut placed: Option<(B, u64)> = None;
        let peer = self.peer_addr();
        let protocol = |m: String| Err(Error::new(ErrorKind::Protocol, format!("{peer} {m}")));
        loop {
            let deadline = tokio::time::Instant::now() + timeout;
            // A piece bound for a placed buffer goes there straight from the stream.
            if let Some(h) = self.reader.peek_piece(deadline).await? {
                if h.id != id {
                    return protocol(format!("sent object {} for a fetch of {id}", h.id));
                }
                if assembler.is_none() && placed.is_none() {
                    match place.take().and_then(|p| p(h.total)) {
                        Some(mut b) => {
                            if b.as_mut().len() as u64 == h.total {
                                placed = Some((b, 0));
                            } else {
                                assembler = Some(ChunkAssembler::new(id, h.total)?);
                            }
                        }
                        None => assembler = Some(ChunkAssembler::new(id, h.total)?),
                    }
                }
                if let Some((buf, filled)) = placed.as_mut() {
                    let size = buf.as_mut().len() as u64;
                    let end = h.offset.checked_add(h.len);
                    if h.total != size || h.offset != *filled || end.is_none_or(|e| e > size) {
                        return protocol(format!(
                            "sent a piece of object {id} at {} (of {}) out of order: expected {filled} of {size}",
                            h.offset, h.total
                        ));
                    }
                    let dest = &mut buf.as_mut()[h.offset as usize..][..h.len as usize];
                    self.reader.read_piece(&h, dest, deadline).await?;
                    *filled += h.len;
                    if *filled == size {
                        if let Some((b, _)) = placed.take() {
                            return Ok(Fetched::Placed(b));
                        }
                    }
                    continue;
                }
            }
            let started = assembler.is_some() || placed.is_some();
            let frame = self.reader.next_frame(deadline).await?;
            // Other pieces are read in place, copied once into where the value goes.
            let Some(chunk) = ChunkView::parse(&frame) else {
                match self.reader.decode(&frame)? {
                    Message::ObjectData { id: got, bytes } if got == id && !started => {
                        return Ok(Fetched::Bytes(bytes))
                    }
                    Message::Failed { error } if !started => return Err(error),
                    other => {
                        return protocol(format!(
                            "answered FetchObject with a {} message",
                            other.name()
                        ))
                    }
                }
            };
            // A chunk whose header `peek_piece` could not read is malformed; a well-formed one
            // gets here only for an assembler.
            let Some(a) = assembler.as_mut() else {
                return protocol(format!("sent a malformed piece of object {id}"));
            };
            if a.add(chunk.id, chunk.offset, chunk.total, chunk.bytes)? {
                let bytes = assembler.take().map(ChunkAssembler::finish);
                return Ok(Fetched::Bytes(bytes.unwrap_or_default()));
            }
        }
    }
}
