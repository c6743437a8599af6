//! Ports "Aggregating Values Efficiently" of seed 003 ("Distributed Parallel System, Assignment
//! 2 - Ray Framework"): eight values summed with an `add` task that sleeps 1 s, first as a
//! linear chain (depth 7: about 7 s) and then as a tree (depth 3: about 3 s with 4 CPUs).
//!
//! Both use the seed's `while` loops: the linear one puts the new partial sum at the front of
//! the list, the tree one at the back. The loops only build the task graph; the single `get` at
//! the end waits for it.
//!
//! Options: `--scale X` (or `RAYKIT_EXAMPLE_SCALE`) multiplies every sleep.

use std::collections::VecDeque;

use raykit::ObjectRef;
use raykit_examples::{header, print_wall_time, sleep, speedup, timed};

/// Adds two numbers, slowly.
#[raykit::remote]
fn add(x: i64, y: i64) -> i64 {
    sleep(1.0);
    x + y
}

/// The values `1..=8`, as refs so the list can mix them with partial sums (Python mixes ints
/// and futures in one list; `raykit::put` makes a value a ref).
fn values() -> VecDeque<ObjectRef<i64>> {
    (1..=8).map(raykit::put).collect()
}

/// `values = [add.remote(values[0], values[1])] + values[2:]`: every add waits for the last.
fn linear() -> raykit::Result<i64> {
    let mut values = values();
    while values.len() > 1 {
        let (a, b) = (values.pop_front(), values.pop_front());
        let (Some(a), Some(b)) = (a, b) else {
            unreachable!("the list holds at least two values")
        };
        values.push_front(add::remote(a, b));
    }
    raykit::get(&values[0])
}

/// `values = values[2:] + [add.remote(values[0], values[1])]`: pairs add up in a tree.
fn tree() -> raykit::Result<i64> {
    let mut values = values();
    while values.len() > 1 {
        let (a, b) = (values.pop_front(), values.pop_front());
        let (Some(a), Some(b)) = (a, b) else {
            unreachable!("the list holds at least two values")
        };
        values.push_back(add::remote(a, b));
    }
    raykit::get(&values[0])
}

fn main() -> raykit::Result<()> {
    let start = std::time::Instant::now();
    header("aggregate");
    raykit_examples::init(raykit::Config::default().num_cpus(4))?;

    let (linear_sum, t_linear) = timed(linear);
    let (tree_sum, t_tree) = timed(tree);
    println!("linear result: {}", linear_sum?);
    println!("tree result: {}", tree_sum?);
    println!("linear: {:.3} s (7 adds in a row)", t_linear.as_secs_f64());
    println!("tree:   {:.3} s (3 levels of adds)", t_tree.as_secs_f64());
    println!("speedup: {:.2}x", speedup(t_linear, t_tree));
    raykit::shutdown();
    print_wall_time(start);
    Ok(())
}
