//! A driver program for the multi-process cluster tests (`tests/tests/cluster_tasks.rs`): one
//! scenario per subcommand, written against the public API only. It runs on the embedded
//! runtime, or on a cluster when `RAYKIT_ADDRESS` is set; the test reads what it prints.
//!
//! The head of the test cluster declares the custom resource `alpha` and the other node
//! `beta`, so a scenario can pin a task to either node.

use std::collections::{BTreeSet, VecDeque};
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use raykit::ObjectRef;

#[raykit::remote]
fn square(x: u64) -> u64 {
    x * x
}

#[raykit::remote]
fn add(a: u64, b: u64) -> u64 {
    a + b
}

#[raykit::remote(num_returns = 2)]
fn div_mod(a: u64, b: u64) -> (u64, u64) {
    (a / b, a % b)
}

#[raykit::remote]
fn concat(words: Vec<String>, sep: String) -> String {
    words.join(&sep)
}

#[raykit::remote]
async fn double_later(x: u64) -> u64 {
    x * 2
}

/// Sums the squares of `0..n` with nested tasks: the caller blocks in `get` inside a task.
#[raykit::remote]
fn nested_sum(n: u64) -> u64 {
    let refs: Vec<ObjectRef<u64>> = (0..n).map(square::remote).collect();
    raykit::get_all(&refs)
        .map(|v| v.into_iter().sum())
        .unwrap_or(u64::MAX)
}

/// Counts the leaves of a tree `depth` levels deep, `fanout` children per task: every inner
/// task blocks in `get_all` on its children, so the tree needs more CPUs than a small cluster
/// has unless blocked tasks lend theirs.
#[raykit::remote]
fn tree_leaves(depth: u32, fanout: u64) -> u64 {
    if depth == 0 {
        return 1;
    }
    let children: Vec<ObjectRef<u64>> = (0..fanout)
        .map(|_| tree_leaves::remote(depth - 1, fanout))
        .collect();
    raykit::get_all(&children)
        .map(|v| v.into_iter().sum())
        .unwrap_or(0)
}

/// The node running the task, after `ms` milliseconds of work.
#[raykit::remote]
fn where_am_i(ms: u64) -> String {
    std::thread::sleep(Duration::from_millis(ms));
    raykit::node_id().to_string()
}

/// One link of a chain, pinned to the head's node: adds `k` and notes the node.
#[raykit::remote(resources(alpha = 1))]
fn link_alpha(prev: (u64, Vec<String>), k: u64) -> (u64, Vec<String>) {
    let (v, mut nodes) = prev;
    nodes.push(raykit::node_id().to_string());
    (v + k, nodes)
}

/// One link of a chain, pinned to the other node.
#[raykit::remote(resources(beta = 1))]
fn link_beta(prev: (u64, Vec<String>), k: u64) -> (u64, Vec<String>) {
    let (v, mut nodes) = prev;
    nodes.push(raykit::node_id().to_string());
    (v * k, nodes)
}

#[raykit::remote]
fn explode(x: u64) -> u64 {
    if x > 0 {
        panic!("boom at {x}");
    }
    x
}

#[raykit::remote(num_gpus = 64)]
fn needs_many_gpus() -> u64 {
    1
}

#[raykit::remote]
fn slow_square(x: u64, ms: u64) -> u64 {
    std::thread::sleep(Duration::from_millis(ms));
    x * x
}

/// The length and byte sum of a big value, on the node pinned by `beta`.
#[raykit::remote(resources(beta = 1))]
fn digest_on_beta(bytes: Vec<u8>) -> (u64, u64, String) {
    let sum = bytes.iter().map(|b| u64::from(*b)).sum();
    (bytes.len() as u64, sum, raykit::node_id().to_string())
}

/// A big value made on the node pinned by `beta` (its worker writes it into that node's
/// shared memory).
#[raykit::remote(resources(beta = 1))]
fn make_on_beta(len: u64) -> Vec<u8> {
    pattern(len as usize)
}

