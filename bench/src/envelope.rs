//! The scale envelope: a few large shapes of work, each run to completion in a fresh process
//! of this binary (so its peak memory, `VmHWM`, is its own), with its time and peak memory.

use std::io::Read;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use raykit::{ActorHandle, ObjectRef};

use crate::harness::{peak_rss_kib, rss_kib};
use crate::report::EnvelopeRow;

/// How long one item may take before its process is killed.
const ITEM_TIMEOUT: Duration = Duration::from_secs(600);

/// The items, by name.
pub const ITEMS: &[&str] = &[
    "1,000,000 tiny tasks queued at once",
    "10,000 actors in one process",
    "one task with 10,000 ref arguments",
    "one get_all of 10,000 refs",
];

/// The smallest task.
#[raykit::remote]
pub fn tiny() -> u8 {
    1
}

/// A remote function cannot take 10,000 parameters: it takes one `Vec` of refs and reads them
/// with `get_all` inside.
#[raykit::remote]
pub fn sum_refs(refs: Vec<ObjectRef<i64>>) -> i64 {
    raykit::get_all(&refs)
        .expect("an argument failed")
        .iter()
        .sum()
}

/// An actor holding a number.
#[derive(raykit::Actor)]
pub struct Member {
    id: u64,
}

#[raykit::actor]
impl Member {
    /// A member with id `id`.
    pub fn new(id: u64) -> Self {
        Member { id }
    }

    /// Its number.
    pub fn number(&self) -> u64 {
        self.id
    }
}

/// Runs item `index` in this process and returns what it measured.
pub fn run_item(index: usize) -> EnvelopeRow {
    let name = ITEMS
        .get(index)
        .copied()
        .unwrap_or("unknown item")
        .to_owned();
    let start_rss_kib = rss_kib();
    let start = Instant::now();
    let outcome = match index {
        0 => queued_tasks(1_000_000),
        1 => many_actors(10_000),
        2 => many_ref_args(10_000),
        3 => big_get_all(10_000),
        _ => Err(format!("no envelope item {index}")),
    };
    let seconds = start.elapsed().as_secs_f64();
    let (ok, detail) = match outcome {
        Ok(d) => (true, d),
        Err(e) => (false, e),
    };
    EnvelopeRow {
        name,
        ok,
        seconds,
        peak_rss_kib: peak_rss_kib(),
        start_rss_kib,
        detail,
    }
}

fn queued_tasks(n: usize) -> Result<String, String> {
    let submit = Instant::now();
    let refs: Vec<ObjectRef<u8>> = (0..n).map(|_| tiny::remote()).collect();
    let submitted = submit.elapsed();
    let values = raykit::get_all(&refs).map_err(|e| e.to_string())?;
    let sum: usize = values.iter().map(|&v| v as usize).sum();
    check(sum == n, format!("sum {sum} != {n}"))?;
    Ok(format!(
        "submitted in {:.2} s; {} worker threads started",
        submitted.as_secs_f64(),
        raykit::__private::worker_threads_started()
    ))
}

fn many_actors(n: u64) -> Result<String, String> {
    let actors: Vec<ActorHandle<Member>> = (0..n).map(Member::remote).collect();
    let ids: Vec<ObjectRef<u64>> = actors.iter().map(|a| a.number()).collect();
    let got = raykit::get_all(&ids).map_err(|e| e.to_string())?;
    let want: u64 = (0..n).sum();
    let sum: u64 = got.iter().sum();
    check(sum == want, format!("sum of ids {sum} != {want}"))?;
    Ok(format!("{n} actors created and called once each"))
}

fn many_ref_args(n: i64) -> Result<String, String> {
    let refs: Vec<ObjectRef<i64>> = (0..n).map(raykit::put).collect();
    let sum = raykit::get(&sum_refs::remote(refs)).map_err(|e| e.to_string())?;
    let want = n * (n - 1) / 2;
    check(sum == want, format!("sum {sum} != {want}"))?;
    Ok("one Vec<ObjectRef<i64>> argument of put objects, get_all inside".into())
}

fn big_get_all(n: usize) -> Result<String, String> {
    let refs: Vec<ObjectRef<u8>> = (0..n).map(|_| tiny::remote()).collect();
    let got = raykit::get_all(&refs).map_err(|e| e.to_string())?;
    check(got.len() == n, format!("{} values", got.len()))?;
    Ok(format!("refs of {n} tasks, submitted then read"))
}

fn check(ok: bool, why: String) -> Result<(), String> {
    if ok {
        Ok(())
    } else {
        Err(why)
    }
}

/// Runs every item in a child process of this binary and collects the rows; `progress` is told
/// about each.
pub fn run_all(mut progress: impl FnMut(usize, &EnvelopeRow)) -> Vec<EnvelopeRow> {
    (0..ITEMS.len())
        .map(|i| {
            let row = run_child(i).unwrap_or_else(|e| EnvelopeRow {
                name: ITEMS[i].to_owned(),
                ok: false,
                seconds: 0.0,
                peak_rss_kib: None,
                start_rss_kib: None,
                detail: e,
            });
            progress(i, &row);
            row
        })
        .collect()
}

fn run_child(index: usize) -> Result<EnvelopeRow, String> {
    let exe = std::env::current_exe().map_err(|e| format!("cannot find this binary: {e}"))?;
    let mut child = Command::new(exe)
        .arg("--envelope-item")
        .arg(index.to_string())
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .map_err(|e| format!("cannot start the item's process: {e}"))?;
    let start = Instant::now();
    let status = loop {
        match child.try_wait() {
            Ok(Some(status)) => break status,
            Ok(None) if start.elapsed() > ITEM_TIMEOUT => {
                let _ = child.kill();
                let _ = child.wait();
                return Err(format!(
                    "did not finish within {} s",
                    ITEM_TIMEOUT.as_secs()
                ));
            }
            Ok(None) => std::thread::sleep(Duration::from_millis(20)),
            Err(e) => return Err(format!("cannot wait for the item's process: {e}")),
        }
    };
    let mut out = String::new();
    if let Some(mut stdout) = child.stdout.take() {
        stdout
            .read_to_string(&mut out)
            .map_err(|e| format!("cannot read the item's output: {e}"))?;
    }
    if !status.success() {
        return Err(format!("the item's process failed ({status})"));
    }
    serde_json::from_str(out.trim()).map_err(|e| format!("bad output from the item: {e}: {out}"))
}
