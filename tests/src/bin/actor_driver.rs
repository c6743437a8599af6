//! A driver program for the multi-process actor tests (`tests/tests/cluster_actors.rs`): one
//! scenario per subcommand, written against the public API only. It runs on the embedded
//! runtime, or on a cluster when `RAYKIT_ADDRESS` is set; the test reads what it prints.
//!
//! The head of the test cluster declares the custom resource `alpha` and the other node
//! `beta`: an actor asking for `beta` lives on the other node, tasks asking for `alpha` run on
//! the head's.

use std::collections::BTreeMap;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use raykit::{ActorHandle, ActorOptions, ErrorKind};

#[derive(raykit::Actor)]
struct Counter {
    value: u64,
    log: Vec<(u64, u64)>,
}

#[raykit::actor]
impl Counter {
    pub fn new(start: u64) -> Self {
        Counter {
            value: start,
            log: Vec::new(),
        }
    }

    pub fn incr(&mut self, by: u64) -> u64 {
        self.value += by;
        self.value
    }

    pub fn value(&self) -> u64 {
        self.value
    }

    /// The node the actor lives on.
    pub fn node(&self) -> String {
        raykit::node_id().to_string()
    }

    /// Notes call `seq` of `caller`; returns how many calls were noted.
    pub fn record(&mut self, caller: u64, seq: u64) -> usize {
        self.log.push((caller, seq));
        self.log.len()
    }

    pub fn log(&self) -> Vec<(u64, u64)> {
        self.log.clone()
    }

    pub fn fail(&self, message: String) -> u64 {
        panic!("{message}")
    }

    /// Ends the actor's process, as a crash would.
    pub fn crash(&self) -> u64 {
        std::process::abort()
    }

    pub async fn later(&self, ms: u64) -> u64 {
        tokio::time::sleep(Duration::from_millis(ms)).await;
        self.value
    }
}

/// Calls `counter` `n` times from a task on the head's node; returns the task's node and the
/// answers.
#[raykit::remote(resources(alpha = 1))]
fn call_from_alpha(counter: ActorHandle<Counter>, caller: u64, n: u64) -> (String, Vec<usize>) {
    let refs: Vec<_> = (0..n).map(|i| counter.record(caller, i)).collect();
    let answers = raykit::get_all(&refs).unwrap_or_default();
    (raykit::node_id().to_string(), answers)
}

/// Finds the actor named `name` from a task on the head's node and adds `by` to it.
#[raykit::remote(resources(alpha = 1))]
fn incr_named(name: String, by: u64) -> u64 {
    match raykit::get_actor::<Counter>(&name) {
        Ok(c) => raykit::get(&c.incr(by)).unwrap_or(u64::MAX),
        Err(_) => u64::MAX,
    }
}

#[raykit::remote]
fn broken() -> u64 {
    panic!("no start value")
}

fn on_beta() -> ActorOptions {
    ActorOptions::new().resource("beta", 1)
}

/// An actor on the other node called from tasks on the head's node, in order per caller.
fn across(callers: u64, calls: u64) -> raykit::Result<()> {
    let counter = Counter::options(on_beta()).remote(0);
    println!("actor {}", raykit::get(&counter.node())?);
    let tasks: Vec<_> = (0..callers)
        .map(|c| call_from_alpha::remote(counter.clone(), c, calls))
        .collect();
    for (node, answers) in raykit::get_all(&tasks)? {
        println!("task {node} {}", answers.len());
    }
    let log = raykit::get(&counter.log())?;
    let mut next: BTreeMap<u64, u64> = BTreeMap::new();
    let ordered = log.iter().all(|(caller, seq)| {
        let want = next.entry(*caller).or_insert(0);
        let ok = *seq == *want;
        *want += 1;
        ok
    });
    println!("calls {}", log.len());
    println!("ordered {ordered}");
    // The driver's own calls keep their order too, sync and async methods mixed.
    let refs: Vec<_> = (1..=50).map(|i| counter.incr(i)).collect();
    let later = counter.later(10);
    let values = raykit::get_all(&refs)?;
    let rising = values.windows(2).all(|w| w[0] < w[1]);
    println!("driver {} {rising} {}", values[49], raykit::get(&later)?);
    Ok(())
}

/// Named actors are found from anywhere in the cluster, and only as their own type.
fn named() -> raykit::Result<()> {
    let counter = Counter::options(on_beta().name("hits")).remote(1);
    let adds: Vec<_> = (0..4)
        .map(|_| incr_named::remote("hits".to_owned(), 10))
        .collect();
    let sums = raykit::get_all(&adds)?;
    println!("max {}", sums.iter().max().copied().unwrap_or_default());
    let same: ActorHandle<Counter> = raykit::get_actor("hits")?;
    println!("value {}", raykit::get(&same.value())?);
    println!("same {}", same == counter);
    let missing = raykit::get_actor::<Counter>("nobody").map(|_| ());
    println!("missing {:?}", missing.map_err(|e| e.kind()));
    let taken = Counter::options(ActorOptions::new().name("hits")).remote(0);
    let error = raykit::get(&taken.value()).map_err(|e| e.kind());
    println!("taken {error:?}");
    Ok(())
}

