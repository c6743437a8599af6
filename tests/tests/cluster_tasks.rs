//! Tasks on a real two-node cluster: a head and a node (`raykit start --block`, 2 CPUs each)
//! on 127.0.0.1, and driver programs (`tests/src/bin/cluster_driver.rs`) run against them with
//! `RAYKIT_ADDRESS`. Each test has its own ports and `RAYKIT_HOME`; every wait is bounded, and
//! every process a test starts is killed when it ends, passed or failed (on drop, so on panic
//! too; workers die with their daemons).
//!
//! The head declares the custom resource `alpha` and the node `beta`, so drivers can pin tasks.

use std::fs;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use raykit_tests::cluster::{free_port, line, Cluster, DRIVER_LIMIT, STEP};

const CLI: &str = env!("CARGO_BIN_EXE_raykit-cli");
const DRIVER: &str = env!("CARGO_BIN_EXE_cluster_driver");

fn cluster(name: &str) -> Cluster {
    Cluster::start(name, CLI, DRIVER)
}

#[test]
fn answers_equal_the_embedded_run() {
    let embedded = Command::new(DRIVER)
        .arg("basic")
        .env_remove("RAYKIT_ADDRESS")
        .stdin(Stdio::null())
        .output()
        .expect("run the driver embedded");
    assert!(embedded.status.success(), "{embedded:?}");
    let embedded = String::from_utf8_lossy(&embedded.stdout).into_owned();
    assert!(embedded.contains("chain 99"), "{embedded}");

    let mut c = cluster("basic");
    let clustered = c.drive("basic", &["basic"]);
    assert_eq!(clustered, embedded);
    let st = c.wait_for_status(STEP, |s| s.contains("0 waiting, 0 running"));
    assert!(st.contains("jobs: 0"), "{st}");
}

