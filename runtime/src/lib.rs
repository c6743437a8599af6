//! # raykit: Ray for Rust
//!
//! Put `#[raykit::remote]` on a function and `f::remote(args)` returns an [`ObjectRef`] at once
//! while the call runs on another core. Pass refs to other remote calls to build task graphs,
//! and read results with [`get`], [`get_all`], [`wait`] or `.await`.
//!
//! ```
//! use raykit::ObjectRef;
//!
//! #[raykit::remote]
//! fn add(a: i64, b: i64) -> i64 {
//!     a + b
//! }
//!
//! #[raykit::remote(num_returns = 2)]
//! fn split(v: Vec<i64>) -> (Vec<i64>, Vec<i64>) {
//!     let right = v[v.len() / 2..].to_vec();
//!     (v[..v.len() / 2].to_vec(), right)
//! }
//!
//! fn main() -> raykit::Result<()> {
//!     raykit::init()?;
//!     let a: ObjectRef<i64> = add::remote(1, 2); // returns at once
//!     let b = add::remote(&a, 10);               // runs when `a` is ready
//!     let c = add::remote(a.clone(), b);
//!     assert_eq!(raykit::get(&c)?, 16);
//!     assert_eq!(add(1, 2), 3);                  // still an ordinary function
//!     let (left, right) = split::remote(vec![1, 2, 3, 4]);
//!     assert_eq!(raykit::get(&left)?, vec![1, 2]);
//!     assert_eq!(raykit::get(&right)?, vec![3, 4]);
//!     let x = futures::executor::block_on(add::remote(1, 2))?;
//!     assert_eq!(x, 3);
//!     Ok(())
//! }
//! ```
//!
//! Argument and return types must be `Serialize + DeserializeOwned + Send + 'static`, so the
//! same program can run on a cluster; the embedded runtime moves values between tasks without
//! serializing them.
#![warn(
    missing_docs,
    unreachable_pub,
    rust_2018_idioms,
    missing_debug_implementations
)]

mod actor;
mod backend;
pub mod cluster;
mod codec;
mod config;
mod error;
mod ids;
mod local;
mod object;
pub mod registry;
mod resources;
mod runtime;
mod task;
pub mod util;

pub use actor::{
    exit_actor, get_actor, get_actor_in, list_named_actors, Actor, ActorHandle, ActorId,
    ActorOptions,
};
pub use config::Config;
pub use error::{Error, ErrorKind, Result};
pub use object::{
    get, get_all, get_all_timeout, get_timeout, put, put_copy, wait, ObjectId, ObjectRef,
};
pub use runtime::{
    available_resources, cluster_resources, init, init_with, is_initialized, node_id, nodes,
    shutdown, NodeId, NodeInfo, RuntimeInfo,
};
pub use task::{Arg, IntoArg, TaskOptions};

/// Turns a function into a remote function: `f::remote(args..)` runs it as a task and returns
/// an [`ObjectRef`] at once.
///
/// Options: `num_cpus = N` (default 1, fractions allowed), `num_gpus = N`,
/// `resources(name = N, ..)`, `max_retries = N` (default 3), `num_returns = N` (a tuple return
/// type becomes a tuple of refs). The function stays callable as before, and
/// `f::options(TaskOptions::new()..).remote(args..)` overrides options for one call.
///
/// Every argument accepts a value `T`, an `ObjectRef<T>` or a `&ObjectRef<T>`.
pub use raykit_macros::remote;

/// Turns an impl block into an actor: `pub fn new(..) -> Self` is the constructor
/// (`T::remote(..)` creates the actor and returns its [`ActorHandle`]), and every public
/// `&self` / `&mut self` method, sync or async, becomes a method of the handle returning an
/// [`ObjectRef`]. Non-`pub` methods stay private helpers. The type needs
/// `#[derive(raykit::Actor)]`. A method marked [`#[raykit::method(num_returns = N)]`](macro@method)
/// returns a tuple of N refs instead.
///
/// ```
/// #[derive(raykit::Actor)]
/// struct Counter {
///     value: u64,
/// }
///
/// #[raykit::actor]
/// impl Counter {
///     pub fn new(start: u64) -> Self {
///         Counter { value: start }
///     }
///     pub fn incr(&mut self, by: u64) -> u64 {
///         self.value += by;
///         self.value
///     }
///     pub fn value(&self) -> u64 {
///         self.value
///     }
/// }
///
/// let counter: raykit::ActorHandle<Counter> = Counter::remote(0);
/// counter.incr(5);
/// assert_eq!(raykit::get(&counter.value()).unwrap(), 5);
/// ```
pub use raykit_macros::actor;

