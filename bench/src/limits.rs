//! The limits each raykit figure is measured against, in the same run: what the same workload
//! costs with nothing but tokio (spawn + join for tasks, an mpsc mailbox and a oneshot reply for
//! actor calls), plain allocation and locking for small objects, and memcpy for large ones.
//!
//! The caller is the benchmark's main thread, outside the executor, as the raykit driver is.

use std::any::Any;
use std::hint::black_box;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::runtime::Runtime;
use tokio::sync::{mpsc, oneshot};

use crate::harness::{timeit, Rate};

/// A multi-thread tokio runtime with one worker per core, as raykit's own async executor.
pub fn tokio_runtime() -> Runtime {
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(threads)
        .thread_name("limit-tokio")
        .build()
        .expect("cannot start the tokio runtime of the limits")
}

type Infallible = std::convert::Infallible;

fn rate(d: Duration, multiplier: f64, mut f: impl FnMut()) -> Rate {
    match timeit::<Infallible>(d, multiplier, || {
        f();
        Ok(())
    }) {
        Ok(r) => r,
        Err(never) => match never {},
    }
}

/// An object slot with nothing else: what a put allocates and a get locks.
type BareSlot = Arc<Mutex<Option<Box<dyn Any + Send>>>>;

fn bare_put(v: i64) -> BareSlot {
    Arc::new(Mutex::new(Some(Box::new(v))))
}

/// `get`: lock an `Arc<Mutex<_>>` slot and copy the `i64` out.
pub fn get_calls(d: Duration) -> Rate {
    let slot = bare_put(0);
    rate(d, 1.0, || {
        let guard = slot.lock().unwrap_or_else(|e| e.into_inner());
        black_box(
            guard
                .as_ref()
                .and_then(|b| b.downcast_ref::<i64>())
                .copied(),
        );
    })
}

/// `put`: allocate an `Arc<Mutex<Box<dyn Any>>>` slot holding the `i64`, and free it.
pub fn put_calls(d: Duration) -> Rate {
    rate(d, 1.0, || drop(black_box(bare_put(0))))
}

/// `multi client put calls`: 10 tokio tasks of 100 slot allocations each, spawned and joined.
pub fn multi_put_calls(rt: &Runtime, d: Duration) -> Rate {
    rate(d, 1000.0, || {
        rt.block_on(async {
            let hs: Vec<_> = (0..10)
                .map(|_| {
                    tokio::spawn(async {
                        for _ in 0..100 {
                            drop(black_box(bare_put(0)));
                        }
                    })
                })
                .collect();
            for h in hs {
                h.await.expect("put task");
            }
        })
    })
}

/// `put gigabytes`: memcpy of the 800 MiB array into a buffer allocated (and faulted in) once.
pub fn put_gigabytes(d: Duration, arr: &[u8]) -> Rate {
    let mut dst = vec![1u8; arr.len()];
    rate(d, 8.0 * 0.1, || {
        dst.copy_from_slice(arr);
        black_box(&dst);
    })
}

/// `multi client put gigabytes`: 100 memcpys of 80 MiB spread over one thread per core, each
/// into its own buffer allocated once.
pub fn multi_put_gigabytes(d: Duration, src: &[u8]) -> Rate {
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
    let mut dsts: Vec<Vec<u8>> = (0..threads).map(|_| vec![1u8; src.len()]).collect();
    rate(d, 10.0 * 8.0 * 0.1, || {
        std::thread::scope(|s| {
            for (t, dst) in dsts.iter_mut().enumerate() {
                let copies = (100 + threads - 1 - t) / threads;
                s.spawn(move || {
                    for _ in 0..copies {
                        dst.copy_from_slice(src);
                        black_box(&dst);
                    }
                });
            }
        });
    })
}

/// `get object containing 10k refs`: clone a `Vec` of 10,000 `Arc`s (what copying a list of
/// refs costs at least).
pub fn get_object_containing_10k_refs(d: Duration) -> Rate {
    let refs: Vec<BareSlot> = (0..10_000).map(|_| bare_put(1)).collect();
    rate(d, 1.0, || drop(black_box(refs.clone())))
}

fn spawn_small(n: usize) -> Vec<tokio::task::JoinHandle<[u8; 2]>> {
    (0..n).map(|_| tokio::spawn(async { *b"ok" })).collect()
}

/// Spawns `n` tokio tasks and joins them (`tasks async`, `tasks and get batch`).
pub fn spawn_join(rt: &Runtime, d: Duration, n: usize, multiplier: f64) -> Rate {
    rate(d, multiplier, || {
        rt.block_on(async {
            for h in spawn_small(n) {
                black_box(h.await.expect("task"));
            }
        })
    })
}

/// `wait 1k refs`: spawn 1,000 tokio tasks, then join them one at a time.
pub fn wait_1k(rt: &Runtime, d: Duration) -> Rate {
    rate(d, 1.0, || {
        rt.block_on(async {
            let mut pending = spawn_small(1000);
            while !pending.is_empty() {
                let (first, _, rest) = futures::future::select_all(pending).await;
                black_box(first.expect("task"));
                pending = rest;
            }
        })
    })
}

