//! A TCP connection cut into length-delimited frames, its read and write halves, and the
//! versioned, token-checked handshake.

use super::handshake::{self, Handshake, Side, Transcript};
use super::values::{
    encode_with_values, object_chunk_header, push_varint, ChunkView, FrameStart, PieceHeader,
    ValuePieces, ValueSlots, CHUNK_HEADER_MAX,
};
use super::*;

fn codec(max_frame: usize) -> LengthDelimitedCodec {
    LengthDelimitedCodec::builder()
        .max_frame_length(max_frame)
        .new_codec()
}

/// What a connection reads from: a TCP stream's read half, or one end of an in-process pipe.
type ReadStream = Box<dyn tokio::io::AsyncRead + Send + Unpin>;
/// What a connection writes to.
type WriteStream = Box<dyn tokio::io::AsyncWrite + Send + Unpin>;

/// How many bytes an in-process link buffers each way before its writer waits (as a socket's
/// buffers would).
const LINK_BUFFER: usize = 4 << 20;

/// How often [`Connection::connect`] tries again when a daemon closes the handshake.
const SHED_RETRIES: usize = 3;

/// How one connection attempt failed.
enum Attempt {
    /// Connected, then cut off before the handshake's answer: worth another try.
    Shed(Error),
    /// Anything else: refused, unreachable, a wrong token, another version.
    Failed(Error),
}

/// A fetched value: in a buffer of its own, or in the one the caller placed it in.
#[derive(Debug)]
pub enum Fetched<B> {
    /// A new buffer.
    Bytes(Vec<u8>),
    /// The caller's buffer, filled.
    Placed(B),
}

/// One authenticated (or authenticating) connection carrying [`Message`]s: over TCP, or over
/// an in-process pipe between the head and the node of the same daemon.
pub struct Connection {
    reader: FrameReader,
    writer: FrameWriter,
}

impl fmt::Debug for Connection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Connection")
            .field("peer", &self.reader.peer)
            .field("local", &self.reader.local)
            .finish()
    }
}

/// The receiving half of a [`Connection`].
pub struct FrameReader {
    frames: FramedRead<ReadStream, LengthDelimitedCodec>,
    peer: SocketAddr,
    local: SocketAddr,
    /// The pieces of values received so far for the next message (see
    /// [`FrameReader::recv_values`]); kept here so that a cancelled read loses nothing.
    pieces: Option<ValuePieces>,
}

impl fmt::Debug for FrameReader {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FrameReader")
            .field("peer", &self.peer)
            .finish()
    }
}

/// The sending half of a [`Connection`].
pub struct FrameWriter {
    frames: FramedWrite<WriteStream, LengthDelimitedCodec>,
    peer: SocketAddr,
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
fn frame_len(buffered: &[u8]) -> Option<usize> {
    let prefix: [u8; 4] = buffered.get(..4)?.try_into().ok()?;
    Some(u32::from_be_bytes(prefix) as usize)
}

fn network(what: String, e: io::Error) -> Error {
    Error::new(ErrorKind::Network, format!("{what}: {e}"))
}

impl FrameReader {
    /// The next message. Cancel-safe: a message is never half-read when the future is dropped.
    /// The peer closing the connection is an error of kind [`ErrorKind::Network`].
    pub async fn recv(&mut self) -> Result<Message> {
        let frame = self.recv_frame().await?;
        self.decode(&frame)
    }

