//! A driver program for the multi-process tests of jobs, errors and actor restarts
//! (`tests/tests/cluster_jobs.rs`): one scenario per subcommand, written against the public
//! API only. It runs embedded, or on a cluster when `RAYKIT_ADDRESS` is set; the test reads
//! what it prints.
//!
//! The head of the test cluster declares the custom resource `alpha` and the other node
//! `beta`, so a scenario can pin a task or an actor to either node.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use raykit::{ActorOptions, ObjectRef, TaskOptions};

#[raykit::remote]
fn boom(x: u64) -> u64 {
    panic!("boom at {x}")
}

#[raykit::remote]
fn add(a: u64, b: u64) -> u64 {
    a + b
}

/// Marks its start with a file of its own in `dir`, then sleeps `ms` milliseconds.
#[raykit::remote]
fn sleepy(dir: String, i: u64, ms: u64) -> u64 {
    let _ = std::fs::write(Path::new(&dir).join(format!("started-{i}")), b"");
    std::thread::sleep(Duration::from_millis(ms));
    i
}

/// `x * x` after `ms` milliseconds of work.
#[raykit::remote]
fn slow_square(x: u64, ms: u64) -> u64 {
    std::thread::sleep(Duration::from_millis(ms));
    x * x
}

/// The sum of a value's bytes, after `ms` milliseconds of work.
#[raykit::remote]
fn byte_sum(bytes: Vec<u8>, ms: u64) -> u64 {
    std::thread::sleep(Duration::from_millis(ms));
    bytes.iter().map(|b| u64::from(*b)).sum()
}

/// The sum of the squares of `0..n`, computed by `n` child tasks while this one waits.
#[raykit::remote]
fn sum_of_squares(n: u64, ms: u64) -> u64 {
    let children: Vec<ObjectRef<u64>> = (0..n)
        .map(|i| slow_square::options(patient()).remote(i, ms))
        .collect();
    raykit::get_all(&children).map_or(u64::MAX, |v| v.iter().sum())
}

/// Options that outlast a chaos test's kills: many retries.
fn patient() -> TaskOptions {
    TaskOptions::new().max_retries(100)
}

/// `rounds` rounds of work whose every answer is checked, while the test kills workers, a
/// node and another driver, and stalls a node: squares, chains of dependent tasks, nested
/// tasks, and tasks reading a large put value. Prints `ok N` (the answers checked) or the
/// first wrong one, and fails.
fn chaos(rounds: u64) -> raykit::Result<()> {
    let big: Vec<u8> = (0..(2u32 << 20)).map(|i| (i % 251) as u8).collect();
    let big_sum: u64 = big.iter().map(|b| u64::from(*b)).sum();
    let big = raykit::put(big);
    let mut checked = 0u64;
    let mut check = |what: &str, got: u64, want: u64| -> raykit::Result<()> {
        if got != want {
            println!("wrong {what}: {got} instead of {want}");
            return Err(raykit::Error::new(
                raykit::ErrorKind::System,
                "a wrong answer",
            ));
        }
        checked += 1;
        Ok(())
    };
    for round in 0..rounds {
        let squares: Vec<ObjectRef<u64>> = (0..16)
            .map(|i| slow_square::options(patient()).remote(round + i, 30))
            .collect();
        let mut link = slow_square::options(patient()).remote(2, 10);
        for _ in 0..4 {
            link = slow_square::options(patient()).remote(&link, 10);
        }
        let nested = sum_of_squares::options(patient()).remote(6, 20);
        let sums: Vec<ObjectRef<u64>> = (0..2)
            .map(|_| byte_sum::options(patient()).remote(&big, 20))
            .collect();
        for (i, r) in squares.iter().enumerate() {
            let x = round + i as u64;
            check("square", raykit::get(r)?, x * x)?;
        }
        // 2 squared five times: 2^32.
        check("chain", raykit::get(&link)?, 1 << 32)?;
        check("nested", raykit::get(&nested)?, 55)?;
        for r in &sums {
            check("byte sum", raykit::get(r)?, big_sum)?;
        }
    }
    println!("ok {checked}");
    Ok(())
}

/// Sleeps on tokio's timer and joins a task it spawned: async tasks run inside a tokio
/// runtime, embedded and on a cluster's workers alike.
#[raykit::remote]
async fn tokio_inside(ms: u64) -> u64 {
    tokio::time::sleep(Duration::from_millis(ms)).await;
    let spawned = tokio::spawn(async move {
        tokio::time::sleep(Duration::from_millis(1)).await;
        ms + 1
    });
    spawned.await.unwrap_or(0)
}

