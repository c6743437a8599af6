//! Helpers shared by the example binaries of raykit (see `src/bin/`): the time scale of the
//! sleep-based examples, command-line options, and timing.
//!
//! Every sleep-based example multiplies its sleeps by [`scale`], read from `--scale X` on the
//! command line or from the environment variable `RAYKIT_EXAMPLE_SCALE` (default `1.0`), so the
//! test suite can run all of them in a fraction of the time:
//!
//! ```text
//! cargo run -p raykit-examples --bin aggregate                 # about 7 s vs 3 s
//! cargo run -p raykit-examples --bin aggregate -- --scale 0.1  # about 0.7 s vs 0.3 s
//! RAYKIT_EXAMPLE_SCALE=0.1 cargo run -p raykit-examples --bin aggregate
//! ```

use std::str::FromStr;
use std::sync::OnceLock;
use std::time::{Duration, Instant};

/// The environment variable that sets the time scale when `--scale` is not given.
pub const SCALE_ENV: &str = "RAYKIT_EXAMPLE_SCALE";

/// The value of the command-line option `--name VALUE` or `--name=VALUE`, if given.
///
/// Exits the process with a message when the value is missing or does not parse.
pub fn arg<T: FromStr>(name: &str) -> Option<T> {
    let flag = format!("--{name}");
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        let value = if a == flag {
            match args.next() {
                Some(v) => v,
                None => usage_error(&format!("`{flag}` needs a value")),
            }
        } else if let Some(v) = a.strip_prefix(&format!("{flag}=")) {
            v.to_owned()
        } else {
            continue;
        };
        return match value.parse() {
            Ok(v) => Some(v),
            Err(_) => usage_error(&format!("invalid value `{value}` for `{flag}`")),
        };
    }
    None
}

fn usage_error(message: &str) -> ! {
    eprintln!("error: {message}");
    std::process::exit(2)
}

/// The factor every sleep of the sleep-based examples is multiplied by: `--scale X`, else the
/// environment variable [`SCALE_ENV`], else `1.0`. Read once.
pub fn scale() -> f64 {
    static SCALE: OnceLock<f64> = OnceLock::new();
    *SCALE.get_or_init(|| {
        let from_env = || {
            let v = std::env::var(SCALE_ENV).ok()?;
            match v.trim().parse::<f64>() {
                Ok(x) => Some(x),
                Err(_) => usage_error(&format!("invalid {SCALE_ENV}=`{v}`: expected a number")),
            }
        };
        let s = arg::<f64>("scale").or_else(from_env).unwrap_or(1.0);
        if !s.is_finite() || s < 0.0 {
            usage_error(&format!("the time scale must be a number >= 0, got {s}"));
        }
        s
    })
}

/// `secs` seconds, multiplied by [`scale`].
pub fn scaled(secs: f64) -> Duration {
    Duration::from_secs_f64(secs * scale())
}

/// Sleeps `secs` seconds, multiplied by [`scale`]: the stand-in for work in the examples.
pub fn sleep(secs: f64) {
    std::thread::sleep(scaled(secs));
}

/// Runs `f` and returns its result with the wall time it took.
pub fn timed<T>(f: impl FnOnce() -> T) -> (T, Duration) {
    let start = Instant::now();
    let value = f();
    (value, start.elapsed())
}

/// How many times faster `parallel` was than `serial`.
pub fn speedup(serial: Duration, parallel: Duration) -> f64 {
    serial.as_secs_f64() / parallel.as_secs_f64().max(1e-9)
}

/// Prints the example's header: its name and the time scale in use.
pub fn header(name: &str) {
    println!("== {name} (time scale {}) ==", scale());
}

/// Prints the wall time since `start`, the last line of every example.
pub fn print_wall_time(start: Instant) {
    println!("wall time: {:.3} s", start.elapsed().as_secs_f64());
}

/// Starts raykit for an example: embedded with `config`'s resources, or, with `RAYKIT_ADDRESS`
/// set, joining that cluster, whose nodes declare the resources (`raykit start --num-cpus ..`);
/// joining with resource settings is an error, as in Ray.
pub fn init(config: raykit::Config) -> raykit::Result<raykit::RuntimeInfo> {
    if std::env::var("RAYKIT_ADDRESS").is_ok_and(|a| !a.is_empty()) {
        raykit::init()
    } else {
        raykit::init_with(config)
    }
}
