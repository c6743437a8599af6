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
}

/// The error of a remote call. `Display` says what failed; [`source`](std::error::Error::source)
/// gives the cause when another failure led to this one.
#[derive(Clone)]
pub struct Error(Arc<Inner>);

#[derive(Serialize, Deserialize)]
struct Inner {
    kind: ErrorKind,
    message: String,
    source: Option<Error>,
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

impl Serialize for Error {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        self.0.serialize(s)
    }
}

impl<'de> Deserialize<'de> for Error {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        Inner::deserialize(d).map(|i| Error(Arc::new(i)))
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
}
