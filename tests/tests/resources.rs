//! Resources: never more tasks at once than the node's CPUs (whole or fractional) and custom
//! resources allow, per-call overrides, impossible requests failing at once with a clear error,
//! and the free resources returning to the total.
//!
//! Every test takes [`serial`] so it has the node's resources to itself. "At most N at once" is
//! checked with a [`Gauge`](raykit_tests::Gauge) whose tasks linger so that overlap, if allowed,
//! happens; "N at once" is checked with a rendezvous that all N tasks must reach together.

use std::time::Duration;

use raykit::{ErrorKind, ObjectRef, TaskOptions};
use raykit_tests::{amount, await_all_resources_free, eventually, gate, gauge, rendezvous, within};

raykit_tests::suite!(Shape::cpus(2).resource("custom", 1.0), serial);

/// How long a task lingers in its gauge so that tasks allowed to overlap do overlap.
const LINGER: Duration = Duration::from_millis(100);
/// How long tasks that must run together wait for each other before reporting failure.
const MEET: Duration = Duration::from_secs(30);

/// Runs inside the gauge `name`, lingering while at most `limit` run at once.
#[raykit::remote]
fn occupy(name: String, limit: usize) {
    let g = gauge(&name);
    let _in = g.enter();
    g.linger(limit, LINGER);
}

#[raykit::remote(num_cpus = 0.5)]
fn occupy_half(name: String, limit: usize) {
    occupy(name, limit);
}

#[raykit::remote(resources(custom = 1))]
fn occupy_custom(name: String, limit: usize) {
    occupy(name, limit);
}

#[raykit::remote(num_cpus = 2)]
fn occupy_two(name: String, limit: usize) {
    occupy(name, limit);
}

/// Meets `n - 1` other tasks at the rendezvous `name`; true when all were there at once.
#[raykit::remote]
fn meet(name: String, n: usize) -> bool {
    rendezvous(&name).meet(n, MEET)
}

#[raykit::remote(num_cpus = 0.5)]
fn meet_half(name: String, n: usize) -> bool {
    meet(name, n)
}

#[raykit::remote(resources(custom = 1))]
fn meet_custom(name: String, n: usize) -> bool {
    meet(name, n)
}

/// Submits `count` calls and returns the most that ran at once.
fn max_at_once(name: &str, count: usize, submit: impl Fn(String) -> ObjectRef<()>) -> usize {
    let refs: Vec<ObjectRef<()>> = (0..count).map(|_| submit(name.to_owned())).collect();
    raykit::get_all(&refs).expect("occupying tasks succeed");
    assert_eq!(gauge(name).done(), count);
    gauge(name).max()
}

/// Submits `n` calls that must all run at the same time; true when they did.
fn all_meet(n: usize, submit: impl Fn() -> ObjectRef<bool>) -> bool {
    let refs: Vec<ObjectRef<bool>> = (0..n).map(|_| submit()).collect();
    raykit::get_all(&refs)
        .expect("meeting tasks succeed")
        .into_iter()
        .all(|met| met)
}

#[test]
fn never_more_tasks_at_once_than_cpus() {
    let _serial = init();
    within(120, || {
        await_all_resources_free();
        let name = "resources::never_more_tasks_at_once_than_cpus";
        let max = max_at_once(name, 8, |n| occupy::remote(n, 2));
        assert!((1..=2).contains(&max), "{max} tasks ran at once on 2 CPUs");
        // And the two CPUs are both used: two tasks can run together.
        let rv = "resources::never_more_tasks_at_once_than_cpus/meet";
        assert!(all_meet(2, || meet::remote(rv.to_owned(), 2)));
    });
}

