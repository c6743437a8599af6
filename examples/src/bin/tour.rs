//! A tour of raykit in a few seconds: the core API of Ray's introductions (seeds 000 to 004),
//! one short section per feature. Remote functions and `get`/`get_all` (seed 000), refs passed
//! as arguments to build a task graph (seeds 000, 001), `put` (seed 003), `wait` (seed 002),
//! `num_returns`, per-call options and resources (seed 002), nested tasks (seed 004), async
//! remote functions, errors propagated from tasks back to the caller (seed 000), and actors
//! (seeds 000, 002, 003).
//!
//! Every section checks what it prints, so the tour exits with an error if raykit misbehaves.
//!
//! Options: `--scale X` (or `RAYKIT_EXAMPLE_SCALE`) multiplies every sleep.

use std::error::Error as _;
use std::time::{Duration, Instant};

use raykit::{ActorHandle, ActorOptions, ErrorKind, ObjectRef, TaskOptions};
use raykit_examples::{header, print_wall_time, scaled, sleep};

/// Squares a number.
#[raykit::remote]
fn square(x: i64) -> i64 {
    x * x
}

/// Adds two numbers.
#[raykit::remote]
fn add(a: i64, b: i64) -> i64 {
    a + b
}

/// Adds two numbers after a second of "work".
#[raykit::remote]
fn slow_add(a: i64, b: i64) -> i64 {
    sleep(1.0);
    a + b
}

/// Sums the bytes of a (large) buffer.
#[raykit::remote]
fn byte_sum(bytes: Vec<u8>) -> u64 {
    bytes.iter().map(|&b| u64::from(b)).sum()
}

/// Sleeps `secs` seconds and returns `id`.
#[raykit::remote]
fn nap(id: u32, secs: f64) -> u32 {
    sleep(secs);
    id
}

/// Two results, two refs: `min_max::remote(v)` returns `(ObjectRef<i64>, ObjectRef<i64>)`.
#[raykit::remote(num_returns = 2)]
fn min_max(v: Vec<i64>) -> (i64, i64) {
    let min = v.iter().copied().min().unwrap_or(0);
    let max = v.iter().copied().max().unwrap_or(0);
    (min, max)
}

/// Declares that each call needs two CPUs and one unit of the custom resource `custom`.
#[raykit::remote(num_cpus = 2, resources(custom = 1))]
fn wide(x: i64) -> i64 {
    x + 1
}

/// Which node runs this task.
#[raykit::remote]
fn where_am_i() -> String {
    raykit::node_id().to_string()
}

/// Sums `lo..hi` by splitting the range into nested tasks and waiting for them inside.
#[raykit::remote]
fn range_sum(lo: i64, hi: i64) -> i64 {
    if hi - lo <= 16 {
        return (lo..hi).sum();
    }
    let mid = lo + (hi - lo) / 2;
    let left = range_sum::remote(lo, mid);
    let right = range_sum::remote(mid, hi);
    raykit::get_all(&[left, right])
        .expect("a half failed")
        .iter()
        .sum()
}

/// Submits `n` tasks and returns their refs: refs are values like any other.
#[raykit::remote]
fn fan_out(n: i64) -> Vec<ObjectRef<i64>> {
    (0..n).map(square::remote).collect()
}

/// An async remote function: it awaits refs instead of blocking a thread on them.
#[raykit::remote]
async fn sum_of_squares(n: i64) -> i64 {
    let refs: Vec<ObjectRef<i64>> = (0..n).map(square::remote).collect();
    let mut total = 0;
    for r in refs {
        total += r.await.expect("square failed");
    }
    total
}

/// Fails on negative input, as a bug in a task would.
#[raykit::remote]
fn checked_sqrt(x: i64) -> i64 {
    if x < 0 {
        panic!("cannot take the square root of {x}");
    }
    (x as f64).sqrt() as i64
}

/// Seed 003's counter, as an actor: state kept between calls, one call at a time.
#[derive(raykit::Actor)]
struct Counter {
    value: u64,
}

