//! Actor handles travel and actors live as long as they should: `ActorHandle<T>` is
//! `Clone + Send + Sync + Serialize + Deserialize + Debug`, is passed to tasks and to other
//! actors, returned from tasks, kept in containers and round-tripped through serde, and every
//! copy calls the same actor; tasks blocking in `get` on actor calls do not deadlock a one-CPU
//! runtime; named actors are found from the driver and from tasks (a missing name or another
//! actor type is an error, not a panic); `kill` fails later calls on every copy; an unnamed
//! actor's state is dropped once its last handle is gone, a named one's only when killed.
//!
//! The runtime has one CPU, so every task that waits on an actor must give its CPU back.

use std::collections::{HashMap, HashSet};
use std::fmt::Debug;
use std::hash::Hash;

use raykit::{ActorHandle, ActorOptions, ErrorKind, ObjectRef};
use raykit_tests::{eventually, gate, known_difference, unique_id, within, Tracked};
use serde::{de::DeserializeOwned, Deserialize, Serialize};

raykit_tests::suite!(Shape::cpus(1));

/// A fresh name for gates and named actors of one test.
fn fresh(what: &str) -> String {
    format!("actor_handles::{what}#{}", unique_id())
}

/// A counter whose state records its drop (see [`Tracked::drops`]).
#[derive(raykit::Actor)]
struct Counter {
    value: u64,
    _probe: Tracked,
}

#[raykit::actor]
impl Counter {
    pub fn new(start: u64) -> Self {
        Counter {
            value: start,
            _probe: Tracked::new(),
        }
    }

    pub fn incr(&mut self, by: u64) -> u64 {
        self.value += by;
        self.value
    }

    pub fn value(&self) -> u64 {
        self.value
    }

    /// The id of the state's drop probe.
    pub fn probe(&self) -> u64 {
        self._probe.id
    }

    /// Runs a task (which needs the runtime's one CPU) and waits for it.
    pub fn incr_by_task(&mut self, x: u64) -> u64 {
        self.value += raykit::get(&double::remote(x)).expect("double");
        self.value
    }

    /// Runs a task (which needs the runtime's one CPU) and awaits it.
    pub async fn incr_by_task_async(&mut self, x: u64) -> u64 {
        self.value += double::remote(x).await.expect("double");
        self.value
    }

    /// Opens the gate `name/entered`, then waits at the gate `name`.
    pub fn hold(&self, name: String) -> u64 {
        gate(&format!("{name}/entered")).open();
        gate(&name).wait();
        self.value
    }
}

/// Its constructor opens the gate `gate_name/entered`, then waits at the gate `gate_name`; its
/// state records its drop under the id `probe`.
#[derive(raykit::Actor)]
struct SlowStart {
    _probe: Tracked,
}

#[raykit::actor]
impl SlowStart {
    pub fn new(gate_name: String, probe: u64) -> Self {
        gate(&format!("{gate_name}/entered")).open();
        gate(&gate_name).wait();
        SlowStart {
            _probe: Tracked {
                id: probe,
                payload: Vec::new(),
            },
        }
    }

    pub fn ping(&self) -> u64 {
        1
    }
}

/// Another actor type, for lookups under the wrong type.
#[derive(raykit::Actor)]
struct Other {
    label: String,
}

#[raykit::actor]
impl Other {
    pub fn new(label: String) -> Self {
        Other { label }
    }

    pub fn label(&self) -> String {
        self.label.clone()
    }
}

/// Holds a handle to a counter and forwards calls to it.
#[derive(raykit::Actor)]
struct Relay {
    target: ActorHandle<Counter>,
}

#[raykit::actor]
impl Relay {
    pub fn new(target: ActorHandle<Counter>) -> Self {
        Relay { target }
    }

    /// Calls the target and blocks until the answer.
    pub fn forward(&self, by: u64) -> u64 {
        raykit::get(&self.target.incr(by)).expect("forwarded incr")
    }

    /// Calls the target and awaits the answer.
    pub async fn forward_async(&self, by: u64) -> u64 {
        self.target.incr(by).await.expect("forwarded incr")
    }

