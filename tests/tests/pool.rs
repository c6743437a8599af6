//! The embedded pool's threads follow the tasks that run or block, not the tasks submitted: a
//! burst of tiny tasks on two CPUs runs on about two threads. Alone in its file, so the count
//! of threads the runtime started is this test's.
//!
//! Embedded only: it counts the threads of the embedded backend's pool, which is what it tests;
//! a cluster runs tasks in worker processes, one task at a time each.

use raykit::{Config, ObjectRef};
use raykit_tests::within;

#[raykit::remote]
fn tiny(i: u64) -> u64 {
    i + 1
}

#[test]
fn a_burst_of_tiny_tasks_runs_on_as_many_threads_as_cpus() {
    raykit::init_with(Config::default().num_cpus(2)).expect("init_with two CPUs");
    within(120, || {
        for round in 0..20u64 {
            let refs: Vec<ObjectRef<u64>> = (0..5_000).map(|i| tiny::remote(round + i)).collect();
            let values = raykit::get_all(&refs).expect("the burst's values");
            assert_eq!(values[4_999], round + 5_000);
        }
    });
    // A thread that gives its CPU back counts itself idle first, so a submitter taking that CPU
    // hands the next task to it instead of starting a thread (the pool used to grow to dozens
    // of threads here, all spinning for work). Slack for the two first tasks' threads only.
    let started = raykit::__private::worker_threads_started();
    assert!(
        started <= 4,
        "100,000 tiny tasks on 2 CPUs started {started} worker threads"
    );
}
