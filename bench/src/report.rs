//! What a run prints: the table (raykit, its limit, the fraction, Ray), the peers, the scale
//! envelope and the targets; or all of it as JSON.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use serde::Serialize;

use crate::harness::Rate;

/// Ray's figures where a run has none of its own (`--ray-json`): Ray 2.60 on a 2-core machine of
/// this kind, for each metric the highest of the project's reference figures (five metrics, a
/// quiet machine) and of two runs of `bench/compare_with_ray.sh` here (a busy machine): the
/// hardest figure to beat. See docs/PERFORMANCE.md.
pub const RAY_REFERENCE: &[(&str, f64)] = &[
    ("single_client_get_calls", 13_473.0),
    ("single_client_put_calls", 2_011.0),
    ("multi_client_put_calls", 748.46),
    ("single_client_put_gigabytes", 5.87),
    ("single_client_tasks_and_get_batch", 1.29),
    ("multi_client_put_gigabytes", 7.6),
    ("single_client_get_object_containing_10k_refs", 8.16),
    ("single_client_wait_1k_refs", 0.83),
    ("single_client_tasks_sync", 616.0),
    ("single_client_tasks_async", 1_946.0),
    ("multi_client_tasks_async", 1_212.38),
    ("1_1_actor_calls_sync", 880.02),
    ("1_1_actor_calls_async", 2_902.9),
    ("1_1_actor_calls_concurrent", 3_237.29),
    ("1_n_actor_calls_async", 2_669.85),
    ("n_n_actor_calls_async", 2_724.03),
    ("n_n_actor_calls_with_arg_async", 860.76),
    ("1_1_async_actor_calls_sync", 577.2),
    ("1_1_async_actor_calls_async", 1_603.08),
    ("1_1_async_actor_calls_with_args_async", 1_386.38),
    ("1_n_async_actor_calls_async", 1_383.08),
    ("n_n_async_actor_calls_async", 1_312.93),
];

/// One measured metric.
#[derive(Debug, Clone, Serialize)]
pub struct Row {
    /// The metric's name.
    pub name: String,
    /// The name `ray microbenchmark` prints for it.
    pub ray_name: String,
    /// Its unit (`/s` or `GB/s`).
    pub unit: String,
    /// raykit's rate.
    pub raykit: Rate,
    /// The limit's rate.
    pub limit: Rate,
    /// What the limit measures.
    pub limit_kind: String,
    /// raykit as a fraction of its limit.
    pub fraction_of_limit: f64,
    /// Ray's rate, when known.
    pub ray: Option<f64>,
    /// raykit divided by Ray, when Ray's rate is known.
    pub vs_ray: Option<f64>,
}

/// One peer framework's figure.
#[derive(Debug, Clone, Serialize)]
pub struct PeerRow {
    /// The framework (`kameo`, `actix`, `ractor`).
    pub framework: String,
    /// The metric (`1_1_actor_calls_sync` or `1_1_actor_calls_async`).
    pub metric: String,
    /// Its rate, or why it could not be measured.
    pub rate: Result<Rate, String>,
}

/// One item of the scale envelope.
#[derive(Debug, Clone, Serialize, serde::Deserialize)]
pub struct EnvelopeRow {
    /// What was run.
    pub name: String,
    /// Whether it completed.
    pub ok: bool,
    /// Wall time in seconds.
    pub seconds: f64,
    /// Peak resident memory of the process that ran it (`VmHWM`), KiB.
    pub peak_rss_kib: Option<u64>,
    /// Resident memory of that process before the item started, KiB.
    pub start_rss_kib: Option<u64>,
    /// Details (counts, or the error).
    pub detail: String,
}

/// A target of the issue and whether this run met it.
#[derive(Debug, Clone, Serialize)]
pub struct Target {
    /// What is required.
    pub what: String,
    /// What was measured.
    pub measured: String,
    /// Met, missed, or not measured in this run (`None`).
    pub met: Option<bool>,
}

/// Everything a run measured.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Report {
    /// The machine and the settings.
    pub machine: BTreeMap<String, String>,
    /// The metrics.
    pub metrics: Vec<Row>,
    /// Metrics that failed, with their error.
    pub failed: Vec<(String, String)>,
    /// The peer frameworks.
    pub peers: Vec<PeerRow>,
    /// The scale envelope.
    pub envelope: Vec<EnvelopeRow>,
    /// The targets.
    pub targets: Vec<Target>,
}