    /// Calls a counter handed over with the call.
    pub fn bump_other(&self, other: ActorHandle<Counter>, by: u64) -> u64 {
        raykit::get(&other.incr(by)).expect("incr of the other")
    }

    /// Gives out a copy of the handle it holds.
    pub fn target(&self) -> ActorHandle<Counter> {
        self.target.clone()
    }

    /// Creates a counter from inside the actor and hands it out.
    pub fn spawn_counter(&self, start: u64) -> ActorHandle<Counter> {
        Counter::remote(start)
    }

    /// Swaps in another target.
    pub fn retarget(&mut self, target: ActorHandle<Counter>) {
        self.target = target;
    }
}

#[raykit::remote]
fn double(x: u64) -> u64 {
    2 * x
}

/// Calls the actor from inside a task and blocks on the answer (holding the one CPU until it
/// blocks).
#[raykit::remote]
fn uses(h: ActorHandle<Counter>) -> u64 {
    raykit::get(&h.incr(1)).expect("incr from a task")
}

#[raykit::remote]
async fn uses_async(h: ActorHandle<Counter>) -> u64 {
    h.incr(1).await.expect("incr from an async task")
}

/// A task that calls an actor whose method itself runs a task.
#[raykit::remote]
fn nested(h: ActorHandle<Counter>, x: u64) -> u64 {
    raykit::get(&h.incr_by_task(x)).expect("incr_by_task from a task")
}

/// The same through an async method, from an async task.
#[raykit::remote]
async fn nested_async(h: ActorHandle<Counter>, x: u64) -> u64 {
    h.incr_by_task_async(x)
        .await
        .expect("incr_by_task_async from a task")
}

#[raykit::remote]
fn make_counter(start: u64) -> ActorHandle<Counter> {
    Counter::remote(start)
}

#[raykit::remote]
fn make_counters(n: u64) -> Vec<ActorHandle<Counter>> {
    (0..n).map(Counter::remote).collect()
}

#[raykit::remote]
fn total(hs: Vec<ActorHandle<Counter>>) -> u64 {
    let refs: Vec<ObjectRef<u64>> = hs.iter().map(|h| h.value()).collect();
    raykit::get_all(&refs).expect("values").into_iter().sum()
}

#[raykit::remote]
fn incr_named(name: String, by: u64) -> u64 {
    let h: ActorHandle<Counter> = raykit::get_actor(&name).expect("named actor from a task");
    raykit::get(&h.incr(by)).expect("incr")
}

/// Creates a named counter inside a task and drops the task's handle.
#[raykit::remote]
fn create_named(name: String, start: u64) -> u64 {
    let h = Counter::options(ActorOptions::new().name(name)).remote(start);
    raykit::get(&h.value()).expect("value")
}

/// Looks `name` up as a counter from inside a task: the error kind, if any.
#[raykit::remote]
fn lookup_kind(name: String) -> Option<ErrorKind> {
    raykit::get_actor::<Counter>(&name).err().map(|e| e.kind())
}

#[raykit::remote]
fn kill_it(h: ActorHandle<Counter>) {
    h.kill();
}

/// A call from a task on its own copy of the handle: its result or error kind.
#[raykit::remote]
fn try_value(h: ActorHandle<Counter>) -> Result<u64, ErrorKind> {
    raykit::get(&h.value()).map_err(|e| e.kind())
}

fn assert_handle_traits<T>()
where
    T: Clone + Send + Sync + Serialize + DeserializeOwned + Debug + Eq + Hash + 'static,
{
}

/// The probe id of a counter's state.
fn probe_of(h: &ActorHandle<Counter>) -> u64 {
    raykit::get(&h.probe()).expect("probe")
}

/// Waits until the actor's state (its probe) was dropped. On a cluster the worker process of a
/// stopped or killed actor drops the state itself before it tells the node it is done.
fn wait_dropped(probe: u64, what: &str) {
    eventually(30, what, || Tracked::drops(probe) == 1);
}

// ---------------------------------------------------------------------------------------------

