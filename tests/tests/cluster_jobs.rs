//! Jobs, errors and actor restarts on a real cluster of separate processes (a head and a
//! node, 2 CPUs each, see `raykit_tests::cluster`). What these check happens only on a
//! cluster: a driver process killed with its work running, worker processes that crash, ids
//! forged in one process and sent to another.

use std::path::Path;
use std::time::{Duration, Instant};

use raykit_tests::cluster::{line, Cluster, STEP};

const CLI: &str = env!("CARGO_BIN_EXE_raykit-cli");
const DRIVER: &str = env!("CARGO_BIN_EXE_job_driver");

fn cluster(name: &str) -> Cluster {
    Cluster::start(name, CLI, DRIVER)
}

/// Runs the driver with `args` on the embedded runtime; returns its output.
fn embedded(args: &[&str]) -> String {
    let out = std::process::Command::new(DRIVER)
        .args(args)
        .env_remove("RAYKIT_ADDRESS")
        .env(
            "RAYKIT_HOME",
            std::env::temp_dir().join("raykit-jobs-embedded"),
        )
        .output()
        .expect("run the driver");
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "embedded `{}` failed:\n{text}{}",
        args.join(" "),
        String::from_utf8_lossy(&out.stderr)
    );
    text
}

/// How many processes run an executable from under `home` (the nodes' executable caches):
/// the cluster's worker processes.
fn workers_under(home: &Path) -> usize {
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return 0;
    };
    entries
        .flatten()
        .filter(|e| {
            e.file_name()
                .to_string_lossy()
                .bytes()
                .all(|b| b.is_ascii_digit())
        })
        .filter_map(|e| std::fs::read_link(e.path().join("exe")).ok())
        .filter(|exe| exe.starts_with(home))
        .count()
}

/// The waiting and running task counts of a `raykit status`.
fn tasks(status: &str) -> (u64, u64) {
    let t = status
        .lines()
        .find_map(|l| l.strip_prefix("tasks: "))
        .unwrap_or_default();
    let n = |word: &str| {
        t.split(", ")
            .find_map(|part| part.strip_suffix(word))
            .and_then(|v| v.trim().parse().ok())
            .unwrap_or(u64::MAX)
    };
    (n(" waiting"), n(" running"))
}

fn count_files(dir: &Path) -> usize {
    std::fs::read_dir(dir).map_or(0, |d| d.count())
}

