//! The handshake as a [`Connection`] runs it: the connecting side's hello and proof, the
//! accepting side's checks, challenge and welcome, and the refusal that tells a peer why.

use std::time::Duration;

use futures::StreamExt;
use tokio::io::AsyncReadExt;
use tokio::net::TcpStream;

use super::{hello_prefix, nonce, Handshake, Refusal, Role, Side, Transcript, Welcome};
use crate::cluster::proto::frames::is_too_large;
use crate::cluster::proto::{
    tls, Connection, HANDSHAKE_MAX_FRAME, HANDSHAKE_TIMEOUT, PROTOCOL_VERSION,
};
use crate::error::{Error, ErrorKind, Result};

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

impl Connection {
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
            let hint = match tls::current() {
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
        let client = nonce()?;
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
        match hello_prefix(&payload) {
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
        let server = nonce()?;
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

    /// Tells the peer why it is refused, closes the connection and returns the error to log.
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
}
