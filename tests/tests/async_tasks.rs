//! Async remote functions on a single CPU: they run, take values and refs, await refs inside
//! (lending their CPU while suspended, so awaiting a task that needs the CPU cannot deadlock),
//! submit and await children, block in `get` safely, use tokio inside, and turn panics into
//! errors.

use std::time::Duration;

use raykit::{ErrorKind, ObjectRef};
use raykit_tests::{await_all_resources_free, eventually, gate, gauge, known_difference, within};

/// What a cluster does differently still (see [`known_difference`]).
const UNBLOCK_OVERCOMMITS: &str = "a task that goes on after lending its CPU takes it back at once, even when another task holds it (the node is over-committed until one ends)";

raykit_tests::suite!(Shape::cpus(1), serial);

#[raykit::remote]
async fn async_double(x: i64) -> i64 {
    x * 2
}

#[raykit::remote]
fn square(x: i64) -> i64 {
    x * x
}

#[test]
fn async_remote_functions_run() {
    let _serial = init();
    within(60, || {
        let r: ObjectRef<i64> = async_double::remote(21);
        assert_eq!(raykit::get(&r).unwrap(), 42);
        // Chained with sync tasks both ways, by ref.
        let s = square::remote(&r);
        let t = async_double::remote(&s);
        assert_eq!(raykit::get(&t).unwrap(), 42 * 42 * 2);
        assert_eq!(
            futures::executor::block_on(async_double::remote(5)).unwrap(),
            10
        );
        // Still callable locally, as an async fn.
        assert_eq!(futures::executor::block_on(async_double(4)), 8);
    });
}

/// Takes refs (not values) and awaits them itself.
#[raykit::remote]
async fn await_both(a: ObjectRef<i64>, b: ObjectRef<i64>) -> i64 {
    let a = a.await.unwrap();
    let b = (&b).await.unwrap();
    a + b
}

#[test]
fn async_tasks_await_refs() {
    let _serial = init();
    within(60, || {
        let a = square::remote(3);
        let b = async_double::remote(4);
        assert_eq!(raykit::get(&await_both::remote(a, b)).unwrap(), 17);
        // Refs that are still pending when the task starts.
        let name = "async_tasks::async_tasks_await_refs";
        let a = gated(name.to_owned(), 10);
        let b = square::remote(&a);
        let sum = await_both::remote(a.clone(), b.clone());
        assert!(!sum.is_ready());
        gate(name).open();
        assert_eq!(raykit::get(&sum).unwrap(), 110);
    });
}

/// A zero-CPU task that waits at the gate `name`.
#[raykit::remote(num_cpus = 0)]
fn gated_value(name: String, x: i64) -> i64 {
    gate(&name).wait();
    x
}

fn gated(name: String, x: i64) -> ObjectRef<i64> {
    gated_value::remote(name, x)
}

/// Submits a CPU task and awaits it while holding the only CPU.
#[raykit::remote]
async fn await_child(x: i64) -> i64 {
    square::remote(x).await.unwrap() + 1
}

/// Async recursion through remote calls.
#[raykit::remote]
async fn fib(n: u64) -> u64 {
    if n < 2 {
        return n;
    }
    let a = fib::remote(n - 1);
    let b = fib::remote(n - 2);
    a.await.unwrap() + b.await.unwrap()
}

#[test]
fn awaiting_a_task_that_needs_the_only_cpu_does_not_deadlock() {
    let _serial = init();
    within(60, || {
        assert_eq!(raykit::get(&await_child::remote(7)).unwrap(), 50);
        let many: Vec<ObjectRef<i64>> = (0..20).map(await_child::remote).collect();
        assert_eq!(
            raykit::get_all(&many).unwrap(),
            (0..20).map(|x| x * x + 1).collect::<Vec<_>>()
        );
        assert_eq!(raykit::get(&fib::remote(12)).unwrap(), 144);
    });
}

/// Fans out to `n` sync children and awaits them together.
#[raykit::remote]
async fn fan_out(n: i64) -> i64 {
    let kids: Vec<ObjectRef<i64>> = (0..n).map(square::remote).collect();
    futures::future::join_all(kids)
        .await
        .into_iter()
        .map(Result::unwrap)
        .sum()
}

#[test]
fn async_tasks_submit_and_join_children() {
    let _serial = init();
    within(60, || {
        let want: i64 = (0..30).map(|x| x * x).sum();
        assert_eq!(raykit::get(&fan_out::remote(30)).unwrap(), want);
    });
}

/// Blocks in `get` (not `.await`) inside an async task.
#[raykit::remote]
async fn blocking_get_inside(x: i64) -> i64 {
    raykit::get(&square::remote(x)).unwrap() + raykit::get(&async_double::remote(x)).unwrap()
}

#[test]
fn blocking_get_inside_an_async_task_does_not_deadlock() {
    let _serial = init();
    within(60, || {
        assert_eq!(raykit::get(&blocking_get_inside::remote(5)).unwrap(), 35);
        let many: Vec<ObjectRef<i64>> = (0..32).map(blocking_get_inside::remote).collect();
        assert_eq!(
            raykit::get_all(&many).unwrap(),
            (0..32).map(|x| x * x + 2 * x).collect::<Vec<_>>()
        );
    });
}

