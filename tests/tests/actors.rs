//! Actor semantics: what `#[derive(raykit::Actor)]` + `#[raykit::actor]` generate (constructor,
//! `remote`, `options`, handle methods for every `pub` `&self` / `&mut self` method, sync or
//! async, unit-returning ones too; private helpers stay private), calls run one at a time in
//! each caller's order, `max_concurrency` lets `&self` calls overlap while `&mut self` calls stay
//! exclusive, ref arguments, dropped call refs, panics in methods and constructors, async methods
//! awaiting refs, sync methods off the async executor, and many actors at once.
//!
//! Overlap is proven with rendezvous points that calls can only pass together; exclusivity with
//! gauges whose calls linger so that a forbidden overlap, if the runtime allowed it, would be
//! seen. Sleeps only create the chance to overlap: no outcome rests on timing.

use std::collections::HashSet;
use std::rc::Rc;
use std::time::{Duration, Instant};

use raykit::{ActorHandle, ActorOptions, ErrorKind, ObjectRef, TaskOptions};
use raykit_tests::{eventually, gate, gauge, unique_id, within, Rendezvous};

raykit_tests::suite!(Shape::cpus(4));

/// How long a call lingers so that calls allowed to overlap do overlap.
const LINGER: Duration = Duration::from_millis(15);
/// How long calls that must run together wait for each other before reporting failure.
const MEET: Duration = Duration::from_secs(30);

/// A fresh name for gauges and gates of one test.
fn fresh(what: &str) -> String {
    format!("actors::{what}#{}", unique_id())
}

/// The kinds and messages of an error and its `source()` chain, outermost first.
fn chain(e: &raykit::Error) -> Vec<(ErrorKind, String)> {
    let mut out = Vec::new();
    let mut cur: Option<&(dyn std::error::Error + 'static)> = Some(e);
    while let Some(err) = cur {
        let r = err
            .downcast_ref::<raykit::Error>()
            .expect("every source is a raykit::Error");
        out.push((r.kind(), r.to_string()));
        cur = err.source();
    }
    out
}

// ---------------------------------------------------------------------------------------------
// Actors used by the tests.

/// The counter of the examples, with one method of every shape.
#[derive(raykit::Actor)]
struct Counter {
    value: u64,
}

#[raykit::actor]
impl Counter {
    pub fn new(start: u64) -> Self {
        Counter { value: start }
    }

    /// `&mut self`, sync.
    pub fn incr(&mut self, by: u64) -> u64 {
        self.value += by;
        self.value
    }

    /// `&self`, sync.
    pub fn value(&self) -> u64 {
        self.value
    }

    /// `&self`, async.
    pub async fn value_async(&self) -> u64 {
        tokio::task::yield_now().await;
        self.value
    }

    /// `&mut self`, async, awaiting refs passed inside a `Vec`.
    pub async fn add_awaited(&mut self, refs: Vec<ObjectRef<u64>>) -> u64 {
        for r in refs {
            self.value += r.await.expect("awaited ref");
        }
        self.value
    }

    /// `&mut self`, async, awaiting a task it submits itself.
    pub async fn add_doubled(&mut self, x: u64) -> u64 {
        let d = double::remote(x).await.expect("double");
        self.value += d;
        self.value
    }

    /// Unit-returning, sync.
    pub fn reset(&mut self) {
        self.value = 0;
    }

    /// Unit-returning, async.
    pub async fn set_async(&mut self, v: u64) {
        tokio::task::yield_now().await;
        self.value = v;
    }

    pub fn explode(&self, msg: String) -> u64 {
        panic!("{msg}")
    }

    pub fn explode_mut(&mut self, msg: String) -> u64 {
        panic!("{msg}")
    }

    pub async fn explode_async(&self, msg: String) -> u64 {
        tokio::task::yield_now().await;
        panic!("{msg}")
    }

    /// Uses the private helpers below.
    pub fn add_twice(&mut self, by: u64) -> u64 {
        self.bump(by);
        self.bump(by);
        self.value
    }

    /// Uses a private helper whose argument types could never cross a remote boundary: it
    /// compiles only because private methods are not turned into handle methods.
    pub fn describe(&self, prefix: String) -> String {
        self.describe_with(&prefix, Rc::new(self.value))
    }

    /// Arguments bound by patterns, and `Self` inside an argument type.
    pub fn patterns(&self, mut a: u64, _: u64, (b, c): (u64, u64)) -> u64 {
        a += 1;
        self.value + a + b + c
    }

    /// Adds the value of another counter, reached through a handle typed with `Self`.
    pub fn add_from(&mut self, other: ActorHandle<Self>) -> u64 {
        self.value += raykit::get(&other.value()).expect("value of the other counter");
        self.value
    }

    /// A `pub` associated function without a receiver stays an ordinary associated function.
    pub fn kind() -> &'static str {
        "counter"
    }

    fn bump(&mut self, by: u64) {
        self.value += by;
    }

    fn describe_with(&self, prefix: &str, value: Rc<u64>) -> String {
        format!("{prefix}{value}")
    }
}

