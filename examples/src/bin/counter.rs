//! Ports the `Counter` actor of seeds 002 and 003: a class with `increment` becomes a
//! `#[derive(raykit::Actor)]` struct and a `#[raykit::actor]` impl; each call returns a ref at
//! once, calls run one at a time in the order they were sent, and the state stays in the actor.
//!
//! Then the same counter with `max_concurrency = 4`: `&self` reads may overlap (the type
//! system says which methods only read), while `&mut self` increments still run alone.

use std::time::Instant;

use raykit::{ActorHandle, ObjectRef};
use raykit_examples::{header, print_wall_time, sleep, timed};

/// Seed 002's counter: `increment` wraps around at `cap`.
#[derive(raykit::Actor)]
struct Counter {
    cap: u64,
    val: u64,
}

#[raykit::actor]
impl Counter {
    /// `Counter.remote(cap)`.
    pub fn new(cap: u64) -> Self {
        Counter { cap, val: 0 }
    }

    /// `self.val = (self.val + inc) % self.cap`.
    pub fn increment(&mut self, inc: u64) -> u64 {
        self.val = (self.val + inc) % self.cap;
        self.val
    }

    /// The current value.
    pub fn get_value(&self) -> u64 {
        self.val
    }
}

/// A counter whose reads are slow, to show `max_concurrency`.
#[derive(raykit::Actor)]
#[actor(max_concurrency = 4)]
struct SlowReads {
    value: u64,
}

#[raykit::actor]
impl SlowReads {
    /// Starts at zero.
    pub fn new() -> Self {
        SlowReads { value: 0 }
    }

    /// Exclusive: never overlaps another call.
    pub fn incr(&mut self) -> u64 {
        self.value += 1;
        self.value
    }

    /// Shared: up to four of these run at once.
    pub fn read_slowly(&self) -> u64 {
        sleep(0.2);
        self.value
    }
}

fn main() -> raykit::Result<()> {
    let start = Instant::now();
    header("counter");
    raykit::init()?;

    let counter: ActorHandle<Counter> = Counter::remote(10);
    let results: Vec<ObjectRef<u64>> = (0..15).map(|_| counter.increment(1)).collect();
    let values = raykit::get_all(&results)?;
    println!("increment x15 with cap 10: {values:?}");
    println!("final value: {}", raykit::get(&counter.get_value())?);

    let slow: ActorHandle<SlowReads> = SlowReads::remote();
    for _ in 0..3 {
        slow.incr();
    }
    let (reads, t) = timed(|| {
        let refs: Vec<ObjectRef<u64>> = (0..4).map(|_| slow.read_slowly()).collect();
        raykit::get_all(&refs)
    });
    println!(
        "4 slow reads (0.2 s each) with max_concurrency = 4: {:?} in {:.2} s",
        reads?,
        t.as_secs_f64()
    );
    print_wall_time(start);
    Ok(())
}