/// `multi client tasks async`: 4 tokio tasks each spawning and joining 10,000 tasks.
pub fn multi_spawn_join(rt: &Runtime, d: Duration) -> Rate {
    let (n, m) = (10_000, 4);
    rate(d, (n * m) as f64, || {
        rt.block_on(async {
            let clients: Vec<_> = (0..m)
                .map(|_| {
                    tokio::spawn(async move {
                        for h in spawn_small(n) {
                            black_box(h.await.expect("task"));
                        }
                    })
                })
                .collect();
            for c in clients {
                c.await.expect("client");
            }
        })
    })
}

/// A call to an mpsc actor: its argument and where the reply goes.
type Msg = (Arc<i64>, oneshot::Sender<[u8; 2]>);

/// A tokio task serving calls from an unbounded mpsc mailbox, replying on a oneshot.
#[derive(Debug, Clone)]
pub struct MpscActor {
    tx: mpsc::UnboundedSender<Msg>,
}

impl MpscActor {
    /// Spawns the actor on `rt`.
    pub fn spawn(rt: &Runtime) -> Self {
        let (tx, mut rx) = mpsc::unbounded_channel::<Msg>();
        rt.spawn(async move {
            while let Some((arg, reply)) = rx.recv().await {
                black_box(arg);
                let _ = reply.send(*b"ok");
            }
        });
        MpscActor { tx }
    }

    /// Sends a call and returns where its reply arrives.
    pub fn call(&self, arg: Arc<i64>) -> oneshot::Receiver<[u8; 2]> {
        let (reply, rx) = oneshot::channel();
        self.tx.send((arg, reply)).expect("actor is running");
        rx
    }
}

/// `1:1 actor calls sync`: one call, wait for its reply.
pub fn actor_sync(rt: &Runtime, d: Duration) -> Rate {
    let a = MpscActor::spawn(rt);
    let arg = Arc::new(0);
    rate(d, 1.0, || {
        let rx = a.call(arg.clone());
        black_box(rx.blocking_recv().expect("reply"));
    })
}

/// `1:1 actor calls async`: 1,000 calls, then wait for every reply.
pub fn actor_async(rt: &Runtime, d: Duration) -> Rate {
    let a = MpscActor::spawn(rt);
    let arg = Arc::new(0);
    rate(d, 1000.0, || {
        let rxs: Vec<_> = (0..1000).map(|_| a.call(arg.clone())).collect();
        rt.block_on(async {
            for rx in rxs {
                black_box(rx.await.expect("reply"));
            }
        })
    })
}

async fn call_batch(actors: Vec<MpscActor>, n: usize, arg: Arc<i64>) {
    let mut rxs = Vec::with_capacity(n * actors.len());
    for a in &actors {
        rxs.extend((0..n).map(|_| a.call(arg.clone())));
    }
    for rx in rxs {
        black_box(rx.await.expect("reply"));
    }
}

async fn call_spread(actors: Vec<MpscActor>, n: usize, arg: Arc<i64>) {
    let rxs: Vec<_> = (0..n)
        .map(|i| actors[i % actors.len()].call(arg.clone()))
        .collect();
    for rx in rxs {
        black_box(rx.await.expect("reply"));
    }
}

/// `1:n actor calls async`: a tokio task calling `actors` mpsc actors `n` times each.
pub fn actor_async_1_n(rt: &Runtime, d: Duration, actors: usize, n: usize) -> Rate {
    let servers: Vec<MpscActor> = (0..actors).map(|_| MpscActor::spawn(rt)).collect();
    let arg = Arc::new(0);
    rate(d, (n * actors) as f64, || {
        let client = rt.spawn(call_batch(servers.clone(), n, arg.clone()));
        rt.block_on(client).expect("client");
    })
}

/// `n:n actor calls async`: `m` tokio tasks each making `n` calls spread over the actors.
pub fn actor_async_n_n(rt: &Runtime, d: Duration, actors: usize, m: usize, n: usize) -> Rate {
    let servers: Vec<MpscActor> = (0..actors).map(|_| MpscActor::spawn(rt)).collect();
    let arg = Arc::new(0);
    rate(d, (m * n) as f64, || {
        let clients: Vec<_> = (0..m)
            .map(|_| rt.spawn(call_spread(servers.clone(), n, arg.clone())))
            .collect();
        rt.block_on(async {
            for c in clients {
                c.await.expect("client");
            }
        })
    })
}

/// `n:n actor calls with arg async`: `clients` tokio tasks, each with its own mpsc actor,
/// making `n` calls with an argument.
pub fn actor_with_arg_n_n(rt: &Runtime, d: Duration, clients: usize, n: usize) -> Rate {
    let servers: Vec<MpscActor> = (0..clients).map(|_| MpscActor::spawn(rt)).collect();
    rate(d, (n * clients) as f64, || {
        let tasks: Vec<_> = servers
            .iter()
            .map(|s| rt.spawn(call_batch(vec![s.clone()], n, Arc::new(0))))
            .collect();
        rt.block_on(async {
            for t in tasks {
                t.await.expect("client");
            }
        })
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mpsc_actor_replies() {
        let rt = tokio_runtime();
        let a = MpscActor::spawn(&rt);
        assert_eq!(a.call(Arc::new(1)).blocking_recv().unwrap(), *b"ok");
    }
}