#[raykit::actor]
impl Counter {
    /// The constructor: `Counter::remote(start)`.
    pub fn new(start: u64) -> Self {
        Counter { value: start }
    }

    /// Adds `by` and returns the new value.
    pub fn incr(&mut self, by: u64) -> u64 {
        self.value += by;
        self.value
    }

    /// The current value.
    pub fn value(&self) -> u64 {
        self.value
    }

    /// Always panics: the error reaches the caller, the actor keeps its state.
    pub fn fail(&self) -> u64 {
        panic!("counter refuses")
    }

    /// The value and its double, as two objects.
    #[raykit::method(num_returns = 2)]
    pub fn value_and_double(&self) -> (u64, u64) {
        (self.value, self.value * 2)
    }
}

/// A task that holds a handle and calls the actor, waiting for the answer.
#[raykit::remote]
fn bump(counter: ActorHandle<Counter>, by: u64) -> u64 {
    raykit::get(&counter.incr(by)).unwrap_or(0)
}

/// Prints a section title.
fn section(title: &str) {
    println!("\n-- {title}");
}

/// Stops the tour with an error when a check fails.
fn check(what: &str, ok: bool) -> raykit::Result<()> {
    println!("   {what}: {ok}");
    if ok {
        Ok(())
    } else {
        Err(raykit::Error::new(
            ErrorKind::Config,
            format!("tour check failed: {what}"),
        ))
    }
}