    /// Decodes a frame of this connection as a message.
    fn decode(&self, frame: &[u8]) -> Result<Message> {
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
    async fn recv_frame_timeout(&mut self, timeout: Duration) -> Result<bytes::BytesMut> {
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

    /// The next message other than a [`Message::ValueChunk`], with the values that came in
    /// pieces before it in their slots (see [`FrameWriter::feed_with_values`]). Cancel-safe:
    /// the pieces read so far stay with the reader. A piece out of order, or pieces before a
    /// message that has no slot for them, is an error of kind [`ErrorKind::Protocol`] (the
    /// pieces are dropped; the connection is best closed).
    pub async fn recv_values(&mut self) -> Result<Message> {
        loop {
            let msg = match self.recv().await? {
                Message::ValueChunk {
                    task_id,
                    index,
                    offset,
                    total,
                    bytes,
                } => ValuePieces::add(&mut self.pieces, task_id, index, offset, total, bytes)
                    .map(|()| None),
                other => match self.pieces.take() {
                    None => return Ok(other),
                    Some(pieces) => pieces.fill(other).map(Some),
                },
            };
            match msg {
                Ok(Some(msg)) => return Ok(msg),
                Ok(None) => {}
                Err(e) => {
                    self.pieces = None;
                    return Err(Error::new(
                        e.kind(),
                        format!("from {}: {}", self.peer, e.message()),
                    ));
                }
            }
        }
    }

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

    /// The peer's address.
    pub fn peer_addr(&self) -> SocketAddr {
        self.peer
    }
}

/// The error for a handshake answer that is not the expected one: a refusal carries the peer's
/// reason.
fn unexpected_answer(address: &str, answer: Handshake) -> Error {
    match answer {
        Handshake::Refused { refusal, reason } => Error::new(
            refusal.error_kind(),
            format!("{address} refused the connection: {reason}"),
        ),
        other => Error::new(
            ErrorKind::Protocol,
            format!(
                "{address} answered the handshake with a {} frame",
                other.name()
            ),
        ),
    }
}

fn is_too_large(e: &io::Error) -> bool {
    e.get_ref()
        .is_some_and(|inner| inner.is::<LengthDelimitedCodecError>())
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

    /// Sends one already encoded message (see [`encode_object_data`]) and flushes; `name`
    /// names it in errors.
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

    /// Queues `shell` with the list `values` in its value slots: the arguments of a
    /// [`Message::RunTask`], [`Message::RunActorCall`] or [`Message::HostActor`], or the outputs
    /// of an `Ok` [`Message::TaskResult`], whose list in `shell` is empty. Values that fit one
    /// frame ([`OBJECT_CHUNK`] bytes in all) go in it as they would in the message; the others
    /// go first as [`Message::ValueChunk`]s (arguments as one value, their concatenation), each
    /// piece encoded from slices of `values`, so no value is copied whole. With no `values`,
    /// `shell` goes as it is. The receiver reads it with [`FrameReader::recv_values`].
    pub async fn feed_with_values<V: AsRef<[u8]>>(
        &mut self,
        shell: &Message,
        values: &[V],
    ) -> Result<()> {
        if values.is_empty() {
            return self.feed(shell).await;
        }
        let slots = match ValueSlots::of(shell) {
            Some((slots, list)) if list.is_empty() => slots,
            _ => {
                return Err(Error::new(
                    ErrorKind::System,
                    format!(
                        "a {} message cannot be sent with values (it needs an empty value list)",
                        shell.name()
                    ),
                ))
            }
        };
        let size: usize = values.iter().map(|v| v.as_ref().len()).sum();
        let payload = if size <= OBJECT_CHUNK {
            encode_with_values(shell, &slots, values.iter().map(AsRef::as_ref), size)?
        } else if slots.arguments {
            let parts: Vec<&[u8]> = values.iter().map(AsRef::as_ref).collect();
            self.feed_value_chunks(slots.task_id, 0, &parts, size)
                .await?;
            encode_with_values(shell, &slots, std::iter::once(&[][..]), 0)?
        } else {
            // Outputs are objects of their own: each in the frame while room is left, else in
            // pieces.
            let mut inline = 0usize;
            let mut placed: Vec<&[u8]> = Vec::with_capacity(values.len());
            for (index, v) in values.iter().enumerate() {
                let v = v.as_ref();
                if inline + v.len() <= OBJECT_CHUNK {
                    inline += v.len();
                    placed.push(v);
                    continue;
                }
                let index = u32::try_from(index).map_err(|_| {
                    Error::new(
                        ErrorKind::System,
                        format!("a {} message has too many values", shell.name()),
                    )
                })?;
                self.feed_value_chunks(slots.task_id, index, &[v], v.len())
                    .await?;
                placed.push(&[]);
            }
            encode_with_values(shell, &slots, placed.into_iter(), inline)?
        };
        self.feed_encoded(shell.name(), payload).await
    }

    /// [`feed_with_values`](Self::feed_with_values), then flush.
    pub async fn send_with_values<V: AsRef<[u8]>>(
        &mut self,
        shell: &Message,
        values: &[V],
    ) -> Result<()> {
        self.feed_with_values(shell, values).await?;
        self.flush().await
    }

    /// Queues the value made of `parts` (in order, `total` bytes in all) as the
    /// [`Message::ValueChunk`]s of slot `index`, each piece copied once from the parts.
    async fn feed_value_chunks(
        &mut self,
        task_id: TaskId,
        index: u32,
        parts: &[&[u8]],
        total: usize,
    ) -> Result<()> {
        let mut parts = parts.iter().copied();
        let mut rest: &[u8] = &[];
        let mut offset = 0usize;
        while offset < total {
            let len = (total - offset).min(OBJECT_CHUNK);
            // As in `encode_object_chunk`: the message with an empty piece ends in its
            // length, a one-byte varint 0.
            let mut out = Message::ValueChunk {
                task_id,
                index,
                offset: offset as u64,
                total: total as u64,
                bytes: Vec::new(),
            }
            .encode()?;
            out.pop();
            out.reserve(len + 10);
            push_varint(&mut out, len as u64);
            let mut need = len;
            while need > 0 {
                if rest.is_empty() {
                    match parts.next() {
                        Some(p) => rest = p,
                        None => break,
                    }
                    continue;
                }
                let take = rest.len().min(need);
                out.extend_from_slice(&rest[..take]);
                rest = &rest[take..];
                need -= take;
            }
            if need > 0 {
                return Err(Error::new(
                    ErrorKind::System,
                    format!("a value of task {task_id} is shorter than its {total} bytes"),
                ));
            }
            self.feed_encoded("ValueChunk", out).await?;
            offset += len;
        }
        Ok(())
    }

    /// Writes every queued message.
    pub async fn flush(&mut self) -> Result<()> {
        let peer = self.peer;
        SinkExt::<Bytes>::flush(&mut self.frames)
            .await
            .map_err(|e| network(format!("writing to {peer}"), e))
    }
}

fn addresses(stream: &TcpStream) -> Result<(SocketAddr, SocketAddr)> {
    let peer = stream
        .peer_addr()
        .map_err(|e| network("reading the peer address".into(), e))?;
    let local = stream
        .local_addr()
        .map_err(|e| network("reading the local address".into(), e))?;
    Ok((peer, local))
}

impl Connection {
    pub(super) fn new(stream: TcpStream) -> Result<Connection> {
        // Small request/answer messages: do not wait to fill a segment.
        let _ = stream.set_nodelay(true);
        let peer = stream
            .peer_addr()
            .map_err(|e| network("reading the peer address".into(), e))?;
        let local = stream
            .local_addr()
            .map_err(|e| network("reading the local address".into(), e))?;
        let (r, w) = stream.into_split();
        Ok(Connection::from_halves(
            Box::new(r),
            Box::new(w),
            peer,
            local,
        ))
    }

    pub(super) fn from_halves(
        r: ReadStream,
        w: WriteStream,
        peer: SocketAddr,
        local: SocketAddr,
    ) -> Self {
        Connection {
            reader: FrameReader {
                frames: FramedRead::new(r, codec(HANDSHAKE_MAX_FRAME)),
                peer,
                local,
                pieces: None,
            },
            writer: FrameWriter {
                frames: FramedWrite::new(w, codec(HANDSHAKE_MAX_FRAME)),
                peer,
            },
        }
    }

    /// Two ends of an in-process link, for a daemon's node talking to the head in the same
    /// process: the same frames and handshake as over TCP, without the kernel's network stack
    /// (on a small machine, the loopback stack is most of what a small message costs).
    /// `address` is what both ends report as their peer's and their own address.
    pub fn in_process(address: SocketAddr) -> (Connection, Connection) {
        let (a, b) = tokio::io::duplex(LINK_BUFFER);
        let (ar, aw) = tokio::io::split(a);
        let (br, bw) = tokio::io::split(b);
        (
            Connection::from_halves(Box::new(ar), Box::new(aw), address, address),
            Connection::from_halves(Box::new(br), Box::new(bw), address, address),
        )
    }

    /// Connects to `address` (`HOST:PORT`), proves `token` and returns the connection with the
    /// peer's [`Welcome`]. A refusal is an error of kind [`ErrorKind::Unauthorized`] or
    /// [`ErrorKind::Protocol`] that carries the peer's reason.
    pub async fn connect(address: &str, token: &str, role: Role) -> Result<(Connection, Welcome)> {
        // A daemon that sheds load closes connections it has no room for: a peer cut off
        // during its handshake tries again a few times, a little later each time.
        let mut pause = Duration::from_millis(50);
        let mut retries = SHED_RETRIES;
        loop {
            match Connection::connect_once(address, token, role).await {
                Err(Attempt::Shed(e)) if retries > 0 => {
                    tracing::debug!("{address} closed the handshake, trying again: {e}");
                    retries -= 1;
                    tokio::time::sleep(pause).await;
                    pause *= 2;
                }
                Err(Attempt::Shed(e) | Attempt::Failed(e)) => return Err(e),
                Ok(done) => return Ok(done),
            }
        }
    }

    /// One attempt of [`Connection::connect`].
    async fn connect_once(
        address: &str,
        token: &str,
        role: Role,
    ) -> std::result::Result<(Connection, Welcome), Attempt> {
        let stream = match tokio::time::timeout(CONNECT_TIMEOUT, TcpStream::connect(address)).await
        {
            Ok(Ok(s)) => s,
            Ok(Err(e)) => {
                return Err(Attempt::Failed(network(
                    format!("cannot connect to {address}"),
                    e,
                )))
            }
            Err(_) => {
                return Err(Attempt::Failed(Error::new(
                    ErrorKind::Network,
                    format!("cannot connect to {address}: no answer within {CONNECT_TIMEOUT:?}"),
                )))
            }
        };
        let conn = match super::tls::current().map_err(Attempt::Failed)? {
            None => Connection::new(stream).map_err(Attempt::Failed)?,
            Some(tls) => Connection::tls_client(stream, &tls, address)
                .await
                .map_err(Attempt::Failed)?,
        };
        conn.handshake(address, token, role).await.map_err(|e| {
            // Cut off before any answer: the daemon had no room (or went away).
            if e.kind() == ErrorKind::Network {
                Attempt::Shed(e)
            } else {
                Attempt::Failed(e)
            }
        })
    }

    /// Starts TLS as the connecting side.
    async fn tls_client(stream: TcpStream, tls: &super::tls::Tls, address: &str) -> Result<Self> {
        let (peer, local) = addresses(&stream)?;
        let _ = stream.set_nodelay(true);
        let started = tokio::time::timeout(
            HANDSHAKE_TIMEOUT,
            tls.connector.connect(super::tls::server_name(), stream),
        )
        .await;
        match started {
            Ok(Ok(s)) => {
                let (r, w) = tokio::io::split(s);
                Ok(Connection::from_halves(
                    Box::new(r),
                    Box::new(w),
                    peer,
                    local,
                ))
            }
            Ok(Err(e)) => Err(Error::new(
                ErrorKind::Unauthorized,
                format!(
                    "TLS with {address} failed: {e} (TLS must be on at both ends, with \
                     certificates signed by the same CA)"
                ),
            )),
            Err(_) => Err(Error::new(
                ErrorKind::Network,
                format!("TLS with {address}: no answer within {HANDSHAKE_TIMEOUT:?}"),
            )),
        }
    }

    /// Starts TLS as the accepting side.
    async fn tls_server(stream: TcpStream, tls: &super::tls::Tls) -> Result<Self> {
        let (peer, local) = addresses(&stream)?;
        let _ = stream.set_nodelay(true);
        match tokio::time::timeout(HANDSHAKE_TIMEOUT, tls.acceptor.accept(stream)).await {
            Ok(Ok(s)) => {
                let (r, w) = tokio::io::split(s);
                Ok(Connection::from_halves(Box::new(r), Box::new(w), peer, local))
            }
            Ok(Err(e)) => Err(Error::new(
                ErrorKind::Unauthorized,
                format!("refused the connection from {peer}: TLS failed: {e}"),
            )),
            Err(_) => Err(Error::new(
                ErrorKind::Protocol,
                format!("refused the connection from {peer}: no TLS handshake within {HANDSHAKE_TIMEOUT:?}"),
            )),
        }
    }

    /// The connecting side of the handshake on a fresh connection to `address`: proves the
    /// token without sending it, and checks that the peer knows it too.
    pub async fn handshake(
        self,
        address: &str,
        token: &str,
        role: Role,
    ) -> Result<(Connection, Welcome)> {
        let mut conn = self;
        let failed = |e: Error| {
            // A peer that closes in the middle of the handshake, or answers with bytes that are
            // no frame (a TLS alert), may want TLS this side lacks.
            let hint = match super::tls::current() {
                Ok(None) => {
                    " (if the cluster uses TLS, set RAYKIT_TLS_CERT, RAYKIT_TLS_KEY and RAYKIT_TLS_CA)"
                }
                _ => "",
            };
            Error::with_source(
                e.kind(),
                format!("handshake with {address} failed: {e}{hint}"),
                e,
            )
        };
        let client = handshake::nonce()?;
        conn.send_handshake(&Handshake::Hello {
            version: PROTOCOL_VERSION,
            role,
            nonce: client,
        })
        .await
        .map_err(failed)?;
        let server = match conn.recv_handshake().await.map_err(failed)? {
            Handshake::Challenge { nonce } => nonce,
            other => return Err(unexpected_answer(address, other)),
        };
        let transcript = Transcript {
            version: PROTOCOL_VERSION,
            role,
            client,
            server,
        };
        conn.send_handshake(&Handshake::Proof {
            proof: transcript.proof(token, Side::Client),
        })
        .await
        .map_err(failed)?;
        match conn.recv_handshake().await.map_err(failed)? {
            Handshake::Welcome { welcome, proof } => {
                if !transcript.verify(token, Side::Server, &proof) {
                    return Err(Error::new(
                        ErrorKind::Unauthorized,
                        format!(
                            "{address} did not prove the cluster token: it is not this cluster's daemon"
                        ),
                    ));
                }
                if welcome.version != PROTOCOL_VERSION {
                    return Err(Error::new(
                        ErrorKind::Protocol,
                        format!(
                            "{address} speaks raykit protocol version {}, this program speaks {PROTOCOL_VERSION}",
                            welcome.version
                        ),
                    ));
                }
                conn.authenticated();
                Ok((conn, welcome))
            }
            other => Err(unexpected_answer(address, other)),
        }
    }

    async fn send_handshake(&mut self, frame: &Handshake) -> Result<()> {
        let payload = frame.encode()?;
        tokio::time::timeout(
            HANDSHAKE_TIMEOUT,
            self.writer.send_encoded(frame.name(), payload),
        )
        .await
        .unwrap_or_else(|_| {
            Err(Error::new(
                ErrorKind::Network,
                format!("no progress sending the handshake within {HANDSHAKE_TIMEOUT:?}"),
            ))
        })
    }

    async fn recv_handshake(&mut self) -> Result<Handshake> {
        let frame = self.reader.recv_frame_timeout(HANDSHAKE_TIMEOUT).await?;
        Handshake::decode(&frame)
    }

    /// Runs the accepting side of the handshake on a fresh `stream`: reads the peer's hello,
    /// checks its version, challenges it to prove the token and answers `welcome` or a
    /// refusal. On refusal the peer has been told why, the connection is closed and the error
    /// says what happened.
    pub async fn accept(
        stream: TcpStream,
        token: &str,
        welcome: Welcome,
    ) -> Result<(Connection, Role)> {
        let conn = match super::tls::current()? {
            None => Connection::new(stream)?,
            Some(tls) => Connection::tls_server(stream, &tls).await?,
        };
        conn.accept_handshake(token, welcome).await
    }

    /// Refuses a fresh `stream` at once, before any handshake, telling the peer why.
    pub async fn refuse_stream(stream: TcpStream, refusal: Refusal, reason: String) -> Error {
        match Connection::new(stream) {
            Ok(conn) => conn.refuse(refusal, reason).await,
            Err(e) => e,
        }
    }

    /// The next handshake frame from an unauthenticated peer, or the refusal to send it
    /// (`None` when the peer closed the connection: nobody is left to refuse).
    async fn first_frame(
        &mut self,
    ) -> std::result::Result<bytes::BytesMut, Option<(Refusal, String)>> {
        let peer = self.peer_addr();
        match tokio::time::timeout(HANDSHAKE_TIMEOUT, self.reader.frames.next()).await {
            Ok(Some(Ok(frame))) => Ok(frame),
            Ok(Some(Err(e))) if is_too_large(&e) => Err(Some((
                Refusal::TooLarge,
                format!("the handshake frame is larger than the {HANDSHAKE_MAX_FRAME}-byte limit"),
            ))),
            Ok(Some(Err(e))) => Err(Some((
                Refusal::Malformed,
                format!("handshake with {peer}: {e}"),
            ))),
            Ok(None) => Err(None),
            Err(_) => Err(Some((
                Refusal::Timeout,
                format!("no handshake within {HANDSHAKE_TIMEOUT:?}"),
            ))),
        }
    }

    /// [`Connection::accept`] on a connection made another way (an in-process link).
    pub async fn accept_handshake(
        self,
        token: &str,
        welcome: Welcome,
    ) -> Result<(Connection, Role)> {
        let mut conn = self;
        let payload = match conn.first_frame().await {
            Ok(p) => p,
            Err(Some((refusal, reason))) => return Err(conn.refuse(refusal, reason).await),
            // Gone (a client that gave up, or died): it guessed nothing.
            Err(None) => return Err(conn.gone()),
        };
        // The version first, read from the hello's first bytes: a peer of another version
        // learns why, whatever the rest of its hello holds.
        match handshake::hello_prefix(&payload) {
            Some((0, Some(version))) if version != PROTOCOL_VERSION => {
                let reason = format!(
                    "protocol version mismatch: the peer speaks version {version}, this daemon speaks {PROTOCOL_VERSION}"
                );
                return Err(conn.refuse(Refusal::VersionMismatch, reason).await);
            }
            _ => {}
        }
        let (role, client) = match Handshake::decode(&payload) {
            Ok(Handshake::Hello { role, nonce, .. }) => (role, nonce),
            Ok(other) => {
                let reason = format!("expected a Hello handshake, got a {} frame", other.name());
                return Err(conn.refuse(Refusal::UnexpectedMessage, reason).await);
            }
            Err(e) => {
                let reason = format!("malformed handshake frame: {}", e.message());
                return Err(conn.refuse(Refusal::Malformed, reason).await);
            }
        };
        let server = handshake::nonce()?;
        conn.send_handshake(&Handshake::Challenge { nonce: server })
            .await?;
        let payload = match conn.first_frame().await {
            Ok(p) => p,
            Err(Some((refusal, reason))) => return Err(conn.refuse(refusal, reason).await),
            // Gone (a client that gave up, or died): it guessed nothing.
            Err(None) => return Err(conn.gone()),
        };
        let proof = match Handshake::decode(&payload) {
            Ok(Handshake::Proof { proof }) => proof,
            Ok(other) => {
                let reason = format!("expected a Proof handshake, got a {} frame", other.name());
                return Err(conn.refuse(Refusal::UnexpectedMessage, reason).await);
            }
            Err(e) => {
                let reason = format!("malformed handshake frame: {}", e.message());
                return Err(conn.refuse(Refusal::Malformed, reason).await);
            }
        };
        let transcript = Transcript {
            version: PROTOCOL_VERSION,
            role,
            client,
            server,
        };
        if !transcript.verify(token, Side::Client, &proof) {
            let reason =
                "wrong cluster token (set RAYKIT_TOKEN or RAYKIT_TOKEN_FILE to the cluster's token)"
                    .to_owned();
            return Err(conn.refuse(Refusal::Unauthorized, reason).await);
        }
        conn.send_handshake(&Handshake::Welcome {
            welcome,
            proof: transcript.proof(token, Side::Server),
        })
        .await?;
        conn.authenticated();
        Ok((conn, role))
    }

    /// Tells the peer why it is refused, closes the connection and returns the error to log.
    /// The error of a peer that closed the connection during its handshake.
    fn gone(&self) -> Error {
        Error::new(
            ErrorKind::Network,
            format!(
                "{} closed the connection during the handshake",
                self.peer_addr()
            ),
        )
    }

    async fn refuse(self, refusal: Refusal, reason: String) -> Error {
        let peer = self.peer_addr();
        let Connection { reader, mut writer } = self;
        if let Ok(payload) = (Handshake::Refused {
            refusal,
            reason: reason.clone(),
        })
        .encode()
        {
            let _ =
                tokio::time::timeout(HANDSHAKE_TIMEOUT, writer.send_encoded("Refused", payload))
                    .await;
        }
        // Close our side, then drain what the peer still sends for a moment: closing a socket
        // with unread input resets it, and the peer could lose the refusal before reading it.
        drop(writer);
        let mut rest = reader.frames.into_inner();
        let _ = tokio::time::timeout(Duration::from_millis(500), async {
            let mut buf = vec![0u8; 16 * 1024];
            let mut drained = 0usize;
            while drained < 4 * HANDSHAKE_MAX_FRAME {
                match rest.read(&mut buf).await {
                    Ok(0) | Err(_) => break,
                    Ok(n) => drained += n,
                }
            }
        })
        .await;
        // A peer that went silent guessed nothing: a network failure, which the listener does
        // not count against the peer's address (a thousand slow workers on one loopback
        // address must not lock each other out).
        let kind = match refusal {
            Refusal::Timeout => ErrorKind::Network,
            _ => refusal.error_kind(),
        };
        Error::new(
            kind,
            format!("refused the connection from {peer}: {reason}"),
        )
    }

    pub(super) fn authenticated(&mut self) {
        self.reader
            .frames
            .decoder_mut()
            .set_max_frame_length(MAX_FRAME);
        self.writer
            .frames
            .encoder_mut()
            .set_max_frame_length(MAX_FRAME);
    }

    /// Sends one message and flushes.
    pub async fn send(&mut self, msg: &Message) -> Result<()> {
        self.writer.send(msg).await
    }

    /// Sends one already encoded message (see [`FrameWriter::send_encoded`]).
    pub async fn send_encoded(&mut self, name: &str, payload: Vec<u8>) -> Result<()> {
        self.writer.send_encoded(name, payload).await
    }

    /// Queues one message without flushing (see [`FrameWriter::feed`]).
    pub async fn feed(&mut self, msg: &Message) -> Result<()> {
        self.writer.feed(msg).await
    }

    /// Writes every queued message.
    pub async fn flush(&mut self) -> Result<()> {
        self.writer.flush().await
    }

    /// The next message (see [`FrameReader::recv`]).
    pub async fn recv(&mut self) -> Result<Message> {
        self.reader.recv().await
    }

    /// The next message, giving up after `timeout`.
    pub async fn recv_timeout(&mut self, timeout: Duration) -> Result<Message> {
        self.reader.recv_timeout(timeout).await
    }

    /// Sends `shell` with `values` in its value slots, large ones in pieces, and flushes (see
    /// [`FrameWriter::feed_with_values`]).
    pub async fn send_with_values<V: AsRef<[u8]>>(
        &mut self,
        shell: &Message,
        values: &[V],
    ) -> Result<()> {
        self.writer.send_with_values(shell, values).await
    }

    /// The next message with the values that came before it in pieces (see
    /// [`FrameReader::recv_values`]).
    pub async fn recv_values(&mut self) -> Result<Message> {
        self.reader.recv_values().await
    }

    /// Sends a stored value in one frame or in pieces (see [`FrameWriter::send_object`]).
    pub async fn send_object(&mut self, id: ObjectId, bytes: &[u8]) -> Result<()> {
        self.writer.send_object(id, bytes).await
    }

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

    /// Sends `msg` and waits at most `timeout` for the answer.
    pub async fn request(&mut self, msg: &Message, timeout: Duration) -> Result<Message> {
        self.send(msg).await?;
        self.recv_timeout(timeout).await
    }

    /// The peer's address.
    pub fn peer_addr(&self) -> SocketAddr {
        self.reader.peer
    }

    /// This side's address: the interface the peer reaches us on.
    pub fn local_addr(&self) -> SocketAddr {
        self.reader.local
    }

    /// Splits the connection so that one task reads while another writes.
    pub fn split(self) -> (FrameReader, FrameWriter) {
        (self.reader, self.writer)
    }
}
