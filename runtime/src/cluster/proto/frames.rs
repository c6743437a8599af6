//! Framing: `tokio_util`'s [`LengthDelimitedCodec`] (a 4-byte big-endian length, then the
//! payload) over a connection's two halves, [`FrameReader`] and [`FrameWriter`], with the plain
//! reads and the batching writes of [`Message`]s. Values in pieces ([`values`](super::values)),
//! objects ([`transfer`](super::transfer), [`fetch`](super::fetch)) and the handshake
//! ([`handshake`](super::handshake)) add their own methods to these halves.

use std::fmt;
use std::io;
use std::net::SocketAddr;
use std::time::Duration;

use bytes::Bytes;
use futures::{SinkExt, StreamExt};
use tokio_util::codec::{FramedRead, FramedWrite, LengthDelimitedCodec, LengthDelimitedCodecError};

use super::values::ValuePieces;
use super::Message;
use crate::error::{Error, ErrorKind, Result};

pub(super) fn codec(max_frame: usize) -> LengthDelimitedCodec {
    LengthDelimitedCodec::builder()
        .max_frame_length(max_frame)
        .new_codec()
}

/// What a connection reads from: a TCP stream's read half, or one end of an in-process pipe.
pub(super) type ReadStream = Box<dyn tokio::io::AsyncRead + Send + Unpin>;
/// What a connection writes to.
pub(super) type WriteStream = Box<dyn tokio::io::AsyncWrite + Send + Unpin>;

/// The receiving half of a [`Connection`](super::Connection).
pub struct FrameReader {
    pub(super) frames: FramedRead<ReadStream, LengthDelimitedCodec>,
    pub(super) peer: SocketAddr,
    pub(super) local: SocketAddr,
    /// The pieces of values received so far for the next message (see
    /// [`FrameReader::recv_values`]); kept here so that a cancelled read loses nothing.
    pub(super) pieces: Option<ValuePieces>,
}

impl fmt::Debug for FrameReader {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FrameReader")
            .field("peer", &self.peer)
            .finish()
    }
}

/// The sending half of a [`Connection`](super::Connection).
pub struct FrameWriter {
    pub(super) frames: FramedWrite<WriteStream, LengthDelimitedCodec>,
    pub(super) peer: SocketAddr,
}

impl fmt::Debug for FrameWriter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FrameWriter")
            .field("peer", &self.peer)
            .finish()
    }
}

/// Serializes into the end of a connection's write buffer.
struct InBuffer<'a>(&'a mut bytes::BytesMut);

impl postcard::ser_flavors::Flavor for InBuffer<'_> {
    type Output = ();

    fn try_push(&mut self, data: u8) -> postcard::Result<()> {
        self.0.extend_from_slice(&[data]);
        Ok(())
    }

    fn try_extend(&mut self, data: &[u8]) -> postcard::Result<()> {
        self.0.extend_from_slice(data);
        Ok(())
    }

    fn finalize(self) -> postcard::Result<()> {
        Ok(())
    }
}

/// The payload length of the frame at the start of `buffered` (the codec's 4-byte big-endian
/// prefix), once the prefix is there.
pub(super) fn frame_len(buffered: &[u8]) -> Option<usize> {
    let prefix: [u8; 4] = buffered.get(..4)?.try_into().ok()?;
    Some(u32::from_be_bytes(prefix) as usize)
}

pub(super) fn network(what: String, e: io::Error) -> Error {
    Error::new(ErrorKind::Network, format!("{what}: {e}"))
}

pub(super) fn is_too_large(e: &io::Error) -> bool {
    e.get_ref()
        .is_some_and(|inner| inner.is::<LengthDelimitedCodecError>())
}

impl FrameReader {
    /// The next message. Cancel-safe: a message is never half-read when the future is dropped.
    /// The peer closing the connection is an error of kind [`ErrorKind::Network`].
    pub async fn recv(&mut self) -> Result<Message> {
        let frame = self.recv_frame().await?;
        self.decode(&frame)
    }

    /// Decodes a frame of this connection as a message.
    pub(super) fn decode(&self, frame: &[u8]) -> Result<Message> {
        Message::decode(frame).map_err(|e| {
            Error::new(
                ErrorKind::Protocol,
                format!("from {}: {}", self.peer, e.message()),
            )
        })
    }

