//! The workloads of Ray's `ray microbenchmark` (`python/ray/_private/ray_perf.py`), written with
//! raykit: the same remote functions, actors, batch sizes and multipliers.
//!
//! Ray's `small_value` returns `b"ok"`; here it returns `*b"ok"` (`[u8; 2]`). Where Ray passes a
//! Python list of actor handles, these pass a `Vec<ActorHandle<_>>`; where Ray's code reads a
//! global (`n`), the count is an argument.

use std::sync::OnceLock;
use std::time::Duration;

use serde_bytes::ByteBuf;

use raykit::{ActorHandle, ActorOptions, ObjectRef};

use crate::harness::{timeit, Rate};

/// What a raykit workload returns: its rate, or the error of the call that failed.
pub type Outcome = raykit::Result<Rate>;

/// Bytes of the large array of `single_client_put_gigabytes` (Ray: `np.zeros(100 * 1024 * 1024,
/// dtype=np.int64)`, 800 MiB, counted as 0.8 "GB" by Ray's multiplier).
///
/// Ray writes a numpy array into its store as its raw buffer (pickle protocol 5); the serde
/// form of a raw buffer is `serde_bytes`, so the arrays here are `ByteBuf`s of the same size.
/// (A `Vec<i64>` goes through postcard element by element, as varints: about 0.5 GB/s on the
/// development machine, whatever the store.)
pub const LARGE_LEN: usize = 8 * 100 * 1024 * 1024;
/// Bytes of each array of `multi_client_put_gigabytes` (Ray: `10 * 1024 * 1024` int64).
pub const MEDIUM_LEN: usize = 8 * 10 * 1024 * 1024;

/// A `len`-byte array filled with a pattern (not left as untouched zero pages, which a copy
/// would read from one shared page).
pub fn filled(len: usize) -> ByteBuf {
    ByteBuf::from((0..len).map(|i| (i % 251) as u8).collect::<Vec<u8>>())
}

/// The array each put of `multi_client_put_gigabytes` copies, made once.
pub fn medium_source() -> &'static ByteBuf {
    static SOURCE: OnceLock<ByteBuf> = OnceLock::new();
    SOURCE.get_or_init(|| filled(MEDIUM_LEN))
}

// ---- remote functions (ray_perf.py's module level) ----

/// Ray's `small_value`: the smallest task.
#[raykit::remote]
pub fn small_value() -> [u8; 2] {
    *b"ok"
}

/// Ray's `do_put_small`: 100 small puts inside a task.
#[raykit::remote]
pub fn do_put_small() {
    for _ in 0..100 {
        drop(raykit::put(0i64));
    }
}

/// Ray's `do_put`: 10 puts of an 80 MiB array inside a task, which keeps the array: each put
/// copies it once into the object, as Ray's copy into its object store does.
#[raykit::remote]
pub fn do_put() {
    for _ in 0..10 {
        drop(raykit::put_copy(medium_source()));
    }
}

/// Ray's `create_object_containing_ref`: an object holding 10,000 refs.
#[raykit::remote]
pub fn create_object_containing_ref() -> Vec<ObjectRef<i64>> {
    (0..10_000).map(|_| raykit::put(1i64)).collect()
}

/// Ray's `work` of `n:n actor calls async`: `n` calls spread over the actors.
#[raykit::remote]
pub fn work(actors: Vec<ActorHandle<SyncActor>>, n: usize) {
    let refs: Vec<ObjectRef<[u8; 2]>> = (0..n)
        .map(|i| actors[i % actors.len()].small_value())
        .collect();
    raykit::get_all(&refs).expect("small_value failed");
}

/// Ray's `async_actor_work` of `n:n async-actor calls async`.
#[raykit::remote]
pub fn async_actor_work(actors: Vec<ActorHandle<AsyncActor>>, n: usize) {
    let refs: Vec<ObjectRef<[u8; 2]>> = (0..n)
        .map(|i| actors[i % actors.len()].small_value())
        .collect();
    raykit::get_all(&refs).expect("small_value failed");
}

// ---- actors ----

