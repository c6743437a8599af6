//! Actors on a real two-node cluster (see `raykit_tests::cluster`): the driver
//! `tests/src/bin/actor_driver.rs` creates actors that live in worker processes of a node and
//! calls them from itself and from tasks on the other node.
//!
//! An actor asking for `beta` lives on the node that is not the head; tasks asking for `alpha`
//! run on the head's node.

use std::process::Command;
use std::time::{Duration, Instant};

use raykit_tests::cluster::{line, Cluster, DRIVER_LIMIT, STEP};

const CLI: &str = env!("CARGO_BIN_EXE_raykit-cli");
const DRIVER: &str = env!("CARGO_BIN_EXE_actor_driver");
/// Another program, for two jobs of different binaries at once.
const TASK_DRIVER: &str = env!("CARGO_BIN_EXE_cluster_driver");

fn cluster(name: &str) -> Cluster {
    Cluster::start(name, CLI, DRIVER)
}

/// The `actors:` line of `raykit status`.
fn actors(status: &str) -> &str {
    line(status, "actors: ")
}

#[test]
fn an_actor_on_one_node_is_called_in_order_from_tasks_on_another() {
    let mut c = cluster("across");
    let (head, other) = c.node_ids();
    let out = c.drive("across", &["across", "3", "20"]);
    assert_eq!(line(&out, "actor "), other, "{out}");
    let tasks: Vec<&str> = out
        .lines()
        .filter_map(|l| l.strip_prefix("task "))
        .collect();
    assert_eq!(tasks.len(), 3, "{out}");
    for t in tasks {
        assert_eq!(t, format!("{head} 20"), "{out}");
    }
    assert_eq!(line(&out, "calls "), "60", "{out}");
    assert_eq!(line(&out, "ordered "), "true", "{out}");
    // 1 + 2 + .. + 50 in order, and the async call after them saw them all.
    assert_eq!(line(&out, "driver "), "1275 true 1275", "{out}");
    // The driver left: its job ended and the actor with it.
    let st = c.wait_for_status(STEP, |s| {
        actors(s) == "0 pending, 0 alive, 0 restarting, 1 dead"
    });
    assert!(st.contains("0 running"), "{st}");
}

#[test]
fn named_actors_are_found_from_any_node_and_only_as_their_type() {
    let mut c = cluster("named");
    let out = c.drive("named", &["named"]);
    assert_eq!(line(&out, "max "), "41", "{out}");
    assert_eq!(line(&out, "value "), "41", "{out}");
    assert_eq!(line(&out, "same "), "true", "{out}");
    assert_eq!(line(&out, "missing "), "Err(ActorNotFound)", "{out}");
    assert_eq!(line(&out, "taken "), "Err(ActorDied)", "{out}");
}

#[test]
fn panics_kills_impossible_resources_and_failed_arguments_are_errors() {
    let mut c = cluster("failures");
    let out = c.drive("failures", &["failures"]);
    let panic = line(&out, "panic ");
    assert!(panic.starts_with("TaskPanicked "), "{out}");
    assert!(
        panic.contains("Counter::fail") && panic.contains("boom"),
        "{out}"
    );
    assert_eq!(line(&out, "after "), "6", "{out}");
    assert_eq!(line(&out, "killed "), "Err(ActorDied)", "{out}");
    let impossible = line(&out, "impossible ");
    assert!(impossible.starts_with("ActorDied "), "{out}");
    assert!(impossible.contains("64 of resource `GPU`"), "{out}");
    let argument = line(&out, "argument ");
    assert!(argument.starts_with("ActorDied "), "{out}");
    assert!(argument.contains("no start value"), "{out}");
}

#[test]
fn a_crashed_actor_restarts_up_to_max_restarts() {
    let mut c = cluster("restart");
    let out = c.drive("restart", &["restart"]);
    assert_eq!(line(&out, "first "), "105", "{out}");
    assert_eq!(line(&out, "restarted "), "101", "{out}");
    let crashes: Vec<&str> = out
        .lines()
        .filter_map(|l| l.strip_prefix("crash "))
        .collect();
    assert_eq!(crashes, ["Err(ActorDied)", "Err(ActorDied)"], "{out}");
    let gone = line(&out, "gone ");
    assert!(gone.starts_with("ActorDied "), "{out}");
    assert!(gone.contains("max_restarts"), "{out}");
}

