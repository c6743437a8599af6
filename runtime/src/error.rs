//! Errors: one `Error` type for every failure a remote call can report.
//!
//! An `Error` is cheap to clone (it is shared behind an `Arc`), because one failed object can be
//! read by many callers, and it keeps its cause: a task whose argument failed carries the
//! argument's error as its `source()`.

use std::fmt;
use std::sync::Arc;

use serde::{Deserialize, Serialize};

/// What went wrong, in a form a program can match on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[non_exhaustive]
pub enum ErrorKind {
    /// The task or actor method panicked; the message names it and carries the panic message.
    TaskPanicked,
    /// An argument of the task failed; the argument's error is the `source()`.
    DependencyFailed,
    /// The request asks for resources that no node declares (or more than any node has).
    ResourceUnavailable,
    /// The actor is dead: killed, failed to construct, or lost.
    ActorDied,
    /// No actor is registered under the requested name (or it has another type).
    ActorNotFound,
    /// A value could not be serialized or deserialized.
    Serialization,
    /// `init_with` was called while a runtime with another configuration is running.
    AlreadyInitialized,
    /// The runtime was shut down before the work could run.
    Shutdown,
    /// A ref names an object that no longer exists here.
    ObjectLost,
    /// No remote function with this name is registered, or its signature differs.
    VersionSkew,
    /// The configuration is invalid or asks for something this build cannot do.
    Config,
    /// The runtime could not get what it needed from the system (threads, memory).
    System,
    /// A peer did not prove the cluster token, or this side's token was refused.
    Unauthorized,
    /// A peer broke the wire protocol: a malformed or oversized frame, an unexpected message, or
    /// a protocol version this build does not speak.
    Protocol,
    /// A connection to a cluster process could not be made or was lost.
    Network,
    /// The work was stopped before it finished: its job ended (the driver exited or died).
    Cancelled,
    /// A `get` with a timeout ([`get_timeout`](crate::get_timeout)) gave up before the object
    /// was ready.
    Timeout,
}

/// The error of a remote call. `Display` says what failed; [`source`](std::error::Error::source)
/// gives the cause when another failure led to this one.
#[derive(Clone)]
pub struct Error(Arc<Inner>);

struct Inner {
    kind: ErrorKind,
    message: String,
    source: Option<Error>,
}

/// Dropped link by link, not recursively: however long a chain, dropping it does not go deep.
impl Drop for Inner {
    fn drop(&mut self) {
        let mut next = self.source.take();
        while let Some(Error(arc)) = next {
            match Arc::try_unwrap(arc) {
                Ok(mut inner) => next = inner.source.take(),
                Err(_) => break,
            }
        }
    }
}

/// `Result<T, raykit::Error>`.
pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    /// A new error of `kind` with a message for people.
    pub fn new(kind: ErrorKind, message: impl Into<String>) -> Self {
        Error(Arc::new(Inner {
            kind,
            message: message.into(),
            source: None,
        }))
    }

    /// A new error of `kind` caused by `source`.
    pub fn with_source(kind: ErrorKind, message: impl Into<String>, source: Error) -> Self {
        Error(Arc::new(Inner {
            kind,
            message: message.into(),
            source: Some(source),
        }))
    }

    /// What kind of failure this is.
    pub fn kind(&self) -> ErrorKind {
        self.0.kind
    }

    /// The message of this error alone, without its causes.
    pub fn message(&self) -> &str {
        &self.0.message
    }

    /// The first failure of the chain: the error itself when it has no cause.
    pub fn root_cause(&self) -> &Error {
        let mut e = self;
        while let Some(s) = &e.0.source {
            e = s;
        }
        e
    }

    pub(crate) fn task_panicked(function: &str, payload: &(dyn std::any::Any + Send)) -> Self {
        let msg = panic_message(payload);
        Error::new(
            ErrorKind::TaskPanicked,
            format!("remote function `{function}` panicked: {msg}"),
        )
    }

    pub(crate) fn serialization(what: &str, err: impl fmt::Display) -> Self {
        Error::new(ErrorKind::Serialization, format!("{what}: {err}"))
    }

    /// The error of a call of `function` that cannot run because its argument `arg` (a name
    /// in backticks, or `#N`) failed with `cause`. It names the call, the argument and the
    /// original failure once, and its `source()` is that original (not the calls in between):
    /// however long a chain of dependent calls, every error of it stays the same small size.
    pub(crate) fn dependency_failed(function: &str, arg: &str, cause: &Error) -> Self {
        let original = cause.original();
        let mut message = format!("`{function}` could not run: its argument {arg} failed: ");
        let text = original.message();
        match text.char_indices().nth(ORIGINAL_IN_MESSAGE) {
            Some((cut, _)) => {
                message.push_str(&text[..cut]);
                message.push_str("...");
            }
            None => message.push_str(text),
        }
        Error::with_source(ErrorKind::DependencyFailed, message, original.clone())
    }

    /// The failure a dependency error goes back to: the first error of the chain that is not
    /// a [`ErrorKind::DependencyFailed`] (itself when it is none).
    fn original(&self) -> &Error {
        let mut e = self;
        while e.0.kind == ErrorKind::DependencyFailed {
            match &e.0.source {
                Some(s) => e = s,
                None => break,
            }
        }
        e
    }
}

