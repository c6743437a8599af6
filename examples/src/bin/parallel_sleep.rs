//! Ports the first program of seed 000 ("Parallel and Distributed Python With Ray", 2018):
//! fifty calls of `f(x)`, which sleeps 0.1 s, first as a plain loop and then as remote tasks
//! collected with one `get_all`.
//!
//! The parallel run uses the default runtime (`raykit::init()`), so, as the seed says, the
//! number of concurrent tasks equals the number of cores: on 2 cores 50 x 0.1 s takes 2.5 s.
//!
//! Options: `--scale X` (or `RAYKIT_EXAMPLE_SCALE`) multiplies the sleep.

use raykit::ObjectRef;
use raykit_examples::{header, print_wall_time, sleep, speedup, timed};

const CALLS: i64 = 50;

/// "Do a lot of computation here": sleeps 0.1 s and returns `x`.
#[raykit::remote]
fn f(x: i64) -> i64 {
    sleep(0.1);
    x
}

fn main() -> raykit::Result<()> {
    let start = std::time::Instant::now();
    header("parallel_sleep");
    let info = raykit::init()?;
    println!(
        "CPUs: {}",
        info.resources().get("CPU").copied().unwrap_or(0.0)
    );

    // The serial loop: `f` is still an ordinary function.
    let (serial, t_serial) = timed(|| (0..CALLS).map(f).collect::<Vec<_>>());

    // The parallel loop: `f::remote` returns a ref at once; one `get_all` collects them.
    let (parallel, t_parallel) = timed(|| {
        let refs: Vec<ObjectRef<i64>> = (0..CALLS).map(f::remote).collect();
        raykit::get_all(&refs)
    });
    let parallel = parallel?;

    println!("results equal: {}", serial == parallel);
    println!("sum of results: {}", parallel.iter().sum::<i64>());
    println!("serial:   {:.3} s", t_serial.as_secs_f64());
    println!("parallel: {:.3} s", t_parallel.as_secs_f64());
    println!("speedup:  {:.2}x", speedup(t_serial, t_parallel));
    raykit::shutdown();
    print_wall_time(start);
    Ok(())
}
