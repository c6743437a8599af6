//! Runs every example binary with a small time scale and checks what it prints.
//!
//! Each run is bounded: a child still running after [`TIMEOUT`] is killed and the test fails
//! with what it printed so far. The checks look at results, never at timings.

use std::io::Read;
use std::process::{Child, Command, Stdio};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

/// The time scale the sleep-based examples run with (`RAYKIT_EXAMPLE_SCALE`).
const SCALE: &str = "0.05";
/// The longest one example may run.
const TIMEOUT: Duration = Duration::from_secs(120);

/// What a finished example printed.
struct Output {
    stdout: String,
    stderr: String,
}

impl Output {
    /// The rest of the line that starts with `key: `; fails the test when there is none.
    fn value(&self, key: &str) -> &str {
        let prefix = format!("{key}:");
        self.stdout
            .lines()
            .map(str::trim_start)
            .find_map(|l| l.strip_prefix(&prefix))
            .map(str::trim)
            .unwrap_or_else(|| panic!("no line `{prefix} ..` in the output:\n{self}"))
    }

    /// Asserts that the line `key: ..` says `expected`.
    fn expect(&self, key: &str, expected: &str) {
        assert_eq!(self.value(key), expected, "`{key}` in the output:\n{self}");
    }

    /// The lines of standard output that start with `prefix`.
    fn lines_starting(&self, prefix: &str) -> Vec<&str> {
        self.stdout
            .lines()
            .filter(|l| l.trim_start().starts_with(prefix))
            .collect()
    }
}

impl std::fmt::Display for Output {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "--- stdout\n{}\n--- stderr\n{}",
            self.stdout, self.stderr
        )
    }
}

fn read_all(mut from: impl Read + Send + 'static) -> JoinHandle<String> {
    thread::spawn(move || {
        let mut bytes = Vec::new();
        let _ = from.read_to_end(&mut bytes);
        String::from_utf8_lossy(&bytes).into_owned()
    })
}

/// Kills the child when dropped unless it was reaped, so a failing test leaves no process behind.
struct Guard(Option<Child>);