#[raykit::remote]
fn double(x: u64) -> u64 {
    2 * x
}

#[raykit::remote]
fn fail_with(msg: String) -> u64 {
    panic!("{msg}")
}

/// Waits at the gate `name` (without holding a CPU), then returns `value`.
#[raykit::remote(num_cpus = 0)]
fn gated(name: String, value: u64) -> u64 {
    gate(&name).wait();
    value
}

#[raykit::remote]
async fn async_seven() -> u64 {
    tokio::task::yield_now().await;
    7
}

/// Appends what it is given: the order of the log is the order the calls ran.
#[derive(raykit::Actor)]
struct Log {
    items: Vec<u64>,
}

#[raykit::actor]
impl Log {
    pub fn new() -> Self {
        Log { items: Vec::new() }
    }

    pub fn push(&mut self, x: u64) {
        self.items.push(x);
    }

    pub async fn push_async(&mut self, x: u64) {
        tokio::task::yield_now().await;
        self.items.push(x);
    }

    pub fn items(&self) -> Vec<u64> {
        self.items.clone()
    }

    /// Records `key` where the test sees it, for side effects nobody reads a ref of.
    pub fn record(&mut self, key: String) {
        seen(&key).add(1);
    }
}

/// How often [`Log::record`] recorded `key`.
fn seen(key: &str) -> &'static raykit_tests::Counter {
    raykit_tests::counter(&format!("seen {key}"))
}

/// Runs inside the gauge `name` for [`LINGER`] and reports whether it saw a violation:
/// more than `limit` calls at once, an exclusive call next to another call, or a shared call
/// next to an exclusive one. Exclusive calls also stand in the gauge `name/exclusive`.
struct Occupancy {
    start: Instant,
    exclusive: bool,
    limit: usize,
    all: &'static raykit_tests::Gauge,
    excl: &'static raykit_tests::Gauge,
    ok: bool,
}

impl Occupancy {
    fn new(name: &str, exclusive: bool, limit: usize) -> Self {
        Occupancy {
            start: Instant::now(),
            exclusive,
            limit,
            all: gauge(name),
            excl: gauge(&format!("{name}/exclusive")),
            ok: true,
        }
    }

    /// One look: false once the linger is over or a violation was seen.
    fn step(&mut self) -> bool {
        if self.exclusive && self.all.running() != 1 {
            self.ok = false;
        }
        if !self.exclusive && self.excl.running() > 0 {
            self.ok = false;
        }
        if self.all.max() > self.limit {
            self.ok = false;
        }
        self.ok && self.start.elapsed() < LINGER
    }

    fn run_sync(mut self) -> bool {
        let _in = self.all.enter();
        let _ex = self.exclusive.then(|| self.excl.enter());
        while self.step() {
            std::thread::sleep(Duration::from_micros(200));
        }
        self.ok
    }

    async fn run_async(mut self) -> bool {
        let _in = self.all.enter();
        let _ex = self.exclusive.then(|| self.excl.enter());
        while self.step() {
            tokio::time::sleep(Duration::from_micros(200)).await;
        }
        self.ok
    }
}

