//! Ports the first Ray program of seed 001 ("Perform Distributed Computing easily using Ray in
//! Python"): sixteen calls of `my_awesome_function(sleep_time)`, whose sleep times add up to
//! 9.9 s, run one after the other and then as remote tasks.
//!
//! Options: `--scale X` (or `RAYKIT_EXAMPLE_SCALE`) multiplies every sleep.

use raykit::ObjectRef;
use raykit_examples::{header, print_wall_time, sleep, speedup, timed};

/// The sleep times of the seed, in seconds.
const SLEEP_TIMES: [f64; 16] = [
    0.1, 0.2, 0.1, 0.5, 0.7, 0.9, 0.5, 0.4, 1.5, 1.3, 1.0, 0.3, 0.7, 0.6, 0.3, 0.8,
];

/// Sleeps `sleep_time` seconds and says so.
#[raykit::remote]
fn my_awesome_function(sleep_time: f64) -> String {
    sleep(sleep_time);
    format!("Sleep time {sleep_time}")
}

fn main() -> raykit::Result<()> {
    let start = std::time::Instant::now();
    header("sleep_times");
    // Sleeping is not CPU work: a sleeping task holds its CPU slot but does not use the core.
    // Ray's tutorial gets its 1.65 s from a process pool as wide as the tasks; here we declare
    // 16 CPUs (one per task) so the runtime lets all 16 sleeps overlap even on a 2-core machine.
    // For CPU-bound tasks, keep the default (`raykit::init()`: one slot per core).
    raykit_examples::init(raykit::Config::default().num_cpus(16))?;

    let total: f64 = SLEEP_TIMES.iter().sum();
    println!(
        "Total time of sleep: {total:.1} for {} tasks",
        SLEEP_TIMES.len()
    );

    let (serial, t_serial) = timed(|| {
        SLEEP_TIMES
            .iter()
            .map(|&t| my_awesome_function(t))
            .collect::<Vec<_>>()
    });

    let (parallel, t_parallel) = timed(|| {
        let tasks: Vec<ObjectRef<String>> = SLEEP_TIMES
            .iter()
            .map(|&t| my_awesome_function::remote(t))
            .collect();
        raykit::get_all(&tasks)
    });
    let parallel = parallel?;

    for line in &parallel {
        println!("{line}");
    }
    println!("results equal: {}", serial == parallel);
    println!("serial:   {:.3} s", t_serial.as_secs_f64());
    println!("parallel: {:.3} s", t_parallel.as_secs_f64());
    println!("speedup:  {:.2}x", speedup(t_serial, t_parallel));
    raykit::shutdown();
    print_wall_time(start);
    Ok(())
}