#[test]
fn handles_are_values_that_name_one_actor() {
    init();
    assert_handle_traits::<ActorHandle<Counter>>();
    assert_handle_traits::<ActorHandle<Relay>>();
    within(60, || {
        let a = Counter::remote(0);
        let b = Counter::remote(0);
        let a2 = a.clone();
        assert_eq!(a, a2);
        assert_ne!(a, b);
        assert_eq!(a.id(), a2.id());
        let set: HashSet<ActorHandle<Counter>> = [a.clone(), a2.clone(), b.clone()].into();
        assert_eq!(set.len(), 2);
        let dbg = format!("{a:?}");
        assert!(dbg.contains("Counter"), "{dbg}");
        assert!(dbg.contains(&a.id().to_string()), "{dbg}");
        // Every copy calls the same actor.
        a.incr(1);
        a2.incr(10);
        std::thread::spawn({
            let a3 = a.clone();
            move || raykit::get(&a3.incr(100)).unwrap()
        })
        .join()
        .unwrap();
        assert_eq!(raykit::get(&a.value()).unwrap(), 111);
        assert_eq!(raykit::get(&b.value()).unwrap(), 0);
    });
}

#[test]
fn handles_passed_to_tasks_on_one_cpu() {
    init();
    within(60, || {
        let c = Counter::remote(0);
        // Sixteen tasks, each holding the only CPU until it blocks in `get` on the actor.
        let refs: Vec<ObjectRef<u64>> = (0..16)
            .map(|i| {
                if i % 2 == 0 {
                    uses::remote(c.clone())
                } else {
                    uses_async::remote(c.clone())
                }
            })
            .collect();
        let mut seen = raykit::get_all(&refs).unwrap();
        seen.sort_unstable();
        assert_eq!(seen, (1..=16).collect::<Vec<_>>());
        assert_eq!(raykit::get(&c.value()).unwrap(), 16);
        // A task blocks on an actor method that itself needs the CPU for a task.
        assert_eq!(raykit::get(&nested::remote(c.clone(), 2)).unwrap(), 20);
        assert_eq!(
            raykit::get(&nested_async::remote(c.clone(), 1)).unwrap(),
            22
        );
        // The handle as a ref argument.
        let h = raykit::put(c.clone());
        assert_eq!(raykit::get(&uses::remote(&h)).unwrap(), 23);
    });
}

#[test]
fn handles_returned_from_tasks() {
    init();
    within(60, || {
        let href: ObjectRef<ActorHandle<Counter>> = make_counter::remote(40);
        // Used by another task straight from the ref, then by the driver.
        assert_eq!(raykit::get(&uses::remote(&href)).unwrap(), 41);
        let h = raykit::get(&href).unwrap();
        assert_eq!(raykit::get(&h.incr(1)).unwrap(), 42);
        // And as a constructor argument of another actor, still a ref.
        let relay = Relay::remote(&href);
        assert_eq!(raykit::get(&relay.forward(8)).unwrap(), 50);
        drop(href);
        assert_eq!(raykit::get(&h.value()).unwrap(), 50);

        let many = raykit::get(&make_counters::remote(5)).unwrap();
        assert_eq!(many.len(), 5);
        for h in &many {
            h.incr(10);
        }
        assert_eq!(raykit::get(&total::remote(many.clone())).unwrap(), 60);
    });
}

#[test]
fn handles_kept_in_containers() {
    init();
    within(60, || {
        let v: Vec<ActorHandle<Counter>> = (0..10).map(Counter::remote).collect();
        let by_name: HashMap<String, ActorHandle<Counter>> = v
            .iter()
            .enumerate()
            .map(|(i, h)| (format!("c{i}"), h.clone()))
            .collect();
        by_name["c3"].incr(100);
        assert_eq!(raykit::get(&v[3].value()).unwrap(), 103);
        // A container of handles as a task argument and as a ref.
        assert_eq!(raykit::get(&total::remote(v.clone())).unwrap(), 145);
        let stored = raykit::put(v.clone());
        v[0].incr(5);
        assert_eq!(raykit::get(&total::remote(&stored)).unwrap(), 150);
        let back = raykit::get(&stored).unwrap();
        assert_eq!(back, v);
    });
}

