//! Remote functions as tasks: `remote` returns at once, arguments are values or refs, graphs of
//! tasks, `num_returns`, per-call options, local calls, submission from many threads and from
//! inside tasks, `node_id`, refs returned from tasks and stored in containers, unit results.

use std::collections::HashSet;
use std::sync::Arc;

use raykit::{Config, ErrorKind, ObjectRef, TaskOptions};
use raykit_tests::{gate, within};

raykit_tests::suite!(Shape::cpus(4).resource("custom", 1.0));

#[raykit::remote]
fn add(a: i64, b: i64) -> i64 {
    a + b
}

#[raykit::remote]
fn mul(a: i64, b: i64) -> i64 {
    a * b
}

#[raykit::remote]
fn concat(a: String, b: String) -> String {
    format!("{a}{b}")
}

/// Waits at the gate called `name`, then returns `value`.
#[raykit::remote]
fn after_gate(name: String, value: i64) -> i64 {
    gate(&name).wait();
    value
}

#[test]
fn remote_returns_before_the_task_runs() {
    init();
    within(60, || {
        let name = "tasks::remote_returns_before_the_task_runs".to_owned();
        // The task cannot finish until the gate opens, and only this thread opens it: if
        // `remote` waited for the task, this would hang (and `within` would fail the test).
        let r = after_gate::remote(name.clone(), 42);
        let dependent = add::remote(&r, 1);
        assert!(!r.is_ready(), "the task finished before its gate opened");
        assert!(!dependent.is_ready());
        gate(&name).open();
        assert_eq!(raykit::get(&dependent).unwrap(), 43);
        assert_eq!(raykit::get(&r).unwrap(), 42);
    });
}

#[test]
fn arguments_accept_values_owned_refs_and_borrowed_refs() {
    init();
    within(60, || {
        let a: ObjectRef<i64> = add::remote(1, 2); // values
        let b = add::remote(&a, 10); // borrowed ref + value
        let c = add::remote(a.clone(), &b); // owned ref + borrowed ref
        let d = mul::remote(c.clone(), b); // owned refs, `b` moved in
        assert_eq!(raykit::get(&a).unwrap(), 3);
        assert_eq!(raykit::get(&c).unwrap(), 16);
        assert_eq!(raykit::get(&d).unwrap(), 16 * 13);
        // A `put` object is an argument like any other.
        let p = raykit::put(100i64);
        assert_eq!(raykit::get(&add::remote(&p, &p)).unwrap(), 200);
        // Non-Copy arguments, by value and by ref.
        let s = raykit::put("ray".to_owned());
        let t = concat::remote(&s, "kit".to_owned());
        assert_eq!(raykit::get(&concat::remote(t, &s)).unwrap(), "raykitray");
    });
}

#[test]
fn long_chain_of_dependent_tasks() {
    init();
    within(60, || {
        let mut r = raykit::put(0i64);
        for i in 0..500 {
            r = add::remote(r, i);
        }
        assert_eq!(raykit::get(&r).unwrap(), (0..500).sum::<i64>());
    });
}

#[test]
fn diamond_graph() {
    init();
    within(60, || {
        let name = "tasks::diamond_graph".to_owned();
        // top -> (left, right) -> bottom; top waits at a gate so the graph is built while
        // nothing in it can run yet.
        let top = after_gate::remote(name.clone(), 5);
        let left = add::remote(&top, 1);
        let right = mul::remote(&top, 2);
        let bottom = mul::remote(&left, &right);
        assert!(!bottom.is_ready());
        gate(&name).open();
        assert_eq!(raykit::get(&bottom).unwrap(), (5 + 1) * (5 * 2));
        assert_eq!(
            raykit::get_all(&[top, left, right]).unwrap(),
            vec![5, 6, 10]
        );
    });
}

#[test]
fn wide_fan_in() {
    init();
    within(60, || {
        let leaves: Vec<ObjectRef<i64>> = (0..64).map(|i| add::remote(i, 0)).collect();
        // Pairwise reduction of refs into one.
        let mut level = leaves;
        while level.len() > 1 {
            level = level.chunks(2).map(|p| add::remote(&p[0], &p[1])).collect();
        }
        assert_eq!(raykit::get(&level[0]).unwrap(), (0..64).sum::<i64>());
    });
}

#[raykit::remote(num_returns = 2)]
fn split(v: Vec<i64>) -> (Vec<i64>, Vec<i64>) {
    let right = v[v.len() / 2..].to_vec();
    (v[..v.len() / 2].to_vec(), right)
}

#[raykit::remote(num_returns = 3)]
fn stats(v: Vec<i64>) -> (i64, usize, String) {
    (v.iter().sum(), v.len(), format!("{v:?}"))
}

