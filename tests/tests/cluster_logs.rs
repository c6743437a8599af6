//! Worker output on a real cluster (a head and a node, 2 CPUs each, see
//! `raykit_tests::cluster`): what a task or an actor method prints in its worker process
//! reaches the driver's stdout and stderr prefixed with where it ran, `(name pid=N node=ID)`,
//! and stays in the worker's log files on its node.
//!
//! Cluster-only: embedded, tasks and actors run on the driver's own threads, so what they print
//! already is the driver's own output; there is no worker process to name, and no log file of
//! one.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use raykit_tests::cluster::{line, Cluster, STEP};

const CLI: &str = env!("CARGO_BIN_EXE_raykit-cli");
const DRIVER: &str = env!("CARGO_BIN_EXE_logs_driver");

/// The pid and node of a driver's `PREFIX PID NODE` line.
fn ran_at(out: &str, prefix: &str) -> (String, String) {
    let mut words = line(out, prefix).split_whitespace();
    match (words.next(), words.next()) {
        (Some(pid), Some(node)) => (pid.to_owned(), node.to_owned()),
        _ => panic!("no pid and node after `{prefix}` in:\n{out}"),
    }
}

/// The log file of worker `pid` on `node` ending in `ext` (`out`, `err`, `out.1`), once it
/// exists (panics after [`STEP`]).
fn worker_log(home: &Path, node: &str, pid: &str, ext: &str) -> PathBuf {
    let dir = home.join("logs").join(node);
    let prefix = format!("worker-{pid}-job-");
    let suffix = format!(".{ext}");
    let deadline = Instant::now() + STEP;
    loop {
        let found = std::fs::read_dir(&dir).ok().and_then(|entries| {
            entries.flatten().map(|e| e.path()).find(|p| {
                let name = p.file_name().unwrap_or_default().to_string_lossy();
                name.starts_with(&prefix)
                    && name.ends_with(&suffix)
                    && name[prefix.len()..name.len() - suffix.len()]
                        .bytes()
                        .all(|b| b.is_ascii_digit())
            })
        });
        if let Some(path) = found {
            return path;
        }
        assert!(
            Instant::now() < deadline,
            "no {prefix}*{suffix} in {} within {STEP:?}",
            dir.display()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Waits (at most [`STEP`]) until `path` holds the line `want`; returns the file.
fn wait_for_line(path: &Path, want: &str) -> String {
    let deadline = Instant::now() + STEP;
    loop {
        let text = std::fs::read_to_string(path).unwrap_or_default();
        if text.lines().any(|l| l == want) {
            return text;
        }
        assert!(
            Instant::now() < deadline,
            "{} never held `{want}` within {STEP:?}; it holds:\n{text}",
            path.display()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn has_line(text: &str, want: &str) -> bool {
    text.lines().any(|l| l == want)
}

#[test]
fn what_tasks_and_actors_print_reaches_the_driver_prefixed_and_stays_in_worker_logs() {
    let mut c = Cluster::start("logs", CLI, DRIVER);
    let out = c.drive("speak", &["speak", "alpha"]);
    let err = c.read(c.err_path("speak"));
    let (pid, node) = ran_at(&out, "task ");
    let (actor_pid, actor_node) = ran_at(&out, "actor ");

    // On the driver's own streams, each line on the stream it was printed on, named by the
    // function or the actor class. The driver printed them before it exited.
    let both = format!("{out}{err}");
    for (text, want) in [
        (
            &out,
            format!("(shout pid={pid} node={node}) shout-out alpha"),
        ),
        (
            &err,
            format!("(shout pid={pid} node={node}) shout-err alpha"),
        ),
        (
            &out,
            format!("(Speaker pid={actor_pid} node={actor_node}) speaker-out hello alpha"),
        ),
        (
            &err,
            format!("(Speaker pid={actor_pid} node={actor_node}) speaker-err hello alpha"),
        ),
    ] {
        assert!(
            has_line(text, &want),
            "no `{want}` in the driver's output:\n{both}"
        );
    }
    assert!(
        !out.contains("shout-err") && !err.contains("shout-out"),
        "{both}"
    );

    // In the workers' log files on their nodes, as printed.
    let home = c.home().to_owned();
    wait_for_line(&worker_log(&home, &node, &pid, "out"), "shout-out alpha");
    wait_for_line(&worker_log(&home, &node, &pid, "err"), "shout-err alpha");
    let actor_out = worker_log(&home, &actor_node, &actor_pid, "out");
    wait_for_line(&actor_out, "speaker-out hello alpha");
    wait_for_line(
        &worker_log(&home, &actor_node, &actor_pid, "err"),
        "speaker-err hello alpha",
    );

    // With forwarding off the driver prints none of it; the log files still hold it.
    let out = c.drive_with(
        "quiet",
        &["speak", "beta"],
        &[("RAYKIT_LOG_TO_DRIVER", "0")],
    );
    let err = c.read(c.err_path("quiet"));
    let (pid, node) = ran_at(&out, "task ");
    let (actor_pid, actor_node) = ran_at(&out, "actor ");
    assert!(
        !out.contains("beta") && !err.contains("beta"),
        "worker output reached a driver that asked for none:\n{out}{err}"
    );
    wait_for_line(&worker_log(&home, &node, &pid, "out"), "shout-out beta");
    wait_for_line(
        &worker_log(&home, &actor_node, &actor_pid, "err"),
        "speaker-err hello beta",
    );
}

#[test]
fn a_flood_of_output_reaches_the_driver_whole_and_in_order_and_log_files_are_capped() {
    const CAP: u64 = 64 << 10;
    const LINES: usize = 3000;
    let head = ["--num-cpus", "2", "--resources", r#"{"alpha": 100}"#].map(String::from);
    let node = ["--num-cpus", "2", "--resources", r#"{"beta": 100}"#].map(String::from);
    let cap = CAP.to_string();
    let mut c = Cluster::start_shaped(
        "logs-cap",
        CLI,
        &head,
        &node,
        &[("RAYKIT_WORKER_LOG_BYTES", &cap)],
    );
    c.set_driver(DRIVER);
    let out = c.drive("flood", &["flood", &LINES.to_string()]);
    let (pid, node) = ran_at(&out, "task ");

    // About 300 KB: less than any queue on the way keeps, so nothing is dropped.
    let prefix = format!("(flood pid={pid} node={node}) flood ");
    let numbers: Vec<usize> = out
        .lines()
        .filter_map(|l| l.strip_prefix(&prefix))
        .filter_map(|l| l.split(' ').next()?.parse().ok())
        .collect();
    assert_eq!(
        numbers,
        (0..LINES).collect::<Vec<_>>(),
        "the driver did not print every line in order; stderr:\n{}",
        c.read(c.err_path("flood"))
    );

    // The log file went over to `.1` on reaching its cap; neither is past it, and the newest
    // line is in the current one.
    let home = c.home().to_owned();
    let current = worker_log(&home, &node, &pid, "out");
    let last = format!("flood {:06} {}", LINES - 1, "x".repeat(86));
    wait_for_line(&current, &last);
    let previous = worker_log(&home, &node, &pid, "out.1");
    for path in [&current, &previous] {
        let len = std::fs::metadata(path).expect("a log file").len();
        assert!(
            len <= CAP,
            "{} holds {len} bytes, past {CAP}",
            path.display()
        );
    }
}