fn tokio_async() -> raykit::Result<()> {
    let refs: Vec<ObjectRef<u64>> = (1..=4).map(tokio_inside::remote).collect();
    println!("tokio {:?}", raykit::get_all(&refs)?);
    Ok(())
}

/// A chain of `n` dependents after a panic: prints the largest error message of the chain,
/// the deepest `source()` chain and the root cause of the last link.
fn chain(n: u64) -> raykit::Result<()> {
    let first = boom::remote(7);
    let mut last = add::remote(&first, 1);
    let mut longest = 0;
    let mut deepest = 0;
    let mut check = |r: &ObjectRef<u64>| -> Option<raykit::Error> {
        let e = raykit::get(r).err()?;
        longest = longest.max(e.to_string().len());
        let mut depth = 0;
        let mut cur: Option<&(dyn std::error::Error + 'static)> = Some(&e);
        while let Some(c) = cur {
            depth += 1;
            cur = c.source();
        }
        deepest = deepest.max(depth);
        Some(e)
    };
    for i in 0..n {
        last = add::remote(&last, i);
        if i % 100 == 0 {
            check(&last);
        }
    }
    let e = check(&last);
    println!("longest {longest}");
    println!("deepest {deepest}");
    match e {
        Some(e) => {
            println!("kind {:?}", e.kind());
            println!("root {}", e.root_cause());
        }
        None => println!("kind none"),
    }
    Ok(())
}

/// Submits `n` tasks of `ms` milliseconds each that mark their start in `dir`, prints
/// `submitted` once one has started, and waits (for the test to kill this driver).
fn flood(n: u64, ms: u64, dir: PathBuf) -> raykit::Result<()> {
    let d = dir.to_string_lossy().into_owned();
    let refs: Vec<ObjectRef<u64>> = (0..n).map(|i| sleepy::remote(d.clone(), i, ms)).collect();
    while std::fs::read_dir(&dir).map_or(0, |d| d.count()) == 0 {
        std::thread::sleep(Duration::from_millis(20));
    }
    println!("submitted");
    std::thread::sleep(Duration::from_secs(600));
    drop(refs);
    Ok(())
}

/// `n` small tasks: prints their sum.
fn small(n: u64) -> raykit::Result<()> {
    let refs: Vec<ObjectRef<u64>> = (0..n).map(|i| add::remote(i, 1)).collect();
    println!("sum {}", raykit::get_all(&refs)?.iter().sum::<u64>());
    Ok(())
}

/// A ref to an object that never existed (an id forged from bytes), passed to a task and read
/// directly: both fail with an error, neither hangs.
fn unknown() -> raykit::Result<()> {
    let raw = postcard::to_allocvec(&0x5eed_0000_0000_0000_0000_0000_0000_0001u128)
        .map_err(|e| raykit::Error::new(raykit::ErrorKind::Serialization, e.to_string()))?;
    let forged: ObjectRef<u64> = match postcard::from_bytes(&raw) {
        Ok(r) => r,
        Err(e) => {
            // Embedded, a ref to an object this process does not have cannot be made.
            println!("forged none {e}");
            return Ok(());
        }
    };
    match raykit::get(&add::remote(&forged, 1)) {
        Err(e) => println!("task {:?} {}", e.kind(), e.root_cause()),
        Ok(v) => println!("task none {v}"),
    }
    match raykit::get(&forged) {
        Err(e) => println!("get {:?} {e}", e.kind()),
        Ok(v) => println!("get none {v}"),
    }
    println!("after {}", raykit::get(&add::remote(1, 2))?);
    Ok(())
}

/// A counter that can crash its process.
#[derive(raykit::Actor)]
#[actor(resources(beta = 1))]
struct Counter {
    value: u64,
}

#[raykit::actor]
impl Counter {
    pub fn new(start: u64) -> Self {
        Counter { value: start }
    }

    pub fn incr(&mut self, by: u64) -> u64 {
        self.value += by;
        self.value
    }

    /// Ends the actor's process after `ms` milliseconds, as a crash would.
    pub fn crash_after(&self, ms: u64) -> u64 {
        std::thread::sleep(Duration::from_millis(ms));
        std::process::abort()
    }
}

/// Waits (at most a minute) until the file `path` exists, then returns `value`.
#[raykit::remote(num_cpus = 0)]
fn when_file_exists(path: String, value: u64) -> u64 {
    for _ in 0..6000 {
        if Path::new(&path).exists() {
            break;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    value
}

/// A counter on any node.
#[derive(raykit::Actor)]
struct Tally {
    value: u64,
}

#[raykit::actor]
impl Tally {
    pub fn new() -> Self {
        Tally { value: 0 }
    }

    pub fn incr(&mut self, by: u64) -> u64 {
        self.value += by;
        self.value
    }
}

/// Calls `tally.incr(by)` from inside a task, a caller of its own.
#[raykit::remote]
fn incr_from_a_task(tally: raykit::ActorHandle<Tally>, by: u64) -> u64 {
    raykit::get(&tally.incr(by)).unwrap_or(u64::MAX)
}

/// A call of this program that waits for an argument does not hold back another caller's
/// ready call; this program's own calls keep their order.
fn per_caller(dir: PathBuf) -> raykit::Result<()> {
    let file = dir.join("per-caller.go");
    let _ = std::fs::remove_file(&file);
    let tally = Tally::remote();
    let slow = when_file_exists::remote(file.to_string_lossy().into_owned(), 100);
    let waiting = tally.incr(&slow);
    let after = tally.incr(1);
    println!(
        "other {}",
        raykit::get(&incr_from_a_task::remote(tally.clone(), 10))?
    );
    println!("held {}", !waiting.is_ready() && !after.is_ready());
    let _ = std::fs::write(&file, b"go");
    println!("mine {} {}", raykit::get(&waiting)?, raykit::get(&after)?);
    Ok(())
}

/// An actor whose process dies in `new` the first time (when `marker` does not exist yet).
#[derive(raykit::Actor)]
#[actor(resources(beta = 1))]
struct CrashyStart {
    value: u64,
}

#[raykit::actor]
impl CrashyStart {
    pub fn new(marker: String, value: u64) -> Self {
        if std::fs::metadata(&marker).is_err() {
            let _ = std::fs::write(&marker, b"crashed");
            std::process::abort();
        }
        CrashyStart { value }
    }

    pub fn value(&self) -> u64 {
        self.value
    }
}

/// An actor whose process crashes inside `new` is started again while it has restarts left,
/// and is dead with the reason when it has none.
fn crash_in_new(dir: PathBuf) -> raykit::Result<()> {
    let marker = |name: &str| dir.join(name).to_string_lossy().into_owned();
    let again = CrashyStart::options(ActorOptions::new().max_restarts(1))
        .remote(marker("restarted.marker"), 7);
    match raykit::get(&again.value()) {
        Ok(v) => println!("restarted {v}"),
        Err(e) => println!("restarted {:?} {e}", e.kind()),
    }
    let dead = CrashyStart::remote(marker("dead.marker"), 8);
    match raykit::get(&dead.value()) {
        Ok(v) => println!("dead none {v}"),
        Err(e) => println!("dead {:?} {e}", e.kind()),
    }
    Ok(())
}

/// Calls sent behind a call that crashes the actor's process, without waiting: the crashing
/// call fails; the others run on the restarted actor (fresh from `new`) when it has a restart
/// left, and fail as dead when it has none.
fn restart_behind(restarts: u32) -> raykit::Result<()> {
    let counter = Counter::options(ActorOptions::new().max_restarts(restarts)).remote(100);
    println!("first {}", raykit::get(&counter.incr(1))?);
    let crash = counter.crash_after(300);
    let behind: Vec<ObjectRef<u64>> = (0..5).map(|_| counter.incr(1)).collect();
    match raykit::get(&crash) {
        Err(e) => println!("crash {:?}", e.kind()),
        Ok(v) => println!("crash none {v}"),
    }
    for r in &behind {
        match raykit::get(r) {
            Ok(v) => println!("behind {v}"),
            Err(e) => println!("behind {:?}", e.kind()),
        }
    }
    Ok(())
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if let Err(e) = raykit::init() {
        eprintln!("init failed: {e}");
        return ExitCode::from(2);
    }
    let num = |i: usize, default: u64| args.get(i).and_then(|a| a.parse().ok()).unwrap_or(default);
    let result = match args.first().map(String::as_str) {
        Some("chain") => chain(num(1, 1500)),
        Some("flood") => flood(
            num(1, 200),
            num(2, 5000),
            PathBuf::from(args.get(3).cloned().unwrap_or_default()),
        ),
        Some("small") => small(num(1, 60)),
        Some("unknown") => unknown(),
        Some("restart-behind") => restart_behind(num(1, 1) as u32),
        Some("chaos") => chaos(num(1, 20)),
        Some("tokio") => tokio_async(),
        Some("per-caller") => per_caller(PathBuf::from(args.get(1).cloned().unwrap_or_default())),
        Some("crash-in-new") => {
            crash_in_new(PathBuf::from(args.get(1).cloned().unwrap_or_default()))
        }
        other => {
            eprintln!("unknown scenario {other:?}");
            return ExitCode::from(2);
        }
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:?}");
            ExitCode::FAILURE
        }
    }
}
