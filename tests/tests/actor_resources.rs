//! Actor resources: an actor holds the CPUs, GPUs and custom resources of `#[actor(..)]` (or of
//! its `ActorOptions`) from construction until it dies (killed, last handle dropped, constructor
//! panicked); actors take no CPU by default; an actor whose resources are taken waits for them;
//! resources no node has fail every call with an actor-died error caused by
//! `ResourceUnavailable`, at once.
//!
//! Every test takes [`serial`] so it has the node's resources to itself.

use std::time::Duration;

use raykit::{ActorHandle, ActorOptions, ErrorKind, ObjectRef};
use raykit_tests::{amount, await_all_resources_free, eventually, serial, within};

raykit_tests::suite!(Shape::cpus(4).gpus(1).resource("custom", 1.0));

/// The free amount of `name` now.
fn free(name: &str) -> f64 {
    amount(&raykit::available_resources(), name)
}

/// Waits until `name` has `want` free.
fn await_free(name: &str, want: f64) {
    eventually(30, &format!("{want} {name} free"), || free(name) == want);
}

/// The kinds of an error and its `source()` chain, outermost first.
fn kinds(e: &raykit::Error) -> Vec<ErrorKind> {
    let mut out = Vec::new();
    let mut cur: Option<&(dyn std::error::Error + 'static)> = Some(e);
    while let Some(err) = cur {
        out.push(
            err.downcast_ref::<raykit::Error>()
                .expect("every source is a raykit::Error")
                .kind(),
        );
        cur = err.source();
    }
    out
}

/// Holds one CPU.
#[derive(raykit::Actor)]
#[actor(num_cpus = 1)]
struct Cpu1;

#[raykit::actor]
impl Cpu1 {
    pub fn new() -> Self {
        Cpu1
    }

    pub fn ping(&self) -> u64 {
        1
    }

    pub async fn ping_async(&self) -> u64 {
        2
    }
}

/// Holds the GPU and the custom resource (and names every other option, at its default).
#[derive(raykit::Actor)]
#[actor(
    num_gpus = 1,
    resources(custom = 1),
    num_cpus = 0,
    max_restarts = 0,
    max_concurrency = 1
)]
struct GpuAndCustom {
    calls: u64,
}

#[raykit::actor]
impl GpuAndCustom {
    pub fn new() -> Self {
        GpuAndCustom { calls: 0 }
    }

    pub fn call(&mut self) -> u64 {
        self.calls += 1;
        self.calls
    }
}

/// Takes nothing (the default for actors).
#[derive(raykit::Actor)]
struct Free;

#[raykit::actor]
impl Free {
    pub fn new() -> Self {
        Free
    }

    pub fn ping(&self) -> u64 {
        3
    }
}

/// More GPUs than the node has.
#[derive(raykit::Actor)]
#[actor(num_gpus = 2)]
struct TooManyGpus;

#[raykit::actor]
impl TooManyGpus {
    pub fn new() -> Self {
        TooManyGpus
    }

    pub fn ping(&self) -> u64 {
        4
    }
}

/// A resource no node declares.
#[derive(raykit::Actor)]
#[actor(resources(unobtainium = 1))]
struct Unobtainium;

#[raykit::actor]
impl Unobtainium {
    pub fn new() -> Self {
        Unobtainium
    }

    pub fn ping(&self) -> u64 {
        5
    }
}

/// Holds a CPU, then panics in its constructor.
#[derive(raykit::Actor)]
#[actor(num_cpus = 1)]
struct Doomed;

#[raykit::actor]
impl Doomed {
    pub fn new() -> Self {
        panic!("doomed from the start")
    }

    pub fn ping(&self) -> u64 {
        6
    }
}

/// Holds a CPU while its constructor waits at a gate.
#[derive(raykit::Actor)]
#[actor(num_cpus = 1)]
struct SlowStart;

#[raykit::actor]
impl SlowStart {
    pub fn new(gate_name: String) -> Self {
        raykit_tests::gate(&gate_name).wait();
        SlowStart
    }

    pub fn ping(&self) -> u64 {
        7
    }
}

/// Needs the custom resource; its constructor records that it ran.
#[derive(raykit::Actor)]
#[actor(resources(custom = 1))]
struct Recorded;

#[raykit::actor]
impl Recorded {
    pub fn new(key: String) -> Self {
        constructed(&key).add(1);
        Recorded
    }

    pub fn ping(&self) -> u64 {
        8
    }
}

/// How often the constructor of the [`Recorded`] actor `key` ran.
fn constructed(key: &str) -> &'static raykit_tests::Counter {
    raykit_tests::counter(&format!("constructed {key}"))
}

