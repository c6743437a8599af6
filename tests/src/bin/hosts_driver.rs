//! A driver program for the several-hosts tests (`tests/tests/cluster_hosts.rs`), written
//! against the public API only. The cluster's head declares the custom resource `alpha`, one
//! node `beta` and another `gamma`, so a scenario can pin work to each host. It prints one
//! line per check; the test reads them.

use std::process::ExitCode;
use std::time::Duration;

use raykit::{ActorHandle, ObjectRef};
use raykit_tests::Blob;

/// A value large enough to stay in the store of the node that made it (not inline).
const BIG: usize = 1 << 20;

/// How long the `cut` scenario waits for an answer before it reports one as pending.
const LIMIT: Duration = Duration::from_secs(90);

fn sum(b: &Blob) -> u64 {
    b.0.iter().map(|&x| u64::from(x)).sum()
}

/// Makes a big value on the head's host.
#[raykit::remote(resources(alpha = 1))]
fn make_on_alpha(fill: u8) -> Blob {
    Blob(vec![fill; BIG])
}

/// Makes a big value on the `gamma` host.
#[raykit::remote(resources(gamma = 1))]
fn make_on_gamma(fill: u8) -> Blob {
    Blob(vec![fill; BIG])
}

/// Reads a value on the `beta` host: its length, byte sum and where it ran.
#[raykit::remote(resources(beta = 1))]
fn digest_on_beta(b: Blob) -> (u64, u64, String) {
    (b.0.len() as u64, sum(&b), raykit::node_id().to_string())
}

/// Reads a value on the `gamma` host.
#[raykit::remote(resources(gamma = 1))]
fn digest_on_gamma(b: Blob) -> (u64, u64, String) {
    (b.0.len() as u64, sum(&b), raykit::node_id().to_string())
}

/// Gets refs passed inside a value, on the `beta` host.
#[raykit::remote(resources(beta = 1))]
fn sum_refs_on_beta(refs: Vec<ObjectRef<Blob>>) -> u64 {
    raykit::get_all(&refs)
        .map(|bs| bs.iter().map(sum).sum())
        .unwrap_or(u64::MAX)
}

/// Where an unpinned task ran, and its answer.
#[raykit::remote(max_retries = 5)]
fn square_where(x: u64) -> (u64, String) {
    std::thread::sleep(Duration::from_millis(200));
    (x * x, raykit::node_id().to_string())
}

/// A counter that says where it lives.
#[derive(raykit::Actor)]
#[actor(num_cpus = 0)]
struct Tally {
    total: u64,
}

#[raykit::actor]
impl Tally {
    pub fn new(start: u64) -> Self {
        Tally { total: start }
    }
    pub fn add(&mut self, by: u64) -> u64 {
        self.total += by;
        self.total
    }
    pub fn node(&self) -> String {
        raykit::node_id().to_string()
    }
}

/// Calls an actor from the `beta` host.
#[raykit::remote(resources(beta = 1))]
fn call_from_beta(t: ActorHandle<Tally>, by: u64) -> u64 {
    raykit::get(&t.add(by)).unwrap_or(u64::MAX)
}

/// Puts, task outputs, refs and actor calls across the three hosts.
fn across() -> raykit::Result<()> {
    println!("driver {}", raykit::node_id());
    let put = raykit::put(Blob(vec![3; BIG]));
    let (len, s, on) = raykit::get(&digest_on_beta::remote(&put))?;
    println!("put read on beta {len} {s} {on}");
    let made = make_on_alpha::remote(5);
    let (len, s, on) = raykit::get(&digest_on_gamma::remote(&made))?;
    println!("alpha output read on gamma {len} {s} {on}");
    println!("alpha output read by driver {}", sum(&raykit::get(&made)?));
    let refs = vec![put.clone(), made.clone(), make_on_gamma::remote(7)];
    println!(
        "refs summed on beta {}",
        raykit::get(&sum_refs_on_beta::remote(refs))?
    );
    let tally = Tally::options(raykit::ActorOptions::new().resource("gamma", 1)).remote(10);
    println!("actor on {}", raykit::get(&tally.node())?);
    println!("actor from driver {}", raykit::get(&tally.add(1))?);
    println!(
        "actor from beta {}",
        raykit::get(&call_from_beta::remote(tally.clone(), 100))?
    );
    println!(
        "beta node {}",
        raykit::get(&digest_on_beta::remote(Blob(vec![]))).map(|r| r.2)?
    );
    Ok(())
}

/// Makes a value on `gamma`, waits for the test to cut gamma's link (the file `argv[1]`
/// appears), then reads that value and runs unpinned tasks, printing each outcome.
fn cut(marker: &str) -> raykit::Result<()> {
    let on_gamma = make_on_gamma::remote(9);
    let (_, _, gamma) = raykit::get(&digest_on_gamma::remote(Blob(vec![])))?;
    raykit::wait(
        std::slice::from_ref(&on_gamma),
        1,
        Some(Duration::from_secs(60)),
    );
    println!("made on {gamma}");
    println!("ready");
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    while std::fs::metadata(marker).is_err() {
        if std::time::Instant::now() > deadline {
            return Err(raykit::Error::new(
                raykit::ErrorKind::Config,
                "the link was never cut",
            ));
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let refs: Vec<_> = (0..8).map(square_where::remote).collect();
    let (_, pending) = raykit::wait(&refs, refs.len(), Some(LIMIT));
    if !pending.is_empty() {
        println!("unpinned pending {}", pending.len());
    }
    match raykit::get_all(&refs) {
        Ok(v) => {
            let answers: Vec<u64> = v.iter().map(|r| r.0).collect();
            let gone = v.iter().filter(|r| r.1 == gamma).count();
            println!("unpinned {answers:?} on the cut host {gone}");
        }
        Err(e) => println!("unpinned error {:?} {e}", e.kind()),
    }
    let (_, pending) = raykit::wait(std::slice::from_ref(&on_gamma), 1, Some(LIMIT));
    if !pending.is_empty() {
        println!("gamma value pending");
        return Ok(());
    }
    match raykit::get(&on_gamma) {
        Ok(b) => println!("gamma value {}", sum(&b)),
        Err(e) => println!("gamma value error {:?}", e.kind()),
    }
    Ok(())
}

/// Unpinned tasks: their answers.
fn unpinned() -> raykit::Result<()> {
    let refs: Vec<_> = (0..8).map(square_where::remote).collect();
    let answers: Vec<u64> = raykit::get_all(&refs)?.into_iter().map(|r| r.0).collect();
    println!("unpinned {answers:?}");
    Ok(())
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let result = match args.first().map(String::as_str) {
        Some("across") => across(),
        Some("unpinned") => unpinned(),
        Some("cut") => cut(args.get(1).map_or("", String::as_str)),
        other => {
            eprintln!("unknown scenario {other:?}");
            return ExitCode::from(2);
        }
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}