/// Ray's `Actor` (`num_cpus=0`): sync methods.
#[derive(raykit::Actor)]
#[actor(num_cpus = 0)]
pub struct SyncActor {}

#[raykit::actor]
impl SyncActor {
    /// A new actor.
    pub fn new() -> Self {
        SyncActor {}
    }

    /// Returns `b"ok"`.
    pub fn small_value(&self) -> [u8; 2] {
        *b"ok"
    }

    /// Returns `b"ok"`, ignoring its argument.
    pub fn small_value_arg(&self, _x: i64) -> [u8; 2] {
        *b"ok"
    }

    /// Submits `n` `small_value` tasks and waits for them (`multi client tasks async`).
    pub fn small_value_batch(&self, n: usize) {
        let refs: Vec<ObjectRef<[u8; 2]>> = (0..n).map(|_| small_value::remote()).collect();
        raykit::get_all(&refs).expect("small_value failed");
    }
}

/// Ray's `AsyncActor`: async methods.
#[derive(raykit::Actor)]
pub struct AsyncActor {}

#[raykit::actor]
impl AsyncActor {
    /// A new actor.
    pub fn new() -> Self {
        AsyncActor {}
    }

    /// Returns `b"ok"`.
    pub async fn small_value(&self) -> [u8; 2] {
        *b"ok"
    }

    /// Returns `b"ok"`, ignoring its argument.
    pub async fn small_value_with_arg(&self, _x: i64) -> [u8; 2] {
        *b"ok"
    }
}

/// Ray's `Client` (`num_cpus=0`) calling sync actors.
#[derive(raykit::Actor)]
#[actor(num_cpus = 0)]
pub struct Client {
    servers: Vec<ActorHandle<SyncActor>>,
}

#[raykit::actor]
impl Client {
    /// A client of `servers`.
    pub fn new(servers: Vec<ActorHandle<SyncActor>>) -> Self {
        Client { servers }
    }

    /// `n` calls to each server, then waits for all of them.
    pub fn small_value_batch(&self, n: usize) {
        let mut results = Vec::with_capacity(n * self.servers.len());
        for s in &self.servers {
            results.extend((0..n).map(|_| s.small_value()));
        }
        raykit::get_all(&results).expect("small_value failed");
    }

    /// `n` calls with a ref argument to each server, then waits for all of them.
    pub fn small_value_batch_arg(&self, n: usize) {
        let x = raykit::put(0i64);
        let mut results = Vec::with_capacity(n * self.servers.len());
        for s in &self.servers {
            results.extend((0..n).map(|_| s.small_value_arg(&x)));
        }
        raykit::get_all(&results).expect("small_value_arg failed");
    }
}

/// Ray's `Client` calling async actors (a handle is typed, so this is a second type).
#[derive(raykit::Actor)]
#[actor(num_cpus = 0)]
pub struct AsyncClient {
    servers: Vec<ActorHandle<AsyncActor>>,
}

#[raykit::actor]
impl AsyncClient {
    /// A client of `servers`.
    pub fn new(servers: Vec<ActorHandle<AsyncActor>>) -> Self {
        AsyncClient { servers }
    }

    /// `n` calls to each server, then waits for all of them.
    pub fn small_value_batch(&self, n: usize) {
        let mut results = Vec::with_capacity(n * self.servers.len());
        for s in &self.servers {
            results.extend((0..n).map(|_| s.small_value()));
        }
        raykit::get_all(&results).expect("small_value failed");
    }
}

/// `multiprocessing.cpu_count() // 2`, at least 1.
pub fn half_cpus() -> usize {
    (std::thread::available_parallelism().map_or(1, |n| n.get()) / 2).max(1)
}

fn small_values(n: usize) -> Vec<ObjectRef<[u8; 2]>> {
    (0..n).map(|_| small_value::remote()).collect()
}

// ---- the workloads: setup, then the timed function, as in ray_perf.main ----

/// `single client get calls (Plasma Store)`: `ray.get` of a small put object.
pub fn single_client_get_calls(d: Duration) -> Outcome {
    let value = raykit::put(0i64);
    timeit(d, 1.0, || raykit::get(&value).map(drop))
}