#[test]
fn handles_passed_to_other_actors() {
    init();
    within(60, || {
        let c = Counter::remote(0);
        let relay = Relay::remote(c.clone());
        assert_eq!(raykit::get(&relay.forward(1)).unwrap(), 1);
        assert_eq!(raykit::get(&relay.forward_async(2)).unwrap(), 3);
        c.incr(10);
        assert_eq!(raykit::get(&relay.forward(0)).unwrap(), 13);
        // A handle as a method argument, and a handle returned by a method.
        let d = Counter::remote(100);
        assert_eq!(raykit::get(&relay.bump_other(d.clone(), 5)).unwrap(), 105);
        let t = raykit::get(&relay.target()).unwrap();
        assert_eq!(t, c);
        relay.retarget(d.clone());
        assert_eq!(raykit::get(&relay.forward(1)).unwrap(), 106);
        // A relay of relays: handles of handles.
        let relays: Vec<ActorHandle<Relay>> = (0..4).map(|_| Relay::remote(c.clone())).collect();
        let refs: Vec<_> = relays.iter().map(|r| r.forward_async(1)).collect();
        raykit::get_all(&refs).unwrap();
        assert_eq!(raykit::get(&c.value()).unwrap(), 17);
        // An actor created inside an actor's method, handed out to the driver.
        let e = raykit::get(&relay.spawn_counter(30)).unwrap();
        assert_eq!(raykit::get(&e.incr(1)).unwrap(), 31);
        relay.retarget(e.clone());
        assert_eq!(raykit::get(&relay.forward(1)).unwrap(), 32);
    });
}

/// A value with a handle inside, as a program would serialize it.
#[derive(Serialize, Deserialize)]
struct Team {
    name: String,
    members: Vec<ActorHandle<Counter>>,
    lead: Option<ActorHandle<Counter>>,
}

#[test]
fn handles_roundtrip_through_serde() {
    init();
    within(60, || {
        let c = Counter::remote(1);
        let d = Counter::remote(2);

        let json = serde_json::to_string(&c).unwrap();
        let from_json: ActorHandle<Counter> = serde_json::from_str(&json).unwrap();
        assert_eq!(from_json, c);
        assert_eq!(raykit::get(&from_json.incr(1)).unwrap(), 2);

        let bytes = postcard::to_allocvec(&c).unwrap();
        let from_postcard: ActorHandle<Counter> = postcard::from_bytes(&bytes).unwrap();
        assert_eq!(from_postcard, c);
        assert_eq!(raykit::get(&from_postcard.incr(1)).unwrap(), 3);
        assert_eq!(raykit::get(&c.value()).unwrap(), 3);

        let team = Team {
            name: "t".to_owned(),
            members: vec![c.clone(), d.clone()],
            lead: Some(d.clone()),
        };
        let json = serde_json::to_vec(&team).unwrap();
        let back: Team = serde_json::from_slice(&json).unwrap();
        assert_eq!(back.name, "t");
        assert_eq!(back.members, vec![c.clone(), d.clone()]);
        let bytes = postcard::to_allocvec(&team).unwrap();
        let back: Team = postcard::from_bytes(&bytes).unwrap();
        assert_eq!(back.lead.as_ref(), Some(&d));
        raykit::get(&back.members[1].incr(10)).unwrap();
        assert_eq!(raykit::get(&d.value()).unwrap(), 12);

        // Read back as another actor type: an error, not a wrong handle.
        let json = serde_json::to_string(&c).unwrap();
        assert!(serde_json::from_str::<ActorHandle<Other>>(&json).is_err());
        let bytes = postcard::to_allocvec(&c).unwrap();
        assert!(postcard::from_bytes::<ActorHandle<Other>>(&bytes).is_err());
    });
}

#[test]
fn a_serialized_handle_of_a_stopped_actor_is_an_error() {
    init();
    within(60, || {
        let c = Counter::remote(1);
        let probe = probe_of(&c);
        let json = serde_json::to_string(&c).unwrap();
        drop(c);
        if known_difference(
            "a serialized handle keeps its actor until the job ends, where embedded it keeps \
             nothing (Ray counts it as a reference in both)",
        ) {
            return;
        }
        wait_dropped(probe, "the actor stopped");
        let back = serde_json::from_str::<ActorHandle<Counter>>(&json);
        assert!(
            back.is_err(),
            "a handle to a stopped actor came back to life"
        );
    });
}