#[test]
fn num_returns_gives_one_ref_per_tuple_element() {
    init();
    within(60, || {
        let (l, r): (ObjectRef<Vec<i64>>, ObjectRef<Vec<i64>>) = split::remote(vec![1, 2, 3, 4, 5]);
        assert_ne!(l, r);
        assert_eq!(raykit::get(&l).unwrap(), vec![1, 2]);
        assert_eq!(raykit::get(&r).unwrap(), vec![3, 4, 5]);
        // Each output is an independent ref usable as an argument.
        let (sum, len, text) = stats::remote(&r);
        let (sum, len, text): (ObjectRef<i64>, ObjectRef<usize>, ObjectRef<String>) =
            (sum, len, text);
        assert_eq!(raykit::get(&sum).unwrap(), 12);
        assert_eq!(raykit::get(&len).unwrap(), 3);
        assert_eq!(raykit::get(&text).unwrap(), "[3, 4, 5]");
        // Drop one output and still read the others.
        let (a, b) = split::remote(vec![9, 8]);
        drop(a);
        assert_eq!(raykit::get(&b).unwrap(), vec![8]);
    });
}

#[raykit::remote(num_cpus = 4)]
fn heavy(x: i64) -> i64 {
    x * 2
}

#[raykit::remote(resources(custom = 1))]
fn uses_custom(x: i64) -> i64 {
    x + 1
}

#[test]
fn options_override_per_call() {
    init();
    within(60, || {
        let opts = TaskOptions::new().num_cpus(1).resource("custom", 0);
        assert_eq!(
            raykit::get(&heavy::options(opts.clone()).remote(21)).unwrap(),
            42
        );
        assert_eq!(
            raykit::get(&uses_custom::options(opts).remote(1)).unwrap(),
            2
        );
        // Options that ask for more than the node has fail that call only.
        let too_big = add::options(TaskOptions::new().num_cpus(5)).remote(1, 1);
        let err = raykit::get(&too_big).unwrap_err();
        assert_eq!(err.kind(), raykit::ErrorKind::ResourceUnavailable);
        // Options with ref arguments.
        let a = add::remote(1, 1);
        let b = add::options(TaskOptions::new().num_cpus(0.5).max_retries(0)).remote(&a, a.clone());
        assert_eq!(raykit::get(&b).unwrap(), 4);
    });
}

#[test]
fn remote_functions_stay_callable_locally() {
    // No runtime involved: the annotated function is still the function.
    assert_eq!(add(2, 3), 5);
    assert_eq!(split(vec![1, 2, 3]), (vec![1], vec![2, 3]));
    assert_eq!(heavy(4), 8);
    unit_task(0);
}

#[test]
fn submission_from_many_threads_at_once() {
    init();
    within(120, || {
        let start = Arc::new(std::sync::Barrier::new(8));
        let threads: Vec<_> = (0..8i64)
            .map(|t| {
                let start = start.clone();
                std::thread::spawn(move || {
                    start.wait();
                    let refs: Vec<ObjectRef<i64>> =
                        (0..200i64).map(|i| add::remote(t * 1000, i)).collect();
                    // Half of them chained on refs from this thread.
                    let chained: Vec<ObjectRef<i64>> =
                        refs.iter().map(|r| mul::remote(r, 2)).collect();
                    (
                        raykit::get_all(&refs).unwrap(),
                        raykit::get_all(&chained).unwrap(),
                    )
                })
            })
            .collect();
        for (t, th) in threads.into_iter().enumerate() {
            let (plain, doubled) = th.join().expect("submitting thread panicked");
            let t = t as i64;
            let expect: Vec<i64> = (0..200).map(|i| t * 1000 + i).collect();
            assert_eq!(plain, expect);
            assert_eq!(doubled, expect.iter().map(|x| x * 2).collect::<Vec<_>>());
        }
    });
}

/// Submits `n` children from inside a task and sums their results.
#[raykit::remote]
fn spawn_children(n: i64) -> i64 {
    let children: Vec<ObjectRef<i64>> = (0..n).map(|i| add::remote(i, 1)).collect();
    raykit::get_all(&children).unwrap().into_iter().sum()
}

#[test]
fn tasks_submit_tasks() {
    init();
    within(60, || {
        let parents: Vec<ObjectRef<i64>> = (0..8).map(|_| spawn_children::remote(20)).collect();
        let want: i64 = (1..=20).sum();
        assert_eq!(raykit::get_all(&parents).unwrap(), vec![want; 8]);
    });
}

#[raykit::remote]
fn where_am_i() -> (raykit::NodeId, String) {
    let id = raykit::node_id();
    (id, id.to_string())
}