#[test]
fn callers_of_an_actor_whose_node_dies_get_an_error() {
    let mut c = cluster("node-death");
    let (_, other) = c.node_ids();
    c.spawn_driver("node-death", &["node-death"]);
    let deadline = Instant::now() + DRIVER_LIMIT;
    while !c.read(c.out_path("node-death")).contains("ready") {
        assert!(
            Instant::now() < deadline,
            "the driver never got its actor:\n{}",
            c.read(c.err_path("node-death"))
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    let out = c.read(c.out_path("node-death"));
    assert_eq!(line(&out, "actor "), other, "{out}");
    let st = c.status();
    // The node hosting it says so in its line (from its next heartbeat on).
    c.wait_for_status(STEP, |s| {
        s.lines()
            .any(|l| l.trim_start().starts_with(&other) && l.contains("  actors 1  "))
    });
    assert_eq!(
        actors(&st),
        "0 pending, 1 alive, 0 restarting, 0 dead",
        "{st}"
    );
    c.child("node").kill().expect("kill the node");
    let _ = c.child("node").wait();
    let (status, out) = c.wait("node-death");
    assert!(status.success(), "the driver failed ({status}):\n{out}");
    assert_eq!(line(&out, "died "), "ActorDied", "{out}");
    c.wait_for_status(STEP, |s| s.contains("nodes: 1 alive, 1 dead"));
}

#[test]
fn two_programs_share_the_cluster_at_once() {
    let mut c = cluster("two-jobs");
    let mut tasks = Command::new(TASK_DRIVER);
    tasks
        .arg("basic")
        .env("RAYKIT_ADDRESS", c.address())
        .env("RAYKIT_TOKEN", raykit_tests::cluster::TOKEN);
    c.spawn("tasks", tasks);
    c.spawn_driver("actors", &["across", "2", "10"]);
    let (status, out) = c.wait("tasks");
    assert!(
        status.success(),
        "the task program failed ({status}):\n{out}"
    );
    assert_eq!(line(&out, "chain "), "99", "{out}");
    let (status, out) = c.wait("actors");
    assert!(
        status.success(),
        "the actor program failed ({status}):\n{out}"
    );
    assert_eq!(line(&out, "calls "), "20", "{out}");
    assert_eq!(line(&out, "ordered "), "true", "{out}");
    c.wait_for_status(STEP, |s| s.contains("jobs: 0"));
}

/// Needs several jobs (drivers) on one cluster at once, which the single-driver harness of
/// the behaviour files cannot give.
#[test]
fn jobs_share_named_actors_only_within_a_namespace() {
    let mut c = cluster("namespaces");
    let release = c.home().join("release-holders");
    let release = release.to_str().expect("a UTF-8 path").to_owned();
    c.spawn_driver("team", &["hold-named", "team", "svc", &release]);
    c.spawn_driver("solo", &["hold-named", "-", "mine", &release]);
    for holder in ["team", "solo"] {
        let deadline = Instant::now() + DRIVER_LIMIT;
        while !c.read(c.out_path(holder)).contains("ready") {
            assert!(Instant::now() < deadline, "{holder} never got ready");
            std::thread::sleep(Duration::from_millis(20));
        }
    }
    // Another job of the same namespace finds the name; one of an anonymous namespace only
    // when it names the namespace.
    let out = c.drive("same", &["find-named", "team", "svc", "team"]);
    assert_eq!(line(&out, "here "), "Ok(Ok(7))", "{out}");
    let out = c.drive("anonymous", &["find-named", "-", "svc", "team"]);
    assert_eq!(line(&out, "here "), "Err(ActorNotFound)", "{out}");
    assert_eq!(line(&out, "there "), "Ok(Ok(7))", "{out}");
    assert_eq!(line(&out, "listed "), "true", "{out}");
    // A name in a job's anonymous namespace is that job's alone.
    let out = c.drive("stranger", &["find-named", "-", "mine", "team"]);
    assert_eq!(line(&out, "here "), "Err(ActorNotFound)", "{out}");
    std::fs::write(&release, b"").expect("release the holders");
    for holder in ["team", "solo"] {
        let (status, out) = c.wait(holder);
        assert!(status.success(), "{holder}: {out}");
    }
}