/// The length and byte sum of a big value, on the head's node (fetched from where it was made).
#[raykit::remote(resources(alpha = 1))]
fn digest_on_alpha(bytes: Vec<u8>) -> (u64, u64) {
    (
        bytes.len() as u64,
        bytes.iter().map(|b| u64::from(*b)).sum(),
    )
}

/// Digests big values on the node pinned by `beta`: an actor's arguments take the same way
/// to its worker as a task's.
#[derive(raykit::Actor)]
#[actor(resources(beta = 1))]
struct Digester {}

#[raykit::actor]
impl Digester {
    pub fn new() -> Self {
        Digester {}
    }

    /// The length and byte sum of `bytes`, and where it ran.
    pub fn digest(&self, bytes: Vec<u8>) -> (u64, u64, String) {
        let sum = bytes.iter().map(|b| u64::from(*b)).sum();
        (bytes.len() as u64, sum, raykit::node_id().to_string())
    }

    /// Whether this worker process mapped its node's shared-memory arena.
    pub fn mapped(&self) -> bool {
        let maps = std::fs::read_to_string("/proc/self/maps").unwrap_or_default();
        maps.contains("raykit-objects")
    }
}

/// Bytes that encode as one postcard byte string (a copy) instead of one serde call per byte,
/// so that streaming many megabytes stays fast in debug builds.
#[derive(Debug, Clone, PartialEq)]
struct Blob(Vec<u8>);

impl serde::Serialize for Blob {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_bytes(&self.0)
    }
}

impl<'de> serde::Deserialize<'de> for Blob {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl serde::de::Visitor<'_> for V {
            type Value = Blob;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("bytes")
            }
            fn visit_bytes<E: serde::de::Error>(self, v: &[u8]) -> Result<Blob, E> {
                Ok(Blob(v.to_vec()))
            }
            fn visit_byte_buf<E: serde::de::Error>(self, v: Vec<u8>) -> Result<Blob, E> {
                Ok(Blob(v))
            }
        }
        d.deserialize_byte_buf(V)
    }
}

/// `len` bytes starting at `seed`, made on the head's node.
#[raykit::remote(resources(alpha = 1))]
fn produce_alpha(len: u64, seed: u64) -> Blob {
    // Whole cycles copied at a time: fast in debug builds too.
    let cycle: Vec<u8> = (0..251u64).map(|i| ((i + seed) % 251) as u8).collect();
    let mut out = Vec::with_capacity(len as usize);
    while (out.len() as u64) < len {
        let take = cycle.len().min(len as usize - out.len());
        out.extend_from_slice(&cycle[..take]);
    }
    Blob(out)
}

/// The length and the first and last bytes of a blob, on the other node.
#[raykit::remote(resources(beta = 1))]
fn consume_beta(blob: Blob) -> (u64, u8, u8) {
    let b = &blob.0;
    (
        b.len() as u64,
        b.first().copied().unwrap_or(0),
        b.last().copied().unwrap_or(0),
    )
}

/// Refs made in a worker, returned inside a value (their ids escape).
#[raykit::remote]
fn make_refs(n: u64) -> Vec<ObjectRef<u64>> {
    (0..n).map(square::remote).collect()
}

/// Whether `blob` is what `produce_alpha(len, seed)` makes.
fn produced(blob: &Blob, len: u64, seed: u64) -> bool {
    blob.0.len() as u64 == len
        && blob
            .0
            .iter()
            .enumerate()
            .step_by(4093)
            .all(|(i, b)| *b == ((i as u64 + seed) % 251) as u8)
}