/// Default options: one call at a time.
#[derive(raykit::Actor)]
struct Single {
    name: String,
    meet: Rendezvous,
}

#[raykit::actor]
impl Single {
    pub fn new(name: String) -> Self {
        Single {
            name,
            meet: Rendezvous::default(),
        }
    }

    pub fn shared(&self) -> bool {
        Occupancy::new(&self.name, false, 1).run_sync()
    }

    pub fn exclusive(&mut self) -> bool {
        Occupancy::new(&self.name, true, 1).run_sync()
    }

    pub async fn shared_async(&self) -> bool {
        Occupancy::new(&self.name, false, 1).run_async().await
    }

    pub async fn exclusive_async(&mut self) -> bool {
        Occupancy::new(&self.name, true, 1).run_async().await
    }

    /// Meets `n - 1` other calls; true when they were all there at once.
    pub fn meet(&self, n: usize) -> bool {
        self.meet.meet(n, MEET)
    }
}

/// Up to four `&self` calls at once.
#[derive(raykit::Actor)]
#[actor(max_concurrency = 4)]
struct Wide {
    name: String,
    limit: usize,
    meet: Rendezvous,
    barrier: tokio::sync::Barrier,
}

#[raykit::actor]
impl Wide {
    /// `limit`: how many calls at once the test allows (4 unless options override it).
    pub fn new(name: String, limit: usize) -> Self {
        Wide {
            name,
            limit,
            meet: Rendezvous::default(),
            barrier: tokio::sync::Barrier::new(2),
        }
    }

    pub fn shared(&self) -> bool {
        Occupancy::new(&self.name, false, self.limit).run_sync()
    }

    pub fn exclusive(&mut self) -> bool {
        Occupancy::new(&self.name, true, self.limit).run_sync()
    }

    pub async fn shared_async(&self) -> bool {
        Occupancy::new(&self.name, false, self.limit)
            .run_async()
            .await
    }

    pub async fn exclusive_async(&mut self) -> bool {
        Occupancy::new(&self.name, true, self.limit)
            .run_async()
            .await
    }

    /// Meets `n - 1` other calls; true when they were all there at once.
    pub fn meet(&self, n: usize) -> bool {
        self.meet.meet(n, MEET)
    }

    /// Waits at a barrier of two, asynchronously; true when the other call came.
    pub async fn meet_async(&self) -> bool {
        tokio::time::timeout(MEET, self.barrier.wait())
            .await
            .is_ok()
    }
}

/// Blocks a sync method at a gate.
#[derive(raykit::Actor)]
struct Blocker;

#[raykit::actor]
impl Blocker {
    pub fn new() -> Self {
        Blocker
    }

    /// Stands in the gauge `name` until the gate `name` opens.
    pub fn block(&self, name: String) -> bool {
        let _in = gauge(&name).enter();
        gate(&name).wait();
        true
    }

    pub async fn ping(&self) -> u64 {
        tokio::task::yield_now().await;
        7
    }
}

/// Its constructor waits at a gate, then panics.
#[derive(raykit::Actor)]
struct Fragile {
    value: u64,
}

#[raykit::actor]
impl Fragile {
    pub fn new(gate_name: String, msg: String) -> Self {
        gate(&gate_name).wait();
        if !msg.is_empty() {
            panic!("{msg}");
        }
        Fragile { value: 1 }
    }

    pub fn value(&self) -> u64 {
        self.value
    }

    pub async fn value_async(&self) -> u64 {
        self.value
    }

    pub fn incr(&mut self) -> u64 {
        self.value += 1;
        self.value
    }
}

/// Calls on a `&ActorHandle<T>` need no import beyond the actor's type: this module has no
/// `use` at all.
mod no_imports {
    pub(super) fn bump(h: &raykit::ActorHandle<super::Counter>) -> u64 {
        raykit::get(&h.incr(1)).expect("incr")
    }
}

// ---------------------------------------------------------------------------------------------
// The generated API.