    /// The next frame, not decoded yet. Cancel-safe.
    async fn recv_frame(&mut self) -> Result<bytes::BytesMut> {
        // Frames already buffered come back without touching the socket, so without this a
        // connection that floods its daemon would keep the daemon's thread to itself and starve
        // the others (heartbeats included). Nothing is read before it: cancel-safe.
        tokio::task::consume_budget().await;
        match self.frames.next().await {
            Some(Ok(frame)) => Ok(frame),
            Some(Err(e)) if is_too_large(&e) => Err(Error::new(
                ErrorKind::Protocol,
                format!(
                    "{} sent a frame larger than {} bytes",
                    self.peer,
                    self.frames.decoder().max_frame_length()
                ),
            )),
            Some(Err(e)) => Err(network(format!("reading from {}", self.peer), e)),
            None => Err(Error::new(
                ErrorKind::Network,
                format!("{} closed the connection", self.peer),
            )),
        }
    }

    /// [`recv_frame`](Self::recv_frame), giving up after `timeout`.
    pub(super) async fn recv_frame_timeout(
        &mut self,
        timeout: Duration,
    ) -> Result<bytes::BytesMut> {
        match tokio::time::timeout(timeout, self.recv_frame()).await {
            Ok(r) => r,
            Err(_) => Err(Error::new(
                ErrorKind::Network,
                format!("{} did not answer within {timeout:?}", self.peer),
            )),
        }
    }

    /// [`recv`](Self::recv), giving up after `timeout`.
    pub async fn recv_timeout(&mut self, timeout: Duration) -> Result<Message> {
        match tokio::time::timeout(timeout, self.recv()).await {
            Ok(r) => r,
            Err(_) => Err(Error::new(
                ErrorKind::Network,
                format!("{} did not answer within {timeout:?}", self.peer),
            )),
        }
    }

    /// The peer's address.
    pub fn peer_addr(&self) -> SocketAddr {
        self.peer
    }
}

impl FrameWriter {
    /// Sends one message and flushes.
    pub async fn send(&mut self, msg: &Message) -> Result<()> {
        self.feed(msg).await?;
        self.flush().await
    }

    /// Queues one message without flushing, so that many small messages share one write.
    /// The message is encoded straight into the write buffer, framed as the codec frames a
    /// payload: no buffer of its own to allocate, grow, copy and free.
    pub async fn feed(&mut self, msg: &Message) -> Result<()> {
        if self.frames.write_buffer().len() >= self.frames.backpressure_boundary() {
            self.flush().await?;
        }
        let max = self.frames.encoder().max_frame_length();
        let buf = self.frames.write_buffer_mut();
        let start = buf.len();
        buf.extend_from_slice(&[0; 4]);
        let encoded = postcard::serialize_with_flavor(msg, InBuffer(buf))
            .map_err(|e| Error::serialization(&format!("encoding a {} message", msg.name()), e));
        let len = buf.len() - start - 4;
        match encoded {
            Ok(()) if len <= max => {
                // The codec's framing: a 4-byte big-endian length, then the payload.
                let prefix = (len as u32).to_be_bytes();
                buf[start..start + 4].copy_from_slice(&prefix);
                Ok(())
            }
            Ok(()) => {
                buf.truncate(start);
                Err(Error::new(
                    ErrorKind::System,
                    format!(
                        "a {} message of {len} bytes is larger than a frame",
                        msg.name()
                    ),
                ))
            }
            Err(e) => {
                buf.truncate(start);
                Err(e)
            }
        }
    }

    /// Sends one already encoded message (see
    /// [`encode_object_data`](super::encode_object_data)) and flushes; `name` names it in errors.
    pub async fn send_encoded(&mut self, name: &str, payload: Vec<u8>) -> Result<()> {
        let peer = self.peer;
        self.frames
            .send(Bytes::from(payload))
            .await
            .map_err(|e| network(format!("sending a {name} message to {peer}"), e))
    }

    /// Queues one already encoded message without flushing; `name` names it in errors.
    pub async fn feed_encoded(&mut self, name: &str, payload: Vec<u8>) -> Result<()> {
        let peer = self.peer;
        self.frames
            .feed(Bytes::from(payload))
            .await
            .map_err(|e| network(format!("sending a {name} message to {peer}"), e))
    }

    /// Writes every queued message.
    pub async fn flush(&mut self) -> Result<()> {
        let peer = self.peer;
        SinkExt::<Bytes>::flush(&mut self.frames)
            .await
            .map_err(|e| network(format!("writing to {peer}"), e))
    }
}
