//! Ports the `ray.wait` loop of seed 002 ("Distributed Programming with Ray", 2020):
//!
//! ```python
//! to_process = results
//! while to_process != []:
//!     processed, to_process = ray.wait(to_process, num_returns=1, timeout=1)
//!     print(ray.get(processed))
//! ```
//!
//! The seed waits on calls of a counter actor; here the refs come from tasks of different
//! durations, so results are handled in the order they finish rather than the order they were
//! submitted, and a wait that times out (nothing finished yet) shows up as an empty list.
//!
//! Options: `--scale X` (or `RAYKIT_EXAMPLE_SCALE`) multiplies every sleep and the timeout.

use raykit::ObjectRef;
use raykit_examples::{header, print_wall_time, scaled, sleep};

/// How long each task works, in seconds, in the order they are submitted.
const DURATIONS: [f64; 6] = [0.5, 0.1, 1.2, 0.3, 0.2, 0.4];
/// How long one `wait` waits for the next result, in seconds.
const TIMEOUT: f64 = 0.3;

/// Works `secs` seconds and reports which task it was.
#[raykit::remote]
fn work(id: usize, secs: f64) -> String {
    sleep(secs);
    format!("task {id} ({secs} s)")
}

fn main() -> raykit::Result<()> {
    let start = std::time::Instant::now();
    header("wait_loop");
    // The tasks sleep rather than compute: give each its own CPU slot so they all overlap.
    raykit_examples::init(raykit::Config::default().num_cpus(DURATIONS.len() as u32))?;

    let results: Vec<ObjectRef<String>> = DURATIONS
        .iter()
        .enumerate()
        .map(|(id, &secs)| work::remote(id, secs))
        .collect();

    let mut finished = Vec::new();
    let mut timeouts = 0;
    let mut to_process = results;
    while !to_process.is_empty() {
        let (processed, rest) = raykit::wait(&to_process, 1, Some(scaled(TIMEOUT)));
        to_process = rest;
        let values = raykit::get_all(&processed)?;
        if values.is_empty() {
            timeouts += 1;
        }
        println!("[{:6.3} s] {values:?}", start.elapsed().as_secs_f64());
        finished.extend(values);
    }

    let mut by_duration: Vec<usize> = (0..DURATIONS.len()).collect();
    by_duration.sort_by(|&a, &b| DURATIONS[a].total_cmp(&DURATIONS[b]));
    let expected_order: Vec<String> = by_duration
        .iter()
        .map(|&id| format!("task {id} ({} s)", DURATIONS[id]))
        .collect();
    let mut sorted = finished.clone();
    sorted.sort();
    let mut all = expected_order.clone();
    all.sort();
    println!("results received: {}", finished.len());
    println!("every task reported once: {}", sorted == all);
    println!(
        "finished in order of duration: {}",
        finished == expected_order
    );
    println!("waits that timed out: {timeouts}");
    raykit::shutdown();
    print_wall_time(start);
    Ok(())
}