#[test]
fn remote_options_and_every_method_shape() {
    init();
    within(60, || {
        let c: ActorHandle<Counter> = Counter::remote(10);
        let a: ObjectRef<u64> = c.incr(5);
        assert_eq!(raykit::get(&a).unwrap(), 15);
        assert_eq!(raykit::get(&c.value()).unwrap(), 15);
        assert_eq!(raykit::get(&c.value_async()).unwrap(), 15);
        assert_eq!(no_imports::bump(&c), 16);

        // Unit-returning methods give `ObjectRef<()>`, sync and async.
        let r: ObjectRef<()> = c.reset();
        raykit::get(&r).unwrap();
        assert_eq!(raykit::get(&c.value()).unwrap(), 0);
        let r: ObjectRef<()> = c.set_async(9);
        raykit::get(&r).unwrap();
        assert_eq!(raykit::get(&c.value()).unwrap(), 9);

        // Private helpers run inside the actor; pub associated fns stay plain functions.
        assert_eq!(raykit::get(&c.add_twice(3)).unwrap(), 15);
        assert_eq!(raykit::get(&c.describe("v=".to_owned())).unwrap(), "v=15");
        assert_eq!(Counter::kind(), "counter");
        assert_eq!(
            raykit::get(&c.patterns(1, 1000, (10, 100))).unwrap(),
            15 + 2 + 110
        );
        let other = Counter::remote(5);
        assert_eq!(raykit::get(&c.add_from(other)).unwrap(), 20);

        // `options(..).remote(..)` creates an actor just like `remote(..)`.
        let o = Counter::options(ActorOptions::new()).remote(100);
        assert_eq!(raykit::get(&o.incr(1)).unwrap(), 101);
        assert_ne!(o.id(), c.id());

        // Refs as futures.
        let v = futures::executor::block_on(c.value()).unwrap();
        assert_eq!(v, 20);
    });
}

#[test]
fn arguments_accept_values_owned_refs_and_borrowed_refs() {
    init();
    within(60, || {
        // Constructor arguments too.
        let start = raykit::put(5u64);
        let c = Counter::remote(&start);
        assert_eq!(raykit::get(&c.value()).unwrap(), 5);
        let c2 = Counter::remote(double::remote(4));
        assert_eq!(raykit::get(&c2.value()).unwrap(), 8);

        let by = double::remote(1); // 2
        assert_eq!(raykit::get(&c.incr(&by)).unwrap(), 7);
        assert_eq!(raykit::get(&c.incr(by)).unwrap(), 9);
        assert_eq!(raykit::get(&c.incr(raykit::put(1u64))).unwrap(), 10);
        // The ref of one call as the argument of the next.
        let v = c.value();
        assert_eq!(raykit::get(&c.incr(&v)).unwrap(), 20);
        // A ref argument of an async method.
        assert_eq!(
            raykit::get(&c.add_awaited(vec![raykit::put(1u64), double::remote(2)])).unwrap(),
            25
        );
        assert_eq!(raykit::get(&c.add_doubled(double::remote(1))).unwrap(), 29);
    });
}

#[test]
fn a_failed_argument_fails_that_call_only() {
    init();
    within(60, || {
        let c = Counter::remote(1);
        let bad = fail_with::remote("no number for you".to_owned());
        let e = raykit::get(&c.incr(&bad)).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::DependencyFailed, "{e:?}");
        assert!(e.to_string().contains("Counter::incr"), "{e}");
        assert_eq!(e.root_cause().kind(), ErrorKind::TaskPanicked);
        assert!(e.root_cause().to_string().contains("no number for you"));
        // The actor keeps serving, with its state.
        assert_eq!(raykit::get(&c.incr(1)).unwrap(), 2);
    });
}

// ---------------------------------------------------------------------------------------------
// Order.

/// Calls `counter.incr(by)` from inside a task (a caller of its own) and returns the answer.
#[raykit::remote]
fn incr_from_a_task(counter: ActorHandle<Counter>, by: u64) -> u64 {
    raykit::get(&counter.incr(by)).unwrap_or(u64::MAX)
}

