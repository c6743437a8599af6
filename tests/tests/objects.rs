//! Objects and refs: `put`/`get`/`get_all`, `wait` (counts, timeouts, order), refs as futures
//! (under `futures::executor::block_on`, a user's own tokio runtime and `#[tokio::test]`), the
//! traits `ObjectRef` implements, serde round trips, values that are not `Clone`.

use std::collections::HashSet;
use std::fmt::Debug;
use std::hash::Hash;
use std::time::Duration;

use raykit::ObjectRef;
use raykit_tests::{gate, known_difference, within};
use serde::{de::DeserializeOwned, Deserialize, Serialize};

raykit_tests::suite!(Shape::cpus(2));

#[raykit::remote]
fn add(a: i64, b: i64) -> i64 {
    a + b
}

/// Fails at once.
#[raykit::remote]
fn panics() -> i64 {
    panic!("as planned")
}

/// Waits at the gate called `name`, then returns `value`.
#[raykit::remote(num_cpus = 0)]
fn after_gate(name: String, value: i64) -> i64 {
    gate(&name).wait();
    value
}

#[test]
fn put_then_get() {
    init();
    within(60, || {
        let r = raykit::put(vec![1u32, 2, 3]);
        assert!(r.is_ready());
        assert_eq!(raykit::get(&r).unwrap(), vec![1, 2, 3]);
        // Reading does not consume: read twice, and through a clone.
        assert_eq!(raykit::get(&r).unwrap(), vec![1, 2, 3]);
        assert_eq!(raykit::get(&r.clone()).unwrap(), vec![1, 2, 3]);
        let s = raykit::put(String::from("hello"));
        assert_eq!(raykit::get(&s).unwrap(), "hello");
        let unit = raykit::put(());
        raykit::get(&unit).unwrap();
        // Distinct puts are distinct objects, even of equal values.
        assert_ne!(raykit::put(1u8), raykit::put(1u8));
    });
}

#[test]
fn get_twice_on_a_task_result() {
    init();
    within(60, || {
        let r = add::remote(20, 22);
        assert_eq!(raykit::get(&r).unwrap(), 42);
        assert_eq!(raykit::get(&r).unwrap(), 42);
        // After it has been an argument too.
        let s = add::remote(&r, 0);
        assert_eq!(raykit::get(&s).unwrap(), 42);
        assert_eq!(raykit::get(&r).unwrap(), 42);
    });
}

#[test]
fn get_all_keeps_the_order_of_refs() {
    init();
    within(60, || {
        let refs: Vec<ObjectRef<i64>> = (0..50).map(|i| add::remote(i, 1000)).collect();
        let values = raykit::get_all(&refs).unwrap();
        assert_eq!(values, (1000..1050).collect::<Vec<_>>());
        assert_eq!(raykit::get_all::<i64>(&[]).unwrap(), Vec::<i64>::new());
    });
}

#[test]
fn wait_returns_num_returns_ready_refs_in_order() {
    init();
    within(60, || {
        let name = "objects::wait_returns_num_returns_ready_refs_in_order";
        let refs = vec![
            after_gate::remote(name.to_owned(), 0),
            raykit::put(1),
            after_gate::remote(name.to_owned(), 2),
            raykit::put(3),
            raykit::put(4),
        ];
        let (ready, pending) = raykit::wait(&refs, 2, Some(Duration::from_secs(30)));
        // At most num_returns ready refs, in the order of `refs`; everything else pending.
        assert_eq!(ready, vec![refs[1].clone(), refs[3].clone()]);
        assert_eq!(
            pending,
            vec![refs[0].clone(), refs[2].clone(), refs[4].clone()]
        );
        // Asking for more than are ready with no time limit waits for them.
        gate(name).open();
        let (ready, pending) = raykit::wait(&refs, 5, None);
        assert_eq!(ready, refs);
        assert!(pending.is_empty());
        // num_returns larger than the list means all of them.
        let (ready, pending) = raykit::wait(&refs, 100, None);
        assert_eq!(ready.len(), 5);
        assert!(pending.is_empty());
        // Nothing to wait for.
        let (ready, pending) = raykit::wait::<i64>(&[], 1, None);
        assert!(ready.is_empty() && pending.is_empty());
    });
}