/// A rate with thousands separators, or three significant digits below 100.
pub fn fmt_rate(x: f64) -> String {
    if !x.is_finite() {
        "-".into()
    } else if x.abs() >= 100.0 {
        let s = format!("{:.0}", x);
        let (sign, digits) = s.split_at(if s.starts_with('-') { 1 } else { 0 });
        let mut out = String::new();
        for (i, c) in digits.chars().enumerate() {
            if i > 0 && (digits.len() - i) % 3 == 0 {
                out.push(',');
            }
            out.push(c);
        }
        format!("{sign}{out}")
    } else if x.abs() >= 10.0 {
        format!("{x:.1}")
    } else {
        format!("{x:.2}")
    }
}

/// A ratio: `0.42` as `42%` below 1, `3.1x` or `1,234x` above.
fn fmt_ratio(x: f64) -> String {
    if !x.is_finite() {
        "-".into()
    } else if x < 1.0 {
        format!("{:.0}%", x * 100.0)
    } else {
        format!("{}x", fmt_rate(x))
    }
}

impl Report {
    /// The human-readable report.
    pub fn table(&self) -> String {
        let mut s = String::new();
        let _ = writeln!(s, "machine:");
        for (k, v) in &self.machine {
            let _ = writeln!(s, "  {k}: {v}");
        }
        if !self.metrics.is_empty() {
            let _ = writeln!(
                s,
                "\n{:<46} {:>16} {:>5} {:>14} {:>8} {:>10} {:>9}  limit",
                "metric", "raykit", "unit", "limit", "of limit", "Ray", "vs Ray"
            );
            for r in &self.metrics {
                let _ = writeln!(
                    s,
                    "{:<46} {:>16} {:>5} {:>14} {:>8} {:>10} {:>9}  {}",
                    r.name,
                    format!("{} ±{:.0}%", fmt_rate(r.raykit.mean), pct(r.raykit)),
                    r.unit,
                    fmt_rate(r.limit.mean),
                    fmt_ratio(r.fraction_of_limit),
                    r.ray.map_or("-".into(), fmt_rate),
                    r.vs_ray.map_or("-".into(), fmt_ratio),
                    r.limit_kind
                );
            }
        }
        for (name, e) in &self.failed {
            let _ = writeln!(s, "FAILED {name}: {e}");
        }
        if !self.peers.is_empty() {
            let _ = writeln!(s, "\npeers (same run):");
            for p in &self.peers {
                let v = match &p.rate {
                    Ok(r) => format!("{} /s ±{:.0}%", fmt_rate(r.mean), pct(*r)),
                    Err(e) => format!("skipped: {e}"),
                };
                let _ = writeln!(s, "  {:<8} {:<24} {}", p.framework, p.metric, v);
            }
        }
        if !self.envelope.is_empty() {
            let _ = writeln!(s, "\nscale envelope (each item in its own process):");
            for e in &self.envelope {
                let _ = writeln!(
                    s,
                    "  {:<44} {:>4} {:>9.2} s  peak RSS {:>9}  (at start {})  {}",
                    e.name,
                    if e.ok { "ok" } else { "FAIL" },
                    e.seconds,
                    e.peak_rss_kib.map_or("?".into(), fmt_kib),
                    e.start_rss_kib.map_or("?".into(), fmt_kib),
                    e.detail
                );
            }
        }
        if !self.targets.is_empty() {
            let _ = writeln!(s, "\ntargets:");
            for t in &self.targets {
                let mark = match t.met {
                    Some(true) => "met   ",
                    Some(false) => "MISSED",
                    None => "n/a   ",
                };
                let _ = writeln!(s, "  {mark} {}: {}", t.what, t.measured);
            }
        }
        s
    }
}

fn pct(r: Rate) -> f64 {
    if r.mean > 0.0 {
        100.0 * r.sd / r.mean
    } else {
        0.0
    }
}

/// KiB as MiB.
pub fn fmt_kib(kib: u64) -> String {
    format!("{:.0} MiB", kib as f64 / 1024.0)
}