#[test]
fn a_callers_ready_call_does_not_wait_behind_another_callers_call_that_waits_for_an_argument() {
    init();
    within(60, || {
        let name = fresh("per_caller_order");
        let counter = Counter::remote(0);
        // This thread's call waits for an argument that comes only when the gate opens.
        let slow = gated::remote(name.clone(), 100);
        let waiting = counter.incr(&slow);
        let after = counter.incr(1);
        // Another caller's ready call runs meanwhile: waiting behind this thread's call would
        // hang here until `within` fails the test.
        assert_eq!(
            raykit::get(&incr_from_a_task::remote(counter.clone(), 10)).unwrap(),
            10
        );
        assert!(!waiting.is_ready() && !after.is_ready());
        // This thread's calls still run in the order it made them.
        gate(&name).open();
        assert_eq!(raykit::get(&waiting).unwrap(), 110);
        assert_eq!(raykit::get(&after).unwrap(), 111);
    });
}

#[test]
fn calls_run_in_submission_order() {
    init();
    within(60, || {
        let log = Log::remote();
        for i in 0..1000 {
            log.push(i); // the ref is dropped at once
        }
        assert_eq!(
            raykit::get(&log.items()).unwrap(),
            (0..1000).collect::<Vec<_>>()
        );
        // Sync and async methods share the one order.
        let log = Log::remote();
        for i in 0..200 {
            if i % 2 == 0 {
                log.push(i);
            } else {
                log.push_async(i);
            }
        }
        assert_eq!(
            raykit::get(&log.items()).unwrap(),
            (0..200).collect::<Vec<_>>()
        );
    });
}

#[test]
fn each_callers_calls_run_in_its_order() {
    init();
    within(60, || {
        let log = Log::remote();
        let callers: Vec<_> = (0..4u64)
            .map(|caller| {
                let log = log.clone();
                std::thread::spawn(move || {
                    for i in 0..250 {
                        if i % 3 == 0 {
                            log.push_async(caller * 10_000 + i);
                        } else {
                            log.push(caller * 10_000 + i);
                        }
                    }
                })
            })
            .collect();
        for c in callers {
            c.join().unwrap();
        }
        let items = raykit::get(&log.items()).unwrap();
        assert_eq!(items.len(), 1000);
        for caller in 0..4 {
            let mine: Vec<u64> = items
                .iter()
                .filter(|x| **x / 10_000 == caller)
                .map(|x| x % 10_000)
                .collect();
            assert_eq!(mine, (0..250).collect::<Vec<_>>(), "caller {caller}");
        }
    });
}

#[test]
fn a_call_waiting_for_its_argument_keeps_its_place() {
    init();
    within(60, || {
        let name = fresh("a_call_waiting_for_its_argument_keeps_its_place");
        let log = Log::remote();
        let slow = gated::remote(name.clone(), 1);
        log.push(0);
        log.push(&slow); // cannot run until the gate opens
        log.push(2); // a plain value, but after the pending one
        log.push(raykit::put(3u64));
        log.push_async(4);
        let items = log.items();
        // The gate is closed, so `slow` is pending, so neither it nor anything after it ran.
        assert!(!slow.is_ready());
        assert!(!items.is_ready());
        gate(&name).open();
        assert_eq!(raykit::get(&items).unwrap(), vec![0, 1, 2, 3, 4]);
    });
}

#[test]
fn dropping_a_call_ref_does_not_cancel_the_call() {
    init();
    within(60, || {
        let key = fresh("dropping_a_call_ref_does_not_cancel_the_call");
        let log = Log::remote();
        let slow = gated::remote(key.clone(), 7);
        drop(log.push(&slow)); // waits for its argument, its ref long gone
        drop(log.record(key.clone()));
        drop(log); // and no handle left either: queued calls still run
        assert_eq!(seen(&key).get(), 0);
        gate(&key).open();
        eventually(30, "the dropped call ran", || seen(&key).get() == 1);

        // The calls whose refs were dropped changed the state later calls see.
        let c = Counter::remote(0);
        for _ in 0..100 {
            c.incr(1);
        }
        assert_eq!(raykit::get(&c.value()).unwrap(), 100);
    });
}

// ---------------------------------------------------------------------------------------------
// Concurrency.

