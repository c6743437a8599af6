#[raykit::remote(num_cpus = 1, num_gpus = 1, num_cpus = 2)]
fn a() {}

#[raykit::remote(resources(custom = 1), resources(other = 1))]
fn b() {}

fn main() {}
