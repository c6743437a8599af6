//! The link-time registry of remote functions.
//!
//! `#[raykit::remote]` registers every function under a stable name (module path and function
//! name) with a hash of its signature. A process that receives a call by name (a worker on a
//! cluster node) finds the function here, decodes the arguments, runs it and encodes the result;
//! a name it lacks, or a hash that differs from the caller's, is a version-skew error.

use std::collections::HashMap;
use std::panic::AssertUnwindSafe;
use std::sync::{Arc, OnceLock};

use futures::future::BoxFuture;
use futures::FutureExt;

use crate::error::{Error, ErrorKind, Result};
use crate::task::TaskSpec;

/// The encoded outputs of one call: one value per output object.
pub type Outputs = Vec<Vec<u8>>;

/// How a registered function is called with encoded arguments.
#[doc(hidden)]
#[derive(Clone, Copy, Debug)]
pub enum Invoke {
    /// A sync function: encoded argument tuple in, one encoded value per output object out.
    Sync(fn(&[u8]) -> Result<Outputs>),
    /// An async function.
    Async(fn(Vec<u8>) -> BoxFuture<'static, Result<Outputs>>),
}

/// A remote function as the registry knows it.
pub struct RemoteFunction {
    spec: &'static TaskSpec,
    invoke: Invoke,
}

impl std::fmt::Debug for RemoteFunction {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RemoteFunction")
            .field("name", &self.spec.name)
            .field(
                "signature_hash",
                &format_args!("{:016x}", self.spec.signature_hash),
            )
            .finish()
    }
}

inventory::collect!(RemoteFunction);

impl RemoteFunction {
    #[doc(hidden)]
    pub const fn new(spec: &'static TaskSpec, invoke: Invoke) -> Self {
        RemoteFunction { spec, invoke }
    }

    /// The stable name: `crate::module::function`.
    pub fn name(&self) -> &'static str {
        self.spec.name
    }

    /// The hash of the function's signature (argument and return types).
    pub fn signature_hash(&self) -> u64 {
        self.spec.signature_hash
    }

    /// Whether the function is `async`.
    pub fn is_async(&self) -> bool {
        self.spec.is_async
    }

    /// Runs the function on its encoded arguments (each one's encoding by the value codec,
    /// concatenated), and returns its outputs encoded the same way: one value, or one per
    /// element with `num_returns > 1`.
    /// A panic becomes an error naming the function.
    pub fn invoke(&self, args: &[u8]) -> Result<Outputs> {
        let name = self.spec.name;
        match self.invoke {
            Invoke::Sync(f) => std::panic::catch_unwind(AssertUnwindSafe(|| f(args)))
                .unwrap_or_else(|p| Err(Error::task_panicked(name, &*p))),
            Invoke::Async(f) => {
                let fut = crate::local::LendWhileAwaiting::new(
                    AssertUnwindSafe(f(args.to_vec())).catch_unwind(),
                );
                let done = match async_runtime() {
                    Ok(rt) => rt.block_on(fut),
                    Err(e) => return Err(e),
                };
                done.unwrap_or_else(|p| Err(Error::task_panicked(name, &*p)))
            }
        }
    }
}

/// The tokio runtime async functions run in when this process runs them by name (a worker
/// process of a cluster node), as the embedded runtime runs them in its own: timers, I/O and
/// `tokio::spawn` work the same in both.
fn async_runtime() -> Result<&'static tokio::runtime::Runtime> {
    static RT: OnceLock<std::result::Result<tokio::runtime::Runtime, String>> = OnceLock::new();
    RT.get_or_init(|| {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .thread_name("raykit-async")
            .enable_all()
            .build()
            .map_err(|e| e.to_string())
    })
    .as_ref()
    .map_err(|e| {
        Error::new(
            ErrorKind::System,
            format!("cannot start the runtime of async tasks: {e}"),
        )
    })
}

/// Every remote function linked into this binary.
pub fn functions() -> impl Iterator<Item = &'static RemoteFunction> {
    inventory::iter::<RemoteFunction>.into_iter()
}

/// The function registered under `name` whose signature hashes to `signature_hash`.
///
/// A name that is missing, or registered with another hash, is a
/// [`VersionSkew`](ErrorKind::VersionSkew) error: the caller was built from other code.
pub fn lookup(name: &str, signature_hash: u64) -> Result<&'static RemoteFunction> {
    static BY_NAME: OnceLock<HashMap<&'static str, &'static RemoteFunction>> = OnceLock::new();
    let table = BY_NAME.get_or_init(|| functions().map(|f| (f.name(), f)).collect());
    check(
        "remote function",
        name,
        signature_hash,
        table.get(name).map(|f| (*f, f.signature_hash())),
    )
}

/// Where the encoded result of a hosted actor's call goes.
#[doc(hidden)]
pub type Done = Box<dyn FnOnce(Result<Outputs>) + Send>;

/// An actor living in this process for a cluster node, called by method name with its
/// arguments encoded one after another.
#[doc(hidden)]
pub trait HostedActor: Send + Sync {
    /// Decodes the arguments of a call of `method` and queues it; `done` gets its encoded
    /// result (or its error) once it ran. `args` are read before this returns, never after.
    fn call(&self, method: &str, args: &[u8], done: Done);