/// Cluster only: what a program that joins a cluster is told about its resource settings.
#[test]
fn joining_a_cluster_with_an_embedded_nodes_resource_settings_is_refused() {
    let mut c = cluster("config");
    c.spawn_driver("config", &["config"]);
    let (status, out) = c.wait("config");
    assert!(!status.success(), "{out}");
    assert!(out.contains("refused Config"), "{out}");
    assert!(
        out.contains("drop num_cpus, num_gpus and resource"),
        "{out}"
    );
    // The embedded run of the same settings declares them.
    let embedded = Command::new(DRIVER)
        .arg("config")
        .env_remove("RAYKIT_ADDRESS")
        .stdin(Stdio::null())
        .output()
        .expect("run the driver embedded");
    let embedded = String::from_utf8_lossy(&embedded.stdout).into_owned();
    assert!(embedded.contains(r#""CPU": 16.0"#), "{embedded}");
}

/// Cluster only: how a program finds its cluster from `RAYKIT_ADDRESS` with no token given.
#[test]
fn auto_and_localhost_find_the_recorded_cluster_and_a_wrong_port_says_nothing_answers() {
    let mut c = cluster("addresses");
    let port = c.address().rsplit(':').next().expect("a port").to_owned();
    let run = |c: &mut Cluster, name: &str, address: String| {
        let mut cmd = Command::new(DRIVER);
        cmd.arg("basic")
            .env("RAYKIT_ADDRESS", address)
            .env_remove("RAYKIT_TOKEN")
            .env_remove("RAYKIT_TOKEN_FILE");
        c.spawn(name, cmd);
        let (status, out) = c.wait(name);
        let err = c.read(c.err_path(name));
        (status, out, err)
    };
    // The head recorded its address and token in this RAYKIT_HOME.
    let (status, out, err) = run(&mut c, "auto", "auto".to_owned());
    assert!(status.success(), "{out}{err}");
    assert!(out.contains("chain 99"), "{out}");
    let (status, out, err) = run(&mut c, "localhost", format!("localhost:{port}"));
    assert!(status.success(), "{out}{err}");
    let wrong = format!("127.0.0.1:{}", free_port());
    let (status, _, err) = run(&mut c, "wrong", wrong.clone());
    assert!(!status.success());
    assert!(
        err.contains(&format!("nothing answers at {wrong}")),
        "{err}"
    );
    assert!(!err.contains("no token"), "{err}");
}

#[test]
fn a_burst_spreads_over_both_nodes() {
    let mut c = cluster("spread");
    let out = c.drive("spread", &["spread", "12"]);
    let (head, other) = c.node_ids();
    assert_eq!(line(&out, "nodes "), "2", "{out}");
    assert!(out.contains(&format!("node {head}")), "{out}");
    assert!(out.contains(&format!("node {other}")), "{out}");
    // 13 inner tasks block on their children while the 4 CPUs are full and the nodes hold
    // tasks sent ahead: blocked tasks lend their CPUs, held ones included.
    let out = c.drive("tree", &["tree", "3", "3"]);
    assert_eq!(line(&out, "tree "), "27", "{out}");
    let st = c.wait_for_status(STEP, |s| s.contains("0 waiting, 0 running"));
    assert!(st.contains("jobs: 0"), "{st}");
}

#[test]
fn refs_chain_across_nodes_and_failures_are_reported() {
    let mut c = cluster("chain");
    let (head, other) = c.node_ids();

    let out = c.drive("chain", &["chain"]);
    // ((((((1 + 2) * 2) + 1) * 3) + 2) * 4) + 3
    assert_eq!(line(&out, "value "), "95", "{out}");
    let expected: Vec<&str> = [&head, &other, &head, &other, &head, &other, &head]
        .iter()
        .map(|s| s.as_str())
        .collect();
    assert_eq!(line(&out, "nodes "), expected.join(" "), "{out}");

    let out = c.drive("panics", &["panics"]);
    assert_eq!(line(&out, "ok "), "0");
    let error = line(&out, "error ");
    assert!(error.starts_with("TaskPanicked"), "{out}");
    assert!(
        error.contains("explode") && error.contains("boom at 3"),
        "{out}"
    );
    let downstream = line(&out, "downstream ");
    assert!(downstream.starts_with("DependencyFailed"), "{out}");
    assert!(downstream.contains("add"), "{out}");

    let out = c.drive("impossible", &["impossible"]);
    let error = line(&out, "error ");
    assert!(error.starts_with("ResourceUnavailable"), "{out}");
    assert!(error.contains("GPU"), "{out}");
    let millis: u64 = line(&out, "millis ").parse().expect("millis");
    assert!(
        millis < 5_000,
        "the impossible task took {millis} ms to fail"
    );
    assert_eq!(line(&out, "after "), "81");
}

#[test]
fn a_killed_node_does_not_lose_the_job() {
    let mut c = cluster("survive");
    // 6 tasks of 3 s on 4 CPUs: two of them run on the node when it is killed.
    c.spawn_driver("survive", &["survive", "6", "3000"]);
    c.wait_for_status(Duration::from_secs(60), |s| {
        s.lines()
            .any(|l| l.starts_with("  node-") && !l.contains(" head ") && l.contains("CPU 2/2"))
    });
    c.child("node").kill().expect("kill the node");
    let _ = c.child("node").wait();
    let (status, out) = c.wait("survive");
    assert!(
        status.success(),
        "the driver failed ({status}):\n{out}{}",
        c.read(c.err_path("survive"))
    );
    assert_eq!(line(&out, "values "), "[0, 1, 4, 9, 16, 25]", "{out}");
    let st = c.wait_for_status(STEP, |s| s.contains("nodes: 1 alive, 1 dead"));
    assert!(st.contains("0 running"), "{st}");
}

#[test]
fn a_256_mib_value_is_put_got_and_passed_to_the_other_node() {
    let mut c = cluster("big");
    let (_, other) = c.node_ids();
    // On the head's host, the put goes through the head node's shared memory.
    let out = c.drive("big", &["big", "256"]);
    assert_eq!(line(&out, "roundtrip "), "true true", "{out}");
    assert_eq!(line(&out, "digest "), "true true", "{out}");
    assert_eq!(line(&out, "node "), other, "{out}");
    assert_eq!(line(&out, "arena "), "true", "{out}");
    // The node pinned by `beta` read the value from its shared memory, for a task and for an
    // actor's call alike.
    assert_eq!(line(&out, "actor digest "), "true true", "{out}");
    assert_eq!(line(&out, "actor node "), other, "{out}");
    assert_eq!(line(&out, "actor arena "), "true", "{out}");
    // A large result written by a worker into its node's shared memory comes back whole, to
    // the driver and to a task on the other node.
    assert_eq!(line(&out, "made "), "true", "{out}");
    assert_eq!(line(&out, "made digest "), "true true", "{out}");
    eprintln!(
        "256 MiB through shared memory: {} ms",
        line(&out, "millis ")
    );
    // Kept off it, the same put goes over the connection in pieces.
    let out = c.drive_with("big-tcp", &["big", "256"], &[("RAYKIT_SHARED_MEMORY", "0")]);
    assert_eq!(line(&out, "roundtrip "), "true true", "{out}");
    assert_eq!(line(&out, "digest "), "true true", "{out}");
    assert_eq!(line(&out, "node "), other, "{out}");
    assert_eq!(line(&out, "arena "), "false", "{out}");
    eprintln!("256 MiB over the connection: {} ms", line(&out, "millis "));
    // Both values were freed with their refs: the head's arena took the first and gave it
    // back, so nothing is left stored.
    let st = c.wait_for_status(STEP, |s| stored(s) == (0, 0));
    assert_eq!(stored(&st), (0, 0), "{st}");
}

/// Objects and bytes in the stores of the alive nodes, summed from `raykit status`.
fn stored(status: &str) -> (u64, u64) {
    let mut total = (0, 0);
    for l in status.lines().filter(|l| l.starts_with("  node-")) {
        let Some(rest) = l.split("  objects ").nth(1) else {
            continue;
        };
        let mut words = rest.split_whitespace();
        let n: u64 = words.next().and_then(|w| w.parse().ok()).unwrap_or(0);
        let bytes: u64 = words
            .next()
            .and_then(|w| w.trim_start_matches('(').parse().ok())
            .unwrap_or(0);
        total.0 += n;
        total.1 += bytes;
    }
    total
}

/// The head's table sizes from `raykit status`: (objects, tasks).
fn head_tables(status: &str) -> (u64, u64) {
    let l = line(status, "head tables: ");
    let nums: Vec<u64> = l
        .split(|c: char| !c.is_ascii_digit())
        .filter_map(|w| w.parse().ok())
        .collect();
    (nums[0], nums[1])
}

#[test]
fn objects_are_freed_with_their_last_ref_but_not_while_referenced() {
    const MIB: u64 = 16;
    const N: u64 = 40;
    let blob = MIB << 20;
    let mut c = cluster("free");
    let go = c.home().join("free.go");
    let go_arg = go.to_string_lossy().into_owned();
    let n = N.to_string();
    let mib = MIB.to_string();
    c.spawn_driver("free", &["free", &n, &mib, &go_arg]);
    let start = Instant::now();
    // The driver streamed N blobs (640 MiB) and waits, holding one blob and one escaped one.
    let deadline = Instant::now() + DRIVER_LIMIT;
    let out = loop {
        let out = c.read(c.out_path("free"));
        if out.contains("streamed ") {
            break out;
        }
        if let Some(status) = c.child("free").try_wait().expect("wait for the driver") {
            panic!(
                "the driver ended ({status}) before streaming:\n{out}{}",
                c.read(c.err_path("free"))
            );
        }
        assert!(
            Instant::now() < deadline,
            "the driver did not stream within {DRIVER_LIMIT:?}"
        );
        std::thread::sleep(Duration::from_millis(50));
    };
    eprintln!(
        "streamed {N} x {MIB} MiB in {:.1} s",
        start.elapsed().as_secs_f64()
    );
    assert_eq!(line(&out, "streamed "), n, "{out}");
    // Everything streamed is freed; the held blob and the escaped one stay (plus small ones).
    let st = c.wait_for_status(STEP, |s| {
        let (_, bytes) = stored(s);
        bytes < 2 * blob + (1 << 20) && head_tables(s).0 < 20
    });
    let (objects, bytes) = stored(&st);
    eprintln!(
        "while held: {objects} objects, {bytes} bytes; {:?}",
        head_tables(&st)
    );
    assert!(bytes >= 2 * blob, "a referenced object was freed:\n{st}");
    assert!(objects <= 10, "{st}");
    assert!(head_tables(&st).1 <= 10, "lineage kept:\n{st}");
    fs::write(&go, b"go").expect("write the go file");
    let (status, out) = c.wait("free");
    assert!(
        status.success(),
        "the driver failed ({status}):\n{out}{}",
        c.read(c.err_path("free"))
    );
    assert_eq!(line(&out, "kept "), "true", "{out}");
    assert_eq!(line(&out, "escaped "), "true", "{out}");
    assert_eq!(line(&out, "nested "), "[0, 1, 4]", "{out}");
    // The driver is gone and its job with it: everything the job made is freed, the escaped
    // blob and the escaped squares too (no process outside the job can hold their ids).
    let st = c.wait_for_status(STEP, |s| {
        s.contains("jobs: 0") && stored(s) == (0, 0) && head_tables(s).0 == 0
    });
    eprintln!(
        "after the driver: {:?} stored, {:?}",
        stored(&st),
        head_tables(&st)
    );
}

#[test]
fn a_frozen_head_fails_what_a_driver_waits_for_instead_of_hanging() {
    let mut c = cluster("frozen");
    let mut cmd = Command::new(DRIVER);
    cmd.args(["frozen", "30000"])
        .env("RAYKIT_ADDRESS", c.address())
        .env("RAYKIT_TOKEN", raykit_tests::cluster::TOKEN)
        .env("RAYKIT_HEAD_TIMEOUT_MS", "1500");
    c.spawn("frozen", cmd);
    let deadline = Instant::now() + DRIVER_LIMIT;
    while !c.read(c.out_path("frozen")).contains("waiting") {
        assert!(Instant::now() < deadline, "the driver never submitted");
        std::thread::sleep(Duration::from_millis(20));
    }
    let head = c.child("head").id().to_string();
    let signal = |sig: &str| {
        let ok = Command::new("kill")
            .args([sig, &head])
            .status()
            .is_ok_and(|s| s.success());
        assert!(ok, "kill {sig} {head} failed");
    };
    signal("-STOP");
    let (status, out) = c.wait("frozen");
    // Thawed before any assertion, so the cluster's teardown finds a head that can die.
    signal("-CONT");
    assert!(status.success(), "the driver failed ({status}):\n{out}");
    let error = line(&out, "error ");
    assert!(error.starts_with("Network "), "{out}");
    assert!(error.contains("has not answered"), "{out}");
}

#[test]
fn a_task_whose_worker_dies_is_retried_and_without_retries_fails_with_the_reason() {
    let mut c = cluster("crash");
    let dir = c.home().to_string_lossy().into_owned();
    let out = c.drive("crash", &["crash", &dir]);
    assert_eq!(line(&out, "retried "), "42", "{out}");
    let gave_up = line(&out, "gave up ");
    assert!(gave_up.starts_with("System "), "{out}");
    assert!(gave_up.contains("worker process died"), "{out}");
    assert!(gave_up.contains("crash_always"), "{out}");
}

/// Stops the daemon of a node (SIGSTOP) while it runs a task, past the head's dead timeout,
/// then resumes it: the node rejoins by itself as a new incarnation and runs new tasks pinned
/// to it, and the result its stalled worker made meanwhile is never taken (the task is failed
/// or run again: a value, if any, comes from another run). Only a cluster has a node daemon to
/// stop.
#[test]
fn a_stalled_node_rejoins_and_the_result_of_its_stalled_task_is_never_taken() {
    let mut c = cluster("stall");
    c.spawn_daemon(
        "stalled",
        &[
            "--address",
            &c.address(),
            "--num-cpus",
            "2",
            "--resources",
            r#"{"stall": 1}"#,
        ],
    );
    c.wait_for_status(STEP, |s| s.contains("nodes: 3 alive"));
    let marks = c.home().join("stall.marks");
    let marks_arg = marks.to_string_lossy().into_owned();
    c.spawn_driver("stall", &["stall", &marks_arg, "2500"]);
    let read = || fs::read_to_string(&marks).unwrap_or_default();
    let deadline = Instant::now() + DRIVER_LIMIT;
    while !read().contains("start ") {
        assert!(Instant::now() < deadline, "the pinned task never started");
        std::thread::sleep(Duration::from_millis(20));
    }
    let pid = c.child("stalled").id().to_string();
    let signal = |sig: &str| {
        let ok = Command::new("kill")
            .args([sig, &pid])
            .status()
            .is_ok_and(|s| s.success());
        assert!(ok, "kill {sig} {pid} failed");
    };
    signal("-STOP");
    let dead = Instant::now();
    let st = c.wait_for_status(Duration::from_secs(8), |s| {
        s.contains("nodes: 2 alive, 1 dead")
    });
    // The worker (not stopped) finishes its task while its daemon is stopped: its result
    // waits in the daemon's socket for the resume.
    while !read().contains("done ") {
        assert!(
            dead.elapsed() < Duration::from_secs(8),
            "the worker never finished"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    signal("-CONT");
    let st2 = c.wait_for_status(STEP, |s| s.contains("nodes: 3 alive"));
    assert!(
        c.child("stalled")
            .try_wait()
            .expect("poll the node")
            .is_none(),
        "the stalled node's daemon exited:\n{st}\n{st2}"
    );
    let (status, out) = c.wait("stall");
    assert!(
        status.success(),
        "the driver failed ({status}):\n{out}{}",
        c.read(c.err_path("stall"))
    );
    let marks = read();
    let start = line(&marks, "start ");
    let (stalled_pid, stalled_node) = start.split_once(' ').expect("pid and node");
    if let Some(v) = out.lines().find_map(|l| l.strip_prefix("first value ")) {
        assert_ne!(
            v, stalled_pid,
            "the stalled run's late result was taken:\n{out}"
        );
    } else {
        assert!(out.contains("first error "), "{out}");
    }
    assert_eq!(line(&out, "then node "), stalled_node, "{out}");
    assert_eq!(line(&out, "then all "), "true", "{out}");
}
