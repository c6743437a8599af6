//! The handshake: its own small message type, decoded only before a peer has proven the token,
//! with what its frames carry (the peer's [`Role`], a [`Refusal`], the [`Welcome`]), and the
//! challenge-response that proves the token without sending it. How a
//! [`Connection`](super::Connection) runs it, on either side, is in `exchange`.
//!
//! ```text
//! connecting side                         accepting side
//!   Hello { version, role, nonce_c }  ->
//!                                     <-  Challenge { nonce_s }        (or Refused: version)
//!   Proof { hmac(token, client, ..) } ->
//!                                     <-  Welcome { welcome, proof }   (or Refused: token)
//! ```
//!
//! Each proof is an HMAC-SHA256 keyed by the token over both nonces, the version and the role,
//! with a different label per side: a listener learns nothing it could replay elsewhere, and a
//! client checks that the daemon it reached knows the token too. Only the hello's variant index
//! and version are read before anything else, so peers of any two versions can still say why
//! they do not match: `Hello` (index 0, version first) and `Refused` (index 2) are frozen.

use hmac::{Hmac, Mac};
use serde::{Deserialize, Serialize};
use sha2::Sha256;

use crate::error::{Error, ErrorKind, Result};
use crate::runtime::NodeId;

mod exchange;
#[cfg(test)]
mod tests;

/// What the connecting side is; the accepting side decides what it may ask for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Role {
    /// A node daemon joining the head (or, later, a peer node fetching objects).
    Node,
    /// A user program connecting to the cluster.
    Driver,
    /// A worker process connecting to its node.
    Worker,
    /// A short-lived tool such as `raykit status` or `raykit stop`.
    Client,
}

/// Why a handshake was refused. New reasons are appended at the end, never inserted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Refusal {
    /// The token was wrong.
    Unauthorized,
    /// The peers speak different protocol versions.
    VersionMismatch,
    /// The first frame could not be decoded as a handshake.
    Malformed,
    /// The first frame was larger than [`HANDSHAKE_MAX_FRAME`](super::HANDSHAKE_MAX_FRAME).
    TooLarge,
    /// The handshake did not arrive within [`HANDSHAKE_TIMEOUT`](super::HANDSHAKE_TIMEOUT).
    Timeout,
    /// The first frame was a valid handshake frame but not a hello.
    UnexpectedMessage,
    /// The peer's address had too many handshakes refused lately; it may try again later.
    RateLimited,
}

impl Refusal {
    /// The error kind a refused peer reports.
    pub fn error_kind(self) -> ErrorKind {
        match self {
            Refusal::Unauthorized => ErrorKind::Unauthorized,
            _ => ErrorKind::Protocol,
        }
    }
}

/// What the accepting side tells a peer that proved the token.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Welcome {
    /// The protocol version of the accepting side (equal to the caller's).
    pub version: u32,
    /// The node the accepting daemon runs.
    pub node_id: NodeId,
    /// Whether the accepting daemon is the head.
    pub head: bool,
}

/// The bytes of a nonce.
pub const NONCE_LEN: usize = 32;

/// The bytes of a proof (an HMAC-SHA256).
pub const PROOF_LEN: usize = 32;

/// A nonce: fresh random bytes, one per side and connection.
pub type Nonce = [u8; NONCE_LEN];

/// A proof that the sender knows the token.
pub type Proof = [u8; PROOF_LEN];

/// Every frame of the handshake. Variant indices are the protocol: `Hello` (with its version
/// first) and `Refused` keep their places forever.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Handshake {
    /// Connecting side, first frame.
    Hello {
        /// The protocol version the sender speaks.
        version: u32,
        /// What the sender is.
        role: Role,
        /// The sender's nonce.
        nonce: Nonce,
    },
    /// Accepting side: the token was proven; `proof` proves the accepting side knows it too.
    Welcome {
        /// What the accepting daemon is.
        welcome: Welcome,
        /// `hmac(token, "raykit server", ...)`.
        proof: Proof,
    },
    /// Accepting side: the handshake failed; the connection closes after this frame.
    Refused {
        /// The reason, for programs.
        refusal: Refusal,
        /// The reason, for people.
        reason: String,
    },
    /// Accepting side, answering a hello of the right version: prove the token over this.
    Challenge {
        /// The accepting side's nonce.
        nonce: Nonce,
    },
    /// Connecting side: `hmac(token, "raykit client", ...)`.
    Proof {
        /// The proof.
        proof: Proof,
    },
}

impl Handshake {
    /// The variant's name, for errors.
    pub fn name(&self) -> &'static str {
        match self {
            Handshake::Hello { .. } => "Hello",
            Handshake::Welcome { .. } => "Welcome",
            Handshake::Refused { .. } => "Refused",
            Handshake::Challenge { .. } => "Challenge",
            Handshake::Proof { .. } => "Proof",
        }
    }

    /// The postcard encoding.
    pub fn encode(&self) -> Result<Vec<u8>> {
        postcard::to_allocvec(self)
            .map_err(|e| Error::serialization(&format!("encoding a {} frame", self.name()), e))
    }

    /// Decodes one handshake frame. Only this small type is ever decoded from a peer that has
    /// not proven the token.
    pub fn decode(payload: &[u8]) -> Result<Handshake> {
        postcard::from_bytes(payload).map_err(|e| {
            Error::new(
                ErrorKind::Protocol,
                format!("malformed handshake frame ({} bytes): {e}", payload.len()),
            )
        })
    }
}

/// What the first bytes of a hello say before the rest is decoded: its variant index and,
/// for a `Hello`, the version. `None` when even those cannot be read.
pub fn hello_prefix(payload: &[u8]) -> Option<(u32, Option<u32>)> {
    let (tag, rest) = postcard::take_from_bytes::<u32>(payload).ok()?;
    if tag != 0 {
        return Some((tag, None));
    }
    let (version, _) = postcard::take_from_bytes::<u32>(rest).ok()?;
    Some((tag, Some(version)))
}

/// A fresh random nonce.
pub fn nonce() -> Result<Nonce> {
    let mut n = [0u8; NONCE_LEN];
    getrandom::fill(&mut n).map_err(|e| {
        Error::new(
            ErrorKind::System,
            format!("cannot draw random bytes for the handshake: {e}"),
        )
    })?;
    Ok(n)
}

/// Which side a proof comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Side {
    /// The connecting side.
    Client,
    /// The accepting side.
    Server,
}

/// The transcript both proofs are computed over.
#[derive(Debug, Clone, Copy)]
pub struct Transcript {
    /// The protocol version of the hello.
    pub version: u32,
    /// The role of the hello.
    pub role: Role,
    /// The connecting side's nonce.
    pub client: Nonce,
    /// The accepting side's nonce.
    pub server: Nonce,
}

impl Transcript {
    fn mac(&self, token: &str, side: Side) -> Hmac<Sha256> {
        let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(token.as_bytes())
            .expect("HMAC accepts keys of any length");
        mac.update(match side {
            Side::Client => b"raykit client proof\0",
            Side::Server => b"raykit server proof\0",
        });
        mac.update(&self.version.to_le_bytes());
        mac.update(&[self.role as u8]);
        mac.update(&self.client);
        mac.update(&self.server);
        mac
    }

    /// The proof `side` sends for this transcript.
    pub fn proof(&self, token: &str, side: Side) -> Proof {
        self.mac(token, side).finalize().into_bytes().into()
    }

    /// Whether `proof` is `side`'s proof for this transcript (compared in constant time).
    pub fn verify(&self, token: &str, side: Side, proof: &Proof) -> bool {
        self.mac(token, side).verify_slice(proof).is_ok()
    }
}
