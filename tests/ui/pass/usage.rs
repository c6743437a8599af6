//! Everything a caller may write: every option, async fns, unit returns, several returns,
//! values, owned refs and borrowed refs as arguments, and per-call options.
use raykit::{ObjectRef, TaskOptions};
use serde::{Deserialize, Serialize};

#[raykit::remote]
fn add(a: i64, b: i64) -> i64 {
    a + b
}

#[raykit::remote(
    num_cpus = 2,
    num_gpus = 0.5,
    resources(custom = 1, other = 0.25),
    max_retries = 0,
    num_returns = 1
)]
fn every_option(x: i64) -> i64 {
    x
}

#[raykit::remote(num_cpus = 0)]
async fn load(path: String) -> Vec<f64> {
    vec![path.len() as f64]
}

#[raykit::remote]
fn log(_line: String) {}

#[raykit::remote]
async fn flush() {}

#[raykit::remote(num_returns = 3)]
fn stats(v: Vec<f64>) -> (f64, f64, usize) {
    let sum: f64 = v.iter().sum();
    (sum, sum / v.len() as f64, v.len())
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Point {
    pub x: f64,
    pub y: f64,
}

/// Patterns, `mut` bindings and `_` parameters are fine.
#[raykit::remote]
fn dist(Point { x, y }: Point, mut scale: f64, _: ()) -> f64 {
    scale *= 2.0;
    (x * x + y * y).sqrt() * scale
}

/// Refs are values too: they can be returned and passed inside containers.
#[raykit::remote]
fn total(refs: Vec<ObjectRef<i64>>) -> i64 {
    refs.iter().map(|r| raykit::get(r).unwrap_or(0)).sum()
}

pub mod nested {
    /// Visibility is kept: `nested::double::remote` is callable from outside.
    #[raykit::remote]
    pub fn double(x: super::Point) -> super::Point {
        super::Point {
            x: x.x * 2.0,
            y: x.y * 2.0,
        }
    }
}

/// User types named like items of the expansion (`Options`, `Arg`) are the user's types.
mod shadowing {
    #[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
    pub struct Options {
        pub n: u32,
    }

    #[derive(Debug, serde::Serialize, serde::Deserialize)]
    pub struct Arg(pub String);

    #[raykit::remote]
    pub fn configure(options: Options, arg: Arg) -> Options {
        Options {
            n: options.n + arg.0.len() as u32,
        }
    }
}

fn main() {
    let a: ObjectRef<i64> = add::remote(1, 2);
    let b = add::remote(&a, 10);
    let c = add::remote(a.clone(), b);
    let _ = every_option::remote(&c);
    let _: ObjectRef<Vec<f64>> = load::remote("data.csv".to_string());
    let _: ObjectRef<()> = log::remote(String::from("line"));
    let _: ObjectRef<()> = flush::remote();
    let (sum, mean, n): (ObjectRef<f64>, ObjectRef<f64>, ObjectRef<usize>) =
        stats::remote(vec![1.0, 2.0]);
    let _ = (sum, mean, n);
    let p = raykit::put(Point { x: 3.0, y: 4.0 });
    let _ = dist::remote(&p, 1.0, ());
    let _ = nested::double::remote(p);
    let _ = total::remote(vec![a.clone(), c]);
    let _ = add::options(TaskOptions::new().num_cpus(2)).remote(1, &a);
    let _ = add::options(
        TaskOptions::new()
            .num_cpus(0.5)
            .resource("custom", 1)
            .max_retries(0),
    )
    .remote(a, 2);
    let o = shadowing::configure::remote(shadowing::Options { n: 1 }, shadowing::Arg("x".into()));
    let _: ObjectRef<shadowing::Options> =
        shadowing::configure::options(TaskOptions::new()).remote(&o, shadowing::Arg(String::new()));
    assert_eq!(add(1, 2), 3);
}
