//! Ports "Example: Merge Sort (Demo)" of seed 004 ("Parallel/Distributed Programming with
//! Python", slides): a recursive merge sort whose task splits its input, sorts both halves as
//! nested remote tasks and `get`s them inside the task before merging.
//!
//! A task blocked in `get` gives its CPU back, so the recursion cannot deadlock however few
//! CPUs there are: the example sorts once with every core and once more after restarting the
//! runtime with a single CPU. Both results are checked against the serial merge sort and
//! `slice::sort`.
//!
//! Options: `--len N` numbers to sort (default 100000), `--leaf N` below which a task sorts its
//! part serially (default 4096).

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use raykit_examples::{arg, header, print_wall_time, speedup, timed};

/// Merges two sorted vectors.
fn merge(left: Vec<i64>, right: Vec<i64>) -> Vec<i64> {
    let mut out = Vec::with_capacity(left.len() + right.len());
    let (mut l, mut r) = (left.into_iter().peekable(), right.into_iter().peekable());
    while let (Some(a), Some(b)) = (l.peek(), r.peek()) {
        if a <= b {
            out.extend(l.next());
        } else {
            out.extend(r.next());
        }
    }
    out.extend(l);
    out.extend(r);
    out
}

/// The plain recursive merge sort.
fn merge_sort_serial(mut v: Vec<i64>) -> Vec<i64> {
    if v.len() <= 1 {
        return v;
    }
    let right = v.split_off(v.len() / 2);
    merge(merge_sort_serial(v), merge_sort_serial(right))
}

/// The parallel merge sort: each half is a nested task, awaited inside this task.
#[raykit::remote]
fn merge_sort(mut v: Vec<i64>, leaf: usize) -> Vec<i64> {
    if v.len() <= leaf.max(1) {
        return merge_sort_serial(v);
    }
    let right = v.split_off(v.len() / 2);
    let left = merge_sort::remote(v, leaf);
    let right = merge_sort::remote(right, leaf);
    // Blocking here lends this task's CPU to the halves.
    let left = raykit::get(&left).expect("sorting the left half failed");
    let right = raykit::get(&right).expect("sorting the right half failed");
    merge(left, right)
}

fn is_sorted(v: &[i64]) -> bool {
    v.windows(2).all(|w| w[0] <= w[1])
}

fn main() -> raykit::Result<()> {
    let start = std::time::Instant::now();
    header("merge_sort");
    let len: usize = arg("len").unwrap_or(100_000);
    let leaf: usize = arg("leaf").unwrap_or(4096);
    let mut rng = StdRng::seed_from_u64(2020);
    let data: Vec<i64> = (0..len)
        .map(|_| rng.random_range(-1_000_000..1_000_000))
        .collect();
    let mut reference = data.clone();
    reference.sort();
    println!("numbers: {len}, leaf size: {leaf}");

    let (serial, t_serial) = timed(|| merge_sort_serial(data.clone()));
    println!("serial sorted: {}", serial == reference);

    let info = raykit::init()?;
    let cpus = info.resources().get("CPU").copied().unwrap_or(0.0);
    let (parallel, t_parallel) = timed(|| raykit::get(&merge_sort::remote(data.clone(), leaf)));
    let parallel = parallel?;
    println!(
        "parallel sorted: {}",
        is_sorted(&parallel) && parallel == reference
    );
    raykit::shutdown();

    // Once more with a single CPU: every level of the recursion waits in `get` on the next.
    raykit_examples::init(raykit::Config::default().num_cpus(1))?;
    let (one_cpu, t_one_cpu) = timed(|| raykit::get(&merge_sort::remote(data.clone(), leaf)));
    let one_cpu = one_cpu?;
    println!(
        "parallel sorted with 1 CPU: {}",
        is_sorted(&one_cpu) && one_cpu == reference
    );
    raykit::shutdown();

    println!("first: {:?}, last: {:?}", parallel.first(), parallel.last());
    println!("serial:             {:.3} s", t_serial.as_secs_f64());
    println!(
        "parallel ({cpus} CPUs): {:.3} s (speedup {:.2}x)",
        t_parallel.as_secs_f64(),
        speedup(t_serial, t_parallel)
    );
    println!("parallel (1 CPU):   {:.3} s", t_one_cpu.as_secs_f64());
    print_wall_time(start);
    Ok(())
}
