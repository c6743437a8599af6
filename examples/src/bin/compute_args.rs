//! Ports seed 004 ("Parallel/Distributed Programming with Python", slides): first `compute(idx)`
//! (one second of "heavy computation", returning `idx * idx`) four times, serially and as remote
//! tasks, with the speedup; then "Parallel Data Processing with Task Dependencies":
//! `get_arg1(10)` and `get_arg2(42)` run in parallel and feed `compute(a, b)` without passing
//! through the driver.
//!
//! In the slides `get_arg1` and `get_arg2` return at once; here they sleep 0.5 s each so that
//! running them in parallel visibly halves the time.
//!
//! Options: `--scale X` (or `RAYKIT_EXAMPLE_SCALE`) multiplies every sleep.

use raykit::ObjectRef;
use raykit_examples::{header, print_wall_time, sleep, speedup, timed};

/// A dummy function abstracting some heavy computation.
#[raykit::remote]
fn heavy_compute(idx: i64) -> i64 {
    sleep(1.0); // simulating a time delay
    idx * idx
}

/// The first argument of `compute`.
#[raykit::remote]
fn get_arg1(x: i64) -> i64 {
    sleep(0.5);
    x * x
}

/// The second argument of `compute`.
#[raykit::remote]
fn get_arg2(x: i64) -> i64 {
    sleep(0.5);
    x * x * x
}

/// Combines the two arguments.
#[raykit::remote]
fn compute(x: i64, y: i64) -> i64 {
    x + y
}

fn main() -> raykit::Result<()> {
    let start = std::time::Instant::now();
    header("compute_args");
    // The tasks here sleep rather than compute, so 4 CPU slots let them overlap on any machine.
    raykit_examples::init(raykit::Config::default().num_cpus(4))?;

    // Part 1: four calls of a one-second function.
    let tasks = 4;
    let (serial, t_serial) = timed(|| (0..tasks).map(heavy_compute).collect::<Vec<_>>());
    let (parallel, t_parallel) = timed(|| {
        let refs: Vec<ObjectRef<i64>> = (0..tasks).map(heavy_compute::remote).collect();
        raykit::get_all(&refs)
    });
    let parallel = parallel?;
    println!("compute results: {parallel:?}");
    println!("results equal: {}", serial == parallel);
    println!("serial:   {:.3} s", t_serial.as_secs_f64());
    println!("parallel: {:.3} s", t_parallel.as_secs_f64());
    println!("speedup:  {:.2}x", speedup(t_serial, t_parallel));

    // Part 2: two independent arguments computed in parallel, fed to `compute` as refs.
    let (local, t_local) = timed(|| {
        let a = get_arg1(10);
        let b = get_arg2(42);
        compute(a, b)
    });
    let (remote, t_remote) = timed(|| {
        let a = get_arg1::remote(10);
        let b = get_arg2::remote(42);
        let res = compute::remote(a, b); // runs when both are ready
        raykit::get(&res)
    });
    let remote = remote?;
    println!("compute(get_arg1(10), get_arg2(42)) = {remote}");
    println!("equals the local call: {}", local == remote);
    println!("local calls:  {:.3} s", t_local.as_secs_f64());
    println!("remote calls: {:.3} s", t_remote.as_secs_f64());
    raykit::shutdown();
    print_wall_time(start);
    Ok(())
}
