//! The metrics of the suite: Ray's names and units, the raykit workload and its limit.

use std::sync::OnceLock;
use std::time::Duration;

use serde_bytes::ByteBuf;
use tokio::runtime::Runtime;

use crate::harness::Rate;
use crate::limits;
use crate::workloads::{self as w, half_cpus};

/// What the workloads share: the time per measurement, the tokio runtime of the limits and the
/// large array (made on first use: 800 MiB).
#[derive(Debug)]
pub struct Ctx {
    /// Time per measurement (raykit and limit each get this much).
    pub duration: Duration,
    /// The executor of the tokio limits.
    pub rt: Runtime,
    large: OnceLock<ByteBuf>,
}

impl Ctx {
    /// A context measuring each side for `duration`.
    pub fn new(duration: Duration) -> Self {
        Ctx {
            duration,
            rt: limits::tokio_runtime(),
            large: OnceLock::new(),
        }
    }

    /// The 800 MiB array of `single_client_put_gigabytes`, filled so a copy reads real pages.
    fn large(&self) -> &ByteBuf {
        self.large.get_or_init(|| w::filled(w::LARGE_LEN))
    }
}

/// The unit of a metric.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Unit {
    /// Calls (or batches, where Ray counts batches) per second.
    PerSecond,
    /// Ray's "gigabytes" (0.8 per 100 Mi int64) per second.
    GigabytesPerSecond,
}

impl Unit {
    /// How the unit is printed.
    pub fn label(self) -> &'static str {
        match self {
            Unit::PerSecond => "/s",
            Unit::GigabytesPerSecond => "GB/s",
        }
    }
}

/// Measures the raykit workload.
type RunRaykit = fn(&Ctx) -> raykit::Result<Rate>;
/// Measures the limit.
type RunLimit = fn(&Ctx) -> Rate;

/// One metric of `ray microbenchmark`.
#[derive(Debug, Clone, Copy)]
pub struct Metric {
    /// The metric's name (Ray's printed name, lower-cased, `:`/space/`-` as `_`).
    pub name: &'static str,
    /// The name `ray microbenchmark` prints.
    pub ray_name: &'static str,
    /// Its unit.
    pub unit: Unit,
    /// What the limit measures.
    pub limit: &'static str,
    raykit: RunRaykit,
    measure_limit: RunLimit,
}

impl Metric {
    /// A metric named `name` (`ray_name` as Ray prints it), measured by `raykit` next to the
    /// limit `limit` measured by `measure_limit`.
    pub const fn new(
        name: &'static str,
        ray_name: &'static str,
        unit: Unit,
        limit: &'static str,
        raykit: RunRaykit,
        measure_limit: RunLimit,
    ) -> Self {
        Metric {
            name,
            ray_name,
            unit,
            limit,
            raykit,
            measure_limit,
        }
    }

    /// Measures the raykit workload.
    pub fn run_raykit(&self, ctx: &Ctx) -> raykit::Result<Rate> {
        (self.raykit)(ctx)
    }

    /// Measures the limit.
    pub fn run_limit(&self, ctx: &Ctx) -> Rate {
        (self.measure_limit)(ctx)
    }
}

macro_rules! metric {
    ($name:literal, $ray:literal, $unit:ident, $limit:literal, $raykit:expr, $measure_limit:expr) => {
        Metric::new($name, $ray, Unit::$unit, $limit, $raykit, $measure_limit)
    };
}

