#[raykit::remote(num_cpus = "two")]
fn a() {}

#[raykit::remote(max_retries = 1.5)]
fn b() {}

#[raykit::remote(num_gpus)]
fn c() {}

#[raykit::remote(num_returns(2))]
fn d() -> (i64, i64) {
    (1, 2)
}

#[raykit::remote(max_retries = N)]
fn e() {}

const N: u32 = 2;

#[raykit::remote(resources = 1)]
fn f() {}

fn main() {}