fn main() -> raykit::Result<()> {
    let start = Instant::now();
    header("tour");

    section("init");
    // 4 CPU slots (the sleeping tasks below do not need real cores) and a custom resource.
    let info = raykit_examples::init(raykit::Config::default().num_cpus(4).resource("custom", 1))?;
    println!("   node {}", info.node_id());
    println!("   resources {:?}", raykit::cluster_resources());
    let inside = raykit::get(&where_am_i::remote())?;
    check(
        "tasks run on this node",
        inside == info.node_id().to_string(),
    )?;

    section("remote functions, get and get_all");
    let refs: Vec<ObjectRef<i64>> = (0..8).map(square::remote).collect(); // return at once
    let squares = raykit::get_all(&refs)?;
    println!("   squares {squares:?}");
    check("square(3) still works as a plain call", square(3) == 9)?;
    check(
        "get_all in order",
        squares == vec![0, 1, 4, 9, 16, 25, 36, 49],
    )?;

    section("refs as arguments: a task graph");
    let a = add::remote(1, 2); // 3
    let b = add::remote(&a, 10); // runs when `a` is ready: 13
    let c = add::remote(a.clone(), b); // owned refs too: 16
    let c = raykit::get(&c)?;
    println!("   (1 + 2) + ((1 + 2) + 10) = {c}");
    check("chained result", c == 16)?;
    // The aggregation tree of seed 003, with adds that take a second each: depth 3, not 7.
    let t = Instant::now();
    let l1: Vec<ObjectRef<i64>> = (0..4)
        .map(|i| slow_add::remote(2 * i + 1, 2 * i + 2))
        .collect();
    let l2 = [
        slow_add::remote(&l1[0], &l1[1]),
        slow_add::remote(&l1[2], &l1[3]),
    ];
    let root = slow_add::remote(&l2[0], &l2[1]);
    let sum = raykit::get(&root)?;
    println!(
        "   tree sum of 1..=8 = {sum} in {:.2} s (3 levels of {:.2} s adds)",
        t.elapsed().as_secs_f64(),
        scaled(1.0).as_secs_f64()
    );
    check("tree sum", sum == 36)?;

    section("put");
    let buffer: ObjectRef<Vec<u8>> = raykit::put(vec![1u8; 1 << 20]); // stored once
    let sums = [byte_sum::remote(&buffer), byte_sum::remote(&buffer)]; // shared by two tasks
    let sums = raykit::get_all(&sums)?;
    println!("   two tasks summed the same 1 MiB object: {sums:?}");
    check("put object read by tasks", sums == vec![1 << 20, 1 << 20])?;
    check(
        "put object read back",
        raykit::get(&buffer)?.len() == 1 << 20,
    )?;

    section("wait");
    let naps = vec![
        nap::remote(0, 0.6),
        nap::remote(1, 0.1),
        nap::remote(2, 0.4),
    ];
    // Returns as soon as one is ready; the timeout only bounds the wait.
    let (ready, pending) = raykit::wait(&naps, 1, Some(Duration::from_secs(10)));
    let first = raykit::get_all(&ready)?;
    println!(
        "   first ready: {first:?}, still pending: {}",
        pending.len()
    );
    check(
        "one ready, two pending",
        ready.len() == 1 && pending.len() == 2,
    )?;
    let (ready, pending) = raykit::wait(&naps, naps.len(), None);
    check(
        "all ready after an unbounded wait",
        ready.len() == 3 && pending.is_empty(),
    )?;

    section("num_returns");
    let (min, max) = min_max::remote(vec![3, -7, 12, 5]);
    let (min, max) = (raykit::get(&min)?, raykit::get(&max)?);
    println!("   min {min}, max {max}");
    check("two refs from one task", (min, max) == (-7, 12))?;

    section("options and resources");
    let w = raykit::get(&wide::remote(41))?; // declared: 2 CPUs and 1 `custom`
    let two = raykit::get(&add::options(TaskOptions::new().num_cpus(2)).remote(1, 2))?;
    let half = raykit::get(&square::options(TaskOptions::new().num_cpus(0.5)).remote(5))?;
    println!("   wide(41) = {w}, add with 2 CPUs = {two}, square with half a CPU = {half}");
    check("options calls", (w, two, half) == (42, 3, 25))?;
    // A request no node can ever satisfy fails at once instead of hanging.
    let gpu = square::options(TaskOptions::new().num_gpus(1)).remote(2);
    match raykit::get(&gpu) {
        Err(e) => {
            println!("   asking for a GPU: {e}");
            check(
                "unsatisfiable request fails",
                e.kind() == ErrorKind::ResourceUnavailable,
            )?;
        }
        Ok(v) => check(&format!("a GPU task ran without GPUs ({v})"), false)?,
    }

    section("nested tasks");
    let total = raykit::get(&range_sum::remote(0, 1000))?;
    println!("   sum of 0..1000 by nested tasks = {total}");
    check("nested sum", total == 499_500)?;
    let inner_refs = raykit::get(&fan_out::remote(5))?;
    let inner = raykit::get_all(&inner_refs)?;
    println!("   refs returned by a task resolve to {inner:?}");
    check("refs returned by a task", inner == vec![0, 1, 4, 9, 16])?;

    section("async");
    // A ref is a future: await it under any executor.
    let s = futures::executor::block_on(sum_of_squares::remote(10))?;
    println!("   async sum of squares 0..10 = {s}");
    check("async remote function", s == 285)?;
    let x = futures::executor::block_on(async { add::remote(1, 2).await })?;
    check("awaiting a sync task's ref", x == 3)?;

    section("errors");
    println!("   (the panic message printed below comes from the failing task)");
    let bad = checked_sqrt::remote(-4);
    let err = match raykit::get(&bad) {
        Ok(v) => return check(&format!("a panicking task returned {v}"), false),
        Err(e) => e,
    };
    println!("   error: {err}");
    check(
        "the error names the function",
        err.kind() == ErrorKind::TaskPanicked && err.to_string().contains("checked_sqrt"),
    )?;
    check(
        "the error carries the panic message",
        err.to_string()
            .contains("cannot take the square root of -4"),
    )?;
    // A task whose argument failed fails too, and its error keeps the original as its source.
    let downstream = add::remote(&bad, 1);
    let err = match raykit::get(&downstream) {
        Ok(v) => {
            return check(
                &format!("a task with a failed argument returned {v}"),
                false,
            )
        }
        Err(e) => e,
    };
    println!("   downstream error: {err}");
    let mut cause = err.source();
    while let Some(c) = cause {
        println!("     caused by: {c}");
        cause = c.source();
    }
    check(
        "the failed argument is the source",
        err.kind() == ErrorKind::DependencyFailed
            && err.root_cause().to_string().contains("checked_sqrt"),
    )?;
    check(
        "healthy tasks still run",
        raykit::get(&checked_sqrt::remote(49))? == 7,
    )?;

    section("actors: a struct and its impl block become a stateful service (seed 003)");
    let counter: ActorHandle<Counter> = Counter::remote(0);
    let increments: Vec<ObjectRef<u64>> = (0..10).map(|_| counter.incr(1)).collect();
    let seen = raykit::get_all(&increments)?;
    println!("   10 calls of incr(1): {seen:?}");
    check(
        "calls ran one at a time, in order",
        seen == (1..=10).collect::<Vec<u64>>(),
    )?;
    let bumps: Vec<ObjectRef<u64>> = (0..4).map(|_| bump::remote(counter.clone(), 5)).collect();
    raykit::get_all(&bumps)?;
    check(
        "handles passed to tasks call the same actor",
        raykit::get(&counter.value())? == 30,
    )?;
    let named = Counter::options(ActorOptions::new().name("hits")).remote(100);
    let found: ActorHandle<Counter> = raykit::get_actor("hits")?;
    found.incr(1);
    check(
        "get_actor finds a named actor",
        raykit::get(&named.value())? == 101,
    )?;
    let failed = raykit::get(&counter.fail());
    check(
        "a panicking method fails only that call",
        failed.is_err() && raykit::get(&counter.value())? == 30,
    )?;
    named.kill();
    check(
        "a killed actor's calls fail",
        raykit::get(&found.value()).map_err(|e| e.kind()) == Err(ErrorKind::ActorDied),
    )?;

    let (value, double) = counter.value_and_double();
    check(
        "a method with num_returns = 2 gives two refs",
        (raykit::get(&value)?, raykit::get(&double)?) == (30, 60),
    )?;

    section("namespaces, timeouts, nodes and an actor pool");
    let svc = Counter::options(ActorOptions::new().name("svc").namespace("ops")).remote(1);
    let in_ops: ActorHandle<Counter> = raykit::get_actor_in("svc", "ops")?;
    check(
        "get_actor_in finds a name in another namespace, get_actor does not",
        raykit::get(&in_ops.value())? == 1 && raykit::get_actor::<Counter>("svc").is_err(),
    )?;
    check(
        "list_named_actors names it with its namespace",
        raykit::list_named_actors().contains(&("ops".to_owned(), "svc".to_owned())),
    )?;
    svc.kill();
    let late = nap::remote(9, 0.5);
    let timed_out = raykit::get_timeout(&late, Duration::from_millis(10));
    check(
        "get_timeout gives up with ErrorKind::Timeout",
        timed_out.map_err(|e| e.kind()) == Err(ErrorKind::Timeout),
    )?;
    check(
        "the same ref is read once it is ready",
        raykit::get_timeout(&late, Duration::from_secs(30))? == 9,
    )?;
    let nodes = raykit::nodes();
    println!("   nodes: {}", nodes.len());
    check("nodes() lists the head first", nodes[0].is_head)?;
    let mut pool = raykit::util::ActorPool::new(vec![Counter::remote(0), Counter::remote(100)]);
    let sums: Vec<u64> = pool
        .map(|a, by| a.incr(by), [1, 2, 3, 4])
        .collect::<raykit::Result<_>>()?;
    println!("   an ActorPool of two counters, incr(1..=4): {sums:?}");
    check("an ActorPool returns one result per value", sums.len() == 4)?;

    raykit::shutdown();
    println!("\ntour complete: all checks passed");
    print_wall_time(start);
    Ok(())
}