/// `single client put calls (Plasma Store)`: `ray.put(0)`.
pub fn single_client_put_calls(d: Duration) -> Outcome {
    timeit(d, 1.0, || {
        drop(raykit::put(0i64));
        Ok(())
    })
}

/// `multi client put calls (Plasma Store)`: 10 tasks of 100 puts each.
pub fn multi_client_put_calls(d: Duration) -> Outcome {
    timeit(d, 1000.0, || {
        let refs: Vec<ObjectRef<()>> = (0..10).map(|_| do_put_small::remote()).collect();
        raykit::get_all(&refs).map(drop)
    })
}

/// `single client put gigabytes`: `ray.put` of an 800 MiB array the caller keeps (so raykit
/// puts a copy, as Ray's put does).
pub fn single_client_put_gigabytes(d: Duration, arr: &ByteBuf) -> Outcome {
    timeit(d, 8.0 * 0.1, || {
        drop(raykit::put_copy(arr));
        Ok(())
    })
}

/// `single client tasks and get batch`: 1,000 tasks, then one `get` of all (counted per batch,
/// as Ray counts it).
pub fn single_client_tasks_and_get_batch(d: Duration) -> Outcome {
    timeit(d, 1.0, || raykit::get_all(&small_values(1000)).map(drop))
}

/// `multi client put gigabytes`: 10 tasks each putting 10 copies of an 80 MiB array.
pub fn multi_client_put_gigabytes(d: Duration) -> Outcome {
    medium_source();
    timeit(d, 10.0 * 8.0 * 0.1, || {
        let refs: Vec<ObjectRef<()>> = (0..10).map(|_| do_put::remote()).collect();
        raykit::get_all(&refs).map(drop)
    })
}

/// `single client get object containing 10k refs`.
pub fn single_client_get_object_containing_10k_refs(d: Duration) -> Outcome {
    let obj = create_object_containing_ref::remote();
    raykit::get(&obj)?;
    timeit(d, 1.0, || raykit::get(&obj).map(drop))
}

/// `single client wait 1k refs`: 1,000 tasks, then 1,000 `wait`s for one ready ref each.
pub fn single_client_wait_1k_refs(d: Duration) -> Outcome {
    timeit(d, 1.0, || {
        let mut not_ready = small_values(1000);
        for _ in 0..1000 {
            let (_ready, rest) = raykit::wait(&not_ready, 1, None);
            not_ready = rest;
        }
        Ok(())
    })
}

/// `single client tasks sync`: submit one task and get its result.
pub fn single_client_tasks_sync(d: Duration) -> Outcome {
    timeit(d, 1.0, || raykit::get(&small_value::remote()).map(drop))
}

/// `single client tasks async`: 1,000 tasks, then one `get` of all.
pub fn single_client_tasks_async(d: Duration) -> Outcome {
    timeit(d, 1000.0, || raykit::get_all(&small_values(1000)).map(drop))
}

/// `multi client tasks async`: 4 actors each submitting 10,000 tasks and waiting for them.
pub fn multi_client_tasks_async(d: Duration) -> Outcome {
    let (n, m) = (10_000, 4);
    let actors: Vec<ActorHandle<SyncActor>> = (0..m).map(|_| SyncActor::remote()).collect();
    timeit(d, (n * m) as f64, || {
        let submitted: Vec<ObjectRef<()>> = actors.iter().map(|a| a.small_value_batch(n)).collect();
        raykit::get_all(&submitted).map(drop)
    })
}

fn actor_sync<T: 'static>(d: Duration, call: impl Fn() -> ObjectRef<T>) -> Outcome {
    timeit(d, 1.0, || raykit::get(&call()).map(drop))
}

fn actor_batch<T: 'static>(d: Duration, call: impl Fn(i64) -> ObjectRef<T>) -> Outcome {
    timeit(d, 1000.0, || {
        let refs: Vec<ObjectRef<T>> = (0..1000).map(&call).collect();
        raykit::get_all(&refs).map(drop)
    })
}

/// `1:1 actor calls sync`.
pub fn actor_calls_sync_1_1(d: Duration) -> Outcome {
    let a = SyncActor::remote();
    actor_sync(d, || a.small_value())
}