#[test]
fn fractional_cpus_run_two_tasks_per_cpu() {
    let _serial = init();
    within(120, || {
        await_all_resources_free();
        let rv = "resources::fractional_cpus_run_two_tasks_per_cpu/meet";
        assert!(
            all_meet(4, || meet_half::remote(rv.to_owned(), 4)),
            "four half-CPU tasks did not run at once on two CPUs"
        );
        let name = "resources::fractional_cpus_run_two_tasks_per_cpu";
        let max = max_at_once(name, 10, |n| occupy_half::remote(n, 4));
        assert!(max <= 4, "{max} half-CPU tasks ran at once on 2 CPUs");
        // Fractions from options too: 0.25 CPU each, eight at once.
        let rv = "resources::fractional_cpus_run_two_tasks_per_cpu/quarter";
        assert!(all_meet(8, || {
            meet::options(TaskOptions::new().num_cpus(0.25)).remote(rv.to_owned(), 8)
        }));
    });
}

#[test]
fn a_custom_resource_limits_concurrency() {
    let _serial = init();
    within(120, || {
        await_all_resources_free();
        // custom = 1 declared, each task needs 1: one at a time although two CPUs are free.
        let name = "resources::a_custom_resource_limits_concurrency";
        let max = max_at_once(name, 5, |n| occupy_custom::remote(n, 1));
        assert_eq!(max, 1, "tasks needing the only `custom` unit overlapped");
        // Half a unit each: two at once.
        let rv = "resources::a_custom_resource_limits_concurrency/half";
        assert!(all_meet(2, || {
            meet::options(TaskOptions::new().resource("custom", 0.5)).remote(rv.to_owned(), 2)
        }));
    });
}

#[test]
fn options_override_declared_resources() {
    let _serial = init();
    within(120, || {
        await_all_resources_free();
        // Declared num_cpus = 2: one at a time ...
        let name = "resources::options_override_declared_resources/two";
        let max = max_at_once(name, 4, |n| occupy_two::remote(n, 1));
        assert_eq!(max, 1);
        // ... unless the call asks for one CPU: then two at once.
        let rv = "resources::options_override_declared_resources/one";
        assert!(all_meet(2, || {
            meet::options(TaskOptions::new().num_cpus(1)).remote(rv.to_owned(), 2)
        }));
        // Declared 1 CPU, called with 2: one at a time.
        let name = "resources::options_override_declared_resources/up";
        let max = max_at_once(name, 4, |n| {
            occupy::options(TaskOptions::new().num_cpus(2)).remote(n, 1)
        });
        assert_eq!(max, 1);
        // Declared custom = 1, called with custom = 0: no longer exclusive.
        let rv = "resources::options_override_declared_resources/custom";
        assert!(all_meet(2, || {
            meet_custom::options(TaskOptions::new().resource("custom", 0)).remote(rv.to_owned(), 2)
        }));
        // Other options leave the declared custom demand alone: still one at a time.
        let name = "resources::options_override_declared_resources/keep";
        let max = max_at_once(name, 4, |n| {
            occupy_custom::options(TaskOptions::new().num_cpus(0.5)).remote(n, 1)
        });
        assert_eq!(max, 1);
    });
}

#[raykit::remote(num_cpus = 100)]
fn wants_100_cpus() -> u8 {
    1
}

#[raykit::remote(num_gpus = 1)]
fn wants_a_gpu() -> u8 {
    1
}

#[raykit::remote(resources(undeclared_thing = 1))]
fn wants_undeclared() -> u8 {
    1
}

#[raykit::remote(resources(custom = 2))]
fn wants_too_much_custom() -> u8 {
    1
}

#[raykit::remote(num_cpus = 0)]
fn after_gate(name: String) -> u8 {
    gate(&name).wait();
    1
}

/// Checks that `r` failed before anyone waited for it, with a message naming `resource`.
fn fails_at_once(r: ObjectRef<u8>, resource: &str) {
    // Ready the moment `remote` returned: nobody waited, no task ran.
    assert!(
        r.is_ready(),
        "an impossible request for {resource} is pending"
    );
    let err = raykit::get(&r).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::ResourceUnavailable, "{err}");
    assert!(
        err.to_string().contains(resource),
        "the error does not name `{resource}`: {err}"
    );
}

