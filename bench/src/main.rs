//! `raykit-bench`: every workload of Ray's `ray microbenchmark`, run on raykit's embedded
//! runtime under Ray's metric names and units, each next to its limit (the same workload on
//! plain tokio, or memcpy), plus the Rust actor frameworks (feature `peers`) and a scale
//! envelope (`--envelope`).
//!
//! ```text
//! cargo run --release -p raykit-bench                          # the table
//! cargo run --release -p raykit-bench -- --json                # machine-readable
//! cargo run --release -p raykit-bench -- --filter actor --duration 1
//! cargo run --release -p raykit-bench -- --envelope            # the scale envelope only
//! cargo run --release -p raykit-bench --features peers         # with kameo, actix, ractor
//! cargo run --release -p raykit-bench -- --address 127.0.0.1:6380   # against a cluster
//! ```
//!
//! Progress goes to stderr, one line per metric; the report goes to stdout.

mod cluster;
mod envelope;
mod harness;
mod limits;
#[cfg(feature = "peers")]
mod peers;
mod report;
mod suite;
mod workloads;

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::Parser;

use report::{fmt_rate, Report, Row};
use suite::{Ctx, METRICS};

/// Ray's `ray microbenchmark` on raykit, with the limits, the Rust peers and the scale envelope.
#[derive(Debug, Parser)]
#[command(name = "raykit-bench", version)]
struct Args {
    /// Run against the cluster at HOST:PORT instead of the embedded runtime.
    #[arg(long, value_name = "HOST:PORT")]
    address: Option<String>,
    /// Print the report as JSON (progress still goes to stderr).
    #[arg(long)]
    json: bool,
    /// Only the metrics whose name contains SUBSTR.
    #[arg(long, value_name = "SUBSTR")]
    filter: Option<String>,
    /// Seconds per measurement (each of raykit, its limit and each peer gets this much; Ray's
    /// timeit takes about 19 s per metric).
    #[arg(long, value_name = "SECS", default_value_t = 2.0)]
    duration: f64,
    /// Measure each figure N times and keep the fastest (other load on the machine only ever
    /// slows a run down).
    #[arg(long, value_name = "N", default_value_t = 1)]
    repeat: u32,
    /// Run the scale envelope (and no metric unless --filter is also given).
    #[arg(long)]
    envelope: bool,
    /// Measure raykit only: no limits, no peers (to profile raykit).
    #[arg(long)]
    raykit_only: bool,
    /// List the metric names and exit.
    #[arg(long)]
    list: bool,
    /// Ray's figures for the "Ray" column and the targets: a JSON object of metric name to
    /// rate, in this suite's or Ray's spelling (compare_with_ray.sh writes one). Default: Ray
    /// 2.60 figures for this kind of 2-core machine (docs/PERFORMANCE.md).
    #[arg(long, value_name = "FILE")]
    ray_json: Option<PathBuf>,
    /// Internal: run one envelope item in this process and print its JSON row.
    #[arg(long, hide = true)]
    envelope_item: Option<usize>,
}