/// `1:1 actor calls async`: 1,000 calls, then one `get` of all.
pub fn actor_calls_async_1_1(d: Duration) -> Outcome {
    let a = SyncActor::remote();
    actor_batch(d, |_| a.small_value())
}

/// `1:1 actor calls concurrent`: as async, on an actor with `max_concurrency=16`.
pub fn actor_calls_concurrent_1_1(d: Duration) -> Outcome {
    let a = SyncActor::options(ActorOptions::new().max_concurrency(16)).remote();
    actor_batch(d, |_| a.small_value())
}

/// `1:n actor calls async`: one client actor calling `cpu_count // 2` actors, 5,000 calls each.
pub fn actor_calls_async_1_n(d: Duration) -> Outcome {
    let n = 5000;
    let actors: Vec<ActorHandle<SyncActor>> =
        (0..half_cpus()).map(|_| SyncActor::remote()).collect();
    let len = actors.len();
    let client = Client::remote(actors);
    timeit(d, (n * len) as f64, || {
        raykit::get(&client.small_value_batch(n))
    })
}

/// `n:n actor calls async`: 4 tasks each making 5,000 calls spread over `cpu_count // 2` actors.
pub fn actor_calls_async_n_n(d: Duration) -> Outcome {
    let (n, m) = (5000, 4);
    let a: Vec<ActorHandle<SyncActor>> = (0..half_cpus()).map(|_| SyncActor::remote()).collect();
    timeit(d, (m * n) as f64, || {
        let refs: Vec<ObjectRef<()>> = (0..m).map(|_| work::remote(a.clone(), n)).collect();
        raykit::get_all(&refs).map(drop)
    })
}

/// `n:n actor calls with arg async`: `cpu_count // 2` clients, each with its own actor, 1,000
/// calls each with a ref argument.
pub fn actor_calls_with_arg_async_n_n(d: Duration) -> Outcome {
    let n = 1000;
    let clients: Vec<ActorHandle<Client>> = (0..half_cpus())
        .map(|_| Client::remote(vec![SyncActor::remote()]))
        .collect();
    timeit(d, (n * clients.len()) as f64, || {
        let refs: Vec<ObjectRef<()>> = clients.iter().map(|c| c.small_value_batch_arg(n)).collect();
        raykit::get_all(&refs).map(drop)
    })
}

/// `1:1 async-actor calls sync`.
pub fn async_actor_calls_sync_1_1(d: Duration) -> Outcome {
    let a = AsyncActor::remote();
    actor_sync(d, || a.small_value())
}

/// `1:1 async-actor calls async`.
pub fn async_actor_calls_async_1_1(d: Duration) -> Outcome {
    let a = AsyncActor::remote();
    actor_batch(d, |_| a.small_value())
}

/// `1:1 async-actor calls with args async`.
pub fn async_actor_calls_with_args_async_1_1(d: Duration) -> Outcome {
    let a = AsyncActor::remote();
    actor_batch(d, |i| a.small_value_with_arg(i))
}

/// `1:n async-actor calls async`.
pub fn async_actor_calls_async_1_n(d: Duration) -> Outcome {
    let n = 5000;
    let actors: Vec<ActorHandle<AsyncActor>> =
        (0..half_cpus()).map(|_| AsyncActor::remote()).collect();
    let len = actors.len();
    let client = AsyncClient::remote(actors);
    timeit(d, (n * len) as f64, || {
        raykit::get(&client.small_value_batch(n))
    })
}

/// `n:n async-actor calls async`.
pub fn async_actor_calls_async_n_n(d: Duration) -> Outcome {
    let (n, m) = (5000, 4);
    let a: Vec<ActorHandle<AsyncActor>> = (0..half_cpus()).map(|_| AsyncActor::remote()).collect();
    timeit(d, (m * n) as f64, || {
        let refs: Vec<ObjectRef<()>> = (0..m)
            .map(|_| async_actor_work::remote(a.clone(), n))
            .collect();
        raykit::get_all(&refs).map(drop)
    })
}