/// Counts itself inside the gauge `name`, then awaits the ref.
#[raykit::remote]
async fn suspended(name: String, r: ObjectRef<i64>) -> i64 {
    let g = gauge(&name);
    let _in = g.enter();
    r.await.unwrap()
}

#[test]
fn many_async_tasks_suspend_at_once_on_one_cpu() {
    let _serial = init();
    within(60, || {
        await_all_resources_free();
        let name = "async_tasks::many_async_tasks_suspend_at_once_on_one_cpu";
        let pending = gated(name.to_owned(), 3);
        let tasks: Vec<ObjectRef<i64>> = (0..20)
            .map(|_| suspended::remote(name.to_owned(), pending.clone()))
            .collect();
        // Each needs the only CPU to start; all twenty are inside at once only if each lends
        // the CPU while it awaits.
        eventually(30, "all twenty async tasks await at once", || {
            gauge(name).running() == 20
        });
        // (The last one gives the CPU back just after it suspends.)
        eventually(30, "suspended async tasks hold no CPU", || {
            raykit::available_resources().get("CPU") == Some(&1.0)
        });
        gate(name).open();
        assert_eq!(raykit::get_all(&tasks).unwrap(), vec![3; 20]);
        await_all_resources_free();
    });
}

/// Computes (inside the gauge) before and after awaiting children; lingers so that two tasks
/// computing at once on the single CPU would be seen.
#[raykit::remote]
async fn busy_async(depth: u32, name: String) -> u32 {
    let g = gauge(&name);
    {
        let _in = g.enter();
        g.linger(1, Duration::from_millis(5));
    }
    if depth == 0 {
        return 1;
    }
    let a = busy_async::remote(depth - 1, name.clone());
    let b = busy_async::remote(depth - 1, name.clone());
    let n = a.await.unwrap() + b.await.unwrap();
    let _in = g.enter();
    g.linger(1, Duration::from_millis(5));
    n + 1
}

#[test]
fn an_async_task_takes_its_cpu_back_before_resuming() {
    let _serial = init();
    within(60, || {
        await_all_resources_free();
        let name = "async_tasks::an_async_task_takes_its_cpu_back_before_resuming";
        assert_eq!(
            raykit::get(&busy_async::remote(4, name.to_owned())).unwrap(),
            31
        );
        if !known_difference(UNBLOCK_OVERCOMMITS) {
            assert_eq!(
                gauge(name).max(),
                1,
                "async tasks computed at once on one CPU"
            );
        }
        await_all_resources_free();
    });
}

#[raykit::remote]
async fn uses_tokio(ms: u64) -> u64 {
    tokio::time::sleep(Duration::from_millis(ms)).await;
    let handle = tokio::spawn(async move { ms + 1 });
    handle.await.unwrap()
}

#[test]
fn tokio_works_inside_async_tasks() {
    let _serial = init();
    within(60, || {
        assert_eq!(raykit::get(&uses_tokio::remote(1)).unwrap(), 2);
    });
}

#[raykit::remote]
async fn panics_at_once(x: i64) -> i64 {
    if x > 0 {
        panic!("async boom {x}");
    }
    x
}

#[raykit::remote]
async fn panics_after_await(x: i64) -> i64 {
    let y = square::remote(x).await.unwrap();
    if y > 0 {
        panic!("async boom after await {y}");
    }
    y
}

#[raykit::remote]
async fn awaits_a_failure() -> String {
    match panics_at_once::remote(1).await {
        Ok(_) => "no error".to_owned(),
        Err(e) => format!("{:?}", e.kind()),
    }
}

#[test]
fn panics_in_async_tasks_become_errors() {
    let _serial = init();
    within(60, || {
        let err = raykit::get(&panics_at_once::remote(1)).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::TaskPanicked);
        assert!(
            err.to_string().contains("async_tasks::panics_at_once"),
            "{err}"
        );
        assert!(err.to_string().contains("async boom 1"), "{err}");

        let err = raykit::get(&panics_after_await::remote(3)).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::TaskPanicked);
        assert!(err.to_string().contains("async_tasks::panics_after_await"));
        assert!(err.to_string().contains("async boom after await 9"));

        // An async task that awaits a failed ref gets the error as a value.
        assert_eq!(
            raykit::get(&awaits_a_failure::remote()).unwrap(),
            "TaskPanicked"
        );
        // A failed ref argument fails the async task with the cause in its chain.
        let err = raykit::get(&async_double::remote(panics_at_once::remote(2))).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::DependencyFailed);
        assert!(err.root_cause().to_string().contains("async boom 2"));
        // The CPU was given back by the failed tasks: more work runs.
        assert_eq!(raykit::get(&async_double::remote(1)).unwrap(), 2);
    });
}

#[test]
fn async_tasks_leave_resources_free() {
    let _serial = init();
    within(60, || {
        await_all_resources_free();
        let refs: Vec<ObjectRef<u64>> = (0..10).map(fib::remote).collect();
        raykit::get_all(&refs).unwrap();
        let _ = raykit::get(&panics_after_await::remote(2));
        await_all_resources_free();
    });
}