fn main() -> ExitCode {
    let args = Args::parse();
    if args.address.is_some() && args.envelope {
        eprintln!("error: the scale envelope measures the embedded runtime: drop --address");
        return ExitCode::from(2);
    }
    if let Some(index) = args.envelope_item {
        let row = envelope::run_item(index);
        println!(
            "{}",
            serde_json::to_string(&row).expect("an envelope row serializes")
        );
        return ExitCode::SUCCESS;
    }
    if args.list {
        for m in METRICS {
            println!("{}", m.name);
        }
        return ExitCode::SUCCESS;
    }
    if !(args.duration.is_finite() && args.duration > 0.0) {
        eprintln!("error: --duration must be a positive number of seconds");
        return ExitCode::from(2);
    }
    let ray = match load_ray_figures(args.ray_json.as_deref()) {
        Ok(r) => r,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::from(2);
        }
    };
    let run_metrics = !args.envelope || args.filter.is_some();
    let cluster_metrics = match args.address {
        Some(_) => cluster::CLUSTER_METRICS,
        None => &[],
    };
    let selected: Vec<_> = METRICS
        .iter()
        .chain(cluster_metrics)
        .filter(|m| args.filter.as_deref().is_none_or(|f| m.name.contains(f)))
        .filter(|_| run_metrics)
        .collect();
    if run_metrics && selected.is_empty() {
        eprintln!("error: no metric matches --filter (see --list)");
        return ExitCode::from(2);
    }

    let mut report = Report {
        machine: machine(&args),
        ..Report::default()
    };
    if run_metrics {
        let config = match &args.address {
            Some(address) => raykit::Config::default().address(address),
            None => raykit::Config::default(),
        };
        if let Err(e) = raykit::init_with(config) {
            eprintln!("error: cannot start raykit: {e}");
            return ExitCode::FAILURE;
        }
        let ctx = Ctx::new(Duration::from_secs_f64(args.duration));
        for (i, m) in selected.iter().enumerate() {
            eprint!("[{:>2}/{}] {:<46} ", i + 1, selected.len(), m.name);
            let repeat = args.repeat.max(1);
            let (limit_kind, cluster_limit) = match &args.address {
                Some(_) => {
                    let (kind, f) = cluster::limit_for(m);
                    (kind, Some(f))
                }
                None => (m.limit, None),
            };
            let measured = harness::best_of(repeat, || m.run_raykit(&ctx)).map(|raykit| {
                let limit = if args.raykit_only {
                    harness::Rate {
                        mean: f64::NAN,
                        sd: f64::NAN,
                    }
                } else {
                    harness::best_of(repeat, || {
                        Ok::<_, std::convert::Infallible>(match cluster_limit {
                            Some(f) => f(ctx.duration),
                            None => m.run_limit(&ctx),
                        })
                    })
                    .unwrap_or_else(|never| match never {})
                };
                (raykit, limit)
            });
            match measured {
                Ok((raykit, limit)) => {
                    let ray_rate = ray.get(m.name).copied();
                    let row = Row {
                        name: m.name.to_owned(),
                        ray_name: m.ray_name.to_owned(),
                        unit: m.unit.label().to_owned(),
                        raykit,
                        limit,
                        limit_kind: limit_kind.to_owned(),
                        fraction_of_limit: raykit.mean / limit.mean,
                        ray: ray_rate,
                        vs_ray: ray_rate.map(|r| raykit.mean / r),
                    };
                    eprintln!(
                        "{:>14} {:<4} limit {:>14}  ({:.1}% of limit)",
                        fmt_rate(raykit.mean),
                        row.unit,
                        fmt_rate(limit.mean),
                        100.0 * row.fraction_of_limit
                    );
                    report.metrics.push(row);
                }
                Err(e) => {
                    eprintln!("FAILED: {e}");
                    report.failed.push((m.name.to_owned(), e.to_string()));
                }
            }
        }
        #[cfg(feature = "peers")]
        if !args.raykit_only && args.address.is_none() {
            let wanted = |n: &str| args.filter.as_deref().is_none_or(|f| n.contains(f));
            report.peers = peers::run_all(ctx.duration, args.repeat.max(1), &wanted);
        }
    }
    if args.envelope {
        report.envelope = envelope::run_all(|i, row| {
            eprintln!(
                "[envelope {}/{}] {:<40} {} in {:.2} s, peak RSS {}",
                i + 1,
                envelope::ITEMS.len(),
                row.name,
                if row.ok { "done" } else { "FAILED" },
                row.seconds,
                row.peak_rss_kib.map_or("?".into(), report::fmt_kib)
            );
        });
    }
    report.targets = match &args.address {
        Some(_) => report::cluster_targets(&report, &|n| ray.get(n).copied()),
        None => report::targets(&report, &|n| ray.get(n).copied()),
    };
    if args.json {
        println!(
            "{}",
            serde_json::to_string_pretty(&report).expect("the report serializes")
        );
    } else {
        print!("{}", report.table());
    }
    let failed = !report.failed.is_empty() || report.envelope.iter().any(|e| !e.ok);
    if failed {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    }
}

/// Ray's figures: from `path` (a JSON object of metric name to rate), or the built-in reference.
fn load_ray_figures(path: Option<&std::path::Path>) -> Result<BTreeMap<String, f64>, String> {
    match path {
        None => Ok(report::RAY_REFERENCE
            .iter()
            .map(|&(n, v)| (n.to_owned(), v))
            .collect()),
        Some(p) => {
            let text = std::fs::read_to_string(p)
                .map_err(|e| format!("cannot read --ray-json {}: {e}", p.display()))?;
            let figures: BTreeMap<String, f64> = serde_json::from_str(&text).map_err(|e| {
                format!(
                    "--ray-json {}: expected a JSON object of metric name to number: {e}",
                    p.display()
                )
            })?;
            // Ray's printed names ("1:1 actor calls sync") are accepted too.
            Ok(figures
                .into_iter()
                .map(|(n, v)| (suite::normalize_ray_name(&n), v))
                .collect())
        }
    }
}

/// What the run ran on.
fn machine(args: &Args) -> BTreeMap<String, String> {
    let mut m = BTreeMap::new();
    let cpus = std::thread::available_parallelism().map_or(0, |n| n.get());
    m.insert("cpus".into(), cpus.to_string());
    if let Some(model) = std::fs::read_to_string("/proc/cpuinfo").ok().and_then(|s| {
        s.lines()
            .find_map(|l| l.strip_prefix("model name"))
            .map(|r| r.trim_start_matches([' ', '\t', ':']).to_owned())
    }) {
        m.insert("cpu".into(), model);
    }
    if let Ok(load) = std::fs::read_to_string("/proc/loadavg") {
        let first: Vec<&str> = load.split_whitespace().take(3).collect();
        m.insert("load average at start".into(), first.join(" "));
    }
    let runtime = match &args.address {
        Some(a) => format!("raykit cluster at {a} (this program is a driver)"),
        None => "raykit embedded".into(),
    };
    m.insert("runtime".into(), runtime);
    m.insert(
        "build".into(),
        if cfg!(debug_assertions) {
            "debug (numbers are not meaningful: use --release)".into()
        } else {
            "release".into()
        },
    );
    m.insert("seconds per measurement".into(), args.duration.to_string());
    m.insert(
        "measurements per figure (best kept)".into(),
        args.repeat.max(1).to_string(),
    );
    m
}