/// Polls `f` every 100 ms until it holds; panics with `what` after `within`.
fn wait_until(within: Duration, what: &str, mut f: impl FnMut() -> bool) {
    let deadline = Instant::now() + within;
    while !f() {
        assert!(Instant::now() < deadline, "{what} (waited {within:?})");
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn the_errors_of_a_long_chain_of_dependents_stay_small() {
    let mut c = cluster("chain");
    let out = c.drive("chain", &["chain", "1500"]);
    let longest: usize = line(&out, "longest ").parse().expect("a length");
    assert!(longest < 300, "an error of {longest} bytes:\n{out}");
    assert_eq!(line(&out, "deepest "), "2", "{out}");
    assert_eq!(line(&out, "kind "), "DependencyFailed", "{out}");
    assert!(line(&out, "root ").contains("boom at 7"), "{out}");
}

/// A killed driver's job stops: its running tasks' workers are killed, its queued tasks never
/// start, its resources and objects are freed, and the next job runs at once.
#[test]
fn a_killed_drivers_work_stops_and_the_cluster_is_free_for_the_next_job() {
    let mut c = cluster("killed-driver");
    let marks = c.home().join("marks");
    std::fs::create_dir_all(&marks).expect("create the marks directory");
    let dir = marks.to_string_lossy().into_owned();
    c.spawn_driver("flood", &["flood", "200", "20000", &dir]);
    wait_until(
        Duration::from_secs(120),
        "the flooding driver never started a task",
        || c.read(c.out_path("flood")).contains("submitted"),
    );
    // Every CPU of the cluster busy, the rest queued or held.
    c.wait_for_status(STEP, |s| tasks(s).1 == 4);
    wait_until(STEP, "four workers never ran the job's tasks", || {
        workers_under(c.home()) >= 4
    });
    c.child("flood").kill().expect("kill -9 the driver");
    let _ = c.child("flood").wait();
    let killed = Instant::now();
    // Within seconds: nothing runs or waits, every worker of the job is gone.
    c.wait_for_status(STEP, |s| tasks(s) == (0, 0) && s.contains("jobs: 0"));
    wait_until(STEP, "the job's worker processes are still there", || {
        workers_under(c.home()) == 0
    });
    eprintln!(
        "the job stopped {:.1} s after its driver was killed",
        killed.elapsed().as_secs_f64()
    );
    let started = count_files(&marks);
    assert!(started <= 12, "{started} of the job's tasks started");
    // Its objects are gone from the head's table and every node's store.
    c.wait_for_status(STEP, |s| {
        s.contains("head tables: 0 objects")
            && s.lines()
                .filter(|l| l.contains("  objects "))
                .all(|l| l.contains("  objects 0 ("))
    });
    // The next job gets the whole cluster, and no task of the dead one starts meanwhile.
    let out = c.drive("small", &["small", "60"]);
    assert_eq!(line(&out, "sum "), "1830", "{out}");
    assert_eq!(
        count_files(&marks),
        started,
        "a task of the killed job started later"
    );
}

#[test]
fn a_ref_to_an_object_that_never_existed_fails_instead_of_waiting_forever() {
    let mut c = cluster("unknown");
    let out = c.drive("unknown", &["unknown"]);
    let task = line(&out, "task ");
    assert!(task.starts_with("DependencyFailed"), "{out}");
    assert!(task.contains("unknown to this cluster"), "{out}");
    let get = line(&out, "get ");
    assert!(get.starts_with("ObjectLost"), "{out}");
    assert!(get.contains("unknown to this cluster"), "{out}");
    assert_eq!(line(&out, "after "), "3", "{out}");
}

/// Calls queued behind the call whose process crashed were never started: they run on the
/// restarted actor instead of failing with it, and fail as dead when no restart is left.
#[test]
fn calls_behind_a_crash_wait_for_the_restart_or_fail_when_none_is_left() {
    let mut c = cluster("restart-behind");
    let out = c.drive("restart", &["restart-behind", "1"]);
    assert_eq!(line(&out, "first "), "101", "{out}");
    assert_eq!(line(&out, "crash "), "ActorDied", "{out}");
    let behind: Vec<&str> = out
        .lines()
        .filter_map(|l| l.strip_prefix("behind "))
        .collect();
    assert_eq!(behind, ["101", "102", "103", "104", "105"], "{out}");

    let out = c.drive("no-restart", &["restart-behind", "0"]);
    assert_eq!(line(&out, "crash "), "ActorDied", "{out}");
    let behind: Vec<&str> = out
        .lines()
        .filter_map(|l| l.strip_prefix("behind "))
        .collect();
    assert_eq!(behind, ["ActorDied"; 5], "{out}");
}

/// Async tasks run inside a tokio runtime on a cluster's workers as they do embedded: tokio's
/// timer and `tokio::spawn` work in both (a worker used to run them under a plain executor,
/// where `tokio::time::sleep` panics for want of a reactor).
#[test]
fn async_tasks_use_tokio_on_both_backends() {
    assert_eq!(line(&embedded(&["tokio"]), "tokio "), "[2, 3, 4, 5]");
    let mut c = cluster("tokio");
    let out = c.drive("tokio", &["tokio"]);
    assert_eq!(line(&out, "tokio "), "[2, 3, 4, 5]", "{out}");
}

/// An actor whose process dies inside `new` is restarted like any crashed actor (only a
/// cluster has an actor process of its own to crash).
#[test]
fn an_actor_whose_process_dies_in_new_is_restarted_while_restarts_are_left() {
    let mut c = cluster("crash-in-new");
    let dir = c.home().to_string_lossy().into_owned();
    let out = c.drive("crash-in-new", &["crash-in-new", &dir]);
    assert_eq!(line(&out, "restarted "), "7", "{out}");
    let dead = line(&out, "dead ");
    assert!(dead.starts_with("ActorDied"), "{out}");
    assert!(dead.contains("new"), "{out}");
}

/// Each caller's calls to an actor run in its own order, and a call waiting for its argument
/// holds back only its own caller's later calls, embedded and on a cluster.
#[test]
fn a_call_waiting_for_an_argument_holds_back_only_its_own_callers_calls() {
    let check = |out: &str| {
        assert_eq!(line(out, "other "), "10", "{out}");
        assert_eq!(line(out, "held "), "true", "{out}");
        assert_eq!(line(out, "mine "), "110 111", "{out}");
    };
    let dir = std::env::temp_dir().join(format!("raykit-per-caller-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("a directory for the driver");
    check(&embedded(&["per-caller", &dir.to_string_lossy()]));
    let _ = std::fs::remove_dir_all(&dir);
    let mut c = cluster("per-caller");
    let home = c.home().to_string_lossy().into_owned();
    check(&c.drive("per-caller", &["per-caller", &home]));
}