/// Submits `rounds` of every method shape of `Single` from `threads` threads at once.
fn hammer_single(h: &ActorHandle<Single>, threads: usize, rounds: usize) -> Vec<bool> {
    let workers: Vec<_> = (0..threads)
        .map(|_| {
            let h = h.clone();
            std::thread::spawn(move || {
                let mut refs = Vec::new();
                for _ in 0..rounds {
                    refs.push(h.shared());
                    refs.push(h.exclusive());
                    refs.push(h.shared_async());
                    refs.push(h.exclusive_async());
                }
                raykit::get_all(&refs).unwrap()
            })
        })
        .collect();
    workers
        .into_iter()
        .flat_map(|w| w.join().unwrap())
        .collect()
}

#[test]
fn one_call_at_a_time_by_default() {
    init();
    within(120, || {
        let name = fresh("one_call_at_a_time_by_default");
        let h = Single::remote(name.clone());
        let oks = hammer_single(&h, 4, 3);
        assert_eq!(oks.len(), 48);
        assert!(oks.iter().all(|ok| *ok), "a call saw another call running");
        assert_eq!(gauge(&name).max(), 1, "calls of one actor overlapped");
        assert_eq!(gauge(&name).done(), 48);
    });
}

#[test]
fn max_concurrency_lets_shared_calls_overlap() {
    init();
    within(120, || {
        // Two `&self` calls that can only both return true if they run at the same time.
        let w = Wide::remote(fresh("overlap2"), 4);
        let pair = [w.meet(2), w.meet(2)];
        assert_eq!(raykit::get_all(&pair).unwrap(), vec![true, true]);

        // Four at once, the configured maximum.
        let w = Wide::remote(fresh("overlap4"), 4);
        let four: Vec<_> = (0..4).map(|_| w.meet(4)).collect();
        assert!(raykit::get_all(&four).unwrap().into_iter().all(|m| m));

        // Async `&self` methods overlap too: a barrier of two that both must pass.
        let w = Wide::remote(fresh("overlap_async"), 4);
        let pair = [w.meet_async(), w.meet_async()];
        assert_eq!(raykit::get_all(&pair).unwrap(), vec![true, true]);

        // Never more than four at once.
        let name = fresh("at_most_four");
        let w = Wide::remote(name.clone(), 4);
        let refs: Vec<_> = (0..16)
            .map(|i| {
                if i % 2 == 0 {
                    w.shared()
                } else {
                    w.shared_async()
                }
            })
            .collect();
        assert!(raykit::get_all(&refs).unwrap().into_iter().all(|ok| ok));
        let max = gauge(&name).max();
        assert!(
            (1..=4).contains(&max),
            "{max} calls at once, max_concurrency 4"
        );
    });
}

#[test]
fn max_concurrency_keeps_mut_calls_exclusive() {
    init();
    within(120, || {
        let name = fresh("max_concurrency_keeps_mut_calls_exclusive");
        let w = Wide::remote(name.clone(), 4);
        let mut refs = Vec::new();
        for i in 0..40 {
            refs.push(match i % 5 {
                0 | 1 => w.shared(),
                2 => w.exclusive(),
                3 => w.shared_async(),
                _ => w.exclusive_async(),
            });
        }
        let oks = raykit::get_all(&refs).unwrap();
        assert!(
            oks.iter().all(|ok| *ok),
            "an exclusive call overlapped another call: {oks:?}"
        );
        assert_eq!(gauge(&name).done(), 40);
        assert!(gauge(&format!("{name}/exclusive")).max() <= 1);
        assert!(gauge(&name).max() <= 4);
    });
}

#[test]
fn options_override_max_concurrency() {
    init();
    within(120, || {
        // Down: the derive says 4, the options say 1.
        let name = fresh("options_override_max_concurrency/down");
        let w = Wide::options(ActorOptions::new().max_concurrency(1)).remote(name.clone(), 1);
        let refs: Vec<_> = (0..12)
            .map(|i| {
                if i % 2 == 0 {
                    w.shared()
                } else {
                    w.shared_async()
                }
            })
            .collect();
        assert!(raykit::get_all(&refs).unwrap().into_iter().all(|ok| ok));
        assert_eq!(gauge(&name).max(), 1);

        // Up: the derive says 1 (the default), the options say 2.
        let s = Single::options(ActorOptions::new().max_concurrency(2)).remote(fresh("up"));
        let pair = [s.meet(2), s.meet(2)];
        assert_eq!(raykit::get_all(&pair).unwrap(), vec![true, true]);
    });
}