/// Streams `n` blobs of `mib` MiB from the head's node to the other node, dropping each ref,
/// while holding one blob and one escaped blob; prints `streamed`, waits (bounded) for the file
/// `go` to exist, then reads what it kept.
fn free(n: u64, mib: u64, go: PathBuf) -> raykit::Result<()> {
    let len = mib << 20;
    let keep = produce_alpha::remote(len, 1000);
    let inner = produce_alpha::remote(len, 2000);
    // The put value holds a ref: its id escapes and is never freed.
    let outer = raykit::put(vec![inner.clone()]);
    drop(inner);
    let nested = make_refs::remote(3);
    let mut window = VecDeque::new();
    let mut good = 0;
    let mut check = |seed: u64, r: ObjectRef<(u64, u8, u8)>| -> raykit::Result<()> {
        let (l, first, last) = raykit::get(&r)?;
        let want_last = ((len - 1 + seed) % 251) as u8;
        if l == len && first == (seed % 251) as u8 && last == want_last {
            good += 1;
        }
        Ok(())
    };
    for i in 0..n {
        let r = produce_alpha::remote(len, i);
        window.push_back((i, consume_beta::remote(&r)));
        drop(r);
        if window.len() >= 4 {
            if let Some((seed, r)) = window.pop_front() {
                check(seed, r)?;
            }
        }
    }
    while let Some((seed, r)) = window.pop_front() {
        check(seed, r)?;
    }
    println!("streamed {good}");
    let deadline = Instant::now() + Duration::from_secs(120);
    while !go.exists() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(50));
    }
    println!("kept {}", produced(&raykit::get(&keep)?, len, 1000));
    let inners: Vec<ObjectRef<Blob>> = raykit::get(&outer)?;
    let escaped = match inners.first() {
        Some(r) => produced(&raykit::get(r)?, len, 2000),
        None => false,
    };
    println!("escaped {escaped}");
    let refs = raykit::get(&nested)?;
    println!("nested {:?}", raykit::get_all(&refs)?);
    Ok(())
}

fn pattern(len: usize) -> Vec<u8> {
    let cycle: Vec<u8> = (0..251u8).collect();
    let mut out = Vec::with_capacity(len);
    while out.len() < len {
        let take = cycle.len().min(len - out.len());
        out.extend_from_slice(&cycle[..take]);
    }
    out
}

fn basic() -> raykit::Result<()> {
    let squares: Vec<ObjectRef<u64>> = (0..20).map(square::remote).collect();
    println!("squares {:?}", raykit::get_all(&squares)?);
    let a = square::remote(7);
    let b = add::remote(&a, 1);
    let c = add::remote(a, b);
    println!("chain {}", raykit::get(&c)?);
    let (q, r) = div_mod::remote(47, 5);
    println!("div_mod {} {}", raykit::get(&q)?, raykit::get(&r)?);
    let words = raykit::put(vec!["ray".to_owned(), "kit".to_owned()]);
    println!(
        "concat {}",
        raykit::get(&concat::remote(words, "-".to_owned()))?
    );
    println!("async {}", raykit::get(&double_later::remote(21))?);
    println!("nested {}", raykit::get(&nested_sum::remote(10))?);
    let refs: Vec<ObjectRef<u64>> = (0..6).map(|i| slow_square::remote(i, 50)).collect();
    let (ready, rest) = raykit::wait(&refs, 6, Some(Duration::from_secs(30)));
    println!("wait {} {}", ready.len(), rest.len());
    Ok(())
}

/// Ends its worker process the first time (when `marker` does not exist yet), as a crash
/// would; its retry finds the marker and answers.
#[raykit::remote(max_retries = 2)]
fn crash_once(marker: String) -> u64 {
    if std::fs::metadata(&marker).is_err() {
        let _ = std::fs::write(&marker, b"crashed");
        std::process::abort();
    }
    42
}

/// Ends its worker process every time, with no retries.
#[raykit::remote(max_retries = 0)]
fn crash_always() -> u64 {
    std::process::abort()
}

/// A task whose worker dies is retried; one without retries fails with the reason.
fn crash(dir: PathBuf) -> raykit::Result<()> {
    let marker = dir.join("crash.marker").to_string_lossy().into_owned();
    println!("retried {}", raykit::get(&crash_once::remote(marker))?);
    match raykit::get(&crash_always::remote()) {
        Err(e) => println!("gave up {:?} {e}", e.kind()),
        Ok(v) => println!("gave up none {v}"),
    }
    Ok(())
}