/// Every metric, in the order `ray microbenchmark` runs them.
pub const METRICS: &[Metric] = &[
    metric!(
        "single_client_get_calls",
        "single client get calls (Plasma Store)",
        PerSecond,
        "lock an Arc<Mutex> slot, copy the i64",
        |c| w::single_client_get_calls(c.duration),
        |c| limits::get_calls(c.duration)
    ),
    metric!(
        "single_client_put_calls",
        "single client put calls (Plasma Store)",
        PerSecond,
        "allocate and free an Arc<Mutex<Box<dyn Any>>> slot",
        |c| w::single_client_put_calls(c.duration),
        |c| limits::put_calls(c.duration)
    ),
    metric!(
        "multi_client_put_calls",
        "multi client put calls (Plasma Store)",
        PerSecond,
        "10 tokio tasks x 100 slot allocations",
        |c| w::multi_client_put_calls(c.duration),
        |c| limits::multi_put_calls(&c.rt, c.duration)
    ),
    metric!(
        "single_client_put_gigabytes",
        "single client put gigabytes",
        GigabytesPerSecond,
        "memcpy 800 MiB into a buffer allocated once",
        |c| w::single_client_put_gigabytes(c.duration, c.large()),
        |c| limits::put_gigabytes(c.duration, c.large())
    ),
    metric!(
        "single_client_tasks_and_get_batch",
        "single client tasks and get batch",
        PerSecond,
        "tokio spawn 1,000 + join (per batch)",
        |c| w::single_client_tasks_and_get_batch(c.duration),
        |c| limits::spawn_join(&c.rt, c.duration, 1000, 1.0)
    ),
    metric!(
        "multi_client_put_gigabytes",
        "multi client put gigabytes",
        GigabytesPerSecond,
        "100 x memcpy 80 MiB on one thread per core",
        |c| w::multi_client_put_gigabytes(c.duration),
        |c| limits::multi_put_gigabytes(c.duration, w::medium_source())
    ),
    metric!(
        "single_client_get_object_containing_10k_refs",
        "single client get object containing 10k refs",
        PerSecond,
        "clone a Vec of 10,000 Arcs",
        |c| w::single_client_get_object_containing_10k_refs(c.duration),
        |c| limits::get_object_containing_10k_refs(c.duration)
    ),
    metric!(
        "single_client_wait_1k_refs",
        "single client wait 1k refs",
        PerSecond,
        "tokio spawn 1,000, select_all one at a time",
        |c| w::single_client_wait_1k_refs(c.duration),
        |c| limits::wait_1k(&c.rt, c.duration)
    ),
    metric!(
        "single_client_tasks_sync",
        "single client tasks sync",
        PerSecond,
        "tokio spawn + join, one at a time",
        |c| w::single_client_tasks_sync(c.duration),
        |c| limits::spawn_join(&c.rt, c.duration, 1, 1.0)
    ),
    metric!(
        "single_client_tasks_async",
        "single client tasks async",
        PerSecond,
        "tokio spawn 1,000 + join",
        |c| w::single_client_tasks_async(c.duration),
        |c| limits::spawn_join(&c.rt, c.duration, 1000, 1000.0)
    ),
    metric!(
        "multi_client_tasks_async",
        "multi client tasks async",
        PerSecond,
        "4 tokio tasks x spawn 10,000 + join",
        |c| w::multi_client_tasks_async(c.duration),
        |c| limits::multi_spawn_join(&c.rt, c.duration)
    ),
    metric!(
        "1_1_actor_calls_sync",
        "1:1 actor calls sync",
        PerSecond,
        "tokio mpsc send + oneshot reply, one at a time",
        |c| w::actor_calls_sync_1_1(c.duration),
        |c| limits::actor_sync(&c.rt, c.duration)
    ),
    metric!(
        "1_1_actor_calls_async",
        "1:1 actor calls async",
        PerSecond,
        "tokio mpsc 1,000 sends + oneshot replies",
        |c| w::actor_calls_async_1_1(c.duration),
        |c| limits::actor_async(&c.rt, c.duration)
    ),
    metric!(
        "1_1_actor_calls_concurrent",
        "1:1 actor calls concurrent",
        PerSecond,
        "tokio mpsc 1,000 sends + oneshot replies",
        |c| w::actor_calls_concurrent_1_1(c.duration),
        |c| limits::actor_async(&c.rt, c.duration)
    ),
    metric!(
        "1_n_actor_calls_async",
        "1:n actor calls async",
        PerSecond,
        "a tokio task calling n mpsc actors",
        |c| w::actor_calls_async_1_n(c.duration),
        |c| limits::actor_async_1_n(&c.rt, c.duration, half_cpus(), 5000)
    ),
    metric!(
        "n_n_actor_calls_async",
        "n:n actor calls async",
        PerSecond,
        "4 tokio tasks calling n mpsc actors",
        |c| w::actor_calls_async_n_n(c.duration),
        |c| limits::actor_async_n_n(&c.rt, c.duration, half_cpus(), 4, 5000)
    ),
    metric!(
        "n_n_actor_calls_with_arg_async",
        "n:n actor calls with arg async",
        PerSecond,
        "n tokio tasks, each calling its mpsc actor with an arg",
        |c| w::actor_calls_with_arg_async_n_n(c.duration),
        |c| limits::actor_with_arg_n_n(&c.rt, c.duration, half_cpus(), 1000)
    ),
    metric!(
        "1_1_async_actor_calls_sync",
        "1:1 async-actor calls sync",
        PerSecond,
        "tokio mpsc send + oneshot reply, one at a time",
        |c| w::async_actor_calls_sync_1_1(c.duration),
        |c| limits::actor_sync(&c.rt, c.duration)
    ),
    metric!(
        "1_1_async_actor_calls_async",
        "1:1 async-actor calls async",
        PerSecond,
        "tokio mpsc 1,000 sends + oneshot replies",
        |c| w::async_actor_calls_async_1_1(c.duration),
        |c| limits::actor_async(&c.rt, c.duration)
    ),
    metric!(
        "1_1_async_actor_calls_with_args_async",
        "1:1 async-actor calls with args async",
        PerSecond,
        "tokio mpsc 1,000 sends + oneshot replies",
        |c| w::async_actor_calls_with_args_async_1_1(c.duration),
        |c| limits::actor_async(&c.rt, c.duration)
    ),
    metric!(
        "1_n_async_actor_calls_async",
        "1:n async-actor calls async",
        PerSecond,
        "a tokio task calling n mpsc actors",
        |c| w::async_actor_calls_async_1_n(c.duration),
        |c| limits::actor_async_1_n(&c.rt, c.duration, half_cpus(), 5000)
    ),
    metric!(
        "n_n_async_actor_calls_async",
        "n:n async-actor calls async",
        PerSecond,
        "4 tokio tasks calling n mpsc actors",
        |c| w::async_actor_calls_async_n_n(c.duration),
        |c| limits::actor_async_n_n(&c.rt, c.duration, half_cpus(), 4, 5000)
    ),
];

/// Ray's printed metric name in the suite's spelling: lower case, `:`, spaces and `-` as `_`,
/// the `(Plasma Store)` suffix dropped.
pub fn normalize_ray_name(ray_name: &str) -> String {
    let base = ray_name.trim().trim_end_matches("(Plasma Store)").trim();
    base.chars()
        .map(|c| match c {
            ':' | ' ' | '-' => '_',
            c => c.to_ascii_lowercase(),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_follow_rays_printed_names() {
        for m in METRICS {
            assert_eq!(normalize_ray_name(m.ray_name), m.name);
        }
    }

    #[test]
    fn names_are_unique() {
        let mut names: Vec<_> = METRICS.iter().map(|m| m.name).collect();
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), METRICS.len());
    }
}