/// Options of one method of an `#[raykit::actor]` impl block. The one key, `num_returns = N`
/// (at most 8), makes a method returning a tuple of N elements give the caller a tuple of N
/// [`ObjectRef`]s, one object per element, as `#[raykit::remote(num_returns = N)]` does for a
/// function: each output can be read, awaited, passed on or dropped on its own. A panic in the
/// method fails every output.
///
/// The actor macro reads the attribute: it goes on a public `&self` or `&mut self` method
/// (sync or async) inside the block, not on the constructor `new`, and anywhere else it is a
/// compile error.
///
/// ```
/// use raykit::ObjectRef;
///
/// #[derive(raykit::Actor)]
/// struct Stats {
///     seen: Vec<i64>,
/// }
///
/// #[raykit::actor]
/// impl Stats {
///     pub fn new() -> Self {
///         Stats { seen: Vec::new() }
///     }
///
///     /// The smallest and largest value seen so far, as two objects.
///     #[raykit::method(num_returns = 2)]
///     pub fn add(&mut self, x: i64) -> (i64, i64) {
///         self.seen.push(x);
///         let min = *self.seen.iter().min().unwrap();
///         (min, *self.seen.iter().max().unwrap())
///     }
/// }
///
/// let stats = Stats::remote();
/// stats.add(4);
/// let (min, max): (ObjectRef<i64>, ObjectRef<i64>) = stats.add(-2);
/// assert_eq!(raykit::get(&max).unwrap(), 4);
/// assert_eq!(raykit::get(&min).unwrap(), -2);
/// ```
pub use raykit_macros::method;

/// Derives [`Actor`](trait@Actor) for a struct or enum. Options, all optional, go in
/// `#[actor(max_restarts = N, max_concurrency = N, num_cpus = N, num_gpus = N, resources(name = N))]`.
pub use raykit_macros::Actor;

/// The README's tour, compiled and run as a doctest so it cannot drift from the API.
#[doc = include_str!("../../README.md")]
#[cfg(doctest)]
pub struct ReadmeTour;

/// The decoders of a peer's bytes, for the fuzz targets in `fuzz/` (feature `fuzzing`, off by
/// default). Not public API.
#[cfg(feature = "fuzzing")]
#[doc(hidden)]
pub use backend::fuzzing as __fuzz;

/// Items the macros expand to. Not public API.
#[doc(hidden)]
pub mod __private {
    pub use crate::actor::{
        assert_actor_methods, host_actor, ActorMethods, ActorSpec, Encoded, MethodBody, MutBody,
        RawHandle, ReadGuard, RefBody, WriteGuard,
    };
    pub use crate::backend::{worker_entry, EncodedArg};
    pub use crate::codec::ArgReader;
    pub use crate::object::{clone_by_clone, clone_by_serde, CloneFn, DecodeFn, Slot};
    pub use crate::registry::{encode, ActorClass, Done, HostedActor, Invoke, RemoteFunction};
    pub use crate::runtime::worker_threads_started;
    pub use crate::task::{submit_async, submit_sync, One, Returns, TaskSpec};
    pub use futures::future::BoxFuture;
    pub use inventory;
    pub use std::sync::Arc;

    use std::marker::PhantomData;

    /// Compile-time check that a type can cross a remote boundary.
    #[diagnostic::on_unimplemented(
        message = "`{Self}` cannot be an argument or return value of a remote function",
        note = "remote arguments and returns must be `serde::Serialize + serde::de::DeserializeOwned + Send + 'static`, so the program also runs on a cluster"
    )]
    pub trait RemoteValue: serde::Serialize + serde::de::DeserializeOwned + Send + 'static {}

    impl<T: serde::Serialize + serde::de::DeserializeOwned + Send + 'static> RemoteValue for T {}

    /// Fails to compile unless `T` can cross a remote boundary.
    pub const fn assert_remote_value<T: RemoteValue>() {}

    /// Picks how to copy a `T` for readers: by `Clone` when `T` is `Clone`, by a serialization
    /// round trip otherwise (autoref specialization: `(&Probe::<T>::new()).cloner()`).
    pub struct Probe<T>(PhantomData<fn() -> T>);

    impl<T> std::fmt::Debug for Probe<T> {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str("Probe")
        }
    }

    impl<T> Probe<T> {
        /// The probe.
        #[allow(clippy::new_without_default)]
        pub const fn new() -> Self {
            Probe(PhantomData)
        }
    }

    /// Copy by `Clone` (preferred by method resolution).
    pub trait ViaClone {
        /// The copy function.
        fn cloner(&self) -> CloneFn;
    }

    impl<T: Clone + Send + 'static> ViaClone for Probe<T> {
        fn cloner(&self) -> CloneFn {
            clone_by_clone::<T>
        }
    }

    /// Decode from the wire (for values that can be decoded: every checked remote type).
    pub trait ViaDecode {
        /// The decode function.
        fn decoder(&self) -> Option<DecodeFn>;
    }

    impl<T: serde::de::DeserializeOwned + Send + 'static> ViaDecode for Probe<T> {
        fn decoder(&self) -> Option<DecodeFn> {
            Some(crate::object::decode_value::<T>)
        }
    }

    /// No decoder (a type that failed the compile-time check; never run).
    pub trait NoDecode {
        /// None.
        fn decoder(&self) -> Option<DecodeFn>;
    }

    impl<T> NoDecode for &Probe<T> {
        fn decoder(&self) -> Option<DecodeFn> {
            None
        }
    }

    /// Copy by serialization (the fallback).
    pub trait ViaSerde {
        /// The copy function.
        fn cloner(&self) -> CloneFn;
    }

    impl<T: RemoteValue> ViaSerde for &Probe<T> {
        fn cloner(&self) -> CloneFn {
            clone_by_serde::<T>
        }
    }
}