/// Joins the cluster in namespace `ns` (`-`: an anonymous one of this job's own).
fn join_in(ns: &str) -> raykit::Result<()> {
    let config = match ns {
        "-" => raykit::Config::default(),
        ns => raykit::Config::default().namespace(ns),
    };
    raykit::init_with(config).map(drop)
}

/// Creates the actor `name` in the job's namespace `ns`, says `ready`, and keeps the job (and
/// so the actor) alive until the file `until` exists (60 s at most).
fn hold_named(ns: &str, name: &str, until: &str) -> raykit::Result<()> {
    join_in(ns)?;
    let counter = Counter::options(ActorOptions::new().name(name)).remote(7);
    raykit::get(&counter.value())?;
    println!("ready");
    let deadline = Instant::now() + Duration::from_secs(60);
    while !std::path::Path::new(until).exists() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
    }
    Ok(())
}

/// From a job in namespace `ns`: whether `get_actor(name)` finds an actor, whether
/// `get_actor_in(name, other)` does, and whether `list_named_actors` lists `(other, name)`.
fn find_named(ns: &str, name: &str, other: &str) -> raykit::Result<()> {
    join_in(ns)?;
    let here = raykit::get_actor::<Counter>(name).map(|c| raykit::get(&c.value()));
    println!("here {:?}", here.map_err(|e| e.kind()));
    let there = raykit::get_actor_in::<Counter>(name, other).map(|c| raykit::get(&c.value()));
    println!("there {:?}", there.map_err(|e| e.kind()));
    let listed = raykit::list_named_actors().contains(&(other.to_owned(), name.to_owned()));
    println!("listed {listed}");
    Ok(())
}

/// A panic fails one call; a killed actor, an impossible one and one whose argument failed
/// fail every call with ActorDied.
fn failures() -> raykit::Result<()> {
    let counter = Counter::options(on_beta()).remote(5);
    match raykit::get(&counter.fail("boom".to_owned())) {
        Err(e) => println!("panic {:?} {}", e.kind(), e),
        Ok(v) => println!("panic none {v}"),
    }
    println!("after {}", raykit::get(&counter.incr(1))?);
    counter.kill();
    let dead = raykit::get(&counter.value()).map_err(|e| e.kind());
    println!("killed {dead:?}");
    let huge = Counter::options(ActorOptions::new().num_gpus(64)).remote(0);
    match raykit::get(&huge.value()) {
        Err(e) => println!("impossible {:?} {}", e.kind(), e),
        Ok(v) => println!("impossible none {v}"),
    }
    let orphan = Counter::remote(broken::remote());
    match raykit::get(&orphan.value()) {
        Err(e) => println!("argument {:?} {}", e.kind(), e),
        Ok(v) => println!("argument none {v}"),
    }
    Ok(())
}

/// A crashed actor comes back (fresh from `new`) up to `max_restarts`, then stays dead.
fn restart() -> raykit::Result<()> {
    let counter = Counter::options(on_beta().max_restarts(1)).remote(100);
    println!("first {}", raykit::get(&counter.incr(5))?);
    let crash = raykit::get(&counter.crash()).map_err(|e| e.kind());
    println!("crash {crash:?}");
    println!("restarted {}", raykit::get(&counter.incr(1))?);
    let crash = raykit::get(&counter.crash()).map_err(|e| e.kind());
    println!("crash {crash:?}");
    match raykit::get(&counter.incr(1)) {
        Err(e) => println!("gone {:?} {}", e.kind(), e),
        Ok(v) => println!("gone none {v}"),
    }
    Ok(())
}

/// An actor on the other node whose node is killed: the next call fails, no hang.
fn node_death() -> raykit::Result<()> {
    let counter = Counter::options(on_beta()).remote(0);
    println!("actor {}", raykit::get(&counter.node())?);
    println!("ready");
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        match raykit::get(&counter.incr(1)) {
            Ok(_) if Instant::now() < deadline => std::thread::sleep(Duration::from_millis(50)),
            Ok(v) => {
                println!("still alive {v}");
                return Ok(());
            }
            Err(e) => {
                println!("died {:?}", e.kind());
                return Ok(());
            }
        }
    }
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let num = |i: usize, default: u64| args.get(i).and_then(|a| a.parse().ok()).unwrap_or(default);
    let result = match args.first().map(String::as_str) {
        Some("across") => across(num(1, 3), num(2, 20)),
        Some("named") => named(),
        Some("hold-named") => hold_named(&args[1], &args[2], &args[3]),
        Some("find-named") => find_named(&args[1], &args[2], &args[3]),
        Some("failures") => failures(),
        Some("restart") => restart(),
        Some("node-death") => node_death(),
        other => {
            eprintln!("unknown scenario {other:?}");
            return ExitCode::from(2);
        }
    };
    raykit::shutdown();
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) if e.kind() == ErrorKind::ActorDied => {
            eprintln!("actor died: {e}");
            ExitCode::from(3)
        }
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}
