//! Seed 000's closing remark on actors, made concrete: "to shard the service so as to improve
//! throughput, simply instantiate the actor class multiple times". A key-value store is split
//! over several actor instances by key hash; clients send batches of writes and reads to the
//! shard that owns each key, and the shards work in parallel.

use std::collections::HashMap;
use std::time::Instant;

use raykit::{ActorHandle, ObjectRef};
use raykit_examples::{arg, header, print_wall_time, timed};

/// One shard of the key-value store.
#[derive(raykit::Actor)]
struct Shard {
    data: HashMap<u64, u64>,
}

#[raykit::actor]
impl Shard {
    /// An empty shard.
    pub fn new() -> Self {
        Shard {
            data: HashMap::new(),
        }
    }

    /// Adds `value` to each key of the batch (a little work per key, as a real service does).
    pub fn add_batch(&mut self, keys: Vec<u64>, value: u64) -> usize {
        for k in &keys {
            let v = self.data.entry(*k).or_insert(0);
            *v = v.wrapping_add(mix(value ^ *k));
        }
        keys.len()
    }

    /// The sum of every value, for checking.
    pub fn checksum(&self) -> u64 {
        self.data.values().fold(0u64, |a, v| a.wrapping_add(*v))
    }
}

/// A few hundred cycles of hashing per key, standing in for real work.
fn mix(mut x: u64) -> u64 {
    for _ in 0..64 {
        x ^= x >> 33;
        x = x.wrapping_mul(0xff51_afd7_ed55_8ccd);
    }
    x
}

/// Sends every batch to the shards and returns the combined checksum.
fn run(shards: &[ActorHandle<Shard>], batches: u64, per_batch: u64) -> raykit::Result<u64> {
    let n = shards.len() as u64;
    let mut acks: Vec<ObjectRef<usize>> = Vec::new();
    for b in 0..batches {
        let mut by_shard: Vec<Vec<u64>> = vec![Vec::new(); shards.len()];
        for k in b * per_batch..(b + 1) * per_batch {
            by_shard[(mix(k) % n) as usize].push(k);
        }
        for (shard, keys) in shards.iter().zip(by_shard) {
            acks.push(shard.add_batch(keys, b));
        }
    }
    raykit::get_all(&acks)?;
    let sums: Vec<ObjectRef<u64>> = shards.iter().map(|s| s.checksum()).collect();
    Ok(raykit::get_all(&sums)?
        .into_iter()
        .fold(0u64, |a, v| a.wrapping_add(v)))
}

fn main() -> raykit::Result<()> {
    let start = Instant::now();
    header("sharded");
    raykit::init()?;
    let batches: u64 = arg("batches").unwrap_or(200);
    let per_batch = 500;
    let cores = std::thread::available_parallelism().map_or(2, |n| n.get());

    let one: Vec<ActorHandle<Shard>> = vec![Shard::remote()];
    let (sum_one, t_one) = timed(|| run(&one, batches, per_batch));
    let many: Vec<ActorHandle<Shard>> = (0..cores.max(2)).map(|_| Shard::remote()).collect();
    let (sum_many, t_many) = timed(|| run(&many, batches, per_batch));
    let (sum_one, sum_many) = (sum_one?, sum_many?);

    let keys = batches * per_batch;
    println!(
        "1 shard:   {keys} updates in {:.2} s ({:.0}/s)",
        t_one.as_secs_f64(),
        keys as f64 / t_one.as_secs_f64()
    );
    println!(
        "{} shards:  {keys} updates in {:.2} s ({:.0}/s)",
        many.len(),
        t_many.as_secs_f64(),
        keys as f64 / t_many.as_secs_f64()
    );
    println!("checksums agree: {}", sum_one == sum_many);
    print_wall_time(start);
    Ok(())
}