/// Builds the targets of the issue from what this run measured. `ray` gives Ray's figure of a
/// metric when known.
pub fn targets(report: &Report, ray: &dyn Fn(&str) -> Option<f64>) -> Vec<Target> {
    let metric = |n: &str| report.metrics.iter().find(|r| r.name == n);
    let mut out = Vec::new();
    let mut vs_ray = |name: &str, factor: f64| out.extend(vs_ray(report, ray, name, factor));
    vs_ray("single_client_tasks_async", 200.0);
    vs_ray("single_client_tasks_sync", 100.0);
    vs_ray("1_1_actor_calls_async", 200.0);
    if let Some(r) = metric("single_client_tasks_async") {
        out.push(Target {
            what: "single_client_tasks_async within 5x of tokio spawn + join".into(),
            measured: format!(
                "{} /s vs {} /s: {:.1}x slower",
                fmt_rate(r.raykit.mean),
                fmt_rate(r.limit.mean),
                r.limit.mean / r.raykit.mean
            ),
            met: Some(r.raykit.mean * 5.0 >= r.limit.mean),
        });
    }
    if let Some(r) = metric("1_1_actor_calls_async") {
        let best = report
            .peers
            .iter()
            .filter(|p| p.metric == "1_1_actor_calls_async")
            .filter_map(|p| p.rate.as_ref().ok().map(|x| (p.framework.clone(), x.mean)))
            .max_by(|a, b| a.1.total_cmp(&b.1));
        out.push(match best {
            Some((name, best)) => Target {
                what: "1_1_actor_calls_async >= the best of kameo, actix, ractor".into(),
                measured: format!(
                    "{} /s vs {name} {} /s",
                    fmt_rate(r.raykit.mean),
                    fmt_rate(best)
                ),
                met: Some(r.raykit.mean >= best),
            },
            None => Target {
                what: "1_1_actor_calls_async >= the best of kameo, actix, ractor".into(),
                measured: "peers not run (build with --features peers)".into(),
                met: None,
            },
        });
    }
    if let Some(e) = report
        .envelope
        .iter()
        .find(|e| e.name.contains("1,000,000"))
    {
        out.push(Target {
            what: "1,000,000 queued tasks complete with peak RSS < 1 GiB".into(),
            measured: format!(
                "{} in {:.2} s, peak RSS {}",
                if e.ok { "completed" } else { "FAILED" },
                e.seconds,
                e.peak_rss_kib.map_or("?".into(), fmt_kib)
            ),
            met: Some(e.ok && e.peak_rss_kib.is_some_and(|k| k < 1024 * 1024)),
        });
    }
    out
}

/// "`name` >= `factor`x Ray", when `name` was measured.
fn vs_ray(
    report: &Report,
    ray: &dyn Fn(&str) -> Option<f64>,
    name: &str,
    factor: f64,
) -> Option<Target> {
    let r = report.metrics.iter().find(|r| r.name == name)?;
    let what = format!("{name} >= {factor}x Ray");
    let unit = &r.unit;
    Some(match ray(name) {
        Some(base) => Target {
            what,
            measured: format!(
                "{} {unit} = {:.1}x Ray's {} {unit}",
                fmt_rate(r.raykit.mean),
                r.raykit.mean / base,
                fmt_rate(base)
            ),
            met: Some(r.raykit.mean >= factor * base),
        },
        None => Target {
            what,
            measured: format!("{} {unit}; no Ray figure for it", fmt_rate(r.raykit.mean)),
            met: None,
        },
    })
}

/// The targets of the cluster mode (head and one node on this machine, a separate driver).
pub fn cluster_targets(report: &Report, ray: &dyn Fn(&str) -> Option<f64>) -> Vec<Target> {
    let mut out: Vec<Target> = [
        ("single_client_tasks_async", 10.0),
        ("1_1_actor_calls_async", 10.0),
        ("single_client_put_gigabytes", 1.0),
    ]
    .into_iter()
    .filter_map(|(name, factor)| vs_ray(report, ray, name, factor))
    .collect();
    if let Some(r) = report
        .metrics
        .iter()
        .find(|r| r.name == "transfer_256mib_between_nodes")
    {
        out.push(Target {
            what: "256 MiB between nodes >= 50% of loopback TCP bandwidth".into(),
            measured: format!(
                "{} GB/s of {} GB/s ({:.0}%)",
                fmt_rate(r.raykit.mean),
                fmt_rate(r.limit.mean),
                100.0 * r.fraction_of_limit
            ),
            met: Some(r.fraction_of_limit >= 0.5),
        });
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rates_read_well() {
        assert_eq!(fmt_rate(1_234_567.4), "1,234,567");
        assert_eq!(fmt_rate(123.4), "123");
        assert_eq!(fmt_rate(12.34), "12.3");
        assert_eq!(fmt_rate(2.8), "2.80");
        assert_eq!(fmt_ratio(0.421), "42%");
        assert_eq!(fmt_ratio(250.0), "250x");
        assert_eq!(fmt_rate(f64::NAN), "-");
    }

    #[test]
    fn every_metric_has_a_ray_figure() {
        for m in crate::suite::METRICS {
            assert!(
                RAY_REFERENCE.iter().any(|(n, _)| *n == m.name),
                "{} has no Ray figure",
                m.name
            );
        }
    }
}