#[test]
fn wait_honours_its_timeout() {
    init();
    within(60, || {
        let name = "objects::wait_honours_its_timeout";
        let blocked = vec![
            after_gate::remote(name.to_owned(), 1),
            after_gate::remote(name.to_owned(), 2),
        ];
        // The gate opens only after `wait` returns, so only the timeout can end these waits.
        let (ready, pending) = raykit::wait(&blocked, 1, Some(Duration::from_millis(50)));
        assert!(ready.is_empty());
        assert_eq!(pending, blocked);
        let (ready, pending) = raykit::wait(&blocked, 1, Some(Duration::ZERO));
        assert!(ready.is_empty());
        assert_eq!(pending.len(), 2);
        // With some ready and the timeout passing: returns the ready ones it has.
        let mut mixed = blocked.clone();
        mixed.push(raykit::put(3));
        let (ready, pending) = raykit::wait(&mixed, 2, Some(Duration::from_millis(50)));
        assert_eq!(ready, vec![mixed[2].clone()]);
        assert_eq!(pending, blocked);
        gate(name).open();
        assert_eq!(raykit::get_all(&blocked).unwrap(), vec![1, 2]);
    });
}

#[test]
fn get_timeout_gives_up_with_a_timeout_error_and_the_object_stays_readable() {
    init();
    within(60, || {
        let name = "objects::get_timeout_gives_up";
        let blocked = after_gate::remote(name.to_owned(), 5);
        // The gate opens only after the timed gets returned, so only their deadline ends them.
        let err = raykit::get_timeout(&blocked, Duration::from_millis(50)).unwrap_err();
        assert_eq!(err.kind(), raykit::ErrorKind::Timeout, "{err:?}");
        assert!(err.to_string().contains("timed out"), "{err}");
        let err = raykit::get_timeout(&blocked, Duration::ZERO).unwrap_err();
        assert_eq!(err.kind(), raykit::ErrorKind::Timeout, "{err:?}");
        // Many refs: one not ready is enough to time out, and says how many were not.
        let ready = raykit::put(1i64);
        let other = after_gate::remote(name.to_owned(), 6);
        let refs = vec![ready.clone(), blocked.clone(), other.clone()];
        let err = raykit::get_all_timeout(&refs, Duration::from_millis(50)).unwrap_err();
        assert_eq!(err.kind(), raykit::ErrorKind::Timeout, "{err:?}");
        assert!(err.to_string().contains("2 objects"), "{err}");
        // A ready object comes back at once, whatever the timeout.
        assert_eq!(raykit::get_timeout(&ready, Duration::ZERO).unwrap(), 1);
        // A failed object is the answer before the deadline, as for get_all.
        let failed = panics::remote();
        let err = raykit::get_all_timeout(&[failed, blocked.clone()], Duration::from_secs(30));
        assert_eq!(err.unwrap_err().kind(), raykit::ErrorKind::TaskPanicked);
        // Timing out changed nothing: once the gate opens, the same refs are read.
        gate(name).open();
        let long = Duration::from_secs(30);
        assert_eq!(raykit::get_timeout(&blocked, long).unwrap(), 5);
        assert_eq!(raykit::get_all_timeout(&refs, long).unwrap(), vec![1, 5, 6]);
    });
}

#[test]
fn wait_wakes_when_an_object_arrives() {
    init();
    within(60, || {
        let name = "objects::wait_wakes_when_an_object_arrives";
        let refs = vec![after_gate::remote(name.to_owned(), 7)];
        let opener = std::thread::spawn(move || gate(name).open());
        // Without a limit, `wait` returns exactly when the object is there.
        let (ready, pending) = raykit::wait(&refs, 1, None);
        assert_eq!(ready, refs);
        assert!(pending.is_empty());
        opener.join().unwrap();
    });
}

#[test]
fn refs_are_futures_under_block_on() {
    init();
    within(60, || {
        let r = add::remote(1, 2);
        // `&ObjectRef` is IntoFuture and leaves the ref usable.
        assert_eq!(
            futures::executor::block_on(async { (&r).await }).unwrap(),
            3
        );
        // Awaiting a clone does not take the value from the other holders.
        assert_eq!(futures::executor::block_on(r.clone()).unwrap(), 3);
        assert_eq!(raykit::get(&r).unwrap(), 3);
        // The sole holder awaits the ref by value.
        assert_eq!(futures::executor::block_on(r).unwrap(), 3);
        // Several refs at once, pending when first polled.
        let name = "objects::refs_are_futures_under_block_on";
        let a = after_gate::remote(name.to_owned(), 10);
        let b = add::remote(&a, 1);
        let opener = std::thread::spawn(move || gate(name).open());
        let (x, y) = futures::executor::block_on(async { futures::join!(a.clone(), b) });
        assert_eq!((x.unwrap(), y.unwrap()), (10, 11));
        opener.join().unwrap();
        let all = futures::executor::block_on(futures::future::join_all(
            (0..20).map(|i| add::remote(i, i)),
        ));
        let all: Vec<i64> = all.into_iter().map(Result::unwrap).collect();
        assert_eq!(all, (0..20).map(|i| 2 * i).collect::<Vec<_>>());
    });
}

