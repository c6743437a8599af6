//! Chaos on a real cluster (a head and two nodes, 2 CPUs each): while a job whose every answer
//! is checked runs, the test kills random worker processes with SIGKILL, kills another
//! driver in the middle of its work, stalls a node (SIGSTOP, then SIGCONT) and kills a node.
//! Every answer must be right, nothing may hang, and afterwards the cluster must be idle and
//! empty. Only a cluster has processes to kill.

use std::path::Path;
use std::time::{Duration, Instant};

use raykit::cluster::records;
use raykit_tests::cluster::{line, Cluster, STEP};

const CLI: &str = env!("CARGO_BIN_EXE_raykit-cli");
const DRIVER: &str = env!("CARGO_BIN_EXE_job_driver");

/// The pids of the processes running an executable from under `home` (the nodes' executable
/// caches): the cluster's worker processes.
fn workers_under(home: &Path) -> Vec<u32> {
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    entries
        .flatten()
        .filter_map(|e| {
            let pid: u32 = e.file_name().to_string_lossy().parse().ok()?;
            let exe = std::fs::read_link(e.path().join("exe")).ok()?;
            exe.starts_with(home).then_some(pid)
        })
        .collect()
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

/// A node daemon the test stops and resumes; resumed on drop, so a failing test leaves no
/// stopped process behind.
struct Stalled(u32);

impl Stalled {
    fn signal(&self, sig: &str) {
        let ok = std::process::Command::new("kill")
            .args([sig, &self.0.to_string()])
            .status()
            .is_ok_and(|s| s.success());
        assert!(ok, "kill {sig} {} failed", self.0);
    }
}

impl Drop for Stalled {
    fn drop(&mut self) {
        let _ = std::process::Command::new("kill")
            .args(["-CONT", &self.0.to_string()])
            .status();
    }
}

/// A small deterministic pseudo-random sequence (the test's choices are reproducible).
struct Lcg(u64);

impl Lcg {
    fn next(&mut self, below: usize) -> usize {
        self.0 = self
            .0
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        ((self.0 >> 33) as usize) % below.max(1)
    }
}

#[test]
fn every_answer_is_right_under_kills_and_stalls_and_the_cluster_ends_empty() {
    let mut c = Cluster::start("chaos", CLI, DRIVER);
    c.spawn_daemon(
        "node2",
        &[
            "--address",
            &c.address(),
            "--num-cpus",
            "2",
            "--resources",
            r#"{"gamma": 100}"#,
        ],
    );
    c.wait_for_status(STEP, |s| s.contains("nodes: 3 alive"));
    let marks = c.home().join("marks");
    std::fs::create_dir_all(&marks).expect("create the marks directory");
    c.spawn_driver(
        "victim",
        &["flood", "100", "60000", &marks.to_string_lossy()],
    );
    c.spawn_driver("chaos", &["chaos", "80"]);

    let start = Instant::now();
    let mut rng = Lcg(12345);
    let (mut victim_killed, mut node_killed) = (false, false);
    // The node stalled (not the one killed): stopped until the head declares it dead.
    let stalled = Stalled(c.child("node").id());
    let (mut stalled_at, mut stalled_dead, mut resumed) = (None::<Instant>, false, false);
    let mut killed_workers = 0;
    let deadline = start + Duration::from_secs(240);
    loop {
        if let Some(status) = c.child("chaos").try_wait().expect("poll the chaos driver") {
            assert!(status.success(), "the chaos driver failed ({status})");
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the chaos driver did not finish in time"
        );
        let t = start.elapsed();
        if !victim_killed && t > Duration::from_secs(2) {
            c.child("victim").kill().expect("kill the victim driver");
            let _ = c.child("victim").wait();
            victim_killed = true;
        }
        if !node_killed && t > Duration::from_secs(5) {
            c.child("node2").kill().expect("kill node2");
            let _ = c.child("node2").wait();
            node_killed = true;
        }
        if stalled_at.is_none() && !resumed && t > Duration::from_secs(7) {
            stalled.signal("-STOP");
            stalled_at = Some(Instant::now());
        }
        if let Some(at) = stalled_at {
            // Resumed once declared dead by missed heartbeats (or after a bound).
            stalled_dead = stalled_dead || c.status().contains("dead (no heartbeat");
            if stalled_dead || at.elapsed() > Duration::from_secs(12) {
                stalled.signal("-CONT");
                stalled_at = None;
                resumed = true;
            }
        }
        let workers = workers_under(c.home());
        if !workers.is_empty() {
            records::kill(workers[rng.next(workers.len())]);
            killed_workers += 1;
        }
        std::thread::sleep(Duration::from_millis(400));
    }
    if stalled_at.is_some() {
        stalled.signal("-CONT");
    }
    eprintln!(
        "chaos: {killed_workers} workers killed over {:.1} s",
        start.elapsed().as_secs_f64()
    );
    let out = c.read(c.out_path("chaos"));
    assert!(line(&out, "ok ").parse::<u64>().is_ok(), "{out}");
    assert!(killed_workers > 0 && victim_killed && node_killed);
    assert!(
        resumed && stalled_dead,
        "the node was not stalled until declared dead"
    );
    // The stalled node rejoined: the head and it are alive (node2 stays dead or is forgotten).
    c.wait_for_status(STEP, |s| s.contains("nodes: 2 alive"));

    // Idle and empty: no task, no job, no object, no worker left.
    c.wait_for_status(Duration::from_secs(30), |s| {
        tasks(s) == (0, 0)
            && s.contains("jobs: 0")
            && s.contains("head tables: 0 objects, 0 tasks")
            && s.lines()
                .filter(|l| l.contains("  objects "))
                .all(|l| l.contains("  objects 0 ("))
    });
    let deadline = Instant::now() + STEP;
    while !workers_under(c.home()).is_empty() {
        assert!(Instant::now() < deadline, "worker processes are left");
        std::thread::sleep(Duration::from_millis(100));
    }
}
