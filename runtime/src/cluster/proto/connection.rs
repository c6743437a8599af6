//! A [`Connection`]: a TCP stream (optionally inside TLS) or an in-process link, cut into
//! frames; how it is opened (connecting with retries when a daemon sheds load, accepting) and
//! the calls that go to its two halves.

use std::fmt;
use std::net::SocketAddr;
use std::time::Duration;

use tokio::net::TcpStream;
use tokio_util::codec::{FramedRead, FramedWrite};

use super::frames::{codec, network, ReadStream, WriteStream};
use super::{
    FrameReader, FrameWriter, Message, Role, Welcome, CONNECT_TIMEOUT, HANDSHAKE_MAX_FRAME,
    HANDSHAKE_TIMEOUT, MAX_FRAME,
};
use crate::error::{Error, ErrorKind, Result};
use crate::object::ObjectId;

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

/// One authenticated (or authenticating) connection carrying [`Message`]s: over TCP, or over
/// an in-process pipe between the head and the node of the same daemon.
pub struct Connection {
    pub(super) reader: FrameReader,
    pub(super) writer: FrameWriter,
}

impl fmt::Debug for Connection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Connection")
            .field("peer", &self.reader.peer)
            .field("local", &self.reader.local)
            .finish()
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