#[test]
fn refs_are_futures_in_a_users_tokio_runtime() {
    init();
    within(60, || {
        let rt = tokio::runtime::Runtime::new().unwrap();
        let name = "objects::refs_are_futures_in_a_users_tokio_runtime";
        let a = after_gate::remote(name.to_owned(), 5);
        let b = add::remote(&a, 5);
        let value = rt.block_on(async {
            let spawned = tokio::spawn(b);
            gate(name).open();
            let a = (&a).await.unwrap();
            a + spawned.await.unwrap().unwrap()
        });
        assert_eq!(value, 15);
        // Blocking `get` from the runtime's block_on thread and from one of its workers.
        let c = add::remote(1, 1);
        let c2 = c.clone();
        let (x, y) = rt.block_on(async move {
            let worker = tokio::spawn(async move { raykit::get(&c2).unwrap() });
            (raykit::get(&c).unwrap(), worker.await.unwrap())
        });
        assert_eq!((x, y), (2, 2));
    });
}

#[tokio::test]
async fn refs_are_futures_under_tokio_test() {
    init();
    let r = add::remote(40, 2);
    let v = tokio::time::timeout(Duration::from_secs(60), &r)
        .await
        .expect("await timed out")
        .unwrap();
    assert_eq!(v, 42);
    let chained = add::remote(&r, 1);
    let v = tokio::time::timeout(Duration::from_secs(60), chained)
        .await
        .expect("await timed out")
        .unwrap();
    assert_eq!(v, 43);
    // Blocking `get` on the test's (current-thread) runtime works too.
    assert_eq!(raykit::get(&add::remote(&r, 2)).unwrap(), 44);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refs_are_futures_under_multi_thread_tokio_test() {
    init();
    let name = "objects::refs_are_futures_under_multi_thread_tokio_test";
    let refs: Vec<ObjectRef<i64>> = (0..10)
        .map(|i| after_gate::remote(name.to_owned(), i))
        .collect();
    let handles: Vec<_> = refs.iter().cloned().map(|r| tokio::spawn(r)).collect();
    gate(name).open();
    let mut sum = 0;
    for h in handles {
        sum += tokio::time::timeout(Duration::from_secs(60), h)
            .await
            .expect("await timed out")
            .unwrap()
            .unwrap();
    }
    assert_eq!(sum, 45);
}

fn assert_ref_traits<
    R: Clone + Send + Sync + Eq + Hash + Debug + Serialize + DeserializeOwned + Unpin + 'static,
>() {
}

/// Not `Clone`, `Sync`, `Eq` or `Debug`: a ref to it is all of those anyway.
#[derive(Serialize, Deserialize)]
struct Opaque(std::cell::Cell<u32>);

#[test]
fn object_ref_traits() {
    assert_ref_traits::<ObjectRef<i64>>();
    assert_ref_traits::<ObjectRef<Opaque>>();
    assert_ref_traits::<ObjectRef<ObjectRef<Vec<String>>>>();
    fn is_future<F: std::future::Future<Output = raykit::Result<u8>> + Send>(_: F) {}
    fn is_into_future<F: std::future::IntoFuture<Output = raykit::Result<u8>>>(_: F) {}
    init();
    let r = raykit::put(1u8);
    is_into_future(&r);
    is_future(r.clone());

    // Eq and Hash follow the object, not the handle.
    let other = raykit::put(1u8);
    let set: HashSet<ObjectRef<u8>> = [r.clone(), r.clone(), other.clone()].into_iter().collect();
    assert_eq!(set.len(), 2);
    assert!(set.contains(&r) && set.contains(&other));
    assert_eq!(r, r.clone());
    assert_ne!(r, other);
    assert_eq!(r.id(), r.clone().id());
    // Debug shows which object it is.
    let dbg = format!("{r:?}");
    assert!(dbg.contains(&r.id().to_string()), "{dbg}");
    assert_ne!(r.id().to_string(), other.id().to_string());
}

#[derive(Debug, PartialEq, Serialize, Deserialize)]
struct Holder {
    name: String,
    refs: Vec<ObjectRef<i64>>,
}

#[test]
fn serde_round_trip_of_refs() {
    init();
    within(60, || {
        let r = add::remote(2, 3);
        let bytes = postcard::to_allocvec(&r).unwrap();
        let back: ObjectRef<i64> = postcard::from_bytes(&bytes).unwrap();
        assert_eq!(back, r);
        assert_eq!(raykit::get(&back).unwrap(), 5);

        // Inside a container, and still valid once the originals are gone.
        let h = Holder {
            name: "h".into(),
            refs: vec![raykit::put(1), add::remote(1, 1)],
        };
        let bytes = postcard::to_allocvec(&h).unwrap();
        let back: Holder = postcard::from_bytes(&bytes).unwrap();
        assert_eq!(back, h);
        drop(h);
        assert_eq!(raykit::get_all(&back.refs).unwrap(), vec![1, 2]);

        // A ref whose object was freed does not deserialize into a dangling ref.
        let gone = raykit::put(9i64);
        let bytes = postcard::to_allocvec(&gone).unwrap();
        drop(gone);
        let err = postcard::from_bytes::<ObjectRef<i64>>(&bytes);
        if !known_difference(
            "a serialized ref keeps its object until the job ends, where embedded it keeps \
             nothing (Ray counts it as a reference in both)",
        ) {
            assert!(err.is_err(), "deserialized a ref to a freed object");
        }
    });
}

/// A value that cannot be cloned: `get` must copy it another way.
#[derive(Debug, PartialEq, Serialize, Deserialize)]
struct NoClone {
    words: Vec<String>,
    n: u64,
}

#[raykit::remote]
fn make_no_clone(n: u64) -> NoClone {
    NoClone {
        words: (0..n).map(|i| i.to_string()).collect(),
        n,
    }
}

#[raykit::remote]
fn count_words(v: NoClone) -> usize {
    v.words.len()
}

#[test]
fn values_that_are_not_clone() {
    init();
    within(60, || {
        let want = NoClone {
            words: vec!["0".into(), "1".into(), "2".into()],
            n: 3,
        };
        let r = make_no_clone::remote(3);
        assert_eq!(raykit::get(&r).unwrap(), want);
        assert_eq!(raykit::get(&r).unwrap(), want);
        // As an argument while the caller still holds the ref.
        assert_eq!(raykit::get(&count_words::remote(&r)).unwrap(), 3);
        assert_eq!(raykit::get(&r).unwrap(), want);
        let p = raykit::put(NoClone {
            words: vec!["x".into()],
            n: 1,
        });
        assert_eq!(raykit::get(&p).unwrap().words, vec!["x".to_owned()]);
        assert_eq!(raykit::get(&count_words::remote(&p)).unwrap(), 1);
        assert_eq!(raykit::get(&p).unwrap().n, 1);
        assert_eq!(
            futures::executor::block_on(async { (&p).await }).unwrap().n,
            1
        );
        assert_eq!(futures::executor::block_on(p).unwrap().n, 1);
    });
}

/// Fails once the gate called `name` opens.
#[raykit::remote(num_cpus = 0)]
fn fail_after_gate(name: String) -> i64 {
    gate(&name).wait();
    panic!("failed on purpose")
}

#[test]
fn get_all_waits_for_every_ref_but_returns_an_error_without_the_rest() {
    init();
    within(60, || {
        // Every ref ready: values in order, whatever order they were made in.
        let late = after_gate::remote("objects-get-all-late".to_string(), 1);
        let early = add::remote(1, 1);
        std::thread::spawn(|| {
            std::thread::sleep(Duration::from_millis(50));
            gate("objects-get-all-late").open();
        });
        assert_eq!(raykit::get_all(&[late, early.clone()]).unwrap(), vec![1, 2]);

        // A ref that fails while a later one is still pending: its error, at once.
        let failing = fail_after_gate::remote("objects-get-all-fail".to_string());
        let stuck = after_gate::remote("objects-get-all-stuck".to_string(), 7);
        std::thread::spawn(|| {
            std::thread::sleep(Duration::from_millis(50));
            gate("objects-get-all-fail").open();
        });
        let err = raykit::get_all(&[early.clone(), failing.clone(), stuck.clone()]).unwrap_err();
        assert!(err.to_string().contains("failed on purpose"), "{err}");
        assert!(!stuck.is_ready());
        // Already failed: the same error without waiting.
        let err = raykit::get_all(&[failing, stuck.clone()]).unwrap_err();
        assert!(err.to_string().contains("failed on purpose"), "{err}");
        gate("objects-get-all-stuck").open();
        assert_eq!(raykit::get_all(&[early, stuck]).unwrap(), vec![2, 7]);
    });
}