#[test]
fn node_id_inside_a_task_is_the_drivers() {
    init();
    within(60, || {
        let (id, text) = raykit::get(&where_am_i::remote()).unwrap();
        assert_eq!(text, id.to_string());
        assert!(!text.is_empty());
        // On a cluster the task runs on the node that declares the file's resources, not on
        // the head, whose node the driver counts as.
        if !raykit_tests::on_cluster() {
            assert_eq!(id, raykit::node_id());
            assert_eq!(init().node_id(), id);
        }
    });
}

/// Returns a ref to an object the task puts.
#[raykit::remote]
fn make_ref(x: i64) -> ObjectRef<i64> {
    raykit::put(x * 10)
}

/// Returns a ref to a task the task submits.
#[raykit::remote]
fn make_task_ref(x: i64) -> ObjectRef<i64> {
    add::remote(x, 1)
}

/// Returns several refs in a container.
#[raykit::remote]
fn make_refs(n: i64) -> Vec<ObjectRef<i64>> {
    (0..n).map(|i| add::remote(i, 100)).collect()
}

/// Takes refs (not their values) and reads them itself.
#[raykit::remote]
fn sum_refs(refs: Vec<ObjectRef<i64>>) -> i64 {
    raykit::get_all(&refs).unwrap().into_iter().sum()
}

#[test]
fn refs_returned_from_tasks_stay_valid() {
    init();
    within(60, || {
        let outer: ObjectRef<ObjectRef<i64>> = make_ref::remote(4);
        let inner: ObjectRef<i64> = raykit::get(&outer).unwrap();
        drop(outer); // the inner object lives on through `inner`
        assert_eq!(raykit::get(&inner).unwrap(), 40);

        let outer = make_task_ref::remote(4);
        let inner = raykit::get(&outer).unwrap();
        // Reading the outer twice gives the same ref.
        assert_eq!(raykit::get(&outer).unwrap(), inner);
        assert_eq!(raykit::get(&inner).unwrap(), 5);
        // A returned ref as an argument of another task.
        assert_eq!(raykit::get(&add::remote(&inner, 1)).unwrap(), 6);
    });
}

#[test]
fn refs_inside_containers_stay_valid() {
    init();
    within(60, || {
        let refs: Vec<ObjectRef<i64>> = raykit::get(&make_refs::remote(10)).unwrap();
        assert_eq!(refs.len(), 10);
        assert_eq!(refs.iter().collect::<HashSet<_>>().len(), 10);
        assert_eq!(
            raykit::get_all(&refs).unwrap(),
            (0..10).map(|i| i + 100).collect::<Vec<_>>()
        );
        // Refs in a container passed to a task (by value, by ref, and via a put object).
        let direct = sum_refs::remote(refs.clone());
        let held = raykit::put(refs.clone());
        let via_put = sum_refs::remote(&held);
        let from_task = sum_refs::remote(make_refs::remote(10));
        let want: i64 = (100..110).sum();
        assert_eq!(raykit::get(&direct).unwrap(), want);
        assert_eq!(raykit::get(&via_put).unwrap(), want);
        assert_eq!(raykit::get(&from_task).unwrap(), want);
        // The put container, read back, still holds live refs.
        let back = raykit::get(&held).unwrap();
        assert_eq!(back, refs);
        drop(refs);
        drop(held);
        assert_eq!(raykit::get_all(&back).unwrap().len(), 10);
    });
}

#[raykit::remote]
fn unit_task(n: u64) {
    raykit_tests::counter("unit_runs").add(n);
}

#[raykit::remote]
fn no_args() -> String {
    "no arguments".to_owned()
}

#[test]
fn unit_returning_tasks() {
    init();
    within(60, || {
        let before = raykit_tests::counter("unit_runs").get();
        let r: ObjectRef<()> = unit_task::remote(1000);
        raykit::get(&r).unwrap();
        let refs: Vec<ObjectRef<()>> = (0..10).map(|_| unit_task::remote(1000)).collect();
        assert_eq!(raykit::get_all(&refs).unwrap(), vec![(); 10]);
        // Other tests may run `unit_task(0)` locally only, so the count is exact.
        assert_eq!(raykit_tests::counter("unit_runs").get() - before, 11_000);
        assert_eq!(raykit::get(&no_args::remote()).unwrap(), "no arguments");
    });
}

#[test]
fn init_with_another_config_fails_while_running() {
    init();
    let err = raykit::init_with(Config::default().num_cpus(3)).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::AlreadyInitialized);
    // The running runtime is untouched, and `init` returns it.
    assert_eq!(raykit::cluster_resources().get("CPU"), Some(&4.0));
    assert_eq!(raykit::init().unwrap().node_id(), raykit::node_id());
    assert!(raykit::is_initialized());
    within(60, || {
        assert_eq!(raykit::get(&add::remote(1, 1)).unwrap(), 2)
    });
}