#[test]
fn named_actors_from_the_driver_and_from_tasks() {
    init();
    within(60, || {
        let name = fresh("named_actors_from_the_driver_and_from_tasks");
        let c = Counter::options(ActorOptions::new().name(name.clone())).remote(10);
        let same: ActorHandle<Counter> = raykit::get_actor(&name).unwrap();
        assert_eq!(same, c);
        assert_eq!(raykit::get(&same.incr(1)).unwrap(), 11);
        assert_eq!(
            raykit::get(&incr_named::remote(name.clone(), 5)).unwrap(),
            16
        );
        assert_eq!(raykit::get(&c.value()).unwrap(), 16);
        // From another thread of the driver.
        let n2 = name.clone();
        let v = std::thread::spawn(move || {
            let h: ActorHandle<Counter> = raykit::get_actor(&n2).unwrap();
            raykit::get(&h.incr(1)).unwrap()
        })
        .join()
        .unwrap();
        assert_eq!(v, 17);
        c.kill();

        // Created inside a task, whose handle is dropped when it returns: found from the driver.
        let name = fresh("named_in_a_task");
        assert_eq!(
            raykit::get(&create_named::remote(name.clone(), 3)).unwrap(),
            3
        );
        let h: ActorHandle<Counter> = raykit::get_actor(&name).unwrap();
        assert_eq!(raykit::get(&h.incr(1)).unwrap(), 4);
        h.kill();
    });
}

#[test]
fn get_actor_of_a_missing_name_or_another_type_is_an_error() {
    init();
    within(60, || {
        let missing = fresh("missing");
        let e = raykit::get_actor::<Counter>(&missing).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::ActorNotFound, "{e:?}");
        assert!(e.to_string().contains(&missing), "{e}");
        assert_eq!(
            raykit::get(&lookup_kind::remote(missing)).unwrap(),
            Some(ErrorKind::ActorNotFound)
        );

        let name = fresh("other_type");
        let o = Other::options(ActorOptions::new().name(name.clone())).remote("o".to_owned());
        let e = raykit::get_actor::<Counter>(&name).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::ActorNotFound, "{e:?}");
        assert_eq!(
            raykit::get(&lookup_kind::remote(name.clone())).unwrap(),
            Some(ErrorKind::ActorNotFound)
        );
        // Under its own type it is there, and still works after the failed lookups.
        let same: ActorHandle<Other> = raykit::get_actor(&name).unwrap();
        assert_eq!(raykit::get(&same.label()).unwrap(), "o");
        o.kill();
        let e = raykit::get_actor::<Other>(&name).unwrap_err();
        assert_eq!(
            e.kind(),
            ErrorKind::ActorNotFound,
            "killed actors are not found"
        );
    });
}

#[test]
fn a_taken_name_fails_the_second_actor_not_the_first() {
    init();
    within(60, || {
        let name = fresh("a_taken_name");
        let first = Counter::options(ActorOptions::new().name(name.clone())).remote(1);
        let second = Counter::options(ActorOptions::new().name(name.clone())).remote(2);
        let e = raykit::get(&second.value()).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::ActorDied, "{e:?}");
        assert!(e.to_string().contains(&name), "{e}");
        assert_eq!(raykit::get(&first.value()).unwrap(), 1);
        let found: ActorHandle<Counter> = raykit::get_actor(&name).unwrap();
        assert_eq!(found, first);
        // Once the first is killed, the name can be taken again.
        first.kill();
        let third = Counter::options(ActorOptions::new().name(name.clone())).remote(3);
        assert_eq!(raykit::get(&third.value()).unwrap(), 3);
        let found: ActorHandle<Counter> = raykit::get_actor(&name).unwrap();
        assert_eq!(found, third);
        third.kill();
    });
}

