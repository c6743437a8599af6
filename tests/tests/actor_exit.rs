//! `raykit::exit_actor()`: a method ends its own actor after the call. The call answers; calls
//! queued behind it and later ones fail with ActorDied saying the actor exited; it is not
//! restarted whatever its `max_restarts`; its state is dropped and its name freed; outside an
//! actor method it panics.

use raykit::{ActorHandle, ActorOptions, ErrorKind};
use raykit_tests::{eventually, unique_id, within, Tracked};

raykit_tests::suite!(Shape::cpus(2));

#[derive(raykit::Actor)]
#[actor(max_restarts = 2)]
struct Worker {
    probe: Tracked,
    calls: u64,
}

#[raykit::actor]
impl Worker {
    pub fn new(probe: u64) -> Self {
        Worker {
            probe: Tracked::with_id(probe),
            calls: 0,
        }
    }

    /// Counts the call and returns how many there were.
    pub fn ping(&mut self) -> u64 {
        self.calls += 1;
        self.calls
    }

    /// Ends the actor after this call, which still answers.
    pub fn finish(&mut self) -> u64 {
        raykit::exit_actor();
        self.calls += 1;
        self.calls
    }

    /// Ends the actor from an async method, after an await.
    pub async fn finish_later(&self) -> u64 {
        tokio::task::yield_now().await;
        raykit::exit_actor();
        tokio::task::yield_now().await;
        self.probe.id
    }
}

/// Calls `exit_actor` outside any actor.
#[raykit::remote]
fn not_an_actor() -> u8 {
    raykit::exit_actor();
    1
}

fn assert_exited(e: &raykit::Error) {
    assert_eq!(e.kind(), ErrorKind::ActorDied, "{e:?}");
    assert!(e.to_string().contains("exit_actor"), "{e}");
}

#[test]
fn the_exiting_call_answers_and_the_calls_after_it_fail() {
    init();
    within(120, || {
        let probe = unique_id();
        let w = Worker::remote(probe);
        assert_eq!(raykit::get(&w.ping()).unwrap(), 1);
        let last = w.finish();
        // Sent right behind it: it never runs.
        let behind = w.ping();
        assert_eq!(raykit::get(&last).unwrap(), 2);
        assert_exited(&raykit::get(&behind).unwrap_err());
        assert_exited(&raykit::get(&w.ping()).unwrap_err());
        // Not restarted, despite max_restarts = 2, and its state goes.
        eventually(30, "the exited actor's state is dropped", || {
            Tracked::drops(probe) == 1
        });
        assert_exited(&raykit::get(&w.ping()).unwrap_err());
    });
}

#[test]
fn an_async_method_can_end_its_actor() {
    init();
    within(120, || {
        let probe = unique_id();
        let w = Worker::remote(probe);
        assert_eq!(raykit::get(&w.finish_later()).unwrap(), probe);
        assert_exited(&raykit::get(&w.ping()).unwrap_err());
        eventually(30, "the exited actor's state is dropped", || {
            Tracked::drops(probe) == 1
        });
    });
}

#[test]
fn an_exited_named_actor_gives_its_name_back() {
    init();
    within(120, || {
        let name = format!("actor_exit::named#{}", unique_id());
        let w = Worker::options(ActorOptions::new().name(&name)).remote(unique_id());
        raykit::get(&w.finish()).unwrap();
        eventually(30, "the name is free", || {
            raykit::get_actor::<Worker>(&name).is_err()
        });
        let again = Worker::options(ActorOptions::new().name(&name)).remote(unique_id());
        let found: ActorHandle<Worker> = raykit::get_actor(&name).unwrap();
        assert_eq!(raykit::get(&found.ping()).unwrap(), 1);
        drop(again);
    });
}

#[test]
fn exit_actor_outside_an_actor_fails_that_task() {
    init();
    within(60, || {
        let e = raykit::get(&not_an_actor::remote()).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::TaskPanicked, "{e:?}");
        assert!(e.to_string().contains("outside an actor method"), "{e}");
    });
}
