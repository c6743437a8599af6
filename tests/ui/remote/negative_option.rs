#[raykit::remote(num_cpus = -1)]
fn a() {}

#[raykit::remote(max_retries = -2)]
fn b() {}

#[raykit::remote(num_returns = 0)]
fn c() {}

#[raykit::remote(resources(custom = -1.5))]
fn d() {}

fn main() {}
