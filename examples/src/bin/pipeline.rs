//! Ports "Handling Task Dependencies" of seed 000 ("Parallel and Distributed Python With Ray",
//! 2018): `load_data` tasks feed `processing1` (the mean) and `processing2` (the standard
//! deviation).
//!
//! The first attempt `get`s every loaded data set in the driver before submitting the
//! processing, so no processing starts before all loading is done. The second passes the ref
//! of each `load_data` call straight to the processing tasks: each starts as soon as its own
//! data is ready, and the data never goes through the driver.
//!
//! The data are seeded by file name, so the results are the same in every run (and are checked
//! against a local computation); the sleeps are random, up to 0.2 s.
//!
//! Options: `--scale X` (or `RAYKIT_EXAMPLE_SCALE`) multiplies every sleep.

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use raykit::ObjectRef;
use raykit_examples::{header, print_wall_time, sleep, timed};

/// Side of the square data set, as in the seed (100 x 100).
const SIDE: usize = 100;
/// The longest random sleep of a task, in seconds.
const MAX_SLEEP: f64 = 0.2;

/// Sleeps a random time in `[0, MAX_SLEEP)`: the stand-in for I/O or work.
fn random_sleep() {
    sleep(rand::rng().random_range(0.0..MAX_SLEEP));
}

/// FNV-1a: a seed from a file name that is the same in every run and on every platform.
fn seed_of(name: &str) -> u64 {
    name.bytes().fold(0xcbf2_9ce4_8422_2325, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    })
}

/// The "file": `SIDE * SIDE` standard normal numbers (Box-Muller), seeded by the name.
fn read_file(filename: &str) -> Vec<f64> {
    let mut rng = StdRng::seed_from_u64(seed_of(filename));
    (0..SIDE * SIDE)
        .map(|_| {
            let u1: f64 = 1.0 - rng.random::<f64>(); // in (0, 1]: ln is finite
            let u2: f64 = rng.random();
            (-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos()
        })
        .collect()
}

fn mean(data: &[f64]) -> f64 {
    data.iter().sum::<f64>() / data.len() as f64
}

fn std_dev(data: &[f64]) -> f64 {
    let m = mean(data);
    (data.iter().map(|x| (x - m) * (x - m)).sum::<f64>() / data.len() as f64).sqrt()
}

/// Loads some data.
#[raykit::remote]
fn load_data(filename: String) -> Vec<f64> {
    random_sleep();
    read_file(&filename)
}

/// Does some processing: the mean.
#[raykit::remote]
fn processing1(data: Vec<f64>) -> f64 {
    random_sleep();
    mean(&data)
}

/// Does some other processing: the standard deviation.
#[raykit::remote]
fn processing2(data: Vec<f64>) -> f64 {
    random_sleep();
    std_dev(&data)
}

type Results = (Vec<f64>, Vec<f64>);

/// The first attempt: every `load_data` must finish (`get_all`) before any processing starts.
fn get_in_between(filenames: &[String]) -> raykit::Result<Results> {
    let x_ids: Vec<ObjectRef<Vec<f64>>> = filenames
        .iter()
        .map(|f| load_data::remote(f.clone()))
        .collect();
    let xs = raykit::get_all(&x_ids)?;
    let mut result_ids1 = Vec::new();
    let mut result_ids2 = Vec::new();
    for x in xs {
        result_ids1.push(processing1::remote(x.clone()));
        result_ids2.push(processing2::remote(x));
    }
    Ok((
        raykit::get_all(&result_ids1)?,
        raykit::get_all(&result_ids2)?,
    ))
}

/// The better way: the refs go straight into the processing tasks.
fn refs_straight_through(filenames: &[String]) -> raykit::Result<Results> {
    let mut result_ids1 = Vec::new();
    let mut result_ids2 = Vec::new();
    for filename in filenames {
        let x_id = load_data::remote(filename.clone());
        result_ids1.push(processing1::remote(&x_id));
        result_ids2.push(processing2::remote(x_id));
    }
    // Block and fetch the results.
    Ok((
        raykit::get_all(&result_ids1)?,
        raykit::get_all(&result_ids2)?,
    ))
}

fn main() -> raykit::Result<()> {
    let start = std::time::Instant::now();
    header("pipeline");
    // The tasks sleep rather than compute: a sleeping task holds a CPU slot without using the
    // core, so declare one slot per task (4 loads + 8 processings) to let every sleep overlap,
    // as they would on a machine with that many cores.
    raykit_examples::init(raykit::Config::default().num_cpus(12))?;
    let filenames: Vec<String> = (0..4).map(|i| format!("file{i}")).collect();

    // What the tasks must find, computed here without the runtime.
    let expected: Results = (
        filenames.iter().map(|f| mean(&read_file(f))).collect(),
        filenames.iter().map(|f| std_dev(&read_file(f))).collect(),
    );

    let (first, t_first) = timed(|| get_in_between(&filenames));
    let (second, t_second) = timed(|| refs_straight_through(&filenames));
    let (first, second) = (first?, second?);

    for (i, name) in filenames.iter().enumerate() {
        println!("{name}: mean {:+.6}, std {:.6}", second.0[i], second.1[i]);
    }
    println!(
        "results match local computation: {}",
        first == expected && second == expected
    );
    println!("get in between:        {:.3} s", t_first.as_secs_f64());
    println!("refs straight through: {:.3} s", t_second.as_secs_f64());
    raykit::shutdown();
    print_wall_time(start);
    Ok(())
}