/// Waits for a task of `ms` milliseconds; the test freezes the head meanwhile.
fn frozen(ms: u64) -> raykit::Result<()> {
    let slow = slow_square::remote(3, ms);
    // The head has the task: it answered the submission's first ping or the wait below.
    println!("waiting");
    match raykit::get(&slow) {
        Ok(v) => println!("value {v}"),
        Err(e) => println!("error {:?} {e}", e.kind()),
    }
    Ok(())
}

fn spread(n: usize) -> raykit::Result<()> {
    let refs: Vec<ObjectRef<String>> = (0..n).map(|_| where_am_i::remote(200)).collect();
    let nodes: BTreeSet<String> = raykit::get_all(&refs)?.into_iter().collect();
    println!("nodes {}", nodes.len());
    for node in nodes {
        println!("node {node}");
    }
    Ok(())
}

fn tree(depth: u32, fanout: u64) -> raykit::Result<()> {
    println!("tree {}", raykit::get(&tree_leaves::remote(depth, fanout))?);
    Ok(())
}

fn chain() -> raykit::Result<()> {
    let mut link = link_alpha::remote((1, Vec::new()), 2);
    for k in 0..3 {
        link = link_beta::remote(link, k + 2);
        link = link_alpha::remote(link, k + 1);
    }
    let (value, nodes) = raykit::get(&link)?;
    println!("value {value}");
    println!("nodes {}", nodes.join(" "));
    Ok(())
}

fn panics() -> raykit::Result<()> {
    let ok = explode::remote(0);
    let bad = explode::remote(3);
    let downstream = add::remote(&bad, 1);
    println!("ok {}", raykit::get(&ok)?);
    let e = raykit::get(&bad).expect_err("a panicking task must fail");
    println!("error {:?}: {e}", e.kind());
    let e = raykit::get(&downstream).expect_err("a task whose argument failed must fail");
    println!("downstream {:?}: {e}", e.kind());
    Ok(())
}

fn impossible() -> raykit::Result<()> {
    let start = Instant::now();
    let e = raykit::get(&needs_many_gpus::remote()).expect_err("64 GPUs must be impossible");
    println!("error {:?}: {e}", e.kind());
    println!("millis {}", start.elapsed().as_millis());
    // The cluster still runs other work.
    println!("after {}", raykit::get(&square::remote(9))?);
    Ok(())
}

fn survive(n: u64, ms: u64) -> raykit::Result<()> {
    let refs: Vec<ObjectRef<u64>> = (0..n).map(|i| slow_square::remote(i, ms)).collect();
    println!("submitted");
    let values = raykit::get_all(&refs)?;
    println!("values {values:?}");
    Ok(())
}

fn big(mib: usize) -> raykit::Result<()> {
    let len = mib << 20;
    let value = pattern(len);
    let expected_sum: u64 = value.iter().map(|b| u64::from(*b)).sum();
    let start = Instant::now();
    let r = raykit::put(value);
    let back = raykit::get(&r)?;
    println!("roundtrip {} {}", back.len() == len, back == pattern(len));
    drop(back);
    let (n, sum, node) = raykit::get(&digest_on_beta::remote(&r))?;
    println!("digest {} {}", n == len as u64, sum == expected_sum);
    println!("node {node}");
    let digester = Digester::remote();
    let (n, sum, actor_node) = raykit::get(&digester.digest(&r))?;
    println!("actor digest {} {}", n == len as u64, sum == expected_sum);
    println!("actor node {actor_node}");
    println!("actor arena {}", raykit::get(&digester.mapped())?);
    // A big result, made on the other node: got here and passed to a task on the head's node.
    let made = make_on_beta::remote(len as u64 / 4);
    let back = raykit::get(&made)?;
    println!("made {}", back == pattern(len / 4));
    drop(back);
    let (n, sum) = raykit::get(&digest_on_alpha::remote(&made))?;
    let quarter: u64 = pattern(len / 4).iter().map(|b| u64::from(*b)).sum();
    println!("made digest {} {}", n == len as u64 / 4, sum == quarter);
    println!("millis {}", start.elapsed().as_millis());
    // Whether this program mapped the head node's shared-memory arena (its large put went
    // there instead of over the connection).
    let maps = std::fs::read_to_string("/proc/self/maps").unwrap_or_default();
    println!("arena {}", maps.contains("raykit-objects"));
    Ok(())
}