#[test]
fn sync_methods_never_block_the_async_executor() {
    init();
    within(120, || {
        let name = fresh("sync_methods_never_block_the_async_executor");
        // More blocked sync methods than the async executor has threads.
        let n = std::thread::available_parallelism().map_or(2, |p| p.get()) + 2;
        let blockers: Vec<ActorHandle<Blocker>> = (0..n).map(|_| Blocker::remote()).collect();
        let blocked: Vec<_> = blockers.iter().map(|b| b.block(name.clone())).collect();
        eventually(30, "every sync method is blocked at its gate", || {
            gauge(&name).running() == n
        });
        // Async work still runs: an async method of another actor and an async task.
        let other = Blocker::remote();
        let pings = [other.ping(), async_seven::remote()];
        let (ready, _) = raykit::wait(&pings, 2, Some(Duration::from_secs(30)));
        gate(&name).open();
        assert_eq!(
            ready.len(),
            2,
            "async work starved behind blocked sync methods"
        );
        assert_eq!(raykit::get_all(&pings).unwrap(), vec![7, 7]);
        assert!(raykit::get_all(&blocked).unwrap().into_iter().all(|b| b));
    });
}

#[test]
fn async_methods_await_refs_without_blocking_others() {
    init();
    within(120, || {
        let name = fresh("async_methods_await_refs_without_blocking_others");
        let n = std::thread::available_parallelism().map_or(2, |p| p.get()) + 2;
        let counters: Vec<_> = (0..n as u64).map(Counter::remote).collect();
        // Each awaits a ref that stays pending until the gate opens.
        let awaiting: Vec<_> = counters
            .iter()
            .enumerate()
            .map(|(i, c)| {
                let pending = gated::options(TaskOptions::new().num_cpus(0))
                    .remote(name.clone(), 100 + i as u64);
                c.add_awaited(vec![raykit::put(1u64), pending])
            })
            .collect();
        // The awaiting actor is busy: its next call waits behind the awaiting one.
        let behind = counters[0].value();
        // Meanwhile other actors' async methods run.
        let other = Counter::remote(41);
        let quick = other.value_async();
        let (ready, _) = raykit::wait(
            std::slice::from_ref(&quick),
            1,
            Some(Duration::from_secs(30)),
        );
        let behind_ran = behind.is_ready();
        gate(&name).open();
        assert_eq!(
            ready.len(),
            1,
            "an async method awaiting a ref blocked the executor"
        );
        assert!(!behind_ran, "a call ran while an earlier call awaited");
        assert_eq!(raykit::get(&quick).unwrap(), 41);
        let sums = raykit::get_all(&awaiting).unwrap();
        let want: Vec<u64> = (0..n as u64).map(|i| i + 1 + 100 + i).collect();
        assert_eq!(sums, want);
        assert_eq!(raykit::get(&behind).unwrap(), 101);
        // An async method awaiting a task it submits itself.
        assert_eq!(raykit::get(&counters[1].add_doubled(5)).unwrap(), 113);
    });
}

// ---------------------------------------------------------------------------------------------
// Panics.