/// How many characters of the original failure's message a dependency error repeats (the
/// original itself, whole, is its source).
const ORIGINAL_IN_MESSAGE: usize = 512;

/// The text of a panic payload (`panic!("...")` gives `&str` or `String`).
pub(crate) fn panic_message(payload: &(dyn std::any::Any + Send)) -> String {
    if let Some(s) = payload.downcast_ref::<&str>() {
        (*s).to_owned()
    } else if let Some(s) = payload.downcast_ref::<String>() {
        s.clone()
    } else {
        "<non-string panic payload>".to_owned()
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0.message)
    }
}

/// Reads like `Display` with the kind, then one line per cause: what a `main` that returns
/// `raykit::Result` prints when it fails.
impl fmt::Debug for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} ({:?})", self.0.message, self.0.kind)?;
        let mut cause = self.0.source.as_ref();
        while let Some(c) = cause {
            write!(f, "\n  caused by: {} ({:?})", c.0.message, c.0.kind)?;
            cause = c.0.source.as_ref();
        }
        Ok(())
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        self.0
            .source
            .as_ref()
            .map(|e| e as &(dyn std::error::Error + 'static))
    }
}

/// The most links of an error chain that cross the wire: an error's own message and up to
/// this many causes, the last one kept being the root cause. Chains made by this crate are
/// short ([`Error::dependency_failed`] keeps one cause); the bound is for what a peer sends.
pub(crate) const MAX_WIRE_CHAIN: usize = 16;

/// The most bytes of one message of an error chain that cross the wire; longer messages are
/// cut (at a character boundary) with `...`.
pub(crate) const MAX_WIRE_MESSAGE: usize = 64 * 1024;

/// One link of an error chain as it crosses the wire.
#[derive(Serialize, Deserialize)]
struct WireLink<'a> {
    kind: ErrorKind,
    #[serde(borrow)]
    message: std::borrow::Cow<'a, str>,
}

fn cut(message: &str) -> std::borrow::Cow<'_, str> {
    if message.len() <= MAX_WIRE_MESSAGE {
        return message.into();
    }
    let mut end = MAX_WIRE_MESSAGE - 3;
    while !message.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}...", &message[..end]).into()
}

/// An error crosses the wire as a flat list of links, outermost first: no recursion, so no
/// input can make decoding go deep, and at most 16 links of at most
/// 64 KiB each, so no error grows a frame without bound. A longer chain
/// keeps its first links and its root cause.
impl Serialize for Error {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeSeq;
        let mut chain = vec![self];
        let mut e = self;
        while let Some(next) = &e.0.source {
            chain.push(next);
            e = next;
        }
        if chain.len() > MAX_WIRE_CHAIN {
            let root = chain[chain.len() - 1];
            chain.truncate(MAX_WIRE_CHAIN - 1);
            chain.push(root);
        }
        let mut seq = s.serialize_seq(Some(chain.len()))?;
        for link in chain {
            seq.serialize_element(&WireLink {
                kind: link.0.kind,
                message: cut(&link.0.message),
            })?;
        }
        seq.end()
    }
}