#[raykit::remote]
fn one() -> u64 {
    1
}

#[test]
fn an_actor_holds_its_cpu_until_its_last_handle_is_gone() {
    let _serial = serial();
    init();
    within(60, || {
        await_all_resources_free();
        let a = Cpu1::remote();
        assert_eq!(raykit::get(&a.ping()).unwrap(), 1); // constructed
        assert_eq!(free("CPU"), 3.0);
        let b = a.clone();
        drop(a);
        assert_eq!(raykit::get(&b.ping_async()).unwrap(), 2);
        assert_eq!(free("CPU"), 3.0, "a copy of the handle keeps the actor");
        drop(b);
        await_free("CPU", 4.0);
    });
}

#[test]
fn a_killed_actor_gives_its_resources_back() {
    let _serial = serial();
    init();
    within(60, || {
        await_all_resources_free();
        let a = GpuAndCustom::remote();
        assert_eq!(raykit::get(&a.call()).unwrap(), 1);
        assert_eq!(free("GPU"), 0.0);
        assert_eq!(free("custom"), 0.0);
        assert_eq!(free("CPU"), 4.0, "an actor takes no CPU unless asked");
        a.kill();
        await_free("GPU", 1.0);
        await_free("custom", 1.0);
        drop(a);
        // A named actor keeps its resources without handles, until killed.
        let name = "actor_resources::named";
        let n = Cpu1::options(ActorOptions::new().name(name)).remote();
        assert_eq!(raykit::get(&n.ping()).unwrap(), 1);
        drop(n);
        let again: ActorHandle<Cpu1> = raykit::get_actor(name).unwrap();
        assert_eq!(raykit::get(&again.ping()).unwrap(), 1);
        assert_eq!(free("CPU"), 3.0);
        again.kill();
        await_free("CPU", 4.0);
    });
}

#[test]
fn options_override_the_actors_resources() {
    let _serial = serial();
    init();
    within(60, || {
        await_all_resources_free();
        let half = Cpu1::options(ActorOptions::new().num_cpus(0.5)).remote();
        let custom = Free::options(ActorOptions::new().resource("custom", 1)).remote();
        let none = GpuAndCustom::options(
            ActorOptions::new()
                .num_gpus(0)
                .resource("custom", 0)
                .num_cpus(2),
        )
        .remote();
        assert_eq!(raykit::get(&half.ping()).unwrap(), 1);
        assert_eq!(raykit::get(&custom.ping()).unwrap(), 3);
        assert_eq!(raykit::get(&none.call()).unwrap(), 1);
        assert_eq!(free("CPU"), 1.5);
        assert_eq!(free("custom"), 0.0);
        assert_eq!(free("GPU"), 1.0);
        drop((half, custom, none));
        await_all_resources_free();
    });
}

#[test]
fn actors_without_resources_take_none_and_methods_need_none() {
    let _serial = serial();
    init();
    within(60, || {
        await_all_resources_free();
        let free_actors: Vec<ActorHandle<Free>> = (0..10).map(|_| Free::remote()).collect();
        let refs: Vec<_> = free_actors.iter().map(|a| a.ping()).collect();
        assert_eq!(raykit::get_all(&refs).unwrap(), vec![3; 10]);
        assert_eq!(free("CPU"), 4.0);
        // Four actors hold every CPU: their methods still run (they use the actor's own), and
        // so do methods of actors that hold nothing.
        let holders: Vec<ActorHandle<Cpu1>> = (0..4).map(|_| Cpu1::remote()).collect();
        let pings: Vec<_> = holders.iter().map(|h| h.ping()).collect();
        assert_eq!(raykit::get_all(&pings).unwrap(), vec![1; 4]);
        assert_eq!(free("CPU"), 0.0);
        let pings: Vec<_> = holders.iter().map(|h| h.ping_async()).collect();
        assert_eq!(raykit::get_all(&pings).unwrap(), vec![2; 4]);
        assert_eq!(raykit::get(&free_actors[0].ping()).unwrap(), 3);
        // A task needing a CPU waits until an actor gives one back.
        let task = one::remote();
        let (ready, _) = raykit::wait(
            std::slice::from_ref(&task),
            1,
            Some(Duration::from_millis(100)),
        );
        assert!(ready.is_empty(), "a task ran on a CPU held by an actor");
        holders[0].kill();
        assert_eq!(raykit::get(&task).unwrap(), 1);
        drop(holders);
        await_all_resources_free();
    });
}