#[test]
fn kill_fails_later_calls_on_every_copy() {
    init();
    within(60, || {
        let c = Counter::remote(5);
        let probe = probe_of(&c);
        let copies = [c.clone(), c.clone()];
        let json = serde_json::to_string(&c).unwrap();
        let decoded: ActorHandle<Counter> = serde_json::from_str(&json).unwrap();
        c.kill();
        for h in copies.iter().chain([&c, &decoded]) {
            let e = raykit::get(&h.value()).unwrap_err();
            assert_eq!(e.kind(), ErrorKind::ActorDied, "{e:?}");
            let e = raykit::get(&h.incr(1)).unwrap_err();
            assert_eq!(e.kind(), ErrorKind::ActorDied, "{e:?}");
        }
        // From a task holding its own copy too.
        assert_eq!(
            raykit::get(&try_value::remote(c.clone())).unwrap(),
            Err(ErrorKind::ActorDied)
        );
        // Its state is dropped even though handles are left; killing again is harmless.
        wait_dropped(probe, "the killed actor's state is dropped");
        c.kill();
        assert_eq!(
            raykit::get(&c.value()).unwrap_err().kind(),
            ErrorKind::ActorDied
        );
    });
}

#[test]
fn kill_from_inside_a_task() {
    init();
    within(60, || {
        let name = fresh("kill_from_inside_a_task");
        let c = Counter::options(ActorOptions::new().name(name.clone())).remote(0);
        assert_eq!(raykit::get(&c.incr(1)).unwrap(), 1);
        raykit::get(&kill_it::remote(c.clone())).unwrap();
        let e = raykit::get(&c.value()).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::ActorDied);
        assert_eq!(
            raykit::get_actor::<Counter>(&name).unwrap_err().kind(),
            ErrorKind::ActorNotFound
        );
    });
}

#[test]
fn kill_fails_the_running_call_and_the_queued_ones_at_once() {
    init();
    within(60, || {
        let name = fresh("kill_fails_the_running_call");
        let c = Counter::remote(7);
        let probe = probe_of(&c);
        // A call that runs until its gate opens (here: after the kill), and one behind it.
        let running = c.hold(name.clone());
        gate(&format!("{name}/entered")).wait();
        let queued = c.incr(1);
        c.kill();
        let later = c.value();
        // All fail now, while the running call's thread still waits at its gate (a call that
        // never ends cannot keep `get` waiting).
        for r in [&running, &queued, &later] {
            let e = raykit::get(r).unwrap_err();
            assert_eq!(e.kind(), ErrorKind::ActorDied, "{e:?}");
            assert!(e.to_string().contains("was killed"), "{e}");
        }
        // The call's own end, later, changes nothing; the state goes once it has ended.
        gate(&name).open();
        wait_dropped(probe, "the state is dropped once the running call ends");
        assert_eq!(
            raykit::get(&running).unwrap_err().kind(),
            ErrorKind::ActorDied
        );
    });
}

#[test]
fn an_actor_killed_or_dropped_while_its_constructor_runs() {
    init();
    within(60, || {
        // Killed while its constructor runs: queued and later calls fail, and what the
        // constructor builds is dropped.
        let name = fresh("killed_while_constructing");
        let probe = unique_id();
        let s = SlowStart::remote(name.clone(), probe);
        let early = s.ping();
        gate(&format!("{name}/entered")).wait();
        s.kill();
        let late = s.ping();
        // The call after the kill has failed, so the kill has taken effect (on a cluster it
        // travels to the head like the calls) before the constructor may go on.
        assert_eq!(raykit::get(&late).unwrap_err().kind(), ErrorKind::ActorDied);
        gate(&name).open();
        for r in [&early, &late] {
            let e = raykit::get(r).unwrap_err();
            assert_eq!(e.kind(), ErrorKind::ActorDied, "{e:?}");
        }
        wait_dropped(probe, "the state built after the kill is dropped");

        // Every handle dropped before its constructor finished: the calls queued meanwhile
        // still run, then the actor stops.
        let name = fresh("dropped_while_constructing");
        let probe = unique_id();
        let s = SlowStart::remote(name.clone(), probe);
        let queued = s.ping();
        drop(s);
        gate(&name).open();
        assert_eq!(raykit::get(&queued).unwrap(), 1);
        wait_dropped(probe, "the actor stops after its queued calls");
    });
}