impl<'de> Deserialize<'de> for Error {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct Chain;
        impl<'de> serde::de::Visitor<'de> for Chain {
            type Value = Error;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "an error chain of 1 to {MAX_WIRE_CHAIN} links")
            }
            fn visit_seq<A: serde::de::SeqAccess<'de>>(
                self,
                mut seq: A,
            ) -> Result<Error, A::Error> {
                use serde::de::Error as _;
                let mut links: Vec<(ErrorKind, String)> = Vec::new();
                while let Some(link) = seq.next_element::<WireLink<'de>>()? {
                    if links.len() == MAX_WIRE_CHAIN {
                        return Err(A::Error::custom(format!(
                            "an error chain longer than {MAX_WIRE_CHAIN} links"
                        )));
                    }
                    if link.message.len() > MAX_WIRE_MESSAGE {
                        return Err(A::Error::custom(format!(
                            "an error message longer than {MAX_WIRE_MESSAGE} bytes"
                        )));
                    }
                    links.push((link.kind, link.message.into_owned()));
                }
                let mut error: Option<Error> = None;
                for (kind, message) in links.into_iter().rev() {
                    error = Some(Error(Arc::new(Inner {
                        kind,
                        message,
                        source: error,
                    })));
                }
                error.ok_or_else(|| A::Error::custom("an empty error chain"))
            }
        }
        d.deserialize_seq(Chain)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_reads_like_display_with_the_kind_and_the_causes() {
        let root = Error::new(
            ErrorKind::TaskPanicked,
            "remote function `f` panicked: boom",
        );
        let e = Error::dependency_failed("g", "`x`", &root);
        assert_eq!(
            format!("{e:?}"),
            "`g` could not run: its argument `x` failed: remote function `f` panicked: boom \
             (DependencyFailed)\n  caused by: remote function `f` panicked: boom (TaskPanicked)"
        );
        assert_eq!(format!("{root:?}"), format!("{root} (TaskPanicked)"));
    }

    fn chain(len: usize) -> Error {
        let mut e = Error::new(ErrorKind::TaskPanicked, "root");
        for i in 1..len {
            e = Error::with_source(ErrorKind::DependencyFailed, format!("level {i}"), e);
        }
        e
    }

    fn links(e: &Error) -> Vec<(ErrorKind, String)> {
        let mut out = vec![(e.kind(), e.message().to_owned())];
        let mut c = e.0.source.as_ref();
        while let Some(n) = c {
            out.push((n.kind(), n.message().to_owned()));
            c = n.0.source.as_ref();
        }
        out
    }

    #[test]
    fn a_chain_crosses_the_wire_whole_when_short() {
        let e = chain(3);
        let back: Error = postcard::from_bytes(&postcard::to_stdvec(&e).unwrap()).unwrap();
        assert_eq!(links(&back), links(&e));
    }

    #[test]
    fn a_deep_chain_crosses_as_its_first_links_and_its_root_and_drops_without_recursion() {
        // 200,000 levels: dropping or encoding this recursively would overflow the stack.
        let e = chain(200_000);
        let bytes = postcard::to_stdvec(&e).unwrap();
        assert!(bytes.len() < 1024, "{} bytes", bytes.len());
        let back: Error = postcard::from_bytes(&bytes).unwrap();
        let got = links(&back);
        assert_eq!(got.len(), MAX_WIRE_CHAIN);
        assert_eq!(got[0].1, "level 199999");
        assert_eq!(
            got[MAX_WIRE_CHAIN - 1],
            (ErrorKind::TaskPanicked, "root".into())
        );
    }

    #[test]
    fn hostile_error_frames_are_rejected_not_followed() {
        // Item 1 of the hardening issue: an error nested 21,000 times in the old encoding.
        let mut nested = Vec::new();
        for _ in 0..21_000 {
            nested.extend_from_slice(&[0, 0, 1]);
        }
        nested.extend_from_slice(&[0, 0, 0]);
        assert!(postcard::from_bytes::<Error>(&nested).is_err());
        // More links than allowed.
        let mut long = vec![(MAX_WIRE_CHAIN + 1) as u8];
        for _ in 0..=MAX_WIRE_CHAIN {
            long.extend_from_slice(&[0, 1, b'x']);
        }
        assert!(postcard::from_bytes::<Error>(&long).is_err());
        // Exactly the bound is fine.
        long[0] = MAX_WIRE_CHAIN as u8;
        long.truncate(1 + 3 * MAX_WIRE_CHAIN);
        let back: Error = postcard::from_bytes(&long).unwrap();
        assert_eq!(links(&back).len(), MAX_WIRE_CHAIN);
        // A count that promises more links than the bytes hold.
        assert!(postcard::from_bytes::<Error>(&[0xff, 0xff, 0xff, 0x0f, 0, 0]).is_err());
        // An empty chain.
        assert!(postcard::from_bytes::<Error>(&[0]).is_err());
        // A message over the limit is refused; one of ours is cut to it when sent.
        let big = "x".repeat(MAX_WIRE_MESSAGE + 10);
        let bytes = postcard::to_stdvec(&Error::new(ErrorKind::Config, big)).unwrap();
        let back: Error = postcard::from_bytes(&bytes).unwrap();
        assert_eq!(back.message().len(), MAX_WIRE_MESSAGE);
        assert!(back.message().ends_with("..."));
    }
}