impl Drop for Guard {
    fn drop(&mut self) {
        if let Some(child) = &mut self.0 {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// Runs the example binary `exe` with `args` and the small time scale; fails the test unless it
/// exits successfully within [`TIMEOUT`].
fn run(exe: &str, args: &[&str]) -> Output {
    let mut child = Command::new(exe)
        .args(args)
        .env("RAYKIT_EXAMPLE_SCALE", SCALE)
        .env("RUST_BACKTRACE", "0")
        .env_remove("RAYKIT_ADDRESS")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot start {exe}: {e}"));
    let stdout = read_all(child.stdout.take().expect("piped stdout"));
    let stderr = read_all(child.stderr.take().expect("piped stderr"));
    let mut guard = Guard(Some(child));
    let started = Instant::now();
    let status = loop {
        let child = guard.0.as_mut().expect("child not reaped yet");
        match child.try_wait() {
            Ok(Some(status)) => {
                guard.0 = None;
                break Some(status);
            }
            Ok(None) if started.elapsed() > TIMEOUT => {
                drop(guard); // kills and reaps it, which closes its pipes
                break None;
            }
            Ok(None) => thread::sleep(Duration::from_millis(20)),
            Err(e) => panic!("cannot wait for {exe}: {e}"),
        }
    };
    let output = Output {
        stdout: stdout.join().expect("stdout reader"),
        stderr: stderr.join().expect("stderr reader"),
    };
    match status {
        None => panic!("{exe} {args:?} ran longer than {TIMEOUT:?} and was killed\n{output}"),
        Some(s) if !s.success() => panic!("{exe} {args:?} failed ({s})\n{output}"),
        Some(_) => {
            output.value("wall time"); // every example ends with it
            output
        }
    }
}

#[test]
fn parallel_sleep() {
    let out = run(env!("CARGO_BIN_EXE_parallel_sleep"), &[]);
    out.expect("results equal", "true");
    out.expect("sum of results", &(0..50).sum::<i64>().to_string());
}

#[test]
fn sleep_times() {
    let out = run(env!("CARGO_BIN_EXE_sleep_times"), &[]);
    out.expect("Total time of sleep", "9.9 for 16 tasks");
    assert_eq!(out.lines_starting("Sleep time ").len(), 16, "{out}");
    out.expect("results equal", "true");
}

#[test]
fn pipeline() {
    let out = run(env!("CARGO_BIN_EXE_pipeline"), &[]);
    out.expect("results match local computation", "true");
    for i in 0..4 {
        let line = out.value(&format!("file{i}"));
        assert!(line.starts_with("mean "), "{out}");
    }
}

#[test]
fn matrix_tree() {
    let out = run(env!("CARGO_BIN_EXE_matrix_tree"), &[]);
    let tasks: f64 = out.value("checksum (tasks)").parse().expect("a number");
    let serial: f64 = out.value("checksum (serial)").parse().expect("a number");
    assert!(tasks.is_finite(), "{out}");
    assert_eq!(tasks.to_bits(), serial.to_bits(), "{out}");
    out.expect("matrices equal", "true");
}

#[test]
fn aggregate() {
    let out = run(env!("CARGO_BIN_EXE_aggregate"), &[]);
    let sum = (1..=8).sum::<i64>().to_string();
    out.expect("linear result", &sum);
    out.expect("tree result", &sum);
}

#[test]
fn stress() {
    let out = run(
        env!("CARGO_BIN_EXE_stress"),
        &["--max", "150", "--step", "50"],
    );
    for n in ["50", "100", "150"] {
        let row = out
            .stdout
            .lines()
            .any(|l| l.split_whitespace().next() == Some(n));
        assert!(row, "no table row for n = {n}\n{out}");
    }
    out.expect("all results correct", "true");
}

#[test]
fn compute_args() {
    let out = run(env!("CARGO_BIN_EXE_compute_args"), &[]);
    out.expect("compute results", "[0, 1, 4, 9]");
    out.expect("results equal", "true");
    let expected = (10 * 10 + 42 * 42 * 42).to_string();
    let line = out.lines_starting("compute(get_arg1(10), get_arg2(42)) =");
    assert_eq!(line.len(), 1, "{out}");
    assert!(line[0].ends_with(&format!("= {expected}")), "{out}");
    out.expect("equals the local call", "true");
}

#[test]
fn merge_sort() {
    let out = run(env!("CARGO_BIN_EXE_merge_sort"), &[]);
    out.expect("numbers", "100000, leaf size: 4096");
    out.expect("serial sorted", "true");
    out.expect("parallel sorted", "true");
    out.expect("parallel sorted with 1 CPU", "true");
}

/// Small leaves: hundreds of nested tasks blocked in `get`, including on a single CPU.
#[test]
fn merge_sort_deep_nesting() {
    let out = run(
        env!("CARGO_BIN_EXE_merge_sort"),
        &["--len", "20000", "--leaf", "64"],
    );
    out.expect("parallel sorted", "true");
    out.expect("parallel sorted with 1 CPU", "true");
}

#[test]
fn wait_loop() {
    let out = run(env!("CARGO_BIN_EXE_wait_loop"), &[]);
    out.expect("results received", "6");
    out.expect("every task reported once", "true");
}

#[test]
fn tour() {
    let out = run(env!("CARGO_BIN_EXE_tour"), &[]);
    assert!(
        out.stdout.contains("tour complete: all checks passed"),
        "{out}"
    );
    assert!(!out.stdout.contains(": false"), "a check failed\n{out}");
    out.expect("the error names the function", "true");
    out.expect("the failed argument is the source", "true");
    out.expect("calls ran one at a time, in order", "true");
    out.expect("a panicking method fails only that call", "true");
}

#[test]
fn scale_from_the_command_line() {
    // `--scale` overrides the environment variable; the header reports the scale in use.
    let out = run(env!("CARGO_BIN_EXE_aggregate"), &["--scale", "0.01"]);
    assert!(
        out.stdout.starts_with("== aggregate (time scale 0.01) =="),
        "{out}"
    );
    out.expect("tree result", "36");
}

#[test]
fn counter() {
    let out = run(env!("CARGO_BIN_EXE_counter"), &[]);
    out.expect(
        "increment x15 with cap 10",
        "[1, 2, 3, 4, 5, 6, 7, 8, 9, 0, 1, 2, 3, 4, 5]",
    );
    out.expect("final value", "5");
}

#[test]
fn logging_actor() {
    let out = run(env!("CARGO_BIN_EXE_logging_actor"), &[]);
    out.expect("messages read in total", "40 (expected 40)");
}

#[test]
fn message_actor() {
    let out = run(env!("CARGO_BIN_EXE_message_actor"), &[]);
    out.expect("messages received in total", "30 (expected 30)");
}

#[test]
fn sharded() {
    let out = run(env!("CARGO_BIN_EXE_sharded"), &["--batches", "40"]);
    out.expect("checksums agree", "true");
}