#[test]
fn impossible_requests_fail_at_once() {
    let _serial = init();
    within(60, || {
        fails_at_once(wants_100_cpus::remote(), "CPU");
        fails_at_once(wants_a_gpu::remote(), "GPU");
        fails_at_once(wants_undeclared::remote(), "undeclared_thing");
        fails_at_once(wants_too_much_custom::remote(), "custom");
        let ok = || TaskOptions::new();
        fails_at_once(
            after_gate::options(ok().num_cpus(100)).remote("never".to_owned()),
            "CPU",
        );
        fails_at_once(
            after_gate::options(ok().num_gpus(1)).remote("never".to_owned()),
            "GPU",
        );
        fails_at_once(
            after_gate::options(ok().resource("nowhere", 0.5)).remote("never".to_owned()),
            "nowhere",
        );
        // Even while an argument is still pending: the request itself can never run.
        let name = "resources::impossible_requests_fail_at_once";
        let pending = after_gate::remote(name.to_owned());
        let r = wants_a_gpu_with_arg::remote(&pending);
        assert!(!pending.is_ready());
        fails_at_once(r, "GPU");
        gate(name).open();
        assert_eq!(raykit::get(&pending).unwrap(), 1);
        // Impossible tasks take nothing: the node still runs work.
        assert!(raykit::get(&meet::remote("resources::solo".to_owned(), 1)).unwrap());
    });
}

#[raykit::remote(num_gpus = 1)]
fn wants_a_gpu_with_arg(x: u8) -> u8 {
    x
}

#[raykit::remote]
fn gated_hold(name: String) -> u8 {
    let g = gauge(&name);
    let _in = g.enter();
    gate(&name).wait();
    2
}

#[raykit::remote(resources(custom = 1))]
fn gated_hold_custom(name: String) -> u8 {
    gated_hold(name)
}

#[raykit::remote(num_cpus = 0)]
fn free_task(x: u8) -> u8 {
    x + 1
}

/// The node that runs this task.
#[raykit::remote]
fn where_am_i() -> String {
    raykit::node_id().to_string()
}

#[test]
fn nodes_lists_every_node_with_what_it_declares() {
    let _serial = init();
    within(120, || {
        await_all_resources_free();
        let nodes = raykit::nodes();
        assert!(!nodes.is_empty());
        assert_eq!(nodes.iter().filter(|n| n.is_head).count(), 1, "{nodes:?}");
        assert!(nodes[0].is_head, "the head comes first: {nodes:?}");
        // The alive nodes' declarations add up to the cluster's, and all of it is free.
        let alive: Vec<_> = nodes.iter().filter(|n| n.alive).collect();
        for name in ["CPU", "GPU", "custom"] {
            let declared: f64 = alive.iter().map(|n| amount(&n.resources, name)).sum();
            let free: f64 = alive.iter().map(|n| amount(&n.available, name)).sum();
            assert_eq!(
                declared,
                amount(&raykit::cluster_resources(), name),
                "{name}"
            );
            assert_eq!(free, declared, "{name}: {nodes:?}");
        }
        // A task runs on one of them.
        let ran_on = raykit::get(&where_am_i::remote()).unwrap();
        assert!(
            alive.iter().any(|n| n.node_id.to_string() == ran_on),
            "{ran_on} is not among {nodes:?}"
        );
        if !raykit_tests::backend::on_cluster() {
            // Embedded: one node, this process, reached at no address.
            assert_eq!(nodes.len(), 1);
            assert_eq!(nodes[0].node_id, raykit::node_id());
            assert!(nodes[0].address.is_empty());
        } else {
            // A cluster's nodes are reached at HOST:PORT.
            assert!(alive.iter().all(|n| n.address.contains(':')), "{nodes:?}");
        }
    });
}