#[test]
fn an_actor_waits_for_resources_another_actor_holds() {
    let _serial = serial();
    init();
    within(60, || {
        await_all_resources_free();
        let first = GpuAndCustom::remote();
        assert_eq!(raykit::get(&first.call()).unwrap(), 1);
        // Not an error: the second waits for the GPU and the custom resource.
        let second = GpuAndCustom::remote();
        let calls: Vec<ObjectRef<u64>> = (0..3).map(|_| second.call()).collect();
        let (ready, _) = raykit::wait(&calls, 1, Some(Duration::from_millis(100)));
        assert!(ready.is_empty(), "two actors held one GPU");
        first.kill();
        assert_eq!(raykit::get_all(&calls).unwrap(), vec![1, 2, 3]);
        assert_eq!(free("GPU"), 0.0);
        drop(second);
        await_all_resources_free();
    });
}

#[test]
fn impossible_resources_fail_every_call_at_once() {
    let _serial = serial();
    init();
    within(60, || {
        await_all_resources_free();
        let check = |e: raykit::Error, what: &str| {
            assert_eq!(e.kind(), ErrorKind::ActorDied, "{what}: {e:?}");
            assert!(
                kinds(&e).contains(&ErrorKind::ResourceUnavailable),
                "{what}: no ResourceUnavailable in the chain of {e:?}"
            );
        };
        let gpus = TooManyGpus::remote();
        check(raykit::get(&gpus.ping()).unwrap_err(), "num_gpus = 2");
        check(
            raykit::get(&gpus.clone().ping()).unwrap_err(),
            "num_gpus = 2",
        );
        let e = raykit::get(&Unobtainium::remote().ping()).unwrap_err();
        assert!(e.to_string().contains("unobtainium"), "{e}");
        check(e, "resources(unobtainium = 1)");
        let cpus = Cpu1::options(ActorOptions::new().num_cpus(64)).remote();
        check(raykit::get(&cpus.ping()).unwrap_err(), "num_cpus(64)");
        check(raykit::get(&cpus.ping_async()).unwrap_err(), "num_cpus(64)");
        let custom = Free::options(ActorOptions::new().resource("custom", 2)).remote();
        check(raykit::get(&custom.ping()).unwrap_err(), "custom = 2");
        // Nothing was taken.
        assert_eq!(raykit::available_resources(), raykit::cluster_resources());
    });
}

#[test]
fn a_panicking_constructor_gives_its_resources_back() {
    let _serial = serial();
    init();
    within(60, || {
        await_all_resources_free();
        let d = Doomed::remote();
        let e = raykit::get(&d.ping()).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::ActorDied);
        assert!(e.to_string().contains("doomed from the start"), "{e}");
        // The handle is still alive, the resources are back all the same.
        await_free("CPU", 4.0);
        drop(d);
    });
}

#[test]
fn an_actor_killed_while_constructing_gives_its_resources_back() {
    let _serial = serial();
    init();
    within(60, || {
        await_all_resources_free();
        let name = "actor_resources::an_actor_killed_while_constructing";
        let s = SlowStart::remote(name.to_owned());
        // The constructor runs with the actor's CPU taken.
        await_free("CPU", 3.0);
        s.kill();
        raykit_tests::gate(name).open();
        assert_eq!(
            raykit::get(&s.ping()).unwrap_err().kind(),
            ErrorKind::ActorDied
        );
        await_free("CPU", 4.0);
    });
}

#[test]
fn an_actor_stopped_while_waiting_for_resources_is_never_constructed() {
    let _serial = serial();
    init();
    within(60, || {
        await_all_resources_free();
        let first = Recorded::remote("first".to_owned());
        assert_eq!(raykit::get(&first.ping()).unwrap(), 8);
        // Both wait for the custom resource `first` holds: one is killed, the other loses its
        // last handle (with no call queued).
        let killed = Recorded::remote("killed".to_owned());
        let queued = killed.ping();
        killed.kill();
        let dropped = Recorded::remote("dropped".to_owned());
        drop(dropped);
        let last = Recorded::remote("last".to_owned());
        first.kill();
        // `last` waited behind the other two, so their constructors, had they run, ran first.
        assert_eq!(raykit::get(&last.ping()).unwrap(), 8);
        assert_eq!(
            raykit::get(&queued).unwrap_err().kind(),
            ErrorKind::ActorDied
        );
        let keys: Vec<u64> = ["first", "killed", "dropped", "last"]
            .iter()
            .map(|k| constructed(k).get())
            .collect();
        assert_eq!(keys, [1, 0, 0, 1], "constructors of stopped actors ran");
        drop(last);
        await_all_resources_free();
    });
}
