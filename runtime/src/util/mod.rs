//! Helpers built on the public API, as Ray's `ray.util`: [`ActorPool`].

mod actor_pool;

pub use actor_pool::ActorPool;
