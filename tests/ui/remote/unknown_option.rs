#[raykit::remote(num_cpu = 2)]
fn add(a: i64, b: i64) -> i64 {
    a + b
}

#[raykit::remote(retries = 2)]
fn sub(a: i64, b: i64) -> i64 {
    a - b
}

#[raykit::remote(raykit::num_cpus = 2)]
fn mul(a: i64, b: i64) -> i64 {
    a * b
}

fn main() {}