#[test]
fn the_state_is_dropped_when_the_last_handle_is_gone() {
    init();
    within(60, || {
        // One handle, dropped after queuing calls: they still run, then the state goes.
        let c = Counter::remote(0);
        let probe = probe_of(&c);
        let refs: Vec<_> = (0..10).map(|_| c.incr(1)).collect();
        drop(c);
        assert_eq!(
            raykit::get_all(&refs).unwrap(),
            (1..=10).collect::<Vec<_>>()
        );
        wait_dropped(probe, "the state of an actor without handles is dropped");

        // Copies held by a container, a task argument and another actor keep it alive; the
        // state goes only when the last of them is gone.
        let c = Counter::remote(0);
        let probe = probe_of(&c);
        let mut kept = vec![c.clone()];
        let relay = Relay::remote(c.clone());
        let in_task = uses::remote(c.clone());
        drop(c);
        assert_eq!(raykit::get(&in_task).unwrap(), 1);
        assert_eq!(raykit::get(&relay.forward(1)).unwrap(), 2);
        assert_eq!(Tracked::drops(probe), 0);
        kept.clear();
        assert_eq!(
            raykit::get(&relay.forward(1)).unwrap(),
            3,
            "alive through the relay"
        );
        assert_eq!(Tracked::drops(probe), 0);
        drop(relay);
        if !known_difference(
            "a handle serialized into a task's argument or an actor's state keeps its actor \
             until the job ends (no borrower counting yet)",
        ) {
            wait_dropped(
                probe,
                "the state is dropped after the relay, its last holder, went",
            );
        }

        // Never called at all.
        let c = Counter::remote(0);
        let probe = probe_of(&c);
        drop(c);
        wait_dropped(probe, "an idle actor's state is dropped");
    });
}

#[test]
fn a_named_actor_outlives_its_handles_until_killed() {
    init();
    within(60, || {
        let name = fresh("a_named_actor_outlives_its_handles");
        let named = Counter::options(ActorOptions::new().name(name.clone())).remote(0);
        let control = Counter::remote(0);
        let named_probe = probe_of(&named);
        let control_probe = probe_of(&control);
        named.incr(5);
        drop(named);
        drop(control);
        // Whatever stops an actor without handles has stopped the control...
        wait_dropped(control_probe, "the unnamed control actor stopped");
        // ...but not the named one: found again, with its state.
        assert_eq!(Tracked::drops(named_probe), 0);
        let again: ActorHandle<Counter> = raykit::get_actor(&name).unwrap();
        assert_eq!(raykit::get(&again.incr(1)).unwrap(), 6);
        drop(again);
        assert_eq!(
            raykit::get(&incr_named::remote(name.clone(), 1)).unwrap(),
            7
        );
        // Killed through a fresh handle: the state goes and the name is free.
        raykit::get_actor::<Counter>(&name).unwrap().kill();
        wait_dropped(named_probe, "the killed named actor's state is dropped");
        assert_eq!(
            raykit::get_actor::<Counter>(&name).unwrap_err().kind(),
            ErrorKind::ActorNotFound
        );
    });
}

#[test]
fn many_tasks_blocking_on_many_actors_on_one_cpu() {
    init();
    within(120, || {
        let actors: Vec<ActorHandle<Counter>> = (0..20).map(|_| Counter::remote(0)).collect();
        let refs: Vec<ObjectRef<u64>> = (0..100)
            .map(|i| uses::remote(actors[i % 20].clone()))
            .collect();
        let mut got = raykit::get_all(&refs).unwrap();
        got.sort_unstable();
        // Each actor answered 1..=5 to its five callers.
        let want: Vec<u64> = (1..=5).flat_map(|v| std::iter::repeat_n(v, 20)).collect();
        assert_eq!(got, want);
        assert_eq!(raykit::get(&total::remote(actors)).unwrap(), 100);
    });
}