#[test]
fn available_resources_follow_running_tasks() {
    let _serial = init();
    within(120, || {
        await_all_resources_free();
        let total = raykit::cluster_resources();
        assert_eq!(amount(&total, "CPU"), 2.0);
        assert_eq!(amount(&total, "custom"), 1.0);
        assert_eq!(amount(&total, "GPU"), 0.0);
        assert_eq!(raykit::available_resources(), total);

        let name = "resources::available_resources_follow_running_tasks";
        let a = gated_hold::remote(name.to_owned());
        let b = gated_hold_custom::remote(name.to_owned());
        // Both running (and stuck at the gate): 2 CPUs and the custom unit are taken.
        eventually(30, "both tasks run", || gauge(name).running() == 2);
        let now = raykit::available_resources();
        assert_eq!(amount(&now, "CPU"), 0.0, "{now:?}");
        assert_eq!(amount(&now, "custom"), 0.0, "{now:?}");
        // A zero-CPU task still runs while every CPU is taken.
        assert_eq!(raykit::get(&free_task::remote(1)).unwrap(), 2);
        // A CPU task waits for a CPU.
        let waiting = free_task::options(TaskOptions::new().num_cpus(1)).remote(5);
        let (ready, _) = raykit::wait(
            std::slice::from_ref(&waiting),
            1,
            Some(Duration::from_millis(50)),
        );
        assert!(ready.is_empty(), "a task ran with no CPU free");
        gate(name).open();
        assert_eq!(raykit::get_all(&[a, b, waiting]).unwrap(), vec![2, 2, 6]);
        eventually(30, "resources are given back", || {
            raykit::available_resources() == total
        });
    });
}

#[test]
fn many_small_tasks_leave_every_resource_free() {
    let _serial = init();
    within(120, || {
        await_all_resources_free();
        let total = raykit::cluster_resources();
        let refs: Vec<ObjectRef<bool>> = (0..300)
            .map(|i| {
                let o = TaskOptions::new().num_cpus([0.25, 0.5, 1.0][i % 3]);
                let o = if i % 5 == 0 {
                    o.resource("custom", 0.5)
                } else {
                    o
                };
                meet::options(o).remote(format!("resources::many/{i}"), 1)
            })
            .collect();
        assert!(raykit::get_all(&refs).unwrap().into_iter().all(|m| m));
        // Nothing leaks: exactly the total is free again (fixed-point sums stay exact).
        eventually(30, "resources are given back", || {
            raykit::available_resources() == total
        });
    });
}

#[raykit::remote(resources(custom = 1))]
fn custom_unit(x: u32) -> u32 {
    x
}

#[raykit::remote]
fn cpu_unit(x: u32) -> u32 {
    x
}

#[test]
fn runnable_tasks_are_not_stuck_behind_many_waiting_ones() {
    let _serial = init();
    within(120, || {
        await_all_resources_free();
        let name = "resources::runnable_tasks_are_not_stuck_behind_many_waiting_ones";
        // Takes the only `custom` unit until the gate opens.
        let holder = gated_hold_custom::remote(name.to_owned());
        eventually(30, "the holder runs", || gauge(name).running() == 1);
        // Many tasks that cannot run until the holder is done...
        let queued: Vec<ObjectRef<u32>> = (0..200).map(custom_unit::remote).collect();
        // ... must not keep a task that can run (a CPU is free) from running.
        let runnable = cpu_unit::remote(7);
        assert_eq!(raykit::get(&runnable).unwrap(), 7);
        assert!(queued.iter().all(|r| !r.is_ready()));
        gate(name).open();
        assert_eq!(raykit::get(&holder).unwrap(), 2);
        assert_eq!(
            raykit::get_all(&queued).unwrap(),
            (0..200).collect::<Vec<_>>()
        );
        await_all_resources_free();
    });
}