#[test]
fn a_panicking_method_fails_that_call_only() {
    init();
    within(60, || {
        let c = Counter::remote(5);
        let cases = [
            ("Counter::explode", c.explode("kaboom 42".to_owned())),
            (
                "Counter::explode_mut",
                c.explode_mut("kaboom 43".to_owned()),
            ),
            (
                "Counter::explode_async",
                c.explode_async("kaboom 44".to_owned()),
            ),
        ];
        for (i, (method, r)) in cases.iter().enumerate() {
            let e = raykit::get(r).unwrap_err();
            assert_eq!(e.kind(), ErrorKind::TaskPanicked, "{e:?}");
            let msg = e.to_string();
            assert!(msg.contains(method), "method name missing: {msg}");
            assert!(
                msg.contains(&format!("kaboom {}", 42 + i)),
                "panic text missing: {msg}"
            );
            // The error is the same on every read.
            assert_eq!(raykit::get(r).unwrap_err().to_string(), msg);
        }
        // The actor keeps serving, with its state.
        assert_eq!(raykit::get(&c.value()).unwrap(), 5);
        assert_eq!(raykit::get(&c.incr(1)).unwrap(), 6);
        assert_eq!(raykit::get(&c.value_async()).unwrap(), 6);
        // Panics interleaved with good calls: each call has its own outcome, in order.
        let refs: Vec<_> = (0..20)
            .map(|i| {
                if i % 4 == 0 {
                    c.explode_mut(format!("round {i}"))
                } else {
                    c.incr(1)
                }
            })
            .collect();
        let mut expect = 6;
        for (i, r) in refs.iter().enumerate() {
            match raykit::get(r) {
                Ok(v) => {
                    assert!(i % 4 != 0);
                    expect += 1;
                    assert_eq!(v, expect);
                }
                Err(e) => {
                    assert_eq!(i % 4, 0, "{e}");
                    assert!(e.to_string().contains(&format!("round {i}")));
                }
            }
        }
    });
}

#[test]
fn a_panicking_constructor_fails_every_call() {
    init();
    within(60, || {
        let gate_name = fresh("a_panicking_constructor_fails_every_call");
        let f = Fragile::remote(gate_name.clone(), "cannot start: disk on fire".to_owned());
        // Calls queued while the constructor has not run yet...
        let early = [f.value(), f.incr(), f.value_async()];
        gate(&gate_name).open();
        // ...and calls made after it died.
        let late = [f.value(), f.incr(), f.value_async()];
        for r in early.iter().chain(late.iter()) {
            let e = raykit::get(r).unwrap_err();
            assert_eq!(e.kind(), ErrorKind::ActorDied, "{e:?}");
            let msg = e.to_string();
            assert!(msg.contains("Fragile::new"), "constructor not named: {msg}");
            assert!(
                msg.contains("cannot start: disk on fire"),
                "panic text missing: {msg}"
            );
        }
        // A clone of the handle is no better.
        let e = raykit::get(&f.clone().value()).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::ActorDied);

        // The same type with a constructor that does not panic works.
        let ok_gate = fresh("a_panicking_constructor_fails_every_call/ok");
        gate(&ok_gate).open();
        let g = Fragile::remote(ok_gate, String::new());
        assert_eq!(raykit::get(&g.incr()).unwrap(), 2);
    });
}

#[test]
fn a_failed_constructor_argument_kills_the_actor_with_the_cause() {
    init();
    within(60, || {
        let c = Counter::remote(fail_with::remote("no start value".to_owned()));
        let e = raykit::get(&c.value()).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::ActorDied, "{e:?}");
        let kinds: Vec<ErrorKind> = chain(&e).into_iter().map(|(k, _)| k).collect();
        assert!(kinds.contains(&ErrorKind::DependencyFailed), "{kinds:?}");
        assert_eq!(e.root_cause().kind(), ErrorKind::TaskPanicked);
        assert!(e.root_cause().to_string().contains("no start value"));
    });
}

// ---------------------------------------------------------------------------------------------
// Scale.

#[test]
fn a_thousand_actors() {
    init();
    within(120, || {
        let actors: Vec<ActorHandle<Counter>> = (0..1000u64).map(Counter::remote).collect();
        for (i, a) in actors.iter().enumerate() {
            a.incr(i as u64);
            a.incr(1);
        }
        let values: Vec<ObjectRef<u64>> = actors.iter().map(|a| a.value()).collect();
        let got = raykit::get_all(&values).unwrap();
        let want: Vec<u64> = (0..1000u64).map(|i| 2 * i + 1).collect();
        assert_eq!(got, want);
        let ids: HashSet<_> = actors.iter().map(|a| a.id()).collect();
        assert_eq!(ids.len(), 1000);
    });
}
