//! `raykit::util::ActorPool`: `map` in order, `map_unordered` as done, `submit` queueing values
//! while every actor is busy, `get_next` in submission order (with a timeout that leaves the
//! result to be read), `get_next_unordered`, failed calls, and actors taken out and put back.
//!
//! Calls that must still be running wait at gates that the test opens only afterwards, so no
//! outcome rests on timing.

use std::collections::BTreeSet;
use std::time::Duration;

use raykit::util::ActorPool;
use raykit::{ActorHandle, ErrorKind};
use raykit_tests::{gate, unique_id, within};

raykit_tests::suite!(Shape::cpus(2));

/// A fresh gate name for one test.
fn fresh(what: &str) -> String {
    format!("actor_pool::{what}#{}", unique_id())
}

#[derive(raykit::Actor)]
struct Worker {
    id: u64,
}

#[raykit::actor]
impl Worker {
    pub fn new(id: u64) -> Self {
        Worker { id }
    }

    /// Twice `v`; panics for 13.
    pub fn double(&self, v: u64) -> u64 {
        assert_ne!(v, 13, "unlucky");
        v * 2
    }

    /// `v` once the gate `name` opens.
    pub fn after_gate(&self, name: String, v: u64) -> u64 {
        gate(&name).wait();
        v
    }

    /// This worker's id.
    pub fn worker_id(&self) -> u64 {
        self.id
    }
}

fn workers(n: u64) -> Vec<ActorHandle<Worker>> {
    (0..n).map(Worker::remote).collect()
}

#[test]
fn map_returns_results_in_order_and_map_unordered_each_once() {
    init();
    within(120, || {
        let mut pool = ActorPool::new(workers(3));
        let doubled: Vec<u64> = pool
            .map(|a, v| a.double(v), 20..40u64)
            .collect::<raykit::Result<_>>()
            .unwrap();
        assert_eq!(doubled, (20..40u64).map(|v| v * 2).collect::<Vec<_>>());
        assert!(!pool.has_next());
        let unordered: BTreeSet<u64> = pool
            .map_unordered(|a, v| a.double(v), 20..40u64)
            .collect::<raykit::Result<_>>()
            .unwrap();
        assert_eq!(unordered, (20..40u64).map(|v| v * 2).collect());
        assert!(!pool.has_next());
        assert!(pool.get_next().is_none());
        assert!(pool.get_next_unordered().is_none());
    });
}

#[test]
fn submitted_values_wait_for_a_free_actor_and_come_back_in_submission_order() {
    init();
    within(120, || {
        let name = fresh("submit");
        let mut pool = ActorPool::new(workers(2));
        assert!(pool.has_free());
        for v in 0..3u64 {
            let name = name.clone();
            pool.submit(move |a, v| a.after_gate(name, v), v);
        }
        // Both actors are held by calls at the gate; the third value waits in the pool.
        assert!(!pool.has_free());
        assert!(pool.pop_idle().is_none());
        let err = pool
            .get_next_timeout(Duration::from_millis(50))
            .expect("three results are due")
            .unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Timeout, "{err:?}");
        assert!(pool.has_next());
        gate(&name).open();
        let got: Vec<u64> = std::iter::from_fn(|| pool.get_next())
            .collect::<raykit::Result<_>>()
            .unwrap();
        assert_eq!(got, vec![0, 1, 2]);
        assert!(!pool.has_next());
        assert!(pool.has_free());
    });
}

#[test]
fn get_next_unordered_returns_the_result_that_is_done_first() {
    init();
    within(120, || {
        let name = fresh("unordered");
        let mut pool = ActorPool::new(workers(2));
        let gated = name.clone();
        pool.submit(move |a, v| a.after_gate(gated, v), 1);
        pool.submit(|a, v| a.double(v), 2);
        assert_eq!(pool.get_next_unordered().unwrap().unwrap(), 4);
        let err = pool
            .get_next_unordered_timeout(Duration::from_millis(50))
            .expect("one result is due")
            .unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Timeout, "{err:?}");
        gate(&name).open();
        assert_eq!(pool.get_next_unordered().unwrap().unwrap(), 1);
        assert!(pool.get_next_unordered().is_none());
    });
}

#[test]
fn a_failed_call_fails_its_own_result_and_the_pool_goes_on() {
    init();
    within(120, || {
        let mut pool = ActorPool::new(workers(2));
        let results: Vec<raykit::Result<u64>> = pool.map(|a, v| a.double(v), 10..16u64).collect();
        assert_eq!(results.len(), 6);
        for (v, result) in (10..16u64).zip(&results) {
            match result {
                Ok(doubled) => assert_eq!(*doubled, v * 2),
                Err(e) => {
                    assert_eq!(v, 13, "only 13 fails: {e}");
                    assert_eq!(e.kind(), ErrorKind::TaskPanicked, "{e:?}");
                    assert!(e.to_string().contains("unlucky"), "{e}");
                }
            }
        }
        assert!(results[3].is_err());
        // Both actors are still there and keep their state.
        let ids: BTreeSet<u64> = pool
            .map(|a, ()| a.worker_id(), [(), ()])
            .collect::<raykit::Result<_>>()
            .unwrap();
        assert!(!ids.is_empty() && ids.iter().all(|id| *id < 2), "{ids:?}");
    });
}

#[test]
fn actors_taken_out_of_the_pool_can_be_put_back() {
    init();
    within(120, || {
        let mut pool = ActorPool::new(workers(1));
        let actor = pool.pop_idle().expect("one idle actor");
        assert!(pool.pop_idle().is_none());
        // No actor: the value waits, and reading it says why instead of hanging.
        pool.submit(|a, v| a.double(v), 21);
        let err = pool.get_next().expect("one result is due").unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Config, "{err:?}");
        assert!(err.to_string().contains("no actors"), "{err}");
        // Put back, the actor takes the waiting value at once.
        pool.push(actor.clone());
        assert_eq!(pool.get_next().unwrap().unwrap(), 42);
        // The handle taken out still calls the same actor.
        assert_eq!(raykit::get(&actor.worker_id()).unwrap(), 0);
    });
}
