//! Timing: a shortened copy of Ray's `timeit` (`ray_microbenchmark_helpers.py`).
//!
//! Ray warms up for 1 s, then runs four rounds of 2 s and reports the mean and standard deviation
//! of `multiplier * calls / seconds` over the rounds (after a 10 s sleep "to avoid noisy
//! neighbours"). Here the whole measurement takes `duration`: a fifth to warm up, then four
//! rounds of a fifth each, with the same statistics.

use std::time::{Duration, Instant};

use serde::Serialize;

/// One measured rate: the mean and standard deviation over the rounds.
#[derive(Debug, Clone, Copy, Serialize, PartialEq)]
pub struct Rate {
    /// Mean of the rounds, in the metric's unit.
    pub mean: f64,
    /// Standard deviation of the rounds.
    pub sd: f64,
}

/// Runs `f` repeatedly for about `duration` and returns `multiplier` times calls per second.
///
/// `f` returns an error to abort the measurement (a failed remote call, say): a benchmark of a
/// broken workload must not print a number.
pub fn timeit<E>(
    duration: Duration,
    multiplier: f64,
    mut f: impl FnMut() -> Result<(), E>,
) -> Result<Rate, E> {
    let slice = duration / 5;
    let start = Instant::now();
    let mut warm_calls = 0u64;
    while start.elapsed() < slice {
        f()?;
        warm_calls += 1;
    }
    let warm_secs = start.elapsed().as_secs_f64();
    // Look at the clock about twenty times a round, as Ray's `count // 10 + 1` step does in its
    // 2 s rounds after a 1 s warm-up.
    let per_round = warm_calls as f64 * slice.as_secs_f64() / warm_secs;
    let step = (per_round / 20.0) as u64 + 1;
    let mut stats = Vec::with_capacity(4);
    for _ in 0..4 {
        let start = Instant::now();
        let mut calls = 0u64;
        while start.elapsed() < slice {
            for _ in 0..step {
                f()?;
            }
            calls += step;
        }
        stats.push(multiplier * calls as f64 / start.elapsed().as_secs_f64());
    }
    Ok(summarize(&stats))
}

/// Runs `measure` `n` times and keeps the fastest rate (at least one run).
pub fn best_of<E>(n: u32, mut measure: impl FnMut() -> Result<Rate, E>) -> Result<Rate, E> {
    let mut best = measure()?;
    for _ in 1..n {
        let r = measure()?;
        if r.mean > best.mean {
            best = r;
        }
    }
    Ok(best)
}

/// Mean and (population) standard deviation, as numpy's `mean` and `std` compute them.
pub fn summarize(stats: &[f64]) -> Rate {
    if stats.is_empty() {
        return Rate { mean: 0.0, sd: 0.0 };
    }
    let n = stats.len() as f64;
    let mean = stats.iter().sum::<f64>() / n;
    let var = stats.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / n;
    Rate {
        mean,
        sd: var.sqrt(),
    }
}

/// The peak resident set size of this process so far (`VmHWM`), in KiB.
pub fn peak_rss_kib() -> Option<u64> {
    proc_status_kib("VmHWM:")
}

/// The resident set size of this process now (`VmRSS`), in KiB.
pub fn rss_kib() -> Option<u64> {
    proc_status_kib("VmRSS:")
}

fn proc_status_kib(key: &str) -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    status
        .lines()
        .find_map(|l| l.strip_prefix(key))
        .and_then(|rest| rest.split_whitespace().next())
        .and_then(|n| n.parse().ok())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn summarize_matches_numpy() {
        let r = summarize(&[1.0, 2.0, 3.0, 4.0]);
        assert_eq!(r.mean, 2.5);
        assert!((r.sd - 1.118_033_988_749_895).abs() < 1e-12);
    }

    #[test]
    fn timeit_counts_calls_times_multiplier() {
        let mut calls = 0u64;
        let rate = timeit::<()>(Duration::from_millis(50), 10.0, || {
            calls += 1;
            Ok(())
        })
        .unwrap();
        assert!(rate.mean > 0.0);
        assert!(calls > 0);
    }

    #[test]
    fn timeit_stops_at_the_first_error() {
        let mut calls = 0;
        let r = timeit(Duration::from_secs(10), 1.0, || {
            calls += 1;
            if calls == 3 {
                Err("broken")
            } else {
                Ok(())
            }
        });
        assert_eq!(r, Err("broken"));
    }

    #[test]
    fn best_of_keeps_the_fastest() {
        let mut rates = [3.0, 5.0, 4.0].into_iter();
        let best = best_of::<()>(3, || {
            Ok(Rate {
                mean: rates.next().unwrap(),
                sd: 0.0,
            })
        });
        assert_eq!(best.unwrap().mean, 5.0);
    }

    #[test]
    fn reads_peak_rss() {
        assert!(peak_rss_kib().unwrap_or(1) > 0);
    }
}
