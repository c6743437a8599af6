#[derive(raykit::Actor)]
#[actor(num_cpus = 1, num_cpus = 2, resources(disk = 1, disk = 2))]
struct Counter {
    value: u64,
}

#[derive(raykit::Actor)]
#[actor(num_cpus = 1)]
#[actor(max_concurrency = 2)]
struct Gauge {
    value: u64,
}

#[raykit::actor]
impl Counter {
    pub fn new() -> Self {
        Counter { value: 0 }
    }
}

#[raykit::actor]
impl Gauge {
    pub fn new() -> Self {
        Gauge { value: 0 }
    }
}

fn main() {}
