//! Ports "Tuning and profiling" of seed 003 ("Distributed Parallel System, Assignment 2 - Ray
//! Framework"): the O(n^2) `stress_function(n)` (the sum of `i * j` over all pairs below `n`),
//! called `n` times for each input size `n`, serially and as `n` remote tasks, printed as a
//! table with the speedup.
//!
//! The parallel run uses the default runtime (one CPU slot per core), since this is CPU work.
//!
//! Options: `--max N` (default 1000) and `--step N` (default 100) choose the sizes
//! `step, 2 step, .., max`. The full table does about 3 * 10^9 multiplications each way: build
//! with `--release` to see it in seconds rather than minutes.

use raykit::ObjectRef;
use raykit_examples::{arg, header, print_wall_time, speedup, timed};

/// `sum(i * j * 1 for i in range(num) for j in range(num) for k in range(1))`.
#[raykit::remote]
fn stress_function(num: u64) -> u64 {
    (0..num)
        .flat_map(|i| (0..num).flat_map(move |j| (0..1).map(move |_| i * j)))
        // `black_box` keeps the compiler from replacing the loops with a closed formula.
        .map(std::hint::black_box)
        .sum()
}

/// What `stress_function(num)` must return: `(num (num - 1) / 2)^2`.
fn expected(num: u64) -> u64 {
    let s = num * num.saturating_sub(1) / 2;
    s * s
}

fn main() -> raykit::Result<()> {
    let start = std::time::Instant::now();
    header("stress");
    let info = raykit::init()?;
    let max: u64 = arg("max").unwrap_or(1000);
    let step: u64 = arg("step").unwrap_or(100);
    if step == 0 {
        eprintln!("error: `--step` must be at least 1");
        std::process::exit(2);
    }
    println!(
        "CPUs: {}",
        info.resources().get("CPU").copied().unwrap_or(0.0)
    );

    let mut all_correct = true;
    println!(
        "{:>6} {:>12} {:>12} {:>8}",
        "n", "serial (s)", "parallel (s)", "speedup"
    );
    for t in (step..=max).step_by(step as usize) {
        let (serial, t_serial) = timed(|| (0..t).map(|_| stress_function(t)).collect::<Vec<_>>());
        let (parallel, t_parallel) = timed(|| {
            let refs: Vec<ObjectRef<u64>> = (0..t).map(|_| stress_function::remote(t)).collect();
            raykit::get_all(&refs)
        });
        let parallel = parallel?;
        let want = expected(t);
        all_correct &=
            serial.len() == t as usize && serial == parallel && serial.iter().all(|&r| r == want);
        println!(
            "{t:>6} {:>12.4} {:>12.4} {:>7.2}x",
            t_serial.as_secs_f64(),
            t_parallel.as_secs_f64(),
            speedup(t_serial, t_parallel)
        );
    }
    println!("all results correct: {all_correct}");
    raykit::shutdown();
    print_wall_time(start);
    Ok(())
}