/// Appends `line` to the file at `path`.
fn append(path: &str, line: &str) {
    use std::io::Write;
    let mut f = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .expect("open the marks file");
    f.write_all(line.as_bytes()).expect("write a mark");
}

/// Marks its start and end (with its worker's pid and node) in `path`; returns the pid. Pinned
/// to the node declaring `stall`, which the test stops meanwhile.
#[raykit::remote(resources(stall = 1))]
fn mark_on_stall(path: String, ms: u64) -> u32 {
    let pid = std::process::id();
    append(&path, &format!("start {pid} {}\n", raykit::node_id()));
    std::thread::sleep(Duration::from_millis(ms));
    append(&path, &format!("done {pid}\n"));
    pid
}

/// The node declaring `stall`.
#[raykit::remote(resources(stall = 1))]
fn node_on_stall() -> String {
    raykit::node_id().to_string()
}

/// A task on the `stall` node, which the test stops past the dead timeout and resumes; then
/// new tasks pinned to that node, once it has rejoined.
fn stall(path: String, ms: u64) -> raykit::Result<()> {
    match raykit::get(&mark_on_stall::remote(path, ms)) {
        Ok(pid) => println!("first value {pid}"),
        Err(e) => println!("first error {:?} {e}", e.kind()),
    }
    // While the node is dead no alive node declares `stall` (the task fails at once).
    let deadline = Instant::now() + Duration::from_secs(40);
    let node = loop {
        match raykit::get(&node_on_stall::remote()) {
            Ok(node) => break node,
            Err(e) if Instant::now() < deadline => {
                let _ = e;
                std::thread::sleep(Duration::from_millis(200));
            }
            Err(e) => return Err(e),
        }
    };
    let more: Vec<ObjectRef<String>> = (0..4).map(|_| node_on_stall::remote()).collect();
    let more = raykit::get_all(&more)?;
    println!("then node {node}");
    println!("then all {}", more.iter().all(|n| *n == node));
    Ok(())
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.first().map(String::as_str) == Some("config") {
        // Joining a cluster with an embedded node's resource settings.
        let config = raykit::Config::default()
            .num_cpus(16)
            .resource("custom", 2.0);
        return match raykit::init_with(config) {
            Ok(info) => {
                println!("joined with {:?}", info.resources());
                ExitCode::SUCCESS
            }
            Err(e) => {
                println!("refused {:?}: {e}", e.kind());
                ExitCode::FAILURE
            }
        };
    }
    if let Err(e) = raykit::init() {
        eprintln!("init failed: {e}");
        return ExitCode::from(2);
    }
    let num = |i: usize, default: u64| args.get(i).and_then(|a| a.parse().ok()).unwrap_or(default);
    let result = match args.first().map(String::as_str) {
        Some("basic") => basic(),
        Some("spread") => spread(num(1, 12) as usize),
        Some("frozen") => frozen(num(1, 30_000)),
        Some("crash") => crash(args.get(1).map(PathBuf::from).unwrap_or_default()),
        Some("chain") => chain(),
        Some("tree") => tree(num(1, 3) as u32, num(2, 3)),
        Some("panics") => panics(),
        Some("impossible") => impossible(),
        Some("survive") => survive(num(1, 6), num(2, 2000)),
        Some("big") => big(num(1, 256) as usize),
        Some("stall") => stall(args.get(1).cloned().unwrap_or_default(), num(2, 2500)),
        Some("free") => free(
            num(1, 40),
            num(2, 16),
            PathBuf::from(args.get(3).cloned().unwrap_or_default()),
        ),
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