    /// A check whether the actor's state is gone yet (it goes once the actor is stopped or
    /// killed and no call holds it any more). The check holds the state itself until then and
    /// drops it on the caller's thread, so once it says yes the state's `Drop` has run.
    fn state_gone(&self) -> Box<dyn FnMut() -> bool + Send>;

    /// A check whether a method of the actor called [`exit_actor`](crate::exit_actor) (the
    /// actor ends once its running calls answered): true once, the first time it is so.
    fn exit_requested(&self) -> Arc<dyn Fn() -> bool + Send + Sync>;

    /// Kills the actor as [`ActorHandle::kill`](crate::ActorHandle::kill) does: its running
    /// and queued calls fail at once.
    fn kill(&self);
}

/// How a worker process builds an actor of one class: constructor arguments encoded one after
/// another, and the actor's `max_concurrency`.
#[doc(hidden)]
pub type HostFn = fn(&[u8], u32) -> Result<Box<dyn HostedActor>>;

/// An actor class as the registry knows it: `#[raykit::actor]` registers one per impl block.
pub struct ActorClass {
    name: &'static str,
    signature_hash: u64,
    host: HostFn,
}

impl std::fmt::Debug for ActorClass {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ActorClass")
            .field("name", &self.name)
            .field(
                "signature_hash",
                &format_args!("{:016x}", self.signature_hash),
            )
            .finish()
    }
}

inventory::collect!(ActorClass);

impl ActorClass {
    #[doc(hidden)]
    pub const fn new(name: &'static str, signature_hash: u64, host: HostFn) -> Self {
        ActorClass {
            name,
            signature_hash,
            host,
        }
    }

    /// The stable name: `crate::module::Type`.
    pub fn name(&self) -> &'static str {
        self.name
    }

    /// The hash of the constructor's and every method's signature.
    pub fn signature_hash(&self) -> u64 {
        self.signature_hash
    }

    /// Builds an actor of this class from its encoded constructor arguments.
    pub fn host(&self, args: &[u8], max_concurrency: u32) -> Result<Box<dyn HostedActor>> {
        (self.host)(args, max_concurrency)
    }
}

/// Every actor class linked into this binary.
pub fn actor_classes() -> impl Iterator<Item = &'static ActorClass> {
    inventory::iter::<ActorClass>.into_iter()
}

/// The actor class registered under `name` whose signature hashes to `signature_hash`; like
/// [`lookup`], a missing name or another hash is a [`VersionSkew`](ErrorKind::VersionSkew)
/// error.
pub fn lookup_actor(name: &str, signature_hash: u64) -> Result<&'static ActorClass> {
    static BY_NAME: OnceLock<HashMap<&'static str, &'static ActorClass>> = OnceLock::new();
    let table = BY_NAME.get_or_init(|| actor_classes().map(|c| (c.name(), c)).collect());
    check(
        "actor class",
        name,
        signature_hash,
        table.get(name).map(|c| (*c, c.signature_hash())),
    )
}

/// A registry entry found under `name`, if its hash is the caller's.
fn check<T>(what: &str, name: &str, signature_hash: u64, found: Option<(T, u64)>) -> Result<T> {
    match found {
        None => Err(Error::new(
            ErrorKind::VersionSkew,
            format!("{what} `{name}` is not registered in this binary (version skew?)"),
        )),
        Some((_, here)) if here != signature_hash => Err(Error::new(
            ErrorKind::VersionSkew,
            format!(
                "{what} `{name}` has signature hash {here:016x} here but {signature_hash:016x} \
                 at the caller: the two binaries were built from different code"
            ),
        )),
        Some((entry, _)) => Ok(entry),
    }
}

/// Encodes a value (a result of `what`) with the value codec.
#[doc(hidden)]
pub fn encode<T>(what: &str, value: &T) -> Result<Vec<u8>>
where
    T: serde::Serialize + serde::de::DeserializeOwned + 'static,
{
    crate::codec::encode(value).map_err(|e| Error::serialization(what, e.message()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unknown_names_are_version_skew_errors_naming_what_is_missing() {
        let e = lookup("nowhere::f", 1).expect_err("no such function");
        assert_eq!(e.kind(), ErrorKind::VersionSkew);
        assert!(e.message().contains("remote function `nowhere::f`"), "{e}");
        let e = lookup_actor("nowhere::Counter", 1)
            .map(|_| ())
            .expect_err("no such actor class");
        assert_eq!(e.kind(), ErrorKind::VersionSkew);
        assert!(
            e.message().contains("actor class `nowhere::Counter`"),
            "{e}"
        );
    }

    #[test]
    fn a_different_hash_is_a_version_skew_error() {
        let found = Some(("entry", 7u64));
        assert_eq!(check("thing", "a::b", 7, found).ok(), Some("entry"));
        let e = check("thing", "a::b", 8, found).expect_err("other hash");
        assert_eq!(e.kind(), ErrorKind::VersionSkew);
        assert!(e.message().contains("different code"), "{e}");
    }
}
